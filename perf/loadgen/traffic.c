/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen traffic model: what each datagram looks like and how a reply
 * is checked. Independent of the I/O driver.
 *
 * A datagram is [QUIC header] stamp filler: the stamp carries magic, flow id,
 * sequence number and send time; the filler is a fixed pattern. A reply must
 * be byte-identical (the echo returns it unchanged), which checks that a relay
 * neither corrupts, truncates nor crosses payloads between flows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/quic_lb.h"
#include "loadgen.h"

int lg_model_init(struct lg_model *m, enum lg_payload payload, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->payload = payload;
	m->size = size;
	m->initial_size =
		payload == LG_PAYLOAD_QUIC && size < LG_QUIC_INITIAL_MIN ? LG_QUIC_INITIAL_MIN : size;
	m->max_size = m->initial_size > size ? m->initial_size : size;
	/* Connection IDs differ between runs so a relay never sees stale state as ours. */
	m->cid_nonce = (uint32_t)(qg_clock_ns() * 0x9E3779B97F4A7C15ULL >> 32);
	m->dcid_len = LG_QUIC_CID_LEN;
	m->filler = malloc(m->max_size);
	if (!m->filler)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->max_size; i++)
		m->filler[i] = (uint8_t)(i * 131u + 17u);
	return 0;
}

void lg_model_free(struct lg_model *m)
{
	free(m->filler);
	m->filler = NULL;
	free(m->cids);
	m->cids = NULL;
}

int lg_flow_init(struct lg_flow *f, uint32_t id, uint32_t ring_size)
{
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->fd = -1;
	f->mask = ring_size - 1;
	f->ring = calloc(ring_size, sizeof(*f->ring));
	return f->ring ? 0 : -ENOMEM;
}

void lg_flow_free(struct lg_flow *f)
{
	free(f->ring);
	f->ring = NULL;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An 8-byte CID (the SCID, or the DCID without QUIC-LB): nonce + flow id, so unique per flow. */
static void put_cid(uint8_t *p, const struct lg_model *m, uint32_t flow, uint32_t salt)
{
	put_be32(p, m->cid_nonce ^ salt);
	put_be32(p + 4, flow);
}

void lg_put_dcid(const struct lg_model *m, uint32_t flow, uint8_t *p)
{
	if (m->cids)
		memcpy(p, m->cids + (size_t)flow * m->dcid_len, m->dcid_len);
	else
		put_cid(p, m, flow, 0);
}

/* Write the QUIC header (if any); returns its length, where the stamp starts. */
static size_t build_header(const struct lg_model *m, uint32_t flow, uint64_t seq, size_t len, uint8_t *p)
{
	uint32_t dl = m->dcid_len;
	uint8_t *q;
	size_t rest;

	if (m->payload != LG_PAYLOAD_QUIC)
		return 0;
	if (seq != 0) {
		p[0] = 0x40; /* short header, fixed bit */
		lg_put_dcid(m, flow, p + 1);
		return 1 + dl;
	}
	p[0] = 0xc0; /* long header, fixed bit, type Initial, 1-byte packet number */
	put_be32(p + 1, 1);
	p[5] = (uint8_t)dl;
	lg_put_dcid(m, flow, p + 6);
	q = p + 6 + dl;
	q[0] = LG_QUIC_CID_LEN;
	put_cid(q + 1, m, flow, 0x5c1dc1d5u);
	q[9] = 0;			   /* token length */
	rest = len - (size_t)(q + 12 - p); /* Length covers packet number and payload */
	q[10] = (uint8_t)(0x40 | (rest >> 8));
	q[11] = (uint8_t)rest;
	q[12] = 0; /* packet number */
	return LG_QUIC_LONG_FIXED + dl;
}

static size_t datagram_len(const struct lg_model *m, uint64_t seq)
{
	return m->payload == LG_PAYLOAD_QUIC && seq == 0 ? m->initial_size : m->size;
}

static void put_stamp(uint8_t *p, uint32_t flow, uint64_t seq, uint64_t ts)
{
	uint32_t magic = LG_MAGIC;

	/* Host byte order: only this process reads it back. */
	memcpy(p, &magic, 4);
	memcpy(p + 4, &flow, 4);
	memcpy(p + 8, &seq, 8);
	memcpy(p + 16, &ts, 8);
}

size_t lg_build(const struct lg_model *m, const struct lg_flow *f, uint64_t seq, uint64_t now_ns,
		uint8_t *buf)
{
	size_t len = datagram_len(m, seq);
	size_t off = build_header(m, f->id, seq, len, buf);

	put_stamp(buf + off, f->id, seq, now_ns);
	memcpy(buf + off + LG_STAMP_LEN, m->filler + off + LG_STAMP_LEN, len - off - LG_STAMP_LEN);
	return len;
}

int lg_parse(const struct lg_model *m, const uint8_t *buf, size_t len, uint32_t *flow, uint64_t *seq)
{
	size_t off = lg_stamp_offset(m, buf, len);
	uint32_t magic;

	if (len < off + LG_STAMP_LEN)
		return -EBADMSG;
	memcpy(&magic, buf + off, 4);
	if (magic != LG_MAGIC)
		return -EBADMSG;
	memcpy(flow, buf + off + 4, 4);
	memcpy(seq, buf + off + 8, 8);
	return 0;
}

int lg_verify(const struct lg_model *m, const struct lg_flow *f, uint64_t seq, uint64_t sent_ns,
	      const uint8_t *buf, size_t len)
{
	uint8_t head[LG_QUIC_MAX_HDR + LG_STAMP_LEN];
	size_t off;

	if (len != datagram_len(m, seq))
		return 0;
	off = build_header(m, f->id, seq, len, head);
	put_stamp(head + off, f->id, seq, sent_ns);
	return memcmp(buf, head, off + LG_STAMP_LEN) == 0 &&
	       memcmp(buf + off + LG_STAMP_LEN, m->filler + off + LG_STAMP_LEN, len - off - LG_STAMP_LEN) ==
		       0;
}

/* ---- QUIC-LB connection IDs --------------------------------------------- */

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly n bytes of hex from s[0..len). @return 0 or -EINVAL. */
static int parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* A decimal field of --quic-lb ending at ':' or the end. */
static int parse_field(const char **s, unsigned min, unsigned max, uint8_t *out)
{
	unsigned v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	if (v < min || (*p && *p != ':'))
		return -EINVAL;
	*out = (uint8_t)v;
	*s = *p ? p + 1 : p;
	return 0;
}

int lg_quic_lb_parse(const char *s, struct lg_quic_lb *lb, const char **why)
{
	const char *p = s;

	*why = "--quic-lb wants CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX] (config id 0..6, server ID length "
	       "1..15, nonce length 4..18, the two lengths <= 19 together, key 32 hex digits)";
	if (parse_field(&p, 0, QG_QUIC_LB_MAX_CONFIG_ID, &lb->config_id) ||
	    parse_field(&p, QG_QUIC_LB_MIN_SID_LEN, QG_QUIC_LB_MAX_SID_LEN, &lb->sid_len) || !*p ||
	    parse_field(&p, QG_QUIC_LB_MIN_NONCE_LEN, QG_QUIC_LB_MAX_NONCE_LEN, &lb->nonce_len) ||
	    lb->sid_len + lb->nonce_len > QG_QUIC_LB_MAX_PAYLOAD_LEN)
		return -EINVAL;
	/* parse_field() stepped over a ':' only when more follows: p is the key, or "" without one. */
	lb->has_key = *p != '\0';
	if (lb->has_key && parse_hex(p, strlen(p), lb->key, QG_QUIC_LB_KEY_LEN))
		return -EINVAL;
	if (p > s && p[-1] == ':' && !*p)
		return -EINVAL; /* a trailing ':' with no key */
	lb->enabled = 1;
	return 0;
}

int lg_quic_lb_finish(struct lg_quic_lb *lb, enum lg_payload payload, const char **why)
{
	const char *p = lb->sids_text;

	if (!lb->enabled) {
		*why = "--server-ids needs --quic-lb";
		return lb->sids_text ? -EINVAL : 0;
	}
	if (payload != LG_PAYLOAD_QUIC) {
		*why = "--quic-lb needs --payload quic";
		return -EINVAL;
	}
	if (!p || !*p) {
		*why = "--quic-lb needs --server-ids HEX,HEX,... (the backends' server IDs)";
		return -EINVAL;
	}
	lb->n_sids = 1;
	for (const char *c = p; *c; c++)
		lb->n_sids += *c == ',';
	*why = "--server-ids wants at most 4096 server IDs";
	if (lb->n_sids > LG_QUIC_LB_MAX_SIDS)
		return -EINVAL;
	*why = "out of memory";
	lb->sids = malloc((size_t)lb->n_sids * lb->sid_len);
	if (!lb->sids)
		return -ENOMEM;
	*why = "--server-ids wants comma-separated hex server IDs of exactly SID_LEN bytes each (2 x "
	       "SID_LEN hex digits)";
	for (uint32_t i = 0; i < lb->n_sids; i++) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (parse_hex(p, n, lb->sids + (size_t)i * lb->sid_len, lb->sid_len))
			return -EINVAL;
		p += n + (e != NULL);
	}
	return 0;
}

