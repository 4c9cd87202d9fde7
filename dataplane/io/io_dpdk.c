/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK backend: full NAT at packet level. Clients send to a service VIP; a
 * flow's datagrams leave toward its backend from a NAT address and a NAT
 * port (the flow's upstream), and the backend's replies come back to that
 * address and port. Each worker owns one RX and one TX queue on every port,
 * one mbuf pool and a disjoint range of NAT ports on every NAT address, so a
 * reply names its worker by its destination port; RSS may deliver it to
 * another worker, which hands it over through the owner's ring.
 *
 * Buffers are mbufs, forwarded in place: the payload the relay sees lies
 * inside the received frame, and the rewrite changes only addresses, ports,
 * TTL and checksums. The parse of each frame lives in the mbuf's private
 * area. The fast path takes no lock, allocates nothing and makes no syscall.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "dpdk_port.h"
#include "qgate/hash.h"
#include "qgate/log.h"
#include "qgate/mem.h"

#define RX_MAX	       256 /* largest burst (the config's burst max) */
#define IDLE_MAX_US    500 /* an idle worker naps at most this long: the NIC ring holds what arrives */
#define KERNEL_POLL_US 20  /* a worker reads its kernel_tap queues at most this often */
#define SVC_NONE       (-1)

static const enum qg_ctr_id bad_ctr[] = {
	[QG_NET_BAD_NONE] = QG_CTR_DROP_NOT_OURS,
	[QG_NET_BAD_L2] = QG_CTR_DROP_MALFORMED_L2,
	[QG_NET_BAD_L3] = QG_CTR_DROP_MALFORMED_L3,
	[QG_NET_BAD_L4] = QG_CTR_DROP_MALFORMED_L4,
	[QG_NET_BAD_FRAGMENT] = QG_CTR_DROP_MALFORMED_FRAGMENT,
	[QG_NET_BAD_EXTHDR] = QG_CTR_DROP_MALFORMED_EXTHDR,
	[QG_NET_BAD_ARP] = QG_CTR_DROP_MALFORMED_ARP,
	[QG_NET_BAD_ND] = QG_CTR_DROP_MALFORMED_ND,
};

static inline int ip_equal(const struct qg_addr *a, const struct qg_addr *b)
{
	return a->family == b->family && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

static inline int ip_unspecified(const struct qg_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->ip, zero, sizeof(zero)) == 0;
}

static inline void drop(struct qg_io *io, struct rte_mbuf *m, enum qg_ctr_id why)
{
	qg_ctr_add(io->ctr, why, 1);
	rte_pktmbuf_free(m);
}

void qg_dpdk_to_kernel(struct qg_io *io, unsigned p, struct rte_mbuf *m)
{
	const struct qg_dpdk_port *dp = &qg_dpdk.ports[p];

	if (!dp->has_tap) {
		drop(io, m, QG_CTR_DROP_NOT_OURS);
		return;
	}
	/* Rare by nature (what the host itself talks): one frame per call, no batching. */
	if (rte_eth_tx_burst(dp->tap_id, io->queue, &m, 1) == 1)
		qg_ctr_add(io->ctr, QG_CTR_KERNEL_TX, 1);
	else
		drop(io, m, QG_CTR_DROP_KERNEL_FULL);
}

/*
 * What the kernel sent on the ports' kernel_taps, out through the ports. A
 * TAP receive is a read() even when empty, so it is polled every
 * KERNEL_POLL_US at most, not on every loop of a busy worker.
 */
static void kernel_rx(struct qg_io *io)
{
	struct rte_mbuf *mb[RX_MAX];
	uint64_t now = rte_rdtsc();

	if (now < io->kernel_next_tsc)
		return;
	io->kernel_next_tsc = now + io->tsc_per_ms * KERNEL_POLL_US / 1000;
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++) {
		uint16_t nb;

		if (!qg_dpdk.ports[p].has_tap)
			continue;
		nb = rte_eth_rx_burst(qg_dpdk.ports[p].tap_id, io->queue, mb, RX_MAX);
		for (uint16_t i = 0; i < nb; i++)
			qg_dpdk_tx_queue(io, p, mb[i], 0); /* not UDP we relay: not in tx_bytes */
		qg_ctr_add(io->ctr, QG_CTR_KERNEL_RX, nb);
	}
}

