// SPDX-License-Identifier: BSD-3-Clause
// The path selector of multi-transport backends (qgate/paths.h) with a real
// health checker core on fake probes and an injected clock: udp results come
// through the checker's diversion, Bluetooth results as the bridge would
// report them; the test checks the dataplane calls, the events and the
// backends' health.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

extern "C" {
#include "qgate/config.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/paths.h"
}

namespace
{

struct Fake {
	std::vector<unsigned> sent;				     // probe ids, in order
	std::vector<std::tuple<unsigned, unsigned, unsigned>> paths; // set_path (svc, b, path)
	int up[3] = { 1, 1, 1 };
};

int FakeSend(void *ctx, unsigned id, uint64_t)
{
	static_cast<Fake *>(ctx)->sent.push_back(id);
	return 0;
}

int FakeSetUp(void *ctx, unsigned, unsigned b, int up)
{
	static_cast<Fake *>(ctx)->up[b] = up;
	return 0;
}

int FakeSetPath(void *ctx, unsigned svc, unsigned b, unsigned path)
{
	static_cast<Fake *>(ctx)->paths.emplace_back(svc, b, path);
	return 0;
}

const char kYaml[] =
	"services:\n"
	"  - name: s\n"
	"    listen: 127.0.0.1:9000\n"
	"    health: {probe: udp, interval: 100ms, timeout: 50ms, rise: 2, fall: 2, path_hold: 500ms}\n"
	"    backends:\n"
	"      - paths: [127.0.0.1:7000, bt://00:11:22:33:44:55/0x1001]\n"
	"      - address: bt://00:11:22:33:44:66/0x1003\n"
	"      - address: 127.0.0.1:7001\n";

class Paths : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		qg_config_errors errs;
		memset(&errs, 0, sizeof(errs));
		ASSERT_EQ(qg_config_load_string("p.yaml", kYaml, strlen(kYaml), &cfg_, &errs), 0);
		ASSERT_EQ(qg_events_create(&bus_), 0);
		qg_health_ops hops{};
		hops.send = FakeSend;
		hops.set_up = FakeSetUp;
		ASSERT_EQ(qg_health_create(cfg_, &hops, &fake_, bus_, 0, &hc_), 0);
		qg_paths_ops pops{};
		pops.set_path = FakeSetPath;
		ASSERT_EQ(qg_paths_create(cfg_, hc_, &pops, &fake_, bus_, 0, &pm_), 0);
	}
	void TearDown() override
	{
		qg_paths_destroy(pm_);
		qg_health_destroy(hc_);
		qg_events_destroy(bus_);
		qg_config_free(cfg_);
	}
	// Run the clock until the checker sends backend 0's udp probe, then answer it.
	void Udp(int ok)
	{
		size_t before = fake_.sent.size();
		for (int i = 0; i < 20; i++) {
			now_ += 10;
			qg_health_tick(hc_, now_);
			qg_paths_tick(pm_, now_);
			for (size_t k = before; k < fake_.sent.size(); k++)
				if (fake_.sent[k] == 0) {
					now_ += 1;
					qg_health_reply(hc_, 0, ok, now_);
					return;
				}
		}
		FAIL() << "no udp probe of backend 0 was sent";
	}
	void Bt(unsigned b, int ok)
	{
		now_ += 10;
		ASSERT_EQ(qg_paths_bt_result(pm_, 0, b, b == 0 ? 1 : 0, ok, 3000, now_), 0);
		qg_health_tick(hc_, now_);
	}
	unsigned Current(unsigned b)
	{
		qg_paths_info pi;
		EXPECT_EQ(qg_paths_get_info(pm_, 0, b, &pi), 0);
		return pi.path[pi.current].cfg_path;
	}
	qg_health_info Health(unsigned b)
	{
		qg_health_info hi{};
		EXPECT_EQ(qg_health_backend_info(hc_, (unsigned)qg_health_backend_id(hc_, 0, b), &hi), 0);
		return hi;
	}
	std::vector<std::string> Switches()
	{
		std::vector<std::string> out;
		qg_event ev[QG_EVENTS_RECENT];
		unsigned n = qg_events_recent(bus_, ev, QG_EVENTS_RECENT);
		for (unsigned i = 0; i < n; i++)
			if (ev[i].type == QG_EVENT_PATH_SWITCH)
				out.push_back(std::string(ev[i].backend_name) + " " + ev[i].text);
		return out;
	}

	qg_config *cfg_ = nullptr;
	qg_event_bus *bus_ = nullptr;
	qg_health *hc_ = nullptr;
	qg_paths *pm_ = nullptr;
	Fake fake_;
	uint64_t now_ = 0;
};

