// SPDX-License-Identifier: BSD-3-Clause
// qgate in front of a real QUIC implementation: ngtcp2's example HTTP/3
// server (gtlsserver) as backends and its client (gtlsclient) as users, all on
// loopback. Checks HTTP/3 through qgate on both socket I/O backends, that
// connections spread over the backends, that NAT rebinding keeps a connection
// on its backend, Version Negotiation (forwarded, and answered by qgate), and
// the VN health probe against a live and a stopped server.
//
// Which backend served a connection is told twice: every backend has its own
// file content, and every client uses its own SCID, which only the serving
// backend's log (ngtcp2 logs every long header's CIDs) contains.
//
// Every child runs under an RAII guard that kills (SIGKILL) and reaps it, even
// when an assertion fails; the temporary directory goes with its contents.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

extern "C" {
#include "qgate/io.h"
#include "qgate/quic.h"
}

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif

namespace
{

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;
using qgt::FirstAllowedCpu;
using qgt::ReadFile;
using qgt::Tail;
using qgt::TempDir;
using qgt::WaitFor;
using qgt::WriteFile;

const uint32_t kReservedVersion = 0x1a2a3a4a;
// Bounds of one gtlsclient run and of a server's start.
const int kClientTimeoutMs = 15000;
const int kServerStartMs = 5000;

bool Contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

std::string Hex(const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 15];
	}
	return s;
}

Bytes RandomBytes(size_t n)
{
	static std::mt19937_64 rng{ std::random_device{}() };
	Bytes b(n);
	for (auto &x : b)
		x = static_cast<uint8_t>(rng());
	return b;
}

// "qgate: total NAME = N" lines of qgate's stderr at exit.
std::map<std::string, uint64_t> Totals(const std::string &err)
{
	std::map<std::string, uint64_t> t;
	std::istringstream lines(err);
	const std::string prefix = "qgate: total ";
	for (std::string line; std::getline(lines, line);) {
		if (line.compare(0, prefix.size(), prefix) != 0)
			continue;
		size_t eq = line.find(" = ", prefix.size());
		if (eq == std::string::npos)
			continue;
		t[line.substr(prefix.size(), eq - prefix.size())] =
			std::strtoull(line.c_str() + eq + 3, nullptr, 10);
	}
	return t;
}

// Children here log a lot: failure messages show the tails of their streams.
class Child : public qgt::Child
{
      public:
	Child(const TempDir &dir, const std::string &tag, const std::vector<std::string> &args)
	    : qgt::Child(dir, tag, args, Options())
	{
	}

      private:
	static qgt::ChildOptions Options()
	{
		qgt::ChildOptions o;
		o.describe_tail = 3000;
		return o;
	}
};

// Send one VN probe (reserved version, fresh random CIDs) to server and wait up to timeout_ms for the Version
// Negotiation answering it; other datagrams are ignored. *vn gets the answer.
bool ProbeVn(const qg_addr &server, int timeout_ms, Bytes *vn = nullptr)
{
	qgt::Client c;
	Bytes dcid = RandomBytes(16), scid = RandomBytes(12);
	uint8_t probe[1500];
	size_t n = qg_quic_build_vn_probe(probe, sizeof(probe), kReservedVersion, dcid.data(), dcid.size(),
					  scid.data(), scid.size());
	if (n < QG_QUIC_MIN_INITIAL_SIZE || !c.Send(server, probe, n))
		return false;
	auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
	uint8_t buf[65536];
	for (;;) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
				    .count();
		if (left <= 0)
			return false;
		ssize_t got = c.Recv(buf, sizeof(buf), static_cast<int>(left));
		if (got < 0)
			continue; // timeout (then the deadline ends the loop) or a transient error
		if (qg_quic_vn_matches_probe(buf, static_cast<size_t>(got), dcid.data(), dcid.size(),
					     scid.data(), scid.size())) {
			if (vn)
				vn->assign(buf, buf + got);
			return true;
		}
	}
}

// One gtlsserver on a free loopback port, with its own document root and content.
struct Backend {
	std::string name;
	std::string content;
	std::string htdocs;
	uint16_t port = 0;
	std::unique_ptr<Child> proc;

