// SPDX-License-Identifier: BSD-3-Clause
// Configuration loader, Bluetooth: backend paths (bt://, bt-le://, udp://,
// paths lists) and the bridges section, valid documents and each problem at
// its line and column.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <string>

#include "qgate/bridge.h"
#include "unit/config_test_util.h"

using namespace qgcfg;

namespace
{

const uint8_t kDev[6] = { 0x00, 0x1A, 0x7D, 0xDA, 0x71, 0x13 };

// kServices, then "bridges:" (line 6), "  - type: bluetooth" (line 7), then lines from line 8.
std::string Bridge(const std::string &lines)
{
	return kServices + "bridges:\n  - type: bluetooth\n" + lines;
}

// One service whose backends (from line 5, "      - " prefix) are given.
std::string Backends(const std::string &lines)
{
	return "services:\n"		      // 1
	       "  - name: echo\n"	      // 2
	       "    listen: 127.0.0.1:4433\n" // 3
	       "    backends:\n" +	      // 4
	       lines;
}

} // namespace

TEST(ConfigBridge, FullEntryRoundTrips)
{
	Result r;

	Load(kServices + "bridges:\n"
			 "  - type: bluetooth\n"
			 "    adapter: hci1\n"
			 "    transport: le\n"
			 "    psm: 0x0081\n"
			 "    service: echo\n"
			 "    max_links: 4\n"
			 "    security: high\n"
			 "    allow: [00:1A:7D:DA:71:13, \"aa:bb:cc:dd:ee:ff\"]\n"
			 "  - {type: bluetooth, psm: 4097, service: echo}\n",
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	ASSERT_EQ(r.cfg->n_bridges, 2u);
	const qg_config_bridge &a = r.cfg->bridges[0];
	EXPECT_EQ(a.type, QG_CONFIG_BRIDGE_BLUETOOTH);
	EXPECT_STREQ(a.adapter, "hci1");
	EXPECT_EQ(a.transport, QG_CONFIG_BT_LE);
	EXPECT_EQ(a.psm, 0x81);
	EXPECT_EQ(a.service, 0u);
	EXPECT_EQ(a.max_links, 4u);
	EXPECT_EQ(a.security, QG_CONFIG_BT_SEC_HIGH);
	ASSERT_EQ(a.n_allow, 2u);
	EXPECT_EQ(memcmp(a.allow[0], kDev, 6), 0);
	EXPECT_EQ(a.allow[1][0], 0xaa);
	EXPECT_EQ(a.allow[1][5], 0xff);
	EXPECT_EQ(a.line, 7);
	// Defaults.
	const qg_config_bridge &b = r.cfg->bridges[1];
	EXPECT_STREQ(b.adapter, "hci0");
	EXPECT_EQ(b.transport, QG_CONFIG_BT_BREDR);
	EXPECT_EQ(b.psm, 0x1001);
	EXPECT_EQ(b.max_links, (uint32_t)QG_CONFIG_BRIDGE_LINKS_DFLT);
	EXPECT_EQ(b.security, QG_CONFIG_BT_SEC_MEDIUM);
	EXPECT_EQ(b.n_allow, 0u);
	EXPECT_TRUE(qg_bridge_configured(r.cfg));
}

TEST(ConfigBridge, AdapterByAddressAndSecondService)
{
	Result r;

	Load(kServices +
		     "  - name: other\n"
		     "    listen: 127.0.0.1:4434\n"
		     "    backends: [{address: 127.0.0.1:5002}]\n"
		     "bridges:\n"
		     "  - {type: bluetooth, adapter: \"00:1a:7d:da:71:13\", psm: 0x1003, service: other}\n",
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_STREQ(r.cfg->bridges[0].adapter, "00:1A:7D:DA:71:13");
	EXPECT_EQ(r.cfg->bridges[0].service, 1u);
}

TEST(ConfigBridge, PlainConfigHasOneUdpPathPerBackend)
{
	Result r;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->n_bridges, 0u);
	const qg_config_backend &bk = r.cfg->services[0].backends[0];
	ASSERT_EQ(bk.n_paths, 1u);
	EXPECT_EQ(bk.paths[0].kind, QG_CONFIG_PATH_UDP);
	EXPECT_TRUE(qg_addr_equal(&bk.paths[0].addr, &bk.addr));
	EXPECT_EQ(bk.paths[0].line, 5);
	EXPECT_EQ(bk.paths[0].column, 18);
	EXPECT_FALSE(qg_bridge_configured(r.cfg));
}

TEST(ConfigBridge, BluetoothBackendsAndPaths)
{
	Result r;

	Load(Backends("      - address: bt://00:1A:7D:DA:71:13/0x1001\n"	       // 5
		      "      - address: bt-le://00:1A:7D:DA:71:13/0x0080\n"	       // 6
		      "      - address: udp://127.0.0.1:5001\n"			       // 7
		      "      - paths: [bt://00:1A:7D:DA:71:14/4097, 127.0.0.1:5002]\n" // 8
		      "        weight: 3\n"					       // 9
		      "      - paths:\n"					       // 10
		      "          - \"udp://[::1]:5003\"\n"			       // 11
		      "          - bt://00:1A:7D:DA:71:15/0x1001\n"),		       // 12
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config_service &s = r.cfg->services[0];
	ASSERT_EQ(s.n_backends, 5u);
	// A Bluetooth-only backend has no IP address: family 0.
	ASSERT_EQ(s.backends[0].n_paths, 1u);
	EXPECT_EQ(s.backends[0].paths[0].kind, QG_CONFIG_PATH_BT_BREDR);
	EXPECT_EQ(memcmp(s.backends[0].paths[0].bdaddr, kDev, 6), 0);
	EXPECT_EQ(s.backends[0].paths[0].psm, 0x1001);
	EXPECT_EQ(s.backends[0].addr.family, 0);
	EXPECT_EQ(s.backends[1].paths[0].kind, QG_CONFIG_PATH_BT_LE);
	EXPECT_EQ(s.backends[1].paths[0].psm, 0x80);
	EXPECT_EQ(s.backends[2].paths[0].kind, QG_CONFIG_PATH_UDP);
	EXPECT_EQ(Addr(s.backends[2].addr), "127.0.0.1:5001");
	// Several paths: addr is the first udp one, wherever it is listed.
	const qg_config_backend &m = s.backends[3];
	ASSERT_EQ(m.n_paths, 2u);
	EXPECT_EQ(m.paths[0].kind, QG_CONFIG_PATH_BT_BREDR);
	EXPECT_EQ(m.paths[0].psm, 4097);
	EXPECT_EQ(m.paths[0].line, 8);
	EXPECT_EQ(m.paths[0].column, 17);
	EXPECT_EQ(m.paths[1].kind, QG_CONFIG_PATH_UDP);
	EXPECT_EQ(Addr(m.addr), "127.0.0.1:5002");
	EXPECT_EQ(m.weight, 3u);
	EXPECT_EQ(Addr(s.backends[4].addr), "[::1]:5003");
	EXPECT_EQ(s.backends[4].paths[1].kind, QG_CONFIG_PATH_BT_BREDR);
	EXPECT_TRUE(qg_bridge_configured(r.cfg));
}

// ---- backend paths: one problem each ----

TEST(ConfigBridgeErrors, BadBluetoothPaths)
{
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71/0x1001\n"), 5, 18,
		       "address: '00:1A:7D:DA:71' is not a Bluetooth device address");
	ExpectOneError(Backends("      - address: bt://00:00:00:00:00:00/0x1001\n"), 5, 18,
		       "is not a Bluetooth device address");
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13\n"), 5, 18,
		       "is not a Bluetooth path (expected bt://BDADDR/PSM");
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13/0x1000\n"), 5, 18,
		       "address: PSM 0x1000 is not valid for BR/EDR (odd, with bit 8 clear");
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13/0x0101\n"), 5, 18,
		       "PSM 0x0101 is not valid for BR/EDR");
	ExpectOneError(Backends("      - address: bt-le://00:1A:7D:DA:71:13/0x1001\n"), 5, 18,
		       "address: PSM 0x1001 is out of range for LE (0x0001..0x00ff");
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13/psm\n"), 5, 18,
		       "address: PSM 'psm' is not a number");
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13/0x10001\n"), 5, 18,
		       "is not a number (expected 0x0001..0xffff or decimal)");
	ExpectOneError(Backends("      - address: tcp://127.0.0.1:5001\n"), 5, 18,
		       "address: 'tcp://127.0.0.1:5001' has an unknown scheme");
	ExpectOneError(Backends("      - address: udp://127.0.0.1\n"), 5, 18,
		       "address: 'udp://127.0.0.1' is not a udp path");
	// A plain address keeps its old message.
	ExpectOneError(Backends("      - address: nowhere\n"), 5, 18,
		       "address: 'nowhere' is not an address (expected IPv4:port or [IPv6]:port");
}

