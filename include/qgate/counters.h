/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dataplane counters. One X-macro list generates the enum, the names, the
 * descriptions and the kind of every counter; each worker owns a block it
 * increments without atomics (relaxed single-writer stores) and the control
 * thread sums the blocks. Errors on the fast path are counted here, never
 * returned.
 */
#ifndef QGATE_COUNTERS_H
#define QGATE_COUNTERS_H

#include <stdint.h>

#include "qgate/compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Kinds: traffic, flow life cycle, drop (a datagram lost, with its reason), error (I/O trouble). */
#define QG_CTR_KIND_TRAFFIC 0
#define QG_CTR_KIND_FLOW    1
#define QG_CTR_KIND_DROP    2
#define QG_CTR_KIND_ERROR   3

/* X(ID, kind, "name", "description") */
#define QG_CTR_LIST(X)                                                                                       \
	X(RX_CLIENT, QG_CTR_KIND_TRAFFIC, "rx_client", "datagrams received from clients")                    \
	X(RX_BACKEND, QG_CTR_KIND_TRAFFIC, "rx_backend", "datagrams received from backends")                 \
	X(TX_BACKEND, QG_CTR_KIND_TRAFFIC, "tx_backend", "datagrams sent to backends")                       \
	X(TX_CLIENT, QG_CTR_KIND_TRAFFIC, "tx_client", "datagrams sent to clients")                          \
	X(RX_BYTES, QG_CTR_KIND_TRAFFIC, "rx_bytes",                                                         \
	  "payload bytes received (from clients and backends, dropped ones included)")                       \
	X(TX_BYTES, QG_CTR_KIND_TRAFFIC, "tx_bytes",                                                         \
	  "payload bytes sent (to backends and clients), counted once the send succeeded")                   \
	X(FLOW_CREATED, QG_CTR_KIND_FLOW, "flows_created", "flows created")                                  \
	X(FLOW_EXPIRED, QG_CTR_KIND_FLOW, "flows_expired", "flows removed after their idle timeout")         \
	X(FLOW_EVICTED, QG_CTR_KIND_FLOW, "flows_evicted",                                                   \
	  "oldest flows evicted because the table was full")                                                 \
	X(FLOW_REHOMED, QG_CTR_KIND_FLOW, "flows_rehomed",                                                   \
	  "UDP flows moved off a backend marked down (on_backend_down: rehome)")                             \
	X(FLOW_FLUSHED, QG_CTR_KIND_FLOW, "flows_flushed",                                                   \
	  "flows removed by an operator's flush (qgatectl flush)")                                           \
	X(DROP_OVERSIZE, QG_CTR_KIND_DROP, "oversize", "datagram larger than max_datagram")                  \
	X(DROP_NO_BACKEND, QG_CTR_KIND_DROP, "no_backend", "no backend can take a new flow")                 \
	X(DROP_CLIENT_LIMIT, QG_CTR_KIND_DROP, "client_limit", "client at max_flows_per_client")             \
	X(DROP_FLOW_TABLE_FULL, QG_CTR_KIND_DROP, "flow_table_full", "no flow entry could be freed")         \
	X(DROP_UPSTREAM_EXHAUSTED, QG_CTR_KIND_DROP, "upstream_exhausted", "upstream socket pool exhausted") \
	X(DROP_UPSTREAM_OPEN, QG_CTR_KIND_DROP, "upstream_open", "upstream socket could not be opened")      \
	X(DROP_STALE_REPLY, QG_CTR_KIND_DROP, "stale_reply", "backend datagram for a flow that is gone")     \
	X(DROP_TX_BACKEND, QG_CTR_KIND_DROP, "tx_backend_failed", "send toward a backend failed")            \
	X(DROP_TX_CLIENT, QG_CTR_KIND_DROP, "tx_client_failed", "send toward a client failed")               \
	X(DROP_DRAINING, QG_CTR_KIND_DROP, "draining", "new flow refused while qgate drains at shutdown")    \
	X(DROP_SHED, QG_CTR_KIND_DROP, "shed",                                                               \
	  "new flow refused by graceful degradation (level shed: low priority; essential: all)")             \
	X(DROP_NO_SERVICE, QG_CTR_KIND_DROP, "no_service", "datagram for a service that no longer exists")   \
	X(DROP_OVERLOAD, QG_CTR_KIND_DROP, "overload",                                                       \
	  "new flow refused: the worker is behind (its receive polls came back full for 100 ms)")            \
	X(ERR_RX, QG_CTR_KIND_ERROR, "rx_errors", "receive errors (multishot receive re-armed)")             \
	X(ERR_RX_NOBUFS, QG_CTR_KIND_ERROR, "rx_nobufs", "receive buffers ran out (receive re-armed)")       \
	X(ERR_BACKEND_REFUSED, QG_CTR_KIND_ERROR, "backend_refused",                                         \
	  "ICMP unreachable reported by a backend's upstream socket")                                        \
	X(ERR_SQ_FULL, QG_CTR_KIND_ERROR, "sq_full", "submission queue full, submitted early")               \
	/* The Bluetooth bridge's rings (relay_bridge.c). */                                                 \
	X(BRIDGE_RX, QG_CTR_KIND_TRAFFIC, "bridge_rx",                                                       \
	  "datagrams taken from the Bluetooth bridge (client links, Bluetooth backends)")                    \
	X(BRIDGE_TX, QG_CTR_KIND_TRAFFIC, "bridge_tx",                                                       \
	  "datagrams handed to the Bluetooth bridge (to client links, to Bluetooth backends)")               \
	X(DROP_BRIDGE_RING_FULL, QG_CTR_KIND_DROP, "bridge_ring_full",                                       \
	  "the ring toward the bridge was full")                                                             \
	X(DROP_NO_BRIDGE, QG_CTR_KIND_DROP, "no_bridge",                                                     \
	  "backend reachable only over Bluetooth, and no bridge relays to it")                               \
	X(FLOW_BRIDGE_CLOSED, QG_CTR_KIND_FLOW, "flows_bridge_closed",                                       \
	  "flows ended because their Bluetooth link closed")                                                 \
	X(FLOW_PATH_MOVED, QG_CTR_KIND_FLOW, "flows_path_moved",                                             \
	  "flows moved to their multi-path backend's newly chosen path")                                     \
	X(ERR_BRIDGE_NOBUFS, QG_CTR_KIND_ERROR, "bridge_nobufs",                                             \
	  "no buffer free for a bridge message: it waits in the ring")                                       \
	/* Packet-level (DPDK) backend. */                                                                   \
	X(DROP_NOT_OURS, QG_CTR_KIND_DROP, "not_ours",                                                       \
	  "frame neither for a service, a NAT port of this gateway, nor ARP/ND for its addresses")           \
	X(DROP_MALFORMED_L2, QG_CTR_KIND_DROP, "malformed_l2",                                               \
	  "frame shorter than its Ethernet/VLAN header")                                                     \
	X(DROP_MALFORMED_L3, QG_CTR_KIND_DROP, "malformed_l3", "IP header truncated or inconsistent")        \
	X(DROP_MALFORMED_L4, QG_CTR_KIND_DROP, "malformed_l4", "UDP header truncated or its length wrong")   \
	X(DROP_MALFORMED_FRAGMENT, QG_CTR_KIND_DROP, "malformed_fragment", "IP fragment (not reassembled)")  \
	X(DROP_MALFORMED_EXTHDR, QG_CTR_KIND_DROP, "malformed_ipv6_exthdr",                                  \
	  "IPv6 packet with extension headers (not walked)")                                                 \
	X(DROP_MALFORMED_ARP, QG_CTR_KIND_DROP, "malformed_arp", "ARP not Ethernet/IPv4, or truncated")      \
	X(DROP_MALFORMED_ND, QG_CTR_KIND_DROP, "malformed_nd",                                               \
	  "neighbour discovery with bad hop limit, code, checksum or length")                                \
	X(DROP_NEIGH_UNRESOLVED, QG_CTR_KIND_DROP, "neigh_unresolved",                                       \
	  "next hop's Ethernet address unknown (ARP/NS sent)")                                               \
	X(DROP_NO_ROUTE, QG_CTR_KIND_DROP, "no_route",                                                       \
	  "destination neither on-link on a port nor reachable through a gateway")                           \
	X(DROP_TTL_EXPIRED, QG_CTR_KIND_DROP, "ttl_expired", "IPv4 TTL / IPv6 hop limit would reach 0")      \
	X(DROP_NAT_FAMILY, QG_CTR_KIND_DROP, "nat_family",                                                   \
	  "client and backend of different address families")                                                \
	X(DROP_TX_FULL, QG_CTR_KIND_DROP, "tx_full", "port TX ring full")                                    \
	X(DROP_HANDOVER_FULL, QG_CTR_KIND_DROP, "handover_full",                                             \
	  "reply for another worker's NAT port: that worker's ring was full")                                \
	X(HANDOVER, QG_CTR_KIND_TRAFFIC, "handover", "replies passed to the worker owning their NAT port")   \
	X(KERNEL_TX, QG_CTR_KIND_TRAFFIC, "kernel_tx",                                                       \
	  "frames not ours passed to the kernel through the port's kernel_tap")                              \
	X(KERNEL_RX, QG_CTR_KIND_TRAFFIC, "kernel_rx", "frames the kernel sent out through a kernel_tap")    \
	X(DROP_KERNEL_FULL, QG_CTR_KIND_DROP, "kernel_full",                                                 \
	  "the kernel_tap's queue toward the kernel was full")                                               \
	X(ARP_REPLIES, QG_CTR_KIND_TRAFFIC, "arp_replies",                                                   \
	  "ARP replies sent for owned, VIP and NAT addresses")                                               \
	X(ND_REPLIES, QG_CTR_KIND_TRAFFIC, "nd_replies",                                                     \
	  "neighbour advertisements sent in answer to solicitations")                                        \
	X(NEIGH_REQUESTS, QG_CTR_KIND_TRAFFIC, "neigh_requests",                                             \
	  "ARP requests and neighbour solicitations sent")                                                   \
	X(ERR_MBUF_ALLOC, QG_CTR_KIND_ERROR, "mbuf_alloc_failed", "no mbuf for an ARP request or NS")        \
	X(DROP_QUIC_MALFORMED, QG_CTR_KIND_DROP, "quic_malformed", "QUIC header truncated or inconsistent")  \
	X(DROP_QUIC_INITIAL_SMALL, QG_CTR_KIND_DROP, "quic_initial_small",                                   \
	  "Initial-bearing datagram under min_initial_size")                                                 \
	X(DROP_QUIC_RATE_LIMITED, QG_CTR_KIND_DROP, "quic_rate_limited",                                     \
	  "new connection over the per-source rate")                                                         \
	X(DROP_QUIC_VERSION, QG_CTR_KIND_DROP, "quic_unsupported_version",                                   \
	  "unlisted version too small to answer")                                                            \
	X(DROP_QUIC_NO_FLOW, QG_CTR_KIND_DROP, "quic_no_connection",                                         \
	  "short header or VN for no known connection and no route")                                         \
	X(QUIC_VN_SENT, QG_CTR_KIND_TRAFFIC, "quic_vn_sent", "Version Negotiation packets qgate answered")   \
	X(QUIC_RETRY_SENT, QG_CTR_KIND_TRAFFIC, "quic_retry_sent",                                           \
	  "Retry packets qgate answered token-less Initials with (retry: on)")                               \
	X(QUIC_RETRY_VALIDATED, QG_CTR_KIND_FLOW, "quic_retry_validated",                                    \
	  "new connections admitted on a valid Retry token")                                                 \
	X(DROP_QUIC_RETRY_TOKEN_INVALID, QG_CTR_KIND_DROP, "quic_retry_token_invalid",                       \
	  "Initial whose Retry token is forged, expired, for another address or another CID")                \
	X(DROP_QUIC_RETRY_UNVALIDATED, QG_CTR_KIND_DROP, "quic_retry_unvalidated",                           \
	  "0-RTT or Handshake packet for no connection while retry is on (address not validated)")           \
	X(QUIC_LB_ROUTED, QG_CTR_KIND_FLOW, "quic_lb_routed", "new flows routed by a QUIC-LB server ID")     \
	X(QUIC_CID_ROUTED, QG_CTR_KIND_FLOW, "quic_cid_routed",                                              \
	  "datagrams routed by a learned connection ID")                                                     \
	X(QUIC_CID_PEER_ROUTED, QG_CTR_KIND_FLOW, "quic_cid_peer_routed",                                    \
	  "new flows for connections another worker learned (a client rebound across workers)")              \
	X(ERR_CID_SHARE_FULL, QG_CTR_KIND_ERROR, "cid_share_full",                                           \
	  "connection IDs not told to another worker: its ring was full")                                    \
	X(QUIC_MIGRATED, QG_CTR_KIND_FLOW, "quic_migrations",                                                \
	  "connections that moved to a new client address")                                                  \
	X(QUIC_CID_LEARNED, QG_CTR_KIND_FLOW, "quic_cids_learned",                                           \
	  "connection IDs learned (client first DCID, server SCIDs)")                                        \
	X(ERR_QUIC_LB_UNKNOWN_SID, QG_CTR_KIND_ERROR, "quic_lb_unknown_server_id",                           \
	  "QUIC-LB CID naming no configured backend")                                                        \
	X(ERR_QUIC_CID_FULL, QG_CTR_KIND_ERROR, "quic_cid_table_full",                                       \
	  "connection ID not learned: table full")

