// SPDX-License-Identifier: BSD-3-Clause
// The DPDK backend end to end through real DPDK ports: qgate-loadgen
// (QGATE_LOADGEN_BIN, --mode echo) owns two memif ports as server; its tx port
// plays the clients, its rx port plays the three backends and reflects every
// datagram. qgate (QGATE_BIN, one worker, backend dpdk) attaches to both as
// memif client: clients on memif0, backends on memif1 (two-arm), static
// neighbours, so no ARP/ND is needed.
//
// Checked: the loadgen's JSON (0 lost, 0 mismatched: every reply came back
// byte for byte to the client that sent it; rx == tx), qgate's exit totals
// (flows_created == flows, no drop or error counter, traffic counters equal
// to what the loadgen's backend side reflected) and the spread of the flows
// over the backends, read from qgate's last --stats report (maglev: within 5
// standard deviations of the weights; wrr: exactly 1:2:3).
//
// Skips (with the reason) when a binary is built without DPDK, when the EAL
// cannot initialise, or when memif does not connect within 10 s. Every child
// is killed and reaped by an RAII guard, socket files and the EAL runtime
// directories (/var/run/dpdk/<prefix>) are removed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/proc.h"

extern "C" {
#include "qgate/counters.h"
}

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif
#ifndef QGATE_LOADGEN_BIN
#error "QGATE_LOADGEN_BIN (path of the qgate-loadgen executable) must be defined by the build"
#endif

namespace
{

using Clock = std::chrono::steady_clock;
using qgt::AllowedCpus;
using qgt::Child;
using qgt::ReadFile;
using qgt::WaitFor;
using qgt::WriteFile;

constexpr uint32_t kFlows = 300;
constexpr uint32_t kRate = 20000;
constexpr int kLinkTimeoutS = 10;
const uint32_t kWeights[3] = { 1, 2, 3 };

// MACs given to the memif ports (devarg mac=) so the configs can name them.
const char kLgMac0[] = "02:00:00:00:00:01"; // loadgen tx port: the clients
const char kLgMac1[] = "02:00:00:00:00:02"; // loadgen rx port: the backends
const char kQgMac0[] = "02:00:00:00:01:01"; // qgate, clients' side
const char kQgMac1[] = "02:00:00:00:01:02"; // qgate, backends' side

bool IsSocket(const std::string &path)
{
	struct stat st;
	return stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// qgate's exit totals: "qgate: total NAME = N" (only non-zero counters are printed).
std::map<std::string, uint64_t> Totals(const std::string &err)
{
	std::map<std::string, uint64_t> out;
	static const std::regex re("^qgate: total ([a-z0-9_]+) = ([0-9]+)$");
	std::istringstream lines(err);
	std::string line;
	while (std::getline(lines, line)) {
		std::smatch m;
		if (std::regex_match(line, m, re))
			out[m[1]] = strtoull(m[2].str().c_str(), nullptr, 10);
	}
	return out;
}

uint64_t Get(const std::map<std::string, uint64_t> &m, const std::string &k)
{
	auto it = m.find(k);
	return it == m.end() ? 0 : it->second;
}

struct BackendLine {
	std::string addr;
	uint64_t flows = 0, to = 0, from = 0;
};

// The last complete per-backend block of qgate's --stats reports (stdout), n_backends lines.
std::vector<BackendLine> LastReport(const std::string &out, size_t n_backends)
{
	static const std::regex re("^  backend (\\S+) +flows +([0-9]+) .* total to ([0-9]+) from ([0-9]+)$");
	std::vector<BackendLine> last, cur;
	std::istringstream lines(out);
	std::string line;
	while (std::getline(lines, line)) {
		std::smatch m;
		if (line.rfind("--- t=", 0) == 0) {
			cur.clear();
		} else if (std::regex_match(line, m, re)) {
			BackendLine b;
			b.addr = m[1];
			b.flows = strtoull(m[2].str().c_str(), nullptr, 10);
			b.to = strtoull(m[3].str().c_str(), nullptr, 10);
			b.from = strtoull(m[4].str().c_str(), nullptr, 10);
			cur.push_back(b);
			if (cur.size() == n_backends)
				last = cur;
		}
	}
	return last;
}

// Why the whole suite skips (built without DPDK, EAL or memif unavailable): found once, then
// every test skips at once instead of waiting for the same timeout again.
std::string g_skip;

struct RunSpec {
	const char *policy; // maglev | wrr
	bool v6;
	double duration_s;
	// Reload mid-run (qgatectl reload): the weights reversed and a second service added. The
	// established flows keep their backends; the new service is reachable (its VIP in frames).
	bool reload = false;
	// qgate's memif ports zero-copy (zero-copy=yes, --single-file-segments, hugepages): the
	// generator reads and writes frames in qgate's own mbufs.
	bool zero_copy = false;
};

const uint32_t kReloadWeights[3] = { 3, 2, 1 };

class DpdkMemif : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		if (!g_skip.empty())
			GTEST_SKIP() << g_skip;
		ASSERT_EQ(access(QGATE_BIN, X_OK), 0) << QGATE_BIN << ": " << strerror(errno);
		ASSERT_EQ(access(QGATE_LOADGEN_BIN, X_OK), 0) << QGATE_LOADGEN_BIN << ": " << strerror(errno);
		tmp_ = std::make_unique<qgt::TempDir>("qgate-memif-" + std::to_string(getpid()), "/tmp");
		ASSERT_TRUE(tmp_->ok()) << strerror(errno);
		dir_ = tmp_->path();
		static int seq;
		tag_ = std::to_string(getpid()) + "-" + std::to_string(++seq);
		lg_prefix_ = "qgate-memif-lg-" + tag_;
		qg_prefix_ = "qgate-memif-qg-" + tag_;
	}
	void TearDown() override
	{
		// Children are gone (RAII in the test body); remove their files and EAL runtime dirs.
		if (!huge_dir_.empty())
			(void)umount2(huge_dir_.c_str(), MNT_DETACH);
		tmp_.reset();
		if (!lg_prefix_.empty())
			(void)!system(("rm -rf /var/run/dpdk/" + lg_prefix_ + " /var/run/dpdk/" + qg_prefix_)
					      .c_str());
	}

