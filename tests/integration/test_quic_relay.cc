// SPDX-License-Identifier: BSD-3-Clause
// QUIC routing end to end on loopback, in process: real sockets, fake QUIC
// backends that answer like servers do (long-header replies carrying their
// own SCID, short-header replies), the dataplane started from YAML. Every
// test runs on both socket I/O backends.
//
// The fake backend does no cryptography: qgate never reads past the header
// protection, so headers with opaque payloads are enough. Each datagram the
// tests send ends with an 8-byte token that the backend echoes at the end of
// its reply, so a client knows which of its packets a reply answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "integration/udp_peers.h"

extern "C" {
#include "qgate/config.h"
#include "qgate/dataplane.h"
#include "qgate/io.h"
#include "qgate/log.h"
#include "qgate/quic.h"
#include "qgate/quic_lb.h"
}

using qgt::Client;
using qgt::EchoServer;

namespace
{

using Cid = std::vector<uint8_t>;
using Bytes = std::vector<uint8_t>;

const uint32_t kReservedVersion = 0x1a2a3a4a;
const char kLbKeyHex[] = "8f95f09245765f80256934e50c66207f";

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

std::string Hex(const Cid &c)
{
	return Hex(c.data(), c.size());
}

Bytes Unhex(const std::string &s)
{
	Bytes b;
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		b.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
	return b;
}

void PutToken(Bytes *pkt, uint64_t token)
{
	memcpy(pkt->data() + pkt->size() - 8, &token, 8);
}

uint64_t TokenOf(const uint8_t *p, size_t n)
{
	uint64_t t = 0;
	if (n >= 8)
		memcpy(&t, p + n - 8, 8);
	return t;
}

// A long-header packet of exactly size bytes ending with token. v1/v2 Initial
// (first & 0x30 == 0) gets an empty Token field; v1 Initial and Handshake get
// a Length field covering the rest; other versions are opaque after the CIDs.
Bytes LongPkt(uint8_t first, uint32_t version, const Cid &dcid, const Cid &scid, uint64_t token, size_t size)
{
	Bytes p;
	p.push_back(first);
	for (int s = 24; s >= 0; s -= 8)
		p.push_back(static_cast<uint8_t>(version >> s));
	p.push_back(static_cast<uint8_t>(dcid.size()));
	p.insert(p.end(), dcid.begin(), dcid.end());
	p.push_back(static_cast<uint8_t>(scid.size()));
	p.insert(p.end(), scid.begin(), scid.end());
	if (version == QG_QUIC_VERSION_1) {
		if ((first & 0x30) == 0x00)
			p.push_back(0x00); // Token Length 0
		size_t length = size - p.size() - 2;
		p.push_back(static_cast<uint8_t>(0x40 | (length >> 8)));
		p.push_back(static_cast<uint8_t>(length & 0xff));
	}
	EXPECT_GE(size, p.size() + 9) << "packet too small for its header";
	p.resize(size, 0);
	PutToken(&p, token);
	return p;
}

Bytes Initial(const Cid &dcid, const Cid &scid, uint64_t token, size_t size = 1200)
{
	return LongPkt(0xc0, QG_QUIC_VERSION_1, dcid, scid, token, size);
}

Bytes Handshake(const Cid &dcid, const Cid &scid, uint64_t token, size_t size)
{
	return LongPkt(0xe0, QG_QUIC_VERSION_1, dcid, scid, token, size);
}

Bytes ShortPkt(const Cid &dcid, uint64_t token, size_t size = 64)
{
	// Sized first and filled by index: GCC 12 -O3 warns falsely (array-bounds) on insert after push_back.
	Bytes p(std::max(size, 1 + dcid.size() + 8), 0);
	p[0] = 0x40;
	for (size_t i = 0; i < dcid.size(); i++)
		p[1 + i] = dcid[i];
	PutToken(&p, token);
	return p;
}

Cid RandCid(std::mt19937_64 &rng, size_t len = 8)
{
	Cid c(len);
	for (auto &b : c)
		b = static_cast<uint8_t>(rng());
	return c;
}

// A client-chosen Initial DCID whose first octet names no QUIC-LB
// configuration (0b111), so counters of the LB tests do not depend on chance.
Cid ClientDcid(std::mt19937_64 &rng)
{
	Cid c = RandCid(rng, 8);
	c[0] |= 0xe0;
	return c;
}

struct LbParams {
	uint8_t config_id = 0;
	uint8_t sid_len = 1;
	uint8_t nonce_len = 4;
	bool encrypted = false;
};

struct LbConfig {
	qg_quic_lb_config *c = nullptr;
	explicit LbConfig(const LbParams &p)
	{
		Bytes key = Unhex(kLbKeyHex);
		int rc = qg_quic_lb_config_create(p.config_id, p.sid_len, p.nonce_len,
						  p.encrypted ? key.data() : nullptr, &c);
		if (rc) {
			fprintf(stderr, "qg_quic_lb_config_create: %d\n", rc);
			abort();
		}
	}
	~LbConfig()
	{
		qg_quic_lb_config_destroy(c);
	}
	LbConfig(const LbConfig &) = delete;
	LbConfig &operator=(const LbConfig &) = delete;
	Cid Encode(const Bytes &sid, const Bytes &nonce)
	{
		uint8_t out[QG_QUIC_LB_MAX_CID_LEN];
		int n = qg_quic_lb_encode(c, sid.data(), nonce.data(), out, sizeof(out));
		EXPECT_GT(n, 0);
		return n > 0 ? Cid(out, out + n) : Cid();
	}
};

// One datagram a fake backend received.
struct Seen {
	Cid dcid;	  // empty when the backend could not parse it
	std::string from; // source address: qgate's upstream socket
	bool long_hdr;
	uint32_t version;
	size_t len;
};

// A fake QUIC server on loopback. Long headers get a v1 Handshake back
// (DCID = the client's SCID, SCID = a CID of this server: QUIC-LB encoded
// with its server ID when it has one, else 8 random bytes); short headers get
// 0x40 | the client's CID | token.
class QuicServer
{
      public:
	QuicServer(unsigned index, size_t short_dcid_len, const LbParams *lb = nullptr, Bytes server_id = {})
	    : index_(index), short_dcid_len_(short_dcid_len), sid_(std::move(server_id)),
	      rng_(0x9e3779b97f4a7c15ULL * (index + 1))
	{
		if (lb)
			lb_.reset(new LbConfig(*lb));
		qg_addr a = qgt::Addr("127.0.0.1:0");
		sockaddr_storage ss;
		socklen_t len = qg_addr_to_sockaddr(&a, &ss);
		fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&ss), len) < 0) {
			fprintf(stderr, "quic server: cannot bind\n");
			abort();
		}
		int big = 4 << 20;
		setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		len = sizeof(ss);
		getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len);
		qg_addr_from_sockaddr(reinterpret_cast<sockaddr *>(&ss), &addr_);
		thread_ = std::thread([this] { Run(); });
	}
	~QuicServer()
	{
		stop_ = true;
		shutdown(fd_, SHUT_RDWR);
		thread_.join();
		close(fd_);
	}
	QuicServer(const QuicServer &) = delete;
	QuicServer &operator=(const QuicServer &) = delete;

	std::string addr_str() const
	{
		return qgt::Str(addr_);
	}
	std::string sid_hex() const
	{
		return Hex(sid_);
	}
	std::vector<Seen> seen()
	{
		std::lock_guard<std::mutex> g(mu_);
		return seen_;
	}
	size_t datagrams()
	{
		std::lock_guard<std::mutex> g(mu_);
		return seen_.size();
	}
	// Datagrams received with this DCID.
	size_t Saw(const Cid &dcid)
	{
		std::lock_guard<std::mutex> g(mu_);
		size_t n = 0;
		for (const auto &s : seen_)
			n += s.dcid == dcid;
		return n;
	}
	// Source addresses of the datagrams with any of these DCIDs.
	std::set<std::string> SourcesOf(const std::vector<Cid> &dcids)
	{
		std::lock_guard<std::mutex> g(mu_);
		std::set<std::string> out;
		for (const auto &s : seen_)
			for (const auto &d : dcids)
				if (s.dcid == d)
					out.insert(s.from);
		return out;
	}
	// Server CIDs this backend has issued.
	std::set<Cid> issued()
	{
		std::lock_guard<std::mutex> g(mu_);
		return issued_;
	}

      private:
	Cid NewCid()
	{
		for (;;) {
			Cid c;
			if (lb_) {
				Bytes nonce(qg_quic_lb_config_nonce_len(lb_->c), 0);
				uint64_t n = ++nonce_ctr_;
				for (size_t i = 0; i < nonce.size() && i < 8; i++)
					nonce[nonce.size() - 1 - i] = static_cast<uint8_t>(n >> (8 * i));
				c = lb_->Encode(sid_, nonce);
			} else {
				c = RandCid(rng_, 8);
			}
			std::lock_guard<std::mutex> g(mu_);
			if (issued_.insert(c).second)
				return c;
		}
	}

	void Handle(const uint8_t *p, size_t n, const sockaddr_storage &from, socklen_t flen)
	{
		qg_addr fa;
		qg_addr_from_sockaddr(reinterpret_cast<const sockaddr *>(&from), &fa);
		qg_quic_hdr h;
		int rc = qg_quic_parse(p, n, short_dcid_len_, &h);
		Seen s{
			{}, qgt::Str(fa), rc == 0 && h.form == QG_QUIC_FORM_LONG, rc == 0 ? h.version : 0, n
		};
		if (rc == 0)
			s.dcid.assign(h.dcid, h.dcid + h.dcid_len);
		{
			std::lock_guard<std::mutex> g(mu_);
			seen_.push_back(s);
		}
		if (rc != 0)
			return;
		uint64_t token = TokenOf(p, n);
		Bytes r;
		if (h.form == QG_QUIC_FORM_LONG) {
			if (h.type == QG_QUIC_TYPE_VERSION_NEGOTIATION)
				return;
			Cid scid;
			if (client_of_.count(s.dcid)) {
				scid = s.dcid; // the client already uses our CID
			} else if (by_odcid_.count(s.dcid)) {
				scid = by_odcid_[s.dcid]; // a retransmitted Initial: same connection
			} else {
				scid = NewCid();
				by_odcid_[s.dcid] = scid;
			}
			Cid client(h.scid, h.scid + h.scid_len);
			client_of_[scid] = client;
			r = LongPkt(0xe0, QG_QUIC_VERSION_1, client, scid, token,
				    1 + 4 + 1 + client.size() + 1 + scid.size() + 2 + 1 + 8);
		} else {
			auto it = client_of_.find(s.dcid);
			r = ShortPkt(it != client_of_.end() ? it->second : s.dcid, token, 0);
		}
		sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<const sockaddr *>(&from), flen);
	}

	void Run()
	{
		std::vector<uint8_t> buf(65536);
		while (!stop_.load()) {
			pollfd pf = { fd_, POLLIN, 0 };
			if (poll(&pf, 1, 50) <= 0)
				continue;
			sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
					     reinterpret_cast<sockaddr *>(&from), &flen);
			if (n >= 0)
				Handle(buf.data(), static_cast<size_t>(n), from, flen);
		}
	}

	unsigned index_;
	size_t short_dcid_len_;
	Bytes sid_;
	std::unique_ptr<LbConfig> lb_;
	std::mt19937_64 rng_;
	uint64_t nonce_ctr_ = 0;
	int fd_ = -1;
	qg_addr addr_{};
	std::atomic<bool> stop_{ false };
	std::mutex mu_;
	std::vector<Seen> seen_;
	std::set<Cid> issued_;
	std::map<Cid, Cid> by_odcid_;  // client's first DCID -> our CID (thread only)
	std::map<Cid, Cid> client_of_; // our CID -> the client's CID (thread only)
	std::thread thread_;
};

