// SPDX-License-Identifier: BSD-3-Clause
// Anomaly detection: EWMA z-score behaviour, direction-aware actions, the
// series registry and a second algorithm behind the ops table.
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "qgate/anomaly.h"

namespace
{

// splitmix64 + Box-Muller: the same numbers on every platform and standard
// library (std::normal_distribution is implementation-defined).
struct Gauss {
	uint64_t s;
	explicit Gauss(uint64_t seed) : s(seed)
	{
	}
	double u01()
	{
		uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
	}
	double next()
	{
		return std::sqrt(-2.0 * std::log(u01())) * std::cos(6.283185307179586 * u01());
	}
};

constexpr double MEAN = 1000.0, SD = 50.0; // 5 % noise: well above the 1 % floor

struct Registry : ::testing::Test {
	qg_anomaly_registry *reg = nullptr;
	void SetUp() override
	{
		ASSERT_EQ(qg_anomaly_registry_create(&reg), 0);
	}
	void TearDown() override
	{
		qg_anomaly_registry_destroy(reg);
	}
	qg_anomaly_series *add(const char *name, const qg_anomaly_params *p = nullptr)
	{
		qg_anomaly_series *s = nullptr;
		EXPECT_EQ(qg_anomaly_series_add(reg, name, nullptr, p, nullptr, &s), 0);
		return s;
	}
	// Feed n noise samples; returns how many were flagged.
	int noise(qg_anomaly_series *s, Gauss &g, int n, uint64_t &t)
	{
		int flagged = 0;
		qg_anomaly_record rec;
		for (int i = 0; i < n; i++)
			flagged += qg_anomaly_observe(s, MEAN + SD * g.next(), t++, &rec) == 1;
		return flagged;
	}
};

TEST_F(Registry, DefaultsAndValidation)
{
	qg_anomaly_params p;
	qg_anomaly_series *s;

	qg_anomaly_params_default(&p);
	EXPECT_DOUBLE_EQ(p.alpha, 0.01);
	EXPECT_EQ(p.warmup, 100u);
	EXPECT_DOUBLE_EQ(p.threshold, 5.0);
	EXPECT_EQ(p.rebaseline_after, 300u);

	ASSERT_NE(add("pps"), nullptr);
	EXPECT_EQ(qg_anomaly_series_add(reg, "pps", nullptr, nullptr, nullptr, &s), -EEXIST);
	EXPECT_EQ(qg_anomaly_series_add(reg, "", nullptr, nullptr, nullptr, &s), -EINVAL);
	EXPECT_EQ(qg_anomaly_series_add(reg, std::string(QG_ANOMALY_NAME_MAX, 'x').c_str(), nullptr, nullptr,
					nullptr, &s),
		  -EINVAL);
	for (double alpha : { 0.0, 1.0, std::nan("") }) {
		qg_anomaly_params_default(&p);
		p.alpha = alpha;
		EXPECT_EQ(qg_anomaly_series_add(reg, "a", nullptr, &p, nullptr, &s), -EINVAL) << alpha;
	}
	qg_anomaly_params_default(&p);
	p.floor_abs = 0.0;
	EXPECT_EQ(qg_anomaly_series_add(reg, "a", nullptr, &p, nullptr, &s), -EINVAL);
	qg_anomaly_params_default(&p);
	p.threshold = 0.0;
	EXPECT_EQ(qg_anomaly_series_add(reg, "a", nullptr, &p, nullptr, &s), -EINVAL);
	qg_anomaly_params_default(&p);
	p.warmup = 0;
	EXPECT_EQ(qg_anomaly_series_add(reg, "a", nullptr, &p, nullptr, &s), -EINVAL);
	EXPECT_EQ(qg_anomaly_series_count(reg), 1u);
}

TEST_F(Registry, FindRemoveAndIterate)
{
	add("pps");
	add("drops_per_s");
	add("probe_rtt:web/b1");
	EXPECT_EQ(qg_anomaly_series_count(reg), 3u);
	ASSERT_NE(qg_anomaly_series_find(reg, "probe_rtt:web/b1"), nullptr);
	EXPECT_STREQ(qg_anomaly_series_find(reg, "pps")->name, "pps");
	EXPECT_EQ(qg_anomaly_series_find(reg, "nope"), nullptr);
	EXPECT_EQ(qg_anomaly_series_remove(reg, "pps"), 0);
	EXPECT_EQ(qg_anomaly_series_remove(reg, "pps"), -ENOENT);
	EXPECT_EQ(qg_anomaly_series_find(reg, "pps"), nullptr);
	EXPECT_EQ(qg_anomaly_series_count(reg), 2u);
	int seen = 0;
	for (uint32_t i = 0; i < qg_anomaly_series_count(reg); i++)
		seen += qg_anomaly_series_at(reg, i) != nullptr;
	EXPECT_EQ(seen, 2);
	EXPECT_EQ(qg_anomaly_series_at(reg, 2), nullptr);
}

TEST_F(Registry, NothingDuringWarmup)
{
	qg_anomaly_series *s = add("pps");
	qg_anomaly_record rec;

	// Wild values: the detector has no baseline yet and must stay quiet.
	for (uint32_t i = 0; i < QG_ANOMALY_DEFAULT_WARMUP; i++)
		EXPECT_EQ(qg_anomaly_observe(s, i % 2 ? 1e6 : 0.0, i, &rec), 0) << i;
	EXPECT_EQ(s->anomalies, 0u);
	EXPECT_EQ(s->samples, QG_ANOMALY_DEFAULT_WARMUP);
	// The very next sample is scored.
	EXPECT_EQ(qg_anomaly_observe(s, 1e9, 100, &rec), 1);
}

TEST_F(Registry, SixSigmaSpikeIsAWarning)
{
	for (uint64_t seed = 1; seed <= 5; seed++) {
		SCOPED_TRACE(seed);
		qg_anomaly_registry_destroy(reg);
		ASSERT_EQ(qg_anomaly_registry_create(&reg), 0);
		qg_anomaly_series *pps = add("pps"), *nf = add("new_flows_per_s");
		Gauss g(seed), h(seed + 100);
		uint64_t t = 0, u = 0;
		ASSERT_EQ(noise(pps, g, 1100, t), 0);
		ASSERT_EQ(noise(nf, h, 1100, u), 0);

		qg_anomaly_record rec;
		ASSERT_EQ(qg_anomaly_observe(pps, MEAN + 6 * SD, 5000, &rec), 1);
		EXPECT_STREQ(rec.series, "pps");
		EXPECT_EQ(rec.value, MEAN + 6 * SD);
		EXPECT_NEAR(rec.expected, MEAN, 15.0);
		EXPECT_GE(rec.z, 5.0);
		EXPECT_LT(rec.z, 10.0);
		EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_WARNING);
		EXPECT_EQ(rec.action, QG_ANOMALY_ACT_ALERT);
		EXPECT_EQ(rec.now_ms, 5000u);
		EXPECT_EQ(pps->warnings, 1u);

		// The same spike in new flows asks for protection.
		ASSERT_EQ(qg_anomaly_observe(nf, MEAN + 6 * SD, 5000, &rec), 1);
		EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_WARNING);
		EXPECT_EQ(rec.action, QG_ANOMALY_ACT_PROTECT);

