// SPDX-License-Identifier: BSD-3-Clause
// The Bluetooth bridge core without Bluetooth: the AF_UNIX SOCK_SEQPACKET
// stand-in plays the devices (same message semantics as L2CAP), a test
// "worker" uses the ring API, and the clock is injected so reconnect
// back-off is checked at exact times.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "qgate/bridge.h"
#include "qgate/config.h"

namespace
{

const uint8_t kDevA[6] = { 0xAA, 0, 0, 0, 0, 1 };
const uint8_t kDevB[6] = { 0xAA, 0, 0, 0, 0, 2 };
const uint8_t kDevC[6] = { 0xAA, 0, 0, 0, 0, 3 };

// max_datagram 100; service 1 ("sensors") has the bridge and a Bluetooth backend.
const char kYaml[] = "dataplane:\n"
		     "  max_datagram: 100\n"
		     "services:\n"
		     "  - name: web\n"
		     "    listen: 127.0.0.1:4433\n"
		     "    backends:\n"
		     "      - address: 127.0.0.1:5001\n"
		     "  - name: sensors\n"
		     "    listen: 127.0.0.1:4434\n"
		     "    backends:\n"
		     "      - address: 127.0.0.1:5002\n"
		     "      - paths: [127.0.0.1:5003, bt://00:11:22:33:44:55/0x1001]\n"
		     "bridges:\n"
		     "  - type: bluetooth\n"
		     "    psm: 0x1001\n"
		     "    service: sensors\n"
		     "    max_links: 2\n"
		     "    allow: [\"AA:00:00:00:00:01\", \"AA:00:00:00:00:02\"]\n";

uint64_t fake_clock(void *ctx)
{
	return *static_cast<uint64_t *>(ctx);
}

struct Bridge : ::testing::Test {
	qg_config *cfg = nullptr;
	qg_bridge *b = nullptr;
	qg_bridge_rings *r = nullptr;
	qg_bridge_unix u{};
	qg_bridge_opts o{};
	uint64_t now = 1000;
	unsigned workers = 2;

