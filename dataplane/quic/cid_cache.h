/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-worker cache of connection IDs other workers learned: CID -> backend
 * slot. With several workers, SO_REUSEPORT spreads client addresses over
 * them, so a client whose NAT rebinds may reach a worker that never saw its
 * connection. That worker finds the connection's backend here and opens its
 * own flow to it: to the server it is the client's NAT rebinding, which QUIC
 * handles (RFC 9000 Sec 9.3). Filled from the other workers' announcements
 * (cid_share.c), owned by one worker, preallocated, 4-way set associative:
 * a full set forgets its oldest entry, an entry idle past its service's
 * timeout is not trusted.
 */
#ifndef QG_CID_CACHE_H
#define QG_CID_CACHE_H

#include <stdint.h>

#include "cid_table.h"

/** One announcement: (svc, cid) belongs to a connection served by backend slot. */
struct qg_cid_note {
	uint16_t svc;
	uint8_t len;
	uint8_t cid[QG_CID_MAX_LEN];
	uint32_t slot;
};

struct qg_cid_cache;

/** A cache of about capacity entries (rounded up to a power of two, at least 64). 0 or -errno. */
int qg_cid_cache_create(uint32_t capacity, uint64_t seed, struct qg_cid_cache **out);

/** Free it (NULL is fine). */
void qg_cid_cache_destroy(struct qg_cid_cache *c);

/** Remember n, stamped now_ms. */
void qg_cid_cache_put(struct qg_cid_cache *c, const struct qg_cid_note *n, uint32_t now_ms);

/**
 * The slot of (svc, cid) if announced within max_age_ms, else UINT32_MAX.
 */
uint32_t qg_cid_cache_get(const struct qg_cid_cache *c, uint16_t svc, const uint8_t *cid, uint8_t len,
			  uint32_t now_ms, uint32_t max_age_ms);

#endif /* QG_CID_CACHE_H */