// Send pkt from c and wait for a reply ending with pkt's token; tries sends
// at most. The reply is stored in *reply when given.
bool Exchange(Client &c, const qg_addr &vip, const Bytes &pkt, Bytes *reply = nullptr, int timeout_ms = 1000,
	      int tries = 3)
{
	uint64_t token = TokenOf(pkt.data(), pkt.size());
	std::vector<uint8_t> buf(65536);
	for (int t = 0; t < tries; t++) {
		if (!c.Send(vip, pkt.data(), pkt.size()))
			continue;
		for (;;) {
			ssize_t n = c.Recv(buf.data(), buf.size(), timeout_ms);
			if (n < 0)
				break;
			if (TokenOf(buf.data(), static_cast<size_t>(n)) == token) {
				if (reply)
					reply->assign(buf.begin(), buf.begin() + n);
				return true;
			}
			// A late reply to an earlier packet: keep reading.
		}
	}
	return false;
}

// The server CID of a backend's long-header reply addressed to client CID scid.
Cid ServerCidOf(const Bytes &reply, const Cid &scid)
{
	qg_quic_hdr h;
	EXPECT_EQ(qg_quic_parse(reply.data(), reply.size(), 0, &h), 0);
	EXPECT_EQ(h.form, QG_QUIC_FORM_LONG);
	EXPECT_EQ(Cid(h.dcid, h.dcid + h.dcid_len), scid);
	return Cid(h.scid, h.scid + h.scid_len);
}

