/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-core flow table (see include/qgate/flow.h for the contract).
 *
 * Layout, all allocated once at creation:
 *  - flows[capacity]: 64-byte entries, cache-line aligned; the entries are
 *    also the hash table. A key's home is the entry its hash maps to
 *    (flow_home()). A new flow takes its home when that entry is free, else
 *    any free entry, and is then chained (hnext) from its home entry's
 *    `chain`, which belongs to the position, not to the flow living there.
 *    A lookup reads the home entry: one cache miss for a flow at home, two
 *    for a displaced one; a separate bucket array would cost two for every
 *    flow. A new flow finds its home free with probability 1 - load, so a
 *    table filled to half holds three in four flows at home, a full one half.
 *    Flows never move (their index names them to the owner), so a flow
 *    displaced from home stays displaced when its home frees up.
 *  - Free entries (svc == FLOW_SVC_FREE) are on a doubly linked free list
 *    through lru_prev/lru_next, so an insert can take its home out of it.
 *  - clients[capacity] + cbuckets[pow2 >= capacity]: per-(svc, client IP)
 *    flow counters for max_flows_per_client. A counter lives only while its
 *    count is > 0 and every counted flow holds one, so capacity counters are
 *    always enough.
 *  - svcs[n_services]: per-service LRU list (head = least recent) and limits.
 *
 * The table is owned by one worker thread: nothing here is locked or atomic.
 *
 * Removal callback: it runs after the flow is unlinked from every list and
 * before its entry returns to the free list, so it may read the flow (all
 * fields keep their values) but it must not call any qg_flow_* function on
 * the same table (the table is mid-update).
 *
 * Clock: now_ms is a wrapping 32-bit millisecond clock and must not go
 * backwards between calls on one table; idleness is (uint32_t)(now - last),
 * which stays correct across the wrap as long as idle periods are < 2^32 ms.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/addr.h"
#include "qgate/compiler.h"
#include "qgate/flow.h"
#include "qgate/hash.h"
#include "qgate/mem.h"

_Static_assert(sizeof(struct qg_flow) == QG_CACHE_LINE, "struct qg_flow must be one cache line");
_Static_assert(sizeof(struct qg_addr) == 20, "struct qg_addr layout changed");

/* svc value marking an entry on the free list (so n_services <= 0xffff). */
#define FLOW_SVC_FREE UINT16_MAX
/* Largest capacity: keeps the power-of-two bucket count within uint32_t. */
#define FLOW_MAX_CAPACITY (UINT32_C(1) << 31)

/* Golden-ratio multiplier, used to fold the service index into the seed. */
#define FLOW_SEED_MUL 0x9e3779b97f4a7c15ULL

/* Counter of the flows one client IP holds in one service. 32 bytes. */
struct qg_flow_client {
	uint8_t ip[16];
	uint16_t svc;
	uint8_t family;
	uint8_t pad;
	uint32_t count;
	uint32_t next; /* hash chain, or free list when count == 0 */
	uint32_t hash;
};

_Static_assert(sizeof(struct qg_flow_client) == 32, "client counter should stay 32 bytes");

struct qg_flow_svc {
	uint32_t head; /* least recently used */
	uint32_t tail; /* most recently used */
	uint32_t idle_timeout_ms;
	uint32_t max_per_client; /* 0 = unlimited */
	uint32_t grain_shift;	 /* LRU grain: 1 << grain_shift ms (0: exact) */
};

struct qg_flow_table {
	struct qg_flow *flows;
	struct qg_flow_client *clients;
	uint32_t *cbuckets;
	uint64_t seed;
	uint64_t cseed; /* separate seed so client and flow chains do not correlate */
	uint32_t cbucket_mask;
	uint32_t capacity;
	uint32_t count;
	uint32_t free_head; /* doubly linked through lru_prev/lru_next */
	uint32_t cfree_head;
	uint32_t n_services;
	uint32_t expire_next;  /* service qg_flow_expire starts with next time */
	uint32_t lru_grain_ms; /* upper bound of every service's grain */
	qg_flow_remove_cb on_remove;
	void *cb_ctx;
	struct qg_flow_svc svcs[];
};

