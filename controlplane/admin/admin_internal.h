/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the admin command files only: the answer buffer and one request's state. */
#ifndef QG_ADMIN_INTERNAL_H
#define QG_ADMIN_INTERNAL_H

#include <stddef.h>

#include "qgate/admin.h"

#define QG_ADM_ARGS_MAX 8

/* A growing answer; err sticks once memory ran out. */
struct qg_adm_buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

/* One command's run: its words, the output format, the body, and the refusal message. */
struct qg_adm_req {
	struct qg_admin_target *t;
	int json;
	int argc;
	char *argv[QG_ADM_ARGS_MAX];
	struct qg_adm_buf body;
	char err[4096]; /* room for a reload's configuration errors */
};

/** Append printf output to b (sets b->err when memory runs out). */
void qg_adm_printf(struct qg_adm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Append s as a JSON string literal (quotes included). */
void qg_adm_json_str(struct qg_adm_buf *b, const char *s);

/** "maglev", "wrr", "least_conn". */
const char *qg_admin_policy_name(enum qg_config_policy p);

/* The read-only commands (admin_view.c); each fills r->body. @return 0 or -ENOMEM. */
int qg_admin_cmd_status(struct qg_adm_req *r);
int qg_admin_cmd_backends(struct qg_adm_req *r);
int qg_admin_cmd_components(struct qg_adm_req *r);
int qg_admin_cmd_events(struct qg_adm_req *r);
/* "level [set LEVEL | auto]" (admin_level.c). @return 0, 1 refused, or -ENOMEM. */
int qg_admin_cmd_level(struct qg_adm_req *r);

#endif /* QG_ADMIN_INTERNAL_H */
