/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane and the Bluetooth bridge (qgate/bridge.h): attaching each
 * worker to its ring pair, and keeping the names ring messages use for
 * Bluetooth backend paths right across reloads.
 *
 * The bridge copies its configuration when it starts and numbers services,
 * backends and paths by it for its whole life. The table keeps a service's
 * index across reloads, but a backend's index within its service may move;
 * so the dataplane remembers every Bluetooth path of the starting
 * configuration and, in each new table, names a backend's path by what the
 * bridge calls it. A path the bridge does not know (added by a reload) is
 * not used until a restart: its backend's flows are dropped as no_bridge.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane_internal.h"
#include "qgate/bridge.h"
#include "qgate/log.h"

/* Per-worker buffers for bridge messages in flight (io alloc_tx), beside the receive buffers. */
#define BT_TX_BUFFERS_MIN 64u

int qg_dataplane_bt_wanted(const struct qg_config *cfg)
{
	if (cfg->n_bridges)
		return 1;
	for (uint32_t s = 0; s < cfg->n_services; s++)
		for (uint32_t b = 0; b < cfg->services[s].n_backends; b++)
			for (uint32_t p = 0; p < cfg->services[s].backends[b].n_paths; p++)
				if (cfg->services[s].backends[b].paths[p].kind != QG_CONFIG_PATH_UDP)
					return 1;
	return 0;
}

uint32_t qg_dataplane_bt_tx_buffers(const struct qg_config *cfg)
{
	uint32_t n = cfg->dataplane.burst * 2;

	if (!qg_dataplane_bt_wanted(cfg))
		return 0;
	return n > BT_TX_BUFFERS_MIN ? n : BT_TX_BUFFERS_MIN;
}

int qg_dataplane_bt_init(struct qg_dataplane *dp, const struct qg_config *cfg)
{
	uint32_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t s = 0; s < cfg->n_services; s++) {
			for (uint32_t b = 0; b < cfg->services[s].n_backends; b++) {
				const struct qg_config_backend *c = &cfg->services[s].backends[b];

				for (uint32_t p = 0; p < c->n_paths; p++) {
					struct qg_dp_bt_path *e;

					if (c->paths[p].kind == QG_CONFIG_PATH_UDP)
						continue;
					if (!pass) {
						n++;
						continue;
					}
					e = &dp->bt_paths[dp->n_bt_paths++];
					e->svc = s;
					e->backend = b;
					e->path = (uint8_t)p;
					e->key = c->paths[p];
				}
			}
		}
		if (!pass && n) {
			dp->bt_paths = calloc(n, sizeof(*dp->bt_paths));
			if (!dp->bt_paths)
				return -ENOMEM;
		}
	}
	return 0;
}

static int same_path(const struct qg_config_path *a, const struct qg_config_path *b)
{
	return a->kind == b->kind && a->psm == b->psm && !memcmp(a->bdaddr, b->bdaddr, sizeof(a->bdaddr));
}

unsigned qg_dataplane_bt_remap(const struct qg_dataplane *dp, const struct qg_config *cfg,
			       const uint32_t *index, struct qg_svc_table *t)
{
	unsigned lost = 0;

	for (uint32_t i = 0; i < cfg->n_services; i++) {
		struct qg_svc *s = &t->svc[index[i]];

		for (uint32_t b = 0; b < s->n_backends; b++) {
			struct qg_svc_backend *be = &s->backends[b];
			const struct qg_config_path *want;
			uint32_t k;

			if (be->bt_path == QG_SVC_NO_BT)
				continue;
			want = &cfg->services[i].backends[b].paths[be->bt_path];
			for (k = 0; k < dp->n_bt_paths; k++)
				if (dp->bt_paths[k].svc == index[i] && same_path(&dp->bt_paths[k].key, want))
					break;
			if (k < dp->n_bt_paths) {
				be->bt_backend = dp->bt_paths[k].backend;
				be->bt_path = dp->bt_paths[k].path;
				continue;
			}
			be->bt_path = QG_SVC_NO_BT;
			lost += be->addr.family == AF_BLUETOOTH; /* a backend with a udp path still works */
		}
	}
	return lost;
}

/* The bridge's index (in dp->bt_paths) of path want of table service idx, or n_bt_paths. */
static uint32_t bt_find(const struct qg_dataplane *dp, uint32_t idx, const struct qg_config_path *want)
{
	uint32_t k;

	for (k = 0; k < dp->n_bt_paths; k++)
		if (dp->bt_paths[k].svc == idx && same_path(&dp->bt_paths[k].key, want))
			break;
	return k;
}

