// SPDX-License-Identifier: BSD-3-Clause
// QUIC header parsing (RFC 8999 invariants, RFC 9000 v1, RFC 9369 v2) on the
// RFC 9001 Appendix A packets and built ones, every truncation of them, the
// coalesced-Initial walk and the Version Negotiation builders.
#include <gtest/gtest.h>

#include "rfc9001_vectors.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "qgate/quic.h"
}

namespace
{

using Bytes = std::vector<uint8_t>;

Bytes Hex(const std::string &h)
{
	Bytes b;
	for (size_t i = 0; i + 1 < h.size(); i += 2)
		b.push_back((uint8_t)std::stoul(h.substr(i, 2), nullptr, 16));
	return b;
}

Bytes Cat(Bytes a, const Bytes &b)
{
	a.insert(a.end(), b.begin(), b.end());
	return a;
}

// RFC 9001 Appendix A.2: the client Initial, protected, the whole 1200-byte UDP payload.
const Bytes kClientInitial = Hex(kRfc9001ClientInitialHex);

// RFC 9001 Appendix A.3: the server Initial (ACK + CRYPTO), protected.
const Bytes kServerInitial =
	Hex("cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb3"
	    "8cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
	    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee");

// RFC 9001 Appendix A.4: Retry answering the client Initial.
const Bytes kRetry = Hex("ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba");

const Bytes kClientDcid = Hex("8394c8f03e515708");
const Bytes kServerScid = Hex("f067a5502a4262b5");

Bytes Span(const uint8_t *p, size_t n)
{
	return Bytes(p, p + n);
}

// A long header of any version: byte0 | version | DCID | SCID | rest.
Bytes Long(uint8_t b0, uint32_t v, const Bytes &dcid, const Bytes &scid, const Bytes &rest = {})
{
	Bytes b = { b0, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	b.push_back((uint8_t)dcid.size());
	b = Cat(b, dcid);
	b.push_back((uint8_t)scid.size());
	b = Cat(b, scid);
	return Cat(b, rest);
}

// A v1 Handshake (type 2) with a 2-byte Length covering a 1-byte PN and payload_len bytes.
Bytes Handshake(size_t payload_len)
{
	size_t l = 1 + payload_len;
	Bytes rest = { (uint8_t)(0x40 | (l >> 8)), (uint8_t)l };
	rest.resize(rest.size() + l, 0x5a);
	return Long(0xe0, QG_QUIC_VERSION_1, kServerScid, Hex("0102030405060708"), rest);
}

// Every pointer the parser returned lies inside [pkt, pkt + len) (end allowed for empty fields).
void ExpectInside(const uint8_t *pkt, size_t len, const qg_quic_hdr &h)
{
	auto inside = [&](const uint8_t *p, size_t n) {
		if (!p)
			return n == 0;
		return p >= pkt && p <= pkt + len && n <= (size_t)(pkt + len - p);
	};
	EXPECT_TRUE(inside(h.dcid, h.dcid_len));
	EXPECT_TRUE(inside(h.scid, h.scid_len));
	EXPECT_TRUE(inside(h.token, h.token_len));
	EXPECT_TRUE(inside(h.versions, h.versions_len));
	EXPECT_LE(h.pkt_len, len);
	EXPECT_GT(h.pkt_len, 0u);
	if (h.pn_offset) {
		EXPECT_LT(h.pn_offset, len);
		EXPECT_EQ(h.pn_offset + h.length, h.pkt_len);
	}
	if (h.form == QG_QUIC_FORM_SHORT) {
		EXPECT_EQ(h.scid, nullptr);
	}
}

TEST(QuicParse, ClientInitialV1FromRfc9001)
{
	ASSERT_EQ(kClientInitial.size(), 1200u);
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(kClientInitial.data(), kClientInitial.size(), 8, &h), 0);
	EXPECT_EQ(h.form, QG_QUIC_FORM_LONG);
	EXPECT_EQ(h.version, QG_QUIC_VERSION_1);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_INITIAL);
	EXPECT_EQ(h.first_byte, 0xc0); // c3 unprotected: only the low 4 bits are masked
	EXPECT_EQ(h.fixed_bit, 1);
	EXPECT_EQ(Span(h.dcid, h.dcid_len), kClientDcid);
	EXPECT_EQ(h.scid_len, 0);
	EXPECT_EQ(h.scid, kClientInitial.data() + 15);
	EXPECT_EQ(h.token_len, 0u);
	EXPECT_EQ(h.token, kClientInitial.data() + 16);
	EXPECT_EQ(h.length, 0x049eu); // 0x449e: 2-byte varint, 1182 = 4-byte PN + 1162 payload + 16 tag
	EXPECT_EQ(h.pn_offset, 18u);
	EXPECT_EQ(h.pkt_len, 1200u);
	EXPECT_EQ(h.versions, nullptr);
	ExpectInside(kClientInitial.data(), kClientInitial.size(), h);
}

TEST(QuicParse, ServerInitialV1FromRfc9001)
{
	qg_quic_hdr h;
	ASSERT_EQ(kServerInitial.size(), 135u);
	ASSERT_EQ(qg_quic_parse(kServerInitial.data(), kServerInitial.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_INITIAL);
	EXPECT_EQ(h.first_byte, 0xcf);
	EXPECT_EQ(h.dcid_len, 0);
	EXPECT_EQ(Span(h.scid, h.scid_len), kServerScid);
	EXPECT_EQ(h.token_len, 0u);
	EXPECT_EQ(h.length, 0x75u);
	EXPECT_EQ(h.pn_offset, 18u);
	EXPECT_EQ(h.pkt_len, 135u);
}

TEST(QuicParse, RetryV1FromRfc9001)
{
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(kRetry.data(), kRetry.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_RETRY);
	EXPECT_EQ(h.version, QG_QUIC_VERSION_1);
	EXPECT_EQ(h.dcid_len, 0);
	EXPECT_EQ(Span(h.scid, h.scid_len), kServerScid);
	EXPECT_EQ(std::string((const char *)h.token, h.token_len), "token");
	EXPECT_EQ(h.token + h.token_len + QG_QUIC_RETRY_TAG_LEN, kRetry.data() + kRetry.size());
	EXPECT_EQ(h.pkt_len, kRetry.size());
	EXPECT_EQ(h.pn_offset, 0u);
	EXPECT_EQ(h.length, 0u);

	// Shorter than the integrity tag: malformed.
	Bytes tiny = Long(0xf0, QG_QUIC_VERSION_1, {}, kServerScid, Bytes(15, 0));
	EXPECT_EQ(qg_quic_parse(tiny.data(), tiny.size(), 0, &h), QG_QUIC_BAD_RETRY_TRUNCATED);
	tiny.push_back(0);
	ASSERT_EQ(qg_quic_parse(tiny.data(), tiny.size(), 0, &h), 0);
	EXPECT_EQ(h.token_len, 0u);
}

TEST(QuicParse, TypeBitsDifferBetweenV1AndV2)
{
	const qg_quic_type v1[4] = { QG_QUIC_TYPE_INITIAL, QG_QUIC_TYPE_ZERO_RTT, QG_QUIC_TYPE_HANDSHAKE,
				     QG_QUIC_TYPE_RETRY };
	const qg_quic_type v2[4] = { QG_QUIC_TYPE_RETRY, QG_QUIC_TYPE_INITIAL, QG_QUIC_TYPE_ZERO_RTT,
				     QG_QUIC_TYPE_HANDSHAKE };
	// Initial: token 11, Length 1, PN. 0-RTT/Handshake: Length 1, PN 11. Retry: a tag.
	Bytes rest = { 0x01, 0x11, 0x01, 0x00 };
	rest.resize(rest.size() + 16, 0);
	for (unsigned t = 0; t < 4; t++) {
		for (uint8_t low = 0; low < 16; low += 5) { // protected low bits do not matter
			uint8_t b0 = (uint8_t)(0xc0 | t << 4 | low);
			qg_quic_hdr h;
			Bytes p1 = Long(b0, QG_QUIC_VERSION_1, kClientDcid, {}, rest);
			Bytes p2 = Long(b0, QG_QUIC_VERSION_2, kClientDcid, {}, rest);
			ASSERT_EQ(qg_quic_parse(p1.data(), p1.size(), 0, &h), 0) << t;
			EXPECT_EQ(h.type, v1[t]) << "v1 type bits " << t;
			ASSERT_EQ(qg_quic_parse(p2.data(), p2.size(), 0, &h), 0) << t;
			EXPECT_EQ(h.type, v2[t]) << "v2 type bits " << t;
		}
	}
}

TEST(QuicParse, V2InitialBuiltFromTheV1One)
{
	// RFC 9369 Sec 3.2: Initial is type 0b01 in v2; same layout after the SCID.
	Bytes p = kClientInitial;
	p[0] = 0xd0;
	p[1] = 0x6b, p[2] = 0x33, p[3] = 0x43, p[4] = 0xcf;
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.version, QG_QUIC_VERSION_2);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_INITIAL);
	EXPECT_EQ(Span(h.dcid, h.dcid_len), kClientDcid);
	EXPECT_EQ(h.length, 1182u);
	EXPECT_EQ(h.pkt_len, 1200u);
	EXPECT_EQ(qg_quic_datagram_has_initial(p.data(), p.size(), 8), 1);
	// The v1 Initial's type bits mean Retry in v2: no token/Length parsed then.
	p[0] = 0xc0;
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_RETRY);
	EXPECT_EQ(qg_quic_datagram_has_initial(p.data(), p.size(), 8), 0);
}

