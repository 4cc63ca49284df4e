/*
 * TCP: listeners, accepted and outgoing connections, stream framing.
 *
 * A message on a stream ends Content-Length bytes after the blank line
 * (RFC 3261 18.3); without Content-Length it cannot be framed: the head
 * is answered 400 and the connection closed.  A head without its blank
 * line within max-message bytes, or a Content-Length that would take the
 * message past max-message, is answered 513 and the connection closed.
 * CRLF keep-alives (RFC 5626 4.4.1) are answered with one CRLF.
 *
 * TLS connections (tls.c) take the same path: the handshake runs first
 * (output waits in `out`), then reads and writes go through OpenSSL.
 *
 * Connections are named by id everywhere else; one is freed only from its
 * own watch callback, from idle checks or from stop, never while input on
 * it is being handled (then it is only marked dead).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* accept4, memmem */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include "sipstack-internal.h"

static void sip_tcp_cb(int fd, int what, void *arg);

struct sip_tcp *
sip_tcp_find(struct sip_stack *st, uint64_t id)
{
	struct sip_tcp *c;

	for (c = st->conns; c != NULL; c = c->next)
		if (c->id == id && !c->dead)
			return c;
	return NULL;
}

/* An open connection to ss over proto; for TLS one we opened and
 * verified for the same name. */
struct sip_tcp *
sip_tcp_find_peer(struct sip_stack *st, int proto,
    const struct sockaddr_storage *ss, socklen_t len, const char *name)
{
	struct sip_tcp *c;
	int tls = proto == SIP_PROTO_TLS;

	for (c = st->conns; c != NULL; c = c->next)
		if (!c->dead && c->tls == tls &&
		    sip_net_same(&c->peer, c->peerlen, ss, len) &&
		    (!tls || strcmp(c->name, name ? name : "") == 0))
			return c;
	return NULL;
}

/* Whether connection id is TLS with a certificate named in tls_names. */
int
sip_tcp_trusted(struct sip_stack *st, uint64_t id)
{
	struct sip_tcp *c = sip_tcp_find(st, id);

	return c != NULL && c->tls && c->hs_done && c->tls_trusted;
}

static void
sip_tcp_want(struct sip_tcp *c)
{
	int want = IMGW_WATCH_READ;

	if (c->out_len > c->out_off || c->connecting)
		want |= IMGW_WATCH_WRITE;
	if (c->tls && !c->hs_done && !c->connecting)
		want = IMGW_WATCH_READ | c->tls_want;
	else if (c->tls)
		want |= c->tls_want;
	if (want != c->want && c->st->cfg.host->watch_set(c->w, want) == 0)
		c->want = want;
}