int qg_dataplane_set_backend_path(struct qg_dataplane *dp, unsigned svc, unsigned b,
				  const struct qg_config_path *path)
{
	struct qg_svc_table *nt = NULL;
	const struct qg_svc_backend *be;
	uint32_t idx, k = 0;
	int rc = -ENOENT, via_bt;

	if (!dp || !path)
		return -EINVAL;
	via_bt = path->kind != QG_CONFIG_PATH_UDP;
	pthread_mutex_lock(&dp->ctl_lock);
	if (svc >= dp->n_cfg || b >= dp->table->svc[dp->cfg_index[svc]].n_backends)
		goto out;
	idx = dp->cfg_index[svc];
	be = &dp->table->svc[idx].backends[b];
	if (via_bt) {
		k = bt_find(dp, idx, path);
		if (k == dp->n_bt_paths || !dp->bt_rings)
			goto out; /* unknown to the bridge (added by a reload), or no bridge */
		rc = 0;
		if (be->via_bt && be->bt_backend == dp->bt_paths[k].backend &&
		    be->bt_path == dp->bt_paths[k].path)
			goto out;
		rc = qg_svc_table_with_path(dp->table, idx, b, 1, dp->bt_paths[k].backend,
					    dp->bt_paths[k].path, &nt);
	} else {
		rc = -EINVAL;
		if (!qg_addr_equal(&be->addr, &path->addr))
			goto out;
		rc = 0;
		if (!be->via_bt)
			goto out;
		rc = qg_svc_table_with_path(dp->table, idx, b, 0, 0, QG_SVC_NO_BT, &nt);
	}
	if (rc == 0)
		qg_dataplane_publish(dp, nt);
out:
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

void qg_dataplane_bt_carry(const struct qg_dataplane *dp, const struct qg_config *cfg, const uint32_t *index,
			   const struct qg_svc_table *old, struct qg_svc_table *nt)
{
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		struct qg_svc *s = &nt->svc[index[i]];
		const struct qg_svc *o = index[i] < old->n_services ? &old->svc[index[i]] : NULL;

		for (uint32_t b = 0; o && b < s->n_backends; b++) {
			struct qg_svc_backend *be = &s->backends[b];
			uint32_t m = qg_svc_slot_member(old, o, be->slot);
			const struct qg_config_backend *c = &cfg->services[i].backends[b];

			if (m == QG_LB_NONE || !o->backends[m].via_bt || be->addr.family == AF_BLUETOOTH)
				continue;
			/* The same backend ran over a Bluetooth path: keep it while the new file still lists
			 * it. */
			for (uint32_t k = 0; k < dp->n_bt_paths; k++) {
				const struct qg_dp_bt_path *e = &dp->bt_paths[k];

				if (e->svc != index[i] || e->backend != o->backends[m].bt_backend ||
				    e->path != o->backends[m].bt_path)
					continue;
				for (uint32_t p = 0; p < c->n_paths; p++) {
					if (!same_path(&c->paths[p], &e->key))
						continue;
					be->via_bt = 1;
					be->bt_backend = e->backend;
					be->bt_path = e->path;
				}
			}
		}
	}
}

int qg_dataplane_attach_bridge(struct qg_dataplane *dp, struct qg_bridge_rings *rings)
{
	int rc;

	if (!dp || !rings)
		return -EINVAL;
	if (dp->running || dp->bt_rings)
		return -EALREADY;
	if (!dp->ops->alloc_tx) {
		QG_LOG_ERR(
			"the %s backend cannot relay the Bluetooth bridge: use backend io_uring or recvmmsg",
			dp->ops->name);
		return -ENOTSUP;
	}
	if (qg_bridge_ring_workers(rings) != dp->n_workers ||
	    qg_bridge_ring_max_datagram(rings) != dp->dcfg.max_datagram) {
		QG_LOG_ERR("bridge rings for %u workers and %u-byte datagrams, the dataplane has %u and %u",
			   qg_bridge_ring_workers(rings), qg_bridge_ring_max_datagram(rings), dp->n_workers,
			   dp->dcfg.max_datagram);
		return -EINVAL;
	}
	for (unsigned i = 0; i < dp->n_workers; i++) {
		rc = qg_relay_attach_bridge(dp->workers[i].relay, rings, i);
		if (rc)
			return rc;
		dp->workers[i].bridge_fd = qg_bridge_ring_worker_fd(rings, i);
	}
	dp->bt_rings = rings;
	return 0;
}
