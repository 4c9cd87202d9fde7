/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * YAML configuration loader. The whole document is checked before anything is
 * returned so one run of "check-config" shows every problem, each at its
 * line and column; a partly valid configuration is never handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

/* Anything bigger is not a hand-written configuration; refuse before reading it all. */
#define CONFIG_FILE_MAX (16u << 20)

#define MAGLEV_TABLE_MAX   1000003u
#define IDLE_TIMEOUT_MAX   (24u * 3600 * 1000)
#define STATS_INTERVAL_MAX (24u * 3600 * 1000)
#define DRAIN_TIMEOUT_MAX  (3600u * 1000)

enum {
	ROOT_DATAPLANE,
	ROOT_STATS_INTERVAL,
	ROOT_SERVICES,
	ROOT_METRICS,
	ROOT_ADMIN,
	ROOT_DRAIN_TIMEOUT,
	ROOT_DEGRADATION,
	ROOT_BRIDGES,
	ROOT_USER,
	ROOT_GROUP,
	ROOT_N
};
static const char *const root_keys[ROOT_N] = { "dataplane", "stats_interval", "services",    "metrics",
					       "admin",	    "drain_timeout",  "degradation", "bridges",
					       "user",	    "group" };
static const struct section root_section = { "the configuration", "at the top level", root_keys, ROOT_N };

enum {
	DP_BACKEND,
	DP_CORES,
	DP_FLOWS,
	DP_UPSTREAM,
	DP_RX_BUFFERS,
	DP_MAX_DATAGRAM,
	DP_BURST,
	DP_UDP_GSO,
	DP_OVERLOAD_GUARD,
	DP_DPDK,
	DP_N
};
static const char *const dp_keys[DP_N] = {
	"backend",	  "cores",	  "flows_per_core", "upstream_sockets_per_core",
	"rx_buffers",	  "max_datagram", "burst",	    "udp_gso",
	"overload_guard", "dpdk",
};
static const struct section dp_section = { "dataplane", "in dataplane", dp_keys, DP_N };

enum {
	SVC_NAME,
	SVC_LISTEN,
	SVC_PROTOCOL,
	SVC_POLICY,
	SVC_HASH,
	SVC_MAGLEV_SIZE,
	SVC_IDLE_TIMEOUT,
	SVC_MAX_FLOWS,
	SVC_BACKENDS,
	SVC_QUIC,
	SVC_HEALTH,
	SVC_CIRCUIT,
	SVC_ON_DOWN,
	SVC_QUIC_LB,
	SVC_VERSIONS,
	SVC_RETRY,
	SVC_PRIORITY,
	SVC_N
};
static const char *const svc_keys[SVC_N] = {
	"name",
	"listen",
	"protocol",
	"policy",
	"hash",
	"maglev_table_size",
	"idle_timeout",
	"max_flows_per_client",
	"backends",
	"quic",
	"health",
	"circuit",
	"on_backend_down",
	"quic_lb",
	"versions",
	"retry",
	"priority",
};
static const struct section svc_section = { "service", "in service", svc_keys, SVC_N };

enum {
	BK_ADDRESS,
	BK_WEIGHT,
	BK_SERVER_ID,
	BK_PATHS,
	BK_N
};
static const char *const bk_keys[BK_N] = { "address", "weight", "server_id", "paths" };
static const struct section bk_section = { "backend", "in backend", bk_keys, BK_N };

enum {
	MET_LISTEN,
	MET_N
};
static const char *const met_keys[MET_N] = { "listen" };
static const struct section met_section = { "metrics", "in metrics", met_keys, MET_N };

enum {
	ADM_SOCKET,
	ADM_MODE,
	ADM_OWNER,
	ADM_GROUP,
	ADM_N
};
static const char *const adm_keys[ADM_N] = { "socket", "mode", "owner", "group" };
static const struct section adm_section = { "admin", "in admin", adm_keys, ADM_N };

/* Where the identifying values of a service were written, for duplicate checks. */
struct svc_marks {
	const yaml_node_t *name;   /* NULL when absent or invalid */
	const yaml_node_t *listen; /* likewise */
};

yaml_node_t *qg_cfg_node_get(struct qg_cfg_ctx *ctx, int index)
{
	return yaml_document_get_node(ctx->doc, index);
}

int qg_cfg_node_line(const yaml_node_t *node)
{
	return (int)node->start_mark.line + 1;
}

size_t qg_cfg_seq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

void qg_cfg_error_missing(struct qg_cfg_ctx *ctx, const yaml_node_t *map, const struct section *sec,
			  const char *key)
{
	qg_cfg_error(ctx, map, "%s is missing required key '%s'", sec->what, key);
}

