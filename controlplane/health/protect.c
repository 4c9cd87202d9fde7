/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The protection path: worker telemetry -> anomaly series and degradation
 * controller -> the dataplane's level (see protect.h for the picture).
 *
 * Inputs, and why these: the flow-table fill and the busy fraction are the
 * maxima over workers, because flows and load are per worker (reuseport
 * hashing can fill one worker's table while the others idle) and the first
 * worker to run out is where clients start to suffer. The anomaly series are
 * sums over workers (the gateway's rates), computed per worker from the
 * workers' own sample periods so that a window receiving 9 or 11 samples of
 * a worker does not look like a 10 % swing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/events.h"
#include "qgate/log.h"
#include "qgate/protect.h"

/* A full flow table keeps evicting while the flood lasts: one event per this long is enough. */
#define EVICT_EVENT_EVERY_MS 10000

static const char *const series_names[QG_PROTECT_SERIES_COUNT] = { "pps", "new_flows_per_s", "drops_per_s" };

struct pw {
	int seen;    /* a sample arrived */
	double fill; /* latest flow-table fill */
	double busy; /* latest busy fraction */
	uint64_t acc[QG_PROTECT_SERIES_COUNT];
	uint64_t acc_ns;      /* sample periods summed in the current window */
	uint64_t attempts;    /* ring records published + dropped at the last check */
	uint64_t attempts_ms; /* when that number last moved */
	int stalled;
};

struct qg_protect {
	struct qg_dataplane *dp;
	struct qg_event_bus *bus;
	unsigned n_workers;
	int controller_enabled;
	struct qg_degrade deg;
	struct qg_anomaly_registry *anom;
	struct qg_anomaly_series *series[QG_PROTECT_SERIES_COUNT];
	struct qg_anomaly_record pending[QG_PROTECT_SERIES_COUNT]; /* flagged, for the next controller tick */
	unsigned n_pending;
	uint64_t next_tick_ms;
	uint64_t window_ms; /* start of the current anomaly window */
	uint64_t last_evict_event_ms;
	int evict_evented;
	double res[QG_DEGRADE_RES_COUNT];
	double rate[QG_PROTECT_SERIES_COUNT];
	enum qg_degrade_level applied;
	uint64_t since_ms;
	char reason[QG_DEGRADE_REASON_MAX];
	char ctl_reason[QG_DEGRADE_REASON_MAX]; /* the controller's last change */
	int floor_set;
	enum qg_degrade_level floor;
	uint64_t changes, samples, evictions, anomalies;
	int apply_error;
	struct pw w[QG_PROTECT_WORKERS_MAX];
};

int qg_protect_level_parse(const char *name, enum qg_degrade_level *out)
{
	for (int l = 0; l < QG_DEGRADE_LEVELS; l++)
		if (name && !strcmp(name, qg_degrade_level_name((enum qg_degrade_level)l))) {
			*out = (enum qg_degrade_level)l;
			return 0;
		}
	return -EINVAL;
}

int qg_protect_create(const struct qg_protect_params *pp, uint64_t now_ms, struct qg_protect **out)
{
	struct qg_protect *p;
	int rc;

	if (!pp || !out || pp->n_workers == 0 || pp->n_workers > QG_PROTECT_WORKERS_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	rc = qg_degrade_init(&p->deg, pp->degrade, now_ms);
	if (rc)
		goto err;
	rc = qg_anomaly_registry_create(&p->anom);
	if (rc)
		goto err;
	for (int s = 0; s < QG_PROTECT_SERIES_COUNT; s++) {
		rc = qg_anomaly_series_add(p->anom, series_names[s], NULL, pp->anomaly, NULL, &p->series[s]);
		if (rc)
			goto err;
	}
	p->dp = pp->dp;
	p->bus = pp->bus;
	p->n_workers = pp->n_workers;
	p->controller_enabled = pp->controller;
	p->applied = QG_DEGRADE_NORMAL;
	p->since_ms = now_ms;
	p->window_ms = now_ms;
	p->next_tick_ms = now_ms;
	snprintf(p->reason, sizeof(p->reason), "qgate started");
	for (unsigned i = 0; i < p->n_workers; i++)
		p->w[i].attempts_ms = now_ms;
	*out = p;
	return 0;
err:
	qg_protect_destroy(p);
	return rc;
}

void qg_protect_destroy(struct qg_protect *p)
{
	if (!p)
		return;
	qg_anomaly_registry_destroy(p->anom);
	free(p);
}

static void publish(struct qg_protect *p, struct qg_event *ev)
{
	snprintf(ev->component, sizeof(ev->component), "degradation");
	if (p->bus)
		qg_events_publish(p->bus, ev);
}

void qg_protect_feed(struct qg_protect *p, const struct qg_dataplane_tm *rec)
{
	struct pw *w;

	if (rec->worker >= p->n_workers)
		return;
	w = &p->w[rec->worker];
	if (rec->type == QG_DATAPLANE_TM_EVICTING) {
		struct qg_event ev;

		p->evictions += rec->arg;
		/* ts_ns is the worker's clock, the same monotonic clock as now_ms. */
		if (p->evict_evented && rec->ts_ns / 1000000 - p->last_evict_event_ms < EVICT_EVENT_EVERY_MS)
			return;
		p->evict_evented = 1;
		p->last_evict_event_ms = rec->ts_ns / 1000000;
		qg_event_init(&ev, QG_EVENT_FLOW_FLOOD, QG_EVENT_SEV_WARNING);
		ev.source = rec->worker;
		ev.arg[0] = rec->flows_active;
		ev.arg[1] = (int64_t)rec->arg;
		qg_event_set_text(&ev, "worker %u: flow table full (%u flows), %llu evicted in %llu ms",
				  rec->worker, rec->flows_capacity, (unsigned long long)rec->arg,
				  (unsigned long long)(rec->period_ns / 1000000));
		publish(p, &ev);
		return;
	}
	if (rec->type != QG_DATAPLANE_TM_SAMPLE)
		return;
	p->samples++;
	w->seen = 1;
	w->fill = rec->flows_capacity ? (double)rec->flows_active / rec->flows_capacity : 0.0;
	w->busy = rec->period_ns ? (double)rec->busy_ns / (double)rec->period_ns : 0.0;
	if (w->busy > 1.0)
		w->busy = 1.0;
	w->acc[QG_PROTECT_SERIES_PPS] += rec->packets;
	w->acc[QG_PROTECT_SERIES_NEW_FLOWS] += rec->new_flows;
	w->acc[QG_PROTECT_SERIES_DROPS] += rec->drops;
	w->acc_ns += rec->period_ns;
}

/* End of a 1 s window: per-second rates into the anomaly series; flagged samples wait for the controller. */
static void close_window(struct qg_protect *p, uint64_t now_ms)
{
	struct qg_anomaly_record rec;
	int any = 0;

	memset(p->rate, 0, sizeof(p->rate));
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct pw *w = &p->w[i];

		if (!w->acc_ns)
			continue;
		any = 1;
		for (int s = 0; s < QG_PROTECT_SERIES_COUNT; s++)
			p->rate[s] += (double)w->acc[s] * 1e9 / (double)w->acc_ns;
		memset(w->acc, 0, sizeof(w->acc));
		w->acc_ns = 0;
	}
	p->window_ms = now_ms;
	/* No sample at all (workers not running yet): no observation rather than a fake zero. */
	if (!any)
		return;
	for (int s = 0; s < QG_PROTECT_SERIES_COUNT; s++) {
		struct qg_event ev;

		if (qg_anomaly_observe(p->series[s], p->rate[s], now_ms, &rec) != 1)
			continue;
		p->anomalies++;
		if (p->n_pending < QG_PROTECT_SERIES_COUNT)
			p->pending[p->n_pending++] = rec;
		qg_event_init(&ev, QG_EVENT_ANOMALY,
			      rec.severity == QG_ANOMALY_SEV_CRITICAL ? QG_EVENT_SEV_ERROR
								      : QG_EVENT_SEV_WARNING);
		ev.arg[0] = s;
		ev.arg[1] = (int64_t)rec.value;
		ev.arg[2] = (int64_t)rec.expected;
		ev.arg[3] = rec.action;
		qg_event_set_text(&ev, "%s %.6g, expected %.6g (z %+.1f, %s): %s", rec.series, rec.value,
				  rec.expected, rec.z, qg_anomaly_severity_name(rec.severity),
				  qg_anomaly_action_name(rec.action));
		publish(p, &ev);
	}
}

/* The level to apply: the controller's (when enabled), never below the operator's floor. */
static enum qg_degrade_level wanted(const struct qg_protect *p)
{
	enum qg_degrade_level want = p->floor_set ? p->floor : QG_DEGRADE_NORMAL;
	enum qg_degrade_level ctl = qg_degrade_get_level(&p->deg);

	if (p->controller_enabled && ctl > want)
		want = ctl;
	return want;
}

/* Apply wanted() when it differs; why (NULL: derived) becomes the reason. @return 1 when applied. */
static int apply(struct qg_protect *p, uint64_t now_ms, const char *why)
{
	enum qg_degrade_level want = wanted(p), from = p->applied;
	enum qg_degrade_level ctl = qg_degrade_get_level(&p->deg);
	struct qg_event ev;
	int rc;

	if (want == p->applied)
		return 0;
	rc = p->dp ? qg_dataplane_set_level(p->dp, want) : 0;
	if (rc) {
		/* Retried on the next tick; logged once per distinct failure. */
		if (rc != p->apply_error)
			QG_LOG_WARN("degradation: cannot apply level %s: %s", qg_degrade_level_name(want),
				    strerror(-rc));
		p->apply_error = rc;
		return 0;
	}
	p->apply_error = 0;
	p->applied = want;
	p->since_ms = now_ms;
	p->changes++;
	if (why)
		snprintf(p->reason, sizeof(p->reason), "%s", why);
	else if (p->controller_enabled && ctl == want && (!p->floor_set || ctl > p->floor))
		snprintf(p->reason, sizeof(p->reason), "%s", p->ctl_reason);
	else if (p->floor_set)
		snprintf(p->reason, sizeof(p->reason),
			 "operator floor %s (qgatectl level set); controller at %s",
			 qg_degrade_level_name(p->floor), qg_degrade_level_name(ctl));
	else
		snprintf(p->reason, sizeof(p->reason), "%s", p->ctl_reason);
	qg_event_init(&ev, QG_EVENT_LEVEL_CHANGE, want > from ? QG_EVENT_SEV_WARNING : QG_EVENT_SEV_NOTICE);
	ev.arg[0] = from;
	ev.arg[1] = want;
	ev.arg[2] = p->floor_set ? (int64_t)p->floor : -1;
	qg_event_set_text(&ev, "%s -> %s: %s", qg_degrade_level_name(from), qg_degrade_level_name(want),
			  p->reason);
	publish(p, &ev);
	return 1;
}

int qg_protect_step(struct qg_protect *p, double ring_backlog, uint64_t now_ms)
{
	struct qg_degrade_change chg;
	struct qg_degrade_input in;
	int ticked = 0, changed;

	if (now_ms >= p->window_ms + QG_PROTECT_WINDOW_MS)
		close_window(p, now_ms);
	if (now_ms >= p->next_tick_ms || p->n_pending) {
		memset(&in, 0, sizeof(in));
		for (unsigned i = 0; i < p->n_workers; i++) {
			if (!p->w[i].seen)
				continue;
			if (p->w[i].fill > in.res[QG_DEGRADE_RES_FLOW_FILL])
				in.res[QG_DEGRADE_RES_FLOW_FILL] = p->w[i].fill;
			if (p->w[i].busy > in.res[QG_DEGRADE_RES_WORKER_BUSY])
				in.res[QG_DEGRADE_RES_WORKER_BUSY] = p->w[i].busy;
		}
		in.res[QG_DEGRADE_RES_RING_BACKLOG] = ring_backlog;
		in.anomalies = p->n_pending ? p->pending : NULL;
		in.n_anomalies = p->n_pending;
		memcpy(p->res, in.res, sizeof(p->res));
		p->next_tick_ms = now_ms + QG_PROTECT_TICK_MS;
		if (qg_degrade_tick(&p->deg, &in, now_ms, &chg) == 1)
			snprintf(p->ctl_reason, sizeof(p->ctl_reason), "%s", chg.reason);
		p->n_pending = 0;
		ticked = 1;
	}
	/* Also after a failed apply: the dataplane is asked again until it takes the level. */
	changed = apply(p, now_ms, NULL);
	/*
	 * Whoever rebuilds the service table (a reload) must carry the level over;
	 * re-asserting it every tick bounds the damage if one does not. It costs
	 * a mutex and a compare while the table's level is right.
	 */
	if (ticked && !changed && p->dp && !p->apply_error)
		(void)qg_dataplane_set_level(p->dp, p->applied);
	return changed;
}

static void drain_cb(void *ctx, const struct qg_dataplane_tm *rec)
{
	qg_protect_feed(ctx, rec);
}

/* A worker whose ring sees no record (not even a dropped one) for QG_PROTECT_STALL_MS is stuck. */
static void check_stalls(struct qg_protect *p, unsigned i, const struct qg_ring_stats *rs, uint64_t now_ms)
{
	struct pw *w = &p->w[i];
	uint64_t attempts = rs->published + rs->dropped;
	struct qg_event ev;

	if (attempts != w->attempts) {
		if (w->stalled)
			QG_LOG_INFO("degradation: worker %u reports telemetry again", i);
		w->attempts = attempts;
		w->attempts_ms = now_ms;
		w->stalled = 0;
		return;
	}
	if (w->stalled || now_ms - w->attempts_ms < QG_PROTECT_STALL_MS)
		return;
	w->stalled = 1;
	qg_event_init(&ev, QG_EVENT_WORKER_STALL, QG_EVENT_SEV_ERROR);
	ev.source = i;
	ev.arg[0] = (int64_t)(now_ms - w->attempts_ms);
	qg_event_set_text(&ev, "worker %u published no telemetry for %llu ms", i,
			  (unsigned long long)(now_ms - w->attempts_ms));
	publish(p, &ev);
}

int qg_protect_tick(struct qg_protect *p, uint64_t now_ms)
{
	struct qg_ring_stats rs;
	double backlog = 0;

	if (p->dp) {
		/* Backlog before draining: what piled up since the last tick is the measure. */
		for (unsigned i = 0; i < p->n_workers; i++) {
			if (qg_dataplane_ring_stats(p->dp, i, &rs))
				continue;
			if (rs.capacity && (double)rs.occupancy / rs.capacity > backlog)
				backlog = (double)rs.occupancy / rs.capacity;
			check_stalls(p, i, &rs, now_ms);
		}
		qg_dataplane_telemetry_poll(p->dp, drain_cb, p);
	}
	return qg_protect_step(p, backlog, now_ms);
}

int qg_protect_set_floor(struct qg_protect *p, int set, enum qg_degrade_level floor, uint64_t now_ms)
{
	char why[QG_DEGRADE_REASON_MAX];
	enum qg_degrade_level ctl = qg_degrade_get_level(&p->deg);
	int was_set = p->floor_set;
	enum qg_degrade_level was = p->floor;

	if (set && (floor < QG_DEGRADE_NORMAL || floor > QG_DEGRADE_ESSENTIAL))
		return -EINVAL;
	p->floor_set = set;
	p->floor = set ? floor : QG_DEGRADE_NORMAL;
	if (set)
		snprintf(why, sizeof(why), "operator floor %s (qgatectl level set); controller at %s",
			 qg_degrade_level_name(floor), qg_degrade_level_name(ctl));
	else
		snprintf(why, sizeof(why),
			 "operator floor cleared (qgatectl level auto); controller at %s%s%.90s",
			 p->controller_enabled ? qg_degrade_level_name(ctl) : "off",
			 p->controller_enabled && ctl > QG_DEGRADE_NORMAL ? ": " : "",
			 p->controller_enabled && ctl > QG_DEGRADE_NORMAL ? p->ctl_reason : "");
	/* The controller keeps a higher level: then its reason stays the reason. */
	if (p->controller_enabled && ctl >= wanted(p) && ctl > p->floor)
		apply(p, now_ms, NULL);
	else
		apply(p, now_ms, why);
	if (wanted(p) != p->applied) {
		/* The dataplane refused: keep the old floor so what qgatectl shows is what runs. */
		int rc = p->apply_error;

		p->floor_set = was_set;
		p->floor = was;
		return rc ? rc : -EIO;
	}
	return 0;
}

int qg_protect_reconfigure(struct qg_protect *p, const struct qg_degrade_cfg *cfg, int controller,
			   uint64_t now_ms)
{
	struct qg_degrade_cfg def;
	int rc;

	if (!cfg) {
		qg_degrade_cfg_default(&def);
		cfg = &def;
	}
	rc = qg_degrade_set_cfg(&p->deg, cfg);
	if (rc)
		return rc;
	if (p->controller_enabled != !!controller) {
		p->controller_enabled = !!controller;
		apply(p, now_ms,
		      controller ? NULL : "controller disabled by reload (degradation.enabled: false)");
	}
	return 0;
}

void qg_protect_get_info(const struct qg_protect *p, struct qg_protect_info *out)
{
	memset(out, 0, sizeof(*out));
	out->level = p->applied;
	out->controller = qg_degrade_get_level(&p->deg);
	out->controller_enabled = p->controller_enabled;
	out->floor_set = p->floor_set;
	out->floor = p->floor;
	out->since_ms = p->since_ms;
	snprintf(out->reason, sizeof(out->reason), "%s", p->reason);
	memcpy(out->res, p->res, sizeof(out->res));
	memcpy(out->rate, p->rate, sizeof(out->rate));
	out->changes = p->changes;
	out->samples = p->samples;
	out->evictions = p->evictions;
	out->anomalies = p->anomalies;
	out->apply_error = p->apply_error;
}

struct qg_anomaly_registry *qg_protect_anomalies(const struct qg_protect *p)
{
	return p->anom;
}
