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
 * Files: dpdk_opts.c (command line), dpdk_tmpl.c (frame templates),
 * dpdk_arp.c (ARP/ND), dpdk_net.c (frame parsing and building), this one
 * (ports, receive, send, run, report).
 *
 * forward: open loop tx port -> device -> rx port; one-way latency.
 * echo:    the rx port reflects every UDP datagram (it plays the backends),
 *          the tx port measures round trips; closed loop with --window
 *          datagrams in flight in total, or open loop with --rate.
 */
#include <errno.h>
#include <getopt.h>
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
#include <rte_prefetch.h>

#include "qgate/compiler.h"
#include "dpdk_priv.h"

struct dp_state dps;
volatile sig_atomic_t dp_stop;

/* ---- setup ----------------------------------------------------------------- */

static int eal_init(const char *prog)
{
	static char buf[4096];
	char *argv[DP_MAX_EAL_ARG + 4];
	char lc[16];
	int argc = 0, r;

	argv[argc++] = (char *)prog;
	snprintf(buf, sizeof(buf), "%s", dpo.eal ? dpo.eal : "");
	for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= DP_MAX_EAL_ARG)
			return dp_bad("too many EAL arguments");
		if (dpo.lcore >= 0 && (!strcmp(t, "-l") || !strcmp(t, "-c") || !strncmp(t, "--lcores", 8)))
			return dp_bad("--lcore and an EAL core list exclude each other");
		argv[argc++] = t;
	}
	if (dpo.lcore >= 0) {
		snprintf(lc, sizeof(lc), "%d", dpo.lcore);
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
		r = rte_eth_rx_queue_setup(p->id, 0, nrx, rte_eth_dev_socket_id(p->id), NULL, dps.pool);
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
	uint64_t until = dp_now_ns() + (uint64_t)dpo.link_timeout_s * 1000000000ULL;

	for (unsigned i = 0; i < dps.n_ports; i++) {
		struct rte_eth_link l;

		for (;;) {
			memset(&l, 0, sizeof(l));
			rte_eth_link_get_nowait(dps.port[i].id, &l);
			if (l.link_status == RTE_ETH_LINK_UP)
				break;
			if (dp_now_ns() > until || dp_stop) {
				fprintf(stderr, "qgate-loadgen: port %u is down after %u s\n", dps.port[i].id,
					dpo.link_timeout_s);
				return -ETIMEDOUT;
			}
			rte_delay_us_sleep(10000);
		}
	}
	return 0;
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
	dps.reflected++;
	dp_queue_out(p, m);
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
	struct lg_stats *st = dps.st;
	struct lg_flow fake;
	struct lg_slot *s = NULL;
	uint64_t seq, sent, lat;
	uint32_t flow, ip;
	uint16_t port;
	uint32_t off = lg_stamp_offset(&dps.model, f->payload, f->payload_len);

	if (lg_parse(&dps.model, f->payload, f->payload_len, &flow, &seq) || flow >= dpo.flows) {
		count(&st->live.mismatched, &st->meas.mismatched, dp_in_window(now));
		return;
	}
	memcpy(&sent, f->payload + off + 16, 8);
	fake.id = flow;
	if (!dps.rx_next) {
		s = lg_flow_lookup(&dps.ring, seq * dpo.flows + flow);
		if (!s) {
			count(&st->live.late, &st->meas.late, dp_in_window(now));
			return;
		}
		sent = s->sent_ns;
	}
	if (!lg_verify(&dps.model, &fake, seq, sent, f->payload, f->payload_len) ||
	    (dpo.check_csum && !csum_ok(f))) {
		count(&st->live.mismatched, &st->meas.mismatched,
		      s ? s->state == LG_SLOT_MEASURED : dp_in_window(sent));
		if (s)
			lg_flow_resolve(&dps.ring, s);
		return;
	}
	if (dpo.mode == DP_ECHO) {
		/* The reply must reach the very client that sent it: NAT state not crossed. */
		dp_flow_addr(flow, &ip, &port);
		if (memcmp(f->l3 + (f->v6 ? 36 : 16), &ip, 4) || memcmp(f->l4 + 2, &port, 2)) {
			count(&st->live.mismatched, &st->meas.mismatched, dp_in_window(sent));
			if (s)
				lg_flow_resolve(&dps.ring, s);
			return;
		}
	}
	lat = now - sent;
	if (s) {
		lg_flow_resolve(&dps.ring, s);
	} else if (lat > dps.timeout_ns || seq < dps.rx_next[flow]) {
		/* Open loop: past the timeout (already lost) or a duplicate / reordered copy. */
		count(&st->live.late, &st->meas.late, dp_in_window(now));
		return;
	} else {
		dps.rx_next[flow] = seq + 1;
	}
	QG_COUNTER_ADD(&st->live.rx, 1);
	lg_hist_record(&st->live_hist, lat);
	if (dp_in_window(sent)) {
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
	now = dp_now_ns(); /* one clock read per burst: it arrived together */
	for (uint16_t i = 0; i < n; i++) {
		uint8_t *fr = rte_pktmbuf_mtod(m[i], uint8_t *);
		struct lg_frame f;
		enum lg_frame_kind k;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void *));
		k = m[i]->nb_segs == 1 ? lg_frame_parse(fr, m[i]->data_len, &f) : LG_FRAME_OTHER;
		if (k == LG_FRAME_UDP) {
			if (dpo.mode == DP_ECHO && p->is_rx &&
			    (!p->is_tx || !dp_is_client_ip(f.l3 + (f.v6 ? 24 : 16), f.v6))) {
				reflect(p, m[i], fr, &f);
				continue;
			}
			if (dpo.mode == DP_ECHO ? p->is_tx : p->is_rx)
				measure(&f, now);
		} else if (k == LG_FRAME_ARP) {
			dp_handle_arp(p, &f);
		} else if (k == LG_FRAME_ND) {
			dp_handle_nd(p, fr, &f);
		}
		rte_pktmbuf_free(m[i]);
	}
	dp_flush_out(p);
}

