/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Path selection of multi-transport backends (qgate/paths.h): one transport
 * scorer per backend with a Bluetooth path, fed by the checker's udp probes
 * (diverted) and the bridge's Bluetooth probes, switching the dataplane and
 * driving the backend's health from the path traffic uses. No I/O here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/log.h"
#include "qgate/paths.h"

struct pm_backend {
	unsigned svc, b, id; /* id: the checker's */
	unsigned n;
	uint8_t cfg_path[QG_TRANSPORT_MAX_PATHS]; /* scored index -> configured path index */
	int udp;				  /* scored index of the udp path, -1 = none */
	unsigned start;				  /* the choice at init: what the dataplane starts with */
	struct qg_transport_sel sel;
	struct qg_paths *pm;
};

struct qg_paths {
	const struct qg_config *cfg;
	struct qg_health *hc;
	struct qg_paths_ops ops;
	void *ctx;
	struct qg_event_bus *bus;
	unsigned n;
	struct pm_backend *be;
	int *by_id; /* checker id -> index in be, -1 = not scored */
	unsigned n_ids;
	uint64_t switches;
};

/* How events and logs name a backend: its udp address, or its first path. */
static void backend_name(const struct qg_config_backend *c, char *buf, size_t size)
{
	if (c->addr.family || !c->n_paths)
		qg_addr_format(&c->addr, buf, size);
	else
		qg_config_path_format(&c->paths[0], buf, size);
}

static void switched(struct pm_backend *e, const struct qg_transport_switch *sw)
{
	struct qg_paths *pm = e->pm;
	const struct qg_config_service *s = &pm->cfg->services[e->svc];
	const struct qg_config_backend *c = &s->backends[e->b];
	char from[64], to[64], name[QG_ADDR_STRLEN + 32];
	struct qg_event ev;
	int rc;

	pm->switches++;
	qg_config_path_format(&c->paths[e->cfg_path[sw->from]], from, sizeof(from));
	qg_config_path_format(&c->paths[e->cfg_path[sw->to]], to, sizeof(to));
	rc = pm->ops.set_path ? pm->ops.set_path(pm->ctx, e->svc, e->b, e->cfg_path[sw->to]) : 0;
	if (rc)
		QG_LOG_WARN("service %s backend %u: cannot switch the dataplane to path %s: %s", s->name,
			    e->b, to, strerror(-rc));
	if (!pm->bus)
		return;
	qg_transport_switch_event(sw, (int)e->svc, (int)e->b, &ev);
	memcpy(ev.service_name, s->name, sizeof(ev.service_name) - 1);
	ev.service_name[sizeof(ev.service_name) - 1] = '\0';
	backend_name(c, name, sizeof(name));
	memcpy(ev.backend_name, name, sizeof(ev.backend_name) - 1);
	ev.backend_name[sizeof(ev.backend_name) - 1] = '\0';
	/* The kinds and the reason first: the paths may not fit in the text, and are in the log's context. */
	qg_event_set_text(&ev, "%s -> %s (%s): %s -> %s", qg_transport_kind_name(sw->from_kind),
			  qg_transport_kind_name(sw->to_kind), qg_transport_reason_name(sw->reason), from,
			  to);
	qg_events_publish(pm->bus, &ev);
}

/* One result of scored path si: the scorer first, then the backend's health when traffic uses si. */
static void record(struct pm_backend *e, unsigned si, int ok, uint32_t rtt_us, uint64_t now_ms,
		   const char *why)
{
	struct qg_transport_switch sw;

	if (qg_transport_record(&e->sel, si, ok, rtt_us, now_ms, &sw) == 1)
		switched(e, &sw);
	if (qg_transport_current(&e->sel) == si)
		qg_health_report(e->pm->hc, e->id, ok, now_ms, why);
}

/* The checker's udp probe of a diverted backend. */
static void on_udp(void *ctx, unsigned id, int ok, uint32_t rtt_us, uint64_t now_ms)
{
	struct pm_backend *e = ctx;

	(void)id;
	if (e->udp >= 0)
		record(e, (unsigned)e->udp, ok, rtt_us, now_ms, ok ? "" : "udp path probe failed");
}