static int dpdk_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static uint32_t dpdk_max_upstreams(const struct qg_io *io)
{
	return io->n_up;
}

/* ---- transmit ---- */

/*
 * tx_bytes is counted here, for the frames the TX ring took (the first `sent`):
 * a frame only queued in q may still be dropped as tx_full.
 */
static void txq_flush(struct qg_io *io, unsigned p)
{
	struct qg_dpdk_txq *q = &io->txq[p];
	uint64_t bytes = 0;
	uint16_t sent;

	if (!q->n)
		return;
	sent = rte_eth_tx_burst(qg_dpdk.ports[p].port_id, io->queue, q->m, (uint16_t)q->n);
	for (uint16_t i = 0; i < sent; i++)
		bytes += q->len[i];
	qg_ctr_add(io->ctr, QG_CTR_TX_BYTES, bytes);
	if (unlikely(sent < q->n)) {
		qg_ctr_add(io->ctr, QG_CTR_DROP_TX_FULL, q->n - sent);
		rte_pktmbuf_free_bulk(q->m + sent, q->n - sent);
	}
	q->n = 0;
}

void qg_dpdk_tx_queue(struct qg_io *io, unsigned p, struct rte_mbuf *m, uint32_t payload_len)
{
	struct qg_dpdk_txq *q = &io->txq[p];

	if (unlikely(q->n == QG_DPDK_TXBUF))
		txq_flush(io, p);
	q->len[q->n] = (uint16_t)payload_len;
	q->m[q->n++] = m;
}

static void dpdk_flush(struct qg_io *io)
{
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++)
		txq_flush(io, p);
}

/* Let the NIC fill in the checksums: the UDP field gets the pseudo-header sum it starts from. */
static void csum_offload(struct rte_mbuf *m, const struct qg_net_pkt *np, uint8_t *frame)
{
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(frame + np->l4_off);

	m->l2_len = np->l3_off;
	m->l3_len = (uint16_t)(np->l4_off - np->l3_off);
	if (np->ethertype == QG_NET_ETHERTYPE_IPV4) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + np->l3_off);

		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
		ip->hdr_checksum = 0;
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(frame + np->l3_off);

		m->ol_flags = RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv6_phdr_cksum(ip6, m->ol_flags);
	}
}

/* Rewrite a received frame to go from src to dst through port p's next hop, and queue it. */
/* MAC of a next hop: the worker's cache while the table is unchanged, else the shared table. */
static inline int nexthop_mac(struct qg_io *io, const struct qg_addr *nh, uint8_t mac[QG_NET_ETH_ALEN])
{
	uint64_t gen = qg_neigh_generation(qg_dpdk.neigh);
	unsigned h = (nh->ip[3] ^ nh->ip[15] ^ nh->ip[14]) & (QG_DPDK_NH_CACHE - 1);
	typeof(&io->nh_cache[0]) c = &io->nh_cache[h];

	if (likely(c->gen == gen && gen && memcmp(c->ip.ip, nh->ip, 16) == 0 && c->ip.family == nh->family)) {
		memcpy(mac, c->mac, QG_NET_ETH_ALEN);
		return 0;
	}
	if (qg_neigh_lookup(qg_dpdk.neigh, nh, mac))
		return -ENOENT;
	c->ip = *nh;
	c->gen = gen;
	memcpy(c->mac, mac, QG_NET_ETH_ALEN);
	return 0;
}

static void egress(struct qg_io *io, struct rte_mbuf *m, const struct qg_addr *src, const struct qg_addr *dst,
		   unsigned p, const struct qg_addr *nexthop)
{
	struct qg_net_pkt *np = qg_dpdk_meta(m);
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t mac[QG_NET_ETH_ALEN];
	int rc;

	if (unlikely(np->src.family != dst->family)) {
		drop(io, m, QG_CTR_DROP_NAT_FAMILY);
		return;
	}
	if (unlikely(nexthop_mac(io, nexthop, mac))) {
		qg_dpdk_solicit(io, p, nexthop);
		drop(io, m, QG_CTR_DROP_NEIGH_UNRESOLVED);
		return;
	}
	rc = qg_net_nat_rewrite(frame, np, src, dst, qg_dpdk.ports[p].mac.addr_bytes, mac);
	if (unlikely(rc)) {
		drop(io, m, rc == -ETIMEDOUT ? QG_CTR_DROP_TTL_EXPIRED : QG_CTR_DROP_NAT_FAMILY);
		return;
	}
	if (qg_dpdk.ports[p].csum_offload)
		csum_offload(m, np, frame);
	qg_dpdk_tx_queue(io, p, m, np->payload_len);
}

