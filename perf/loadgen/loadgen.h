/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen internals shared by the I/O drivers (kernel sockets today,
 * DPDK later): the traffic model (packet layout, per-flow outstanding ring)
 * and the statistics (latency histogram, counters, JSON summary). Nothing
 * here does I/O, so another driver reuses it unchanged.
 */
#ifndef QGATE_PERF_LOADGEN_H
#define QGATE_PERF_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qgate/compiler.h"

/* ---- Traffic model ------------------------------------------------------ */

#define LG_MAGIC	    0x474c4751u /* "QGLG" little endian */
#define LG_STAMP_LEN	    24		/* magic u32, flow u32, seq u64, send time u64 */
#define LG_QUIC_CID_LEN	    8		/* SCID, and the DCID without --quic-lb */
#define LG_QUIC_MAX_CID_LEN 20		/* QUIC v1 */
#define LG_QUIC_INITIAL_MIN 1200	/* RFC 9000 14.1: client Initials are padded to 1200 */
/* Long header without its DCID: byte0, version, dcid len, scid len+8, token len, length(2), pn. */
#define LG_QUIC_LONG_FIXED  19
#define LG_QUIC_LONG_HDR    (LG_QUIC_LONG_FIXED + LG_QUIC_CID_LEN)
#define LG_QUIC_SHORT_HDR   (1 + LG_QUIC_CID_LEN)
#define LG_QUIC_MAX_HDR	    (LG_QUIC_LONG_FIXED + LG_QUIC_MAX_CID_LEN)
#define LG_MAX_DATAGRAM	    65507
#define LG_QUIC_LB_MAX_SIDS 4096

enum lg_payload {
	LG_PAYLOAD_UDP = 0,
	LG_PAYLOAD_QUIC,
};

/*
 * --quic-lb CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX] and --server-ids HEX,...:
 * every flow's DCID is a QUIC-LB CID (draft-ietf-quic-load-balancers-21)
 * naming server ID sids[flow % n_sids], as if the server had issued it, so a
 * QUIC-LB load balancer decodes and routes every packet.
 */
struct lg_quic_lb {
	int enabled;
	uint8_t config_id, sid_len, nonce_len;
	int has_key;
	uint8_t key[16];
	const char *sids_text; /* --server-ids as given, parsed by lg_quic_lb_finish() */
	uint32_t n_sids;
	uint8_t *sids; /* n_sids * sid_len bytes */
};

/* Parse --quic-lb. @return 0 or -EINVAL with *why set. */
int lg_quic_lb_parse(const char *s, struct lg_quic_lb *lb, const char **why);
/* After all options: parse --server-ids against --quic-lb. @return 0 or -EINVAL/-ENOMEM with *why set. */
int lg_quic_lb_finish(struct lg_quic_lb *lb, enum lg_payload payload, const char **why);
void lg_quic_lb_free(struct lg_quic_lb *lb);
/* "CONFIG_ID:SID_LEN:NONCE_LEN" (never the key) for the summary. */
void lg_quic_lb_describe(const struct lg_quic_lb *lb, char *buf, size_t cap);

/* What every flow sends; read-only once built, shared by all threads. */
struct lg_model {
	enum lg_payload payload;
	uint32_t size;	       /* UDP payload of ordinary datagrams */
	uint32_t initial_size; /* QUIC: the first datagram of a flow (>= 1200) */
	uint32_t max_size;
	uint32_t cid_nonce; /* makes connection IDs unique per run too */
	uint8_t *filler;    /* max_size bytes: the bytes after the stamp, checked on reply */
	uint32_t dcid_len;  /* QUIC: LG_QUIC_CID_LEN, or the QUIC-LB CID length */
	uint32_t n_cids;    /* flows with a precomputed DCID (QUIC-LB) */
	uint8_t *cids;	    /* n_cids * dcid_len bytes, flow f's at f * dcid_len; NULL without QUIC-LB */
};

enum lg_slot_state {
	LG_SLOT_FREE = 0,
	LG_SLOT_WARMUP,	  /* in flight, sent outside the measured window */
	LG_SLOT_MEASURED, /* in flight, counts in the summary */
};

/* One datagram in flight. */
struct lg_slot {
	uint64_t seq;
	uint64_t sent_ns;
	uint32_t state;
};

/*
 * One flow = one source port. Sequence numbers are consecutive, so the ring
 * slot of seq is seq & mask and every lookup is O(1); tail is the oldest
 * unresolved sequence number, which is also the first to time out because
 * send times grow with seq.
 */
struct lg_flow {
	uint32_t id; /* global, carried in every datagram */
	int fd;
	uint64_t next_seq;
	uint64_t tail;
	uint32_t inflight;
	uint32_t mask;
	struct lg_slot *ring;
};

