// SPDX-License-Identifier: BSD-3-Clause
// Least connections: weighted minimum, tie rotation, draining, edge cases.
#include <gtest/gtest.h>

#include <vector>

#include "qgate/lb.h"

namespace
{

TEST(LeastConn, PicksMinimum)
{
	const uint32_t active[] = { 5, 2, 7, 3 };
	const uint32_t weights[] = { 1, 1, 1, 1 };
	uint32_t cursor = 0;
	EXPECT_EQ(qg_lc_pick(active, weights, 4, &cursor), 1u);
	EXPECT_EQ(cursor, 1u);
	// Wherever the scan starts, the strict minimum wins.
	for (uint32_t c = 0; c < 4; c++) {
		cursor = c;
		EXPECT_EQ(qg_lc_pick(active, weights, 4, &cursor), 1u);
	}
}

TEST(LeastConn, WeightedComparison)
{
	// 10/5 = 2 beats 4/1 = 4 although 10 > 4.
	const uint32_t active[] = { 10, 4 };
	const uint32_t weights[] = { 5, 1 };
	uint32_t cursor = 0;
	EXPECT_EQ(qg_lc_pick(active, weights, 2, &cursor), 0u);

	// 7/3 vs 5/2: 14 < 15, so member 0.
	const uint32_t a2[] = { 7, 5 };
	const uint32_t w2[] = { 3, 2 };
	cursor = 0;
	EXPECT_EQ(qg_lc_pick(a2, w2, 2, &cursor), 0u);

	// Products beyond 32 bits: (2^32-1)/(2^32-1) = 1 < (2^32-1)/(2^32-2).
	const uint32_t a3[] = { UINT32_MAX, UINT32_MAX };
	const uint32_t w3[] = { UINT32_MAX - 1, UINT32_MAX };
	cursor = 0;
	EXPECT_EQ(qg_lc_pick(a3, w3, 2, &cursor), 1u);
}

TEST(LeastConn, TiesRotate)
{
	const uint32_t active[] = { 4, 4, 4, 4 };
	const uint32_t weights[] = { 2, 2, 2, 2 };
	uint32_t cursor = 0;
	std::vector<uint32_t> got;
	for (int i = 0; i < 8; i++)
		got.push_back(qg_lc_pick(active, weights, 4, &cursor));
	EXPECT_EQ(got, (std::vector<uint32_t>{ 1, 2, 3, 0, 1, 2, 3, 0 }));

	// Equal ratios with different weights tie too (2/1 == 6/3).
	const uint32_t a2[] = { 2, 9, 6 };
	const uint32_t w2[] = { 1, 1, 3 };
	cursor = 0;
	EXPECT_EQ(qg_lc_pick(a2, w2, 3, &cursor), 2u);
	EXPECT_EQ(qg_lc_pick(a2, w2, 3, &cursor), 0u);
	EXPECT_EQ(qg_lc_pick(a2, w2, 3, &cursor), 2u);

	// Only the tied minimum members rotate.
	const uint32_t a3[] = { 1, 0, 1, 0 };
	const uint32_t w3[] = { 1, 1, 1, 1 };
	cursor = 0;
	got.clear();
	for (int i = 0; i < 4; i++)
		got.push_back(qg_lc_pick(a3, w3, 4, &cursor));
	EXPECT_EQ(got, (std::vector<uint32_t>{ 1, 3, 1, 3 }));
}

TEST(LeastConn, WeightZeroExcluded)
{
	const uint32_t active[] = { 0, 5, 0 };
	const uint32_t weights[] = { 0, 1, 0 };
	uint32_t cursor = 2;
	EXPECT_EQ(qg_lc_pick(active, weights, 3, &cursor), 1u);
	EXPECT_EQ(cursor, 1u);
}

TEST(LeastConn, NoneCases)
{
	uint32_t cursor = 1;
	EXPECT_EQ(qg_lc_pick(nullptr, nullptr, 0, &cursor), QG_LB_NONE);
	const uint32_t active[] = { 0, 0 };
	const uint32_t weights[] = { 0, 0 };
	EXPECT_EQ(qg_lc_pick(active, weights, 2, &cursor), QG_LB_NONE);
	EXPECT_EQ(cursor, 1u); // untouched when nothing is picked
}

TEST(LeastConn, CursorOutOfRangeOrNull)
{
	const uint32_t active[] = { 1, 1, 1 };
	const uint32_t weights[] = { 1, 1, 1 };
	uint32_t cursor = 1000; // pool shrank since the last pick
	uint32_t p = qg_lc_pick(active, weights, 3, &cursor);
	EXPECT_LT(p, 3u);
	EXPECT_EQ(cursor, p);
	cursor = UINT32_MAX;
	EXPECT_LT(qg_lc_pick(active, weights, 3, &cursor), 3u);
	EXPECT_EQ(qg_lc_pick(active, weights, 3, nullptr), 0u);
}

// Driving the picker with its own results spreads flows per weight.
TEST(LeastConn, ConvergesToWeights)
{
	std::vector<uint32_t> active = { 0, 0, 0, 0 };
	const std::vector<uint32_t> weights = { 1, 2, 3, 0 };
	uint32_t cursor = 0;
	for (int i = 0; i < 600; i++) {
		uint32_t p = qg_lc_pick(active.data(), weights.data(), 4, &cursor);
		ASSERT_LT(p, 3u);
		active[p]++;
	}
	EXPECT_EQ(active, (std::vector<uint32_t>{ 100, 200, 300, 0 }));
}

} // namespace
