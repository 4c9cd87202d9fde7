/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "level": the graceful-degradation level, why it is what it is and since
 * when, what the controller sees; "level set LEVEL" puts an operator floor
 * under it (the controller may go higher, never lower) and "level auto"
 * takes the floor away. Both are announced on the event bus like weight
 * changes, so "qgatectl events" shows who moved the level.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin_internal.h"
#include "qgate/clock.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/protect.h"

static int level_refuse(struct qg_adm_req *r, const char *msg, const char *arg)
{
	snprintf(r->err, sizeof(r->err), "%s%.32s%s", msg, arg ? arg : "",
		 arg ? "' (normal, protect, shed, essential)" : "");
	return 1;
}

static void show_json(struct qg_adm_req *r, const struct qg_protect_info *in, double since_s, double for_s)
{
	static const char *const rate_names[QG_PROTECT_SERIES_COUNT] = { "pps", "new_flows_per_s",
									 "drops_per_s" };
	struct qg_anomaly_registry *reg = qg_protect_anomalies(r->t->protect);
	struct qg_ring_stats rs;

	qg_adm_printf(&r->body,
		      "{\"level\":\"%s\",\"level_value\":%d,\"since_s\":%.3f,\"for_s\":%.3f,\"reason\":",
		      qg_degrade_level_name(in->level), (int)in->level, since_s, for_s);
	qg_adm_json_str(&r->body, in->reason);
	qg_adm_printf(&r->body, ",\"controller\":\"%s\",\"controller_enabled\":%s,\"mode\":\"%s\",\"floor\":",
		      qg_degrade_level_name(in->controller), in->controller_enabled ? "true" : "false",
		      in->floor_set ? "floor" : "auto");
	if (in->floor_set)
		qg_adm_printf(&r->body, "\"%s\"", qg_degrade_level_name(in->floor));
	else
		qg_adm_printf(&r->body, "null");
	qg_adm_printf(&r->body, ",\"inputs\":{");
	for (int i = 0; i < QG_DEGRADE_RES_COUNT; i++)
		qg_adm_printf(&r->body, "%s\"%s\":%.4f", i ? "," : "",
			      qg_degrade_resource_name((enum qg_degrade_resource)i), in->res[i]);
	qg_adm_printf(&r->body, "},\"rates\":{");
	for (int i = 0; i < QG_PROTECT_SERIES_COUNT; i++)
		qg_adm_printf(&r->body, "%s\"%s\":%.3f", i ? "," : "", rate_names[i], in->rate[i]);
	qg_adm_printf(&r->body,
		      "},\"changes\":%llu,\"anomalies\":%llu,\"samples\":%llu,\"evictions\":%llu,"
		      "\"apply_error\":%d,\"anomaly_series\":[",
		      (unsigned long long)in->changes, (unsigned long long)in->anomalies,
		      (unsigned long long)in->samples, (unsigned long long)in->evictions, in->apply_error);
	for (uint32_t i = 0; i < qg_anomaly_series_count(reg); i++) {
		const struct qg_anomaly_series *s = qg_anomaly_series_at(reg, i);

		qg_adm_printf(&r->body, "%s{\"series\":", i ? "," : "");
		qg_adm_json_str(&r->body, s->name);
		qg_adm_printf(&r->body, ",\"samples\":%llu,\"anomalies\":%llu}",
			      (unsigned long long)s->samples, (unsigned long long)s->anomalies);
	}
	qg_adm_printf(&r->body, "],\"rings\":[");
	for (unsigned w = 0; w < qg_dataplane_workers(r->t->dp); w++) {
		if (qg_dataplane_ring_stats(r->t->dp, w, &rs))
			continue;
		qg_adm_printf(&r->body,
			      "%s{\"ring\":\"telemetry\",\"worker\":%u,\"capacity\":%u,\"occupancy\":%u,"
			      "\"published\":%llu,\"dropped\":%llu}",
			      w ? "," : "", w, rs.capacity, rs.occupancy, (unsigned long long)rs.published,
			      (unsigned long long)rs.dropped);
	}
	qg_adm_printf(&r->body, "]}\n");
}

