/*
 * Our watchers' subscriptions to SIP presentities (RFC 3856, RFC 6665):
 *
 *   core subscribe   -> SUBSCRIBE (Event: presence, Expires:
 *                       subscribe-expires), a new dialog
 *   2xx              -> the dialog (route set: its Record-Route reversed,
 *                       or a NOTIFY's in order when that came first, RFC
 *                       6665 4.1.2.4); refresh at 4/5 of the granted time
 *   NOTIFY           -> 200; Subscription-State active: subscribed (once),
 *                       pending: nothing, terminated: unsubscribed, or a
 *                       new SUBSCRIBE for reason deactivated/timeout/
 *                       probation (RFC 6665 4.1.3); a PIDF body: presence
 *   core unsubscribe -> SUBSCRIBE Expires: 0 in the dialog
 *   core probe       -> a refresh (which brings a NOTIFY), or a fetch
 *                       (SUBSCRIBE Expires: 0 outside any dialog)
 *
 * A first SUBSCRIBE refused with 403/603/489 is unsubscribed (the
 * presentity said no); other failures are an error event back to the
 * watcher with the subscribe's id (RFC 7247 7.2).  A lost dialog (481,
 * 408, 503) is rebuilt with a new SUBSCRIBE after 2, 4, ... 32 s; after
 * five tries the watcher gets remote-server-timeout.  Dialogs are kept in
 * the core's store (sub-store.c) and refreshed in place after a restart.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* strcasestr */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sip.h"

#define SIP_SUB_RETRIES		5
#define SIP_FETCH_WAIT_MS	32000

static void sip_subout_answer_cb(void *arg, int code, osip_message_t *resp);

static int
sip_subout_subscribe(struct sip_sub *s, int expires)
{
	if (s->inflight)
		return 0;
	if (sip_sub_send(s, "SUBSCRIBE", expires, NULL, NULL, NULL,
	    IMGW_EV_SUBSCRIBE, sip_subout_answer_cb) == -1)
		return -1;
	s->inflight = 1;
	return 0;
}

/* Forget the dialog: the next SUBSCRIBE starts a new one. */
static void
sip_subout_reset(struct sip_sub *s)
{
	free(s->callid);
	free(s->rtag);
	free(s->target);
	free(s->routes);
	s->callid = s->rtag = s->target = s->routes = NULL;
	s->lcseq = 1;
	s->state = SIP_SUBST_INIT;
}

static void
sip_subout_refresh_cb(void *arg)
{
	struct sip_sub *s = arg;

	s->timer = NULL;
	if (s->fetch) {		/* the NOTIFY of a fetch never came */
		sip_sub_free(s);
		return;
	}
	if (sip_subout_subscribe(s, (int)s->sc->sub_expires) == -1)
		(void)sip_sub_timer(s, 30000, sip_subout_refresh_cb);
}

/* Try again later with back-off, or give up after SIP_SUB_RETRIES. */
static void
sip_subout_retry(struct sip_sub *s, const char *why)
{
	struct sipc *sc = s->sc;

	sip_subout_reset(s);
	if (++s->retries > SIP_SUB_RETRIES) {
		SIPC_LOG(sc, IMGW_LOG_INFO, "subscription of %s to %s: giving up (%s)",
		    s->watcher, s->presentity, why);
		if (s->told_subscribed)
			sip_sub_emit(sc, IMGW_EV_UNSUBSCRIBED, s->presentity, s->watcher, NULL);
		else {
			struct imgw_event ev;

			imgw_event_init(&ev, IMGW_EV_ERROR);
			ev.from = s->presentity;
			ev.to = s->watcher;
			ev.id = s->sub_evid;
			ev.condition = IMGW_ERR_REMOTE_SERVER_TIMEOUT;
			ev.text = why;
			(void)sc->host->emit(sc->inst, &ev, NULL, 0, NULL);
		}
		sip_sub_free(s);
		return;
	}
	SIPC_COUNT(sc, "subscription-retries");
	(void)sip_sub_timer(s, 1000u << s->retries, sip_subout_refresh_cb);
}

