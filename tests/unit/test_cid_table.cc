// SPDX-License-Identifier: BSD-3-Clause
// The per-core learned-CID table: lookups, moves, per-flow bound, forgetting,
// capacity, and a randomized comparison with a std::map model.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

extern "C" {
#include "dataplane/quic/cid_table.h"
}

namespace
{

struct Table {
	qg_cid_table *t = nullptr;
	Table(uint32_t cap, uint32_t flows)
	{
		EXPECT_EQ(qg_cid_table_create(cap, flows, 42, &t), 0);
	}
	~Table()
	{
		qg_cid_table_destroy(t);
	}
};

std::vector<uint8_t> Cid(uint32_t v, uint8_t len = 8)
{
	std::vector<uint8_t> c(len);
	for (uint8_t i = 0; i < len; i++)
		c[i] = static_cast<uint8_t>(v >> (8 * (i % 4))) ^ i;
	return c;
}

TEST(CidTable, LearnLookupForget)
{
	Table t(64, 16);
	auto a = Cid(1), b = Cid(2, 20);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 8), QG_CID_NONE);
	EXPECT_EQ(qg_cid_learn(t.t, 0, a.data(), 8, 3), 0);
	EXPECT_EQ(qg_cid_learn(t.t, 0, b.data(), 20, 3), 0);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 8), 3u);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, b.data(), 20), 3u);
	EXPECT_EQ(qg_cid_lookup(t.t, 1, a.data(), 8), QG_CID_NONE) << "services are separate";
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 7), QG_CID_NONE) << "the length is part of the key";
	EXPECT_EQ(qg_cid_learn(t.t, 0, a.data(), 8, 3), 0) << "learning twice is harmless";
	EXPECT_EQ(qg_cid_count(t.t), 2u);
	qg_cid_forget_flow(t.t, 3);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 8), QG_CID_NONE);
	EXPECT_EQ(qg_cid_count(t.t), 0u);
}

TEST(CidTable, ACidMovesToItsNewFlow)
{
	Table t(64, 16);
	auto a = Cid(7);
	ASSERT_EQ(qg_cid_learn(t.t, 0, a.data(), 8, 1), 0);
	ASSERT_EQ(qg_cid_learn(t.t, 0, a.data(), 8, 2), 0);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 8), 2u);
	qg_cid_forget_flow(t.t, 1);
	EXPECT_EQ(qg_cid_lookup(t.t, 0, a.data(), 8), 2u) << "forgetting the old flow must not take it";
	EXPECT_EQ(qg_cid_count(t.t), 1u);
}

TEST(CidTable, AFlowKeepsItsNewestCids)
{
	Table t(64, 4);
	for (uint32_t i = 0; i < QG_CID_PER_FLOW + 3; i++)
		ASSERT_EQ(qg_cid_learn(t.t, 0, Cid(100 + i).data(), 8, 0), 0);
	EXPECT_EQ(qg_cid_count(t.t), static_cast<uint32_t>(QG_CID_PER_FLOW));
	for (uint32_t i = 0; i < 3; i++)
		EXPECT_EQ(qg_cid_lookup(t.t, 0, Cid(100 + i).data(), 8), QG_CID_NONE) << i;
	for (uint32_t i = 3; i < QG_CID_PER_FLOW + 3; i++)
		EXPECT_EQ(qg_cid_lookup(t.t, 0, Cid(100 + i).data(), 8), 0u) << i;
}

TEST(CidTable, BoundedAndValidated)
{
	Table t(3, 8);
	for (uint32_t f = 0; f < 3; f++)
		ASSERT_EQ(qg_cid_learn(t.t, 0, Cid(f).data(), 8, f), 0);
	EXPECT_EQ(qg_cid_learn(t.t, 0, Cid(9).data(), 8, 4), -ENOSPC);
	qg_cid_forget_flow(t.t, 1);
	EXPECT_EQ(qg_cid_learn(t.t, 0, Cid(9).data(), 8, 4), 0) << "a freed entry is reused";
	uint8_t long_cid[21] = {};
	EXPECT_EQ(qg_cid_learn(t.t, 0, long_cid, 21, 0), -EINVAL);
	EXPECT_EQ(qg_cid_learn(t.t, 0, long_cid, 0, 0), -EINVAL);
	EXPECT_EQ(qg_cid_learn(t.t, 0, long_cid, 8, 8), -EINVAL) << "flow index out of range";
	EXPECT_EQ(qg_cid_lookup(t.t, 0, long_cid, 21), QG_CID_NONE);
	qg_cid_table *bad = nullptr;
	EXPECT_EQ(qg_cid_table_create(0, 1, 0, &bad), -EINVAL);
}

TEST(CidTable, RandomOperationsMatchAModel)
{
	const uint32_t kFlows = 64, kCap = 128;
	Table t(kCap, kFlows);
	std::map<std::vector<uint8_t>, uint32_t> model;			// cid -> flow
	std::map<uint32_t, std::vector<std::vector<uint8_t>>> per_flow; // flow -> cids, oldest first
	std::mt19937 rng(7);
	for (int op = 0; op < 200000; op++) {
		uint32_t flow = rng() % kFlows;
		auto c = Cid(rng() % 512, static_cast<uint8_t>(1 + rng() % 20));
		switch (rng() % 4) {
		case 0:
		case 1: {
			auto it = model.find(c);
			bool moves = it != model.end() && it->second != flow;
			bool same = it != model.end() && it->second == flow;
			size_t after_free = model.size() - (moves ? 1 : 0) -
					    (!same && per_flow[flow].size() >= QG_CID_PER_FLOW ? 1 : 0);
			int rc = qg_cid_learn(t.t, 0, c.data(), static_cast<uint8_t>(c.size()), flow);
			if (same) {
				ASSERT_EQ(rc, 0);
				break;
			}
			if (moves) {
				auto &v = per_flow[it->second];
				v.erase(std::find(v.begin(), v.end(), c));
				model.erase(it);
			}
			if (per_flow[flow].size() >= QG_CID_PER_FLOW) {
				model.erase(per_flow[flow].front());
				per_flow[flow].erase(per_flow[flow].begin());
			}
			if (after_free >= kCap) {
				ASSERT_EQ(rc, -ENOSPC);
				break;
			}
			ASSERT_EQ(rc, 0);
			model[c] = flow;
			per_flow[flow].push_back(c);
			break;
		}
		case 2: {
			auto it = model.find(c);
			uint32_t want = it == model.end() ? QG_CID_NONE : it->second;
			ASSERT_EQ(qg_cid_lookup(t.t, 0, c.data(), static_cast<uint8_t>(c.size())), want);
			break;
		}
		default:
			qg_cid_forget_flow(t.t, flow);
			for (auto &x : per_flow[flow])
				model.erase(x);
			per_flow[flow].clear();
		}
		ASSERT_EQ(qg_cid_count(t.t), model.size()) << "op " << op;
	}
}

} // namespace
