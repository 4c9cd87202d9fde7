/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Component registry. Parts are few (tens) and start once, so the plan is
 * computed with plain O(n^2) scans: clarity and a deterministic order matter
 * more here than asymptotics. Each part is allocated on its own so the
 * pointers handed out by qg_registry_info() survive later additions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/clock.h"
#include "qgate/log.h"
#include "qgate/registry.h"

struct part {
	char name[QG_REGISTRY_NAME_MAX];
	char *deps[QG_REGISTRY_DEPS_MAX + 1]; /* copies, NULL-terminated */
	unsigned n_deps;
	unsigned dep_idx[QG_REGISTRY_DEPS_MAX]; /* resolved by plan() */
	struct qg_part_ops ops;
	enum qg_registry_state state;
	uint64_t start_ns;
	uint64_t stop_ns;
	int last_error;
	int start_rank;
};

struct qg_registry {
	struct part **parts;
	unsigned n;
	unsigned cap;
	unsigned *order; /* plan of the last start_all: indexes into parts */
	unsigned n_order;
	bool started; /* start_all succeeded and stop_all has not run since */
	bool busy;    /* inside start_all / stop_all: ops must not add parts */
	qg_registry_observer_fn observer;
	void *observer_ctx;
	char err[QG_REGISTRY_ERR_MAX];
};

static const char *const state_names[QG_REGISTRY_STATE_COUNT] = {
	"registered", "starting", "running", "failed", "stopping", "stopped",
};

const char *qg_registry_state_name(enum qg_registry_state state)
{
	if ((unsigned)state >= QG_REGISTRY_STATE_COUNT)
		return "?";
	return state_names[state];
}

int qg_registry_create(struct qg_registry **out)
{
	struct qg_registry *reg;

	if (!out)
		return -EINVAL;
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return -ENOMEM;
	*out = reg;
	return 0;
}

static void part_free(struct part *p)
{
	unsigned i;

	for (i = 0; i < p->n_deps; i++)
		free(p->deps[i]);
	free(p);
}

void qg_registry_destroy(struct qg_registry *reg)
{
	unsigned i;

	if (!reg)
		return;
	/* A forgotten stop_all must not leave threads or sockets behind. */
	qg_registry_stop_all(reg);
	for (i = 0; i < reg->n; i++)
		part_free(reg->parts[i]);
	free(reg->parts);
	free(reg->order);
	free(reg);
}

int qg_registry_find(const struct qg_registry *reg, const char *name)
{
	unsigned i;

	if (!reg || !name)
		return -ENOENT;
	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->parts[i]->name, name) == 0)
			return (int)i;
	return -ENOENT;
}

static bool name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	return len > 0 && len < QG_REGISTRY_NAME_MAX;
}

int qg_registry_add(struct qg_registry *reg, const struct qg_part_desc *desc)
{
	struct part *p = NULL;
	unsigned n_deps = 0;
	int rc;

	if (!reg || !desc || !name_ok(desc->name))
		return -EINVAL;
	if (desc->deps) {
		while (desc->deps[n_deps]) {
			if (n_deps >= QG_REGISTRY_DEPS_MAX || !name_ok(desc->deps[n_deps]))
				return -EINVAL;
			n_deps++;
		}
	}
	if (reg->started || reg->busy)
		return -EBUSY;
	if (qg_registry_find(reg, desc->name) >= 0)
		return -EEXIST;

	if (reg->n == reg->cap) {
		unsigned cap = reg->cap ? reg->cap * 2 : 8;
		struct part **parts = realloc(reg->parts, cap * sizeof(*parts));

		if (!parts)
			return -ENOMEM;
		reg->parts = parts;
		reg->cap = cap;
	}
	rc = -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto err;
	snprintf(p->name, sizeof(p->name), "%s", desc->name);
	for (; p->n_deps < n_deps; p->n_deps++) {
		p->deps[p->n_deps] = strdup(desc->deps[p->n_deps]);
		if (!p->deps[p->n_deps])
			goto err;
	}
	p->ops = desc->ops;
	p->state = QG_REGISTRY_REGISTERED;
	p->start_rank = -1;
	reg->parts[reg->n++] = p;
	return 0;
err:
	if (p)
		part_free(p);
	return rc;
}

