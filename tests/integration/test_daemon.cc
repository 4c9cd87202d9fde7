// SPDX-License-Identifier: BSD-3-Clause
// The qgate daemon as users run it: the real executable (QGATE_BIN), its exit
// codes and messages, and a relay on loopback stopped by SIGTERM. Every child
// is killed and reaped by an RAII guard, even when an assertion fails.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

extern "C" {
#include "qgate/io.h"
}

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif

using qgt::Client;
using qgt::EchoServer;

namespace
{

using qgt::TempDir;
using qgt::WaitFor;

size_t CountLines(const std::string &text)
{
	size_t n = 0;
	for (char c : text)
		n += c == '\n';
	return n;
}

// Make io_uring_setup fail with EPERM in this process and what it execs.
int DenyIoUring()
{
	static struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	static struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

// One run of the qgate executable (a qgt::Child: killed and reaped by its destructor).
class Qgate : public qgt::Child
{
      public:
	// deny_io_uring: run it under a seccomp filter that fails io_uring_setup with EPERM, as a
	// locked-down container does.
	Qgate(const TempDir &dir, const std::vector<std::string> &args, bool deny_io_uring = false)
	    : Child(dir, "qgate", qgt::Cmd(QGATE_BIN, args), Options(deny_io_uring))
	{
	}

      private:
	static qgt::ChildOptions Options(bool deny_io_uring)
	{
		qgt::ChildOptions o;
		o.name = "qgate";
		if (deny_io_uring)
			o.pre_exec = DenyIoUring;
		return o;
	}
};

// Run qgate to completion (bounded); the result is in q.
#define RUN_TO_EXIT(q, timeout_ms)                                                                  \
	do {                                                                                        \
		ASSERT_TRUE((q).started()) << (q).spawn_error();                                    \
		ASSERT_TRUE((q).Wait(timeout_ms))                                                   \
			<< "qgate did not exit within " << (timeout_ms) << " ms" << (q).Describe(); \
	} while (0)

const char kValid[] = "services:\n"
		      "  - name: echo\n"
		      "    listen: 127.0.0.1:4433\n"
		      "    backends:\n"
		      "      - address: 127.0.0.1:5001\n";

// Two problems, at known places: burst (line 2, column 10), idle_timeout (line 6, column 19).
const char kTwoErrors[] = "dataplane:\n"
			  "  burst: 0\n"
			  "services:\n"
			  "  - name: a\n"
			  "    listen: 127.0.0.1:5000\n"
			  "    idle_timeout: 0\n"
			  "    backends:\n"
			  "      - address: 127.0.0.1:5001\n";

class Daemon : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok()) << "mkdtemp: " << strerror(errno);
		ASSERT_EQ(access(QGATE_BIN, X_OK), 0) << QGATE_BIN << ": " << strerror(errno);
	}
	TempDir dir_;
};

TEST_F(Daemon, CheckConfigValid)
{
	std::string path = dir_.Write("valid.yaml", kValid);
	Qgate q(dir_, { "--check-config", path });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 0) << q.Describe();
	EXPECT_NE(q.out().find(path + ": valid (1 service(s))"), std::string::npos) << q.Describe();
	EXPECT_EQ(q.err(), "") << q.Describe();
}

TEST_F(Daemon, CheckConfigReportsEveryError)
{
	std::string path = dir_.Write("two-errors.yaml", kTwoErrors);
	Qgate q(dir_, { "--check-config", path });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 2) << q.Describe();
	std::string err = q.err();
	EXPECT_NE(err.find(path + ":2:10: burst: 0 is out of range (1..256)\n"), std::string::npos)
		<< q.Describe();
	EXPECT_NE(err.find(path + ":6:19: idle_timeout: 0 is out of range (1ms..24h)\n"), std::string::npos)
		<< q.Describe();
	EXPECT_LT(err.find(":2:10:"), err.find(":6:19:")) << "errors in document order" << q.Describe();
	// Every stderr line has the FILE:LINE:COLUMN: shape, and there are exactly the two problems.
	EXPECT_EQ(CountLines(err), 2u) << q.Describe();
	std::regex shape("^" + std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
			 R"(:[0-9]+:[0-9]+: .+$)");
	std::istringstream lines(err);
	for (std::string line; std::getline(lines, line);)
		EXPECT_TRUE(std::regex_match(line, shape)) << "line: " << line;
	EXPECT_EQ(q.out(), "") << q.Describe();
}

