/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver: frame parsing and the ARP / neighbour discovery
 * messages the generator needs to resolve the gateway and to answer for its
 * own (client and backend) addresses. Byte buffers only, no mbufs, so this
 * stays independent of qgate's dataplane/net (being written in parallel).
 */
#include <errno.h>
#include <string.h>

#include "dpdk.h"

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

enum lg_frame_kind lg_frame_parse(uint8_t *frame, uint32_t len, struct lg_frame *out)
{
	uint8_t *l3 = frame + LG_ETH_HLEN;
	uint32_t l3_len, ihl, tot, ulen;

	memset(out, 0, sizeof(*out));
	if (len < LG_ETH_HLEN)
		return LG_FRAME_OTHER;
	out->ethertype = get_be16(frame + 12);
	out->l3 = l3;
	l3_len = len - LG_ETH_HLEN;
	if (out->ethertype == 0x0806)
		return l3_len >= 28 ? LG_FRAME_ARP : LG_FRAME_OTHER;
	if (out->ethertype == 0x0800) {
		if (l3_len < 20 || (l3[0] >> 4) != 4)
			return LG_FRAME_OTHER;
		ihl = (l3[0] & 0xfu) * 4u;
		tot = get_be16(l3 + 2);
		/* Fragments (MF or offset) are never ours: we send whole datagrams. */
		if (ihl < 20 || tot < ihl + 8 || tot > l3_len || (get_be16(l3 + 6) & 0x3fff))
			return LG_FRAME_OTHER;
		out->proto = l3[9];
		out->l4 = l3 + ihl;
		if (out->proto != 17)
			return LG_FRAME_OTHER;
		ulen = get_be16(out->l4 + 4);
		if (ulen < 8 || ulen > tot - ihl)
			return LG_FRAME_OTHER;
	} else if (out->ethertype == 0x86dd) {
		if (l3_len < 40 || (l3[0] >> 4) != 6)
			return LG_FRAME_OTHER;
		tot = get_be16(l3 + 4);
		if (tot < 8 || tot > l3_len - 40)
			return LG_FRAME_OTHER;
		out->v6 = 1;
		out->proto = l3[6];
		out->l4 = l3 + 40;
		if (out->proto == 58)
			return (out->l4[0] == 135 || out->l4[0] == 136) && tot >= 24 ? LG_FRAME_ND
										     : LG_FRAME_OTHER;
		if (out->proto != 17)
			return LG_FRAME_OTHER;
		ulen = get_be16(out->l4 + 4);
		if (ulen < 8 || ulen > tot)
			return LG_FRAME_OTHER;
	} else {
		return LG_FRAME_OTHER;
	}
	out->payload = out->l4 + 8;
	out->payload_len = ulen - 8;
	return LG_FRAME_UDP;
}

uint32_t lg_arp_build(uint8_t *buf, uint16_t op, const uint8_t eth_dst[6], const uint8_t smac[6],
		      const uint8_t sip[4], const uint8_t tmac[6], const uint8_t tip[4])
{
	uint8_t *a = buf + LG_ETH_HLEN;

	memset(buf, 0, 60);
	memcpy(buf, eth_dst, 6);
	memcpy(buf + 6, smac, 6);
	put_be16(buf + 12, 0x0806);
	put_be16(a, 1);		 /* Ethernet */
	put_be16(a + 2, 0x0800); /* IPv4 */
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, smac, 6);
	memcpy(a + 14, sip, 4);
	memcpy(a + 18, tmac, 6);
	memcpy(a + 24, tip, 4);
	return 60; /* minimum Ethernet frame without FCS */
}

static uint16_t icmp6_csum(const uint8_t *ip6, const uint8_t *icmp, uint32_t len)
{
	uint64_t s = lg_sum16(ip6 + 8, 32); /* source and destination */
	uint8_t tail[8] = { 0 };

	tail[2] = (uint8_t)(len >> 8);
	tail[3] = (uint8_t)len;
	tail[7] = 58;
	s += lg_sum16(tail, sizeof(tail)) + lg_sum16(icmp, len);
	return lg_csum_fold(s);
}

uint32_t lg_nd_build(uint8_t *buf, uint8_t type, const uint8_t smac[6], const uint8_t sip[16],
		     const uint8_t dmac[6], const uint8_t dip[16], const uint8_t target[16])
{
	static const uint8_t snm[13] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff };
	uint8_t *ip = buf + LG_ETH_HLEN;
	uint8_t *icmp = ip + 40;
	uint16_t ck;

	memset(buf, 0, LG_ETH_HLEN + 40 + 32);
	if (dip) {
		memcpy(buf, dmac, 6);
		memcpy(ip + 24, dip, 16);
	} else {
		/* Solicited-node multicast group of target and its Ethernet mapping (RFC 4291, 2464). */
		buf[0] = 0x33;
		buf[1] = 0x33;
		buf[2] = 0xff;
		memcpy(buf + 3, target + 13, 3);
		memcpy(ip + 24, snm, 13);
		memcpy(ip + 37, target + 13, 3);
	}
	memcpy(buf + 6, smac, 6);
	put_be16(buf + 12, 0x86dd);
	ip[0] = 0x60;
	put_be16(ip + 4, 32);
	ip[6] = 58;
	ip[7] = 255; /* RFC 4861: ND messages must carry hop limit 255 */
	memcpy(ip + 8, sip, 16);
	icmp[0] = type;
	if (type == 136)
		icmp[4] = 0x60; /* solicited + override */
	memcpy(icmp + 8, target, 16);
	icmp[24] = type == 135 ? 1 : 2; /* source / target link-layer address option */
	icmp[25] = 1;
	memcpy(icmp + 26, smac, 6);
	ck = icmp6_csum(ip, icmp, 32);
	memcpy(icmp + 2, &ck, 2);
	return LG_ETH_HLEN + 40 + 32;
}

int lg_nd_read(const uint8_t *frame, const struct lg_frame *f, uint8_t *type, uint8_t target[16],
	       uint8_t lladdr[6])
{
	const uint8_t *icmp = f->l4;
	uint32_t len = get_be16(f->l3 + 4);

	if (f->l3[7] != 255 || icmp[1] != 0 || len < 24)
		return -EINVAL;
	*type = icmp[0];
	memcpy(target, icmp + 8, 16);
	memcpy(lladdr, frame + 6, 6);
	/* Options: 8-byte units; take the link-layer address one if present. */
	for (uint32_t off = 24; off + 8 <= len && icmp[off + 1]; off += icmp[off + 1] * 8u) {
		if ((icmp[off] == 1 || icmp[off] == 2) && icmp[off + 1] == 1) {
			memcpy(lladdr, icmp + off + 2, 6);
			break;
		}
	}
	return 0;
}
