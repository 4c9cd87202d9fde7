/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Anomaly detection: the EWMA z-score detector and the series registry
 * (see anomaly.h for the defaults and their reasons).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/anomaly.h"

/* ---- EWMA mean/variance z-score ---- */

struct ewma {
	double alpha;
	double threshold;
	double floor_rel;
	double floor_abs;
	uint32_t warmup;
	uint32_t rebaseline_after;
	uint64_t n; /* samples seen, saturating once past warm-up */
	double mean;
	double var;
	/* Welford accumulator of the warm-up, then of the current anomalous run. */
	uint32_t run;
	double run_mean;
	double run_m2;
};

static void welford_add(uint32_t *count, double *mean, double *m2, double x)
{
	double d = x - *mean;

	(*count)++;
	*mean += d / *count;
	*m2 += d * (x - *mean);
}

static double welford_var(uint32_t count, double m2)
{
	return count > 1 ? m2 / (count - 1) : 0.0;
}

static int ewma_create(const struct qg_anomaly_params *p, void **state)
{
	struct ewma *e;

	/* floor_abs > 0 keeps the divisor positive for a series flat at zero. */
	if (!(p->alpha > 0.0 && p->alpha < 1.0) || !(p->floor_rel >= 0.0) || !(p->floor_abs > 0.0) ||
	    !isfinite(p->floor_rel) || !isfinite(p->floor_abs) || p->warmup < 1)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->alpha = p->alpha;
	e->threshold = p->threshold;
	e->floor_rel = p->floor_rel;
	e->floor_abs = p->floor_abs;
	e->warmup = p->warmup;
	e->rebaseline_after = p->rebaseline_after;
	*state = e;
	return 0;
}

static void ewma_update(void *state, double x, uint64_t now_ms, struct qg_anomaly_eval *out)
{
	struct ewma *e = state;
	double sd, d, incr;

	(void)now_ms;
	if (e->n < e->warmup) {
		/*
		 * Warm-up: an exact mean and variance of the first samples. An
		 * EWMA started from the first sample would carry that one
		 * sample's error for dozens of samples after warm-up.
		 */
		welford_add(&e->run, &e->run_mean, &e->run_m2, x);
		e->n++;
		out->ready = 0;
		out->score = 0.0;
		out->expected = e->run_mean;
		if (e->n == e->warmup) {
			e->mean = e->run_mean;
			e->var = welford_var(e->run, e->run_m2);
			e->run = 0;
		}
		return;
	}
	sd = fmax(sqrt(e->var), fmax(e->floor_rel * fabs(e->mean), e->floor_abs));
	d = x - e->mean;
	out->ready = 1;
	out->expected = e->mean;
	out->score = d / sd;
	if (fabs(out->score) < e->threshold) {
		/* West's incremental EWMA of mean and variance. */
		incr = e->alpha * d;
		e->mean += incr;
		e->var = (1.0 - e->alpha) * (e->var + d * incr);
		e->run = 0;
		return;
	}
	/*
	 * Anomalous: kept out of the baseline so an attack cannot teach the
	 * detector that it is normal. Only a long unbroken run does.
	 */
	if (e->run == 0) {
		e->run_mean = 0.0;
		e->run_m2 = 0.0;
	}
	welford_add(&e->run, &e->run_mean, &e->run_m2, x);
	if (e->rebaseline_after && e->run >= e->rebaseline_after) {
		e->mean = e->run_mean;
		e->var = welford_var(e->run, e->run_m2);
		e->run = 0;
	}
}

static void ewma_destroy(void *state)
{
	free(state);
}

const struct qg_anomaly_algo_ops qg_anomaly_ewma_ops = {
	.name = "ewma",
	.create = ewma_create,
	.update = ewma_update,
	.destroy = ewma_destroy,
};

/* ---- Registry ---- */

struct qg_anomaly_registry {
	struct qg_anomaly_series **series;
	uint32_t n;
	uint32_t cap;
};

