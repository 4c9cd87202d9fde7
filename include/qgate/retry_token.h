/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC Retry offload: the Retry packets qgate sends on behalf of its backends,
 * the address-validation tokens it puts in them, and what a backend needs to
 * finish the handshake after someone else's Retry.
 *
 * Why the backend must cooperate (RFC 9000 Sec 7.3): after a Retry, the
 * client checks that the server's transport parameters carry
 *   original_destination_connection_id (0x00) = the DCID of the client's
 *       FIRST Initial (the one qgate answered and the backend never saw), and
 *   retry_source_connection_id (0x10) = the SCID of the Retry,
 * and closes with TRANSPORT_PARAMETER_ERROR otherwise. The backend receives
 * the client's second Initial, whose DCID is the Retry's SCID and whose
 * Token is the token below: qg_retry_token_read() gives it both values.
 *
 * Token format, version 1 (multi-byte integers big-endian):
 *
 *   offset       len  field
 *   0            1    0 (1 bit: a Retry token) | ODCIL (7 bits, 0..20)
 *   1            n    ODCID: the client's first Destination Connection ID
 *   1+n          1    format: QG_RETRY_TOKEN_FORMAT (1)
 *   2+n          1    key id: which key of the issuer's ring made the tag
 *   3+n          4    issue time: low 32 bits of the issuer's clock, in ms
 *   7+n          12   nonce: 96 random bits (AES-GCM IV)
 *   19+n         1    RSCIL: length of the Retry SCID (1..20)
 *   20+n         m    Retry SCID: the SCID of the Retry, the DCID the client
 *                     puts in its next Initials
 *   20+n+m       16   tag: AES-128-GCM(key, nonce, plaintext = empty,
 *                     AAD = bytes [0, 20+n+m) || client address)
 *   total        36+n+m bytes (at most QG_RETRY_TOKEN_MAX_LEN = 76)
 *
 *   client address (AAD only, never in the token) = family (1 byte: 4 or 6)
 *                  || IP (4 or 16 bytes) || UDP port (2 bytes)
 *
 * The first bit is 0 in every Retry token; tokens a server sends in NEW_TOKEN
 * frames must start with bit 1 so both kinds are told apart (RFC 9000 Sec
 * 8.1.1, and the layout of the no-shared-state token of
 * draft-ietf-quic-retry-offload: a server written for that draft reads the
 * ODCID from the same place).
 *
 * Nothing in the token is secret: the ODCID was on the wire in the client's
 * first Initial, the Retry SCID is on the wire in the Retry and the client's
 * next Initials, the address is in the IP header. What matters is that the
 * token cannot be forged or moved: the tag authenticates every field and,
 * through the AAD, the client's IP address and port. Keeping the CIDs in the
 * clear is what lets a backend read them without qgate's keys, which are
 * random per qgate worker; the backend only ever sees qgate's own address as
 * the client's anyway, so it could not check the binding itself.
 *
 * Replay: tokens are stateless. A token can be replayed from the address it
 * was issued to until it is lifetime_ms old (qgate: 10 s), by anyone able to
 * send from that address and who saw the token (an on-path observer). That is
 * what RFC 9000 Sec 8.1.4 accepts for Retry tokens: they prove the client
 * can receive at its address, not that the packet is fresh; the backend's
 * handshake does the rest.
 *
 * Thread safety: a key ring holds OpenSSL cipher contexts, which carry state.
 * Use one ring per thread (qg_retry_keys_clone()). qg_quic_build_retry() and
 * qg_quic_retry_verify() keep their two fixed-key contexts per thread,
 * created on a thread's first call and freed when it exits. Nothing here
 * allocates per packet.
 *
 * This header is self-contained (C standard headers only) so a QUIC server
 * can link the library for qg_retry_token_read() without the rest of qgate.
 */
