/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Component registry: the control plane's parts (config, metrics, workers,
 * health, anomaly, degradation, admin, bridges) register here with the names
 * of the parts they need, and the registry starts them in dependency order
 * and stops them in the reverse order. Everything is checked (missing
 * dependency, cycle) before the first part starts, so a bad wiring never
 * leaves half a gateway running. A part that fails to start unwinds every
 * part already started.
 *
 * The registry belongs to the control thread: no function here is
 * thread-safe, and none is called from a worker.
 */
#ifndef QGATE_REGISTRY_H
#define QGATE_REGISTRY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QG_REGISTRY_NAME_MAX 32	 /**< bytes of a part name, NUL included */
#define QG_REGISTRY_DEPS_MAX 16	 /**< dependencies of one part */
#define QG_REGISTRY_ERR_MAX  512 /**< bytes of the last error message */

/** Life cycle of a part. */
enum qg_registry_state {
	QG_REGISTRY_REGISTERED = 0, /**< added, never started */
	QG_REGISTRY_STARTING,	    /**< inside its start op */
	QG_REGISTRY_RUNNING,	    /**< start op returned 0 */
	QG_REGISTRY_FAILED,	    /**< start op failed (see last_error) */
	QG_REGISTRY_STOPPING,	    /**< inside its stop op */
	QG_REGISTRY_STOPPED,	    /**< stop op returned */
	QG_REGISTRY_STATE_COUNT
};

/** How the registry drives a part. Either op may be NULL (nothing to do). */
struct qg_part_ops {
	/** Bring the part up. @return 0 or -errno (a positive value counts as -EIO). */
	int (*start)(void *ctx);
	/** Bring the part down; only called on a part whose start succeeded. */
	void (*stop)(void *ctx);
	void *ctx;
};

/** What qg_registry_add() copies. */
struct qg_part_desc {
	const char *name;	 /**< unique, 1..QG_REGISTRY_NAME_MAX-1 bytes */
	const char *const *deps; /**< NULL-terminated names of parts it needs; NULL = none */
	struct qg_part_ops ops;
};

/** One part as seen by qg_registry_info(); pointers live until the registry is destroyed. */
struct qg_part_info {
	const char *name;
	enum qg_registry_state state;
	const char *const *deps; /**< n_deps names, NULL-terminated */
	unsigned n_deps;
	uint64_t start_ns; /**< duration of the last start op (measured) */
	uint64_t stop_ns;  /**< duration of the last stop op (measured) */
	int last_error;	   /**< -errno of the last failed start, 0 if none */
	int start_rank;	   /**< position in the last start order, -1 if not in it */
};

/**
 * Observer of state changes (e.g. to publish QG_EVENT_COMPONENT_STATE).
 * Called on the control thread after each transition; err is the part's
 * last_error.
 */
typedef void (*qg_registry_observer_fn)(void *ctx, const char *name, enum qg_registry_state from,
					enum qg_registry_state to, int err);

struct qg_registry;

/** Allocate an empty registry. @return 0 or -EINVAL / -ENOMEM. */
int qg_registry_create(struct qg_registry **out);

/** Stop every running part (as qg_registry_stop_all()) and free the registry. NULL is fine. */
void qg_registry_destroy(struct qg_registry *reg);

/**
 * Register a part; name and dependency names are copied. Dependencies are
 * resolved at start, so parts may be added in any order.
 * @return 0, -EEXIST (name taken), -EINVAL (bad name, too many deps),
 *         -EBUSY (parts are running), -ENOMEM.
 */
int qg_registry_add(struct qg_registry *reg, const struct qg_part_desc *desc);

/**
 * Start every part in topological order; among parts whose dependencies are
 * all up, the one registered first goes first, so the order is the same on
 * every run. A missing dependency (-ENOENT) or a cycle (-ELOOP) is reported
 * before anything starts. A failing part ends FAILED, every part started
 * before it is stopped in reverse order, later ones are not started, and its
 * -errno is returned. qg_registry_error() then says what happened. Calling it
 * again while the parts run does nothing and returns 0.
 */
int qg_registry_start_all(struct qg_registry *reg);

/**
 * Stop the RUNNING parts in the reverse of the order they started. Parts
 * not running are left alone, so calling it twice is harmless.
 */
void qg_registry_stop_all(struct qg_registry *reg);

/** The message of the last start_all error ("" if none); valid until the next call. */
const char *qg_registry_error(const struct qg_registry *reg);

/** Number of registered parts. */
unsigned qg_registry_count(const struct qg_registry *reg);

/** Describe part idx (registration order). @return 0 or -ENOENT. */
int qg_registry_info(const struct qg_registry *reg, unsigned idx, struct qg_part_info *out);

/** Index of the part called name. @return the index or -ENOENT. */
int qg_registry_find(const struct qg_registry *reg, const char *name);

/** Lower-case name of a state ("running"), "?" when out of range. */
const char *qg_registry_state_name(enum qg_registry_state state);

/** Install (or clear, fn = NULL) the state-change observer. */
void qg_registry_set_observer(struct qg_registry *reg, qg_registry_observer_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_REGISTRY_H */
