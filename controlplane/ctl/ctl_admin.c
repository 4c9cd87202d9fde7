/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * qgatectl's admin commands: one request line over qgate's admin socket,
 * the answer printed as it comes. Arguments are checked for shape here
 * (count, no whitespace) and for meaning by qgate, which knows the services,
 * so every "no such backend" message comes from one place.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_TIMEOUT_MS	 10000 /* connect + answer; qgate answers from its 50 ms loop */
#define CTL_REQUEST_MAX	 1024
#define CTL_ANSWER_LIMIT (64u << 20)

static const struct {
	const char *name;
	int n_args;
	const char *args;
} commands[] = {
	{ "status", 0, "" },
	{ "backends", 0, "" },
	{ "components", 0, "" },
	{ "events", 0, "" },
	{ "weight", 3, " SERVICE BACKEND WEIGHT" },
	{ "drain", 2, " SERVICE BACKEND" },
	{ "undrain", 2, " SERVICE BACKEND" },
	{ "level", -1, " [set LEVEL | auto]" }, /* -1: qgate checks the words */
	{ "reload", 0, "" },
	{ "flush", 2, " SERVICE BACKEND" },
};

int qg_ctl_is_admin_command(const char *word)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, word))
			return 1;
	return 0;
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "qgatectl: %s%s%s\n", msg, arg ? arg : "", arg ? "'" : "");
	return QG_CTL_EXIT_USAGE;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline. @return 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int rc;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int unreachable(const char *path, const char *fmt, const char *why)
{
	fprintf(stderr, "qgatectl: cannot reach qgate at %s: ", path);
	fprintf(stderr, fmt, why);
	fputc('\n', stderr);
	return QG_CTL_EXIT_UNREACHABLE;
}

/* Send request, read the whole answer (qgate closes after it). @return 0 or an exit status. */
static int exchange(const char *path, const char *request, char **answer, size_t *len)
{
	int64_t deadline = now_ms() + CTL_TIMEOUT_MS;
	size_t cap = 4096, n = 0, off = 0, req_len = strlen(request);
	struct sockaddr_un sun;
	char *buf = NULL, *p;
	ssize_t r;
	int fd, rc = QG_CTL_EXIT_UNREACHABLE;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return usage_error("socket path too long: '", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return unreachable(path, "socket: %s", strerror(errno));
	/* Unix stream connect completes at once or fails; EAGAIN means qgate's backlog is full. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = unreachable(path, "%s",
				 errno == EAGAIN ? "it accepts no more connections right now"
						 : strerror(errno));
		goto out;
	}
	while (off < req_len) {
		if (wait_fd(fd, POLLOUT, deadline) <= 0) {
			rc = unreachable(path, "%s", "timed out sending the request");
			goto out;
		}
		r = send(fd, request + off, req_len - off, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			rc = unreachable(path, "sending the request: %s", strerror(errno));
			goto out;
		}
		off += r > 0 ? (size_t)r : 0;
	}
	buf = malloc(cap);
	if (!buf)
		goto out;
	for (;;) {
		if (n + 1 == cap) {
			if (cap >= CTL_ANSWER_LIMIT) {
				rc = unreachable(path, "%s", "answer too large");
				goto out;
			}
			p = realloc(buf, cap * 2);
			if (!p)
				goto out;
			buf = p;
			cap *= 2;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc <= 0) {
			rc = unreachable(path, "%s", rc ? strerror(-rc) : "no answer within 10 s");
			goto out;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rc = unreachable(path, "reading the answer: %s", strerror(errno));
			goto out;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	*answer = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* "OK\n" + body: print the body. "ERR msg\n" [+ JSON]: msg on stderr, JSON on stdout. */
static int show(const char *path, const char *answer, size_t len, int json)
{
	const char *nl = memchr(answer, '\n', len);
	const char *body = nl ? nl + 1 : answer + len;

	if (nl && !strncmp(answer, "OK\n", 3)) {
		fwrite(body, 1, len - (size_t)(body - answer), stdout);
		return QG_CTL_EXIT_OK;
	}
	if (nl && !strncmp(answer, "ERR ", 4)) {
		fprintf(stderr, "qgatectl: %.*s\n", (int)(nl - answer - 4), answer + 4);
		if (json)
			fwrite(body, 1, len - (size_t)(body - answer), stdout);
		return QG_CTL_EXIT_REFUSED;
	}
	fprintf(stderr, "qgatectl: cannot reach qgate at %s: %s\n", path,
		len ? "the answer is not qgate's admin protocol"
		    : "it closed the connection without answering");
	return QG_CTL_EXIT_UNREACHABLE;
}

int qg_ctl_admin(int argc, char **argv)
{
	const char *path = getenv("QGATE_ADMIN_SOCKET"), *words[8];
	char request[CTL_REQUEST_MAX], *answer = NULL;
	int n_words = 0, json = 0, rc;
	size_t len = 0, off, c;

	if (!path || !*path)
		path = QG_CTL_SOCKET_DEFAULT;
	for (int k = 0; k < argc; k++) {
		const char *a = argv[k];

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return -1;
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--socket")) {
			if (k + 1 >= argc)
				return usage_error("option -s needs a socket path", NULL);
			path = argv[++k];
		} else if (!strncmp(a, "--socket=", 9)) {
			path = a + 9;
		} else if (a[0] == '-' && n_words == 0) {
			return usage_error("unknown option '", a);
		} else {
			if (n_words == 8)
				return usage_error("too many arguments", NULL);
			words[n_words++] = a;
		}
	}
	if (!n_words)
		return usage_error("missing command; see 'qgatectl --help'", NULL);
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (!strcmp(commands[c].name, words[0]))
			break;
	if (c == sizeof(commands) / sizeof(commands[0]))
		return usage_error("unknown command '", words[0]);
	/* level's words vary: level | level auto | level set LEVEL (LEVEL itself is qgate's to check). */
	if (commands[c].n_args < 0 && !(n_words == 1 || (n_words == 2 && !strcmp(words[1], "auto")) ||
					(n_words == 3 && !strcmp(words[1], "set")))) {
		fprintf(stderr, "qgatectl: usage: qgatectl [-s PATH] %s%s [--json]\n", commands[c].name,
			commands[c].args);
		return QG_CTL_EXIT_USAGE;
	}
	if (commands[c].n_args >= 0 && n_words - 1 != commands[c].n_args) {
		fprintf(stderr, "qgatectl: usage: qgatectl [-s PATH] %s%s [--json]\n", commands[c].name,
			commands[c].args);
		return QG_CTL_EXIT_USAGE;
	}
	off = (size_t)snprintf(request, sizeof(request), "%s", json ? "json" : "");
	for (int i = 0; i < n_words; i++) {
		/* The protocol is words on one line: these could not arrive as one word. */
		if (!*words[i] || strpbrk(words[i], " \t\r\n"))
			return usage_error("arguments may not be empty or contain spaces: '", words[i]);
		off += (size_t)snprintf(request + off, sizeof(request) - off, "%s%s", off ? " " : "",
					words[i]);
		if (off >= sizeof(request) - 2)
			return usage_error("arguments too long", NULL);
	}
	snprintf(request + off, sizeof(request) - off, "\n");
	rc = exchange(path, request, &answer, &len);
	if (rc)
		return rc;
	rc = show(path, answer, len, json);
	free(answer);
	return rc;
}
