/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control thread's loop. One thread does all control work, so the
 * registry, the bus's dispatch, the admin commands and the metrics rendering
 * never need a lock between them. It sleeps in poll() on the admin socket
 * MHD's epoll descriptor and the health probe sockets for at most 50 ms
 * (less when a probe or a probe timeout is due), so a request is answered as
 * soon as it arrives and events are dispatched at least every 50 ms; a
 * signal interrupts poll() so SIGTERM is seen at once.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "qgate/clock.h"
#include "qgate/log.h"

#define LOOP_PERIOD_MS 50
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

void qg_daemon_loop(struct qg_daemon *d, volatile sig_atomic_t *stop)
{
	struct pollfd fds[QG_ADMIN_CONN_MAX + 3 + HEALTH_FDS_MAX];
	uint64_t now, next_stats = 0, due;
	int timeout;
	uint32_t every = d->cfg->stats_interval_ms;
	unsigned n;

	if (every)
		next_stats = qg_clock_ms() + every;
	while (!*stop) {
		n = qg_admin_pollfds(d->admin, fds, QG_ADMIN_CONN_MAX + 1);
		if (qg_metrics_fd(d->metrics) >= 0) {
			fds[n].fd = qg_metrics_fd(d->metrics);
			fds[n].events = POLLIN;
			fds[n++].revents = 0;
		}
		n += qg_health_pollfds(d->health, fds + n, HEALTH_FDS_MAX);
		n += qg_paths_pollfds(d->paths, fds + n, 1);
		/* Wake for the next probe or probe timeout, not only every period. */
		timeout = LOOP_PERIOD_MS;
		if (d->health) {
			due = qg_health_next_ms(d->health);
			now = qg_clock_ms();
			if (due <= now)
				timeout = 0;
			else if (due - now < LOOP_PERIOD_MS)
				timeout = (int)(due - now);
		}
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
		now = qg_clock_ns();
		qg_admin_poll(d->admin, now);
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
