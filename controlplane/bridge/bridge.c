/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Bluetooth bridge core (bridge.h): inbound links accepted on the
 * bridges' listeners, pools of outbound links to Bluetooth backend paths,
 * and the rings to the workers, all driven by one epoll loop on the bridge's
 * own thread. The socket layer is an ops table, so the same code runs on
 * L2CAP and, in tests, on AF_UNIX SOCK_SEQPACKET socket pairs.
 *
 * Links live in one table; a link id is its index plus a generation, so a
 * reply for a link that closed (and whose slot was reused) is recognised as
 * stale instead of reaching another device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge_internal.h"
#include "qgate/log.h"

int qg_bridge_configured(const struct qg_config *cfg)
{
	if (!cfg)
		return 0;
	if (cfg->n_bridges)
		return 1;
	for (uint32_t s = 0; s < cfg->n_services; s++)
		for (uint32_t i = 0; i < cfg->services[s].n_backends; i++)
			for (uint32_t p = 0; p < cfg->services[s].backends[i].n_paths; p++)
				if (cfg->services[s].backends[i].paths[p].kind != QG_CONFIG_PATH_UDP)
					return 1;
	return 0;
}

int qg_bridge_probe(void)
{
	/* AF_BLUETOOTH = 31, BTPROTO_L2CAP = 0: spelled out so this file needs no BlueZ header. */
	int fd = socket(31, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* ---- links ---- */

struct link *qg_brg_link_alloc(struct qg_bridge *b)
{
	struct link *l;

	if (b->free_head == NONE)
		return NULL;
	l = &b->links[b->free_head];
	b->free_head = l->next_free;
	l->fd = -1;
	l->tag = NONE;
	l->probe = 0;
	l->imtu = l->omtu = DEFAULT_MTU;
	l->q_head = l->q_n = l->q_off = l->q_bytes = 0;
	l->q_armed = 0;
	return l;
}

void qg_brg_link_free(struct qg_bridge *b, struct link *l)
{
	l->fd = -1;
	l->state = LINK_FREE;
	l->next_free = b->free_head;
	b->free_head = (uint32_t)(l - b->links);
}

/* A message without payload to worker w (a link's end). Counted when the ring is full. */
static int to_worker(struct qg_bridge *b, unsigned w, const struct qg_bridge_msg *m,
		     struct qg_bridge_stats *c)
{
	struct qg_bridge_dir *d = &b->rings->pair[w].to_worker;
	struct qg_bridge_slot *s;
	uint32_t idx;

	if (b->held[w] != NONE) {
		idx = b->held[w];
		b->held[w] = NONE;
	} else if (qg_bridge_dir_acquire(d, &idx)) {
		CTR_ADD(c->ring_full, 1);
		return -ENOBUFS;
	}
	s = qg_bridge_dir_slot(b->rings, d, idx);
	s->msg = *m;
	s->msg.len = 0;
	qg_bridge_dir_commit(d, idx);
	b->ring_rang[w] = 1;
	return 0;
}

struct qg_bridge_stats *qg_brg_link_ctr(struct qg_bridge *b, const struct link *l)
{
	return &b->ctr[l->out ? b->n_br : l->owner];
}

/* Tell the worker of a link that it is gone (the flow ends or rebinds). */
static void notify_close(struct qg_bridge *b, struct link *l)
{
	struct qg_bridge_msg m = { 0 };

	if (l->out) {
		const struct bpath *p = &b->paths[l->owner];

		if (l->tag == NONE)
			return;
		m.kind = QG_BRIDGE_MSG_BACKEND;
		m.svc = p->svc;
		m.backend = p->backend;
		m.path = (uint8_t)p->path;
		m.link = l->tag;
	} else {
		m.kind = QG_BRIDGE_MSG_CLIENT;
		m.svc = b->br[l->owner].service;
		m.link = qg_brg_link_id(b, l);
	}
	m.flags = QG_BRIDGE_MSG_F_CLOSE;
	to_worker(b, l->worker, &m, qg_brg_link_ctr(b, l));
}

/*
 * Close a link, tell its worker (notify), and for an outbound one schedule the pool's
 * refill: a lost link is retried after the shortest back-off, failed
 * connects double it (connect_failed()).
 */
void qg_brg_link_close(struct qg_bridge *b, struct link *l, int notify, uint64_t now)
{
	struct qg_bridge_stats *c = qg_brg_link_ctr(b, l);
	uint32_t idx = (uint32_t)(l - b->links);

	if (notify)
		notify_close(b, l);
	if (l->fd >= 0) {
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
	}
	l->q_armed = 0; /* the registration went with the socket */
	qg_brg_sendq_discard(b, l);
	if (l->state == LINK_UP) {
		CTR_ADD(c->links_down, 1);
		CTR_ADD(c->links_active, -1);
	}
	if (l->out && l->probe) {
		qg_brg_probe_link_closed(b, l, now);
	} else if (l->out) {
		struct bpath *p = &b->paths[l->owner];

		for (uint32_t i = 0; i < b->o.links_per_path; i++)
			if (p->links[i] == idx)
				p->links[i] = NONE;
		p->n_links--;
		if (l->state == LINK_UP) {
			p->connected--;
			if (p->next_ms < now + b->o.backoff_min_ms)
				p->next_ms = now + b->o.backoff_min_ms;
		} else {
			p->connecting--;
		}
		if (l->tag != NONE)
			p->bound--;
		qg_brg_path_publish(p);
	} else {
		b->lis[l->owner].active--;
	}
	l->fd = -1;
	l->state = LINK_FREE;
	l->tag = NONE;
	l->gen = (uint16_t)((l->gen + 1) & LINK_GEN_MASK);
	l->next_free = b->free_head;
	b->free_head = idx;
}

void qg_brg_link_fill_mtu(struct qg_bridge *b, struct link *l)
{
	uint32_t imtu = 0, omtu = 0;

	if (b->o.ops->mtu && !b->o.ops->mtu(b->o.ops_ctx, l->fd, &imtu, &omtu) && omtu) {
		l->imtu = imtu ? imtu : DEFAULT_MTU;
		l->omtu = omtu;
	}
}

/* ---- inbound ---- */

static void open_listener(struct qg_bridge *b, uint32_t i, uint64_t now)
{
	const struct qg_config_bridge *br = &b->br[i];
	struct listener *li = &b->lis[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = qg_brg_ev(EV_LISTEN, i) };
	int fd;

	fd = b->o.ops->listen(b->o.ops_ctx, br, b->rings->max_datagram);
	if (fd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int rc = -errno;

		close(fd);
		fd = rc;
	}
	if (fd < 0) {
		/* Said once per cause: an unplugged adapter must not fill the log every 30 s. */
		if (fd != li->last_err)
			QG_LOG_WARN("bridge %u (%s PSM 0x%04x, service %s): cannot listen: %s; retrying", i,
				    br->adapter, br->psm, b->svc_name[i], strerror(-fd));
		li->last_err = fd;
		CTR_ADD(b->ctr[i].listen_failures, 1);
		li->next_ms = now + qg_brg_backoff(b, li->failures++);
		return;
	}
	QG_LOG_INFO("bridge %u: listening on %s %s PSM 0x%04x for service %s (max %u links)", i, br->adapter,
		    br->transport == QG_CONFIG_BT_LE ? "le" : "bredr", br->psm, b->svc_name[i],
		    br->max_links);
	li->fd = fd;
	li->failures = 0;
	li->last_err = 0;
}

static int allowed(const struct qg_config_bridge *br, const uint8_t peer[6])
{
	if (!br->n_allow)
		return 1;
	for (uint32_t i = 0; i < br->n_allow; i++)
		if (!memcmp(br->allow[i], peer, 6))
			return 1;
	return 0;
}

static void accept_links(struct qg_bridge *b, uint32_t i)
{
	const struct qg_config_bridge *br = &b->br[i];
	struct listener *li = &b->lis[i];
	struct qg_bridge_stats *c = &b->ctr[i];

	for (;;) {
		struct epoll_event ev;
		uint8_t peer[6] = { 0 };
		struct link *l;
		int fd;

		fd = b->o.ops->accept(b->o.ops_ctx, li->fd, peer);
		if (fd < 0)
			return;
		/* Accepted then closed: the device sees its channel refused at once. */
		if (!allowed(br, peer)) {
			CTR_ADD(c->rejected_allow, 1);
			close(fd);
			continue;
		}
		if (li->active >= br->max_links || !(l = qg_brg_link_alloc(b))) {
			CTR_ADD(c->rejected_full, 1);
			close(fd);
			continue;
		}
		l->fd = fd;
		l->out = 0;
		l->owner = i;
		l->worker = (uint32_t)(l - b->links) % b->rings->n_workers;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.u64 = qg_brg_ev(EV_LINK, (uint32_t)(l - b->links));
		if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			qg_brg_link_free(b, l);
			CTR_ADD(c->rejected_full, 1);
			continue;
		}
		l->state = LINK_UP;
		qg_brg_link_fill_mtu(b, l);
		li->active++;
		CTR_ADD(c->links_up, 1);
		CTR_ADD(c->links_active, 1);
	}
}

/* ---- the rings ---- */

static void to_client(struct qg_bridge *b, const struct qg_bridge_slot *s, uint64_t now)
{
	uint32_t idx = s->msg.link & LINK_IDX_MASK;
	struct link *l = idx < b->n_links ? &b->links[idx] : NULL;

	if (!l || l->out || l->state != LINK_UP || qg_brg_link_id(b, l) != s->msg.link ||
	    b->br[l->owner].service != s->msg.svc) {
		/* The link closed since: count it where the link belonged, when that is known. */
		CTR_ADD(b->ctr[l && !l->out ? l->owner : b->n_br].stale, 1);
		return;
	}
	/* Closed at the worker's request: it knows already. */
	if (s->msg.flags & QG_BRIDGE_MSG_F_CLOSE)
		qg_brg_link_close(b, l, 0, now);
	else
		qg_brg_link_send(b, l, s->data, s->msg.len, now);
}

static void drain_rings(struct qg_bridge *b, uint64_t now)
{
	for (unsigned w = 0; w < b->rings->n_workers; w++) {
		struct qg_bridge_dir *d = &b->rings->pair[w].to_bridge;
		uint32_t idx;

		for (unsigned n = 0; n < RING_BUDGET && !qg_bridge_dir_take(d, &idx); n++) {
			const struct qg_bridge_slot *s = qg_bridge_dir_slot(b->rings, d, idx);

			if (s->msg.kind == QG_BRIDGE_MSG_CLIENT)
				to_client(b, s, now);
			else if (s->msg.kind == QG_BRIDGE_MSG_BACKEND)
				qg_brg_to_backend(b, w, s, now);
			else
				CTR_ADD(qg_brg_out_ctr(b)->stale, 1);
			qg_bridge_dir_release(d, idx);
		}
	}
}

static void ring_doorbells(struct qg_bridge *b)
{
	static const uint64_t one = 1;

	for (unsigned w = 0; w < b->rings->n_workers; w++) {
		if (!b->ring_rang[w])
			continue;
		b->ring_rang[w] = 0;
		if (write(b->rings->pair[w].worker_efd, &one, sizeof(one)) < 0) {
			/* Saturated: the worker has plenty to read already. */
		}
	}
}

/* ---- receiving ---- */

static void link_readable(struct qg_bridge *b, struct link *l, uint32_t events, uint64_t now)
{
	struct qg_bridge_stats *c = qg_brg_link_ctr(b, l);

	for (int n = 0; n < RX_BUDGET; n++) {
		struct qg_bridge_dir *d = &b->rings->pair[l->worker].to_worker;
		struct qg_bridge_slot *s = NULL;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		int drop = 0;
		ssize_t got;

		/* Idle outbound links have nobody to deliver to: late replies of an ended flow. */
		if (l->out && l->tag == NONE) {
			drop = 1;
		} else if (b->held[l->worker] != NONE || !qg_bridge_dir_acquire(d, &b->held[l->worker])) {
			s = qg_bridge_dir_slot(b->rings, d, b->held[l->worker]);
		} else {
			drop = 2;
		}
		iov.iov_base = s ? s->data : b->scratch;
		iov.iov_len = b->rings->max_datagram;
		got = recvmsg(l->fd, &mh, MSG_DONTWAIT);
		if (got < 0) {
			if (errno != EAGAIN && errno != EINTR)
				qg_brg_link_close(b, l, 1, now);
			return;
		}
		/* 0 with a hang-up is the end; without one it is an empty SDU, which is a datagram. */
		if (got == 0 && (events & (EPOLLRDHUP | EPOLLHUP))) {
			qg_brg_link_close(b, l, 1, now);
			return;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			CTR_ADD(c->rx_oversize, 1);
			continue;
		}
		if (drop) {
			if (drop == 1)
				CTR_ADD(c->stale, 1);
			else
				CTR_ADD(c->ring_full, 1);
			continue;
		}
		memset(&s->msg, 0, sizeof(s->msg));
		s->msg.len = (uint32_t)got;
		if (l->out) {
			const struct bpath *p = &b->paths[l->owner];

			s->msg.kind = QG_BRIDGE_MSG_BACKEND;
			s->msg.svc = p->svc;
			s->msg.backend = p->backend;
			s->msg.path = (uint8_t)p->path;
			s->msg.link = l->tag;
		} else {
			s->msg.kind = QG_BRIDGE_MSG_CLIENT;
			s->msg.svc = b->br[l->owner].service;
			s->msg.link = qg_brg_link_id(b, l);
		}
		qg_bridge_dir_commit(d, b->held[l->worker]);
		b->held[l->worker] = NONE;
		b->ring_rang[l->worker] = 1;
		CTR_ADD(c->rx_sdus, 1);
		CTR_ADD(c->rx_bytes, (uint64_t)got);
	}
}

static void link_event(struct qg_bridge *b, uint32_t idx, uint32_t events, uint64_t now)
{
	struct link *l;

	if (idx >= b->n_links)
		return;
	l = &b->links[idx];
	if (l->state == LINK_CONNECTING) {
		if (l->probe)
			qg_brg_probe_connect_done(b, l, now);
		else
			qg_brg_connect_done(b, l, now);
		return;
	}
	if (l->state != LINK_UP)
		return;
	/* Writable again (EPOLLOUT is asked for only while the send queue holds something). */
	if ((events & EPOLLOUT) && !l->probe) {
		qg_brg_link_flush(b, l, now);
		if (l->state != LINK_UP)
			return;
	}
	if (l->probe && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
		qg_brg_probe_readable(b, l, events, now);
	else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		link_readable(b, l, events, now);
	else if (events & EPOLLERR)
		qg_brg_link_close(b, l, 1, now);
}

/* ---- the loop ---- */

int qg_bridge_poll(struct qg_bridge *b, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now, next = UINT64_MAX;
	int n, i;

	if (!b)
		return -EINVAL;
	now = qg_brg_now(b);
	for (uint32_t k = 0; k < b->n_br; k++) {
		if (b->lis[k].fd >= 0)
			continue;
		if (now >= b->lis[k].next_ms)
			open_listener(b, k, now);
		if (b->lis[k].fd < 0 && b->lis[k].next_ms < next)
			next = b->lis[k].next_ms;
	}
	{
		uint64_t pool_next = qg_brg_maintain_pools(b, now);
		uint64_t probe_next = qg_brg_probe_tick(b, now);

		if (pool_next < next)
			next = pool_next;
		if (probe_next < next)
			next = probe_next;
	}
	drain_rings(b, now);
	ring_doorbells(b);
	qg_brg_probe_doorbell(b);
	if (next != UINT64_MAX && timeout_ms != 0) {
		uint64_t wait = next > now ? next - now : 0;

		if (timeout_ms < 0 || wait < (uint64_t)timeout_ms)
			timeout_ms = (int)wait;
	}
	if (timeout_ms != 0 && qg_bridge_rings_prepare_sleep(b->rings))
		timeout_ms = 0;
	n = epoll_wait(b->epfd, evs, MAX_EVENTS, timeout_ms);
	qg_bridge_rings_woke(b->rings);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	now = qg_brg_now(b);
	for (i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)evs[i].data.u64;

		switch ((enum ev_type)(evs[i].data.u64 >> 32)) {
		case EV_LISTEN:
			accept_links(b, idx);
			break;
		case EV_LINK:
			link_event(b, idx, evs[i].events, now);
			break;
		case EV_WAKE:
		case EV_STOP:
			break;
		}
	}
	drain_rings(b, now);
	ring_doorbells(b);
	qg_brg_probe_doorbell(b);
	return 0;
}

static void *bridge_thread(void *arg)
{
	struct qg_bridge *b = arg;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE))
		qg_bridge_poll(b, 1000);
	return NULL;
}

