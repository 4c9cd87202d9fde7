// SPDX-License-Identifier: BSD-3-Clause
// The load-test tools on kernel sockets, as users run them: qgate-loadgen
// against an echo on loopback accounts for every datagram in its summary, a
// signal ends its run early with a summary, and bad options or a setup it
// cannot complete end with an error and exit code, never a crash; qgate-echo
// answers it and stops cleanly. Run on the sanitize build, the exit codes also
// say nothing leaked (LeakSanitizer exits non-zero).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "proc.h"
#include "udp_peers.h"

#ifndef QGATE_LOADGEN_BIN
#error "QGATE_LOADGEN_BIN (path of the qgate-loadgen executable) must be defined by the build"
#endif
#ifndef QGATE_ECHO_BIN
#error "QGATE_ECHO_BIN (path of the qgate-echo executable) must be defined by the build"
#endif

namespace
{

std::vector<std::string> Loadgen(const std::vector<std::string> &args)
{
	return qgt::Cmd(QGATE_LOADGEN_BIN, args);
}

TEST(Loadgen, ClosedLoopAccountsForEveryDatagram)
{
	qgt::EchoServer echo;
	qgt::Result r = qgt::Run(Loadgen({ "--target", echo.addr_str(), "--flows", "32", "--threads", "2",
					   "--window", "4", "--duration", "1", "--warmup", "0", "--json" }),
				 30000);
	ASSERT_EQ(r.status, 0) << r.err;
	double tx = qgt::JsonNumber(r.out, "tx"), rx = qgt::JsonNumber(r.out, "rx"),
	       lost = qgt::JsonNumber(r.out, "lost");
	EXPECT_GT(tx, 0) << r.out;
	// Every measured datagram came back or was counted lost; an echo returns the exact payload.
	EXPECT_EQ(rx + lost, tx) << r.out;
	EXPECT_EQ(qgt::JsonNumber(r.out, "mismatched"), 0) << r.out;
	EXPECT_EQ(qgt::JsonNumber(r.out, "flows"), 32) << r.out;
	EXPECT_EQ(qgt::JsonNumber(r.out, "threads"), 2) << r.out;
	EXPECT_GT(qgt::JsonNumber(r.out, "p50_us"), 0) << r.out;
	// The echo saw what the generator sent, warm-up and drain included.
	EXPECT_GE(echo.datagrams(), static_cast<uint64_t>(rx));
}

TEST(Loadgen, OpenLoopIpv6SendsAtTheRate)
{
	if (!qgt::Ipv6Available())
		GTEST_SKIP() << "::1 cannot be bound here";
	qgt::EchoServer echo("::1");
	qgt::Result r =
		qgt::Run(Loadgen({ "--target", echo.addr_str(), "--flows", "8", "--rate", "2000",
				   "--duration", "1", "--warmup", "0", "--payload", "quic", "--json" }),
			 30000);
	ASSERT_EQ(r.status, 0) << r.err;
	double tx = qgt::JsonNumber(r.out, "tx");
	// 2,000 datagrams/s for one second; a loaded machine may send late but never more.
	EXPECT_GT(tx, 500) << r.out;
	EXPECT_LE(tx, 2200) << r.out;
	EXPECT_EQ(qgt::JsonNumber(r.out, "mismatched"), 0) << r.out;
}

TEST(Loadgen, SignalEndsTheRunWithASummary)
{
	qgt::EchoServer echo;
	qgt::TempDir dir("qgate-loadgen-test");
	ASSERT_TRUE(dir.ok());
	qgt::Child lg(dir, "lg",
		      Loadgen({ "--target", echo.addr_str(), "--flows", "16", "--threads", "2", "--duration",
				"30", "--warmup", "0", "--json" }));
	ASSERT_TRUE(lg.started()) << lg.spawn_error();
	ASSERT_TRUE(qgt::WaitFor([&] { return echo.datagrams() > 100; }, 10000)) << lg.Describe();
	ASSERT_TRUE(lg.Signal(SIGINT));
	ASSERT_TRUE(lg.Wait(10000)) << lg.Describe();
	EXPECT_EQ(lg.code(), 0) << lg.Describe();
	double dur = qgt::JsonNumber(lg.out(), "duration_s");
	EXPECT_LT(dur, 30) << lg.out();
	EXPECT_GT(qgt::JsonNumber(lg.out(), "tx"), 0) << lg.out();
}

TEST(Loadgen, BadOptionsAreRefused)
{
	qgt::Result r = qgt::Run(Loadgen({ "--flows", "4" }));
	EXPECT_EQ(r.status, 2);
	EXPECT_NE(r.err.find("--target"), std::string::npos) << r.err;

	r = qgt::Run(Loadgen({ "--target", "127.0.0.1:9", "--quic-lb", "1:8:8" }));
	EXPECT_EQ(r.status, 2);
	EXPECT_NE(r.err.find("--payload quic"), std::string::npos) << r.err;

	r = qgt::Run(Loadgen({ "--target", "not-an-address" }));
	EXPECT_EQ(r.status, 2) << r.err;
}

// More flows than the process may open sockets: the setup fails part way and everything it made is
// released before the exit.
int LowFileLimit()
{
	struct rlimit rl = { 64, 64 };
	return setrlimit(RLIMIT_NOFILE, &rl);
}

TEST(Loadgen, SetupThatCannotCompleteFailsCleanly)
{
	qgt::EchoServer echo;
	qgt::TempDir dir("qgate-loadgen-test");
	ASSERT_TRUE(dir.ok());
	qgt::ChildOptions opts;
	opts.pre_exec = LowFileLimit;
	qgt::Child lg(dir, "lg",
		      Loadgen({ "--target", echo.addr_str(), "--flows", "500", "--threads", "2", "--duration",
				"1" }),
		      opts);
	ASSERT_TRUE(lg.started()) << lg.spawn_error();
	ASSERT_TRUE(lg.Wait(20000)) << lg.Describe();
	EXPECT_EQ(lg.code(), 1) << lg.Describe();
	EXPECT_NE(lg.err().find("cannot set up 500 flows"), std::string::npos) << lg.Describe();
}

TEST(Echo, AnswersTheLoadgenAndStopsCleanly)
{
	qgt::TempDir dir("qgate-echo-test");
	ASSERT_TRUE(dir.ok());
	qgt::Child echo(dir, "echo", qgt::Cmd(QGATE_ECHO_BIN, { "-l", "127.0.0.1:0", "--threads", "2" }));
	ASSERT_TRUE(echo.started()) << echo.spawn_error();
	ASSERT_TRUE(echo.WaitForErr("listening on", 10000)) << echo.Describe();
	// Port 0: the line names the port the kernel gave.
	std::string err = echo.err();
	size_t at = err.find("listening on 127.0.0.1:");
	ASSERT_NE(at, std::string::npos) << err;
	std::string port = std::to_string(atoi(err.c_str() + at + strlen("listening on 127.0.0.1:")));
	ASSERT_NE(port, "0") << err;

	qgt::Result r = qgt::Run(Loadgen({ "--target", "127.0.0.1:" + port, "--flows", "16", "--duration",
					   "1", "--warmup", "0", "--json" }),
				 30000);
	ASSERT_EQ(r.status, 0) << r.err;
	double tx = qgt::JsonNumber(r.out, "tx"), rx = qgt::JsonNumber(r.out, "rx");
	EXPECT_GT(rx, 0) << r.out;
	EXPECT_EQ(rx + qgt::JsonNumber(r.out, "lost"), tx) << r.out;
	EXPECT_EQ(qgt::JsonNumber(r.out, "mismatched"), 0) << r.out;

	ASSERT_TRUE(echo.Stop(10000)) << echo.Describe();
	EXPECT_EQ(echo.code(), 0) << echo.Describe();
	EXPECT_NE(echo.err().find("qgate-echo: total rx="), std::string::npos) << echo.Describe();
}

TEST(Echo, AnAddressItCannotBindIsAnError)
{
	// 192.0.2.0/24 is TEST-NET-1: never a local address.
	qgt::Result r = qgt::Run(qgt::Cmd(QGATE_ECHO_BIN, { "-l", "127.0.0.1:0", "-l", "192.0.2.1:5000" }));
	EXPECT_EQ(r.status, 1) << r.err;
	EXPECT_NE(r.err.find("cannot listen on 192.0.2.1:5000"), std::string::npos) << r.err;
}

} // namespace
