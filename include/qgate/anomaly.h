/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Anomaly detection on the control plane's time series ("pps",
 * "new_flows_per_s", "drops_per_s", "initials_per_s", "probe_rtt:svc/be").
 * Pure computation, single-threaded (the control thread), clock passed in.
 *
 * A detector algorithm sits behind an ops table; the built-in one is an
 * EWMA of mean and variance scored as a z value:
 *
 *   z = (x - mean) / max(sqrt(var), floor_rel * |mean|, floor_abs)
 *
 * Defaults, and why:
 *  - alpha 0.01. An EWMA variance is about as sure as a sample variance of
 *    (2 - alpha) / alpha samples, so on stationary Gaussian noise z follows
 *    roughly a Student t with that many degrees of freedom, whose tails are
 *    fatter than the Gaussian's. P(|z| >= 5) per sample, theory (t) and a
 *    simulation of this code agreeing within 10 %:
 *        alpha 0.05 (39 dof)   1.5e-5   any alarm in 10,000 samples: 14 %
 *        alpha 0.02 (99 dof)   2.8e-6                                2.7 %
 *        alpha 0.01 (199 dof)  1.3e-6                                1.3 %
 *        sigma known exactly   5.7e-7                                0.6 %
 *    and a 6 sigma spike goes unflagged (sigma overestimated by 20 %) in
 *    4 %, 0.4 % and under 0.03 % of cases. 0.01 is most of the way to the
 *    ideal; its cost is a 100-sample time constant (100 s at one sample a
 *    second), which still follows the daily cycle with a lag far below the
 *    1 % floor.
 *  - warm-up 100 samples (1 / alpha), no alarms. The baseline starts from
 *    the plain mean and variance of those samples, not from one sample.
 *  - threshold 5 (WARNING), CRITICAL at twice that: the largest threshold
 *    a 6 sigma spike still clears with margin for the sigma estimate's
 *    wobble (about 5 % at alpha 0.01); the false-alarm figures are above.
 *  - stddev floor 1 % of |mean| and 1.0 absolute. A flat series has a
 *    near-zero variance; without a floor a 1-packet wiggle on 1000 pps is a
 *    thousand-sigma event. With it a deviation under 5 % of the level
 *    (and under 5 units near zero) is never an anomaly. Real traffic varies
 *    by more than 1 %, so the floor does not blunt noisy series. Set
 *    floor_abs in the series' units (1 packet/s, 1 flow/s, ...).
 *  - anomalous samples are not folded into the baseline at all, so a
 *    sustained attack keeps alarming instead of becoming "normal". After
 *    rebaseline_after (300) consecutive anomalous samples, five minutes at
 *    one a second, the level is taken as the new normal: the baseline jumps
 *    to the mean and variance of that run, and alarms stop from the next
 *    sample. A single normal sample in between restarts the count.
 */
#ifndef QGATE_ANOMALY_H
#define QGATE_ANOMALY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QG_ANOMALY_DEFAULT_ALPHA	    0.01
#define QG_ANOMALY_DEFAULT_WARMUP	    100u
#define QG_ANOMALY_DEFAULT_THRESHOLD	    5.0
#define QG_ANOMALY_DEFAULT_FLOOR_REL	    0.01
#define QG_ANOMALY_DEFAULT_FLOOR_ABS	    1.0
#define QG_ANOMALY_DEFAULT_REBASELINE_AFTER 300u

/** Longest series name, including the NUL. */
#define QG_ANOMALY_NAME_MAX 96

/** How bad a flagged sample is. */
enum qg_anomaly_severity {
	QG_ANOMALY_SEV_NONE = 0,
	QG_ANOMALY_SEV_WARNING = 1,  /**< |score| >= threshold */
	QG_ANOMALY_SEV_CRITICAL = 2, /**< |score| >= 2 * threshold */
};

/** What the control plane should do about it (ordered by strength). */
enum qg_anomaly_action {
	QG_ANOMALY_ACT_NONE = 0,
	QG_ANOMALY_ACT_ALERT = 1,   /**< log and publish an event only */
	QG_ANOMALY_ACT_PROTECT = 2, /**< tighten per-source limits, QUIC Retry */
	QG_ANOMALY_ACT_SHED = 3,    /**< refuse low-priority work */
};

/**
 * Parameters of a detector. The common fields mean the same to every
 * algorithm; an algorithm may ignore the EWMA ones and read its own from
 * algo_params.
 */
struct qg_anomaly_params {
	double threshold;	   /**< |score| that flags a sample (> 0) */
	uint32_t warmup;	   /**< samples with no alarm */
	double alpha;		   /**< EWMA weight of a new sample, (0, 1) */
	double floor_rel;	   /**< stddev floor relative to |mean| (>= 0) */
	double floor_abs;	   /**< stddev floor in the series' units (>= 0) */
	uint32_t rebaseline_after; /**< consecutive anomalies that become the new normal; 0 never */
	const void *algo_params;   /**< algorithm-specific, may be NULL */
};

