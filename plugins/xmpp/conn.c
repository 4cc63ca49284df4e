/*
 * The component stream (XEP-0114) on the core's loop.
 *
 * libstrophe 0.12 has no public getter for its socket and runs its own
 * select() in xmpp_run_once().  We learn the descriptor from the sockopt
 * callback (called synchronously inside xmpp_connect_component, right after
 * socket()), watch it through the host, and call xmpp_run_once(ctx, 0)
 * when it is readable or when we have output queued.  libstrophe queues
 * some bytes of its own (stream header, handshake) without showing them in
 * xmpp_conn_send_queue_len(), and keeps timers (handshake and disconnect
 * time-outs) that only advance inside xmpp_run_once, so a host timer also
 * pumps it: every 10 ms until the handshake is done (that bounds the
 * handshake's extra latency), every 250 ms afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xmpp.h"

#define XC_TICK_CONNECTING_MS	10

/* The instance whose xmpp_connect_component() is running: libstrophe's
 * sockopt callback gets the connection but no user data, and 0.12 has no
 * getter for it.  The callback runs synchronously inside the connect. */
static struct xc *xc_connecting;

static void xc_conn_tick_cb(void *arg);
static void xc_conn_retry_cb(void *arg);
static void xc_conn_connect(struct xc *x);

uint64_t
xc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * libstrophe 0.12.0 .. 0.14.0 (at least; Debian 12 ships 0.12.2): in
 * component mode the connection has no stream-management state.  Only
 * xmpp_connect_client()/xmpp_connect_raw() allocate conn->sm_state, but
 * the stanza path (_handle_stream_stanza, src/conn.c:1708 in 0.12.2), the
 * send path (xmpp_run_once) and the disconnect path
 * (_reset_sm_state_for_reconnect) all dereference it: the process dies
 * with SIGSEGV on the first stanza after a successful handshake.
 *
 * Workaround through the public API, the only place it lives: a throwaway
 * connection in the same context "connects raw" to a numeric address with
 * a sockopt callback that refuses the socket, so the connect fails at once
 * without any I/O but after allocating its SM state; we take that state
 * (xmpp_conn_get_sm_state) and hand it to the component connection
 * (xmpp_conn_set_sm_state).  The state stays with the connection across
 * reconnects and is freed by xmpp_conn_release.  Stream management is
 * never enabled on a component stream, so the state stays inert.
 * tests/xmpp/t-xmpp-component.py fails (imgwd dies) if this stops working.
 */
static int
xc_refuse_socket_cb(xmpp_conn_t *conn, void *sock)
{
	(void)conn;
	(void)sock;
	return -1;
}

static int
xc_strophe_sm_workaround(struct xc *x)
{
	xmpp_conn_t *tmp;
	xmpp_sm_state_t *sm;
	int rc;

	if ((tmp = xmpp_conn_new(x->ctx)) == NULL)
		return -1;
	xmpp_conn_set_jid(tmp, "sm-workaround.invalid");
	xmpp_conn_set_sockopt_callback(tmp, xc_refuse_socket_cb);
	rc = xmpp_connect_raw(tmp, "127.0.0.1", 9, NULL, NULL);
	sm = rc != 0 ? xmpp_conn_get_sm_state(tmp) : NULL;
	xmpp_conn_release(tmp);
	if (sm == NULL) {
		XC_LOG(x, IMGW_LOG_ERR, "libstrophe component workaround failed "
		    "(connect rc %d, no SM state): refusing to run a component "
		    "stream that would crash", rc);
		return -1;
	}
	if (xmpp_conn_set_sm_state(x->conn, sm) != XMPP_EOK) {
		xmpp_free_sm_state(sm);
		XC_LOG(x, IMGW_LOG_ERR, "libstrophe component workaround failed "
		    "(cannot set SM state)");
		return -1;
	}
	XC_LOG(x, IMGW_LOG_DEBUG, "libstrophe component SM-state workaround applied");
	return 0;
}

/*
 * Called by libstrophe right after socket().  We record the descriptor
 * for our watch.  libstrophe's select() cannot take descriptors at or above
 * FD_SETSIZE (a busy gateway reaches that), so such a socket is moved to
 * the lowest free number, or refused when there is none below the limit.
 */
