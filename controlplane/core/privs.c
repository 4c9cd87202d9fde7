/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Privilege drop after binding (qgate/privs.h explains the per-thread
 * rules). Plain prctl()/capget()/capset() rather than a library: five calls,
 * and each one's effect on threads has to be reasoned about anyway.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qgate/log.h"
#include "qgate/privs.h"

/* Highest capability number this code can name; newer kernels' extra ones show as cap_N. */
static const char *const cap_names[] = {
	"cap_chown",
	"cap_dac_override",
	"cap_dac_read_search",
	"cap_fowner",
	"cap_fsetid",
	"cap_kill",
	"cap_setgid",
	"cap_setuid",
	"cap_setpcap",
	"cap_linux_immutable",
	"cap_net_bind_service",
	"cap_net_broadcast",
	"cap_net_admin",
	"cap_net_raw",
	"cap_ipc_lock",
	"cap_ipc_owner",
	"cap_sys_module",
	"cap_sys_rawio",
	"cap_sys_chroot",
	"cap_sys_ptrace",
	"cap_sys_pacct",
	"cap_sys_admin",
	"cap_sys_boot",
	"cap_sys_nice",
	"cap_sys_resource",
	"cap_sys_time",
	"cap_sys_tty_config",
	"cap_mknod",
	"cap_lease",
	"cap_audit_write",
	"cap_audit_control",
	"cap_setfcap",
	"cap_mac_override",
	"cap_mac_admin",
	"cap_syslog",
	"cap_wake_alarm",
	"cap_block_suspend",
	"cap_audit_read",
	"cap_perfmon",
	"cap_bpf",
	"cap_checkpoint_restore",
};

void qg_privs_caps_text(uint64_t mask, char *out, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	out[0] = '\0';
	if (!mask) {
		snprintf(out, len, "none");
		return;
	}
	for (unsigned c = 0; c < 64 && off < len; c++) {
		if (!(mask & QG_PRIVS_CAP(c)))
			continue;
		if (c < sizeof(cap_names) / sizeof(cap_names[0]))
			off += (size_t)snprintf(out + off, len - off, "%s%s", off ? "," : "", cap_names[c]);
		else
			off += (size_t)snprintf(out + off, len - off, "%scap_%u", off ? "," : "", c);
	}
}

unsigned qg_privs_unpriv_port_start(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	unsigned v = 1024;

	if (!f)
		return v;
	if (fscanf(f, "%u", &v) != 1 || v > 65536)
		v = 1024;
	fclose(f);
	return v;
}

uint64_t qg_privs_keep(const struct qg_config *cfg, unsigned unpriv_port_start)
{
	/*
	 * Only services count: the metrics port and the admin socket are bound
	 * once, at start, while a reload binds new services' ports on the
	 * control thread. A gateway already serving a privileged port is the
	 * one likely to be given another.
	 */
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		if (ntohs(cfg->services[i].listen.port) < unpriv_port_start)
			return QG_PRIVS_CAP(CAP_NET_BIND_SERVICE);
	}
	return 0;
}

/* The calling thread's sets (capget/capset act on one thread: pid 0 is the caller). */
static int caps_get(uint64_t *eff, uint64_t *perm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	*eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	*perm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	*inh = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
	return 0;
}

static int caps_set(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	d[0].permitted = (uint32_t)perm;
	d[1].permitted = (uint32_t)(perm >> 32);
	d[0].inheritable = (uint32_t)inh;
	d[1].inheritable = (uint32_t)(inh >> 32);
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

int qg_privs_prepare(uint64_t keep)
{
	uint64_t eff = 0, perm = 0, inh = 0;
	int rc;

	/* qgate never executes anything; this also stops any exec from gaining privileges. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* CAP_SETPCAP goes last: dropping bounding-set entries needs it. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned c = 0; c < 64; c++) {
			int in;

			if (keep & QG_PRIVS_CAP(c) || (c == CAP_SETPCAP) != (pass == 1))
				continue;
			in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
			if (in < 0)
				break; /* past the kernel's last capability */
			if (!in)
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
				if (errno != EPERM)
					return -errno;
				/* Not started as root: there is little to narrow, and nothing allows it. */
				QG_LOG_DEBUG("privileges: cannot narrow the bounding set (no CAP_SETPCAP)");
				pass = 2;
				break;
			}
		}
	}
	/* Ambient capabilities would survive the uid change on every thread. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	rc = caps_get(&eff, &perm, &inh);
	if (!rc && inh)
		rc = caps_set(eff, perm, 0);
	return rc;
}

static int ids_are(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;

	return getresuid(&r, &e, &s) == 0 && getresgid(&gr, &ge, &gs) == 0 && r == uid && e == uid &&
	       s == uid && gr == gid && ge == gid && gs == gid;
}

int qg_privs_drop(const struct qg_config_run_as *ra, uint64_t keep, char *msg, size_t len)
{
	uid_t uid = (uid_t)ra->uid;
	gid_t gid = (gid_t)ra->gid;
	uint64_t eff = 0, perm = 0, inh = 0;
	const char *step;
	int rc;

	msg[0] = '\0';
	if (ids_are(uid, gid)) {
		/* Started as that user already: only capabilities can still go. */
		rc = caps_get(&eff, &perm, &inh);
		if (!rc)
			rc = caps_set(eff & keep, perm & keep, 0);
		if (rc)
			snprintf(msg, len, "capset: %s", strerror(-rc));
		return rc;
	}
	/* On this thread only: the control thread keeps its permitted set across the uid change. */
	step = "prctl(PR_SET_KEEPCAPS)";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		goto err;
	/* Groups first: changing them needs CAP_SETGID, which the uid change takes away. */
	step = ra->user[0] ? "initgroups" : "setgroups";
	if (ra->user[0] ? initgroups(ra->user, gid) < 0 : setgroups(1, &gid) < 0)
		goto err;
	step = "setresgid";
	if (setresgid(gid, gid, gid) < 0)
		goto err;
	step = "setresuid";
	if (setresuid(uid, uid, uid) < 0)
		goto err;
	step = "prctl(PR_SET_KEEPCAPS, 0)";
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		goto err;
	/* What it still holds of keep (a service port bound at start means it held that). */
	rc = caps_get(&eff, &perm, &inh);
	if (!rc)
		rc = caps_set(keep & perm, keep & perm, 0);
	if (rc) {
		errno = -rc;
		step = "capset";
		goto err;
	}
	/* Paranoia costs one system call: root must be gone for good. */
	if (setresuid(0, 0, 0) == 0 || !ids_are(uid, gid)) {
		snprintf(msg, len, "uid %u could switch back to root", ra->uid);
		return -EPERM;
	}
	return 0;