static void rx_all(void)
{
	for (unsigned i = 0; i < dps.n_ports; i++)
		rx_port(&dps.port[i]);
}

/* ---- send -------------------------------------------------------------------- */

/* Send up to want datagrams starting at global sequence g; returns how many left. */
static unsigned tx_burst(uint64_t g, unsigned want, uint64_t now)
{
	struct rte_mbuf *m[DP_BURST];
	unsigned sent;

	if (rte_pktmbuf_alloc_bulk(dps.pool, m, want))
		return 0;
	dp_build_burst(m, want, g, now);
	sent = rte_eth_tx_burst(dps.tx->id, 0, m, (uint16_t)want);
	if (sent < want)
		rte_pktmbuf_free_bulk(m + sent, want - sent);
	/* A ring-full burst means the device, not this generator, limited the rate (lg_tx_full_pct). */
	QG_COUNTER_ADD(&dps.st->live.tx, sent);
	QG_COUNTER_ADD(&dps.st->live.tx_bursts, 1);
	QG_COUNTER_ADD(&dps.st->live.tx_full, sent < want);
	if (dp_in_window(now)) {
		QG_COUNTER_ADD(&dps.st->meas.tx, sent);
		QG_COUNTER_ADD(&dps.st->meas.tx_bursts, 1);
		QG_COUNTER_ADD(&dps.st->meas.tx_full, sent < want);
	}
	return sent;
}

static void tx_step(uint64_t now)
{
	unsigned want = DP_BURST, sent;

	if (!dps.rx_next) {
		/* Closed loop: refill the window; sequence numbers stay consecutive. */
		uint32_t room = dps.ring.mask + 1 - (uint32_t)(dps.ring.next_seq - dps.ring.tail);

		if (dps.ring.inflight >= dpo.window)
			return;
		want = RTE_MIN(want, RTE_MIN(dpo.window - dps.ring.inflight, room));
		if (!want)
			return;
		sent = tx_burst(dps.ring.next_seq, want, now);
		for (unsigned i = 0; i < sent; i++)
			lg_flow_sent(&dps.ring, now, dp_in_window(now));
		return;
	}
	if (dpo.rate) {
		uint64_t due = (uint64_t)((double)now * (double)dpo.rate / 1e9);

		if (due <= dps.issued)
			return;
		want = (unsigned)RTE_MIN(due - dps.issued, (uint64_t)DP_BURST);
	}
	sent = tx_burst(dps.gseq, want, now);
	dps.gseq += sent;
	if (dpo.rate) {
		/* Open loop keeps its schedule: what the port refused is skipped, not delayed. */
		dps.issued += want;
		QG_COUNTER_ADD(&dps.st->live.tx_skipped, want - sent);
		if (dp_in_window(now))
			QG_COUNTER_ADD(&dps.st->meas.tx_skipped, want - sent);
	}
}

/* Closed loop: declare lost what is older than the timeout (oldest first). */
static void expire(uint64_t now, uint64_t age)
{
	struct lg_flow *f = &dps.ring;

	while (f->tail != f->next_seq) {
		struct lg_slot *s = &f->ring[f->tail & f->mask];

		if (s->state != LG_SLOT_FREE) {
			if (now - s->sent_ns < age)
				return;
			count(&dps.st->live.lost, &dps.st->meas.lost, s->state == LG_SLOT_MEASURED);
			s->state = LG_SLOT_FREE;
			f->inflight--;
		}
		f->tail++;
	}
}

/* ---- run ----------------------------------------------------------------------- */

