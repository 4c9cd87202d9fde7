// SPDX-License-Identifier: BSD-3-Clause
// The control plane as operators use it: the real qgate (QGATE_BIN) with its
// metrics server on a free loopback port and its admin socket in a temporary
// directory, driven with the real qgatectl (QGATECTL_BIN) and a plain HTTP/1.0
// request. Every child is killed and reaped by an RAII guard; every wait is
// bounded.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif
#ifndef QGATECTL_BIN
#error "QGATECTL_BIN (path of the qgatectl executable) must be defined by the build"
#endif

using qgt::Client;
using qgt::EchoServer;

namespace
{

using qgt::FreeTcpPort;
using qgt::HttpGet;
using qgt::Result;
using qgt::TempDir;
using qgt::WaitFor;

// One run of qgate (a qgt::Child: killed and reaped on destruction).
class Qgate : public qgt::Child
{
      public:
	Qgate(const TempDir &dir, const std::vector<std::string> &args)
	    : Child(dir, "qgate", qgt::Cmd(QGATE_BIN, args))
	{
	}
};

// Run qgatectl; both streams captured; bounded by qgatectl's own 10 s timeout.
Result RunCtl(const std::vector<std::string> &args)
{
	return qgt::Run(qgt::Cmd(QGATECTL_BIN, args), 15000);
}

// The tiny JSON check: one object, braces and brackets balanced outside strings.
bool LooksLikeJson(const std::string &s)
{
	int depth = 0;
	bool in_str = false, esc = false;
	size_t first = s.find_first_not_of(" \n");
	if (first == std::string::npos || s[first] != '{')
		return false;
	for (char c : s) {
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			if (--depth < 0)
				return false;
	}
	return depth == 0 && !in_str;
}

class Admin : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok());
		sock_ = dir_.File("admin.sock");
		metrics_port_ = FreeTcpPort();
		ASSERT_NE(metrics_port_, 0);
		listen_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		std::string yaml = "metrics: {listen: 127.0.0.1:" + std::to_string(metrics_port_) +
				   "}\n"
				   "admin: {socket: " +
				   sock_ +
				   ", mode: 0600}\n"
				   "drain_timeout: 2s\n"
				   "dataplane: {backend: recvmmsg}\n"
				   "services:\n"
				   "  - name: echo\n"
				   "    listen: " +
				   listen_ +
				   "\n"
				   "    idle_timeout: 30s\n"
				   "    backends:\n"
				   "      - address: " +
				   a_.addr_str() +
				   "\n"
				   "      - address: " +
				   b_.addr_str() + "\n";
		cfg_ = dir_.Write("qgate.yaml", yaml);
	}
	// Start qgate and wait (bounded) until its admin socket answers.
	void Start()
	{
		q_.reset(new Qgate(dir_, { "-c", cfg_ }));
		bool up = WaitFor(
			[this] {
				return q_->Exited() || RunCtl({ "-s", sock_, "status" }).status == 0;
			},
			10000);
		ASSERT_TRUE(up && !q_->Exited()) << "qgate did not come up" << q_->Describe();
	}
	Result Ctl(std::vector<std::string> args)
	{
		args.insert(args.begin(), { "-s", sock_ });
		return RunCtl(args);
	}
	// Send one datagram from each of n new clients (ids from first) and wait for the echoes. The
	// clients stay open until the test ends: a port the kernel handed out again would reach the
	// flow (and backend) of an earlier client.
	void Traffic(uint32_t first, uint32_t n)
	{
		qg_addr to = qgt::Addr(listen_);
		for (uint32_t id = first; id < first + n; id++) {
			clients_.emplace_back(new Client());
			ASSERT_TRUE(qgt::RoundTrip(*clients_.back(), to, qgt::Payload(id, 0, 64)))
				<< "client " << id;
		}
	}
	uint32_t Served(EchoServer &s, uint32_t first, uint32_t n)
	{
		uint32_t k = 0;
		for (uint32_t id = first; id < first + n; id++)
			k += s.served(id);
		return k;
	}

	TempDir dir_{ "qgate-admin" };
	EchoServer a_, b_;
	std::string sock_, cfg_, listen_;
	uint16_t metrics_port_ = 0;
	std::unique_ptr<Qgate> q_;
	std::vector<std::unique_ptr<Client>> clients_;
};

