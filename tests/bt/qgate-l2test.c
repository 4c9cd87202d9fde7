/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-l2test: an L2CAP SOCK_SEQPACKET echo server and a verifying client, for the Bluetooth tests
 * (scripts/bt-vm-test.sh runs them in a VM with two virtual controllers; docs/BLUETOOTH.md).
 *
 *   qgate-l2test server [OPTIONS]           echo every SDU back on the link it came from
 *   qgate-l2test client [OPTIONS] BDADDR    send COUNT SDUs of varied sizes, check every echo byte for byte
 *   qgate-l2test udp [OPTIONS] HOST:PORT    the same client over UDP (e.g. through qgate to a Bluetooth echo
 *                                           backend); it first probes until an echo comes back (-C)
 *   qgate-l2test addr hciN                  print the adapter's BD address
 *
 * Options (both modes):
 *   -i, --adapter hciN|BDADDR   local adapter (default: any for the server, hci0 for the client)
 *   -t, --transport bredr|le    BR/EDR (default) or LE (BDADDR_LE_PUBLIC, LE credit-based channel)
 *   -p, --psm PSM               default 0x1001 (BR/EDR), 0x0081 (LE)
 *   -c, --cid CID               a fixed channel instead of a PSM (LE: 4 is ATT)
 *   -m, --mtu N                 receive MTU to offer (default 4096)
 *   -s, --security low|medium|high   BT_SECURITY level (default low)
 *   -q, --quiet                 only errors and the summary
 * Server:
 *   -l, --links N               exit after N links have closed (default: serve until SIGTERM/SIGINT)
 *   -r, --ready-file PATH       create PATH once listening
 *   --corrupt N                 flip a byte of the Nth echo on every link (to see a client catch it)
 * Client:
 *   -n, --count N               SDUs to send (default 200)
 *   -w, --window N              SDUs in flight (default 4)
 *   --min N, --max N            SDU sizes, clamped to the link's MTU (default 1 .. 2048)
 *   -T, --timeout SECS          wait this long for any echo (default 10)
 *   -C, --connect-timeout SECS  retry refused connects this long (default 15), for a server still starting
 *   --seed N                    payload seed (default 1)
 *   --no-oversize               skip the check that an SDU over the peer's MTU is refused (EMSGSIZE)
 * Exit status: 0 when everything was echoed intact; 1 on a mismatch, a timeout or an error; 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#include <bluetooth/l2cap.h>

#define L2T_MAX_SDU   65535
#define L2T_MAX_LINKS 64
#define L2T_MAX_WIN   256

