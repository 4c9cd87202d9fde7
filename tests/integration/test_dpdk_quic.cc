// SPDX-License-Identifier: BSD-3-Clause
// QUIC services through the DPDK backend without a NIC: qgate (the real
// executable, QGATE_BIN) runs on a net_pcap vdev that reads a crafted capture
// and writes what it sends to another, as in test_dpdk_pcap.cc. The
// datagrams are synthesized QUIC headers with opaque payloads (qgate never
// reads past the header protection), except for the Retry case, which sends
// RFC 9001's real client Initial so that tshark can follow the connection and
// check the Retry Integrity Tag.
//
// Pass 1 (one qgate run) carries every case below; pass 2 repeats it (NAT
// port allocation is deterministic) and appends what needs pass 1's output:
//  (a) Initials of 30 connections, each sent from two source ports, to a
//      protocol: quic VIP: one backend (and one NAT port) per DCID, read by
//      tshark (quic.dcid);
//  (b) QUIC-LB short headers (plaintext, keyed four-pass, keyed single-pass)
//      reach the backend their server ID names;
//  (c) pass 2: the backend answers with a long header carrying its SCID; a
//      short header to that SCID from a new client port leaves from the same
//      NAT port to the same backend, and the backend's next reply goes to the
//      new port;
//  (d) versions: [1]: a 1200-byte Initial of an unknown version gets a
//      Version Negotiation from the VIP, cut to its size, clean for tshark;
//  (e) retry: on: a tokenless 1200-byte Initial gets a Retry whose integrity
//      tag tshark verifies;
//  (f) datagrams with Initials under 1200 bytes are dropped and counted.
// Each test reads the passes it needs; the runs are shared within a process.
#include <gtest/gtest.h>

#include "rfc9001_vectors.h"
#include <arpa/inet.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "qgate/quic.h"
#include "qgate/quic_lb.h"
#include "qgate/retry_token.h"

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif

namespace
{

using Bytes = std::vector<uint8_t>;
using Cid = std::vector<uint8_t>;

const uint8_t kPortMacAny[6] = { 0x02, 0x70, 0x63, 0x61, 0x70, 0x00 }; // net_pcap's default
const uint8_t kGwMac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
const uint8_t kB1Mac[6] = { 0x02, 0, 0, 0, 0, 0x50 };
const uint8_t kB2Mac[6] = { 0x02, 0, 0, 0, 0, 0x51 };

const char kVip[] = "192.0.2.100";
const char kNat[] = "192.0.2.10";
const char kB1[] = "192.0.2.50";
const char kB2[] = "192.0.2.51";

// Service ports: VIP side and backend side.
constexpr uint16_t kQuicPort = 4433, kQuicBackend = 5001;   // (a) (c) (f)
constexpr uint16_t kLbPort = 4434, kLbBackend = 5002;	    // (b) plaintext + four-pass
constexpr uint16_t kVnPort = 4435, kVnBackend = 5004;	    // (d)
constexpr uint16_t kRetryPort = 4436, kRetryBackend = 5005; // (e)
constexpr uint16_t kLb16Port = 4437, kLb16Backend = 5003;   // (b) single pass
constexpr int kConns = 30;
constexpr int kLbPerConfig = 10;
constexpr uint32_t kUnknownVersion = 0x1a2a3a4a;
const char kLbKeyHex[] = "8f95f09245765f80256934e50c66207f";

// RFC 9001 Appendix A.2: a real 1200-byte client Initial (DCID 8394c8f03e515708, no SCID).
const char kRfcOdcid[] = "8394c8f03e515708";
const char *const kRfcClientInitial = kRfc9001ClientInitialHex;

// ---- bytes, frames, pcap files ----

std::string ReadFile(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	std::ostringstream s;
	s << f.rdbuf();
	return s.str();
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

std::string Hex(const Bytes &b)
{
	return Hex(b.data(), b.size());
}

Bytes Unhex(const std::string &s)
{
	Bytes b;
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		b.push_back((uint8_t)std::stoul(s.substr(i, 2), nullptr, 16));
	return b;
}

Bytes Ip4(const std::string &text)
{
	Bytes b(4);
	inet_pton(AF_INET, text.c_str(), b.data());
	return b;
}

std::string IpText(const uint8_t *ip)
{
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, ip, buf, sizeof(buf));
	return buf;
}

void Put16(Bytes &b, size_t off, uint16_t v)
{
	b[off] = (uint8_t)(v >> 8);
	b[off + 1] = (uint8_t)v;
}

uint16_t Get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t SumWords(const uint8_t *p, size_t n, uint32_t s = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	return s;
}

uint16_t Fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

// Byte by byte: GCC 12 at -O3 warns (falsely, -Warray-bounds) on vector::insert of small arrays.
void Append(Bytes &b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b.push_back(p[i]);
}

// Ethernet + IPv4 + UDP (with its checksum) around payload.
Bytes Udp(const uint8_t *smac, const std::string &src, uint16_t sport, const std::string &dst, uint16_t dport,
	  const Bytes &payload)
{
	Bytes s = Ip4(src), d = Ip4(dst);
	Bytes f;
	Append(f, kPortMacAny, 6);
	Append(f, smac, 6);
	f.push_back(0x08);
	f.push_back(0x00);
	size_t ulen = 8 + payload.size();
	Bytes h(20, 0);
	h[0] = 0x45;
	Put16(h, 2, (uint16_t)(20 + ulen));
	Put16(h, 4, 0x1234);
	h[8] = 64;
	h[9] = 17;
	std::copy(s.begin(), s.end(), h.begin() + 12);
	std::copy(d.begin(), d.end(), h.begin() + 16);
	Put16(h, 10, Fold(SumWords(h.data(), 20)));
	Append(f, h.data(), h.size());
	Bytes u(8, 0);
	Put16(u, 0, sport);
	Put16(u, 2, dport);
	Put16(u, 4, (uint16_t)ulen);
	Append(u, payload.data(), payload.size());
	uint32_t sum = SumWords(s.data(), 4);
	sum = SumWords(d.data(), 4, sum);
	sum += 17 + (uint32_t)ulen;
	uint16_t c = Fold(SumWords(u.data(), u.size(), sum));
	Put16(u, 6, c ? c : 0xffff);
	Append(f, u.data(), u.size());
	return f;
}

void WritePcap(const std::string &path, const std::vector<Bytes> &frames)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	const uint32_t hdr[6] = { 0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1 };
	f.write(reinterpret_cast<const char *>(hdr), sizeof(hdr));
	uint32_t t = 0;
	for (const Bytes &b : frames) {
		const uint32_t rec[4] = { 1, t++, (uint32_t)b.size(), (uint32_t)b.size() };
		f.write(reinterpret_cast<const char *>(rec), sizeof(rec));
		f.write(reinterpret_cast<const char *>(b.data()), (std::streamsize)b.size());
	}
}

