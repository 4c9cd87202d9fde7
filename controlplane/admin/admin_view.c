/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The read-only admin commands: status, backends, components, events. They
 * read the dataplane's counters (relaxed loads, as the stats report does),
 * the registry and the recent-events ring, all from the control thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "qgate/clock.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/paths.h"
#include "qgate/registry.h"

#ifndef QGATE_VERSION
#define QGATE_VERSION "unknown"
#endif

const char *qg_admin_policy_name(enum qg_config_policy p)
{
	return p == QG_CONFIG_POLICY_WRR ? "wrr" : p == QG_CONFIG_POLICY_LEAST_CONN ? "least_conn" : "maglev";
}

int qg_admin_cmd_status(struct qg_adm_req *r)
{
	const struct qg_config *cfg = r->t->cfg;
	double up = (double)(qg_clock_ns() - r->t->start_ns) / 1e9;
	uint64_t flows = 0, drops = 0, errors = 0;
	struct qg_ctr_block c;
	char addr[QG_ADDR_STRLEN];

	qg_dataplane_counters(r->t->dp, &c);
	for (unsigned s = 0; s < cfg->n_services; s++)
		flows += qg_dataplane_flows_active(r->t->dp, s);
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		drops += qg_ctr_kind((enum qg_ctr_id)i) == QG_CTR_KIND_DROP ? c.v[i] : 0;
		errors += qg_ctr_kind((enum qg_ctr_id)i) == QG_CTR_KIND_ERROR ? c.v[i] : 0;
	}
	if (r->json) {
		qg_adm_printf(&r->body,
			      "{\"version\":\"%s\",\"uptime_s\":%.3f,\"io_backend\":\"%s\",\"workers\":%u,"
			      "\"flows_active\":%llu,\"drops\":%llu,\"errors\":%llu,\"services\":[",
			      QGATE_VERSION, up, qg_dataplane_io_name(r->t->dp),
			      qg_dataplane_workers(r->t->dp), (unsigned long long)flows,
			      (unsigned long long)drops, (unsigned long long)errors);
		for (unsigned s = 0; s < cfg->n_services; s++) {
			qg_adm_printf(&r->body, "%s{\"name\":", s ? "," : "");
			qg_adm_json_str(&r->body, cfg->services[s].name);
			qg_adm_printf(
				&r->body,
				",\"listen\":\"%s\",\"protocol\":\"%s\",\"policy\":\"%s\",\"backends\":%u,"
				"\"flows_active\":%llu}",
				qg_addr_format(&cfg->services[s].listen, addr, sizeof(addr)),
				cfg->services[s].protocol == QG_CONFIG_PROTO_QUIC ? "quic" : "udp",
				qg_admin_policy_name(cfg->services[s].policy), cfg->services[s].n_backends,
				(unsigned long long)qg_dataplane_flows_active(r->t->dp, s));
		}
		qg_adm_printf(&r->body, "],\"totals\":{");
		for (unsigned i = 0; i < QG_CTR__COUNT; i++)
			qg_adm_printf(&r->body, "%s\"%s\":%llu", i ? "," : "", qg_ctr_name((enum qg_ctr_id)i),
				      (unsigned long long)c.v[i]);
		qg_adm_printf(&r->body, "}}\n");
		return 0;
	}
	qg_adm_printf(
		&r->body,
		"qgate %s\nuptime: %.1f s\nio backend: %s\nworkers: %u\nservices: %u\nflows active: %llu\n"
		"flows created: %llu\n"
		"packets: from clients %llu, to backends %llu, from backends %llu, to clients %llu\n"
		"drops: %llu\nerrors: %llu\n",
		QGATE_VERSION, up, qg_dataplane_io_name(r->t->dp), qg_dataplane_workers(r->t->dp),
		cfg->n_services, (unsigned long long)flows, (unsigned long long)c.v[QG_CTR_FLOW_CREATED],
		(unsigned long long)c.v[QG_CTR_RX_CLIENT], (unsigned long long)c.v[QG_CTR_TX_BACKEND],
		(unsigned long long)c.v[QG_CTR_RX_BACKEND], (unsigned long long)c.v[QG_CTR_TX_CLIENT],
		(unsigned long long)drops, (unsigned long long)errors);
	for (unsigned s = 0; s < cfg->n_services; s++)
		qg_adm_printf(&r->body, "service %s %s %s %s: %u backend(s), %llu flow(s) active\n",
			      cfg->services[s].name,
			      qg_addr_format(&cfg->services[s].listen, addr, sizeof(addr)),
			      cfg->services[s].protocol == QG_CONFIG_PROTO_QUIC ? "quic" : "udp",
			      qg_admin_policy_name(cfg->services[s].policy), cfg->services[s].n_backends,
			      (unsigned long long)qg_dataplane_flows_active(r->t->dp, s));
	for (unsigned i = 0; i < QG_CTR__COUNT; i++) {
		int k = qg_ctr_kind((enum qg_ctr_id)i);

		if ((k == QG_CTR_KIND_DROP || k == QG_CTR_KIND_ERROR) && c.v[i])
			qg_adm_printf(&r->body, "  %s %s: %llu\n", k == QG_CTR_KIND_DROP ? "drop" : "error",
				      qg_ctr_name((enum qg_ctr_id)i), (unsigned long long)c.v[i]);
	}
	return 0;
}

