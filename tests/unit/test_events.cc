// SPDX-License-Identifier: BSD-3-Clause
// Event bus: filters, per-subscriber order under concurrent publishers, exact
// drop accounting, failing and slow handlers, the recent-events ring.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include "qgate/events.h"

namespace
{

// Keeps copies of what its handler got; fails or sleeps when told to.
struct Sink {
	std::vector<qg_event> got;
	int fail_rc = 0;	 // returned for every event when fail_every == 0
	unsigned fail_every = 0; // fail on every Nth event (1-based) when non-zero
	long sleep_ns = 0;

	static int handler(const qg_event *ev, void *ctx)
	{
		Sink *s = static_cast<Sink *>(ctx);
		s->got.push_back(*ev);
		if (s->sleep_ns) {
			timespec ts = { 0, s->sleep_ns };
			nanosleep(&ts, nullptr);
		}
		if (s->fail_every)
			return s->got.size() % s->fail_every == 0 ? -EIO : 0;
		return s->fail_rc;
	}
};

struct Bus {
	qg_event_bus *bus = nullptr;
	Bus()
	{
		EXPECT_EQ(qg_events_create(&bus), 0);
	}
	~Bus()
	{
		qg_events_destroy(bus);
	}

	unsigned sub(Sink *s, uint64_t mask, qg_event_severity min_sev = QG_EVENT_SEV_DEBUG,
		     uint32_t qlen = 0, const char *name = "sink")
	{
		qg_event_sub_desc d;
		memset(&d, 0, sizeof(d));
		d.name = name;
		d.fn = Sink::handler;
		d.ctx = s;
		d.type_mask = mask;
		d.min_severity = (uint16_t)min_sev;
		d.queue_len = qlen;
		unsigned id = ~0u;
		EXPECT_EQ(qg_events_subscribe(bus, &d, &id), 0);
		return id;
	}

	int pub(qg_event_type t, qg_event_severity sev = QG_EVENT_SEV_INFO, int64_t a0 = 0)
	{
		qg_event ev;
		qg_event_init(&ev, t, sev);
		ev.arg[0] = a0;
		return qg_events_publish(bus, &ev);
	}

	qg_event_sub_stats stats(unsigned id)
	{
		qg_event_sub_stats st;
		EXPECT_EQ(qg_events_sub_stats(bus, id, &st), 0);
		return st;
	}
};

std::vector<int> types(const Sink &s)
{
	std::vector<int> out;
	for (auto &e : s.got)
		out.push_back(e.type);
	return out;
}

TEST(Events, FiltersByTypeAndSeverity)
{
	Bus b;
	Sink health, alerts, all;
	unsigned h =
		b.sub(&health, QG_EVENT_MASK(QG_EVENT_BACKEND_UP) | QG_EVENT_MASK(QG_EVENT_BACKEND_DOWN));
	unsigned a = b.sub(&alerts, QG_EVENT_MASK_ALL, QG_EVENT_SEV_WARNING);
	unsigned l = b.sub(&all, QG_EVENT_MASK_ALL);

	EXPECT_EQ(b.pub(QG_EVENT_BACKEND_UP, QG_EVENT_SEV_INFO), 2);
	EXPECT_EQ(b.pub(QG_EVENT_BACKEND_DOWN, QG_EVENT_SEV_ERROR), 3);
	EXPECT_EQ(b.pub(QG_EVENT_ANOMALY, QG_EVENT_SEV_NOTICE), 1);
	EXPECT_EQ(b.pub(QG_EVENT_RELOAD_FAILED, QG_EVENT_SEV_WARNING), 2);
	EXPECT_EQ(b.pub(QG_EVENT_SHUTDOWN, QG_EVENT_SEV_DEBUG), 1);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 9);

	EXPECT_EQ(types(health), (std::vector<int>{ QG_EVENT_BACKEND_UP, QG_EVENT_BACKEND_DOWN }));
	EXPECT_EQ(types(alerts), (std::vector<int>{ QG_EVENT_BACKEND_DOWN, QG_EVENT_RELOAD_FAILED }));
	EXPECT_EQ(all.got.size(), 5u);
	EXPECT_EQ(b.stats(h).published, 2u);
	EXPECT_EQ(b.stats(a).published, 2u);
	EXPECT_EQ(b.stats(l).delivered, 5u);

