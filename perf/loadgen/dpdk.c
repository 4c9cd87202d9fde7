/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver: one lcore, one or two ports, burst I/O.
 *
 * Flow f of N has client address (src_ip + f % src_ips, src_port + f / src_ips)
 * and sends datagrams round robin with the others: global sequence g is flow
 * g % N, per-flow sequence g / N. So nothing per flow is looked up on send;
 * the stamp (traffic.c) carries flow and per-flow sequence, and a received
 * datagram is matched by its payload whatever a NAT did to its headers.
 *
 * forward: open loop tx port -> device -> rx port; one-way latency.
 * echo:    the rx port reflects every UDP datagram (it plays the backends),
 *          the tx port measures round trips; closed loop with --window
 *          datagrams in flight in total, or open loop with --rate.
 */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "qgate/addr.h"
#include "qgate/compiler.h"
#include "dpdk.h"
#include "loadgen.h"

#define DP_BURST       32
#define DP_MAX_FLOWS   (1u << 24)
#define DP_NB_MBUF     32767
#define DP_RING_DESC   1024
#define DP_SCAN_NS     1000000ULL
#define DP_MAX_EAL_ARG 128

enum dp_mode {
	DP_FORWARD = 0,
	DP_ECHO
};

static struct {
	char *eal;
	int lcore;
	const char *tx_name, *rx_name;
	int has_src_mac, has_dst_mac, has_gw, has_src_ip;
	uint8_t src_mac[6], dst_mac[6];
	uint8_t gw[16], src_ip[16];
	int family;
	uint32_t src_ips;
	uint32_t src_port;
	const char *target_text;
	struct qg_addr target;
	enum dp_mode mode;
	uint32_t flows, size, window, timeout_ms, link_timeout_s;
	int rate_given;
	uint64_t rate;
	double duration_s, warmup_s;
	enum lg_payload payload;
	int json, quiet, check_csum;
} o = {
	.lcore = -1,
	.src_port = 1024,
	.flows = 256,
	.size = 64,
	.window = 512,
	.timeout_ms = 200,
	.link_timeout_s = 30,
	.duration_s = 10,
	.warmup_s = 1,
};

struct dp_port {
	uint16_t id;
	uint8_t mac[6];
	int is_tx, is_rx;
	struct rte_mbuf *out[DP_BURST]; /* reflections and ARP/ND answers of one rx burst */
	unsigned n_out;
};

static struct {
	struct rte_mempool *pool;
	struct dp_port port[2];
	unsigned n_ports;
	struct dp_port *tx, *rx;
	struct lg_model model;
	struct lg_stats *st;
	struct lg_flow ring; /* echo closed loop: every datagram in flight, by global sequence */
	uint64_t *rx_next;   /* open loop: next per-flow sequence expected (duplicates are late) */
	uint64_t tsc0, ns_mult;
	uint64_t warm_end, end, timeout_ns;
	uint64_t gseq;	 /* open loop: next global sequence */
	uint64_t issued; /* open loop: datagrams the --rate schedule asked for */
	uint64_t reflected, out_dropped;
	uint8_t tmpl[256]; /* Ethernet/IP/UDP headers + payload with zero src IP, port, stamp */
	uint32_t hdr_len, frame_len, sip_off, alen;
	uint64_t ip_base, udp_base; /* checksum sums over the template's constant bytes */
	uint32_t src4;		    /* IPv4 base (host order), or the low 32 bits of the IPv6 base */
} d;

static volatile sig_atomic_t stop;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qgate-loadgen --dpdk \"EAL ARGS\" --tx-port NAME --target ADDR [options]\n"
		"  --dpdk ARGS        EAL arguments, e.g. \"--no-huge -m 512 --no-pci --file-prefix lg\n"
		"                     --vdev net_memif0,role=server,socket=/tmp/a.sock\"\n"
		"  --lcore CPU        the one CPU the generator runs on (adds -l CPU to the EAL arguments)\n"
		"  --tx-port NAME     port sending the client traffic (e.g. net_memif0)\n"
		"  --rx-port NAME     port receiving it (forward) / playing the backends (echo); default "
		"the tx port\n"
		"  --mode forward|echo  forward: open loop tx -> rx, one-way latency (default);\n"
		"                     echo: rx port reflects, tx port measures round trips\n"
		"  --target ADDR      VIP a.b.c.d:port or [v6]:port\n"
		"  --src-ip IP        first client address (family of the target; default 10.0.0.1 / "
		"fd00::1)\n"
		"  --src-ips N        client addresses (default: as few as fit --flows with ports "
		"1024..65535)\n"
		"  --src-port P       first client port (default 1024)\n"
		"  --src-mac MAC      source MAC on the tx port (default: the port's)\n"
		"  --dst-mac MAC      the device's MAC on the tx port (default: ARP/ND for --gateway-ip)\n"
		"  --gateway-ip IP    resolved when --dst-mac is not given\n"
		"  --flows N          1..16777216 (default 256)\n"
		"  --size BYTES       UDP payload (default 64)\n"
		"  --rate PPS         open loop at PPS (0 = as fast as possible; forward default 0)\n"
		"  --window W         echo closed loop: W datagrams in flight in total (default 512)\n"
		"  --duration SEC, --warmup SEC, --timeout-ms MS, --payload udp|quic, --json, --quiet\n"
		"  --check-csum       count frames with a wrong IPv4/UDP checksum as mismatched\n"
		"  --link-timeout SEC wait this long for the ports to come up (default 30)\n");
}

static int bad(const char *what)
{
	fprintf(stderr, "qgate-loadgen: %s (see --dpdk '' --help)\n", what);
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, min, max, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_secs(const char *s, double min, double max, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= min && v <= max))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* A bare IP; returns its family or 0. */
static int parse_ip(const char *s, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (inet_pton(AF_INET, s, ip) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, ip) == 1)
		return AF_INET6;
	return 0;
}

