/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane.dpdk section: EAL arguments, pool and ring sizes, and the
 * ports with the addresses qgate owns on them. Checked as strictly as the
 * rest of the file: a gateway that is not on-link or a mistyped MAC would
 * otherwise only show up as silently unanswered traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "qgate/net.h"

enum {
	DK_EAL_ARGS,
	DK_MBUFS,
	DK_RX_DESC,
	DK_TX_DESC,
	DK_PORTS,
	DK_N
};
static const char *const dk_keys[DK_N] = { "eal_args", "mbufs", "rx_desc", "tx_desc", "ports" };
static const struct section dk_section = { "dpdk", "in dpdk", dk_keys, DK_N };

enum {
	PT_NAME,
	PT_ADDRESSES,
	PT_GATEWAY,
	PT_GATEWAY6,
	PT_NAT,
	PT_NEIGHBORS,
	PT_KERNEL_TAP,
	PT_N
};
static const char *const pt_keys[PT_N] = { "name",	    "addresses", "gateway",   "gateway6",
					   "nat_addresses", "neighbors", "kernel_tap" };
static const struct section pt_section = { "port", "in port", pt_keys, PT_N };

enum {
	NB_ADDRESS,
	NB_MAC,
	NB_N
};
static const char *const nb_keys[NB_N] = { "address", "mac" };
static const struct section nb_section = { "neighbor", "in neighbor", nb_keys, NB_N };

void qg_cfg_dpdk_defaults(struct qg_config_dpdk *d)
{
	memset(d, 0, sizeof(*d));
	d->mbufs = 16383; /* 2^n - 1: the mempool ring's optimum */
	d->rx_desc = 1024;
	d->tx_desc = 1024;
}

static const yaml_node_t *seq_item(struct qg_cfg_ctx *ctx, const yaml_node_t *seq, size_t i)
{
	return qg_cfg_node_get(ctx, seq->data.sequence.items.start[i]);
}

/* A plain IP address without port or brackets ("192.0.2.1", "2001:db8::1"); "/N" allowed when len != NULL. */
static int parse_ip(const char *s, struct qg_addr *out, int *len)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	long v;

	if (n == 0 || n >= sizeof(buf) || (slash && !len))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->ip) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->ip) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	if (len) {
		*len = -1;
		if (!slash)
			return 0;
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		v = strtol(slash + 1, &end, 10);
		if (*end || v > 128)
			return -EINVAL;
		*len = (int)v;
	}
	return 0;
}

static int cfg_ip(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, struct qg_addr *out)
{
	const char *s;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	if (parse_ip(s, out, NULL)) {
		qg_cfg_error(
			ctx, node,
			"%s: '%.60s' is not an IP address (expected e.g. 192.0.2.1 or \"2001:db8::1\", no "
			"port)",
			key, s);
		return -EINVAL;
	}
	return 0;
}

static int cfg_prefix(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_prefix *out)
{
	unsigned max;
	const char *s;
	int len;

	if (qg_cfg_scalar(ctx, node, "addresses", &s))
		return -EINVAL;
	if (parse_ip(s, &out->addr, &len) || len < 0) {
		qg_cfg_error(ctx, node,
			     "addresses: '%.60s' is not an address with a prefix length (expected e.g. "
			     "192.0.2.1/24 or \"2001:db8::1/64\")",
			     s);
		return -EINVAL;
	}
	max = out->addr.family == AF_INET ? 32 : 128;
	if ((unsigned)len > max) {
		qg_cfg_error(ctx, node, "addresses: prefix length %d of '%.60s' is out of range (0..%u)", len,
			     s, max);
		return -EINVAL;
	}
	out->len = (uint32_t)len;
	return 0;
}

/* 1 when ip lies in the prefix. */
static int prefix_covers(const struct qg_config_prefix *p, const struct qg_addr *ip)
{
	uint32_t full = p->len / 8, rest = p->len % 8;

	if (p->addr.family != ip->family || memcmp(p->addr.ip, ip->ip, full))
		return 0;
	if (rest == 0)
		return 1;
	return ((p->addr.ip[full] ^ ip->ip[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static void load_eal_args(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk *d)
{
	size_t n, i;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "eal_args", " of strings"))
		return;
	n = qg_cfg_seq_len(node);
	if (n > QG_CONFIG_DPDK_MAX_EAL_ARGS) {
		qg_cfg_error(ctx, node, "eal_args: %zu entries, max %d", n, QG_CONFIG_DPDK_MAX_EAL_ARGS);
		n = QG_CONFIG_DPDK_MAX_EAL_ARGS;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);
		const char *s;

		if (!item || qg_cfg_scalar(ctx, item, "eal_args", &s))
			continue;
		if (strlen(s) >= QG_CONFIG_DPDK_EAL_ARG_MAX) {
			qg_cfg_error(ctx, item, "eal_args: argument of %zu characters, max %d", strlen(s),
				     QG_CONFIG_DPDK_EAL_ARG_MAX - 1);
			continue;
		}
		memcpy(d->eal_args[d->n_eal_args++], s, strlen(s) + 1);
	}
}

static void load_addresses(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p)
{
	size_t n, i, j;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "addresses", " of IP/prefix entries"))
		return;
	n = qg_cfg_seq_len(node);
	if (n == 0 || n > QG_CONFIG_DPDK_MAX_ADDRS) {
		qg_cfg_error(ctx, node, "addresses: %zu entries, expected 1..%d", n,
			     QG_CONFIG_DPDK_MAX_ADDRS);
		n = n ? QG_CONFIG_DPDK_MAX_ADDRS : 0;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);
		struct qg_config_prefix pf;

		if (!item || cfg_prefix(ctx, item, &pf))
			continue;
		for (j = 0; j < p->n_addresses; j++)
			if (qg_addr_equal(&p->addresses[j].addr, &pf.addr))
				break;
		if (j < p->n_addresses) {
			qg_cfg_error(ctx, item, "addresses: address listed twice");
			continue;
		}
		p->addresses[p->n_addresses++] = pf;
	}
}

