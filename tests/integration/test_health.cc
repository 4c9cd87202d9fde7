// SPDX-License-Identifier: BSD-3-Clause
// Health checking end to end, in process: the dataplane relays real UDP to
// three echo backends while the real checker (UDP probes over loopback)
// ticks in a thread standing in for the control loop. A backend is killed,
// must be marked down in bounded time, its clients rehomed; restarted, it
// must come back; and a lossy backend must not flap.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "integration/udp_peers.h"

extern "C" {
#include "qgate/clock.h"
#include "qgate/config.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/log.h"
}

namespace
{

// An echo backend on a fixed loopback port that can be stopped and started
// again on the same port, and can lose every Nth probe ("ping") it gets.
class Echo
{
      public:
	Echo(uint16_t port, unsigned drop_every = 0) : port_(port), drop_every_(drop_every)
	{
		Start();
	}
	~Echo()
	{
		Stop();
	}
	void Start()
	{
		fd_ = socket(AF_INET, SOCK_DGRAM, 0);
		sockaddr_in sin{};
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port_);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ASSERT_EQ(bind(fd_, (sockaddr *)&sin, sizeof(sin)), 0) << strerror(errno);
		stop_ = false;
		thread_ = std::thread([this] { Run(); });
	}
	void Stop()
	{
		if (fd_ < 0)
			return;
		stop_ = true;
		thread_.join();
		close(fd_);
		fd_ = -1;
	}
	std::string addr() const
	{
		return "127.0.0.1:" + std::to_string(port_);
	}
	std::atomic<uint64_t> probes{ 0 }, data{ 0 };

      private:
	void Run()
	{
		uint8_t buf[2048];
		while (!stop_) {
			pollfd p{ fd_, POLLIN, 0 };
			if (poll(&p, 1, 20) <= 0)
				continue;
			sockaddr_storage from{};
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, (sockaddr *)&from, &fl);
			if (n < 0)
				continue;
			if (n == 4 && !memcmp(buf, "ping", 4)) {
				uint64_t k = ++probes;
				if (drop_every_ && k % drop_every_ == 0)
					continue;
			} else {
				data++;
			}
			sendto(fd_, buf, n, 0, (sockaddr *)&from, fl);
		}
	}
	uint16_t port_;
	unsigned drop_every_;
	int fd_ = -1;
	std::atomic<bool> stop_{ false };
	std::thread thread_;
};

class HealthE2E : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		qg_log_set_level(QG_LOG_WARN);
	}
	void TearDown() override
	{
		stop_ = true;
		if (ticker_.joinable())
			ticker_.join();
		qg_health_destroy(hc_);
		qg_dataplane_destroy(dp_);
		qg_events_destroy(bus_);
		qg_config_free(cfg_);
	}
	void Start(const std::vector<Echo *> &bk, const std::string &health)
	{
		listen_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		std::string y = "dataplane:\n  backend: recvmmsg\n  cores: [0]\n  flows_per_core: 4096\n"
				"  upstream_sockets_per_core: 1024\n  rx_buffers: 1024\n"
				"services:\n  - name: echo\n    listen: \"" +
				listen_ + "\"\n    policy: maglev\n    health: " + health +
				"\n    backends:\n";
		for (auto *e : bk)
			y += "      - address: \"" + e->addr() + "\"\n";
		qg_config_errors errs;
		memset(&errs, 0, sizeof(errs));
		ASSERT_EQ(qg_config_load_string("h.yaml", y.c_str(), y.size(), &cfg_, &errs), 0)
			<< (errs.count ? errs.items[0].msg : "") << y;
		ASSERT_EQ(qg_dataplane_create(cfg_, &dp_), 0);
		ASSERT_EQ(qg_dataplane_start(dp_), 0);
		ASSERT_EQ(qg_events_create(&bus_), 0);
		ASSERT_EQ(qg_health_create_udp(cfg_, dp_, bus_, qg_clock_ms(), &hc_), 0);
		// The control loop: tick every 2 ms (the daemon wakes for each probe and timeout).
		ticker_ = std::thread([this] {
			while (!stop_) {
				{
					std::lock_guard<std::mutex> g(mu_);
					qg_health_tick(hc_, qg_clock_ms());
				}
				std::this_thread::sleep_for(std::chrono::milliseconds(2));
			}
		});
	}
	qg_health_info Info(unsigned b)
	{
		std::lock_guard<std::mutex> g(mu_);
		qg_health_info i;
		EXPECT_EQ(qg_health_backend_info(hc_, b, &i), 0);
		return i;
	}
	unsigned Count(qg_event_type type, const std::string &backend)
	{
		std::lock_guard<std::mutex> g(mu_);
		std::vector<qg_event> all(QG_EVENTS_RECENT);
		unsigned n = qg_events_recent(bus_, all.data(), QG_EVENTS_RECENT), c = 0;
		for (unsigned i = 0; i < n; i++)
			c += all[i].type == type && backend == all[i].backend_name;
		return c;
	}
	uint64_t Ctr(qg_ctr_id id)
	{
		qg_ctr_block c;
		qg_dataplane_counters(dp_, &c);
		return c.v[id];
	}
	// Wait (bounded) until pred holds; returns the ms it took, or -1.
	template <typename P> long WaitMs(P pred, int max_ms)
	{
		auto t0 = std::chrono::steady_clock::now();
		for (;;) {
			long el = std::chrono::duration_cast<std::chrono::milliseconds>(
					  std::chrono::steady_clock::now() - t0)
					  .count();
			if (pred())
				return el;
			if (el > max_ms)
				return -1;
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		}
	}

	std::string listen_;
	qg_config *cfg_ = nullptr;
	qg_dataplane *dp_ = nullptr;
	qg_event_bus *bus_ = nullptr;
	qg_health *hc_ = nullptr;
	std::mutex mu_;
	std::atomic<bool> stop_{ false };
	std::thread ticker_;
};