struct BackendSpec {
	std::string addr;
	std::string server_id; // hex, empty = none
	int weight = 1;
};

struct ServiceSpec {
	std::string name = "svc";
	std::string listen;
	std::string protocol = "quic";
	std::string policy = "maglev";
	std::string quic; // lines of the quic section, indented by 6
	std::vector<BackendSpec> backends;
};

std::string Yaml(const std::string &io, const std::vector<ServiceSpec> &svcs, const std::string &cores = "[0]")
{
	std::ostringstream y;
	y << "dataplane:\n  backend: " << io << "\n  cores: " << cores << "\n  flows_per_core: 65536\n"
	  << "  upstream_sockets_per_core: 4096\n  rx_buffers: 1024\nservices:\n";
	for (const auto &s : svcs) {
		y << "  - name: " << s.name << "\n    listen: \"" << s.listen
		  << "\"\n    protocol: " << s.protocol << "\n    policy: " << s.policy << "\n";
		if (!s.quic.empty())
			y << "    quic:\n" << s.quic;
		y << "    backends:\n";
		for (const auto &b : s.backends) {
			y << "      - address: \"" << b.addr << "\"\n        weight: " << b.weight << "\n";
			if (!b.server_id.empty())
				y << "        server_id: \"" << b.server_id << "\"\n";
		}
	}
	return y.str();
}

std::string LbYaml(const LbParams &p)
{
	std::ostringstream y;
	y << "      lb:\n        - config_id: " << unsigned(p.config_id)
	  << "\n          server_id_len: " << unsigned(p.sid_len)
	  << "\n          nonce_len: " << unsigned(p.nonce_len) << "\n";
	if (p.encrypted)
		y << "          key: \"" << kLbKeyHex << "\"\n";
	return y.str();
}

// Wait until pred() holds or ms pass.
template <typename P> bool WaitFor(P pred, int ms)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
	while (std::chrono::steady_clock::now() < end) {
		if (pred())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	return pred();
}

// Index of the one backend that saw dcid, or -1 when none or several did.
int WhoSaw(const std::vector<std::unique_ptr<QuicServer>> &bs, const Cid &dcid)
{
	int who = -1;
	for (size_t i = 0; i < bs.size(); i++) {
		if (bs[i]->Saw(dcid) == 0)
			continue;
		if (who >= 0)
			return -1;
		who = static_cast<int>(i);
	}
	return who;
}

std::vector<std::unique_ptr<QuicServer>> Servers(unsigned n, size_t short_dcid_len = 8)
{
	std::vector<std::unique_ptr<QuicServer>> v;
	for (unsigned i = 0; i < n; i++)
		v.emplace_back(new QuicServer(i, short_dcid_len));
	return v;
}

std::vector<BackendSpec> Specs(const std::vector<std::unique_ptr<QuicServer>> &bs)
{
	std::vector<BackendSpec> v;
	for (const auto &b : bs)
		v.push_back({ b->addr_str(), b->sid_hex(), 1 });
	return v;
}

size_t TotalSeen(const std::vector<std::unique_ptr<QuicServer>> &bs)
{
	size_t n = 0;
	for (const auto &b : bs)
		n += b->datagrams();
	return n;
}

class QuicRelay : public ::testing::TestWithParam<std::string>
{
      protected:
	void SetUp() override
	{
		qg_log_set_level(QG_LOG_WARN);
		if (GetParam() == "io_uring") {
			char why[160];
			if (qg_io_uring_ops.probe(why, sizeof(why)) != 0)
				GTEST_SKIP() << "io_uring is not usable on this machine: " << why;
		}
	}
	void TearDown() override
	{
		Stop();
	}
	void Stop()
	{
		if (dp_)
			qg_dataplane_destroy(dp_);
		dp_ = nullptr;
	}

	// Start the dataplane on a YAML text; fails the test on any error.
	void Start(const std::string &yaml)
	{
		qg_config_errors errs;
		memset(&errs, 0, sizeof(errs));
		qg_config *cfg = nullptr;
		int rc = qg_config_load_string("test.yaml", yaml.c_str(), yaml.size(), &cfg, &errs);
		if (rc) {
			char *buf = nullptr;
			size_t len = 0;
			FILE *f = open_memstream(&buf, &len);
			qg_config_errors_print(&errs, f);
			fclose(f);
			std::string msg(buf, len);
			free(buf);
			FAIL() << "config rejected:\n" << msg << yaml;
		}
		rc = qg_dataplane_create(cfg, &dp_);
		qg_config_free(cfg);
		ASSERT_EQ(rc, 0) << "qg_dataplane_create: " << strerror(-rc);
		ASSERT_STREQ(qg_dataplane_io_name(dp_), GetParam().c_str());
		ASSERT_EQ(qg_dataplane_start(dp_), 0);
	}

	uint64_t Ctr(qg_ctr_id id)
	{
		qg_ctr_block c;
		qg_dataplane_counters(dp_, &c);
		return c.v[id];
	}

	std::string Listen()
	{
		return "127.0.0.1:" + std::to_string(qgt::FreePort("127.0.0.1"));
	}

	uint64_t NextToken()
	{
		return ++token_;
	}

	// A new client socket, kept open until the test ends: a port the kernel
	// hands out again would be an address qgate still has a flow for.
	Client &Fresh()
	{
		clients_.emplace_back(new Client());
		return *clients_.back();
	}

