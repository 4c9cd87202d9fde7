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
