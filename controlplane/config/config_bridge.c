/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bluetooth in the configuration: backend paths (an address, bt://BDADDR/PSM,
 * bt-le://BDADDR/PSM, or a list of paths) and the bridges section. Like the
 * rest of the loader, every problem is reported at its place and nothing
 * half-checked is handed out. The Bluetooth rules checked here (PSM parity,
 * LE PSM range) are the ones the kernel would otherwise refuse at bind or
 * connect time, long after the file was declared valid.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define BDADDR_TEXT_LEN 17 /* "AA:BB:CC:DD:EE:FF" */
#define ADAPTER_ID_MAX	65535u

enum {
	BR_TYPE,
	BR_ADAPTER,
	BR_TRANSPORT,
	BR_PSM,
	BR_SERVICE,
	BR_MAX_LINKS,
	BR_SECURITY,
	BR_ALLOW,
	BR_N
};
static const char *const bridge_keys[BR_N] = { "type",	  "adapter",   "transport", "psm",
					       "service", "max_links", "security",  "allow" };
static const struct section bridge_section = { "bridge", "in bridge", bridge_keys, BR_N };

static const struct qg_cfg_enum type_values[1] = {
	{ "bluetooth", QG_CONFIG_BRIDGE_BLUETOOTH, NULL },
};

static const struct qg_cfg_enum transport_values[2] = {
	{ "bredr", QG_CONFIG_BT_BREDR, NULL },
	{ "le", QG_CONFIG_BT_LE, NULL },
};

static const struct qg_cfg_enum security_values[3] = {
	{ "low", QG_CONFIG_BT_SEC_LOW, NULL },
	{ "medium", QG_CONFIG_BT_SEC_MEDIUM, NULL },
	{ "high", QG_CONFIG_BT_SEC_HIGH, NULL },
};

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

/* Exactly "AA:BB:CC:DD:EE:FF" in len bytes of s. */
static int parse_bdaddr(const char *s, size_t len, uint8_t out[6])
{
	int hi, lo;

	if (len != BDADDR_TEXT_LEN)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		hi = hex_digit(s[i * 3]);
		lo = hex_digit(s[i * 3 + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void format_bdaddr(const uint8_t a[6], char *buf, size_t size)
{
	snprintf(buf, size, "%02X:%02X:%02X:%02X:%02X:%02X", a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* BDADDR_ANY and the broadcast address name no device. */
static int bdaddr_is_device(const uint8_t a[6])
{
	static const uint8_t any[6], all[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return memcmp(a, any, 6) && memcmp(a, all, 6);
}

/*
 * A PSM as hex with 0x (how the Bluetooth specifications write them) or
 * plain decimal, 1..0xffff, in len bytes of s.
 */
static int parse_psm(const char *s, size_t len, uint16_t *out)
{
	uint32_t v = 0;
	size_t i = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (len > 6)
			return -EINVAL;
		for (i = 2; i < len; i++) {
			int d = hex_digit(s[i]);

			if (d < 0)
				return -EINVAL;
			v = v << 4 | (uint32_t)d;
		}
	} else {
		if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
			return -EINVAL;
		for (i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			v = v * 10 + (uint32_t)(s[i] - '0');
		}
	}
	if (v == 0 || v > 0xffff)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/*
 * What the kernel and the specification accept. BR/EDR (Core spec, Vol 3,
 * Part A, 4.2): odd, and the least significant bit of the most significant
 * octet 0. LE credit-based channels: 0x0001..0x00ff.
 */
static const char *psm_problem(int le, uint16_t psm)
{
	if (le)
		return psm > 0xff ? "is out of range for LE (0x0001..0x00ff; 0x0080..0x00ff are free for "
				    "applications)"
				  : NULL;
	return (psm & 0x0101) != 0x0001 ? "is not valid for BR/EDR (odd, with bit 8 clear, e.g. 0x1001; "
					  "0x1001 and up are free for applications)"
					: NULL;
}

static int bt_path(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, const char *text,
		   const char *rest, int le, struct qg_config_path *p)
{
	const char *slash = strchr(rest, '/');
	const char *why;

	if (!slash) {
		qg_cfg_error(ctx, node,
			     "%s: '%.60s' is not a Bluetooth path (expected %s://BDADDR/PSM, e.g. "
			     "%s://00:1A:7D:DA:71:13/%s)",
			     key, text, le ? "bt-le" : "bt", le ? "bt-le" : "bt", le ? "0x0080" : "0x1001");
		return -EINVAL;
	}
	if (parse_bdaddr(rest, (size_t)(slash - rest), p->bdaddr) || !bdaddr_is_device(p->bdaddr)) {
		qg_cfg_error(ctx, node,
			     "%s: '%.*s' is not a Bluetooth device address (expected six hex octets such as "
			     "00:1A:7D:DA:71:13)",
			     key, (int)(slash - rest > 40 ? 40 : slash - rest), rest);
		return -EINVAL;
	}
	if (parse_psm(slash + 1, strlen(slash + 1), &p->psm)) {
		qg_cfg_error(ctx, node,
			     "%s: PSM '%.20s' is not a number (expected 0x0001..0xffff or decimal)", key,
			     slash + 1);
		return -EINVAL;
	}
	why = psm_problem(le, p->psm);
	if (why) {
		qg_cfg_error(ctx, node, "%s: PSM 0x%04x %s", key, p->psm, why);
		return -EINVAL;
	}
	p->kind = le ? QG_CONFIG_PATH_BT_LE : QG_CONFIG_PATH_BT_BREDR;
	return 0;
}

/* One path value: IP:port, udp://IP:port, bt://BDADDR/PSM or bt-le://BDADDR/PSM. */
static int load_path(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key,
		     struct qg_config_path *p)
{
	const char *s;

	memset(p, 0, sizeof(*p));
	p->line = qg_cfg_node_line(node);
	p->column = (int)node->start_mark.column + 1;
	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	if (!strncmp(s, "bt://", 5))
		return bt_path(ctx, node, key, s, s + 5, 0, p);
	if (!strncmp(s, "bt-le://", 8))
		return bt_path(ctx, node, key, s, s + 8, 1, p);
	if (!strncmp(s, "udp://", 6)) {
		if (qg_addr_parse(s + 6, &p->addr) || p->addr.port == 0) {
			qg_cfg_error(ctx, node,
				     "%s: '%.60s' is not a udp path (expected udp://IPv4:port or "
				     "udp://[IPv6]:port, port 1..65535)",
				     key, s);
			return -EINVAL;
		}
		p->kind = QG_CONFIG_PATH_UDP;
		return 0;
	}
	if (strstr(s, "://")) {
		qg_cfg_error(ctx, node,
			     "%s: '%.60s' has an unknown scheme (expected IP:port, udp://IP:port, "
			     "bt://BDADDR/PSM or bt-le://BDADDR/PSM)",
			     key, s);
		return -EINVAL;
	}
	p->kind = QG_CONFIG_PATH_UDP;
	return qg_cfg_addr(ctx, node, key, &p->addr);
}

const yaml_node_t *qg_cfg_backend_paths(struct qg_cfg_ctx *ctx, const yaml_node_t *addr,
					const yaml_node_t *paths_key, const yaml_node_t *paths,
					struct qg_config_backend *bk)
{
	const yaml_node_t *items[QG_CONFIG_MAX_PATHS], *primary = NULL;
	size_t n, i;
	int bad = 0;

	if (addr && paths) {
		qg_cfg_error(ctx, paths_key,
			     "paths and address are exclusive (list every path of the backend in paths)");
		return NULL;
	}
	if (addr) {
		items[0] = addr;
		n = 1;
	} else {
		if (qg_cfg_expect_type(ctx, paths, YAML_SEQUENCE_NODE, "paths",
				       " of paths (IP:port, bt://BDADDR/PSM, ...)"))
			return NULL;
		n = qg_cfg_seq_len(paths);
		if (n == 0 || n > QG_CONFIG_MAX_PATHS) {
			qg_cfg_error(ctx, paths, "paths: %zu entries, expected 1..%d", n,
				     QG_CONFIG_MAX_PATHS);
			return NULL;
		}
		for (i = 0; i < n; i++) {
			items[i] = qg_cfg_node_get(ctx, paths->data.sequence.items.start[i]);
			if (!items[i])
				return NULL;
		}
	}
	for (i = 0; i < n; i++)
		bad |= load_path(ctx, items[i], addr ? "address" : "paths", &bk->paths[i]) != 0;
	if (bad)
		return NULL;
	bk->n_paths = (uint32_t)n;
	/* The dataplane relays over IP: addr is the first udp path, family 0 when there is none. */
	for (i = 0; i < n && !primary; i++) {
		if (bk->paths[i].kind == QG_CONFIG_PATH_UDP) {
			bk->addr = bk->paths[i].addr;
			primary = items[i];
		}
	}
	return primary;
}

/* A path as a search key: kind, then the endpoint or the device and PSM. */
static int path_cmp(const struct qg_config_path *x, const struct qg_config_path *y)
{
	int c = (int)x->kind - (int)y->kind;

	if (c)
		return c;
	if (x->kind == QG_CONFIG_PATH_UDP)
		return memcmp(&x->addr, &y->addr, sizeof(x->addr));
	c = memcmp(x->bdaddr, y->bdaddr, 6);
	return c ? c : (int)x->psm - (int)y->psm;
}

struct path_ref {
	const struct qg_config_path *p;
	int primary; /* the backend's addr: check_duplicate_backends reports those pairs */
};

static int path_ref_cmp(const void *a, const void *b)
{
	const struct path_ref *x = a, *y = b;
	int c = path_cmp(x->p, y->p);

	if (c)
		return c;
	/* Same path: document order, so the first of a run is the original. */
	if (x->p->line != y->p->line)
		return x->p->line - y->p->line;
	return x->p->column - y->p->column;
}

const char *qg_config_path_format(const struct qg_config_path *p, char *buf, size_t size)
{
	char a[QG_ADDR_STRLEN];

	if (p->kind == QG_CONFIG_PATH_UDP) {
		snprintf(buf, size, "%s", qg_addr_format(&p->addr, a, sizeof(a)));
		return buf;
	}
	format_bdaddr(p->bdaddr, a, sizeof(a));
	snprintf(buf, size, "%s://%s/0x%04x", p->kind == QG_CONFIG_PATH_BT_LE ? "bt-le" : "bt", a, p->psm);
	return buf;
}

static void path_text(const struct qg_config_path *p, char *buf, size_t size)
{
	qg_config_path_format(p, buf, size);
}

/*
 * No path twice in a service, within a backend or across backends: two
 * backends sharing a Bluetooth link would share its flows. Pairs of
 * backend addresses are left to the backends' own duplicate check (one
 * error per mistake).
 */
static int check_duplicate_paths(struct qg_cfg_ctx *ctx, const struct qg_config_service *svc)
{
	struct path_ref *refs;
	size_t n = 0, i, first = 0;

	for (i = 0; i < svc->n_backends; i++)
		n += svc->backends[i].n_paths;
	if (n < 2)
		return 0;
	refs = calloc(n, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	n = 0;
	for (i = 0; i < svc->n_backends; i++) {
		const struct qg_config_backend *bk = &svc->backends[i];
		int seen_udp = 0;

		for (uint32_t j = 0; j < bk->n_paths; j++) {
			refs[n].p = &bk->paths[j];
			refs[n].primary = bk->paths[j].kind == QG_CONFIG_PATH_UDP && !seen_udp;
			seen_udp |= bk->paths[j].kind == QG_CONFIG_PATH_UDP;
			n++;
		}
	}
	qsort(refs, n, sizeof(*refs), path_ref_cmp);
	for (i = 1; i < n; i++) {
		char text[80];

		if (path_cmp(refs[i].p, refs[first].p)) {
			first = i;
			continue;
		}
		if (refs[i].primary && refs[first].primary)
			continue;
		path_text(refs[i].p, text, sizeof(text));
		qg_cfg_error_at(ctx->errs, refs[i].p->line, refs[i].p->column,
				"duplicate path %s (first at line %d)", text, refs[first].p->line);
	}
	free(refs);
	return 0;
}

/* "hciN" or the adapter's own BDADDR. */
static void load_adapter(struct qg_cfg_ctx *ctx, const yaml_node_t *node, char *out, size_t size)
{
	uint8_t a[6];
	const char *s;
	size_t len;

	if (qg_cfg_scalar(ctx, node, "adapter", &s))
		return;
	len = strlen(s);
	if (len > 3 && len <= 8 && !strncmp(s, "hci", 3) && strspn(s + 3, "0123456789") == len - 3 &&
	    (s[3] != '0' || len == 4) && strtoul(s + 3, NULL, 10) <= ADAPTER_ID_MAX) {
		snprintf(out, size, "%s", s);
		return;
	}
	if (!parse_bdaddr(s, len, a) && bdaddr_is_device(a)) {
		format_bdaddr(a, out, size);
		return;
	}
	qg_cfg_error(ctx, node,
		     "adapter: '%.40s' is not an adapter (expected hciN such as hci0, or the adapter's "
		     "address such as 00:1A:7D:DA:71:13)",
		     s);
}

static void load_psm(struct qg_cfg_ctx *ctx, const yaml_node_t *node, int transport_ok,
		     struct qg_config_bridge *br)
{
	const char *s, *why;

	if (qg_cfg_scalar(ctx, node, "psm", &s))
		return;
	if (parse_psm(s, strlen(s), &br->psm)) {
		qg_cfg_error(ctx, node, "psm: '%.40s' is not a PSM (expected 0x0001..0xffff or decimal)", s);
		return;
	}
	/* With an invalid transport the PSM rules are unknown: one error for one mistake. */
	why = transport_ok ? psm_problem(br->transport == QG_CONFIG_BT_LE, br->psm) : NULL;
	if (why)
		qg_cfg_error(ctx, node, "psm: 0x%04x %s", br->psm, why);
}

static void load_service_ref(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const struct qg_config *cfg,
			     struct qg_config_bridge *br)
{
	char names[120];
	size_t off = 0;
	const char *s;
	uint32_t i;

	if (qg_cfg_scalar(ctx, node, "service", &s))
		return;
	for (i = 0; i < cfg->n_services; i++) {
		if (!strcmp(cfg->services[i].name, s)) {
			br->service = i;
			return;
		}
	}
	names[0] = '\0';
	for (i = 0; i < cfg->n_services && off < sizeof(names); i++)
		if (cfg->services[i].name[0])
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "",
						cfg->services[i].name);
	qg_cfg_error(ctx, node, "service: no service named '%.40s' (services: %s)", s, names);
}

static void load_allow(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_bridge *br)
{
	const yaml_node_t *first[QG_CONFIG_BRIDGE_ALLOW_MAX];
	size_t n, i;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "allow", " of device addresses"))
		return;
	n = qg_cfg_seq_len(node);
	if (n == 0) {
		qg_cfg_error(ctx, node, "allow: no addresses (leave allow out to accept any device)");
		return;
	}
	if (n > QG_CONFIG_BRIDGE_ALLOW_MAX) {
		qg_cfg_error(ctx, node, "allow: %zu entries, max %d", n, QG_CONFIG_BRIDGE_ALLOW_MAX);
		return;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = qg_cfg_node_get(ctx, node->data.sequence.items.start[i]);
		uint8_t *a = br->allow[br->n_allow];
		const char *s;
		uint32_t j;

		if (!item || qg_cfg_scalar(ctx, item, "allow", &s))
			continue;
		if (parse_bdaddr(s, strlen(s), a) || !bdaddr_is_device(a)) {
			qg_cfg_error(ctx, item,
				     "allow: '%.40s' is not a Bluetooth device address (expected six hex "
				     "octets such as 00:1A:7D:DA:71:13)",
				     s);
			continue;
		}
		for (j = 0; j < br->n_allow && memcmp(br->allow[j], a, 6); j++)
			;
		if (j < br->n_allow) {
			qg_cfg_error(ctx, item, "allow: %.40s is listed twice (first at line %d, column %d)",
				     s, qg_cfg_node_line(first[j]), (int)first[j]->start_mark.column + 1);
			continue;
		}
		first[br->n_allow++] = item;
	}
}

/* Returns the psm node when the entry has a usable listener identity, for the duplicate check. */
static const yaml_node_t *load_bridge(struct qg_cfg_ctx *ctx, const yaml_node_t *node,
				      const struct qg_config *cfg, struct qg_config_bridge *br)
{
	int val, transport_ok = 1, ok;
	struct fields f;

	snprintf(br->adapter, sizeof(br->adapter), "hci0");
	br->transport = QG_CONFIG_BT_BREDR;
	br->max_links = QG_CONFIG_BRIDGE_LINKS_DFLT;
	br->security = QG_CONFIG_BT_SEC_MEDIUM;
	br->line = qg_cfg_node_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(
			ctx, node,
			"bridges: each entry must be a mapping (type, adapter, psm, service, ...), found %s",
			qg_cfg_node_kind(node));
		return NULL;
	}
	qg_cfg_map_fields(ctx, node, &bridge_section, &f);
	if (!f.val[BR_TYPE])
		qg_cfg_error_missing(ctx, node, &bridge_section, "type");
	else if (!qg_cfg_enum(ctx, f.val[BR_TYPE], "type", type_values, QG_CFG_NELEM(type_values), &val))
		br->type = (enum qg_config_bridge_type)val;
	if (f.val[BR_ADAPTER])
		load_adapter(ctx, f.val[BR_ADAPTER], br->adapter, sizeof(br->adapter));
	if (f.val[BR_TRANSPORT]) {
		transport_ok = !qg_cfg_enum(ctx, f.val[BR_TRANSPORT], "transport", transport_values,
					    QG_CFG_NELEM(transport_values), &val);
		if (transport_ok)
			br->transport = (enum qg_config_bt_transport)val;
	}
	ok = transport_ok;
	if (!f.val[BR_PSM]) {
		qg_cfg_error_missing(ctx, node, &bridge_section, "psm");
		ok = 0;
	} else {
		unsigned before = ctx->errs->count + ctx->errs->dropped;

		load_psm(ctx, f.val[BR_PSM], transport_ok, br);
		ok &= ctx->errs->count + ctx->errs->dropped == before;
	}
	if (!f.val[BR_SERVICE])
		qg_cfg_error_missing(ctx, node, &bridge_section, "service");
	else
		load_service_ref(ctx, f.val[BR_SERVICE], cfg, br);
	if (f.val[BR_MAX_LINKS])
		qg_cfg_u32(ctx, f.val[BR_MAX_LINKS], "max_links", 1, QG_CONFIG_BRIDGE_LINKS_MAX,
			   &br->max_links);
	if (f.val[BR_SECURITY] && !qg_cfg_enum(ctx, f.val[BR_SECURITY], "security", security_values,
					       QG_CFG_NELEM(security_values), &val))
		br->security = (enum qg_config_bt_security)val;
	if (f.val[BR_ALLOW])
		load_allow(ctx, f.val[BR_ALLOW], br);
	return ok ? f.val[BR_PSM] : NULL;
}

/* One listener per adapter, transport and PSM: the second bind would fail with EADDRINUSE. */
static void check_duplicate_listeners(struct qg_cfg_ctx *ctx, const struct qg_config *cfg,
				      const yaml_node_t *const *psm)
{
	for (uint32_t i = 0; i < cfg->n_bridges; i++) {
		const struct qg_config_bridge *a = &cfg->bridges[i];

		for (uint32_t j = 0; psm[i] && j < i; j++) {
			const struct qg_config_bridge *b = &cfg->bridges[j];

			if (!psm[j] || a->psm != b->psm || a->transport != b->transport ||
			    strcmp(a->adapter, b->adapter))
				continue;
			qg_cfg_error(ctx, psm[i], "duplicate listener %s %s PSM 0x%04x (first at line %d)",
				     a->adapter, transport_values[a->transport].name, a->psm,
				     qg_cfg_node_line(psm[j]));
			break;
		}
	}
}

/*
 * The dpdk backend forwards frames it rewrites in place, and has no buffer
 * of its own to put a datagram from the bridge's rings in (io alloc_tx):
 * refuse Bluetooth with it here rather than at start.
 */
static void check_dpdk(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const struct qg_config *cfg)
{
	if (cfg->dataplane.io != QG_CONFIG_IO_DPDK)
		return;
	if (node && cfg->n_bridges) {
		qg_cfg_error(ctx, node,
			     "bridges: the dpdk backend cannot relay Bluetooth (use backend io_uring or "
			     "recvmmsg)");
		return;
	}
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		for (uint32_t b = 0; b < cfg->services[i].n_backends; b++) {
			const struct qg_config_backend *bk = &cfg->services[i].backends[b];

			for (uint32_t j = 0; j < bk->n_paths; j++) {
				char text[80];

				if (bk->paths[j].kind == QG_CONFIG_PATH_UDP)
					continue;
				path_text(&bk->paths[j], text, sizeof(text));
				qg_cfg_error_at(
					ctx->errs, bk->paths[j].line, bk->paths[j].column,
					"%s: the dpdk backend cannot relay to Bluetooth backends (use "
					"backend io_uring or recvmmsg)",
					text);
				return;
			}
		}
	}
}

int qg_cfg_bridges(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config *cfg)
{
	const yaml_node_t *psm[QG_CONFIG_MAX_BRIDGES] = { 0 };
	size_t n, i;
	int ret;

	for (i = 0; i < cfg->n_services; i++) {
		ret = check_duplicate_paths(ctx, &cfg->services[i]);
		if (ret)
			return ret;
	}
	if (!node) {
		check_dpdk(ctx, NULL, cfg);
		return 0;
	}
	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "bridges", " of bridges"))
		return 0;
	n = qg_cfg_seq_len(node);
	if (n == 0) {
		qg_cfg_error(ctx, node, "bridges: no bridges (leave bridges out to run without one)");
		return 0;
	}
	if (n > QG_CONFIG_MAX_BRIDGES) {
		qg_cfg_error(ctx, node, "bridges: %zu entries, max %d", n, QG_CONFIG_MAX_BRIDGES);
		n = QG_CONFIG_MAX_BRIDGES;
	}
	cfg->n_bridges = (uint32_t)n;
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = qg_cfg_node_get(ctx, node->data.sequence.items.start[i]);

		if (item)
			psm[i] = load_bridge(ctx, item, cfg, &cfg->bridges[i]);
	}
	check_duplicate_listeners(ctx, cfg, psm);
	check_dpdk(ctx, node, cfg);
	return 0;
}
