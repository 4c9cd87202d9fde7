/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Circuit breaker state machine (see breaker.h). Every transition goes
 * through set_state() so the counters and the change callback can never
 * disagree with the state.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "qgate/breaker.h"

void qg_breaker_cfg_default(struct qg_breaker_cfg *cfg)
{
	cfg->failures_to_open = QG_BREAKER_DEFAULT_FAILURES_TO_OPEN;
	cfg->open_timeout_ms = QG_BREAKER_DEFAULT_OPEN_TIMEOUT_MS;
	cfg->half_open_max_flows = QG_BREAKER_DEFAULT_HALF_OPEN_MAX_FLOWS;
	cfg->successes_to_close = QG_BREAKER_DEFAULT_SUCCESSES_TO_CLOSE;
}

int qg_breaker_init(struct qg_breaker *b, const struct qg_breaker_cfg *cfg, qg_breaker_change_fn fn,
		    void *ctx, uint64_t now_ms)
{
	struct qg_breaker_cfg def;

	if (!b)
		return -EINVAL;
	if (!cfg) {
		qg_breaker_cfg_default(&def);
		cfg = &def;
	}
	/*
	 * More successes than trial flows could never close the breaker from
	 * the trial's own outcomes: it would sit half-open, rejecting, until
	 * the no-verdict timeout reopened it, forever.
	 */
	if (!cfg->failures_to_open || !cfg->open_timeout_ms || !cfg->half_open_max_flows ||
	    !cfg->successes_to_close || cfg->successes_to_close > cfg->half_open_max_flows)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->state = QG_BREAKER_CLOSED;
	b->since_ms = now_ms;
	b->on_change = fn;
	b->on_change_ctx = ctx;
	return 0;
}

/* Time since the current state began; a clock fed backwards counts as no time. */
static uint64_t elapsed(const struct qg_breaker *b, uint64_t now_ms)
{
	return now_ms > b->since_ms ? now_ms - b->since_ms : 0;
}

static void set_state(struct qg_breaker *b, enum qg_breaker_state to, uint64_t now_ms)
{
	enum qg_breaker_state from = b->state;

	b->state = to;
	b->since_ms = now_ms;
	b->consecutive_failures = 0;
	b->trial_admitted = 0;
	b->trial_successes = 0;
	switch (to) {
	case QG_BREAKER_OPEN:
		b->opens++;
		break;
	case QG_BREAKER_HALF_OPEN:
		b->half_opens++;
		break;
	case QG_BREAKER_CLOSED:
		b->closes++;
		break;
	}
	if (b->on_change)
		b->on_change(b->on_change_ctx, b, from, to, now_ms);
}

int qg_breaker_allow_new_flow(struct qg_breaker *b, uint64_t now_ms)
{
	switch (b->state) {
	case QG_BREAKER_CLOSED:
		return 1;
	case QG_BREAKER_OPEN:
		if (elapsed(b, now_ms) < b->cfg.open_timeout_ms)
			goto reject;
		set_state(b, QG_BREAKER_HALF_OPEN, now_ms);
		break;
	case QG_BREAKER_HALF_OPEN:
		if (b->trial_admitted < b->cfg.half_open_max_flows)
			break;
		/*
		 * Every trial flow was let through and, a full open period
		 * later, too few of them have reported back: a backend that
		 * cannot produce a verdict in that time is not healthy, and
		 * without this the breaker would reject forever when a caller
		 * loses an outcome.
		 */
		if (elapsed(b, now_ms) >= b->cfg.open_timeout_ms)
			set_state(b, QG_BREAKER_OPEN, now_ms);
		goto reject;
	}
	b->trial_admitted++;
	return 1;
reject:
	b->rejected_flows++;
	return 0;
}

int qg_breaker_record_success(struct qg_breaker *b, uint64_t now_ms)
{
	b->successes++;
	switch (b->state) {
	case QG_BREAKER_CLOSED:
		b->consecutive_failures = 0;
		return 0;
	case QG_BREAKER_OPEN:
		/* A flow admitted before the breaker opened: stale news. */
		return 0;
	case QG_BREAKER_HALF_OPEN:
		if (++b->trial_successes < b->cfg.successes_to_close)
			return 0;
		set_state(b, QG_BREAKER_CLOSED, now_ms);
		return 1;
	}
	return 0;
}

int qg_breaker_record_failure(struct qg_breaker *b, uint64_t now_ms)
{
	b->failures++;
	switch (b->state) {
	case QG_BREAKER_CLOSED:
		if (++b->consecutive_failures < b->cfg.failures_to_open)
			return 0;
		break;
	case QG_BREAKER_OPEN:
		/*
		 * Late outcome of a flow admitted before opening. Restarting
		 * the timer here would let a backlog of stale failures keep a
		 * recovered backend out indefinitely.
		 */
		return 0;
	case QG_BREAKER_HALF_OPEN:
		/* The trial failed: the backend gets a full open period again. */
		break;
	}
	set_state(b, QG_BREAKER_OPEN, now_ms);
	return 1;
}

const char *qg_breaker_state_name(enum qg_breaker_state s)
{
	switch (s) {
	case QG_BREAKER_CLOSED:
		return "closed";
	case QG_BREAKER_OPEN:
		return "open";
	case QG_BREAKER_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}
