// SPDX-License-Identifier: BSD-3-Clause
// qg_addr parsing, formatting, sockaddr conversion and equality, and the hash
// helpers built on it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "qgate/addr.h"
#include "qgate/hash.h"
}

namespace
{

std::string Fmt(const qg_addr &a)
{
	char buf[QG_ADDR_STRLEN];
	return qg_addr_format(&a, buf, sizeof(buf));
}

// A qg_addr full of garbage, to prove the parser overwrites every byte.
qg_addr Dirty()
{
	qg_addr a;
	memset(&a, 0xa5, sizeof(a));
	return a;
}

TEST(Addr, LayoutIsTwentyBytesWithoutPadding)
{
	EXPECT_EQ(sizeof(qg_addr), 20u);
	EXPECT_EQ(offsetof(qg_addr, port), 16u);
	EXPECT_EQ(offsetof(qg_addr, family), 18u);
	EXPECT_EQ(offsetof(qg_addr, pad), 19u);
}

TEST(Addr, ParsesIpv4)
{
	qg_addr a = Dirty();
	ASSERT_EQ(qg_addr_parse("10.1.2.3:4433", &a), 0);
	EXPECT_EQ(a.family, AF_INET);
	EXPECT_EQ(ntohs(a.port), 4433);
	const uint8_t ip[4] = { 10, 1, 2, 3 };
	EXPECT_EQ(memcmp(a.ip, ip, 4), 0);
	for (int i = 4; i < 16; i++)
		EXPECT_EQ(a.ip[i], 0) << "byte " << i << " of an IPv4 address must be zero";
	EXPECT_EQ(a.pad, 0);
}

TEST(Addr, ParsesBracketedIpv6)
{
	qg_addr a = Dirty();
	ASSERT_EQ(qg_addr_parse("[2001:db8::1]:53", &a), 0);
	EXPECT_EQ(a.family, AF_INET6);
	EXPECT_EQ(ntohs(a.port), 53);
	in6_addr want;
	ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &want), 1);
	EXPECT_EQ(memcmp(a.ip, &want, 16), 0);
	EXPECT_EQ(a.pad, 0);

	ASSERT_EQ(qg_addr_parse("[::1]:1", &a), 0);
	EXPECT_EQ(a.family, AF_INET6);
	EXPECT_EQ(ntohs(a.port), 1);
	ASSERT_EQ(qg_addr_parse("[::ffff:1.2.3.4]:9", &a), 0);
	EXPECT_EQ(a.family, AF_INET6);
}

TEST(Addr, PortBounds)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("127.0.0.1:0", &a), 0);
	EXPECT_EQ(a.port, 0);
	ASSERT_EQ(qg_addr_parse("127.0.0.1:65535", &a), 0);
	EXPECT_EQ(ntohs(a.port), 65535);
	ASSERT_EQ(qg_addr_parse("[::1]:0", &a), 0);
	EXPECT_EQ(a.port, 0);
	ASSERT_EQ(qg_addr_parse("[::1]:65535", &a), 0);
	EXPECT_EQ(ntohs(a.port), 65535);
}

TEST(Addr, PortIsNetworkByteOrder)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("1.2.3.4:258", &a), 0); // 0x0102
	const uint8_t *p = reinterpret_cast<const uint8_t *>(&a.port);
	EXPECT_EQ(p[0], 1);
	EXPECT_EQ(p[1], 2);
}

class AddrRejects : public ::testing::TestWithParam<const char *>
{
};

TEST_P(AddrRejects, Invalid)
{
	qg_addr a = Dirty();
	qg_addr before = a;
	EXPECT_EQ(qg_addr_parse(GetParam(), &a), -EINVAL) << "'" << GetParam() << "'";
	EXPECT_EQ(memcmp(&a, &before, sizeof(a)), 0)
		<< "output written on failure for '" << GetParam() << "'";
}

