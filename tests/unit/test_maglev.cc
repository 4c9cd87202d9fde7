// SPDX-License-Identifier: BSD-3-Clause
// Weighted Maglev: balance, disruption on removal, order independence,
// draining, argument checks and lookup distribution.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "qgate/lb.h"

namespace
{

constexpr uint32_t kM = QG_LB_MAGLEV_DEFAULT_SIZE;

qg_addr v4(uint32_t host, uint16_t port)
{
	qg_addr a;
	memset(&a, 0, sizeof(a));
	uint32_t ip = htonl(0x0a000000u | host); // 10.0.0.0/8
	memcpy(a.ip, &ip, 4);
	a.port = htons(port);
	a.family = AF_INET;
	return a;
}

qg_addr v6(uint32_t host, uint16_t port)
{
	qg_addr a;
	memset(&a, 0, sizeof(a));
	a.ip[0] = 0x20; // 2001:db8::/32
	a.ip[1] = 0x01;
	a.ip[2] = 0x0d;
	a.ip[3] = 0xb8;
	uint32_t h = htonl(host);
	memcpy(a.ip + 12, &h, 4);
	a.port = htons(port);
	a.family = AF_INET6;
	return a;
}

std::vector<qg_lb_member> members(uint32_t n, uint32_t weight = 1)
{
	std::vector<qg_lb_member> m(n);
	for (uint32_t i = 0; i < n; i++) {
		m[i].key = v4(i + 1, 8443);
		m[i].weight = weight;
	}
	return m;
}

// RAII holder so a failed assertion does not leak under ASan.
struct Table {
	qg_maglev *t = nullptr;
	~Table()
	{
		qg_maglev_destroy(t);
	}
	int build(const std::vector<qg_lb_member> &m, uint32_t size = kM)
	{
		qg_maglev_destroy(t);
		t = nullptr;
		return qg_maglev_create(m.data(), (uint32_t)m.size(), size, &t);
	}
};

std::vector<uint32_t> counts(const qg_maglev *t)
{
	std::vector<uint32_t> c(t->n_members, 0);
	for (uint32_t s = 0; s < t->size; s++) {
		EXPECT_LT(t->entry[s], t->n_members) << "slot " << s;
		if (t->entry[s] < t->n_members)
			c[t->entry[s]]++;
	}
	return c;
}

// Largest |share - expected| / expected over active members.
double worst_rel_error(const std::vector<qg_lb_member> &m, const std::vector<uint32_t> &c, uint32_t size)
{
	double total = 0, worst = 0;
	for (const auto &x : m)
		total += x.weight;
	for (size_t i = 0; i < m.size(); i++) {
		if (!m[i].weight)
			continue;
		double expect = size * (double)m[i].weight / total;
		worst = std::max(worst, std::fabs(c[i] - expect) / expect);
	}
	return worst;
}

// Key of the owner of every slot: compares tables built from differently
// indexed member lists.
std::vector<qg_addr> owners(const qg_maglev *t, const std::vector<qg_lb_member> &m)
{
	std::vector<qg_addr> o(t->size);
	for (uint32_t s = 0; s < t->size; s++)
		o[s] = m[t->entry[s]].key;
	return o;
}

TEST(Maglev, PrimeChecks)
{
	for (uint32_t p : { 2u, 3u, 5u, 7u, 11u, 13u, 251u, 65521u, 65537u, 1000003u, 4294967291u })
		EXPECT_EQ(qg_lb_is_prime(p), 1) << p;
	for (uint32_t c : { 0u, 1u, 4u, 9u, 25u, 49u, 65535u, 65536u, 65539u * 3u, 4294967295u, 4294967293u })
		EXPECT_EQ(qg_lb_is_prime(c), 0) << c;
	// Square of a prime near the 32-bit limit: the trial bound must reach sqrt(n).
	EXPECT_EQ(qg_lb_is_prime(65521u * 65521u), 0);
	uint32_t primes = 0;
	for (uint32_t i = 0; i < 1000; i++)
		primes += qg_lb_is_prime(i);
	EXPECT_EQ(primes, 168u);
}

TEST(Maglev, NonPrimeSizeRejected)
{
	auto m = members(10);
	Table t;
	EXPECT_EQ(t.build(m, 65536), -EINVAL);
	EXPECT_EQ(t.build(m, 1), -EINVAL);
	EXPECT_EQ(t.build(m, 0), -EINVAL);
	// Prime but absurd (4 GiB of entries): refused before allocating.
	EXPECT_EQ(t.build(m, 2147483647u), -EINVAL);
	EXPECT_EQ(t.t, nullptr);
	EXPECT_EQ(t.build(m, 65521), 0);
}

TEST(Maglev, SizeBelowActiveMembersRejected)
{
	auto m = members(20);
	Table t;
	EXPECT_EQ(t.build(m, 19), -EINVAL);
	// Draining members need no slot, so only the active ones count.
	for (int i = 0; i < 5; i++)
		m[i].weight = 0;
	ASSERT_EQ(t.build(m, 17), 0);
	auto c = counts(t.t);
	for (int i = 5; i < 20; i++)
		EXPECT_GE(c[i], 1u);
}

TEST(Maglev, TooManyMembersRejected)
{
	std::vector<qg_lb_member> m(65536);
	for (uint32_t i = 0; i < m.size(); i++) {
		m[i].key = v4(i + 1, 1);
		m[i].weight = 1;
	}
	Table t;
	EXPECT_EQ(t.build(m, 131071), -EINVAL);
	m.pop_back(); // 65535 is the most a uint16 entry can name
	EXPECT_EQ(t.build(m, 131071), 0);
}

TEST(Maglev, BadArguments)
{
	qg_maglev *t = nullptr;
	auto m = members(3);
	EXPECT_EQ(qg_maglev_create(nullptr, 3, kM, &t), -EINVAL);
	EXPECT_EQ(qg_maglev_create(m.data(), 3, kM, nullptr), -EINVAL);
	qg_maglev_destroy(nullptr);
}

TEST(Maglev, DuplicateKeysRejected)
{
	auto m = members(50);
	m[40].key = m[7].key;
	Table t;
	EXPECT_EQ(t.build(m), -EINVAL);
	// Draining or not, two members with one key are a configuration error.
	m[40].weight = 0;
	EXPECT_EQ(t.build(m), -EINVAL);
	// Same address, different port: distinct backends.
	m[40].key.port = htons(9999);
	EXPECT_EQ(t.build(m), 0);
}

// 65537 / 1000 = 65.537 entries each: Maglev hands out 65 or 66, which is
// within 0.82% of the share, so 1% relative holds exactly.
TEST(Maglev, EqualWeights1000Within1Percent)
{
	auto m = members(1000);
	Table t;
	ASSERT_EQ(t.build(m), 0);
	EXPECT_EQ(t.t->size, kM);
	EXPECT_EQ(t.t->n_members, 1000u);
	EXPECT_EQ(t.t->n_active, 1000u);
	auto c = counts(t.t);
	for (uint32_t i = 0; i < 1000; i++)
		EXPECT_TRUE(c[i] == 65 || c[i] == 66) << i << ": " << c[i];
	EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0u), kM);
	EXPECT_LE(worst_rel_error(m, c, kM), 0.01);
}

