/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Active probes of Bluetooth backend paths (bridge.h, docs/BLUETOOTH.md):
 * the health probe of the path's service (health.send / health.expect, or
 * the QUIC VN probe; same interval and timeout) sent over a link of the
 * path, and each result queued for the control thread, which owns the
 * transport scorers (qgate/paths.h).
 *
 * Each probed path has a probe link of its own, outside the pool: a pooled
 * link may be bound to a flow at any moment by a worker's first datagram,
 * and a probe reply must never reach a flow's client, nor a flow's reply be
 * taken for a probe's. One more L2CAP channel per path is cheap (channels to
 * one device share its ACL link), and whether it connects is itself what the
 * probe should tell. A path without a probe link fails its probe at once
 * (NO_LINK); a probe due while the link is connecting waits for it within
 * its timeout. The link reconnects after backoff_min, doubled per failed
 * attempt, like the pools.
 *
 * Results travel in a fixed array with a head the bridge stores and a tail
 * the control thread stores (release / acquire, no read-modify-write); a full
 * ring drops the result and counts it. An eventfd tells the control loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge_internal.h"
#include "qgate/hash.h"
#include "qgate/quic.h"

#define PROBE_SPREAD_SEED 0x42545072626521ULL
#define VN_PROBE_VERSION  0x1a2a3a4au /* reserved (RFC 9000 Sec 15): any server answers with VN */
#define VN_CID_LEN	  8
#define VN_PROBE_MAX	  1500

static const uint8_t vn_dcid[VN_CID_LEN] = { 'q', 'g', 'a', 't', 'e', 'b', 't', 'd' };
static const uint8_t vn_scid[VN_CID_LEN] = { 'q', 'g', 'a', 't', 'e', 'b', 't', 's' };

static void push_result(struct qg_bridge *b, uint32_t pi, int ok, enum qg_bridge_probe_why why,
			uint32_t rtt_us, uint64_t now)
{
	struct probe_ring *r = b->probe_ring;
	struct bpath *p = &b->paths[pi];
	uint32_t head = r->head;
	struct qg_bridge_probe_result *e;

	PUB(p->probes, p->probes + 1);
	if (!ok)
		PUB(p->probe_failures, p->probe_failures + 1);
	if (head - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) >= PROBE_RING_SIZE) {
		CTR_ADD(r->dropped, 1);
		return;
	}
	e = &r->r[head & (PROBE_RING_SIZE - 1)];
	memset(e, 0, sizeof(*e));
	e->path = pi;
	e->ok = (uint8_t)ok;
	e->why = (uint8_t)why;
	e->rtt_us = rtt_us;
	e->at_ms = now;
	__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
	b->probe_rang = 1;
}

static void probe_done(struct qg_bridge *b, uint32_t pi, int ok, enum qg_bridge_probe_why why,
		       uint32_t rtt_us, uint64_t now)
{
	struct bpath *p = &b->paths[pi];

	p->probe_in_flight = 0;
	p->probe_unsent = 0;
	push_result(b, pi, ok, why, rtt_us, now);
}

int qg_brg_probe_init(struct qg_bridge *b, const struct qg_config *cfg, uint64_t now)
{
	int need_vn = 0;

	b->probe_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->probe_efd < 0)
		return -errno;
	b->probe_ring = aligned_alloc(64, (sizeof(*b->probe_ring) + 63) / 64 * 64);
	if (!b->probe_ring)
		return -ENOMEM;
	memset(b->probe_ring, 0, sizeof(*b->probe_ring));
	for (uint32_t i = 0; i < b->n_paths; i++)
		need_vn |= cfg->services[b->paths[i].svc].health.probe == QG_CONFIG_PROBE_QUIC_VN;
	if (need_vn) {
		size_t n;

		b->probe_vn = malloc(VN_PROBE_MAX);
		if (!b->probe_vn)
			return -ENOMEM;
		n = qg_quic_build_vn_probe(b->probe_vn, VN_PROBE_MAX, VN_PROBE_VERSION, vn_dcid, VN_CID_LEN,
					   vn_scid, VN_CID_LEN);
		b->probe_vn_len = (uint32_t)n;
	}
	for (uint32_t i = 0; i < b->n_paths; i++) {
		struct bpath *p = &b->paths[i];
		const struct qg_config_health *h = &cfg->services[p->svc].health;

		p->probe_link = NONE;
		if (h->probe == QG_CONFIG_PROBE_NONE ||
		    (h->probe == QG_CONFIG_PROBE_QUIC_VN && !b->probe_vn_len))
			continue;
		p->probe_kind = (uint8_t)h->probe;
		p->probe_interval_ms = h->interval_ms ? h->interval_ms : 1000;
		p->probe_timeout_ms = h->timeout_ms ? h->timeout_ms : p->probe_interval_ms;
		if (h->probe == QG_CONFIG_PROBE_QUIC_VN) {
			p->probe_send = b->probe_vn;
			p->probe_send_len = b->probe_vn_len;
		} else {
			/* The configuration is copied: the bridge outlives a reloaded one. */
			uint8_t *send = malloc(strlen(h->send) + 1);

			if (!send)
				return -ENOMEM;
			memcpy(send, h->send, strlen(h->send) + 1);
			p->probe_send = send;
			p->probe_send_len = (uint32_t)strlen(h->send);
			memcpy(p->probe_expect, h->expect, sizeof(p->probe_expect));
		}
		/* Spread like the checker's probes: paths of one device do not all ask at once. */
		p->probe_next_ms =
			now + (qg_hash_bytes(p->cfg.bdaddr, sizeof(p->cfg.bdaddr), PROBE_SPREAD_SEED) ^
			       p->cfg.psm) %
				      p->probe_interval_ms;
	}
	return 0;
}

