// SPDX-License-Identifier: BSD-3-Clause
// QUIC-LB connection IDs (draft-ietf-quic-load-balancers-21): every test
// vector of the draft (encode and decode), an independent nibble-level model
// of the four-pass algorithm for all length combinations, config id
// extraction, rejection of short or foreign CIDs, clones, and the keyring
// with two configurations active during a key rotation.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "qgate/quic_lb.h"
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

// Owns a config; fails the test when creation fails.
struct Config {
	qg_quic_lb_config *c = nullptr;
	Config(int id, size_t sid_len, size_t nonce_len, const Bytes &key)
	{
		int rc = qg_quic_lb_config_create((uint8_t)id, (uint8_t)sid_len, (uint8_t)nonce_len,
						  key.empty() ? nullptr : key.data(), &c);
		EXPECT_EQ(rc, 0);
	}
	~Config()
	{
		qg_quic_lb_config_destroy(c);
	}
	Config(const Config &) = delete;
	Config &operator=(const Config &) = delete;
};

Bytes Encode(qg_quic_lb_config *c, const Bytes &sid, const Bytes &nonce)
{
	Bytes cid(QG_QUIC_LB_MAX_CID_LEN);
	int n = qg_quic_lb_encode(c, sid.data(), nonce.data(), cid.data(), cid.size());
	EXPECT_GT(n, 0);
	cid.resize(n > 0 ? n : 0);
	return cid;
}

// One line of quic-lb-draft21-vectors.txt.
struct Vector {
	const char *alg;
	int cr;
	const char *key; // "" for plaintext
	const char *sid;
	const char *nonce;
	const char *cid;
};

const char kKey[] = "8f95f09245765f80256934e50c66207f";

const Vector kVectors[] = {
	{ "plain", 0, "", "c4605e", "4504cc4f", "07c4605e4504cc4f" },
	// Corrected from the draft's malformed "20a350d28b4203487d970b" (see the reference notes).
	{ "plain", 1, "", "350d28b420", "03487d970b", "2a350d28b42003487d970b" },
	{ "four-pass", 0, kKey, "ed793a", "ee080dbf", "0720b1d07b359d3c" },
	{ "four-pass", 1, kKey, "ed793a51d49b8f5fab65", "ee080dbf48", "2fcc381bc74cb4fbad2823a3d1f8fed2" },
	{ "single-pass", 2, kKey, "ed793a51d49b8f5f", "ee080dbf48c0d1e5",
	  "504dd2d05a7b0de9b2b9907afb5ecf8cc3" },
	// Row 4 as printed (first octet says config 0) and with the "3" of its cr column.
	{ "four-pass", 0, kKey, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d",
	  "125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc" },
	{ "four-pass", 3, kKey, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d",
	  "725779c9cc86beb3a3a4a3ca96fce4bfe0cdbc" },
	// The draft's worked encryption example.
	{ "four-pass", 0, "fdf726a9893ec05c0632d3956680baf0", "31441a", "9c69c275", "0767947d29be054a" },
};

class DraftVector : public ::testing::TestWithParam<Vector>
{
};

TEST_P(DraftVector, EncodesAndDecodes)
{
	const Vector &v = GetParam();
	Bytes sid = Hex(v.sid), nonce = Hex(v.nonce), want = Hex(v.cid);
	Config cfg(v.cr, sid.size(), nonce.size(), Hex(v.key));
	ASSERT_NE(cfg.c, nullptr);

	EXPECT_EQ(ToHex(Encode(cfg.c, sid, nonce)), v.cid);
	EXPECT_EQ(qg_quic_lb_config_cid_len(cfg.c), want.size());

	Bytes got_sid(sid.size()), got_nonce(nonce.size());
	ASSERT_EQ(qg_quic_lb_decode(cfg.c, want.data(), want.size(), got_sid.data(), got_nonce.data()), 0);
	EXPECT_EQ(ToHex(got_sid), v.sid);
	EXPECT_EQ(ToHex(got_nonce), v.nonce);

	Bytes fast_sid(sid.size());
	ASSERT_EQ(qg_quic_lb_decode_server_id(cfg.c, want.data(), want.size(), fast_sid.data()), 0);
	EXPECT_EQ(ToHex(fast_sid), v.sid);

	EXPECT_EQ(qg_quic_lb_config_id(want.data(), want.size()), v.cr);
	EXPECT_EQ(want[0] & 0x1f, (int)(sid.size() + nonce.size())) << "length self-encoded";
}

