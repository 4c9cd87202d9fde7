/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compiler helpers shared by every module: branch hints, cache-line
 * alignment and relaxed loads/stores for counters that one thread writes and
 * another reads. GCC builtins (not C11 _Atomic) so C++ tests can include it.
 */
#ifndef QGATE_COMPILER_H
#define QGATE_COMPILER_H

#define QG_CACHE_LINE 64

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define QG_CACHE_ALIGNED __attribute__((aligned(QG_CACHE_LINE)))
#define QG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QG_UNUSED	 __attribute__((unused))

/* Single-writer counters: a plain store the reader may see torn never (aligned 64-bit). */
#define QG_STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define QG_LOAD_RELAXED(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define QG_LOAD_ACQUIRE(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define QG_STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Increment a counter owned by the calling thread: no lock prefix, readers use QG_LOAD_RELAXED. */
#define QG_COUNTER_ADD(p, v) QG_STORE_RELAXED((p), *(p) + (v))

#define qg_prefetch(p)	 __builtin_prefetch((p), 0, 3)
#define qg_prefetch_w(p) __builtin_prefetch((p), 1, 3)

#endif /* QGATE_COMPILER_H */
