/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's parts as registry components. Each start op brings one thing
 * up and each stop op takes it down, so the registry's dependency order is
 * the whole start-up and shut-down sequence: config, events, the Bluetooth
 * bridge when configured (its rings outlive the workers), dataplane,
 * health (probes and breakers acting on the dataplane), then metrics and admin (which read the dataplane and
 * publish events); shut-down is the reverse, so the admin socket disappears before the workers stop and
 * nobody is told "OK" about a dataplane that is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "qgate/clock.h"
#include "qgate/log.h"

/* Every transition is logged at info (operators and tests read the order) and published. */
static void on_state(void *ctx, const char *name, enum qg_registry_state from, enum qg_registry_state to,
		     int err)
{
	struct qg_daemon *d = ctx;
	struct qg_event ev;
	int idx;

	if (to == QG_REGISTRY_FAILED)
		QG_LOG_ERR("component %s failed: %s", name, strerror(-err));
	else
		QG_LOG_INFO("component %s %s", name, qg_registry_state_name(to));
	idx = qg_registry_find(d->reg, name);
	if (to == QG_REGISTRY_RUNNING && idx >= 0 && idx < QG_ADMIN_PARTS_MAX)
		d->target.part_since_ns[idx] = qg_clock_ns();
	qg_event_init(&ev, QG_EVENT_COMPONENT_STATE,
		      to == QG_REGISTRY_FAILED ? QG_EVENT_SEV_ERROR : QG_EVENT_SEV_INFO);
	snprintf(ev.component, sizeof(ev.component), "%s", name);
	ev.arg[0] = from;
	ev.arg[1] = to;
	ev.arg[2] = err;
	qg_event_set_text(&ev, "%s -> %s", qg_registry_state_name(from), qg_registry_state_name(to));
	qg_events_publish(d->bus, &ev);
}

/* The log subscriber: what the bus carries, on stderr (component states are logged by on_state). */
static int log_event(const struct qg_event *ev, void *ctx)
{
	(void)ctx;
	qg_log(ev->severity >= QG_EVENT_SEV_WARNING ? QG_LOG_WARN : QG_LOG_INFO, "event %s%s%s%s%s%s%s: %s",
	       qg_event_type_name((enum qg_event_type)ev->type), ev->service_name[0] ? " service=" : "",
	       ev->service_name, ev->backend_name[0] ? " backend=" : "", ev->backend_name,
	       ev->component[0] ? " component=" : "", ev->component, ev->text);
	return 0;
}

static int config_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	const struct qg_config *cfg = d->cfg;
	char addr[QG_ADDR_STRLEN];

	QG_LOG_INFO("config %s: %u service(s), drain_timeout %u ms", cfg->source, cfg->n_services,
		    cfg->drain_timeout_ms);
	/* Allowed, but the exposition maps the whole gateway for whoever can reach it. */
	if (cfg->metrics.enabled && !qg_metrics_addr_is_loopback(&cfg->metrics.listen))
		QG_LOG_WARN(
			"metrics listen %s is not a loopback address: anyone who can reach it sees the "
			"gateway's services, backends and counters, unauthenticated; keep it on 127.0.0.1 "
			"or ::1, or firewall it",
			qg_addr_format(&cfg->metrics.listen, addr, sizeof(addr)));
	return 0;
}

static int events_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	struct qg_event_sub_desc sub = {
		.name = "log",
		.fn = log_event,
		.ctx = d,
		.type_mask = QG_EVENT_MASK_ALL & ~QG_EVENT_MASK(QG_EVENT_COMPONENT_STATE),
		.min_severity = QG_EVENT_SEV_INFO,
	};
	unsigned id;
	int rc;

	/* Subscriptions cannot be taken back: a restarted part keeps the first one. */
	if (d->log_sub_subscribed)
		return 0;
	rc = qg_events_subscribe(d->bus, &sub, &id);
	if (!rc)
		d->log_sub_subscribed = 1;
	return rc;
}

static void events_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	/* Deliver what is queued: the last admin actions still reach the log. */
	qg_events_dispatch(d->bus, 0);
}