static void live_line(uint64_t now, struct lg_counters *pc, struct lg_hist *ph, struct lg_hist *diff,
		      double secs)
{
	struct lg_counters c = dps.st->live;
	uint64_t dtx = c.tx - pc->tx, drx = c.rx - pc->rx, dlost = c.lost - pc->lost;
	struct lg_counters delta = { .tx_bursts = c.tx_bursts - pc->tx_bursts,
				     .tx_full = c.tx_full - pc->tx_full };
	double loss;

	lg_hist_diff(diff, &dps.st->live_hist, ph);
	/* Open loop knows its losses only at the end: show the shortfall of the second. */
	if (dps.rx_next)
		loss = dtx > drx && dtx ? 100.0 * (double)(dtx - drx) / (double)dtx : 0.0;
	else
		loss = drx + dlost ? 100.0 * (double)dlost / (double)(drx + dlost) : 0.0;
	if (!dpo.quiet)
		fprintf(stderr,
			"t=%.0fs tx=%.0f pps rx=%.0f pps loss=%.2f%% p50=%.0fus p99=%.0fus "
			"ring_full=%.1f%%%s\n",
			(double)now / 1e9, (double)dtx / secs, (double)drx / secs, loss,
			(double)lg_hist_quantile(diff, 0.5) / 1e3, (double)lg_hist_quantile(diff, 0.99) / 1e3,
			lg_tx_full_pct(&delta), now < dps.warm_end ? " (warmup)" : "");
	*pc = c;
	memcpy(ph, &dps.st->live_hist, sizeof(*ph));
}

static void on_signal(int sig)
{
	(void)sig;
	dp_stop = dp_stop ? 2 : 1; /* first: stop sending and drain; second: skip the drain */
}

static void report(uint64_t meas_end, struct lg_hist *h)
{
	struct lg_report rep;
	struct rusage ru;
	char lb_text[32];
	char *buf = NULL;
	size_t sz = 0;
	FILE *mf;
	double dur = meas_end > dps.warm_end ? (double)(meas_end - dps.warm_end) / 1e9 : 0.0;
	double dd = dur > 0 ? dur : 1e-9;

	memset(&rep, 0, sizeof(rep));
	rep.c = dps.st->meas;
	if (dps.rx_next) {
		/* Open loop: whatever was sent in the window and not answered in time is lost. */
		uint64_t ok = rep.c.rx + rep.c.mismatched;

		rep.c.lost = rep.c.tx > ok ? rep.c.tx - ok : 0;
	}
	getrusage(RUSAGE_SELF, &ru);
	rep.mode = dpo.mode == DP_ECHO ? "dpdk-echo" : "dpdk-forward";
	rep.target = dpo.target_text;
	rep.payload = dpo.payload == LG_PAYLOAD_QUIC ? "quic" : "udp";
	if (dpo.quic_lb.enabled) {
		lg_quic_lb_describe(&dpo.quic_lb, lb_text, sizeof(lb_text));
		rep.quic_lb = lb_text;
		rep.quic_lb_key = dpo.quic_lb.has_key;
		rep.server_ids = dpo.quic_lb.n_sids;
	}
	rep.open_loop = dps.rx_next != NULL;
	rep.flows = dpo.flows;
	rep.window = dps.rx_next ? 0 : dpo.window;
	rep.size = dpo.size;
	rep.threads = 1;
	rep.rate = dpo.rate;
	rep.duration_s = dur;
	rep.warmup_s = dpo.warmup_s;
	rep.timeout_ms = dpo.timeout_ms;
	rep.cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	rep.hist = h;
	if (!dpo.json)
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
	       buf, (double)rep.c.tx / dd / 1e6, (double)rep.c.rx / dd / 1e6,
	       (unsigned long long)dps.reflected, (unsigned long long)dps.out_dropped, dpo.src_ips,
	       dpo.tx_name, dpo.rx_name, rte_lcore_id());
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
	dps.tsc0 = rte_rdtsc();
	dps.warm_end = (uint64_t)(dpo.warmup_s * 1e9);
	dps.end = dps.warm_end + (uint64_t)(dpo.duration_s * 1e9);
	last_live = 0;
	for (;;) {
		now = dp_now_ns();
		if (sending && (dp_stop || now >= dps.end)) {
			sending = 0;
			stop_ns = dp_stop ? now : dps.end;
			drain_end = now + dps.timeout_ns;
		}
		if (sending)
			tx_step(now);
		rx_all();
		if (now - last_scan >= DP_SCAN_NS) {
			last_scan = now;
			if (!dps.rx_next)
				expire(now, dps.timeout_ns);
		}
		if (now - last_live >= 1000000000ULL && sending) {
			live_line(now, &pc, &hb[0], &hb[1], (double)(now - last_live) / 1e9);
			last_live = now;
		}
		/* Drain: wait for the last answers up to the timeout (closed loop: until none is left). */
		if (!sending && (dp_stop > 1 || now >= drain_end || (!dps.rx_next && !dps.ring.inflight)))
			break;
	}
	if (!dps.rx_next)
		expire(UINT64_MAX, 0);
	lg_hist_add(&hb[2], &dps.st->meas_hist);
	report(stop_ns < dps.end ? stop_ns : dps.end, &hb[2]);
	free(hb);
	return 0;
}

