/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, kernel-socket driver: options, one connected UDP socket per
 * flow, epoll + recvmmsg/sendmmsg per thread, the live line and the summary.
 * The traffic model (traffic.c) and statistics (stats.c) know nothing of
 * sockets so a DPDK driver can reuse them.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qgate/addr.h"
#include "qgate/clock.h"
#include "qgate/compiler.h"
#include "dpdk.h"
#include "loadgen.h"

#define LG_BATCH	 64
#define LG_MAX_FLOWS	 65536
#define LG_MAX_THREADS	 64
#define LG_SCAN_NS	 1000000ULL /* timeout scan / closed-loop refill period */
#define LG_OPEN_CHUNK	 4	    /* open loop: datagrams per flow per turn */
#define LG_GSO_MAX_SEG	 1472	    /* bigger datagrams could exceed a real MTU: no GSO */
#define LG_GSO_MAX_BYTES 65000
#define LG_GRO_BUF	 65536 /* a coalesced receive holds up to 64 KiB */

static struct {
	const char *target_text;
	struct qg_addr target;
	uint32_t flows;
	uint32_t size;
	uint32_t window;
	uint64_t rate; /* 0 = closed loop */
	double duration_s;
	double warmup_s;
	uint32_t timeout_ms;
	enum lg_payload payload;
	struct lg_quic_lb quic_lb;
	uint32_t threads;
	int json;
	int quiet;
	int no_gso;
} opt = {
	.flows = 256,
	.size = 64,
	.window = 16,
	.duration_s = 10,
	.warmup_s = 1,
	.timeout_ms = 200,
	.payload = LG_PAYLOAD_UDP,
	.threads = 1,
};

struct lg_thread {
	pthread_t tid;
	unsigned idx;
	struct lg_flow *flows;
	unsigned n_flows;
	unsigned n_open; /* flows set up so far (teardown undoes these) */
	uint64_t rate;	 /* open loop: this thread's share */
	uint64_t open_sent;
	unsigned rr;
	int epfd;
	struct lg_stats *stats;
	uint8_t *txbuf;
	uint8_t *rxbuf;
	size_t rx_size;
	struct mmsghdr txm[LG_BATCH];
	struct iovec txiov[LG_BATCH];
	struct mmsghdr rxm[LG_BATCH];
	struct iovec rxiov[LG_BATCH];
	int gso; /* send a flow's burst as one UDP GSO message */
	int gro; /* sockets accept coalesced receives (UDP_GRO) */
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} rxctl[LG_BATCH];
};

static struct lg_model model;
static struct lg_thread *threads;
static uint64_t start_ns, warm_end_ns, end_ns, timeout_ns;
static volatile sig_atomic_t stop;
static uint64_t stop_ns; /* when a signal cut the run short */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qgate-loadgen --target ADDR [options]\n"
		"  --target ADDR      where to send: a.b.c.d:port or [v6]:port (required)\n"
		"  --flows N          UDP sockets = source ports (default 256)\n"
		"  --size BYTES       UDP payload per datagram, >= 24 (>= 33 with --payload quic; default "
		"64)\n"
		"  --window W         closed loop: W datagrams in flight per flow (default 16)\n"
		"  --rate PPS         open loop instead: send PPS datagrams/s in total, whatever the "
		"replies\n"
		"  --duration SEC     measured time (default 10)\n"
		"  --warmup SEC       traffic before measuring, not counted (default 1)\n"
		"  --timeout-ms MS    a datagram unanswered this long is lost (default 200)\n"
		"  --payload udp|quic quic: first datagram of a flow is a 1200-byte Initial-like long "
		"header\n"
		"                     packet, the others short-header packets with the flow's DCID\n"
		"  --quic-lb CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX]\n"
		"                     with --payload quic: each flow's DCID is a QUIC-LB CID (encoded once "
		"per flow)\n"
		"  --server-ids HEX,HEX,...  server IDs for --quic-lb: flow f names server ID f %% n\n"
		"  --threads N        threads, flows divided among them (default 1)\n"
		"  --dpdk EAL_ARGS    kernel-bypass (DPDK) driver instead of sockets; its options:\n"
		"                     qgate-loadgen --dpdk '' --help\n"
		"  --json             print only the JSON summary on stdout\n"
		"  --quiet            no live line on stderr\n"
		"  --help             this text\n"
		"Every second: 't=3s tx=... pps rx=... pps loss=...%% p50=...us p99=...us' on stderr.\n"
		"Exit status: 0 after a run, 2 on bad options, 1 when the run could not be set up.\n");
}