/* Bluetooth-only backends without a bridge (no Bluetooth in this kernel): their flows are dropped. */
static void warn_unbridged(const struct qg_config *cfg)
{
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		const struct qg_config_service *svc = &cfg->services[s];

		for (uint32_t b = 0; b < svc->n_backends; b++) {
			if (svc->backends[b].addr.family || !svc->backends[b].weight)
				continue;
			QG_LOG_WARN(
				"service %s backend %u (line %d) has no udp path and the bridge is not "
				"running: flows it is chosen for are dropped (no_bridge); give it weight 0 "
				"or a udp path",
				svc->name, b, svc->backends[b].line);
		}
	}
}

static int dataplane_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	const struct qg_config *cfg = d->cfg;
	int rc;

	rc = qg_dataplane_create(cfg, &d->dp);
	if (rc)
		goto err;
	/* The bridge started first (its rings outlive the workers): every worker polls its pair. */
	if (d->bridge) {
		rc = qg_dataplane_attach_bridge(d->dp, qg_bridge_get_rings(d->bridge));
		if (rc)
			goto err;
	} else {
		warn_unbridged(cfg);
	}
	rc = qg_stats_report_create(cfg, &d->report);
	if (rc)
		goto err;
	rc = qg_dataplane_start(d->dp);
	if (rc)
		goto err;
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		char addr[QG_ADDR_STRLEN];

		QG_LOG_INFO("service %s listening on %s (udp), %u backend(s)", cfg->services[s].name,
			    qg_addr_format(&cfg->services[s].listen, addr, sizeof(addr)),
			    cfg->services[s].n_backends);
	}
	d->target.dp = d->dp;
	d->metrics_src.dp = d->dp;
	return 0;
err:
	qg_stats_report_destroy(d->report);
	d->report = NULL;
	qg_dataplane_destroy(d->dp);
	d->dp = NULL;
	return rc;
}

static void dataplane_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	d->target.dp = NULL;
	d->metrics_src.dp = NULL;
	qg_dataplane_stop(d->dp);
	qg_stats_report_totals(d->dp, stderr);
	qg_stats_report_destroy(d->report);
	d->report = NULL;
	qg_dataplane_destroy(d->dp);
	d->dp = NULL;
}

static int health_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	int rc;

	rc = qg_health_create_udp(d->cfg, d->dp, d->bus, qg_clock_ms(), &d->health);
	if (rc)
		return rc;
	/* Paths are chosen on probes of every path: only the bridge can probe the Bluetooth ones. */
	if (d->bridge) {
		rc = qg_paths_create_bridge(d->cfg, d->health, d->dp, d->bridge, d->bus, qg_clock_ms(),
					    &d->paths);
		if (rc) {
			qg_health_destroy(d->health);
			d->health = NULL;
			return rc;
		}
	}
	d->target.health = d->health;
	d->target.paths = d->paths;
	d->metrics_src.health = d->health;
	d->metrics_src.paths = d->paths;
	return 0;
}

static void health_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	d->target.health = NULL;
	d->target.paths = NULL;
	d->metrics_src.health = NULL;
	d->metrics_src.paths = NULL;
	/* Before the checker: it hands the diverted backends back to it. */
	qg_paths_destroy(d->paths);
	d->paths = NULL;
	qg_health_destroy(d->health);
	d->health = NULL;
}

/* The protection path: drains the workers' telemetry rings and drives the degradation level. */
static int protect_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	struct qg_protect_params pp;
	int rc;

	memset(&pp, 0, sizeof(pp));
	pp.n_workers = qg_dataplane_workers(d->dp);
	pp.degrade = &d->cfg->degradation.ctl;
	pp.controller = d->cfg->degradation.enabled;
	pp.dp = d->dp;
	pp.bus = d->bus;
	rc = qg_protect_create(&pp, qg_clock_ms(), &d->protect);
	if (rc)
		return rc;
	d->target.protect = d->protect;
	d->metrics_src.protect = d->protect;
	QG_LOG_INFO("degradation: controller %s, min_dwell %llu ms, anomaly_hold %llu ms",
		    pp.controller ? "on" : "off (level set by qgatectl only)",
		    (unsigned long long)pp.degrade->min_dwell_ms,
		    (unsigned long long)pp.degrade->anomaly_hold_ms);
	return 0;
}