TEST(ConfigBridgeErrors, PathsList)
{
	ExpectOneError(Backends("      - address: 127.0.0.1:5001\n"
				"        paths: [127.0.0.1:5002]\n"),
		       6, 9, "paths and address are exclusive");
	ExpectOneError(Backends("      - paths: []\n"), 5, 16, "paths: 0 entries, expected 1..4");
	ExpectOneError(Backends("      - paths: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3, 127.0.0.1:4, "
				"127.0.0.1:5]\n"),
		       5, 16, "paths: 5 entries, expected 1..4");
	ExpectOneError(Backends("      - paths: 127.0.0.1:5001\n"), 5, 16, "paths: expected a sequence");
	ExpectOneError(Backends("      - paths: [127.0.0.1:5001, bt://00:1A:7D:DA:71:13/2]\n"), 5, 33,
		       "paths: PSM 0x0002 is not valid for BR/EDR");
	ExpectOneError(Backends("      - weight: 2\n"), 5, 9, "backend is missing required key 'address'");
}

TEST(ConfigBridgeErrors, DuplicatePaths)
{
	// Within one backend.
	ExpectOneError(
		Backends("      - paths: [bt://00:1A:7D:DA:71:13/0x1001, bt://00:1a:7d:da:71:13/4097]\n"), 5,
		48, "duplicate path bt://00:1A:7D:DA:71:13/0x1001 (first at line 5)");
	// Across backends, Bluetooth.
	ExpectOneError(Backends("      - address: bt://00:1A:7D:DA:71:13/0x1001\n"
				"      - paths: [127.0.0.1:5001, bt://00:1A:7D:DA:71:13/0x1001]\n"),
		       6, 33, "duplicate path bt://00:1A:7D:DA:71:13/0x1001 (first at line 5)");
	// The same device on BR/EDR and on LE is two paths.
	Result ok;
	Load(Backends("      - address: bt://00:1A:7D:DA:71:13/0x0081\n"
		      "      - address: bt-le://00:1A:7D:DA:71:13/0x0081\n"),
	     &ok);
	EXPECT_EQ(ok.ret, 0) << Dump(ok.errs);
	// A backend's second udp path equal to another backend's address.
	ExpectOneError(Backends("      - address: 127.0.0.1:5001\n"
				"      - paths: [127.0.0.1:5002, udp://127.0.0.1:5001]\n"),
		       6, 33, "duplicate path 127.0.0.1:5001 (first at line 5)");
	// Two backend addresses: the backends' own check, once.
	ExpectOneError(Backends("      - address: 127.0.0.1:5001\n"
				"      - paths: [udp://127.0.0.1:5001]\n"),
		       6, 17, "duplicate backend 127.0.0.1:5001 (first at line 5)");
}

