/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Circuit breaker, one per backend: after repeated failures stop sending new
 * flows to a backend, then let a bounded trial through to find out whether
 * it recovered. A pure state machine driven by the control thread: no I/O,
 * no lock, and the clock is a parameter (now_ms) so every transition happens
 * at an exact, testable time.
 *
 *   CLOSED --N consecutive failures--> OPEN --open_timeout_ms--> HALF_OPEN
 *   HALF_OPEN --M successes--> CLOSED
 *   HALF_OPEN --any failure, or no verdict within open_timeout_ms--> OPEN
 *
 * Callers report one outcome (success or failure, a timeout being a failure)
 * per flow they were allowed to open; outcomes reported while OPEN belong to
 * flows admitted before it opened and are ignored.
 */
#ifndef QGATE_BREAKER_H
#define QGATE_BREAKER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Breaker states; the numbers are what metrics expose. */
enum qg_breaker_state {
	QG_BREAKER_CLOSED = 0,
	QG_BREAKER_OPEN = 1,
	QG_BREAKER_HALF_OPEN = 2,
};

/*
 * Defaults. Five consecutive failures: one or two lost probes or resets are
 * ordinary on UDP, five in a row with no success between them is not. Five
 * seconds open: long enough for a restarting backend not to be hammered,
 * short enough that a healthy one is not idle for long. Three trial flows,
 * two of which must succeed: one lucky flow does not close the breaker, and
 * the trial stays a tiny share of the traffic the backend would get.
 */
#define QG_BREAKER_DEFAULT_FAILURES_TO_OPEN    5u
#define QG_BREAKER_DEFAULT_OPEN_TIMEOUT_MS     5000u
#define QG_BREAKER_DEFAULT_HALF_OPEN_MAX_FLOWS 3u
#define QG_BREAKER_DEFAULT_SUCCESSES_TO_CLOSE  2u

/** Breaker configuration. */
struct qg_breaker_cfg {
	uint32_t failures_to_open;    /**< N consecutive failures open a closed breaker (>= 1) */
	uint32_t open_timeout_ms;     /**< time open before the trial starts (>= 1) */
	uint32_t half_open_max_flows; /**< new flows admitted per trial (>= 1) */
	uint32_t successes_to_close;  /**< M successes end the trial (1 .. half_open_max_flows) */
};

struct qg_breaker;

/** Called on every state change (optional), so the caller can publish an event. */
typedef void (*qg_breaker_change_fn)(void *ctx, const struct qg_breaker *b, enum qg_breaker_state from,
				     enum qg_breaker_state to, uint64_t now_ms);

/**
 * One backend's breaker. Embed it anywhere (no allocation); fields are
 * read-only for callers (metrics read the state and counters).
 */
struct qg_breaker {
	struct qg_breaker_cfg cfg;
	enum qg_breaker_state state;
	uint32_t consecutive_failures; /**< while closed */
	uint32_t trial_admitted;       /**< new flows let through in this half-open period */
	uint32_t trial_successes;      /**< successes in this half-open period */
	uint64_t since_ms;	       /**< when the current state was entered */

	/* Counters since init. */
	uint64_t opens;		 /**< transitions to OPEN */
	uint64_t half_opens;	 /**< transitions to HALF_OPEN */
	uint64_t closes;	 /**< transitions HALF_OPEN -> CLOSED */
	uint64_t rejected_flows; /**< allow_new_flow answered no */
	uint64_t successes;	 /**< outcomes recorded, any state */
	uint64_t failures;

	qg_breaker_change_fn on_change;
	void *on_change_ctx;
};

/** Fill cfg with the QG_BREAKER_DEFAULT_* values. */
void qg_breaker_cfg_default(struct qg_breaker_cfg *cfg);

/**
 * Start CLOSED at now_ms with cfg (NULL: defaults) and an optional change
 * callback. @return 0, or -EINVAL when cfg is out of range.
 */
int qg_breaker_init(struct qg_breaker *b, const struct qg_breaker_cfg *cfg, qg_breaker_change_fn fn,
		    void *ctx, uint64_t now_ms);

/**
 * May a new flow go to this backend? CLOSED: yes. OPEN: no until
 * open_timeout_ms has passed, then the breaker turns HALF_OPEN and this call
 * is the trial's first flow. HALF_OPEN: yes for the first
 * half_open_max_flows calls, then no until the trial is decided.
 * @return 1 (admit, and the caller owes one outcome) or 0 (reject).
 */
int qg_breaker_allow_new_flow(struct qg_breaker *b, uint64_t now_ms);

/** A flow or probe to this backend succeeded. @return 1 when the state changed. */
int qg_breaker_record_success(struct qg_breaker *b, uint64_t now_ms);

/** A flow or probe to this backend failed. @return 1 when the state changed. */
int qg_breaker_record_failure(struct qg_breaker *b, uint64_t now_ms);

/** "closed", "open" or "half_open". */
const char *qg_breaker_state_name(enum qg_breaker_state s);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_BREAKER_H */
