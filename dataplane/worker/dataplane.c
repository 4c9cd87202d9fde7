/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dataplane life cycle and its control-side API. The service table is the
 * one structure workers share: it is published with liburcu's QSBR flavour,
 * whose read side costs workers nothing per packet (one quiescent-state
 * announcement per loop iteration), and replaced, never modified.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "dataplane_internal.h"
#include "qgate/degrade.h"
#include "qgate/flow.h"
#include "qgate/log.h"
#include "qgate/mem.h"
#include "commands.h"
#include "qgate/clock.h"
#include "telemetry.h"

/* Each upstream is a socket: make sure the open-file limit fits them, or shrink the pool. */
static uint32_t fit_fd_limit(uint32_t per_worker, unsigned workers, unsigned services)
{
	uint64_t need = (uint64_t)per_worker * workers + (uint64_t)services * workers + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return per_worker;
	if (rl.rlim_cur < need) {
		struct rlimit want = { need, need > rl.rlim_max ? need : rl.rlim_max };

		/* Raising the hard limit needs CAP_SYS_RESOURCE (and fs.nr_open); else go as far as allowed.
		 */
		if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
			rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= need)
		return per_worker;
	uint64_t fit = rl.rlim_cur > 256 + (uint64_t)services * workers
			       ? (rl.rlim_cur - 256 - (uint64_t)services * workers) / workers
			       : 1;
	QG_LOG_WARN("open-file limit %llu allows %llu upstream sockets per worker, not %u",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)fit, per_worker);
	return fit ? (uint32_t)fit : 1;
}

/* I/O backends report ECONNREFUSED by upstream; the relay knows the upstream's backend slot. */
static void worker_on_refused(void *ctx, uint32_t up)
{
	struct qg_worker *w = ctx;

	if (w->relay)
		qg_relay_upstream_refused(w->relay, up);
}

static int worker_init(struct qg_dataplane *dp, struct qg_worker *w, unsigned idx,
		       const struct qg_config *cfg, uint32_t upstreams, const struct qg_addr *listen)
{
	const struct qg_config_dataplane *d = &cfg->dataplane;
	struct qg_io_params iop;
	struct qg_relay_params rp;
	uint64_t seed;
	int rc;

	w->idx = idx;
	w->bridge_fd = -1;
	w->cpu = d->cores[idx];
	w->burst = d->burst;
	w->overload_guard = d->overload_guard;
	w->ops = dp->ops;
	w->table = &dp->table;
	w->handoff = &dp->handoff[(size_t)idx * QG_CONFIG_MAX_SERVICES];
	w->io_uid = &dp->io_uid[(size_t)idx * QG_CONFIG_MAX_SERVICES];
	for (uint32_t s = 0; s < dp->table->n_services; s++)
		w->io_uid[s] = dp->table->svc[s].uid; /* create() below binds them */
	memset(&iop, 0, sizeof(iop));
	iop.worker = idx;
	iop.n_services = cfg->n_services;
	iop.listen = listen;
	iop.rx_buffers = d->rx_buffers;
	iop.max_datagram = d->max_datagram;
	iop.max_upstreams = upstreams;
	iop.burst = d->burst;
	iop.tx_buffers = qg_dataplane_bt_tx_buffers(cfg);
	iop.udp_gso = d->udp_gso;
	iop.ctr = &w->ctr;
	iop.on_refused = worker_on_refused;
	iop.refused_ctx = w;
	rc = dp->ops->create(&iop, &w->io);
	if (rc)
		return rc;
	upstreams = dp->ops->max_upstreams(w->io);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ idx;
	memset(&rp, 0, sizeof(rp));
	rp.ops = dp->ops;
	rp.io = w->io;
	rp.ctr = &w->ctr;
	rp.table = dp->table;
	rp.flows = d->flows_per_core;
	rp.max_upstreams = upstreams; /* what the instance really holds */
	rp.burst = d->burst;
	rp.slot_cap = dp->slot_cap;
	rp.share = dp->cid_share;
	rp.worker = idx;
	rp.seed = seed;
	return qg_relay_create(&rp, &w->relay);
}

