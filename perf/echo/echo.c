/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-echo: a fast UDP echo backend for tests, the demo and benchmarks.
 *
 * Every thread owns one SO_REUSEPORT socket per listen address and one epoll
 * instance, and echoes batches of up to 64 datagrams with recvmmsg/sendmmsg.
 * Nothing is shared between threads except counters (single writer each), so
 * the echo scales with --threads and never becomes the bottleneck it measures.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qgate/addr.h"
#include "qgate/clock.h"
#include "qgate/compiler.h"

#define ECHO_MAX_ADDRS	   64
#define ECHO_MAX_THREADS   64
#define ECHO_BATCH	   64
#define ECHO_BUF_SIZE	   65536 /* a 65507-byte datagram plus headroom */
#define ECHO_SOCK_BUF	   (4 << 20)
#define ECHO_DELAY_ARENA   (32u << 20) /* bytes of payload held back by --delay-ms */
#define ECHO_DELAY_SLOTS   65536u      /* power of two */
#define ECHO_GSO_MAX_SEGS  64	       /* UDP_MAX_SEGMENTS on older kernels */
#define ECHO_GSO_MAX_SEG   1472	       /* larger datagrams could exceed a real MTU: sent one by one */
#define ECHO_GSO_MAX_BYTES 65000

/* Per address and thread; one cache line so threads never share a line. */
struct echo_counters {
	uint64_t rx;
	uint64_t tx;
	uint64_t dropped;   /* --drop-pct */
	uint64_t tx_failed; /* socket buffer full, delay queue full, send error */
	uint64_t rx_bytes;
} QG_CACHE_ALIGNED;

/* A datagram held back by --delay-ms. The delay is constant so the queue is FIFO. */
struct delayed {
	uint64_t due_ns;
	uint32_t off; /* into the arena */
	uint32_t len;
	uint16_t addr_idx;
	socklen_t peer_len;
	struct sockaddr_storage peer;
};

struct echo_thread {
	pthread_t tid;
	unsigned idx;
	int epfd;
	int fds[ECHO_MAX_ADDRS];
	struct echo_counters cnt[ECHO_MAX_ADDRS];
	uint64_t rng;
	int gso; /* reply with UDP GSO (see build_replies) */
	int gro; /* sockets coalesce back-to-back datagrams of one peer on receive (UDP_GRO) */
	/* Delay queue: ring of descriptors + byte arena written in FIFO order. */
	struct delayed *dq;
	uint8_t *arena;
	uint32_t dq_head, dq_tail; /* free-running */
	uint32_t arena_head, arena_tail;
};

static struct {
	unsigned n_addrs;
	struct qg_addr addrs[ECHO_MAX_ADDRS];
	unsigned threads;
	int quiet;
	unsigned stats_interval;
	double drop_pct;
	unsigned delay_ms;
	int no_gso;
} opt = { .threads = 1 };

