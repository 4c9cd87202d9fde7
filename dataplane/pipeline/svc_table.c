/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/log.h"
#include "svc_table.h"

static int svc_build_selection(struct qg_svc *s)
{
	struct qg_lb_member *m;
	int rc;

	/* Selection sees a down backend as drained: Maglev, WRR and least_conn all skip weight 0. */
	for (uint32_t b = 0; b < s->n_backends; b++)
		s->weights[b] = s->backends[b].up ? s->backends[b].weight : 0;
	if (s->policy != QG_CONFIG_POLICY_MAGLEV)
		return 0;
	m = calloc(s->n_backends, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (uint32_t b = 0; b < s->n_backends; b++) {
		m[b].key = s->backends[b].addr;
		m[b].weight = s->weights[b];
	}
	rc = qg_maglev_create(m, s->n_backends, s->maglev_size, &s->maglev);
	free(m);
	if (rc)
		QG_LOG_ERR("service %s: cannot build its Maglev table: %s", s->name, strerror(-rc));
	return rc;
}

void qg_svc_backend_key(const struct qg_config_backend *c, struct qg_addr *out)
{
	*out = c->addr;
	if (out->family)
		return;
	for (uint32_t p = 0; p < c->n_paths; p++) {
		if (c->paths[p].kind != QG_CONFIG_PATH_UDP) {
			qg_addr_bt_path(c->paths[p].bdaddr, c->paths[p].psm, (uint8_t)c->paths[p].kind, out);
			return;
		}
	}
}

/* The backend's first Bluetooth path, as the configuration numbers it. */
static void svc_backend_bt(const struct qg_config_backend *c, uint32_t b, struct qg_svc_backend *out)
{
	out->bt_path = QG_SVC_NO_BT;
	out->bt_backend = b;
	for (uint32_t p = 0; p < c->n_paths && p < QG_SVC_NO_BT; p++) {
		if (c->paths[p].kind != QG_CONFIG_PATH_UDP) {
			out->bt_path = (uint8_t)p;
			return;
		}
	}
}

static int sid_cmp(const void *a, const void *b, void *ctx)
{
	const struct qg_svc *s = ctx;
	const struct qg_svc_backend *x = &s->backends[*(const uint32_t *)a];
	const struct qg_svc_backend *y = &s->backends[*(const uint32_t *)b];

	return memcmp(x->server_id, y->server_id, x->server_id_len);
}

/* QUIC-LB: index the backends by server ID (the config guarantees equal lengths and no duplicates). */
static int svc_build_sid_index(struct qg_svc *s)
{
	if (s->protocol != QG_CONFIG_PROTO_QUIC || s->quic.n_lb == 0 || s->n_backends == 0)
		return 0;
	s->sid_order = malloc(sizeof(*s->sid_order) * s->n_backends);
	if (!s->sid_order)
		return -ENOMEM;
	for (uint32_t b = 0; b < s->n_backends; b++)
		s->sid_order[b] = b;
	qsort_r(s->sid_order, s->n_backends, sizeof(*s->sid_order), sid_cmp, s);
	return 0;
}

uint32_t qg_svc_member_by_server_id(const struct qg_svc *s, const uint8_t *sid, size_t sid_len)
{
	uint32_t lo = 0, hi = s->n_backends;

	if (!s->sid_order || s->n_backends == 0 || sid_len != s->backends[0].server_id_len)
		return QG_LB_NONE;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2, m = s->sid_order[mid];
		int c = memcmp(s->backends[m].server_id, sid, sid_len);

		if (c == 0)
			return m;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return QG_LB_NONE;
}

static int svc_alloc_backends(struct qg_svc *s, uint32_t n)
{
	s->n_backends = n;
	s->backends = calloc(n + 1, sizeof(*s->backends));
	s->weights = calloc(n + 1, sizeof(*s->weights));
	return s->backends && s->weights ? 0 : -ENOMEM;
}

int qg_svc_table_build_mapped(const struct qg_config *cfg, uint64_t generation, const struct qg_svc_map *map,
			      struct qg_svc_table **out)
{
	struct qg_svc_table *t;
	int rc = -ENOMEM;

	if (map->n_services < cfg->n_services || map->n_services > QG_CONFIG_MAX_SERVICES)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->generation = generation;
	t->n_services = map->n_services;
	t->n_slots = map->n_slots;
	t->svc = calloc(map->n_services ? map->n_services : 1, sizeof(*t->svc));
	t->slot_member = malloc(sizeof(*t->slot_member) * (map->n_slots ? map->n_slots : 1));
	if (!t->svc || !t->slot_member)
		goto err;
	for (uint32_t k = 0; k < map->n_slots; k++)
		t->slot_member[k] = QG_LB_NONE;
	/* Holes: no backends, no listen address; packets still in flight for them count as no_service. */
	for (uint32_t i = 0; i < map->n_services; i++) {
		t->svc[i].uid = map->uid[i];
		t->svc[i].version = map->version[i];
	}
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct qg_config_service *c = &cfg->services[i];
		struct qg_svc *s;

		rc = -EINVAL;
		if (map->index[i] >= map->n_services)
			goto err;
		s = &t->svc[map->index[i]];
		memcpy(s->name, c->name, sizeof(s->name));
		s->listen = c->listen;
		s->policy = (uint8_t)c->policy;
		s->hash = (uint8_t)c->hash;
		s->idle_timeout_ms = c->idle_timeout_ms;
		s->max_flows_per_client = c->max_flows_per_client;
		s->maglev_size = c->maglev_table_size ? c->maglev_table_size : QG_LB_MAGLEV_DEFAULT_SIZE;
		rc = svc_alloc_backends(s, c->n_backends);
		if (rc)
			goto err;
		s->protocol = (uint8_t)c->protocol;
		s->quic = c->quic;
		s->rehome = c->on_backend_down == QG_CONFIG_ON_DOWN_REHOME;
		s->priority = (uint8_t)c->priority;
		for (uint32_t b = 0; b < c->n_backends; b++) {
			uint32_t slot = map->slot[i][b];

			rc = -EINVAL;
			if (slot >= map->n_slots || t->slot_member[slot] != QG_LB_NONE)
				goto err;
			t->slot_member[slot] = b;
			s->backends[b].slot = slot;
			qg_svc_backend_key(&c->backends[b], &s->backends[b].addr);
			svc_backend_bt(&c->backends[b], b, &s->backends[b]);
			/* A udp path is preferred at start (transport.h's bases): the bridge only without
			 * one. */
			s->backends[b].via_bt = s->backends[b].addr.family == AF_BLUETOOTH;
			s->multipath |= c->backends[b].n_paths > 1;
			s->backends[b].weight = c->backends[b].weight;
			s->backends[b].up = map->up ? map->up[i][b] : 1;
			s->backends[b].server_id_len = c->backends[b].server_id_len;
			memcpy(s->backends[b].server_id, c->backends[b].server_id,
			       sizeof(s->backends[b].server_id));
		}
		rc = svc_build_selection(s);
		if (rc == 0)
			rc = svc_build_sid_index(s);
		if (rc)
			goto err;
	}
	*out = t;
	return 0;
err:
	qg_svc_table_free(t);
	return rc;
}

