/* SPDX-License-Identifier: BSD-3-Clause */
/* The dataplane object, shared by dataplane.c (life cycle, control API) and reload.c. */
#ifndef QG_DATAPLANE_INTERNAL_H
#define QG_DATAPLANE_INTERNAL_H

#include <pthread.h>

#include "../pipeline/svc_table.h"
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
	struct qg_config_dataplane dcfg; /* what only a restart changes */
	uint32_t slot_cap;		 /* backend slots the workers' arrays hold */
	uint32_t next_uid;		 /* next service incarnation id */
	uint32_t n_cfg;			 /* services of the running configuration */
	uint32_t cfg_index[QG_CONFIG_MAX_SERVICES]; /* configured service -> table index */
	struct qg_config_service *svc_cfg; /* per table index: its settings (backends not kept) */
	int *handoff;			   /* [service][worker]: sockets opened for a reload */
	struct qg_backend_stats *slot_base; /* per slot: its figures when it last changed hands */
	uint32_t *io_uid;		    /* [worker][service]: what each worker's I/O serves */
};

/** Swap in nt and free the table it replaces once no worker can hold it. Under ctl_lock. */
void qg_dataplane_publish(struct qg_dataplane *dp, struct qg_svc_table *nt);

/** Sum of every worker's figures for one slot (no baseline subtracted). */
void qg_dataplane_slot_sum(const struct qg_dataplane *dp, uint32_t slot, struct qg_backend_stats *out);

#endif /* QG_DATAPLANE_INTERNAL_H */