TEST_F(Admin, ReadCommandsTextAndJson)
{
	Start();
	Result r = Ctl({ "status" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("io backend: recvmmsg"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("service echo " + listen_), std::string::npos) << r.out;
	r = Ctl({ "backends" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find(a_.addr_str()), std::string::npos) << r.out;
	EXPECT_NE(r.out.find(b_.addr_str()), std::string::npos) << r.out;
	r = Ctl({ "components" });
	EXPECT_EQ(r.status, 0) << r.err;
	for (const char *c : { "config", "events", "dataplane", "metrics", "admin" })
		EXPECT_TRUE(std::regex_search(r.out, std::regex(std::string("\n") + c + " +running")))
			<< c << "\n"
			<< r.out;
	r = Ctl({ "events" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("component=admin starting -> running"), std::string::npos) << r.out;

	const std::vector<std::pair<std::string, std::vector<std::string>>> keys = {
		{ "status",
		  { "\"version\"", "\"uptime_s\"", "\"io_backend\"", "\"workers\"", "\"services\"",
		    "\"flows_active\"", "\"totals\"" } },
		{ "backends",
		  { "\"services\"", "\"address\"", "\"weight\"", "\"flows_active\"", "\"packets_to\"",
		    "\"packets_from\"" } },
		{ "components", { "\"components\"", "\"state\"", "\"depends_on\"", "\"running_since_s\"" } },
		{ "events", { "\"events\"", "\"component_state\"", "\"seq\"" } },
	};
	for (const auto &k : keys) {
		r = Ctl({ k.first, "--json" });
		EXPECT_EQ(r.status, 0) << k.first << ": " << r.err;
		EXPECT_TRUE(LooksLikeJson(r.out)) << k.first << ": " << r.out;
		for (const auto &key : k.second)
			EXPECT_NE(r.out.find(key), std::string::npos)
				<< k.first << " lacks " << key << ": " << r.out;
	}
	// Options may come before the command too.
	r = RunCtl({ "--json", "-s", sock_, "status" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(LooksLikeJson(r.out)) << r.out;
}

TEST_F(Admin, DrainMovesNewFlowsAndUndrainRestores)
{
	Start();
	Traffic(1, 16);
	ASSERT_GT(Served(b_, 1, 16), 0u) << "maglev sent none of 16 clients to b";

	Result r = Ctl({ "drain", "echo", b_.addr_str() });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("weight 1 -> 0"), std::string::npos) << r.out;
	r = Ctl({ "backends", "--json" });
	EXPECT_NE(r.out.find("\"state\":\"drained\""), std::string::npos) << r.out;
	Traffic(100, 32);
	EXPECT_EQ(Served(b_, 100, 32), 0u) << "a drained backend got new flows";
	EXPECT_EQ(Served(a_, 100, 32), 32u);
	// Draining twice keeps the weight undrain restores.
	EXPECT_EQ(Ctl({ "drain", "echo", b_.addr_str() }).status, 0);

	r = Ctl({ "undrain", "echo", b_.addr_str() });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("weight 0 -> 1"), std::string::npos) << r.out;
	Traffic(200, 32);
	EXPECT_GT(Served(b_, 200, 32), 0u) << "an undrained backend got no new flow";
	r = Ctl({ "undrain", "echo", b_.addr_str() });
	EXPECT_EQ(r.status, 1) << "undrain of a backend that is not drained";
	EXPECT_NE(r.err.find("is not drained"), std::string::npos) << r.err;

	r = Ctl({ "weight", "echo", b_.addr_str(), "5", "--json" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(LooksLikeJson(r.out)) << r.out;
	EXPECT_NE(r.out.find("\"weight\":5"), std::string::npos) << r.out;
	r = Ctl({ "events" });
	EXPECT_NE(r.out.find("admin_action"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("drain: weight 1 -> 0"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("undrain: weight 0 -> 1"), std::string::npos) << r.out;
}

// flush: the workers remove a backend's established flows (control -> worker command rings).
TEST_F(Admin, FlushRemovesOnlyThatBackendsFlows)
{
	Start();
	Traffic(1, 24);
	uint32_t on_b = Served(b_, 1, 24), on_a = Served(a_, 1, 24);
	ASSERT_GT(on_b, 0u) << "maglev sent none of 24 clients to b";
	ASSERT_EQ(on_a + on_b, 24u);
	Result r = Ctl({ "flush", "echo", b_.addr_str(), "--json" });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(LooksLikeJson(r.out)) << r.out;
	EXPECT_NE(r.out.find("\"flows_removed\":" + std::to_string(on_b)), std::string::npos)
		<< "expected " << on_b << " flows removed: " << r.out;
	// What is left is a's flows only; flushing again finds nothing.
	r = Ctl({ "flush", "echo", b_.addr_str() });
	EXPECT_NE(r.out.find("0 flows removed"), std::string::npos) << r.out;
	r = Ctl({ "flush", "echo", a_.addr_str() });
	EXPECT_NE(r.out.find(std::to_string(on_a) + " flows removed"), std::string::npos) << r.out;
	r = Ctl({ "events" });
	EXPECT_NE(r.out.find("flush: " + std::to_string(on_b) + " flows removed"), std::string::npos)
		<< r.out;
	r = Ctl({ "flush", "echo", "10.9.9.9:1" });
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.err.find("has no backend 10.9.9.9:1"), std::string::npos) << r.err;
}

TEST_F(Admin, RefusalsExitOneWithClearMessage)
{
	Start();
	struct Case {
		std::vector<std::string> args;
		std::string msg;
	} cases[] = {
		{ { "weight", "nope", a_.addr_str(), "1" }, "unknown service 'nope' (services: echo)" },
		{ { "weight", "echo", "127.0.0.1:1", "1" }, "service 'echo' has no backend 127.0.0.1:1" },
		{ { "weight", "echo", "not-an-address", "1" }, "'not-an-address' is not a backend address" },
		{ { "weight", "echo", a_.addr_str(), "x" }, "weight 'x' is not a whole number (0..1000)" },
		{ { "weight", "echo", a_.addr_str(), "1001" }, "weight 1001 is out of range (0..1000)" },
		{ { "drain", "echo", "127.0.0.1:1" }, "has no backend" },
	};
	for (const auto &c : cases) {
		Result r = Ctl(c.args);
		EXPECT_EQ(r.status, 1) << c.args[0] << " " << c.args[1] << ": " << r.err;
		EXPECT_NE(r.err.find(c.msg), std::string::npos) << r.err;
		EXPECT_EQ(r.out, "");
	}
	Result r = Ctl({ "weight", "nope", a_.addr_str(), "1", "--json" });
	EXPECT_EQ(r.status, 1);
	EXPECT_TRUE(LooksLikeJson(r.out)) << r.out;
	EXPECT_NE(r.out.find("\"error\""), std::string::npos) << r.out;
	// Shape errors never reach qgate.
	EXPECT_EQ(Ctl({ "weight", "echo" }).status, 2);
	EXPECT_EQ(Ctl({ "frobnicate" }).status, 2);
	EXPECT_EQ(Ctl({ "status", "extra" }).status, 2);
}

TEST_F(Admin, UnreachableSocketExitsThree)
{
	std::string path = dir_.File("nobody.sock");
	Result r = RunCtl({ "-s", path, "status" });
	EXPECT_EQ(r.status, 3) << r.err;
	EXPECT_NE(r.err.find(path), std::string::npos) << "the message names the socket: " << r.err;
	// A stale socket file (nobody accepts) is unreachable too.
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un sun{};
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
	ASSERT_EQ(bind(fd, (sockaddr *)&sun, sizeof(sun)), 0) << strerror(errno);
	r = RunCtl({ "-s", path, "status" });
	EXPECT_EQ(r.status, 3) << r.err;
	close(fd);
}

TEST_F(Admin, MetricsExposition)
{
	Start();
	Traffic(1, 4);
	std::string resp = HttpGet(metrics_port_, "/metrics");
	ASSERT_TRUE(std::regex_search(resp, std::regex("^HTTP/1\\.[01] 200 "))) << resp.substr(0, 200);
	EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
	size_t body_at = resp.find("\r\n\r\n");
	ASSERT_NE(body_at, std::string::npos);
	std::string body = resp.substr(body_at + 4);
	for (const char *want :
	     { "# TYPE qgate_drops_total counter", "# TYPE qgate_errors_total counter",
	       "# HELP qgate_drops_total", "qgate_drops_total{reason=\"oversize\"} 0",
	       "qgate_rx_packets_total{service=\"echo\"} 4", "qgate_tx_packets_total{service=\"echo\"} 4",
	       "qgate_flows_active{service=\"echo\"} 4", "qgate_flows_created_total 4",
	       "# TYPE qgate_backend_flows_active gauge",
	       "qgate_backend_packets_total{service=\"echo\",backend=",
	       "qgate_backend_weight{service=\"echo\",backend=\"",
	       // Families of the DPDK ports' own counts: there, without series, on a socket backend.
	       "# TYPE qgate_port_packets_total counter", "# TYPE qgate_port_drops_total counter" })
		EXPECT_NE(body.find(want), std::string::npos) << want << "\n" << body;
	EXPECT_EQ(body.find("qgate_port_packets_total{"), std::string::npos) << body;
	for (const char *want : { "qgate_events_dropped_total 0", "qgate_component_up{component=\"admin\"} 1",
				  "qgate_component_up{component=\"metrics\"} 1" })
		EXPECT_NE(body.find(want), std::string::npos) << want << "\n" << body;
	std::regex sample("^[a-z_:][a-z0-9_:]*(\\{[^}]*\\})? [0-9.eE+-]+$");
	std::istringstream lines(body);
	std::string line;
	size_t samples = 0;
	while (std::getline(lines, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		EXPECT_TRUE(std::regex_match(line, sample)) << "bad sample line: " << line;
		samples++;
	}
	EXPECT_GT(samples, 20u);
	// After a drain the weight gauge says so.
	ASSERT_EQ(Ctl({ "drain", "echo", b_.addr_str() }).status, 0);
	body = HttpGet(metrics_port_, "/metrics");
	EXPECT_NE(body.find("qgate_backend_weight{service=\"echo\",backend=\"" + b_.addr_str() + "\"} 0"),
		  std::string::npos)
		<< body;

	resp = HttpGet(metrics_port_, "/");
	EXPECT_TRUE(std::regex_search(resp, std::regex("^HTTP/1\\.[01] 404 "))) << resp.substr(0, 200);
	resp = HttpGet(metrics_port_, "/metricsx");
	EXPECT_TRUE(std::regex_search(resp, std::regex("^HTTP/1\\.[01] 404 "))) << resp.substr(0, 200);
}

TEST_F(Admin, SocketModeCleanupAndReverseStop)
{
	Start();
	struct stat st;
	ASSERT_EQ(lstat(sock_.c_str(), &st), 0) << strerror(errno);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(st.st_mode & 0777, 0600u);

	// A second qgate with the same socket refuses to start and leaves the first one's socket alone.
	{
		std::string yaml = qgt::ReadFile(cfg_);
		std::string other = "127.0.0.1:" + std::to_string(qgt::FreePort());
		yaml.replace(yaml.find(listen_), listen_.size(), other);
		yaml.replace(yaml.find("listen: 127.0.0.1:" + std::to_string(metrics_port_)),
			     std::string("listen: 127.0.0.1:" + std::to_string(metrics_port_)).size(),
			     "listen: 127.0.0.1:" + std::to_string(FreeTcpPort()));
		std::string cfg2 = dir_.Write("second.yaml", yaml);
		Qgate second(dir_, { "-c", cfg2 });
		ASSERT_TRUE(second.Wait(10000)) << second.Describe();
		EXPECT_EQ(second.code(), 1) << second.Describe();
		EXPECT_NE(second.err().find("in use by a running qgate"), std::string::npos)
			<< second.Describe();
		EXPECT_NE(second.err().find("part 'admin' failed to start"), std::string::npos)
			<< second.Describe();
		EXPECT_EQ(Ctl({ "status" }).status, 0) << "the first qgate lost its socket";
	}

	ASSERT_TRUE(q_->Signal(SIGTERM));
	ASSERT_TRUE(q_->Wait(10000)) << "no exit after SIGTERM" << q_->Describe();
	EXPECT_EQ(q_->code(), 0) << q_->Describe();
	EXPECT_NE(lstat(sock_.c_str(), &st), 0) << "the admin socket outlived qgate";
	std::string err = q_->err();
	size_t last = 0;
	for (const char *c : { "admin", "metrics", "dataplane", "events", "config" }) {
		size_t at = err.find(std::string("component ") + c + " stopped");
		ASSERT_NE(at, std::string::npos) << c << q_->Describe();
		EXPECT_GT(at, last) << c << " stopped out of order" << q_->Describe();
		last = at;
	}
	EXPECT_EQ(RunCtl({ "-s", sock_, "status" }).status, 3);
}

TEST_F(Admin, StaleSocketIsReplaced)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un sun{};
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_.c_str());
	ASSERT_EQ(bind(fd, (sockaddr *)&sun, sizeof(sun)), 0) << strerror(errno);
	close(fd); // the file stays, nobody listens: what a crashed qgate leaves
	Start();
	EXPECT_NE(q_->err().find("removing stale socket"), std::string::npos) << q_->Describe();
}

} // namespace