INSTANTIATE_TEST_SUITE_P(Texts, AddrRejects,
			 ::testing::Values("", ":", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:99999",
					   "1.2.3.4:4294967297", "1.2.3.4:18446744073709551617", "::1",
					   "::1:53", "2001:db8::1:53", "[::1]", "[::1]:", "[::1]53", "[::1",
					   "::1]:53", "[]:53", "[1.2.3.4]:53", "[::1]:65536", "1.2.3:80",
					   "1.2.3.4.5:80", "256.1.1.1:80", "localhost:80", "junk",
					   "a.b.c.d:1", "1.2.3.4:http", "1.2.3.4:0x10", "1.2.3.4:1e3",
					   " 1.2.3.4:80", "1.2.3.4 :80", "1.2.3.4: 80", "1.2.3.4:80 ",
					   "1.2.3.4:8 0", "[ ::1]:80", "[::1] :80", "[::1]: 80", "[::1]:80 ",
					   "1.2.3.4:+80", "1.2.3.4:-80", "1.2.3.4:-0", "[::1]:+80",
					   "[::1]:-1", "1.2.3.4:80:80", "[::1]:80:80", "1.2.3.4:\t80",
					   "1.2.3.4:80\n", "[fe80::1%lo]:80"));

TEST(Addr, NullTextIsRejected)
{
	qg_addr a;
	EXPECT_EQ(qg_addr_parse(nullptr, &a), -EINVAL);
}

TEST(Addr, FormatsCanonically)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("192.168.0.1:80", &a), 0);
	EXPECT_EQ(Fmt(a), "192.168.0.1:80");
	ASSERT_EQ(qg_addr_parse("[2001:0db8:0000::0001]:443", &a), 0);
	EXPECT_EQ(Fmt(a), "[2001:db8::1]:443");
	ASSERT_EQ(qg_addr_parse("[::]:0", &a), 0);
	EXPECT_EQ(Fmt(a), "[::]:0");

	qg_addr none{};
	EXPECT_EQ(Fmt(none), "(none)");
}

TEST(Addr, LongestFormatFits)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &a), 0);
	std::string s = Fmt(a);
	EXPECT_LT(s.size(), static_cast<size_t>(QG_ADDR_STRLEN));
	qg_addr back;
	ASSERT_EQ(qg_addr_parse(s.c_str(), &back), 0) << s;
	EXPECT_TRUE(qg_addr_equal(&a, &back));
}

TEST(Addr, FormatTruncatesSafely)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("192.168.100.200:65535", &a), 0);
	char buf[8];
	memset(buf, 'x', sizeof(buf));
	qg_addr_format(&a, buf, sizeof(buf));
	EXPECT_EQ(buf[sizeof(buf) - 1], '\0');
	EXPECT_EQ(std::string(buf), "192.168");
}

TEST(Addr, RoundTripFormatParse)
{
	const char *texts[] = {
		"0.0.0.0:0",   "127.0.0.1:4433",    "255.255.255.255:65535", "10.0.0.1:1",	    "[::]:1",
		"[::1]:65535", "[2001:db8::42]:53", "[fe80::1:2:3:4]:7777",  "[::ffff:10.0.0.1]:80"
	};
	for (const char *t : texts) {
		qg_addr a, b;
		ASSERT_EQ(qg_addr_parse(t, &a), 0) << t;
		std::string s = Fmt(a);
		EXPECT_EQ(s, t);
		ASSERT_EQ(qg_addr_parse(s.c_str(), &b), 0) << s;
		EXPECT_TRUE(qg_addr_equal(&a, &b)) << t;
		EXPECT_EQ(memcmp(&a, &b, sizeof(a)), 0) << t;
	}
}

TEST(Addr, SockaddrIpv4)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("10.20.30.40:5001", &a), 0);
	sockaddr_storage ss;
	memset(&ss, 0xa5, sizeof(ss));
	socklen_t len = qg_addr_to_sockaddr(&a, &ss);
	ASSERT_EQ(len, sizeof(sockaddr_in));
	const sockaddr_in *s4 = reinterpret_cast<const sockaddr_in *>(&ss);
	EXPECT_EQ(s4->sin_family, AF_INET);
	EXPECT_EQ(ntohs(s4->sin_port), 5001);
	EXPECT_EQ(s4->sin_addr.s_addr, htonl(0x0a141e28));
	for (size_t i = 0; i < sizeof(s4->sin_zero); i++)
		EXPECT_EQ(s4->sin_zero[i], 0);

	qg_addr back = Dirty();
	ASSERT_EQ(qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&ss), &back), 0);
	EXPECT_TRUE(qg_addr_equal(&a, &back));
}

