/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/degrade.h"
#include "qgate/flow.h"
#include "qgate/hash.h"
#include "qgate/log.h"
#include "qgate/mem.h"
#include "relay_internal.h"

/*
 * An upstream closed at once during a burst could be opened again, index and
 * file descriptor number alike, by a new flow later in the same burst; a
 * datagram already queued in to_backend for the removed flow (a QUIC
 * migration or a stale 4-tuple removing another flow, an eviction) would then
 * leave through the new flow's socket to its backend, and the answer reach the
 * new flow's client: one client's datagram delivered to another
 * (perf/faults/crossflow.py). So the close of an upstream this burst queued a
 * datagram to waits, and the next burst runs it once the I/O backend has pushed
 * out what was queued. Others (an evicted idle flow's) close at once: their
 * index is free for the flow that evicted them.
 */
static void relay_upstream_close(struct qg_relay *r, const struct qg_flow *f, uint32_t up, int reuse)
{
	if (unlikely(r->in_burst && QG_RELAY_FLOW_QUEUED_SEQ(f) == r->burst_seq) &&
	    r->n_deferred < r->deferred_cap) {
		r->deferred[r->n_deferred].up = up;
		r->deferred[r->n_deferred++].reuse = reuse;
		return;
	}
	r->ops->upstream_close(r->io, up, reuse);
}

static void relay_close_deferred(struct qg_relay *r)
{
	if (likely(!r->n_deferred))
		return;
	/* What was queued for them goes out on the sockets it was queued for, then they close. */
	if (r->ops->flush)
		r->ops->flush(r->io);
	for (uint32_t i = 0; i < r->n_deferred; i++)
		r->ops->upstream_close(r->io, r->deferred[i].up, r->deferred[i].reuse);
	r->n_deferred = 0;
}

static void relay_on_remove(void *ctx, uint32_t idx, const struct qg_flow *f, enum qg_flow_reason why)
{
	struct qg_relay *r = ctx;

	if (unlikely(qg_relay_up_is_bt(f->upstream))) {
		qg_relay_bt_close(r, f->upstream);
	} else if (f->upstream != QG_FLOW_NONE) {
		r->up_flow[f->upstream] = QG_FLOW_NONE;
		relay_upstream_close(r, f, f->upstream, why == QG_FLOW_REASON_EXPIRED);
	}
	if (f->backend != QG_FLOW_NONE) {
		r->slot_active[f->backend]--;
		QG_STORE_RELAXED(&r->bstat[f->backend].flows_active, r->bstat[f->backend].flows_active - 1);
	}
	QG_STORE_RELAXED(&r->svc_active[f->svc], r->svc_active[f->svc] - 1);
	if (r->cids)
		qg_cid_forget_flow(r->cids, idx);
	if (why == QG_FLOW_REASON_EXPIRED)
		qg_ctr_add(r->ctr, QG_CTR_FLOW_EXPIRED, 1);
	else if (why == QG_FLOW_REASON_EVICTED)
		qg_ctr_add(r->ctr, QG_CTR_FLOW_EVICTED, 1);
}

uint64_t qg_relay_client_hash(const struct qg_svc *s, const struct qg_addr *client)
{
	struct qg_addr key[2];

	switch (s->hash) {
	case QG_CONFIG_HASH_SRC_IP:
		return qg_hash_ip(client, QG_SELECT_SEED);
	case QG_CONFIG_HASH_SRC_IP_PORT:
		return qg_hash_addr(client, QG_SELECT_SEED);
	default:
		/* Protocol is fixed per service; the VIP makes two services' spreads independent. */
		key[0] = *client;
		key[1] = s->listen;
		return qg_hash_bytes(key, sizeof(key), QG_SELECT_SEED);
	}
}