static int parse_options(int argc, char **argv)
{
	enum {
		O_DPDK = 256,
		O_LCORE,
		O_TX,
		O_RX,
		O_SMAC,
		O_DMAC,
		O_GW,
		O_SIP,
		O_SIPS,
		O_SPORT,
		O_TARGET,
		O_MODE,
		O_FLOWS,
		O_SIZE,
		O_RATE,
		O_WINDOW,
		O_DURATION,
		O_WARMUP,
		O_TIMEOUT,
		O_PAYLOAD,
		O_JSON,
		O_QUIET,
		O_CSUM,
		O_LINK,
		O_HELP
	};
	static const struct option lopts[] = {
		{ "dpdk", required_argument, NULL, O_DPDK },
		{ "lcore", required_argument, NULL, O_LCORE },
		{ "tx-port", required_argument, NULL, O_TX },
		{ "rx-port", required_argument, NULL, O_RX },
		{ "src-mac", required_argument, NULL, O_SMAC },
		{ "dst-mac", required_argument, NULL, O_DMAC },
		{ "gateway-ip", required_argument, NULL, O_GW },
		{ "src-ip", required_argument, NULL, O_SIP },
		{ "src-ips", required_argument, NULL, O_SIPS },
		{ "src-port", required_argument, NULL, O_SPORT },
		{ "target", required_argument, NULL, O_TARGET },
		{ "mode", required_argument, NULL, O_MODE },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "rate", required_argument, NULL, O_RATE },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "payload", required_argument, NULL, O_PAYLOAD },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "check-csum", no_argument, NULL, O_CSUM },
		{ "link-timeout", required_argument, NULL, O_LINK },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t gw[16];
	uint32_t v, need;
	int c, window_given = 0, sips_given = 0, fam;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case O_DPDK:
			o.eal = optarg;
			break;
		case O_LCORE:
			if (parse_u32(optarg, 0, RTE_MAX_LCORE - 1, &v))
				return bad("--lcore wants a CPU number");
			o.lcore = (int)v;
			break;
		case O_TX:
			o.tx_name = optarg;
			break;
		case O_RX:
			o.rx_name = optarg;
			break;
		case O_SMAC:
			if (parse_mac(optarg, o.src_mac))
				return bad("--src-mac wants aa:bb:cc:dd:ee:ff");
			o.has_src_mac = 1;
			break;
		case O_DMAC:
			if (parse_mac(optarg, o.dst_mac))
				return bad("--dst-mac wants aa:bb:cc:dd:ee:ff");
			o.has_dst_mac = 1;
			break;
		case O_GW:
			if (!(fam = parse_ip(optarg, gw)))
				return bad("--gateway-ip wants an IPv4 or IPv6 address");
			memcpy(o.gw, gw, 16);
			o.has_gw = fam;
			break;
		case O_SIP:
			if (!(o.has_src_ip = parse_ip(optarg, o.src_ip)))
				return bad("--src-ip wants an IPv4 or IPv6 address");
			break;
		case O_SIPS:
			if (parse_u32(optarg, 1, 1u << 24, &o.src_ips))
				return bad("--src-ips wants 1..16777216");
			sips_given = 1;
			break;
		case O_SPORT:
			if (parse_u32(optarg, 1, 65535, &o.src_port))
				return bad("--src-port wants 1..65535");
			break;
		case O_TARGET:
			o.target_text = optarg;
			if (qg_addr_parse(optarg, &o.target) || o.target.port == 0)
				return bad("--target wants a.b.c.d:port or [v6]:port with a non-zero port");
			break;
		case O_MODE:
			if (!strcmp(optarg, "forward"))
				o.mode = DP_FORWARD;
			else if (!strcmp(optarg, "echo"))
				o.mode = DP_ECHO;
			else
				return bad("--mode wants forward or echo");
			break;
		case O_FLOWS:
			if (parse_u32(optarg, 1, DP_MAX_FLOWS, &o.flows))
				return bad("--flows wants 1..16777216");
			break;
		case O_SIZE:
			if (parse_u32(optarg, LG_STAMP_LEN, 1452, &o.size))
				return bad("--size wants 24..1452 bytes (one frame within a 1500-byte MTU)");
			break;
		case O_RATE:
			if (parse_u64(optarg, 0, 1000000000, &o.rate))
				return bad("--rate wants 0..1000000000 packets/s (0: as fast as possible)");
			o.rate_given = 1;
			break;
		case O_WINDOW:
			if (parse_u32(optarg, 1, 1u << 20, &o.window))
				return bad("--window wants 1..1048576");
			window_given = 1;
			break;
		case O_DURATION:
			if (parse_secs(optarg, 0.1, 86400, &o.duration_s))
				return bad("--duration wants seconds, 0.1..86400");
			break;
		case O_WARMUP:
			if (parse_secs(optarg, 0, 3600, &o.warmup_s))
				return bad("--warmup wants seconds, 0..3600");
			break;
		case O_TIMEOUT:
			if (parse_u32(optarg, 1, 60000, &o.timeout_ms))
				return bad("--timeout-ms wants 1..60000");
			break;
		case O_PAYLOAD:
			if (!strcmp(optarg, "udp"))
				o.payload = LG_PAYLOAD_UDP;
			else if (!strcmp(optarg, "quic"))
				o.payload = LG_PAYLOAD_QUIC;
			else
				return bad("--payload wants udp or quic");
			break;
		case O_JSON:
			o.json = 1;
			break;
		case O_QUIET:
			o.quiet = 1;
			break;
		case O_CSUM:
			o.check_csum = 1;
			break;
		case O_LINK:
			if (parse_u32(optarg, 1, 3600, &o.link_timeout_s))
				return bad("--link-timeout wants 1..3600 seconds");
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "qgate-loadgen: unknown option or missing value: %s\n",
				argv[optind - 1]);
			return bad("bad option");
		}
	}
	if (optind < argc)
		return bad("unexpected argument");
	if (!o.tx_name || !o.target_text)
		return bad("--dpdk needs --tx-port and --target");
	if (!o.rx_name)
		o.rx_name = o.tx_name;
	o.family = o.target.family;
	if (!o.has_src_ip)
		parse_ip(o.family == AF_INET ? "10.0.0.1" : "fd00::1", o.src_ip);
	else if (o.has_src_ip != o.family)
		return bad("--src-ip and --target must be the same family");
	if (!o.has_dst_mac && o.has_gw != o.family)
		return bad("give --dst-mac, or --gateway-ip of the target's family to resolve it");
	if (o.payload == LG_PAYLOAD_QUIC && o.size < LG_QUIC_SHORT_HDR + LG_STAMP_LEN)
		return bad("--size must be >= 33 with --payload quic");
	if (o.family == AF_INET && o.size > 1472)
		return bad("--size wants <= 1472 bytes over IPv4");
	if (o.mode == DP_FORWARD && window_given)
		return bad("--window is for --mode echo (closed loop)");
	if (o.rate_given && window_given)
		return bad("--window (closed loop) and --rate (open loop) exclude each other");
	if (o.mode == DP_FORWARD)
		o.rate_given = 1; /* forward is always open loop */
	/* Ports per address are src_port..65535: spread the flows over enough addresses. */
	need = (uint32_t)((o.flows + (65536 - o.src_port) - 1) / (65536 - o.src_port));
	if (!sips_given)
		o.src_ips = need;
	else if (o.src_ips < need)
		return bad("--src-ips too small: flows / src-ips must fit in ports src-port..65535");
	return 0;
}

