/*
 * jsonl connection: a nonblocking stream socket cut into lines.
 *
 * Input: bytes accumulate in `in` (at most max-line + 1 bytes) until a
 * newline; each complete line goes to proto.c.  A line that outgrows
 * max-line is answered with policy-violation and skipped up to its
 * newline.  Output: lines are appended to `out` and written when the
 * socket is writable.  When more than max-output bytes wait, the
 * connection stops reading (the client must read its answers) and the
 * instance's deliver answers AGAIN; below half of it both resume.
 *
 * A connection is only ever freed from its own watch callback or from
 * stop, never from within deliver or proto.c: those just mark it dead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <json.h>

#include "jsonl.h"

#define JSONL_IN_START		4096
#define JSONL_OUT_START		4096
#define JSONL_OUT_KEEP		(256 * 1024)	/* keep an idle buffer this big */

static void jsonl_conn_cb(int fd, int what, void *arg);

size_t
jsonl_conn_pending(const struct jsonl_conn *c)
{
	return c->out_len - c->out_off;
}

/* Non-zero when deliveries may go to c. */
int
jsonl_conn_usable(const struct jsonl_conn *c)
{
	return !c->dead && !c->eof;
}

/* Set the watch interest from the connection's state. */
static void
jsonl_conn_want(struct jsonl_conn *c)
{
	struct jsonl *jl = c->jl;
	size_t pending = jsonl_conn_pending(c);
	int want = 0;

	if (pending > jl->max_output)
		c->rpaused = 1;
	else if (pending < jl->max_output / 2)
		c->rpaused = 0;
	if (!c->eof && !c->dead && !c->rpaused)
		want |= IMGW_WATCH_READ;
	/* a dead connection wants WRITE only to get its callback run */
	if (pending > 0 || c->dead)
		want |= IMGW_WATCH_WRITE;
	if (want == 0)
		want = IMGW_WATCH_READ;
	if (want != c->want && c->watch != NULL) {
		if (jl->host->watch_set(c->watch, want) == 0)
			c->want = want;
		else
			c->dead = 1;
	}
}

/*
 * Take ownership of fd (nonblocking, connected) as a new connection.
 * Returns the connection, or NULL (fd not closed) after logging.
 */
struct jsonl_conn *
jsonl_conn_new(struct jsonl *jl, int fd, const char *peer)
{
	struct jsonl_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->jl = jl;
	c->fd = fd;
	c->id = ++jl->next_id;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->want = IMGW_WATCH_READ;
	c->watch = jl->host->watch_add(jl->inst, fd, c->want, jsonl_conn_cb, c);
	if (c->watch == NULL)
		goto fail;
	c->next = jl->conns;
	if (jl->conns != NULL)
		jl->conns->prev = c;
	jl->conns = c;
	jl->nconns++;
	jl->host->counter_add(jl->inst, "connections", 1);
	JSONL_LOG(jl, IMGW_LOG_INFO, "connection %lu from %s", c->id, c->peer);
	return c;

fail:
	JSONL_LOG(jl, IMGW_LOG_WARNING, "cannot take connection from %s: %s", peer,
	    c == NULL ? "out of memory" : "no watch");
	free(c);
	return NULL;
}

/*
 * Close and free c: unbind, delete its watch, close its fd.  If a deliver
 * is waiting for this connection to drain, the instance resumes: the
 * event is then retried against the remaining connections.
 */
void
jsonl_conn_close(struct jsonl_conn *c, const char *why)
{
	struct jsonl *jl = c->jl;
	int resume;

	JSONL_LOG(jl, IMGW_LOG_INFO, "connection %lu from %s closed: %s", c->id, c->peer, why);
	jsonl_bind_drop_conn(c);
	if (c->watch != NULL)
		jl->host->watch_del(c->watch);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		jl->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	jl->nconns--;
	jl->host->counter_add(jl->inst, "connections", -1);
	resume = c->blocked && jl->again && !jl->stopping;
	free(c->in);
	free(c->out);
	free(c);
	if (resume) {
		jl->again = 0;
		jl->host->resume(jl->inst);
	}
}

/*
 * Write what is pending until the socket would block.  Returns 0, or -1
 * on an error that ends the connection.
 */
static int
jsonl_conn_write(struct jsonl_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > JSONL_OUT_KEEP) {
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
	return 0;
}

/* Best effort, never blocking: used by stop before closing. */
void
jsonl_conn_flush(struct jsonl_conn *c)
{
	if (!c->dead)
		(void)jsonl_conn_write(c);
}

/*
 * Queue `line` (len bytes, no newline) plus a newline.  Never writes now:
 * that happens from the watch, so this is safe from deliver and proto.c.
 * Returns 0, or -1 when out of memory (c is then marked dead).
 */
