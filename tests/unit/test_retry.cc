// SPDX-License-Identifier: BSD-3-Clause
// Retry offload: the RFC 9001 A.4 and RFC 9369 A.4 Retry packets rebuilt
// byte for byte, integrity tags checked and refused when tampered with,
// qgate's Retry tokens (round trip, tampering, address binding, expiry, key
// rotation with grace, unknown key ids, per-thread clones), what a server
// reads out of a token, tshark's dissection of the Retries in a pcap, and the
// relay with retry: on driven through an in-memory I/O backend (Retry answers,
// admission and routing of token-bearing Initials, QUIC-LB Retry SCIDs).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "rfc9001_vectors.h"
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "dataplane/pipeline/relay.h"
#include "qgate/addr.h"
#include "qgate/clock.h"
#include "qgate/config.h"
#include "qgate/counters.h"
#include "qgate/quic.h"
#include "qgate/quic_lb.h"
#include "qgate/retry_token.h"
}

namespace
{

using Bytes = std::vector<uint8_t>;

Bytes Hex(const std::string &s)
{
	Bytes b;
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		b.push_back((uint8_t)std::stoul(s.substr(i, 2), nullptr, 16));
	return b;
}

std::string ToHex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += digits[p[i] >> 4];
		s += digits[p[i] & 15];
	}
	return s;
}

std::string ToHex(const Bytes &b)
{
	return ToHex(b.data(), b.size());
}

qg_addr Addr(const char *text)
{
	qg_addr a;
	EXPECT_EQ(qg_addr_parse(text, &a), 0) << text;
	return a;
}

// rfc9001-v1-vectors.txt and RFC 9369 Appendix A.4.
const char kOdcid[] = "8394c8f03e515708";
const char kRetryScid[] = "f067a5502a4262b5";
const char kRetryV1[] = "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba";
const char kRetryV2[] = "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6";

Bytes BuildRetry(uint32_t version, const Bytes &client_scid, const Bytes &odcid, const Bytes &scid,
		 const Bytes &token)
{
	Bytes out(QG_RETRY_PACKET_MAX_LEN + 64);
	int n = qg_quic_build_retry(out.data(), out.size(), version, client_scid.data(), client_scid.size(),
				    odcid.data(), odcid.size(), scid.data(), scid.size(), token.data(),
				    token.size());
	EXPECT_GT(n, 0);
	out.resize(n > 0 ? n : 0);
	return out;
}

TEST(RetryPacket, Rfc9001A4ByteForByte)
{
	Bytes pkt = BuildRetry(QG_QUIC_VERSION_1, Bytes(), Hex(kOdcid), Hex(kRetryScid),
			       Bytes{ 't', 'o', 'k', 'e', 'n' });
	EXPECT_EQ(ToHex(pkt), kRetryV1);
	Bytes odcid = Hex(kOdcid);
	EXPECT_EQ(qg_quic_retry_verify(pkt.data(), pkt.size(), odcid.data(), odcid.size()), 0);
}

TEST(RetryPacket, Rfc9369A4ByteForByte)
{
	Bytes pkt = BuildRetry(QG_QUIC_VERSION_2, Bytes(), Hex(kOdcid), Hex(kRetryScid),
			       Bytes{ 't', 'o', 'k', 'e', 'n' });
	EXPECT_EQ(ToHex(pkt), kRetryV2);
	Bytes odcid = Hex(kOdcid);
	EXPECT_EQ(qg_quic_retry_verify(pkt.data(), pkt.size(), odcid.data(), odcid.size()), 0);

	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(pkt.data(), pkt.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_RETRY) << "v2 type bits 00 mean Retry";
	EXPECT_EQ(h.version, QG_QUIC_VERSION_2);
}

TEST(RetryPacket, VerifyRefusesTamperingAndOtherOdcid)
{
	Bytes odcid = Hex(kOdcid);
	for (const char *hex : { kRetryV1, kRetryV2 }) {
		Bytes pkt = Hex(hex);
		ASSERT_EQ(qg_quic_retry_verify(pkt.data(), pkt.size(), odcid.data(), odcid.size()), 0);
		// Every byte after the first is covered (the first one's unused bits too).
		for (size_t i = 0; i < pkt.size(); i++) {
			Bytes bad = pkt;
			bad[i] ^= 0x01;
			int rc = qg_quic_retry_verify(bad.data(), bad.size(), odcid.data(), odcid.size());
			EXPECT_TRUE(rc == -EACCES || rc == -EINVAL) << hex << " byte " << i << " rc " << rc;
		}
		Bytes other = odcid;
		other[7] ^= 1;
		EXPECT_EQ(qg_quic_retry_verify(pkt.data(), pkt.size(), other.data(), other.size()), -EACCES);
		// The v1 tag does not verify as v2 and vice versa: versions have their own keys.
		Bytes swapped = pkt;
		swapped[0] = swapped[0] == 0xff ? 0xcf : 0xff;
		memcpy(&swapped[1], swapped[0] == 0xff ? "\x00\x00\x00\x01" : "\x6b\x33\x43\xcf", 4);
		EXPECT_EQ(qg_quic_retry_verify(swapped.data(), swapped.size(), odcid.data(), odcid.size()),
			  -EACCES);
	}
}

TEST(RetryPacket, BuildRefuses)
{
	Bytes out(256), odcid = Hex(kOdcid), scid = Hex(kRetryScid), tok{ 1 };
	// The Retry SCID must differ from the client's DCID (RFC 9000 Sec 17.2.5.1).
	EXPECT_EQ(qg_quic_build_retry(out.data(), out.size(), QG_QUIC_VERSION_1, nullptr, 0, odcid.data(),
				      odcid.size(), odcid.data(), odcid.size(), tok.data(), 1),
		  -EINVAL);
	EXPECT_EQ(qg_quic_build_retry(out.data(), out.size(), 0x1a2a3a4a, nullptr, 0, odcid.data(),
				      odcid.size(), scid.data(), scid.size(), tok.data(), 1),
		  -EINVAL);
	EXPECT_EQ(qg_quic_build_retry(out.data(), out.size(), QG_QUIC_VERSION_1, nullptr, 0, odcid.data(),
				      odcid.size(), scid.data(), scid.size(), tok.data(), 0),
		  -EINVAL)
		<< "a Retry token is never empty";
	EXPECT_EQ(qg_quic_build_retry(out.data(), 7 + 8 + 1 + 16 - 1, QG_QUIC_VERSION_1, nullptr, 0,
				      odcid.data(), odcid.size(), scid.data(), scid.size(), tok.data(), 1),
		  -ENOSPC);
	EXPECT_EQ(qg_quic_build_retry(out.data(), 7 + 8 + 1 + 16, QG_QUIC_VERSION_1, nullptr, 0, odcid.data(),
				      odcid.size(), scid.data(), scid.size(), tok.data(), 1),
		  7 + 8 + 1 + 16);
}

// ---- tokens ----

const uint8_t kKeyA[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
const uint8_t kKeyB[16] = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
			    0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf };
const uint8_t kKeyC[16] = { 0xc0 };
constexpr uint32_t kLifetime = 10000, kGrace = 11000;

