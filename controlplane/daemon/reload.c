/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hot reload (SIGHUP or `qgatectl reload`), on the control thread. The new
 * file is loaded and validated whole first: any error leaves everything
 * running as it is and goes back to the operator. A valid file goes to the
 * dataplane (which keeps what did not change: services' sockets and flows,
 * backends' slots, flows and health verdicts), then the parts that read the
 * configuration follow it: the health checker and breakers, the admin
 * target (weights as configured again), the stats report and the metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "qgate/clock.h"
#include "qgate/log.h"
#include "qgate/privs.h"

/* Every error of the file, one "FILE:LINE:COLUMN: message" per line, into msg. */
static void errors_text(const struct qg_config_errors *errs, char *msg, size_t len)
{
	FILE *f = fmemopen(msg, len, "w");

	if (!f) {
		snprintf(msg, len, "%u error(s) in the configuration", errs->count);
		return;
	}
	qg_config_errors_print(errs, f);
	fclose(f);
	msg[len - 1] = '\0';
	/* One answer line per error reads well; drop the trailing newline. */
	for (size_t n = strlen(msg); n && msg[n - 1] == '\n'; n--)
		msg[n - 1] = '\0';
}

/* Settings read only at start-up: tell the operator instead of ignoring them silently. */
static void note_restart_only(const struct qg_config *o, const struct qg_config *n, char *msg, size_t len)
{
	size_t used = strlen(msg);

	if (strcmp(o->admin.socket, n->admin.socket) != 0 || o->admin.mode != n->admin.mode ||
	    o->admin.has_owner != n->admin.has_owner || o->admin.owner != n->admin.owner ||
	    o->admin.has_group != n->admin.has_group || o->admin.group != n->admin.group)
		used += (size_t)snprintf(msg + used, used < len ? len - used : 0,
					 "; admin changed: it takes effect at the next restart");
	if (used < len && !qg_addr_equal(&o->metrics.listen, &n->metrics.listen))
		used += (size_t)snprintf(msg + used, len - used,
					 "; metrics.listen changed: it takes effect at the next restart");
	/* Root is gone after the first start: only a restart can switch to another user. */
	if (used < len && (o->run_as.enabled != n->run_as.enabled || o->run_as.uid != n->run_as.uid ||
			   o->run_as.gid != n->run_as.gid))
		snprintf(msg + used, len - used, "; user/group changed: it takes effect at the next restart");
}

static void publish(struct qg_daemon *d, int ok, uint64_t gen, const char *text)
{
	struct qg_event ev;

	qg_event_init(&ev, ok ? QG_EVENT_RELOAD_OK : QG_EVENT_RELOAD_FAILED,
		      ok ? QG_EVENT_SEV_NOTICE : QG_EVENT_SEV_ERROR);
	ev.arg[0] = gen;
	qg_event_set_text(&ev, "%s", text);
	qg_events_publish(d->bus, &ev);
}

/* The parts that follow the configuration, rebuilt for cfg. 0 or -errno. */
static int follow(struct qg_daemon *d, const struct qg_config *cfg)
{
	struct qg_stats_report *report = NULL;
	struct qg_health *health = NULL;
	struct qg_paths *paths = NULL;
	int rc;

	rc = qg_stats_report_create(cfg, &report);
	if (rc)
		return rc;
	if (d->health) {
		rc = qg_health_create_udp(cfg, d->dp, d->bus, qg_clock_ms(), &health);
		if (rc) {
			qg_stats_report_destroy(report);
			return rc;
		}
		qg_health_adopt(health, d->health);
		if (d->paths) {
			rc = qg_paths_create_bridge(cfg, health, d->dp, d->bridge, d->bus, qg_clock_ms(),
						    &paths);
			if (rc) {
				qg_health_destroy(health);
				qg_stats_report_destroy(report);
				return rc;
			}
			qg_paths_adopt(paths, d->paths, qg_clock_ms());
		}
		/* The old selector first: it hands its diverted backends back to the old checker. */
		qg_paths_destroy(d->paths);
		qg_health_destroy(d->health);
		d->health = health;
		d->paths = paths;
		d->target.health = health;
		d->target.paths = paths;
		d->metrics_src.health = health;
		d->metrics_src.paths = paths;
	}
	qg_stats_report_destroy(d->report);
	d->report = report;
	qg_admin_target_fini(&d->target);
	rc = qg_admin_target_init(&d->target, cfg);
	d->metrics_src.cfg = cfg;
	d->metrics_src.weights = d->target.weights;
	/* New thresholds and dwell; the current level and an operator's floor stay. */
	if (d->protect && qg_protect_reconfigure(d->protect, &cfg->degradation.ctl, cfg->degradation.enabled,
						 qg_clock_ms()) != 0)
		QG_LOG_WARN("reload: the degradation section could not be applied; the previous one stays");
	return rc;
}

static int reload(struct qg_daemon *d, char *msg, size_t len)
{
	struct qg_config_errors errs;
	struct qg_config *cfg = NULL, *old = d->cfg;
	int rc;

	msg[0] = '\0';
	if (!d->cfg_path) {
		snprintf(msg, len,
			 "qgate runs the built-in configuration (no --config FILE): nothing to reload");
		publish(d, 0, d->generation, msg);
		return -ENOENT;
	}
	if (!d->dp) {
		snprintf(msg, len, "the dataplane is not running");
		return -ENODEV;
	}
	memset(&errs, 0, sizeof(errs));
	rc = qg_config_load_file(d->cfg_path, &cfg, &errs);
	if (rc) {
		if (errs.count)
			errors_text(&errs, msg, len);
		else
			snprintf(msg, len, "%s: %s", d->cfg_path, strerror(-rc));
		QG_LOG_ERR("reload refused, the running configuration stays:\n%s", msg);
		publish(d, 0, d->generation, msg);
		return rc;
	}
	rc = qg_dataplane_reload(d->dp, cfg, msg, len);
	if (rc == -EACCES && old->run_as.enabled) {
		size_t used = strlen(msg);

		/* The likely cause, named: root is gone and the control thread kept no capability to bind. */
		if (used < len)
			snprintf(msg + used, len - used,
				 "; qgate runs as user %s and keeps CAP_NET_BIND_SERVICE only when a service "
				 "listened below port %u at start: restart it to bind such a port",
				 old->run_as.user[0] ? old->run_as.user : "(uid)",
				 qg_privs_unpriv_port_start());
	}
	if (rc && rc != -ETIMEDOUT) {
		publish(d, 0, d->generation, msg);
		qg_config_free(cfg);
		return rc;
	}
	/* From here the dataplane runs cfg: everything else follows it, whatever happens. */
	d->cfg = cfg;
	d->generation++;
	note_restart_only(old, cfg, msg, len);
	if (follow(d, cfg) != 0)
		QG_LOG_ERR(
			"reload: the health checker or admin state could not follow the new configuration");
	publish(d, 1, d->generation, msg);
	qg_config_free(old);
	return rc;
}

int qg_daemon_reload(struct qg_daemon *d, char *msg, size_t len)
{
	int rc;

	/* systemd shows "reloading" meanwhile; READY=1 ends it whatever the outcome (a refused file changes
	 * nothing). */
	qg_notify_reloading();
	rc = reload(d, msg, len);
	qg_notify_ready(rc && rc != -ETIMEDOUT ? "reload refused; running the previous configuration"
					       : "running");
	return rc;
}
