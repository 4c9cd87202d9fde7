/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The quic section of a service and the server_id of its backends. QUIC-LB
 * only routes when qgate and every backend agree byte for byte on the
 * configurations and server IDs, and a mismatch shows up as connections that
 * break on migration, not as an error: so everything a draft-21 encoder
 * would refuse is refused here, before anything starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "qgate/quic_lb.h"

_Static_assert(QG_CONFIG_QUIC_KEY_LEN == QG_QUIC_LB_KEY_LEN, "QUIC-LB key length");
_Static_assert(QG_CONFIG_QUIC_SID_MAX == QG_QUIC_LB_MAX_SID_LEN, "QUIC-LB server ID length");
_Static_assert(QG_CONFIG_QUIC_CID_MAX == QG_QUIC_LB_MAX_CID_LEN, "QUIC v1 CID length");

#define MIN_INITIAL_MAX	   1500u
#define NEW_CONN_RATE_MAX  1000000u
#define NEW_CONN_BURST_MAX 100000u

enum {
	QK_LB,
	QK_SHORT_DCID_LEN,
	QK_VERSIONS,
	QK_MIN_INITIAL_SIZE,
	QK_NEW_CONN_RATE,
	QK_NEW_CONN_BURST,
	QK_RETRY,
	QK_N
};
static const char *const quic_keys[QK_N] = {
	"lb", "short_dcid_len", "versions", "min_initial_size", "new_conn_rate", "new_conn_burst", "retry",
};
static const struct section quic_section = { "quic", "in quic", quic_keys, QK_N };

enum {
	LB_CONFIG_ID,
	LB_SERVER_ID_LEN,
	LB_NONCE_LEN,
	LB_KEY,
	LB_N
};
static const char *const lb_keys[LB_N] = { "config_id", "server_id_len", "nonce_len", "key" };
static const struct section lb_section = { "lb configuration", "in lb configuration", lb_keys, LB_N };

/* "always" is the documented spelling; "on" is kept as its synonym. */
static const struct qg_cfg_enum retry_values[4] = {
	{ "off", QG_CONFIG_RETRY_OFF, NULL },
	{ "always", QG_CONFIG_RETRY_ON, NULL },
	{ "on", QG_CONFIG_RETRY_ON, NULL },
	{ "under_attack", QG_CONFIG_RETRY_UNDER_ATTACK, NULL },
};

void qg_cfg_quic_defaults(struct qg_config_quic *q)
{
	memset(q, 0, sizeof(*q));
	/* RFC 9000 Section 14.1: servers discard Initials in datagrams below 1200 bytes. */
	q->min_initial_size = 1200;
	q->new_conn_burst = 20;
	q->retry = QG_CONFIG_RETRY_OFF;
}