#ifndef QGATE_RETRY_TOKEN_H
#define QGATE_RETRY_TOKEN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct qg_addr; /* qgate/addr.h: only qgate itself seals and opens tokens */

#define QG_RETRY_KEY_LEN	     16 /**< AES-128 */
#define QG_RETRY_TOKEN_FORMAT	     1
#define QG_RETRY_TOKEN_NONCE_LEN     12
#define QG_RETRY_TOKEN_TAG_LEN	     16
#define QG_RETRY_MAX_CID_LEN	     20 /**< QUIC v1/v2 connection IDs */
#define QG_RETRY_TOKEN_OVERHEAD	     36 /**< bytes besides the two CIDs */
#define QG_RETRY_TOKEN_MAX_LEN	     (QG_RETRY_TOKEN_OVERHEAD + 2 * QG_RETRY_MAX_CID_LEN)
#define QG_RETRY_DEFAULT_LIFETIME_MS 10000
/** Largest Retry qg_quic_build_retry() can produce with a qgate token: 1+4+1+20+1+20+76+16. */
#define QG_RETRY_PACKET_MAX_LEN (7 + 2 * QG_RETRY_MAX_CID_LEN + QG_RETRY_TOKEN_MAX_LEN + 16)

/** 1 when a token's first bit says Retry token (0), as opposed to a NEW_TOKEN token (1). */
static inline int qg_retry_token_is_retry(const uint8_t *token, size_t len)
{
	return len > 0 && !(token[0] & 0x80);
}

/*
 * Server side: what a backend behind qgate calls.
 */

/**
 * Read the CIDs out of a qgate Retry token (the Token field of a client
 * Initial), WITHOUT checking its tag: qgate checked it, and its binding to
 * the client's address, before forwarding the Initial. Only trust the result
 * when clients can reach the server through qgate alone (as the retry-offload
 * draft's no-shared-state mode requires). Then put
 *   original_destination_connection_id := odcid_out,
 *   retry_source_connection_id         := scid_out (it equals the DCID of
 *                                         the Initial that carried the token)
 * in the transport parameters and treat the client's address as validated.
 * @param odcid_out, scid_out QG_RETRY_MAX_CID_LEN bytes each
 * @return 0; -EINVAL when it is not a well-formed qgate Retry token (a
 *         NEW_TOKEN token of the server's own, say: check that first)
 */
int qg_retry_token_read(const uint8_t *token, size_t len, uint8_t *odcid_out, size_t *odcid_len,
			uint8_t *scid_out, size_t *scid_len);

/*
 * Issuer side: the key ring qgate seals and opens tokens with.
 */

/** The current key and, for a grace period after a rotation, the previous one. Opaque; one per thread. */
struct qg_retry_keys;

/**
 * Create a ring holding one key.
 * @param key_id   identifies the key in the tokens it seals
 * @param key      QG_RETRY_KEY_LEN bytes (random: getrandom())
 * @param now_ms   any millisecond clock, the one later calls use; only
 *                 differences modulo 2^32 matter, so keep durations < 24 days
 * @param grace_ms how long the previous key still opens tokens after a
 *                 rotation; at least the token lifetime, or tokens sealed
 *                 just before a rotation die early
 * @return 0, -EINVAL, -ENOMEM or -EIO (OpenSSL failed)
 */
int qg_retry_keys_create(uint8_t key_id, const uint8_t *key, uint64_t now_ms, uint32_t grace_ms,
			 struct qg_retry_keys **out);

/** An independent copy (same keys, own cipher contexts) for another thread. Same returns as create. */
int qg_retry_keys_clone(const struct qg_retry_keys *k, struct qg_retry_keys **out);

/** Free k (NULL is fine); the keys are wiped. */
void qg_retry_keys_destroy(struct qg_retry_keys *k);

/**
 * Make key the current key under key_id; the current one becomes the previous
 * (opens tokens for grace_ms more), the previous one is forgotten. Re-keys the
 * existing cipher contexts: no allocation.
 * @return 0; -EINVAL when key_id is the current key's id; -EIO
 */