	qg_dataplane *dp_ = nullptr;
	std::vector<std::unique_ptr<Client>> clients_;
	uint64_t token_ = 0x7100000000000000ULL;
};

// Retransmitted Initials of one connection attempt may leave through other
// ports (a NAT rebinding during the handshake): they must all reach the
// backend that holds the attempt's state, through one upstream.
TEST_P(QuicRelay, InitialsOfOneAttemptLandTogether)
{
	auto bs = Servers(3);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(1);
	const unsigned attempts = 40;
	std::vector<unsigned> per_backend(bs.size());
	for (unsigned i = 0; i < attempts; i++) {
		SCOPED_TRACE("attempt " + std::to_string(i));
		Cid d = RandCid(rng), c = RandCid(rng);
		Client *socks[3] = { &Fresh(), &Fresh(), &Fresh() };
		if (i % 2 == 0) {
			// One after the other, each answered on the socket that sent it.
			for (auto *k : socks)
				EXPECT_TRUE(Exchange(*k, vip, Initial(d, c, NextToken())));
		} else {
			// Back to back, before any answer.
			for (auto *k : socks) {
				auto p = Initial(d, c, NextToken());
				EXPECT_TRUE(k->Send(vip, p.data(), p.size()));
			}
		}
		size_t total = 0;
		ASSERT_TRUE(WaitFor(
			[&] {
				total = 0;
				for (auto &b : bs)
					total += b->Saw(d);
				return total >= 3;
			},
			3000))
			<< "only " << total << " of 3 Initials reached a backend";
		int who = WhoSaw(bs, d);
		ASSERT_GE(who, 0) << "the Initials of one attempt reached several backends";
		EXPECT_EQ(bs[who]->Saw(d), 3u);
		EXPECT_EQ(bs[who]->SourcesOf({ d }).size(), 1u)
			<< "the backend saw the attempt from several sources";
		per_backend[who]++;
	}
	for (size_t k = 0; k < bs.size(); k++)
		EXPECT_GT(per_backend[k], 0u) << "backend " << k << " got no attempt out of " << attempts;
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), attempts);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_MIGRATED), 2u * attempts);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_MALFORMED), 0u);
}

// NAT rebinding after the handshake: short headers to the server's CID from
// new ports keep their backend and its upstream; replies follow the client.
TEST_P(QuicRelay, NatRebindingKeepsTheBackend)
{
	auto bs = Servers(3);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(2);
	const unsigned conns = 20;
	for (unsigned i = 0; i < conns; i++) {
		SCOPED_TRACE("connection " + std::to_string(i));
		Cid d = RandCid(rng), c = RandCid(rng);
		Client &a = Fresh(), &b = Fresh(), &cc = Fresh();
		Bytes reply;
		ASSERT_TRUE(Exchange(a, vip, Initial(d, c, NextToken()), &reply));
		Cid srv = ServerCidOf(reply, c);
		ASSERT_EQ(srv.size(), 8u);
		int who = WhoSaw(bs, d);
		ASSERT_GE(who, 0);
		EXPECT_EQ(bs[who]->issued().count(srv), 1u)
			<< "the reply's SCID is not the serving backend's";
		// The same connection from a new port, then from another one.
		Bytes r2, r3;
		EXPECT_TRUE(Exchange(b, vip, ShortPkt(srv, NextToken()), &r2)) << "no reply at the new port";
		EXPECT_TRUE(Exchange(cc, vip, ShortPkt(srv, NextToken()), &r3))
			<< "no reply at the third port";
		if (r2.size() > 9) {
			EXPECT_EQ(Cid(r2.begin() + 1, r2.begin() + 9), c)
				<< "the reply is not for this client";
		}
		EXPECT_EQ(WhoSaw(bs, srv), who) << "the migrated connection changed backend";
		EXPECT_EQ(bs[who]->Saw(srv), 2u);
		EXPECT_EQ(bs[who]->SourcesOf({ d, srv }).size(), 1u)
			<< "the backend saw the connection from a new source: its upstream changed";
		// Nothing is left for the old ports.
		char buf[2048];
		EXPECT_LT(a.Recv(buf, sizeof(buf), 0), 0);
		EXPECT_LT(b.Recv(buf, sizeof(buf), 0), 0);
	}
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), conns);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_MIGRATED), 2u * conns);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_CID_ROUTED), 2u * conns);
	EXPECT_GE(Ctr(QG_CTR_QUIC_CID_LEARNED), 2u * conns);
	EXPECT_EQ(Ctr(QG_CTR_DROP_STALE_REPLY), 0u);
	EXPECT_EQ(qg_dataplane_flows_active(dp_, 0), conns);
}

// Two workers: SO_REUSEPORT hands a rebinding client's new ports to either
// of them. The worker that never saw the connection finds its backend in
// what the other announced (no QUIC-LB here: the server's own CIDs).
TEST_P(QuicRelay, NatRebindingAcrossWorkersKeepsTheBackend)
{
	cpu_set_t set;
	std::vector<int> cpus;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus.push_back(c);
	if (cpus.size() < 2)
		GTEST_SKIP() << "two workers need two CPUs; this process may use " << cpus.size();
	auto bs = Servers(3);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(
		GetParam(), { s }, "[" + std::to_string(cpus[0]) + ", " + std::to_string(cpus[1]) + "]")));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(7);
	const unsigned conns = 12, moves = 6;
	for (unsigned i = 0; i < conns; i++) {
		SCOPED_TRACE("connection " + std::to_string(i));
		Cid d = RandCid(rng), c = RandCid(rng);
		Bytes reply;
		ASSERT_TRUE(Exchange(Fresh(), vip, Initial(d, c, NextToken()), &reply));
		Cid srv = ServerCidOf(reply, c);
		int who = WhoSaw(bs, d);
		ASSERT_GE(who, 0);
		for (unsigned k = 0; k < moves; k++) {
			Bytes r;
			EXPECT_TRUE(Exchange(Fresh(), vip, ShortPkt(srv, NextToken()), &r)) << "move " << k;
		}
		EXPECT_EQ(WhoSaw(bs, srv), who) << "a move changed the connection's backend";
		EXPECT_EQ(bs[who]->Saw(srv), moves);
	}
	// 72 moves over two workers: some crossed (else the path under test never ran).
	EXPECT_GT(Ctr(QG_CTR_QUIC_CID_PEER_ROUTED), 0u);
	EXPECT_EQ(Ctr(QG_CTR_ERR_CID_SHARE_FULL), 0u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_NO_FLOW), 0u);
}