static const yaml_node_t *seq_item(struct qg_cfg_ctx *ctx, const yaml_node_t *seq, size_t i)
{
	return qg_cfg_node_get(ctx, seq->data.sequence.items.start[i]);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Position (0-based) of the first character of s that is not a hex digit, or -1. */
static long first_non_hex(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (hex_digit(*p) < 0)
			return p - s;
	return -1;
}

/* Exactly 2 * n hex digits, either case, into n bytes. */
static int hex_decode(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	if (strlen(s) != 2 * n || first_non_hex(s) >= 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
	return 0;
}

/*
 * The key is a secret: messages say what is wrong with it but never echo it,
 * since check-config output ends up in terminals, CI logs and tickets.
 */
static int load_key(struct qg_cfg_ctx *ctx, const yaml_node_t *node, uint8_t *key)
{
	const char *s;
	long bad;

	if (qg_cfg_scalar(ctx, node, "key", &s))
		return -EINVAL;
	bad = first_non_hex(s);
	if (bad >= 0) {
		qg_cfg_error(
			ctx, node,
			"key: character %ld is not a hex digit (expected %d hex digits, %d bytes, no 0x)",
			bad + 1, 2 * QG_CONFIG_QUIC_KEY_LEN, QG_CONFIG_QUIC_KEY_LEN);
		return -EINVAL;
	}
	if (strlen(s) != 2 * QG_CONFIG_QUIC_KEY_LEN) {
		qg_cfg_error(ctx, node, "key: expected %d hex digits (%d bytes), found %zu",
			     2 * QG_CONFIG_QUIC_KEY_LEN, QG_CONFIG_QUIC_KEY_LEN, strlen(s));
		return -EINVAL;
	}
	return hex_decode(s, key, QG_CONFIG_QUIC_KEY_LEN);
}

/* What one lb entry left for the checks across entries (NULL: absent or invalid). */
struct lb_nodes {
	const yaml_node_t *config_id;
	const yaml_node_t *server_id_len;
	uint32_t id, sid; /* their values */
};

/* @return 0 when the whole entry is valid and stored in e. */
static int load_lb_entry(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_quic_lb *e,
			 struct lb_nodes *nodes)
{
	uint32_t id = 0, sid = 0, nonce = 0;
	struct fields f;
	int ok = 1;

	memset(e, 0, sizeof(*e));
	e->line = qg_cfg_node_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(ctx, node,
			     "lb: each entry must be a mapping such as {config_id: 0, server_id_len: 3, "
			     "nonce_len: 4, key: ...}, found %s",
			     qg_cfg_node_kind(node));
		return -EINVAL;
	}
	qg_cfg_map_fields(ctx, node, &lb_section, &f);
	if (!f.val[LB_CONFIG_ID]) {
		qg_cfg_error_missing(ctx, node, &lb_section, "config_id");
		ok = 0;
	} else if (qg_cfg_u32(ctx, f.val[LB_CONFIG_ID], "config_id", 0, QG_QUIC_LB_MAX_CONFIG_ID, &id)) {
		ok = 0;
	} else {
		nodes->config_id = f.val[LB_CONFIG_ID];
		nodes->id = id;
	}
	if (!f.val[LB_SERVER_ID_LEN]) {
		qg_cfg_error_missing(ctx, node, &lb_section, "server_id_len");
		ok = 0;
	} else if (qg_cfg_u32(ctx, f.val[LB_SERVER_ID_LEN], "server_id_len", QG_QUIC_LB_MIN_SID_LEN,
			      QG_QUIC_LB_MAX_SID_LEN, &sid)) {
		ok = 0;
	} else {
		nodes->server_id_len = f.val[LB_SERVER_ID_LEN];
		nodes->sid = sid;
	}
	if (!f.val[LB_NONCE_LEN]) {
		qg_cfg_error_missing(ctx, node, &lb_section, "nonce_len");
		ok = 0;
	} else if (qg_cfg_u32(ctx, f.val[LB_NONCE_LEN], "nonce_len", QG_QUIC_LB_MIN_NONCE_LEN,
			      QG_QUIC_LB_MAX_NONCE_LEN, &nonce)) {
		ok = 0;
	} else if (sid && sid + nonce > QG_QUIC_LB_MAX_PAYLOAD_LEN) {
		qg_cfg_error(
			ctx, f.val[LB_NONCE_LEN],
			"nonce_len: server_id_len %u + nonce_len %u = %u, more than %d (a CID is at most "
			"%d bytes with its first octet)",
			sid, nonce, sid + nonce, QG_QUIC_LB_MAX_PAYLOAD_LEN, QG_QUIC_LB_MAX_CID_LEN);
		ok = 0;
	}
	if (f.val[LB_KEY]) {
		if (load_key(ctx, f.val[LB_KEY], e->key))
			ok = 0;
		else
			e->has_key = 1;
	}
	if (!ok)
		return -EINVAL;
	e->config_id = (uint8_t)id;
	e->server_id_len = (uint8_t)sid;
	e->nonce_len = (uint8_t)nonce;
	return 0;
}

static void load_lb(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_quic *q,
		    struct qg_cfg_sid_rule *rule)
{
	struct lb_nodes nodes[QG_CONFIG_QUIC_MAX_LB];
	struct qg_config_quic_lb entries[QG_CONFIG_QUIC_MAX_LB];
	int valid[QG_CONFIG_QUIC_MAX_LB], single;
	size_t n, i, j;

	/* Whatever goes wrong below is reported; the backends are only checked against a usable length. */
	rule->need = QG_CFG_SID_UNKNOWN;
	/* One configuration may be written as a mapping (quic_lb: {config_id: ...}), several as a list. */
	single = node->type == YAML_MAPPING_NODE;
	if (!single && qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "lb", " of QUIC-LB configurations"))
		return;
	n = single ? 1 : qg_cfg_seq_len(node);
	if (n == 0) {
		qg_cfg_error(ctx, node,
			     "lb: no configurations (expected 1..%d; leave lb out to route without QUIC-LB)",
			     QG_CONFIG_QUIC_MAX_LB);
		return;
	}
	/* Two cover a key rotation: servers move to the new config_id while the old CIDs still route. */
	if (n > QG_CONFIG_QUIC_MAX_LB) {
		qg_cfg_error(
			ctx, node,
			"lb: %zu configurations, max %d (the current one and the next, for key rotation)", n,
			QG_CONFIG_QUIC_MAX_LB);
		n = QG_CONFIG_QUIC_MAX_LB;
	}
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = single ? node : seq_item(ctx, node, i);

		valid[i] = item && !load_lb_entry(ctx, item, &entries[i], &nodes[i]);
	}
	/* A backend has one server ID, which it encodes under every config_id. */
	for (i = 1; i < n && nodes[0].server_id_len; i++) {
		if (!nodes[i].server_id_len)
			continue;
		if (nodes[i].sid != nodes[0].sid) {
			qg_cfg_error(
				ctx, nodes[i].server_id_len,
				"server_id_len: %u differs from %u of the first lb configuration (line %d); "
				"all lb configurations share one server ID length",
				nodes[i].sid, nodes[0].sid, qg_cfg_node_line(nodes[0].server_id_len));
			valid[i] = 0;
		}
	}
	/* The config_id is all a CID says about which configuration made it. */
	for (i = 1; i < n; i++) {
		for (j = 0; nodes[i].config_id && j < i; j++) {
			if (!nodes[j].config_id || nodes[j].id != nodes[i].id)
				continue;
			qg_cfg_error(ctx, nodes[i].config_id, "duplicate config_id %u (first at line %d)",
				     nodes[i].id, qg_cfg_node_line(nodes[j].config_id));
			valid[i] = 0;
			break;
		}
	}
	for (i = 0; i < n; i++)
		if (valid[i])
			q->lb[q->n_lb++] = entries[i];
	if (nodes[0].server_id_len) {
		rule->need = QG_CFG_SID_REQUIRED;
		rule->len = nodes[0].sid;
	}
}