static struct echo_thread *threads;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qgate-echo -l ADDR [-l ADDR ...] [options]\n"
		"  -l, --listen ADDR        IPv4 a.b.c.d:port or [v6]:port (port 0 = pick one)\n"
		"  -t, --threads N          threads, each with its own SO_REUSEPORT socket per address\n"
		"                           (default 1)\n"
		"  -q, --quiet              no periodic or final counters\n"
		"  -s, --stats-interval SEC print per-address counters every SEC seconds (default 0 = off)\n"
		"      --drop-pct P         drop P%% of datagrams at random instead of echoing (0..100)\n"
		"      --delay-ms D         echo each datagram D ms after it arrived\n"
		"      --no-gso             one receive and one send per datagram (default: back-to-back\n"
		"                           datagrams of one peer arrive coalesced (UDP GRO) and their\n"
		"                           replies leave as one UDP GSO send)\n"
		"  -h, --help               this text\n"
		"Prints 'qgate-echo: listening on ADDR ...' on stderr when ready; totals on "
		"SIGINT/SIGTERM.\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_options(int argc, char **argv)
{
	enum {
		OPT_DROP = 256,
		OPT_DELAY,
		OPT_NO_GSO
	};
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "stats-interval", required_argument, NULL, 's' },
		{ "drop-pct", required_argument, NULL, OPT_DROP },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "no-gso", no_argument, NULL, OPT_NO_GSO },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:t:qs:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (opt.n_addrs == ECHO_MAX_ADDRS) {
				fprintf(stderr, "qgate-echo: at most %d listen addresses\n", ECHO_MAX_ADDRS);
				return -EINVAL;
			}
			if (qg_addr_parse(optarg, &opt.addrs[opt.n_addrs])) {
				fprintf(stderr,
					"qgate-echo: bad listen address '%s' (want a.b.c.d:port or "
					"[v6]:port)\n",
					optarg);
				return -EINVAL;
			}
			opt.n_addrs++;
			break;
		case 't':
			if (parse_uint(optarg, ECHO_MAX_THREADS, &opt.threads) || opt.threads == 0) {
				fprintf(stderr, "qgate-echo: --threads wants 1..%d\n", ECHO_MAX_THREADS);
				return -EINVAL;
			}
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 's':
			if (parse_uint(optarg, 86400, &opt.stats_interval)) {
				fprintf(stderr, "qgate-echo: --stats-interval wants seconds 0..86400\n");
				return -EINVAL;
			}
			break;
		case OPT_DROP: {
			char *end;

			opt.drop_pct = strtod(optarg, &end);
			if (*end || end == optarg || !(opt.drop_pct >= 0.0 && opt.drop_pct <= 100.0)) {
				fprintf(stderr, "qgate-echo: --drop-pct wants a percentage 0..100\n");
				return -EINVAL;
			}
			break;
		}
		case OPT_DELAY:
			if (parse_uint(optarg, 60000, &opt.delay_ms)) {
				fprintf(stderr, "qgate-echo: --delay-ms wants 0..60000\n");
				return -EINVAL;
			}
			break;
		case OPT_NO_GSO:
			opt.no_gso = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qgate-echo: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (opt.n_addrs == 0) {
		fprintf(stderr, "qgate-echo: at least one -l ADDR is required\n");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static void set_buf(int fd, int opt_force, int opt_plain, int size)
{
	/* FORCE needs CAP_NET_ADMIN; fall back to what rmem_max/wmem_max allow. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &size, sizeof(size)))
		(void)setsockopt(fd, SOL_SOCKET, opt_plain, &size, sizeof(size));
}

/* Open the socket of address i for one thread. Port 0 is resolved by the first thread. */
static int open_socket(unsigned i, int *out)
{
	struct sockaddr_storage ss;
	struct sockaddr_storage bound;
	socklen_t len = qg_addr_to_sockaddr(&opt.addrs[i], &ss);
	socklen_t blen = sizeof(bound);
	int one = 1;
	int fd, err;

	fd = socket(opt.addrs[i].family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (opt.addrs[i].family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto fail;
	set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, ECHO_SOCK_BUF);
	set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, ECHO_SOCK_BUF);
	if (bind(fd, (struct sockaddr *)&ss, len))
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&bound, &blen))
		goto fail;
	/* Later threads join the same port through SO_REUSEPORT. */
	qg_addr_from_sockaddr((struct sockaddr *)&bound, &opt.addrs[i]);
	*out = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

static inline uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap, per thread, quality is plenty for a drop decision. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Queue one datagram for later; 0 or -ENOBUFS when the queue is full. */
static int delay_push(struct echo_thread *t, unsigned ai, const uint8_t *data, uint32_t len,
		      const struct sockaddr_storage *peer, socklen_t peer_len, uint64_t now)
{
	uint32_t off = t->arena_head % ECHO_DELAY_ARENA;
	uint32_t used = t->arena_head - t->arena_tail;
	uint32_t need = len;
	struct delayed *d;

	if (t->dq_head - t->dq_tail == ECHO_DELAY_SLOTS)
		return -ENOBUFS;
	/* Keep each payload contiguous: skip the arena's tail end when it does not fit. */
	if (off + len > ECHO_DELAY_ARENA)
		need += ECHO_DELAY_ARENA - off;
	if (used + need > ECHO_DELAY_ARENA)
		return -ENOBUFS;
	if (off + len > ECHO_DELAY_ARENA)
		off = 0;
	memcpy(t->arena + off, data, len);
	t->arena_head += need;
	d = &t->dq[t->dq_head % ECHO_DELAY_SLOTS];
	d->due_ns = now + (uint64_t)opt.delay_ms * 1000000ULL;
	d->off = off;
	d->len = need; /* arena bytes to release, payload length is recomputed */
	d->addr_idx = (uint16_t)ai;
	d->peer = *peer;
	d->peer_len = peer_len;
	t->dq_head++;
	return 0;
}

/* Send every delayed datagram that is due; returns ns until the next one is due (or -1). */
static int64_t delay_flush(struct echo_thread *t, uint64_t now)
{
	while (t->dq_tail != t->dq_head) {
		struct delayed *d = &t->dq[t->dq_tail % ECHO_DELAY_SLOTS];
		uint32_t off = t->arena_tail % ECHO_DELAY_ARENA;
		uint32_t skip = d->off == off ? 0 : ECHO_DELAY_ARENA - off;
		uint32_t len = d->len - skip;

		if (d->due_ns > now)
			return (int64_t)(d->due_ns - now);
		if (sendto(t->fds[d->addr_idx], t->arena + d->off, len, 0, (struct sockaddr *)&d->peer,
			   d->peer_len) == (ssize_t)len)
			QG_COUNTER_ADD(&t->cnt[d->addr_idx].tx, 1);
		else
			QG_COUNTER_ADD(&t->cnt[d->addr_idx].tx_failed, 1);
		t->arena_tail += d->len;
		t->dq_tail++;
	}
	return -1;
}

struct batch {
	struct mmsghdr msgs[ECHO_BATCH];
	struct iovec iov[ECHO_BATCH];
	struct sockaddr_storage peers[ECHO_BATCH];
	uint8_t keep[ECHO_BATCH];
	struct mmsghdr out[ECHO_BATCH];
	unsigned out_cnt[ECHO_BATCH]; /* datagrams carried by out[i] */
	uint16_t seg[ECHO_BATCH];     /* msgs[i] is a UDP_GRO receive of segments this long; 0: plain */
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rctl[ECHO_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[ECHO_BATCH];
};

static inline int same_peer(const struct batch *b, int i, int j)
{
	socklen_t l = b->msgs[i].msg_hdr.msg_namelen;

	return l == b->msgs[j].msg_hdr.msg_namelen && memcmp(&b->peers[i], &b->peers[j], l) == 0;
}

/*
 * Turn the kept datagrams into send messages. Consecutive datagrams to one
 * peer (a client sends its window back to back) become one UDP GSO message:
 * one trip through the IP stack instead of one per datagram, which is what
 * keeps the echo from being the bottleneck. The receiver still gets separate
 * datagrams.
 */
static unsigned build_replies(struct echo_thread *t, struct batch *b, int n)
{
	unsigned n_out = 0;

	for (int i = 0; i < n;) {
		uint32_t len = b->msgs[i].msg_len, total = len;
		struct msghdr *h = &b->out[n_out].msg_hdr;
		int j = i + 1;

		if (!b->keep[i]) {
			i++;
			continue;
		}
		/* Reply with the very buffers received: iov_len = each datagram's length. */
		b->iov[i].iov_len = len;
		if (b->seg[i]) {
			/* Coalesced on receive: send it back whole with the same segment size. */
			len = b->seg[i];
		} else if (t->gso && len > 0 && len <= ECHO_GSO_MAX_SEG) {
			while (j < n && j - i < ECHO_GSO_MAX_SEGS && b->keep[j] && !b->seg[j] &&
			       same_peer(b, i, j)) {
				uint32_t l = b->msgs[j].msg_len;

				/* Every segment but the last has the GSO size; the last may be shorter. */
				if (l == 0 || l > len || total + l > ECHO_GSO_MAX_BYTES)
					break;
				b->iov[j].iov_len = l;
				total += l;
				j++;
				if (l < len)
					break;
			}
		}
		memset(h, 0, sizeof(*h));
		h->msg_name = &b->peers[i];
		h->msg_namelen = b->msgs[i].msg_hdr.msg_namelen;
		h->msg_iov = &b->iov[i];
		h->msg_iovlen = (size_t)(j - i);
		if (j - i > 1 || b->seg[i]) {
			struct cmsghdr *cm = &b->ctl[n_out].align;
			uint16_t seg = (uint16_t)len;

			h->msg_control = b->ctl[n_out].buf;
			h->msg_controllen = sizeof(b->ctl[n_out].buf);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
		b->out_cnt[n_out++] = b->seg[i] ? (b->msgs[i].msg_len + len - 1) / len : (unsigned)(j - i);
		i = j;
	}
	return n_out;
}

/* Segment size of a coalesced (UDP_GRO) receive, 0 for a plain datagram. */
static uint16_t gro_seg(const struct mmsghdr *m)
{
	const struct msghdr *h = &m->msg_hdr;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;

			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			return v > 0 && (unsigned)v < m->msg_len ? (uint16_t)v : 0;
		}
	}
	return 0;
}

/* Drain one socket: receive up to 64 at a time and echo them back. */
static void echo_socket(struct echo_thread *t, unsigned ai, struct batch *b)
{
	struct echo_counters *c = &t->cnt[ai];
	int fd = t->fds[ai];

	/* Bounded so one busy address cannot starve the others of this thread. */
	for (int round = 0; round < 16; round++) {
		unsigned n_out;
		uint64_t bytes = 0;
		uint64_t datagrams;
		int n;

		for (int i = 0; i < ECHO_BATCH; i++) {
			b->msgs[i].msg_hdr.msg_namelen = sizeof(b->peers[i]);
			b->iov[i].iov_len = ECHO_BUF_SIZE;
			if (t->gro) {
				b->msgs[i].msg_hdr.msg_control = b->rctl[i].buf;
				b->msgs[i].msg_hdr.msg_controllen = sizeof(b->rctl[i].buf);
			}
		}
		n = recvmmsg(fd, b->msgs, ECHO_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		datagrams = (uint64_t)n;
		for (int i = 0; i < n; i++) {
			struct mmsghdr *m = &b->msgs[i];

			bytes += m->msg_len;
			b->keep[i] = 0;
			b->seg[i] = t->gro ? gro_seg(m) : 0;
			if (b->seg[i]) {
				/* Only enabled without drop/delay, which work per datagram. */
				b->keep[i] = 1;
				datagrams += (m->msg_len + b->seg[i] - 1) / b->seg[i] - 1;
				continue;
			}
			if (opt.drop_pct > 0.0 &&
			    (double)(rng_next(&t->rng) >> 11) * (100.0 / 9007199254740992.0) < opt.drop_pct) {
				QG_COUNTER_ADD(&c->dropped, 1);
				continue;
			}
			if (opt.delay_ms) {
				if (delay_push(t, ai, b->iov[i].iov_base, m->msg_len, &b->peers[i],
					       m->msg_hdr.msg_namelen, qg_clock_ns()))
					QG_COUNTER_ADD(&c->tx_failed, 1);
				continue;
			}
			b->keep[i] = 1;
		}
		QG_COUNTER_ADD(&c->rx, datagrams);
		QG_COUNTER_ADD(&c->rx_bytes, bytes);
		n_out = build_replies(t, b, n);
		for (unsigned sent = 0; sent < n_out;) {
			int r = sendmmsg(fd, b->out + sent, n_out - sent, MSG_DONTWAIT);

			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				/* GSO refused (old kernel, odd route): fall back for the rest of the run. */
				if (r < 0 && t->gso &&
				    (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP))
					t->gso = 0;
				/* Send buffer full or the peer is gone: UDP may drop, so do we. */
				for (; sent < n_out; sent++)
					QG_COUNTER_ADD(&c->tx_failed, b->out_cnt[sent]);
				break;
			}
			for (int k = 0; k < r; k++)
				QG_COUNTER_ADD(&c->tx, b->out_cnt[sent + (unsigned)k]);
			sent += (unsigned)r;
		}
		if (n < ECHO_BATCH)
			return;
	}
}

static void *echo_thread_main(void *arg)
{
	struct echo_thread *t = arg;
	struct epoll_event ev[ECHO_MAX_ADDRS];
	struct batch *b = calloc(1, sizeof(*b));
	uint8_t *bufs = malloc((size_t)ECHO_BATCH * ECHO_BUF_SIZE);

	if (!b || !bufs) {
		fprintf(stderr, "qgate-echo: out of memory\n");
		exit(1);
	}
	for (int i = 0; i < ECHO_BATCH; i++) {
		b->iov[i].iov_base = bufs + (size_t)i * ECHO_BUF_SIZE;
		b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
		b->msgs[i].msg_hdr.msg_iovlen = 1;
		b->msgs[i].msg_hdr.msg_name = &b->peers[i];
	}
	while (!stop) {
		int timeout = 100; /* ms: how fast a signal is noticed */
		int n;

		if (opt.delay_ms) {
			int64_t wait = delay_flush(t, qg_clock_ns());

			if (wait >= 0 && (wait + 999999) / 1000000 < timeout)
				timeout = (int)((wait + 999999) / 1000000);
		}
		n = epoll_wait(t->epfd, ev, ECHO_MAX_ADDRS, timeout);
		for (int i = 0; i < n; i++)
			echo_socket(t, ev[i].data.u32, b);
	}
	free(bufs);
	free(b);
	return NULL;
}

static void sum_counters(unsigned ai, struct echo_counters *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned t = 0; t < opt.threads; t++) {
		const struct echo_counters *c = &threads[t].cnt[ai];

		s->rx += QG_LOAD_RELAXED(&c->rx);
		s->tx += QG_LOAD_RELAXED(&c->tx);
		s->dropped += QG_LOAD_RELAXED(&c->dropped);
		s->tx_failed += QG_LOAD_RELAXED(&c->tx_failed);
		s->rx_bytes += QG_LOAD_RELAXED(&c->rx_bytes);
	}
}

