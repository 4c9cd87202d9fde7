/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checks of single configuration values (integers, durations, addresses,
 * names, enumerations, CPUs), the ordered error list they feed, and the small
 * helpers on a loaded configuration.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* Beyond any Linux NR_CPUS; only bounds the number before the affinity check. */
#define CORE_ID_MAX 65535u

/*
 * The one place that says what this build can run: a non-NULL .unavailable
 * makes the value an error with that text.
 */
const struct qg_cfg_enum qg_cfg_io_values[3] = {
	{ "io_uring", QG_CONFIG_IO_URING, NULL },
	{ "recvmmsg", QG_CONFIG_IO_RECVMMSG, NULL },
#ifdef QGATE_HAVE_DPDK
	{ "dpdk", QG_CONFIG_IO_DPDK, NULL },
#else
	{ "dpdk", QG_CONFIG_IO_DPDK,
	  "dataplane backend dpdk is not available in this build (qgate was built without DPDK)" },
#endif
};

const struct qg_cfg_enum qg_cfg_proto_values[2] = {
	{ "udp", QG_CONFIG_PROTO_UDP, NULL },
	{ "quic", QG_CONFIG_PROTO_QUIC, NULL },
};

const struct qg_cfg_enum qg_cfg_policy_values[3] = {
	{ "maglev", QG_CONFIG_POLICY_MAGLEV, NULL },
	{ "wrr", QG_CONFIG_POLICY_WRR, NULL },
	{ "least_conn", QG_CONFIG_POLICY_LEAST_CONN, NULL },
};

const struct qg_cfg_enum qg_cfg_hash_values[3] = {
	{ "five_tuple", QG_CONFIG_HASH_FIVE_TUPLE, NULL },
	{ "src_ip", QG_CONFIG_HASH_SRC_IP, NULL },
	{ "src_ip_port", QG_CONFIG_HASH_SRC_IP_PORT, NULL },
};

/* Only the two YAML 1.2 spellings: "yes"/"on" are too easy to mistype into something else. */
const struct qg_cfg_enum qg_cfg_bool_values[2] = {
	{ "false", 0, NULL },
	{ "true", 1, NULL },
};

static int error_before(const struct qg_config_error *e, int line, int column)
{
	return e->line < line || (e->line == line && e->column <= column);
}

/*
 * Problems are found in walk order, not document order (a missing key is
 * noticed after the keys that are there, duplicates after both copies), so
 * keep the list sorted and, when full, keep the earliest ones: the user fixes
 * a file from the top.
 */
static void error_vadd(struct qg_config_errors *errs, int line, int column, const char *fmt, va_list ap)
{
	unsigned pos = errs->count;

	/* Equal places keep the order found: the first check to fail reads first. */
	while (pos > 0 && !error_before(&errs->items[pos - 1], line, column))
		pos--;
	if (errs->count == QG_CONFIG_MAX_ERRORS) {
		errs->dropped++;
		if (pos == QG_CONFIG_MAX_ERRORS)
			return;
		errs->count--;
	}
	memmove(&errs->items[pos + 1], &errs->items[pos], (errs->count - pos) * sizeof(errs->items[0]));
	errs->items[pos].line = line;
	errs->items[pos].column = column;
	vsnprintf(errs->items[pos].msg, sizeof(errs->items[pos].msg), fmt, ap);
	errs->count++;
}

void qg_cfg_error_at(struct qg_config_errors *errs, int line, int column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vadd(errs, line, column, fmt, ap);
	va_end(ap);
}

void qg_cfg_error(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* libyaml marks are 0-based; editors count from 1. */
	error_vadd(ctx->errs, (int)node->start_mark.line + 1, (int)node->start_mark.column + 1, fmt, ap);
	va_end(ap);
}

int qg_cfg_is_null(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

const char *qg_cfg_node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
		return qg_cfg_is_null(node) ? "an empty value" : "a scalar";
	default:
		return "nothing";
	}
}

int qg_cfg_scalar(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, const char **s)
{
	if (node->type != YAML_SCALAR_NODE || qg_cfg_is_null(node)) {
		qg_cfg_error(ctx, node, "%s: expected a value, found %s", key, qg_cfg_node_kind(node));
		return -EINVAL;
	}
	*s = (const char *)node->data.scalar.value;
	/* A quoted "\0" would silently cut the value short in every C string use. */
	if (strlen(*s) != node->data.scalar.length) {
		qg_cfg_error(ctx, node, "%s: value contains a NUL character", key);
		return -EINVAL;
	}
	return 0;
}

