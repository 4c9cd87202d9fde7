/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The health checker's core (see health.h): probe scheduling, timeouts,
 * rise/fall hysteresis, the breakers and what the dataplane is told. No I/O
 * here: everything outside goes through the ops table, the clock is now_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/events.h"
#include "qgate/hash.h"
#include "qgate/health.h"
#include "qgate/log.h"

#define SPREAD_SEED 0x4865616c7468ULL /* "Health" */

struct hc_backend {
	unsigned svc, b;
	const struct qg_config_health *cfg; /* its service's section */
	enum qg_health_state state;
	uint32_t ok_run, fail_run; /* consecutive probe outcomes */
	uint32_t window;	   /* last QG_HEALTH_WINDOW outcomes, bit set = failed */
	uint32_t n_window;
	int in_flight;
	int up; /* what the dataplane was told */
	uint64_t deadline_ms;
	uint64_t next_ms;
	uint64_t sent_ms; /* when the probe in flight left: its RTT */
	/* Judged through its paths (qg_health_divert): probe outcomes go here, verdicts come back. */
	void (*divert)(void *ctx, unsigned id, int ok, uint32_t rtt_us, uint64_t now_ms);
	void *divert_ctx;
	uint64_t probes, failures;
	struct qg_breaker br;
	/* Passive signals: the dataplane's figures at the previous tick. */
	struct qg_backend_stats last;
	int have_last;
	uint64_t trial_base;  /* flows_created when the breaker turned half-open */
	uint64_t trial_flows; /* flows the dataplane created since then */
	struct qg_health *hc;
};

struct qg_health {
	const struct qg_config *cfg;
	struct qg_health_ops ops;
	void *ctx;
	struct qg_event_bus *bus;
	unsigned n;
	struct hc_backend *be;
	unsigned *svc_first;	  /* id of each service's first backend */
	uint64_t next_passive_ms; /* when the dataplane's figures are read next */
};

const char *qg_health_state_name(enum qg_health_state s)
{
	switch (s) {
	case QG_HEALTH_UNKNOWN:
		return "unknown";
	case QG_HEALTH_HEALTHY:
		return "healthy";
	case QG_HEALTH_DEGRADED:
		return "degraded";
	case QG_HEALTH_UNHEALTHY:
		return "unhealthy";
	}
	return "?";
}

/*
 * A backend with only Bluetooth paths has no address to probe over UDP: the
 * bridge probes its paths (qg_health_divert), or, without a bridge, passive
 * signals (the breaker) judge it, as when probes are off.
 */
static int sends(const struct hc_backend *be)
{
	return be->cfg->probe != QG_CONFIG_PROBE_NONE &&
	       be->hc->cfg->services[be->svc].backends[be->b].addr.family != 0;
}

static int probed(const struct hc_backend *be)
{
	return sends(be) || (be->divert && be->cfg->probe != QG_CONFIG_PROBE_NONE);
}

static void event_fill(struct qg_health *hc, const struct hc_backend *be, struct qg_event *ev)
{
	const struct qg_config_service *s = &hc->cfg->services[be->svc];

	ev->service = (int32_t)be->svc;
	ev->backend = (int32_t)be->b;
	/* Names may be longer than the event's field: truncated on purpose. */
	memcpy(ev->service_name, s->name, sizeof(ev->service_name) - 1);
	ev->service_name[sizeof(ev->service_name) - 1] = '\0';
	qg_addr_format(&s->backends[be->b].addr, ev->backend_name, sizeof(ev->backend_name));
}

