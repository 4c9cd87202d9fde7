/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Identities in the configuration: the top-level user and group qgate runs
 * as once its sockets are bound, and the owner and group of the admin socket.
 * Names are resolved here, through the system's user and group databases
 * (NSS), so "qgate --check-config" already says that a user does not exist,
 * at its line and column, instead of qgate failing after it bound every port.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* Large enough for any passwd/group entry NSS files hand out; ERANGE doubles it. */
#define ID_BUF_START 4096
#define ID_BUF_MAX   (1u << 20)

/* What one user or group value named. */
struct id_ref {
	uint32_t id;
	uint32_t primary_gid; /* users only: their primary group */
	int has_entry;	      /* found in the database (always, for a name) */
	char name[QG_CONFIG_ID_NAME_MAX];
};

/* POSIX portable names ([A-Za-z0-9._-], not starting with '-'), as useradd and groupadd accept. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= QG_CONFIG_ID_NAME_MAX || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * Look a user (group = 0) or a group up by name (name != NULL) or by id.
 * @return 1 found, 0 not found, -errno when the database could not answer.
 */
static int lookup(int group, const char *name, uint32_t id, struct id_ref *out)
{
	size_t cap = ID_BUF_START;
	int rc;

	for (;;) {
		char *buf = malloc(cap);
		struct passwd pw, *pwr = NULL;
		struct group gr, *grr = NULL;

		if (!buf)
			return -ENOMEM;
		if (group)
			rc = name ? getgrnam_r(name, &gr, buf, cap, &grr)
				  : getgrgid_r(id, &gr, buf, cap, &grr);
		else
			rc = name ? getpwnam_r(name, &pw, buf, cap, &pwr)
				  : getpwuid_r(id, &pw, buf, cap, &pwr);
		if (rc == ERANGE && cap < ID_BUF_MAX) {
			free(buf);
			cap *= 2;
			continue;
		}
		if (rc == 0 && (group ? grr != NULL : pwr != NULL)) {
			const char *n = group ? grr->gr_name : pwr->pw_name;

			out->id = group ? grr->gr_gid : pwr->pw_uid;
			out->primary_gid = group ? 0 : pwr->pw_gid;
			out->has_entry = 1;
			/* A longer name (some NSS sources allow it) is kept out: initgroups() gets none then.
			 */
			if (strlen(n) < sizeof(out->name))
				memcpy(out->name, n, strlen(n) + 1);
			free(buf);
			return 1;
		}
		free(buf);
		/* "Not found" comes back as 0 or as one of these, depending on the NSS module. */
		if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
			return 0;
		return -rc;
	}
}

/*
 * One user or group value: a name from the database, or a number (which
 * need not have an entry: containers often run with bare uids).
 * @return 0 or -EINVAL (reported).
 */
static int id_value(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, int group,
		    struct id_ref *out)
{
	const char *what = group ? "group" : "user", *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (qg_cfg_scalar(ctx, node, key, &s))
		return -EINVAL;
	if (all_digits(s)) {
		if (qg_cfg_u32(ctx, node, key, 0, QG_CONFIG_ID_MAX, &out->id))
			return -EINVAL;
		rc = lookup(group, NULL, out->id, out);
		if (rc < 0) {
			qg_cfg_error(ctx, node, "%s: cannot look up %s %u: %s", key, what, out->id,
				     strerror(-rc));
			return -EINVAL;
		}
		return 0;
	}
	if (!name_ok(s)) {
		qg_cfg_error(ctx, node,
			     "%s: '%.40s' is not a %s name or id (letters, digits, '_', '.', '-', at most %d "
			     "characters, or a number)",
			     key, s, what, QG_CONFIG_ID_NAME_MAX - 1);
		return -EINVAL;
	}
	rc = lookup(group, s, 0, out);
	if (rc < 0) {
		qg_cfg_error(ctx, node, "%s: cannot look up %s '%s': %s", key, what, s, strerror(-rc));
		return -EINVAL;
	}
	if (rc == 0) {
		qg_cfg_error(ctx, node, "%s: no %s '%s' on this system (getent %s %s)", key, what, s,
			     group ? "group" : "passwd", s);
		return -EINVAL;
	}
	return 0;
}

void qg_cfg_admin_ids(struct qg_cfg_ctx *ctx, const yaml_node_t *owner, const yaml_node_t *group,
		      struct qg_config_admin *a)
{
	struct id_ref r;

	if (owner && !id_value(ctx, owner, "owner", 0, &r)) {
		a->has_owner = 1;
		a->owner = r.id;
	}
	if (group && !id_value(ctx, group, "group", 1, &r)) {
		a->has_group = 1;
		a->group = r.id;
	}
}

void qg_cfg_run_as(struct qg_cfg_ctx *ctx, const yaml_node_t *user_key, const yaml_node_t *user,
		   const yaml_node_t *group_key, const yaml_node_t *group, enum qg_config_io io,
		   struct qg_config_run_as *ra)
{
	struct id_ref u, g;
	int group_ok = 0;

	if (group && !user) {
		qg_cfg_error(ctx, group_key,
			     "group is only allowed with user (it is the group qgate switches to with it)");
		return;
	}
	if (!user)
		return;
	/* Refused, not ignored: the file must not suggest a drop that does not happen. */
	if (io == QG_CONFIG_IO_DPDK) {
		qg_cfg_error(
			ctx, user_key,
			"user is not supported with backend dpdk: the DPDK backend runs as root (hugepages, "
			"device access; see docs/DPDK.md)");
		return;
	}
	if (group)
		group_ok = !id_value(ctx, group, "group", 1, &g);
	if (id_value(ctx, user, "user", 0, &u))
		return;
	if (u.id == 0) {
		qg_cfg_error(ctx, user,
			     "user: %s is root (uid 0), which drops nothing; leave user out to run "
			     "as the user qgate is started as",
			     u.name[0] ? u.name : "0");
		return;
	}
	if (!group && !u.has_entry) {
		qg_cfg_error(
			ctx, user,
			"user: uid %u has no entry in the user database, so it has no primary group: set "
			"group too",
			u.id);
		return;
	}
	if (group && !group_ok)
		return;
	ra->enabled = 1;
	ra->uid = u.id;
	ra->gid = group ? g.id : u.primary_gid;
	memcpy(ra->user, u.name, sizeof(ra->user));
	ra->line = qg_cfg_node_line(user);
}
