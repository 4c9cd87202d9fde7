/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the DPDK backend, shared by its files only. The process-wide
 * part (EAL, ports, queues, pools, handover rings, the neighbour table, the
 * NAT address list) is built once by qg_dpdk_setup() on the control thread
 * and only read afterwards; each worker's part (struct qg_io) is written by
 * that worker alone.
 */
#ifndef QG_DPDK_PORT_H
#define QG_DPDK_PORT_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "qgate/compiler.h"
#include "qgate/config.h"
#include "qgate/io.h"
#include "qgate/net.h"

#define QG_DPDK_MAX_PORTS   QG_CONFIG_DPDK_MAX_PORTS
#define QG_DPDK_MAX_WORKERS QG_CONFIG_MAX_CORES
#define QG_DPDK_MAX_NAT	    (QG_CONFIG_DPDK_MAX_PORTS * (QG_CONFIG_DPDK_MAX_NAT + 2))
#define QG_DPDK_NAT_FIRST   1024u /* NAT ports 1024..65535, split evenly between workers */
#define QG_DPDK_NAT_PORTS   (65536u - QG_DPDK_NAT_FIRST)
#define QG_DPDK_RING_SIZE   4096u /* handover ring of each worker */
#define QG_DPDK_TXBUF	    512u  /* frames queued per port between two flushes */
#define QG_DPDK_SOLICIT_MS  100u  /* one ARP request / NS per next hop per worker at most this often */
#define QG_DPDK_SOLICIT_LOG 6	  /* 64 rate-limit slots per worker */

/** One port as the workers see it (read-only after setup). */
struct qg_dpdk_port {
	uint16_t port_id;
	uint8_t csum_offload; /**< IPv4 header + UDP checksums computed by the NIC */
	struct rte_ether_addr mac;
	const struct qg_config_dpdk_port *cfg;
	struct qg_addr own4, own6; /**< first owned address of each family (family 0: none) */
	struct qg_addr gw4, gw6;   /**< gateways (family 0: none) */
	uint8_t has_tap;	   /**< frames not ours go to the kernel through tap_id */
	uint16_t tap_id;	   /**< the kernel_tap's ethdev (dpdk_tap.c) */
};

/** One NAT source address (port field 0) and the port it belongs to. */
struct qg_dpdk_nat {
	struct qg_addr addr;
	unsigned port; /**< index into qg_dpdk.ports */
};

/** Everything process-wide. */
struct qg_dpdk {
	unsigned n_workers;
	unsigned n_ports;
	unsigned n_nat;
	uint32_t ports_per_worker; /**< NAT ports each worker owns on every NAT address */
	struct qg_dpdk_port ports[QG_DPDK_MAX_PORTS];
	struct qg_dpdk_nat nat[QG_DPDK_MAX_NAT];
	struct rte_mempool *pools[QG_DPDK_MAX_WORKERS];
	struct rte_ring *rings[QG_DPDK_MAX_WORKERS]; /**< replies handed to their NAT port's worker */
	struct qg_neigh_table *neigh;
	unsigned n_taps; /**< ports with a kernel_tap */
	int eal_ready;
	/*
	 * Our own copy of the ports' configuration: the workers route by it for
	 * as long as they run, and a reload frees the configuration qgate started
	 * with (ports are restart-only, so the copy stays right).
	 */
	struct qg_config_dpdk conf;
};

extern struct qg_dpdk qg_dpdk;

/** The mbuf private area: the parse of the frame, reused by the rewrite and across the handover. */
static inline struct qg_net_pkt *qg_dpdk_meta(struct rte_mbuf *m)
{
	return (struct qg_net_pkt *)rte_mbuf_to_priv(m);
}

/**
 * Where an upstream (a NAT port of this worker) sends: shared by every upstream
 * toward the same backend through the same next hop, so the per-port map
 * (struct qg_io.up_dest) holds only an index. The map is read for every
 * datagram: at 4 bytes a port it stays in the last-level cache with a million
 * flows, where a full entry per port (44 bytes, 48 MB for 17 NAT addresses)
 * missed the last level 0.66 times per datagram in callgrind's cache model
 * (perf/cost-dpdk.sh --cache-sim, docs/PERFORMANCE.md).
 */
struct qg_dpdk_dest {
	struct qg_addr backend;
	struct qg_addr nexthop; /**< backend itself (on-link) or a gateway */
	uint32_t refs;		/**< upstreams using it; 0: on the free list */
	uint32_t next;		/**< hash chain, or free list */
	uint8_t port;		/**< egress port index */
};

#define QG_DPDK_DEST_NONE    UINT32_MAX
#define QG_DPDK_DEST_BUCKETS 4096u /* power of two; chains grow only past thousands of backends */

/** Frames waiting for one port's TX queue. */
struct qg_dpdk_txq {
	uint32_t n;
	struct rte_mbuf *m[QG_DPDK_TXBUF];
	uint16_t len[QG_DPDK_TXBUF]; /**< UDP payload bytes of each (0: ARP/ND), for tx_bytes */
};

