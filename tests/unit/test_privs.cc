// SPDX-License-Identifier: BSD-3-Clause
// The privilege drop's pieces: which capability the control thread keeps,
// capability names, the systemd watchdog's decision, and, as root, the drop
// itself in a forked child with threads (every thread's uid and capability
// sets afterwards, root unreachable, privileged ports refused where no
// capability was kept).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

extern "C" {
#include "qgate/config.h"
#include "qgate/notify.h"
#include "qgate/privs.h"
}

namespace
{

struct TwoServices {
	qg_config_service svc[2]{};
	qg_config cfg{};
	TwoServices(uint16_t a, uint16_t b)
	{
		svc[0].listen.family = AF_INET;
		svc[0].listen.port = htons(a);
		svc[1].listen.family = AF_INET6;
		svc[1].listen.port = htons(b);
		cfg.services = svc;
		cfg.n_services = 2;
	}
	TwoServices(const TwoServices &) = delete;
	TwoServices &operator=(const TwoServices &) = delete;
};

uint64_t Keep(uint16_t a, uint16_t b, unsigned start)
{
	TwoServices t(a, b);
	return qg_privs_keep(&t.cfg, start);
}

TEST(Privs, KeepsBindServiceOnlyForPrivilegedServicePorts)
{
	const uint64_t bind = QG_PRIVS_CAP(CAP_NET_BIND_SERVICE);

	EXPECT_EQ(Keep(4433, 5353, 1024), 0u);
	EXPECT_EQ(Keep(4433, 53, 1024), bind) << "any service counts";
	EXPECT_EQ(Keep(1024, 1025, 1024), 0u) << "1024 is unprivileged";
	EXPECT_EQ(Keep(1023, 5000, 1024), bind);
	// net.ipv4.ip_unprivileged_port_start moves the line (0: every port is free to bind).
	EXPECT_EQ(Keep(53, 443, 0), 0u);
	EXPECT_EQ(Keep(4433, 5353, 5000), bind);
	unsigned start = qg_privs_unpriv_port_start();
	EXPECT_LE(start, 65536u);
}

TEST(Privs, CapabilityNames)
{
	char buf[256];

	qg_privs_caps_text(0, buf, sizeof(buf));
	EXPECT_STREQ(buf, "none");
	qg_privs_caps_text(QG_PRIVS_CAP(CAP_NET_BIND_SERVICE), buf, sizeof(buf));
	EXPECT_STREQ(buf, "cap_net_bind_service");
	qg_privs_caps_text(QG_PRIVS_CAP(CAP_CHOWN) | QG_PRIVS_CAP(CAP_NET_ADMIN) | QG_PRIVS_CAP(63), buf,
			   sizeof(buf));
	EXPECT_STREQ(buf, "cap_chown,cap_net_admin,cap_63");
	qg_privs_caps_text(~0ULL, buf, 16); // truncated, still terminated
	EXPECT_LT(strlen(buf), 16u);
}

TEST(Watchdog, OffWithoutTimeout)
{
	qg_watchdog w;
	uint64_t beats[2] = { 1, 2 };

	qg_watchdog_init(&w, 0, beats, 2, 0);
	EXPECT_EQ(qg_watchdog_check(&w, beats, 2, 1000000, nullptr), 0);
}

TEST(Watchdog, PetsAtHalfTheTimeoutWhileEveryWorkerProgresses)
{
	qg_watchdog w;
	uint64_t beats[3] = { 10, 20, 30 };
	unsigned stalled = 99;

	qg_watchdog_init(&w, 2000000 /* 2 s */, beats, 3, 1000);
	EXPECT_EQ(w.period_ms, 1000u);
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 1999, nullptr), 0) << "not due yet";
	// Due, but nothing moved since start: no ping.
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 2000, &stalled), -1);
	EXPECT_EQ(stalled, 0u);
	EXPECT_EQ(w.stalled, 1);
	beats[0]++, beats[1]++, beats[2]++;
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 2001, nullptr), 1);
	EXPECT_EQ(w.stalled, 0);
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 2500, nullptr), 0);
	// One worker stuck: refused, and asked again at every call until it moves.
	beats[0]++, beats[2]++;
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 3001, &stalled), -1);
	EXPECT_EQ(stalled, 1u);
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 3050, &stalled), -1);
	beats[1]++;
	EXPECT_EQ(qg_watchdog_check(&w, beats, 3, 3100, nullptr), 1);
	EXPECT_EQ(w.next_ms, 4100u);
	// A different worker count starts over (nothing to compare).
	uint64_t two[2] = { 0, 0 };
	EXPECT_EQ(qg_watchdog_check(&w, two, 2, 4100, nullptr), 1);
	// Tiny timeouts still give a period.
	qg_watchdog_init(&w, 1000, beats, 3, 0);
	EXPECT_EQ(w.period_ms, 1u);
}

