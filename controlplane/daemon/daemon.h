/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The qgate daemon's parts, shared by its files: main.c (options, life
 * cycle), components.c (what the registry starts and stops) and loop.c (the
 * control thread's loop).
 */
#ifndef QG_DAEMON_H
#define QG_DAEMON_H

#include <signal.h>
#include <stdint.h>

#include "qgate/admin.h"
#include "qgate/bridge.h"
#include "qgate/config.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/metrics.h"
#include "qgate/notify.h"
#include "qgate/paths.h"
#include "qgate/protect.h"
#include "qgate/registry.h"
#include "stats.h"

/** Everything the daemon runs; owned by main(), reached by every part through its ctx. */
struct qg_daemon {
	struct qg_config *cfg;
	struct qg_registry *reg;
	struct qg_event_bus *bus; /* created before the registry: parts publish while they start */
	struct qg_dataplane *dp;
	struct qg_health *health;   /* probes and breakers, ticked by the control loop */
	struct qg_paths *paths;	    /* multi-path backends' scorers (with the bridge), ticked by the loop */
	struct qg_bridge *bridge;   /* Bluetooth bridge: its own thread, NULL when not configured */
	struct qg_protect *protect; /* telemetry -> anomalies and degradation level, ticked by the loop */
	struct qg_stats_report *report;
	struct qg_metrics *metrics;
	struct qg_admin *admin;
	struct qg_metrics_source metrics_src;
	struct qg_admin_target target; /* weights, drain memory, start times */
	int log_sub_subscribed;
	uint64_t start_ns;
	const char *cfg_path;			 /* --config FILE; NULL: the built-in configuration */
	uint64_t generation;			 /* configurations loaded so far, 1 at start */
	volatile sig_atomic_t *reload_requested; /* SIGHUP */
	struct qg_watchdog watchdog;		 /* systemd WatchdogSec, petted while the workers progress */
	struct qg_bridge_unix bridge_unix;	 /* the stand-in's context, with QG_DAEMON_BRIDGE_UNIX_ENV */
};

/*
 * Tests only: when set (an abstract-name prefix), the bridge runs on the
 * AF_UNIX SOCK_SEQPACKET stand-in of L2CAP (qgate/bridge.h) instead of
 * Bluetooth, so the daemon's Bluetooth paths can be tested end to end on
 * machines without Bluetooth. Anyone on the host can bind abstract names:
 * never set it in production.
 */
#define QG_DAEMON_BRIDGE_UNIX_ENV "QGATE_TEST_BRIDGE_UNIX"

/**
 * Create the bus and the registry, install the state observer (logs every
 * transition and publishes QG_EVENT_COMPONENT_STATE) and register the parts:
 * config, events, dataplane, then metrics and admin when configured.
 * @return 0 or -errno.
 */
int qg_daemon_register(struct qg_daemon *d);

/** Free what qg_daemon_register() made (after qg_registry_stop_all()). */
void qg_daemon_unregister(struct qg_daemon *d);

/**
 * Narrow the calling (control) thread to the allowed CPUs that run no worker
 * of cfg, so probes, scrapes and reloads do not take time from the workers;
 * threads it starts later inherit the placement. Leaves it alone when every
 * allowed CPU runs a worker, or with the dpdk backend (EAL places it).
 * @return 0 or -errno.
 */
int qg_daemon_place_control(const struct qg_config *cfg);

/**
 * Run the control loop until *stop is set: wait at most 50 ms for the admin
 * socket or the metrics server, serve them, dispatch events, print stats
 * when configured.
 */
void qg_daemon_loop(struct qg_daemon *d, volatile sig_atomic_t *stop);

/**
 * Arm the systemd watchdog (when $WATCHDOG_USEC asks for one) with the
 * workers' heartbeats as they are now. Call once the dataplane runs.
 */
void qg_daemon_watchdog_start(struct qg_daemon *d);

/**
 * Send WATCHDOG=1 when due and every worker's loop made progress since the
 * last one; log a worker that did not (once per stall). Control thread.
 */
void qg_daemon_watchdog(struct qg_daemon *d);

/**
 * Reload the configuration file (SIGHUP, `qgatectl reload`): validate it
 * whole, hand it to the dataplane, rebuild the parts that follow it. On any
 * error nothing changes and msg says why (every config error as
 * FILE:LINE:COLUMN: message). @return 0 or -errno.
 */
int qg_daemon_reload(struct qg_daemon *d, char *msg, size_t len);

#endif /* QG_DAEMON_H */
