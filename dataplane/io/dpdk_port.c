/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK backend, process-wide part: the EAL, ports with one RX and one TX
 * queue per worker, one mbuf pool per worker, the handover rings, the NAT
 * address list and the shared neighbour table. Built once on the control
 * thread before any worker exists, read-only afterwards.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dpdk_port.h"
#include "qgate/log.h"

#define NEIGH_CAPACITY 4096
#define MC_MAX	       64 /* solicited-node groups filtered exactly; beyond, all multicast */

struct qg_dpdk qg_dpdk;

static int ip_equal(const struct qg_addr *a, const struct qg_addr *b)
{
	return a->family == b->family && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

static int prefix_covers(const struct qg_config_prefix *p, const struct qg_addr *ip)
{
	uint32_t full = p->len / 8, rest = p->len % 8;

	if (p->addr.family != ip->family || memcmp(p->addr.ip, ip->ip, full))
		return 0;
	return rest == 0 || ((p->addr.ip[full] ^ ip->ip[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int qg_dpdk_route(const struct qg_addr *dst, unsigned *port, struct qg_addr *nexthop)
{
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++) {
		const struct qg_config_dpdk_port *c = qg_dpdk.ports[p].cfg;

		for (uint32_t i = 0; i < c->n_addresses; i++) {
			if (prefix_covers(&c->addresses[i], dst)) {
				*port = p;
				*nexthop = *dst;
				nexthop->port = 0;
				return 0;
			}
		}
	}
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++) {
		const struct qg_addr *gw =
			dst->family == AF_INET ? &qg_dpdk.ports[p].gw4 : &qg_dpdk.ports[p].gw6;

		if (gw->family) {
			*port = p;
			*nexthop = *gw;
			return 0;
		}
	}
	return -ENETUNREACH;
}

int qg_dpdk_is_ours(const struct qg_io *io, unsigned p, const struct qg_addr *ip)
{
	const struct qg_config_dpdk_port *c = qg_dpdk.ports[p].cfg;

	for (uint32_t i = 0; i < c->n_addresses; i++)
		if (ip_equal(&c->addresses[i].addr, ip))
			return 1;
	for (unsigned i = 0; i < qg_dpdk.n_nat; i++)
		if (qg_dpdk.nat[i].port == p && ip_equal(&qg_dpdk.nat[i].addr, ip))
			return 1;
	for (unsigned s = 0; s < io->n_services; s++)
		if (ip_equal(&io->listen[s], ip))
			return 1;
	return 0;
}

/* Add the allowed CPUs as "0@(a,b,...)": the main lcore may float like the control thread it is. */
static int main_lcore_arg(char *buf, size_t len)
{
	cpu_set_t set;
	size_t off;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	off = (size_t)snprintf(buf, len, "0@(");
	for (int c = 0; c < CPU_SETSIZE && off + 8 < len; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%d", n++ ? "," : "", c);
	}
	snprintf(buf + off, len - off, ")");
	return n ? 0 : -EINVAL;
}

static int has_lcore_arg(const struct qg_config_dpdk *d)
{
	for (uint32_t i = 0; i < d->n_eal_args; i++) {
		const char *a = d->eal_args[i];

		if (!strcmp(a, "-l") || !strcmp(a, "-c") || !strncmp(a, "--lcores", 8) ||
		    !strncmp(a, "-l", 2) || !strncmp(a, "-c", 2))
			return 1;
	}
	return 0;
}

/*
 * Workers are qgate's own pinned pthreads, registered with
 * rte_thread_register() when they start: the EAL gets the main lcore only,
 * allowed on every CPU the control thread may use.
 */
static int eal_init(const struct qg_config_dpdk *d)
{
	char *argv[QG_CONFIG_DPDK_MAX_EAL_ARGS + 4];
	char lcores[512];
	int argc = 0, rc;

	argv[argc++] = (char *)"qgate";
	for (uint32_t i = 0; i < d->n_eal_args; i++)
		argv[argc++] = (char *)d->eal_args[i];
	if (!has_lcore_arg(d)) {
		rc = main_lcore_arg(lcores, sizeof(lcores));
		if (rc)
			return rc;
		argv[argc++] = (char *)"--lcores";
		argv[argc++] = lcores;
	}
	argv[argc] = NULL;
	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		rc = rte_errno ? -rte_errno : -EINVAL;
		QG_LOG_ERR("dpdk: EAL initialisation failed: %s", rte_strerror(-rc));
		return rc;
	}
	qg_dpdk.eal_ready = 1;
	return 0;
}

static int pools_create(const struct qg_config *cfg, int socket)
{
	const struct qg_config_dpdk *d = &cfg->dataplane.dpdk;
	uint32_t room = cfg->dataplane.max_datagram + 14 + 4 + 40 + 8; /* Ethernet, VLAN, IPv6, UDP */
	unsigned cache = d->mbufs / 2 < 256 ? d->mbufs / 2 : 256;
	char name[RTE_MEMPOOL_NAMESIZE];

	room = (room + 63) & ~63u;
	if (room < RTE_MBUF_DEFAULT_DATAROOM)
		room = RTE_MBUF_DEFAULT_DATAROOM;
	if (room > UINT16_MAX - RTE_PKTMBUF_HEADROOM)
		room = UINT16_MAX - RTE_PKTMBUF_HEADROOM;
	for (unsigned w = 0; w < qg_dpdk.n_workers; w++) {
		snprintf(name, sizeof(name), "qg_mbuf_%u", w);
		qg_dpdk.pools[w] = rte_pktmbuf_pool_create(
			name, d->mbufs, cache, RTE_ALIGN(sizeof(struct qg_net_pkt), RTE_MBUF_PRIV_ALIGN),
			(uint16_t)(room + RTE_PKTMBUF_HEADROOM), socket);
		if (!qg_dpdk.pools[w]) {
			QG_LOG_ERR("dpdk: cannot create a pool of %u mbufs for worker %u: %s (more memory: "
				   "hugepages or -m)",
				   d->mbufs, w, rte_strerror(rte_errno));
			return -ENOMEM;
		}
		snprintf(name, sizeof(name), "qg_handover_%u", w);
		qg_dpdk.rings[w] = rte_ring_create(name, QG_DPDK_RING_SIZE, socket, RING_F_SC_DEQ);
		if (!qg_dpdk.rings[w]) {
			QG_LOG_ERR("dpdk: cannot create the handover ring of worker %u: %s", w,
				   rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	return 0;
}

/* Solicited-node multicast MAC 33:33:ff:xx:xx:xx of an IPv6 address. */
static void mc_add(struct rte_ether_addr *list, unsigned *n, const struct qg_addr *ip)
{
	struct rte_ether_addr m = { { 0x33, 0x33, 0xff, ip->ip[13], ip->ip[14], ip->ip[15] } };

	if (ip->family != AF_INET6)
		return;
	for (unsigned i = 0; i < *n && i < MC_MAX; i++)
		if (rte_is_same_ether_addr(&list[i], &m))
			return;
	if (*n < MC_MAX)
		list[*n] = m;
	(*n)++;
}

/* Promiscuous off: ND solicitations arrive only for the multicast groups the port joins. */
static void port_multicast(const struct qg_config *cfg, unsigned p)
{
	const struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	struct rte_ether_addr list[MC_MAX];
	unsigned n = 0;

	for (uint32_t i = 0; i < dp->cfg->n_addresses; i++)
		mc_add(list, &n, &dp->cfg->addresses[i].addr);
	for (unsigned i = 0; i < qg_dpdk.n_nat; i++)
		if (qg_dpdk.nat[i].port == p)
			mc_add(list, &n, &qg_dpdk.nat[i].addr);
	for (uint32_t s = 0; s < cfg->n_services; s++)
		mc_add(list, &n, &cfg->services[s].listen);
	if (n == 0)
		return;
	if (n > MC_MAX || rte_eth_dev_set_mc_addr_list(dp->port_id, list, n) != 0)
		(void)rte_eth_allmulticast_enable(dp->port_id);
}

static int port_start(const struct qg_config *cfg, unsigned p)
{
	const struct qg_config_dpdk *d = &cfg->dataplane.dpdk;
	struct qg_dpdk_port *dp = &qg_dpdk.ports[p];
	const uint64_t csum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	uint16_t nrx = (uint16_t)d->rx_desc, ntx = (uint16_t)d->tx_desc, nw = (uint16_t)qg_dpdk.n_workers;
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_txconf txc;
	int rc, socket;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(dp->port_id, &info);
	if (rc)
		goto err;
	if (info.max_rx_queues < nw || info.max_tx_queues < nw) {
		QG_LOG_ERR("dpdk: port %s has %u RX / %u TX queues, %u workers need one of each",
			   dp->cfg->name, info.max_rx_queues, info.max_tx_queues, nw);
		return -EINVAL;
	}
	if (nw > 1) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;

		if (hf) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else {
			QG_LOG_WARN("dpdk: port %s has no RSS: every client lands on worker 0's queue",
				    dp->cfg->name);
		}
	}
	if ((info.tx_offload_capa & csum) == csum) {
		conf.txmode.offloads |= csum;
		dp->csum_offload = 1;
	}
	rc = rte_eth_dev_configure(dp->port_id, nw, nw, &conf);
	if (rc)
		goto err;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(dp->port_id, &nrx, &ntx);
	if (rc)
		goto err;
	socket = rte_eth_dev_socket_id(dp->port_id);
	txc = info.default_txconf;
	txc.offloads = conf.txmode.offloads;
	for (uint16_t q = 0; q < nw; q++) {
		rc = rte_eth_rx_queue_setup(dp->port_id, q, nrx, (unsigned)socket, NULL, qg_dpdk.pools[q]);
		if (rc)
			goto err;
		rc = rte_eth_tx_queue_setup(dp->port_id, q, ntx, (unsigned)socket, &txc);
		if (rc)
			goto err;
	}
	rc = rte_eth_macaddr_get(dp->port_id, &dp->mac);
	if (rc)
		goto err;
	rc = rte_eth_dev_start(dp->port_id);
	if (rc)
		goto err;
	/* Some PMDs (pcap, ring) cannot filter at all: not an error. */
	(void)rte_eth_promiscuous_disable(dp->port_id);
	port_multicast(cfg, p);
	QG_LOG_INFO("dpdk: port %s (id %u) " RTE_ETHER_ADDR_PRT_FMT ", %u queue(s), %u/%u descriptors, "
		    "checksums in %s",
		    dp->cfg->name, dp->port_id, RTE_ETHER_ADDR_BYTES(&dp->mac), nw, nrx, ntx,
		    dp->csum_offload ? "hardware" : "software");
	return 0;
err:
	QG_LOG_ERR("dpdk: cannot set up port %s: %s", dp->cfg->name, rte_strerror(-rc));
	return rc < 0 ? rc : -EIO;
}

static void port_addresses(struct qg_dpdk_port *dp, unsigned idx)
{
	const struct qg_config_dpdk_port *c = dp->cfg;

	for (uint32_t i = 0; i < c->n_addresses; i++) {
		struct qg_addr *own = c->addresses[i].addr.family == AF_INET ? &dp->own4 : &dp->own6;

		if (!own->family)
			*own = c->addresses[i].addr;
	}
	dp->gw4 = c->gateway;
	dp->gw6 = c->gateway6;
	/* Default NAT source: the port's own address of each family. */
	if (c->n_nat) {
		for (uint32_t i = 0; i < c->n_nat; i++)
			qg_dpdk.nat[qg_dpdk.n_nat++] = (struct qg_dpdk_nat){ c->nat[i], idx };
	} else {
		if (dp->own4.family)
			qg_dpdk.nat[qg_dpdk.n_nat++] = (struct qg_dpdk_nat){ dp->own4, idx };
		if (dp->own6.family)
			qg_dpdk.nat[qg_dpdk.n_nat++] = (struct qg_dpdk_nat){ dp->own6, idx };
	}
}

static int neigh_load(const struct qg_config_dpdk *d)
{
	int rc = qg_neigh_create(NEIGH_CAPACITY, &qg_dpdk.neigh);

	if (rc)
		return rc;
	for (uint32_t p = 0; p < d->n_ports; p++) {
		for (uint32_t i = 0; i < d->ports[p].n_neighbors; i++) {
			rc = qg_neigh_set(qg_dpdk.neigh, &d->ports[p].neighbors[i].addr,
					  d->ports[p].neighbors[i].mac, 1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int qg_dpdk_setup(const struct qg_config *cfg)
{
	const struct qg_config_dpdk *d = &cfg->dataplane.dpdk;
	int rc, socket = SOCKET_ID_ANY;

	memset(&qg_dpdk, 0, sizeof(qg_dpdk));
	if (d->n_ports == 0) {
		QG_LOG_ERR("dpdk: no ports configured (dataplane.dpdk.ports)");
		return -EINVAL;
	}
	qg_dpdk.conf = *d;
	qg_dpdk.n_workers = cfg->dataplane.n_cores;
	qg_dpdk.n_ports = d->n_ports;
	qg_dpdk.ports_per_worker = QG_DPDK_NAT_PORTS / qg_dpdk.n_workers;
	rc = eal_init(d);
	if (rc)
		goto err;
	for (unsigned p = 0; p < d->n_ports; p++) {
		struct qg_dpdk_port *dp = &qg_dpdk.ports[p];

		dp->cfg = &qg_dpdk.conf.ports[p];
		if (rte_eth_dev_get_port_by_name(dp->cfg->name, &dp->port_id) != 0) {
			QG_LOG_ERR("dpdk: port '%s' not found (bound to a DPDK driver? for a vdev, is it in "
				   "eal_args as --vdev?)",
				   dp->cfg->name);
			rc = -ENODEV;
			goto err;
		}
		port_addresses(dp, p);
	}
	if (qg_dpdk.n_nat == 0) {
		QG_LOG_ERR("dpdk: no NAT address: give a port an address or nat_addresses");
		rc = -EINVAL;
		goto err;
	}
	if (rte_eth_dev_socket_id(qg_dpdk.ports[0].port_id) >= 0)
		socket = rte_eth_dev_socket_id(qg_dpdk.ports[0].port_id);
	rc = pools_create(cfg, socket);
	if (rc)
		goto err;
	rc = neigh_load(d);
	if (rc) {
		QG_LOG_ERR("dpdk: cannot create the neighbour table: %s", strerror(-rc));
		goto err;
	}
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++) {
		rc = port_start(cfg, p);
		if (rc)
			goto err;
		/* Before any worker polls: the kernel has the addresses when the first frame comes. */
		if (qg_dpdk.ports[p].cfg->kernel_tap[0]) {
			rc = qg_dpdk_tap_create(p);
			if (rc)
				goto err;
		}
	}
	return 0;
err:
	qg_dpdk_teardown();
	return rc;
}

void qg_dpdk_teardown(void)
{
	struct rte_mbuf *m;

	if (!qg_dpdk.eal_ready)
		return;
	for (unsigned p = 0; p < qg_dpdk.n_ports; p++) {
		if (!qg_dpdk.ports[p].cfg)
			continue;
		qg_dpdk_tap_close(p);
		/* Closing flushes what a capture PMD buffered and frees the mbufs the queues hold. */
		(void)rte_eth_dev_stop(qg_dpdk.ports[p].port_id);
		(void)rte_eth_dev_close(qg_dpdk.ports[p].port_id);
	}
	for (unsigned w = 0; w < qg_dpdk.n_workers; w++) {
		if (qg_dpdk.rings[w]) {
			while (rte_ring_dequeue(qg_dpdk.rings[w], (void **)&m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(qg_dpdk.rings[w]);
		}
		rte_mempool_free(qg_dpdk.pools[w]);
	}
	qg_neigh_destroy(qg_dpdk.neigh);
	rte_eal_cleanup();
	memset(&qg_dpdk, 0, sizeof(qg_dpdk));
}
