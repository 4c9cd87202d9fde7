/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared between the files of the configuration loader only: the walk over the
 * libyaml document (config_load.c) and the scalar value checks (config_value.c).
 */
#ifndef QGATE_CONFIG_INTERNAL_H
#define QGATE_CONFIG_INTERNAL_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "qgate/config.h"

/** State of one load: the document being walked and where problems go. */
struct qg_cfg_ctx {
	yaml_document_t *doc;
	struct qg_config_errors *errs;
};

/** A named value of an enumeration key; unavailable is set when this build cannot run it. */
struct qg_cfg_enum {
	const char *name;
	int value;
	const char *unavailable;
};

/* Values the schema knows; flip .unavailable to NULL as the features land. */
extern const struct qg_cfg_enum qg_cfg_io_values[3];
extern const struct qg_cfg_enum qg_cfg_proto_values[2];
extern const struct qg_cfg_enum qg_cfg_policy_values[3];
extern const struct qg_cfg_enum qg_cfg_hash_values[3];
extern const struct qg_cfg_enum qg_cfg_bool_values[2];

#define QG_CFG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The keys a mapping may hold, and how messages name the mapping. */
struct section {
	const char *what;  /* "service": for "service is missing required key" */
	const char *where; /* "in service": for "unknown key 'x' in service" */
	const char *const *keys;
	size_t n_keys;
};

#define FIELDS_MAX 24

/* Key and value node of each known key of one mapping, NULL when absent. */
struct fields {
	yaml_node_t *key[FIELDS_MAX];
	yaml_node_t *val[FIELDS_MAX];
};

/* Walk helpers of config_load.c, shared with the section loaders in other files. */
yaml_node_t *qg_cfg_node_get(struct qg_cfg_ctx *ctx, int index);
int qg_cfg_node_line(const yaml_node_t *node);
size_t qg_cfg_seq_len(const yaml_node_t *node);
void qg_cfg_error_missing(struct qg_cfg_ctx *ctx, const yaml_node_t *map, const struct section *sec,
			  const char *key);
/** Sort a mapping's pairs into sec's keys; unknown and repeated keys are reported. */
void qg_cfg_map_fields(struct qg_cfg_ctx *ctx, const yaml_node_t *map, const struct section *sec,
		       struct fields *f);
/** 0 when node has type, else reports "KEY: expected ...HINT, found ..." and returns -EINVAL. */
int qg_cfg_expect_type(struct qg_cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type,
		       const char *key, const char *hint);

/** Defaults of the dpdk section (also when it is absent). */
void qg_cfg_dpdk_defaults(struct qg_config_dpdk *d);
/** Load the dataplane.dpdk mapping (config_dpdk.c); need_ports: backend is dpdk. @return 0 or -ENOMEM. */
int qg_cfg_dpdk(struct qg_cfg_ctx *ctx, const yaml_node_t *node, int need_ports, struct qg_config_dpdk *d);

/* What the quic section means for the server_id of the service's backends. */
enum qg_cfg_sid_need {
	QG_CFG_SID_NONE = 0, /* no quic.lb: a server_id is an error */
	QG_CFG_SID_UNKNOWN,  /* quic or quic.lb written but unusable (already reported): do not check */
	QG_CFG_SID_REQUIRED, /* every backend needs a server_id of len bytes */
};

struct qg_cfg_sid_rule {
	enum qg_cfg_sid_need need;
	uint32_t len; /* server_id_len of the first lb configuration, with QG_CFG_SID_REQUIRED */
};

/* The nodes of one backend entry the later service-wide checks point at (NULL when absent or invalid). */
struct qg_cfg_bk_nodes {
	const yaml_node_t *map;	    /* the entry, when it is a mapping */
	const yaml_node_t *addr;    /* a valid address value */
	const yaml_node_t *sid_key; /* server_id key and value, as written */
	const yaml_node_t *sid_val;
};

/** Defaults of a service's quic section (also when it is absent). */
void qg_cfg_quic_defaults(struct qg_config_quic *q);
/** Load a service's quic mapping (config_quic.c); *rule tells how to check the backends. */
/*
 * The service-level spellings of the schema: quic_lb (one mapping or a
 * list), versions and retry, equivalent to quic.lb / quic.versions / quic.retry.
 */
void qg_cfg_quic_service_keys(struct qg_cfg_ctx *ctx, const yaml_node_t *lb, const yaml_node_t *versions,
			      const yaml_node_t *retry, struct qg_config_quic *q,
			      struct qg_cfg_sid_rule *rule);