uint32_t qg_relay_select(struct qg_relay *r, uint16_t svc_idx, const struct qg_svc *s, uint64_t hash)
{
	switch (s->policy) {
	case QG_CONFIG_POLICY_WRR:
		return qg_wrr_next(r->wrr[svc_idx]);
	case QG_CONFIG_POLICY_LEAST_CONN:
		/* Slots of a service need not be adjacent (reloads): gather their counts. */
		for (uint32_t b = 0; b < s->n_backends; b++)
			r->lc_active[b] = r->slot_active[s->backends[b].slot];
		return qg_lc_pick(r->lc_active, s->weights, s->n_backends, &r->lc_cursor[svc_idx]);
	default:
		return qg_maglev_lookup(s->maglev, hash);
	}
}

/* Open a flow for p toward member, whatever the admission rules of qg_relay_new_flow_to(). */
static uint32_t relay_flow_open(struct qg_relay *r, const struct qg_pkt *p, uint32_t member, uint32_t now_ms)
{
	const struct qg_svc *s = &r->table->svc[p->svc];
	struct qg_flow *f;
	uint32_t idx, up, slot;
	int rc;

	if (unlikely(member == QG_LB_NONE || member >= s->n_backends)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_NO_BACKEND, 1);
		return QG_FLOW_NONE;
	}
	rc = qg_flow_insert(r->flows, p->svc, &p->peer, now_ms, &idx);
	if (unlikely(rc)) {
		qg_ctr_add(r->ctr, rc == -EDQUOT ? QG_CTR_DROP_CLIENT_LIMIT : QG_CTR_DROP_FLOW_TABLE_FULL, 1);
		return QG_FLOW_NONE;
	}
	f = qg_flow_get(r->flows, idx);
	QG_STORE_RELAXED(&r->svc_active[p->svc], r->svc_active[p->svc] + 1);
	slot = s->backends[member].slot;
	/* Through the bridge (its chosen path is Bluetooth): the flow's "upstream" is a tag the bridge knows.
	 */
	if (unlikely(s->backends[member].via_bt))
		rc = qg_relay_bt_open(r, p->svc, member, idx, &up);
	else
		rc = r->ops->upstream_open(r->io, slot, &s->backends[member].addr, &up);
	/*
	 * Every upstream is held by a live flow (a flood of new sources with
	 * fewer upstreams than flow entries): the service's least recent flow
	 * gives its up, as a full flow table would evict it, rather than every
	 * new client being refused until the flood's flows expire.
	 */
	if (unlikely(rc == -ENOSPC) && !s->backends[member].via_bt &&
	    qg_flow_evict_oldest(r->flows, p->svc, idx) == 0)
		rc = r->ops->upstream_open(r->io, slot, &s->backends[member].addr, &up);
	if (unlikely(rc || (up >= r->max_upstreams && !qg_relay_up_is_bt(up)))) {
		qg_ctr_add(r->ctr,
			   rc == -ENOSPC     ? QG_CTR_DROP_UPSTREAM_EXHAUSTED
			   : rc == -ENOTCONN ? QG_CTR_DROP_NO_BRIDGE
					     : QG_CTR_DROP_UPSTREAM_OPEN,
			   1);
		qg_flow_remove(r->flows, idx);
		return QG_FLOW_NONE;
	}
	f->backend = slot;
	f->upstream = up;
	if (likely(!qg_relay_up_is_bt(up)))
		r->up_flow[up] = idx;
	r->slot_active[slot]++;
	QG_STORE_RELAXED(&r->bstat[slot].flows_active, r->bstat[slot].flows_active + 1);
	QG_COUNTER_ADD(&r->bstat[slot].flows_created, 1);
	qg_ctr_add(r->ctr, QG_CTR_FLOW_CREATED, 1);
	return idx;
}