// QUIC-LB: a CID names its server, in plaintext or encrypted; any client
// address, any nonce, reaches that server.
TEST_P(QuicRelay, QuicLbRoutesByServerId)
{
	const LbParams cases[] = {
		{ 0, 1, 4, false }, // plaintext, shortest
		{ 0, 3, 5, false }, // plaintext
		{ 0, 2, 6, true },  // encrypted, four-pass Feistel (8 bytes)
		{ 0, 3, 13, true }, // encrypted, one AES block (16 bytes)
	};
	for (const auto &lp : cases) {
		SCOPED_TRACE("server_id_len " + std::to_string(lp.sid_len) + " nonce_len " +
			     std::to_string(lp.nonce_len) + (lp.encrypted ? " encrypted" : " plaintext"));
		const size_t cid_len = 1 + lp.sid_len + lp.nonce_len;
		auto sid_of = [&](unsigned k) {
			Bytes sid(lp.sid_len);
			for (size_t j = 0; j < sid.size(); j++)
				sid[j] =
					static_cast<uint8_t>(j + 1 == sid.size() ? 0x11 * (k + 1) : 0xa0 + j);
			return sid;
		};
		std::vector<std::unique_ptr<QuicServer>> bs;
		for (unsigned k = 0; k < 3; k++)
			bs.emplace_back(new QuicServer(k, cid_len, &lp, sid_of(k)));
		ServiceSpec s;
		s.listen = Listen();
		s.quic = LbYaml(lp);
		s.backends = Specs(bs);
		ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
		qg_addr vip = qgt::Addr(s.listen);
		LbConfig lb(lp);
		uint64_t nonce_ctr = 0;
		auto cid_for = [&](const Bytes &sid) {
			Bytes nonce(lp.nonce_len, 0xcc); // 0xcc..: never a nonce the servers issue
			uint64_t n = ++nonce_ctr;
			for (size_t i = 0; i < 3; i++) // nonce[0] stays 0xcc
				nonce[nonce.size() - 1 - i] = static_cast<uint8_t>(n >> (8 * i));
			return lb.Encode(sid, nonce);
		};

		// Fresh clients, several nonces per server.
		const unsigned per_server = 4;
		uint64_t lb_routed = 0;
		std::vector<Client *> first(bs.size());
		for (unsigned k = 0; k < bs.size(); k++) {
			for (unsigned j = 0; j < per_server; j++) {
				Client *cl = &Fresh();
				Cid cid = cid_for(sid_of(k));
				ASSERT_EQ(cid.size(), cid_len);
				EXPECT_TRUE(Exchange(*cl, vip, ShortPkt(cid, NextToken())));
				EXPECT_EQ(WhoSaw(bs, cid), static_cast<int>(k))
					<< "a CID of server " << k << " (" << Hex(cid) << ") went elsewhere";
				lb_routed++;
				if (j == 0)
					first[k] = cl;
			}
		}
		EXPECT_EQ(Ctr(QG_CTR_QUIC_LB_ROUTED), lb_routed);
		// Active migration: the client moves to a new address with a new CID of the same server.
		for (unsigned k = 0; k < bs.size(); k++) {
			Client &moved = Fresh();
			Cid cid = cid_for(sid_of(k));
			EXPECT_TRUE(Exchange(moved, vip, ShortPkt(cid, NextToken())));
			EXPECT_EQ(WhoSaw(bs, cid), static_cast<int>(k))
				<< "active migration left server " << k;
			lb_routed++;
			// The old path still reaches the same server.
			Cid again = cid_for(sid_of(k));
			EXPECT_TRUE(Exchange(*first[k], vip, ShortPkt(again, NextToken())));
			EXPECT_EQ(WhoSaw(bs, again), static_cast<int>(k));
		}
		EXPECT_EQ(Ctr(QG_CTR_QUIC_LB_ROUTED), lb_routed);

		// Handshake then NAT rebinding: the server's own CID (learned, and decodable) keeps the flow.
		std::mt19937_64 rng(3);
		for (unsigned i = 0; i < 6; i++) {
			Client &a = Fresh(), &b = Fresh();
			Cid d = ClientDcid(rng), c = RandCid(rng, 5);
			Bytes reply;
			ASSERT_TRUE(Exchange(a, vip, Initial(d, c, NextToken()), &reply));
			Cid srv = ServerCidOf(reply, c);
			int who = WhoSaw(bs, d);
			ASSERT_GE(who, 0);
			uint8_t sid[QG_QUIC_LB_MAX_SID_LEN];
			ASSERT_EQ(qg_quic_lb_decode_server_id(lb.c, srv.data(), srv.size(), sid), 0);
			EXPECT_EQ(Bytes(sid, sid + lp.sid_len), sid_of(who));
			EXPECT_TRUE(Exchange(b, vip, ShortPkt(srv, NextToken())));
			EXPECT_EQ(WhoSaw(bs, srv), who);
			EXPECT_EQ(bs[who]->SourcesOf({ d, srv }).size(), 1u)
				<< "the upstream changed on rebinding";
		}
		EXPECT_EQ(Ctr(QG_CTR_QUIC_MIGRATED), 6u);
		EXPECT_EQ(Ctr(QG_CTR_QUIC_LB_ROUTED), lb_routed) << "a learned connection was routed anew";

		// A server ID no backend has: counted, then routed by the fallback.
		EXPECT_EQ(Ctr(QG_CTR_ERR_QUIC_LB_UNKNOWN_SID), 0u);
		Bytes unknown(lp.sid_len, 0x7f);
		for (unsigned i = 0; i < 2; i++) {
			Client &u = Fresh();
			Cid cid = cid_for(unknown);
			EXPECT_TRUE(Exchange(u, vip, ShortPkt(cid, NextToken()), nullptr, 1000, 1))
				<< "a CID with an unknown server ID was not delivered";
			EXPECT_GE(WhoSaw(bs, cid), 0);
		}
		EXPECT_EQ(Ctr(QG_CTR_ERR_QUIC_LB_UNKNOWN_SID), 2u);
		EXPECT_EQ(Ctr(QG_CTR_QUIC_LB_ROUTED), lb_routed);
		EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_MALFORMED), 0u);
		Stop();
	}
}

