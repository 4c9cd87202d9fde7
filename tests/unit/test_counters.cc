// SPDX-License-Identifier: BSD-3-Clause
// The counter table: names, descriptions, kinds, and summing worker blocks.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "qgate/counters.h"
}

namespace
{

qg_ctr_id Id(unsigned i)
{
	return static_cast<qg_ctr_id>(i);
}

TEST(Counters, ThereAreCounters)
{
	EXPECT_GT(static_cast<unsigned>(QG_CTR__COUNT), 0u);
	EXPECT_EQ(static_cast<unsigned>(QG_CTR_RX_CLIENT), 0u) << "the enum starts at 0";
}

TEST(Counters, NamesAreUniqueNonEmptyAndLabelSafe)
{
	std::set<std::string> names;
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		const char *name = qg_ctr_name(Id(i));
		ASSERT_NE(name, nullptr) << "counter " << i;
		std::string n(name);
		EXPECT_FALSE(n.empty()) << "counter " << i;
		EXPECT_NE(n, "?") << "counter " << i;
		EXPECT_TRUE(names.insert(n).second) << "duplicate name '" << n << "'";
		for (char c : n)
			EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
				<< "counter '" << n << "' has '" << c << "', not [a-z0-9_]";
		// A Prometheus metric/label name must not start with a digit.
		if (!n.empty()) {
			EXPECT_FALSE(n[0] >= '0' && n[0] <= '9') << n;
			EXPECT_NE(n[0], '_') << n << ": leading '_' is reserved";
		}
	}
	EXPECT_EQ(names.size(), static_cast<size_t>(QG_CTR__COUNT));
}

TEST(Counters, DescriptionsAreUniqueAndNonEmpty)
{
	std::set<std::string> descs;
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		const char *desc = qg_ctr_desc(Id(i));
		ASSERT_NE(desc, nullptr) << "counter " << i;
		std::string d(desc);
		EXPECT_FALSE(d.empty()) << qg_ctr_name(Id(i));
		EXPECT_NE(d, "?") << qg_ctr_name(Id(i));
		EXPECT_TRUE(descs.insert(d).second) << "duplicate description '" << d << "'";
		EXPECT_EQ(d.find('\n'), std::string::npos) << "descriptions are one line: " << d;
	}
}

TEST(Counters, KindsAreValid)
{
	unsigned per_kind[4] = {};
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		int k = qg_ctr_kind(Id(i));
		EXPECT_GE(k, QG_CTR_KIND_TRAFFIC) << qg_ctr_name(Id(i));
		EXPECT_LE(k, QG_CTR_KIND_ERROR) << qg_ctr_name(Id(i));
		if (k >= 0 && k <= 3)
			per_kind[k]++;
	}
	for (int k = 0; k < 4; k++)
		EXPECT_GT(per_kind[k], 0u) << "no counter of kind " << k;
}

TEST(Counters, KnownEntries)
{
	EXPECT_STREQ(qg_ctr_name(QG_CTR_RX_CLIENT), "rx_client");
	EXPECT_EQ(qg_ctr_kind(QG_CTR_RX_CLIENT), QG_CTR_KIND_TRAFFIC);
	EXPECT_STREQ(qg_ctr_name(QG_CTR_DROP_OVERSIZE), "oversize");
	EXPECT_EQ(qg_ctr_kind(QG_CTR_DROP_OVERSIZE), QG_CTR_KIND_DROP);
	EXPECT_STREQ(qg_ctr_name(QG_CTR_FLOW_CREATED), "flows_created");
	EXPECT_EQ(qg_ctr_kind(QG_CTR_FLOW_CREATED), QG_CTR_KIND_FLOW);
	EXPECT_STREQ(qg_ctr_name(QG_CTR_ERR_SQ_FULL), "sq_full");
	EXPECT_EQ(qg_ctr_kind(QG_CTR_ERR_SQ_FULL), QG_CTR_KIND_ERROR);
}