/*
 * Sort the pairs of a mapping into known keys. Unknown and repeated keys are
 * reported here: libyaml keeps both copies of a repeated key, and silently
 * taking one of them would hide a typo.
 */
void qg_cfg_map_fields(struct qg_cfg_ctx *ctx, const yaml_node_t *map, const struct section *sec,
		       struct fields *f)
{
	yaml_node_pair_t *pair;
	size_t i;

	memset(f, 0, sizeof(*f));
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = qg_cfg_node_get(ctx, pair->key);
		yaml_node_t *v = qg_cfg_node_get(ctx, pair->value);
		const char *name;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			qg_cfg_error(ctx, k, "expected a scalar key %s, found %s", sec->where,
				     qg_cfg_node_kind(k));
			continue;
		}
		name = (const char *)k->data.scalar.value;
		for (i = 0; i < sec->n_keys; i++)
			if (strlen(sec->keys[i]) == k->data.scalar.length && !strcmp(name, sec->keys[i]))
				break;
		if (i == sec->n_keys) {
			char valid[160];
			size_t j, off = 0;

			valid[0] = '\0';
			for (j = 0; j < sec->n_keys && off < sizeof(valid); j++)
				off += (size_t)snprintf(valid + off, sizeof(valid) - off, "%s%s",
							j ? ", " : "", sec->keys[j]);
			qg_cfg_error(ctx, k, "unknown key '%.40s' %s (valid keys: %s)", name, sec->where,
				     valid);
			continue;
		}
		if (f->key[i]) {
			qg_cfg_error(ctx, k, "duplicate key '%s' %s (first at line %d)", sec->keys[i],
				     sec->where, qg_cfg_node_line(f->key[i]));
			continue;
		}
		f->key[i] = k;
		f->val[i] = v;
	}
}

int qg_cfg_expect_type(struct qg_cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type,
		       const char *key, const char *hint)
{
	const char *want = type == YAML_MAPPING_NODE ? "a mapping" : "a sequence";

	if (node->type == type)
		return 0;
	qg_cfg_error(ctx, node, "%s: expected %s%s, found %s", key, want, hint, qg_cfg_node_kind(node));
	return -EINVAL;
}

static const char *enum_name(const struct qg_cfg_enum *values, size_t n, int value)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (values[i].value == value)
			return values[i].name;
	return "?";
}

static int load_dataplane(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dataplane *dp)
{
	struct fields f;
	uint32_t v;
	int io, ret;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "dataplane", ""))
		return 0;
	qg_cfg_map_fields(ctx, node, &dp_section, &f);
	if (f.val[DP_BACKEND] && !qg_cfg_enum(ctx, f.val[DP_BACKEND], "backend", qg_cfg_io_values,
					      QG_CFG_NELEM(qg_cfg_io_values), &io))
		dp->io = (enum qg_config_io)io;
	if (f.val[DP_FLOWS])
		qg_cfg_u32(ctx, f.val[DP_FLOWS], "flows_per_core", 1, 67108864, &dp->flows_per_core);
	if (f.val[DP_UPSTREAM])
		qg_cfg_u32(ctx, f.val[DP_UPSTREAM], "upstream_sockets_per_core", 1, 1048576,
			   &dp->upstream_sockets_per_core);
	if (f.val[DP_RX_BUFFERS] && !qg_cfg_u32(ctx, f.val[DP_RX_BUFFERS], "rx_buffers", 64, 65536, &v)) {
		/* The receive ring indexes buffers with a mask. */
		if (v & (v - 1))
			qg_cfg_error(ctx, f.val[DP_RX_BUFFERS],
				     "rx_buffers: %u is not a power of two (64..65536, e.g. 4096)", v);
		else
			dp->rx_buffers = v;
	}
	if (f.val[DP_MAX_DATAGRAM])
		qg_cfg_u32(ctx, f.val[DP_MAX_DATAGRAM], "max_datagram", 64, 65507, &dp->max_datagram);
	if (f.val[DP_BURST])
		qg_cfg_u32(ctx, f.val[DP_BURST], "burst", 1, 256, &dp->burst);
	if (f.val[DP_UDP_GSO] && !qg_cfg_enum(ctx, f.val[DP_UDP_GSO], "udp_gso", qg_cfg_bool_values,
					      QG_CFG_NELEM(qg_cfg_bool_values), &io))
		dp->udp_gso = io;
	if (f.val[DP_OVERLOAD_GUARD] &&
	    !qg_cfg_enum(ctx, f.val[DP_OVERLOAD_GUARD], "overload_guard", qg_cfg_bool_values,
			 QG_CFG_NELEM(qg_cfg_bool_values), &io))
		dp->overload_guard = io;
	/* A dpdk section under another backend is fine (switching back and forth is one line). */
	if (f.val[DP_DPDK]) {
		ret = qg_cfg_dpdk(ctx, f.val[DP_DPDK], dp->io == QG_CONFIG_IO_DPDK, &dp->dpdk);
		if (ret)
			return ret;
	} else if (dp->io == QG_CONFIG_IO_DPDK) {
		qg_cfg_error(ctx, f.val[DP_BACKEND],
			     "backend dpdk needs a 'dpdk' section with its 'ports' in dataplane");
	}
	if (f.val[DP_CORES])
		return qg_cfg_cores(ctx, f.val[DP_CORES], dp);
	return 0;
}

