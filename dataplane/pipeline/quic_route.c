/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC routing of one worker's relay, for services with protocol quic.
 *
 * Order (draft-ietf-quic-load-balancers-21 Sec 3):
 *  1. a DCID that decodes under a configured QUIC-LB config -> the backend
 *     with that server ID;
 *  2. a DCID the worker has learned (the client's first DCID, the SCIDs the
 *     backend chose in its long-header replies) -> that connection's flow;
 *  3. the flow of the 4-tuple;
 *  4. a new flow: Maglev (or the service's policy) over the hash of the DCID
 *     for long headers, so every Initial of one attempt reaches one backend,
 *     or over the 4-tuple for short headers.
 * A connection seen from a new client address with a known DCID (NAT
 * rebinding) keeps its flow: the flow moves to the new address, so the
 * backend keeps its upstream and replies reach the client where it is now.
 * Active migration to a new QUIC-LB CID reaches the same server over a new
 * flow (the server sees, and validates, a new path).
 *
 * Before routing: Initial-bearing datagrams under min_initial_size are
 * dropped (RFC 9000 Sec 14.1), unlisted versions are answered with Version
 * Negotiation when the service lists its versions (Sec 6), and new
 * connections pass a per-source token bucket.
 *
 * With quic.retry: on, a datagram that would open a new flow must come from a
 * validated address first (docs/QUIC.md, "Retry offload"): an Initial without
 * a qgate token is answered with a Retry in place, one with a token is
 * admitted when the token opens (and routed where its first Initial would
 * have gone), 0-RTT and Handshake packets of no known connection are dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "qgate/clock.h"
#include "qgate/degrade.h"
#include "qgate/hash.h"
#include "qgate/quic.h"
#include "qgate/retry_token.h"
#include "relay_internal.h"

/*
 * Retry tokens live 10 s: a client answers a Retry within one round trip, and
 * the lifetime bounds how long a token seen on the path can be replayed from
 * its address. Keys are per worker, random, rotated every minute; the
 * previous key opens tokens for one lifetime more (plus a second of slack).
 */
#define RETRY_LIFETIME_MS QG_RETRY_DEFAULT_LIFETIME_MS
#define RETRY_GRACE_MS	  (RETRY_LIFETIME_MS + 1000)
#define RETRY_ROTATE_MS	  60000
#define RETRY_SCID_LEN	  8

/*
 * DCID length of a short header: configured; or self-encoded in the first
 * octet (QUIC-LB CIDs); or, for servers that do neither, one of the SCID
 * lengths learned from this service's backends, the one under which the
 * CID is known.
 */
static size_t short_dcid_len(const struct qg_relay *r, const struct qg_relay_quic *q, const struct qg_svc *s,
			     uint16_t svc, const uint8_t *data, uint32_t len)
{
	int n;

	if (s->quic.short_dcid_len && s->quic.n_lb == 0)
		return s->quic.short_dcid_len;
	if (len < 2)
		return 0;
	if (s->quic.n_lb == 0 && q->n_cid_lens) {
		for (unsigned i = 0; i < q->n_cid_lens; i++)
			if (len >= 1u + q->cid_lens[i] &&
			    qg_cid_lookup(r->cids, svc, data + 1, q->cid_lens[i]) != QG_CID_NONE)
				return q->cid_lens[i];
		return q->cid_lens[0];
	}
	n = qg_quic_short_dcid_len_selfenc(data[1]);
	return n > 0 ? (size_t)n : 0;
}

/* Remember a backend SCID length (a handful per service; the newest replaces the oldest). */
static void note_cid_len(struct qg_relay_quic *q, uint8_t len)
{
	for (unsigned i = 0; i < q->n_cid_lens; i++)
		if (q->cid_lens[i] == len)
			return;
	if (q->n_cid_lens < QG_ARRAY_SIZE(q->cid_lens))
		q->cid_lens[q->n_cid_lens++] = len;
	else
		q->cid_lens[QG_ARRAY_SIZE(q->cid_lens) - 1] = len;
}

/*
 * qg_quic_parse() for a short header (len >= 1, first bit 0), same checks and
 * results, but filling only what routing reads of a short header (form,
 * type, DCID): the general parse first clears the whole header struct.
 */
static inline int parse_short(const uint8_t *data, uint32_t len, size_t dcid_len, struct qg_quic_hdr *h)
{
	if (unlikely(dcid_len > QG_QUIC_MAX_CID_LEN_ANY || dcid_len > len - 1))
		return -1;
	h->form = QG_QUIC_FORM_SHORT;
	h->type = QG_QUIC_TYPE_SHORT;
	h->first_byte = data[0];
	h->dcid = data + 1;
	h->dcid_len = (uint8_t)dcid_len;
	return 0;
}

/*
 * The flow leads to the backend whose server ID is sid: the same answer as
 * f->backend == the slot of qg_svc_member_by_server_id(sid), as server IDs
 * are unique in a service, without its binary search.
 */
static inline int flow_has_sid(const struct qg_svc_table *t, const struct qg_svc *s, const struct qg_flow *f,
			       const uint8_t *sid, size_t sid_len)
{
	uint32_t m = qg_svc_slot_member(t, s, f->backend);

	return m < s->n_backends && s->backends[m].server_id_len == sid_len &&
	       memcmp(s->backends[m].server_id, sid, sid_len) == 0;
}

static int version_listed(const struct qg_svc *s, uint32_t v)
{
	for (uint32_t i = 0; i < s->quic.n_versions; i++)
		if (s->quic.versions[i] == v)
			return 1;
	return 0;
}

/* Answer with Version Negotiation in place of the received datagram (it is >= 1200 bytes). */
static int answer_vn(struct qg_relay *r, struct qg_pkt *p, const struct qg_svc *s,
		     const struct qg_quic_hdr *h)
{
	uint8_t vn[7 + 2 * 255 + 4 * QG_CONFIG_QUIC_MAX_VERSIONS];
	size_t n = qg_quic_build_vn(vn, sizeof(vn), h, s->quic.versions, s->quic.n_versions,
				    (uint8_t)(qg_hash_mix64(r->vn_seq++) & 0x7f));

	if (n == 0 || n > p->len)
		return -EINVAL;
	memcpy(p->data, vn, n); /* the header pointed into p->data: built aside, then copied */
	p->len = (uint32_t)n;
	p->flags |= QG_PKT_F_LEN_CHANGED;
	qg_ctr_add(r->ctr, QG_CTR_QUIC_VN_SENT, 1);
	return 0;
}

/* Per-source token bucket for new connections; sources sharing a slot share a bucket (conservative). */
static int rate_allows(struct qg_relay *r, const struct qg_svc *s, const struct qg_addr *src, uint32_t now_ms)
{
	struct qg_relay_tb *b;
	uint64_t tokens;

	uint32_t rate = s->quic.new_conn_rate, burst = s->quic.new_conn_burst;

	if (!rate || !r->tb)
		return 1;
	/* Degradation level protect and above: each source gets a quarter of its usual allowance. */
	if (unlikely(r->table->level >= QG_DEGRADE_PROTECT)) {
		rate = rate / 4 ? rate / 4 : 1;
		burst = burst / 4 ? burst / 4 : 1;
	}
	b = &r->tb[qg_hash_ip(src, r->tb_seed) & (QG_RELAY_TB_SIZE - 1)];
	/* Milli-tokens: rate per second is rate milli-tokens per millisecond. */
	tokens = b->milli + (uint64_t)(uint32_t)(now_ms - b->last_ms) * rate;
	if (b->last_ms == 0 || tokens > (uint64_t)burst * 1000)
		tokens = (uint64_t)burst * 1000;
	b->last_ms = now_ms ? now_ms : 1;
	if (tokens < 1000) {
		b->milli = (uint32_t)tokens;
		return 0;
	}
	b->milli = (uint32_t)(tokens - 1000);
	return 1;
}

/* The flow moves to the client's new address; another flow holding that address gives way. */
static void migrate(struct qg_relay *r, uint32_t idx, const struct qg_pkt *p, uint32_t now_ms)
{
	if (qg_flow_rekey(r->flows, idx, &p->peer) == -EEXIST) {
		uint32_t other = qg_flow_lookup(r->flows, p->svc, &p->peer, now_ms);

		if (other != QG_FLOW_NONE && other != idx)
			qg_flow_remove(r->flows, other);
		if (qg_flow_rekey(r->flows, idx, &p->peer))
			return;
	}
	qg_ctr_add(r->ctr, QG_CTR_QUIC_MIGRATED, 1);
}

static void learn(struct qg_relay *r, uint16_t svc, const uint8_t *cid, uint8_t len, uint32_t idx)
{
	int rc;

	if (len == 0 || len > QG_CID_MAX_LEN || qg_cid_lookup(r->cids, svc, cid, len) == idx)
		return;
	rc = qg_cid_learn(r->cids, svc, cid, len, idx);
	qg_ctr_add(r->ctr, rc ? QG_CTR_ERR_QUIC_CID_FULL : QG_CTR_QUIC_CID_LEARNED, 1);
	if (rc == 0 && r->share) {
		const struct qg_flow *f = qg_flow_get(r->flows, idx);
		struct qg_cid_note n;

		if (!f)
			return;
		n.svc = svc;
		n.len = len;
		memcpy(n.cid, cid, len);
		n.slot = f->backend;
		qg_ctr_add(r->ctr, QG_CTR_ERR_CID_SHARE_FULL, qg_cid_share_announce(r->share, r->worker, &n));
	}
}

void qg_quic_peer_note(struct qg_relay *r, const struct qg_cid_note *n, uint32_t now_ms)
{
	qg_cid_cache_put(r->peer_cids, n, now_ms);
	/* A rebinding client's short header needs the server's CID length, seen by the other worker. */
	if (n->svc < r->svc_cap)
		note_cid_len(&r->quic[n->svc], n->len);
}

/* A known flow (by CID): follow the client to its current address. */
static uint32_t use_flow(struct qg_relay *r, uint32_t idx, const struct qg_pkt *p, uint32_t now_ms)
{
	struct qg_flow *f = qg_flow_get(r->flows, idx);

	if (!f)
		return QG_FLOW_NONE;
	if (!qg_addr_equal(&f->client, &p->peer))
		migrate(r, idx, p, now_ms);
	qg_flow_touch(r->flows, idx, now_ms);
	return idx;
}

/* Backend of a new connection without QUIC-LB: by the hash of cid (a long header's), else the 4-tuple. */
static uint32_t select_new(struct qg_relay *r, const struct qg_pkt *p, const struct qg_svc *s,
			   const struct qg_quic_hdr *h, const uint8_t *cid, size_t cid_len)
{
	uint64_t sel = h->form == QG_QUIC_FORM_LONG && cid_len
			       ? qg_hash_bytes(cid, cid_len, QG_SELECT_SEED ^ p->svc)
			       : qg_relay_client_hash(s, &p->peer);

	return qg_relay_select(r, p->svc, s, sel);
}

static void retry_rotate(struct qg_relay *r, uint32_t now_ms)
{
	uint8_t key[QG_RETRY_KEY_LEN];

	if (likely(qg_retry_keys_current_age(r->retry, now_ms) < RETRY_ROTATE_MS))
		return;
	/* Once a minute; the pool was ready at start, so this does not block. On failure: next packet. */
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) == sizeof(key) || RAND_bytes(key, sizeof(key)) == 1)
		(void)qg_retry_keys_rotate(r->retry, (uint8_t)(qg_retry_keys_current_id(r->retry) + 1), key,
					   now_ms);
	OPENSSL_cleanse(key, sizeof(key));
}

