// SPDX-License-Identifier: BSD-3-Clause
// The qgate daemon with a bridges section and Bluetooth backend paths: on a
// kernel without Bluetooth it warns once and runs without the bridge; with
// Bluetooth the bridge component runs. Either way the services start and
// qgate stops cleanly.
#include <gtest/gtest.h>

#include <signal.h>

#include <string>

#include "integration/proc.h"
#include "qgate/bridge.h"

namespace
{

// Ports below the ephemeral range (32768..): no client socket of a concurrent test can hold them.
const char kConfig[] = "dataplane:\n"
		       "  backend: recvmmsg\n"
		       "services:\n"
		       "  - name: sensors\n"
		       "    listen: 127.0.0.1:29531\n"
		       "    backends:\n"
		       "      - address: 127.0.0.1:29532\n"
		       "      - paths: [127.0.0.1:29533, bt://00:11:22:33:44:55/0x1001]\n"
		       "      - address: bt-le://00:11:22:33:44:56/0x0081\n"
		       "bridges:\n"
		       "  - type: bluetooth\n"
		       "    psm: 0x1001\n"
		       "    service: sensors\n"
		       "    security: low\n";

TEST(BridgeDaemon, CheckConfigAcceptsBridges)
{
	qgt::TempDir dir("qgate-bridge");
	ASSERT_TRUE(dir.ok());
	std::string path = dir.Write("bt.yaml", kConfig);
	qgt::Result r = qgt::Run(qgt::Cmd(QGATE_BIN, { "--check-config", path }));
	EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST(BridgeDaemon, StartsWithOrWithoutBluetooth)
{
	qgt::TempDir dir("qgate-bridge");
	ASSERT_TRUE(dir.ok());
	std::string path = dir.Write("bt.yaml", kConfig);
	qgt::Child q(dir, "qgate", qgt::Cmd(QGATE_BIN, { "-c", path }));
	ASSERT_TRUE(q.started()) << q.spawn_error();
	ASSERT_TRUE(q.WaitForErr("qgate: info: ready", 10000)) << q.Describe();
	std::string err = q.err();
	if (qg_bridge_probe() != 0) {
		EXPECT_NE(err.find("warning: bridge: Bluetooth sockets are not available here"),
			  std::string::npos)
			<< err;
		EXPECT_EQ(err.find("component bridge"), std::string::npos) << "not registered: " << err;
		// Without the bridge, the Bluetooth-only backend with a weight can take no flow: said once.
		EXPECT_NE(err.find("backend 2 (line 9) has no udp path and the bridge is not running"),
			  std::string::npos)
			<< err;
	} else {
		EXPECT_NE(err.find("component bridge running"), std::string::npos) << err;
		// The workers relay over the bridge: nothing to warn about.
		EXPECT_EQ(err.find("has no udp path"), std::string::npos) << err;
	}
	EXPECT_TRUE(q.Stop(5000)) << q.Describe();
	EXPECT_EQ(q.code(), 0) << q.Describe();
}

} // namespace