/*
 * The metrics server is off unless the section is there; it then needs its
 * address. Any address is accepted: the daemon warns about non-loopback ones
 * at start, because the exposition tells anyone who can reach it the
 * gateway's topology.
 */
static void load_metrics(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_metrics *m)
{
	struct fields f;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "metrics", " such as {listen: 127.0.0.1:9100}"))
		return;
	qg_cfg_map_fields(ctx, node, &met_section, &f);
	if (!f.val[MET_LISTEN]) {
		qg_cfg_error_missing(ctx, node, &met_section, "listen");
		return;
	}
	if (!qg_cfg_addr(ctx, f.val[MET_LISTEN], "listen", &m->listen)) {
		m->enabled = 1;
		m->line = qg_cfg_node_line(f.val[MET_LISTEN]);
	}
}

/* Permission bits in octal with the leading 0 YAML 1.1 readers expect ("0600"). */
static void load_mode(struct qg_cfg_ctx *ctx, const yaml_node_t *node, uint32_t *mode)
{
	const char *s, *p;
	uint32_t v = 0;

	if (qg_cfg_scalar(ctx, node, "mode", &s))
		return;
	if (s[0] != '0' || !s[1] || strlen(s) > 5) {
		qg_cfg_error(ctx, node,
			     "mode: '%.20s' is not an octal mode (write it with a leading 0, e.g. 0600)", s);
		return;
	}
	for (p = s + 1; *p; p++) {
		if (*p < '0' || *p > '7') {
			qg_cfg_error(ctx, node, "mode: '%.20s' has '%c', not an octal digit (e.g. 0600)", s,
				     *p);
			return;
		}
		v = v * 8 + (uint32_t)(*p - '0');
	}
	if (v > 0777) {
		qg_cfg_error(ctx, node, "mode: %s sets more than permission bits (0000..0777)", s);
		return;
	}
	/* qgate creates the socket; without rw for its owner qgatectl run as that user cannot connect. */
	if ((v & 0600) != 0600) {
		qg_cfg_error(ctx, node, "mode: %s leaves the owner without read and write (e.g. 0600, 0660)",
			     s);
		return;
	}
	*mode = v;
}

/* Present section = an admin socket; its path defaults when only the mode is given. */
static void load_admin(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_admin *a)
{
	struct fields f;
	const char *s;
	size_t len;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "admin",
			       " such as {socket: /run/qgate/admin.sock, mode: 0600}"))
		return;
	qg_cfg_map_fields(ctx, node, &adm_section, &f);
	snprintf(a->socket, sizeof(a->socket), "%s", QG_CONFIG_ADMIN_SOCKET_DEFAULT);
	if (f.val[ADM_SOCKET] && !qg_cfg_scalar(ctx, f.val[ADM_SOCKET], "socket", &s)) {
		len = strlen(s);
		if (len == 0)
			qg_cfg_error(ctx, f.val[ADM_SOCKET], "socket: must not be empty (a file path)");
		else if (len >= sizeof(a->socket))
			qg_cfg_error(ctx, f.val[ADM_SOCKET],
				     "socket: path is %zu bytes, a Unix socket path holds at most %zu", len,
				     sizeof(a->socket) - 1);
		else
			memcpy(a->socket, s, len + 1);
	}
	if (f.val[ADM_MODE])
		load_mode(ctx, f.val[ADM_MODE], &a->mode);
	qg_cfg_admin_ids(ctx, f.val[ADM_OWNER], f.val[ADM_GROUP], a);
}

