/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QUIC-LB connection IDs, draft-ietf-quic-load-balancers-21 section 5.
 *
 * Three encodings of the L = server_id_len + nonce_len payload octets:
 *  - no key: plaintext, server ID then nonce;
 *  - key and L == 16: one AES-128-ECB block (the LB needs AES decryption);
 *  - key otherwise: a four-pass Feistel network whose round function is
 *    AES-128-ECB *encryption* of expand(L, pass, half), so both directions
 *    only ever encrypt. For odd L the middle octet is split: left halves keep
 *    its high nibble, right halves its low nibble, and the unused nibble is
 *    cleared after every XOR so it never leaks into the next round's input.
 *
 * Cipher contexts are created once per config; the per-packet calls only run
 * EVP_{En,De}cryptUpdate() on one block at a time, which does not allocate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "qgate/compiler.h"
#include "qgate/quic_lb.h"

#define LB_BLOCK 16 /* AES block size */

struct qg_quic_lb_config {
	EVP_CIPHER_CTX *enc; /* AES-128-ECB encryption, NULL for plaintext */
	EVP_CIPHER_CTX *dec; /* AES-128-ECB decryption, single-pass mode only */
	uint8_t id;
	uint8_t sid_len;
	uint8_t nonce_len;
	uint8_t len;	  /* sid_len + nonce_len: the encoded payload */
	uint8_t half_len; /* ceil(len / 2): octets in each Feistel half */
	uint8_t odd;	  /* len is odd: the halves share the middle octet */
	uint8_t has_key;
	uint8_t key[QG_QUIC_LB_KEY_LEN]; /* kept only so the config can be cloned */
};

static EVP_CIPHER_CTX *lb_cipher_new(const uint8_t *key, int encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx)
		goto err;
	if (EVP_CipherInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL, encrypt) != 1)
		goto err;
	/* Whole blocks only: with padding on, decryption would hold back the last block. */
	if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
		goto err;
	return ctx;
err:
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

int qg_quic_lb_config_create(uint8_t config_id, uint8_t server_id_len, uint8_t nonce_len, const uint8_t *key,
			     struct qg_quic_lb_config **out)
{
	struct qg_quic_lb_config *c = NULL;
	int rc = -EINVAL;

	if (!out || config_id > QG_QUIC_LB_MAX_CONFIG_ID)
		goto err;
	if (server_id_len < QG_QUIC_LB_MIN_SID_LEN || server_id_len > QG_QUIC_LB_MAX_SID_LEN)
		goto err;
	if (nonce_len < QG_QUIC_LB_MIN_NONCE_LEN || nonce_len > QG_QUIC_LB_MAX_NONCE_LEN)
		goto err;
	if (server_id_len + nonce_len > QG_QUIC_LB_MAX_PAYLOAD_LEN)
		goto err;

	rc = -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err;
	c->id = config_id;
	c->sid_len = server_id_len;
	c->nonce_len = nonce_len;
	c->len = server_id_len + nonce_len;
	c->half_len = (c->len + 1) / 2;
	c->odd = c->len & 1;

	if (key) {
		rc = -EIO; /* OpenSSL failures are allocation or provider problems */
		c->has_key = 1;
		memcpy(c->key, key, sizeof(c->key));
		c->enc = lb_cipher_new(key, 1);
		if (!c->enc)
			goto err;
		if (c->len == LB_BLOCK) {
			c->dec = lb_cipher_new(key, 0);
			if (!c->dec)
				goto err;
		}
	}
	*out = c;
	return 0;
err:
	qg_quic_lb_config_destroy(c);
	return rc;
}

int qg_quic_lb_config_clone(const struct qg_quic_lb_config *c, struct qg_quic_lb_config **out)
{
	if (!c)
		return -EINVAL;
	return qg_quic_lb_config_create(c->id, c->sid_len, c->nonce_len, c->has_key ? c->key : NULL, out);
}

void qg_quic_lb_config_destroy(struct qg_quic_lb_config *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_CTX_free(c->dec);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c);
}

uint8_t qg_quic_lb_config_get_id(const struct qg_quic_lb_config *c)
{
	return c->id;
}

uint8_t qg_quic_lb_config_server_id_len(const struct qg_quic_lb_config *c)
{
	return c->sid_len;
}

uint8_t qg_quic_lb_config_nonce_len(const struct qg_quic_lb_config *c)
{
	return c->nonce_len;
}