	std::string addr() const
	{
		return "127.0.0.1:" + std::to_string(port);
	}
	std::string log() const
	{
		return proc ? proc->err() + proc->out() : "";
	}
	// true when this backend's log shows a packet with this client SCID (hex, lower case).
	bool Saw(const std::string &scid_hex) const
	{
		return Contains(log(), "scid=0x" + scid_hex);
	}
};

// The result of one gtlsclient run.
struct ClientRun {
	bool finished = false; // exited within the bound
	int code = -1;
	std::string log;      // stderr + stdout
	std::string download; // the file the GET saved
	std::string scid;     // hex
	std::string describe;
};

class Ngtcp2Base : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		for (const char *tool : { "gtlsserver", "gtlsclient", "openssl" })
			if (qgt::Which(tool).empty())
				GTEST_SKIP() << tool
					     << " is not installed (packages ngtcp2-server, ngtcp2-client, "
						"openssl; "
						"scripts/setup.sh installs them)";
		ASSERT_TRUE(dir_.ok()) << "mkdtemp: " << strerror(errno);
		MakeCertificate();
	}

	// A throwaway self-signed P-256 certificate for the servers (gtlsclient does not verify it).
	void MakeCertificate()
	{
		key_ = dir_.File("key.pem");
		cert_ = dir_.File("cert.pem");
		Child ossl(dir_, "openssl",
			   { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
			     "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
			     "-keyout", key_, "-out", cert_ });
		ASSERT_TRUE(ossl.started()) << ossl.spawn_error();
		ASSERT_TRUE(ossl.Wait(20000)) << "openssl did not finish within 20 s" << ossl.Describe();
		ASSERT_EQ(ossl.code(), 0) << ossl.Describe();
		ASSERT_FALSE(ReadFile(key_).empty()) << ossl.Describe();
		ASSERT_FALSE(ReadFile(cert_).empty()) << ossl.Describe();
	}

	// Start n gtlsservers, each serving /hello.txt with its own content, and wait until each answers a VN
	// probe.
	void StartBackends(size_t n)
	{
		for (size_t i = 0; i < n; i++) {
			auto b = std::make_unique<Backend>();
			b->name = "backend" + std::to_string(i);
			// A few KB: the answer takes several packets.
			b->content = "qgate ngtcp2 test: served by " + b->name + "\n";
			for (int k = 0; k < 100; k++)
				b->content += b->name + " line " + std::to_string(k) + " of padding text\n";
			b->htdocs = dir_.Mkdir("htdocs-" + b->name);
			WriteFile(b->htdocs + "/hello.txt", b->content);
			Backend *bp = b.get();
			backends_.push_back(std::move(b));
			bool up = false;
			// A free port is free only until someone binds it: tests running alongside open
			// sockets with ephemeral ports, so a server that cannot bind gets another port.
			for (int attempt = 0; attempt < 3; attempt++) {
				bp->port = qgt::FreePort();
				ASSERT_NE(bp->port, 0);
				bp->proc = std::make_unique<Child>(
					dir_, bp->name,
					std::vector<std::string>{ "gtlsserver", "--htdocs=" + bp->htdocs,
								  "--no-quic-dump", "--no-http-dump",
								  "--timeout=10s", "127.0.0.1",
								  std::to_string(bp->port), key_, cert_ });
				ASSERT_TRUE(bp->proc->started()) << bp->proc->spawn_error();
				qg_addr a = qgt::Addr(bp->addr());
				up = WaitFor([&] { return bp->proc->Exited() || ProbeVn(a, 100); },
					     kServerStartMs);
				if (!bp->proc->Exited() ||
				    bp->proc->err().find("Could not bind") == std::string::npos)
					break;
			}
			ASSERT_FALSE(bp->proc->Exited()) << bp->name << " exited" << bp->proc->Describe();
			ASSERT_TRUE(up) << bp->name << " does not answer a VN probe within " << kServerStartMs
					<< " ms" << bp->proc->Describe();
		}
	}

	// The backend whose content the download is, or nullptr.
	const Backend *ServedBy(const std::string &download) const
	{
		for (const auto &b : backends_)
			if (b->content == download)
				return b.get();
		return nullptr;
	}

	// The backends whose log shows the client SCID.
	std::vector<const Backend *> Saw(const std::string &scid_hex) const
	{
		std::vector<const Backend *> v;
		for (const auto &b : backends_)
			if (b->Saw(scid_hex))
				v.push_back(b.get());
		return v;
	}

	std::string BackendLogs() const
	{
		std::string s;
		for (const auto &b : backends_)
			s += "\n=== " + b->name + " (" + b->addr() + ")" + b->proc->Describe();
		return s;
	}

	// GET /hello.txt from host:port with gtlsclient, plus extra options; bounded by kClientTimeoutMs.
	ClientRun Get(uint16_t port, const std::vector<std::string> &extra = {})
	{
		static int seq;
		ClientRun r;
		r.scid = Hex(RandomBytes(16).data(), 16);
		std::string dl = dir_.Mkdir("download-" + std::to_string(++seq));
		std::string p = std::to_string(port);
		std::vector<std::string> args{ "gtlsclient",	   "--exit-on-all-streams-close",
					       "--no-quic-dump",   "--no-http-dump",
					       "--timeout=5s",	   "--handshake-timeout=5s",
					       "--scid=" + r.scid, "--download=" + dl };
		args.insert(args.end(), extra.begin(), extra.end());
		args.insert(args.end(), { "127.0.0.1", p, "https://127.0.0.1:" + p + "/hello.txt" });
		Child c(dir_, "client", args);
		if (!c.started()) {
			r.describe = c.spawn_error();
			return r;
		}
		r.finished = c.Wait(kClientTimeoutMs);
		c.Kill();
		r.code = c.code();
		r.log = c.err() + c.out();
		r.download = ReadFile(dl + "/hello.txt");
		r.describe = c.Describe();
		return r;
	}

	TempDir dir_{ "qgate-ngtcp2" };
	std::string key_, cert_;
	std::vector<std::unique_ptr<Backend>> backends_;
};

