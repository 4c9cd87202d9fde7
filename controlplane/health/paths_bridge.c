/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The path selector's real ops (qgate/paths.h): Bluetooth probe results from
 * the bridge's result ring, choices published to the dataplane's table.
 *
 * The bridge numbers its paths by the configuration it started with; the
 * selector by the running one, which a reload may have reordered. Each
 * bridge path is matched once, at create, to the running configuration by
 * its service's name and the path itself; a path the running configuration
 * no longer lists is ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qgate/bridge.h"
#include "qgate/dataplane.h"
#include "qgate/log.h"
#include "qgate/paths.h"

struct pb_where {
	int svc; /* -1: not in the running configuration */
	unsigned b, path;
};

struct pb_ctx {
	const struct qg_config *cfg;
	struct qg_dataplane *dp;
	struct qg_bridge *bridge;
	unsigned n;
	struct pb_where *where; /* per bridge path */
};

static int same_path(const struct qg_config_path *a, const struct qg_config_path *b)
{
	return a->kind == b->kind && a->psm == b->psm && !memcmp(a->bdaddr, b->bdaddr, sizeof(a->bdaddr));
}

static void pb_locate(struct pb_ctx *c, unsigned idx)
{
	struct qg_bridge_path_info pi;

	c->where[idx].svc = -1;
	if (qg_bridge_get_path_info(c->bridge, idx, &pi))
		return;
	for (uint32_t s = 0; s < c->cfg->n_services; s++) {
		const struct qg_config_service *svc = &c->cfg->services[s];

		if (strcmp(svc->name, pi.service) != 0)
			continue;
		for (uint32_t b = 0; b < svc->n_backends; b++)
			for (uint32_t p = 0; p < svc->backends[b].n_paths; p++)
				if (same_path(&svc->backends[b].paths[p], &pi.key)) {
					c->where[idx].svc = (int)s;
					c->where[idx].b = b;
					c->where[idx].path = p;
					return;
				}
	}
}

static int pb_set_path(void *ctx, unsigned svc, unsigned b, unsigned path)
{
	struct pb_ctx *c = ctx;

	if (svc >= c->cfg->n_services || b >= c->cfg->services[svc].n_backends ||
	    path >= c->cfg->services[svc].backends[b].n_paths)
		return -EINVAL;
	return c->dp ? qg_dataplane_set_backend_path(c->dp, svc, b,
						     &c->cfg->services[svc].backends[b].paths[path])
		     : 0;
}

static void pb_poll(void *ctx, struct qg_paths *pm, uint64_t now_ms)
{
	struct pb_ctx *c = ctx;
	struct qg_bridge_probe_result r;
	uint64_t v;

	/* Reset the doorbell first: a result queued after the pops below rings it again. */
	if (read(qg_bridge_probe_fd(c->bridge), &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing rang, results may still be there (a pass that was cut short). */
	}
	while (qg_bridge_probe_pop(c->bridge, &r) == 0) {
		const struct pb_where *w = r.path < c->n ? &c->where[r.path] : NULL;

		if (!w || w->svc < 0)
			continue;
		QG_LOG_DEBUG("paths: service %s backend %u path %u: probe %s (%u us)",
			     c->cfg->services[w->svc].name, w->b, w->path,
			     qg_bridge_probe_why_name((enum qg_bridge_probe_why)r.why), r.rtt_us);
		qg_paths_bt_result(pm, (unsigned)w->svc, w->b, w->path, r.ok, r.rtt_us, now_ms);
	}
}

static unsigned pb_pollfds(void *ctx, struct pollfd *fds, unsigned max)
{
	struct pb_ctx *c = ctx;

	if (!max)
		return 0;
	fds[0].fd = qg_bridge_probe_fd(c->bridge);
	fds[0].events = POLLIN;
	fds[0].revents = 0;
	return 1;
}

static void pb_destroy(void *ctx)
{
	struct pb_ctx *c = ctx;

	free(c->where);
	free(c);
}

int qg_paths_create_bridge(const struct qg_config *cfg, struct qg_health *hc, struct qg_dataplane *dp,
			   struct qg_bridge *bridge, struct qg_event_bus *bus, uint64_t now_ms,
			   struct qg_paths **out)
{
	static const struct qg_paths_ops ops = {
		.set_path = pb_set_path,
		.poll = pb_poll,
		.pollfds = pb_pollfds,
		.destroy = pb_destroy,
	};
	struct pb_ctx *c;
	int rc;

	if (!cfg || !bridge)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->dp = dp;
	c->bridge = bridge;
	c->n = qg_bridge_path_count(bridge);
	c->where = calloc(c->n ? c->n : 1, sizeof(*c->where));
	if (!c->where) {
		free(c);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c->n; i++)
		pb_locate(c, i);
	rc = qg_paths_create(cfg, hc, &ops, c, bus, now_ms, out);
	if (rc)
		pb_destroy(c);
	return rc;
}