void lg_quic_lb_free(struct lg_quic_lb *lb)
{
	free(lb->sids);
	lb->sids = NULL;
}

void lg_quic_lb_describe(const struct lg_quic_lb *lb, char *buf, size_t cap)
{
	snprintf(buf, cap, "%u:%u:%u", lb->config_id, lb->sid_len, lb->nonce_len);
}

int lg_model_set_quic_lb(struct lg_model *m, const struct lg_quic_lb *lb, uint32_t flows)
{
	struct qg_quic_lb_config *c;
	uint8_t nonce[QG_QUIC_LB_MAX_NONCE_LEN];
	size_t len;
	int r;

	r = qg_quic_lb_config_create(lb->config_id, lb->sid_len, lb->nonce_len, lb->has_key ? lb->key : NULL,
				     &c);
	if (r)
		return r;
	len = qg_quic_lb_config_cid_len(c);
	m->cids = malloc((size_t)flows * len);
	if (!m->cids) {
		qg_quic_lb_config_destroy(c);
		return -ENOMEM;
	}
	/*
	 * Nonce: run salt, then the flow id xor the run nonce in the last four
	 * bytes, so it never repeats within a run (whatever the server ID) and
	 * differs between runs, like the plain CIDs.
	 */
	for (uint32_t i = 0; i < lb->nonce_len; i++)
		nonce[i] = (uint8_t)((m->cid_nonce * 0x9E3779B1u) >> (8 * (i % 4))) ^ (uint8_t)(i * 29u);
	for (uint32_t f = 0; f < flows; f++) {
		const uint8_t *sid = lb->sids + (size_t)(f % lb->n_sids) * lb->sid_len;

		put_be32(nonce + lb->nonce_len - 4, f ^ m->cid_nonce);
		r = qg_quic_lb_encode(c, sid, nonce, m->cids + (size_t)f * len, len);
		if (r < 0)
			break;
		r = 0;
	}
	qg_quic_lb_config_destroy(c);
	if (r) {
		free(m->cids);
		m->cids = NULL;
		return r;
	}
	m->dcid_len = (uint32_t)len;
	m->n_cids = flows;
	return 0;
}
