// SPDX-License-Identifier: BSD-3-Clause
// Configuration loader, the QUIC and health sections of a service: round trips
// and each problem at its line and column.
#include <gtest/gtest.h>

#include <string>

#include "unit/config_test_util.h"

using namespace qgcfg;

// ---- the quic section of a service and the backends' server_id ----

namespace
{

// A quic service: quic_lines (indented by 6) start at line 6, then "    backends:" and backends.
std::string QuicService(const std::string &quic_lines,
			const std::string &backends = "      - address: 10.0.0.1:443\n")
{
	return "services:\n"		     // 1
	       "  - name: q\n"		     // 2
	       "    listen: 127.0.0.1:443\n" // 3
	       "    protocol: quic\n"	     // 4
	       "    quic:\n" +		     // 5
	       quic_lines +
	       "    backends:\n" + backends;
}

// One lb configuration with server_id_len 3 (lines 6-9); add "          key: ..." as line 10.
const std::string kLb = "      lb:\n"		       // 6
			"        - config_id: 0\n"     // 7: value at col 22
			"          server_id_len: 3\n" // 8: value at col 26
			"          nonce_len: 4\n";    // 9: value at col 22

// The backends line after kLb: "    backends:" is line 10, this is line 11.
const std::string kSidBackend = "      - {address: 10.0.0.1:443, server_id: c46051}\n";

} // namespace

