/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate configuration: the plain data the YAML loader produces and the
 * dataplane consumes. The loader validates the whole document before
 * anything starts and reports each problem as FILE:LINE:COLUMN: message.
 */
#ifndef QGATE_CONFIG_H
#define QGATE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "qgate/addr.h"
#include "qgate/degrade.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QG_CONFIG_MAX_CORES    64
#define QG_CONFIG_MAX_SERVICES 256
#define QG_CONFIG_MAX_BACKENDS 4096 /* per service */
#define QG_CONFIG_NAME_MAX     64   /* service name, with the NUL */
#define QG_CONFIG_MAX_ERRORS   32
#define QG_CONFIG_MAX_WEIGHT   1000

/** Packet I/O backend of the dataplane. */
enum qg_config_io {
	QG_CONFIG_IO_URING = 0,
	QG_CONFIG_IO_RECVMMSG,
	QG_CONFIG_IO_DPDK,
};

/** Transport protocol a service speaks. */
enum qg_config_proto {
	QG_CONFIG_PROTO_UDP = 0,
	QG_CONFIG_PROTO_QUIC,
};

/** Backend selection policy. */
enum qg_config_policy {
	QG_CONFIG_POLICY_MAGLEV = 0,
	QG_CONFIG_POLICY_WRR,
	QG_CONFIG_POLICY_LEAST_CONN,
};

/** What the Maglev hash covers. */
enum qg_config_hash {
	QG_CONFIG_HASH_FIVE_TUPLE = 0, /**< client IP + port (VIP and protocol are fixed per service) */
	QG_CONFIG_HASH_SRC_IP,
	QG_CONFIG_HASH_SRC_IP_PORT,
};

#define QG_CONFIG_QUIC_MAX_LB	    2 /* QUIC-LB configurations per service: the active one and the next key */
#define QG_CONFIG_QUIC_KEY_LEN	    16 /* AES-128 */
#define QG_CONFIG_QUIC_SID_MAX	    15 /* longest QUIC-LB server ID */
#define QG_CONFIG_QUIC_MAX_VERSIONS 16
#define QG_CONFIG_QUIC_CID_MAX	    20 /* QUIC v1 connection IDs */

#define QG_CONFIG_MAX_PATHS 4 /* transport paths per backend */

/** Transport of a backend path (the values of enum qg_transport_kind, transport.h). */
enum qg_config_path_kind {
	QG_CONFIG_PATH_UDP = 0,	 /**< IP:port or udp://IP:port */
	QG_CONFIG_PATH_BT_BREDR, /**< bt://BDADDR/PSM: L2CAP over BR/EDR */
	QG_CONFIG_PATH_BT_LE,	 /**< bt-le://BDADDR/PSM: L2CAP LE credit-based channel */
};

/** One way to reach a backend (docs/CONFIG.md, "paths"). */
struct qg_config_path {
	enum qg_config_path_kind kind;
	struct qg_addr addr; /**< udp: the endpoint; zero for Bluetooth paths */
	uint8_t bdaddr[6];   /**< Bluetooth: device address in written order ("AA:..." is bdaddr[0]) */
	uint16_t psm;	     /**< Bluetooth: L2CAP PSM */
	int line, column;    /**< where it was written */
};

/** One backend of a service. */
struct qg_config_backend {
	struct qg_addr addr;   /**< its first udp path; family 0 when it has only Bluetooth paths */
	uint32_t weight;       /**< 0..QG_CONFIG_MAX_WEIGHT; 0 = draining */
	int line;	       /**< where it was written (1-based), 0 for built-in */
	uint8_t server_id_len; /**< 0 = none (no quic.lb), else quic.lb[0].server_id_len */
	uint8_t server_id[QG_CONFIG_QUIC_SID_MAX]; /**< QUIC-LB server ID, server_id_len bytes */
	/**
	 * Its paths in order of preference: the address, or the paths list
	 * (1..QG_CONFIG_MAX_PATHS). The loader always fills them; a backend
	 * built by hand with n_paths 0 is the one udp path addr.
	 */
	uint32_t n_paths;
	struct qg_config_path paths[QG_CONFIG_MAX_PATHS];
};

