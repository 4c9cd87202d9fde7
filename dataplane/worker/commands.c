/* SPDX-License-Identifier: BSD-3-Clause */
#include <ck_ring.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "qgate/compiler.h"

struct qg_cmd_ring {
	struct ck_ring ring;
	struct qg_worker_cmd *slots;
} QG_CACHE_ALIGNED;

CK_RING_PROTOTYPE(qg_cmd, qg_worker_cmd)

int qg_cmd_ring_create(uint32_t size, struct qg_cmd_ring **out)
{
	struct qg_cmd_ring *r;

	if (size < 4 || (size & (size - 1)))
		return -EINVAL;
	r = aligned_alloc(QG_CACHE_LINE, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->slots = calloc(size, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return -ENOMEM;
	}
	ck_ring_init(&r->ring, size);
	*out = r;
	return 0;
}

void qg_cmd_ring_destroy(struct qg_cmd_ring *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

int qg_cmd_ring_push(struct qg_cmd_ring *r, const struct qg_worker_cmd *c)
{
	/* ck's generated enqueue takes a non-const pointer; it only copies from it. */
	return ck_ring_enqueue_spsc_qg_cmd(&r->ring, r->slots, (struct qg_worker_cmd *)c) ? 0 : -ENOBUFS;
}

int qg_cmd_ring_pop(struct qg_cmd_ring *r, struct qg_worker_cmd *c)
{
	return ck_ring_dequeue_spsc_qg_cmd(&r->ring, r->slots, c) ? 1 : 0;
}
