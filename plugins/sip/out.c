/*
 * Events -> SIP requests.  A message becomes a MESSAGE (RFC 3428) with a
 * text/plain;charset=UTF-8 body, Subject and Content-Language; its thread
 * becomes the Call-ID (octets outside Call-ID's "word" set %-escaped),
 * without one a fresh Call-ID.  A chat state becomes a MESSAGE with an
 * isComposing body (RFC 3994).  Both go in a non-INVITE client
 * transaction to the static route of the `to` domain, else to the next
 * hops RFC 3263 finds (sipstack/resolve.c; the request waits in its pend
 * while a lookup runs, and a failed lookup is remote-server-not-found).
 * The stack tries the next address of the list when one fails
 * (sipstack/hops.c); what reaches sip_out_done is the last answer.
 *
 * The final answer: 2xx is success; anything else, a transaction timeout
 * (408) or a transport failure (503) becomes an error event back to the
 * sender with the event's id and the condition RFC 7247 7.2 gives the
 * code.  Chat states are fire-and-forget: their failures are counted.
 *
 * Ownership: each request carries a struct sip_pend with copies of what
 * the error needs; the stack calls sip_out_done exactly once for it,
 * which frees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

void
sip_pend_free(struct sip_pend *p)
{
	struct sipc *sc = p->sc;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		sc->pend = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	free(p->from);
	free(p->to);
	free(p->id);
	free(p->thread);
	if (p->req != NULL)
		osip_message_free(p->req);
	free(p);
}

static char *
sip_out_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A pend with copies of the strings, linked into sc->pend; NULL when out
 * of memory. */
struct sip_pend *
sip_pend_new(struct sipc *sc, enum imgw_kind kind, const char *from,
    const char *to, const char *id, const char *thread)
{
	struct sip_pend *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->sc = sc;
	p->kind = kind;
	p->from = sip_out_dup(from);
	p->to = sip_out_dup(to);
	p->id = sip_out_dup(id);
	p->thread = sip_out_dup(thread);
	p->next = sc->pend;
	if (sc->pend != NULL)
		sc->pend->prev = p;
	sc->pend = p;
	if ((from && p->from == NULL) || (to && p->to == NULL) ||
	    (id && p->id == NULL) || (thread && p->thread == NULL)) {
		sip_pend_free(p);
		return NULL;
	}
	return p;
}

/* The error event for a message that failed: to the sender, with its id. */
static void
sip_out_error(struct sip_pend *p, const char *condition, const char *text)
{
	struct sipc *sc = p->sc;
	struct imgw_event ev;
	char err[128];

	imgw_event_init(&ev, IMGW_EV_ERROR);
	ev.from = p->to;
	ev.to = p->from;
	ev.id = p->id;
	ev.thread = p->thread;
	ev.condition = condition;
	ev.text = text;
	if (sc->host->emit(sc->inst, &ev, err, sizeof(err), NULL) == -1)
		sc->host->log(sc->inst, IMGW_LOG_WARNING, NULL,
		    "error event for %s refused: %s", p->from, err);
}

static void
sip_out_done(void *arg, int code, osip_message_t *resp)
{
	struct sip_pend *p = arg;
	struct sipc *sc = p->sc;
	char text[200];

	if (code >= 200 && code < 300) {
		SIPC_COUNT(sc, p->kind == IMGW_EV_MESSAGE ? "messages-out-ok"
		    : "chatstates-out-ok");
		goto done;
	}
	SIPC_COUNT(sc, p->kind == IMGW_EV_MESSAGE ? "messages-out-failed"
	    : "chatstates-out-failed");
	sc->host->log(sc->inst, IMGW_LOG_INFO, p->trace[0] ? p->trace : NULL,
	    "%s from %s to %s: SIP %d", imgw_kind_name(p->kind), p->from, p->to,
	    code);
	if (p->kind != IMGW_EV_MESSAGE)
		goto done;
	snprintf(text, sizeof(text), "SIP %d %s", code,
	    resp && resp->reason_phrase ? resp->reason_phrase :
	    code == 408 ? "Request Timeout (no answer)" : "Service Unavailable");
	sip_out_error(p, sip_err_condition(code), text);
done:
	sip_pend_free(p);
	if (sc->again && !sip_stack_full(sc->st)) {
		sc->again = 0;
		sc->host->resume(sc->inst);
	}
}

