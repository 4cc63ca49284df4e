/*
 * Requests from SIP peers -> events.  The stack has already refused what
 * any SIP server would (untrusted source 403, malformed 400, loops 482,
 * Max-Forwards 483, methods outside Allow 405); here a MESSAGE (RFC 3428)
 * is checked and mapped:
 *
 *   From not a usable sip:/sips:/im:/pres: URI      400
 *   From's domain not one of this community's       403 (only our own
 *                                                   users send through us)
 *   target (Request-URI; To when the R-URI has no
 *   user part) not a usable URI                     416 bad scheme, else 400
 *   target's domain is this community's own         404 (we route out of
 *                                                   the community only)
 *   Content-Type not text/plain or isComposing      415 with Accept
 *   charset unknown to iconv                        415 with Accept
 *   text not valid in its charset                   400
 *   the core refuses the event (emit -1)            RFC 7247 7.1 code of its
 *                                                   condition (413 for a
 *                                                   field over the limit)
 *   otherwise                                       202 Accepted
 *
 * 202, not 200: the core delivers later and a failure then comes back as
 * an error event.  With answer-wait > 0 the server transaction is held
 * that many milliseconds: an error event for the message arriving in that
 * time (unknown domain, policy, nobody there) is answered with its RFC
 * 7247 7.1 code instead; after it, 202.  An error arriving after the 202
 * is counted (errors-after-accept) and dropped: SIP has nowhere to put it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sip.h"

static void
sip_in_reply(struct sipc *sc, struct sip_srv *srv, int code, const char *why)
{
	char warn[SIP_HOST_MAX + 320];
	osip_message_t *r;

	SIPC_COUNT(sc, code < 300 ? "messages-in-accepted" : "messages-in-refused");
	if (code >= 300 && why != NULL) {
		/* RFC 3261 20.43: 399 is a miscellaneous warning */
		snprintf(warn, sizeof(warn), "399 %s \"%.300s\"", sc->adv_host, why);
		for (char *p = warn + strlen(sc->adv_host) + 6; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = '\'';
		warn[strlen(warn) - 1] = '"';
		if (code != 503) {
			(void)sip_srv_reply_code(srv, code, "Warning", warn);
			return;
		}
		/* overload or a restart: the sender may try again shortly
		 * (RFC 3261 21.5.4) */
		if ((r = sip_srv_response(srv, 503)) != NULL) {
			osip_message_set_header(r, "Retry-After", "5");
			osip_message_set_header(r, "Warning", warn);
			(void)sip_srv_reply(srv, r);
		}
		return;
	}
	(void)sip_srv_reply_code(srv, code, code == 415 ? "Accept" : NULL,
	    code == 415 ? SIP_ACCEPT : NULL);
}

/* ---- holding the answer for a moment ------------------------------------ */

static void
sip_in_hold_free(struct sip_hold *h)
{
	struct sipc *sc = h->sc;

	if (h->timer != NULL)
		sc->host->timer_del(h->timer);
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		sc->holds = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	free(h);
}

static void
sip_in_hold_timer_cb(void *arg)
{
	struct sip_hold *h = arg;
	struct sipc *sc = h->sc;

	h->timer = NULL;	/* fired: the core frees it */
	sip_in_reply(sc, h->srv, 202, NULL);
	sip_in_hold_free(h);
}

/* Hold srv for answer_wait_ms; 0, or -1 (answer now). */
static int
sip_in_hold(struct sipc *sc, struct sip_srv *srv, const char *trace)
{
	struct sip_hold *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -1;
	h->sc = sc;
	h->srv = srv;
	snprintf(h->trace, sizeof(h->trace), "%s", trace);
	if ((h->timer = sc->host->timer_add(sc->inst, sc->answer_wait_ms,
	    sip_in_hold_timer_cb, h)) == NULL) {
		free(h);
		return -1;
	}
	h->next = sc->holds;
	if (sc->holds != NULL)
		sc->holds->prev = h;
	sc->holds = h;
	return 0;
}

/* An error event for one of our held MESSAGEs: answer it.  0 when it was
 * one, -1 otherwise. */
int
sip_in_error_event(struct sipc *sc, const struct imgw_event *ev)
{
	struct sip_hold *h;
	char why[300];

	if (ev->trace == NULL)
		return -1;
	for (h = sc->holds; h != NULL; h = h->next) {
		if (strcmp(h->trace, ev->trace) != 0)
			continue;
		snprintf(why, sizeof(why), "%s%s%s", ev->condition,
		    ev->text ? ": " : "", ev->text ? ev->text : "");
		sip_in_reply(sc, h->srv, sip_err_code(ev->condition), why);
		sip_in_hold_free(h);
		return 0;
	}
	return -1;
}

/* At stop: what was held was taken by the core, so 202. */
void
sip_in_holds_free(struct sipc *sc)
{
	while (sc->holds != NULL) {
		sip_in_reply(sc, sc->holds->srv, 202, NULL);
		sip_in_hold_free(sc->holds);
	}
}