struct opts {
	const char *adapter;
	bool le;
	uint16_t psm;
	uint16_t cid;
	uint16_t mtu;
	int sec;
	bool quiet;
	long links;
	const char *ready_file;
	long corrupt;
	long count;
	long window;
	long min_size, max_size;
	double timeout_s;
	double connect_timeout_s;
	uint64_t seed;
	bool oversize;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("qgate-l2test: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "qgate-l2test: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

/* "hciN" or a BD address -> address; -1 when unknown. */
static int adapter_addr(const char *name, bdaddr_t *ba)
{
	if (strncmp(name, "hci", 3) == 0) {
		int id = hci_devid(name);
		if (id < 0 || hci_devba(id, ba) < 0)
			return -1;
		return 0;
	}
	return str2ba(name, ba) < 0 ? -1 : 0;
}

static void sockaddr_fill(struct sockaddr_l2 *sa, const bdaddr_t *ba, const struct opts *o, bool with_port)
{
	memset(sa, 0, sizeof(*sa));
	sa->l2_family = AF_BLUETOOTH;
	bacpy(&sa->l2_bdaddr, ba);
	sa->l2_bdaddr_type = o->le ? BDADDR_LE_PUBLIC : BDADDR_BREDR;
	if (with_port) {
		if (o->cid)
			sa->l2_cid = htobs(o->cid);
		else
			sa->l2_psm = htobs(o->psm);
	}
}

/* A socket bound to the adapter (and, for a server or a fixed channel, to the PSM/CID), with the
 * receive MTU and security level set: accepted links inherit both. */
static int l2_socket(const struct opts *o, const bdaddr_t *local, bool server)
{
	int fd = socket(AF_BLUETOOTH, SOCK_SEQPACKET, BTPROTO_L2CAP);
	if (fd < 0)
		die("socket(AF_BLUETOOTH, L2CAP): %s (no Bluetooth in this kernel?)", strerror(errno));
	struct sockaddr_l2 sa;
	/* A fixed channel is bound on both sides: that is what makes the socket a fixed-channel one. */
	sockaddr_fill(&sa, local, o, server || o->cid);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind: %s", strerror(errno));
	struct bt_security bs = { .level = (uint8_t)o->sec };
	if (setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &bs, sizeof(bs)) < 0)
		die("setsockopt(BT_SECURITY): %s", strerror(errno));
	if (o->le && o->cid) {
		/* LE fixed channels have the kernel's MTU (672): L2CAP_OPTIONS cannot be set on LE. */
	} else if (o->le) {
		uint16_t mtu = o->mtu;
		if (setsockopt(fd, SOL_BLUETOOTH, BT_RCVMTU, &mtu, sizeof(mtu)) < 0)
			die("setsockopt(BT_RCVMTU %u): %s", mtu, strerror(errno));
	} else {
		struct l2cap_options lo;
		socklen_t len = sizeof(lo);
		if (getsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &lo, &len) < 0)
			die("getsockopt(L2CAP_OPTIONS): %s", strerror(errno));
		lo.imtu = o->mtu;
		if (setsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &lo, sizeof(lo)) < 0)
			die("setsockopt(L2CAP_OPTIONS imtu %u): %s", o->mtu, strerror(errno));
	}
	return fd;
}

/* The connected link's MTUs: BT_SNDMTU/BT_RCVMTU on LE credit-based channels, L2CAP_OPTIONS
 * elsewhere (the kernel refuses each on the other kind). */
static void link_mtus(int fd, const struct opts *o, unsigned *omtu, unsigned *imtu)
{
	if (o->le && !o->cid) {
		uint16_t v;
		socklen_t len = sizeof(v);
		if (getsockopt(fd, SOL_BLUETOOTH, BT_SNDMTU, &v, &len) < 0)
			die("getsockopt(BT_SNDMTU): %s", strerror(errno));
		*omtu = v;
		len = sizeof(v);
		if (getsockopt(fd, SOL_BLUETOOTH, BT_RCVMTU, &v, &len) < 0)
			die("getsockopt(BT_RCVMTU): %s", strerror(errno));
		*imtu = v;
	} else {
		struct l2cap_options lo;
		socklen_t len = sizeof(lo);
		if (getsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &lo, &len) < 0) {
			if (!o->le)
				die("getsockopt(L2CAP_OPTIONS): %s", strerror(errno));
			/* LE fixed channels other than ATT do not say: the kernel's default. */
			lo.omtu = lo.imtu = L2CAP_DEFAULT_MTU;
		}
		*omtu = lo.omtu;
		*imtu = lo.imtu;
	}
}

static const char *transport_name(const struct opts *o)
{
	return o->le ? "le" : "bredr";
}

/* ---- server ------------------------------------------------------------------------------------- */

struct link {
	int fd;
	char peer[18];
	uint64_t sdus, bytes;
	unsigned omtu;
};

