/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hot reload of services and backends. The new service table keeps every
 * index that still means the same thing: a service keeps its index while its
 * name and listen address stay (its sockets and flows carry on), a backend
 * keeps its slot while its service still lists its address (its flows and
 * counters carry on). New services get sockets opened here, on the control
 * thread, so a bind error fails the reload before anything changes; each
 * worker adopts its socket when it sees the table. The reload returns once
 * every running worker has applied the table, so the caller's "done" means
 * done.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane_internal.h"
#include "qgate/clock.h"
#include "qgate/log.h"

#define RELOAD_ACK_TIMEOUT_MS 2000 /* workers apply a table within one loop: 5 ms asleep at most */

struct reload {
	struct qg_dataplane *dp;
	const struct qg_config *cfg;
	const struct qg_svc_table *old;
	struct qg_svc_map map;
	uint8_t *slot_taken; /* per slot: assigned in this reload */
	uint8_t *idx_taken;  /* per table index: assigned in this reload */
	unsigned added, removed, changed, b_added, b_removed;
	char *msg;
	size_t len, used;
};

static void note(struct reload *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct reload *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->used >= r->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->msg + r->used, r->len - r->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->used += (size_t)n < r->len - r->used ? (size_t)n : r->len - r->used - 1;
}

/* What only a restart changes: say so rather than pretend. */
static void check_restart_only(struct reload *r)
{
	const struct qg_config_dataplane *o = &r->dp->dcfg, *n = &r->cfg->dataplane;

#define RESTART_ONLY(cond, what)                                                            \
	do {                                                                                \
		if (cond)                                                                   \
			note(r, "%s changed: it takes effect at the next restart; ", what); \
	} while (0)
	RESTART_ONLY(o->io != n->io, "dataplane.backend");
	RESTART_ONLY(o->n_cores != n->n_cores || memcmp(o->cores, n->cores, sizeof(o->cores)) != 0,
		     "dataplane.cores");
	RESTART_ONLY(o->flows_per_core != n->flows_per_core, "dataplane.flows_per_core");
	RESTART_ONLY(o->burst != n->burst, "dataplane.burst");
	RESTART_ONLY(o->rx_buffers != n->rx_buffers, "dataplane.rx_buffers");
	RESTART_ONLY(o->max_datagram != n->max_datagram, "dataplane.max_datagram");
	RESTART_ONLY(o->upstream_sockets_per_core != n->upstream_sockets_per_core,
		     "dataplane.upstream_sockets_per_core");
	RESTART_ONLY(o->udp_gso != n->udp_gso, "dataplane.udp_gso");
	RESTART_ONLY(memcmp(&o->dpdk, &n->dpdk, sizeof(o->dpdk)) != 0, "dataplane.dpdk");
#undef RESTART_ONLY
}

/* Settings whose change rebuilds the workers' state of a service (not its backends). */
static int svc_settings_differ(const struct qg_config_service *a, const struct qg_config_service *b)
{
	return a->protocol != b->protocol || a->policy != b->policy || a->hash != b->hash ||
	       a->idle_timeout_ms != b->idle_timeout_ms ||
	       a->max_flows_per_client != b->max_flows_per_client ||
	       a->maglev_table_size != b->maglev_table_size || a->on_backend_down != b->on_backend_down ||
	       a->priority != b->priority || memcmp(&a->quic, &b->quic, sizeof(a->quic)) != 0;
}

/* The live index of a service named name (holes have no name), or UINT32_MAX. */
static uint32_t find_service(const struct qg_svc_table *t, const char *name)
{
	for (uint32_t i = 0; i < t->n_services; i++)
		if (t->svc[i].uid && strcmp(t->svc[i].name, name) == 0)
			return i;
	return UINT32_MAX;
}