/* The lookup for p's request ended: send it, or fail it. */
static void
sip_out_resolved(void *arg, struct sip_hops *hops, const char *why)
{
	struct sip_pend *p = arg;
	struct sipc *sc = p->sc;
	osip_message_t *m = p->req;
	char text[300];

	p->req = NULL;
	if (hops != NULL && sip_stack_request_hops(sc->st, m, hops, p->name, sip_out_done,
	    p) == 0)
		return;		/* m is the stack's now, also on failure */
	if (hops == NULL)
		osip_message_free(m);
	SIPC_COUNT(sc, p->kind == IMGW_EV_MESSAGE ? "messages-out-failed"
	    : "chatstates-out-failed");
	sc->host->log(sc->inst, IMGW_LOG_INFO, p->trace[0] ? p->trace : NULL,
	    "%s from %s to %s: no next hop: %s", imgw_kind_name(p->kind), p->from,
	    p->to, why ? why : "cannot send");
	if (p->kind == IMGW_EV_MESSAGE) {
		snprintf(text, sizeof(text), "no SIP server found: %s",
		    why ? why : "cannot send");
		sip_out_error(p, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, text);
	}
	sip_pend_free(p);
}

/* thread -> Call-ID (RFC 3261 25.1: word ["@" word]): letters, digits
 * and -.!*_+`'~()<>:/[]?{} pass, the first inner '@' too; every other
 * octet (and '%' itself) is written %XX, so distinct threads stay
 * distinct. */