TEST_F(Daemon, CheckConfigMissingFile)
{
	std::string path = dir_.File("does-not-exist.yaml");
	Qgate q(dir_, { "--check-config", path });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 2) << q.Describe();
	std::string err = q.err();
	EXPECT_NE(err.find(path), std::string::npos) << q.Describe();
	EXPECT_NE(err.find("No such file"), std::string::npos) << q.Describe();
}

TEST_F(Daemon, DefaultConfigIsValid)
{
	Qgate p(dir_, { "--print-default-config" });
	RUN_TO_EXIT(p, 10000);
	ASSERT_EQ(p.code(), 0) << p.Describe();
	std::string yaml = p.out();
	EXPECT_NE(yaml.find("127.0.0.1:4433"), std::string::npos) << yaml;
	EXPECT_NE(yaml.find("services:"), std::string::npos) << yaml;

	std::string path = dir_.Write("default.yaml", yaml);
	Qgate q(dir_, { "--check-config", path });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 0) << q.Describe();
	EXPECT_NE(q.out().find("valid"), std::string::npos) << q.Describe();
}

TEST_F(Daemon, UnknownOptionPrintsUsage)
{
	Qgate q(dir_, { "--no-such-option" });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 2) << q.Describe();
	EXPECT_NE(q.err().find("usage: qgate"), std::string::npos) << q.Describe();
	EXPECT_EQ(q.out(), "") << q.Describe();
}

TEST_F(Daemon, UnexpectedArgumentPrintsUsage)
{
	Qgate q(dir_, { "stray" });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 2) << q.Describe();
	EXPECT_NE(q.err().find("unexpected argument 'stray'"), std::string::npos) << q.Describe();
	EXPECT_NE(q.err().find("usage: qgate"), std::string::npos) << q.Describe();
}

TEST_F(Daemon, BadStatsValue)
{
	for (const char *v : { "-1", "abc", "1s", "86401" }) {
		Qgate q(dir_, { "--stats", v, "--check-config", "/nonexistent" });
		RUN_TO_EXIT(q, 10000);
		EXPECT_EQ(q.code(), 2) << v << q.Describe();
		EXPECT_NE(q.err().find("--stats takes seconds"), std::string::npos) << v << q.Describe();
	}
}

TEST_F(Daemon, Help)
{
	for (const char *opt : { "--help", "-h" }) {
		Qgate q(dir_, { opt });
		RUN_TO_EXIT(q, 10000);
		EXPECT_EQ(q.code(), 0) << opt << q.Describe();
		EXPECT_NE(q.out().find("usage: qgate"), std::string::npos) << opt << q.Describe();
		EXPECT_NE(q.out().find("--check-config"), std::string::npos) << opt << q.Describe();
		EXPECT_EQ(q.err(), "") << opt << q.Describe();
	}
}

// ---- running the relay, on each socket I/O backend ----

// YAML of one service on listen relaying to backends.
std::string ServiceYaml(const std::string &io, const std::string &listen,
			const std::vector<std::string> &backends, const std::string &dp_extra = "")
{
	std::ostringstream y;
	y << "dataplane:\n  backend: " << io
	  << "\n  flows_per_core: 65536\n  upstream_sockets_per_core: 4096\n"
	  << "  rx_buffers: 1024\n"
	  << dp_extra << "services:\n  - name: svc\n    listen: \"" << listen << "\"\n    backends:\n";
	for (const auto &b : backends)
		y << "      - address: \"" << b << "\"\n";
	return y.str();
}