static int backend_ref_cmp(const void *a, const void *b)
{
	const struct qg_config_backend *x = *(const struct qg_config_backend *const *)a;
	const struct qg_config_backend *y = *(const struct qg_config_backend *const *)b;
	int c = memcmp(&x->addr, &y->addr, sizeof(x->addr));

	/* Same address: keep document order so the first of a run is the original. */
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/*
 * Sorting instead of comparing every pair: a service may list 4096 backends
 * and a file 256 services.
 */
static int check_duplicate_backends(struct qg_cfg_ctx *ctx, struct qg_config_service *svc,
				    const struct qg_cfg_bk_nodes *nodes)
{
	struct qg_config_backend **refs;
	size_t i, n = 0, first = 0;

	refs = calloc(svc->n_backends ? svc->n_backends : 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (i = 0; i < svc->n_backends; i++)
		if (nodes[i].addr)
			refs[n++] = &svc->backends[i];
	qsort(refs, n, sizeof(*refs), backend_ref_cmp);
	for (i = 1; i < n; i++) {
		char text[QG_ADDR_STRLEN];

		if (!qg_addr_equal(&refs[i]->addr, &refs[first]->addr)) {
			first = i;
			continue;
		}
		qg_cfg_error(ctx, nodes[refs[i] - svc->backends].addr,
			     "duplicate backend %s (first at line %d)",
			     qg_addr_format(&refs[i]->addr, text, sizeof(text)),
			     qg_cfg_node_line(nodes[refs[first] - svc->backends].addr));
	}
	free(refs);
	return 0;
}

static void load_backend(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_backend *bk,
			 struct qg_cfg_bk_nodes *nodes)
{
	struct fields f;

	bk->weight = 1;
	bk->line = qg_cfg_node_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(
			ctx, node,
			"backends: each entry must be a mapping such as {address: 10.0.0.1:5001, weight: 1}, "
			"found %s",
			qg_cfg_node_kind(node));
		return;
	}
	qg_cfg_map_fields(ctx, node, &bk_section, &f);
	nodes->map = node;
	if (!f.val[BK_ADDRESS] && !f.val[BK_PATHS])
		qg_cfg_error_missing(ctx, node, &bk_section, "address");
	else
		nodes->addr =
			qg_cfg_backend_paths(ctx, f.val[BK_ADDRESS], f.key[BK_PATHS], f.val[BK_PATHS], bk);
	if (f.val[BK_WEIGHT])
		qg_cfg_u32(ctx, f.val[BK_WEIGHT], "weight", 0, QG_CONFIG_MAX_WEIGHT, &bk->weight);
	/* Checked with the whole service: it depends on quic.lb and must be unique. */
	nodes->sid_key = f.key[BK_SERVER_ID];
	nodes->sid_val = f.val[BK_SERVER_ID];
}

static int load_backends(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_service *svc,
			 const struct qg_cfg_sid_rule *rule)
{
	struct qg_cfg_bk_nodes *nodes;
	size_t n, i;
	int ret;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "backends", " of {address, weight} entries"))
		return 0;
	n = qg_cfg_seq_len(node);
	if (n == 0) {
		qg_cfg_error(ctx, node, "backends: no backends (a service needs 1..%d)",
			     QG_CONFIG_MAX_BACKENDS);
		return 0;
	}
	if (n > QG_CONFIG_MAX_BACKENDS) {
		qg_cfg_error(ctx, node, "backends: %zu entries, max %d per service", n,
			     QG_CONFIG_MAX_BACKENDS);
		n = QG_CONFIG_MAX_BACKENDS;
	}
	svc->backends = calloc(n, sizeof(*svc->backends));
	nodes = calloc(n, sizeof(*nodes));
	if (!svc->backends || !nodes) {
		ret = -ENOMEM;
		goto out;
	}
	svc->n_backends = (uint32_t)n;
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = qg_cfg_node_get(ctx, node->data.sequence.items.start[i]);

		if (item)
			load_backend(ctx, item, &svc->backends[i], &nodes[i]);
	}
	ret = check_duplicate_backends(ctx, svc, nodes);
	if (!ret)
		ret = qg_cfg_quic_server_ids(ctx, svc, rule, nodes);
out:
	free(nodes);
	return ret;
}

static void load_maglev_size(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_service *svc)
{
	uint32_t v, next;

	if (qg_cfg_u32(ctx, node, "maglev_table_size", 1, MAGLEV_TABLE_MAX, &v))
		return;
	if (!qg_cfg_is_prime(v)) {
		/* Bounded: MAGLEV_TABLE_MAX itself is prime. */
		for (next = v + 1; !qg_cfg_is_prime(next); next++)
			;
		qg_cfg_error(ctx, node, "maglev_table_size: %u is not a prime (next prime: %u)", v, next);
		return;
	}
	svc->maglev_table_size = v;
}

static int load_service(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_service *svc,
			struct svc_marks *m)
{
	struct qg_cfg_sid_rule rule = { QG_CFG_SID_NONE, 0 };
	int policy_ok = 1, proto_ok = 1, val, ret;
	struct fields f;
	const char *policy;