static int bad(const char *what)
{
	fprintf(stderr, "qgate-loadgen: %s (see --help)\n", what);
	return -EINVAL;
}

static int parse_options(int argc, char **argv)
{
	enum {
		O_TARGET = 256,
		O_FLOWS,
		O_SIZE,
		O_WINDOW,
		O_RATE,
		O_DURATION,
		O_WARMUP,
		O_TIMEOUT,
		O_PAYLOAD,
		O_QUIC_LB,
		O_SERVER_IDS,
		O_THREADS,
		O_JSON,
		O_QUIET,
		O_NO_GSO,
		O_HELP
	};
	static const struct option lopts[] = {
		{ "target", required_argument, NULL, O_TARGET },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "rate", required_argument, NULL, O_RATE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "payload", required_argument, NULL, O_PAYLOAD },
		{ "quic-lb", required_argument, NULL, O_QUIC_LB },
		{ "server-ids", required_argument, NULL, O_SERVER_IDS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "no-gso", no_argument, NULL, O_NO_GSO },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	int window_given = 0;
	int c;

	opterr = 0; /* our own messages, then exit 2 */
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case O_TARGET:
			opt.target_text = optarg;
			if (lg_parse_target(optarg, &opt.target))
				return bad(LG_MSG_TARGET);
			break;
		case O_FLOWS:
			if (lg_parse_u32(optarg, 1, LG_MAX_FLOWS, &opt.flows))
				return bad("--flows wants 1..65536");
			break;
		case O_SIZE:
			if (lg_parse_u32(optarg, LG_STAMP_LEN, LG_MAX_DATAGRAM, &opt.size))
				return bad("--size wants 24..65507 bytes");
			break;
		case O_WINDOW:
			if (lg_parse_u32(optarg, 1, 4096, &opt.window))
				return bad("--window wants 1..4096");
			window_given = 1;
			break;
		case O_RATE:
			if (lg_parse_u64(optarg, 1, 100000000, &opt.rate))
				return bad("--rate wants 1..100000000 datagrams/s");
			break;
		case O_DURATION:
			if (lg_parse_duration(optarg, &opt.duration_s))
				return bad(LG_MSG_DURATION);
			break;
		case O_WARMUP:
			if (lg_parse_warmup(optarg, &opt.warmup_s))
				return bad(LG_MSG_WARMUP);
			break;
		case O_TIMEOUT:
			if (lg_parse_timeout_ms(optarg, &opt.timeout_ms))
				return bad(LG_MSG_TIMEOUT);
			break;
		case O_PAYLOAD:
			if (lg_parse_payload(optarg, &opt.payload))
				return bad(LG_MSG_PAYLOAD);
			break;
		case O_QUIC_LB:
			if (lg_quic_lb_parse(optarg, &opt.quic_lb, &why))
				return bad(why);
			break;
		case O_SERVER_IDS:
			opt.quic_lb.sids_text = optarg;
			break;
		case O_THREADS:
			if (lg_parse_u32(optarg, 1, LG_MAX_THREADS, &opt.threads))
				return bad("--threads wants 1..64");
			break;
		case O_JSON:
			opt.json = 1;
			break;
		case O_QUIET:
			opt.quiet = 1;
			break;
		case O_NO_GSO:
			opt.no_gso = 1;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			if (optopt)
				fprintf(stderr, "qgate-loadgen: option needs a value or is unknown: %s\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "qgate-loadgen: unknown option %s\n", argv[optind - 1]);
			return bad("bad option");
		}
	}
	if (optind < argc)
		return bad("unexpected argument");
	if (!opt.target_text)
		return bad("--target is required");
	if (opt.rate && window_given)
		return bad("--window (closed loop) and --rate (open loop) exclude each other");
	if (lg_quic_lb_finish(&opt.quic_lb, opt.payload, &why))
		return bad(why);
	if (opt.payload == LG_PAYLOAD_QUIC && opt.size < LG_QUIC_SHORT_HDR + LG_STAMP_LEN)
		return bad("--size must be >= 33 with --payload quic (9-byte short header + 24-byte stamp)");
	if (!lg_quic_lb_size_ok(&opt.quic_lb, opt.size))
		return bad(LG_MSG_QUIC_LB_SIZE);
	if (opt.threads > opt.flows)
		return bad("--threads must not exceed --flows");
	if (opt.rate)
		opt.window = 0;
	return 0;
}

