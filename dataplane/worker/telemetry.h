/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker -> control telemetry: one SPSC ring per worker (Concurrency Kit's
 * ck_ring: the producer only loads the consumer's index and stores its own,
 * no atomic read-modify-write), written by the worker every sample period
 * and drained by the control thread (qg_dataplane_telemetry_poll).
 *
 * The worker-side bookkeeping is inline and costs one clock read per loop
 * iteration (per burst, never per packet). The ring itself lives in
 * telemetry.c so this header stays free of ck (C++ tests include it).
 */
#ifndef QG_TELEMETRY_H
#define QG_TELEMETRY_H

#include <stdint.h>

#include "qgate/clock.h"
#include "qgate/compiler.h"
#include "qgate/counters.h"
#include "qgate/dataplane.h"

struct qg_worker;
struct qg_tm_ring; /* telemetry.c: the ck_ring and its slots */

/** One worker's telemetry state. Everything but the two counters belongs to the worker thread. */
struct qg_telemetry {
	/* Worker only. */
	uint64_t period_ns;
	uint64_t next_ns;   /* when the next sample is due */
	uint64_t window_ns; /* when the current period began */
	uint64_t last_ns;   /* previous loop iteration */
	uint64_t busy_ns;   /* busy time in the current period */
	unsigned prev_n;    /* the previous poll came back full */
	int started;	    /* the baselines are set */
	uint32_t worker;
	uint32_t capacity; /* flow-table size */
	uint64_t last_packets, last_flows, last_drops, last_shed, last_evicted;
	uint64_t seq;
	struct qg_tm_ring *ring;
	/* Single writer (the worker), read by the control thread with relaxed loads. */
	uint64_t published QG_CACHE_ALIGNED;
	uint64_t dropped;
} QG_CACHE_ALIGNED;

/**
 * Allocate the state and a ring of ring_size slots (a power of two, >= 4;
 * it holds ring_size - 1 records). period_ns: sample period.
 * @return 0, -EINVAL or -ENOMEM.
 */
int qg_telemetry_create(uint32_t worker, uint32_t flow_capacity, uint32_t ring_size, uint64_t period_ns,
			struct qg_telemetry **out);

/** Free (NULL is fine). */
void qg_telemetry_destroy(struct qg_telemetry *t);

/**
 * Producer: build the period's sample from the worker's own counters and
 * flow count, and enqueue it (preceded by an EVICTING record when the flow
 * table evicted). A full ring drops the record and counts it. Worker thread.
 */
void qg_telemetry_publish(struct qg_telemetry *t, const struct qg_ctr_block *ctr, uint32_t flows_active,
			  uint64_t now_ns);

/** Producer: read the worker's counters and flows and publish (telemetry.c, knows struct qg_worker). */
void qg_telemetry_worker_sample(struct qg_telemetry *t, struct qg_worker *w, uint64_t now_ns);

/** Consumer: drain the ring into fn. @return records delivered. Control thread. */
unsigned qg_telemetry_poll(struct qg_telemetry *t, qg_dataplane_tm_fn fn, void *ctx);

/** Ring figures (any thread; occupancy is a snapshot). */
void qg_telemetry_stats(const struct qg_telemetry *t, struct qg_ring_stats *out);

/**
 * Account one loop iteration whose poll returned n of at most burst
 * datagrams at now_ns: the time since the previous iteration was busy when
 * that poll came back full, i.e. more was waiting. A polling worker that
 * keeps up gets partial bursts however often it polls; counting every
 * non-empty poll as busy read a lightly loaded poller as saturated (and
 * saturation is what sends the degradation controller to essential).
 * Worker thread.
 */
static inline void qg_telemetry_account(struct qg_telemetry *t, unsigned n, unsigned burst, uint64_t now_ns)
{
	if (t->prev_n)
		t->busy_ns += now_ns - t->last_ns;
	t->last_ns = now_ns;
	t->prev_n = n >= burst;
}

/** The worker's burst size (telemetry.c knows struct qg_worker). */
unsigned qg_telemetry_burst(const struct qg_worker *w);

/**
 * Once per worker loop iteration, after the poll that returned n datagrams.
 * @return qg_clock_ns() as read here, so the loop needs no second clock read.
 */
static inline uint64_t qg_telemetry_tick(struct qg_telemetry *t, struct qg_worker *w, unsigned n)
{
	uint64_t now = qg_clock_ns();

	qg_telemetry_account(t, n, qg_telemetry_burst(w), now);
	if (unlikely(now >= t->next_ns))
		qg_telemetry_worker_sample(t, w, now);
	return now;
}

#endif /* QG_TELEMETRY_H */
