// SPDX-License-Identifier: BSD-3-Clause
// The protection path end to end on loopback: the real qgate (QGATE_BIN) with
// a 32-flow table, its workers' telemetry rings drained by the control loop,
// the degradation controller driving the dataplane's level, and the real
// qgatectl (QGATECTL_BIN) and a metrics scrape showing it. Filling the flow
// table with clients of a high-priority service raises the level to shed:
// new flows of the low-priority service are refused (counted as "shed")
// while its established flow still relays; once the flows expire the level
// steps back to normal after the configured dwell. The operator floor
// (level set / level auto) is checked the same way. Conditions are awaited
// with bounded polls, never timed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "integration/proc.h"
#include "integration/udp_peers.h"

#ifndef QGATE_BIN
#error "QGATE_BIN (path of the qgate executable) must be defined by the build"
#endif
#ifndef QGATECTL_BIN
#error "QGATECTL_BIN (path of the qgatectl executable) must be defined by the build"
#endif

namespace
{

using qgt::Client;
using qgt::EchoServer;
using qgt::FreeTcpPort;
using qgt::HttpGet;
using qgt::Result;
using qgt::TempDir;
using qgt::WaitFor;

constexpr int kFlows = 32; // flows_per_core: 10 flows pass protect (0.3), 16 pass shed (0.5)

// GET /metrics over HTTP/1.0: the body, "" on failure.
std::string Scrape(uint16_t port)
{
	std::string resp = qgt::HttpGet(port, "/metrics");
	size_t body = resp.find("\r\n\r\n");
	return body == std::string::npos ? "" : resp.substr(body + 4);
}

// The value of one sample line "name{labels} value" (labels exactly as rendered), -1 when absent.
double Metric(const std::string &text, const std::string &series)
{
	size_t at = text.find("\n" + series + " ");
	if (at == std::string::npos)
		return -1;
	return std::stod(text.substr(at + series.size() + 2));
}

// The value of "key": in a JSON text, as a string: a string's contents, or a number / null / true / false as
// written ("" when absent). Enough for qgatectl's flat answers (no escaped quotes in the fields read).
std::string JsonField(const std::string &json, const std::string &key)
{
	size_t at = json.find("\"" + key + "\":");
	if (at == std::string::npos)
		return "";
	at += key.size() + 3;
	if (json[at] == '"') {
		size_t end = json.find('"', at + 1);
		return end == std::string::npos ? "" : json.substr(at + 1, end - at - 1);
	}
	size_t end = json.find_first_of(",}]", at);
	return json.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

class Protect : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		ASSERT_TRUE(dir_.ok());
		sock_ = dir_.File("admin.sock");
		metrics_port_ = FreeTcpPort();
		ASSERT_NE(metrics_port_, 0);
		bulk_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		vip_ = "127.0.0.1:" + std::to_string(qgt::FreePort());
		std::string yaml =
			"metrics: {listen: 127.0.0.1:" + std::to_string(metrics_port_) +
			"}\n"
			"admin: {socket: " +
			sock_ +
			"}\n"
			"drain_timeout: 0\n"
			"dataplane:\n"
			"  backend: recvmmsg\n"
			"  cores: [" +
			std::to_string(qgt::FirstAllowedCpu()) +
			"]\n"
			"  flows_per_core: " +
			std::to_string(kFlows) +
			"\n"
			"degradation:\n"
			"  min_dwell: 1s\n"
			"  anomaly_hold: 1s\n"
			"  flow_fill: {protect: [0.3, 0.2], shed: [0.5, 0.4], essential: [0.99, 0.98]}\n"
			"services:\n"
			"  - name: bulk\n"
			"    listen: " +
			bulk_ +
			"\n"
			"    priority: low\n"
			"    idle_timeout: 4s\n"
			"    backends:\n"
			"      - address: " +
			a_.addr_str() +
			"\n"
			"  - name: vip\n"
			"    listen: " +
			vip_ +
			"\n"
			"    priority: high\n"
			"    idle_timeout: 4s\n"
			"    backends:\n"
			"      - address: " +
			b_.addr_str() + "\n";
		cfg_ = dir_.Write("qgate.yaml", yaml);
		q_.reset(new qgt::Child(dir_, "qgate", qgt::Cmd(QGATE_BIN, { "-c", cfg_ })));
		bool up = WaitFor([this] { return q_->Exited() || Ctl({ "status" }).status == 0; }, 10000);
		ASSERT_TRUE(up && !q_->Exited()) << "qgate did not come up" << q_->Describe();
	}
	Result Ctl(std::vector<std::string> args)
	{
		args.insert(args.begin(), { "-s", sock_ });
		return qgt::Run(qgt::Cmd(QGATECTL_BIN, args), 15000);
	}
	std::string Level()
	{
		Result r = Ctl({ "level", "--json" });
		return r.status == 0 ? JsonField(r.out, "level") : "?";
	}
	bool WaitLevel(const std::string &want, int timeout_ms)
	{
		return WaitFor([&] { return Level() == want; }, timeout_ms, 100);
	}
	// A new client of the service at addr gets its echo (a new flow was admitted).
	bool NewFlowAdmitted(const std::string &addr, uint32_t id)
	{
		Client c;
		return qgt::RoundTrip(c, qgt::Addr(addr), qgt::Payload(id, 0, 64), 300, 2);
	}

	TempDir dir_{ "qgate-protect" };
	EchoServer a_, b_;
	std::string sock_, cfg_, bulk_, vip_;
	uint16_t metrics_port_ = 0;
	std::unique_ptr<qgt::Child> q_;
};

