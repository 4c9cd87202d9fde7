// SPDX-License-Identifier: BSD-3-Clause
// The health checker's core with an injected clock and a fake prober: no
// sockets, every probe outcome and every timestamp chosen by the test.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "qgate/config.h"
#include "qgate/events.h"
#include "qgate/health.h"
}

namespace
{

struct Fake {
	std::vector<std::pair<unsigned, uint64_t>> sent; // (id, when)
	std::map<unsigned, int> up;			 // last set_up per id (svc 0 only)
	std::vector<qg_backend_stats> st;
	int set_up_calls = 0;
};

int FakeSend(void *ctx, unsigned id, uint64_t now)
{
	static_cast<Fake *>(ctx)->sent.push_back({ id, now });
	return 0;
}

int FakeSetUp(void *ctx, unsigned svc, unsigned b, int up)
{
	auto *f = static_cast<Fake *>(ctx);
	(void)svc;
	f->up[b] = up;
	f->set_up_calls++;
	return 0;
}

int FakeStats(void *ctx, unsigned svc, unsigned b, qg_backend_stats *out)
{
	auto *f = static_cast<Fake *>(ctx);
	(void)svc;
	if (b >= f->st.size())
		return -ENOENT;
	*out = f->st[b];
	return 0;
}

qg_config *Load(const std::string &health, const std::string &circuit = "", unsigned n = 3)
{
	std::string y =
		"services:\n  - name: s\n    listen: \"127.0.0.1:9000\"\n    health: " + health + "\n";
	if (!circuit.empty())
		y += "    circuit: " + circuit + "\n";
	y += "    backends:\n";
	for (unsigned i = 0; i < n; i++)
		y += "      - address: \"127.0.0." + std::to_string(10 + i) + ":7000\"\n";
	qg_config_errors errs;
	memset(&errs, 0, sizeof(errs));
	qg_config *cfg = nullptr;
	EXPECT_EQ(qg_config_load_string("h.yaml", y.c_str(), y.size(), &cfg, &errs), 0)
		<< (errs.count ? errs.items[0].msg : "") << "\n"
		<< y;
	return cfg;
}

class Health : public ::testing::Test
{
      protected:
	void Make(const std::string &health, const std::string &circuit = "", unsigned n = 3,
		  bool with_stats = false)
	{
		cfg_ = Load(health, circuit, n);
		ASSERT_NE(cfg_, nullptr);
		qg_health_ops ops{};
		ops.send = FakeSend;
		ops.set_up = FakeSetUp;
		if (with_stats) {
			ops.stats = FakeStats;
			fake_.st.assign(n, qg_backend_stats{});
		}
		ASSERT_EQ(qg_events_create(&bus_), 0);
		ASSERT_EQ(qg_health_create(cfg_, &ops, &fake_, bus_, now_, &hc_), 0);
	}
	void TearDown() override
	{
		qg_health_destroy(hc_);
		qg_events_destroy(bus_);
		qg_config_free(cfg_);
	}
	qg_health_info Info(unsigned id)
	{
		qg_health_info i;
		EXPECT_EQ(qg_health_backend_info(hc_, id, &i), 0);
		return i;
	}
	// Advance to t, ticking every ms; answer each probe of id with ok(probe number) at once.
	template <typename F> void RunUntil(uint64_t t, F answer)
	{
		for (; now_ <= t; now_++) {
			size_t before = fake_.sent.size();
			qg_health_tick(hc_, now_);
			for (size_t k = before; k < fake_.sent.size(); k++) {
				int r = answer(fake_.sent[k].first, probes_[fake_.sent[k].first]++);
				if (r >= 0)
					qg_health_reply(hc_, fake_.sent[k].first, r, now_);
			}
		}
	}
	std::vector<qg_event> Events(qg_event_type type)
	{
		std::vector<qg_event> all(QG_EVENTS_RECENT), out;
		unsigned n = qg_events_recent(bus_, all.data(), QG_EVENTS_RECENT);
		for (unsigned i = 0; i < n; i++)
			if (all[i].type == type)
				out.push_back(all[i]);
		return out;
	}

