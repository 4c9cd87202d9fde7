/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cid_cache.h"
#include "qgate/compiler.h"
#include "qgate/hash.h"

#define WAYS 4

struct cid_entry {
	uint32_t stamp; /* ms; 0 = empty */
	uint32_t slot;
	uint16_t svc;
	uint8_t len;
	uint8_t cid[QG_CID_MAX_LEN];
};

struct qg_cid_cache {
	uint64_t seed;
	uint32_t set_mask;
	struct cid_entry *e; /* sets of WAYS entries */
};

int qg_cid_cache_create(uint32_t capacity, uint64_t seed, struct qg_cid_cache **out)
{
	struct qg_cid_cache *c;
	uint32_t sets = 16;

	while (sets * WAYS < capacity && sets < (1u << 24))
		sets <<= 1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->e = calloc((size_t)sets * WAYS, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return -ENOMEM;
	}
	c->seed = seed;
	c->set_mask = sets - 1;
	*out = c;
	return 0;
}

void qg_cid_cache_destroy(struct qg_cid_cache *c)
{
	if (!c)
		return;
	free(c->e);
	free(c);
}

static inline struct cid_entry *set_of(const struct qg_cid_cache *c, uint16_t svc, const uint8_t *cid,
				       uint8_t len)
{
	uint32_t h = (uint32_t)qg_hash_bytes(cid, len, c->seed ^ ((uint64_t)(svc + 1) << 32));

	return &c->e[(size_t)(h & c->set_mask) * WAYS];
}

static inline int same(const struct cid_entry *e, uint16_t svc, const uint8_t *cid, uint8_t len)
{
	return e->stamp && e->svc == svc && e->len == len && memcmp(e->cid, cid, len) == 0;
}

void qg_cid_cache_put(struct qg_cid_cache *c, const struct qg_cid_note *n, uint32_t now_ms)
{
	struct cid_entry *set, *victim;

	if (n->len == 0 || n->len > QG_CID_MAX_LEN)
		return;
	set = set_of(c, n->svc, n->cid, n->len);
	victim = &set[0];
	for (unsigned w = 0; w < WAYS; w++) {
		if (same(&set[w], n->svc, n->cid, n->len)) {
			victim = &set[w];
			break;
		}
		/* Oldest (wrap-safe) or empty. */
		if (!set[w].stamp || (victim->stamp && (int32_t)(set[w].stamp - victim->stamp) < 0))
			victim = &set[w];
	}
	victim->stamp = now_ms ? now_ms : 1;
	victim->slot = n->slot;
	victim->svc = n->svc;
	victim->len = n->len;
	memcpy(victim->cid, n->cid, n->len);
}

uint32_t qg_cid_cache_get(const struct qg_cid_cache *c, uint16_t svc, const uint8_t *cid, uint8_t len,
			  uint32_t now_ms, uint32_t max_age_ms)
{
	const struct cid_entry *set;

	if (len == 0 || len > QG_CID_MAX_LEN)
		return UINT32_MAX;
	set = set_of(c, svc, cid, len);
	for (unsigned w = 0; w < WAYS; w++)
		if (same(&set[w], svc, cid, len))
			return (uint32_t)(now_ms - set[w].stamp) <= max_age_ms ? set[w].slot : UINT32_MAX;
	return UINT32_MAX;
}
