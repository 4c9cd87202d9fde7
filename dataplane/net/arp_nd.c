/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP (RFC 826, Ethernet/IPv4 only) and IPv6 neighbour discovery (RFC 4861
 * NS/NA only): what the gateway needs to resolve its next hops and answer
 * for its own addresses without a kernel stack. Readers validate as RFC 4861
 * 7.1.1/7.1.2 require, since the answers feed the neighbour table.
 */
#include <errno.h>
#include <sys/socket.h>

#include "net_internal.h"

#define ARP_HTYPE_ETHER 1
#define ND_OPT_SLLA	1
#define ND_OPT_TLLA	2
#define ND_LEN		24 /* ICMPv6 header, reserved/flags, target */
#define ND_OPT_LL_LEN	8  /* option type, length (in 8 bytes units), MAC */
#define ND_NA_FLAG_S	0x40
#define ND_NA_FLAG_O	0x20

int qg_net_arp_read(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p, struct qg_net_arp *out)
{
	const uint8_t *a = frame + p->l3_off;
	uint16_t op;

	if (p->l3_off > len || len - p->l3_off < NET_ARP_LEN)
		return -EINVAL;
	if (net_rd16(a) != ARP_HTYPE_ETHER || net_rd16(a + 2) != QG_NET_ETHERTYPE_IPV4 ||
	    a[4] != QG_NET_ETH_ALEN || a[5] != 4)
		return -EINVAL;
	op = net_rd16(a + 6);
	if (op != 1 && op != 2)
		return -EINVAL; /* RARP, InARP and friends are not ours */
	out->op = op;
	memcpy(out->sender_mac, a + 8, 6);
	memcpy(out->sender_ip, a + 14, 4);
	memcpy(out->target_mac, a + 18, 6);
	memcpy(out->target_ip, a + 24, 4);
	return 0;
}

static void net_eth_header(uint8_t *buf, const uint8_t dst[QG_NET_ETH_ALEN],
			   const uint8_t src[QG_NET_ETH_ALEN], uint16_t ethertype)
{
	memcpy(buf, dst, QG_NET_ETH_ALEN);
	memcpy(buf + QG_NET_ETH_ALEN, src, QG_NET_ETH_ALEN);
	net_wr16(buf + 12, ethertype);
}

uint32_t qg_net_arp_build(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t eth_dst[QG_NET_ETH_ALEN],
			  const uint8_t sender_mac[QG_NET_ETH_ALEN], const uint8_t sender_ip[4],
			  const uint8_t target_mac[QG_NET_ETH_ALEN], const uint8_t target_ip[4])
{
	uint8_t *a = buf + NET_ETH_HLEN;

	if (cap < NET_ETH_ZLEN)
		return 0;
	/* Zero first: the padding up to 60 bytes must not leak old buffer contents. */
	memset(buf, 0, NET_ETH_ZLEN);
	net_eth_header(buf, eth_dst, sender_mac, QG_NET_ETHERTYPE_ARP);
	net_wr16(a, ARP_HTYPE_ETHER);
	net_wr16(a + 2, QG_NET_ETHERTYPE_IPV4);
	a[4] = QG_NET_ETH_ALEN;
	a[5] = 4;
	net_wr16(a + 6, op);
	memcpy(a + 8, sender_mac, 6);
	memcpy(a + 14, sender_ip, 4);
	if (target_mac) /* NULL: unknown, as in a request */
		memcpy(a + 18, target_mac, 6);
	memcpy(a + 24, target_ip, 4);
	return NET_ETH_ZLEN;
}

static int net_is_unspecified(const uint8_t ip[16])
{
	static const uint8_t zero[16];

	return memcmp(ip, zero, 16) == 0;
}

/* Options after the fixed part: every one must be well formed (RFC 4861 7.1.1/7.1.2). */
static int net_nd_options(const uint8_t *opt, uint32_t n, uint8_t want, struct qg_net_nd *out)
{
	while (n) {
		uint32_t olen;

		if (n < 2)
			return -EINVAL;
		olen = (uint32_t)opt[1] * 8;
		if (olen == 0 || olen > n)
			return -EINVAL; /* length 0 would loop forever */
		/* Length 1 is the Ethernet form; other link types' sizes do not concern us. */
		if (opt[0] == want && olen == ND_OPT_LL_LEN) {
			memcpy(out->lladdr, opt + 2, QG_NET_ETH_ALEN);
			out->has_lladdr = 1;
		}
		opt += olen;
		n -= olen;
	}
	return 0;
}

int qg_net_nd_read(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p, struct qg_net_nd *out)
{
	const uint8_t *ip = frame + p->l3_off;
	const uint8_t *icmp = frame + p->l4_off;
	uint32_t plen;
	int ret;

	/* Bounds again rather than trusting p: the fuzzer may pair a pkt with another frame. */
	if ((uint32_t)p->l3_off + NET_IPV6_HLEN > len || p->l4_off != p->l3_off + NET_IPV6_HLEN ||
	    (ip[0] >> 4) != 6 || ip[6] != NET_PROTO_ICMPV6)
		return -EINVAL;
	plen = net_rd16(ip + 4);
	if (plen > len - p->l4_off || plen < ND_LEN)
		return -EINVAL;
	/* 255: the sender is on our link, no router forwarded it (RFC 4861 7.1.1). */
	if (ip[7] != 255 || icmp[1] != 0 || (icmp[0] != NET_ND_NS && icmp[0] != NET_ND_NA))
		return -EINVAL;
	if (net_fold(net_pseudo_sum(ip, 1, plen, NET_PROTO_ICMPV6) + net_sum(0, icmp, plen)) != 0xffff)
		return -EINVAL;
	/* A multicast target is meaningless; refusing it keeps it out of the neighbour table. */
	if (icmp[8] == 0xff)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->type = icmp[0];
	memcpy(out->target, icmp + 8, 16);
	memcpy(out->src_ip, ip + 8, 16);
	memcpy(out->src_mac, frame + QG_NET_ETH_ALEN, QG_NET_ETH_ALEN);
	if (icmp[0] == NET_ND_NA) {
		out->flags = icmp[4] & 0xe0;
		/* A solicited advertisement answers one node: never to a multicast group. */
		if ((out->flags & ND_NA_FLAG_S) && ip[24] == 0xff)
			return -EINVAL;
	}
	ret = net_nd_options(icmp + ND_LEN, plen - ND_LEN, icmp[0] == NET_ND_NS ? ND_OPT_SLLA : ND_OPT_TLLA,
			     out);
	if (ret)
		return ret;
	/* DAD probes (from ::) must not carry a source link-layer address. */
	if (icmp[0] == NET_ND_NS && out->has_lladdr && net_is_unspecified(out->src_ip))
		return -EINVAL;
	return 0;
}

