// SPDX-License-Identifier: BSD-3-Clause
// Hot reload as operators do it: the real qgate on loopback, established
// clients talking all the time, the file rewritten and `qgatectl reload` or
// SIGHUP. Established flows that keep their backend lose nothing; a new
// service answers; a removed backend's clients move on; a broken file is
// refused with FILE:LINE:COLUMN and the running configuration stays. Both
// socket backends (io_uring, recvmmsg) run every case.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
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
using qgt::Result;
using qgt::TempDir;
using qgt::WaitFor;

namespace
{

class Qgate : public qgt::Child
{
      public:
	Qgate(const TempDir &dir, const std::vector<std::string> &args)
	    : Child(dir, "qgate", qgt::Cmd(QGATE_BIN, args))
	{
	}
};

// Established clients, each with its own socket, looping round trips until stopped. A round trip is
// one datagram and its echo within timeout, no retry: any miss is a loss.
class Load
{
      public:
	Load(const qg_addr &to, uint32_t first_id, uint32_t n) : to_(to)
	{
		for (uint32_t i = 0; i < n; i++)
			clients_.emplace_back(new Client());
		first_ = first_id;
	}
	~Load()
	{
		Stop();
	}
	// One round trip per client, retried: the flows exist before the load starts.
	bool Establish()
	{
		for (size_t i = 0; i < clients_.size(); i++)
			if (!qgt::RoundTrip(*clients_[i], to_, qgt::Payload(first_ + (uint32_t)i, 0, 64)))
				return false;
		return true;
	}
	void Start()
	{
		thread_ = std::thread([this] { Run(); });
	}
	void Stop()
	{
		stop_ = true;
		if (thread_.joinable())
			thread_.join();
	}
	uint64_t sent() const
	{
		return sent_.load();
	}
	uint64_t lost() const
	{
		return lost_.load();
	}

      private:
	void Run()
	{
		uint32_t seq = 1;
		while (!stop_) {
			for (size_t i = 0; i < clients_.size() && !stop_; i++, seq++) {
				if (!qgt::RoundTrip(*clients_[i], to_,
						    qgt::Payload(first_ + (uint32_t)i, seq, 64), 2000, 1))
					lost_++;
				sent_++;
			}
		}
	}
	qg_addr to_;
	uint32_t first_ = 0;
	std::vector<std::unique_ptr<Client>> clients_;
	std::thread thread_;
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> sent_{ 0 }, lost_{ 0 };
};

struct Svc {
	std::string name, listen;
	std::vector<std::string> backends;
	std::string extra; // more keys of the service, indented by 4
};

class Reload : public ::testing::TestWithParam<const char *>
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok());
		sock_ = dir_.File("admin.sock");
		cfg_ = dir_.File("qgate.yaml");
		la_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		lb_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
	}
	std::string Yaml(const std::vector<Svc> &svcs) const
	{
		std::string y = "admin: {socket: " + sock_ + "}\n" + "dataplane: {backend: " + GetParam() +
				", cores: [" + std::to_string(qgt::FirstAllowedCpu()) + "]}\nservices:\n";
		for (const auto &s : svcs) {
			y += "  - name: " + s.name + "\n    listen: " + s.listen + "\n" + s.extra +
			     "    backends:\n";
			for (const auto &b : s.backends)
				y += "      - address: " + b + "\n";
		}
		return y;
	}
	void Start(const std::vector<Svc> &svcs)
	{
		qgt::WriteFile(cfg_, Yaml(svcs));
		q_.reset(new Qgate(dir_, { "-c", cfg_ }));
		bool up = WaitFor([this] { return q_->Exited() || Ctl({ "status" }).status == 0; }, 10000);
		ASSERT_TRUE(up && !q_->Exited()) << "qgate did not come up" << q_->Describe();
		if (std::string(GetParam()) == "io_uring" &&
		    q_->err().find("falling back") != std::string::npos)
			GTEST_SKIP() << "io_uring is not usable here: " << q_->Describe();
	}
	Result Ctl(std::vector<std::string> args) const
	{
		args.insert(args.begin(), { "-s", sock_ });
		return qgt::Run(qgt::Cmd(QGATECTL_BIN, args), 15000);
	}
	Result ReloadWith(const std::vector<Svc> &svcs)
	{
		qgt::WriteFile(cfg_, Yaml(svcs));
		return Ctl({ "reload" });
	}
	bool Answers(const std::string &listen, uint32_t id)
	{
		Client c;
		return qgt::RoundTrip(c, qgt::Addr(listen), qgt::Payload(id, 0, 64), 500, 4);
	}

	TempDir dir_{ "qgate-reload" };
	EchoServer a_, b_, c_;
	std::string sock_, cfg_, la_, lb_;
	std::unique_ptr<Qgate> q_;
};