/** When qgate answers a new connection attempt with a Retry itself. */
enum qg_config_retry {
	QG_CONFIG_RETRY_OFF = 0,
	QG_CONFIG_RETRY_ON,
	QG_CONFIG_RETRY_UNDER_ATTACK,
};

/** One QUIC-LB (draft-21) configuration: how backends encode their server ID into CIDs. */
struct qg_config_quic_lb {
	uint8_t config_id;		     /**< 0..6, the top 3 bits of the CID's first octet */
	uint8_t server_id_len;		     /**< 1..15, the same in every lb configuration of a service */
	uint8_t nonce_len;		     /**< 4..18, server_id_len + nonce_len <= 19 */
	uint8_t has_key;		     /**< 0 = plaintext CIDs */
	uint8_t key[QG_CONFIG_QUIC_KEY_LEN]; /**< AES-128 key when has_key */
	int line;			     /**< where the entry was written */
};

/** The quic section of a service (defaults for every service; used with protocol quic). */
struct qg_config_quic {
	uint32_t n_lb; /**< 0..QG_CONFIG_QUIC_MAX_LB; 0 = no QUIC-LB, backends have no server_id */
	struct qg_config_quic_lb lb[QG_CONFIG_QUIC_MAX_LB]; /**< distinct config_id, in file order */
	uint32_t short_dcid_len; /**< 0..20; 0 = self-encoded in the first CID octet (default) */
	uint32_t n_versions;	 /**< 0 = forward every version (default) */
	uint32_t versions[QG_CONFIG_QUIC_MAX_VERSIONS]; /**< host order; others get Version Negotiation */
	uint32_t min_initial_size;			/**< 0..1500, default 1200; 0 = no check */
	uint32_t new_conn_rate;	 /**< new connections per second per source; 0 = off (default) */
	uint32_t new_conn_burst; /**< token bucket depth, 1..100000 (default 20) */
	enum qg_config_retry retry;
};

/** How a service's backends are probed. */
enum qg_config_probe {
	QG_CONFIG_PROBE_NONE = 0, /**< no active checks: backends count as healthy */
	QG_CONFIG_PROBE_UDP,	  /**< send health.send, expect a reply starting with health.expect */
	QG_CONFIG_PROBE_QUIC_VN,  /**< a QUIC packet of a reserved version: any server answers with VN */
};

#define QG_CONFIG_PROBE_TEXT_MAX 128 /* health.send / health.expect, with the NUL */

/** The health section of a service. */
struct qg_config_health {
	enum qg_config_probe probe;
	char send[QG_CONFIG_PROBE_TEXT_MAX];   /**< udp: the probe payload (default "ping") */
	char expect[QG_CONFIG_PROBE_TEXT_MAX]; /**< udp: expected reply prefix; "" = any reply */
	uint32_t interval_ms;		       /**< between two probes of one backend (default 1 s) */
	uint32_t timeout_ms;		       /**< a probe without reply this long failed (default 500 ms) */
	uint32_t rise;			       /**< consecutive successes to become healthy (default 2) */
	uint32_t fall;			       /**< consecutive failures to become unhealthy (default 3) */
	uint32_t path_hold_ms; /**< multi-path backends: a better path must lead this long (default 5 s) */
};

/** The circuit section of a service: its backends' breakers (see qgate/breaker.h). */
struct qg_config_circuit {
	uint32_t failures;	  /**< consecutive failures that open the breaker (default 5) */
	uint32_t open_timeout_ms; /**< open this long before the trial (default 5 s) */
	uint32_t half_open_flows; /**< new flows admitted by a trial (default 3) */
	uint32_t successes;	  /**< successes that close it (1..half_open_flows, default 2) */
};

/** What happens to the flows of a backend that goes down. */
enum qg_config_on_down {
	QG_CONFIG_ON_DOWN_REHOME = 0, /**< a UDP flow moves to an up backend on its next datagram */
	QG_CONFIG_ON_DOWN_KEEP,	      /**< flows stay where they are */
};

/**
 * A service's priority under graceful degradation: at level shed, services of
 * priority low admit no new flow; at essential, no service does.
 */
