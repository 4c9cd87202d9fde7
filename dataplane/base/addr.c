/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/addr.h"

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > 65535)
		return -EINVAL;
	*port = htons((uint16_t)v);
	return 0;
}

int qg_addr_parse(const char *text, struct qg_addr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	size_t hlen;
	struct qg_addr a;

	memset(&a, 0, sizeof(a));
	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, a.ip) != 1)
			return -EINVAL;
		a.family = AF_INET6;
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');

		/* A bare IPv6 address has several colons: require brackets so the port is unambiguous. */
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			return -EINVAL;
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, a.ip) != 1)
			return -EINVAL;
		a.family = AF_INET;
		port = colon + 1;
	}
	if (parse_port(port, &a.port))
		return -EINVAL;
	*out = a;
	return 0;
}

char *qg_addr_format(const struct qg_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (a->family == AF_INET6) {
		inet_ntop(AF_INET6, a->ip, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->port));
	} else if (a->family == AF_INET) {
		inet_ntop(AF_INET, a->ip, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a->port));
	} else if (qg_addr_is_bt_link(a)) {
		snprintf(buf, len, "bt-link:%u", qg_addr_bt_link_id(a));
	} else if (a->family == AF_BLUETOOTH) {
		snprintf(buf, len, "%s://%02X:%02X:%02X:%02X:%02X:%02X/0x%04x",
			 a->ip[8] == 2 ? "bt-le" : "bt", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->ip[4],
			 a->ip[5], (unsigned)(a->ip[6] << 8 | a->ip[7]));
	} else {
		snprintf(buf, len, "(none)");
	}
	return buf;
}

socklen_t qg_addr_to_sockaddr(const struct qg_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = a->port;
		memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = a->port;
	memcpy(&s4->sin_addr, a->ip, 4);
	return sizeof(*s4);
}

int qg_addr_from_sockaddr(const struct sockaddr *sa, struct qg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		a->family = AF_INET;
		a->port = s4->sin_port;
		memcpy(a->ip, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		a->family = AF_INET6;
		a->port = s6->sin6_port;
		memcpy(a->ip, &s6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}