		// Twice the threshold is critical; pps escalates to PROTECT.
		ASSERT_EQ(qg_anomaly_observe(pps, MEAN + 12 * SD, 5001, &rec), 1);
		EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_CRITICAL);
		EXPECT_EQ(rec.action, QG_ANOMALY_ACT_PROTECT);
		EXPECT_EQ(pps->criticals, 1u);
		EXPECT_EQ(pps->anomalies, 2u);
		EXPECT_EQ(pps->last_anomaly_ms, 5001u);
	}
}

TEST_F(Registry, ActionsAreDirectionAware)
{
	struct {
		const char *name;
		qg_anomaly_action up, down;
	} cases[] = {
		{ "new_flows_per_s", QG_ANOMALY_ACT_PROTECT, QG_ANOMALY_ACT_ALERT },
		{ "initials_per_s", QG_ANOMALY_ACT_PROTECT, QG_ANOMALY_ACT_ALERT },
		{ "pps", QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT },
		{ "drops_per_s", QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_NONE },
		{ "probe_rtt:web/b1", QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_NONE },
		{ "something_else", QG_ANOMALY_ACT_ALERT, QG_ANOMALY_ACT_ALERT },
	};
	for (auto &c : cases) {
		SCOPED_TRACE(c.name);
		qg_anomaly_series *s = add(c.name);
		Gauss g(42);
		uint64_t t = 0;
		ASSERT_EQ(noise(s, g, 600, t), 0);
		qg_anomaly_record rec;
		ASSERT_EQ(qg_anomaly_observe(s, MEAN + 7 * SD, t++, &rec), 1);
		EXPECT_GT(rec.z, 0);
		EXPECT_EQ(rec.action, c.up);
		ASSERT_EQ(qg_anomaly_observe(s, MEAN - 7 * SD, t++, &rec), 1); // e.g. RTT fell
		EXPECT_LT(rec.z, 0);
		EXPECT_EQ(rec.action, c.down);
	}
}

