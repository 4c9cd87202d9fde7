/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Neighbour table: IP -> MAC for the kernel-bypass backend's next hops.
 *
 * Open addressing with linear probing over at least twice as many slots as
 * entries, so a probe always ends on a free slot. Entries are never removed
 * (a neighbour that changes MAC is refreshed in place), which is what makes
 * lock-free readers simple: a slot's key is written once, then published by
 * a release store of its used flag, and never changes again. The MAC and
 * flags share one 64-bit word updated with atomic stores, so a reader sees
 * either the old or the new MAC, never a mix. Writers (the slow path) are
 * serialised by a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "qgate/hash.h"
#include "net_internal.h"

#define NEIGH_MAX_CAPACITY (1u << 28)
#define NEIGH_STATIC	   (1ull << 48)

struct neigh_slot {
	uint8_t ip[16]; /* IPv4 in ip[0..3], rest zero */
	uint8_t family; /* written before used is published, then constant */
	uint8_t used;	/* 0 -> 1 once, release store / acquire load */
	uint64_t val;	/* MAC in bits 0..47, NEIGH_STATIC; __atomic access only */
};

struct qg_neigh_table {
	pthread_mutex_t lock; /* serialises qg_neigh_set */
	uint64_t seed;	      /* per table: the LAN should not choose our probe chains */
	uint32_t mask;
	uint32_t capacity;
	uint32_t count; /* under lock */
	uint64_t gen;	/* bumped (under lock) whenever a MAC changes: readers' caches compare it */
	struct neigh_slot slots[];
};

/* Family + address with the tail zeroed, whatever the caller left in it. */
struct neigh_key {
	uint8_t ip[16];
	uint8_t family;
};

static int neigh_key(const struct qg_addr *a, struct neigh_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = a->family;
	if (a->family == AF_INET)
		memcpy(k->ip, a->ip, 4);
	else if (a->family == AF_INET6)
		memcpy(k->ip, a->ip, 16);
	else
		return -EINVAL;
	return 0;
}

static uint32_t neigh_home(const struct qg_neigh_table *t, const struct neigh_key *k)
{
	return (uint32_t)qg_hash_bytes(k->ip, 16, t->seed ^ k->family) & t->mask;
}

static uint64_t neigh_pack(const uint8_t mac[QG_NET_ETH_ALEN])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < QG_NET_ETH_ALEN; i++)
		v |= (uint64_t)mac[i] << (8 * i);
	return v;
}

int qg_neigh_create(uint32_t capacity, struct qg_neigh_table **out)
{
	struct qg_neigh_table *t = NULL;
	uint32_t slots = 2;
	int ret = -EINVAL;

	if (!out || capacity == 0 || capacity > NEIGH_MAX_CAPACITY)
		goto err;
	while (slots < 2 * capacity)
		slots <<= 1;
	ret = -ENOMEM;
	t = calloc(1, sizeof(*t) + (size_t)slots * sizeof(t->slots[0]));
	if (!t)
		goto err;
	ret = -pthread_mutex_init(&t->lock, NULL);
	if (ret)
		goto err;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t; /* early boot: weaker but works */
	t->mask = slots - 1;
	t->capacity = capacity;
	*out = t;
	return 0;
err:
	free(t);
	return ret;
}

void qg_neigh_destroy(struct qg_neigh_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int qg_neigh_set(struct qg_neigh_table *t, const struct qg_addr *ip, const uint8_t mac[QG_NET_ETH_ALEN],
		 int is_static)
{
	uint64_t val = neigh_pack(mac) | (is_static ? NEIGH_STATIC : 0);
	struct neigh_slot *s;
	struct neigh_key k;
	uint32_t i;
	int ret;

	ret = neigh_key(ip, &k);
	if (ret)
		return ret;
	pthread_mutex_lock(&t->lock);
	for (i = neigh_home(t, &k);; i = (i + 1) & t->mask) {
		s = &t->slots[i];
		/* Relaxed is enough: only writers store used, and they hold the lock. */
		if (!QG_LOAD_RELAXED(&s->used))
			break;
		if (s->family == k.family && memcmp(s->ip, k.ip, 16) == 0) {
			/* Config wins over what the wire claims: a learned MAC never replaces a static one.
			 */
			if ((is_static || !(QG_LOAD_RELAXED(&s->val) & NEIGH_STATIC)) &&
			    QG_LOAD_RELAXED(&s->val) != val) {
				QG_STORE_RELAXED(&s->val, val);
				QG_STORE_RELEASE(&t->gen, t->gen + 1);
			}
			ret = 0;
			goto out;
		}
	}
	ret = -ENOSPC;
	if (t->count >= t->capacity)
		goto out;
	memcpy(s->ip, k.ip, 16);
	s->family = k.family;
	QG_STORE_RELAXED(&s->val, val);
	/* Publishes key and MAC: a reader that sees used == 1 sees both. */
	QG_STORE_RELEASE(&s->used, 1);
	t->count++;
	QG_STORE_RELEASE(&t->gen, t->gen + 1);
	ret = 0;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

uint64_t qg_neigh_generation(const struct qg_neigh_table *t)
{
	return QG_LOAD_ACQUIRE(&t->gen);
}

int qg_neigh_lookup(const struct qg_neigh_table *t, const struct qg_addr *ip, uint8_t mac[QG_NET_ETH_ALEN])
{
	const struct neigh_slot *s;
	struct neigh_key k;
	uint64_t v;
	uint32_t i;
	int j;

	if (unlikely(neigh_key(ip, &k)))
		return -ENOENT;
	for (i = neigh_home(t, &k);; i = (i + 1) & t->mask) {
		s = &t->slots[i];
		if (!QG_LOAD_ACQUIRE(&s->used))
			return -ENOENT;
		if (s->family == k.family && memcmp(s->ip, k.ip, 16) == 0)
			break;
	}
	v = QG_LOAD_RELAXED(&s->val);
	for (j = 0; j < QG_NET_ETH_ALEN; j++)
		mac[j] = (uint8_t)(v >> (8 * j));
	return 0;
}
