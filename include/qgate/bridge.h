/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bluetooth bridge (docs/BLUETOOTH.md). Bluetooth devices become clients of
 * a service (L2CAP listeners, the bridges section) and Bluetooth devices
 * become backends (bt://BDADDR/PSM paths, a pool of outbound L2CAP links per
 * path with reconnect and exponential back-off). One L2CAP SDU is one
 * datagram: an SDU longer than max_datagram, or a datagram longer than the
 * peer's MTU, is dropped and counted, never truncated.
 *
 * The bridge runs on its own thread (epoll over its sockets) and meets the
 * dataplane workers only through shared-memory SPSC rings, one pair per
 * worker:
 *
 *   bridge -> worker w   produced by the bridge thread, consumed by worker w:
 *                        CLIENT  datagrams from Bluetooth client links
 *                        BACKEND replies from Bluetooth backends
 *   worker w -> bridge   produced by worker w, consumed by the bridge thread:
 *                        CLIENT  replies to Bluetooth client links
 *                        BACKEND datagrams to Bluetooth backends
 *
 * A ring is a fixed array of slots (a header and max_datagram bytes each)
 * handed over by index, so nothing is allocated per message and nobody
 * waits: a full ring drops the message and counts it on the producing side.
 * All of a client link's datagrams go to one worker, which is where its
 * replies are expected from (any worker may send them, though): a link is
 * one flow. A backend flow's replies go to the worker that sent its first
 * datagram.
 *
 * The socket layer is an ops table: L2CAP by default, or the AF_UNIX
 * SOCK_SEQPACKET stand-in (same message semantics) the tests use.
 */
#ifndef QGATE_BRIDGE_H
#define QGATE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "qgate/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the rings: the worker's side ---- */

/** What a ring message is about. */
enum qg_bridge_msg_kind {
	QG_BRIDGE_MSG_CLIENT = 0,  /**< a Bluetooth client's link */
	QG_BRIDGE_MSG_BACKEND = 1, /**< a Bluetooth backend's path */
};

/**
 * Flag: no payload, the other side should forget the link or flow.
 * bridge -> worker: CLIENT: the client's link closed (end its flow);
 *                   BACKEND: the flow's backend link was lost (its next
 *                   datagram gets a new link, or rehome it).
 * worker -> bridge: CLIENT: close the client's link;
 *                   BACKEND: the flow ended: its backend link goes back to
 *                   the idle pool (late replies on it are dropped).
 */
#define QG_BRIDGE_MSG_F_CLOSE 0x1

#define QG_BRIDGE_LINK_NONE 0xffffffffu

/** The header of a ring message; the payload travels separately. */
struct qg_bridge_msg {
	uint8_t kind;	  /**< enum qg_bridge_msg_kind */
	uint8_t flags;	  /**< QG_BRIDGE_MSG_F_* */
	uint8_t path;	  /**< BACKEND: index in the backend's paths (a Bluetooth one) */
	uint8_t pad;	  /**< 0 */
	uint32_t svc;	  /**< service index (configuration order) */
	uint32_t backend; /**< BACKEND: backend index within svc; CLIENT: 0 */
	/**
	 * CLIENT: the bridge's id of the link (opaque, stable while the link
	 * lives). BACKEND: the worker's tag of the flow (any value but
	 * QG_BRIDGE_LINK_NONE, unique among the worker's live flows); the
	 * bridge binds one outbound link to each (worker, tag) and returns the
	 * tag with the replies.
	 */
	uint32_t link;
	uint32_t len; /**< payload bytes, 0..max_datagram */
};

/** Counters of one ring direction (each written by one side only). */
struct qg_bridge_ring_stats {
	uint64_t pushed;    /**< messages the producer queued */
	uint64_t full;	    /**< dropped by the producer: no free slot */
	uint64_t oversize;  /**< dropped by the producer: longer than max_datagram */
	uint64_t popped;    /**< messages the consumer took */
	uint64_t truncated; /**< dropped by the consumer: its buffer was too small */
};

struct qg_bridge_rings;

/**
 * Worker w: take the next message from the bridge and copy its payload into
 * buf (cap bytes). Worker w's thread only.
 * @return the payload length (>= 0) with *msg filled; -EAGAIN when the ring
 *         is empty; -EMSGSIZE when cap is too small (the message is dropped
 *         and counted as truncated); -EINVAL for a bad worker index.
 */
int qg_bridge_ring_pop(struct qg_bridge_rings *r, unsigned worker, struct qg_bridge_msg *msg, void *buf,
		       size_t cap);