uint32_t qg_relay_new_flow_to(struct qg_relay *r, const struct qg_pkt *p, uint32_t member, uint32_t now_ms)
{
	const struct qg_svc *s = &r->table->svc[p->svc];

	if (unlikely(r->table->draining)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_DRAINING, 1);
		return QG_FLOW_NONE;
	}
	/* Graceful degradation: shed refuses low-priority services, essential every new flow. */
	if (unlikely(r->table->level >= QG_DEGRADE_SHED) &&
	    (r->table->level >= QG_DEGRADE_ESSENTIAL || s->priority == QG_CONFIG_PRIORITY_LOW)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_SHED, 1);
		return QG_FLOW_NONE;
	}
	/*
	 * A worker behind its receive queue serves the flows it has first: a new
	 * flow's first datagram costs an upstream (a socket, its connect and
	 * armed receive; under a flood also the evicted flow's close and
	 * cancel), and every datagram queued behind it waits for that work. The
	 * degradation controller refuses new flows too, but only after its next
	 * sample, and not at all when it only observes (perf/faults.sh f,
	 * docs/RELIABILITY.md).
	 */
	if (unlikely(r->behind)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_OVERLOAD, 1);
		return QG_FLOW_NONE;
	}
	return relay_flow_open(r, p, member, now_ms);
}

void qg_relay_set_behind(struct qg_relay *r, int behind)
{
	r->behind = behind;
}

/* Create the flow of a UDP client's first datagram. @return its index or QG_FLOW_NONE (counted). */
static uint32_t relay_new_flow(struct qg_relay *r, const struct qg_pkt *p, uint32_t now_ms)
{
	const struct qg_svc *s = &r->table->svc[p->svc];

	return qg_relay_new_flow_to(r, p, qg_relay_select(r, p->svc, s, qg_relay_client_hash(s, &p->peer)),
				    now_ms);
}

int qg_relay_path_stale(const struct qg_relay *r, const struct qg_svc_backend *be, uint32_t up)
{
	if (up == QG_FLOW_NONE)
		return 0;
	if (!qg_relay_up_is_bt(up))
		return be->via_bt;
	return !be->via_bt || qg_relay_bt_path_of(r, up) != be->bt_path;
}

void qg_relay_path_move(struct qg_relay *r, uint16_t svc, uint32_t member, uint32_t idx)
{
	const struct qg_svc_backend *be = &r->table->svc[svc].backends[member];
	struct qg_flow *f = qg_flow_get(r->flows, idx);
	uint32_t old = f->upstream, up;
	int rc;

	if (be->via_bt)
		rc = qg_relay_bt_open(r, svc, member, idx, &up);
	else
		rc = r->ops->upstream_open(r->io, be->slot, &be->addr, &up);
	/* Nowhere to go (no tag, no socket, a path the bridge does not know): the old path is no worse. */
	if (unlikely(rc || (!qg_relay_up_is_bt(up) && up >= r->max_upstreams))) {
		if (!rc && !qg_relay_up_is_bt(up))
			r->ops->upstream_close(r->io, up, 0);
		return;
	}
	/* Not reused: a socket the path was left for may carry an error for whoever takes it next. */
	if (qg_relay_up_is_bt(old)) {
		qg_relay_bt_close(r, old);
	} else {
		r->up_flow[old] = QG_FLOW_NONE;
		relay_upstream_close(r, f, old, 0);
	}
	f->upstream = up;
	if (!qg_relay_up_is_bt(up))
		r->up_flow[up] = idx;
	qg_ctr_add(r->ctr, QG_CTR_FLOW_PATH_MOVED, 1);
}

/* A flow of a multi-path service: onto its backend's published path when that changed. */
static void relay_follow_path(struct qg_relay *r, uint16_t svc, uint32_t idx)
{
	const struct qg_svc *s = &r->table->svc[svc];
	const struct qg_flow *f = qg_flow_get(r->flows, idx);
	uint32_t member = qg_svc_slot_member(r->table, s, f->backend);

	if (member != QG_LB_NONE && qg_relay_path_stale(r, &s->backends[member], f->upstream))
		qg_relay_path_move(r, svc, member, idx);
}

/*
 * on_backend_down: rehome. A UDP flow whose backend is marked down moves to
 * the backend selection picks now: the old flow (and its upstream socket) is
 * removed and a new one created for this very datagram, so the client sees
 * no gap beyond what was lost before the backend was marked down. When no
 * backend is up the flow stays: its backend is no worse than none. QUIC
 * flows never come here (a connection cannot move to another server).
 * @return the flow to use (idx itself when it stays).
 */