/* ---- time ------------------------------------------------------------------ */

static inline uint64_t now_ns(void)
{
	return (uint64_t)((unsigned __int128)(rte_rdtsc() - d.tsc0) * d.ns_mult >> 32);
}

static inline int in_window(uint64_t t)
{
	return t >= d.warm_end && t < d.end;
}

/* ---- setup ----------------------------------------------------------------- */

static int eal_init(const char *prog)
{
	static char buf[4096];
	char *argv[DP_MAX_EAL_ARG + 4];
	char lc[16];
	int argc = 0, r;

	argv[argc++] = (char *)prog;
	snprintf(buf, sizeof(buf), "%s", o.eal ? o.eal : "");
	for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= DP_MAX_EAL_ARG)
			return bad("too many EAL arguments");
		if (o.lcore >= 0 && (!strcmp(t, "-l") || !strcmp(t, "-c") || !strncmp(t, "--lcores", 8)))
			return bad("--lcore and an EAL core list exclude each other");
		argv[argc++] = t;
	}
	if (o.lcore >= 0) {
		snprintf(lc, sizeof(lc), "%d", o.lcore);
		argv[argc++] = "-l";
		argv[argc++] = lc;
	}
	argv[argc] = NULL;
	optind = 1; /* EAL parses with getopt too */
	r = rte_eal_init(argc, argv);
	if (r < 0) {
		fprintf(stderr, "qgate-loadgen: EAL init failed: %s\n", rte_strerror(rte_errno));
		return -EINVAL;
	}
	return 0;
}

static int port_setup(struct dp_port *p, const char *name)
{
	struct rte_eth_conf conf;
	struct rte_ether_addr mac;
	uint16_t nrx = DP_RING_DESC, ntx = DP_RING_DESC;
	int r;

	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_get_port_by_name(name, &p->id)) {
		fprintf(stderr, "qgate-loadgen: no DPDK port named %s (check the --vdev arguments)\n", name);
		return -ENODEV;
	}
	r = rte_eth_dev_configure(p->id, 1, 1, &conf);
	if (!r)
		r = rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nrx, &ntx);
	if (!r)
		r = rte_eth_rx_queue_setup(p->id, 0, nrx, rte_eth_dev_socket_id(p->id), NULL, d.pool);
	if (!r)
		r = rte_eth_tx_queue_setup(p->id, 0, ntx, rte_eth_dev_socket_id(p->id), NULL);
	if (!r)
		r = rte_eth_dev_start(p->id);
	if (r) {
		fprintf(stderr, "qgate-loadgen: cannot set up port %s: %s\n", name, strerror(-r));
		return r;
	}
	rte_eth_promiscuous_enable(p->id); /* not every vdev has it; harmless then */
	rte_eth_macaddr_get(p->id, &mac);
	memcpy(p->mac, mac.addr_bytes, 6);
	return 0;
}

static int wait_links(void)
{
	uint64_t until = now_ns() + (uint64_t)o.link_timeout_s * 1000000000ULL;

	for (unsigned i = 0; i < d.n_ports; i++) {
		struct rte_eth_link l;

		for (;;) {
			memset(&l, 0, sizeof(l));
			rte_eth_link_get_nowait(d.port[i].id, &l);
			if (l.link_status == RTE_ETH_LINK_UP)
				break;
			if (now_ns() > until || stop) {
				fprintf(stderr, "qgate-loadgen: port %u is down after %u s\n", d.port[i].id,
					o.link_timeout_s);
				return -ETIMEDOUT;
			}
			rte_delay_us_sleep(10000);
		}
	}
	return 0;
}

/* The client address of a flow: base + flow % src_ips, port src_port + flow / src_ips. */
static inline void flow_addr(uint32_t flow, uint32_t *ip_low, uint16_t *port_be)
{
	uint32_t idx = o.src_ips == 1 ? 0 : flow % o.src_ips;
	uint32_t pi = o.src_ips == 1 ? flow : flow / o.src_ips;

	*ip_low = rte_cpu_to_be_32(d.src4 + idx);
	*port_be = rte_cpu_to_be_16((uint16_t)(o.src_port + pi));
}

