/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Retry offload: address-validation tokens (format in qgate/retry_token.h)
 * and Retry packets with their integrity tag (RFC 9001 Sec 5.8, RFC 9369
 * Sec 3.3.3).
 *
 * Both tags are AES-128-GCM over associated data only (empty plaintext), so
 * checking one means computing it again and comparing in constant time: one
 * encrypting context per key does both directions. Contexts are keyed once;
 * per packet only the nonce is set (EVP_EncryptInit_ex() with no cipher and
 * no key re-uses both), which does not allocate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "qgate/addr.h"
#include "qgate/compiler.h"
#include "qgate/quic.h"
#include "qgate/retry_token.h"

#define TAG_LEN	  QG_RETRY_TOKEN_TAG_LEN
#define NONCE_LEN QG_RETRY_TOKEN_NONCE_LEN

/* Offsets after the ODCID (n bytes): format, key id, time, nonce, RSCIL. */
#define T_FORMAT(n) (1 + (n))
#define T_KEY_ID(n) (2 + (n))
#define T_TIME(n)   (3 + (n))
#define T_NONCE(n)  (7 + (n))
#define T_RSCIL(n)  (19 + (n))

/* Client address as associated data: family, IP, port. */
#define ADDR_AAD_MAX (1 + 16 + 2)

struct retry_key {
	EVP_CIPHER_CTX *ctx; /* AES-128-GCM encryption, keyed */
	uint8_t key[QG_RETRY_KEY_LEN];
	uint32_t installed; /* low 32 bits of the ms clock */
	uint32_t retired;   /* when it stopped being current (previous key only) */
	uint8_t id;
	uint8_t in_use;
};

struct qg_retry_keys {
	struct retry_key k[2]; /* current and previous */
	unsigned cur;
	uint32_t grace_ms;
};

static EVP_CIPHER_CTX *gcm_new(const uint8_t *key)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx)
		goto err;
	/* GCM's default IV length is the 96 bits both tags use. */
	if (EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1)
		goto err;
	return ctx;
err:
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

/* tag := GCM(nonce, plaintext = "", aad = a || b). */
static int gcm_tag(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *a, size_t alen, const uint8_t *b,
		   size_t blen, uint8_t *tag)
{
	uint8_t none[16];
	int n;

	if (unlikely(EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1))
		return -EIO;
	if (alen && unlikely(EVP_EncryptUpdate(ctx, NULL, &n, a, (int)alen) != 1))
		return -EIO;
	if (blen && unlikely(EVP_EncryptUpdate(ctx, NULL, &n, b, (int)blen) != 1))
		return -EIO;
	if (unlikely(EVP_EncryptFinal_ex(ctx, none, &n) != 1))
		return -EIO;
	if (unlikely(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1))
		return -EIO;
	return 0;
}