/* Append to the error message; truncation is fine, it is for humans. */
__attribute__((format(printf, 2, 3))) static void err_append(struct qg_registry *reg, const char *fmt, ...)
{
	size_t len = strlen(reg->err);
	va_list ap;

	if (len + 1 >= sizeof(reg->err))
		return;
	va_start(ap, fmt);
	vsnprintf(reg->err + len, sizeof(reg->err) - len, fmt, ap);
	va_end(ap);
}

/* Link every dependency name to its part; the first missing one is the error. */
static int resolve(struct qg_registry *reg)
{
	unsigned i, d;
	int idx;

	for (i = 0; i < reg->n; i++) {
		struct part *p = reg->parts[i];

		for (d = 0; d < p->n_deps; d++) {
			idx = qg_registry_find(reg, p->deps[d]);
			if (idx < 0) {
				err_append(reg, "part '%s' depends on '%s', which is not registered", p->name,
					   p->deps[d]);
				return -ENOENT;
			}
			p->dep_idx[d] = (unsigned)idx;
		}
	}
	return 0;
}

/*
 * Name one cycle among the parts left unplaced. Every such part has an
 * unplaced dependency (otherwise it would have been ready), so following the
 * first one from any of them must come back to a part already on the path.
 */
static void report_cycle(struct qg_registry *reg, const bool *placed, unsigned *path, int *pos)
{
	unsigned cur = 0, len = 0, i, d;

	for (i = 0; i < reg->n; i++)
		pos[i] = -1;
	while (placed[cur])
		cur++;
	while (pos[cur] < 0) {
		struct part *p = reg->parts[cur];

		pos[cur] = (int)len;
		path[len++] = cur;
		for (d = 0; d < p->n_deps; d++)
			if (!placed[p->dep_idx[d]])
				break;
		cur = p->dep_idx[d];
	}
	err_append(reg, "dependency cycle:");
	for (i = (unsigned)pos[cur]; i < len; i++)
		err_append(reg, " %s ->", reg->parts[path[i]]->name);
	err_append(reg, " %s", reg->parts[cur]->name);
}

/*
 * Kahn's algorithm, restarting the scan from the first part after each
 * placement: the next part is always the earliest-registered ready one,
 * which makes the order a function of the registrations alone.
 */
static int plan(struct qg_registry *reg)
{
	bool *placed = NULL;
	unsigned *path = NULL;
	int *pos = NULL;
	unsigned i, d;
	int rc;

	rc = resolve(reg);
	if (rc)
		return rc;
	rc = -ENOMEM;
	free(reg->order);
	reg->n_order = 0;
	reg->order = malloc((reg->n ? reg->n : 1) * sizeof(*reg->order));
	placed = calloc(reg->n ? reg->n : 1, sizeof(*placed));
	if (!reg->order || !placed)
		goto err;

	for (i = 0; i < reg->n; i++) {
		struct part *p = reg->parts[i];

		if (placed[i])
			continue;
		for (d = 0; d < p->n_deps; d++)
			if (!placed[p->dep_idx[d]])
				break;
		if (d < p->n_deps)
			continue;
		placed[i] = true;
		p->start_rank = (int)reg->n_order;
		reg->order[reg->n_order++] = i;
		i = (unsigned)-1; /* rescan from the first part */
	}
	if (reg->n_order == reg->n) {
		free(placed);
		return 0;
	}

	path = malloc(reg->n * sizeof(*path));
	pos = malloc(reg->n * sizeof(*pos));
	if (!path || !pos)
		goto err;
	report_cycle(reg, placed, path, pos);
	rc = -ELOOP;
err:
	/* No plan: no part may claim a rank in it. */
	for (i = 0; i < reg->n; i++)
		reg->parts[i]->start_rank = -1;
	reg->n_order = 0;
	free(path);
	free(pos);
	free(placed);
	return rc;
}