	void SetUp() override
	{
		qg_config_errors errs;

		ASSERT_EQ(qg_config_load_string("t.yaml", kYaml, sizeof(kYaml) - 1, &cfg, &errs), 0);
		snprintf(u.prefix, sizeof(u.prefix), "qgtest-%d-%s", (int)getpid(),
			 ::testing::UnitTest::GetInstance()->current_test_info()->name());
		u.omtu = 50;
		o.ops = &qg_bridge_unix_ops;
		o.ops_ctx = &u;
		o.clock_ms = fake_clock;
		o.clock_ctx = &now;
		o.backoff_min_ms = 100;
		o.backoff_max_ms = 1000;
	}
	void Create()
	{
		o.n_workers = workers;
		ASSERT_EQ(qg_bridge_create(cfg, &o, &b), 0);
		r = qg_bridge_get_rings(b);
		ASSERT_NE(r, nullptr);
		ASSERT_EQ(qg_bridge_ring_workers(r), workers);
		ASSERT_EQ(qg_bridge_ring_max_datagram(r), 100u);
		Poll(); // opens the listener
	}
	void TearDown() override
	{
		qg_bridge_destroy(b);
		qg_config_free(cfg);
	}
	void Poll(int n = 3)
	{
		for (int i = 0; i < n; i++)
			ASSERT_EQ(qg_bridge_poll(b, 5), 0);
	}
	qg_bridge_stats Stats(unsigned idx = 0)
	{
		qg_bridge_stats s;

		EXPECT_EQ(qg_bridge_get_stats(b, idx, &s), 0);
		return s;
	}
	// A device connected to the bridge's listener, with a receive timeout.
	int Dial(const uint8_t dev[6])
	{
		int fd = qg_bridge_unix_dial(&u, &cfg->bridges[0], dev);
		timeval tv = { 1, 0 };

		EXPECT_GE(fd, 0) << strerror(-fd);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		Poll();
		return fd;
	}
	// The next message for any worker: its worker index, or -1 when none.
	int Pop(qg_bridge_msg *m, std::string *payload)
	{
		char buf[256];

		for (unsigned w = 0; w < workers; w++) {
			int n = qg_bridge_ring_pop(r, w, m, buf, sizeof(buf));

			if (n >= 0) {
				payload->assign(buf, (size_t)n);
				return (int)w;
			}
			EXPECT_EQ(n, -EAGAIN);
		}
		return -1;
	}
	// True when fd has nothing to read right now (and is not closed).
	static bool Quiet(int fd)
	{
		pollfd p = { fd, POLLIN, 0 };

		return poll(&p, 1, 20) == 0;
	}
	// The peer closed fd: reads end.
	static bool Closed(int fd)
	{
		char c;

		return recv(fd, &c, 1, 0) == 0;
	}
};

TEST_F(Bridge, ClientDatagramsReachWorkerAndRepliesReachLink)
{
	Create();
	int a = Dial(kDevA);
	int bfd = Dial(kDevB);
	ASSERT_EQ(Stats().links_up, 2u);
	ASSERT_EQ(send(a, "hello", 5, 0), 5);
	ASSERT_EQ(send(bfd, "from-b", 6, 0), 6);
	Poll();

	qg_bridge_msg ma, mb;
	std::string pa, pb;
	int wa = Pop(&ma, &pa), wb = Pop(&mb, &pb);
	ASSERT_GE(wa, 0);
	ASSERT_GE(wb, 0);
	if (pa != "hello") {
		std::swap(ma, mb);
		std::swap(pa, pb);
		std::swap(wa, wb);
	}
	EXPECT_EQ(pa, "hello");
	EXPECT_EQ(pb, "from-b");
	EXPECT_EQ(ma.kind, QG_BRIDGE_MSG_CLIENT);
	EXPECT_EQ(ma.svc, 1u) << "the bridge's service is 'sensors'";
	EXPECT_EQ(ma.flags, 0);
	EXPECT_NE(ma.link, mb.link);
	EXPECT_NE(wa, wb) << "consecutive links spread over the workers";
	qg_bridge_msg none;
	std::string nothing;
	EXPECT_EQ(Pop(&none, &nothing), -1);

	// A second datagram of a link goes to the same worker: a link is one flow.
	ASSERT_EQ(send(a, "again", 5, 0), 5);
	Poll();
	qg_bridge_msg m2;
	std::string p2;
	EXPECT_EQ(Pop(&m2, &p2), wa);
	EXPECT_EQ(m2.link, ma.link);

	// Replies pushed by a worker reach the right link only.
	qg_bridge_msg rep = ma;
	rep.len = 5;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)wa, &rep, "world"), 0);
	rep = mb;
	rep.len = 3;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)wb, &rep, "bbb"), 0);
	Poll();
	char buf[64];
	ASSERT_EQ(recv(a, buf, sizeof(buf), 0), 5);
	EXPECT_EQ(std::string(buf, 5), "world");
	ASSERT_EQ(recv(bfd, buf, sizeof(buf), 0), 3);
	EXPECT_EQ(std::string(buf, 3), "bbb");
	EXPECT_TRUE(Quiet(a));
	qg_bridge_stats s = Stats();
	EXPECT_EQ(s.rx_sdus, 3u);
	EXPECT_EQ(s.rx_bytes, 16u);
	EXPECT_EQ(s.tx_sdus, 2u);
	EXPECT_EQ(s.tx_bytes, 8u);
	EXPECT_EQ(s.links_active, 2u);

	// The device leaves: its worker hears of it, and a late reply to it is stale.
	close(a);
	Poll();
	qg_bridge_msg bye;
	std::string bp;
	ASSERT_EQ(Pop(&bye, &bp), wa);
	EXPECT_EQ(bye.flags, QG_BRIDGE_MSG_F_CLOSE);
	EXPECT_EQ(bye.link, ma.link);
	EXPECT_EQ(bye.len, 0u);
	rep = ma;
	rep.len = 4;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)wa, &rep, "late"), 0);
	Poll();
	s = Stats();
	EXPECT_EQ(s.stale, 1u);
	EXPECT_EQ(s.links_down, 1u);
	EXPECT_EQ(s.links_active, 1u);

	// A worker can close a client's link.
	rep = mb;
	rep.len = 0;
	rep.flags = QG_BRIDGE_MSG_F_CLOSE;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)wb, &rep, nullptr), 0);
	Poll();
	EXPECT_TRUE(Closed(bfd));
	EXPECT_EQ(Pop(&none, &nothing), -1) << "the worker asked: no close notice comes back";
	close(bfd);
}

