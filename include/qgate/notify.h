/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * systemd service notification (sd_notify(3)) for Type=notify units:
 * READY=1 once qgate serves, RELOADING=1 / READY=1 around a reload,
 * STOPPING=1 at shutdown, WATCHDOG=1 from the control loop while every
 * worker makes progress. Without $NOTIFY_SOCKET (not run by systemd) or in a
 * build without libsystemd every call does nothing.
 */
#ifndef QGATE_NOTIFY_H
#define QGATE_NOTIFY_H

#include <stdint.h>

#include "qgate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** 1 when this build can notify systemd (libsystemd was found), else 0. */
int qg_notify_supported(void);

/** READY=1 with STATUS=status (NULL: none). */
void qg_notify_ready(const char *status);

/** RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload wants); READY=1 must follow. */
void qg_notify_reloading(void);

/** STOPPING=1 with STATUS=status (NULL: none). */
void qg_notify_stopping(const char *status);

/** WATCHDOG=1. */
void qg_notify_watchdog(void);

/** The watchdog timeout systemd set for this process ($WATCHDOG_USEC), 0 when none. */
uint64_t qg_notify_watchdog_usec(void);

/**
 * When to pet the watchdog: every half timeout, and only when each worker's
 * heartbeat moved since the previous ping. The daemon uses the records a
 * worker's loop puts into its telemetry ring, one per 100 ms sample period
 * (published + dropped of qg_dataplane_ring_stats()). A stuck worker thus stops the pings and systemd
 * restarts qgate, even though the control thread itself is fine.
 */
struct qg_watchdog {
	uint64_t period_ms; /**< half the timeout; 0 = no watchdog */
	uint64_t next_ms;   /**< when the next ping is due */
	unsigned n;	    /**< workers whose beats are remembered */
	uint64_t beats[QG_CONFIG_MAX_CORES];
	int stalled; /**< the last check found a worker without progress (the daemon logs the first) */
};

/**
 * Set w up for a timeout of usec (0: off) at now_ms, with the workers'
 * heartbeats as they are now; the first ping is due after one period, when
 * every one of them moved.
 */
void qg_watchdog_init(struct qg_watchdog *w, uint64_t usec, const uint64_t *beats, unsigned n,
		      uint64_t now_ms);

/**
 * Decide at now_ms, given the workers' current heartbeats.
 * @param stalled set to the first worker whose beat did not move (when -1 is returned)
 * @return 1: ping now (the beats are remembered); 0: not due; -1: due, but a
 *         worker made no progress since the previous ping (asked again on the
 *         next call, so the ping goes out as soon as it moves again)
 */
int qg_watchdog_check(struct qg_watchdog *w, const uint64_t *beats, unsigned n, uint64_t now_ms,
		      unsigned *stalled);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_NOTIFY_H */