TEST_F(Paths, ScoresBackendsWithABluetoothPath)
{
	qg_paths_info pi;

	ASSERT_EQ(qg_paths_get_info(pm_, 0, 0, &pi), 0);
	ASSERT_EQ(pi.n, 2u);
	EXPECT_EQ(pi.path[0].cfg_path, 0u);
	EXPECT_EQ(pi.path[0].t.kind, QG_TRANSPORT_UDP);
	EXPECT_EQ(pi.path[1].t.kind, QG_TRANSPORT_BT_BREDR);
	EXPECT_EQ(pi.current, 0u) << "udp has the highest base";
	ASSERT_EQ(qg_paths_get_info(pm_, 0, 1, &pi), 0);
	EXPECT_EQ(pi.n, 1u);
	EXPECT_EQ(qg_paths_get_info(pm_, 0, 2, &pi), -ENOENT) << "a udp-only backend has no choice";
	EXPECT_EQ(qg_paths_bt_result(pm_, 0, 2, 0, 1, 0, 0), -ENOENT);
	EXPECT_EQ(qg_paths_bt_result(pm_, 0, 0, 0, 1, 0, 0), -ENOENT) << "path 0 is the udp one";
	// The Bluetooth-only backend counts as probed now: its paths give it active health.
	EXPECT_TRUE(Health(1).probed);
}

TEST_F(Paths, FailsOverWhenTheUdpPathFailsAndReturnsAfterTheHold)
{
	Udp(1);
	Udp(1);
	Bt(0, 1);
	EXPECT_EQ(Health(0).state, QG_HEALTH_HEALTHY);
	EXPECT_TRUE(fake_.paths.empty());

	// fall 2: the second failure makes the udp path unhealthy and the traffic moves at once.
	Udp(0);
	EXPECT_EQ(Current(0), 0u);
	Udp(0);
	EXPECT_EQ(Current(0), 1u);
	ASSERT_EQ(fake_.paths.size(), 1u);
	EXPECT_EQ(fake_.paths[0], std::make_tuple(0u, 0u, 1u));
	auto sw = Switches();
	ASSERT_EQ(sw.size(), 1u);
	EXPECT_EQ(
		sw[0],
		"127.0.0.1:7000 udp -> bt_bredr (failover): 127.0.0.1:7000 -> bt://00:11:22:33:44:55/0x1001");

	// The backend stays up: its health follows the Bluetooth path it uses now, not the dead udp path.
	for (int i = 0; i < 5; i++) {
		Udp(0);
		Bt(0, 1);
	}
	EXPECT_NE(Health(0).state, QG_HEALTH_UNHEALTHY);
	EXPECT_EQ(fake_.up[0], 1);

	// udp recovers (rise 2); once its loss has decayed enough to lead by the margin, it must hold the
	// lead for 500 ms before the traffic returns.
	uint64_t lead = 0, start = now_;
	auto leads = [this, &lead] {
		qg_paths_info pi;
		ASSERT_EQ(qg_paths_get_info(pm_, 0, 0, &pi), 0);
		if (!lead && pi.path[0].t.healthy && pi.path[0].t.score >= pi.path[1].t.score + 100)
			lead = now_;
	};
	while (Current(0) == 1 && now_ < start + 10000) {
		Udp(1);
		leads();
		if (Current(0) == 1) {
			Bt(0, 1);
			leads();
		}
	}
	EXPECT_EQ(Current(0), 0u);
	ASSERT_NE(lead, 0u);
	EXPECT_GE(now_, lead + 500) << "switched back before the hold ran out";
	EXPECT_LE(now_, lead + 500 + 150) << "not switched back when the hold ran out";
	ASSERT_EQ(fake_.paths.size(), 2u);
	EXPECT_EQ(fake_.paths[1], std::make_tuple(0u, 0u, 0u));
	sw = Switches();
	ASSERT_EQ(sw.size(), 2u);
	EXPECT_NE(sw[1].find("bt_bredr -> udp (recovered)"), std::string::npos) << sw[1];
}

TEST_F(Paths, BluetoothOnlyBackendHealthFollowsItsPath)
{
	Bt(1, 1);
	Bt(1, 1);
	EXPECT_EQ(Health(1).state, QG_HEALTH_HEALTHY);
	Bt(1, 0);
	Bt(1, 0);
	EXPECT_EQ(Health(1).state, QG_HEALTH_UNHEALTHY);
	EXPECT_EQ(fake_.up[1], 0) << "marked down in the dataplane";
	EXPECT_TRUE(fake_.paths.empty()) << "one path: nothing to switch to";
	Bt(1, 1);
	Bt(1, 1);
	EXPECT_EQ(Health(1).state, QG_HEALTH_HEALTHY);
	EXPECT_EQ(fake_.up[1], 1);
}

TEST_F(Paths, DestroyHandsTheBackendsBackToTheChecker)
{
	qg_paths_destroy(pm_);
	pm_ = nullptr;
	// Not diverted any more: udp probes judge backend 0 directly again, and reports are ignored.
	qg_health_report(hc_, 1, 0, 1, "x");
	EXPECT_EQ(Health(1).probes, 0u);
	EXPECT_FALSE(Health(1).probed);
}

} // namespace
