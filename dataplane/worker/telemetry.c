/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker -> control telemetry rings (see telemetry.h). The worker turns its
 * own counters into per-period deltas every sample period; nothing here runs
 * per packet. ck_ring's SPSC enqueue is a load of the consumer index, a copy
 * into the slot, a store fence and a store of the producer index: no atomic
 * read-modify-write and no lock on the worker side.
 */
#include <ck_ring.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "../pipeline/relay.h"
#include "telemetry.h"
#include "worker.h"

/* ck_ring's index bits stay apart from the slots; the consumer's index has its own line (ck pads it). */
struct qg_tm_ring {
	struct ck_ring ring;
	struct qg_dataplane_tm *slots;
} QG_CACHE_ALIGNED; /* aligned_alloc wants a size that is a multiple of the alignment */

CK_RING_PROTOTYPE(qg_tm, qg_dataplane_tm)

int qg_telemetry_create(uint32_t worker, uint32_t flow_capacity, uint32_t ring_size, uint64_t period_ns,
			struct qg_telemetry **out)
{
	struct qg_telemetry *t;

	if (ring_size < 4 || (ring_size & (ring_size - 1)) || !period_ns || !out)
		return -EINVAL;
	t = aligned_alloc(QG_CACHE_LINE, sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->ring = aligned_alloc(QG_CACHE_LINE, sizeof(*t->ring));
	if (!t->ring)
		goto err;
	memset(t->ring, 0, sizeof(*t->ring));
	t->ring->slots = calloc(ring_size, sizeof(*t->ring->slots));
	if (!t->ring->slots)
		goto err;
	ck_ring_init(&t->ring->ring, ring_size);
	t->worker = worker;
	t->capacity = flow_capacity;
	t->period_ns = period_ns;
	*out = t;
	return 0;
err:
	qg_telemetry_destroy(t);
	return -ENOMEM;
}

void qg_telemetry_destroy(struct qg_telemetry *t)
{
	if (!t)
		return;
	if (t->ring)
		free(t->ring->slots);
	free(t->ring);
	free(t);
}

/* Enqueue or count the loss; seq counts both so the consumer can see gaps. */
static void tm_push(struct qg_telemetry *t, struct qg_dataplane_tm *rec)
{
	rec->seq = t->seq++;
	if (ck_ring_enqueue_spsc_qg_tm(&t->ring->ring, t->ring->slots, rec))
		QG_COUNTER_ADD(&t->published, 1);
	else
		QG_COUNTER_ADD(&t->dropped, 1);
}

static uint64_t sum_drops(const struct qg_ctr_block *ctr)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < QG_CTR__COUNT; i++)
		if (qg_ctr_kind((enum qg_ctr_id)i) == QG_CTR_KIND_DROP)
			n += ctr->v[i];
	return n;
}

void qg_telemetry_publish(struct qg_telemetry *t, const struct qg_ctr_block *ctr, uint32_t flows_active,
			  uint64_t now_ns)
{
	uint64_t packets = ctr->v[QG_CTR_RX_CLIENT] + ctr->v[QG_CTR_RX_BACKEND];
	uint64_t flows = ctr->v[QG_CTR_FLOW_CREATED], drops = sum_drops(ctr);
	uint64_t shed = ctr->v[QG_CTR_DROP_SHED], evicted = ctr->v[QG_CTR_FLOW_EVICTED];
	struct qg_dataplane_tm rec;

	/* The first call only sets the baselines: counts before it belong to no period. */
	if (!t->started)
		goto next;
	memset(&rec, 0, sizeof(rec));
	rec.worker = t->worker;
	rec.ts_ns = now_ns;
	rec.period_ns = now_ns - t->window_ns;
	rec.flows_active = flows_active;
	rec.flows_capacity = t->capacity;
	if (evicted != t->last_evicted) {
		rec.type = QG_DATAPLANE_TM_EVICTING;
		rec.arg = evicted - t->last_evicted;
		tm_push(t, &rec);
		rec.arg = 0;
	}
	rec.type = QG_DATAPLANE_TM_SAMPLE;
	rec.packets = packets - t->last_packets;
	rec.new_flows = flows - t->last_flows;
	rec.drops = drops - t->last_drops;
	rec.shed = shed - t->last_shed;
	rec.busy_ns = t->busy_ns < rec.period_ns ? t->busy_ns : rec.period_ns;
	tm_push(t, &rec);
next:
	t->last_packets = packets;
	t->last_flows = flows;
	t->last_drops = drops;
	t->last_shed = shed;
	t->last_evicted = evicted;
	t->busy_ns = 0;
	t->window_ns = now_ns;
	t->next_ns = now_ns + t->period_ns;
	t->started = 1;
}

void qg_telemetry_worker_sample(struct qg_telemetry *t, struct qg_worker *w, uint64_t now_ns)
{
	const struct qg_svc_table *tab = rcu_dereference(*w->table);
	uint64_t active = 0;

	/* The worker is an online QSBR reader here: the table stays until its next quiescent state. */
	for (uint32_t s = 0; tab && s < tab->n_services; s++)
		active += qg_relay_flows_active(w->relay, s);
	qg_telemetry_publish(t, &w->ctr, active > UINT32_MAX ? UINT32_MAX : (uint32_t)active, now_ns);
}

unsigned qg_telemetry_poll(struct qg_telemetry *t, qg_dataplane_tm_fn fn, void *ctx)
{
	struct qg_dataplane_tm rec;
	unsigned n = 0;

	while (ck_ring_dequeue_spsc_qg_tm(&t->ring->ring, t->ring->slots, &rec)) {
		if (fn)
			fn(ctx, &rec);
		n++;
	}
	return n;
}

void qg_telemetry_stats(const struct qg_telemetry *t, struct qg_ring_stats *out)
{
	out->capacity = ck_ring_capacity(&t->ring->ring) - 1;
	out->occupancy = ck_ring_size(&t->ring->ring);
	out->published = QG_LOAD_RELAXED(&t->published);
	out->dropped = QG_LOAD_RELAXED(&t->dropped);
}

unsigned qg_telemetry_burst(const struct qg_worker *w)
{
	return w->burst;
}