/*
 * The dialog is set up by m, the first 2xx (reverse 1) or NOTIFY
 * (reverse 0) that names the peer's tag: the route set is m's
 * Record-Route, reversed for a response, in order for a request (RFC
 * 3261 12.1.2, 12.1.1), and stays so for the dialog's life (12.2.1.2).
 */
static void
sip_subout_dialog(struct sip_sub *s, const char *rtag, const osip_message_t *m,
    int reverse)
{
	s->rtag = strdup(rtag);
	free(s->routes);
	if (sip_msg_route_set(m, reverse, &s->routes) == -1)
		SIPC_LOG(s->sc, IMGW_LOG_INFO, "subscription of %s to %s: bad "
		    "Record-Route", s->watcher, s->presentity);
}

static void
sip_subout_target(struct sip_sub *s, const osip_message_t *m)
{
	osip_contact_t *c = osip_list_get(&m->contacts, 0);
	char *u = NULL;

	if (c == NULL || c->url == NULL || osip_uri_to_str(c->url, &u) != 0)
		return;
	free(s->target);
	s->target = strdup(u);
	osip_free(u);
}

static void
sip_subout_answer_cb(void *arg, int code, osip_message_t *resp)
{
	struct sip_pend *p = arg;
	struct sipc *sc = p->sc;
	struct sip_sub *s = sip_sub_by_id(sc, p->sub_id);
	osip_generic_param_t *tag = NULL;
	char text[80];
	int granted;

	if (s == NULL)
		goto done;
	s->inflight = 0;
	if (code >= 200 && code < 300) {
		if (resp != NULL && s->rtag == NULL && resp->to != NULL &&
		    osip_to_get_tag(resp->to, &tag) == 0 && tag && tag->gvalue)
			sip_subout_dialog(s, tag->gvalue, resp, 1);
		if (resp != NULL)
			sip_subout_target(s, resp);
		if (s->closing) {
			/* a refresh was in flight when the watcher left: now
			 * end it for real */
			if (p->expires != 0 && sip_sub_send(s, "SUBSCRIBE", 0, NULL,
			    NULL, NULL, IMGW_EV_UNSUBSCRIBE, sip_subout_answer_cb) == 0)
				s->inflight = 1;
			else
				sip_sub_free(s);
			goto done;
		}
		if (s->fetch) {
			(void)sip_sub_timer(s, SIP_FETCH_WAIT_MS, sip_subout_refresh_cb);
			goto done;
		}
		granted = resp ? sip_sub_expires(resp, p->expires) : p->expires;
		if (granted <= 0)
			granted = p->expires > 0 ? p->expires : 60;
		s->expires = (unsigned)granted;
		s->retries = 0;
		if (s->state == SIP_SUBST_INIT)
			s->state = SIP_SUBST_PENDING;
		sip_sub_store(s);
		(void)sip_sub_timer(s, granted >= 25 ? (unsigned)granted * 800u
		    : 20000u, sip_subout_refresh_cb);
		goto done;
	}
	if (s->closing || s->fetch) {
		sip_sub_free(s);
		goto done;
	}
	snprintf(text, sizeof(text), "SIP %d to SUBSCRIBE", code);
	if (code == 481 || code == 408 || code == 503 || code == 500) {
		sip_subout_retry(s, text);
		goto done;
	}
	SIPC_LOG(sc, IMGW_LOG_INFO, "subscription of %s to %s: %s", s->watcher,
	    s->presentity, text);
	if (code == 403 || code == 603 || code == 489 || s->told_subscribed) {
		sip_sub_emit(sc, IMGW_EV_UNSUBSCRIBED, s->presentity, s->watcher,
		    s->sub_evid);
	} else {
		struct imgw_event ev;

		imgw_event_init(&ev, IMGW_EV_ERROR);
		ev.from = s->presentity;
		ev.to = s->watcher;
		ev.id = s->sub_evid;
		ev.condition = sip_err_condition(code);
		ev.text = text;
		(void)sc->host->emit(sc->inst, &ev, NULL, 0, NULL);
	}
	sip_sub_free(s);
done:
	sip_pend_free(p);
}

