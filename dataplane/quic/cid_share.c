/* SPDX-License-Identifier: BSD-3-Clause */
#include <ck_ring.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cid_share.h"
#include "qgate/compiler.h"

/* Producer and consumer indexes on their own lines (ck pads them); each ring apart from the others. */
struct share_ring {
	struct ck_ring ring;
	struct qg_cid_note *slots;
} QG_CACHE_ALIGNED;

CK_RING_PROTOTYPE(qg_cid, qg_cid_note)

struct qg_cid_share {
	unsigned n;
	struct share_ring *rings; /* [from * n + to] */
};

int qg_cid_share_create(unsigned n_workers, uint32_t ring_size, struct qg_cid_share **out)
{
	struct qg_cid_share *s;
	size_t nr = (size_t)n_workers * n_workers;

	if (n_workers < 2 || ring_size < 4 || (ring_size & (ring_size - 1)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->n = n_workers;
	s->rings = aligned_alloc(QG_CACHE_LINE, nr * sizeof(*s->rings));
	if (!s->rings)
		goto err;
	memset(s->rings, 0, nr * sizeof(*s->rings));
	for (size_t k = 0; k < nr; k++) {
		if (k / n_workers == k % n_workers)
			continue; /* nobody talks to itself */
		s->rings[k].slots = calloc(ring_size, sizeof(*s->rings[k].slots));
		if (!s->rings[k].slots)
			goto err;
		ck_ring_init(&s->rings[k].ring, ring_size);
	}
	*out = s;
	return 0;
err:
	qg_cid_share_destroy(s);
	return -ENOMEM;
}

void qg_cid_share_destroy(struct qg_cid_share *s)
{
	if (!s)
		return;
	for (size_t k = 0; s->rings && k < (size_t)s->n * s->n; k++)
		free(s->rings[k].slots);
	free(s->rings);
	free(s);
}

unsigned qg_cid_share_announce(struct qg_cid_share *s, unsigned from, const struct qg_cid_note *n)
{
	unsigned full = 0;

	for (unsigned to = 0; to < s->n; to++) {
		struct share_ring *r = &s->rings[(size_t)from * s->n + to];

		/* ck's generated enqueue takes a non-const pointer; it only copies from it. */
		if (to != from && !ck_ring_enqueue_spsc_qg_cid(&r->ring, r->slots, (struct qg_cid_note *)n))
			full++;
	}
	return full;
}

unsigned qg_cid_share_drain(struct qg_cid_share *s, unsigned to,
			    void (*fn)(void *ctx, const struct qg_cid_note *n), void *ctx)
{
	struct qg_cid_note n;
	unsigned got = 0;

	for (unsigned from = 0; from < s->n; from++) {
		struct share_ring *r = &s->rings[(size_t)from * s->n + to];

		if (from == to)
			continue;
		while (ck_ring_dequeue_spsc_qg_cid(&r->ring, r->slots, &n)) {
			fn(ctx, &n);
			got++;
		}
	}
	return got;
}