// ---- the drop itself, in a child: it cannot be undone ----

// Bind a UDP socket to 127.0.0.1:port; 0 or -errno.
int BindUdp(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
	sockaddr_in sin{};

	if (fd < 0)
		return -errno;
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (sockaddr *)&sin, sizeof(sin)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

// A privileged port nobody holds now, or 0.
uint16_t FreeLowPort()
{
	for (uint16_t p = 900; p < 1000; p++)
		if (BindUdp(p) == 0)
			return p;
	return 0;
}

// Exit codes of the child: 0 = every check held.
enum ChildFail {
	PREPARE = 10,
	DROP,
	CHECK,
	THREAD_ROOT,
	THREAD_BIND,
	MAIN_BIND,
	MAIN_ROOT
};

// Threads exist before the drop, like qgate's workers. keep: what the calling thread keeps.
int DropInChild(uint32_t uid, uint32_t gid, const char *name, uint64_t keep, uint16_t low_port)
{
	std::atomic<int> phase{ 0 }, thread_fail{ 0 };
	std::vector<std::thread> threads;
	qg_config_run_as ra{};
	char msg[512];

	if (qg_privs_prepare(keep) != 0)
		return PREPARE;
	for (int i = 0; i < 3; i++)
		threads.emplace_back([&] {
			while (phase.load() == 0)
				usleep(1000);
			// Raw system call: this thread only, as a compromised worker would try.
			if (syscall(SYS_setresuid, 0, 0, 0) == 0)
				thread_fail = THREAD_ROOT;
			else if (low_port && BindUdp(low_port) != -EACCES)
				thread_fail = THREAD_BIND;
		});
	ra.enabled = 1;
	ra.uid = uid;
	ra.gid = gid;
	snprintf(ra.user, sizeof(ra.user), "%s", name);
	if (qg_privs_drop(&ra, keep, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "drop: %s\n", msg);
		return DROP;
	}
	if (qg_privs_check_threads(uid, gid, keep, msg, sizeof(msg)) != 4) {
		fprintf(stderr, "check: %s\n", msg);
		return CHECK;
	}
	phase = 1;
	for (auto &t : threads)
		t.join();
	if (thread_fail)
		return thread_fail;
	if (low_port && (BindUdp(low_port) == 0) != ((keep & QG_PRIVS_CAP(CAP_NET_BIND_SERVICE)) != 0))
		return MAIN_BIND;
	if (syscall(SYS_setresuid, 0, 0, 0) == 0)
		return MAIN_ROOT;
	return 0;
}

int RunChild(uint64_t keep)
{
	const struct passwd *pw = getpwnam("nobody");
	uint16_t low = FreeLowPort();
	pid_t pid;
	int status = 0;

	if (!pw)
		return -1;
	pid = fork();
	if (pid == 0)
		_exit(DropInChild(pw->pw_uid, pw->pw_gid, "nobody", keep, low));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(PrivsDrop, EveryThreadBecomesTheUserWithNoCapability)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root (the drop switches from root to nobody)";
	EXPECT_EQ(RunChild(0), 0) << "see enum ChildFail";
}

TEST(PrivsDrop, OnlyTheCallingThreadKeepsBindService)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root (the drop switches from root to nobody)";
	EXPECT_EQ(RunChild(QG_PRIVS_CAP(CAP_NET_BIND_SERVICE)), 0) << "see enum ChildFail";
}

TEST(PrivsDrop, NotRootIsRefused)
{
	if (geteuid() == 0)
		GTEST_SKIP() << "runs as root: the refusal is for unprivileged starts";
	qg_config_run_as ra{};
	char msg[256];

	ra.enabled = 1;
	ra.uid = getuid() + 1;
	ra.gid = getgid() + 1;
	EXPECT_EQ(qg_privs_drop(&ra, 0, msg, sizeof(msg)), -EPERM) << msg;
}

} // namespace
