/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the files of the bridge core only: bridge.c (life cycle, the
 * loop, inbound links, the rings), bridge_backend.c (the outbound pools),
 * bridge_probe.c (the probes) and bridge_sendq.c (the links' send queues).
 * Everything here belongs to the bridge thread, except the counters and the
 * pools' published figures, which it writes with relaxed atomic stores for
 * the control thread to read.
 */
#ifndef QG_BRIDGE_INTERNAL_H
#define QG_BRIDGE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "bridge_ring.h"
#include "qgate/bridge.h"
#include "qgate/clock.h"

#define LINK_IDX_BITS 20
#define LINK_IDX_MASK ((1u << LINK_IDX_BITS) - 1)
#define LINK_GEN_MASK 0xfffu
#define NONE	      0xffffffffu
#define RX_BUDGET     64  /* SDUs read from one link per event: links share the thread fairly */
#define RING_BUDGET   256 /* messages taken from one worker's ring per pass */
#define MAX_EVENTS    64
#define DEFAULT_MTU   672 /* L2CAP's BR/EDR default, when a link cannot tell */

/* Single-writer counters: a relaxed store, no read-modify-write, readable from any thread. */
#define CTR_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define PUB(field, v)	  __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

enum ev_type {
	EV_WAKE = 1, /* a worker rang: its ring has messages */
	EV_STOP,
	EV_LISTEN,
	EV_LINK,
};

enum link_state {
	LINK_FREE = 0,
	LINK_CONNECTING,
	LINK_UP,
};

struct link {
	int fd;
	uint8_t state;
	uint8_t out;	/* outbound (to a backend path) */
	uint8_t probe;	/* outbound: its path's probe link (bridge_probe.c), never bound to a flow */
	uint16_t gen;	/* bumped when the slot is freed */
	uint32_t owner; /* inbound: bridges[] index; outbound: path index */
	uint32_t worker;
	uint32_t tag; /* outbound: the bound flow's tag, NONE = idle */
	uint32_t imtu, omtu;
	/*
	 * The send queue (bridge_sendq.c): datagrams the socket could not take
	 * yet, or sent before an outbound link connected, in order. Lengths in
	 * q_len[] (a ring of sendq_sdus), bytes in q_buf (a ring of sendq_bytes,
	 * a datagram may wrap), both the link slot's for good: never allocated
	 * per datagram.
	 */
	uint32_t *q_len;
	uint8_t *q_buf;
	uint32_t q_head, q_n;	 /* first entry, entries */
	uint32_t q_off, q_bytes; /* first byte, bytes queued */
	uint8_t q_armed;	 /* EPOLLOUT is in the link's epoll registration */
	uint32_t next_free;
};

struct listener {
	int fd;
	uint32_t active;   /* links open now */
	uint32_t failures; /* consecutive failed opens */
	uint64_t next_ms;
	int last_err;
};

/* The outbound pool of one Bluetooth backend path. */
struct bpath {
	struct qg_config_path cfg;	    /* a copy: the bridge outlives a reloaded configuration */
	const struct qg_config_bridge *via; /* into qg_bridge.br, NULL = any adapter */
	uint32_t svc, backend, path;
	uint32_t *links; /* links_per_path link indexes, NONE = empty */
	uint32_t n_links;
	/* Published for qg_bridge_get_path_info() (PUB), read plainly here. */
	uint32_t connected, bound, connecting, failures;
	uint64_t next_ms;
	char svc_name[QG_CONFIG_NAME_MAX];
	/* Active probes (bridge_probe.c): a link of its own, so no reply ever meets a flow. */
	const uint8_t *probe_send; /* NULL: its service has no probe */
	uint32_t probe_send_len;
	uint8_t probe_kind; /* enum qg_config_probe */
	uint8_t probe_in_flight;
	uint8_t probe_unsent; /* in flight, waiting for the probe link to connect */
	char probe_expect[QG_CONFIG_PROBE_TEXT_MAX];
	uint32_t probe_interval_ms, probe_timeout_ms;
	uint32_t probe_link;	   /* link index, NONE = none */
	uint32_t probe_link_fails; /* consecutive failed connects of the probe link */
	uint64_t probe_link_next_ms;
	uint64_t probe_next_ms, probe_deadline_ms;
	uint64_t probe_sent_ns;
	/* Published (PUB) for qg_bridge_get_path_info(). */
	uint64_t probes, probe_failures;
	uint8_t probe_link_up;
};

/* Probe results toward the control thread: a fixed array, one producer (bridge) and one consumer. */
#define PROBE_RING_SIZE 256u /* a power of two */
struct probe_ring {
	uint32_t head __attribute__((aligned(64))); /* written by the bridge thread */
	uint32_t tail __attribute__((aligned(64))); /* written by the control thread */
	uint64_t dropped;			    /* results lost to a full ring (bridge thread) */
	struct qg_bridge_probe_result r[PROBE_RING_SIZE];
};

struct qg_bridge {
	/* Copied from the configuration at create: nothing points into it afterwards. */
	uint32_t n_br;
	struct qg_config_bridge br[QG_CONFIG_MAX_BRIDGES];
	char svc_name[QG_CONFIG_MAX_BRIDGES][QG_CONFIG_NAME_MAX]; /* each bridge's service, for logs */

	struct qg_bridge_opts o;
	struct qg_bridge_rings *rings;
	int epfd, stop_efd;
	pthread_t thread;
	int started;
	int stop;

	uint32_t n_links;
	struct link *links;
	uint32_t free_head;
	uint8_t *q_mem;	     /* n_links x sendq_bytes: the links' send queues */
	uint32_t *q_len_mem; /* n_links x sendq_sdus */

	struct listener *lis; /* one per bridges[] entry */
	uint32_t n_paths;
	struct bpath *paths;
	struct qg_bridge_stats *ctr; /* n_br + 1: the last is the outbound links' */

	uint32_t *held; /* per worker: a to_worker slot taken and not yet filled, NONE = none */
	uint8_t *ring_rang;
	uint8_t *scratch; /* max_datagram: SDUs that have nowhere to go */

	struct probe_ring *probe_ring;
	int probe_efd;	   /* signalled when results were queued */
	int probe_rang;	   /* results queued in this poll pass */
	uint8_t *probe_vn; /* the QUIC VN probe (probe quic_vn), NULL when no path needs it */
	uint32_t probe_vn_len;
};

static inline uint64_t qg_brg_now(const struct qg_bridge *b)
{
	return b->o.clock_ms ? b->o.clock_ms(b->o.clock_ctx) : qg_clock_ms();
}

static inline uint64_t qg_brg_ev(enum ev_type t, uint32_t idx)
{
	return (uint64_t)t << 32 | idx;
}

static inline uint32_t qg_brg_link_id(const struct qg_bridge *b, const struct link *l)
{
	return (uint32_t)(l->gen & LINK_GEN_MASK) << LINK_IDX_BITS | (uint32_t)(l - b->links);
}

/* backoff_min doubled `failures` times, at most backoff_max. */
static inline uint64_t qg_brg_backoff(const struct qg_bridge *b, uint32_t failures)
{
	uint64_t d = b->o.backoff_min_ms;

	while (failures-- && d < b->o.backoff_max_ms)
		d <<= 1;
	return d < b->o.backoff_max_ms ? d : b->o.backoff_max_ms;
}

static inline struct qg_bridge_stats *qg_brg_out_ctr(struct qg_bridge *b)
{
	return &b->ctr[b->n_br];
}

static inline void qg_brg_path_publish(struct bpath *p)
{
	PUB(p->connected, p->connected);
	PUB(p->bound, p->bound);
	PUB(p->connecting, p->connecting);
	PUB(p->failures, p->failures);
	PUB(p->next_ms, p->next_ms);
}

/* bridge_backend.c */
/**
 * Start connecting link l of path p: the socket (non-blocking), registered
 * for EPOLLOUT (connected or failed). @return the fd or -errno.
 */
int qg_brg_link_dial(struct qg_bridge *b, const struct bpath *p, const struct link *l);

/* bridge.c */
struct link *qg_brg_link_alloc(struct qg_bridge *b);
/** Put a link that never opened back on the free list. */
void qg_brg_link_free(struct qg_bridge *b, struct link *l);
/** Close a link, tell its worker when notify (F_CLOSE), update its pool or listener. */
void qg_brg_link_close(struct qg_bridge *b, struct link *l, int notify, uint64_t now);
/** The counters a link's traffic goes to: its bridge's, or the outbound links'. */
struct qg_bridge_stats *qg_brg_link_ctr(struct qg_bridge *b, const struct link *l);
/** Read the link's MTUs from the socket layer (after it connected or was accepted). */
void qg_brg_link_fill_mtu(struct qg_bridge *b, struct link *l);

/* bridge_sendq.c */
/** Give every link slot its part of the queue memory (at create). 0 or -ENOMEM. */
int qg_brg_sendq_init(struct qg_bridge *b);
/**
 * Send one datagram on an up or connecting link, never blocking: at once when nothing waits
 * and the socket takes it, else behind what waits in the link's queue. Dropped and counted
 * when over the peer's MTU or the queue is full; a socket error closes the link.
 */
void qg_brg_link_send(struct qg_bridge *b, struct link *l, const void *data, uint32_t len, uint64_t now);
/** Send the link's queue in order until the socket is full (EPOLLOUT on) or the queue empty (off). */
void qg_brg_link_flush(struct qg_bridge *b, struct link *l, uint64_t now);
/** Forget what the link's queue holds (counted tx_dropped): the link closes or its flow ended. */
void qg_brg_sendq_discard(struct qg_bridge *b, struct link *l);

/* bridge_probe.c */
/** Set up the probes of every path whose service has one (after qg_brg_make_paths). 0 or -errno. */
int qg_brg_probe_init(struct qg_bridge *b, const struct qg_config *cfg, uint64_t now);
/** Free what qg_brg_probe_init() made. */
void qg_brg_probe_fini(struct qg_bridge *b);
/** Probe links and probes that are due, timeouts. @return when something is next due. */
uint64_t qg_brg_probe_tick(struct qg_bridge *b, uint64_t now);
/** A probe link connected (or failed to). */
void qg_brg_probe_connect_done(struct qg_bridge *b, struct link *l, uint64_t now);
/** A probe link has data (replies) or hung up. */
void qg_brg_probe_readable(struct qg_bridge *b, struct link *l, uint32_t events, uint64_t now);
/** A probe link closed (called by qg_brg_link_close before the slot is freed). */
void qg_brg_probe_link_closed(struct qg_bridge *b, struct link *l, uint64_t now);
/** Ring the control thread's doorbell when results were queued in this pass. */
void qg_brg_probe_doorbell(struct qg_bridge *b);

/* bridge_backend.c */
/** Build the pools: one per Bluetooth path of cfg's backends. @return 0 or -ENOMEM. */
int qg_brg_make_paths(struct qg_bridge *b, const struct qg_config *cfg);
/** Open links that are due. @return when the next attempt is due (UINT64_MAX: none waits). */
uint64_t qg_brg_maintain_pools(struct qg_bridge *b, uint64_t now);
/** An outbound link turned writable: connected, or failed. */
void qg_brg_connect_done(struct qg_bridge *b, struct link *l, uint64_t now);
/** A worker's BACKEND message. */
void qg_brg_to_backend(struct qg_bridge *b, unsigned w, const struct qg_bridge_slot *s, uint64_t now);

#endif /* QG_BRIDGE_INTERNAL_H */