TEST(QuicParse, FixedBitIsReportedNotRequired)
{
	// RFC 8999 Sec 7 / RFC 9287: a cleared fixed bit is not a reason to reject.
	Bytes p = kClientInitial;
	p[0] &= (uint8_t)~0x40;
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.fixed_bit, 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_INITIAL);
	Bytes s = { 0x00, 1, 2, 3, 4 };
	ASSERT_EQ(qg_quic_parse(s.data(), s.size(), 4, &h), 0);
	EXPECT_EQ(h.fixed_bit, 0);
	EXPECT_EQ(h.form, QG_QUIC_FORM_SHORT);
}

TEST(QuicParse, VersionNegotiation)
{
	Bytes p = Long(0x80 | 0x2a, QG_QUIC_VERSION_NEGOTIATION, {}, kClientDcid,
		       Hex("000000016b3343cf1a2a3a4a"));
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_VERSION_NEGOTIATION);
	EXPECT_EQ(h.version, 0u);
	EXPECT_EQ(h.dcid_len, 0);
	EXPECT_EQ(Span(h.scid, h.scid_len), kClientDcid);
	EXPECT_EQ(Span(h.versions, h.versions_len), Hex("000000016b3343cf1a2a3a4a"));
	EXPECT_EQ(h.fixed_bit, 0); // unused in VN (RFC 8999 Sec 6)
	EXPECT_EQ(h.token, nullptr);

	// VN is version-independent: 255-byte CIDs are fine.
	Bytes big(255, 0xab);
	p = Long(0xc0, 0, big, big, Hex("00000001"));
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.dcid_len, 255);
	EXPECT_EQ(h.scid_len, 255);
	EXPECT_EQ(h.versions_len, 4u);
}