static void print_counters(const char *what, struct echo_counters *prev, double secs)
{
	char buf[QG_ADDR_STRLEN];
	struct echo_counters tot = { 0 };

	for (unsigned ai = 0; ai < opt.n_addrs; ai++) {
		struct echo_counters s;

		sum_counters(ai, &s);
		qg_addr_format(&opt.addrs[ai], buf, sizeof(buf));
		if (prev) {
			fprintf(stderr,
				"qgate-echo: %s %s rx=%llu tx=%llu dropped=%llu tx_failed=%llu rx_pps=%.0f\n",
				what, buf, (unsigned long long)s.rx, (unsigned long long)s.tx,
				(unsigned long long)s.dropped, (unsigned long long)s.tx_failed,
				secs > 0 ? (double)(s.rx - prev[ai].rx) / secs : 0.0);
			prev[ai] = s;
		} else {
			fprintf(stderr,
				"qgate-echo: %s %s rx=%llu tx=%llu dropped=%llu tx_failed=%llu "
				"rx_bytes=%llu\n",
				what, buf, (unsigned long long)s.rx, (unsigned long long)s.tx,
				(unsigned long long)s.dropped, (unsigned long long)s.tx_failed,
				(unsigned long long)s.rx_bytes);
		}
		tot.rx += s.rx;
		tot.tx += s.tx;
		tot.dropped += s.dropped;
		tot.tx_failed += s.tx_failed;
	}
	if (!prev)
		fprintf(stderr, "qgate-echo: total rx=%llu tx=%llu dropped=%llu tx_failed=%llu\n",
			(unsigned long long)tot.rx, (unsigned long long)tot.tx,
			(unsigned long long)tot.dropped, (unsigned long long)tot.tx_failed);
}