TEST(Addr, SockaddrIpv6)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("[2001:db8::7]:65535", &a), 0);
	sockaddr_storage ss;
	memset(&ss, 0xa5, sizeof(ss));
	socklen_t len = qg_addr_to_sockaddr(&a, &ss);
	ASSERT_EQ(len, sizeof(sockaddr_in6));
	const sockaddr_in6 *s6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
	EXPECT_EQ(s6->sin6_family, AF_INET6);
	EXPECT_EQ(ntohs(s6->sin6_port), 65535);
	EXPECT_EQ(memcmp(&s6->sin6_addr, a.ip, 16), 0);
	EXPECT_EQ(s6->sin6_flowinfo, 0u);
	EXPECT_EQ(s6->sin6_scope_id, 0u);

	qg_addr back = Dirty();
	ASSERT_EQ(qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&ss), &back), 0);
	EXPECT_TRUE(qg_addr_equal(&a, &back));
}

TEST(Addr, FromSockaddrZeroesPaddingAndTail)
{
	// A kernel-filled sockaddr_in with junk in sin_zero and beyond must not leak into the key.
	sockaddr_storage ss;
	memset(&ss, 0xff, sizeof(ss));
	sockaddr_in *s4 = reinterpret_cast<sockaddr_in *>(&ss);
	s4->sin_family = AF_INET;
	s4->sin_port = htons(9);
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	qg_addr a = Dirty();
	ASSERT_EQ(qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&ss), &a), 0);
	EXPECT_EQ(a.pad, 0);
	for (int i = 4; i < 16; i++)
		EXPECT_EQ(a.ip[i], 0);
	qg_addr parsed;
	ASSERT_EQ(qg_addr_parse("127.0.0.1:9", &parsed), 0);
	EXPECT_EQ(memcmp(&a, &parsed, sizeof(a)), 0);
}

TEST(Addr, FromSockaddrRejectsOtherFamilies)
{
	sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	qg_addr a;
	EXPECT_EQ(qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&ss), &a), -EAFNOSUPPORT);
	ss.ss_family = AF_UNSPEC;
	EXPECT_EQ(qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&ss), &a), -EAFNOSUPPORT);
}

TEST(Addr, Equality)
{
	qg_addr a, b;
	ASSERT_EQ(qg_addr_parse("1.2.3.4:80", &a), 0);
	b = Dirty();
	ASSERT_EQ(qg_addr_parse("1.2.3.4:80", &b), 0);
	EXPECT_TRUE(qg_addr_equal(&a, &b));

	ASSERT_EQ(qg_addr_parse("1.2.3.4:81", &b), 0);
	EXPECT_FALSE(qg_addr_equal(&a, &b)) << "port differs";
	ASSERT_EQ(qg_addr_parse("1.2.3.5:80", &b), 0);
	EXPECT_FALSE(qg_addr_equal(&a, &b)) << "address differs";

	// Same 16 address bytes, other family: IPv4 1.2.3.4 vs IPv6 0102:0304::.
	ASSERT_EQ(qg_addr_parse("[102:304::]:80", &b), 0);
	EXPECT_EQ(memcmp(a.ip, b.ip, 16), 0);
	EXPECT_FALSE(qg_addr_equal(&a, &b)) << "family differs";

	// Different spellings of one IPv6 address are equal.
	ASSERT_EQ(qg_addr_parse("[2001:db8:0:0:0:0:0:1]:5", &a), 0);
	ASSERT_EQ(qg_addr_parse("[2001:DB8::1]:5", &b), 0);
	EXPECT_TRUE(qg_addr_equal(&a, &b));
}

// ---- hash.h ----

TEST(Hash, DeterministicForASeed)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("10.0.0.1:1234", &a), 0);
	EXPECT_EQ(qg_hash_addr(&a, 42), qg_hash_addr(&a, 42));
	EXPECT_EQ(qg_hash_ip(&a, 42), qg_hash_ip(&a, 42));
	const char text[] = "the quick brown fox jumps over the lazy dog";
	for (size_t len = 0; len < sizeof(text); len++)
		EXPECT_EQ(qg_hash_bytes(text, len, 7), qg_hash_bytes(text, len, 7)) << len;
	// A copy at another address hashes the same: only the content matters.
	std::string copy(text);
	EXPECT_EQ(qg_hash_bytes(text, 20, 7), qg_hash_bytes(copy.data(), 20, 7));
	EXPECT_EQ(qg_hash_mix64(12345), qg_hash_mix64(12345));
}

