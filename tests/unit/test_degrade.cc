// SPDX-License-Identifier: BSD-3-Clause
// Degradation controller: steps up and down, hysteresis, dwell, anomaly holds, reasons.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "qgate/degrade.h"

namespace
{

constexpr uint64_t DWELL = QG_DEGRADE_DEFAULT_MIN_DWELL_MS, HOLD = QG_DEGRADE_DEFAULT_ANOMALY_HOLD_MS;

struct Degrade : ::testing::Test {
	qg_degrade d{};
	qg_degrade_change chg{};
	void SetUp() override
	{
		ASSERT_EQ(qg_degrade_init(&d, nullptr, 0), 0);
	}
	// One tick; returns 1 on a change (then chg holds it).
	int tick(uint64_t now, double flow, double backlog = 0, double busy = 0,
		 std::vector<qg_anomaly_record> an = {})
	{
		qg_degrade_input in = {};
		in.res[QG_DEGRADE_RES_FLOW_FILL] = flow;
		in.res[QG_DEGRADE_RES_RING_BACKLOG] = backlog;
		in.res[QG_DEGRADE_RES_WORKER_BUSY] = busy;
		in.anomalies = an.empty() ? nullptr : an.data();
		in.n_anomalies = (uint32_t)an.size();
		return qg_degrade_tick(&d, &in, now, &chg);
	}
	qg_degrade_level level() const
	{
		return qg_degrade_get_level(&d);
	}
	std::string reason() const
	{
		return chg.reason;
	}
};

qg_anomaly_record anomaly(const char *series, qg_anomaly_action act)
{
	qg_anomaly_record r = {};
	r.series = series;
	r.value = 5400;
	r.expected = 1000;
	r.z = 12.5;
	r.severity = QG_ANOMALY_SEV_CRITICAL;
	r.action = act;
	return r;
}

TEST(DegradeCfg, DefaultsAndValidation)
{
	qg_degrade_cfg cfg;
	qg_degrade d;

	qg_degrade_cfg_default(&cfg);
	EXPECT_EQ(qg_degrade_init(&d, &cfg, 5), 0);
	EXPECT_EQ(qg_degrade_get_level(&d), QG_DEGRADE_NORMAL);
	EXPECT_EQ(cfg.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_PROTECT].enter, 0.70);
	EXPECT_EQ(cfg.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_PROTECT].exit, 0.60);
	EXPECT_EQ(cfg.min_dwell_ms, 10000u);
	EXPECT_EQ(cfg.anomaly_hold_ms, 30000u);

	qg_degrade_cfg bad = cfg;
	bad.band[QG_DEGRADE_RES_RING_BACKLOG][QG_DEGRADE_SHED].exit = 0.75; // == enter
	EXPECT_EQ(qg_degrade_init(&d, &bad, 0), -EINVAL);
	bad = cfg;
	bad.band[QG_DEGRADE_RES_WORKER_BUSY][QG_DEGRADE_ESSENTIAL].enter = 0.85; // below SHED's
	EXPECT_EQ(qg_degrade_init(&d, &bad, 0), -EINVAL);
	bad = cfg;
	bad.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_PROTECT].exit = std::nan("");
	EXPECT_EQ(qg_degrade_init(&d, &bad, 0), -EINVAL);

	EXPECT_EQ(QG_DEGRADE_NORMAL, 0);
	EXPECT_EQ(QG_DEGRADE_PROTECT, 1);
	EXPECT_EQ(QG_DEGRADE_SHED, 2);
	EXPECT_EQ(QG_DEGRADE_ESSENTIAL, 3);
	EXPECT_STREQ(qg_degrade_level_name(QG_DEGRADE_ESSENTIAL), "essential");
	EXPECT_STREQ(qg_degrade_resource_name(QG_DEGRADE_RES_RING_BACKLOG), "ring_backlog");
}

TEST_F(Degrade, EachTransitionUp)
{
	EXPECT_EQ(tick(0, 0.699), 0);
	EXPECT_EQ(level(), QG_DEGRADE_NORMAL);
	ASSERT_EQ(tick(1000, 0.70), 1);
	EXPECT_EQ(chg.from, QG_DEGRADE_NORMAL);
	EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT);
	EXPECT_EQ(chg.now_ms, 1000u);
	EXPECT_EQ(reason(), "flow_fill 0.700 >= protect enter 0.700");
	EXPECT_EQ(tick(2000, 0.84), 0);
	ASSERT_EQ(tick(3000, 0.70, 0.75), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_SHED);
	EXPECT_EQ(reason(), "ring_backlog 0.750 >= shed enter 0.750");
	ASSERT_EQ(tick(4000, 0.70, 0.0, 0.97), 1);
	EXPECT_EQ(chg.from, QG_DEGRADE_SHED);
	EXPECT_EQ(chg.to, QG_DEGRADE_ESSENTIAL);
	EXPECT_EQ(reason(), "worker_busy 0.970 >= essential enter 0.970");
	EXPECT_EQ(d.steps_up, 3u);
	EXPECT_EQ(d.entered[QG_DEGRADE_SHED], 1u);
}

