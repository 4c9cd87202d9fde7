/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bridge <-> worker rings (bridge_ring.h): slot arrays handed over by
 * index through Concurrency Kit SPSC rings. Built as its own small library
 * (qgate_bridge_ring) so the dataplane can link the worker side without the
 * control plane.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bridge_ring.h"

/* Single-writer counters: a relaxed store, no read-modify-write, readable from any thread. */
#define CTR_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

static uint32_t slot_size_for(uint32_t max_datagram)
{
	size_t sz = sizeof(struct qg_bridge_slot) + max_datagram;

	return (uint32_t)((sz + QG_BRIDGE_SLOT_ALIGN - 1) & ~(size_t)(QG_BRIDGE_SLOT_ALIGN - 1));
}

static void dir_free(struct qg_bridge_dir *d)
{
	free(d->data_buf);
	free(d->free_buf);
}

/* Every index starts in the producer's hands (on free): the direction is empty. */
static int dir_init(struct qg_bridge_dir *d, uint32_t slots, uint8_t *mem)
{
	/* ck_ring keeps one entry empty: twice the slots holds all of them with room to spare. */
	uint32_t ring = slots * 2;
	uint32_t i;

	d->data_buf = calloc(ring, sizeof(*d->data_buf));
	d->free_buf = calloc(ring, sizeof(*d->free_buf));
	if (!d->data_buf || !d->free_buf) {
		dir_free(d);
		return -ENOMEM;
	}
	ck_ring_init(&d->data, ring);
	ck_ring_init(&d->free, ring);
	d->slots = mem;
	for (i = 0; i < slots; i++)
		ck_ring_enqueue_spsc(&d->free, d->free_buf, (void *)(uintptr_t)i);
	return 0;
}

int qg_bridge_rings_create(unsigned n_workers, uint32_t slots, uint32_t max_datagram,
			   struct qg_bridge_rings **out)
{
	struct qg_bridge_rings *r;
	size_t per_dir;
	unsigned w;
	int rc;

	if (!out || n_workers == 0 || slots < 2 || (slots & (slots - 1)) || slots > (1u << 20) ||
	    max_datagram == 0 || max_datagram > 65535)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->bridge_efd = -1;
	r->n_workers = n_workers;
	r->slots = slots;
	r->max_datagram = max_datagram;
	r->slot_size = slot_size_for(max_datagram);
	r->pair = aligned_alloc(64, ((sizeof(*r->pair) * n_workers + 63) / 64) * 64);
	if (!r->pair) {
		rc = -ENOMEM;
		goto err;
	}
	memset(r->pair, 0, sizeof(*r->pair) * n_workers);
	for (w = 0; w < n_workers; w++)
		r->pair[w].worker_efd = -1;
	per_dir = (size_t)slots * r->slot_size;
	r->mem = aligned_alloc(QG_BRIDGE_SLOT_ALIGN, per_dir * 2 * n_workers);
	if (!r->mem) {
		rc = -ENOMEM;
		goto err;
	}
	for (w = 0; w < n_workers; w++) {
		uint8_t *base = (uint8_t *)r->mem + per_dir * 2 * w;

		rc = dir_init(&r->pair[w].to_worker, slots, base);
		if (!rc)
			rc = dir_init(&r->pair[w].to_bridge, slots, base + per_dir);
		if (rc)
			goto err;
		r->pair[w].worker_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (r->pair[w].worker_efd < 0) {
			rc = -errno;
			goto err;
		}
	}
	r->bridge_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->bridge_efd < 0) {
		rc = -errno;
		goto err;
	}
	*out = r;
	return 0;
err:
	qg_bridge_rings_destroy(r);
	return rc;
}

void qg_bridge_rings_destroy(struct qg_bridge_rings *r)
{
	unsigned w;

	if (!r)
		return;
	for (w = 0; r->pair && w < r->n_workers; w++) {
		dir_free(&r->pair[w].to_worker);
		dir_free(&r->pair[w].to_bridge);
		if (r->pair[w].worker_efd >= 0)
			close(r->pair[w].worker_efd);
	}
	if (r->bridge_efd >= 0)
		close(r->bridge_efd);
	free(r->pair);
	free(r->mem);
	free(r);
}

int qg_bridge_dir_acquire(struct qg_bridge_dir *d, uint32_t *idx)
{
	void *e;

	if (!ck_ring_dequeue_spsc(&d->free, d->free_buf, &e)) {
		CTR_ADD(d->pc.full, 1);
		return -ENOBUFS;
	}
	*idx = (uint32_t)(uintptr_t)e;
	return 0;
}

void qg_bridge_dir_commit(struct qg_bridge_dir *d, uint32_t idx)
{
	/* Cannot fail: the ring holds every index at once. */
	ck_ring_enqueue_spsc(&d->data, d->data_buf, (void *)(uintptr_t)idx);
	CTR_ADD(d->pc.pushed, 1);
}