/*
 * The SCID of a Retry, which the client's next Initials carry as DCID: with
 * QUIC-LB, the server ID of the backend this attempt goes to under the
 * service's first lb config (random nonce), so that Initial routes there by
 * itself; else 8 random bytes whose first octet says "unroutable, 7 more
 * bytes" (QUIC-LB 0b111), which never decodes as a server ID, and the
 * Initial is routed by its token's ODCID. Never the client's DCID (RFC 9000
 * Sec 17.2.5.1). @return its length, or 0
 */
static size_t retry_scid(struct qg_relay *r, const struct qg_pkt *p, const struct qg_svc *s,
			 const struct qg_relay_quic *q, const struct qg_quic_hdr *h, uint32_t member,
			 uint8_t *scid)
{
	uint8_t nonce[QG_QUIC_LB_MAX_NONCE_LEN];
	size_t len;
	int n;

	if (q->has_lb && q->own[0]) {
		if (member == QG_LB_NONE)
			member = select_new(r, p, s, h, h->dcid, h->dcid_len);
		if (member < s->n_backends &&
		    s->backends[member].server_id_len == qg_quic_lb_config_server_id_len(q->own[0]) &&
		    RAND_bytes(nonce, qg_quic_lb_config_nonce_len(q->own[0])) == 1) {
			n = qg_quic_lb_encode(q->own[0], s->backends[member].server_id, nonce, scid,
					      QG_QUIC_MAX_CID_LEN_V1);
			if (n > 0 && !((size_t)n == h->dcid_len && memcmp(scid, h->dcid, (size_t)n) == 0))
				return (size_t)n;
		}
	}
	len = RETRY_SCID_LEN;
	if (RAND_bytes(scid + 1, (int)len - 1) != 1)
		return 0;
	scid[0] = 0xe0 | (uint8_t)(len - 1);
	if (len == h->dcid_len && memcmp(scid, h->dcid, len) == 0)
		return 0;
	return len;
}

