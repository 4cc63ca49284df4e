/*
 * jsonl listener: `listen = tcp:HOST:PORT | tcp:[V6]:PORT | unix:/PATH`.
 *
 * The option is parsed in init (no I/O) and bound in start.  HOST is a
 * numeric address, "*" or empty for any, or "localhost"; names are not
 * resolved, since resolving would block the loop.  A UNIX socket file left
 * behind by a dead process is removed before bind; one that still answers
 * is not touched.  At stop the file is removed if it is still ours.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <imgw/listen.h>

#include "jsonl.h"

static void jsonl_listen_cb(int fd, int what, void *arg);

/* Parse `spec` into jl's address.  Returns 0, or -1 after logging. */
int
jsonl_listen_parse(struct jsonl *jl, const char *spec)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&jl->addr;
	struct imgw_listen_parts lp;

	if (imgw_listen_split(spec, &lp) == -1)
		goto fail;
	if (imgw_listen_is(&lp, "tcp")) {
		if (imgw_listen_inet(&lp, &jl->addr, &jl->addrlen) == -1)
			goto fail;
		return 0;
	}
	if (imgw_listen_is(&lp, "unix")) {
		if (strlen(lp.path) >= sizeof(sun->sun_path))
			goto fail;
		memset(&jl->addr, 0, sizeof(jl->addr));
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, lp.path, strlen(lp.path) + 1);
		jl->addrlen = (socklen_t)sizeof(*sun);
		if ((jl->unix_path = strdup(lp.path)) == NULL)
			goto fail;
		return 0;
	}
fail:
	JSONL_LOG(jl, IMGW_LOG_ERR, "listen = %s: want tcp:HOST:PORT, tcp:[IPV6]:PORT "
	    "or unix:/PATH (numeric HOST, absolute PATH under %zu bytes)", spec,
	    sizeof(sun->sun_path));
	return -1;
}

/*
 * Remove a socket file nobody listens on any more.  Returns 0 when the
 * path is free, -1 (logged) when it is taken or not a socket.
 */
static int
jsonl_listen_unlink_stale(struct jsonl *jl)
{
	struct stat st;
	int fd, r, err;

	if (lstat(jl->unix_path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "%s exists and is not a socket", jl->unix_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	r = connect(fd, (struct sockaddr *)&jl->addr, jl->addrlen);
	err = errno;
	close(fd);
	/* EAGAIN: a live listener with a full backlog */
	if (r == 0 || err == EAGAIN || err == EINPROGRESS) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "%s is in use by another process", jl->unix_path);
		return -1;
	}
	if (unlink(jl->unix_path) == -1 && errno != ENOENT) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "cannot remove stale %s: %s", jl->unix_path,
		    strerror(errno));
		return -1;
	}
	JSONL_LOG(jl, IMGW_LOG_NOTICE, "removed stale socket %s", jl->unix_path);
	return 0;
}

/* "tcp:1.2.3.4:5", "tcp:[::1]:5" or "unix:/p" of the bound address. */
static void
jsonl_listen_name(struct jsonl *jl, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (jl->unix_path != NULL) {
		snprintf(buf, len, "unix:%s", jl->unix_path);
		return;
	}
	if (getsockname(jl->lfd, (struct sockaddr *)&ss, &sl) == -1)
		ss = jl->addr;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "tcp:[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "tcp:%s:%u", host, ntohs(s4->sin_port));
	}
}

