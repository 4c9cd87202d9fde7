/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "qgate/clock.h"
#include "qgate/log.h"
#include "commands.h"
#include "telemetry.h"
#include "worker.h"

/*
 * Empty polls before the worker sleeps in the kernel. Polling keeps latency
 * low under load; sleeping when idle leaves the core to others on shared
 * machines. About 100-200 us of spinning at one syscall per poll.
 */
#define QG_WORKER_IDLE_POLLS 256
#define QG_WORKER_SLEEP_US   5000
/*
 * Bluetooth bridge messages wake a sleeping worker through the ring's
 * eventfd (io watch_fd); a backend without watch_fd sleeps no longer than
 * this instead, which then bounds their latency on an idle worker.
 */
#define QG_WORKER_BRIDGE_SLEEP_US 1000
#define QG_WORKER_EXPIRE_MAX	  1024 /* flows expired per millisecond at most */
/*
 * A worker whose receive polls keep coming back full has a standing queue in
 * the kernel: it is behind, and every datagram waits for the whole queue.
 * After QG_WORKER_BEHIND_POLLS full polls in a row spanning at least
 * QG_WORKER_BEHIND_MS it refuses new flows (qg_relay_set_behind) until a poll
 * comes back short. Both conditions: a worker descheduled for a while sees a
 * few full polls across the gap and then catches up, while a standing queue
 * at 10,000 datagrams/s fills some 300 polls of 32 a second.
 */
#define QG_WORKER_BEHIND_MS    100
#define QG_WORKER_BEHIND_POLLS 32

static void worker_pin(struct qg_worker *w)
{
	cpu_set_t set;
	int rc;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc)
		QG_LOG_WARN("worker %u: cannot pin to CPU %u: %s", w->idx, w->cpu, strerror(rc));
}

/*
 * A reload added, removed or moved services: open (with the socket the
 * control side made for this worker) or close them in our I/O instance.
 * Incarnation ids tell a service re-created at the same index apart.
 */
static void worker_sync_services(struct qg_worker *w, const struct qg_svc_table *t)
{
	for (uint32_t i = 0; i < QG_CONFIG_MAX_SERVICES; i++) {
		uint32_t uid = i < t->n_services ? t->svc[i].uid : 0;
		int fd, rc;

		if (likely(w->io_uid[i] == uid))
			continue;
		if (w->io_uid[i] && w->ops->svc_detach)
			w->ops->svc_detach(w->io, i);
		w->io_uid[i] = 0;
		if (!uid || !w->ops->svc_attach)
			continue;
		fd = w->handoff[i];
		w->handoff[i] = -1;
		rc = w->ops->svc_attach(w->io, i, &t->svc[i].listen, fd, uid);
		if (rc) {
			QG_LOG_ERR("worker %u: cannot serve service %s: %s", w->idx, t->svc[i].name,
				   strerror(-rc));
			w->reload_err = rc;
			continue;
		}
		w->io_uid[i] = uid;
	}
}

/* Run what the control side queued (rare: one ring load when there is nothing). */
static inline void worker_commands(struct qg_worker *w)
{
	struct qg_worker_cmd c;

	while (unlikely(qg_cmd_ring_pop(w->cmds, &c))) {
		if (c.op == QG_WORKER_CMD_FLUSH_BACKEND)
			QG_STORE_RELAXED(&w->cmd_flows,
					 w->cmd_flows + qg_relay_flush_backend(w->relay, c.svc, c.slot));
		QG_STORE_RELEASE(&w->cmd_done, c.seq);
	}
}

/* Follow the published table; after a quiescent state the old one may be gone. */
static inline void worker_sync_table(struct qg_worker *w, const struct qg_svc_table **cur)
{
	const struct qg_svc_table *t = rcu_dereference(*w->table);

	if (unlikely(t != *cur)) {
		worker_sync_services(w, t);
		qg_relay_set_table(w->relay, t);
		*cur = t;
		/* The control side waits for this before it calls a reload done. */
		QG_STORE_RELEASE(&w->applied_gen, t->generation);
	}
}

static void worker_loop(struct qg_worker *w)
{
	struct qg_pkt *pkts = calloc(w->burst, sizeof(*pkts));
	const struct qg_svc_table *cur = NULL;
	unsigned idle = 0, full_polls = 0;
	uint32_t last_expire = 0, full_since = 0;
	int behind = 0;

	if (!pkts) {
		QG_STORE_RELEASE(&w->status, -ENOMEM);
		return;
	}
	QG_STORE_RELEASE(&w->status, 1);
	while (!QG_LOAD_ACQUIRE(&w->stop)) {
		uint32_t now;
		unsigned n;

		worker_sync_table(w, &cur);
		if (idle >= QG_WORKER_IDLE_POLLS) {
			rcu_thread_offline();
			n = w->ops->rx_burst(w->io, pkts, w->burst, w->sleep_us);
			rcu_thread_online();
			worker_sync_table(w, &cur);
		} else {
			n = w->ops->rx_burst(w->io, pkts, w->burst, 0);
		}
		now = (uint32_t)(qg_telemetry_tick(w->tm, w, n) / 1000000); /* one clock read for both */
		if (n == w->burst && w->overload_guard) {
			if (full_polls++ == 0)
				full_since = now;
			if (unlikely(!behind && full_polls >= QG_WORKER_BEHIND_POLLS &&
				     now - full_since >= QG_WORKER_BEHIND_MS)) {
				behind = 1;
				qg_relay_set_behind(w->relay, 1);
			}
		} else if (full_polls) {
			full_polls = 0;
			if (unlikely(behind)) {
				behind = 0;
				qg_relay_set_behind(w->relay, 0);
			}
		}
		/*
		 * After the receive: a CID another worker learned before its reply
		 * reached the client is here before that client's next datagram.
		 */
		qg_relay_take_peer_cids(w->relay, now);
		worker_commands(w);
		if (n) {
			qg_relay_burst(w->relay, pkts, n, now);
			idle = 0;
		} else {
			idle++;
		}
		/* The bridge's ring, every iteration: polled like a socket, without a syscall. */
		if (qg_relay_bridge_rx(w->relay, now))
			idle = 0;
		w->ops->flush(w->io);
		if (now != last_expire) {
			qg_relay_expire(w->relay, now, QG_WORKER_EXPIRE_MAX);
			last_expire = now;
		}
		rcu_quiescent_state();
	}
	w->ops->flush(w->io);
	if (w->ops->stop)
		w->ops->stop(w->io);
	free(pkts);
}

void *qg_worker_main(void *arg)
{
	struct qg_worker *w = arg;
	int rc;

	worker_pin(w);
	rcu_register_thread();
	rc = w->ops->start(w->io);
	w->sleep_us = QG_WORKER_SLEEP_US;
	if (!rc && w->bridge_fd >= 0 && (!w->ops->watch_fd || w->ops->watch_fd(w->io, w->bridge_fd)))
		w->sleep_us = QG_WORKER_BRIDGE_SLEEP_US;
	if (rc) {
		QG_LOG_ERR("worker %u: %s backend failed to start: %s", w->idx, w->ops->name, strerror(-rc));
		QG_STORE_RELEASE(&w->status, rc);
	} else {
		worker_loop(w);
	}
	rcu_unregister_thread();
	return NULL;
}