/* ---- MESSAGE ------------------------------------------------------------- */

/* The URI that names the recipient: the Request-URI, or To when the
 * Request-URI names only a host (a request sent to the gateway itself). */
static const osip_uri_t *
sip_in_target(const osip_message_t *req)
{
	const osip_uri_t *u = req->req_uri;

	if (u->scheme != NULL && (strcasecmp(u->scheme, "sip") == 0 ||
	    strcasecmp(u->scheme, "sips") == 0) && u->username == NULL)
		return req->to->url;
	return u;
}

static void
sip_in_message(struct sipc *sc, struct sip_srv *srv, osip_message_t *req)
{
	char from[SIP_ADDR_MAX], to[SIP_ADDR_MAX], dom[1024], lang[40];
	char err[256], trace[40], *text = NULL, *thread = NULL, *id = NULL;
	const osip_uri_t *target;
	struct imgw_event ev;
	const char *why, *body;
	unsigned refresh = 0;
	size_t len;
	int code;

	if (sip_addr_from_uri(req->from->url, from, sizeof(from), &why) == -1) {
		snprintf(err, sizeof(err), "From: %s", why);
		sip_in_reply(sc, srv, 400, err);
		return;
	}
	if (sip_addr_domain(req->from->url, dom, sizeof(dom)) == -1 ||
	    !sc->host->owns_domain(sc->inst, dom)) {
		sip_in_reply(sc, srv, 403, "From is not a user of this community");
		return;
	}
	target = sip_in_target(req);
	if (sip_addr_from_uri(target, to, sizeof(to), &why) == -1) {
		sip_in_reply(sc, srv, target->scheme && strcasecmp(target->scheme,
		    "sip") && strcasecmp(target->scheme, "sips") &&
		    strcasecmp(target->scheme, "im") && strcasecmp(target->scheme,
		    "pres") ? 416 : 400, why);
		return;
	}
	if (sip_addr_domain(target, dom, sizeof(dom)) == 0 &&
	    sc->host->owns_domain(sc->inst, dom)) {
		sip_in_reply(sc, srv, 404, "the gateway does not route within "
		    "this community");
		return;
	}

	switch (sip_body_kind(req)) {
	case SIP_BODY_TEXT:
		if (sip_body_text(req, &text, &code) == -1) {
			sip_in_reply(sc, srv, code, code == 415 ? NULL :
			    "body is not valid in its charset");
			return;
		}
		imgw_event_init(&ev, IMGW_EV_MESSAGE);
		ev.body = text;
		ev.subject = sip_msg_header(req, "subject", "s");
		if (sip_body_lang(req, lang, sizeof(lang)) == 0)
			ev.lang = lang;
		break;
	case SIP_BODY_ISCOMPOSING:
		imgw_event_init(&ev, IMGW_EV_CHATSTATE);
		(void)sip_msg_body(req, &body, &len);
		if (sip_isc_parse(body, len, &ev.state, &refresh) == -1) {
			sip_in_reply(sc, srv, 400, "bad isComposing document");
			return;
		}
		break;
	default:
		sip_in_reply(sc, srv, 415, NULL);
		return;
	}
	ev.from = from;
	ev.to = to;
	/* Call-ID <-> thread (RFC 7572 section 5: a Call-ID names the
	 * conversation of a series of MESSAGEs) */
	if (osip_call_id_to_str(req->call_id, &thread) == 0)
		ev.thread = thread;
	len = strlen(req->cseq->number) + (thread ? strlen(thread) : 0) + 2;
	if ((id = malloc(len)) != NULL) {
		snprintf(id, len, "%s.%s", req->cseq->number, thread ? thread : "");
		ev.id = id;
	}
	trace[0] = '\0';
	/* emit_now: a refusal the router decides at once (no route,
	 * policy, a full or stopped destination) is this request's answer */
	if (sc->host->emit_now(sc->inst, &ev, err, sizeof(err), trace) == -1) {
		err[sizeof(err) - 1] = '\0';
		sip_in_reply(sc, srv, sip_err_emit_code(err), err);
	} else {
		sip_typing_in(sc, &ev, refresh);
		if (sc->answer_wait_ms == 0 || ev.kind != IMGW_EV_MESSAGE ||
		    sip_in_hold(sc, srv, trace) == -1)
			sip_in_reply(sc, srv, 202, NULL);
	}
	osip_free(thread);
	free(id);
	free(text);
}

void
sip_in_request_cb(void *arg, struct sip_srv *srv, osip_message_t *req)
{
	struct sipc *sc = arg;

	if (MSG_IS_MESSAGE(req)) {
		sip_in_message(sc, srv, req);
		return;
	}
	if (MSG_IS_SUBSCRIBE(req)) {
		sip_subin_subscribe(sc, srv, req);
		return;
	}
	if (MSG_IS_NOTIFY(req)) {
		sip_subout_notify(sc, srv, req);
		return;
	}
	(void)sip_srv_reply_code(srv, 501, NULL, NULL);
}
