/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver: frame templates. Every datagram that fits
 * DP_TMPL_LEN is a copy of one template with its per-packet bytes patched:
 * client address and port (per flow), the DCID of QUIC short headers (per
 * flow, precomputed: the QUIC-LB CIDs are encoded once at start) and the
 * stamp; both checksums are finished from precomputed partial sums. QUIC
 * Initials and bigger datagrams are written by traffic.c in full.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_udp.h>

#include "dpdk_priv.h"

/* Fold a sum to 16 bits, not inverted: a partial sum to add to others. */
static inline uint16_t fold16(uint64_t s)
{
	return (uint16_t)~lg_csum_fold(s);
}

/*
 * Per flow, the sum of its DCID as it lies in the template (payload offset
 * 1), so the fast path adds it instead of summing the bytes per packet.
 */
static int dcid_sums(void)
{
	uint8_t buf[1 + LG_QUIC_MAX_CID_LEN] = { 0 };
	uint32_t dl = dps.model.dcid_len;

	dps.dcid_sum = malloc((size_t)dpo.flows * sizeof(*dps.dcid_sum));
	if (!dps.dcid_sum)
		return -ENOMEM;
	for (uint32_t f = 0; f < dpo.flows; f++) {
		lg_put_dcid(&dps.model, f, buf + 1);
		dps.dcid_sum[f] = fold16(lg_sum16(buf, 1 + dl));
	}
	return 0;
}

void dp_free_template(void)
{
	free(dps.dcid_sum);
	dps.dcid_sum = NULL;
}

/*
 * Headers and payload of an ordinary datagram (for QUIC: a short-header
 * packet) with the per-packet fields zero: source address and port, DCID,
 * stamp.
 */
int dp_build_template(void)
{
	uint8_t *p = dps.tmpl, *ip = p + LG_ETH_HLEN, *udp;
	uint32_t ulen = 8 + dpo.size;
	uint8_t pseudo[40] = { 0 };

	memset(dps.tmpl, 0, sizeof(dps.tmpl));
	memcpy(p, dpo.dst_mac, 6);
	memcpy(p + 6, dpo.src_mac, 6);
	if (dpo.family == AF_INET) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;

		p[12] = 0x08;
		h->version_ihl = 0x45;
		h->total_length = rte_cpu_to_be_16((uint16_t)(20 + ulen));
		h->time_to_live = 64;
		h->next_proto_id = IPPROTO_UDP;
		memcpy(&h->dst_addr, dpo.target.ip, 4);
		dps.sip_off = LG_ETH_HLEN + 12;
		dps.alen = 4;
		udp = ip + 20;
		dps.ip_base = lg_sum16(ip, 20);
		memcpy(pseudo + 4, dpo.target.ip, 4);
		pseudo[9] = IPPROTO_UDP;
		pseudo[10] = (uint8_t)(ulen >> 8);
		pseudo[11] = (uint8_t)ulen;
		dps.udp_base = lg_sum16(pseudo, 12);
	} else {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;

		p[12] = 0x86;
		p[13] = 0xdd;
		h->vtc_flow = rte_cpu_to_be_32(6u << 28);
		h->payload_len = rte_cpu_to_be_16((uint16_t)ulen);
		h->proto = IPPROTO_UDP;
		h->hop_limits = 64;
		memcpy(h->src_addr, dpo.src_ip, 12); /* the low 32 bits vary per flow */
		memcpy(h->dst_addr, dpo.target.ip, 16);
		dps.sip_off = LG_ETH_HLEN + 8 + 12;
		dps.alen = 4;
		udp = ip + 40;
		memcpy(pseudo, dpo.src_ip, 12);
		memcpy(pseudo + 16, dpo.target.ip, 16);
		pseudo[34] = (uint8_t)(ulen >> 8);
		pseudo[35] = (uint8_t)ulen;
		pseudo[39] = IPPROTO_UDP;
		dps.udp_base = lg_sum16(pseudo, 40);
	}
	memcpy(udp + 2, &dpo.target.port, 2);
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	dps.hdr_len = (uint32_t)(udp + 8 - p);
	dps.frame_len = dps.hdr_len + dpo.size;
	dps.udp_base += lg_sum16(udp, 8);
	dps.stamp_off = lg_short_hdr_len(&dps.model);
	/* Filler after the stamp is constant; the stamp itself is added per packet. */
	if (dps.frame_len <= sizeof(dps.tmpl)) {
		uint32_t fill = dps.stamp_off + LG_STAMP_LEN;

		if (dpo.payload == LG_PAYLOAD_QUIC)
			p[dps.hdr_len] = 0x40; /* short header, fixed bit; the DCID is per flow */
		memcpy(p + dps.hdr_len + fill, dps.model.filler + fill, dpo.size - fill);
		dps.udp_base += lg_sum16(p + dps.hdr_len, dpo.size);
		if (dpo.payload == LG_PAYLOAD_QUIC)
			return dcid_sums();
	}
	return 0;
}

