/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC packet headers as a load balancer sees them: only what is readable
 * without keys. The version-independent layout (RFC 8999) is parsed for every
 * version; QUIC v1 (RFC 9000) and v2 (RFC 9369) long headers are parsed
 * further up to the packet number (token, Length), which is where header
 * protection starts (RFC 9001 Sec 5.4).
 *
 * Rules followed (RFC 8999 Sec 7 lists the false assumptions):
 *  - the fixed bit (0x40) is reported, never required: RFC 9287 lets peers
 *    grease it, and other versions may use it differently;
 *  - connection IDs of unknown versions may be up to 255 bytes, only v1/v2
 *    limit them to 20 (RFC 9000 Sec 17.2);
 *  - a short header does not encode its DCID length: the caller knows it.
 *
 * Every function here reads only inside [pkt, pkt + len), never allocates
 * and keeps no state: fit for the per-packet path and for hostile input.
 */
#ifndef QGATE_QUIC_H
#define QGATE_QUIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QG_QUIC_VERSION_NEGOTIATION 0x00000000u /**< RFC 8999 Sec 6 */
#define QG_QUIC_VERSION_1	    0x00000001u /**< RFC 9000 */
#define QG_QUIC_VERSION_2	    0x6b3343cfu /**< RFC 9369 Sec 3.1 */

#define QG_QUIC_MAX_CID_LEN_V1	 20   /**< RFC 9000 Sec 17.2, also v2 */
#define QG_QUIC_MAX_CID_LEN_ANY	 255  /**< RFC 8999 Sec 5.1: an 8-bit length */
#define QG_QUIC_MIN_INITIAL_SIZE 1200 /**< RFC 9000 Sec 14.1: UDP payload of an Initial-bearing datagram */
#define QG_QUIC_RETRY_TAG_LEN	 16   /**< RFC 9001 Sec 5.8: Retry Integrity Tag */
#define QG_QUIC_MAX_COALESCED	 64   /**< qg_quic_datagram_has_initial() looks at no more packets */

/** Bytes of a Version Negotiation packet before its version list (RFC 8999 Sec 6). */
#define QG_QUIC_VN_HDR_LEN(dcid_len, scid_len) (7 + (size_t)(dcid_len) + (size_t)(scid_len))

/** Header form, bit 0x80 of the first byte (RFC 8999 Sec 5). */
enum qg_quic_form {
	QG_QUIC_FORM_SHORT = 0,
	QG_QUIC_FORM_LONG = 1,
};

/**
 * Packet type, normalised across v1 and v2 (whose type bits differ, RFC 9369
 * Sec 3.2). Long headers of any other version are UNKNOWN_VERSION; short
 * headers are SHORT (1-RTT in v1/v2, but the version is not on the wire).
 */
enum qg_quic_type {
	QG_QUIC_TYPE_INITIAL,
	QG_QUIC_TYPE_ZERO_RTT,
	QG_QUIC_TYPE_HANDSHAKE,
	QG_QUIC_TYPE_RETRY,
	QG_QUIC_TYPE_VERSION_NEGOTIATION,
	QG_QUIC_TYPE_UNKNOWN_VERSION,
	QG_QUIC_TYPE_SHORT,
};

/** Why qg_quic_parse() rejected a packet (negative return values). */
enum qg_quic_bad {
	QG_QUIC_BAD_EMPTY = -1,		  /**< zero-length datagram */
	QG_QUIC_BAD_LONG_TRUNCATED = -2,  /**< long header ends before its CID length octets */
	QG_QUIC_BAD_CID_LEN = -3,	  /**< v1/v2 CID longer than 20 bytes */
	QG_QUIC_BAD_CID_TRUNCATED = -4,	  /**< a CID runs past the end of the datagram */
	QG_QUIC_BAD_VARINT = -5,	  /**< a variable-length integer runs past the end */
	QG_QUIC_BAD_TOKEN = -6,		  /**< Initial token runs past the end of the datagram */
	QG_QUIC_BAD_LENGTH = -7,	  /**< Length field runs past the datagram, or is 0 */
	QG_QUIC_BAD_RETRY_TRUNCATED = -8, /**< Retry shorter than its 16-byte integrity tag */
	QG_QUIC_BAD_SHORT_TRUNCATED = -9, /**< short header shorter than 1 + DCID length */
	QG_QUIC_BAD_ARG = -10,		  /**< short_dcid_len > 255 */
};

/**
 * One parsed header. Pointers point into the parsed buffer and are valid as
 * long as it is; pointers a packet type does not have are NULL with length 0.
 */
struct qg_quic_hdr {
	const uint8_t *dcid;	 /**< Destination Connection ID (any form) */
	const uint8_t *scid;	 /**< Source Connection ID (long headers only) */
	const uint8_t *token;	 /**< Initial: Token; Retry: Retry Token without the tag */
	const uint8_t *versions; /**< Version Negotiation: the Supported Version list */
	uint64_t length;	 /**< Initial, 0-RTT, Handshake: the Length field (PN + payload) */
	size_t token_len;
	size_t versions_len; /**< bytes; the list is not checked to be a multiple of 4 */
	size_t pn_offset;    /**< Initial, 0-RTT, Handshake: where the (protected) packet number starts */
	size_t pkt_len;	  /**< bytes of the datagram this packet covers (rest of it when it has no Length) */
	uint32_t version; /**< long headers; 0 for short headers (see form) */
	enum qg_quic_form form;
	enum qg_quic_type type;
	uint8_t first_byte; /**< raw; its low bits are header-protected in v1/v2 */
	uint8_t fixed_bit;  /**< 1 when 0x40 was set: informative only (RFC 8999 Sec 7, RFC 9287) */
	uint8_t dcid_len;
	uint8_t scid_len;
};

