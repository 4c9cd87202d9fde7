/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's side of the Bluetooth bridge (qgate/bridge.h, docs/BLUETOOTH.md):
 * a worker's ring pair turned into packets of the ordinary pipeline.
 *
 * Bridge -> worker. Each message is copied straight from its ring slot into
 * a buffer of the I/O backend (alloc_tx), so from then on it is a packet
 * like a received one: the relay forwards it, or releases it, exactly once,
 * and the backend keeps it valid until an asynchronous send completed. The
 * slot goes back to the bridge at once. The copy costs one memcpy per
 * datagram, which the L2CAP link's throughput (a few Mbit/s) never notices.
 *   - CLIENT: a datagram of a Bluetooth client. Its peer is the link as an
 *     address (qg_addr_bt_link): the flow table, selection, limits and
 *     counters treat the link like any UDP client.
 *   - BACKEND: a reply of a Bluetooth backend, for the flow whose tag it
 *     carries; it continues as if it had arrived on that flow's upstream.
 *   - F_CLOSE: the link is gone; its flow ends (flows_bridge_closed).
 *
 * Worker -> bridge. A packet toward a client link or a Bluetooth backend is
 * copied into the ring (qg_bridge_ring_push) and its buffer released.
 *
 * A flow toward a Bluetooth backend holds a tag instead of an upstream
 * socket: flow->upstream = QG_RELAY_UP_BT | tag index. The tag carried in
 * ring messages adds a generation, so a reply queued for a flow that ended
 * meanwhile never reaches the flow that reuses the index. When the flow
 * ends the bridge is told (F_CLOSE) so its link returns to the pool; if the
 * ring is full at that moment the tag stays reserved and the close is
 * retried at the next poll, so no link is ever left bound to a dead flow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/bridge.h"
#include "qgate/log.h"
#include "relay_internal.h"

/* Flows toward Bluetooth backends per worker: far more than the bridge's links (8 per path by default). */
#define BT_TAGS	    4096u
#define BT_TAG_BITS 16 /* tag = generation << 16 | index */

enum bt_tag_state {
	TAG_FREE = 0,
	TAG_LIVE,    /* a flow holds it */
	TAG_CLOSING, /* its flow ended, the F_CLOSE still has to reach the bridge */
};

struct bt_tag {
	uint32_t flow;	  /* TAG_LIVE: the flow's index */
	uint32_t svc;	  /* what its messages name (the bridge's indexes) */
	uint32_t backend; /* within svc */
	uint16_t gen;
	uint8_t path;
	uint8_t state;
	uint32_t next_free;
};

struct qg_relay_bt {
	struct qg_bridge_rings *rings;
	unsigned worker;
	uint32_t cap;	     /* payload room of an alloc_tx buffer: the rings' max_datagram */
	struct qg_pkt *pkts; /* a burst of converted messages */
	struct qg_pkt spare; /* a buffer taken but not filled (the ring was empty) */
	int have_spare;
	int bridge_closed; /* the flow being removed was ended by the bridge: no F_CLOSE back */
	uint32_t n_closing;
	uint32_t free_head;
	/* Per service index: the incarnation the bridge's indexes name (the table at attach). */
	uint32_t svc_uid[QG_CONFIG_MAX_SERVICES];
	struct bt_tag tags[BT_TAGS];
};

static inline uint32_t tag_value(const struct qg_relay_bt *bt, uint32_t idx)
{
	return (uint32_t)bt->tags[idx].gen << BT_TAG_BITS | idx;
}

/* The live tag a message names, or BT_TAGS. */
static uint32_t tag_find(const struct qg_relay_bt *bt, uint32_t value, uint8_t state)
{
	uint32_t idx = value & ((1u << BT_TAG_BITS) - 1);

	if (idx >= BT_TAGS || bt->tags[idx].state != state || tag_value(bt, idx) != value)
		return BT_TAGS;
	return idx;
}

static void tag_free(struct qg_relay_bt *bt, uint32_t idx)
{
	struct bt_tag *t = &bt->tags[idx];

	t->state = TAG_FREE;
	t->flow = QG_FLOW_NONE;
	t->gen++; /* whatever still names the old value is stale */
	t->next_free = bt->free_head;
	bt->free_head = idx;
}

static int tag_push_close(struct qg_relay_bt *bt, uint32_t idx)
{
	const struct bt_tag *t = &bt->tags[idx];
	struct qg_bridge_msg m = { 0 };

	m.kind = QG_BRIDGE_MSG_BACKEND;
	m.flags = QG_BRIDGE_MSG_F_CLOSE;
	m.svc = t->svc;
	m.backend = t->backend;
	m.path = t->path;
	m.link = tag_value(bt, idx);
	return qg_bridge_ring_push(bt->rings, bt->worker, &m, NULL);
}

