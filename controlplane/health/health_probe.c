/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The checker's real ops: one non-blocking UDP socket per probed backend,
 * connected to it so the kernel filters other senders out and reports ICMP
 * unreachable as ECONNREFUSED (an immediate failure instead of a timeout);
 * the dataplane's per-backend figures and its published table. The sockets
 * sit in one epoll set: the control loop polls one descriptor, and a wake
 * reads only the sockets with something to read (reading all of them at
 * every wake cost 40k failed recv() a second at 100 backends every 100 ms).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qgate/health.h"
#include "qgate/log.h"
#include "qgate/quic.h"

#define VN_PROBE_VERSION 0x1a2a3a4au /* reserved (RFC 9000 Sec 15): any server answers with VN */
#define VN_CID_LEN	 8
#define PROBE_BUF	 1500

struct hp_ctx {
	const struct qg_config *cfg;
	struct qg_dataplane *dp;
	unsigned n;
	int epfd;	  /* every probe socket, data = backend id */
	int *fd;	  /* per backend id; -1: not probed or no socket */
	unsigned *svc_of; /* per backend id */
	uint8_t dcid[VN_CID_LEN], scid[VN_CID_LEN];
	uint8_t vn[PROBE_BUF];
	size_t vn_len;
	uint8_t buf[PROBE_BUF];
};

static int hp_open(const struct qg_addr *to)
{
	struct sockaddr_storage ss;
	socklen_t len = qg_addr_to_sockaddr(to, &ss);
	int fd;

	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static int hp_send(void *ctx, unsigned id, uint64_t now_ms)
{
	struct hp_ctx *c = ctx;
	const struct qg_config_health *h;
	const void *p;
	size_t len;

	(void)now_ms;
	if (id >= c->n || c->fd[id] < 0)
		return -EBADF;
	h = &c->cfg->services[c->svc_of[id]].health;
	/*
	 * No read before sending: the checker polls (hp_poll) right before it
	 * sends, which reads every socket epoll reports readable or in error, so a
	 * late answer or a stale ICMP error is consumed then (and, with no probe
	 * in flight, ignored). A read here cost one failed recv() per probe.
	 */
	if (h->probe == QG_CONFIG_PROBE_QUIC_VN) {
		p = c->vn;
		len = c->vn_len;
	} else {
		p = h->send;
		len = strlen(h->send);
	}
	if (send(c->fd[id], p, len, MSG_DONTWAIT) < 0)
		return -errno;
	return 0;
}

static int hp_matches(const struct hp_ctx *c, const struct qg_config_health *h, size_t len)
{
	size_t want = strlen(h->expect);

	if (h->probe == QG_CONFIG_PROBE_QUIC_VN)
		return qg_quic_vn_matches_probe(c->buf, len, c->dcid, VN_CID_LEN, c->scid, VN_CID_LEN);
	return len >= want && memcmp(c->buf, h->expect, want) == 0;
}

static void hp_poll(void *ctx, struct qg_health *hc, uint64_t now_ms)
{
	struct hp_ctx *c = ctx;
	struct epoll_event ev[64];
	int n;

	do {
		n = epoll_wait(c->epfd, ev, 64, 0);
		for (int i = 0; i < n; i++) {
			unsigned id = ev[i].data.u32;
			const struct qg_config_health *h;
			ssize_t r;

			if (id >= c->n || c->fd[id] < 0)
				continue;
			h = &c->cfg->services[c->svc_of[id]].health;
			/*
			 * One datagram per event, not a read until EAGAIN: a backend
			 * answers one probe with one datagram, and epoll is level
			 * triggered, so anything more is reported again at the next wake.
			 */
			r = recv(c->fd[id], c->buf, sizeof(c->buf), MSG_DONTWAIT);
			if (r >= 0 || errno == ECONNREFUSED)
				qg_health_reply(hc, id, r >= 0 && hp_matches(c, h, (size_t)r), now_ms);
		}
	} while (n == 64);
}

static int hp_set_up(void *ctx, unsigned svc, unsigned b, int up)
{
	struct hp_ctx *c = ctx;

	return c->dp ? qg_dataplane_set_backend_state(c->dp, svc, b, up) : 0;
}

static int hp_stats(void *ctx, unsigned svc, unsigned b, struct qg_backend_stats *out)
{
	struct hp_ctx *c = ctx;

	return c->dp ? qg_dataplane_backend_stats(c->dp, svc, b, out) : -ENOENT;
}

static unsigned hp_pollfds(void *ctx, struct pollfd *fds, unsigned max)
{
	struct hp_ctx *c = ctx;

	if (c->epfd < 0 || max == 0)
		return 0;
	fds[0].fd = c->epfd;
	fds[0].events = POLLIN;
	fds[0].revents = 0;
	return 1;
}

static void hp_destroy(void *ctx)
{
	struct hp_ctx *c = ctx;

	for (unsigned id = 0; c->fd && id < c->n; id++)
		if (c->fd[id] >= 0)
			close(c->fd[id]);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c->fd);
	free(c->svc_of);
	free(c);
}