	qg_event_bus_stats bs;
	qg_events_stats(b.bus, &bs);
	EXPECT_EQ(bs.published, 5u);
	EXPECT_EQ(bs.delivered, 9u);
	EXPECT_EQ(bs.dropped, 0u);
	EXPECT_EQ(bs.subscribers, 3u);
}

TEST(Events, SeqAndTimestampAreStamped)
{
	Bus b;
	Sink s;
	b.sub(&s, QG_EVENT_MASK_ALL);
	qg_event ev;
	qg_event_init(&ev, QG_EVENT_RELOAD_OK, QG_EVENT_SEV_INFO);
	ev.ts_ns = 0; // the bus stamps it
	ev.seq = 999; // ignored
	ASSERT_EQ(qg_events_publish(b.bus, &ev), 1);
	qg_event_init(&ev, QG_EVENT_RELOAD_OK, QG_EVENT_SEV_INFO);
	ev.ts_ns = 12345; // the publisher's time is kept
	ASSERT_EQ(qg_events_publish(b.bus, &ev), 1);
	qg_events_dispatch(b.bus, 0);
	ASSERT_EQ(s.got.size(), 2u);
	EXPECT_EQ(s.got[0].seq, 1u);
	EXPECT_NE(s.got[0].ts_ns, 0u);
	EXPECT_EQ(s.got[0].service, QG_EVENT_NO_INDEX);
	EXPECT_EQ(s.got[1].seq, 2u);
	EXPECT_EQ(s.got[1].ts_ns, 12345u);
}

TEST(Events, StringsAreTerminatedAndFieldsCopied)
{
	Bus b;
	Sink s;
	b.sub(&s, QG_EVENT_MASK_ALL);
	qg_event ev;
	qg_event_init(&ev, QG_EVENT_BACKEND_DOWN, QG_EVENT_SEV_ERROR);
	memset(ev.text, 'x', sizeof(ev.text)); // no terminator
	memset(ev.component, 'c', sizeof(ev.component));
	snprintf(ev.service_name, sizeof(ev.service_name), "dns");
	snprintf(ev.backend_name, sizeof(ev.backend_name), "10.0.0.7:53");
	ev.service = 2;
	ev.backend = 5;
	ev.source = 77;
	ev.arg[3] = -9;
	ASSERT_EQ(qg_events_publish(b.bus, &ev), 1);
	qg_event_set_text(&ev, "probe timeout after %d ms", 250);
	ASSERT_EQ(qg_events_publish(b.bus, &ev), 1);
	qg_events_dispatch(b.bus, 0);
	ASSERT_EQ(s.got.size(), 2u);
	EXPECT_EQ(strlen(s.got[0].text), QG_EVENT_TEXT_MAX - 1u);
	EXPECT_EQ(strlen(s.got[0].component), QG_EVENT_NAME_MAX - 1u);
	EXPECT_STREQ(s.got[0].service_name, "dns");
	EXPECT_STREQ(s.got[0].backend_name, "10.0.0.7:53");
	EXPECT_EQ(s.got[0].service, 2);
	EXPECT_EQ(s.got[0].backend, 5);
	EXPECT_EQ(s.got[0].source, 77u);
	EXPECT_EQ(s.got[0].arg[3], -9);
	EXPECT_STREQ(s.got[1].text, "probe timeout after 250 ms");
}