/* Answer an Initial with a Retry in place of the received datagram. */
static int answer_retry(struct qg_relay *r, struct qg_pkt *p, const struct qg_svc *s,
			const struct qg_relay_quic *q, const struct qg_quic_hdr *h, uint32_t member,
			uint32_t now_ms)
{
	uint8_t scid[QG_QUIC_MAX_CID_LEN_V1], token[QG_RETRY_TOKEN_MAX_LEN], retry[QG_RETRY_PACKET_MAX_LEN];
	size_t scid_len;
	int tlen, n;

	/*
	 * Never amplify: only a datagram a client had to pad to 1200 bytes earns
	 * an answer, and a Retry is at most QG_RETRY_PACKET_MAX_LEN (139) bytes.
	 */
	if (p->len < QG_QUIC_MIN_INITIAL_SIZE)
		return -EMSGSIZE;
	scid_len = retry_scid(r, p, s, q, h, member, scid);
	if (!scid_len)
		return -EIO;
	tlen = qg_retry_token_seal(r->retry, &p->peer, h->dcid, h->dcid_len, scid, scid_len, now_ms, token,
				   sizeof(token));
	if (tlen < 0)
		return tlen;
	/* The header points into p->data: built aside, then copied. */
	n = qg_quic_build_retry(retry, sizeof(retry), h->version, h->scid, h->scid_len, h->dcid, h->dcid_len,
				scid, scid_len, token, (size_t)tlen);
	if (n < 0)
		return n;
	if ((uint32_t)n >= p->len)
		return -EMSGSIZE;
	memcpy(p->data, retry, (size_t)n);
	p->len = (uint32_t)n;
	p->flags |= QG_PKT_F_LEN_CHANGED;
	qg_ctr_add(r->ctr, QG_CTR_QUIC_RETRY_SENT, 1);
	return 0;
}