TEST_F(Bridge, OversizeDroppedAndCountedBothWays)
{
	Create();
	int a = Dial(kDevA);
	std::string big(150, 'x'), max(100, 'm');

	// SDU over max_datagram: dropped, counted, never truncated into the ring.
	ASSERT_EQ(send(a, big.data(), big.size(), 0), (ssize_t)big.size());
	ASSERT_EQ(send(a, max.data(), max.size(), 0), (ssize_t)max.size());
	Poll();
	qg_bridge_msg m;
	std::string p;
	int w = Pop(&m, &p);
	ASSERT_GE(w, 0);
	EXPECT_EQ(p, max);
	EXPECT_EQ(Pop(&m, &p), -1);
	EXPECT_EQ(Stats().rx_oversize, 1u);

	// A datagram over the peer's MTU (50): dropped, counted; at the MTU: sent whole.
	qg_bridge_msg rep = m;
	std::string d60(60, 'r'), d50(50, 's');
	rep.len = 60;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)w, &rep, d60.data()), 0);
	rep.len = 50;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)w, &rep, d50.data()), 0);
	Poll();
	char buf[200];
	ASSERT_EQ(recv(a, buf, sizeof(buf), 0), 50);
	EXPECT_EQ(std::string(buf, 50), d50);
	EXPECT_TRUE(Quiet(a));
	EXPECT_EQ(Stats().tx_oversize, 1u);
	EXPECT_EQ(Stats().tx_sdus, 1u);

	// A worker's datagram over max_datagram never enters the ring.
	std::string d101(101, 'z');
	rep.len = 101;
	EXPECT_EQ(qg_bridge_ring_push(r, (unsigned)w, &rep, d101.data()), -EMSGSIZE);
	qg_bridge_ring_stats tw, tb;
	qg_bridge_ring_get_stats(r, (unsigned)w, &tw, &tb);
	EXPECT_EQ(tb.oversize, 1u);
	EXPECT_EQ(tb.pushed, 2u);
	// A worker buffer too small for a message: dropped and counted, not cut.
	ASSERT_EQ(send(a, max.data(), max.size(), 0), (ssize_t)max.size());
	Poll();
	char small[10];
	EXPECT_EQ(qg_bridge_ring_pop(r, (unsigned)w, &m, small, sizeof(small)), -EMSGSIZE);
	qg_bridge_ring_get_stats(r, (unsigned)w, &tw, &tb);
	EXPECT_EQ(tw.truncated, 1u);
	close(a);
}

TEST_F(Bridge, MaxLinksAndAllowListEnforced)
{
	Create();
	int c = Dial(kDevC);
	EXPECT_TRUE(Closed(c)) << "a device outside allow is closed at once";
	close(c);
	EXPECT_EQ(Stats().rejected_allow, 1u);

	int a = Dial(kDevA);
	int b2 = Dial(kDevB);
	int a2 = Dial(kDevA);
	EXPECT_TRUE(Closed(a2)) << "max_links is 2";
	close(a2);
	qg_bridge_stats s = Stats();
	EXPECT_EQ(s.rejected_full, 1u);
	EXPECT_EQ(s.links_up, 2u);
	EXPECT_EQ(s.links_active, 2u);

	// A link that leaves makes room.
	close(b2);
	Poll();
	int a3 = Dial(kDevA);
	ASSERT_EQ(send(a3, "hi", 2, 0), 2);
	Poll();
	qg_bridge_msg m;
	std::string p;
	bool got = false;
	while (Pop(&m, &p) >= 0)
		got |= p == "hi";
	EXPECT_TRUE(got);
	EXPECT_EQ(Stats().links_up, 3u);
	EXPECT_EQ(Stats().rejected_full, 1u);
	close(a);
	close(a3);
}

TEST_F(Bridge, FullRingDropsAreCounted)
{
	workers = 1;
	o.ring_slots = 4;
	Create();
	int a = Dial(kDevA);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(send(a, "d", 1, 0), 1);
	Poll();
	// Nobody popped: 4 slots filled, the other 6 dropped and counted.
	EXPECT_EQ(Stats().rx_sdus, 4u);
	EXPECT_EQ(Stats().ring_full, 6u);
	qg_bridge_msg m;
	std::string p;
	int n = 0;
	while (Pop(&m, &p) >= 0)
		n++;
	EXPECT_EQ(n, 4);
	// The slots are back: traffic flows again.
	ASSERT_EQ(send(a, "e", 1, 0), 1);
	Poll();
	ASSERT_EQ(Pop(&m, &p), 0);
	EXPECT_EQ(p, "e");

	// Worker -> bridge: the 5th push without a bridge turn finds no slot.
	qg_bridge_msg rep = m;
	rep.len = 1;
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(qg_bridge_ring_push(r, 0, &rep, "r"), 0);
	EXPECT_EQ(qg_bridge_ring_push(r, 0, &rep, "r"), -ENOBUFS);
	qg_bridge_ring_stats tw, tb;
	qg_bridge_ring_get_stats(r, 0, &tw, &tb);
	EXPECT_EQ(tb.full, 1u);
	EXPECT_EQ(tb.pushed, 4u);
	Poll();
	char buf[8];
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(recv(a, buf, sizeof(buf), 0), 1);
	close(a);
}

