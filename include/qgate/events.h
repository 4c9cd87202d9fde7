/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event bus of the control plane. Parts publish typed, fixed-size events
 * (backend up/down, circuit changes, anomalies, reloads, ...) and subscribers
 * (health, degradation, admin, bridges) receive the ones their filter takes.
 *
 * Each subscriber has its own bounded queue, preallocated at subscription:
 * publishing copies the event into every matching queue and never allocates
 * or waits for a handler; a full queue drops the event for that subscriber
 * only, and counts it. Handlers run on the control thread, in
 * qg_events_dispatch(), so they may touch control-plane state without locks.
 *
 * Threads: qg_events_publish() may be called from any thread (several at
 * once). Everything else, dispatch included, belongs to the control thread.
 * Workers do not publish here: they report through their own rings, which
 * the control thread turns into events.
 */
#ifndef QGATE_EVENTS_H
#define QGATE_EVENTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Event types; arg[] meanings are per type (listed where used). */
enum qg_event_type {
	QG_EVENT_BACKEND_UP = 0,   /**< service, backend passed its checks */
	QG_EVENT_BACKEND_DOWN,	   /**< service, backend failed its checks; text: why */
	QG_EVENT_BACKEND_DEGRADED, /**< service, backend slow or lossy; arg[0] latency us, arg[1] loss ppm */
	QG_EVENT_CIRCUIT_CHANGE,   /**< service, backend; arg[0] old, arg[1] new breaker state */
	QG_EVENT_ANOMALY,	   /**< arg[0] metric id, arg[1] observed, arg[2] expected; text: what */
	QG_EVENT_LEVEL_CHANGE,	   /**< degradation level arg[0] old, arg[1] new; text: why */
	QG_EVENT_RELOAD_OK,	   /**< arg[0] configuration generation */
	QG_EVENT_RELOAD_FAILED,	   /**< text: first error */
	QG_EVENT_COMPONENT_STATE,  /**< component; arg[0] old, arg[1] new registry state, arg[2] -errno */
	QG_EVENT_FLOW_FLOOD,	   /**< service; arg[0] flows, arg[1] new flows/s; text: client */
	QG_EVENT_WORKER_STALL,	   /**< source = worker; arg[0] ms since its last loop */
	QG_EVENT_ADMIN_ACTION,	   /**< operator command (drain, weight); text: the command */
	QG_EVENT_SHUTDOWN,	   /**< the gateway is stopping; arg[0] signal or 0 */
	QG_EVENT_PATH_SWITCH,	   /**< service, backend; arg[0] old path, arg[1] new path, arg[2] old score,
				      arg[3] new score; text: "udp -> bt_bredr (degraded)" (transport.h) */
	QG_EVENT_TYPE_COUNT
};

/** Severity, lowest first; subscribers take events at or above their minimum. */
enum qg_event_severity {
	QG_EVENT_SEV_DEBUG = 0,
	QG_EVENT_SEV_INFO,
	QG_EVENT_SEV_NOTICE,
	QG_EVENT_SEV_WARNING,
	QG_EVENT_SEV_ERROR,
	QG_EVENT_SEV_CRITICAL,
	QG_EVENT_SEV_COUNT
};

/** Filter bit of one type, and of every type. */
#define QG_EVENT_MASK(type) (1ULL << (type))
#define QG_EVENT_MASK_ALL   ((1ULL << QG_EVENT_TYPE_COUNT) - 1)

#define QG_EVENT_NAME_MAX 32 /**< bytes of a name field, NUL included */
#define QG_EVENT_TEXT_MAX 96 /**< bytes of text, NUL included */
#define QG_EVENT_NO_INDEX (-1)

/**
 * One event: 256 bytes, no pointers, so queues are flat arrays and a copy is
 * a memcpy. Strings are always NUL-terminated once published.
 */
struct qg_event {
	uint64_t seq;	   /**< set by the bus: publish order over the whole bus, from 1 */
	uint64_t ts_ns;	   /**< qg_clock_ns() when it happened; 0 = the bus stamps it */
	uint16_t type;	   /**< enum qg_event_type */
	uint16_t severity; /**< enum qg_event_severity */
	uint32_t source;   /**< publisher's tag (worker index, part), free for the publisher */
	int32_t service;   /**< service index or QG_EVENT_NO_INDEX */
	int32_t backend;   /**< backend index within the service or QG_EVENT_NO_INDEX */
	int64_t arg[4];	   /**< per-type numbers (see enum qg_event_type) */
	char service_name[QG_EVENT_NAME_MAX];
	char backend_name[QG_EVENT_NAME_MAX];
	char component[QG_EVENT_NAME_MAX];
	char text[QG_EVENT_TEXT_MAX];
};

/** Handler: @return 0, or non-zero (e.g. -errno) to have the failure counted and logged. */
typedef int (*qg_event_handler_fn)(const struct qg_event *ev, void *ctx);

