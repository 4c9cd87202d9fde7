/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * io_uring backend: one ring per worker. Every socket (the worker's
 * SO_REUSEPORT socket of each service, and each upstream socket) has one
 * multishot recvmsg armed on a shared provided-buffer ring, so receiving
 * costs no syscall per datagram. A received buffer is forwarded in place
 * (zero copy) with a send/sendmsg SQE and goes back to the buffer ring when
 * that send completes. All SQEs of a loop iteration go to the kernel in one
 * io_uring_enter, which also reaps completions.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "io_sock.h"
#include "qgate/clock.h"
#include "qgate/compiler.h"
#include "qgate/io.h"
#include "qgate/log.h"
#include "upstream_pool.h"

#define URING_BGID     0
#define URING_MAX_BUFS 32768 /* kernel limit of a provided buffer ring */
#define URING_NAME_LEN ((uint32_t)sizeof(struct sockaddr_in6))
#define URING_HDR      ((uint32_t)sizeof(struct io_uring_recvmsg_out) + URING_NAME_LEN)

/* user_data: op (8 bits) | generation (16 bits) | index (32 bits) */
enum {
	OP_RECV_SVC = 1,
	OP_RECV_UP,
	OP_SEND_UP,
	OP_SEND_CLI,
	OP_CANCEL,
	OP_GSO_UP,
	OP_GSO_CLI,
	OP_WAKE /* the multishot poll of a watched doorbell (watch_fd) */
};

static inline uint64_t ud_make(unsigned op, uint16_t gen, uint32_t idx)
{
	return ((uint64_t)op << 56) | ((uint64_t)gen << 32) | idx;
}

/* What a sendmsg toward a client needs until it completes: one per buffer. */
struct uring_txmsg {
	struct msghdr msg;
	struct iovec iov;
	struct sockaddr_storage name;
};

/* A batched (UDP GSO) send: several buffers of one flow in one sendmsg. */
struct uring_gso {
	struct msghdr msg;
	struct sockaddr_storage name;
	union qg_io_gso_cmsg cm;
	uint32_t n;
	struct iovec iov[QG_IO_GSO_MAX_SEGS];
	uint16_t bid[QG_IO_GSO_MAX_SEGS];
};

struct qg_io {
	struct io_uring ring;
	int ring_ready;
	int ring_fd_registered; /* io_uring_enter by registered index (this worker's thread only) */
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint32_t n_bufs;
	uint32_t stride;
	uint8_t *bufs;
	size_t bufs_len;
	/*
	 * alloc_tx buffers: ids n_bufs .. n_bufs + n_txb - 1, after the receive
	 * buffers in the same mapping but never in the kernel's buffer ring, so
	 * a datagram the worker made stays put until its send completes and
	 * then returns to this stack instead of the ring.
	 */
	uint32_t n_txb;
	uint32_t *txb_free;
	uint32_t n_txb_free;
	int wake_fd;	       /* watched doorbell, -1 = none */
	uint32_t pending_adds; /* buffers re-added since the last advance */
	uint32_t n_armed;      /* multishot receives not yet finished */
	uint32_t n_tx;	       /* sends not yet completed */
	int stopping;	       /* no re-arming: the worker is leaving */
	uint32_t max_datagram;
	unsigned n_services; /* indexes in use; room for QG_CONFIG_MAX_SERVICES */
	int *svc_fd;	     /* -1: no such service (a hole left by a reload) */
	uint16_t *svc_gen;   /* incarnation in a service receive's user data: older completions are stale */
	struct qg_addr *svc_addr;
	struct uring_txmsg *txmsg;
	struct uring_gso *gso; /* NULL when GSO batching is off */
	uint32_t *gso_free;
	uint32_t n_gso, n_gso_free;
	struct msghdr rx_msg; /* layout template of multishot recvmsg */
	struct qg_up_pool pool;
	struct qg_ctr_block *ctr;
	void (*on_refused)(void *ctx, uint32_t up);
	void *refused_ctx;
};

