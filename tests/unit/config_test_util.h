// SPDX-License-Identifier: BSD-3-Clause
// Helpers shared by the configuration tests: load YAML from a string, expect
// exactly one problem at a line and column, build small documents.
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "qgate/config.h"

namespace qgcfg
{

// A pointer value load must leave alone on failure.
inline qg_config *const kSentinel = reinterpret_cast<qg_config *>(0x1);

struct Result {
	int ret = 0;
	qg_config *cfg = nullptr;
	qg_config_errors errs;

	Result() = default;
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	~Result()
	{
		if (cfg != kSentinel)
			qg_config_free(cfg);
	}
};

inline void Load(const std::string &yaml, Result *r)
{
	r->cfg = kSentinel;
	r->ret = qg_config_load_string("test.yaml", yaml.data(), yaml.size(), &r->cfg, &r->errs);
	if (r->ret != 0) {
		EXPECT_EQ(r->cfg, kSentinel) << "*out must stay untouched on error";
	}
}

inline std::string Dump(const qg_config_errors &errs)
{
	std::string s;

	for (unsigned i = 0; i < errs.count; i++)
		s += std::to_string(errs.items[i].line) + ":" + std::to_string(errs.items[i].column) + ": " +
		     errs.items[i].msg + "\n";
	return s;
}

// The document must fail with exactly one problem, at line:column, whose message contains text.
inline void ExpectOneError(const std::string &yaml, int line, int column, const std::string &text)
{
	Result r;

	Load(yaml, &r);
	ASSERT_EQ(r.ret, -EINVAL) << yaml;
	ASSERT_EQ(r.errs.count, 1u) << Dump(r.errs);
	EXPECT_EQ(r.errs.items[0].line, line) << Dump(r.errs);
	EXPECT_EQ(r.errs.items[0].column, column) << Dump(r.errs);
	EXPECT_NE(std::string(r.errs.items[0].msg).find(text), std::string::npos)
		<< "message: " << r.errs.items[0].msg << "\nwanted: " << text;
	EXPECT_STREQ(r.errs.file, "test.yaml");
}

// A valid service block (lines 1-5 when placed first); tests append or prepend to it.
inline const std::string kServices = "services:\n"			  // 1
				     "  - name: echo\n"			  // 2: value at col 11
				     "    listen: 127.0.0.1:4433\n"	  // 3: value at col 13
				     "    backends:\n"			  // 4
				     "      - address: 127.0.0.1:5001\n"; // 5: value at col 18

// A service with one extra line (line 3 of the document) inserted after listen.
inline std::string ServiceWith(const std::string &line)
{
	return "services:\n"
	       "  - name: echo\n"
	       "    " +
	       line +
	       "\n"
	       "    listen: 127.0.0.1:4433\n"
	       "    backends:\n"
	       "      - address: 127.0.0.1:5001\n";
}

// A dataplane with one key (line 2, value of "  key: " style) before valid services.
inline std::string DataplaneWith(const std::string &line)
{
	return "dataplane:\n  " + line + "\n" + kServices;
}

inline uint32_t FirstAllowedCpu()
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return (uint32_t)c;
	return 0;
}

// A CPU this process may not run on, or -1 when all CPU_SETSIZE are allowed.
inline int UnavailableCpu()
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (!CPU_ISSET(c, &set))
			return c;
	return -1;
}

inline std::string Addr(const qg_addr &a)
{
	char buf[QG_ADDR_STRLEN];

	return qg_addr_format(&a, buf, sizeof(buf));
}

} // namespace qgcfg