struct Keys {
	qg_retry_keys *k = nullptr;
	Keys(uint8_t id, const uint8_t *key, uint64_t now, uint32_t grace = kGrace)
	{
		EXPECT_EQ(qg_retry_keys_create(id, key, now, grace, &k), 0);
	}
	~Keys()
	{
		qg_retry_keys_destroy(k);
	}
	Keys(const Keys &) = delete;
	Keys &operator=(const Keys &) = delete;
};

Bytes Seal(qg_retry_keys *k, const qg_addr &a, const Bytes &odcid, const Bytes &scid, uint64_t now)
{
	Bytes t(QG_RETRY_TOKEN_MAX_LEN);
	int n = qg_retry_token_seal(k, &a, odcid.data(), odcid.size(), scid.data(), scid.size(), now,
				    t.data(), t.size());
	EXPECT_GT(n, 0);
	t.resize(n > 0 ? n : 0);
	return t;
}

int Open(qg_retry_keys *k, const qg_addr &a, const Bytes &t, uint64_t now, Bytes *odcid = nullptr,
	 Bytes *scid = nullptr)
{
	uint8_t o[QG_RETRY_MAX_CID_LEN], s[QG_RETRY_MAX_CID_LEN];
	size_t ol = 99, sl = 99;
	int rc = qg_retry_token_open(k, &a, t.data(), t.size(), now, kLifetime, o, &ol, s, &sl);
	if (rc == 0 && odcid)
		odcid->assign(o, o + ol);
	if (rc == 0 && scid)
		scid->assign(s, s + sl);
	return rc;
}

TEST(RetryToken, RoundTripV4AndV6)
{
	Keys keys(7, kKeyA, 1000);
	Bytes odcid = Hex(kOdcid), scid = Hex("e7a1a2a3a4a5a6a7");
	for (const char *addr : { "192.0.2.10:51000", "[2001:db8::10]:443" }) {
		qg_addr a = Addr(addr);
		Bytes t = Seal(keys.k, a, odcid, scid, 1000);
		ASSERT_EQ(t.size(), QG_RETRY_TOKEN_OVERHEAD + odcid.size() + scid.size());
		EXPECT_TRUE(qg_retry_token_is_retry(t.data(), t.size()));
		EXPECT_EQ(t[0], odcid.size()) << "first bit 0, then the ODCID length";
		EXPECT_EQ(ToHex(&t[1], odcid.size()), kOdcid)
			<< "ODCID in the clear, where the server reads it";
		EXPECT_EQ(t[1 + odcid.size()], QG_RETRY_TOKEN_FORMAT);
		EXPECT_EQ(t[2 + odcid.size()], 7) << "key id";
		EXPECT_EQ(ToHex(&t[3 + odcid.size()], 4), "000003e8") << "issue time, big-endian";

		Bytes o, s;
		ASSERT_EQ(Open(keys.k, a, t, 1500, &o, &s), 0) << addr;
		EXPECT_EQ(ToHex(o), kOdcid);
		EXPECT_EQ(ToHex(s), ToHex(scid));

		// The server side: no key needed.
		uint8_t ro[QG_RETRY_MAX_CID_LEN], rs[QG_RETRY_MAX_CID_LEN];
		size_t rol = 0, rsl = 0;
		ASSERT_EQ(qg_retry_token_read(t.data(), t.size(), ro, &rol, rs, &rsl), 0);
		EXPECT_EQ(ToHex(ro, rol), kOdcid);
		EXPECT_EQ(ToHex(rs, rsl), ToHex(scid));
	}
	// Two tokens for the same connection attempt differ (random nonce).
	qg_addr a = Addr("192.0.2.10:51000");
	EXPECT_NE(ToHex(Seal(keys.k, a, odcid, scid, 1000)), ToHex(Seal(keys.k, a, odcid, scid, 1000)));
}

TEST(RetryToken, CidLengthsFromZeroToTwenty)
{
	Keys keys(1, kKeyA, 0);
	qg_addr a = Addr("198.51.100.1:1234");
	for (size_t n = 0; n <= 20; n++) {
		for (size_t m = 1; m <= 20; m += 19) {
			Bytes odcid(n, 0x11), scid(m, 0x22);
			Bytes t = Seal(keys.k, a, odcid, scid, 5);
			ASSERT_EQ(t.size(), QG_RETRY_TOKEN_OVERHEAD + n + m);
			ASSERT_LE(t.size(), (size_t)QG_RETRY_TOKEN_MAX_LEN);
			Bytes o, s;
			ASSERT_EQ(Open(keys.k, a, t, 5, &o, &s), 0) << n << " " << m;
			EXPECT_EQ(o, odcid);
			EXPECT_EQ(s, scid);
		}
	}
	Bytes t(QG_RETRY_TOKEN_MAX_LEN), big(21, 1), one(1, 1);
	EXPECT_EQ(qg_retry_token_seal(keys.k, &a, big.data(), 21, one.data(), 1, 0, t.data(), t.size()),
		  -EINVAL);
	EXPECT_EQ(qg_retry_token_seal(keys.k, &a, one.data(), 1, big.data(), 21, 0, t.data(), t.size()),
		  -EINVAL);
	EXPECT_EQ(qg_retry_token_seal(keys.k, &a, one.data(), 1, one.data(), 0, 0, t.data(), t.size()),
		  -EINVAL);
	EXPECT_EQ(qg_retry_token_seal(keys.k, &a, one.data(), 1, one.data(), 1, 0, t.data(),
				      QG_RETRY_TOKEN_OVERHEAD + 1),
		  -ENOSPC);
}

TEST(RetryToken, AnyTamperedByteIsRefused)
{
	Keys keys(3, kKeyA, 0);
	qg_addr a = Addr("203.0.113.5:40000");
	Bytes t = Seal(keys.k, a, Hex(kOdcid), Hex("e7010203040506aa"), 100);
	ASSERT_EQ(Open(keys.k, a, t, 100), 0);
	for (size_t i = 0; i < t.size(); i++) {
		for (uint8_t bit : { 0x01, 0x80 }) {
			Bytes bad = t;
			bad[i] ^= bit;
			EXPECT_EQ(Open(keys.k, a, bad, 100), -EACCES) << "byte " << i << " bit " << (int)bit;
		}
	}
	// Truncated or extended.
	Bytes shorter(t.begin(), t.end() - 1), longer = t;
	longer.push_back(0);
	EXPECT_EQ(Open(keys.k, a, shorter, 100), -EACCES);
	EXPECT_EQ(Open(keys.k, a, longer, 100), -EACCES);
	EXPECT_EQ(Open(keys.k, a, Bytes(), 100), -EACCES);
	// A NEW_TOKEN token (first bit 1) is not ours: not a Retry token, nothing to read.
	Bytes new_token(40, 0x80);
	EXPECT_FALSE(qg_retry_token_is_retry(new_token.data(), new_token.size()));
	EXPECT_EQ(qg_retry_token_read(new_token.data(), new_token.size(), nullptr, nullptr, nullptr, nullptr),
		  -EINVAL);
	EXPECT_EQ(Open(keys.k, a, new_token, 100), -EACCES);
}