INSTANTIATE_TEST_SUITE_P(Draft21, DraftVector, ::testing::ValuesIn(kVectors));

TEST(QuicLb, QuicheVectorsWithTrailingServerUseOctets)
{
	// Unencrypted decoder tests of google/quiche.
	Config p0(0, 3, 4, Bytes());
	Bytes cid = Hex("07ed793a8049718a"), sid(3), nonce(4);
	ASSERT_EQ(qg_quic_lb_decode(p0.c, cid.data(), cid.size(), sid.data(), nonce.data()), 0);
	EXPECT_EQ(ToHex(sid), "ed793a");
	Config p1(1, 8, 5, Bytes());
	cid = Hex("2ded793a51d49b8f5fee15da27c4");
	sid.resize(8);
	ASSERT_EQ(qg_quic_lb_decode_server_id(p1.c, cid.data(), cid.size(), sid.data()), 0);
	EXPECT_EQ(ToHex(sid), "ed793a51d49b8f5f");

	// Single pass with two extra octets and no length self-encoding: both ignored.
	Config s(0, 8, 8, Hex(kKey));
	cid = Hex("004dd2d05a7b0de9b2b9907afb5ecf8cc3da41");
	Bytes n8(8);
	ASSERT_EQ(qg_quic_lb_decode(s.c, cid.data(), cid.size(), sid.data(), n8.data()), 0);
	EXPECT_EQ(ToHex(sid), "ed793a51d49b8f5f");
	EXPECT_EQ(ToHex(n8), "ee080dbf48c0d1e5");
}

// ---- Independent model of the four-pass algorithm ---------------------------
// The payload as 2L nibbles; each half is L nibbles. A left half is packed
// into octets as is (odd L: zero low nibble at the end), a right half with a
// zero nibble in front (odd L), so "clear the spare nibble" never comes up.

using Nibbles = std::vector<uint8_t>;

Bytes AesBlock(const Bytes &key, const Bytes &in)
{
	Bytes out(32);
	int n = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), nullptr, key.data(), nullptr);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	EVP_EncryptUpdate(ctx, out.data(), &n, in.data(), 16);
	EVP_CIPHER_CTX_free(ctx);
	out.resize(16);
	return out;
}

Nibbles ToNibbles(const Bytes &b)
{
	Nibbles n;
	for (uint8_t x : b) {
		n.push_back(x >> 4);
		n.push_back(x & 15);
	}
	return n;
}

Bytes FromNibbles(const Nibbles &n)
{
	Bytes b((n.size() + 1) / 2);
	for (size_t i = 0; i < n.size(); i++)
		b[i / 2] |= (uint8_t)(n[i] << (i % 2 ? 0 : 4));
	return b;
}

// dst ^= round(src): AES(expand(L, pass, src)), nibbles aligned as the halves are packed.
void ModelRound(const Bytes &key, size_t L, uint8_t pass, const Nibbles &src, bool src_is_left, Nibbles &dst)
{
	Nibbles packed = src;
	if (!src_is_left && L % 2)
		packed.insert(packed.begin(), 0);
	Bytes in = FromNibbles(packed);
	in.resize(16);
	in[14] = (uint8_t)L;
	in[15] = pass;
	Nibbles out = ToNibbles(AesBlock(key, in));
	size_t off = (src_is_left && L % 2) ? 1 : 0; // dst is a right half: its first packed nibble is spare
	for (size_t i = 0; i < dst.size(); i++)
		dst[i] ^= out[i + off];
}