int qg_relay_bt_open(struct qg_relay *r, uint16_t svc, uint32_t member, uint32_t flow, uint32_t *up)
{
	const struct qg_svc_backend *be = &r->table->svc[svc].backends[member];
	struct qg_relay_bt *bt = r->bt;
	struct bt_tag *t;
	uint32_t idx;

	/* No bridge, or a path a reload added (the bridge only knows the paths it started with). */
	if (!bt || be->bt_path == QG_SVC_NO_BT)
		return -ENOTCONN;
	if (bt->free_head == QG_FLOW_NONE)
		return -ENOSPC;
	idx = bt->free_head;
	t = &bt->tags[idx];
	bt->free_head = t->next_free;
	t->state = TAG_LIVE;
	t->flow = flow;
	t->svc = svc;
	t->backend = be->bt_backend;
	t->path = be->bt_path;
	*up = QG_RELAY_UP_BT | idx;
	return 0;
}

void qg_relay_bt_close(struct qg_relay *r, uint32_t up)
{
	struct qg_relay_bt *bt = r->bt;
	uint32_t idx = up & ~QG_RELAY_UP_BT;

	if (!bt || idx >= BT_TAGS || bt->tags[idx].state != TAG_LIVE)
		return;
	if (bt->bridge_closed || tag_push_close(bt, idx) == 0) {
		tag_free(bt, idx);
		return;
	}
	/* The ring is full: keep the tag (and its generation) until the close gets through. */
	bt->tags[idx].state = TAG_CLOSING;
	bt->tags[idx].flow = QG_FLOW_NONE;
	bt->n_closing++;
}

uint32_t qg_relay_bt_flow(const struct qg_relay *r, uint32_t up)
{
	uint32_t idx = up & ~QG_RELAY_UP_BT;

	if (!r->bt || !(up & QG_RELAY_UP_BT) || idx >= BT_TAGS || r->bt->tags[idx].state != TAG_LIVE)
		return QG_FLOW_NONE;
	return r->bt->tags[idx].flow;
}

uint8_t qg_relay_bt_path_of(const struct qg_relay *r, uint32_t up)
{
	uint32_t idx = up & ~QG_RELAY_UP_BT;

	if (!r->bt || idx >= BT_TAGS || r->bt->tags[idx].state != TAG_LIVE)
		return QG_SVC_NO_BT;
	return r->bt->tags[idx].path;
}

void qg_relay_bt_send(struct qg_relay *r, const struct qg_pkt *p, int to_client)
{
	struct qg_relay_bt *bt = r->bt;
	struct qg_bridge_msg m = { 0 };
	uint32_t idx = p->upstream & ~QG_RELAY_UP_BT;
	int rc;

	m.len = p->len;
	if (to_client) {
		m.kind = QG_BRIDGE_MSG_CLIENT;
		m.svc = p->svc;
		m.link = qg_addr_bt_link_id(&p->peer);
	} else {
		if (unlikely(!bt || idx >= BT_TAGS || bt->tags[idx].state != TAG_LIVE)) {
			qg_ctr_add(r->ctr, QG_CTR_DROP_TX_BACKEND, 1);
			return;
		}
		m.kind = QG_BRIDGE_MSG_BACKEND;
		m.svc = bt->tags[idx].svc;
		m.backend = bt->tags[idx].backend;
		m.path = bt->tags[idx].path;
		m.link = tag_value(bt, idx);
	}
	/* A client link's flow exists only when the bridge is attached: bt is set here. */
	rc = qg_bridge_ring_push(bt->rings, bt->worker, &m, p->data);
	if (likely(rc == 0)) {
		qg_ctr_add(r->ctr, QG_CTR_BRIDGE_TX, 1);
		qg_ctr_add(r->ctr, to_client ? QG_CTR_TX_CLIENT : QG_CTR_TX_BACKEND, 1);
	} else {
		qg_ctr_add(r->ctr, rc == -ENOBUFS ? QG_CTR_DROP_BRIDGE_RING_FULL : QG_CTR_DROP_OVERSIZE, 1);
	}
}

/* Closes the ring had no room for earlier. */
static void bt_retry_closes(struct qg_relay_bt *bt)
{
	for (uint32_t i = 0; i < BT_TAGS && bt->n_closing; i++) {
		if (bt->tags[i].state != TAG_CLOSING)
			continue;
		if (tag_push_close(bt, i))
			return; /* still full */
		tag_free(bt, i);
		bt->n_closing--;
	}
}

/* Whether service index svc still is the service the bridge's messages name. */
static int bt_svc_current(const struct qg_relay *r, uint32_t svc)
{
	return svc < r->n_services && r->bt->svc_uid[svc] && r->table->svc[svc].uid == r->bt->svc_uid[svc];
}

/* An F_CLOSE from the bridge: the flow of that link ends. */
static void bt_closed(struct qg_relay *r, const struct qg_bridge_msg *m, uint32_t now_ms)
{
	struct qg_relay_bt *bt = r->bt;
	uint32_t flow = QG_FLOW_NONE, idx;

	if (m->kind == QG_BRIDGE_MSG_CLIENT) {
		struct qg_addr peer;

		qg_addr_bt_link(m->link, &peer);
		if (bt_svc_current(r, m->svc))
			flow = qg_flow_lookup(r->flows, (uint16_t)m->svc, &peer, now_ms);
	} else if ((idx = tag_find(bt, m->link, TAG_LIVE)) < BT_TAGS) {
		flow = bt->tags[idx].flow;
	} else if ((idx = tag_find(bt, m->link, TAG_CLOSING)) < BT_TAGS) {
		/* Both sides closed it: nothing left to tell the bridge. */
		tag_free(bt, idx);
		bt->n_closing--;
	}
	if (flow == QG_FLOW_NONE)
		return;
	bt->bridge_closed = 1;
	qg_flow_remove(r->flows, flow);
	bt->bridge_closed = 0;
	qg_ctr_add(r->ctr, QG_CTR_FLOW_BRIDGE_CLOSED, 1);
}