TEST_F(Degrade, EveryResourceCanRaiseTheLevel)
{
	const double enter[] = { 0.70, 0.50, 0.80 };
	for (int r = 0; r < QG_DEGRADE_RES_COUNT; r++) {
		SCOPED_TRACE(r);
		ASSERT_EQ(qg_degrade_init(&d, nullptr, 0), 0);
		double v[3] = { 0, 0, 0 };
		v[r] = enter[r];
		ASSERT_EQ(tick(1, v[0], v[1], v[2]), 1);
		EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT);
		EXPECT_NE(reason().find(qg_degrade_resource_name((qg_degrade_resource)r)), std::string::npos);
	}
}

TEST_F(Degrade, SkipsLevelsUp)
{
	ASSERT_EQ(tick(0, 0.96), 1);
	EXPECT_EQ(chg.from, QG_DEGRADE_NORMAL);
	EXPECT_EQ(chg.to, QG_DEGRADE_ESSENTIAL);
	EXPECT_EQ(reason(), "flow_fill 0.960 >= essential enter 0.950");
	EXPECT_EQ(d.steps_up, 1u);
	EXPECT_EQ(d.entered[QG_DEGRADE_PROTECT], 0u);
}

TEST_F(Degrade, HysteresisPreventsFlapping)
{
	// From NORMAL, wandering below PROTECT's enter threshold changes nothing.
	for (uint64_t t = 0; t < 100000; t += 1000)
		ASSERT_EQ(tick(t, (t / 1000) % 2 ? 0.61 : 0.69), 0) << t;
	// Once in PROTECT, wandering between exit (0.60) and enter (0.70) keeps it, for far longer than the
	// dwell.
	ASSERT_EQ(tick(100000, 0.70), 1);
	for (uint64_t t = 101000; t < 300000; t += 1000)
		ASSERT_EQ(tick(t, (t / 1000) % 2 ? 0.605 : 0.699), 0) << t;
	EXPECT_EQ(level(), QG_DEGRADE_PROTECT);
	EXPECT_EQ(d.steps_up + d.steps_down, 1u);
}

TEST_F(Degrade, DwellBeforeSteppingDown)
{
	ASSERT_EQ(tick(0, 0.75), 1);
	EXPECT_EQ(tick(500, 0.59), 0); // calm from 500
	EXPECT_EQ(tick(500 + DWELL - 1, 0.10), 0);
	EXPECT_EQ(level(), QG_DEGRADE_PROTECT);
	ASSERT_EQ(tick(500 + DWELL, 0.10), 1);
	EXPECT_EQ(chg.from, QG_DEGRADE_PROTECT);
	EXPECT_EQ(chg.to, QG_DEGRADE_NORMAL);
	EXPECT_EQ(reason(),
		  "flow_fill 0.100, ring_backlog 0.000, worker_busy 0.000 below protect exit for 10000 ms");
}

TEST_F(Degrade, OneDipBelowExitDoesNotCountAsCalm)
{
	ASSERT_EQ(tick(0, 0.86), 1);	// SHED
	EXPECT_EQ(tick(1000, 0.70), 0); // below SHED exit 0.75: calm from 1000
	EXPECT_EQ(tick(6000, 0.80), 0); // back above exit: the dwell starts over
	EXPECT_EQ(tick(7000, 0.70), 0); // calm from 7000
	EXPECT_EQ(tick(1000 + DWELL, 0.70), 0);
	EXPECT_EQ(tick(7000 + DWELL - 1, 0.70), 0);
	ASSERT_EQ(tick(7000 + DWELL, 0.70), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT); // 0.70 is also PROTECT's enter: it stays there
	for (uint64_t t = 7000 + DWELL; t < 100000; t += 1000)
		ASSERT_EQ(tick(t, 0.70), 0);
}

TEST_F(Degrade, StepsDownOneLevelAtATime)
{
	ASSERT_EQ(tick(0, 0.99, 0.95, 0.99), 1);
	EXPECT_EQ(level(), QG_DEGRADE_ESSENTIAL);
	std::vector<std::pair<uint64_t, qg_degrade_change>> changes;
	for (uint64_t t = 1000; t <= 60000; t += 1000)
		if (tick(t, 0.0, 0.0, 0.0) == 1)
			changes.push_back({ t, chg });
	ASSERT_EQ(changes.size(), 3u);
	const qg_degrade_level to[] = { QG_DEGRADE_SHED, QG_DEGRADE_PROTECT, QG_DEGRADE_NORMAL };
	for (size_t i = 0; i < 3; i++) {
		EXPECT_EQ(changes[i].first, 1000 + (i + 1) * DWELL) << i;
		EXPECT_EQ(changes[i].second.from, (qg_degrade_level)(3 - i)) << i;
		EXPECT_EQ(changes[i].second.to, to[i]) << i;
	}
	EXPECT_NE(std::string(changes[0].second.reason).find("below essential exit"), std::string::npos);
	EXPECT_EQ(d.steps_down, 3u);
}