Bytes ModelFourPass(const Bytes &key, const Bytes &plain)
{
	size_t L = plain.size();
	Nibbles all = ToNibbles(plain);
	Nibbles left(all.begin(), all.begin() + L), right(all.begin() + L, all.end());
	ModelRound(key, L, 1, left, true, right);
	ModelRound(key, L, 2, right, false, left);
	ModelRound(key, L, 3, left, true, right);
	ModelRound(key, L, 4, right, false, left);
	left.insert(left.end(), right.begin(), right.end());
	return FromNibbles(left);
}

TEST(QuicLb, ModelReproducesTheWorkedExample)
{
	Bytes ct = ModelFourPass(Hex("fdf726a9893ec05c0632d3956680baf0"), Hex("31441a9c69c275"));
	EXPECT_EQ(ToHex(ct), "67947d29be054a");
	ct = ModelFourPass(Hex(kKey), Hex("ed793a51d49b8f5fab65ee080dbf48"));
	EXPECT_EQ(ToHex(ct), "cc381bc74cb4fbad2823a3d1f8fed2");
}

// Every (server_id_len, nonce_len) pair, 10 random server IDs, nonces and keys each.
TEST(QuicLb, RoundTripsEveryLengthCombination)
{
	std::mt19937 rng(20250827);
	auto random_bytes = [&rng](size_t n) {
		Bytes b(n);
		for (auto &x : b)
			x = (uint8_t)rng();
		return b;
	};
	int combos = 0;
	for (size_t sl = QG_QUIC_LB_MIN_SID_LEN; sl <= QG_QUIC_LB_MAX_SID_LEN; sl++) {
		for (size_t nl = QG_QUIC_LB_MIN_NONCE_LEN; sl + nl <= QG_QUIC_LB_MAX_PAYLOAD_LEN; nl++) {
			combos++;
			for (int round = 0; round < 10; round++) {
				SCOPED_TRACE("sid_len " + std::to_string(sl) + " nonce_len " +
					     std::to_string(nl));
				Bytes key = random_bytes(16), sid = random_bytes(sl),
				      nonce = random_bytes(nl);
				int id = (int)(rng() % 7);
				for (bool keyed : { false, true }) {
					Config cfg(id, sl, nl, keyed ? key : Bytes());
					ASSERT_NE(cfg.c, nullptr);
					Bytes cid = Encode(cfg.c, sid, nonce);
					ASSERT_EQ(cid.size(), 1 + sl + nl);
					EXPECT_EQ(cid[0], (uint8_t)(id << 5 | (sl + nl)));
					Bytes plain = sid;
					plain.insert(plain.end(), nonce.begin(), nonce.end());
					Bytes payload(cid.begin() + 1, cid.end());
					if (!keyed)
						EXPECT_EQ(payload, plain);
					else if (sl + nl == 16)
						EXPECT_EQ(payload, AesBlock(key, plain));
					else
						EXPECT_EQ(payload, ModelFourPass(key, plain));

					Bytes s(sl), n(nl), fast(sl);
					ASSERT_EQ(qg_quic_lb_decode(cfg.c, cid.data(), cid.size(), s.data(),
								    n.data()),
						  0);
					EXPECT_EQ(s, sid);
					EXPECT_EQ(n, nonce);
					ASSERT_EQ(qg_quic_lb_decode_server_id(cfg.c, cid.data(), cid.size(),
									      fast.data()),
						  0);
					EXPECT_EQ(fast, sid);
				}
			}
		}
	}
	EXPECT_EQ(combos, 120);
}