/** A worker's instance. */
#define QG_DPDK_NH_CACHE 64 /* direct-mapped next-hop MAC cache entries per worker */

struct qg_io {
	struct qg_ctr_block *ctr;
	struct rte_mempool *pool;
	struct rte_ring *ring;
	unsigned worker;
	unsigned n_services;
	uint32_t max_datagram;
	uint32_t port_lo; /**< first NAT port of this worker */
	uint32_t ppw;	  /**< NAT ports per worker */
	uint32_t n_up;	  /**< n_nat * ppw */
	uint16_t queue;	  /**< RX/TX queue id on every port */
	uint64_t tsc_per_ms;
	uint64_t kernel_next_tsc;     /**< next read of the kernel_tap queues (io_dpdk.c, kernel_rx) */
	const struct qg_addr *listen; /**< copied listen address of each service */
	/** Per upstream: its destination's index + 1, 0 when the port is free. n_up entries. */
	uint32_t *up_dest;
	struct qg_dpdk_dest *dest; /**< n_up entries: an upstream holds one at most, so never short */
	uint32_t *dest_bucket;	   /**< QG_DPDK_DEST_BUCKETS hash chain heads */
	uint32_t dest_free;	   /**< free list of returned entries */
	uint32_t dest_used;	   /**< entries ever handed out (the rest are untouched) */
	/*
	 * Free port offsets of each NAT address, a FIFO of ppw entries: a port
	 * freed now is reused last, so late replies of an ended flow rarely meet
	 * a new one.
	 */
	uint16_t *free_q;
	uint32_t *free_head; /**< per NAT address */
	uint32_t *free_n;    /**< per NAT address */
	unsigned nat_cursor;
	int vip_wildcard; /**< some service listens on 0.0.0.0 or :: */
	struct {
		struct qg_addr ip;
		uint64_t tsc;
	} solicit[1u << QG_DPDK_SOLICIT_LOG];
	/*
	 * Next hops' MACs, valid while the neighbour table's generation is
	 * unchanged: a probe of the shared table per packet cost 10% of the
	 * worker's time at 4 Mpps (perf, bench-dpdk).
	 */
	struct {
		struct qg_addr ip;
		uint64_t gen; /* 0: empty (table generations start at 1 after the first set) */
		uint8_t mac[6];
	} nh_cache[QG_DPDK_NH_CACHE];
	struct qg_dpdk_txq txq[QG_DPDK_MAX_PORTS] QG_CACHE_ALIGNED;
} QG_CACHE_ALIGNED;

/* dpdk_port.c */

/** EAL, ports, queues, pools, rings, neighbours. 0 or -errno (logged); on failure undo what was done. */
int qg_dpdk_setup(const struct qg_config *cfg);
void qg_dpdk_teardown(void);

/**
 * A frame qgate does not own, received on port p: to the kernel through p's
 * kernel_tap (counted kernel_tx, or kernel_full), else dropped as not_ours.
 */
void qg_dpdk_to_kernel(struct qg_io *io, unsigned p, struct rte_mbuf *m);

/** Create, set up and start port p's kernel_tap (after the port itself). @return 0 or -errno. */
int qg_dpdk_tap_create(unsigned p);

/** Stop and remove port p's kernel_tap, if it has one. */
void qg_dpdk_tap_close(unsigned p);

/**
 * Where a destination goes: the port whose prefixes cover it (next hop = the
 * destination), else the first port with a gateway of its family.
 * @return 0, or -ENETUNREACH.
 */
int qg_dpdk_route(const struct qg_addr *dst, unsigned *port, struct qg_addr *nexthop);

/** 1 when ip (port ignored) is an owned or NAT address of port p, or a service VIP of io. */
int qg_dpdk_is_ours(const struct qg_io *io, unsigned p, const struct qg_addr *ip);

/* dpdk_neigh.c */

/** Handle an ARP frame received on port p: learn, answer; takes the mbuf. */
void qg_dpdk_arp_input(struct qg_io *io, unsigned p, struct rte_mbuf *m);

/** Handle an ND frame received on port p: learn, answer solicitations; takes the mbuf. */
void qg_dpdk_nd_input(struct qg_io *io, unsigned p, struct rte_mbuf *m);

/** Ask for nexthop's MAC on port p (ARP request or NS), at most once per QG_DPDK_SOLICIT_MS. */
void qg_dpdk_solicit(struct qg_io *io, unsigned p, const struct qg_addr *nexthop);

/**
 * Queue a frame on port p's TX buffer (flushing it when full); payload_len:
 * its UDP payload bytes, counted in tx_bytes once the NIC took the frame.
 */
void qg_dpdk_tx_queue(struct qg_io *io, unsigned p, struct rte_mbuf *m, uint32_t payload_len);

#endif /* QG_DPDK_PORT_H */