/* ---- life cycle ---- */

static void opts_defaults(struct qg_bridge_opts *o, const struct qg_config *cfg)
{
	if (!o->n_workers)
		o->n_workers = cfg->dataplane.n_cores ? cfg->dataplane.n_cores : 1;
	if (!o->ring_slots)
		o->ring_slots = QG_BRIDGE_DEFAULT_RING_SLOTS;
	if (!o->backoff_min_ms)
		o->backoff_min_ms = QG_BRIDGE_DEFAULT_BACKOFF_MIN_MS;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = QG_BRIDGE_DEFAULT_BACKOFF_MAX_MS;
	if (o->backoff_max_ms < o->backoff_min_ms)
		o->backoff_max_ms = o->backoff_min_ms;
	if (!o->links_per_path)
		o->links_per_path = QG_BRIDGE_DEFAULT_LINKS_PER_PATH;
	if (!o->spare_links)
		o->spare_links = QG_BRIDGE_DEFAULT_SPARE_LINKS;
	if (!o->ops)
		o->ops = &qg_bridge_l2cap_ops;
	if (!o->sendq_sdus)
		o->sendq_sdus = QG_BRIDGE_DEFAULT_SENDQ_SDUS;
	if (!o->sendq_bytes)
		o->sendq_bytes = QG_BRIDGE_DEFAULT_SENDQ_BYTES;
	/* Room for the largest datagram, or it could never wait. */
	if (o->sendq_bytes < cfg->dataplane.max_datagram)
		o->sendq_bytes = cfg->dataplane.max_datagram;
}

