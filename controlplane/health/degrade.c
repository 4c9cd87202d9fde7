/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Degradation controller (see degrade.h for the rules and the defaults).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qgate/degrade.h"

enum {
	HOLD_PROTECT = 0,
	HOLD_SHED = 1
};

void qg_degrade_cfg_default(struct qg_degrade_cfg *cfg)
{
	static const struct qg_degrade_band def[QG_DEGRADE_RES_COUNT][QG_DEGRADE_LEVELS] = {
		[QG_DEGRADE_RES_FLOW_FILL] = { { 0, 0 }, { 0.70, 0.60 }, { 0.85, 0.75 }, { 0.95, 0.88 } },
		[QG_DEGRADE_RES_RING_BACKLOG] = { { 0, 0 }, { 0.50, 0.30 }, { 0.75, 0.55 }, { 0.90, 0.75 } },
		[QG_DEGRADE_RES_WORKER_BUSY] = { { 0, 0 }, { 0.80, 0.70 }, { 0.90, 0.80 }, { 0.97, 0.90 } },
	};

	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->band, def, sizeof(def));
	cfg->min_dwell_ms = QG_DEGRADE_DEFAULT_MIN_DWELL_MS;
	cfg->anomaly_hold_ms = QG_DEGRADE_DEFAULT_ANOMALY_HOLD_MS;
}

static int cfg_valid(const struct qg_degrade_cfg *cfg)
{
	int r, l;

	for (r = 0; r < QG_DEGRADE_RES_COUNT; r++) {
		for (l = QG_DEGRADE_PROTECT; l < QG_DEGRADE_LEVELS; l++) {
			const struct qg_degrade_band *b = &cfg->band[r][l];

			/* !(a < b) also rejects NaN. */
			if (!(b->exit >= 0.0) || !(b->exit < b->enter))
				return 0;
			if (l > QG_DEGRADE_PROTECT && !(cfg->band[r][l - 1].enter < b->enter))
				return 0;
		}
	}
	return 1;
}

int qg_degrade_init(struct qg_degrade *d, const struct qg_degrade_cfg *cfg, uint64_t now_ms)
{
	struct qg_degrade_cfg def;

	if (!d)
		return -EINVAL;
	if (!cfg) {
		qg_degrade_cfg_default(&def);
		cfg = &def;
	}
	if (!cfg_valid(cfg))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->level = QG_DEGRADE_NORMAL;
	d->since_ms = now_ms;
	d->entered[QG_DEGRADE_NORMAL] = 1;
	return 0;
}

int qg_degrade_set_cfg(struct qg_degrade *d, const struct qg_degrade_cfg *cfg)
{
	if (!d || !cfg || !cfg_valid(cfg))
		return -EINVAL;
	d->cfg = *cfg;
	return 0;
}

/* Refresh the anomaly holds from this tick's records. */
static void note_anomalies(struct qg_degrade *d, const struct qg_degrade_input *in, uint64_t now_ms)
{
	uint32_t i;

	for (i = 0; in->anomalies && i < in->n_anomalies; i++) {
		const struct qg_anomaly_record *a = &in->anomalies[i];
		int h;

		if (a->action == QG_ANOMALY_ACT_PROTECT)
			h = HOLD_PROTECT;
		else if (a->action == QG_ANOMALY_ACT_SHED)
			h = HOLD_SHED;
		else
			continue;
		d->hold_until_ms[h] = now_ms + d->cfg.anomaly_hold_ms;
		snprintf(d->hold_reason[h], sizeof(d->hold_reason[h]),
			 "anomaly %s=%.6g (expected %.6g, z=%+.1f) recommends %s",
			 a->series ? a->series : "?", a->value, a->expected, a->z,
			 qg_anomaly_action_name(a->action));
	}
}

/* The level the anomaly holds force, and the hold responsible. */
static enum qg_degrade_level hold_floor(const struct qg_degrade *d, uint64_t now_ms, int *which)
{
	if (now_ms < d->hold_until_ms[HOLD_SHED]) {
		*which = HOLD_SHED;
		return QG_DEGRADE_SHED;
	}
	if (now_ms < d->hold_until_ms[HOLD_PROTECT]) {
		*which = HOLD_PROTECT;
		return QG_DEGRADE_PROTECT;
	}
	return QG_DEGRADE_NORMAL;
}

/* The highest level whose enter threshold some resource reaches; *res names it. */
static enum qg_degrade_level resource_level(const struct qg_degrade *d, const struct qg_degrade_input *in,
					    int *res)
{
	int l, r;

	for (l = QG_DEGRADE_ESSENTIAL; l > QG_DEGRADE_NORMAL; l--)
		for (r = 0; r < QG_DEGRADE_RES_COUNT; r++)
			if (in->res[r] >= d->cfg.band[r][l].enter) {
				*res = r;
				return (enum qg_degrade_level)l;
			}
	return QG_DEGRADE_NORMAL;
}