static uint32_t relay_rehome(struct qg_relay *r, const struct qg_pkt *p, uint32_t idx, uint32_t now_ms)
{
	const struct qg_svc *s = &r->table->svc[p->svc];
	const struct qg_flow *f = qg_flow_get(r->flows, idx);
	uint32_t member = qg_svc_slot_member(r->table, s, f->backend);

	/* A multi-path backend switched paths: the flow follows, to the same backend. */
	if (unlikely(s->multipath) && member != QG_LB_NONE &&
	    qg_relay_path_stale(r, &s->backends[member], f->upstream))
		qg_relay_path_move(r, p->svc, member, idx);

	/* A backend removed by a reload counts as down. */
	if (likely(!s->rehome || (member != QG_LB_NONE && s->backends[member].up)))
		return idx;
	member = qg_relay_select(r, p->svc, s, qg_relay_client_hash(s, &p->peer));
	if (member == QG_LB_NONE)
		return idx;
	qg_flow_remove(r->flows, idx);
	qg_ctr_add(r->ctr, QG_CTR_FLOW_REHOMED, 1);
	/*
	 * Not a new flow but an established one moving: draining and the
	 * degradation levels, which refuse new flows only, do not apply (else a
	 * backend failing at level essential or during a drain would cut its
	 * clients off until the level falls; perf/faults.sh scenario h).
	 */
	return relay_flow_open(r, p, member, now_ms);
}

void qg_relay_upstream_refused(struct qg_relay *r, uint32_t up)
{
	uint32_t idx = up < r->max_upstreams ? r->up_flow[up] : QG_FLOW_NONE;
	const struct qg_flow *f;

	if (idx == QG_FLOW_NONE)
		return;
	f = qg_flow_get(r->flows, idx);
	if (f->backend < r->n_slots)
		QG_COUNTER_ADD(&r->bstat[f->backend].refused, 1);
}

/*
 * Issue the burst's flow-table memory accesses before using any: each key's
 * home entry first, then, for a flow displaced from home, the first entry of
 * that home's chain. With a million flows every lookup misses the caches;
 * overlapping the misses cut the lookup cost by a third in qgate-flowbench
 * (docs/PERFORMANCE.md).
 */
static void relay_prefetch(struct qg_relay *r, const struct qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct qg_pkt *p = &pkts[i];

		if (p->dir == QG_PKT_FROM_CLIENT) {
			if (likely(p->svc < r->n_services))
				r->hash[i] = qg_flow_prefetch(r->flows, p->svc, &p->peer);
		} else if (likely(p->upstream < r->max_upstreams)) {
			qg_prefetch(&r->up_flow[p->upstream]);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		const struct qg_pkt *p = &pkts[i];

		if (p->dir == QG_PKT_FROM_CLIENT) {
			if (likely(p->svc < r->n_services))
				qg_flow_prefetch_entry(r->flows, r->hash[i]);
		} else if (likely(p->upstream < r->max_upstreams) &&
			   r->up_flow[p->upstream] != QG_FLOW_NONE) {
			qg_prefetch(qg_flow_get(r->flows, r->up_flow[p->upstream]));
		}
	}
}

/*
 * Toward client peer, answering from service svc: out through the I/O
 * backend, or for a Bluetooth client link copied into the bridge's ring and
 * the buffer given back. The packet is copied into the output burst before the
 * copy is addressed: a 16-byte load over fields just stored by narrower stores
 * would wait for them to reach the cache (as toward a backend).
 */
static inline void relay_to_client(struct qg_relay *r, struct qg_pkt *p, const struct qg_addr *peer,
				   uint16_t svc, unsigned *nc, unsigned *nd)
{
	struct qg_pkt *q;

	if (unlikely(peer->family == AF_BLUETOOTH)) {
		if (peer != &p->peer)
			p->peer = *peer;
		p->svc = svc;
		qg_relay_bt_send(r, p, 1);
		r->drop[(*nd)++] = *p;
		return;
	}
	q = &r->to_client[(*nc)++];
	*q = *p;
	q->peer = *peer;
	q->svc = svc;
}

