// SPDX-License-Identifier: BSD-3-Clause
// Per-core flow table: unit tests plus a randomized check against a model.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "qgate/flow.h"

namespace
{

qg_addr v4(uint32_t ip, uint16_t port)
{
	qg_addr a;
	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	uint32_t n = htonl(ip);
	memcpy(a.ip, &n, 4);
	a.port = htons(port);
	return a;
}

qg_addr v6(uint64_t lo, uint16_t port)
{
	qg_addr a;
	memset(&a, 0, sizeof(a));
	a.family = AF_INET6;
	a.ip[0] = 0x20;
	a.ip[1] = 0x01;
	a.ip[2] = 0x0d;
	a.ip[3] = 0xb8;
	memcpy(a.ip + 8, &lo, 8);
	a.port = htons(port);
	return a;
}

struct Removal {
	uint32_t idx;
	uint16_t svc;
	qg_addr client;
	qg_flow_reason why;
};

struct Recorder {
	std::vector<Removal> events;
	static void cb(void *ctx, uint32_t idx, const qg_flow *f, qg_flow_reason why)
	{
		static_cast<Recorder *>(ctx)->events.push_back({ idx, f->svc, f->client, why });
	}
};

// Owns a table; frees it at scope end.
class Table
{
      public:
	Table(uint32_t capacity, std::vector<uint32_t> timeouts, std::vector<uint32_t> limits = {},
	      Recorder *rec = nullptr, uint64_t seed = 0x1234, uint32_t lru_grain_ms = 0)
	    : timeouts_(std::move(timeouts)), limits_(std::move(limits))
	{
		qg_flow_table_params p{};
		p.capacity = capacity;
		p.n_services = static_cast<uint32_t>(timeouts_.size());
		p.idle_timeout_ms = timeouts_.data();
		p.max_flows_per_client = limits_.empty() ? nullptr : limits_.data();
		p.seed = seed;
		p.on_remove = rec ? Recorder::cb : nullptr;
		p.cb_ctx = rec;
		p.lru_grain_ms = lru_grain_ms;
		rc_ = qg_flow_table_create(&p, &t_);
	}
	~Table()
	{
		qg_flow_table_destroy(t_);
	}
	Table(const Table &) = delete;
	Table &operator=(const Table &) = delete;
	qg_flow_table *get() const
	{
		return t_;
	}
	int rc() const
	{
		return rc_;
	}

	uint32_t insert(uint16_t svc, const qg_addr &a, uint32_t now)
	{
		uint32_t idx = QG_FLOW_NONE;
		int rc = qg_flow_insert(t_, svc, &a, now, &idx);
		EXPECT_EQ(rc, 0);
		return idx;
	}
	uint32_t lookup(uint16_t svc, const qg_addr &a, uint32_t now)
	{
		return qg_flow_lookup(t_, svc, &a, now);
	}

      private:
	std::vector<uint32_t> timeouts_;
	std::vector<uint32_t> limits_;
	qg_flow_table *t_ = nullptr;
	int rc_ = -1;
};

static_assert(sizeof(qg_flow) == 64, "one flow per cache line");

} // namespace

TEST(Flow, InvalidParams)
{
	uint32_t to[2] = { 1000, 1000 };
	qg_flow_table_params p{};
	qg_flow_table *t = nullptr;

	EXPECT_EQ(qg_flow_table_create(nullptr, &t), -EINVAL);
	p.capacity = 16;
	p.n_services = 2;
	p.idle_timeout_ms = to;
	EXPECT_EQ(qg_flow_table_create(&p, nullptr), -EINVAL);

	p.capacity = 0;
	EXPECT_EQ(qg_flow_table_create(&p, &t), -EINVAL);
	p.capacity = 16;
	p.n_services = 0;
	EXPECT_EQ(qg_flow_table_create(&p, &t), -EINVAL);
	p.n_services = 70000; // svc is 16 bits
	EXPECT_EQ(qg_flow_table_create(&p, &t), -EINVAL);
	p.n_services = 2;
	p.idle_timeout_ms = nullptr;
	EXPECT_EQ(qg_flow_table_create(&p, &t), -EINVAL);
	p.idle_timeout_ms = to;
	EXPECT_EQ(t, nullptr);

	ASSERT_EQ(qg_flow_table_create(&p, &t), 0);
	qg_addr a = v4(0x0a000001, 1000);
	uint32_t idx;
	EXPECT_EQ(qg_flow_insert(t, 2, &a, 0, &idx), -EINVAL); // svc out of range
	EXPECT_EQ(qg_flow_insert(t, 0, nullptr, 0, &idx), -EINVAL);
	EXPECT_EQ(qg_flow_insert(t, 0, &a, 0, nullptr), -EINVAL);
	EXPECT_EQ(qg_flow_lookup(t, 5, &a, 0), QG_FLOW_NONE);
	EXPECT_EQ(qg_flow_rekey(t, 3, &a), -EINVAL); // not a live flow
	EXPECT_EQ(qg_flow_get(t, 3), nullptr);
	EXPECT_EQ(qg_flow_get(t, 1u << 30), nullptr);
	qg_flow_remove(t, 3);	// ignored
	qg_flow_touch(t, 3, 1); // ignored
	EXPECT_EQ(qg_flow_count(t), 0u);
	qg_flow_table_destroy(t);
	qg_flow_table_destroy(nullptr);
}