/*
 * Address validation of a long header of v1/v2 that would open a new flow
 * while retry is on. QG_QROUTE_FORWARD: a valid token, *odcid holds the DCID
 * of the client's first Initial; else the packet was answered or dropped.
 */
static int retry_gate(struct qg_relay *r, struct qg_pkt *p, const struct qg_svc *s,
		      const struct qg_relay_quic *q, const struct qg_quic_hdr *h, uint32_t member,
		      uint32_t now_ms, uint8_t *odcid, size_t *odcid_len)
{
	uint8_t scid[QG_RETRY_MAX_CID_LEN];
	size_t scid_len;
	int rc;

	if (h->type != QG_QUIC_TYPE_INITIAL) {
		/* 0-RTT or Handshake of no connection: it would open a flow from an unvalidated address. */
		qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_RETRY_UNVALIDATED, 1);
		return QG_QROUTE_DROP;
	}
	retry_rotate(r, now_ms);
	/*
	 * No token, or a server's NEW_TOKEN token (first bit 1), which qgate
	 * cannot check: a Retry, whose token then replaces it (RFC 9000 Sec
	 * 8.1.3 lets a server answer a token it cannot use with a Retry).
	 */
	if (!qg_retry_token_is_retry(h->token, h->token_len)) {
		rc = answer_retry(r, p, s, q, h, member, now_ms);
		if (rc == 0)
			return QG_QROUTE_ANSWER;
		qg_ctr_add(r->ctr,
			   rc == -EMSGSIZE ? QG_CTR_DROP_QUIC_INITIAL_SMALL
					   : QG_CTR_DROP_QUIC_RETRY_UNVALIDATED,
			   1);
		return QG_QROUTE_DROP;
	}
	/*
	 * A Retry token: ours and valid, for this address, and for the DCID
	 * this Initial carries (the Retry's SCID), or the client gets nothing.
	 * It cannot take another Retry (Sec 8.1.2); without Initial keys qgate
	 * cannot close with INVALID_TOKEN either, so the client times out.
	 */
	rc = qg_retry_token_open(r->retry, &p->peer, h->token, h->token_len, now_ms, RETRY_LIFETIME_MS, odcid,
				 odcid_len, scid, &scid_len);
	if (rc || scid_len != h->dcid_len || CRYPTO_memcmp(scid, h->dcid, scid_len) != 0) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_RETRY_TOKEN_INVALID, 1);
		return QG_QROUTE_DROP;
	}
	return QG_QROUTE_FORWARD;
}