TEST(Hash, DiffersAcrossSeeds)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("10.0.0.1:1234", &a), 0);
	std::set<uint64_t> by_addr, by_ip, by_bytes;
	for (uint64_t seed = 0; seed < 64; seed++) {
		by_addr.insert(qg_hash_addr(&a, seed * 0x9e3779b97f4a7c15ULL));
		by_ip.insert(qg_hash_ip(&a, seed * 0x9e3779b97f4a7c15ULL));
		by_bytes.insert(qg_hash_bytes("abc", 3, seed));
	}
	EXPECT_EQ(by_addr.size(), 64u);
	EXPECT_EQ(by_ip.size(), 64u);
	EXPECT_EQ(by_bytes.size(), 64u);
}

TEST(Hash, LengthAndContentMatter)
{
	uint8_t zeros[32] = {};
	std::set<uint64_t> seen;
	for (size_t len = 0; len <= sizeof(zeros); len++)
		seen.insert(qg_hash_bytes(zeros, len, 1));
	EXPECT_EQ(seen.size(), sizeof(zeros) + 1) << "all-zero inputs of different lengths collide";

	uint8_t buf[24] = {};
	uint64_t base = qg_hash_bytes(buf, sizeof(buf), 1);
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] ^= 1;
		EXPECT_NE(qg_hash_bytes(buf, sizeof(buf), 1), base) << "flipping byte " << i;
		buf[i] ^= 1;
	}
}

TEST(Hash, IpIgnoresPort)
{
	qg_addr a, b, c;
	ASSERT_EQ(qg_addr_parse("192.0.2.1:1000", &a), 0);
	ASSERT_EQ(qg_addr_parse("192.0.2.1:2000", &b), 0);
	ASSERT_EQ(qg_addr_parse("192.0.2.2:1000", &c), 0);
	EXPECT_EQ(qg_hash_ip(&a, 99), qg_hash_ip(&b, 99));
	EXPECT_NE(qg_hash_addr(&a, 99), qg_hash_addr(&b, 99));
	EXPECT_NE(qg_hash_ip(&a, 99), qg_hash_ip(&c, 99));

	ASSERT_EQ(qg_addr_parse("[2001:db8::1]:1", &a), 0);
	ASSERT_EQ(qg_addr_parse("[2001:db8::1]:65535", &b), 0);
	EXPECT_EQ(qg_hash_ip(&a, 5), qg_hash_ip(&b, 5));

	// Same address bytes, different family: the family is part of the IP hash.
	ASSERT_EQ(qg_addr_parse("1.2.3.4:80", &a), 0);
	ASSERT_EQ(qg_addr_parse("[102:304::]:80", &b), 0);
	EXPECT_NE(qg_hash_ip(&a, 5), qg_hash_ip(&b, 5));
}

// A buffer whose last byte is the last byte of a readable page, followed by a
// PROT_NONE page: reading past len faults.
class GuardPage
{
      public:
	GuardPage()
	{
		page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
		void *p =
			mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		base_ = static_cast<uint8_t *>(p);
		if (mprotect(base_ + page_, page_, PROT_NONE) != 0) {
			munmap(base_, 2 * page_);
			base_ = nullptr;
		}
	}
	~GuardPage()
	{
		if (base_)
			munmap(base_, 2 * page_);
	}
	bool ok() const
	{
		return base_ != nullptr;
	}
	// len bytes ending exactly at the guard page.
	uint8_t *tail(size_t len)
	{
		return base_ + page_ - len;
	}

      private:
	size_t page_ = 0;
	uint8_t *base_ = nullptr;
};

TEST(Hash, BytesReadsOnlyLen)
{
	GuardPage g;
	ASSERT_TRUE(g.ok()) << "mmap/mprotect failed: " << strerror(errno);
	uint8_t ref[64];
	for (size_t i = 0; i < sizeof(ref); i++)
		ref[i] = static_cast<uint8_t>(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(ref); len++) {
		uint8_t *p = g.tail(len);
		memcpy(p, ref, len);
		// Would SIGSEGV on any read beyond p + len.
		uint64_t h = qg_hash_bytes(p, len, 3);
		EXPECT_EQ(h, qg_hash_bytes(ref, len, 3)) << len;
	}
	// An endpoint at the very end of the page too (qg_hash_addr/qg_hash_ip).
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("[2001:db8::9]:77", &a), 0);
	qg_addr *q = reinterpret_cast<qg_addr *>(g.tail(sizeof(qg_addr)));
	memcpy(q, &a, sizeof(a));
	EXPECT_EQ(qg_hash_addr(q, 1), qg_hash_addr(&a, 1));
	EXPECT_EQ(qg_hash_ip(q, 1), qg_hash_ip(&a, 1));
	EXPECT_EQ(qg_hash_addr_fast(q, 1), qg_hash_addr_fast(&a, 1));
}