/* Headers and payload of an ordinary datagram with the per-packet fields zero. */
static void build_template(void)
{
	uint8_t *p = d.tmpl, *ip = p + LG_ETH_HLEN, *udp;
	uint32_t ulen = 8 + o.size;
	uint8_t pseudo[40] = { 0 };

	memset(d.tmpl, 0, sizeof(d.tmpl));
	memcpy(p, o.dst_mac, 6);
	memcpy(p + 6, o.src_mac, 6);
	if (o.family == AF_INET) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;

		p[12] = 0x08;
		h->version_ihl = 0x45;
		h->total_length = rte_cpu_to_be_16((uint16_t)(20 + ulen));
		h->time_to_live = 64;
		h->next_proto_id = IPPROTO_UDP;
		memcpy(&h->dst_addr, o.target.ip, 4);
		d.sip_off = LG_ETH_HLEN + 12;
		d.alen = 4;
		udp = ip + 20;
		d.ip_base = lg_sum16(ip, 20);
		memcpy(pseudo + 4, o.target.ip, 4);
		pseudo[9] = IPPROTO_UDP;
		pseudo[10] = (uint8_t)(ulen >> 8);
		pseudo[11] = (uint8_t)ulen;
		d.udp_base = lg_sum16(pseudo, 12);
	} else {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;

		p[12] = 0x86;
		p[13] = 0xdd;
		h->vtc_flow = rte_cpu_to_be_32(6u << 28);
		h->payload_len = rte_cpu_to_be_16((uint16_t)ulen);
		h->proto = IPPROTO_UDP;
		h->hop_limits = 64;
		memcpy(h->src_addr, o.src_ip, 12); /* the low 32 bits vary per flow */
		memcpy(h->dst_addr, o.target.ip, 16);
		d.sip_off = LG_ETH_HLEN + 8 + 12;
		d.alen = 4;
		udp = ip + 40;
		memcpy(pseudo, o.src_ip, 12);
		memcpy(pseudo + 16, o.target.ip, 16);
		pseudo[34] = (uint8_t)(ulen >> 8);
		pseudo[35] = (uint8_t)ulen;
		pseudo[39] = IPPROTO_UDP;
		d.udp_base = lg_sum16(pseudo, 40);
	}
	memcpy(&d.src4, o.src_ip + (o.family == AF_INET ? 0 : 12), 4);
	d.src4 = rte_be_to_cpu_32(d.src4);
	memcpy(udp + 2, &o.target.port, 2);
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	d.hdr_len = (uint32_t)(udp + 8 - p);
	d.frame_len = d.hdr_len + o.size;
	d.udp_base += lg_sum16(udp, 8);
	/* Filler after the stamp is constant; the stamp itself is added per packet. */
	if (d.frame_len <= sizeof(d.tmpl)) {
		memcpy(p + d.hdr_len + LG_STAMP_LEN, d.model.filler + LG_STAMP_LEN, o.size - LG_STAMP_LEN);
		d.udp_base += lg_sum16(p + d.hdr_len, o.size);
	}
}

/*
 * UDP payload datagrams that fit the template: copy it, patch source and
 * stamp, and finish both checksums from the precomputed sums (no pass over
 * the payload).
 */
static inline void build_fast(uint8_t *p, uint32_t flow, uint64_t seq, uint64_t now)
{
	uint32_t stamp[6], ip;
	uint16_t port, ck;
	uint64_t s;

	rte_memcpy(p, d.tmpl, d.frame_len);
	flow_addr(flow, &ip, &port);
	memcpy(p + d.sip_off, &ip, 4);
	memcpy(p + d.hdr_len - 8, &port, 2);
	stamp[0] = LG_MAGIC;
	stamp[1] = flow;
	memcpy(&stamp[2], &seq, 8);
	memcpy(&stamp[4], &now, 8);
	memcpy(p + d.hdr_len, stamp, LG_STAMP_LEN);
	s = d.udp_base + (ip & 0xffff) + (ip >> 16) + port;
	for (int i = 0; i < 6; i++)
		s += (stamp[i] & 0xffff) + (stamp[i] >> 16);
	ck = lg_csum_fold(s);
	if (!ck)
		ck = 0xffff; /* 0 means "no checksum" over IPv4 and is invalid over IPv6 */
	memcpy(p + d.hdr_len - 2, &ck, 2);
	if (o.family == AF_INET) {
		ck = lg_csum_fold(d.ip_base + (ip & 0xffff) + (ip >> 16));
		memcpy(p + LG_ETH_HLEN + 10, &ck, 2);
	}
}

/* Anything else (QUIC headers, large datagrams): traffic.c writes the payload, checksums in full. */
static uint32_t build_slow(uint8_t *p, uint32_t flow, uint64_t seq, uint64_t now)
{
	struct lg_flow f = { .id = flow };
	uint8_t *ip = p + LG_ETH_HLEN, *udp = p + d.hdr_len - 8;
	uint32_t ipv, len;
	uint16_t port, ck = 0;

	rte_memcpy(p, d.tmpl, d.hdr_len);
	len = (uint32_t)lg_build(&d.model, &f, seq, now, p + d.hdr_len);
	flow_addr(flow, &ipv, &port);
	memcpy(p + d.sip_off, &ipv, 4);
	memcpy(udp, &port, 2);
	udp[4] = (uint8_t)((len + 8) >> 8);
	udp[5] = (uint8_t)(len + 8);
	memcpy(udp + 6, &ck, 2);
	if (o.family == AF_INET) {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;

		h->total_length = rte_cpu_to_be_16((uint16_t)(len + 28));
		h->hdr_checksum = 0;
		h->hdr_checksum = rte_ipv4_cksum(h);
		ck = rte_ipv4_udptcp_cksum(h, udp);
	} else {
		struct rte_ipv6_hdr *h = (struct rte_ipv6_hdr *)ip;

		h->payload_len = rte_cpu_to_be_16((uint16_t)(len + 8));
		ck = rte_ipv6_udptcp_cksum(h, udp);
	}
	memcpy(udp + 6, &ck, 2);
	return d.hdr_len + len;
}

/* ---- ARP / ND ---------------------------------------------------------------- */

