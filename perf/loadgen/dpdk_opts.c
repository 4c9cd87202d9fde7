/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver: command line (usage, parsing, the checks that
 * need several options) into dpo.
 */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "dpdk_priv.h"

struct dp_opts dpo = {
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
		"  --quic-lb CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX], --server-ids HEX,HEX,...\n"
		"                     with --payload quic: each flow's DCID is a QUIC-LB CID naming\n"
		"                     server ID f %% n, encoded once per flow at start\n"
		"  --check-csum       count frames with a wrong IPv4/UDP checksum as mismatched\n"
		"  --link-timeout SEC wait this long for the ports to come up (default 30)\n");
}

int dp_bad(const char *what)
{
	fprintf(stderr, "qgate-loadgen: %s (see --dpdk '' --help)\n", what);
	return -EINVAL;
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

int dp_parse_options(int argc, char **argv)
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
		O_QUIC_LB,
		O_SERVER_IDS,
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
		{ "quic-lb", required_argument, NULL, O_QUIC_LB },
		{ "server-ids", required_argument, NULL, O_SERVER_IDS },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "check-csum", no_argument, NULL, O_CSUM },
		{ "link-timeout", required_argument, NULL, O_LINK },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	uint8_t gw[16];
	uint32_t v, need;
	int c, window_given = 0, sips_given = 0, fam;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case O_DPDK:
			dpo.eal = optarg;
			break;
		case O_LCORE:
			if (lg_parse_u32(optarg, 0, RTE_MAX_LCORE - 1, &v))
				return dp_bad("--lcore wants a CPU number");
			dpo.lcore = (int)v;
			break;
		case O_TX:
			dpo.tx_name = optarg;
			break;
		case O_RX:
			dpo.rx_name = optarg;
			break;
		case O_SMAC:
			if (parse_mac(optarg, dpo.src_mac))
				return dp_bad("--src-mac wants aa:bb:cc:dd:ee:ff");
			dpo.has_src_mac = 1;
			break;
		case O_DMAC:
			if (parse_mac(optarg, dpo.dst_mac))
				return dp_bad("--dst-mac wants aa:bb:cc:dd:ee:ff");
			dpo.has_dst_mac = 1;
			break;
		case O_GW:
			if (!(fam = parse_ip(optarg, gw)))
				return dp_bad("--gateway-ip wants an IPv4 or IPv6 address");
			memcpy(dpo.gw, gw, 16);
			dpo.has_gw = fam;
			break;
		case O_SIP:
			if (!(dpo.has_src_ip = parse_ip(optarg, dpo.src_ip)))
				return dp_bad("--src-ip wants an IPv4 or IPv6 address");
			break;
		case O_SIPS:
			if (lg_parse_u32(optarg, 1, 1u << 24, &dpo.src_ips))
				return dp_bad("--src-ips wants 1..16777216");
			sips_given = 1;
			break;
		case O_SPORT:
			if (lg_parse_u32(optarg, 1, 65535, &dpo.src_port))
				return dp_bad("--src-port wants 1..65535");
			break;
		case O_TARGET:
			dpo.target_text = optarg;
			if (lg_parse_target(optarg, &dpo.target))
				return dp_bad(LG_MSG_TARGET);
			break;
		case O_MODE:
			if (!strcmp(optarg, "forward"))
				dpo.mode = DP_FORWARD;
			else if (!strcmp(optarg, "echo"))
				dpo.mode = DP_ECHO;
			else
				return dp_bad("--mode wants forward or echo");
			break;
		case O_FLOWS:
			if (lg_parse_u32(optarg, 1, DP_MAX_FLOWS, &dpo.flows))
				return dp_bad("--flows wants 1..16777216");
			break;
		case O_SIZE:
			if (lg_parse_u32(optarg, LG_STAMP_LEN, 1452, &dpo.size))
				return dp_bad(
					"--size wants 24..1452 bytes (one frame within a 1500-byte MTU)");
			break;
		case O_RATE:
			if (lg_parse_u64(optarg, 0, 1000000000, &dpo.rate))
				return dp_bad(
					"--rate wants 0..1000000000 packets/s (0: as fast as possible)");
			dpo.rate_given = 1;
			break;
		case O_WINDOW:
			if (lg_parse_u32(optarg, 1, 1u << 20, &dpo.window))
				return dp_bad("--window wants 1..1048576");
			window_given = 1;
			break;
		case O_DURATION:
			if (lg_parse_duration(optarg, &dpo.duration_s))
				return dp_bad(LG_MSG_DURATION);
			break;
		case O_WARMUP:
			if (lg_parse_warmup(optarg, &dpo.warmup_s))
				return dp_bad(LG_MSG_WARMUP);
			break;
		case O_TIMEOUT:
			if (lg_parse_timeout_ms(optarg, &dpo.timeout_ms))
				return dp_bad(LG_MSG_TIMEOUT);
			break;
		case O_PAYLOAD:
			if (lg_parse_payload(optarg, &dpo.payload))
				return dp_bad(LG_MSG_PAYLOAD);
			break;
		case O_QUIC_LB:
			if (lg_quic_lb_parse(optarg, &dpo.quic_lb, &why))
				return dp_bad(why);
			break;
		case O_SERVER_IDS:
			dpo.quic_lb.sids_text = optarg;
			break;
		case O_JSON:
			dpo.json = 1;
			break;
		case O_QUIET:
			dpo.quiet = 1;
			break;
		case O_CSUM:
			dpo.check_csum = 1;
			break;
		case O_LINK:
			if (lg_parse_u32(optarg, 1, 3600, &dpo.link_timeout_s))
				return dp_bad("--link-timeout wants 1..3600 seconds");
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "qgate-loadgen: unknown option or missing value: %s\n",
				argv[optind - 1]);
			return dp_bad("bad option");
		}
	}
	if (optind < argc)
		return dp_bad("unexpected argument");
	if (!dpo.tx_name || !dpo.target_text)
		return dp_bad("--dpdk needs --tx-port and --target");
	if (!dpo.rx_name)
		dpo.rx_name = dpo.tx_name;
	dpo.family = dpo.target.family;
	if (!dpo.has_src_ip)
		parse_ip(dpo.family == AF_INET ? "10.0.0.1" : "fd00::1", dpo.src_ip);
	else if (dpo.has_src_ip != dpo.family)
		return dp_bad("--src-ip and --target must be the same family");
	if (!dpo.has_dst_mac && dpo.has_gw != dpo.family)
		return dp_bad("give --dst-mac, or --gateway-ip of the target's family to resolve it");
	if (lg_quic_lb_finish(&dpo.quic_lb, dpo.payload, &why))
		return dp_bad(why);
	if (dpo.payload == LG_PAYLOAD_QUIC && dpo.size < LG_QUIC_SHORT_HDR + LG_STAMP_LEN)
		return dp_bad("--size must be >= 33 with --payload quic");
	if (!lg_quic_lb_size_ok(&dpo.quic_lb, dpo.size))
		return dp_bad(LG_MSG_QUIC_LB_SIZE);
	if (dpo.family == AF_INET && dpo.size > 1472)
		return dp_bad("--size wants <= 1472 bytes over IPv4");
	if (dpo.mode == DP_FORWARD && window_given)
		return dp_bad("--window is for --mode echo (closed loop)");
	if (dpo.rate_given && window_given)
		return dp_bad("--window (closed loop) and --rate (open loop) exclude each other");
	if (dpo.mode == DP_FORWARD)
		dpo.rate_given = 1; /* forward is always open loop */
	/* Ports per address are src_port..65535: spread the flows over enough addresses. */
	need = (uint32_t)((dpo.flows + (65536 - dpo.src_port) - 1) / (65536 - dpo.src_port));
	if (!sips_given)
		dpo.src_ips = need;
	else if (dpo.src_ips < need)
		return dp_bad("--src-ips too small: flows / src-ips must fit in ports src-port..65535");
	return 0;
}