static inline int in_window(uint64_t now)
{
	return now >= warm_end_ns && now < end_ns;
}

/* One sendmsg carrying n datagrams of model.size bytes; returns n or -errno. */
static int send_gso(struct lg_thread *t, struct lg_flow *f, unsigned n)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl;
	struct msghdr h = { .msg_iov = t->txiov,
			    .msg_iovlen = n,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
	uint16_t seg = (uint16_t)model.size;

	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
	return sendmsg(f->fd, &h, MSG_DONTWAIT) < 0 ? -errno : (int)n;
}

/* Send up to want datagrams on flow f; returns how many left. */
static unsigned send_burst(struct lg_thread *t, struct lg_flow *f, unsigned want, uint64_t now)
{
	uint32_t room = f->mask + 1 - (uint32_t)(f->next_seq - f->tail);
	int measured = in_window(now);
	int quic_first = model.payload == LG_PAYLOAD_QUIC && f->next_seq == 0;
	int gso;
	int r;

	if (want > LG_BATCH)
		want = LG_BATCH;
	if (want > room)
		want = room;
	/* GSO needs equal sizes: a QUIC flow's larger Initial goes alone. */
	if (quic_first)
		want = 1;
	gso = t->gso && want > 1;
	if (gso && want > LG_GSO_MAX_BYTES / model.size)
		want = LG_GSO_MAX_BYTES / model.size;
	if (!want)
		return 0;
	for (unsigned i = 0; i < want; i++)
		t->txiov[i].iov_len =
			lg_build(&model, f, f->next_seq + i, now, t->txbuf + (size_t)i * model.max_size);
	if (gso) {
		r = send_gso(t, f, want);
		/* Refused (no GSO on this route or kernel): plain sends from now on. */
		if (r == -EIO || r == -EINVAL || r == -EOPNOTSUPP)
			t->gso = 0;
	} else {
		r = sendmmsg(f->fd, t->txm, want, MSG_DONTWAIT);
	}
	/* EAGAIN/ENOBUFS, or ECONNREFUSED after an ICMP error: retried at the next refill. */
	if (r <= 0)
		return 0;
	for (int i = 0; i < r; i++)
		lg_flow_sent(f, now, measured);
	QG_COUNTER_ADD(&t->stats->live.tx, (uint64_t)r);
	if (measured)
		QG_COUNTER_ADD(&t->stats->meas.tx, (uint64_t)r);
	return (unsigned)r;
}

static void count_mismatch(struct lg_thread *t, int measured)
{
	QG_COUNTER_ADD(&t->stats->live.mismatched, 1);
	if (measured)
		QG_COUNTER_ADD(&t->stats->meas.mismatched, 1);
}

static void handle_reply(struct lg_thread *t, struct lg_flow *f, const uint8_t *buf, size_t len, int trunc,
			 uint64_t now)
{
	struct lg_stats *st = t->stats;
	struct lg_slot *s;
	uint32_t flow;
	uint64_t seq;

	/* Not attributable to a datagram: counts when it arrives in the measured window. */
	if (lg_parse(&model, buf, len, &flow, &seq) || flow != f->id) {
		count_mismatch(t, in_window(now));
		return;
	}
	s = lg_flow_lookup(f, seq);
	if (!s) {
		QG_COUNTER_ADD(&st->live.late, 1);
		if (in_window(now))
			QG_COUNTER_ADD(&st->meas.late, 1);
		return;
	}
	if (trunc || !lg_verify(&model, f, seq, s->sent_ns, buf, len)) {
		count_mismatch(t, s->state == LG_SLOT_MEASURED);
	} else {
		uint64_t rtt = now - s->sent_ns;

		QG_COUNTER_ADD(&st->live.rx, 1);
		lg_hist_record(&st->live_hist, rtt);
		if (s->state == LG_SLOT_MEASURED) {
			QG_COUNTER_ADD(&st->meas.rx, 1);
			lg_hist_record(&st->meas_hist, rtt);
		}
	}
	lg_flow_resolve(f, s);
}

