/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-core flow table. One instance per worker, touched by that worker only:
 * no locks, no atomics. Entries live in a pool preallocated at creation and
 * are addressed by 32-bit index; lookup is O(1) (the entries are the hash
 * table: a flow sits in the entry its hash names when that was free, one
 * cache line per lookup, else on that entry's chain), each service keeps its own LRU list so flows expire by
 * that service's idle timeout, and a full table evicts the least recently used flow. The table knows nothing
 * of packet I/O: the I/O handle of a flow (upstream socket slot, NAT port) is an opaque 32-bit value.
 */
#ifndef QGATE_FLOW_H
#define QGATE_FLOW_H

#include <stdint.h>

#include "qgate/addr.h"
#include "qgate/compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QG_FLOW_NONE UINT32_MAX

/** One flow: 64 bytes, one cache line. */
struct qg_flow {
	struct qg_addr client; /**< client endpoint as seen by the gateway */
	uint16_t svc;	       /**< service index */
	uint16_t flags;	       /**< owner-defined bits (QG_FLOW_F_*) */
	uint32_t backend;      /**< backend slot chosen at creation */
	uint32_t upstream;     /**< I/O handle toward the backend (opaque here) */
	uint32_t hnext;	       /**< next index in the hash chain */
	uint32_t lru_prev;     /**< LRU neighbours within the service list */
	uint32_t lru_next;
	uint32_t last_seen;   /**< ms clock of the last packet (wraps; compared by difference) */
	uint32_t hash;	      /**< key hash, to skip full compares and rehash quickly */
	uint32_t client_slot; /**< per-client counter entry, QG_FLOW_NONE when unlimited */
	uint32_t chain;	      /**< table-internal: flows displaced from this entry (their home) */
	uint32_t user2;	      /**< second spare for the owner; pads the entry to 64 bytes */
};

/** Why a flow left the table (passed to the removal callback). */
enum qg_flow_reason {
	QG_FLOW_REASON_EXPIRED = 0, /**< idle longer than its service's timeout */
	QG_FLOW_REASON_EVICTED,	    /**< oldest flow dropped to make room */
	QG_FLOW_REASON_REMOVED,	    /**< removed by the owner */
};

/** Called for every flow that leaves the table, before its entry is reused. */
typedef void (*qg_flow_remove_cb)(void *ctx, uint32_t idx, const struct qg_flow *f, enum qg_flow_reason why);

struct qg_flow_table_params {
	uint32_t capacity;		      /**< maximum flows (>= 1) */
	uint32_t n_services;		      /**< services indexed 0..n_services-1 */
	const uint32_t *idle_timeout_ms;      /**< per service (array of n_services) */
	const uint32_t *max_flows_per_client; /**< per service, 0 = unlimited; NULL = all unlimited */
	uint64_t seed;			      /**< hash seed */
	qg_flow_remove_cb on_remove;	      /**< may be NULL */
	void *cb_ctx;
	/**
	 * LRU grain in ms (0 or 1: exact). A flow moves to its list's tail at most
	 * once per grain, the largest power of two <= min(lru_grain_ms, idle
	 * timeout / 16): a hit within the same grain writes only the flow's own
	 * entry, not its two neighbours' (two random misses per packet at a million
	 * flows). Eviction then picks the oldest flow to within a grain, and
	 * qg_flow_expire() may remove a flow up to a grain late (a lookup never
	 * returns an idle flow, whatever the grain).
	 */
	uint32_t lru_grain_ms;
};

struct qg_flow_table;

/** Allocate a table with every entry preallocated. @return 0 or -EINVAL / -ENOMEM. */
int qg_flow_table_create(const struct qg_flow_table_params *p, struct qg_flow_table **out);

/** Free the table (NULL is fine). The removal callback is not called. */
void qg_flow_table_destroy(struct qg_flow_table *t);

/**
 * Memory of the table's arrays and how much of it the kernel backs with huge
 * pages now (qg_mem_huge_bytes(): reads /proc/self/smaps, for start-up logs and
 * tests, not the fast path). @return 0 or -errno.
 */
int qg_flow_table_memory(const struct qg_flow_table *t, size_t *bytes, size_t *huge_bytes);

/**
 * Find the flow of (svc, client). A hit refreshes its LRU position and
 * last_seen. A flow found idle past its timeout is removed (callback with
 * QG_FLOW_REASON_EXPIRED) and reported as a miss.
 * @return the flow index, or QG_FLOW_NONE.
 */
uint32_t qg_flow_lookup(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client, uint32_t now_ms);

/**
 * Start a lookup early: compute the key's hash and prefetch its home entry,
 * so a burst can issue every memory access before it needs the first result.
 * @return the hash to give qg_flow_lookup_hashed().
 */
uint32_t qg_flow_prefetch(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client);

/**
 * Second stage: once the home entry is in cache, prefetch the first entry of
 * its chain when the flow may be displaced from home. Bursts run stage one on
 * every key, then stage two, then lookups.
 */
void qg_flow_prefetch_entry(struct qg_flow_table *t, uint32_t hash);

/** qg_flow_lookup() with the hash qg_flow_prefetch() returned for the same key. */
uint32_t qg_flow_lookup_hashed(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client,
			       uint32_t hash, uint32_t now_ms);

/**
 * Insert a new flow for (svc, client); the caller has checked it is absent.
 * When the table is full the least recently used flow is evicted first.
 * backend and upstream start as QG_FLOW_NONE for the caller to fill.
 * @return 0 and *idx, -EDQUOT when the client is at its service's
 *         max_flows_per_client, -ENOSPC when nothing can be evicted.
 */
int qg_flow_insert(struct qg_flow_table *t, uint16_t svc, const struct qg_addr *client, uint32_t now_ms,
		   uint32_t *idx);

/** Remove a flow (the callback runs with QG_FLOW_REASON_REMOVED). */
void qg_flow_remove(struct qg_flow_table *t, uint32_t idx);

/**
 * Evict the least recently used flow of service svc other than keep (the
 * callback runs with QG_FLOW_REASON_EVICTED). @return 0, or -ENOENT when
 * there is none.
 */
int qg_flow_evict_oldest(struct qg_flow_table *t, uint16_t svc, uint32_t keep);

/** Remove every flow of service svc toward backend (an operator's flush). @return how many. */
unsigned qg_flow_remove_backend(struct qg_flow_table *t, uint16_t svc, uint32_t backend);

/** Remove every flow of service svc (it was removed by a reload). @return how many. */
unsigned qg_flow_remove_service(struct qg_flow_table *t, uint16_t svc);

/** Refresh a flow's last_seen and LRU position (used on the reply path). */
void qg_flow_touch(struct qg_flow_table *t, uint32_t idx, uint32_t now_ms);

/**
 * Move a flow to a new client endpoint (QUIC migration / NAT rebinding)
 * without changing its backend or upstream. @return 0, or -EEXIST when
 * (svc, client) already has another flow.
 */
int qg_flow_rekey(struct qg_flow_table *t, uint32_t idx, const struct qg_addr *client);

/** Expire at most budget idle flows. @return how many were removed. */
unsigned qg_flow_expire(struct qg_flow_table *t, uint32_t now_ms, unsigned budget);

/** Change a service's idle timeout and per-client limit (hot reload). */
void qg_flow_set_service(struct qg_flow_table *t, uint16_t svc, uint32_t idle_timeout_ms,
			 uint32_t max_flows_per_client);

/** Number of flows in the table. */
uint32_t qg_flow_count(const struct qg_flow_table *t);

/** Capacity given at creation. */
uint32_t qg_flow_capacity(const struct qg_flow_table *t);

/** The entry at idx (valid while the flow lives). */
struct qg_flow *qg_flow_get(struct qg_flow_table *t, uint32_t idx);

/** Call fn for every live flow (control/debug use, not the fast path). */
void qg_flow_foreach(struct qg_flow_table *t, void (*fn)(void *ctx, uint32_t idx, const struct qg_flow *f),
		     void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_FLOW_H */