/* One burst of at most r->burst packets (the scratch arrays' size). */
static void relay_burst(struct qg_relay *r, struct qg_pkt *pkts, unsigned n, uint32_t now_ms)
{
	unsigned nb = 0, nc = 0, nd = 0, from_client = 0;
	uint64_t bytes = 0;

	relay_prefetch(r, pkts, n);
	for (unsigned i = 0; i < n; i++) {
		struct qg_pkt *p = &pkts[i];
		struct qg_flow *f;
		uint32_t idx;

		bytes += p->len;
		if (p->dir == QG_PKT_FROM_CLIENT) {
			from_client++;
			if (unlikely(p->flags & QG_PKT_F_OVERSIZE)) {
				qg_ctr_add(r->ctr, QG_CTR_DROP_OVERSIZE, 1);
				r->drop[nd++] = *p;
				continue;
			}
			if (unlikely(p->svc >= r->n_services || !r->svc_uid[p->svc])) {
				qg_ctr_add(r->ctr, QG_CTR_DROP_NO_SERVICE, 1);
				r->drop[nd++] = *p;
				continue;
			}
			if (r->table->svc[p->svc].protocol == QG_CONFIG_PROTO_QUIC) {
				int v = qg_quic_route_client(r, p, r->hash[i], now_ms, &idx);

				if (v == QG_QROUTE_DROP) {
					r->drop[nd++] = *p;
					continue;
				}
				if (v == QG_QROUTE_ANSWER) {
					relay_to_client(r, p, &p->peer, p->svc, &nc, &nd);
					continue;
				}
				if (unlikely(r->table->svc[p->svc].multipath))
					relay_follow_path(r, p->svc, idx);
			} else {
				idx = qg_flow_lookup_hashed(r->flows, p->svc, &p->peer, r->hash[i], now_ms);
				if (unlikely(idx == QG_FLOW_NONE))
					idx = relay_new_flow(r, p, now_ms);
				else
					idx = relay_rehome(r, p, idx, now_ms);
				if (unlikely(idx == QG_FLOW_NONE)) {
					r->drop[nd++] = *p;
					continue;
				}
			}
			f = qg_flow_get(r->flows, idx);
			QG_COUNTER_ADD(&r->bstat[f->backend].tx_pkts, 1);
			QG_COUNTER_ADD(&r->bstat[f->backend].tx_bytes, p->len);
			if (unlikely(qg_relay_up_is_bt(f->upstream))) {
				/* Copied into the bridge's ring; the buffer is released with the drops. */
				p->upstream = f->upstream;
				qg_relay_bt_send(r, p, 0);
				r->drop[nd++] = *p;
				continue;
			}
			/* What tx_backend will read for this upstream: the rest of the burst's lookups
			 * hide the miss instead of tx_backend's first packets waiting for it. */
			if (r->up_state && likely(f->upstream < r->max_upstreams))
				qg_prefetch(r->up_state + (size_t)f->upstream * r->up_stride);
			/* In the flow's own line, already in cache: a per-upstream array was a miss at 1M
			 * flows. */
			QG_RELAY_FLOW_QUEUED_SEQ(f) = r->burst_seq;
			/* Copy, then set the upstream in the copy: a 16-byte load over a field just
			 * stored would wait for that store to reach the cache. */
			r->to_backend[nb] = *p;
			r->to_backend[nb++].upstream = f->upstream;
		} else {
			if (unlikely(p->flags & QG_PKT_F_OVERSIZE)) {
				qg_ctr_add(r->ctr, QG_CTR_DROP_OVERSIZE, 1);
				r->drop[nd++] = *p;
				continue;
			}
			idx = likely(p->upstream < r->max_upstreams) ? r->up_flow[p->upstream]
								     : qg_relay_bt_flow(r, p->upstream);
			if (unlikely(idx == QG_FLOW_NONE)) {
				qg_ctr_add(r->ctr, QG_CTR_DROP_STALE_REPLY, 1);
				r->drop[nd++] = *p;
				continue;
			}
			qg_flow_touch(r->flows, idx, now_ms);
			f = qg_flow_get(r->flows, idx);
			if (r->cids && r->table->svc[f->svc].protocol == QG_CONFIG_PROTO_QUIC)
				qg_quic_learn_reply(r, p, f->svc, idx); /* reads the payload only */
			QG_COUNTER_ADD(&r->bstat[f->backend].rx_pkts, 1);
			QG_COUNTER_ADD(&r->bstat[f->backend].rx_bytes, p->len);
			relay_to_client(r, p, &f->client, f->svc, &nc, &nd);
		}
	}
	qg_ctr_add(r->ctr, QG_CTR_RX_CLIENT, from_client);
	qg_ctr_add(r->ctr, QG_CTR_RX_BACKEND, n - from_client);
	qg_ctr_add(r->ctr, QG_CTR_RX_BYTES, bytes);
	if (nb) {
		qg_ctr_add(r->ctr, QG_CTR_TX_BACKEND, nb);
		r->ops->tx_backend(r->io, r->to_backend, nb);
	}
	if (nc) {
		qg_ctr_add(r->ctr, QG_CTR_TX_CLIENT, nc);
		r->ops->tx_client(r->io, r->to_client, nc);
	}
	if (nd)
		r->ops->release(r->io, r->drop, nd);
}

