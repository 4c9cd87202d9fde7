/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin socket server: a non-blocking Unix stream listener and a few
 * connection slots, each reading one request line and writing one answer.
 * The control thread polls it with everything else, so a slow or silent
 * client costs a slot (until its deadline), never the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qgate/admin.h"
#include "qgate/log.h"

#define ADMIN_CONN_TIMEOUT_NS (5ULL * 1000000000ULL) /* a client gets 5 s to ask and to read */

struct adm_conn {
	int fd; /* -1 = free slot */
	char in[QG_ADMIN_LINE_MAX];
	size_t in_len;
	char *out; /* the answer once the request is complete */
	size_t out_len;
	size_t out_off;
	uint64_t deadline_ns;
};

struct qg_admin {
	int fd;
	char path[QG_CONFIG_SOCKET_PATH_MAX];
	dev_t dev; /* identity of our socket file, so exit only removes ours */
	ino_t ino;
	uint64_t requests;
	struct qg_admin_target *target;
	struct adm_conn conn[QG_ADMIN_CONN_MAX];
};

static int fill_sun(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/*
 * A socket file left by a crashed qgate is replaced; one a running qgate
 * still accepts on is not, or two gateways would silently share a path and
 * the first would lose its operators. Connecting tells the two apart.
 */
static int check_existing(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		QG_LOG_ERR("admin: %s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	rc = rc < 0 ? -errno : 0;
	close(fd);
	/* EAGAIN: the listener's backlog is full, so it is very much alive. */
	if (rc == 0 || rc == -EAGAIN) {
		QG_LOG_ERR("admin: %s is in use by a running qgate (stop it or choose another admin.socket)",
			   path);
		return -EADDRINUSE;
	}
	if (rc != -ECONNREFUSED) {
		QG_LOG_ERR("admin: cannot check %s: %s", path, strerror(-rc));
		return rc;
	}
	QG_LOG_INFO("admin: removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * uid/gid (uid_t)-1 leave the owner or group as bind() made them. Ownership
 * and mode are final before listen(): until then a connect() is refused, so
 * no client ever reaches a socket that is more open than configured.
 */
static int admin_create(const char *path, uint32_t mode, uid_t uid, gid_t gid, struct qg_admin_target *t,
			struct qg_admin **out)
{
	struct sockaddr_un sun;
	struct qg_admin *a;
	struct stat st;
	mode_t old_mask;
	int rc;

	rc = fill_sun(path, &sun);
	if (rc) {
		QG_LOG_ERR("admin: socket path %s is too long", path);
		return rc;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	a->target = t;
	for (unsigned i = 0; i < QG_ADMIN_CONN_MAX; i++)
		a->conn[i].fd = -1;
	snprintf(a->path, sizeof(a->path), "%s", path);
	rc = check_existing(path, &sun);
	if (rc)
		goto err;
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		rc = -errno;
		goto err;
	}
	/*
	 * bind() creates the file with 0777 & ~umask: set the umask so it is
	 * never more open than mode, even for the instant before chmod().
	 */
	old_mask = umask((mode_t)(~mode & 0777));
	rc = bind(a->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old_mask);
	if (rc) {
		QG_LOG_ERR("admin: cannot bind %s: %s", path, strerror(-rc));
		goto err;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(path, uid, gid) < 0) {
		rc = -errno;
		QG_LOG_ERR("admin: cannot give %s owner %d and group %d: %s", path, (int)uid, (int)gid,
			   strerror(-rc));
		unlink(path);
		goto err;
	}
	if (chmod(path, (mode_t)mode) < 0 || stat(path, &st) < 0 || listen(a->fd, 16) < 0) {
		rc = -errno;
		QG_LOG_ERR("admin: cannot set up %s: %s", path, strerror(-rc));
		unlink(path);
		goto err;
	}
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	*out = a;
	return 0;
err:
	if (a->fd >= 0)
		close(a->fd);
	free(a);
	return rc;
}

int qg_admin_create(const char *path, uint32_t mode, struct qg_admin_target *t, struct qg_admin **out)
{
	return admin_create(path, mode, (uid_t)-1, (gid_t)-1, t, out);
}

int qg_admin_create_cfg(const struct qg_config_admin *ac, struct qg_admin_target *t, struct qg_admin **out)
{
	return admin_create(ac->socket, ac->mode, ac->has_owner ? (uid_t)ac->owner : (uid_t)-1,
			    ac->has_group ? (gid_t)ac->group : (gid_t)-1, t, out);
}

static void conn_close(struct adm_conn *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void conn_answer(struct qg_admin *a, struct adm_conn *c)
{
	size_t n = c->in_len;

	while (n && (c->in[n - 1] == '\n' || c->in[n - 1] == '\r'))
		n--;
	c->in[n] = '\0';
	if (qg_admin_execute(a->target, c->in, &c->out, &c->out_len) < 0) {
		c->out = strdup("ERR out of memory\n");
		c->out_len = c->out ? strlen(c->out) : 0;
	}
	a->requests++;
}

/* Read what is there; the request is complete at its newline (or when the client shuts down writing). */
static int conn_read(struct qg_admin *a, struct adm_conn *c)
{
	ssize_t r;
	char *nl;

	for (;;) {
		r = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (r == 0) {
			if (!c->in_len)
				return -ECONNRESET;
			break;
		}
		c->in_len += (size_t)r;
		c->in[c->in_len] = '\0';
		nl = memchr(c->in, '\n', c->in_len);
		if (nl) {
			c->in_len = (size_t)(nl - c->in) + 1;
			break;
		}
		if (c->in_len == sizeof(c->in) - 1) {
			c->out = strdup("ERR request line too long (max 1023 bytes)\n");
			c->out_len = c->out ? strlen(c->out) : 0;
			return c->out ? 0 : -ENOMEM;
		}
	}
	conn_answer(a, c);
	return 0;
}

/* Write what the socket takes. @return 1 when all is sent, 0 to wait, -errno. */
static int conn_write(struct adm_conn *c)
{
	ssize_t r;

	while (c->out_off < c->out_len) {
		r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->out_off += (size_t)r;
	}
	return 1;
}

static void accept_all(struct qg_admin *a, uint64_t now_ns)
{
	static const char busy[] = "ERR busy: too many admin connections, try again\n";
	unsigned i;
	int fd;

	for (;;) {
		fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		for (i = 0; i < QG_ADMIN_CONN_MAX && a->conn[i].fd >= 0; i++)
			;
		if (i == QG_ADMIN_CONN_MAX) {
			/* Best effort: the answer fits any socket buffer, and we do not wait. */
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				QG_LOG_DEBUG("admin: busy answer lost: %s", strerror(errno));
			close(fd);
			continue;
		}
		a->conn[i].fd = fd;
		a->conn[i].deadline_ns = now_ns + ADMIN_CONN_TIMEOUT_NS;
	}
}

void qg_admin_poll(struct qg_admin *a, uint64_t now_ns)
{
	if (!a)
		return;
	accept_all(a, now_ns);
	for (unsigned i = 0; i < QG_ADMIN_CONN_MAX; i++) {
		struct adm_conn *c = &a->conn[i];
		int rc = 0;

		if (c->fd < 0)
			continue;
		if (!c->out)
			rc = conn_read(a, c);
		if (!rc && c->out) {
			rc = conn_write(c);
			if (rc == 1) {
				/* One request per connection: closing ends the answer for the client. */
				conn_close(c);
				continue;
			}
		}
		if (rc < 0 || now_ns > c->deadline_ns)
			conn_close(c);
	}
}

unsigned qg_admin_pollfds(const struct qg_admin *a, struct pollfd *fds, unsigned max)
{
	unsigned n = 0;

	if (!a || !max)
		return 0;
	fds[n].fd = a->fd;
	fds[n].events = POLLIN;
	fds[n++].revents = 0;
	for (unsigned i = 0; i < QG_ADMIN_CONN_MAX && n < max; i++) {
		if (a->conn[i].fd < 0)
			continue;
		fds[n].fd = a->conn[i].fd;
		fds[n].events = a->conn[i].out ? POLLOUT : POLLIN;
		fds[n++].revents = 0;
	}
	return n;
}

uint64_t qg_admin_requests(const struct qg_admin *a)
{
	return a ? a->requests : 0;
}

void qg_admin_destroy(struct qg_admin *a)
{
	struct stat st;

	if (!a)
		return;
	for (unsigned i = 0; i < QG_ADMIN_CONN_MAX; i++)
		if (a->conn[i].fd >= 0)
			conn_close(&a->conn[i]);
	close(a->fd);
	/* Another qgate may have replaced a file we lost (deleted by hand): leave theirs alone. */
	if (stat(a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino && unlink(a->path) < 0)
		/* After a privilege drop the directory may be root's: the next start replaces the file. */
		QG_LOG_INFO("admin: cannot remove %s: %s (a stale socket is replaced at the next start)",
			    a->path, strerror(errno));
	free(a);
}
