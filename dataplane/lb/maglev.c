/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Weighted Maglev (Eisenbud et al., NSDI'16).
 *
 * The build has three steps:
 *  1. Canonical order: members are sorted by key so the table depends on
 *     the set of (key, weight) pairs, never on the order the caller lists
 *     them in.
 *  2. Quotas: every active member gets an exact number of entries, its
 *     share size * weight / total rounded down or up, choosing which ones
 *     round up so the worst relative error is the smallest a split into
 *     floors and ceilings can achieve. Every active member gets at least one entry so a
 *     tiny weight still sees traffic.
 *  3. Fill: members take turns in proportion to their weight (member i's
 *     k-th turn comes at virtual time (k + 1/2) / w_i, ties in canonical
 *     order), each turn claiming the next free slot of its own permutation
 *     (offset + j * skip) mod size, until its quota is used up. With equal
 *     weights this is exactly the round robin of the paper.
 * Per-member turns walk a permutation fixed by the key alone, which is what
 * keeps most entries in place when another member comes or goes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/hash.h"
#include "qgate/lb.h"

/*
 * Fixed seeds: tables must come out identical in every worker and after a
 * restart, so the per-process random flow-hash seed must not be used here.
 */
#define MAGLEV_SEED_OFFSET 0x6d61676c65762d31ULL /* "maglev-1" */
#define MAGLEV_SEED_SKIP   0x6d61676c65762d32ULL /* "maglev-2" */

#define MAGLEV_MAX_MEMBERS 65535u
#define MAGLEV_EMPTY	   0xffffu /* never a member index since n <= 65535 */
/*
 * 2^30 entries (2 GiB) is far beyond any sane table and keeps the turn-order
 * products (2 * taken + 1) * weight within 64 bits.
 */
#define MAGLEV_MAX_SIZE (1u << 30)

/* Build state of one active member, kept in canonical (key) order. */
struct mg_slot {
	uint64_t num;	/* weight * seats, for the quota rounding */
	uint64_t rem;	/* num % weight total: what rounding down loses */
	uint32_t index; /* the caller's index */
	uint32_t weight;
	uint32_t quota; /* entries it must end up with */
	uint32_t taken; /* entries placed so far */
	uint32_t pos;	/* current slot of its permutation */
	uint32_t skip;
};

int qg_lb_is_prime(uint32_t n)
{
	uint32_t d;

	if (n < 2)
		return 0;
	if (n < 4)
		return 1;
	if (n % 2 == 0 || n % 3 == 0)
		return 0;
	/* 6k +/- 1 trial division: at most ~22k steps for 32-bit n. */
	for (d = 5; (uint64_t)d * d <= n; d += 6) {
		if (n % d == 0 || n % (d + 2) == 0)
			return 0;
	}
	return 1;
}

static int cmp_key(const void *a, const void *b, void *ctx)
{
	const struct qg_lb_member *m = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	int r = memcmp(&m[ia].key, &m[ib].key, sizeof(m[ia].key));

	/* Keys are unique once validated; the index only keeps qsort total. */
	if (r)
		return r;
	return ia < ib ? -1 : ia > ib;
}

/* Ascending weight, then canonical position (slots are in canonical order). */
static int cmp_weight(const void *a, const void *b, void *ctx)
{
	const struct mg_slot *s = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;

	if (s[ia].weight != s[ib].weight)
		return s[ia].weight < s[ib].weight ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

/*
 * Rounding errors are relative: a member's error is x / w in units of
 * total / seats, with x = rem (rounded down) or total - rem (rounded up).
 * Products reach 2^80, hence 128-bit.
 */
struct mg_err {
	uint64_t x;
	uint32_t w;
};

static int err_less(uint64_t xa, uint32_t wa, uint64_t xb, uint32_t wb)
{
	return (unsigned __int128)xa * wb < (unsigned __int128)xb * wa;
}

static int cmp_err(const void *a, const void *b)
{
	const struct mg_err *ea = a, *eb = b;

	if (err_less(ea->x, ea->w, eb->x, eb->w))
		return -1;
	return err_less(eb->x, eb->w, ea->x, ea->w);
}

/* Largest loss from rounding down first, then canonical order. */
static int cmp_deficit(const void *a, const void *b, void *ctx)
{
	const struct mg_slot *s = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;

	if (err_less(s[ib].rem, s[ib].weight, s[ia].rem, s[ia].weight))
		return -1;
	if (err_less(s[ia].rem, s[ia].weight, s[ib].rem, s[ib].weight))
		return 1;
	return ia < ib ? -1 : ia > ib;
}

/* Rounding down would cost more than the bound: must round up. */
static int must_ceil(const struct mg_slot *p, const struct mg_err *bound)
{
	return err_less(bound->x, bound->w, p->rem, p->weight);
}

/* Rounding up would cost more than the bound: must round down. */
static int must_floor(const struct mg_slot *p, uint64_t total, const struct mg_err *bound)
{
	return err_less(bound->x, bound->w, total - p->rem, p->weight);
}

/* Can extra round-ups be placed so that no member's error exceeds bound? */
static int bound_ok(const struct mg_slot *s, const uint32_t *idx, uint32_t n, uint64_t total, uint32_t extra,
		    const struct mg_err *bound)
{
	uint32_t i, up = 0, down = 0;

	for (i = 0; i < n; i++) {
		int c = must_ceil(&s[idx[i]], bound);
		int f = must_floor(&s[idx[i]], total, bound);

		if (c && f)
			return 0;
		up += c;
		down += f;
	}
	return up <= extra && down <= n - extra;
}

/*
 * Hand out the extra entries left after rounding every share down so that
 * the largest relative error is as small as possible. The optimum is one of
 * the 2n candidate errors; feasibility is monotone in the bound, so a binary
 * search over the sorted candidates finds it. Members are then walked in
 * order of largest round-down loss (those forced up come first), skipping
 * those that may not round up. Relative, not absolute, error is what
 * matters: a light member one entry short is further off its share than a
 * heavy one.
 */
static int mg_round_up(struct mg_slot *s, uint32_t *idx, uint32_t n, uint64_t total, uint32_t extra)
{
	struct mg_err *cand;
	uint32_t i, lo = 0, hi = 2 * n - 1;

	cand = malloc(2 * (size_t)n * sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		cand[2 * i] = (struct mg_err){ s[idx[i]].rem, s[idx[i]].weight };
		cand[2 * i + 1] = (struct mg_err){ total - s[idx[i]].rem, s[idx[i]].weight };
	}
	qsort(cand, 2 * (size_t)n, sizeof(*cand), cmp_err);
	/* The largest candidate forces nothing, so it is always feasible. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (bound_ok(s, idx, n, total, extra, &cand[mid]))
			hi = mid;
		else
			lo = mid + 1;
	}

	qsort_r(idx, n, sizeof(*idx), cmp_deficit, s);
	for (i = 0; i < n && extra; i++) {
		if (must_floor(&s[idx[i]], total, &cand[lo]))
			continue;
		s[idx[i]].quota++;
		extra--;
	}
	free(cand);
	return 0;
}

/*
 * Split size entries among the slots in proportion to weight. Members whose
 * share rounds to zero are pinned to one entry first (smallest weights
 * first, since pinning one shrinks what is left for the others), then the
 * rest is apportioned: round down, then round up where it helps most.
 */
static int mg_quotas(struct mg_slot *s, uint32_t n, uint64_t total, uint32_t size)
{
	uint32_t *order, i, first = 0;
	uint64_t seats = size, assigned = 0;
	uint32_t wmin = UINT32_MAX;
	int ret = -ENOMEM;

	order = malloc((size_t)n * sizeof(*order));
	if (!order)
		goto err;
	for (i = 0; i < n; i++) {
		order[i] = i;
		s[i].quota = 0;
		if (s[i].weight < wmin)
			wmin = s[i].weight;
	}

	if ((uint64_t)wmin * seats < total) {
		qsort_r(order, n, sizeof(*order), cmp_weight, s);
		/* Pinning only lowers seats/total, so the pinned set is a prefix. */
		while (first < n && (uint64_t)s[order[first]].weight * seats < total) {
			s[order[first]].quota = 1;
			seats--;
			total -= s[order[first]].weight;
			first++;
		}
	}

	for (i = first; i < n; i++) {
		struct mg_slot *p = &s[order[i]];
		uint64_t num = (uint64_t)p->weight * seats;

		p->quota = (uint32_t)(num / total);
		p->rem = num % total;
		assigned += p->quota;
	}
	/* The remainders add up to (seats - assigned) * total: fewer extras than members. */
	ret = 0;
	if (seats > assigned)
		ret = mg_round_up(s, order + first, n - first, total, (uint32_t)(seats - assigned));
err:
	free(order);
	return ret;
}

/* Turn order: virtual time (2k + 1) / w, compared crosswise in 64 bits. */
static int mg_before(const struct mg_slot *s, uint32_t a, uint32_t b)
{
	uint64_t ta = (2 * (uint64_t)s[a].taken + 1) * s[b].weight;
	uint64_t tb = (2 * (uint64_t)s[b].taken + 1) * s[a].weight;

	if (ta != tb)
		return ta < tb;
	return a < b;
}

static void mg_sift_down(const struct mg_slot *s, uint32_t *heap, uint32_t len, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, best = i, tmp;

		if (l < len && mg_before(s, heap[l], heap[best]))
			best = l;
		if (l + 1 < len && mg_before(s, heap[l + 1], heap[best]))
			best = l + 1;
		if (best == i)
			return;
		tmp = heap[i];
		heap[i] = heap[best];
		heap[best] = tmp;
		i = best;
	}
}

static void mg_fill(struct mg_slot *s, uint32_t n, uint32_t *heap, struct qg_maglev *t)
{
	uint32_t len = 0, i;

	for (i = 0; i < n; i++) {
		s[i].taken = 0;
		if (s[i].quota)
			heap[len++] = i;
	}
	for (i = len / 2; i-- > 0;)
		mg_sift_down(s, heap, len, i);

	while (len) {
		struct mg_slot *p = &s[heap[0]];

		/* Quotas sum to size, so a free slot always exists. */
		while (t->entry[p->pos] != MAGLEV_EMPTY) {
			p->pos += p->skip;
			if (p->pos >= t->size)
				p->pos -= t->size;
		}
		t->entry[p->pos] = (uint16_t)p->index;
		if (++p->taken == p->quota)
			heap[0] = heap[--len];
		mg_sift_down(s, heap, len, 0);
	}
}

int qg_maglev_create(const struct qg_lb_member *m, uint32_t n, uint32_t size, struct qg_maglev **out)
{
	struct qg_maglev *t = NULL;
	struct mg_slot *s = NULL;
	uint32_t *order = NULL, i, n_active = 0;
	uint64_t total = 0;
	int ret = -EINVAL;

	if (!out || (n && !m) || n > MAGLEV_MAX_MEMBERS || size > MAGLEV_MAX_SIZE || !qg_lb_is_prime(size))
		goto err;
	for (i = 0; i < n; i++) {
		if (m[i].weight) {
			n_active++;
			total += m[i].weight;
		}
	}
	if (size < n_active)
		goto err;

	ret = -ENOMEM;
	t = malloc(sizeof(*t) + (size_t)size * sizeof(t->entry[0]));
	order = malloc(((size_t)n + 1) * sizeof(*order));
	s = malloc(((size_t)n_active + 1) * sizeof(*s));
	if (!t || !order || !s)
		goto err;
	t->size = size;
	t->n_members = n;
	t->n_active = n_active;
	t->pad = 0;
	memset(t->entry, 0xff, (size_t)size * sizeof(t->entry[0]));

	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), cmp_key, (void *)m);
	ret = -EINVAL;
	for (i = 1; i < n; i++) {
		if (qg_addr_equal(&m[order[i - 1]].key, &m[order[i]].key))
			goto err;
	}

	n_active = 0;
	for (i = 0; i < n; i++) {
		const struct qg_lb_member *mm = &m[order[i]];
		struct mg_slot *p;

		if (!mm->weight)
			continue;
		p = &s[n_active++];
		p->index = order[i];
		p->weight = mm->weight;
		p->pos = (uint32_t)(qg_hash_addr(&mm->key, MAGLEV_SEED_OFFSET) % size);
		/* size == 2 leaves one possible skip; any skip in [1, size) is a full cycle. */
		p->skip = (uint32_t)(qg_hash_addr(&mm->key, MAGLEV_SEED_SKIP) % (size - 1)) + 1;
	}

	if (n_active) {
		ret = mg_quotas(s, n_active, total, size);
		if (ret)
			goto err;
		/* order is free now and large enough to serve as the turn heap. */
		mg_fill(s, n_active, order, t);
	}

	*out = t;
	t = NULL;
	ret = 0;
err:
	free(order);
	free(s);
	free(t);
	return ret;
}

void qg_maglev_destroy(struct qg_maglev *t)
{
	free(t);
}
