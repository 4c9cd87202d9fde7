// SPDX-License-Identifier: BSD-3-Clause
// Configuration loader, the degradation section: defaults (degrade.h's),
// a full round trip, fractions and percentages, and each problem at its line
// and column (hysteresis, thresholds that do not rise with the level).
#include <gtest/gtest.h>

#include <string>

#include "unit/config_test_util.h"

using namespace qgcfg;

namespace
{

// The degradation section at line 1, its lines (indented by 2) from line 2, then valid services.
std::string Degradation(const std::string &lines)
{
	return "degradation:\n" + lines + kServices;
}

TEST(ConfigDegrade, AbsentMeansTheControllerWithDegradeDefaults)
{
	Result r;
	qg_degrade_cfg def;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	qg_degrade_cfg_default(&def);
	EXPECT_EQ(r.cfg->degradation.enabled, 1);
	EXPECT_EQ(r.cfg->degradation.ctl.min_dwell_ms, (uint64_t)QG_DEGRADE_DEFAULT_MIN_DWELL_MS);
	EXPECT_EQ(r.cfg->degradation.ctl.anomaly_hold_ms, (uint64_t)QG_DEGRADE_DEFAULT_ANOMALY_HOLD_MS);
	for (int res = 0; res < QG_DEGRADE_RES_COUNT; res++)
		for (int l = 1; l < QG_DEGRADE_LEVELS; l++) {
			EXPECT_EQ(r.cfg->degradation.ctl.band[res][l].enter, def.band[res][l].enter);
			EXPECT_EQ(r.cfg->degradation.ctl.band[res][l].exit, def.band[res][l].exit);
		}
	qg_degrade d;
	EXPECT_EQ(qg_degrade_init(&d, &r.cfg->degradation.ctl, 0), 0);
}

TEST(ConfigDegrade, RoundTrip)
{
	Result r;

	Load(Degradation("  enabled: false\n"
			 "  min_dwell: 1500ms\n"
			 "  anomaly_hold: 2s\n"
			 "  flow_fill: {protect: [0.3, 0.2], shed: [50%, 40%], essential: [1, 0.98]}\n"
			 "  ring_backlog:\n"
			 "    essential: [0.95, .5]\n"
			 "  worker_busy: {protect: [0.81, 0]}\n"),
	     &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const qg_config_degradation &d = r.cfg->degradation;
	EXPECT_EQ(d.enabled, 0);
	EXPECT_EQ(d.ctl.min_dwell_ms, 1500u);
	EXPECT_EQ(d.ctl.anomaly_hold_ms, 2000u);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_PROTECT].enter, 0.3);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_PROTECT].exit, 0.2);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_SHED].enter, 0.5);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_SHED].exit, 0.4);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_FLOW_FILL][QG_DEGRADE_ESSENTIAL].enter, 1.0);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_RING_BACKLOG][QG_DEGRADE_ESSENTIAL].enter, 0.95);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_RING_BACKLOG][QG_DEGRADE_ESSENTIAL].exit, 0.5);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_RING_BACKLOG][QG_DEGRADE_SHED].enter, 0.75)
		<< "default kept";
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_WORKER_BUSY][QG_DEGRADE_PROTECT].enter, 0.81);
	EXPECT_DOUBLE_EQ(d.ctl.band[QG_DEGRADE_RES_WORKER_BUSY][QG_DEGRADE_PROTECT].exit, 0.0);
	qg_degrade dg;
	EXPECT_EQ(qg_degrade_init(&dg, &d.ctl, 0), 0) << "whatever loads, the controller accepts";
}

TEST(ConfigDegrade, ExitMustBeBelowEnter)
{
	// line 2: "  flow_fill: {protect: [0.5, 0.5]}": the exit value is at column 30.
	ExpectOneError(Degradation("  flow_fill: {protect: [0.5, 0.5]}\n"), 2, 30,
		       "flow_fill.protect: exit 0.5 must be below enter 0.5");
}

TEST(ConfigDegrade, EnterMustRiseWithTheLevel)
{
	// shed written below the default protect enter (0.70): reported at shed's entry.
	ExpectOneError(Degradation("  flow_fill:\n"
				   "    shed: [0.6, 0.5]\n"),
		       3, 11, "flow_fill: shed enters at 0.6, not above protect's 0.7 (default)");
	// protect written above the default shed enter (0.85): reported at protect's entry.
	ExpectOneError(Degradation("  worker_busy:\n"
				   "    protect: [0.95, 0.7]\n"),
		       3, 14, "worker_busy: shed enters at 0.9 (default), not above protect's 0.95");
}

TEST(ConfigDegrade, Fractions)
{
	ExpectOneError(Degradation("  flow_fill: {shed: [1.5, 0.5]}\n"), 2, 22, "1.5 is more than 1");
	ExpectOneError(Degradation("  flow_fill: {shed: [150%, 0.5]}\n"), 2, 22, "150% is more than 1");
	ExpectOneError(Degradation("  flow_fill: {shed: [high, 0.5]}\n"), 2, 22,
		       "'high' is not a fraction (write 0.85 or 85%)");
	ExpectOneError(Degradation("  flow_fill: {shed: [-0.5, 0.1]}\n"), 2, 22, "is not a fraction");
	ExpectOneError(Degradation("  flow_fill: {shed: [1e-1, 0.01]}\n"), 2, 22, "is not a fraction");
}

TEST(ConfigDegrade, Shapes)
{
	ExpectOneError(Degradation("  flow_fill: {shed: 0.8}\n"), 2, 21,
		       "flow_fill.shed: expected [enter, exit]");
	ExpectOneError(Degradation("  flow_fill: {shed: [0.8]}\n"), 2, 21, "found another number of values");
	ExpectOneError(Degradation("  flow_fill: [0.8, 0.7]\n"), 2, 14,
		       "flow_fill: expected a mapping (protect, shed, essential)");
	ExpectOneError(Degradation("  flow_fill: {panic: [0.8, 0.7]}\n"), 2, 15, "unknown key 'panic'");
	ExpectOneError(Degradation("  dwell: 5s\n"), 2, 3, "unknown key 'dwell' in degradation");
	ExpectOneError(Degradation("  enabled: maybe\n"), 2, 12, "enabled");
	ExpectOneError(Degradation("  min_dwell: 2h\n"), 2, 14, "min_dwell");
	ExpectOneError("degradation: on\n" + kServices, 1, 14, "degradation: expected a mapping");
}

} // namespace