TEST(RetryToken, BoundToTheClientAddressAndPort)
{
	Keys keys(3, kKeyA, 0);
	qg_addr a = Addr("203.0.113.5:40000");
	Bytes t = Seal(keys.k, a, Hex(kOdcid), Hex("e7010203040506aa"), 100);
	for (const char *other : { "203.0.113.5:40001", "203.0.113.6:40000", "[::ffff:203.0.113.5]:40000",
				   "[2001:db8::5]:40000" })
		EXPECT_EQ(Open(keys.k, Addr(other), t, 100), -EACCES) << other;
	EXPECT_EQ(Open(keys.k, a, t, 100), 0);
}

TEST(RetryToken, ExpiresAfterItsLifetime)
{
	Keys keys(3, kKeyA, 0);
	qg_addr a = Addr("203.0.113.5:40000");
	Bytes t = Seal(keys.k, a, Hex(kOdcid), Hex("e7010203040506aa"), 5000);
	EXPECT_EQ(Open(keys.k, a, t, 5000 + kLifetime), 0);
	EXPECT_EQ(Open(keys.k, a, t, 5000 + kLifetime + 1), -EKEYEXPIRED);
	// A time ahead of the clock counts as expired, not as fresh.
	EXPECT_EQ(Open(keys.k, a, t, 4000), -EKEYEXPIRED);
	// The clock wraps at 2^32 ms without harm.
	uint64_t near_wrap = 0xfffff000ull;
	Bytes w = Seal(keys.k, a, Hex(kOdcid), Hex("e7010203040506aa"), near_wrap);
	EXPECT_EQ(Open(keys.k, a, w, near_wrap + 8000), 0);
	EXPECT_EQ(Open(keys.k, a, w, near_wrap + kLifetime + 1), -EKEYEXPIRED);
}

TEST(RetryToken, RotationKeepsThePreviousKeyForTheGrace)
{
	Keys keys(1, kKeyA, 0);
	qg_addr a = Addr("192.0.2.1:5555");
	Bytes odcid = Hex(kOdcid), scid = Hex("e7aaaaaaaaaaaaaa");
	Bytes old_token = Seal(keys.k, a, odcid, scid, 60000);

	ASSERT_EQ(qg_retry_keys_current_age(keys.k, 60000), 60000u);
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 1, kKeyB, 60001), -EINVAL) << "the id must change";
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 2, kKeyB, 60001), 0);
	EXPECT_EQ(qg_retry_keys_current_id(keys.k), 2);
	EXPECT_EQ(qg_retry_keys_current_age(keys.k, 60001), 0u);

	Bytes new_token = Seal(keys.k, a, odcid, scid, 60002);
	EXPECT_EQ(new_token[2 + odcid.size()], 2) << "sealed under the new key";
	// Within the grace, the previous key still opens its tokens (while they live).
	EXPECT_EQ(Open(keys.k, a, old_token, 60002), 0);
	EXPECT_EQ(Open(keys.k, a, new_token, 60002), 0);
	// With a grace longer than the lifetime, the token dies first ...
	EXPECT_EQ(Open(keys.k, a, old_token, 60000 + kLifetime + 1), -EKEYEXPIRED);

	// ... and with a short grace the key itself is refused after it, however fresh the token.
	Keys shortg(1, kKeyA, 0, 500);
	Bytes t = Seal(shortg.k, a, odcid, scid, 1000);
	ASSERT_EQ(qg_retry_keys_rotate(shortg.k, 2, kKeyB, 1000), 0);
	EXPECT_EQ(Open(shortg.k, a, t, 1500), 0) << "within the grace";
	EXPECT_EQ(Open(shortg.k, a, t, 1501), -EKEYEXPIRED) << "after the grace";
	// The next rotation forgets the first key altogether: its id is unknown.
	ASSERT_EQ(qg_retry_keys_rotate(shortg.k, 3, kKeyC, 1600), 0);
	EXPECT_EQ(Open(shortg.k, a, t, 1600), -EACCES);
	// The current key still works and the previous (B) within its grace.
	Bytes tc = Seal(shortg.k, a, odcid, scid, 1700);
	EXPECT_EQ(Open(shortg.k, a, tc, 1700), 0);
}

TEST(RetryToken, WrongKeyOrUnknownKeyId)
{
	Keys a_ring(5, kKeyA, 0), b_same_id(5, kKeyB, 0), b_other_id(6, kKeyB, 0);
	qg_addr a = Addr("192.0.2.1:5555");
	Bytes t = Seal(a_ring.k, a, Hex(kOdcid), Hex("e7bbbbbbbbbbbbbb"), 10);
	EXPECT_EQ(Open(a_ring.k, a, t, 10), 0);
	EXPECT_EQ(Open(b_same_id.k, a, t, 10), -EACCES) << "same id, another key: the tag fails";
	EXPECT_EQ(Open(b_other_id.k, a, t, 10), -EACCES) << "no key with that id";
}

TEST(RetryToken, ClonePerThread)
{
	Keys keys(1, kKeyA, 0);
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 2, kKeyB, 100), 0);
	qg_addr a = Addr("192.0.2.1:5555");
	Bytes odcid = Hex(kOdcid), scid = Hex("e7cccccccccccccc");

	std::vector<std::thread> threads;
	std::vector<int> fails(4, 0);
	for (int i = 0; i < 4; i++) {
		threads.emplace_back([&, i] {
			qg_retry_keys *mine = nullptr;
			if (qg_retry_keys_clone(keys.k, &mine) != 0) {
				fails[i]++;
				return;
			}
			for (int j = 0; j < 200; j++) {
				Bytes t = Seal(mine, a, odcid, scid, 200);
				if (Open(mine, a, t, 200) != 0)
					fails[i]++;
				// A Retry per iteration too: per-thread integrity contexts.
				Bytes pkt = BuildRetry(j & 1 ? QG_QUIC_VERSION_2 : QG_QUIC_VERSION_1, Bytes(),
						       odcid, scid, t);
				if (qg_quic_retry_verify(pkt.data(), pkt.size(), odcid.data(),
							 odcid.size()) != 0)
					fails[i]++;
			}
			qg_retry_keys_destroy(mine);
		});
	}
	for (auto &t : threads)
		t.join();
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(fails[i], 0) << "thread " << i;
	// The clone carries the previous key and its grace too.
	qg_retry_keys *c = nullptr;
	Bytes old;
	{
		Keys k1(1, kKeyA, 0);
		old = Seal(k1.k, a, odcid, scid, 150);
	}
	ASSERT_EQ(qg_retry_keys_clone(keys.k, &c), 0);
	EXPECT_EQ(qg_retry_keys_current_id(c), 2);
	EXPECT_EQ(Open(c, a, old, 200), 0);
	qg_retry_keys_destroy(c);
}