TEST_F(Bridge, BackendFlowsOverOutboundLinks)
{
	const qg_config_path *path = &cfg->services[1].backends[1].paths[1];
	int srv = qg_bridge_unix_serve(&u, path);
	ASSERT_GE(srv, 0);
	Create();
	Poll();
	ASSERT_EQ(qg_bridge_path_count(b), 1u);
	qg_bridge_path_info pi;
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.svc, 1u);
	EXPECT_EQ(pi.backend, 1u);
	EXPECT_EQ(pi.path, 1u);
	EXPECT_EQ(pi.connected, 1u) << "one spare link is kept ready";
	int dev = accept(srv, nullptr, nullptr);
	ASSERT_GE(dev, 0);

	// A flow's first datagram binds the ready link; the reply comes back with the flow's tag.
	qg_bridge_msg m = {};
	m.kind = QG_BRIDGE_MSG_BACKEND;
	m.svc = 1;
	m.backend = 1;
	m.path = 1;
	m.link = 7;
	m.len = 4;
	ASSERT_EQ(qg_bridge_ring_push(r, 1, &m, "ping"), 0);
	Poll();
	char buf[64];
	ASSERT_EQ(recv(dev, buf, sizeof(buf), 0), 4);
	EXPECT_EQ(std::string(buf, 4), "ping");
	ASSERT_EQ(send(dev, "pong", 4, 0), 4);
	Poll();
	qg_bridge_msg rep;
	std::string p;
	ASSERT_EQ(Pop(&rep, &p), 1) << "replies go to the worker of the flow";
	EXPECT_EQ(p, "pong");
	EXPECT_EQ(rep.kind, QG_BRIDGE_MSG_BACKEND);
	EXPECT_EQ(rep.link, 7u);
	EXPECT_EQ(rep.svc, 1u);
	EXPECT_EQ(rep.backend, 1u);
	EXPECT_EQ(rep.path, 1u);
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.bound, 1u);
	EXPECT_EQ(pi.connected, 2u) << "the bound link was replaced by a new spare";
	int dev2 = accept(srv, nullptr, nullptr);
	ASSERT_GE(dev2, 0);

	// Over the peer's MTU (50): dropped and counted on the outbound block.
	std::string d60(60, 'x');
	m.len = 60;
	ASSERT_EQ(qg_bridge_ring_push(r, 1, &m, d60.data()), 0);
	// Not a Bluetooth path of that backend: stale.
	m.path = 0;
	m.len = 1;
	ASSERT_EQ(qg_bridge_ring_push(r, 1, &m, "x"), 0);
	Poll();
	qg_bridge_stats out = Stats(cfg->n_bridges);
	EXPECT_EQ(out.tx_oversize, 1u);
	EXPECT_EQ(out.stale, 1u);
	EXPECT_EQ(out.tx_sdus, 1u);
	EXPECT_EQ(out.rx_sdus, 1u);
	EXPECT_TRUE(Quiet(dev));

	// The flow ends: the link returns to the pool, late replies on it are dropped.
	m.path = 1;
	m.len = 0;
	m.flags = QG_BRIDGE_MSG_F_CLOSE;
	ASSERT_EQ(qg_bridge_ring_push(r, 1, &m, nullptr), 0);
	Poll();
	ASSERT_EQ(send(dev, "late", 4, 0), 4);
	Poll();
	EXPECT_EQ(Pop(&rep, &p), -1);
	EXPECT_EQ(Stats(cfg->n_bridges).stale, 2u);
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.bound, 0u);
	close(dev);
	close(dev2);
	close(srv);
}

