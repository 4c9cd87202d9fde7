/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for qgate's Retry tokens and Retry packets
 * (dataplane/quic/retry_token.c).
 *
 *  - The input as a token: qg_retry_token_read() and qg_retry_token_open()
 *    never read outside it, what read returns is consistent with the bytes,
 *    and open never accepts it (its key is random per run: a forged tag).
 *  - The input as a Retry packet: qg_quic_retry_verify() never crashes.
 *  - The input as the parameters of a token (CID lengths and bytes, client
 *    IPv4/IPv6 address and port, age): a sealed token opens to the same CIDs
 *    from its address while young, is refused from another port, when old,
 *    when one byte changes or its length does; a Retry built around it
 *    verifies against its ODCID and no other.
 *
 * The ring holds two keys (a rotation happened), so tokens of the previous
 * key reach its grace check as well.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "qgate/addr.h"
#include "qgate/quic.h"
#include "qgate/retry_token.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define OLD_KEY_ID 3
#define CUR_KEY_ID 4
#define T0	   1000000u	 /* ring created */
#define T_ROTATE   (T0 + 60000u) /* the current key installed, the old one retired */
#define GRACE_MS   (QG_RETRY_DEFAULT_LIFETIME_MS + 1000)
#define LIFETIME   QG_RETRY_DEFAULT_LIFETIME_MS

static struct qg_retry_keys *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t k1[QG_RETRY_KEY_LEN], k2[QG_RETRY_KEY_LEN];

	(void)argc;
	(void)argv;
	/* Random keys: no input, not even a seed made with an earlier run's key, may open. */
	if (getrandom(k1, sizeof(k1), 0) != sizeof(k1) || getrandom(k2, sizeof(k2), 0) != sizeof(k2))
		abort();
	if (qg_retry_keys_create(OLD_KEY_ID, k1, T0, GRACE_MS, &keys) ||
	    qg_retry_keys_rotate(keys, CUR_KEY_ID, k2, T_ROTATE))
		abort();
	CHECK(qg_retry_keys_current_id(keys) == CUR_KEY_ID);
	CHECK(qg_retry_keys_rotate(keys, CUR_KEY_ID, k1, T_ROTATE) == -EINVAL);
	return 0;
}

/* A little cursor over the input: missing bytes read as 0. */
struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct in *in)
{
	uint8_t b = 0;

	if (in->n) {
		b = *in->p++;
		in->n--;
	}
	return b;
}

static void take_bytes(struct in *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = take(in);
}

static void make_addr(struct in *in, struct qg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (take(in) & 1) {
		a->family = AF_INET6;
		take_bytes(in, a->ip, 16);
	} else {
		a->family = AF_INET;
		take_bytes(in, a->ip, 4);
	}
	a->port = (uint16_t)(take(in) << 8 | take(in));
}

/* Arbitrary bytes as a token and as a Retry packet. */
static void arbitrary(const uint8_t *data, size_t size)
{
	uint8_t odcid[QG_RETRY_MAX_CID_LEN], scid[QG_RETRY_MAX_CID_LEN];
	size_t odcid_len = 99, scid_len = 99;
	struct qg_addr a;
	struct in in = { data, size };
	uint32_t age;
	int rc;

	rc = qg_retry_token_read(data, size, odcid, &odcid_len, scid, &scid_len);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		CHECK(qg_retry_token_is_retry(data, size));
		CHECK(odcid_len <= QG_RETRY_MAX_CID_LEN && scid_len >= 1 && scid_len <= QG_RETRY_MAX_CID_LEN);
		CHECK(size == QG_RETRY_TOKEN_OVERHEAD + odcid_len + scid_len);
		CHECK(data[0] == odcid_len && memcmp(odcid, data + 1, odcid_len) == 0);
		CHECK(data[1 + odcid_len] == QG_RETRY_TOKEN_FORMAT);
		CHECK(data[19 + odcid_len] == scid_len && memcmp(scid, data + 20 + odcid_len, scid_len) == 0);
	}
	/* NULL outputs are allowed. */
	CHECK(qg_retry_token_read(data, size, NULL, NULL, NULL, NULL) == rc);

	/* The client address and the clock from the token's own bytes, both families. */
	make_addr(&in, &a);
	age = (uint32_t)(size ? data[size - 1] : 0) * 100u;
	for (int fam = 0; fam < 2; fam++) {
		rc = qg_retry_token_open(keys, &a, data, size, T_ROTATE + age, LIFETIME, odcid, &odcid_len,
					 scid, &scid_len);
		CHECK(rc == -EACCES || rc == -EKEYEXPIRED);
		rc = qg_retry_token_open(keys, &a, data, size, T_ROTATE + age, LIFETIME, NULL, NULL, NULL,
					 NULL);
		CHECK(rc == -EACCES || rc == -EKEYEXPIRED);
		a.family = a.family == AF_INET ? AF_INET6 : AF_INET;
	}
	a.family = AF_UNIX;
	CHECK(qg_retry_token_open(keys, &a, data, size, T_ROTATE, LIFETIME, NULL, NULL, NULL, NULL) ==
	      -EINVAL);

	/* As a Retry packet, against ODCIDs of every length made of its first bytes. */
	for (size_t n = 0; n <= QG_RETRY_MAX_CID_LEN; n += 4) {
		uint8_t dcid[QG_RETRY_MAX_CID_LEN] = { 0 };

		memcpy(dcid, data, size < n ? size : n);
		rc = qg_quic_retry_verify(data, size, dcid, n);
		CHECK(rc == 0 || rc == -EACCES || rc == -EINVAL);
	}
}

