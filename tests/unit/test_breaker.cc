// SPDX-License-Identifier: BSD-3-Clause
// Circuit breaker: the full state machine at exact times, counters, change reports.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "qgate/breaker.h"

namespace
{

struct Change {
	qg_breaker_state from, to;
	uint64_t at;
};

void record(void *ctx, const qg_breaker *, qg_breaker_state from, qg_breaker_state to, uint64_t now_ms)
{
	static_cast<std::vector<Change> *>(ctx)->push_back({ from, to, now_ms });
}

// N=3, timeout 1000 ms, 2 trial flows, 2 successes to close.
struct Breaker : ::testing::Test {
	qg_breaker b{};
	std::vector<Change> changes;
	void SetUp() override
	{
		qg_breaker_cfg cfg = { 3, 1000, 2, 2 };
		ASSERT_EQ(qg_breaker_init(&b, &cfg, record, &changes, 0), 0);
	}
	// Open the breaker at time t.
	void open_at(uint64_t t)
	{
		for (int i = 0; i < 3; i++)
			qg_breaker_record_failure(&b, t);
		ASSERT_EQ(b.state, QG_BREAKER_OPEN);
	}
};

TEST(BreakerCfg, DefaultsAndValidation)
{
	qg_breaker b;
	qg_breaker_cfg cfg;

	ASSERT_EQ(qg_breaker_init(&b, nullptr, nullptr, nullptr, 7), 0);
	EXPECT_EQ(b.cfg.failures_to_open, QG_BREAKER_DEFAULT_FAILURES_TO_OPEN);
	EXPECT_EQ(b.cfg.open_timeout_ms, QG_BREAKER_DEFAULT_OPEN_TIMEOUT_MS);
	EXPECT_EQ(b.cfg.half_open_max_flows, QG_BREAKER_DEFAULT_HALF_OPEN_MAX_FLOWS);
	EXPECT_EQ(b.cfg.successes_to_close, QG_BREAKER_DEFAULT_SUCCESSES_TO_CLOSE);
	EXPECT_EQ(b.state, QG_BREAKER_CLOSED);
	EXPECT_EQ(b.since_ms, 7u);

	qg_breaker_cfg_default(&cfg);
	cfg.failures_to_open = 0;
	EXPECT_EQ(qg_breaker_init(&b, &cfg, nullptr, nullptr, 0), -EINVAL);
	qg_breaker_cfg_default(&cfg);
	cfg.open_timeout_ms = 0;
	EXPECT_EQ(qg_breaker_init(&b, &cfg, nullptr, nullptr, 0), -EINVAL);
	qg_breaker_cfg_default(&cfg);
	cfg.half_open_max_flows = 0;
	EXPECT_EQ(qg_breaker_init(&b, &cfg, nullptr, nullptr, 0), -EINVAL);
	qg_breaker_cfg_default(&cfg);
	cfg.successes_to_close = cfg.half_open_max_flows + 1;
	EXPECT_EQ(qg_breaker_init(&b, &cfg, nullptr, nullptr, 0), -EINVAL);
	EXPECT_EQ(qg_breaker_init(nullptr, nullptr, nullptr, nullptr, 0), -EINVAL);
}

TEST(BreakerCfg, StateNumbersAndNames)
{
	EXPECT_EQ(QG_BREAKER_CLOSED, 0);
	EXPECT_EQ(QG_BREAKER_OPEN, 1);
	EXPECT_EQ(QG_BREAKER_HALF_OPEN, 2);
	EXPECT_STREQ(qg_breaker_state_name(QG_BREAKER_CLOSED), "closed");
	EXPECT_STREQ(qg_breaker_state_name(QG_BREAKER_OPEN), "open");
	EXPECT_STREQ(qg_breaker_state_name(QG_BREAKER_HALF_OPEN), "half_open");
}

TEST_F(Breaker, OpensAfterExactlyNConsecutiveFailures)
{
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1), 1);
	EXPECT_EQ(qg_breaker_record_failure(&b, 10), 0);
	EXPECT_EQ(qg_breaker_record_failure(&b, 20), 0);
	EXPECT_EQ(b.state, QG_BREAKER_CLOSED);
	EXPECT_EQ(qg_breaker_record_failure(&b, 30), 1);
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.since_ms, 30u);
	EXPECT_EQ(b.opens, 1u);
	ASSERT_EQ(changes.size(), 1u);
	EXPECT_EQ(changes[0].from, QG_BREAKER_CLOSED);
	EXPECT_EQ(changes[0].to, QG_BREAKER_OPEN);
	EXPECT_EQ(changes[0].at, 30u);
}

TEST_F(Breaker, SuccessResetsTheFailureCount)
{
	qg_breaker_record_failure(&b, 1);
	qg_breaker_record_failure(&b, 2);
	EXPECT_EQ(qg_breaker_record_success(&b, 3), 0);
	EXPECT_EQ(b.consecutive_failures, 0u);
	qg_breaker_record_failure(&b, 4);
	qg_breaker_record_failure(&b, 5);
	EXPECT_EQ(b.state, QG_BREAKER_CLOSED);
	EXPECT_EQ(qg_breaker_record_failure(&b, 6), 1);
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.failures, 5u);
	EXPECT_EQ(b.successes, 1u);
}