// Any integer split is at least this far off in relative terms: each
// member's count is at best the nearer of floor(e) and ceil(e).
double rounding_lower_bound(const std::vector<qg_lb_member> &m, uint32_t size)
{
	double total = 0, lb = 0;
	for (const auto &x : m)
		total += x.weight;
	for (const auto &x : m) {
		if (!x.weight)
			continue;
		double e = size * (double)x.weight / total;
		double f = e - std::floor(e);
		lb = std::max(lb, std::min(f, 1 - f) / e);
	}
	return lb;
}

// Mixed weights 1..5: weight 1 is worth ~22 entries, so one entry is ~4.6%
// of its share. The quotas choose which members round up so that the worst
// relative error is minimal, which meets 1% for the 1,2,3,4,5 pattern and
// most random draws. It cannot always: with seed 2 (total weight 3030) a
// weight-1 share is 21.629 entries, and 22 is 1.71% off while 21 is 2.9%
// off, so no table of 65537 entries gets within 1%. For such draws the test
// asserts the tightest bound there is: no member further off than the
// nearer integer is for the worst-placed member (rounding_lower_bound), and
// every count within one entry of its exact share.
TEST(Maglev, MixedWeights1000Within1Percent)
{
	{
		auto m = members(1000);
		for (uint32_t i = 0; i < 1000; i++)
			m[i].weight = 1 + i % 5;
		Table t;
		ASSERT_EQ(t.build(m), 0);
		EXPECT_LE(worst_rel_error(m, counts(t.t), kM), 0.01);
	}
	uint32_t within_1pct = 0;
	for (uint32_t seed = 1; seed <= 20; seed++) {
		std::mt19937 rng(seed);
		auto m = members(1000);
		double total = 0;
		for (auto &x : m) {
			x.weight = 1 + rng() % 5;
			total += x.weight;
		}
		Table t;
		ASSERT_EQ(t.build(m), 0);
		auto c = counts(t.t);
		for (uint32_t i = 0; i < 1000; i++) {
			double expect = kM * m[i].weight / total;
			EXPECT_LT(std::fabs(c[i] - expect), 1.0) << i;
		}
		double worst = worst_rel_error(m, c, kM);
		double lb = rounding_lower_bound(m, kM);
		EXPECT_LE(worst, std::max(0.01, lb) + 1e-12) << "seed " << seed << " lower bound " << lb;
		if (lb <= 0.01) {
			EXPECT_LE(worst, 0.01) << "seed " << seed;
		}
		within_1pct += worst <= 0.01;
		RecordProperty("worst_rel_error_seed" + std::to_string(seed), std::to_string(worst));
	}
	// Documents how often 1% is reachable at all for random 1..5 weights.
	RecordProperty("seeds_within_1pct", within_1pct);
}

