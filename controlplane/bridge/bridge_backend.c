/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bridge's outbound pools (bridge_internal.h): per Bluetooth backend
 * path, up to links_per_path L2CAP links, spare_links of them kept connected
 * and unbound so a new flow starts at once. One attempt at a time per path;
 * a failed attempt doubles the wait (backoff_min .. backoff_max), a lost link
 * is retried after backoff_min, a successful connect resets the back-off.
 * A worker's flow (worker, tag) is bound to one link for its life, like a
 * UDP flow to its upstream socket; when it ends the link returns to the pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge_internal.h"

static void connect_failed(struct qg_bridge *b, struct bpath *p, uint64_t now)
{
	CTR_ADD(qg_brg_out_ctr(b)->connect_failures, 1);
	p->failures++;
	p->next_ms = now + qg_brg_backoff(b, p->failures);
	qg_brg_path_publish(p);
}

int qg_brg_link_dial(struct qg_bridge *b, const struct bpath *p, const struct link *l)
{
	struct epoll_event ev;
	int fd;

	fd = b->o.ops->connect(b->o.ops_ctx, &p->cfg, p->via, b->rings->max_datagram);
	if (fd < 0)
		return fd;
	/* Writable = connected (or failed: SO_ERROR tells), for L2CAP and the stand-in alike. */
	ev.events = EPOLLOUT | EPOLLRDHUP;
	ev.data.u64 = qg_brg_ev(EV_LINK, (uint32_t)(l - b->links));
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static void start_connect(struct qg_bridge *b, uint32_t pi, uint64_t now)
{
	struct bpath *p = &b->paths[pi];
	struct link *l;
	uint32_t slot;
	int fd;

	for (slot = 0; slot < b->o.links_per_path && p->links[slot] != NONE; slot++)
		;
	if (slot == b->o.links_per_path || !(l = qg_brg_link_alloc(b)))
		return;
	fd = qg_brg_link_dial(b, p, l);
	if (fd < 0) {
		qg_brg_link_free(b, l);
		connect_failed(b, p, now);
		return;
	}
	l->fd = fd;
	l->out = 1;
	l->owner = pi;
	l->state = LINK_CONNECTING;
	p->links[slot] = (uint32_t)(l - b->links);
	p->n_links++;
	p->connecting++;
	qg_brg_path_publish(p);
}

void qg_brg_connect_done(struct qg_bridge *b, struct link *l, uint64_t now)
{
	struct bpath *p = &b->paths[l->owner];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		/* Closing as CONNECTING leaves the back-off to connect_failed(). */
		qg_brg_link_close(b, l, 1, now);
		connect_failed(b, p, now);
		return;
	}
	ev.data.u64 = qg_brg_ev(EV_LINK, (uint32_t)(l - b->links));
	epoll_ctl(b->epfd, EPOLL_CTL_MOD, l->fd, &ev);
	l->state = LINK_UP;
	qg_brg_link_fill_mtu(b, l);
	p->connecting--;
	p->connected++;
	p->failures = 0;
	p->next_ms = 0;
	qg_brg_path_publish(p);
	CTR_ADD(qg_brg_out_ctr(b)->links_up, 1);
	CTR_ADD(qg_brg_out_ctr(b)->links_active, 1);
	/* What the flow sent while the link connected, in order. */
	l->q_armed = 0;
	if (l->q_n)
		qg_brg_link_flush(b, l, now);
}

/* Keep spare unbound links per path, one attempt at a time, within the cap and the back-off. */
uint64_t qg_brg_maintain_pools(struct qg_bridge *b, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < b->n_paths; i++) {
		struct bpath *p = &b->paths[i];
		uint32_t unbound = p->n_links - p->bound;

		if (p->connecting || unbound >= b->o.spare_links || p->n_links >= b->o.links_per_path)
			continue;
		if (now < p->next_ms) {
			if (p->next_ms < next)
				next = p->next_ms;
			continue;
		}
		start_connect(b, i, now);
		if (!p->connecting && p->next_ms < next)
			next = p->next_ms;
	}
	return next;
}

static struct bpath *find_path(struct qg_bridge *b, uint32_t svc, uint32_t backend, uint32_t path)
{
	uint32_t lo = 0, hi = b->n_paths;

