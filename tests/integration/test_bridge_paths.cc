// SPDX-License-Identifier: BSD-3-Clause
// A multi-transport backend switching paths at run time, end to end through
// the real qgate and qgatectl: the backend has a UDP path (a UDP echo) and a
// Bluetooth path (an echo device on the bridge's AF_UNIX SOCK_SEQPACKET
// stand-in of L2CAP, QGATE_TEST_BRIDGE_UNIX). Traffic flows over UDP; the
// UDP echo stops, the probes fail, the scorer fails over and the client's
// datagrams continue over the Bluetooth path; the UDP echo comes back and,
// after the hold time, so does the traffic. Every payload is compared byte
// for byte; the switch events, qgatectl backends (text and JSON) and the
// metrics must show it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

extern "C" {
#include "qgate/bridge.h"
#include "qgate/config.h"
}

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif
#ifndef QGATECTL_BIN
#error "QGATECTL_BIN (path of the qgatectl executable) must be defined by the build"
#endif

namespace
{

using qgt::FreeTcpPort;
using qgt::HttpGet;
using qgt::Result;

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

bool IsData(const uint8_t *p, size_t n)
{
	return n >= 4 && memcmp(p, "DATA", 4) == 0;
}

// A UDP echo on a fixed port that can be stopped and started again (the backend's UDP path).
class UdpEcho
{
      public:
	explicit UdpEcho(uint16_t port) : port_(port)
	{
	}
	~UdpEcho()
	{
		Stop();
	}
	bool Start()
	{
		fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sockaddr_in sin{};
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port_);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd_, (sockaddr *)&sin, sizeof(sin)) != 0) {
			close(fd_);
			fd_ = -1;
			return false;
		}
		stop_ = false;
		thread_ = std::thread([this] { Run(); });
		return true;
	}
	// Closed: datagrams to the port get ICMP port unreachable, the UDP path's probes fail.
	void Stop()
	{
		if (fd_ < 0)
			return;
		stop_ = true;
		thread_.join();
		close(fd_);
		fd_ = -1;
	}
	uint64_t data() const
	{
		return data_.load();
	}

      private:
	void Run()
	{
		uint8_t buf[2048];
		while (!stop_) {
			pollfd p{ fd_, POLLIN, 0 };
			if (poll(&p, 1, 10) <= 0)
				continue;
			sockaddr_in from{};
			socklen_t len = sizeof(from);
			ssize_t n = recvfrom(fd_, buf, sizeof(buf), MSG_DONTWAIT, (sockaddr *)&from, &len);
			if (n < 0)
				continue;
			if (IsData(buf, (size_t)n))
				data_++;
			sendto(fd_, buf, (size_t)n, 0, (sockaddr *)&from, len);
		}
	}
	uint16_t port_;
	int fd_ = -1;
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> data_{ 0 };
	std::thread thread_;
};

// The Bluetooth device of the backend's bt:// path, on the stand-in: echoes every message on every link.
class BtEcho
{
      public:
	explicit BtEcho(int lfd) : lfd_(lfd), thread_([this] { Run(); })
	{
	}
	~BtEcho()
	{
		stop_ = true;
		thread_.join();
		for (int fd : links_)
			close(fd);
		close(lfd_);
	}
	uint64_t data() const
	{
		return data_.load();
	}
	uint64_t probes() const
	{
		return probes_.load();
	}

      private:
	void Run()
	{
		std::vector<uint8_t> buf(65536);
		while (!stop_) {
			std::vector<pollfd> p;
			p.push_back({ lfd_, POLLIN, 0 });
			for (int fd : links_)
				p.push_back({ fd, POLLIN, 0 });
			if (poll(p.data(), p.size(), 10) <= 0)
				continue;
			if (p[0].revents & POLLIN) {
				int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
				if (fd >= 0)
					links_.push_back(fd);
			}
			for (size_t i = 1; i < p.size(); i++) {
				if (!(p[i].revents & (POLLIN | POLLHUP)))
					continue;
				int fd = p[i].fd;
				ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
				if (n > 0) {
					if (IsData(buf.data(), (size_t)n))
						data_++;
					else
						probes_++;
					(void)send(fd, buf.data(), (size_t)n, MSG_NOSIGNAL);
				} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
					close(fd);
					links_.erase(std::find(links_.begin(), links_.end(), fd));
				}
			}
		}
	}
	int lfd_;
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> data_{ 0 }, probes_{ 0 };
	std::vector<int> links_;
	std::thread thread_;
};

const char kBtPath[] = "bt://00:11:22:33:44:55/0x1001";