/* "active;expires=600" -> state, expires (or -1), reason ("" if none). */
static enum sip_sub_state
sip_subout_state(const char *v, int *expires_r, char *reason, size_t rlen)
{
	enum sip_sub_state st = SIP_SUBST_TERMINATED;
	const char *p;

	*expires_r = -1;
	reason[0] = '\0';
	if (v == NULL)
		return SIP_SUBST_TERMINATED;
	while (*v == ' ')
		v++;
	if (strncasecmp(v, "active", 6) == 0)
		st = SIP_SUBST_ACTIVE;
	else if (strncasecmp(v, "pending", 7) == 0)
		st = SIP_SUBST_PENDING;
	if ((p = strcasestr(v, "expires=")) != NULL)
		*expires_r = atoi(p + 8);
	if ((p = strcasestr(v, "reason=")) != NULL)
		snprintf(reason, rlen, "%.*s", (int)strcspn(p + 7, "; \t"), p + 7);
	return st;
}

static void
sip_subout_presence(struct sip_sub *s, const osip_message_t *req)
{
	struct sipc *sc = s->sc;
	const osip_content_type_t *ct = req->content_type;
	struct imgw_event ev;
	char note[1024], lang[40], err[160];
	const char *body;
	size_t len;

	if (sip_msg_body(req, &body, &len) == -1 || len == 0 || ct == NULL ||
	    ct->subtype == NULL || strcasecmp(ct->subtype, "pidf+xml") != 0)
		return;
	imgw_event_init(&ev, IMGW_EV_PRESENCE);
	if (sip_pidf_parse(body, len, &ev.show, note, sizeof(note), lang,
	    sizeof(lang)) == -1) {
		SIPC_COUNT(sc, "pidf-unparsable");
		return;
	}
	ev.from = s->presentity;
	ev.to = s->watcher;
	ev.status = note[0] ? note : NULL;
	ev.lang = lang[0] ? lang : NULL;
	if (sc->host->emit(sc->inst, &ev, err, sizeof(err), NULL) == -1)
		SIPC_LOG(sc, IMGW_LOG_INFO, "presence of %s refused: %s",
		    s->presentity, err);
	else
		SIPC_COUNT(sc, "presence-in");
}

/* A NOTIFY for one of our watchers. */
void
sip_subout_notify(struct sipc *sc, struct sip_srv *srv, osip_message_t *req)
{
	osip_generic_param_t *tag = NULL;
	const char *event = sip_msg_header(req, "event", "o");
	char *callid = sip_sub_callid(req), reason[32];
	struct sip_sub *s = NULL;
	enum sip_sub_state st;
	int expires;

	if (osip_to_get_tag(req->to, &tag) == 0 && tag != NULL)
		s = sip_sub_by_dialog(sc, SIP_SUB_OUT, callid, tag->gvalue);
	free(callid);
	if (s == NULL) {
		(void)sip_srv_reply_code(srv, 481, NULL, NULL);
		return;
	}
	if (event == NULL || strncasecmp(event, "presence", 8) != 0 ||
	    (event[8] != '\0' && event[8] != ';' && event[8] != ' ')) {
		(void)sip_srv_reply_code(srv, 489, "Allow-Events", "presence");
		return;
	}
	/* a NOTIFY before the 2xx sets the dialog up (RFC 6665 4.1.2.4) */
	if (s->rtag == NULL && osip_from_get_tag(req->from, &tag) == 0 && tag &&
	    tag->gvalue)
		sip_subout_dialog(s, tag->gvalue, req, 0);
	sip_subout_target(s, req);
	st = sip_subout_state(sip_msg_header(req, "subscription-state", NULL),
	    &expires, reason, sizeof(reason));
	(void)sip_srv_reply_code(srv, 200, NULL, NULL);

	if (st == SIP_SUBST_ACTIVE && !s->told_subscribed && !s->fetch &&
	    !s->closing) {
		s->told_subscribed = 1;
		sip_sub_emit(sc, IMGW_EV_SUBSCRIBED, s->presentity, s->watcher,
		    s->sub_evid);
	}
	if (st != SIP_SUBST_PENDING && !s->closing)
		sip_subout_presence(s, req);
	if (st != SIP_SUBST_TERMINATED) {
		if (s->state != st) {
			s->state = st;
			sip_sub_store(s);
		}
		if (expires > 0 && (unsigned)expires < s->expires && !s->fetch) {
			s->expires = (unsigned)expires;
			(void)sip_sub_timer(s, expires >= 25 ? (unsigned)expires * 800u
			    : 20000u, sip_subout_refresh_cb);
		}
		return;
	}
	if (s->fetch || s->closing) {
		sip_sub_free(s);
		return;
	}
	if (strcasecmp(reason, "deactivated") == 0 || strcasecmp(reason, "timeout") == 0 ||
	    strcasecmp(reason, "probation") == 0) {
		sip_subout_reset(s);
		(void)sip_sub_timer(s, 1000, sip_subout_refresh_cb);
		return;
	}
	sip_sub_emit(sc, IMGW_EV_UNSUBSCRIBED, s->presentity, s->watcher, NULL);
	sip_sub_free(s);
}

