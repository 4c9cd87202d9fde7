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
 * Cipher contexts are created once per config. On x86-64 CPUs with AES-NI the
 * per-packet blocks go through AES-NI directly with round keys expanded once:
 * EVP_CipherUpdate() costs ~220 instructions per 16-byte block (dispatch
 * through the provider and its buffering), AES-NI ~30, and a four-pass decode
 * runs three blocks per packet. The EVP contexts stay as the fallback (other
 * CPUs, or an AES-NI self-test that disagrees with OpenSSL at create time).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <wmmintrin.h>
#define LB_AESNI    1
#define LB_AESNI_FN __attribute__((target("aes,sse2")))
#else
#define LB_AESNI 0
#endif

#include "qgate/compiler.h"
#include "qgate/quic_lb.h"

#define LB_BLOCK  16 /* AES block size */
#define LB_ROUNDS 10 /* AES-128 */

struct qg_quic_lb_config {
	/* Round keys for AES-NI: encryption, then decryption (equivalent inverse cipher). */
	uint8_t rk_enc[LB_ROUNDS + 1][LB_BLOCK] __attribute__((aligned(16)));
	uint8_t rk_dec[LB_ROUNDS + 1][LB_BLOCK] __attribute__((aligned(16)));
	/*
	 * Feistel masks: which octets of a 16-octet buffer belong to the left
	 * and the right half (0xff, the shared middle nibble 0xf0 / 0x0f, else
	 * 0). Masking the round output folds truncation and nibble clearing
	 * into one vector AND.
	 */
	uint8_t mask_left[LB_BLOCK];
	uint8_t mask_right[LB_BLOCK];
	EVP_CIPHER_CTX *enc; /* AES-128-ECB encryption, NULL for plaintext */
	EVP_CIPHER_CTX *dec; /* AES-128-ECB decryption, single-pass mode only */
	uint8_t id;
	uint8_t sid_len;
	uint8_t nonce_len;
	uint8_t len;	  /* sid_len + nonce_len: the encoded payload */
	uint8_t half_len; /* ceil(len / 2): octets in each Feistel half */
	uint8_t odd;	  /* len is odd: the halves share the middle octet */
	uint8_t has_key;
	uint8_t aesni;			 /* blocks go through lb_aesni_*() with the round keys above */
	uint8_t key[QG_QUIC_LB_KEY_LEN]; /* kept only so the config can be cloned */
};

#if LB_AESNI
/* One step of the AES-128 key schedule (FIPS-197 5.2) with AESKEYGENASSIST's output t. */
LB_AESNI_FN static inline __m128i lb_aesni_expand(__m128i k, __m128i t)
{
	t = _mm_shuffle_epi32(t, 0xff);
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	return _mm_xor_si128(k, t);
}

LB_AESNI_FN static void lb_aesni_setkey(struct qg_quic_lb_config *c, const uint8_t *key)
{
	__m128i k[LB_ROUNDS + 1];
	int i;

	k[0] = _mm_loadu_si128((const __m128i *)key);
	/* The round constant must be an immediate: one line per round. */
	k[1] = lb_aesni_expand(k[0], _mm_aeskeygenassist_si128(k[0], 0x01));
	k[2] = lb_aesni_expand(k[1], _mm_aeskeygenassist_si128(k[1], 0x02));
	k[3] = lb_aesni_expand(k[2], _mm_aeskeygenassist_si128(k[2], 0x04));
	k[4] = lb_aesni_expand(k[3], _mm_aeskeygenassist_si128(k[3], 0x08));
	k[5] = lb_aesni_expand(k[4], _mm_aeskeygenassist_si128(k[4], 0x10));
	k[6] = lb_aesni_expand(k[5], _mm_aeskeygenassist_si128(k[5], 0x20));
	k[7] = lb_aesni_expand(k[6], _mm_aeskeygenassist_si128(k[6], 0x40));
	k[8] = lb_aesni_expand(k[7], _mm_aeskeygenassist_si128(k[7], 0x80));
	k[9] = lb_aesni_expand(k[8], _mm_aeskeygenassist_si128(k[8], 0x1b));
	k[10] = lb_aesni_expand(k[9], _mm_aeskeygenassist_si128(k[9], 0x36));
	for (i = 0; i <= LB_ROUNDS; i++)
		_mm_store_si128((__m128i *)c->rk_enc[i], k[i]);
	/* Decryption with AESDEC wants the reversed schedule, inner keys through InvMixColumns. */
	_mm_store_si128((__m128i *)c->rk_dec[0], k[LB_ROUNDS]);
	for (i = 1; i < LB_ROUNDS; i++)
		_mm_store_si128((__m128i *)c->rk_dec[i], _mm_aesimc_si128(k[LB_ROUNDS - i]));
	_mm_store_si128((__m128i *)c->rk_dec[LB_ROUNDS], k[0]);
	OPENSSL_cleanse(k, sizeof(k));
}

LB_AESNI_FN static inline void lb_aesni_encrypt(const struct qg_quic_lb_config *c, const uint8_t *in,
						uint8_t *out)
{
	__m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)in),
				  _mm_loadu_si128((const __m128i *)c->rk_enc[0]));

	for (int i = 1; i < LB_ROUNDS; i++)
		x = _mm_aesenc_si128(x, _mm_loadu_si128((const __m128i *)c->rk_enc[i]));
	x = _mm_aesenclast_si128(x, _mm_loadu_si128((const __m128i *)c->rk_enc[LB_ROUNDS]));
	_mm_storeu_si128((__m128i *)out, x);
}

