// SPDX-License-Identifier: BSD-3-Clause
// Worker -> control telemetry rings: per-period deltas from a worker's own
// counters, busy accounting, passive eviction records, a full ring dropping
// and counting, and one producer thread against one consumer thread.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

extern "C" {
#include "dataplane/worker/telemetry.h"
}

namespace
{

constexpr uint64_t MS = 1000000ULL;

struct Tm {
	qg_telemetry *t = nullptr;
	Tm(uint32_t ring, uint32_t worker = 3, uint32_t capacity = 100)
	{
		EXPECT_EQ(qg_telemetry_create(worker, capacity, ring, 100 * MS, &t), 0);
	}
	~Tm()
	{
		qg_telemetry_destroy(t);
	}
	std::vector<qg_dataplane_tm> Drain()
	{
		std::vector<qg_dataplane_tm> v;
		qg_telemetry_poll(
			t,
			[](void *ctx, const qg_dataplane_tm *rec) {
				static_cast<std::vector<qg_dataplane_tm> *>(ctx)->push_back(*rec);
			},
			&v);
		return v;
	}
	qg_ring_stats Stats() const
	{
		qg_ring_stats rs;
		qg_telemetry_stats(t, &rs);
		return rs;
	}
};

TEST(Telemetry, CreateChecksItsArguments)
{
	qg_telemetry *t = nullptr;

	EXPECT_EQ(qg_telemetry_create(0, 10, 6, 100 * MS, &t), -EINVAL); // not a power of two
	EXPECT_EQ(qg_telemetry_create(0, 10, 2, 100 * MS, &t), -EINVAL); // too small
	EXPECT_EQ(qg_telemetry_create(0, 10, 8, 0, &t), -EINVAL);	 // no period
	EXPECT_EQ(t, nullptr);
	qg_telemetry_destroy(nullptr);
}

TEST(Telemetry, SampleCarriesThePeriodsDeltas)
{
	Tm tm(8);
	qg_ctr_block ctr;

	memset(&ctr, 0, sizeof(ctr));
	ctr.v[QG_CTR_RX_CLIENT] = 1000; // before the first publish: belongs to no period
	qg_telemetry_publish(tm.t, &ctr, 5, 1000 * MS);
	EXPECT_TRUE(tm.Drain().empty()) << "the first call only sets the baselines";

	ctr.v[QG_CTR_RX_CLIENT] += 10;
	ctr.v[QG_CTR_RX_BACKEND] += 5;
	ctr.v[QG_CTR_FLOW_CREATED] += 3;
	ctr.v[QG_CTR_DROP_SHED] += 2;
	ctr.v[QG_CTR_DROP_OVERSIZE] += 1;
	ctr.v[QG_CTR_TX_CLIENT] += 99; // not received: not counted as packets
	// Iterations: a full burst at +10 ms, relayed until +40 ms, then empty polls.
	qg_telemetry_account(tm.t, 0, 4, 1005 * MS);
	qg_telemetry_account(tm.t, 4, 4, 1010 * MS); // a full burst: busy until the next poll
	qg_telemetry_account(tm.t, 0, 4, 1040 * MS);
	qg_telemetry_account(tm.t, 0, 4, 1070 * MS);
	qg_telemetry_publish(tm.t, &ctr, 40, 1100 * MS);

	auto v = tm.Drain();
	ASSERT_EQ(v.size(), 1u);
	const qg_dataplane_tm &r = v[0];
	EXPECT_EQ(r.type, (uint32_t)QG_DATAPLANE_TM_SAMPLE);
	EXPECT_EQ(r.worker, 3u);
	EXPECT_EQ(r.seq, 0u);
	EXPECT_EQ(r.ts_ns, 1100 * MS);
	EXPECT_EQ(r.period_ns, 100 * MS);
	EXPECT_EQ(r.packets, 15u);
	EXPECT_EQ(r.new_flows, 3u);
	EXPECT_EQ(r.drops, 3u) << "every drop reason, shed included";
	EXPECT_EQ(r.shed, 2u);
	EXPECT_EQ(r.busy_ns, 30 * MS);
	EXPECT_EQ(r.flows_active, 40u);
	EXPECT_EQ(r.flows_capacity, 100u);

	// The next period starts from zero busy time and the new baselines.
	qg_telemetry_publish(tm.t, &ctr, 40, 1200 * MS);
	v = tm.Drain();
	ASSERT_EQ(v.size(), 1u);
	EXPECT_EQ(v[0].packets, 0u);
	EXPECT_EQ(v[0].busy_ns, 0u);
	EXPECT_EQ(v[0].seq, 1u);
}

TEST(Telemetry, PartialBurstsAreNotBusy)
{
	Tm tm(8);
	qg_ctr_block ctr;

	memset(&ctr, 0, sizeof(ctr));
	qg_telemetry_publish(tm.t, &ctr, 0, 0);
	// A poller that keeps up: every poll has datagrams, none is full.
	for (uint64_t ms = 1; ms < 100; ms++)
		qg_telemetry_account(tm.t, 7, 32, ms * MS);
	qg_telemetry_publish(tm.t, &ctr, 0, 100 * MS);
	auto v = tm.Drain();
	ASSERT_EQ(v.size(), 1u);
	EXPECT_EQ(v[0].busy_ns, 0u);
}

TEST(Telemetry, BusyNeverExceedsThePeriod)
{
	Tm tm(8);
	qg_ctr_block ctr;

	memset(&ctr, 0, sizeof(ctr));
	qg_telemetry_publish(tm.t, &ctr, 0, 0);
	qg_telemetry_account(tm.t, 32, 32, 0);
	qg_telemetry_account(tm.t, 32, 32, 150 * MS); // one long burst crossing the period's end
	qg_telemetry_publish(tm.t, &ctr, 0, 100 * MS);
	auto v = tm.Drain();
	ASSERT_EQ(v.size(), 1u);
	EXPECT_EQ(v[0].busy_ns, v[0].period_ns);
}

TEST(Telemetry, EvictionsComeAsAPassiveRecordBeforeTheSample)
{
	Tm tm(8);
	qg_ctr_block ctr;

	memset(&ctr, 0, sizeof(ctr));
	qg_telemetry_publish(tm.t, &ctr, 100, 0);
	ctr.v[QG_CTR_FLOW_EVICTED] += 4;
	qg_telemetry_publish(tm.t, &ctr, 100, 100 * MS);
	auto v = tm.Drain();
	ASSERT_EQ(v.size(), 2u);
	EXPECT_EQ(v[0].type, (uint32_t)QG_DATAPLANE_TM_EVICTING);
	EXPECT_EQ(v[0].arg, 4u);
	EXPECT_EQ(v[0].flows_active, 100u);
	EXPECT_EQ(v[1].type, (uint32_t)QG_DATAPLANE_TM_SAMPLE);
	EXPECT_EQ(v[1].seq, v[0].seq + 1);
}

TEST(Telemetry, FullRingDropsAndCounts)
{
	Tm tm(8); // holds 7
	qg_ctr_block ctr;

	memset(&ctr, 0, sizeof(ctr));
	qg_telemetry_publish(tm.t, &ctr, 0, 0);
	for (uint64_t i = 1; i <= 10; i++)
		qg_telemetry_publish(tm.t, &ctr, 0, i * 100 * MS);
	qg_ring_stats rs = tm.Stats();
	EXPECT_EQ(rs.capacity, 7u);
	EXPECT_EQ(rs.occupancy, 7u);
	EXPECT_EQ(rs.published, 7u);
	EXPECT_EQ(rs.dropped, 3u);

	auto v = tm.Drain();
	ASSERT_EQ(v.size(), 7u);
	for (size_t i = 0; i < v.size(); i++)
		EXPECT_EQ(v[i].seq, i) << "oldest first, the newest were dropped";
	EXPECT_EQ(tm.Stats().occupancy, 0u);

	// Room again: the next record goes in, and its seq shows the gap.
	qg_telemetry_publish(tm.t, &ctr, 0, 1100 * MS);
	v = tm.Drain();
	ASSERT_EQ(v.size(), 1u);
	EXPECT_EQ(v[0].seq, 10u);
	EXPECT_EQ(tm.Stats().dropped, 3u);
}

// One producer thread (the worker) and one consumer (the control thread): every record arrives
// once, in order, intact; what did not arrive was counted as dropped.
TEST(Telemetry, OneProducerOneConsumer)
{
	constexpr uint64_t N = 200000;
	Tm tm(64);
	std::atomic<bool> done{ false };
	std::vector<qg_dataplane_tm> got;

	got.reserve(N);
	std::thread producer([&] {
		qg_ctr_block ctr;

		memset(&ctr, 0, sizeof(ctr));
		qg_telemetry_publish(tm.t, &ctr, 0, 1);
		for (uint64_t i = 1; i <= N; i++) {
			ctr.v[QG_CTR_RX_CLIENT] += i; // packets of record k = k + 1: checks the payload
			qg_telemetry_publish(tm.t, &ctr, (uint32_t)(i & 0xffff), 1 + i);
		}
		done.store(true);
	});
	for (;;) {
		bool last = done.load();
		auto v = tm.Drain();
		got.insert(got.end(), v.begin(), v.end());
		if (last)
			break;
	}
	producer.join();
	auto tail = tm.Drain();
	got.insert(got.end(), tail.begin(), tail.end());

	qg_ring_stats rs = tm.Stats();
	EXPECT_EQ(rs.published + rs.dropped, N);
	EXPECT_EQ(got.size(), rs.published);
	for (size_t i = 0; i < got.size(); i++) {
		ASSERT_EQ(got[i].packets, got[i].seq + 1) << "record " << i << " torn";
		ASSERT_EQ(got[i].flows_active, (uint32_t)((got[i].seq + 1) & 0xffff));
		if (i) {
			ASSERT_GT(got[i].seq, got[i - 1].seq) << "record " << i << " out of order";
		}
	}
}

} // namespace