// P(any alarm in 10,000 stationary Gaussian samples) is about 1.3 % per run
// at the defaults (see anomaly.h); the seeds are fixed, so this is exact.
TEST_F(Registry, NoAlarmOverTenThousandSamplesOfNoise)
{
	for (uint64_t seed = 1; seed <= 8; seed++) {
		SCOPED_TRACE(seed);
		std::string name = "pps" + std::to_string(seed);
		qg_anomaly_series *s = add(name.c_str());
		Gauss g(seed * 7919);
		uint64_t t = 0;
		EXPECT_EQ(noise(s, g, QG_ANOMALY_DEFAULT_WARMUP + 10000, t), 0);
		EXPECT_EQ(s->anomalies, 0u);
	}
}

TEST_F(Registry, SustainedStepAlarmsThenRebaselines)
{
	qg_anomaly_series *s = add("initials_per_s");
	Gauss g(3);
	uint64_t t = 0;
	qg_anomaly_record rec;

	ASSERT_EQ(noise(s, g, 600, t), 0);
	// A step to twice the level (20 sigma): every sample flagged, and the
	// baseline does not move, for exactly rebaseline_after samples.
	for (uint32_t i = 0; i < QG_ANOMALY_DEFAULT_REBASELINE_AFTER; i++) {
		ASSERT_EQ(qg_anomaly_observe(s, 2 * MEAN + SD * g.next(), t++, &rec), 1) << i;
		EXPECT_NEAR(rec.expected, MEAN, 15.0) << i;
		EXPECT_EQ(rec.action, QG_ANOMALY_ACT_PROTECT);
	}
	// From then on the new level is normal.
	int flagged = 0;
	for (int i = 0; i < 2000; i++)
		flagged += qg_anomaly_observe(s, 2 * MEAN + SD * g.next(), t++, &rec) == 1;
	EXPECT_EQ(flagged, 0);
	EXPECT_EQ(s->anomalies, QG_ANOMALY_DEFAULT_REBASELINE_AFTER);
	// And the old level, if it comes back, is the anomaly (a drop: ALERT).
	ASSERT_EQ(qg_anomaly_observe(s, MEAN, t++, &rec), 1);
	EXPECT_EQ(rec.action, QG_ANOMALY_ACT_ALERT);
}

TEST_F(Registry, NoRebaselineKeepsAlarming)
{
	qg_anomaly_params p;
	qg_anomaly_params_default(&p);
	p.rebaseline_after = 0;
	qg_anomaly_series *s = add("new_flows_per_s", &p);
	Gauss g(4);
	uint64_t t = 0;

	ASSERT_EQ(noise(s, g, 600, t), 0);
	qg_anomaly_record rec;
	for (int i = 0; i < 3000; i++)
		ASSERT_EQ(qg_anomaly_observe(s, 2 * MEAN + SD * g.next(), t++, &rec), 1) << i;
}

TEST_F(Registry, InterruptedRunDoesNotRebaseline)
{
	qg_anomaly_series *s = add("pps");
	Gauss g(5);
	uint64_t t = 0;
	qg_anomaly_record rec;

	ASSERT_EQ(noise(s, g, 600, t), 0);
	// An on/off attack: 250 anomalous, one normal sample, 250 anomalous...
	for (int burst = 0; burst < 4; burst++) {
		for (int i = 0; i < 250; i++)
			ASSERT_EQ(qg_anomaly_observe(s, 2 * MEAN, t++, &rec), 1);
		ASSERT_EQ(qg_anomaly_observe(s, MEAN, t++, &rec), 0);
	}
	EXPECT_NEAR(rec.expected, MEAN, 15.0);
}

TEST_F(Registry, FlatSeriesWithATinyWiggleIsNotAnAnomaly)
{
	qg_anomaly_series *s = add("pps"), *z = add("drops_per_s");
	qg_anomaly_record rec;
	uint64_t t = 0;

	for (int i = 0; i < 500; i++) {
		ASSERT_EQ(qg_anomaly_observe(s, 1000.0, t, &rec), 0);
		ASSERT_EQ(qg_anomaly_observe(z, 0.0, t++, &rec), 0);
	}
	// 1 % floor: up to 5 % off the level is fine...
	for (double v : { 1001.0, 999.0, 1000.0, 1010.0, 960.0, 1049.0 })
		EXPECT_EQ(qg_anomaly_observe(s, v, t++, &rec), 0) << v;
	// ...and near zero the absolute floor (1.0) plays that role.
	for (double v : { 1.0, 0.0, 2.0, 4.0, 0.0 })
		EXPECT_EQ(qg_anomaly_observe(z, v, t++, &rec), 0) << v;
	// The floor is a floor, not a blindfold.
	ASSERT_EQ(qg_anomaly_observe(s, 1200.0, t++, &rec), 1);
	EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_CRITICAL);
	EXPECT_NEAR(rec.z, 20.0, 0.5);
}

