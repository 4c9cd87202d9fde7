/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The /metrics HTTP server and the exposition text writer.
 *
 * libmicrohttpd runs in external-epoll mode (MHD_USE_EPOLL without
 * MHD_USE_INTERNAL_POLLING_THREAD): MHD keeps one epoll descriptor the
 * control thread polls with the admin socket, and MHD_run() does the
 * non-blocking work. No MHD thread exists, so rendering needs no lock on the
 * registry or the event bus, which belong to the control thread; epoll
 * rather than select because a gateway's descriptors easily pass FD_SETSIZE.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qgate/log.h"
#include "qgate/metrics.h"

#define METRICS_CONN_MAX     16 /* scrapers are few; this bounds memory */
#define METRICS_CONN_TIMEOUT 5	/* seconds: a stuck scraper loses its slot */
#define METRICS_CTYPE	     "text/plain; version=0.0.4; charset=utf-8"

struct qg_metrics {
	struct MHD_Daemon *mhd;
	int listen_fd;
	int epoll_fd;
	uint16_t port;
	uint64_t requests;
	const struct qg_metrics_source *src;
};

void qg_metrics_text_init(struct qg_metrics_text *t)
{
	memset(t, 0, sizeof(*t));
}

void qg_metrics_text_free(struct qg_metrics_text *t)
{
	free(t->buf);
	qg_metrics_text_init(t);
}

static int text_reserve(struct qg_metrics_text *t, size_t more)
{
	size_t cap;
	char *p;

	if (t->err)
		return t->err;
	if (t->len + more + 1 <= t->cap)
		return 0;
	cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more + 1)
		cap *= 2;
	p = realloc(t->buf, cap);
	if (!p) {
		t->err = -ENOMEM;
		return t->err;
	}
	t->buf = p;
	t->cap = cap;
	return 0;
}

static void text_put(struct qg_metrics_text *t, const char *s, size_t n)
{
	if (text_reserve(t, n))
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void text_printf(struct qg_metrics_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_printf(struct qg_metrics_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || text_reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void text_escaped(struct qg_metrics_text *t, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			text_put(t, "\\\\", 2);
		else if (*s == '\n')
			text_put(t, "\\n", 2);
		else if (quote && *s == '"')
			text_put(t, "\\\"", 2);
		else
			text_put(t, s, 1);
	}
}

void qg_metrics_family(struct qg_metrics_text *t, const char *name, const char *type, const char *help)
{
	text_printf(t, "# HELP %s ", name);
	text_escaped(t, help, 0);
	text_printf(t, "\n# TYPE %s %s\n", name, type);
}

/* name{labels} and the value as text: the two sample functions differ only in the value's sign. */
static void sample_v(struct qg_metrics_text *t, const char *name, const char *value, va_list ap)
{
	const char *k, *v;
	int first = 1;

	text_put(t, name, strlen(name));
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		text_printf(t, "%s%s=\"", first ? "{" : ",", k);
		text_escaped(t, v ? v : "", 1);
		text_put(t, "\"", 1);
		first = 0;
	}
	text_printf(t, "%s %s\n", first ? "" : "}", value);
}

void qg_metrics_sample(struct qg_metrics_text *t, const char *name, uint64_t value, ...)
{
	char num[24];
	va_list ap;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
	va_start(ap, value);
	sample_v(t, name, num, ap);
	va_end(ap);
}

void qg_metrics_sample_signed(struct qg_metrics_text *t, const char *name, int64_t value, ...)
{
	char num[24];
	va_list ap;

	snprintf(num, sizeof(num), "%lld", (long long)value);
	va_start(ap, value);
	sample_v(t, name, num, ap);
	va_end(ap);
}

int qg_metrics_addr_is_loopback(const struct qg_addr *a)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (a->family == AF_INET)
		return a->ip[0] == 127;
	if (a->family == AF_INET6)
		return !memcmp(a->ip, v6_loop, 16) || (!memcmp(a->ip, v4_mapped, 12) && a->ip[12] == 127);
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mem)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, body, mem);
	if (!resp) {
		if (mem == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK ? METRICS_CTYPE : "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	static char not_found[] = "not found: qgate serves /metrics only\n";
	static char not_allowed[] = "method not allowed: use GET\n";
	static char no_memory[] = "out of memory\n";
	struct qg_metrics *m = cls;
	struct qg_metrics_text t;

	(void)version;
	(void)upload_data;
	/* Bodies are ignored: /metrics takes none. Answer once the whole request is in. */
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!*req_cls) {
		*req_cls = m; /* first call: headers only */
		return MHD_YES;
	}
	m->requests++;
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed, sizeof(not_allowed) - 1,
			     MHD_RESPMEM_PERSISTENT);
	qg_metrics_text_init(&t);
	if (qg_metrics_render(m->src, &t)) {
		qg_metrics_text_free(&t);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, no_memory, sizeof(no_memory) - 1,
			     MHD_RESPMEM_PERSISTENT);
	}
	/* MHD frees the buffer with free() once sent. */
	return reply(conn, MHD_HTTP_OK, t.buf ? t.buf : strdup(""), t.len, MHD_RESPMEM_MUST_FREE);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	QG_LOG_WARN("metrics: %s", line);
}

/* Our own listening socket, so a bind failure reports its errno (MHD_start_daemon only says NULL). */
static int open_listener(const struct qg_addr *addr, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	len = qg_addr_to_sockaddr(addr, &ss);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
		goto err;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		goto err;
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
err:
	rc = -errno;
	close(fd);
	return rc;
}

int qg_metrics_create(const struct qg_addr *addr, const struct qg_metrics_source *src,
		      struct qg_metrics **out)
{
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct qg_metrics *m;
	char text[QG_ADDR_STRLEN];
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->src = src;
	m->epoll_fd = -1;
	m->listen_fd = open_listener(addr, &m->port);
	if (m->listen_fd < 0) {
		rc = m->listen_fd;
		QG_LOG_ERR("metrics: cannot listen on %s: %s", qg_addr_format(addr, text, sizeof(text)),
			   strerror(-rc));
		goto err;
	}
	if (addr->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first: MHD prints options it parses before it with its own logger. */
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
				  NULL, MHD_OPTION_LISTEN_SOCKET, m->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)METRICS_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)METRICS_CONN_TIMEOUT, MHD_OPTION_END);
	if (!m->mhd) {
		rc = -EIO;
		QG_LOG_ERR("metrics: libmicrohttpd did not start on %s",
			   qg_addr_format(addr, text, sizeof(text)));
		goto err;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		rc = -EIO;
		QG_LOG_ERR("metrics: libmicrohttpd has no epoll descriptor");
		goto err;
	}
	m->epoll_fd = info->epoll_fd;
	*out = m;
	return 0;
err:
	qg_metrics_destroy(m);
	return rc;
}

int qg_metrics_fd(const struct qg_metrics *m)
{
	return m ? m->epoll_fd : -1;
}

void qg_metrics_poll(struct qg_metrics *m)
{
	/* In external-epoll mode MHD_run() waits for nothing: it handles what epoll reports ready. */
	if (m && m->mhd)
		MHD_run(m->mhd);
}

uint16_t qg_metrics_port(const struct qg_metrics *m)
{
	return m ? m->port : 0;
}

uint64_t qg_metrics_requests(const struct qg_metrics *m)
{
	return m ? m->requests : 0;
}

void qg_metrics_destroy(struct qg_metrics *m)
{
	if (!m)
		return;
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	/* MHD_OPTION_LISTEN_SOCKET: MHD closes a socket it was given only when it started. */
	else if (m->listen_fd >= 0)
		close(m->listen_fd);
	free(m);
}
