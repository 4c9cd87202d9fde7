/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UDP full NAT in place, the per-packet work of the kernel-bypass relay.
 * Checksums are patched (RFC 1624 eqn. 3) rather than recomputed so the cost
 * does not depend on the payload size. The address delta is computed once
 * and shared: the IPv4 header checksum and the UDP pseudo-header both cover
 * the addresses.
 */
#include <errno.h>
#include <sys/socket.h>

#include "net_internal.h"

/* ~old + new for a run of 32-bit words: one's complement "replace old by new". */
static inline uint64_t net_delta(const uint8_t *old, const uint8_t *new, size_t n32)
{
	uint64_t d = 0;
	size_t i;

	for (i = 0; i < n32; i++)
		d += (uint32_t)~net_ld32(old + 4 * i) + (uint64_t)net_ld32(new + 4 * i);
	return d;
}

int qg_net_nat_rewrite(uint8_t *frame, struct qg_net_pkt *p, const struct qg_addr *new_src,
		       const struct qg_addr *new_dst, const uint8_t src_mac[QG_NET_ETH_ALEN],
		       const uint8_t dst_mac[QG_NET_ETH_ALEN])
{
	uint8_t *l3 = frame + p->l3_off;
	uint8_t *udp = frame + p->l4_off;
	int is_v6 = p->src.family == AF_INET6;
	uint8_t ports[4];
	uint64_t d;
	uint16_t c;

	if (unlikely(new_src->family != p->src.family || new_dst->family != p->src.family))
		return -EAFNOSUPPORT;
	if (likely(!is_v6)) {
		if (unlikely(l3[8] <= 1))
			return -ETIMEDOUT; /* the caller may answer ICMP time exceeded; we only refuse */
		d = net_delta(l3 + 12, new_src->ip, 1) + net_delta(l3 + 16, new_dst->ip, 1);
		/*
		 * TTL is the high byte of the TTL/protocol word: ~m + m' is
		 * -0x0100 = ~0x0100 whatever the TTL (>= 2, no borrow). A
		 * constant avoids reading back the byte just stored.
		 */
		l3[8]--;
		c = net_ld16(l3 + 10);
		c = (uint16_t)~net_fold((uint16_t)~c + d + net_word(0xfeff));
		memcpy(l3 + 10, &c, 2);
		memcpy(l3 + 12, new_src->ip, 4);
		memcpy(l3 + 16, new_dst->ip, 4);
	} else {
		/* The hop limit is outside the pseudo-header and IPv6 has no header checksum. */
		if (unlikely(l3[7] <= 1))
			return -ETIMEDOUT;
		d = net_delta(l3 + 8, new_src->ip, 4) + net_delta(l3 + 24, new_dst->ip, 4);
		l3[7]--;
		memcpy(l3 + 8, new_src->ip, 16);
		memcpy(l3 + 24, new_dst->ip, 16);
	}
	memcpy(ports, &new_src->port, 2);
	memcpy(ports + 2, &new_dst->port, 2);
	c = net_ld16(udp + 6);
	/* UDP/IPv4 without a checksum stays without one; IPv6 always has one. */
	if (likely(c != 0 || is_v6)) {
		c = (uint16_t)~net_fold((uint16_t)~c + d + net_delta(udp, ports, 1));
		if (unlikely(c == 0))
			c = 0xffff;
		memcpy(udp + 6, &c, 2);
	}
	memcpy(udp, ports, 4);
	memcpy(frame, dst_mac, QG_NET_ETH_ALEN);
	memcpy(frame + QG_NET_ETH_ALEN, src_mac, QG_NET_ETH_ALEN);
	p->src = *new_src;
	p->dst = *new_dst;
	return 0;
}
