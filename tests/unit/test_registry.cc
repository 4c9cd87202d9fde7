// SPDX-License-Identifier: BSD-3-Clause
// Component registry: start order, wiring errors, failure unwinding, stop order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <time.h>

#include "qgate/registry.h"

namespace
{

// Records every start/stop as "+name" / "-name" in call order.
struct Harness {
	struct Part {
		Harness *h;
		std::string name;
		int start_rc;
		long sleep_ns;
	};

	qg_registry *reg = nullptr;
	std::vector<std::string> log;
	std::vector<std::unique_ptr<Part>> parts;

	Harness()
	{
		EXPECT_EQ(qg_registry_create(&reg), 0);
	}
	~Harness()
	{
		qg_registry_destroy(reg);
	}

	static void nap(long ns)
	{
		if (ns <= 0)
			return;
		timespec ts = { 0, ns };
		nanosleep(&ts, nullptr);
	}
	static int start(void *ctx)
	{
		Part *p = static_cast<Part *>(ctx);
		p->h->log.push_back("+" + p->name);
		nap(p->sleep_ns);
		return p->start_rc;
	}
	static void stop(void *ctx)
	{
		Part *p = static_cast<Part *>(ctx);
		p->h->log.push_back("-" + p->name);
		nap(p->sleep_ns);
	}

	int add(const char *name, std::vector<const char *> deps = {}, int start_rc = 0, long sleep_ns = 0)
	{
		parts.push_back(std::unique_ptr<Part>(new Part{ this, name, start_rc, sleep_ns }));
		deps.push_back(nullptr);
		qg_part_desc d;
		memset(&d, 0, sizeof(d));
		d.name = name;
		d.deps = deps.data();
		d.ops.start = start;
		d.ops.stop = stop;
		d.ops.ctx = parts.back().get();
		return qg_registry_add(reg, &d);
	}

	Part *part(const char *name)
	{
		for (auto &p : parts)
			if (p->name == name)
				return p.get();
		return nullptr;
	}

	qg_registry_state state(const char *name)
	{
		int idx = qg_registry_find(reg, name);
		EXPECT_GE(idx, 0) << name;
		qg_part_info info;
		EXPECT_EQ(qg_registry_info(reg, (unsigned)idx, &info), 0);
		return info.state;
	}