static void show_text(struct qg_adm_req *r, const struct qg_protect_info *in, double since_s, double for_s)
{
	qg_adm_printf(&r->body, "level: %s (%d) since %.1f s after start, for %.1f s\nwhy: %s\n",
		      qg_degrade_level_name(in->level), (int)in->level, since_s, for_s, in->reason);
	qg_adm_printf(&r->body, "controller: %s%s\n", qg_degrade_level_name(in->controller),
		      in->controller_enabled ? "" : " (disabled: degradation.enabled is false)");
	if (in->floor_set)
		qg_adm_printf(&r->body, "operator floor: %s (qgatectl level auto clears it)\n",
			      qg_degrade_level_name(in->floor));
	else
		qg_adm_printf(&r->body, "operator floor: none (auto)\n");
	qg_adm_printf(&r->body, "inputs: flow_fill %.3f, ring_backlog %.3f, worker_busy %.3f\n",
		      in->res[QG_DEGRADE_RES_FLOW_FILL], in->res[QG_DEGRADE_RES_RING_BACKLOG],
		      in->res[QG_DEGRADE_RES_WORKER_BUSY]);
	qg_adm_printf(&r->body, "rates: %.0f datagrams/s, %.0f new flows/s, %.0f drops/s\n",
		      in->rate[QG_PROTECT_SERIES_PPS], in->rate[QG_PROTECT_SERIES_NEW_FLOWS],
		      in->rate[QG_PROTECT_SERIES_DROPS]);
	qg_adm_printf(&r->body, "changes: %llu, anomalies: %llu, flows evicted: %llu\n",
		      (unsigned long long)in->changes, (unsigned long long)in->anomalies,
		      (unsigned long long)in->evictions);
	if (in->apply_error)
		qg_adm_printf(&r->body, "last apply failed: %s (retried every tick)\n",
			      strerror(-in->apply_error));
}

/* "level set X" / "level auto": change the floor and announce it. */
static int change_floor(struct qg_adm_req *r, int set, enum qg_degrade_level floor)
{
	struct qg_protect_info before;
	struct qg_event ev;
	int rc;

	qg_protect_get_info(r->t->protect, &before);
	rc = qg_protect_set_floor(r->t->protect, set, floor, qg_clock_ms());
	if (rc) {
		snprintf(r->err, sizeof(r->err), "cannot apply the level: %s", strerror(-rc));
		return 1;
	}
	qg_event_init(&ev, QG_EVENT_ADMIN_ACTION, QG_EVENT_SEV_NOTICE);
	snprintf(ev.component, sizeof(ev.component), "admin");
	ev.arg[0] = before.floor_set ? (int64_t)before.floor : -1;
	ev.arg[1] = set ? (int64_t)floor : -1;
	if (set)
		qg_event_set_text(&ev, "level set %s (floor; was %s)", qg_degrade_level_name(floor),
				  before.floor_set ? qg_degrade_level_name(before.floor) : "auto");
	else
		qg_event_set_text(&ev, "level auto (floor %s cleared)",
				  before.floor_set ? qg_degrade_level_name(before.floor) : "none");
	if (r->t->bus)
		qg_events_publish(r->t->bus, &ev);
	return 0;
}

int qg_admin_cmd_level(struct qg_adm_req *r)
{
	enum qg_degrade_level floor = QG_DEGRADE_NORMAL;
	struct qg_protect_info in;
	double start_ms = (double)r->t->start_ns / 1e6, now_ms;
	int rc;

	if (!r->t->protect)
		return level_refuse(r, "degradation control is not running", NULL);
	if (r->argc == 3 && !strcmp(r->argv[1], "set")) {
		if (qg_protect_level_parse(r->argv[2], &floor))
			return level_refuse(r, "unknown level '", r->argv[2]);
		rc = change_floor(r, 1, floor);
	} else if (r->argc == 2 && !strcmp(r->argv[1], "auto")) {
		rc = change_floor(r, 0, floor);
	} else if (r->argc == 1) {
		rc = 0;
	} else {
		return level_refuse(r, "usage: level [set LEVEL | auto]", NULL);
	}
	if (rc)
		return rc;
	qg_protect_get_info(r->t->protect, &in);
	now_ms = (double)qg_clock_ms();
	if (r->json)
		show_json(r, &in, ((double)in.since_ms - start_ms) / 1e3,
			  (now_ms - (double)in.since_ms) / 1e3);
	else
		show_text(r, &in, ((double)in.since_ms - start_ms) / 1e3,
			  (now_ms - (double)in.since_ms) / 1e3);
	return r->body.err ? -ENOMEM : 0;
}