/* "0x" and exactly 8 hex digits, so a dropped digit cannot silently name another version. */
static int parse_version_hex(const char *s, uint32_t *out)
{
	uint8_t b[4];

	if (strncmp(s, "0x", 2) || hex_decode(s + 2, b, sizeof(b)))
		return -EINVAL;
	*out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return 0;
}

static int load_version(struct qg_cfg_ctx *ctx, const yaml_node_t *node, uint32_t *out)
{
	const char *s;
	uint32_t v;

	if (qg_cfg_scalar(ctx, node, "versions", &s))
		return -EINVAL;
	if (!strncmp(s, "0x", 2)) {
		if (parse_version_hex(s, &v)) {
			qg_cfg_error(
				ctx, node,
				"versions: '%.40s' is not a version (expected 0x and 8 hex digits such as "
				"0x00000001, or decimal)",
				s);
			return -EINVAL;
		}
		if (v == 0) {
			qg_cfg_error(ctx, node, "versions: %s is out of range (0x00000001..0xffffffff)", s);
			return -EINVAL;
		}
	} else if ((s[0] >= '0' && s[0] <= '9') || s[0] == '-') {
		if (qg_cfg_u32(ctx, node, "versions", 1, UINT32_MAX, &v))
			return -EINVAL;
	} else {
		qg_cfg_error(ctx, node,
			     "versions: '%.40s' is not a version (expected 0x and 8 hex digits such as "
			     "0x00000001, "
			     "or decimal)",
			     s);
		return -EINVAL;
	}
	/* RFC 9000 Section 15: these exist only to exercise Version Negotiation, no endpoint speaks one. */
	if ((v & 0x0f0f0f0fu) == 0x0a0a0a0au) {
		qg_cfg_error(
			ctx, node,
			"versions: 0x%08x is a reserved version (0x?a?a?a?a only forces Version Negotiation)",
			v);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static void load_versions(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_quic *q)
{
	const yaml_node_t *where[QG_CONFIG_QUIC_MAX_VERSIONS];
	size_t n, i, j;
	uint32_t v;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "versions",
			       " of QUIC versions such as [0x00000001]"))
		return;
	n = qg_cfg_seq_len(node);
	/* An empty list would answer every client with Version Negotiation: nothing could connect. */
	if (n == 0) {
		qg_cfg_error(ctx, node,
			     "versions: no versions (expected 1..%d; leave versions out to forward every "
			     "version to the backends)",
			     QG_CONFIG_QUIC_MAX_VERSIONS);
		return;
	}
	if (n > QG_CONFIG_QUIC_MAX_VERSIONS) {
		qg_cfg_error(ctx, node, "versions: %zu entries, max %d", n, QG_CONFIG_QUIC_MAX_VERSIONS);
		n = QG_CONFIG_QUIC_MAX_VERSIONS;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);

		if (!item || load_version(ctx, item, &v))
			continue;
		for (j = 0; j < q->n_versions; j++)
			if (q->versions[j] == v)
				break;
		if (j < q->n_versions) {
			qg_cfg_error(ctx, item,
				     "versions: 0x%08x is listed twice (first at line %d, column %d)", v,
				     qg_cfg_node_line(where[j]), (int)where[j]->start_mark.column + 1);
			continue;
		}
		where[q->n_versions] = item;
		q->versions[q->n_versions++] = v;
	}
}