TEST(ConfigLoad, QuicServiceRoundTrips)
{
	std::string y =
		"services:\n"							// 1
		"  - name: q\n"							// 2
		"    listen: 0.0.0.0:443\n"					// 3
		"    protocol: quic\n"						// 4
		"    policy: least_conn\n"					// 5
		"    quic:\n"							// 6
		"      lb:\n"							// 7
		"        - config_id: 0\n"					// 8
		"          server_id_len: 3\n"					// 9
		"          nonce_len: 4\n"					// 10
		"          key: 8f95f09245765f80256934e50c66207f\n"		// 11
		"        - {config_id: 6, server_id_len: 3, nonce_len: 16,\n"	// 12
		"           key: 000102030405060708090A0B0C0D0E0F}\n"		// 13
		"      short_dcid_len: 8\n"					// 14
		"      versions: [0x00000001, 0x6B3343CF, 4207849474]\n"	// 15
		"      min_initial_size: 1500\n"				// 16
		"      new_conn_rate: 1000\n"					// 17
		"      new_conn_burst: 100000\n"				// 18
		"      retry: under_attack\n"					// 19
		"    backends:\n"						// 20
		"      - address: 10.0.0.1:443\n"				// 21
		"        server_id: c46051\n"					// 22
		"      - {address: 10.0.0.2:443, server_id: 'C46052'}\n"	// 23
		"      - address: 10.0.0.3:443\n"				// 24
		"        server_id: \"000000\"\n"				// 25
		"        weight: 0\n"						// 26
		"  - name: plain\n"						// 27
		"    listen: 0.0.0.0:444\n"					// 28
		"    protocol: quic\n"						// 29
		"    quic:\n"							// 30
		"      lb: [{config_id: 2, server_id_len: 15, nonce_len: 4}]\n" // 31
		"      retry: on\n"						// 32
		"    backends: [{address: 10.0.0.1:443, server_id: 000102030405060708090a0b0c0d0e}]\n";
	static const uint8_t key0[16] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
					  0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };
	static const uint8_t key1[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	ASSERT_EQ(r.cfg->n_services, 2u);
	const qg_config_service *s = &r.cfg->services[0];
	EXPECT_EQ(s->protocol, QG_CONFIG_PROTO_QUIC);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_LEAST_CONN);
	const qg_config_quic *q = &s->quic;
	ASSERT_EQ(q->n_lb, 2u);
	EXPECT_EQ(q->lb[0].config_id, 0u);
	EXPECT_EQ(q->lb[0].server_id_len, 3u);
	EXPECT_EQ(q->lb[0].nonce_len, 4u);
	EXPECT_EQ(q->lb[0].has_key, 1u);
	EXPECT_EQ(memcmp(q->lb[0].key, key0, 16), 0);
	EXPECT_EQ(q->lb[0].line, 8);
	EXPECT_EQ(q->lb[1].config_id, 6u);
	EXPECT_EQ(q->lb[1].server_id_len, 3u);
	EXPECT_EQ(q->lb[1].nonce_len, 16u);
	EXPECT_EQ(q->lb[1].has_key, 1u);
	EXPECT_EQ(memcmp(q->lb[1].key, key1, 16), 0);
	EXPECT_EQ(q->lb[1].line, 12);
	EXPECT_EQ(q->short_dcid_len, 8u);
	ASSERT_EQ(q->n_versions, 3u);
	EXPECT_EQ(q->versions[0], 0x00000001u);
	EXPECT_EQ(q->versions[1], 0x6b3343cfu);
	EXPECT_EQ(q->versions[2], 0xfaceb002u);
	EXPECT_EQ(q->min_initial_size, 1500u);
	EXPECT_EQ(q->new_conn_rate, 1000u);
	EXPECT_EQ(q->new_conn_burst, 100000u);
	EXPECT_EQ(q->retry, QG_CONFIG_RETRY_UNDER_ATTACK);
	ASSERT_EQ(s->n_backends, 3u);
	static const uint8_t sid[3][3] = { { 0xc4, 0x60, 0x51 }, { 0xc4, 0x60, 0x52 }, { 0, 0, 0 } };
	for (int i = 0; i < 3; i++) {
		SCOPED_TRACE(i);
		EXPECT_EQ(s->backends[i].server_id_len, 3u);
		EXPECT_EQ(memcmp(s->backends[i].server_id, sid[i], 3), 0);
	}
	EXPECT_EQ(s->backends[2].weight, 0u);

	// The limits themselves: server_id_len 15 + nonce_len 4 = 19, no key.
	s = &r.cfg->services[1];
	q = &s->quic;
	ASSERT_EQ(q->n_lb, 1u);
	EXPECT_EQ(q->lb[0].config_id, 2u);
	EXPECT_EQ(q->lb[0].server_id_len, 15u);
	EXPECT_EQ(q->lb[0].has_key, 0u);
	EXPECT_EQ(q->n_versions, 0u);
	EXPECT_EQ(q->retry, QG_CONFIG_RETRY_ON);
	EXPECT_EQ(q->min_initial_size, 1200u);
	ASSERT_EQ(s->backends[0].server_id_len, 15u);
	for (int i = 0; i < 15; i++)
		EXPECT_EQ(s->backends[0].server_id[i], i);
}