TEST(QuicParse, UnknownVersionsAllowLongCids)
{
	Bytes big(255, 0x11), big2(255, 0x22);
	for (uint32_t v : { 0x1a2a3a4au, 0xff00001du, 0x00000002u, 0xfaceb00cu }) {
		Bytes p = Long(0x80, v, big, big2, Bytes(40, 0xee));
		qg_quic_hdr h;
		ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0) << std::hex << v;
		EXPECT_EQ(h.type, QG_QUIC_TYPE_UNKNOWN_VERSION);
		EXPECT_EQ(h.version, v);
		EXPECT_EQ(Span(h.dcid, h.dcid_len), big);
		EXPECT_EQ(Span(h.scid, h.scid_len), big2);
		EXPECT_EQ(h.pkt_len, p.size());
		EXPECT_EQ(h.pn_offset, 0u);
		EXPECT_EQ(h.token, nullptr);
	}
	EXPECT_TRUE(qg_quic_version_is_reserved(0x1a2a3a4a));
	EXPECT_TRUE(qg_quic_version_is_reserved(0xfafafafa));
	EXPECT_FALSE(qg_quic_version_is_reserved(QG_QUIC_VERSION_1));
	EXPECT_FALSE(qg_quic_version_is_reserved(QG_QUIC_VERSION_2));
	EXPECT_FALSE(qg_quic_version_is_reserved(0x1a2a3a4b));
}

