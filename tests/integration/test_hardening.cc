// SPDX-License-Identifier: BSD-3-Clause
// Hardening end to end with the real qgate:
//  - started as root with `user: nobody`, every thread (control thread and
//    workers) runs as nobody with no capability, read from
//    /proc/PID/task/*/status; traffic still relays; hot reloads (qgatectl and
//    SIGHUP) still add services on high ports; the admin socket has its
//    configured owner, group and mode; a non-loopback metrics address is
//    warned about;
//  - a service on a privileged port makes the control thread, and only it,
//    keep CAP_NET_BIND_SERVICE, so a reload can bind another one; without it
//    such a reload is refused and says why;
//  - systemd notifications on a notify socket the test owns: READY=1,
//    WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 then READY=1 around a
//    reload, STOPPING=1; a worker stopped by ptrace stops the pings until it
//    runs again.
// The privilege tests need root and skip otherwise.
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <dirent.h>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

extern "C" {
#include "qgate/notify.h"
}

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

constexpr uint64_t kBindService = 1ull << 10; // CAP_NET_BIND_SERVICE

// What /proc/PID/task/TID/status says about one thread's credentials.
struct ThreadCreds {
	long tid = 0;
	std::vector<unsigned long> uid, gid;
	uint64_t inh = ~0ull, prm = ~0ull, eff = ~0ull, bnd = ~0ull, amb = 0;
	int no_new_privs = -1;
};

std::vector<ThreadCreds> Threads(pid_t pid)
{
	std::vector<ThreadCreds> out;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return out;
	while (dirent *de = readdir(d)) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		ThreadCreds t;
		t.tid = strtol(de->d_name, nullptr, 10);
		std::istringstream in(qgt::ReadFile(dir + "/" + de->d_name + "/status"));
		std::string line;
		while (std::getline(in, line)) {
			std::istringstream l(line);
			std::string key;
			l >> key;
			auto ids = [&l] {
				std::vector<unsigned long> v;
				unsigned long x;
				while (l >> x)
					v.push_back(x);
				return v;
			};
			auto hex = [&l] {
				std::string h;
				l >> h;
				return std::stoull(h, nullptr, 16);
			};
			if (key == "Uid:")
				t.uid = ids();
			else if (key == "Gid:")
				t.gid = ids();
			else if (key == "CapInh:")
				t.inh = hex();
			else if (key == "CapPrm:")
				t.prm = hex();
			else if (key == "CapEff:")
				t.eff = hex();
			else if (key == "CapBnd:")
				t.bnd = hex();
			else if (key == "CapAmb:")
				t.amb = hex();
			else if (key == "NoNewPrivs:")
				l >> t.no_new_privs;
		}
		if (!t.uid.empty())
			out.push_back(t);
	}
	closedir(d);
	return out;
}

std::string Show(const ThreadCreds &t)
{
	char buf[256];
	snprintf(buf, sizeof(buf),
		 "thread %ld: uid %lu gid %lu eff %llx prm %llx inh %llx bnd %llx amb %llx nnp %d", t.tid,
		 t.uid.empty() ? 0 : t.uid[0], t.gid.empty() ? 0 : t.gid[0], (unsigned long long)t.eff,
		 (unsigned long long)t.prm, (unsigned long long)t.inh, (unsigned long long)t.bnd,
		 (unsigned long long)t.amb, t.no_new_privs);
	return buf;
}

// Every thread of pid runs as uid/gid (real, effective, saved, filesystem) with no capability but
// main_caps on the main thread (tid == pid). Returns the number of threads checked.
size_t ExpectDropped(pid_t pid, uid_t uid, gid_t gid, uint64_t main_caps)
{
	std::vector<ThreadCreds> ts = Threads(pid);
	for (const auto &t : ts) {
		uint64_t allowed = t.tid == pid ? main_caps : 0;
		EXPECT_EQ(t.uid.size(), 4u) << Show(t);
		for (unsigned long u : t.uid)
			EXPECT_EQ(u, uid) << Show(t);
		for (unsigned long g : t.gid)
			EXPECT_EQ(g, gid) << Show(t);
		EXPECT_EQ(t.eff, allowed) << Show(t);
		EXPECT_EQ(t.prm, allowed) << Show(t);
		EXPECT_EQ(t.inh, 0u) << Show(t);
		EXPECT_EQ(t.amb, 0u) << Show(t);
		EXPECT_EQ(t.bnd, main_caps)
			<< Show(t) << ": the bounding set holds what the control thread keeps";
		EXPECT_EQ(t.no_new_privs, 1) << Show(t);
	}
	return ts.size();
}

