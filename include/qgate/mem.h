/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Large per-core tables (flow entries, hash buckets, NAT port maps) are read
 * at random addresses, once or twice per packet. On 4 KiB pages a table of
 * tens of megabytes misses the TLB on almost every access, and the page walk
 * costs as much as the cache miss it precedes. qg_mem_alloc() backs such
 * tables with transparent huge pages (2 MiB) where the kernel allows it.
 */
#ifndef QGATE_MEM_H
#define QGATE_MEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Sizes from this one up are mapped on their own and advised to use huge pages. */
#define QG_MEM_HUGE_MIN (2u << 20)

/**
 * Allocate bytes of zeroed memory aligned to a cache line. From QG_MEM_HUGE_MIN
 * up: an anonymous mapping aligned to 2 MiB with MADV_HUGEPAGE (the kernel may
 * still give 4 KiB pages: THP "never", or no free huge page); below, the heap.
 * Every page is touched here, so the fast path never takes a first-touch fault.
 * @return the memory, or NULL (errno set).
 */
void *qg_mem_alloc(size_t bytes);

/** Free what qg_mem_alloc(bytes) returned; bytes must be the same. NULL is fine. */
void qg_mem_free(void *p, size_t bytes);

/**
 * Bytes of p's range [p, p + bytes) the kernel backs with huge pages now, read
 * from /proc/self/smaps (for tests and diagnostics; slow). @return bytes, or -errno.
 */
long qg_mem_huge_bytes(const void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* QGATE_MEM_H */
