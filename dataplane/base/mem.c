/* SPDX-License-Identifier: BSD-3-Clause */
/* Huge-page backed tables (see include/qgate/mem.h for why). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qgate/compiler.h"
#include "qgate/mem.h"

#define MEM_HUGE_PAGE ((size_t)2 << 20)

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) & ~(to - 1);
}

void *qg_mem_alloc(size_t bytes)
{
	size_t len, map_len;
	uint8_t *m, *p;

	if (bytes < QG_MEM_HUGE_MIN) {
		len = round_up(bytes ? bytes : 1, QG_CACHE_LINE);
		p = aligned_alloc(QG_CACHE_LINE, len);
		if (p)
			memset(p, 0, len);
		return p;
	}
	/* Map one huge page more, so the range can start on a 2 MiB boundary, then trim. */
	len = round_up(bytes, MEM_HUGE_PAGE);
	map_len = len + MEM_HUGE_PAGE;
	m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	p = (uint8_t *)round_up((uintptr_t)m, MEM_HUGE_PAGE);
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (p + len < m + map_len)
		munmap(p + len, (size_t)(m + map_len - (p + len)));
	/* Advice only: without THP the table still works, on small pages. */
	(void)madvise(p, len, MADV_HUGEPAGE);
	/* Fault every page in now (anonymous memory reads as zero already). */
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 0;
	return p;
}

void qg_mem_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (bytes < QG_MEM_HUGE_MIN)
		free(p);
	else
		munmap(p, round_up(bytes, MEM_HUGE_PAGE));
}

long qg_mem_huge_bytes(const void *p, size_t bytes)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + bytes;
	unsigned long start = 0, end = 0, kb;
	long total = 0;
	int in_range = 0;
	char line[256];
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in_range = start < hi && end > lo;
			continue;
		}
		if (in_range && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			total += (long)kb * 1024;
	}
	fclose(f);
	return total;
}
