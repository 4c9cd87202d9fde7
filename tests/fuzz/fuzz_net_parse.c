/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the kernel-bypass frame code (dataplane/net): any
 * bytes as an Ethernet frame.
 *
 *  - qg_net_parse() classifies it the same way twice, reports offsets and
 *    addresses that are inside the frame and equal to its bytes, ignores
 *    bytes after the IP length (Ethernet padding) and refuses the UDP frame
 *    cut one byte short of it.
 *  - UDP: qg_net_checksums_ok() agrees with qg_net_checksums_fill(); a NAT
 *    rewrite (addresses, ports, MACs from the input's last bytes) on a copy
 *    keeps valid checksums valid, re-parses to the new addresses, and leaves
 *    the frame untouched when it refuses (TTL, family).
 *  - ARP and ND: the readers accept only what they document, and what the
 *    gateway would answer (qg_net_arp_build, qg_net_nd_build_na/_ns) parses
 *    and reads back.
 *  - The readers that re-check their bounds get the parsed pkt with the frame
 *    cut short: ASan sees any read past the cut.
 * Copies live in exactly-sized heap buffers so ASan catches any read beyond
 * them, as it does for libFuzzer's own input buffer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "qgate/net.h"

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define ETH_HLEN 14
#define ND_NS	 135
#define ND_NA	 136

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *dup_exact(const uint8_t *data, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (!p)
		abort();
	if (n)
		memcpy(p, data, n);
	return p;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The input's last bytes, read backwards (missing ones read 0): NAT parameters. */
struct tail {
	const uint8_t *data;
	size_t left;
};

static uint8_t tail_take(struct tail *t)
{
	return t->left ? t->data[--t->left] : 0;
}

static void tail_addr(struct tail *t, int family, struct qg_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
		a->ip[i] = tail_take(t);
	a->port = (uint16_t)(tail_take(t) << 8 | tail_take(t));
}

/* Bounds, kinds and reasons that hold whatever the frame. */
static void check_parse(const uint8_t *f, uint32_t len, enum qg_net_kind k, const struct qg_net_pkt *p)
{
	CHECK(k >= QG_NET_UDP && k <= QG_NET_MALFORMED);
	CHECK((k == QG_NET_MALFORMED) == (p->bad != QG_NET_BAD_NONE));
	CHECK(p->bad <= QG_NET_BAD_ND);
	if (p->bad == QG_NET_BAD_L2) {
		CHECK(len < ETH_HLEN + 4);
		return;
	}
	CHECK(len >= ETH_HLEN);
	CHECK(p->l3_off == ETH_HLEN || p->l3_off == ETH_HLEN + 4);
	CHECK(p->l3_off <= len);
	CHECK((p->l3_off == ETH_HLEN + 4) == (rd16(f + 12) == QG_NET_ETHERTYPE_VLAN));
	CHECK(p->ethertype == rd16(f + p->l3_off - 2));
	if (k == QG_NET_ARP)
		CHECK(p->ethertype == QG_NET_ETHERTYPE_ARP);
	if (k == QG_NET_ND)
		CHECK(p->ethertype == QG_NET_ETHERTYPE_IPV6 && p->l4_proto == 58);
	if (k != QG_NET_UDP)
		return;
	CHECK(p->l4_proto == 17);
	CHECK(p->src.family == p->dst.family);
	if (p->src.family == AF_INET) {
		const uint8_t *ip = f + p->l3_off;

		CHECK(p->ethertype == QG_NET_ETHERTYPE_IPV4);
		CHECK(p->l4_off == p->l3_off + (ip[0] & 0x0f) * 4 && p->l4_off >= p->l3_off + 20);
		CHECK(memcmp(p->src.ip, ip + 12, 4) == 0 && memcmp(p->dst.ip, ip + 16, 4) == 0);
		CHECK((uint32_t)p->l3_off + rd16(ip + 2) <= len);
	} else {
		const uint8_t *ip = f + p->l3_off;

		CHECK(p->src.family == AF_INET6 && p->ethertype == QG_NET_ETHERTYPE_IPV6);
		CHECK(p->l4_off == p->l3_off + 40);
		CHECK(memcmp(p->src.ip, ip + 8, 16) == 0 && memcmp(p->dst.ip, ip + 24, 16) == 0);
		CHECK((uint32_t)p->l3_off + 40 + rd16(ip + 4) <= len);
	}
	CHECK(p->payload_off == p->l4_off + 8);
	CHECK((uint32_t)p->payload_off + p->payload_len <= len);
	CHECK(rd16(f + p->l4_off + 4) == p->payload_len + 8);
	CHECK(memcmp(&p->src.port, f + p->l4_off, 2) == 0 && memcmp(&p->dst.port, f + p->l4_off + 2, 2) == 0);
}

/* The end of the IP datagram of a UDP frame: what a parse must not need beyond. */
static uint32_t ip_end(const uint8_t *f, const struct qg_net_pkt *p)
{
	const uint8_t *ip = f + p->l3_off;

	if (p->src.family == AF_INET)
		return p->l3_off + rd16(ip + 2);
	return p->l3_off + 40u + rd16(ip + 4);
}

/* Bytes after the IP datagram are padding; one byte fewer than it is a truncated datagram. */
static void check_lengths(const uint8_t *data, const struct qg_net_pkt *p)
{
	uint32_t end = ip_end(data, p);
	struct qg_net_pkt q;
	uint8_t *c;
	int rc;

	c = dup_exact(data, end);
	CHECK(qg_net_parse(c, end, &q) == QG_NET_UDP);
	CHECK(memcmp(&q, p, sizeof(q)) == 0);
	free(c);
	c = dup_exact(data, end - 1);
	CHECK(qg_net_parse(c, end - 1, &q) == QG_NET_MALFORMED);
	CHECK(q.bad == QG_NET_BAD_L3);
	/*
	 * A pkt paired with a shorter frame than its own: bounds re-checked,
	 * nothing read past it; refused when the UDP datagram no longer fits.
	 */
	rc = qg_net_checksums_ok(c, end - 1, p);
	CHECK(rc == 0 || rc == 1);
	if ((uint32_t)p->payload_off + p->payload_len > end - 1)
		CHECK(rc == 0);
	free(c);
}

/* A NAT rewrite of a copy; ok_before: the copy's checksums were valid. */
static void check_nat(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p0, int ok_before,
		      const struct qg_addr *ns, const struct qg_addr *nd, const uint8_t smac[6],
		      const uint8_t dmac[6])
{
	uint8_t *c = dup_exact(frame, len);
	struct qg_net_pkt p = *p0, q;
	int is_v6 = p0->src.family == AF_INET6;
	uint8_t hops = frame[p0->l3_off + (is_v6 ? 7 : 8)];
	int rc;

	rc = qg_net_nat_rewrite(c, &p, ns, nd, smac, dmac);
	if (ns->family != p0->src.family || nd->family != p0->src.family) {
		CHECK(rc == -EAFNOSUPPORT);
		CHECK(memcmp(c, frame, len) == 0 && memcmp(&p, p0, sizeof(p)) == 0);
		free(c);
		return;
	}
	if (hops <= 1) {
		CHECK(rc == -ETIMEDOUT);
		CHECK(memcmp(c, frame, len) == 0 && memcmp(&p, p0, sizeof(p)) == 0);
		free(c);
		return;
	}
	CHECK(rc == 0);
	CHECK(c[p0->l3_off + (is_v6 ? 7 : 8)] == hops - 1);
	CHECK(memcmp(c, dmac, 6) == 0 && memcmp(c + 6, smac, 6) == 0);
	/* Everything after the UDP header is the payload: not touched. */
	CHECK(memcmp(c + p0->payload_off, frame + p0->payload_off, len - p0->payload_off) == 0);
	CHECK(qg_net_parse(c, len, &q) == QG_NET_UDP);
	CHECK(qg_addr_equal(&q.src, ns) && qg_addr_equal(&q.dst, nd));
	CHECK(q.payload_off == p0->payload_off && q.payload_len == p0->payload_len);
	CHECK(qg_addr_equal(&p.src, ns) && qg_addr_equal(&p.dst, nd));
	/* RFC 1624 patching keeps a valid checksum valid (and a UDP/IPv4 "none" a none). */
	if (ok_before)
		CHECK(qg_net_checksums_ok(c, len, &q) == 1);
	if (!is_v6 && rd16(frame + p0->l4_off + 6) == 0)
		CHECK(rd16(c + p0->l4_off + 6) == 0);
	free(c);
}

static void check_udp(const uint8_t *data, uint32_t len, const struct qg_net_pkt *p)
{
	static const uint8_t smac[6] = { 0x02, 0, 0, 0, 0, 0x01 }, dmac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	struct tail t = { data, len };
	struct qg_addr ns, nd;
	struct qg_net_pkt q;
	uint8_t *filled;
	int ok;

	ok = qg_net_checksums_ok(data, len, p);
	CHECK(ok == 0 || ok == 1);
	check_lengths(data, p);

	/* Filled from scratch: valid, and nothing but the checksum fields changed. */
	filled = dup_exact(data, len);
	qg_net_checksums_fill(filled, p);
	CHECK(qg_net_checksums_ok(filled, len, p) == 1);
	CHECK(qg_net_parse(filled, len, &q) == QG_NET_UDP && memcmp(&q, p, sizeof(q)) == 0);
	if (ok) {
		/* Valid before: the same bytes except 0 vs 0xffff for UDP and a UDP/IPv4 "none". */
		uint16_t a = rd16(data + p->l4_off + 6), b = rd16(filled + p->l4_off + 6);

		CHECK(a == b || a == 0 || (a ^ b) == 0xffff);
	}

	tail_addr(&t, p->src.family, &ns);
	tail_addr(&t, p->src.family, &nd);
	check_nat(data, len, p, ok, &ns, &nd, smac, dmac);
	check_nat(filled, len, p, 1, &ns, &nd, smac, dmac);
	/* The reply direction: the input's own addresses swapped. */
	check_nat(filled, len, p, 1, &p->dst, &p->src, dmac, smac);
	/* Another family: refused. */
	tail_addr(&t, p->src.family == AF_INET ? AF_INET6 : AF_INET, &nd);
	check_nat(data, len, p, ok, &ns, &nd, smac, dmac);
	free(filled);
}

static void check_arp(const uint8_t *data, uint32_t len, const struct qg_net_pkt *p)
{
	struct qg_net_arp a, b;
	struct qg_net_pkt q;
	uint8_t buf[64];
	uint8_t *c;
	int rc;

	rc = qg_net_arp_read(data, len, p, &a);
	CHECK(rc == 0 || rc == -EINVAL);
	/* Cut short: refused or the same, never read past the cut. */
	for (uint32_t cut = len > 8 ? len - 8 : 0; cut < len; cut++) {
		c = dup_exact(data, cut);
		CHECK(qg_net_arp_read(c, cut, p, &b) == (cut >= p->l3_off + 28u ? rc : -EINVAL));
		free(c);
	}
	if (rc)
		return;
	CHECK(a.op == 1 || a.op == 2);
	CHECK(memcmp(a.sender_mac, data + p->l3_off + 8, 6) == 0);
	CHECK(memcmp(a.target_ip, data + p->l3_off + 24, 4) == 0);
	/* What the gateway sends back reads back the same. */
	CHECK(qg_net_arp_build(buf, 59, a.op, data, a.sender_mac, a.sender_ip, a.target_mac, a.target_ip) ==
	      0);
	CHECK(qg_net_arp_build(buf, sizeof(buf), a.op, data, a.sender_mac, a.sender_ip, a.target_mac,
			       a.target_ip) == 60);
	CHECK(qg_net_parse(buf, 60, &q) == QG_NET_ARP);
	CHECK(qg_net_arp_read(buf, 60, &q, &b) == 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

static void check_nd(const uint8_t *data, uint32_t len, const struct qg_net_pkt *p)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x0a };
	struct qg_net_nd nd, r;
	struct qg_net_pkt q;
	uint8_t buf[128];
	uint32_t n;
	uint8_t *c;
	int rc;

	rc = qg_net_nd_read(data, len, p, &nd);
	CHECK(rc == 0 || rc == -EINVAL);
	if (len > p->l4_off) {
		c = dup_exact(data, len - 1);
		(void)qg_net_nd_read(c, len - 1, p, &r);
		free(c);
	}
	if (rc)
		return;
	CHECK(nd.type == ND_NS || nd.type == ND_NA);
	CHECK(nd.target[0] != 0xff);
	CHECK(data[p->l3_off + 7] == 255);
	CHECK(memcmp(nd.src_ip, data + p->l3_off + 8, 16) == 0);
	CHECK(memcmp(nd.src_mac, data + 6, 6) == 0);

	/* Our advertisement for the target, back to the sender. */
	n = qg_net_nd_build_na(buf, sizeof(buf), mac, nd.target, nd.src_mac, nd.src_ip, 1);
	CHECK(n == 86);
	CHECK(qg_net_nd_build_na(buf + 64, 64, mac, nd.target, nd.src_mac, nd.src_ip, 1) == 0);
	CHECK(qg_net_parse(buf, n, &q) == QG_NET_ND);
	CHECK(qg_net_nd_read(buf, n, &q, &r) == 0);
	CHECK(r.type == ND_NA && r.has_lladdr && memcmp(r.lladdr, mac, 6) == 0);
	CHECK(memcmp(r.target, nd.target, 16) == 0);
	CHECK(!!(r.flags & 0x40) == (nd.src_ip[0] != 0xff));

	/* A solicitation for the same target from the sender's address. */
	n = qg_net_nd_build_ns(buf, sizeof(buf), mac, nd.src_ip, nd.target);
	CHECK(n == 78 || n == 86);
	CHECK(qg_net_parse(buf, n, &q) == QG_NET_ND);
	CHECK(qg_net_nd_read(buf, n, &q, &r) == 0);
	CHECK(r.type == ND_NS && memcmp(r.target, nd.target, 16) == 0);
	CHECK(r.has_lladdr == (n == 86));
}

/* RFC 1624 against a full recomputation, on the input's first words. */
static void check_csum_replace(const uint8_t *data, size_t size)
{
	uint16_t words[32], old_w, new_w, full0, full1, inc;
	size_t n = size / 2 > 32 ? 32 : size / 2;
	size_t at;

	if (n < 2)
		return;
	memcpy(words, data, n * 2);
	full0 = qg_net_csum(words, n * 2);
	at = data[0] % n;
	old_w = words[at];
	memcpy(&new_w, data + size - 2, 2);
	words[at] = new_w;
	full1 = qg_net_csum(words, n * 2);
	inc = qg_net_csum_replace(full0, &old_w, &new_w, 1);
	/* One's complement has two zeros: 0x0000 and 0xffff are the same checksum value. */
	CHECK(inc == full1 || (uint16_t)(inc ^ full1) == 0xffff);
}

static void check_mac_parse(const uint8_t *data, size_t size)
{
	char text[24], back[24];
	uint8_t mac[6];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

	memcpy(text, data, n);
	text[n] = '\0';
	if (qg_net_mac_parse(text, mac))
		return;
	snprintf(back, sizeof(back), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
	CHECK(strcasecmp(text, back) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qg_net_pkt p, p2;
	enum qg_net_kind k;
	uint32_t len;

	/* Frames are at most a jumbo frame; the API takes 32-bit lengths. */
	if (size > 65535)
		return 0;
	len = (uint32_t)size;
	k = qg_net_parse(data, len, &p);
	check_parse(data, len, k, &p);
	/* Same answer and the same bytes (no stale padding) the second time. */
	memset(&p2, 0xa5, sizeof(p2));
	CHECK(qg_net_parse(data, len, &p2) == k && memcmp(&p, &p2, sizeof(p)) == 0);
	switch (k) {
	case QG_NET_UDP:
		check_udp(data, len, &p);
		break;
	case QG_NET_ARP:
		check_arp(data, len, &p);
		break;
	case QG_NET_ND:
		check_nd(data, len, &p);
		break;
	default:
		break;
	}
	check_csum_replace(data, size);
	check_mac_parse(data, size);
	return 0;
}
