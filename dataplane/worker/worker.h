/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A dataplane worker: one thread pinned to one CPU, polling its own I/O
 * instance and running its own relay. Everything it writes is its own; the
 * only shared thing it reads is the published service table.
 */
#ifndef QG_WORKER_H
#define QG_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "../pipeline/relay.h"
#include "qgate/compiler.h"
#include "qgate/counters.h"
#include "qgate/io.h"

struct qg_worker {
	struct qg_ctr_block ctr; /* first: its own cache lines */
	unsigned idx;
	unsigned cpu;
	uint32_t burst;
	const struct qg_io_ops *ops;
	struct qg_io *io;
	struct qg_relay *relay;
	struct qg_telemetry *tm;     /* samples and passive events toward the control thread */
	struct qg_svc_table **table; /* RCU-published pointer owned by the dataplane */
	int *handoff;		     /* per service: a listening socket the control side opened for us */
	uint32_t *io_uid;	     /* per service: incarnation our I/O instance serves, 0 none */
	uint64_t applied_gen;	     /* last table generation applied (release-stored for reloads) */
	int reload_err;		     /* last service attach error (-errno), read after the ack */
	struct qg_cmd_ring *cmds;    /* control -> worker commands */
	uint64_t cmd_done;	     /* seq of the last command run (release-stored) */
	uint64_t cmd_flows;	     /* flows the commands removed, in total (single writer) */
	int bridge_fd;		     /* the bridge's doorbell for this worker, -1 = no bridge */
	unsigned sleep_us;	     /* longest wait in rx_burst when idle */
	int overload_guard;	     /* refuse new flows while behind (dataplane.overload_guard) */
	pthread_t thread;
	int thread_started;
	int stop;   /* set by the control side */
	int status; /* 0 starting, 1 running, -errno failed */
} QG_CACHE_ALIGNED;

/** Thread entry of a worker (arg: struct qg_worker *). */
void *qg_worker_main(void *arg);

#endif /* QG_WORKER_H */
