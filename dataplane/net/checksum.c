/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internet checksums: full computation (RFC 1071), verification and refill
 * of the IPv4 header and UDP checksums of a parsed frame, and the RFC 1624
 * incremental update used by the NAT rewrite.
 */
#include <sys/socket.h>

#include "net_internal.h"

uint16_t qg_net_csum(const void *data, size_t len)
{
	return (uint16_t)~net_fold(net_sum(0, (const uint8_t *)data, len));
}

uint16_t qg_net_csum_replace(uint16_t csum, const uint16_t *old_words, const uint16_t *new_words,
			     size_t n_words)
{
	/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'); eqn. 2 could produce -0 (0xffff vs 0x0000). */
	uint64_t acc = (uint16_t)~csum;
	size_t i;

	for (i = 0; i < n_words; i++)
		acc += (uint16_t)~old_words[i] + (uint32_t)new_words[i];
	return (uint16_t)~net_fold(acc);
}

/*
 * The IP header and UDP datagram of p lie inside len bytes. Checked again
 * here rather than trusted: callers may hand a pkt from another frame.
 */
static int net_udp_bounds(uint32_t len, const struct qg_net_pkt *p, int is_v6)
{
	uint32_t hlen = is_v6 ? NET_IPV6_HLEN : NET_IPV4_HLEN;

	return (uint32_t)p->l3_off + hlen <= p->l4_off &&
	       (uint32_t)p->l4_off + NET_UDP_HLEN + p->payload_len <= len;
}

int qg_net_checksums_ok(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p)
{
	int is_v6 = p->src.family == AF_INET6;
	const uint8_t *l3 = frame + p->l3_off;
	uint32_t ulen = (uint32_t)p->payload_len + NET_UDP_HLEN;
	uint16_t ucs;

	if (p->src.family != AF_INET && !is_v6)
		return 0;
	if (!net_udp_bounds(len, p, is_v6))
		return 0;
	if (!is_v6) {
		uint32_t ihl = (uint32_t)(l3[0] & 0x0f) * 4;

		if (ihl < NET_IPV4_HLEN || p->l3_off + ihl > len)
			return 0;
		/* Summing a header with its checksum included gives -0 when it is right. */
		if (net_fold(net_sum(0, l3, ihl)) != 0xffff)
			return 0;
	}
	ucs = net_ld16(frame + p->l4_off + 6);
	if (ucs == 0)
		return !is_v6; /* IPv4: "no checksum"; IPv6: forbidden (RFC 8200 8.1) */
	return net_fold(net_pseudo_sum(l3, is_v6, ulen, NET_PROTO_UDP) +
			net_sum(0, frame + p->l4_off, ulen)) == 0xffff;
}

void qg_net_checksums_fill(uint8_t *frame, const struct qg_net_pkt *p)
{
	int is_v6 = p->src.family == AF_INET6;
	uint8_t *l3 = frame + p->l3_off;
	uint8_t *udp = frame + p->l4_off;
	uint32_t ulen = (uint32_t)p->payload_len + NET_UDP_HLEN;
	uint16_t c;

	if (p->src.family != AF_INET && !is_v6)
		return;
	if (!is_v6) {
		memset(l3 + 10, 0, 2);
		c = qg_net_csum(l3, (size_t)(l3[0] & 0x0f) * 4);
		memcpy(l3 + 10, &c, 2);
	}
	memset(udp + 6, 0, 2);
	c = (uint16_t)~net_fold(net_pseudo_sum(l3, is_v6, ulen, NET_PROTO_UDP) + net_sum(0, udp, ulen));
	if (c == 0)
		c = 0xffff; /* RFC 768: a computed 0 is sent as all ones, 0 means "none" */
	memcpy(udp + 6, &c, 2);
}