TEST(ConfigLoad, QuicDefaults)
{
	Result r;

	// A quic service without a quic section, and a udp service: both get the defaults.
	Load(ServiceWith("protocol: quic") + "  - name: u\n    listen: 127.0.0.1:4434\n"
					     "    backends: [{address: 127.0.0.1:5001}]\n",
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	for (int i = 0; i < 2; i++) {
		SCOPED_TRACE(i);
		const qg_config_service *s = &r.cfg->services[i];
		EXPECT_EQ(s->quic.n_lb, 0u);
		EXPECT_EQ(s->quic.short_dcid_len, 0u);
		EXPECT_EQ(s->quic.n_versions, 0u);
		EXPECT_EQ(s->quic.min_initial_size, 1200u);
		EXPECT_EQ(s->quic.new_conn_rate, 0u);
		EXPECT_EQ(s->quic.new_conn_burst, 20u);
		EXPECT_EQ(s->quic.retry, QG_CONFIG_RETRY_OFF);
		EXPECT_EQ(s->backends[0].server_id_len, 0u);
	}
	Result e;

	// An empty quic mapping and min_initial_size 0 (off) are fine.
	Load(QuicService("      min_initial_size: 0\n      short_dcid_len: 20\n"), &e);
	ASSERT_EQ(e.ret, 0) << Dump(e.errs);
	EXPECT_EQ(e.cfg->services[0].quic.min_initial_size, 0u);
	EXPECT_EQ(e.cfg->services[0].quic.short_dcid_len, 20u);
}

TEST(ConfigErrors, QuicOnUdpService)
{
	ExpectOneError(ServiceWith("quic: {retry: on}"), 3, 5,
		       "quic is only allowed with protocol quic (protocol is udp)");
	// Written after protocol; one error, not one more per server_id.
	ExpectOneError("services:\n  - name: a\n    listen: 1.2.3.4:5\n    protocol: udp\n"
		       "    quic:\n" +
			       kLb + "    backends:\n" + kSidBackend,
		       5, 5, "quic is only allowed with protocol quic (protocol is udp)");
}

TEST(ConfigErrors, QuicSectionShape)
{
	ExpectOneError(ServiceWith("protocol: quic\n    quic: on"), 4, 11,
		       "quic: expected a mapping, found a scalar");
	ExpectOneError(QuicService("      lb: 3\n"), 6, 11,
		       "lb: expected a sequence of QUIC-LB configurations, found a scalar");
	ExpectOneError(
		QuicService("      rety: on\n"), 6, 7,
		"unknown key 'rety' in quic (valid keys: lb, short_dcid_len, versions, min_initial_size, "
		"new_conn_rate, new_conn_burst, retry)");
	ExpectOneError(
		QuicService("      lb: [{config_id: 0, server_id_len: 3, nonce_len: 4, keys: 1}]\n",
			    kSidBackend),
		6, 59,
		"unknown key 'keys' in lb configuration (valid keys: config_id, server_id_len, nonce_len, "
		"key)");
	ExpectOneError(QuicService("      lb: [{config_id: 0, server_id_len: 3}]\n", kSidBackend), 6, 12,
		       "lb configuration is missing required key 'nonce_len'");
	ExpectOneError(QuicService("      lb: [3]\n"), 6, 12, "lb: each entry must be a mapping such as");
	ExpectOneError(QuicService("      lb: []\n"), 6, 11,
		       "lb: no configurations (expected 1..2; leave lb out to route without QUIC-LB)");
}

// The service-level spellings: quic_lb (one mapping or a list), versions, retry: always.
TEST(ConfigLoad, QuicServiceLevelKeys)
{
	const char *y = "services:\n"
			"  - name: web\n"
			"    listen: 127.0.0.1:4443\n"
			"    protocol: quic\n"
			"    quic_lb: {config_id: 2, server_id_len: 1, nonce_len: 4, key: "
			"8f95f09245765f80256934e50c66207f}\n"
			"    versions: [1]\n"
			"    retry: always\n"
			"    backends:\n"
			"      - address: 127.0.0.1:6001\n"
			"        server_id: \"01\"\n";
	Result r;
	Load(y, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config_quic &q = r.cfg->services[0].quic;
	ASSERT_EQ(q.n_lb, 1u);
	EXPECT_EQ(q.lb[0].config_id, 2);
	EXPECT_EQ(q.lb[0].has_key, 1);
	ASSERT_EQ(q.n_versions, 1u);
	EXPECT_EQ(q.versions[0], 1u);
	EXPECT_EQ(q.retry, QG_CONFIG_RETRY_ON);
	EXPECT_EQ(r.cfg->services[0].backends[0].server_id_len, 1);
}

TEST(ConfigErrors, QuicServiceLevelKeysNeedQuic)
{
	ExpectOneError(ServiceWith("retry: always"), 3, 5, "retry is only allowed with protocol quic");
}

TEST(ConfigErrors, QuicTooManyLbConfigs)
{
	ExpectOneError(QuicService("      lb:\n"
				   "        - {config_id: 0, server_id_len: 3, nonce_len: 4}\n"
				   "        - {config_id: 1, server_id_len: 3, nonce_len: 4}\n"
				   "        - {config_id: 2, server_id_len: 3, nonce_len: 4}\n",
				   kSidBackend),
		       7, 9, "lb: 3 configurations, max 2 (the current one and the next, for key rotation)");
}

TEST(ConfigErrors, QuicDuplicateConfigId)
{
	ExpectOneError(
		QuicService(kLb + "        - {config_id: 0, server_id_len: 3, nonce_len: 5}\n", kSidBackend),
		10, 23, "duplicate config_id 0 (first at line 7)");
}

TEST(ConfigErrors, QuicLbRanges)
{
	ExpectOneError(
		QuicService("      lb: [{config_id: 7, server_id_len: 3, nonce_len: 4}]\n", kSidBackend), 6,
		24, "config_id: 7 is out of range (0..6)");
	ExpectOneError(QuicService("      lb: [{config_id: 0, server_id_len: 0, nonce_len: 4}]\n"), 6, 42,
		       "server_id_len: 0 is out of range (1..15)");
	// "      lb: [{config_id: 0, server_id_len: 3, nonce_len: 3}]": values at col 24, 42 and 56.
	ExpectOneError(
		QuicService("      lb: [{config_id: 0, server_id_len: 3, nonce_len: 3}]\n", kSidBackend), 6,
		56, "nonce_len: 3 is out of range (4..18)");
	ExpectOneError(QuicService("      lb: [{config_id: 0, server_id_len: 1, nonce_len: 19}]\n",
				   "      - {address: 10.0.0.1:443, server_id: c4}\n"),
		       6, 56, "nonce_len: 19 is out of range (4..18)");
}

TEST(ConfigErrors, QuicServerIdPlusNonceTooLong)
{
	ExpectOneError(
		QuicService("      lb:\n"
			    "        - config_id: 0\n"
			    "          server_id_len: 15\n"
			    "          nonce_len: 5\n",
			    "      - {address: 10.0.0.1:443, server_id: 000102030405060708090a0b0c0d0e}\n"),
		9, 22,
		"nonce_len: server_id_len 15 + nonce_len 5 = 20, more than 19 (a CID is at most 20 bytes "
		"with its first octet)");
}

TEST(ConfigErrors, QuicBadKey)
{
	// Line 10 col 16; the key itself never appears in a message.
	ExpectOneError(QuicService(kLb + "          key: 8f95f09245765f80256934e50c6620\n", kSidBackend), 10,
		       16, "key: expected 32 hex digits (16 bytes), found 30");
	ExpectOneError(QuicService(kLb + "          key: 8f95f09245765f80256934e50c66207f00\n", kSidBackend),
		       10, 16, "key: expected 32 hex digits (16 bytes), found 34");
	ExpectOneError(QuicService(kLb + "          key: 8f95g09245765f80256934e50c66207f\n", kSidBackend),
		       10, 16,
		       "key: character 5 is not a hex digit (expected 32 hex digits, 16 bytes, no 0x)");
	ExpectOneError(QuicService(kLb + "          key: 0x8f95f09245765f80256934e50c66207f\n", kSidBackend),
		       10, 16, "key: character 2 is not a hex digit");
	ExpectOneError(QuicService(kLb + "          key:\n", kSidBackend), 10, 15,
		       "key: expected a value, found an empty value");

	Result r;

	Load(QuicService(kLb + "          key: 8f95f09245765f80256934e50c66207x\n", kSidBackend), &r);
	ASSERT_EQ(r.errs.count, 1u) << Dump(r.errs);
	EXPECT_EQ(std::string(r.errs.items[0].msg).find("8f95f0"), std::string::npos) << r.errs.items[0].msg;
}

TEST(ConfigErrors, QuicBadVersion)
{
	// versions: [ at col 17, the first item at col 18.
	ExpectOneError(
		QuicService("      versions: [0x1]\n"), 6, 18,
		"versions: '0x1' is not a version (expected 0x and 8 hex digits such as 0x00000001, or "
		"decimal)");
	ExpectOneError(QuicService("      versions: [0x0000000g]\n"), 6, 18, "'0x0000000g' is not a version");
	ExpectOneError(QuicService("      versions: [v1]\n"), 6, 18, "versions: 'v1' is not a version");
	ExpectOneError(QuicService("      versions: [0]\n"), 6, 18,
		       "versions: 0 is out of range (1..4294967295)");
	ExpectOneError(QuicService("      versions: [0x00000000]\n"), 6, 18,
		       "versions: 0x00000000 is out of range (0x00000001..0xffffffff)");
	ExpectOneError(QuicService("      versions: [4294967296]\n"), 6, 18,
		       "versions: 4294967296 is out of range (1..4294967295)");
	ExpectOneError(QuicService("      versions: [1, 0x00000001]\n"), 6, 21,
		       "versions: 0x00000001 is listed twice (first at line 6, column 18)");
	ExpectOneError(
		QuicService("      versions: []\n"), 6, 17,
		"versions: no versions (expected 1..16; leave versions out to forward every version to "
		"the backends)");
	ExpectOneError(QuicService("      versions: 1\n"), 6, 17,
		       "versions: expected a sequence of QUIC versions");
}

TEST(ConfigErrors, QuicReservedVersion)
{
	ExpectOneError(
		QuicService("      versions: [0x00000001, 0x1A2A3A4A]\n"), 6, 30,
		"versions: 0x1a2a3a4a is a reserved version (0x?a?a?a?a only forces Version Negotiation)");
	// 168430090 = 0x0a0a0a0a
	ExpectOneError(QuicService("      versions: [168430090]\n"), 6, 18,
		       "versions: 0x0a0a0a0a is a reserved version");
}

TEST(ConfigErrors, QuicServerIdMissing)
{
	ExpectOneError(QuicService(kLb, "      - address: 10.0.0.2:443\n" + kSidBackend), 11, 9,
		       "backend 10.0.0.2:443 is missing required key 'server_id' (the service has quic.lb)");
}

TEST(ConfigErrors, QuicServerIdWrongLength)
{
	ExpectOneError(QuicService(kLb, "      - address: 10.0.0.1:443\n        server_id: c4605\n"), 12, 20,
		       "server_id: 'c4605' is not hex of 3 bytes");
	ExpectOneError(QuicService(kLb, "      - address: 10.0.0.1:443\n        server_id: c4605100\n"), 12,
		       20, "server_id: 'c4605100' is not hex of 3 bytes");
	ExpectOneError(QuicService(kLb, "      - address: 10.0.0.1:443\n        server_id: c4605g\n"), 12, 20,
		       "server_id: 'c4605g' is not hex of 3 bytes");
	ExpectOneError(QuicService("      lb: [{config_id: 0, server_id_len: 1, nonce_len: 4}]\n",
				   "      - {address: 10.0.0.1:443, server_id: '0x1'}\n"),
		       8, 44, "server_id: '0x1' is not hex of 1 byte");
}

TEST(ConfigErrors, QuicServerIdDuplicate)
{
	// Case does not make another ID.
	ExpectOneError(QuicService(kLb, kSidBackend + "      - address: 10.0.0.2:443\n"
						      "        server_id: C46051\n"),
		       13, 20, "duplicate server_id c46051 (first at line 11)");
}

TEST(ConfigErrors, QuicServerIdWithoutLb)
{
	ExpectOneError(QuicService("      retry: on\n", kSidBackend), 8, 33,
		       "server_id is only allowed when the service has quic.lb (QUIC-LB) configurations");
	ExpectOneError(kServices + "        server_id: c46051\n", 6, 9,
		       "server_id is only allowed when the service has quic.lb (QUIC-LB) configurations");
}

TEST(ConfigErrors, QuicServerIdLenDiffers)
{
	ExpectOneError(
		QuicService(kLb + "        - {config_id: 1, server_id_len: 4, nonce_len: 4}\n", kSidBackend),
		10, 41,
		"server_id_len: 4 differs from 3 of the first lb configuration (line 8); all lb "
		"configurations share one server ID length");
}

TEST(ConfigErrors, QuicIntegerRanges)
{
	ExpectOneError(QuicService("      min_initial_size: 1501\n"), 6, 25,
		       "min_initial_size: 1501 is out of range (0..1500)");
	ExpectOneError(QuicService("      short_dcid_len: 21\n"), 6, 23,
		       "short_dcid_len: 21 is out of range (0..20)");
	ExpectOneError(QuicService("      new_conn_burst: 0\n"), 6, 23,
		       "new_conn_burst: 0 is out of range (1..100000)");
	ExpectOneError(QuicService("      new_conn_burst: 100001\n"), 6, 23,
		       "new_conn_burst: 100001 is out of range (1..100000)");
	ExpectOneError(QuicService("      new_conn_rate: 1000001\n"), 6, 22,
		       "new_conn_rate: 1000001 is out of range (0..1000000)");
}

TEST(ConfigErrors, QuicRetryBadValue)
{
	ExpectOneError(QuicService("      retry: maybe\n"), 6, 14,
		       "retry: unknown value 'maybe' (valid: off, always, on, under_attack)");
	ExpectOneError(QuicService("      retry: true\n"), 6, 14, "retry: unknown value 'true'");
}

TEST(ConfigErrors, QuicProblemsTogether)
{
	// A broken lb still leaves its server_id_len to check the backends against.
	std::string y = QuicService(kLb + "          key: abz\n"      // 10 col 16
					  "      retry: sometimes\n", // 11 col 14
				    "      - address: 10.0.0.1:443\n" // 13 col 9 (no server_id)
				    "      - {address: 10.0.0.2:443, server_id: c460}\n"); // 14 col 44
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, -EINVAL);
	struct {
		int line, column;
		const char *text;
	} want[] = {
		{ 10, 16, "key: character 3 is not a hex digit" },
		{ 11, 14, "retry: unknown value 'sometimes'" },
		{ 13, 9, "backend 10.0.0.1:443 is missing required key 'server_id'" },
		{ 14, 44, "server_id: 'c460' is not hex of 3 bytes" },
	};
	ASSERT_EQ(r.errs.count, sizeof(want) / sizeof(want[0])) << Dump(r.errs);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		SCOPED_TRACE(i);
		EXPECT_EQ(r.errs.items[i].line, want[i].line) << Dump(r.errs);
		EXPECT_EQ(r.errs.items[i].column, want[i].column) << Dump(r.errs);
		EXPECT_NE(std::string(r.errs.items[i].msg).find(want[i].text), std::string::npos)
			<< r.errs.items[i].msg;
	}
}