// The flow table's hash: every one of the 20 key bytes and every seed bit
// matter, and its low bits (the bucket index) spread like a random function's.
TEST(Hash, AddrFastUsesEveryByteAndSeedBit)
{
	qg_addr a;
	ASSERT_EQ(qg_addr_parse("[2001:db8::1:2]:4433", &a), 0);
	const uint64_t base = qg_hash_addr_fast(&a, 7);
	EXPECT_EQ(qg_hash_addr_fast(&a, 7), base);
	uint8_t *bytes = reinterpret_cast<uint8_t *>(&a);
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			bytes[i] ^= static_cast<uint8_t>(1u << bit);
			EXPECT_NE(qg_hash_addr_fast(&a, 7), base) << "byte " << i << " bit " << bit;
			bytes[i] ^= static_cast<uint8_t>(1u << bit);
		}
	}
	for (int bit = 0; bit < 64; bit++)
		EXPECT_NE(qg_hash_addr_fast(&a, 7 ^ (1ULL << bit)), base) << "seed bit " << bit;
}

TEST(Hash, AddrFastSpreadsSequentialClients)
{
	// 64k clients of one IPv4 network, consecutive ports and addresses (the
	// worst case for a weak hash), into 4096 buckets: every bucket used, none
	// far above the mean of 16 (a random function's maximum is about 35).
	const unsigned n = 65536, buckets = 4096;
	std::vector<unsigned> count(buckets);
	for (unsigned i = 0; i < n; i++) {
		qg_addr a{};
		a.family = AF_INET;
		a.ip[0] = 10;
		a.ip[2] = static_cast<uint8_t>(i >> 8);
		a.ip[3] = static_cast<uint8_t>(i >> 4);
		a.port = htons(static_cast<uint16_t>(40000 + (i & 15)));
		count[qg_hash_addr_fast(&a, 0x1234) & (buckets - 1)]++;
	}
	unsigned max = 0, empty = 0;
	for (unsigned c : count) {
		max = std::max(max, c);
		empty += c == 0;
	}
	EXPECT_EQ(empty, 0u);
	EXPECT_LE(max, 48u);
}

// The bridge's Bluetooth endpoints: distinct keys, readable in logs.
TEST(Addr, BluetoothEndpoints)
{
	const uint8_t dev[6] = { 0x00, 0x1A, 0x7D, 0xDA, 0x71, 0x14 };
	qg_addr a, b, c, le;
	char buf[QG_ADDR_STRLEN];

	qg_addr_bt_link(42, &a);
	qg_addr_bt_link(43, &b);
	EXPECT_TRUE(qg_addr_is_bt_link(&a));
	EXPECT_EQ(qg_addr_bt_link_id(&a), 42u);
	EXPECT_FALSE(qg_addr_equal(&a, &b));
	EXPECT_STREQ(qg_addr_format(&a, buf, sizeof(buf)), "bt-link:42");
	qg_addr_bt_path(dev, 0x1001, 1, &c);
	qg_addr_bt_path(dev, 0x0081, 2, &le);
	EXPECT_FALSE(qg_addr_is_bt_link(&c));
	EXPECT_EQ(c.family, AF_BLUETOOTH);
	EXPECT_STREQ(qg_addr_format(&c, buf, sizeof(buf)), "bt://00:1A:7D:DA:71:14/0x1001");
	EXPECT_STREQ(qg_addr_format(&le, buf, sizeof(buf)), "bt-le://00:1A:7D:DA:71:14/0x0081");
	EXPECT_EQ(c.pad, 0);
}

TEST(Hash, Mix64Avalanche)
{
	// Flipping one input bit flips roughly half the output bits on average.
	uint64_t total = 0;
	int n = 0;
	for (uint64_t x = 1; x < 200; x++) {
		for (int bit = 0; bit < 64; bit++) {
			uint64_t d = qg_hash_mix64(x) ^ qg_hash_mix64(x ^ (1ULL << bit));
			total += static_cast<uint64_t>(__builtin_popcountll(d));
			n++;
		}
	}
	double avg = static_cast<double>(total) / n;
	EXPECT_GT(avg, 28.0);
	EXPECT_LT(avg, 36.0);
}

} // namespace
