// SPDX-License-Identifier: BSD-3-Clause
// Configuration loader: defaults, a full round trip, and each kind of problem
// reported at its exact line and column.
#include <gtest/gtest.h>

#include <string>

#include "unit/config_test_util.h"

using namespace qgcfg;

// ---- valid configurations ----

TEST(ConfigLoad, DefaultHasDefaultValues)
{
	qg_config *cfg = nullptr;
	qg_config_errors errs;

	ASSERT_EQ(qg_config_load_default(&cfg, &errs), 0);
	ASSERT_NE(cfg, nullptr);
	EXPECT_STREQ(cfg->source, "<default>");
	EXPECT_EQ(cfg->dataplane.io, QG_CONFIG_IO_URING);
	ASSERT_EQ(cfg->dataplane.n_cores, 1u);
	EXPECT_EQ(cfg->dataplane.cores[0], FirstAllowedCpu());
	EXPECT_EQ(cfg->dataplane.flows_per_core, 1048576u);
	EXPECT_EQ(cfg->dataplane.upstream_sockets_per_core, 65536u);
	EXPECT_EQ(cfg->dataplane.rx_buffers, 4096u);
	EXPECT_EQ(cfg->dataplane.max_datagram, 2048u);
	EXPECT_EQ(cfg->dataplane.burst, 32u);
	EXPECT_EQ(cfg->stats_interval_ms, 0u);
	ASSERT_EQ(cfg->n_services, 1u);
	const qg_config_service *s = &cfg->services[0];
	EXPECT_STREQ(s->name, "echo");
	EXPECT_EQ(Addr(s->listen), "127.0.0.1:4433");
	EXPECT_EQ(s->protocol, QG_CONFIG_PROTO_UDP);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_MAGLEV);
	EXPECT_EQ(s->hash, QG_CONFIG_HASH_FIVE_TUPLE);
	EXPECT_EQ(s->maglev_table_size, 65537u);
	EXPECT_EQ(s->idle_timeout_ms, 30000u);
	EXPECT_EQ(s->max_flows_per_client, 0u);
	EXPECT_EQ(cfg->dataplane.udp_gso, 1);
	EXPECT_EQ(cfg->dataplane.overload_guard, 1);
	ASSERT_EQ(s->n_backends, 2u);
	EXPECT_EQ(Addr(s->backends[0].addr), "127.0.0.1:5001");
	EXPECT_EQ(s->backends[0].weight, 1u);
	EXPECT_EQ(Addr(s->backends[1].addr), "127.0.0.1:5002");
	EXPECT_EQ(s->backends[1].weight, 1u);
	EXPECT_EQ(qg_config_service_find(cfg, "echo"), s);
	EXPECT_EQ(qg_config_service_find(cfg, "nope"), nullptr);
	qg_config_free(cfg);
}

TEST(ConfigLoad, DefaultYamlIsTheDefault)
{
	const char *y = qg_config_default_yaml();
	Result r;

	ASSERT_NE(y, nullptr);
	Load(y, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_STREQ(r.cfg->services[0].name, "echo");
}

TEST(ConfigLoad, MinimalGetsDefaults)
{
	Result r;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.errs.count, 0u);
	EXPECT_STREQ(r.cfg->source, "test.yaml");
	EXPECT_EQ(r.cfg->dataplane.io, QG_CONFIG_IO_URING);
	EXPECT_EQ(r.cfg->dataplane.n_cores, 1u);
	EXPECT_EQ(r.cfg->dataplane.burst, 32u);
	const qg_config_service *s = &r.cfg->services[0];
	EXPECT_EQ(s->line, 2);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_MAGLEV);
	EXPECT_EQ(s->maglev_table_size, 65537u);
	EXPECT_EQ(s->idle_timeout_ms, 30000u);
	EXPECT_EQ(s->backends[0].weight, 1u);
	EXPECT_EQ(s->backends[0].line, 5);
}

// The overload guard is on unless turned off; anything but a boolean is an error at its position.
TEST(ConfigLoad, OverloadGuard)
{
	Result r;
	Load(DataplaneWith("overload_guard: false"), &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->dataplane.overload_guard, 0);
	ExpectOneError(DataplaneWith("overload_guard: maybe"), 2, 19, "overload_guard");
}

TEST(ConfigLoad, FullConfigRoundTrips)
{
	std::string cores = "[" + std::to_string(FirstAllowedCpu()) + "]";
	std::string y = "# a comment\n"
			"dataplane:\n"
			"  backend: recvmmsg\n"
			"  cores: " +
			cores +
			"\n"
			"  flows_per_core: 67108864\n"
			"  upstream_sockets_per_core: 1024\n"
			"  rx_buffers: 64\n"
			"  max_datagram: 65507\n"
			"  burst: 256\n"
			"stats_interval: 2s\n"
			"services:\n"
			"  - name: dns.v6-A_1\n"
			"    listen: '[::1]:5353'\n"
			"    protocol: udp\n"
			"    policy: maglev\n"
			"    hash: src_ip_port\n"
			"    maglev_table_size: 251\n"
			"    idle_timeout: 500ms\n"
			"    max_flows_per_client: 1048576\n"
			"    backends:\n"
			"      - address: '[2001:db8::1]:53'\n"
			"        weight: 1000\n"
			"      - {address: 10.0.0.2:53, weight: 0}\n"
			"  - name: game\n"
			"    listen: 0.0.0.0:7777\n"
			"    policy: wrr\n"
			"    idle_timeout: 2m\n"
			"    backends:\n"
			"      - address: 10.0.0.3:7777\n"
			"        weight: 3\n"
			"  - name: lc\n"
			"    listen: 0.0.0.0:7778\n"
			"    policy: least_conn\n"
			"    idle_timeout: 24h\n"
			"    backends: [{address: 10.0.0.4:1}]\n"
			"  - name: bare\n"
			"    listen: 0.0.0.0:7779\n"
			"    hash: src_ip\n"
			"    idle_timeout: 45\n"
			"    backends: [{address: 10.0.0.5:65535}]\n";
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config *c = r.cfg;
	EXPECT_EQ(c->dataplane.io, QG_CONFIG_IO_RECVMMSG);
	ASSERT_EQ(c->dataplane.n_cores, 1u);
	EXPECT_EQ(c->dataplane.cores[0], FirstAllowedCpu());
	EXPECT_EQ(c->dataplane.flows_per_core, 67108864u);
	EXPECT_EQ(c->dataplane.upstream_sockets_per_core, 1024u);
	EXPECT_EQ(c->dataplane.rx_buffers, 64u);
	EXPECT_EQ(c->dataplane.max_datagram, 65507u);
	EXPECT_EQ(c->dataplane.burst, 256u);
	EXPECT_EQ(c->stats_interval_ms, 2000u);
	ASSERT_EQ(c->n_services, 4u);

	const qg_config_service *s = &c->services[0];
	EXPECT_STREQ(s->name, "dns.v6-A_1");
	EXPECT_EQ(s->line, 12);
	EXPECT_EQ(s->listen.family, AF_INET6);
	EXPECT_EQ(Addr(s->listen), "[::1]:5353");
	EXPECT_EQ(ntohs(s->listen.port), 5353);
	EXPECT_EQ(s->protocol, QG_CONFIG_PROTO_UDP);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_MAGLEV);
	EXPECT_EQ(s->hash, QG_CONFIG_HASH_SRC_IP_PORT);
	EXPECT_EQ(s->maglev_table_size, 251u);
	EXPECT_EQ(s->idle_timeout_ms, 500u);
	EXPECT_EQ(s->max_flows_per_client, 1048576u);
	ASSERT_EQ(s->n_backends, 2u);
	EXPECT_EQ(Addr(s->backends[0].addr), "[2001:db8::1]:53");
	EXPECT_EQ(s->backends[0].weight, 1000u);
	EXPECT_EQ(s->backends[0].line, 21);
	EXPECT_EQ(Addr(s->backends[1].addr), "10.0.0.2:53");
	EXPECT_EQ(s->backends[1].weight, 0u);
	EXPECT_EQ(s->backends[1].line, 23);

	s = qg_config_service_find(c, "game");
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_WRR);
	EXPECT_EQ(s->idle_timeout_ms, 120000u);
	EXPECT_EQ(s->backends[0].weight, 3u);

	s = qg_config_service_find(c, "lc");
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->policy, QG_CONFIG_POLICY_LEAST_CONN);
	EXPECT_EQ(s->idle_timeout_ms, 86400000u);

	s = qg_config_service_find(c, "bare");
	ASSERT_NE(s, nullptr);
	EXPECT_EQ(s->hash, QG_CONFIG_HASH_SRC_IP);
	EXPECT_EQ(s->idle_timeout_ms, 45000u);
	EXPECT_EQ(ntohs(s->backends[0].addr.port), 65535);
}

