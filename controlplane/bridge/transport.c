/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transport path scoring and switching (see transport.h). Integer fixed
 * point throughout: scores and EWMAs must come out the same on every run so
 * the injected-clock tests pin exact switch times.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "qgate/config.h"
#include "qgate/events.h"
#include "qgate/transport.h"

_Static_assert((int)QG_TRANSPORT_UDP == (int)QG_CONFIG_PATH_UDP &&
		       (int)QG_TRANSPORT_BT_BREDR == (int)QG_CONFIG_PATH_BT_BREDR &&
		       (int)QG_TRANSPORT_BT_LE == (int)QG_CONFIG_PATH_BT_LE,
	       "a configured path kind is its transport kind");
_Static_assert(QG_TRANSPORT_MAX_PATHS == QG_CONFIG_MAX_PATHS, "one selector slot per configured path");

#define PPM 1000000u

void qg_transport_cfg_default(struct qg_transport_cfg *cfg)
{
	cfg->base[QG_TRANSPORT_UDP] = QG_TRANSPORT_DEFAULT_BASE_UDP;
	cfg->base[QG_TRANSPORT_BT_BREDR] = QG_TRANSPORT_DEFAULT_BASE_BREDR;
	cfg->base[QG_TRANSPORT_BT_LE] = QG_TRANSPORT_DEFAULT_BASE_LE;
	cfg->loss_weight = QG_TRANSPORT_DEFAULT_LOSS_WEIGHT;
	cfg->rtt_weight = QG_TRANSPORT_DEFAULT_RTT_WEIGHT;
	cfg->rtt_cap_ms = QG_TRANSPORT_DEFAULT_RTT_CAP_MS;
	cfg->ewma_pct = QG_TRANSPORT_DEFAULT_EWMA_PCT;
	cfg->margin = QG_TRANSPORT_DEFAULT_MARGIN;
	cfg->hold_ms = QG_TRANSPORT_DEFAULT_HOLD_MS;
	cfg->rise = QG_TRANSPORT_DEFAULT_RISE;
	cfg->fall = QG_TRANSPORT_DEFAULT_FALL;
}

static int32_t score_of(const struct qg_transport_cfg *cfg, const struct qg_transport_path *p)
{
	uint64_t rtt_ms = p->rtt_us / 1000u;
	int64_t s = cfg->base[p->kind];

	if (rtt_ms > cfg->rtt_cap_ms)
		rtt_ms = cfg->rtt_cap_ms;
	s -= (int64_t)((uint64_t)cfg->loss_weight * p->loss_ppm / PPM);
	s -= (int64_t)(cfg->rtt_weight * rtt_ms);
	/* Weights are 32-bit and the loss and RTT terms bounded: the clamp only guards silly configs. */
	if (s < INT32_MIN)
		s = INT32_MIN;
	return (int32_t)s;
}

/* Rounded to nearest so a long run of equal samples converges on the sample itself. */
static uint32_t ewma(uint32_t avg, uint32_t sample, uint32_t pct)
{
	int64_t d = (int64_t)sample - (int64_t)avg;
	int64_t step = d * (int64_t)pct;

	step = step >= 0 ? (step + 50) / 100 : -((-step + 50) / 100);
	return (uint32_t)((int64_t)avg + step);
}

int qg_transport_init(struct qg_transport_sel *s, const struct qg_transport_cfg *cfg,
		      const enum qg_transport_kind *kinds, unsigned n, uint64_t now_ms)
{
	struct qg_transport_cfg def;
	unsigned i;

	if (!s || !kinds || n == 0 || n > QG_TRANSPORT_MAX_PATHS)
		return -EINVAL;
	if (!cfg) {
		qg_transport_cfg_default(&def);
		cfg = &def;
	}
	if (!cfg->rise || !cfg->fall || !cfg->ewma_pct || cfg->ewma_pct > 100 || !cfg->rtt_cap_ms)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if ((unsigned)kinds[i] >= QG_TRANSPORT_KIND_COUNT)
			return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->n_paths = n;
	s->challenger = -1;
	s->since_ms = now_ms;
	for (i = 0; i < n; i++) {
		s->path[i].kind = kinds[i];
		s->path[i].healthy = 1;
		s->path[i].score = score_of(cfg, &s->path[i]);
		if (s->path[i].score > s->path[s->current].score)
			s->current = i;
	}
	return 0;
}

/* a is preferred over b by configuration alone: higher base, or equal base and listed first. */
static int preferred(const struct qg_transport_sel *s, unsigned a, unsigned b)
{
	int32_t ba = s->cfg.base[s->path[a].kind], bb = s->cfg.base[s->path[b].kind];

	return ba > bb || (ba == bb && a < b);
}

static int do_switch(struct qg_transport_sel *s, unsigned to, enum qg_transport_reason why, uint64_t now_ms,
		     struct qg_transport_switch *sw)
{
	unsigned from = s->current;