int qg_quic_route_client(struct qg_relay *r, struct qg_pkt *p, uint32_t hash, uint32_t now_ms, uint32_t *flow)
{
	const struct qg_svc *s = &r->table->svc[p->svc];
	struct qg_relay_quic *q = &r->quic[p->svc];
	uint8_t sid[QG_QUIC_LB_MAX_SID_LEN];
	struct qg_quic_hdr h;
	uint32_t idx, stale = QG_FLOW_NONE, member = QG_LB_NONE, by_lb, tuple = QG_FLOW_NONE;
	uint8_t odcid[QG_RETRY_MAX_CID_LEN];
	const uint8_t *sel_cid;
	size_t sid_len, sel_len;
	int rc, validated = 0, tuple_known = 0, by_peer = 0;

	if (likely(p->len && !(p->data[0] & 0x80)))
		rc = parse_short(p->data, p->len, short_dcid_len(r, q, s, p->svc, p->data, p->len), &h);
	else
		rc = qg_quic_parse(p->data, p->len, 0, &h);
	if (unlikely(rc)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_MALFORMED, 1);
		return QG_QROUTE_DROP;
	}
	if (h.form == QG_QUIC_FORM_LONG) {
		if (s->quic.n_versions && h.type != QG_QUIC_TYPE_VERSION_NEGOTIATION &&
		    !version_listed(s, h.version)) {
			/* Only a datagram big enough to start a connection earns an answer (Sec 6, 14.1). */
			if (p->len >= 1200 && answer_vn(r, p, s, &h) == 0)
				return QG_QROUTE_ANSWER;
			qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_VERSION, 1);
			return QG_QROUTE_DROP;
		}
		if (s->quic.min_initial_size && p->len < s->quic.min_initial_size &&
		    qg_quic_datagram_has_initial(p->data, p->len, 0)) {
			qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_INITIAL_SMALL, 1);
			return QG_QROUTE_DROP;
		}
	}

	/* 1. QUIC-LB */
	if (q->has_lb && h.dcid_len &&
	    qg_quic_lb_ring_decode(&q->ring, h.dcid, h.dcid_len, sid, &sid_len) == 0) {
		/*
		 * Fast path, the bulk of a QUIC-LB service's traffic: a short
		 * header whose 4-tuple flow already leads to the server the CID
		 * names goes there; steps 2 and 3 would pick that server too. The
		 * learned-CID lookup (a hash of the DCID and a probe) only matters
		 * when the CID belongs to another flow of that server, i.e. a
		 * client rebound onto an address that already has a flow to the
		 * same server: the datagram then rides this address's flow instead
		 * of moving the old one here (same server, another upstream, which
		 * the server validates as a path change).
		 */
		if (h.form == QG_QUIC_FORM_SHORT) {
			tuple = qg_flow_lookup_hashed(r->flows, p->svc, &p->peer, hash, now_ms);
			tuple_known = 1;
			if (tuple != QG_FLOW_NONE &&
			    flow_has_sid(r->table, s, qg_flow_get(r->flows, tuple), sid, sid_len)) {
				*flow = tuple;
				return QG_QROUTE_FORWARD;
			}
		}
		member = qg_svc_member_by_server_id(s, sid, sid_len);
		if (member == QG_LB_NONE)
			qg_ctr_add(r->ctr, QG_CTR_ERR_QUIC_LB_UNKNOWN_SID, 1);
	}
	/* 2. learned CIDs */
	idx = qg_cid_lookup(r->cids, p->svc, h.dcid, h.dcid_len);
	if (idx != QG_CID_NONE) {
		const struct qg_flow *f = qg_flow_get(r->flows, idx);

		if (f && (member == QG_LB_NONE || f->backend == s->backends[member].slot)) {
			qg_ctr_add(r->ctr, QG_CTR_QUIC_CID_ROUTED, 1);
			*flow = use_flow(r, idx, p, now_ms);
			return *flow == QG_FLOW_NONE ? QG_QROUTE_DROP : QG_QROUTE_FORWARD;
		}
	}
	/*
	 * 2b. CIDs another worker learned: the client rebound onto an address
	 * SO_REUSEPORT gives to this worker. Its backend gets a new flow from
	 * here, which the server sees as the client's NAT rebinding.
	 */
	if (member == QG_LB_NONE && r->peer_cids) {
		/*
		 * No age limit: the announcing flow may live on for any time, and a
		 * stale entry names a dead connection's CID that nobody sends.
		 */
		uint32_t slot =
			qg_cid_cache_get(r->peer_cids, p->svc, h.dcid, h.dcid_len, now_ms, UINT32_MAX);

		if (slot != UINT32_MAX) {
			member = qg_svc_slot_member(r->table, s, slot);
			by_peer = member != QG_LB_NONE;
		}
	}
	/* 3. the 4-tuple's flow, when it leads to the server the CID names (step 2 changed no flow) */
	idx = tuple_known ? tuple : qg_flow_lookup_hashed(r->flows, p->svc, &p->peer, hash, now_ms);
	if (idx != QG_FLOW_NONE) {
		const struct qg_flow *f = qg_flow_get(r->flows, idx);

		if (member == QG_LB_NONE || f->backend == s->backends[member].slot) {
			if (h.form == QG_QUIC_FORM_LONG)
				learn(r, p->svc, h.dcid, h.dcid_len, idx);
			*flow = idx;
			return QG_QROUTE_FORWARD;
		}
		/* The address now belongs to another connection (a NAT reused the port): replaced below. */
		stale = idx;
	}
	/* 4. a new flow */
	sel_cid = h.dcid;
	sel_len = h.dcid_len;
	/* Retry first: it creates no state, so spoofed Initials neither open flows nor drain buckets. */
	if (r->retry && !by_peer &&
	    (s->quic.retry == QG_CONFIG_RETRY_ON ||
	     (s->quic.retry == QG_CONFIG_RETRY_UNDER_ATTACK && r->table->level >= QG_DEGRADE_PROTECT)) &&
	    (h.type == QG_QUIC_TYPE_INITIAL || h.type == QG_QUIC_TYPE_ZERO_RTT ||
	     h.type == QG_QUIC_TYPE_HANDSHAKE)) {
		rc = retry_gate(r, p, s, q, &h, member, now_ms, odcid, &sel_len);
		if (rc != QG_QROUTE_FORWARD)
			return rc;
		/* Where the first Initial would have gone (QUIC-LB: the SCID named it, member is set). */
		sel_cid = odcid;
		validated = 1;
	}
	by_lb = member != QG_LB_NONE && !by_peer;
	if (member == QG_LB_NONE)
		member = select_new(r, p, s, &h, sel_cid, sel_len);
	if (!rate_allows(r, s, &p->peer, now_ms)) {
		qg_ctr_add(r->ctr, QG_CTR_DROP_QUIC_RATE_LIMITED, 1);
		return QG_QROUTE_DROP;
	}
	if (stale != QG_FLOW_NONE)
		qg_flow_remove(r->flows, stale);
	idx = qg_relay_new_flow_to(r, p, member, now_ms);
	if (idx == QG_FLOW_NONE)
		return QG_QROUTE_DROP;
	if (by_lb)
		qg_ctr_add(r->ctr, QG_CTR_QUIC_LB_ROUTED, 1);
	if (validated)
		qg_ctr_add(r->ctr, QG_CTR_QUIC_RETRY_VALIDATED, 1);
	if (by_peer)
		qg_ctr_add(r->ctr, QG_CTR_QUIC_CID_PEER_ROUTED, 1);
	/* A short header's CID is the server's: learned here too, so its next datagrams take step 2. */
	if (h.form == QG_QUIC_FORM_LONG || by_peer)
		learn(r, p->svc, h.dcid, h.dcid_len, idx);
	*flow = idx;
	return QG_QROUTE_FORWARD;
}