/* May level l be left: every resource under its exit and no hold at or above it. */
static int can_leave(const struct qg_degrade *d, const struct qg_degrade_input *in, enum qg_degrade_level l,
		     enum qg_degrade_level floor)
{
	int r;

	if (l == QG_DEGRADE_NORMAL || floor >= l)
		return 0;
	for (r = 0; r < QG_DEGRADE_RES_COUNT; r++)
		if (!(in->res[r] < d->cfg.band[r][l].exit))
			return 0;
	return 1;
}

static void set_level(struct qg_degrade *d, enum qg_degrade_level to, uint64_t now_ms,
		      struct qg_degrade_change *chg)
{
	if (chg) {
		chg->from = d->level;
		chg->to = to;
		chg->now_ms = now_ms;
	}
	if (to > d->level)
		d->steps_up++;
	else
		d->steps_down++;
	d->level = to;
	d->since_ms = now_ms;
	d->entered[to]++;
	d->calm = 0;
}

int qg_degrade_tick(struct qg_degrade *d, const struct qg_degrade_input *in, uint64_t now_ms,
		    struct qg_degrade_change *chg)
{
	enum qg_degrade_level floor, by_res, up, from = d->level;
	int r, res = 0, hold = 0, held;

	for (r = 0; r < QG_DEGRADE_RES_COUNT; r++)
		if (!isfinite(in->res[r]))
			return -EINVAL;
	note_anomalies(d, in, now_ms);
	floor = hold_floor(d, now_ms, &hold);
	by_res = resource_level(d, in, &res);
	up = by_res > floor ? by_res : floor;

	if (up > d->level) {
		set_level(d, up, now_ms, chg);
		if (!chg)
			return 1;
		/* Name what drove the highest level; a resource wins a tie (it is measured). */
		if (by_res == up)
			snprintf(chg->reason, sizeof(chg->reason), "%s %.3f >= %s enter %.3f",
				 qg_degrade_resource_name(res), in->res[res], qg_degrade_level_name(up),
				 d->cfg.band[res][up].enter);
		else
			snprintf(chg->reason, sizeof(chg->reason), "%s", d->hold_reason[hold]);
		return 1;
	}

	if (!can_leave(d, in, d->level, floor)) {
		d->calm = 0;
		return 0;
	}
	if (!d->calm) {
		d->calm = 1;
		d->calm_since_ms = now_ms;
	}
	if (now_ms < d->calm_since_ms || now_ms - d->calm_since_ms < d->cfg.min_dwell_ms)
		return 0;

	/* A hold that ended while at this level is part of why it is left. */
	held = (from == QG_DEGRADE_PROTECT && d->hold_until_ms[HOLD_PROTECT] > d->since_ms) ||
	       (from == QG_DEGRADE_SHED && d->hold_until_ms[HOLD_SHED] > d->since_ms);
	set_level(d, (enum qg_degrade_level)(from - 1), now_ms, chg);
	if (chg)
		snprintf(chg->reason, sizeof(chg->reason),
			 "flow_fill %.3f, ring_backlog %.3f, worker_busy %.3f below %s exit%s for %llu ms",
			 in->res[QG_DEGRADE_RES_FLOW_FILL], in->res[QG_DEGRADE_RES_RING_BACKLOG],
			 in->res[QG_DEGRADE_RES_WORKER_BUSY], qg_degrade_level_name(from),
			 held ? " and anomaly hold over" : "",
			 (unsigned long long)(now_ms - d->calm_since_ms));
	/* The next step down needs its own dwell, counted from now. */
	if (can_leave(d, in, d->level, floor)) {
		d->calm = 1;
		d->calm_since_ms = now_ms;
	}
	return 1;
}

enum qg_degrade_level qg_degrade_get_level(const struct qg_degrade *d)
{
	return d->level;
}

const char *qg_degrade_level_name(enum qg_degrade_level l)
{
	switch (l) {
	case QG_DEGRADE_NORMAL:
		return "normal";
	case QG_DEGRADE_PROTECT:
		return "protect";
	case QG_DEGRADE_SHED:
		return "shed";
	case QG_DEGRADE_ESSENTIAL:
		return "essential";
	}
	return "unknown";
}

const char *qg_degrade_resource_name(enum qg_degrade_resource r)
{
	switch (r) {
	case QG_DEGRADE_RES_FLOW_FILL:
		return "flow_fill";
	case QG_DEGRADE_RES_RING_BACKLOG:
		return "ring_backlog";
	case QG_DEGRADE_RES_WORKER_BUSY:
		return "worker_busy";
	case QG_DEGRADE_RES_COUNT:
		break;
	}
	return "unknown";
}
