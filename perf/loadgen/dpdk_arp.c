/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver: ARP and neighbour discovery. The tx port
 * answers for the client addresses, the rx port for the backends (any
 * address but the gateway's); the gateway's MAC is resolved when --dst-mac
 * is not given. Answers and reflections queue on the port and leave with
 * its next flush.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "dpdk_priv.h"

int dp_is_client_ip(const uint8_t *ip, int v6)
{
	uint32_t low;

	if (v6 && memcmp(ip, dpo.src_ip, 12))
		return 0;
	memcpy(&low, ip + (v6 ? 12 : 0), 4);
	return rte_be_to_cpu_32(low) - dps.src4 < dpo.src_ips;
}

/*
 * Do we answer for ip on port p? The tx port owns the client addresses;
 * the rx port plays every backend, so it answers for anything but the
 * gateway (and a sender probing its own address).
 */
static int answers_for(const struct dp_port *p, const uint8_t *ip, const uint8_t *sender, int v6)
{
	uint32_t n = v6 ? 16 : 4;

	if (p->is_tx && dp_is_client_ip(ip, v6))
		return 1;
	return p->is_rx && !(dpo.has_gw && !memcmp(ip, dpo.gw, n)) && memcmp(ip, sender, n);
}

void dp_queue_out(struct dp_port *p, struct rte_mbuf *m)
{
	if (p->n_out < DP_BURST) {
		p->out[p->n_out++] = m;
	} else {
		rte_pktmbuf_free(m);
		dps.out_dropped++;
	}
}

static void reply_frame(struct dp_port *p, const uint8_t *frame, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(dps.pool);

	if (!m)
		return;
	rte_memcpy(rte_pktmbuf_mtod(m, uint8_t *), frame, len);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	dp_queue_out(p, m);
}

void dp_handle_arp(struct dp_port *p, const struct lg_frame *f)
{
	const uint8_t *a = f->l3;
	uint8_t buf[64];
	uint32_t len;

	if (a[0] != 0 || a[1] != 1 || a[2] != 8 || a[3] != 0 || a[4] != 6 || a[5] != 4)
		return;
	/* A reply or a request from the gateway both tell us its MAC. */
	if (p->is_tx && !dpo.has_dst_mac && dpo.has_gw == AF_INET && !memcmp(a + 14, dpo.gw, 4)) {
		memcpy(dpo.dst_mac, a + 8, 6);
		dpo.has_dst_mac = 2;
	}
	if (a[7] == 1 && answers_for(p, a + 24, a + 14, 0)) {
		len = lg_arp_build(buf, 2, a + 8, p->mac, a + 24, a + 8, a + 14);
		reply_frame(p, buf, len);
	}
}

void dp_handle_nd(struct dp_port *p, const uint8_t *frame, const struct lg_frame *f)
{
	static const uint8_t all_nodes[16] = { 0xff, 2, [15] = 1 };
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	uint8_t type, target[16], ll[6], buf[128];
	const uint8_t *src = f->l3 + 8;
	int dad = 1;
	uint32_t len;

	if (lg_nd_read(frame, f, &type, target, ll))
		return;
	for (int i = 0; i < 16; i++)
		dad &= src[i] == 0;
	if (type == 136 && p->is_tx && !dpo.has_dst_mac && dpo.has_gw == AF_INET6 &&
	    !memcmp(target, dpo.gw, 16)) {
		memcpy(dpo.dst_mac, ll, 6);
		dpo.has_dst_mac = 2;
	}
	if (type != 135 || !answers_for(p, target, src, 1))
		return;
	/* Duplicate address detection (source ::) of an address we use: defend it to all nodes. */
	if (dad)
		len = lg_nd_build(buf, 136, p->mac, target, all_nodes_mac, all_nodes, target);
	else
		len = lg_nd_build(buf, 136, p->mac, target, ll, src, target);
	reply_frame(p, buf, len);
}

void dp_flush_out(struct dp_port *p)
{
	unsigned sent = 0;

	if (!p->n_out)
		return;
	sent = rte_eth_tx_burst(p->id, 0, p->out, (uint16_t)p->n_out);
	if (sent < p->n_out) {
		dps.out_dropped += p->n_out - sent;
		rte_pktmbuf_free_bulk(p->out + sent, p->n_out - sent);
	}
	p->n_out = 0;
}

int dp_resolve_gateway(void (*rx_all)(void))
{
	uint8_t buf[128], sip[16];
	uint64_t until = dp_now_ns() + 5000000000ULL, next = 0;
	uint32_t len, low = rte_cpu_to_be_32(dps.src4);

	memcpy(sip, dpo.src_ip, 16);
	memcpy(sip + (dpo.family == AF_INET ? 0 : 12), &low, 4);
	while (dpo.has_dst_mac != 2) {
		uint64_t now = dp_now_ns();

		if (now > until || dp_stop) {
			fprintf(stderr, "qgate-loadgen: no ARP/ND answer from the gateway within 5 s\n");
			return -EHOSTUNREACH;
		}
		if (now >= next) {
			static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, zero[6];

			if (dpo.family == AF_INET)
				len = lg_arp_build(buf, 1, bcast, dpo.src_mac, sip, zero, dpo.gw);
			else
				len = lg_nd_build(buf, 135, dpo.src_mac, sip, NULL, NULL, dpo.gw);
			reply_frame(dps.tx, buf, len);
			dp_flush_out(dps.tx);
			next = now + 200000000ULL;
		}
		rx_all();
	}
	return 0;
}