// ---- bridges: one problem each ----

TEST(ConfigBridgeErrors, BridgeEntries)
{
	ExpectOneError(kServices + "bridges:\n  - psm: 0x1001\n    service: echo\n", 7, 5,
		       "bridge is missing required key 'type'");
	ExpectOneError(kServices + "bridges:\n  - {type: wifi, psm: 0x1001, service: echo}\n", 7, 12,
		       "type: unknown value 'wifi' (valid: bluetooth)");
	ExpectOneError(Bridge("    service: echo\n"), 7, 5, "bridge is missing required key 'psm'");
	ExpectOneError(Bridge("    psm: 0x1001\n"), 7, 5, "bridge is missing required key 'service'");
	ExpectOneError(Bridge("    psm: 0x1000\n    service: echo\n"), 8, 10,
		       "psm: 0x1000 is not valid for BR/EDR");
	ExpectOneError(Bridge("    transport: le\n    psm: 0x1001\n    service: echo\n"), 9, 10,
		       "psm: 0x1001 is out of range for LE");
	ExpectOneError(Bridge("    psm: -1\n    service: echo\n"), 8, 10, "psm: '-1' is not a PSM");
	// A bad transport does not also condemn the PSM.
	ExpectOneError(Bridge("    transport: classic\n    psm: 0x1000\n    service: echo\n"), 8, 16,
		       "transport: unknown value 'classic' (valid: bredr, le)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: nope\n"), 9, 14,
		       "service: no service named 'nope' (services: echo)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    adapter: hci00\n"), 10, 14,
		       "adapter: 'hci00' is not an adapter");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    adapter: eth0\n"), 10, 14,
		       "adapter: 'eth0' is not an adapter (expected hciN");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    max_links: 0\n"), 10, 16,
		       "max_links: 0 is out of range (1..256)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    security: none\n"), 10, 15,
		       "security: unknown value 'none' (valid: low, medium, high)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    colour: blue\n"), 10, 5,
		       "unknown key 'colour' in bridge (valid keys: type, adapter, transport, psm, service, "
		       "max_links, security, allow)");
}