static void publish_state(struct hc_backend *be, enum qg_health_state from, const char *why)
{
	struct qg_health *hc = be->hc;
	enum qg_event_type type;
	enum qg_event_severity sev;
	struct qg_event ev;

	if (be->state == QG_HEALTH_UNHEALTHY) {
		type = QG_EVENT_BACKEND_DOWN;
		sev = QG_EVENT_SEV_WARNING;
	} else if (be->state == QG_HEALTH_DEGRADED) {
		type = QG_EVENT_BACKEND_DEGRADED;
		sev = QG_EVENT_SEV_NOTICE;
	} else {
		type = QG_EVENT_BACKEND_UP;
		sev = QG_EVENT_SEV_INFO;
	}
	if (!hc->bus)
		return;
	qg_event_init(&ev, type, sev);
	event_fill(hc, be, &ev);
	if (type == QG_EVENT_BACKEND_DEGRADED)
		ev.arg[1] = (int64_t)__builtin_popcount(be->window) * 1000000 /
			    (be->n_window ? be->n_window : 1); /* loss ppm over the window */
	qg_event_set_text(&ev, "%s -> %s: %s", qg_health_state_name(from), qg_health_state_name(be->state),
			  why);
	qg_events_publish(hc->bus, &ev);
}

static void set_state(struct hc_backend *be, enum qg_health_state to, const char *why)
{
	enum qg_health_state from = be->state;

	if (from == to)
		return;
	be->state = to;
	publish_state(be, from, why);
}

static void on_circuit(void *ctx, const struct qg_breaker *b, enum qg_breaker_state from,
		       enum qg_breaker_state to, uint64_t now_ms)
{
	struct hc_backend *be = ctx;
	struct qg_health *hc = be->hc;
	struct qg_event ev;

	(void)b;
	(void)now_ms;
	if (!hc->bus)
		return;
	qg_event_init(&ev, QG_EVENT_CIRCUIT_CHANGE,
		      to == QG_BREAKER_OPEN ? QG_EVENT_SEV_WARNING : QG_EVENT_SEV_INFO);
	event_fill(hc, be, &ev);
	ev.arg[0] = from;
	ev.arg[1] = to;
	qg_event_set_text(&ev, "circuit %s -> %s", qg_breaker_state_name(from), qg_breaker_state_name(to));
	qg_events_publish(hc->bus, &ev);
}

/* Degraded is a shade of healthy: recomputed whenever an outcome or the breaker moves. */
static void update_degraded(struct hc_backend *be)
{
	int lossy = __builtin_popcount(be->window) >= QG_HEALTH_DEGRADED_FAILS;
	int trial = be->br.state == QG_BREAKER_HALF_OPEN;

	if (be->state == QG_HEALTH_HEALTHY && (lossy || trial))
		set_state(be, QG_HEALTH_DEGRADED, trial ? "circuit half-open" : "recent probes failed");
	else if (be->state == QG_HEALTH_DEGRADED && !lossy && !trial)
		set_state(be, QG_HEALTH_HEALTHY, "recent probes succeed");
}

static void outcome(struct hc_backend *be, int ok, uint64_t now_ms, const char *why)
{
	uint32_t mask = (1u << QG_HEALTH_WINDOW) - 1;

	be->window = ((be->window << 1) | (ok ? 0u : 1u)) & mask;
	if (be->n_window < QG_HEALTH_WINDOW)
		be->n_window++;
	if (ok) {
		be->ok_run++;
		be->fail_run = 0;
		qg_breaker_record_success(&be->br, now_ms);
		if ((be->state == QG_HEALTH_UNKNOWN || be->state == QG_HEALTH_UNHEALTHY) &&
		    be->ok_run >= be->cfg->rise)
			set_state(be, QG_HEALTH_HEALTHY, "probes succeed");
	} else {
		be->failures++;
		be->fail_run++;
		be->ok_run = 0;
		qg_breaker_record_failure(&be->br, now_ms);
		if (be->state != QG_HEALTH_UNHEALTHY && be->fail_run >= be->cfg->fall)
			set_state(be, QG_HEALTH_UNHEALTHY, why);
	}
	update_degraded(be);
}

/* The probe in flight ended: a verdict, or for a diverted backend news of its udp path. */
static void probe_done(struct hc_backend *be, int ok, uint64_t now_ms, const char *why)
{
	uint64_t rtt_us = (now_ms - be->sent_ms) * 1000;

	be->in_flight = 0;
	if (be->divert) {
		be->divert(be->divert_ctx, (unsigned)(be - be->hc->be), ok,
			   rtt_us > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt_us, now_ms);
		return;
	}
	outcome(be, ok, now_ms, why);
}

