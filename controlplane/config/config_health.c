/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The health and circuit sections of a service, on_backend_down and priority. Every
 * value that would make the checker or a breaker misbehave at run time (a
 * timeout longer than the interval, a breaker that can never close) is
 * refused here, at its place in the file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "qgate/breaker.h"

#define INTERVAL_MIN	  10u
#define INTERVAL_MAX	  (3600u * 1000)
#define TIMEOUT_DEFAULT	  500u
#define RISE_FALL_MAX	  100u
#define FAILURES_MAX	  1000u
#define OPEN_TIMEOUT_MAX  (3600u * 1000)
#define HALF_OPEN_MAX	  10000u
#define PATH_HOLD_DEFAULT 5000u /* QG_TRANSPORT_DEFAULT_HOLD_MS */
#define PATH_HOLD_MAX	  (3600u * 1000)

enum {
	HK_PROBE,
	HK_SEND,
	HK_EXPECT,
	HK_INTERVAL,
	HK_TIMEOUT,
	HK_RISE,
	HK_FALL,
	HK_PATH_HOLD,
	HK_N
};
static const char *const health_keys[HK_N] = { "probe",	  "send", "expect", "interval",
					       "timeout", "rise", "fall",   "path_hold" };
static const struct section health_section = { "health", "in health", health_keys, HK_N };

enum {
	CK_FAILURES,
	CK_OPEN_TIMEOUT,
	CK_HALF_OPEN_FLOWS,
	CK_SUCCESSES,
	CK_N
};
static const char *const circuit_keys[CK_N] = { "failures", "open_timeout", "half_open_flows", "successes" };
static const struct section circuit_section = { "circuit", "in circuit", circuit_keys, CK_N };

static const struct qg_cfg_enum probe_values[3] = {
	{ "none", QG_CONFIG_PROBE_NONE, NULL },
	{ "udp", QG_CONFIG_PROBE_UDP, NULL },
	{ "quic_vn", QG_CONFIG_PROBE_QUIC_VN, NULL },
};

const struct qg_cfg_enum qg_cfg_on_down_values[2] = {
	{ "rehome", QG_CONFIG_ON_DOWN_REHOME, NULL },
	{ "keep", QG_CONFIG_ON_DOWN_KEEP, NULL },
};

const struct qg_cfg_enum qg_cfg_priority_values[3] = {
	{ "normal", QG_CONFIG_PRIORITY_NORMAL, NULL },
	{ "low", QG_CONFIG_PRIORITY_LOW, NULL },
	{ "high", QG_CONFIG_PRIORITY_HIGH, NULL },
};

void qg_cfg_health_defaults(struct qg_config_health *h, struct qg_config_circuit *c)
{
	memset(h, 0, sizeof(*h));
	h->probe = QG_CONFIG_PROBE_NONE;
	snprintf(h->send, sizeof(h->send), "ping");
	h->interval_ms = 1000;
	h->timeout_ms = TIMEOUT_DEFAULT;
	h->rise = 2;
	h->fall = 3;
	h->path_hold_ms = PATH_HOLD_DEFAULT;
	c->failures = QG_BREAKER_DEFAULT_FAILURES_TO_OPEN;
	c->open_timeout_ms = QG_BREAKER_DEFAULT_OPEN_TIMEOUT_MS;
	c->half_open_flows = QG_BREAKER_DEFAULT_HALF_OPEN_MAX_FLOWS;
	c->successes = QG_BREAKER_DEFAULT_SUCCESSES_TO_CLOSE;
}

/* A probe text: 1..127 bytes (empty allowed for expect only). */
static void load_text(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, int allow_empty,
		      char *out, size_t size)
{
	const char *s;

	if (allow_empty && qg_cfg_is_null(node)) {
		out[0] = '\0';
		return;
	}
	if (qg_cfg_scalar(ctx, node, key, &s))
		return;
	if (!allow_empty && !s[0]) {
		qg_cfg_error(ctx, node, "%s: empty (a probe needs at least one byte)", key);
		return;
	}
	if (strlen(s) >= size) {
		qg_cfg_error(ctx, node, "%s: %zu bytes, max %zu", key, strlen(s), size - 1);
		return;
	}
	memcpy(out, s, strlen(s) + 1);
}

