/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_sock.h"
#include "qgate/config.h"
#include "qgate/io.h"
#include "qgate/log.h"

/* Large socket buffers absorb bursts between two polls; forced as root, else capped by rmem_max. */
#define QG_IO_SOCKBUF (8 << 20)

static void set_bufsize(int fd, int opt_force, int opt, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

void qg_io_sock_rcvbuf(int fd, int bytes)
{
	set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF, bytes);
}

int qg_io_sock_listen(const struct qg_addr *listen, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t len = qg_addr_to_sockaddr(listen, &ss);
	char text[QG_ADDR_STRLEN];
	int one = 1, fd, rc;

	fd = socket(listen->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto err;
	if (listen->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto err;
	set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF, QG_IO_SOCKBUF);
	set_bufsize(fd, SO_SNDBUFFORCE, SO_SNDBUF, QG_IO_SOCKBUF);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto err;
	*fd_out = fd;
	return 0;
err:
	rc = -errno;
	QG_LOG_ERR("cannot listen on %s: %s", qg_addr_format(listen, text, sizeof(text)), strerror(-rc));
	close(fd);
	return rc;
}

const struct qg_io_ops *qg_io_select(int kind)
{
	char why[160];
	int rc;

	switch (kind) {
	case QG_CONFIG_IO_URING:
		rc = qg_io_uring_ops.probe(why, sizeof(why));
		if (rc == 0)
			return &qg_io_uring_ops;
		QG_LOG_WARN("io_uring unavailable (%s): falling back to recvmmsg/sendmmsg", why);
		return &qg_io_recvmmsg_ops;
	case QG_CONFIG_IO_RECVMMSG:
		return &qg_io_recvmmsg_ops;
#ifdef QGATE_HAVE_DPDK
	case QG_CONFIG_IO_DPDK:
		return &qg_io_dpdk_ops;
#endif
	default:
		return NULL;
	}
}
