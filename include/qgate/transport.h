/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transport path selection for a backend reachable over several transports
 * (a UDP path and Bluetooth links): each path gets a score, traffic uses the
 * best healthy one, a switch needs hysteresis and traffic returns when the
 * preferred path recovers.
 *
 * Score of a path = base score of its transport
 *                   - loss_weight x (EWMA of probe loss, 0..1)
 *                   - rtt_weight  x (EWMA of probe RTT in ms, capped at rtt_cap_ms)
 * A path is healthy until fall consecutive probes fail, and healthy again
 * after rise consecutive successes (like the health checker), so a path with
 * no verdict yet counts as healthy and the highest base wins at start.
 *
 * Switching:
 *   - the current path turns unhealthy: move at once to the best healthy
 *     path (FAILOVER);
 *   - another healthy path scores at least margin above the current one
 *     without interruption for hold_ms: move to it (RECOVERED when it is the
 *     preferred one of the two, i.e. a higher base or, at equal base, listed
 *     first; DEGRADED otherwise).
 * The EWMA smooths single losses, the margin keeps two close paths from
 * trading places, and the hold time makes a short burst of luck on the other
 * path not enough: noisy loss does not make traffic flap.
 *
 * A pure state machine like the circuit breaker: no I/O, no lock, no
 * allocation, the clock is a parameter (now_ms). Each switch fills a record
 * the caller publishes (qg_transport_switch_event() makes the bus event).
 */
#ifndef QGATE_TRANSPORT_H
#define QGATE_TRANSPORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QG_TRANSPORT_MAX_PATHS 4 /**< paths per backend (QG_CONFIG_MAX_PATHS) */

/** Transport of a path; the values are those of enum qg_config_path_kind. */
enum qg_transport_kind {
	QG_TRANSPORT_UDP = 0,
	QG_TRANSPORT_BT_BREDR,
	QG_TRANSPORT_BT_LE,
	QG_TRANSPORT_KIND_COUNT
};

/** Why the chosen path changed. */
enum qg_transport_reason {
	QG_TRANSPORT_FAILOVER = 0, /**< the current path turned unhealthy */
	QG_TRANSPORT_DEGRADED,	/**< a less preferred path beat the current one by the margin for hold_ms */
	QG_TRANSPORT_RECOVERED, /**< a more preferred path did: traffic goes back */
};

/*
 * Defaults. Bases: UDP over IP first, then BR/EDR (higher throughput than
 * LE), then LE. 1000 points at 100 % loss and 1 point per ms of RTT: 10 %
 * loss costs as much as 100 ms. The margin (100) is worth 10 % loss, and a
 * Bluetooth link's RTT of tens of ms keeps it well under a clean UDP path.
 * EWMA weight 20 % per probe: about 10 probes to forget an episode. 5 s hold
 * = five probes at the health checker's default interval.
 */
#define QG_TRANSPORT_DEFAULT_BASE_UDP	 1000
#define QG_TRANSPORT_DEFAULT_BASE_BREDR	 700
#define QG_TRANSPORT_DEFAULT_BASE_LE	 600
#define QG_TRANSPORT_DEFAULT_LOSS_WEIGHT 1000u
#define QG_TRANSPORT_DEFAULT_RTT_WEIGHT	 1u
#define QG_TRANSPORT_DEFAULT_RTT_CAP_MS	 1000u
#define QG_TRANSPORT_DEFAULT_EWMA_PCT	 20u
#define QG_TRANSPORT_DEFAULT_MARGIN	 100u
#define QG_TRANSPORT_DEFAULT_HOLD_MS	 5000u
#define QG_TRANSPORT_DEFAULT_RISE	 2u
#define QG_TRANSPORT_DEFAULT_FALL	 3u

/** Scoring and switching parameters. */
struct qg_transport_cfg {
	int32_t base[QG_TRANSPORT_KIND_COUNT]; /**< base score per transport */
	uint32_t loss_weight;		       /**< points taken at 100 % loss */
	uint32_t rtt_weight;		       /**< points taken per ms of RTT */
	uint32_t rtt_cap_ms;		       /**< RTT beyond this costs no more (1..) */
	uint32_t ewma_pct;		       /**< weight of a new sample, 1..100 % */
	uint32_t margin;		       /**< points a challenger must lead by */
	uint32_t hold_ms;		       /**< for this long without interruption (0 = at once) */
	uint32_t rise;			       /**< consecutive successes that make a path healthy (>= 1) */
	uint32_t fall;			       /**< consecutive failures that make it unhealthy (>= 1) */
};