	qg_config *cfg_ = nullptr;
	qg_event_bus *bus_ = nullptr;
	qg_health *hc_ = nullptr;
	Fake fake_;
	uint64_t now_ = 100000;
	std::map<unsigned, unsigned> probes_;
};

TEST_F(Health, FirstProbesSpreadOverTheInterval)
{
	Make("{probe: udp, interval: 1s}", "", 8);
	uint64_t start = now_;
	RunUntil(start + 999, [](unsigned, unsigned) { return 1; });
	std::set<uint64_t> when;
	std::set<unsigned> ids;
	for (auto &s : fake_.sent) {
		EXPECT_GE(s.second, start);
		EXPECT_LT(s.second, start + 1000);
		when.insert(s.second);
		ids.insert(s.first);
	}
	EXPECT_EQ(ids.size(), 8u) << "every backend probed once in its first interval";
	EXPECT_EQ(fake_.sent.size(), 8u);
	EXPECT_GE(when.size(), 6u) << "probes must not leave at once";
	// Then each backend exactly every interval, keeping its phase.
	RunUntil(start + 2999, [](unsigned, unsigned) { return 1; });
	std::map<unsigned, std::vector<uint64_t>> per;
	for (auto &s : fake_.sent)
		per[s.first].push_back(s.second);
	for (auto &p : per) {
		ASSERT_EQ(p.second.size(), 3u);
		EXPECT_EQ(p.second[1] - p.second[0], 1000u);
		EXPECT_EQ(p.second[2] - p.second[1], 1000u);
	}
}

TEST_F(Health, RiseAndFallHysteresis)
{
	Make("{probe: udp, interval: 100ms, timeout: 50ms, rise: 2, fall: 3}", "{failures: 1000}", 1);
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNKNOWN);
	EXPECT_EQ(Info(0).up, 1) << "unknown counts as up";
	// Probe 0: ok -> still unknown; probe 1: ok -> healthy.
	bool fail = false;
	auto answer = [&](unsigned, unsigned) { return fail ? 0 : 1; };
	RunUntil(now_ + 99, answer);
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNKNOWN);
	RunUntil(now_ + 99, answer);
	EXPECT_EQ(Info(0).state, QG_HEALTH_HEALTHY);
	// Two failures: still healthy (degraded rule needs 3 in the window); the third: unhealthy.
	fail = true;
	size_t n0 = fake_.sent.size();
	while (fake_.sent.size() < n0 + 2)
		RunUntil(now_, answer);
	EXPECT_NE(Info(0).state, QG_HEALTH_UNHEALTHY);
	EXPECT_EQ(Info(0).up, 1);
	while (fake_.sent.size() < n0 + 3)
		RunUntil(now_, answer);
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNHEALTHY);
	qg_health_tick(hc_, now_); // the next tick publishes what the reply decided
	EXPECT_EQ(Info(0).up, 0);
	EXPECT_EQ(fake_.up[0], 0);
	// One success is not enough to come back; two are.
	fail = false;
	n0 = fake_.sent.size();
	while (fake_.sent.size() < n0 + 1)
		RunUntil(now_, answer);
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNHEALTHY);
	while (fake_.sent.size() < n0 + 2)
		RunUntil(now_, answer);
	EXPECT_NE(Info(0).state, QG_HEALTH_UNHEALTHY);
	qg_health_tick(hc_, now_);
	EXPECT_EQ(Info(0).up, 1);
	EXPECT_EQ(fake_.up[0], 1);
	EXPECT_EQ(Events(QG_EVENT_BACKEND_DOWN).size(), 1u);
	EXPECT_GE(Events(QG_EVENT_BACKEND_UP).size(), 2u);
}

TEST_F(Health, UnansweredProbeFailsAtItsTimeout)
{
	Make("{probe: udp, interval: 100ms, timeout: 40ms, rise: 1, fall: 1}", "", 1);
	RunUntil(now_ + 99, [](unsigned, unsigned) { return -1; }); // never answered
	ASSERT_EQ(fake_.sent.size(), 1u);
	uint64_t sent = fake_.sent[0].second;
	// Exactly at sent + timeout the probe fails (fall 1: unhealthy), not a ms before.
	qg_health_info i = Info(0);
	if (now_ < sent + 40) {
		RunUntil(sent + 39, [](unsigned, unsigned) { return -1; });
		EXPECT_EQ(Info(0).failures, 0u);
	}
	RunUntil(sent + 40, [](unsigned, unsigned) { return -1; });
	i = Info(0);
	EXPECT_EQ(i.failures, 1u);
	EXPECT_EQ(i.state, QG_HEALTH_UNHEALTHY);
	// next_ms tells the caller when to wake: the next probe, one interval after the first.
	EXPECT_EQ(qg_health_next_ms(hc_), sent + 100);
}

TEST_F(Health, LateReplyDoesNotCount)
{
	Make("{probe: udp, interval: 100ms, timeout: 20ms, rise: 1, fall: 1}", "", 1);
	RunUntil(now_ + 99, [](unsigned, unsigned) { return -1; });
	uint64_t sent = fake_.sent.at(0).second;
	RunUntil(sent + 30, [](unsigned, unsigned) { return -1; });
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNHEALTHY);
	qg_health_reply(hc_, 0, 1, now_); // the answer after the timeout
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNHEALTHY);
}

