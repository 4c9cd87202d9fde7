/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK backend, neighbours: answering ARP requests and neighbour
 * solicitations for the addresses the gateway owns (port addresses, service
 * VIPs, NAT addresses), learning the Ethernet addresses of whoever talks to
 * them, and asking for unknown next hops. Replies are written into the
 * received mbuf, so answering costs no allocation. This is the slow path:
 * learning goes through the neighbour table's mutex.
 */
#include <netinet/in.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "dpdk_port.h"

static const uint8_t bcast_mac[QG_NET_ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t zero_mac[QG_NET_ETH_ALEN];
static const uint8_t all_nodes_mac[QG_NET_ETH_ALEN] = { 0x33, 0x33, 0, 0, 0, 1 };
static const uint8_t all_nodes_ip[16] = { 0xff, 0x02, [15] = 1 };

static void ip_set(struct qg_addr *a, int family, const uint8_t *ip)
{
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	memcpy(a->ip, ip, family == AF_INET ? 4 : 16);
}

static uint32_t room(const struct rte_mbuf *m)
{
	return (uint32_t)(m->buf_len - m->data_off);
}

static void reply_send(struct qg_io *io, unsigned p, struct rte_mbuf *m, uint32_t len, enum qg_ctr_id ctr)
{
	if (!len) {
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	m->ol_flags = 0;
	qg_dpdk_tx_queue(io, p, m, 0); /* no UDP payload: not in tx_bytes */
	qg_ctr_add(io->ctr, ctr, 1);
}

/* An ARP reply or neighbour advertisement, once learnt from: the kernel behind
 * a kernel_tap may be the one who asked, else it is done with (not a drop). */
static void answer_learnt(struct qg_io *io, unsigned p, struct rte_mbuf *m)
{
	if (qg_dpdk.ports[p].has_tap)
		qg_dpdk_to_kernel(io, p, m);
	else
		rte_pktmbuf_free(m);
}

void qg_dpdk_arp_input(struct qg_io *io, unsigned p, struct rte_mbuf *m)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	const struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	struct qg_addr sender, target;
	struct qg_net_arp a;
	uint32_t len;

	if (qg_net_arp_read(frame, m->data_len, qg_dpdk_meta(m), &a)) {
		qg_ctr_add(io->ctr, QG_CTR_DROP_MALFORMED_ARP, 1);
		rte_pktmbuf_free(m);
		return;
	}
	ip_set(&target, AF_INET, a.target_ip);
	ip_set(&sender, AF_INET, a.sender_ip);
	if (!qg_dpdk_is_ours(io, p, &target)) {
		qg_ctr_add(io->ctr, QG_CTR_DROP_NOT_OURS, 1);
		rte_pktmbuf_free(m);
		return;
	}
	/* Whoever asks for us is about to talk to us: learn it now instead of asking back (RFC 826). */
	if (memcmp(a.sender_ip, "\0\0\0\0", 4))
		(void)qg_neigh_set(qg_dpdk.neigh, &sender, a.sender_mac, 0);
	if (a.op != 1) {
		answer_learnt(io, p, m);
		return;
	}
	len = qg_net_arp_build(frame, room(m), 2, a.sender_mac, dp->mac.addr_bytes, a.target_ip, a.sender_mac,
			       a.sender_ip);
	reply_send(io, p, m, len, QG_CTR_ARP_REPLIES);
}

void qg_dpdk_nd_input(struct qg_io *io, unsigned p, struct rte_mbuf *m)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	const struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	static const uint8_t unspecified[16];
	struct qg_addr target, src;
	struct qg_net_nd nd;
	const uint8_t *dst_mac, *dst_ip;
	uint32_t len;
	int dad;

	if (qg_net_nd_read(frame, m->data_len, qg_dpdk_meta(m), &nd)) {
		qg_ctr_add(io->ctr, QG_CTR_DROP_MALFORMED_ND, 1);
		rte_pktmbuf_free(m);
		return;
	}
	ip_set(&target, AF_INET6, nd.target);
	if (nd.type == 136) {
		/* An advertisement answers our solicitation (or announces a change): learn it. */
		if (!qg_dpdk_is_ours(io, p, &target))
			(void)qg_neigh_set(qg_dpdk.neigh, &target, nd.has_lladdr ? nd.lladdr : nd.src_mac, 0);
		answer_learnt(io, p, m);
		return;
	}
	if (!qg_dpdk_is_ours(io, p, &target)) {
		qg_ctr_add(io->ctr, QG_CTR_DROP_NOT_OURS, 1);
		rte_pktmbuf_free(m);
		return;
	}
	/* Duplicate address detection comes from ::; the answer goes to all nodes, unsolicited (RFC
	 * 4861 7.2.4). */
	dad = memcmp(nd.src_ip, unspecified, 16) == 0;
	if (dad) {
		dst_mac = all_nodes_mac;
		dst_ip = all_nodes_ip;
	} else {
		dst_mac = nd.has_lladdr ? nd.lladdr : nd.src_mac;
		dst_ip = nd.src_ip;
		if (nd.has_lladdr) {
			ip_set(&src, AF_INET6, nd.src_ip);
			(void)qg_neigh_set(qg_dpdk.neigh, &src, nd.lladdr, 0);
		}
	}
	len = qg_net_nd_build_na(frame, room(m), dp->mac.addr_bytes, nd.target, dst_mac, dst_ip, !dad);
	reply_send(io, p, m, len, QG_CTR_ND_REPLIES);
}

static unsigned solicit_slot(const struct qg_addr *ip)
{
	uint32_t w[4], h;

	memcpy(w, ip->ip, sizeof(w));
	h = (w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9e3779b1u;
	return h >> (32 - QG_DPDK_SOLICIT_LOG);
}

void qg_dpdk_solicit(struct qg_io *io, unsigned p, const struct qg_addr *nexthop)
{
	const struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	unsigned slot = solicit_slot(nexthop);
	uint64_t now = rte_get_tsc_cycles();
	struct rte_mbuf *m;
	uint32_t len;

	if (io->solicit[slot].ip.family == nexthop->family &&
	    !memcmp(io->solicit[slot].ip.ip, nexthop->ip, sizeof(nexthop->ip)) &&
	    now - io->solicit[slot].tsc < QG_DPDK_SOLICIT_MS * io->tsc_per_ms)
		return;
	if ((nexthop->family == AF_INET && !dp->own4.family) ||
	    (nexthop->family == AF_INET6 && !dp->own6.family))
		return; /* no source address to ask from */
	io->solicit[slot].ip = *nexthop;
	io->solicit[slot].tsc = now;
	m = rte_pktmbuf_alloc(io->pool);
	if (!m) {
		qg_ctr_add(io->ctr, QG_CTR_ERR_MBUF_ALLOC, 1);
		return;
	}
	if (nexthop->family == AF_INET)
		len = qg_net_arp_build(rte_pktmbuf_mtod(m, uint8_t *), room(m), 1, bcast_mac,
				       dp->mac.addr_bytes, dp->own4.ip, zero_mac, nexthop->ip);
	else
		len = qg_net_nd_build_ns(rte_pktmbuf_mtod(m, uint8_t *), room(m), dp->mac.addr_bytes,
					 dp->own6.ip, nexthop->ip);
	reply_send(io, p, m, len, QG_CTR_NEIGH_REQUESTS);
}