// 4 threads publish tagged events while the control thread dispatches: every
// subscriber sees each thread's events in that thread's order, and all of
// them in one global seq order.
TEST(Events, PublishOrderKeptPerSubscriberWithConcurrentPublishers)
{
	constexpr int kThreads = 4;
	constexpr int kPerThread = 20000;
	Bus b;
	Sink all, ups, errors;
	unsigned ids[3];
	ids[0] = b.sub(&all, QG_EVENT_MASK_ALL, QG_EVENT_SEV_DEBUG, kThreads * kPerThread);
	ids[1] = b.sub(&ups, QG_EVENT_MASK(QG_EVENT_BACKEND_UP), QG_EVENT_SEV_DEBUG, kThreads * kPerThread);
	ids[2] = b.sub(&errors, QG_EVENT_MASK_ALL, QG_EVENT_SEV_ERROR, kThreads * kPerThread);

	std::atomic<int> running{ kThreads };
	std::vector<std::thread> pubs;
	for (int t = 0; t < kThreads; t++) {
		pubs.emplace_back([&, t] {
			for (int i = 0; i < kPerThread; i++) {
				qg_event ev;
				qg_event_init(&ev, i % 2 ? QG_EVENT_BACKEND_UP : QG_EVENT_ANOMALY,
					      i % 3 ? QG_EVENT_SEV_INFO : QG_EVENT_SEV_ERROR);
				ev.source = (uint32_t)t;
				ev.arg[0] = i;
				EXPECT_GE(qg_events_publish(b.bus, &ev), 1);
			}
			running--;
		});
	}
	while (running > 0)
		qg_events_dispatch(b.bus, 64);
	for (auto &th : pubs)
		th.join();
	while (qg_events_dispatch(b.bus, 0) > 0)
		;

	auto check = [&](const Sink &s, const char *what, auto keep) {
		std::vector<int64_t> last(kThreads, -1);
		std::vector<int> count(kThreads, 0);
		uint64_t last_seq = 0;
		for (auto &e : s.got) {
			ASSERT_LT(e.source, (uint32_t)kThreads);
			EXPECT_GT(e.arg[0], last[e.source]) << what;
			EXPECT_GT(e.seq, last_seq) << what;
			last[e.source] = e.arg[0];
			last_seq = e.seq;
			count[e.source]++;
		}
		int expect = 0;
		for (int i = 0; i < kPerThread; i++)
			expect += keep(i);
		for (int t = 0; t < kThreads; t++)
			EXPECT_EQ(count[t], expect) << what << " thread " << t;
	};
	check(all, "all", [](int) { return 1; });
	check(ups, "ups", [](int i) { return i % 2; });
	check(errors, "errors", [](int i) { return i % 3 == 0; });
	for (unsigned id : ids) {
		auto st = b.stats(id);
		EXPECT_EQ(st.dropped, 0u);
		EXPECT_EQ(st.published, st.delivered);
		EXPECT_EQ(st.queued, 0u);
	}
}

TEST(Events, DropsCountedExactlyWhenQueueFull)
{
	Bus b;
	Sink small, big;
	unsigned s = b.sub(&small, QG_EVENT_MASK_ALL, QG_EVENT_SEV_DEBUG, 8, "small");
	unsigned g = b.sub(&big, QG_EVENT_MASK_ALL, QG_EVENT_SEV_DEBUG, 64, "big");

	for (int i = 0; i < 20; i++)
		EXPECT_EQ(b.pub(QG_EVENT_FLOW_FLOOD, QG_EVENT_SEV_WARNING, i), i < 8 ? 2 : 1) << i;
	auto st = b.stats(s);
	EXPECT_STREQ(st.name, "small");
	EXPECT_EQ(st.published, 20u);
	EXPECT_EQ(st.dropped, 12u);
	EXPECT_EQ(st.queued, 8u);
	EXPECT_EQ(st.capacity, 8u);
	EXPECT_EQ(b.stats(g).dropped, 0u);

	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 28);
	ASSERT_EQ(small.got.size(), 8u);
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(small.got[i].arg[0], i); // the oldest are kept, the newest dropped
	EXPECT_EQ(big.got.size(), 20u);

	// Room again after dispatch: exactly capacity more fit.
	for (int i = 0; i < 9; i++)
		b.pub(QG_EVENT_FLOW_FLOOD, QG_EVENT_SEV_WARNING, 100 + i);
	st = b.stats(s);
	EXPECT_EQ(st.dropped, 13u);
	EXPECT_EQ(st.queued, 8u);

	qg_event_bus_stats bs;
	qg_events_stats(b.bus, &bs);
	EXPECT_EQ(bs.published, 29u);
	EXPECT_EQ(bs.dropped, 13u);
}

