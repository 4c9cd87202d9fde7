// SPDX-License-Identifier: BSD-3-Clause
// The DPDK backend's packet layer: parsing (valid, truncated and malformed
// frames), checksums (full, incremental, NAT), ARP and ND messages, the
// neighbour table (including lock-free readers), and an outside opinion from
// tshark on the frames we emit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "qgate/net.h"
}

namespace
{

using Bytes = std::vector<uint8_t>;

const uint8_t kMacA[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
const uint8_t kMacB[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

qg_addr V4(const char *ip, uint16_t port)
{
	qg_addr a{};
	a.family = AF_INET;
	inet_pton(AF_INET, ip, a.ip);
	a.port = htons(port);
	return a;
}

qg_addr V6(const char *ip, uint16_t port)
{
	qg_addr a{};
	a.family = AF_INET6;
	inet_pton(AF_INET6, ip, a.ip);
	a.port = htons(port);
	return a;
}

void Put16(uint8_t *p, uint16_t v)
{
	p[0] = uint8_t(v >> 8);
	p[1] = uint8_t(v);
}

uint16_t Get16(const uint8_t *p)
{
	return uint16_t(p[0] << 8 | p[1]);
}

// Independent reference: RFC 1071 over big-endian words, host-order result.
uint16_t RefSum(const uint8_t *p, size_t n, uint32_t acc = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += Get16(p + i);
	if (n & 1)
		acc += uint32_t(p[n - 1]) << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return uint16_t(acc);
}

struct FrameSpec {
	int family = AF_INET;
	qg_addr src = V4("192.0.2.1", 40000);
	qg_addr dst = V4("198.51.100.7", 40001);
	uint16_t vlan = 0;    // 0: untagged
	unsigned ip_opts = 0; // IPv4 option bytes (multiple of 4, <= 40)
	uint8_t ttl = 64;
	bool udp_csum = true;
	bool pad = false; // pad to the 60-byte Ethernet minimum
	Bytes payload = Bytes(5, 'q');
};

// A UDP frame with correct checksums, computed by the reference, not the code under test.
Bytes Build(const FrameSpec &s)
{
	Bytes f(12);
	memcpy(&f[0], kMacA, 6), memcpy(&f[6], kMacB, 6);
	if (s.vlan) {
		f.push_back(0x81), f.push_back(0x00);
		f.push_back(uint8_t(s.vlan >> 8)), f.push_back(uint8_t(s.vlan));
	}
	bool v6 = s.family == AF_INET6;
	f.push_back(v6 ? 0x86 : 0x08), f.push_back(v6 ? 0xdd : 0x00);
	size_t l3 = f.size(), ulen = 8 + s.payload.size();
	size_t ihl = v6 ? 40 : 20 + s.ip_opts;
	f.resize(l3 + ihl + ulen);
	uint8_t *ip = &f[l3], *udp = ip + ihl;
	uint32_t pseudo;
	if (v6) {
		ip[0] = 0x60;
		Put16(ip + 4, uint16_t(ulen));
		ip[6] = 17, ip[7] = s.ttl;
		memcpy(ip + 8, s.src.ip, 16), memcpy(ip + 24, s.dst.ip, 16);
		pseudo = RefSum(ip + 8, 32);
	} else {
		ip[0] = uint8_t(0x40 | ihl / 4);
		Put16(ip + 2, uint16_t(ihl + ulen));
		Put16(ip + 4, 0x1234), Put16(ip + 6, 0x4000); // DF is fine, not a fragment
		ip[8] = s.ttl, ip[9] = 17;
		memcpy(ip + 12, s.src.ip, 4), memcpy(ip + 16, s.dst.ip, 4);
		for (unsigned i = 0; i < s.ip_opts; i++)
			ip[20 + i] = i == s.ip_opts - 1 ? 0 : 1; // NOPs then EOL
		Put16(ip + 10, uint16_t(~RefSum(ip, ihl)));
		pseudo = RefSum(ip + 12, 8);
	}
	memcpy(udp, &s.src.port, 2), memcpy(udp + 2, &s.dst.port, 2);
	Put16(udp + 4, uint16_t(ulen));
	std::copy(s.payload.begin(), s.payload.end(), udp + 8);
	if (s.udp_csum || v6) {
		uint16_t c = uint16_t(~RefSum(udp, ulen, pseudo + 17 + uint32_t(ulen)));
		Put16(udp + 6, c ? c : 0xffff);
	}
	if (s.pad && f.size() < 60)
		f.resize(60, 0);
	return f;
}

// Parse from an exact-size heap copy so ASan sees any read past len.
qg_net_kind ParseExact(const uint8_t *data, size_t n, qg_net_pkt *p)
{
	std::unique_ptr<uint8_t[]> buf(new uint8_t[n ? n : 1]);
	memcpy(buf.get(), data, n);
	return qg_net_parse(buf.get(), uint32_t(n), p);
}

qg_net_kind Parse(const Bytes &f, qg_net_pkt *p)
{
	return ParseExact(f.data(), f.size(), p);
}

// Expect MALFORMED with the given reason.
void ExpectBad(const Bytes &f, qg_net_bad why, const char *what)
{
	qg_net_pkt p;
	EXPECT_EQ(Parse(f, &p), QG_NET_MALFORMED) << what;
	EXPECT_EQ(p.bad, why) << what;
}

TEST(NetParse, Ipv4Udp)
{
	FrameSpec s;
	Bytes f = Build(s);
	qg_net_pkt p;
	ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
	EXPECT_EQ(p.ethertype, QG_NET_ETHERTYPE_IPV4);
	EXPECT_EQ(p.vlan, 0);
	EXPECT_EQ(p.l3_off, 14);
	EXPECT_EQ(p.l4_off, 34);
	EXPECT_EQ(p.payload_off, 42);
	EXPECT_EQ(p.payload_len, 5);
	EXPECT_EQ(p.l4_proto, 17);
	EXPECT_TRUE(qg_addr_equal(&p.src, &s.src)) << "ports in network order, clean tail";
	EXPECT_TRUE(qg_addr_equal(&p.dst, &s.dst));
	EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
}

TEST(NetParse, VlanOptionsAndPadding)
{
	for (unsigned opts : { 0u, 4u, 12u, 40u }) {
		FrameSpec s;
		s.vlan = 0x0123, s.ip_opts = opts, s.pad = true, s.payload.assign(1, 1);
		Bytes f = Build(s);
		qg_net_pkt p;
		ASSERT_EQ(Parse(f, &p), QG_NET_UDP) << opts;
		EXPECT_EQ(p.vlan, 0x123);
		EXPECT_EQ(p.l3_off, 18);
		EXPECT_EQ(p.l4_off, 38 + opts);
		EXPECT_EQ(p.payload_len, 1) << "Ethernet padding is not payload";
		EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
	}
	// Bytes after the UDP length but inside the IP datagram are ignored too.
	FrameSpec s;
	s.payload = Bytes(20, 7);
	Bytes f = Build(s);
	Put16(&f[34 + 4], 8 + 10);
	qg_net_pkt p;
	ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
	EXPECT_EQ(p.payload_len, 10);
}

TEST(NetParse, Ipv6Udp)
{
	for (uint16_t vlan : { 0, 4095 }) {
		FrameSpec s;
		s.family = AF_INET6, s.vlan = vlan;
		s.src = V6("2001:db8::1", 443), s.dst = V6("2001:db8:ffff::2", 51000);
		Bytes f = Build(s);
		qg_net_pkt p;
		ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
		EXPECT_EQ(p.ethertype, QG_NET_ETHERTYPE_IPV6);
		EXPECT_EQ(p.vlan, vlan);
		EXPECT_EQ(p.l4_off, p.l3_off + 40);
		EXPECT_EQ(p.payload_len, 5);
		EXPECT_TRUE(qg_addr_equal(&p.src, &s.src));
		EXPECT_TRUE(qg_addr_equal(&p.dst, &s.dst));
		EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
	}
}

TEST(NetParse, TruncatedAtEveryOffset)
{
	std::vector<FrameSpec> specs(4);
	specs[1].vlan = 7, specs[1].ip_opts = 8;
	specs[2].family = specs[3].family = AF_INET6;
	specs[2].src = specs[3].src = V6("fe80::1", 1);
	specs[2].dst = specs[3].dst = V6("fe80::2", 2);
	specs[3].vlan = 9;
	for (const FrameSpec &s : specs) {
		Bytes f = Build(s);
		size_t l3 = s.vlan ? 18 : 14;
		for (size_t cut = 0; cut < f.size(); cut++) {
			qg_net_pkt p;
			qg_net_kind k = ParseExact(f.data(), cut, &p);
			ASSERT_EQ(k, QG_NET_MALFORMED) << "cut at " << cut << " of " << f.size();
			EXPECT_EQ(p.bad, cut < l3 ? QG_NET_BAD_L2 : QG_NET_BAD_L3) << "cut at " << cut;
		}
	}
}

TEST(NetParse, MalformedReasons)
{
	FrameSpec s;
	Bytes good = Build(s), f;
	ExpectBad(Bytes(13, 0), QG_NET_BAD_L2, "runt");
	ExpectBad(Bytes{ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0, 0, 1 }, QG_NET_BAD_L2, "cut tag");
	f = good, f[14] = 0x44;
	ExpectBad(f, QG_NET_BAD_L3, "IHL 4");
	f = good, f[14] = 0x55;
	ExpectBad(f, QG_NET_BAD_L3, "version 5");
	f = good, f[14] = 0x4f;
	ExpectBad(f, QG_NET_BAD_L3, "IHL beyond the total length");
	f = good, Put16(&f[16], uint16_t(f.size() - 14 + 1));
	ExpectBad(f, QG_NET_BAD_L3, "total length > frame");
	f = good, Put16(&f[16], 19);
	ExpectBad(f, QG_NET_BAD_L3, "total length < IHL");
	f = good, Put16(&f[38], 8 + 6);
	ExpectBad(f, QG_NET_BAD_L4, "UDP length > IP payload");
	f = good, Put16(&f[38], 7);
	ExpectBad(f, QG_NET_BAD_L4, "UDP length < 8");
	f = good, Put16(&f[16], 20 + 7);
	ExpectBad(f, QG_NET_BAD_L4, "IP payload shorter than a UDP header");
	f = good, Put16(&f[20], 0x2000);
	ExpectBad(f, QG_NET_BAD_FRAGMENT, "MF");
	f = good, Put16(&f[20], 0x0001);
	ExpectBad(f, QG_NET_BAD_FRAGMENT, "offset");

	s.family = AF_INET6, s.src = V6("::1", 1), s.dst = V6("::2", 2);
	good = Build(s);
	f = good, f[14] = 0x40;
	ExpectBad(f, QG_NET_BAD_L3, "v6 version");
	f = good, Put16(&f[18], uint16_t(f.size() - 54 + 1));
	ExpectBad(f, QG_NET_BAD_L3, "v6 payload length > frame");
	f = good, Put16(&f[58], 14);
	ExpectBad(f, QG_NET_BAD_L4, "v6 UDP length > payload");
	const struct {
		uint8_t nh;
		qg_net_bad why;
	} ext[] = { { 0, QG_NET_BAD_EXTHDR },
		    { 43, QG_NET_BAD_EXTHDR },
		    { 60, QG_NET_BAD_EXTHDR },
		    { 44, QG_NET_BAD_FRAGMENT } };
	for (auto e : ext) {
		f = good, f[20] = e.nh;
		ExpectBad(f, e.why, "extension header");
	}
}

TEST(NetParse, OtherKinds)
{
	FrameSpec s;
	Bytes f = Build(s);
	qg_net_pkt p;
	f[23] = 6; // TCP
	EXPECT_EQ(Parse(f, &p), QG_NET_OTHER);
	EXPECT_EQ(p.l4_proto, 6);
	f = Build(s), f[12] = 0x88, f[13] = 0xcc; // LLDP
	EXPECT_EQ(Parse(f, &p), QG_NET_OTHER);
	s.vlan = 5;
	f = Build(s), f[16] = 0x81, f[17] = 0x00; // a second tag
	EXPECT_EQ(Parse(f, &p), QG_NET_OTHER);
	s.vlan = 0, s.family = AF_INET6, s.src = V6("::1", 1), s.dst = V6("::2", 2);
	f = Build(s), f[20] = 58, f[54] = 128; // ICMPv6 echo request
	EXPECT_EQ(Parse(f, &p), QG_NET_OTHER);
	f[54] = 135;
	EXPECT_EQ(Parse(f, &p), QG_NET_ND);
	f[12] = 0x08, f[13] = 0x06;
	EXPECT_EQ(Parse(f, &p), QG_NET_ARP);
}

// Random corruption of valid frames: whatever comes back must be self-consistent.
TEST(NetParse, RandomMutationsStayInBounds)
{
	std::mt19937_64 rng(12345);
	for (int i = 0; i < 50000; i++) {
		FrameSpec s;
		s.family = rng() & 1 ? AF_INET : AF_INET6;
		if (s.family == AF_INET6)
			s.src = V6("2001:db8::1", 1), s.dst = V6("2001:db8::2", 2);
		s.vlan = rng() & 1 ? 3 : 0;
		s.payload.resize(rng() % 40);
		Bytes f = Build(s);
		for (int m = rng() % 4; m >= 0; m--)
			f[rng() % f.size()] = uint8_t(rng());
		if (rng() % 8 == 0)
			f[s.vlan ? 16 : 12] = 0x08, f[s.vlan ? 17 : 13] = 0x06;
		f.resize(rng() % (f.size() + 1));
		std::unique_ptr<uint8_t[]> buf(new uint8_t[f.size() + 1]);
		memcpy(buf.get(), f.data(), f.size());
		uint32_t len = uint32_t(f.size());
		qg_net_pkt p;
		qg_net_arp arp;
		qg_net_nd nd;
		switch (qg_net_parse(buf.get(), len, &p)) {
		case QG_NET_UDP:
			ASSERT_LE(p.payload_off + p.payload_len, len);
			qg_net_checksums_ok(buf.get(), len, &p);
			break;
		case QG_NET_ARP:
			qg_net_arp_read(buf.get(), len, &p, &arp);
			break;
		case QG_NET_ND:
			qg_net_nd_read(buf.get(), len, &p, &nd);
			break;
		case QG_NET_MALFORMED:
			ASSERT_NE(p.bad, QG_NET_BAD_NONE);
			break;
		default:
			break;
		}
	}
}

TEST(NetChecksum, Rfc1071Example)
{
	// RFC 1071 section 3: the sum of these bytes is ddf2, so the checksum is 220d.
	const uint8_t data[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint16_t c = qg_net_csum(data, sizeof(data));
	uint8_t stored[2];
	memcpy(stored, &c, 2);
	EXPECT_EQ(Get16(stored), 0x220d) << "network byte order, ready to memcpy into a header";
}

TEST(NetChecksum, MatchesReferenceAtAnyLengthAndAlignment)
{
	std::mt19937_64 rng(1);
	uint8_t buf[300];
	for (int i = 0; i < 5000; i++) {
		size_t off = rng() % 8, n = rng() % 290;
		for (auto &b : buf)
			b = uint8_t(rng());
		uint16_t c = qg_net_csum(buf + off, n);
		uint8_t stored[2];
		memcpy(stored, &c, 2);
		ASSERT_EQ(Get16(stored), uint16_t(~RefSum(buf + off, n))) << n;
	}
}

TEST(NetChecksum, ReplaceMatchesRecompute)
{
	std::mt19937_64 rng(2);
	for (int i = 0; i < 10000; i++) {
		uint16_t words[32], oldw[4], neww[4];
		for (auto &w : words)
			w = uint16_t(rng());
		words[0] |= 0x4500; // never an all-zero buffer, as in real headers
		words[5] = 0;
		uint16_t c = qg_net_csum(words, sizeof(words));
		size_t n = 1 + rng() % 4, first = 6 + rng() % 20;
		for (size_t k = 0; k < n; k++) {
			oldw[k] = words[first + k];
			neww[k] = uint16_t(rng() % 4 == 0 ? 0xffff * (rng() & 1) : rng());
			words[first + k] = neww[k];
		}
		uint16_t inc = qg_net_csum_replace(c, oldw, neww, n);
		ASSERT_EQ(inc, qg_net_csum(words, sizeof(words))) << i;
	}
}

TEST(NetChecksum, OkAndFill)
{
	FrameSpec s;
	Bytes f = Build(s);
	qg_net_pkt p;
	ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
	Bytes g = f;
	memset(&g[24], 0, 2), memset(&g[40], 0, 2);
	qg_net_checksums_fill(g.data(), &p);
	EXPECT_EQ(g, f) << "fill agrees with the reference";
	g[f.size() - 1] ^= 1;
	EXPECT_EQ(qg_net_checksums_ok(g.data(), uint32_t(g.size()), &p), 0);
	g = f, g[22] ^= 1; // TTL: only the IP header checksum covers it
	EXPECT_EQ(qg_net_checksums_ok(g.data(), uint32_t(g.size()), &p), 0);
	g = f, memset(&g[40], 0, 2);
	EXPECT_EQ(qg_net_checksums_ok(g.data(), uint32_t(g.size()), &p), 1) << "UDP/IPv4 0 = none";
	EXPECT_EQ(qg_net_checksums_ok(g.data(), 41, &p), 0) << "length checked";

	s.family = AF_INET6, s.src = V6("::1", 1), s.dst = V6("::2", 2);
	f = Build(s);
	ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
	EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
	memset(&f[60], 0, 2);
	EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 0) << "mandatory over IPv6";
}

qg_addr RandomAddr(std::mt19937_64 &rng, int family)
{
	qg_addr a{};
	a.family = uint8_t(family);
	for (int i = 0; i < (family == AF_INET ? 4 : 16); i++) // extremes exercise the -0 cases
		a.ip[i] = uint8_t(rng() % 8 == 0 ? (rng() & 1) * 0xff : rng());
	a.port = uint16_t(rng() % 8 == 0 ? (rng() & 1) * 0xffff : rng());
	return a;
}

// The incremental rewrite must land exactly where a full recompute does.
void NatAgainstRecompute(int family, bool udp_csum, int rounds, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	for (int i = 0; i < rounds; i++) {
		FrameSpec s;
		s.family = family, s.udp_csum = udp_csum;
		s.src = RandomAddr(rng, family), s.dst = RandomAddr(rng, family);
		s.vlan = rng() & 1 ? uint16_t(1 + rng() % 4094) : 0;
		s.ip_opts = family == AF_INET ? 4 * unsigned(rng() % 11) : 0;
		s.ttl = uint8_t(2 + rng() % 254);
		s.payload.resize(rng() % 200);
		for (auto &b : s.payload)
			b = uint8_t(rng());
		Bytes f = Build(s);
		qg_net_pkt p;
		ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
		qg_addr ns = RandomAddr(rng, family), nd = RandomAddr(rng, family);
		ASSERT_EQ(qg_net_nat_rewrite(f.data(), &p, &ns, &nd, kMacB, kMacA), 0);
		EXPECT_TRUE(qg_addr_equal(&p.src, &ns));
		Bytes want = f;
		qg_net_checksums_fill(want.data(), &p);
		if (!udp_csum)
			memset(&want[p.l4_off + 6], 0, 2);
		ASSERT_EQ(f, want) << "frame " << i << " seed " << seed;
		ASSERT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
		qg_net_pkt q;
		ASSERT_EQ(Parse(f, &q), QG_NET_UDP);
		EXPECT_TRUE(qg_addr_equal(&q.src, &ns) && qg_addr_equal(&q.dst, &nd));
		EXPECT_EQ(f[p.l3_off + (family == AF_INET ? 8 : 7)], s.ttl - 1);
		EXPECT_EQ(memcmp(f.data(), kMacA, 6), 0);
		EXPECT_EQ(memcmp(f.data() + 6, kMacB, 6), 0);
	}
}

TEST(NetNat, Ipv4WithUdpChecksumMatchesRecompute)
{
	NatAgainstRecompute(AF_INET, true, 10000, 10);
}

TEST(NetNat, Ipv4WithoutUdpChecksumKeepsZero)
{
	NatAgainstRecompute(AF_INET, false, 10000, 11);
}

TEST(NetNat, Ipv6MatchesRecompute)
{
	NatAgainstRecompute(AF_INET6, true, 10000, 12);
}

// Payload chosen so the rewritten datagram's checksum computes to 0: it must go out as ffff.
TEST(NetNat, ComputedZeroIsSentAsAllOnes)
{
	for (int family : { AF_INET, AF_INET6 }) {
		FrameSpec s;
		s.family = family;
		qg_addr ns = family == AF_INET ? V4("10.0.0.1", 1000) : V6("2001:db8::a", 1000);
		qg_addr nd = family == AF_INET ? V4("10.0.0.2", 2000) : V6("2001:db8::b", 2000);
		if (family == AF_INET6)
			s.src = V6("2001:db8::1", 1), s.dst = V6("2001:db8::2", 2);
		s.payload = { 0, 0, 1, 2 };
		// Build at the final addresses, then pick payload[0..1] making the sum -0.
		FrameSpec fin = s;
		fin.src = ns, fin.dst = nd, fin.payload[0] = fin.payload[1] = 0;
		Bytes f = Build(fin);
		qg_net_pkt p;
		ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
		uint16_t cur = Get16(&f[p.l4_off + 6]); // ~sum, with the payload word at 0
		s.payload[0] = uint8_t(cur >> 8), s.payload[1] = uint8_t(cur);
		f = Build(s);
		ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
		ASSERT_EQ(qg_net_nat_rewrite(f.data(), &p, &ns, &nd, kMacA, kMacB), 0);
		EXPECT_EQ(Get16(&f[p.l4_off + 6]), 0xffff) << family;
		EXPECT_EQ(qg_net_checksums_ok(f.data(), uint32_t(f.size()), &p), 1);
	}
}

TEST(NetNat, TtlExpiryAndFamilyMismatchLeaveFrameAlone)
{
	for (int family : { AF_INET, AF_INET6 }) {
		for (uint8_t ttl : { 0, 1 }) {
			FrameSpec s;
			s.family = family, s.ttl = ttl;
			if (family == AF_INET6)
				s.src = V6("::1", 1), s.dst = V6("::2", 2);
			Bytes f = Build(s), orig = f;
			qg_net_pkt p;
			ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
			EXPECT_EQ(qg_net_nat_rewrite(f.data(), &p, &s.dst, &s.src, kMacB, kMacA), -ETIMEDOUT);
			EXPECT_EQ(f, orig);
		}
	}
	FrameSpec s;
	Bytes f = Build(s), orig = f;
	qg_net_pkt p;
	ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
	qg_addr v6 = V6("2001:db8::1", 5);
	EXPECT_EQ(qg_net_nat_rewrite(f.data(), &p, &v6, &s.dst, kMacB, kMacA), -EAFNOSUPPORT);
	EXPECT_EQ(qg_net_nat_rewrite(f.data(), &p, &s.src, &v6, kMacB, kMacA), -EAFNOSUPPORT);
	EXPECT_EQ(f, orig);
}

TEST(NetArp, RequestReadReplyRoundTrip)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t ip_a[4] = { 10, 0, 0, 1 }, ip_b[4] = { 10, 0, 0, 2 };
	uint8_t buf[128];
	memset(buf, 0xee, sizeof(buf));
	EXPECT_EQ(qg_net_arp_build(buf, 59, 1, bcast, kMacA, ip_a, nullptr, ip_b), 0u);
	ASSERT_EQ(qg_net_arp_build(buf, sizeof(buf), 1, bcast, kMacA, ip_a, nullptr, ip_b), 60u);
	for (int i = 42; i < 60; i++)
		EXPECT_EQ(buf[i], 0) << "padding byte " << i;
	qg_net_pkt p;
	ASSERT_EQ(ParseExact(buf, 60, &p), QG_NET_ARP);
	qg_net_arp req;
	ASSERT_EQ(qg_net_arp_read(buf, 60, &p, &req), 0);
	EXPECT_EQ(req.op, 1);
	EXPECT_EQ(memcmp(req.sender_mac, kMacA, 6), 0);
	EXPECT_EQ(memcmp(req.sender_ip, ip_a, 4), 0);
	EXPECT_EQ(memcmp(req.target_ip, ip_b, 4), 0);
	const uint8_t zero[6] = {};
	EXPECT_EQ(memcmp(req.target_mac, zero, 6), 0);

	uint8_t rep[60];
	ASSERT_EQ(qg_net_arp_build(rep, sizeof(rep), 2, req.sender_mac, kMacB, req.target_ip, req.sender_mac,
				   req.sender_ip),
		  60u);
	ASSERT_EQ(ParseExact(rep, 60, &p), QG_NET_ARP);
	qg_net_arp r;
	ASSERT_EQ(qg_net_arp_read(rep, 60, &p, &r), 0);
	EXPECT_EQ(r.op, 2);
	EXPECT_EQ(memcmp(rep, kMacA, 6), 0) << "unicast back to the asker";
	EXPECT_EQ(memcmp(r.sender_mac, kMacB, 6), 0);
	EXPECT_EQ(memcmp(r.sender_ip, ip_b, 4), 0);
	EXPECT_EQ(memcmp(r.target_mac, kMacA, 6), 0);
	EXPECT_EQ(memcmp(r.target_ip, ip_a, 4), 0);

	// Not Ethernet/IPv4, unknown op, or truncated.
	const int fields[][2] = { { 15, 6 }, { 16, 0x86 }, { 18, 8 }, { 19, 16 }, { 21, 3 } };
	for (auto fv : fields) {
		Bytes f(rep, rep + 60);
		f[fv[0]] = uint8_t(fv[1]);
		ASSERT_EQ(Parse(f, &p), QG_NET_ARP);
		EXPECT_EQ(qg_net_arp_read(f.data(), 60, &p, &r), -EINVAL) << "byte " << fv[0];
	}
	ASSERT_EQ(ParseExact(rep, 41, &p), QG_NET_ARP);
	EXPECT_EQ(qg_net_arp_read(rep, 41, &p, &r), -EINVAL);
}

const uint8_t kIpA[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a };
const uint8_t kIpB[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56 };

// Recompute the ICMPv6 checksum after a deliberate edit, so only the edit is judged.
void FixIcmp6(Bytes &f)
{
	uint16_t plen = Get16(&f[18]);
	Put16(&f[56], 0);
	uint32_t pseudo = RefSum(&f[22], 32) + plen + 58;
	Put16(&f[56], uint16_t(~RefSum(&f[54], plen, pseudo)));
}

TEST(NetNd, SolicitationRoundTrip)
{
	uint8_t buf[128];
	EXPECT_EQ(qg_net_nd_build_ns(buf, 85, kMacA, kIpA, kIpB), 0u);
	uint32_t n = qg_net_nd_build_ns(buf, sizeof(buf), kMacA, kIpA, kIpB);
	ASSERT_EQ(n, 86u);
	const uint8_t mc_mac[6] = { 0x33, 0x33, 0xff, 0x12, 0x34, 0x56 };
	EXPECT_EQ(memcmp(buf, mc_mac, 6), 0);
	const uint8_t group[16] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x12, 0x34, 0x56 };
	EXPECT_EQ(memcmp(buf + 38, group, 16), 0);
	EXPECT_EQ(buf[21], 255);
	qg_net_pkt p;
	ASSERT_EQ(ParseExact(buf, n, &p), QG_NET_ND);
	qg_net_nd nd;
	ASSERT_EQ(qg_net_nd_read(buf, n, &p, &nd), 0);
	EXPECT_EQ(nd.type, 135);
	EXPECT_EQ(nd.has_lladdr, 1);
	EXPECT_EQ(memcmp(nd.lladdr, kMacA, 6), 0);
	EXPECT_EQ(memcmp(nd.target, kIpB, 16), 0);
	EXPECT_EQ(memcmp(nd.src_ip, kIpA, 16), 0);
	EXPECT_EQ(memcmp(nd.src_mac, kMacA, 6), 0);

	const uint8_t unspec[16] = {};
	n = qg_net_nd_build_ns(buf, sizeof(buf), kMacA, unspec, kIpB);
	ASSERT_EQ(n, 78u) << "DAD probe: no source link-layer option";
	ASSERT_EQ(ParseExact(buf, n, &p), QG_NET_ND);
	ASSERT_EQ(qg_net_nd_read(buf, n, &p, &nd), 0);
	EXPECT_EQ(nd.has_lladdr, 0);
}

TEST(NetNd, AdvertisementRoundTrip)
{
	for (int solicited : { 0, 1 }) {
		uint8_t buf[86];
		uint32_t n = qg_net_nd_build_na(buf, sizeof(buf), kMacB, kIpB, kMacA, kIpA, solicited);
		ASSERT_EQ(n, 86u);
		EXPECT_EQ(memcmp(buf, kMacA, 6), 0);
		qg_net_pkt p;
		ASSERT_EQ(ParseExact(buf, n, &p), QG_NET_ND);
		qg_net_nd nd;
		ASSERT_EQ(qg_net_nd_read(buf, n, &p, &nd), 0);
		EXPECT_EQ(nd.type, 136);
		EXPECT_EQ(nd.flags, solicited ? 0x60 : 0x20);
		EXPECT_EQ(nd.has_lladdr, 1);
		EXPECT_EQ(memcmp(nd.lladdr, kMacB, 6), 0);
		EXPECT_EQ(memcmp(nd.target, kIpB, 16), 0);
		EXPECT_EQ(memcmp(nd.src_ip, kIpB, 16), 0);
	}
}

TEST(NetNd, InvalidMessagesRefused)
{
	uint8_t buf[86];
	uint32_t n = qg_net_nd_build_na(buf, sizeof(buf), kMacB, kIpB, kMacA, kIpA, 1);
	const Bytes good(buf, buf + n);
	qg_net_nd nd;
	qg_net_pkt p;
	auto refused = [&](Bytes f, const char *what) {
		ASSERT_EQ(Parse(f, &p), QG_NET_ND) << what;
		EXPECT_EQ(qg_net_nd_read(f.data(), uint32_t(f.size()), &p, &nd), -EINVAL) << what;
	};
	Bytes f = good;
	f[21] = 254; // hop limit is outside the checksum
	refused(f, "hop limit 254");
	f = good, f[57] ^= 1;
	refused(f, "bad checksum");
	f = good, f[70] ^= 1;
	refused(f, "target changed under the checksum");
	f = good, f[55] = 1, FixIcmp6(f);
	refused(f, "code 1");
	f = good, f[79] = 0, FixIcmp6(f);
	refused(f, "option length 0");
	f = good, f[79] = 2, FixIcmp6(f);
	refused(f, "option beyond the message");
	f = good, f.resize(14 + 40 + 20), Put16(&f[18], 20), FixIcmp6(f);
	refused(f, "shorter than 24 bytes");
	f = good, f[62] = 0xff, FixIcmp6(f);
	refused(f, "multicast target");
	// The untouched message still passes, and a repaired edit is accepted.
	f = good, f[60] ^= 1, FixIcmp6(f);
	ASSERT_EQ(Parse(f, &p), QG_NET_ND);
	EXPECT_EQ(qg_net_nd_read(f.data(), uint32_t(f.size()), &p, &nd), 0);
}

TEST(NetMac, Parse)
{
	uint8_t mac[6];
	ASSERT_EQ(qg_net_mac_parse("02:00:0a:FF:9b:01", mac), 0);
	const uint8_t want[6] = { 0x02, 0x00, 0x0a, 0xff, 0x9b, 0x01 };
	EXPECT_EQ(memcmp(mac, want, 6), 0);
	for (const char *bad : { "", "02:00:0a:ff:9b", "02:00:0a:ff:9b:01:", "02-00-0a-ff-9b-01",
				 "2:0:a:f:9:1", "02:00:0a:ff:9b:0g", "02:00:0a:ff:9b:011" })
		EXPECT_EQ(qg_net_mac_parse(bad, mac), -EINVAL) << bad;
}

TEST(NetNeigh, SetLookupStaticFull)
{
	qg_neigh_table *t = nullptr;
	EXPECT_EQ(qg_neigh_create(0, &t), -EINVAL);
	ASSERT_EQ(qg_neigh_create(4, &t), 0);
	uint8_t mac[6];
	qg_addr a = V4("10.0.0.1", 1), a2 = V4("10.0.0.1", 999), b = V6("2001:db8::1", 0);
	EXPECT_EQ(qg_neigh_lookup(t, &a, mac), -ENOENT);
	ASSERT_EQ(qg_neigh_set(t, &a, kMacA, 0), 0);
	ASSERT_EQ(qg_neigh_lookup(t, &a2, mac), 0) << "port ignored";
	EXPECT_EQ(memcmp(mac, kMacA, 6), 0);
	qg_addr v6same{};
	v6same.family = AF_INET6, memcpy(v6same.ip, a.ip, 4);
	EXPECT_EQ(qg_neigh_lookup(t, &v6same, mac), -ENOENT) << "family is part of the key";
	ASSERT_EQ(qg_neigh_set(t, &a, kMacB, 0), 0);
	ASSERT_EQ(qg_neigh_lookup(t, &a, mac), 0);
	EXPECT_EQ(memcmp(mac, kMacB, 6), 0) << "learned refreshes learned";

	ASSERT_EQ(qg_neigh_set(t, &b, kMacA, 1), 0);
	ASSERT_EQ(qg_neigh_set(t, &b, kMacB, 0), 0);
	ASSERT_EQ(qg_neigh_lookup(t, &b, mac), 0);
	EXPECT_EQ(memcmp(mac, kMacA, 6), 0) << "static wins over learned";
	ASSERT_EQ(qg_neigh_set(t, &a, kMacA, 1), 0);
	ASSERT_EQ(qg_neigh_set(t, &a, kMacB, 0), 0);
	ASSERT_EQ(qg_neigh_lookup(t, &a, mac), 0);
	EXPECT_EQ(memcmp(mac, kMacA, 6), 0) << "learned became static";
	ASSERT_EQ(qg_neigh_set(t, &b, kMacB, 1), 0);
	ASSERT_EQ(qg_neigh_lookup(t, &b, mac), 0);
	EXPECT_EQ(memcmp(mac, kMacB, 6), 0) << "config replaces config";

	qg_addr c = V4("10.0.0.3", 0), d = V4("10.0.0.4", 0), e = V4("10.0.0.5", 0);
	ASSERT_EQ(qg_neigh_set(t, &c, kMacA, 0), 0);
	ASSERT_EQ(qg_neigh_set(t, &d, kMacA, 0), 0);
	EXPECT_EQ(qg_neigh_set(t, &e, kMacA, 0), -ENOSPC);
	EXPECT_EQ(qg_neigh_set(t, &d, kMacB, 0), 0) << "updates still work when full";
	EXPECT_EQ(qg_neigh_lookup(t, &e, mac), -ENOENT);
	qg_neigh_destroy(t);
	qg_neigh_destroy(nullptr);
}

// One writer refreshes MACs (and adds entries) while three readers look up.
// Every MAC written for entry i is {g_hi, g_lo, g_hi, g_lo, i, 0x5a} with a
// growing generation g: a torn read breaks the pattern, and per-location
// coherence means a reader never sees g go backwards.
TEST(NetNeigh, ConcurrentReadersSeeOnlyWrittenMacs)
{
	constexpr int kEntries = 64, kGens = 3000;
	qg_neigh_table *t = nullptr;
	ASSERT_EQ(qg_neigh_create(kEntries, &t), 0);
	auto ip = [](int i) {
		qg_addr a{};
		a.family = i & 1 ? AF_INET6 : AF_INET;
		a.ip[0] = 10, a.ip[3] = uint8_t(i);
		return a;
	};
	auto mac_of = [](int i, int g, uint8_t m[6]) {
		m[0] = m[2] = uint8_t(g >> 8), m[1] = m[3] = uint8_t(g), m[4] = uint8_t(i), m[5] = 0x5a;
	};
	std::atomic<bool> done{ false };
	std::atomic<long> bad{ 0 }, hits{ 0 };
	std::vector<std::thread> readers;
	for (int r = 0; r < 3; r++)
		readers.emplace_back([&] {
			std::vector<int> last(kEntries, -1);
			long h = 0;
			while (!done.load(std::memory_order_relaxed)) {
				for (int i = 0; i < kEntries; i++) {
					qg_addr a = ip(i);
					uint8_t m[6];
					if (qg_neigh_lookup(t, &a, m) != 0)
						continue;
					int g = m[0] << 8 | m[1];
					if (m[2] != m[0] || m[3] != m[1] || m[4] != i || m[5] != 0x5a ||
					    g > kGens || g < last[i])
						bad++;
					last[i] = g;
					h++;
				}
			}
			hits += h;
		});
	for (int g = 0; g <= kGens; g++)
		for (int i = 0; i < kEntries; i++) {
			if (i >= kEntries / 2 && g < (i - kEntries / 2) * 50)
				continue; // the second half appears while readers run
			qg_addr a = ip(i);
			uint8_t m[6];
			mac_of(i, g, m);
			ASSERT_EQ(qg_neigh_set(t, &a, m, 0), 0);
		}
	done = true;
	for (auto &th : readers)
		th.join();
	EXPECT_EQ(bad.load(), 0);
	EXPECT_GT(hits.load(), 0);
	qg_neigh_destroy(t);
}

// pcap (microsecond, Ethernet) written by hand: global header + one record per frame.
void WritePcap(const std::string &path, const std::vector<Bytes> &frames)
{
	FILE *fp = fopen(path.c_str(), "wb");
	ASSERT_NE(fp, nullptr);
	const uint32_t g[6] = { 0xa1b2c3d4, 2 | (4u << 16), 0, 0, 65535, 1 };
	fwrite(g, sizeof(g), 1, fp);
	uint32_t ts = 1700000000;
	for (const Bytes &f : frames) {
		const uint32_t rec[4] = { ts++, 0, uint32_t(f.size()), uint32_t(f.size()) };
		fwrite(rec, sizeof(rec), 1, fp);
		fwrite(f.data(), 1, f.size(), fp);
	}
	fclose(fp);
}

std::string Shell(const std::string &cmd, int *status)
{
	std::string out;
	FILE *p = popen(cmd.c_str(), "r");
	if (!p) {
		*status = -1;
		return out;
	}
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	*status = pclose(p);
	return out;
}

TEST(NetTshark, EmittedFramesHaveNoErrors)
{
	int st;
	Shell("command -v tshark >/dev/null 2>&1", &st);
	if (st != 0)
		GTEST_SKIP() << "tshark is not installed";
	std::vector<Bytes> frames;
	std::vector<std::string> protos; // what tshark must recognise in each frame
	for (int family : { AF_INET, AF_INET6 })
		for (bool csum : { true, false }) {
			if (family == AF_INET6 && !csum)
				continue;
			FrameSpec s;
			s.family = family, s.udp_csum = csum, s.vlan = csum ? 0 : 42,
			s.ip_opts = csum ? 0 : 4;
			if (family == AF_INET6)
				s.src = V6("2001:db8::1", 40000), s.dst = V6("2001:db8::2", 40001);
			s.payload.assign(64, 'x');
			Bytes f = Build(s);
			qg_net_pkt p;
			ASSERT_EQ(Parse(f, &p), QG_NET_UDP);
			qg_addr ns =
				family == AF_INET ? V4("203.0.113.9", 41234) : V6("2001:db8:1::9", 41234);
			qg_addr nd =
				family == AF_INET ? V4("192.0.2.200", 41235) : V6("2001:db8:2::200", 41235);
			ASSERT_EQ(qg_net_nat_rewrite(f.data(), &p, &ns, &nd, kMacA, kMacB), 0);
			frames.push_back(f), protos.push_back(family == AF_INET ? "ip:udp" : "ipv6:udp");
		}
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t ip_a[4] = { 10, 0, 0, 1 }, ip_b[4] = { 10, 0, 0, 2 };
	uint8_t buf[128];
	uint32_t n = qg_net_arp_build(buf, sizeof(buf), 1, bcast, kMacA, ip_a, nullptr, ip_b);
	frames.emplace_back(buf, buf + n), protos.push_back("eth:ethertype:arp");
	n = qg_net_arp_build(buf, sizeof(buf), 2, kMacA, kMacB, ip_b, kMacA, ip_a);
	frames.emplace_back(buf, buf + n), protos.push_back("eth:ethertype:arp");
	n = qg_net_nd_build_ns(buf, sizeof(buf), kMacA, kIpA, kIpB);
	frames.emplace_back(buf, buf + n), protos.push_back("ipv6:icmpv6");
	const uint8_t unspec[16] = {};
	n = qg_net_nd_build_ns(buf, sizeof(buf), kMacA, unspec, kIpB);
	frames.emplace_back(buf, buf + n), protos.push_back("ipv6:icmpv6");
	n = qg_net_nd_build_na(buf, sizeof(buf), kMacB, kIpB, kMacA, kIpA, 1);
	frames.emplace_back(buf, buf + n), protos.push_back("ipv6:icmpv6");

	char path[] = "/tmp/qgate_test_net_XXXXXX.pcap";
	int fd = mkstemps(path, 5);
	ASSERT_GE(fd, 0);
	close(fd);
	WritePcap(path, frames);
	const std::string base = std::string("tshark -n -r ") + path +
				 " -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE 2>/dev/null";
	std::string fields =
		Shell(base + " -T fields -e frame.protocols -e _ws.expert.severity"
			     " -e ip.checksum.status -e udp.checksum.status -e icmpv6.checksum.status",
		      &st);
	ASSERT_EQ(st, 0) << fields;
	std::string verbose = Shell(base + " -V", &st);
	ASSERT_EQ(st, 0);
	unlink(path);

	std::vector<std::string> lines;
	for (size_t pos = 0, nl; pos < fields.size(); pos = nl + 1) {
		nl = fields.find('\n', pos);
		if (nl == std::string::npos)
			nl = fields.size();
		lines.push_back(fields.substr(pos, nl - pos));
	}
	ASSERT_EQ(lines.size(), frames.size()) << fields;
	for (size_t i = 0; i < lines.size(); i++)
		EXPECT_NE(lines[i].find(protos[i]), std::string::npos)
			<< "frame " << i + 1 << ": " << lines[i];
	for (const char *word : { "Bad", "bad checksum", "incorrect", "Malformed", "Error/", "Warning/" })
		EXPECT_EQ(verbose.find(word), std::string::npos) << "tshark says '" << word << "':\n"
								 << verbose;
	// Checksums really were verified: IPv4 header x2, UDP x2 (v4 with checksum, v6), ICMPv6 x3.
	size_t good = 0;
	for (size_t pos = 0; (pos = verbose.find("[correct]", pos)) != std::string::npos; pos++)
		good++;
	EXPECT_EQ(good, 7u) << verbose;
}

} // namespace