static int uring_probe_here(char *why, size_t len)
{
	struct io_uring_probe *probe = NULL;
	struct io_uring ring;
	struct utsname u;
	unsigned major = 0, minor = 0;
	int rc;

	/* Multishot recvmsg arrived in 6.0; opcode probing cannot see the flag, the version can. */
	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2 && (major < 6)) {
		snprintf(why, len, "kernel %s lacks multishot recvmsg (needs 6.0)", u.release);
		return -ENOSYS;
	}
	rc = io_uring_queue_init(8, &ring, 0);
	if (rc < 0) {
		snprintf(why, len, "io_uring_setup: %s%s", strerror(-rc),
			 rc == -EPERM ? " (kernel.io_uring_disabled or seccomp)" : "");
		return rc;
	}
	probe = io_uring_get_probe_ring(&ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_RECVMSG) ||
	    !io_uring_opcode_supported(probe, IORING_OP_SENDMSG) ||
	    !io_uring_opcode_supported(probe, IORING_OP_SEND)) {
		snprintf(why, len, "kernel io_uring lacks recvmsg/sendmsg/send");
		rc = -ENOSYS;
	}
	if (probe)
		io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return rc;
}

struct probe_job {
	char *why;
	size_t len;
	int rc;
};

static void *probe_thread(void *arg)
{
	struct probe_job *j = arg;

	j->rc = uring_probe_here(j->why, j->len);
	return NULL;
}

/*
 * The test ring is made and closed on a thread of its own: closing a ring
 * queues exit work to every task that used it with TWA_SIGNAL, and on the
 * caller's thread that later cut a blocking call with a timeout short
 * (recv with SO_RCVTIMEO returned EINTR, no signal sent). The thread is gone
 * by then. Without a thread, the probe runs here.
 */
static int uring_probe(char *why, size_t len)
{
	struct probe_job j = { .why = why, .len = len, .rc = -ENOSYS };
	pthread_t t;

	if (pthread_create(&t, NULL, probe_thread, &j) != 0)
		return uring_probe_here(why, len);
	pthread_join(t, NULL);
	return j.rc;
}

