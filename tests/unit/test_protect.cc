// SPDX-License-Identifier: BSD-3-Clause
// The protection path without a dataplane: telemetry records in, level out.
// Resources are maxima over workers, the operator floor bounds the level
// from below, anomalies on the 1 s series reach the controller, and every
// applied change and anomaly is an event on the bus. The clock is injected.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <string>
#include <vector>

#include "qgate/events.h"
#include "qgate/protect.h"

namespace
{

constexpr uint64_t MS = 1000000ULL;

qg_dataplane_tm Sample(uint32_t worker, double fill, double busy = 0, uint64_t packets = 0,
		       uint64_t new_flows = 0, uint64_t drops = 0)
{
	qg_dataplane_tm r = {};
	r.type = QG_DATAPLANE_TM_SAMPLE;
	r.worker = worker;
	r.period_ns = 100 * MS;
	r.flows_capacity = 1000;
	r.flows_active = (uint32_t)std::lround(fill * 1000);
	r.busy_ns = (uint64_t)(busy * 100 * MS);
	r.packets = packets;
	r.new_flows = new_flows;
	r.drops = drops;
	return r;
}

struct Protect : ::testing::Test {
	qg_event_bus *bus = nullptr;
	qg_protect *p = nullptr;
	qg_degrade_cfg cfg;

	void Make(int controller = 1, unsigned workers = 2, const qg_anomaly_params *ap = nullptr)
	{
		qg_protect_params pp = {};
		qg_degrade_cfg_default(&cfg);
		cfg.min_dwell_ms = 1000;
		pp.n_workers = workers;
		pp.degrade = &cfg;
		pp.controller = controller;
		pp.anomaly = ap;
		pp.bus = bus;
		ASSERT_EQ(qg_protect_create(&pp, 0, &p), 0);
	}
	void SetUp() override
	{
		ASSERT_EQ(qg_events_create(&bus), 0);
	}
	void TearDown() override
	{
		qg_protect_destroy(p);
		qg_events_destroy(bus);
	}
	qg_protect_info Info() const
	{
		qg_protect_info in;
		qg_protect_get_info(p, &in);
		return in;
	}
	qg_degrade_level Level() const
	{
		return Info().level;
	}
	void Feed(const qg_dataplane_tm &r)
	{
		qg_protect_feed(p, &r);
	}
	std::vector<qg_event> Events(qg_event_type type)
	{
		std::vector<qg_event> all(QG_EVENTS_RECENT), out;
		unsigned n = qg_events_recent(bus, all.data(), QG_EVENTS_RECENT);
		for (unsigned i = 0; i < n; i++)
			if (all[i].type == type)
				out.push_back(all[i]);
		return out;
	}
};

TEST(ProtectApi, ParamsAndLevelNames)
{
	qg_protect_params pp = {};
	qg_protect *p = nullptr;
	qg_degrade_cfg bad;
	qg_degrade_level l;

	EXPECT_EQ(qg_protect_create(&pp, 0, &p), -EINVAL) << "no workers";
	pp.n_workers = QG_PROTECT_WORKERS_MAX + 1;
	EXPECT_EQ(qg_protect_create(&pp, 0, &p), -EINVAL);
	pp.n_workers = 1;
	qg_degrade_cfg_default(&bad);
	bad.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_SHED].exit = 0.9; // above its enter
	pp.degrade = &bad;
	EXPECT_EQ(qg_protect_create(&pp, 0, &p), -EINVAL);
	EXPECT_EQ(p, nullptr);
	qg_protect_destroy(nullptr);

	ASSERT_EQ(qg_protect_level_parse("shed", &l), 0);
	EXPECT_EQ(l, QG_DEGRADE_SHED);
	ASSERT_EQ(qg_protect_level_parse("essential", &l), 0);
	EXPECT_EQ(l, QG_DEGRADE_ESSENTIAL);
	EXPECT_EQ(qg_protect_level_parse("Shed", &l), -EINVAL);
	EXPECT_EQ(qg_protect_level_parse("", &l), -EINVAL);
	EXPECT_EQ(qg_protect_level_parse(nullptr, &l), -EINVAL);
}