/* Segment size of a coalesced (UDP_GRO) receive, 0 for a plain datagram. */
static size_t gro_size(const struct msghdr *h)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;

			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			return v > 0 ? (size_t)v : 0;
		}
	}
	return 0;
}

static void recv_flow(struct lg_thread *t, struct lg_flow *f)
{
	/* Bounded: level-triggered epoll brings us back for the rest. */
	for (int round = 0; round < 4; round++) {
		uint64_t now;
		int n;

		if (t->gro) {
			for (int i = 0; i < LG_BATCH; i++)
				t->rxm[i].msg_hdr.msg_controllen = sizeof(t->rxctl[i].buf);
		}
		n = recvmmsg(f->fd, t->rxm, LG_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		/* One clock read per batch: the batch arrived together. */
		now = qg_clock_ns();
		for (int i = 0; i < n; i++) {
			const struct msghdr *h = &t->rxm[i].msg_hdr;
			const uint8_t *p = t->rxiov[i].iov_base;
			size_t len = t->rxm[i].msg_len;
			size_t seg = t->gro ? gro_size(h) : 0;
			int trunc = !!(h->msg_flags & MSG_TRUNC);

			if (!seg || seg >= len) {
				handle_reply(t, f, p, len, trunc, now);
				continue;
			}
			/* Coalesced: equal segments, the last possibly shorter. */
			for (size_t off = 0; off < len; off += seg)
				handle_reply(t, f, p + off, len - off < seg ? len - off : seg, trunc, now);
		}
		if (n < LG_BATCH)
			return;
	}
}

/* Declare lost every datagram older than deadline (oldest first, so O(lost + 1)). */
static void expire_flow(struct lg_thread *t, struct lg_flow *f, uint64_t now, uint64_t age)
{
	while (f->tail != f->next_seq) {
		struct lg_slot *s = &f->ring[f->tail & f->mask];

		if (s->state != LG_SLOT_FREE) {
			if (now - s->sent_ns < age)
				return;
			QG_COUNTER_ADD(&t->stats->live.lost, 1);
			if (s->state == LG_SLOT_MEASURED)
				QG_COUNTER_ADD(&t->stats->meas.lost, 1);
			s->state = LG_SLOT_FREE;
			f->inflight--;
		}
		f->tail++;
	}
}

static void open_loop_send(struct lg_thread *t, uint64_t now)
{
	uint64_t due = (uint64_t)((double)(now - start_ns) * (double)t->rate / 1e9);
	uint64_t budget = due > t->open_sent ? due - t->open_sent : 0;
	unsigned tries = 0;

	while (budget && tries++ < t->n_flows) {
		struct lg_flow *f = &t->flows[t->rr];
		unsigned k = budget < LG_OPEN_CHUNK ? (unsigned)budget : LG_OPEN_CHUNK;
		unsigned sent;

		t->rr = t->rr + 1 == t->n_flows ? 0 : t->rr + 1;
		sent = send_burst(t, f, k, now);
		if (sent < k) {
			/* Open loop keeps its schedule: what could not go out is skipped, not delayed. */
			QG_COUNTER_ADD(&t->stats->live.tx_skipped, k - sent);
			if (in_window(now))
				QG_COUNTER_ADD(&t->stats->meas.tx_skipped, k - sent);
		}
		t->open_sent += k;
		budget -= k;
	}
}

static uint64_t open_loop_wait_ns(const struct lg_thread *t, uint64_t now)
{
	/* Sleep until a chunk is due, but at least 50 us so we never spin a shared core. */
	uint64_t next = start_ns + (uint64_t)((double)(t->open_sent + LG_OPEN_CHUNK) * 1e9 / (double)t->rate);
	uint64_t wait = next > now ? next - now : 0;

	if (wait < 50000)
		wait = 50000;
	return wait < LG_SCAN_NS ? wait : LG_SCAN_NS;
}

static void poll_once(struct lg_thread *t, uint64_t wait_ns, int refill)
{
	struct epoll_event ev[256];
	struct timespec ts = { (time_t)(wait_ns / 1000000000ULL), (long)(wait_ns % 1000000000ULL) };
	int n = epoll_pwait2(t->epfd, ev, 256, &ts, NULL);

	for (int i = 0; i < n; i++) {
		struct lg_flow *f = &t->flows[ev[i].data.u32];

		recv_flow(t, f);
		/* Closed loop: refill right away, while the socket is hot. */
		if (refill && f->inflight < opt.window)
			send_burst(t, f, opt.window - f->inflight, qg_clock_ns());
	}
}

static void *thread_main(void *arg)
{
	struct lg_thread *t = arg;
	uint64_t now = qg_clock_ns();
	uint64_t last_scan = now;
	uint64_t inflight;

	if (!opt.rate) {
		for (unsigned i = 0; i < t->n_flows; i++)
			send_burst(t, &t->flows[i], opt.window, now);
	}
	for (;;) {
		now = qg_clock_ns();
		if (stop || now >= end_ns)
			break;
		if (opt.rate) {
			open_loop_send(t, now);
			poll_once(t, open_loop_wait_ns(t, qg_clock_ns()), 0);
		} else {
			poll_once(t, LG_SCAN_NS, 1);
		}
		now = qg_clock_ns();
		if (now - last_scan >= LG_SCAN_NS) {
			last_scan = now;
			for (unsigned i = 0; i < t->n_flows; i++) {
				struct lg_flow *f = &t->flows[i];

				expire_flow(t, f, now, timeout_ns);
				/* Refills slots freed by losses and sends that hit a full buffer. */
				if (!opt.rate && f->inflight < opt.window)
					send_burst(t, f, opt.window - f->inflight, now);
			}
		}
	}
	/* Drain: nothing new goes out; wait for answers up to the loss timeout. */
	for (;;) {
		now = qg_clock_ns();
		inflight = 0;
		for (unsigned i = 0; i < t->n_flows; i++) {
			expire_flow(t, &t->flows[i], now, timeout_ns);
			inflight += t->flows[i].inflight;
		}
		if (!inflight || stop > 1)
			break;
		poll_once(t, LG_SCAN_NS, 0);
	}
	/* Left over only after a second signal: give up on those. */
	for (unsigned i = 0; i < t->n_flows; i++)
		expire_flow(t, &t->flows[i], UINT64_MAX, 0);
	return NULL;
}

static void set_nofile(uint32_t need)
{
	struct rlimit rl;

	/* One descriptor per flow plus a few: raise the soft limit to the hard one if needed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static uint32_t ring_size(void)
{
	uint64_t want;
	uint32_t sz = 16;

	if (opt.rate) {
		/* Hold every datagram sent within two timeouts so open loop never waits on a slot. */
		double per_flow = (double)opt.rate / opt.flows;

		want = (uint64_t)(2.0 * per_flow * opt.timeout_ms / 1000.0) + 16;
	} else {
		/* 4x the window so a slow straggler does not stall the flow until it times out. */
		want = 4ULL * opt.window;
	}
	while (sz < want && sz < (1u << 20))
		sz <<= 1;
	return sz;
}

