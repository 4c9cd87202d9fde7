/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flood: a flow flood on loopback for perf/faults.sh. Sends N UDP datagrams,
 * each from its own source address and port (127.S.x.y:port, all of 127/8
 * is local), through a raw IPv4 socket (root or CAP_NET_RAW), so N can be
 * millions without a socket per flow. Optionally each datagram is a 1200-byte
 * QUIC Initial-like long header with its own 8-byte DCID. Paced to --rate
 * (0 = as fast as the socket takes them). Built by perf/faults.sh with cc; not
 * part of the CMake build or CI.
 *
 *   flood --target 127.0.0.1:4433 --count 2000000 --rate 100000 [--quic] [--size B]
 *         [--net S] [--first-port P] [--ports-per-ip K] [--salt X]
 *
 * Prints one JSON line: {"sent":N,"failed":F,"duration_s":D,"pps":R}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH  64
#define MAXPKT 1500

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr, "usage: flood --target A.B.C.D:PORT --count N [--rate PPS] [--quic] [--size BYTES]\n"
			"             [--net S (source 127.S.x.y, default 200)] [--first-port P (1024)]\n"
			"             [--ports-per-ip K (60000)] [--salt X]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", required_argument, 0, 't' },     { "count", required_argument, 0, 'n' },
		{ "rate", required_argument, 0, 'r' },	     { "quic", no_argument, 0, 'q' },
		{ "size", required_argument, 0, 's' },	     { "net", required_argument, 0, 'N' },
		{ "first-port", required_argument, 0, 'p' }, { "ports-per-ip", required_argument, 0, 'k' },
		{ "salt", required_argument, 0, 'x' },	     { 0, 0, 0, 0 },
	};
	static uint8_t pkts[BATCH][MAXPKT];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	uint64_t count = 0, rate = 0, sent = 0, failed = 0, t0, salt = 0x9e3779b97f4a7c15ULL;
	unsigned size = 0, net = 200, first_port = 1024, per_ip = 60000;
	int quic = 0, c, fd, one = 1;
	char host[64];
	char *colon;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			snprintf(host, sizeof(host), "%s", optarg);
			colon = strrchr(host, ':');
			if (!colon)
				return usage();
			*colon = '\0';
			if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
				return usage();
			dst.sin_port = htons((uint16_t)atoi(colon + 1));
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			rate = strtoull(optarg, NULL, 10);
			break;
		case 'q':
			quic = 1;
			break;
		case 's':
			size = (unsigned)atoi(optarg);
			break;
		case 'N':
			net = (unsigned)atoi(optarg);
			break;
		case 'p':
			first_port = (unsigned)atoi(optarg);
			break;
		case 'k':
			per_ip = (unsigned)atoi(optarg);
			break;
		case 'x':
			salt = strtoull(optarg, NULL, 0);
			break;
		default:
			return usage();
		}
	}
	if (!dst.sin_port || !count || net > 255 || !per_ip || first_port + per_ip > 65536)
		return usage();
	if (!size)
		size = quic ? 1200 : 64;
	if (size < (quic ? 40u : 16u) || size > MAXPKT - 28)
		return usage();
	if (count > (uint64_t)per_ip * 65536)
		return usage();

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		perror("flood: raw socket (needs root or CAP_NET_RAW)");
		return 1;
	}
	setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
	for (int i = 0; i < BATCH; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		iov[i].iov_base = pkts[i];
		iov[i].iov_len = 28 + size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
		memset(pkts[i], 0, sizeof(pkts[i]));
	}

	t0 = now_ns();
	while (sent + failed < count) {
		unsigned n = BATCH;
		int r;

		if (count - sent - failed < n)
			n = (unsigned)(count - sent - failed);
		if (rate) {
			uint64_t due = (uint64_t)((double)(now_ns() - t0) * (double)rate / 1e9);
			uint64_t done = sent + failed;

			if (due <= done) {
				struct timespec ts = { 0, 100000 };

				nanosleep(&ts, NULL);
				continue;
			}
			if (due - done < n)
				n = (unsigned)(due - done);
		}
		for (unsigned i = 0; i < n; i++) {
			uint64_t k = sent + failed + i;
			uint32_t ipn = (uint32_t)(k / per_ip);
			uint16_t port = (uint16_t)(first_port + k % per_ip);
			uint8_t *p = pkts[i];
			struct iphdr *ip = (struct iphdr *)p;
			struct udphdr *u = (struct udphdr *)(p + 20);
			uint8_t *d = p + 28;
			uint64_t cid = k ^ salt;

			ip->version = 4;
			ip->ihl = 5;
			ip->ttl = 64;
			ip->protocol = IPPROTO_UDP;
			ip->saddr = htonl((127u << 24) | (net << 16) | (ipn & 0xffff));
			ip->daddr = dst.sin_addr.s_addr;
			ip->tot_len = htons((uint16_t)(28 + size));
			u->source = htons(port);
			u->dest = dst.sin_port;
			u->len = htons((uint16_t)(8 + size));
			u->check = 0; /* IPv4: no checksum */
			if (quic) {
				unsigned len =
					size - 7 - 9 - 9 - 1 - 2; /* Length covers the pn and the rest */

				d[0] = 0xc0;				/* long header, Initial, 1-byte pn */
				d[1] = 0, d[2] = 0, d[3] = 0, d[4] = 1; /* version 1 */
				d[5] = 8;
				memcpy(d + 6, &cid, 8);
				d[14] = 8;
				memcpy(d + 15, &k, 8);
				d[23] = 0; /* token length */
				d[24] = (uint8_t)(0x40 | (len >> 8));
				d[25] = (uint8_t)len;
				d[26] = 0; /* packet number */
			} else {
				memcpy(d, "QGFL", 4);
				memcpy(d + 4, &k, 8);
			}
		}
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS || errno == EAGAIN) {
				failed++;
				continue;
			}
			perror("flood: sendmmsg");
			return 1;
		}
		sent += (uint64_t)r;
		if ((unsigned)r < n)
			failed++; /* the next one was refused; skipped so the count stays exact */
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("{\"sent\":%llu,\"failed\":%llu,\"duration_s\":%.3f,\"pps\":%.0f}\n", (unsigned long long)sent,
	       (unsigned long long)failed, secs, secs > 0 ? (double)sent / secs : 0.0);
	close(fd);
	return 0;
}