TEST(RetryToken, RetryWithTokenIsSmall)
{
	// The largest Retry qgate sends stays far below the 1200-byte Initial that causes it.
	Keys keys(1, kKeyA, 0);
	qg_addr a = Addr("[2001:db8::1]:65535");
	Bytes cid20(20, 0x33), other20(20, 0x44);
	Bytes t = Seal(keys.k, a, cid20, other20, 0);
	ASSERT_EQ(t.size(), (size_t)QG_RETRY_TOKEN_MAX_LEN);
	Bytes pkt = BuildRetry(QG_QUIC_VERSION_1, cid20, cid20, other20, t);
	EXPECT_EQ(pkt.size(), (size_t)QG_RETRY_PACKET_MAX_LEN);
	EXPECT_LT(pkt.size() * 3, (size_t)QG_QUIC_MIN_INITIAL_SIZE);

	// And the token comes back out of the Retry as a client sees it.
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(pkt.data(), pkt.size(), 0, &h), 0);
	ASSERT_EQ(h.type, QG_QUIC_TYPE_RETRY);
	EXPECT_EQ(Bytes(h.token, h.token + h.token_len), t);
	EXPECT_EQ(Bytes(h.scid, h.scid + h.scid_len), other20);
}

// ---- tshark ----

const char *const kClientInitial = kRfc9001ClientInitialHex;

void Put16(Bytes &b, size_t off, uint16_t v)
{
	b[off] = (uint8_t)(v >> 8);
	b[off + 1] = (uint8_t)v;
}

// Ethernet + IPv4 + UDP around payload (UDP checksum 0: allowed over IPv4).
Bytes Frame(uint32_t src_ip, uint16_t sport, uint32_t dst_ip, uint16_t dport, const Bytes &payload)
{
	Bytes f(14 + 20 + 8);
	const uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	memcpy(f.data(), mac, 12);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = &f[14];
	ip[0] = 0x45;
	Put16(f, 16, (uint16_t)(20 + 8 + payload.size()));
	ip[8] = 64;
	ip[9] = 17;
	for (int i = 0; i < 4; i++) {
		ip[12 + i] = (uint8_t)(src_ip >> (24 - 8 * i));
		ip[16 + i] = (uint8_t)(dst_ip >> (24 - 8 * i));
	}
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	Put16(f, 24, (uint16_t)~sum);
	Put16(f, 34, sport);
	Put16(f, 36, dport);
	Put16(f, 38, (uint16_t)(8 + payload.size()));
	// Appended by resize + copy: GCC 12 -O3 warns falsely (array-bounds) on vector::insert here.
	size_t at = f.size();
	f.resize(at + payload.size());
	if (!payload.empty())
		memcpy(&f[at], payload.data(), payload.size());
	return f;
}

void WritePcap(const std::string &path, const std::vector<Bytes> &frames)
{
	FILE *fp = fopen(path.c_str(), "wb");
	ASSERT_NE(fp, nullptr);
	const uint32_t ghdr[6] = { 0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1 /* Ethernet */ };
	fwrite(ghdr, sizeof(ghdr), 1, fp);
	uint32_t t = 1700000000;
	for (const Bytes &f : frames) {
		const uint32_t rec[4] = { t++, 0, (uint32_t)f.size(), (uint32_t)f.size() };
		fwrite(rec, sizeof(rec), 1, fp);
		fwrite(f.data(), f.size(), 1, fp);
	}
	fclose(fp);
}

std::string Capture(const std::string &cmd)
{
	std::string out;
	FILE *p = popen(cmd.c_str(), "r");
	if (!p)
		return out;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	pclose(p);
	return out;
}

TEST(RetryPcap, TsharkDissectsRetries)
{
	if (system("command -v tshark >/dev/null 2>&1") != 0)
		GTEST_SKIP() << "tshark is not installed";

	const uint32_t client = 0xc0000201, server = 0xc0000202; // 192.0.2.1 -> 192.0.2.2:443
	Bytes odcid = Hex(kOdcid);
	Keys keys(9, kKeyA, 0);
	qg_addr a = Addr("192.0.2.1:50000");
	Bytes scid = Hex("e70102030405060a");
	Bytes token = Seal(keys.k, a, odcid, scid, 0);
	Bytes ours = BuildRetry(QG_QUIC_VERSION_1, Bytes(), odcid, scid, token);

	// Each Retry follows the client Initial it answers, so tshark knows the ODCID and can check the tag.
	std::vector<Bytes> frames = {
		Frame(client, 50000, server, 443, Hex(kClientInitial)),
		Frame(server, 443, client, 50000, Hex(kRetryV1)),
		Frame(client, 50001, server, 443, Hex(kClientInitial)),
		Frame(server, 443, client, 50001, ours),
	};
	char tmpl[] = "/tmp/qgate-retry-XXXXXX";
	int fd = mkstemp(tmpl);
	ASSERT_GE(fd, 0);
	close(fd);
	std::string pcap = std::string(tmpl) + ".pcap";
	rename(tmpl, pcap.c_str());
	WritePcap(pcap, frames);

	std::string v = Capture("tshark -r " + pcap + " -d udp.port==443,quic -V 2>&1");
	std::string fields =
		Capture("tshark -r " + pcap +
			" -d udp.port==443,quic -Y quic -T fields -e frame.number -e quic.long.packet_type "
			"-e quic.retry_token -e quic.scid 2>&1");
	if (!getenv("QG_KEEP_PCAP"))
		unlink(pcap.c_str());

	EXPECT_EQ(v.find("Malformed"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Error"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Warning"), std::string::npos) << v;
	// Both Retries are Retries (v1 long packet type 3) with the token and SCID we put in.
	EXPECT_NE(fields.find("2\t3\t746f6b656e\tf067a5502a4262b5"), std::string::npos) << fields;
	EXPECT_NE(fields.find("4\t3\t" + ToHex(token) + "\t" + ToHex(scid)), std::string::npos) << fields;
	// tshark checks the integrity tags itself, with the ODCID of the Initial before each.
	size_t verified = 0;
	for (size_t at = v.find("Retry Integrity Tag: "); at != std::string::npos;
	     at = v.find("Retry Integrity Tag: ", at + 1))
		verified += v.compare(at + 21 + 32, 11, " [verified]") == 0;
	EXPECT_EQ(verified, 2u) << v;
}

// ---- the relay with retry: on ----

// An in-memory I/O backend: records what the relay sends.
struct MockIo {
	struct Sent {
		Bytes data;
		qg_addr peer;
		uint32_t slot; // toward a backend: its slot
	};
	std::vector<Sent> to_backend, to_client;
	unsigned released = 0;
	std::map<uint32_t, uint32_t> up_slot;
	uint32_t next_up = 0;
};

MockIo *Mock(qg_io *io)
{
	return reinterpret_cast<MockIo *>(io);
}

void MockTxBackend(qg_io *io, qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		Mock(io)->to_backend.push_back({ Bytes(pkts[i].data, pkts[i].data + pkts[i].len),
						 pkts[i].peer, Mock(io)->up_slot[pkts[i].upstream] });
}

void MockTxClient(qg_io *io, qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		Mock(io)->to_client.push_back(
			{ Bytes(pkts[i].data, pkts[i].data + pkts[i].len), pkts[i].peer, 0 });
}

void MockRelease(qg_io *io, qg_pkt *, unsigned n)
{
	Mock(io)->released += n;
}

int MockOpen(qg_io *io, uint32_t slot, const qg_addr *, uint32_t *up)
{
	*up = Mock(io)->next_up++;
	Mock(io)->up_slot[*up] = slot;
	return 0;
}

void MockClose(qg_io *, uint32_t, int)
{
}

