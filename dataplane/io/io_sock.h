/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the socket I/O backends. */
#ifndef QG_IO_SOCK_H
#define QG_IO_SOCK_H

#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "qgate/addr.h"
#include "qgate/io.h"

/*
 * UDP GSO: consecutive datagrams of one flow in a burst leave in one send
 * (UDP_SEGMENT), which the kernel splits back into the same datagrams. Only
 * sizes that fit any IPv6 path (1280 minus headers) are batched, so no path
 * MTU can make the batched send fail where single sends would pass.
 */
#define QG_IO_GSO_MAX_SEG  1200u
#define QG_IO_GSO_MAX_SEGS 64u
#define QG_IO_GSO_MAX_LEN  65000u

/**
 * Length of the run starting at p[0] that one GSO send can carry: the same
 * destination (the same upstream, or the same service and client), equal
 * sizes except a shorter last one. 1 means "send it alone".
 */
static inline unsigned qg_io_gso_run(const struct qg_pkt *p, unsigned n, int to_client)
{
	uint32_t seg = p[0].len, total = p[0].len;
	unsigned i;

	if (seg == 0 || seg > QG_IO_GSO_MAX_SEG)
		return 1;
	for (i = 1; i < n && i < QG_IO_GSO_MAX_SEGS; i++) {
		if (to_client ? (p[i].svc != p[0].svc || !qg_addr_equal(&p[i].peer, &p[0].peer))
			      : p[i].upstream != p[0].upstream)
			break;
		if (p[i].len > seg || p[i].len == 0 || total + p[i].len > QG_IO_GSO_MAX_LEN)
			break;
		total += p[i].len;
		if (p[i].len < seg) {
			i++; /* a shorter datagram can only end the run */
			break;
		}
	}
	return i;
}

/**
 * Open the SO_REUSEPORT socket of one service for one worker, bound to
 * listen, non-blocking, with large socket buffers. 0 and *fd, or -errno
 * (logged with the address).
 */
int qg_io_sock_listen(const struct qg_addr *listen, int *fd);

/**
 * Upstream sockets' receive buffer: a backend answering a batch at once
 * must not overflow it before the worker's next poll. Only a limit: memory
 * is used only while datagrams wait.
 */
#define QG_IO_UPSTREAM_RCVBUF (2 << 20)

/** Set a socket's receive buffer (forced past rmem_max when privileged). */
void qg_io_sock_rcvbuf(int fd, int bytes);

/** Control buffer of one GSO send. */
union qg_io_gso_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/** Attach UDP_SEGMENT (segment size seg) to h, using cm as its control buffer. */
static inline void qg_io_gso_attach(struct msghdr *h, union qg_io_gso_cmsg *cm, uint16_t seg)
{
	struct cmsghdr *c;

	h->msg_control = cm->buf;
	h->msg_controllen = sizeof(cm->buf);
	c = CMSG_FIRSTHDR(h);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	memcpy(CMSG_DATA(c), &seg, sizeof(seg));
}

/** Round a buffer stride for payloads of max_datagram plus a header of hdr bytes up to a cache line. */
static inline uint32_t qg_io_stride(uint32_t max_datagram, uint32_t hdr)
{
	return (max_datagram + hdr + 63u) & ~63u;
}

#endif /* QG_IO_SOCK_H */
