/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame classification for the kernel-bypass path. Every length is checked
 * against the frame before the bytes it covers are read: this runs on
 * whatever the wire delivers. Anything the gateway does not forward is
 * classified cheaply (OTHER) or counted by reason (MALFORMED).
 */
#include <sys/socket.h>

#include "net_internal.h"

static enum qg_net_kind net_bad(struct qg_net_pkt *out, enum qg_net_bad why)
{
	out->bad = (uint8_t)why;
	return QG_NET_MALFORMED;
}

/*
 * Store a whole endpoint: the 16 address bytes in one 16-byte store and port,
 * family and pad in one 4-byte store. The gateway reads these back at once
 * (VIP match, hashing, copies into the burst) with 8- and 16-byte loads; a load
 * that spans several narrower stores still in the store buffer cannot be
 * forwarded from them and waits for them to reach the cache. Field by field,
 * that wait was 7 % of a worker's time (perf annotate, docs/PERFORMANCE.md).
 */
typedef uint32_t net_v16 __attribute__((vector_size(16)));

static inline void net_addr_store(struct qg_addr *a, net_v16 ip, const uint8_t *port, uint8_t family)
{
	uint16_t p16;
	uint32_t t;

	/* Port, family and pad built in a register from loads (little or big endian alike). */
	memcpy(&p16, port, 2);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	t = (uint32_t)p16 | (uint32_t)family << 16;
#else
	t = (uint32_t)p16 << 16 | (uint32_t)family << 8;
#endif
	memcpy(a->ip, &ip, 16);
	memcpy((uint8_t *)a + 16, &t, 4);
}

/* The 4 IPv4 address bytes at p, zero-extended to a 16-byte address in a register. */
static inline net_v16 net_ip4_v16(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	return (net_v16){ w, 0, 0, 0 };
}

static inline net_v16 net_ip6_v16(const uint8_t *p)
{
	net_v16 v;

	memcpy(&v, p, 16);
	return v;
}

/* Ports of a datagram that is not (valid) UDP. */
static const uint8_t net_no_ports[4];

/* Both endpoints, once per frame; ports: source then destination port, network order. */
static inline void net_endpoints_store(struct qg_net_pkt *out, net_v16 src, net_v16 dst, const uint8_t *ports,
				       uint8_t family)
{
	net_addr_store(&out->src, src, ports, family);
	net_addr_store(&out->dst, dst, ports + 2, family);
}

/* UDP header at out->l4_off, ip_payload bytes of it covered by the IP length. */
static enum qg_net_kind net_parse_udp(const uint8_t *frame, uint32_t ip_payload, struct qg_net_pkt *out)
{
	const uint8_t *udp = frame + out->l4_off;
	uint16_t ulen;

	if (unlikely(ip_payload < NET_UDP_HLEN))
		return net_bad(out, QG_NET_BAD_L4);
	ulen = net_rd16(udp + 4);
	/* Bytes after the UDP length but inside the IP payload are ignored (RFC 768 allows it). */
	if (unlikely(ulen < NET_UDP_HLEN || ulen > ip_payload))
		return net_bad(out, QG_NET_BAD_L4);
	out->payload_off = (uint16_t)(out->l4_off + NET_UDP_HLEN);
	out->payload_len = (uint16_t)(ulen - NET_UDP_HLEN);
	return QG_NET_UDP;
}

static enum qg_net_kind net_parse_ipv4(const uint8_t *frame, uint32_t len, struct qg_net_pkt *out)
{
	const uint8_t *ip = frame + out->l3_off;
	uint32_t avail = len - out->l3_off;
	const uint8_t *ports = net_no_ports;
	enum qg_net_kind kind;
	uint32_t ihl, tot;

	if (unlikely(avail < NET_IPV4_HLEN))
		return net_bad(out, QG_NET_BAD_L3);
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	tot = net_rd16(ip + 2);
	/* tot <= avail also bounds the options: ihl <= tot. Shorter tot is Ethernet padding. */
	if (unlikely((ip[0] >> 4) != 4 || ihl < NET_IPV4_HLEN || tot < ihl || tot > avail))
		return net_bad(out, QG_NET_BAD_L3);
	out->l4_proto = ip[9];
	out->l4_off = (uint16_t)(out->l3_off + ihl);
	/* MF set or a nonzero offset: a piece of a datagram we do not reassemble. */
	if (unlikely(net_rd16(ip + 6) & 0x3fff))
		kind = net_bad(out, QG_NET_BAD_FRAGMENT);
	else if (unlikely(ip[9] != NET_PROTO_UDP))
		kind = QG_NET_OTHER;
	else if ((kind = net_parse_udp(frame, tot - ihl, out)) == QG_NET_UDP)
		ports = frame + out->l4_off;
	net_endpoints_store(out, net_ip4_v16(ip + 12), net_ip4_v16(ip + 16), ports, AF_INET);
	return kind;
}