TEST_F(Bridge, OutboundLinkReconnectsWithBackoff)
{
	Create();
	const qg_config_path *path = &cfg->services[1].backends[1].paths[1];
	qg_bridge_path_info pi;

	// No device yet: the first attempt fails at once, the next waits 2 x 100 ms.
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.failures, 1u);
	EXPECT_EQ(pi.next_try_ms, now + 200);
	EXPECT_EQ(Stats(cfg->n_bridges).connect_failures, 1u);

	int srv = qg_bridge_unix_serve(&u, path);
	ASSERT_GE(srv, 0);
	now += 199;
	Poll();
	EXPECT_EQ(Stats(cfg->n_bridges).links_up, 0u) << "not before the back-off ends";
	now += 1;
	Poll();
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.connected, 1u);
	EXPECT_EQ(pi.failures, 0u);
	int dev = accept(srv, nullptr, nullptr);
	ASSERT_GE(dev, 0);

	// Bind a flow, then the device goes away entirely.
	qg_bridge_msg m = {};
	m.kind = QG_BRIDGE_MSG_BACKEND;
	m.svc = 1;
	m.backend = 1;
	m.path = 1;
	m.link = 42;
	m.len = 2;
	ASSERT_EQ(qg_bridge_ring_push(r, 0, &m, "hi"), 0);
	Poll();
	char buf[8];
	ASSERT_EQ(recv(dev, buf, sizeof(buf), 0), 2);
	close(dev);
	close(srv); // the spare link, never accepted, is reset too
	uint64_t lost = now;
	Poll();
	qg_bridge_msg bye;
	std::string p;
	ASSERT_EQ(Pop(&bye, &p), 0);
	EXPECT_EQ(bye.flags, QG_BRIDGE_MSG_F_CLOSE);
	EXPECT_EQ(bye.link, 42u) << "the flow learns its backend link is gone";
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.connected, 0u);
	EXPECT_EQ(pi.bound, 0u);
	EXPECT_EQ(pi.next_try_ms, lost + 100) << "a lost link is retried after the shortest back-off";

	// Retries double: 100, then +200, +400, ... up to the 1000 ms ceiling.
	uint64_t fails0 = Stats(cfg->n_bridges).connect_failures;
	now = lost + 99;
	Poll();
	EXPECT_EQ(Stats(cfg->n_bridges).connect_failures, fails0);
	uint64_t expect_at = lost + 100;
	const uint64_t delays[] = { 200, 400, 800, 1000, 1000 };
	for (unsigned i = 0; i < 5; i++) {
		now = expect_at;
		Poll();
		EXPECT_EQ(Stats(cfg->n_bridges).connect_failures, fails0 + i + 1) << "attempt " << i;
		ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
		EXPECT_EQ(pi.failures, i + 1);
		EXPECT_EQ(pi.next_try_ms, expect_at + delays[i]);
		now = expect_at + delays[i] - 1;
		Poll();
		EXPECT_EQ(Stats(cfg->n_bridges).connect_failures, fails0 + i + 1) << "nothing before";
		expect_at += delays[i];
	}
	// The device is back: the next attempt connects and resets the back-off.
	srv = qg_bridge_unix_serve(&u, path);
	ASSERT_GE(srv, 0);
	now = expect_at;
	Poll();
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_EQ(pi.connected, 1u);
	EXPECT_EQ(pi.failures, 0u);
	EXPECT_EQ(pi.next_try_ms, 0u);
	close(srv);
}

// Datagram i of a busy-link test: its number in the first bytes, sizes and fill varying.
std::string Numbered(unsigned i, size_t base = 40)
{
	std::string d(base + i % 7, (char)('a' + i % 26));

	memcpy(&d[0], &i, sizeof(i));
	return d;
}

// Read datagrams at fd, polling the bridge while fd is empty, until want arrived (or no progress).
// Each must be Numbered(first + k, base), whole and in order. Returns how many arrived.
unsigned ReadNumbered(Bridge *t, int fd, unsigned first, unsigned want, size_t base)
{
	unsigned got = 0;

	for (int idle = 0; got < want && idle < 200;) {
		char buf[256];
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			EXPECT_EQ(errno, EAGAIN);
			t->Poll(1);
			idle++;
			continue;
		}
		EXPECT_EQ(std::string(buf, (size_t)n), Numbered(first + got, base)) << "datagram " << got;
		got++;
		idle = 0;
	}
	return got;
}

