/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where the control thread runs. Workers pin themselves to their cores; the
 * control thread (health probes, metrics scrapes, reloads, the admin socket)
 * and the threads it starts later (the bridge) would otherwise float over
 * every allowed CPU, worker cores included, and each probe or scrape would
 * be time taken from a worker. So before the parts start, the control
 * thread is narrowed to the allowed CPUs that run no worker, when there are
 * any: the same separation as DPDK's main lcore and service cores. When
 * every allowed CPU runs a worker the thread stays where it is, and says so.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "qgate/log.h"

static void cpus_text(const cpu_set_t *set, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int cpu = 0; cpu < CPU_SETSIZE && off + 12 < size; cpu++) {
		int last = cpu;

		if (!CPU_ISSET(cpu, set))
			continue;
		while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
			last++;
		off += (size_t)snprintf(buf + off, size - off, last > cpu ? "%s%d-%d" : "%s%d",
					off ? "," : "", cpu, last);
		cpu = last;
	}
}

int qg_daemon_place_control(const struct qg_config *cfg)
{
	cpu_set_t allowed, rest;
	char text[128];
	int rc;

	/* rte_eal_init() places the main thread on DPDK's main lcore itself. */
	if (cfg->dataplane.io == QG_CONFIG_IO_DPDK)
		return 0;
	rc = pthread_getaffinity_np(pthread_self(), sizeof(allowed), &allowed);
	if (rc)
		return -rc;
	rest = allowed;
	for (uint32_t i = 0; i < cfg->dataplane.n_cores; i++)
		if (cfg->dataplane.cores[i] < CPU_SETSIZE)
			CPU_CLR(cfg->dataplane.cores[i], &rest);
	if (CPU_EQUAL(&rest, &allowed))
		return 0; /* no worker core among the allowed ones: nothing shared */
	if (CPU_COUNT(&rest) == 0) {
		QG_LOG_INFO("control thread shares the worker cores (no other CPU allowed): "
			    "health probes, scrapes and reloads take time from the workers");
		return 0;
	}
	rc = pthread_setaffinity_np(pthread_self(), sizeof(rest), &rest);
	if (rc)
		return -rc;
	cpus_text(&rest, text, sizeof(text));
	QG_LOG_INFO("control thread on CPU(s) %s, off the worker cores", text);
	return 0;
}
