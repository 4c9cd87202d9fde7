/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bridge's real socket layer: BlueZ L2CAP SOCK_SEQPACKET sockets (the
 * kernel's, no bluetoothd involved; the BlueZ headers only give the ABI).
 * BR/EDR channels and LE credit-based channels differ in the address type
 * and in how the MTUs are set and read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/l2cap.h>

#include "qgate/bridge.h"

/* A BDADDR in written order ("AA:..." first) into the kernel's order (least significant octet first). */
static void to_kernel(const uint8_t a[6], bdaddr_t *out)
{
	for (int i = 0; i < 6; i++)
		out->b[i] = a[5 - i];
}

static void from_kernel(const bdaddr_t *a, uint8_t out[6])
{
	for (int i = 0; i < 6; i++)
		out[i] = a->b[5 - i];
}

static int parse_bdaddr(const char *s, uint8_t out[6])
{
	unsigned v[6];

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)v[i];
	return 0;
}

/* The adapter's own address: bind() takes an address, the configuration names hciN. */
static int adapter_addr(const char *adapter, bdaddr_t *out)
{
	struct hci_dev_info di;
	uint8_t a[6];
	int fd, rc = 0;

	if (!adapter || !adapter[0]) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (!parse_bdaddr(adapter, a)) {
		to_kernel(a, out);
		return 0;
	}
	if (strncmp(adapter, "hci", 3))
		return -ENODEV;
	memset(&di, 0, sizeof(di));
	di.dev_id = (uint16_t)strtoul(adapter + 3, NULL, 10);
	fd = socket(AF_BLUETOOTH, SOCK_RAW | SOCK_CLOEXEC, BTPROTO_HCI);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, HCIGETDEVINFO, &di) < 0)
		rc = -errno;
	else
		bacpy(out, &di.bdaddr);
	close(fd);
	return rc;
}

/* The security level: before connect/listen, so the channel is set up with it. */
static int l2_socket(int security)
{
	struct bt_security sec = { .level = (uint8_t)security };
	int fd, rc;

	fd = socket(AF_BLUETOOTH, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, BTPROTO_L2CAP);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec, sizeof(sec)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * The receive MTU, after bind (the kernel tells LE from BR/EDR by the bound
 * address type and refuses the other family's option) and before
 * connect/listen (it is negotiated when the channel opens).
 */
static int l2_set_imtu(int fd, int le, uint32_t imtu)
{
	if (imtu > 65535)
		imtu = 65535;
	if (le) {
		uint16_t mtu = (uint16_t)imtu;

		if (setsockopt(fd, SOL_BLUETOOTH, BT_RCVMTU, &mtu, sizeof(mtu)) < 0)
			return -errno;
	} else {
		struct l2cap_options o;
		socklen_t len = sizeof(o);

		memset(&o, 0, sizeof(o));
		if (getsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &o, &len) < 0)
			return -errno;
		o.imtu = (uint16_t)imtu;
		if (setsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &o, sizeof(o)) < 0)
			return -errno;
	}
	return 0;
}

static int l2_bind(int fd, const char *adapter, int le, uint16_t psm)
{
	struct sockaddr_l2 sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.l2_family = AF_BLUETOOTH;
	sa.l2_psm = htobs(psm);
	sa.l2_bdaddr_type = le ? BDADDR_LE_PUBLIC : BDADDR_BREDR;
	rc = adapter_addr(adapter, &sa.l2_bdaddr);
	if (rc)
		return rc;
	return bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

static int l2_listen(void *ctx, const struct qg_config_bridge *br, uint32_t imtu)
{
	int le = br->transport == QG_CONFIG_BT_LE;
	int fd, rc;

	(void)ctx;
	fd = l2_socket(br->security);
	if (fd < 0)
		return fd;
	rc = l2_bind(fd, br->adapter, le, br->psm);
	if (!rc)
		rc = l2_set_imtu(fd, le, imtu);
	if (!rc && listen(fd, 8) < 0)
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

static int l2_accept(void *ctx, int lfd, uint8_t peer[6])
{
	struct sockaddr_l2 sa;
	socklen_t len = sizeof(sa);
	int fd;

	(void)ctx;
	memset(&sa, 0, sizeof(sa));
	fd = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	from_kernel(&sa.l2_bdaddr, peer);
	return fd;
}

static int l2_connect(void *ctx, const struct qg_config_path *to, const struct qg_config_bridge *via,
		      uint32_t imtu)
{
	int le = to->kind == QG_CONFIG_PATH_BT_LE;
	struct sockaddr_l2 sa;
	int fd, rc;

	(void)ctx;
	fd = l2_socket(via ? (int)via->security : QG_CONFIG_BT_SEC_MEDIUM);
	if (fd < 0)
		return fd;
	rc = l2_bind(fd, via ? via->adapter : NULL, le, 0);
	if (!rc)
		rc = l2_set_imtu(fd, le, imtu);
	if (rc)
		goto err;
	memset(&sa, 0, sizeof(sa));
	sa.l2_family = AF_BLUETOOTH;
	sa.l2_psm = htobs(to->psm);
	sa.l2_bdaddr_type = le ? BDADDR_LE_PUBLIC : BDADDR_BREDR;
	to_kernel(to->bdaddr, &sa.l2_bdaddr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS && errno != EAGAIN) {
		rc = -errno;
		goto err;
	}
	return fd;
err:
	close(fd);
	return rc;
}

static int l2_mtu(void *ctx, int fd, uint32_t *imtu, uint32_t *omtu)
{
	struct sockaddr_l2 sa;
	socklen_t len = sizeof(sa);

	(void)ctx;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (sa.l2_bdaddr_type != BDADDR_BREDR) {
		uint16_t rx = 0, tx = 0;
		socklen_t l1 = sizeof(rx), l2 = sizeof(tx);

		if (getsockopt(fd, SOL_BLUETOOTH, BT_RCVMTU, &rx, &l1) < 0 ||
		    getsockopt(fd, SOL_BLUETOOTH, BT_SNDMTU, &tx, &l2) < 0)
			return -errno;
		*imtu = rx;
		*omtu = tx;
	} else {
		struct l2cap_options o;
		socklen_t l = sizeof(o);

		if (getsockopt(fd, SOL_L2CAP, L2CAP_OPTIONS, &o, &l) < 0)
			return -errno;
		*imtu = o.imtu;
		*omtu = o.omtu;
	}
	return 0;
}

const struct qg_bridge_sock_ops qg_bridge_l2cap_ops = {
	.listen = l2_listen,
	.accept = l2_accept,
	.connect = l2_connect,
	.mtu = l2_mtu,
};