void qg_anomaly_params_default(struct qg_anomaly_params *p)
{
	memset(p, 0, sizeof(*p));
	p->threshold = QG_ANOMALY_DEFAULT_THRESHOLD;
	p->warmup = QG_ANOMALY_DEFAULT_WARMUP;
	p->alpha = QG_ANOMALY_DEFAULT_ALPHA;
	p->floor_rel = QG_ANOMALY_DEFAULT_FLOOR_REL;
	p->floor_abs = QG_ANOMALY_DEFAULT_FLOOR_ABS;
	p->rebaseline_after = QG_ANOMALY_DEFAULT_REBASELINE_AFTER;
}

static void policy_fill(struct qg_anomaly_policy *pol, enum qg_anomaly_action up_warn,
			enum qg_anomaly_action up_crit, enum qg_anomaly_action down)
{
	pol->up[QG_ANOMALY_SEV_NONE] = QG_ANOMALY_ACT_NONE;
	pol->up[QG_ANOMALY_SEV_WARNING] = up_warn;
	pol->up[QG_ANOMALY_SEV_CRITICAL] = up_crit;
	pol->down[QG_ANOMALY_SEV_NONE] = QG_ANOMALY_ACT_NONE;
	pol->down[QG_ANOMALY_SEV_WARNING] = down;
	pol->down[QG_ANOMALY_SEV_CRITICAL] = down;
}

void qg_anomaly_policy_default(const char *name, struct qg_anomaly_policy *pol)
{
	if (!strcmp(name, "new_flows_per_s") || !strcmp(name, "initials_per_s"))
		policy_fill(pol, QG_ANOMALY_ACT_PROTECT, QG_ANOMALY_ACT_PROTECT, QG_ANOMALY_ACT_ALERT);
	else if (!strcmp(name, "pps"))
		policy_fill(pol, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_PROTECT, QG_ANOMALY_ACT_ALERT);
	else if (!strcmp(name, "drops_per_s"))
		policy_fill(pol, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_NONE);
	else if (!strncmp(name, "probe_rtt", strlen("probe_rtt")))
		policy_fill(pol, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_NONE);
	else
		policy_fill(pol, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT);
}

int qg_anomaly_registry_create(struct qg_anomaly_registry **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void series_free(struct qg_anomaly_series *s)
{
	if (s->state)
		s->ops->destroy(s->state);
	free(s);
}

void qg_anomaly_registry_destroy(struct qg_anomaly_registry *reg)
{
	uint32_t i;

	if (!reg)
		return;
	for (i = 0; i < reg->n; i++)
		series_free(reg->series[i]);
	free(reg->series);
	free(reg);
}

static int find_index(const struct qg_anomaly_registry *reg, const char *name)
{
	uint32_t i;

	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->series[i]->name, name))
			return (int)i;
	return -1;
}

static int policy_valid(const struct qg_anomaly_policy *pol)
{
	int i;

	for (i = 0; i < 3; i++)
		if ((unsigned)pol->up[i] > QG_ANOMALY_ACT_SHED ||
		    (unsigned)pol->down[i] > QG_ANOMALY_ACT_SHED)
			return 0;
	return 1;
}

