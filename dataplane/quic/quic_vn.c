/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Version Negotiation (RFC 8999 Sec 6, RFC 9000 Sec 6 and 17.2.1): the
 * answer the load balancer may send for a version no backend speaks, and the
 * reserved-version probe a health checker uses to get one from a backend.
 */
#include <string.h>

#include "qgate/compiler.h"
#include "qgate/quic.h"

static inline void quic_wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Length octet then the CID; returns the new offset. memcpy(NULL, 0) is UB, hence the test. */
static size_t quic_put_cid(uint8_t *out, size_t off, const uint8_t *cid, size_t len)
{
	out[off++] = (uint8_t)len;
	if (len)
		memcpy(out + off, cid, len);
	return off + len;
}

static int quic_cid_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

size_t qg_quic_build_vn(uint8_t *out, size_t cap, const struct qg_quic_hdr *in, const uint32_t *versions,
			size_t n, uint8_t random_byte)
{
	size_t need, off, i;

	/*
	 * Short headers never trigger VN and a VN is never answered with a VN
	 * (RFC 9000 Sec 6.1, 17.2.1): either could loop between two endpoints.
	 */
	if (in->form != QG_QUIC_FORM_LONG || in->type == QG_QUIC_TYPE_VERSION_NEGOTIATION || n == 0)
		return 0;
	need = QG_QUIC_VN_HDR_LEN(in->dcid_len, in->scid_len);
	if (cap < need || n > (cap - need) / 4)
		return 0;

	/* 0x40 is unused in VN but servers SHOULD set it for middleboxes that expect it (RFC 9000
	 * Sec 17.2.1). */
	out[0] = 0xc0 | (random_byte & 0x3f);
	quic_wr32(out + 1, QG_QUIC_VERSION_NEGOTIATION);
	/* The CIDs are echoed swapped, so the client can match the VN to its packet (RFC 8999 Sec 6). */
	off = quic_put_cid(out, 5, in->scid, in->scid_len);
	off = quic_put_cid(out, off, in->dcid, in->dcid_len);
	for (i = 0; i < n; i++, off += 4)
		quic_wr32(out + off, versions[i]);
	return off;
}

size_t qg_quic_build_vn_probe(uint8_t *out, size_t cap, uint32_t reserved_version, const uint8_t *dcid,
			      size_t dcid_len, const uint8_t *scid, size_t scid_len)
{
	size_t off;

	/*
	 * A reserved version is one no server supports (RFC 9000 Sec 15), so the
	 * server must negotiate. The 255-byte CIDs keep the header (<= 517
	 * bytes) well under the 1200 bytes a server needs before it answers
	 * (RFC 9000 Sec 6.1, 14.1), so the probe is always exactly that size.
	 */
	if (!qg_quic_version_is_reserved(reserved_version) || dcid_len > QG_QUIC_MAX_CID_LEN_ANY ||
	    scid_len > QG_QUIC_MAX_CID_LEN_ANY || cap < QG_QUIC_MIN_INITIAL_SIZE)
		return 0;
	out[0] = 0xc0;
	quic_wr32(out + 1, reserved_version);
	off = quic_put_cid(out, 5, dcid, dcid_len);
	off = quic_put_cid(out, off, scid, scid_len);
	memset(out + off, 0, QG_QUIC_MIN_INITIAL_SIZE - off);
	return QG_QUIC_MIN_INITIAL_SIZE;
}

int qg_quic_vn_matches_probe(const uint8_t *vn, size_t len, const uint8_t *dcid, size_t dcid_len,
			     const uint8_t *scid, size_t scid_len)
{
	struct qg_quic_hdr h;

	if (qg_quic_parse(vn, len, 0, &h) != 0 || h.type != QG_QUIC_TYPE_VERSION_NEGOTIATION)
		return 0;
	if (h.versions_len == 0 || h.versions_len % 4 != 0)
		return 0;
	return quic_cid_eq(h.dcid, h.dcid_len, scid, scid_len) &&
	       quic_cid_eq(h.scid, h.scid_len, dcid, dcid_len);
}