static int
sip_out_callid(const char *thread, char *buf, size_t len)
{
	static const char word[] = "-.!*_+`'~()<>:/[]?{}";
	static const char hex[] = "0123456789ABCDEF";
	size_t off = 0;
	unsigned char c;
	int at = 0;

	for (; *thread != '\0'; thread++) {
		c = (unsigned char)*thread;
		if ((c < 0x80 && c != 0 && ((c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    strchr(word, c) != NULL)) ||
		    (c == '@' && !at && off > 0 && thread[1] != '\0' && (at = 1))) {
			if (off + 1 >= len)
				return -1;
			buf[off++] = (char)c;
			continue;
		}
		if (off + 3 >= len)
			return -1;
		buf[off++] = '%';
		buf[off++] = hex[c >> 4];
		buf[off++] = hex[c & 15];
	}
	buf[off] = '\0';
	return off > 0 ? 0 : -1;
}

static osip_message_t *
sip_out_build(struct sipc *sc, const struct imgw_event *ev, char *callid,
    size_t cidlen)
{
	char from[SIP_URI_MAX], to[SIP_URI_MAX], tag[24], xml[512];
	osip_message_t *m;
	int n;

	if (sip_addr_to_uri(ev->from, from, sizeof(from)) == -1 ||
	    sip_addr_to_uri(ev->to, to, sizeof(to)) == -1)
		return NULL;
	callid[0] = '\0';
	if (ev->thread == NULL || ev->thread[0] == '\0' ||
	    sip_out_callid(ev->thread, callid, cidlen) == -1) {
		sip_msg_tag(tag, sizeof(tag));
		snprintf(callid, cidlen, "%s@%s", tag, sc->adv_host);
	}
	sip_msg_tag(tag, sizeof(tag));
	if ((m = sip_msg_request("MESSAGE", to, from, tag, to, callid,
	    ++sc->cseq)) == NULL)
		return NULL;
	if (ev->kind == IMGW_EV_CHATSTATE) {
		if ((n = sip_isc_format(ev->state, sc->isc_refresh_s, xml,
		    sizeof(xml))) < 0 ||
		    sip_msg_set_body(m, "application/im-iscomposing+xml", xml,
		    (size_t)n) == -1)
			goto fail;
		return m;
	}
	if (ev->subject != NULL && ev->subject[0] != '\0' &&
	    strpbrk(ev->subject, "\r\n") == NULL)
		osip_message_set_header(m, "Subject", ev->subject);
	if (ev->lang != NULL && ev->lang[0] != '\0' &&
	    strspn(ev->lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-") == strlen(ev->lang))
		osip_message_set_header(m, "Content-Language", ev->lang);
	if (ev->body != NULL && sip_msg_set_body(m, "text/plain;charset=UTF-8",
	    ev->body, strlen(ev->body)) == -1)
		goto fail;
	return m;
fail:
	osip_message_free(m);
	return NULL;
}

int
sip_out_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r)
{
	struct imgw_addr_parts ap;
	struct sip_hops *hops = NULL;
	struct sip_pend *p;
	osip_message_t *m;
	const char *why;
	char dom[1024], callid[1024];

	if (imgw_addr_split(ev->to, &ap) == -1 || ap.domain_len >= sizeof(dom)) {
		*condition_r = IMGW_ERR_JID_MALFORMED;
		return IMGW_FAIL;
	}
	memcpy(dom, ap.domain, ap.domain_len);
	dom[ap.domain_len] = '\0';
	/* DNS names are at most 253 bytes, so one longer has no peer */
	if ((sip_opt_route(sc, dom) == NULL && sc->cfg.dns == NULL) ||
	    strlen(dom) >= sizeof(p->name)) {
		*condition_r = IMGW_ERR_REMOTE_SERVER_NOT_FOUND;
		return IMGW_FAIL;
	}
	if (sip_stack_full(sc->st)) {
		sc->again = 1;
		return IMGW_AGAIN;
	}
	if ((p = sip_pend_new(sc, ev->kind, ev->from, ev->to, ev->id,
	    ev->thread)) == NULL)
		goto oom;
	if (ev->trace != NULL)
		snprintf(p->trace, sizeof(p->trace), "%s", ev->trace);
	if ((m = sip_out_build(sc, ev, callid, sizeof(callid))) == NULL) {
		sip_pend_free(p);
		*condition_r = IMGW_ERR_JID_MALFORMED;
		return IMGW_FAIL;
	}
	/* TLS checks the peer's certificate names this domain (RFC 5922) */
	memcpy(p->name, dom, strlen(dom) + 1);
	switch (sip_opt_hops(sc, dom, &hops, sip_out_resolved, p, &why)) {
	case 1:
		break;		/* known: hops */
	case 0:
		p->req = m;	/* sip_out_resolved sends or fails it */
		goto sent;
	default:
		sc->host->log(sc->inst, IMGW_LOG_INFO, ev->trace, "%s to %s: no "
		    "next hop: %s", imgw_kind_name(ev->kind), ev->to, why);
		osip_message_free(m);
		sip_pend_free(p);
		*condition_r = IMGW_ERR_REMOTE_SERVER_NOT_FOUND;
		return IMGW_FAIL;
	}
	if (sip_stack_request_hops(sc->st, m, hops, p->name, sip_out_done, p) == -1) {
		sip_pend_free(p);
		*condition_r = IMGW_ERR_REMOTE_SERVER_NOT_FOUND;
		return IMGW_FAIL;
	}
sent:
	SIPC_COUNT(sc, ev->kind == IMGW_EV_MESSAGE ? "messages-out" : "chatstates-out");
	return IMGW_OK;
oom:
	*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
	return IMGW_FAIL;
}

/* After the stack is freed every callback has run; free what is left in
 * case one did not. */
void
sip_out_free(struct sipc *sc)
{
	while (sc->pend != NULL)
		sip_pend_free(sc->pend);
}