TEST(QuicParse, CidLength21OnlyForUnknownVersions)
{
	Bytes c21(21, 0x33), c20(20, 0x44);
	Bytes rest = Hex("0001ff"); // token len 0, Length 1, PN
	qg_quic_hdr h;
	for (uint32_t v : { QG_QUIC_VERSION_1, QG_QUIC_VERSION_2 }) {
		Bytes d = Long(0xc0, v, c21, {}, rest);
		Bytes s = Long(0xc0, v, c20, c21, rest);
		Bytes ok = Long(v == QG_QUIC_VERSION_1 ? 0xc0 : 0xd0, v, c20, c20, rest); // Initial
		EXPECT_EQ(qg_quic_parse(d.data(), d.size(), 0, &h), QG_QUIC_BAD_CID_LEN);
		EXPECT_EQ(qg_quic_parse(s.data(), s.size(), 0, &h), QG_QUIC_BAD_CID_LEN);
		EXPECT_EQ(qg_quic_parse(ok.data(), ok.size(), 0, &h), 0);
	}
	Bytes u = Long(0xc0, 0x1a2a3a4a, c21, c21, rest);
	ASSERT_EQ(qg_quic_parse(u.data(), u.size(), 0, &h), 0);
	EXPECT_EQ(h.dcid_len, 21);
	EXPECT_EQ(h.scid_len, 21);
}

TEST(QuicParse, MalformedFields)
{
	qg_quic_hdr h;
	EXPECT_EQ(qg_quic_parse(kClientInitial.data(), 0, 0, &h), QG_QUIC_BAD_EMPTY);
	// CID length octet beyond the datagram.
	Bytes p = Long(0xc0, QG_QUIC_VERSION_1, kClientDcid, {});
	p[5] = 9;
	p.resize(6 + 8);
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_CID_TRUNCATED);
	// Token length as an 8-byte varint far beyond the datagram.
	p = Long(0xc0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("ffffffffffffffff0001"));
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_TOKEN);
	// Token length varint cut short.
	p = Long(0xc0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("c0000000"));
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_VARINT);
	// No Length after the token.
	p = Long(0xc0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("02aabb"));
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_VARINT);
	// Token present and read exactly.
	p = Long(0xc0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("02aabb01ff"));
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(Span(h.token, h.token_len), Hex("aabb"));
	EXPECT_EQ(h.length, 1u);
	// Length 0 cannot hold a packet number; Length one past the end.
	p = Long(0xe0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("00"));
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_LENGTH);
	p = Long(0xe0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("03aabb"));
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), QG_QUIC_BAD_LENGTH);
	// Length as a non-minimal 8-byte varint is valid (RFC 9000 Sec 16).
	p = Long(0xe0, QG_QUIC_VERSION_1, kClientDcid, {}, Hex("c000000000000002aabb"));
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_HANDSHAKE);
	EXPECT_EQ(h.length, 2u);
	EXPECT_EQ(h.pkt_len, p.size());
	// The reasons have distinct names.
	std::set<std::string> names;
	for (int r = QG_QUIC_BAD_ARG; r <= QG_QUIC_BAD_EMPTY; r++)
		names.insert(qg_quic_bad_str(r));
	EXPECT_EQ(names.size(), 10u);
	EXPECT_EQ(names.count("?"), 0u);
	EXPECT_STREQ(qg_quic_bad_str(0), "?");
}

// Every prefix of a valid datagram, each in an exactly-sized heap buffer so
// ASan reports a read one byte past the end.
// first_len: bytes of the first packet when it has a Length field (it
// cannot parse when cut shorter), 0 otherwise.
void CheckEveryTruncation(const Bytes &full, size_t short_dcid_len, size_t first_len)
{
	for (size_t n = 0; n <= full.size(); n++) {
		Bytes cut(full.begin(), full.begin() + (long)n);
		cut.shrink_to_fit();
		qg_quic_hdr h;
		int rc = qg_quic_parse(cut.data(), n, short_dcid_len, &h);
		if (n == full.size()) {
			EXPECT_EQ(rc, 0);
		}
		if (rc < 0) {
			EXPECT_GE(rc, QG_QUIC_BAD_ARG) << n;
		} else {
			EXPECT_EQ(rc, 0);
			ExpectInside(cut.data(), n, h);
			if (n < first_len)
				ADD_FAILURE() << "a packet with a Length field parsed when cut to " << n;
		}
		(void)qg_quic_datagram_has_initial(cut.data(), n, short_dcid_len);
	}
}

