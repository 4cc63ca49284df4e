/*
 * Stanzas written to the component stream but not yet confirmed.
 *
 * XEP-0114 has no acknowledgements, so a stanza written just before the
 * server dies is lost without anyone knowing.  We keep every stanza we
 * write until the server has provably processed it: a server handles one
 * stream's stanzas in order, so when an iq we send after them comes back,
 * it handled them too.  That iq is a XEP-0199 ping from the component
 * domain to itself ("barrier"): the server routes it back to us (or
 * answers it with an error, which proves the same), no server module or
 * user domain needs to be known.  After a reconnect the unconfirmed
 * stanzas are written again, in order, before any new event: delivery is
 * at least once, a stanza in flight during a crash may arrive twice (with
 * its original id).  The queue is bounded; when it is full, deliver says
 * IMGW_AGAIN and we resume once barriers come back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp.h"

static void
xc_outq_barrier(struct xc *x)
{
	if (x->state != XC_UP || x->conn == NULL)
		return;
	if (x->ack_timer != NULL) {
		x->host->timer_del(x->ack_timer);
		x->ack_timer = NULL;
	}
	xmpp_send_raw_string(x->conn, "<iq type='get' id='" XC_ACK_PREFIX
	    "%" PRIu64 "' from='%s' to='%s'><ping xmlns='" XC_NS_PING
	    "'/></iq>", x->out_seq, x->component, x->component);
	if (x->ack_open == 0)
		x->ack_sent_ms = xc_now_ms();
	x->ack_open++;
	x->ack_sent = x->out_seq;
	xc_conn_kick(x);
}

static void
xc_outq_timer_cb(void *arg)
{
	struct xc *x = arg;

	x->ack_timer = NULL;
	if (x->out_seq != x->ack_sent)
		xc_outq_barrier(x);
}

int
xc_outq_full(const struct xc *x)
{
	return x->outq_len >= XC_OUTQ_MAX || x->outq_bytes >= XC_OUTQ_MAX_BYTES;
}

/*
 * Serialize st, keep it, write it (when the stream is up).  Returns 0, -1
 * when out of memory, -2 when the stanza is larger than max-stanza.  The
 * caller keeps st.
 */
int
xc_outq_send(struct xc *x, xmpp_stanza_t *st)
{
	struct xc_out *o;
	char *buf = NULL;
	size_t len = 0;

	if (x->s2s != NULL)
		return x->s2s_send(x, st);	/* per-peer links, s2s.c */
	if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK || buf == NULL)
		return -1;
	if (len > x->max_stanza) {
		xmpp_free(x->ctx, buf);
		return -2;
	}
	if ((o = malloc(sizeof(*o) + len + 1)) == NULL) {
		xmpp_free(x->ctx, buf);
		return -1;
	}
	memcpy(o->text, buf, len);
	o->text[len] = '\0';
	xmpp_free(x->ctx, buf);
	o->len = len;
	o->seq = ++x->out_seq;
	o->next = NULL;
	if (x->outq_tail != NULL)
		x->outq_tail->next = o;
	else
		x->outq = o;
	x->outq_tail = o;
	x->outq_len++;
	x->outq_bytes += len;
	if (x->state != XC_UP || x->conn == NULL)
		return 0;	/* written by xc_outq_resend once up */
	xmpp_send_raw(x->conn, o->text, o->len);
	if (x->out_seq - x->ack_sent >= XC_ACK_BATCH)
		xc_outq_barrier(x);
	else if (x->ack_timer == NULL)
		x->ack_timer = x->host->timer_add(x->inst, XC_ACK_DELAY_MS,
		    xc_outq_timer_cb, x);
	xc_conn_kick(x);
	return 0;
}

/* The server has processed every stanza up to seq. */
void
xc_outq_ack(struct xc *x, uint64_t seq)
{
	struct xc_out *o;

	if (seq > x->out_seq)
		return;		/* not one of this run's barriers */
	if (seq > x->ack_got)
		x->ack_got = seq;
	XC_COUNT(x, "pings-answered");
	while ((o = x->outq) != NULL && o->seq <= seq) {
		x->outq = o->next;
		if (x->outq == NULL)
			x->outq_tail = NULL;
		x->outq_len--;
		x->outq_bytes -= o->len;
		free(o);
	}
	if (x->ack_open > 0)
		x->ack_open--;
	if (x->ack_got >= x->ack_sent)
		x->ack_open = 0;
	x->ack_sent_ms = xc_now_ms();
	if (x->again && x->outq_len < XC_OUTQ_MAX / 2 &&
	    x->outq_bytes < XC_OUTQ_MAX_BYTES / 2) {
		x->again = 0;
		x->host->resume(x->inst);
	}
}

/* Non-zero when st is one of our barriers coming back (then it is
 * consumed: a barrier is never answered, that would loop). */
int
xc_outq_is_ack(struct xc *x, xmpp_stanza_t *st)
{
	const char *id = xmpp_stanza_get_id(st);
	const char *from = xmpp_stanza_get_from(st);
	const char *name = xmpp_stanza_get_name(st);
	char *end;
	unsigned long long seq;

	if (name == NULL || strcmp(name, "iq") != 0 || id == NULL ||
	    strncmp(id, XC_ACK_PREFIX, sizeof(XC_ACK_PREFIX) - 1) != 0 ||
	    from == NULL || strcasecmp(from, x->component) != 0)
		return 0;
	seq = strtoull(id + sizeof(XC_ACK_PREFIX) - 1, &end, 10);
	if (*end == '\0')
		xc_outq_ack(x, (uint64_t)seq);
	return 1;
}

/* The stream is up again: write what the server never confirmed, in
 * order, then a barrier for it. */
void
xc_outq_resend(struct xc *x)
{
	struct xc_out *o;
	size_t n = 0;

	x->ack_open = 0;
	x->ack_sent = x->ack_got;
	for (o = x->outq; o != NULL; o = o->next, n++)
		xmpp_send_raw(x->conn, o->text, o->len);
	if (n > 0) {
		XC_LOG(x, IMGW_LOG_NOTICE, "sending %zu unconfirmed stanzas again", n);
		x->host->counter_add(x->inst, "stanzas-resent", (int64_t)n);
		xc_outq_barrier(x);
	}
	x->ack_sent_ms = xc_now_ms();
}

/* From the tick: a barrier unanswered for too long means the link is
 * dead even if TCP does not know yet; an idle stream gets a barrier now
 * and then to find that out. */
void
xc_outq_check(struct xc *x)
{
	uint64_t now = xc_now_ms();

	if (x->state != XC_UP)
		return;
	if (x->ack_open > 0 && now - x->ack_sent_ms > XC_ACK_TIMEOUT_MS) {
		XC_COUNT(x, "ping-timeouts");
		xc_conn_drop(x, "the server did not answer a ping in time");
		return;
	}
	if (x->ack_open == 0 && now - x->ack_sent_ms > XC_IDLE_PING_MS)
		xc_outq_barrier(x);
}

void
xc_outq_free(struct xc *x)
{
	struct xc_out *o;

	while ((o = x->outq) != NULL) {
		x->outq = o->next;
		free(o);
	}
	x->outq_tail = NULL;
	x->outq_len = 0;
	x->outq_bytes = 0;
}