size_t qg_quic_lb_config_cid_len(const struct qg_quic_lb_config *c)
{
	return 1u + c->len;
}

/* One AES-128-ECB block through ctx (encrypting or decrypting, as it was set up). */
static int lb_aes_block(EVP_CIPHER_CTX *ctx, const uint8_t *in, uint8_t *out)
{
	int n = 0;

	if (unlikely(EVP_CipherUpdate(ctx, out, &n, in, LB_BLOCK) != 1 || n != LB_BLOCK))
		return -EIO;
	return 0;
}

/*
 * One Feistel round: dst ^= truncate(AES(expand(len, pass, src)), half_len),
 * with expand(len, pass, x) = x || zeros || len (1 octet) || pass (1 octet).
 * src is already nibble-cleared; the caller clears dst's spare nibble after.
 */
static int lb_round(const struct qg_quic_lb_config *c, uint8_t pass, const uint8_t *src, uint8_t *dst)
{
	uint8_t in[LB_BLOCK] = { 0 };
	uint8_t out[LB_BLOCK];
	unsigned i;

	memcpy(in, src, c->half_len);
	in[LB_BLOCK - 2] = c->len;
	in[LB_BLOCK - 1] = pass;
	if (unlikely(lb_aes_block(c->enc, in, out)))
		return -EIO;
	for (i = 0; i < c->half_len; i++)
		dst[i] ^= out[i];
	return 0;
}

/* For odd lengths the left half owns only the high nibble of its last octet. */
static inline void lb_clear_left(const struct qg_quic_lb_config *c, uint8_t *left)
{
	if (c->odd)
		left[c->half_len - 1] &= 0xf0;
}

/* ... and the right half only the low nibble of its first octet. */
static inline void lb_clear_right(const struct qg_quic_lb_config *c, uint8_t *right)
{
	if (c->odd)
		right[0] &= 0x0f;
}

static void lb_split(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *left, uint8_t *right)
{
	memcpy(left, in, c->half_len);
	memcpy(right, in + c->len - c->half_len, c->half_len);
	lb_clear_left(c, left);
	lb_clear_right(c, right);
}

/* Inverse of lb_split(): squeeze out the two cleared nibbles of an odd length. */
static void lb_join(const struct qg_quic_lb_config *c, const uint8_t *left, const uint8_t *right,
		    uint8_t *out)
{
	memcpy(out + c->len - c->half_len, right, c->half_len);
	memcpy(out, left, c->len / 2);
	if (c->odd)
		out[c->half_len - 1] = left[c->half_len - 1] | right[0];
}

static int lb_feistel_encrypt(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *out)
{
	/* A half is at most 10 octets; a block's worth lets the compiler vectorise the XOR. */
	uint8_t left[LB_BLOCK], right[LB_BLOCK];
	int rc = -EIO;

	lb_split(c, in, left, right);
	if (lb_round(c, 1, left, right))
		goto err;
	lb_clear_right(c, right);
	if (lb_round(c, 2, right, left))
		goto err;
	lb_clear_left(c, left);
	if (lb_round(c, 3, left, right))
		goto err;
	lb_clear_right(c, right);
	if (lb_round(c, 4, right, left))
		goto err;
	lb_clear_left(c, left);
	lb_join(c, left, right, out);
	rc = 0;
err:
	return rc;
}

/*
 * Passes 4, 3, 2 recover left_0, which holds the first len / 2 plaintext
 * octets in full. Pass 1 (right_0) is only needed for the nonce or for a
 * server ID longer than that (server_id_len > nonce_len).
 */
static int lb_feistel_decrypt(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *out, int full)
{
	uint8_t left[LB_BLOCK], right[LB_BLOCK];
	int rc = -EIO;

	lb_split(c, in, left, right);
	if (lb_round(c, 4, right, left))
		goto err;
	lb_clear_left(c, left);
	if (lb_round(c, 3, left, right))
		goto err;
	lb_clear_right(c, right);
	if (lb_round(c, 2, right, left))
		goto err;
	lb_clear_left(c, left);
	if (full) {
		if (lb_round(c, 1, left, right))
			goto err;
		lb_clear_right(c, right);
		lb_join(c, left, right, out);
	} else {
		memcpy(out, left, c->sid_len);
	}
	rc = 0;
err:
	return rc;
}