/* A token sealed from the input's parameters, and a Retry around it. */
static void sealed(const uint8_t *data, size_t size)
{
	uint8_t odcid[QG_RETRY_MAX_CID_LEN], scid[QG_RETRY_MAX_CID_LEN], o2[QG_RETRY_MAX_CID_LEN],
		s2[QG_RETRY_MAX_CID_LEN], cscid[QG_RETRY_MAX_CID_LEN];
	uint8_t tok[QG_RETRY_TOKEN_MAX_LEN + 8], pkt[QG_RETRY_PACKET_MAX_LEN + 8];
	size_t odcid_len, scid_len, cscid_len, o2_len, s2_len;
	struct in in = { data, size };
	struct qg_addr a, b;
	uint32_t now, age;
	uint8_t sel;
	int n, rc, plen;

	odcid_len = take(&in) % (QG_RETRY_MAX_CID_LEN + 1);
	scid_len = 1 + take(&in) % QG_RETRY_MAX_CID_LEN;
	cscid_len = take(&in) % (QG_RETRY_MAX_CID_LEN + 1);
	take_bytes(&in, odcid, odcid_len);
	take_bytes(&in, scid, scid_len);
	take_bytes(&in, cscid, cscid_len);
	make_addr(&in, &a);
	now = T_ROTATE + (uint32_t)(take(&in) << 8 | take(&in)) * 61u; /* up to ~4000 s after the rotation */
	age = (uint32_t)(take(&in) << 8 | take(&in)) % (2 * LIFETIME);
	sel = take(&in);

	/* Too small a buffer, bad lengths, no address: refused. */
	CHECK(qg_retry_token_seal(keys, &a, odcid, odcid_len, scid, scid_len, now, tok,
				  QG_RETRY_TOKEN_OVERHEAD + odcid_len + scid_len - 1) == -ENOSPC);
	CHECK(qg_retry_token_seal(keys, &a, odcid, odcid_len, scid, 0, now, tok, sizeof(tok)) == -EINVAL);
	CHECK(qg_retry_token_seal(keys, &a, odcid, QG_RETRY_MAX_CID_LEN + 1, scid, scid_len, now, tok,
				  sizeof(tok)) == -EINVAL);

	n = qg_retry_token_seal(keys, &a, odcid, odcid_len, scid, scid_len, now, tok, sizeof(tok));
	CHECK(n > 0 && (size_t)n == QG_RETRY_TOKEN_OVERHEAD + odcid_len + scid_len);
	CHECK(qg_retry_token_is_retry(tok, (size_t)n));

	/* What a backend reads, without a key. */
	CHECK(qg_retry_token_read(tok, (size_t)n, o2, &o2_len, s2, &s2_len) == 0);
	CHECK(o2_len == odcid_len && memcmp(o2, odcid, odcid_len) == 0);
	CHECK(s2_len == scid_len && memcmp(s2, scid, scid_len) == 0);

	/* Opens from its address while young, to the same CIDs; too old: expired. */
	memset(o2, 0, sizeof(o2));
	memset(s2, 0, sizeof(s2));
	rc = qg_retry_token_open(keys, &a, tok, (size_t)n, now + age, LIFETIME, o2, &o2_len, s2, &s2_len);
	if (age <= LIFETIME) {
		CHECK(rc == 0);
		CHECK(o2_len == odcid_len && memcmp(o2, odcid, odcid_len) == 0);
		CHECK(s2_len == scid_len && memcmp(s2, scid, scid_len) == 0);
	} else {
		CHECK(rc == -EKEYEXPIRED);
	}
	/* A clock behind the issue time looks ancient. */
	CHECK(qg_retry_token_open(keys, &a, tok, (size_t)n, now - 1, LIFETIME, NULL, NULL, NULL, NULL) ==
	      -EKEYEXPIRED);

	/* Another port, another address, another family: not this token's client. */
	b = a;
	b.port ^= (uint16_t)(1u << (sel & 15));
	CHECK(qg_retry_token_open(keys, &b, tok, (size_t)n, now, LIFETIME, NULL, NULL, NULL, NULL) ==
	      -EACCES);
	b = a;
	b.ip[(sel >> 4) % (a.family == AF_INET ? 4 : 16)] ^= 0x01;
	CHECK(qg_retry_token_open(keys, &b, tok, (size_t)n, now, LIFETIME, NULL, NULL, NULL, NULL) ==
	      -EACCES);
	b = a;
	b.family = a.family == AF_INET ? AF_INET6 : AF_INET;
	CHECK(qg_retry_token_open(keys, &b, tok, (size_t)n, now, LIFETIME, NULL, NULL, NULL, NULL) ==
	      -EACCES);

	/* One byte changed anywhere, one byte less or more: refused (expired at most, never opened). */
	{
		uint8_t t2[sizeof(tok)];
		size_t at = (size_t)(sel | take(&in) << 8) % (size_t)n;
		uint8_t flip = (uint8_t)(take(&in) | 1);

		memcpy(t2, tok, (size_t)n);
		t2[at] ^= flip;
		rc = qg_retry_token_open(keys, &a, t2, (size_t)n, now, LIFETIME, NULL, NULL, NULL, NULL);
		CHECK(rc == -EACCES || rc == -EKEYEXPIRED);
		CHECK(qg_retry_token_open(keys, &a, tok, (size_t)n - 1, now, LIFETIME, NULL, NULL, NULL,
					  NULL) == -EACCES);
		memcpy(t2, tok, (size_t)n);
		t2[n] = flip;
		CHECK(qg_retry_token_open(keys, &a, t2, (size_t)n + 1, now, LIFETIME, NULL, NULL, NULL,
					  NULL) == -EACCES);
	}

	/* A Retry around it: verifies against its ODCID, not another one. */
	{
		uint32_t version = (sel & 1) ? QG_QUIC_VERSION_2 : QG_QUIC_VERSION_1;
		struct qg_quic_hdr h;
		uint8_t other[QG_RETRY_MAX_CID_LEN + 1];
		size_t other_len;

		plen = qg_quic_build_retry(pkt, sizeof(pkt), version, cscid, cscid_len, odcid, odcid_len,
					   scid, scid_len, tok, (size_t)n);
		if (scid_len == odcid_len && memcmp(scid, odcid, scid_len) == 0) {
			CHECK(plen == -EINVAL); /* RFC 9000 Sec 17.2.5.1 */
			return;
		}
		CHECK(plen > 0 && (size_t)plen == 7 + cscid_len + scid_len + (size_t)n + 16);
		CHECK(plen <= QG_RETRY_PACKET_MAX_LEN);
		CHECK(qg_quic_retry_verify(pkt, (size_t)plen, odcid, odcid_len) == 0);
		CHECK(qg_quic_parse(pkt, (size_t)plen, 0, &h) == 0);
		CHECK(h.type == QG_QUIC_TYPE_RETRY && h.version == version);
		CHECK(h.dcid_len == cscid_len && memcmp(h.dcid, cscid, cscid_len) == 0);
		CHECK(h.scid_len == scid_len && memcmp(h.scid, scid, scid_len) == 0);
		CHECK(h.token_len == (size_t)n && memcmp(h.token, tok, (size_t)n) == 0);
		/* A different ODCID: one byte changed, or one byte longer. */
		memcpy(other, odcid, odcid_len);
		other_len = odcid_len;
		if (odcid_len && (sel & 2))
			other[sel % odcid_len] ^= 0x80;
		else
			other[other_len++] = sel;
		if (other_len <= QG_RETRY_MAX_CID_LEN)
			CHECK(qg_quic_retry_verify(pkt, (size_t)plen, other, other_len) == -EACCES);
		/* One byte of the packet changed: refused (or no longer a v1/v2 Retry). */
		pkt[(size_t)(sel | take(&in) << 8) % (size_t)plen] ^= (uint8_t)(take(&in) | 1);
		rc = qg_quic_retry_verify(pkt, (size_t)plen, odcid, odcid_len);
		CHECK(rc == -EACCES || rc == -EINVAL);
		CHECK(qg_quic_build_retry(pkt, (size_t)plen - 1, version, cscid, cscid_len, odcid, odcid_len,
					  scid, scid_len, tok, (size_t)n) == -ENOSPC);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arbitrary(data, size);
	sealed(data, size);
	return 0;
}