// A UDP port below 1024 nobody holds on 127.0.0.1 right now, or 0.
uint16_t FreeLowPort(uint16_t from)
{
	for (uint16_t p = from; p < 1024; p++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		sockaddr_in sin{};
		sin.sin_family = AF_INET;
		sin.sin_port = htons(p);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int rc = bind(fd, (sockaddr *)&sin, sizeof(sin));
		close(fd);
		if (rc == 0)
			return p;
	}
	return 0;
}

struct Svc {
	std::string name, listen, backend;
};

class Hardening : public ::testing::TestWithParam<const char *>
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok());
		// nobody re-reads the file at every reload: the directory must let it in.
		ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
		sock_ = dir_.File("admin.sock");
		cfg_ = dir_.File("qgate.yaml");
		std::vector<int> cpus = qgt::AllowedCpus();
		cores_ = std::to_string(cpus[0]);
		if (cpus.size() > 1)
			cores_ += ", " + std::to_string(cpus[1]); // two workers: several threads to check
	}
	bool Root()
	{
		return geteuid() == 0 && getpwnam("nobody") && getgrnam("nogroup");
	}
	std::string Yaml(const std::string &head, const std::vector<Svc> &svcs) const
	{
		std::string y = head + "admin: {socket: " + sock_ + ", mode: 0660, group: nogroup}\n" +
				"dataplane: {backend: " + GetParam() + ", cores: [" + cores_ +
				"]}\nservices:\n";
		for (const auto &s : svcs)
			y += "  - name: " + s.name + "\n    listen: " + s.listen +
			     "\n    backends:\n      - address: " + s.backend + "\n";
		return y;
	}
	void Write(const std::string &head, const std::vector<Svc> &svcs)
	{
		qgt::WriteFile(cfg_, Yaml(head, svcs));
		ASSERT_EQ(chmod(cfg_.c_str(), 0644), 0);
	}
	void Start(const std::string &head, const std::vector<Svc> &svcs, const qgt::ChildOptions &opts = {})
	{
		Write(head, svcs);
		q_.reset(new qgt::Child(dir_, "qgate", qgt::Cmd(QGATE_BIN, { "-c", cfg_ }), opts));
		bool up = WaitFor(
			[this] {
				return q_->Exited() ||
				       q_->err().find("qgate: info: ready") != std::string::npos;
			},
			10000);
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
	bool Answers(const std::string &listen, uint32_t id)
	{
		Client c;
		return qgt::RoundTrip(c, qgt::Addr(listen), qgt::Payload(id, 0, 64), 500, 4);
	}
	static std::string Local(uint16_t port)
	{
		return "127.0.0.1:" + std::to_string(port);
	}

	TempDir dir_{ "qgate-hardening", "/tmp" };
	EchoServer a_, b_;
	std::string sock_, cfg_, cores_;
	std::unique_ptr<qgt::Child> q_;
};