#define QG_EVENTS_SUBS_MAX	32   /**< subscribers per bus */
#define QG_EVENTS_QUEUE_DEFAULT 1024 /**< queue length when the subscriber gives 0 */
#define QG_EVENTS_QUEUE_MAX	(1u << 20)
#define QG_EVENTS_RECENT	256  /**< events kept for "qgatectl events" */
#define QG_EVENTS_ERR_LOG_EVERY 1000 /**< a failing handler is logged on its 1st, then every Nth failure */

/** A subscription. */
struct qg_event_sub_desc {
	const char *name;	/**< for stats and logs (copied, truncated to QG_EVENT_NAME_MAX-1) */
	qg_event_handler_fn fn; /**< required */
	void *ctx;		/**< passed to fn */
	uint64_t type_mask;	/**< QG_EVENT_MASK() bits, non-zero */
	uint16_t min_severity;	/**< enum qg_event_severity */
	uint32_t queue_len;	/**< events the queue holds; 0 = QG_EVENTS_QUEUE_DEFAULT */
};

/** Counters of one subscriber. */
struct qg_event_sub_stats {
	char name[QG_EVENT_NAME_MAX];
	uint64_t published;	 /**< events that passed its filter */
	uint64_t delivered;	 /**< handler calls made */
	uint64_t dropped;	 /**< passed the filter but the queue was full */
	uint64_t handler_errors; /**< handler calls that returned non-zero */
	int last_error;		 /**< value of the last failing call, 0 if none */
	uint64_t handler_ns_total;
	uint64_t handler_ns_max;
	uint32_t queued; /**< waiting for dispatch now */
	uint32_t capacity;
};

/** Counters of the whole bus. */
struct qg_event_bus_stats {
	uint64_t published;	 /**< qg_events_publish() calls accepted */
	uint64_t delivered;	 /**< sum over subscribers */
	uint64_t dropped;	 /**< sum over subscribers */
	uint64_t handler_errors; /**< sum over subscribers */
	unsigned subscribers;
};

struct qg_event_bus;

/** Allocate a bus with no subscriber. @return 0 or -EINVAL / -ENOMEM. */
int qg_events_create(struct qg_event_bus **out);

/** Free the bus and its queues; undelivered events are lost. NULL is fine. No publisher may be running. */
void qg_events_destroy(struct qg_event_bus *bus);

/**
 * Add a subscriber; its queue is allocated here. Safe while other threads
 * publish (they see it from their next publish on).
 * @return 0 and *id (for qg_events_sub_stats), -EINVAL, -ENOSPC (too many), -ENOMEM.
 */
int qg_events_subscribe(struct qg_event_bus *bus, const struct qg_event_sub_desc *desc, unsigned *id);

/**
 * Fill ev for publishing: zeroes it, sets type and severity, the indexes to
 * QG_EVENT_NO_INDEX and ts_ns to now.
 */
void qg_event_init(struct qg_event *ev, enum qg_event_type type, enum qg_event_severity sev);

/** printf into ev->text (truncated). */
void qg_event_set_text(struct qg_event *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Publish a copy of ev (seq assigned, ts_ns stamped when 0) to every
 * subscriber whose filter takes it, and to the recent-events ring. Any
 * thread; never allocates, never waits for handlers.
 * @return the number of queues it entered (full ones excluded), or -EINVAL
 *         (unknown type or severity).
 */
int qg_events_publish(struct qg_event_bus *bus, const struct qg_event *ev);

/**
 * Deliver queued events, control thread only. Each subscriber gets its
 * events in publish order; a failing handler is counted, logged (rate
 * limited) and skipped over. Handlers may publish (their events wait for a
 * later dispatch if the subscriber's batch is done) but not dispatch.
 * @param max most events delivered to each subscriber in this call; 0 = those
 *        queued when it got to that subscriber.
 * @return events delivered, or -EBUSY when called from a handler.
 */
int qg_events_dispatch(struct qg_event_bus *bus, unsigned max);

/** Bus-wide counters. */
void qg_events_stats(struct qg_event_bus *bus, struct qg_event_bus_stats *out);

/** Counters of subscriber id. @return 0 or -ENOENT. */
int qg_events_sub_stats(struct qg_event_bus *bus, unsigned id, struct qg_event_sub_stats *out);

/**
 * Copy the most recent published events (at most QG_EVENTS_RECENT are kept),
 * oldest first, whether or not anyone subscribed to them.
 * @return the number copied (<= max).
 */
unsigned qg_events_recent(struct qg_event_bus *bus, struct qg_event *out, unsigned max);

/** "backend_up"-style name of a type, "?" when out of range. */
const char *qg_event_type_name(enum qg_event_type type);

/** "warning"-style name of a severity, "?" when out of range. */
const char *qg_event_severity_name(enum qg_event_severity sev);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_EVENTS_H */