static int is_client_ip(const uint8_t *ip, int v6)
{
	uint32_t low;

	if (v6 && memcmp(ip, o.src_ip, 12))
		return 0;
	memcpy(&low, ip + (v6 ? 12 : 0), 4);
	return rte_be_to_cpu_32(low) - d.src4 < o.src_ips;
}

/*
 * Do we answer for ip on port p? The tx port owns the client addresses;
 * the rx port plays every backend, so it answers for anything but the
 * gateway (and a sender probing its own address).
 */
static int answers_for(const struct dp_port *p, const uint8_t *ip, const uint8_t *sender, int v6)
{
	uint32_t n = v6 ? 16 : 4;

	if (p->is_tx && is_client_ip(ip, v6))
		return 1;
	return p->is_rx && !(o.has_gw && !memcmp(ip, o.gw, n)) && memcmp(ip, sender, n);
}

static void queue_out(struct dp_port *p, struct rte_mbuf *m)
{
	if (p->n_out < DP_BURST) {
		p->out[p->n_out++] = m;
	} else {
		rte_pktmbuf_free(m);
		d.out_dropped++;
	}
}

static void reply_frame(struct dp_port *p, const uint8_t *frame, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d.pool);

	if (!m)
		return;
	rte_memcpy(rte_pktmbuf_mtod(m, uint8_t *), frame, len);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	queue_out(p, m);
}

static void handle_arp(struct dp_port *p, const struct lg_frame *f)
{
	const uint8_t *a = f->l3;
	uint8_t buf[64];
	uint32_t len;

	if (a[0] != 0 || a[1] != 1 || a[2] != 8 || a[3] != 0 || a[4] != 6 || a[5] != 4)
		return;
	/* A reply or a request from the gateway both tell us its MAC. */
	if (p->is_tx && !o.has_dst_mac && o.has_gw == AF_INET && !memcmp(a + 14, o.gw, 4)) {
		memcpy(o.dst_mac, a + 8, 6);
		o.has_dst_mac = 2;
	}
	if (a[7] == 1 && answers_for(p, a + 24, a + 14, 0)) {
		len = lg_arp_build(buf, 2, a + 8, p->mac, a + 24, a + 8, a + 14);
		reply_frame(p, buf, len);
	}
}

static void handle_nd(struct dp_port *p, const uint8_t *frame, const struct lg_frame *f)
{
	static const uint8_t all_nodes[16] = { 0xff, 2, [15] = 1 };
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	uint8_t type, target[16], ll[6], buf[128];
	const uint8_t *src = f->l3 + 8;
	int dad = 1;
	uint32_t len;

	if (lg_nd_read(frame, f, &type, target, ll))
		return;
	for (int i = 0; i < 16; i++)
		dad &= src[i] == 0;
	if (type == 136 && p->is_tx && !o.has_dst_mac && o.has_gw == AF_INET6 && !memcmp(target, o.gw, 16)) {
		memcpy(o.dst_mac, ll, 6);
		o.has_dst_mac = 2;
	}
	if (type != 135 || !answers_for(p, target, src, 1))
		return;
	/* Duplicate address detection (source ::) of an address we use: defend it to all nodes. */
	if (dad)
		len = lg_nd_build(buf, 136, p->mac, target, all_nodes_mac, all_nodes, target);
	else
		len = lg_nd_build(buf, 136, p->mac, target, ll, src, target);
	reply_frame(p, buf, len);
}

static void flush_out(struct dp_port *p)
{
	unsigned sent = 0;

	if (!p->n_out)
		return;
	sent = rte_eth_tx_burst(p->id, 0, p->out, (uint16_t)p->n_out);
	if (sent < p->n_out) {
		d.out_dropped += p->n_out - sent;
		rte_pktmbuf_free_bulk(p->out + sent, p->n_out - sent);
	}
	p->n_out = 0;
}

/* ---- receive ----------------------------------------------------------------- */

/* Echo mode, rx port: answer as the backend would (swap MACs, IPs, ports; fresh TTL). */
static void reflect(struct dp_port *p, struct rte_mbuf *m, uint8_t *fr, const struct lg_frame *f)
{
	uint8_t tmp[16];
	uint32_t n = f->v6 ? 16 : 4, off = f->v6 ? 8 : 12;

	memcpy(fr, fr + 6, 6);
	memcpy(fr + 6, p->mac, 6);
	memcpy(tmp, f->l3 + off, n);
	memcpy(f->l3 + off, f->l3 + off + n, n);
	memcpy(f->l3 + off + n, tmp, n);
	memcpy(tmp, f->l4, 2);
	memcpy(f->l4, f->l4 + 2, 2);
	memcpy(f->l4 + 2, tmp, 2);
	/* Swapping addresses or ports keeps both sums; only the IPv4 TTL changes one. */
	if (f->v6) {
		f->l3[7] = 64;
	} else {
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)f->l3;

		h->time_to_live = 64;
		h->hdr_checksum = 0;
		h->hdr_checksum = rte_ipv4_cksum(h);
	}
	d.reflected++;
	queue_out(p, m);
}

/* IPv4 header and UDP checksums of a received datagram (a zero UDP/IPv4 checksum means none). */
static int csum_ok(const struct lg_frame *f)
{
	uint32_t ulen = f->payload_len + 8;
	uint64_t s = rte_cpu_to_be_16((uint16_t)ulen) + rte_cpu_to_be_16(IPPROTO_UDP);
	uint16_t uck;

	memcpy(&uck, f->l4 + 6, 2);
	if (f->v6) {
		s += lg_sum16(f->l3 + 8, 32);
	} else {
		if (lg_csum_fold(lg_sum16(f->l3, (f->l3[0] & 0xfu) * 4u)))
			return 0;
		if (!uck)
			return 1;
		s += lg_sum16(f->l3 + 12, 8);
	}
	return lg_csum_fold(s + lg_sum16(f->l4, ulen)) == 0;
}

