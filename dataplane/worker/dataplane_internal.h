/* SPDX-License-Identifier: BSD-3-Clause */
/* The dataplane object, shared by dataplane.c (life cycle, control API) and reload.c. */
#ifndef QG_DATAPLANE_INTERNAL_H
#define QG_DATAPLANE_INTERNAL_H

#include <pthread.h>

#include "../pipeline/svc_table.h"
#include "../quic/cid_share.h"
#include "qgate/dataplane.h"
#include "worker.h"

struct qg_dataplane {
	const struct qg_io_ops *ops;
	struct qg_svc_table *table; /* RCU-published */
	unsigned n_workers;
	struct qg_worker *workers;
	pthread_mutex_t ctl_lock; /* serialises control-side writers, never taken by workers */
	int running;
	int setup_done; /* the backend's process-wide setup ran: tear it down last */
	/* Reloads */
	struct qg_config_dataplane dcfg;	    /* what only a restart changes */
	uint32_t slot_cap;			    /* backend slots the workers' arrays hold */
	uint32_t next_uid;			    /* next service incarnation id */
	uint32_t n_cfg;				    /* services of the running configuration */
	uint32_t cfg_index[QG_CONFIG_MAX_SERVICES]; /* configured service -> table index */
	struct qg_config_service *svc_cfg;	    /* per table index: its settings (backends not kept) */
	int *handoff;				    /* [service][worker]: sockets opened for a reload */
	struct qg_backend_stats *slot_base;	    /* per slot: its figures when it last changed hands */
	uint32_t *io_uid;			    /* [worker][service]: what each worker's I/O serves */
	struct qg_dp_bt_path *bt_paths;		    /* the starting configuration's Bluetooth paths */
	uint32_t n_bt_paths;
	struct qg_bridge_rings *bt_rings; /* attached bridge, NULL = none */
	struct qg_cid_share *cid_share;	  /* QUIC CIDs between workers; NULL with one worker */
	uint64_t cmd_seq;		  /* last command sent to the workers */
};

/* A Bluetooth backend path of the configuration qgate started with, as the bridge numbers it. */
struct qg_dp_bt_path {
	uint32_t svc, backend;
	uint8_t path;
	struct qg_config_path key;
};

/* dataplane_bridge.c */
/** 1 when cfg has bridges or Bluetooth backend paths. */
int qg_dataplane_bt_wanted(const struct qg_config *cfg);
/** alloc_tx buffers each worker's I/O needs for cfg (0 without Bluetooth). */
uint32_t qg_dataplane_bt_tx_buffers(const struct qg_config *cfg);
/** Remember cfg's Bluetooth paths (at create). 0 or -ENOMEM. */
int qg_dataplane_bt_init(struct qg_dataplane *dp, const struct qg_config *cfg);
/**
 * Name the Bluetooth paths of table t (built from cfg, service i at
 * index[i]) as the bridge does. @return how many Bluetooth-only backends
 * have a path the bridge does not know (unusable until a restart).
 */
unsigned qg_dataplane_bt_remap(const struct qg_dataplane *dp, const struct qg_config *cfg,
			       const uint32_t *index, struct qg_svc_table *t);

/**
 * After a reload: a multi-path backend that relayed over a Bluetooth path in
 * old keeps it in nt (built from cfg, service i at index[i]) while cfg still
 * lists that path, so a reload does not send its flows back to udp until
 * the path selector says so again.
 */
void qg_dataplane_bt_carry(const struct qg_dataplane *dp, const struct qg_config *cfg, const uint32_t *index,
			   const struct qg_svc_table *old, struct qg_svc_table *nt);

/** Swap in nt and free the table it replaces once no worker can hold it. Under ctl_lock. */
void qg_dataplane_publish(struct qg_dataplane *dp, struct qg_svc_table *nt);

/**
 * Wait until every worker's acknowledgement (the uint64_t at byte offset
 * field of struct qg_worker, release-stored by the worker) reaches target,
 * polling every 200 us for at most timeout_ms. 0 or -ETIMEDOUT.
 */
int qg_dataplane_wait_acks(const struct qg_dataplane *dp, size_t field, uint64_t target, uint32_t timeout_ms);

/** Sum of every worker's figures for one slot (no baseline subtracted). */
void qg_dataplane_slot_sum(const struct qg_dataplane *dp, uint32_t slot, struct qg_backend_stats *out);

#endif /* QG_DATAPLANE_INTERNAL_H */