enum qg_config_priority {
	QG_CONFIG_PRIORITY_NORMAL = 0,
	QG_CONFIG_PRIORITY_LOW,
	QG_CONFIG_PRIORITY_HIGH,
};

/** One service: a listening VIP and its backend pool. */
struct qg_config_service {
	char name[QG_CONFIG_NAME_MAX];
	struct qg_addr listen;
	enum qg_config_proto protocol;
	enum qg_config_policy policy;
	enum qg_config_hash hash;
	uint32_t idle_timeout_ms;      /**< flows idle this long expire (default 30 s) */
	uint32_t max_flows_per_client; /**< per worker; 0 = unlimited */
	uint32_t maglev_table_size;    /**< prime, default 65537 */
	struct qg_config_quic quic;    /**< defaults unless protocol is quic */
	struct qg_config_health health;
	struct qg_config_circuit circuit;
	enum qg_config_on_down on_backend_down;
	enum qg_config_priority priority; /**< default normal */
	uint32_t n_backends;
	struct qg_config_backend *backends;
	int line;
};

#define QG_CONFIG_DPDK_MAX_PORTS     8
#define QG_CONFIG_DPDK_MAX_EAL_ARGS  32
#define QG_CONFIG_DPDK_EAL_ARG_MAX   256 /* one EAL argument, with the NUL */
#define QG_CONFIG_DPDK_PORT_NAME_MAX 64	 /* EAL device name, with the NUL */
#define QG_CONFIG_DPDK_MAX_ADDRS     8	 /* owned addresses (and NAT addresses) per port */
#define QG_CONFIG_DPDK_MAX_NEIGHBORS 64	 /* static neighbours per port */
#define QG_CONFIG_DPDK_TAP_NAME_MAX  16	 /* a Linux interface name (IFNAMSIZ), with the NUL */
#define QG_CONFIG_DPDK_MAX_NAT	     64	 /* NAT source addresses per port: 64 x 64k ports */

/** An IP address with a prefix length (the port of addr is 0). */
struct qg_config_prefix {
	struct qg_addr addr;
	uint32_t len; /**< 0..32 (IPv4) or 0..128 (IPv6) */
};

/** A static neighbour: IP (port 0) -> Ethernet address. */
struct qg_config_neighbor {
	struct qg_addr addr;
	uint8_t mac[6];
};

/** One DPDK port and the addresses qgate owns on it. */
struct qg_config_dpdk_port {
	char name[QG_CONFIG_DPDK_PORT_NAME_MAX]; /**< vdev name or PCI address */
	uint32_t n_addresses;
	struct qg_config_prefix addresses[QG_CONFIG_DPDK_MAX_ADDRS]; /**< answered for ARP/ND */
	struct qg_addr gateway;	 /**< IPv4 next hop off-link; family 0 when none */
	struct qg_addr gateway6; /**< IPv6 next hop off-link; family 0 when none */
	uint32_t n_nat;
	struct qg_addr
		nat[QG_CONFIG_DPDK_MAX_NAT]; /**< NAT source addresses (port 0); none = own addresses */
	uint32_t n_neighbors;
	struct qg_config_neighbor neighbors[QG_CONFIG_DPDK_MAX_NEIGHBORS];
	/** Kernel interface (TAP) for the traffic qgate does not own; "" for none (dropped). */
	char kernel_tap[QG_CONFIG_DPDK_TAP_NAME_MAX];
	int line;
};

/** The dataplane.dpdk section (used when backend is dpdk). */
struct qg_config_dpdk {
	uint32_t n_eal_args;
	char eal_args[QG_CONFIG_DPDK_MAX_EAL_ARGS][QG_CONFIG_DPDK_EAL_ARG_MAX];
	uint32_t mbufs;	  /**< mbuf pool size per worker (default 16383) */
	uint32_t rx_desc; /**< RX descriptors per queue (default 1024) */
	uint32_t tx_desc; /**< TX descriptors per queue (default 1024) */
	uint32_t n_ports;
	struct qg_config_dpdk_port ports[QG_CONFIG_DPDK_MAX_PORTS];
};