TEST_F(Protect, FlowFillIsTheMaxOverWorkersAndStepsDownAfterTheDwell)
{
	Make();
	EXPECT_EQ(qg_protect_step(p, 0, 0), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
	EXPECT_STREQ(Info().reason, "qgate started");

	Feed(Sample(0, 0.10));
	Feed(Sample(1, 0.90)); // one worker's table is nearly full: that is what counts
	EXPECT_EQ(qg_protect_step(p, 0, 100), 1);
	qg_protect_info in = Info();
	EXPECT_EQ(in.level, QG_DEGRADE_SHED);
	EXPECT_EQ(in.since_ms, 100u);
	EXPECT_NEAR(in.res[QG_DEGRADE_RES_FLOW_FILL], 0.90, 1e-9);
	EXPECT_NE(std::string(in.reason).find("flow_fill 0.900 >= shed enter 0.850"), std::string::npos)
		<< in.reason;
	EXPECT_EQ(in.changes, 1u);
	EXPECT_EQ(in.samples, 2u);

	auto ev = Events(QG_EVENT_LEVEL_CHANGE);
	ASSERT_EQ(ev.size(), 1u);
	EXPECT_EQ(ev[0].arg[0], QG_DEGRADE_NORMAL);
	EXPECT_EQ(ev[0].arg[1], QG_DEGRADE_SHED);
	EXPECT_EQ(ev[0].severity, QG_EVENT_SEV_WARNING);
	EXPECT_STREQ(ev[0].component, "degradation");
	EXPECT_EQ(std::string(ev[0].text).rfind("normal -> shed: flow_fill", 0), 0u) << ev[0].text;

	// Calm from t=200: one level per dwell (1 s), never two at once.
	Feed(Sample(1, 0.05));
	uint64_t t = 200;
	for (; t < 1200; t += 100) {
		qg_protect_step(p, 0, t);
		ASSERT_EQ(Level(), QG_DEGRADE_SHED) << "t=" << t;
	}
	EXPECT_EQ(qg_protect_step(p, 0, 1200), 1);
	EXPECT_EQ(Level(), QG_DEGRADE_PROTECT);
	for (t = 1300; t < 2200; t += 100) {
		qg_protect_step(p, 0, t);
		ASSERT_EQ(Level(), QG_DEGRADE_PROTECT) << "t=" << t;
	}
	EXPECT_EQ(qg_protect_step(p, 0, 2200), 1);
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
	EXPECT_NE(std::string(Info().reason).find("below protect exit"), std::string::npos) << Info().reason;
	EXPECT_EQ(Info().changes, 3u);
	ev = Events(QG_EVENT_LEVEL_CHANGE);
	ASSERT_EQ(ev.size(), 3u);
	EXPECT_EQ(ev[2].severity, QG_EVENT_SEV_NOTICE) << "going down is good news";
}

TEST_F(Protect, BusyAndRingBacklogDriveItToo)
{
	Make();
	Feed(Sample(0, 0, 0.98)); // saturated worker
	qg_protect_step(p, 0, 100);
	EXPECT_EQ(Level(), QG_DEGRADE_ESSENTIAL);
	EXPECT_NE(std::string(Info().reason).find("worker_busy"), std::string::npos);

	qg_protect_destroy(p);
	p = nullptr;
	Make();
	qg_protect_step(p, 0.80, 100); // rings backing up toward the control thread
	EXPECT_EQ(Level(), QG_DEGRADE_SHED);
	EXPECT_NEAR(Info().res[QG_DEGRADE_RES_RING_BACKLOG], 0.80, 1e-9);
}

TEST_F(Protect, TheControllerTicksEveryHundredMilliseconds)
{
	Make();
	qg_protect_step(p, 0, 0);
	Feed(Sample(0, 0.99));
	EXPECT_EQ(qg_protect_step(p, 0, 50), 0) << "tick not due yet";
	EXPECT_EQ(qg_protect_step(p, 0, 100), 1);
	EXPECT_EQ(Level(), QG_DEGRADE_ESSENTIAL);
}

TEST_F(Protect, TheOperatorFloorIsALowerBound)
{
	Make();
	ASSERT_EQ(qg_protect_set_floor(p, 1, QG_DEGRADE_SHED, 10), 0);
	qg_protect_info in = Info();
	EXPECT_EQ(in.level, QG_DEGRADE_SHED);
	EXPECT_TRUE(in.floor_set);
	EXPECT_EQ(in.controller, QG_DEGRADE_NORMAL);
	EXPECT_EQ(std::string(in.reason).rfind("operator floor shed", 0), 0u) << in.reason;

	// Calm resources do not take it below the floor.
	Feed(Sample(0, 0.01));
	for (uint64_t t = 100; t <= 3000; t += 100)
		qg_protect_step(p, 0, t);
	EXPECT_EQ(Level(), QG_DEGRADE_SHED);

	// The controller may go above it...
	Feed(Sample(0, 0.97));
	qg_protect_step(p, 0, 3100);
	EXPECT_EQ(Level(), QG_DEGRADE_ESSENTIAL);
	EXPECT_NE(std::string(Info().reason).find("flow_fill"), std::string::npos) << Info().reason;
	// ...and comes back down to the floor, not under it.
	Feed(Sample(0, 0.01));
	for (uint64_t t = 3200; t <= 8000; t += 100)
		qg_protect_step(p, 0, t);
	in = Info();
	EXPECT_EQ(in.controller, QG_DEGRADE_NORMAL);
	EXPECT_EQ(in.level, QG_DEGRADE_SHED);
	EXPECT_EQ(std::string(in.reason).rfind("operator floor shed", 0), 0u) << in.reason;

	// "level auto": the controller alone, at once.
	ASSERT_EQ(qg_protect_set_floor(p, 0, QG_DEGRADE_NORMAL, 8100), 0);
	in = Info();
	EXPECT_EQ(in.level, QG_DEGRADE_NORMAL);
	EXPECT_FALSE(in.floor_set);
	EXPECT_EQ(std::string(in.reason).rfind("operator floor cleared", 0), 0u) << in.reason;
	EXPECT_EQ(in.since_ms, 8100u);

	// A floor under the controller's level changes nothing applied.
	Feed(Sample(0, 0.90));
	qg_protect_step(p, 0, 8200);
	ASSERT_EQ(Level(), QG_DEGRADE_SHED);
	uint64_t changes = Info().changes;
	ASSERT_EQ(qg_protect_set_floor(p, 1, QG_DEGRADE_PROTECT, 8300), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_SHED);
	EXPECT_EQ(Info().changes, changes);
	EXPECT_EQ(qg_protect_set_floor(p, 1, (qg_degrade_level)7, 8400), -EINVAL);
	EXPECT_EQ(Info().floor, QG_DEGRADE_PROTECT) << "a refused floor changes nothing";
}

TEST_F(Protect, WithTheControllerOffOnlyTheFloorSetsTheLevel)
{
	Make(0);
	Feed(Sample(0, 0.99, 0.99));
	qg_protect_step(p, 0.99, 100);
	qg_protect_info in = Info();
	EXPECT_EQ(in.level, QG_DEGRADE_NORMAL);
	EXPECT_EQ(in.controller, QG_DEGRADE_ESSENTIAL) << "it still computes what it would do";
	EXPECT_FALSE(in.controller_enabled);
	ASSERT_EQ(qg_protect_set_floor(p, 1, QG_DEGRADE_PROTECT, 200), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_PROTECT);
	ASSERT_EQ(qg_protect_set_floor(p, 0, QG_DEGRADE_NORMAL, 300), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
}

TEST_F(Protect, ReconfigureKeepsTheLevelAndAppliesNewThresholds)
{
	Make();
	Feed(Sample(0, 0.72));
	qg_protect_step(p, 0, 100);
	ASSERT_EQ(Level(), QG_DEGRADE_PROTECT);

	qg_degrade_cfg bad = cfg;
	bad.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_ESSENTIAL].enter = 0.5; // below shed's
	EXPECT_EQ(qg_protect_reconfigure(p, &bad, 1, 150), -EINVAL);

	qg_degrade_cfg lower = cfg;
	lower.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_SHED] = { 0.71, 0.65 };
	ASSERT_EQ(qg_protect_reconfigure(p, &lower, 1, 200), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_PROTECT) << "the level stays until the next tick";
	qg_protect_step(p, 0, 300);
	EXPECT_EQ(Level(), QG_DEGRADE_SHED) << "0.72 now passes shed's enter";

	// Turning the controller off leaves only the (absent) floor: normal at once.
	ASSERT_EQ(qg_protect_reconfigure(p, &lower, 0, 400), 0);
	qg_protect_info in = Info();
	EXPECT_EQ(in.level, QG_DEGRADE_NORMAL);
	EXPECT_FALSE(in.controller_enabled);
	EXPECT_NE(std::string(in.reason).find("controller disabled"), std::string::npos) << in.reason;
	ASSERT_EQ(qg_protect_reconfigure(p, nullptr, 1, 500), 0);
	EXPECT_EQ(Level(), QG_DEGRADE_SHED)
		<< "defaults: 0.72 passes protect; the controller is still at shed";
}