TEST(Flow, CountAndCapacity)
{
	Table tb(100, { 1000 });
	ASSERT_EQ(tb.rc(), 0);
	EXPECT_EQ(qg_flow_capacity(tb.get()), 100u);
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
	for (uint32_t i = 0; i < 10; i++)
		tb.insert(0, v4(0x0a000000 + i, 5000), 0);
	EXPECT_EQ(qg_flow_count(tb.get()), 10u);
	EXPECT_EQ(qg_flow_capacity(tb.get()), 100u);
}

TEST(Flow, InsertLookupV4V6)
{
	Table tb(64, { 10000, 10000 });
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a4 = v4(0xc0a80001, 40000);
	qg_addr a6 = v6(0x42, 40000);

	uint32_t i4 = tb.insert(0, a4, 100);
	uint32_t i6 = tb.insert(0, a6, 100);
	ASSERT_NE(i4, QG_FLOW_NONE);
	ASSERT_NE(i6, QG_FLOW_NONE);
	EXPECT_NE(i4, i6);

	EXPECT_EQ(tb.lookup(0, a4, 200), i4);
	EXPECT_EQ(tb.lookup(0, a6, 200), i6);

	const qg_flow *f = qg_flow_get(tb.get(), i4);
	ASSERT_NE(f, nullptr);
	EXPECT_TRUE(qg_addr_equal(&f->client, &a4));
	EXPECT_EQ(f->svc, 0);
	EXPECT_EQ(f->backend, QG_FLOW_NONE);
	EXPECT_EQ(f->upstream, QG_FLOW_NONE);
	EXPECT_EQ(f->client_slot, QG_FLOW_NONE); // unlimited service
	EXPECT_EQ(f->last_seen, 200u);		 // refreshed by the hit

	// Owner fields survive lookups.
	qg_flow *w = qg_flow_get(tb.get(), i6);
	w->backend = 7;
	w->upstream = 99;
	EXPECT_EQ(tb.lookup(0, a6, 300), i6);
	EXPECT_EQ(qg_flow_get(tb.get(), i6)->backend, 7u);
	EXPECT_EQ(qg_flow_get(tb.get(), i6)->upstream, 99u);
}

TEST(Flow, SameAddressDifferentServiceOrPort)
{
	Table tb(64, { 10000, 10000 });
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(0x0a000001, 1234);
	qg_addr b = v4(0x0a000001, 1235);

	uint32_t s0 = tb.insert(0, a, 0);
	EXPECT_EQ(tb.lookup(1, a, 0), QG_FLOW_NONE); // other service: a different flow
	EXPECT_EQ(tb.lookup(0, b, 0), QG_FLOW_NONE); // other port: a different flow
	uint32_t s1 = tb.insert(1, a, 0);
	uint32_t p1 = tb.insert(0, b, 0);
	EXPECT_NE(s0, s1);
	EXPECT_NE(s0, p1);
	EXPECT_EQ(tb.lookup(0, a, 1), s0);
	EXPECT_EQ(tb.lookup(1, a, 1), s1);
	EXPECT_EQ(tb.lookup(0, b, 1), p1);

	// IPv4 and IPv6 with the same leading bytes are distinct.
	qg_addr c6 = a;
	c6.family = AF_INET6;
	EXPECT_EQ(tb.lookup(0, c6, 1), QG_FLOW_NONE);
}

TEST(Flow, Miss)
{
	Table tb(16, { 1000 });
	ASSERT_EQ(tb.rc(), 0);
	EXPECT_EQ(tb.lookup(0, v4(1, 1), 0), QG_FLOW_NONE);
	tb.insert(0, v4(1, 1), 0);
	EXPECT_EQ(tb.lookup(0, v4(1, 2), 0), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, v4(2, 1), 0), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, v6(1, 1), 0), QG_FLOW_NONE);
}

TEST(Flow, RemoveWithCallback)
{
	Recorder rec;
	Table tb(16, { 1000 }, {}, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(0x01020304, 80);
	uint32_t idx = tb.insert(0, a, 0);
	qg_flow_get(tb.get(), idx)->backend = 3;

	qg_flow_remove(tb.get(), idx);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].idx, idx);
	EXPECT_EQ(rec.events[0].why, QG_FLOW_REASON_REMOVED);
	EXPECT_TRUE(qg_addr_equal(&rec.events[0].client, &a));
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
	EXPECT_EQ(tb.lookup(0, a, 0), QG_FLOW_NONE);
	EXPECT_EQ(qg_flow_get(tb.get(), idx), nullptr);

	qg_flow_remove(tb.get(), idx); // double remove is ignored
	EXPECT_EQ(rec.events.size(), 1u);

	// The slot is reusable.
	uint32_t again = tb.insert(0, a, 5);
	EXPECT_EQ(tb.lookup(0, a, 5), again);
	EXPECT_EQ(qg_flow_get(tb.get(), again)->backend, QG_FLOW_NONE);
}

TEST(Flow, ExpiryPerServiceTimeout)
{
	Recorder rec;
	Table tb(64, { 1000, 60000 }, {}, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(0x0a000001, 1);
	qg_addr b = v4(0x0a000002, 2);
	uint32_t ia = tb.insert(0, a, 0);
	uint32_t ib = tb.insert(1, b, 0);

	EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 100), 0u); // exactly the timeout: not yet idle past it
	EXPECT_EQ(qg_flow_expire(tb.get(), 1001, 100), 1u);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].idx, ia);
	EXPECT_EQ(rec.events[0].why, QG_FLOW_REASON_EXPIRED);
	EXPECT_EQ(tb.lookup(0, a, 1001), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(1, b, 1001), ib);

	EXPECT_EQ(qg_flow_expire(tb.get(), 30000, 100), 0u);
	EXPECT_EQ(qg_flow_expire(tb.get(), 61002, 100), 1u);
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
}