void qg_relay_burst(struct qg_relay *r, struct qg_pkt *pkts, unsigned n, uint32_t now_ms)
{
	/* A larger batch is taken in slices; upstreams a slice removed close before the next. */
	while (n) {
		unsigned k = n < r->burst ? n : r->burst;

		relay_close_deferred(r);
		if (unlikely(++r->burst_seq == 0))
			r->burst_seq = 1;
		r->in_burst = 1;
		relay_burst(r, pkts, k, now_ms);
		r->in_burst = 0;
		pkts += k;
		n -= k;
	}
}

unsigned qg_relay_expire(struct qg_relay *r, uint32_t now_ms, unsigned budget)
{
	return qg_flow_expire(r->flows, now_ms, budget);
}

/* Drop a service's per-worker selection and QUIC state. */
static void relay_svc_teardown(struct qg_relay *r, uint32_t i)
{
	qg_wrr_destroy(r->wrr[i]);
	r->wrr[i] = NULL;
	r->lc_cursor[i] = 0;
	qg_quic_relay_svc_fini(r, i);
}

/* Build a service's per-worker state from the current table. 0 or -errno. */
static int relay_svc_setup(struct qg_relay *r, uint32_t i)
{
	const struct qg_svc *s = &r->table->svc[i];
	int rc = 0;

	relay_svc_teardown(r, i);
	qg_flow_set_service(r->flows, (uint16_t)i, s->idle_timeout_ms, s->max_flows_per_client);
	if (s->policy == QG_CONFIG_POLICY_WRR && s->n_backends)
		rc = qg_wrr_create(s->weights, s->n_backends, &r->wrr[i]);
	if (rc == 0)
		rc = qg_quic_relay_svc_init(r, i);
	return rc;
}

void qg_relay_set_table(struct qg_relay *r, const struct qg_svc_table *t)
{
	uint32_t n = t->n_services > r->n_services ? t->n_services : r->n_services;

	r->table = t;
	for (uint32_t i = 0; i < n; i++) {
		const struct qg_svc *s = i < t->n_services ? &t->svc[i] : NULL;
		uint32_t uid = s ? s->uid : 0;
		int rc;

		if (r->svc_uid[i] != uid) {
			/* Removed, or its listen address changed: its flows cannot be answered any more. */
			if (r->svc_uid[i])
				qg_flow_remove_service(r->flows, (uint16_t)i);
			relay_svc_teardown(r, i);
			r->svc_uid[i] = uid;
			r->svc_ver[i] = 0;
		}
		if (!uid)
			continue;
		if (r->svc_ver[i] != s->version) {
			/* A reload changed its settings: rebuilt here, on the worker, between bursts. */
			rc = relay_svc_setup(r, i);
			if (rc)
				QG_LOG_ERR("service %s: cannot set up its worker state: %s", s->name,
					   strerror(-rc));
			r->svc_ver[i] = s->version;
			continue;
		}
		if (r->wrr[i])
			qg_wrr_set_weights(r->wrr[i], s->weights, s->n_backends);
	}
	r->n_services = t->n_services;
	r->n_slots = t->n_slots;
}

