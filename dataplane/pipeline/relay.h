/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The UDP relay pipeline of one worker: classify a burst, find or create each
 * datagram's flow, select a backend for new flows, and hand the burst back to
 * the I/O backend split into "toward backends", "toward clients" and drops.
 * It is the same code for every I/O backend: it sees struct qg_pkt only.
 */
#ifndef QG_RELAY_H
#define QG_RELAY_H

#include <stdint.h>

#include "qgate/compiler.h"
#include "qgate/dataplane.h"
#include "qgate/io.h"
#include "svc_table.h"

/** One backend slot's figures in one worker (written by it alone). */
struct qg_relay_bstat {
	uint64_t tx_pkts;
	uint64_t rx_pkts;
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint64_t flows_created;
	uint64_t flows_active;
	uint64_t refused; /* ECONNREFUSED on an upstream of this slot (passive health signal) */
};

struct qg_relay_params {
	const struct qg_io_ops *ops;
	struct qg_io *io;
	struct qg_ctr_block *ctr;
	const struct qg_svc_table *table; /* initial table; later ones via qg_relay_set_table() */
	uint32_t flows;			  /* flow-table capacity */
	uint32_t max_upstreams;		  /* size of the upstream -> flow map */
	uint32_t burst;
	uint32_t slot_cap;	    /* backend slots any table may use (reloads add slots up to this) */
	struct qg_cid_share *share; /* QUIC CIDs shared between workers; NULL with one worker */
	unsigned worker;
	uint64_t seed; /* flow-table hash seed */
};

struct qg_relay;

/** Create a worker's relay state (all memory allocated here). 0 or -errno. */
int qg_relay_create(const struct qg_relay_params *p, struct qg_relay **out);

/** Free it (NULL is fine). Open upstreams are closed. */
void qg_relay_destroy(struct qg_relay *r);

/**
 * Switch to a newer table. Weight and health changes cost nothing; a
 * service whose settings changed (a reload) has its worker state rebuilt,
 * and the flows of a removed service (or one whose listen address changed)
 * are removed. The worker calls it between bursts when it sees a new table.
 */
void qg_relay_set_table(struct qg_relay *r, const struct qg_svc_table *t);

/** Remove the flows of service svc toward backend slot (counted as flows_flushed). @return how many. */
unsigned qg_relay_flush_backend(struct qg_relay *r, uint32_t svc, uint32_t slot);

/** Take the QUIC CIDs other workers announced (call before each burst). */
void qg_relay_take_peer_cids(struct qg_relay *r, uint32_t now_ms);

struct qg_bridge_rings;

/**
 * Relay the Bluetooth bridge's traffic through ring pair `worker` of rings
 * (qgate/bridge.h): before the worker runs. Service indexes in ring
 * messages are those of the current table. @return 0, -EINVAL, -ENOMEM,
 * -ENOTSUP (the I/O backend has no alloc_tx).
 */
int qg_relay_attach_bridge(struct qg_relay *r, struct qg_bridge_rings *rings, unsigned worker);

/**
 * Take up to a burst of the bridge's messages and relay them (worker
 * thread). An empty ring costs two loads, no syscall. @return how many
 * became packets.
 */
unsigned qg_relay_bridge_rx(struct qg_relay *r, uint32_t now_ms);

/**
 * The worker is behind (behind != 0): its receive polls keep coming back
 * full, so datagrams queue in the kernel and each waits for all before it.
 * Until cleared, new flows are refused (counted overload) before any
 * flow-table or socket work; established and re-homed flows are relayed as
 * before. Worker thread, between bursts.
 */
void qg_relay_set_behind(struct qg_relay *r, int behind);

/** Process a received burst; every packet ends up sent or released. */
void qg_relay_burst(struct qg_relay *r, struct qg_pkt *pkts, unsigned n, uint32_t now_ms);

/** An upstream reported ECONNREFUSED: count it on its flow's backend slot (worker thread). */
void qg_relay_upstream_refused(struct qg_relay *r, uint32_t up);

/** Expire idle flows, at most budget. @return how many. */
unsigned qg_relay_expire(struct qg_relay *r, uint32_t now_ms, unsigned budget);

/** Per-slot figures (array of table->n_slots), read with relaxed loads by the control thread. */
const struct qg_relay_bstat *qg_relay_bstats(const struct qg_relay *r);

/** Active flows of a service in this worker. */
uint64_t qg_relay_flows_active(const struct qg_relay *r, unsigned svc);

/** The worker's flow table (read-only use off the fast path, e.g. its memory at start-up). */
const struct qg_flow_table *qg_relay_flow_table(const struct qg_relay *r);

#endif /* QG_RELAY_H */