TEST(Flow, ExpiryStopsAtRecentlyUsed)
{
	Table tb(64, { 1000 });
	ASSERT_EQ(tb.rc(), 0);
	std::vector<uint32_t> ids;
	for (uint32_t i = 0; i < 10; i++)
		ids.push_back(tb.insert(0, v4(100 + i, 1), i * 100)); // last_seen 0..900
	qg_flow_touch(tb.get(), ids[0], 950);			      // oldest becomes newest
	EXPECT_EQ(qg_flow_expire(tb.get(), 1550, 100), 5u);	      // 100..500 are idle > 1000
	EXPECT_NE(qg_flow_get(tb.get(), ids[0]), nullptr);
	EXPECT_EQ(qg_flow_get(tb.get(), ids[1]), nullptr);
	EXPECT_NE(qg_flow_get(tb.get(), ids[6]), nullptr);
	EXPECT_EQ(qg_flow_count(tb.get()), 5u);
}

// With a grain, a hit within the grain of the flow's last use does not move it in
// the LRU list: eviction is oldest-first to within a grain.
TEST(Flow, LruGrainMovesAFlowOncePerGrain)
{
	Recorder rec;
	Table tb(16, { 16384 }, {}, &rec, 0x1234, 1024); // grain min(1024, 16384 / 16) = 1024 ms
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(1, 1), b = v4(2, 2);
	uint32_t ia = tb.insert(0, a, 0), ib = tb.insert(0, b, 10);
	EXPECT_EQ(tb.lookup(0, a, 500), ia); // same grain as 0: stays the head
	EXPECT_EQ(qg_flow_get(tb.get(), ia)->last_seen, 500u);
	ASSERT_EQ(qg_flow_evict_oldest(tb.get(), 0, QG_FLOW_NONE), 0);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].idx, ia);

	ia = tb.insert(0, a, 1000);	      // appended after b
	EXPECT_EQ(tb.lookup(0, b, 1030), ib); // grain 1 (1024..2047): b moves behind a
	ASSERT_EQ(qg_flow_evict_oldest(tb.get(), 0, QG_FLOW_NONE), 0);
	ASSERT_EQ(rec.events.size(), 2u);
	EXPECT_EQ(rec.events[1].idx, ia);
}

// The grain is at most a sixteenth of the idle timeout, and 1 ms (exact LRU) without one.
TEST(Flow, LruGrainFollowsTheIdleTimeout)
{
	Recorder rec;
	Table tb(16, { 1000, 1000 }, {}, &rec, 0x1234, 1024); // grain 32 ms (1000 / 16 = 62)
	ASSERT_EQ(tb.rc(), 0);
	uint32_t ia = tb.insert(0, v4(1, 1), 0);
	tb.insert(0, v4(2, 2), 1);
	EXPECT_EQ(tb.lookup(0, v4(1, 1), 31), ia); // still grain 0
	ASSERT_EQ(qg_flow_evict_oldest(tb.get(), 0, QG_FLOW_NONE), 0);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].idx, ia);
	ia = tb.insert(0, v4(1, 1), 40);
	uint32_t ib = tb.insert(0, v4(3, 3), 41);
	EXPECT_EQ(tb.lookup(0, v4(1, 1), 64), ia); // grain 2 (64..95): moves behind 3
	ASSERT_EQ(qg_flow_evict_oldest(tb.get(), 0, QG_FLOW_NONE), 0);
	EXPECT_NE(rec.events.back().idx, ia);

	// A reload to a short timeout makes the service's LRU exact again.
	qg_flow_set_service(tb.get(), 1, 20, 0);
	uint32_t ic = tb.insert(1, v4(4, 4), 100), id = tb.insert(1, v4(5, 5), 101);
	EXPECT_EQ(tb.lookup(1, v4(4, 4), 102), ic);
	ASSERT_EQ(qg_flow_evict_oldest(tb.get(), 1, QG_FLOW_NONE), 0);
	EXPECT_EQ(rec.events.back().idx, id);
	(void)ib;
}

// Expiry stops at the first live flow of the list, which with a grain may keep a
// flow idle past its timeout for less than a grain; a lookup never returns it.
TEST(Flow, LruGrainExpiryIsLateByLessThanAGrain)
{
	Recorder rec;
	Table tb(16, { 16384 }, {}, &rec, 0x1234, 1024);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(1, 1), b = v4(2, 2);
	uint32_t ia = tb.insert(0, a, 0), ib = tb.insert(0, b, 100);
	EXPECT_EQ(tb.lookup(0, a, 900), ia);			  // same grain: a stays ahead of b
	EXPECT_EQ(qg_flow_expire(tb.get(), 100 + 16385, 10), 0u); // b is idle, behind live a
	EXPECT_NE(qg_flow_get(tb.get(), ib), nullptr);
	EXPECT_EQ(qg_flow_expire(tb.get(), 900 + 16385, 10), 2u); // 800 ms late, < 1024
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);

	tb.insert(0, b, 20000);
	EXPECT_EQ(tb.lookup(0, b, 20000 + 16385), QG_FLOW_NONE); // idle: never returned
	EXPECT_EQ(rec.events.back().why, QG_FLOW_REASON_EXPIRED);
}

TEST(Flow, LazyExpiryOnLookup)
{
	Recorder rec;
	Table tb(16, { 500 }, {}, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(7, 7);
	uint32_t idx = tb.insert(0, a, 1000);
	EXPECT_EQ(tb.lookup(0, a, 1500), idx); // refreshed to 1500
	EXPECT_EQ(tb.lookup(0, a, 2000), idx); // 500 idle: still alive
	EXPECT_EQ(tb.lookup(0, a, 2501), QG_FLOW_NONE);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].why, QG_FLOW_REASON_EXPIRED);
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
}

