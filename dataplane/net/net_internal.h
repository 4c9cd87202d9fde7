/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the net module's files: big-endian field access by
 * bytes (frames have no alignment guarantee, and UBSan checks it) and the
 * one's complement accumulator behind every checksum.
 *
 * Checksum arithmetic is done on 16-bit words as they sit in memory (loaded
 * with memcpy): the one's complement sum is byte-order independent
 * (RFC 1071 2.B), so the folded result is directly the field's stored value
 * and no byte swapping is needed on the hot path.
 */
#ifndef QGATE_NET_INTERNAL_H
#define QGATE_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qgate/compiler.h"
#include "qgate/net.h"

#define NET_ETH_HLEN  14
#define NET_VLAN_HLEN 4
#define NET_IPV4_HLEN 20
#define NET_IPV6_HLEN 40
#define NET_UDP_HLEN  8
#define NET_ARP_LEN   28
#define NET_ETH_ZLEN  60 /* minimum frame without FCS */

#define NET_PROTO_UDP	 17
#define NET_PROTO_ICMPV6 58

#define NET_ND_NS 135
#define NET_ND_NA 136

static inline uint16_t net_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void net_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A 16-bit word in memory order (what the checksum arithmetic works on). */
static inline uint16_t net_ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t net_ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Host-order 16-bit value as a memory-order word: its bytes as they are stored big-endian. */
static inline uint16_t net_word(uint16_t host)
{
	uint8_t b[2];

	net_wr16(b, host);
	return net_ld16(b);
}

/*
 * Add len bytes to a 64-bit one's complement accumulator. 32-bit loads into
 * 64 bits cannot overflow for any frame (2^32 additions), and folding a sum
 * of 32-bit words gives the same result as summing 16-bit words.
 */
static inline uint64_t net_sum(uint64_t acc, const uint8_t *p, size_t len)
{
	while (len >= 4) {
		acc += net_ld32(p);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		acc += net_ld16(p);
		p += 2;
		len -= 2;
	}
	if (len) {
		uint16_t w = 0; /* the odd byte is the first byte of a zero-padded word */

		memcpy(&w, p, 1);
		acc += w;
	}
	return acc;
}

/* Fold to 16 bits with end-around carries. Nonzero input never folds to 0. */
static inline uint16_t net_fold(uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/*
 * Pseudo-header sum (RFC 768 / RFC 8200 8.1) for upper-layer length ulen
 * and protocol proto, the addresses read from the IP header at l3.
 */
static inline uint64_t net_pseudo_sum(const uint8_t *l3, int is_v6, uint32_t ulen, uint8_t proto)
{
	uint64_t acc = net_word(proto) + net_word((uint16_t)(ulen >> 16)) + net_word((uint16_t)ulen);

	if (is_v6)
		return net_sum(acc, l3 + 8, 32);
	return net_sum(acc, l3 + 12, 8);
}

#endif /* QGATE_NET_INTERNAL_H */