/* A free index: a hole (left earlier or by this reload) no kept service holds, or one past the end. */
static int take_index(struct reload *r, uint32_t *out)
{
	for (uint32_t i = 0; i < QG_CONFIG_MAX_SERVICES; i++) {
		if (r->idx_taken[i] || (i < r->map.n_services && r->map.uid[i]))
			continue;
		r->idx_taken[i] = 1;
		*out = i;
		return 0;
	}
	return -ENOSPC;
}

/*
 * A slot for a new backend: one no table has used since its last flow left
 * (slot_member NONE, no active flow on any worker), else a fresh one.
 */
static int take_slot(struct reload *r, uint32_t *out)
{
	struct qg_dataplane *dp = r->dp;
	struct qg_backend_stats sum;

	for (uint32_t k = 0; k < r->old->n_slots; k++) {
		if (r->slot_taken[k] || r->old->slot_member[k] != QG_LB_NONE)
			continue;
		qg_dataplane_slot_sum(dp, k, &sum);
		if (sum.flows_active)
			continue;
		/* Its next backend's counters start at zero (metrics see a new series). */
		dp->slot_base[k] = sum;
		r->slot_taken[k] = 1;
		*out = k;
		return 0;
	}
	if (r->map.n_slots >= dp->slot_cap)
		return -ENOSPC;
	memset(&dp->slot_base[r->map.n_slots], 0, sizeof(dp->slot_base[0]));
	r->slot_taken[r->map.n_slots] = 1;
	*out = r->map.n_slots++;
	return 0;
}

/* Slots of configured service i: kept by address when it already ran at index j. */
static int map_backends(struct reload *r, uint32_t i, uint32_t j)
{
	const struct qg_config_service *c = &r->cfg->services[i];
	const struct qg_svc *o = j != UINT32_MAX ? &r->old->svc[j] : NULL;
	unsigned kept = 0;
	int rc;

	r->map.slot[i] = calloc(c->n_backends + 1, sizeof(uint32_t));
	r->map.up[i] = calloc(c->n_backends + 1, 1);
	if (!r->map.slot[i] || !r->map.up[i])
		return -ENOMEM;
	for (uint32_t b = 0; b < c->n_backends; b++) {
		uint32_t m = QG_LB_NONE;
		struct qg_addr key;

		qg_svc_backend_key(&c->backends[b], &key);
		for (uint32_t k = 0; o && k < o->n_backends && m == QG_LB_NONE; k++)
			if (qg_addr_equal(&o->backends[k].addr, &key) && !r->slot_taken[o->backends[k].slot])
				m = k;
		if (m != QG_LB_NONE) {
			/* Same backend: same slot, flows and counters; health keeps its verdict. */
			r->map.slot[i][b] = o->backends[m].slot;
			r->map.up[i][b] = o->backends[m].up;
			r->slot_taken[o->backends[m].slot] = 1;
			kept++;
			continue;
		}
		rc = take_slot(r, &r->map.slot[i][b]);
		if (rc) {
			note(r,
			     "service %s: no room for backend %u (%u backend slots; restart qgate to add "
			     "more)",
			     c->name, b + 1, r->dp->slot_cap);
			return rc;
		}
		r->map.up[i][b] = 1;
		r->b_added++;
	}
	if (o)
		r->b_removed += o->n_backends - kept;
	return 0;
}

