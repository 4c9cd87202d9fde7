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

/** 64x64 -> 128-bit multiply, the two halves folded: every input bit reaches the middle bits. */
static inline uint64_t qg_hash_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/**
 * Hash an endpoint for a per-packet table lookup (the flow table's key).
 * Same contract as qg_hash_addr(), a third of its instructions: three
 * multiplies instead of eight, since the key has a fixed 20 bytes. The seed
 * enters both operands of the first multiply, so a peer that does not know it
 * cannot zero one of them and make the others' bytes irrelevant.
 */
static inline uint64_t qg_hash_addr_fast(const struct qg_addr *a, uint64_t seed)
{
	uint64_t w0, w1, s0 = seed ^ 0xa0761d6478bd642fULL,
			 s1 = (seed << 29 | seed >> 35) ^ 0xe7037ed1a0b428dbULL;
	uint32_t w2;

	memcpy(&w0, a->ip, 8);
	memcpy(&w1, a->ip + 8, 8);
	memcpy(&w2, (const uint8_t *)a + 16, 4); /* port, family, pad */
	w0 = qg_hash_mum(w0 ^ s0, w1 ^ s1);
	w0 = qg_hash_mum(w0 ^ s1, (uint64_t)w2 ^ s0);
	return qg_hash_mum(w0 ^ 0x8ebc6af09c88c6e3ULL, s1 ^ 0x589965cc75374cc3ULL);
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