// interval 100 ms, fall 2: down within interval x fall + one interval (the
// first failing probe may be up to an interval away) + 100 ms scheduling
// slack (ticker period, synchronize_rcu, sanitizer build).
constexpr int kDownBoundMs = 100 * 2 + 100 + 100;
constexpr int kUpBoundMs = 100 * 2 + 100 + 100; // rise 2, same reasoning

TEST_F(HealthE2E, KilledBackendGoesDownFlowsRehomeAndItComesBack)
{
	Echo a(qgt::FreePort()), b(qgt::FreePort()), c(qgt::FreePort());
	Echo *bk[3] = { &a, &b, &c };
	Start({ &a, &b, &c }, "{probe: udp, interval: 100ms, fall: 2, rise: 2}");
	for (unsigned i = 0; i < 3; i++)
		ASSERT_GE(WaitMs([&] { return Info(i).state == QG_HEALTH_HEALTHY; }, 2000), 0) << i;

	qg_addr vip = qgt::Addr(listen_);
	std::vector<std::unique_ptr<qgt::Client>> clients;
	for (unsigned i = 0; i < 30; i++) {
		clients.emplace_back(new qgt::Client());
		ASSERT_TRUE(qgt::RoundTrip(*clients[i], vip, qgt::Payload(i, 0, 64))) << i;
	}
	// Kill the backend with the most flows.
	unsigned victim = 0;
	uint64_t most = 0;
	for (unsigned i = 0; i < 3; i++) {
		qg_backend_stats st;
		ASSERT_EQ(qg_dataplane_backend_stats(dp_, 0, i, &st), 0);
		if (st.flows_active > most) {
			most = st.flows_active;
			victim = i;
		}
	}
	ASSERT_GT(most, 0u);
	std::string vname = bk[victim]->addr();
	bk[victim]->Stop();
	long took = WaitMs([&] { return Info(victim).up == 0; }, 3000);
	ASSERT_GE(took, 0) << "never marked down";
	EXPECT_LE(took, kDownBoundMs);
	EXPECT_EQ(Info(victim).state, QG_HEALTH_UNHEALTHY);
	EXPECT_EQ(Count(QG_EVENT_BACKEND_DOWN, vname), 1u);

	// Old clients keep getting replies: their flows move on their next datagram.
	uint64_t rehomed0 = Ctr(QG_CTR_FLOW_REHOMED);
	for (unsigned i = 0; i < clients.size(); i++)
		EXPECT_TRUE(qgt::RoundTrip(*clients[i], vip, qgt::Payload(i, 1, 64))) << "client " << i;
	EXPECT_GE(Ctr(QG_CTR_FLOW_REHOMED) - rehomed0, most);
	// New clients go to the others only.
	for (unsigned i = 100; i < 130; i++) {
		qgt::Client cl;
		EXPECT_TRUE(qgt::RoundTrip(cl, vip, qgt::Payload(i, 0, 64))) << i;
	}
	qg_backend_stats st;
	ASSERT_EQ(qg_dataplane_backend_stats(dp_, 0, victim, &st), 0);
	EXPECT_EQ(st.flows_active, 0u);

	// Back on the same port: up again after rise successes.
	bk[victim]->Start();
	took = WaitMs([&] { return Info(victim).up == 1 && Info(victim).state == QG_HEALTH_HEALTHY; }, 3000);
	ASSERT_GE(took, 0) << "never came back";
	EXPECT_LE(took, kUpBoundMs);
	EXPECT_GE(Count(QG_EVENT_BACKEND_UP, vname), 2u); // unknown -> healthy, then unhealthy -> healthy
	uint64_t before = bk[victim]->data.load();
	for (unsigned i = 200; i < 260; i++) {
		qgt::Client cl;
		EXPECT_TRUE(qgt::RoundTrip(cl, vip, qgt::Payload(i, 0, 64))) << i;
	}
	EXPECT_GT(bk[victim]->data.load(), before) << "new flows reach the restarted backend";
}

TEST_F(HealthE2E, FivePercentProbeLossDoesNotFlap)
{
	// Each backend loses one probe in 20 (never two in a row, so fall: 2 is never reached).
	Echo a(qgt::FreePort(), 20), b(qgt::FreePort(), 20), c(qgt::FreePort(), 20);
	Start({ &a, &b, &c }, "{probe: udp, interval: 100ms, fall: 2, rise: 2}");
	for (unsigned i = 0; i < 3; i++)
		ASSERT_GE(WaitMs([&] { return Info(i).state != QG_HEALTH_UNKNOWN; }, 2000), 0) << i;
	bool always_up = true;
	long took = WaitMs(
		[&] {
			for (unsigned i = 0; i < 3; i++)
				always_up &= Info(i).up == 1;
			return Info(0).probes >= 100 && Info(1).probes >= 100 && Info(2).probes >= 100;
		},
		20000);
	ASSERT_GE(took, 0);
	EXPECT_TRUE(always_up);
	for (Echo *e : { &a, &b, &c }) {
		EXPECT_EQ(Count(QG_EVENT_BACKEND_DOWN, e->addr()), 0u) << e->addr();
		// The checker counted 100 sent; the last may still be on its way to the echo.
		EXPECT_GE(WaitMs([&] { return e->probes.load() >= 100; }, 2000), 0) << e->probes.load();
	}
	for (unsigned i = 0; i < 3; i++)
		EXPECT_GE(Info(i).failures, 4u) << "the loss really happened";
}

} // namespace
