/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the admin socket's commands (controlplane/admin:
 * qg_admin_execute, the parser and dispatcher every request line goes
 * through, and the views it renders).
 *
 * The input is a session: request lines separated by '\n', each taken as
 * the socket server does (a line of QG_ADMIN_LINE_MAX - 1 bytes or more is
 * refused unread, trailing CRs go, a NUL ends it), run in order against one
 * target so drain/undrain/weight sequences build on each other. A first
 * line starting with '!' is not a request: its next bytes are a bit mask of
 * the dataplane's weight changes that fail (call i fails when bit i is set),
 * so the refusal paths run too.
 *
 * The target is real except the dataplane: a configuration of three
 * services (IPv4/IPv6 backends, udp and quic, all three policies), a
 * registry with started and failed parts, a health checker driven with a
 * fake prober until some backends are down, and, fresh for each input, an
 * event bus and a degradation controller (qg_protect, for "level"). The
 * dataplane functions the admin code calls are stubs below: they keep the
 * weights and the level they are given, so the harness can check that what
 * the admin code remembers is what the dataplane was told. "reload" calls a
 * fake that succeeds or fails (the same mask) with a long multi-line message.
 *
 * Checked after every line: the return value is 0 or 1 and matches "OK\n" /
 * "ERR ...\n"; the answer is one NUL-free string ending in a newline; a JSON
 * answer's body is one valid JSON value; a refused command changed no
 * weight; a drained backend has weight 0; the admin's weights and the level
 * it shows are the dataplane's; an operator floor is never above the level.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/admin.h"
#include "qgate/clock.h"
#include "qgate/config.h"
#include "qgate/counters.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/health.h"
#include "qgate/log.h"
#include "qgate/protect.h"
#include "qgate/registry.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define MAX_LINES 32
#define MAX_SLOTS 16

static const char config_yaml[] =
	"services:\n"
	"  - name: dns\n"
	"    listen: 0.0.0.0:53\n"
	"    policy: maglev\n"
	"    health: {probe: udp, interval: 100ms, timeout: 50ms, rise: 1, fall: 2}\n"
	"    backends:\n"
	"      - address: 10.0.0.1:53\n"
	"      - address: 10.0.0.2:53\n"
	"        weight: 2\n"
	"      - address: \"[2001:db8::3]:53\"\n"
	"        weight: 0\n"
	"      - address: 10.0.0.4:5353\n"
	"        weight: 1000\n"
	"  - name: web.v2-x\n"
	"    listen: \"[::]:443\"\n"
	"    protocol: quic\n"
	"    policy: wrr\n"
	"    backends:\n"
	"      - address: 10.0.1.1:443\n"
	"      - address: \"[2001:db8::1:2]:443\"\n"
	"        weight: 3\n"
	"  - name: echo\n"
	"    listen: 127.0.0.1:4433\n"
	"    policy: least_conn\n"
	"    backends:\n"
	"      - address: 127.0.0.1:5001\n";

/* ---- the dataplane, stubbed: only what admin_cmd.c and admin_view.c call ---- */

/* Never dereferenced: the stubs below are the only users of the pointer. */
struct qg_dataplane {
	int unused;
};

static struct qg_dataplane stub_dp;
static struct qg_config *cfg;
static uint32_t dp_weight[MAX_SLOTS]; /* what the dataplane was told, per slot */
static unsigned set_calls;
static uint8_t fail_mask[8];

static int stub_fails(void);

static int slot_find(const char *service, const struct qg_addr *backend)
{
	int slot = 0;

	for (uint32_t s = 0; s < cfg->n_services; s++) {
		const struct qg_config_service *svc = &cfg->services[s];

		for (uint32_t b = 0; b < svc->n_backends; b++, slot++)
			if (!strcmp(svc->name, service) && qg_addr_equal(&svc->backends[b].addr, backend))
				return slot;
	}
	return -1;
}

int qg_dataplane_set_weight(struct qg_dataplane *dp, const char *service, const struct qg_addr *backend,
			    uint32_t weight)
{
	int slot;

	CHECK(dp == &stub_dp);
	slot = slot_find(service, backend);
	/* The admin code resolved both against the same configuration: never unknown. */
	CHECK(slot >= 0);
	if (weight > QG_CONFIG_MAX_WEIGHT)
		return -EINVAL;
	if (stub_fails())
		return -ENOMEM;
	dp_weight[slot] = weight;
	return 0;
}