// A link whose socket is full (the device does not read): datagrams wait in the link's send queue,
// then all arrive, in order and whole, once the device reads; beyond the queue's bound they are dropped.
TEST_F(Bridge, BusyLinkQueuesDatagramsInOrder)
{
	workers = 1;
	u.sndbuf = 1; // the kernel's minimum: a few datagrams fill the link
	o.sendq_sdus = 8;
	o.sendq_bytes = 400; // more than 8 datagrams need: the count binds, the bytes wrap around
	Create();
	int a = Dial(kDevA);
	ASSERT_EQ(send(a, "hi", 2, 0), 2);
	Poll();
	qg_bridge_msg m;
	std::string p;
	ASSERT_EQ(Pop(&m, &p), 0);

	// Replies until the socket refuses one: that one waits in the queue.
	unsigned pushed = 0;
	auto push = [&](unsigned n) {
		for (unsigned i = 0; i < n; i++) {
			std::string d = Numbered(pushed++);
			m.len = (uint32_t)d.size();
			ASSERT_EQ(qg_bridge_ring_push(r, 0, &m, d.data()), 0);
		}
	};
	while (Stats().tx_queued == 0 && pushed < 2000) {
		push(1);
		Poll(1);
	}
	ASSERT_EQ(Stats().tx_queued, 1u) << "the link never filled up";
	unsigned in_socket = pushed - 1;
	EXPECT_EQ(Stats().tx_sdus, in_socket);

	// Everything after it waits too (order), up to 8; beyond, dropped and counted.
	push(7);
	Poll(1);
	EXPECT_EQ(Stats().tx_queued, 8u);
	EXPECT_EQ(Stats().tx_queue_full, 0u);
	push(3);
	Poll(1);
	EXPECT_EQ(Stats().tx_queued, 8u);
	EXPECT_EQ(Stats().tx_queue_full, 3u);
	EXPECT_EQ(Stats().tx_sdus, in_socket) << "nothing goes while the socket is full";

	// The device reads: every datagram up to the bound arrives, in order, byte for byte.
	unsigned want = in_socket + 8;
	EXPECT_EQ(ReadNumbered(this, a, 0, want, 40), want);
	Poll();
	EXPECT_TRUE(Quiet(a)) << "the dropped ones never come";
	qg_bridge_stats s = Stats();
	EXPECT_EQ(s.tx_sdus, want);
	EXPECT_EQ(s.tx_dropped, 0u);
	EXPECT_EQ(s.links_active, 1u);

	// A long stream to a slow reader: the queue fills, drains part way, wraps around its end. What
	// arrives is whole and in order, and every datagram arrives or is counted dropped.
	unsigned first = pushed, got = 0, next = first;
	uint64_t full0 = Stats().tx_queue_full;
	auto take = [&]() {
		char buf[256];
		ssize_t n = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
		unsigned num;

		if (n < (ssize_t)sizeof(num))
			return false;
		memcpy(&num, buf, sizeof(num));
		EXPECT_GE(num, next) << "out of order";
		EXPECT_EQ(std::string(buf, (size_t)n), Numbered(num));
		next = num + 1;
		got++;
		return true;
	};
	for (int round = 0; round < 100; round++) {
		push(3);
		Poll(1);
		take();
		take();
	}
	for (int idle = 0; idle < 50;) {
		if (take()) {
			idle = 0;
		} else {
			Poll(1);
			idle++;
		}
	}
	EXPECT_EQ(got + (Stats().tx_queue_full - full0), pushed - first);
	EXPECT_GT(got, 200u);
	EXPECT_EQ(Stats().tx_sdus, want + got);

	// The link takes traffic at once again; filled anew, then the device leaves: what waited is dropped.
	first = pushed;
	push(1);
	Poll(1);
	EXPECT_EQ(ReadNumbered(this, a, first, 1, 40), 1u);
	uint64_t queued = Stats().tx_queued;
	while (Stats().tx_queued == queued && pushed < 4000) {
		push(1);
		Poll(1);
	}
	push(2);
	Poll(1);
	ASSERT_EQ(Stats().tx_queued, queued + 3);
	close(a);
	Poll();
	s = Stats();
	EXPECT_EQ(s.tx_dropped, 3u) << "a closed link's queue is counted dropped";
	EXPECT_EQ(s.links_active, 0u);
}

// An outbound link: the byte bound, and a flow's queue that does not outlive the flow.
TEST_F(Bridge, OutboundQueueBytesBoundAndFlowEnd)
{
	const qg_config_path *path = &cfg->services[1].backends[1].paths[1];
	int srv = qg_bridge_unix_serve(&u, path);
	ASSERT_GE(srv, 0);
	workers = 1;
	u.sndbuf = 1;
	o.sendq_sdus = 64;
	o.sendq_bytes = 10; // raised to max_datagram (100): the largest datagram must fit
	Create();
	Poll();
	int dev = accept(srv, nullptr, nullptr);
	ASSERT_GE(dev, 0);
	const unsigned out = cfg->n_bridges;

	qg_bridge_msg m = {};
	m.kind = QG_BRIDGE_MSG_BACKEND;
	m.svc = 1;
	m.backend = 1;
	m.path = 1;
	m.link = 9;
	unsigned pushed = 0;
	auto push = [&](size_t len) {
		std::string d = Numbered(pushed++, len);
		d.resize(len);
		m.len = (uint32_t)len;
		ASSERT_EQ(qg_bridge_ring_push(r, 0, &m, d.data()), 0);
	};
	while (Stats(out).tx_queued == 0 && pushed < 2000) {
		push(30);
		Poll(1);
	}
	ASSERT_EQ(Stats(out).tx_queued, 1u) << "the link never filled up";
	unsigned in_socket = pushed - 1;
	// 100 bytes: three of 30 wait, the fourth does not fit; 10 bytes still do.
	push(30);
	push(30);
	push(30);
	push(10);
	Poll(1);
	qg_bridge_stats s = Stats(out);
	EXPECT_EQ(s.tx_queued, 4u);
	EXPECT_EQ(s.tx_queue_full, 1u);

	// The flow ends with 4 waiting: not for the link's next flow, dropped and counted.
	m.flags = QG_BRIDGE_MSG_F_CLOSE;
	m.len = 0;
	ASSERT_EQ(qg_bridge_ring_push(r, 0, &m, nullptr), 0);
	Poll();
	EXPECT_EQ(Stats(out).tx_dropped, 4u);
	unsigned got = 0;
	char buf[128];
	for (ssize_t n; (n = recv(dev, buf, sizeof(buf), MSG_DONTWAIT)) > 0; got++) {
		std::string want = Numbered(got, 30);
		want.resize(30);
		EXPECT_EQ(std::string(buf, (size_t)n), want);
		Poll(1);
	}
	EXPECT_EQ(got, in_socket);
	EXPECT_EQ(Stats(out).tx_sdus, in_socket);
	close(dev);
	close(srv);
}