	svc->protocol = QG_CONFIG_PROTO_UDP;
	svc->policy = QG_CONFIG_POLICY_MAGLEV;
	svc->hash = QG_CONFIG_HASH_FIVE_TUPLE;
	svc->maglev_table_size = 65537;
	svc->idle_timeout_ms = 30000;
	qg_cfg_quic_defaults(&svc->quic);
	qg_cfg_health_defaults(&svc->health, &svc->circuit);
	svc->on_backend_down = QG_CONFIG_ON_DOWN_REHOME;
	svc->line = qg_cfg_node_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(ctx, node,
			     "services: each entry must be a mapping (name, listen, backends, ...), found %s",
			     qg_cfg_node_kind(node));
		return 0;
	}
	qg_cfg_map_fields(ctx, node, &svc_section, &f);
	if (!f.val[SVC_NAME])
		qg_cfg_error_missing(ctx, node, &svc_section, "name");
	else if (!qg_cfg_name(ctx, f.val[SVC_NAME], svc->name, sizeof(svc->name)))
		m->name = f.val[SVC_NAME];
	if (!f.val[SVC_LISTEN])
		qg_cfg_error_missing(ctx, node, &svc_section, "listen");
	else if (!qg_cfg_addr(ctx, f.val[SVC_LISTEN], "listen", &svc->listen))
		m->listen = f.val[SVC_LISTEN];
	if (f.val[SVC_PROTOCOL]) {
		proto_ok = !qg_cfg_enum(ctx, f.val[SVC_PROTOCOL], "protocol", qg_cfg_proto_values,
					QG_CFG_NELEM(qg_cfg_proto_values), &val);
		if (proto_ok)
			svc->protocol = (enum qg_config_proto)val;
	}
	/*
	 * Refused on a udp service rather than ignored. Once refused its lb is
	 * unknown, so the backends' server_id is not judged against it: one
	 * error for one mistake.
	 */
	if (f.val[SVC_QUIC]) {
		if (proto_ok && svc->protocol != QG_CONFIG_PROTO_QUIC) {
			qg_cfg_error(ctx, f.key[SVC_QUIC],
				     "quic is only allowed with protocol quic (protocol is %s)",
				     enum_name(qg_cfg_proto_values, QG_CFG_NELEM(qg_cfg_proto_values),
					       (int)svc->protocol));
			rule.need = QG_CFG_SID_UNKNOWN;
		} else {
			qg_cfg_quic(ctx, f.val[SVC_QUIC], &svc->quic, &rule);
		}
	}
	if (f.val[SVC_QUIC_LB] || f.val[SVC_VERSIONS] || f.val[SVC_RETRY]) {
		const yaml_node_t *k = f.key[SVC_QUIC_LB]    ? f.key[SVC_QUIC_LB]
				       : f.key[SVC_VERSIONS] ? f.key[SVC_VERSIONS]
							     : f.key[SVC_RETRY];

		if (proto_ok && svc->protocol != QG_CONFIG_PROTO_QUIC) {
			qg_cfg_error(ctx, k, "%s is only allowed with protocol quic",
				     (const char *)k->data.scalar.value);
			rule.need = QG_CFG_SID_UNKNOWN;
		} else {
			if (rule.need == QG_CFG_SID_UNKNOWN && !f.val[SVC_QUIC])
				rule.need = QG_CFG_SID_NONE;
			qg_cfg_quic_service_keys(ctx, f.val[SVC_QUIC_LB], f.val[SVC_VERSIONS],
						 f.val[SVC_RETRY], &svc->quic, &rule);
		}
	}
	if (f.val[SVC_POLICY]) {
		policy_ok = !qg_cfg_enum(ctx, f.val[SVC_POLICY], "policy", qg_cfg_policy_values,
					 QG_CFG_NELEM(qg_cfg_policy_values), &val);
		if (policy_ok)
			svc->policy = (enum qg_config_policy)val;
	}
	policy = enum_name(qg_cfg_policy_values, QG_CFG_NELEM(qg_cfg_policy_values), (int)svc->policy);
	/* Only Maglev hashes; accepting these elsewhere would suggest an effect they do not have. */
	if (f.val[SVC_HASH]) {
		if (policy_ok && svc->policy != QG_CONFIG_POLICY_MAGLEV)
			qg_cfg_error(ctx, f.key[SVC_HASH],
				     "hash is only allowed with policy maglev (policy is %s)", policy);
		else if (!qg_cfg_enum(ctx, f.val[SVC_HASH], "hash", qg_cfg_hash_values,
				      QG_CFG_NELEM(qg_cfg_hash_values), &val))
			svc->hash = (enum qg_config_hash)val;
	}
	if (f.val[SVC_MAGLEV_SIZE]) {
		if (policy_ok && svc->policy != QG_CONFIG_POLICY_MAGLEV)
			qg_cfg_error(ctx, f.key[SVC_MAGLEV_SIZE],
				     "maglev_table_size is only allowed with policy maglev (policy is %s)",
				     policy);
		else
			load_maglev_size(ctx, f.val[SVC_MAGLEV_SIZE], svc);
	}
	if (f.val[SVC_IDLE_TIMEOUT])
		qg_cfg_duration(ctx, f.val[SVC_IDLE_TIMEOUT], "idle_timeout", 1, IDLE_TIMEOUT_MAX,
				&svc->idle_timeout_ms);
	if (f.val[SVC_MAX_FLOWS])
		qg_cfg_u32(ctx, f.val[SVC_MAX_FLOWS], "max_flows_per_client", 0, 1048576,
			   &svc->max_flows_per_client);
	if (f.val[SVC_HEALTH])
		qg_cfg_health(ctx, f.val[SVC_HEALTH], &svc->health);
	if (f.val[SVC_CIRCUIT])
		qg_cfg_circuit(ctx, f.val[SVC_CIRCUIT], &svc->circuit);
	if (f.val[SVC_ON_DOWN] &&
	    !qg_cfg_enum(ctx, f.val[SVC_ON_DOWN], "on_backend_down", qg_cfg_on_down_values,
			 QG_CFG_NELEM(qg_cfg_on_down_values), &val))
		svc->on_backend_down = (enum qg_config_on_down)val;
	if (f.val[SVC_PRIORITY] && !qg_cfg_enum(ctx, f.val[SVC_PRIORITY], "priority", qg_cfg_priority_values,
						QG_CFG_NELEM(qg_cfg_priority_values), &val))
		svc->priority = (enum qg_config_priority)val;
	if (!f.val[SVC_BACKENDS]) {
		qg_cfg_error_missing(ctx, node, &svc_section, "backends");
		return 0;
	}
	ret = load_backends(ctx, f.val[SVC_BACKENDS], svc, &rule);
	if (ret)
		return ret;
	/* Maglev gives every backend at least one slot, so the table cannot be smaller. */
	if (svc->policy == QG_CONFIG_POLICY_MAGLEV && f.val[SVC_MAGLEV_SIZE] &&
	    svc->n_backends > svc->maglev_table_size)
		qg_cfg_error(ctx, f.val[SVC_MAGLEV_SIZE],
			     "maglev_table_size: %u is smaller than the number of backends (%u)",
			     svc->maglev_table_size, svc->n_backends);
	return 0;
}

