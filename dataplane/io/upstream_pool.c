/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_sock.h"
#include "qgate/io.h"
#include "upstream_pool.h"

enum {
	UP_CLOSED = 0,
	UP_BUSY,
	UP_IDLE
};

int qg_up_pool_init(struct qg_up_pool *p, uint32_t cap, const struct qg_up_pool_hooks *hooks)
{
	memset(p, 0, sizeof(*p));
	if (cap == 0)
		return -EINVAL;
	p->cap = cap;
	p->hooks = *hooks;
	p->e = calloc(cap, sizeof(*p->e));
	p->unused = malloc(sizeof(*p->unused) * cap);
	p->idle_head = malloc(sizeof(*p->idle_head) * QG_IO_MAX_BACKEND_SLOTS);
	if (!p->e || !p->unused || !p->idle_head) {
		qg_up_pool_fini(p);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cap; i++) {
		p->e[i].fd = -1;
		p->unused[i] = cap - 1 - i; /* pop order 0, 1, 2... */
	}
	p->n_unused = cap;
	for (uint32_t i = 0; i < QG_IO_MAX_BACKEND_SLOTS; i++)
		p->idle_head[i] = QG_UP_NONE;
	p->lru_head = p->lru_tail = QG_UP_NONE;
	return 0;
}

static void idle_unlink(struct qg_up_pool *p, uint32_t up)
{
	struct qg_up_entry *e = &p->e[up];

	if (e->prev != QG_UP_NONE)
		p->e[e->prev].next = e->next;
	else
		p->idle_head[e->bslot] = e->next;
	if (e->next != QG_UP_NONE)
		p->e[e->next].prev = e->prev;
	if (e->lru_prev != QG_UP_NONE)
		p->e[e->lru_prev].lru_next = e->lru_next;
	else
		p->lru_head = e->lru_next;
	if (e->lru_next != QG_UP_NONE)
		p->e[e->lru_next].lru_prev = e->lru_prev;
	else
		p->lru_tail = e->lru_prev;
}

static void entry_close(struct qg_up_pool *p, uint32_t up)
{
	struct qg_up_entry *e = &p->e[up];

	if (e->fd < 0)
		return;
	p->hooks.disarm(p->hooks.ctx, up, e->fd, e->gen);
	close(e->fd);
	e->fd = -1;
	e->state = UP_CLOSED;
	p->n_open--;
	p->unused[p->n_unused++] = up;
}

static int entry_open(struct qg_up_pool *p, uint32_t up, uint32_t bslot, const struct qg_addr *addr)
{
	struct qg_up_entry *e = &p->e[up];
	struct sockaddr_storage ss;
	socklen_t len = qg_addr_to_sockaddr(addr, &ss);
	int fd, rc;

	fd = socket(addr->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	qg_io_sock_rcvbuf(fd, QG_IO_UPSTREAM_RCVBUF);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	e->fd = fd;
	e->gen++;
	e->bslot = bslot;
	e->state = UP_BUSY;
	p->n_open++;
	rc = p->hooks.arm(p->hooks.ctx, up, fd, e->gen);
	if (rc) {
		entry_close(p, up);
		p->n_unused--; /* the caller still owns up: take it back off the stack */
		return rc;
	}
	return 0;
}

int qg_up_pool_open(struct qg_up_pool *p, uint32_t bslot, const struct qg_addr *addr, uint32_t *up)
{
	uint32_t u;
	int rc;

	if (bslot >= QG_IO_MAX_BACKEND_SLOTS)
		return -EINVAL;
	u = p->idle_head[bslot];
	if (u != QG_UP_NONE) {
		idle_unlink(p, u);
		p->e[u].state = UP_BUSY;
		*up = u;
		return 0;
	}
	if (p->n_unused == 0) {
		/* At the cap: the socket idle the longest, toward any backend, makes room. */
		if (p->lru_head == QG_UP_NONE)
			return -ENOSPC;
		u = p->lru_head;
		idle_unlink(p, u);
		entry_close(p, u);
	}
	u = p->unused[--p->n_unused];
	rc = entry_open(p, u, bslot, addr);
	if (rc) {
		p->unused[p->n_unused++] = u;
		return rc;
	}
	*up = u;
	return 0;
}

void qg_up_pool_close(struct qg_up_pool *p, uint32_t up, int reuse)
{
	struct qg_up_entry *e;

	if (up >= p->cap || p->e[up].state != UP_BUSY)
		return;
	e = &p->e[up];
	if (!reuse) {
		entry_close(p, up);
		return;
	}
	e->state = UP_IDLE;
	e->prev = QG_UP_NONE;
	e->next = p->idle_head[e->bslot];
	if (e->next != QG_UP_NONE)
		p->e[e->next].prev = up;
	p->idle_head[e->bslot] = up;
	e->lru_next = QG_UP_NONE;
	e->lru_prev = p->lru_tail;
	if (p->lru_tail != QG_UP_NONE)
		p->e[p->lru_tail].lru_next = up;
	else
		p->lru_head = up;
	p->lru_tail = up;
}

void qg_up_pool_fini(struct qg_up_pool *p)
{
	for (uint32_t i = 0; p->e && i < p->cap; i++)
		if (p->e[i].fd >= 0)
			entry_close(p, i);
	free(p->e);
	free(p->unused);
	free(p->idle_head);
	memset(p, 0, sizeof(*p));
}
