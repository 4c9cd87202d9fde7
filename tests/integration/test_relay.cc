// SPDX-License-Identifier: BSD-3-Clause
// The UDP relay end to end on loopback, in process: real sockets, real echo
// backends, the dataplane started from a YAML configuration. Every test runs
// on both socket I/O backends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>

#include "integration/udp_peers.h"

extern "C" {
#include "qgate/config.h"
#include "qgate/dataplane.h"
#include "qgate/io.h"
#include "qgate/log.h"
}

using qgt::Client;
using qgt::EchoServer;

namespace
{

struct Backend {
	std::string addr;
	int weight;
};

struct ServiceSpec {
	std::string name = "svc";
	std::string listen;
	std::string policy = "maglev";
	std::string extra; // more service keys, YAML lines indented by 4
	std::vector<Backend> backends;
};

std::string Yaml(const std::string &io, const std::vector<ServiceSpec> &svcs,
		 const std::string &dp_extra = "", const std::string &cores = "[0]")
{
	std::ostringstream y;
	y << "dataplane:\n  backend: " << io << "\n  cores: " << cores << "\n  flows_per_core: 65536\n"
	  << (dp_extra.find("upstream_sockets") == std::string::npos ? "  upstream_sockets_per_core: 4096\n"
								     : "")
	  << (dp_extra.find("rx_buffers") == std::string::npos ? "  rx_buffers: 1024\n" : "") << dp_extra
	  << "services:\n";
	for (const auto &s : svcs) {
		y << "  - name: " << s.name << "\n    listen: \"" << s.listen
		  << "\"\n    policy: " << s.policy << "\n"
		  << s.extra << "    backends:\n";
		for (const auto &b : s.backends)
			y << "      - address: \"" << b.addr << "\"\n        weight: " << b.weight << "\n";
	}
	return y.str();
}

class Relay : public ::testing::TestWithParam<std::string>
{
      protected:
	void SetUp() override
	{
		qg_log_set_level(QG_LOG_WARN);
		if (GetParam() == "io_uring") {
			char why[160];
			if (qg_io_uring_ops.probe(why, sizeof(why)) != 0)
				GTEST_SKIP() << "io_uring is not usable on this machine: " << why;
		}
	}
	void TearDown() override
	{
		if (dp_)
			qg_dataplane_destroy(dp_);
		dp_ = nullptr;
	}

	// Start the dataplane on a YAML text; fails the test on any error.
	void Start(const std::string &yaml)
	{
		qg_config_errors errs;
		memset(&errs, 0, sizeof(errs));
		qg_config *cfg = nullptr;
		int rc = qg_config_load_string("test.yaml", yaml.c_str(), yaml.size(), &cfg, &errs);
		if (rc) {
			char *buf = nullptr;
			size_t len = 0;
			FILE *f = open_memstream(&buf, &len);
			qg_config_errors_print(&errs, f);
			fclose(f);
			std::string msg(buf, len);
			free(buf);
			FAIL() << "config rejected:\n" << msg << yaml;
		}
		rc = qg_dataplane_create(cfg, &dp_);
		qg_config_free(cfg);
		ASSERT_EQ(rc, 0) << "qg_dataplane_create: " << strerror(-rc);
		ASSERT_STREQ(qg_dataplane_io_name(dp_), GetParam().c_str());
		ASSERT_EQ(qg_dataplane_start(dp_), 0);
	}

	uint64_t Ctr(qg_ctr_id id)
	{
		qg_ctr_block c;
		qg_dataplane_counters(dp_, &c);
		return c.v[id];
	}

	std::string Listen(const char *host = "127.0.0.1")
	{
		uint16_t port = qgt::FreePort(host);
		return strchr(host, ':') ? "[" + std::string(host) + "]:" + std::to_string(port)
					 : std::string(host) + ":" + std::to_string(port);
	}