/* Two services cannot share a name (stats, logs) nor a listen address (bind would fail). */
static void check_duplicate_services(struct qg_cfg_ctx *ctx, const struct qg_config *cfg,
				     const struct svc_marks *m)
{
	const struct qg_config_service *s = cfg->services;
	char text[QG_ADDR_STRLEN];
	uint32_t i, j;

	for (i = 0; i < cfg->n_services; i++) {
		for (j = 0; m[i].name && j < i; j++) {
			if (m[j].name && !strcmp(s[i].name, s[j].name)) {
				qg_cfg_error(ctx, m[i].name,
					     "duplicate service name '%s' (first defined at line %d)",
					     s[i].name, qg_cfg_node_line(m[j].name));
				break;
			}
		}
		for (j = 0; m[i].listen && j < i; j++) {
			if (!m[j].listen || !qg_addr_equal(&s[i].listen, &s[j].listen))
				continue;
			qg_addr_format(&s[i].listen, text, sizeof(text));
			if (m[j].name)
				qg_cfg_error(ctx, m[i].listen,
					     "duplicate listen address %s (already used by service '%s' at "
					     "line %d)",
					     text, s[j].name, qg_cfg_node_line(m[j].listen));
			else
				qg_cfg_error(ctx, m[i].listen,
					     "duplicate listen address %s (already used by the service at "
					     "line %d)",
					     text, qg_cfg_node_line(m[j].listen));
			break;
		}
	}
}

static int load_services(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config *cfg)
{
	struct svc_marks *marks = NULL;
	size_t n, i;
	int ret = 0;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "services", " of services"))
		return 0;
	n = qg_cfg_seq_len(node);
	if (n == 0) {
		qg_cfg_error(ctx, node, "services: no services defined (expected 1..%d)",
			     QG_CONFIG_MAX_SERVICES);
		return 0;
	}
	if (n > QG_CONFIG_MAX_SERVICES) {
		qg_cfg_error(ctx, node, "services: %zu entries, max %d", n, QG_CONFIG_MAX_SERVICES);
		n = QG_CONFIG_MAX_SERVICES;
	}
	cfg->services = calloc(n, sizeof(*cfg->services));
	marks = calloc(n, sizeof(*marks));
	if (!cfg->services || !marks) {
		ret = -ENOMEM;
		goto out;
	}
	cfg->n_services = (uint32_t)n;
	for (i = 0; i < n && !ret; i++) {
		const yaml_node_t *item = qg_cfg_node_get(ctx, node->data.sequence.items.start[i]);

		if (item)
			ret = load_service(ctx, item, &cfg->services[i], &marks[i]);
	}
	if (!ret)
		check_duplicate_services(ctx, cfg, marks);