TEST(Flow, ExpireBudgetAndRoundRobin)
{
	Table tb(1024, { 100, 100 });
	ASSERT_EQ(tb.rc(), 0);
	for (uint32_t i = 0; i < 100; i++)
		tb.insert(0, v4(i, 1), 0);
	for (uint32_t i = 0; i < 10; i++)
		tb.insert(1, v4(i, 1), 0);

	EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 7), 7u);
	EXPECT_EQ(qg_flow_count(tb.get()), 103u);
	EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 0), 0u);

	// Service 0 has many idle flows, yet service 1 gets its turn: count the
	// service-1 flows left after a few small budgets.
	auto count_svc = [&](uint16_t svc) {
		struct C {
			uint16_t svc;
			uint32_t n;
		} c{ svc, 0 };
		qg_flow_foreach(
			tb.get(),
			[](void *ctx, uint32_t, const qg_flow *f) {
				auto *cc = static_cast<C *>(ctx);
				if (f->svc == cc->svc)
					cc->n++;
			},
			&c);
		return c.n;
	};
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 5), 5u);
	EXPECT_LT(count_svc(1), 10u);
	EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 1000), 83u);
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
}

TEST(Flow, EvictsLeastRecentWhenFull)
{
	Recorder rec;
	Table tb(4, { 100000, 100000 }, {}, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a[6];
	uint32_t id[6];
	for (uint32_t i = 0; i < 6; i++)
		a[i] = v4(0x0a000000 + i, 1000);
	id[0] = tb.insert(0, a[0], 10);
	id[1] = tb.insert(1, a[1], 20);
	id[2] = tb.insert(0, a[2], 30);
	id[3] = tb.insert(1, a[3], 40);
	EXPECT_EQ(qg_flow_count(tb.get()), 4u);

	// Touch the oldest (service 0): it is protected; service 1's head is now oldest.
	EXPECT_EQ(tb.lookup(0, a[0], 50), id[0]);
	id[4] = tb.insert(0, a[4], 60);
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].why, QG_FLOW_REASON_EVICTED);
	EXPECT_EQ(rec.events[0].idx, id[1]);
	EXPECT_TRUE(qg_addr_equal(&rec.events[0].client, &a[1]));
	EXPECT_EQ(rec.events[0].svc, 1);
	EXPECT_EQ(id[4], id[1]); // the freed slot is the one reused
	EXPECT_EQ(qg_flow_count(tb.get()), 4u);

	// Next oldest is a[2] (30), then a[3] (40).
	qg_flow_touch(tb.get(), id[3], 70);
	id[5] = tb.insert(1, a[5], 80);
	ASSERT_EQ(rec.events.size(), 2u);
	EXPECT_EQ(rec.events[1].idx, id[2]);
	EXPECT_EQ(tb.lookup(0, a[2], 80), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, a[0], 80), id[0]);
	EXPECT_EQ(tb.lookup(1, a[3], 80), id[3]);
	EXPECT_EQ(tb.lookup(0, a[4], 80), id[4]);
	EXPECT_EQ(tb.lookup(1, a[5], 80), id[5]);
}

TEST(Flow, CapacityOne)
{
	Recorder rec;
	Table tb(1, { 1000 }, { 1 }, &rec);
	ASSERT_EQ(tb.rc(), 0);
	uint32_t i0 = tb.insert(0, v4(1, 1), 0);
	uint32_t i1 = tb.insert(0, v4(2, 1), 1); // evicts; the counter pool never runs dry
	EXPECT_EQ(i0, i1);
	EXPECT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(tb.lookup(0, v4(2, 1), 1), i1);
}

TEST(Flow, PerClientLimit)
{
	Recorder rec;
	Table tb(64, { 100000, 100000 }, { 2, 0 }, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr c1 = v4(0x0a000001, 1000);
	qg_addr c2 = v4(0x0a000001, 1001);
	qg_addr c3 = v4(0x0a000001, 1002);
	qg_addr other = v4(0x0a000002, 1000);
	uint32_t idx;

	uint32_t i1 = tb.insert(0, c1, 0);
	tb.insert(0, c2, 0);
	EXPECT_NE(qg_flow_get(tb.get(), i1)->client_slot, QG_FLOW_NONE);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c3, 0, &idx), -EDQUOT); // port ignored: same client
	EXPECT_EQ(qg_flow_count(tb.get()), 2u);
	tb.insert(0, other, 0); // another IP is not affected
	tb.insert(1, c3, 0);	// unlimited service
	EXPECT_EQ(qg_flow_get(tb.get(), tb.lookup(1, c3, 0))->client_slot, QG_FLOW_NONE);

	qg_flow_remove(tb.get(), i1);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c3, 0, &idx), 0);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c1, 0, &idx), -EDQUOT);
	EXPECT_TRUE(rec.events.size() == 1u && rec.events[0].why == QG_FLOW_REASON_REMOVED);

	// Limit change applies to later decisions.
	qg_flow_set_service(tb.get(), 0, 100000, 3);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c1, 0, &idx), 0);
	qg_addr c4 = v4(0x0a000001, 1003);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c4, 0, &idx), -EDQUOT);
	qg_flow_set_service(tb.get(), 0, 100000, 0);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c4, 0, &idx), 0);
	EXPECT_EQ(qg_flow_get(tb.get(), idx)->client_slot, QG_FLOW_NONE);

	// Counters are freed when every flow of the client leaves: a full table of
	// distinct limited clients must keep working after churn.
	Table t2(8, { 100000 }, { 1 });
	for (uint32_t round = 0; round < 20; round++)
		for (uint32_t i = 0; i < 8; i++) {
			qg_addr c = v4(round * 100 + i, 9);
			uint32_t j = t2.insert(0, c, round);
			if (i & 1)
				qg_flow_remove(t2.get(), j);
		}
	EXPECT_LE(qg_flow_count(t2.get()), 8u);
}

