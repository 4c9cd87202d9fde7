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
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
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

/* DCID (and SCID with another salt): nonce + flow id, so unique per flow. */
static void put_cid(uint8_t *p, const struct lg_model *m, uint32_t flow, uint32_t salt)
{
	put_be32(p, m->cid_nonce ^ salt);
	put_be32(p + 4, flow);
}

/* Write the QUIC header (if any); returns its length, where the stamp starts. */
static size_t build_header(const struct lg_model *m, uint32_t flow, uint64_t seq, size_t len, uint8_t *p)
{
	size_t rest;

	if (m->payload != LG_PAYLOAD_QUIC)
		return 0;
	if (seq != 0) {
		p[0] = 0x40; /* short header, fixed bit */
		put_cid(p + 1, m, flow, 0);
		return LG_QUIC_SHORT_HDR;
	}
	p[0] = 0xc0; /* long header, fixed bit, type Initial, 1-byte packet number */
	put_be32(p + 1, 1);
	p[5] = LG_QUIC_CID_LEN;
	put_cid(p + 6, m, flow, 0);
	p[14] = LG_QUIC_CID_LEN;
	put_cid(p + 15, m, flow, 0x5c1dc1d5u);
	p[23] = 0;	 /* token length */
	rest = len - 26; /* Length covers packet number and payload */
	p[24] = (uint8_t)(0x40 | (rest >> 8));
	p[25] = (uint8_t)rest;
	p[26] = 0; /* packet number */
	return LG_QUIC_LONG_HDR;
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

static size_t stamp_offset(const struct lg_model *m, const uint8_t *buf, size_t len)
{
	if (m->payload != LG_PAYLOAD_QUIC || len == 0)
		return 0;
	return (buf[0] & 0x80) ? LG_QUIC_LONG_HDR : LG_QUIC_SHORT_HDR;
}

int lg_parse(const struct lg_model *m, const uint8_t *buf, size_t len, uint32_t *flow, uint64_t *seq)
{
	size_t off = stamp_offset(m, buf, len);
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
	uint8_t head[LG_QUIC_LONG_HDR + LG_STAMP_LEN];
	size_t off;

	if (len != datagram_len(m, seq))
		return 0;
	off = build_header(m, f->id, seq, len, head);
	put_stamp(head + off, f->id, seq, sent_ns);
	return memcmp(buf, head, off + LG_STAMP_LEN) == 0 &&
	       memcmp(buf + off + LG_STAMP_LEN, m->filler + off + LG_STAMP_LEN, len - off - LG_STAMP_LEN) ==
		       0;
}