	qg_dataplane *dp_ = nullptr;
};

// Wait until pred() holds or ms pass.
template <typename P> bool WaitFor(P pred, int ms)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
	while (std::chrono::steady_clock::now() < end) {
		if (pred())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	return pred();
}

// n clients each do rounds datagrams of size bytes through vip; every reply
// must reach its sender with its own payload. Returns clients for reuse.
std::vector<std::unique_ptr<Client>> Drive(const qg_addr &vip, unsigned n, unsigned rounds, size_t size,
					   unsigned first_id, const char *host, unsigned *failures)
{
	std::vector<std::unique_ptr<Client>> clients;
	for (unsigned i = 0; i < n; i++)
		clients.emplace_back(new Client(host));
	std::vector<uint8_t> buf(65536);
	*failures = 0;
	for (unsigned r = 0; r < rounds; r++) {
		// A window of 100 clients in flight keeps every socket buffer far from full.
		for (unsigned base = 0; base < n; base += 100) {
			unsigned end = std::min(n, base + 100);
			for (unsigned i = base; i < end; i++) {
				auto p = qgt::Payload(first_id + i, r, size);
				clients[i]->Send(vip, p.data(), p.size());
			}
			for (unsigned i = base; i < end; i++) {
				auto p = qgt::Payload(first_id + i, r, size);
				ssize_t got = clients[i]->Recv(buf.data(), buf.size(), 1000);
				if (got != static_cast<ssize_t>(size) ||
				    memcmp(buf.data(), p.data(), size) != 0) {
					// Lost or reordered on a shared machine: one retry, still exact.
					if (!qgt::RoundTrip(*clients[i], vip, p, 500, 3))
						(*failures)++;
				}
			}
		}
	}
	return clients;
}

TEST_P(Relay, ThousandFlowsEachGetTheirOwnReplies)
{
	EchoServer b1, b2, b3;
	ServiceSpec s;
	s.listen = Listen();
	s.backends = { { b1.addr_str(), 1 }, { b2.addr_str(), 2 }, { b3.addr_str(), 3 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	unsigned failures = 0;
	auto clients = Drive(qgt::Addr(s.listen), 1000, 100, 64, 0, "127.0.0.1", &failures);
	EXPECT_EQ(failures, 0u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 1000u);
	EXPECT_EQ(qg_dataplane_flows_active(dp_, 0), 1000u);
	// Maglev spreads flows by weight 1:2:3. Client ports are random, so shares are binomial:
	// allow 5 standard deviations (a false alarm about once in 3.5 million runs).
	double n1 = b1.clients().size(), n2 = b2.clients().size(), n3 = b3.clients().size();
	EXPECT_EQ(n1 + n2 + n3, 1000.0) << "a client reached two backends";
	auto tol = [](double p) { return 5 * std::sqrt(p * (1 - p) / 1000); };
	EXPECT_NEAR(n1 / 1000, 1.0 / 6, tol(1.0 / 6));
	EXPECT_NEAR(n2 / 1000, 2.0 / 6, tol(2.0 / 6));
	EXPECT_NEAR(n3 / 1000, 3.0 / 6, tol(3.0 / 6));
	qg_backend_stats st;
	ASSERT_EQ(qg_dataplane_backend_stats(dp_, 0, 2, &st), 0);
	EXPECT_EQ(st.flows_active, static_cast<uint64_t>(n3));
	EXPECT_EQ(Ctr(QG_CTR_DROP_STALE_REPLY), 0u);
}

TEST_P(Relay, WeightedRoundRobinAndLeastConnSpreadExactly)
{
	EchoServer a1, a2, c1, c2;
	ServiceSpec wrr, lc;
	wrr.name = "wrr";
	wrr.policy = "wrr";
	wrr.listen = Listen();
	wrr.backends = { { a1.addr_str(), 1 }, { a2.addr_str(), 3 } };
	lc.name = "lc";
	lc.policy = "least_conn";
	lc.listen = Listen();
	lc.backends = { { c1.addr_str(), 1 }, { c2.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { wrr, lc })));
	unsigned f1 = 0, f2 = 0;
	auto k1 = Drive(qgt::Addr(wrr.listen), 400, 2, 32, 0, "127.0.0.1", &f1);
	auto k2 = Drive(qgt::Addr(lc.listen), 400, 2, 32, 1000, "127.0.0.1", &f2);
	EXPECT_EQ(f1 + f2, 0u);
	// One worker: smooth WRR gives exactly 100:300 over 400 new flows.
	EXPECT_EQ(a1.clients().size(), 100u);
	EXPECT_EQ(a2.clients().size(), 300u);
	// All flows stay active, so least_conn alternates: 200:200.
	EXPECT_EQ(c1.clients().size(), 200u);
	EXPECT_EQ(c2.clients().size(), 200u);
}

TEST_P(Relay, IdleFlowsExpire)
{
	EchoServer b;
	ServiceSpec s;
	s.listen = Listen();
	s.extra = "    idle_timeout: 200ms\n";
	s.backends = { { b.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	unsigned failures = 0;
	auto clients = Drive(qgt::Addr(s.listen), 20, 1, 16, 0, "127.0.0.1", &failures);
	EXPECT_EQ(failures, 0u);
	EXPECT_EQ(qg_dataplane_flows_active(dp_, 0), 20u);
	EXPECT_TRUE(WaitFor([&] { return qg_dataplane_flows_active(dp_, 0) == 0; }, 3000));
	EXPECT_EQ(Ctr(QG_CTR_FLOW_EXPIRED), 20u);
	// The same clients come back: new flows, served again (upstream sockets reused).
	for (unsigned i = 0; i < clients.size(); i++)
		EXPECT_TRUE(qgt::RoundTrip(*clients[i], qgt::Addr(s.listen), qgt::Payload(i, 9, 16)));
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 40u);
}

TEST_P(Relay, DrainingBackendKeepsItsFlowsAndGetsNoNewOnes)
{
	EchoServer b1, b2;
	ServiceSpec s;
	s.listen = Listen();
	s.backends = { { b1.addr_str(), 1 }, { b2.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	unsigned failures = 0;
	auto old_clients = Drive(vip, 200, 1, 32, 0, "127.0.0.1", &failures);
	ASSERT_EQ(failures, 0u);
	auto on_b1 = b1.clients();
	ASSERT_GT(on_b1.size(), 40u);
	qg_addr b1_addr = b1.addr();
	ASSERT_EQ(qg_dataplane_set_weight(dp_, "svc", &b1_addr, 0), 0);
	// Old flows of b1 still go to b1.
	uint64_t before = b1.datagrams();
	for (auto &kv : on_b1)
		EXPECT_TRUE(qgt::RoundTrip(*old_clients[kv.first], vip, qgt::Payload(kv.first, 50, 32)));
	EXPECT_EQ(b1.datagrams() - before, on_b1.size());
	// No new flow reaches b1.
	auto new_clients = Drive(vip, 200, 1, 32, 1000, "127.0.0.1", &failures);
	EXPECT_EQ(failures, 0u);
	for (unsigned i = 0; i < 200; i++) {
		EXPECT_FALSE(b1.served(1000 + i)) << "new client " << i << " reached the draining backend";
		EXPECT_TRUE(b2.served(1000 + i));
	}
	qg_addr unknown = qgt::Addr("127.0.0.1:1");
	EXPECT_EQ(qg_dataplane_set_weight(dp_, "svc", &unknown, 1), -ENOENT);
	EXPECT_EQ(qg_dataplane_set_weight(dp_, "nope", &b1_addr, 1), -ENOENT);
}

TEST_P(Relay, KilledBackendDoesNotStopTheRest)
{
	auto b1 = std::make_unique<EchoServer>();
	EchoServer b2;
	ServiceSpec s;
	s.listen = Listen();
	s.backends = { { b1->addr_str(), 1 }, { b2.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	unsigned failures = 0;
	auto clients = Drive(vip, 100, 1, 32, 0, "127.0.0.1", &failures);
	ASSERT_EQ(failures, 0u);
	auto on_b1 = b1->clients();
	b1->Stop();
	// Clients of the dead backend get nothing back; qgate counts the ICMP errors and lives on.
	for (auto &kv : on_b1) {
		auto p = qgt::Payload(kv.first, 1, 32);
		clients[kv.first]->Send(vip, p.data(), p.size());
		clients[kv.first]->Send(vip, p.data(), p.size());
	}
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_ERR_BACKEND_REFUSED) > 0; }, 3000));
	for (unsigned i = 0; i < 100; i++) {
		if (on_b1.count(i))
			continue;
		EXPECT_TRUE(qgt::RoundTrip(*clients[i], vip, qgt::Payload(i, 2, 32)));
	}
}

TEST_P(Relay, EmptyOversizeAndLargestDatagrams)
{
	EchoServer b;
	ServiceSpec small, big;
	small.name = "small";
	small.listen = Listen();
	small.backends = { { b.addr_str(), 1 } };
	big.name = "big";
	big.listen = Listen();
	big.backends = { { b.addr_str(), 1 } };
	// Two services share max_datagram: run the 65507 case on its own dataplane below.
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { small }, "  max_datagram: 2048\n")));
	Client c;
	qg_addr vip = qgt::Addr(small.listen);
	std::vector<uint8_t> empty;
	EXPECT_TRUE(qgt::RoundTrip(c, vip, empty)) << "a 0-byte datagram is relayed both ways";
	EXPECT_TRUE(qgt::RoundTrip(c, vip, qgt::Payload(7, 1, 2048))) << "exactly max_datagram passes";
	auto too_big = qgt::Payload(7, 2, 3000);
	EXPECT_TRUE(c.Send(vip, too_big.data(), too_big.size()));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_OVERSIZE) == 1; }, 2000));
	std::vector<uint8_t> buf(4096);
	EXPECT_LT(c.Recv(buf.data(), buf.size(), 200), 0) << "an oversize datagram must not be forwarded cut";
	EXPECT_TRUE(qgt::RoundTrip(c, vip, qgt::Payload(7, 3, 100))) << "the flow works after a drop";
	qg_dataplane_destroy(dp_);
	dp_ = nullptr;

	ASSERT_NO_FATAL_FAILURE(
		Start(Yaml(GetParam(), { big }, "  max_datagram: 65507\n  rx_buffers: 64\n")));
	Client c2;
	EXPECT_TRUE(qgt::RoundTrip(c2, qgt::Addr(big.listen), qgt::Payload(8, 1, 65507), 1000, 3));
	EXPECT_EQ(Ctr(QG_CTR_DROP_OVERSIZE), 0u);
}

