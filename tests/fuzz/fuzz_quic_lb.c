/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the QUIC-LB connection ID codec
 * (dataplane/quic/quic_lb.c): plaintext, single-pass (server_id_len +
 * nonce_len == 16) and four-pass Feistel configurations of several lengths,
 * odd and even, with the server ID in the left half (3-pass fast path) or
 * not.
 *
 * Input layout: byte 0 picks a configuration, the rest is used twice:
 *  - as an arbitrary CID: decode, decode_server_id and the ring must never
 *    read outside it and must agree with each other;
 *  - as server ID || nonce: encode, then every decoder must give back
 *    exactly the server ID (and nonce) that went in.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/quic_lb.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

struct lb_params {
	uint8_t id;
	uint8_t sid_len;
	uint8_t nonce_len;
	uint8_t keyed;
};

/*
 * The first seven (ids 0..6) also form the ring; the others cover more
 * lengths under the same ids. Keyed: L == 16 is single-pass, else four-pass.
 */
static const struct lb_params params[] = {
	{ 0, 1, 4, 0 },	 /* plaintext, shortest */
	{ 1, 3, 8, 0 },	 /* plaintext */
	{ 2, 2, 14, 1 }, /* single pass */
	{ 3, 3, 4, 1 },	 /* four-pass, L = 7 (odd), sid <= nonce: 3-pass server ID */
	{ 4, 6, 6, 1 },	 /* four-pass, L = 12 (even), sid <= nonce */
	{ 5, 15, 4, 1 }, /* four-pass, L = 19 (odd, longest), sid > nonce */
	{ 6, 1, 18, 1 }, /* four-pass, L = 19, longest nonce */
	{ 0, 15, 4, 0 }, /* plaintext, longest */
	{ 1, 8, 8, 1 },	 /* single pass, sid == nonce */
	{ 2, 12, 4, 1 }, /* single pass, long server ID */
	{ 3, 10, 9, 1 }, /* four-pass, L = 19, sid > nonce */
	{ 4, 1, 4, 1 },	 /* four-pass, L = 5 (shortest) */
	{ 5, 9, 8, 1 },	 /* four-pass, L = 17 (odd), sid > nonce */
	{ 6, 4, 4, 1 },	 /* four-pass, L = 8, sid == nonce */
	{ 2, 4, 12, 0 }, /* plaintext, L = 16 (not single pass: no key) */
	{ 3, 7, 6, 1 },	 /* four-pass, L = 13, sid > nonce */
};
#define N_CFG (sizeof(params) / sizeof(params[0]))

static const uint8_t key[QG_QUIC_LB_KEY_LEN] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
						 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };

static struct qg_quic_lb_config *cfg[N_CFG];
static struct qg_quic_lb_config *clones[QG_QUIC_LB_MAX_CONFIGS]; /* the ring's: independent contexts */
static struct qg_quic_lb_ring ring;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct qg_quic_lb_config *bad;

	(void)argc;
	(void)argv;
	qg_quic_lb_ring_init(&ring);
	for (size_t i = 0; i < N_CFG; i++) {
		const struct lb_params *p = &params[i];

		if (qg_quic_lb_config_create(p->id, p->sid_len, p->nonce_len, p->keyed ? key : NULL, &cfg[i]))
			abort();
		CHECK(qg_quic_lb_config_get_id(cfg[i]) == p->id);
		CHECK(qg_quic_lb_config_cid_len(cfg[i]) == 1u + p->sid_len + p->nonce_len);
		if (i < QG_QUIC_LB_MAX_CONFIGS) {
			if (qg_quic_lb_config_clone(cfg[i], &clones[i]))
				abort();
			CHECK(qg_quic_lb_ring_set(&ring, clones[i]) == NULL);
		}
	}
	/* Out of range: refused, nothing allocated. */
	CHECK(qg_quic_lb_config_create(7, 1, 4, NULL, &bad) == -EINVAL);
	CHECK(qg_quic_lb_config_create(0, 0, 4, NULL, &bad) == -EINVAL);
	CHECK(qg_quic_lb_config_create(0, 16, 4, NULL, &bad) == -EINVAL);
	CHECK(qg_quic_lb_config_create(0, 1, 3, key, &bad) == -EINVAL);
	CHECK(qg_quic_lb_config_create(0, 2, 18, key, &bad) == -EINVAL);
	return 0;
}