/** The dataplane section. */
struct qg_config_dataplane {
	enum qg_config_io io;
	uint32_t n_cores;
	uint32_t cores[QG_CONFIG_MAX_CORES]; /**< CPU ids, one worker pinned to each */
	uint32_t flows_per_core;	     /**< flow-table capacity per worker (default 1048576) */
	uint32_t upstream_sockets_per_core;  /**< cap of the upstream socket pool (socket backends, default
						65536) */
	uint32_t rx_buffers;		     /**< receive buffers per worker (power of two, default 4096) */
	uint32_t max_datagram;		     /**< largest UDP payload relayed (default 2048, max 65507) */
	uint32_t burst;			     /**< packets per receive/transmit burst (default 32) */
	int udp_gso;	    /**< send a flow's consecutive datagrams as one UDP GSO batch (default true) */
	int overload_guard; /**< a worker behind refuses new flows (drop reason overload; default true) */
	struct qg_config_dpdk dpdk;
};

#define QG_CONFIG_SOCKET_PATH_MAX	108 /* sun_path of a Unix socket, with the NUL */
#define QG_CONFIG_ADMIN_SOCKET_DEFAULT	"/run/qgate/admin.sock"
#define QG_CONFIG_ADMIN_MODE_DEFAULT	0600
#define QG_CONFIG_DRAIN_TIMEOUT_DEFAULT 10000 /* ms */

/** The metrics section: Prometheus text exposition over HTTP at /metrics. */
struct qg_config_metrics {
	int enabled;	       /**< 0 when the section is absent (default: no metrics server) */
	struct qg_addr listen; /**< where the HTTP server listens (loopback recommended) */
	int line;	       /**< where listen was written, 0 when absent */
};

#define QG_CONFIG_ID_NAME_MAX 33	  /* a user or group name, with the NUL */
#define QG_CONFIG_ID_MAX      4294967294u /* highest uid/gid: (uid_t)-1 means "unchanged" to chown */

/** The admin section: the operators' Unix stream socket (qgatectl). */
struct qg_config_admin {
	char socket[QG_CONFIG_SOCKET_PATH_MAX]; /**< "" = no admin socket (the section is absent) */
	uint32_t mode;				/**< permission bits of the socket file (default 0600) */
	int has_owner;				/**< owner was set: the file is chowned to it */
	uint32_t owner;				/**< uid of the socket file's owner */
	int has_group;				/**< group was set */
	uint32_t group;				/**< gid of the socket file's group */
};

/**
 * The top-level user and group keys: whom qgate runs as once its sockets are
 * bound (socket backends; the DPDK backend keeps root). Names are resolved by
 * the loader, so an unknown user is a configuration error.
 */
struct qg_config_run_as {
	int enabled;			  /**< 1 when user is set: drop root after start */
	uint32_t uid;			  /**< never 0 */
	uint32_t gid;			  /**< group, else the user's primary group */
	char user[QG_CONFIG_ID_NAME_MAX]; /**< the user's name ("" when its uid has no entry) */
	int line;			  /**< where user was written */
};

#define QG_CONFIG_MAX_BRIDGES	    16
#define QG_CONFIG_BRIDGE_ALLOW_MAX  64 /* BDADDRs in one allow list */
#define QG_CONFIG_BRIDGE_LINKS_MAX  256
#define QG_CONFIG_BT_ADAPTER_MAX    18 /* "hciN" or a BDADDR, with the NUL */
#define QG_CONFIG_BRIDGE_LINKS_DFLT 16

/** What a bridge connects (only Bluetooth today). */
enum qg_config_bridge_type {
	QG_CONFIG_BRIDGE_BLUETOOTH = 0,
};

/** Bluetooth transport of a bridge's listener. */
enum qg_config_bt_transport {
	QG_CONFIG_BT_BREDR = 0, /**< classic L2CAP (connection-oriented channel, SOCK_SEQPACKET) */
	QG_CONFIG_BT_LE,	/**< LE credit-based channel */
};

/** L2CAP security level; the values are the kernel's BT_SECURITY_*. */
enum qg_config_bt_security {
	QG_CONFIG_BT_SEC_LOW = 1,    /**< no encryption, no pairing required */
	QG_CONFIG_BT_SEC_MEDIUM = 2, /**< encrypted; pairing without MITM protection is enough */
	QG_CONFIG_BT_SEC_HIGH = 3,   /**< encrypted and authenticated (MITM-protected pairing) */
};

