/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bridge <-> worker rings: the message format and the bridge thread's
 * side. Internal to controlplane/bridge; workers use the qg_bridge_ring_*
 * functions of qgate/bridge.h.
 *
 * Each direction of a worker's pair is
 *   - a preallocated array of `slots` fixed-size slots: a struct
 *     qg_bridge_slot header then max_datagram payload bytes, 64-byte aligned;
 *   - a ck_ring "data" carrying slot indexes from producer to consumer;
 *   - a ck_ring "free" carrying them back from consumer to producer.
 * A slot belongs to exactly one side at a time: the producer takes a free
 * index, fills the slot, publishes the index on data; the consumer takes it,
 * reads the slot, returns the index on free. Both ck_rings are single
 * producer / single consumer with opposite roles, and hold every index at
 * once, so only the free ring can ever run dry (= the direction is full).
 */
#ifndef QG_BRIDGE_RING_H
#define QG_BRIDGE_RING_H

#include <ck_ring.h>
#include <stdint.h>

#include "qgate/bridge.h"

#define QG_BRIDGE_SLOT_ALIGN 64u

/** One message in a slot: the public header, then len payload bytes. */
struct qg_bridge_slot {
	struct qg_bridge_msg msg;
	uint8_t data[];
};

/* Counters written by the producing side only, and by the consuming side only: never on one line. */
struct qg_bridge_ring_pctr {
	uint64_t pushed, full, oversize;
} __attribute__((aligned(64)));

struct qg_bridge_ring_cctr {
	uint64_t popped, truncated;
} __attribute__((aligned(64)));

/** One direction. */
struct qg_bridge_dir {
	struct ck_ring data;
	struct ck_ring free;
	struct ck_ring_buffer *data_buf;
	struct ck_ring_buffer *free_buf;
	uint8_t *slots; /* slots x slot_size bytes */
	struct qg_bridge_ring_pctr pc;
	struct qg_bridge_ring_cctr cc;
};

/** A worker's pair, and its doorbell. */
struct qg_bridge_pair {
	struct qg_bridge_dir to_worker;
	struct qg_bridge_dir to_bridge;
	int worker_efd;
};

struct qg_bridge_rings {
	unsigned n_workers;
	uint32_t slots;
	uint32_t slot_size;
	uint32_t max_datagram;
	struct qg_bridge_pair *pair;
	int bridge_efd; /* workers ring it when the bridge sleeps */
	int sleeping;	/* the bridge is (about to be) in epoll_wait: atomic */
	void *mem;	/* one allocation for every slot */
};

/** Allocate n_workers pairs of `slots` slots (a power of two) of max_datagram bytes. */
int qg_bridge_rings_create(unsigned n_workers, uint32_t slots, uint32_t max_datagram,
			   struct qg_bridge_rings **out);

/** Free (NULL is fine); nobody may use the rings any more. */
void qg_bridge_rings_destroy(struct qg_bridge_rings *r);

static inline struct qg_bridge_slot *qg_bridge_dir_slot(const struct qg_bridge_rings *r,
							const struct qg_bridge_dir *d, uint32_t idx)
{
	return (struct qg_bridge_slot *)(d->slots + (size_t)idx * r->slot_size);
}

/**
 * Producer: take a free slot index. A producer may hold one across calls
 * (the bridge receives straight into it). @return 0, or -ENOBUFS (counted as full).
 */
int qg_bridge_dir_acquire(struct qg_bridge_dir *d, uint32_t *idx);

/** Producer: publish a filled slot. */
void qg_bridge_dir_commit(struct qg_bridge_dir *d, uint32_t idx);

/** Consumer: take the next published slot. @return 0 or -EAGAIN. */
int qg_bridge_dir_take(struct qg_bridge_dir *d, uint32_t *idx);

/** Consumer: return a slot once read. */
void qg_bridge_dir_release(struct qg_bridge_dir *d, uint32_t idx);

/**
 * The bridge before sleeping: mark itself asleep and check whether a worker
 * queued something meanwhile. @return 1 when a to_bridge ring is non-empty
 * (do not sleep; the mark is cleared).
 */
int qg_bridge_rings_prepare_sleep(struct qg_bridge_rings *r);

/** The bridge is awake again: clear the mark and drain its eventfd. */
void qg_bridge_rings_woke(struct qg_bridge_rings *r);

#endif /* QG_BRIDGE_RING_H */