int qg_paths_bt_result(struct qg_paths *pm, unsigned svc, unsigned b, unsigned path, int ok, uint32_t rtt_us,
		       uint64_t now_ms)
{
	int id = pm ? qg_health_backend_id(pm->hc, svc, b) : -1;
	struct pm_backend *e;

	if (id < 0 || (unsigned)id >= pm->n_ids || pm->by_id[id] < 0)
		return -ENOENT;
	e = &pm->be[pm->by_id[id]];
	for (unsigned i = 0; i < e->n; i++) {
		if (e->cfg_path[i] != path || (int)i == e->udp)
			continue;
		record(e, i, ok, rtt_us, now_ms, ok ? "" : "Bluetooth path probe failed");
		return 0;
	}
	return -ENOENT;
}

/* Scored: a service with a probe, a backend with a Bluetooth path. */
static int scored(const struct qg_config_service *s, const struct qg_config_backend *c)
{
	if (s->health.probe == QG_CONFIG_PROBE_NONE)
		return 0;
	for (uint32_t p = 0; p < c->n_paths; p++)
		if (c->paths[p].kind != QG_CONFIG_PATH_UDP)
			return 1;
	return 0;
}

static int entry_init(struct qg_paths *pm, struct pm_backend *e, unsigned svc, unsigned b, uint64_t now_ms)
{
	const struct qg_config_service *s = &pm->cfg->services[svc];
	const struct qg_config_backend *c = &s->backends[b];
	enum qg_transport_kind kinds[QG_TRANSPORT_MAX_PATHS];
	struct qg_transport_cfg tc;
	int rc;

	e->pm = pm;
	e->svc = svc;
	e->b = b;
	e->id = (unsigned)qg_health_backend_id(pm->hc, svc, b);
	e->udp = -1;
	for (uint32_t p = 0; p < c->n_paths && e->n < QG_TRANSPORT_MAX_PATHS; p++) {
		/* The dataplane relays over the first udp path only: a second one is not a choice. */
		if (c->paths[p].kind == QG_CONFIG_PATH_UDP) {
			if (e->udp >= 0)
				continue;
			e->udp = (int)e->n;
		}
		kinds[e->n] = (enum qg_transport_kind)c->paths[p].kind;
		e->cfg_path[e->n++] = (uint8_t)p;
	}
	qg_transport_cfg_default(&tc);
	tc.rise = s->health.rise;
	tc.fall = s->health.fall;
	tc.hold_ms = s->health.path_hold_ms;
	rc = qg_transport_init(&e->sel, &tc, kinds, e->n, now_ms);
	if (rc)
		return rc;
	e->start = qg_transport_current(&e->sel);
	return qg_health_divert(pm->hc, e->id, on_udp, e);
}

int qg_paths_create(const struct qg_config *cfg, struct qg_health *hc, const struct qg_paths_ops *ops,
		    void *ctx, struct qg_event_bus *bus, uint64_t now_ms, struct qg_paths **out)
{
	struct qg_paths *pm;
	unsigned k = 0;
	int rc = -ENOMEM;

	if (!cfg || !hc || !ops || !out)
		return -EINVAL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->cfg = cfg;
	pm->hc = hc;
	pm->ops = *ops;
	pm->ctx = ctx;
	pm->bus = bus;
	pm->n_ids = qg_health_backend_count(hc);
	for (uint32_t s = 0; s < cfg->n_services; s++)
		for (uint32_t b = 0; b < cfg->services[s].n_backends; b++)
			pm->n += (unsigned)scored(&cfg->services[s], &cfg->services[s].backends[b]);
	pm->be = calloc(pm->n ? pm->n : 1, sizeof(*pm->be));
	pm->by_id = malloc(sizeof(*pm->by_id) * (pm->n_ids ? pm->n_ids : 1));
	if (!pm->be || !pm->by_id)
		goto err;
	for (unsigned i = 0; i < pm->n_ids; i++)
		pm->by_id[i] = -1;
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		for (uint32_t b = 0; b < cfg->services[s].n_backends; b++) {
			if (!scored(&cfg->services[s], &cfg->services[s].backends[b]))
				continue;
			rc = entry_init(pm, &pm->be[k], s, b, now_ms);
			if (rc)
				goto err;
			pm->by_id[pm->be[k].id] = (int)k;
			k++;
		}
	}
	*out = pm;
	return 0;
