/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Degradation controller: picks how defensive the gateway is from resource
 * pressure and anomaly recommendations, once per control tick. Pure
 * computation with the clock passed in (now_ms); the caller applies the
 * level and logs or publishes the change record.
 *
 *   NORMAL(0) -> PROTECT(1) -> SHED(2) -> ESSENTIAL(3)
 *
 * Up: at once, straight to the highest level any resource is at or past the
 * enter threshold of (levels may be skipped), or that an anomaly forces.
 * Down: one level per step, and only after the level's leave condition has
 * held continuously for min_dwell_ms: every resource below the level's exit
 * threshold (lower than enter: hysteresis, so a value wandering between the
 * two changes nothing) and no anomaly hold at or above the level. After a
 * step down the dwell starts again, so NORMAL from ESSENTIAL takes three
 * dwells. An anomaly recommending PROTECT (SHED) holds at least PROTECT
 * (SHED) for anomaly_hold_ms after the last tick that reported it.
 * The controller knows only what ticks show it: calm begins at the first
 * tick that sees the leave condition (e.g. the first tick after a hold ends).
 *
 * Default thresholds, enter / exit, as fractions:
 *
 *   resource                    PROTECT      SHED        ESSENTIAL
 *   flow table fill (max core)  0.70/0.60    0.85/0.75   0.95/0.88
 *   ring backlog                0.50/0.30    0.75/0.55   0.90/0.75
 *   worker busy (max core)      0.80/0.70    0.90/0.80   0.97/0.90
 *
 * Flow table: per-source limits and Retry need room to act before eviction
 * starts (the table evicts when full), so PROTECT begins with 30 % left and
 * ESSENTIAL at 5 %. Ring backlog: a half-full ring is already a queueing
 * delay of half a ring per burst, and a full ring drops blindly, so the
 * steps start earlier and are wider. Busy: polled workers at 80 % useful
 * work have little headroom for a burst; 97 % is saturation. Exit gaps of
 * 0.07-0.20 exceed the tick-to-tick noise of each measure, and the larger
 * gaps go where the measure is noisier (the ring backlog).
 * min_dwell_ms 10 s: several control ticks and longer than a typical burst,
 * so a level is not dropped in the lull of an on/off attack. anomaly_hold_ms
 * 30 s: an attack detected on a 1 s series is not over because one second
 * looked normal.
 */
#ifndef QGATE_DEGRADE_H
#define QGATE_DEGRADE_H

#include <stdint.h>

#include "qgate/anomaly.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Degradation levels, ordered; the numbers are what metrics expose. */
enum qg_degrade_level {
	QG_DEGRADE_NORMAL = 0,
	QG_DEGRADE_PROTECT = 1,
	QG_DEGRADE_SHED = 2,
	QG_DEGRADE_ESSENTIAL = 3,
};

#define QG_DEGRADE_LEVELS 4

/** Resources the controller watches. */
enum qg_degrade_resource {
	QG_DEGRADE_RES_FLOW_FILL = 0, /**< flow-table fill fraction, max over workers */
	QG_DEGRADE_RES_RING_BACKLOG,  /**< ring backlog fraction */
	QG_DEGRADE_RES_WORKER_BUSY,   /**< worker busy fraction, max over workers */
	QG_DEGRADE_RES_COUNT,
};

#define QG_DEGRADE_DEFAULT_MIN_DWELL_MS	   10000u
#define QG_DEGRADE_DEFAULT_ANOMALY_HOLD_MS 30000u

/** Longest change reason, including the NUL. */
#define QG_DEGRADE_REASON_MAX 160

/** Enter and exit threshold of one resource for one level (exit < enter). */
struct qg_degrade_band {
	double enter;
	double exit;
};

/** Controller configuration; band[r][l] is resource r at level l (index 0, NORMAL, unused). */
struct qg_degrade_cfg {
	struct qg_degrade_band band[QG_DEGRADE_RES_COUNT][QG_DEGRADE_LEVELS];
	uint64_t min_dwell_ms;
	uint64_t anomaly_hold_ms;
};

/** One tick's inputs. */
struct qg_degrade_input {
	double res[QG_DEGRADE_RES_COUNT];	   /**< fractions, indexed by enum qg_degrade_resource */
	const struct qg_anomaly_record *anomalies; /**< flagged this tick (may be NULL) */
	uint32_t n_anomalies;
};

/** A level change, for logs and events. */
struct qg_degrade_change {
	enum qg_degrade_level from;
	enum qg_degrade_level to;
	uint64_t now_ms;
	char reason[QG_DEGRADE_REASON_MAX]; /**< names the resource or anomaly and its value */
};

/** Controller state. Embed it; fields are read-only for callers. */
struct qg_degrade {
	struct qg_degrade_cfg cfg;
	enum qg_degrade_level level;
	uint64_t since_ms;	   /**< when the current level was entered */
	int calm;		   /**< the leave condition of the level holds */
	uint64_t calm_since_ms;	   /**< ... since then */
	uint64_t hold_until_ms[2]; /**< anomaly holds: [0] PROTECT, [1] SHED */
	char hold_reason[2][QG_DEGRADE_REASON_MAX];
	/* Counters since init. */
	uint64_t entered[QG_DEGRADE_LEVELS]; /**< times each level was entered */
	uint64_t steps_up;
	uint64_t steps_down;
};

/** Fill cfg with the defaults documented above. */
void qg_degrade_cfg_default(struct qg_degrade_cfg *cfg);

/**
 * Start at NORMAL at now_ms with cfg (NULL: defaults). @return 0, or
 * -EINVAL unless 0 <= exit < enter for every band and enter rises with
 * the level for every resource.
 */
int qg_degrade_init(struct qg_degrade *d, const struct qg_degrade_cfg *cfg, uint64_t now_ms);

/**
 * Replace the configuration (hot reload), keeping the level, its start, the
 * calm and the anomaly holds: new thresholds apply from the next tick.
 * @return 0, or -EINVAL (as qg_degrade_init; nothing changes).
 */
int qg_degrade_set_cfg(struct qg_degrade *d, const struct qg_degrade_cfg *cfg);

/**
 * One control tick. @return 1 with *chg filled when the level changed (chg
 * may be NULL), 0 when it did not, -EINVAL when a fraction is not finite
 * (nothing changes).
 */
int qg_degrade_tick(struct qg_degrade *d, const struct qg_degrade_input *in, uint64_t now_ms,
		    struct qg_degrade_change *chg);

/** The current level. */
enum qg_degrade_level qg_degrade_get_level(const struct qg_degrade *d);

/** "normal", "protect", "shed", "essential". */
const char *qg_degrade_level_name(enum qg_degrade_level l);

/** "flow_fill", "ring_backlog", "worker_busy". */
const char *qg_degrade_resource_name(enum qg_degrade_resource r);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_DEGRADE_H */