static int serve(const struct opts *o)
{
	bdaddr_t local;
	if (o->adapter) {
		if (adapter_addr(o->adapter, &local) < 0)
			die("unknown or down adapter %s", o->adapter);
	} else {
		bacpy(&local, BDADDR_ANY);
	}
	int lfd = l2_socket(o, &local, true);
	if (listen(lfd, 8) < 0)
		die("listen: %s", strerror(errno));
	char lstr[18];
	ba2str(&local, lstr);
	printf("server: listening on %s %s %s 0x%04x, mtu %u\n", lstr, transport_name(o),
	       o->cid ? "cid" : "psm", o->cid ? o->cid : o->psm, o->mtu);
	fflush(stdout);
	if (o->ready_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", o->ready_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
		    rename(tmp, o->ready_file) < 0)
			die("ready file %s: %s", o->ready_file, strerror(errno));
	}

	static struct link links[L2T_MAX_LINKS];
	static uint8_t buf[L2T_MAX_SDU + 1];
	int nlinks = 0;
	long closed = 0;
	int errors = 0;
	uint64_t total_sdus = 0, total_bytes = 0;
	while (!stop && (o->links == 0 || closed < o->links)) {
		struct pollfd pfd[L2T_MAX_LINKS + 1];
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < nlinks; i++)
			pfd[i + 1] = (struct pollfd){ .fd = links[i].fd, .events = POLLIN };
		int n = poll(pfd, (nfds_t)nlinks + 1, 500);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN) {
			struct sockaddr_l2 peer;
			socklen_t plen = sizeof(peer);
			int fd = accept(lfd, (struct sockaddr *)&peer, &plen);
			if (fd < 0) {
				fprintf(stderr, "qgate-l2test: accept: %s\n", strerror(errno));
			} else if (nlinks == L2T_MAX_LINKS) {
				fprintf(stderr, "qgate-l2test: too many links, closing the new one\n");
				close(fd);
			} else {
				struct link *l = &links[nlinks++];
				memset(l, 0, sizeof(*l));
				l->fd = fd;
				ba2str(&peer.l2_bdaddr, l->peer);
				unsigned imtu;
				link_mtus(fd, o, &l->omtu, &imtu);
				if (!o->quiet)
					printf("server: link from %s, omtu %u imtu %u\n", l->peer, l->omtu,
					       imtu);
			}
		}
		for (int i = 0; i < nlinks; i++) {
			struct link *l = &links[i];
			if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
			ssize_t r = recvmsg(l->fd, &mh, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			bool done = r <= 0;
			if (r < 0 && errno != ECONNRESET && errno != ENOTCONN) {
				fprintf(stderr, "qgate-l2test: recv from %s: %s\n", l->peer, strerror(errno));
				errors++;
			}
			if (r > 0 && (mh.msg_flags & MSG_TRUNC)) {
				fprintf(stderr, "qgate-l2test: SDU from %s truncated\n", l->peer);
				errors++;
				done = true;
			}
			if (r > 0 && !done) {
				if (o->corrupt && (long)l->sdus + 1 == o->corrupt)
					buf[r / 2] ^= 0x5a;
				/* Blocking send: waits for LE credits / ACL buffers as an echo should. */
				if (send(l->fd, buf, (size_t)r, 0) != r) {
					fprintf(stderr, "qgate-l2test: echo of %zd bytes to %s: %s\n", r,
						l->peer, strerror(errno));
					errors++;
					done = true;
				} else {
					l->sdus++;
					l->bytes += (uint64_t)r;
				}
			}
			if (done) {
				if (!o->quiet)
					printf("server: link from %s closed: %llu SDUs, %llu bytes echoed\n",
					       l->peer, (unsigned long long)l->sdus,
					       (unsigned long long)l->bytes);
				total_sdus += l->sdus;
				total_bytes += l->bytes;
				close(l->fd);
				links[i] = links[--nlinks];
				pfd[i + 1] = pfd[nlinks + 1];
				i--;
				closed++;
			}
		}
		fflush(stdout);
	}
	for (int i = 0; i < nlinks; i++) {
		total_sdus += links[i].sdus;
		total_bytes += links[i].bytes;
		close(links[i].fd);
	}
	close(lfd);
	printf("server: %ld links, %llu SDUs, %llu bytes echoed, %d errors\n", closed,
	       (unsigned long long)total_sdus, (unsigned long long)total_bytes, errors);
	return errors ? 1 : 0;
}

/* ---- client ------------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* SDU number seq: its size and its bytes, both derived from (seed, seq) alone. The first sizes are the
 * edges (1, 2, the MTU and around it), then pseudo-random ones in [min, max]. */