TEST(ConfigLoad, NullErrsIsAllowed)
{
	qg_config *cfg = kSentinel;

	EXPECT_EQ(qg_config_load_string("x", kServices.data(), kServices.size(), &cfg, nullptr), 0);
	qg_config_free(cfg);
	cfg = kSentinel;
	EXPECT_EQ(qg_config_load_string("x", "services: []", 12, &cfg, nullptr), -EINVAL);
	EXPECT_EQ(cfg, kSentinel);
	EXPECT_EQ(qg_config_load_string("x", nullptr, 0, &cfg, nullptr), -EINVAL);
	EXPECT_EQ(qg_config_load_string("x", nullptr, 5, &cfg, nullptr), -EINVAL);
	EXPECT_EQ(cfg, kSentinel);
	qg_config_free(nullptr);
}

// ---- one test per kind of problem ----

TEST(ConfigErrors, UnknownTopLevelKey)
{
	ExpectOneError(kServices + "statsinterval: 1s\n", 6, 1,
		       "unknown key 'statsinterval' at the top level (valid keys: dataplane, stats_interval, "
		       "services, metrics, admin, drain_timeout");
}

// Control-plane keys: metrics (off when absent), admin (no socket when absent), drain_timeout.
TEST(ConfigControl, DefaultsWhenAbsent)
{
	Result r;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->metrics.enabled, 0);
	EXPECT_STREQ(r.cfg->admin.socket, "");
	EXPECT_EQ(r.cfg->admin.mode, 0600u);
	EXPECT_EQ(r.cfg->drain_timeout_ms, 10000u);
}

TEST(ConfigControl, AllKeys)
{
	Result r;

	Load("metrics: {listen: '[::1]:9100'}\n"
	     "admin: {socket: /tmp/q/admin.sock, mode: 0660}\n"
	     "drain_timeout: 2500ms\n" +
		     kServices,
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->metrics.enabled, 1);
	EXPECT_EQ(r.cfg->metrics.listen.family, AF_INET6);
	EXPECT_EQ(ntohs(r.cfg->metrics.listen.port), 9100);
	EXPECT_EQ(r.cfg->metrics.line, 1);
	EXPECT_STREQ(r.cfg->admin.socket, "/tmp/q/admin.sock");
	EXPECT_EQ(r.cfg->admin.mode, 0660u);
	EXPECT_EQ(r.cfg->drain_timeout_ms, 2500u);
}