class BridgePaths : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok());
		snprintf(u_.prefix, sizeof(u_.prefix), "qgpaths-%d", (int)getpid());
		sock_ = dir_.File("admin.sock");
		metrics_port_ = FreeTcpPort();
		echo_port_ = qgt::FreePort();
		listen_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		udp_path_ = "127.0.0.1:" + std::to_string(echo_port_);
		std::string yaml =
			"metrics: {listen: 127.0.0.1:" + std::to_string(metrics_port_) +
			"}\n"
			"admin: {socket: " +
			sock_ +
			", mode: 0600}\n"
			"dataplane: {backend: recvmmsg, cores: [" +
			std::to_string(qgt::FirstAllowedCpu()) +
			"]}\n"
			"services:\n"
			"  - name: sensors\n"
			"    listen: " +
			listen_ +
			"\n"
			"    idle_timeout: 60s\n"
			"    health: {probe: udp, send: ping, expect: ping, interval: 100ms, timeout: 80ms,\n"
			"             rise: 2, fall: 2, path_hold: 700ms}\n"
			"    backends:\n"
			"      - paths: [" +
			udp_path_ + ", " + kBtPath + "]\n";
		cfg_path_ = dir_.Write("qgate.yaml", yaml);
		qg_config_errors errs;
		memset(&errs, 0, sizeof(errs));
		ASSERT_EQ(qg_config_load_string("t.yaml", yaml.c_str(), yaml.size(), &cfg_, &errs), 0)
			<< yaml;
		ASSERT_EQ(cfg_->services[0].backends[0].n_paths, 2u);
		int lfd = qg_bridge_unix_serve(&u_, &cfg_->services[0].backends[0].paths[1]);
		ASSERT_GE(lfd, 0) << strerror(-lfd);
		bt_.reset(new BtEcho(lfd));
		udp_.reset(new UdpEcho(echo_port_));
		ASSERT_TRUE(udp_->Start());
	}
	void TearDown() override
	{
		if (q_)
			q_->Stop(5000);
		qg_config_free(cfg_);
	}
	void Start()
	{
		qgt::ChildOptions o;
		o.env.push_back(std::string("QGATE_TEST_BRIDGE_UNIX=") + u_.prefix);
		q_.reset(new qgt::Child(dir_, "qgate", qgt::Cmd(QGATE_BIN, { "-c", cfg_path_ }), o));
		ASSERT_TRUE(q_->started()) << q_->spawn_error();
		bool up = WaitFor([this] { return q_->Exited() || Ctl({ "status" }).status == 0; }, 10000);
		ASSERT_TRUE(up && !q_->Exited()) << "qgate did not come up" << q_->Describe();
	}
	Result Ctl(std::vector<std::string> args)
	{
		args.insert(args.begin(), { "-s", sock_ });
		return qgt::Run(qgt::Cmd(QGATECTL_BIN, args), 10000);
	}
	// The JSON object of path p in `backends --json`, "" when absent.
	std::string PathJson(const std::string &p)
	{
		std::string out = Ctl({ "backends", "--json" }).out;
		size_t at = out.find("{\"path\":\"" + p + "\"");
		if (at == std::string::npos)
			return "";
		return out.substr(at, out.find('}', at) - at + 1);
	}
	bool Active(const std::string &p)
	{
		return PathJson(p).find("\"active\":true") != std::string::npos;
	}
	// Round trip of one payload, compared byte for byte (a late echo of an earlier one is skipped).
	bool Echo(uint32_t seq)
	{
		char payload[64];
		int n = snprintf(payload, sizeof(payload), "DATA-%08u-%s", seq, "multi-path payload");
		if (!client_.Send(qgt::Addr(listen_), payload, (size_t)n))
			return false;
		for (int i = 0; i < 4; i++) {
			char buf[256];
			ssize_t got = client_.Recv(buf, sizeof(buf), 300);
			if (got < 0)
				return false;
			if (got == n && memcmp(buf, payload, (size_t)n) == 0)
				return true;
		}
		return false;
	}
	// Send until one payload comes back intact (the path may be switching), then count exact echoes.
	unsigned Burst(uint32_t *seq, unsigned n)
	{
		unsigned ok = 0;
		for (unsigned i = 0; i < n; i++)
			ok += Echo((*seq)++);
		return ok;
	}

	qgt::TempDir dir_{ "qgate-paths" };
	qg_bridge_unix u_{};
	qg_config *cfg_ = nullptr;
	std::string sock_, cfg_path_, listen_, udp_path_;
	uint16_t metrics_port_ = 0, echo_port_ = 0;
	std::unique_ptr<UdpEcho> udp_;
	std::unique_ptr<BtEcho> bt_;
	std::unique_ptr<qgt::Child> q_;
	qgt::Client client_;
};