TEST(Flow, PerClientLimitIPv6AndEvictionFreesQuota)
{
	Table tb(2, { 100000 }, { 2 });
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v6(5, 1), b = v6(5, 2), c = v6(5, 3);
	uint32_t idx;
	tb.insert(0, a, 0);
	tb.insert(0, b, 1);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c, 2, &idx), -EDQUOT);
	EXPECT_EQ(qg_flow_count(tb.get()), 2u); // refusal evicted nobody
	tb.insert(0, v6(6, 1), 3);		// evicts a (oldest), frees one quota
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &c, 4, &idx), 0);
}

TEST(Flow, Rekey)
{
	Table tb(16, { 100000 }, { 1 });
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(0x0a000001, 1000);
	qg_addr a_port = v4(0x0a000001, 2000); // NAT rebinding: same IP
	qg_addr b = v4(0x0a000002, 1000);      // migration: new IP
	qg_addr c = v4(0x0a000003, 1000);

	uint32_t ia = tb.insert(0, a, 0);
	qg_flow *f = qg_flow_get(tb.get(), ia);
	f->backend = 4;
	f->upstream = 44;
	uint32_t slot = f->client_slot;

	EXPECT_EQ(qg_flow_rekey(tb.get(), ia, &a), 0); // same key: no-op
	EXPECT_EQ(qg_flow_rekey(tb.get(), ia, &a_port), 0);
	EXPECT_EQ(tb.lookup(0, a, 1), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, a_port, 1), ia);
	EXPECT_EQ(qg_flow_get(tb.get(), ia)->client_slot, slot);

	EXPECT_EQ(qg_flow_rekey(tb.get(), ia, &b), 0);
	EXPECT_EQ(tb.lookup(0, a_port, 2), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, b, 2), ia);
	EXPECT_EQ(qg_flow_get(tb.get(), ia)->backend, 4u);
	EXPECT_EQ(qg_flow_get(tb.get(), ia)->upstream, 44u);
	EXPECT_TRUE(qg_addr_equal(&qg_flow_get(tb.get(), ia)->client, &b));

	// The quota moved with the flow: the old IP is free, the new one is used.
	uint32_t idx;
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &a, 3, &idx), 0);
	qg_addr b2 = v4(0x0a000002, 1001);
	EXPECT_EQ(qg_flow_insert(tb.get(), 0, &b2, 3, &idx), -EDQUOT);

	// -EEXIST when the target key is another flow.
	uint32_t ic = tb.insert(0, c, 3);
	EXPECT_EQ(qg_flow_rekey(tb.get(), ic, &b), -EEXIST);
	EXPECT_EQ(tb.lookup(0, c, 4), ic);
	EXPECT_EQ(tb.lookup(0, b, 4), ia);
	EXPECT_EQ(qg_flow_rekey(tb.get(), ic, nullptr), -EINVAL);
	EXPECT_EQ(qg_flow_count(tb.get()), 3u);
}

// Two clients whose 32-bit key hashes are equal share a home entry and cannot
// be told apart by the hash: the second is displaced, and each must still be
// found through every order of arrival, departure and migration.
TEST(Flow, KeysWithTheSameHash)
{
	Table tb(64, { 100000 });
	ASSERT_EQ(tb.rc(), 0);
	// Birthday search: the first repeat of a 32-bit hash comes after ~80k keys.
	std::unordered_map<uint32_t, uint32_t> seen;
	uint32_t ia = 0, ib = 0;
	bool found = false;
	for (uint32_t n = 1; n < 4000000 && !found; n++) {
		qg_addr k = v4(n, 443);
		uint32_t h = qg_flow_prefetch(tb.get(), 0, &k);
		auto [it, fresh] = seen.emplace(h, n);
		if (!fresh) {
			ia = it->second;
			ib = n;
			found = true;
		}
	}
	ASSERT_TRUE(found);
	qg_addr a = v4(ia, 443), b = v4(ib, 443), c = v4(0x0b000001, 443);
	ASSERT_EQ(qg_flow_prefetch(tb.get(), 0, &a), qg_flow_prefetch(tb.get(), 0, &b));

	uint32_t fa = tb.insert(0, a, 1);
	EXPECT_EQ(tb.lookup(0, b, 1), QG_FLOW_NONE); // the hash matches, the key does not
	uint32_t fb = tb.insert(0, b, 1);
	ASSERT_NE(fa, fb);
	EXPECT_EQ(tb.lookup(0, a, 2), fa);
	EXPECT_EQ(tb.lookup(0, b, 2), fb);
	// The staged lookup takes the same paths.
	uint32_t h = qg_flow_prefetch(tb.get(), 0, &b);
	qg_flow_prefetch_entry(tb.get(), h);
	EXPECT_EQ(qg_flow_lookup_hashed(tb.get(), 0, &b, h, 2), fb);

	// The home's flow leaves: the displaced one is still found, and a returning
	// a goes back home while b stays where it is (flows never move).
	qg_flow_remove(tb.get(), fa);
	EXPECT_EQ(tb.lookup(0, a, 3), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, b, 3), fb);
	uint32_t fa2 = tb.insert(0, a, 3);
	EXPECT_EQ(fa2, fa);
	EXPECT_EQ(tb.lookup(0, a, 4), fa2);
	EXPECT_EQ(tb.lookup(0, b, 4), fb);

	// Migration away from the shared home and back onto it.
	EXPECT_EQ(qg_flow_rekey(tb.get(), fb, &c), 0);
	EXPECT_EQ(tb.lookup(0, b, 5), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, c, 5), fb);
	EXPECT_EQ(tb.lookup(0, a, 5), fa2);
	EXPECT_EQ(qg_flow_rekey(tb.get(), fa2, &b), 0);
	EXPECT_EQ(tb.lookup(0, a, 6), QG_FLOW_NONE);
	EXPECT_EQ(tb.lookup(0, b, 6), fa2);
	EXPECT_EQ(qg_flow_rekey(tb.get(), fb, &a), 0);
	EXPECT_EQ(tb.lookup(0, a, 7), fb);
	EXPECT_EQ(tb.lookup(0, b, 7), fa2);
	EXPECT_EQ(tb.lookup(0, c, 7), QG_FLOW_NONE);

	// Same key, another service: a different hash, an independent flow.
	qg_flow_remove(tb.get(), fa2);
	EXPECT_EQ(tb.lookup(0, a, 8), fb);
	EXPECT_EQ(tb.lookup(0, b, 8), QG_FLOW_NONE);
	EXPECT_EQ(qg_flow_count(tb.get()), 1u);
}