static size_t sdu_size(const struct opts *o, long seq, size_t lo, size_t hi)
{
	const size_t edges[] = { lo, lo + 1, hi, hi - 1, 255, 256, 257, 672, 673 };
	if ((size_t)seq < sizeof(edges) / sizeof(edges[0])) {
		size_t v = edges[seq];
		return v < lo ? lo : v > hi ? hi : v;
	}
	uint64_t s = o->seed * 0x100000001b3ull + (uint64_t)seq;
	return lo + (size_t)(splitmix(&s) % (hi - lo + 1));
}

static void sdu_fill(const struct opts *o, long seq, uint8_t *p, size_t n)
{
	uint64_t s = (o->seed << 32) ^ (uint64_t)seq ^ 0x5bd1e995ull;
	size_t i = 0;
	while (i < n) {
		uint64_t v = splitmix(&s);
		for (int k = 0; k < 8 && i < n; k++, i++)
			p[i] = (uint8_t)(v >> (8 * k));
	}
}

/* Connect with retries until the deadline: the server may still be starting (refused), or the
 * controller busy. Returns the connected socket or -1 (errno of the last try in *last_err). */
static int connect_retry(const struct opts *o, const bdaddr_t *local, const bdaddr_t *remote, int *last_err)
{
	double deadline = now_s() + o->connect_timeout_s;
	int tries = 0;
	for (;;) {
		int fd = l2_socket(o, local, false);
		struct sockaddr_l2 sa;
		sockaddr_fill(&sa, remote, o, true);
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		int err = 0;
		tries++;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			err = errno;
			if (err == EINPROGRESS || err == EAGAIN) {
				double left = deadline - now_s();
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				int n = poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
				if (n == 0) {
					err = ETIMEDOUT;
				} else {
					socklen_t len = sizeof(err);
					if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
						err = errno;
				}
			}
		}
		if (err == 0) {
			fcntl(fd, F_SETFL, fl);
			if (!o->quiet && tries > 1)
				printf("client: connected after %d tries\n", tries);
			return fd;
		}
		close(fd);
		*last_err = err;
		if (now_s() + 0.2 >= deadline || stop)
			return -1;
		usleep(200000);
	}
}

/* ---- udp: the same exchange over a connected UDP socket ------------------------------------------ */

#define L2T_PROBE_LEN 16