/* A multi-path backend's paths: score, loss, RTT, health, and which one carries the traffic. */
static void backend_paths(struct qg_adm_req *r, const struct qg_config_backend *c,
			  const struct qg_paths_info *pi)
{
	char text[64];

	if (r->json)
		qg_adm_printf(&r->body, ",\"path_switches\":%llu,\"paths\":[",
			      (unsigned long long)pi->switches);
	for (unsigned i = 0; i < pi->n; i++) {
		const struct qg_transport_path *t = &pi->path[i].t;

		qg_config_path_format(&c->paths[pi->path[i].cfg_path], text, sizeof(text));
		if (r->json) {
			qg_adm_printf(&r->body, "%s{\"path\":", i ? "," : "");
			qg_adm_json_str(&r->body, text);
			qg_adm_printf(&r->body,
				      ",\"index\":%u,\"transport\":\"%s\",\"active\":%s,\"healthy\":%s,"
				      "\"score\":%d,\"loss_ppm\":%u,\"rtt_us\":%u,\"probes\":%llu,"
				      "\"failures\":%llu}",
				      pi->path[i].cfg_path, qg_transport_kind_name(t->kind),
				      i == pi->current ? "true" : "false", t->healthy ? "true" : "false",
				      t->score, t->loss_ppm, t->rtt_us, (unsigned long long)t->probes,
				      (unsigned long long)t->failures);
			continue;
		}
		qg_adm_printf(&r->body,
			      "%-16s   path %-32s %-8s score %5d loss %5.1f%% rtt %8.1f ms %-9s %s\n", "",
			      text, qg_transport_kind_name(t->kind), t->score, t->loss_ppm / 10000.0,
			      t->rtt_us / 1000.0, t->healthy ? "healthy" : "unhealthy",
			      i == pi->current ? "active" : "standby");
	}
	if (r->json)
		qg_adm_printf(&r->body, "]");
}