TEST_P(Relay, Ipv6ServiceAndBackends)
{
	if (!qgt::Ipv6Available())
		GTEST_SKIP() << "IPv6 loopback ::1 cannot be bound on this machine";
	EchoServer b1("::1"), b2("::1");
	ServiceSpec s;
	s.listen = Listen("::1");
	s.backends = { { b1.addr_str(), 1 }, { b2.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	unsigned failures = 0;
	auto clients = Drive(qgt::Addr(s.listen), 100, 5, 64, 0, "::1", &failures);
	EXPECT_EQ(failures, 0u);
	EXPECT_EQ(b1.clients().size() + b2.clients().size(), 100u);
	EXPECT_GT(b1.clients().size(), 0u);
	EXPECT_GT(b2.clients().size(), 0u);
}

TEST_P(Relay, TwoWorkersShareTheLoad)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 2)
		GTEST_SKIP() << "needs 2 CPUs, this machine has " << cpus;
	EchoServer b1, b2;
	ServiceSpec s;
	s.listen = Listen();
	s.backends = { { b1.addr_str(), 1 }, { b2.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s }, "", "[0, 1]")));
	ASSERT_EQ(qg_dataplane_workers(dp_), 2u);
	unsigned failures = 0;
	auto clients = Drive(qgt::Addr(s.listen), 400, 5, 64, 0, "127.0.0.1", &failures);
	EXPECT_EQ(failures, 0u);
	// SO_REUSEPORT spreads flows over both workers; Maglev (fixed seed) agrees across them.
	qg_ctr_block w0, w1;
	qg_dataplane_worker_counters(dp_, 0, &w0);
	qg_dataplane_worker_counters(dp_, 1, &w1);
	EXPECT_GT(w0.v[QG_CTR_FLOW_CREATED], 0u);
	EXPECT_GT(w1.v[QG_CTR_FLOW_CREATED], 0u);
	EXPECT_EQ(w0.v[QG_CTR_FLOW_CREATED] + w1.v[QG_CTR_FLOW_CREATED], 400u);
	EXPECT_EQ(b1.clients().size() + b2.clients().size(), 400u);
}

