/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Privilege drop (socket backends, `user:` in the configuration): qgate
 * starts as root, binds its service ports, the metrics port and the admin
 * socket, then switches every thread to the configured user and keeps, on the
 * control thread only, the one capability a later reload may need
 * (CAP_NET_BIND_SERVICE, when services listen below
 * net.ipv4.ip_unprivileged_port_start). Workers relay with no capability at
 * all: io_uring and recvmmsg/sendmmsg on already-open sockets need none.
 *
 * Threads: set*id() in glibc applies to every thread of the process (it
 * signals each one to make the same system call), but capabilities and the
 * "keep capabilities" flag are per thread. So:
 *  - qg_privs_prepare(), before any thread exists, narrows the bounding set,
 *    clears the inheritable and ambient sets and sets no_new_privs: every
 *    thread created later inherits that;
 *  - qg_privs_drop() sets PR_SET_KEEPCAPS on the calling thread only, then
 *    changes groups, gid and uid (all threads). The kernel clears the
 *    permitted and effective sets of every thread whose flag is off, i.e. all
 *    but the caller, which then sets its own sets to exactly keep.
 *  - qg_privs_check_threads() reads /proc/self/task/{tid}/status of every
 *    thread afterwards and refuses anything else.
 */
#ifndef QGATE_PRIVS_H
#define QGATE_PRIVS_H

#include <stddef.h>
#include <stdint.h>

#include "qgate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bit of capability cap (CAP_* of linux/capability.h) in a capability mask. */
#define QG_PRIVS_CAP(cap) (1ULL << (cap))

/** net.ipv4.ip_unprivileged_port_start, or 1024 when it cannot be read. */
unsigned qg_privs_unpriv_port_start(void);

/**
 * Capabilities the control thread keeps after the drop: CAP_NET_BIND_SERVICE
 * when a service of cfg listens on a port below unpriv_port_start (a reload
 * may add or move one there), else none.
 */
uint64_t qg_privs_keep(const struct qg_config *cfg, unsigned unpriv_port_start);

/**
 * Before any thread is created, when a drop will follow: set no_new_privs,
 * narrow the bounding set to keep, clear the inheritable and ambient sets.
 * The permitted and effective sets are untouched (qgate still binds as
 * root). Lacking CAP_SETPCAP (not started as root) is not an error: the
 * bounding set then stays as it is.
 * @return 0 or -errno.
 */
int qg_privs_prepare(uint64_t keep);

/**
 * Switch every thread to ra (supplementary groups of ra->user, or only
 * ra->gid; then gid, then uid, real, effective and saved). The calling
 * thread ends with exactly keep as permitted and effective set, every other
 * thread with none. Verifies that root cannot be regained. Logs what it did.
 * @param msg why it failed (or a summary), for the log
 * @return 0 or -errno (EPERM: not started as root)
 */
int qg_privs_drop(const struct qg_config_run_as *ra, uint64_t keep, char *msg, size_t len);

/**
 * Check every thread of this process (/proc/self/task): real, effective,
 * saved and filesystem uid equal uid, likewise gid; permitted and effective
 * capabilities within keep_main for the calling thread and empty for the
 * others; inheritable and ambient empty.
 * @param msg the first thread that does not comply, or a summary
 * @return threads checked (> 0), -EPERM (one does not comply) or -errno
 */
int qg_privs_check_threads(uint32_t uid, uint32_t gid, uint64_t keep_main, char *msg, size_t len);

/** Capability names in mask ("cap_net_bind_service", ...), comma separated, "none" when empty. */
void qg_privs_caps_text(uint64_t mask, char *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_PRIVS_H */