TEST_F(Protect, FullFlowTableShedsLowPriorityThenRecovers)
{
	Result r = Ctl({ "level", "--json" });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(JsonField(r.out, "level"), "normal") << r.out;
	EXPECT_EQ(JsonField(r.out, "mode"), "auto") << r.out;
	std::string m = Scrape(metrics_port_);
	EXPECT_EQ(Metric(m, "qgate_degradation_level"), 0) << m;
	EXPECT_GE(Metric(m, "qgate_ring_occupancy{ring=\"telemetry\",worker=\"0\"}"), 0) << m;
	EXPECT_EQ(Metric(m, "qgate_ring_capacity{ring=\"telemetry\",worker=\"0\"}"), 255) << m;
	EXPECT_EQ(Metric(m, "qgate_ring_drops_total{ring=\"telemetry\",worker=\"0\"}"), 0) << m;
	EXPECT_EQ(Metric(m, "qgate_anomalies_total{series=\"new_flows_per_s\"}"), 0) << m;

	// One established flow of the low-priority service.
	Client est;
	qg_addr bulk = qgt::Addr(bulk_);
	ASSERT_TRUE(qgt::RoundTrip(est, bulk, qgt::Payload(1, 0, 64)));

	// Fill the table past shed's enter threshold with high-priority clients.
	std::vector<std::unique_ptr<Client>> vips;
	for (uint32_t id = 100; id < 100 + 20; id++) {
		vips.emplace_back(new Client);
		ASSERT_TRUE(qgt::RoundTrip(*vips.back(), qgt::Addr(vip_), qgt::Payload(id, 0, 64))) << id;
	}
	ASSERT_TRUE(WaitLevel("shed", 5000)) << Ctl({ "level" }).out << q_->Describe();

	r = Ctl({ "level", "--json" });
	EXPECT_NE(JsonField(r.out, "reason").find("flow_fill"), std::string::npos) << r.out;
	EXPECT_GE(std::stod(JsonField(r.out, "flow_fill")), 0.5) << r.out;
	r = Ctl({ "level" });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("level: shed (2) since "), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("why: flow_fill"), std::string::npos) << r.out;

	// New low-priority flows are refused and counted; the established one relays; high priority is
	// admitted.
	EXPECT_FALSE(NewFlowAdmitted(bulk_, 2)) << "a new flow of a low-priority service passed at shed";
	EXPECT_TRUE(qgt::RoundTrip(est, bulk, qgt::Payload(1, 1, 64))) << "the established flow stopped";
	EXPECT_TRUE(NewFlowAdmitted(vip_, 200)) << "a high-priority service lost new flows at shed";
	m = Scrape(metrics_port_);
	EXPECT_EQ(Metric(m, "qgate_degradation_level"), 2) << m;
	EXPECT_GE(Metric(m, "qgate_drops_total{reason=\"shed\"}"), 1) << m;
	EXPECT_GE(Metric(m, "qgate_degradation_level_changes_total"), 1) << m;
	r = Ctl({ "events" });
	EXPECT_NE(r.out.find("level_change"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("-> shed: flow_fill"), std::string::npos) << r.out;

	// Quiet: the flows expire (4 s idle), then one level per dwell (1 s) back to normal.
	ASSERT_TRUE(WaitLevel("normal", 15000)) << Ctl({ "level" }).out << q_->Describe();
	r = Ctl({ "events" });
	EXPECT_NE(r.out.find("shed -> protect"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("protect -> normal"), std::string::npos) << r.out;
	EXPECT_TRUE(NewFlowAdmitted(bulk_, 3)) << "low priority still refused at normal";
	EXPECT_EQ(Metric(Scrape(metrics_port_), "qgate_degradation_level"), 0);
}

TEST_F(Protect, OperatorFloorAndAuto)
{
	Result r = Ctl({ "level", "set", "essential", "--json" });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(JsonField(r.out, "level"), "essential") << r.out;
	EXPECT_EQ(JsonField(r.out, "mode"), "floor") << r.out;
	EXPECT_EQ(JsonField(r.out, "floor"), "essential") << r.out;
	EXPECT_EQ(JsonField(r.out, "controller"), "normal") << r.out;
	EXPECT_NE(JsonField(r.out, "reason").find("operator floor essential"), std::string::npos) << r.out;

	// Essential: no new flow at all, whatever the priority; the floor holds while resources are calm.
	EXPECT_FALSE(NewFlowAdmitted(vip_, 10));
	EXPECT_FALSE(NewFlowAdmitted(bulk_, 11));
	EXPECT_GE(Metric(Scrape(metrics_port_), "qgate_drops_total{reason=\"shed\"}"), 2);
	r = Ctl({ "level" });
	EXPECT_NE(r.out.find("operator floor: essential"), std::string::npos) << r.out;
	EXPECT_EQ(Level(), "essential");

	r = Ctl({ "level", "auto" });
	ASSERT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("level: normal"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("operator floor: none (auto)"), std::string::npos) << r.out;
	EXPECT_TRUE(NewFlowAdmitted(vip_, 12));
	r = Ctl({ "events" });
	EXPECT_NE(r.out.find("level set essential"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("level auto"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("essential -> normal"), std::string::npos) << r.out;

	// Refusals: a level qgate does not know exits 1; a wrong shape never reaches qgate (exit 2).
	r = Ctl({ "level", "set", "panic" });
	EXPECT_EQ(r.status, 1) << r.err;
	EXPECT_NE(r.err.find("unknown level 'panic' (normal, protect, shed, essential)"), std::string::npos)
		<< r.err;
	EXPECT_EQ(Ctl({ "level", "set" }).status, 2);
	EXPECT_EQ(Ctl({ "level", "up" }).status, 2);
	EXPECT_EQ(Ctl({ "level", "set", "shed", "now" }).status, 2);
}

} // namespace