/**
 * Worker w: queue msg and msg->len bytes of payload for the bridge, and
 * wake the bridge thread when it sleeps. Worker w's thread only; never
 * blocks, never allocates.
 * @return 0; -ENOBUFS when the ring is full and -EMSGSIZE when len exceeds
 *         max_datagram (both dropped and counted); -EINVAL for bad arguments.
 */
int qg_bridge_ring_push(struct qg_bridge_rings *r, unsigned worker, const struct qg_bridge_msg *msg,
			const void *payload);

/**
 * An eventfd (non-blocking) the bridge signals after queueing messages for
 * worker w, for a worker that sleeps in poll/io_uring; read it to reset.
 * Workers that poll the ring every loop may ignore it.
 */
int qg_bridge_ring_worker_fd(const struct qg_bridge_rings *r, unsigned worker);

/** Number of ring pairs (one per worker). */
unsigned qg_bridge_ring_workers(const struct qg_bridge_rings *r);

/** Largest payload a slot holds (the configuration's max_datagram). */
uint32_t qg_bridge_ring_max_datagram(const struct qg_bridge_rings *r);

/** Counters of worker w's rings: to_worker (bridge -> w) and to_bridge (w -> bridge). Any thread. */
void qg_bridge_ring_get_stats(const struct qg_bridge_rings *r, unsigned worker,
			      struct qg_bridge_ring_stats *to_worker, struct qg_bridge_ring_stats *to_bridge);

/* ---- the bridge: control side ---- */

/**
 * The socket layer. Every fd is non-blocking and SOCK_SEQPACKET-like: one
 * send is one message, a receive reports MSG_TRUNC when the message was
 * longer than the buffer, a receive of 0 with a hang-up is the end.
 */
struct qg_bridge_sock_ops {
	/** A listening socket for bridges[] entry br, receiving SDUs up to imtu bytes. @return fd or -errno.
	 */
	int (*listen)(void *ctx, const struct qg_config_bridge *br, uint32_t imtu);
	/** Accept one link on lfd and tell the device's address. @return fd, -EAGAIN, or -errno. */
	int (*accept)(void *ctx, int lfd, uint8_t peer[6]);
	/**
	 * Start connecting to a Bluetooth path through adapter via (NULL: any
	 * adapter, security medium), receiving SDUs up to imtu bytes.
	 * @return fd, connected or in progress (the bridge waits for it to turn
	 * writable and reads SO_ERROR), or -errno.
	 */
	int (*connect)(void *ctx, const struct qg_config_path *to, const struct qg_config_bridge *via,
		       uint32_t imtu);
	/** The link's MTUs: the largest SDU we receive (imtu) and the peer receives (omtu). 0 or -errno. */
	int (*mtu)(void *ctx, int fd, uint32_t *imtu, uint32_t *omtu);
};

/** The L2CAP socket layer (the default). */
extern const struct qg_bridge_sock_ops qg_bridge_l2cap_ops;

/**
 * The AF_UNIX SOCK_SEQPACKET stand-in (abstract socket names under a prefix,
 * so parallel tests do not meet). ctx is a struct qg_bridge_unix.
 */
extern const struct qg_bridge_sock_ops qg_bridge_unix_ops;

/** Context of qg_bridge_unix_ops. */
struct qg_bridge_unix {
	char prefix[48]; /**< namespace of the abstract names, e.g. "qgtest-1234" */
	uint32_t imtu;	 /**< MTUs the links report (0 = 672, L2CAP's BR/EDR default) */
	uint32_t omtu;
	uint32_t sndbuf; /**< SO_SNDBUF of the links (0 = the kernel's): tests shrink it to fill them */
};

/**
 * Unix stand-in, device side: connect to bridges[] entry br's listener as
 * the device bdaddr. @return a blocking fd or -errno.
 */
int qg_bridge_unix_dial(const struct qg_bridge_unix *u, const struct qg_config_bridge *br,
			const uint8_t bdaddr[6]);

/**
 * Unix stand-in, device side: listen as the Bluetooth backend path p (the
 * bridge's outbound links arrive here). @return a blocking listening fd or -errno.
 */
int qg_bridge_unix_serve(const struct qg_bridge_unix *u, const struct qg_config_path *p);

