/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event bus. Each subscriber queue is a ring with one consumer (the control
 * thread) and producers serialised by one bus mutex, i.e. a single-producer
 * single-consumer ring whose producer side is "whoever holds the lock".
 *
 * Why a mutex on publish rather than a lock-free MPSC queue (CK, liburcu
 * wfcqueue): publishers are control-side threads (admin socket, health
 * probes, bridges) at event rates, not packet rates, and workers never
 * publish here. The critical section is bounded: a sequence number and one
 * 256-byte copy per matching subscriber, no allocation and no handler call.
 * In exchange, one lock gives what lock-free queues would not for free: one
 * global publish order (seq) shared by every queue and the recent ring, and
 * exact drop accounting. Dispatch never takes the lock, so a slow handler
 * never holds up a publisher; it only fills its own queue.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/compiler.h"
#include "qgate/events.h"
#include "qgate/log.h"

_Static_assert(sizeof(struct qg_event) == 256, "struct qg_event is a fixed 256-byte record");
_Static_assert(QG_EVENT_TYPE_COUNT <= 64, "type filters are a 64-bit mask");

struct sub {
	char name[QG_EVENT_NAME_MAX];
	qg_event_handler_fn fn;
	void *ctx;
	uint64_t mask;
	uint16_t min_sev;
	uint32_t cap;
	struct qg_event *ring;
	/* Producer side, written under the bus lock; the consumer reads head with acquire. */
	uint64_t head;
	uint64_t published;
	uint64_t dropped;
	/*
	 * Consumer side, written by the control thread only; producers read tail
	 * with acquire to see the slot free. Relaxed stores for the counters so a
	 * stats reader on another thread never sees a torn value.
	 */
	uint64_t tail;
	uint64_t delivered;
	uint64_t errors;
	uint64_t ns_total;
	uint64_t ns_max;
	int last_error;
};

struct qg_event_bus {
	pthread_mutex_t lock;
	struct sub *subs[QG_EVENTS_SUBS_MAX];
	unsigned n_subs; /* grows under the lock; dispatch reads it with acquire */
	/* Under the lock. */
	uint64_t seq;
	uint64_t published;
	uint64_t dropped;
	uint64_t recent_n; /* events ever put in recent[] */
	struct qg_event recent[QG_EVENTS_RECENT];
	/* Control thread. */
	uint64_t delivered;
	uint64_t errors;
	bool dispatching;
};

static const char *const type_names[] = {
	"backend_up",	"backend_down", "backend_degraded", "circuit_change",  "anomaly",
	"level_change", "reload_ok",	"reload_failed",    "component_state", "flow_flood",
	"worker_stall", "admin_action", "shutdown",	    "path_switch",
};
_Static_assert(QG_ARRAY_SIZE(type_names) == QG_EVENT_TYPE_COUNT, "one name per event type");

static const char *const sev_names[] = { "debug", "info", "notice", "warning", "error", "critical" };
_Static_assert(QG_ARRAY_SIZE(sev_names) == QG_EVENT_SEV_COUNT, "one name per severity");

const char *qg_event_type_name(enum qg_event_type type)
{
	if ((unsigned)type >= QG_EVENT_TYPE_COUNT)
		return "?";
	return type_names[type];
}

const char *qg_event_severity_name(enum qg_event_severity sev)
{
	if ((unsigned)sev >= QG_EVENT_SEV_COUNT)
		return "?";
	return sev_names[sev];
}

void qg_event_init(struct qg_event *ev, enum qg_event_type type, enum qg_event_severity sev)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = (uint16_t)type;
	ev->severity = (uint16_t)sev;
	ev->service = QG_EVENT_NO_INDEX;
	ev->backend = QG_EVENT_NO_INDEX;
	ev->ts_ns = qg_clock_ns();
}

void qg_event_set_text(struct qg_event *ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev->text, sizeof(ev->text), fmt, ap);
	va_end(ap);
}

int qg_events_create(struct qg_event_bus **out)
{
	struct qg_event_bus *bus;
	int rc;

	if (!out)
		return -EINVAL;
	bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	rc = pthread_mutex_init(&bus->lock, NULL);
	if (rc) {
		free(bus);
		return -rc;
	}
	*out = bus;
	return 0;
}