// The real thread: a worker that never calls the bridge still gets its datagrams, replies wake it.
TEST_F(Bridge, ThreadMovesTrafficAndStops)
{
	o.clock_ms = nullptr;
	Create();
	ASSERT_EQ(qg_bridge_start(b), 0);
	int a = qg_bridge_unix_dial(&u, &cfg->bridges[0], kDevA);
	ASSERT_GE(a, 0);
	timeval tv = { 2, 0 };
	setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ASSERT_EQ(send(a, "t1", 2, 0), 2);
	qg_bridge_msg m;
	std::string p;
	int w = -1;
	for (int i = 0; i < 200 && w < 0; i++) {
		w = Pop(&m, &p);
		if (w < 0)
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	ASSERT_GE(w, 0);
	EXPECT_EQ(p, "t1");
	// The worker's doorbell rang.
	uint64_t v = 0;
	EXPECT_EQ(read(qg_bridge_ring_worker_fd(r, (unsigned)w), &v, sizeof(v)), (ssize_t)sizeof(v));
	EXPECT_GE(v, 1u);
	// A reply while the bridge sleeps in epoll_wait (1 s) must wake it.
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	auto t0 = std::chrono::steady_clock::now();
	m.len = 2;
	ASSERT_EQ(qg_bridge_ring_push(r, (unsigned)w, &m, "t2"), 0);
	char buf[8];
	ASSERT_EQ(recv(a, buf, sizeof(buf), 0), 2);
	EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
	EXPECT_EQ(std::string(buf, 2), "t2");
	qg_bridge_stop(b);
	qg_bridge_stop(b);
	close(a);
}

// The bridge copies what it needs: a reload may free the configuration it was made from.
TEST_F(Bridge, ConfigMayBeFreedAfterCreate)
{
	qg_config_bridge br = cfg->bridges[0];
	Create();
	qg_config_free(cfg);
	cfg = nullptr;
	int a = qg_bridge_unix_dial(&u, &br, kDevA);
	ASSERT_GE(a, 0);
	ASSERT_EQ(send(a, "x", 1, 0), 1);
	Poll();
	qg_bridge_msg m;
	std::string p;
	ASSERT_GE(Pop(&m, &p), 0);
	EXPECT_EQ(m.svc, 1u);
	EXPECT_EQ(qg_bridge_path_count(b), 1u);
	close(a);
}

TEST(BridgeApi, ArgumentsAndConfigured)
{
	qg_bridge *b = nullptr;
	qg_bridge_msg m = {};
	char buf[4];

	EXPECT_EQ(qg_bridge_create(nullptr, nullptr, &b), -EINVAL);
	EXPECT_EQ(qg_bridge_ring_pop(nullptr, 0, &m, buf, sizeof(buf)), -EINVAL);
	EXPECT_EQ(qg_bridge_ring_push(nullptr, 0, &m, buf), -EINVAL);
	EXPECT_EQ(qg_bridge_get_rings(nullptr), nullptr);
	EXPECT_EQ(qg_bridge_configured(nullptr), 0);
	qg_bridge_destroy(nullptr);
	// This machine kind has no Bluetooth in its kernel; either answer is valid, but it must be one of
	// them.
	int rc = qg_bridge_probe();
	EXPECT_TRUE(rc == 0 || rc < 0);
}

} // namespace

// Probes of a Bluetooth path: over a probe link of their own, results for the control thread.
const char kProbeYaml[] =
	"dataplane:\n"
	"  max_datagram: 100\n"
	"services:\n"
	"  - name: sensors\n"
	"    listen: 127.0.0.1:4434\n"
	"    health: {probe: udp, send: ping, expect: pong, interval: 100ms, timeout: 50ms}\n"
	"    backends:\n"
	"      - paths: [127.0.0.1:5003, bt://00:11:22:33:44:55/0x1001]\n";