TEST_F(Health, DegradedWhenRecentProbesPartlyFail)
{
	Make("{probe: udp, interval: 100ms, timeout: 50ms, rise: 2, fall: 3}", "{failures: 1000}", 1);
	// Every other probe fails: never fall consecutive failures, but lossy.
	RunUntil(now_ + 2000, [](unsigned, unsigned k) { return k < 2 || k % 2 ? 1 : 0; });
	qg_health_info i = Info(0);
	EXPECT_EQ(i.state, QG_HEALTH_DEGRADED);
	EXPECT_EQ(i.up, 1) << "degraded still takes flows";
	EXPECT_GE(Events(QG_EVENT_BACKEND_DEGRADED).size(), 1u);
	EXPECT_EQ(Events(QG_EVENT_BACKEND_DOWN).size(), 0u);
	// Clean probes bring it back to healthy once the window forgets the failures.
	RunUntil(now_ + 1500, [](unsigned, unsigned) { return 1; });
	EXPECT_EQ(Info(0).state, QG_HEALTH_HEALTHY);
}

TEST_F(Health, FivePercentLossDoesNotFlap)
{
	Make("{probe: udp, interval: 100ms, timeout: 50ms, rise: 2, fall: 2}", "", 1);
	// One probe in 20 lost, spread out as a lossy link does on average.
	RunUntil(now_ + 100 * 100, [](unsigned, unsigned k) { return k % 20 == 7 ? 0 : 1; });
	EXPECT_GE(Info(0).probes, 100u);
	EXPECT_EQ(Events(QG_EVENT_BACKEND_DOWN).size(), 0u);
	EXPECT_EQ(Info(0).up, 1);
	for (auto &u : fake_.up)
		EXPECT_EQ(u.second, 1);
}

TEST_F(Health, PassiveRefusalsOpenTheCircuitAndTheTrialIsBounded)
{
	Make("{probe: none}", "{failures: 3, open_timeout: 1s, half_open_flows: 2, successes: 1}", 2, true);
	qg_health_tick(hc_, now_); // first figures; read every QG_HEALTH_PASSIVE_MS
	fake_.st[0].refused = 3;
	qg_health_tick(hc_, now_ += QG_HEALTH_PASSIVE_MS);
	EXPECT_EQ(Info(0).circuit, QG_BREAKER_OPEN);
	EXPECT_EQ(Info(0).up, 0);
	EXPECT_EQ(fake_.up[0], 0);
	EXPECT_EQ(Info(1).up, 1) << "the other backend is not affected";
	// Open for open_timeout, then half-open: up again for at most half_open_flows new flows.
	now_ += 999;
	qg_health_tick(hc_, now_);
	EXPECT_EQ(Info(0).circuit, QG_BREAKER_OPEN);
	qg_health_tick(hc_, now_ += QG_HEALTH_PASSIVE_MS);
	EXPECT_EQ(Info(0).circuit, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(Info(0).up, 1);
	fake_.st[0].flows_created += 2; // the dataplane admitted the trial's flows
	qg_health_tick(hc_, now_ += QG_HEALTH_PASSIVE_MS);
	EXPECT_EQ(Info(0).circuit, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(Info(0).up, 0) << "trial exhausted: no more new flows until a verdict";
	// A reply from the backend (rx grows) is a success: the circuit closes.
	fake_.st[0].rx_pkts += 5;
	qg_health_tick(hc_, now_ += QG_HEALTH_PASSIVE_MS);
	EXPECT_EQ(Info(0).circuit, QG_BREAKER_CLOSED);
	EXPECT_EQ(Info(0).up, 1);
	auto ev = Events(QG_EVENT_CIRCUIT_CHANGE);
	ASSERT_EQ(ev.size(), 3u);
	EXPECT_EQ(ev[0].arg[1], QG_BREAKER_OPEN);
	EXPECT_EQ(ev[1].arg[1], QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(ev[2].arg[1], QG_BREAKER_CLOSED);
	EXPECT_STREQ(ev[0].service_name, "s");
	EXPECT_STREQ(ev[0].backend_name, "127.0.0.10:7000");
}

TEST_F(Health, NoProbeStaysUnknownAndUp)
{
	Make("{probe: none}", "", 2);
	qg_health_tick(hc_, now_ + 5000);
	EXPECT_TRUE(fake_.sent.empty());
	EXPECT_EQ(Info(0).state, QG_HEALTH_UNKNOWN);
	EXPECT_EQ(Info(0).up, 1);
	EXPECT_EQ(qg_health_next_ms(hc_), UINT64_MAX);
}

} // namespace