void qg_dataplane_counters(const struct qg_dataplane *dp, struct qg_ctr_block *out)
{
	CHECK(dp == &stub_dp);
	memset(out, 0, sizeof(*out));
	/* Some of every kind non-zero, so the drop and error lines are printed. */
	for (unsigned i = 0; i < QG_CTR__COUNT; i++)
		out->v[i] = i % 3 ? (uint64_t)i * 1000003u : 0;
	out->v[0] = UINT64_MAX;
}

uint64_t qg_dataplane_flows_active(const struct qg_dataplane *dp, unsigned svc)
{
	CHECK(dp == &stub_dp && svc < cfg->n_services);
	return (uint64_t)svc * 7;
}

int qg_dataplane_backend_stats(const struct qg_dataplane *dp, unsigned svc, unsigned b,
			       struct qg_backend_stats *out)
{
	CHECK(dp == &stub_dp && svc < cfg->n_services && b < cfg->services[svc].n_backends);
	if (b == 1)
		return -ENOENT; /* the view shows zeros then */
	memset(out, 0, sizeof(*out));
	out->flows_active = b;
	out->tx_pkts = UINT64_MAX;
	out->rx_bytes = 12345;
	return 0;
}

static unsigned dp_level;

/* The same failure mask as weights: calls are numbered across both. */
static int stub_fails(void)
{
	unsigned call = set_calls++;

	return call < 64 && (fail_mask[call / 8] >> (call % 8) & 1);
}

int qg_dataplane_set_level(struct qg_dataplane *dp, unsigned level)
{
	CHECK(dp == &stub_dp);
	if (level > QG_DEGRADE_ESSENTIAL)
		return -EINVAL;
	if (stub_fails())
		return -ENOMEM;
	dp_level = level;
	return 0;
}

long qg_dataplane_flush_backend(struct qg_dataplane *dp, unsigned svc, unsigned b)
{
	CHECK(dp == &stub_dp && svc < cfg->n_services && b < cfg->services[svc].n_backends);
	if (stub_fails())
		return -ETIMEDOUT;
	return (long)(svc * 10 + b);
}

unsigned qg_dataplane_telemetry_poll(struct qg_dataplane *dp, qg_dataplane_tm_fn fn, void *ctx)
{
	CHECK(dp == &stub_dp);
	(void)fn;
	(void)ctx;
	return 0;
}

int qg_dataplane_ring_stats(const struct qg_dataplane *dp, unsigned worker, struct qg_ring_stats *out)
{
	CHECK(dp == &stub_dp);
	if (worker == 1)
		return -ENOENT; /* skipped by the view */
	memset(out, 0, sizeof(*out));
	out->capacity = QG_DATAPLANE_TM_RING_SIZE - 1;
	out->occupancy = worker;
	out->published = UINT64_MAX;
	return 0;
}

const char *qg_dataplane_io_name(const struct qg_dataplane *dp)
{
	CHECK(dp == &stub_dp);
	return "stub";
}

unsigned qg_dataplane_workers(const struct qg_dataplane *dp)
{
	CHECK(dp == &stub_dp);
	return 2;
}

/* ---- a small JSON validator (RFC 8259 grammar, no limits beyond nesting depth) ---- */

static void json_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static int json_value(const char **p, int depth);

static int json_string(const char **p)
{
	const char *s = *p;

	if (*s++ != '"')
		return 0;
	for (;;) {
		unsigned char c = (unsigned char)*s++;

		if (c == '"')
			break;
		if (c < 0x20)
			return 0; /* also the end of the text */
		if (c != '\\')
			continue;
		c = (unsigned char)*s++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, s++)
				if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
				      (*s >= 'A' && *s <= 'F')))
					return 0;
		} else if (!strchr("\"\\/bfnrt", c) || !c) {
			return 0;
		}
	}
	*p = s;
	return 1;
}

static int json_digits(const char **p)
{
	const char *s = *p;

	while (**p >= '0' && **p <= '9')
		(*p)++;
	return *p > s;
}

static int json_number(const char **p)
{
	if (**p == '-')
		(*p)++;
	if (**p == '0')
		(*p)++;
	else if (!json_digits(p))
		return 0;
	if (**p == '.') {
		(*p)++;
		if (!json_digits(p))
			return 0;
	}
	if (**p == 'e' || **p == 'E') {
		(*p)++;
		if (**p == '+' || **p == '-')
			(*p)++;
		if (!json_digits(p))
			return 0;
	}
	return 1;
}

static int json_word(const char **p, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(*p, w, n))
		return 0;
	*p += n;
	return 1;
}

