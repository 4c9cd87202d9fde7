/* SPDX-License-Identifier: BSD-3-Clause */
/* The relay's per-worker state, shared by relay.c and quic_route.c only. */
#ifndef QG_RELAY_INTERNAL_H
#define QG_RELAY_INTERNAL_H

#include "../quic/cid_share.h"
#include "../quic/cid_table.h"
#include "qgate/flow.h"
#include "qgate/quic_lb.h"
#include "relay.h"

/*
 * Selection hashes use a fixed seed so every worker, and every qgate
 * instance in front of the same pool, sends a client to the same backend.
 * The flow table uses a random seed instead: it is private to a worker.
 */
#define QG_SELECT_SEED 0x71a7e5eed0c0ffeeULL

/* Per-source token buckets for new QUIC connections (per worker; colliding sources share one). */
#define QG_RELAY_TB_SIZE 65536

/*
 * LRU grain of the flow tables (struct qg_flow_table_params): at a million flows a
 * flow sees a datagram every ~100 ms at 10 Mpps, so a second's grain relinks it about
 * once in ten datagrams; eviction stays oldest-first to within a second.
 */
#define QG_RELAY_LRU_GRAIN_MS 1024

/* The relay's use of the flow entry's owner spare (struct qg_flow.user2): see burst_seq below. */
#define QG_RELAY_FLOW_QUEUED_SEQ(f) ((f)->user2)

struct qg_relay_tb {
	uint32_t last_ms;
	uint32_t milli; /* tokens x 1000 */
};

/* A worker's own QUIC state of one service. */
struct qg_relay_quic {
	/*
	 * Lengths of the SCIDs this service's backends chose (seen in their long
	 * headers): a short header does not encode its DCID length, and servers
	 * without QUIC-LB use their own (ngtcp2: 18, many others: 8).
	 */
	uint8_t cid_lens[4];
	uint8_t n_cid_lens;
	struct qg_quic_lb_ring ring;
	struct qg_quic_lb_config *own[QG_CONFIG_QUIC_MAX_LB];
	int has_lb;
};

struct qg_relay {
	const struct qg_io_ops *ops;
	struct qg_io *io;
	const char *up_state; /* the I/O's per-upstream state (ops->upstream_state), NULL when none */
	size_t up_stride;
	struct qg_ctr_block *ctr;
	const struct qg_svc_table *table;
	struct qg_flow_table *flows;
	uint32_t *up_flow; /* upstream -> flow index */
	uint32_t max_upstreams;
	uint32_t n_services; /* of the current table, holes included */
	uint32_t n_slots;
	uint32_t svc_cap;  /* per-service arrays: room for any table a reload brings */
	uint32_t slot_cap; /* per-slot arrays */
	uint32_t flow_cap;
	uint32_t burst;
	uint32_t *svc_uid;	      /* per service: incarnation whose state this worker holds, 0 none */
	uint32_t *svc_ver;	      /* per service: settings version of that state */
	uint32_t *lc_active;	      /* least_conn scratch: a service's slot counts, gathered */
	struct qg_relay_bstat *bstat; /* per backend slot */
	uint32_t *slot_active;	      /* per backend slot: what least_conn compares */
	uint64_t *svc_active;	      /* per service */
	struct qg_wrr **wrr;	      /* per service, NULL unless policy wrr */
	uint32_t *lc_cursor;	      /* per service */
	uint32_t *timeouts;	      /* per service, for the flow table */
	uint32_t *limits;
	struct qg_pkt *to_backend;
	struct qg_pkt *to_client;
	struct qg_pkt *drop;
	uint32_t *hash;			/* per packet of a burst: flow-key hash from the prefetch pass */
	struct qg_relay_quic *quic;	/* per service */
	struct qg_cid_table *cids;	/* NULL when no service speaks QUIC */
	struct qg_cid_share *share;	/* CIDs told to / heard from the other workers; NULL with one */
	struct qg_cid_cache *peer_cids; /* what the other workers learned; NULL without share or QUIC */
	unsigned worker;
	uint32_t now_ms;	     /* for callbacks that take no clock */
	struct qg_relay_bt *bt;	     /* the Bluetooth bridge's rings and tags; NULL without a bridge */
	struct qg_relay_tb *tb;	     /* NULL when no service limits new connections */
	struct qg_retry_keys *retry; /* Retry token keys; NULL when no service has retry: on */
	uint64_t tb_seed;
	uint64_t vn_seq;
	/*
	 * Upstreams of flows removed during a burst while a datagram of that burst
	 * waits to go out on them, closed when the next burst starts (relay.c,
	 * relay_upstream_close()). A flow's QG_RELAY_FLOW_QUEUED_SEQ is the burst_seq
	 * of the last burst that queued a datagram of it toward its backend.
	 */
	struct qg_relay_deferred {
		uint32_t up;
		int reuse;
	} * deferred;
	uint32_t n_deferred, deferred_cap;
	uint32_t burst_seq;
	int in_burst;
	int behind; /* qg_relay_set_behind(): new flows refused until the worker catches up */
};