TEST_F(BridgePaths, FailsOverToBluetoothAndBack)
{
	uint32_t seq = 0;

	Start();
	// Both paths are probed: UDP by the checker, Bluetooth by the bridge over its probe link.
	ASSERT_TRUE(WaitFor([this] { return bt_->probes() >= 3; }, 10000)) << q_->Describe();
	ASSERT_TRUE(Active(udp_path_)) << Ctl({ "backends", "--json" }).out;
	// The backend's health follows its udp path's probes (rise 2).
	ASSERT_TRUE(WaitFor(
		[this] {
			return Ctl({ "backends", "--json" }).out.find("\"health\":\"healthy\"") !=
			       std::string::npos;
		},
		10000))
		<< Ctl({ "backends", "--json" }).out;

	// 1. Over UDP: every payload comes back intact, none crosses the Bluetooth device.
	EXPECT_EQ(Burst(&seq, 20), 20u);
	EXPECT_GE(udp_->data(), 20u);
	EXPECT_EQ(bt_->data(), 0u);

	// 2. The UDP echo stops: its probes fail (fall 2), the backend fails over to the Bluetooth path,
	// and the client's flow moves there at its next datagram.
	udp_->Stop();
	uint64_t udp_before = udp_->data();
	ASSERT_TRUE(WaitFor([this] { return Active(kBtPath); }, 10000))
		<< Ctl({ "backends", "--json" }).out << q_->Describe();
	unsigned ok = 0;
	ASSERT_TRUE(WaitFor([&] { return Echo(seq++); }, 5000)) << q_->Describe();
	ok = Burst(&seq, 20);
	EXPECT_EQ(ok, 20u);
	EXPECT_GE(bt_->data(), 20u);
	EXPECT_EQ(udp_->data(), udp_before);

	std::string ev = Ctl({ "events" }).out;
	EXPECT_NE(ev.find("path_switch"), std::string::npos) << ev;
	EXPECT_NE(ev.find("udp -> bt_bredr (failover)"), std::string::npos) << ev;
	std::string text = Ctl({ "backends" }).out;
	EXPECT_NE(text.find(std::string("path ") + kBtPath), std::string::npos) << text;
	EXPECT_NE(text.find("unhealthy standby"), std::string::npos) << text;
	EXPECT_NE(text.find("healthy   active"), std::string::npos) << text;
	EXPECT_NE(PathJson(udp_path_).find("\"healthy\":false"), std::string::npos) << PathJson(udp_path_);
	std::string m = HttpGet(metrics_port_, "/metrics");
	EXPECT_NE(m.find("qgate_backend_path_active{service=\"sensors\",backend=\"" + udp_path_ +
			 "\",path=\"" + std::string(kBtPath) + "\"} 1"),
		  std::string::npos)
		<< m;
	EXPECT_NE(m.find("qgate_backend_path_active{service=\"sensors\",backend=\"" + udp_path_ +
			 "\",path=\"" + udp_path_ + "\"} 0"),
		  std::string::npos)
		<< m;
	EXPECT_NE(m.find("qgate_backend_path_switches_total{service=\"sensors\",backend=\"" + udp_path_ +
			 "\"} 1"),
		  std::string::npos)
		<< m;
	EXPECT_NE(m.find("# TYPE qgate_backend_path_score gauge"), std::string::npos) << m;
	// The backend itself stayed up: its health follows the path its traffic uses.
	EXPECT_NE(m.find("qgate_backend_up{service=\"sensors\",backend=\"" + udp_path_ + "\"} 1"),
		  std::string::npos)
		<< m;

	// 3. The UDP echo is back: after rise and the hold time the traffic returns to UDP.
	ASSERT_TRUE(udp_->Start());
	ASSERT_TRUE(WaitFor([this] { return Active(udp_path_); }, 10000))
		<< Ctl({ "backends", "--json" }).out << q_->Describe();
	uint64_t bt_before = bt_->data(), udp_at = udp_->data();
	ASSERT_TRUE(WaitFor([&] { return Echo(seq++); }, 5000)) << q_->Describe();
	EXPECT_EQ(Burst(&seq, 20), 20u);
	EXPECT_GE(udp_->data(), udp_at + 20);
	EXPECT_LE(bt_->data(), bt_before + 1); // at most a datagram sent before the flow moved
	ev = Ctl({ "events" }).out;
	EXPECT_NE(ev.find("bt_bredr -> udp (recovered)"), std::string::npos) << ev;
	m = HttpGet(metrics_port_, "/metrics");
	EXPECT_NE(m.find("qgate_backend_path_switches_total{service=\"sensors\",backend=\"" + udp_path_ +
			 "\"} 2"),
		  std::string::npos)
		<< m;

	ASSERT_TRUE(q_->Stop(5000)) << q_->Describe();
	EXPECT_EQ(q_->code(), 0) << q_->Describe();
	EXPECT_NE(q_->err().find("qgate: total flows_path_moved = "), std::string::npos) << q_->err();
	q_.reset();
}

} // namespace