TEST(ConfigControl, AdminSectionWithoutSocketUsesDefaultPath)
{
	Result r;

	Load("admin: {mode: 0600}\n" + kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_STREQ(r.cfg->admin.socket, "/run/qgate/admin.sock");
	// A non-loopback metrics address is valid (the daemon warns at start).
	Result any;
	Load("metrics: {listen: 0.0.0.0:9100}\n" + kServices, &any);
	ASSERT_EQ(any.ret, 0) << Dump(any.errs);
	EXPECT_EQ(any.cfg->metrics.enabled, 1);
	Result zero;
	Load("drain_timeout: 0\n" + kServices, &zero);
	ASSERT_EQ(zero.ret, 0) << Dump(zero.errs);
	EXPECT_EQ(zero.cfg->drain_timeout_ms, 0u);
}

TEST(ConfigControl, Errors)
{
	ExpectOneError("metrics: {}\n" + kServices, 1, 10, "metrics is missing required key 'listen'");
	ExpectOneError("metrics: {listen: localhost:9100}\n" + kServices, 1, 19,
		       "listen: 'localhost:9100' is not an address");
	ExpectOneError("metrics: {listen: 127.0.0.1:9100, port: 1}\n" + kServices, 1, 35,
		       "unknown key 'port' in metrics (valid keys: listen)");
	ExpectOneError("metrics: 9100\n" + kServices, 1, 10, "metrics: expected a mapping");
	ExpectOneError("admin: {socket: ''}\n" + kServices, 1, 17, "socket: must not be empty");
	ExpectOneError("admin: {socket: /" + std::string(120, 'a') + "}\n" + kServices, 1, 17,
		       "a Unix socket path holds at most 107");
	ExpectOneError("admin: {mode: 600}\n" + kServices, 1, 15, "mode: '600' is not an octal mode");
	ExpectOneError("admin: {mode: 0680}\n" + kServices, 1, 15, "'8', not an octal digit");
	ExpectOneError("admin: {mode: 04755}\n" + kServices, 1, 15, "sets more than permission bits");
	ExpectOneError("admin: {mode: 0400}\n" + kServices, 1, 15, "leaves the owner without read and write");
	ExpectOneError("admin: /run/x.sock\n" + kServices, 1, 8, "admin: expected a mapping");
	ExpectOneError("drain_timeout: 2h\n" + kServices, 1, 16, "drain_timeout: 2h is out of range");
	ExpectOneError("drain_timeout: soon\n" + kServices, 1, 16, "drain_timeout");
}

TEST(ConfigErrors, UnknownDataplaneKey)
{
	ExpectOneError(DataplaneWith("flows: 10"), 2, 3,
		       "unknown key 'flows' in dataplane (valid keys: backend, cores");
}

TEST(ConfigErrors, UnknownServiceKey)
{
	ExpectOneError(ServiceWith("lisen: 1.2.3.4:5"), 3, 5,
		       "unknown key 'lisen' in service (valid keys: name, listen");
}

TEST(ConfigErrors, UnknownBackendKey)
{
	ExpectOneError(kServices + "        wieght: 2\n", 6, 9,
		       "unknown key 'wieght' in backend (valid keys: address, weight, server_id, paths)");
}

TEST(ConfigErrors, DuplicateKey)
{
	ExpectOneError(ServiceWith("name: other"), 3, 5, "duplicate key 'name' in service (first at line 2)");
}

TEST(ConfigErrors, NonScalarKey)
{
	ExpectOneError(ServiceWith("? [a]\n    : 1"), 3, 7,
		       "expected a scalar key in service, found a sequence");
}

TEST(ConfigErrors, WrongTypeMapping)
{
	ExpectOneError("dataplane: [1]\n" + kServices, 1, 12,
		       "dataplane: expected a mapping, found a sequence");
}

TEST(ConfigErrors, WrongTypeSequence)
{
	ExpectOneError("services: echo\n", 1, 11,
		       "services: expected a sequence of services, found a scalar");
	ExpectOneError(DataplaneWith("cores: 0"), 2, 10, "cores: expected a sequence of CPU numbers");
	ExpectOneError("services:\n  - name: a\n    listen: 1.2.3.4:5\n    backends:\n", 4, 14,
		       "backends: expected a sequence of {address, weight} entries, found an empty value");
}

TEST(ConfigErrors, WrongTypeScalar)
{
	ExpectOneError(ServiceWith("protocol: {a: 1}"), 3, 15, "protocol: expected a value, found a mapping");
	ExpectOneError(DataplaneWith("burst: [1]"), 2, 10, "burst: expected a value, found a sequence");
	ExpectOneError(DataplaneWith("burst:"), 2, 9, "burst: expected a value, found an empty value");
}

TEST(ConfigErrors, WrongTypeEntries)
{
	ExpectOneError(
		"services:\n  - echo\n", 2, 5,
		"services: each entry must be a mapping (name, listen, backends, ...), found a scalar");
	ExpectOneError("services:\n  - name: a\n    listen: 1.2.3.4:5\n    backends:\n      - 1.2.3.4:6\n", 5,
		       9,
		       "backends: each entry must be a mapping such as {address: 10.0.0.1:5001, weight: 1}");
}

TEST(ConfigErrors, TopLevelNotAMapping)
{
	ExpectOneError("- a\n- b\n", 1, 1, "expected a mapping at the top level");
}

TEST(ConfigErrors, BadListenAddress)
{
	const char *bad[] = {
		"localhost:80", "1.2.3.4", "::1:80", "1.2.3.4:65536", "1.2.3.400:1", "[::1]80"
	};

	for (const char *a : bad) {
		SCOPED_TRACE(a);
		ExpectOneError("services:\n  - name: echo\n    listen: '" + std::string(a) +
				       "'\n    backends: [{address: 1.2.3.4:5}]\n",
			       3, 13,
			       "listen: '" + std::string(a) +
				       "' is not an address (expected IPv4:port or [IPv6]:port");
	}
}

TEST(ConfigErrors, PortZero)
{
	ExpectOneError(
		"services:\n  - name: echo\n    listen: 1.2.3.4:0\n    backends: [{address: 1.2.3.4:5}]\n", 3,
		13, "listen: port 0 is out of range (1..65535)");
	ExpectOneError(
		"services:\n  - name: echo\n    listen: 1.2.3.4:1\n    backends: [{address: '[::]:0'}]\n", 4,
		26, "address: port 0 is out of range (1..65535)");
}

TEST(ConfigErrors, BadBackendAddress)
{
	ExpectOneError("services:\n  - name: echo\n    listen: 1.2.3.4:1\n    backends:\n      - address: "
		       "10.0.0.1\n",
		       5, 18, "address: '10.0.0.1' is not an address");
}

TEST(ConfigErrors, BadDuration)
{
	ExpectOneError(ServiceWith("idle_timeout: 30sec"), 3, 19, "idle_timeout: '30sec' is not a duration");
	ExpectOneError(ServiceWith("idle_timeout: 1.5s"), 3, 19, "'1.5s' is not a duration");
	ExpectOneError(ServiceWith("idle_timeout: s"), 3, 19, "'s' is not a duration");
	ExpectOneError(ServiceWith("idle_timeout: -5s"), 3, 19,
		       "idle_timeout: -5s is negative (expected 1ms..24h)");
	ExpectOneError("stats_interval: 1 s\n" + kServices, 1, 17, "stats_interval: '1 s' is not a duration");
}

TEST(ConfigErrors, DurationOutOfRange)
{
	ExpectOneError(ServiceWith("idle_timeout: 0ms"), 3, 19,
		       "idle_timeout: 0ms is out of range (1ms..24h)");
	ExpectOneError(ServiceWith("idle_timeout: 25h"), 3, 19,
		       "idle_timeout: 25h is out of range (1ms..24h)");
	ExpectOneError(ServiceWith("idle_timeout: 86401"), 3, 19, "86401 is out of range (1ms..24h)");
	ExpectOneError(ServiceWith("idle_timeout: 99999999999999999999h"), 3, 19,
		       "is out of range (1ms..24h)");
	ExpectOneError(ServiceWith("idle_timeout: 5124095576030431h"), 3, 19, "is out of range (1ms..24h)");
	ExpectOneError("stats_interval: 1441m\n" + kServices, 1, 17,
		       "stats_interval: 1441m is out of range (0..24h)");
}

TEST(ConfigErrors, IntegerNotDecimal)
{
	ExpectOneError(DataplaneWith("burst: 0x10"), 2, 10,
		       "burst: '0x10' is not a decimal integer (expected 1..256)");
	ExpectOneError(DataplaneWith("burst: 12abc"), 2, 10, "burst: '12abc' is not a decimal integer");
	ExpectOneError(DataplaneWith("burst: 1.0"), 2, 10, "'1.0' is not a decimal integer");
	ExpectOneError(DataplaneWith("burst: +5"), 2, 10, "'+5' is not a decimal integer");
	ExpectOneError(DataplaneWith("burst: 010"), 2, 10, "burst: '010' has a leading zero");
}

TEST(ConfigErrors, IntegerNegative)
{
	ExpectOneError(DataplaneWith("burst: -1"), 2, 10, "burst: -1 is negative (expected 1..256)");
}

TEST(ConfigErrors, IntegerOverflow)
{
	ExpectOneError(DataplaneWith("flows_per_core: 184467440737095516160"), 2, 19,
		       "flows_per_core: 184467440737095516160 is out of range (1..67108864)");
	ExpectOneError(DataplaneWith("flows_per_core: 4294967297"), 2, 19,
		       "flows_per_core: 4294967297 is out of range (1..67108864)");
}

TEST(ConfigErrors, IntegerOutOfRange)
{
	ExpectOneError(DataplaneWith("flows_per_core: 0"), 2, 19,
		       "flows_per_core: 0 is out of range (1..67108864)");
	ExpectOneError(DataplaneWith("flows_per_core: 67108865"), 2, 19, "out of range (1..67108864)");
	ExpectOneError(DataplaneWith("upstream_sockets_per_core: 1048577"), 2, 30,
		       "upstream_sockets_per_core: 1048577 is out of range (1..1048576)");
	ExpectOneError(DataplaneWith("rx_buffers: 32"), 2, 15, "rx_buffers: 32 is out of range (64..65536)");
	ExpectOneError(DataplaneWith("max_datagram: 65508"), 2, 17,
		       "max_datagram: 65508 is out of range (64..65507)");
	ExpectOneError(DataplaneWith("max_datagram: 63"), 2, 17, "(64..65507)");
	ExpectOneError(DataplaneWith("burst: 0"), 2, 10, "burst: 0 is out of range (1..256)");
	ExpectOneError(DataplaneWith("burst: 257"), 2, 10, "burst: 257 is out of range (1..256)");
	ExpectOneError(ServiceWith("max_flows_per_client: 1048577"), 3, 27,
		       "max_flows_per_client: 1048577 is out of range (0..1048576)");
	ExpectOneError(kServices + "        weight: 1001\n", 6, 17, "weight: 1001 is out of range (0..1000)");
	ExpectOneError(ServiceWith("maglev_table_size: 1000033"), 3, 24,
		       "maglev_table_size: 1000033 is out of range (1..1000003)");
}

TEST(ConfigErrors, RxBuffersPowerOfTwo)
{
	ExpectOneError(DataplaneWith("rx_buffers: 100"), 2, 15,
		       "rx_buffers: 100 is not a power of two (64..65536");
}

TEST(ConfigErrors, UnknownEnumValue)
{
	ExpectOneError(DataplaneWith("backend: af_xdp"), 2, 12,
		       "backend: unknown value 'af_xdp' (valid: io_uring, recvmmsg, dpdk)");
	ExpectOneError(ServiceWith("protocol: tcp"), 3, 15,
		       "protocol: unknown value 'tcp' (valid: udp, quic)");
	ExpectOneError(ServiceWith("policy: random"), 3, 13,
		       "policy: unknown value 'random' (valid: maglev, wrr, least_conn)");
	ExpectOneError(ServiceWith("hash: dst_ip"), 3, 11,
		       "hash: unknown value 'dst_ip' (valid: five_tuple, src_ip, src_ip_port)");
	// Values are case sensitive.
	ExpectOneError(ServiceWith("policy: Maglev"), 3, 13, "unknown value 'Maglev'");
}

TEST(ConfigLoad, QuicIsAvailable)
{
	Result r;

	Load(ServiceWith("protocol: quic"), &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->services[0].protocol, QG_CONFIG_PROTO_QUIC);
}

#ifndef QGATE_HAVE_DPDK
TEST(ConfigErrors, DpdkNotAvailableInThisBuild)
{
	ExpectOneError(
		DataplaneWith("backend: dpdk"), 2, 12,
		"dataplane backend dpdk is not available in this build (qgate was built without DPDK)");
}
#else
TEST(ConfigErrors, DpdkNeedsPorts)
{
	ExpectOneError(DataplaneWith("backend: dpdk"), 2, 12,
		       "backend dpdk needs a 'dpdk' section with its 'ports' in dataplane");
	ExpectOneError("dataplane:\n  backend: dpdk\n  dpdk:\n    mbufs: 2047\n" + kServices, 4, 5,
		       "dpdk is missing required key 'ports'");
}

TEST(ConfigLoad, DpdkBackendLoads)
{
	Result r;

	Load("dataplane:\n  backend: dpdk\n  dpdk:\n    ports: [{name: net_null0, addresses: "
	     "[10.0.0.1/8]}]\n" +
		     kServices,
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->dataplane.io, QG_CONFIG_IO_DPDK);
	EXPECT_EQ(r.cfg->dataplane.dpdk.n_ports, 1u);
}
#endif

// A dpdk section (lines 2-6) with one extra port line (line 6, 8 spaces in) before valid services.
std::string DpdkPortWith(const std::string &line)
{
	return "dataplane:\n"						 // 1
	       "  dpdk:\n"						 // 2
	       "    ports:\n"						 // 3
	       "      - name: net_pcap0\n"				 // 4
	       "        addresses: [192.0.2.1/24, \"2001:db8::1/64\"]\n" // 5
	       "        " +
	       line + "\n" + kServices; // 6
}

TEST(ConfigLoad, DpdkSectionRoundTrips)
{
	std::string y = "dataplane:\n"
			"  dpdk:\n"
			"    eal_args: [--no-huge, -m, \"256\", --vdev, "
			"\"net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap\"]\n"
			"    mbufs: 1023\n"
			"    rx_desc: 512\n"
			"    tx_desc: 2048\n"
			"    ports:\n"
			"      - name: net_pcap0\n"
			"        addresses: [192.0.2.1/24, \"2001:db8::1/64\"]\n"
			"        gateway: 192.0.2.254\n"
			"        gateway6: \"2001:db8::fe\"\n"
			"        nat_addresses: [198.51.100.10, \"2001:db8:1::10\"]\n"
			"        neighbors: [{address: 192.0.2.2, mac: \"02:00:00:00:00:02\"},\n"
			"                    {address: \"2001:db8::2\", mac: \"02:00:00:00:00:03\"}]\n"
			"        kernel_tap: qg-edge0\n"
			"      - name: \"0000:01:00.0\"\n"
			"        addresses: [10.1.0.1/16]\n" +
			kServices;
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	// A dpdk section under another backend is kept, not an error.
	EXPECT_EQ(r.cfg->dataplane.io, QG_CONFIG_IO_URING);
	const qg_config_dpdk *d = &r.cfg->dataplane.dpdk;
	ASSERT_EQ(d->n_eal_args, 5u);
	EXPECT_STREQ(d->eal_args[0], "--no-huge");
	EXPECT_STREQ(d->eal_args[2], "256");
	EXPECT_STREQ(d->eal_args[4], "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap");
	EXPECT_EQ(d->mbufs, 1023u);
	EXPECT_EQ(d->rx_desc, 512u);
	EXPECT_EQ(d->tx_desc, 2048u);
	ASSERT_EQ(d->n_ports, 2u);
	const qg_config_dpdk_port *p = &d->ports[0];
	EXPECT_STREQ(p->name, "net_pcap0");
	EXPECT_EQ(p->line, 8);
	ASSERT_EQ(p->n_addresses, 2u);
	EXPECT_EQ(p->addresses[0].addr.family, AF_INET);
	EXPECT_EQ(p->addresses[0].len, 24u);
	EXPECT_EQ(Addr(p->addresses[0].addr), "192.0.2.1:0");
	EXPECT_EQ(p->addresses[1].addr.family, AF_INET6);
	EXPECT_EQ(p->addresses[1].len, 64u);
	EXPECT_EQ(Addr(p->gateway), "192.0.2.254:0");
	EXPECT_EQ(Addr(p->gateway6), "[2001:db8::fe]:0");
	ASSERT_EQ(p->n_nat, 2u);
	EXPECT_EQ(Addr(p->nat[0]), "198.51.100.10:0");
	EXPECT_EQ(Addr(p->nat[1]), "[2001:db8:1::10]:0");
	ASSERT_EQ(p->n_neighbors, 2u);
	EXPECT_EQ(Addr(p->neighbors[0].addr), "192.0.2.2:0");
	const uint8_t mac[6] = { 2, 0, 0, 0, 0, 2 };
	EXPECT_EQ(memcmp(p->neighbors[0].mac, mac, 6), 0);
	EXPECT_EQ(p->neighbors[1].mac[5], 3);
	EXPECT_STREQ(p->kernel_tap, "qg-edge0");
	EXPECT_STREQ(d->ports[1].kernel_tap, "") << "no kernel_tap: frames not ours are dropped";
	EXPECT_STREQ(d->ports[1].name, "0000:01:00.0");
	EXPECT_EQ(d->ports[1].gateway.family, 0);
	EXPECT_EQ(d->ports[1].n_nat, 0u);
}

TEST(ConfigLoad, DpdkDefaults)
{
	Result r;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->dataplane.dpdk.mbufs, 16383u);
	EXPECT_EQ(r.cfg->dataplane.dpdk.rx_desc, 1024u);
	EXPECT_EQ(r.cfg->dataplane.dpdk.tx_desc, 1024u);
	EXPECT_EQ(r.cfg->dataplane.dpdk.n_ports, 0u);
	EXPECT_EQ(r.cfg->dataplane.dpdk.n_eal_args, 0u);
}