	/* Paths were made in (service, backend, path) order. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct bpath *p = &b->paths[mid];
		int c = p->svc != svc		? (p->svc < svc ? -1 : 1)
			: p->backend != backend ? (p->backend < backend ? -1 : 1)
			: p->path != path	? (p->path < path ? -1 : 1)
						: 0;

		if (!c)
			return &b->paths[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A worker's datagram for a backend: on the flow's link, or bind the flow to a ready one. */
void qg_brg_to_backend(struct qg_bridge *b, unsigned w, const struct qg_bridge_slot *s, uint64_t now)
{
	struct qg_bridge_stats *c = qg_brg_out_ctr(b);
	struct bpath *p = find_path(b, s->msg.svc, s->msg.backend, s->msg.path);
	struct link *l = NULL, *idle = NULL, *pending = NULL;

	if (!p || s->msg.link == NONE) {
		CTR_ADD(c->stale, 1);
		return;
	}
	for (uint32_t i = 0; i < b->o.links_per_path; i++) {
		struct link *x;

		if (p->links[i] == NONE)
			continue;
		x = &b->links[p->links[i]];
		if (x->tag == s->msg.link && x->worker == w) {
			l = x;
			break;
		}
		if (x->tag != NONE)
			continue;
		if (x->state == LINK_UP && !idle)
			idle = x;
		else if (x->state == LINK_CONNECTING && !pending)
			pending = x;
	}
	if (s->msg.flags & QG_BRIDGE_MSG_F_CLOSE) {
		/* The flow ended: its link goes back to the pool; late replies on it are stale. */
		if (l) {
			/* Not for the next flow of this link: dropped (counted). */
			qg_brg_sendq_discard(b, l);
			l->tag = NONE;
			p->bound--;
			qg_brg_path_publish(p);
		}
		return;
	}
	if (!l) {
		l = idle ? idle : pending;
		if (!l) {
			CTR_ADD(c->no_link, 1);
			return;
		}
		l->tag = s->msg.link;
		l->worker = w;
		p->bound++;
		qg_brg_path_publish(p);
	}
	/* A connecting link queues it until it is up. */
	qg_brg_link_send(b, l, s->data, s->msg.len, now);
}

static const struct qg_config_bridge *via_for(const struct qg_bridge *b, enum qg_config_path_kind kind)
{
	enum qg_config_bt_transport t = kind == QG_CONFIG_PATH_BT_LE ? QG_CONFIG_BT_LE : QG_CONFIG_BT_BREDR;

	/* Outbound links leave through the first bridge of their transport, with its security. */
	for (uint32_t i = 0; i < b->n_br; i++)
		if (b->br[i].transport == t)
			return &b->br[i];
	return NULL;
}

int qg_brg_make_paths(struct qg_bridge *b, const struct qg_config *cfg)
{
	uint32_t n = 0, k = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t s = 0; s < cfg->n_services; s++) {
			for (uint32_t i = 0; i < cfg->services[s].n_backends; i++) {
				const struct qg_config_backend *bk = &cfg->services[s].backends[i];

				for (uint32_t p = 0; p < bk->n_paths; p++) {
					struct bpath *bp;

					if (bk->paths[p].kind == QG_CONFIG_PATH_UDP)
						continue;
					if (!pass) {
						n++;
						continue;
					}
					bp = &b->paths[k++];
					bp->cfg = bk->paths[p];
					bp->via = via_for(b, bk->paths[p].kind);
					bp->svc = s;
					snprintf(bp->svc_name, sizeof(bp->svc_name), "%s",
						 cfg->services[s].name);
					bp->backend = i;
					bp->path = p;
					bp->links = malloc(sizeof(*bp->links) * b->o.links_per_path);
					if (!bp->links)
						return -ENOMEM;
					for (uint32_t j = 0; j < b->o.links_per_path; j++)
						bp->links[j] = NONE;
				}
			}
		}
		if (!pass) {
			b->n_paths = n;
			b->paths = calloc(n ? n : 1, sizeof(*b->paths));
			if (!b->paths)
				return -ENOMEM;
		}
	}
	return 0;
}
