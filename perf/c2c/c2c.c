/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-c2c: how long one cache line takes to go from one CPU to another.
 *
 * Two threads, pinned to CPU A and CPU B, pass a counter back and forth in
 * one cache line; the one-way time is half a round trip. bench-dpdk.sh runs
 * it before and after each run: the generator and the device under test
 * exchange every frame through shared memory, so this time is part of every
 * packet's cost. On a VM the host may move the two vCPUs between cores that
 * share a last-level cache (tens of ns) and cores that do not (well over a
 * hundred), and a run's rate follows (docs/PERFORMANCE.md).
 *
 * Usage: qgate-c2c [CPU_A CPU_B]   (default 0 1)
 * Prints {"cpu_a":A,"cpu_b":B,"one_way_ns":X}: the best of 5 trials of
 * 20,000 round trips (the best filters out interrupts and preemption).
 * Exit status 0, 2 for bad arguments, 1 when a thread cannot run on its CPU.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"

#define ROUNDS 20000
#define TRIALS 5

struct c2c {
	_Alignas(64) _Atomic uint64_t line; /* alone in its cache line */
	_Alignas(64) int cpu_b;
	int pin_rc;
	_Atomic int ready;
};

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* CPU B: answer each odd value with the next even one. */
static void *pong(void *arg)
{
	struct c2c *c = arg;
	uint64_t want = 1;

	c->pin_rc = pin(c->cpu_b);
	atomic_store_explicit(&c->ready, c->pin_rc ? -1 : 1, memory_order_release);
	if (c->pin_rc)
		return NULL;
	for (int t = 0; t < TRIALS; t++) {
		for (int i = 0; i < ROUNDS; i++, want += 2) {
			while (atomic_load_explicit(&c->line, memory_order_acquire) != want)
				;
			atomic_store_explicit(&c->line, want + 1, memory_order_release);
		}
	}
	return NULL;
}

static int parse_cpu(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v >= CPU_SETSIZE)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static struct c2c c;
	int cpu_a = 0, ready, rc;
	uint64_t v = 0;
	double best = 0;
	pthread_t th;

	c.cpu_b = 1;
	if (argc != 1 && (argc != 3 || parse_cpu(argv[1], &cpu_a) || parse_cpu(argv[2], &c.cpu_b))) {
		fprintf(stderr, "usage: qgate-c2c [CPU_A CPU_B]\n");
		return 2;
	}
	rc = pin(cpu_a);
	if (rc) {
		fprintf(stderr, "qgate-c2c: cannot run on CPU %d: %s\n", cpu_a, strerror(rc));
		return 1;
	}
	rc = pthread_create(&th, NULL, pong, &c);
	if (rc) {
		fprintf(stderr, "qgate-c2c: pthread_create: %s\n", strerror(rc));
		return 1;
	}
	while (!(ready = atomic_load_explicit(&c.ready, memory_order_acquire)))
		;
	if (ready < 0) {
		pthread_join(th, NULL);
		fprintf(stderr, "qgate-c2c: cannot run on CPU %d: %s\n", c.cpu_b, strerror(c.pin_rc));
		return 1;
	}
	for (int t = 0; t < TRIALS; t++) {
		uint64_t t0 = qg_clock_ns(), ns;

		for (int i = 0; i < ROUNDS; i++) {
			atomic_store_explicit(&c.line, ++v, memory_order_release);
			++v;
			while (atomic_load_explicit(&c.line, memory_order_acquire) != v)
				;
		}
		ns = qg_clock_ns() - t0;
		if (t == 0 || (double)ns / (2.0 * ROUNDS) < best)
			best = (double)ns / (2.0 * ROUNDS);
	}
	pthread_join(th, NULL);
	printf("{\"cpu_a\":%d,\"cpu_b\":%d,\"one_way_ns\":%.1f}\n", cpu_a, c.cpu_b, best);
	return 0;
}