TEST(ConfigHealth, DefaultsWhenAbsent)
{
	Result r;
	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config_service *s = &r.cfg->services[0];
	EXPECT_EQ(s->health.probe, QG_CONFIG_PROBE_NONE);
	EXPECT_STREQ(s->health.send, "ping");
	EXPECT_STREQ(s->health.expect, "");
	EXPECT_EQ(s->health.interval_ms, 1000u);
	EXPECT_EQ(s->health.timeout_ms, 500u);
	EXPECT_EQ(s->health.rise, 2u);
	EXPECT_EQ(s->health.fall, 3u);
	EXPECT_EQ(s->on_backend_down, QG_CONFIG_ON_DOWN_REHOME);
	EXPECT_EQ(s->circuit.failures, 5u);
	EXPECT_EQ(s->circuit.open_timeout_ms, 5000u);
	EXPECT_EQ(s->circuit.half_open_flows, 3u);
	EXPECT_EQ(s->circuit.successes, 2u);
}

TEST(ConfigHealth, AllKeys)
{
	Result r;
	Load(ServiceWith("health: {probe: udp, send: \"HC?\", expect: \"OK\", interval: 2s, timeout: 300ms, "
			 "rise: 4, fall: 5}\n    on_backend_down: keep\n    circuit: {failures: 7, "
			 "open_timeout: 10s, half_open_flows: 6, successes: 6}"),
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config_service *s = &r.cfg->services[0];
	EXPECT_EQ(s->health.probe, QG_CONFIG_PROBE_UDP);
	EXPECT_STREQ(s->health.send, "HC?");
	EXPECT_STREQ(s->health.expect, "OK");
	EXPECT_EQ(s->health.interval_ms, 2000u);
	EXPECT_EQ(s->health.timeout_ms, 300u);
	EXPECT_EQ(s->health.rise, 4u);
	EXPECT_EQ(s->health.fall, 5u);
	EXPECT_EQ(s->on_backend_down, QG_CONFIG_ON_DOWN_KEEP);
	EXPECT_EQ(s->circuit.failures, 7u);
	EXPECT_EQ(s->circuit.open_timeout_ms, 10000u);
	EXPECT_EQ(s->circuit.half_open_flows, 6u);
	EXPECT_EQ(s->circuit.successes, 6u);
}

TEST(ConfigHealth, ShortIntervalPullsTheDefaultTimeoutDown)
{
	Result r;
	Load(ServiceWith("health: {probe: quic_vn, interval: 100ms}"), &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->services[0].health.probe, QG_CONFIG_PROBE_QUIC_VN);
	EXPECT_EQ(r.cfg->services[0].health.timeout_ms, 100u);
}

TEST(ConfigHealth, Errors)
{
	// Columns: "    health: {" puts the first key at column 14.
	ExpectOneError(ServiceWith("health: {probe: tcp}"), 3, 21,
		       "probe: unknown value 'tcp' (valid: none, udp, quic_vn)");
	ExpectOneError(ServiceWith("health: {probe: udp, interval: 1s, timeout: 2s}"), 3, 49,
		       "timeout: 2000 ms is longer than interval (1000 ms)");
	ExpectOneError(ServiceWith("health: {probe: quic_vn, send: x}"), 3, 30,
		       "send is only allowed with probe udp (probe is quic_vn)");
	ExpectOneError(ServiceWith("health: {send: x}"), 3, 14,
		       "send is only allowed with probe udp (probe is none)");
	ExpectOneError(ServiceWith("health: {probe: udp, send: \"\"}"), 3, 32, "send: empty");
	ExpectOneError(ServiceWith("health: {rise: 0}"), 3, 20, "rise: 0 is out of range (1..100)");
	ExpectOneError(ServiceWith("health: {fall: 101}"), 3, 20, "fall: 101 is out of range (1..100)");
	ExpectOneError(ServiceWith("health: {interval: 5ms}"), 3, 24, "interval: 5ms is out of range");
	ExpectOneError(ServiceWith("health: {probe: udp, intrval: 1s}"), 3, 26,
		       "unknown key 'intrval' in health");
	ExpectOneError(ServiceWith("health: udp"), 3, 13, "health: expected a mapping");
	ExpectOneError(ServiceWith("on_backend_down: drop"), 3, 22,
		       "on_backend_down: unknown value 'drop' (valid: rehome, keep)");
	ExpectOneError(ServiceWith("circuit: {half_open_flows: 2, successes: 3}"), 3, 46,
		       "successes: 3 is more than half_open_flows (2)");
	ExpectOneError(ServiceWith("circuit: {failures: 0}"), 3, 25, "failures: 0 is out of range");
	ExpectOneError(ServiceWith("circuit: {open_timeout: 0ms}"), 3, 29,
		       "open_timeout: 0ms is out of range");
	ExpectOneError(ServiceWith("circuit: {trials: 1}"), 3, 15, "unknown key 'trials' in circuit");
}
