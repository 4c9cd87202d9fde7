/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgatectl, the operators' tool:
 *   qgatectl [-s PATH] status | backends | components | events [--json]
 *   qgatectl [-s PATH] weight SERVICE BACKEND W | drain S B | undrain S B [--json]
 *   qgatectl [-s PATH] level [set LEVEL | auto] [--json]
 *   qgatectl cid encode --config-id N --server-id HEX --nonce HEX [--key HEX]
 *   qgatectl cid decode --server-id-len L --nonce-len M [--key HEX] CID_HEX
 * Exit status: 0 done; 1 qgate refused the command (cid: internal failure);
 * 2 bad usage or input (one line on stderr naming the problem); 3 qgate
 * cannot be reached. Scripts can tell typos from refusals from outages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "qgate/quic_lb.h"

#define EXIT_INTERNAL 1
#define EXIT_USAGE    2

#define HEX_MAX 64 /* octets: far above any CID, key or server ID */

static const char usage_text[] =
	"usage: qgatectl [-s PATH] COMMAND [ARGS] [--json]\n"
	"usage: qgatectl cid encode --config-id N --server-id HEX --nonce HEX [--key HEX]\n"
	"       qgatectl cid decode --server-id-len L --nonce-len M [--key HEX] CID_HEX\n"
	"\n"
	"Commands to a running qgate (over its admin socket):\n"
	"  status                      version, uptime, I/O backend, workers, services, flows, totals\n"
	"  backends                    per service and backend: address, weight, state, flows, packets\n"
	"  components                  the control-plane components: state, dependencies, start time\n"
	"  events                      the most recent events (oldest first)\n"
	"  weight SERVICE BACKEND W    set a backend's weight (0..1000; 0 = no new flows)\n"
	"  drain SERVICE BACKEND       weight 0, remembering the weight for undrain\n"
	"  undrain SERVICE BACKEND     restore the weight the backend had before drain\n"
	"  level                       degradation level (normal .. essential), why, since when\n"
	"  level set LEVEL             operator floor: the controller may go higher, never lower\n"
	"  level auto                  clear the floor: the controller alone sets the level\n"
	"  flush SERVICE BACKEND       remove the backend's established flows now (drain first to move "
	"them)\n"
	"  reload                      reload the configuration file (errors: FILE:LINE:COLUMN, exit 1)\n"
	"  BACKEND is the address as configured (10.0.0.1:53, [::1]:53).\n"
	"\n"
	"  -s, --socket PATH    admin socket (default $QGATE_ADMIN_SOCKET, else " QG_CTL_SOCKET_DEFAULT ")\n"
	"  --json               answer as one JSON document\n"
	"\n"
	"QUIC-LB connection IDs (draft-ietf-quic-load-balancers-21), offline:\n"
	"  cid encode  print the CID (lowercase hex; the first octet is config_id << 5 | length)\n"
	"  cid decode  print \"config_id=N server_id=HEX nonce=HEX\"; octets past 1+L+M are ignored\n"
	"\n"
	"  --config-id N        configuration id, 0..6 (7 marks unroutable CIDs)\n"
	"  --server-id HEX      server ID, 1..15 octets\n"
	"  --nonce HEX          nonce, 4..18 octets; server ID + nonce <= 19 octets\n"
	"  --server-id-len L    server ID length in octets (decode)\n"
	"  --nonce-len M        nonce length in octets (decode)\n"
	"  --key HEX            16-octet AES-128 key; without it CIDs are plaintext\n"
	"  -h, --help           this text\n"
	"Hex may carry a 0x prefix.\n"
	"Exit status: 0 ok; 1 qgate refused the command (cid: internal error); 2 bad usage or input;\n"
	"3 qgate cannot be reached.\n";

/* One "--name VALUE" option; value stays NULL when absent. */
struct ctl_opt {
	const char *name;
	const char *value;
};