/* Bind and listen, watch for connections.  Returns 0, or -1 after logging. */
int
jsonl_listen_open(struct jsonl *jl)
{
	struct stat st;
	char name[160];
	int one = 1;

	jl->lfd = socket(jl->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (jl->lfd == -1) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "socket: %s", strerror(errno));
		goto fail;
	}
	if (jl->unix_path != NULL) {
		if (jsonl_listen_unlink_stale(jl) == -1)
			goto fail;
	} else if (setsockopt(jl->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "SO_REUSEADDR: %s", strerror(errno));
		goto fail;
	}
	if (bind(jl->lfd, (struct sockaddr *)&jl->addr, jl->addrlen) == -1) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "bind %s: %s", jl->listen, strerror(errno));
		goto fail;
	}
	if (jl->unix_path != NULL) {
		jl->unix_made = 1;
		if (stat(jl->unix_path, &st) == 0) {
			jl->unix_dev = st.st_dev;
			jl->unix_ino = st.st_ino;
		}
	}
	if (listen(jl->lfd, SOMAXCONN) == -1) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "listen %s: %s", jl->listen, strerror(errno));
		goto fail;
	}
	jl->lwatch = jl->host->watch_add(jl->inst, jl->lfd, IMGW_WATCH_READ, jsonl_listen_cb, jl);
	if (jl->lwatch == NULL) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "cannot watch the listening socket");
		goto fail;
	}
	jsonl_listen_name(jl, name, sizeof(name));
	JSONL_LOG(jl, IMGW_LOG_NOTICE, "listening on %s", name);
	return 0;

fail:
	jsonl_listen_close(jl);
	return -1;
}

/* Stop listening; remove the socket file if it is still the one we made. */
void
jsonl_listen_close(struct jsonl *jl)
{
	struct stat st;

	if (jl->ltimer != NULL) {
		jl->host->timer_del(jl->ltimer);
		jl->ltimer = NULL;
	}
	if (jl->lwatch != NULL) {
		jl->host->watch_del(jl->lwatch);
		jl->lwatch = NULL;
	}
	if (jl->lfd != -1) {
		close(jl->lfd);
		jl->lfd = -1;
	}
	if (jl->unix_made) {
		if (stat(jl->unix_path, &st) == 0 && st.st_dev == jl->unix_dev &&
		    st.st_ino == jl->unix_ino)
			(void)unlink(jl->unix_path);
		jl->unix_made = 0;
	}
}

/* Accepting again after running out of descriptors. */
static void
jsonl_listen_retry_cb(void *arg)
{
	struct jsonl *jl = arg;

	jl->ltimer = NULL;	/* fired: the core freed it */
	if (jl->lfd == -1 || jl->lwatch != NULL)
		return;
	jl->lwatch = jl->host->watch_add(jl->inst, jl->lfd, IMGW_WATCH_READ, jsonl_listen_cb, jl);
	if (jl->lwatch == NULL)
		jl->ltimer = jl->host->timer_add(jl->inst, JSONL_ACCEPT_RETRY_MS,
		    jsonl_listen_retry_cb, jl);
}

/* Out of descriptors: stop watching for a moment instead of spinning. */
static void
jsonl_listen_pause(struct jsonl *jl)
{
	if (jl->lwatch != NULL) {
		jl->host->watch_del(jl->lwatch);
		jl->lwatch = NULL;
	}
	if (jl->ltimer == NULL)
		jl->ltimer = jl->host->timer_add(jl->inst, JSONL_ACCEPT_RETRY_MS,
		    jsonl_listen_retry_cb, jl);
}

/* Over max-connections: say why in the protocol, then hang up. */
static void
jsonl_listen_refuse(struct jsonl *jl, int fd)
{
	static const char line[] = "{\"type\":\"error\",\"id\":null,"
	    "\"condition\":\"resource-constraint\",\"text\":\"too many connections\"}\n";

	(void)send(fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	jl->host->counter_add(jl->inst, "connections-refused", 1);
}

static void
jsonl_listen_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}

static void
jsonl_listen_cb(int fd, int what, void *arg)
{
	struct jsonl *jl = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	char peer[80];
	int cfd, i, one = 1;

	for (i = 0; i < JSONL_ACCEPTS_PER_CB; i++) {
		sl = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				JSONL_LOG(jl, IMGW_LOG_WARNING, "accept: %s; pausing",
				    strerror(errno));
				jsonl_listen_pause(jl);
				return;
			default:
				JSONL_LOG(jl, IMGW_LOG_WARNING, "accept: %s", strerror(errno));
				return;
			}
		}
		if (jl->nconns >= jl->max_conns) {
			jsonl_listen_refuse(jl, cfd);
			continue;
		}
		if (ss.ss_family != AF_UNIX)
			(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		jsonl_listen_peer(&ss, peer, sizeof(peer));
		if (jsonl_conn_new(jl, cfd, peer) == NULL)
			close(cfd);
	}
}