// Wide weight range: 1% relative is out of reach for weight 1 (1.3 entries
// each), so the bound asserted is the apportionment one: every member is
// within one entry of its exact share.
TEST(Maglev, WideWeightsWithinOneEntry)
{
	std::mt19937 rng(7);
	auto m = members(500);
	double total = 0;
	for (auto &x : m) {
		x.weight = 1 + rng() % 1000;
		total += x.weight;
	}
	Table t;
	ASSERT_EQ(t.build(m), 0);
	auto c = counts(t.t);
	for (uint32_t i = 0; i < m.size(); i++)
		EXPECT_LT(std::fabs(c[i] - kM * m[i].weight / total), 1.0) << i;
}

// A share that rounds to zero still gets one entry: an active backend
// must see some traffic.
TEST(Maglev, TinyWeightStillOwnsAnEntry)
{
	std::vector<qg_lb_member> m = members(4);
	m[0].weight = 1;
	m[1].weight = 1000000;
	m[2].weight = 3;
	m[3].weight = 4000000000u;
	Table t;
	ASSERT_EQ(t.build(m, 7), 0);
	auto c = counts(t.t);
	EXPECT_EQ(c[0], 1u);
	EXPECT_EQ(c[2], 1u);
	EXPECT_GE(c[1], 1u);
	EXPECT_GT(c[3], c[1]);
	EXPECT_EQ(c[0] + c[1] + c[2] + c[3], 7u);

	// Every member pinned but one.
	m = members(100);
	m[99].weight = UINT32_MAX;
	ASSERT_EQ(t.build(m, 101), 0);
	c = counts(t.t);
	for (int i = 0; i < 99; i++)
		EXPECT_EQ(c[i], 1u);
	EXPECT_EQ(c[99], 2u);

	// size == active members: one entry each, whatever the weights.
	m = members(13);
	for (uint32_t i = 0; i < 13; i++)
		m[i].weight = 1 + i * 1000;
	ASSERT_EQ(t.build(m, 13), 0);
	c = counts(t.t);
	for (int i = 0; i < 13; i++)
		EXPECT_EQ(c[i], 1u);
}