enum num_status {
	NUM_OK,
	NUM_NEGATIVE,
	NUM_JUNK,
	NUM_LEADING_ZERO,
	NUM_TOO_LARGE,
};

/*
 * Plain decimal only: YAML 1.1 readers (PyYAML and friends) take 010 as octal
 * and 0x10 as hex, so accepting those would let tools read another number
 * than qgate. Stops at the first non-digit and returns where in *end.
 */
static enum num_status parse_decimal(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '-' && p[1] >= '0' && p[1] <= '9')
		return NUM_NEGATIVE;
	if (*p < '0' || *p > '9')
		return NUM_JUNK;
	if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		return NUM_LEADING_ZERO;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NUM_TOO_LARGE;
		v = v * 10 + d;
	}
	*out = v;
	*end = p;
	return NUM_OK;
}

int qg_cfg_u32(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, uint32_t min, uint32_t max,
	       uint32_t *out)
{
	const char *s, *end = NULL;
	uint64_t v = 0;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	switch (parse_decimal(s, &v, &end)) {
	case NUM_OK:
		if (*end == '\0')
			break;
		/* fall through */
	case NUM_JUNK:
		qg_cfg_error(ctx, node, "%s: '%.40s' is not a decimal integer (expected %u..%u)", key, s, min,
			     max);
		return -EINVAL;
	case NUM_NEGATIVE:
		qg_cfg_error(ctx, node, "%s: %.40s is negative (expected %u..%u)", key, s, min, max);
		return -EINVAL;
	case NUM_LEADING_ZERO:
		qg_cfg_error(ctx, node, "%s: '%.40s' has a leading zero (write plain decimal, %u..%u)", key,
			     s, min, max);
		return -EINVAL;
	case NUM_TOO_LARGE:
		v = UINT64_MAX;
		break;
	}
	if (v < min || v > max) {
		qg_cfg_error(ctx, node, "%s: %.40s is out of range (%u..%u)", key, s, min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Milliseconds in the largest unit that divides them exactly, for range messages. */
static void format_ms(uint32_t ms, char *buf, size_t size)
{
	if (ms == 0)
		snprintf(buf, size, "0");
	else if (ms % 3600000 == 0)
		snprintf(buf, size, "%uh", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, size, "%um", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%us", ms / 1000);
	else
		snprintf(buf, size, "%ums", ms);
}

int qg_cfg_duration(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, uint32_t min_ms,
		    uint32_t max_ms, uint32_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 } };
	char lo[16], hi[16];
	const char *s, *end = NULL;
	uint64_t v = 0;
	size_t i;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	format_ms(min_ms, lo, sizeof(lo));
	format_ms(max_ms, hi, sizeof(hi));
	switch (parse_decimal(s, &v, &end)) {
	case NUM_OK:
		for (i = 0; i < QG_CFG_NELEM(units); i++)
			if (!strcmp(end, units[i].suffix))
				break;
		if (i == QG_CFG_NELEM(units))
			goto junk;
		v = v > UINT64_MAX / units[i].ms ? UINT64_MAX : v * units[i].ms;
		break;
	case NUM_NEGATIVE:
		qg_cfg_error(ctx, node, "%s: %.40s is negative (expected %s..%s)", key, s, lo, hi);
		return -EINVAL;
	case NUM_LEADING_ZERO:
		qg_cfg_error(ctx, node, "%s: '%.40s' has a leading zero (write plain decimal, %s..%s)", key,
			     s, lo, hi);
		return -EINVAL;
	case NUM_TOO_LARGE:
		v = UINT64_MAX;
		break;
	case NUM_JUNK:
		goto junk;
	}
	if (v < min_ms || v > max_ms) {
		qg_cfg_error(ctx, node, "%s: %.40s is out of range (%s..%s)", key, s, lo, hi);
		return -EINVAL;
	}
	*out_ms = (uint32_t)v;
	return 0;
junk:
	qg_cfg_error(
		ctx, node,
		"%s: '%.40s' is not a duration (expected an integer with unit ms, s, m or h, e.g. 500ms, "
		"30s, 2m; a bare integer is seconds)",
		key, s);
	return -EINVAL;
}

int qg_cfg_enum(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key,
		const struct qg_cfg_enum *values, size_t n, int *out)
{
	char valid[128];
	const char *s;
	size_t i, off = 0;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (strcmp(s, values[i].name))
			continue;
		if (values[i].unavailable) {
			qg_cfg_error(ctx, node, "%s", values[i].unavailable);
			return -EINVAL;
		}
		*out = values[i].value;
		return 0;
	}
	valid[0] = '\0';
	for (i = 0; i < n && off < sizeof(valid); i++)
		off += (size_t)snprintf(valid + off, sizeof(valid) - off, "%s%s", i ? ", " : "",
					values[i].name);
	qg_cfg_error(ctx, node, "%s: unknown value '%.40s' (valid: %s)", key, s, valid);
	return -EINVAL;
}

int qg_cfg_addr(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, struct qg_addr *out)
{
	struct qg_addr a;
	const char *s;

	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	if (qg_addr_parse(s, &a)) {
		qg_cfg_error(
			ctx, node,
			"%s: '%.60s' is not an address (expected IPv4:port or [IPv6]:port, port 1..65535)",
			key, s);
		return -EINVAL;
	}
	if (a.port == 0) {
		qg_cfg_error(ctx, node, "%s: port 0 is out of range (1..65535)", key);
		return -EINVAL;
	}
	*out = a;
	return 0;
}

int qg_cfg_name(struct qg_cfg_ctx *ctx, const yaml_node_t *node, char *out, size_t size)
{
	const char *s, *p;
	size_t len;

	if (qg_cfg_scalar(ctx, node, "name", &s))
		return -EINVAL;
	len = strlen(s);
	if (len == 0) {
		qg_cfg_error(ctx, node, "name: must not be empty (1..%zu characters)", size - 1);
		return -EINVAL;
	}
	if (len > size - 1) {
		qg_cfg_error(ctx, node, "name: '%.20s...' is too long (%zu characters, max %zu)", s, len,
			     size - 1);
		return -EINVAL;
	}
	/* Names end up in logs, stats lines and file names: keep them free of spaces and quotes. */
	for (p = s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '.' || *p == '-')
			continue;
		qg_cfg_error(ctx, node, "name: '%s' contains '%c' (allowed: letters, digits, '_', '.', '-')",
			     s, *p);
		return -EINVAL;
	}
	memcpy(out, s, len + 1);
	return 0;
}

