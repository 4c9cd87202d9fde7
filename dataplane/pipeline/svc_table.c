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

	for (uint32_t b = 0; b < s->n_backends; b++)
		s->weights[b] = s->backends[b].weight;
	if (s->policy != QG_CONFIG_POLICY_MAGLEV)
		return 0;
	m = calloc(s->n_backends, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (uint32_t b = 0; b < s->n_backends; b++) {
		m[b].key = s->backends[b].addr;
		m[b].weight = s->backends[b].weight;
	}
	rc = qg_maglev_create(m, s->n_backends, s->maglev_size, &s->maglev);
	free(m);
	if (rc)
		QG_LOG_ERR("service %s: cannot build its Maglev table: %s", s->name, strerror(-rc));
	return rc;
}

static int svc_alloc_backends(struct qg_svc *s, uint32_t n)
{
	s->n_backends = n;
	s->backends = calloc(n, sizeof(*s->backends));
	s->weights = calloc(n, sizeof(*s->weights));
	return s->backends && s->weights ? 0 : -ENOMEM;
}

int qg_svc_table_build(const struct qg_config *cfg, uint64_t generation, struct qg_svc_table **out)
{
	struct qg_svc_table *t;
	uint32_t slot = 0;
	int rc = -ENOMEM;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->generation = generation;
	t->n_services = cfg->n_services;
	t->svc = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*t->svc));
	if (!t->svc)
		goto err;
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct qg_config_service *c = &cfg->services[i];
		struct qg_svc *s = &t->svc[i];

		memcpy(s->name, c->name, sizeof(s->name));
		s->listen = c->listen;
		s->policy = (uint8_t)c->policy;
		s->hash = (uint8_t)c->hash;
		s->idle_timeout_ms = c->idle_timeout_ms;
		s->max_flows_per_client = c->max_flows_per_client;
		s->maglev_size = c->maglev_table_size ? c->maglev_table_size : QG_LB_MAGLEV_DEFAULT_SIZE;
		s->slot_base = slot;
		rc = svc_alloc_backends(s, c->n_backends);
		if (rc)
			goto err;
		for (uint32_t b = 0; b < c->n_backends; b++) {
			s->backends[b].addr = c->backends[b].addr;
			s->backends[b].weight = c->backends[b].weight;
		}
		slot += c->n_backends;
		rc = svc_build_selection(s);
		if (rc)
			goto err;
	}
	t->n_slots = slot;
	*out = t;
	return 0;
err:
	qg_svc_table_free(t);
	return rc;
}

int qg_svc_table_with_weight(const struct qg_svc_table *old, unsigned s, unsigned b, uint32_t w,
			     struct qg_svc_table **out)
{
	struct qg_svc_table *t;
	int rc = -ENOMEM;

	if (s >= old->n_services || b >= old->svc[s].n_backends || w > QG_CONFIG_MAX_WEIGHT)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = *old;
	t->generation = old->generation + 1;
	t->svc = calloc(old->n_services, sizeof(*t->svc));
	if (!t->svc)
		goto err;
	for (uint32_t i = 0; i < old->n_services; i++) {
		struct qg_svc *n = &t->svc[i];

		*n = old->svc[i];
		n->maglev = NULL;
		n->backends = NULL;
		n->weights = NULL;
		rc = svc_alloc_backends(n, old->svc[i].n_backends);
		if (rc)
			goto err;
		memcpy(n->backends, old->svc[i].backends, n->n_backends * sizeof(*n->backends));
		if (i == s)
			n->backends[b].weight = w;
		rc = svc_build_selection(n);
		if (rc)
			goto err;
	}
	*out = t;
	return 0;
err:
	qg_svc_table_free(t);
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
	}
	free(t->svc);
	free(t);
}