/* IPv6 header + ICMPv6 ND message with an optional link-layer option; returns the frame length. */
static uint32_t net_nd_build(uint8_t *buf, uint32_t cap, const uint8_t src_ip[16], const uint8_t dst_ip[16],
			     uint8_t type, uint8_t flags, const uint8_t target[16], uint8_t opt_type,
			     const uint8_t lladdr[QG_NET_ETH_ALEN])
{
	uint32_t plen = ND_LEN + (opt_type ? ND_OPT_LL_LEN : 0);
	uint8_t *ip = buf + NET_ETH_HLEN;
	uint8_t *icmp = ip + NET_IPV6_HLEN;
	uint16_t c;

	if (cap < NET_ETH_HLEN + NET_IPV6_HLEN + plen)
		return 0;
	memset(ip, 0, NET_IPV6_HLEN + plen);
	ip[0] = 0x60;
	net_wr16(ip + 4, (uint16_t)plen);
	ip[6] = NET_PROTO_ICMPV6;
	ip[7] = 255;
	memcpy(ip + 8, src_ip, 16);
	memcpy(ip + 24, dst_ip, 16);
	icmp[0] = type;
	icmp[4] = flags;
	memcpy(icmp + 8, target, 16);
	if (opt_type) {
		icmp[ND_LEN] = opt_type;
		icmp[ND_LEN + 1] = 1;
		memcpy(icmp + ND_LEN + 2, lladdr, QG_NET_ETH_ALEN);
	}
	c = (uint16_t)~net_fold(net_pseudo_sum(ip, 1, plen, NET_PROTO_ICMPV6) + net_sum(0, icmp, plen));
	memcpy(icmp + 2, &c, 2);
	return NET_ETH_HLEN + NET_IPV6_HLEN + plen;
}

uint32_t qg_net_nd_build_na(uint8_t *buf, uint32_t cap, const uint8_t src_mac[QG_NET_ETH_ALEN],
			    const uint8_t target[16], const uint8_t dst_mac[QG_NET_ETH_ALEN],
			    const uint8_t dst_ip[16], int solicited)
{
	uint8_t flags = ND_NA_FLAG_O;
	uint32_t n;

	/* RFC 4861 7.2.4: S is never set towards a multicast group (an unsolicited NA to ff02::1). */
	if (solicited && dst_ip[0] != 0xff)
		flags |= ND_NA_FLAG_S;
	n = net_nd_build(buf, cap, target, dst_ip, NET_ND_NA, flags, target, ND_OPT_TLLA, src_mac);
	if (n)
		net_eth_header(buf, dst_mac, src_mac, QG_NET_ETHERTYPE_IPV6);
	return n;
}

uint32_t qg_net_nd_build_ns(uint8_t *buf, uint32_t cap, const uint8_t src_mac[QG_NET_ETH_ALEN],
			    const uint8_t src_ip[16], const uint8_t target[16])
{
	/* Solicited-node group ff02::1:ffXX:XXXX (RFC 4291 2.7.1), MAC 33:33:ff:XX:XX:XX (RFC 2464 7). */
	uint8_t group[16] = {
		0xff, 0x02, [11] = 0x01, [12] = 0xff, [13] = target[13], [14] = target[14], [15] = target[15]
	};
	uint8_t mac[QG_NET_ETH_ALEN] = { 0x33, 0x33, 0xff, target[13], target[14], target[15] };
	/* A DAD probe from :: carries no source link-layer option (RFC 4861 4.3). */
	uint8_t opt = net_is_unspecified(src_ip) ? 0 : ND_OPT_SLLA;
	uint32_t n;

	n = net_nd_build(buf, cap, src_ip, group, NET_ND_NS, 0, target, opt, src_mac);
	if (n)
		net_eth_header(buf, mac, src_mac, QG_NET_ETHERTYPE_IPV6);
	return n;
}

static int net_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qg_net_mac_parse(const char *text, uint8_t mac[QG_NET_ETH_ALEN])
{
	uint8_t tmp[QG_NET_ETH_ALEN];
	int i;

	if (!text)
		return -EINVAL;
	/* Exactly two digits per byte: "1:2:3:4:5:6" is more likely a typo than intent. */
	for (i = 0; i < QG_NET_ETH_ALEN; i++) {
		const char *s = text + 3 * i;
		int hi, lo;

		hi = net_hex(s[0]);
		lo = hi < 0 ? -1 : net_hex(s[1]);
		if (lo < 0 || s[2] != (i == QG_NET_ETH_ALEN - 1 ? '\0' : ':'))
			return -EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, tmp, sizeof(tmp));
	return 0;
}
