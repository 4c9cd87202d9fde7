/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen, DPDK driver entry point. This header has no DPDK includes so
 * loadgen.c can tell a DPDK command line apart (and refuse it clearly) even
 * in a build without libdpdk.
 */
#ifndef QGATE_PERF_LOADGEN_DPDK_H
#define QGATE_PERF_LOADGEN_DPDK_H

#include <string.h>

/* 1 when the command line asks for the DPDK driver (--dpdk or --dpdk=...). */
static inline int lg_dpdk_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--dpdk") || !strncmp(argv[i], "--dpdk=", 7))
			return 1;
	}
	return 0;
}

/* Run the DPDK driver with the whole command line. @return the exit status (0, 1 or 2). */
int lg_dpdk_main(int argc, char **argv);

/* Frame building and parsing for the DPDK driver (dpdk_net.c). */
#ifdef QGATE_LOADGEN_DPDK
#include <stdint.h>

/* One's complement sum of len bytes as native 16-bit words, not folded. */
static inline uint64_t lg_sum16(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint64_t s = 0;
	uint16_t w;

	for (; len >= 2; len -= 2, b += 2) {
		memcpy(&w, b, 2);
		s += w;
	}
	if (len) {
		w = 0;
		memcpy(&w, b, 1);
		s += w;
	}
	return s;
}

/* Fold a sum to 16 bits and invert it: the checksum field value. */
static inline uint16_t lg_csum_fold(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	return (uint16_t)~s;
}

#define LG_ETH_HLEN 14

/* Where the UDP datagram of a frame is; filled by lg_frame_parse(). */
struct lg_frame {
	uint8_t *l3;
	uint8_t *l4;
	uint8_t *payload;
	uint32_t payload_len;
	uint16_t ethertype; /* host order */
	uint8_t v6;
	uint8_t proto; /* IP protocol (17 UDP, 58 ICMPv6) */
};

enum lg_frame_kind {
	LG_FRAME_UDP = 0,
	LG_FRAME_ARP,
	LG_FRAME_ND, /* ICMPv6 neighbour solicitation/advertisement */
	LG_FRAME_OTHER,
};

enum lg_frame_kind lg_frame_parse(uint8_t *frame, uint32_t len, struct lg_frame *out);

/* Write an Ethernet+ARP frame (60 bytes with padding); returns its length. */
uint32_t lg_arp_build(uint8_t *buf, uint16_t op, const uint8_t eth_dst[6], const uint8_t smac[6],
		      const uint8_t sip[4], const uint8_t tmac[6], const uint8_t tip[4]);

/*
 * Write a neighbour solicitation (dst_ip NULL: to target's solicited-node
 * multicast group) or advertisement (type 136, solicited + override) with
 * the link-layer address option; returns the frame length.
 */
uint32_t lg_nd_build(uint8_t *buf, uint8_t type, const uint8_t smac[6], const uint8_t sip[16],
		     const uint8_t dmac[6], const uint8_t dip[16], const uint8_t target[16]);

/*
 * Read an ND message: type, target and the link-layer address (option, or
 * the Ethernet source when absent). @return 0 or -EINVAL (not NS/NA, bad hop limit).
 */
int lg_nd_read(const uint8_t *frame, const struct lg_frame *f, uint8_t *type, uint8_t target[16],
	       uint8_t lladdr[6]);
#endif

#endif /* QGATE_PERF_LOADGEN_DPDK_H */