/** One path's figures; read-only for callers (metrics, qgatectl). */
struct qg_transport_path {
	enum qg_transport_kind kind;
	int healthy;	   /**< by rise/fall; 1 before any probe */
	uint32_t ok_run;   /**< consecutive successes */
	uint32_t fail_run; /**< consecutive failures */
	uint32_t loss_ppm; /**< EWMA of loss, parts per million */
	uint32_t rtt_us;   /**< EWMA of successful probes' RTT; 0 before the first */
	int32_t score;	   /**< current score */
	uint64_t probes;   /**< results recorded */
	uint64_t failures; /**< of which failed */
};

/** What a switch looked like: the caller publishes it. */
struct qg_transport_switch {
	unsigned from, to; /**< path indexes */
	enum qg_transport_kind from_kind, to_kind;
	int32_t from_score, to_score;
	enum qg_transport_reason reason;
	uint64_t at_ms;
};

/** A backend's paths and its choice. Embed it anywhere (no allocation). */
struct qg_transport_sel {
	struct qg_transport_cfg cfg;
	unsigned n_paths;
	struct qg_transport_path path[QG_TRANSPORT_MAX_PATHS];
	unsigned current;	     /**< the path traffic uses */
	int challenger;		     /**< path leading the current one by the margin, -1 = none */
	uint64_t challenge_since_ms; /**< since when it has led without interruption */
	uint64_t since_ms;	     /**< when current was chosen */
	uint64_t switches;	     /**< changes of current since init */
};

struct qg_event;

/** Fill cfg with the QG_TRANSPORT_DEFAULT_* values. */
void qg_transport_cfg_default(struct qg_transport_cfg *cfg);

/**
 * Set up n paths (1..QG_TRANSPORT_MAX_PATHS) of the given kinds, in the
 * backend's order of preference (ties of base go to the earlier one), cfg
 * NULL for the defaults. The path with the highest base is chosen.
 * @return 0 or -EINVAL (bad cfg, n or kind).
 */
int qg_transport_init(struct qg_transport_sel *s, const struct qg_transport_cfg *cfg,
		      const enum qg_transport_kind *kinds, unsigned n, uint64_t now_ms);

/**
 * Record one probe result of path (ok, and its RTT when ok) and re-evaluate
 * the choice. @return 1 when the chosen path changed (*sw filled when sw is
 * not NULL), 0 when not, -EINVAL for a bad path index.
 */
int qg_transport_record(struct qg_transport_sel *s, unsigned path, int ok, uint32_t rtt_us, uint64_t now_ms,
			struct qg_transport_switch *sw);

/**
 * Re-evaluate without a new result, so a hold time that runs out between
 * probes is honoured on time. @return as qg_transport_record().
 */
int qg_transport_tick(struct qg_transport_sel *s, uint64_t now_ms, struct qg_transport_switch *sw);

/** The path traffic should use now. */
static inline unsigned qg_transport_current(const struct qg_transport_sel *s)
{
	return s->current;
}

/**
 * Fill a QG_EVENT_PATH_SWITCH event from a switch record: service and
 * backend indexes (or QG_EVENT_NO_INDEX), arg[0] from path, arg[1] to path,
 * arg[2] from score, arg[3] to score, text "udp -> bt_bredr (degraded)".
 * Failovers are warnings, the other switches notices.
 */
void qg_transport_switch_event(const struct qg_transport_switch *sw, int service, int backend,
			       struct qg_event *ev);

/** "udp", "bt_bredr", "bt_le", "?" when out of range. */
const char *qg_transport_kind_name(enum qg_transport_kind k);

/** "failover", "degraded", "recovered", "?" when out of range. */
const char *qg_transport_reason_name(enum qg_transport_reason r);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_TRANSPORT_H */
