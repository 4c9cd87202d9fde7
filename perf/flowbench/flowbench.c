/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-flowbench: cost of flow-table lookups as the relay does them, in
 * bursts, with and without the prefetch pass, for a small and a large table;
 * then with both prefetch passes and a clock that moves as at 10 Mpps (every
 * hit refreshes its flow's LRU position), once with an exact LRU and once with
 * the relay's LRU grain (lru_grain_ms 1024); last with the two prefetch stages
 * run a burst and two bursts ahead (ns_pipelined).
 * Usage: qgate-flowbench [--no-thp] [--capacity-factor N] [FLOWS...]   (default: 1000 1048576)
 * --no-thp: the tables on 4 KiB pages (prctl PR_SET_THP_DISABLE), to measure
 * what the transparent huge pages of qg_mem_alloc() save.
 * --capacity-factor N: tables of N x FLOWS entries (default 1: full), e.g. 2
 * as bench-dpdk.sh sizes qgate's table (flows_per_core = 2 x flows).
 * Prints ns per lookup for each mode; the machine's noise applies, so it
 * reports the best of several rounds. The mode names keep their first
 * meaning for comparison with older results: stage one ("bucket") has
 * prefetched the key's home entry since the entries became the hash table,
 * stage two ("entry") the first displaced flow of that home.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "qgate/clock.h"
#include "qgate/flow.h"

#define BURST  32
#define ROUNDS 7
/* Lookups per simulated millisecond when the clock moves: 10 Mpps. */
#define LOOKUPS_PER_MS 10000
#define N_MODES	       6

static uint32_t capacity_factor = 1;
static uint64_t lookups_done; /* the simulated clock: lookups_done / LOOKUPS_PER_MS ms */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* prefetch: 0 none, 1 stage one, 2 both stages; moving: the clock advances (LRU refresh). */
static double run(struct qg_flow_table *t, const struct qg_addr *keys, const uint32_t *order,
		  size_t n_lookups, int prefetch, int moving)
{
	uint32_t hashes[BURST];
	uint64_t found = 0, t0 = qg_clock_ns();
	uint32_t now = 1;

	for (size_t base = 0; base + BURST <= n_lookups; base += BURST) {
		const uint32_t *o = &order[base];

		if (moving) {
			lookups_done += BURST;
			now = (uint32_t)(lookups_done / LOOKUPS_PER_MS) + 1;
		}

		if (prefetch) {
			for (int i = 0; i < BURST; i++)
				hashes[i] = qg_flow_prefetch(t, 0, &keys[o[i]]);
			if (prefetch > 1)
				for (int i = 0; i < BURST; i++)
					qg_flow_prefetch_entry(t, hashes[i]);
			for (int i = 0; i < BURST; i++)
				found += qg_flow_lookup_hashed(t, 0, &keys[o[i]], hashes[i], now) !=
					 QG_FLOW_NONE;
		} else {
			for (int i = 0; i < BURST; i++)
				found += qg_flow_lookup(t, 0, &keys[o[i]], now) != QG_FLOW_NONE;
		}
	}
	if (found != n_lookups / BURST * BURST)
		fprintf(stderr, "flowbench: %llu of %zu keys found\n", (unsigned long long)found, n_lookups);
	return (double)(qg_clock_ns() - t0) / (double)(n_lookups / BURST * BURST);
}

/*
 * Across bursts: each burst's buckets are prefetched two bursts ahead and its
 * entries one ahead, instead of both within the burst. Equal to the in-burst
 * mode at 1M flows on this VM: the lookups are bound by how many misses the
 * core keeps in flight, not by waiting for each (docs/PERFORMANCE.md).
 */
static double run_pipelined(struct qg_flow_table *t, const struct qg_addr *keys, const uint32_t *order,
			    size_t n_lookups)
{
	uint32_t hashes[3][BURST];
	uint64_t found = 0, t0 = qg_clock_ns();
	size_t n_bursts = n_lookups / BURST;

	for (size_t b = 0; b < n_bursts + 2; b++) {
		if (b < n_bursts) {
			const uint32_t *o = &order[b * BURST];

			for (int i = 0; i < BURST; i++)
				hashes[b % 3][i] = qg_flow_prefetch(t, 0, &keys[o[i]]);
		}
		if (b >= 1 && b - 1 < n_bursts)
			for (int i = 0; i < BURST; i++)
				qg_flow_prefetch_entry(t, hashes[(b - 1) % 3][i]);
		if (b >= 2) {
			const uint32_t *o = &order[(b - 2) * BURST];

			for (int i = 0; i < BURST; i++)
				found += qg_flow_lookup_hashed(t, 0, &keys[o[i]], hashes[(b - 2) % 3][i],
							       1) != QG_FLOW_NONE;
		}
	}
	if (found != n_bursts * BURST)
		fprintf(stderr, "flowbench: %llu of %zu keys found\n", (unsigned long long)found, n_lookups);
	return (double)(qg_clock_ns() - t0) / (double)(n_lookups / BURST * BURST);
}

static int bench(uint32_t flows)
{
	/* Longer than the run: nothing expires (the simulated clock reaches ~15 s). */
	uint32_t timeout = 1000000;
	struct qg_flow_table_params p = { .capacity = flows * capacity_factor,
					  .n_services = 1,
					  .idle_timeout_ms = &timeout };
	size_t n_lookups = 4u << 20;
	/* Static clock, moving clock with exact LRU, moving clock with the grain: a table each (a
	 * static lookup at time 1 after the clock moved would find every flow idle). */
	struct qg_flow_table *ts = NULL, *t = NULL, *tg = NULL;
	struct qg_addr *keys = calloc(flows, sizeof(*keys));
	uint32_t *order = malloc(sizeof(*order) * n_lookups);
	double best[N_MODES];
	int rc = 1;

	for (int m = 0; m < N_MODES; m++)
		best[m] = 1e9;
	if (!keys || !order || qg_flow_table_create(&p, &ts) || qg_flow_table_create(&p, &t))
		goto err;
	p.lru_grain_ms = 1024;
	if (qg_flow_table_create(&p, &tg))
		goto err;
	for (uint32_t i = 0; i < flows; i++) {
		uint32_t idx, ip = (uint32_t)next_rand();

		keys[i].family = AF_INET;
		memcpy(keys[i].ip, &ip, 4);
		keys[i].port = (uint16_t)(i & 0xffff);
		memcpy(&keys[i].ip[4], &i, 4); /* keeps keys distinct; the table hashes all 16 bytes */
		if (qg_flow_insert(ts, 0, &keys[i], 1, &idx) || qg_flow_insert(t, 0, &keys[i], 1, &idx) ||
		    qg_flow_insert(tg, 0, &keys[i], 1, &idx)) {
			fprintf(stderr, "flowbench: insert failed at %u\n", i);
			goto out;
		}
	}
	for (size_t i = 0; i < n_lookups; i++)
		order[i] = (uint32_t)(next_rand() % flows);
	for (int r = 0; r < ROUNDS; r++)
		for (int m = 0; m < N_MODES; m++) {
			double ns = m < 3    ? run(ts, keys, order, n_lookups, m, 0)
				    : m == 5 ? run_pipelined(ts, keys, order, n_lookups)
					     : run(m == 3 ? t : tg, keys, order, n_lookups, 2, 1);

			if (ns < best[m])
				best[m] = ns;
		}
	printf("{\"flows\":%u,\"capacity\":%u,\"burst\":%d,\"ns_plain\":%.1f,\"ns_prefetch_bucket\":%.1f,"
	       "\"ns_prefetch_bucket_entry\":%.1f,\"ns_refresh_exact_lru\":%.1f,"
	       "\"ns_refresh_lru_grain_1024\":%.1f,\"ns_pipelined\":%.1f}\n",
	       flows, p.capacity, BURST, best[0], best[1], best[2], best[3], best[4], best[5]);
	rc = 0;
	goto out;
err:
	fprintf(stderr, "flowbench: cannot allocate %u flows\n", flows);
out:
	qg_flow_table_destroy(ts);
	qg_flow_table_destroy(t);
	qg_flow_table_destroy(tg);
	free(keys);
	free(order);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc > 1 && strcmp(argv[1], "--no-thp") == 0) {
		if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
			perror("flowbench: PR_SET_THP_DISABLE");
			return 1;
		}
		argv++;
		argc--;
	}
	if (argc > 2 && strcmp(argv[1], "--capacity-factor") == 0) {
		capacity_factor = (uint32_t)strtoul(argv[2], NULL, 10);
		if (capacity_factor < 1 || capacity_factor > 8) {
			fprintf(stderr, "flowbench: --capacity-factor wants 1..8\n");
			return 2;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc < 2) {
		rc |= bench(1000);
		rc |= bench(1u << 20);
		return rc;
	}
	for (int i = 1; i < argc; i++)
		rc |= bench((uint32_t)strtoul(argv[i], NULL, 10));
	return rc;
}