/* The ethdev's own counters: what the NIC saw, including what never reached a worker. */
static int dpdk_port_stats(unsigned i, struct qg_io_port_stats *out)
{
	struct rte_eth_stats st;
	int rc;

	if (i >= qg_dpdk.n_ports || !qg_dpdk.ports[i].cfg)
		return -ENOENT;
	rc = rte_eth_stats_get(qg_dpdk.ports[i].port_id, &st);
	if (rc)
		return rc < 0 ? rc : -EIO;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", qg_dpdk.ports[i].cfg->name);
	out->rx_packets = st.ipackets;
	out->rx_bytes = st.ibytes;
	out->tx_packets = st.opackets;
	out->tx_bytes = st.obytes;
	out->rx_missed = st.imissed;
	out->rx_nombuf = st.rx_nombuf;
	out->rx_errors = st.ierrors;
	out->tx_errors = st.oerrors;
	return 0;
}

static void dpdk_upstream_state(const struct qg_io *io, const void **base, size_t *stride)
{
	*base = io->up_dest;
	*stride = sizeof(*io->up_dest);
}

static void dpdk_tx_backend(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	/* One NAT port per flow, a miss each with many flows: the relay prefetched every packet's entry
	 * of up_dest as its lookup named it (dpdk_upstream_state), so none is issued again here. */
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i].priv;
		uint32_t up = pkts[i].upstream, d;
		const struct qg_dpdk_dest *u;
		struct qg_addr src;

		if (i + 1 < n)
			rte_prefetch0(qg_dpdk_meta(pkts[i + 1].priv));
		d = likely(up < io->n_up) ? io->up_dest[up] : 0;
		if (unlikely(!d)) {
			drop(io, m, QG_CTR_DROP_TX_BACKEND);
			continue;
		}
		u = &io->dest[d - 1];
		src = qg_dpdk.nat[up / io->ppw].addr;
		src.port = htons((uint16_t)(io->port_lo + up % io->ppw));
		egress(io, m, &src, &u->backend, u->port, &u->nexthop);
	}
}

/*
 * The pipeline replaced the payload with a shorter answer (e.g. Version
 * Negotiation): cut the frame, fix the IP and UDP lengths and recompute the
 * checksums, so the NAT rewrite that follows starts from valid ones.
 */
static void resize_payload(struct rte_mbuf *m, uint32_t len)
{
	struct qg_net_pkt *np = qg_dpdk_meta(m);
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t frame_len = np->payload_off + len;
	uint16_t udp_len = (uint16_t)(8 + len);

	if (rte_pktmbuf_pkt_len(m) > frame_len)
		rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - frame_len));
	np->payload_len = (uint16_t)len;
	frame[np->l4_off + 4] = (uint8_t)(udp_len >> 8);
	frame[np->l4_off + 5] = (uint8_t)udp_len;
	if (np->ethertype == QG_NET_ETHERTYPE_IPV4) {
		uint16_t tot = (uint16_t)(np->l4_off - np->l3_off + udp_len);

		frame[np->l3_off + 2] = (uint8_t)(tot >> 8);
		frame[np->l3_off + 3] = (uint8_t)tot;
	} else {
		frame[np->l3_off + 4] = (uint8_t)(udp_len >> 8);
		frame[np->l3_off + 5] = (uint8_t)udp_len;
	}
	qg_net_checksums_fill(frame, np);
}

static void dpdk_tx_client(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i].priv;
		struct qg_addr src, nexthop;
		unsigned p;

		if (i + 1 < n)
			rte_prefetch0(qg_dpdk_meta(pkts[i + 1].priv));
		if (unlikely(pkts[i].svc >= io->n_services)) {
			drop(io, m, QG_CTR_DROP_TX_CLIENT);
			continue;
		}
		if (unlikely(qg_dpdk_route(&pkts[i].peer, &p, &nexthop))) {
			drop(io, m, QG_CTR_DROP_NO_ROUTE);
			continue;
		}
		if (unlikely(pkts[i].flags & QG_PKT_F_LEN_CHANGED))
			resize_payload(m, pkts[i].len);
		src = io->listen[pkts[i].svc];
		if (unlikely(ip_unspecified(&src))) {
			/* A wildcard service answers from the egress port's own address. */
			const struct qg_addr *own =
				src.family == AF_INET ? &qg_dpdk.ports[p].own4 : &qg_dpdk.ports[p].own6;
			uint16_t port = src.port;

			src = *own;
			src.port = port;
		}
		egress(io, m, &src, &pkts[i].peer, p, &nexthop);
	}
}

