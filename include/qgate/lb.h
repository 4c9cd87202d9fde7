/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backend selection: weighted Maglev consistent hashing, smooth weighted
 * round robin and least connections. Selection sees only weights and keys,
 * never packets: the same code serves every I/O backend and QUIC routing.
 * A weight of 0 means draining: the backend keeps its flows, gets no new one.
 */
#ifndef QGATE_LB_H
#define QGATE_LB_H

#include <stdint.h>

#include "qgate/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Returned when no backend can take a new flow (all weights 0, or none). */
#define QG_LB_NONE UINT32_MAX

/** Default Maglev table size (prime). */
#define QG_LB_MAGLEV_DEFAULT_SIZE 65537u

/** A member of a pool as selection sees it. */
struct qg_lb_member {
	struct qg_addr key; /**< identity that fixes the Maglev permutation (the backend address) */
	uint32_t weight;
};

/**
 * An immutable Maglev lookup table. Built off the fast path, then published
 * to workers by pointer; lookups only read it.
 */
struct qg_maglev {
	uint32_t size;	    /**< prime number of entries */
	uint32_t n_members; /**< members it was built from */
	uint32_t n_active;  /**< members with weight > 0 */
	uint32_t pad;
	uint16_t entry[]; /**< member index per slot */
};

/** 1 when n is prime. */
int qg_lb_is_prime(uint32_t n);

/**
 * Build a weighted Maglev table. Each member fills a share of the table
 * proportional to its weight; the result depends on the members' keys and
 * weights, not on their order in m.
 * @return 0 and *out, -EINVAL (size not prime, size < members, n > 65535),
 *         or -ENOMEM.
 */
int qg_maglev_create(const struct qg_lb_member *m, uint32_t n, uint32_t size, struct qg_maglev **out);

/** Free a table (NULL is fine). */
void qg_maglev_destroy(struct qg_maglev *t);

/** Member index for a flow hash, or QG_LB_NONE when no member has weight. */
static inline uint32_t qg_maglev_lookup(const struct qg_maglev *t, uint64_t hash)
{
	if (t->n_active == 0)
		return QG_LB_NONE;
	return t->entry[(uint32_t)(((hash >> 32) * (uint64_t)t->size) >> 32)];
}

/**
 * Smooth weighted round robin (each pick adds every weight to its member's
 * credit and takes the largest, which then pays the total): exact ratios over
 * a cycle of sum(weights) picks, interleaved rather than bunched. Per-worker
 * state; not shared.
 */
struct qg_wrr;

/** Create round-robin state for n members. @return 0, -EINVAL or -ENOMEM. */
int qg_wrr_create(const uint32_t *weights, uint32_t n, struct qg_wrr **out);

/** Change the weights (n must match); credits restart from zero. */
int qg_wrr_set_weights(struct qg_wrr *w, const uint32_t *weights, uint32_t n);

/** Next member, or QG_LB_NONE when every weight is 0. */
uint32_t qg_wrr_next(struct qg_wrr *w);

/** Free the state (NULL is fine). */
void qg_wrr_destroy(struct qg_wrr *w);

/**
 * Least connections: the member with the fewest active flows relative to its
 * weight (active/weight, compared without division); ties go to the member
 * after *cursor so equal members take turns. Members with weight 0 never win.
 * @return the member index, or QG_LB_NONE.
 */
uint32_t qg_lc_pick(const uint32_t *active, const uint32_t *weights, uint32_t n, uint32_t *cursor);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_LB_H */