// ---- through qgate, on each socket I/O backend ----

class Ngtcp2Qgate : public Ngtcp2Base, public ::testing::WithParamInterface<std::string>
{
      protected:
	void SetUp() override
	{
		ASSERT_EQ(access(QGATE_BIN, X_OK), 0) << QGATE_BIN << ": " << strerror(errno);
		if (GetParam() == "io_uring") {
			char why[160] = "";
			if (qg_io_uring_ops.probe(why, sizeof(why)) != 0)
				GTEST_SKIP() << "io_uring is not usable on this machine: " << why;
		}
		Ngtcp2Base::SetUp();
	}
	void TearDown() override
	{
		// qgate first, so it never relays to a stopped backend; the guards would do it anyway.
		if (qgate_)
			qgate_->Kill();
		for (auto &b : backends_)
			if (b->proc)
				b->proc->Kill();
	}

	// Start qgate (one worker) on a free port in front of the backends; quic_extra goes into the quic
	// section. No short_dcid_len: qgate learns the servers' CID length from their long headers.
	void StartQgate(const std::string &quic_extra = "")
	{
		port_ = qgt::FreePort();
		ASSERT_NE(port_, 0);
		std::ostringstream y;
		y << "dataplane:\n  backend: " << GetParam() << "\n  cores: [" << FirstAllowedCpu()
		  << "]\n  flows_per_core: 4096\n  upstream_sockets_per_core: 256\n  rx_buffers: 256\n"
		  << "services:\n  - name: h3\n    listen: \"127.0.0.1:" << port_
		  << "\"\n    protocol: quic\n"
		  << (quic_extra.empty() ? "" : "    quic:\n") << quic_extra << "    backends:\n";
		for (const auto &b : backends_)
			y << "      - address: \"" << b->addr() << "\"\n";
		std::string cfg = dir_.Write("qgate.yaml", y.str());
		qgate_ = std::make_unique<Child>(dir_, "qgate",
						 std::vector<std::string>{ QGATE_BIN, "-c", cfg });
		Child &q = *qgate_;
		ASSERT_TRUE(q.started()) << q.spawn_error();
		bool ready = q.WaitForErr("qgate: info: ready (config ", 10000);
		ASSERT_FALSE(q.Exited()) << "qgate exited before serving\n" << y.str() << q.Describe();
		ASSERT_TRUE(ready) << "qgate not ready within 10 s" << q.Describe();
		EXPECT_TRUE(Contains(q.err(), GetParam() + " backend"))
			<< "qgate should run the " << GetParam() << " backend" << q.Describe();
		EXPECT_TRUE(Contains(q.err(), "1 worker(s)")) << q.Describe();
	}