TEST(ConfigErrors, DpdkUnknownKeys)
{
	ExpectOneError(
		"dataplane:\n  dpdk:\n    hugepages: 3\n" + kServices, 3, 5,
		"unknown key 'hugepages' in dpdk (valid keys: eal_args, mbufs, rx_desc, tx_desc, ports)");
	ExpectOneError(DpdkPortWith("mtu: 9000"), 6, 9,
		       "unknown key 'mtu' in port (valid keys: name, addresses, gateway, gateway6, "
		       "nat_addresses, neighbors, kernel_tap)");
	ExpectOneError(DpdkPortWith("neighbors: [{address: 192.0.2.2, mac: \"02:00:00:00:00:02\", vlan: 3}]"),
		       6, 68, "unknown key 'vlan' in neighbor");
}

TEST(ConfigErrors, DpdkBadPrefix)
{
	ExpectOneError(DpdkPortWith("nat_addresses: [192.0.2.300]"), 6, 25,
		       "nat_addresses: '192.0.2.300' is not an IP address");
	ExpectOneError("dataplane:\n  dpdk:\n    ports:\n      - name: p\n        addresses: [192.0.2.1]\n" +
			       kServices,
		       5, 21, "addresses: '192.0.2.1' is not an address with a prefix length");
	ExpectOneError(
		"dataplane:\n  dpdk:\n    ports:\n      - name: p\n        addresses: [192.0.2.1/33]\n" +
			kServices,
		5, 21, "addresses: prefix length 33 of '192.0.2.1/33' is out of range (0..32)");
	ExpectOneError(
		"dataplane:\n  dpdk:\n    ports:\n      - name: p\n        addresses: [\"::1/129\"]\n" +
			kServices,
		5, 21, "addresses: '::1/129' is not an address with a prefix length");
	ExpectOneError("dataplane:\n  dpdk:\n    ports:\n      - name: p\n        addresses: [10.0.0.1/x]\n" +
			       kServices,
		       5, 21, "is not an address with a prefix length");
}