TEST(QuicLb, CreateRejectsOutOfRangeParameters)
{
	qg_quic_lb_config *c = nullptr;
	const uint8_t key[16] = { 0 };
	EXPECT_EQ(qg_quic_lb_config_create(7, 3, 4, key, &c), -EINVAL) << "0b111 is the unroutable codepoint";
	EXPECT_EQ(qg_quic_lb_config_create(0, 0, 4, key, &c), -EINVAL);
	EXPECT_EQ(qg_quic_lb_config_create(0, 16, 4, key, &c), -EINVAL);
	EXPECT_EQ(qg_quic_lb_config_create(0, 3, 3, key, &c), -EINVAL);
	EXPECT_EQ(qg_quic_lb_config_create(0, 1, 19, nullptr, &c), -EINVAL);
	EXPECT_EQ(qg_quic_lb_config_create(0, 10, 10, nullptr, &c), -EINVAL) << "sum 20 > 19";
	EXPECT_EQ(qg_quic_lb_config_create(0, 3, 4, key, nullptr), -EINVAL);
	EXPECT_EQ(c, nullptr);
	ASSERT_EQ(qg_quic_lb_config_create(6, 15, 4, key, &c), 0);
	EXPECT_EQ(qg_quic_lb_config_get_id(c), 6);
	EXPECT_EQ(qg_quic_lb_config_server_id_len(c), 15);
	EXPECT_EQ(qg_quic_lb_config_nonce_len(c), 4);
	EXPECT_EQ(qg_quic_lb_config_cid_len(c), 20u);
	qg_quic_lb_config_destroy(c);
	qg_quic_lb_config_destroy(nullptr);
}

TEST(QuicLb, EncodeNeedsRoomForTheWholeCid)
{
	Config cfg(1, 3, 4, Hex(kKey));
	uint8_t sid[3] = { 1, 2, 3 }, nonce[4] = { 4, 5, 6, 7 }, cid[8];
	EXPECT_EQ(qg_quic_lb_encode(cfg.c, sid, nonce, cid, 7), -ENOSPC);
	EXPECT_EQ(qg_quic_lb_encode(cfg.c, sid, nonce, cid, 8), 8);
}

TEST(QuicLb, ConfigIdIsTheTopThreeBits)
{
	for (int id = 0; id < 8; id++) {
		for (int low = 0; low < 32; low += 7) {
			uint8_t b = (uint8_t)(id << 5 | low);
			EXPECT_EQ(qg_quic_lb_config_id(&b, 1), id);
		}
	}
	uint8_t unroutable = 0xe5;
	EXPECT_EQ(qg_quic_lb_config_id(&unroutable, 1), QG_QUIC_LB_UNROUTABLE);
	EXPECT_EQ(qg_quic_lb_config_id(&unroutable, 0), -EINVAL);
}

TEST(QuicLb, DecodeRejectsShortAndForeignCids)
{
	for (const char *key : { "", kKey }) {
		for (size_t nl : { 4, 13, 5 }) { // plaintext/four-pass odd, single pass (3 + 13), even
			SCOPED_TRACE(std::string(*key ? "keyed" : "plain") + " nonce_len " +
				     std::to_string(nl));
			Config cfg(2, 3, nl, Hex(key));
			Bytes sid = { 9, 8, 7 }, nonce(nl, 0x5a), s(3), n(nl);
			Bytes cid = Encode(cfg.c, sid, nonce);
			for (size_t len = 0; len < cid.size(); len++) {
				EXPECT_EQ(qg_quic_lb_decode(cfg.c, cid.data(), len, s.data(), n.data()),
					  -EINVAL)
					<< len;
				EXPECT_EQ(qg_quic_lb_decode_server_id(cfg.c, cid.data(), len, s.data()),
					  -EINVAL);
			}
			Bytes foreign = cid;
			foreign[0] = (uint8_t)(3 << 5 | (foreign[0] & 0x1f));
			EXPECT_EQ(
				qg_quic_lb_decode(cfg.c, foreign.data(), foreign.size(), s.data(), n.data()),
				-EINVAL);
			foreign[0] |= 0xe0;
			EXPECT_EQ(
				qg_quic_lb_decode_server_id(cfg.c, foreign.data(), foreign.size(), s.data()),
				-EINVAL);
			ASSERT_EQ(qg_quic_lb_decode(cfg.c, cid.data(), cid.size(), s.data(), nullptr), 0);
			EXPECT_EQ(s, sid);
		}
	}
}

