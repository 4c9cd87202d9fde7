/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The protection path of the control loop: worker telemetry in, degradation
 * level out.
 *
 *   worker rings --(samples every 100 ms)--> per-worker latest figures
 *        |                                     |
 *        | 1 s windows: packets/s, new flows/s,| flow-table fill (max over
 *        | drops/s summed over workers         | workers), worker busy (max),
 *        v                                     | ring backlog (max)
 *   anomaly series (anomaly.h) --records-----> degradation controller (degrade.h)
 *                                                     |
 *                   max(controller, operator floor) --+--> qg_dataplane_set_level
 *
 * Level changes and anomalies are published on the event bus (the daemon's
 * log subscriber prints them). Everything runs on the control thread; the
 * clock is a parameter, and without a dataplane the module is pure (tests
 * feed records with qg_protect_feed and step it with qg_protect_step).
 *
 * The operator floor ("qgatectl level set NAME") is a lower bound: the
 * controller may raise the level above it, never take it below, and the
 * floor stays until "qgatectl level auto" clears it. With the controller
 * disabled (degradation.enabled: false) the level is the floor alone.
 */
#ifndef QGATE_PROTECT_H
#define QGATE_PROTECT_H

#include <stdint.h>

#include "qgate/anomaly.h"
#include "qgate/dataplane.h"
#include "qgate/degrade.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qg_event_bus;

#define QG_PROTECT_TICK_MS     100  /**< controller tick (the workers' sample period) */
#define QG_PROTECT_WINDOW_MS   1000 /**< anomaly series sample period: the anomaly defaults assume 1 s */
#define QG_PROTECT_STALL_MS    2000 /**< a worker that publishes nothing this long is reported stalled */
#define QG_PROTECT_WORKERS_MAX 64

/** The anomaly series the protection path feeds (names as anomaly.h's policies know them). */
enum qg_protect_series {
	QG_PROTECT_SERIES_PPS = 0,   /**< "pps": datagrams received per second */
	QG_PROTECT_SERIES_NEW_FLOWS, /**< "new_flows_per_s" */
	QG_PROTECT_SERIES_DROPS,     /**< "drops_per_s" */
	QG_PROTECT_SERIES_COUNT,
};

/** How to build it. */
struct qg_protect_params {
	unsigned n_workers;		      /**< 1..QG_PROTECT_WORKERS_MAX */
	const struct qg_degrade_cfg *degrade; /**< NULL: degrade.h defaults */
	int controller;			      /**< 1: the controller sets the level; 0: only the floor does */
	const struct qg_anomaly_params *anomaly; /**< NULL: anomaly.h defaults */
	struct qg_dataplane *dp;		 /**< NULL: nothing drained or applied (tests) */
	struct qg_event_bus *bus;		 /**< NULL: no events */
};

/** What the admin socket and metrics show. */
struct qg_protect_info {
	enum qg_degrade_level level;	  /**< applied to the dataplane */
	enum qg_degrade_level controller; /**< what the controller alone wants */
	int controller_enabled;
	int floor_set;			      /**< an operator floor is in force */
	enum qg_degrade_level floor;	      /**< valid when floor_set */
	uint64_t since_ms;		      /**< when the applied level began (the module's clock) */
	char reason[QG_DEGRADE_REASON_MAX];   /**< why the applied level is what it is */
	double res[QG_DEGRADE_RES_COUNT];     /**< the controller's last inputs */
	double rate[QG_PROTECT_SERIES_COUNT]; /**< last 1 s window, per second */
	uint64_t changes;		      /**< applied level changes */
	uint64_t samples;		      /**< worker samples consumed */
	uint64_t evictions;		      /**< flows evicted, from the workers' passive events */
	uint64_t anomalies;		      /**< anomalies flagged, every series */
	int apply_error;		      /**< last qg_dataplane_set_level failure (-errno), 0 */
};

struct qg_protect;

/**
 * Create it at now_ms, level normal. @return 0, -EINVAL (bad params or
 * degrade configuration) or -ENOMEM.
 */
int qg_protect_create(const struct qg_protect_params *p, uint64_t now_ms, struct qg_protect **out);

/** Free (NULL is fine). The dataplane keeps the level last applied. */
void qg_protect_destroy(struct qg_protect *p);

/** Take one telemetry record (what qg_dataplane_telemetry_poll delivers). */
void qg_protect_feed(struct qg_protect *p, const struct qg_dataplane_tm *rec);

/**
 * Pure step at now_ms with ring_backlog (0..1) measured by the caller:
 * close the anomaly window when due, tick the controller when due, apply
 * a changed level (dataplane when present) and publish events.
 * @return 1 when the applied level changed, else 0.
 */
int qg_protect_step(struct qg_protect *p, double ring_backlog, uint64_t now_ms);

/**
 * The control loop's call: measure the ring backlog, drain the workers'
 * rings into qg_protect_feed, report stalled workers, then qg_protect_step.
 * Cheap when nothing is due. @return as qg_protect_step.
 */
int qg_protect_tick(struct qg_protect *p, uint64_t now_ms);

/**
 * Set (set = 1) or clear (set = 0) the operator floor and apply the result
 * at once. @return 0, -EINVAL (level out of range) or the dataplane's -errno.
 */
int qg_protect_set_floor(struct qg_protect *p, int set, enum qg_degrade_level floor, uint64_t now_ms);

/**
 * Hot reload: new thresholds and timings (NULL: defaults) and whether the
 * controller sets the level; the level, the floor and the anomaly baselines
 * stay, and the result is applied at once.
 * @return 0 or -EINVAL (nothing changes).
 */
int qg_protect_reconfigure(struct qg_protect *p, const struct qg_degrade_cfg *cfg, int controller,
			   uint64_t now_ms);

/** Fill *out. */
void qg_protect_get_info(const struct qg_protect *p, struct qg_protect_info *out);

/** The anomaly series (for metrics: qg_anomaly_series_count / _at). */
struct qg_anomaly_registry *qg_protect_anomalies(const struct qg_protect *p);

/** Parse "normal", "protect", "shed", "essential". @return 0 or -EINVAL. */
int qg_protect_level_parse(const char *name, enum qg_degrade_level *out);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_PROTECT_H */