/* A connected UDP socket to HOST:PORT ("127.0.0.1:9000", "[::1]:9000"), or -1. */
static int udp_connect(const char *dest)
{
	char host[256];
	const char *colon = strrchr(dest, ':');
	if (!colon || (size_t)(colon - dest) >= sizeof(host))
		return -1;
	size_t hl = (size_t)(colon - dest);
	const char *h = dest;
	if (hl >= 2 && dest[0] == '[' && dest[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return -1;
	int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/*
 * Datagrams may be dropped until the path through the gateway is up (a Bluetooth backend's link still
 * connecting): probe every 200 ms until one is echoed, within the connect timeout. @return 0 or -1.
 */
static int udp_warm_up(const struct opts *o, int fd, const uint8_t *probe)
{
	double deadline = now_s() + o->connect_timeout_s;
	uint8_t rx[L2T_PROBE_LEN + 1];
	int tries = 0;
	while (now_s() < deadline && !stop) {
		double next = now_s() + 0.2;
		tries++;
		/* ECONNREFUSED: nobody listens there yet (the gateway is starting). */
		if (send(fd, probe, L2T_PROBE_LEN, 0) != L2T_PROBE_LEN && errno != ECONNREFUSED)
			return -1;
		for (double left; (left = next - now_s()) > 0;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
				break;
			ssize_t r = recv(fd, rx, sizeof(rx), MSG_DONTWAIT);
			if (r == L2T_PROBE_LEN && memcmp(rx, probe, L2T_PROBE_LEN) == 0) {
				if (!o->quiet)
					printf("client: udp path echoes after %d probe(s)\n", tries);
				return 0;
			}
			if (r < 0 && errno != ECONNREFUSED && errno != EAGAIN)
				return -1;
			if (r < 0 && errno == ECONNREFUSED)
				usleep((useconds_t)(left * 1e6)); /* an error reported: wait out the turn */
		}
	}
	return -1;
}

static int client(const struct opts *o, const char *dest, bool udp)
{
	bdaddr_t local, remote;
	double t0 = now_s();
	int err = 0, fd;
	unsigned omtu, imtu;
	uint8_t probe[L2T_PROBE_LEN];
	const char *what = udp ? "udp" : transport_name(o);

	sdu_fill(o, -2, probe, sizeof(probe));
	if (udp) {
		fd = udp_connect(dest);
		if (fd < 0)
			die("bad or unreachable UDP address %s (expected HOST:PORT)", dest);
		if (udp_warm_up(o, fd, probe) < 0) {
			fprintf(stderr, "qgate-l2test: no echo from %s within %.0fs\n", dest,
				o->connect_timeout_s);
			return 1;
		}
		omtu = imtu = L2T_MAX_SDU;
	} else {
		if (adapter_addr(o->adapter ? o->adapter : "hci0", &local) < 0)
			die("unknown or down adapter %s", o->adapter ? o->adapter : "hci0");
		if (str2ba(dest, &remote) < 0)
			die("bad BD address %s", dest);
		fd = connect_retry(o, &local, &remote, &err);
		if (fd < 0) {
			fprintf(stderr, "qgate-l2test: connect to %s %s %s 0x%04x: %s\n", dest, what,
				o->cid ? "cid" : "psm", o->cid ? o->cid : o->psm, strerror(err));
			return 1;
		}
		link_mtus(fd, o, &omtu, &imtu);
	}
	double t_conn = now_s();
	if (!o->quiet)
		printf("client: connected to %s %s in %.2fs, omtu %u imtu %u\n", dest, what, t_conn - t0,
		       omtu, imtu);
	int tmo_ms = (int)(o->timeout_s * 1000);
	struct timeval tv = { .tv_sec = (time_t)o->timeout_s,
			      .tv_usec = (suseconds_t)((o->timeout_s - (double)(time_t)o->timeout_s) * 1e6) };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	static uint8_t tx[L2T_MAX_SDU + 2], rx[L2T_MAX_SDU + 2], want[L2T_MAX_SDU + 2];
	int failures = 0;

	/* An SDU over the peer's MTU must be refused whole, never truncated or split. */
	if (!udp && o->oversize && omtu < L2T_MAX_SDU) {
		sdu_fill(o, -1, tx, omtu + 1);
		ssize_t r = send(fd, tx, omtu + 1, MSG_DONTWAIT);
		if (r >= 0) {
			fprintf(stderr, "qgate-l2test: an SDU of %u bytes (omtu %u) was accepted (%zd)\n",
				omtu + 1, omtu, r);
			failures++;
		} else if (errno != EMSGSIZE) {
			fprintf(stderr, "qgate-l2test: oversize SDU: %s, want EMSGSIZE\n", strerror(errno));
			failures++;
		} else if (!o->quiet) {
			printf("client: an SDU of %u bytes is refused (EMSGSIZE), as it should be\n",
			       omtu + 1);
		}
	}

	size_t hi = (size_t)o->max_size;
	if (hi > omtu)
		hi = omtu;
	if (hi > imtu)
		hi = imtu;
	size_t lo = (size_t)o->min_size;
	if (lo > hi)
		lo = hi;
	long window = o->window > L2T_MAX_WIN ? L2T_MAX_WIN : o->window;
	double sent_at[L2T_MAX_WIN];
	long sent = 0, got = 0;
	uint64_t bytes = 0;
	double rtt_sum = 0, rtt_max = 0;
	size_t smin = (size_t)-1, smax = 0;
	while (got < o->count && !stop && failures == 0) {
		while (sent < o->count && sent - got < window) {
			size_t n = sdu_size(o, sent, lo, hi);
			sdu_fill(o, sent, tx, n);
			sent_at[sent % L2T_MAX_WIN] = now_s();
			ssize_t r = send(fd, tx, n, 0);
			if (r != (ssize_t)n) {
				fprintf(stderr, "qgate-l2test: send of SDU %ld (%zu bytes): %s\n", sent, n,
					r < 0 ? strerror(errno) : "short");
				failures++;
				break;
			}
			sent++;
		}
		if (failures)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, tmo_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			fprintf(stderr,
				"qgate-l2test: no echo of SDU %ld within %.1fs (%ld sent, %ld echoed)\n", got,
				o->timeout_s, sent, got);
			failures++;
			break;
		}
		struct iovec iov = { .iov_base = rx, .iov_len = sizeof(rx) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t r = recvmsg(fd, &mh, 0);
		if (r <= 0) {
			fprintf(stderr, "qgate-l2test: recv of SDU %ld: %s\n", got,
				r < 0 ? strerror(errno) : "link closed");
			failures++;
			break;
		}
		/* A late echo of a warm-up probe is not an SDU. */
		if (udp && r == L2T_PROBE_LEN && memcmp(rx, probe, L2T_PROBE_LEN) == 0)
			continue;
		double rtt = now_s() - sent_at[got % L2T_MAX_WIN];
		size_t n = sdu_size(o, got, lo, hi);
		sdu_fill(o, got, want, n);
		if ((mh.msg_flags & MSG_TRUNC) || (size_t)r != n || memcmp(rx, want, n) != 0) {
			size_t off = 0;
			while (off < n && off < (size_t)r && rx[off] == want[off])
				off++;
			fprintf(stderr,
				"qgate-l2test: echo of SDU %ld differs: %zd bytes%s, want %zu; "
				"first difference at byte %zu\n",
				got, r, (mh.msg_flags & MSG_TRUNC) ? " (truncated)" : "", n, off);
			failures++;
			break;
		}
		rtt_sum += rtt;
		if (rtt > rtt_max)
			rtt_max = rtt;
		if (n < smin)
			smin = n;
		if (n > smax)
			smax = n;
		bytes += n;
		got++;
	}
	double t1 = now_s();
	close(fd);
	if (stop && got < o->count && failures == 0) {
		fprintf(stderr, "qgate-l2test: interrupted\n");
		failures++;
	}
	printf("client: %s %s: %ld/%ld SDUs echoed intact, %llu bytes each way, sizes %zu..%zu, window %ld, "
	       "rtt avg %.1f ms max %.1f ms, %.2fs: %s\n",
	       dest, what, got, o->count, (unsigned long long)bytes, got ? smin : 0, smax, window,
	       got ? rtt_sum / (double)got * 1e3 : 0.0, rtt_max * 1e3, t1 - t_conn, failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}

/* ---- main --------------------------------------------------------------------------------------- */

static void usage(void)
{
	fputs("usage: qgate-l2test server [-i hciN|BDADDR] [-t bredr|le] [-p PSM|-c CID] [-m MTU]\n"
	      "                           [-s low|medium|high] [-l LINKS] [-r READY_FILE] [--corrupt N] "
	      "[-q]\n"
	      "       qgate-l2test client [-i hciN|BDADDR] [-t bredr|le] [-p PSM|-c CID] [-m MTU]\n"
	      "                           [-s LEVEL] [-n COUNT] [-w WINDOW] [--min N] [--max N]\n"
	      "                           [-T SECS] [-C SECS] [--seed N] [--no-oversize] [-q] BDADDR\n"
	      "       qgate-l2test udp [-n COUNT] [-w WINDOW] [--min N] [--max N] [-T SECS] [-C SECS]\n"
	      "                        [--seed N] [-q] HOST:PORT\n"
	      "       qgate-l2test addr hciN\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	if (strcmp(mode, "addr") == 0) {
		bdaddr_t ba;
		char s[18];
		if (argc != 3)
			usage();
		if (adapter_addr(argv[2], &ba) < 0)
			die("unknown or down adapter %s", argv[2]);
		ba2str(&ba, s);
		printf("%s\n", s);
		return 0;
	}
	bool is_server = strcmp(mode, "server") == 0;
	bool is_udp = strcmp(mode, "udp") == 0;
	if (!is_server && !is_udp && strcmp(mode, "client") != 0)
		usage();

	struct opts o = { .mtu = 4096,
			  .sec = BT_SECURITY_LOW,
			  .count = 200,
			  .window = 4,
			  .min_size = 1,
			  .max_size = 2048,
			  .timeout_s = 10,
			  .connect_timeout_s = 15,
			  .seed = 1,
			  .oversize = true };
	long psm = -1;
	enum {
		OPT_MIN = 256,
		OPT_MAX,
		OPT_SEED,
		OPT_NO_OVERSIZE,
		OPT_CORRUPT
	};
	static const struct option lopts[] = {
		{ "adapter", required_argument, 0, 'i' },
		{ "transport", required_argument, 0, 't' },
		{ "psm", required_argument, 0, 'p' },
		{ "cid", required_argument, 0, 'c' },
		{ "mtu", required_argument, 0, 'm' },
		{ "security", required_argument, 0, 's' },
		{ "quiet", no_argument, 0, 'q' },
		{ "links", required_argument, 0, 'l' },
		{ "ready-file", required_argument, 0, 'r' },
		{ "count", required_argument, 0, 'n' },
		{ "window", required_argument, 0, 'w' },
		{ "min", required_argument, 0, OPT_MIN },
		{ "max", required_argument, 0, OPT_MAX },
		{ "timeout", required_argument, 0, 'T' },
		{ "connect-timeout", required_argument, 0, 'C' },
		{ "seed", required_argument, 0, OPT_SEED },
		{ "no-oversize", no_argument, 0, OPT_NO_OVERSIZE },
		{ "corrupt", required_argument, 0, OPT_CORRUPT },
		{ 0, 0, 0, 0 },
	};
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "i:t:p:c:m:s:ql:r:n:w:T:C:", lopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.adapter = optarg;
			break;
		case 't':
			if (strcmp(optarg, "le") == 0)
				o.le = true;
			else if (strcmp(optarg, "bredr") == 0)
				o.le = false;
			else
				usage();
			break;
		case 'p':
			psm = parse_num(optarg, 1, 0xffff, "PSM");
			break;
		case 'c':
			o.cid = (uint16_t)parse_num(optarg, 1, 0xffff, "CID");
			break;
		case 'm':
			o.mtu = (uint16_t)parse_num(optarg, 23, 0xffff, "MTU");
			break;
		case 's':
			if (strcmp(optarg, "low") == 0)
				o.sec = BT_SECURITY_LOW;
			else if (strcmp(optarg, "medium") == 0)
				o.sec = BT_SECURITY_MEDIUM;
			else if (strcmp(optarg, "high") == 0)
				o.sec = BT_SECURITY_HIGH;
			else
				usage();
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'l':
			o.links = parse_num(optarg, 0, 1000000, "link count");
			break;
		case 'r':
			o.ready_file = optarg;
			break;
		case 'n':
			o.count = parse_num(optarg, 1, 100000000, "count");
			break;
		case 'w':
			o.window = parse_num(optarg, 1, L2T_MAX_WIN, "window");
			break;
		case OPT_MIN:
			o.min_size = parse_num(optarg, 1, L2T_MAX_SDU, "min size");
			break;
		case OPT_MAX:
			o.max_size = parse_num(optarg, 1, L2T_MAX_SDU, "max size");
			break;
		case 'T':
			o.timeout_s = (double)parse_num(optarg, 1, 3600, "timeout");
			break;
		case 'C':
			o.connect_timeout_s = (double)parse_num(optarg, 0, 3600, "connect timeout");
			break;
		case OPT_SEED:
			o.seed = (uint64_t)parse_num(optarg, 0, 0x7fffffff, "seed");
			break;
		case OPT_NO_OVERSIZE:
			o.oversize = false;
			break;
		case OPT_CORRUPT:
			o.corrupt = parse_num(optarg, 1, 100000000, "SDU number");
			break;
		default:
			usage();
		}
	}
	if (o.cid && psm >= 0) {
		fprintf(stderr, "qgate-l2test: --psm and --cid exclude each other\n");
		return 2;
	}
	o.psm = (uint16_t)(psm >= 0 ? psm : o.le ? 0x0081 : 0x1001);
	if (o.min_size > o.max_size) {
		fprintf(stderr, "qgate-l2test: --min over --max\n");
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (is_server) {
		if (optind != argc)
			usage();
		return serve(&o);
	}
	if (optind != argc - 1)
		usage();
	return client(&o, argv[optind], is_udp);
}