static uint32_t ring_size(void)
{
	uint32_t sz = 64;

	/* 4x the window so a straggler does not stall the window until it times out. */
	while (sz < 4ULL * dpo.window)
		sz <<= 1;
	return sz;
}

int lg_dpdk_main(int argc, char **argv)
{
	struct sigaction sa;
	int err;

	if (dp_parse_options(argc, argv))
		return 2;
	if (eal_init(argv[0]))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	dps.ns_mult = (uint64_t)(((unsigned __int128)1000000000ULL << 32) / rte_get_tsc_hz());
	dps.tsc0 = rte_rdtsc();
	dps.timeout_ns = (uint64_t)dpo.timeout_ms * 1000000ULL;
	dps.st = rte_zmalloc("lg_stats", sizeof(*dps.st), RTE_CACHE_LINE_SIZE);
	dps.pool = rte_pktmbuf_pool_create("lg_pool", DP_NB_MBUF, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (!dps.st || !dps.pool || lg_model_init(&dps.model, dpo.payload, dpo.size)) {
		fprintf(stderr, "qgate-loadgen: out of memory (mbuf pool: %s)\n", rte_strerror(rte_errno));
		err = -ENOMEM;
		goto out;
	}
	/* Encoded once per flow here, not per packet: the generator pays no AES while sending. */
	if (dpo.quic_lb.enabled) {
		err = lg_model_set_quic_lb(&dps.model, &dpo.quic_lb, dpo.flows);
		if (err) {
			fprintf(stderr, "qgate-loadgen: cannot encode the QUIC-LB CIDs: %s\n",
				strerror(-err));
			goto out;
		}
	}
	/* The client address base: ARP/ND (gateway resolution included) answers for it. */
	memcpy(&dps.src4, dpo.src_ip + (dpo.family == AF_INET ? 0 : 12), 4);
	dps.src4 = rte_be_to_cpu_32(dps.src4);
	if (!dpo.rate_given)
		err = lg_flow_init(&dps.ring, 0, ring_size());
	else
		err = (dps.rx_next = calloc(dpo.flows, sizeof(*dps.rx_next))) ? 0 : -ENOMEM;
	if (err)
		goto out;
	dps.tx = dps.rx = &dps.port[0];
	err = port_setup(&dps.port[0], dpo.tx_name);
	if (err)
		goto out;
	dps.n_ports = 1;
	if (strcmp(dpo.tx_name, dpo.rx_name)) {
		dps.rx = &dps.port[1];
		err = port_setup(&dps.port[1], dpo.rx_name);
		if (err)
			goto out;
		dps.n_ports = 2;
	}
	dps.tx->is_tx = 1;
	dps.rx->is_rx = 1;
	if (!dpo.has_src_mac)
		memcpy(dpo.src_mac, dps.tx->mac, 6);
	memcpy(dps.tx->mac, dpo.src_mac, 6);
	if (!dpo.quiet)
		fprintf(stderr, "qgate-loadgen: waiting for %s%s%s to come up\n", dpo.tx_name,
			dps.n_ports > 1 ? " and " : "", dps.n_ports > 1 ? dpo.rx_name : "");
	err = wait_links();
	if (!err && !dpo.has_dst_mac)
		err = dp_resolve_gateway(rx_all);
	if (!err)
		err = dp_build_template();
	if (err)
		goto out;
	if (!dpo.quiet)
		fprintf(stderr,
			"qgate-loadgen: ports up on lcore %u, %s -> %s, dst mac "
			"%02x:%02x:%02x:%02x:%02x:%02x\n",
			rte_lcore_id(), dpo.tx_name, dpo.rx_name, dpo.dst_mac[0], dpo.dst_mac[1],
			dpo.dst_mac[2], dpo.dst_mac[3], dpo.dst_mac[4], dpo.dst_mac[5]);
	err = run();
out:
	for (unsigned i = 0; i < dps.n_ports; i++) {
		rte_eth_dev_stop(dps.port[i].id);
		rte_eth_dev_close(dps.port[i].id);
	}
	lg_flow_free(&dps.ring);
	free(dps.rx_next);
	dp_free_template();
	lg_model_free(&dps.model);
	lg_quic_lb_free(&dpo.quic_lb);
	rte_eal_cleanup();
	return err ? 1 : 0;
}