LB_AESNI_FN static inline void lb_aesni_decrypt(const struct qg_quic_lb_config *c, const uint8_t *in,
						uint8_t *out)
{
	__m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)in),
				  _mm_loadu_si128((const __m128i *)c->rk_dec[0]));

	for (int i = 1; i < LB_ROUNDS; i++)
		x = _mm_aesdec_si128(x, _mm_loadu_si128((const __m128i *)c->rk_dec[i]));
	x = _mm_aesdeclast_si128(x, _mm_loadu_si128((const __m128i *)c->rk_dec[LB_ROUNDS]));
	_mm_storeu_si128((__m128i *)out, x);
}
#endif

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

/* One AES-128-ECB block through ctx (encrypting or decrypting, as it was set up). */
static int lb_evp_block(EVP_CIPHER_CTX *ctx, const uint8_t *in, uint8_t *out)
{
	int n = 0;

	if (unlikely(EVP_CipherUpdate(ctx, out, &n, in, LB_BLOCK) != 1 || n != LB_BLOCK))
		return -EIO;
	return 0;
}

/*
 * Use AES-NI when the CPU has it and it agrees with OpenSSL on a block both
 * ways (a guard against a broken build or emulator: never route on a cipher
 * that differs from the servers').
 */
static void lb_aesni_init(struct qg_quic_lb_config *c, const uint8_t *key)
{
#if LB_AESNI
	uint8_t in[LB_BLOCK], ref[LB_BLOCK], got[LB_BLOCK];

	if (!__builtin_cpu_supports("aes"))
		return;
	lb_aesni_setkey(c, key);
	for (unsigned i = 0; i < LB_BLOCK; i++)
		in[i] = (uint8_t)(i * 17 + 1);
	if (lb_evp_block(c->enc, in, ref))
		return;
	lb_aesni_encrypt(c, in, got);
	if (memcmp(ref, got, LB_BLOCK) != 0)
		return;
	lb_aesni_decrypt(c, ref, got);
	if (memcmp(in, got, LB_BLOCK) != 0)
		return;
	c->aesni = 1;
#else
	(void)c;
	(void)key;
#endif
}

static void lb_masks_init(struct qg_quic_lb_config *c)
{
	memset(c->mask_left, 0xff, c->half_len);
	memset(c->mask_right, 0xff, c->half_len);
	if (c->odd) {
		c->mask_left[c->half_len - 1] = 0xf0;
		c->mask_right[0] = 0x0f;
	}
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
		lb_aesni_init(c, key);
	}
	lb_masks_init(c);
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
	OPENSSL_cleanse(c->rk_enc, sizeof(c->rk_enc));
	OPENSSL_cleanse(c->rk_dec, sizeof(c->rk_dec));
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

/* One AES-128 block, encrypting. */
static inline int lb_encrypt_block(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *out)
{
#if LB_AESNI
	if (likely(c->aesni)) {
		lb_aesni_encrypt(c, in, out);
		return 0;
	}
#endif
	return lb_evp_block(c->enc, in, out);
}

/* One AES-128 block, decrypting (single-pass configs only). */
static inline int lb_decrypt_block(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *out)
{
#if LB_AESNI
	if (likely(c->aesni)) {
		lb_aesni_decrypt(c, in, out);
		return 0;
	}
#endif
	return lb_evp_block(c->dec, in, out);
}

/*
 * One Feistel round: dst ^= truncate(AES(expand(len, pass, src)), half_len),
 * with expand(len, pass, x) = x || zeros || len (1 octet) || pass (1 octet).
 * Halves live in 16-octet buffers that are zero past half_len (<= 10), so
 * src is already expand()'s input but for its last two octets, and masking
 * the AES output with dst's mask truncates it and keeps dst's spare nibble
 * clear: fixed-size loops the compiler turns into a few vector operations.
 */
static inline int lb_round(const struct qg_quic_lb_config *c, uint8_t pass, const uint8_t *src, uint8_t *dst,
			   const uint8_t *dst_mask)
{
	uint8_t in[LB_BLOCK];
	uint8_t out[LB_BLOCK];
	unsigned i;

	memcpy(in, src, LB_BLOCK);
	in[LB_BLOCK - 2] = c->len;
	in[LB_BLOCK - 1] = pass;
	if (unlikely(lb_encrypt_block(c, in, out)))
		return -EIO;
	for (i = 0; i < LB_BLOCK; i++)
		dst[i] ^= out[i] & dst_mask[i];
	return 0;
}

/* Halves of in, zero past half_len; for odd lengths each keeps only its nibble of the middle octet. */
static inline void lb_split(const struct qg_quic_lb_config *c, const uint8_t *in, uint8_t *left,
			    uint8_t *right)
{
	unsigned i;

	memset(left, 0, LB_BLOCK);
	memset(right, 0, LB_BLOCK);
	memcpy(left, in, c->half_len);
	memcpy(right, in + c->len - c->half_len, c->half_len);
	for (i = 0; i < LB_BLOCK; i++) {
		left[i] &= c->mask_left[i];
		right[i] &= c->mask_right[i];
	}
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
	if (lb_round(c, 1, left, right, c->mask_right))
		goto err;
	if (lb_round(c, 2, right, left, c->mask_left))
		goto err;
	if (lb_round(c, 3, left, right, c->mask_right))
		goto err;
	if (lb_round(c, 4, right, left, c->mask_left))
		goto err;
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
	if (lb_round(c, 4, right, left, c->mask_left))
		goto err;
	if (lb_round(c, 3, left, right, c->mask_right))
		goto err;
	if (lb_round(c, 2, right, left, c->mask_left))
		goto err;
	if (full) {
		if (lb_round(c, 1, left, right, c->mask_right))
			goto err;
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
		rc = lb_encrypt_block(c, plain, payload);
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
		return lb_decrypt_block(c, payload, plain);
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