static void load_nat(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p)
{
	size_t n, i;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "nat_addresses", " of IP addresses"))
		return;
	n = qg_cfg_seq_len(node);
	if (n > QG_CONFIG_DPDK_MAX_NAT) {
		qg_cfg_error(ctx, node, "nat_addresses: %zu entries, max %d", n, QG_CONFIG_DPDK_MAX_NAT);
		n = QG_CONFIG_DPDK_MAX_NAT;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);

		if (item && !cfg_ip(ctx, item, "nat_addresses", &p->nat[p->n_nat]))
			p->n_nat++;
	}
}

static void load_neighbor(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p)
{
	struct qg_config_neighbor *nb = &p->neighbors[p->n_neighbors];
	struct fields f;
	const char *s;
	int ok = 1;

	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(ctx, node,
			     "neighbors: each entry must be a mapping such as {address: 192.0.2.2, mac: "
			     "\"02:00:00:00:00:02\"}, found %s",
			     qg_cfg_node_kind(node));
		return;
	}
	qg_cfg_map_fields(ctx, node, &nb_section, &f);
	if (!f.val[NB_ADDRESS]) {
		qg_cfg_error_missing(ctx, node, &nb_section, "address");
		ok = 0;
	} else if (cfg_ip(ctx, f.val[NB_ADDRESS], "address", &nb->addr)) {
		ok = 0;
	}
	if (!f.val[NB_MAC]) {
		qg_cfg_error_missing(ctx, node, &nb_section, "mac");
		ok = 0;
	} else if (!qg_cfg_scalar(ctx, f.val[NB_MAC], "mac", &s)) {
		if (qg_net_mac_parse(s, nb->mac)) {
			qg_cfg_error(ctx, f.val[NB_MAC],
				     "mac: '%.40s' is not an Ethernet address (expected e.g. "
				     "\"02:00:00:00:00:02\")",
				     s);
			ok = 0;
		}
	} else {
		ok = 0;
	}
	if (ok)
		p->n_neighbors++;
}

static void load_neighbors(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p)
{
	size_t n, i;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "neighbors", " of {address, mac} entries"))
		return;
	n = qg_cfg_seq_len(node);
	if (n > QG_CONFIG_DPDK_MAX_NEIGHBORS) {
		qg_cfg_error(ctx, node, "neighbors: %zu entries, max %d", n, QG_CONFIG_DPDK_MAX_NEIGHBORS);
		n = QG_CONFIG_DPDK_MAX_NEIGHBORS;
	}
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);

		if (item)
			load_neighbor(ctx, item, p);
	}
}

/* A gateway is reached by ARP/ND on the port itself: it must lie in one of the port's prefixes. */
static void load_gateway(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, int family,
			 struct qg_config_dpdk_port *p, struct qg_addr *out)
{
	char text[QG_ADDR_STRLEN];
	struct qg_addr gw;
	uint32_t i;

	if (cfg_ip(ctx, node, key, &gw))
		return;
	if (gw.family != family) {
		qg_cfg_error(ctx, node, "%s: expected an %s address (use %s for %s)", key,
			     family == AF_INET ? "IPv4" : "IPv6", family == AF_INET ? "gateway6" : "gateway",
			     family == AF_INET ? "IPv6" : "IPv4");
		return;
	}
	for (i = 0; i < p->n_addresses; i++)
		if (prefix_covers(&p->addresses[i], &gw))
			break;
	if (i == p->n_addresses) {
		inet_ntop(family, gw.ip, text, sizeof(text));
		qg_cfg_error(ctx, node, "%s: %s is not on-link (no address of port '%s' covers it)", key,
			     text, p->name);
		return;
	}
	*out = gw;
}

/* A Linux interface name qgate will create: 1..15 of [A-Za-z0-9_.-], not "." or "..". */
static void load_kernel_tap(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p)
{
	const char *s;
	size_t n;

	if (qg_cfg_scalar(ctx, node, "kernel_tap", &s))
		return;
	n = strlen(s);
	if (n == 0 || n >= sizeof(p->kernel_tap) ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789_.-") != n ||
	    !strcmp(s, ".") || !strcmp(s, "..")) {
		qg_cfg_error(ctx, node,
			     "kernel_tap: '%.40s' is not an interface name (1..%zu of letters, digits, '_', "
			     "'.', '-')",
			     s, sizeof(p->kernel_tap) - 1);
		return;
	}
	memcpy(p->kernel_tap, s, n + 1);
}