std::vector<Bytes> ReadPcap(const std::string &path)
{
	std::string s = ReadFile(path);
	std::vector<Bytes> out;
	if (s.size() < 24)
		return out;
	size_t off = 24;
	while (off + 16 <= s.size()) {
		uint32_t caplen;
		memcpy(&caplen, s.data() + off + 8, 4);
		off += 16;
		if (off + caplen > s.size())
			break;
		out.emplace_back(s.begin() + (long)off, s.begin() + (long)(off + caplen));
		off += caplen;
	}
	return out;
}

// A UDP/IPv4 frame of the output, decoded.
struct UdpOut {
	std::string src, dst;
	uint16_t sport = 0, dport = 0;
	Bytes payload, dmac;
	size_t frame_len = 0;
	bool csum_ok = false;
};

bool DecodeUdp(const Bytes &f, UdpOut *u)
{
	if (f.size() < 14 + 28 || Get16(&f[12]) != 0x0800)
		return false;
	const uint8_t *p = f.data() + 14;
	size_t ihl = (p[0] & 15) * 4u;
	if (p[9] != 17 || f.size() < 14 + ihl + 8)
		return false;
	const uint8_t *l4 = p + ihl;
	size_t l4len = Get16(p + 2) - ihl;
	if (14 + ihl + l4len > f.size() || Get16(l4 + 4) != l4len)
		return false;
	u->dmac.assign(f.begin(), f.begin() + 6);
	u->src = IpText(p + 12);
	u->dst = IpText(p + 16);
	u->sport = Get16(l4);
	u->dport = Get16(l4 + 2);
	u->payload.assign(l4 + 8, l4 + l4len);
	u->frame_len = f.size();
	uint32_t sum = SumWords(p + 12, 8) + 17 + (uint32_t)l4len;
	u->csum_ok =
		Fold(SumWords(p, ihl)) == 0 && (Get16(l4 + 6) == 0 || Fold(SumWords(l4, l4len, sum)) == 0);
	return true;
}

std::string Shell(const std::string &cmd)
{
	std::string out;
	FILE *p = popen(cmd.c_str(), "r");
	if (!p)
		return out;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	pclose(p);
	return out;
}

std::vector<std::string> Split(const std::string &s, char sep)
{
	std::vector<std::string> f;
	std::stringstream ls(s);
	std::string field;
	while (std::getline(ls, field, sep))
		f.push_back(field);
	if (!s.empty() && s.back() == sep)
		f.push_back("");
	return f;
}

// tshark -T fields, one vector per frame (the "Running as user" notice goes to stderr, dropped).
std::vector<std::vector<std::string>> TsharkFields(const std::string &pcap, const std::string &opts,
						   const std::vector<std::string> &fields)
{
	std::string cmd = "tshark -r " + pcap + " " + opts + " -T fields -E separator='|' -E occurrence=f";
	for (const auto &f : fields)
		cmd += " -e " + f;
	std::vector<std::vector<std::string>> rows;
	std::istringstream lines(Shell(cmd + " 2>/dev/null"));
	std::string line;
	while (std::getline(lines, line))
		rows.push_back(Split(line, '|'));
	return rows;
}

uint32_t FirstAllowedCpu()
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return (uint32_t)c;
	return 0;
}

uint64_t Total(const std::string &err, const std::string &name)
{
	std::string key = "qgate: total " + name + " = ";
	size_t pos = err.find(key);
	return pos == std::string::npos ? 0 : strtoull(err.c_str() + pos + key.size(), nullptr, 10);
}

// ---- QUIC packets ----

void PutTag(Bytes *pkt, uint64_t tag)
{
	for (int i = 0; i < 8; i++)
		(*pkt)[pkt->size() - 8 + i] = (uint8_t)(tag >> (56 - 8 * i));
}

// A long header of exactly size bytes ending with tag: v1 Initial (0xc0, empty
// Token) and Handshake (0xe0) get a Length covering the rest; other versions
// are opaque after the CIDs.
Bytes LongPkt(uint8_t first, uint32_t version, const Cid &dcid, const Cid &scid, uint64_t tag, size_t size)
{
	Bytes p;
	p.push_back(first);
	for (int s = 24; s >= 0; s -= 8)
		p.push_back((uint8_t)(version >> s));
	p.push_back((uint8_t)dcid.size());
	Append(p, dcid.data(), dcid.size());
	p.push_back((uint8_t)scid.size());
	Append(p, scid.data(), scid.size());
	if (version == QG_QUIC_VERSION_1) {
		if ((first & 0x30) == 0x00)
			p.push_back(0x00); // Token Length 0
		size_t length = size - p.size() - 2;
		p.push_back((uint8_t)(0x40 | (length >> 8)));
		p.push_back((uint8_t)(length & 0xff));
	}
	EXPECT_GE(size, p.size() + 9) << "packet too small for its header";
	p.resize(size, 0);
	PutTag(&p, tag);
	return p;
}

