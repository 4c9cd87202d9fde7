/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The degradation section: whether the controller drives the level, its
 * dwell and anomaly hold, and the enter/exit thresholds of each resource at
 * each level. Thresholds the file leaves out keep degrade.h's defaults; the
 * bands that result must satisfy qg_degrade_init() (exit below enter, enter
 * rising with the level), and each violation is reported at the entry that
 * causes it, so a running qgate never meets a controller it cannot build.
 *
 *   degradation:
 *     enabled: true
 *     min_dwell: 10s
 *     anomaly_hold: 30s
 *     flow_fill: {protect: [0.70, 0.60], shed: [0.85, 0.75], essential: [0.95, 0.88]}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define DWELL_MAX (3600u * 1000)

enum {
	DG_ENABLED,
	DG_MIN_DWELL,
	DG_ANOMALY_HOLD,
	DG_FLOW_FILL,
	DG_RING_BACKLOG,
	DG_WORKER_BUSY,
	DG_N
};
static const char *const dg_keys[DG_N] = { "enabled",	"min_dwell",	"anomaly_hold",
					   "flow_fill", "ring_backlog", "worker_busy" };
static const struct section dg_section = { "degradation", "in degradation", dg_keys, DG_N };

/* Levels a resource mapping may name, in level order (index + 1 = enum qg_degrade_level). */
static const char *const level_keys[QG_DEGRADE_LEVELS - 1] = { "protect", "shed", "essential" };

/* The resource mapping keys, in enum qg_degrade_resource order. */
static const int res_key[QG_DEGRADE_RES_COUNT] = { DG_FLOW_FILL, DG_RING_BACKLOG, DG_WORKER_BUSY };

void qg_cfg_degradation_defaults(struct qg_config_degradation *d)
{
	memset(d, 0, sizeof(*d));
	d->enabled = 1;
	qg_degrade_cfg_default(&d->ctl);
}

/*
 * A fraction: plain decimal 0..1 ("0.85", "1", "0") or a percentage
 * ("85%"). Signs, exponents and hex are refused: what is written is what
 * every reader of the file sees.
 */
static int load_fraction(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, double *out)
{
	const char *s, *p;
	int digits = 0, pct;
	double v;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	for (p = s; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
	pct = *p == '%';
	if (!digits || *(p + pct) != '\0') {
		qg_cfg_error(ctx, node, "%s: '%s' is not a fraction (write 0.85 or 85%%)", key, s);
		return -EINVAL;
	}
	v = strtod(s, NULL);
	if (pct)
		v /= 100.0;
	if (v > 1.0) {
		qg_cfg_error(ctx, node, "%s: %s is more than 1 (100%%)", key, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* One level's band: a sequence [enter, exit]. */
static int load_band(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key,
		     struct qg_degrade_band *b)
{
	struct qg_degrade_band nb;
	yaml_node_t *enter, *exit;

	if (node->type != YAML_SEQUENCE_NODE || qg_cfg_seq_len(node) != 2) {
		qg_cfg_error(ctx, node, "%s: expected [enter, exit], e.g. [0.85, 0.75], found %s", key,
			     node->type == YAML_SEQUENCE_NODE ? "another number of values"
							      : qg_cfg_node_kind(node));
		return -EINVAL;
	}
	enter = qg_cfg_node_get(ctx, node->data.sequence.items.start[0]);
	exit = qg_cfg_node_get(ctx, node->data.sequence.items.start[1]);
	if (!enter || !exit || load_fraction(ctx, enter, key, &nb.enter) ||
	    load_fraction(ctx, exit, key, &nb.exit))
		return -EINVAL;
	/* Hysteresis: leaving a level must need less than entering it, or the level would flap. */
	if (!(nb.exit < nb.enter)) {
		qg_cfg_error(ctx, exit, "%s: exit %g must be below enter %g (the gap is the hysteresis)", key,
			     nb.exit, nb.enter);
		return -EINVAL;
	}
	*b = nb;
	return 0;
}

/* One resource's mapping; where[l] gets the node of each level written. */
static void load_resource(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *res,
			  struct qg_degrade_band *bands, const yaml_node_t **where)
{
	static const struct section sec = { "thresholds", "in degradation thresholds", level_keys,
					    QG_DEGRADE_LEVELS - 1 };
	char key[64];
	struct fields f;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, res, " (protect, shed, essential)"))
		return;
	qg_cfg_map_fields(ctx, node, &sec, &f);
	for (int l = 0; l < QG_DEGRADE_LEVELS - 1; l++) {
		if (!f.val[l])
			continue;
		snprintf(key, sizeof(key), "%s.%s", res, level_keys[l]);
		if (!load_band(ctx, f.val[l], key, &bands[l + 1]))
			where[l + 1] = f.val[l];
	}
	/* Each level must start higher than the one below, written or default, or it would never be reached
	 * alone. */
	for (int l = QG_DEGRADE_SHED; l < QG_DEGRADE_LEVELS; l++) {
		const yaml_node_t *at = where[l] ? where[l] : where[l - 1];

		if (bands[l].enter > bands[l - 1].enter || !at)
			continue;
		qg_cfg_error(ctx, at, "%s: %s enters at %g%s, not above %s's %g%s", res, level_keys[l - 1],
			     bands[l].enter, where[l] ? "" : " (default)", level_keys[l - 2],
			     bands[l - 1].enter, where[l - 1] ? "" : " (default)");
	}
}

void qg_cfg_degradation(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_degradation *d)
{
	const yaml_node_t *where[QG_DEGRADE_LEVELS];
	uint32_t ms;
	struct fields f;
	int val;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "degradation", ""))
		return;
	qg_cfg_map_fields(ctx, node, &dg_section, &f);
	if (f.val[DG_ENABLED] && !qg_cfg_enum(ctx, f.val[DG_ENABLED], "enabled", qg_cfg_bool_values,
					      QG_CFG_NELEM(qg_cfg_bool_values), &val))
		d->enabled = val;
	if (f.val[DG_MIN_DWELL] && !qg_cfg_duration(ctx, f.val[DG_MIN_DWELL], "min_dwell", 0, DWELL_MAX, &ms))
		d->ctl.min_dwell_ms = ms;
	if (f.val[DG_ANOMALY_HOLD] &&
	    !qg_cfg_duration(ctx, f.val[DG_ANOMALY_HOLD], "anomaly_hold", 0, DWELL_MAX, &ms))
		d->ctl.anomaly_hold_ms = ms;
	for (int r = 0; r < QG_DEGRADE_RES_COUNT; r++) {
		if (!f.val[res_key[r]])
			continue;
		memset(where, 0, sizeof(where));
		load_resource(ctx, f.val[res_key[r]], dg_keys[res_key[r]], d->ctl.band[r], where);
	}
}
