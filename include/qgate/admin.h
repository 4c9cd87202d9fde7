/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin socket: a Unix stream socket the operators' tool (qgatectl) talks to.
 * One request line per connection, one answer, then qgate closes (the
 * protocol is in docs/ADMIN.md). Everything runs on the control thread:
 * qg_admin_poll() accepts, reads and writes without blocking, and commands
 * act directly on the dataplane, the registry and the event bus.
 */
#ifndef QGATE_ADMIN_H
#define QGATE_ADMIN_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "qgate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct qg_dataplane;
struct qg_registry;
struct qg_event_bus;
struct qg_health;
struct qg_paths;
struct qg_protect;

#define QG_ADMIN_LINE_MAX    1024	/**< longest request line, newline included */
#define QG_ADMIN_CONN_MAX    16		/**< connections served at once; more get "ERR busy" */
#define QG_ADMIN_PARTS_MAX   32		/**< components whose start time is remembered */
#define QG_ADMIN_NOT_DRAINED UINT32_MAX /**< saved weight of a backend that is not drained */

/**
 * What admin commands read and change. The daemon owns it (and the arrays);
 * it must outlive the admin server. Backends are numbered "slots": services
 * in configuration order, each service's backends in order.
 */
struct qg_admin_target {
	const struct qg_config *cfg;
	struct qg_dataplane *dp;
	struct qg_registry *reg;
	struct qg_event_bus *bus;
	const struct qg_health *health; /**< NULL: no health column figures */
	const struct qg_paths *paths;	/**< NULL: no path lines (no multi-path backend, or no bridge) */
	struct qg_protect *protect;	/**< NULL: "level" is refused (the protect part is not running) */
	uint32_t *weights;		/**< current weight of every slot (starts as configured) */
	uint32_t *saved;		/**< weight before "drain", or QG_ADMIN_NOT_DRAINED */
	uint64_t start_ns;		/**< qg_clock_ns() when qgate started (uptime) */
	uint64_t part_since_ns[QG_ADMIN_PARTS_MAX]; /**< when part i (registry index) last became running */
	/**
	 * "reload" (NULL: refused): reload the configuration file; msg gets a
	 * summary, or every error as FILE:LINE:COLUMN lines. 0 or -errno.
	 */
	int (*reload)(void *ctx, char *msg, size_t len);
	void *reload_ctx;
};

/** Allocate weights and saved for cfg (weights as configured, nothing drained). @return 0 or -ENOMEM. */
int qg_admin_target_init(struct qg_admin_target *t, const struct qg_config *cfg);

/** Free what qg_admin_target_init() allocated. */
void qg_admin_target_fini(struct qg_admin_target *t);

/**
 * Run one request line (without its newline): "[json] COMMAND ARG...".
 * *out gets the whole answer, malloc'd: "OK\n" + body, or "ERR message\n"
 * (+ a JSON body when json was asked). Weight changes publish
 * QG_EVENT_ADMIN_ACTION.
 * @return 0 when the command succeeded, 1 when it was refused (the answer
 *         says why), -ENOMEM.
 */
int qg_admin_execute(struct qg_admin_target *t, const char *line, char **out, size_t *out_len);

struct qg_admin;

/**
 * Create the socket at path with the permission bits mode. A stale socket
 * file (nobody accepts on it) is replaced; a socket a running qgate still
 * accepts on is not (-EADDRINUSE), nor is a file that is not a socket
 * (-EEXIST). Reasons are logged.
 * @return 0 or -errno.
 */
int qg_admin_create(const char *path, uint32_t mode, struct qg_admin_target *t, struct qg_admin **out);

/**
 * As qg_admin_create(), from the admin section: also gives the socket file
 * the configured owner and group (chown between bind and listen, so nobody
 * can connect before the file has its final owner, group and mode).
 * @return 0 or -errno (-EPERM: qgate may not give the file that owner).
 */
int qg_admin_create_cfg(const struct qg_config_admin *ac, struct qg_admin_target *t, struct qg_admin **out);

/** Fill up to max pollfds with what the server waits for. @return the number filled. */
unsigned qg_admin_pollfds(const struct qg_admin *a, struct pollfd *fds, unsigned max);

/** Accept, read, answer and close what is ready; never blocks. now_ns: qg_clock_ns(). */
void qg_admin_poll(struct qg_admin *a, uint64_t now_ns);

/** Requests answered so far. */
uint64_t qg_admin_requests(const struct qg_admin *a);

/** Close every connection and the socket, remove the socket file if it is still ours, free. NULL is fine. */
void qg_admin_destroy(struct qg_admin *a);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_ADMIN_H */
