/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control thread's loop. One thread does all control work, so the
 * registry, the bus's dispatch, the admin commands and the metrics rendering
 * never need a lock between them. It sleeps in poll() on the admin socket
 * MHD's epoll descriptor and the health probe sockets for at most 50 ms
 * (less when a probe or a probe timeout is due), so a request is answered as
 * soon as it arrives and events are dispatched at least every 50 ms; a
 * signal interrupts poll() so SIGTERM is seen at once.
 *
 * The thread shares a machine with the workers, so a wake must be cheap:
 * probes due within the same HEALTH_GRID_MS go out in one wake (100
 * backends every 100 ms: 100 wakes a second instead of one per probe), and
 * the admin socket and MHD are only serviced when poll() saw them ready, or
 * once a period for their time-outs (an accept() and an MHD_run() at every
 * probe wake were a third of the thread's time).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "qgate/clock.h"
#include "qgate/log.h"

#define LOOP_PERIOD_MS 50
#define HEALTH_GRID_MS 10  /* probes due within one grid step share a wake */
#define HEALTH_FDS_MAX 256 /* probe sockets polled; more are still read at each tick */

/* A worker's heartbeat: records its loop put into its telemetry ring (one per sample period). */
static unsigned worker_beats(const struct qg_daemon *d, uint64_t *beats)
{
	unsigned n = d->dp ? qg_dataplane_workers(d->dp) : 0;

	if (n > QG_CONFIG_MAX_CORES)
		n = QG_CONFIG_MAX_CORES;
	for (unsigned i = 0; i < n; i++) {
		struct qg_ring_stats rs;

		beats[i] = qg_dataplane_ring_stats(d->dp, i, &rs) == 0 ? rs.published + rs.dropped : 0;
	}
	return n;
}

void qg_daemon_watchdog_start(struct qg_daemon *d)
{
	uint64_t beats[QG_CONFIG_MAX_CORES], usec = qg_notify_watchdog_usec();
	unsigned n = worker_beats(d, beats);

	qg_watchdog_init(&d->watchdog, usec, beats, n, qg_clock_ms());
	if (usec)
		QG_LOG_INFO("systemd watchdog: %llu ms, petted every %llu ms while all %u worker(s) progress",
			    (unsigned long long)(usec / 1000), (unsigned long long)d->watchdog.period_ms, n);
}

void qg_daemon_watchdog(struct qg_daemon *d)
{
	uint64_t beats[QG_CONFIG_MAX_CORES];
	int was = d->watchdog.stalled, rc;
	unsigned n, stalled = 0;

	if (!d->watchdog.period_ms || qg_clock_ms() < d->watchdog.next_ms)
		return;
	n = worker_beats(d, beats);
	if (!n)
		return; /* no dataplane: nothing proves qgate still relays */
	rc = qg_watchdog_check(&d->watchdog, beats, n, qg_clock_ms(), &stalled);
	if (rc > 0) {
		qg_notify_watchdog();
		if (was)
			QG_LOG_WARN("systemd watchdog: every worker progresses again; petting it again");
	} else if (rc < 0 && !was) {
		QG_LOG_ERR(
			"systemd watchdog: worker %u made no progress for %llu ms; not petting the watchdog "
			"(systemd restarts qgate when it runs out)",
			stalled, (unsigned long long)d->watchdog.period_ms);
	}
}

/* Whether poll() saw any of fds[0..n) ready. */
static int any_ready(const struct pollfd *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i].revents)
			return 1;
	return 0;
}

/* poll() timeout for the health checker's next due time, rounded up to the grid. */
static int health_timeout(const struct qg_health *hc, uint64_t now, int timeout)
{
	uint64_t due;

	if (!hc)
		return timeout;
	due = qg_health_next_ms(hc);
	if (due == UINT64_MAX)
		return timeout;
	due = (due + HEALTH_GRID_MS - 1) / HEALTH_GRID_MS * HEALTH_GRID_MS;
	if (due <= now)
		return 0;
	return due - now < (uint64_t)timeout ? (int)(due - now) : timeout;
}

void qg_daemon_loop(struct qg_daemon *d, volatile sig_atomic_t *stop)
{
	struct pollfd fds[QG_ADMIN_CONN_MAX + 3 + HEALTH_FDS_MAX];
	uint64_t now, next_stats = 0, next_period = 0;
	uint32_t every = d->cfg->stats_interval_ms;
	unsigned n, n_admin, i_metrics;
	int timeout, period;

	if (every)
		next_stats = qg_clock_ms() + every;
	while (!*stop) {
		n = n_admin = qg_admin_pollfds(d->admin, fds, QG_ADMIN_CONN_MAX + 1);
		i_metrics = UINT_MAX;
		if (qg_metrics_fd(d->metrics) >= 0) {
			i_metrics = n;
			fds[n].fd = qg_metrics_fd(d->metrics);
			fds[n].events = POLLIN;
			fds[n++].revents = 0;
		}
		n += qg_health_pollfds(d->health, fds + n, HEALTH_FDS_MAX);
		n += qg_paths_pollfds(d->paths, fds + n, 1);
		/* Wake for the next probe or probe timeout, not only every period. */
		now = qg_clock_ms();
		timeout = health_timeout(d->health, now, LOOP_PERIOD_MS);
		if (next_period > now && next_period - now < (uint64_t)timeout)
			timeout = (int)(next_period - now);
		if (poll(fds, n, timeout) < 0 && errno != EINTR)
			QG_LOG_WARN("control loop: poll: %s", strerror(errno));
		if (*stop)
			break;
		if (d->reload_requested && *d->reload_requested) {
			char msg[4096];

			*d->reload_requested = 0;
			QG_LOG_INFO("SIGHUP: reloading %s",
				    d->cfg_path ? d->cfg_path : "(built-in configuration)");
			(void)qg_daemon_reload(d, msg, sizeof(msg)); /* logged either way */
			every = d->cfg->stats_interval_ms;
		}
		/* Once a period everything runs, for the time-outs of admin and HTTP clients. */
		period = qg_clock_ms() >= next_period;
		if (period)
			next_period = qg_clock_ms() + LOOP_PERIOD_MS;
		if (period || any_ready(fds, n_admin))
			qg_admin_poll(d->admin, qg_clock_ns());
		if (period || (i_metrics != UINT_MAX && fds[i_metrics].revents))
			qg_metrics_poll(d->metrics);
		if (d->health)
			qg_health_tick(d->health, qg_clock_ms());
		qg_paths_tick(d->paths, qg_clock_ms());
		if (d->protect)
			qg_protect_tick(d->protect, qg_clock_ms());
		qg_events_dispatch(d->bus, 0);
		qg_daemon_watchdog(d);
		if (every && qg_clock_ms() >= next_stats && d->dp && d->report) {
			qg_stats_report_print(d->report, d->dp, stdout);
			next_stats = qg_clock_ms() + every;
		}
	}
}