static void load_port(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk_port *p,
		      const yaml_node_t **name_node)
{
	struct fields f;
	const char *s;

	p->line = qg_cfg_node_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		qg_cfg_error(ctx, node,
			     "ports: each entry must be a mapping (name, addresses, ...), found %s",
			     qg_cfg_node_kind(node));
		return;
	}
	qg_cfg_map_fields(ctx, node, &pt_section, &f);
	if (!f.val[PT_NAME]) {
		qg_cfg_error_missing(ctx, node, &pt_section, "name");
	} else if (!qg_cfg_scalar(ctx, f.val[PT_NAME], "name", &s)) {
		if (strlen(s) >= sizeof(p->name))
			qg_cfg_error(ctx, f.val[PT_NAME], "name: '%.20s...' is too long (max %zu characters)",
				     s, sizeof(p->name) - 1);
		else {
			memcpy(p->name, s, strlen(s) + 1);
			*name_node = f.val[PT_NAME];
		}
	}
	if (!f.val[PT_ADDRESSES])
		qg_cfg_error_missing(ctx, node, &pt_section, "addresses");
	else
		load_addresses(ctx, f.val[PT_ADDRESSES], p);
	if (f.val[PT_GATEWAY])
		load_gateway(ctx, f.val[PT_GATEWAY], "gateway", AF_INET, p, &p->gateway);
	if (f.val[PT_GATEWAY6])
		load_gateway(ctx, f.val[PT_GATEWAY6], "gateway6", AF_INET6, p, &p->gateway6);
	if (f.val[PT_NAT])
		load_nat(ctx, f.val[PT_NAT], p);
	if (f.val[PT_NEIGHBORS])
		load_neighbors(ctx, f.val[PT_NEIGHBORS], p);
	if (f.val[PT_KERNEL_TAP])
		load_kernel_tap(ctx, f.val[PT_KERNEL_TAP], p);
}

static void load_ports(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dpdk *d)
{
	const yaml_node_t *names[QG_CONFIG_DPDK_MAX_PORTS] = { 0 };
	size_t n, i, j;

	if (qg_cfg_expect_type(ctx, node, YAML_SEQUENCE_NODE, "ports", " of ports"))
		return;
	n = qg_cfg_seq_len(node);
	if (n == 0 || n > QG_CONFIG_DPDK_MAX_PORTS) {
		qg_cfg_error(ctx, node, "ports: %zu entries, expected 1..%d", n, QG_CONFIG_DPDK_MAX_PORTS);
		n = n ? QG_CONFIG_DPDK_MAX_PORTS : 0;
	}
	d->n_ports = (uint32_t)n;
	for (i = 0; i < n; i++) {
		const yaml_node_t *item = seq_item(ctx, node, i);

		if (item)
			load_port(ctx, item, &d->ports[i], &names[i]);
		for (j = 0; names[i] && j < i; j++) {
			if (names[j] && !strcmp(d->ports[i].name, d->ports[j].name)) {
				qg_cfg_error(ctx, names[i], "duplicate port '%s' (first at line %d)",
					     d->ports[i].name, qg_cfg_node_line(names[j]));
				break;
			}
		}
		for (j = 0; d->ports[i].kernel_tap[0] && j < i; j++) {
			if (!strcmp(d->ports[i].kernel_tap, d->ports[j].kernel_tap)) {
				qg_cfg_error(ctx, item, "kernel_tap: '%s' is already port %s's (line %d)",
					     d->ports[i].kernel_tap, d->ports[j].name, d->ports[j].line);
				break;
			}
		}
	}
}

int qg_cfg_dpdk(struct qg_cfg_ctx *ctx, const yaml_node_t *node, int need_ports, struct qg_config_dpdk *d)
{
	struct fields f;

	if (qg_cfg_expect_type(ctx, node, YAML_MAPPING_NODE, "dpdk", ""))
		return 0;
	qg_cfg_map_fields(ctx, node, &dk_section, &f);
	if (f.val[DK_EAL_ARGS])
		load_eal_args(ctx, f.val[DK_EAL_ARGS], d);
	if (f.val[DK_MBUFS])
		qg_cfg_u32(ctx, f.val[DK_MBUFS], "mbufs", 1023, 1048575, &d->mbufs);
	if (f.val[DK_RX_DESC])
		qg_cfg_u32(ctx, f.val[DK_RX_DESC], "rx_desc", 64, 32768, &d->rx_desc);
	if (f.val[DK_TX_DESC])
		qg_cfg_u32(ctx, f.val[DK_TX_DESC], "tx_desc", 64, 32768, &d->tx_desc);
	if (f.val[DK_PORTS])
		load_ports(ctx, f.val[DK_PORTS], d);
	else if (need_ports)
		qg_cfg_error_missing(ctx, node, &dk_section, "ports");
	return 0;
}