TEST_F(Registry, NonFiniteValuesAreRefused)
{
	qg_anomaly_series *s = add("pps");
	Gauss g(6);
	uint64_t t = 0;
	qg_anomaly_record rec;

	ASSERT_EQ(noise(s, g, 300, t), 0);
	EXPECT_EQ(qg_anomaly_observe(s, std::nan(""), t++, &rec), -EINVAL);
	EXPECT_EQ(qg_anomaly_observe(s, std::numeric_limits<double>::infinity(), t++, &rec), -EINVAL);
	EXPECT_EQ(noise(s, g, 300, t), 0); // baseline unharmed
	EXPECT_EQ(qg_anomaly_observe(s, MEAN + 8 * SD, t++, &rec), 1);
}

// A second algorithm behind the same ops table: flags value >= limit.
struct Fixed {
	double limit;
};
int fixed_destroyed;

int fixed_create(const qg_anomaly_params *p, void **state)
{
	if (!p->algo_params)
		return -EINVAL;
	*state = new Fixed(*static_cast<const Fixed *>(p->algo_params));
	return 0;
}

void fixed_update(void *state, double value, uint64_t, qg_anomaly_eval *out)
{
	auto *f = static_cast<Fixed *>(state);
	out->ready = 1;
	out->expected = f->limit;
	out->score = value / f->limit; // threshold 1: the limit; critical at twice it
}

void fixed_destroy(void *state)
{
	delete static_cast<Fixed *>(state);
	fixed_destroyed++;
}

const qg_anomaly_algo_ops fixed_ops = { "fixed", fixed_create, fixed_update, fixed_destroy };

TEST_F(Registry, SecondAlgorithmPlugsIn)
{
	Fixed lim = { 100.0 };
	qg_anomaly_params p;
	qg_anomaly_params_default(&p);
	p.threshold = 1.0;
	p.algo_params = &lim;
	qg_anomaly_policy pol;
	qg_anomaly_policy_default("x", &pol);
	pol.up[QG_ANOMALY_SEV_CRITICAL] = QG_ANOMALY_ACT_SHED;

	qg_anomaly_series *s = nullptr;
	qg_anomaly_params bad = p;
	bad.algo_params = nullptr;
	EXPECT_EQ(qg_anomaly_series_add(reg, "conn_table", &fixed_ops, &bad, &pol, &s), -EINVAL);
	ASSERT_EQ(qg_anomaly_series_add(reg, "conn_table", &fixed_ops, &p, &pol, &s), 0);
	EXPECT_STREQ(s->ops->name, "fixed");

	qg_anomaly_record rec;
	EXPECT_EQ(qg_anomaly_observe(s, 50.0, 1, &rec), 0); // no warm-up with this algorithm
	EXPECT_EQ(qg_anomaly_observe(s, 99.9, 2, &rec), 0);
	ASSERT_EQ(qg_anomaly_observe(s, 100.0, 3, &rec), 1);
	EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_WARNING);
	EXPECT_EQ(rec.action, QG_ANOMALY_ACT_ALERT);
	EXPECT_EQ(rec.expected, 100.0);
	ASSERT_EQ(qg_anomaly_observe(s, 250.0, 4, &rec), 1);
	EXPECT_EQ(rec.severity, QG_ANOMALY_SEV_CRITICAL);
	EXPECT_EQ(rec.action, QG_ANOMALY_ACT_SHED); // the custom policy
	EXPECT_EQ(s->anomalies, 2u);

	fixed_destroyed = 0;
	EXPECT_EQ(qg_anomaly_series_remove(reg, "conn_table"), 0);
	EXPECT_EQ(fixed_destroyed, 1);
}

TEST(AnomalyNames, SeverityAndAction)
{
	EXPECT_STREQ(qg_anomaly_severity_name(QG_ANOMALY_SEV_WARNING), "warning");
	EXPECT_STREQ(qg_anomaly_severity_name(QG_ANOMALY_SEV_CRITICAL), "critical");
	EXPECT_STREQ(qg_anomaly_action_name(QG_ANOMALY_ACT_NONE), "none");
	EXPECT_STREQ(qg_anomaly_action_name(QG_ANOMALY_ACT_ALERT), "alert");
	EXPECT_STREQ(qg_anomaly_action_name(QG_ANOMALY_ACT_PROTECT), "protect");
	EXPECT_STREQ(qg_anomaly_action_name(QG_ANOMALY_ACT_SHED), "shed");
}

} // namespace
