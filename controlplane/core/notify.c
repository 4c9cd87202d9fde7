/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sd_notify() wrappers and the watchdog's decision (qgate/notify.h). Built
 * with libsystemd when pkg-config finds it (QGATE_HAVE_SYSTEMD); otherwise
 * the notifications are no-ops and qgate says so once when it runs under a
 * notify socket, so a Type=notify unit does not time out unexplained.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/log.h"
#include "qgate/notify.h"

#ifdef QGATE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

int qg_notify_supported(void)
{
	return 1;
}

/* unset_environment 0: reloads and tests may look again; nothing we start inherits it (no exec). */
static void notify(const char *state)
{
	int rc = sd_notify(0, state);

	if (rc < 0)
		QG_LOG_WARN("systemd notification '%.20s' failed: %s", state, strerror(-rc));
}

uint64_t qg_notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	/* Checks $WATCHDOG_PID against our pid too, so a child's copy of the variable is ignored. */
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
#else
int qg_notify_supported(void)
{
	return 0;
}

static void notify(const char *state)
{
	static int said;

	if (!said && getenv("NOTIFY_SOCKET")) {
		QG_LOG_WARN(
			"run by systemd with a notify socket, but this qgate was built without libsystemd: "
			"'%.20s' not sent (use Type=simple, or rebuild with libsystemd-dev)",
			state);
		said = 1;
	}
}

uint64_t qg_notify_watchdog_usec(void)
{
	return 0;
}
#endif

void qg_notify_ready(const char *status)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "READY=1%s%s", status ? "\nSTATUS=" : "", status ? status : "");
	notify(msg);
}

void qg_notify_reloading(void)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(qg_clock_ns() / 1000));
	notify(msg);
}

void qg_notify_stopping(const char *status)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "STOPPING=1%s%s", status ? "\nSTATUS=" : "", status ? status : "");
	notify(msg);
}

void qg_notify_watchdog(void)
{
	notify("WATCHDOG=1");
}

void qg_watchdog_init(struct qg_watchdog *w, uint64_t usec, const uint64_t *beats, unsigned n,
		      uint64_t now_ms)
{
	memset(w, 0, sizeof(*w));
	if (!usec)
		return;
	/* Half the timeout, as sd_watchdog_enabled(3) recommends; at least 1 ms. */
	w->period_ms = usec / 2000 ? usec / 2000 : 1;
	w->next_ms = now_ms + w->period_ms;
	w->n = n > QG_CONFIG_MAX_CORES ? QG_CONFIG_MAX_CORES : n;
	if (w->n)
		memcpy(w->beats, beats, w->n * sizeof(*beats));
}

int qg_watchdog_check(struct qg_watchdog *w, const uint64_t *beats, unsigned n, uint64_t now_ms,
		      unsigned *stalled)
{
	if (!w->period_ms || now_ms < w->next_ms)
		return 0;
	if (n > QG_CONFIG_MAX_CORES)
		n = QG_CONFIG_MAX_CORES;
	/* A changed worker count (none yet) has nothing to compare with: it starts over. */
	if (w->n == n) {
		for (unsigned i = 0; i < n; i++) {
			if (beats[i] == w->beats[i]) {
				if (stalled)
					*stalled = i;
				w->stalled = 1;
				return -1;
			}
		}
	}
	memcpy(w->beats, beats, n * sizeof(*beats));
	w->n = n;
	w->next_ms = now_ms + w->period_ms;
	w->stalled = 0;
	return 1;
}
