/* SPDX-License-Identifier: BSD-3-Clause */
/* Monotonic time in the units the dataplane keeps: milliseconds since start. */
#ifndef QGATE_CLOCK_H
#define QGATE_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Monotonic nanoseconds (CLOCK_MONOTONIC, vDSO: no syscall). */
static inline uint64_t qg_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/** Monotonic milliseconds. */
static inline uint64_t qg_clock_ms(void)
{
	return qg_clock_ns() / 1000000ULL;
}

#ifdef __cplusplus
}
#endif
#endif /* QGATE_CLOCK_H */