static inline uint32_t flow_hash(const struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client)
{
	/* Folding svc into the seed hashes the 24-byte key without copying it. */
	return (uint32_t)qg_hash_addr_fast(client, t->seed ^ ((uint64_t)(svc + 1) * FLOW_SEED_MUL));
}

static inline uint32_t client_hash(const struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client)
{
	return (uint32_t)qg_hash_ip(client, t->cseed ^ ((uint64_t)(svc + 1) * FLOW_SEED_MUL));
}

/* The entry a hash names. Multiply-shift maps it onto [0, capacity) evenly
 * without a division, for any capacity. */
static inline uint32_t flow_home(const struct qg_flow_table *t, uint32_t h)
{
	return (uint32_t)(((uint64_t)h * t->capacity) >> 32);
}

/*
 * a when x is 0, else b, as data rather than a branch: whether a flow sits at
 * its home is random per packet (a quarter of them are displaced in a
 * half-full table), so a branch would mispredict that often. GCC turns a
 * ternary here into branches whatever it is told of the odds, and masks cost
 * six instructions on the lookup's critical path; x86 has a conditional move.
 */
static inline uint32_t select_if_zero(uint32_t x, uint32_t a, uint32_t b)
{
#if defined(__x86_64__)
	__asm__("test %1, %1\n\tcmovz %2, %0" : "+r"(b) : "r"(x), "r"(a) : "cc");
	return b;
#else
	uint32_t m = -(uint32_t)(x == 0);

	return (a & m) | (b & ~m);
#endif
}

static inline int flow_is_live(const struct qg_flow_table *t, uint32_t idx)
{
	return idx < t->capacity && t->flows[idx].svc != FLOW_SVC_FREE;
}

static inline int flow_idle_expired(const struct qg_flow *f, uint32_t timeout, uint32_t now_ms)
{
	return (uint32_t)(now_ms - f->last_seen) > timeout;
}

/* ---- LRU (per service, head = oldest) ---- */

static inline void lru_unlink(struct qg_flow_table *t, struct qg_flow *f)
{
	struct qg_flow_svc *s = &t->svcs[f->svc];

	if (f->lru_prev != QG_FLOW_NONE)
		t->flows[f->lru_prev].lru_next = f->lru_next;
	else
		s->head = f->lru_next;
	if (f->lru_next != QG_FLOW_NONE)
		t->flows[f->lru_next].lru_prev = f->lru_prev;
	else
		s->tail = f->lru_prev;
}

static inline void lru_append(struct qg_flow_table *t, uint32_t idx, struct qg_flow *f)
{
	struct qg_flow_svc *s = &t->svcs[f->svc];

	f->lru_next = QG_FLOW_NONE;
	f->lru_prev = s->tail;
	if (s->tail != QG_FLOW_NONE)
		t->flows[s->tail].lru_next = idx;
	else
		s->head = idx;
	s->tail = idx;
}

/*
 * Mark a flow used at now_ms. Relinks only when now_ms entered another grain
 * than last_seen's: the list stays ordered by last_seen's grain (every append
 * is at the current one), and a flow seen again within its grain costs a
 * store to its own entry.
 */
static inline void flow_refresh(struct qg_flow_table *t, uint32_t idx, struct qg_flow *f, uint32_t now_ms)
{
	uint32_t moved = (f->last_seen ^ now_ms) >> t->svcs[f->svc].grain_shift;

	f->last_seen = now_ms;
	if (moved && f->lru_next != QG_FLOW_NONE) {
		lru_unlink(t, f);
		lru_append(t, idx, f);
	}
}

/* ---- free list (doubly linked: an insert takes its home entry out of it) ---- */

static inline void free_push(struct qg_flow_table *t, uint32_t idx, struct qg_flow *f)
{
	f->lru_prev = QG_FLOW_NONE;
	f->lru_next = t->free_head;
	if (t->free_head != QG_FLOW_NONE)
		t->flows[t->free_head].lru_prev = idx;
	t->free_head = idx;
}