err:
	rc = -errno;
	snprintf(msg, len, "%s: %s", step, strerror(errno));
	return rc;
}

/* "Uid:\t0\t0\t0\t0" and "CapEff:\t000001ffffffffff" lines of a status file. */
struct thread_status {
	unsigned long uid[4], gid[4];
	uint64_t inh, prm, eff, amb;
	int seen;
};

static int read_status(const char *path, struct thread_status *st)
{
	char line[256];
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	memset(st, 0, sizeof(*st));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "Uid: %lu %lu %lu %lu", &st->uid[0], &st->uid[1], &st->uid[2],
			   &st->uid[3]) == 4)
			st->seen |= 1;
		else if (sscanf(line, "Gid: %lu %lu %lu %lu", &st->gid[0], &st->gid[1], &st->gid[2],
				&st->gid[3]) == 4)
			st->seen |= 2;
		else if (sscanf(line, "CapInh: %llx", &v) == 1)
			st->inh = v, st->seen |= 4;
		else if (sscanf(line, "CapPrm: %llx", &v) == 1)
			st->prm = v, st->seen |= 8;
		else if (sscanf(line, "CapEff: %llx", &v) == 1)
			st->eff = v, st->seen |= 16;
		else if (sscanf(line, "CapAmb: %llx", &v) == 1)
			st->amb = v, st->seen |= 32;
	}
	fclose(f);
	/* CapAmb is missing before Linux 4.3: an absent line means an empty set. */
	return (st->seen & 31) == 31 ? 0 : -EIO;
}

int qg_privs_check_threads(uint32_t uid, uint32_t gid, uint64_t keep_main, char *msg, size_t len)
{
	long self = syscall(SYS_gettid);
	struct dirent *de;
	int n = 0, rc = 0;
	DIR *dir;

	msg[0] = '\0';
	dir = opendir("/proc/self/task");
	if (!dir) {
		rc = -errno;
		snprintf(msg, len, "/proc/self/task: %s", strerror(errno));
		return rc;
	}
	while ((de = readdir(dir)) != NULL) {
		char path[300];
		struct thread_status st;
		long tid = strtol(de->d_name, NULL, 10);
		uint64_t allowed = tid == self ? keep_main : 0;
		int bad = 0;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		rc = read_status(path, &st);
		if (rc == -ENOENT) {
			rc = 0; /* the thread ended meanwhile */
			continue;
		}
		if (rc) {
			snprintf(msg, len, "%s: %s", path, strerror(-rc));
			break;
		}
		for (int i = 0; i < 4; i++)
			bad |= st.uid[i] != uid || st.gid[i] != gid;
		bad |= (st.eff & ~allowed) || (st.prm & ~allowed) || st.inh || st.amb;
		if (bad) {
			snprintf(
				msg, len,
				"thread %ld: uid %lu/%lu/%lu/%lu gid %lu/%lu/%lu/%lu, capabilities effective "
				"%llx permitted %llx inheritable %llx ambient %llx (expected uid %u gid %u, "
				"at most "
				"%llx)",
				tid, st.uid[0], st.uid[1], st.uid[2], st.uid[3], st.gid[0], st.gid[1],
				st.gid[2], st.gid[3], (unsigned long long)st.eff, (unsigned long long)st.prm,
				(unsigned long long)st.inh, (unsigned long long)st.amb, uid, gid,
				(unsigned long long)allowed);
			rc = -EPERM;
			break;
		}
		n++;
	}
	closedir(dir);
	if (rc)
		return rc;
	if (!n) {
		snprintf(msg, len, "/proc/self/task lists no thread");
		return -EIO;
	}
	snprintf(msg, len, "%d thread(s) checked", n);
	return n;
}
