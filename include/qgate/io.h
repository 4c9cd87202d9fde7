/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet I/O backends behind one ops table. A backend moves datagrams in
 * bursts between the wire and the relay pipeline; it knows nothing of flows
 * or selection. The pipeline sees every datagram as a struct qg_pkt: the UDP
 * payload, where it came from (a service's client or an upstream toward a
 * backend) and, on the way out, where it goes. Buffers stay owned by the
 * backend: each packet handed out by rx_burst comes back exactly once through
 * tx_backend, tx_client or release.
 *
 * One instance per worker; every call comes from that worker's thread.
 */
#ifndef QGATE_IO_H
#define QGATE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "qgate/addr.h"
#include "qgate/config.h"
#include "qgate/counters.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Backend slots an I/O backend must accept (every backend of every service). */
#define QG_IO_MAX_BACKEND_SLOTS 65536

/** Direction of a received datagram. */
#define QG_PKT_FROM_CLIENT  0 /**< arrived on a service (VIP) socket/address */
#define QG_PKT_FROM_BACKEND 1 /**< arrived on an upstream toward a backend */

/** Packet flags. */
#define QG_PKT_F_OVERSIZE    0x01 /**< larger than max_datagram: payload incomplete, must be dropped */
#define QG_PKT_F_LEN_CHANGED 0x02 /**< the pipeline rewrote the payload to len bytes (e.g. an answer) */

/** A datagram in flight through the pipeline. */
struct qg_pkt {
	uint8_t *data;	     /**< UDP payload */
	uint32_t len;	     /**< payload length */
	uint32_t buf;	     /**< backend's buffer handle */
	uint32_t upstream;   /**< FROM_BACKEND: upstream it arrived on; toward a backend: upstream to use */
	uint16_t svc;	     /**< FROM_CLIENT: service index; toward a client: service to answer from */
	uint8_t dir;	     /**< QG_PKT_FROM_* */
	uint8_t flags;	     /**< QG_PKT_F_* */
	struct qg_addr peer; /**< FROM_CLIENT: the client; toward a client: its address */
	void *priv;	     /**< backend-private (e.g. an mbuf) */
};

/** What a worker gives its I/O backend at creation. */
struct qg_io_params {
	unsigned worker; /**< worker index */
	unsigned n_services;
	const struct qg_addr *listen; /**< listen address of each service (n_services) */
	uint32_t rx_buffers;	      /**< receive buffers (power of two) */
	uint32_t max_datagram;	      /**< largest payload relayed */
	uint32_t max_upstreams;	      /**< cap of upstreams (sockets or NAT ports) */
	uint32_t burst;		      /**< packets per burst */
	uint32_t tx_buffers;	      /**< alloc_tx buffers besides rx_buffers (0: none) */
	int udp_gso;		      /**< batch a flow's consecutive datagrams into one UDP GSO send */
	struct qg_ctr_block *ctr;     /**< the worker's counters */
	/**
	 * Optional (NULL: not told): an upstream reported ECONNREFUSED (ICMP
	 * unreachable from its backend). Called on the worker's thread, with
	 * refused_ctx; health uses it as a passive failure signal.
	 */
	void (*on_refused)(void *ctx, uint32_t up);
	void *refused_ctx;
};

struct qg_io;

/** A port's own figures (its NIC's or PMD's count), for backends that drive ports (DPDK). */
struct qg_io_port_stats {
	char name[QG_CONFIG_DPDK_PORT_NAME_MAX]; /**< the port's configured name */
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t rx_missed; /**< frames dropped because the port's RX queues were full: the workers fell
			       behind */
	uint64_t rx_nombuf; /**< frames dropped for want of an mbuf */
	uint64_t rx_errors; /**< frames the port received in error */
	uint64_t tx_errors; /**< frames the port failed to send */
};