Bytes Initial(const Cid &dcid, const Cid &scid, uint64_t tag, size_t size = 1200)
{
	return LongPkt(0xc0, QG_QUIC_VERSION_1, dcid, scid, tag, size);
}

Bytes ShortPkt(const Cid &dcid, uint64_t tag, size_t size = 64)
{
	Bytes p(std::max(size, 1 + dcid.size() + 8), 0);
	p[0] = 0x40;
	for (size_t i = 0; i < dcid.size(); i++)
		p[1 + i] = dcid[i];
	PutTag(&p, tag);
	return p;
}

Cid RandCid(std::mt19937_64 &rng, size_t len)
{
	Cid c(len);
	for (auto &b : c)
		b = (uint8_t)rng();
	return c;
}

// ---- the scenario: every datagram of pass 1 and what should become of it ----

struct Conn { // (a)
	Cid dcid, scid;
	std::string ip;
	uint16_t port_a, port_b;
};

struct LbCase {		  // (b)
	std::string mode; // plaintext, four-pass, single-pass
	Cid cid;
	Bytes payload;
	std::string client;
	uint16_t vip_port, backend_port;
	std::string backend; // "" for the unknown server ID
};

struct Scenario {
	std::vector<Conn> conns;
	std::vector<LbCase> lb;
	Cid vn_dcid, vn_scid;
	std::string vn_client = "198.18.3.1", retry_client = "198.18.4.1";
	uint16_t vn_port = 42000, retry_port = 43000;
	Bytes retry_initial; // the frame carrying it
	Bytes handshake;     // a small non-Initial long header: not a small Initial
	int small_initials = 0;
	std::vector<Bytes> frames;
};

struct LbCfg {
	qg_quic_lb_config *c = nullptr;
	LbCfg(uint8_t id, uint8_t sid_len, uint8_t nonce_len, bool keyed)
	{
		Bytes key = Unhex(kLbKeyHex);
		if (qg_quic_lb_config_create(id, sid_len, nonce_len, keyed ? key.data() : nullptr, &c))
			abort();
	}
	~LbCfg()
	{
		qg_quic_lb_config_destroy(c);
	}
	LbCfg(const LbCfg &) = delete;
	LbCfg &operator=(const LbCfg &) = delete;
	Cid Encode(const Bytes &sid, const Bytes &nonce)
	{
		uint8_t out[QG_QUIC_LB_MAX_CID_LEN];
		int n = qg_quic_lb_encode(c, sid.data(), nonce.data(), out, sizeof(out));
		EXPECT_GT(n, 0);
		return n > 0 ? Cid(out, out + n) : Cid();
	}
};

const Scenario &TheScenario()
{
	static std::unique_ptr<Scenario> sc;
	if (sc)
		return *sc;
	sc.reset(new Scenario);
	Scenario &s = *sc;
	std::mt19937_64 rng(20240611);

	// (a) 30 connections: every Initial from port_a, then every retransmission from port_b.
	for (int i = 0; i < kConns; i++)
		s.conns.push_back({ RandCid(rng, 8), RandCid(rng, 8), "198.18.0." + std::to_string(i + 1),
				    (uint16_t)(40000 + i), (uint16_t)(45000 + i) });
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < kConns; i++) {
			const Conn &c = s.conns[i];
			s.frames.push_back(Udp(kGwMac, c.ip, pass ? c.port_b : c.port_a, kVip, kQuicPort,
					       Initial(c.dcid, c.scid, (uint64_t)(i * 2 + pass))));
		}

	// (b) QUIC-LB short headers, each from its own client, alternating the two server IDs.
	const Bytes sids[2] = { { 0x0a, 0x01 }, { 0x0a, 0x02 } };
	const char *backends[2] = { kB1, kB2 };
	struct {
		const char *mode;
		uint8_t id, nonce_len;
		bool keyed;
		uint16_t vip_port, backend_port;
	} cfgs[3] = { { "plaintext", 1, 6, false, kLbPort, kLbBackend },
		      { "four-pass", 2, 6, true, kLbPort, kLbBackend },
		      { "single-pass", 3, 14, true, kLb16Port, kLb16Backend } };
	for (int m = 0; m < 3; m++) {
		LbCfg cfg(cfgs[m].id, 2, cfgs[m].nonce_len, cfgs[m].keyed);
		for (int k = 0; k < kLbPerConfig; k++) {
			int b = (k + k / 3) % 2;
			Bytes nonce = RandCid(rng, cfgs[m].nonce_len);
			LbCase lc{ cfgs[m].mode,
				   cfg.Encode(sids[b], nonce),
				   {},
				   "198.18.2." + std::to_string(m * 20 + k + 1),
				   cfgs[m].vip_port,
				   cfgs[m].backend_port,
				   backends[b] };
			lc.payload = ShortPkt(lc.cid, 0x1b00 + (uint64_t)(m * 100 + k));
			s.lb.push_back(lc);
		}
	}
	{
		// A plaintext CID naming no backend: counted, then routed like a new short header (4-tuple).
		LbCfg plain(1, 2, 6, false);
		LbCase lc{ "unknown server ID",
			   plain.Encode({ 0xff, 0xff }, RandCid(rng, 6)),
			   {},
			   "198.18.2.99",
			   kLbPort,
			   kLbBackend,
			   "" };
		lc.payload = ShortPkt(lc.cid, 0x1bff);
		s.lb.push_back(lc);
	}
	for (size_t i = 0; i < s.lb.size(); i++)
		s.frames.push_back(Udp(kGwMac, s.lb[i].client, (uint16_t)(41000 + i), kVip, s.lb[i].vip_port,
				       s.lb[i].payload));

	// (d) An unknown version: answered at 1200 bytes, dropped below.
	s.vn_dcid = RandCid(rng, 8);
	s.vn_scid = RandCid(rng, 5);
	s.frames.push_back(Udp(kGwMac, s.vn_client, s.vn_port, kVip, kVnPort,
			       LongPkt(0xc0, kUnknownVersion, s.vn_dcid, s.vn_scid, 0xd1, 1200)));
	s.frames.push_back(Udp(kGwMac, "198.18.3.2", 42001, kVip, kVnPort,
			       LongPkt(0xc0, kUnknownVersion, RandCid(rng, 8), RandCid(rng, 5), 0xd2, 1199)));

	// (e) A tokenless Initial (RFC 9001's) to the retry: on service.
	s.retry_initial =
		Udp(kGwMac, s.retry_client, s.retry_port, kVip, kRetryPort, Unhex(kRfcClientInitial));
	s.frames.push_back(s.retry_initial);

	// (f) Datagrams with an Initial under 1200 bytes: alone, coalesced after a Handshake, to a retry
	// service.
	const size_t small[] = { 1199, 1000, 500, 100 };
	for (size_t i = 0; i < 4; i++)
		s.frames.push_back(Udp(kGwMac, "198.18.5." + std::to_string(i + 1), 44000, kVip, kQuicPort,
				       Initial(RandCid(rng, 8), RandCid(rng, 8), 0xf0 + i, small[i])));
	{
		Cid d = RandCid(rng, 8), c = RandCid(rng, 8);
		Bytes dg = LongPkt(0xe0, QG_QUIC_VERSION_1, d, c, 0xf5, 300);
		Bytes in = Initial(d, c, 0xf6, 500);
		Append(dg, in.data(), in.size());
		s.frames.push_back(Udp(kGwMac, "198.18.5.10", 44000, kVip, kQuicPort, dg));
	}
	s.frames.push_back(Udp(kGwMac, "198.18.5.11", 44000, kVip, kRetryPort,
			       Initial(RandCid(rng, 8), RandCid(rng, 8), 0xf7, 1100)));
	s.small_initials = 6;
	// A small Handshake alone carries no Initial: forwarded.
	s.handshake = LongPkt(0xe0, QG_QUIC_VERSION_1, RandCid(rng, 8), RandCid(rng, 8), 0xf8, 300);
	s.frames.push_back(Udp(kGwMac, "198.18.5.12", 44000, kVip, kQuicPort, s.handshake));
	return s;
}