void qg_health_reply(struct qg_health *hc, unsigned id, int ok, uint64_t now_ms)
{
	/* Only the probe in flight counts: a late answer to a timed-out one is not news. */
	if (id < hc->n && hc->be[id].in_flight)
		probe_done(&hc->be[id], ok, now_ms, ok ? "" : "probe refused or wrong reply");
}

int qg_health_divert(struct qg_health *hc, unsigned id,
		     void (*fn)(void *ctx, unsigned id, int ok, uint32_t rtt_us, uint64_t now_ms), void *ctx)
{
	if (!hc || id >= hc->n)
		return -ENOENT;
	hc->be[id].divert = fn;
	hc->be[id].divert_ctx = ctx;
	return 0;
}

void qg_health_report(struct qg_health *hc, unsigned id, int ok, uint64_t now_ms, const char *why)
{
	struct hc_backend *be;

	if (!hc || id >= hc->n || !hc->be[id].divert)
		return;
	be = &hc->be[id];
	be->probes++; /* a udp probe counted when it left; a Bluetooth one did not */
	if (!sends(be))
		be->next_ms = now_ms + be->cfg->interval_ms;
	outcome(be, ok, now_ms, why ? why : (ok ? "" : "probe failed"));
}

static void send_probe(struct qg_health *hc, struct hc_backend *be, uint64_t now_ms)
{
	unsigned id = (unsigned)(be - hc->be);
	int rc;

	/* Timeout <= interval, so only a clock jump gets here with a probe still out. */
	if (be->in_flight)
		probe_done(be, 0, now_ms, "probe timed out");
	/* A diverted backend's probes are counted as its paths report them (qg_health_report). */
	if (!be->divert)
		be->probes++;
	be->in_flight = 1;
	be->sent_ms = now_ms;
	be->deadline_ms = now_ms + be->cfg->timeout_ms;
	/* Keep the phase; after a stall (missed a whole interval) restart from now. */
	be->next_ms += be->cfg->interval_ms;
	if (be->next_ms <= now_ms)
		be->next_ms = now_ms + be->cfg->interval_ms;
	rc = hc->ops.send(hc->ctx, id, now_ms);
	if (rc)
		probe_done(be, 0, now_ms, "probe could not be sent");
}

/* ICMP-refused datagrams are failures; replies to flows are successes. */
static void passive(struct qg_health *hc, struct hc_backend *be, uint64_t now_ms)
{
	struct qg_backend_stats st;
	uint64_t refused, admitted;

	if (!hc->ops.stats || hc->ops.stats(hc->ctx, be->svc, be->b, &st))
		return;
	if (!be->have_last) {
		be->last = st;
		be->have_last = 1;
		return;
	}
	refused = st.refused - be->last.refused;
	/* Refusals on a multi-path backend's udp path are the path's news: its probes tell the scorer. */
	if (be->divert)
		refused = 0;
	/* Capped: a burst of refusals is one piece of news, not thousands. */
	if (refused > be->br.cfg.failures_to_open)
		refused = be->br.cfg.failures_to_open;
	for (uint64_t i = 0; i < refused; i++)
		qg_breaker_record_failure(&be->br, now_ms);
	if (!refused && st.rx_pkts != be->last.rx_pkts)
		qg_breaker_record_success(&be->br, now_ms);
	/* Half-open: account the trial flows the dataplane admitted since the trial began. */
	if (be->br.state == QG_BREAKER_HALF_OPEN) {
		admitted = st.flows_created - be->trial_base;
		be->trial_flows = admitted;
		/* The call that turned it half-open counted the first trial flow already. */
		while (be->br.state == QG_BREAKER_HALF_OPEN && be->br.trial_admitted < admitted &&
		       be->br.trial_admitted < be->br.cfg.half_open_max_flows)
			qg_breaker_allow_new_flow(&be->br, now_ms);
	}
	be->last = st;
}