TEST(Counters, OutOfRangeIds)
{
	// Cast at the call: no enum object ever holds a value outside the enumeration's range.
	const long long bad[] = { QG_CTR__COUNT, QG_CTR__COUNT + 1, 1000, -1, INT32_MIN, INT32_MAX };
	for (long long v : bad) {
		EXPECT_STREQ(qg_ctr_name(static_cast<qg_ctr_id>(v)), "?") << v;
		EXPECT_STREQ(qg_ctr_desc(static_cast<qg_ctr_id>(v)), "?") << v;
		EXPECT_EQ(qg_ctr_kind(static_cast<qg_ctr_id>(v)), -1) << v;
	}
}

TEST(Counters, BlockIsCacheLineAligned)
{
	EXPECT_EQ(alignof(qg_ctr_block), static_cast<size_t>(QG_CACHE_LINE));
	EXPECT_EQ(sizeof(qg_ctr_block) % QG_CACHE_LINE, 0u);
	EXPECT_GE(sizeof(qg_ctr_block), sizeof(uint64_t) * QG_CTR__COUNT);
	// Consecutive blocks (one per worker) never share a cache line.
	std::vector<qg_ctr_block> blocks(3);
	for (const auto &b : blocks)
		EXPECT_EQ(reinterpret_cast<uintptr_t>(&b) % QG_CACHE_LINE, 0u);
	auto heap = std::make_unique<qg_ctr_block>();
	EXPECT_EQ(reinterpret_cast<uintptr_t>(heap.get()) % QG_CACHE_LINE, 0u);
}

TEST(Counters, AddAndRead)
{
	qg_ctr_block b;
	memset(&b, 0, sizeof(b));
	qg_ctr_add(&b, QG_CTR_RX_CLIENT, 1);
	qg_ctr_add(&b, QG_CTR_RX_CLIENT, 41);
	qg_ctr_add(&b, QG_CTR_ERR_SQ_FULL, 7);
	EXPECT_EQ(qg_ctr_read(&b, QG_CTR_RX_CLIENT), 42u);
	EXPECT_EQ(qg_ctr_read(&b, QG_CTR_ERR_SQ_FULL), 7u);
	EXPECT_EQ(qg_ctr_read(&b, QG_CTR_TX_CLIENT), 0u);
}

TEST(Counters, SumOfSeveralBlocks)
{
	const unsigned n = 5;
	std::vector<qg_ctr_block> blocks(n);
	for (unsigned w = 0; w < n; w++) {
		memset(&blocks[w], 0, sizeof(blocks[w]));
		for (unsigned i = 0; i < QG_CTR__COUNT; i++)
			qg_ctr_add(&blocks[w], Id(i), (w + 1) * 1000ULL + i);
	}
	qg_ctr_block out;
	memset(&out, 0xff, sizeof(out)); // qg_ctr_sum must clear it first
	qg_ctr_sum(blocks.data(), n, &out);
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		uint64_t want = 0;
		for (unsigned w = 0; w < n; w++)
			want += (w + 1) * 1000ULL + i;
		EXPECT_EQ(out.v[i], want) << qg_ctr_name(Id(i));
	}

	// A subset of the blocks.
	qg_ctr_sum(blocks.data() + 1, 2, &out);
	EXPECT_EQ(out.v[QG_CTR_RX_CLIENT], 2000u + 3000u);
}

TEST(Counters, SumOfNothingIsZero)
{
	qg_ctr_block out;
	memset(&out, 0xff, sizeof(out));
	qg_ctr_sum(nullptr, 0, &out);
	for (unsigned i = 0; i < QG_CTR__COUNT; i++)
		EXPECT_EQ(out.v[i], 0u) << qg_ctr_name(Id(i));
}

TEST(Counters, SumDoesNotOverflowIntoNeighbours)
{
	qg_ctr_block blocks[2];
	memset(blocks, 0, sizeof(blocks));
	qg_ctr_add(&blocks[0], QG_CTR_RX_BYTES, UINT64_C(1) << 63);
	qg_ctr_add(&blocks[1], QG_CTR_RX_BYTES, (UINT64_C(1) << 63) + 5); // wraps modulo 2^64
	qg_ctr_block out;
	qg_ctr_sum(blocks, 2, &out);
	EXPECT_EQ(out.v[QG_CTR_RX_BYTES], 5u);
	EXPECT_EQ(out.v[QG_CTR_TX_BYTES], 0u);
	EXPECT_EQ(out.v[QG_CTR_TX_CLIENT], 0u);
}

} // namespace