TEST(Events, FailingHandlerDoesNotStopOthersOrLaterEvents)
{
	Bus b;
	Sink bad, flaky, good;
	bad.fail_rc = -EIO;
	flaky.fail_every = 2;
	unsigned ib = b.sub(&bad, QG_EVENT_MASK_ALL, QG_EVENT_SEV_DEBUG, 0, "bad");
	unsigned iflaky = b.sub(&flaky, QG_EVENT_MASK_ALL);
	unsigned ig = b.sub(&good, QG_EVENT_MASK_ALL);

	for (int i = 0; i < 5; i++)
		b.pub(QG_EVENT_BACKEND_DEGRADED, QG_EVENT_SEV_WARNING, i);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 15);
	EXPECT_EQ(bad.got.size(), 5u);
	EXPECT_EQ(flaky.got.size(), 5u);
	EXPECT_EQ(good.got.size(), 5u);
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(flaky.got[i].arg[0], i);

	auto st = b.stats(ib);
	EXPECT_EQ(st.delivered, 5u);
	EXPECT_EQ(st.handler_errors, 5u);
	EXPECT_EQ(st.last_error, -EIO);
	EXPECT_EQ(b.stats(iflaky).handler_errors, 2u);
	EXPECT_EQ(b.stats(ig).handler_errors, 0u);
	EXPECT_EQ(b.stats(ig).last_error, 0);

	qg_event_bus_stats bs;
	qg_events_stats(b.bus, &bs);
	EXPECT_EQ(bs.handler_errors, 7u);
	EXPECT_EQ(bs.delivered, 15u);

	// Many failures: still counted one by one (the log is what is rate-limited).
	for (int i = 0; i < 2500; i++) {
		b.pub(QG_EVENT_ANOMALY, QG_EVENT_SEV_NOTICE, i);
		if (i % 500 == 499)
			qg_events_dispatch(b.bus, 0);
	}
	EXPECT_EQ(b.stats(ib).dropped, 0u);
	EXPECT_EQ(b.stats(ib).handler_errors, 2505u);
	EXPECT_EQ(good.got.size(), 2505u);
}

TEST(Events, HandlerTimeRecorded)
{
	Bus b;
	Sink slow, fast;
	slow.sleep_ns = 2000000; // 2 ms
	unsigned is = b.sub(&slow, QG_EVENT_MASK_ALL);
	unsigned ifast = b.sub(&fast, QG_EVENT_MASK_ALL);
	for (int i = 0; i < 3; i++)
		b.pub(QG_EVENT_CIRCUIT_CHANGE);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 6);
	auto st = b.stats(is);
	EXPECT_EQ(st.delivered, 3u);
	EXPECT_GE(st.handler_ns_total, 6000000u);
	EXPECT_GE(st.handler_ns_max, 2000000u);
	EXPECT_LE(st.handler_ns_max, st.handler_ns_total);
	auto sf = b.stats(ifast);
	EXPECT_EQ(sf.delivered, 3u);
	EXPECT_LE(sf.handler_ns_max, sf.handler_ns_total);
}

TEST(Events, DispatchBudgetPerSubscriber)
{
	Bus b;
	Sink x, y;
	unsigned ix = b.sub(&x, QG_EVENT_MASK_ALL);
	b.sub(&y, QG_EVENT_MASK(QG_EVENT_SHUTDOWN));
	for (int i = 0; i < 10; i++)
		b.pub(QG_EVENT_LEVEL_CHANGE, QG_EVENT_SEV_INFO, i);
	b.pub(QG_EVENT_SHUTDOWN);
	EXPECT_EQ(qg_events_dispatch(b.bus, 3), 4); // 3 for x, 1 for y
	EXPECT_EQ(x.got.size(), 3u);
	EXPECT_EQ(b.stats(ix).queued, 8u);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 8);
	ASSERT_EQ(x.got.size(), 11u);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(x.got[i].arg[0], i);
	EXPECT_EQ(x.got[10].type, QG_EVENT_SHUTDOWN);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 0);
}

// A handler that publishes (degradation reacting to an anomaly) and one that
// tries to dispatch from inside dispatch.
struct Reactor {
	qg_event_bus *bus = nullptr;
	int nested_rc = 0;
	std::vector<int> seen;
	static int handler(const qg_event *ev, void *ctx)
	{
		Reactor *r = static_cast<Reactor *>(ctx);
		r->seen.push_back(ev->type);
		r->nested_rc = qg_events_dispatch(r->bus, 0);
		if (ev->type == QG_EVENT_ANOMALY) {
			qg_event out;
			qg_event_init(&out, QG_EVENT_LEVEL_CHANGE, QG_EVENT_SEV_WARNING);
			return qg_events_publish(r->bus, &out) >= 0 ? 0 : -1;
		}
		return 0;
	}
};

TEST(Events, HandlersMayPublishButNotDispatch)
{
	Bus b;
	Reactor r;
	r.bus = b.bus;
	qg_event_sub_desc d;
	memset(&d, 0, sizeof(d));
	d.name = "degradation";
	d.fn = Reactor::handler;
	d.ctx = &r;
	d.type_mask = QG_EVENT_MASK(QG_EVENT_ANOMALY) | QG_EVENT_MASK(QG_EVENT_LEVEL_CHANGE);
	ASSERT_EQ(qg_events_subscribe(b.bus, &d, nullptr), 0);
	b.pub(QG_EVENT_ANOMALY);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 1); // the new event waits for the next call
	EXPECT_EQ(r.nested_rc, -EBUSY);
	EXPECT_EQ(qg_events_dispatch(b.bus, 0), 1);
	EXPECT_EQ(r.seen, (std::vector<int>{ QG_EVENT_ANOMALY, QG_EVENT_LEVEL_CHANGE }));
}