void qg_cfg_quic(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_quic *q,
		 struct qg_cfg_sid_rule *rule)
{
	struct fields f;
	int val;

	rule->need = QG_CFG_SID_UNKNOWN;
	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "quic", ""))
		return;
	rule->need = QG_CFG_SID_NONE;
	qg_cfg_map_fields(ctx, node, &quic_section, &f);
	if (f.val[QK_LB])
		load_lb(ctx, f.val[QK_LB], q, rule);
	if (f.val[QK_SHORT_DCID_LEN])
		qg_cfg_u32(ctx, f.val[QK_SHORT_DCID_LEN], "short_dcid_len", 0, QG_CONFIG_QUIC_CID_MAX,
			   &q->short_dcid_len);
	if (f.val[QK_VERSIONS])
		load_versions(ctx, f.val[QK_VERSIONS], q);
	if (f.val[QK_MIN_INITIAL_SIZE])
		qg_cfg_u32(ctx, f.val[QK_MIN_INITIAL_SIZE], "min_initial_size", 0, MIN_INITIAL_MAX,
			   &q->min_initial_size);
	if (f.val[QK_NEW_CONN_RATE])
		qg_cfg_u32(ctx, f.val[QK_NEW_CONN_RATE], "new_conn_rate", 0, NEW_CONN_RATE_MAX,
			   &q->new_conn_rate);
	if (f.val[QK_NEW_CONN_BURST])
		qg_cfg_u32(ctx, f.val[QK_NEW_CONN_BURST], "new_conn_burst", 1, NEW_CONN_BURST_MAX,
			   &q->new_conn_burst);
	if (f.val[QK_RETRY] &&
	    !qg_cfg_enum(ctx, f.val[QK_RETRY], "retry", retry_values, QG_CFG_NELEM(retry_values), &val))
		q->retry = (enum qg_config_retry)val;
}

void qg_cfg_quic_service_keys(struct qg_cfg_ctx *ctx, const yaml_node_t *lb, const yaml_node_t *versions,
			      const yaml_node_t *retry, struct qg_config_quic *q,
			      struct qg_cfg_sid_rule *rule)
{
	int val;