	if (sw) {
		sw->from = from;
		sw->to = to;
		sw->from_kind = s->path[from].kind;
		sw->to_kind = s->path[to].kind;
		sw->from_score = s->path[from].score;
		sw->to_score = s->path[to].score;
		sw->reason = why;
		sw->at_ms = now_ms;
	}
	s->current = to;
	s->since_ms = now_ms;
	s->challenger = -1;
	s->switches++;
	return 1;
}

static int evaluate(struct qg_transport_sel *s, uint64_t now_ms, struct qg_transport_switch *sw)
{
	unsigned cur = s->current, i;
	int best = -1;

	for (i = 0; i < s->n_paths; i++) {
		if (!s->path[i].healthy)
			continue;
		if (best < 0 || s->path[i].score > s->path[best].score ||
		    (s->path[i].score == s->path[best].score && preferred(s, i, (unsigned)best)))
			best = (int)i;
	}
	/* Nothing healthy: stay; moving between dead paths only produces events. */
	if (best < 0) {
		s->challenger = -1;
		return 0;
	}
	if (!s->path[cur].healthy)
		return do_switch(s, (unsigned)best, QG_TRANSPORT_FAILOVER, now_ms, sw);
	if ((unsigned)best == cur ||
	    (int64_t)s->path[best].score < (int64_t)s->path[cur].score + (int64_t)s->cfg.margin) {
		s->challenger = -1;
		return 0;
	}
	/* A new leader starts its own hold: the lead must be held by one path throughout. */
	if (s->challenger != best) {
		s->challenger = best;
		s->challenge_since_ms = now_ms;
	}
	if (now_ms - s->challenge_since_ms < s->cfg.hold_ms)
		return 0;
	return do_switch(s, (unsigned)best,
			 preferred(s, (unsigned)best, cur) ? QG_TRANSPORT_RECOVERED : QG_TRANSPORT_DEGRADED,
			 now_ms, sw);
}

int qg_transport_record(struct qg_transport_sel *s, unsigned path, int ok, uint32_t rtt_us, uint64_t now_ms,
			struct qg_transport_switch *sw)
{
	struct qg_transport_path *p;

	if (!s || path >= s->n_paths)
		return -EINVAL;
	p = &s->path[path];
	p->probes++;
	p->loss_ppm = ewma(p->loss_ppm, ok ? 0 : PPM, s->cfg.ewma_pct);
	if (ok) {
		/* The first sample is taken as is: averaging it with 0 would flatter the path. */
		p->rtt_us = p->probes - p->failures == 1 ? rtt_us : ewma(p->rtt_us, rtt_us, s->cfg.ewma_pct);
		p->ok_run++;
		p->fail_run = 0;
		if (!p->healthy && p->ok_run >= s->cfg.rise)
			p->healthy = 1;
	} else {
		p->failures++;
		p->fail_run++;
		p->ok_run = 0;
		if (p->healthy && p->fail_run >= s->cfg.fall)
			p->healthy = 0;
	}
	p->score = score_of(&s->cfg, p);
	return evaluate(s, now_ms, sw);
}

int qg_transport_tick(struct qg_transport_sel *s, uint64_t now_ms, struct qg_transport_switch *sw)
{
	if (!s)
		return -EINVAL;
	return evaluate(s, now_ms, sw);
}

static const char *const kind_names[QG_TRANSPORT_KIND_COUNT] = { "udp", "bt_bredr", "bt_le" };
static const char *const reason_names[] = { "failover", "degraded", "recovered" };

const char *qg_transport_kind_name(enum qg_transport_kind k)
{
	return (unsigned)k < QG_TRANSPORT_KIND_COUNT ? kind_names[k] : "?";
}

const char *qg_transport_reason_name(enum qg_transport_reason r)
{
	return (unsigned)r < sizeof(reason_names) / sizeof(reason_names[0]) ? reason_names[r] : "?";
}

void qg_transport_switch_event(const struct qg_transport_switch *sw, int service, int backend,
			       struct qg_event *ev)
{
	/* Losing a path is worth a warning; a planned move on scores is a notice. */
	qg_event_init(ev, QG_EVENT_PATH_SWITCH,
		      sw->reason == QG_TRANSPORT_FAILOVER ? QG_EVENT_SEV_WARNING : QG_EVENT_SEV_NOTICE);
	ev->service = service;
	ev->backend = backend;
	ev->arg[0] = sw->from;
	ev->arg[1] = sw->to;
	ev->arg[2] = sw->from_score;
	ev->arg[3] = sw->to_score;
	qg_event_set_text(ev, "%s -> %s (%s)", qg_transport_kind_name(sw->from_kind),
			  qg_transport_kind_name(sw->to_kind), qg_transport_reason_name(sw->reason));
}
