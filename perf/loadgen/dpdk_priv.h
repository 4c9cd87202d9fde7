/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver internals shared by its files: the options
 * (dpdk_opts.c), the frame templates (dpdk_tmpl.c), ARP/ND (dpdk_arp.c) and
 * the I/O loop (dpdk.c). One lcore runs everything, so the state is plain
 * globals with no locking.
 */
#ifndef QGATE_PERF_LOADGEN_DPDK_PRIV_H
#define QGATE_PERF_LOADGEN_DPDK_PRIV_H

#include <signal.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "qgate/addr.h"
#include "dpdk.h"
#include "loadgen.h"

#define DP_BURST       32
#define DP_MAX_FLOWS   (1u << 24)
#define DP_NB_MBUF     32767
#define DP_RING_DESC   1024
#define DP_SCAN_NS     1000000ULL
#define DP_MAX_EAL_ARG 128
#define DP_TMPL_LEN    256

enum dp_mode {
	DP_FORWARD = 0,
	DP_ECHO
};

/* The command line, read-only once parsed (except has_dst_mac/dst_mac, set by ARP/ND). */
struct dp_opts {
	char *eal;
	int lcore;
	const char *tx_name, *rx_name;
	int has_src_mac, has_dst_mac, has_gw, has_src_ip;
	uint8_t src_mac[6], dst_mac[6];
	uint8_t gw[16], src_ip[16];
	int family;
	uint32_t src_ips;
	uint32_t src_port;
	const char *target_text;
	struct qg_addr target;
	enum dp_mode mode;
	uint32_t flows, size, window, timeout_ms, link_timeout_s;
	int rate_given;
	uint64_t rate;
	double duration_s, warmup_s;
	enum lg_payload payload;
	struct lg_quic_lb quic_lb;
	int json, quiet, check_csum;
};

struct dp_port {
	uint16_t id;
	uint8_t mac[6];
	int is_tx, is_rx;
	struct rte_mbuf *out[DP_BURST]; /* reflections and ARP/ND answers of one rx burst */
	unsigned n_out;
};

struct dp_state {
	struct rte_mempool *pool;
	struct dp_port port[2];
	unsigned n_ports;
	struct dp_port *tx, *rx;
	struct lg_model model;
	struct lg_stats *st;
	struct lg_flow ring; /* echo closed loop: every datagram in flight, by global sequence */
	uint64_t *rx_next;   /* open loop: next per-flow sequence expected (duplicates are late) */
	uint64_t tsc0, ns_mult;
	uint64_t warm_end, end, timeout_ns;
	uint64_t gseq;	 /* open loop: next global sequence */
	uint64_t issued; /* open loop: datagrams the --rate schedule asked for */
	uint64_t reflected, out_dropped;
	/* Ethernet/IP/UDP headers + payload with zero src IP, port, DCID and stamp. */
	uint8_t tmpl[DP_TMPL_LEN];
	uint32_t hdr_len, frame_len, sip_off, alen;
	uint32_t stamp_off;	    /* in the UDP payload: after the short header for QUIC */
	uint64_t ip_base, udp_base; /* checksum sums over the template's constant bytes */
	uint32_t src4;		    /* IPv4 base (host order), or the low 32 bits of the IPv6 base */
	uint16_t *dcid_sum;	    /* QUIC: per flow, the folded sum of its DCID where the template has it */
};

extern struct dp_opts dpo;
extern struct dp_state dps;
extern volatile sig_atomic_t dp_stop;

static inline uint64_t dp_now_ns(void)
{
	return (uint64_t)((unsigned __int128)(rte_rdtsc() - dps.tsc0) * dps.ns_mult >> 32);
}

static inline int dp_in_window(uint64_t t)
{
	return t >= dps.warm_end && t < dps.end;
}

/* The client address of a flow: base + flow % src_ips, port src_port + flow / src_ips. */
static inline void dp_flow_addr(uint32_t flow, uint32_t *ip_low, uint16_t *port_be)
{
	uint32_t idx = dpo.src_ips == 1 ? 0 : flow % dpo.src_ips;
	uint32_t pi = dpo.src_ips == 1 ? flow : flow / dpo.src_ips;

	*ip_low = rte_cpu_to_be_32(dps.src4 + idx);
	*port_be = rte_cpu_to_be_16((uint16_t)(dpo.src_port + pi));
}

/* dpdk_opts.c: parse argv into dpo. @return 0 or -EINVAL (message printed). */
int dp_parse_options(int argc, char **argv);
/* Print "qgate-loadgen: WHAT (see --dpdk '' --help)". @return -EINVAL. */
int dp_bad(const char *what);

/* dpdk_tmpl.c */
/* Build the template once the MACs are known. @return 0 or -ENOMEM. */
int dp_build_template(void);
void dp_free_template(void);
/* Fill n mbufs with the datagrams of global sequence g, g+1, ... stamped now. */
void dp_build_burst(struct rte_mbuf **m, unsigned n, uint64_t g, uint64_t now);

/* dpdk_arp.c */
int dp_is_client_ip(const uint8_t *ip, int v6);
void dp_queue_out(struct dp_port *p, struct rte_mbuf *m);
void dp_flush_out(struct dp_port *p);
void dp_handle_arp(struct dp_port *p, const struct lg_frame *f);
void dp_handle_nd(struct dp_port *p, const uint8_t *frame, const struct lg_frame *f);
/* Send ARP/NS for --gateway-ip until it answers (rx_all polls the ports). @return 0 or -EHOSTUNREACH. */
int dp_resolve_gateway(void (*rx_all)(void));

#endif /* QGATE_PERF_LOADGEN_DPDK_PRIV_H */
