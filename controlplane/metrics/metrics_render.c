/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What /metrics says: dataplane counters (every drop and error reason, from
 * the counters X-macro), per-service and per-backend figures, weights,
 * components and the event bus. Every family is always present, zeros
 * included, so a query never depends on whether something happened yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/config.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/io.h"
#include "qgate/paths.h"
#include "qgate/metrics.h"
#include "qgate/protect.h"
#include "qgate/registry.h"

/* HELP of drops/errors: the family's meaning, then each reason with its X-macro description. */
static void family_by_kind(struct qg_metrics_text *t, const char *name, const char *what, int kind)
{
	size_t len = strlen(what) + 2, off;
	unsigned i, n = 0;
	char *help;

	for (i = 0; i < QG_CTR__COUNT; i++)
		if (qg_ctr_kind((enum qg_ctr_id)i) == kind)
			len += 4 + strlen(qg_ctr_name((enum qg_ctr_id)i)) +
			       strlen(qg_ctr_desc((enum qg_ctr_id)i));
	help = malloc(len + 1);
	if (!help) {
		t->err = -ENOMEM;
		return;
	}
	off = (size_t)snprintf(help, len + 1, "%s", what);
	for (i = 0; i < QG_CTR__COUNT; i++)
		if (qg_ctr_kind((enum qg_ctr_id)i) == kind)
			off += (size_t)snprintf(help + off, len + 1 - off, "%s%s: %s", n++ ? "; " : " (",
						qg_ctr_name((enum qg_ctr_id)i),
						qg_ctr_desc((enum qg_ctr_id)i));
	if (n)
		snprintf(help + off, len + 1 - off, ")");
	qg_metrics_family(t, name, "counter", help);
	free(help);
}

static void counters_by_kind(struct qg_metrics_text *t, const struct qg_ctr_block *c, const char *name,
			     const char *what, int kind)
{
	family_by_kind(t, name, what, kind);
	for (unsigned i = 0; i < QG_CTR__COUNT; i++)
		if (qg_ctr_kind((enum qg_ctr_id)i) == kind)
			qg_metrics_sample(t, name, c->v[i], "reason", qg_ctr_name((enum qg_ctr_id)i), NULL);
}

static uint32_t weight_of(const struct qg_metrics_source *src, unsigned slot, unsigned s, unsigned b)
{
	return src->weights ? src->weights[slot] : src->cfg->services[s].backends[b].weight;
}

/* Per service: sums of its backends' figures (the relay counts per backend, not per service). */
static void services(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	const struct qg_config *cfg = src->cfg;
	struct qg_backend_stats st;
	char addr[QG_ADDR_STRLEN];
	unsigned slot;

	qg_metrics_family(t, "qgate_rx_packets_total", "counter",
			  "Datagrams received from the service's clients and relayed to its backends");
	for (unsigned s = 0; s < cfg->n_services; s++) {
		uint64_t sum = 0;

		for (unsigned b = 0; b < cfg->services[s].n_backends; b++)
			if (!qg_dataplane_backend_stats(src->dp, s, b, &st))
				sum += st.tx_pkts;
		qg_metrics_sample(t, "qgate_rx_packets_total", sum, "service", cfg->services[s].name, NULL);
	}
	qg_metrics_family(t, "qgate_tx_packets_total", "counter",
			  "Datagrams from the service's backends sent to its clients");
	for (unsigned s = 0; s < cfg->n_services; s++) {
		uint64_t sum = 0;

		for (unsigned b = 0; b < cfg->services[s].n_backends; b++)
			if (!qg_dataplane_backend_stats(src->dp, s, b, &st))
				sum += st.rx_pkts;
		qg_metrics_sample(t, "qgate_tx_packets_total", sum, "service", cfg->services[s].name, NULL);
	}
	qg_metrics_family(t, "qgate_flows_active", "gauge",
			  "Flows of the service alive now, over all workers");
	for (unsigned s = 0; s < cfg->n_services; s++)
		qg_metrics_sample(t, "qgate_flows_active", qg_dataplane_flows_active(src->dp, s), "service",
				  cfg->services[s].name, NULL);

	qg_metrics_family(t, "qgate_backend_flows_active", "gauge",
			  "Flows assigned to the backend alive now");
	slot = 0;
	for (unsigned s = 0; s < cfg->n_services; s++) {
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++, slot++) {
			if (qg_dataplane_backend_stats(src->dp, s, b, &st))
				memset(&st, 0, sizeof(st));
			qg_metrics_sample(
				t, "qgate_backend_flows_active", st.flows_active, "service",
				cfg->services[s].name, "backend",
				qg_addr_format(&cfg->services[s].backends[b].addr, addr, sizeof(addr)), NULL);
		}
	}
	qg_metrics_family(t, "qgate_backend_packets_total", "counter",
			  "Datagrams relayed to (direction=to_backend) and from (direction=from_backend) the "
			  "backend");
	for (unsigned s = 0; s < cfg->n_services; s++) {
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++) {
			if (qg_dataplane_backend_stats(src->dp, s, b, &st))
				memset(&st, 0, sizeof(st));
			qg_addr_format(&cfg->services[s].backends[b].addr, addr, sizeof(addr));
			qg_metrics_sample(t, "qgate_backend_packets_total", st.tx_pkts, "service",
					  cfg->services[s].name, "backend", addr, "direction", "to_backend",
					  NULL);
			qg_metrics_sample(t, "qgate_backend_packets_total", st.rx_pkts, "service",
					  cfg->services[s].name, "backend", addr, "direction", "from_backend",
					  NULL);
		}
	}
	qg_metrics_family(t, "qgate_backend_weight", "gauge",
			  "Current selection weight of the backend (0 = drained: no new flows)");
	slot = 0;
	for (unsigned s = 0; s < cfg->n_services; s++)
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++, slot++)
			qg_metrics_sample(
				t, "qgate_backend_weight", weight_of(src, slot, s, b), "service",
				cfg->services[s].name, "backend",
				qg_addr_format(&cfg->services[s].backends[b].addr, addr, sizeof(addr)), NULL);
}