void qg_events_destroy(struct qg_event_bus *bus)
{
	unsigned i;

	if (!bus)
		return;
	for (i = 0; i < bus->n_subs; i++) {
		free(bus->subs[i]->ring);
		free(bus->subs[i]);
	}
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

int qg_events_subscribe(struct qg_event_bus *bus, const struct qg_event_sub_desc *desc, unsigned *id)
{
	struct sub *s = NULL;
	uint32_t cap;
	unsigned n;
	int rc = -EINVAL;

	if (!bus || !desc || !desc->fn || !(desc->type_mask & QG_EVENT_MASK_ALL) ||
	    desc->min_severity >= QG_EVENT_SEV_COUNT || desc->queue_len > QG_EVENTS_QUEUE_MAX)
		goto err;
	cap = desc->queue_len ? desc->queue_len : QG_EVENTS_QUEUE_DEFAULT;

	rc = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	/* The whole queue now: publish must never allocate. */
	s->ring = calloc(cap, sizeof(*s->ring));
	if (!s->ring)
		goto err;
	snprintf(s->name, sizeof(s->name), "%s", desc->name ? desc->name : "?");
	s->fn = desc->fn;
	s->ctx = desc->ctx;
	s->mask = desc->type_mask;
	s->min_sev = desc->min_severity;
	s->cap = cap;

	pthread_mutex_lock(&bus->lock);
	n = bus->n_subs;
	if (n == QG_EVENTS_SUBS_MAX) {
		pthread_mutex_unlock(&bus->lock);
		rc = -ENOSPC;
		goto err;
	}
	bus->subs[n] = s;
	/* Release: dispatch (without the lock) must see the filled slot. */
	QG_STORE_RELEASE(&bus->n_subs, n + 1);
	pthread_mutex_unlock(&bus->lock);
	if (id)
		*id = n;
	return 0;
err:
	if (s)
		free(s->ring);
	free(s);
	return rc;
}

/* Copy with the bus's fields set and every string terminated, whatever the publisher left. */
static void event_copy(struct qg_event *dst, const struct qg_event *src, uint64_t seq, uint64_t ts)
{
	memcpy(dst, src, sizeof(*dst));
	dst->seq = seq;
	dst->ts_ns = ts;
	dst->service_name[sizeof(dst->service_name) - 1] = '\0';
	dst->backend_name[sizeof(dst->backend_name) - 1] = '\0';
	dst->component[sizeof(dst->component) - 1] = '\0';
	dst->text[sizeof(dst->text) - 1] = '\0';
}

int qg_events_publish(struct qg_event_bus *bus, const struct qg_event *ev)
{
	struct qg_event *rec;
	uint64_t bit, head;
	unsigned i, n;
	int entered = 0;

	if (!bus || !ev || ev->type >= QG_EVENT_TYPE_COUNT || ev->severity >= QG_EVENT_SEV_COUNT)
		return -EINVAL;
	bit = QG_EVENT_MASK(ev->type);

	pthread_mutex_lock(&bus->lock);
	/* Stamped under the lock so seq and ts_ns agree on the order. */
	rec = &bus->recent[bus->recent_n % QG_EVENTS_RECENT];
	event_copy(rec, ev, ++bus->seq, ev->ts_ns ? ev->ts_ns : qg_clock_ns());
	bus->recent_n++;
	bus->published++;

	n = bus->n_subs;
	for (i = 0; i < n; i++) {
		struct sub *s = bus->subs[i];

		if (!(s->mask & bit) || ev->severity < s->min_sev)
			continue;
		QG_COUNTER_ADD(&s->published, 1);
		head = s->head;
		if (head - QG_LOAD_ACQUIRE(&s->tail) >= s->cap) {
			QG_COUNTER_ADD(&s->dropped, 1);
			bus->dropped++;
			continue;
		}
		memcpy(&s->ring[head % s->cap], rec, sizeof(*rec));
		/* Release: the consumer that sees the new head sees the copied event. */
		QG_STORE_RELEASE(&s->head, head + 1);
		entered++;
	}
	pthread_mutex_unlock(&bus->lock);
	return entered;
}

static void handler_failed(struct sub *s, const struct qg_event *ev, int rc)
{
	uint64_t errors = s->errors + 1;

	QG_STORE_RELAXED(&s->errors, errors);
	QG_STORE_RELAXED(&s->last_error, rc);
	/* A handler failing on every event must not flood the log: first, then every Nth. */
	if (errors == 1 || errors % QG_EVENTS_ERR_LOG_EVERY == 0)
		QG_LOG_WARN("events: subscriber '%s' failed on %s event #%llu (returned %d; %llu failure(s) "
			    "so far)",
			    s->name, qg_event_type_name((enum qg_event_type)ev->type),
			    (unsigned long long)ev->seq, rc, (unsigned long long)errors);
}

/* Deliver up to n events of one subscriber; returns how many, and how many failed in *failed. */
static uint64_t dispatch_sub(struct sub *s, uint64_t n, uint64_t *failed)
{
	uint64_t tail = s->tail, k, t0, dt;
	int rc;

	for (k = 0; k < n; k++) {
		/* The handler reads the slot in place: no producer reuses it before tail moves. */
		const struct qg_event *ev = &s->ring[tail % s->cap];

		t0 = qg_clock_ns();
		rc = s->fn(ev, s->ctx);
		dt = qg_clock_ns() - t0;
		QG_STORE_RELAXED(&s->ns_total, s->ns_total + dt);
		if (dt > s->ns_max)
			QG_STORE_RELAXED(&s->ns_max, dt);
		QG_STORE_RELAXED(&s->delivered, s->delivered + 1);
		if (rc) {
			handler_failed(s, ev, rc);
			(*failed)++;
		}
		/* Release: the slot is free for a producer only after the handler is done with it. */
		QG_STORE_RELEASE(&s->tail, ++tail);
	}
	return n;
}

int qg_events_dispatch(struct qg_event_bus *bus, unsigned max)
{
	uint64_t total = 0, failed = 0, avail;
	unsigned i, n_subs;

	if (!bus)
		return -EINVAL;
	if (bus->dispatching)
		return -EBUSY;
	bus->dispatching = true;
	n_subs = QG_LOAD_ACQUIRE(&bus->n_subs);
	for (i = 0; i < n_subs; i++) {
		struct sub *s = bus->subs[i];

		/* Counted once: what handlers publish meanwhile waits for the next call. */
		avail = QG_LOAD_ACQUIRE(&s->head) - s->tail;
		if (max && avail > max)
			avail = max;
		total += dispatch_sub(s, avail, &failed);
	}
	QG_STORE_RELAXED(&bus->delivered, bus->delivered + total);
	QG_STORE_RELAXED(&bus->errors, bus->errors + failed);
	bus->dispatching = false;
	/* Bounded by QG_EVENTS_SUBS_MAX * QG_EVENTS_QUEUE_MAX, well below INT_MAX. */
	return (int)total;
}

void qg_events_stats(struct qg_event_bus *bus, struct qg_event_bus_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!bus)
		return;
	pthread_mutex_lock(&bus->lock);
	out->published = bus->published;
	out->dropped = bus->dropped;
	out->subscribers = bus->n_subs;
	pthread_mutex_unlock(&bus->lock);
	out->delivered = QG_LOAD_RELAXED(&bus->delivered);
	out->handler_errors = QG_LOAD_RELAXED(&bus->errors);
}