void qg_cfg_health(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_health *h)
{
	int val, probe_ok = 1;
	struct fields f;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "health", ""))
		return;
	qg_cfg_map_fields(ctx, node, &health_section, &f);
	if (f.val[HK_PROBE]) {
		probe_ok = !qg_cfg_enum(ctx, f.val[HK_PROBE], "probe", probe_values,
					QG_CFG_NELEM(probe_values), &val);
		if (probe_ok)
			h->probe = (enum qg_config_probe)val;
	}
	/* Only the udp probe sends a text: accepting it elsewhere would suggest an effect it has not. */
	for (int k = HK_SEND; k <= HK_EXPECT; k++) {
		if (!f.val[k])
			continue;
		if (probe_ok && h->probe != QG_CONFIG_PROBE_UDP)
			qg_cfg_error(ctx, f.key[k], "%s is only allowed with probe udp (probe is %s)",
				     health_keys[k], probe_values[h->probe].name);
		else if (k == HK_SEND)
			load_text(ctx, f.val[k], "send", 0, h->send, sizeof(h->send));
		else
			load_text(ctx, f.val[k], "expect", 1, h->expect, sizeof(h->expect));
	}
	if (f.val[HK_INTERVAL])
		qg_cfg_duration(ctx, f.val[HK_INTERVAL], "interval", INTERVAL_MIN, INTERVAL_MAX,
				&h->interval_ms);
	/* Unwritten, the timeout follows a short interval down: one probe at a time per backend. */
	if (!f.val[HK_TIMEOUT]) {
		if (h->timeout_ms > h->interval_ms)
			h->timeout_ms = h->interval_ms;
	} else if (!qg_cfg_duration(ctx, f.val[HK_TIMEOUT], "timeout", 1, INTERVAL_MAX, &h->timeout_ms) &&
		   h->timeout_ms > h->interval_ms) {
		qg_cfg_error(ctx, f.val[HK_TIMEOUT],
			     "timeout: %u ms is longer than interval (%u ms): a backend has one probe in "
			     "flight at a time",
			     h->timeout_ms, h->interval_ms);
	}
	if (f.val[HK_RISE])
		qg_cfg_u32(ctx, f.val[HK_RISE], "rise", 1, RISE_FALL_MAX, &h->rise);
	if (f.val[HK_FALL])
		qg_cfg_u32(ctx, f.val[HK_FALL], "fall", 1, RISE_FALL_MAX, &h->fall);
	/* 0 is allowed: a better path is taken at once (tests; links known not to flap). */
	if (f.val[HK_PATH_HOLD])
		qg_cfg_duration(ctx, f.val[HK_PATH_HOLD], "path_hold", 0, PATH_HOLD_MAX, &h->path_hold_ms);
}

void qg_cfg_circuit(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_circuit *c)
{
	struct fields f;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "circuit", ""))
		return;
	qg_cfg_map_fields(ctx, node, &circuit_section, &f);
	if (f.val[CK_FAILURES])
		qg_cfg_u32(ctx, f.val[CK_FAILURES], "failures", 1, FAILURES_MAX, &c->failures);
	if (f.val[CK_OPEN_TIMEOUT])
		qg_cfg_duration(ctx, f.val[CK_OPEN_TIMEOUT], "open_timeout", 1, OPEN_TIMEOUT_MAX,
				&c->open_timeout_ms);
	if (f.val[CK_HALF_OPEN_FLOWS])
		qg_cfg_u32(ctx, f.val[CK_HALF_OPEN_FLOWS], "half_open_flows", 1, HALF_OPEN_MAX,
			   &c->half_open_flows);
	/* More successes than trial flows could never close the breaker (breaker.h refuses it too). */
	if (f.val[CK_SUCCESSES] &&
	    !qg_cfg_u32(ctx, f.val[CK_SUCCESSES], "successes", 1, HALF_OPEN_MAX, &c->successes) &&
	    c->successes > c->half_open_flows)
		qg_cfg_error(ctx, f.val[CK_SUCCESSES],
			     "successes: %u is more than half_open_flows (%u): the breaker could never close",
			     c->successes, c->half_open_flows);
	else if (!f.val[CK_SUCCESSES] && c->successes > c->half_open_flows)
		c->successes = c->half_open_flows;
}