const qg_io_ops &MockOps()
{
	static qg_io_ops ops;
	ops.name = "mock";
	ops.tx_backend = MockTxBackend;
	ops.tx_client = MockTxClient;
	ops.release = MockRelease;
	ops.upstream_open = MockOpen;
	ops.upstream_close = MockClose;
	return ops;
}

const uint8_t kLbKey[16] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
			     0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };

// One quic service of four backends through one relay.
struct RelayRig {
	MockIo io;
	qg_ctr_block ctr{};
	qg_config_backend be[4]{};
	qg_config_service svc{};
	qg_config cfg{};
	qg_svc_table *table = nullptr;
	qg_relay *relay = nullptr;

	RelayRig(enum qg_config_retry retry, bool lb, uint32_t min_initial = 1200, uint32_t idle_ms = 30000,
		 const std::vector<uint32_t> &versions = {})
	{
		const char *addrs[] = { "10.0.0.1:4433", "10.0.0.2:4433", "10.0.0.3:4433", "10.0.0.4:4433" };
		for (int i = 0; i < 4; i++) {
			be[i].addr = Addr(addrs[i]);
			be[i].weight = 1;
			if (lb) {
				be[i].server_id_len = 2;
				be[i].server_id[0] = 0x0a;
				be[i].server_id[1] = (uint8_t)(i + 1);
			}
		}
		snprintf(svc.name, sizeof(svc.name), "q");
		svc.listen = Addr("127.0.0.1:443");
		svc.protocol = QG_CONFIG_PROTO_QUIC;
		svc.policy = QG_CONFIG_POLICY_MAGLEV;
		svc.idle_timeout_ms = idle_ms;
		svc.quic.min_initial_size = min_initial;
		for (uint32_t v : versions)
			svc.quic.versions[svc.quic.n_versions++] = v;
		svc.quic.new_conn_burst = 20;
		svc.quic.retry = retry;
		if (lb) {
			svc.quic.n_lb = 1;
			svc.quic.lb[0].config_id = 1;
			svc.quic.lb[0].server_id_len = 2;
			svc.quic.lb[0].nonce_len = 6;
			svc.quic.lb[0].has_key = 1;
			memcpy(svc.quic.lb[0].key, kLbKey, 16);
		}
		svc.n_backends = 4;
		svc.backends = be;
		cfg.n_services = 1;
		cfg.services = &svc;
		EXPECT_EQ(qg_svc_table_build(&cfg, 1, &table), 0);
		qg_relay_params p{};
		p.ops = &MockOps();
		p.io = reinterpret_cast<qg_io *>(&io);
		p.ctr = &ctr;
		p.table = table;
		p.flows = 1024;
		p.max_upstreams = 1024;
		p.burst = 8;
		p.seed = 42;
		EXPECT_EQ(qg_relay_create(&p, &relay), 0);
	}
	~RelayRig()
	{
		qg_relay_destroy(relay);
		qg_svc_table_free(table);
	}
	RelayRig(const RelayRig &) = delete;
	RelayRig &operator=(const RelayRig &) = delete;

	// One client datagram through the relay.
	void Send(const Bytes &dgram, const qg_addr &from, uint32_t now)
	{
		static uint8_t buf[2048];
		ASSERT_LE(dgram.size(), sizeof(buf));
		memcpy(buf, dgram.data(), dgram.size());
		qg_pkt p{};
		p.data = buf;
		p.len = (uint32_t)dgram.size();
		p.dir = QG_PKT_FROM_CLIENT;
		p.svc = 0;
		p.peer = from;
		qg_relay_burst(relay, &p, 1, now);
	}
	uint64_t Ctr(qg_ctr_id id) const
	{
		return ctr.v[id];
	}
};

// A client long header: v1 Initial (type 0) or 0-RTT (1), v2 Initial (1), padded to size.
Bytes ClientPacket(uint32_t version, int type_bits, const Bytes &dcid, const Bytes &scid, const Bytes &token,
		   size_t size = 1200)
{
	Bytes b;
	b.push_back((uint8_t)(0xc3 | type_bits << 4));
	for (int i = 3; i >= 0; i--)
		b.push_back((uint8_t)(version >> (8 * i)));
	b.push_back((uint8_t)dcid.size());
	b.insert(b.end(), dcid.begin(), dcid.end());
	b.push_back((uint8_t)scid.size());
	b.insert(b.end(), scid.begin(), scid.end());
	if (type_bits == (version == QG_QUIC_VERSION_2 ? 1 : 0)) { // Initial: token
		b.push_back(0x40 | (uint8_t)(token.size() >> 8));
		b.push_back((uint8_t)token.size());
		b.insert(b.end(), token.begin(), token.end());
	}
	size_t rest = size - b.size() - 2;
	b.push_back(0x40 | (uint8_t)(rest >> 8));
	b.push_back((uint8_t)rest);
	b.resize(size, 0);
	return b;
}

Bytes Initial(const Bytes &dcid, const Bytes &scid, const Bytes &token = Bytes(), size_t size = 1200)
{
	return ClientPacket(QG_QUIC_VERSION_1, 0, dcid, scid, token, size);
}

struct RetrySeen {
	Bytes scid, token;
};