int qg_events_sub_stats(struct qg_event_bus *bus, unsigned id, struct qg_event_sub_stats *out)
{
	struct sub *s;
	uint64_t head;

	if (!bus || !out || id >= QG_LOAD_ACQUIRE(&bus->n_subs))
		return -ENOENT;
	s = bus->subs[id];
	memset(out, 0, sizeof(*out));
	memcpy(out->name, s->name, sizeof(out->name));
	pthread_mutex_lock(&bus->lock);
	out->published = s->published;
	out->dropped = s->dropped;
	head = s->head;
	pthread_mutex_unlock(&bus->lock);
	out->delivered = QG_LOAD_RELAXED(&s->delivered);
	out->handler_errors = QG_LOAD_RELAXED(&s->errors);
	out->last_error = QG_LOAD_RELAXED(&s->last_error);
	out->handler_ns_total = QG_LOAD_RELAXED(&s->ns_total);
	out->handler_ns_max = QG_LOAD_RELAXED(&s->ns_max);
	out->queued = (uint32_t)(head - QG_LOAD_ACQUIRE(&s->tail));
	out->capacity = s->cap;
	return 0;
}

unsigned qg_events_recent(struct qg_event_bus *bus, struct qg_event *out, unsigned max)
{
	uint64_t n, first, k;

	if (!bus || !out)
		return 0;
	pthread_mutex_lock(&bus->lock);
	n = bus->recent_n < QG_EVENTS_RECENT ? bus->recent_n : QG_EVENTS_RECENT;
	if (n > max)
		n = max;
	first = bus->recent_n - n;
	for (k = 0; k < n; k++)
		out[k] = bus->recent[(first + k) % QG_EVENTS_RECENT];
	pthread_mutex_unlock(&bus->lock);
	return (unsigned)n;
}