TEST(ConfigErrors, DpdkBadMac)
{
	ExpectOneError(DpdkPortWith("neighbors: [{address: 192.0.2.2, mac: \"02:00:00:00:00\"}]"), 6, 47,
		       "mac: '02:00:00:00:00' is not an Ethernet address");
	ExpectOneError(DpdkPortWith("neighbors: [{address: 192.0.2.2}]"), 6, 21,
		       "neighbor is missing required key 'mac'");
}

TEST(ConfigErrors, DpdkGatewayNotOnLink)
{
	ExpectOneError(DpdkPortWith("gateway: 10.0.0.1"), 6, 18,
		       "gateway: 10.0.0.1 is not on-link (no address of port 'net_pcap0' covers it)");
	ExpectOneError(DpdkPortWith("gateway6: \"2001:db9::1\""), 6, 19,
		       "gateway6: 2001:db9::1 is not on-link");
	ExpectOneError(DpdkPortWith("gateway: \"2001:db8::fe\""), 6, 18,
		       "gateway: expected an IPv4 address (use gateway6 for IPv6)");
	// Same /24: accepted.
	Result r;
	Load(DpdkPortWith("gateway: 192.0.2.254"), &r);
	EXPECT_EQ(r.ret, 0) << Dump(r.errs);
}

TEST(ConfigErrors, DpdkRangesAndCounts)
{
	ExpectOneError("dataplane:\n  dpdk:\n    mbufs: 100\n" + kServices, 3, 12,
		       "mbufs: 100 is out of range (1023..1048575)");
	ExpectOneError("dataplane:\n  dpdk:\n    rx_desc: 1\n" + kServices, 3, 14,
		       "rx_desc: 1 is out of range");
	ExpectOneError("dataplane:\n  dpdk:\n    ports: []\n" + kServices, 3, 12,
		       "ports: 0 entries, expected 1..8");
	ExpectOneError("dataplane:\n  dpdk:\n    eal_args: --no-huge\n" + kServices, 3, 15,
		       "eal_args: expected a sequence of strings, found a scalar");
	ExpectOneError("dataplane:\n  dpdk:\n    ports:\n      - addresses: [10.0.0.1/8]\n" + kServices, 4, 9,
		       "port is missing required key 'name'");
	ExpectOneError("dataplane:\n  dpdk:\n    ports:\n      - {name: a, addresses: [10.0.0.1/8]}\n"
		       "      - {name: a, addresses: [10.0.0.2/8]}\n" +
			       kServices,
		       5, 16, "duplicate port 'a' (first at line 4)");
}