static int setup_thread(struct echo_thread *t, unsigned idx)
{
	int err;

	t->idx = idx;
	t->gso = !opt.no_gso;
	/* A coalesced receive is echoed whole; drop and delay need single datagrams. */
	t->gro = t->gso && opt.drop_pct == 0.0 && !opt.delay_ms;
	t->rng = (qg_clock_ns() ^ ((uint64_t)getpid() << 32)) * 0x9E3779B97F4A7C15ULL + idx + 1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return -errno;
	for (unsigned ai = 0; ai < opt.n_addrs; ai++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = ai };
		char buf[QG_ADDR_STRLEN];

		err = open_socket(ai, &t->fds[ai]);
		if (err) {
			fprintf(stderr, "qgate-echo: cannot listen on %s: %s\n",
				qg_addr_format(&opt.addrs[ai], buf, sizeof(buf)), strerror(-err));
			return err;
		}
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->fds[ai], &ev))
			return -errno;
		if (t->gro) {
			int one = 1;

			if (setsockopt(t->fds[ai], SOL_UDP, UDP_GRO, &one, sizeof(one)))
				t->gro = 0;
		}
	}
	if (opt.delay_ms) {
		t->dq = calloc(ECHO_DELAY_SLOTS, sizeof(*t->dq));
		t->arena = malloc(ECHO_DELAY_ARENA);
		if (!t->dq || !t->arena)
			return -ENOMEM;
	}
	return 0;
}

