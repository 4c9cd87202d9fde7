/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate, the daemon: load and validate the configuration (or the built-in
 * default), start its components (config, events, dataplane, metrics,
 * admin) through the registry, run the control loop, reload the file on
 * SIGHUP, and stop them in the reverse order on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "qgate/clock.h"
#include "qgate/dataplane.h"
#include "qgate/log.h"
#include "qgate/notify.h"
#include "qgate/privs.h"

#define EXIT_BAD_CONFIG 2

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stop_signal;

static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
	stop_signal = sig;
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

/* qgatectl reload: the admin server calls this on the control thread. */
static int admin_reload(void *ctx, char *msg, size_t len)
{
	return qg_daemon_reload(ctx, msg, len);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: qgate [-c FILE] [--stats SECONDS] [-v | -q]\n"
		   "       qgate --check-config FILE\n"
		   "       qgate --print-default-config\n"
		   "\n"
		   "  -c, --config FILE        run with this YAML configuration (default: the built-in one)\n"
		   "      --check-config FILE  validate FILE and exit: 0 valid, 2 invalid\n"
		   "      --print-default-config  print the built-in configuration\n"
		   "      --stats SECONDS      print per-backend counters every SECONDS (overrides "
		   "stats_interval)\n"
		   "  -v, --verbose            debug logging\n"
		   "  -q, --quiet              errors and warnings only\n"
		   "  -h, --help               this text\n");
}

static int load(const char *path, struct qg_config **cfg)
{
	struct qg_config_errors errs;
	int rc;

	memset(&errs, 0, sizeof(errs));
	rc = path ? qg_config_load_file(path, cfg, &errs) : qg_config_load_default(cfg, &errs);
	if (rc)
		qg_config_errors_print(&errs, stderr);
	return rc;
}

/*
 * Graceful stop: no new flows, established ones are relayed until their
 * traffic pauses (QG_DRAIN_QUIET_MS without a relayed datagram) or
 * drain_timeout passes. A second signal ends the drain at once.
 */
#define QG_DRAIN_QUIET_MS 500

static void drain(struct qg_daemon *d)
{
	uint64_t start = qg_clock_ms(), last_change = start, prev = UINT64_MAX, now = start;
	uint32_t limit = d->cfg->drain_timeout_ms;
	struct timespec nap = { 0, 50 * 1000000L };

	if (!d->dp || !limit || qg_dataplane_drain(d->dp))
		return;
	QG_LOG_INFO("draining: no new flows; established ones until quiet for %u ms (at most %u ms)",
		    QG_DRAIN_QUIET_MS, limit);
	stop_requested = 0;
	while (!stop_requested) {
		struct qg_ctr_block c;
		uint64_t relayed;

		qg_dataplane_counters(d->dp, &c);
		/* Relayed, not received: new clients knocking must not keep the drain alive. */
		relayed = c.v[QG_CTR_TX_BACKEND] + c.v[QG_CTR_TX_CLIENT];
		now = qg_clock_ms();
		if (relayed != prev) {
			prev = relayed;
			last_change = now;
		}
		if (now - last_change >= QG_DRAIN_QUIET_MS || now - start >= limit)
			break;
		qg_daemon_watchdog(d);
		nanosleep(&nap, NULL);
	}
	QG_LOG_INFO("drain ended after %llu ms%s", (unsigned long long)(now - start),
		    stop_requested	   ? " (second signal)"
		    : now - start >= limit ? " (drain_timeout)"
					   : "");
}

/*
 * Bluetooth listeners on a PSM below the dynamic range need
 * CAP_NET_BIND_SERVICE, and the bridge thread has none after the drop: one
 * that must be reopened later (adapter reset) cannot bind it again.
 */
static void warn_bridge_psms(const struct qg_config *cfg)
{
	for (uint32_t i = 0; i < cfg->n_bridges; i++) {
		const struct qg_config_bridge *br = &cfg->bridges[i];
		int le = br->transport == QG_CONFIG_BT_LE;

		if (br->psm >= (le ? 0x0080 : 0x1001))
			continue;
		QG_LOG_WARN("bridge %u (line %d) listens on PSM 0x%04x, below the dynamic range: as user %s, "
			    "qgate cannot bind it again if the listener has to be reopened; prefer a PSM "
			    "from 0x%04x",
			    i, br->line, br->psm, cfg->run_as.user[0] ? cfg->run_as.user : "(uid)",
			    le ? 0x0080 : 0x1001);
	}
}

/*
 * Socket mode with `user:`: every port and the admin socket are bound, so
 * root goes (qgate/privs.h). Any failure is fatal: running with more
 * privileges than the file asks for would be worse than not running.
 */