TEST_P(Reload, GoodBadAndSighupUnderLoadLoseNothing)
{
	Svc A{ "alpha", la_, { a_.addr_str(), b_.addr_str() }, "" };
	Start({ A });
	Load load(qgt::Addr(la_), 1, 24);
	ASSERT_TRUE(load.Establish()) << q_->Describe();
	auto before_a = a_.clients(), before_b = b_.clients();
	load.Start();

	// Good: a new backend, a changed idle timeout and a new service.
	Svc A2 = A;
	A2.backends.push_back(c_.addr_str());
	A2.extra = "    idle_timeout: 45s\n";
	Svc B{ "beta", lb_, { c_.addr_str() }, "" };
	Result r = ReloadWith({ A2, B });
	ASSERT_EQ(r.status, 0) << r.err << q_->Describe();
	EXPECT_NE(r.out.find("services: 1 added, 0 removed, 1 changed; backends: 2 added, 0 removed"),
		  std::string::npos)
		<< r.out;
	EXPECT_TRUE(Answers(lb_, 5000)) << "the new service does not answer" << q_->Describe();
	EXPECT_TRUE(c_.served(5000));

	// Bad: refused with the place of the mistake, and everything keeps running.
	qgt::WriteFile(cfg_, Yaml({ A2, B }) + "  - name: gamma\n    listen: nowhere\n");
	r = Ctl({ "reload" });
	EXPECT_EQ(r.status, 1) << r.out;
	EXPECT_NE(r.err.find("reload refused, the running configuration stays"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find(cfg_ + ":"), std::string::npos) << "no FILE:LINE:COLUMN in " << r.err;
	EXPECT_TRUE(Answers(lb_, 5001)) << "a refused reload changed the running configuration";

	// SIGHUP with a file that removes the new service again.
	qgt::WriteFile(cfg_, Yaml({ A2 }));
	ASSERT_TRUE(q_->Signal(SIGHUP));
	EXPECT_TRUE(q_->WaitForErr("services: 0 added, 1 removed", 5000)) << q_->Describe();
	EXPECT_FALSE(Answers(lb_, 5002)) << "a removed service still answers";

	// Let the load run a little past the last change, then count.
	uint64_t at = load.sent();
	WaitFor([&] { return load.sent() > at + 48; }, 5000);
	load.Stop();
	EXPECT_GT(load.sent(), 48u);
	EXPECT_EQ(load.lost(), 0u) << "established flows lost datagrams across reloads" << q_->Describe();
	// And nobody moved: a client served by a before is not served by b since, and the other way round.
	auto after_a = a_.clients(), after_b = b_.clients();
	auto n = [](const std::map<uint32_t, uint64_t> &m, uint32_t id) {
		auto it = m.find(id);
		return it == m.end() ? 0 : it->second;
	};
	for (uint32_t id = 1; id <= 24; id++) {
		if (n(before_a, id)) {
			EXPECT_EQ(n(after_b, id), n(before_b, id)) << "client " << id << " moved to b";
		}
		if (n(before_b, id)) {
			EXPECT_EQ(n(after_a, id), n(before_a, id)) << "client " << id << " moved to a";
		}
	}
	EXPECT_FALSE(q_->Exited()) << q_->Describe();
}

TEST_P(Reload, RemovedBackendsClientsMoveOn)
{
	Svc A{ "alpha", la_, { a_.addr_str(), b_.addr_str() }, "" };
	Start({ A });
	Load load(qgt::Addr(la_), 1, 24);
	ASSERT_TRUE(load.Establish()) << q_->Describe();
	auto on_b = b_.clients();
	ASSERT_FALSE(on_b.empty()) << "maglev sent none of 24 clients to b";
	Svc A2{ "alpha", la_, { a_.addr_str() }, "" };
	Result r = ReloadWith({ A2 });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("backends: 0 added, 1 removed"), std::string::npos) << r.out;
	// Every client still gets answers (b's re-homed to a on their next datagram); b sees nothing new.
	uint64_t b_seen = b_.datagrams();
	load.Start();
	WaitFor([&] { return load.sent() >= 96; }, 10000);
	load.Stop();
	EXPECT_EQ(load.lost(), 0u) << q_->Describe();
	EXPECT_EQ(b_.datagrams(), b_seen) << "a removed backend still gets traffic";
	for (const auto &kv : on_b)
		EXPECT_TRUE(a_.served(kv.first)) << "client " << kv.first << " was not re-homed";
	r = Ctl({ "backends" });
	EXPECT_EQ(r.out.find(b_.addr_str()), std::string::npos) << r.out;
}