	// SIGTERM, a clean exit within 5 s, and its totals.
	void StopQgate(std::map<std::string, uint64_t> *totals)
	{
		Child &q = *qgate_;
		ASSERT_TRUE(q.Signal(SIGTERM)) << strerror(errno);
		ASSERT_TRUE(q.Wait(5000)) << "qgate did not stop within 5 s of SIGTERM" << q.Describe();
		ASSERT_EQ(q.code(), 0) << q.Describe();
		*totals = Totals(q.err());
		ASSERT_FALSE(totals->empty()) << "no totals at exit" << q.Describe();
	}

	std::string QgateLog() const
	{
		return qgate_ ? qgate_->Describe() : "";
	}

	uint16_t port_ = 0;
	std::unique_ptr<Child> qgate_;
};

// HTTP/3 GETs through qgate succeed, each connection stays on one backend, and they spread over the backends.
TEST_P(Ngtcp2Qgate, Http3GetsSpreadOverBackends)
{
	StartBackends(3);
	if (HasFatalFailure())
		return;
	StartQgate();
	if (HasFatalFailure())
		return;

	// At least 6 clients; more (up to 12) until two backends have served, so that the spread check does
	// not depend on luck (12 random DCIDs on one of 3 backends: about 1 in 200,000).
	std::map<const Backend *, int> served;
	int clients = 0;
	for (; clients < 12 && (clients < 6 || served.size() < 2); clients++) {
		ClientRun r = Get(port_);
		ASSERT_TRUE(r.finished)
			<< "client " << clients << " did not finish within " << kClientTimeoutMs << " ms"
			<< r.describe << QgateLog() << BackendLogs();
		ASSERT_EQ(r.code, 0) << "client " << clients << r.describe << QgateLog() << BackendLogs();
		const Backend *by = ServedBy(r.download);
		ASSERT_NE(by, nullptr) << "client " << clients << " downloaded " << r.download.size()
				       << " bytes that no backend serves:\n"
				       << Tail(r.download, 200) << r.describe;
		std::vector<const Backend *> saw = Saw(r.scid);
		ASSERT_EQ(saw.size(), 1u)
			<< "client " << clients << " (scid " << r.scid
			<< "): every packet of a connection must reach one backend" << BackendLogs();
		EXPECT_EQ(saw[0], by) << "the backend that logged scid " << r.scid << " is " << saw[0]->name
				      << ", the content came from " << by->name;
		served[by]++;
	}
	std::ostringstream spread;
	for (const auto &s : served)
		spread << s.first->name << "=" << s.second << " ";
	EXPECT_GE(served.size(), 2u) << clients << " connections went to one backend: " << spread.str();

	std::map<std::string, uint64_t> t;
	StopQgate(&t);
	if (HasFatalFailure())
		return;
	// One flow per connection (every packet of a client comes from one address), no migration.
	EXPECT_EQ(t["flows_created"], static_cast<uint64_t>(clients)) << QgateLog();
	EXPECT_EQ(t["quic_migrations"], 0u) << QgateLog();
	EXPECT_GE(t["quic_cids_learned"], static_cast<uint64_t>(clients)) << QgateLog();
	EXPECT_GT(t["quic_cid_routed"], 0u) << QgateLog();
	EXPECT_EQ(t["tx_backend"], t["rx_client"]) << "qgate dropped client datagrams" << QgateLog();
	EXPECT_EQ(t["tx_client"], t["rx_backend"]) << "qgate dropped server datagrams" << QgateLog();
	EXPECT_FALSE(Contains(qgate_->err(), "error:")) << QgateLog();
}