	// Extra environment of the DPDK children. None is needed: the sanitizer build
	// (QGATE_SANITIZE=ON) passes with LeakSanitizer on, so no ASAN_OPTIONS=detect_leaks=0 here.
	static qgt::ChildOptions ChildEnv()
	{
		return {};
	}

	std::string QgateConfig(const RunSpec &spec, int cpu, bool reloaded = false)
	{
		const uint32_t *weights = reloaded ? kReloadWeights : kWeights;
		std::ostringstream y;
		if (spec.reload)
			y << "admin: {socket: " << dir_ << "/admin.sock}\n";
		y << "dataplane:\n"
		  << "  backend: dpdk\n"
		  << "  cores: [" << cpu << "]\n"
		  << "  flows_per_core: 65536\n"
		  << "  dpdk:\n"
		  << "    eal_args: ["
		  << (spec.zero_copy
			      ? "--huge-dir, \"" + huge_dir_ + "\", -m, \"128\", --single-file-segments"
			      : std::string("--no-huge, -m, \"512\""))
		  << ", --no-pci, --file-prefix, " << qg_prefix_ << ", --vdev, \"net_memif0,role=client,"
		  << (spec.zero_copy ? "zero-copy=yes," : "") << "socket-abstract=no,socket=" << dir_
		  << "/c.sock,mac=" << kQgMac0 << "\", --vdev, \"net_memif1,role=client,"
		  << (spec.zero_copy ? "zero-copy=yes," : "") << "socket-abstract=no,socket=" << dir_
		  << "/b.sock,mac=" << kQgMac1 << "\"]\n"
		  << "    mbufs: 4095\n"
		  << "    ports:\n"
		  << "      - name: net_memif0\n";
		if (spec.v6)
			y << "        addresses: [\"fd00:1::1/64\"]\n"
			  << "        neighbors: [{address: \"fd00:1::2\", mac: \"" << kLgMac0 << "\"}]\n";
		else
			y << "        addresses: [10.1.0.1/16]\n"
			  << "        neighbors: [{address: 10.1.0.2, mac: \"" << kLgMac0 << "\"}]\n";
		y << "      - name: net_memif1\n";
		if (spec.v6)
			y << "        addresses: [\"fd00:2::1/64\"]\n"
			  << "        nat_addresses: [\"fd00:2::100\"]\n";
		else
			y << "        addresses: [10.2.0.1/16]\n"
			  << "        nat_addresses: [10.2.1.1]\n";
		y << "        neighbors:\n";
		for (int i = 0; i < 3; i++)
			y << "          - {address: \"" << Backend(spec, i, false) << "\", mac: \"" << kLgMac1
			  << "\"}\n";
		y << "services:\n"
		  << "  - name: memif\n"
		  << "    listen: \"" << (spec.v6 ? "[fd00:1::1]:4433" : "10.1.0.1:4433") << "\"\n"
		  << "    policy: " << spec.policy << "\n"
		  << "    idle_timeout: 60s\n"
		  << "    backends:\n";
		for (int i = 0; i < 3; i++)
			y << "      - {address: \"" << Backend(spec, i, true) << "\", weight: " << weights[i]
			  << "}\n";
		if (reloaded)
			y << "  - name: memif-b\n"
			  << "    listen: \"" << (spec.v6 ? "[fd00:1::1]:4434" : "10.1.0.1:4434") << "\"\n"
			  << "    backends:\n"
			  << "      - {address: \"" << Backend(spec, 0, true) << "\"}\n";
		return y.str();
	}

