/*
 * The control socket: one command line per connection, one answer, close.
 *
 * A client is served in three states: reading its line, answered (waiting
 * for the answer to drain, discarding anything else it sends), and gone.
 * Credentials are taken at accept time but the refusal is only sent once
 * the command line has been read, so that the client never sees its own
 * unread bytes turn into a reset.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* struct ucred */
#endif
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "control.h"
#include "log.h"

#define CONTROL_LINE_MAX	4096	/* bytes of a command line, without EOL */
#define CONTROL_IDLE_SECS	10	/* idle client timeout */
#define CONTROL_CLIENTS_MAX	64	/* concurrent clients */
#define CONTROL_BACKLOG		16
#define CONTROL_ECHO_MAX	80	/* bytes of an unknown command echoed */
#define CONTROL_ACCEPT_PAUSE	1	/* seconds, after accept() fails */

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	int allowed;		/* peer is root or the daemon's uid */
	int answered;		/* answer queued; close once it drained */
	struct control_client *prev, *next;
};

struct control {
	struct event_base *base;
	const struct control_ops *ops;
	void *arg;
	char *path;
	dev_t dev;		/* identity of the socket file we bound, so */
	ino_t ino;		/* close never unlinks another's socket */
	struct evconnlistener *listener;
	struct event *resume;	/* re-enables the listener after EMFILE & co */
	struct control_client *clients;
	size_t nclients;
	int in_op;		/* inside an ops callback */
	int close_pending;	/* control_close called from inside one */
};

static void control_free(struct control *c);
static void control_client_event_cb(struct bufferevent *bev, short what, void *arg);

/* mkdir -p for the socket's directory; only the last one gets 0750. */
static int
control_mkdir(const char *path)
{
	char *dir, *p;
	struct stat st;
	int ret = -1;

	if ((dir = strdup(path)) == NULL) {
		log_err("control socket %s: out of memory", path);
		return -1;
	}
	if ((p = strrchr(dir, '/')) == NULL || p == dir) {
		free(dir);
		return 0;	/* relative name in the cwd, or in "/" */
	}
	*p = '\0';
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_err("control socket %s: %s is not a directory", path, dir);
			goto fail;
		}
		ret = 0;
		goto fail;
	}
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			log_err("control socket %s: cannot create %s: %s", path, dir,
			    strerror(errno));
			goto fail;
		}
		*p = '/';
	}
	if (mkdir(dir, 0750) == -1) {
		if (errno != EEXIST) {
			log_err("control socket %s: cannot create %s: %s", path, dir,
			    strerror(errno));
			goto fail;
		}
	} else if (chmod(dir, 0750) == -1) {
		log_warn("control socket %s: chmod %s: %s", path, dir, strerror(errno));
	}
	ret = 0;
fail:
	free(dir);
	return ret;
}

/*
 * A socket file already at the path: replace it when nobody answers on it
 * (left by a dead imgwd), refuse when somebody does.  Anything that is not
 * a socket is never removed.
 */
static int
control_clear_stale(const struct sockaddr_un *sun)
{
	const char *path = sun->sun_path;
	struct stat st;
	int fd, ret = -1;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_err("control socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control socket %s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_err("control socket %s: socket: %s", path, strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		log_err("control socket %s is in use by another imgwd", path);
		goto fail;
	}
	if (errno != ECONNREFUSED) {
		log_err("control socket %s: cannot tell whether it is in use: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_err("control socket %s: cannot remove stale socket: %s", path,
		    strerror(errno));
		goto fail;
	}
	log_notice("control socket %s: removed stale socket", path);
	ret = 0;
fail:
	close(fd);
	return ret;
}

/* A bound, listening, non-blocking socket at sun_path with mode 0600. */
static int
control_bind(struct control *c, const struct sockaddr_un *sun)
{
	struct stat st;
	mode_t mask;
	int fd, rc, err;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_err("control socket %s: socket: %s", c->path, strerror(errno));
		return -1;
	}
	/* The umask closes the window between bind and chmod. */
	mask = umask(0177);
	rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	err = errno;
	umask(mask);
	if (rc == -1) {
		log_err("control socket %s: bind: %s", c->path, strerror(err));
		goto fail;
	}
	if (chmod(c->path, 0600) == -1 || lstat(c->path, &st) == -1) {
		log_err("control socket %s: %s", c->path, strerror(errno));
		goto fail_unlink;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(fd, CONTROL_BACKLOG) == -1) {
		log_err("control socket %s: listen: %s", c->path, strerror(errno));
		goto fail_unlink;
	}
	return fd;
fail_unlink:
	unlink(c->path);
fail:
	close(fd);
	return -1;
}

static void
control_client_free(struct control_client *cl)
{
	struct control *c = cl->ctl;

	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	c->nclients--;
	bufferevent_free(cl->bev);
	free(cl);
}