static int compute_up(const struct hc_backend *be)
{
	if (be->state == QG_HEALTH_UNHEALTHY)
		return 0;
	if (be->br.state == QG_BREAKER_OPEN)
		return 0;
	/* Half-open: up until the trial's flows are all admitted, then wait for a verdict. */
	if (be->br.state == QG_BREAKER_HALF_OPEN)
		return be->trial_flows < be->br.cfg.half_open_max_flows;
	return 1;
}

static void breaker_time(struct hc_backend *be, uint64_t now_ms)
{
	struct qg_breaker *br = &be->br;

	/* Open long enough: allow_new_flow turns it half-open and counts the trial's first flow. */
	if (br->state == QG_BREAKER_OPEN && now_ms - br->since_ms >= br->cfg.open_timeout_ms) {
		qg_breaker_allow_new_flow(br, now_ms);
		be->trial_base = be->have_last ? be->last.flows_created : 0;
		be->trial_flows = 0;
	} else if (br->state == QG_BREAKER_HALF_OPEN && br->trial_admitted >= br->cfg.half_open_max_flows) {
		/* No verdict within open_timeout: the breaker reopens itself here. */
		qg_breaker_allow_new_flow(br, now_ms);
	}
}

void qg_health_tick(struct qg_health *hc, uint64_t now_ms)
{
	/*
	 * Passive signals sum every worker's figures for every backend: at a
	 * tick per probe batch that was most of the checker's own time, and a
	 * breaker gains nothing from reading them more often than this.
	 */
	int read_figures = now_ms >= hc->next_passive_ms;

	if (read_figures)
		hc->next_passive_ms = now_ms + QG_HEALTH_PASSIVE_MS;
	if (hc->ops.poll)
		hc->ops.poll(hc->ctx, hc, now_ms);
	for (unsigned i = 0; i < hc->n; i++) {
		struct hc_backend *be = &hc->be[i];
		int up;

		if (sends(be)) {
			if (be->in_flight && now_ms >= be->deadline_ms)
				probe_done(be, 0, now_ms, "probe timed out");
			if (now_ms >= be->next_ms)
				send_probe(hc, be, now_ms);
		}
		if (read_figures)
			passive(hc, be, now_ms);
		breaker_time(be, now_ms);
		update_degraded(be);
		up = compute_up(be);
		if (up != be->up && hc->ops.set_up) {
			int rc = hc->ops.set_up(hc->ctx, be->svc, be->b, up);

			if (rc)
				QG_LOG_WARN("health: cannot mark backend %u of service %u %s: %s", be->b,
					    be->svc, up ? "up" : "down", strerror(-rc));
			else
				be->up = up;
		} else if (!hc->ops.set_up) {
			be->up = up;
		}
	}
}

uint64_t qg_health_next_ms(const struct qg_health *hc)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < hc->n; i++) {
		const struct hc_backend *be = &hc->be[i];

		if (!sends(be))
			continue;
		if (be->next_ms < next)
			next = be->next_ms;
		if (be->in_flight && be->deadline_ms < next)
			next = be->deadline_ms;
	}
	return next;
}

int qg_health_create(const struct qg_config *cfg, const struct qg_health_ops *ops, void *ctx,
		     struct qg_event_bus *bus, uint64_t now_ms, struct qg_health **out)
{
	struct qg_health *hc;
	unsigned id = 0;
	int rc = -ENOMEM;