TEST(ConfigErrors, DpdkKernelTap)
{
	ExpectOneError(DpdkPortWith("kernel_tap: qgate-edge-port-0"), 6, 21,
		       "kernel_tap: 'qgate-edge-port-0' is not an interface name (1..15 of letters, digits, "
		       "'_', '.', '-')");
	ExpectOneError(DpdkPortWith("kernel_tap: \"eth 0\""), 6, 21,
		       "kernel_tap: 'eth 0' is not an interface name");
	ExpectOneError(DpdkPortWith("kernel_tap: \"..\""), 6, 21,
		       "kernel_tap: '..' is not an interface name");
	ExpectOneError("dataplane:\n  dpdk:\n    ports:\n"
		       "      - {name: a, addresses: [10.0.0.1/8], kernel_tap: qg0}\n"
		       "      - {name: b, addresses: [10.0.0.2/8], kernel_tap: qg0}\n" +
			       kServices,
		       5, 9, "kernel_tap: 'qg0' is already port a's (line 4)");
}

TEST(ConfigErrors, HashOnlyWithMaglev)
{
	// Reported at the key, whichever order policy and hash are written in.
	ExpectOneError("services:\n  - name: a\n    hash: src_ip\n    policy: wrr\n    listen: 1.2.3.4:5\n"
		       "    backends: [{address: 1.2.3.4:6}]\n",
		       3, 5, "hash is only allowed with policy maglev (policy is wrr)");
}

TEST(ConfigErrors, MaglevSizeOnlyWithMaglev)
{
	ExpectOneError("services:\n  - name: a\n    policy: least_conn\n    maglev_table_size: 65537\n"
		       "    listen: 1.2.3.4:5\n    backends: [{address: 1.2.3.4:6}]\n",
		       4, 5, "maglev_table_size is only allowed with policy maglev (policy is least_conn)");
}

TEST(ConfigErrors, MaglevSizeNotPrime)
{
	ExpectOneError(ServiceWith("maglev_table_size: 65536"), 3, 24,
		       "maglev_table_size: 65536 is not a prime (next prime: 65537)");
	ExpectOneError(ServiceWith("maglev_table_size: 1"), 3, 24, "1 is not a prime (next prime: 2)");
}

TEST(ConfigErrors, MaglevSizeSmallerThanBackends)
{
	ExpectOneError("services:\n  - name: a\n    maglev_table_size: 2\n    listen: 1.2.3.4:5\n"
		       "    backends: [{address: 1.2.3.4:6}, {address: 1.2.3.4:7}, {address: 1.2.3.4:8}]\n",
		       3, 24, "maglev_table_size: 2 is smaller than the number of backends (3)");
}

TEST(ConfigErrors, BadServiceName)
{
	ExpectOneError("services:\n  - name: 'my svc'\n    listen: 1.2.3.4:5\n    backends: [{address: "
		       "1.2.3.4:6}]\n",
		       2, 11, "name: 'my svc' contains ' ' (allowed: letters, digits, '_', '.', '-')");
	ExpectOneError(
		"services:\n  - name: ''\n    listen: 1.2.3.4:5\n    backends: [{address: 1.2.3.4:6}]\n", 2,
		11, "name: must not be empty (1..63 characters)");
	ExpectOneError("services:\n  - name: \"a\\0b\"\n    listen: 1.2.3.4:5\n    backends: [{address: "
		       "1.2.3.4:6}]\n",
		       2, 11, "name: value contains a NUL character");
	ExpectOneError("services:\n  - name: " + std::string(64, 'x') +
			       "\n    listen: 1.2.3.4:5\n    backends: [{address: 1.2.3.4:6}]\n",
		       2, 11, "is too long (64 characters, max 63)");
}

TEST(ConfigErrors, LongestNameIsAccepted)
{
	Result r;

	Load("services:\n  - name: " + std::string(63, 'x') +
		     "\n    listen: 1.2.3.4:5\n    backends: [{address: 1.2.3.4:6}]\n",
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(strlen(r.cfg->services[0].name), 63u);
}

TEST(ConfigErrors, DuplicateServiceName)
{
	ExpectOneError(
		kServices +
			"  - name: echo\n    listen: 127.0.0.1:4434\n    backends: [{address: 1.2.3.4:6}]\n",
		6, 11, "duplicate service name 'echo' (first defined at line 2)");
}

TEST(ConfigErrors, DuplicateListenAddress)
{
	ExpectOneError(
		kServices +
			"  - name: two\n    listen: 127.0.0.1:4433\n    backends: [{address: 1.2.3.4:6}]\n",
		7, 13, "duplicate listen address 127.0.0.1:4433 (already used by service 'echo' at line 3)");
}

TEST(ConfigErrors, DuplicateBackend)
{
	ExpectOneError(
		kServices + "      - address: 127.0.0.1:5002\n      - {address: 127.0.0.1:5001, weight: 2}\n",
		7, 19, "duplicate backend 127.0.0.1:5001 (first at line 5)");
}

TEST(ConfigErrors, SameBackendInTwoServicesIsFine)
{
	Result r;

	Load(kServices +
		     "  - name: two\n    listen: 127.0.0.1:4434\n    backends: [{address: 127.0.0.1:5001}]\n",
	     &r);
	EXPECT_EQ(r.ret, 0) << Dump(r.errs);
}

TEST(ConfigErrors, NoBackends)
{
	ExpectOneError("services:\n  - name: echo\n    listen: 1.2.3.4:5\n    backends: []\n", 4, 15,
		       "backends: no backends (a service needs 1..4096)");
}

TEST(ConfigErrors, EmptyServices)
{
	ExpectOneError("dataplane:\n  burst: 8\nservices: []\n", 3, 11,
		       "services: no services defined (expected 1..256)");
}

TEST(ConfigErrors, MissingServices)
{
	ExpectOneError("# only a dataplane\ndataplane:\n  burst: 8\n", 2, 1,
		       "the configuration is missing required key 'services'");
}

TEST(ConfigErrors, MissingServiceKeys)
{
	ExpectOneError("services:\n  - listen: 1.2.3.4:5\n    backends: [{address: 1.2.3.4:6}]\n", 2, 5,
		       "service is missing required key 'name'");
	ExpectOneError("services:\n  - name: a\n    backends: [{address: 1.2.3.4:6}]\n", 2, 5,
		       "service is missing required key 'listen'");
	ExpectOneError("services:\n  - name: a\n    listen: 1.2.3.4:5\n", 2, 5,
		       "service is missing required key 'backends'");
	ExpectOneError("services:\n  - {name: a, listen: 1.2.3.4:5}\n", 2, 5,
		       "service is missing required key 'backends'");
}

TEST(ConfigErrors, MissingBackendAddress)
{
	ExpectOneError("services:\n  - name: a\n    listen: 1.2.3.4:5\n    backends:\n      - weight: 3\n", 5,
		       9, "backend is missing required key 'address'");
}

TEST(ConfigErrors, CoreNotAvailable)
{
	int cpu = UnavailableCpu();
	cpu_set_t set;
	std::string allowed;

	if (cpu < 0)
		GTEST_SKIP() << "every CPU is allowed";
	// Build the expected list ("0-1") the way the loader prints it.
	CPU_ZERO(&set);
	ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		int last = c;
		while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
			last++;
		if (!allowed.empty())
			allowed += ",";
		allowed += std::to_string(c);
		if (last != c)
			allowed += "-" + std::to_string(last);
		c = last;
	}
	ExpectOneError(DataplaneWith("cores: [" + std::to_string(cpu) + "]"), 2, 11,
		       "core " + std::to_string(cpu) + " is not available (allowed CPUs: " + allowed + ")");
}

