/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet-level networking for the kernel-bypass (DPDK) backend: parsing of
 * Ethernet/IPv4/IPv6/UDP frames, checksums (full and RFC 1624 incremental),
 * UDP full-NAT rewriting, ARP and IPv6 neighbour discovery messages, and the
 * neighbour table. Pure functions over byte buffers: no EAL, no mbufs, so
 * tests and fuzzers drive them directly. Every parser reads only inside
 * [frame, frame + len).
 */
#ifndef QGATE_NET_H
#define QGATE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "qgate/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QG_NET_ETH_ALEN	      6
#define QG_NET_ETHERTYPE_IPV4 0x0800
#define QG_NET_ETHERTYPE_ARP  0x0806
#define QG_NET_ETHERTYPE_IPV6 0x86dd
#define QG_NET_ETHERTYPE_VLAN 0x8100

/** What a frame is, as far as the gateway cares. */
enum qg_net_kind {
	QG_NET_UDP = 0,	  /**< an unfragmented UDP datagram (IPv4 or IPv6) */
	QG_NET_ARP,	  /**< an ARP packet (Ethernet/IPv4) */
	QG_NET_ND,	  /**< ICMPv6 neighbour solicitation or advertisement */
	QG_NET_OTHER,	  /**< well formed but nothing the gateway handles (TCP, ICMP, LLDP, ...) */
	QG_NET_MALFORMED, /**< truncated or inconsistent: see the reason */
};

/** Why a frame was refused (one per-core counter each). */
enum qg_net_bad {
	QG_NET_BAD_NONE = 0,
	QG_NET_BAD_L2,	     /**< shorter than an Ethernet header, or a VLAN tag cut short */
	QG_NET_BAD_L3,	     /**< IP header truncated, bad version/IHL, total length beyond the frame */
	QG_NET_BAD_L4,	     /**< UDP header truncated or its length inconsistent with IP's */
	QG_NET_BAD_FRAGMENT, /**< an IPv4 fragment or IPv6 fragment header (not reassembled) */
	QG_NET_BAD_EXTHDR,   /**< IPv6 extension headers (not walked) */
	QG_NET_BAD_ARP,	     /**< ARP that is not Ethernet/IPv4, or truncated */
	QG_NET_BAD_ND,	     /**< ND with hop limit != 255, bad code, bad checksum or truncated */
};

/** Offsets and fields of a parsed frame (all offsets from the frame start). */
struct qg_net_pkt {
	uint16_t ethertype;   /**< host order, after any single VLAN tag */
	uint16_t vlan;	      /**< VLAN id (host order), 0 when untagged */
	uint16_t l3_off;      /**< IP (or ARP) header */
	uint16_t l4_off;      /**< UDP (or ICMPv6) header */
	uint16_t payload_off; /**< UDP payload */
	uint16_t payload_len; /**< UDP payload length (from the UDP header) */
	uint8_t l4_proto;     /**< IP protocol number */
	uint8_t bad;	      /**< enum qg_net_bad when kind is MALFORMED */
	struct qg_addr src;   /**< source IP and UDP port (port 0 when not UDP) */
	struct qg_addr dst;   /**< destination IP and UDP port */
};

/**
 * Parse an Ethernet frame (one optional 802.1Q tag). IPv4 options are
 * skipped; a UDP datagram is reported only when it is complete in the frame.
 * Ethernet padding after the IP total length is ignored.
 * @return the kind; for QG_NET_MALFORMED, out->bad says why.
 */
enum qg_net_kind qg_net_parse(const uint8_t *frame, uint32_t len, struct qg_net_pkt *out);

/**
 * Internet checksum (one's complement sum, folded and inverted) of len bytes,
 * in network byte order as stored in a header (memcpy it into the field).
 */
uint16_t qg_net_csum(const void *data, size_t len);

/**
 * RFC 1624 eqn. 3 incremental update of a checksum field (network byte
 * order as stored in the header) when 16-bit words old[] become new[]
 * (n_words words, network byte order). @return the new checksum field value.
 */
uint16_t qg_net_csum_replace(uint16_t csum, const uint16_t *old_words, const uint16_t *new_words,
			     size_t n_words);

/** 1 when the IPv4 header checksum and the UDP checksum of a parsed UDP frame are valid (UDP/IPv4 0 = none).
 */
int qg_net_checksums_ok(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p);

/** Compute and store the IPv4 header checksum and the UDP checksum of a parsed UDP frame from scratch. */
void qg_net_checksums_fill(uint8_t *frame, const struct qg_net_pkt *p);

/**
 * Full NAT of a parsed UDP frame, in place: the source becomes new_src (IP
 * and port), the destination new_dst, the Ethernet addresses src_mac/dst_mac.
 * Same address family only. IPv4 TTL / IPv6 hop limit are decremented (the
 * gateway forwards). The IPv4 header checksum and the UDP checksum are
 * updated incrementally (RFC 1624); a UDP/IPv4 checksum of 0 stays 0.
 * @return 0, -EAFNOSUPPORT when families differ, -ETIMEDOUT when the TTL
 *         would reach 0 (the frame is not modified then).
 */