/* A flow table on 4 KiB pages costs a TLB miss per lookup at scale: say what the kernel gave. */
static void log_flow_memory(const struct qg_dataplane *dp)
{
	size_t bytes, huge;

	if (qg_flow_table_memory(qg_relay_flow_table(dp->workers[0].relay), &bytes, &huge))
		return;
	if (bytes >= QG_MEM_HUGE_MIN && huge == 0)
		QG_LOG_WARN("dataplane: flow table %zu MiB per worker, none of it on huge pages "
			    "(transparent huge pages off? /sys/kernel/mm/transparent_hugepage/enabled)",
			    bytes >> 20);
	else
		QG_LOG_INFO("dataplane: flow table %zu MiB per worker, %zu MiB of it on huge pages",
			    bytes >> 20, huge >> 20);
}

int qg_dataplane_create(const struct qg_config *cfg, struct qg_dataplane **out)
{
	const struct qg_config_dataplane *d = &cfg->dataplane;
	struct qg_addr *listen = NULL;
	struct qg_dataplane *dp;
	uint32_t upstreams;
	int rc = -ENOMEM;

	if (d->n_cores == 0 || cfg->n_services == 0 || d->burst == 0)
		return -EINVAL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	pthread_mutex_init(&dp->ctl_lock, NULL);
	dp->ops = qg_io_select(d->io);
	if (!dp->ops) {
		QG_LOG_ERR("dataplane backend %d is not built into this qgate", d->io);
		rc = -ENOTSUP;
		goto err;
	}
	rc = qg_svc_table_build(cfg, 1, &dp->table);
	if (!rc)
		rc = qg_dataplane_bt_init(dp, cfg);
	if (rc)
		goto err;
	rc = -ENOMEM;
	/* Reloads add backends: room for twice today's, at least 1024 more, within what I/O can number. */
	dp->slot_cap = dp->table->n_slots * 2 > dp->table->n_slots + 1024 ? dp->table->n_slots * 2
									  : dp->table->n_slots + 1024;
	if (dp->slot_cap > QG_IO_MAX_BACKEND_SLOTS)
		dp->slot_cap = QG_IO_MAX_BACKEND_SLOTS;
	dp->dcfg = cfg->dataplane;
	dp->next_uid = cfg->n_services + 1;
	dp->n_cfg = cfg->n_services;
	dp->svc_cfg = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*dp->svc_cfg));
	dp->handoff = malloc(sizeof(int) * QG_CONFIG_MAX_SERVICES * d->n_cores);
	dp->io_uid = calloc((size_t)QG_CONFIG_MAX_SERVICES * d->n_cores, sizeof(*dp->io_uid));
	dp->slot_base = calloc(dp->slot_cap + 1, sizeof(*dp->slot_base));
	if (!dp->svc_cfg || !dp->handoff || !dp->io_uid || !dp->slot_base)
		goto err;
	for (size_t k = 0; k < (size_t)QG_CONFIG_MAX_SERVICES * d->n_cores; k++)
		dp->handoff[k] = -1;
	/* Workers tell each other the QUIC CIDs they learn: 4096 notes in flight per pair. */
	if (d->n_cores > 1) {
		rc = qg_cid_share_create(d->n_cores, 4096, &dp->cid_share);
		if (rc)
			goto err;
		rc = -ENOMEM;
	}
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		dp->cfg_index[s] = s;
		dp->svc_cfg[s] = cfg->services[s];
		dp->svc_cfg[s].backends = NULL;
	}
	if (dp->ops->setup) {
		rc = dp->ops->setup(cfg);
		if (rc)
			goto err;
		dp->setup_done = 1;
	}
	rc = -ENOMEM;
	listen = calloc(cfg->n_services, sizeof(*listen));
	dp->workers = aligned_alloc(QG_CACHE_LINE, sizeof(*dp->workers) * d->n_cores);
	if (!listen || !dp->workers)
		goto err;
	memset(dp->workers, 0, sizeof(*dp->workers) * d->n_cores);
	for (uint32_t s = 0; s < cfg->n_services; s++)
		listen[s] = cfg->services[s].listen;
	/* DPDK upstreams are NAT ports, not file descriptors: no open-file limit applies. */
	if (d->io == QG_CONFIG_IO_DPDK)
		upstreams = d->upstream_sockets_per_core;
	else
		upstreams = fit_fd_limit(d->upstream_sockets_per_core, d->n_cores, cfg->n_services);
	for (unsigned i = 0; i < d->n_cores; i++) {
		dp->n_workers = i + 1;
		rc = worker_init(dp, &dp->workers[i], i, cfg, upstreams, listen);
		if (!rc)
			rc = qg_cmd_ring_create(64, &dp->workers[i].cmds);
		if (!rc)
			rc = qg_telemetry_create(i, d->flows_per_core, QG_DATAPLANE_TM_RING_SIZE,
						 QG_DATAPLANE_TM_PERIOD_MS * 1000000ULL, &dp->workers[i].tm);
		if (rc)
			goto err;
	}
	free(listen);
	QG_LOG_INFO("dataplane: %u worker(s), %s backend, %u flows and %u upstreams per worker",
		    dp->n_workers, dp->ops->name, d->flows_per_core,
		    dp->ops->max_upstreams(dp->workers[0].io));
	log_flow_memory(dp);
	*out = dp;
	return 0;
