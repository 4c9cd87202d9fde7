/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the QUIC header parser: any datagram, parsed with
 * several short-header DCID lengths, walked for coalesced Initials and, when
 * it parses, answered with Version Negotiation. ASan catches reads outside
 * the input (libFuzzer hands it over in an exactly-sized heap buffer); the
 * checks below catch headers that are inconsistent with the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qgate/quic.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

static int inside(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
	if (!p)
		return n == 0;
	return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static void check_hdr(const uint8_t *data, size_t size, const struct qg_quic_hdr *h)
{
	CHECK(inside(data, size, h->dcid, h->dcid_len));
	CHECK(inside(data, size, h->scid, h->scid_len));
	CHECK(inside(data, size, h->token, h->token_len));
	CHECK(inside(data, size, h->versions, h->versions_len));
	CHECK(h->pkt_len > 0 && h->pkt_len <= size);
	CHECK(h->form == QG_QUIC_FORM_LONG || h->form == QG_QUIC_FORM_SHORT);
	CHECK((h->form == QG_QUIC_FORM_SHORT) == (h->type == QG_QUIC_TYPE_SHORT));
	CHECK(h->form == QG_QUIC_FORM_LONG || h->scid == NULL);
	CHECK(h->fixed_bit == !!(data[0] & 0x40));
	if (h->pn_offset) {
		CHECK(h->length > 0);
		CHECK(h->pn_offset + h->length == h->pkt_len);
	}
	if (h->form == QG_QUIC_FORM_LONG && qg_quic_version_is_known(h->version))
		CHECK(h->dcid_len <= QG_QUIC_MAX_CID_LEN_V1 && h->scid_len <= QG_QUIC_MAX_CID_LEN_V1);
}

/* Answer the packet with VN and check the answer parses back with the CIDs swapped. */
static void check_vn(const struct qg_quic_hdr *h)
{
	static const uint32_t versions[] = { QG_QUIC_VERSION_1, QG_QUIC_VERSION_2, 0x1a2a3a4a };
	uint8_t out[QG_QUIC_VN_HDR_LEN(255, 255) + sizeof(versions)];
	struct qg_quic_hdr vn;
	size_t n;

	n = qg_quic_build_vn(out, sizeof(out), h, versions, 3, (uint8_t)h->dcid_len);
	if (h->form == QG_QUIC_FORM_SHORT || h->type == QG_QUIC_TYPE_VERSION_NEGOTIATION) {
		CHECK(n == 0);
		return;
	}
	CHECK(n == QG_QUIC_VN_HDR_LEN(h->dcid_len, h->scid_len) + sizeof(versions));
	CHECK(qg_quic_parse(out, n, 0, &vn) == 0);
	CHECK(vn.type == QG_QUIC_TYPE_VERSION_NEGOTIATION && vn.versions_len == sizeof(versions));
	CHECK((out[0] & 0xc0) == 0xc0);
	CHECK(qg_quic_vn_matches_probe(out, n, h->dcid, h->dcid_len, h->scid, h->scid_len) == 1);
	/* One byte short of the need: nothing written. */
	CHECK(qg_quic_build_vn(out, n - 1, h, versions, 3, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t short_lens[] = { 0, 1, 4, 8, 18, 20, 255, 256 };
	struct qg_quic_hdr h;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(short_lens) / sizeof(short_lens[0]); i++) {
		rc = qg_quic_parse(data, size, short_lens[i], &h);
		CHECK(rc <= 0 && rc >= QG_QUIC_BAD_ARG);
		if (rc == 0) {
			check_hdr(data, size, &h);
			/* Long headers do not depend on the caller's short DCID length. */
			if (h.form == QG_QUIC_FORM_SHORT || i == 0)
				check_vn(&h);
		}
		rc = qg_quic_datagram_has_initial(data, size, short_lens[i]);
		CHECK(rc == 0 || rc == 1);
	}
	if (size >= 2) {
		rc = qg_quic_short_dcid_len_selfenc(data[1]);
		if (rc > 0 && qg_quic_parse(data, size, (size_t)rc, &h) == 0)
			check_hdr(data, size, &h);
	}
	/* A probe carrying the packet's CIDs parses back as an unknown version. */
	if (qg_quic_parse(data, size, 8, &h) == 0) {
		static uint8_t probe[QG_QUIC_MIN_INITIAL_SIZE];
		/* Reserved: low nibbles 0xa, high nibbles from the input (RFC 9000 Sec 15). */
		uint32_t v = 0x0a0a0a0au | (h.version & 0xf0f0f0f0u);
		struct qg_quic_hdr p;

		CHECK(qg_quic_build_vn_probe(probe, sizeof(probe), v, h.dcid, h.dcid_len, h.scid,
					     h.scid_len) == QG_QUIC_MIN_INITIAL_SIZE);
		CHECK(qg_quic_parse(probe, sizeof(probe), 0, &p) == 0);
		CHECK(p.type == QG_QUIC_TYPE_UNKNOWN_VERSION && p.version == v);
		CHECK(p.dcid_len == h.dcid_len && p.scid_len == h.scid_len);
	}
	/* Whatever it is, a VN reply must match only the probe it swaps. */
	if (qg_quic_parse(data, size, 0, &h) == 0 && h.form == QG_QUIC_FORM_LONG)
		(void)qg_quic_vn_matches_probe(data, size, h.scid, h.scid_len, h.dcid, h.dcid_len);
	return 0;
}