static int json_container(const char **p, int depth, char close, int object)
{
	(*p)++;
	json_ws(p);
	if (**p == close) {
		(*p)++;
		return 1;
	}
	for (;;) {
		if (object) {
			if (!json_string(p))
				return 0;
			json_ws(p);
			if (*(*p)++ != ':')
				return 0;
		}
		if (!json_value(p, depth + 1))
			return 0;
		json_ws(p);
		if (**p == close) {
			(*p)++;
			return 1;
		}
		if (*(*p)++ != ',')
			return 0;
		json_ws(p);
	}
}

static int json_value(const char **p, int depth)
{
	if (depth > 32)
		return 0;
	json_ws(p);
	switch (**p) {
	case '{':
		return json_container(p, depth, '}', 1);
	case '[':
		return json_container(p, depth, ']', 0);
	case '"':
		return json_string(p);
	case 't':
		return json_word(p, "true");
	case 'f':
		return json_word(p, "false");
	case 'n':
		return json_word(p, "null");
	default:
		return json_number(p);
	}
}

/* Exactly one JSON value on one line, then the end of the answer. */
static void check_json_line(const char *s)
{
	CHECK(json_value(&s, 0));
	CHECK(s[0] == '\n' && s[1] == '\0');
}

/* ---- the target and the session ---- */

static struct qg_admin_target target;
static int echo; /* FUZZ_ADMIN_ECHO=1: print every request and answer (to look at seeds) */
static struct qg_registry *reg;
static struct qg_health *health;
static unsigned n_slots;

/* The fake prober: every probe gets an answer except those of backends 1, 4, 7, ... (down). */
static unsigned long long in_flight;

static int probe_send(void *ctx, unsigned id, uint64_t now_ms)
{
	(void)ctx;
	(void)now_ms;
	if (id < 64)
		in_flight |= 1ULL << id;
	return 0;
}

static void probe_poll(void *ctx, struct qg_health *hc, uint64_t now_ms)
{
	(void)ctx;
	for (unsigned id = 0; id < 64; id++)
		if ((in_flight >> id & 1) && id % 3 != 1) {
			in_flight &= ~(1ULL << id);
			qg_health_reply(hc, id, 1, now_ms);
		}
}

/* The daemon's reload, faked: fails as the mask says, with one line per error as the loader gives them. */
static int fake_reload(void *ctx, char *msg, size_t len)
{
	size_t off = 0;
	unsigned i = 0;

	(void)ctx;
	if (!stub_fails()) {
		snprintf(msg, len, "3 services, 7 backends\ndataplane.cores: applies at the next restart");
		return 0;
	}
	msg[0] = '\0';
	while (off + 1 < len) {
		int n = snprintf(msg + off, len - off, "admin.yaml:%u:5: unknown key 'x%u' in service\n",
				 i + 2, i);

		if (n < 0)
			break;
		off += (size_t)n;
		i++;
	}
	return -EINVAL;
}

static int part_ok(void *ctx)
{
	(void)ctx;
	return 0;
}