// RFC 9000 Sec 14.1: a datagram carrying an Initial is at least 1200 bytes.
TEST_P(QuicRelay, InitialDefences)
{
	auto bs = Servers(1);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(4);
	Client &c = Fresh();
	Cid d = RandCid(rng), sc = RandCid(rng);
	EXPECT_FALSE(Exchange(c, vip, Initial(d, sc, NextToken(), 1199), nullptr, 300, 1));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL) == 1; }, 2000));
	EXPECT_EQ(bs[0]->datagrams(), 0u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 0u) << "a dropped Initial created a flow";
	// A Handshake coalesced before a small Initial: still an Initial-bearing datagram.
	Bytes co = Handshake(d, sc, NextToken(), 100);
	Bytes ini = Initial(d, sc, NextToken(), 500);
	co.insert(co.end(), ini.begin(), ini.end());
	EXPECT_FALSE(Exchange(c, vip, co, nullptr, 300, 1));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL) == 2; }, 2000));
	EXPECT_EQ(bs[0]->datagrams(), 0u);
	// 1200 bytes pass.
	EXPECT_TRUE(Exchange(c, vip, Initial(d, sc, NextToken(), 1200)));
	EXPECT_EQ(bs[0]->Saw(d), 1u);
	// Small long headers without an Initial are not held to the rule.
	Client &c2 = Fresh();
	Cid d2 = RandCid(rng);
	EXPECT_TRUE(Exchange(c2, vip, Handshake(d2, sc, NextToken(), 300)));
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL), 2u);
	Stop();

	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n      min_initial_size: 0\n";
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	vip = qgt::Addr(s.listen);
	Client &c3 = Fresh();
	Cid d3 = RandCid(rng);
	EXPECT_TRUE(Exchange(c3, vip, Initial(d3, sc, NextToken(), 300))) << "min_initial_size: 0 dropped it";
	EXPECT_EQ(bs[0]->Saw(d3), 1u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL), 0u);
}

// RFC 9000 Sec 6: a service that lists its versions answers others itself.
TEST_P(QuicRelay, VersionNegotiationByQgate)
{
	auto bs = Servers(2);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n      versions: [1]\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(5);
	Client &c = Fresh();
	Cid d = RandCid(rng, 8), sc = RandCid(rng, 5);
	Bytes probe = LongPkt(0xc0, kReservedVersion, d, sc, NextToken(), 1200);
	ASSERT_TRUE(c.Send(vip, probe.data(), probe.size()));
	std::vector<uint8_t> buf(4096);
	ssize_t n = c.Recv(buf.data(), buf.size(), 2000);
	ASSERT_GT(n, 0) << "no Version Negotiation";
	qg_quic_hdr h;
	ASSERT_EQ(qg_quic_parse(buf.data(), static_cast<size_t>(n), 0, &h), 0);
	EXPECT_EQ(h.form, QG_QUIC_FORM_LONG);
	EXPECT_EQ(h.type, QG_QUIC_TYPE_VERSION_NEGOTIATION);
	EXPECT_EQ(h.version, 0u);
	EXPECT_EQ(Cid(h.dcid, h.dcid + h.dcid_len), sc) << "VN DCID must be the client's SCID";
	EXPECT_EQ(Cid(h.scid, h.scid + h.scid_len), d) << "VN SCID must be the client's DCID";
	EXPECT_TRUE(qg_quic_vn_matches_probe(buf.data(), static_cast<size_t>(n), d.data(), d.size(),
					     sc.data(), sc.size()));
	std::set<uint32_t> versions;
	ASSERT_EQ(h.versions_len % 4, 0u);
	for (size_t i = 0; i + 4 <= h.versions_len; i += 4) {
		uint32_t v;
		memcpy(&v, h.versions + i, 4);
		versions.insert(ntohl(v));
	}
	EXPECT_EQ(versions, std::set<uint32_t>{ QG_QUIC_VERSION_1 });
	EXPECT_EQ(static_cast<size_t>(n), QG_QUIC_VN_HDR_LEN(sc.size(), d.size()) + 4);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_VN_SENT), 1u);
	EXPECT_EQ(TotalSeen(bs), 0u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 0u);

	// Too small to start a connection: no answer (no amplification), counted.
	Client &c2 = Fresh();
	Cid d2 = RandCid(rng);
	EXPECT_FALSE(Exchange(c2, vip, LongPkt(0xc0, kReservedVersion, d2, sc, NextToken(), 100), nullptr,
			      300, 1));
	EXPECT_LT(c2.Recv(buf.data(), buf.size(), 0), 0);
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_VERSION) == 1; }, 2000));
	EXPECT_EQ(Ctr(QG_CTR_QUIC_VN_SENT), 1u);
	EXPECT_EQ(TotalSeen(bs), 0u);
	// A listed version is forwarded.
	Client &c3 = Fresh();
	Cid d3 = RandCid(rng);
	EXPECT_TRUE(Exchange(c3, vip, Initial(d3, sc, NextToken())));
	EXPECT_EQ(TotalSeen(bs), 1u);
	Stop();

	// Without versions, every version goes to the backends.
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	vip = qgt::Addr(s.listen);
	Client &c4 = Fresh();
	Cid d4 = RandCid(rng);
	EXPECT_TRUE(Exchange(c4, vip, LongPkt(0xc0, kReservedVersion, d4, sc, NextToken(), 1200)));
	EXPECT_GE(WhoSaw(bs, d4), 0);
	Client &c5 = Fresh();
	Cid d5 = RandCid(rng);
	EXPECT_TRUE(Exchange(c5, vip, LongPkt(0xc0, kReservedVersion, d5, sc, NextToken(), 100)));
	EXPECT_GE(WhoSaw(bs, d5), 0);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_VN_SENT), 0u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_VERSION), 0u);
}