int qg_bridge_dir_take(struct qg_bridge_dir *d, uint32_t *idx)
{
	void *e;

	if (!ck_ring_dequeue_spsc(&d->data, d->data_buf, &e))
		return -EAGAIN;
	*idx = (uint32_t)(uintptr_t)e;
	return 0;
}

void qg_bridge_dir_release(struct qg_bridge_dir *d, uint32_t idx)
{
	CTR_ADD(d->cc.popped, 1);
	ck_ring_enqueue_spsc(&d->free, d->free_buf, (void *)(uintptr_t)idx);
}

int qg_bridge_ring_pop(struct qg_bridge_rings *r, unsigned worker, struct qg_bridge_msg *msg, void *buf,
		       size_t cap)
{
	const struct qg_bridge_slot *s;
	struct qg_bridge_dir *d;
	uint32_t idx, len;

	if (!r || worker >= r->n_workers || !msg || (cap && !buf))
		return -EINVAL;
	d = &r->pair[worker].to_worker;
	if (qg_bridge_dir_take(d, &idx))
		return -EAGAIN;
	s = qg_bridge_dir_slot(r, d, idx);
	*msg = s->msg;
	len = s->msg.len;
	if (len > cap) {
		CTR_ADD(d->cc.truncated, 1);
		qg_bridge_dir_release(d, idx);
		return -EMSGSIZE;
	}
	if (len)
		memcpy(buf, s->data, len);
	qg_bridge_dir_release(d, idx);
	return (int)len;
}

int qg_bridge_ring_push(struct qg_bridge_rings *r, unsigned worker, const struct qg_bridge_msg *msg,
			const void *payload)
{
	struct qg_bridge_slot *s;
	struct qg_bridge_dir *d;
	uint32_t idx;

	if (!r || worker >= r->n_workers || !msg || (msg->len && !payload))
		return -EINVAL;
	d = &r->pair[worker].to_bridge;
	if (msg->len > r->max_datagram) {
		CTR_ADD(d->pc.oversize, 1);
		return -EMSGSIZE;
	}
	if (qg_bridge_dir_acquire(d, &idx))
		return -ENOBUFS;
	s = qg_bridge_dir_slot(r, d, idx);
	s->msg = *msg;
	if (msg->len)
		memcpy(s->data, payload, msg->len);
	qg_bridge_dir_commit(d, idx);
	/*
	 * Dekker with qg_bridge_rings_prepare_sleep(): the index is published
	 * before the flag is read, the bridge sets the flag before it looks at
	 * the rings, so one of the two sees the other. The eventfd costs a
	 * syscall only when the bridge actually sleeps.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->sleeping, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&r->sleeping, 0, __ATOMIC_ACQ_REL)) {
		uint64_t one = 1;

		if (write(r->bridge_efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is saturated, the bridge is awake anyway. */
		}
	}
	return 0;
}

int qg_bridge_rings_prepare_sleep(struct qg_bridge_rings *r)
{
	unsigned w;

	__atomic_store_n(&r->sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (w = 0; w < r->n_workers; w++) {
		if (ck_ring_size(&r->pair[w].to_bridge.data)) {
			__atomic_store_n(&r->sleeping, 0, __ATOMIC_RELAXED);
			return 1;
		}
	}
	return 0;
}

void qg_bridge_rings_woke(struct qg_bridge_rings *r)
{
	uint64_t v;

	__atomic_store_n(&r->sleeping, 0, __ATOMIC_RELAXED);
	while (read(r->bridge_efd, &v, sizeof(v)) > 0)
		;
}

int qg_bridge_ring_worker_fd(const struct qg_bridge_rings *r, unsigned worker)
{
	if (!r || worker >= r->n_workers)
		return -EINVAL;
	return r->pair[worker].worker_efd;
}

unsigned qg_bridge_ring_workers(const struct qg_bridge_rings *r)
{
	return r ? r->n_workers : 0;
}

uint32_t qg_bridge_ring_max_datagram(const struct qg_bridge_rings *r)
{
	return r ? r->max_datagram : 0;
}

static void dir_stats(const struct qg_bridge_dir *d, struct qg_bridge_ring_stats *out)
{
	if (!out)
		return;
	out->pushed = __atomic_load_n(&d->pc.pushed, __ATOMIC_RELAXED);
	out->full = __atomic_load_n(&d->pc.full, __ATOMIC_RELAXED);
	out->oversize = __atomic_load_n(&d->pc.oversize, __ATOMIC_RELAXED);
	out->popped = __atomic_load_n(&d->cc.popped, __ATOMIC_RELAXED);
	out->truncated = __atomic_load_n(&d->cc.truncated, __ATOMIC_RELAXED);
}

void qg_bridge_ring_get_stats(const struct qg_bridge_rings *r, unsigned worker,
			      struct qg_bridge_ring_stats *to_worker, struct qg_bridge_ring_stats *to_bridge)
{
	if (!r || worker >= r->n_workers)
		return;
	dir_stats(&r->pair[worker].to_worker, to_worker);
	dir_stats(&r->pair[worker].to_bridge, to_bridge);
}
