// SPDX-License-Identifier: BSD-3-Clause
// Smooth weighted round robin: exact ratios, interleaving, draining, reloads.
#include <gtest/gtest.h>

#include <cerrno>
#include <numeric>
#include <vector>

#include "qgate/lb.h"

namespace
{

struct Wrr {
	qg_wrr *w = nullptr;
	~Wrr()
	{
		qg_wrr_destroy(w);
	}
};

std::vector<uint32_t> picks(qg_wrr *w, size_t count)
{
	std::vector<uint32_t> out;
	for (size_t i = 0; i < count; i++)
		out.push_back(qg_wrr_next(w));
	return out;
}

TEST(Wrr, ExactRatioOverACycle)
{
	const std::vector<std::vector<uint32_t>> cases = {
		{ 1 },
		{ 1, 1, 1 },
		{ 5, 1, 1 },
		{ 3, 2, 1 },
		{ 10, 0, 5, 7 },
		{ 100, 1 },
		{ 2, 3, 5, 7, 11, 13 },
		{ 0, 4 },
	};
	for (const auto &weights : cases) {
		Wrr w;
		ASSERT_EQ(qg_wrr_create(weights.data(), (uint32_t)weights.size(), &w.w), 0);
		uint64_t cycle = std::accumulate(weights.begin(), weights.end(), 0ull);
		auto first = picks(w.w, cycle);
		std::vector<uint32_t> count(weights.size(), 0);
		for (uint32_t p : first) {
			ASSERT_LT(p, weights.size());
			count[p]++;
		}
		for (size_t i = 0; i < weights.size(); i++)
			EXPECT_EQ(count[i], weights[i]) << "member " << i;
		// Credits are back at zero after a cycle: the next cycle repeats.
		EXPECT_EQ(picks(w.w, cycle), first);
	}
}

TEST(Wrr, SmoothInterleaving)
{
	const uint32_t weights[] = { 5, 1, 1 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights, 3, &w.w), 0);
	// a a b a c a a (nginx's documented sequence), not a a a a a b c.
	const std::vector<uint32_t> expect = { 0, 0, 1, 0, 2, 0, 0 };
	EXPECT_EQ(picks(w.w, 7), expect);
	EXPECT_EQ(picks(w.w, 7), expect);
}

TEST(Wrr, EqualWeightsRoundRobin)
{
	const uint32_t weights[] = { 3, 3, 3, 3 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights, 4, &w.w), 0);
	EXPECT_EQ(picks(w.w, 8), (std::vector<uint32_t>{ 0, 1, 2, 3, 0, 1, 2, 3 }));
}

// In any window of picks a member gets its share within about one pick:
// smoothness in general, not only for 5,1,1.
TEST(Wrr, SmoothBoundedLag)
{
	const std::vector<uint32_t> weights = { 7, 3, 2, 1, 1 };
	const double total = 14;
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights.data(), 5, &w.w), 0);
	std::vector<uint32_t> count(5, 0);
	for (uint32_t k = 1; k <= 140; k++) {
		count[qg_wrr_next(w.w)]++;
		for (size_t i = 0; i < 5; i++)
			EXPECT_LE(std::abs(count[i] - k * weights[i] / total), 1.0)
				<< "pick " << k << " member " << i;
	}
}

TEST(Wrr, WeightZeroNeverPicked)
{
	const uint32_t weights[] = { 0, 3, 0, 2, 0 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights, 5, &w.w), 0);
	for (uint32_t p : picks(w.w, 1000))
		EXPECT_TRUE(p == 1 || p == 3) << p;
}

TEST(Wrr, AllZeroIsNone)
{
	const uint32_t weights[] = { 0, 0, 0 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights, 3, &w.w), 0);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(qg_wrr_next(w.w), QG_LB_NONE);
}

TEST(Wrr, EmptyIsNone)
{
	Wrr w;
	ASSERT_EQ(qg_wrr_create(nullptr, 0, &w.w), 0);
	EXPECT_EQ(qg_wrr_next(w.w), QG_LB_NONE);
}

TEST(Wrr, BadArguments)
{
	qg_wrr *w = nullptr;
	const uint32_t weights[] = { 1, 2 };
	EXPECT_EQ(qg_wrr_create(nullptr, 2, &w), -EINVAL);
	EXPECT_EQ(qg_wrr_create(weights, 2, nullptr), -EINVAL);
	ASSERT_EQ(qg_wrr_create(weights, 2, &w), 0);
	EXPECT_EQ(qg_wrr_set_weights(w, weights, 3), -EINVAL);
	EXPECT_EQ(qg_wrr_set_weights(w, nullptr, 2), -EINVAL);
	EXPECT_EQ(qg_wrr_set_weights(nullptr, weights, 2), -EINVAL);
	qg_wrr_destroy(w);
	qg_wrr_destroy(nullptr);
}

TEST(Wrr, SetWeights)
{
	const uint32_t a[] = { 1, 1, 1 };
	const uint32_t b[] = { 5, 1, 1 };
	const uint32_t drain[] = { 0, 1, 1 };
	const uint32_t none[] = { 0, 0, 0 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(a, 3, &w.w), 0);
	picks(w.w, 2); // leave credits mid-cycle
	ASSERT_EQ(qg_wrr_set_weights(w.w, b, 3), 0);
	// Credits restart from zero: the same sequence as a fresh 5,1,1.
	EXPECT_EQ(picks(w.w, 7), (std::vector<uint32_t>{ 0, 0, 1, 0, 2, 0, 0 }));
	ASSERT_EQ(qg_wrr_set_weights(w.w, drain, 3), 0);
	for (uint32_t p : picks(w.w, 10))
		EXPECT_NE(p, 0u);
	ASSERT_EQ(qg_wrr_set_weights(w.w, none, 3), 0);
	EXPECT_EQ(qg_wrr_next(w.w), QG_LB_NONE);
	ASSERT_EQ(qg_wrr_set_weights(w.w, a, 3), 0);
	EXPECT_EQ(picks(w.w, 3), (std::vector<uint32_t>{ 0, 1, 2 }));
}

// Weights near 2^32 must not overflow the credits.
TEST(Wrr, HugeWeights)
{
	const uint32_t weights[] = { UINT32_MAX, UINT32_MAX, 1 };
	Wrr w;
	ASSERT_EQ(qg_wrr_create(weights, 3, &w.w), 0);
	auto p = picks(w.w, 10000);
	for (size_t i = 0; i < p.size(); i++)
		ASSERT_EQ(p[i], i % 2) << i;
}

} // namespace