int qg_net_nat_rewrite(uint8_t *frame, struct qg_net_pkt *p, const struct qg_addr *new_src,
		       const struct qg_addr *new_dst, const uint8_t src_mac[QG_NET_ETH_ALEN],
		       const uint8_t dst_mac[QG_NET_ETH_ALEN]);

/** A parsed ARP packet (Ethernet/IPv4 only). */
struct qg_net_arp {
	uint16_t op; /**< 1 request, 2 reply */
	uint8_t sender_mac[QG_NET_ETH_ALEN];
	uint8_t target_mac[QG_NET_ETH_ALEN];
	uint8_t sender_ip[4];
	uint8_t target_ip[4];
};

/** Read the ARP packet of a frame parsed as QG_NET_ARP. 0 or -EINVAL (counted as QG_NET_BAD_ARP). */
int qg_net_arp_read(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p, struct qg_net_arp *out);

/**
 * Write an Ethernet+ARP frame (42 bytes, padded to 60) into buf.
 * eth_dst: the Ethernet destination (broadcast for requests).
 * @return the frame length, or 0 when cap is too small.
 */
uint32_t qg_net_arp_build(uint8_t *buf, uint32_t cap, uint16_t op, const uint8_t eth_dst[QG_NET_ETH_ALEN],
			  const uint8_t sender_mac[QG_NET_ETH_ALEN], const uint8_t sender_ip[4],
			  const uint8_t target_mac[QG_NET_ETH_ALEN], const uint8_t target_ip[4]);

/** A parsed neighbour solicitation (type 135) or advertisement (type 136). */
struct qg_net_nd {
	uint8_t type;
	uint8_t flags;	    /**< NA: R/S/O bits (0x80, 0x40, 0x20) */
	uint8_t has_lladdr; /**< a source (NS) or target (NA) link-layer address option was present */
	uint8_t lladdr[QG_NET_ETH_ALEN];
	uint8_t target[16];		  /**< the target address */
	uint8_t src_ip[16];		  /**< IPv6 source of the packet (:: for DAD) */
	uint8_t src_mac[QG_NET_ETH_ALEN]; /**< Ethernet source */
};

/** Read and validate (hop limit 255, code 0, ICMPv6 checksum) an ND frame parsed as QG_NET_ND. 0 or -EINVAL.
 */
int qg_net_nd_read(const uint8_t *frame, uint32_t len, const struct qg_net_pkt *p, struct qg_net_nd *out);

/**
 * Write a neighbour advertisement for target from (src_mac, target) to
 * (dst_mac, dst_ip) with the target link-layer option, solicited flag as
 * given, override set. @return the frame length, or 0 when cap is too small.
 */
uint32_t qg_net_nd_build_na(uint8_t *buf, uint32_t cap, const uint8_t src_mac[QG_NET_ETH_ALEN],
			    const uint8_t target[16], const uint8_t dst_mac[QG_NET_ETH_ALEN],
			    const uint8_t dst_ip[16], int solicited);

/**
 * Write a neighbour solicitation for target from (src_mac, src_ip) to the
 * target's solicited-node multicast address, with the source link-layer
 * option. @return the frame length, or 0 when cap is too small.
 */
uint32_t qg_net_nd_build_ns(uint8_t *buf, uint32_t cap, const uint8_t src_mac[QG_NET_ETH_ALEN],
			    const uint8_t src_ip[16], const uint8_t target[16]);

/**
 * Neighbour table (IP -> MAC) shared by all workers: lookups are lock-free
 * (one acquire load of the entry's published key and one 64-bit load of its
 * MAC); updates come from the slow path (ARP/ND handling, config) and are
 * serialised by a mutex. Fixed capacity, allocated at creation.
 */
struct qg_neigh_table;

/** Create a table for up to capacity neighbours. 0, -EINVAL or -ENOMEM. */
int qg_neigh_create(uint32_t capacity, struct qg_neigh_table **out);

/** Free it (NULL is fine); no reader may still use it. */
void qg_neigh_destroy(struct qg_neigh_table *t);

/**
 * Learn or refresh ip (port ignored) -> mac. A static entry (from config)
 * is never overwritten by a learned one. @return 0, or -ENOSPC when full.
 */
int qg_neigh_set(struct qg_neigh_table *t, const struct qg_addr *ip, const uint8_t mac[QG_NET_ETH_ALEN],
		 int is_static);

/** Look ip up (port ignored) from any thread. @return 0 and mac, or -ENOENT. */
int qg_neigh_lookup(const struct qg_neigh_table *t, const struct qg_addr *ip, uint8_t mac[QG_NET_ETH_ALEN]);

/**
 * Changes so far: a reader may cache lookups and trust them while this value
 * is unchanged (one load instead of a probe per packet).
 */
uint64_t qg_neigh_generation(const struct qg_neigh_table *t);

/** Parse "aa:bb:cc:dd:ee:ff". @return 0 or -EINVAL. */
int qg_net_mac_parse(const char *text, uint8_t mac[QG_NET_ETH_ALEN]);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_NET_H */