TEST(QuicParse, EveryTruncationIsRejectedOrConsistent)
{
	Bytes big(255, 0x77);
	CheckEveryTruncation(kClientInitial, 8, kClientInitial.size());
	CheckEveryTruncation(kServerInitial, 8, kServerInitial.size());
	CheckEveryTruncation(Handshake(30), 8, Handshake(30).size());
	CheckEveryTruncation(kRetry, 8, 0);
	CheckEveryTruncation(Long(0xc0, 0, kClientDcid, kServerScid, Hex("000000016b3343cf")), 8, 0);
	CheckEveryTruncation(Long(0x80, 0x1a2a3a4a, big, big, Bytes(10, 1)), 8, 0);
	CheckEveryTruncation(Hex("4b8394c8f03e5157080102030405"), 8, 0);
	CheckEveryTruncation(Cat(kServerInitial, Handshake(40)), 0, kServerInitial.size());
}

TEST(QuicParse, ShortHeaders)
{
	Bytes p = Hex("41"
		      "0a0b0c0d0e0f10111213141516171819"
		      "1a1b1c1d"
		      "eeee");
	qg_quic_hdr h;
	for (size_t dl : { 0, 1, 8, 20, 22 }) {
		ASSERT_EQ(qg_quic_parse(p.data(), p.size(), dl, &h), 0) << dl;
		EXPECT_EQ(h.form, QG_QUIC_FORM_SHORT);
		EXPECT_EQ(h.type, QG_QUIC_TYPE_SHORT);
		EXPECT_EQ(h.dcid, p.data() + 1);
		EXPECT_EQ(h.dcid_len, dl);
		EXPECT_EQ(h.scid, nullptr);
		EXPECT_EQ(h.version, 0u);
		EXPECT_EQ(h.pkt_len, p.size());
		EXPECT_EQ(h.fixed_bit, 1);
	}
	// Exactly 1 + dcid_len bytes is enough, one fewer is not.
	EXPECT_EQ(qg_quic_parse(p.data(), 9, 8, &h), 0);
	EXPECT_EQ(qg_quic_parse(p.data(), 8, 8, &h), QG_QUIC_BAD_SHORT_TRUNCATED);
	EXPECT_EQ(qg_quic_parse(p.data(), 1, 0, &h), 0);
	EXPECT_EQ(qg_quic_parse(p.data(), p.size(), 256, &h), QG_QUIC_BAD_ARG);
	EXPECT_EQ(qg_quic_datagram_has_initial(p.data(), p.size(), 8), 0);

	// QUIC-LB self-encoded length: low 5 bits = bytes after the first octet.
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0x00), 1);
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0x07), 8);
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0xe7), 8); // config rotation bits ignored
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0x13), 20);
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0x14), QG_QUIC_BAD_CID_LEN);
	EXPECT_EQ(qg_quic_short_dcid_len_selfenc(0xff), QG_QUIC_BAD_CID_LEN);
	Bytes s = Hex("40"
		      "07a1a2a3a4a5a6a7"
		      "99");
	int dl = qg_quic_short_dcid_len_selfenc(s[1]);
	ASSERT_EQ(dl, 8);
	ASSERT_EQ(qg_quic_parse(s.data(), s.size(), (size_t)dl, &h), 0);
	EXPECT_EQ(Span(h.dcid, h.dcid_len), Hex("07a1a2a3a4a5a6a7"));
}

TEST(QuicCoalesced, InitialAndHandshake)
{
	Bytes hs = Handshake(50);
	Bytes d = Cat(kServerInitial, hs);
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 1);
	// Initial second, after a Handshake: still found by walking Length.
	d = Cat(hs, kServerInitial);
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(d.data(), d.size(), 8, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_HANDSHAKE);
	EXPECT_EQ(h.pkt_len, hs.size());
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 1);
	// Handshake + 1-RTT (short header last): no Initial.
	d = Cat(Cat(hs, hs), Hex("418394c8f03e515708aabbccdd"));
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 0);
	// Trailing zero padding after the last packet.
	d = Cat(hs, Bytes(100, 0));
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 0);
	// Garbage after a Handshake is not an Initial; a damaged Initial is.
	d = Cat(hs, Hex("c0000000"));
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 0);
	d = Cat(hs, Hex("c00000000115"));
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 1);
	Bytes cut(kClientInitial.begin(), kClientInitial.begin() + 300);
	EXPECT_EQ(qg_quic_datagram_has_initial(cut.data(), cut.size(), 8), 1);
	// Nothing coalesces after a Retry or an unknown version.
	d = Cat(kRetry, kServerInitial);
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 0);
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), 0, 8), 0);
}