static void
control_client_done_cb(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		control_client_free(cl);
}

/* After the answer: swallow whatever else the client sends. */
static void
control_client_drain_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

/* Queue "ok"/"error", the body and a final newline; close once drained. */
static void
control_answer(struct control_client *cl, int ok, struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;
	struct evbuffer_ptr end;
	char last = '\n';

	cl->answered = 1;
	evbuffer_add_printf(out, "%s\n", ok ? "ok" : "error");
	if (len > 0) {
		if (evbuffer_ptr_set(body, &end, len - 1, EVBUFFER_PTR_SET) == 0)
			evbuffer_copyout_from(body, &end, &last, 1);
		evbuffer_add_buffer(out, body);
		if (last != '\n')
			evbuffer_add(out, "\n", 1);
	}
	bufferevent_setcb(cl->bev, control_client_drain_cb, control_client_done_cb,
	    control_client_event_cb, cl);
}

/* Answer "error" with a fixed message. */
static void
control_refuse(struct control_client *cl, const char *msg)
{
	struct evbuffer *body = evbuffer_new();

	if (body != NULL)
		evbuffer_add(body, msg, strlen(msg));
	control_answer(cl, 0, body);
	if (body != NULL)
		evbuffer_free(body);
}

static void
control_run(struct control_client *cl, const char *line)
{
	struct control *c = cl->ctl;
	const struct control_ops *ops = c->ops;
	struct evbuffer *body;
	int rc;

	if (!cl->allowed) {
		control_refuse(cl, "permission denied");
		return;
	}
	if ((body = evbuffer_new()) == NULL) {
		log_err("control: out of memory");
		control_client_free(cl);
		return;
	}
	/* Log at most CONTROL_ECHO_MAX bytes of what a client sent. */
	/* queries are debug; what changes something is a notice */
	if (strcmp(line, "status") == 0 || strcmp(line, "status --json") == 0 ||
	    strncmp(line, "policy wait", 11) == 0 ||
	    strncmp(line, "policy test", 11) == 0)
		log_debug("control: %s", line);
	else
		log_notice("control: %.*s%s", CONTROL_ECHO_MAX, line,
		    strlen(line) > CONTROL_ECHO_MAX ? "..." : "");
	c->in_op = 1;
	if (strcmp(line, "status") == 0 && ops->status != NULL)
		rc = ops->status(c->arg, 0, body);
	else if (strcmp(line, "status --json") == 0 && ops->status != NULL)
		rc = ops->status(c->arg, 1, body);
	else if (strcmp(line, "reload") == 0 && ops->reload != NULL)
		rc = ops->reload(c->arg, body);
	else if (strcmp(line, "stop") == 0 && ops->stop != NULL)
		rc = ops->stop(c->arg, body);
	else if (ops->other != NULL &&
	    (rc = ops->other(c->arg, line, body)) != CONTROL_UNKNOWN)
		;
	else {
		evbuffer_add_printf(body, "unknown command '%.*s%s'", CONTROL_ECHO_MAX, line,
		    strlen(line) > CONTROL_ECHO_MAX ? "..." : "");
		rc = -1;
	}
	c->in_op = 0;
	control_answer(cl, rc == 0, body);
	evbuffer_free(body);
	if (c->close_pending)
		control_free(c);
}

/*
 * Take the command line if it is complete ("\n" or "\r\n"); at EOF a last
 * line without its newline counts too.  Returns non-zero once the client
 * was answered (or freed).
 */
static int
control_client_line(struct control_client *cl, int eof)
{
	struct evbuffer *in = bufferevent_get_input(cl->bev);
	struct evbuffer_ptr eol;
	size_t len, i, eol_len = 0;
	char *line;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (eol.pos == -1) {
		len = evbuffer_get_length(in);
		/* One more byte may be the "\r" of a "\r\n" still on its way. */
		if (len > CONTROL_LINE_MAX + 1 || (eof && len > CONTROL_LINE_MAX))
			goto too_long;
		if (!eof || len == 0)
			return 0;
	} else {
		len = (size_t)eol.pos;
		if (len > CONTROL_LINE_MAX)
			goto too_long;
	}
	if ((line = malloc(len + 1)) == NULL) {
		log_err("control: out of memory");
		control_client_free(cl);
		return 1;
	}
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, evbuffer_get_length(in));
	line[len] = '\0';
	/* The line is echoed in answers and logs: no control bytes there. */
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	control_run(cl, line);
	free(line);
	return 1;
too_long:
	evbuffer_drain(in, evbuffer_get_length(in));
	control_refuse(cl, "line too long");
	return 1;
}

static void
control_client_read_cb(struct bufferevent *bev, void *arg)
{
	control_client_line(arg, 0);
}

