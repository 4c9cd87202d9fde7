/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The service table workers read: services, their backends, weights and
 * prebuilt selection tables. Built by the control side, published by pointer
 * (RCU, see dataplane.c) and never modified once published; a change builds
 * a new table. Backend "slots" number every backend of every service so
 * per-backend state can live in flat per-worker arrays.
 */
#ifndef QG_SVC_TABLE_H
#define QG_SVC_TABLE_H

#include <stdint.h>

#include "qgate/config.h"
#include "qgate/lb.h"

struct qg_svc_backend {
	struct qg_addr addr;
	uint32_t weight;
	/*
	 * Health and breaker allow new flows. A down backend keeps its weight
	 * (operators' setting) but selection sees 0 for it; with rehome, its
	 * UDP flows move on their next datagram.
	 */
	uint8_t up;
	uint8_t server_id_len; /* QUIC-LB server ID (quic services with quic.lb) */
	uint8_t server_id[QG_CONFIG_QUIC_SID_MAX];
};

struct qg_svc {
	char name[QG_CONFIG_NAME_MAX];
	struct qg_addr listen;
	uint8_t policy; /* enum qg_config_policy */
	uint8_t hash;	/* enum qg_config_hash */
	uint32_t idle_timeout_ms;
	uint32_t max_flows_per_client;
	uint32_t maglev_size;
	uint32_t n_backends;
	uint32_t slot_base; /* backend b of this service is slot slot_base + b */
	struct qg_svc_backend *backends;
	uint32_t *weights;	  /* copy of the weights, the layout WRR and least_conn take */
	struct qg_maglev *maglev; /* NULL unless policy is maglev */
	uint8_t protocol;	  /* enum qg_config_proto */
	uint8_t rehome;		  /* on_backend_down: rehome */
	struct qg_config_quic quic;
	uint32_t *sid_order; /* QUIC-LB: member indexes sorted by server ID, for bsearch; NULL without lb */
};

struct qg_svc_table {
	uint64_t generation;
	uint8_t draining; /* shutting down: no new flow, established ones carry on */
	uint32_t n_services;
	uint32_t n_slots;
	struct qg_svc *svc;
};

/** Build the table for a configuration. 0, -EINVAL or -ENOMEM. */
int qg_svc_table_build(const struct qg_config *cfg, uint64_t generation, struct qg_svc_table **out);

/** Copy old with backend b of service s set to weight w (selection rebuilt). */
int qg_svc_table_with_weight(const struct qg_svc_table *old, unsigned s, unsigned b, uint32_t w,
			     struct qg_svc_table **out);

/** Copy old with backend b of service s marked up or down (selection rebuilt). */
int qg_svc_table_with_state(const struct qg_svc_table *old, unsigned s, unsigned b, int up,
			    struct qg_svc_table **out);

/** Member whose QUIC-LB server ID is sid (sid_len bytes), or QG_LB_NONE. */
uint32_t qg_svc_member_by_server_id(const struct qg_svc *s, const uint8_t *sid, size_t sid_len);

/** Copy old with draining set (no new flows anywhere). */
int qg_svc_table_with_draining(const struct qg_svc_table *old, struct qg_svc_table **out);

/** Free a table (NULL is fine). */
void qg_svc_table_free(struct qg_svc_table *t);

#endif /* QG_SVC_TABLE_H */