	// Order in which parts started, from the log.
	std::vector<std::string> started()
	{
		std::vector<std::string> out;
		for (auto &e : log)
			if (e[0] == '+')
				out.push_back(e.substr(1));
		return out;
	}
};

using Strs = std::vector<std::string>;

TEST(Registry, DiamondStartsInTopologicalOrder)
{
	Harness h;
	// Registered top-down, so registration order alone would be wrong.
	ASSERT_EQ(h.add("admin", { "left", "right" }), 0);
	ASSERT_EQ(h.add("left", { "base" }), 0);
	ASSERT_EQ(h.add("right", { "base" }), 0);
	ASSERT_EQ(h.add("base"), 0);
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_EQ(h.started(), (Strs{ "base", "left", "right", "admin" }));
	for (const char *n : { "admin", "left", "right", "base" })
		EXPECT_EQ(h.state(n), QG_REGISTRY_RUNNING) << n;
	EXPECT_STREQ(qg_registry_error(h.reg), "");
}

TEST(Registry, DoubleDiamondEveryDependencyFirst)
{
	Harness h;
	ASSERT_EQ(h.add("top", { "m1", "m2", "m3" }), 0);
	ASSERT_EQ(h.add("m3", { "b1" }), 0);
	ASSERT_EQ(h.add("m1", { "b1", "b2" }), 0);
	ASSERT_EQ(h.add("b2", { "root" }), 0);
	ASSERT_EQ(h.add("m2", { "b2" }), 0);
	ASSERT_EQ(h.add("b1", { "root" }), 0);
	ASSERT_EQ(h.add("root"), 0);
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	// Earliest-registered ready part first, rescanning after each start.
	EXPECT_EQ(h.started(), (Strs{ "root", "b2", "m2", "b1", "m3", "m1", "top" }));

	Strs order = h.started();
	auto pos = [&](const std::string &n) {
		return std::find(order.begin(), order.end(), n) - order.begin();
	};
	for (unsigned i = 0; i < qg_registry_count(h.reg); i++) {
		qg_part_info info;
		ASSERT_EQ(qg_registry_info(h.reg, i, &info), 0);
		EXPECT_EQ(info.start_rank, pos(info.name));
		for (unsigned d = 0; d < info.n_deps; d++)
			EXPECT_LT(pos(info.deps[d]), pos(info.name))
				<< info.name << " needs " << info.deps[d];
	}
}

TEST(Registry, OrderAmongReadyPartsIsRegistrationOrder)
{
	for (int run = 0; run < 3; run++) {
		Harness h;
		ASSERT_EQ(h.add("x", { "z" }), 0);
		ASSERT_EQ(h.add("y"), 0);
		ASSERT_EQ(h.add("z"), 0);
		ASSERT_EQ(h.add("w"), 0);
		ASSERT_EQ(qg_registry_start_all(h.reg), 0);
		// x becomes ready once z is up and, registered first, goes before w.
		EXPECT_EQ(h.started(), (Strs{ "y", "z", "x", "w" }));
	}
}

TEST(Registry, CycleIsNamedAndNothingStarts)
{
	Harness h;
	ASSERT_EQ(h.add("config"), 0);
	ASSERT_EQ(h.add("health", { "config", "metrics" }), 0);
	ASSERT_EQ(h.add("metrics", { "health" }), 0);
	EXPECT_EQ(qg_registry_start_all(h.reg), -ELOOP);
	EXPECT_STREQ(qg_registry_error(h.reg), "dependency cycle: health -> metrics -> health");
	EXPECT_TRUE(h.log.empty());
	EXPECT_EQ(h.state("config"), QG_REGISTRY_REGISTERED);
}

TEST(Registry, CycleReachedThroughAnotherPartNamesOnlyTheCycle)
{
	Harness h;
	ASSERT_EQ(h.add("admin", { "a" }), 0);
	ASSERT_EQ(h.add("a", { "b" }), 0);
	ASSERT_EQ(h.add("b", { "c" }), 0);
	ASSERT_EQ(h.add("c", { "a" }), 0);
	EXPECT_EQ(qg_registry_start_all(h.reg), -ELOOP);
	EXPECT_STREQ(qg_registry_error(h.reg), "dependency cycle: a -> b -> c -> a");
	EXPECT_TRUE(h.log.empty());
}

TEST(Registry, SelfDependencyIsACycle)
{
	Harness h;
	ASSERT_EQ(h.add("loop", { "loop" }), 0);
	EXPECT_EQ(qg_registry_start_all(h.reg), -ELOOP);
	EXPECT_STREQ(qg_registry_error(h.reg), "dependency cycle: loop -> loop");
}

TEST(Registry, MissingDependencyIsNamed)
{
	Harness h;
	ASSERT_EQ(h.add("config"), 0);
	ASSERT_EQ(h.add("admin", { "config", "metrics" }), 0);
	EXPECT_EQ(qg_registry_start_all(h.reg), -ENOENT);
	EXPECT_STREQ(qg_registry_error(h.reg), "part 'admin' depends on 'metrics', which is not registered");
	EXPECT_TRUE(h.log.empty());

	// Fixing the wiring makes the next start work and clears the message.
	ASSERT_EQ(h.add("metrics"), 0);
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_STREQ(qg_registry_error(h.reg), "");
	EXPECT_EQ(h.started(), (Strs{ "config", "metrics", "admin" }));
}

TEST(Registry, FailingStartUnwindsInReverse)
{
	Harness h;
	ASSERT_EQ(h.add("config"), 0);
	ASSERT_EQ(h.add("metrics", { "config" }), 0);
	ASSERT_EQ(h.add("workers", { "metrics" }), 0);
	ASSERT_EQ(h.add("health", { "workers" }, -ECONNREFUSED), 0);
	ASSERT_EQ(h.add("admin", { "health" }), 0);
	ASSERT_EQ(h.add("bridge"), 0); // independent, but later in the plan

	EXPECT_EQ(qg_registry_start_all(h.reg), -ECONNREFUSED);
	EXPECT_EQ(h.log,
		  (Strs{ "+config", "+metrics", "+workers", "+health", "-workers", "-metrics", "-config" }));
	EXPECT_EQ(h.state("health"), QG_REGISTRY_FAILED);
	EXPECT_EQ(h.state("workers"), QG_REGISTRY_STOPPED);
	EXPECT_EQ(h.state("config"), QG_REGISTRY_STOPPED);
	EXPECT_EQ(h.state("admin"), QG_REGISTRY_REGISTERED);
	EXPECT_EQ(h.state("bridge"), QG_REGISTRY_REGISTERED);
	EXPECT_NE(strstr(qg_registry_error(h.reg), "part 'health' failed to start"), nullptr)
		<< qg_registry_error(h.reg);
	qg_part_info info;
	ASSERT_EQ(qg_registry_info(h.reg, (unsigned)qg_registry_find(h.reg, "health"), &info), 0);
	EXPECT_EQ(info.last_error, -ECONNREFUSED);

	// Nothing is running: stop_all has nothing to do.
	h.log.clear();
	qg_registry_stop_all(h.reg);
	EXPECT_TRUE(h.log.empty());

	// The cause fixed, a retry starts everything.
	h.part("health")->start_rc = 0;
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_EQ(h.started(), (Strs{ "config", "metrics", "workers", "health", "admin", "bridge" }));
	EXPECT_EQ(h.state("health"), QG_REGISTRY_RUNNING);
}

TEST(Registry, PositiveStartResultIsAFailure)
{
	Harness h;
	ASSERT_EQ(h.add("a"), 0);
	ASSERT_EQ(h.add("b", {}, 1), 0);
	EXPECT_EQ(qg_registry_start_all(h.reg), -EIO);
	EXPECT_EQ(h.log, (Strs{ "+a", "+b", "-a" }));
}

TEST(Registry, StopIsReverseOfStartAndIdempotent)
{
	Harness h;
	ASSERT_EQ(h.add("admin", { "health", "metrics" }), 0);
	ASSERT_EQ(h.add("health", { "metrics" }), 0);
	ASSERT_EQ(h.add("metrics", { "config" }), 0);
	ASSERT_EQ(h.add("config"), 0);
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	// A second start while running changes nothing.
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_EQ(h.log.size(), 4u);

	h.log.clear();
	qg_registry_stop_all(h.reg);
	EXPECT_EQ(h.log, (Strs{ "-admin", "-health", "-metrics", "-config" }));
	for (const char *n : { "admin", "health", "metrics", "config" })
		EXPECT_EQ(h.state(n), QG_REGISTRY_STOPPED) << n;

	h.log.clear();
	qg_registry_stop_all(h.reg);
	EXPECT_TRUE(h.log.empty());

	// Stopped parts start again, in the same order.
	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_EQ(h.started(), (Strs{ "config", "metrics", "health", "admin" }));
}

TEST(Registry, AddChecksNamesAndDuplicates)
{
	Harness h;
	EXPECT_EQ(h.add("metrics"), 0);
	EXPECT_EQ(h.add("metrics"), -EEXIST);
	EXPECT_EQ(h.add(""), -EINVAL);
	EXPECT_EQ(h.add(std::string(QG_REGISTRY_NAME_MAX, 'n').c_str()), -EINVAL);
	EXPECT_EQ(h.add(std::string(QG_REGISTRY_NAME_MAX - 1, 'n').c_str()), 0);
	EXPECT_EQ(h.add("baddep", { "" }), -EINVAL);
	std::vector<std::string> many(QG_REGISTRY_DEPS_MAX + 1, "metrics");
	std::vector<const char *> deps;
	for (auto &s : many)
		deps.push_back(s.c_str());
	EXPECT_EQ(h.add("greedy", deps), -EINVAL);
	deps.pop_back();
	EXPECT_EQ(h.add("fine", deps), 0);
	EXPECT_EQ(qg_registry_add(h.reg, nullptr), -EINVAL);
	EXPECT_EQ(qg_registry_count(h.reg), 3u);

	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	EXPECT_EQ(h.add("late"), -EBUSY);
	qg_registry_stop_all(h.reg);
	EXPECT_EQ(h.add("late"), 0);
}

TEST(Registry, AddCopiesNames)
{
	Harness h;
	char name[] = "metrics";
	char dep[] = "config";
	const char *deps[] = { dep, nullptr };
	qg_part_desc d;
	memset(&d, 0, sizeof(d));
	d.name = name;
	d.deps = deps;
	ASSERT_EQ(qg_registry_add(h.reg, &d), 0);
	strcpy(name, "garbage");
	strcpy(dep, "junk!!");
	qg_part_info info;
	ASSERT_EQ(qg_registry_info(h.reg, 0, &info), 0);
	EXPECT_STREQ(info.name, "metrics");
	ASSERT_EQ(info.n_deps, 1u);
	EXPECT_STREQ(info.deps[0], "config");
	EXPECT_EQ(info.deps[1], nullptr);
}

struct Transition {
	std::string name;
	qg_registry_state from, to;
	int err;
};

void observe(void *ctx, const char *name, qg_registry_state from, qg_registry_state to, int err)
{
	static_cast<std::vector<Transition> *>(ctx)->push_back({ name, from, to, err });
}

TEST(Registry, IntrospectionAndObserver)
{
	Harness h;
	std::vector<Transition> seen;
	qg_registry_set_observer(h.reg, observe, &seen);
	ASSERT_EQ(h.add("slow", {}, 0, 2000000), 0); // 2 ms start and stop
	ASSERT_EQ(h.add("quick", { "slow" }), 0);
	EXPECT_EQ(qg_registry_find(h.reg, "nobody"), -ENOENT);

	qg_part_info info;
	ASSERT_EQ(qg_registry_info(h.reg, 0, &info), 0);
	EXPECT_EQ(info.state, QG_REGISTRY_REGISTERED);
	EXPECT_EQ(info.start_rank, -1);
	EXPECT_EQ(qg_registry_info(h.reg, 2, &info), -ENOENT);

	ASSERT_EQ(qg_registry_start_all(h.reg), 0);
	qg_registry_stop_all(h.reg);

	ASSERT_EQ(qg_registry_info(h.reg, 0, &info), 0);
	EXPECT_STREQ(info.name, "slow");
	EXPECT_EQ(info.state, QG_REGISTRY_STOPPED);
	EXPECT_EQ(info.n_deps, 0u);
	EXPECT_GE(info.start_ns, 2000000u);
	EXPECT_GE(info.stop_ns, 2000000u);
	EXPECT_EQ(info.last_error, 0);
	EXPECT_EQ(info.start_rank, 0);
	ASSERT_EQ(qg_registry_info(h.reg, 1, &info), 0);
	EXPECT_STREQ(info.deps[0], "slow");
	EXPECT_EQ(info.start_rank, 1);

	ASSERT_EQ(seen.size(), 8u);
	EXPECT_EQ(seen[0].name, "slow");
	EXPECT_EQ(seen[0].from, QG_REGISTRY_REGISTERED);
	EXPECT_EQ(seen[0].to, QG_REGISTRY_STARTING);
	EXPECT_EQ(seen[1].to, QG_REGISTRY_RUNNING);
	EXPECT_EQ(seen[3].name, "quick");
	EXPECT_EQ(seen[3].to, QG_REGISTRY_RUNNING);
	EXPECT_EQ(seen[4].name, "quick");
	EXPECT_EQ(seen[4].to, QG_REGISTRY_STOPPING);
	EXPECT_EQ(seen[7].name, "slow");
	EXPECT_EQ(seen[7].from, QG_REGISTRY_STOPPING);
	EXPECT_EQ(seen[7].to, QG_REGISTRY_STOPPED);

	EXPECT_STREQ(qg_registry_state_name(QG_REGISTRY_RUNNING), "running");
	EXPECT_STREQ(qg_registry_state_name(QG_REGISTRY_FAILED), "failed");
	EXPECT_STREQ(qg_registry_state_name(QG_REGISTRY_STATE_COUNT), "?");
}

TEST(Registry, DestroyStopsRunningParts)
{
	std::vector<std::string> log;
	{
		Harness h;
		ASSERT_EQ(h.add("a"), 0);
		ASSERT_EQ(h.add("b", { "a" }), 0);
		ASSERT_EQ(qg_registry_start_all(h.reg), 0);
		qg_registry_destroy(h.reg);
		h.reg = nullptr;
		log = h.log;
	}
	EXPECT_EQ(log, (Strs{ "+a", "+b", "-b", "-a" }));
}

TEST(Registry, NullOpsAreAllowed)
{
	qg_registry *reg;
	ASSERT_EQ(qg_registry_create(&reg), 0);
	qg_part_desc d;
	memset(&d, 0, sizeof(d));
	d.name = "placeholder";
	ASSERT_EQ(qg_registry_add(reg, &d), 0);
	EXPECT_EQ(qg_registry_start_all(reg), 0);
	qg_registry_stop_all(reg);
	qg_part_info info;
	ASSERT_EQ(qg_registry_info(reg, 0, &info), 0);
	EXPECT_EQ(info.state, QG_REGISTRY_STOPPED);
	qg_registry_destroy(reg);
	EXPECT_EQ(qg_registry_create(nullptr), -EINVAL);
}

} // namespace