// Removing 1 of 100 backends: its ~1% of entries move, and of the others'
// entries at most 1% of the table changes owner.
TEST(Maglev, RemovalDisruption)
{
	for (uint32_t removed : { 0u, 37u, 99u }) {
		auto before = members(100);
		auto after = before;
		after.erase(after.begin() + removed);
		Table a, b;
		ASSERT_EQ(a.build(before), 0);
		ASSERT_EQ(b.build(after), 0);
		auto oa = owners(a.t, before), ob = owners(b.t, after);
		uint32_t moved_other = 0, moved = 0;
		for (uint32_t s = 0; s < kM; s++) {
			bool changed = !qg_addr_equal(&oa[s], &ob[s]);
			moved += changed;
			if (a.t->entry[s] != removed)
				moved_other += changed;
			EXPECT_FALSE(qg_addr_equal(&ob[s], &before[removed].key));
		}
		EXPECT_LE(moved_other, kM / 100) << "removed " << removed;
		EXPECT_LE(moved, kM / 100 + kM / 100) << "removed " << removed;
		RecordProperty("moved_other_" + std::to_string(removed), moved_other);
	}
}

// Same disruption bound with weights, and when a member is added.
TEST(Maglev, WeightedRemovalAndAddDisruption)
{
	auto before = members(101);
	for (uint32_t i = 0; i < before.size(); i++)
		before[i].weight = 1 + i % 3;
	auto after = before;
	after.pop_back();
	Table a, b;
	ASSERT_EQ(a.build(before), 0);
	ASSERT_EQ(b.build(after), 0);
	auto oa = owners(a.t, before), ob = owners(b.t, after);
	uint32_t moved_other = 0;
	for (uint32_t s = 0; s < kM; s++) {
		if (a.t->entry[s] != 100)
			moved_other += !qg_addr_equal(&oa[s], &ob[s]);
	}
	EXPECT_LE(moved_other, kM / 100);
}

TEST(Maglev, OrderIndependent)
{
	for (bool weighted : { false, true }) {
		auto m = members(300);
		for (uint32_t i = 0; i < m.size(); i++) {
			if (weighted)
				m[i].weight = 1 + (i * 7) % 5;
			if (i % 2)
				m[i].key = v6(i, 443); // mix families
		}
		m[10].weight = 0;
		Table ref;
		ASSERT_EQ(ref.build(m), 0);
		auto oref = owners(ref.t, m);
		std::mt19937 rng(42);
		for (int round = 0; round < 5; round++) {
			auto s = m;
			std::shuffle(s.begin(), s.end(), rng);
			Table t;
			ASSERT_EQ(t.build(s), 0);
			auto o = owners(t.t, s);
			for (uint32_t k = 0; k < kM; k++)
				ASSERT_TRUE(qg_addr_equal(&o[k], &oref[k]))
					<< "slot " << k << " round " << round;
		}
	}
}

TEST(Maglev, Reproducible)
{
	auto m = members(1000);
	Table a, b;
	ASSERT_EQ(a.build(m), 0);
	ASSERT_EQ(b.build(m), 0);
	EXPECT_EQ(memcmp(a.t->entry, b.t->entry, kM * sizeof(uint16_t)), 0);
}

TEST(Maglev, WeightZeroOwnsNothing)
{
	auto m = members(100);
	for (uint32_t i = 0; i < 100; i += 10)
		m[i].weight = 0;
	Table t;
	ASSERT_EQ(t.build(m), 0);
	EXPECT_EQ(t.t->n_members, 100u);
	EXPECT_EQ(t.t->n_active, 90u);
	auto c = counts(t.t);
	for (uint32_t i = 0; i < 100; i++) {
		if (i % 10 == 0)
			EXPECT_EQ(c[i], 0u) << i;
		else
			EXPECT_GT(c[i], 0u) << i;
	}
	EXPECT_LE(worst_rel_error(m, c, kM), 0.01);
}