/* One line on stderr naming the problem; returns the exit status for bad input. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("qgatectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static int hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse text into out (at most HEX_MAX octets); *len gets the octet count. Messages name what. */
static int parse_hex(const char *what, const char *text, uint8_t *out, size_t *len)
{
	size_t n, i;

	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		text += 2;
	n = strlen(text);
	if (n == 0)
		return fail("%s: empty hex string", what);
	if (n % 2)
		return fail("%s: odd number of hex digits in '%s'", what, text);
	if (n / 2 > HEX_MAX)
		return fail("%s: '%s' is too long", what, text);
	for (i = 0; i < n; i++) {
		if (hex_val(text[i]) < 0)
			return fail("%s: '%c' is not a hex digit", what, text[i]);
	}
	for (i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(hex_val(text[2 * i]) << 4 | hex_val(text[2 * i + 1]));
	*len = n / 2;
	return 0;
}

/* Decimal in [lo, hi]. */
static int parse_uint(const char *what, const char *text, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long v;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return fail("%s: '%s' is not a number", what, text);
	errno = 0;
	v = strtoul(text, &end, 10);
	if (*end || errno)
		return fail("%s: '%s' is not a number", what, text);
	if (v < lo || v > hi)
		return fail("%s: %lu is out of range (%u..%u)", what, v, lo, hi);
	*out = (unsigned)v;
	return 0;
}

static int parse_key(const char *text, uint8_t *key)
{
	uint8_t buf[HEX_MAX];
	size_t len;
	int rc;

	rc = parse_hex("--key", text, buf, &len);
	if (rc)
		return rc;
	if (len != QG_QUIC_LB_KEY_LEN)
		return fail("--key: must be 16 octets (32 hex digits), got %zu", len);
	memcpy(key, buf, len);
	return 0;
}

static void print_hex(const char *prefix, const uint8_t *p, size_t n)
{
	size_t i;

	fputs(prefix, stdout);
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
}

/*
 * Match argv against opts: "--name VALUE" or "--name=VALUE". The first
 * non-option argument goes to *positional when it is non-NULL.
 * @return 0, EXIT_USAGE after a message, or -1 when help was asked for.
 */
static int parse_opts(int argc, char **argv, struct ctl_opt *opts, size_t nopts, const char **positional)
{
	const char *arg, *eq, *value;
	size_t i, name_len;
	int k;

	for (k = 0; k < argc; k++) {
		arg = argv[k];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
			return -1;
		if (arg[0] != '-' || arg[1] == '\0') {
			if (!positional || *positional)
				return fail("unexpected argument '%s'", arg);
			*positional = arg;
			continue;
		}
		eq = strchr(arg, '=');
		name_len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < nopts; i++)
			if (strlen(opts[i].name) == name_len && !strncmp(arg, opts[i].name, name_len))
				break;
		if (i == nopts)
			return fail("unknown option '%s'", arg);
		if (eq) {
			value = eq + 1;
		} else {
			if (k + 1 >= argc)
				return fail("option %s needs a value", opts[i].name);
			value = argv[++k];
		}
		opts[i].value = value;
	}
	for (i = 0; i < nopts; i++)
		if (!opts[i].value && strcmp(opts[i].name, "--key"))
			return fail("missing option %s", opts[i].name);
	return 0;
}

static int cmd_encode(int argc, char **argv)
{
	struct ctl_opt opts[] = {
		{ "--config-id", NULL }, { "--server-id", NULL }, { "--nonce", NULL }, { "--key", NULL }
	};
	uint8_t sid[HEX_MAX], nonce[HEX_MAX], key[QG_QUIC_LB_KEY_LEN], cid[QG_QUIC_LB_MAX_CID_LEN];
	struct qg_quic_lb_config *c = NULL;
	size_t sid_len, nonce_len;
	unsigned config_id;
	int rc, n = 0;

	rc = parse_opts(argc, argv, opts, 4, NULL);
	if (rc)
		goto out;
	rc = parse_uint("--config-id", opts[0].value, 0, 255, &config_id);
	if (rc)
		goto out;
	/* 7 gets its own message: it is the one value that looks valid on the wire. */
	if (config_id == QG_QUIC_LB_UNROUTABLE) {
		rc = fail("--config-id: 7 (0b111) is reserved for unroutable CIDs, use 0..6");
		goto out;
	}
	if (config_id > QG_QUIC_LB_MAX_CONFIG_ID) {
		rc = fail("--config-id: %u is out of range (0..6)", config_id);
		goto out;
	}
	rc = parse_hex("--server-id", opts[1].value, sid, &sid_len);
	if (!rc)
		rc = parse_hex("--nonce", opts[2].value, nonce, &nonce_len);
	if (!rc && opts[3].value)
		rc = parse_key(opts[3].value, key);
	if (rc)
		goto out;
	if (sid_len > QG_QUIC_LB_MAX_SID_LEN) {
		rc = fail("--server-id: %zu octets, must be 1..15", sid_len);
		goto out;
	}
	if (nonce_len < QG_QUIC_LB_MIN_NONCE_LEN || nonce_len > QG_QUIC_LB_MAX_NONCE_LEN) {
		rc = fail("--nonce: %zu octets, must be 4..18", nonce_len);
		goto out;
	}
	if (sid_len + nonce_len > QG_QUIC_LB_MAX_PAYLOAD_LEN) {
		rc = fail("server ID + nonce = %zu octets, at most 19 allowed", sid_len + nonce_len);
		goto out;
	}
	rc = qg_quic_lb_config_create((uint8_t)config_id, (uint8_t)sid_len, (uint8_t)nonce_len,
				      opts[3].value ? key : NULL, &c);
	if (!rc) {
		n = qg_quic_lb_encode(c, sid, nonce, cid, sizeof(cid));
		rc = n < 0 ? n : 0;
	}
	if (rc) {
		fprintf(stderr, "qgatectl: encoding failed: %s\n", strerror(-rc));
		rc = EXIT_INTERNAL;
		goto out;
	}
	print_hex("", cid, (size_t)n);
	putchar('\n');
out:
	qg_quic_lb_config_destroy(c);
	return rc;
}

