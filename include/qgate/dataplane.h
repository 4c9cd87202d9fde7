/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane: one polled worker thread per configured core, each with its
 * own I/O instance, flow table, upstream pool and counters. The control side
 * (the daemon, tests) creates it from a configuration, changes backend
 * weights through published tables (RCU: workers never lock) and reads
 * counters that workers write without atomics.
 */
#ifndef QGATE_DATAPLANE_H
#define QGATE_DATAPLANE_H

#include <stdint.h>

#include "qgate/config.h"
#include "qgate/counters.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qg_dataplane;

/** Per-backend figures, summed over workers. */
struct qg_backend_stats {
	uint64_t tx_pkts; /**< datagrams sent to the backend */
	uint64_t rx_pkts; /**< datagrams received from it */
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint64_t flows_created;
	uint64_t flows_active;
	uint64_t refused; /**< ICMP port/host unreachable seen on its upstreams (ECONNREFUSED) */
};

/**
 * Create the dataplane for cfg (copied: the caller may free cfg after):
 * select the I/O backend (io_uring falls back to recvmmsg), bind every
 * service on every worker, allocate flow tables. Nothing runs yet.
 * @return 0 or -errno (the reason is logged).
 */
int qg_dataplane_create(const struct qg_config *cfg, struct qg_dataplane **out);

/** Start the worker threads (pinned to their cores). 0 or -errno. */
int qg_dataplane_start(struct qg_dataplane *dp);

/** Stop and join the workers (idempotent). */
void qg_dataplane_stop(struct qg_dataplane *dp);

/** Stop if needed and free everything (NULL is fine). */
void qg_dataplane_destroy(struct qg_dataplane *dp);

/** Name of the I/O backend in use ("io_uring", "recvmmsg"). */
const char *qg_dataplane_io_name(const struct qg_dataplane *dp);

/** Number of workers. */
unsigned qg_dataplane_workers(const struct qg_dataplane *dp);

/**
 * Set a backend's weight (0 drains it: its flows stay, no new flow goes to
 * it). The selection tables are rebuilt and published; workers see the change
 * within one loop iteration. Call from one control thread.
 * @return 0, -ENOENT for an unknown service or backend, -EINVAL, -ENOMEM.
 */
int qg_dataplane_set_weight(struct qg_dataplane *dp, const char *service, const struct qg_addr *backend,
			    uint32_t weight);

/**
 * Mark backend b (0-based) of service svc (0-based) up or down for new flows:
 * a down backend gets no new flow (selection sees weight 0, Maglev is built
 * over the others) and, with on_backend_down: rehome, a UDP flow to it moves
 * to another backend on its next datagram. Published like set_weight.
 * @return 0, -ENOENT, -ENOMEM.
 */
int qg_dataplane_set_backend_state(struct qg_dataplane *dp, unsigned svc, unsigned b, int up);

/**
 * Stop admitting new flows (shutdown drain): established flows keep being
 * relayed, new clients are dropped and counted (draining). 0 or -ENOMEM.
 */
int qg_dataplane_drain(struct qg_dataplane *dp);

/** Sum of every worker's counters. */
void qg_dataplane_counters(const struct qg_dataplane *dp, struct qg_ctr_block *out);

/** Counters of one worker. */
void qg_dataplane_worker_counters(const struct qg_dataplane *dp, unsigned worker, struct qg_ctr_block *out);

/**
 * Figures of backend b (0-based, as listed) of service svc (0-based).
 * @return 0 or -ENOENT.
 */
int qg_dataplane_backend_stats(const struct qg_dataplane *dp, unsigned svc, unsigned b,
			       struct qg_backend_stats *out);

/** Active flows of service svc over all workers. */
uint64_t qg_dataplane_flows_active(const struct qg_dataplane *dp, unsigned svc);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_DATAPLANE_H */