TEST(ConfigErrors, CoreDuplicate)
{
	std::string c = std::to_string(FirstAllowedCpu());

	ExpectOneError(DataplaneWith("cores: [" + c + ", " + c + "]"), 2, 13 + (int)c.size(),
		       "core " + c + " is listed twice (first at line 2, column 11)");
}

TEST(ConfigErrors, CoresCount)
{
	std::string many = "[";

	ExpectOneError(DataplaneWith("cores: []"), 2, 10, "cores: 0 entries, expected 1..64 CPUs");
	for (int i = 0; i < 65; i++)
		many += std::to_string(FirstAllowedCpu()) + (i < 64 ? "," : "]");
	Result r;
	Load(DataplaneWith("cores: " + many), &r);
	ASSERT_EQ(r.ret, -EINVAL);
	ASSERT_GE(r.errs.count, 1u);
	EXPECT_EQ(r.errs.items[0].line, 2);
	EXPECT_EQ(r.errs.items[0].column, 10);
	EXPECT_NE(std::string(r.errs.items[0].msg).find("cores: 65 entries, expected 1..64 CPUs"),
		  std::string::npos);
}

TEST(ConfigErrors, CoreNotANumber)
{
	ExpectOneError(DataplaneWith("cores: [a]"), 2, 11, "core: 'a' is not a decimal integer");
	ExpectOneError(DataplaneWith("cores: [-1]"), 2, 11, "core: -1 is negative");
}

TEST(ConfigErrors, YamlSyntaxError)
{
	// An unclosed flow sequence: libyaml points at where it gave up.
	ExpectOneError("services:\n  - name: echo\n    listen: [1.2.3.4:5\n", 4, 1,
		       "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
		       "at line 3)");
	ExpectOneError("services:\n  - name: echo\n   bad: indent\n", 3, 4, "YAML syntax error:");
	ExpectOneError("a: b: c\n", 1, 5,
		       "YAML syntax error: mapping values are not allowed in this context");
	ExpectOneError("services: *nothing\n", 1, 11, "YAML syntax error: found undefined alias");
}

TEST(ConfigErrors, TabIndentation)
{
	ExpectOneError(
		"services:\n\t- name: echo\n", 2, 1,
		"found character that cannot start any token (while scanning for the next token at line 2); "
		"YAML does not allow tabs for indentation");
}

TEST(ConfigErrors, UnquotedIpv6EndpointGetsAHint)
{
	const char *yaml = "services:\n"
			   "  - name: echo\n"
			   "    listen: [::1]:4433\n"
			   "    backends:\n"
			   "      - address: \"[::1]:5001\"\n";
	struct qg_config *cfg = nullptr;
	struct qg_config_errors errs;
	memset(&errs, 0, sizeof(errs));
	ASSERT_EQ(qg_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &errs), -EINVAL);
	ASSERT_EQ(errs.count, 1u);
	EXPECT_EQ(errs.items[0].line, 3);
	EXPECT_NE(std::string(errs.items[0].msg).find("quote IPv6 endpoints, e.g. \"[::1]:4433\""),
		  std::string::npos)
		<< errs.items[0].msg;
}

TEST(ConfigErrors, InvalidUtf8)
{
	ExpectOneError(std::string("services: \xff\n"), 0, 0,
		       "YAML error: invalid leading UTF-8 octet at byte offset 10");
}

TEST(ConfigErrors, EmptyFile)
{
	ExpectOneError("", 0, 0, "the configuration is empty");
	ExpectOneError("# just a comment\n\n", 0, 0, "the configuration is empty");
}

TEST(ConfigErrors, SecondDocument)
{
	ExpectOneError(kServices + "---\nservices: []\n", 7, 1, "only one YAML document is allowed");
}

TEST(ConfigErrors, AliasesAreFollowed)
{
	Result r;

	Load("services:\n  - name: a\n    listen: 1.2.3.4:5\n    backends: &b [{address: 1.2.3.4:6}]\n"
	     "  - name: b\n    listen: 1.2.3.4:7\n    backends: *b\n",
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(Addr(r.cfg->services[1].backends[0].addr), "1.2.3.4:6");
}

// ---- several problems at once ----

TEST(ConfigErrors, AllProblemsInDocumentOrder)
{
	// Found in another order than written: the missing key (at the mapping's
	// start) is noticed after its keys, the duplicate name after both copies.
	std::string y = "dataplane:\n"					       // 1
			"  burst: 0\n"					       // 2 col 10
			"  colour: blue\n"				       // 3 col 3
			"stats_interval: soon\n"			       // 4 col 17
			"services:\n"					       // 5
			"  - name: a\n"					       // 6
			"    listen: 1.2.3.4:5\n"			       // 7
			"    idle_timeout: 0\n"				       // 8 col 19
			"  - name: a\n"					       // 9 col 11 (duplicate)
			"    listen: nowhere\n"				       // 10 col 13
			"    backends: [{address: 1.2.3.4:6, weight: 2000}]\n" // 11 col 45
			"  - policy: wrr\n"   // 12 col 5 (missing name, listen, backends)
			"    hash: src_ip\n"; // 13 col 5
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, -EINVAL);
	struct {
		int line, column;
		const char *text;
	} want[] = {
		{ 2, 10, "burst: 0 is out of range" },
		{ 3, 3, "unknown key 'colour' in dataplane" },
		{ 4, 17, "stats_interval: 'soon' is not a duration" },
		{ 6, 5, "service is missing required key 'backends'" },
		{ 8, 19, "idle_timeout: 0 is out of range" },
		{ 9, 11, "duplicate service name 'a' (first defined at line 6)" },
		{ 10, 13, "listen: 'nowhere' is not an address" },
		{ 11, 45, "weight: 2000 is out of range (0..1000)" },
		{ 12, 5, "service is missing required key 'name'" },
		{ 12, 5, "service is missing required key 'listen'" },
		{ 12, 5, "service is missing required key 'backends'" },
		{ 13, 5, "hash is only allowed with policy maglev (policy is wrr)" },
	};
	ASSERT_EQ(r.errs.count, sizeof(want) / sizeof(want[0])) << Dump(r.errs);
	EXPECT_EQ(r.errs.dropped, 0u);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		SCOPED_TRACE(i);
		EXPECT_EQ(r.errs.items[i].line, want[i].line) << Dump(r.errs);
		EXPECT_EQ(r.errs.items[i].column, want[i].column) << Dump(r.errs);
		EXPECT_NE(std::string(r.errs.items[i].msg).find(want[i].text), std::string::npos)
			<< r.errs.items[i].msg;
	}
}

