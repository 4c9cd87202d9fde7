/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel exception path of a DPDK port (ports[].kernel_tap): a TAP
 * interface, made with DPDK's net_tap PMD, that carries the port's MAC and
 * addresses. Frames qgate does not own (TCP, ICMP, LLDP, UDP to no service or
 * NAT port, ARP replies and neighbour advertisements) go to the kernel through
 * it, so the host's own stack (ssh, ping, a routing daemon) keeps working on a
 * port DPDK has taken; what the kernel sends on it leaves through the port.
 * One queue pair per worker, like the port: no worker shares a queue.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include "dpdk_port.h"
#include "qgate/log.h"

#define TAP_DESC 512

/* The kernel's struct in6_ifreq (linux/ipv6.h, which clashes with netinet/in.h). */
struct tap_in6_ifreq {
	struct in6_addr addr;
	uint32_t prefixlen;
	int ifindex;
};

static int tap_addr4(int fd, const char *ifname, const struct qg_config_prefix *pf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	memcpy(&sin.sin_addr, pf->addr.ip, 4);
	memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return -errno;
	sin.sin_addr.s_addr = pf->len ? htonl(~0u << (32 - pf->len)) : 0;
	memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
	return ioctl(fd, SIOCSIFNETMASK, &ifr) < 0 ? -errno : 0;
}

static int tap_addr6(int fd, unsigned ifindex, const struct qg_config_prefix *pf)
{
	struct tap_in6_ifreq r = { .prefixlen = pf->len, .ifindex = (int)ifindex };

	memcpy(&r.addr, pf->addr.ip, 16);
	return ioctl(fd, SIOCSIFADDR, &r) < 0 && errno != EEXIST ? -errno : 0;
}

/* The port's addresses on the kernel interface, and the interface up. */
static int tap_kernel_side(const struct qg_config_dpdk_port *c)
{
	unsigned ifindex = if_nametoindex(c->kernel_tap);
	int fd4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	int rc = 0;

	if (!ifindex || fd4 < 0) {
		rc = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < c->n_addresses && !rc; i++) {
		const struct qg_config_prefix *pf = &c->addresses[i];

		if (pf->addr.family == AF_INET)
			rc = tap_addr4(fd4, c->kernel_tap, pf);
		else if (fd6 >= 0)
			rc = tap_addr6(fd6, ifindex, pf);
		else
			QG_LOG_WARN("dpdk: %s: no IPv6 here, its IPv6 addresses are left out", c->kernel_tap);
	}
	if (rc)
		goto out;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->kernel_tap);
	if (ioctl(fd4, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd4, SIOCSIFFLAGS, &ifr) < 0))
		rc = -errno;
out:
	if (fd4 >= 0)
		close(fd4);
	if (fd6 >= 0)
		close(fd6);
	return rc;
}

int qg_dpdk_tap_create(unsigned p)
{
	struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	const struct qg_config_dpdk_port *c = dp->cfg;
	uint16_t nw = (uint16_t)qg_dpdk.n_workers, nrx = TAP_DESC, ntx = TAP_DESC;
	struct rte_eth_conf conf;
	char vdev[32], devargs[64];
	int rc;

	snprintf(vdev, sizeof(vdev), "net_tap_qgate%u", p);
	snprintf(devargs, sizeof(devargs), "%s,iface=%s", vdev, c->kernel_tap);
	rc = rte_dev_probe(devargs);
	if (rc) {
		QG_LOG_ERR("dpdk: port %s: cannot create kernel_tap %s: %s (is /dev/net/tun there, and the "
			   "name free?)",
			   c->name, c->kernel_tap, rte_strerror(rc < 0 ? -rc : rc));
		return rc < 0 ? rc : -EIO;
	}
	dp->has_tap = 1;
	qg_dpdk.n_taps++;
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_get_port_by_name(vdev, &dp->tap_id);
	if (!rc)
		rc = rte_eth_dev_configure(dp->tap_id, nw, nw, &conf);
	if (!rc)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(dp->tap_id, &nrx, &ntx);
	for (uint16_t q = 0; q < nw && !rc; q++) {
		rc = rte_eth_rx_queue_setup(dp->tap_id, q, nrx, SOCKET_ID_ANY, NULL, qg_dpdk.pools[q]);
		if (!rc)
			rc = rte_eth_tx_queue_setup(dp->tap_id, q, ntx, SOCKET_ID_ANY, NULL);
	}
	/* The port's MAC: the kernel's frames leave through the port as the port's own. */
	if (!rc)
		rc = rte_eth_dev_default_mac_addr_set(dp->tap_id, &dp->mac);
	if (!rc)
		rc = rte_eth_dev_start(dp->tap_id);
	if (rc) {
		QG_LOG_ERR("dpdk: port %s: cannot set up kernel_tap %s: %s", c->name, c->kernel_tap,
			   rte_strerror(rc < 0 ? -rc : rc));
		return rc < 0 ? rc : -EIO;
	}
	rc = tap_kernel_side(c);
	if (rc) {
		QG_LOG_ERR("dpdk: port %s: cannot give kernel_tap %s the port's addresses: %s", c->name,
			   c->kernel_tap, strerror(-rc));
		return rc;
	}
	QG_LOG_INFO("dpdk: port %s: traffic qgate does not own goes to the kernel on %s (%u queue(s))",
		    c->name, c->kernel_tap, nw);
	return 0;
}

void qg_dpdk_tap_close(unsigned p)
{
	struct qg_dpdk_port *dp = &qg_dpdk.ports[p];

	if (!dp->has_tap)
		return;
	/* Closing the device removes the interface (it is not persistent). */
	(void)rte_eth_dev_stop(dp->tap_id);
	(void)rte_eth_dev_close(dp->tap_id);
	dp->has_tap = 0;
	qg_dpdk.n_taps--;
}