static void dpdk_release(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	(void)io;
	for (unsigned i = 0; i < n; i++)
		rte_pktmbuf_free(pkts[i].priv);
}

/* ---- receive ---- */

static inline int find_vip(const struct qg_io *io, const struct qg_addr *dst)
{
	for (unsigned s = 0; s < io->n_services; s++)
		if (qg_addr_equal(&io->listen[s], dst))
			return (int)s;
	if (unlikely(io->vip_wildcard)) {
		for (unsigned s = 0; s < io->n_services; s++) {
			const struct qg_addr *l = &io->listen[s];

			if (l->family == dst->family && l->port == dst->port && ip_unspecified(l))
				return (int)s;
		}
	}
	return SVC_NONE;
}

static inline int find_nat(const struct qg_addr *dst)
{
	for (unsigned k = 0; k < qg_dpdk.n_nat; k++)
		if (ip_equal(&qg_dpdk.nat[k].addr, dst))
			return (int)k;
	return -1;
}

static inline void pkt_fill(struct qg_io *io, struct qg_pkt *pkt, struct rte_mbuf *m,
			    const struct qg_net_pkt *np)
{
	pkt->data = rte_pktmbuf_mtod_offset(m, uint8_t *, np->payload_off);
	pkt->len = np->payload_len;
	pkt->buf = 0;
	pkt->flags = np->payload_len > io->max_datagram ? QG_PKT_F_OVERSIZE : 0;
	pkt->peer = np->src;
	pkt->priv = m;
}

/* A UDP datagram for a NAT address: a reply on one of our upstreams, or another worker's. */
static int rx_nat(struct qg_io *io, struct rte_mbuf *m, const struct qg_net_pkt *np, int k, int from_ring,
		  struct qg_pkt *pkt)
{
	uint32_t port = ntohs(np->dst.port), off, owner, up, d;

	if (unlikely(port < QG_DPDK_NAT_FIRST))
		goto not_ours;
	off = port - QG_DPDK_NAT_FIRST;
	owner = off / io->ppw;
	if (unlikely(owner >= qg_dpdk.n_workers))
		goto not_ours;
	if (owner != io->worker) {
		if (unlikely(from_ring))
			goto not_ours;
		if (rte_ring_mp_enqueue(qg_dpdk.rings[owner], m) == 0)
			qg_ctr_add(io->ctr, QG_CTR_HANDOVER, 1);
		else
			drop(io, m, QG_CTR_DROP_HANDOVER_FULL);
		return 0;
	}
	up = (uint32_t)k * io->ppw + (off - owner * io->ppw);
	d = io->up_dest[up];
	/* Only the backend the port was opened toward may answer through it. */
	if (d && !qg_addr_equal(&io->dest[d - 1].backend, &np->src))
		goto not_ours;
	/* A port no flow holds: with a kernel_tap, the kernel's own (its ephemeral ports share the
	 * address); else a late reply the relay counts as stale. */
	if (!d && qg_dpdk.ports[qg_dpdk.nat[k].port].has_tap)
		goto not_ours;
	pkt_fill(io, pkt, m, np);
	pkt->dir = QG_PKT_FROM_BACKEND;
	pkt->upstream = up;
	pkt->svc = 0;
	return 1;
not_ours:
	qg_dpdk_to_kernel(io, qg_dpdk.nat[k].port, m);
	return 0;
}

/* Classify one frame. @return 1 when it became *pkt, 0 when it was consumed (answered, handed over, dropped).
 */