err:
	free(listen);
	qg_dataplane_destroy(dp);
	return rc;
}

int qg_dataplane_start(struct qg_dataplane *dp)
{
	int rc = 0;

	if (dp->running)
		return -EALREADY;
	for (unsigned i = 0; i < dp->n_workers; i++) {
		struct qg_worker *w = &dp->workers[i];

		rc = -pthread_create(&w->thread, NULL, qg_worker_main, w);
		if (rc) {
			QG_LOG_ERR("cannot start worker %u: %s", i, strerror(-rc));
			break;
		}
		w->thread_started = 1;
	}
	dp->running = 1;
	/* Wait until every worker runs or one failed: start-up errors belong to the caller. */
	for (unsigned i = 0; rc == 0 && i < dp->n_workers; i++) {
		struct qg_worker *w = &dp->workers[i];
		int st;

		while ((st = QG_LOAD_ACQUIRE(&w->status)) == 0)
			usleep(1000);
		if (st < 0)
			rc = st;
	}
	if (rc)
		qg_dataplane_stop(dp);
	return rc;
}

void qg_dataplane_stop(struct qg_dataplane *dp)
{
	if (!dp || !dp->running)
		return;
	for (unsigned i = 0; i < dp->n_workers; i++)
		QG_STORE_RELEASE(&dp->workers[i].stop, 1);
	for (unsigned i = 0; i < dp->n_workers; i++) {
		if (dp->workers[i].thread_started)
			pthread_join(dp->workers[i].thread, NULL);
		dp->workers[i].thread_started = 0;
	}
	dp->running = 0;
}

void qg_dataplane_destroy(struct qg_dataplane *dp)
{
	if (!dp)
		return;
	qg_dataplane_stop(dp);
	for (unsigned i = 0; dp->workers && i < dp->n_workers; i++) {
		qg_relay_destroy(dp->workers[i].relay);
		qg_telemetry_destroy(dp->workers[i].tm);
		qg_cmd_ring_destroy(dp->workers[i].cmds);
		if (dp->workers[i].io)
			dp->ops->destroy(dp->workers[i].io);
	}
	free(dp->workers);
	for (size_t k = 0; dp->handoff && k < (size_t)QG_CONFIG_MAX_SERVICES * dp->dcfg.n_cores; k++)
		if (dp->handoff[k] >= 0)
			close(dp->handoff[k]);
	free(dp->handoff);
	free(dp->io_uid);
	free(dp->svc_cfg);
	free(dp->slot_base);
	free(dp->bt_paths);
	qg_cid_share_destroy(dp->cid_share);
	if (dp->setup_done && dp->ops->teardown)
		dp->ops->teardown();
	qg_svc_table_free(dp->table);
	pthread_mutex_destroy(&dp->ctl_lock);
	free(dp);
}

const char *qg_dataplane_io_name(const struct qg_dataplane *dp)
{
	return dp->ops->name;
}

unsigned qg_dataplane_workers(const struct qg_dataplane *dp)
{
	return dp->n_workers;
}

void qg_dataplane_publish(struct qg_dataplane *dp, struct qg_svc_table *nt)
{
	struct qg_svc_table *old = dp->table;

	rcu_assign_pointer(dp->table, nt);
	/* Every worker passes a quiescent state within one loop iteration (or is offline). */
	synchronize_rcu();
	qg_svc_table_free(old);
}