TEST_F(Degrade, AnomalyForcesProtectForTheHoldTime)
{
	ASSERT_EQ(tick(0, 0.1, 0, 0, { anomaly("new_flows_per_s", QG_ANOMALY_ACT_PROTECT) }), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT);
	EXPECT_EQ(reason(), "anomaly new_flows_per_s=5400 (expected 1000, z=+12.5) recommends protect");
	// Resources are calm, but the hold keeps PROTECT until it ends at HOLD...
	for (uint64_t t = 1000; t < HOLD; t += 1000)
		ASSERT_EQ(tick(t, 0.1), 0) << t;
	// ...and then the dwell runs from there.
	EXPECT_EQ(tick(HOLD, 0.1), 0);
	EXPECT_EQ(tick(HOLD + DWELL - 1, 0.1), 0);
	ASSERT_EQ(tick(HOLD + DWELL, 0.1), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_NORMAL);
	EXPECT_NE(reason().find("anomaly hold over"), std::string::npos);
}

TEST_F(Degrade, AnomalyHoldIsRefreshed)
{
	ASSERT_EQ(tick(0, 0, 0, 0, { anomaly("initials_per_s", QG_ANOMALY_ACT_PROTECT) }), 1);
	EXPECT_EQ(tick(20000, 0, 0, 0, { anomaly("initials_per_s", QG_ANOMALY_ACT_PROTECT) }), 0);
	EXPECT_EQ(tick(20000 + HOLD - 1, 0), 0);
	EXPECT_EQ(tick(20000 + HOLD, 0), 0); // the hold is over: calm from here
	EXPECT_EQ(tick(20000 + HOLD + DWELL - 1, 0), 0);
	EXPECT_EQ(level(), QG_DEGRADE_PROTECT);
	ASSERT_EQ(tick(20000 + HOLD + DWELL, 0), 1);
	EXPECT_EQ(level(), QG_DEGRADE_NORMAL);
}

TEST_F(Degrade, AnomalyShedAndWeakerRecommendations)
{
	EXPECT_EQ(tick(0, 0, 0, 0,
		       { anomaly("pps", QG_ANOMALY_ACT_ALERT),
			 anomaly("probe_rtt:web/b1", QG_ANOMALY_ACT_NONE) }),
		  0);
	ASSERT_EQ(
		tick(1000, 0, 0, 0,
		     { anomaly("pps", QG_ANOMALY_ACT_PROTECT), anomaly("drops_per_s", QG_ANOMALY_ACT_SHED) }),
		1);
	EXPECT_EQ(chg.to, QG_DEGRADE_SHED);
	EXPECT_NE(reason().find("drops_per_s"), std::string::npos);
	// Both holds end at 1000 + HOLD; then SHED and PROTECT each need a dwell.
	EXPECT_EQ(tick(1000 + HOLD - 1, 0), 0);
	EXPECT_EQ(tick(1000 + HOLD, 0), 0);
	ASSERT_EQ(tick(1000 + HOLD + DWELL, 0), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT);
	ASSERT_EQ(tick(1000 + HOLD + 2 * DWELL, 0), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_NORMAL);
}

TEST_F(Degrade, ShedHoldOutlivedByProtectHold)
{
	ASSERT_EQ(tick(0, 0, 0, 0, { anomaly("x", QG_ANOMALY_ACT_SHED) }), 1);
	EXPECT_EQ(tick(20000, 0, 0, 0, { anomaly("y", QG_ANOMALY_ACT_PROTECT) }), 0);
	// SHED hold ends at HOLD: down to PROTECT after a dwell, then held by the PROTECT hold.
	EXPECT_EQ(tick(HOLD, 0), 0);
	ASSERT_EQ(tick(HOLD + DWELL, 0), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_PROTECT);
	EXPECT_EQ(tick(20000 + HOLD - 1, 0), 0);
	EXPECT_EQ(tick(20000 + HOLD, 0), 0);
	EXPECT_EQ(tick(20000 + HOLD + DWELL - 1, 0), 0);
	ASSERT_EQ(tick(20000 + HOLD + DWELL, 0), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_NORMAL);
}

TEST_F(Degrade, ResourceBeatsAnomalyWhenHigher)
{
	ASSERT_EQ(tick(0, 0.90, 0, 0, { anomaly("new_flows_per_s", QG_ANOMALY_ACT_PROTECT) }), 1);
	EXPECT_EQ(chg.to, QG_DEGRADE_SHED);
	EXPECT_EQ(reason(), "flow_fill 0.900 >= shed enter 0.850");
}

TEST_F(Degrade, NonFiniteInputIsRefused)
{
	EXPECT_EQ(tick(0, std::nan("")), -EINVAL);
	EXPECT_EQ(tick(0, 0, std::numeric_limits<double>::infinity()), -EINVAL);
	EXPECT_EQ(level(), QG_DEGRADE_NORMAL);
}

TEST_F(Degrade, ChangeRecordIsOptional)
{
	qg_degrade_input in = {};
	in.res[QG_DEGRADE_RES_WORKER_BUSY] = 0.95;
	EXPECT_EQ(qg_degrade_tick(&d, &in, 0, nullptr), 1);
	EXPECT_EQ(level(), QG_DEGRADE_SHED);
}

} // namespace