// true when a plain (non-reuseport) UDP socket can bind addr: nobody holds it.
bool PortFree(const qg_addr &addr)
{
	sockaddr_storage ss;
	socklen_t len = qg_addr_to_sockaddr(&addr, &ss);
	int fd = socket(addr.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = bind(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0;
	close(fd);
	return ok;
}

class DaemonRun : public ::testing::TestWithParam<std::string>
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok()) << "mkdtemp: " << strerror(errno);
		if (GetParam() == "io_uring") {
			char why[160] = "";
			if (qg_io_uring_ops.probe(why, sizeof(why)) != 0)
				GTEST_SKIP() << "io_uring is not usable on this machine: " << why;
		}
	}

	// Wait (10 s at most) until qgate logs "ready"; fails when it exits or stays silent.
	void WaitReady(Qgate &q)
	{
		ASSERT_TRUE(q.started()) << q.spawn_error();
		bool ready = q.WaitForErr("qgate: info: ready (config ", 10000);
		ASSERT_FALSE(q.Exited()) << "qgate exited before serving" << q.Describe();
		ASSERT_TRUE(ready) << "qgate not ready within 10 s" << q.Describe();
		EXPECT_NE(q.err().find(GetParam() + " backend"), std::string::npos)
			<< "qgate should run the " << GetParam() << " backend" << q.Describe();
	}

	// SIGTERM, then a clean exit (code 0) within 5 s.
	void Terminate(Qgate &q)
	{
		ASSERT_TRUE(q.Signal(SIGTERM)) << strerror(errno);
		ASSERT_TRUE(q.Wait(5000)) << "qgate did not stop within 5 s of SIGTERM" << q.Describe();
		ASSERT_EQ(q.code(), 0) << q.Describe();
	}

	TempDir dir_;
};

// Round trip counting every datagram sent (retries included).
bool CountedRoundTrip(Client &c, const qg_addr &to, const std::vector<uint8_t> &payload, uint64_t *sent)
{
	std::vector<uint8_t> buf(65536);
	for (int t = 0; t < 3; t++) {
		if (!c.Send(to, payload.data(), payload.size()))
			continue;
		++*sent;
		for (;;) {
			ssize_t n = c.Recv(buf.data(), buf.size(), 1000);
			if (n < 0)
				break;
			if (static_cast<size_t>(n) == payload.size() &&
			    memcmp(buf.data(), payload.data(), payload.size()) == 0)
				return true;
		}
	}
	return false;
}