/** One bridges[] entry: Bluetooth devices become clients of a service (docs/BLUETOOTH.md). */
struct qg_config_bridge {
	enum qg_config_bridge_type type;
	char adapter[QG_CONFIG_BT_ADAPTER_MAX]; /**< "hci0" (default) or the adapter's BDADDR */
	enum qg_config_bt_transport transport;	/**< default bredr */
	uint16_t psm;				/**< L2CAP PSM listened on */
	uint32_t service;			/**< index of the service its links are clients of */
	uint32_t max_links;			/**< links at once (default 16) */
	enum qg_config_bt_security security;	/**< default medium */
	uint32_t n_allow;			/**< 0 = any device may connect */
	uint8_t allow[QG_CONFIG_BRIDGE_ALLOW_MAX][6];
	int line;
};

/**
 * The degradation section: how the control loop's protection path drives the
 * degradation level (thresholds and timings of qgate/degrade.h).
 */
struct qg_config_degradation {
	int enabled;		   /**< the controller sets the level (default true); false: only qgatectl */
	struct qg_degrade_cfg ctl; /**< thresholds and timings (defaults: qg_degrade_cfg_default) */
};

/** A whole configuration. Owned by the loader; freed with qg_config_free(). */
struct qg_config {
	char source[256]; /**< file path, or "<default>" */
	struct qg_config_dataplane dataplane;
	uint32_t stats_interval_ms; /**< period of the stats line on stderr; 0 = off (default) */
	struct qg_config_metrics metrics;
	struct qg_config_admin admin;
	struct qg_config_run_as run_as; /**< user/group to switch to after binding (config_user.c) */
	struct qg_config_degradation degradation;
	uint32_t drain_timeout_ms; /**< grace period at SIGTERM (default 10 s; stored, not yet used) */
	uint32_t n_services;
	struct qg_config_service *services;
	uint32_t n_bridges; /**< bridges[] entries (config_bridge.c) */
	struct qg_config_bridge bridges[QG_CONFIG_MAX_BRIDGES];
};

/** One problem found in a configuration. */
struct qg_config_error {
	int line;   /**< 1-based, 0 when the problem is not tied to a place */
	int column; /**< 1-based */
	char msg[200];
};

/** Every problem found, in document order (at most QG_CONFIG_MAX_ERRORS). */
struct qg_config_errors {
	char file[256];
	unsigned count;
	unsigned dropped; /**< problems beyond QG_CONFIG_MAX_ERRORS */
	struct qg_config_error items[QG_CONFIG_MAX_ERRORS];
};

/**
 * Load and completely validate a YAML file.
 * @return 0 and *out set, -EINVAL with errs filled when the file is invalid,
 *         or another -errno when it cannot be read (errs holds a message too).
 */
int qg_config_load_file(const char *path, struct qg_config **out, struct qg_config_errors *errs);

/** As qg_config_load_file() on text in memory; name is used as FILE in messages. */
int qg_config_load_string(const char *name, const char *text, size_t len, struct qg_config **out,
			  struct qg_config_errors *errs);

/** The built-in default configuration (the demo's) as YAML text. */
const char *qg_config_default_yaml(void);

/** Load the built-in default configuration. */
int qg_config_load_default(struct qg_config **out, struct qg_config_errors *errs);

/** Print every error as "FILE:LINE:COLUMN: message" lines. */
void qg_config_errors_print(const struct qg_config_errors *errs, FILE *f);

/** Free a configuration (NULL is fine). */
void qg_config_free(struct qg_config *cfg);

/**
 * A path as written in the file: "IP:port", "bt://BDADDR/0xPSM" or
 * "bt-le://BDADDR/0xPSM" (at least 48 bytes are enough). @return buf.
 */
const char *qg_config_path_format(const struct qg_config_path *p, char *buf, size_t size);

/** Find a service by name; NULL when absent. */
const struct qg_config_service *qg_config_service_find(const struct qg_config *cfg, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* QGATE_CONFIG_H */
