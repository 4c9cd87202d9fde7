/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-worker pool of connected UDP sockets toward backends, shared by the
 * socket I/O backends (io_uring, recvmmsg). Each flow holds one socket, so
 * the backend sees one source port per client and replies demultiplex by
 * socket. A socket whose flow ended idle stays connected on its backend's
 * idle list for the next flow to that backend; one whose flow was evicted or
 * removed is closed (it may still carry replies for the old client). The
 * cap bounds open sockets; when it is reached the least recently idled socket
 * of any backend is closed to make room.
 */
#ifndef QG_UPSTREAM_POOL_H
#define QG_UPSTREAM_POOL_H

#include <stdint.h>

#include "qgate/addr.h"

#define QG_UP_NONE UINT32_MAX

/** Hooks the I/O backend gives: start receiving on a new socket, stop before it is closed. */
struct qg_up_pool_hooks {
	int (*arm)(void *ctx, uint32_t up, int fd, uint16_t gen);
	void (*disarm)(void *ctx, uint32_t up, int fd, uint16_t gen);
	void *ctx;
};

struct qg_up_entry {
	int fd;
	uint16_t gen; /* bumped at each new socket: tells stale completions apart */
	uint8_t state;
	uint8_t pad;
	uint32_t bslot;
	uint32_t prev, next;	     /* idle list of its backend */
	uint32_t lru_prev, lru_next; /* global idle list, oldest first */
};

struct qg_up_pool {
	uint32_t cap;
	uint32_t n_open;
	uint32_t n_unused;
	uint32_t *unused;    /* stack of never-opened / closed entries */
	uint32_t *idle_head; /* per backend slot */
	uint32_t lru_head, lru_tail;
	struct qg_up_entry *e;
	struct qg_up_pool_hooks hooks;
};

/** Create a pool of at most cap sockets. 0, -EINVAL or -ENOMEM. */
int qg_up_pool_init(struct qg_up_pool *p, uint32_t cap, const struct qg_up_pool_hooks *hooks);

/** Close every socket and free the pool. */
void qg_up_pool_fini(struct qg_up_pool *p);

/** Get a connected socket toward backend bslot/addr. 0 and *up, -ENOSPC, or -errno of socket()/connect(). */
int qg_up_pool_open(struct qg_up_pool *p, uint32_t bslot, const struct qg_addr *addr, uint32_t *up);

/** Give a socket back (reuse: keep it for the same backend; else close it). */
void qg_up_pool_close(struct qg_up_pool *p, uint32_t up, int reuse);

/** The socket of an upstream. */
static inline int qg_up_pool_fd(const struct qg_up_pool *p, uint32_t up)
{
	return p->e[up].fd;
}

/** 1 when a completion stamped with gen still belongs to the live socket of up. */
static inline int qg_up_pool_current(const struct qg_up_pool *p, uint32_t up, uint16_t gen)
{
	return up < p->cap && p->e[up].fd >= 0 && p->e[up].gen == gen;
}

#endif /* QG_UPSTREAM_POOL_H */