static struct sip_tcp *
sip_tcp_new(struct sip_stack *st, int fd, const struct sockaddr_storage *ss,
    socklen_t len, int connecting, int tls, const char *name)
{
	struct sip_tcp *c;
	char host[64];
	int port = 0, one = 1;

	if (st->nconns >= st->cfg.max_conns || (c = calloc(1, sizeof(*c))) == NULL) {
		SIP_COUNT(st, "sip-tcp-refused");
		return NULL;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = st;
	c->fd = fd;
	c->id = ++st->next_conn_id;
	c->peer = *ss;
	c->peerlen = len;
	c->connecting = connecting;
	c->last_ms = c->born_ms = sip_now_ms();
	if (sip_net_ntop((const struct sockaddr *)ss, host, sizeof(host), &port) == -1)
		snprintf(host, sizeof(host), "?");
	snprintf(c->peer_text, sizeof(c->peer_text), "%s:%s:%d", tls ? "tls" : "tcp",
	    host, port);
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	if (tls && sip_tls_conn_start(c, !connecting && name == NULL, name) == -1) {
		SIP_COUNT(st, "sip-tls-failures");
		free(c);
		return NULL;
	}
	c->want = IMGW_WATCH_READ | (connecting ? IMGW_WATCH_WRITE : 0);
	if ((c->w = st->cfg.host->watch_add(st->cfg.inst, fd, c->want, sip_tcp_cb,
	    c)) == NULL) {
		sip_tls_conn_free(c);
		free(c);
		return NULL;
	}
	c->next = st->conns;
	if (st->conns != NULL)
		st->conns->prev = c;
	st->conns = c;
	st->nconns++;
	SIP_COUNT(st, "sip-tcp-connections");
	sip_stack_arm(st);
	return c;
}

struct sip_tcp *
sip_tcp_connect(struct sip_stack *st, int proto,
    const struct sockaddr_storage *ss, socklen_t len, const char *name)
{
	struct sip_tcp *c;
	int fd;

	if (st->stopping)
		return NULL;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return NULL;
	if (connect(fd, (const struct sockaddr *)ss, len) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	if ((c = sip_tcp_new(st, fd, ss, len, 1, proto == SIP_PROTO_TLS,
	    name ? name : "")) == NULL)
		close(fd);
	return c;
}

void
sip_tcp_close(struct sip_tcp *c, const char *why)
{
	struct sip_stack *st = c->st;
	struct sip_tx *tx;

	SIP_LOG(st, IMGW_LOG_DEBUG, "connection %s closed: %s", c->peer_text, why);
	/* requests waiting for answers on it will not get them */
	for (tx = st->txs; tx != NULL; tx = tx->next) {
		if (tx->kind == SIP_TX_CLIENT && tx->conn_id == c->id && !tx->done) {
			tx->done = 1;
			if (tx->cb != NULL)
				tx->cb(tx->cbarg, 503, NULL);
		}
	}
	st->cfg.host->watch_del(c->w);
	sip_tls_conn_free(c);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		st->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	st->nconns--;
	free(c->in);
	free(c->out);
	free(c);
}

void
sip_tcp_close_all(struct sip_stack *st)
{
	while (st->conns != NULL)
		sip_tcp_close(st->conns, "stopping");
}

void
sip_tcp_idle(struct sip_stack *st, uint64_t now)
{
	struct sip_tcp *c, *next;
	uint64_t idle = (uint64_t)st->cfg.tcp_idle_s * 1000u;

	for (c = st->conns; c != NULL; c = next) {
		next = c->next;
		if ((c->connecting || (c->tls && !c->hs_done)) &&
		    now - c->born_ms > SIP_TCP_SETUP_MS) {
			SIP_COUNT(st, c->tls ? "sip-tls-failures" : "sip-connect-timeouts");
			SIP_LOG(st, IMGW_LOG_INFO, "%s with %s: no %s within %d ms",
			    c->tls ? "TLS" : "TCP", c->peer_text, c->connecting ?
			    "connection" : "handshake", SIP_TCP_SETUP_MS);
			sip_tcp_close(c, "setup timeout");
		} else if (c->dead || (now - c->last_ms > idle &&
		    c->out_len == c->out_off)) {
			sip_tcp_close(c, c->dead ? "error" : "idle");
		}
	}
}

/* Queue and write what the socket takes now.  Never frees c. */
int
sip_tcp_write(struct sip_tcp *c, const char *buf, size_t len)
{
	size_t pending = c->out_len - c->out_off, cap;
	ssize_t n = 0;
	char *p;

	if (c->dead)
		return -1;
	if (pending == 0 && !c->connecting && (!c->tls || c->hs_done)) {
		n = c->tls ? sip_tls_write(c, buf, len)
		    : send(c->fd, buf, len, MSG_NOSIGNAL);
		if (c->tls && n == -1) {
			c->dead = 1;
			return -1;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->dead = 1;
			return -1;
		}
		if (n < 0)
			n = 0;
		c->out_off = c->out_len = 0;
		if ((size_t)n == len)
			goto done;
	}
	buf += n;
	len -= (size_t)n;
	if (pending + len > SIP_TCP_OUT_MAX) {
		c->dead = 1;	/* the peer does not read */
		return -1;
	}
	if (c->out_off > 0 && c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_len = pending;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		if ((p = realloc(c->out, cap)) == NULL) {
			c->dead = 1;
			return -1;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
done:
	c->last_ms = sip_now_ms();
	sip_tcp_want(c);
	return 0;
}

static void
sip_tcp_flush(struct sip_tcp *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		if (c->tls) {
			n = sip_tls_write(c, c->out + c->out_off,
			    c->out_len - c->out_off);
			if (n == -2)
				return;
			if (n < 0) {
				c->dead = 1;
				return;
			}
			c->out_off += (size_t)n;
			continue;
		}
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->dead = 1;
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
}

/* Content-Length of a head of hlen bytes: 0.., -1 missing, -2 bad. */
static long long
sip_tcp_clen(const char *h, size_t hlen)
{
	const char *line = h, *end = h + hlen, *eol, *colon, *v;
	size_t nlen;
	long long cl;

	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon != NULL) {
			nlen = (size_t)(colon - line);
			while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
				nlen--;
			if ((nlen == 14 && strncasecmp(line, "content-length", 14) == 0) ||
			    (nlen == 1 && (line[0] == 'l' || line[0] == 'L'))) {
				v = colon + 1;
				while (v < eol && (*v == ' ' || *v == '\t'))
					v++;
				if (v >= eol || *v < '0' || *v > '9')
					return -2;
				for (cl = 0; v < eol && *v >= '0' && *v <= '9'; v++) {
					cl = cl * 10 + (*v - '0');
					if (cl > 1ll << 40)
						return -2;
				}
				while (v < eol && (*v == ' ' || *v == '\t' || *v == '\r'))
					v++;
				return v == eol ? cl : -2;
			}
		}
		line = eol + 1;
	}
	return -1;
}

/*
 * The length of the first message in buf[0..len), 0 when more bytes are
 * needed, or 0 with *err_r set: 1 head too long, 2 message too long,
 * 3 no usable Content-Length.  *err_r is then the head's length... in
 * *hlen_r.
 */
size_t
sip_tcp_frame(const char *buf, size_t len, size_t max, int *err_r,
    size_t *hlen_r)
{
	const char *e = memmem(buf, len, "\r\n\r\n", 4);
	size_t hlen;
	long long cl;

	*err_r = 0;
	*hlen_r = 0;
	if (e == NULL) {
		if (len > max)
			*err_r = 1;
		return 0;
	}
	hlen = (size_t)(e - buf) + 4;
	*hlen_r = hlen;
	cl = sip_tcp_clen(buf, hlen);
	if (cl < 0) {
		*err_r = 3;
		return 0;
	}
	if ((unsigned long long)cl > max || hlen + (size_t)cl > max) {
		*err_r = 2;
		return 0;
	}
	return hlen + (size_t)cl <= len ? hlen + (size_t)cl : 0;
}

/* Handle every complete message in c->in. */
static void
sip_tcp_input(struct sip_tcp *c)
{
	struct sip_stack *st = c->st;
	size_t off = 0, n, hlen;
	int err;

	while (off < c->in_len && !c->dead && !st->stopping) {
		if (c->in[off] == '\r' || c->in[off] == '\n') {
			/* keep-alive: a CRLFCRLF ping gets a CRLF pong */
			if (c->in_len - off >= 4 && memcmp(c->in + off, "\r\n\r\n", 4) == 0) {
				(void)sip_tcp_write(c, "\r\n", 2);
				off += 4;
			} else {
				off++;
			}
			continue;
		}
		n = sip_tcp_frame(c->in + off, c->in_len - off, st->cfg.max_message,
		    &err, &hlen);
		if (err != 0) {
			sip_in_refuse_head(st, c->tls ? SIP_PROTO_TLS : SIP_PROTO_TCP,
			    c->in + off,
			    hlen ? hlen : c->in_len - off, &c->peer, c->peerlen, c->id,
			    err == 3 ? 400 : 513);
			c->dead = 1;
			break;
		}
		if (n == 0)
			break;
		SIP_COUNT(st, "sip-stream-messages-in");
		sip_in_message(st, c->tls ? SIP_PROTO_TLS : SIP_PROTO_TCP, c->in + off,
		    n, &c->peer, c->peerlen, c->id);
		off += n;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

static void
sip_tcp_read(struct sip_tcp *c)
{
	struct sip_stack *st = c->st;
	size_t cap;
	ssize_t n;
	char *p;
	int i;

	for (i = 0; i < SIP_READS_PER_CB && !c->dead; i++) {
		if (c->in_cap - c->in_len < 4096) {
			cap = c->in_cap ? c->in_cap * 2 : 8192;
			if (cap > st->cfg.max_message * 2 + 8192)
				cap = st->cfg.max_message * 2 + 8192;
			if (cap <= c->in_len) {
				c->dead = 1;
				return;
			}
			if ((p = realloc(c->in, cap)) == NULL) {
				c->dead = 1;
				return;
			}
			c->in = p;
			c->in_cap = cap;
		}
		if (c->tls)
			n = sip_tls_read(c, c->in + c->in_len, c->in_cap - c->in_len);
		else
			n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n == 0) {
			c->dead = 1;	/* peer closed; pending output is lost */
			break;
		}
		if (c->tls && n == -2)
			break;		/* OpenSSL wants more (c->tls_want) */
		if (n < 0) {
			if (c->tls || (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR))
				c->dead = 1;
			break;
		}
		c->in_len += (size_t)n;
		c->last_ms = sip_now_ms();
		sip_tcp_input(c);
	}
}

static void
sip_tcp_cb(int fd, int what, void *arg)
{
	struct sip_tcp *c = arg;
	struct sip_stack *st = c->st;
	socklen_t sl = sizeof(int);
	int err = 0;

	if (c->connecting && (what & (IMGW_WATCH_WRITE | IMGW_WATCH_READ))) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1 || err != 0) {
			SIP_LOG(st, IMGW_LOG_WARNING, "cannot connect to %s: %s",
			    c->peer_text, strerror(err ? err : errno));
			c->dead = 1;
		}
		c->connecting = 0;
	}
	if (!c->dead && c->tls && !c->hs_done && !c->connecting) {
		switch (sip_tls_handshake(c)) {
		case -1:
			c->dead = 1;
			break;
		case 0:
			break;
		default:
			what |= IMGW_WATCH_WRITE | IMGW_WATCH_READ;
			break;
		}
		if (!c->hs_done) {
			if (c->dead)
				sip_tcp_close(c, "TLS handshake failed");
			else
				sip_tcp_want(c);
			sip_stack_settle(st);
			return;
		}
	}
	c->tls_want = 0;
	if (!c->dead && (what & IMGW_WATCH_READ))
		sip_tcp_read(c);
	if (!c->dead && (what & IMGW_WATCH_WRITE))
		sip_tcp_flush(c);
	if (c->dead)
		sip_tcp_close(c, "closed");
	else
		sip_tcp_want(c);
	sip_stack_settle(st);
}

static void
sip_tcp_accept_cb(int fd, int what, void *arg)
{
	struct sip_tcpl *l = arg;
	struct sip_stack *st = l->st;
	struct sockaddr_storage ss;
	socklen_t sl;
	int cfd, i;

	(void)what;
	for (i = 0; i < 64; i++) {
		sl = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1)
			break;
		/* untrusted peers are refused at the first request with 403,
		 * which tells them why; a connection alone costs little */
		if (sip_tcp_new(st, cfd, &ss, sl, 0, l->tls, NULL) == NULL)
			close(cfd);
	}
}