static inline void free_take(struct qg_flow_table *t, struct qg_flow *f)
{
	if (f->lru_prev != QG_FLOW_NONE)
		t->flows[f->lru_prev].lru_next = f->lru_next;
	else
		t->free_head = f->lru_next;
	if (f->lru_next != QG_FLOW_NONE)
		t->flows[f->lru_next].lru_prev = f->lru_prev;
}

/* ---- hash chains: a flow at its home is on none; a displaced one is on its home's ---- */

static void hash_unlink(struct qg_flow_table *t, uint32_t idx, const struct qg_flow *f)
{
	uint32_t home = flow_home(t, f->hash);
	uint32_t *link;

	if (home == idx)
		return;
	link = &t->flows[home].chain;
	while (*link != idx) {
		assert(*link != QG_FLOW_NONE);
		link = &t->flows[*link].hnext;
	}
	*link = f->hnext;
}

static inline void hash_link(struct qg_flow_table *t, uint32_t idx, struct qg_flow *f)
{
	uint32_t home = flow_home(t, f->hash);

	if (home == idx) {
		f->hnext = QG_FLOW_NONE;
		return;
	}
	f->hnext = t->flows[home].chain;
	t->flows[home].chain = idx;
}

static inline int flow_match(const struct qg_flow *f, uint16_t svc, const struct qg_addr *client, uint32_t h)
{
	return likely(f->hash == h) && likely(f->svc == svc) && likely(qg_addr_equal(&f->client, client));
}

static inline uint32_t hash_find(const struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client,
				 uint32_t h)
{
	uint32_t home = flow_home(t, h);
	const struct qg_flow *hf = &t->flows[home];
	/* Start at home when it holds a live flow with this hash (then it is at
	 * its home and on no chain), else at the chain of displaced flows. Chosen
	 * without a branch, a hit runs the loop once either way, so mixing home
	 * and displaced flows costs no mispredictions. */
	uint32_t first = select_if_zero((hf->hash ^ h) | (uint32_t)(hf->svc ^ svc), home, hf->chain);
	uint32_t i = first;

	while (i != QG_FLOW_NONE) {
		const struct qg_flow *f = &t->flows[i];

		if (flow_match(f, svc, client, h))
			return i;
		i = f->hnext;
	}
	/* A different key with the same 32-bit hash at home: the chain may still hold ours. */
	if (unlikely(first == home))
		for (i = hf->chain; i != QG_FLOW_NONE; i = t->flows[i].hnext)
			if (flow_match(&t->flows[i], svc, client, h))
				return i;
	return QG_FLOW_NONE;
}

/* ---- per-client counters ---- */

static inline int client_match(const struct qg_flow_client *c, uint32_t h, uint16_t svc,
			       const struct qg_addr *a)
{
	return c->hash == h && c->svc == svc && c->family == a->family && memcmp(c->ip, a->ip, 16) == 0;
}

static uint32_t client_find(const struct qg_flow_table *t, uint16_t svc, const struct qg_addr *a, uint32_t h)
{
	uint32_t i = t->cbuckets[h & t->cbucket_mask];

	while (i != QG_FLOW_NONE) {
		const struct qg_flow_client *c = &t->clients[i];

		if (client_match(c, h, svc, a))
			return i;
		i = c->next;
	}
	return QG_FLOW_NONE;
}

/* Count one more flow for (svc, a->ip). Never fails: live counters never
 * outnumber live counted flows, and the caller holds a free flow entry. */
static uint32_t client_get(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *a, uint32_t h)
{
	uint32_t i = client_find(t, svc, a, h);
	struct qg_flow_client *c;
	uint32_t *b;

	if (i != QG_FLOW_NONE) {
		t->clients[i].count++;
		return i;
	}
	i = t->cfree_head;
	assert(i != QG_FLOW_NONE);
	c = &t->clients[i];
	t->cfree_head = c->next;
	memcpy(c->ip, a->ip, sizeof(c->ip));
	c->svc = svc;
	c->family = a->family;
	c->pad = 0;
	c->count = 1;
	c->hash = h;
	b = &t->cbuckets[h & t->cbucket_mask];
	c->next = *b;
	*b = i;
	return i;
}