static int drop_privileges(const struct qg_config *cfg, uint64_t keep)
{
	const struct qg_config_run_as *ra = &cfg->run_as;
	char msg[512], caps[128];
	int rc;

	rc = qg_privs_drop(ra, keep, msg, sizeof(msg));
	if (rc) {
		QG_LOG_ERR("cannot switch to user %s (uid %u, gid %u): %s%s", ra->user[0] ? ra->user : "-",
			   ra->uid, ra->gid, msg, rc == -EPERM ? " (start qgate as root to use user:)" : "");
		return rc;
	}
	rc = qg_privs_check_threads(ra->uid, ra->gid, keep, msg, sizeof(msg));
	if (rc < 0) {
		QG_LOG_ERR("privilege drop incomplete: %s", msg);
		return rc;
	}
	qg_privs_caps_text(keep, caps, sizeof(caps));
	QG_LOG_INFO("privileges: running as user %s (uid %u, gid %u), %d thread(s) checked; capabilities: "
		    "control thread %s, workers none",
		    ra->user[0] ? ra->user : "-", ra->uid, ra->gid, rc, caps);
	warn_bridge_psms(cfg);
	return 0;
}

/* Runs cfg (owned from here: a reload replaces it) until a stop signal. */
static int run(struct qg_config *cfg, const char *path)
{
	struct qg_daemon d;
	struct sigaction sa;
	struct qg_event ev;
	uint64_t keep = 0;
	int rc;

	memset(&sa, 0, sizeof(sa));
	/* No SA_RESTART: the signal must cut the control loop's poll() short. */
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.cfg_path = path;
	d.generation = 1;
	d.reload_requested = &reload_requested;
	d.target.reload = admin_reload;
	d.target.reload_ctx = &d;
	/* Before any thread exists, so every thread inherits the narrowed sets (qgate/privs.h). */
	if (cfg->run_as.enabled) {
		keep = qg_privs_keep(cfg, qg_privs_unpriv_port_start());
		rc = qg_privs_prepare(keep);
		if (rc) {
			QG_LOG_ERR("cannot prepare the privilege drop: %s", strerror(-rc));
			goto out;
		}
	} else if (geteuid() == 0 && cfg->dataplane.io != QG_CONFIG_IO_DPDK) {
		QG_LOG_INFO("running as root: set user: in the configuration to drop root after binding");
	}
	rc = qg_daemon_register(&d);
	if (rc) {
		QG_LOG_ERR("cannot start: %s", strerror(-rc));
		goto out;
	}
	/* Before the parts start: the bridge thread inherits the placement. */
	rc = qg_daemon_place_control(cfg);
	if (rc)
		QG_LOG_WARN("cannot move the control thread off the worker cores: %s", strerror(-rc));
	rc = qg_registry_start_all(d.reg);
	if (rc) {
		/* The registry has stopped whatever had started; its message names the part. */
		QG_LOG_ERR("cannot start: %s; %s", strerror(-rc), qg_registry_error(d.reg));
		goto out;
	}
	if (cfg->run_as.enabled) {
		rc = drop_privileges(cfg, keep);
		if (rc) {
			qg_registry_stop_all(d.reg);
			goto out;
		}
	}
	qg_daemon_watchdog_start(&d);
	qg_notify_ready("running");
	QG_LOG_INFO("ready (config %s)", cfg->source);
	qg_daemon_loop(&d, &stop_requested);
	qg_notify_stopping("draining and stopping");
	QG_LOG_INFO("stopping (signal %d)", (int)stop_signal);
	drain(&d);
	qg_event_init(&ev, QG_EVENT_SHUTDOWN, QG_EVENT_SEV_NOTICE);
	ev.arg[0] = stop_signal;
	qg_event_set_text(&ev, "stopping on signal %d", (int)stop_signal);
	qg_events_publish(d.bus, &ev);
	qg_events_dispatch(d.bus, 0);
	qg_registry_stop_all(d.reg);
	QG_LOG_INFO("stopped");
out:
	qg_daemon_unregister(&d);
	qg_config_free(d.cfg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "print-default-config", no_argument, NULL, 'P' },
		{ "stats", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *check = NULL;
	struct qg_config *cfg = NULL;
	double stats = -1;
	int c;

	while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = optarg;
			break;
		case 'P':
			fputs(qg_config_default_yaml(), stdout);
			return 0;
		case 's': {
			char *end;

			stats = strtod(optarg, &end);
			if (*end || stats < 0 || stats > 86400) {
				fprintf(stderr, "qgate: --stats takes seconds (0..86400), not '%s'\n",
					optarg);
				return EXIT_BAD_CONFIG;
			}
			break;
		}
		case 'v':
			qg_log_set_level(QG_LOG_DEBUG);
			break;
		case 'q':
			qg_log_set_level(QG_LOG_WARN);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_BAD_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qgate: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_BAD_CONFIG;
	}
	if (check) {
		if (load(check, &cfg))
			return EXIT_BAD_CONFIG;
		printf("%s: valid (%u service(s))\n", check, cfg->n_services);
		qg_config_free(cfg);
		return 0;
	}
	if (load(path, &cfg))
		return EXIT_BAD_CONFIG;
	if (stats >= 0)
		cfg->stats_interval_ms = (uint32_t)(stats * 1000);
	return run(cfg, path);
}