// ---- running qgate ----

struct QgateRun {
	bool ran = false; // false: EAL cannot start here (why says so)
	bool exit_ok = false;
	std::string why, err, out_path;
	std::vector<Bytes> out;
};

class DpdkQuic : public ::testing::Test
{
      protected:
	static void SetUpTestSuite()
	{
		char tmpl[] = "/tmp/qgate-dpdk-quic-XXXXXX";
		if (mkdtemp(tmpl))
			dir_ = tmpl;
	}
	static void TearDownTestSuite()
	{
		if (!dir_.empty() && !getenv("QG_KEEP_PCAP"))
			(void)!system(("rm -rf " + dir_).c_str());
		// The EAL's runtime directory of our --file-prefix (sockets, config): nothing else uses it.
		(void)!system(("rm -rf /var/run/dpdk/qgate-quic-" + std::to_string(getpid())).c_str());
		pass1_.reset();
		pass2_.reset();
	}
	void SetUp() override
	{
		if (system("command -v tshark >/dev/null 2>&1") != 0)
			GTEST_SKIP() << "tshark is not installed";
		ASSERT_FALSE(dir_.empty()) << "mkdtemp failed";
	}

	static std::string Config(const std::string &in, const std::string &out)
	{
		std::string prefix = "qgate-quic-" + std::to_string(getpid());
		std::string lb_key = kLbKeyHex;
		return "dataplane:\n"
		       "  backend: dpdk\n"
		       "  cores: [" +
		       std::to_string(FirstAllowedCpu()) +
		       "]\n"
		       "  max_datagram: 1400\n"
		       "  dpdk:\n"
		       "    eal_args: [--no-huge, -m, \"512\", --no-pci, --file-prefix, " +
		       prefix + ", --vdev, \"net_pcap0,rx_pcap=" + in + ",tx_pcap=" + out +
		       "\"]\n"
		       "    mbufs: 4095\n"
		       "    ports:\n"
		       "      - name: net_pcap0\n"
		       "        addresses: [192.0.2.1/24]\n"
		       "        gateway: 192.0.2.254\n"
		       "        nat_addresses: [192.0.2.10]\n"
		       "        neighbors:\n"
		       "          - {address: 192.0.2.254, mac: \"02:00:00:00:00:fe\"}\n"
		       "          - {address: 192.0.2.50, mac: \"02:00:00:00:00:50\"}\n"
		       "          - {address: 192.0.2.51, mac: \"02:00:00:00:00:51\"}\n"
		       "services:\n"
		       "  - name: quic\n"
		       "    listen: 192.0.2.100:4433\n"
		       "    protocol: quic\n"
		       "    quic: {short_dcid_len: 8}\n"
		       "    backends: [{address: 192.0.2.50:5001}, {address: 192.0.2.51:5001}]\n"
		       "  - name: lb\n"
		       "    listen: 192.0.2.100:4434\n"
		       "    protocol: quic\n"
		       "    quic:\n"
		       "      lb:\n"
		       "        - {config_id: 1, server_id_len: 2, nonce_len: 6}\n"
		       "        - {config_id: 2, server_id_len: 2, nonce_len: 6, key: " +
		       lb_key +
		       "}\n"
		       "    backends:\n"
		       "      - {address: 192.0.2.50:5002, server_id: \"0a01\"}\n"
		       "      - {address: 192.0.2.51:5002, server_id: \"0a02\"}\n"
		       "  - name: lb16\n"
		       "    listen: 192.0.2.100:4437\n"
		       "    protocol: quic\n"
		       "    quic:\n"
		       "      lb: [{config_id: 3, server_id_len: 2, nonce_len: 14, key: " +
		       lb_key +
		       "}]\n"
		       "    backends:\n"
		       "      - {address: 192.0.2.50:5003, server_id: \"0a01\"}\n"
		       "      - {address: 192.0.2.51:5003, server_id: \"0a02\"}\n"
		       "  - name: vn\n"
		       "    listen: 192.0.2.100:4435\n"
		       "    protocol: quic\n"
		       "    quic: {versions: [1]}\n"
		       "    backends: [{address: 192.0.2.50:5004}]\n"
		       "  - name: retry\n"
		       "    listen: 192.0.2.100:4436\n"
		       "    protocol: quic\n"
		       "    quic: {retry: on}\n"
		       "    backends: [{address: 192.0.2.50:5005}]\n";
	}

