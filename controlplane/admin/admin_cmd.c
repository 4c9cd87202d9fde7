/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin commands: one request line in, one answer out, text or JSON.
 * Reads go to the dataplane's counters like the stats report does; weight
 * changes go through qg_dataplane_set_weight() (a new published table) and
 * are announced on the event bus, so an operator's drain shows up in
 * "qgatectl events" next to what the health checks did.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/admin.h"
#include "qgate/clock.h"
#include "qgate/dataplane.h"
#include "qgate/events.h"
#include "qgate/registry.h"
#include "admin_internal.h"

void qg_adm_printf(struct qg_adm_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *p;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		for (cap = b->cap ? b->cap : 1024; cap < b->len + (size_t)n + 1;)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void qg_adm_json_str(struct qg_adm_buf *b, const char *s)
{
	qg_adm_printf(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			qg_adm_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			qg_adm_printf(b, "\\u%04x", ch);
		else
			qg_adm_printf(b, "%c", ch);
	}
	qg_adm_printf(b, "\"");
}

static int refuse(struct qg_adm_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(struct qg_adm_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return 1;
}

static unsigned slot_of(const struct qg_config *cfg, unsigned svc, unsigned b)
{
	unsigned slot = 0;

	for (unsigned s = 0; s < svc; s++)
		slot += cfg->services[s].n_backends;
	return slot + b;
}

int qg_admin_target_init(struct qg_admin_target *t, const struct qg_config *cfg)
{
	unsigned n = slot_of(cfg, cfg->n_services, 0), slot = 0;

	t->cfg = cfg;
	t->weights = calloc(n + 1, sizeof(*t->weights));
	t->saved = calloc(n + 1, sizeof(*t->saved));
	if (!t->weights || !t->saved) {
		qg_admin_target_fini(t);
		return -ENOMEM;
	}
	for (unsigned s = 0; s < cfg->n_services; s++)
		for (unsigned b = 0; b < cfg->services[s].n_backends; b++, slot++) {
			t->weights[slot] = cfg->services[s].backends[b].weight;
			t->saved[slot] = QG_ADMIN_NOT_DRAINED;
		}
	return 0;
}

void qg_admin_target_fini(struct qg_admin_target *t)
{
	free(t->weights);
	free(t->saved);
	t->weights = t->saved = NULL;
}

/* Resolve SERVICE and BACKEND words to indexes, refusing with the valid choices. */
static int find_backend(struct qg_adm_req *r, const char *svc_name, const char *bk_text, unsigned *svc,
			unsigned *bk)
{
	const struct qg_config *cfg = r->t->cfg;
	char list[256], addr[QG_ADDR_STRLEN];
	const struct qg_config_service *s;
	struct qg_addr want;
	size_t off = 0;

	list[0] = '\0';
	for (*svc = 0; *svc < cfg->n_services; (*svc)++)
		if (!strcmp(cfg->services[*svc].name, svc_name))
			break;
	if (*svc == cfg->n_services) {
		for (unsigned i = 0; i < cfg->n_services && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
						cfg->services[i].name);
		return refuse(r, "unknown service '%.64s' (services: %s)", svc_name, list);
	}
	s = &cfg->services[*svc];
	if (qg_addr_parse(bk_text, &want))
		return refuse(r, "'%.64s' is not a backend address (IPv4:port or [IPv6]:port, as configured)",
			      bk_text);
	for (*bk = 0; *bk < s->n_backends; (*bk)++)
		if (qg_addr_equal(&s->backends[*bk].addr, &want))
			return 0;
	for (unsigned i = 0; i < s->n_backends && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
					qg_addr_format(&s->backends[i].addr, addr, sizeof(addr)));
	return refuse(r, "service '%s' has no backend %.64s (backends: %s)", s->name, bk_text, list);
}

/* Event fields are fixed-size: a long name is cut, never overflowed. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Change one weight in the dataplane, remember it, announce it. */
static int apply_weight(struct qg_adm_req *r, unsigned s, unsigned b, uint32_t w, const char *what)
{
	const struct qg_config_service *svc = &r->t->cfg->services[s];
	unsigned slot = slot_of(r->t->cfg, s, b);
	uint32_t old = r->t->weights[slot];
	char addr[QG_ADDR_STRLEN];
	struct qg_event ev;
	int rc;

	qg_addr_format(&svc->backends[b].addr, addr, sizeof(addr));
	rc = qg_dataplane_set_weight(r->t->dp, svc->name, &svc->backends[b].addr, w);
	if (rc)
		return refuse(r, "cannot set the weight of %s %s: %s", svc->name, addr, strerror(-rc));
	r->t->weights[slot] = w;
	qg_event_init(&ev, QG_EVENT_ADMIN_ACTION, QG_EVENT_SEV_NOTICE);
	ev.service = (int32_t)s;
	ev.backend = (int32_t)b;
	ev.arg[0] = old;
	ev.arg[1] = w;
	copy_trunc(ev.service_name, sizeof(ev.service_name), svc->name);
	copy_trunc(ev.backend_name, sizeof(ev.backend_name), addr);
	snprintf(ev.component, sizeof(ev.component), "admin");
	qg_event_set_text(&ev, "%s: weight %u -> %u", what, old, w);
	if (r->t->bus)
		qg_events_publish(r->t->bus, &ev);
	if (r->json) {
		qg_adm_printf(&r->body, "{\"service\":");
		qg_adm_json_str(&r->body, svc->name);
		qg_adm_printf(&r->body,
			      ",\"backend\":\"%s\",\"action\":\"%s\",\"old_weight\":%u,\"weight\":%u,"
			      "\"drained\":%s}\n",
			      addr, what, old, w,
			      r->t->saved[slot] != QG_ADMIN_NOT_DRAINED ? "true" : "false");
	} else {
		qg_adm_printf(&r->body, "%s %s: %s, weight %u -> %u\n", svc->name, addr, what, old, w);
	}
	return 0;
}

static int cmd_weight(struct qg_adm_req *r)
{
	unsigned s, b, slot;
	unsigned long w;
	uint32_t was;
	char *end;
	int rc;

	if (r->argc != 4)
		return refuse(r, "usage: weight SERVICE BACKEND WEIGHT");
	if (find_backend(r, r->argv[1], r->argv[2], &s, &b))
		return 1;
	if (r->argv[3][0] < '0' || r->argv[3][0] > '9')
		return refuse(r, "weight '%.32s' is not a whole number (0..%d)", r->argv[3],
			      QG_CONFIG_MAX_WEIGHT);
	errno = 0;
	w = strtoul(r->argv[3], &end, 10);
	if (*end || errno)
		return refuse(r, "weight '%.32s' is not a whole number (0..%d)", r->argv[3],
			      QG_CONFIG_MAX_WEIGHT);
	if (w > QG_CONFIG_MAX_WEIGHT)
		return refuse(r, "weight %lu is out of range (0..%d)", w, QG_CONFIG_MAX_WEIGHT);
	/*
	 * An explicit weight is the operator's new decision: nothing is left to
	 * undrain. Cleared before apply_weight() so its answer says "not drained";
	 * restored when the dataplane refuses, or a drained backend would stay at
	 * weight 0 with no undrain to bring it back (found by fuzz_admin).
	 */
	slot = slot_of(r->t->cfg, s, b);
	was = r->t->saved[slot];
	r->t->saved[slot] = QG_ADMIN_NOT_DRAINED;
	rc = apply_weight(r, s, b, (uint32_t)w, "weight");
	if (rc)
		r->t->saved[slot] = was;
	return rc;
}

/* Reload the configuration file: errors (FILE:LINE:COLUMN) come back, and the running one stays. */
static int cmd_reload(struct qg_adm_req *r)
{
	char msg[sizeof(r->err) - 64], one[sizeof(msg)];
	size_t j = 0;
	int rc;

	if (r->argc != 1)
		return refuse(r, "reload takes no arguments");
	if (!r->t->reload)
		return refuse(r, "reload is not available in this process");
	rc = r->t->reload(r->t->reload_ctx, msg, sizeof(msg));
	/* The answer's first line is the whole message: one error after another, "; " between. */
	for (const char *c = msg; *c && j + 3 < sizeof(one); c++) {
		if (*c == '\n') {
			one[j++] = ';';
			one[j++] = ' ';
		} else {
			one[j++] = *c;
		}
	}
	one[j] = '\0';
	if (rc)
		return refuse(r, "reload refused, the running configuration stays: %s", one);
	if (r->json) {
		qg_adm_printf(&r->body, "{\"reloaded\":true,\"summary\":");
		qg_adm_json_str(&r->body, one);
		qg_adm_printf(&r->body, "}\n");
	} else {
		qg_adm_printf(&r->body, "reloaded: %s\n", one);
	}
	return 0;
}

/* Remove a backend's established flows on every worker (control -> worker command rings). */
static int cmd_flush(struct qg_adm_req *r)
{
	const struct qg_config_service *svc;
	char addr[QG_ADDR_STRLEN];
	struct qg_event ev;
	unsigned s, b;
	long n;

	if (r->argc != 3)
		return refuse(r, "usage: flush SERVICE BACKEND");
	if (find_backend(r, r->argv[1], r->argv[2], &s, &b))
		return 1;
	svc = &r->t->cfg->services[s];
	qg_addr_format(&svc->backends[b].addr, addr, sizeof(addr));
	n = qg_dataplane_flush_backend(r->t->dp, s, b);
	if (n < 0)
		return refuse(r, "cannot flush %s %s: %s", svc->name, addr, strerror((int)-n));
	qg_event_init(&ev, QG_EVENT_ADMIN_ACTION, QG_EVENT_SEV_NOTICE);
	ev.service = (int32_t)s;
	ev.backend = (int32_t)b;
	ev.arg[0] = n;
	copy_trunc(ev.service_name, sizeof(ev.service_name), svc->name);
	copy_trunc(ev.backend_name, sizeof(ev.backend_name), addr);
	snprintf(ev.component, sizeof(ev.component), "admin");
	qg_event_set_text(&ev, "flush: %ld flows removed", n);
	if (r->t->bus)
		qg_events_publish(r->t->bus, &ev);
	if (r->json) {
		qg_adm_printf(&r->body, "{\"service\":");
		qg_adm_json_str(&r->body, svc->name);
		qg_adm_printf(&r->body, ",\"backend\":\"%s\",\"action\":\"flush\",\"flows_removed\":%ld}\n",
			      addr, n);
	} else {
		qg_adm_printf(&r->body, "%s %s: flush, %ld flows removed\n", svc->name, addr, n);
	}
	return 0;
}

static int cmd_drain(struct qg_adm_req *r, int undrain)
{
	const char *verb = undrain ? "undrain" : "drain";
	unsigned s, b, slot;
	char addr[QG_ADDR_STRLEN];
	uint32_t w;
	int rc;

	if (r->argc != 3)
		return refuse(r, "usage: %s SERVICE BACKEND", verb);
	if (find_backend(r, r->argv[1], r->argv[2], &s, &b))
		return 1;
	slot = slot_of(r->t->cfg, s, b);
	qg_addr_format(&r->t->cfg->services[s].backends[b].addr, addr, sizeof(addr));
	if (undrain) {
		if (r->t->saved[slot] == QG_ADMIN_NOT_DRAINED)
			return refuse(r, "%s %s is not drained (weight %u); use 'weight' to change it",
				      r->t->cfg->services[s].name, addr, r->t->weights[slot]);
		w = r->t->saved[slot];
		r->t->saved[slot] = QG_ADMIN_NOT_DRAINED;
		rc = apply_weight(r, s, b, w, verb);
		if (rc)
			r->t->saved[slot] = w;
		return rc;
	}
	/* Draining twice keeps the first saved weight: undrain must restore the real one. */
	if (r->t->saved[slot] != QG_ADMIN_NOT_DRAINED) {
		if (r->json)
			qg_adm_printf(&r->body,
				      "{\"service\":\"%s\",\"backend\":\"%s\",\"action\":\"drain\",\"old_"
				      "weight\":0,"
				      "\"weight\":0,\"drained\":true,\"already\":true}\n",
				      r->t->cfg->services[s].name, addr);
		else
			qg_adm_printf(&r->body, "%s %s: already drained (undrain restores weight %u)\n",
				      r->t->cfg->services[s].name, addr, r->t->saved[slot]);
		return 0;
	}
	r->t->saved[slot] = r->t->weights[slot];
	rc = apply_weight(r, s, b, 0, verb);
	if (rc)
		r->t->saved[slot] = QG_ADMIN_NOT_DRAINED;
	return rc;
}

static int dispatch(struct qg_adm_req *r)
{
	const char *cmd = r->argv[0];
	int ro = !strcmp(cmd, "status") || !strcmp(cmd, "backends") || !strcmp(cmd, "components") ||
		 !strcmp(cmd, "events");

	if (ro && r->argc != 1)
		return refuse(r, "%s takes no arguments", cmd);
	if (!strcmp(cmd, "status"))
		return qg_admin_cmd_status(r);
	if (!strcmp(cmd, "backends"))
		return qg_admin_cmd_backends(r);
	if (!strcmp(cmd, "components"))
		return qg_admin_cmd_components(r);
	if (!strcmp(cmd, "events"))
		return qg_admin_cmd_events(r);
	if (!strcmp(cmd, "weight"))
		return cmd_weight(r);
	if (!strcmp(cmd, "drain"))
		return cmd_drain(r, 0);
	if (!strcmp(cmd, "undrain"))
		return cmd_drain(r, 1);
	if (!strcmp(cmd, "level"))
		return qg_admin_cmd_level(r);
	if (!strcmp(cmd, "reload"))
		return cmd_reload(r);
	if (!strcmp(cmd, "flush"))
		return cmd_flush(r);
	return refuse(r,
		      "unknown command '%.32s' (status, backends, components, events, weight, drain, "
		      "undrain, flush, reload, level)",
		      cmd);
}

int qg_admin_execute(struct qg_admin_target *t, const char *line, char **out, size_t *out_len)
{
	struct qg_adm_buf ans = { 0 };
	struct qg_adm_req r;
	char *copy, *tok, *save;
	int rc;

	memset(&r, 0, sizeof(r));
	r.t = t;
	copy = strdup(line ? line : "");
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (r.argc == 0 && !r.json && !strcmp(tok, "json")) {
			r.json = 1;
			continue;
		}
		if (r.argc == QG_ADM_ARGS_MAX) {
			rc = refuse(&r, "too many words (at most %d)", QG_ADM_ARGS_MAX);
			goto answer;
		}
		r.argv[r.argc++] = tok;
	}
	if (!r.argc)
		rc = refuse(&r,
			    "empty request (commands: status, backends, components, events, weight, drain, "
			    "undrain, level)");
	else if (!t->dp || !t->cfg)
		rc = refuse(&r, "the dataplane is not running");
	else
		rc = dispatch(&r);
answer:
	if (rc < 0 || r.body.err) {
		rc = -ENOMEM;
		goto out;
	}
	if (rc == 0) {
		qg_adm_printf(&ans, "OK\n%s", r.body.p ? r.body.p : "");
	} else {
		qg_adm_printf(&ans, "ERR %s\n", r.err);
		if (r.json) {
			qg_adm_printf(&ans, "{\"error\":");
			qg_adm_json_str(&ans, r.err);
			qg_adm_printf(&ans, "}\n");
		}
	}
	if (ans.err) {
		rc = -ENOMEM;
		goto out;
	}
	*out = ans.p;
	*out_len = ans.len;
	ans.p = NULL;
out:
	free(ans.p);
	free(r.body.p);
	free(copy);
	return rc;
}
