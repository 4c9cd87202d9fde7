/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fast non-cryptographic hashing for flow keys and backend selection.
 * Seeded per process so remote peers cannot aim at one hash chain.
 */
#ifndef QGATE_HASH_H
#define QGATE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qgate/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Final mixer of a 64-bit value (good avalanche, a few cycles). */
static inline uint64_t qg_hash_mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

/** Hash len bytes with a seed. Any length; reads only inside [p, p+len). */
static inline uint64_t qg_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = qg_hash_mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
		b += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;
		memcpy(&w, b, len);
		h = qg_hash_mix64(h ^ w ^ ((uint64_t)len << 56));
	}
	return qg_hash_mix64(h);
}

/** Hash an endpoint (address and port). */
static inline uint64_t qg_hash_addr(const struct qg_addr *a, uint64_t seed)
{
	return qg_hash_bytes(a, sizeof(*a), seed);
}

/** Hash only the IP of an endpoint (family + address, port ignored). */
static inline uint64_t qg_hash_ip(const struct qg_addr *a, uint64_t seed)
{
	return qg_hash_bytes(a->ip, 16, seed ^ a->family);
}

#ifdef __cplusplus
}
#endif
#endif /* QGATE_HASH_H */