int lg_model_init(struct lg_model *m, enum lg_payload payload, uint32_t size);
void lg_model_free(struct lg_model *m);

/*
 * Give every one of flows flows its QUIC-LB DCID, encoded once here (the
 * AES passes are not paid per packet). Both the Initial and the short
 * headers carry it. @return 0, -ENOMEM or -EIO (OpenSSL).
 */
int lg_model_set_quic_lb(struct lg_model *m, const struct lg_quic_lb *lb, uint32_t flows);

/* Header lengths of the model's QUIC packets (0 for UDP payloads). */
static inline uint32_t lg_short_hdr_len(const struct lg_model *m)
{
	return m->payload == LG_PAYLOAD_QUIC ? 1 + m->dcid_len : 0;
}

static inline uint32_t lg_long_hdr_len(const struct lg_model *m)
{
	return m->payload == LG_PAYLOAD_QUIC ? LG_QUIC_LONG_FIXED + m->dcid_len : 0;
}

/* Where the stamp of a datagram of ours starts. */
static inline uint32_t lg_stamp_offset(const struct lg_model *m, const uint8_t *buf, size_t len)
{
	if (m->payload != LG_PAYLOAD_QUIC || len == 0)
		return 0;
	return (buf[0] & 0x80) ? lg_long_hdr_len(m) : lg_short_hdr_len(m);
}

/* Write the DCID of flow (dcid_len bytes). */
void lg_put_dcid(const struct lg_model *m, uint32_t flow, uint8_t *p);

/* Allocate the ring (ring_size a power of two). @return 0 or -ENOMEM. */
int lg_flow_init(struct lg_flow *f, uint32_t id, uint32_t ring_size);
void lg_flow_free(struct lg_flow *f);

/* Write datagram seq of flow f stamped with now_ns into buf (max_size bytes); returns its length. */
size_t lg_build(const struct lg_model *m, const struct lg_flow *f, uint64_t seq, uint64_t now_ns,
		uint8_t *buf);

/* Read flow id and sequence number of a reply. @return 0 or -EBADMSG when it is not ours. */
int lg_parse(const struct lg_model *m, const uint8_t *buf, size_t len, uint32_t *flow, uint64_t *seq);

/* 1 when buf is byte for byte what lg_build() produced for (f, seq, sent_ns). */
int lg_verify(const struct lg_model *m, const struct lg_flow *f, uint64_t seq, uint64_t sent_ns,
	      const uint8_t *buf, size_t len);

static inline int lg_flow_has_room(const struct lg_flow *f)
{
	return f->next_seq - f->tail <= f->mask;
}

/* Record that the next sequence number went out at now_ns. */
static inline void lg_flow_sent(struct lg_flow *f, uint64_t now_ns, int measured)
{
	struct lg_slot *s = &f->ring[f->next_seq & f->mask];

	s->seq = f->next_seq++;
	s->sent_ns = now_ns;
	s->state = measured ? LG_SLOT_MEASURED : LG_SLOT_WARMUP;
	f->inflight++;
}

/* Skip resolved slots so tail is the oldest datagram still in flight. */
static inline void lg_flow_advance(struct lg_flow *f)
{
	while (f->tail != f->next_seq && f->ring[f->tail & f->mask].state == LG_SLOT_FREE)
		f->tail++;
}

/* The in-flight slot of seq, or NULL when seq is not (or no longer) outstanding. */
static inline struct lg_slot *lg_flow_lookup(struct lg_flow *f, uint64_t seq)
{
	struct lg_slot *s = &f->ring[seq & f->mask];

	if (seq - f->tail >= f->next_seq - f->tail || s->state == LG_SLOT_FREE || s->seq != seq)
		return NULL;
	return s;
}

static inline void lg_flow_resolve(struct lg_flow *f, struct lg_slot *s)
{
	s->state = LG_SLOT_FREE;
	f->inflight--;
	if (s->seq == f->tail)
		lg_flow_advance(f);
}

/* ---- Statistics --------------------------------------------------------- */

/*
 * Log-linear histogram of nanoseconds (HDR-like): values below 128 have a
 * bucket each, above that every power of two is split into 64 buckets, so a
 * bucket is at most 1/64 of its value wide and the midpoint we report is
 * within 0.8%. Fixed size, no allocation when recording.
 */
#define LG_HIST_SUB	64
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + (64 - 7) * LG_HIST_SUB)