// SIGTERM drains: established flows keep being relayed, new clients are refused and counted, and qgate
// exits once the traffic pauses, well before drain_timeout.
TEST_P(DaemonRun, SigtermDrainsEstablishedFlowsAndRefusesNewOnes)
{
	EchoServer b;
	uint16_t port = qgt::FreePort();
	ASSERT_NE(port, 0);
	std::string listen = "127.0.0.1:" + std::to_string(port);
	std::string cfg = dir_.Write("drain.yaml", "drain_timeout: 10s\n" +
							   ServiceYaml(GetParam(), listen, { b.addr_str() }));
	Qgate q(dir_, { "-c", cfg });
	WaitReady(q);
	if (HasFatalFailure())
		return;
	const qg_addr vip = qgt::Addr(listen);
	Client established, newcomer;
	ASSERT_TRUE(qgt::RoundTrip(established, vip, qgt::Payload(1, 0, 64))) << q.Describe();
	ASSERT_TRUE(q.Signal(SIGTERM));
	ASSERT_TRUE(
		WaitFor([&q] { return q.err().find("draining: no new flows") != std::string::npos; }, 3000))
		<< q.Describe();
	for (uint32_t i = 1; i <= 5; i++) {
		EXPECT_TRUE(qgt::RoundTrip(established, vip, qgt::Payload(1, i, 64), 300, 1))
			<< "round " << i << q.Describe();
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	EXPECT_FALSE(qgt::RoundTrip(newcomer, vip, qgt::Payload(2, 0, 64), 200, 1)) << q.Describe();
	ASSERT_TRUE(q.Wait(5000)) << "qgate did not end its drain once traffic paused" << q.Describe();
	EXPECT_EQ(q.code(), 0) << q.Describe();
	EXPECT_NE(q.err().find("qgate: total draining = 1\n"), std::string::npos) << q.Describe();
	EXPECT_NE(q.err().find("drain ended after"), std::string::npos) << q.Describe();
	EXPECT_EQ(q.err().find("(drain_timeout)"), std::string::npos) << q.Describe();
}

TEST_P(DaemonRun, RelaysAndStopsCleanlyOnSigterm)
{
	EchoServer b1, b2;
	uint16_t port = qgt::FreePort();
	ASSERT_NE(port, 0);
	std::string listen = "127.0.0.1:" + std::to_string(port);
	std::string cfg =
		dir_.Write("relay.yaml", ServiceYaml(GetParam(), listen, { b1.addr_str(), b2.addr_str() }));
	Qgate q(dir_, { "-c", cfg });
	WaitReady(q);
	if (HasFatalFailure())
		return;
	EXPECT_NE(q.err().find("service svc listening on " + listen), std::string::npos) << q.Describe();

	const qg_addr vip = qgt::Addr(listen);
	const int kClients = 50, kRounds = 10;
	std::vector<std::unique_ptr<Client>> clients;
	for (int i = 0; i < kClients; i++)
		clients.push_back(std::make_unique<Client>());
	uint64_t sent = 0, ok = 0;
	for (int r = 0; r < kRounds; r++)
		for (int i = 0; i < kClients; i++)
			ok += CountedRoundTrip(
				*clients[i], vip,
				qgt::Payload(static_cast<uint32_t>(i), static_cast<uint32_t>(r), 64), &sent);
	EXPECT_EQ(ok, static_cast<uint64_t>(kClients * kRounds)) << q.Describe();
	EXPECT_GT(b1.datagrams(), 0u) << "Maglev sent all 50 clients to one backend";
	EXPECT_GT(b2.datagrams(), 0u) << "Maglev sent all 50 clients to one backend";
	EXPECT_EQ(b1.clients().size() + b2.clients().size(), static_cast<size_t>(kClients))
		<< "each client stays on one backend";

	Terminate(q);
	if (HasFatalFailure())
		return;
	std::string err = q.err();
	EXPECT_NE(err.find("qgate: info: stopping"), std::string::npos) << q.Describe();
	EXPECT_NE(err.find("qgate: total rx_client = " + std::to_string(sent) + "\n"), std::string::npos)
		<< "sent " << sent << " datagrams" << q.Describe();
	EXPECT_NE(err.find("qgate: total tx_backend = " + std::to_string(sent) + "\n"), std::string::npos)
		<< "sent " << sent << " datagrams" << q.Describe();
	EXPECT_NE(err.find("qgate: total flows_created = " + std::to_string(kClients) + "\n"),
		  std::string::npos)
		<< q.Describe();
	if (sent == static_cast<uint64_t>(kClients * kRounds)) {
		EXPECT_NE(err.find("qgate: total rx_client = 500\n"), std::string::npos) << q.Describe();
	}
	EXPECT_EQ(err.find("error:"), std::string::npos) << q.Describe();
	EXPECT_TRUE(PortFree(vip)) << "the service port is still held after exit";
}

TEST_P(DaemonRun, StatsReportNamesBothBackends)
{
	EchoServer b1, b2;
	uint16_t port = qgt::FreePort();
	ASSERT_NE(port, 0);
	std::string listen = "127.0.0.1:" + std::to_string(port);
	std::string cfg =
		dir_.Write("stats.yaml", ServiceYaml(GetParam(), listen, { b1.addr_str(), b2.addr_str() }));
	Qgate q(dir_, { "-c", cfg, "--stats", "0.2" });
	WaitReady(q);
	if (HasFatalFailure())
		return;

	// Some traffic so the report has something to count.
	Client c;
	EXPECT_TRUE(qgt::RoundTrip(c, qgt::Addr(listen), qgt::Payload(1, 0, 32), 1000)) << q.Describe();

	// At least two reports (0.2 s apart), each naming the service and both backends.
	auto reports = [&q] {
		std::string out = q.out();
		size_t n = 0;
		for (size_t p = out.find("--- t="); p != std::string::npos; p = out.find("--- t=", p + 1))
			n++;
		return n;
	};
	ASSERT_TRUE(WaitFor([&] { return reports() >= 2 || q.Exited(); }, 10000) && reports() >= 2)
		<< "no periodic report on stdout" << q.Describe();
	std::string out = q.out();
	EXPECT_NE(out.find("service svc"), std::string::npos) << out;
	EXPECT_NE(out.find(listen), std::string::npos) << out;
	EXPECT_NE(out.find("backend " + b1.addr_str()), std::string::npos) << out;
	EXPECT_NE(out.find("backend " + b2.addr_str()), std::string::npos) << out;

	Terminate(q);
}

TEST_P(DaemonRun, PortHeldByAnotherSocket)
{
	// A plain socket (no SO_REUSEPORT) owns the port: qgate's reuseport bind must fail.
	int holder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(holder, 0);
	std::unique_ptr<int, void (*)(int *)> guard(&holder, [](int *fd) { close(*fd); });
	sockaddr_in sin{};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)), 0) << strerror(errno);
	socklen_t sl = sizeof(sin);
	ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr *>(&sin), &sl), 0);
	std::string listen = "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));

	EchoServer b1;
	std::string cfg = dir_.Write("held.yaml", ServiceYaml(GetParam(), listen, { b1.addr_str() }));
	Qgate q(dir_, { "-c", cfg });
	RUN_TO_EXIT(q, 10000);
	EXPECT_NE(q.code(), 0) << q.Describe();
	EXPECT_EQ(q.term_signal(), 0) << "qgate crashed" << q.Describe();
	EXPECT_NE(q.err().find("cannot listen on " + listen), std::string::npos) << q.Describe();
	EXPECT_EQ(q.err().find("qgate: info: ready"), std::string::npos) << q.Describe();
	EXPECT_NE(q.err().find("cannot start: Address already in use"), std::string::npos) << q.Describe();
}