/* An IPv6 next header other than UDP. */
static enum qg_net_kind net_ipv6_other(const uint8_t *ip, uint32_t plen, struct qg_net_pkt *out)
{
	switch (ip[6]) {
	case NET_PROTO_ICMPV6:
		if (unlikely(plen < 4))
			return net_bad(out, QG_NET_BAD_L4);
		if (ip[NET_IPV6_HLEN] == NET_ND_NS || ip[NET_IPV6_HLEN] == NET_ND_NA)
			return QG_NET_ND;
		return QG_NET_OTHER;
	case 44: /* fragment header */
		return net_bad(out, QG_NET_BAD_FRAGMENT);
	case 0:	  /* hop-by-hop options */
	case 43:  /* routing */
	case 51:  /* authentication header */
	case 60:  /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
		/* RFC 7045 extension headers: a UDP datagram may hide behind them, so count it. */
		return net_bad(out, QG_NET_BAD_EXTHDR);
	default:
		return QG_NET_OTHER;
	}
}

static enum qg_net_kind net_parse_ipv6(const uint8_t *frame, uint32_t len, struct qg_net_pkt *out)
{
	const uint8_t *ip = frame + out->l3_off;
	const uint8_t *ports = net_no_ports;
	uint32_t avail = len - out->l3_off;
	enum qg_net_kind kind;
	uint32_t plen;

	if (unlikely(avail < NET_IPV6_HLEN || (ip[0] >> 4) != 6))
		return net_bad(out, QG_NET_BAD_L3);
	plen = net_rd16(ip + 4);
	if (unlikely(plen > avail - NET_IPV6_HLEN))
		return net_bad(out, QG_NET_BAD_L3);
	out->l4_proto = ip[6];
	out->l4_off = (uint16_t)(out->l3_off + NET_IPV6_HLEN);
	if (likely(ip[6] == NET_PROTO_UDP)) {
		if ((kind = net_parse_udp(frame, plen, out)) == QG_NET_UDP)
			ports = frame + out->l4_off;
	} else {
		kind = net_ipv6_other(ip, plen, out);
	}
	net_endpoints_store(out, net_ip6_v16(ip + 8), net_ip6_v16(ip + 24), ports, AF_INET6);
	return kind;
}

enum qg_net_kind qg_net_parse(const uint8_t *frame, uint32_t len, struct qg_net_pkt *out)
{
	uint32_t off = NET_ETH_HLEN;
	uint16_t et;

	/* Clean addresses (zeroed ip tails, ports, pad) so callers can hash and memcmp them. */
	memset(out, 0, sizeof(*out));
	if (unlikely(len < NET_ETH_HLEN))
		return net_bad(out, QG_NET_BAD_L2);
	et = net_rd16(frame + 12);
	if (unlikely(et == QG_NET_ETHERTYPE_VLAN)) {
		if (unlikely(len < NET_ETH_HLEN + NET_VLAN_HLEN))
			return net_bad(out, QG_NET_BAD_L2);
		out->vlan = net_rd16(frame + 14) & 0x0fff;
		et = net_rd16(frame + 16);
		off += NET_VLAN_HLEN;
	}
	/* Offsets stay below 18 + 60 + 8 whatever len is: the uint16_t fields cannot wrap. */
	out->ethertype = et;
	out->l3_off = (uint16_t)off;
	if (likely(et == QG_NET_ETHERTYPE_IPV4))
		return net_parse_ipv4(frame, len, out);
	if (et == QG_NET_ETHERTYPE_IPV6)
		return net_parse_ipv6(frame, len, out);
	if (et == QG_NET_ETHERTYPE_ARP)
		return QG_NET_ARP;
	return QG_NET_OTHER; /* includes a second (QinQ) tag: one tag only */
}