static void client_put(struct qg_flow_table *t, uint32_t i)
{
	struct qg_flow_client *c = &t->clients[i];
	uint32_t *link;

	if (--c->count)
		return;
	link = &t->cbuckets[c->hash & t->cbucket_mask];
	while (*link != i) {
		assert(*link != QG_FLOW_NONE);
		link = &t->clients[*link].next;
	}
	*link = c->next;
	c->next = t->cfree_head;
	t->cfree_head = i;
}

/* ---- removal ---- */

static void flow_release(struct qg_flow_table *t, uint32_t idx, enum qg_flow_reason why)
{
	struct qg_flow *f = &t->flows[idx];

	hash_unlink(t, idx, f);
	lru_unlink(t, f);
	if (f->client_slot != QG_FLOW_NONE)
		client_put(t, f->client_slot);
	t->count--;
	/* The entry is intact and off every list: the callback sees a consistent
	 * flow and cannot find it again through the table. */
	if (t->on_remove)
		t->on_remove(t->cb_ctx, idx, f, why);
	f->svc = FLOW_SVC_FREE;
	free_push(t, idx, f);
}

/* ---- public API ---- */

static size_t table_bytes(uint32_t n_services)
{
	return sizeof(struct qg_flow_table) + (size_t)n_services * sizeof(struct qg_flow_svc);
}

static size_t flows_bytes(const struct qg_flow_table *t)
{
	return (size_t)t->capacity * sizeof(struct qg_flow);
}

static size_t clients_bytes(const struct qg_flow_table *t)
{
	return (size_t)t->capacity * sizeof(struct qg_flow_client);
}

static size_t cbuckets_bytes(const struct qg_flow_table *t)
{
	return ((size_t)t->cbucket_mask + 1) * sizeof(uint32_t);
}

