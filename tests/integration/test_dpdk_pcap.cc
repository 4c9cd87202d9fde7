// SPDX-License-Identifier: BSD-3-Clause
// The DPDK backend without a NIC: qgate (the real executable, QGATE_BIN) runs
// on a net_pcap vdev that reads a crafted capture and writes what it sends to
// another. Pass 1 sends client datagrams (IPv4 and IPv6), ARP requests, a
// neighbour solicitation and garbage; pass 2 repeats them (NAT port
// allocation is deterministic) and appends the backends' replies to the NAT
// ports seen in pass 1's output. The output is checked frame by frame here
// and for checksums by tshark.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <sched.h>
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
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/proc.h"

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif

namespace
{

using Bytes = std::vector<uint8_t>;
using qgt::ReadFile;

const uint8_t kPortMacAny[6] = { 0x02, 0x70, 0x63, 0x61, 0x70, 0x00 }; // net_pcap's default
const uint8_t kGwMac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
const uint8_t kGw6Mac[6] = { 0x02, 0, 0, 0, 0, 0xf6 };
const uint8_t kB1Mac[6] = { 0x02, 0, 0, 0, 0, 0x50 };
const uint8_t kB2Mac[6] = { 0x02, 0, 0, 0, 0, 0x51 };
const uint8_t kB6Mac[6] = { 0x02, 0, 0, 0, 0, 0x56 };

constexpr int kClients4 = 100;
constexpr int kClients6 = 10;

Bytes Ip4(const char *text)
{
	Bytes b(4);
	inet_pton(AF_INET, text, b.data());
	return b;
}

Bytes Ip6(const char *text)
{
	Bytes b(16);
	inet_pton(AF_INET6, text, b.data());
	return b;
}

std::string IpText(const uint8_t *ip, bool v6)
{
	char buf[64];
	inet_ntop(v6 ? AF_INET6 : AF_INET, ip, buf, sizeof(buf));
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

// Pseudo-header sum + the L4 bytes.
uint16_t L4Csum(const Bytes &src, const Bytes &dst, uint8_t proto, const uint8_t *l4, size_t len)
{
	uint32_t s = SumWords(src.data(), src.size());
	s = SumWords(dst.data(), dst.size(), s);
	s += proto + (uint32_t)len;
	return Fold(SumWords(l4, len, s));
}

// Byte by byte: GCC 12 at -O3 warns (falsely, -Warray-bounds) on vector::insert of small arrays.
void Append(Bytes &b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b.push_back(p[i]);
}

Bytes Eth(const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	Bytes b;
	Append(b, dst, 6);
	Append(b, src, 6);
	b.push_back((uint8_t)(type >> 8));
	b.push_back((uint8_t)type);
	return b;
}

Bytes Udp(const uint8_t *smac, const Bytes &src, uint16_t sport, const Bytes &dst, uint16_t dport,
	  const std::string &payload)
{
	bool v6 = src.size() == 16;
	Bytes f = Eth(kPortMacAny, smac, v6 ? 0x86dd : 0x0800);
	size_t l3 = f.size(), ulen = 8 + payload.size();
	if (v6) {
		Bytes h(40, 0);
		h[0] = 0x60;
		Put16(h, 4, (uint16_t)ulen);
		h[6] = 17;
		h[7] = 64;
		std::copy(src.begin(), src.end(), h.begin() + 8);
		std::copy(dst.begin(), dst.end(), h.begin() + 24);
		Append(f, h.data(), h.size());
	} else {
		Bytes h(20, 0);
		h[0] = 0x45;
		Put16(h, 2, (uint16_t)(20 + ulen));
		Put16(h, 4, 0x1234);
		h[8] = 64;
		h[9] = 17;
		std::copy(src.begin(), src.end(), h.begin() + 12);
		std::copy(dst.begin(), dst.end(), h.begin() + 16);
		Put16(h, 10, Fold(SumWords(h.data(), 20)));
		Append(f, h.data(), h.size());
	}
	size_t l4 = f.size();
	Bytes u(8, 0);
	Put16(u, 0, sport);
	Put16(u, 2, dport);
	Put16(u, 4, (uint16_t)ulen);
	Append(u, reinterpret_cast<const uint8_t *>(payload.data()), payload.size());
	uint16_t c = L4Csum(src, dst, 17, u.data(), u.size());
	Put16(u, 6, c ? c : 0xffff);
	Append(f, u.data(), u.size());
	(void)l3;
	(void)l4;
	return f;
}

Bytes ArpRequest(const uint8_t *smac, const Bytes &sip, const Bytes &tip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	Bytes f = Eth(bcast, smac, 0x0806);
	const uint8_t hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	Append(f, hdr, 8);
	Append(f, smac, 6);
	Append(f, sip.data(), sip.size());
	f.resize(f.size() + 6, 0);
	Append(f, tip.data(), tip.size());
	f.resize(60, 0);
	return f;
}

Bytes NeighborSolicit(const uint8_t *smac, const Bytes &sip, const Bytes &target)
{
	Bytes dst = Ip6("ff02::1:ff00:0");
	std::copy(target.begin() + 13, target.end(), dst.begin() + 13);
	const uint8_t mdst[6] = { 0x33, 0x33, 0xff, target[13], target[14], target[15] };
	Bytes f = Eth(mdst, smac, 0x86dd);
	Bytes icmp(8, 0);
	icmp[0] = 135;
	Append(icmp, target.data(), target.size());
	icmp.push_back(1);
	icmp.push_back(1);
	Append(icmp, smac, 6);
	Put16(icmp, 2, L4Csum(sip, dst, 58, icmp.data(), icmp.size()));
	Bytes h(40, 0);
	h[0] = 0x60;
	Put16(h, 4, (uint16_t)icmp.size());
	h[6] = 58;
	h[7] = 255;
	std::copy(sip.begin(), sip.end(), h.begin() + 8);
	std::copy(dst.begin(), dst.end(), h.begin() + 24);
	Append(f, h.data(), h.size());
	Append(f, icmp.data(), icmp.size());
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

// A UDP frame of the output, decoded (untagged Ethernet only: qgate sends what it received).
struct UdpOut {
	bool v6 = false;
	std::string src, dst;
	uint16_t sport = 0, dport = 0;
	std::string payload;
	Bytes dmac;
	bool csum_ok = false;
	uint8_t ttl = 0;
};

bool DecodeUdp(const Bytes &f, UdpOut *u)
{
	if (f.size() < 14)
		return false;
	uint16_t type = Get16(&f[12]);
	const uint8_t *p = f.data() + 14;
	size_t n = f.size() - 14;
	Bytes src, dst;
	const uint8_t *l4;
	size_t l4len;
	u->dmac.assign(f.begin(), f.begin() + 6);
	if (type == 0x0800 && n >= 20 && p[9] == 17) {
		size_t ihl = (p[0] & 15) * 4u;
		u->v6 = false;
		src.assign(p + 12, p + 16);
		dst.assign(p + 16, p + 20);
		u->ttl = p[8];
		l4 = p + ihl;
		l4len = Get16(p + 2) - ihl;
		bool ip_ok = Fold(SumWords(p, ihl)) == 0;
		uint16_t c = Get16(l4 + 6);
		u->csum_ok = ip_ok && (c == 0 || L4Csum(src, dst, 17, l4, l4len) == 0);
	} else if (type == 0x86dd && n >= 48 && p[6] == 17) {
		u->v6 = true;
		src.assign(p + 8, p + 24);
		dst.assign(p + 24, p + 40);
		u->ttl = p[7];
		l4 = p + 40;
		l4len = Get16(p + 4);
		u->csum_ok = L4Csum(src, dst, 17, l4, l4len) == 0;
	} else {
		return false;
	}
	u->src = IpText(src.data(), u->v6);
	u->dst = IpText(dst.data(), u->v6);
	u->sport = Get16(l4);
	u->dport = Get16(l4 + 2);
	u->payload.assign(l4 + 8, l4 + l4len);
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

class DpdkPcap : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		if (system("command -v tshark >/dev/null 2>&1") != 0)
			GTEST_SKIP() << "tshark is not installed";
		tmp_ = std::make_unique<qgt::TempDir>("qgate-dpdk", "/tmp");
		ASSERT_TRUE(tmp_->ok());
		dir_ = tmp_->path();
	}
	void TearDown() override
	{
		tmp_.reset();
		// The EAL's runtime directory of our --file-prefix (sockets, config): nothing else uses it.
		(void)!system(("rm -rf /var/run/dpdk/qgate-test-" + std::to_string(getpid())).c_str());
	}

	std::string Config(const std::string &in, const std::string &out, const std::string &port_extra = "")
	{
		std::string prefix = "qgate-test-" + std::to_string(getpid());
		return "dataplane:\n"
		       "  backend: dpdk\n"
		       "  cores: [" +
		       std::to_string(qgt::FirstAllowedCpu()) +
		       "]\n"
		       "  max_datagram: 1400\n"
		       "  dpdk:\n"
		       "    eal_args: [--no-huge, -m, \"512\", --no-pci, --file-prefix, " +
		       prefix + ", --vdev, \"net_pcap0,rx_pcap=" + in + ",tx_pcap=" + out +
		       "\"]\n"
		       "    mbufs: 4095\n"
		       "    ports:\n"
		       "      - name: net_pcap0\n"
		       "        addresses: [192.0.2.1/24, \"2001:db8::1/64\"]\n"
		       "        gateway: 192.0.2.254\n"
		       "        gateway6: \"2001:db8::fe\"\n"
		       "        nat_addresses: [192.0.2.10, \"2001:db8::10\"]\n"
		       "        neighbors:\n"
		       "          - {address: 192.0.2.254, mac: \"02:00:00:00:00:fe\"}\n"
		       "          - {address: \"2001:db8::fe\", mac: \"02:00:00:00:00:f6\"}\n"
		       "          - {address: 192.0.2.50, mac: \"02:00:00:00:00:50\"}\n"
		       "          - {address: 192.0.2.51, mac: \"02:00:00:00:00:51\"}\n"
		       "          - {address: \"2001:db8::50\", mac: \"02:00:00:00:00:56\"}\n" +
		       port_extra +
		       "services:\n"
		       "  - name: v4\n"
		       "    listen: 192.0.2.100:4433\n"
		       "    backends: [{address: 192.0.2.50:5001}, {address: 192.0.2.51:5001}]\n"
		       "  - name: v6\n"
		       "    listen: \"[2001:db8::100]:4433\"\n"
		       "    backends: [{address: \"[2001:db8::50]:5001\"}]\n";
	}

	// Run qgate over in -> out. @return false (with *why) when EAL cannot start here.
	bool RunQgate(const std::vector<Bytes> &frames, const std::string &tag, std::string *err_text,
		      std::string *why, const std::string &port_extra = "", int (*pre_exec)() = nullptr)
	{
		std::string in = dir_ + "/in-" + tag + ".pcap", out = dir_ + "/out-" + tag + ".pcap";
		std::string cfg = dir_ + "/qgate-" + tag + ".yaml", err = dir_ + "/stderr-" + tag;
		WritePcap(in, frames);
		{
			std::ofstream f(cfg);
			f << Config(in, out, port_extra);
		}
		qgt::ChildOptions opts;
		opts.pre_exec = pre_exec;
		// DPDK's own allocations are not ours to check (EAL keeps memory until exit).
		opts.env = { "ASAN_OPTIONS=detect_leaks=0" };
		qgt::Child q({ QGATE_BIN, "-c", cfg }, dir_ + "/stdout-" + tag, err, opts);
		if (!q.started()) {
			*why = "fork failed";
			return false;
		}
		// net_pcap reads its file once: wait until qgate is ready and idle, then stop it.
		bool exited = !q.WaitForErr("ready", 20000) && q.Exited();
		if (!exited) {
			std::this_thread::sleep_for(std::chrono::milliseconds(1500));
			q.Stop(10000);
		}
		*err_text = ReadFile(err);
		if (exited && err_text->find("EAL initialisation failed") != std::string::npos) {
			*why = "EAL cannot initialise here:\n" + *err_text;
			return false;
		}
		EXPECT_TRUE(q.code() == 0) << *err_text;
		out_ = out;
		return true;
	}

	std::unique_ptr<qgt::TempDir> tmp_;
	std::string dir_, out_;
};

uint64_t Total(const std::string &err, const std::string &name)
{
	std::string key = "qgate: total " + name + " = ";
	size_t pos = err.find(key);
	return pos == std::string::npos ? 0 : strtoull(err.c_str() + pos + key.size(), nullptr, 10);
}

// tshark's own verdict: every frame decoded, no checksum Bad (status 0), no "Bad"/"malformed" expert info.
void CheckWithTshark(const std::string &pcap, size_t frames, int udp_frames)
{
	std::string out = Shell(
		"tshark -r " + pcap +
		" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -T fields -E separator='|' "
		"-e frame.number -e ip.checksum.status -e udp.checksum.status -e icmpv6.checksum.status "
		"-e _ws.expert.message 2>&1");
	std::istringstream lines(out);
	std::string line;
	size_t n = 0;
	int udp_good = 0;

	while (std::getline(lines, line)) {
		if (line.find("Running as user") != std::string::npos)
			continue;
		std::vector<std::string> f;
		std::stringstream ls(line);
		std::string field;
		while (std::getline(ls, field, '|'))
			f.push_back(field);
		ASSERT_GE(f.size(), 4u) << "tshark: " << line;
		n++;
		EXPECT_NE(f[1], "0") << "bad IPv4 header checksum: " << line;
		EXPECT_NE(f[2], "0") << "bad UDP checksum: " << line;
		EXPECT_NE(f[3], "0") << "bad ICMPv6 checksum: " << line;
		udp_good += f[2] == "1";
		if (f.size() > 4) {
			EXPECT_EQ(f[4].find("Bad"), std::string::npos) << line;
			EXPECT_EQ(f[4].find("alformed"), std::string::npos) << line;
		}
	}
	EXPECT_EQ(n, frames) << out;
	EXPECT_EQ(udp_good, udp_frames) << out;
}

std::vector<Bytes> Pass1Frames()
{
	std::vector<Bytes> f;
	Bytes vip4 = Ip4("192.0.2.100"), vip6 = Ip6("2001:db8::100");

	for (int i = 0; i < kClients4; i++) {
		std::string ip = "198.18.0." + std::to_string(i + 1);
		f.push_back(Udp(kGwMac, Ip4(ip.c_str()), (uint16_t)(40000 + i), vip4, 4433,
				"c4-" + std::to_string(i) + "-payload"));
	}
	for (int i = 0; i < kClients6; i++) {
		std::string ip = "2001:db8:ffff::" + std::to_string(i + 1);
		f.push_back(Udp(kGw6Mac, Ip6(ip.c_str()), (uint16_t)(50000 + i), vip6, 4433,
				"c6-" + std::to_string(i) + "-payload"));
	}
	// Neighbour discovery for the VIP, the port address, the NAT address, and one not ours.
	f.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.100")));
	f.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.1")));
	f.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.10")));
	f.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.77")));
	f.push_back(NeighborSolicit(kGw6Mac, Ip6("2001:db8::fe"), Ip6("2001:db8::1")));
	// Garbage, one per reason.
	f.push_back(Bytes(10, 0xab)); // malformed_l2
	Bytes bad_ihl = Udp(kGwMac, Ip4("198.18.1.1"), 1, Ip4("192.0.2.100"), 4433, "x");
	bad_ihl[14] = 0x43; // malformed_l3
	f.push_back(bad_ihl);
	Bytes cut = Udp(kGwMac, Ip4("198.18.1.2"), 1, Ip4("192.0.2.100"), 4433, "xxxxxxxx");
	Put16(cut, 14 + 20 + 4, 200); // UDP length beyond IP's: malformed_l4
	f.push_back(cut);
	Bytes frag = Udp(kGwMac, Ip4("198.18.1.3"), 1, Ip4("192.0.2.100"), 4433, "frag");
	frag[14 + 6] = 0x20; // more fragments: malformed_fragment
	f.push_back(frag);
	Bytes random(64);
	for (size_t i = 0; i < random.size(); i++)
		random[i] = (uint8_t)(i * 37 + 11);
	random[12] = 0x88; // an ethertype nobody uses here: not_ours
	random[13] = 0xb5;
	f.push_back(random);
	Bytes lldp = Eth(kPortMacAny, kGwMac, 0x88cc); // non-IP ethertype: not_ours
	lldp.resize(60, 0);
	f.push_back(lldp);
	// UDP to the port's own address but no service: not_ours.
	f.push_back(Udp(kGwMac, Ip4("198.18.1.4"), 1, Ip4("192.0.2.1"), 9999, "nobody"));
	return f;
}

TEST_F(DpdkPcap, NatBothWaysArpNdAndGarbage)
{
	std::string err, why;
	std::vector<Bytes> pass1 = Pass1Frames();

	ASSERT_FALSE(HasFatalFailure());
	if (!RunQgate(pass1, "1", &err, &why))
		GTEST_SKIP() << why;
	std::vector<Bytes> out1 = ReadPcap(out_);

	// Every client datagram left once, NAT'd toward a configured backend with its payload intact.
	std::map<std::string, UdpOut> by_payload;
	std::vector<Bytes> replies;
	std::set<std::string> backends4 = { "192.0.2.50", "192.0.2.51" };
	uint64_t udp_bytes1 = 0;
	for (const Bytes &f : out1) {
		UdpOut u;
		if (!DecodeUdp(f, &u))
			continue;
		udp_bytes1 += u.payload.size();
		EXPECT_TRUE(u.csum_ok) << u.payload;
		EXPECT_EQ(u.ttl, 63) << "TTL/hop limit decremented";
		EXPECT_GE(u.sport, 1024) << u.payload;
		EXPECT_EQ(u.dport, 5001);
		if (u.v6) {
			EXPECT_EQ(u.src, "2001:db8::10");
			EXPECT_EQ(u.dst, "2001:db8::50");
			EXPECT_EQ(memcmp(u.dmac.data(), kB6Mac, 6), 0);
		} else {
			EXPECT_EQ(u.src, "192.0.2.10");
			EXPECT_TRUE(backends4.count(u.dst)) << u.dst;
			EXPECT_EQ(memcmp(u.dmac.data(), u.dst == "192.0.2.50" ? kB1Mac : kB2Mac, 6), 0);
		}
		EXPECT_TRUE(by_payload.emplace(u.payload, u).second) << "sent twice: " << u.payload;
		// The backend's answer, to the NAT address and port it saw.
		const uint8_t *bmac = u.v6 ? kB6Mac : (u.dst == "192.0.2.50" ? kB1Mac : kB2Mac);
		Bytes bsrc = u.v6 ? Ip6(u.dst.c_str()) : Ip4(u.dst.c_str());
		Bytes bdst = u.v6 ? Ip6(u.src.c_str()) : Ip4(u.src.c_str());
		replies.push_back(Udp(bmac, bsrc, u.dport, bdst, u.sport, "r-" + u.payload));
	}
	EXPECT_EQ(by_payload.size(), (size_t)(kClients4 + kClients6)) << err;
	for (int i = 0; i < kClients4; i++)
		EXPECT_TRUE(by_payload.count("c4-" + std::to_string(i) + "-payload")) << i;
	for (int i = 0; i < kClients6; i++)
		EXPECT_TRUE(by_payload.count("c6-" + std::to_string(i) + "-payload")) << i;

	// ARP replies for the owned addresses, none for 192.0.2.77; an NA for the NS.
	std::set<std::string> arp_answered;
	int na = 0;
	for (const Bytes &f : out1) {
		if (f.size() >= 42 && Get16(&f[12]) == 0x0806 && Get16(&f[20]) == 2) {
			arp_answered.insert(IpText(&f[28], false));
			EXPECT_EQ(memcmp(&f[0], kGwMac, 6), 0) << "reply goes to the asker";
			EXPECT_EQ(IpText(&f[38], false), "192.0.2.254");
		}
		if (f.size() >= 14 + 40 + 24 && Get16(&f[12]) == 0x86dd && f[20] == 58 && f[54] == 136) {
			na++;
			EXPECT_EQ(IpText(&f[54 + 8], true), "2001:db8::1");
			EXPECT_EQ(IpText(&f[38], true), "2001:db8::fe");
			EXPECT_EQ(memcmp(&f[0], kGw6Mac, 6), 0);
		}
	}
	EXPECT_EQ(arp_answered, (std::set<std::string>{ "192.0.2.100", "192.0.2.1", "192.0.2.10" }));
	EXPECT_EQ(na, 1);

	// Garbage counted by reason.
	EXPECT_EQ(Total(err, "malformed_l2"), 1u) << err;
	EXPECT_EQ(Total(err, "malformed_l3"), 1u) << err;
	EXPECT_EQ(Total(err, "malformed_l4"), 1u) << err;
	EXPECT_EQ(Total(err, "malformed_fragment"), 1u) << err;
	EXPECT_EQ(Total(err, "not_ours"), 4u) << err; // ARP for .77, random, LLDP, UDP to no service
	EXPECT_EQ(Total(err, "arp_replies"), 3u) << err;
	EXPECT_EQ(Total(err, "nd_replies"), 1u) << err;
	EXPECT_EQ(Total(err, "rx_client"), (uint64_t)(kClients4 + kClients6)) << err;
	EXPECT_EQ(Total(err, "tx_backend"), (uint64_t)(kClients4 + kClients6)) << err;
	// tx_bytes: the UDP payload bytes of the frames that left, ARP and ND answers not included.
	EXPECT_EQ(Total(err, "tx_bytes"), udp_bytes1) << err;
	EXPECT_EQ(Total(err, "neigh_unresolved"), 0u) << err;
	// The port's own count: every frame of the capture in, every frame written out, none missed.
	EXPECT_EQ(Total(err, "port net_pcap0 rx_packets"), pass1.size()) << err;
	EXPECT_EQ(Total(err, "port net_pcap0 tx_packets"), out1.size()) << err;
	EXPECT_NE(err.find("qgate: total port net_pcap0 rx_missed = 0"), std::string::npos) << err;

	// tshark agrees on every checksum.
	CheckWithTshark(out_, out1.size(), kClients4 + kClients6);

	// Pass 2: the same input (same NAT ports), then the backends' replies.
	std::vector<Bytes> pass2 = pass1;
	pass2.insert(pass2.end(), replies.begin(), replies.end());
	ASSERT_TRUE(RunQgate(pass2, "2", &err, &why)) << why;
	std::vector<Bytes> out2 = ReadPcap(out_);
	int back = 0;
	uint64_t udp_bytes2 = 0;
	for (const Bytes &f : out2) {
		UdpOut u;
		if (!DecodeUdp(f, &u))
			continue;
		udp_bytes2 += u.payload.size();
		if (u.payload.rfind("r-", 0) != 0)
			continue;
		back++;
		EXPECT_TRUE(u.csum_ok) << u.payload;
		EXPECT_EQ(u.sport, 4433);
		int idx = atoi(u.payload.c_str() + 5);
		if (u.v6) {
			EXPECT_EQ(u.src, "2001:db8::100");
			EXPECT_EQ(u.dst, "2001:db8:ffff::" + std::to_string(idx + 1)) << u.payload;
			EXPECT_EQ(u.dport, 50000 + idx) << u.payload;
			EXPECT_EQ(memcmp(u.dmac.data(), kGw6Mac, 6), 0) << "off-link client: via gateway6";
		} else {
			EXPECT_EQ(u.src, "192.0.2.100");
			EXPECT_EQ(u.dst, "198.18.0." + std::to_string(idx + 1)) << u.payload;
			EXPECT_EQ(u.dport, 40000 + idx) << u.payload;
			EXPECT_EQ(memcmp(u.dmac.data(), kGwMac, 6), 0) << "off-link client: via gateway";
		}
	}
	EXPECT_EQ(back, kClients4 + kClients6) << err;
	EXPECT_EQ(Total(err, "rx_backend"), (uint64_t)(kClients4 + kClients6)) << err;
	EXPECT_EQ(Total(err, "tx_client"), (uint64_t)(kClients4 + kClients6)) << err;
	EXPECT_EQ(Total(err, "stale_reply"), 0u) << err;
	EXPECT_EQ(Total(err, "tx_bytes"), udp_bytes2) << err;
	CheckWithTshark(out_, out2.size(), 2 * (kClients4 + kClients6));
}

// An IPv4 packet of protocol proto from smac/src to the port's MAC and dst, l4 as given.
Bytes Ip4Packet(const uint8_t *smac, const Bytes &src, const Bytes &dst, uint8_t proto, Bytes l4)
{
	Bytes f = Eth(kPortMacAny, smac, 0x0800);
	Bytes h(20, 0);
	h[0] = 0x45;
	Put16(h, 2, (uint16_t)(20 + l4.size()));
	h[8] = 64;
	h[9] = proto;
	std::copy(src.begin(), src.end(), h.begin() + 12);
	std::copy(dst.begin(), dst.end(), h.begin() + 16);
	Put16(h, 10, Fold(SumWords(h.data(), 20)));
	Append(f, h.data(), h.size());
	Append(f, l4.data(), l4.size());
	return f;
}

Bytes TcpSyn(const uint8_t *smac, const Bytes &src, const Bytes &dst, uint16_t dport)
{
	Bytes t(20, 0);
	Put16(t, 0, 40123);
	Put16(t, 2, dport);
	t[4] = 1; // sequence number
	t[12] = 5 << 4;
	t[13] = 0x02; // SYN
	Put16(t, 14, 64240);
	Put16(t, 16, L4Csum(src, dst, 6, t.data(), t.size()));
	return Ip4Packet(smac, src, dst, 6, t);
}

Bytes IcmpEcho(const uint8_t *smac, const Bytes &src, const Bytes &dst)
{
	Bytes e = { 8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g' };
	Put16(e, 2, Fold(SumWords(e.data(), e.size())));
	return Ip4Packet(smac, src, dst, 1, e);
}

// In the child before exec: a network namespace of its own, so the TAP and its addresses
// stay out of the machine's.
int NewNetns()
{
	return unshare(CLONE_NEWNET);
}

// kernel_tap: what qgate does not own goes to the kernel, which answers through the port.
TEST_F(DpdkPcap, KernelTapCarriesWhatIsNotOursBothWays)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root (a network namespace and a TAP interface)";
	if (access("/dev/net/tun", R_OK | W_OK) != 0)
		GTEST_SKIP() << "no /dev/net/tun here: the kernel has no TUN/TAP";
	pid_t probe = fork();
	if (probe == 0)
		_exit(NewNetns() == 0 ? 0 : 1);
	int st = 0;
	ASSERT_GT(probe, 0);
	ASSERT_EQ(waitpid(probe, &st, 0), probe);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		GTEST_SKIP() << "cannot make a network namespace here (unshare(CLONE_NEWNET) refused)";
	const uint8_t c1[6] = { 0x02, 0, 0, 0, 0, 0x60 }, c2[6] = { 0x02, 0, 0, 0, 0, 0x61 };
	Bytes own = Ip4("192.0.2.1");
	std::vector<Bytes> frames;
	// For the kernel: a TCP SYN and a ping from on-link hosts (the kernel asks their MACs to
	// answer), LLDP, and UDP to the port's address where no service listens.
	frames.push_back(TcpSyn(c1, Ip4("192.0.2.60"), own, 22));
	frames.push_back(IcmpEcho(c2, Ip4("192.0.2.61"), own));
	Bytes lldp = Eth(kPortMacAny, kGwMac, 0x88cc);
	lldp.resize(60, 0);
	frames.push_back(lldp);
	frames.push_back(Udp(kGwMac, Ip4("198.18.1.4"), 1, own, 9999, "nobody"));
	// Still qgate's: a client datagram to the VIP and ARP for an owned address; not the kernel's
	// either: ARP for an address nobody here owns.
	frames.push_back(Udp(kGwMac, Ip4("198.18.0.1"), 40000, Ip4("192.0.2.100"), 4433, "c4-0-payload"));
	frames.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.100")));
	frames.push_back(ArpRequest(kGwMac, Ip4("192.0.2.254"), Ip4("192.0.2.77")));

	std::string err, why;
	if (!RunQgate(frames, "tap", &err, &why, "        kernel_tap: qgk0\n", NewNetns))
		GTEST_SKIP() << why;
	if (err.find("cannot create kernel_tap") != std::string::npos)
		GTEST_SKIP() << "this kernel refuses the TAP interface:\n" << err;
	ASSERT_NE(err.find("goes to the kernel on qgk0"), std::string::npos) << err;

	EXPECT_EQ(Total(err, "kernel_tx"), 4u) << err;
	EXPECT_EQ(Total(err, "not_ours"), 1u) << err; // the ARP for .77
	EXPECT_EQ(Total(err, "kernel_full"), 0u) << err;
	EXPECT_EQ(Total(err, "tx_backend"), 1u) << err;
	EXPECT_EQ(Total(err, "arp_replies"), 1u) << err;

	// The kernel answered: it asked for the MACs of the SYN's and the ping's senders, from the
	// port's MAC and address, out through the port.
	std::set<std::string> asked;
	for (const Bytes &f : ReadPcap(out_)) {
		if (f.size() >= 42 && Get16(&f[12]) == 0x0806 && Get16(&f[20]) == 1) {
			EXPECT_EQ(memcmp(&f[6], kPortMacAny, 6), 0)
				<< "the kernel speaks with the port's MAC";
			EXPECT_EQ(memcmp(&f[22], kPortMacAny, 6), 0);
			EXPECT_EQ(IpText(&f[28], false), "192.0.2.1") << "and the port's address";
			asked.insert(IpText(&f[38], false));
		}
	}
	EXPECT_TRUE(asked.count("192.0.2.60")) << err;
	EXPECT_TRUE(asked.count("192.0.2.61")) << err;
	EXPECT_GE(Total(err, "kernel_rx"), 2u) << err;
}

} // namespace