int qg_anomaly_series_add(struct qg_anomaly_registry *reg, const char *name,
			  const struct qg_anomaly_algo_ops *ops, const struct qg_anomaly_params *params,
			  const struct qg_anomaly_policy *policy, struct qg_anomaly_series **out)
{
	struct qg_anomaly_series *s, **grown;
	size_t len;
	int ret;

	if (!reg || !name)
		return -EINVAL;
	len = strlen(name);
	if (!len || len >= QG_ANOMALY_NAME_MAX)
		return -EINVAL;
	if (find_index(reg, name) >= 0)
		return -EEXIST;
	if (!ops)
		ops = &qg_anomaly_ewma_ops;
	if (!ops->create || !ops->update || !ops->destroy)
		return -EINVAL;
	if (policy && !policy_valid(policy))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s->name, name, len + 1);
	s->ops = ops;
	if (params)
		s->params = *params;
	else
		qg_anomaly_params_default(&s->params);
	if (policy)
		s->policy = *policy;
	else
		qg_anomaly_policy_default(name, &s->policy);
	ret = -EINVAL;
	if (!(s->params.threshold > 0.0) || !isfinite(s->params.threshold))
		goto err;
	ret = ops->create(&s->params, &s->state);
	if (ret)
		goto err;
	if (reg->n == reg->cap) {
		uint32_t cap = reg->cap ? reg->cap * 2 : 8;

		ret = -ENOMEM;
		grown = realloc(reg->series, cap * sizeof(*grown));
		if (!grown)
			goto err;
		reg->series = grown;
		reg->cap = cap;
	}
	reg->series[reg->n++] = s;
	if (out)
		*out = s;
	return 0;
err:
	series_free(s);
	return ret;
}

struct qg_anomaly_series *qg_anomaly_series_find(struct qg_anomaly_registry *reg, const char *name)
{
	int i = find_index(reg, name);

	return i < 0 ? NULL : reg->series[i];
}

int qg_anomaly_series_remove(struct qg_anomaly_registry *reg, const char *name)
{
	int i = find_index(reg, name);

	if (i < 0)
		return -ENOENT;
	series_free(reg->series[i]);
	reg->series[i] = reg->series[--reg->n];
	return 0;
}

uint32_t qg_anomaly_series_count(const struct qg_anomaly_registry *reg)
{
	return reg->n;
}

struct qg_anomaly_series *qg_anomaly_series_at(struct qg_anomaly_registry *reg, uint32_t i)
{
	return i < reg->n ? reg->series[i] : NULL;
}

int qg_anomaly_observe(struct qg_anomaly_series *s, double value, uint64_t now_ms,
		       struct qg_anomaly_record *rec)
{
	struct qg_anomaly_eval ev = { 0 };
	enum qg_anomaly_severity sev;
	double mag;

	/* A NaN in the baseline would silence the detector for good. */
	if (!isfinite(value))
		return -EINVAL;
	s->ops->update(s->state, value, now_ms, &ev);
	s->samples++;
	mag = fabs(ev.score);
	if (!ev.ready || !(mag >= s->params.threshold))
		return 0;
	sev = mag >= 2.0 * s->params.threshold ? QG_ANOMALY_SEV_CRITICAL : QG_ANOMALY_SEV_WARNING;
	s->anomalies++;
	if (sev == QG_ANOMALY_SEV_CRITICAL)
		s->criticals++;
	else
		s->warnings++;
	s->last_anomaly_ms = now_ms;
	if (rec) {
		rec->series = s->name;
		rec->value = value;
		rec->expected = ev.expected;
		rec->z = ev.score;
		rec->severity = sev;
		rec->action = ev.score > 0 ? s->policy.up[sev] : s->policy.down[sev];
		rec->now_ms = now_ms;
	}
	return 1;
}

const char *qg_anomaly_severity_name(enum qg_anomaly_severity s)
{
	switch (s) {
	case QG_ANOMALY_SEV_NONE:
		return "none";
	case QG_ANOMALY_SEV_WARNING:
		return "warning";
	case QG_ANOMALY_SEV_CRITICAL:
		return "critical";
	}
	return "unknown";
}

const char *qg_anomaly_action_name(enum qg_anomaly_action a)
{
	switch (a) {
	case QG_ANOMALY_ACT_NONE:
		return "none";
	case QG_ANOMALY_ACT_ALERT:
		return "alert";
	case QG_ANOMALY_ACT_PROTECT:
		return "protect";
	case QG_ANOMALY_ACT_SHED:
		return "shed";
	}
	return "unknown";
}