/** One scored sample, as an algorithm reports it. */
struct qg_anomaly_eval {
	int ready;	 /**< 0 during warm-up: never flagged */
	double score;	 /**< signed: > 0 above expectation; compared with the threshold */
	double expected; /**< the value the baseline predicted */
};

/** A detector algorithm. */
struct qg_anomaly_algo_ops {
	const char *name;
	/** Allocate state for params. @return 0 or -errno. */
	int (*create)(const struct qg_anomaly_params *p, void **state);
	/** Score value (finite) and learn from it. */
	void (*update)(void *state, double value, uint64_t now_ms, struct qg_anomaly_eval *out);
	void (*destroy)(void *state);
};

/** The built-in EWMA z-score detector. */
extern const struct qg_anomaly_algo_ops qg_anomaly_ewma_ops;

/**
 * What to recommend, by direction and severity. Direction matters: fewer
 * new flows or a lower RTT is not an attack.
 */
struct qg_anomaly_policy {
	enum qg_anomaly_action up[3];	/**< indexed by severity, value above expectation */
	enum qg_anomaly_action down[3]; /**< value below expectation */
};

/** A flagged sample. series points into the registry (valid while the series is). */
struct qg_anomaly_record {
	const char *series;
	double value;
	double expected;
	double z; /**< signed score */
	enum qg_anomaly_severity severity;
	enum qg_anomaly_action action;
	uint64_t now_ms;
};

/** One named series with its detector. Fields are read-only for callers. */
struct qg_anomaly_series {
	char name[QG_ANOMALY_NAME_MAX];
	const struct qg_anomaly_algo_ops *ops;
	void *state;
	struct qg_anomaly_params params;
	struct qg_anomaly_policy policy;
	/* Counters since the series was added. */
	uint64_t samples;
	uint64_t anomalies; /**< warnings + criticals */
	uint64_t warnings;
	uint64_t criticals;
	uint64_t last_anomaly_ms;
};

struct qg_anomaly_registry;

/** Fill p with the QG_ANOMALY_DEFAULT_* values. */
void qg_anomaly_params_default(struct qg_anomaly_params *p);

/**
 * The default policy for a series name. "new_flows_per_s", "initials_per_s"
 * up: PROTECT (a handshake flood is what per-source limits and Retry are
 * for), down: ALERT. "pps" up: ALERT, CRITICAL PROTECT; down: ALERT.
 * "drops_per_s" up: ALERT (PROTECT itself drops, so recommending more
 * from drops would feed back); down: NONE. "probe_rtt:*" up: ALERT (the
 * breaker handles sick backends), down: NONE. Others: ALERT both ways.
 * No default recommends SHED: shedding hurts users, so it follows measured
 * resource pressure (degrade.h), not statistics; a policy may still ask.
 */
void qg_anomaly_policy_default(const char *name, struct qg_anomaly_policy *pol);

/** Create an empty registry. @return 0 or -ENOMEM. */
int qg_anomaly_registry_create(struct qg_anomaly_registry **out);

/** Destroy the registry and all its series (NULL is fine). */
void qg_anomaly_registry_destroy(struct qg_anomaly_registry *reg);

/**
 * Add a series. ops NULL: EWMA; params NULL: defaults; policy NULL: the
 * default for the name. @return 0 and *out (may be NULL), -EEXIST,
 * -EINVAL (bad name or params) or -ENOMEM.
 */
int qg_anomaly_series_add(struct qg_anomaly_registry *reg, const char *name,
			  const struct qg_anomaly_algo_ops *ops, const struct qg_anomaly_params *params,
			  const struct qg_anomaly_policy *policy, struct qg_anomaly_series **out);

/** The series called name, or NULL. */
struct qg_anomaly_series *qg_anomaly_series_find(struct qg_anomaly_registry *reg, const char *name);

/** Remove a series (a backend went away). @return 0 or -ENOENT. */
int qg_anomaly_series_remove(struct qg_anomaly_registry *reg, const char *name);

/** Number of series. */
uint32_t qg_anomaly_series_count(const struct qg_anomaly_registry *reg);

/** The i-th series (i < count), for metrics. Order changes on remove. */
struct qg_anomaly_series *qg_anomaly_series_at(struct qg_anomaly_registry *reg, uint32_t i);

/**
 * Feed one sample. @return 1 and *rec when it is flagged, 0 when not,
 * -EINVAL when value is not finite (kept out of the baseline).
 */
int qg_anomaly_observe(struct qg_anomaly_series *s, double value, uint64_t now_ms,
		       struct qg_anomaly_record *rec);

/** "none", "warning", "critical". */
const char *qg_anomaly_severity_name(enum qg_anomaly_severity s);

/** "none", "alert", "protect", "shed". */
const char *qg_anomaly_action_name(enum qg_anomaly_action a);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_ANOMALY_H */