TEST_P(Relay, PerClientFlowLimit)
{
	EchoServer b;
	ServiceSpec s;
	s.listen = Listen();
	s.extra = "    max_flows_per_client: 3\n";
	s.backends = { { b.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::vector<std::unique_ptr<Client>> cs;
	for (int i = 0; i < 5; i++)
		cs.emplace_back(new Client());
	int ok = 0;
	for (int i = 0; i < 5; i++)
		ok += qgt::RoundTrip(*cs[i], vip, qgt::Payload(i, 0, 16), 200, 1);
	// Every client socket shares 127.0.0.1: the first three flows pass, the rest are refused and counted.
	EXPECT_EQ(ok, 3);
	EXPECT_EQ(Ctr(QG_CTR_DROP_CLIENT_LIMIT), 2u);
}

// More sources than upstreams (a flood of new clients): each new client still
// gets through; the service's least recent flows give their upstreams up and
// are counted as evicted, instead of every new client being refused.
TEST_P(Relay, MoreSourcesThanUpstreamsEvictTheOldest)
{
	EchoServer b;
	ServiceSpec s;
	s.listen = Listen();
	s.backends = { { b.addr_str(), 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s }, "  upstream_sockets_per_core: 16\n")));
	qg_addr vip = qgt::Addr(s.listen);
	std::vector<std::unique_ptr<Client>> cs;
	int ok = 0;
	for (int i = 0; i < 48; i++) {
		cs.emplace_back(new Client());
		ok += qgt::RoundTrip(*cs.back(), vip, qgt::Payload(i, 0, 32), 500, 2);
	}
	EXPECT_EQ(ok, 48);
	EXPECT_EQ(Ctr(QG_CTR_DROP_UPSTREAM_EXHAUSTED), 0u);
	EXPECT_GE(Ctr(QG_CTR_FLOW_EVICTED), 48u - 16u);
	// The newest flows are the ones left, and they still work.
	EXPECT_TRUE(qgt::RoundTrip(*cs.back(), vip, qgt::Payload(47, 1, 32)));
}