	if (lb) {
		if (q->n_lb)
			qg_cfg_error(ctx, lb,
				     "quic_lb: QUIC-LB is already configured in quic.lb; keep one of them");
		else
			load_lb(ctx, lb, q, rule);
	}
	if (versions) {
		if (q->n_versions)
			qg_cfg_error(ctx, versions,
				     "versions: already given in quic.versions; keep one of them");
		else
			load_versions(ctx, versions, q);
	}
	if (retry && !qg_cfg_enum(ctx, retry, "retry", retry_values, QG_CFG_NELEM(retry_values), &val))
		q->retry = (enum qg_config_retry)val;
}

static void format_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int sid_ref_cmp(const void *a, const void *b)
{
	const struct qg_config_backend *x = *(const struct qg_config_backend *const *)a;
	const struct qg_config_backend *y = *(const struct qg_config_backend *const *)b;
	int c = memcmp(x->server_id, y->server_id, sizeof(x->server_id));

	/* Same ID: keep document order so the first of a run is the original. */
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/* Two backends with one server ID would receive each other's connections after the handshake. */
static int check_duplicate_server_ids(struct qg_cfg_ctx *ctx, struct qg_config_service *svc,
				      const struct qg_cfg_bk_nodes *nodes)
{
	struct qg_config_backend **refs;
	size_t i, n = 0, first = 0;
	char text[2 * QG_CONFIG_QUIC_SID_MAX + 1];

	refs = calloc(svc->n_backends ? svc->n_backends : 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (i = 0; i < svc->n_backends; i++)
		if (svc->backends[i].server_id_len)
			refs[n++] = &svc->backends[i];
	qsort(refs, n, sizeof(*refs), sid_ref_cmp);
	for (i = 1; i < n; i++) {
		if (memcmp(refs[i]->server_id, refs[first]->server_id, sizeof(refs[i]->server_id))) {
			first = i;
			continue;
		}
		format_hex(refs[i]->server_id, refs[i]->server_id_len, text);
		qg_cfg_error(ctx, nodes[refs[i] - svc->backends].sid_val,
			     "duplicate server_id %s (first at line %d)", text,
			     qg_cfg_node_line(nodes[refs[first] - svc->backends].sid_val));
	}
	free(refs);
	return 0;
}

int qg_cfg_quic_server_ids(struct qg_cfg_ctx *ctx, struct qg_config_service *svc,
			   const struct qg_cfg_sid_rule *rule, const struct qg_cfg_bk_nodes *nodes)
{
	char addr[QG_ADDR_STRLEN];
	uint32_t i;

	if (rule->need == QG_CFG_SID_UNKNOWN)
		return 0;
	for (i = 0; i < svc->n_backends; i++) {
		const struct qg_cfg_bk_nodes *bn = &nodes[i];
		struct qg_config_backend *bk = &svc->backends[i];
		const char *s;

		if (!bn->map)
			continue;
		if (rule->need == QG_CFG_SID_NONE) {
			/* Refused rather than ignored: nothing would ever route on it. */
			if (bn->sid_key)
				qg_cfg_error(
					ctx, bn->sid_key,
					"server_id is only allowed when the service has quic.lb (QUIC-LB) "
					"configurations");
			continue;
		}
		if (!bn->sid_val) {
			if (bn->addr)
				qg_cfg_error(
					ctx, bn->map,
					"backend %s is missing required key 'server_id' (the service has "
					"quic.lb)",
					qg_addr_format(&bk->addr, addr, sizeof(addr)));
			else
				qg_cfg_error(ctx, bn->map,
					     "backend is missing required key 'server_id' (the service has "
					     "quic.lb)");
			continue;
		}
		if (qg_cfg_scalar(ctx, bn->sid_val, "server_id", &s))
			continue;
		if (hex_decode(s, bk->server_id, rule->len)) {
			qg_cfg_error(ctx, bn->sid_val, "server_id: '%.40s' is not hex of %u byte%s", s,
				     rule->len, rule->len == 1 ? "" : "s");
			continue;
		}
		bk->server_id_len = (uint8_t)rule->len;
	}
	return check_duplicate_server_ids(ctx, svc, nodes);
}