static int rx_one(struct qg_io *io, struct rte_mbuf *m, unsigned p, int from_ring, struct qg_pkt *pkt)
{
	struct qg_net_pkt *np = qg_dpdk_meta(m);
	int svc, k;

	if (!from_ring) {
		enum qg_net_kind kind;

		if (unlikely(m->nb_segs > 1)) {
			/* Scattered frames (beyond the mbuf's data room) are not relayed. */
			drop(io, m, QG_CTR_DROP_OVERSIZE);
			return 0;
		}
		kind = qg_net_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, np);
		switch (kind) {
		case QG_NET_UDP:
			break;
		case QG_NET_ARP:
			qg_dpdk_arp_input(io, p, m);
			return 0;
		case QG_NET_ND:
			qg_dpdk_nd_input(io, p, m);
			return 0;
		case QG_NET_MALFORMED:
			drop(io, m,
			     np->bad < QG_ARRAY_SIZE(bad_ctr) ? bad_ctr[np->bad] : QG_CTR_DROP_NOT_OURS);
			return 0;
		default:
			qg_dpdk_to_kernel(io, p, m);
			return 0;
		}
		svc = find_vip(io, &np->dst);
		if (svc != SVC_NONE) {
			pkt_fill(io, pkt, m, np);
			pkt->dir = QG_PKT_FROM_CLIENT;
			pkt->svc = (uint16_t)svc;
			pkt->upstream = 0;
			return 1;
		}
	}
	k = find_nat(&np->dst);
	if (k < 0) {
		if (from_ring)
			drop(io, m, QG_CTR_DROP_NOT_OURS);
		else
			qg_dpdk_to_kernel(io, p, m);
		return 0;
	}
	return rx_nat(io, m, np, k, from_ring, pkt);
}

static unsigned dpdk_rx_burst(struct qg_io *io, struct qg_pkt *pkts, unsigned n, unsigned wait_us)
{
	struct rte_mbuf *mb[RX_MAX];
	unsigned cnt = 0, nb;

	if (n > RX_MAX)
		n = RX_MAX;
	/* Replies other workers received for our NAT ports first: they have waited longest. */
	nb = rte_ring_sc_dequeue_burst(io->ring, (void **)mb, n, NULL);
	for (unsigned i = 0; i < nb; i++)
		cnt += (unsigned)rx_one(io, mb[i], 0, 1, &pkts[cnt]);
	for (unsigned p = 0; p < qg_dpdk.n_ports && cnt < n; p++) {
		nb = rte_eth_rx_burst(qg_dpdk.ports[p].port_id, io->queue, mb, (uint16_t)(n - cnt));
		if (nb)
			rte_prefetch0(rte_pktmbuf_mtod(mb[0], void *));
		for (unsigned i = 0; i < nb; i++) {
			if (i + 1 < nb) {
				rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
				rte_prefetch0(qg_dpdk_meta(mb[i + 1]));
			}
			cnt += (unsigned)rx_one(io, mb[i], p, 0, &pkts[cnt]);
		}
	}
	if (unlikely(qg_dpdk.n_taps))
		kernel_rx(io);
	if (!cnt && wait_us) {
		/* Only when idle (the worker asks to wait after many empty polls): give the CPU back briefly.
		 */
		rte_delay_us_sleep(wait_us < IDLE_MAX_US ? wait_us : IDLE_MAX_US);
	}
	return cnt;
}

/* ---- upstreams (NAT ports) ---- */

/* The backend alone picks the chain (next hop and port follow from it through the route): one
 * hash per new flow instead of two. */
static inline uint32_t dest_bucket_of(const struct qg_addr *backend)
{
	return (uint32_t)qg_hash_addr(backend, 0) & (QG_DPDK_DEST_BUCKETS - 1);
}

/* The destination (backend, next hop, port), shared or new, with one more reference. Never fails:
 * each reference is an upstream, and there are as many entries as upstreams. */
static uint32_t dest_get(struct qg_io *io, const struct qg_addr *backend, const struct qg_addr *nexthop,
			 unsigned port)
{
	uint32_t *b = &io->dest_bucket[dest_bucket_of(backend)];
	struct qg_dpdk_dest *e;
	uint32_t d;

	for (d = *b; d != QG_DPDK_DEST_NONE; d = e->next) {
		e = &io->dest[d];
		if (e->port == port && qg_addr_equal(&e->backend, backend) &&
		    qg_addr_equal(&e->nexthop, nexthop)) {
			e->refs++;
			return d;
		}
	}
	if (io->dest_free != QG_DPDK_DEST_NONE) {
		d = io->dest_free;
		io->dest_free = io->dest[d].next;
	} else {
		d = io->dest_used++;
	}
	e = &io->dest[d];
	e->backend = *backend;
	e->nexthop = *nexthop;
	e->port = (uint8_t)port;
	e->refs = 1;
	e->next = *b;
	*b = d;
	return d;
}

