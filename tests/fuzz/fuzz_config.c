/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the YAML configuration loader
 * (qg_config_load_string, controlplane/config): any bytes as a file.
 *
 *  - The answer is a configuration with no error, or an error code with at
 *    least one error and no configuration: never both, never neither.
 *  - Every error has a non-empty message and a place (0:0 or a 1-based
 *    line:column), and the list is in document order as documented.
 *  - A configuration that loads keeps the limits docs/CONFIG.md promises
 *    (counts, ranges, unique names, listen addresses and backends, QUIC-LB
 *    server IDs): the validator may never hand out something the dataplane
 *    would trip on.
 *  - ASan + LeakSanitizer: no read outside the text (it is not
 *    NUL-terminated: libFuzzer's buffer is exactly the input), nothing
 *    leaked on any path.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "qgate/config.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	return 0;
}

static int str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static int is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	for (uint32_t d = 2; d <= n / d; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

static void check_errors(const struct qg_config_errors *errs)
{
	CHECK(str_ok(errs->file, sizeof(errs->file)) && !strcmp(errs->file, "fuzz.yaml"));
	CHECK(errs->count >= 1 && errs->count <= QG_CONFIG_MAX_ERRORS);
	CHECK(errs->dropped == 0 || errs->count == QG_CONFIG_MAX_ERRORS);
	for (unsigned i = 0; i < errs->count; i++) {
		const struct qg_config_error *e = &errs->items[i];

		CHECK(str_ok(e->msg, sizeof(e->msg)));
		CHECK(e->msg[0] != '\0');
		CHECK(e->line >= 0 && e->column >= 0);
		CHECK((e->line == 0) == (e->column == 0));
		if (i)
			CHECK(e[-1].line < e->line || (e[-1].line == e->line && e[-1].column <= e->column));
	}
}

static void check_addr(const struct qg_addr *a)
{
	CHECK(a->family == AF_INET || a->family == AF_INET6);
	CHECK(a->pad == 0);
}

static void check_service(const struct qg_config *cfg, uint32_t si)
{
	const struct qg_config_service *s = &cfg->services[si];
	const struct qg_config_quic *q = &s->quic;

	CHECK(str_ok(s->name, sizeof(s->name)) && s->name[0]);
	for (const char *p = s->name; *p; p++)
		CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-');
	check_addr(&s->listen);
	CHECK(s->protocol <= QG_CONFIG_PROTO_QUIC);
	CHECK(s->policy <= QG_CONFIG_POLICY_LEAST_CONN);
	CHECK(s->hash <= QG_CONFIG_HASH_SRC_IP_PORT);
	CHECK(s->policy == QG_CONFIG_POLICY_MAGLEV || s->hash == QG_CONFIG_HASH_FIVE_TUPLE);
	CHECK(is_prime(s->maglev_table_size));
	CHECK(s->idle_timeout_ms >= 1);
	CHECK(s->on_backend_down <= QG_CONFIG_ON_DOWN_KEEP);
	CHECK(s->n_backends >= 1 && s->n_backends <= QG_CONFIG_MAX_BACKENDS && s->backends);
	if (s->policy == QG_CONFIG_POLICY_MAGLEV)
		CHECK(s->n_backends <= s->maglev_table_size);

	/* QUIC: nothing set on a udp service; lb entries consistent; server IDs as the first lb says. */
	CHECK(q->n_lb <= QG_CONFIG_QUIC_MAX_LB);
	CHECK(q->n_versions <= QG_CONFIG_QUIC_MAX_VERSIONS);
	CHECK(q->short_dcid_len <= QG_CONFIG_QUIC_CID_MAX);
	if (s->protocol == QG_CONFIG_PROTO_UDP)
		CHECK(q->n_lb == 0);
	for (uint32_t i = 0; i < q->n_lb; i++) {
		const struct qg_config_quic_lb *lb = &q->lb[i];

		CHECK(lb->config_id <= 6);
		CHECK(lb->server_id_len >= 1 && lb->server_id_len <= QG_CONFIG_QUIC_SID_MAX);
		CHECK(lb->server_id_len == q->lb[0].server_id_len);
		CHECK(lb->nonce_len >= 4 && lb->server_id_len + lb->nonce_len <= 19);
		CHECK(i == 0 || lb->config_id != q->lb[0].config_id);
	}

	/* Health and circuit: the relations CONFIG.md states. */
	CHECK(s->health.probe <= QG_CONFIG_PROBE_QUIC_VN);
	CHECK(str_ok(s->health.send, sizeof(s->health.send)));
	CHECK(str_ok(s->health.expect, sizeof(s->health.expect)));
	CHECK(s->health.timeout_ms >= 1 && s->health.timeout_ms <= s->health.interval_ms);
	CHECK(s->health.rise >= 1 && s->health.rise <= 100 && s->health.fall >= 1 && s->health.fall <= 100);
	CHECK(s->circuit.successes >= 1 && s->circuit.successes <= s->circuit.half_open_flows);

	for (uint32_t b = 0; b < s->n_backends; b++) {
		const struct qg_config_backend *bk = &s->backends[b];

		check_addr(&bk->addr);
		CHECK(bk->weight <= QG_CONFIG_MAX_WEIGHT);
		CHECK(bk->line >= 1);
		CHECK(bk->server_id_len == (q->n_lb ? q->lb[0].server_id_len : 0));
		/* Quadratic, but services that load are small for the fuzzer's inputs (max_len). */
		for (uint32_t o = 0; o < b; o++) {
			CHECK(!qg_addr_equal(&bk->addr, &s->backends[o].addr));
			if (q->n_lb)
				CHECK(memcmp(bk->server_id, s->backends[o].server_id, bk->server_id_len) !=
				      0);
		}
	}
	for (uint32_t o = 0; o < si; o++) {
		CHECK(strcmp(s->name, cfg->services[o].name) != 0);
		CHECK(!qg_addr_equal(&s->listen, &cfg->services[o].listen));
	}
	CHECK(qg_config_service_find(cfg, s->name) == s);
}

static void check_config(const struct qg_config *cfg)
{
	const struct qg_config_dataplane *dp = &cfg->dataplane;

	CHECK(str_ok(cfg->source, sizeof(cfg->source)) && !strcmp(cfg->source, "fuzz.yaml"));
	CHECK(dp->io <= QG_CONFIG_IO_DPDK);
	CHECK(dp->n_cores >= 1 && dp->n_cores <= QG_CONFIG_MAX_CORES);
	for (uint32_t i = 1; i < dp->n_cores; i++)
		for (uint32_t j = 0; j < i; j++)
			CHECK(dp->cores[i] != dp->cores[j]);
	CHECK(dp->flows_per_core >= 1 && dp->upstream_sockets_per_core >= 1);
	CHECK(dp->rx_buffers >= 64 && dp->rx_buffers <= 65536 && !(dp->rx_buffers & (dp->rx_buffers - 1)));
	CHECK(dp->max_datagram >= 64 && dp->max_datagram <= 65507);
	CHECK(dp->burst >= 1 && dp->burst <= 256);
	CHECK(dp->dpdk.n_ports <= QG_CONFIG_DPDK_MAX_PORTS &&
	      dp->dpdk.n_eal_args <= QG_CONFIG_DPDK_MAX_EAL_ARGS);
	for (uint32_t i = 0; i < dp->dpdk.n_eal_args; i++)
		CHECK(str_ok(dp->dpdk.eal_args[i], sizeof(dp->dpdk.eal_args[i])));
	for (uint32_t i = 0; i < dp->dpdk.n_ports; i++) {
		const struct qg_config_dpdk_port *p = &dp->dpdk.ports[i];

		CHECK(str_ok(p->name, sizeof(p->name)));
		CHECK(p->n_addresses <= QG_CONFIG_DPDK_MAX_ADDRS && p->n_nat <= QG_CONFIG_DPDK_MAX_NAT &&
		      p->n_neighbors <= QG_CONFIG_DPDK_MAX_NEIGHBORS);
		for (uint32_t a = 0; a < p->n_addresses; a++)
			CHECK(p->addresses[a].len <= (p->addresses[a].addr.family == AF_INET ? 32u : 128u));
	}
	CHECK(!cfg->metrics.enabled || cfg->metrics.listen.family == AF_INET ||
	      cfg->metrics.listen.family == AF_INET6);
	CHECK(str_ok(cfg->admin.socket, sizeof(cfg->admin.socket)));
	CHECK(cfg->admin.mode <= 0777 && (cfg->admin.mode & 0600) == 0600);
	CHECK(cfg->n_services >= 1 && cfg->n_services <= QG_CONFIG_MAX_SERVICES && cfg->services);
	for (uint32_t s = 0; s < cfg->n_services; s++)
		check_service(cfg, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qg_config *cfg = NULL;
	struct qg_config_errors errs;
	int rc;

	memset(&errs, 0xa5, sizeof(errs)); /* the loader must initialise it */
	rc = qg_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &errs);
	if (rc == 0) {
		CHECK(cfg != NULL);
		CHECK(errs.count == 0 && errs.dropped == 0);
		check_config(cfg);
		qg_config_free(cfg);
		return 0;
	}
	CHECK(rc < 0);
	CHECK(rc == -EINVAL || rc == -ENOMEM);
	CHECK(cfg == NULL);
	check_errors(&errs);
	qg_config_errors_print(&errs, devnull);
	return 0;
}