void qg_brg_probe_fini(struct qg_bridge *b)
{
	for (uint32_t i = 0; b->paths && i < b->n_paths; i++)
		if (b->paths[i].probe_send != b->probe_vn)
			free((void *)b->paths[i].probe_send);
	free(b->probe_vn);
	free(b->probe_ring);
	if (b->probe_efd >= 0)
		close(b->probe_efd);
}

static void probe_link_connect(struct qg_bridge *b, uint32_t pi, uint64_t now)
{
	struct bpath *p = &b->paths[pi];
	struct link *l = qg_brg_link_alloc(b);
	int fd;

	if (!l)
		return;
	fd = qg_brg_link_dial(b, p, l);
	if (fd < 0) {
		qg_brg_link_free(b, l);
		CTR_ADD(qg_brg_out_ctr(b)->connect_failures, 1);
		p->probe_link_next_ms = now + qg_brg_backoff(b, ++p->probe_link_fails);
		return;
	}
	l->fd = fd;
	l->out = 1;
	l->probe = 1;
	l->owner = pi;
	l->state = LINK_CONNECTING;
	p->probe_link = (uint32_t)(l - b->links);
}

/* Send the probe on an up link: a send that fails is a failed probe. */
static void probe_send(struct qg_bridge *b, uint32_t pi, struct link *l, uint64_t now)
{
	struct bpath *p = &b->paths[pi];
	ssize_t n;

	p->probe_unsent = 0;
	p->probe_sent_ns = qg_clock_ns();
	n = send(l->fd, p->probe_send, p->probe_send_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)p->probe_send_len)
		return;
	probe_done(b, pi, 0, QG_BRIDGE_PROBE_SEND_FAILED, 0, now);
	if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
		qg_brg_link_close(b, l, 0, now);
}

static void probe_start(struct qg_bridge *b, uint32_t pi, uint64_t now)
{
	struct bpath *p = &b->paths[pi];
	struct link *l = p->probe_link != NONE ? &b->links[p->probe_link] : NULL;

	p->probe_next_ms += p->probe_interval_ms;
	if (p->probe_next_ms <= now)
		p->probe_next_ms = now + p->probe_interval_ms;
	if (!l) {
		push_result(b, pi, 0, QG_BRIDGE_PROBE_NO_LINK, 0, now);
		return;
	}
	p->probe_in_flight = 1;
	p->probe_deadline_ms = now + p->probe_timeout_ms;
	if (l->state != LINK_UP) {
		p->probe_unsent = 1; /* sent when the link connects, if before the deadline */
		return;
	}
	probe_send(b, pi, l, now);
}

uint64_t qg_brg_probe_tick(struct qg_bridge *b, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < b->n_paths; i++) {
		struct bpath *p = &b->paths[i];

		if (!p->probe_send)
			continue;
		if (p->probe_link == NONE) {
			if (now >= p->probe_link_next_ms)
				probe_link_connect(b, i, now);
			if (p->probe_link == NONE && p->probe_link_next_ms < next)
				next = p->probe_link_next_ms;
		}
		if (p->probe_in_flight && now >= p->probe_deadline_ms)
			probe_done(b, i, 0,
				   p->probe_unsent ? QG_BRIDGE_PROBE_NO_LINK : QG_BRIDGE_PROBE_TIMEOUT, 0,
				   now);
		if (now >= p->probe_next_ms && !p->probe_in_flight)
			probe_start(b, i, now);
		if (p->probe_next_ms < next)
			next = p->probe_next_ms;
		if (p->probe_in_flight && p->probe_deadline_ms < next)
			next = p->probe_deadline_ms;
	}
	return next;
}