void qg_quic_learn_reply(struct qg_relay *r, const struct qg_pkt *p, uint16_t svc, uint32_t idx)
{
	struct qg_quic_hdr h;

	/* Only long headers carry the server's SCID; short ones cost one byte test. */
	if (p->len == 0 || !(p->data[0] & 0x80))
		return;
	if (qg_quic_parse(p->data, p->len, 0, &h) == 0 && h.scid_len) {
		learn(r, svc, h.scid, h.scid_len, idx);
		if (h.scid_len <= QG_CID_MAX_LEN)
			note_cid_len(&r->quic[svc], h.scid_len);
	}
}

/* Per-worker Retry keys: random, never shared, so no other thread or process can mint tokens. */
static int retry_init(struct qg_relay *r)
{
	uint8_t key[QG_RETRY_KEY_LEN];
	int rc;

	if (getrandom(key, sizeof(key), 0) != sizeof(key))
		return -EIO;
	rc = qg_retry_keys_create(0, key, qg_clock_ms(), RETRY_GRACE_MS, &r->retry);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int qg_quic_relay_svc_init(struct qg_relay *r, uint32_t i)
{
	const struct qg_svc *s = &r->table->svc[i];
	struct qg_relay_quic *q = &r->quic[i];
	uint32_t flows = r->flow_cap;
	int rc;

	qg_quic_relay_svc_fini(r, i);
	if (s->protocol != QG_CONFIG_PROTO_QUIC)
		return 0;
	/* Each worker owns its configs: the cipher contexts inside must not be shared. */
	for (uint32_t k = 0; k < s->quic.n_lb; k++) {
		const struct qg_config_quic_lb *c = &s->quic.lb[k];

		rc = qg_quic_lb_config_create(c->config_id, c->server_id_len, c->nonce_len,
					      c->has_key ? c->key : NULL, &q->own[k]);
		if (rc)
			return rc;
		qg_quic_lb_ring_set(&q->ring, q->own[k]);
		q->has_lb = 1;
	}
	/* under_attack needs the keys ready for when the degradation level reaches protect. */
	if (s->quic.retry != QG_CONFIG_RETRY_OFF && !r->retry) {
		rc = retry_init(r);
		if (rc)
			return rc;
	}
	if (s->quic.new_conn_rate && !r->tb) {
		r->tb = calloc(QG_RELAY_TB_SIZE, sizeof(*r->tb));
		if (!r->tb)
			return -ENOMEM;
	}
	if (r->share && !r->peer_cids) {
		/* As many as this worker's own: every other worker's connections may rebind here. */
		rc = qg_cid_cache_create(flows * 2 > flows ? flows * 2 : flows, r->tb_seed ^ 0x9e3779b9ULL,
					 &r->peer_cids);
		if (rc)
			return rc;
	}
	if (r->cids)
		return 0;
	/* Each flow keeps up to QG_CID_PER_FLOW CIDs; two per flow covers the common case. */
	return qg_cid_table_create(flows * 2 > flows ? flows * 2 : flows, flows, r->tb_seed, &r->cids);
}

void qg_quic_relay_svc_fini(struct qg_relay *r, uint32_t i)
{
	struct qg_relay_quic *q = &r->quic[i];

	for (uint32_t k = 0; k < QG_CONFIG_QUIC_MAX_LB; k++) {
		qg_quic_lb_config_destroy(q->own[k]);
		q->own[k] = NULL;
	}
	memset(q, 0, sizeof(*q));
	qg_quic_lb_ring_init(&q->ring);
}

void qg_quic_relay_fini(struct qg_relay *r)
{
	for (uint32_t i = 0; r->quic && i < r->svc_cap; i++)
		qg_quic_relay_svc_fini(r, i);
	qg_cid_table_destroy(r->cids);
	qg_cid_cache_destroy(r->peer_cids);
	qg_retry_keys_destroy(r->retry);
	free(r->tb);
}
