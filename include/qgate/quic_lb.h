/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC-LB routable connection IDs (draft-ietf-quic-load-balancers-21).
 *
 * A server encodes its server ID and a nonce into every CID it issues; the
 * load balancer decodes the server ID from the Destination CID of each packet
 * and routes on it, statelessly, even after client migration.
 *
 *   CID = first octet || server ID || nonce            (plaintext: no key)
 *   CID = first octet || E(server ID || nonce)         (AES-128 key)
 *   first octet = config_id << 5 | (server_id_len + nonce_len)
 *
 * The top 3 bits of the first octet select the configuration (0..6; 7 means
 * "unroutable": the server has no valid configuration). The low 5 bits
 * self-encode the length of the rest of the CID. With a key, E() is a single
 * AES-128-ECB block when server_id_len + nonce_len == 16, and the draft's
 * four-pass Feistel construction over AES-128-ECB otherwise.
 *
 * This header is self-contained (C standard headers only) so a QUIC server can link the library to
 * generate routable CIDs without pulling in the rest of qgate.
 *
 * Thread safety: a config holds OpenSSL cipher contexts, which carry state and
 * must not be used by two threads at once. Use ONE CONFIG OBJECT PER THREAD:
 * give each worker its own qg_quic_lb_config_clone() (and its own ring).
 * Different configs may be used concurrently. Encode and decode never
 * allocate, so they are fit for the per-packet path.
 */
#ifndef QGATE_QUIC_LB_H
#define QGATE_QUIC_LB_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QG_QUIC_LB_KEY_LEN	   16 /**< AES-128 key length */
#define QG_QUIC_LB_MAX_CONFIG_ID   6  /**< config ids 0..6 are routable */
#define QG_QUIC_LB_UNROUTABLE	   7  /**< 0b111: no configuration */
#define QG_QUIC_LB_MIN_SID_LEN	   1
#define QG_QUIC_LB_MAX_SID_LEN	   15
#define QG_QUIC_LB_MIN_NONCE_LEN   4
#define QG_QUIC_LB_MAX_NONCE_LEN   18
#define QG_QUIC_LB_MAX_PAYLOAD_LEN 19 /**< server_id_len + nonce_len, QUIC v1 CIDs are <= 20 bytes */
#define QG_QUIC_LB_MAX_CID_LEN	   20 /**< first octet + payload */
#define QG_QUIC_LB_MAX_CONFIGS	   7  /**< config ids 0..6 */

/** One QUIC-LB configuration: config id, lengths and optional key. Opaque. */
struct qg_quic_lb_config;

/**
 * Create a configuration.
 * @param config_id     0..6
 * @param server_id_len 1..15
 * @param nonce_len     4..18, with server_id_len + nonce_len <= 19
 * @param key           16-byte AES-128 key, or NULL for plaintext CIDs
 * @return 0, -EINVAL (a value out of range), -ENOMEM, or -EIO (OpenSSL failed)
 */
int qg_quic_lb_config_create(uint8_t config_id, uint8_t server_id_len, uint8_t nonce_len, const uint8_t *key,
			     struct qg_quic_lb_config **out);

/** An independent copy (own cipher contexts) for another thread. Same returns as create. */
int qg_quic_lb_config_clone(const struct qg_quic_lb_config *c, struct qg_quic_lb_config **out);

/** Free c (NULL is fine); the key copy is wiped. */
void qg_quic_lb_config_destroy(struct qg_quic_lb_config *c);

/** The config id (0..6) c was created with. */
uint8_t qg_quic_lb_config_get_id(const struct qg_quic_lb_config *c);
/** The server ID length c was created with. */
uint8_t qg_quic_lb_config_server_id_len(const struct qg_quic_lb_config *c);
/** The nonce length c was created with. */
uint8_t qg_quic_lb_config_nonce_len(const struct qg_quic_lb_config *c);
/** The CID length c produces: 1 + server_id_len + nonce_len. */
size_t qg_quic_lb_config_cid_len(const struct qg_quic_lb_config *c);

/**
 * Build a CID from server_id (server_id_len bytes) and nonce (nonce_len
 * bytes). The nonce must not repeat for a given server ID and configuration.
 * @return the CID length written to cid_out, -ENOSPC when cap is too small,
 *         or -EIO (OpenSSL failed)
 */
int qg_quic_lb_encode(struct qg_quic_lb_config *c, const uint8_t *server_id, const uint8_t *nonce,
		      uint8_t *cid_out, size_t cap);

/**
 * Recover server ID and nonce from a CID made with c (always the full
 * decryption, four passes for the Feistel mode). Bytes after the first
 * 1 + server_id_len + nonce_len (server-use octets) are ignored, and so are
 * the first octet's length bits.
 * @param server_id_out server_id_len bytes
 * @param nonce_out     nonce_len bytes, or NULL when only the server ID is wanted
 * @return 0, or -EINVAL (CID too short, or its config id is not c's), or -EIO
 */
int qg_quic_lb_decode(struct qg_quic_lb_config *c, const uint8_t *cid, size_t cid_len, uint8_t *server_id_out,
		      uint8_t *nonce_out);

/**
 * Load balancer fast path: only the server ID. In the four-pass mode this
 * takes 3 AES passes instead of 4 when the server ID fits in the left half
 * (server_id_len <= nonce_len), as the draft allows.
 * @return 0, -EINVAL as qg_quic_lb_decode(), or -EIO
 */
int qg_quic_lb_decode_server_id(struct qg_quic_lb_config *c, const uint8_t *cid, size_t cid_len,
				uint8_t *server_id_out);

/**
 * The config id of a CID: the top 3 bits of its first octet.
 * @return 0..6, QG_QUIC_LB_UNROUTABLE (7), or -EINVAL for an empty CID
 */
static inline int qg_quic_lb_config_id(const uint8_t *cid, size_t len)
{
	return len ? cid[0] >> 5 : -EINVAL;
}

/**
 * The configurations a load balancer accepts, indexed by config id. Several
 * may be active at once, which is how keys rotate: servers move to the new
 * id while CIDs of the old one still route. The ring borrows the configs (it
 * never frees them) and, like them, belongs to one thread.
 */
struct qg_quic_lb_ring {
	struct qg_quic_lb_config *cfg[QG_QUIC_LB_MAX_CONFIGS]; /**< NULL = config id not active */
};

/** Empty ring. */
void qg_quic_lb_ring_init(struct qg_quic_lb_ring *r);

/** Activate c under its config id. @return the config it replaces, or NULL. */
struct qg_quic_lb_config *qg_quic_lb_ring_set(struct qg_quic_lb_ring *r, struct qg_quic_lb_config *c);

/** Deactivate config_id (0..6). @return the config removed, or NULL. */
struct qg_quic_lb_config *qg_quic_lb_ring_remove(struct qg_quic_lb_ring *r, uint8_t config_id);

/**
 * Server ID of a CID, with the config chosen by its first octet.
 * @param server_id_out at least QG_QUIC_LB_MAX_SID_LEN bytes
 * @param server_id_len set to the server ID length on success
 * @return 0; -ENOENT when the CID is unroutable (0b111) or its config id is
 *         not active (route by other means); -EINVAL when it is too short
 *         for that config; -EIO
 */
int qg_quic_lb_ring_decode(const struct qg_quic_lb_ring *r, const uint8_t *cid, size_t cid_len,
			   uint8_t *server_id_out, size_t *server_id_len);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_QUIC_LB_H */