TEST_P(Hardening, RunsAsNobodyRelaysAndReloads)
{
	if (!Root())
		GTEST_SKIP()
			<< "needs root and the accounts nobody/nogroup: qgate switches from root to nobody";
	const struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid, admin_gid = getgrnam("nogroup")->gr_gid;
	uint16_t metrics = qgt::FreePort();
	std::string head = "user: nobody\nmetrics: {listen: 0.0.0.0:" + std::to_string(metrics) + "}\n";
	Svc A{ "alpha", Local(qgt::FreePort()), a_.addr_str() };
	Start(head, { A });
	if (IsSkipped())
		return;
	ASSERT_TRUE(q_->WaitForErr("privileges: running as user nobody", 5000)) << q_->Describe();
	EXPECT_NE(q_->err().find("capabilities: control thread none, workers none"), std::string::npos)
		<< q_->Describe();
	EXPECT_NE(q_->err().find("metrics listen 0.0.0.0:" + std::to_string(metrics) +
				 " is not a loopback address"),
		  std::string::npos)
		<< q_->Describe();

	size_t n = ExpectDropped(q_->pid(), uid, gid, 0);
	EXPECT_GE(n, 1 + (cores_.find(',') != std::string::npos ? 2u : 1u))
		<< "the control thread and workers";

	// The admin socket: made by root before the drop, with the configured group and mode.
	struct stat st;
	ASSERT_EQ(stat(sock_.c_str(), &st), 0);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(st.st_uid, 0u);
	EXPECT_EQ(st.st_gid, admin_gid);
	EXPECT_EQ(st.st_mode & 07777, 0660u);

	// Traffic still relays.
	EXPECT_TRUE(Answers(A.listen, 1)) << q_->Describe();
	EXPECT_TRUE(a_.served(1));

	// qgatectl reload: a new service on a high port binds and answers.
	Svc B{ "beta", Local(qgt::FreePort()), b_.addr_str() };
	Write(head, { A, B });
	Result r = Ctl({ "reload" });
	ASSERT_EQ(r.status, 0) << r.err << q_->Describe();
	EXPECT_NE(r.out.find("services: 1 added"), std::string::npos) << r.out;
	EXPECT_TRUE(Answers(B.listen, 2)) << q_->Describe();
	EXPECT_TRUE(b_.served(2));

	// SIGHUP too, as systemd's ExecReload does.
	Svc C{ "gamma", Local(qgt::FreePort()), b_.addr_str() };
	Write(head, { A, B, C });
	ASSERT_TRUE(q_->Signal(SIGHUP));
	ASSERT_TRUE(q_->WaitForErr("services: 1 added, 0 removed, 0 changed", 5000)) << q_->Describe();
	EXPECT_TRUE(Answers(C.listen, 3)) << q_->Describe();
	EXPECT_TRUE(Answers(A.listen, 4)) << q_->Describe();

	// Nothing regained anything meanwhile, in any thread.
	ExpectDropped(q_->pid(), uid, gid, 0);
	EXPECT_TRUE(q_->Stop(5000)) << q_->Describe();
	EXPECT_EQ(q_->code(), 0) << q_->Describe();
}

