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

/**
 * Parse "1.2.3.4:port" or "[v6]:port" (port mandatory, 0..65535).
 * @return 0, or -EINVAL when the text is not such an endpoint.
 */
int qg_addr_parse(const char *text, struct qg_addr *out);

/** Format as "1.2.3.4:port" or "[v6]:port" into buf (>= QG_ADDR_STRLEN); returns buf. */
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