/* Sockets of a new service, one per worker, handed over through dp->handoff. */
static int open_sockets(struct reload *r, uint32_t i, uint32_t idx)
{
	struct qg_dataplane *dp = r->dp;
	const struct qg_config_service *c = &r->cfg->services[i];
	char addr[QG_ADDR_STRLEN];
	int rc;

	if (!dp->ops->svc_socket)
		return 0;
	for (unsigned w = 0; w < dp->n_workers; w++) {
		int *slot = &dp->handoff[(size_t)w * QG_CONFIG_MAX_SERVICES + idx];

		if (*slot >= 0)
			close(*slot);
		*slot = -1;
		rc = dp->ops->svc_socket(&c->listen, slot);
		if (rc) {
			note(r, "service %s: cannot listen on %s: %s", c->name,
			     qg_addr_format(&c->listen, addr, sizeof(addr)), strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void close_handoffs(struct qg_dataplane *dp)
{
	for (size_t k = 0; k < (size_t)QG_CONFIG_MAX_SERVICES * dp->n_workers; k++) {
		if (dp->handoff[k] >= 0)
			close(dp->handoff[k]);
		dp->handoff[k] = -1;
	}
}

/* Decide every index, slot and socket. 0 or -errno with the reason noted. */
static int plan(struct reload *r)
{
	const struct qg_config *cfg = r->cfg;
	struct qg_dataplane *dp = r->dp;
	uint32_t *old_of = calloc(cfg->n_services + 1, sizeof(*old_of));
	int rc = -ENOMEM;

	if (!old_of)
		return rc;
	for (uint32_t i = 0; i < r->old->n_services; i++) {
		r->map.uid[i] = r->old->svc[i].uid;
		r->map.version[i] = r->old->svc[i].version;
	}
	r->map.n_services = r->old->n_services;
	/* First the services that keep their index, so new ones cannot take it. */
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct qg_config_service *c = &cfg->services[i];
		uint32_t j = find_service(r->old, c->name);

		old_of[i] = UINT32_MAX;
		if (j != UINT32_MAX && qg_addr_equal(&r->old->svc[j].listen, &c->listen)) {
			old_of[i] = j;
			r->idx_taken[j] = 1;
			r->map.index[i] = j;
			if (svc_settings_differ(&dp->svc_cfg[j], c)) {
				r->map.version[j]++;
				r->changed++;
			}
		}
	}
	/* What the new file no longer has (or moved to another address) becomes a hole. */
	for (uint32_t j = 0; j < r->old->n_services; j++) {
		if (r->old->svc[j].uid && !r->idx_taken[j]) {
			r->map.uid[j] = 0;
			r->map.version[j] = 0;
			r->removed++;
		}
	}
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		uint32_t idx;

		if (old_of[i] != UINT32_MAX)
			continue;
		rc = take_index(r, &idx);
		if (rc) {
			note(r, "more than %u services", QG_CONFIG_MAX_SERVICES);
			goto out;
		}
		r->map.index[i] = idx;
		r->map.uid[idx] = dp->next_uid++;
		r->map.version[idx] = 1;
		if (idx >= r->map.n_services)
			r->map.n_services = idx + 1;
		r->added++;
		rc = open_sockets(r, i, idx);
		if (rc)
			goto out;
	}
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		rc = map_backends(r, i, old_of[i]);
		if (rc)
			goto out;
	}
	/* A removed service's backends are gone with it. */
	for (uint32_t j = 0; j < r->old->n_services; j++)
		if (r->old->svc[j].uid && !r->idx_taken[j])
			r->b_removed += r->old->svc[j].n_backends;
	rc = 0;
out:
	free(old_of);
	return rc;
}

/* Wait until every running worker applied generation gen. 0 or -ETIMEDOUT. */
static int wait_workers(struct qg_dataplane *dp, uint64_t gen)
{
	if (!dp->running)
		return 0; /* they apply it when they start */
	return qg_dataplane_wait_acks(dp, offsetof(struct qg_worker, applied_gen), gen,
				      RELOAD_ACK_TIMEOUT_MS);
}

static void reload_free(struct reload *r)
{
	for (uint32_t i = 0; r->map.slot && i < r->cfg->n_services; i++) {
		free(r->map.slot[i]);
		free(r->map.up[i]);
	}
	free(r->map.slot);
	free(r->map.up);
	free(r->map.index);
	free(r->map.uid);
	free(r->map.version);
	free(r->slot_taken);
	free(r->idx_taken);
}

int qg_dataplane_reload(struct qg_dataplane *dp, const struct qg_config *cfg, char *msg, size_t len)
{
	struct qg_svc_table *nt = NULL;
	struct reload r;
	unsigned bt_lost;
	uint64_t gen;
	int rc = -ENOMEM;
	char dummy[1];

	memset(&r, 0, sizeof(r));
	r.dp = dp;
	r.cfg = cfg;
	r.msg = msg && len ? msg : dummy;
	r.len = msg && len ? len : sizeof(dummy);
	r.msg[0] = '\0';
	if (cfg->n_services == 0 || cfg->n_services > QG_CONFIG_MAX_SERVICES) {
		note(&r, "a configuration needs 1 to %u services", QG_CONFIG_MAX_SERVICES);
		return -EINVAL;
	}
	pthread_mutex_lock(&dp->ctl_lock);
	r.old = dp->table;
	r.map.index = calloc(cfg->n_services + 1, sizeof(*r.map.index));
	r.map.uid = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*r.map.uid));
	r.map.version = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*r.map.version));
	r.map.slot = calloc(cfg->n_services + 1, sizeof(*r.map.slot));
	r.map.up = calloc(cfg->n_services + 1, sizeof(*r.map.up));
	r.slot_taken = calloc(dp->slot_cap + 1, 1);
	r.idx_taken = calloc(QG_CONFIG_MAX_SERVICES, 1);
	if (!r.map.index || !r.map.uid || !r.map.version || !r.map.slot || !r.map.up || !r.slot_taken ||
	    !r.idx_taken)
		goto err;
	r.map.n_slots = r.old->n_slots;
	rc = plan(&r);
	if (rc)
		goto err;
	rc = qg_svc_table_build_mapped(cfg, r.old->generation + 1, &r.map, &nt);
	if (rc) {
		note(&r, "cannot build the service table: %s", strerror(-rc));
		goto err;
	}
	bt_lost = qg_dataplane_bt_remap(dp, cfg, r.map.index, nt);
	qg_dataplane_bt_carry(dp, cfg, r.map.index, r.old, nt);
	if (bt_lost)
		note(&r,
		     "%u Bluetooth-only backend(s) with a path the bridge does not know: they take effect at "
		     "the next restart; ",
		     bt_lost);
	nt->level = r.old->level;
	nt->draining = r.old->draining;
	gen = nt->generation;
	qg_dataplane_publish(dp, nt);
	for (uint32_t j = 0; j < QG_CONFIG_MAX_SERVICES; j++)
		memset(&dp->svc_cfg[j], 0, sizeof(dp->svc_cfg[j]));
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		dp->cfg_index[i] = r.map.index[i];
		dp->svc_cfg[r.map.index[i]] = cfg->services[i];
		dp->svc_cfg[r.map.index[i]].backends = NULL;
	}
	dp->n_cfg = cfg->n_services;
	for (unsigned w = 0; w < dp->n_workers; w++)
		dp->workers[w].reload_err = 0;
	check_restart_only(&r);
	rc = wait_workers(dp, gen);
	if (rc) {
		note(&r, "a worker did not apply the new table within %u ms", RELOAD_ACK_TIMEOUT_MS);
	} else {
		for (unsigned w = 0; w < dp->n_workers; w++)
			if (dp->workers[w].reload_err)
				note(&r, "worker %u could not serve a new service: %s; ", w,
				     strerror(-dp->workers[w].reload_err));
		if (dp->running)
			close_handoffs(dp); /* none left unless a worker failed to take one */
		rc = 0;
	}
	note(&r, "services: %u added, %u removed, %u changed; backends: %u added, %u removed", r.added,
	     r.removed, r.changed, r.b_added, r.b_removed);
	QG_LOG_INFO("reload: %s", r.msg);
	reload_free(&r);
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
err:
	close_handoffs(dp);
	if (!r.used)
		note(&r, "%s", strerror(-rc));
	QG_LOG_ERR("reload refused: %s", r.msg);
	reload_free(&r);
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}