/* Health: without a checker every backend is up and its circuit closed, as the dataplane sees it. */
static void health(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	const struct qg_config *cfg = src->cfg;
	struct qg_health_info hi;
	char addr[QG_ADDR_STRLEN];
	unsigned slot;

	qg_metrics_family(
		t, "qgate_backend_up", "gauge",
		"1 when health checks and the circuit breaker let the backend take new flows, else 0");
	slot = 0;
	for (unsigned s = 0; s < cfg->n_services; s++)
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++, slot++)
			qg_metrics_sample(
				t, "qgate_backend_up",
				src->health && !qg_health_backend_info(src->health, slot, &hi)
					? (uint64_t)hi.up
					: 1,
				"service", cfg->services[s].name, "backend",
				qg_addr_format(&cfg->services[s].backends[b].addr, addr, sizeof(addr)), NULL);
	qg_metrics_family(t, "qgate_circuit_state", "gauge",
			  "Circuit breaker of the backend: 0 closed, 1 open, 2 half-open");
	slot = 0;
	for (unsigned s = 0; s < cfg->n_services; s++)
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++, slot++)
			qg_metrics_sample(
				t, "qgate_circuit_state",
				src->health && !qg_health_backend_info(src->health, slot, &hi)
					? (uint64_t)hi.circuit
					: 0,
				"service", cfg->services[s].name, "backend",
				qg_addr_format(&cfg->services[s].backends[b].addr, addr, sizeof(addr)), NULL);
}

/* Multi-path backends: each path's score and which one carries the traffic, and the switches. */
static void paths(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	static const char *const fam[][3] = {
		{ "qgate_backend_path_score", "gauge",
		  "Score of a multi-path backend's path: base by transport minus loss and RTT of its "
		  "probes" },
		{ "qgate_backend_path_active", "gauge", "1 for the path the backend's traffic uses, else 0" },
		{ "qgate_backend_path_healthy", "gauge",
		  "1 while the path's probes pass (rise/fall), else 0" },
		{ "qgate_backend_path_switches_total", "counter",
		  "Times the backend's traffic switched paths" },
	};
	const struct qg_config *cfg = src->cfg;
	char addr[QG_ADDR_STRLEN], path[64];
	struct qg_paths_info pi;

	if (!src->paths)
		return;
	for (unsigned f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		qg_metrics_family(t, fam[f][0], fam[f][1], fam[f][2]);
		for (unsigned s = 0; s < cfg->n_services; s++) {
			for (unsigned b = 0; b < cfg->services[s].n_backends; b++) {
				const struct qg_config_backend *c = &cfg->services[s].backends[b];

				if (qg_paths_get_info(src->paths, s, b, &pi))
					continue;
				qg_addr_format(&c->addr, addr, sizeof(addr));
				if (f == 3) {
					qg_metrics_sample(t, fam[f][0], pi.switches, "service",
							  cfg->services[s].name, "backend", addr, NULL);
					continue;
				}
				for (unsigned i = 0; i < pi.n; i++) {
					const struct qg_transport_path *tp = &pi.path[i].t;

					qg_config_path_format(&c->paths[pi.path[i].cfg_path], path,
							      sizeof(path));
					qg_metrics_sample_signed(t, fam[f][0],
								 f == 0	  ? tp->score
								 : f == 1 ? i == pi.current
									  : tp->healthy,
								 "service", cfg->services[s].name, "backend",
								 addr, "path", path, NULL);
				}
			}
		}
	}
}