out:
	free(marks);
	return ret;
}

static int load_root(struct qg_cfg_ctx *ctx, const yaml_node_t *root, struct qg_config *cfg)
{
	struct qg_config_dataplane *dp = &cfg->dataplane;
	struct fields f;
	int ret;

	dp->io = QG_CONFIG_IO_URING;
	dp->flows_per_core = 1048576;
	dp->upstream_sockets_per_core = 65536;
	dp->rx_buffers = 4096;
	dp->max_datagram = 2048;
	dp->burst = 32;
	dp->udp_gso = 1;
	dp->overload_guard = 1;
	qg_cfg_dpdk_defaults(&dp->dpdk);
	qg_cfg_default_cores(dp);
	cfg->admin.mode = QG_CONFIG_ADMIN_MODE_DEFAULT;
	cfg->drain_timeout_ms = QG_CONFIG_DRAIN_TIMEOUT_DEFAULT;
	qg_cfg_degradation_defaults(&cfg->degradation);
	if (root->type != YAML_MAPPING_NODE) {
		qg_cfg_error(
			ctx, root,
			"expected a mapping at the top level (dataplane, stats_interval, services), found %s",
			qg_cfg_node_kind(root));
		return 0;
	}
	qg_cfg_map_fields(ctx, root, &root_section, &f);
	if (f.val[ROOT_DATAPLANE]) {
		ret = load_dataplane(ctx, f.val[ROOT_DATAPLANE], dp);
		if (ret)
			return ret;
	}
	if (f.val[ROOT_STATS_INTERVAL])
		qg_cfg_duration(ctx, f.val[ROOT_STATS_INTERVAL], "stats_interval", 0, STATS_INTERVAL_MAX,
				&cfg->stats_interval_ms);
	if (f.val[ROOT_METRICS])
		load_metrics(ctx, f.val[ROOT_METRICS], &cfg->metrics);
	if (f.val[ROOT_ADMIN])
		load_admin(ctx, f.val[ROOT_ADMIN], &cfg->admin);
	if (f.val[ROOT_DRAIN_TIMEOUT])
		qg_cfg_duration(ctx, f.val[ROOT_DRAIN_TIMEOUT], "drain_timeout", 0, DRAIN_TIMEOUT_MAX,
				&cfg->drain_timeout_ms);
	if (f.val[ROOT_DEGRADATION])
		qg_cfg_degradation(ctx, f.val[ROOT_DEGRADATION], &cfg->degradation);
	qg_cfg_run_as(ctx, f.key[ROOT_USER], f.val[ROOT_USER], f.key[ROOT_GROUP], f.val[ROOT_GROUP], dp->io,
		      &cfg->run_as);
	if (!f.val[ROOT_SERVICES]) {
		qg_cfg_error_missing(ctx, root, &root_section, "services");
		return 0;
	}
	ret = load_services(ctx, f.val[ROOT_SERVICES], cfg);
	return ret ? ret : qg_cfg_bridges(ctx, f.val[ROOT_BRIDGES], cfg);
}

/*
 * Tabs in indentation are the most common cause of libyaml's terse "cannot
 * start any token": say so when the failing line is indented with one.
 */
/* Hints for the two syntax slips a gateway config invites: tab indentation and unquoted [IPv6]:port. */
static const char *syntax_hint(const char *text, size_t len, size_t line)
{
	const char *p = text, *end = text + len, *eol;

	while (line > 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			return "";
		p = nl + 1;
		line--;
	}
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	for (const char *q = p; q + 1 < eol; q++)
		if (q[0] == ']' && q[1] == ':' && memchr(p, '[', (size_t)(q - p)))
			return "; quote IPv6 endpoints, e.g. \"[::1]:4433\" (a bare [ starts a YAML list)";
	for (; p < eol && (*p == ' ' || *p == '\t'); p++)
		if (*p == '\t')
			return "; YAML does not allow tabs for indentation";
	return "";
}

/* A parser failure: the first syntax problem is all libyaml can tell. */
static int parse_error(const yaml_parser_t *parser, const char *text, size_t len,
		       struct qg_config_errors *errs)
{
	const char *problem = parser->problem ? parser->problem : "unknown problem";
	int line = (int)parser->problem_mark.line + 1, column = (int)parser->problem_mark.column + 1;
	const char *hint;

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		qg_cfg_error_at(errs, 0, 0, "out of memory while parsing");
		return -ENOMEM;
	case YAML_READER_ERROR:
		/* The reader has no line/column, only a byte offset (bad UTF-8, control characters). */
		qg_cfg_error_at(errs, 0, 0, "YAML error: %s at byte offset %zu", problem,
				parser->problem_offset);
		return -EINVAL;
	default:
		break;
	}
	hint = syntax_hint(text, len, parser->problem_mark.line);
	if (parser->context)
		qg_cfg_error_at(errs, line, column, "YAML syntax error: %s (%s at line %d)%s", problem,
				parser->context, (int)parser->context_mark.line + 1, hint);
	else
		qg_cfg_error_at(errs, line, column, "YAML syntax error: %s%s", problem, hint);
	return -EINVAL;
}