int
sip_tcp_listen(struct sip_stack *st, const struct sip_taddr *ta)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64];
	int fd, one = 1, port = 0;

	if (st->ntcpl >= SIP_MAX_LISTEN)
		return -1;
	if (ta->proto == SIP_PROTO_TLS && st->tls_srv == NULL) {
		SIP_LOG(st, IMGW_LOG_ERR, "a tls: listener needs a certificate and key");
		return -1;
	}
	fd = socket(ta->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&ta->ss, ta->len) == -1 ||
	    listen(fd, 128) == -1)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		(void)sip_net_ntop((struct sockaddr *)&ss, host, sizeof(host), &port);
	st->tcpl[st->ntcpl].fd = fd;
	st->tcpl[st->ntcpl].tls = ta->proto == SIP_PROTO_TLS;
	st->tcpl[st->ntcpl].st = st;
	st->tcpl[st->ntcpl].w = st->cfg.host->watch_add(st->cfg.inst, fd,
	    IMGW_WATCH_READ, sip_tcp_accept_cb, &st->tcpl[st->ntcpl]);
	if (st->tcpl[st->ntcpl].w == NULL)
		goto fail;
	st->ntcpl++;
	if (st->bound_port == 0)
		st->bound_port = port;
	if (st->proto_port[ta->proto] == 0)
		st->proto_port[ta->proto] = port;
	SIP_LOG(st, IMGW_LOG_INFO, "listening on %s:%s:%d",
	    ta->proto == SIP_PROTO_TLS ? "tls" : "tcp", host, port);
	return 0;
fail:
	SIP_LOG(st, IMGW_LOG_ERR, "cannot listen on TCP: %s", strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}