int qg_quic_lb_encode(struct qg_quic_lb_config *c, const uint8_t *server_id, const uint8_t *nonce,
		      uint8_t *cid_out, size_t cap)
{
	uint8_t plain[QG_QUIC_LB_MAX_PAYLOAD_LEN];
	uint8_t *payload = cid_out + 1;
	int rc = -ENOSPC;

	if (cap < 1u + c->len)
		goto err;
	memcpy(plain, server_id, c->sid_len);
	memcpy(plain + c->sid_len, nonce, c->nonce_len);

	rc = 0;
	if (!c->enc)
		memcpy(payload, plain, c->len);
	else if (c->len == LB_BLOCK)
		rc = lb_aes_block(c->enc, plain, payload);
	else
		rc = lb_feistel_encrypt(c, plain, payload);
	if (rc)
		goto err;
	/* Self-encoded length: an LB without our config can still find the CID's end. */
	cid_out[0] = (uint8_t)(c->id << 5 | c->len);
	return 1 + c->len;
err:
	return rc;
}

/*
 * Decrypt the payload of cid into plain. With full == 0 only the first
 * sid_len octets of plain are guaranteed, which lets the Feistel mode stop
 * after three passes when the server ID fits in the left half.
 */
static int lb_decode(struct qg_quic_lb_config *c, const uint8_t *cid, size_t cid_len, uint8_t *plain,
		     int full)
{
	const uint8_t *payload = cid + 1;

	if (unlikely(cid_len < 1u + c->len))
		return -EINVAL;
	if (unlikely((cid[0] >> 5) != c->id))
		return -EINVAL;
	if (!c->enc) {
		memcpy(plain, payload, c->len);
		return 0;
	}
	if (c->len == LB_BLOCK)
		return lb_aes_block(c->dec, payload, plain);
	return lb_feistel_decrypt(c, payload, plain, full || c->sid_len > c->nonce_len);
}

int qg_quic_lb_decode(struct qg_quic_lb_config *c, const uint8_t *cid, size_t cid_len, uint8_t *server_id_out,
		      uint8_t *nonce_out)
{
	uint8_t plain[QG_QUIC_LB_MAX_PAYLOAD_LEN];
	int rc;

	rc = lb_decode(c, cid, cid_len, plain, 1);
	if (rc)
		goto err;
	memcpy(server_id_out, plain, c->sid_len);
	if (nonce_out)
		memcpy(nonce_out, plain + c->sid_len, c->nonce_len);
err:
	return rc;
}

int qg_quic_lb_decode_server_id(struct qg_quic_lb_config *c, const uint8_t *cid, size_t cid_len,
				uint8_t *server_id_out)
{
	uint8_t plain[QG_QUIC_LB_MAX_PAYLOAD_LEN];
	int rc;

	rc = lb_decode(c, cid, cid_len, plain, 0);
	if (rc)
		goto err;
	memcpy(server_id_out, plain, c->sid_len);
err:
	return rc;
}

void qg_quic_lb_ring_init(struct qg_quic_lb_ring *r)
{
	memset(r, 0, sizeof(*r));
}

struct qg_quic_lb_config *qg_quic_lb_ring_set(struct qg_quic_lb_ring *r, struct qg_quic_lb_config *c)
{
	struct qg_quic_lb_config *old = r->cfg[c->id];

	r->cfg[c->id] = c;
	return old;
}

struct qg_quic_lb_config *qg_quic_lb_ring_remove(struct qg_quic_lb_ring *r, uint8_t config_id)
{
	struct qg_quic_lb_config *old;

	if (config_id >= QG_QUIC_LB_MAX_CONFIGS)
		return NULL;
	old = r->cfg[config_id];
	r->cfg[config_id] = NULL;
	return old;
}

int qg_quic_lb_ring_decode(const struct qg_quic_lb_ring *r, const uint8_t *cid, size_t cid_len,
			   uint8_t *server_id_out, size_t *server_id_len)
{
	struct qg_quic_lb_config *c;
	int id, rc;

	id = qg_quic_lb_config_id(cid, cid_len);
	if (unlikely(id < 0))
		return id;
	/* 0b111 indexes past the table: unroutable by definition. */
	if (id >= QG_QUIC_LB_MAX_CONFIGS || !(c = r->cfg[id]))
		return -ENOENT;
	rc = qg_quic_lb_decode_server_id(c, cid, cid_len, server_id_out);
	if (rc == 0)
		*server_id_len = c->sid_len;
	return rc;
}