// A per-source token bucket for new connections; established ones are not charged.
TEST_P(QuicRelay, PerSourceRateOfNewConnections)
{
	auto bs = Servers(2);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n      new_conn_rate: 1\n      new_conn_burst: 3\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(6);
	const unsigned n = 6;
	std::vector<Client *> cl;
	std::vector<Cid> d, sc;
	std::vector<uint64_t> tok;
	for (unsigned i = 0; i < n; i++) {
		cl.push_back(&Fresh());
		d.push_back(RandCid(rng));
		sc.push_back(RandCid(rng));
		tok.push_back(NextToken());
	}
	// Back to back: well inside the one second a new token takes.
	for (unsigned i = 0; i < n; i++) {
		auto p = Initial(d[i], sc[i], tok[i]);
		ASSERT_TRUE(cl[i]->Send(vip, p.data(), p.size()));
	}
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_RATE_LIMITED) + TotalSeen(bs) >= n; }, 3000));
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_RATE_LIMITED), 3u);
	EXPECT_EQ(TotalSeen(bs), 3u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 3u);
	// The three that passed keep working, on their server's CID; the others got nothing.
	unsigned served = 0;
	std::vector<uint8_t> buf(4096);
	for (unsigned i = 0; i < n; i++) {
		SCOPED_TRACE("connection " + std::to_string(i));
		bool passed = WhoSaw(bs, d[i]) >= 0;
		ssize_t got = cl[i]->Recv(buf.data(), buf.size(), passed ? 2000 : 0);
		if (!passed) {
			EXPECT_LT(got, 0);
			continue;
		}
		served++;
		ASSERT_GT(got, 0);
		Bytes reply(buf.begin(), buf.begin() + got);
		EXPECT_EQ(TokenOf(reply.data(), reply.size()), tok[i]);
		Cid srv = ServerCidOf(reply, sc[i]);
		for (unsigned j = 0; j < 5; j++)
			EXPECT_TRUE(Exchange(*cl[i], vip, ShortPkt(srv, NextToken())));
		EXPECT_TRUE(Exchange(*cl[i], vip, Initial(d[i], sc[i], NextToken()))) << "a retransmission";
	}
	EXPECT_EQ(served, 3u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_RATE_LIMITED), 3u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 3u);
}

// Headers that cannot be parsed are counted and dropped; service goes on.
TEST_P(QuicRelay, MalformedHeadersAreDropped)
{
	auto bs = Servers(2);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	Client &c = Fresh();
	const Bytes bad[] = {
		{ 0xc0, 0x00, 0x00, 0x00, 0x01, 0x08, 0xaa, 0xbb, 0xcc }, // cut inside its DCID
		{ 0xc0, 0x00, 0x00, 0x00, 0x01 },			  // cut before the DCID length
		{ 0x40, 0x01, 0x02, 0x03 }, // short header shorter than its DCID
		{},			    // empty datagram
	};
	Bytes cidlen =
		LongPkt(0xc0, QG_QUIC_VERSION_1, Cid(21, 0x55), Cid(4, 1), NextToken(), 1200); // v1 CID > 20
	uint64_t want = 0;
	for (const auto &p : bad) {
		ASSERT_TRUE(c.Send(vip, p.data(), p.size()));
		want++;
		EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_MALFORMED) == want; }, 2000))
			<< "packet " << want << " not counted as malformed";
	}
	ASSERT_TRUE(c.Send(vip, cidlen.data(), cidlen.size()));
	want++;
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_MALFORMED) == want; }, 2000));
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 0u);
	// The same socket then opens a real connection: served, and the garbage never arrived.
	std::mt19937_64 rng(7);
	Cid d = RandCid(rng), sc = RandCid(rng);
	EXPECT_TRUE(Exchange(c, vip, Initial(d, sc, NextToken())));
	EXPECT_EQ(TotalSeen(bs), 1u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 1u);
	// Garbage inside an established flow (same 4-tuple) is dropped too.
	ASSERT_TRUE(c.Send(vip, bad[0].data(), bad[0].size()));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_MALFORMED) == want + 1; }, 2000));
	EXPECT_TRUE(Exchange(c, vip, Initial(d, sc, NextToken())));
	EXPECT_EQ(TotalSeen(bs), 2u);
}

// A udp service in the same configuration relays whatever it gets, QUIC or not.
TEST_P(QuicRelay, UdpServiceNextToQuic)
{
	auto bs = Servers(2);
	EchoServer echo;
	ServiceSpec q, u;
	q.name = "quic";
	q.listen = Listen();
	q.quic = "      short_dcid_len: 8\n";
	q.backends = Specs(bs);
	u.name = "plain";
	u.protocol = "udp";
	u.listen = Listen();
	u.backends = { { echo.addr_str(), "", 1 } };
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { q, u })));
	qg_addr uvip = qgt::Addr(u.listen), qvip = qgt::Addr(q.listen);
	std::mt19937_64 rng(8);
	Cid d = RandCid(rng), sc = RandCid(rng);
	Client &c = Fresh();
	// What the QUIC service would drop: malformed, a small Initial, an unknown short CID, empty.
	const Bytes plain[] = {
		{ 0xc0, 0x00, 0x00, 0x00, 0x01, 0x08, 0xaa, 0xbb, 0xcc },
		Initial(d, sc, 1, 300),
		ShortPkt(RandCid(rng), 2),
		{},
		qgt::Payload(9, 1, 1400),
	};
	for (const auto &p : plain)
		EXPECT_TRUE(qgt::RoundTrip(c, uvip, p))
			<< "udp service did not echo " << p.size() << " bytes";
	EXPECT_EQ(echo.datagrams(), 5u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_MALFORMED), 0u);
	EXPECT_EQ(Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL), 0u);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_CID_LEARNED), 0u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 1u) << "one udp flow: one 4-tuple";
	// Both services at once: the QUIC one still applies its rules.
	Client &c2 = Fresh();
	EXPECT_FALSE(Exchange(c2, qvip, Initial(d, sc, NextToken(), 300), nullptr, 300, 1));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_INITIAL_SMALL) == 1; }, 2000));
	Bytes reply;
	EXPECT_TRUE(Exchange(c2, qvip, Initial(d, sc, NextToken()), &reply));
	Cid srv = ServerCidOf(reply, sc);
	Client &c3 = Fresh();
	EXPECT_TRUE(Exchange(c3, qvip, ShortPkt(srv, NextToken())));
	EXPECT_EQ(Ctr(QG_CTR_QUIC_MIGRATED), 1u);
	EXPECT_TRUE(qgt::RoundTrip(c, uvip, qgt::Payload(9, 2, 64)));
	EXPECT_EQ(echo.datagrams(), 6u);
	EXPECT_EQ(TotalSeen(bs), 2u);
}