int qg_retry_keys_rotate(struct qg_retry_keys *k, uint8_t key_id, const uint8_t *key, uint64_t now_ms);

/** Id of the current key. */
uint8_t qg_retry_keys_current_id(const struct qg_retry_keys *k);

/** Milliseconds since the current key was installed (modulo 2^32). */
uint32_t qg_retry_keys_current_age(const struct qg_retry_keys *k, uint64_t now_ms);

/**
 * Seal a token for a Retry answering client (its IP and port) under the
 * current key.
 * @param odcid     the DCID of the client's Initial (0..20 bytes)
 * @param retry_scid the SCID the Retry will carry (1..20 bytes)
 * @return the token length (QG_RETRY_TOKEN_OVERHEAD + odcid_len + scid_len),
 *         -EINVAL (a length out of range, not an IPv4/IPv6 address),
 *         -ENOSPC (cap too small) or -EIO
 */
int qg_retry_token_seal(struct qg_retry_keys *k, const struct qg_addr *client, const uint8_t *odcid,
			size_t odcid_len, const uint8_t *retry_scid, size_t scid_len, uint64_t now_ms,
			uint8_t *out, size_t cap);

/**
 * Check a token received from client and recover its CIDs. The caller also
 * checks that the Retry SCID is the DCID of the Initial carrying the token.
 * @param odcid_out, scid_out QG_RETRY_MAX_CID_LEN bytes each (NULL: not wanted)
 * @return 0; -EKEYEXPIRED when the token is older than lifetime_ms or its key
 *         was retired more than grace_ms ago; -EACCES when it is malformed,
 *         names no key of the ring, was issued to another address, or its tag
 *         does not verify; -EIO
 */
int qg_retry_token_open(struct qg_retry_keys *k, const struct qg_addr *client, const uint8_t *token,
			size_t len, uint64_t now_ms, uint32_t lifetime_ms, uint8_t *odcid_out,
			size_t *odcid_len, uint8_t *scid_out, size_t *scid_len);

/*
 * Retry packets (RFC 9000 Sec 17.2.5, RFC 9001 Sec 5.8, RFC 9369 Sec 3.3.3).
 */

/**
 * Build a Retry: first byte 0xff (v1) or 0xcf (v2) (long header, fixed bit,
 * the version's Retry type, the four unused bits set, an arbitrary value RFC
 * 9000 allows), version, DCID := client_scid, SCID := new_scid, token, then
 * the 16-byte Retry Integrity Tag computed over the pseudo-packet
 * (ODCID length || ODCID || the Retry without its tag) with the version's
 * fixed key and nonce.
 * @param version    QG_QUIC_VERSION_1 or QG_QUIC_VERSION_2 (quic.h)
 * @param client_dcid the DCID of the client's Initial (the ODCID)
 * @param new_scid   1..20 bytes, must differ from client_dcid (Sec 17.2.5.1)
 * @return bytes written; -EINVAL (other version, CID lengths, empty token,
 *         new_scid equal to client_dcid), -ENOSPC or -EIO
 */
int qg_quic_build_retry(uint8_t *out, size_t cap, uint32_t version, const uint8_t *client_scid,
			size_t client_scid_len, const uint8_t *client_dcid, size_t client_dcid_len,
			const uint8_t *new_scid, size_t new_scid_len, const uint8_t *token, size_t token_len);

/**
 * Check the integrity tag of a received Retry (v1 or v2) against the DCID the
 * client first sent (what a client does, RFC 9001 Sec 5.8).
 * @return 0; -EACCES (tag mismatch); -EINVAL (not a v1/v2 Retry); -EIO
 */
int qg_quic_retry_verify(const uint8_t *pkt, size_t len, const uint8_t *odcid, size_t odcid_len);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_RETRY_TOKEN_H */