/* The ports' own counts (DPDK): what the NIC took in and sent, and what it dropped before any worker saw
 * it. The families are there with no series when the backend drives no ports. */
static void ports(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	struct qg_io_port_stats ps[QG_CONFIG_DPDK_MAX_PORTS];
	unsigned n = 0;

	while (n < QG_CONFIG_DPDK_MAX_PORTS && qg_dataplane_port_stats(src->dp, n, &ps[n]) == 0)
		n++;
	qg_metrics_family(t, "qgate_port_packets_total", "counter",
			  "Frames a DPDK port received (direction rx) or sent (tx), by the port's own count");
	for (unsigned i = 0; i < n; i++) {
		qg_metrics_sample(t, "qgate_port_packets_total", ps[i].rx_packets, "port", ps[i].name,
				  "direction", "rx", NULL);
		qg_metrics_sample(t, "qgate_port_packets_total", ps[i].tx_packets, "port", ps[i].name,
				  "direction", "tx", NULL);
	}
	qg_metrics_family(t, "qgate_port_bytes_total", "counter", "Bytes of those frames");
	for (unsigned i = 0; i < n; i++) {
		qg_metrics_sample(t, "qgate_port_bytes_total", ps[i].rx_bytes, "port", ps[i].name,
				  "direction", "rx", NULL);
		qg_metrics_sample(t, "qgate_port_bytes_total", ps[i].tx_bytes, "port", ps[i].name,
				  "direction", "tx", NULL);
	}
	qg_metrics_family(
		t, "qgate_port_drops_total", "counter",
		"Frames a DPDK port dropped, by reason (rx_missed: its RX queues were full, the workers "
		"fell behind; rx_nombuf: no mbuf free; rx_errors, tx_errors: the port's own errors)");
	for (unsigned i = 0; i < n; i++) {
		qg_metrics_sample(t, "qgate_port_drops_total", ps[i].rx_missed, "port", ps[i].name, "reason",
				  "rx_missed", NULL);
		qg_metrics_sample(t, "qgate_port_drops_total", ps[i].rx_nombuf, "port", ps[i].name, "reason",
				  "rx_nombuf", NULL);
		qg_metrics_sample(t, "qgate_port_drops_total", ps[i].rx_errors, "port", ps[i].name, "reason",
				  "rx_errors", NULL);
		qg_metrics_sample(t, "qgate_port_drops_total", ps[i].tx_errors, "port", ps[i].name, "reason",
				  "tx_errors", NULL);
	}
}

static void dataplane(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	struct qg_ctr_block c;

	qg_dataplane_counters(src->dp, &c);
	qg_metrics_family(t, "qgate_workers", "gauge", "Dataplane worker threads");
	qg_metrics_sample(t, "qgate_workers", qg_dataplane_workers(src->dp), NULL);
	services(t, src);
	health(t, src);
	paths(t, src);
	ports(t, src);
	counters_by_kind(t, &c, "qgate_drops_total", "Datagrams dropped, by reason", QG_CTR_KIND_DROP);
	counters_by_kind(t, &c, "qgate_errors_total", "I/O errors, by reason", QG_CTR_KIND_ERROR);
	qg_metrics_family(t, "qgate_flows_created_total", "counter", qg_ctr_desc(QG_CTR_FLOW_CREATED));
	qg_metrics_sample(t, "qgate_flows_created_total", c.v[QG_CTR_FLOW_CREATED], NULL);
	qg_metrics_family(t, "qgate_flows_expired_total", "counter", qg_ctr_desc(QG_CTR_FLOW_EXPIRED));
	qg_metrics_sample(t, "qgate_flows_expired_total", c.v[QG_CTR_FLOW_EXPIRED], NULL);
	qg_metrics_family(t, "qgate_flows_evicted_total", "counter", qg_ctr_desc(QG_CTR_FLOW_EVICTED));
	qg_metrics_sample(t, "qgate_flows_evicted_total", c.v[QG_CTR_FLOW_EVICTED], NULL);
}