/* A second "---" document would otherwise be ignored without a word. */
static int check_single_document(yaml_parser_t *parser, const char *text, size_t len,
				 struct qg_config_errors *errs)
{
	yaml_document_t next;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &next))
		return parse_error(parser, text, len, errs);
	root = yaml_document_get_root_node(&next);
	if (root)
		qg_cfg_error_at(errs, (int)root->start_mark.line + 1, (int)root->start_mark.column + 1,
				"only one YAML document is allowed, found a second one");
	yaml_document_delete(&next);
	return 0;
}

static void errors_init(struct qg_config_errors *errs, const char *name)
{
	memset(errs, 0, sizeof(*errs));
	snprintf(errs->file, sizeof(errs->file), "%s", name ? name : "<string>");
}

static int load_text(const char *name, const char *text, size_t len, struct qg_config **out,
		     struct qg_config_errors *errs)
{
	struct qg_cfg_ctx ctx = { .errs = errs };
	struct qg_config *cfg = NULL;
	yaml_document_t doc;
	yaml_parser_t parser;
	yaml_node_t *root;
	int ret, have_doc = 0;

	if (!yaml_parser_initialize(&parser)) {
		qg_cfg_error_at(errs, 0, 0, "out of memory while parsing");
		return -ENOMEM;
	}
	if (!text) {
		text = "";
		len = 0;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = parse_error(&parser, text, len, errs);
		goto err;
	}
	have_doc = 1;
	ctx.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		qg_cfg_error_at(errs, 0, 0,
				"the configuration is empty (it needs at least a 'services' list)");
		ret = -EINVAL;
		goto err;
	}
	ret = check_single_document(&parser, text, len, errs);
	if (ret == -ENOMEM)
		goto err;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		ret = -ENOMEM;
		goto err;
	}
	snprintf(cfg->source, sizeof(cfg->source), "%s", name ? name : "<string>");
	ret = load_root(&ctx, root, cfg);
	if (ret)
		goto err;
	if (errs->count) {
		ret = -EINVAL;
		goto err;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	*out = cfg;
	return 0;
err:
	if (ret == -ENOMEM && !errs->count)
		qg_cfg_error_at(errs, 0, 0, "out of memory");
	qg_config_free(cfg);
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

int qg_config_load_string(const char *name, const char *text, size_t len, struct qg_config **out,
			  struct qg_config_errors *errs)
{
	struct qg_config_errors local;

	if (!errs)
		errs = &local;
	errors_init(errs, name);
	if (!out || (!text && len)) {
		qg_cfg_error_at(errs, 0, 0, "invalid arguments");
		return -EINVAL;
	}
	return load_text(name, text, len, out, errs);
}

/* Read a whole file; *buf is malloc'd. */
static int read_file(int fd, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap), *q;
	ssize_t r;
	int ret;

	if (!p)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap >= CONFIG_FILE_MAX) {
				ret = -EFBIG;
				goto err;
			}
			q = realloc(p, cap * 2);
			if (!q) {
				ret = -ENOMEM;
				goto err;
			}
			p = q;
			cap *= 2;
		}
		r = read(fd, p + n, cap - n);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto err;
		}
		n += (size_t)r;
	}
	*buf = p;
	*len = n;
	return 0;
err:
	free(p);
	return ret;
}

int qg_config_load_file(const char *path, struct qg_config **out, struct qg_config_errors *errs)
{
	struct qg_config_errors local;
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	if (!errs)
		errs = &local;
	errors_init(errs, path);
	if (!path || !out) {
		qg_cfg_error_at(errs, 0, 0, "invalid arguments");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		qg_cfg_error_at(errs, 0, 0, "cannot open: %s", strerror(-ret));
		return ret;
	}
	ret = read_file(fd, &buf, &len);
	close(fd);
	if (ret == -EFBIG) {
		qg_cfg_error_at(errs, 0, 0, "cannot read: larger than %u MiB, not a configuration file",
				CONFIG_FILE_MAX >> 20);
		return ret;
	}
	if (ret) {
		qg_cfg_error_at(errs, 0, 0, "cannot read: %s", strerror(-ret));
		return ret;
	}
	ret = load_text(path, buf, len, out, errs);
	free(buf);
	return ret;
}
