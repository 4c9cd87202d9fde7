/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control -> worker command rings: one ck_ring SPSC per worker (the control
 * thread produces, the worker consumes between bursts). Tables carry state
 * (weights, health, services); commands carry one-off actions on a worker's
 * own state that no table can express, such as removing established flows.
 * The worker acknowledges by storing the sequence number of the last command
 * it ran, so the control side can wait for every worker.
 */
#ifndef QG_WORKER_COMMANDS_H
#define QG_WORKER_COMMANDS_H

#include <stdint.h>

enum qg_worker_cmd_op {
	QG_WORKER_CMD_FLUSH_BACKEND = 1, /* remove the flows of (svc, slot) */
};

struct qg_worker_cmd {
	uint32_t op;
	uint32_t svc;
	uint32_t slot;
	uint32_t pad;
	uint64_t seq;
};

struct qg_cmd_ring;

/** A ring of size (a power of two) commands. 0 or -errno. */
int qg_cmd_ring_create(uint32_t size, struct qg_cmd_ring **out);

/** Free it (NULL is fine). */
void qg_cmd_ring_destroy(struct qg_cmd_ring *r);

/** Control thread: queue c. 0 or -ENOBUFS (full: the worker is not keeping up). */
int qg_cmd_ring_push(struct qg_cmd_ring *r, const struct qg_worker_cmd *c);

/** Worker thread: take one command. 1 when *c was filled, 0 when empty. */
int qg_cmd_ring_pop(struct qg_cmd_ring *r, struct qg_worker_cmd *c);

#endif /* QG_WORKER_COMMANDS_H */
