/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-core table of learned QUIC connection IDs: CID -> flow. It lets a
 * datagram whose 4-tuple changed (NAT rebinding) find the flow, and so the
 * backend, of its connection. What is learned: the client's first DCID and
 * the SCIDs the backend puts in its long-header packets. Owned by one worker
 * (no locks), preallocated, bounded: a flow keeps at most QG_CID_PER_FLOW
 * CIDs (the newest) and its CIDs go when the flow goes.
 */
#ifndef QG_CID_TABLE_H
#define QG_CID_TABLE_H

#include <stdint.h>

#define QG_CID_MAX_LEN	20 /* RFC 9000 v1/v2; longer CIDs of other versions are not learned */
#define QG_CID_PER_FLOW 4
#define QG_CID_NONE	UINT32_MAX

struct qg_cid_table;

/** Table of up to capacity CIDs for flows indexed 0..n_flows-1. 0, -EINVAL or -ENOMEM. */
int qg_cid_table_create(uint32_t capacity, uint32_t n_flows, uint64_t seed, struct qg_cid_table **out);

/** Free it (NULL is fine). */
void qg_cid_table_destroy(struct qg_cid_table *t);

/**
 * Map (svc, cid) to flow. A CID already mapped to another flow moves to this
 * one; a flow past QG_CID_PER_FLOW loses its oldest CID.
 * @return 0, -EINVAL (length 0 or > QG_CID_MAX_LEN), -ENOSPC (table full).
 */
int qg_cid_learn(struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len, uint32_t flow);

/** The flow of (svc, cid), or QG_CID_NONE. */
uint32_t qg_cid_lookup(const struct qg_cid_table *t, uint16_t svc, const uint8_t *cid, uint8_t len);

/** Forget every CID of a flow (its flow-table entry is being freed). */
void qg_cid_forget_flow(struct qg_cid_table *t, uint32_t flow);

/** CIDs held. */
uint32_t qg_cid_count(const struct qg_cid_table *t);

#endif /* QG_CID_TABLE_H */