static void relay_peer_note(void *ctx, const struct qg_cid_note *n)
{
	struct qg_relay *r = ctx;

	qg_quic_peer_note(r, n, r->now_ms);
}

void qg_relay_take_peer_cids(struct qg_relay *r, uint32_t now_ms)
{
	if (!r->peer_cids)
		return;
	r->now_ms = now_ms;
	qg_cid_share_drain(r->share, r->worker, relay_peer_note, r);
}

const struct qg_relay_bstat *qg_relay_bstats(const struct qg_relay *r)
{
	return r->bstat;
}

const struct qg_flow_table *qg_relay_flow_table(const struct qg_relay *r)
{
	return r->flows;
}

uint64_t qg_relay_flows_active(const struct qg_relay *r, unsigned svc)
{
	return svc < r->svc_cap ? QG_LOAD_RELAXED(&r->svc_active[svc]) : 0;
}

int qg_relay_create(const struct qg_relay_params *p, struct qg_relay **out)
{
	const struct qg_svc_table *t = p->table;
	struct qg_flow_table_params fp;
	struct qg_relay *r;
	uint32_t sc = QG_CONFIG_MAX_SERVICES, kc;
	int rc = -ENOMEM;

	kc = p->slot_cap > t->n_slots ? p->slot_cap : t->n_slots;
	if (t->n_services > sc)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ops = p->ops;
	r->io = p->io;
	r->ctr = p->ctr;
	r->table = t;
	r->svc_cap = sc;
	r->slot_cap = kc;
	r->flow_cap = p->flows;
	r->share = p->share;
	r->worker = p->worker;
	r->max_upstreams = p->max_upstreams;
	if (r->ops->upstream_state) {
		const void *base = NULL;

		r->ops->upstream_state(r->io, &base, &r->up_stride);
		r->up_state = base;
	}
	r->burst = p->burst;
	/* Indexed by upstream, at random with many flows: huge pages (qgate/mem.h). */
	r->up_flow = qg_mem_alloc(sizeof(*r->up_flow) * p->max_upstreams);
	r->bstat = aligned_alloc(QG_CACHE_LINE, (sizeof(*r->bstat) * (kc + 1) + QG_CACHE_LINE - 1) /
							QG_CACHE_LINE * QG_CACHE_LINE);
	r->slot_active = calloc(kc + 1, sizeof(*r->slot_active));
	r->lc_active = calloc(QG_CONFIG_MAX_BACKENDS, sizeof(*r->lc_active));
	r->svc_active = calloc(sc, sizeof(*r->svc_active));
	r->svc_uid = calloc(sc, sizeof(*r->svc_uid));
	r->svc_ver = calloc(sc, sizeof(*r->svc_ver));
	r->wrr = calloc(sc, sizeof(*r->wrr));
	r->lc_cursor = calloc(sc, sizeof(*r->lc_cursor));
	r->timeouts = calloc(sc, sizeof(*r->timeouts));
	r->limits = calloc(sc, sizeof(*r->limits));
	r->to_backend = calloc(p->burst, sizeof(struct qg_pkt));
	r->to_client = calloc(p->burst, sizeof(struct qg_pkt));
	r->drop = calloc(p->burst, sizeof(struct qg_pkt));
	r->hash = calloc(p->burst, sizeof(*r->hash));
	r->deferred_cap = 3 * p->burst;
	r->deferred = calloc(r->deferred_cap, sizeof(*r->deferred));
	r->burst_seq = 1;
	r->quic = calloc(sc, sizeof(*r->quic));
	if (!r->hash || !r->quic || !r->up_flow || !r->bstat || !r->slot_active || !r->svc_active ||
	    !r->wrr || !r->lc_cursor || !r->timeouts || !r->limits || !r->to_backend || !r->to_client ||
	    !r->drop || !r->lc_active || !r->svc_uid || !r->svc_ver || !r->deferred)
		goto err;
	memset(r->bstat, 0, sizeof(*r->bstat) * (kc + 1));
	for (uint32_t i = 0; i < p->max_upstreams; i++)
		r->up_flow[i] = QG_FLOW_NONE;
	for (uint32_t i = 0; i < sc; i++)
		qg_quic_lb_ring_init(&r->quic[i].ring);
	/* Room for every service index a reload may use; services set their own values below. */
	memset(&fp, 0, sizeof(fp));
	fp.capacity = p->flows;
	fp.n_services = sc;
	fp.idle_timeout_ms = r->timeouts;
	fp.max_flows_per_client = r->limits;
	fp.seed = p->seed;
	fp.on_remove = relay_on_remove;
	fp.cb_ctx = r;
	fp.lru_grain_ms = QG_RELAY_LRU_GRAIN_MS;
	rc = qg_flow_table_create(&fp, &r->flows);
	if (rc) {
		QG_LOG_ERR("cannot allocate a flow table of %u flows: %s", p->flows, strerror(-rc));
		goto err;
	}
	r->tb_seed = p->seed ^ 0x5bd1e9955bd1e995ULL;
	for (uint32_t i = 0; i < t->n_services; i++) {
		if (!t->svc[i].uid)
			continue;
		rc = relay_svc_setup(r, i);
		if (rc) {
			QG_LOG_ERR("service %s: cannot set up its worker state: %s", t->svc[i].name,
				   strerror(-rc));
			goto err;
		}
		r->svc_uid[i] = t->svc[i].uid;
		r->svc_ver[i] = t->svc[i].version;
	}
	r->n_services = t->n_services;
	r->n_slots = t->n_slots;
	*out = r;
	return 0;
err:
	qg_relay_destroy(r);
	return rc;
}