int qg_svc_table_build(const struct qg_config *cfg, uint64_t generation, struct qg_svc_table **out)
{
	uint32_t n = cfg->n_services, slot = 0;
	struct qg_svc_map map;
	int rc = -ENOMEM;

	memset(&map, 0, sizeof(map));
	map.n_services = n;
	map.index = calloc(n + 1, sizeof(*map.index));
	map.uid = calloc(n + 1, sizeof(*map.uid));
	map.version = calloc(n + 1, sizeof(*map.version));
	map.slot = calloc(n + 1, sizeof(*map.slot));
	if (!map.index || !map.uid || !map.version || !map.slot)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		map.index[i] = i;
		map.uid[i] = i + 1;
		map.version[i] = 1;
		map.slot[i] = calloc(cfg->services[i].n_backends + 1, sizeof(uint32_t));
		if (!map.slot[i])
			goto out;
		for (uint32_t b = 0; b < cfg->services[i].n_backends; b++)
			map.slot[i][b] = slot++;
	}
	map.n_slots = slot;
	rc = qg_svc_table_build_mapped(cfg, generation, &map, out);
out:
	for (uint32_t i = 0; map.slot && i < n; i++)
		free(map.slot[i]);
	free(map.slot);
	free(map.index);
	free(map.uid);
	free(map.version);
	return rc;
}

