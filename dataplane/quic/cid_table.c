/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cid_table.h"
#include "qgate/compiler.h"
#include "qgate/hash.h"

struct cid_entry {
	uint8_t cid[QG_CID_MAX_LEN];
	uint8_t len; /* 0: free */
	uint8_t pad;
	uint16_t svc;
	uint32_t flow;
	uint32_t hash;
	uint32_t hnext; /* hash chain; free list when free */
	uint32_t fnext; /* next (older) CID of the same flow */
};

struct qg_cid_table {
	struct cid_entry *e;
	uint32_t *buckets;
	uint32_t *flow_head; /* per flow: newest CID */
	uint8_t *flow_n;     /* per flow: CIDs held */
	uint32_t mask;
	uint32_t capacity;
	uint32_t n_flows;
	uint32_t count;
	uint32_t free_head;
	uint64_t seed;
};

static inline uint32_t cid_hash(const struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len)
{
	return (uint32_t)qg_hash_bytes(cid, len, t->seed ^ ((uint64_t)svc << 48));
}

int qg_cid_table_create(uint32_t capacity, uint32_t n_flows, uint64_t seed, struct qg_cid_table **out)
{
	struct qg_cid_table *t;
	uint32_t nb = 1;

	if (capacity == 0 || n_flows == 0 || capacity > (1u << 30))
		return -EINVAL;
	while (nb < capacity)
		nb <<= 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->e = calloc(capacity, sizeof(*t->e));
	t->buckets = malloc(sizeof(*t->buckets) * nb);
	t->flow_head = malloc(sizeof(*t->flow_head) * n_flows);
	t->flow_n = calloc(n_flows, 1);
	if (!t->e || !t->buckets || !t->flow_head || !t->flow_n) {
		qg_cid_table_destroy(t);
		return -ENOMEM;
	}
	memset(t->buckets, 0xff, sizeof(*t->buckets) * nb);
	memset(t->flow_head, 0xff, sizeof(*t->flow_head) * n_flows);
	for (uint32_t i = 0; i < capacity; i++)
		t->e[i].hnext = i + 1 < capacity ? i + 1 : QG_CID_NONE;
	t->free_head = 0;
	t->mask = nb - 1;
	t->capacity = capacity;
	t->n_flows = n_flows;
	t->seed = seed;
	*out = t;
	return 0;
}

void qg_cid_table_destroy(struct qg_cid_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->buckets);
	free(t->flow_head);
	free(t->flow_n);
	free(t);
}

static uint32_t find(const struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len, uint32_t h)
{
	for (uint32_t i = t->buckets[h & t->mask]; i != QG_CID_NONE; i = t->e[i].hnext) {
		const struct cid_entry *e = &t->e[i];

		if (e->hash == h && e->len == len && e->svc == svc && memcmp(e->cid, cid, len) == 0)
			return i;
	}
	return QG_CID_NONE;
}

/* Unlink entry i from its hash chain and its flow's list, and free it. */
static void entry_free(struct qg_cid_table *t, uint32_t i)
{
	struct cid_entry *e = &t->e[i];
	uint32_t *pp = &t->buckets[e->hash & t->mask];

	while (*pp != i)
		pp = &t->e[*pp].hnext;
	*pp = e->hnext;
	pp = &t->flow_head[e->flow];
	while (*pp != i)
		pp = &t->e[*pp].fnext;
	*pp = e->fnext;
	t->flow_n[e->flow]--;
	e->len = 0;
	e->hnext = t->free_head;
	t->free_head = i;
	t->count--;
}

int qg_cid_learn(struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len, uint32_t flow)
{
	uint32_t h, i;
	struct cid_entry *e;

	if (unlikely(len == 0 || len > QG_CID_MAX_LEN || flow >= t->n_flows))
		return -EINVAL;
	h = cid_hash(t, svc, cid, len);
	i = find(t, svc, cid, len, h);
	if (i != QG_CID_NONE) {
		if (t->e[i].flow == flow)
			return 0;
		entry_free(t, i); /* the CID now names another connection's flow */
	}
	if (t->flow_n[flow] >= QG_CID_PER_FLOW) {
		/* Drop the flow's oldest CID: the tail of its newest-first list. */
		uint32_t j = t->flow_head[flow];

		while (t->e[j].fnext != QG_CID_NONE)
			j = t->e[j].fnext;
		entry_free(t, j);
	}
	if (t->free_head == QG_CID_NONE)
		return -ENOSPC;
	i = t->free_head;
	e = &t->e[i];
	t->free_head = e->hnext;
	memcpy(e->cid, cid, len);
	e->len = len;
	e->svc = svc;
	e->flow = flow;
	e->hash = h;
	e->hnext = t->buckets[h & t->mask];
	t->buckets[h & t->mask] = i;
	e->fnext = t->flow_head[flow];
	t->flow_head[flow] = i;
	t->flow_n[flow]++;
	t->count++;
	return 0;
}

uint32_t qg_cid_lookup(const struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len)
{
	uint32_t i;

	if (unlikely(len == 0 || len > QG_CID_MAX_LEN))
		return QG_CID_NONE;
	i = find(t, svc, cid, len, cid_hash(t, svc, cid, len));
	return i == QG_CID_NONE ? QG_CID_NONE : t->e[i].flow;
}

void qg_cid_forget_flow(struct qg_cid_table *t, uint32_t flow)
{
	if (flow >= t->n_flows)
		return;
	while (t->flow_head[flow] != QG_CID_NONE)
		entry_free(t, t->flow_head[flow]);
}

uint32_t qg_cid_count(const struct qg_cid_table *t)
{
	return t->count;
}
