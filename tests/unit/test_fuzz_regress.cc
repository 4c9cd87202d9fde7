// SPDX-License-Identifier: BSD-3-Clause
// Regressions found by the libFuzzer targets (tests/fuzz/), each replaying
// the input that failed, so the fix stays fixed without clang.
//
// fuzz_admin: the dataplane is replaced at link time (-Wl,--wrap, see
// tests/CMakeLists.txt) by a stub that keeps the weights it is told and
// fails the calls the input's fail mask names, as the harness does.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "qgate/admin.h"
#include "qgate/config.h"
#include "qgate/dataplane.h"

namespace
{

// The stub dataplane's state: the fuzz harness's fail mask and call count.
struct StubDataplane {
	std::vector<uint8_t> fail_mask;
	unsigned calls = 0;
	std::vector<std::string> applied; // "service backend weight" of each successful call
};

StubDataplane *g_stub;

} // namespace

extern "C" int __wrap_qg_dataplane_set_weight(struct qg_dataplane *dp, const char *service,
					      const struct qg_addr *backend, uint32_t weight)
{
	char text[QG_ADDR_STRLEN];
	unsigned call = g_stub->calls++;

	(void)dp;
	if (call / 8 < g_stub->fail_mask.size() && (g_stub->fail_mask[call / 8] >> (call % 8) & 1))
		return -ENOMEM;
	g_stub->applied.push_back(std::string(service) + " " + qg_addr_format(backend, text, sizeof(text)) +
				  " " + std::to_string(weight));
	return 0;
}

namespace
{

const char kAdminYaml[] = "services:\n"
			  "  - name: dns\n"
			  "    listen: 0.0.0.0:53\n"
			  "    backends:\n"
			  "      - address: 10.0.0.1:53\n"
			  "      - address: 10.0.0.2:53\n"
			  "        weight: 2\n";

struct AdminSession {
	qg_config *cfg = nullptr;
	qg_admin_target t{};
	StubDataplane stub;
	std::vector<std::string> answers;

	AdminSession()
	{
		qg_config_errors errs;

		EXPECT_EQ(
			qg_config_load_string("admin.yaml", kAdminYaml, sizeof(kAdminYaml) - 1, &cfg, &errs),
			0);
		EXPECT_EQ(qg_admin_target_init(&t, cfg), 0);
		// Never dereferenced: every dataplane call these commands make is the stub's.
		t.dp = reinterpret_cast<qg_dataplane *>(&stub);
		g_stub = &stub;
	}
	~AdminSession()
	{
		qg_admin_target_fini(&t);
		qg_config_free(cfg);
		g_stub = nullptr;
	}

	// Replay a fuzz_admin input: an optional "!MASK" first line, then request lines.
	void Replay(const std::string &input)
	{
		size_t off = 0;

		if (!input.empty() && input[0] == '!') {
			size_t nl = input.find('\n');
			std::string mask =
				input.substr(1, nl == std::string::npos ? std::string::npos : nl - 1);

			stub.fail_mask.assign(mask.begin(), mask.end());
			off = nl == std::string::npos ? input.size() : nl + 1;
		}
		while (off < input.size()) {
			size_t nl = input.find('\n', off);
			std::string line =
				input.substr(off, nl == std::string::npos ? std::string::npos : nl - off);
			char *out = nullptr;
			size_t out_len = 0;

			off = nl == std::string::npos ? input.size() : nl + 1;
			ASSERT_GE(qg_admin_execute(&t, line.c_str(), &out, &out_len), 0);
			answers.emplace_back(out, out_len);
			free(out);
		}
	}
};

// tests/fuzz/corpus/admin/fail_injection.txt: the dataplane refuses the
// "weight" of a drained backend. The refusal used to forget the drain: the
// backend stayed at weight 0 and "undrain" answered "not drained".
TEST(FuzzRegress, AdminRefusedWeightKeepsTheDrain)
{
	AdminSession s;

	s.Replay(std::string("!\x02\n"
			     "drain dns 10.0.0.1:53\n"
			     "weight dns 10.0.0.1:53 5\n"
			     "undrain dns 10.0.0.1:53\n"));
	ASSERT_EQ(s.answers.size(), 3u);
	EXPECT_EQ(s.answers[0], "OK\ndns 10.0.0.1:53: drain, weight 1 -> 0\n");
	EXPECT_EQ(s.answers[1], "ERR cannot set the weight of dns 10.0.0.1:53: Cannot allocate memory\n");
	EXPECT_EQ(s.answers[2], "OK\ndns 10.0.0.1:53: undrain, weight 0 -> 1\n");
	EXPECT_EQ(s.t.weights[0], 1u);
	EXPECT_EQ(s.t.saved[0], QG_ADMIN_NOT_DRAINED);
	ASSERT_EQ(s.stub.applied.size(), 2u);
	EXPECT_EQ(s.stub.applied[1], "dns 10.0.0.1:53 1");
}

// The same refusal in JSON, and an accepted weight after it: it ends the drain.
TEST(FuzzRegress, AdminWeightAfterRefusalEndsTheDrain)
{
	AdminSession s;

	s.Replay(std::string("!\x02\n"
			     "drain dns 10.0.0.2:53\n"
			     "json weight dns 10.0.0.2:53 5\n"
			     "weight dns 10.0.0.2:53 5\n"
			     "undrain dns 10.0.0.2:53\n"));
	ASSERT_EQ(s.answers.size(), 4u);
	EXPECT_EQ(s.answers[1].rfind("ERR cannot set the weight", 0), 0u) << s.answers[1];
	EXPECT_NE(s.answers[1].find("\n{\"error\":"), std::string::npos) << s.answers[1];
	EXPECT_EQ(s.t.saved[1], QG_ADMIN_NOT_DRAINED);
	EXPECT_EQ(s.t.weights[1], 5u);
	EXPECT_EQ(s.answers[3], "ERR dns 10.0.0.2:53 is not drained (weight 5); use 'weight' to change it\n");
}

} // namespace