TEST_P(Hardening, PrivilegedPortKeepsBindServiceOnTheControlThreadOnly)
{
	if (!Root())
		GTEST_SKIP()
			<< "needs root and the accounts nobody/nogroup: qgate switches from root to nobody";
	if (qgt::ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start").find("1024") != 0)
		GTEST_SKIP() << "net.ipv4.ip_unprivileged_port_start is not 1024 here";
	uint16_t low1 = FreeLowPort(900), low2 = low1 ? FreeLowPort(low1 + 1) : 0;
	if (!low1 || !low2)
		GTEST_SKIP() << "no two free UDP ports below 1024 on 127.0.0.1";
	const struct passwd *pw = getpwnam("nobody");
	Svc A{ "alpha", Local(low1), a_.addr_str() };
	Start("user: nobody\n", { A });
	if (IsSkipped())
		return;
	ASSERT_TRUE(q_->WaitForErr("privileges: running as user nobody", 5000)) << q_->Describe();
	EXPECT_NE(q_->err().find("capabilities: control thread cap_net_bind_service, workers none"),
		  std::string::npos)
		<< q_->Describe();
	ExpectDropped(q_->pid(), pw->pw_uid, pw->pw_gid, kBindService);
	EXPECT_TRUE(Answers(A.listen, 1)) << q_->Describe();

	// The control thread binds reloaded services: a second privileged port works.
	Svc B{ "beta", Local(low2), b_.addr_str() };
	Write("user: nobody\n", { A, B });
	Result r = Ctl({ "reload" });
	ASSERT_EQ(r.status, 0) << r.err << q_->Describe();
	EXPECT_TRUE(Answers(B.listen, 2)) << q_->Describe();
	ExpectDropped(q_->pid(), pw->pw_uid, pw->pw_gid, kBindService);
}

TEST_P(Hardening, ReloadOntoAPrivilegedPortWithoutTheCapabilityIsRefused)
{
	if (!Root())
		GTEST_SKIP()
			<< "needs root and the accounts nobody/nogroup: qgate switches from root to nobody";
	if (qgt::ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start").find("1024") != 0)
		GTEST_SKIP() << "net.ipv4.ip_unprivileged_port_start is not 1024 here";
	uint16_t low = FreeLowPort(900);
	if (!low)
		GTEST_SKIP() << "no free UDP port below 1024 on 127.0.0.1";
	Svc A{ "alpha", Local(qgt::FreePort()), a_.addr_str() };
	Start("user: nobody\n", { A });
	if (IsSkipped())
		return;
	Svc B{ "beta", Local(low), b_.addr_str() };
	Write("user: nobody\n", { A, B });
	Result r = Ctl({ "reload" });
	EXPECT_EQ(r.status, 1) << r.out;
	EXPECT_NE(r.err.find("service beta: cannot listen on " + B.listen + ": Permission denied"),
		  std::string::npos)
		<< r.err;
	EXPECT_NE(r.err.find("qgate runs as user nobody and keeps CAP_NET_BIND_SERVICE only when a service "
			     "listened below port 1024 at start"),
		  std::string::npos)
		<< r.err;
	EXPECT_TRUE(Answers(A.listen, 1)) << "the refused reload changed the running configuration";
}

// ---- systemd notifications ----

// The notify socket systemd would own: a datagram socket in the test's directory.
class NotifySocket
{
      public:
	explicit NotifySocket(const std::string &path) : path_(path)
	{
		sockaddr_un sun{};
		fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
		if (fd_ < 0 || bind(fd_, (sockaddr *)&sun, sizeof(sun)) < 0) {
			close(fd_);
			fd_ = -1;
		}
		chmod(path.c_str(), 0777); // systemd's is writable by anyone (its sender check is by pid)
	}
	~NotifySocket()
	{
		if (fd_ >= 0)
			close(fd_);
	}
	bool ok() const
	{
		return fd_ >= 0;
	}
	// The next message within timeout_ms, "" when none.
	std::string Next(int timeout_ms)
	{
		pollfd p{ fd_, POLLIN, 0 };
		char buf[4096];
		if (poll(&p, 1, timeout_ms) <= 0)
			return "";
		ssize_t n = recv(fd_, buf, sizeof(buf), 0);
		return n > 0 ? std::string(buf, (size_t)n) : "";
	}
	// Messages until one starts with prefix (within timeout_ms); those before it go to *seen.
	bool WaitFor(const std::string &prefix, int timeout_ms, std::vector<std::string> *seen = nullptr)
	{
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		while (std::chrono::steady_clock::now() < end) {
			int left = (int)std::chrono::duration_cast<std::chrono::milliseconds>(
					   end - std::chrono::steady_clock::now())
					   .count();
			std::string m = Next(left > 0 ? left : 0);
			if (m.compare(0, prefix.size(), prefix) == 0)
				return true;
			if (seen && !m.empty())
				seen->push_back(m);
		}
		return false;
	}
	// Messages that start with prefix within ms.
	int Count(const std::string &prefix, int ms)
	{
		int n = 0;
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
		while (std::chrono::steady_clock::now() < end) {
			int left = (int)std::chrono::duration_cast<std::chrono::milliseconds>(
					   end - std::chrono::steady_clock::now())
					   .count();
			std::string m = Next(left > 0 ? left : 0);
			n += !m.empty() && m.compare(0, prefix.size(), prefix) == 0;
		}
		return n;
	}

      private:
	std::string path_;
	int fd_ = -1;
};

// Stop one thread of another process (ptrace works per thread: the rest runs on).
class ThreadStop
{
      public:
	explicit ThreadStop(pid_t tid) : tid_(tid)
	{
		int status;
		if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0)
			return;
		seized_ = true;
		if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0 &&
		    waitpid(tid, &status, __WALL) == tid)
			stopped_ = true;
	}
	~ThreadStop()
	{
		if (seized_)
			ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
	}
	bool stopped() const
	{
		return stopped_;
	}

      private:
	pid_t tid_;
	bool seized_ = false, stopped_ = false;
};