	static std::string Backend(const RunSpec &spec, int i, bool with_port)
	{
		std::string ip = (spec.v6 ? "fd00:2::1" : "10.2.0.1") + std::to_string(i);
		if (!with_port)
			return ip;
		return spec.v6 ? "[" + ip + "]:5001" : ip + ":5001";
	}

	// A private hugetlbfs mount for qgate's EAL (zero-copy memif needs hugepages).
	// @return "" or why it cannot be had here.
	std::string MountHuge()
	{
		std::ifstream mi("/proc/meminfo");
		std::string key;
		long free_pages = 0, v;
		while (mi >> key >> v) {
			if (key == "HugePages_Free:")
				free_pages = v;
			mi.ignore(256, '\n');
		}
		if (free_pages < 96)
			return "zero-copy memif needs hugepages: " + std::to_string(free_pages) +
			       " x 2 MiB free, 96 wanted (scripts/setup.sh reserves them)";
		std::string d = dir_ + "/huge";
		if (mkdir(d.c_str(), 0700) != 0)
			return "mkdir " + d + ": " + strerror(errno);
		if (mount("nodev", d.c_str(), "hugetlbfs", 0, "pagesize=2M") != 0)
			return "cannot mount hugetlbfs (needs root): " + std::string(strerror(errno));
		huge_dir_ = d;
		return "";
	}

	// Skip the suite (and remember why) from inside a helper: the caller returns at once.
	void SkipAll(const std::string &why)
	{
		g_skip = why;
		skipped_ = true;
	}

	// Probe both binaries once: built with DPDK?
	void ProbeBinaries()
	{
		static bool probed;
		static std::string reason;
		if (!probed) {
			probed = true;
			Child lg({ QGATE_LOADGEN_BIN, "--dpdk", "", "--help" }, dir_ + "/probe-lg.out",
				 dir_ + "/probe-lg.err");
			if (lg.started() && lg.Wait(10000)) {
				std::string text = lg.out() + lg.err();
				if (text.find("built without DPDK") != std::string::npos)
					reason = "qgate-loadgen was built without DPDK: " + lg.err();
			}
			if (reason.empty()) {
				RunSpec spec{ "maglev", false, 1 };
				std::string cfg = dir_ + "/probe.yaml";
				WriteFile(cfg, QgateConfig(spec, 0));
				Child q({ QGATE_BIN, "--check-config", cfg }, dir_ + "/probe-qg.out",
					dir_ + "/probe-qg.err");
				if (q.started() && q.Wait(10000) && q.code() != 0 &&
				    (q.out() + q.err()).find("without DPDK") != std::string::npos)
					reason = "qgate was built without DPDK: " + q.err();
			}
		}
		if (!reason.empty())
			SkipAll(reason);
	}