/*
 * Datagrams that fit the template (UDP payloads, QUIC short headers): copy
 * it, patch source, DCID and stamp, and finish both checksums from the
 * precomputed sums (no pass over the payload).
 */
static inline void build_fast(uint8_t *p, uint32_t flow, uint64_t seq, uint64_t now)
{
	uint32_t stamp[6], ip;
	uint16_t port, ck;
	uint64_t s = 0;

	rte_memcpy(p, dps.tmpl, dps.frame_len);
	dp_flow_addr(flow, &ip, &port);
	memcpy(p + dps.sip_off, &ip, 4);
	memcpy(p + dps.hdr_len - 8, &port, 2);
	stamp[0] = LG_MAGIC;
	stamp[1] = flow;
	memcpy(&stamp[2], &seq, 8);
	memcpy(&stamp[4], &now, 8);
	memcpy(p + dps.hdr_len + dps.stamp_off, stamp, LG_STAMP_LEN);
	for (int i = 0; i < 6; i++)
		s += (stamp[i] & 0xffff) + (stamp[i] >> 16);
	if (dps.dcid_sum) {
		const struct lg_model *m = &dps.model;

		if (m->cids)
			rte_memcpy(p + dps.hdr_len + 1, m->cids + (size_t)flow * m->dcid_len, m->dcid_len);
		else
			lg_put_dcid(m, flow, p + dps.hdr_len + 1);
		/* At an odd offset the stamp's sum is byte-swapped (RFC 1071 byte order independence). */
		if (dps.stamp_off & 1)
			s = rte_bswap16(fold16(s));
		s += dps.dcid_sum[flow];
	}
	s += dps.udp_base + (ip & 0xffff) + (ip >> 16) + port;
	ck = lg_csum_fold(s);
	if (!ck)
		ck = 0xffff; /* 0 means "no checksum" over IPv4 and is invalid over IPv6 */
	memcpy(p + dps.hdr_len - 2, &ck, 2);
	if (dpo.family == AF_INET) {
		ck = lg_csum_fold(dps.ip_base + (ip & 0xffff) + (ip >> 16));
		memcpy(p + LG_ETH_HLEN + 10, &ck, 2);
	}
}

/* Anything else (QUIC Initials, large datagrams): traffic.c writes the payload, checksums in full. */
static uint32_t build_slow(uint8_t *p, uint32_t flow, uint64_t seq, uint64_t now)
{
	struct lg_flow f = { .id = flow };
	uint8_t *ip = p + LG_ETH_HLEN, *udp = p + dps.hdr_len - 8;
	uint32_t ipv, len;
	uint16_t port, ck = 0;

	rte_memcpy(p, dps.tmpl, dps.hdr_len);
	len = (uint32_t)lg_build(&dps.model, &f, seq, now, p + dps.hdr_len);
	dp_flow_addr(flow, &ipv, &port);
	memcpy(p + dps.sip_off, &ipv, 4);
	memcpy(udp, &port, 2);
	udp[4] = (uint8_t)((len + 8) >> 8);
	udp[5] = (uint8_t)(len + 8);
	memcpy(udp + 6, &ck, 2);
	if (dpo.family == AF_INET) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;

		h->total_length = rte_cpu_to_be_16((uint16_t)(len + 28));
		h->hdr_checksum = 0;
		h->hdr_checksum = rte_ipv4_cksum(h);
		ck = rte_ipv4_udptcp_cksum(h, udp);
	} else {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;

		h->payload_len = rte_cpu_to_be_16((uint16_t)(len + 8));
		ck = rte_ipv6_udptcp_cksum(h, udp);
	}
	memcpy(udp + 6, &ck, 2);
	return dps.hdr_len + len;
}

void dp_build_burst(struct rte_mbuf **m, unsigned n, uint64_t g, uint64_t now)
{
	uint32_t flow = (uint32_t)(g % dpo.flows);
	uint64_t seq = g / dpo.flows;
	int fits = dps.frame_len <= sizeof(dps.tmpl);
	int quic = dpo.payload == LG_PAYLOAD_QUIC;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = rte_pktmbuf_mtod(m[i], uint8_t *);
		uint32_t len = dps.frame_len;

		/* A QUIC flow's first datagram is its 1200-byte Initial. */
		if (fits && !(quic && seq == 0))
			build_fast(p, flow, seq, now);
		else
			len = build_slow(p, flow, seq, now);
		m[i]->data_len = (uint16_t)len;
		m[i]->pkt_len = len;
		if (++flow == dpo.flows) {
			flow = 0;
			seq++;
		}
	}
}