int qg_bridge_create(const struct qg_config *cfg, const struct qg_bridge_opts *opts, struct qg_bridge **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct qg_bridge *b;
	uint64_t n_links = 0;
	uint32_t i;
	int rc;

	if (!cfg || !out || cfg->n_bridges > QG_CONFIG_MAX_BRIDGES)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->epfd = b->stop_efd = b->probe_efd = -1;
	b->n_br = cfg->n_bridges;
	memcpy(b->br, cfg->bridges, sizeof(cfg->bridges[0]) * cfg->n_bridges);
	for (i = 0; i < b->n_br; i++) {
		rc = -EINVAL;
		if (b->br[i].service >= cfg->n_services)
			goto err;
		snprintf(b->svc_name[i], sizeof(b->svc_name[i]), "%s", cfg->services[b->br[i].service].name);
	}
	if (opts)
		b->o = *opts;
	opts_defaults(&b->o, cfg);
	rc = -EINVAL;
	if (b->o.spare_links > b->o.links_per_path || !b->o.ops->listen || !b->o.ops->accept ||
	    !b->o.ops->connect || b->o.sendq_sdus > QG_BRIDGE_SENDQ_SDUS_MAX ||
	    b->o.sendq_bytes > QG_BRIDGE_SENDQ_BYTES_MAX)
		goto err;
	rc = qg_bridge_rings_create(b->o.n_workers, b->o.ring_slots, cfg->dataplane.max_datagram, &b->rings);
	if (rc)
		goto err;
	rc = qg_brg_make_paths(b, cfg);
	if (rc)
		goto err;
	for (i = 0; i < cfg->n_bridges; i++)
		n_links += cfg->bridges[i].max_links;
	/* Each path's pool, and its probe link. */
	n_links += (uint64_t)b->n_paths * (b->o.links_per_path + 1);
	rc = -E2BIG;
	if (n_links > LINK_IDX_MASK)
		goto err;
	rc = -ENOMEM;
	b->n_links = (uint32_t)n_links;
	b->links = calloc(n_links ? n_links : 1, sizeof(*b->links));
	b->lis = calloc(cfg->n_bridges + 1, sizeof(*b->lis));
	b->ctr = calloc(cfg->n_bridges + 1, sizeof(*b->ctr));
	b->held = malloc(sizeof(*b->held) * b->o.n_workers);
	b->ring_rang = calloc(b->o.n_workers, 1);
	b->scratch = malloc(cfg->dataplane.max_datagram);
	if (!b->links || !b->lis || !b->ctr || !b->held || !b->ring_rang || !b->scratch)
		goto err;
	for (i = 0; i < b->o.n_workers; i++)
		b->held[i] = NONE;
	b->free_head = NONE;
	for (i = b->n_links; i-- > 0;) {
		b->links[i].fd = -1;
		b->links[i].tag = NONE;
		b->links[i].next_free = b->free_head;
		b->free_head = i;
	}
	rc = qg_brg_sendq_init(b);
	if (rc)
		goto err;
	for (i = 0; i < cfg->n_bridges; i++)
		b->lis[i].fd = -1;
	rc = qg_brg_probe_init(b, cfg, qg_brg_now(b));
	if (rc)
		goto err;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->epfd < 0 || b->stop_efd < 0) {
		rc = -errno;
		goto err;
	}
	ev.data.u64 = qg_brg_ev(EV_WAKE, 0);
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->rings->bridge_efd, &ev)) {
		rc = -errno;
		goto err;
	}
	ev.data.u64 = qg_brg_ev(EV_STOP, 0);
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->stop_efd, &ev)) {
		rc = -errno;
		goto err;
	}
	*out = b;
	return 0;