TEST_F(Breaker, RejectsWhileOpenAndHalfOpensExactlyAtTheTimeout)
{
	open_at(100);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 100), 0);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 600), 0);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1099), 0); // 1 ms before
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.rejected_flows, 3u);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1100), 1); // exactly at the timeout
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(b.since_ms, 1100u);
	EXPECT_EQ(b.half_opens, 1u);
	ASSERT_EQ(changes.size(), 2u);
	EXPECT_EQ(changes[1].from, QG_BREAKER_OPEN);
	EXPECT_EQ(changes[1].to, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(changes[1].at, 1100u);
}

TEST_F(Breaker, HalfOpenAdmitsExactlyMaxFlows)
{
	open_at(0);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1001), 1);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1002), 0);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1500), 0);
	EXPECT_EQ(b.trial_admitted, 2u);
	EXPECT_EQ(b.rejected_flows, 2u);
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
}

TEST_F(Breaker, ClosesAfterMSuccesses)
{
	open_at(0);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	EXPECT_EQ(qg_breaker_record_success(&b, 1010), 0);
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(qg_breaker_record_success(&b, 1020), 1);
	EXPECT_EQ(b.state, QG_BREAKER_CLOSED);
	EXPECT_EQ(b.since_ms, 1020u);
	EXPECT_EQ(b.closes, 1u);
	ASSERT_EQ(changes.size(), 3u);
	EXPECT_EQ(changes[2].from, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(changes[2].to, QG_BREAKER_CLOSED);
	// Closed again: every flow admitted, and the failure count starts from zero.
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1030), 1);
	qg_breaker_record_failure(&b, 1040);
	qg_breaker_record_failure(&b, 1040);
	EXPECT_EQ(b.state, QG_BREAKER_CLOSED);
}

TEST_F(Breaker, FailureInHalfOpenReopensWithTheTimerRestarted)
{
	open_at(0);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	EXPECT_EQ(qg_breaker_record_success(&b, 1100), 0);
	EXPECT_EQ(qg_breaker_record_failure(&b, 1200), 1); // one failure is enough
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.since_ms, 1200u);
	EXPECT_EQ(b.opens, 2u);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 2000), 0); // the old timer would have expired
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 2199), 0);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 2200), 1);
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(b.trial_successes, 0u); // the new trial starts from scratch
	EXPECT_EQ(b.half_opens, 2u);
}

TEST_F(Breaker, OutcomesWhileOpenAreStale)
{
	open_at(0);
	EXPECT_EQ(qg_breaker_record_failure(&b, 500), 0);
	EXPECT_EQ(qg_breaker_record_success(&b, 600), 0);
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.since_ms, 0u); // a late failure does not push the trial back
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
}

TEST_F(Breaker, TrialWithoutVerdictReopensAfterATimeout)
{
	open_at(0);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	ASSERT_EQ(qg_breaker_allow_new_flow(&b, 1000), 1);
	qg_breaker_record_success(&b, 1100); // one of two, then silence
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 1999), 0);
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 2000), 0);
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
	EXPECT_EQ(b.since_ms, 2000u);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 3000), 1);
	EXPECT_EQ(b.state, QG_BREAKER_HALF_OPEN);
}

TEST_F(Breaker, FullCycleCounters)
{
	open_at(0);			     // open 1
	qg_breaker_allow_new_flow(&b, 1000); // half-open 1
	qg_breaker_record_failure(&b, 1001); // open 2
	qg_breaker_allow_new_flow(&b, 1500); // rejected 1
	qg_breaker_allow_new_flow(&b, 2001); // half-open 2
	qg_breaker_allow_new_flow(&b, 2001); // admitted
	qg_breaker_record_success(&b, 2002); //
	qg_breaker_record_success(&b, 2003); // close 1
	EXPECT_EQ(b.opens, 2u);
	EXPECT_EQ(b.half_opens, 2u);
	EXPECT_EQ(b.closes, 1u);
	EXPECT_EQ(b.rejected_flows, 1u);
	ASSERT_EQ(changes.size(), 5u);
	const qg_breaker_state seq[] = { QG_BREAKER_OPEN, QG_BREAKER_HALF_OPEN, QG_BREAKER_OPEN,
					 QG_BREAKER_HALF_OPEN, QG_BREAKER_CLOSED };
	for (size_t i = 0; i < changes.size(); i++)
		EXPECT_EQ(changes[i].to, seq[i]) << i;
}

TEST_F(Breaker, ClockGoingBackwardsDoesNotOpenEarly)
{
	open_at(5000);
	EXPECT_EQ(qg_breaker_allow_new_flow(&b, 10), 0);
	EXPECT_EQ(b.state, QG_BREAKER_OPEN);
}

} // namespace