int
jsonl_conn_send(struct jsonl_conn *c, const char *line, size_t len)
{
	size_t need, cap;
	char *p;

	if (c->dead)
		return -1;
	if (c->out_off > 0 && c->out_len + len + 1 > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	need = c->out_len + len + 1;
	if (need > c->out_cap) {
		cap = c->out_cap ? c->out_cap : JSONL_OUT_START;
		while (cap < need)
			cap *= 2;
		if ((p = realloc(c->out, cap)) == NULL)
			goto fail;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, len);
	c->out[c->out_len + len] = '\n';
	c->out_len = need;
	c->jl->host->counter_add(c->jl->inst, "lines-out", 1);
	jsonl_conn_want(c);
	return 0;

fail:
	c->dead = 1;
	jsonl_conn_want(c);
	return -1;
}

/* Queue obj as one line.  obj stays the caller's. */
int
jsonl_conn_send_json(struct jsonl_conn *c, struct json_object *obj)
{
	const char *s;
	size_t len;

	if ((s = jsonl_codec_text(obj, &len)) == NULL) {
		c->dead = 1;
		jsonl_conn_want(c);
		return -1;
	}
	return jsonl_conn_send(c, s, len);
}

/* Hand every complete line in `in` to proto.c; keep the partial rest. */
static void
jsonl_conn_lines(struct jsonl_conn *c)
{
	struct jsonl *jl = c->jl;
	size_t start = 0, pos = c->in_scan, end, len, rest;
	char *nl;

	while (pos < c->in_len && !c->dead &&
	    (nl = memchr(c->in + pos, '\n', c->in_len - pos)) != NULL) {
		end = (size_t)(nl - c->in);
		if (c->discard) {
			c->discard = 0;
		} else {
			len = end - start;
			if (len > 0 && c->in[start + len - 1] == '\r')
				len--;
			c->in[start + len] = '\0';
			jsonl_proto_line(c, c->in + start, len);
		}
		start = pos = end + 1;
	}
	rest = c->in_len - start;
	if (c->discard) {
		c->in_len = c->in_scan = 0;
		return;
	}
	if (rest > jl->max_line) {
		jl->host->counter_add(jl->inst, "lines-in", 1);
		jsonl_proto_error(c, NULL, IMGW_ERR_POLICY_VIOLATION, "line longer than max-line");
		c->discard = 1;
		c->in_len = c->in_scan = 0;
		return;
	}
	if (start > 0)
		memmove(c->in, c->in + start, rest);
	c->in_len = c->in_scan = rest;
}

/*
 * Read what the socket has (bounded per call) and process lines.  Returns
 * 0, or -1 on a read error.  End of file sets c->eof.
 */
static int
jsonl_conn_read(struct jsonl_conn *c)
{
	struct jsonl *jl = c->jl;
	size_t limit = jl->max_line + 1, cap;
	ssize_t n;
	char *p;
	int i;

	for (i = 0; i < JSONL_READS_PER_CB && !c->eof && !c->dead && !c->rpaused; i++) {
		if (c->in_len == c->in_cap) {
			/* lines() keeps in_len <= max_line, so this grows
			 * only below the limit */
			cap = c->in_cap ? c->in_cap * 2 : JSONL_IN_START;
			if (cap > limit)
				cap = limit;
			/* one spare byte: a last line without newline */
			if (cap <= c->in_len || (p = realloc(c->in, cap + 1)) == NULL) {
				c->dead = 1;
				return 0;
			}
			c->in = p;
			c->in_cap = cap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		if (n == 0) {
			c->eof = 1;
			/* a last line without newline still counts */
			if (c->in_len > 0 && !c->discard) {
				c->in[c->in_len++] = '\n';
				jsonl_conn_lines(c);
			}
			c->in_len = c->in_scan = 0;
			/* nothing more comes in: deliveries go elsewhere */
			jsonl_bind_drop_conn(c);
			return 0;
		}
		c->in_len += (size_t)n;
		jsonl_conn_lines(c);
		/* answers may have filled the output past the limit */
		jsonl_conn_want(c);
	}
	return 0;
}

static void
jsonl_conn_cb(int fd, int what, void *arg)
{
	struct jsonl_conn *c = arg;
	struct jsonl *jl = c->jl;
	char why[128];

	if ((what & IMGW_WATCH_READ) && jsonl_conn_read(c) == -1) {
		snprintf(why, sizeof(why), "read: %s", strerror(errno));
		jsonl_conn_close(c, why);
		return;
	}
	if (c->dead) {
		jsonl_conn_close(c, "out of memory or watch failure");
		return;
	}
	if (jsonl_conn_pending(c) > 0 && jsonl_conn_write(c) == -1) {
		snprintf(why, sizeof(why), "write: %s", strerror(errno));
		jsonl_conn_close(c, why);
		return;
	}
	if (c->eof && jsonl_conn_pending(c) == 0) {
		jsonl_conn_close(c, "closed by peer");
		return;
	}
	jsonl_conn_want(c);
	if (c->dead) {
		jsonl_conn_close(c, "watch failure");
		return;
	}
	if (c->blocked && jsonl_conn_pending(c) < jl->max_output / 2) {
		c->blocked = 0;
		if (jl->again && !jl->stopping) {
			/* last thing we do: the core may deliver from here */
			jl->again = 0;
			jl->host->resume(jl->inst);
		}
	}
}