// The Retry the relay answered with, checked like a client would.
RetrySeen TakeRetry(RelayRig &rig, const Bytes &odcid, const Bytes &client_scid, const qg_addr &to,
		    size_t trigger_len = 1200)
{
	RetrySeen r;
	EXPECT_EQ(rig.io.to_client.size(), 1u);
	if (rig.io.to_client.empty())
		return r;
	MockIo::Sent sent = rig.io.to_client.back();
	rig.io.to_client.clear();
	EXPECT_TRUE(qg_addr_equal(&sent.peer, &to));
	EXPECT_LT(sent.data.size() * 3, trigger_len) << "no amplification";
	EXPECT_EQ(qg_quic_retry_verify(sent.data.data(), sent.data.size(), odcid.data(), odcid.size()), 0);
	qg_quic_hdr h;
	EXPECT_EQ(qg_quic_parse(sent.data.data(), sent.data.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_RETRY);
	EXPECT_EQ(Bytes(h.dcid, h.dcid + h.dcid_len), client_scid);
	r.scid.assign(h.scid, h.scid + h.scid_len);
	r.token.assign(h.token, h.token + h.token_len);
	EXPECT_NE(r.scid, odcid);
	// What the backend will read.
	uint8_t o[20], sc[20];
	size_t ol, sl;
	EXPECT_EQ(qg_retry_token_read(r.token.data(), r.token.size(), o, &ol, sc, &sl), 0);
	EXPECT_EQ(Bytes(o, o + ol), odcid);
	EXPECT_EQ(Bytes(sc, sc + sl), r.scid);
	return r;
}

// The slot a relay with retry off picks for a first Initial with this DCID.
uint32_t SlotWithoutRetry(bool lb, const Bytes &odcid)
{
	RelayRig off(QG_CONFIG_RETRY_OFF, lb);
	off.Send(Initial(odcid, Hex("c1c1c1c1")), Addr("192.0.2.99:1000"), 1000);
	EXPECT_EQ(off.io.to_backend.size(), 1u);
	return off.io.to_backend.empty() ? ~0u : off.io.to_backend[0].slot;
}

TEST(RetryRelay, RetryThenTokenAdmitsToTheSameBackend)
{
	RelayRig rig(QG_CONFIG_RETRY_ON, false);
	qg_addr client = Addr("192.0.2.7:50000");
	uint32_t now = (uint32_t)qg_clock_ms();
	Bytes odcid = Hex("0123456789abcdef"), cscid = Hex("c5c5c5c5");

	rig.Send(Initial(odcid, cscid), client, now);
	EXPECT_TRUE(rig.io.to_backend.empty()) << "nothing reaches a backend before validation";
	RetrySeen r = TakeRetry(rig, odcid, cscid, client);
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_SENT), 1u);
	EXPECT_EQ(rig.Ctr(QG_CTR_FLOW_CREATED), 0u) << "a Retry keeps no state";
	ASSERT_EQ(r.scid.size(), 8u);
	EXPECT_EQ(r.scid[0], 0xe7) << "random SCID marked unroutable for QUIC-LB, length self-encoded";

	// The retransmitted first Initial gets another Retry (fresh token).
	rig.Send(Initial(odcid, cscid), client, now + 5);
	TakeRetry(rig, odcid, cscid, client);

	// The second Initial: DCID := Retry SCID, with the token; forwarded unchanged.
	Bytes second = Initial(r.scid, cscid, r.token);
	rig.Send(second, client, now + 20);
	ASSERT_EQ(rig.io.to_backend.size(), 1u);
	EXPECT_EQ(rig.io.to_backend[0].data, second);
	EXPECT_EQ(rig.io.to_backend[0].slot, SlotWithoutRetry(false, odcid))
		<< "routed by the ODCID hash, where the first Initial would have gone";
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_VALIDATED), 1u);

	// Retransmissions and the rest of the connection follow the flow.
	rig.Send(second, client, now + 30);
	ASSERT_EQ(rig.io.to_backend.size(), 2u);
	EXPECT_EQ(rig.io.to_backend[1].slot, rig.io.to_backend[0].slot);
	EXPECT_EQ(rig.Ctr(QG_CTR_FLOW_CREATED), 1u);
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_RETRY_TOKEN_INVALID), 0u);
}

TEST(RetryRelay, BadTokensAreDropped)
{
	RelayRig rig(QG_CONFIG_RETRY_ON, false);
	qg_addr client = Addr("192.0.2.7:50000");
	uint32_t now = (uint32_t)qg_clock_ms();
	Bytes odcid = Hex("0123456789abcdef"), cscid = Hex("c5c5c5c5");
	rig.Send(Initial(odcid, cscid), client, now);
	RetrySeen r = TakeRetry(rig, odcid, cscid, client);

	Bytes tampered = r.token;
	tampered[tampered.size() - 1] ^= 1;
	rig.Send(Initial(r.scid, cscid, tampered), client, now + 1);
	rig.Send(Initial(r.scid, cscid, r.token), Addr("192.0.2.7:50001"), now + 1); // other port
	rig.Send(Initial(Hex("e700000000000000"), cscid, r.token), client, now + 1); // other DCID
	rig.Send(Initial(r.scid, cscid, r.token), client, now + QG_RETRY_DEFAULT_LIFETIME_MS + 1); // expired
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_RETRY_TOKEN_INVALID), 4u);
	EXPECT_TRUE(rig.io.to_backend.empty());
	EXPECT_TRUE(rig.io.to_client.empty())
		<< "no second Retry for a token-bearing Initial (RFC 9000 8.1.2)";
	EXPECT_EQ(rig.io.released, 4u);

	// Still valid within its lifetime.
	rig.Send(Initial(r.scid, cscid, r.token), client, now + QG_RETRY_DEFAULT_LIFETIME_MS);
	EXPECT_EQ(rig.io.to_backend.size(), 1u);
}

TEST(RetryRelay, UnvalidatedPacketsOpenNothing)
{
	RelayRig rig(QG_CONFIG_RETRY_ON, false, 0);
	qg_addr client = Addr("192.0.2.8:40000");
	uint32_t now = (uint32_t)qg_clock_ms();
	// 0-RTT for no connection: dropped, counted.
	rig.Send(ClientPacket(QG_QUIC_VERSION_1, 1, Hex("0123456789abcdef"), Hex("c5"), Bytes(), 300), client,
		 now);
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_RETRY_UNVALIDATED), 1u);
	// A small Initial (min_initial_size: 0 lets it through the size check) gets no Retry: never amplify.
	rig.Send(Initial(Hex("0123456789abcdef"), Hex("c5"), Bytes(), 300), client, now);
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL), 1u);
	EXPECT_TRUE(rig.io.to_client.empty());
	EXPECT_TRUE(rig.io.to_backend.empty());
	EXPECT_EQ(rig.Ctr(QG_CTR_FLOW_CREATED), 0u);
	// A NEW_TOKEN token (first bit 1) is replaced by a Retry.
	Bytes new_token(30, 0x99);
	rig.Send(Initial(Hex("0123456789abcdef"), Hex("c5"), new_token), client, now);
	TakeRetry(rig, Hex("0123456789abcdef"), Hex("c5"), client);
}

TEST(RetryRelay, Version2)
{
	RelayRig rig(QG_CONFIG_RETRY_ON, false);
	qg_addr client = Addr("[2001:db8::7]:50000");
	uint32_t now = (uint32_t)qg_clock_ms();
	Bytes odcid = Hex("0123456789abcdef01"), cscid = Hex("c5c5");
	rig.Send(ClientPacket(QG_QUIC_VERSION_2, 1, odcid, cscid, Bytes()), client, now);
	ASSERT_EQ(rig.io.to_client.size(), 1u);
	EXPECT_EQ(rig.io.to_client[0].data[0], 0xcf) << "v2 Retry type bits 00";
	RetrySeen r = TakeRetry(rig, odcid, cscid, client);
	rig.Send(ClientPacket(QG_QUIC_VERSION_2, 1, r.scid, cscid, r.token), client, now + 1);
	EXPECT_EQ(rig.io.to_backend.size(), 1u);
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_VALIDATED), 1u);
}

TEST(RetryRelay, QuicLbRetryScidNamesTheBackend)
{
	RelayRig rig(QG_CONFIG_RETRY_ON, true);
	qg_quic_lb_config *c = nullptr;
	ASSERT_EQ(qg_quic_lb_config_create(1, 2, 6, kLbKey, &c), 0);
	uint32_t now = (uint32_t)qg_clock_ms();
	int checked = 0;
	std::map<uint32_t, int> slots;
	for (int i = 0; i < 16; i++) {
		qg_addr client = Addr(("192.0.2.9:" + std::to_string(30000 + i)).c_str());
		// First octet 0xe0: config id 7, so the first Initial is routed by its DCID hash.
		Bytes odcid = Hex("e0112233445566"), cscid = Hex("c5");
		odcid.push_back((uint8_t)i);
		rig.Send(Initial(odcid, cscid), client, now);
		RetrySeen r = TakeRetry(rig, odcid, cscid, client);
		ASSERT_EQ(r.scid.size(), 9u);
		EXPECT_EQ(r.scid[0] >> 5, 1) << "the service's first lb config";
		uint8_t sid[2];
		ASSERT_EQ(qg_quic_lb_decode(c, r.scid.data(), r.scid.size(), sid, nullptr), 0);

		rig.Send(Initial(r.scid, cscid, r.token), client, now + 1);
		ASSERT_EQ(rig.io.to_backend.size(), 1u);
		uint32_t slot = rig.io.to_backend[0].slot;
		rig.io.to_backend.clear();
		slots[slot]++;
		EXPECT_EQ(sid[0], 0x0a);
		EXPECT_EQ(sid[1], slot + 1) << "the SCID names the backend the Initial reached";
		EXPECT_EQ(slot, SlotWithoutRetry(true, odcid))
			<< "the one the first Initial would have reached";
		checked++;
	}
	EXPECT_GT(slots.size(), 1u) << "attempts spread over the backends";
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_LB_ROUTED), (uint64_t)checked);
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_VALIDATED), (uint64_t)checked);
	qg_quic_lb_config_destroy(c);
}