void qg_cfg_quic(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_quic *q,
		 struct qg_cfg_sid_rule *rule);
/** Check and store the backends' server_id as rule says. @return 0 or -ENOMEM. */
int qg_cfg_quic_server_ids(struct qg_cfg_ctx *ctx, struct qg_config_service *svc,
			   const struct qg_cfg_sid_rule *rule, const struct qg_cfg_bk_nodes *nodes);

/** Defaults of a service's health and circuit sections (also when absent). */
void qg_cfg_health_defaults(struct qg_config_health *h, struct qg_config_circuit *c);
/** Load a service's health mapping (config_health.c). */
void qg_cfg_health(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_health *h);
/** Load a service's circuit mapping (config_health.c). */
void qg_cfg_circuit(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_circuit *c);
extern const struct qg_cfg_enum qg_cfg_on_down_values[2];
extern const struct qg_cfg_enum qg_cfg_priority_values[3];

/** Defaults of the degradation section (also when it is absent). */
void qg_cfg_degradation_defaults(struct qg_config_degradation *d);
/** Load the top-level degradation mapping (config_degrade.c). */
void qg_cfg_degradation(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_degradation *d);

/**
 * The admin section's owner (a user name or uid) and group (a group name or
 * gid), either NULL when absent (config_user.c). Names must exist.
 */
void qg_cfg_admin_ids(struct qg_cfg_ctx *ctx, const yaml_node_t *owner, const yaml_node_t *group,
		      struct qg_config_admin *a);
/**
 * The top-level user and group (nodes NULL when absent; config_user.c):
 * group needs user, user is refused with the dpdk backend and for root, a
 * uid without a database entry needs group.
 */
void qg_cfg_run_as(struct qg_cfg_ctx *ctx, const yaml_node_t *user_key, const yaml_node_t *user,
		   const yaml_node_t *group_key, const yaml_node_t *group, enum qg_config_io io,
		   struct qg_config_run_as *ra);

/**
 * Load a backend's address (one path) or paths (config_bridge.c): IP:port,
 * udp://IP:port, bt://BDADDR/PSM, bt-le://BDADDR/PSM. Sets bk->paths and
 * bk->addr (the first udp path). @return the node of that udp path, for the
 * duplicate check, or NULL (none, or invalid and reported).
 */
const yaml_node_t *qg_cfg_backend_paths(struct qg_cfg_ctx *ctx, const yaml_node_t *addr,
					const yaml_node_t *paths_key, const yaml_node_t *paths,
					struct qg_config_backend *bk);
/**
 * After the services: every service's paths (no path twice) and the bridges
 * section (node NULL when absent; config_bridge.c). @return 0 or -ENOMEM.
 */
int qg_cfg_bridges(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config *cfg);

/** Record a problem at line/column (1-based; line 0 = not tied to a place), kept in document order. */
void qg_cfg_error_at(struct qg_config_errors *errs, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** Record a problem at a node of the document. */
void qg_cfg_error(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** "a mapping", "a sequence", "a scalar", "an empty value": for type mismatch messages. */
const char *qg_cfg_node_kind(const yaml_node_t *node);

/** 1 when node is a plain null (empty, ~ or null), as YAML would read it. */
int qg_cfg_is_null(const yaml_node_t *node);

/* Each check below reports its own problem (naming key) and returns 0 or -EINVAL. */
int qg_cfg_scalar(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, const char **s);
int qg_cfg_u32(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, uint32_t min, uint32_t max,
	       uint32_t *out);
int qg_cfg_duration(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, uint32_t min_ms,
		    uint32_t max_ms, uint32_t *out_ms);
int qg_cfg_enum(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key,
		const struct qg_cfg_enum *values, size_t n, int *out);
int qg_cfg_addr(struct qg_cfg_ctx *ctx, const yaml_node_t *node, const char *key, struct qg_addr *out);
int qg_cfg_name(struct qg_cfg_ctx *ctx, const yaml_node_t *node, char *out, size_t size);

int qg_cfg_is_prime(uint32_t n);

/** The cores default: CPU 0, or the lowest allowed CPU when this process may not run on 0. */
void qg_cfg_default_cores(struct qg_config_dataplane *dp);

/** Check a cores sequence (1..64 distinct CPUs this process may run on) into dp. @return 0 or -ENOMEM. */
int qg_cfg_cores(struct qg_cfg_ctx *ctx, const yaml_node_t *node, struct qg_config_dataplane *dp);

#endif /* QGATE_CONFIG_INTERNAL_H */
