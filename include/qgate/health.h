/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Health checker: active probes, rise/fall hysteresis and one circuit
 * breaker per backend, run from the control loop. It decides whether each
 * backend may take new flows and tells the dataplane through published
 * tables (qg_dataplane_set_backend_state); it never touches a worker.
 *
 * The checker core is pure: sending probes, reading replies, reading
 * dataplane figures and publishing the up/down bit go through an ops table
 * and the clock is a parameter, so hysteresis and scheduling are tested with
 * a fake prober and an injected clock. qg_health_create_udp() gives the real
 * ops: one non-blocking connected UDP socket per probed backend.
 *
 * States (per backend):
 *   UNKNOWN    no verdict yet (probe none stays here): counts as up, so a
 *              gateway that just started does not drop everything for
 *              rise x interval
 *   HEALTHY    rise consecutive probe successes (from UNKNOWN or UNHEALTHY)
 *   DEGRADED   healthy by hysteresis, but its breaker is half-open or at
 *              least QG_HEALTH_DEGRADED_FAILS of its last
 *              QG_HEALTH_WINDOW probes failed: still up, worth a look
 *   UNHEALTHY  fall consecutive probe failures: down
 * A backend is up for new flows when it is not UNHEALTHY and its breaker
 * admits flows (closed, or half-open with trial flows left).
 */
#ifndef QGATE_HEALTH_H
#define QGATE_HEALTH_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "qgate/breaker.h"
#include "qgate/config.h"
#include "qgate/dataplane.h"

#ifdef __cplusplus
extern "C" {
#endif

enum qg_health_state {
	QG_HEALTH_UNKNOWN = 0,
	QG_HEALTH_HEALTHY,
	QG_HEALTH_DEGRADED,
	QG_HEALTH_UNHEALTHY,
};

#define QG_HEALTH_WINDOW	 10 /**< recent probes the degraded rule looks at */
#define QG_HEALTH_DEGRADED_FAILS 3  /**< failures among them that make a healthy backend degraded */
#define QG_HEALTH_PASSIVE_MS	 20 /**< the dataplane's figures are read at most this often */

struct qg_health;
struct qg_event_bus;

/** What the checker needs from the outside world; ctx is the ops' own. */
struct qg_health_ops {
	/** Send a probe to backend id (qg_health_backend_count order). 0 or -errno (= a failed probe). */
	int (*send)(void *ctx, unsigned id, uint64_t now_ms);
	/** Optional: read replies and report each with qg_health_reply(). */
	void (*poll)(void *ctx, struct qg_health *hc, uint64_t now_ms);
	/** Optional: publish backend b of service svc as up (1) or down (0) for new flows. */
	int (*set_up)(void *ctx, unsigned svc, unsigned b, int up);
	/** Optional: the dataplane's figures of backend b of svc (passive signals). 0 or -errno. */
	int (*stats)(void *ctx, unsigned svc, unsigned b, struct qg_backend_stats *out);
	/** Optional: descriptors to poll for POLLIN. @return the number filled. */
	unsigned (*pollfds)(void *ctx, struct pollfd *fds, unsigned max);
	/** Optional: free ctx (called by qg_health_destroy). */
	void (*destroy)(void *ctx);
};

/** What one backend looks like now (for metrics and the admin socket). */
struct qg_health_info {
	unsigned svc, b;
	enum qg_health_state state;
	enum qg_breaker_state circuit;
	int up;			  /**< published to the dataplane: may take new flows */
	int probed;		  /**< the service has a probe */
	uint64_t probes;	  /**< sent */
	uint64_t failures;	  /**< failed (timeout, refused, wrong reply, send error) */
	uint64_t next_ms;	  /**< next probe due */
	uint32_t recent_failures; /**< among the last QG_HEALTH_WINDOW probes */
};

/**
 * Create the checker over every backend of cfg's services (cfg must outlive
 * it). Each probed backend's first probe is offset within its interval by a
 * hash of its address, so probes spread instead of leaving at once. bus may
 * be NULL (no events).
 * @return 0 or -EINVAL / -ENOMEM.
 */
int qg_health_create(const struct qg_config *cfg, const struct qg_health_ops *ops, void *ctx,
		     struct qg_event_bus *bus, uint64_t now_ms, struct qg_health **out);

/**
 * The real checker: UDP / QUIC VN probes over one non-blocking connected
 * socket per probed backend, the dataplane's per-backend figures as passive
 * signals, its published table as the effect. dp may be NULL (no effect).
 */
int qg_health_create_udp(const struct qg_config *cfg, struct qg_dataplane *dp, struct qg_event_bus *bus,
			 uint64_t now_ms, struct qg_health **out);

/** Free (NULL is fine). */
void qg_health_destroy(struct qg_health *hc);

/**
 * After a reload: every backend of hc that old also checked (same service
 * name and address) takes over its state, counts and breaker, so a reload
 * neither resets verdicts nor publishes them again. A probe in flight on
 * old is forgotten (its socket closes with old).
 */
void qg_health_adopt(struct qg_health *hc, const struct qg_health *old);

/**
 * Do what is due at now_ms: read replies (ops->poll), time out probes, send
 * due probes, feed passive signals to the breakers (at most every
 * QG_HEALTH_PASSIVE_MS), publish up/down changes. Cheap when nothing is due;
 * call it around qg_health_next_ms() (a caller may round that up to batch
 * probes into fewer wake-ups) and when replies are ready.
 */
void qg_health_tick(struct qg_health *hc, uint64_t now_ms);

/** When something is next due (a probe or a timeout), for the caller's poll timeout. */
uint64_t qg_health_next_ms(const struct qg_health *hc);

/** A reply (ok = 1) or a failure (ok = 0, e.g. refused) for backend id's probe in flight. */
void qg_health_reply(struct qg_health *hc, unsigned id, int ok, uint64_t now_ms);

/**
 * Judge backend id through its paths (multi-path and Bluetooth backends,
 * qgate/paths.h): the outcome of each of its own udp probes, with its RTT,
 * goes to fn instead of its verdict, its breaker ignores udp refusals, and
 * its verdict follows qg_health_report(). fn NULL ends the diversion.
 * @return 0 or -ENOENT.
 */
int qg_health_divert(struct qg_health *hc, unsigned id,
		     void (*fn)(void *ctx, unsigned id, int ok, uint32_t rtt_us, uint64_t now_ms), void *ctx);

/**
 * One probe outcome of a diverted backend (the path traffic uses), with
 * the usual rise/fall, window and breaker effects; why names a failure in
 * the backend_down event. Ignored for a backend that is not diverted.
 */
void qg_health_report(struct qg_health *hc, unsigned id, int ok, uint64_t now_ms, const char *why);

/** Descriptors to poll for POLLIN (the probe sockets). @return the number filled. */
unsigned qg_health_pollfds(const struct qg_health *hc, struct pollfd *fds, unsigned max);

/** Backends covered (every backend of every service, services in order). */
unsigned qg_health_backend_count(const struct qg_health *hc);

/** Id of backend b of service svc, or -1. */
int qg_health_backend_id(const struct qg_health *hc, unsigned svc, unsigned b);

/** What backend id looks like. @return 0 or -ENOENT. */
int qg_health_backend_info(const struct qg_health *hc, unsigned id, struct qg_health_info *out);

/** "unknown", "healthy", "degraded", "unhealthy". */
const char *qg_health_state_name(enum qg_health_state s);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_HEALTH_H */
