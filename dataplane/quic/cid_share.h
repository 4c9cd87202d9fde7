/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Workers tell each other the connection IDs they learn, so a QUIC client
 * that rebinds onto an address SO_REUSEPORT hands to another worker keeps
 * its backend (cid_cache.h). One SPSC ring per ordered pair of workers
 * (Concurrency Kit ck_ring): the learning worker is the only producer of its
 * rings, the receiving worker the only consumer; no lock, no atomic
 * read-modify-write, nothing per packet but an emptiness check. A full ring
 * drops the announcement (the caller counts it): the cost is that one
 * rebinding client may land on the Maglev choice instead.
 */
#ifndef QG_CID_SHARE_H
#define QG_CID_SHARE_H

#include "cid_cache.h"

struct qg_cid_share;

/** Rings between n_workers workers, ring_size (a power of two) notes each. 0 or -errno. */
int qg_cid_share_create(unsigned n_workers, uint32_t ring_size, struct qg_cid_share **out);

/** Free it (NULL is fine). */
void qg_cid_share_destroy(struct qg_cid_share *s);

/** Worker from tells every other worker about n. @return how many rings were full (dropped). */
unsigned qg_cid_share_announce(struct qg_cid_share *s, unsigned from, const struct qg_cid_note *n);

/** Worker to takes every note waiting for it, calling fn(ctx, note) for each. @return how many. */
unsigned qg_cid_share_drain(struct qg_cid_share *s, unsigned to,
			    void (*fn)(void *ctx, const struct qg_cid_note *n), void *ctx);

#endif /* QG_CID_SHARE_H */
