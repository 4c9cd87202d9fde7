/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/io.h"
#include "stats.h"

struct qg_stats_report {
	const struct qg_config *cfg;
	uint64_t last_ns;
	uint64_t start_ns;
	unsigned n_slots;
	struct qg_backend_stats *prev; /* per backend, services in order */
};

int qg_stats_report_create(const struct qg_config *cfg, struct qg_stats_report **out)
{
	struct qg_stats_report *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->cfg = cfg;
	for (uint32_t s = 0; s < cfg->n_services; s++)
		r->n_slots += cfg->services[s].n_backends;
	r->prev = calloc(r->n_slots + 1, sizeof(*r->prev));
	if (!r->prev) {
		free(r);
		return -ENOMEM;
	}
	r->start_ns = r->last_ns = qg_clock_ns();
	*out = r;
	return 0;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 ? (double)(now - before) / secs : 0.0;
}

void qg_stats_report_print(struct qg_stats_report *r, const struct qg_dataplane *dp, FILE *f)
{
	uint64_t now = qg_clock_ns();
	double secs = (double)(now - r->last_ns) / 1e9;
	struct qg_ctr_block c;
	unsigned slot = 0;

	qg_dataplane_counters(dp, &c);
	fprintf(f, "--- t=%.0fs  rx %llu  tx %llu  flows created %llu expired %llu evicted %llu\n",
		(double)(now - r->start_ns) / 1e9,
		(unsigned long long)(c.v[QG_CTR_RX_CLIENT] + c.v[QG_CTR_RX_BACKEND]),
		(unsigned long long)(c.v[QG_CTR_TX_CLIENT] + c.v[QG_CTR_TX_BACKEND]),
		(unsigned long long)c.v[QG_CTR_FLOW_CREATED], (unsigned long long)c.v[QG_CTR_FLOW_EXPIRED],
		(unsigned long long)c.v[QG_CTR_FLOW_EVICTED]);
	for (uint32_t s = 0; s < r->cfg->n_services; s++) {
		const struct qg_config_service *svc = &r->cfg->services[s];
		char addr[QG_ADDR_STRLEN];

		fprintf(f, "service %-12s %s  active flows %llu\n", svc->name,
			qg_addr_format(&svc->listen, addr, sizeof(addr)),
			(unsigned long long)qg_dataplane_flows_active(dp, s));
		for (uint32_t b = 0; b < svc->n_backends; b++, slot++) {
			struct qg_backend_stats st;

			qg_dataplane_backend_stats(dp, s, b, &st);
			fprintf(f,
				"  backend %-24s flows %6llu  to %9.0f pkt/s  from %9.0f pkt/s  total to "
				"%llu from %llu\n",
				qg_addr_format(&svc->backends[b].addr, addr, sizeof(addr)),
				(unsigned long long)st.flows_active,
				rate(st.tx_pkts, r->prev[slot].tx_pkts, secs),
				rate(st.rx_pkts, r->prev[slot].rx_pkts, secs), (unsigned long long)st.tx_pkts,
				(unsigned long long)st.rx_pkts);
			r->prev[slot] = st;
		}
	}
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		int k = qg_ctr_kind((enum qg_ctr_id)i);

		if ((k == QG_CTR_KIND_DROP || k == QG_CTR_KIND_ERROR) && c.v[i])
			fprintf(f, "  %s %s: %llu\n", k == QG_CTR_KIND_DROP ? "drop" : "error",
				qg_ctr_name((enum qg_ctr_id)i), (unsigned long long)c.v[i]);
	}
	fflush(f);
	r->last_ns = now;
}

void qg_stats_report_totals(const struct qg_dataplane *dp, FILE *f)
{
	struct qg_io_port_stats ps;
	struct qg_ctr_block c;

	qg_dataplane_counters(dp, &c);
	for (unsigned i = 0; i < QG_CTR__COUNT; i++)
		if (c.v[i])
			fprintf(f, "qgate: total %s = %llu\n", qg_ctr_name((enum qg_ctr_id)i),
				(unsigned long long)c.v[i]);
	/* The ports' own count (DPDK): frames the NIC dropped before a worker saw them show only here. */
	for (unsigned i = 0; qg_dataplane_port_stats(dp, i, &ps) == 0; i++) {
		static const char *const names[] = { "rx_packets", "tx_packets", "rx_missed",
						     "rx_nombuf",  "rx_errors",	 "tx_errors" };
		const uint64_t v[] = { ps.rx_packets, ps.tx_packets, ps.rx_missed,
				       ps.rx_nombuf,  ps.rx_errors,  ps.tx_errors };

		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			fprintf(f, "qgate: total port %s %s = %llu\n", ps.name, names[k],
				(unsigned long long)v[k]);
	}
	fflush(f);
}

void qg_stats_report_destroy(struct qg_stats_report *r)
{
	if (!r)
		return;
	free(r->prev);
	free(r);
}