TEST(QuicCoalesced, WalkIsBounded)
{
	Bytes tiny = Handshake(0);
	Bytes d;
	for (int i = 0; i < QG_QUIC_MAX_COALESCED - 1; i++)
		d = Cat(d, tiny);
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 0);
	// One more packet than the walk looks at: treated as Initial-bearing.
	d = Cat(Cat(d, tiny), tiny);
	EXPECT_EQ(qg_quic_datagram_has_initial(d.data(), d.size(), 8), 1);
}

TEST(QuicVn, AnswersAnUnknownVersionWithSwappedCids)
{
	Bytes dcid = Hex("0102030405060708090a"), scid = Hex("a1a2a3");
	Bytes p = Long(0xc0, 0x1a2a3a4a, dcid, scid, Bytes(1200, 0));
	qg_quic_hdr in, h;
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &in), 0);
	const uint32_t versions[] = { QG_QUIC_VERSION_1, QG_QUIC_VERSION_2 };
	uint8_t out[256];
	size_t n = qg_quic_build_vn(out, sizeof(out), &in, versions, 2, 0x15);
	ASSERT_EQ(n, QG_QUIC_VN_HDR_LEN(10, 3) + 8);
	EXPECT_EQ(out[0], 0xc0 | 0x15);
	ASSERT_EQ(qg_quic_parse(out, n, 0, &h), 0);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_VERSION_NEGOTIATION);
	EXPECT_EQ(Span(h.dcid, h.dcid_len), scid);
	EXPECT_EQ(Span(h.scid, h.scid_len), dcid);
	EXPECT_EQ(Span(h.versions, h.versions_len), Hex("000000016b3343cf"));
	// The random bits never clear the form or fixed bit.
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, 1, 0xff), n - 4);
	EXPECT_EQ(out[0], 0xff);
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, 1, 0x00), n - 4);
	EXPECT_EQ(out[0], 0xc0);
	// Exact capacity works, one byte less writes nothing.
	EXPECT_EQ(qg_quic_build_vn(out, n, &in, versions, 2, 0), n);
	EXPECT_EQ(qg_quic_build_vn(out, n - 1, &in, versions, 2, 0), 0u);
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, 0, 0), 0u);
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, SIZE_MAX / 2, 0), 0u);

	// Answering the RFC 9001 client Initial (empty SCID) and 255-byte CIDs.
	ASSERT_EQ(qg_quic_parse(kClientInitial.data(), kClientInitial.size(), 0, &in), 0);
	n = qg_quic_build_vn(out, sizeof(out), &in, versions, 1, 0);
	ASSERT_EQ(n, 7u + 8 + 4);
	EXPECT_EQ(Bytes(out, out + n), Hex("c00000000000088394c8f03e51570800000001"));
	Bytes big(255, 0x42), big2(255, 0x43);
	p = Long(0xc0, 0xff00001d, big, big2);
	ASSERT_EQ(qg_quic_parse(p.data(), p.size(), 0, &in), 0);
	std::vector<uint8_t> vn(QG_QUIC_VN_HDR_LEN(255, 255) + 4);
	ASSERT_EQ(qg_quic_build_vn(vn.data(), vn.size(), &in, versions, 1, 0), vn.size());
	ASSERT_EQ(qg_quic_parse(vn.data(), vn.size(), 0, &h), 0);
	EXPECT_EQ(Span(h.dcid, h.dcid_len), big2);
	EXPECT_EQ(Span(h.scid, h.scid_len), big);
}

TEST(QuicVn, NeverAnswersVnOrShortHeaders)
{
	const uint32_t versions[] = { QG_QUIC_VERSION_1 };
	uint8_t out[512];
	qg_quic_hdr in;
	Bytes vn = Long(0xc0, 0, kClientDcid, kServerScid, Hex("00000001"));
	ASSERT_EQ(qg_quic_parse(vn.data(), vn.size(), 0, &in), 0);
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, 1, 0), 0u);
	Bytes s = Hex("418394c8f03e515708aabbccdd");
	ASSERT_EQ(qg_quic_parse(s.data(), s.size(), 8, &in), 0);
	EXPECT_EQ(qg_quic_build_vn(out, sizeof(out), &in, versions, 1, 0), 0u);
}