static void count(uint64_t *live, uint64_t *meas, int measured)
{
	QG_COUNTER_ADD(live, 1);
	if (measured)
		QG_COUNTER_ADD(meas, 1);
}

/* A datagram of ours came back (echo) or through (forward): match it by its stamp. */
static void measure(const struct lg_frame *f, uint64_t now)
{
	struct lg_stats *st = d.st;
	struct lg_flow fake;
	struct lg_slot *s = NULL;
	uint64_t seq, sent, lat;
	uint32_t flow, ip;
	uint16_t port;
	uint32_t off = o.payload == LG_PAYLOAD_QUIC && f->payload_len
			       ? (f->payload[0] & 0x80 ? LG_QUIC_LONG_HDR : LG_QUIC_SHORT_HDR)
			       : 0;

	if (lg_parse(&d.model, f->payload, f->payload_len, &flow, &seq) || flow >= o.flows) {
		count(&st->live.mismatched, &st->meas.mismatched, in_window(now));
		return;
	}
	memcpy(&sent, f->payload + off + 16, 8);
	fake.id = flow;
	if (!d.rx_next) {
		s = lg_flow_lookup(&d.ring, seq * o.flows + flow);
		if (!s) {
			count(&st->live.late, &st->meas.late, in_window(now));
			return;
		}
		sent = s->sent_ns;
	}
	if (!lg_verify(&d.model, &fake, seq, sent, f->payload, f->payload_len) ||
	    (o.check_csum && !csum_ok(f))) {
		count(&st->live.mismatched, &st->meas.mismatched,
		      s ? s->state == LG_SLOT_MEASURED : in_window(sent));
		if (s)
			lg_flow_resolve(&d.ring, s);
		return;
	}
	if (o.mode == DP_ECHO) {
		/* The reply must reach the very client that sent it: NAT state not crossed. */
		flow_addr(flow, &ip, &port);
		if (memcmp(f->l3 + (f->v6 ? 36 : 16), &ip, 4) || memcmp(f->l4 + 2, &port, 2)) {
			count(&st->live.mismatched, &st->meas.mismatched, in_window(sent));
			if (s)
				lg_flow_resolve(&d.ring, s);
			return;
		}
	}
	lat = now - sent;
	if (s) {
		lg_flow_resolve(&d.ring, s);
	} else if (lat > d.timeout_ns || seq < d.rx_next[flow]) {
		/* Open loop: past the timeout (already lost) or a duplicate / reordered copy. */
		count(&st->live.late, &st->meas.late, in_window(now));
		return;
	} else {
		d.rx_next[flow] = seq + 1;
	}
	QG_COUNTER_ADD(&st->live.rx, 1);
	lg_hist_record(&st->live_hist, lat);
	if (in_window(sent)) {
		QG_COUNTER_ADD(&st->meas.rx, 1);
		lg_hist_record(&st->meas_hist, lat);
	}
}

static void rx_port(struct dp_port *p)
{
	struct rte_mbuf *m[DP_BURST];
	uint16_t n = rte_eth_rx_burst(p->id, 0, m, DP_BURST);
	uint64_t now;

	if (!n)
		return;
	now = now_ns(); /* one clock read per burst: it arrived together */
	for (uint16_t i = 0; i < n; i++) {
		uint8_t *fr = rte_pktmbuf_mtod(m[i], uint8_t *);
		struct lg_frame f;
		enum lg_frame_kind k;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void *));
		k = m[i]->nb_segs == 1 ? lg_frame_parse(fr, m[i]->data_len, &f) : LG_FRAME_OTHER;
		if (k == LG_FRAME_UDP) {
			if (o.mode == DP_ECHO && p->is_rx &&
			    (!p->is_tx || !is_client_ip(f.l3 + (f.v6 ? 24 : 16), f.v6))) {
				reflect(p, m[i], fr, &f);
				continue;
			}
			if (o.mode == DP_ECHO ? p->is_tx : p->is_rx)
				measure(&f, now);
		} else if (k == LG_FRAME_ARP) {
			handle_arp(p, &f);
		} else if (k == LG_FRAME_ND) {
			handle_nd(p, fr, &f);
		}
		rte_pktmbuf_free(m[i]);
	}
	flush_out(p);
}

static void rx_all(void)
{
	for (unsigned i = 0; i < d.n_ports; i++)
		rx_port(&d.port[i]);
}

/* ---- send -------------------------------------------------------------------- */

/* Send up to want datagrams starting at global sequence g; returns how many left. */
static unsigned tx_burst(uint64_t g, unsigned want, uint64_t now)
{
	struct rte_mbuf *m[DP_BURST];
	uint32_t flow = (uint32_t)(g % o.flows);
	uint64_t seq = g / o.flows;
	int fast = o.payload == LG_PAYLOAD_UDP && d.frame_len <= sizeof(d.tmpl);
	unsigned sent;

	if (rte_pktmbuf_alloc_bulk(d.pool, m, want))
		return 0;
	for (unsigned i = 0; i < want; i++) {
		uint8_t *p = rte_pktmbuf_mtod(m[i], uint8_t *);
		uint32_t len = d.frame_len;

		if (fast)
			build_fast(p, flow, seq, now);
		else
			len = build_slow(p, flow, seq, now);
		m[i]->data_len = (uint16_t)len;
		m[i]->pkt_len = len;
		if (++flow == o.flows) {
			flow = 0;
			seq++;
		}
	}
	sent = rte_eth_tx_burst(d.tx->id, 0, m, (uint16_t)want);
	if (sent < want)
		rte_pktmbuf_free_bulk(m + sent, want - sent);
	QG_COUNTER_ADD(&d.st->live.tx, sent);
	if (in_window(now))
		QG_COUNTER_ADD(&d.st->meas.tx, sent);
	return sent;
}