/**
 * Parse the header of the first QUIC packet in a UDP payload.
 * @param pkt            UDP payload
 * @param len            its length
 * @param short_dcid_len DCID length to assume when it is a short header (the
 *                       QUIC-LB config's, or qg_quic_short_dcid_len_selfenc());
 *                       0..255, ignored for long headers
 * @param out            filled on success, unspecified on failure
 * @return 0, or a negative enum qg_quic_bad reason
 */
int qg_quic_parse(const uint8_t *pkt, size_t len, size_t short_dcid_len, struct qg_quic_hdr *out);

/**
 * 1 when the datagram carries at least one Initial (v1 or v2), walking
 * coalesced long-header packets by their Length fields (RFC 9000 Sec 12.2),
 * at most QG_QUIC_MAX_COALESCED of them. Such a datagram must be at least
 * QG_QUIC_MIN_INITIAL_SIZE bytes (RFC 9000 Sec 14.1). Conservative: an
 * Initial whose header is malformed after its version still counts, so a
 * damaged small Initial is held to the size rule rather than forwarded; and
 * a datagram with more than QG_QUIC_MAX_COALESCED packets (no sender needs
 * more than four: one per packet number space and 0-RTT) counts too.
 * @return 1 or 0
 */
int qg_quic_datagram_has_initial(const uint8_t *pkt, size_t len, size_t short_dcid_len);

/**
 * Build a Version Negotiation packet answering the parsed packet in (RFC 9000
 * Sec 6.1, 17.2.1; RFC 8999 Sec 6): DCID := its SCID, SCID := its DCID,
 * first byte 0xc0 | (random_byte & 0x3f), version 0, then versions[0..n-1].
 * Exactly as long as needed. The caller decides whether to answer at all
 * (unsupported version, datagram >= 1200 bytes for v1, not deny-listed).
 * @return bytes written; 0 (nothing written) when in is a short header or a
 *         Version Negotiation packet (never answer those), n is 0, or cap is
 *         too small
 */
size_t qg_quic_build_vn(uint8_t *out, size_t cap, const struct qg_quic_hdr *in, const uint32_t *versions,
			size_t n, uint8_t random_byte);

/**
 * Build a VN health probe: a long header with first byte 0xc0, the reserved
 * version, the given CIDs, zero-padded to QG_QUIC_MIN_INITIAL_SIZE so that a
 * live server answers it with Version Negotiation (RFC 9000 Sec 6.1). Use CIDs
 * of 8..20 bytes: some servers reject longer ones whatever the version.
 * @return bytes written (>= 1200); 0 when reserved_version is not of the form
 *         0x?a?a?a?a, a CID is longer than 255 bytes, or cap is too small
 */
size_t qg_quic_build_vn_probe(uint8_t *out, size_t cap, uint32_t reserved_version, const uint8_t *dcid,
			      size_t dcid_len, const uint8_t *scid, size_t scid_len);

/**
 * 1 when vn is a well-formed Version Negotiation packet (long header, version
 * 0, a non-empty list of whole 32-bit versions) answering the probe built
 * with dcid/scid: its DCID is the probe's SCID and its SCID the probe's DCID.
 * @return 1 or 0
 */
int qg_quic_vn_matches_probe(const uint8_t *vn, size_t len, const uint8_t *dcid, size_t dcid_len,
			     const uint8_t *scid, size_t scid_len);

/** 1 for versions reserved to exercise version negotiation (RFC 9000 Sec 15). */
static inline int qg_quic_version_is_reserved(uint32_t v)
{
	return (v & 0x0f0f0f0fu) == 0x0a0a0a0au;
}

/** 1 for the versions whose long headers this parser understands beyond the invariants. */
static inline int qg_quic_version_is_known(uint32_t v)
{
	return v == QG_QUIC_VERSION_1 || v == QG_QUIC_VERSION_2;
}

/**
 * Total DCID length of a short header whose CID self-encodes its length
 * (QUIC-LB draft-21 Sec 2.1: the low 5 bits of the first octet are the length
 * of the REST of the CID). Pass the CID's first octet, i.e. pkt[1].
 * @return 1..20, or QG_QUIC_BAD_CID_LEN when the encoded length would make
 *         a CID longer than v1 allows
 */
static inline int qg_quic_short_dcid_len_selfenc(uint8_t first_cid_octet)
{
	int rest = first_cid_octet & 0x1f;

	return rest < QG_QUIC_MAX_CID_LEN_V1 ? rest + 1 : QG_QUIC_BAD_CID_LEN;
}

/** Short name of a reason, for logs ("cid-len", ...); "?" for unknown values. */
const char *qg_quic_bad_str(int reason);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_QUIC_H */