struct lg_hist {
	uint64_t count[LG_HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

static inline unsigned lg_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * LG_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6; /* v >> shift lands in [64, 127] */
	return 2 * LG_HIST_SUB + (shift - 1) * LG_HIST_SUB + (unsigned)((v >> shift) - LG_HIST_SUB);
}

/* Single writer (the owning thread); other threads read with relaxed loads. */
static inline void lg_hist_record(struct lg_hist *h, uint64_t v)
{
	unsigned i = lg_hist_index(v);

	QG_COUNTER_ADD(&h->count[i], 1);
	QG_COUNTER_ADD(&h->total, 1);
	if (v > h->max)
		QG_STORE_RELAXED(&h->max, v);
}

/* dst += src, reading src with relaxed loads (it may be live). */
void lg_hist_add(struct lg_hist *dst, const struct lg_hist *src);
/* dst = a - b (b an older snapshot of a); max is a's. */
void lg_hist_diff(struct lg_hist *dst, const struct lg_hist *a, const struct lg_hist *b);
/* The value (ns) at quantile q (0..1]; 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

struct lg_counters {
	uint64_t tx;
	uint64_t rx;
	uint64_t lost;
	uint64_t mismatched;
	uint64_t late;	     /* replies to datagrams already counted lost, or duplicates */
	uint64_t tx_skipped; /* open loop: the flow's ring was full, datagram not sent */
	uint64_t tx_bursts;  /* DPDK: transmit bursts offered to the port */
	uint64_t tx_full;    /* DPDK: of which the port took only part: the device's receive ring was full */
};

/* Per thread: "live" covers the whole run (for the 1 s line), "meas" only the measured window. */
struct lg_stats {
	struct lg_counters live QG_CACHE_ALIGNED;
	struct lg_counters meas QG_CACHE_ALIGNED;
	struct lg_hist live_hist QG_CACHE_ALIGNED;
	struct lg_hist meas_hist QG_CACHE_ALIGNED;
};

void lg_counters_add(struct lg_counters *dst, const struct lg_counters *src);

/*
 * Share of transmit bursts the port took only in part (DPDK; 0 without bursts).
 * It tells who limited a run: a device under test that keeps up leaves room in
 * its ring, so near 0 % the generator (or the wire) set the rate, not the device.
 */
double lg_tx_full_pct(const struct lg_counters *c);

/* Everything the JSON summary reports. */
struct lg_report {
	const char *mode; /* "kernel" */
	const char *target;
	const char *payload;
	const char *quic_lb; /* "CONFIG_ID:SID_LEN:NONCE_LEN" or NULL */
	int quic_lb_key;
	uint32_t server_ids;
	int open_loop;
	uint32_t flows, window, size, threads;
	uint64_t rate;
	double duration_s, warmup_s;
	uint32_t timeout_ms;
	double cpu_s; /* user+system CPU of the whole process, to show it was not the bottleneck */
	struct lg_counters c;
	const struct lg_hist *hist;
};

void lg_report_json(FILE *f, const struct lg_report *r);
void lg_report_text(FILE *f, const struct lg_report *r);

/* ---- Command line (opts.c), shared by both drivers ------------------------ */

struct qg_addr;

/* Messages of the options both drivers check the same way. */
#define LG_MSG_TARGET	"--target wants a.b.c.d:port or [v6]:port with a non-zero port"
#define LG_MSG_DURATION "--duration wants seconds, 0.1..86400"
#define LG_MSG_WARMUP	"--warmup wants seconds, 0..3600"
#define LG_MSG_TIMEOUT	"--timeout-ms wants 1..60000"
#define LG_MSG_PAYLOAD	"--payload wants udp or quic"
#define LG_MSG_QUIC_LB_SIZE                                                                      \
	"--size too small for the QUIC-LB CID: >= 2 + SID_LEN + NONCE_LEN + 24 (short header + " \
	"stamp)"

/* A decimal number in min..max (no sign, no trailing text). @return 0 or -EINVAL. */
int lg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int lg_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Seconds (a real number) in min..max. @return 0 or -EINVAL. */
int lg_parse_secs(const char *s, double min, double max, double *out);
/* --payload udp|quic. @return 0 or -EINVAL. */
int lg_parse_payload(const char *s, enum lg_payload *out);
/* --target a.b.c.d:port or [v6]:port, port not 0. @return 0 or -EINVAL. */
int lg_parse_target(const char *s, struct qg_addr *out);
/* --duration, --warmup and --timeout-ms with the ranges of both drivers. @return 0 or -EINVAL. */
int lg_parse_duration(const char *s, double *out);
int lg_parse_warmup(const char *s, double *out);
int lg_parse_timeout_ms(const char *s, uint32_t *out);
/* 1 when a short-header packet with the QUIC-LB CID and the stamp fits in size bytes. */
int lg_quic_lb_size_ok(const struct lg_quic_lb *lb, uint32_t size);

#endif /* QGATE_PERF_LOADGEN_H */
