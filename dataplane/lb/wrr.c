/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Smooth weighted round robin, nginx's algorithm: every pick adds each
 * weight to its member's credit, the member with the most credit wins and
 * pays back the total. Over sum(weights) picks each member is chosen exactly
 * weight times, and heavy members are spread out instead of bunched.
 */
#include <errno.h>
#include <stdlib.h>

#include "qgate/lb.h"

struct wrr_member {
	int64_t credit; /* stays within [-total, total]: int64 covers 65535+ x 2^32 */
	uint32_t weight;
};

struct qg_wrr {
	uint32_t n;
	uint64_t total;
	struct wrr_member m[];
};

static void wrr_load(struct qg_wrr *w, const uint32_t *weights)
{
	uint32_t i;

	w->total = 0;
	for (i = 0; i < w->n; i++) {
		w->m[i].credit = 0;
		w->m[i].weight = weights[i];
		w->total += weights[i];
	}
}

int qg_wrr_create(const uint32_t *weights, uint32_t n, struct qg_wrr **out)
{
	struct qg_wrr *w = NULL;
	int ret = -EINVAL;

	/* Bound n so that total and every credit fit comfortably in int64. */
	if (!out || (n && !weights) || n > (1u << 30))
		goto err;
	ret = -ENOMEM;
	w = malloc(sizeof(*w) + (size_t)n * sizeof(w->m[0]));
	if (!w)
		goto err;
	w->n = n;
	wrr_load(w, weights);
	*out = w;
	ret = 0;
err:
	return ret;
}

int qg_wrr_set_weights(struct qg_wrr *w, const uint32_t *weights, uint32_t n)
{
	if (!w || n != w->n || (n && !weights))
		return -EINVAL;
	wrr_load(w, weights);
	return 0;
}

uint32_t qg_wrr_next(struct qg_wrr *w)
{
	uint32_t i, best = QG_LB_NONE;

	if (w->total == 0)
		return QG_LB_NONE;
	for (i = 0; i < w->n; i++) {
		struct wrr_member *m = &w->m[i];

		/*
		 * Skip weight 0 explicitly: its credit stays 0 and could
		 * otherwise beat members whose credit went negative.
		 */
		if (!m->weight)
			continue;
		m->credit += m->weight;
		/* Strict '>': on equal credit the lower index wins, as in nginx. */
		if (best == QG_LB_NONE || m->credit > w->m[best].credit)
			best = i;
	}
	w->m[best].credit -= (int64_t)w->total;
	return best;
}

void qg_wrr_destroy(struct qg_wrr *w)
{
	free(w);
}