static int cmd_decode(int argc, char **argv)
{
	struct ctl_opt opts[] = { { "--server-id-len", NULL }, { "--nonce-len", NULL }, { "--key", NULL } };
	uint8_t sid[QG_QUIC_LB_MAX_SID_LEN], nonce[QG_QUIC_LB_MAX_NONCE_LEN], key[QG_QUIC_LB_KEY_LEN];
	struct qg_quic_lb_config *c = NULL;
	unsigned sid_len, nonce_len;
	const char *cid_text = NULL;
	uint8_t cid[HEX_MAX];
	size_t cid_len;
	int rc, id;

	rc = parse_opts(argc, argv, opts, 3, &cid_text);
	if (rc)
		goto out;
	if (!cid_text) {
		rc = fail("missing CID_HEX argument");
		goto out;
	}
	rc = parse_uint("--server-id-len", opts[0].value, QG_QUIC_LB_MIN_SID_LEN, QG_QUIC_LB_MAX_SID_LEN,
			&sid_len);
	if (!rc)
		rc = parse_uint("--nonce-len", opts[1].value, QG_QUIC_LB_MIN_NONCE_LEN,
				QG_QUIC_LB_MAX_NONCE_LEN, &nonce_len);
	if (!rc && opts[2].value)
		rc = parse_key(opts[2].value, key);
	if (!rc)
		rc = parse_hex("CID", cid_text, cid, &cid_len);
	if (rc)
		goto out;
	if (sid_len + nonce_len > QG_QUIC_LB_MAX_PAYLOAD_LEN) {
		rc = fail("--server-id-len + --nonce-len = %u, at most 19 allowed", sid_len + nonce_len);
		goto out;
	}
	if (cid_len < 1 + sid_len + nonce_len) {
		rc = fail("CID too short: %zu octets, the configuration needs %u", cid_len,
			  1 + sid_len + nonce_len);
		goto out;
	}
	id = qg_quic_lb_config_id(cid, cid_len);
	if (id == QG_QUIC_LB_UNROUTABLE) {
		rc = fail("CID is unroutable: its config id is 7 (0b111)");
		goto out;
	}
	rc = qg_quic_lb_config_create((uint8_t)id, (uint8_t)sid_len, (uint8_t)nonce_len,
				      opts[2].value ? key : NULL, &c);
	if (!rc)
		rc = qg_quic_lb_decode(c, cid, cid_len, sid, nonce);
	if (rc) {
		fprintf(stderr, "qgatectl: decoding failed: %s\n", strerror(-rc));
		rc = EXIT_INTERNAL;
		goto out;
	}
	printf("config_id=%d", id);
	print_hex(" server_id=", sid, sid_len);
	print_hex(" nonce=", nonce, nonce_len);
	putchar('\n');
out:
	qg_quic_lb_config_destroy(c);
	return rc;
}

static int cmd_cid(int argc, char **argv)
{
	int rc;

	if (argc < 1)
		return fail("cid: missing subcommand (encode or decode); see 'qgatectl --help'");
	if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))
		return -1;
	if (!strcmp(argv[0], "encode"))
		rc = cmd_encode(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "decode"))
		rc = cmd_decode(argc - 1, argv + 1);
	else
		rc = fail("cid: unknown subcommand '%s' (encode or decode)", argv[0]);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		rc = -1;
	else if (!strcmp(argv[1], "cid"))
		rc = cmd_cid(argc - 2, argv + 2);
	else if (qg_ctl_is_admin_command(argv[1]) || argv[1][0] == '-')
		rc = qg_ctl_admin(argc - 1, argv + 1);
	else
		rc = fail("unknown command '%s'; see 'qgatectl --help'", argv[1]);
	if (rc < 0) { /* help asked for, at any level */
		fputs(usage_text, stdout);
		rc = 0;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "qgatectl: writing the output: %s\n", strerror(errno));
		rc = EXIT_INTERNAL;
	}
	return rc;
}
