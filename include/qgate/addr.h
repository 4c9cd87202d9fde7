/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compact IPv4/IPv6 endpoint (address + port) used as flow key material and in
 * configuration. 20 bytes, no padding, comparable with memcmp.
 */
#ifndef QGATE_ADDR_H
#define QGATE_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest text qg_addr_format() writes, with the NUL: "[v6]:port". */
#define QG_ADDR_STRLEN 56

/** An endpoint. IPv4 addresses occupy ip[0..3], the rest is zero. */
struct qg_addr {
	uint8_t ip[16];
	uint16_t port;	/**< network byte order */
	uint8_t family; /**< AF_INET or AF_INET6 (fits in 8 bits on Linux) */
	uint8_t pad;	/**< always 0 so memcmp/hash see clean bytes */
};

/*
 * Bluetooth endpoints of the bridge (docs/BLUETOOTH.md) are qg_addr too, so
 * the flow table and the selection key them like any other: family
 * AF_BLUETOOTH, port 0, and
 *   - a client link: ip[8] = 0, ip[12..15] the bridge's link id;
 *   - a backend path: ip[0..5] the device address, ip[6..7] the PSM (big
 *     endian), ip[8] the transport (enum qg_config_path_kind: 1 BR/EDR, 2 LE).
 * They are never turned into a sockaddr: the bridge owns those sockets.
 */

/** The address standing for the bridge's client link `link`. */
static inline void qg_addr_bt_link(uint32_t link, struct qg_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_BLUETOOTH;
	memcpy(&out->ip[12], &link, sizeof(link));
}

/** 1 when a is a Bluetooth client link (qg_addr_bt_link). */
static inline int qg_addr_is_bt_link(const struct qg_addr *a)
{
	return a->family == AF_BLUETOOTH && a->ip[8] == 0;
}

/** The link id of a Bluetooth client link address. */
static inline uint32_t qg_addr_bt_link_id(const struct qg_addr *a)
{
	uint32_t link;

	memcpy(&link, &a->ip[12], sizeof(link));
	return link;
}

/** The address standing for a Bluetooth backend path (kind 1: BR/EDR, 2: LE). */
static inline void qg_addr_bt_path(const uint8_t bdaddr[6], uint16_t psm, uint8_t kind, struct qg_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_BLUETOOTH;
	memcpy(out->ip, bdaddr, 6);
	out->ip[6] = (uint8_t)(psm >> 8);
	out->ip[7] = (uint8_t)psm;
	out->ip[8] = kind;
}

/**
 * Parse "1.2.3.4:port" or "[v6]:port" (port mandatory, 0..65535).
 * @return 0, or -EINVAL when the text is not such an endpoint.
 */
int qg_addr_parse(const char *text, struct qg_addr *out);

/**
 * Format as "1.2.3.4:port" or "[v6]:port" into buf (>= QG_ADDR_STRLEN);
 * Bluetooth ones as "bt://AA:BB:CC:DD:EE:FF/0x1001" (bt-le:// for LE) or
 * "bt-link:N". Returns buf.
 */
char *qg_addr_format(const struct qg_addr *a, char *buf, size_t len);

/** Fill a sockaddr (sockaddr_in or sockaddr_in6) from a; returns its length. */
socklen_t qg_addr_to_sockaddr(const struct qg_addr *a, struct sockaddr_storage *ss);

/** Convert a sockaddr (AF_INET or AF_INET6) into a. @return 0 or -EAFNOSUPPORT. */
int qg_addr_from_sockaddr(const struct sockaddr *sa, struct qg_addr *a);

/** 1 when both endpoints are identical (family, address and port). */
static inline int qg_addr_equal(const struct qg_addr *a, const struct qg_addr *b)
{
	return memcmp(a, b, sizeof(*a)) == 0; /* fixed size: compiles to a few loads */
}

#ifdef __cplusplus
}
#endif
#endif /* QGATE_ADDR_H */