// A client's back-to-back datagrams leave qgate batched (UDP GSO) and must
// still arrive as the same separate datagrams, sizes and bytes intact.
TEST_P(Relay, BurstsOfOneFlowStaySeparateDatagrams)
{
	for (const char *gso : { "true", "false" }) {
		SCOPED_TRACE(std::string("udp_gso: ") + gso);
		EchoServer b;
		ServiceSpec s;
		s.listen = Listen();
		s.backends = { { b.addr_str(), 1 } };
		ASSERT_NO_FATAL_FAILURE(
			Start(Yaml(GetParam(), { s }, std::string("  udp_gso: ") + gso + "\n")));
		qg_addr vip = qgt::Addr(s.listen);
		Client c;
		ASSERT_TRUE(qgt::RoundTrip(c, vip, qgt::Payload(1, 0, 100)));
		std::map<std::vector<uint8_t>, int> want;
		for (uint32_t seq = 1; seq <= 200; seq++) {
			// Runs of equal sizes with a shorter one now and then: the shapes GSO batches and
			// splits.
			size_t len = seq % 17 == 0 ? 40 : (seq < 100 ? 100 : 1200);
			auto p = qgt::Payload(1, seq, len);
			want[p]++;
			ASSERT_TRUE(c.Send(vip, p.data(), p.size()));
		}
		std::vector<uint8_t> buf(65536);
		for (int got = 0; got < 200; got++) {
			ssize_t n = c.Recv(buf.data(), buf.size(), 2000);
			ASSERT_GE(n, 0) << "reply " << got << " of 200 missing";
			std::vector<uint8_t> r(buf.begin(), buf.begin() + n);
			ASSERT_TRUE(want.count(r) && want[r] > 0)
				<< "a reply of " << n << " bytes matches no datagram sent";
			want[r]--;
		}
		qg_dataplane_destroy(dp_);
		dp_ = nullptr;
	}
}