void qg_brg_probe_connect_done(struct qg_bridge *b, struct link *l, uint64_t now)
{
	struct bpath *p = &b->paths[l->owner];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		CTR_ADD(qg_brg_out_ctr(b)->connect_failures, 1);
		qg_brg_link_close(b, l, 0, now);
		/* After the close, which scheduled the shortest wait: a failed connect doubles it. */
		p->probe_link_next_ms = now + qg_brg_backoff(b, ++p->probe_link_fails);
		return;
	}
	ev.data.u64 = qg_brg_ev(EV_LINK, (uint32_t)(l - b->links));
	epoll_ctl(b->epfd, EPOLL_CTL_MOD, l->fd, &ev);
	l->state = LINK_UP;
	qg_brg_link_fill_mtu(b, l);
	p->probe_link_fails = 0;
	PUB(p->probe_link_up, 1);
	CTR_ADD(qg_brg_out_ctr(b)->links_up, 1);
	CTR_ADD(qg_brg_out_ctr(b)->links_active, 1);
	if (p->probe_in_flight && p->probe_unsent)
		probe_send(b, l->owner, l, now);
}

static int probe_matches(const struct qg_bridge *b, const struct bpath *p, const uint8_t *buf, size_t len)
{
	size_t want = strlen(p->probe_expect);

	(void)b;
	if (p->probe_kind == QG_CONFIG_PROBE_QUIC_VN)
		return qg_quic_vn_matches_probe(buf, len, vn_dcid, VN_CID_LEN, vn_scid, VN_CID_LEN);
	return len >= want && memcmp(buf, p->probe_expect, want) == 0;
}

void qg_brg_probe_readable(struct qg_bridge *b, struct link *l, uint32_t events, uint64_t now)
{
	struct bpath *p = &b->paths[l->owner];

	for (int n = 0; n < RX_BUDGET; n++) {
		ssize_t got = recv(l->fd, b->scratch, b->rings->max_datagram, MSG_DONTWAIT);

		if (got < 0) {
			if (errno != EAGAIN && errno != EINTR)
				qg_brg_link_close(b, l, 0, now);
			return;
		}
		if (got == 0 && (events & (EPOLLRDHUP | EPOLLHUP))) {
			qg_brg_link_close(b, l, 0, now);
			return;
		}
		/* A late answer to a probe already judged (timed out) is not news. */
		if (!p->probe_in_flight || p->probe_unsent)
			continue;
		if (probe_matches(b, p, b->scratch, (size_t)got)) {
			uint64_t rtt = (qg_clock_ns() - p->probe_sent_ns) / 1000;

			probe_done(b, l->owner, 1, QG_BRIDGE_PROBE_OK,
				   rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt, now);
		} else {
			probe_done(b, l->owner, 0, QG_BRIDGE_PROBE_WRONG_REPLY, 0, now);
		}
	}
}

void qg_brg_probe_link_closed(struct qg_bridge *b, struct link *l, uint64_t now)
{
	struct bpath *p = &b->paths[l->owner];

	if (p->probe_link != (uint32_t)(l - b->links))
		return;
	p->probe_link = NONE;
	PUB(p->probe_link_up, 0);
	/* Lost after it worked: retried after the shortest wait, like a pooled link. */
	if (l->state == LINK_UP)
		p->probe_link_next_ms = now + b->o.backoff_min_ms;
	if (p->probe_in_flight)
		probe_done(b, l->owner, 0,
			   p->probe_unsent ? QG_BRIDGE_PROBE_NO_LINK : QG_BRIDGE_PROBE_LINK_LOST, 0, now);
}

void qg_brg_probe_doorbell(struct qg_bridge *b)
{
	static const uint64_t one = 1;

	if (!b->probe_rang)
		return;
	b->probe_rang = 0;
	if (write(b->probe_efd, &one, sizeof(one)) < 0) {
		/* Saturated: the control thread has results to read already. */
	}
}

int qg_bridge_probe_pop(struct qg_bridge *b, struct qg_bridge_probe_result *out)
{
	struct probe_ring *r;
	uint32_t tail;

	if (!b || !out)
		return -EINVAL;
	r = b->probe_ring;
	tail = r->tail;
	if (tail == __atomic_load_n(&r->head, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	*out = r->r[tail & (PROBE_RING_SIZE - 1)];
	__atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
	return 0;
}

int qg_bridge_probe_fd(const struct qg_bridge *b)
{
	return b ? b->probe_efd : -1;
}

const char *qg_bridge_probe_why_name(enum qg_bridge_probe_why why)
{
	static const char *const names[] = { "ok",	    "timeout",	 "no link",
					     "wrong reply", "link lost", "send failed" };

	return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] : "?";
}