/* Copy old with backend b of service s changed to *nb (selection rebuilt). */
static int svc_table_with_backend(const struct qg_svc_table *old, unsigned s, unsigned b,
				  const struct qg_svc_backend *nb, struct qg_svc_table **out)
{
	struct qg_svc_table *t;
	int rc = -ENOMEM;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = *old;
	t->generation = old->generation + 1;
	t->svc = calloc(old->n_services ? old->n_services : 1, sizeof(*t->svc));
	t->slot_member = malloc(sizeof(*t->slot_member) * (old->n_slots ? old->n_slots : 1));
	if (!t->svc || !t->slot_member)
		goto err;
	memcpy(t->slot_member, old->slot_member, sizeof(*t->slot_member) * old->n_slots);
	for (uint32_t i = 0; i < old->n_services; i++) {
		struct qg_svc *n = &t->svc[i];

		*n = old->svc[i];
		n->maglev = NULL;
		n->backends = NULL;
		n->weights = NULL;
		n->sid_order = NULL;
		if (n->uid == 0)
			continue; /* a hole */
		rc = svc_alloc_backends(n, old->svc[i].n_backends);
		if (rc)
			goto err;
		memcpy(n->backends, old->svc[i].backends, n->n_backends * sizeof(*n->backends));
		if (i == s)
			n->backends[b] = *nb;
		rc = svc_build_selection(n);
		if (rc == 0)
			rc = svc_build_sid_index(n);
		if (rc)
			goto err;
	}
	*out = t;
	return 0;
err:
	qg_svc_table_free(t);
	return rc;
}

int qg_svc_table_with_weight(const struct qg_svc_table *old, unsigned s, unsigned b, uint32_t w,
			     struct qg_svc_table **out)
{
	struct qg_svc_backend nb;

	if (s >= old->n_services || b >= old->svc[s].n_backends || w > QG_CONFIG_MAX_WEIGHT)
		return -EINVAL;
	nb = old->svc[s].backends[b];
	nb.weight = w;
	return svc_table_with_backend(old, s, b, &nb, out);
}

int qg_svc_table_with_state(const struct qg_svc_table *old, unsigned s, unsigned b, int up,
			    struct qg_svc_table **out)
{
	struct qg_svc_backend nb;

	if (s >= old->n_services || b >= old->svc[s].n_backends)
		return -EINVAL;
	nb = old->svc[s].backends[b];
	nb.up = up ? 1 : 0;
	return svc_table_with_backend(old, s, b, &nb, out);
}

int qg_svc_table_with_path(const struct qg_svc_table *old, unsigned s, unsigned b, int via_bt,
			   uint32_t bt_backend, uint8_t bt_path, struct qg_svc_table **out)
{
	struct qg_svc_backend nb;

	if (s >= old->n_services || b >= old->svc[s].n_backends || (via_bt && bt_path == QG_SVC_NO_BT))
		return -EINVAL;
	nb = old->svc[s].backends[b];
	nb.via_bt = via_bt ? 1 : 0;
	if (via_bt) {
		nb.bt_backend = bt_backend;
		nb.bt_path = bt_path;
	}
	return svc_table_with_backend(old, s, b, &nb, out);
}

int qg_svc_table_with_draining(const struct qg_svc_table *old, struct qg_svc_table **out)
{
	/* No backend matches UINT32_MAX: an unchanged copy, then the flag. */
	int rc = svc_table_with_backend(old, UINT32_MAX, 0, NULL, out);

	if (rc == 0)
		(*out)->draining = 1;
	return rc;
}

int qg_svc_table_with_level(const struct qg_svc_table *old, unsigned level, struct qg_svc_table **out)
{
	int rc = svc_table_with_backend(old, UINT32_MAX, 0, NULL, out);

	if (rc == 0)
		(*out)->level = (uint8_t)level;
	return rc;
}

void qg_svc_table_free(struct qg_svc_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; t->svc && i < t->n_services; i++) {
		qg_maglev_destroy(t->svc[i].maglev);
		free(t->svc[i].backends);
		free(t->svc[i].weights);
		free(t->svc[i].sid_order);
	}
	free(t->svc);
	free(t->slot_member);
	free(t);
}