	// Run qgate over frames; bounded: 20 s to get ready, 10 s to stop after SIGTERM.
	static std::unique_ptr<QgateRun> RunQgate(const std::vector<Bytes> &frames, const std::string &tag)
	{
		std::unique_ptr<QgateRun> r(new QgateRun);
		std::string in = dir_ + "/in-" + tag + ".pcap", out = dir_ + "/out-" + tag + ".pcap";
		std::string cfg = dir_ + "/qgate-" + tag + ".yaml", err = dir_ + "/stderr-" + tag;
		WritePcap(in, frames);
		{
			std::ofstream f(cfg);
			f << Config(in, out);
		}
		pid_t pid = fork();
		if (pid == 0) {
			FILE *e = freopen(err.c_str(), "w", stderr);
			(void)e;
			// DPDK's own allocations are not ours to check (EAL keeps memory until exit).
			setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
			execl(QGATE_BIN, QGATE_BIN, "-c", cfg.c_str(), (char *)nullptr);
			_exit(127);
		}
		if (pid < 0) {
			r->why = "fork failed";
			return r;
		}
		// net_pcap reads its file once: wait until qgate is ready and idle, then stop it.
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
		int status = 0;
		bool exited = false;
		while (std::chrono::steady_clock::now() < deadline) {
			if (waitpid(pid, &status, WNOHANG) == pid) {
				exited = true;
				break;
			}
			if (ReadFile(err).find("ready") != std::string::npos)
				break;
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		if (!exited) {
			std::this_thread::sleep_for(std::chrono::milliseconds(1500));
			kill(pid, SIGTERM);
			auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(10);
			while (waitpid(pid, &status, WNOHANG) != pid) {
				if (std::chrono::steady_clock::now() > stop) {
					kill(pid, SIGKILL);
					waitpid(pid, &status, 0);
					break;
				}
				std::this_thread::sleep_for(std::chrono::milliseconds(10));
			}
		}
		r->err = ReadFile(err);
		if (exited && r->err.find("EAL initialisation failed") != std::string::npos) {
			r->why = "EAL cannot initialise here:\n" + r->err;
			return r;
		}
		r->ran = true;
		r->exit_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		r->out_path = out;
		r->out = ReadPcap(out);
		return r;
	}

	// Pass 1, run once per process.
	static const QgateRun &Pass1()
	{
		if (!pass1_)
			pass1_ = RunQgate(TheScenario().frames, "1");
		return *pass1_;
	}

	static std::string dir_;
	static std::unique_ptr<QgateRun> pass1_, pass2_;
};

std::string DpdkQuic::dir_;
std::unique_ptr<QgateRun> DpdkQuic::pass1_, DpdkQuic::pass2_;

#define NEED_PASS1(r)                                                       \
	const QgateRun &r = Pass1();                                        \
	if (!r.ran)                                                         \
		GTEST_SKIP() << r.why;                                      \
	EXPECT_TRUE(r.exit_ok) << "qgate did not exit cleanly:\n" << r.err; \
	ASSERT_FALSE(r.out.empty()) << "qgate sent nothing:\n" << r.err

// The output frames toward a backend port, decoded.
std::vector<UdpOut> ToBackend(const QgateRun &r, uint16_t backend_port)
{
	std::vector<UdpOut> v;
	for (const Bytes &f : r.out) {
		UdpOut u;
		if (DecodeUdp(f, &u) && u.dport == backend_port && u.src == kNat)
			v.push_back(u);
	}
	return v;
}

const uint8_t *MacOf(const std::string &backend)
{
	return backend == kB1 ? kB1Mac : kB2Mac;
}

// (a) Every Initial of a connection, from either source port, reaches the same backend.
TEST_F(DpdkQuic, InitialsOfAConnectionReachOneBackend)
{
	NEED_PASS1(r);
	const Scenario &s = TheScenario();

	// tshark's reading: ip.dst/udp.dstport and the NAT port per quic.dcid.
	auto rows = TsharkFields(
		r.out_path, "-d udp.port==5001,quic -Y \"udp.dstport==5001 && quic.long.packet_type==0\"",
		{ "ip.dst", "udp.dstport", "udp.srcport", "quic.dcid" });
	std::map<std::string, std::set<std::string>> dest_of, nat_port_of;
	std::map<std::string, int> count;
	for (const auto &row : rows) {
		ASSERT_EQ(row.size(), 4u);
		dest_of[row[3]].insert(row[0] + ":" + row[1]);
		nat_port_of[row[3]].insert(row[2]);
		count[row[3]]++;
	}
	std::set<std::string> used;
	for (const Conn &c : s.conns) {
		std::string d = Hex(c.dcid);
		EXPECT_EQ(count[d], 2) << "both Initials of " << d << " leave";
		ASSERT_EQ(dest_of[d].size(), 1u) << "DCID " << d << " went to several backends";
		used.insert(*dest_of[d].begin());
		// The second Initial moved the flow (new client address, same connection): same upstream.
		EXPECT_EQ(nat_port_of[d].size(), 1u) << "DCID " << d << " left from several NAT ports";
	}
	EXPECT_EQ(used, (std::set<std::string>{ "192.0.2.50:5001", "192.0.2.51:5001" }))
		<< "30 DCIDs hashed over two backends: both should be used";

	// The frames themselves: NATed from the NAT address, payload intact, checksums valid, right MAC.
	std::map<Bytes, int> sent;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < kConns; i++)
			sent[Initial(s.conns[i].dcid, s.conns[i].scid, (uint64_t)(i * 2 + pass))]++;
	int initials = 0;
	for (const UdpOut &u : ToBackend(r, kQuicBackend)) {
		if (u.payload.size() != 1200)
			continue;
		initials++;
		EXPECT_TRUE(u.csum_ok);
		EXPECT_GE(u.sport, 1024);
		EXPECT_EQ(memcmp(u.dmac.data(), MacOf(u.dst), 6), 0);
		EXPECT_EQ(sent[u.payload]--, 1) << "an Initial that was not sent, or sent twice";
	}
	EXPECT_EQ(initials, 2 * kConns) << r.err;
	EXPECT_EQ(Total(r.err, "quic_migrations"), (uint64_t)kConns) << r.err;
	EXPECT_GE(Total(r.err, "quic_cid_routed"), (uint64_t)kConns) << r.err;
}