int qg_admin_cmd_backends(struct qg_adm_req *r)
{
	const struct qg_config *cfg = r->t->cfg;
	struct qg_backend_stats st;
	char addr[QG_ADDR_STRLEN];
	unsigned slot = 0;

	if (r->json)
		qg_adm_printf(&r->body, "{\"services\":[");
	else
		qg_adm_printf(&r->body, "%-16s %-24s %6s %-9s %-9s %-9s %8s %12s %12s\n", "SERVICE",
			      "BACKEND", "WEIGHT", "STATE", "HEALTH", "CIRCUIT", "FLOWS", "PKTS_TO",
			      "PKTS_FROM");
	for (unsigned s = 0; s < cfg->n_services; s++) {
		const struct qg_config_service *svc = &cfg->services[s];

		if (r->json) {
			qg_adm_printf(&r->body, "%s{\"name\":", s ? "," : "");
			qg_adm_json_str(&r->body, svc->name);
			qg_adm_printf(&r->body, ",\"listen\":\"%s\",\"policy\":\"%s\",\"backends\":[",
				      qg_addr_format(&svc->listen, addr, sizeof(addr)),
				      qg_admin_policy_name(svc->policy));
		}
		for (unsigned b = 0; b < svc->n_backends; b++, slot++) {
			uint32_t w = r->t->weights[slot];
			int drained = r->t->saved[slot] != QG_ADMIN_NOT_DRAINED;
			const char *state = drained ? "drained" : w ? "active" : "weight0";
			struct qg_health_info hi = { .up = 1 };
			const char *health = "-", *circuit = "closed";
			struct qg_paths_info pi;
			int has_paths = r->t->paths && !qg_paths_get_info(r->t->paths, s, b, &pi);

			/* Without a checker (tests, a stopped part) nothing is known: shown as "-". */
			if (r->t->health && !qg_health_backend_info(r->t->health, slot, &hi)) {
				health = qg_health_state_name(hi.state);
				circuit = qg_breaker_state_name(hi.circuit);
				if (!hi.up && !drained && w)
					state = "down";
			}

			if (qg_dataplane_backend_stats(r->t->dp, s, b, &st))
				memset(&st, 0, sizeof(st));
			qg_addr_format(&svc->backends[b].addr, addr, sizeof(addr));
			if (!r->json) {
				qg_adm_printf(&r->body,
					      "%-16s %-24s %6u %-9s %-9s %-9s %8llu %12llu %12llu\n",
					      svc->name, addr, w, state, health, circuit,
					      (unsigned long long)st.flows_active,
					      (unsigned long long)st.tx_pkts, (unsigned long long)st.rx_pkts);
				if (has_paths)
					backend_paths(r, &svc->backends[b], &pi);
				continue;
			}
			qg_adm_printf(&r->body,
				      "%s{\"address\":\"%s\",\"weight\":%u,\"state\":\"%s\",\"drained\":%s,",
				      b ? "," : "", addr, w, state, drained ? "true" : "false");
			if (drained)
				qg_adm_printf(&r->body, "\"weight_before_drain\":%u,", r->t->saved[slot]);
			qg_adm_printf(
				&r->body, "\"up\":%s,\"health\":\"%s\",\"circuit\":\"%s\",\"refused\":%llu,",
				hi.up ? "true" : "false", health, circuit, (unsigned long long)st.refused);
			qg_adm_printf(&r->body,
				      "\"flows_active\":%llu,\"flows_created\":%llu,\"packets_to\":%llu,"
				      "\"packets_from\":%llu,\"bytes_to\":%llu,\"bytes_from\":%llu",
				      (unsigned long long)st.flows_active,
				      (unsigned long long)st.flows_created, (unsigned long long)st.tx_pkts,
				      (unsigned long long)st.rx_pkts, (unsigned long long)st.tx_bytes,
				      (unsigned long long)st.rx_bytes);
			if (has_paths)
				backend_paths(r, &svc->backends[b], &pi);
			qg_adm_printf(&r->body, "}");
		}
		if (r->json)
			qg_adm_printf(&r->body, "]}");
	}
	if (r->json)
		qg_adm_printf(&r->body, "]}\n");
	return 0;
}