static void dest_put(struct qg_io *io, uint32_t d)
{
	struct qg_dpdk_dest *e = &io->dest[d];
	uint32_t *link;

	if (--e->refs)
		return;
	link = &io->dest_bucket[dest_bucket_of(&e->backend)];
	while (*link != d)
		link = &io->dest[*link].next;
	*link = e->next;
	e->next = io->dest_free;
	io->dest_free = d;
}

static int dpdk_upstream_open(struct qg_io *io, uint32_t backend_slot, const struct qg_addr *backend,
			      uint32_t *up_out)
{
	struct qg_addr nexthop;
	unsigned p;
	int have_family = 0;

	(void)backend_slot;
	if (qg_dpdk_route(backend, &p, &nexthop))
		return -ENETUNREACH;
	for (unsigned j = 0; j < qg_dpdk.n_nat; j++) {
		unsigned k = (io->nat_cursor + j) % qg_dpdk.n_nat;
		uint32_t off, up;

		if (qg_dpdk.nat[k].port != p || qg_dpdk.nat[k].addr.family != backend->family)
			continue;
		have_family = 1;
		if (!io->free_n[k])
			continue;
		off = io->free_q[(size_t)k * io->ppw + io->free_head[k]];
		io->free_head[k] = io->free_head[k] + 1 == io->ppw ? 0 : io->free_head[k] + 1;
		io->free_n[k]--;
		up = k * io->ppw + off;
		io->up_dest[up] = dest_get(io, backend, &nexthop, p) + 1;
		io->nat_cursor = k + 1;
		*up_out = up;
		return 0;
	}
	return have_family ? -ENOSPC : -EAFNOSUPPORT;
}

static void dpdk_upstream_close(struct qg_io *io, uint32_t up, int reuse)
{
	uint32_t k, tail;

	(void)reuse; /* a NAT port holds nothing: reusable at once either way */
	if (up >= io->n_up || !io->up_dest[up])
		return;
	k = up / io->ppw;
	tail = io->free_head[k] + io->free_n[k];
	if (tail >= io->ppw)
		tail -= io->ppw;
	io->free_q[(size_t)k * io->ppw + tail] = (uint16_t)(up % io->ppw);
	io->free_n[k]++;
	dest_put(io, io->up_dest[up] - 1);
	io->up_dest[up] = 0;
}

/* ---- life cycle ---- */

static void dpdk_destroy(struct qg_io *io)
{
	if (!io)
		return;
	for (unsigned p = 0; p < QG_DPDK_MAX_PORTS; p++)
		if (io->txq[p].n)
			rte_pktmbuf_free_bulk(io->txq[p].m, io->txq[p].n);
	free((void *)io->listen);
	qg_mem_free(io->up_dest, sizeof(*io->up_dest) * io->n_up);
	free(io->dest);
	free(io->dest_bucket);
	free(io->free_q);
	free(io->free_head);
	free(io->free_n);
	free(io);
}