/*
 * Turn the message just popped into pkt (its buffer already holds the
 * payload). @return 1 when it is a packet for the relay, 0 when it was
 * handled or dropped here (the buffer stays the spare).
 */
static int bt_convert(struct qg_relay *r, const struct qg_bridge_msg *m, struct qg_pkt *p, uint32_t len,
		      uint32_t now_ms)
{
	struct qg_relay_bt *bt = r->bt;
	uint32_t idx;

	qg_ctr_add(r->ctr, QG_CTR_BRIDGE_RX, 1);
	if (m->flags & QG_BRIDGE_MSG_F_CLOSE) {
		bt_closed(r, m, now_ms);
		return 0;
	}
	p->len = len;
	p->flags = 0;
	if (m->kind == QG_BRIDGE_MSG_CLIENT) {
		if (!bt_svc_current(r, m->svc)) {
			/* Removed by a reload (or its index reused): the bridge's index names nothing now. */
			qg_ctr_add(r->ctr, QG_CTR_DROP_NO_SERVICE, 1);
			return 0;
		}
		p->dir = QG_PKT_FROM_CLIENT;
		p->svc = (uint16_t)m->svc;
		p->upstream = UINT32_MAX;
		qg_addr_bt_link(m->link, &p->peer);
		return 1;
	}
	idx = m->kind == QG_BRIDGE_MSG_BACKEND ? tag_find(bt, m->link, TAG_LIVE) : BT_TAGS;
	if (idx == BT_TAGS) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_STALE_REPLY, 1);
		return 0;
	}
	p->dir = QG_PKT_FROM_BACKEND;
	p->svc = UINT16_MAX;
	p->upstream = QG_RELAY_UP_BT | idx;
	return 1;
}

unsigned qg_relay_bridge_rx(struct qg_relay *r, uint32_t now_ms)
{
	struct qg_relay_bt *bt = r->bt;
	unsigned n = 0;

	if (!bt)
		return 0;
	if (unlikely(bt->n_closing))
		bt_retry_closes(bt);
	while (n < r->burst) {
		struct qg_pkt *p = &bt->pkts[n];
		struct qg_bridge_msg m;
		int len;

		/* A buffer first, so the payload is copied once, from the slot straight into it. */
		if (!bt->have_spare) {
			if (r->ops->alloc_tx(r->io, &bt->spare)) {
				/* The message waits in the ring: the bridge sees it full and counts. */
				qg_ctr_add(r->ctr, QG_CTR_ERR_BRIDGE_NOBUFS, 1);
				break;
			}
			bt->have_spare = 1;
		}
		len = qg_bridge_ring_pop(bt->rings, bt->worker, &m, bt->spare.data, bt->cap);
		if (len == -EMSGSIZE)
			continue; /* counted by the ring (truncated) */
		if (len < 0)
			break; /* -EAGAIN: empty */
		*p = bt->spare;
		if (bt_convert(r, &m, p, (uint32_t)len, now_ms)) {
			bt->have_spare = 0;
			n++;
		}
	}
	if (n)
		qg_relay_burst(r, bt->pkts, n, now_ms);
	return n;
}

int qg_relay_attach_bridge(struct qg_relay *r, struct qg_bridge_rings *rings, unsigned worker)
{
	struct qg_relay_bt *bt;

	if (!rings || worker >= qg_bridge_ring_workers(rings) || r->bt)
		return -EINVAL;
	if (!r->ops->alloc_tx)
		return -ENOTSUP;
	bt = calloc(1, sizeof(*bt));
	if (!bt)
		return -ENOMEM;
	bt->pkts = calloc(r->burst, sizeof(*bt->pkts));
	if (!bt->pkts) {
		free(bt);
		return -ENOMEM;
	}
	bt->rings = rings;
	bt->worker = worker;
	bt->cap = qg_bridge_ring_max_datagram(rings);
	bt->free_head = QG_FLOW_NONE;
	for (uint32_t i = BT_TAGS; i-- > 0;) {
		bt->tags[i].flow = QG_FLOW_NONE;
		bt->tags[i].next_free = bt->free_head;
		bt->free_head = i;
	}
	for (uint32_t i = 0; i < r->table->n_services && i < QG_CONFIG_MAX_SERVICES; i++)
		bt->svc_uid[i] = r->table->svc[i].uid;
	r->bt = bt;
	return 0;
}

void qg_relay_bt_fini(struct qg_relay *r)
{
	/* The spare buffer belongs to the I/O instance, which frees its buffers wholesale. */
	if (r->bt)
		free(r->bt->pkts);
	free(r->bt);
	r->bt = NULL;
}