TEST_F(Protect, SamplesOfUnknownWorkersAndOtherTypesAreIgnored)
{
	Make(1, 1);
	Feed(Sample(5, 0.99));
	qg_dataplane_tm ev = Sample(0, 0.99);
	ev.type = 77;
	Feed(ev);
	qg_protect_step(p, 0, 100);
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
	EXPECT_EQ(Info().samples, 0u);
}

TEST_F(Protect, EvictionsAreCountedAndEventedOncePerTenSeconds)
{
	Make(1, 1);
	qg_dataplane_tm r = Sample(0, 1.0);
	r.type = QG_DATAPLANE_TM_EVICTING;
	r.arg = 7;
	for (uint64_t t = 0; t < 15000; t += 100) {
		r.ts_ns = t * MS;
		Feed(r);
	}
	EXPECT_EQ(Info().evictions, 150u * 7);
	auto ev = Events(QG_EVENT_FLOW_FLOOD);
	ASSERT_EQ(ev.size(), 2u) << "at 0 s and at 10 s";
	EXPECT_EQ(ev[0].arg[1], 7);
	EXPECT_NE(std::string(ev[0].text).find("flow table full"), std::string::npos) << ev[0].text;
}

// Per-second rates come from the workers' own sample periods: 9 or 11 samples in a window read the same.
TEST_F(Protect, RatesAreSummedOverWorkersPerSecond)
{
	Make();
	for (int i = 0; i < 9; i++)
		Feed(Sample(0, 0, 0, 100, 10, 1)); // 1000 pkt/s over 0.9 s
	for (int i = 0; i < 11; i++)
		Feed(Sample(1, 0, 0, 50, 5, 0)); // 500 pkt/s over 1.1 s
	qg_protect_step(p, 0, 1000);
	qg_protect_info in = Info();
	EXPECT_NEAR(in.rate[QG_PROTECT_SERIES_PPS], 1500, 1e-6);
	EXPECT_NEAR(in.rate[QG_PROTECT_SERIES_NEW_FLOWS], 150, 1e-6);
	EXPECT_NEAR(in.rate[QG_PROTECT_SERIES_DROPS], 10, 1e-6);
	qg_anomaly_series *s = qg_anomaly_series_find(qg_protect_anomalies(p), "pps");
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->samples, 1u);

	// A window without any sample is not observed (a stopped dataplane is not "zero traffic").
	qg_protect_step(p, 0, 2000);
	EXPECT_EQ(s->samples, 1u);
}