// gtlsclient --change-local-addr --nat-rebinding: after the handshake the client moves to a new port and
// keeps its DCID. qgate finds the connection by the server's CID it learned, moves the flow to the new
// address, and the backend (same upstream) never sees a path change.
TEST_P(Ngtcp2Qgate, NatRebindingStaysOnItsBackend)
{
	StartBackends(3);
	if (HasFatalFailure())
		return;
	StartQgate();
	if (HasFatalFailure())
		return;

	// The request leaves only after the move: 200 ms after the handshake the address changes, the stream
	// starts at 600 ms.
	ClientRun r = Get(port_, { "--change-local-addr=200ms", "--nat-rebinding", "--delay-stream=600ms" });
	ASSERT_TRUE(r.finished) << "the rebinding client did not finish within " << kClientTimeoutMs << " ms"
				<< r.describe << QgateLog() << BackendLogs();
	ASSERT_TRUE(Contains(r.log, "Changing local address")) << "the client did not rebind" << r.describe;
	ASSERT_EQ(r.code, 0) << r.describe << QgateLog() << BackendLogs();
	const Backend *by = ServedBy(r.download);
	ASSERT_NE(by, nullptr) << "downloaded " << r.download.size() << " bytes that no backend serves"
			       << r.describe;
	std::vector<const Backend *> saw = Saw(r.scid);
	ASSERT_EQ(saw.size(), 1u) << "the connection (scid " << r.scid << ") reached " << saw.size()
				  << " backends" << BackendLogs();
	EXPECT_EQ(saw[0], by);
	// Directly, ngtcp2's server validates the new path (PATH_CHALLENGE); behind qgate it sees no change.
	for (const auto &b : backends_)
		EXPECT_FALSE(Contains(b->log(), "PATH_CHALLENGE"))
			<< b->name << " saw a path change: qgate gave the rebinding client a new upstream"
			<< b->proc->Describe();

	std::map<std::string, uint64_t> t;
	StopQgate(&t);
	if (HasFatalFailure())
		return;
	EXPECT_GE(t["quic_migrations"], 1u) << "qgate did not follow the rebinding" << QgateLog();
	EXPECT_EQ(t["flows_created"], 1u) << "the rebinding client got a second flow" << QgateLog();
	EXPECT_GT(t["quic_cid_routed"], 0u) << QgateLog();
}

// A reserved version without quic.versions: qgate forwards the Initial and the backend answers with VN.
TEST_P(Ngtcp2Qgate, VersionNegotiationForwardedToBackend)
{
	StartBackends(2);
	if (HasFatalFailure())
		return;
	StartQgate();
	if (HasFatalFailure())
		return;

	ClientRun r = Get(port_, { "-v", "0x1a2a3a4a", "--handshake-timeout=2s" });
	ASSERT_TRUE(r.finished) << r.describe;
	EXPECT_TRUE(Contains(r.log, "version=0x00000000 type=VN")) << "no Version Negotiation" << r.describe;
	EXPECT_TRUE(Contains(r.log, "VN v=0x00000001")) << r.describe;
	EXPECT_TRUE(r.download.empty()) << "no connection should be made";

	std::map<std::string, uint64_t> t;
	StopQgate(&t);
	if (HasFatalFailure())
		return;
	EXPECT_EQ(t["quic_vn_sent"], 0u)
		<< "qgate answered although no versions are configured" << QgateLog();
	EXPECT_GE(t["tx_backend"], 1u) << QgateLog();
	EXPECT_GE(t["rx_backend"], 1u) << "the VN should come from the backend" << QgateLog();
	EXPECT_EQ(t["quic_unsupported_version"], 0u) << QgateLog();
}