static void protect_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	d->target.protect = NULL;
	d->metrics_src.protect = NULL;
	qg_protect_destroy(d->protect);
	d->protect = NULL;
}

/*
 * The Bluetooth bridge (qgate/bridge.h, docs/BLUETOOTH.md): its thread owns
 * the L2CAP sockets and the rings to the workers. Registered only when the
 * configuration asks for it and the kernel has Bluetooth (qg_daemon_register).
 */
static int bridge_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	const struct qg_config *cfg = d->cfg;
	int rc;

	struct qg_bridge_opts o;
	const char *prefix = getenv(QG_DAEMON_BRIDGE_UNIX_ENV);

	memset(&o, 0, sizeof(o));
	/* Tests only: the AF_UNIX stand-in of L2CAP, under an abstract-name prefix of the test's choosing. */
	if (prefix && prefix[0]) {
		snprintf(d->bridge_unix.prefix, sizeof(d->bridge_unix.prefix), "%s", prefix);
		o.ops = &qg_bridge_unix_ops;
		o.ops_ctx = &d->bridge_unix;
		o.backoff_min_ms = 50;
		o.backoff_max_ms = 500;
		QG_LOG_WARN("bridge: %s is set: Bluetooth is simulated over AF_UNIX sockets (tests only)",
			    QG_DAEMON_BRIDGE_UNIX_ENV);
	}
	rc = qg_bridge_create(cfg, &o, &d->bridge);
	if (rc)
		return rc;
	rc = qg_bridge_start(d->bridge);
	if (rc) {
		qg_bridge_destroy(d->bridge);
		d->bridge = NULL;
		return rc;
	}
	QG_LOG_INFO("bridge: %u listener(s), %u Bluetooth backend path(s)", cfg->n_bridges,
		    qg_bridge_path_count(d->bridge));
	return 0;
}

/* The bridge's totals at exit, like the dataplane's: one line per bridges[] entry and the outbound links. */
static void bridge_report_totals(const struct qg_bridge *b, unsigned n_br, FILE *f)
{
	/* In the order of struct qg_bridge_stats, whose fields are all uint64_t. */
	static const char *const names[] = {
		"links_up",	 "links_down",	     "links_active",	"rejected_allow",
		"rejected_full", "connect_failures", "listen_failures", "rx_sdus",
		"rx_bytes",	 "tx_sdus",	     "tx_bytes",	"rx_oversize",
		"tx_oversize",	 "tx_dropped",	     "ring_full",	"stale",
		"no_link",	 "tx_queued",	     "tx_queue_full",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(struct qg_bridge_stats) / sizeof(uint64_t),
		       "a name per counter");
	for (unsigned i = 0; i <= n_br; i++) {
		struct qg_bridge_stats st;
		uint64_t v[sizeof(names) / sizeof(names[0])];
		char line[768];
		size_t n = 0;

		if (qg_bridge_get_stats(b, i, &st))
			continue;
		memcpy(v, &st, sizeof(v));
		/* links_active (index 2) is a level, 0 at exit: not a total. */
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && n < sizeof(line); k++)
			if (v[k] && k != 2)
				n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%llu", names[k],
						      (unsigned long long)v[k]);
		if (n && i < n_br)
			fprintf(f, "qgate: total bridges[%u]:%s\n", i, line);
		else if (n)
			fprintf(f, "qgate: total bridge outbound:%s\n", line);
	}
	fflush(f);
}

static void bridge_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	if (d->bridge)
		bridge_report_totals(d->bridge, d->cfg->n_bridges, stderr);
	qg_bridge_destroy(d->bridge);
	d->bridge = NULL;
}

/*
 * A kernel without Bluetooth (EAFNOSUPPORT: containers, most CI and cloud
 * machines) is not a reason to refuse the UDP services: the bridge is left
 * out, like an unconfigured part, and the log says why once.
 */