// A new-flow flood after a stationary baseline: an anomaly event, and the controller holds protect.
TEST_F(Protect, ANewFlowFloodIsAnAnomalyThatHoldsProtect)
{
	qg_anomaly_params ap;
	qg_anomaly_params_default(&ap);
	ap.warmup = 20;
	Make(1, 1, &ap);
	uint64_t t = 0;
	unsigned noise = 12345;
	for (int w = 0; w < 60; w++) {
		for (int i = 0; i < 10; i++) {
			noise = noise * 1103515245u + 12345u;
			uint64_t nf = 100 + (noise >> 16) % 11; // 100..110 per 100 ms
			Feed(Sample(0, 0.01, 0.01, 1000 + (noise >> 8) % 50, nf, 0));
		}
		t += 1000;
		qg_protect_step(p, 0, t);
		ASSERT_EQ(Info().anomalies, 0u) << "stationary window " << w;
	}
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
	for (int i = 0; i < 10; i++)
		Feed(Sample(0, 0.01, 0.01, 1000, 5000, 0)); // 50,000 new flows/s
	t += 1000;
	qg_protect_step(p, 0, t);
	qg_protect_info in = Info();
	EXPECT_EQ(in.anomalies, 1u);
	EXPECT_EQ(in.level, QG_DEGRADE_PROTECT);
	EXPECT_NE(std::string(in.reason).find("anomaly new_flows_per_s"), std::string::npos) << in.reason;
	auto ev = Events(QG_EVENT_ANOMALY);
	ASSERT_EQ(ev.size(), 1u);
	EXPECT_EQ(ev[0].arg[0], QG_PROTECT_SERIES_NEW_FLOWS);
	EXPECT_EQ(ev[0].arg[3], QG_ANOMALY_ACT_PROTECT);
	EXPECT_GE(ev[0].severity, QG_EVENT_SEV_WARNING);
	EXPECT_EQ(std::string(ev[0].text).rfind("new_flows_per_s 50000", 0), 0u) << ev[0].text;
	qg_anomaly_series *s = qg_anomaly_series_find(qg_protect_anomalies(p), "new_flows_per_s");
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->anomalies, 1u);

	// Back to normal traffic: the hold (30 s by default) keeps protect, then the dwell lets it go.
	uint64_t flood_end = t;
	while (Level() != QG_DEGRADE_NORMAL && t < flood_end + 60000) {
		for (int i = 0; i < 10; i++)
			Feed(Sample(0, 0.01, 0.01, 1000, 105, 0));
		t += 100;
		qg_protect_step(p, 0, t);
		if (t < flood_end + QG_DEGRADE_DEFAULT_ANOMALY_HOLD_MS) {
			ASSERT_EQ(Level(), QG_DEGRADE_PROTECT) << "t=" << t - flood_end;
		}
	}
	EXPECT_EQ(Level(), QG_DEGRADE_NORMAL);
}

} // namespace