static int setup_thread(struct lg_thread *t, unsigned idx, uint32_t first_flow, uint32_t n_flows)
{
	struct sockaddr_storage ss;
	socklen_t sl = qg_addr_to_sockaddr(&opt.target, &ss);
	uint32_t rs = ring_size();

	t->idx = idx;
	t->n_flows = n_flows;
	t->flows = calloc(n_flows, sizeof(*t->flows));
	t->stats = aligned_alloc(QG_CACHE_LINE, sizeof(*t->stats));
	t->gso = !opt.no_gso && model.size <= LG_GSO_MAX_SEG;
	t->gro = !opt.no_gso;
	/* Longer replies must show up as mismatched; GRO needs room for 64 KiB. */
	t->rx_size = t->gro ? LG_GRO_BUF : model.max_size + 64;
	t->txbuf = malloc((size_t)LG_BATCH * model.max_size);
	t->rxbuf = malloc((size_t)LG_BATCH * t->rx_size);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!t->flows || !t->stats || !t->txbuf || !t->rxbuf || t->epfd < 0)
		return -ENOMEM;
	memset(t->stats, 0, sizeof(*t->stats));
	for (unsigned i = 0; i < LG_BATCH; i++) {
		t->txiov[i].iov_base = t->txbuf + (size_t)i * model.max_size;
		t->txm[i].msg_hdr.msg_iov = &t->txiov[i];
		t->txm[i].msg_hdr.msg_iovlen = 1;
		t->rxiov[i].iov_base = t->rxbuf + (size_t)i * t->rx_size;
		t->rxiov[i].iov_len = t->rx_size;
		t->rxm[i].msg_hdr.msg_iov = &t->rxiov[i];
		t->rxm[i].msg_hdr.msg_iovlen = 1;
		if (t->gro)
			t->rxm[i].msg_hdr.msg_control = t->rxctl[i].buf;
	}
	for (uint32_t i = 0; i < n_flows; i++) {
		struct lg_flow *f = &t->flows[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		if (lg_flow_init(f, first_flow + i, rs))
			return -ENOMEM;
		t->n_open++;
		f->fd = socket(opt.target.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (f->fd < 0)
			return -errno;
		/* connect(): the kernel picks the source port and filters replies from elsewhere. */
		if (connect(f->fd, (struct sockaddr *)&ss, sl) ||
		    epoll_ctl(t->epfd, EPOLL_CTL_ADD, f->fd, &ev))
			return -errno;
	}
	return 0;
}

/* Undo setup_thread, however far it got (epfd starts at -1). */
static void teardown_thread(struct lg_thread *t)
{
	for (unsigned i = 0; i < t->n_open; i++) {
		if (t->flows[i].fd >= 0)
			close(t->flows[i].fd);
		lg_flow_free(&t->flows[i]);
	}
	if (t->epfd >= 0)
		close(t->epfd);
	free(t->flows);
	free(t->stats);
	free(t->txbuf);
	free(t->rxbuf);
}

static void live_line(uint64_t now, struct lg_counters *prev_c, struct lg_hist *prev_h, struct lg_hist *cur,
		      struct lg_hist *diff, double secs)
{
	struct lg_counters c = { 0 };
	uint64_t dtx, drx, dlost;

	memset(cur, 0, sizeof(*cur));
	for (unsigned i = 0; i < opt.threads; i++) {
		lg_counters_add(&c, &threads[i].stats->live);
		lg_hist_add(cur, &threads[i].stats->live_hist);
	}
	lg_hist_diff(diff, cur, prev_h);
	dtx = c.tx - prev_c->tx;
	drx = c.rx - prev_c->rx;
	dlost = c.lost - prev_c->lost;
	if (!opt.quiet)
		fprintf(stderr, "t=%.0fs tx=%.0f pps rx=%.0f pps loss=%.2f%% p50=%.0fus p99=%.0fus%s\n",
			(double)(now - start_ns) / 1e9, (double)dtx / secs, (double)drx / secs,
			drx + dlost ? 100.0 * (double)dlost / (double)(drx + dlost) : 0.0,
			(double)lg_hist_quantile(diff, 0.5) / 1e3, (double)lg_hist_quantile(diff, 0.99) / 1e3,
			now < warm_end_ns ? " (warmup)" : "");
	*prev_c = c;
	memcpy(prev_h, cur, sizeof(*cur));
}

static void on_signal_again(int sig)
{
	(void)sig;
	/* First signal: stop sending and drain; second: give up on the drain too. */
	if (stop)
		stop = 2;
	else
		stop = 1;
}

int main(int argc, char **argv)
{
	struct lg_hist *hbuf = NULL;
	struct lg_counters prev_c = { 0 };
	struct lg_report rep;
	struct rusage ru;
	struct sigaction sa;
	char lb_text[32];
	uint32_t per, extra, first = 0;
	uint64_t last, meas_end;
	unsigned started = 0;
	int err, rc = 1;

	if (lg_dpdk_requested(argc, argv)) {
#ifdef QGATE_LOADGEN_DPDK
		return lg_dpdk_main(argc, argv);
#else
		fprintf(stderr, "qgate-loadgen: --dpdk: built without DPDK (libdpdk was not found by "
				"pkg-config when the build was configured)\n");
		return 2;
#endif
	}
	if (parse_options(argc, argv))
		return 2;
	set_nofile(opt.flows);
	if (lg_model_init(&model, opt.payload, opt.size))
		return 1;
	threads = calloc(opt.threads, sizeof(*threads));
	hbuf = calloc(4, sizeof(*hbuf)); /* prev, cur, diff, total: too big for the stack */
	if (!threads || !hbuf)
		goto out;
	for (unsigned i = 0; i < opt.threads; i++)
		threads[i].epfd = -1;
	if (opt.quic_lb.enabled) {
		err = lg_model_set_quic_lb(&model, &opt.quic_lb, opt.flows);
		if (err) {
			fprintf(stderr, "qgate-loadgen: cannot encode the QUIC-LB CIDs: %s\n",
				strerror(-err));
			goto out;
		}
	}
	per = opt.flows / opt.threads;
	extra = opt.flows % opt.threads;
	for (unsigned i = 0; i < opt.threads; i++) {
		uint32_t n = per + (i < extra);

		err = setup_thread(&threads[i], i, first, n);
		if (err) {
			fprintf(stderr, "qgate-loadgen: cannot set up %u flows to %s: %s\n", opt.flows,
				opt.target_text, strerror(-err));
			goto out;
		}
		threads[i].rate = opt.rate / opt.threads + (i < opt.rate % opt.threads);
		first += n;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal_again;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	timeout_ns = (uint64_t)opt.timeout_ms * 1000000ULL;
	start_ns = qg_clock_ns();
	warm_end_ns = start_ns + (uint64_t)(opt.warmup_s * 1e9);
	end_ns = warm_end_ns + (uint64_t)(opt.duration_s * 1e9);
	for (unsigned i = 0; i < opt.threads; i++) {
		/* Threads share the signal mask: block so only the main thread is interrupted. */
		sigset_t set, old;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		err = pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err) {
			fprintf(stderr, "qgate-loadgen: cannot start thread: %s\n", strerror(err));
			stop = 2; /* the threads already running give up at once */
			goto join;
		}
		started++;
	}

	last = start_ns;
	for (;;) {
		uint64_t now = qg_clock_ns();
		uint64_t next = last + 1000000000ULL;
		struct timespec ts;

		if (stop || now >= end_ns) {
			if (stop && !stop_ns)
				stop_ns = now;
			break;
		}
		if (now >= next) {
			live_line(now, &prev_c, &hbuf[0], &hbuf[1], &hbuf[2], (double)(now - last) / 1e9);
			last = now;
			continue;
		}
		if (next > end_ns)
			next = end_ns;
		ts.tv_sec = (time_t)((next - now) / 1000000000ULL);
		ts.tv_nsec = (long)((next - now) % 1000000000ULL);
		nanosleep(&ts, NULL); /* a signal interrupts it */
	}
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_join(threads[i].tid, NULL);
	started = 0;

	memset(&rep, 0, sizeof(rep));
	for (unsigned i = 0; i < opt.threads; i++) {
		lg_counters_add(&rep.c, &threads[i].stats->meas);
		lg_hist_add(&hbuf[3], &threads[i].stats->meas_hist);
	}
	meas_end = stop_ns && stop_ns < end_ns ? stop_ns : end_ns;
	getrusage(RUSAGE_SELF, &ru);
	rep.mode = "kernel";
	rep.target = opt.target_text;
	rep.payload = opt.payload == LG_PAYLOAD_QUIC ? "quic" : "udp";
	if (opt.quic_lb.enabled) {
		lg_quic_lb_describe(&opt.quic_lb, lb_text, sizeof(lb_text));
		rep.quic_lb = lb_text;
		rep.quic_lb_key = opt.quic_lb.has_key;
		rep.server_ids = opt.quic_lb.n_sids;
	}
	rep.open_loop = opt.rate != 0;
	rep.flows = opt.flows;
	rep.window = opt.window;
	rep.size = opt.size;
	rep.threads = opt.threads;
	rep.rate = opt.rate;
	rep.duration_s = meas_end > warm_end_ns ? (double)(meas_end - warm_end_ns) / 1e9 : 0.0;
	rep.warmup_s = opt.warmup_s;
	rep.timeout_ms = opt.timeout_ms;
	rep.cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	rep.hist = &hbuf[3];
	if (!opt.json)
		lg_report_text(stdout, &rep);
	lg_report_json(stdout, &rep);
	fflush(stdout);
	rc = 0;
join:
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i].tid, NULL);
out:
	if (threads)
		for (unsigned i = 0; i < opt.threads; i++)
			teardown_thread(&threads[i]);
	free(threads);
	free(hbuf);
	lg_model_free(&model);
	return rc;
}