// tx_bytes is what the peers received, byte for byte: the backends (what they
// read) plus the clients (the replies they read); with nothing dropped, rx_bytes
// (both directions) equals it, and each backend's bytes_to / bytes_from are
// what it read and echoed. Batched (GSO) and single sends, sizes 0 to 1,200.
TEST_P(Relay, ByteCountersEqualWhatThePeersReceived)
{
	for (const char *gso : { "true", "false" }) {
		SCOPED_TRACE(std::string("udp_gso: ") + gso);
		EchoServer b1, b2;
		ServiceSpec s;
		s.listen = Listen();
		s.policy = "wrr";
		s.backends = { { b1.addr_str(), 1 }, { b2.addr_str(), 1 } };
		ASSERT_NO_FATAL_FAILURE(
			Start(Yaml(GetParam(), { s }, std::string("  udp_gso: ") + gso + "\n")));
		qg_addr vip = qgt::Addr(s.listen);
		std::vector<std::unique_ptr<Client>> cs;
		for (int i = 0; i < 6; i++)
			cs.emplace_back(new Client());
		uint64_t sent = 0, received = 0;
		std::vector<uint8_t> buf(65536);
		for (uint32_t round = 0; round < 8; round++) {
			// A window of 12 per client: runs of equal sizes (batched) and odd ones (not).
			for (uint32_t c = 0; c < cs.size(); c++) {
				for (uint32_t k = 0; k < 12; k++) {
					size_t len = k == 11 ? (round * 7 + c) % 5
							     : (k < 6 ? 1200 : 100 + 37 * c + round);
					auto p = qgt::Payload(c, round * 16 + k, len);
					ASSERT_TRUE(cs[c]->Send(vip, p.data(), p.size()));
					sent += len;
				}
			}
			for (uint32_t c = 0; c < cs.size(); c++)
				for (uint32_t k = 0; k < 12; k++) {
					ssize_t n = cs[c]->Recv(buf.data(), buf.size(), 2000);
					ASSERT_GE(n, 0)
						<< "client " << c << " round " << round << ": reply missing";
					received += static_cast<uint64_t>(n);
				}
		}
		EXPECT_EQ(received, sent);
		uint64_t at_backends = b1.bytes() + b2.bytes();
		EXPECT_EQ(at_backends, sent);
		// io_uring counts a send when its completion is reaped, which may follow the reply.
		EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_TX_BYTES) == at_backends + received; }, 2000));
		EXPECT_EQ(Ctr(QG_CTR_TX_BYTES), at_backends + received);
		EXPECT_EQ(Ctr(QG_CTR_RX_BYTES), at_backends + received);
		EXPECT_EQ(Ctr(QG_CTR_DROP_TX_BACKEND) + Ctr(QG_CTR_DROP_TX_CLIENT), 0u);
		for (unsigned b = 0; b < 2; b++) {
			qg_backend_stats st;
			ASSERT_EQ(qg_dataplane_backend_stats(dp_, 0, b, &st), 0);
			uint64_t want = b == 0 ? b1.bytes() : b2.bytes();
			EXPECT_EQ(st.tx_bytes, want) << "backend " << b;
			EXPECT_EQ(st.rx_bytes, want) << "backend " << b;
		}
		qg_dataplane_destroy(dp_);
		dp_ = nullptr;
	}
}

INSTANTIATE_TEST_SUITE_P(Io, Relay, ::testing::Values("io_uring", "recvmmsg"),
			 [](const ::testing::TestParamInfo<std::string> &i) { return i.param; });

} // namespace