static int
xc_sockopt_cb(xmpp_conn_t *conn, void *sock)
{
	struct xc *x = xc_connecting;
	int fd = *(int *)sock, low, one = 1;

	(void)conn;
	if (x == NULL)
		return -1;
	if (fd >= FD_SETSIZE) {
		low = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (low < 0 || low >= FD_SETSIZE) {
			if (low >= 0)
				close(low);
			snprintf(x->last_why, sizeof(x->last_why), "no socket "
			    "descriptor below %d free for libstrophe's select()",
			    FD_SETSIZE);
			return -1;
		}
		close(fd);
		*(int *)sock = fd = low;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* The stream carries our barrier pings and their answers, so the
	 * server's side of it delays its ACKs (up to 40 ms on Linux) and
	 * Nagle held each stanza written meanwhile until then: SIP -> XMPP
	 * messages took 20-40 ms at 500/s (bench/bench-sip-xmpp.py).  Every
	 * write here is a whole stanza; send it now, as the s2s streams do. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	x->fd = fd;
	return 0;
}

/* Set the watch's interest from what libstrophe has to do. */
static void
xc_conn_rewatch(struct xc *x)
{
	int want = IMGW_WATCH_READ;

	if (x->watch == NULL)
		return;
	if (x->conn != NULL && (xmpp_conn_is_connecting(x->conn) ||
	    xmpp_conn_send_queue_len(x->conn) > 0))
		want |= IMGW_WATCH_WRITE;
	if (want != x->want) {
		x->host->watch_set(x->watch, want);
		x->want = want;
	}
}

/* Let libstrophe write, read and run its timers, without blocking.  Twice:
 * the second call writes what handlers of the first queued. */
static void
xc_conn_pump(struct xc *x)
{
	if (x->ctx == NULL || x->pumping)
		return;
	x->pumping = 1;
	xmpp_run_once(x->ctx, 0);
	if (x->conn != NULL && !xmpp_conn_is_disconnected(x->conn))
		xmpp_run_once(x->ctx, 0);
	x->pumping = 0;
	xc_conn_rewatch(x);
}

/* Output was queued outside a pump: write it soon. */
void
xc_conn_kick(struct xc *x)
{
	xc_conn_rewatch(x);
}

static void
xc_conn_watch_cb(int fd, int what, void *arg)
{
	(void)fd;
	(void)what;
	xc_conn_pump(arg);
}

static void
xc_conn_tick_arm(struct xc *x)
{
	if (x->tick != NULL || x->stopping)
		return;
	x->tick = x->host->timer_add(x->inst, x->state == XC_UP ? XC_TICK_MS
	    : XC_TICK_CONNECTING_MS, xc_conn_tick_cb, x);
}

static void
xc_conn_tick_cb(void *arg)
{
	struct xc *x = arg;

	x->tick = NULL;
	xc_conn_pump(x);
	if (x->state == XC_UP)
		xc_outq_check(x);
	if (x->conn != NULL && !xmpp_conn_is_disconnected(x->conn))
		xc_conn_tick_arm(x);
}

static void
xc_conn_unwatch(struct xc *x)
{
	if (x->watch != NULL) {
		x->host->watch_del(x->watch);
		x->watch = NULL;
	}
	x->want = 0;
	x->fd = -1;
}

static void
xc_conn_schedule(struct xc *x)
{
	unsigned int delay = x->backoff, jitter;

	if (x->stopping || x->retry != NULL)
		return;
	/* up to a quarter less, so that gateways restarted together spread */
	jitter = delay / 4 ? (unsigned int)random() % (delay / 4) : 0;
	delay -= jitter;
	x->retry = x->host->timer_add(x->inst, delay, xc_conn_retry_cb, x);
	if (x->backoff < x->backoff_max / 2)
		x->backoff *= 2;
	else
		x->backoff = x->backoff_max;
	XC_LOG(x, IMGW_LOG_INFO, "reconnecting to %s:%u in %u ms", x->server,
	    x->port, delay);
}

static void
xc_conn_retry_cb(void *arg)
{
	struct xc *x = arg;

	x->retry = NULL;
	xc_conn_connect(x);
}

/* Tell the core once per outage, not at every failed attempt. */
static void
xc_conn_down(struct xc *x, const char *why)
{
	if (x->down_reported)
		return;
	x->down_reported = 1;
	x->host->down(x->inst, why);
}

/* The defined condition of a stream error, e.g. "not-authorized". */
static const char *
xc_stream_condition(xmpp_stream_error_t *se)
{
	xmpp_stanza_t *c;
	const char *name;

	if (se == NULL || se->stanza == NULL)
		return NULL;
	for (c = xmpp_stanza_get_children(se->stanza); c != NULL;
	    c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c))
			continue;
		name = xmpp_stanza_get_name(c);
		if (name != NULL && strcmp(name, "text") != 0)
			return name;
	}
	return NULL;
}