int qg_admin_cmd_components(struct qg_adm_req *r)
{
	unsigned n = qg_registry_count(r->t->reg);
	struct qg_part_info info;

	if (r->json)
		qg_adm_printf(&r->body, "{\"components\":[");
	else
		qg_adm_printf(&r->body, "%-12s %-9s %10s %10s  %s\n", "COMPONENT", "STATE", "SINCE_S",
			      "START_MS", "DEPENDS ON");
	for (unsigned i = 0; i < n; i++) {
		uint64_t since = i < QG_ADMIN_PARTS_MAX ? r->t->part_since_ns[i] : 0;
		double since_s = since ? (double)(since - r->t->start_ns) / 1e9 : -1;

		if (qg_registry_info(r->t->reg, i, &info))
			continue;
		if (r->json) {
			qg_adm_printf(&r->body, "%s{\"name\":", i ? "," : "");
			qg_adm_json_str(&r->body, info.name);
			qg_adm_printf(&r->body, ",\"state\":\"%s\",\"depends_on\":[",
				      qg_registry_state_name(info.state));
			for (unsigned d = 0; d < info.n_deps; d++) {
				qg_adm_printf(&r->body, "%s", d ? "," : "");
				qg_adm_json_str(&r->body, info.deps[d]);
			}
			qg_adm_printf(&r->body, "],\"start_rank\":%d,\"start_ms\":%.3f,\"running_since_s\":",
				      info.start_rank, (double)info.start_ns / 1e6);
			if (since)
				qg_adm_printf(&r->body, "%.3f", since_s);
			else
				qg_adm_printf(&r->body, "null");
			qg_adm_printf(&r->body, ",\"last_error\":%d}", info.last_error);
			continue;
		}
		qg_adm_printf(&r->body, "%-12s %-9s %10.3f %10.3f  ", info.name,
			      qg_registry_state_name(info.state), since_s, (double)info.start_ns / 1e6);
		for (unsigned d = 0; d < info.n_deps; d++)
			qg_adm_printf(&r->body, "%s%s", d ? "," : "", info.deps[d]);
		qg_adm_printf(&r->body, "%s\n", info.n_deps ? "" : "-");
	}
	if (r->json)
		qg_adm_printf(&r->body, "]}\n");
	return 0;
}

static void event_json(struct qg_adm_buf *b, const struct qg_event *ev, double at)
{
	qg_adm_printf(b, "{\"seq\":%llu,\"at_s\":%.3f,\"type\":\"%s\",\"severity\":\"%s\",\"source\":%u",
		      (unsigned long long)ev->seq, at, qg_event_type_name((enum qg_event_type)ev->type),
		      qg_event_severity_name((enum qg_event_severity)ev->severity), ev->source);
	qg_adm_printf(b, ",\"service\":");
	qg_adm_json_str(b, ev->service_name);
	qg_adm_printf(b, ",\"backend\":");
	qg_adm_json_str(b, ev->backend_name);
	qg_adm_printf(b, ",\"component\":");
	qg_adm_json_str(b, ev->component);
	qg_adm_printf(b, ",\"text\":");
	qg_adm_json_str(b, ev->text);
	qg_adm_printf(b, ",\"args\":[%lld,%lld,%lld,%lld]}", (long long)ev->arg[0], (long long)ev->arg[1],
		      (long long)ev->arg[2], (long long)ev->arg[3]);
}

int qg_admin_cmd_events(struct qg_adm_req *r)
{
	struct qg_event *evs = calloc(QG_EVENTS_RECENT, sizeof(*evs));
	unsigned n;

	if (!evs)
		return -ENOMEM;
	n = qg_events_recent(r->t->bus, evs, QG_EVENTS_RECENT);
	if (r->json)
		qg_adm_printf(&r->body, "{\"events\":[");
	for (unsigned i = 0; i < n; i++) {
		const struct qg_event *ev = &evs[i];
		double at = ev->ts_ns >= r->t->start_ns ? (double)(ev->ts_ns - r->t->start_ns) / 1e9 : 0;

		if (r->json) {
			qg_adm_printf(&r->body, "%s", i ? "," : "");
			event_json(&r->body, ev, at);
			continue;
		}
		qg_adm_printf(&r->body, "%6llu %9.3fs %-8s %-16s", (unsigned long long)ev->seq, at,
			      qg_event_severity_name((enum qg_event_severity)ev->severity),
			      qg_event_type_name((enum qg_event_type)ev->type));
		if (ev->component[0])
			qg_adm_printf(&r->body, " component=%s", ev->component);
		if (ev->service_name[0])
			qg_adm_printf(&r->body, " service=%s", ev->service_name);
		if (ev->backend_name[0])
			qg_adm_printf(&r->body, " backend=%s", ev->backend_name);
		qg_adm_printf(&r->body, "%s%s\n", ev->text[0] ? " " : "", ev->text);
	}
	if (r->json)
		qg_adm_printf(&r->body, "]}\n");
	free(evs);
	return 0;
}