TEST(Flow, Foreach)
{
	Table tb(32, { 1000, 1000 });
	ASSERT_EQ(tb.rc(), 0);
	std::map<uint32_t, uint16_t> want;
	for (uint32_t i = 0; i < 10; i++)
		want[tb.insert(i % 2, v4(i, 1), 0)] = i % 2;
	qg_flow_remove(tb.get(), want.begin()->first);
	want.erase(want.begin());

	std::map<uint32_t, uint16_t> got;
	qg_flow_foreach(
		tb.get(),
		[](void *ctx, uint32_t idx, const qg_flow *f) {
			(*static_cast<std::map<uint32_t, uint16_t> *>(ctx))[idx] = f->svc;
		},
		&got);
	EXPECT_EQ(got, want);
}

TEST(Flow, ClockWrapAround)
{
	Recorder rec;
	Table tb(16, { 1000 }, {}, &rec);
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(1, 1), b = v4(2, 2);
	const uint32_t t0 = UINT32_MAX - 300;
	uint32_t ia = tb.insert(0, a, t0);
	uint32_t ib = tb.insert(0, b, t0 + 200); // UINT32_MAX - 100

	// now has wrapped to a small value: a is 800 ms idle, b 600 ms.
	EXPECT_EQ(qg_flow_expire(tb.get(), 499, 10), 0u);
	EXPECT_EQ(tb.lookup(0, a, 499), ia);		   // a refreshed to 499
	EXPECT_EQ(qg_flow_expire(tb.get(), 1000, 10), 1u); // b: 1101 ms idle
	ASSERT_EQ(rec.events.size(), 1u);
	EXPECT_EQ(rec.events[0].idx, ib);
	EXPECT_EQ(qg_flow_expire(tb.get(), 1499, 10), 0u);
	EXPECT_EQ(qg_flow_expire(tb.get(), 1500, 10), 1u);

	// Eviction order across the wrap: the pre-wrap flow is the oldest.
	Recorder rec2;
	Table t2(2, { 100000, 100000 }, {}, &rec2);
	uint32_t old = t2.insert(1, a, UINT32_MAX - 5);
	t2.insert(0, b, 3);
	t2.insert(0, v4(3, 3), 4);
	ASSERT_EQ(rec2.events.size(), 1u);
	EXPECT_EQ(rec2.events[0].idx, old);
}

TEST(Flow, SetServiceTimeout)
{
	Table tb(16, { 100000 });
	ASSERT_EQ(tb.rc(), 0);
	qg_addr a = v4(1, 1);
	tb.insert(0, a, 0);
	EXPECT_EQ(qg_flow_expire(tb.get(), 5000, 10), 0u);
	qg_flow_set_service(tb.get(), 0, 1000, 0);
	qg_flow_set_service(tb.get(), 9, 1, 1); // out of range: ignored
	EXPECT_EQ(tb.lookup(0, a, 5000), QG_FLOW_NONE);
}

TEST(Flow, MillionEntries)
{
	const uint32_t n = 1000000;
	Recorder rec;
	Table tb(n, { 60000, 60000, 60000, 60000 }, {}, nullptr, 0xfeedface);
	ASSERT_EQ(tb.rc(), 0);
	auto key = [](uint32_t i) {
		return (i & 1) ? v6(0x1000000ull + i, static_cast<uint16_t>(i))
			       : v4(0x0a000000 + (i >> 4), static_cast<uint16_t>(1024 + (i & 15)));
	};
	std::vector<uint32_t> ids(n);
	for (uint32_t i = 0; i < n; i++) {
		qg_addr a = key(i);
		ASSERT_EQ(qg_flow_insert(tb.get(), i & 3, &a, 1, &ids[i]), 0);
	}
	EXPECT_EQ(qg_flow_count(tb.get()), n);

	auto start = std::chrono::steady_clock::now();
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++) {
		qg_addr a = key(i);
		found += qg_flow_lookup(tb.get(), i & 3, &a, 2) == ids[i];
	}
	auto ns =
		std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
			.count();
	EXPECT_EQ(found, n);
	std::printf("[ info ] %.1f ns per lookup hit (1M entries, refresh+relink)\n", double(ns) / n);

	start = std::chrono::steady_clock::now();
	found = 0;
	for (uint32_t i = 0; i < n; i++) {
		qg_addr a = key(i);
		found += qg_flow_lookup(tb.get(), i & 3, &a, 2) == ids[i];
	}
	ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
		     .count();
	EXPECT_EQ(found, n);
	std::printf("[ info ] %.1f ns per lookup hit (1M entries, same ms)\n", double(ns) / n);

	for (uint32_t i = 0; i < n; i++)
		qg_flow_remove(tb.get(), ids[i]);
	EXPECT_EQ(qg_flow_count(tb.get()), 0u);
	qg_addr a = key(12345);
	EXPECT_EQ(qg_flow_lookup(tb.get(), 12345 & 3, &a, 3), QG_FLOW_NONE);
}