err:
	qg_bridge_destroy(b);
	return rc;
}

int qg_bridge_start(struct qg_bridge *b)
{
	int rc;

	if (!b)
		return -EINVAL;
	if (b->started)
		return 0;
	__atomic_store_n(&b->stop, 0, __ATOMIC_RELEASE);
	rc = pthread_create(&b->thread, NULL, bridge_thread, b);
	if (rc)
		return -rc;
	pthread_setname_np(b->thread, "qgate-bridge");
	b->started = 1;
	return 0;
}

void qg_bridge_stop(struct qg_bridge *b)
{
	static const uint64_t one = 1;

	if (!b || !b->started)
		return;
	__atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
	if (write(b->stop_efd, &one, sizeof(one)) < 0) {
		/* Saturated: the thread is being woken anyway. */
	}
	pthread_join(b->thread, NULL);
	b->started = 0;
	/* Drained, so a later start does not see the old stop. */
	{
		uint64_t v;

		while (read(b->stop_efd, &v, sizeof(v)) > 0)
			;
	}
}

void qg_bridge_destroy(struct qg_bridge *b)
{
	if (!b)
		return;
	qg_bridge_stop(b);
	for (uint32_t i = 0; b->links && i < b->n_links; i++)
		if (b->links[i].fd >= 0)
			close(b->links[i].fd);
	for (uint32_t i = 0; b->lis && i < b->n_br; i++)
		if (b->lis[i].fd >= 0)
			close(b->lis[i].fd);
	for (uint32_t i = 0; b->paths && i < b->n_paths; i++)
		free(b->paths[i].links);
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->stop_efd >= 0)
		close(b->stop_efd);
	qg_bridge_rings_destroy(b->rings);
	qg_brg_probe_fini(b);
	free(b->paths);
	free(b->links);
	free(b->lis);
	free(b->ctr);
	free(b->held);
	free(b->ring_rang);
	free(b->scratch);
	free(b->q_mem);
	free(b->q_len_mem);
	free(b);
}