static int bridge_wanted(const struct qg_config *cfg)
{
	int rc;

	if (!qg_bridge_configured(cfg))
		return 0;
	if (getenv(QG_DAEMON_BRIDGE_UNIX_ENV) && getenv(QG_DAEMON_BRIDGE_UNIX_ENV)[0])
		return 1; /* the stand-in needs no Bluetooth in the kernel */
	rc = qg_bridge_probe();
	if (!rc)
		return 1;
	QG_LOG_WARN("bridge: Bluetooth sockets are not available here (socket(AF_BLUETOOTH): %s): the "
		    "bridges and Bluetooth backend paths are disabled, the other services run",
		    strerror(-rc));
	return 0;
}

static int metrics_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	char addr[QG_ADDR_STRLEN];
	int rc;

	rc = qg_metrics_create(&d->cfg->metrics.listen, &d->metrics_src, &d->metrics);
	if (rc)
		return rc;
	QG_LOG_INFO("metrics: serving http://%s/metrics",
		    qg_addr_format(&d->cfg->metrics.listen, addr, sizeof(addr)));
	return 0;
}

static void metrics_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	qg_metrics_destroy(d->metrics);
	d->metrics = NULL;
}

static int admin_start(void *ctx)
{
	struct qg_daemon *d = ctx;
	int rc;

	rc = qg_admin_create_cfg(&d->cfg->admin, &d->target, &d->admin);
	if (rc)
		return rc;
	QG_LOG_INFO("admin: listening on %s (mode %04o, owner %d, group %d)", d->cfg->admin.socket,
		    d->cfg->admin.mode, d->cfg->admin.has_owner ? (int)d->cfg->admin.owner : (int)geteuid(),
		    d->cfg->admin.has_group ? (int)d->cfg->admin.group : (int)getegid());
	return 0;
}

static void admin_stop(void *ctx)
{
	struct qg_daemon *d = ctx;

	qg_admin_destroy(d->admin);
	d->admin = NULL;
}

int qg_daemon_register(struct qg_daemon *d)
{
	static const char *const dep_config[] = { "config", NULL };
	static const char *const dep_events[] = { "config", "events", NULL };
	static const char *const dep_dp[] = { "dataplane", "events", NULL };
	const struct qg_part_desc parts[] = {
		{ "config", NULL, { config_start, NULL, d } },
		{ "events", dep_config, { events_start, events_stop, d } },
		/* Before the dataplane: its rings must outlive the workers that will use them. */
		{ "bridge", dep_events, { bridge_start, bridge_stop, d } },
		{ "dataplane", dep_events, { dataplane_start, dataplane_stop, d } },
		{ "health", dep_dp, { health_start, health_stop, d } },
		{ "degradation", dep_dp, { protect_start, protect_stop, d } },
		{ "metrics", dep_dp, { metrics_start, metrics_stop, d } },
		{ "admin", dep_dp, { admin_start, admin_stop, d } },
	};
	int rc;

	d->start_ns = qg_clock_ns();
	rc = qg_admin_target_init(&d->target, d->cfg);
	if (rc)
		return rc;
	d->target.start_ns = d->start_ns;
	d->metrics_src.cfg = d->cfg;
	d->metrics_src.weights = d->target.weights;
	d->metrics_src.start_ns = d->start_ns;
	rc = qg_events_create(&d->bus);
	if (rc)
		return rc;
	rc = qg_registry_create(&d->reg);
	if (rc)
		return rc;
	d->target.bus = d->bus;
	d->target.reg = d->reg;
	d->metrics_src.bus = d->bus;
	d->metrics_src.reg = d->reg;
	qg_registry_set_observer(d->reg, on_state, d);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		/* Unconfigured servers are not registered: "components" lists what runs. */
		if (!strcmp(parts[i].name, "metrics") && !d->cfg->metrics.enabled)
			continue;
		if (!strcmp(parts[i].name, "admin") && !d->cfg->admin.socket[0])
			continue;
		if (!strcmp(parts[i].name, "bridge") && !bridge_wanted(d->cfg))
			continue;
		rc = qg_registry_add(d->reg, &parts[i]);
		if (rc)
			return rc;
	}
	return 0;
}

void qg_daemon_unregister(struct qg_daemon *d)
{
	qg_registry_destroy(d->reg);
	d->reg = NULL;
	qg_events_destroy(d->bus);
	d->bus = NULL;
	qg_admin_target_fini(&d->target);
}