TEST(QuicLb, ClonesWorkInTheirOwnThreads)
{
	Config base(4, 5, 9, Hex(kKey));
	Bytes sid = Hex("0102030405"), nonce = Hex("a1a2a3a4a5a6a7a8a9");
	Bytes cid = Encode(base.c, sid, nonce);
	std::vector<std::thread> threads;
	std::vector<int> ok(4, 0);
	for (int t = 0; t < 4; t++) {
		threads.emplace_back([&, t] {
			qg_quic_lb_config *mine = nullptr;
			if (qg_quic_lb_config_clone(base.c, &mine))
				return;
			uint8_t s[5];
			int good = 1;
			for (int i = 0; i < 2000; i++)
				good &= qg_quic_lb_decode_server_id(mine, cid.data(), cid.size(), s) == 0 &&
					memcmp(s, sid.data(), 5) == 0;
			ok[t] = good;
			qg_quic_lb_config_destroy(mine);
		});
	}
	for (auto &th : threads)
		th.join();
	for (int t = 0; t < 4; t++)
		EXPECT_EQ(ok[t], 1) << "thread " << t;
	qg_quic_lb_config *copy = nullptr;
	ASSERT_EQ(qg_quic_lb_config_clone(base.c, &copy), 0);
	EXPECT_EQ(Encode(copy, sid, nonce), cid);
	qg_quic_lb_config_destroy(copy);
}

// Key rotation: servers move from config 1 (old key) to config 2 (new key,
// other lengths) while CIDs of both keep routing.
TEST(QuicLb, RingRoutesTwoActiveConfigs)
{
	Config old_cfg(1, 3, 4, Hex(kKey));
	Config new_cfg(2, 4, 12, Hex("fdf726a9893ec05c0632d3956680baf0"));
	qg_quic_lb_ring ring;
	qg_quic_lb_ring_init(&ring);
	EXPECT_EQ(qg_quic_lb_ring_set(&ring, old_cfg.c), nullptr);
	EXPECT_EQ(qg_quic_lb_ring_set(&ring, new_cfg.c), nullptr);

	Bytes old_cid = Encode(old_cfg.c, Hex("ed793a"), Hex("ee080dbf"));
	Bytes new_cid = Encode(new_cfg.c, Hex("c0ffee01"), Hex("000102030405060708090a0b"));
	uint8_t sid[QG_QUIC_LB_MAX_SID_LEN];
	size_t sid_len = 0;
	ASSERT_EQ(qg_quic_lb_ring_decode(&ring, old_cid.data(), old_cid.size(), sid, &sid_len), 0);
	EXPECT_EQ(ToHex(sid, sid_len), "ed793a");
	ASSERT_EQ(qg_quic_lb_ring_decode(&ring, new_cid.data(), new_cid.size(), sid, &sid_len), 0);
	EXPECT_EQ(ToHex(sid, sid_len), "c0ffee01");

	Bytes unroutable = old_cid;
	unroutable[0] |= 0xe0;
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, unroutable.data(), unroutable.size(), sid, &sid_len),
		  -ENOENT);
	Bytes inactive = old_cid;
	inactive[0] = (uint8_t)(5 << 5 | (inactive[0] & 0x1f));
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, inactive.data(), inactive.size(), sid, &sid_len), -ENOENT);
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, new_cid.data(), 10, sid, &sid_len), -EINVAL) << "too short";
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, new_cid.data(), 0, sid, &sid_len), -EINVAL);

	// Retire the old key: its CIDs stop routing, the new ones keep going.
	EXPECT_EQ(qg_quic_lb_ring_remove(&ring, 1), old_cfg.c);
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, old_cid.data(), old_cid.size(), sid, &sid_len), -ENOENT);
	EXPECT_EQ(qg_quic_lb_ring_decode(&ring, new_cid.data(), new_cid.size(), sid, &sid_len), 0);
	EXPECT_EQ(qg_quic_lb_ring_remove(&ring, 1), nullptr);
	EXPECT_EQ(qg_quic_lb_ring_remove(&ring, 7), nullptr);
	EXPECT_EQ(qg_quic_lb_ring_set(&ring, new_cfg.c), new_cfg.c) << "set returns what it replaces";
}

} // namespace