static void tx_step(uint64_t now)
{
	unsigned want = DP_BURST, sent;

	if (!d.rx_next) {
		/* Closed loop: refill the window; sequence numbers stay consecutive. */
		uint32_t room = d.ring.mask + 1 - (uint32_t)(d.ring.next_seq - d.ring.tail);

		if (d.ring.inflight >= o.window)
			return;
		want = RTE_MIN(want, RTE_MIN(o.window - d.ring.inflight, room));
		if (!want)
			return;
		sent = tx_burst(d.ring.next_seq, want, now);
		for (unsigned i = 0; i < sent; i++)
			lg_flow_sent(&d.ring, now, in_window(now));
		return;
	}
	if (o.rate) {
		uint64_t due = (uint64_t)((double)now * (double)o.rate / 1e9);

		if (due <= d.issued)
			return;
		want = (unsigned)RTE_MIN(due - d.issued, (uint64_t)DP_BURST);
	}
	sent = tx_burst(d.gseq, want, now);
	d.gseq += sent;
	if (o.rate) {
		/* Open loop keeps its schedule: what the port refused is skipped, not delayed. */
		d.issued += want;
		QG_COUNTER_ADD(&d.st->live.tx_skipped, want - sent);
		if (in_window(now))
			QG_COUNTER_ADD(&d.st->meas.tx_skipped, want - sent);
	}
}

/* Closed loop: declare lost what is older than the timeout (oldest first). */
static void expire(uint64_t now, uint64_t age)
{
	struct lg_flow *f = &d.ring;

	while (f->tail != f->next_seq) {
		struct lg_slot *s = &f->ring[f->tail & f->mask];

		if (s->state != LG_SLOT_FREE) {
			if (now - s->sent_ns < age)
				return;
			count(&d.st->live.lost, &d.st->meas.lost, s->state == LG_SLOT_MEASURED);
			s->state = LG_SLOT_FREE;
			f->inflight--;
		}
		f->tail++;
	}
}

/* ---- run ----------------------------------------------------------------------- */

static int resolve_gateway(void)
{
	uint8_t buf[128], sip[16];
	uint64_t until = now_ns() + 5000000000ULL, next = 0;
	uint32_t len, low = rte_cpu_to_be_32(d.src4);

	memcpy(sip, o.src_ip, 16);
	memcpy(sip + (o.family == AF_INET ? 0 : 12), &low, 4);
	while (o.has_dst_mac != 2) {
		uint64_t now = now_ns();

		if (now > until || stop) {
			fprintf(stderr, "qgate-loadgen: no ARP/ND answer from the gateway within 5 s\n");
			return -EHOSTUNREACH;
		}
		if (now >= next) {
			static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, zero[6];

			if (o.family == AF_INET)
				len = lg_arp_build(buf, 1, bcast, o.src_mac, sip, zero, o.gw);
			else
				len = lg_nd_build(buf, 135, o.src_mac, sip, NULL, NULL, o.gw);
			reply_frame(d.tx, buf, len);
			flush_out(d.tx);
			next = now + 200000000ULL;
		}
		rx_all();
	}
	return 0;
}

static void live_line(uint64_t now, struct lg_counters *pc, struct lg_hist *ph, struct lg_hist *diff,
		      double secs)
{
	struct lg_counters c = d.st->live;
	uint64_t dtx = c.tx - pc->tx, drx = c.rx - pc->rx, dlost = c.lost - pc->lost;
	double loss;

	lg_hist_diff(diff, &d.st->live_hist, ph);
	/* Open loop knows its losses only at the end: show the shortfall of the second. */
	if (d.rx_next)
		loss = dtx > drx && dtx ? 100.0 * (double)(dtx - drx) / (double)dtx : 0.0;
	else
		loss = drx + dlost ? 100.0 * (double)dlost / (double)(drx + dlost) : 0.0;
	if (!o.quiet)
		fprintf(stderr, "t=%.0fs tx=%.0f pps rx=%.0f pps loss=%.2f%% p50=%.0fus p99=%.0fus%s\n",
			(double)now / 1e9, (double)dtx / secs, (double)drx / secs, loss,
			(double)lg_hist_quantile(diff, 0.5) / 1e3, (double)lg_hist_quantile(diff, 0.99) / 1e3,
			now < d.warm_end ? " (warmup)" : "");
	*pc = c;
	memcpy(ph, &d.st->live_hist, sizeof(*ph));
}

static void on_signal(int sig)
{
	(void)sig;
	stop = stop ? 2 : 1; /* first: stop sending and drain; second: skip the drain */
}

static void report(uint64_t meas_end, struct lg_hist *h)
{
	struct lg_report rep;
	struct rusage ru;
	char *buf = NULL;
	size_t sz = 0;
	FILE *mf;
	double dur = meas_end > d.warm_end ? (double)(meas_end - d.warm_end) / 1e9 : 0.0;
	double dd = dur > 0 ? dur : 1e-9;

	memset(&rep, 0, sizeof(rep));
	rep.c = d.st->meas;
	if (d.rx_next) {
		/* Open loop: whatever was sent in the window and not answered in time is lost. */
		uint64_t ok = rep.c.rx + rep.c.mismatched;

		rep.c.lost = rep.c.tx > ok ? rep.c.tx - ok : 0;
	}
	getrusage(RUSAGE_SELF, &ru);
	rep.mode = o.mode == DP_ECHO ? "dpdk-echo" : "dpdk-forward";
	rep.target = o.target_text;
	rep.payload = o.payload == LG_PAYLOAD_QUIC ? "quic" : "udp";
	rep.open_loop = d.rx_next != NULL;
	rep.flows = o.flows;
	rep.window = d.rx_next ? 0 : o.window;
	rep.size = o.size;
	rep.threads = 1;
	rep.rate = o.rate;
	rep.duration_s = dur;
	rep.warmup_s = o.warmup_s;
	rep.timeout_ms = o.timeout_ms;
	rep.cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	rep.hist = h;
	if (!o.json)
		lg_report_text(stdout, &rep);
	/* Same fields as socket mode, then the DPDK ones before the closing brace. */
	mf = open_memstream(&buf, &sz);
	if (!mf)
		return;
	lg_report_json(mf, &rep);
	fclose(mf);
	while (sz && buf[sz - 1] == '\n')
		buf[--sz] = '\0';
	if (sz && buf[sz - 1] == '}')
		buf[--sz] = '\0';
	printf("%s,\"tx_mpps\":%.4f,\"rx_mpps\":%.4f,\"reflected\":%llu,\"out_dropped\":%llu,"
	       "\"src_ips\":%u,\"tx_port\":\"%s\",\"rx_port\":\"%s\",\"lcore\":%u}\n",
	       buf, (double)rep.c.tx / dd / 1e6, (double)rep.c.rx / dd / 1e6, (unsigned long long)d.reflected,
	       (unsigned long long)d.out_dropped, o.src_ips, o.tx_name, o.rx_name, rte_lcore_id());
	fflush(stdout);
	free(buf);
}