	// One end-to-end run; fills lg_json_, qg_out_, qg_err_. Sets skipped_ when the environment
	// cannot run it.
	void Run(const RunSpec &spec)
	{
		ProbeBinaries();
		if (skipped_)
			return;
		std::vector<int> cpus = AllowedCpus();
		int lg_cpu = cpus.front(), qg_cpu = cpus.back(); // the same CPU only when there is one

		std::string cfg = dir_ + "/qgate.yaml";
		WriteFile(cfg, QgateConfig(spec, qg_cpu));
		std::string check_out = dir_ + "/check.out";
		{
			Child check({ QGATE_BIN, "--check-config", cfg }, check_out, check_out + ".err");
			ASSERT_TRUE(check.started()) << check.spawn_error();
			ASSERT_TRUE(check.Wait(10000)) << "qgate --check-config hangs";
			ASSERT_EQ(check.code(), 0) << "qgate refuses the generated config:\n"
						   << ReadFile(cfg) << check.Describe("qgate --check-config");
		}

		std::string csock = dir_ + "/c.sock", bsock = dir_ + "/b.sock";
		std::string eal = "--no-huge -m 512 --no-pci --file-prefix " + lg_prefix_ +
				  " --vdev net_memif0,role=server,socket-abstract=no,socket=" + csock +
				  ",mac=" + kLgMac0 +
				  " --vdev net_memif1,role=server,socket-abstract=no,socket=" + bsock +
				  ",mac=" + kLgMac1;
		char dur[32];
		snprintf(dur, sizeof(dur), "%.1f", spec.duration_s);
		std::vector<std::string> lg_args = { QGATE_LOADGEN_BIN,
						     "--dpdk",
						     eal,
						     "--lcore",
						     std::to_string(lg_cpu),
						     "--tx-port",
						     "net_memif0",
						     "--rx-port",
						     "net_memif1",
						     "--mode",
						     "echo",
						     "--dst-mac",
						     kQgMac0,
						     "--src-ip",
						     spec.v6 ? "fd00:1::2" : "10.1.0.2",
						     "--src-ips",
						     "1",
						     "--target",
						     spec.v6 ? "[fd00:1::1]:4433" : "10.1.0.1:4433",
						     "--flows",
						     std::to_string(kFlows),
						     "--rate",
						     std::to_string(kRate),
						     "--duration",
						     dur,
						     "--warmup",
						     "0.5",
						     "--timeout-ms",
						     "500",
						     "--link-timeout",
						     std::to_string(kLinkTimeoutS),
						     "--json" };
		Child lg(lg_args, dir_ + "/lg.json", dir_ + "/lg.err", ChildEnv());
		ASSERT_TRUE(lg.started()) << lg.spawn_error();

		// The memif server creates its sockets during EAL init, but refuses a client until its
		// port is configured, and a DPDK memif client does not reconnect: qgate starts only
		// once the loadgen has set up both ports (it then says it waits for the links).
		bool ready = WaitFor(
			[&] {
				return (IsSocket(csock) && IsSocket(bsock) &&
					lg.err().find("to come up") != std::string::npos) ||
				       lg.Exited();
			},
			10000);
		if (lg.Exited() || !ready) {
			lg.Stop(3000);
			std::string e = lg.err();
			if (lg.code() == 1 && (e.find("EAL init failed") != std::string::npos ||
					       e.find("no DPDK port named") != std::string::npos))
				return SkipAll("the loadgen's EAL or its memif vdevs cannot start here:\n" +
					       e);
			FAIL() << "qgate-loadgen did not set up its memif ports within 10 s"
			       << lg.Describe("qgate-loadgen");
		}

		Child qg({ QGATE_BIN, "-c", cfg, "--stats", "0.5" }, dir_ + "/qgate.out", dir_ + "/qgate.err",
			 ChildEnv());
		ASSERT_TRUE(qg.started()) << qg.spawn_error();

		// The loadgen's run: link (<= 10 s) + warm-up + duration + drain, plus slack.
		int bound_ms = (kLinkTimeoutS + 8) * 1000 + (int)(spec.duration_s * 1000);
		auto deadline = Clock::now() + std::chrono::milliseconds(bound_ms);
		bool reloaded = !spec.reload;
		while (!lg.Exited() && Clock::now() < deadline) {
			if (qg.Exited())
				break;
			// Reload once the flows exist (qgate reports them) and traffic runs.
			if (!reloaded && LastReport(qg.out(), 3).size() == 3 &&
			    LastReport(qg.out(), 3)[2].flows > 0) {
				reloaded = true;
				WriteFile(cfg, QgateConfig(spec, qg_cpu, true));
				reload_ = qgt::Run(
					qgt::Cmd(QGATECTL_BIN, { "-s", dir_ + "/admin.sock", "reload" }),
					15000);
				backends_after_ =
					qgt::Run(qgt::Cmd(QGATECTL_BIN, { "-s", dir_ + "/admin.sock",
									  "backends", "--json" }),
						 15000);
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		if (qg.Exited() && !lg.Exited()) {
			lg.Stop(3000);
			if (qg.err().find("EAL initialisation failed") != std::string::npos)
				return SkipAll("qgate's EAL cannot initialise here:\n" + qg.err());
			FAIL() << "qgate exited during the run" << qg.Describe("qgate")
			       << lg.Describe("qgate-loadgen");
		}
		if (!lg.Exited()) {
			lg.Stop(3000);
			qg.Stop(5000);
			FAIL() << "qgate-loadgen did not finish within " << bound_ms << " ms"
			       << lg.Describe("qgate-loadgen") << qg.Describe("qgate");
		}
		if (lg.code() == 1 && lg.err().find("is down after") != std::string::npos) {
			qg.Stop(5000);
			return SkipAll("memif did not connect within " + std::to_string(kLinkTimeoutS) +
				       " s:\n" + lg.err() + qg.Describe("qgate"));
		}
		lg_json_ = lg.out();
		ASSERT_EQ(lg.code(), 0) << lg.Describe("qgate-loadgen") << qg.Describe("qgate");

		// Let qgate print a report that covers everything reflected (reports every 0.5 s).
		double reflected = qgt::JsonNumber(lg_json_, "reflected");
		WaitFor(
			[&] {
				uint64_t to = 0;
				for (auto &b : LastReport(qg.out(), 3))
					to += b.to;
				return (double)to >= reflected || qg.Exited();
			},
			5000);
		bool clean = qg.Stop(10000);
		qg_out_ = qg.out();
		qg_err_ = qg.err();
		EXPECT_TRUE(clean) << "qgate did not stop within 10 s of SIGTERM" << qg.Describe("qgate");
		EXPECT_EQ(qg.code(), 0) << qg.Describe("qgate");
		describe_ = lg.Describe("qgate-loadgen") + qg.Describe("qgate");
	}

	// The checks every run shares.
	void CheckRun(const RunSpec &spec)
	{
		// Loadgen: every datagram came back intact to its own client.
		double tx = qgt::JsonNumber(lg_json_, "tx"), rx = qgt::JsonNumber(lg_json_, "rx");
		double reflected = qgt::JsonNumber(lg_json_, "reflected");
		ASSERT_FALSE(std::isnan(tx)) << "no JSON from the loadgen" << describe_;
		EXPECT_EQ(qgt::JsonNumber(lg_json_, "flows"), kFlows) << lg_json_;
		EXPECT_GT(tx, 0.8 * kRate * spec.duration_s) << lg_json_;
		EXPECT_EQ(qgt::JsonNumber(lg_json_, "lost"), 0) << lg_json_ << describe_;
		EXPECT_EQ(qgt::JsonNumber(lg_json_, "mismatched"), 0) << lg_json_ << describe_;
		EXPECT_EQ(qgt::JsonNumber(lg_json_, "late"), 0) << lg_json_;
		EXPECT_EQ(rx, tx) << lg_json_;
		EXPECT_EQ(qgt::JsonNumber(lg_json_, "out_dropped"), 0) << lg_json_;

		// qgate: one flow per client, nothing dropped, every datagram relayed both ways.
		auto t = Totals(qg_err_);
		EXPECT_EQ(Get(t, "flows_created"), kFlows) << qg_err_;
		for (int i = 0; i < QG_CTR__COUNT; i++) {
			int kind = qg_ctr_kind((enum qg_ctr_id)i);
			const char *name = qg_ctr_name((enum qg_ctr_id)i);
			if (kind == QG_CTR_KIND_DROP || kind == QG_CTR_KIND_ERROR) {
				EXPECT_EQ(Get(t, name), 0u) << name << qg_err_;
			}
		}
		// The loadgen's backend side saw (and reflected) exactly what qgate sent to backends,
		// warm-up included; qgate relayed every reflection back.
		EXPECT_EQ((double)Get(t, "rx_client"), reflected) << qg_err_ << lg_json_;
		EXPECT_EQ(Get(t, "tx_backend"), Get(t, "rx_client")) << qg_err_;
		EXPECT_EQ(Get(t, "rx_backend"), Get(t, "tx_backend")) << qg_err_;
		EXPECT_EQ(Get(t, "tx_client"), Get(t, "rx_backend")) << qg_err_;
		EXPECT_EQ(Get(t, "neigh_requests"), 0u) << "static neighbours: nothing to resolve" << qg_err_;

		// Per-backend flows from the last report.
		backends_ = LastReport(qg_out_, 3);
		ASSERT_EQ(backends_.size(), 3u) << "no complete --stats report on stdout" << describe_;
		uint64_t flows = 0, to = 0;
		for (int i = 0; i < 3; i++) {
			EXPECT_EQ(backends_[i].addr, Backend(spec, i, true));
			EXPECT_EQ(backends_[i].to, backends_[i].from) << backends_[i].addr;
			flows += backends_[i].flows;
			to += backends_[i].to;
		}
		EXPECT_EQ(flows, kFlows) << qg_out_;
		EXPECT_EQ(to, Get(t, "tx_backend")) << "the last report covers the whole run" << qg_out_;
	}

	void CheckMaglevSpread()
	{
		ASSERT_EQ(backends_.size(), 3u);
		double total = kWeights[0] + kWeights[1] + kWeights[2];
		for (int i = 0; i < 3; i++) {
			double p = kWeights[i] / total, want = kFlows * p;
			double sd = std::sqrt(kFlows * p * (1 - p));
			EXPECT_NEAR((double)backends_[i].flows, want, 5 * sd)
				<< backends_[i].addr << " weight " << kWeights[i] << qg_out_;
		}
	}

	void CheckWrrExact()
	{
		ASSERT_EQ(backends_.size(), 3u);
		uint32_t total = kWeights[0] + kWeights[1] + kWeights[2];
		static_assert(kFlows % 6 == 0, "flows a multiple of the weights' sum");
		for (int i = 0; i < 3; i++)
			EXPECT_EQ(backends_[i].flows, (uint64_t)(kFlows / total * kWeights[i]))
				<< backends_[i].addr << " weight " << kWeights[i] << qg_out_;
	}

	std::unique_ptr<qgt::TempDir> tmp_;
	std::string dir_, tag_, lg_prefix_, qg_prefix_;
	std::string lg_json_, qg_out_, qg_err_, describe_;
	std::vector<BackendLine> backends_;
	qgt::Result reload_, backends_after_;
	bool skipped_ = false;
	std::string huge_dir_;
};

#define RUN_OR_SKIP(spec)                       \
	do {                                    \
		Run(spec);                      \
		if (HasFatalFailure())          \
			return;                 \
		if (skipped_)                   \
			GTEST_SKIP() << g_skip; \
		CheckRun(spec);                 \
		if (HasFatalFailure())          \
			return;                 \
	} while (0)

// A reload under load on the dpdk backend: weights reversed and a service added while 300 flows run.
// Nothing is lost, no flow is created again (flows_created == flows) and the flows keep the spread
// of the weights they were created with: established flows keep their backends.
TEST_F(DpdkMemif, ReloadUnderLoadKeepsFlows)
{
	RunSpec spec{ "maglev", false, 3.0, true };
	RUN_OR_SKIP(spec);
	EXPECT_EQ(reload_.status, 0) << "qgatectl reload: " << reload_.out << reload_.err << describe_;
	EXPECT_NE(backends_after_.out.find("memif-b"), std::string::npos)
		<< "the added service is not running: " << backends_after_.out << backends_after_.err;
	EXPECT_NE(qg_err_.find("reload"), std::string::npos) << qg_err_;
	CheckMaglevSpread();
}

TEST_F(DpdkMemif, MaglevIpv4)
{
	RunSpec spec{ "maglev", false, 3.0 };
	RUN_OR_SKIP(spec);
	CheckMaglevSpread();
}

TEST_F(DpdkMemif, WrrIpv4)
{
	RunSpec spec{ "wrr", false, 2.0 };
	RUN_OR_SKIP(spec);
	CheckWrrExact();
}

// The same through zero-copy memif ports: frames are rewritten in place in buffers the peer
// reads, and qgate's mbufs sit in the memif rings; nothing may be lost or corrupted.
TEST_F(DpdkMemif, ZeroCopyMaglevIpv4)
{
	RunSpec spec{ "maglev", false, 2.0 };
	spec.zero_copy = true;
	std::string why = MountHuge();
	if (!why.empty())
		GTEST_SKIP() << why;
	RUN_OR_SKIP(spec);
	CheckMaglevSpread();
}

TEST_F(DpdkMemif, MaglevIpv6)
{
	RunSpec spec{ "maglev", true, 2.0 };
	RUN_OR_SKIP(spec);
	CheckMaglevSpread();
}

} // namespace