static void
xc_conn_lost(struct xc *x, int error, xmpp_stream_error_t *se)
{
	const char *cond = xc_stream_condition(se);
	enum xc_state was = x->state;
	char why[sizeof(x->last_why)];

	xc_conn_unwatch(x);
	x->state = XC_IDLE;
	if (cond != NULL)
		snprintf(why, sizeof(why), "stream error %s%s%s", cond,
		    se->text ? ": " : "", se->text ? se->text : "");
	else if (error != 0)
		snprintf(why, sizeof(why), "%s", strerror(error));
	else
		snprintf(why, sizeof(why), "stream closed by the server");
	if (x->stopping)
		return;
	if (was == XC_CONNECTING && cond != NULL &&
	    (strcmp(cond, "not-authorized") == 0 ||
	     strcmp(cond, "host-unknown") == 0)) {
		XC_LOG(x, IMGW_LOG_ERR, "server %s:%u refused component '%s': %s "
		    "(check the component's secret and domain on both sides)",
		    x->server, x->port, x->component, why);
	} else if (was == XC_CONNECTING) {
		XC_LOG(x, IMGW_LOG_WARNING, "cannot connect component '%s' to "
		    "%s:%u: %s", x->component, x->server, x->port, why);
	} else {
		XC_LOG(x, IMGW_LOG_WARNING, "component stream to %s:%u lost: %s "
		    "(%zu stanzas unconfirmed, will be sent again)", x->server,
		    x->port, why, x->outq_len);
	}
	snprintf(x->last_why, sizeof(x->last_why), "%s", why);
	xc_conn_down(x, why);
	xc_conn_schedule(x);
}

static void
xc_conn_cb(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
    xmpp_stream_error_t *se, void *arg)
{
	struct xc *x = arg;

	(void)conn;
	switch (event) {
	case XMPP_CONN_CONNECT:
		x->state = XC_UP;
		x->backoff = x->backoff_min;
		x->attempts = 0;
		x->last_why[0] = '\0';
		x->down_reported = 0;
		XC_LOG(x, IMGW_LOG_NOTICE, "component '%s' connected to %s:%u",
		    x->component, x->server, x->port);
		if (x->tick != NULL) {
			/* slow down to the connected pace */
			x->host->timer_del(x->tick);
			x->tick = NULL;
		}
		xc_conn_tick_arm(x);
		xc_outq_resend(x);
		x->host->ready(x->inst);
		break;
	case XMPP_CONN_RAW_CONNECT:
		break;
	case XMPP_CONN_DISCONNECT:
	case XMPP_CONN_FAIL:
	default:
		xc_conn_lost(x, error, se);
		break;
	}
}

static void
xc_conn_connect(struct xc *x)
{
	int rc;

	if (x->stopping || x->conn == NULL || !xmpp_conn_is_disconnected(x->conn))
		return;
	x->attempts++;
	x->fd = -1;
	x->last_why[0] = '\0';
	x->state = XC_CONNECTING;
	xc_connecting = x;
	rc = xmpp_connect_component(x->conn, x->server, x->port, xc_conn_cb, x);
	xc_connecting = NULL;
	if (rc != XMPP_EOK || x->fd < 0) {
		x->state = XC_IDLE;
		XC_LOG(x, IMGW_LOG_WARNING, "cannot connect component '%s' to "
		    "%s:%u: %s", x->component, x->server, x->port,
		    x->last_why[0] ? x->last_why : "address or socket error");
		if (x->last_why[0] == '\0')
			snprintf(x->last_why, sizeof(x->last_why), "cannot "
			    "connect to %s:%u", x->server, x->port);
		xc_conn_down(x, x->last_why);
		xc_conn_schedule(x);
		return;
	}
	x->watch = x->host->watch_add(x->inst, x->fd,
	    IMGW_WATCH_READ | IMGW_WATCH_WRITE, xc_conn_watch_cb, x);
	if (x->watch == NULL) {
		XC_LOG(x, IMGW_LOG_ERR, "cannot watch the component socket");
		xc_conn_drop(x, "cannot watch the socket");
		return;
	}
	x->want = IMGW_WATCH_READ | IMGW_WATCH_WRITE;
	xc_conn_tick_arm(x);
}

/* Close the stream now (it is broken, or the server stopped answering);
 * the disconnect handler schedules the reconnect. */