static int run(void)
{
	struct lg_counters pc = { 0 };
	struct lg_hist *hb = calloc(3, sizeof(*hb));
	uint64_t now, last_scan = 0, last_live, stop_ns = 0, drain_end = 0;
	int sending = 1;

	if (!hb)
		return -ENOMEM;
	/* The measured clock starts now that the ports are up and the gateway is known. */
	d.tsc0 = rte_rdtsc();
	d.warm_end = (uint64_t)(o.warmup_s * 1e9);
	d.end = d.warm_end + (uint64_t)(o.duration_s * 1e9);
	last_live = 0;
	for (;;) {
		now = now_ns();
		if (sending && (stop || now >= d.end)) {
			sending = 0;
			stop_ns = stop ? now : d.end;
			drain_end = now + d.timeout_ns;
		}
		if (sending)
			tx_step(now);
		rx_all();
		if (now - last_scan >= DP_SCAN_NS) {
			last_scan = now;
			if (!d.rx_next)
				expire(now, d.timeout_ns);
		}
		if (now - last_live >= 1000000000ULL && sending) {
			live_line(now, &pc, &hb[0], &hb[1], (double)(now - last_live) / 1e9);
			last_live = now;
		}
		/* Drain: wait for the last answers up to the timeout (closed loop: until none is left). */
		if (!sending && (stop > 1 || now >= drain_end || (!d.rx_next && !d.ring.inflight)))
			break;
	}
	if (!d.rx_next)
		expire(UINT64_MAX, 0);
	lg_hist_add(&hb[2], &d.st->meas_hist);
	report(stop_ns < d.end ? stop_ns : d.end, &hb[2]);
	free(hb);
	return 0;
}

static uint32_t ring_size(void)
{
	uint32_t sz = 64;

	/* 4x the window so a straggler does not stall the window until it times out. */
	while (sz < 4ULL * o.window)
		sz <<= 1;
	return sz;
}

int lg_dpdk_main(int argc, char **argv)
{
	struct sigaction sa;
	int err;

	if (parse_options(argc, argv))
		return 2;
	if (eal_init(argv[0]))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	d.ns_mult = (uint64_t)(((unsigned __int128)1000000000ULL << 32) / rte_get_tsc_hz());
	d.tsc0 = rte_rdtsc();
	d.timeout_ns = (uint64_t)o.timeout_ms * 1000000ULL;
	d.st = rte_zmalloc("lg_stats", sizeof(*d.st), RTE_CACHE_LINE_SIZE);
	d.pool = rte_pktmbuf_pool_create("lg_pool", DP_NB_MBUF, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!d.st || !d.pool || lg_model_init(&d.model, o.payload, o.size)) {
		fprintf(stderr, "qgate-loadgen: out of memory (mbuf pool: %s)\n", rte_strerror(rte_errno));
		err = -ENOMEM;
		goto out;
	}
	if (!o.rate_given)
		err = lg_flow_init(&d.ring, 0, ring_size());
	else
		err = (d.rx_next = calloc(o.flows, sizeof(*d.rx_next))) ? 0 : -ENOMEM;
	if (err)
		goto out;
	d.tx = d.rx = &d.port[0];
	err = port_setup(&d.port[0], o.tx_name);
	if (err)
		goto out;
	d.n_ports = 1;
	if (strcmp(o.tx_name, o.rx_name)) {
		d.rx = &d.port[1];
		err = port_setup(&d.port[1], o.rx_name);
		if (err)
			goto out;
		d.n_ports = 2;
	}
	d.tx->is_tx = 1;
	d.rx->is_rx = 1;
	if (!o.has_src_mac)
		memcpy(o.src_mac, d.tx->mac, 6);
	memcpy(d.tx->mac, o.src_mac, 6);
	if (!o.quiet)
		fprintf(stderr, "qgate-loadgen: waiting for %s%s%s to come up\n", o.tx_name,
			d.n_ports > 1 ? " and " : "", d.n_ports > 1 ? o.rx_name : "");
	err = wait_links();
	if (!err && !o.has_dst_mac)
		err = resolve_gateway();
	if (err)
		goto out;
	build_template();
	if (!o.quiet)
		fprintf(stderr,
			"qgate-loadgen: ports up on lcore %u, %s -> %s, dst mac "
			"%02x:%02x:%02x:%02x:%02x:%02x\n",
			rte_lcore_id(), o.tx_name, o.rx_name, o.dst_mac[0], o.dst_mac[1], o.dst_mac[2],
			o.dst_mac[3], o.dst_mac[4], o.dst_mac[5]);
	err = run();
out:
	for (unsigned i = 0; i < d.n_ports; i++) {
		rte_eth_dev_stop(d.port[i].id);
		rte_eth_dev_close(d.port[i].id);
	}
	lg_flow_free(&d.ring);
	free(d.rx_next);
	lg_model_free(&d.model);
	rte_eal_cleanup();
	return err ? 1 : 0;
}