// (b) QUIC-LB: short headers of new 4-tuples reach the backend their server ID names.
TEST_F(DpdkQuic, QuicLbShortHeadersReachTheirServer)
{
	NEED_PASS1(r);
	const Scenario &s = TheScenario();
	std::vector<UdpOut> out = ToBackend(r, kLbBackend), out16 = ToBackend(r, kLb16Backend);
	out.insert(out.end(), out16.begin(), out16.end());

	std::map<Bytes, const UdpOut *> by_payload;
	for (const UdpOut &u : out)
		EXPECT_TRUE(by_payload.emplace(u.payload, &u).second) << "sent twice: " << Hex(u.payload);
	EXPECT_EQ(by_payload.size(), s.lb.size()) << r.err;
	std::map<std::string, int> routed;
	for (const LbCase &c : s.lb) {
		auto it = by_payload.find(c.payload);
		ASSERT_NE(it, by_payload.end()) << c.mode << " CID " << Hex(c.cid) << " did not leave\n"
						<< r.err;
		const UdpOut &u = *it->second;
		EXPECT_EQ(u.dport, c.backend_port) << c.mode;
		EXPECT_TRUE(u.csum_ok) << c.mode;
		if (c.backend.empty()) {
			EXPECT_TRUE(u.dst == kB1 || u.dst == kB2) << u.dst;
			continue;
		}
		EXPECT_EQ(u.dst, c.backend) << c.mode << " CID " << Hex(c.cid);
		EXPECT_EQ(memcmp(u.dmac.data(), MacOf(c.backend), 6), 0);
		routed[c.mode] += u.dst == c.backend;
	}
	EXPECT_EQ(routed["plaintext"], kLbPerConfig);
	EXPECT_EQ(routed["four-pass"], kLbPerConfig);
	EXPECT_EQ(routed["single-pass"], kLbPerConfig);
	EXPECT_EQ(Total(r.err, "quic_lb_routed"), (uint64_t)(3 * kLbPerConfig)) << r.err;
	EXPECT_EQ(Total(r.err, "quic_lb_unknown_server_id"), 1u) << r.err;
}