int qg_cfg_is_prime(uint32_t n)
{
	uint32_t d;

	if (n < 2)
		return 0;
	for (d = 2; (uint64_t)d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

static int query_cpus(cpu_set_t **set, size_t *setsize)
{
	size_t ncpus;

	/* The kernel refuses a mask smaller than its own CPU count: grow until it fits. */
	for (ncpus = 1024; ncpus <= (1u << 20); ncpus *= 2) {
		cpu_set_t *s = CPU_ALLOC(ncpus);
		size_t size = CPU_ALLOC_SIZE(ncpus);

		if (!s)
			return -ENOMEM;
		CPU_ZERO_S(size, s);
		if (sched_getaffinity(0, size, s) == 0) {
			*set = s;
			*setsize = size;
			return 0;
		}
		CPU_FREE(s);
		if (errno != EINVAL)
			return -errno;
	}
	return -EINVAL;
}

/*
 * The CPUs this process may use, as the first load saw them. After start the
 * daemon moves its control thread off the worker cores (daemon/affinity.c),
 * and a reload is validated on that thread: asking the kernel again would
 * call the running workers' own cores unavailable.
 */
static pthread_once_t first_once = PTHREAD_ONCE_INIT;
static cpu_set_t *first_set;
static size_t first_size;
static int first_rc;

static void first_query(void)
{
	first_rc = query_cpus(&first_set, &first_size);
}

/* A copy of the allowed CPUs for the caller to CPU_FREE(). */
static int allowed_cpus(cpu_set_t **set, size_t *setsize)
{
	pthread_once(&first_once, first_query);
	if (first_rc)
		return first_rc;
	*set = CPU_ALLOC(first_size * 8);
	if (!*set)
		return -ENOMEM;
	memcpy(*set, first_set, first_size);
	*setsize = first_size;
	return 0;
}

static void format_cpus(const cpu_set_t *set, size_t setsize, char *buf, size_t size)
{
	size_t ncpus = setsize * 8, cpu, off = 0;
	int n;

	buf[0] = '\0';
	for (cpu = 0; cpu < ncpus; cpu++) {
		size_t last = cpu;

		if (!CPU_ISSET_S(cpu, setsize, set))
			continue;
		while (last + 1 < ncpus && CPU_ISSET_S(last + 1, setsize, set))
			last++;
		if (last == cpu)
			n = snprintf(buf + off, size - off, "%s%zu", off ? "," : "", cpu);
		else
			n = snprintf(buf + off, size - off, "%s%zu-%zu", off ? "," : "", cpu, last);
		if (n < 0 || (size_t)n >= size - off) {
			/* Cut at the last whole entry so the list never shows a wrong CPU number. */
			buf[off] = '\0';
			if (off + 4 < size)
				memcpy(buf + off, "...", 4);
			return;
		}
		off += (size_t)n;
		cpu = last;
	}
}

/*
 * Without a cores key the schema says CPU 0; when this process may not run
 * there (a cpuset or taskset without it), take its lowest allowed CPU so the
 * default still starts instead of failing to pin.
 */
void qg_cfg_default_cores(struct qg_config_dataplane *dp)
{
	cpu_set_t *set;
	size_t size, cpu;

	dp->n_cores = 1;
	dp->cores[0] = 0;
	if (allowed_cpus(&set, &size))
		return;
	if (!CPU_ISSET_S(0, size, set)) {
		for (cpu = 1; cpu < size * 8 && cpu <= CORE_ID_MAX; cpu++) {
			if (CPU_ISSET_S(cpu, size, set)) {
				dp->cores[0] = (uint32_t)cpu;
				break;
			}
		}
	}
	CPU_FREE(set);
}

int qg_cfg_cores(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dataplane *dp)
{
	const yaml_node_t *where[QG_CONFIG_MAX_CORES];
	cpu_set_t *allowed = NULL;
	size_t setsize = 0, n, i, j;
	char list[96];
	int ret;

	if (node->type != YAML_SEQUENCE_NODE) {
		qg_cfg_error(ctx, node, "cores: expected a sequence of CPU numbers such as [0, 1], found %s",
			     qg_cfg_node_kind(node));
		return 0;
	}
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n == 0 || n > QG_CONFIG_MAX_CORES) {
		qg_cfg_error(ctx, node, "cores: %zu entries, expected 1..%d CPUs", n, QG_CONFIG_MAX_CORES);
		if (n == 0)
			return 0;
		n = QG_CONFIG_MAX_CORES;
	}
	ret = allowed_cpus(&allowed, &setsize);
	if (ret == -ENOMEM)
		return ret;
	/* Other failures: the kernel will not say, so leave the check to pinning at start. */
	if (allowed)
		format_cpus(allowed, setsize, list, sizeof(list));
	dp->n_cores = 0;
	for (i = 0; i < n; i++) {
		const yaml_node_t *item =
			yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
		uint32_t cpu;

		if (!item || qg_cfg_u32(ctx, item, "core", 0, CORE_ID_MAX, &cpu))
			continue;
		if (allowed && (cpu >= setsize * 8 || !CPU_ISSET_S(cpu, setsize, allowed))) {
			qg_cfg_error(ctx, item, "core %u is not available (allowed CPUs: %s)", cpu, list);
			continue;
		}
		for (j = 0; j < dp->n_cores; j++)
			if (dp->cores[j] == cpu)
				break;
		if (j < dp->n_cores) {
			qg_cfg_error(ctx, item, "core %u is listed twice (first at line %d, column %d)", cpu,
				     (int)where[j]->start_mark.line + 1,
				     (int)where[j]->start_mark.column + 1);
			continue;
		}
		where[dp->n_cores] = item;
		dp->cores[dp->n_cores++] = cpu;
	}
	if (allowed)
		CPU_FREE(allowed);
	return 0;
}

void qg_config_errors_print(const struct qg_config_errors *errs, FILE *f)
{
	unsigned i;

	for (i = 0; i < errs->count; i++) {
		const struct qg_config_error *e = &errs->items[i];

		if (e->line > 0)
			fprintf(f, "%s:%d:%d: %s\n", errs->file, e->line, e->column, e->msg);
		else
			fprintf(f, "%s: %s\n", errs->file, e->msg);
	}
	if (errs->dropped)
		fprintf(f, "%s: %u more problem%s not shown\n", errs->file, errs->dropped,
			errs->dropped == 1 ? "" : "s");
}

void qg_config_free(struct qg_config *cfg)
{
	uint32_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].backends);
		/* QUIC-LB keys are secrets: do not leave them in freed heap memory. */
		explicit_bzero(cfg->services[i].quic.lb, sizeof(cfg->services[i].quic.lb));
	}
	free(cfg->services);
	free(cfg);
}

const struct qg_config_service *qg_config_service_find(const struct qg_config *cfg, const char *name)
{
	uint32_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}
