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

struct qg_bridge_rings;

/**
 * Relay the Bluetooth bridge's traffic (qgate/bridge.h, docs/BLUETOOTH.md):
 * worker w polls ring pair w every loop iteration and sleeps on its
 * doorbell. Between create and start; create from the configuration the
 * bridge was created from (ring messages use its indexes, and it sizes the
 * workers' buffers for bridge messages). The rings must outlive the
 * dataplane: destroy the dataplane before the bridge.
 * @return 0; -ENOTSUP when the I/O backend cannot (DPDK); -EINVAL when the
 *         rings do not match (workers, max_datagram); -EALREADY; -ENOMEM.
 */
int qg_dataplane_attach_bridge(struct qg_dataplane *dp, struct qg_bridge_rings *rings);

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
 * Relay backend b of service svc over `path`, one of its configured paths
 * (the path selector's choice, qgate/paths.h): its udp path, or a Bluetooth
 * path through the attached bridge. New flows take it; established flows
 * move at their next datagram from the client (same backend, another
 * upstream). Published like set_weight; the same choice again is a no-op.
 * @return 0, -ENOENT (unknown service, backend, or a Bluetooth path the
 *         bridge does not know), -EINVAL (a udp path other than the one
 *         the dataplane relays over), -ENOMEM.
 */
int qg_dataplane_set_backend_path(struct qg_dataplane *dp, unsigned svc, unsigned b,
				  const struct qg_config_path *path);

/**
 * Remove the established flows of backend b (0-based) of service svc on
 * every worker, through the control -> worker command rings; returns once
 * every worker ran it. Their clients' next datagrams are new flows (which
 * selection may send elsewhere: drain first to move them off b). Counted as
 * flows_flushed. @return flows removed, or -ENOENT, -ENODEV (not running),
 * -ENOBUFS, -ETIMEDOUT.
 */
long qg_dataplane_flush_backend(struct qg_dataplane *dp, unsigned svc, unsigned b);

/**
 * Hot reload: run cfg's services and backends from now on. A service that
 * keeps its name and listen address keeps its sockets and flows (a changed
 * policy, timeout or QUIC setting applies to new flows); a backend its
 * service still lists keeps its flows, counters and health verdict; new
 * services get their sockets before anything changes, so a bind error
 * refuses the whole reload. Flows of a removed service end; flows of a
 * removed backend are re-homed on their next datagram (on_backend_down:
 * rehome) or finish where they are. Settings of the dataplane section take
 * effect at the next restart (msg says which). Returns once every running
 * worker applied it. Service indexes in this API follow cfg afterwards.
 * @param msg gets a one-line summary, or why the reload was refused.
 * @return 0, or -errno with nothing changed (-ETIMEDOUT: applied late).
 */
int qg_dataplane_reload(struct qg_dataplane *dp, const struct qg_config *cfg, char *msg, size_t len);

/**
 * Apply a graceful-degradation level (enum qg_degrade_level) to new flows:
 * protect turns Retry on for QUIC services with retry: under_attack and
 * quarters per-source new-connection rates; shed refuses new flows of
 * services with priority low; essential refuses every new flow
 * (established flows are always relayed). Refusals count as drop "shed".
 * @return 0, -EINVAL (level out of range), -ENOMEM.
 */
int qg_dataplane_set_level(struct qg_dataplane *dp, unsigned level);

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

/*
 * Telemetry: each worker publishes a sample every QG_DATAPLANE_TM_PERIOD_MS
 * (and passive events) into its own single-producer single-consumer ring;
 * the control thread, the single consumer, drains them. A full ring makes
 * the worker drop the record and count it: workers never wait.
 */

#define QG_DATAPLANE_TM_PERIOD_MS 100 /**< a worker's sample period */
#define QG_DATAPLANE_TM_RING_SIZE 256 /**< slots per worker ring (holds one less) */

/** What a telemetry record carries. */
enum qg_dataplane_tm_type {
	QG_DATAPLANE_TM_SAMPLE = 0, /**< the period's figures */
	QG_DATAPLANE_TM_EVICTING,   /**< passive: the flow table was full and evicted arg flows this period */
};

/** One telemetry record; counts are over the period that ends at ts_ns. */
struct qg_dataplane_tm {
	uint32_t type;		 /**< enum qg_dataplane_tm_type */
	uint32_t worker;	 /**< index of the worker that wrote it */
	uint64_t seq;		 /**< records this worker produced before it, dropped ones included */
	uint64_t ts_ns;		 /**< qg_clock_ns() when the period ended */
	uint64_t period_ns;	 /**< length of the period */
	uint64_t packets;	 /**< datagrams received, from clients and backends */
	uint64_t new_flows;	 /**< flows created */
	uint64_t drops;		 /**< datagrams dropped, every drop reason */
	uint64_t shed;		 /**< new flows refused by the degradation level */
	uint64_t busy_ns;	 /**< time spent after polls that returned datagrams */
	uint32_t flows_active;	 /**< flow-table entries in use at ts_ns */
	uint32_t flows_capacity; /**< flow-table size */
	uint64_t arg;		 /**< per type (QG_DATAPLANE_TM_EVICTING: flows evicted) */
};

/** Called for each record drained; runs on the caller's (control) thread. */
typedef void (*qg_dataplane_tm_fn)(void *ctx, const struct qg_dataplane_tm *rec);

/**
 * Drain every worker's telemetry ring, oldest first per worker, calling fn
 * for each record. Control thread only (the rings' single consumer).
 * @return records delivered.
 */
unsigned qg_dataplane_telemetry_poll(struct qg_dataplane *dp, qg_dataplane_tm_fn fn, void *ctx);

/** State of one worker's telemetry ring. */
struct qg_ring_stats {
	uint32_t capacity;  /**< records it can hold */
	uint32_t occupancy; /**< records waiting for the control thread now */
	uint64_t published; /**< records enqueued since start */
	uint64_t dropped;   /**< records the worker dropped because the ring was full */
};

/** Telemetry ring figures of one worker. @return 0 or -ENOENT. */
int qg_dataplane_ring_stats(const struct qg_dataplane *dp, unsigned worker, struct qg_ring_stats *out);

struct qg_io_port_stats;

/**
 * The figures of the I/O backend's port i (DPDK: rte_eth_stats of the i-th
 * configured port). @return 0, -ENOENT past the last port, -ENOTSUP when the
 * backend drives no ports, or another -errno.
 */
int qg_dataplane_port_stats(const struct qg_dataplane *dp, unsigned i, struct qg_io_port_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_DATAPLANE_H */