TEST(ConfigErrors, TooManyProblemsKeepsTheFirst)
{
	// 40 bad backends; the duplicate checks run last but must not push out earlier lines.
	std::string y = "services:\n  - name: a\n    listen: 1.2.3.4:5\n    backends:\n";
	for (int i = 0; i < 40; i++)
		y += "      - {address: 1.2.3.4:6, weight: -1}\n"; // line 5 + i
	Result r;

	Load(y, &r);
	ASSERT_EQ(r.ret, -EINVAL);
	ASSERT_EQ(r.errs.count, (unsigned)QG_CONFIG_MAX_ERRORS);
	// 40 weights + 39 duplicates = 79 problems.
	EXPECT_EQ(r.errs.dropped, 79u - QG_CONFIG_MAX_ERRORS);
	// Line 5 has one problem (weight), each following line two (duplicate address first).
	EXPECT_EQ(r.errs.items[0].line, 5);
	EXPECT_NE(std::string(r.errs.items[0].msg).find("weight: -1 is negative"), std::string::npos);
	EXPECT_EQ(r.errs.items[1].line, 6);
	EXPECT_EQ(r.errs.items[1].column, 19);
	EXPECT_NE(std::string(r.errs.items[1].msg).find("duplicate backend 1.2.3.4:6 (first at line 5)"),
		  std::string::npos);
	EXPECT_EQ(r.errs.items[2].line, 6);
	EXPECT_EQ(r.errs.items[2].column, 38);
	for (unsigned i = 1; i < r.errs.count; i++) {
		const qg_config_error &a = r.errs.items[i - 1], &b = r.errs.items[i];
		EXPECT_TRUE(a.line < b.line || (a.line == b.line && a.column <= b.column)) << Dump(r.errs);
	}
	EXPECT_EQ(r.errs.items[QG_CONFIG_MAX_ERRORS - 1].line, 21);
}

// ---- printing ----

std::string Print(const qg_config_errors &errs)
{
	char buf[8192] = {};
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	EXPECT_NE(f, nullptr);
	if (!f)
		return "";
	qg_config_errors_print(&errs, f);
	fclose(f);
	return buf;
}

TEST(ConfigPrint, FileLineColumnMessage)
{
	Result r;

	Load("services:\n  - name: echo\n    listen: 1.2.3.4:5\n    policy: wrr\n    hash: src_ip\n"
	     "    backends: [{address: 1.2.3.4:6, weight: 1001}]\n",
	     &r);
	ASSERT_EQ(r.ret, -EINVAL);
	EXPECT_EQ(Print(r.errs), "test.yaml:5:5: hash is only allowed with policy maglev (policy is wrr)\n"
				 "test.yaml:6:45: weight: 1001 is out of range (0..1000)\n");
}

TEST(ConfigPrint, NoLineForFileProblems)
{
	Result r;

	Load("", &r);
	EXPECT_EQ(Print(r.errs),
		  "test.yaml: the configuration is empty (it needs at least a 'services' list)\n");
}

TEST(ConfigPrint, DroppedCount)
{
	qg_config_errors errs;

	memset(&errs, 0, sizeof(errs));
	strcpy(errs.file, "f.yaml");
	errs.count = 1;
	errs.items[0].line = 3;
	errs.items[0].column = 7;
	strcpy(errs.items[0].msg, "bad");
	errs.dropped = 5;
	EXPECT_EQ(Print(errs), "f.yaml:3:7: bad\nf.yaml: 5 more problems not shown\n");
}

// ---- files ----

TEST(ConfigFile, Missing)
{
	qg_config *cfg = kSentinel;
	qg_config_errors errs;
	const char *path = "/nonexistent/qgate-test.yaml";

	EXPECT_EQ(qg_config_load_file(path, &cfg, &errs), -ENOENT);
	EXPECT_EQ(cfg, kSentinel);
	EXPECT_STREQ(errs.file, path);
	ASSERT_EQ(errs.count, 1u);
	EXPECT_EQ(errs.items[0].line, 0);
	EXPECT_NE(std::string(errs.items[0].msg).find(strerror(ENOENT)), std::string::npos);
	EXPECT_EQ(Print(errs), std::string(path) + ": cannot open: " + strerror(ENOENT) + "\n");
}

TEST(ConfigFile, Directory)
{
	qg_config *cfg = kSentinel;
	qg_config_errors errs;

	EXPECT_EQ(qg_config_load_file("/", &cfg, &errs), -EISDIR);
	EXPECT_EQ(cfg, kSentinel);
	ASSERT_EQ(errs.count, 1u);
	EXPECT_NE(std::string(errs.items[0].msg).find(strerror(EISDIR)), std::string::npos);
}

class TempFile
{
      public:
	explicit TempFile(const std::string &text)
	{
		char tmpl[] = "/tmp/qgate-config-XXXXXX";
		int fd = mkstemp(tmpl);

		EXPECT_GE(fd, 0);
		path_ = tmpl;
		EXPECT_EQ(write(fd, text.data(), text.size()), (ssize_t)text.size());
		close(fd);
	}
	~TempFile()
	{
		unlink(path_.c_str());
	}
	const std::string &path() const
	{
		return path_;
	}

      private:
	std::string path_;
};

TEST(ConfigFile, Valid)
{
	// Bigger than one read buffer, so the reader has to grow.
	std::string y = std::string(10000, '#') + "\n" + kServices;
	TempFile t(y);
	qg_config *cfg = nullptr;
	qg_config_errors errs;

	ASSERT_EQ(qg_config_load_file(t.path().c_str(), &cfg, &errs), 0) << Dump(errs);
	EXPECT_STREQ(cfg->source, t.path().c_str());
	ASSERT_EQ(cfg->n_services, 1u);
	EXPECT_EQ(cfg->services[0].line, 3);
	qg_config_free(cfg);
}

TEST(ConfigFile, InvalidNamesTheFile)
{
	TempFile t("services:\n  - name: echo\n    listen: 1.2.3.4:5\n    backends: []\n");
	qg_config *cfg = kSentinel;
	qg_config_errors errs;

	EXPECT_EQ(qg_config_load_file(t.path().c_str(), &cfg, &errs), -EINVAL);
	EXPECT_EQ(cfg, kSentinel);
	EXPECT_EQ(Print(errs), t.path() + ":4:15: backends: no backends (a service needs 1..4096)\n");
}
