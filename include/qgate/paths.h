/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Path selection of multi-transport backends at run time (docs/BLUETOOTH.md,
 * "Which path"): one transport scorer (transport.h) per backend that has a
 * Bluetooth path, owned by the control thread.
 *
 *   - Its udp path (the first; the dataplane relays over no other) is probed
 *     by the health checker as any backend; the checker diverts each outcome
 *     and its RTT here (qg_health_divert).
 *   - Its Bluetooth paths are probed by the bridge thread, which queues the
 *     results; ops->poll reads them and calls qg_paths_bt_result().
 *   - Each result feeds the scorer. When the chosen path changes, the
 *     dataplane is told (ops->set_path: a published table, new flows take the
 *     path and established ones move at their next datagram), a
 *     QG_EVENT_PATH_SWITCH event is published, and the switch is counted.
 *   - The backend's health follows the path traffic uses: each result of
 *     the current path is the backend's probe outcome (qg_health_report), so
 *     a backend with a working path stays up when another path fails, and a
 *     Bluetooth-only backend gets active health from its links.
 *
 * Pure like the checker: I/O goes through the ops table, the clock is a
 * parameter, so switching is tested with fake results.
 */
#ifndef QGATE_PATHS_H
#define QGATE_PATHS_H

#include <poll.h>
#include <stdint.h>

#include "qgate/config.h"
#include "qgate/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qg_paths;
struct qg_health;
struct qg_event_bus;
struct qg_dataplane;
struct qg_bridge;

/** What the selector needs from the outside world; ctx is the ops' own. */
struct qg_paths_ops {
	/**
	 * Backend b of service svc now relays over its configured path `path`
	 * (index in its paths). 0 or -errno (logged; the choice stays and is
	 * published again at the next switch).
	 */
	int (*set_path)(void *ctx, unsigned svc, unsigned b, unsigned path);
	/** Optional: read the Bluetooth paths' results, report each with qg_paths_bt_result(). */
	void (*poll)(void *ctx, struct qg_paths *pm, uint64_t now_ms);
	/** Optional: descriptors to poll for POLLIN. @return the number filled. */
	unsigned (*pollfds)(void *ctx, struct pollfd *fds, unsigned max);
	/** Optional: free ctx (called by qg_paths_destroy). */
	void (*destroy)(void *ctx);
};

/** One path of a backend, for metrics and the admin socket. */
struct qg_paths_path {
	unsigned cfg_path; /**< index in the backend's configured paths */
	struct qg_transport_path t;
};

/** What one backend's selection looks like now. */
struct qg_paths_info {
	unsigned n;	  /**< paths scored */
	unsigned current; /**< index in path[] of the one traffic uses */
	uint64_t switches;
	struct qg_paths_path path[QG_TRANSPORT_MAX_PATHS];
};

/**
 * Create the selector over cfg (which must outlive it) and divert, in hc,
 * every backend it scores: backends of services with a probe that have a
 * Bluetooth path. Scored paths: the first udp path, then every Bluetooth
 * path, in the backend's order; bases and weights are the transport
 * defaults, rise/fall those of the service's health section, the hold time
 * its path_hold. bus may be NULL.
 * @return 0, -EINVAL or -ENOMEM.
 */
int qg_paths_create(const struct qg_config *cfg, struct qg_health *hc, const struct qg_paths_ops *ops,
		    void *ctx, struct qg_event_bus *bus, uint64_t now_ms, struct qg_paths **out);

/**
 * The real selector: ops read the bridge's probe results (qg_bridge_probe_pop)
 * and publish choices to dp (qg_dataplane_set_backend_path).
 */
int qg_paths_create_bridge(const struct qg_config *cfg, struct qg_health *hc, struct qg_dataplane *dp,
			   struct qg_bridge *bridge, struct qg_event_bus *bus, uint64_t now_ms,
			   struct qg_paths **out);

/**
 * After a reload: every backend pm scores that old scored too (same service
 * name and backend key, same paths) takes over its scores and choice, and
 * a choice other than the starting one is published again (the dataplane
 * kept it across the reload; publishing the same path is a no-op there).
 */
void qg_paths_adopt(struct qg_paths *pm, const struct qg_paths *old, uint64_t now_ms);

/** Free (NULL is fine); diverted backends of hc are handed back to it first. */
void qg_paths_destroy(struct qg_paths *pm);

/** Read the Bluetooth results (ops->poll) and let hold times run out. Control thread, every loop. */
void qg_paths_tick(struct qg_paths *pm, uint64_t now_ms);

/**
 * One probe result of Bluetooth path `path` (configured index) of backend b
 * of service svc. @return 0, or -ENOENT for a path not scored here.
 */
int qg_paths_bt_result(struct qg_paths *pm, unsigned svc, unsigned b, unsigned path, int ok, uint32_t rtt_us,
		       uint64_t now_ms);

/** Descriptors to poll for POLLIN (the bridge's results doorbell). @return the number filled. */
unsigned qg_paths_pollfds(const struct qg_paths *pm, struct pollfd *fds, unsigned max);

/** What backend b of service svc looks like. @return 0, or -ENOENT when it is not scored. */
int qg_paths_get_info(const struct qg_paths *pm, unsigned svc, unsigned b, struct qg_paths_info *out);

/** Switches since start (reloads included). */
uint64_t qg_paths_switches(const struct qg_paths *pm);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_PATHS_H */