/* A subscription read back from the store: refresh its dialog now. */
void
sip_subout_restored(struct sip_sub *s)
{
	s->expires = s->sc->sub_expires;
	if (sip_subout_subscribe(s, (int)s->sc->sub_expires) == -1)
		(void)sip_sub_timer(s, 2000, sip_subout_refresh_cb);
}

/* A bare copy of a canonical address into buf. */
static int
sip_subout_bare(const char *addr, char *buf, size_t len)
{
	size_t n = imgw_addr_bare_len(addr);

	if (n >= len)
		return -1;
	memcpy(buf, addr, n);
	buf[n] = '\0';
	return 0;
}

/* subscribe, unsubscribe and probe from a watcher of ours. */
int
sip_subout_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r)
{
	char w[SIP_ADDR_MAX], pr[SIP_ADDR_MAX];
	struct sip_sub *s;

	if (sip_subout_bare(ev->from, w, sizeof(w)) == -1 ||
	    sip_subout_bare(ev->to, pr, sizeof(pr)) == -1) {
		*condition_r = IMGW_ERR_JID_MALFORMED;
		return IMGW_FAIL;
	}
	s = sip_sub_find(sc, SIP_SUB_OUT, w, pr);
	switch (ev->kind) {
	case IMGW_EV_SUBSCRIBE:
		if (s != NULL) {
			if (s->told_subscribed)
				sip_sub_emit(sc, IMGW_EV_SUBSCRIBED, pr, w, ev->id);
			s->closing = 0;
			return IMGW_OK;
		}
		break;
	case IMGW_EV_UNSUBSCRIBE:
		if (s == NULL)
			return IMGW_OK;
		s->closing = 1;
		if (s->callid == NULL || s->inflight ||
		    sip_sub_send(s, "SUBSCRIBE", 0, NULL, NULL, NULL,
		    IMGW_EV_UNSUBSCRIBE, sip_subout_answer_cb) == -1) {
			if (!s->inflight)
				sip_sub_free(s);
		} else {
			s->inflight = 1;
		}
		return IMGW_OK;
	case IMGW_EV_PROBE:
		if (s != NULL) {
			if (s->callid != NULL && s->state != SIP_SUBST_INIT)
				(void)sip_subout_subscribe(s, (int)sc->sub_expires);
			return IMGW_OK;
		}
		break;
	default:
		return IMGW_OK;
	}
	if ((s = sip_sub_new(sc, SIP_SUB_OUT, w, pr)) == NULL) {
		*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		return IMGW_FAIL;
	}
	s->fetch = ev->kind == IMGW_EV_PROBE;
	if (ev->id != NULL && (s->sub_evid = strdup(ev->id)) == NULL) {
		sip_sub_free(s);
		*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		return IMGW_FAIL;
	}
	if (sip_subout_subscribe(s, s->fetch ? 0 : (int)sc->sub_expires) == -1) {
		sip_sub_free(s);
		*condition_r = IMGW_ERR_REMOTE_SERVER_NOT_FOUND;
		return IMGW_FAIL;
	}
	return IMGW_OK;
}