/* What QUIC routing decided for a client datagram. */
enum {
	QG_QROUTE_FORWARD = 0, /* *flow set: forward to its backend */
	QG_QROUTE_DROP,	       /* counted: release the buffer */
	QG_QROUTE_ANSWER,      /* the packet now holds qgate's answer (VN, Retry): send it to the client */
};

/** Route a client datagram of a quic service (hash: its 4-tuple's flow-table hash). */
int qg_quic_route_client(struct qg_relay *r, struct qg_pkt *p, uint32_t hash, uint32_t now_ms,
			 uint32_t *flow);

/** Learn the SCID of a backend's long-header packet for flow idx. */
void qg_quic_learn_reply(struct qg_relay *r, const struct qg_pkt *p, uint16_t svc, uint32_t idx);

/**
 * (Re)build the worker's QUIC state of service i from the current table:
 * QUIC-LB contexts; Retry keys, token buckets and the CID table are created
 * the first time a service needs them. 0 or -errno.
 */
int qg_quic_relay_svc_init(struct qg_relay *r, uint32_t i);

/** A note from another worker: remember its CID (and its length, for short headers). */
void qg_quic_peer_note(struct qg_relay *r, const struct qg_cid_note *n, uint32_t now_ms);

/** Free service i's QUIC state (QUIC-LB contexts, learned CID lengths). */
void qg_quic_relay_svc_fini(struct qg_relay *r, uint32_t i);

/** Free all QUIC state. */
void qg_quic_relay_fini(struct qg_relay *r);

/* Member index of the backend for a new flow (hash: the flow key's selection hash), or QG_LB_NONE. */
uint32_t qg_relay_select(struct qg_relay *r, uint16_t svc_idx, const struct qg_svc *s, uint64_t hash);

/** The selection hash of a client endpoint under the service's hash mode. */
uint64_t qg_relay_client_hash(const struct qg_svc *s, const struct qg_addr *client);

/** Create the flow of a new client toward member (counted on failure). @return its index or QG_FLOW_NONE. */
uint32_t qg_relay_new_flow_to(struct qg_relay *r, const struct qg_pkt *p, uint32_t member, uint32_t now_ms);

/*
 * The Bluetooth bridge (relay_bridge.c). A flow toward a Bluetooth backend
 * holds QG_RELAY_UP_BT | tag as its upstream, and so do the replies that
 * come back for it: never an I/O upstream (those stay far below 2^31).
 */
#define QG_RELAY_UP_BT 0x80000000u

static inline int qg_relay_up_is_bt(uint32_t up)
{
	return (up & QG_RELAY_UP_BT) && up != QG_FLOW_NONE;
}

/**
 * A tag for new flow `flow` toward member of service svc, a backend reached
 * through the bridge. @return 0 and *up, -ENOTCONN (no bridge, or no
 * Bluetooth path it knows), -ENOSPC (every tag taken).
 */
int qg_relay_bt_open(struct qg_relay *r, uint16_t svc, uint32_t member, uint32_t flow, uint32_t *up);

/** The flow holding tag up ended: tell the bridge (unless it told us) and free the tag. */
void qg_relay_bt_close(struct qg_relay *r, uint32_t up);

/** The flow of tag up (a reply's pkt->upstream), or QG_FLOW_NONE. */
uint32_t qg_relay_bt_flow(const struct qg_relay *r, uint32_t up);

/** Copy p into the ring toward the bridge (a reply to a client link, a datagram to a backend). Counted. */
void qg_relay_bt_send(struct qg_relay *r, const struct qg_pkt *p, int to_client);

/** The Bluetooth path (the bridge's index) a live tag's messages name, QG_SVC_NO_BT when none. */
uint8_t qg_relay_bt_path_of(const struct qg_relay *r, uint32_t up);

/** 1 when a flow on upstream up no longer uses the path be is published with (via_bt, bt_path). */
int qg_relay_path_stale(const struct qg_relay *r, const struct qg_svc_backend *be, uint32_t up);

/**
 * Move flow idx (of service svc, toward member) onto its backend's published
 * path: a new upstream or tag, the old one closed (counted flows_path_moved).
 * When the new one cannot be opened the flow stays where it is.
 */
void qg_relay_path_move(struct qg_relay *r, uint16_t svc, uint32_t member, uint32_t idx);

/** Free the bridge state (after the flows are gone). */
void qg_relay_bt_fini(struct qg_relay *r);

#endif /* QG_RELAY_INTERNAL_H */
