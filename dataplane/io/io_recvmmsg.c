/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Portable socket backend for machines without a usable io_uring: epoll
 * finds ready sockets, recvmmsg drains each in batches, sendmmsg sends a
 * burst's datagrams toward one socket in one call. Same sockets, upstream
 * pool and packet model as the io_uring backend; buffers come from a
 * per-worker free stack.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io_sock.h"
#include "qgate/compiler.h"
#include "qgate/io.h"
#include "qgate/log.h"
#include "upstream_pool.h"

#define MM_EVENTS 64
#define MM_BATCH  64

/* epoll data: kind (1 bit) | generation (16 bits) | index (32 bits) */
#define EV_UP (1ULL << 63)
/* A watched doorbell (watch_fd): it only ends epoll_wait, nothing to drain. */
#define EV_WAKE (1ULL << 62)

struct qg_io {
	int epfd;
	uint32_t n_bufs;
	uint32_t stride;
	uint8_t *bufs;
	size_t bufs_len;
	uint32_t *free_bufs;
	uint32_t n_free;
	uint32_t max_datagram;
	unsigned n_services;
	int *svc_fd;
	struct qg_up_pool pool;
	struct qg_ctr_block *ctr;
	void (*on_refused)(void *ctx, uint32_t up);
	void *refused_ctx;
	/* Ready sockets carried over when a burst filled before they were drained. */
	struct epoll_event ev[MM_EVENTS];
	int n_ev, ev_next;
	struct mmsghdr mm[MM_BATCH];
	struct iovec iov[MM_BATCH];
	struct sockaddr_storage names[MM_BATCH];
	uint32_t mm_buf[MM_BATCH];
	uint32_t mm_segs[MM_BATCH]; /* datagrams carried by each message of a send */
	union qg_io_gso_cmsg cm[MM_BATCH];
	int udp_gso;
};