// Randomized operations checked against a simple model that tracks keys,
// last_seen per flow and per-client counts.
TEST(Flow, RandomizedAgainstModel)
{
	const uint32_t cap = 512;
	const std::vector<uint32_t> timeouts = { 50, 400, 3000 };
	const std::vector<uint32_t> limits = { 0, 3, 6 };

	struct KeyHash {
		size_t operator()(const std::string &s) const
		{
			return std::hash<std::string>()(s);
		}
	};
	auto keystr = [](uint16_t svc, const qg_addr &a) {
		std::string s(reinterpret_cast<const char *>(&a), sizeof(a));
		s.append(reinterpret_cast<const char *>(&svc), sizeof(svc));
		return s;
	};
	auto clientstr = [](uint16_t svc, const qg_addr &a) {
		std::string s(reinterpret_cast<const char *>(a.ip), 16);
		s.push_back(static_cast<char>(a.family));
		s.append(reinterpret_cast<const char *>(&svc), sizeof(svc));
		return s;
	};

	struct MFlow {
		uint32_t idx;
		uint16_t svc;
		qg_addr a;
		uint32_t last;
	};
	struct Model {
		std::unordered_map<std::string, MFlow, KeyHash> flows;
		std::unordered_map<std::string, uint32_t, KeyHash> clients;
	} m;
	struct Ctx {
		Model *m;
		decltype(keystr) *ks;
		decltype(clientstr) *cs;
		const std::vector<uint32_t> *limits;
		uint32_t now;
		const std::vector<uint32_t> *timeouts;
		qg_flow_reason expect;
		uint32_t removed;
		uint32_t by_reason[3];
	} ctx{ &m, &keystr, &clientstr, &limits, 0, &timeouts, QG_FLOW_REASON_REMOVED, 0, { 0, 0, 0 } };
	uint32_t n_dquot = 0, n_lazy = 0, n_rekey = 0;

	// The model learns removals (expired/evicted) from the callback and checks
	// each one is legitimate.
	uint32_t to[3] = { timeouts[0], timeouts[1], timeouts[2] };
	uint32_t li[3] = { limits[0], limits[1], limits[2] };
	qg_flow_table_params p{};
	p.capacity = cap;
	p.n_services = 3;
	p.idle_timeout_ms = to;
	p.max_flows_per_client = li;
	p.seed = 99;
	p.cb_ctx = &ctx;
	p.on_remove = [](void *vc, uint32_t idx, const qg_flow *f, qg_flow_reason why) {
		auto *c = static_cast<Ctx *>(vc);
		auto it = c->m->flows.find((*c->ks)(f->svc, f->client));
		ASSERT_NE(it, c->m->flows.end());
		EXPECT_EQ(it->second.idx, idx);
		EXPECT_EQ(it->second.last, f->last_seen);
		EXPECT_EQ(why, c->expect);
		if (why == QG_FLOW_REASON_EXPIRED) {
			EXPECT_GT(c->now - f->last_seen, (*c->timeouts)[f->svc]);
		}
		if (why == QG_FLOW_REASON_EVICTED) { // must be the least recent of all
			uint32_t oldest = 0;
			for (auto &kv : c->m->flows)
				oldest = std::max(oldest, c->now - kv.second.last);
			EXPECT_EQ(c->now - f->last_seen, oldest);
		}
		if ((*c->limits)[f->svc]) {
			auto ci = c->m->clients.find((*c->cs)(f->svc, f->client));
			ASSERT_NE(ci, c->m->clients.end());
			if (--ci->second == 0)
				c->m->clients.erase(ci);
		}
		c->m->flows.erase(it);
		c->removed++;
		c->by_reason[why]++;
	};
	qg_flow_table *t = nullptr;
	ASSERT_EQ(qg_flow_table_create(&p, &t), 0);

	std::mt19937_64 rng(20240611);
	auto rnd_key = [&](uint16_t *svc) {
		*svc = static_cast<uint16_t>(rng() % 3);
		uint32_t ip = static_cast<uint32_t>(rng() % 200);
		uint16_t port = static_cast<uint16_t>(rng() % 8);
		return (ip & 1) ? v6(ip, port) : v4(ip, port);
	};
	// Start near the wrap so the run crosses it.
	uint32_t now = UINT32_MAX - 20000;

	for (int op = 0; op < 200000; op++) {
		// Slow clock so the table fills and evicts; rare jumps expire in bulk.
		if (rng() % 8 == 0)
			now += static_cast<uint32_t>(rng() % 5);
		if (op % 25000 == 24999)
			now += 2500;
		ctx.now = now;
		uint16_t svc;
		qg_addr a = rnd_key(&svc);
		std::string k = keystr(svc, a);
		unsigned r = static_cast<unsigned>(rng() % 100);

		if (r < 40) { // lookup
			auto it = m.flows.find(k);
			bool present = it != m.flows.end();
			bool idle = present && static_cast<uint32_t>(now - it->second.last) > timeouts[svc];
			uint32_t want = present && !idle ? it->second.idx : QG_FLOW_NONE;
			ctx.expect = QG_FLOW_REASON_EXPIRED;
			uint32_t got = qg_flow_lookup(t, svc, &a, now); // may erase it via the callback
			ASSERT_EQ(got, want);
			if (idle) {
				ASSERT_EQ(m.flows.count(k), 0u);
				n_lazy++;
			} else if (present)
				m.flows[k].last = now;
		} else if (r < 75) { // insert when absent (after a lookup, as the pipeline does)
			ctx.expect = QG_FLOW_REASON_EXPIRED;
			if (qg_flow_lookup(t, svc, &a, now) != QG_FLOW_NONE) {
				m.flows[k].last = now;
				continue;
			}
			ASSERT_EQ(m.flows.count(k), 0u);
			uint32_t idx;
			bool over = limits[svc] && m.clients.count(clientstr(svc, a)) &&
				    m.clients[clientstr(svc, a)] >= limits[svc];
			size_t before = m.flows.size();
			ctx.expect = QG_FLOW_REASON_EVICTED;
			int rc = qg_flow_insert(t, svc, &a, now, &idx);
			if (over) {
				ASSERT_EQ(rc, -EDQUOT);
				n_dquot++;
				continue;
			}
			ASSERT_EQ(rc, 0);
			ASSERT_EQ(m.flows.size(), before == cap ? cap - 1 : before);
			m.flows[k] = MFlow{ idx, svc, a, now };
			if (limits[svc])
				m.clients[clientstr(svc, a)]++;
		} else if (r < 84) { // rekey an existing flow to this client (migration)
			if (m.flows.empty())
				continue;
			auto it = m.flows.begin();
			std::advance(it, rng() % std::min<size_t>(m.flows.size(), 16));
			MFlow mf = it->second;
			std::string k2 = keystr(mf.svc, a); // a flow keeps its service
			int rc = qg_flow_rekey(t, mf.idx, &a);
			if (k2 == it->first) {
				ASSERT_EQ(rc, 0);
				continue;
			}
			if (m.flows.count(k2)) {
				ASSERT_EQ(rc, -EEXIST);
				continue;
			}
			ASSERT_EQ(rc, 0);
			if (limits[mf.svc] && (mf.a.family != a.family || memcmp(mf.a.ip, a.ip, 16) != 0)) {
				auto ci = m.clients.find(clientstr(mf.svc, mf.a));
				ASSERT_NE(ci, m.clients.end());
				if (--ci->second == 0)
					m.clients.erase(ci);
				m.clients[clientstr(mf.svc, a)]++;
			}
			m.flows.erase(it);
			mf.a = a;
			m.flows[k2] = mf;
			n_rekey++;
		} else if (r < 90) { // remove an existing flow (by a random model entry)
			if (m.flows.empty())
				continue;
			auto it = m.flows.begin();
			std::advance(it, rng() % std::min<size_t>(m.flows.size(), 16));
			ctx.expect = QG_FLOW_REASON_REMOVED;
			uint32_t before = ctx.removed;
			qg_flow_remove(t, it->second.idx);
			ASSERT_EQ(ctx.removed, before + 1);
		} else if (r < 95) { // touch
			auto it = m.flows.find(k);
			if (it == m.flows.end())
				continue;
			qg_flow_touch(t, it->second.idx, now);
			it->second.last = now;
		} else { // expire with a small budget
			ctx.expect = QG_FLOW_REASON_EXPIRED;
			unsigned budget = static_cast<unsigned>(rng() % 16);
			uint32_t before = ctx.removed;
			unsigned n = qg_flow_expire(t, now, budget);
			ASSERT_LE(n, budget);
			ASSERT_EQ(ctx.removed - before, n);
			if (n < budget) { // budget left over: nothing idle may remain
				for (auto &kv : m.flows)
					ASSERT_LE(static_cast<uint32_t>(now - kv.second.last),
						  timeouts[kv.second.svc]);
			}
		}
		ASSERT_EQ(qg_flow_count(t), m.flows.size());
	}
	// Every path was exercised.
	EXPECT_GT(ctx.by_reason[QG_FLOW_REASON_EXPIRED], n_lazy);
	EXPECT_GT(n_lazy, 0u);
	EXPECT_GT(ctx.by_reason[QG_FLOW_REASON_EVICTED], 0u);
	EXPECT_GT(ctx.by_reason[QG_FLOW_REASON_REMOVED], 0u);
	EXPECT_GT(n_dquot, 0u);
	EXPECT_GT(n_rekey, 0u);
	std::printf("[ info ] expired %u (lazy %u) evicted %u removed %u edquot %u rekeyed %u\n",
		    ctx.by_reason[QG_FLOW_REASON_EXPIRED], n_lazy, ctx.by_reason[QG_FLOW_REASON_EVICTED],
		    ctx.by_reason[QG_FLOW_REASON_REMOVED], n_dquot, n_rekey);
	// Final full comparison.
	for (auto &kv : m.flows) {
		const qg_flow *f = qg_flow_get(t, kv.second.idx);
		ASSERT_NE(f, nullptr);
		EXPECT_TRUE(qg_addr_equal(&f->client, &kv.second.a));
		EXPECT_EQ(f->svc, kv.second.svc);
		EXPECT_EQ(f->last_seen, kv.second.last);
	}
	qg_flow_table_destroy(t);
}