TEST(RetryRelay, UnderAttackActsAsOffForNow)
{
	RelayRig rig(QG_CONFIG_RETRY_UNDER_ATTACK, false);
	rig.Send(Initial(Hex("0123456789abcdef"), Hex("c5")), Addr("192.0.2.7:50000"), 1000);
	EXPECT_EQ(rig.io.to_backend.size(), 1u);
	EXPECT_TRUE(rig.io.to_client.empty());
}

// ---- replay window and key rotation, as qgate runs them (quic_route.c) ----

constexpr uint64_t kRotateMs = 60000; // RETRY_ROTATE_MS: every worker draws a new key each minute

TEST(RetryToken, KeyTwoRotationsOldIsRefusedWhateverTheTokenAge)
{
	Keys keys(1, kKeyA, 0, kGrace);
	qg_addr a = Addr("198.51.100.20:4433");
	Bytes odcid = Hex(kOdcid), scid = Hex("e7d0d1d2d3d4d5d6");
	const uint32_t forever = UINT32_MAX; // isolates the key check from the token lifetime
	uint8_t o[QG_RETRY_MAX_CID_LEN], sc[QG_RETRY_MAX_CID_LEN];
	size_t ol, sl;
	auto open = [&](const Bytes &t, uint64_t now, uint32_t lifetime) {
		return qg_retry_token_open(keys.k, &a, t.data(), t.size(), now, lifetime, o, &ol, sc, &sl);
	};

	// Sealed just before the first rotation: still opens for its whole lifetime afterwards.
	Bytes t1 = Seal(keys.k, a, odcid, scid, kRotateMs - 1);
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 2, kKeyB, kRotateMs), 0);
	EXPECT_EQ(open(t1, kRotateMs - 1 + kLifetime, kLifetime), 0) << "grace >= lifetime";
	// One rotation old: opens until the grace ends, however long the caller lets tokens live.
	EXPECT_EQ(open(t1, kRotateMs + kGrace, forever), 0);
	EXPECT_EQ(open(t1, kRotateMs + kGrace + 1, forever), -EKEYEXPIRED);
	// Two rotations old: the key is gone, its id unknown.
	Bytes t2 = Seal(keys.k, a, odcid, scid, 2 * kRotateMs - 5);
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 3, kKeyC, 2 * kRotateMs), 0);
	EXPECT_EQ(open(t1, 2 * kRotateMs, forever), -EACCES);
	EXPECT_EQ(open(t1, kRotateMs, forever), -EACCES) << "even at a time it was once valid";
	// The key in between is now the previous one: its tokens open within the grace only.
	EXPECT_EQ(open(t2, 2 * kRotateMs + 1000, kLifetime), 0);
	EXPECT_EQ(open(t2, 2 * kRotateMs + kGrace + 1, forever), -EKEYEXPIRED);
	ASSERT_EQ(qg_retry_keys_rotate(keys.k, 4, kKeyA, 3 * kRotateMs), 0);
	EXPECT_EQ(open(t2, 3 * kRotateMs, forever), -EACCES);
	// Ids wrap at 256: a key id seen again names the new key, whose tag the old token fails.
	Keys wrap(255, kKeyA, 0, kGrace);
	Bytes tw = Seal(wrap.k, a, odcid, scid, 10);
	ASSERT_EQ(qg_retry_keys_rotate(wrap.k, 0, kKeyB, kRotateMs), 0);
	ASSERT_EQ(qg_retry_keys_rotate(wrap.k, 255, kKeyC, 2 * kRotateMs), 0);
	EXPECT_EQ(qg_retry_token_open(wrap.k, &a, tw.data(), tw.size(), 2 * kRotateMs, forever, o, &ol, sc,
				      &sl),
		  -EACCES);
}

TEST(RetryToken, ReplayIsAcceptedOnlyWithinTheLifetimeAndFromItsAddress)
{
	Keys keys(9, kKeyA, 0, kGrace);
	qg_addr a = Addr("198.51.100.21:50000");
	Bytes t = Seal(keys.k, a, Hex(kOdcid), Hex("e7e0e1e2e3e4e5e6"), 1000);

	// Stateless: the same token opens every time within its lifetime (RFC 9000 8.1.4 allows it) ...
	for (uint64_t now = 1000; now <= 1000 + kLifetime; now += kLifetime / 4)
		EXPECT_EQ(Open(keys.k, a, t, now), 0) << now;
	// ... never from another address, port or family, not even once ...
	for (const char *other : { "198.51.100.21:50001", "198.51.100.22:50000",
				   "[::ffff:198.51.100.21]:50000", "[2001:db8::21]:50000" })
		for (uint64_t now : { 1000ull, 5000ull, 11000ull })
			EXPECT_EQ(Open(keys.k, Addr(other), t, now), -EACCES) << other << " at " << now;
	// ... and from nowhere once it is older than its lifetime.
	EXPECT_EQ(Open(keys.k, a, t, 1000 + kLifetime + 1), -EKEYEXPIRED);
	EXPECT_EQ(Open(keys.k, a, t, 1000 + 10 * kLifetime), -EKEYEXPIRED);
}

