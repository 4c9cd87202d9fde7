/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC header parsing for the load balancer: the RFC 8999 invariants for
 * every version, plus the v1/v2 long-header fields in front of the packet
 * number. Each length is checked against the bytes left before the bytes it
 * covers are read; lengths are compared as "n > len - off" with off <= len
 * so that no addition can wrap.
 */
#include <string.h>

#include "qgate/compiler.h"
#include "qgate/quic.h"

/* Long header up to and including the SCID length octet with empty DCID: RFC 8999 Sec 5.1. */
#define QUIC_LONG_MIN_LEN 7

static inline uint32_t quic_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Variable-length integer (RFC 9000 Sec 16): the two high bits of the first
 * byte give its size, 1, 2, 4 or 8 bytes. Non-minimal encodings are valid.
 * Returns the bytes it takes, or 0 when it runs past avail.
 */
static inline size_t quic_varint(const uint8_t *p, size_t avail, uint64_t *v)
{
	size_t n, i;
	uint64_t x;

	if (unlikely(avail == 0))
		return 0;
	n = (size_t)1 << (p[0] >> 6);
	if (unlikely(n > avail))
		return 0;
	x = p[0] & 0x3f;
	for (i = 1; i < n; i++)
		x = x << 8 | p[i];
	*v = x;
	return n;
}

/*
 * Long Packet Type bits (0x30) of a v1 or v2 header. v1: RFC 9000 Sec 17.2
 * (0 Initial, 1 0-RTT, 2 Handshake, 3 Retry); v2 rotates them, RFC 9369
 * Sec 3.2 (0 Retry, 1 Initial, 2 0-RTT, 3 Handshake).
 */
static inline enum qg_quic_type quic_long_type(uint8_t b0, uint32_t version)
{
	static const uint8_t v1[4] = { QG_QUIC_TYPE_INITIAL, QG_QUIC_TYPE_ZERO_RTT, QG_QUIC_TYPE_HANDSHAKE,
				       QG_QUIC_TYPE_RETRY };
	static const uint8_t v2[4] = { QG_QUIC_TYPE_RETRY, QG_QUIC_TYPE_INITIAL, QG_QUIC_TYPE_ZERO_RTT,
				       QG_QUIC_TYPE_HANDSHAKE };
	unsigned int t = (b0 >> 4) & 3;

	return (enum qg_quic_type)(version == QG_QUIC_VERSION_2 ? v2[t] : v1[t]);
}

/* A short header (RFC 8999 Sec 5.2): only the DCID, whose length the caller supplies. */
static int quic_parse_short(const uint8_t *pkt, size_t len, size_t dcid_len, struct qg_quic_hdr *out)
{
	if (unlikely(dcid_len > QG_QUIC_MAX_CID_LEN_ANY))
		return QG_QUIC_BAD_ARG;
	if (unlikely(dcid_len > len - 1))
		return QG_QUIC_BAD_SHORT_TRUNCATED;
	out->form = QG_QUIC_FORM_SHORT;
	out->type = QG_QUIC_TYPE_SHORT;
	out->dcid = pkt + 1;
	out->dcid_len = (uint8_t)dcid_len;
	out->pkt_len = len; /* no Length field: a short-header packet is always last (RFC 9000 Sec 12.2) */
	return 0;
}

/*
 * After the CIDs of a v1/v2 packet: Initial token, then Length for the types
 * that have one (RFC 9000 Sec 17.2.2-17.2.5, same layout in RFC 9369).
 */
static int quic_parse_v1_rest(const uint8_t *pkt, size_t len, size_t off, struct qg_quic_hdr *out)
{
	uint64_t v;
	size_t n;

	if (out->type == QG_QUIC_TYPE_RETRY) {
		/* No Length: the Retry Token is whatever precedes the 16-byte tag (Sec 17.2.5). */
		if (unlikely(len - off < QG_QUIC_RETRY_TAG_LEN))
			return QG_QUIC_BAD_RETRY_TRUNCATED;
		out->token = pkt + off;
		out->token_len = len - off - QG_QUIC_RETRY_TAG_LEN;
		return 0;
	}
	if (out->type == QG_QUIC_TYPE_INITIAL) {
		n = quic_varint(pkt + off, len - off, &v);
		if (unlikely(!n))
			return QG_QUIC_BAD_VARINT;
		off += n;
		if (unlikely(v > len - off))
			return QG_QUIC_BAD_TOKEN;
		out->token = pkt + off;
		out->token_len = (size_t)v;
		off += (size_t)v;
	}
	n = quic_varint(pkt + off, len - off, &v);
	if (unlikely(!n))
		return QG_QUIC_BAD_VARINT;
	off += n;
	/* Length covers the packet number (>= 1 byte) and the payload; coalesced packets may follow. */
	if (unlikely(v == 0 || v > len - off))
		return QG_QUIC_BAD_LENGTH;
	out->length = v;
	out->pn_offset = off;
	out->pkt_len = off + (size_t)v;
	return 0;
}