/* Arbitrary bytes as a CID under c: never out of bounds, and the decoders agree. */
static void decode_any(struct qg_quic_lb_config *c, const struct lb_params *p, const uint8_t *cid, size_t len)
{
	uint8_t sid[QG_QUIC_LB_MAX_SID_LEN], sid2[QG_QUIC_LB_MAX_SID_LEN], nonce[QG_QUIC_LB_MAX_NONCE_LEN];
	size_t need = 1u + p->sid_len + p->nonce_len, ring_len = 0;
	int rc, rc2, rcr;

	rc = qg_quic_lb_decode(c, cid, len, sid, nonce);
	rc2 = qg_quic_lb_decode_server_id(c, cid, len, sid2);
	CHECK(rc == rc2);
	if (len < need || (cid[0] >> 5) != p->id) {
		CHECK(rc == -EINVAL);
	} else {
		CHECK(rc == 0);
		CHECK(memcmp(sid, sid2, p->sid_len) == 0);
		/* Without a key the CID is the plaintext. */
		if (!p->keyed)
			CHECK(memcmp(sid, cid + 1, p->sid_len) == 0 &&
			      memcmp(nonce, cid + 1 + p->sid_len, p->nonce_len) == 0);
	}
	/* The ring picks the config by the first octet. */
	rcr = qg_quic_lb_ring_decode(&ring, cid, len, sid2, &ring_len);
	if (len == 0) {
		CHECK(rcr == -EINVAL);
	} else if ((cid[0] >> 5) == QG_QUIC_LB_UNROUTABLE) {
		CHECK(rcr == -ENOENT);
	} else {
		const struct lb_params *rp = &params[cid[0] >> 5];

		CHECK(rcr == 0 || rcr == -EINVAL);
		CHECK((rcr == 0) == (len >= 1u + rp->sid_len + rp->nonce_len));
		if (rcr == 0)
			CHECK(ring_len == rp->sid_len);
		if (rcr == 0 && rp == p)
			CHECK(memcmp(sid, sid2, p->sid_len) == 0);
	}
}

/* server ID || nonce from the input: encode, and every decoder must give them back. */
static void round_trip(struct qg_quic_lb_config *c, const struct lb_params *p, size_t idx, const uint8_t *in,
		       size_t len)
{
	uint8_t sid_in[QG_QUIC_LB_MAX_SID_LEN] = { 0 }, nonce_in[QG_QUIC_LB_MAX_NONCE_LEN] = { 0 };
	uint8_t cid[QG_QUIC_LB_MAX_CID_LEN + 4], sid[QG_QUIC_LB_MAX_SID_LEN], nonce[QG_QUIC_LB_MAX_NONCE_LEN];
	size_t need = 1u + p->sid_len + p->nonce_len, ring_len = 0;
	int n;

	memcpy(sid_in, in, len < p->sid_len ? len : p->sid_len);
	if (len > p->sid_len)
		memcpy(nonce_in, in + p->sid_len,
		       len - p->sid_len < p->nonce_len ? len - p->sid_len : p->nonce_len);

	CHECK(qg_quic_lb_encode(c, sid_in, nonce_in, cid, need - 1) == -ENOSPC);
	n = qg_quic_lb_encode(c, sid_in, nonce_in, cid, sizeof(cid));
	CHECK(n > 0 && (size_t)n == need);
	CHECK(cid[0] == (uint8_t)(p->id << 5 | (p->sid_len + p->nonce_len)));
	CHECK(qg_quic_lb_config_id(cid, (size_t)n) == p->id);
	/* A key changes the bytes (not provably for every input, but a plaintext CID is the input). */
	if (!p->keyed)
		CHECK(memcmp(cid + 1, sid_in, p->sid_len) == 0);

	CHECK(qg_quic_lb_decode(c, cid, (size_t)n, sid, nonce) == 0);
	CHECK(memcmp(sid, sid_in, p->sid_len) == 0);
	CHECK(memcmp(nonce, nonce_in, p->nonce_len) == 0);
	memset(sid, 0, sizeof(sid));
	CHECK(qg_quic_lb_decode_server_id(c, cid, (size_t)n, sid) == 0);
	CHECK(memcmp(sid, sid_in, p->sid_len) == 0);
	/* Only the config id matters in the first octet; server-use octets after the CID are ignored. */
	cid[0] ^= 0x1f & (uint8_t)(len * 7 + 1);
	cid[n] = 0xa5;
	memset(sid, 0, sizeof(sid));
	CHECK(qg_quic_lb_decode(c, cid, (size_t)n + 1, sid, NULL) == 0);
	CHECK(memcmp(sid, sid_in, p->sid_len) == 0);
	/* One octet short: refused. */
	CHECK(qg_quic_lb_decode(c, cid, (size_t)n - 1, sid, nonce) == -EINVAL);
	/* The ring's clone (own cipher contexts) decodes what the original encoded. */
	if (idx < QG_QUIC_LB_MAX_CONFIGS) {
		memset(sid, 0, sizeof(sid));
		CHECK(qg_quic_lb_ring_decode(&ring, cid, (size_t)n, sid, &ring_len) == 0);
		CHECK(ring_len == p->sid_len && memcmp(sid, sid_in, p->sid_len) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t idx;

	if (size == 0)
		return 0;
	idx = data[0] % N_CFG;
	decode_any(cfg[idx], &params[idx], data + 1, size - 1);
	round_trip(cfg[idx], &params[idx], idx, data + 1, size - 1);
	/* The input as a CID under every config id: the ring alone routes it. */
	if (size > 1) {
		uint8_t sid[QG_QUIC_LB_MAX_SID_LEN];
		size_t sid_len;
		int rc = qg_quic_lb_ring_decode(&ring, data + 1, size - 1, sid, &sid_len);

		CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT);
	}
	return 0;
}