void
xc_conn_drop(struct xc *x, const char *why)
{
	if (x->conn == NULL || xmpp_conn_is_disconnected(x->conn))
		return;
	XC_LOG(x, IMGW_LOG_WARNING, "dropping the component stream: %s", why);
	/* xmpp_disconnect waits for the server's </stream:stream>; a dead
	 * peer never sends it, so release and renew the connection instead.
	 * Release runs the disconnect handler (which unwatches first: the
	 * handler sees the descriptor already closed, never reused). */
	if (x->pumping) {
		xmpp_disconnect(x->conn);
		return;
	}
	{
		xmpp_conn_t *old = x->conn;

		x->conn = NULL;
		xc_conn_unwatch(x);
		if (xc_conn_setup(x) == -1) {
			x->conn = old;
			xmpp_disconnect(old);
			return;
		}
		/* the old connection's handler must not act for us any more */
		x->stopping++;
		xmpp_conn_release(old);
		x->stopping--;
		x->state = XC_IDLE;
		snprintf(x->last_why, sizeof(x->last_why), "%s", why);
		xc_conn_down(x, why);
		xc_conn_schedule(x);
	}
}

/* A new libstrophe connection with our handlers and the workaround.
 * Creates the context on first use. */
int
xc_conn_setup(struct xc *x)
{
	if (x->ctx == NULL && (x->ctx = xmpp_ctx_new(NULL, NULL)) == NULL)
		goto nomem;
	if ((x->conn = xmpp_conn_new(x->ctx)) == NULL)
		goto nomem;
	if (xc_strophe_sm_workaround(x) == -1) {
		xmpp_conn_release(x->conn);
		x->conn = NULL;
		return -1;
	}
	xmpp_conn_set_sockopt_callback(x->conn, xc_sockopt_cb);
	xmpp_conn_set_jid(x->conn, x->component);
	xmpp_conn_set_pass(x->conn, x->secret ? x->secret : x->secret_buf);
	xmpp_handler_add(x->conn, xc_in_stanza_cb, NULL, NULL, NULL, x);
	return 0;
nomem:
	XC_LOG(x, IMGW_LOG_ERR, "out of memory (libstrophe)");
	return -1;
}

/* Read the secret file: one line, trailing newline ignored. */
static int
xc_conn_read_secret(struct xc *x)
{
	char buf[1024];
	size_t n;
	FILE *f;

	if (x->secret != NULL)
		return 0;
	if ((f = fopen(x->secret_file, "re")) == NULL) {
		XC_LOG(x, IMGW_LOG_ERR, "secret-file %s: %s", x->secret_file,
		    strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		XC_LOG(x, IMGW_LOG_ERR, "secret-file %s: empty first line",
		    x->secret_file);
		return -1;
	}
	free(x->secret_buf);
	if ((x->secret_buf = strdup(buf)) == NULL)
		return -1;
	memset(buf, 0, sizeof(buf));
	return 0;
}

/* Read the secret, make the connection; connect now, or when `later`,
 * at xc_conn_go (after the subscriptions are read). */
int
xc_conn_start(struct xc *x, int later)
{
	x->stopping = 0;
	x->backoff = x->backoff_min;
	if (xc_conn_read_secret(x) == -1 || xc_conn_setup(x) == -1)
		return -1;
	if (!later)
		xc_conn_connect(x);
	return 0;
}

void
xc_conn_go(struct xc *x)
{
	xc_conn_connect(x);
}

/*
 * Close the stream: flush what libstrophe still holds and say
 * </stream:stream>, waiting at most 300 ms for the server (stop must not
 * hang the gateway), then release the connection.
 */
void
xc_conn_stop(struct xc *x)
{
	uint64_t deadline = xc_now_ms() + 300;

	x->stopping = 1;
	if (x->retry != NULL) {
		x->host->timer_del(x->retry);
		x->retry = NULL;
	}
	if (x->tick != NULL) {
		x->host->timer_del(x->tick);
		x->tick = NULL;
	}
	if (x->ack_timer != NULL) {
		x->host->timer_del(x->ack_timer);
		x->ack_timer = NULL;
	}
	if (x->conn != NULL && x->state == XC_UP) {
		xmpp_disconnect(x->conn);
		while (!xmpp_conn_is_disconnected(x->conn) && xc_now_ms() < deadline)
			xmpp_run_once(x->ctx, 10);
	}
	if (x->outq_len > 0)
		XC_LOG(x, IMGW_LOG_WARNING, "stopping with %zu stanzas the server "
		    "has not confirmed", x->outq_len);
	if (x->conn != NULL) {
		xmpp_conn_release(x->conn);	/* runs the handler: unwatches */
		x->conn = NULL;
	}
	xc_conn_unwatch(x);
	x->state = XC_IDLE;
}

void
xc_conn_free(struct xc *x)
{
	if (x->conn != NULL)
		xc_conn_stop(x);
	if (x->ctx != NULL) {
		xmpp_ctx_free(x->ctx);
		x->ctx = NULL;
	}
	if (x->secret_buf != NULL) {
		memset(x->secret_buf, 0, strlen(x->secret_buf));
		free(x->secret_buf);
		x->secret_buf = NULL;
	}
}