int qg_dataplane_set_weight(struct qg_dataplane *dp, const char *service, const struct qg_addr *backend,
			    uint32_t weight)
{
	struct qg_svc_table *old, *nt = NULL;
	int rc = -ENOENT;

	pthread_mutex_lock(&dp->ctl_lock);
	old = dp->table;
	for (uint32_t s = 0; s < old->n_services && rc == -ENOENT; s++) {
		if (strcmp(old->svc[s].name, service) != 0)
			continue;
		for (uint32_t b = 0; b < old->svc[s].n_backends; b++) {
			if (qg_addr_equal(&old->svc[s].backends[b].addr, backend)) {
				rc = qg_svc_table_with_weight(old, s, b, weight, &nt);
				break;
			}
		}
	}
	if (rc == 0)
		qg_dataplane_publish(dp, nt);
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

int qg_dataplane_drain(struct qg_dataplane *dp)
{
	struct qg_svc_table *nt = NULL;
	int rc = 0;

	pthread_mutex_lock(&dp->ctl_lock);
	if (!dp->table->draining) {
		rc = qg_svc_table_with_draining(dp->table, &nt);
		if (rc == 0)
			qg_dataplane_publish(dp, nt);
	}
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

int qg_dataplane_set_level(struct qg_dataplane *dp, unsigned level)
{
	struct qg_svc_table *nt = NULL;
	int rc = 0;

	if (level > QG_DEGRADE_ESSENTIAL)
		return -EINVAL;
	pthread_mutex_lock(&dp->ctl_lock);
	if (dp->table->level != level) {
		rc = qg_svc_table_with_level(dp->table, level, &nt);
		if (rc == 0)
			qg_dataplane_publish(dp, nt);
	}
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

int qg_dataplane_set_backend_state(struct qg_dataplane *dp, unsigned svc, unsigned b, int up)
{
	struct qg_svc_table *nt = NULL;
	int rc = -ENOENT;

	pthread_mutex_lock(&dp->ctl_lock);
	if (svc < dp->n_cfg && b < dp->table->svc[dp->cfg_index[svc]].n_backends) {
		svc = dp->cfg_index[svc];
		rc = 0;
		if (!dp->table->svc[svc].backends[b].up != !up)
			rc = qg_svc_table_with_state(dp->table, svc, b, up, &nt);
		if (rc == 0 && nt)
			qg_dataplane_publish(dp, nt);
	}
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

void qg_dataplane_worker_counters(const struct qg_dataplane *dp, unsigned worker, struct qg_ctr_block *out)
{
	if (worker < dp->n_workers)
		qg_ctr_sum(&dp->workers[worker].ctr, 1, out);
	else
		memset(out, 0, sizeof(*out));
}

void qg_dataplane_counters(const struct qg_dataplane *dp, struct qg_ctr_block *out)
{
	struct qg_ctr_block one;

	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < dp->n_workers; w++) {
		qg_ctr_sum(&dp->workers[w].ctr, 1, &one);
		for (unsigned i = 0; i < QG_CTR__COUNT; i++)
			out->v[i] += one.v[i];
	}
}

int qg_dataplane_wait_acks(const struct qg_dataplane *dp, size_t field, uint64_t target, uint32_t timeout_ms)
{
	uint64_t deadline = qg_clock_ms() + timeout_ms;

	/* Workers apply between bursts, or within 5 ms of waking when idle. */
	for (unsigned w = 0; w < dp->n_workers; w++) {
		const uint64_t *ack = (const uint64_t *)((const char *)&dp->workers[w] + field);

		while (QG_LOAD_ACQUIRE(ack) < target) {
			if (qg_clock_ms() > deadline)
				return -ETIMEDOUT;
			usleep(200);
		}
	}
	return 0;
}

long qg_dataplane_flush_backend(struct qg_dataplane *dp, unsigned svc, unsigned b)
{
	struct qg_worker_cmd c;
	uint64_t before = 0, after = 0;
	long rc = 0;

	pthread_mutex_lock(&dp->ctl_lock);
	if (svc >= dp->n_cfg || b >= dp->table->svc[dp->cfg_index[svc]].n_backends) {
		rc = -ENOENT;
		goto out;
	}
	if (!dp->running) {
		rc = -ENODEV;
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.op = QG_WORKER_CMD_FLUSH_BACKEND;
	c.svc = dp->cfg_index[svc];
	c.slot = dp->table->svc[c.svc].backends[b].slot;
	c.seq = ++dp->cmd_seq;
	for (unsigned w = 0; w < dp->n_workers; w++) {
		before += QG_LOAD_RELAXED(&dp->workers[w].cmd_flows);
		if (qg_cmd_ring_push(dp->workers[w].cmds, &c)) {
			rc = -ENOBUFS;
			goto out;
		}
	}
	rc = qg_dataplane_wait_acks(dp, offsetof(struct qg_worker, cmd_done), c.seq, 2000);
	if (rc)
		goto out;
	for (unsigned w = 0; w < dp->n_workers; w++)
		after += QG_LOAD_RELAXED(&dp->workers[w].cmd_flows);
	rc = (long)(after - before);
out:
	pthread_mutex_unlock(&dp->ctl_lock);
	return rc;
}

void qg_dataplane_slot_sum(const struct qg_dataplane *dp, uint32_t slot, struct qg_backend_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < dp->n_workers; w++) {
		const struct qg_relay_bstat *s = &qg_relay_bstats(dp->workers[w].relay)[slot];

		out->tx_pkts += QG_LOAD_RELAXED(&s->tx_pkts);
		out->rx_pkts += QG_LOAD_RELAXED(&s->rx_pkts);
		out->tx_bytes += QG_LOAD_RELAXED(&s->tx_bytes);
		out->rx_bytes += QG_LOAD_RELAXED(&s->rx_bytes);
		out->flows_created += QG_LOAD_RELAXED(&s->flows_created);
		out->flows_active += QG_LOAD_RELAXED(&s->flows_active);
		out->refused += QG_LOAD_RELAXED(&s->refused);
	}
}

int qg_dataplane_backend_stats(const struct qg_dataplane *dp, unsigned svc, unsigned b,
			       struct qg_backend_stats *out)
{
	const struct qg_svc_table *t = dp->table;
	const struct qg_backend_stats *base;
	uint32_t slot;

	memset(out, 0, sizeof(*out));
	if (svc >= dp->n_cfg || b >= t->svc[dp->cfg_index[svc]].n_backends)
		return -ENOENT;
	slot = t->svc[dp->cfg_index[svc]].backends[b].slot;
	qg_dataplane_slot_sum(dp, slot, out);
	/* A slot reused by a reload: its new backend's counters start from zero. */
	base = &dp->slot_base[slot];
	out->tx_pkts -= base->tx_pkts;
	out->rx_pkts -= base->rx_pkts;
	out->tx_bytes -= base->tx_bytes;
	out->rx_bytes -= base->rx_bytes;
	out->flows_created -= base->flows_created;
	out->refused -= base->refused;
	return 0;
}

uint64_t qg_dataplane_flows_active(const struct qg_dataplane *dp, unsigned svc)
{
	uint64_t n = 0;

	if (svc >= dp->n_cfg)
		return 0;
	svc = dp->cfg_index[svc];
	for (unsigned w = 0; w < dp->n_workers; w++)
		n += qg_relay_flows_active(dp->workers[w].relay, svc);
	return n;
}

unsigned qg_dataplane_telemetry_poll(struct qg_dataplane *dp, qg_dataplane_tm_fn fn, void *ctx)
{
	unsigned n = 0;

	for (unsigned w = 0; w < dp->n_workers; w++)
		n += qg_telemetry_poll(dp->workers[w].tm, fn, ctx);
	return n;
}

int qg_dataplane_port_stats(const struct qg_dataplane *dp, unsigned i, struct qg_io_port_stats *out)
{
	if (!dp->ops->port_stats)
		return -ENOTSUP;
	if (!dp->setup_done)
		return -ENOENT;
	return dp->ops->port_stats(i, out);
}

int qg_dataplane_ring_stats(const struct qg_dataplane *dp, unsigned worker, struct qg_ring_stats *out)
{
	if (worker >= dp->n_workers)
		return -ENOENT;
	qg_telemetry_stats(dp->workers[worker].tm, out);
	return 0;
}