TEST(ConfigBridgeErrors, AllowList)
{
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    allow: [00:1A:7D:DA:71]\n"), 10, 13,
		       "allow: '00:1A:7D:DA:71' is not a Bluetooth device address");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    allow: [00:1A:7D:DA:71:13, "
			      "00:1a:7d:da:71:13]\n"),
		       10, 32, "allow: 00:1a:7d:da:71:13 is listed twice (first at line 10, column 13)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    allow: []\n"), 10, 12,
		       "allow: no addresses (leave allow out to accept any device)");
	ExpectOneError(Bridge("    psm: 0x1001\n    service: echo\n    allow: 00:1A:7D:DA:71:13\n"), 10, 12,
		       "allow: expected a sequence of device addresses");
}

TEST(ConfigBridgeErrors, BridgesSection)
{
	ExpectOneError(kServices + "bridges: {type: bluetooth}\n", 6, 10,
		       "bridges: expected a sequence of bridges");
	ExpectOneError(kServices + "bridges: []\n", 6, 10, "bridges: no bridges");
	ExpectOneError(kServices + "bridges: [bluetooth]\n", 6, 11, "bridges: each entry must be a mapping");
	ExpectOneError(kServices + "bridges:\n"
				   "  - {type: bluetooth, psm: 0x1001, service: echo}\n"
				   "  - {type: bluetooth, psm: 4097, service: echo}\n",
		       8, 28, "duplicate listener hci0 bredr PSM 0x1001 (first at line 7)");
	// Another adapter, or the other transport, is another listener.
	Result r;
	Load(kServices + "bridges:\n"
			 "  - {type: bluetooth, psm: 0x0081, service: echo}\n"
			 "  - {type: bluetooth, psm: 0x0081, service: echo, transport: le}\n"
			 "  - {type: bluetooth, psm: 0x0081, service: echo, adapter: hci1}\n",
	     &r);
	EXPECT_EQ(r.ret, 0) << Dump(r.errs);
	std::string many = kServices + "bridges:\n";
	for (int i = 0; i < QG_CONFIG_MAX_BRIDGES + 1; i++)
		many += "  - {type: bluetooth, psm: " + std::to_string(0x1001 + 2 * i) + ", service: echo}\n";
	ExpectOneError(many, 7, 3, "bridges: 17 entries, max 16");
}

#ifdef QGATE_HAVE_DPDK
// The dpdk backend has no buffer of its own for the bridge's datagrams (io alloc_tx): refused at load.
TEST(ConfigBridgeErrors, RefusedWithTheDpdkBackend)
{
	const std::string dp = "dataplane:\n"
			       "  backend: dpdk\n"
			       "  dpdk: {ports: [{name: net_null0, addresses: [192.0.2.1/24]}]}\n";
	ExpectOneError(
		dp + "services:\n"
		     "  - name: echo\n"
		     "    listen: 127.0.0.1:4433\n"
		     "    backends:\n"
		     "      - address: 127.0.0.1:5001\n"
		     "      - address: bt://00:1A:7D:DA:71:13/0x1001\n",
		9, 18,
		"bt://00:1A:7D:DA:71:13/0x1001: the dpdk backend cannot relay to Bluetooth backends (use "
		"backend io_uring or recvmmsg)");
	ExpectOneError(dp + kServices + "bridges:\n  - {type: bluetooth, psm: 0x1001, service: echo}\n", 10,
		       3,
		       "bridges: the dpdk backend cannot relay Bluetooth (use backend io_uring or recvmmsg)");
}
#endif