int qg_health_create_udp(const struct qg_config *cfg, struct qg_dataplane *dp, struct qg_event_bus *bus,
			 uint64_t now_ms, struct qg_health **out)
{
	static const struct qg_health_ops ops = {
		.send = hp_send,
		.poll = hp_poll,
		.set_up = hp_set_up,
		.stats = hp_stats,
		.pollfds = hp_pollfds,
		.destroy = hp_destroy,
	};
	struct hp_ctx *c;
	unsigned id = 0;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->dp = dp;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		rc = -errno;
		free(c);
		return rc;
	}
	for (uint32_t s = 0; s < cfg->n_services; s++)
		c->n += cfg->services[s].n_backends;
	c->fd = malloc(sizeof(*c->fd) * (c->n ? c->n : 1));
	c->svc_of = malloc(sizeof(*c->svc_of) * (c->n ? c->n : 1));
	if (!c->fd || !c->svc_of) {
		hp_destroy(c);
		return -ENOMEM;
	}
	/* Fixed CIDs: the VN answer only has to echo them back, nothing secret rides on them. */
	memcpy(c->dcid, "qgatehck", VN_CID_LEN);
	memcpy(c->scid, "qgateprb", VN_CID_LEN);
	c->vn_len = qg_quic_build_vn_probe(c->vn, sizeof(c->vn), VN_PROBE_VERSION, c->dcid, VN_CID_LEN,
					   c->scid, VN_CID_LEN);
	for (uint32_t s = 0; s < cfg->n_services; s++) {
		const struct qg_config_service *svc = &cfg->services[s];

		for (uint32_t b = 0; b < svc->n_backends; b++, id++) {
			c->svc_of[id] = s;
			c->fd[id] = -1;
			/* Bluetooth-only backends are not probed (checker.c): no socket. */
			if (svc->health.probe == QG_CONFIG_PROBE_NONE || !svc->backends[b].addr.family)
				continue;
			/* A socket that cannot be opened leaves its probes failing: visible, not fatal. */
			c->fd[id] = hp_open(&svc->backends[b].addr);
			if (c->fd[id] < 0) {
				QG_LOG_WARN("health: service %s backend %u: no probe socket: %s", svc->name,
					    b, strerror(-c->fd[id]));
				c->fd[id] = -1;
				continue;
			}
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = id };

			if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->fd[id], &ev) < 0) {
				QG_LOG_WARN("health: service %s backend %u: %s", svc->name, b,
					    strerror(errno));
				close(c->fd[id]);
				c->fd[id] = -1;
			}
		}
	}
	rc = qg_health_create(cfg, &ops, c, bus, now_ms, out);
	if (rc)
		hp_destroy(c);
	return rc;
}