static int dpdk_create(const struct qg_io_params *p, struct qg_io **out)
{
	size_t size = (sizeof(struct qg_io) + QG_CACHE_LINE - 1) / QG_CACHE_LINE * QG_CACHE_LINE;
	struct qg_addr *listen;
	struct qg_io *io;

	if (!qg_dpdk.eal_ready || p->worker >= qg_dpdk.n_workers) {
		QG_LOG_ERR("dpdk: worker %u has no queues (setup not run?)", p->worker);
		return -EINVAL;
	}
	io = aligned_alloc(QG_CACHE_LINE, size);
	if (!io)
		return -ENOMEM;
	memset(io, 0, size);
	io->ctr = p->ctr;
	io->worker = p->worker;
	io->queue = (uint16_t)p->worker;
	io->pool = qg_dpdk.pools[p->worker];
	io->ring = qg_dpdk.rings[p->worker];
	io->max_datagram = p->max_datagram;
	io->ppw = qg_dpdk.ports_per_worker;
	io->port_lo = QG_DPDK_NAT_FIRST + p->worker * io->ppw;
	io->n_up = qg_dpdk.n_nat * io->ppw;
	io->tsc_per_ms = rte_get_tsc_hz() / 1000;
	io->n_services = p->n_services;
	if (p->n_services > QG_CONFIG_MAX_SERVICES)
		return -EINVAL;
	listen = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*listen));
	io->listen = listen;
	/* Read for every datagram toward a backend, at random with many flows: huge pages. */
	io->up_dest = qg_mem_alloc(sizeof(*io->up_dest) * io->n_up);
	/* Not zeroed: only entries below dest_used are ever read, so untouched pages stay unmapped. */
	io->dest = malloc(sizeof(*io->dest) * io->n_up);
	io->dest_bucket = malloc(sizeof(*io->dest_bucket) * QG_DPDK_DEST_BUCKETS);
	io->dest_free = QG_DPDK_DEST_NONE;
	io->free_q = malloc(sizeof(*io->free_q) * io->n_up);
	io->free_head = calloc(qg_dpdk.n_nat, sizeof(*io->free_head));
	io->free_n = calloc(qg_dpdk.n_nat, sizeof(*io->free_n));
	if (!listen || !io->up_dest || !io->dest || !io->dest_bucket || !io->free_q || !io->free_head ||
	    !io->free_n) {
		dpdk_destroy(io);
		return -ENOMEM;
	}
	memset(io->dest_bucket, 0xff, sizeof(*io->dest_bucket) * QG_DPDK_DEST_BUCKETS);
	for (unsigned s = 0; s < p->n_services; s++) {
		listen[s] = p->listen[s];
		io->vip_wildcard |= ip_unspecified(&listen[s]);
	}
	for (unsigned k = 0; k < qg_dpdk.n_nat; k++) {
		for (uint32_t i = 0; i < io->ppw; i++)
			io->free_q[(size_t)k * io->ppw + i] = (uint16_t)i;
		io->free_n[k] = io->ppw;
	}
	*out = io;
	return 0;
}

/* On the worker's thread: an lcore id makes the mempool's per-lcore cache work for it. */
static int dpdk_start(struct qg_io *io)
{
	(void)io;
	if (rte_thread_register() != 0)
		return rte_errno ? -rte_errno : -EINVAL;
	return 0;
}

/* On the worker's thread after its loop: send what is queued, give the lcore id back. */
static void dpdk_stop(struct qg_io *io)
{
	dpdk_flush(io);
	rte_thread_unregister();
}

/* VIPs are matched in frames: a reload only changes the table find_vip() reads. */
static void dpdk_vip_refresh(struct qg_io *io)
{
	io->vip_wildcard = 0;
	for (unsigned s = 0; s < io->n_services; s++)
		io->vip_wildcard |= io->listen[s].family && ip_unspecified(&io->listen[s]);
}

static int dpdk_svc_attach(struct qg_io *io, unsigned svc, const struct qg_addr *listen, int fd, uint32_t uid)
{
	(void)uid;
	if (fd >= 0)
		close(fd);
	if (svc >= QG_CONFIG_MAX_SERVICES)
		return -EINVAL;
	((struct qg_addr *)io->listen)[svc] = *listen;
	if (svc >= io->n_services)
		io->n_services = svc + 1;
	dpdk_vip_refresh(io);
	return 0;
}

static void dpdk_svc_detach(struct qg_io *io, unsigned svc)
{
	if (svc >= io->n_services)
		return;
	memset((struct qg_addr *)&io->listen[svc], 0, sizeof(io->listen[svc]));
	dpdk_vip_refresh(io);
}

const struct qg_io_ops qg_io_dpdk_ops = {
	.name = "dpdk",
	.probe = dpdk_probe,
	.setup = qg_dpdk_setup,
	.teardown = qg_dpdk_teardown,
	.max_upstreams = dpdk_max_upstreams,
	.create = dpdk_create,
	.destroy = dpdk_destroy,
	.rx_burst = dpdk_rx_burst,
	.tx_backend = dpdk_tx_backend,
	.tx_client = dpdk_tx_client,
	.release = dpdk_release,
	.upstream_open = dpdk_upstream_open,
	.svc_attach = dpdk_svc_attach,
	.svc_detach = dpdk_svc_detach,
	.upstream_close = dpdk_upstream_close,
	.start = dpdk_start,
	.stop = dpdk_stop,
	.flush = dpdk_flush,
	.port_stats = dpdk_port_stats,
	.upstream_state = dpdk_upstream_state,
};