TEST_P(Reload, BindFailureRefusesTheWholeReload)
{
	Svc A{ "alpha", la_, { a_.addr_str() }, "" };
	Start({ A });
	// Someone else holds the new service's port (no SO_REUSEPORT: qgate cannot join it).
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	sockaddr_in sin{};
	socklen_t sl = sizeof(sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	ASSERT_EQ(bind(fd, (sockaddr *)&sin, sizeof(sin)), 0);
	ASSERT_EQ(getsockname(fd, (sockaddr *)&sin, &sl), 0);
	lb_ = "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
	Svc A2{ "alpha", la_, { a_.addr_str(), b_.addr_str() }, "" };
	Svc B{ "beta", lb_, { c_.addr_str() }, "" };
	Result r = ReloadWith({ A2, B });
	close(fd);
	EXPECT_EQ(r.status, 1) << r.out;
	EXPECT_NE(r.err.find("service beta: cannot listen on " + lb_), std::string::npos) << r.err;
	// Nothing changed: alpha still has one backend.
	r = Ctl({ "backends" });
	EXPECT_EQ(r.out.find(b_.addr_str()), std::string::npos) << r.out;
	EXPECT_TRUE(Answers(la_, 7));
}

// "Cpus_allowed_list" of one thread of pid, as a set of CPUs (empty when unreadable).
std::set<int> ThreadCpus(pid_t pid, pid_t tid)
{
	std::string st =
		qgt::ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
	std::set<int> cpus;
	size_t at = st.find("Cpus_allowed_list:");

	if (at == std::string::npos)
		return cpus;
	std::istringstream in(st.substr(at + 18, st.find('\n', at) - at - 18));
	std::string part;
	while (std::getline(in, part, ',')) {
		int lo = 0, hi = 0;
		if (sscanf(part.c_str(), "%d-%d", &lo, &hi) == 2)
			for (int c = lo; c <= hi; c++)
				cpus.insert(c);
		else if (sscanf(part.c_str(), "%d", &lo) == 1)
			cpus.insert(lo);
	}
	return cpus;
}

// The control thread (qgate's main thread) leaves the worker's core when another one is allowed, and a
// reload, validated on that thread, still accepts the worker's core (the CPUs allowed at start count).
TEST_P(Reload, ControlThreadLeavesTheWorkerCoreAndReloadsKeepIt)
{
	if (qgt::AllowedCpus().size() < 2)
		GTEST_SKIP() << "needs two allowed CPUs: with one, the control thread shares the worker's";
	Svc A{ "alpha", la_, { a_.addr_str() }, "" };
	Start({ A });
	int worker = qgt::FirstAllowedCpu();
	std::set<int> control = ThreadCpus(q_->pid(), q_->pid());
	ASSERT_FALSE(control.empty()) << q_->Describe();
	EXPECT_EQ(control.count(worker), 0u) << "control thread still allowed on the worker's CPU " << worker;
	EXPECT_NE(q_->err().find("control thread on CPU(s)"), std::string::npos) << q_->Describe();
	Svc A2{ "alpha", la_, { a_.addr_str(), b_.addr_str() }, "" };
	Result r = ReloadWith({ A2 });
	EXPECT_EQ(r.status, 0) << r.out << r.err;
	r = Ctl({ "backends" });
	EXPECT_NE(r.out.find(b_.addr_str()), std::string::npos) << r.out;
	EXPECT_TRUE(Answers(la_, 9));
}

INSTANTIATE_TEST_SUITE_P(Backends, Reload, ::testing::Values("io_uring", "recvmmsg"),
			 [](const ::testing::TestParamInfo<const char *> &i) {
				 return std::string(i.param);
			 });

} // namespace
