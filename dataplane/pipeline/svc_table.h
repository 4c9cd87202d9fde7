/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The service table workers read: services, their backends, weights and
 * prebuilt selection tables. Built by the control side, published by pointer
 * (RCU, see dataplane.c) and never modified once published; a change builds
 * a new table. Backend "slots" number every backend of every service so
 * per-backend state can live in flat per-worker arrays.
 *
 * Indexes are stable across reloads: a service keeps its index while its
 * name and listen address stay, a backend keeps its slot while its service
 * lists its address, so flows (which hold a service index and a slot) and
 * per-slot counters carry over. A removed service leaves a hole (uid 0)
 * until its index is reused; slots of removed backends are reused once no
 * flow holds them.
 */
#ifndef QG_SVC_TABLE_H
#define QG_SVC_TABLE_H

#include <stdint.h>

#include "qgate/config.h"
#include "qgate/lb.h"

#define QG_SVC_NO_BT 0xff /* bt_path: the backend has no Bluetooth path the dataplane may use */

struct qg_svc_backend {
	/*
	 * Its first udp path, or for a backend with only Bluetooth paths its
	 * first one as a Bluetooth address (qg_addr_bt_path): the relay goes
	 * through the bridge exactly when the family is AF_BLUETOOTH, and
	 * selection and reloads key every backend by a distinct address.
	 */
	struct qg_addr addr;
	uint32_t weight;
	/*
	 * The bridge's names of its Bluetooth path (ring messages use the
	 * bridge's configuration, the one qgate started with): backend index
	 * and path index, bt_path QG_SVC_NO_BT when there is none (or a reload
	 * added it: the bridge learns paths only at a restart).
	 */
	uint32_t bt_backend;
	uint8_t bt_path;
	/*
	 * Traffic goes through the bridge over bt_path: a Bluetooth-only
	 * backend, or a multi-path one whose selector chose a Bluetooth path
	 * (qg_dataplane_set_backend_path). Flows of the backend on the other
	 * kind of upstream (or another Bluetooth path) move at their next
	 * client datagram.
	 */
	uint8_t via_bt;
	/*
	 * Health and breaker allow new flows. A down backend keeps its weight
	 * (operators' setting) but selection sees 0 for it; with rehome, its
	 * UDP flows move on their next datagram.
	 */
	uint8_t up;
	uint32_t slot;	       /* its index in per-slot arrays */
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
	uint32_t uid;	  /* incarnation of its listen socket(s); 0: a hole left by a removed service */
	uint32_t version; /* changes when a reload changes its settings: workers rebuild their state */
	struct qg_svc_backend *backends;
	uint32_t *weights;	  /* copy of the weights, the layout WRR and least_conn take */
	struct qg_maglev *maglev; /* NULL unless policy is maglev */
	uint8_t protocol;	  /* enum qg_config_proto */
	uint8_t rehome;		  /* on_backend_down: rehome */
	uint8_t priority;	  /* enum qg_config_priority */
	uint8_t multipath;	  /* a backend has udp and Bluetooth paths: flows check their path */
	struct qg_config_quic quic;
	uint32_t *sid_order; /* QUIC-LB: member indexes sorted by server ID, for bsearch; NULL without lb */
};

struct qg_svc_table {
	uint64_t generation;
	uint8_t draining;      /* shutting down: no new flow, established ones carry on */
	uint8_t level;	       /* enum qg_degrade_level: protect, shed, essential restrict new flows */
	uint32_t n_services;   /* indexes in use, holes included */
	uint32_t n_slots;      /* slots in use or retired: every flow's slot is below */
	uint32_t *slot_member; /* per slot: member index in its service, QG_LB_NONE when removed */
	struct qg_svc *svc;
};

/** Where each configured service and backend lives in a table (qg_svc_table_build_mapped). */
struct qg_svc_map {
	uint32_t n_services; /* table size, holes included */
	uint32_t n_slots;    /* slot high-water mark */
	uint32_t *index;     /* per configured service: its table index */
	uint32_t *uid;	     /* per table index: listen incarnation, 0 = hole */
	uint32_t *version;   /* per table index */
	uint32_t **slot;     /* per configured service, per backend: its slot */
	uint8_t **up;	     /* per configured service, per backend: up for new flows */
};

/** Member of service s holding slot, or QG_LB_NONE (the backend was removed). */
static inline uint32_t qg_svc_slot_member(const struct qg_svc_table *t, const struct qg_svc *s, uint32_t slot)
{
	uint32_t m = slot < t->n_slots ? t->slot_member[slot] : QG_LB_NONE;

	return m < s->n_backends && s->backends[m].slot == slot ? m : QG_LB_NONE;
}

/** The address a table keys configured backend c by (see qg_svc_backend.addr). */
void qg_svc_backend_key(const struct qg_config_backend *c, struct qg_addr *out);

/** Build a table whose services and slots sit where map says. 0, -EINVAL or -ENOMEM. */
int qg_svc_table_build_mapped(const struct qg_config *cfg, uint64_t generation, const struct qg_svc_map *map,
			      struct qg_svc_table **out);

/** Build the table for a configuration. 0, -EINVAL or -ENOMEM. */
int qg_svc_table_build(const struct qg_config *cfg, uint64_t generation, struct qg_svc_table **out);

/** Copy old with backend b of service s set to weight w (selection rebuilt). */
int qg_svc_table_with_weight(const struct qg_svc_table *old, unsigned s, unsigned b, uint32_t w,
			     struct qg_svc_table **out);

/** Copy old with backend b of service s relayed over another path (via_bt and the bridge's names of it). */
int qg_svc_table_with_path(const struct qg_svc_table *old, unsigned s, unsigned b, int via_bt,
			   uint32_t bt_backend, uint8_t bt_path, struct qg_svc_table **out);

/** Copy old with backend b of service s marked up or down (selection rebuilt). */
int qg_svc_table_with_state(const struct qg_svc_table *old, unsigned s, unsigned b, int up,
			    struct qg_svc_table **out);

/** Member whose QUIC-LB server ID is sid (sid_len bytes), or QG_LB_NONE. */
uint32_t qg_svc_member_by_server_id(const struct qg_svc *s, const uint8_t *sid, size_t sid_len);

/** Copy old at degradation level (enum qg_degrade_level). */
int qg_svc_table_with_level(const struct qg_svc_table *old, unsigned level, struct qg_svc_table **out);

/** Copy old with draining set (no new flows anywhere). */
int qg_svc_table_with_draining(const struct qg_svc_table *old, struct qg_svc_table **out);

/** Free a table (NULL is fine). */
void qg_svc_table_free(struct qg_svc_table *t);

#endif /* QG_SVC_TABLE_H */