struct BridgeProbe : Bridge {
	void SetUp() override
	{
		Bridge::SetUp();
		qg_config_free(cfg);
		cfg = nullptr;
		qg_config_errors errs;
		ASSERT_EQ(qg_config_load_string("p.yaml", kProbeYaml, sizeof(kProbeYaml) - 1, &cfg, &errs),
			  0);
		workers = 1;
	}
	// Advance the clock in 10 ms steps until a result is queued (at most 1 s).
	bool Result(qg_bridge_probe_result *res, int dev = -1, const char *reply = nullptr)
	{
		for (int i = 0; i < 100; i++) {
			if (dev >= 0 && reply) {
				char buf[64];
				if (recv(dev, buf, sizeof(buf), MSG_DONTWAIT) == 4) {
					EXPECT_EQ(send(dev, reply, strlen(reply), 0), (ssize_t)strlen(reply));
				}
			}
			if (qg_bridge_probe_pop(b, res) == 0)
				return true;
			now += 10;
			Poll(1);
		}
		return false;
	}
};

TEST_F(BridgeProbe, ProbesOverALinkOfTheirOwn)
{
	const qg_config_path *path = &cfg->services[0].backends[0].paths[1];
	qg_bridge_probe_result res;
	qg_bridge_path_info pi;

	Create();
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_TRUE(pi.probed);
	EXPECT_EQ(std::string(pi.service), "sensors");
	EXPECT_EQ(pi.key.psm, 0x1001);

	// No device: no probe link, the probe fails at once.
	ASSERT_TRUE(Result(&res));
	EXPECT_EQ(res.path, 0u);
	EXPECT_EQ(res.ok, 0);
	EXPECT_EQ(res.why, QG_BRIDGE_PROBE_NO_LINK);
	pollfd pf = { qg_bridge_probe_fd(b), POLLIN, 0 };
	EXPECT_EQ(poll(&pf, 1, 0), 1) << "the control thread's doorbell rang";

	// The device appears: the probe link connects (after its back-off) and probes travel on it only.
	int srv = qg_bridge_unix_serve(&u, path);
	ASSERT_GE(srv, 0);
	int probe_fd = -1;
	std::vector<int> links;
	for (int i = 0; i < 200 && probe_fd < 0; i++) {
		now += 10;
		Poll(1);
		pollfd ap = { srv, POLLIN, 0 };
		int fd = poll(&ap, 1, 0) == 1 ? accept4(srv, nullptr, nullptr, SOCK_NONBLOCK) : -1;
		if (fd >= 0)
			links.push_back(fd);
		for (int l : links) {
			char buf[16];
			ssize_t n = recv(l, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 4) {
				EXPECT_EQ(std::string(buf, 4), "ping");
				probe_fd = l;
				ASSERT_EQ(send(l, "pong!", 5, 0), 5);
			}
		}
	}
	ASSERT_GE(probe_fd, 0) << "no probe reached the device";
	EXPECT_EQ(links.size(), 2u) << "the pool's spare link and the probe link";
	while (qg_bridge_probe_pop(b, &res) == 0 && res.why != QG_BRIDGE_PROBE_OK)
		;
	if (res.why != QG_BRIDGE_PROBE_OK) {
		ASSERT_TRUE(Result(&res));
	}
	EXPECT_EQ(res.ok, 1);
	EXPECT_EQ(res.why, QG_BRIDGE_PROBE_OK);
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	EXPECT_TRUE(pi.probe_link_up);
	EXPECT_EQ(pi.bound, 0u) << "the probe link is not the pool's";

	// A wrong answer, then none at all.
	ASSERT_TRUE(Result(&res, probe_fd, "nope"));
	EXPECT_EQ(res.why, QG_BRIDGE_PROBE_WRONG_REPLY);
	ASSERT_TRUE(Result(&res));
	EXPECT_EQ(res.why, QG_BRIDGE_PROBE_TIMEOUT);
	ASSERT_TRUE(Result(&res, probe_fd, "pong"));
	EXPECT_EQ(res.why, QG_BRIDGE_PROBE_OK);
	uint64_t probes = 0, failures = 0;
	ASSERT_EQ(qg_bridge_get_path_info(b, 0, &pi), 0);
	probes = pi.probes;
	failures = pi.probe_failures;
	EXPECT_GE(probes, 4u);
	EXPECT_GE(failures, 3u);

	// The device closes the probe link: a probe in flight fails, the link comes back.
	for (int l : links)
		close(l);
	close(srv);
	ASSERT_TRUE(Result(&res));
	EXPECT_EQ(res.ok, 0);
	EXPECT_TRUE(res.why == QG_BRIDGE_PROBE_LINK_LOST || res.why == QG_BRIDGE_PROBE_NO_LINK ||
		    res.why == QG_BRIDGE_PROBE_SEND_FAILED)
		<< qg_bridge_probe_why_name((qg_bridge_probe_why)res.why);
}