// A connection that moves onto an address another flow holds (a NAT gave
// the port to it) takes the address over; the displaced flow is removed, not
// expired: it was not idle.
// PRODUCT BUG (fails): migrate() in dataplane/pipeline/quic_route.c looks the
// other flow up with now_ms = 0 (qg_flow_lookup(..., &p->peer, 0)), so the
// idle check (0 - last_seen > timeout) releases it as EXPIRED and
// flows_expired counts it.
TEST_P(QuicRelay, MigrationOntoAnAddressInUseDisplacesThatFlow)
{
	auto bs = Servers(2);
	ServiceSpec s;
	s.listen = Listen();
	s.quic = "      short_dcid_len: 8\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	std::mt19937_64 rng(9);
	Client &p1 = Fresh(), &p2 = Fresh();
	Cid d1 = RandCid(rng), c1 = RandCid(rng), d2 = RandCid(rng), c2 = RandCid(rng);
	Bytes r1, r2;
	ASSERT_TRUE(Exchange(p1, vip, Initial(d1, c1, NextToken()), &r1));
	ASSERT_TRUE(Exchange(p2, vip, Initial(d2, c2, NextToken()), &r2));
	Cid s1 = ServerCidOf(r1, c1);
	int who = WhoSaw(bs, d1);
	ASSERT_GE(who, 0);
	ASSERT_EQ(qg_dataplane_flows_active(dp_, 0), 2u);
	// Connection 1 now arrives from p2's address.
	EXPECT_TRUE(Exchange(p2, vip, ShortPkt(s1, NextToken())));
	EXPECT_EQ(WhoSaw(bs, s1), who);
	EXPECT_EQ(bs[who]->SourcesOf({ d1, s1 }).size(), 1u) << "connection 1 lost its upstream";
	EXPECT_EQ(Ctr(QG_CTR_QUIC_MIGRATED), 1u);
	EXPECT_EQ(qg_dataplane_flows_active(dp_, 0), 1u);
	EXPECT_EQ(Ctr(QG_CTR_FLOW_EXPIRED), 0u) << "the displaced flow was active, not idle";
}

// quic_lb_routed counts new flows routed by a server ID: a packet the
// new-connection limit drops made no flow.
// PRODUCT BUG (fails): qg_quic_route_client() adds QG_CTR_QUIC_LB_ROUTED in
// step 4 before rate_allows() (and before qg_relay_new_flow_to()) decide.
TEST_P(QuicRelay, RateLimitedQuicLbPacketIsNotCountedAsRouted)
{
	LbParams lp{ 0, 1, 4, false };
	std::vector<std::unique_ptr<QuicServer>> bs;
	for (unsigned k = 0; k < 2; k++)
		bs.emplace_back(new QuicServer(k, 6, &lp, Bytes{ static_cast<uint8_t>(0x11 * (k + 1)) }));
	ServiceSpec s;
	s.listen = Listen();
	s.quic = LbYaml(lp) + "      new_conn_rate: 1\n      new_conn_burst: 1\n";
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	LbConfig lb(lp);
	Client &a = Fresh(), &b = Fresh();
	Cid ca = lb.Encode({ 0x11 }, { 0xcc, 0, 0, 1 }), cb = lb.Encode({ 0x22 }, { 0xcc, 0, 0, 2 });
	EXPECT_TRUE(Exchange(a, vip, ShortPkt(ca, NextToken()), nullptr, 1000, 1));
	EXPECT_FALSE(Exchange(b, vip, ShortPkt(cb, NextToken()), nullptr, 300, 1));
	EXPECT_TRUE(WaitFor([&] { return Ctr(QG_CTR_DROP_QUIC_RATE_LIMITED) == 1; }, 2000));
	EXPECT_EQ(Ctr(QG_CTR_FLOW_CREATED), 1u);
	EXPECT_EQ(Ctr(QG_CTR_QUIC_LB_ROUTED), 1u) << "a rate-limited packet was counted as a routed new flow";
}

// One client socket carrying two connections whose CIDs name different
// servers (endpoints such as quinn or msquic multiplex connections on one
// socket). Each packet reaches the server its CID names, but the flow table
// holds one flow per client address: each switch removes the other
// connection's flow (quic_route.c step 3, "a NAT reused the port") and opens
// a new upstream, so every server sees its connection from a new source on
// every switch. Disabled: a known limitation, reported, not a regression.
TEST_P(QuicRelay, DISABLED_TwoConnectionsOnOneSocketKeepTheirUpstreams)
{
	LbParams lp{ 0, 1, 4, false };
	std::vector<std::unique_ptr<QuicServer>> bs;
	for (unsigned k = 0; k < 2; k++)
		bs.emplace_back(new QuicServer(k, 6, &lp, Bytes{ static_cast<uint8_t>(0x11 * (k + 1)) }));
	ServiceSpec s;
	s.listen = Listen();
	s.quic = LbYaml(lp);
	s.backends = Specs(bs);
	ASSERT_NO_FATAL_FAILURE(Start(Yaml(GetParam(), { s })));
	qg_addr vip = qgt::Addr(s.listen);
	LbConfig lb(lp);
	Client &a = Fresh();
	Cid ca = lb.Encode({ 0x11 }, { 0xcc, 0, 0, 1 }), cb = lb.Encode({ 0x22 }, { 0xcc, 0, 0, 2 });
	for (int i = 0; i < 5; i++) {
		EXPECT_TRUE(Exchange(a, vip, ShortPkt(ca, NextToken())));
		EXPECT_TRUE(Exchange(a, vip, ShortPkt(cb, NextToken())));
	}
	EXPECT_EQ(WhoSaw(bs, ca), 0);
	EXPECT_EQ(WhoSaw(bs, cb), 1);
	EXPECT_EQ(bs[0]->SourcesOf({ ca }).size(), 1u) << "connection a changed upstream";
	EXPECT_EQ(bs[1]->SourcesOf({ cb }).size(), 1u) << "connection b changed upstream";
}

INSTANTIATE_TEST_SUITE_P(Io, QuicRelay, ::testing::Values("io_uring", "recvmmsg"),
			 [](const ::testing::TestParamInfo<std::string> &i) { return i.param; });

} // namespace