// Draining a member (weight 0) gives exactly the table of the pool without
// it: it keeps no entry, and the others move no more than on removal.
TEST(Maglev, DrainingKeepsNothing)
{
	auto m = members(100);
	Table full;
	ASSERT_EQ(full.build(m), 0);
	m[42].weight = 0;
	Table drained;
	ASSERT_EQ(drained.build(m), 0);
	auto removed = m;
	removed.erase(removed.begin() + 42);
	Table gone;
	ASSERT_EQ(gone.build(removed), 0);
	auto od = owners(drained.t, m), og = owners(gone.t, removed);
	for (uint32_t s = 0; s < kM; s++) {
		ASSERT_NE(drained.t->entry[s], 42u);
		ASSERT_TRUE(qg_addr_equal(&od[s], &og[s])) << s;
	}
}

TEST(Maglev, AllZeroWeights)
{
	auto m = members(10, 0);
	Table t;
	ASSERT_EQ(t.build(m), 0);
	EXPECT_EQ(t.t->n_active, 0u);
	std::mt19937_64 rng(1);
	for (int i = 0; i < 1000; i++)
		EXPECT_EQ(qg_maglev_lookup(t.t, rng()), QG_LB_NONE);
}

TEST(Maglev, EmptyPool)
{
	qg_maglev *t = nullptr;
	ASSERT_EQ(qg_maglev_create(nullptr, 0, kM, &t), 0);
	EXPECT_EQ(qg_maglev_lookup(t, 12345), QG_LB_NONE);
	qg_maglev_destroy(t);
}

TEST(Maglev, Ipv6Keys)
{
	std::vector<qg_lb_member> m(1000);
	for (uint32_t i = 0; i < m.size(); i++) {
		// Keys differing only in the low address bits and the port.
		m[i].key = v6(i / 4, (uint16_t)(443 + i % 4));
		m[i].weight = 1;
	}
	Table t;
	ASSERT_EQ(t.build(m), 0);
	auto c = counts(t.t);
	for (uint32_t i = 0; i < m.size(); i++)
		EXPECT_TRUE(c[i] == 65 || c[i] == 66) << i;

	// An IPv4 and an IPv6 member with the same leading bytes are distinct.
	std::vector<qg_lb_member> mix(2);
	mix[0].key = v4(1, 80);
	mix[1].key = mix[0].key;
	mix[1].key.family = AF_INET6;
	mix[0].weight = mix[1].weight = 1;
	ASSERT_EQ(t.build(mix), 0);
	c = counts(t.t);
	EXPECT_EQ(c[0] + c[1], kM);
	EXPECT_LE(std::abs((int)c[0] - (int)c[1]), 1);
}

// Lookups over 1M random flow hashes land on members per their weights.
TEST(Maglev, LookupDistribution)
{
	auto m = members(20);
	double total = 0;
	for (uint32_t i = 0; i < m.size(); i++) {
		m[i].weight = 1 + i % 5;
		total += m[i].weight;
	}
	m[3].weight = 0; // draining: must get nothing
	total -= 4;
	Table t;
	ASSERT_EQ(t.build(m), 0);
	std::vector<uint32_t> hits(m.size(), 0);
	std::mt19937_64 rng(2024);
	const uint32_t n = 1000000;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = qg_maglev_lookup(t.t, rng());
		ASSERT_LT(b, m.size());
		hits[b]++;
	}
	EXPECT_EQ(hits[3], 0u);
	for (uint32_t i = 0; i < m.size(); i++) {
		if (!m[i].weight)
			continue;
		double expect = n * m[i].weight / total;
		// ~17k..83k hits each: sampling noise is under 1%, 3% is generous.
		EXPECT_NEAR(hits[i], expect, 0.03 * expect) << i;
	}
}

} // namespace