static void relay_close_upstream(void *ctx, uint32_t idx, const struct qg_flow *f)
{
	struct qg_relay *r = ctx;

	(void)idx;
	/* The worker has stopped: its ring toward the bridge is ours to push to now. */
	if (qg_relay_up_is_bt(f->upstream))
		qg_relay_bt_close(r, f->upstream);
	else if (f->upstream != QG_FLOW_NONE)
		r->ops->upstream_close(r->io, f->upstream, 0);
}

void qg_relay_destroy(struct qg_relay *r)
{
	if (!r)
		return;
	/* The worker has stopped: nothing is queued for them any more. */
	for (uint32_t i = 0; i < r->n_deferred; i++)
		r->ops->upstream_close(r->io, r->deferred[i].up, r->deferred[i].reuse);
	if (r->flows) {
		qg_flow_foreach(r->flows, relay_close_upstream, r);
		qg_flow_table_destroy(r->flows);
	}
	qg_relay_bt_fini(r);
	for (uint32_t i = 0; r->wrr && i < r->svc_cap; i++)
		qg_wrr_destroy(r->wrr[i]);
	free(r->wrr);
	free(r->svc_uid);
	free(r->svc_ver);
	free(r->lc_active);
	qg_mem_free(r->up_flow, sizeof(*r->up_flow) * r->max_upstreams);
	free(r->bstat);
	free(r->slot_active);
	free(r->svc_active);
	free(r->lc_cursor);
	free(r->timeouts);
	free(r->limits);
	free(r->to_backend);
	free(r->to_client);
	free(r->drop);
	free(r->hash);
	free(r->deferred);
	if (r->quic)
		qg_quic_relay_fini(r);
	free(r->quic);
	free(r);
}
