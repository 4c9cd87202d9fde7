/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgate-loadgen: option parsing shared by the kernel-socket and the DPDK
 * drivers (numbers with ranges, seconds, --payload, --target).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qgate/addr.h"
#include "loadgen.h"

int lg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int lg_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (lg_parse_u64(s, min, max, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int lg_parse_secs(const char *s, double min, double max, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= min && v <= max))
		return -EINVAL;
	*out = v;
	return 0;
}

int lg_parse_payload(const char *s, enum lg_payload *out)
{
	if (!strcmp(s, "udp"))
		*out = LG_PAYLOAD_UDP;
	else if (!strcmp(s, "quic"))
		*out = LG_PAYLOAD_QUIC;
	else
		return -EINVAL;
	return 0;
}

int lg_parse_target(const char *s, struct qg_addr *out)
{
	if (qg_addr_parse(s, out) || out->port == 0)
		return -EINVAL;
	return 0;
}

int lg_parse_duration(const char *s, double *out)
{
	return lg_parse_secs(s, 0.1, 86400, out);
}

int lg_parse_warmup(const char *s, double *out)
{
	return lg_parse_secs(s, 0, 3600, out);
}

int lg_parse_timeout_ms(const char *s, uint32_t *out)
{
	return lg_parse_u32(s, 1, 60000, out);
}

int lg_quic_lb_size_ok(const struct lg_quic_lb *lb, uint32_t size)
{
	return !lb->enabled || size >= 1u + 1 + lb->sid_len + lb->nonce_len + LG_STAMP_LEN;
}