// With quic.versions, qgate answers a reserved version itself; nothing reaches the backends.
TEST_P(Ngtcp2Qgate, VersionNegotiationAnsweredByQgate)
{
	StartBackends(2);
	if (HasFatalFailure())
		return;
	StartQgate("      versions: [1]\n");
	if (HasFatalFailure())
		return;

	ClientRun r = Get(port_, { "-v", "0x1a2a3a4a", "--handshake-timeout=2s" });
	ASSERT_TRUE(r.finished) << r.describe;
	EXPECT_TRUE(Contains(r.log, "version=0x00000000 type=VN")) << "no Version Negotiation" << r.describe;
	EXPECT_TRUE(Contains(r.log, "VN v=0x00000001")) << r.describe;
	EXPECT_TRUE(r.download.empty()) << "no connection should be made";
	EXPECT_TRUE(Saw(r.scid).empty()) << "a backend saw the client" << BackendLogs();

	// v1 still goes through.
	ClientRun ok = Get(port_);
	ASSERT_TRUE(ok.finished) << ok.describe;
	EXPECT_EQ(ok.code, 0) << ok.describe << QgateLog();
	EXPECT_NE(ServedBy(ok.download), nullptr) << ok.describe;

	std::map<std::string, uint64_t> t;
	StopQgate(&t);
	if (HasFatalFailure())
		return;
	EXPECT_GE(t["quic_vn_sent"], 1u) << QgateLog();
	EXPECT_EQ(t["flows_created"], 1u) << "only the v1 client gets a flow" << QgateLog();
}

INSTANTIATE_TEST_SUITE_P(Io, Ngtcp2Qgate, ::testing::Values("recvmmsg", "io_uring"),
			 [](const ::testing::TestParamInfo<std::string> &info) { return info.param; });

// ---- the VN health probe against gtlsserver directly ----

class Ngtcp2Probe : public Ngtcp2Base
{
};

TEST_F(Ngtcp2Probe, LiveServerAnswersStoppedServerDoesNot)
{
	StartBackends(1);
	if (HasFatalFailure())
		return;
	Backend &b = *backends_[0];
	const qg_addr server = qgt::Addr(b.addr());

	// One probe, answered within 1 s by a VN that echoes its CIDs swapped and lists QUIC v1.
	qgt::Client c;
	Bytes dcid = RandomBytes(8), scid = RandomBytes(20);
	uint8_t probe[1500];
	size_t n = qg_quic_build_vn_probe(probe, sizeof(probe), kReservedVersion, dcid.data(), dcid.size(),
					  scid.data(), scid.size());
	ASSERT_GE(n, static_cast<size_t>(QG_QUIC_MIN_INITIAL_SIZE));
	ASSERT_TRUE(c.Send(server, probe, n)) << strerror(errno);
	uint8_t buf[65536];
	ssize_t got = c.Recv(buf, sizeof(buf), 1000);
	ASSERT_GT(got, 0) << "no answer within 1 s" << b.proc->Describe();
	const size_t len = static_cast<size_t>(got);
	EXPECT_TRUE(qg_quic_vn_matches_probe(buf, len, dcid.data(), dcid.size(), scid.data(), scid.size()))
		<< Hex(buf, len);
	// The match is on the CIDs: another probe's CIDs do not match this answer.
	Bytes other = RandomBytes(8);
	EXPECT_FALSE(
		qg_quic_vn_matches_probe(buf, len, other.data(), other.size(), scid.data(), scid.size()));
	EXPECT_FALSE(qg_quic_vn_matches_probe(buf, len, scid.data(), scid.size(), dcid.data(), dcid.size()));
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(buf, len, 0, &h), 0) << Hex(buf, len);
	ASSERT_EQ(h.type, QG_QUIC_TYPE_VERSION_NEGOTIATION);
	bool v1 = false;
	for (size_t i = 0; i + 4 <= h.versions_len; i += 4) {
		uint32_t v = (uint32_t)h.versions[i] << 24 | (uint32_t)h.versions[i + 1] << 16 |
			     (uint32_t)h.versions[i + 2] << 8 | h.versions[i + 3];
		v1 |= v == QG_QUIC_VERSION_1;
	}
	EXPECT_TRUE(v1) << "the VN does not list QUIC v1: " << Hex(h.versions, h.versions_len);

	// Stopped: no answer within 1 s, the probe says down.
	b.proc->Stop();
	ASSERT_TRUE(b.proc->Exited());
	EXPECT_FALSE(ProbeVn(server, 1000)) << "a stopped server answered";
}

} // namespace