struct qg_bridge_rings *qg_bridge_get_rings(struct qg_bridge *b)
{
	return b ? b->rings : NULL;
}

_Static_assert(sizeof(struct qg_bridge_stats) % sizeof(uint64_t) == 0, "stats are uint64_t fields only");

int qg_bridge_get_stats(const struct qg_bridge *b, unsigned idx, struct qg_bridge_stats *out)
{
	const uint64_t *src;
	uint64_t *dst;

	if (!b || !out || idx > b->n_br)
		return -ENOENT;
	src = (const uint64_t *)&b->ctr[idx];
	dst = (uint64_t *)out;
	/* Every field is a single-writer uint64_t. */
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 0;
}

unsigned qg_bridge_path_count(const struct qg_bridge *b)
{
	return b ? b->n_paths : 0;
}

int qg_bridge_get_path_info(const struct qg_bridge *b, unsigned idx, struct qg_bridge_path_info *out)
{
	const struct bpath *p;

	if (!b || !out || idx >= b->n_paths)
		return -ENOENT;
	p = &b->paths[idx];
	out->svc = p->svc;
	out->backend = p->backend;
	out->path = p->path;
	out->connected = __atomic_load_n(&p->connected, __ATOMIC_RELAXED);
	out->bound = __atomic_load_n(&p->bound, __ATOMIC_RELAXED);
	out->connecting = __atomic_load_n(&p->connecting, __ATOMIC_RELAXED);
	out->failures = __atomic_load_n(&p->failures, __ATOMIC_RELAXED);
	out->next_try_ms = __atomic_load_n(&p->next_ms, __ATOMIC_RELAXED);
	out->key = p->cfg;
	memcpy(out->service, p->svc_name, sizeof(out->service));
	out->probed = p->probe_send != NULL;
	/* The link table belongs to the bridge thread: only the published counts are read here. */
	out->probes = __atomic_load_n(&p->probes, __ATOMIC_RELAXED);
	out->probe_failures = __atomic_load_n(&p->probe_failures, __ATOMIC_RELAXED);
	out->probe_link_up = __atomic_load_n(&p->probe_link_up, __ATOMIC_RELAXED);
	return 0;
}