/* Undo setup_thread, however far it got (descriptors start at -1). */
static void teardown_thread(struct echo_thread *t)
{
	for (unsigned ai = 0; ai < opt.n_addrs; ai++)
		if (t->fds[ai] >= 0)
			close(t->fds[ai]);
	if (t->epfd >= 0)
		close(t->epfd);
	free(t->dq);
	free(t->arena);
}

int main(int argc, char **argv)
{
	struct echo_counters *prev = NULL;
	struct sigaction sa;
	char line[4096];
	size_t off;
	uint64_t last, start = 0;
	unsigned started = 0;
	int rc = 1;

	if (parse_options(argc, argv))
		return 2;
	threads = calloc(opt.threads, sizeof(*threads));
	prev = calloc(opt.n_addrs, sizeof(*prev));
	if (!threads || !prev)
		goto out;
	for (unsigned i = 0; i < opt.threads; i++) {
		threads[i].epfd = -1;
		for (unsigned ai = 0; ai < ECHO_MAX_ADDRS; ai++)
			threads[i].fds[ai] = -1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Open every socket before starting any thread: errors surface before "listening". */
	for (unsigned i = 0; i < opt.threads; i++) {
		if (setup_thread(&threads[i], i))
			goto out;
	}
	/* Workers inherit a mask blocking the signals so the main thread handles them. */
	sigset_t set, old;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < opt.threads; i++) {
		if (pthread_create(&threads[i].tid, NULL, echo_thread_main, &threads[i])) {
			fprintf(stderr, "qgate-echo: cannot start thread\n");
			stop = 1; /* the threads already running see it and return */
			break;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < opt.threads)
		goto join;

	off = (size_t)snprintf(line, sizeof(line), "qgate-echo: listening on");
	for (unsigned ai = 0; ai < opt.n_addrs && off < sizeof(line) - QG_ADDR_STRLEN - 2; ai++) {
		char buf[QG_ADDR_STRLEN];

		off += (size_t)snprintf(line + off, sizeof(line) - off, " %s",
					qg_addr_format(&opt.addrs[ai], buf, sizeof(buf)));
	}
	fprintf(stderr, "%s (threads=%u)\n", line, opt.threads);
	fflush(stderr);

	start = last = qg_clock_ms();
	while (!stop) {
		struct timespec ts = { 0, 100 * 1000000L };
		uint64_t now;

		nanosleep(&ts, NULL); /* interrupted by the signal: reacts at once */
		now = qg_clock_ms();
		if (!opt.quiet && opt.stats_interval && now - last >= opt.stats_interval * 1000ULL) {
			print_counters("stats", prev, (double)(now - last) / 1000.0);
			last = now;
		}
	}
join:
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i].tid, NULL);
	if (started < opt.threads)
		goto out;
	if (!opt.quiet) {
		fprintf(stderr, "qgate-echo: stopping after %.1f s\n",
			(double)(qg_clock_ms() - start) / 1000.0);
		print_counters("final", NULL, 0);
	}
	rc = 0;
out:
	if (threads)
		for (unsigned i = 0; i < opt.threads; i++)
			teardown_thread(&threads[i]);
	free(threads);
	free(prev);
	return rc;
}