/** Options of qg_bridge_create(); zero fields take the defaults. */
struct qg_bridge_opts {
	unsigned n_workers;	 /**< ring pairs; 0 = one per configured core */
	uint32_t ring_slots;	 /**< slots per ring, a power of two (default 256) */
	uint32_t backoff_min_ms; /**< first reconnect delay (default 250 ms) */
	uint32_t backoff_max_ms; /**< back-off ceiling (default 30 s) */
	uint32_t links_per_path; /**< outbound links per Bluetooth backend path (default 8) */
	uint32_t spare_links;	 /**< idle links kept connected per path, ready for new flows (default 1) */
	/**
	 * Each link's send queue: datagrams its socket cannot take yet (out of
	 * LE credits, a full send buffer, still connecting), sent in order when
	 * it turns writable. At most sendq_sdus datagrams (default 32) and
	 * sendq_bytes bytes (default 32 KiB, raised to max_datagram; at most
	 * QG_BRIDGE_SENDQ_SDUS_MAX and QG_BRIDGE_SENDQ_BYTES_MAX); beyond
	 * that a datagram is dropped (tx_queue_full). Preallocated per link.
	 */
	uint32_t sendq_sdus;
	uint32_t sendq_bytes;
	const struct qg_bridge_sock_ops *ops; /**< NULL = qg_bridge_l2cap_ops */
	void *ops_ctx;
	uint64_t (*clock_ms)(void *ctx); /**< NULL = qg_clock_ms() */
	void *clock_ctx;
};

#define QG_BRIDGE_DEFAULT_RING_SLOTS	 256u
#define QG_BRIDGE_DEFAULT_BACKOFF_MIN_MS 250u
#define QG_BRIDGE_DEFAULT_BACKOFF_MAX_MS 30000u
#define QG_BRIDGE_DEFAULT_LINKS_PER_PATH 8u
#define QG_BRIDGE_DEFAULT_SPARE_LINKS	 1u
#define QG_BRIDGE_DEFAULT_SENDQ_SDUS	 32u
#define QG_BRIDGE_DEFAULT_SENDQ_BYTES	 32768u
#define QG_BRIDGE_SENDQ_SDUS_MAX	 65536u
#define QG_BRIDGE_SENDQ_BYTES_MAX	 (16u << 20)

/** Counters of one bridges[] entry, or of the outbound links (index n_bridges). */
struct qg_bridge_stats {
	uint64_t links_up;	    /**< links accepted (inbound) or connected (outbound) */
	uint64_t links_down;	    /**< links closed, by either side */
	uint64_t links_active;	    /**< open now */
	uint64_t rejected_allow;    /**< inbound: the device is not in allow */
	uint64_t rejected_full;	    /**< inbound: max_links reached */
	uint64_t connect_failures;  /**< outbound: attempts that failed */
	uint64_t listen_failures;   /**< inbound: listener could not be opened (retried) */
	uint64_t rx_sdus, rx_bytes; /**< SDUs received and handed to a worker */
	uint64_t tx_sdus, tx_bytes; /**< datagrams sent on links */
	uint64_t rx_oversize;	    /**< SDUs longer than max_datagram: dropped */
	uint64_t tx_oversize;	    /**< datagrams longer than the peer's MTU: dropped */
	uint64_t tx_dropped;	    /**< the link failed, or closed (or its flow ended) with it queued */
	uint64_t ring_full;	    /**< a worker's ring had no free slot: dropped */
	uint64_t stale;		    /**< for a link or flow that no longer exists: dropped */
	uint64_t no_link;	    /**< outbound: no connected link for a new flow yet: dropped */
	uint64_t tx_queued;	    /**< datagrams that waited in a link's send queue (sent or not) */
	uint64_t tx_queue_full;	    /**< a link's send queue was full: dropped */
};

/** State of one Bluetooth backend path's outbound pool. */
struct qg_bridge_path_info {
	uint32_t svc, backend, path;	  /**< as the configuration the bridge started with numbers them */
	struct qg_config_path key;	  /**< the path itself */
	char service[QG_CONFIG_NAME_MAX]; /**< its service's name */
	uint8_t probed;			  /**< its service has a probe: the bridge probes it */
	uint8_t probe_link_up;		  /**< the probe link is connected */
	uint64_t probes, probe_failures;  /**< probe results reported so far, and failed ones */
	uint32_t connected;		  /**< links up */
	uint32_t bound;			  /**< of which carry a flow */
	uint32_t connecting;		  /**< attempts in progress */
	uint32_t failures;		  /**< consecutive failed attempts (back-off exponent) */
	uint64_t next_try_ms;		  /**< earliest next attempt (0 = now) */
};

struct qg_bridge;

/** 1 when cfg asks for the bridge: a bridges section or a Bluetooth backend path. */
int qg_bridge_configured(const struct qg_config *cfg);