/* log2 of the grain: the largest power of two <= min(bound, timeout / 16), 0 for exact. */
static uint32_t grain_shift_of(uint32_t bound_ms, uint32_t idle_timeout_ms)
{
	uint32_t g = idle_timeout_ms / 16, shift = 0;

	if (g > bound_ms)
		g = bound_ms;
	while (shift < 31 && (UINT32_C(2) << shift) <= g)
		shift++;
	return shift;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int qg_flow_table_create(const struct qg_flow_table_params *p, struct qg_flow_table **out)
{
	struct qg_flow_table *t;
	uint32_t nb, i;

	if (!p || !out || p->capacity == 0 || p->capacity > FLOW_MAX_CAPACITY || p->n_services == 0 ||
	    p->n_services > FLOW_SVC_FREE || !p->idle_timeout_ms)
		return -EINVAL;

	t = qg_mem_alloc(table_bytes(p->n_services));
	if (!t)
		return -ENOMEM;
	nb = pow2_at_least(p->capacity);
	/* Sizes first: destroy frees by them. */
	t->n_services = p->n_services;
	t->capacity = p->capacity;
	t->cbucket_mask = nb - 1;
	/* Huge pages: at a million flows these are read at random once per packet (see qgate/mem.h). */
	t->flows = qg_mem_alloc(flows_bytes(t));
	t->clients = qg_mem_alloc(clients_bytes(t));
	t->cbuckets = qg_mem_alloc(cbuckets_bytes(t));
	if (!t->flows || !t->clients || !t->cbuckets)
		goto err;

	t->seed = p->seed;
	t->lru_grain_ms = p->lru_grain_ms;
	t->cseed = qg_hash_mix64(p->seed ^ 0x5bd1e9955bd1e995ULL);
	t->on_remove = p->on_remove;
	t->cb_ctx = p->cb_ctx;

	/* qg_mem_alloc zeroed the entries and faulted every page in. */
	memset(t->cbuckets, 0xff, cbuckets_bytes(t));
	for (i = 0; i < p->capacity; i++) {
		struct qg_flow *f = &t->flows[i];

		f->svc = FLOW_SVC_FREE;
		f->hnext = QG_FLOW_NONE;
		f->chain = QG_FLOW_NONE;
		f->lru_prev = i ? i - 1 : QG_FLOW_NONE;
		f->lru_next = i + 1 < p->capacity ? i + 1 : QG_FLOW_NONE;
		t->clients[i].next = i + 1 < p->capacity ? i + 1 : QG_FLOW_NONE;
	}
	t->free_head = 0;
	t->cfree_head = 0;
	for (i = 0; i < p->n_services; i++) {
		t->svcs[i].head = QG_FLOW_NONE;
		t->svcs[i].tail = QG_FLOW_NONE;
		t->svcs[i].idle_timeout_ms = p->idle_timeout_ms[i];
		t->svcs[i].max_per_client = p->max_flows_per_client ? p->max_flows_per_client[i] : 0;
		t->svcs[i].grain_shift = grain_shift_of(p->lru_grain_ms, p->idle_timeout_ms[i]);
	}
	*out = t;
	return 0;

err:
	qg_flow_table_destroy(t);
	return -ENOMEM;
}

void qg_flow_table_destroy(struct qg_flow_table *t)
{
	if (!t)
		return;
	qg_mem_free(t->flows, flows_bytes(t));
	qg_mem_free(t->clients, clients_bytes(t));
	qg_mem_free(t->cbuckets, cbuckets_bytes(t));
	qg_mem_free(t, table_bytes(t->n_services));
}

int qg_flow_table_memory(const struct qg_flow_table *t, size_t *bytes, size_t *huge_bytes)
{
	const void *base[3] = { t->flows, t->clients, t->cbuckets };
	size_t len[3] = { flows_bytes(t), clients_bytes(t), cbuckets_bytes(t) };
	size_t total = 0, huge = 0;

	for (unsigned i = 0; i < 3; i++) {
		long h = qg_mem_huge_bytes(base[i], len[i]);

		if (h < 0)
			return (int)h;
		/* A neighbouring mapping merged with ours may count too: never more than the array. */
		huge += (size_t)h < len[i] ? (size_t)h : len[i];
		total += len[i];
	}
	*bytes = total;
	*huge_bytes = huge;
	return 0;
}

uint32_t qg_flow_prefetch(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client)
{
	uint32_t h = flow_hash(t, svc, client);

	qg_prefetch(&t->flows[flow_home(t, h)]);
	return h;
}

void qg_flow_prefetch_entry(struct qg_flow_table *t, uint32_t hash)
{
	uint32_t home = flow_home(t, hash);
	const struct qg_flow *f = &t->flows[home];
	/* A displaced flow's entry; otherwise (this hash at home, or no chain: ~NONE is 0) home
	 * again, an L1 hit cheaper than a branch. */
	uint32_t i = select_if_zero(~f->chain, home, select_if_zero(f->hash ^ hash, home, f->chain));

	qg_prefetch(&t->flows[i]);
}

uint32_t qg_flow_lookup(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client, uint32_t now_ms)
{
	return qg_flow_lookup_hashed(t, svc, client, flow_hash(t, svc, client), now_ms);
}

uint32_t qg_flow_lookup_hashed(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client,
			       uint32_t hash, uint32_t now_ms)
{
	struct qg_flow *f;
	uint32_t idx;

	if (unlikely(svc >= t->n_services))
		return QG_FLOW_NONE;
	idx = hash_find(t, svc, client, hash);
	if (idx == QG_FLOW_NONE)
		return QG_FLOW_NONE;
	f = &t->flows[idx];
	/* The periodic expiry may lag behind: never resurrect an idle flow. */
	if (unlikely(flow_idle_expired(f, t->svcs[svc].idle_timeout_ms, now_ms))) {
		flow_release(t, idx, QG_FLOW_REASON_EXPIRED);
		return QG_FLOW_NONE;
	}
	flow_refresh(t, idx, f, now_ms);
	return idx;
}

/* Least recently used flow over all services: the oldest of the list heads. */
static uint32_t flow_oldest(const struct qg_flow_table *t, uint32_t now_ms)
{
	uint32_t best = QG_FLOW_NONE, best_age = 0, s;

	for (s = 0; s < t->n_services; s++) {
		uint32_t h = t->svcs[s].head;
		uint32_t age;

		if (h == QG_FLOW_NONE)
			continue;
		age = now_ms - t->flows[h].last_seen;
		if (best == QG_FLOW_NONE || age > best_age) {
			best = h;
			best_age = age;
		}
	}
	return best;
}

int qg_flow_insert(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client, uint32_t now_ms,
		   uint32_t *idx)
{
	const struct qg_flow_svc *s;
	struct qg_flow *f;
	uint32_t h, ch = 0, i;

	if (unlikely(!t || !client || !idx || svc >= t->n_services))
		return -EINVAL;
	s = &t->svcs[svc];
	h = flow_hash(t, svc, client);
	assert(hash_find(t, svc, client, h) == QG_FLOW_NONE);

	/* Quota before eviction: a refused client must not cost anyone a flow. */
	if (s->max_per_client) {
		ch = client_hash(t, svc, client);
		i = client_find(t, svc, client, ch);
		if (i != QG_FLOW_NONE && t->clients[i].count >= s->max_per_client)
			return -EDQUOT;
	}

	if (unlikely(t->free_head == QG_FLOW_NONE)) {
		uint32_t victim = flow_oldest(t, now_ms);

		if (victim == QG_FLOW_NONE)
			return -ENOSPC;
		flow_release(t, victim, QG_FLOW_REASON_EVICTED);
	}

	/* Home when free (one miss per lookup from now on), else any free entry. */
	i = flow_home(t, h);
	if (t->flows[i].svc != FLOW_SVC_FREE)
		i = t->free_head;
	f = &t->flows[i];
	free_take(t, f);

	f->client = *client;
	f->svc = svc;
	f->flags = 0;
	f->backend = QG_FLOW_NONE;
	f->upstream = QG_FLOW_NONE;
	f->last_seen = now_ms;
	f->hash = h;
	f->user2 = 0;
	/* Eviction may have just freed this client's counter; get it anew. */
	f->client_slot = s->max_per_client ? client_get(t, svc, client, ch) : QG_FLOW_NONE;
	hash_link(t, i, f);
	lru_append(t, i, f);
	t->count++;
	*idx = i;
	return 0;
}

void qg_flow_remove(struct qg_flow_table *t, uint32_t idx)
{
	if (unlikely(!t || !flow_is_live(t, idx)))
		return;
	flow_release(t, idx, QG_FLOW_REASON_REMOVED);
}

int qg_flow_evict_oldest(struct qg_flow_table *t, uint16_t svc, uint32_t keep)
{
	uint32_t idx;

	if (!t || svc >= t->n_services)
		return -ENOENT;
	idx = t->svcs[svc].head;
	if (idx == keep && idx != QG_FLOW_NONE)
		idx = t->flows[idx].lru_next;
	if (idx == QG_FLOW_NONE)
		return -ENOENT;
	flow_release(t, idx, QG_FLOW_REASON_EVICTED);
	return 0;
}

unsigned qg_flow_remove_backend(struct qg_flow_table *t, uint16_t svc, uint32_t backend)
{
	unsigned n = 0;
	uint32_t idx, next;

	if (!t || svc >= t->n_services)
		return 0;
	/* The service's LRU list holds exactly its flows; read next before the entry is freed. */
	for (idx = t->svcs[svc].head; idx != QG_FLOW_NONE; idx = next) {
		next = t->flows[idx].lru_next;
		if (t->flows[idx].backend == backend) {
			flow_release(t, idx, QG_FLOW_REASON_REMOVED);
			n++;
		}
	}
	return n;
}

unsigned qg_flow_remove_service(struct qg_flow_table *t, uint16_t svc)
{
	unsigned n = 0;

	if (!t || svc >= t->n_services)
		return 0;
	while (t->svcs[svc].head != QG_FLOW_NONE) {
		flow_release(t, t->svcs[svc].head, QG_FLOW_REASON_REMOVED);
		n++;
	}
	return n;
}

void qg_flow_touch(struct qg_flow_table *t, uint32_t idx, uint32_t now_ms)
{
	if (unlikely(!flow_is_live(t, idx)))
		return;
	flow_refresh(t, idx, &t->flows[idx], now_ms);
}

int qg_flow_rekey(struct qg_flow_table *t, uint32_t idx, const struct qg_addr *client)
{
	struct qg_flow *f;
	uint32_t h, other;

	if (!t || !client || !flow_is_live(t, idx))
		return -EINVAL;
	f = &t->flows[idx];
	h = flow_hash(t, f->svc, client);
	other = hash_find(t, f->svc, client, h);
	if (other == idx)
		return 0;
	if (other != QG_FLOW_NONE)
		return -EEXIST;

	/* A migrated flow keeps counting against a client, now the new one. The
	 * limit is not enforced here: refusing a migration would kill a live
	 * connection, and the total number of flows does not grow. */
	if (f->client_slot != QG_FLOW_NONE) {
		const struct qg_flow_client *c = &t->clients[f->client_slot];

		if (c->family != client->family || memcmp(c->ip, client->ip, 16) != 0) {
			/* Release first so the counter pool never needs a spare. */
			client_put(t, f->client_slot);
			f->client_slot = client_get(t, f->svc, client, client_hash(t, f->svc, client));
		}
	}
	hash_unlink(t, idx, f);
	f->client = *client;
	f->hash = h;
	hash_link(t, idx, f);
	return 0;
}

unsigned qg_flow_expire(struct qg_flow_table *t, uint32_t now_ms, unsigned budget)
{
	uint32_t start = t->expire_next, k;
	unsigned done = 0;

	/* Start one service later each call so a service with many idle flows
	 * cannot use up every budget and starve the others. */
	t->expire_next = start + 1 < t->n_services ? start + 1 : 0;
	for (k = 0; k < t->n_services && done < budget; k++) {
		uint32_t s = start + k < t->n_services ? start + k : start + k - t->n_services;
		struct qg_flow_svc *sv = &t->svcs[s];

		/* The list is in last_seen order (to within a grain): stop at the first live flow. */
		while (done < budget && sv->head != QG_FLOW_NONE &&
		       flow_idle_expired(&t->flows[sv->head], sv->idle_timeout_ms, now_ms)) {
			flow_release(t, sv->head, QG_FLOW_REASON_EXPIRED);
			done++;
		}
	}
	return done;
}

void qg_flow_set_service(struct qg_flow_table *t, uint16_t svc, uint32_t idle_timeout_ms,
			 uint32_t max_flows_per_client)
{
	if (!t || svc >= t->n_services)
		return;
	/* Flows created while the service was unlimited hold no counter and stay
	 * uncounted; flows that hold one keep releasing it when they leave. */
	t->svcs[svc].idle_timeout_ms = idle_timeout_ms;
	t->svcs[svc].max_per_client = max_flows_per_client;
	/* The list stays in relink order: expiry may lag by the larger of the two grains once. */
	t->svcs[svc].grain_shift = grain_shift_of(t->lru_grain_ms, idle_timeout_ms);
}

uint32_t qg_flow_count(const struct qg_flow_table *t)
{
	return t->count;
}

uint32_t qg_flow_capacity(const struct qg_flow_table *t)
{
	return t->capacity;
}

struct qg_flow *qg_flow_get(struct qg_flow_table *t, uint32_t idx)
{
	return flow_is_live(t, idx) ? &t->flows[idx] : NULL;
}

void qg_flow_foreach(struct qg_flow_table *t, void (*fn)(void *ctx, uint32_t idx, const struct qg_flow *f),
		     void *ctx)
{
	uint32_t i;

	/* fn must not change the table; a scan of the pool is fine off the fast path. */
	for (i = 0; i < t->capacity; i++)
		if (t->flows[i].svc != FLOW_SVC_FREE)
			fn(ctx, i, &t->flows[i]);
}