/** The ops table every backend fills. */
struct qg_io_ops {
	const char *name;
	/** 0 when usable here, else -errno with a reason in why. */
	int (*probe)(char *why, size_t len);
	/**
	 * Once per process before any create, on the control thread (NULL when
	 * not needed): e.g. EAL, ports, queues, mempools. 0 or -errno (logged).
	 */
	int (*setup)(const struct qg_config *cfg);
	/** Once after every instance is destroyed (NULL when not needed). */
	void (*teardown)(void);
	/** Upstreams one instance can hold (socket pool cap, or NAT ports x addresses). */
	uint32_t (*max_upstreams)(const struct qg_io *io);
	/** Create the worker's instance: sockets bound, buffers allocated. 0 or -errno (logged). */
	int (*create)(const struct qg_io_params *p, struct qg_io **out);
	void (*destroy)(struct qg_io *io);
	/**
	 * Receive up to n datagrams. When none is ready, wait up to wait_us
	 * (0 = do not wait). @return how many were filled.
	 */
	unsigned (*rx_burst)(struct qg_io *io, struct qg_pkt *pkts, unsigned n, unsigned wait_us);
	/** Send each packet on its pkt->upstream. Takes every buffer. */
	void (*tx_backend)(struct qg_io *io, struct qg_pkt *pkts, unsigned n);
	/** Send each packet to pkt->peer from service pkt->svc. Takes every buffer. */
	void (*tx_client)(struct qg_io *io, struct qg_pkt *pkts, unsigned n);
	/** Give buffers back without sending (drops). */
	void (*release)(struct qg_io *io, struct qg_pkt *pkts, unsigned n);
	/**
	 * A buffer for a datagram that did not arrive through rx_burst (the
	 * Bluetooth bridge's ring messages): fills pkt->data (room for
	 * max_datagram bytes), buf and priv. From then on the packet follows
	 * the rule of received ones: it comes back exactly once through
	 * tx_backend, tx_client or release, and stays valid until its send
	 * completed (io_uring sends asynchronously). Copying the message into a
	 * buffer the backend owns keeps one ownership rule for every packet;
	 * the alternative, an "external buffer" flag honoured by every send
	 * path, would have to pin the ring slot until an asynchronous send
	 * completes. NULL when the backend cannot (DPDK: the bridge is refused).
	 * @return 0, or -ENOBUFS when none is free (try again later).
	 */
	int (*alloc_tx)(struct qg_io *io, struct qg_pkt *pkt);
	/**
	 * From now on, a wait in rx_burst also ends when fd (an eventfd
	 * doorbell) is signalled. The fd is never read: the backend waits for
	 * its edges (EPOLLET, or a multishot poll), so each signal wakes one
	 * wait and a signal while the worker polls costs nothing. Worker
	 * thread, after start. NULL when not supported. @return 0 or -errno.
	 */
	int (*watch_fd)(struct qg_io *io, int fd);
	/**
	 * Get an upstream toward backend (slot numbers backends across
	 * services, < QG_IO_MAX_BACKEND_SLOTS), reusing an idle one toward the
	 * same backend when there is one. @return 0 and *up (< max_upstreams),
	 * -ENOSPC when the cap is reached, or another -errno.
	 */
	int (*upstream_open)(struct qg_io *io, uint32_t backend_slot, const struct qg_addr *backend,
			     uint32_t *up);
	/**
	 * Give an upstream back. reuse != 0 (its flow ended idle) lets it serve
	 * a later flow to the same backend; otherwise (evicted, removed) it is
	 * closed, so nothing still in flight for the old client can reach a new
	 * one.
	 */
	void (*upstream_close)(struct qg_io *io, uint32_t up, int reuse);
	/** Called once on the worker's own thread before its loop (rings bound to a thread). 0 or -errno. */
	int (*start)(struct qg_io *io);
	/**
	 * Called on the worker's thread after its loop (NULL when not needed):
	 * finish what is in flight so that, once destroyed, nothing of the
	 * instance (e.g. a socket held by a pending request) outlives it.
	 */
	void (*stop)(struct qg_io *io);
	/** Push out everything queued (end of a burst). */
	void (*flush)(struct qg_io *io);
	/**
	 * Optional (NULL: the backend drives no ports): the figures of port i,
	 * counting from 0, read on the control thread while the workers run
	 * (and after they stopped, before teardown). @return 0, -ENOENT past
	 * the last port, or another -errno.
	 */
	int (*port_stats)(unsigned i, struct qg_io_port_stats *out);
	/**
	 * Optional (NULL: nothing to announce): the per-upstream state
	 * tx_backend reads, as an array of max_upstreams entries of *stride
	 * bytes from *base, valid for the instance's life. The relay prefetches
	 * an upstream's entry as soon as a flow lookup names it, the rest of
	 * the burst ahead of tx_backend (DPDK: the NAT port -> destination map,
	 * a cache miss per packet with a million flows).
	 */
	void (*upstream_state)(const struct qg_io *io, const void **base, size_t *stride);
	/**
	 * Reloads. On the control thread before a new service is published
	 * (NULL when the backend needs no socket: DPDK matches VIPs in
	 * frames): open a listening socket for one worker. 0 or -errno.
	 */
	int (*svc_socket)(const struct qg_addr *listen, int *fd);
	/**
	 * On the worker's thread: serve service svc (< QG_CONFIG_MAX_SERVICES)
	 * on listen from now on, with fd from svc_socket (or -1), which it
	 * takes even on failure. uid tells this incarnation of the index from
	 * earlier ones. 0 or -errno.
	 */
	int (*svc_attach)(struct qg_io *io, unsigned svc, const struct qg_addr *listen, int fd, uint32_t uid);
	/** On the worker's thread: stop serving service svc; its socket closes. */
	void (*svc_detach)(struct qg_io *io, unsigned svc);
};

/** The io_uring backend (multishot receive, provided buffer ring, socket relay). */
extern const struct qg_io_ops qg_io_uring_ops;

/** The portable recvmmsg/sendmmsg + epoll backend. */
extern const struct qg_io_ops qg_io_recvmmsg_ops;

/** The DPDK backend (full NAT at packet level); only in builds with DPDK (QGATE_HAVE_DPDK). */
extern const struct qg_io_ops qg_io_dpdk_ops;

/**
 * Pick the backend for a configured kind: io_uring falls back to recvmmsg
 * when io_uring is unusable here, and logs why.
 * @return the ops, or NULL when the kind is not built in.
 */
const struct qg_io_ops *qg_io_select(int config_io_kind);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_IO_H */
