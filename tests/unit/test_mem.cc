// SPDX-License-Identifier: BSD-3-Clause
// Huge-page backed tables: alignment, zeroing, and that the kernel's
// transparent huge pages really back a large table (and the flow table) when
// it offers them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "qgate/flow.h"
#include "qgate/mem.h"

namespace
{

std::string read_file(const char *path)
{
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

unsigned long vmstat(const char *key)
{
	std::istringstream in(read_file("/proc/vmstat"));
	std::string k;
	unsigned long v;
	while (in >> k >> v)
		if (k == key)
			return v;
	return 0;
}

// "" when the kernel gives transparent huge pages on madvise, else its mode line.
std::string thp_off()
{
	std::string thp = read_file("/sys/kernel/mm/transparent_hugepage/enabled");
	if (thp.find("[always]") != std::string::npos || thp.find("[madvise]") != std::string::npos)
		return "";
	return thp.substr(0, thp.find('\n'));
}

bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

} // namespace

TEST(Mem, SmallAllocationsAreZeroedCacheLines)
{
	for (size_t n :
	     { size_t(0), size_t(1), size_t(63), size_t(64), size_t(4097), size_t(QG_MEM_HUGE_MIN - 1) }) {
		auto *p = static_cast<uint8_t *>(qg_mem_alloc(n));
		ASSERT_NE(p, nullptr) << n;
		EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << n;
		EXPECT_TRUE(all_zero(p, n)) << n;
		memset(p, 0xa5, n);
		qg_mem_free(p, n);
	}
	qg_mem_free(nullptr, 123);
}

TEST(Mem, LargeAllocationsStartOnAHugePageAndAreZeroed)
{
	for (size_t n : { size_t(QG_MEM_HUGE_MIN), size_t(QG_MEM_HUGE_MIN) + 1, size_t(9) << 20 }) {
		auto *p = static_cast<uint8_t *>(qg_mem_alloc(n));
		ASSERT_NE(p, nullptr) << n;
		EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2u << 20), 0u) << n;
		EXPECT_TRUE(all_zero(p, n)) << n;
		memset(p, 0x5a, n); // every byte of the asked size is writable
		qg_mem_free(p, n);
	}
}

TEST(Mem, LargeTablesGetHugePagesWhenTheKernelOffersThem)
{
	std::string off = thp_off();
	if (!off.empty())
		GTEST_SKIP() << "transparent huge pages are off on this kernel (" << off
			     << "): tables fall back to 4 KiB pages";
	const size_t n = size_t(16) << 20;
	unsigned long fallback0 = vmstat("thp_fault_fallback");
	void *p = qg_mem_alloc(n);
	ASSERT_NE(p, nullptr);
	long huge = qg_mem_huge_bytes(p, n);
	unsigned long fallback = vmstat("thp_fault_fallback") - fallback0;
	qg_mem_free(p, n);
	ASSERT_GE(huge, 0) << "cannot read /proc/self/smaps";
	if (huge == 0 && fallback > 0)
		GTEST_SKIP() << "the kernel had no free huge page (thp_fault_fallback +" << fallback << ")";
	// Background allocations may fall back for a page or two; most of the table must be huge.
	EXPECT_GE(huge, long(n / 2)) << "16 MiB table, " << huge << " bytes on huge pages";
}

// The flow table's arrays are the size its capacity implies, and a table of tens of megabytes is
// on huge pages when the kernel offers them (qgate logs both at start-up).
TEST(Mem, FlowTableMemoryIsReportedAndOnHugePages)
{
	const uint32_t cap = 1u << 18, timeout = 1000;
	qg_flow_table_params p{};
	p.capacity = cap;
	p.n_services = 1;
	p.idle_timeout_ms = &timeout;
	unsigned long fallback0 = vmstat("thp_fault_fallback");
	qg_flow_table *t = nullptr;
	ASSERT_EQ(qg_flow_table_create(&p, &t), 0);
	size_t bytes = 0, huge = 0;
	int rc = qg_flow_table_memory(t, &bytes, &huge);
	qg_flow_table_destroy(t);
	ASSERT_EQ(rc, 0);
	// Entries (64 bytes, also the hash table), per-client counters (32) and their buckets (4).
	EXPECT_EQ(bytes, size_t(cap) * (sizeof(qg_flow) + 32) + size_t(cap) * sizeof(uint32_t));
	EXPECT_LE(huge, bytes);
	std::string off = thp_off();
	if (!off.empty())
		GTEST_SKIP() << "transparent huge pages are off here: " << off;
	if (huge == 0 && vmstat("thp_fault_fallback") > fallback0)
		GTEST_SKIP() << "the kernel had no free huge page (thp_fault_fallback grew)";
	EXPECT_GE(huge, size_t(cap) * sizeof(qg_flow) / 2) << "of " << bytes << " bytes";
}