err:
	pm->ops.destroy = NULL; /* ctx stays the caller's until we succeed */
	pm->n = k;
	qg_paths_destroy(pm);
	return rc;
}

static int same_paths(const struct qg_config_backend *a, const struct qg_config_backend *b)
{
	if (a->n_paths != b->n_paths)
		return 0;
	for (uint32_t p = 0; p < a->n_paths; p++) {
		const struct qg_config_path *x = &a->paths[p], *y = &b->paths[p];

		if (x->kind != y->kind || x->psm != y->psm || memcmp(x->bdaddr, y->bdaddr, 6) ||
		    !qg_addr_equal(&x->addr, &y->addr))
			return 0;
	}
	return 1;
}

void qg_paths_adopt(struct qg_paths *pm, const struct qg_paths *old, uint64_t now_ms)
{
	(void)now_ms;
	if (!pm || !old)
		return;
	pm->switches = old->switches;
	for (unsigned i = 0; i < pm->n; i++) {
		struct pm_backend *e = &pm->be[i];
		const struct qg_config_service *s = &pm->cfg->services[e->svc];

		for (unsigned j = 0; j < old->n; j++) {
			const struct pm_backend *o = &old->be[j];
			const struct qg_config_service *os = &old->cfg->services[o->svc];
			struct qg_transport_cfg keep = e->sel.cfg; /* the new file's rise, fall and hold */

			if (strcmp(os->name, s->name) != 0 ||
			    !same_paths(&os->backends[o->b], &s->backends[e->b]))
				continue;
			e->sel = o->sel;
			e->sel.cfg = keep;
			/* The dataplane kept the old table's choice; tell it again in case it did not. */
			if (qg_transport_current(&e->sel) != e->start && pm->ops.set_path)
				pm->ops.set_path(pm->ctx, e->svc, e->b,
						 e->cfg_path[qg_transport_current(&e->sel)]);
			break;
		}
	}
}

void qg_paths_destroy(struct qg_paths *pm)
{
	if (!pm)
		return;
	for (unsigned i = 0; pm->be && i < pm->n; i++)
		qg_health_divert(pm->hc, pm->be[i].id, NULL, NULL);
	if (pm->ops.destroy)
		pm->ops.destroy(pm->ctx);
	free(pm->be);
	free(pm->by_id);
	free(pm);
}

void qg_paths_tick(struct qg_paths *pm, uint64_t now_ms)
{
	struct qg_transport_switch sw;

	if (!pm)
		return;
	if (pm->ops.poll)
		pm->ops.poll(pm->ctx, pm, now_ms);
	/* A hold that runs out between two results is honoured on time. */
	for (unsigned i = 0; i < pm->n; i++)
		if (qg_transport_tick(&pm->be[i].sel, now_ms, &sw) == 1)
			switched(&pm->be[i], &sw);
}

unsigned qg_paths_pollfds(const struct qg_paths *pm, struct pollfd *fds, unsigned max)
{
	return pm && pm->ops.pollfds ? pm->ops.pollfds(pm->ctx, fds, max) : 0;
}

int qg_paths_get_info(const struct qg_paths *pm, unsigned svc, unsigned b, struct qg_paths_info *out)
{
	int id = pm ? qg_health_backend_id(pm->hc, svc, b) : -1;
	const struct pm_backend *e;

	if (id < 0 || (unsigned)id >= pm->n_ids || pm->by_id[id] < 0)
		return -ENOENT;
	e = &pm->be[pm->by_id[id]];
	memset(out, 0, sizeof(*out));
	out->n = e->n;
	out->current = qg_transport_current(&e->sel);
	out->switches = e->sel.switches;
	for (unsigned i = 0; i < e->n; i++) {
		out->path[i].cfg_path = e->cfg_path[i];
		out->path[i].t = e->sel.path[i];
	}
	return 0;
}

uint64_t qg_paths_switches(const struct qg_paths *pm)
{
	return pm ? pm->switches : 0;
}