static int mm_probe(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static int ep_add(struct qg_io *io, int fd, uint64_t data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

	return epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int up_arm(void *ctx, uint32_t up, int fd, uint16_t gen)
{
	return ep_add(ctx, fd, EV_UP | ((uint64_t)gen << 32) | up);
}

static void up_disarm(void *ctx, uint32_t up, int fd, uint16_t gen)
{
	struct qg_io *io = ctx;

	(void)up;
	(void)gen;
	epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Events already fetched for this socket are dropped by the generation check. */
}

static void mm_destroy(struct qg_io *io);

static int mm_create(const struct qg_io_params *p, struct qg_io **out)
{
	struct qg_up_pool_hooks hooks = { up_arm, up_disarm, NULL };
	struct qg_io *io;
	int rc = -ENOMEM;

	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->epfd = -1;
	io->ctr = p->ctr;
	io->on_refused = p->on_refused;
	io->refused_ctx = p->refused_ctx;
	io->n_bufs = p->rx_buffers;
	io->max_datagram = p->max_datagram;
	io->stride = qg_io_stride(p->max_datagram, 0);
	io->n_services = p->n_services;
	io->udp_gso = p->udp_gso;
	io->svc_fd = malloc(sizeof(int) * QG_CONFIG_MAX_SERVICES);
	io->free_bufs = malloc(sizeof(uint32_t) * io->n_bufs);
	if (!io->svc_fd || !io->free_bufs || p->n_services > QG_CONFIG_MAX_SERVICES)
		goto err;
	for (unsigned s = 0; s < QG_CONFIG_MAX_SERVICES; s++)
		io->svc_fd[s] = -1;
	io->bufs_len = (size_t)io->n_bufs * io->stride;
	io->bufs = mmap(NULL, io->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (io->bufs == MAP_FAILED) {
		io->bufs = NULL;
		goto err;
	}
	for (uint32_t b = 0; b < io->n_bufs; b++)
		io->free_bufs[b] = io->n_bufs - 1 - b;
	io->n_free = io->n_bufs;
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (io->epfd < 0) {
		rc = -errno;
		goto err;
	}
	hooks.ctx = io;
	rc = qg_up_pool_init(&io->pool, p->max_upstreams, &hooks);
	if (rc)
		goto err;
	for (unsigned s = 0; s < p->n_services; s++) {
		rc = qg_io_sock_listen(&p->listen[s], &io->svc_fd[s]);
		if (rc)
			goto err;
		rc = ep_add(io, io->svc_fd[s], s);
		if (rc)
			goto err;
	}
	*out = io;
	return 0;
err:
	mm_destroy(io);
	return rc;
}

static int mm_start(struct qg_io *io)
{
	(void)io;
	return 0;
}

static void mm_destroy(struct qg_io *io)
{
	if (!io)
		return;
	qg_up_pool_fini(&io->pool);
	for (unsigned s = 0; io->svc_fd && s < io->n_services; s++)
		if (io->svc_fd[s] >= 0)
			close(io->svc_fd[s]);
	if (io->epfd >= 0)
		close(io->epfd);
	if (io->bufs)
		munmap(io->bufs, io->bufs_len);
	free(io->svc_fd);
	free(io->free_bufs);
	free(io);
}

static inline void buf_put(struct qg_io *io, uint32_t b)
{
	io->free_bufs[io->n_free++] = b;
}

/* Count an ICMP-refused upstream and tell the relay which one (UINT32_MAX: unknown). */
static void mm_refused(struct qg_io *io, uint32_t up)
{
	qg_ctr_add(io->ctr, QG_CTR_ERR_BACKEND_REFUSED, 1);
	if (up != UINT32_MAX && io->on_refused)
		io->on_refused(io->refused_ctx, up);
}

/* Drain up to n datagrams from one socket. @return how many packets were filled. */
static unsigned mm_drain(struct qg_io *io, uint64_t data, struct qg_pkt *pkts, unsigned n, int *more)
{
	int is_up = (data & EV_UP) != 0;
	uint32_t idx = (uint32_t)data;
	uint16_t gen = (uint16_t)(data >> 32);
	unsigned want, filled = 0;
	int fd, got;

	*more = 0;
	if (is_up) {
		if (!qg_up_pool_current(&io->pool, idx, gen))
			return 0;
		fd = qg_up_pool_fd(&io->pool, idx);
	} else {
		/* A readiness event carried over from before a reload removed the service. */
		if (idx >= io->n_services || io->svc_fd[idx] < 0)
			return 0;
		fd = io->svc_fd[idx];
	}
	want = n < MM_BATCH ? n : MM_BATCH;
	if (want > io->n_free)
		want = io->n_free;
	if (want == 0) {
		*more = 1;
		return 0;
	}
	for (unsigned i = 0; i < want; i++) {
		uint32_t b = io->free_bufs[io->n_free - 1 - i];

		io->mm_buf[i] = b;
		io->iov[i].iov_base = io->bufs + (size_t)b * io->stride;
		io->iov[i].iov_len = io->stride;
		memset(&io->mm[i].msg_hdr, 0, sizeof(io->mm[i].msg_hdr));
		io->mm[i].msg_hdr.msg_iov = &io->iov[i];
		io->mm[i].msg_hdr.msg_iovlen = 1;
		io->mm[i].msg_hdr.msg_name = &io->names[i];
		io->mm[i].msg_hdr.msg_namelen = sizeof(io->names[i]);
	}
	got = recvmmsg(fd, io->mm, want, MSG_DONTWAIT, NULL);
	if (got < 0) {
		if (errno == ECONNREFUSED)
			mm_refused(io, is_up ? idx : UINT32_MAX);
		else if (errno != EAGAIN && errno != EINTR)
			qg_ctr_add(io->ctr, QG_CTR_ERR_RX, 1);
		return 0;
	}
	io->n_free -= (uint32_t)got;
	*more = (unsigned)got == want;
	for (int i = 0; i < got; i++) {
		struct qg_pkt *p = &pkts[filled];
		struct msghdr *h = &io->mm[i].msg_hdr;

		p->data = io->iov[i].iov_base;
		p->len = io->mm[i].msg_len;
		p->buf = io->mm_buf[i];
		p->priv = NULL;
		p->flags = ((h->msg_flags & MSG_TRUNC) || p->len > io->max_datagram) ? QG_PKT_F_OVERSIZE : 0;
		if (is_up) {
			p->dir = QG_PKT_FROM_BACKEND;
			p->upstream = idx;
			p->svc = UINT16_MAX;
		} else {
			p->dir = QG_PKT_FROM_CLIENT;
			p->svc = (uint16_t)idx;
			p->upstream = UINT32_MAX;
			if (qg_addr_from_sockaddr((struct sockaddr *)h->msg_name, &p->peer) < 0) {
				qg_ctr_add(io->ctr, QG_CTR_ERR_RX, 1);
				buf_put(io, p->buf);
				continue;
			}
		}
		filled++;
	}
	return filled;
}

static unsigned mm_rx_burst(struct qg_io *io, struct qg_pkt *pkts, unsigned n, unsigned wait_us)
{
	unsigned filled = 0;

	if (io->ev_next >= io->n_ev) {
		int timeout = wait_us ? (int)((wait_us + 999) / 1000) : 0;

		io->n_ev = epoll_wait(io->epfd, io->ev, MM_EVENTS, timeout);
		io->ev_next = 0;
		if (io->n_ev < 0)
			io->n_ev = 0;
	}
	while (io->ev_next < io->n_ev && filled < n) {
		int more;

		if (io->ev[io->ev_next].data.u64 == EV_WAKE) {
			io->ev_next++;
			continue;
		}
		filled += mm_drain(io, io->ev[io->ev_next].data.u64, pkts + filled, n - filled, &more);
		/* A socket not drained stays ready; level-triggered epoll reports it again anyway. */
		io->ev_next++;
		if (io->n_free == 0)
			break;
	}
	return filled;
}

/*
 * Send n packets toward one socket in one sendmmsg; named: each goes to
 * pkt->peer. With GSO, each run of one flow's datagrams becomes one message.
 */
static void mm_send(struct qg_io *io, int fd, struct qg_pkt *pkts, unsigned n, int named, enum qg_ctr_id fail)
{
	unsigned nmsg = 0, done = 0;
	uint64_t bytes = 0;

	for (unsigned i = 0; i < n;) {
		unsigned run = io->udp_gso ? qg_io_gso_run(pkts + i, n - i, named) : 1;
		struct msghdr *h = &io->mm[nmsg].msg_hdr;

		memset(h, 0, sizeof(*h));
		for (unsigned k = 0; k < run; k++) {
			io->iov[i + k].iov_base = pkts[i + k].data;
			io->iov[i + k].iov_len = pkts[i + k].len;
		}
		h->msg_iov = &io->iov[i];
		h->msg_iovlen = run;
		if (named) {
			h->msg_name = &io->names[nmsg];
			h->msg_namelen = qg_addr_to_sockaddr(&pkts[i].peer, &io->names[nmsg]);
		}
		if (run > 1)
			qg_io_gso_attach(h, &io->cm[nmsg], (uint16_t)pkts[i].len);
		io->mm_segs[nmsg] = run;
		nmsg++;
		i += run;
	}
	while (done < nmsg) {
		int r = sendmmsg(fd, io->mm + done, nmsg - done, MSG_DONTWAIT);

		if (r <= 0) {
			/* The first message failed (ICMP error queued, buffer full): count it, go on. */
			if (r < 0 && errno == ECONNREFUSED)
				mm_refused(io, named ? UINT32_MAX : pkts[0].upstream);
			qg_ctr_add(io->ctr, fail, io->mm_segs[done]);
			done++;
			continue;
		}
		/* Sent (synchronously): msg_len is what the kernel took of each message, a batch's sum. */
		for (unsigned k = done; k < done + (unsigned)r; k++)
			bytes += io->mm[k].msg_len;
		done += (unsigned)r;
	}
	qg_ctr_add(io->ctr, QG_CTR_TX_BYTES, bytes);
	for (unsigned i = 0; i < n; i++)
		buf_put(io, pkts[i].buf);
}

/* Group consecutive packets toward the same socket into one sendmmsg (at most MM_BATCH). */
static void mm_tx(struct qg_io *io, struct qg_pkt *pkts, unsigned n, int to_client)
{
	unsigned i = 0;

	while (i < n) {
		unsigned j = i + 1;
		int fd;

		if (to_client) {
			while (j < n && j - i < MM_BATCH && pkts[j].svc == pkts[i].svc)
				j++;
			fd = pkts[i].svc < io->n_services ? io->svc_fd[pkts[i].svc] : -1;
		} else {
			while (j < n && j - i < MM_BATCH && pkts[j].upstream == pkts[i].upstream)
				j++;
			fd = pkts[i].upstream < io->pool.cap ? qg_up_pool_fd(&io->pool, pkts[i].upstream)
							     : -1;
		}
		if (fd < 0) {
			qg_ctr_add(io->ctr, to_client ? QG_CTR_DROP_TX_CLIENT : QG_CTR_DROP_TX_BACKEND,
				   j - i);
			for (unsigned k = i; k < j; k++)
				buf_put(io, pkts[k].buf);
		} else {
			mm_send(io, fd, pkts + i, j - i, to_client,
				to_client ? QG_CTR_DROP_TX_CLIENT : QG_CTR_DROP_TX_BACKEND);
		}
		i = j;
	}
}

static void mm_tx_backend(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	mm_tx(io, pkts, n, 0);
}

static void mm_tx_client(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	mm_tx(io, pkts, n, 1);
}

static void mm_release(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		buf_put(io, pkts[i].buf);
}

/* Datagrams the worker makes (bridge messages) share the receive buffers: sends are synchronous. */
static int mm_alloc_tx(struct qg_io *io, struct qg_pkt *pkt)
{
	uint32_t b;

	if (!io->n_free)
		return -ENOBUFS;
	b = io->free_bufs[--io->n_free];
	pkt->data = io->bufs + (size_t)b * io->stride;
	pkt->buf = b;
	pkt->priv = NULL;
	pkt->flags = 0;
	return 0;
}

/*
 * Edge-triggered: every signal of the doorbell is one wake-up, and the fd is
 * never read (level-triggered, an unread eventfd would end every wait).
 */
static int mm_watch_fd(struct qg_io *io, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = EV_WAKE };

	return epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int mm_upstream_open(struct qg_io *io, uint32_t bslot, const struct qg_addr *backend, uint32_t *up)
{
	return qg_up_pool_open(&io->pool, bslot, backend, up);
}

static void mm_upstream_close(struct qg_io *io, uint32_t up, int reuse)
{
	qg_up_pool_close(&io->pool, up, reuse);
}

static uint32_t mm_max_upstreams(const struct qg_io *io)
{
	return io->pool.cap;
}

static void mm_flush(struct qg_io *io)
{
	(void)io; /* sends are synchronous */
}

static int mm_svc_attach(struct qg_io *io, unsigned svc, const struct qg_addr *listen, int fd, uint32_t uid)
{
	int rc;

	(void)listen;
	(void)uid;
	if (svc >= QG_CONFIG_MAX_SERVICES || fd < 0 || io->svc_fd[svc] >= 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	rc = ep_add(io, fd, svc);
	if (rc) {
		close(fd);
		return rc;
	}
	io->svc_fd[svc] = fd;
	if (svc >= io->n_services)
		io->n_services = svc + 1;
	return 0;
}

static void mm_svc_detach(struct qg_io *io, unsigned svc)
{
	if (svc >= io->n_services || io->svc_fd[svc] < 0)
		return;
	epoll_ctl(io->epfd, EPOLL_CTL_DEL, io->svc_fd[svc], NULL);
	close(io->svc_fd[svc]);
	io->svc_fd[svc] = -1;
}

const struct qg_io_ops qg_io_recvmmsg_ops = {
	.name = "recvmmsg",
	.probe = mm_probe,
	.create = mm_create,
	.destroy = mm_destroy,
	.rx_burst = mm_rx_burst,
	.tx_backend = mm_tx_backend,
	.tx_client = mm_tx_client,
	.release = mm_release,
	.alloc_tx = mm_alloc_tx,
	.watch_fd = mm_watch_fd,
	.upstream_open = mm_upstream_open,
	.upstream_close = mm_upstream_close,
	.start = mm_start,
	.flush = mm_flush,
	.max_upstreams = mm_max_upstreams,
	.svc_socket = qg_io_sock_listen,
	.svc_attach = mm_svc_attach,
	.svc_detach = mm_svc_detach,
};