TEST_P(Hardening, SystemdReadyReloadStoppingAndWatchdog)
{
	if (!qg_notify_supported())
		GTEST_SKIP() << "built without libsystemd";
	NotifySocket ns(dir_.File("notify.sock"));
	ASSERT_TRUE(ns.ok());
	qgt::ChildOptions opts;
	// 600 ms: pinged every 300 ms; WATCHDOG_PID is left unset so the child takes it as its own.
	opts.env = { "NOTIFY_SOCKET=" + dir_.File("notify.sock"), "WATCHDOG_USEC=600000" };
	// As root the drop comes first: the notifications must still get through as nobody.
	std::string head = Root() ? "user: nobody\n" : "";
	Svc A{ "alpha", Local(qgt::FreePort()), a_.addr_str() };
	Start(head, { A }, opts);
	if (IsSkipped())
		return;

	std::vector<std::string> before;
	ASSERT_TRUE(ns.WaitFor("READY=1", 5000, &before)) << q_->Describe();
	EXPECT_TRUE(before.empty()) << "before READY=1: " << before[0];
	EXPECT_NE(q_->err().find("systemd watchdog: 600 ms, petted every 300 ms"), std::string::npos)
		<< q_->Describe();
	int pings = ns.Count("WATCHDOG=1", 1300);
	EXPECT_GE(pings, 3) << q_->Describe();
	EXPECT_LE(pings, 5) << q_->Describe();

	// Reload: RELOADING=1 then READY=1.
	ASSERT_TRUE(q_->Signal(SIGHUP));
	std::vector<std::string> seen;
	ASSERT_TRUE(ns.WaitFor("RELOADING=1", 5000)) << q_->Describe();
	ASSERT_TRUE(ns.WaitFor("READY=1", 5000, &seen)) << q_->Describe();
	EXPECT_TRUE(Answers(A.listen, 1)) << q_->Describe();

	// A stuck worker: the pings stop until it runs again.
	pid_t worker = 0;
	for (const auto &t : Threads(q_->pid()))
		if (t.tid != q_->pid())
			worker = (pid_t)t.tid;
	ASSERT_NE(worker, 0);
	{
		ThreadStop stop(worker);
		if (!stop.stopped())
			GTEST_SKIP() << "cannot ptrace a thread of qgate here: " << strerror(errno);
		ASSERT_TRUE(q_->WaitForErr("made no progress", 3000)) << q_->Describe();
		ns.Count("", 100); // what was in flight when it stalled
		EXPECT_EQ(ns.Count("WATCHDOG=1", 1200), 0)
			<< "pinged while a worker was stopped" << q_->Describe();
	}
	ASSERT_TRUE(q_->WaitForErr("every worker progresses again", 3000)) << q_->Describe();
	EXPECT_GE(ns.Count("WATCHDOG=1", 700), 1) << q_->Describe();

	// Stop: STOPPING=1 first.
	ASSERT_TRUE(q_->Signal(SIGTERM));
	EXPECT_TRUE(ns.WaitFor("STOPPING=1", 5000)) << q_->Describe();
	EXPECT_TRUE(q_->Wait(15000)) << q_->Describe();
	EXPECT_EQ(q_->code(), 0) << q_->Describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, Hardening, ::testing::Values("io_uring", "recvmmsg"),
			 [](const ::testing::TestParamInfo<const char *> &i) {
				 return std::string(i.param);
			 });

} // namespace
