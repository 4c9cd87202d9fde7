/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-link send queues (bridge_internal.h). The bridge thread never blocks
 * on a link, but a link's socket is often full for a moment: an LE
 * credit-based channel takes one SDU beyond its credits and then answers
 * EAGAIN until the device hands credits back, a BR/EDR socket's send buffer
 * fills at the pace of the ACL link. Dropping there loses datagrams the link
 * would carry milliseconds later, so each link has a small FIFO: a datagram
 * the socket refuses, and every later one of that link (one SDU stays one
 * datagram, and the order holds), waits in it; while it holds something the
 * link's epoll registration asks for EPOLLOUT, and each EPOLLOUT sends what
 * waits until the socket is full again. The same queue holds what a flow
 * sends before its outbound link has connected.
 *
 * Only a full queue drops (tx_queue_full): the bound (sendq_sdus datagrams,
 * sendq_bytes bytes) keeps a device that stopped reading from holding memory
 * and adding latency without end, like a NIC's transmit ring. The memory is
 * preallocated per link slot at create; a datagram is copied in whole and
 * may wrap around the end of the byte ring, so it leaves with two iovecs,
 * still as one SDU.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bridge_internal.h"

int qg_brg_sendq_init(struct qg_bridge *b)
{
	size_t bytes = b->o.sendq_bytes, sdus = b->o.sendq_sdus;

	/* +1: malloc(0) may return NULL, and a bridge may have no link at all. */
	b->q_mem = malloc(b->n_links * bytes + 1);
	b->q_len_mem = malloc((b->n_links * sdus + 1) * sizeof(*b->q_len_mem));
	if (!b->q_mem || !b->q_len_mem)
		return -ENOMEM;
	for (uint32_t i = 0; i < b->n_links; i++) {
		b->links[i].q_buf = b->q_mem + i * bytes;
		b->links[i].q_len = b->q_len_mem + i * sdus;
	}
	return 0;
}

/* EPOLLOUT in the link's registration or not (an up link; a connecting one waits for EPOLLOUT anyway). */
static void set_armed(struct qg_bridge *b, struct link *l, uint8_t on)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
		.data.u64 = qg_brg_ev(EV_LINK, (uint32_t)(l - b->links)),
	};

	if (l->q_armed == on || l->state != LINK_UP)
		return;
	/* On failure q_armed stays as it was: qg_brg_link_send() flushes an unarmed queue itself. */
	if (!epoll_ctl(b->epfd, EPOLL_CTL_MOD, l->fd, &ev))
		l->q_armed = on;
}

static int sendq_push(struct qg_bridge *b, struct link *l, const void *data, uint32_t len)
{
	uint32_t size = b->o.sendq_bytes, tail, first;

	if (l->q_n == b->o.sendq_sdus || len > size - l->q_bytes)
		return -ENOBUFS;
	tail = (l->q_off + l->q_bytes) % size;
	first = len < size - tail ? len : size - tail;
	memcpy(l->q_buf + tail, data, first);
	memcpy(l->q_buf, (const uint8_t *)data + first, len - first);
	l->q_len[(l->q_head + l->q_n) % b->o.sendq_sdus] = len;
	l->q_n++;
	l->q_bytes += len;
	return 0;
}

static void sendq_pop(struct qg_bridge *b, struct link *l)
{
	uint32_t len = l->q_len[l->q_head];

	l->q_head = (l->q_head + 1) % b->o.sendq_sdus;
	l->q_n--;
	l->q_bytes -= len;
	/* Empty: start over at 0, so the next datagrams do not wrap. */
	l->q_off = l->q_bytes ? (l->q_off + len) % b->o.sendq_bytes : 0;
}

/*
 * One datagram to the socket. @return 0 when it is gone (sent, or dropped
 * and counted for good), -EAGAIN when the socket cannot take it now, -EPIPE
 * when the link failed (the caller closes it).
 */
static int sock_send(struct qg_bridge *b, struct link *l, struct iovec *iov, size_t n_iov, uint32_t len)
{
	struct qg_bridge_stats *c = qg_brg_link_ctr(b, l);
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n_iov };
	ssize_t n = sendmsg(l->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n == (ssize_t)len) {
		CTR_ADD(c->tx_sdus, 1);
		CTR_ADD(c->tx_bytes, len);
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EINTR))
		return -EAGAIN;
	/* Over an MTU the socket layer did not report: this datagram only, the link is fine. */
	if (n < 0 && errno == EMSGSIZE) {
		CTR_ADD(c->tx_oversize, 1);
		return 0;
	}
	if (n < 0)
		return -EPIPE;
	CTR_ADD(c->tx_dropped, 1); /* a short send: never on a message socket, never passed on cut */
	return 0;
}

void qg_brg_link_flush(struct qg_bridge *b, struct link *l, uint64_t now)
{
	struct qg_bridge_stats *c = qg_brg_link_ctr(b, l);
	uint32_t size = b->o.sendq_bytes;

	while (l->q_n) {
		uint32_t len = l->q_len[l->q_head];
		struct iovec iov[2];
		size_t n_iov = 1;
		int rc;

		/* Queued while connecting, before the peer's MTU was known. */
		if (len > l->omtu) {
			CTR_ADD(c->tx_oversize, 1);
			sendq_pop(b, l);
			continue;
		}
		iov[0].iov_base = l->q_buf + l->q_off;
		iov[0].iov_len = len < size - l->q_off ? len : size - l->q_off;
		if (iov[0].iov_len < len) {
			iov[1].iov_base = l->q_buf;
			iov[1].iov_len = len - iov[0].iov_len;
			n_iov = 2;
		}
		rc = sock_send(b, l, iov, n_iov, len);
		if (rc == -EAGAIN) {
			set_armed(b, l, 1);
			return;
		}
		if (rc) {
			/* What is still queued, this datagram included, is counted dropped by the close. */
			qg_brg_link_close(b, l, 1, now);
			return;
		}
		sendq_pop(b, l);
	}
	set_armed(b, l, 0);
}

void qg_brg_link_send(struct qg_bridge *b, struct link *l, const void *data, uint32_t len, uint64_t now)
{
	struct qg_bridge_stats *c = qg_brg_link_ctr(b, l);

	if (l->state == LINK_UP && len > l->omtu) {
		CTR_ADD(c->tx_oversize, 1);
		return;
	}
	/* Something waits but nothing will wake it (EPOLLOUT could not be set): try now. */
	if (l->state == LINK_UP && l->q_n && !l->q_armed)
		qg_brg_link_flush(b, l, now);
	if (l->state != LINK_UP && l->state != LINK_CONNECTING) {
		CTR_ADD(c->tx_dropped, 1); /* the flush above found the link dead */
		return;
	}
	if (l->state == LINK_UP && !l->q_n) {
		struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
		int rc = sock_send(b, l, &iov, 1, len);

		if (!rc)
			return;
		if (rc != -EAGAIN) {
			CTR_ADD(c->tx_dropped, 1);
			qg_brg_link_close(b, l, 1, now);
			return;
		}
	}
	if (sendq_push(b, l, data, len)) {
		CTR_ADD(c->tx_queue_full, 1);
		return;
	}
	CTR_ADD(c->tx_queued, 1);
	set_armed(b, l, 1);
}

void qg_brg_sendq_discard(struct qg_bridge *b, struct link *l)
{
	if (l->q_n)
		CTR_ADD(qg_brg_link_ctr(b, l)->tx_dropped, l->q_n);
	l->q_head = l->q_n = 0;
	l->q_off = l->q_bytes = 0;
	set_armed(b, l, 0);
}
