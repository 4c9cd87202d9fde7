// SPDX-License-Identifier: BSD-3-Clause
// Transport path scoring and switching with an injected clock: the best path
// is chosen, degradation switches only after the margin held for the hold
// time, noisy loss does not flap, traffic returns when the preferred path
// recovers, and every switch makes a publishable event.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "qgate/events.h"
#include "qgate/transport.h"

namespace
{

constexpr unsigned kUdp = 0, kBt = 1;

// A backend with a UDP path and a BR/EDR path, default parameters, probes every second on each path.
struct Sel : ::testing::Test {
	qg_transport_sel s{};
	uint64_t now = 0;
	std::vector<qg_transport_switch> switches;

	void SetUp() override
	{
		const qg_transport_kind kinds[] = { QG_TRANSPORT_UDP, QG_TRANSPORT_BT_BREDR };

		ASSERT_EQ(qg_transport_init(&s, nullptr, kinds, 2, now), 0);
	}
	void record(unsigned path, bool ok, uint32_t rtt_us)
	{
		qg_transport_switch sw;

		if (qg_transport_record(&s, path, ok, rtt_us, now, &sw) == 1)
			switches.push_back(sw);
	}
	// One probe round at the current time (UDP result, then a clean 30 ms BT probe), then a second
	// passes.
	void round(bool udp_ok)
	{
		record(kUdp, udp_ok, 1000);
		record(kBt, true, 30000);
		now += 1000;
	}
};

TEST(TransportCfg, DefaultsAndValidation)
{
	const qg_transport_kind kinds[] = { QG_TRANSPORT_UDP, QG_TRANSPORT_BT_LE };
	qg_transport_sel s;
	qg_transport_cfg cfg;

	qg_transport_cfg_default(&cfg);
	EXPECT_EQ(cfg.base[QG_TRANSPORT_UDP], QG_TRANSPORT_DEFAULT_BASE_UDP);
	EXPECT_GT(cfg.base[QG_TRANSPORT_BT_BREDR], cfg.base[QG_TRANSPORT_BT_LE]);
	EXPECT_EQ(qg_transport_init(&s, &cfg, kinds, 0, 0), -EINVAL);
	EXPECT_EQ(qg_transport_init(&s, &cfg, kinds, QG_TRANSPORT_MAX_PATHS + 1, 0), -EINVAL);
	cfg.ewma_pct = 0;
	EXPECT_EQ(qg_transport_init(&s, &cfg, kinds, 2, 0), -EINVAL);
	qg_transport_cfg_default(&cfg);
	cfg.fall = 0;
	EXPECT_EQ(qg_transport_init(&s, &cfg, kinds, 2, 0), -EINVAL);
	const qg_transport_kind bad[] = { QG_TRANSPORT_KIND_COUNT };
	EXPECT_EQ(qg_transport_init(&s, nullptr, bad, 1, 0), -EINVAL);
	ASSERT_EQ(qg_transport_init(&s, nullptr, kinds, 2, 0), 0);
	EXPECT_EQ(qg_transport_record(&s, 2, 1, 0, 0, nullptr), -EINVAL);
	EXPECT_STREQ(qg_transport_kind_name(QG_TRANSPORT_BT_LE), "bt_le");
	EXPECT_STREQ(qg_transport_reason_name(QG_TRANSPORT_RECOVERED), "recovered");
	EXPECT_STREQ(qg_transport_kind_name(QG_TRANSPORT_KIND_COUNT), "?");
}

// The highest base wins at start, whatever the order; equal bases go to the one listed first.
TEST(TransportChoose, BestAtStartAndByScore)
{
	const qg_transport_kind bt_first[] = { QG_TRANSPORT_BT_LE, QG_TRANSPORT_BT_BREDR, QG_TRANSPORT_UDP };
	const qg_transport_kind two_bt[] = { QG_TRANSPORT_BT_BREDR, QG_TRANSPORT_BT_BREDR };
	qg_transport_sel s;

	ASSERT_EQ(qg_transport_init(&s, nullptr, bt_first, 3, 0), 0);
	EXPECT_EQ(qg_transport_current(&s), 2u);
	EXPECT_EQ(s.path[0].score, QG_TRANSPORT_DEFAULT_BASE_LE);
	ASSERT_EQ(qg_transport_init(&s, nullptr, two_bt, 2, 0), 0);
	EXPECT_EQ(qg_transport_current(&s), 0u);

	// Scores: loss and RTT come off the base.
	ASSERT_EQ(qg_transport_init(&s, nullptr, bt_first, 3, 0), 0);
	qg_transport_record(&s, 1, 1, 40000, 0, nullptr); // first RTT sample taken as is
	EXPECT_EQ(s.path[1].rtt_us, 40000u);
	EXPECT_EQ(s.path[1].score, QG_TRANSPORT_DEFAULT_BASE_BREDR - 40);
	qg_transport_record(&s, 1, 0, 0, 0, nullptr); // one loss: EWMA 20 %
	EXPECT_EQ(s.path[1].loss_ppm, 200000u);
	EXPECT_EQ(s.path[1].score, QG_TRANSPORT_DEFAULT_BASE_BREDR - 40 - 200);
	EXPECT_EQ(s.path[1].failures, 1u);
	EXPECT_TRUE(s.path[1].healthy);
	EXPECT_EQ(s.switches, 0u);
}

// The current path dies: after fall failures traffic moves at once, no hold.
TEST_F(Sel, FailoverIsImmediate)
{
	round(true);
	EXPECT_EQ(qg_transport_current(&s), kUdp);
	round(false);
	round(false);
	EXPECT_EQ(qg_transport_current(&s), kUdp) << "two failures are not yet fall (3)";
	record(kUdp, false, 0);
	ASSERT_EQ(switches.size(), 1u);
	EXPECT_EQ(qg_transport_current(&s), kBt);
	EXPECT_EQ(switches[0].reason, QG_TRANSPORT_FAILOVER);
	EXPECT_EQ(switches[0].from, kUdp);
	EXPECT_EQ(switches[0].to, kBt);
	EXPECT_EQ(switches[0].at_ms, now);
	EXPECT_FALSE(s.path[kUdp].healthy);
}

// A lossy but never dead UDP path: the switch waits until the BT path has led by the margin for hold_ms.
TEST_F(Sel, DegradationSwitchesAfterHold)
{
	for (int i = 0; i < 5; i++)
		round(true);
	// Two losses out of three, never three in a row: UDP stays healthy, its score sinks.
	uint64_t lead_since = 0;
	for (int i = 0; i < 60 && switches.empty(); i++) {
		bool ok = i % 3 == 2;

		record(kUdp, ok, 1000);
		record(kBt, true, 30000);
		ASSERT_TRUE(s.path[kUdp].healthy);
		bool leads = s.path[kBt].score >= s.path[kUdp].score + (int32_t)QG_TRANSPORT_DEFAULT_MARGIN;
		if (leads && !lead_since)
			lead_since = now;
		if (!leads)
			lead_since = 0;
		if (switches.empty() && lead_since) {
			EXPECT_LT(now - lead_since, QG_TRANSPORT_DEFAULT_HOLD_MS)
				<< "no switch before the hold";
		}
		now += 1000;
	}
	ASSERT_EQ(switches.size(), 1u);
	EXPECT_EQ(switches[0].reason, QG_TRANSPORT_DEGRADED);
	EXPECT_EQ(switches[0].to, kBt);
	EXPECT_EQ(switches[0].at_ms - lead_since, QG_TRANSPORT_DEFAULT_HOLD_MS);
	EXPECT_GE(switches[0].to_score, switches[0].from_score + (int32_t)QG_TRANSPORT_DEFAULT_MARGIN);
}

// A lead that is interrupted restarts the hold; tick() honours a hold that ends between probes.
TEST_F(Sel, InterruptedLeadRestartsHoldAndTickSwitches)
{
	qg_transport_switch sw;

	// Drive UDP down until BT leads by the margin.
	while (s.challenger < 0) {
		record(kUdp, s.path[kUdp].fail_run < 2 ? false : true, 1000);
		now += 100;
	}
	uint64_t t0 = now - 100;
	// Good probes make UDP catch up: the lead is gone, the challenge with it.
	while (s.challenger >= 0) {
		record(kUdp, true, 1000);
		now += 100;
	}
	EXPECT_EQ(switches.size(), 0u);
	EXPECT_LT(now - t0, QG_TRANSPORT_DEFAULT_HOLD_MS);
	// Down again: a new challenge starts now, and only the tick at its end switches.
	while (s.challenger < 0) {
		record(kUdp, s.path[kUdp].fail_run < 2 ? false : true, 1000);
		now += 100;
	}
	uint64_t t1 = s.challenge_since_ms;
	EXPECT_GT(t1, t0);
	EXPECT_EQ(qg_transport_tick(&s, t1 + QG_TRANSPORT_DEFAULT_HOLD_MS - 1, &sw), 0);
	EXPECT_EQ(qg_transport_tick(&s, t1 + QG_TRANSPORT_DEFAULT_HOLD_MS, &sw), 1);
	EXPECT_EQ(sw.at_ms, t1 + QG_TRANSPORT_DEFAULT_HOLD_MS);
	EXPECT_EQ(qg_transport_current(&s), kBt);
}

// The preferred path recovers: traffic goes back once its lead held, reason "recovered".
TEST_F(Sel, ReturnsWhenPreferredRecovers)
{
	for (int i = 0; i < 4; i++)
		round(false);
	ASSERT_EQ(qg_transport_current(&s), kBt);
	ASSERT_EQ(switches.size(), 1u);
	uint64_t healthy_at = 0;
	for (int i = 0; i < 60 && switches.size() == 1; i++) {
		round(true);
		if (!healthy_at && s.path[kUdp].healthy)
			healthy_at = now - 1000;
	}
	ASSERT_EQ(switches.size(), 2u);
	EXPECT_EQ(switches[1].reason, QG_TRANSPORT_RECOVERED);
	EXPECT_EQ(switches[1].to, kUdp);
	EXPECT_EQ(qg_transport_current(&s), kUdp);
	// Rise (2) alone is not enough: the loss EWMA must fade and the lead hold for 5 s.
	EXPECT_GE(switches[1].at_ms - healthy_at, QG_TRANSPORT_DEFAULT_HOLD_MS);
	EXPECT_EQ(s.switches, 2u);
}

// A tiny deterministic PRNG: the same noise on every run.
uint32_t lcg(uint32_t *x)
{
	*x = *x * 1664525u + 1013904223u;
	return *x >> 8;
}

// Noisy loss around the break-even point: the raw scores cross over and over, the choice barely moves.
TEST_F(Sel, NoisyLossDoesNotFlap)
{
	uint32_t seed = 12345;
	int crossings = 0, prev_better = -1;

	// UDP at 50 % random loss sits where its score and BT's cross; count how often the order flips.
	for (int i = 0; i < 600; i++) {
		record(kUdp, lcg(&seed) % 100 >= 50, 1000);
		record(kBt, true, 30000);
		int better = s.path[kUdp].score > s.path[kBt].score;
		if (prev_better >= 0 && better != prev_better)
			crossings++;
		prev_better = better;
		now += 1000;
	}
	EXPECT_GT(crossings, 20) << "the noise must actually make the scores cross";
	EXPECT_LE(switches.size(), 3u) << "hysteresis keeps the choice stable";

	// Light noise (10 % loss) on the preferred path never moves traffic off it.
	Sel::SetUp();
	switches.clear();
	for (int i = 0; i < 600; i++) {
		record(kUdp, lcg(&seed) % 100 >= 10 || s.path[kUdp].fail_run >= 2, 1000);
		record(kBt, true, 30000);
		now += 1000;
	}
	EXPECT_EQ(switches.size(), 0u);
	EXPECT_EQ(qg_transport_current(&s), kUdp);
}

// Nothing healthy: stay put rather than hop between dead paths.
TEST_F(Sel, NothingHealthyStays)
{
	for (int i = 0; i < 4; i++) {
		record(kUdp, false, 0);
		record(kBt, false, 0);
		now += 1000;
	}
	// UDP died first (both fail the same round; UDP is recorded first while BT is still healthy).
	EXPECT_EQ(switches.size(), 1u);
	uint64_t before = s.switches;
	for (int i = 0; i < 10; i++) {
		record(kUdp, false, 0);
		record(kBt, false, 0);
		now += 1000;
	}
	EXPECT_EQ(s.switches, before);
}

TEST_F(Sel, SwitchEvent)
{
	for (int i = 0; i < 4; i++)
		round(false);
	ASSERT_EQ(switches.size(), 1u);
	qg_event ev;
	qg_transport_switch_event(&switches[0], 2, 5, &ev);
	EXPECT_EQ(ev.type, QG_EVENT_PATH_SWITCH);
	EXPECT_EQ(ev.severity, QG_EVENT_SEV_WARNING);
	EXPECT_EQ(ev.service, 2);
	EXPECT_EQ(ev.backend, 5);
	EXPECT_EQ(ev.arg[0], 0);
	EXPECT_EQ(ev.arg[1], 1);
	EXPECT_EQ(ev.arg[2], switches[0].from_score);
	EXPECT_STREQ(ev.text, "udp -> bt_bredr (failover)");
	EXPECT_STREQ(qg_event_type_name(QG_EVENT_PATH_SWITCH), "path_switch");

	// It goes through the bus like any event.
	qg_event_bus *bus;
	ASSERT_EQ(qg_events_create(&bus), 0);
	EXPECT_EQ(qg_events_publish(bus, &ev), 0);
	qg_event recent[4];
	ASSERT_EQ(qg_events_recent(bus, recent, 4), 1u);
	EXPECT_EQ(recent[0].type, QG_EVENT_PATH_SWITCH);
	qg_events_destroy(bus);
}

} // namespace