// (c) NAT rebinding: a short header with the server's CID from a new client port keeps its NAT port and
// backend, and the backend's replies follow the client to the new port.
TEST_F(DpdkQuic, NatRebindingKeepsNatPortAndBackend)
{
	NEED_PASS1(r1);
	const Scenario &s = TheScenario();
	const Conn &c = s.conns[0];

	// Where connection 0 went in pass 1 (pass 2 repeats pass 1: the same NAT ports).
	std::string backend;
	uint16_t nat_port = 0;
	for (const UdpOut &u : ToBackend(r1, kQuicBackend)) {
		qg_quic_hdr h;
		if (qg_quic_parse(u.payload.data(), u.payload.size(), 0, &h) == 0 &&
		    h.form == QG_QUIC_FORM_LONG && Cid(h.dcid, h.dcid + h.dcid_len) == c.dcid) {
			backend = u.dst;
			nat_port = u.sport;
		}
	}
	ASSERT_FALSE(backend.empty()) << "connection 0's Initial did not leave in pass 1";

	// Pass 2: the backend's Handshake (DCID = client's SCID, SCID = its own CID), the client's short
	// header to that CID from a new port, then the backend's short-header reply.
	const Cid server_cid = { 0x5e, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
	const uint16_t new_port = 47000;
	Bytes hs = LongPkt(0xe0, QG_QUIC_VERSION_1, c.scid, server_cid, 0xc1, 60);
	Bytes moved = ShortPkt(server_cid, 0xc2, 80);
	Bytes reply = ShortPkt(c.scid, 0xc3, 70);
	std::vector<Bytes> frames = s.frames;
	frames.push_back(Udp(MacOf(backend), backend, kQuicBackend, kNat, nat_port, hs));
	frames.push_back(Udp(kGwMac, c.ip, new_port, kVip, kQuicPort, moved));
	frames.push_back(Udp(MacOf(backend), backend, kQuicBackend, kNat, nat_port, reply));
	pass2_ = RunQgate(frames, "2");
	const QgateRun &r = *pass2_;
	ASSERT_TRUE(r.ran) << r.why;
	EXPECT_TRUE(r.exit_ok) << r.err;

	int seen_moved = 0, seen_hs = 0, seen_reply = 0;
	for (const Bytes &f : r.out) {
		UdpOut u;
		if (!DecodeUdp(f, &u))
			continue;
		if (u.payload == moved) {
			seen_moved++;
			EXPECT_EQ(u.src, kNat);
			EXPECT_EQ(u.sport, nat_port) << "the rebound client must keep its NAT port";
			EXPECT_EQ(u.dst, backend) << "the rebound client must keep its backend";
			EXPECT_EQ(u.dport, kQuicBackend);
			EXPECT_TRUE(u.csum_ok);
		} else if (u.payload == hs || u.payload == reply) {
			bool is_hs = u.payload == hs;
			(is_hs ? seen_hs : seen_reply)++;
			EXPECT_EQ(u.src, kVip);
			EXPECT_EQ(u.sport, kQuicPort);
			EXPECT_EQ(u.dst, c.ip);
			// Before the move the client was at its retransmission's port; after, at the new one.
			EXPECT_EQ(u.dport, is_hs ? c.port_b : new_port)
				<< (is_hs ? "Handshake" : "short reply");
			EXPECT_EQ(memcmp(u.dmac.data(), kGwMac, 6), 0);
			EXPECT_TRUE(u.csum_ok);
		}
	}
	EXPECT_EQ(seen_moved, 1) << r.err;
	EXPECT_EQ(seen_hs, 1) << r.err;
	EXPECT_EQ(seen_reply, 1) << r.err;
	EXPECT_EQ(Total(r.err, "quic_migrations"), (uint64_t)kConns + 1) << r.err;
	EXPECT_EQ(Total(r.err, "stale_reply"), 0u) << r.err;
}

// (d) versions: [1]: Version Negotiation from the VIP, cut to size, clean for tshark.
TEST_F(DpdkQuic, UnknownVersionGetsVersionNegotiation)
{
	NEED_PASS1(r);
	const Scenario &s = TheScenario();
	const size_t vn_len = 7 + s.vn_dcid.size() + s.vn_scid.size() + 4; // one version: 1

	int vns = 0;
	for (const Bytes &f : r.out) {
		UdpOut u;
		if (!DecodeUdp(f, &u) || u.sport != kVnPort)
			continue;
		vns++;
		EXPECT_EQ(u.src, kVip);
		EXPECT_EQ(u.dst, s.vn_client);
		EXPECT_EQ(u.dport, s.vn_port);
		EXPECT_EQ(memcmp(u.dmac.data(), kGwMac, 6), 0) << "off-link client: via the gateway";
		EXPECT_EQ(u.payload.size(), vn_len);
		EXPECT_EQ(u.frame_len, 14 + 20 + 8 + vn_len) << "the 1200-byte frame must be cut to the VN";
		EXPECT_TRUE(u.csum_ok);
		qg_quic_hdr h;
		ASSERT_EQ(qg_quic_parse(u.payload.data(), u.payload.size(), 0, &h), 0);
		EXPECT_EQ(h.type, QG_QUIC_TYPE_VERSION_NEGOTIATION);
	}
	EXPECT_EQ(vns, 1) << r.err;

	std::string opts = "-d udp.port==4435,quic -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE "
			   "-Y udp.srcport==4435";
	auto rows = TsharkFields(r.out_path, opts,
				 { "frame.len", "ip.len", "udp.length", "ip.checksum.status",
				   "udp.checksum.status", "quic.version", "quic.supported_version",
				   "quic.dcid", "quic.scid", "_ws.malformed" });
	ASSERT_EQ(rows.size(), 1u) << Shell("tshark -r " + r.out_path + " " + opts + " -V 2>&1");
	const auto &f = rows[0];
	ASSERT_GE(f.size(), 9u);
	EXPECT_EQ(f[0], std::to_string(14 + 20 + 8 + vn_len));
	EXPECT_EQ(f[1], std::to_string(20 + 8 + vn_len));
	EXPECT_EQ(f[2], std::to_string(8 + vn_len));
	EXPECT_EQ(f[3], "1") << "IPv4 header checksum";
	EXPECT_EQ(f[4], "1") << "UDP checksum";
	EXPECT_EQ(f[5], "0x00000000") << "a Version Negotiation packet";
	EXPECT_EQ(f[6], "0x00000001");
	EXPECT_EQ(f[7], Hex(s.vn_scid)) << "DCID := the client's SCID";
	EXPECT_EQ(f[8], Hex(s.vn_dcid)) << "SCID := the client's DCID";
	for (size_t i = 9; i < f.size(); i++)
		EXPECT_EQ(f[i], "") << "tshark: malformed";
	// Alone in its capture, the VN earns a Note ("Unknown QUIC connection"): no warning, no error.
	std::string v = Shell("tshark -r " + r.out_path + " " + opts + " -V 2>/dev/null");
	EXPECT_NE(v.find("Version: Version Negotiation (0x00000000)"), std::string::npos) << v;
	EXPECT_NE(v.find("Supported Version: 1 (0x00000001)"), std::string::npos) << v;
	EXPECT_EQ(v.find("Malformed"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Error"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Warning"), std::string::npos) << v;

	EXPECT_EQ(Total(r.err, "quic_vn_sent"), 1u) << r.err;
	EXPECT_EQ(Total(r.err, "quic_unsupported_version"), 1u) << "the 1199-byte one: no answer\n" << r.err;
	for (const UdpOut &u : ToBackend(r, kVnBackend))
		ADD_FAILURE() << "an unknown version reached the backend: " << Hex(u.payload);
}

// (e) retry: on: a Retry whose integrity tag tshark verifies against the Initial it answers.
TEST_F(DpdkQuic, TokenlessInitialGetsVerifiedRetry)
{
	NEED_PASS1(r);
	const Scenario &s = TheScenario();

	Bytes retry_frame;
	int retries = 0;
	for (const Bytes &f : r.out) {
		UdpOut u;
		if (!DecodeUdp(f, &u) || u.sport != kRetryPort)
			continue;
		retries++;
		retry_frame = f;
		EXPECT_EQ(u.src, kVip);
		EXPECT_EQ(u.dst, s.retry_client);
		EXPECT_EQ(u.dport, s.retry_port);
		EXPECT_EQ(memcmp(u.dmac.data(), kGwMac, 6), 0);
		EXPECT_TRUE(u.csum_ok);
		EXPECT_EQ(u.frame_len, 14 + 20 + 8 + u.payload.size())
			<< "the frame must be cut to the Retry";
		EXPECT_LE(u.payload.size(), (size_t)QG_RETRY_PACKET_MAX_LEN);
		// Our own reading: a v1 Retry to the client's (empty) SCID, its tag good for the ODCID, and a
		// qgate token naming that ODCID and the Retry's SCID.
		Bytes odcid = Unhex(kRfcOdcid);
		EXPECT_EQ(
			qg_quic_retry_verify(u.payload.data(), u.payload.size(), odcid.data(), odcid.size()),
			0);
		qg_quic_hdr h;
		ASSERT_EQ(qg_quic_parse(u.payload.data(), u.payload.size(), 0, &h), 0);
		EXPECT_EQ(h.type, QG_QUIC_TYPE_RETRY);
		EXPECT_EQ(h.dcid_len, 0u);
		uint8_t o[QG_RETRY_MAX_CID_LEN], sc[QG_RETRY_MAX_CID_LEN];
		size_t olen = 0, sclen = 0;
		ASSERT_EQ(qg_retry_token_read(h.token, h.token_len, o, &olen, sc, &sclen), 0);
		EXPECT_EQ(Bytes(o, o + olen), odcid);
		EXPECT_EQ(Bytes(sc, sc + sclen), Bytes(h.scid, h.scid + h.scid_len));
	}
	ASSERT_EQ(retries, 1) << r.err;
	for (const UdpOut &u : ToBackend(r, kRetryBackend))
		ADD_FAILURE() << "an unvalidated Initial reached the backend: " << u.payload.size()
			      << " bytes";

	// tshark needs the Initial before the Retry to know the ODCID the tag covers.
	std::string pcap = dir_ + "/retry.pcap";
	WritePcap(pcap, { s.retry_initial, retry_frame });
	std::string opts = "-d udp.port==4436,quic -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE";
	std::string v = Shell("tshark -r " + pcap + " " + opts + " -V 2>/dev/null");
	size_t at = v.find("Retry Integrity Tag: ");
	ASSERT_NE(at, std::string::npos) << v;
	EXPECT_EQ(v.compare(at + 21 + 32, 11, " [verified]"), 0) << v.substr(at, 80);
	EXPECT_EQ(v.find("Malformed"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Error"), std::string::npos) << v;
	EXPECT_EQ(v.find("Expert Info (Warning"), std::string::npos) << v;
	auto rows = TsharkFields(pcap, opts + " -Y udp.srcport==4436",
				 { "ip.checksum.status", "udp.checksum.status", "quic.long.packet_type",
				   "quic.retry_integrity_tag" });
	ASSERT_EQ(rows.size(), 1u) << v;
	ASSERT_GE(rows[0].size(), 4u);
	EXPECT_EQ(rows[0][0], "1") << "IPv4 header checksum";
	EXPECT_EQ(rows[0][1], "1") << "UDP checksum";
	EXPECT_EQ(rows[0][2], "3") << "v1 Retry";

	EXPECT_EQ(Total(r.err, "quic_retry_sent"), 1u) << r.err;
}

// (f) Datagrams carrying an Initial under 1200 bytes are dropped and counted; a small Handshake is not.
TEST_F(DpdkQuic, SmallInitialsDropped)
{
	NEED_PASS1(r);
	const Scenario &s = TheScenario();

	int handshakes = 0;
	for (const UdpOut &u : ToBackend(r, kQuicBackend)) {
		EXPECT_TRUE(u.payload.size() == 1200 || u.payload == s.handshake)
			<< "a datagram with a small Initial left: " << u.payload.size() << " bytes";
		handshakes += u.payload == s.handshake;
	}
	EXPECT_EQ(handshakes, 1) << "a small Handshake carries no Initial: forwarded";
	for (const Bytes &f : r.out) {
		UdpOut u;
		if (DecodeUdp(f, &u) && u.dst.rfind("198.18.5.", 0) == 0)
			ADD_FAILURE() << "an answer to a small Initial: " << u.dst;
	}
	EXPECT_EQ(Total(r.err, "quic_initial_small"), (uint64_t)s.small_initials) << r.err;
	// Everything else of pass 1 is accounted for: 60 Initials, 31 QUIC-LB, 1 Handshake out; VN and Retry
	// back.
	EXPECT_EQ(Total(r.err, "rx_client"), (uint64_t)s.frames.size()) << r.err;
	EXPECT_EQ(Total(r.err, "tx_backend"), (uint64_t)(2 * kConns + s.lb.size() + 1)) << r.err;
	EXPECT_EQ(Total(r.err, "tx_client"), 2u) << r.err;
	EXPECT_EQ(Total(r.err, "quic_malformed"), 0u) << r.err;
}

} // namespace