int qg_quic_parse(const uint8_t *pkt, size_t len, size_t short_dcid_len, struct qg_quic_hdr *out)
{
	size_t off, max_cid;
	uint32_t version;
	uint8_t b0, cid_len;

	if (unlikely(len == 0))
		return QG_QUIC_BAD_EMPTY;
	memset(out, 0, sizeof(*out));
	b0 = pkt[0];
	out->first_byte = b0;
	out->fixed_bit = !!(b0 & 0x40);
	if (!(b0 & 0x80))
		return quic_parse_short(pkt, len, short_dcid_len, out);

	/* Long header, RFC 8999 Sec 5.1: byte0 | Version | DCID Len | DCID | SCID Len | SCID | ... */
	if (unlikely(len < QUIC_LONG_MIN_LEN))
		return QG_QUIC_BAD_LONG_TRUNCATED;
	version = quic_rd32(pkt + 1);
	out->form = QG_QUIC_FORM_LONG;
	out->version = version;
	/* Only v1/v2 limit CIDs to 20 bytes; other versions may use all 255 (RFC 8999 Sec 5.1). */
	max_cid = qg_quic_version_is_known(version) ? QG_QUIC_MAX_CID_LEN_V1 : QG_QUIC_MAX_CID_LEN_ANY;

	cid_len = pkt[5];
	off = 6;
	if (unlikely(cid_len > max_cid))
		return QG_QUIC_BAD_CID_LEN;
	if (unlikely(cid_len > len - off))
		return QG_QUIC_BAD_CID_TRUNCATED;
	out->dcid = pkt + off;
	out->dcid_len = cid_len;
	off += cid_len;

	if (unlikely(off >= len))
		return QG_QUIC_BAD_LONG_TRUNCATED;
	cid_len = pkt[off++];
	if (unlikely(cid_len > max_cid))
		return QG_QUIC_BAD_CID_LEN;
	if (unlikely(cid_len > len - off))
		return QG_QUIC_BAD_CID_TRUNCATED;
	out->scid = pkt + off;
	out->scid_len = cid_len;
	off += cid_len;
	out->pkt_len = len;

	if (version == QG_QUIC_VERSION_NEGOTIATION) {
		/* RFC 8999 Sec 6: the rest is the Supported Version list. */
		out->type = QG_QUIC_TYPE_VERSION_NEGOTIATION;
		out->versions = pkt + off;
		out->versions_len = len - off;
		return 0;
	}
	if (!qg_quic_version_is_known(version)) {
		/* Nothing after the SCID is defined by the invariants. */
		out->type = QG_QUIC_TYPE_UNKNOWN_VERSION;
		return 0;
	}
	/* The type bits are not header-protected (RFC 9001 Sec 5.4.1 masks only the low 4 bits). */
	out->type = quic_long_type(b0, version);
	return quic_parse_v1_rest(pkt, len, off, out);
}

/*
 * Whether a packet that failed to parse still announces itself as a v1/v2
 * Initial: first byte and version are all it takes.
 */
static int quic_claims_initial(const uint8_t *pkt, size_t len)
{
	uint32_t version;

	if (len < 5 || !(pkt[0] & 0x80))
		return 0;
	version = quic_rd32(pkt + 1);
	return qg_quic_version_is_known(version) && quic_long_type(pkt[0], version) == QG_QUIC_TYPE_INITIAL;
}

int qg_quic_datagram_has_initial(const uint8_t *pkt, size_t len, size_t short_dcid_len)
{
	struct qg_quic_hdr h;
	size_t off = 0;
	unsigned int i;

	/*
	 * RFC 9000 Sec 12.2: packets with a Length field may be followed by more
	 * packets; one without (short header, Retry, VN, unknown version) ends
	 * the datagram. Each step advances >= 8 bytes; the count bound caps the
	 * work on a datagram of tiny packets, and hitting it answers 1: only a
	 * forged datagram gets there, so hold it to the Initial size rule.
	 */
	for (i = 0; i < QG_QUIC_MAX_COALESCED; i++) {
		if (qg_quic_parse(pkt + off, len - off, short_dcid_len, &h) < 0)
			return quic_claims_initial(pkt + off, len - off);
		if (h.type == QG_QUIC_TYPE_INITIAL)
			return 1;
		if (h.pkt_len >= len - off)
			return 0;
		off += h.pkt_len;
	}
	return 1;
}

const char *qg_quic_bad_str(int reason)
{
	switch (reason) {
	case QG_QUIC_BAD_EMPTY:
		return "empty";
	case QG_QUIC_BAD_LONG_TRUNCATED:
		return "long-truncated";
	case QG_QUIC_BAD_CID_LEN:
		return "cid-len";
	case QG_QUIC_BAD_CID_TRUNCATED:
		return "cid-truncated";
	case QG_QUIC_BAD_VARINT:
		return "varint";
	case QG_QUIC_BAD_TOKEN:
		return "token";
	case QG_QUIC_BAD_LENGTH:
		return "length";
	case QG_QUIC_BAD_RETRY_TRUNCATED:
		return "retry-truncated";
	case QG_QUIC_BAD_SHORT_TRUNCATED:
		return "short-truncated";
	case QG_QUIC_BAD_ARG:
		return "arg";
	default:
		return "?";
	}
}