/** Counter identifiers. */
enum qg_ctr_id {
#define QG_CTR_ENUM(id, kind, name, desc) QG_CTR_##id,
	QG_CTR_LIST(QG_CTR_ENUM)
#undef QG_CTR_ENUM
	QG_CTR__COUNT
};

/** One worker's counters, on their own cache lines. */
struct qg_ctr_block {
	uint64_t v[QG_CTR__COUNT];
} QG_CACHE_ALIGNED;

/** Add to a counter of the calling worker's own block. */
static inline void qg_ctr_add(struct qg_ctr_block *b, enum qg_ctr_id id, uint64_t n)
{
	QG_COUNTER_ADD(&b->v[id], n);
}

/** Read a counter of any block (from another thread). */
static inline uint64_t qg_ctr_read(const struct qg_ctr_block *b, enum qg_ctr_id id)
{
	return QG_LOAD_RELAXED(&b->v[id]);
}

/** Name of a counter ("rx_client", "oversize", ...). */
const char *qg_ctr_name(enum qg_ctr_id id);

/** One-line description of a counter. */
const char *qg_ctr_desc(enum qg_ctr_id id);

/** Kind of a counter (QG_CTR_KIND_*). */
int qg_ctr_kind(enum qg_ctr_id id);

/** Sum n blocks into out (relaxed reads; for the control thread). */
void qg_ctr_sum(const struct qg_ctr_block *blocks, unsigned n, struct qg_ctr_block *out);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_COUNTERS_H */