TEST(Events, RecentRingKeepsTheLast256)
{
	Bus b;
	std::vector<qg_event> out(QG_EVENTS_RECENT + 10);
	EXPECT_EQ(qg_events_recent(b.bus, out.data(), (unsigned)out.size()), 0u);
	// No subscriber at all: the ring still records.
	for (int i = 0; i < 3; i++)
		b.pub(QG_EVENT_BACKEND_UP, QG_EVENT_SEV_INFO, i);
	ASSERT_EQ(qg_events_recent(b.bus, out.data(), (unsigned)out.size()), 3u);
	EXPECT_EQ(out[0].arg[0], 0);
	EXPECT_EQ(out[2].arg[0], 2);

	for (int i = 3; i < 300; i++)
		b.pub(QG_EVENT_BACKEND_UP, QG_EVENT_SEV_INFO, i);
	ASSERT_EQ(qg_events_recent(b.bus, out.data(), (unsigned)out.size()), (unsigned)QG_EVENTS_RECENT);
	for (unsigned k = 0; k < QG_EVENTS_RECENT; k++) {
		EXPECT_EQ(out[k].arg[0], 300 - QG_EVENTS_RECENT + (int)k);
		EXPECT_EQ(out[k].seq, 300u - QG_EVENTS_RECENT + k + 1);
	}
	ASSERT_EQ(qg_events_recent(b.bus, out.data(), 10), 10u);
	EXPECT_EQ(out[0].arg[0], 290);
	EXPECT_EQ(out[9].arg[0], 299);
}

TEST(Events, InvalidArguments)
{
	Bus b;
	Sink s;
	qg_event ev;
	qg_event_init(&ev, QG_EVENT_SHUTDOWN, QG_EVENT_SEV_INFO);
	ev.type = QG_EVENT_TYPE_COUNT;
	EXPECT_EQ(qg_events_publish(b.bus, &ev), -EINVAL);
	ev.type = QG_EVENT_SHUTDOWN;
	ev.severity = QG_EVENT_SEV_COUNT;
	EXPECT_EQ(qg_events_publish(b.bus, &ev), -EINVAL);
	EXPECT_EQ(qg_events_publish(b.bus, nullptr), -EINVAL);

	qg_event_sub_desc d;
	memset(&d, 0, sizeof(d));
	d.fn = Sink::handler;
	d.ctx = &s;
	EXPECT_EQ(qg_events_subscribe(b.bus, &d, nullptr), -EINVAL); // empty mask
	d.type_mask = QG_EVENT_MASK_ALL;
	d.min_severity = QG_EVENT_SEV_COUNT;
	EXPECT_EQ(qg_events_subscribe(b.bus, &d, nullptr), -EINVAL);
	d.min_severity = 0;
	d.fn = nullptr;
	EXPECT_EQ(qg_events_subscribe(b.bus, &d, nullptr), -EINVAL);
	d.fn = Sink::handler;
	d.queue_len = 4;
	for (int i = 0; i < QG_EVENTS_SUBS_MAX; i++)
		EXPECT_EQ(qg_events_subscribe(b.bus, &d, nullptr), 0);
	EXPECT_EQ(qg_events_subscribe(b.bus, &d, nullptr), -ENOSPC);

	qg_event_sub_stats st;
	EXPECT_EQ(qg_events_sub_stats(b.bus, QG_EVENTS_SUBS_MAX, &st), -ENOENT);
	EXPECT_EQ(qg_events_create(nullptr), -EINVAL);

	EXPECT_STREQ(qg_event_type_name(QG_EVENT_BACKEND_DOWN), "backend_down");
	EXPECT_STREQ(qg_event_type_name(QG_EVENT_SHUTDOWN), "shutdown");
	EXPECT_STREQ(qg_event_type_name(QG_EVENT_TYPE_COUNT), "?");
	EXPECT_STREQ(qg_event_severity_name(QG_EVENT_SEV_WARNING), "warning");
	EXPECT_EQ(sizeof(qg_event), 256u);
}

} // namespace