/* Degradation, anomalies and the telemetry rings: the protection path's state. */
static void protection(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	struct qg_anomaly_registry *reg = src->protect ? qg_protect_anomalies(src->protect) : NULL;
	struct qg_ring_stats rs;
	struct qg_protect_info in;
	unsigned n = src->dp ? qg_dataplane_workers(src->dp) : 0;
	char w[16];

	if (src->protect)
		qg_protect_get_info(src->protect, &in);
	qg_metrics_family(t, "qgate_degradation_level", "gauge",
			  "Graceful-degradation level applied: 0 normal, 1 protect, 2 shed, 3 essential");
	qg_metrics_sample(t, "qgate_degradation_level", src->protect ? (uint64_t)in.level : 0, NULL);
	qg_metrics_family(t, "qgate_degradation_level_changes_total", "counter",
			  "Times the applied degradation level changed");
	qg_metrics_sample(t, "qgate_degradation_level_changes_total", src->protect ? in.changes : 0, NULL);
	qg_metrics_family(t, "qgate_anomalies_total", "counter",
			  "Samples the anomaly detector flagged (warning or critical), by series");
	for (uint32_t i = 0; reg && i < qg_anomaly_series_count(reg); i++) {
		const struct qg_anomaly_series *s = qg_anomaly_series_at(reg, i);

		qg_metrics_sample(t, "qgate_anomalies_total", s->anomalies, "series", s->name, NULL);
	}
	qg_metrics_family(t, "qgate_ring_drops_total", "counter",
			  "Records a worker dropped because its ring toward the control thread was full");
	for (unsigned i = 0; i < n; i++)
		if (!qg_dataplane_ring_stats(src->dp, i, &rs)) {
			snprintf(w, sizeof(w), "%u", i);
			qg_metrics_sample(t, "qgate_ring_drops_total", rs.dropped, "ring", "telemetry",
					  "worker", w, NULL);
		}
	qg_metrics_family(t, "qgate_ring_occupancy", "gauge",
			  "Records waiting in a worker's ring for the control thread");
	for (unsigned i = 0; i < n; i++)
		if (!qg_dataplane_ring_stats(src->dp, i, &rs)) {
			snprintf(w, sizeof(w), "%u", i);
			qg_metrics_sample(t, "qgate_ring_occupancy", rs.occupancy, "ring", "telemetry",
					  "worker", w, NULL);
		}
	qg_metrics_family(t, "qgate_ring_capacity", "gauge", "Records a worker's ring holds");
	for (unsigned i = 0; i < n; i++)
		if (!qg_dataplane_ring_stats(src->dp, i, &rs)) {
			snprintf(w, sizeof(w), "%u", i);
			qg_metrics_sample(t, "qgate_ring_capacity", rs.capacity, "ring", "telemetry",
					  "worker", w, NULL);
		}
}

static void control(struct qg_metrics_text *t, const struct qg_metrics_source *src)
{
	struct qg_event_bus_stats bs;
	struct qg_part_info info;

	if (src->bus) {
		qg_events_stats(src->bus, &bs);
		qg_metrics_family(t, "qgate_events_published_total", "counter",
				  "Events published on the control plane's bus");
		qg_metrics_sample(t, "qgate_events_published_total", bs.published, NULL);
		qg_metrics_family(t, "qgate_events_dropped_total", "counter",
				  "Events a subscriber lost because its queue was full");
		qg_metrics_sample(t, "qgate_events_dropped_total", bs.dropped, NULL);
	}
	if (src->reg) {
		qg_metrics_family(t, "qgate_component_up", "gauge",
				  "1 when the control-plane component is running, else 0");
		for (unsigned i = 0; i < qg_registry_count(src->reg); i++)
			if (!qg_registry_info(src->reg, i, &info))
				qg_metrics_sample(t, "qgate_component_up", info.state == QG_REGISTRY_RUNNING,
						  "component", info.name, NULL);
	}
	qg_metrics_family(t, "qgate_uptime_seconds", "gauge", "Seconds since qgate started");
	qg_metrics_sample(t, "qgate_uptime_seconds", (qg_clock_ns() - src->start_ns) / 1000000000ULL, NULL);
}

int qg_metrics_render(const struct qg_metrics_source *src, struct qg_metrics_text *t)
{
	if (src->dp && src->cfg)
		dataplane(t, src);
	protection(t, src);
	control(t, src);
	/* An empty exposition is still a valid answer; make sure there is a buffer to send. */
	if (!t->err && !t->buf)
		qg_metrics_family(t, "qgate_up", "gauge", "1: qgate answers");
	return t->err;
}
