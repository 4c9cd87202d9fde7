/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Metrics: the Prometheus text exposition format (0.0.4) served over HTTP at
 * /metrics by libmicrohttpd. The server has no thread of its own: it runs in
 * MHD's external-epoll mode, the control thread polls qg_metrics_fd() with
 * its other descriptors and calls qg_metrics_poll(). Rendering therefore
 * happens on the control thread, which owns the registry and the event bus,
 * and reads dataplane counters the way every control-side reader does.
 */
#ifndef QGATE_METRICS_H
#define QGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "qgate/addr.h"
#include "qgate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qg_dataplane;
struct qg_registry;
struct qg_event_bus;
struct qg_health;
struct qg_paths;
struct qg_protect;

/** A growing exposition text. err is set (and text stops growing) when memory runs out. */
struct qg_metrics_text {
	char *buf;
	size_t len;
	size_t cap;
	int err; /**< 0 or -ENOMEM */
};

/** Start an empty text (no allocation yet). */
void qg_metrics_text_init(struct qg_metrics_text *t);

/** Free the text's buffer. */
void qg_metrics_text_free(struct qg_metrics_text *t);

/**
 * Append the "# HELP" and "# TYPE" lines of a metric family. help is escaped
 * (backslash, newline) as the format requires.
 */
void qg_metrics_family(struct qg_metrics_text *t, const char *name, const char *type, const char *help);

/**
 * Append one sample: name{k1="v1",...} value. The variadic part is label
 * name / value pairs ended by NULL; values are escaped (backslash, double
 * quote, newline).
 */
void qg_metrics_sample(struct qg_metrics_text *t, const char *name, uint64_t value, ...)
	__attribute__((sentinel));

/** As qg_metrics_sample(), for a gauge that may be negative (a path's score). */
void qg_metrics_sample_signed(struct qg_metrics_text *t, const char *name, int64_t value, ...)
	__attribute__((sentinel));

/** What the exposition is made of; every pointer is read on the control thread only. */
struct qg_metrics_source {
	const struct qg_config *cfg;
	const struct qg_dataplane *dp;	  /**< NULL: no dataplane figures */
	const struct qg_registry *reg;	  /**< NULL: no component_up */
	struct qg_event_bus *bus;	  /**< NULL: no event figures */
	const struct qg_health *health;	  /**< NULL: every backend up, circuits closed */
	const struct qg_paths *paths;	  /**< NULL: no path series */
	const struct qg_protect *protect; /**< NULL: level 0, no anomaly series */
	const uint32_t *weights; /**< current weight of each backend, services in order; NULL = configured */
	uint64_t start_ns;	 /**< qg_clock_ns() at daemon start, for qgate_uptime_seconds */
};

/** Render the whole exposition of src into t. @return 0 or -ENOMEM. */
int qg_metrics_render(const struct qg_metrics_source *src, struct qg_metrics_text *t);

/** 1 when a is a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
int qg_metrics_addr_is_loopback(const struct qg_addr *a);

struct qg_metrics;

/**
 * Listen on addr (port 0 picks a free one: see qg_metrics_port()) and serve
 * qg_metrics_render(src) at /metrics, 404 elsewhere. src must outlive the
 * server. Nothing is served until qg_metrics_poll() runs.
 * @return 0 or -errno (bind failures keep their errno, e.g. -EADDRINUSE).
 */
int qg_metrics_create(const struct qg_addr *addr, const struct qg_metrics_source *src,
		      struct qg_metrics **out);

/** The descriptor to poll for POLLIN (MHD's epoll set); -1 if none. */
int qg_metrics_fd(const struct qg_metrics *m);

/** Accept, read and answer whatever is ready, without blocking. */
void qg_metrics_poll(struct qg_metrics *m);

/** The TCP port the server listens on (host order). */
uint16_t qg_metrics_port(const struct qg_metrics *m);

/** Requests answered so far (any status). */
uint64_t qg_metrics_requests(const struct qg_metrics *m);

/** Stop serving, close every connection and free (NULL is fine). */
void qg_metrics_destroy(struct qg_metrics *m);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_METRICS_H */