/**
 * Whether this kernel has Bluetooth sockets: 0, or -EAFNOSUPPORT (no
 * Bluetooth in the kernel) / another -errno from socket(AF_BLUETOOTH).
 */
int qg_bridge_probe(void);

/**
 * Create the bridge for cfg: rings for the workers, links tables; no socket
 * is opened before the first poll. What it needs of cfg is copied, so cfg
 * may be freed (a reload) while the bridge runs; service and backend
 * indexes in ring messages stay those of this cfg. opts may be NULL.
 * @return 0, -EINVAL (also: send queue bounds over QG_BRIDGE_SENDQ_*_MAX), -ENOMEM,
 *         -E2BIG (over 2^20 links), or -errno (eventfd, epoll).
 */
int qg_bridge_create(const struct qg_config *cfg, const struct qg_bridge_opts *opts, struct qg_bridge **out);

/** Run qg_bridge_poll() on a thread of its own until qg_bridge_stop(). @return 0 or -errno. */
int qg_bridge_start(struct qg_bridge *b);

/** Stop and join the thread (no-op when not started). Links stay open until destroy. */
void qg_bridge_stop(struct qg_bridge *b);

/** Close every socket and free everything (stops the thread first). NULL is fine. */
void qg_bridge_destroy(struct qg_bridge *b);

/**
 * One turn of the bridge loop, on the caller's thread (tests, or a caller
 * without the thread): (re)open listeners and outbound links that are due,
 * move what the workers queued onto links, wait up to timeout_ms for socket
 * events and handle them. @return 0 or -errno from epoll_wait.
 */
int qg_bridge_poll(struct qg_bridge *b, int timeout_ms);

/** The rings the workers use (live as long as the bridge). */
struct qg_bridge_rings *qg_bridge_get_rings(struct qg_bridge *b);

/** Counters of bridges[] entry idx, or of the outbound links at idx == n_bridges. Any thread. */
int qg_bridge_get_stats(const struct qg_bridge *b, unsigned idx, struct qg_bridge_stats *out);

/** Bluetooth backend paths with an outbound pool. */
unsigned qg_bridge_path_count(const struct qg_bridge *b);

/** The pool of path idx (0..qg_bridge_path_count()-1). Any thread. @return 0 or -ENOENT. */
int qg_bridge_get_path_info(const struct qg_bridge *b, unsigned idx, struct qg_bridge_path_info *out);

/* ---- active probes of Bluetooth paths (docs/BLUETOOTH.md, "Which path") ---- */

/** Why a probe of a Bluetooth path ended as it did. */
enum qg_bridge_probe_why {
	QG_BRIDGE_PROBE_OK = 0,	     /**< the expected reply came back in time */
	QG_BRIDGE_PROBE_TIMEOUT,     /**< no reply within the timeout */
	QG_BRIDGE_PROBE_NO_LINK,     /**< the path had no probe link (connecting failed, or not yet) */
	QG_BRIDGE_PROBE_WRONG_REPLY, /**< a reply that is not the expected one */
	QG_BRIDGE_PROBE_LINK_LOST,   /**< the probe link closed with the probe out */
	QG_BRIDGE_PROBE_SEND_FAILED, /**< the link would not take the probe */
};

/**
 * One probe of a Bluetooth backend path. The bridge probes every path whose
 * service has a probe (health.probe, .send, .expect, .interval, .timeout of
 * the configuration it started with) over a link of its own per path, kept
 * connected like the pools, and queues each result for the control thread.
 */
struct qg_bridge_probe_result {
	uint32_t path;	 /**< index of the path (qg_bridge_get_path_info) */
	uint8_t ok;	 /**< 1: success */
	uint8_t why;	 /**< enum qg_bridge_probe_why */
	uint16_t pad;	 /**< 0 */
	uint32_t rtt_us; /**< ok: from the send to the reply */
	uint64_t at_ms;	 /**< the bridge's clock when the result was known */
};

/**
 * Take the next probe result. The control thread only (one consumer).
 * @return 0 with *out filled, -EAGAIN when there is none.
 */
int qg_bridge_probe_pop(struct qg_bridge *b, struct qg_bridge_probe_result *out);

/**
 * An eventfd (non-blocking) the bridge signals after queueing probe
 * results: poll it for POLLIN, then read it and pop. -1 when b is NULL.
 */
int qg_bridge_probe_fd(const struct qg_bridge *b);

/** "ok", "timeout", "no link", "wrong reply", "link lost", "send failed". */
const char *qg_bridge_probe_why_name(enum qg_bridge_probe_why why);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_BRIDGE_H */
