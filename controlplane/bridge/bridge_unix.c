/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AF_UNIX SOCK_SEQPACKET stand-in for L2CAP (bridge.h): the same message
 * semantics (one send is one message, MSG_TRUNC on a short buffer, 0 with a
 * hang-up at the end) on machines without Bluetooth. Addresses map onto
 * abstract socket names under a prefix:
 *   a bridge's listener    PREFIX/listen/ADAPTER/TRANSPORT/PSM
 *   a dialing device       PREFIX/peer/BDADDR/N   (accept reads BDADDR back)
 *   a backend device       PREFIX/dev/BDADDR/TRANSPORT/PSM
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qgate/bridge.h"

#define DEFAULT_MTU 672

static unsigned dial_seq; /* makes each dialing device's name unique */

static socklen_t make_name(struct sockaddr_un *sun, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static socklen_t make_name(struct sockaddr_un *sun, const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	va_start(ap, fmt);
	/* sun_path[0] = 0: the abstract namespace, nothing left on disk. */
	n = vsnprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		return 0;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static const char *transport_name(int le)
{
	return le ? "le" : "bredr";
}

static void bdaddr_text(const uint8_t a[6], char *buf, size_t size)
{
	snprintf(buf, size, "%02X:%02X:%02X:%02X:%02X:%02X", a[0], a[1], a[2], a[3], a[4], a[5]);
}

static socklen_t listener_name(const struct qg_bridge_unix *u, const struct qg_config_bridge *br,
			       struct sockaddr_un *sun)
{
	return make_name(sun, "%s/listen/%s/%s/%u", u->prefix, br->adapter,
			 transport_name(br->transport == QG_CONFIG_BT_LE), br->psm);
}

static socklen_t device_name(const struct qg_bridge_unix *u, const struct qg_config_path *p,
			     struct sockaddr_un *sun)
{
	char a[24];

	bdaddr_text(p->bdaddr, a, sizeof(a));
	return make_name(sun, "%s/dev/%s/%s/%u", u->prefix, a,
			 transport_name(p->kind == QG_CONFIG_PATH_BT_LE), p->psm);
}

static int sock(int nonblock)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

	return fd < 0 ? -errno : fd;
}

static int bind_listen(int nonblock, const struct sockaddr_un *sun, socklen_t len)
{
	int fd, rc;

	if (!len)
		return -ENAMETOOLONG;
	fd = sock(nonblock);
	if (fd < 0)
		return fd;
	if (bind(fd, (const struct sockaddr *)sun, len) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static int u_listen(void *ctx, const struct qg_config_bridge *br, uint32_t imtu)
{
	struct sockaddr_un sun;

	(void)imtu;
	return bind_listen(1, &sun, listener_name(ctx, br, &sun));
}

static int parse_hex2(const char *s)
{
	int v = 0;

	for (int i = 0; i < 2; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A test's small send buffer, so that a link fills up while its device does not read. */
static void set_sndbuf(const struct qg_bridge_unix *u, int fd)
{
	int v = (int)u->sndbuf;

	if (u->sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static int u_accept(void *ctx, int lfd, uint8_t peer[6])
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	const char *p;
	int fd;

	memset(&sun, 0, sizeof(sun));
	fd = accept4(lfd, (struct sockaddr *)&sun, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	set_sndbuf(ctx, fd);
	memset(peer, 0, 6);
	/* The dialer bound PREFIX/peer/BDADDR/N: that is the device address. */
	p = len > offsetof(struct sockaddr_un, sun_path) + 1
		    ? memmem(sun.sun_path + 1, len - offsetof(struct sockaddr_un, sun_path) - 1, "/peer/", 6)
		    : NULL;
	if (p && (size_t)(p + 6 + 17 - sun.sun_path) <= sizeof(sun.sun_path)) {
		for (int i = 0; i < 6; i++) {
			int v = parse_hex2(p + 6 + i * 3);

			peer[i] = v < 0 ? 0 : (uint8_t)v;
		}
	}
	return fd;
}

static int u_connect(void *ctx, const struct qg_config_path *to, const struct qg_config_bridge *via,
		     uint32_t imtu)
{
	struct sockaddr_un sun;
	socklen_t len = device_name(ctx, to, &sun);
	int fd, rc;

	(void)via;
	(void)imtu;
	if (!len)
		return -ENAMETOOLONG;
	fd = sock(1);
	if (fd < 0)
		return fd;
	set_sndbuf(ctx, fd);
	if (connect(fd, (struct sockaddr *)&sun, len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static int u_mtu(void *ctx, int fd, uint32_t *imtu, uint32_t *omtu)
{
	const struct qg_bridge_unix *u = ctx;

	(void)fd;
	*imtu = u->imtu ? u->imtu : DEFAULT_MTU;
	*omtu = u->omtu ? u->omtu : DEFAULT_MTU;
	return 0;
}

const struct qg_bridge_sock_ops qg_bridge_unix_ops = {
	.listen = u_listen,
	.accept = u_accept,
	.connect = u_connect,
	.mtu = u_mtu,
};

int qg_bridge_unix_dial(const struct qg_bridge_unix *u, const struct qg_config_bridge *br,
			const uint8_t bdaddr[6])
{
	struct sockaddr_un me, lis;
	socklen_t me_len, lis_len;
	char a[24];
	int fd, rc;

	if (!u || !br || !bdaddr)
		return -EINVAL;
	bdaddr_text(bdaddr, a, sizeof(a));
	me_len = make_name(&me, "%s/peer/%s/%u", u->prefix, a,
			   __atomic_fetch_add(&dial_seq, 1, __ATOMIC_RELAXED));
	lis_len = listener_name(u, br, &lis);
	if (!me_len || !lis_len)
		return -ENAMETOOLONG;
	fd = sock(0);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&me, me_len) < 0 ||
	    connect(fd, (struct sockaddr *)&lis, lis_len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int qg_bridge_unix_serve(const struct qg_bridge_unix *u, const struct qg_config_path *p)
{
	struct sockaddr_un sun;

	if (!u || !p)
		return -EINVAL;
	return bind_listen(0, &sun, device_name(u, p, &sun));
}