static size_t addr_aad(const struct qg_addr *a, uint8_t *out)
{
	size_t iplen;

	if (a->family == AF_INET) {
		out[0] = 4;
		iplen = 4;
	} else if (a->family == AF_INET6) {
		out[0] = 6;
		iplen = 16;
	} else {
		return 0;
	}
	memcpy(out + 1, a->ip, iplen);
	memcpy(out + 1 + iplen, &a->port, 2); /* already network order */
	return 1 + iplen + 2;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Where the fields of a token are; 0 or -EINVAL when it is not a version 1 Retry token. */
struct token_view {
	size_t odcid_len;
	size_t scid_len;
	size_t body_len; /* everything before the tag */
};

static int token_parse(const uint8_t *t, size_t len, struct token_view *v)
{
	size_t n, m;

	if (len < QG_RETRY_TOKEN_OVERHEAD + 1 || (t[0] & 0x80))
		return -EINVAL;
	n = t[0];
	if (n > QG_RETRY_MAX_CID_LEN || len < QG_RETRY_TOKEN_OVERHEAD + n + 1)
		return -EINVAL;
	if (t[T_FORMAT(n)] != QG_RETRY_TOKEN_FORMAT)
		return -EINVAL;
	m = t[T_RSCIL(n)];
	/* Exact length: trailing bytes would be unauthenticated room for mischief. */
	if (m == 0 || m > QG_RETRY_MAX_CID_LEN || len != QG_RETRY_TOKEN_OVERHEAD + n + m)
		return -EINVAL;
	v->odcid_len = n;
	v->scid_len = m;
	v->body_len = len - TAG_LEN;
	return 0;
}

int qg_retry_token_read(const uint8_t *token, size_t len, uint8_t *odcid_out, size_t *odcid_len,
			uint8_t *scid_out, size_t *scid_len)
{
	struct token_view v;

	if (!token || token_parse(token, len, &v))
		return -EINVAL; /* token_parse() refuses len 0 before reading */
	if (odcid_out && v.odcid_len)
		memcpy(odcid_out, token + 1, v.odcid_len);
	if (odcid_len)
		*odcid_len = v.odcid_len;
	if (scid_out)
		memcpy(scid_out, token + T_RSCIL(v.odcid_len) + 1, v.scid_len);
	if (scid_len)
		*scid_len = v.scid_len;
	return 0;
}

/* ---- key ring ---- */

static int key_install(struct retry_key *k, uint8_t id, const uint8_t *key, uint64_t now_ms)
{
	if (!k->ctx) {
		k->ctx = gcm_new(key);
		if (!k->ctx)
			return -EIO;
	} else if (EVP_EncryptInit_ex(k->ctx, NULL, NULL, key, NULL) != 1) {
		k->in_use = 0;
		return -EIO;
	}
	memcpy(k->key, key, QG_RETRY_KEY_LEN);
	k->id = id;
	k->installed = (uint32_t)now_ms;
	k->retired = 0;
	k->in_use = 1;
	return 0;
}

int qg_retry_keys_create(uint8_t key_id, const uint8_t *key, uint64_t now_ms, uint32_t grace_ms,
			 struct qg_retry_keys **out)
{
	struct qg_retry_keys *k;
	int rc;

	if (!key || !out)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->grace_ms = grace_ms;
	/* Both contexts now, so a rotation only re-keys. */
	rc = -EIO;
	k->k[1].ctx = gcm_new(key);
	if (!k->k[1].ctx)
		goto err;
	rc = key_install(&k->k[0], key_id, key, now_ms);
	if (rc)
		goto err;
	*out = k;
	return 0;
err:
	qg_retry_keys_destroy(k);
	return rc;
}

int qg_retry_keys_clone(const struct qg_retry_keys *k, struct qg_retry_keys **out)
{
	struct qg_retry_keys *c;
	int rc;

	if (!k || !out)
		return -EINVAL;
	rc = qg_retry_keys_create(k->k[k->cur].id, k->k[k->cur].key, k->k[k->cur].installed, k->grace_ms, &c);
	if (rc)
		return rc;
	/* Same slots as k, then the copy's contexts re-keyed to match. */
	for (unsigned i = 0; i < 2; i++) {
		const struct retry_key *src = &k->k[i];
		struct retry_key *dst = &c->k[i];

		if (!src->in_use) {
			dst->in_use = 0;
			continue;
		}
		rc = key_install(dst, src->id, src->key, src->installed);
		if (rc)
			goto err;
		dst->retired = src->retired;
	}
	c->cur = k->cur;
	*out = c;
	return 0;
err:
	qg_retry_keys_destroy(c);
	return rc;
}

void qg_retry_keys_destroy(struct qg_retry_keys *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < 2; i++)
		EVP_CIPHER_CTX_free(k->k[i].ctx);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

int qg_retry_keys_rotate(struct qg_retry_keys *k, uint8_t key_id, const uint8_t *key, uint64_t now_ms)
{
	struct retry_key *cur, *next;
	int rc;

	if (!k || !key || key_id == k->k[k->cur].id)
		return -EINVAL;
	cur = &k->k[k->cur];
	next = &k->k[k->cur ^ 1];
	rc = key_install(next, key_id, key, now_ms);
	if (rc)
		return rc; /* the current key stays current */
	cur->retired = (uint32_t)now_ms;
	k->cur ^= 1;
	return 0;
}

uint8_t qg_retry_keys_current_id(const struct qg_retry_keys *k)
{
	return k->k[k->cur].id;
}

uint32_t qg_retry_keys_current_age(const struct qg_retry_keys *k, uint64_t now_ms)
{
	return (uint32_t)now_ms - k->k[k->cur].installed;
}

/* ---- tokens ---- */

int qg_retry_token_seal(struct qg_retry_keys *k, const struct qg_addr *client, const uint8_t *odcid,
			size_t odcid_len, const uint8_t *retry_scid, size_t scid_len, uint64_t now_ms,
			uint8_t *out, size_t cap)
{
	uint8_t aad[ADDR_AAD_MAX];
	struct retry_key *key;
	size_t alen, need, n = odcid_len;
	int rc;

	if (unlikely(!k || !client || !out || (n && !odcid) || !retry_scid))
		return -EINVAL;
	if (unlikely(n > QG_RETRY_MAX_CID_LEN || scid_len == 0 || scid_len > QG_RETRY_MAX_CID_LEN))
		return -EINVAL;
	alen = addr_aad(client, aad);
	if (unlikely(alen == 0))
		return -EINVAL;
	need = QG_RETRY_TOKEN_OVERHEAD + n + scid_len;
	if (unlikely(cap < need))
		return -ENOSPC;
	key = &k->k[k->cur];

	out[0] = (uint8_t)n; /* first bit 0: a Retry token */
	if (n)
		memcpy(out + 1, odcid, n);
	out[T_FORMAT(n)] = QG_RETRY_TOKEN_FORMAT;
	out[T_KEY_ID(n)] = key->id;
	wr32(out + T_TIME(n), (uint32_t)now_ms);
	/*
	 * Random nonces rather than a counter: a key may be shared by several
	 * issuers, where counters would repeat and a repeated GCM nonce gives
	 * away the authentication key. 96 bits: no collision in practice.
	 */
	if (unlikely(RAND_bytes(out + T_NONCE(n), NONCE_LEN) != 1))
		return -EIO;
	out[T_RSCIL(n)] = (uint8_t)scid_len;
	memcpy(out + T_RSCIL(n) + 1, retry_scid, scid_len);
	rc = gcm_tag(key->ctx, out + T_NONCE(n), out, need - TAG_LEN, aad, alen, out + need - TAG_LEN);
	return rc ? rc : (int)need;
}

int qg_retry_token_open(struct qg_retry_keys *k, const struct qg_addr *client, const uint8_t *token,
			size_t len, uint64_t now_ms, uint32_t lifetime_ms, uint8_t *odcid_out,
			size_t *odcid_len, uint8_t *scid_out, size_t *scid_len)
{
	uint8_t aad[ADDR_AAD_MAX], tag[TAG_LEN];
	const struct retry_key *key = NULL;
	struct token_view v;
	size_t alen, n;
	uint8_t id;
	int rc;

	if (unlikely(!k || !client || (!token && len)))
		return -EINVAL;
	alen = addr_aad(client, aad);
	if (unlikely(alen == 0))
		return -EINVAL;
	if (token_parse(token, len, &v))
		return -EACCES;
	n = v.odcid_len;
	id = token[T_KEY_ID(n)];
	for (unsigned i = 0; i < 2; i++)
		if (k->k[i].in_use && k->k[i].id == id)
			key = &k->k[i];
	if (!key)
		return -EACCES;
	/* A retired key opens nothing after its grace: whatever it sealed is too old by now. */
	if (key != &k->k[k->cur] && (uint32_t)now_ms - key->retired > k->grace_ms)
		return -EKEYEXPIRED;
	rc = gcm_tag(key->ctx, token + T_NONCE(n), token, v.body_len, aad, alen, tag);
	if (unlikely(rc))
		return rc;
	if (CRYPTO_memcmp(tag, token + v.body_len, TAG_LEN) != 0)
		return -EACCES;
	/* Modulo 2^32: a time ahead of the clock looks ancient, which errs on the safe side. */
	if ((uint32_t)now_ms - rd32(token + T_TIME(n)) > lifetime_ms)
		return -EKEYEXPIRED;
	return qg_retry_token_read(token, len, odcid_out, odcid_len, scid_out, scid_len);
}

/* ---- Retry packets ---- */

/* RFC 9001 Sec 5.8 and RFC 9369 Sec 3.3.3: fixed keys, public by design. */
static const uint8_t retry_key_v1[16] = { 0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a,
					  0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e };
static const uint8_t retry_nonce_v1[12] = { 0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63,
					    0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb };
static const uint8_t retry_key_v2[16] = { 0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2,
					  0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c, 0xcc, 0x92 };
static const uint8_t retry_nonce_v2[12] = { 0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c,
					    0x6d, 0x99, 0x90, 0xef, 0xb0, 0x4a };

/* A thread's two contexts, keyed once with the fixed keys: a worker builds Retries without allocating. */
struct retry_aead {
	EVP_CIPHER_CTX *ctx[2]; /* v1, v2 */
};

static pthread_once_t aead_once = PTHREAD_ONCE_INIT;
static pthread_key_t aead_key;
static int aead_key_ok;

static void aead_free(void *p)
{
	struct retry_aead *a = p;

	EVP_CIPHER_CTX_free(a->ctx[0]);
	EVP_CIPHER_CTX_free(a->ctx[1]);
	free(a);
}

static void aead_key_init(void)
{
	aead_key_ok = pthread_key_create(&aead_key, aead_free) == 0;
}

static EVP_CIPHER_CTX *retry_aead(int v2)
{
	struct retry_aead *a;

	if (unlikely(pthread_once(&aead_once, aead_key_init) != 0 || !aead_key_ok))
		return NULL;
	a = pthread_getspecific(aead_key);
	if (likely(a))
		return a->ctx[v2];
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->ctx[0] = gcm_new(retry_key_v1);
	a->ctx[1] = gcm_new(retry_key_v2);
	if (!a->ctx[0] || !a->ctx[1] || pthread_setspecific(aead_key, a) != 0) {
		aead_free(a);
		return NULL;
	}
	return a->ctx[v2];
}

/* The tag over ODCID Len || ODCID || retry (without its tag). */
static int retry_tag(int v2, const uint8_t *odcid, size_t odcid_len, const uint8_t *retry, size_t len,
		     uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = retry_aead(v2);
	uint8_t pre[1 + QG_QUIC_MAX_CID_LEN_V1];

	if (unlikely(!ctx))
		return -EIO;
	pre[0] = (uint8_t)odcid_len;
	if (odcid_len)
		memcpy(pre + 1, odcid, odcid_len);
	return gcm_tag(ctx, v2 ? retry_nonce_v2 : retry_nonce_v1, pre, 1 + odcid_len, retry, len, tag);
}

int qg_quic_build_retry(uint8_t *out, size_t cap, uint32_t version, const uint8_t *client_scid,
			size_t client_scid_len, const uint8_t *client_dcid, size_t client_dcid_len,
			const uint8_t *new_scid, size_t new_scid_len, const uint8_t *token, size_t token_len)
{
	size_t need, off = 0;
	int v2, rc;

	if (version == QG_QUIC_VERSION_1)
		v2 = 0;
	else if (version == QG_QUIC_VERSION_2)
		v2 = 1;
	else
		return -EINVAL;
	if (!out || (client_scid_len && !client_scid) || (client_dcid_len && !client_dcid) || !new_scid ||
	    !token || token_len == 0)
		return -EINVAL;
	if (client_scid_len > QG_QUIC_MAX_CID_LEN_V1 || client_dcid_len > QG_QUIC_MAX_CID_LEN_V1 ||
	    new_scid_len == 0 || new_scid_len > QG_QUIC_MAX_CID_LEN_V1)
		return -EINVAL;
	/* Sec 17.2.5.1: the Retry's SCID MUST differ from the DCID the client chose. */
	if (new_scid_len == client_dcid_len && memcmp(new_scid, client_dcid, new_scid_len) == 0)
		return -EINVAL;
	need = 7 + client_scid_len + new_scid_len + token_len + QG_QUIC_RETRY_TAG_LEN;
	if (cap < need)
		return -ENOSPC;

	/* Long header, fixed bit, Retry type (v1 3, v2 0), unused bits all set. */
	out[off++] = v2 ? 0xcf : 0xff;
	wr32(out + off, version);
	off += 4;
	out[off++] = (uint8_t)client_scid_len;
	if (client_scid_len)
		memcpy(out + off, client_scid, client_scid_len);
	off += client_scid_len;
	out[off++] = (uint8_t)new_scid_len;
	memcpy(out + off, new_scid, new_scid_len);
	off += new_scid_len;
	memcpy(out + off, token, token_len);
	off += token_len;
	rc = retry_tag(v2, client_dcid, client_dcid_len, out, off, out + off);
	return rc ? rc : (int)need;
}

int qg_quic_retry_verify(const uint8_t *pkt, size_t len, const uint8_t *odcid, size_t odcid_len)
{
	uint8_t tag[QG_QUIC_RETRY_TAG_LEN];
	struct qg_quic_hdr h;
	int rc;

	if (!pkt || (odcid_len && !odcid) || odcid_len > QG_QUIC_MAX_CID_LEN_V1)
		return -EINVAL;
	if (qg_quic_parse(pkt, len, 0, &h) || h.type != QG_QUIC_TYPE_RETRY)
		return -EINVAL;
	rc = retry_tag(h.version == QG_QUIC_VERSION_2, odcid, odcid_len, pkt, len - QG_QUIC_RETRY_TAG_LEN,
		       tag);
	if (rc)
		return rc;
	return CRYPTO_memcmp(tag, pkt + len - QG_QUIC_RETRY_TAG_LEN, sizeof(tag)) ? -EACCES : 0;
}