static void
control_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *cl = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		log_debug("control: client timed out");
		control_client_free(cl);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		log_debug("control: client: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		control_client_free(cl);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client may half-close after its line: answer anyway. */
		if (!cl->answered && control_client_line(cl, 1))
			return;
		if (!cl->answered) {
			control_client_free(cl);
			return;
		}
		bufferevent_disable(bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			control_client_free(cl);
	}
}

static void
control_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct control *c = arg;
	struct control_client *cl;
	struct timeval idle = {CONTROL_IDLE_SECS, 0};
	struct ucred cred;
	socklen_t credlen = sizeof(cred);

	if (c->nclients >= CONTROL_CLIENTS_MAX) {
		log_warn("control: more than %d clients, refusing one", CONTROL_CLIENTS_MAX);
		evutil_closesocket(fd);
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		log_err("control: out of memory");
		evutil_closesocket(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == -1) {
		log_warn("control: SO_PEERCRED: %s", strerror(errno));
	} else if (cred.uid == 0 || cred.uid == geteuid()) {
		cl->allowed = 1;
	} else {
		log_warn("control: refusing client uid %lu pid %ld", (unsigned long)cred.uid,
		    (long)cred.pid);
	}
	cl->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cl->bev == NULL) {
		log_err("control: cannot create a bufferevent");
		evutil_closesocket(fd);
		free(cl);
		return;
	}
	cl->ctl = c;
	cl->next = c->clients;
	if (c->clients != NULL)
		c->clients->prev = cl;
	c->clients = cl;
	c->nclients++;
	bufferevent_setcb(cl->bev, control_client_read_cb, NULL, control_client_event_cb, cl);
	bufferevent_set_timeouts(cl->bev, &idle, &idle);
	/* Read past the limit by a little, so that "too long" can be told. */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, CONTROL_LINE_MAX + 3);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

static void
control_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	evconnlistener_enable(c->listener);
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS...): pause instead of spinning. */
static void
control_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct control *c = arg;
	struct timeval pause = {CONTROL_ACCEPT_PAUSE, 0};
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("control socket %s: accept: %s", c->path, evutil_socket_error_to_string(err));
	evconnlistener_disable(lev);
	evtimer_add(c->resume, &pause);
}

struct control *
control_open(struct event_base *base, const char *path, const struct control_ops *ops,
    void *arg)
{
	struct control *c;
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path == NULL || *path == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket path '%s' is empty or too long (at most %zu bytes)",
		    path != NULL ? path : "", sizeof(sun.sun_path) - 1);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));

	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
		log_err("control socket %s: out of memory", path);
		goto fail;
	}
	c->base = base;
	c->ops = ops;
	c->arg = arg;
	if ((c->resume = evtimer_new(base, control_resume_cb, c)) == NULL) {
		log_err("control socket %s: cannot create a timer", path);
		goto fail;
	}
	if (control_mkdir(path) == -1 || control_clear_stale(&sun) == -1)
		goto fail;
	if ((fd = control_bind(c, &sun)) == -1)
		goto fail;
	c->listener = evconnlistener_new(base, control_accept_cb, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (c->listener == NULL) {
		log_err("control socket %s: cannot listen", path);
		close(fd);
		unlink(path);
		goto fail;
	}
	evconnlistener_set_error_cb(c->listener, control_accept_error_cb);
	log_info("control socket %s: listening", path);
	return c;
fail:
	if (c != NULL) {
		if (c->resume != NULL)
			event_free(c->resume);
		free(c->path);
		free(c);
	}
	return NULL;
}

/*
 * One non-blocking send of a queued answer.  Not evbuffer_write: a socket
 * bufferevent keeps the start of its output frozen.
 */
static void
control_client_flush(struct control_client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *p;

	if (len == 0 || (p = evbuffer_pullup(out, -1)) == NULL)
		return;
	if (send(bufferevent_getfd(cl->bev), p, len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_debug("control: flushing an answer: %s", strerror(errno));
}

static void
control_free(struct control *c)
{
	struct control_client *cl;
	struct stat st;

	if (c->listener != NULL) {
		evconnlistener_free(c->listener);
		c->listener = NULL;
		if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			unlink(c->path);
	}
	if (c->in_op) {
		/* Called from an op: finish after the op's answer is queued. */
		c->close_pending = 1;
		return;
	}
	while ((cl = c->clients) != NULL) {
		/*
		 * Best effort for answers still queued (the "stop" answer when the
		 * loop ended before it drained): one non-blocking write.
		 */
		if (cl->answered)
			control_client_flush(cl);
		control_client_free(cl);
	}
	event_free(c->resume);
	free(c->path);
	free(c);
}

void
control_close(struct control *c)
{
	if (c != NULL)
		control_free(c);
}