// The relay: a replayed token opens a flow again only from its address and within its lifetime.
TEST(RetryRelay, ReplayedTokenOpensFlowsOnlyWithinItsLifetimeFromItsAddress)
{
	const uint32_t idle = 1000; // flows (and their learned CIDs) go after 1 s idle
	RelayRig rig(QG_CONFIG_RETRY_ON, false, 1200, idle);
	qg_addr client = Addr("192.0.2.30:40000"), spoofed = Addr("192.0.2.31:40000");
	uint32_t now = (uint32_t)qg_clock_ms();
	Bytes odcid = Hex("1122334455667788"), cscid = Hex("c6c6c6c6");

	rig.Send(Initial(odcid, cscid), client, now);
	RetrySeen r = TakeRetry(rig, odcid, cscid, client);
	Bytes second = Initial(r.scid, cscid, r.token);
	rig.Send(second, client, now + 1);
	ASSERT_EQ(rig.io.to_backend.size(), 1u);
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_VALIDATED), 1u);

	// The flow and its CIDs expire; what arrives next must pass the Retry gate again.
	uint32_t t = now + 1 + idle + 1;
	qg_relay_expire(rig.relay, t, 1024);
	ASSERT_EQ(rig.Ctr(QG_CTR_FLOW_EXPIRED), 1u);
	rig.Send(second, spoofed, t);
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_RETRY_TOKEN_INVALID), 1u) << "another address: refused";
	rig.Send(second, client, t + 1);
	EXPECT_EQ(rig.Ctr(QG_CTR_QUIC_RETRY_VALIDATED), 2u) << "its own address, within the lifetime";
	ASSERT_EQ(rig.io.to_backend.size(), 2u);
	EXPECT_EQ(rig.io.to_backend[1].slot, rig.io.to_backend[0].slot) << "to the same backend";

	t = now + QG_RETRY_DEFAULT_LIFETIME_MS + 2;
	qg_relay_expire(rig.relay, t, 1024);
	ASSERT_EQ(rig.Ctr(QG_CTR_FLOW_EXPIRED), 2u);
	rig.Send(second, client, t);
	EXPECT_EQ(rig.Ctr(QG_CTR_DROP_QUIC_RETRY_TOKEN_INVALID), 2u) << "its own address, after the lifetime";
	EXPECT_EQ(rig.io.to_backend.size(), 2u);
	EXPECT_EQ(rig.Ctr(QG_CTR_FLOW_CREATED), 2u);
	EXPECT_TRUE(rig.io.to_client.empty()) << "a token-bearing Initial never gets a second Retry";
}

// ---- no amplification (RFC 9000 Sec 8): nothing qgate originates is larger than its trigger ----

// Every answer the relay sent for the last datagram: none larger than it, none for < 1200 bytes.
struct AnswerCheck {
	size_t answers = 0, vn = 0, retry = 0;
	void Check(RelayRig &rig, const Bytes &dgram, const std::string &what)
	{
		for (const auto &a : rig.io.to_client) {
			answers++;
			EXPECT_LE(a.data.size(), dgram.size()) << what;
			EXPECT_GE(dgram.size(), (size_t)QG_QUIC_MIN_INITIAL_SIZE)
				<< what << ": answered below 1200";
			qg_quic_hdr h;
			if (qg_quic_parse(a.data.data(), a.data.size(), 0, &h) == 0) {
				vn += h.type == QG_QUIC_TYPE_VERSION_NEGOTIATION;
				retry += h.type == QG_QUIC_TYPE_RETRY;
			}
		}
		rig.io.to_client.clear();
		rig.io.to_backend.clear();
	}
};

// A long header of any version with CIDs of any length, padded with zeros to size (at least the header).
Bytes LongHeader(uint8_t first, uint32_t version, size_t dcid_len, size_t scid_len, size_t size)
{
	Bytes b{ first };
	for (int i = 3; i >= 0; i--)
		b.push_back((uint8_t)(version >> (8 * i)));
	b.push_back((uint8_t)dcid_len);
	b.insert(b.end(), dcid_len, 0xd1);
	b.push_back((uint8_t)scid_len);
	b.insert(b.end(), scid_len, 0x5c);
	if (b.size() < size)
		b.resize(size, 0);
	return b;
}

TEST(NoAmplification, VersionNegotiationAndRetryNeverExceedTheirTrigger)
{
	// Versions listed (qgate answers VN for the others), Retry on, no Initial size floor: the
	// relay itself must hold the line, not the min_initial_size filter in front of it.
	RelayRig rig(QG_CONFIG_RETRY_ON, false, 0, 30000, { QG_QUIC_VERSION_1, QG_QUIC_VERSION_2 });
	uint32_t now = (uint32_t)qg_clock_ms();
	AnswerCheck c;
	unsigned port = 1000;

	// Version Negotiation: unknown versions, every CID length class, sizes around 1200. The largest
	// VN (two 255-byte CIDs) is 7 + 510 + 8 bytes.
	for (uint32_t version : { 0x0a0a0a0au, 0xff00001du, 0x00000003u })
		for (size_t dl : { 0, 1, 8, 20, 21, 255 })
			for (size_t sl : { 0, 20, 255 })
				for (size_t size : { (size_t)0, (size_t)600, (size_t)1199, (size_t)1200,
						     (size_t)1201, (size_t)1472 }) {
					Bytes d = LongHeader(0xc0, version, dl, sl, size);
					rig.Send(d,
						 Addr(("203.0.113.1:" + std::to_string(port++ % 60000 + 1))
							      .c_str()),
						 now);
					c.Check(rig, d,
						"VN v" + std::to_string(version) + " dcid " +
							std::to_string(dl) + " scid " + std::to_string(sl) +
							" size " + std::to_string(d.size()));
				}
	EXPECT_EQ(c.vn, 3u * 6 * 3 * 3) << "one VN for each datagram of at least 1200 bytes";

	// Retry: v1 and v2 Initials without a token, CIDs 0..20 (the Retry echoes the SCID and adds a
	// token with the DCID in it: 20/20 is the largest), sizes around 1200.
	size_t vn_before = c.vn;
	for (uint32_t version : { QG_QUIC_VERSION_1, QG_QUIC_VERSION_2 })
		for (size_t dl : { 0, 8, 20 })
			for (size_t sl : { 0, 20 })
				for (size_t size : { (size_t)60, (size_t)1199, (size_t)1200, (size_t)1350 }) {
					Bytes d =
						ClientPacket(version, version == QG_QUIC_VERSION_2 ? 1 : 0,
							     Bytes(dl, 0x42), Bytes(sl, 0x24), Bytes(), size);
					rig.Send(d,
						 Addr(("203.0.113.2:" + std::to_string(port++ % 60000 + 1))
							      .c_str()),
						 now);
					c.Check(rig, d,
						"Retry dcid " + std::to_string(dl) + " scid " +
							std::to_string(sl) + " size " + std::to_string(size));
				}
	EXPECT_EQ(c.retry, 2u * 3 * 2 * 2) << "one Retry for each Initial of at least 1200 bytes";
	EXPECT_EQ(c.vn, vn_before) << "v1/v2 are listed: no VN for them";

	// Anything at all: random datagrams of every size, long-header bit set half of the time, the
	// version field often a listed one.
	size_t before_random = c.answers;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	auto rnd = [&x] {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		return x;
	};
	for (int i = 0; i < 20000; i++) {
		size_t size = 1 + rnd() % 1500;
		Bytes d(size);
		for (auto &byte : d)
			byte = (uint8_t)rnd();
		if (i & 1)
			d[0] |= 0xc0;
		if (size >= 5 && (i & 2)) {
			uint32_t v = (i & 4) ? QG_QUIC_VERSION_1 : QG_QUIC_VERSION_2;
			d[1] = (uint8_t)(v >> 24), d[2] = (uint8_t)(v >> 16), d[3] = (uint8_t)(v >> 8),
			d[4] = (uint8_t)v;
		}
		rig.Send(d, Addr(("203.0.113.3:" + std::to_string(i % 60000 + 1)).c_str()), now);
		c.Check(rig, d,
			"random datagram " + std::to_string(i) + " of " + std::to_string(size) + " bytes");
	}
	EXPECT_GT(c.answers, before_random) << "random datagrams got no answer at all: nothing was tested";
}

} // namespace