static void set_state(struct qg_registry *reg, struct part *p, enum qg_registry_state to)
{
	enum qg_registry_state from = p->state;

	p->state = to;
	if (reg->observer)
		reg->observer(reg->observer_ctx, p->name, from, to, p->last_error);
}

static void stop_part(struct qg_registry *reg, struct part *p)
{
	uint64_t t0;

	set_state(reg, p, QG_REGISTRY_STOPPING);
	t0 = qg_clock_ns();
	if (p->ops.stop)
		p->ops.stop(p->ops.ctx);
	p->stop_ns = qg_clock_ns() - t0;
	set_state(reg, p, QG_REGISTRY_STOPPED);
	QG_LOG_DEBUG("part '%s' stopped in %llu us", p->name, (unsigned long long)(p->stop_ns / 1000));
}

/* Stop, newest first, the parts of the plan before position end that are running. */
static void unwind(struct qg_registry *reg, unsigned end)
{
	while (end-- > 0) {
		struct part *p = reg->parts[reg->order[end]];

		if (p->state == QG_REGISTRY_RUNNING)
			stop_part(reg, p);
	}
}

int qg_registry_start_all(struct qg_registry *reg)
{
	unsigned k;
	uint64_t t0;
	int rc;

	if (!reg)
		return -EINVAL;
	if (reg->busy)
		return -EBUSY;
	if (reg->started)
		return 0;
	reg->err[0] = '\0';
	rc = plan(reg);
	if (rc) {
		if (rc == -ENOMEM)
			err_append(reg, "out of memory while planning the start order");
		QG_LOG_ERR("components: %s", reg->err);
		return rc;
	}

	reg->busy = true;
	for (k = 0; k < reg->n_order; k++) {
		struct part *p = reg->parts[reg->order[k]];

		set_state(reg, p, QG_REGISTRY_STARTING);
		t0 = qg_clock_ns();
		rc = p->ops.start ? p->ops.start(p->ops.ctx) : 0;
		p->start_ns = qg_clock_ns() - t0;
		if (rc > 0)
			rc = -EIO;
		if (rc < 0) {
			p->last_error = rc;
			set_state(reg, p, QG_REGISTRY_FAILED);
			err_append(reg, "part '%s' failed to start: %s", p->name, strerror(-rc));
			QG_LOG_ERR("components: %s; stopping the %u part(s) already started", reg->err, k);
			unwind(reg, k);
			reg->busy = false;
			return rc;
		}
		set_state(reg, p, QG_REGISTRY_RUNNING);
		QG_LOG_DEBUG("part '%s' started in %llu us", p->name,
			     (unsigned long long)(p->start_ns / 1000));
	}
	reg->busy = false;
	reg->started = true;
	return 0;
}

void qg_registry_stop_all(struct qg_registry *reg)
{
	if (!reg || reg->busy)
		return;
	reg->busy = true;
	unwind(reg, reg->n_order);
	reg->busy = false;
	reg->started = false;
}

const char *qg_registry_error(const struct qg_registry *reg)
{
	return reg ? reg->err : "";
}

unsigned qg_registry_count(const struct qg_registry *reg)
{
	return reg ? reg->n : 0;
}

int qg_registry_info(const struct qg_registry *reg, unsigned idx, struct qg_part_info *out)
{
	const struct part *p;

	if (!reg || !out || idx >= reg->n)
		return -ENOENT;
	p = reg->parts[idx];
	out->name = p->name;
	out->state = p->state;
	out->deps = (const char *const *)p->deps;
	out->n_deps = p->n_deps;
	out->start_ns = p->start_ns;
	out->stop_ns = p->stop_ns;
	out->last_error = p->last_error;
	out->start_rank = p->start_rank;
	return 0;
}

void qg_registry_set_observer(struct qg_registry *reg, qg_registry_observer_fn fn, void *ctx)
{
	if (!reg)
		return;
	reg->observer = fn;
	reg->observer_ctx = ctx;
}