	if (!cfg || !ops || !ops->send)
		return -EINVAL;
	hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	hc->cfg = cfg;
	hc->ops = *ops;
	hc->ctx = ctx;
	hc->bus = bus;
	for (uint32_t s = 0; s < cfg->n_services; s++)
		hc->n += cfg->services[s].n_backends;
	hc->be = calloc(hc->n ? hc->n : 1, sizeof(*hc->be));
	hc->svc_first = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*hc->svc_first));
	if (!hc->be || !hc->svc_first)
		goto err;
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		const struct qg_config_service *svc = &cfg->services[s];
		struct qg_breaker_cfg bc = {
			.failures_to_open = svc->circuit.failures,
			.open_timeout_ms = svc->circuit.open_timeout_ms,
			.half_open_max_flows = svc->circuit.half_open_flows,
			.successes_to_close = svc->circuit.successes,
		};

		hc->svc_first[s] = id;
		for (uint32_t b = 0; b < svc->n_backends; b++, id++) {
			struct hc_backend *be = &hc->be[id];

			be->hc = hc;
			be->svc = s;
			be->b = b;
			be->cfg = &svc->health;
			be->up = 1; /* the table starts with every backend up */
			/* Spread: the first probe waits a hash of the address modulo the interval. */
			be->next_ms = now_ms + qg_hash_addr(&svc->backends[b].addr, SPREAD_SEED) %
						       svc->health.interval_ms;
			rc = qg_breaker_init(&be->br, &bc, on_circuit, be, now_ms);
			if (rc)
				goto err;
		}
	}
	*out = hc;
	return 0;
err:
	hc->ops.destroy = NULL; /* ctx stays the caller's until we succeed */
	qg_health_destroy(hc);
	return rc;
}

void qg_health_adopt(struct qg_health *hc, const struct qg_health *old)
{
	for (unsigned i = 0; old && i < hc->n; i++) {
		struct hc_backend *be = &hc->be[i];
		const struct qg_config_service *s = &hc->cfg->services[be->svc];

		for (unsigned j = 0; j < old->n; j++) {
			const struct hc_backend *o = &old->be[j];
			const struct qg_config_service *os = &old->cfg->services[o->svc];

			if (strcmp(os->name, s->name) != 0 ||
			    !qg_addr_equal(&os->backends[o->b].addr, &s->backends[be->b].addr))
				continue;
			/* Same backend, and the dataplane kept its slot: its history carries on. */
			be->state = o->state;
			be->ok_run = o->ok_run;
			be->fail_run = o->fail_run;
			be->window = o->window;
			be->n_window = o->n_window;
			be->up = o->up;
			be->probes = o->probes;
			be->failures = o->failures;
			{
				struct qg_breaker_cfg keep = be->br.cfg; /* the new file's circuit settings */

				be->br = o->br;
				be->br.cfg = keep;
			}
			be->last = o->last;
			be->have_last = o->have_last;
			be->trial_base = o->trial_base;
			be->trial_flows = o->trial_flows;
			break;
		}
	}
}

void qg_health_destroy(struct qg_health *hc)
{
	if (!hc)
		return;
	if (hc->ops.destroy)
		hc->ops.destroy(hc->ctx);
	free(hc->be);
	free(hc->svc_first);
	free(hc);
}

unsigned qg_health_pollfds(const struct qg_health *hc, struct pollfd *fds, unsigned max)
{
	return hc && hc->ops.pollfds ? hc->ops.pollfds(hc->ctx, fds, max) : 0;
}

unsigned qg_health_backend_count(const struct qg_health *hc)
{
	return hc->n;
}

int qg_health_backend_id(const struct qg_health *hc, unsigned svc, unsigned b)
{
	if (svc >= hc->cfg->n_services || b >= hc->cfg->services[svc].n_backends)
		return -1;
	return (int)(hc->svc_first[svc] + b);
}

int qg_health_backend_info(const struct qg_health *hc, unsigned id, struct qg_health_info *out)
{
	const struct hc_backend *be;

	if (!hc || id >= hc->n)
		return -ENOENT;
	be = &hc->be[id];
	memset(out, 0, sizeof(*out));
	out->svc = be->svc;
	out->b = be->b;
	out->state = be->state;
	out->circuit = be->br.state;
	out->up = be->up;
	out->probed = probed(be);
	out->probes = be->probes;
	out->failures = be->failures;
	out->next_ms = be->next_ms;
	out->recent_failures = (uint32_t)__builtin_popcount(be->window);
	return 0;
}