TEST(QuicVn, ProbeRoundTrip)
{
	Bytes dcid = Hex("d1d2d3d4d5d6d7d8"), scid = Hex("5152535455565758595a");
	std::vector<uint8_t> probe(QG_QUIC_MIN_INITIAL_SIZE);
	size_t n = qg_quic_build_vn_probe(probe.data(), probe.size(), 0x1a2a3a4a, dcid.data(), dcid.size(),
					  scid.data(), scid.size());
	ASSERT_EQ(n, 1200u);
	EXPECT_EQ(probe[0], 0xc0);
	qg_quic_hdr in;
	ASSERT_EQ(qg_quic_parse(probe.data(), n, 0, &in), 0);
	EXPECT_EQ(in.type, QG_QUIC_TYPE_UNKNOWN_VERSION);
	EXPECT_EQ(in.version, 0x1a2a3a4au);
	EXPECT_EQ(Span(in.dcid, in.dcid_len), dcid);
	EXPECT_EQ(Span(in.scid, in.scid_len), scid);
	for (size_t i = QG_QUIC_VN_HDR_LEN(dcid.size(), scid.size()); i < n; i++)
		ASSERT_EQ(probe[i], 0) << "padding byte " << i;
	// Not reserved, too small a buffer, too long a CID: nothing.
	EXPECT_EQ(qg_quic_build_vn_probe(probe.data(), probe.size(), QG_QUIC_VERSION_1, dcid.data(), 8,
					 scid.data(), 8),
		  0u);
	EXPECT_EQ(qg_quic_build_vn_probe(probe.data(), 1199, 0x1a2a3a4a, dcid.data(), 8, scid.data(), 8), 0u);
	Bytes big(256, 1);
	EXPECT_EQ(qg_quic_build_vn_probe(probe.data(), probe.size(), 0x1a2a3a4a, big.data(), 256, nullptr, 0),
		  0u);
	std::vector<uint8_t> other_probe(1300);
	EXPECT_EQ(qg_quic_build_vn_probe(other_probe.data(), other_probe.size(), 0xdadadada, nullptr, 0,
					 nullptr, 0),
		  1200u);

	// A server's answer, built with the VN builder, matches; anything else does not.
	const uint32_t versions[] = { QG_QUIC_VERSION_1 };
	uint8_t vn[128];
	size_t vl = qg_quic_build_vn(vn, sizeof(vn), &in, versions, 1, 0x33);
	ASSERT_GT(vl, 0u);
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl, dcid.data(), dcid.size(), scid.data(), scid.size()), 1);
	// CIDs not swapped, or another probe's.
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl, scid.data(), scid.size(), dcid.data(), dcid.size()), 0);
	Bytes other = dcid;
	other[7] ^= 1;
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl, other.data(), other.size(), scid.data(), scid.size()), 0);
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl, dcid.data(), 7, scid.data(), scid.size()), 0);
	// Empty or ragged version list, truncated, or not a VN at all.
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl - 4, dcid.data(), dcid.size(), scid.data(), scid.size()),
		  0);
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl - 1, dcid.data(), dcid.size(), scid.data(), scid.size()),
		  0);
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, 10, dcid.data(), dcid.size(), scid.data(), scid.size()), 0);
	EXPECT_EQ(
		qg_quic_vn_matches_probe(probe.data(), n, scid.data(), scid.size(), dcid.data(), dcid.size()),
		0);
	// Empty CIDs on both sides.
	n = qg_quic_build_vn_probe(probe.data(), probe.size(), 0x0a0a0a0a, nullptr, 0, nullptr, 0);
	ASSERT_EQ(qg_quic_parse(probe.data(), n, 0, &in), 0);
	vl = qg_quic_build_vn(vn, sizeof(vn), &in, versions, 1, 0);
	EXPECT_EQ(vl, 11u);
	EXPECT_EQ(qg_quic_vn_matches_probe(vn, vl, nullptr, 0, nullptr, 0), 1);
}

} // namespace