// Where io_uring is forbidden (seccomp, kernel.io_uring_disabled), qgate says why and relays with
// recvmmsg instead of failing.
TEST(DaemonFallback, IoUringDeniedFallsBackToRecvmmsg)
{
#if !defined(__x86_64__)
	GTEST_SKIP() << "the seccomp filter of this test is written for x86_64";
#endif
	TempDir dir;
	ASSERT_TRUE(dir.ok());
	EchoServer b;
	uint16_t port = qgt::FreePort();
	ASSERT_NE(port, 0);
	std::string listen = "127.0.0.1:" + std::to_string(port);
	std::string cfg = dir.Write("fallback.yaml", ServiceYaml("io_uring", listen, { b.addr_str() }));
	Qgate q(dir, { "-c", cfg }, true);
	ASSERT_TRUE(q.started()) << q.spawn_error();
	bool ready = q.WaitForErr("qgate: info: ready", 10000);
	ASSERT_TRUE(ready && !q.Exited()) << q.Describe();
	EXPECT_NE(q.err().find("io_uring unavailable (io_uring_setup: Operation not permitted"),
		  std::string::npos)
		<< q.Describe();
	EXPECT_NE(q.err().find("falling back to recvmmsg"), std::string::npos) << q.Describe();
	EXPECT_NE(q.err().find("recvmmsg backend"), std::string::npos) << q.Describe();
	Client c;
	EXPECT_TRUE(qgt::RoundTrip(c, qgt::Addr(listen), qgt::Payload(1, 1, 64)));
	ASSERT_TRUE(q.Signal(SIGTERM));
	ASSERT_TRUE(q.Wait(5000)) << q.Describe();
	EXPECT_EQ(q.code(), 0) << q.Describe();
}

TEST_P(DaemonRun, BadConfigNeverStarts)
{
	EchoServer b1;
	uint16_t port = qgt::FreePort();
	ASSERT_NE(port, 0);
	std::string listen = "127.0.0.1:" + std::to_string(port);
	// A valid service, but the file also has an error: nothing may start.
	std::string cfg =
		dir_.Write("bad.yaml", ServiceYaml(GetParam(), listen, { b1.addr_str() }, "  burst: 0\n"));
	Qgate q(dir_, { "-c", cfg });
	RUN_TO_EXIT(q, 10000);
	EXPECT_EQ(q.code(), 2) << q.Describe();
	std::string err = q.err();
	EXPECT_NE(err.find(cfg + ":"), std::string::npos) << q.Describe();
	EXPECT_NE(err.find("burst: 0 is out of range"), std::string::npos) << q.Describe();
	EXPECT_EQ(err.find("listening"), std::string::npos) << q.Describe();
	EXPECT_EQ(err.find("qgate: info: ready"), std::string::npos) << q.Describe();
	EXPECT_EQ(err.find("dataplane:"), std::string::npos) << "a dataplane was created" << q.Describe();
	EXPECT_TRUE(PortFree(qgt::Addr(listen))) << "port " << listen << " is held";
	EXPECT_EQ(b1.datagrams(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Io, DaemonRun, ::testing::Values("recvmmsg", "io_uring"),
			 [](const ::testing::TestParamInfo<std::string> &info) { return info.param; });

} // namespace