static struct io_uring_sqe *uring_sqe(struct qg_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (unlikely(!sqe)) {
		/* SQ full within one iteration: push it out now rather than lose work. */
		qg_ctr_add(io->ctr, QG_CTR_ERR_SQ_FULL, 1);
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

static int uring_arm(struct qg_io *io, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = uring_sqe(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recvmsg_multishot(sqe, fd, &io->rx_msg, 0);
	io->n_armed++;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

static int up_arm(void *ctx, uint32_t up, int fd, uint16_t gen)
{
	struct qg_io *io = ctx;

	if (!io->ring_ready)
		return -EAGAIN;
	return uring_arm(io, fd, ud_make(OP_RECV_UP, gen, up));
}

static void up_disarm(void *ctx, uint32_t up, int fd, uint16_t gen)
{
	struct qg_io *io = ctx;
	struct io_uring_sqe *sqe;

	(void)fd;
	if (!io->ring_ready)
		return;
	/* The armed receive holds its own file reference: cancel it, or close() would not stop it. */
	sqe = uring_sqe(io);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, ud_make(OP_RECV_UP, gen, up), 0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, 0, 0));
}

static inline void buf_recycle(struct qg_io *io, uint32_t bid)
{
	if (unlikely(bid >= io->n_bufs)) {
		io->txb_free[io->n_txb_free++] = bid;
		return;
	}
	io_uring_buf_ring_add(io->br, io->bufs + (size_t)bid * io->stride, io->stride, (unsigned short)bid,
			      io_uring_buf_ring_mask(io->n_bufs), (int)io->pending_adds);
	io->pending_adds++;
}

static inline void buf_commit(struct qg_io *io)
{
	if (io->pending_adds) {
		io_uring_buf_ring_advance(io->br, (int)io->pending_adds);
		io->pending_adds = 0;
	}
}

static void uring_destroy(struct qg_io *io);

static int uring_create(const struct qg_io_params *p, struct qg_io **out)
{
	struct qg_up_pool_hooks hooks = { up_arm, up_disarm, NULL };
	struct qg_io *io;
	int rc = -ENOMEM;

	if (p->rx_buffers > URING_MAX_BUFS || (p->rx_buffers & (p->rx_buffers - 1)) || p->rx_buffers < 2) {
		QG_LOG_ERR("io_uring: rx_buffers must be a power of two up to %u", URING_MAX_BUFS);
		return -EINVAL;
	}
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->ctr = p->ctr;
	io->on_refused = p->on_refused;
	io->refused_ctx = p->refused_ctx;
	io->n_bufs = p->rx_buffers;
	io->wake_fd = -1;
	/* Buffer ids travel as uint16_t in GSO batches. */
	io->n_txb = p->tx_buffers < 65535u - io->n_bufs ? p->tx_buffers : 65535u - io->n_bufs;
	io->max_datagram = p->max_datagram;
	io->stride = qg_io_stride(p->max_datagram, URING_HDR);
	io->n_services = p->n_services;
	io->svc_fd = malloc(sizeof(int) * QG_CONFIG_MAX_SERVICES);
	io->svc_gen = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*io->svc_gen));
	io->svc_addr = calloc(QG_CONFIG_MAX_SERVICES, sizeof(*io->svc_addr));
	io->txmsg = calloc(io->n_bufs + io->n_txb, sizeof(*io->txmsg));
	io->txb_free = malloc(sizeof(*io->txb_free) * (io->n_txb + 1));
	if (p->n_services > QG_CONFIG_MAX_SERVICES) {
		rc = -EINVAL;
		goto err;
	}
	if (!io->svc_fd || !io->svc_addr || !io->svc_gen || !io->txmsg || !io->txb_free)
		goto err;
	if (p->udp_gso) {
		/* Every batch holds at least two buffers: half as many slots as buffers never run out. */
		io->n_gso = (io->n_bufs + io->n_txb) / 2;
		io->gso = calloc(io->n_gso, sizeof(*io->gso));
		io->gso_free = malloc(sizeof(*io->gso_free) * io->n_gso);
		if (!io->gso || !io->gso_free)
			goto err;
		for (uint32_t g = 0; g < io->n_gso; g++)
			io->gso_free[g] = g;
		io->n_gso_free = io->n_gso;
	}
	for (unsigned s = 0; s < QG_CONFIG_MAX_SERVICES; s++)
		io->svc_fd[s] = -1;
	hooks.ctx = io;
	rc = qg_up_pool_init(&io->pool, p->max_upstreams, &hooks);
	if (rc)
		goto err;
	for (unsigned s = 0; s < p->n_services; s++) {
		io->svc_addr[s] = p->listen[s];
		rc = qg_io_sock_listen(&p->listen[s], &io->svc_fd[s]);
		if (rc)
			goto err;
	}
	io->rx_msg.msg_namelen = URING_NAME_LEN;
	*out = io;
	return 0;
err:
	uring_destroy(io);
	return rc;
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map and register the ring by hand. */
static int uring_setup_buf_ring(struct qg_io *io)
{
	struct io_uring_buf_reg reg;
	void *mem;
	int rc;

	io->br_len = (size_t)io->n_bufs * sizeof(struct io_uring_buf);
	mem = mmap(NULL, io->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	io->br = mem;
	io_uring_buf_ring_init(io->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)mem;
	reg.ring_entries = io->n_bufs;
	reg.bgid = URING_BGID;
	rc = io_uring_register_buf_ring(&io->ring, &reg, 0);
	if (rc) {
		munmap(mem, io->br_len);
		io->br = NULL;
		return rc;
	}
	return 0;
}

/* On the worker thread: a ring created there may use SINGLE_ISSUER + DEFER_TASKRUN. */
static int uring_start(struct qg_io *io)
{
	struct io_uring_params par;
	unsigned cq = io->n_bufs * 2 < 8192 ? 8192 : io->n_bufs * 2;
	int rc;

	memset(&par, 0, sizeof(par));
	par.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	par.cq_entries = cq;
	rc = io_uring_queue_init_params(4096, &io->ring, &par);
	if (rc == -EINVAL) {
		memset(&par, 0, sizeof(par));
		par.flags = IORING_SETUP_CQSIZE;
		par.cq_entries = cq;
		rc = io_uring_queue_init_params(4096, &io->ring, &par);
	}
	if (rc < 0) {
		QG_LOG_ERR("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	io->ring_ready = 1;
	/*
	 * Every io_uring_enter otherwise looks the ring's descriptor up and drops
	 * it again (fget/fput): 9 % of the worker's samples under a flow flood
	 * (perf, perf/faults.sh f). Registered for this thread, which alone
	 * enters the ring; without it (older kernels) the plain fd is used.
	 */
	io->ring_fd_registered = io_uring_register_ring_fd(&io->ring) == 1;
	io->bufs_len = (size_t)(io->n_bufs + io->n_txb) * io->stride;
	io->bufs = mmap(NULL, io->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (io->bufs == MAP_FAILED) {
		io->bufs = NULL;
		return -ENOMEM;
	}
	/* Few TLB entries for many buffers: only the touched head of each is in cache anyway. */
	(void)madvise(io->bufs, io->bufs_len, MADV_HUGEPAGE);
	rc = uring_setup_buf_ring(io);
	if (rc) {
		QG_LOG_ERR("io_uring: cannot register a provided buffer ring: %s", strerror(-rc));
		return rc;
	}
	for (uint32_t b = 0; b < io->n_bufs; b++)
		buf_recycle(io, b);
	buf_commit(io);
	for (uint32_t b = 0; b < io->n_txb; b++)
		io->txb_free[b] = io->n_bufs + b;
	io->n_txb_free = io->n_txb;
	for (unsigned s = 0; s < io->n_services; s++) {
		if (io->svc_fd[s] < 0)
			continue;
		rc = uring_arm(io, io->svc_fd[s], ud_make(OP_RECV_SVC, io->svc_gen[s], s));
		if (rc)
			return rc;
	}
	rc = io_uring_submit(&io->ring);
	return rc < 0 ? rc : 0;
}

static void uring_destroy(struct qg_io *io)
{
	if (!io)
		return;
	/* Tearing the ring down first cancels every armed receive; the sockets then just close. */
	if (io->ring_ready) {
		io_uring_queue_exit(&io->ring);
		io->ring_ready = 0;
	}
	if (io->br)
		munmap(io->br, io->br_len);
	qg_up_pool_fini(&io->pool);
	for (unsigned s = 0; io->svc_fd && s < io->n_services; s++)
		if (io->svc_fd[s] >= 0)
			close(io->svc_fd[s]);
	if (io->bufs)
		munmap(io->bufs, io->bufs_len);
	free(io->svc_fd);
	free(io->svc_gen);
	free(io->svc_addr);
	free(io->txmsg);
	free(io->txb_free);
	free(io->gso);
	free(io->gso_free);
	free(io);
}

/* Count an ICMP-refused upstream and tell the relay which one (UINT32_MAX: unknown). */
static void uring_refused(struct qg_io *io, uint32_t up)
{
	qg_ctr_add(io->ctr, QG_CTR_ERR_BACKEND_REFUSED, 1);
	if (up != UINT32_MAX && io->on_refused)
		io->on_refused(io->refused_ctx, up);
}

/* A multishot receive stopped (error, no buffers): arm it again if its socket lives. */
static void rx_rearm(struct qg_io *io, unsigned op, uint16_t gen, uint32_t idx)
{
	if (io->stopping)
		return;
	if (op == OP_RECV_SVC) {
		if (idx < io->n_services && io->svc_fd[idx] >= 0 && io->svc_gen[idx] == gen)
			uring_arm(io, io->svc_fd[idx], ud_make(OP_RECV_SVC, gen, idx));
	} else if (qg_up_pool_current(&io->pool, idx, gen)) {
		uring_arm(io, qg_up_pool_fd(&io->pool, idx), ud_make(OP_RECV_UP, gen, idx));
	}
}

/* Turn one receive completion into a packet. @return 1 when pkt was filled. */
static int rx_complete(struct qg_io *io, const struct io_uring_cqe *cqe, unsigned op, uint16_t gen,
		       uint32_t idx, struct qg_pkt *pkt)
{
	struct io_uring_recvmsg_out *o;
	uint32_t bid;
	uint8_t *buf;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		io->n_armed--;
		if (cqe->res != -ECANCELED)
			rx_rearm(io, op, gen, idx);
	}
	if (cqe->res < 0) {
		if (cqe->res == -ENOBUFS)
			qg_ctr_add(io->ctr, QG_CTR_ERR_RX_NOBUFS, 1);
		else if (cqe->res == -ECONNREFUSED)
			uring_refused(io, op == OP_RECV_UP && qg_up_pool_current(&io->pool, idx, gen)
						  ? idx
						  : UINT32_MAX);
		else if (cqe->res != -ECANCELED)
			qg_ctr_add(io->ctr, QG_CTR_ERR_RX, 1);
		return 0;
	}
	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return 0;
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	buf = io->bufs + (size_t)bid * io->stride;
	if (op == OP_RECV_UP ? !qg_up_pool_current(&io->pool, idx, gen)
			     : idx >= io->n_services || io->svc_fd[idx] < 0 || io->svc_gen[idx] != gen) {
		buf_recycle(io, bid); /* arrived for a socket since closed */
		return 0;
	}
	o = io_uring_recvmsg_validate(buf, cqe->res, &io->rx_msg);
	if (unlikely(!o)) {
		qg_ctr_add(io->ctr, QG_CTR_ERR_RX, 1);
		buf_recycle(io, bid);
		return 0;
	}
	pkt->data = io_uring_recvmsg_payload(o, &io->rx_msg);
	pkt->len = io_uring_recvmsg_payload_length(o, cqe->res, &io->rx_msg);
	pkt->buf = bid;
	pkt->flags = ((o->flags & MSG_TRUNC) || pkt->len > io->max_datagram) ? QG_PKT_F_OVERSIZE : 0;
	pkt->priv = NULL;
	if (op == OP_RECV_SVC) {
		pkt->dir = QG_PKT_FROM_CLIENT;
		pkt->svc = (uint16_t)idx;
		pkt->upstream = UINT32_MAX;
		if (qg_addr_from_sockaddr(io_uring_recvmsg_name(o), &pkt->peer) < 0) {
			qg_ctr_add(io->ctr, QG_CTR_ERR_RX, 1);
			buf_recycle(io, bid);
			return 0;
		}
	} else {
		pkt->dir = QG_PKT_FROM_BACKEND;
		pkt->upstream = idx;
		pkt->svc = UINT16_MAX;
	}
	return 1;
}

/*
 * tx_bytes is counted here, when a send completes, not when it is queued: the
 * SQE only asks, and whether the kernel took the datagram (and how many bytes:
 * a GSO batch's res is the sum of its segments) is known from the CQE alone.
 * Counting at submit would need each buffer's length kept until completion to
 * take failures back out, for the same figure.
 */
static void tx_complete(struct qg_io *io, const struct io_uring_cqe *cqe, unsigned op, uint32_t idx)
{
	io->n_tx--;
	if (idx < io->n_bufs + io->n_txb)
		buf_recycle(io, idx);
	if (cqe->res >= 0) {
		qg_ctr_add(io->ctr, QG_CTR_TX_BYTES, (uint64_t)cqe->res);
		return;
	}
	if (op == OP_SEND_UP) {
		if (cqe->res == -ECONNREFUSED)
			qg_ctr_add(io->ctr, QG_CTR_ERR_BACKEND_REFUSED, 1);
		qg_ctr_add(io->ctr, QG_CTR_DROP_TX_BACKEND, 1);
	} else {
		qg_ctr_add(io->ctr, QG_CTR_DROP_TX_CLIENT, 1);
	}
}

static void gso_complete(struct qg_io *io, const struct io_uring_cqe *cqe, unsigned op, uint32_t slot)
{
	struct uring_gso *g;

	io->n_tx--;
	if (slot >= io->n_gso)
		return;
	g = &io->gso[slot];
	for (uint32_t i = 0; i < g->n; i++)
		buf_recycle(io, g->bid[i]);
	io->gso_free[io->n_gso_free++] = slot;
	if (cqe->res >= 0) {
		qg_ctr_add(io->ctr, QG_CTR_TX_BYTES, (uint64_t)cqe->res);
		return;
	}
	if (op == OP_GSO_UP && cqe->res == -ECONNREFUSED)
		qg_ctr_add(io->ctr, QG_CTR_ERR_BACKEND_REFUSED, 1);
	qg_ctr_add(io->ctr, op == OP_GSO_UP ? QG_CTR_DROP_TX_BACKEND : QG_CTR_DROP_TX_CLIENT, g->n);
}

static int wake_arm(struct qg_io *io)
{
	struct io_uring_sqe *sqe = uring_sqe(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, io->wake_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_make(OP_WAKE, 0, 0));
	io->n_armed++;
	return 0;
}

/*
 * The doorbell rang: its completion alone ended the wait, nothing to read.
 * A multishot poll posts one completion per signal (a wake-up, not a level),
 * so the eventfd's counter may grow unread. Re-armed when the kernel ended it.
 */
static void wake_complete(struct qg_io *io, const struct io_uring_cqe *cqe)
{
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	io->n_armed--;
	if (!io->stopping && cqe->res != -ECANCELED)
		wake_arm(io);
}

static unsigned uring_reap(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, filled = 0;

	io_uring_for_each_cqe(&io->ring, head, cqe)
	{
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		unsigned op = (unsigned)(ud >> 56);
		uint16_t gen = (uint16_t)(ud >> 32);
		uint32_t idx = (uint32_t)ud;

		if (filled == n)
			break;
		seen++;
		if (op == OP_RECV_SVC || op == OP_RECV_UP)
			filled += (unsigned)rx_complete(io, cqe, op, gen, idx, &pkts[filled]);
		else if (op == OP_SEND_UP || op == OP_SEND_CLI)
			tx_complete(io, cqe, op, idx);
		else if (op == OP_GSO_UP || op == OP_GSO_CLI)
			gso_complete(io, cqe, op, idx);
		else if (op == OP_WAKE)
			wake_complete(io, cqe);
	}
	io_uring_cq_advance(&io->ring, seen);
	return filled;
}

static unsigned uring_rx_burst(struct qg_io *io, struct qg_pkt *pkts, unsigned n, unsigned wait_us)
{
	unsigned filled;

	buf_commit(io);
	filled = uring_reap(io, pkts, n);
	if (filled)
		return filled;
	/* One syscall submits everything queued and runs the deferred completions. */
	if (wait_us) {
		struct __kernel_timespec ts = { .tv_sec = wait_us / 1000000,
						.tv_nsec = (wait_us % 1000000) * 1000 };
		struct io_uring_cqe *cqe;

		io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_get_events(&io->ring);
	}
	buf_commit(io);
	return uring_reap(io, pkts, n);
}

static int uring_svc_attach(struct qg_io *io, unsigned svc, const struct qg_addr *listen, int fd,
			    uint32_t uid)
{
	int rc;

	if (svc >= QG_CONFIG_MAX_SERVICES || fd < 0 || io->svc_fd[svc] >= 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	(void)uid; /* svc_gen moved on at the last detach: completions of older sockets stay stale */
	io->svc_fd[svc] = fd;
	io->svc_addr[svc] = *listen;
	if (svc >= io->n_services)
		io->n_services = svc + 1;
	if (!io->ring_ready)
		return 0; /* armed at start */
	rc = uring_arm(io, fd, ud_make(OP_RECV_SVC, io->svc_gen[svc], svc));
	if (rc == 0)
		rc = io_uring_submit(&io->ring) < 0 ? -EIO : 0;
	return rc;
}

static void uring_svc_detach(struct qg_io *io, unsigned svc)
{
	struct io_uring_sqe *sqe;

	if (svc >= io->n_services || io->svc_fd[svc] < 0)
		return;
	if (io->ring_ready) {
		/* Sends still queued name this socket: submit them before it closes. */
		io_uring_submit(&io->ring);
		sqe = uring_sqe(io);
		if (sqe) {
			io_uring_prep_cancel64(sqe, ud_make(OP_RECV_SVC, io->svc_gen[svc], svc), 0);
			io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, 0, 0));
			io_uring_submit(&io->ring);
		}
	}
	close(io->svc_fd[svc]);
	io->svc_fd[svc] = -1;
	io->svc_gen[svc]++; /* whatever still completes for the old socket is stale */
}

/* Socket a packet leaves on, or -1 (counted by the caller). */
static inline int tx_fd(struct qg_io *io, const struct qg_pkt *p, int to_client)
{
	if (to_client)
		return p->svc < io->n_services ? io->svc_fd[p->svc] : -1;
	return p->upstream < io->pool.cap ? qg_up_pool_fd(&io->pool, p->upstream) : -1;
}

static void tx_fail(struct qg_io *io, struct qg_pkt *p, unsigned n, int to_client)
{
	qg_ctr_add(io->ctr, to_client ? QG_CTR_DROP_TX_CLIENT : QG_CTR_DROP_TX_BACKEND, n);
	for (unsigned i = 0; i < n; i++)
		buf_recycle(io, p[i].buf);
}

static void tx_one(struct qg_io *io, struct qg_pkt *p, int to_client)
{
	struct io_uring_sqe *sqe;
	int fd = tx_fd(io, p, to_client);

	if (unlikely(fd < 0) || unlikely(!(sqe = uring_sqe(io)))) {
		tx_fail(io, p, 1, to_client);
		return;
	}
	if (to_client) {
		/* Unconnected service socket: the destination travels in a msghdr that lives until
		 * completion. */
		struct uring_txmsg *t = &io->txmsg[p->buf];

		t->iov.iov_base = p->data;
		t->iov.iov_len = p->len;
		t->msg.msg_iov = &t->iov;
		t->msg.msg_iovlen = 1;
		t->msg.msg_name = &t->name;
		t->msg.msg_namelen = qg_addr_to_sockaddr(&p->peer, &t->name);
		io_uring_prep_sendmsg(sqe, fd, &t->msg, 0);
		io_uring_sqe_set_data64(sqe, ud_make(OP_SEND_CLI, 0, p->buf));
	} else {
		io_uring_prep_send(sqe, fd, p->data, p->len, 0);
		io_uring_sqe_set_data64(sqe, ud_make(OP_SEND_UP, 0, p->buf));
	}
	io->n_tx++;
}

/* n >= 2 packets of one flow in one sendmsg with UDP_SEGMENT; buffers are gathered, not copied. */
static void tx_gso(struct qg_io *io, struct qg_pkt *p, unsigned n, int to_client)
{
	struct io_uring_sqe *sqe;
	struct uring_gso *g;
	uint32_t slot;
	int fd = tx_fd(io, p, to_client);

	if (unlikely(fd < 0) || unlikely(!(sqe = uring_sqe(io)))) {
		tx_fail(io, p, n, to_client);
		return;
	}
	slot = io->gso_free[--io->n_gso_free];
	g = &io->gso[slot];
	g->n = n;
	for (unsigned i = 0; i < n; i++) {
		g->iov[i].iov_base = p[i].data;
		g->iov[i].iov_len = p[i].len;
		g->bid[i] = (uint16_t)p[i].buf;
	}
	memset(&g->msg, 0, sizeof(g->msg));
	g->msg.msg_iov = g->iov;
	g->msg.msg_iovlen = n;
	if (to_client) {
		g->msg.msg_name = &g->name;
		g->msg.msg_namelen = qg_addr_to_sockaddr(&p->peer, &g->name);
	}
	qg_io_gso_attach(&g->msg, &g->cm, (uint16_t)p[0].len);
	io_uring_prep_sendmsg(sqe, fd, &g->msg, 0);
	io_uring_sqe_set_data64(sqe, ud_make(to_client ? OP_GSO_CLI : OP_GSO_UP, 0, slot));
	io->n_tx++;
}

static void uring_tx(struct qg_io *io, struct qg_pkt *pkts, unsigned n, int to_client)
{
	unsigned i = 0;

	while (i < n) {
		unsigned run = io->n_gso_free ? qg_io_gso_run(pkts + i, n - i, to_client) : 1;

		if (run > 1)
			tx_gso(io, pkts + i, run, to_client);
		else
			tx_one(io, &pkts[i], to_client);
		i += run;
	}
}

static void uring_tx_backend(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	uring_tx(io, pkts, n, 0);
}

static void uring_tx_client(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	uring_tx(io, pkts, n, 1);
}

static void uring_release(struct qg_io *io, struct qg_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		buf_recycle(io, pkts[i].buf);
}

static int uring_alloc_tx(struct qg_io *io, struct qg_pkt *pkt)
{
	uint32_t bid;

	if (!io->n_txb_free)
		return -ENOBUFS;
	bid = io->txb_free[--io->n_txb_free];
	pkt->data = io->bufs + (size_t)bid * io->stride;
	pkt->buf = bid;
	pkt->priv = NULL;
	pkt->flags = 0;
	return 0;
}

static int uring_watch_fd(struct qg_io *io, int fd)
{
	int rc;

	if (!io->ring_ready || io->wake_fd >= 0)
		return -EINVAL;
	io->wake_fd = fd;
	rc = wake_arm(io);
	if (rc == 0 && io_uring_submit(&io->ring) < 0)
		rc = -EIO;
	return rc;
}

static int uring_upstream_open(struct qg_io *io, uint32_t bslot, const struct qg_addr *backend, uint32_t *up)
{
	return qg_up_pool_open(&io->pool, bslot, backend, up);
}

static void uring_upstream_close(struct qg_io *io, uint32_t up, int reuse)
{
	qg_up_pool_close(&io->pool, up, reuse);
}

/*
 * On the worker's thread, before destroy: a pending receive holds its socket
 * in the kernel after close() and even after the process exits (the ring is
 * torn down asynchronously), which would keep the service port bound. Cancel
 * everything and wait (bounded) until the kernel has let go.
 */
static void uring_stop(struct qg_io *io)
{
	struct qg_pkt pkts[64];
	struct io_uring_sqe *sqe;
	uint64_t deadline = qg_clock_ms() + 2000;

	io->stopping = 1;
	sqe = uring_sqe(io);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, 0, 0));
	}
	while ((io->n_armed || io->n_tx) && qg_clock_ms() < deadline) {
		unsigned n = uring_rx_burst(io, pkts, 64, 50000);

		uring_release(io, pkts, n);
	}
	if (io->n_armed || io->n_tx)
		QG_LOG_WARN("io_uring: %u receives and %u sends still pending at stop", io->n_armed,
			    io->n_tx);
	/* The registration belongs to this thread: undo it here, not in destroy (control thread). */
	if (io->ring_fd_registered) {
		io_uring_unregister_ring_fd(&io->ring);
		io->ring_fd_registered = 0;
	}
}

static uint32_t uring_max_upstreams(const struct qg_io *io)
{
	return io->pool.cap;
}

static void uring_flush(struct qg_io *io)
{
	buf_commit(io);
	if (io_uring_sq_ready(&io->ring))
		io_uring_submit_and_get_events(&io->ring);
}

const struct qg_io_ops qg_io_uring_ops = {
	.name = "io_uring",
	.probe = uring_probe,
	.create = uring_create,
	.destroy = uring_destroy,
	.rx_burst = uring_rx_burst,
	.tx_backend = uring_tx_backend,
	.tx_client = uring_tx_client,
	.release = uring_release,
	.alloc_tx = uring_alloc_tx,
	.watch_fd = uring_watch_fd,
	.upstream_open = uring_upstream_open,
	.upstream_close = uring_upstream_close,
	.start = uring_start,
	.stop = uring_stop,
	.flush = uring_flush,
	.max_upstreams = uring_max_upstreams,
	.svc_socket = qg_io_sock_listen,
	.svc_attach = uring_svc_attach,
	.svc_detach = uring_svc_detach,
};