static int part_fail(void *ctx)
{
	(void)ctx;
	return -EADDRINUSE;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const dep_config[] = { "config", NULL };
	static const char *const dep_dp[] = { "config", "dataplane", NULL };
	const struct qg_part_desc parts[] = {
		{ "config", NULL, { part_ok, NULL, NULL } },
		{ "events", dep_config, { part_ok, NULL, NULL } },
		{ "dataplane", dep_config, { part_ok, NULL, NULL } },
		{ "health", dep_dp, { part_ok, NULL, NULL } },
		{ "metrics", dep_dp, { part_fail, NULL, NULL } },
		{ "admin", dep_dp, { part_ok, NULL, NULL } },
	};
	const struct qg_health_ops ops = { .send = probe_send, .poll = probe_poll };
	struct qg_config_errors errs;
	struct qg_part_info info;

	(void)argc;
	(void)argv;
	qg_log_set_level(QG_LOG_ERR); /* the registry's start/stop lines would flood the run */
	echo = getenv("FUZZ_ADMIN_ECHO") != NULL;
	if (qg_config_load_string("admin.yaml", config_yaml, sizeof(config_yaml) - 1, &cfg, &errs))
		abort();
	for (uint32_t s = 0; s < cfg->n_services; s++)
		n_slots += cfg->services[s].n_backends;
	if (n_slots > MAX_SLOTS || qg_registry_create(&reg))
		abort();
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (qg_registry_add(reg, &parts[i]))
			abort();
	/* metrics fails to start: the registry reports it, admin is never reached. */
	if (qg_registry_start_all(reg) == 0)
		abort();
	if (qg_health_create(cfg, &ops, NULL, NULL, 0, &health))
		abort();
	for (uint64_t t = 0; t <= 2000; t += 10)
		qg_health_tick(health, t);
	target.dp = &stub_dp;
	target.reload = fake_reload;
	target.reg = reg;
	target.health = health;
	target.start_ns = qg_clock_ns();
	for (unsigned i = 0; i < qg_registry_count(reg) && i < QG_ADMIN_PARTS_MAX; i++)
		if (!qg_registry_info(reg, i, &info) && info.state == QG_REGISTRY_RUNNING)
			target.part_since_ns[i] = target.start_ns + i * 1000000u;
	return 0;
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* The first word is "json" (as qg_admin_execute reads it: separated by spaces or tabs). */
static int wants_json(const char *line)
{
	line += strspn(line, " \t");
	return starts_with(line, "json") && (line[4] == '\0' || line[4] == ' ' || line[4] == '\t');
}

static void run_line(const char *line)
{
	uint32_t weights[MAX_SLOTS], saved[MAX_SLOTS];
	struct qg_protect_info info;
	char *out = NULL;
	size_t out_len = 0;
	const char *body;
	int rc;

	memcpy(weights, target.weights, n_slots * sizeof(weights[0]));
	memcpy(saved, target.saved, n_slots * sizeof(saved[0]));
	rc = qg_admin_execute(&target, line, &out, &out_len);
	CHECK(rc == 0 || rc == 1);
	if (echo)
		fprintf(stderr, "> %s\n%s", line, out ? out : "(null)\n");
	CHECK(out != NULL && out_len >= 3 && strlen(out) == out_len);
	CHECK(out[out_len - 1] == '\n');
	CHECK(rc == 0 ? starts_with(out, "OK\n") : starts_with(out, "ERR ") && out[4] != '\n');
	body = strchr(out, '\n') + 1;
	if (wants_json(line))
		check_json_line(body);
	else if (rc == 1)
		CHECK(*body == '\0');
	/* A refusal leaves everything as it was. */
	if (rc == 1) {
		CHECK(!memcmp(weights, target.weights, n_slots * sizeof(weights[0])));
		CHECK(!memcmp(saved, target.saved, n_slots * sizeof(saved[0])));
	}
	qg_protect_get_info(target.protect, &info);
	CHECK(info.level == dp_level);
	CHECK(!info.floor_set || info.level >= info.floor);
	for (unsigned i = 0; i < n_slots; i++) {
		CHECK(target.weights[i] <= QG_CONFIG_MAX_WEIGHT);
		CHECK(target.weights[i] == dp_weight[i]);
		if (target.saved[i] != QG_ADMIN_NOT_DRAINED)
			CHECK(target.weights[i] == 0 && target.saved[i] <= QG_CONFIG_MAX_WEIGHT);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[QG_ADMIN_LINE_MAX];
	size_t off = 0, lines = 0;
	unsigned slot = 0;

	struct qg_protect_params pp = { .n_workers = 2, .controller = 1, .dp = &stub_dp };

	if (qg_admin_target_init(&target, cfg) || qg_events_create(&target.bus))
		abort();
	pp.bus = target.bus;
	dp_level = QG_DEGRADE_NORMAL;
	if (qg_protect_create(&pp, qg_clock_ms(), &target.protect))
		abort();
	target.cfg = cfg;
	for (uint32_t s = 0; s < cfg->n_services; s++)
		for (uint32_t b = 0; b < cfg->services[s].n_backends; b++)
			dp_weight[slot++] = cfg->services[s].backends[b].weight;
	set_calls = 0;
	memset(fail_mask, 0, sizeof(fail_mask));
	if (size && data[0] == '!') {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = (nl ? (size_t)(nl - data) : size) - 1;

		memcpy(fail_mask, data + 1, n < sizeof(fail_mask) ? n : sizeof(fail_mask));
		off = nl ? (size_t)(nl - data) + 1 : size;
	}
	while (off < size && lines++ < MAX_LINES) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		size_t keep = n;

		off += n + 1;
		/* The server answers a longer line "too long" without running it. */
		if (n >= sizeof(line) - 1)
			continue;
		/* As conn_answer(): the line without its trailing CR/LF, NUL-terminated. */
		memcpy(line, data + off - n - 1, keep);
		while (keep && line[keep - 1] == '\r')
			keep--;
		line[keep] = '\0';
		run_line(line);
	}
	/* NULL is an empty request, not a crash. */
	if (!size)
		run_line("");
	qg_protect_destroy(target.protect);
	target.protect = NULL;
	qg_events_destroy(target.bus);
	target.bus = NULL;
	qg_admin_target_fini(&target);
	return 0;
}
