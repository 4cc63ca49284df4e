/*
 * SIP watchers' subscriptions to our presentities (RFC 3856, RFC 6665):
 *
 *   SUBSCRIBE (new)   checks as for MESSAGE (From ours: 403, target not
 *                     ours: 404), Event presence (489 with Allow-Events),
 *                     Contact (400 without), Expires under 60 (423 with
 *                     Min-Expires); then a core subscribe; 200 with
 *                     Expires and Contact; an immediate NOTIFY pending.
 *                     Its Record-Route values are the dialog's route
 *                     set, in order (RFC 3261 12.1.1); NOTIFYs follow it
 *   Expires: 0        a fetch: a core probe, 200, NOTIFY terminated
 *   refresh           200, new expiry, NOTIFY with the current state;
 *                     its Contact is the new remote target
 *   unsubscribe       200, NOTIFY terminated;reason=timeout, core
 *                     unsubscribe
 *   expiry            NOTIFY terminated;reason=timeout, core unsubscribe
 *   core subscribed   NOTIFY active (with the last presence, if any)
 *   core unsubscribed NOTIFY terminated;reason=rejected
 *   core presence     NOTIFY active with PIDF (kept for later NOTIFYs)
 *   481 to a NOTIFY   the watcher is gone: core unsubscribe
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sip.h"

#define SIP_MIN_EXPIRES	60

static uint64_t
sip_subin_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned
sip_subin_left(const struct sip_sub *s)
{
	uint64_t now = sip_subin_now();

	return s->deadline_ms > now ? (unsigned)((s->deadline_ms - now) / 1000u) : 0;
}

static void
sip_subin_notify_cb(void *arg, int code, osip_message_t *resp)
{
	struct sip_pend *p = arg;
	struct sipc *sc = p->sc;
	struct sip_sub *s = sip_sub_by_id(sc, p->sub_id);

	(void)resp;
	if (code >= 300)
		SIPC_COUNT(sc, "notify-failed");
	if (s != NULL && (code == 481 || code == 408)) {
		/* RFC 6665 4.2.2: the subscription is over */
		sip_sub_emit(sc, IMGW_EV_UNSUBSCRIBE, s->watcher, s->presentity, NULL);
		sip_sub_free(s);
	}
	sip_pend_free(p);
}

/* NOTIFY with the sub's state; terminated ends with `reason`. */
static void
sip_subin_notify(struct sip_sub *s, const char *reason)
{
	char state[64];
	int body = s->state == SIP_SUBST_ACTIVE && s->pidf != NULL && reason == NULL;

	if (reason != NULL)
		snprintf(state, sizeof(state), "terminated;reason=%s", reason);
	else
		snprintf(state, sizeof(state), "%s;expires=%u",
		    s->state == SIP_SUBST_ACTIVE ? "active" : "pending",
		    sip_subin_left(s));
	if (sip_sub_send(s, "NOTIFY", -1, state, "application/pidf+xml",
	    body ? s->pidf : NULL, IMGW_EV_PRESENCE, sip_subin_notify_cb) == -1)
		SIPC_COUNT(s->sc, "notify-unsent");
	else
		SIPC_COUNT(s->sc, "notify-out");
}

static void
sip_subin_expire_cb(void *arg)
{
	struct sip_sub *s = arg;

	s->timer = NULL;
	sip_subin_notify(s, "timeout");
	sip_sub_emit(s->sc, IMGW_EV_UNSUBSCRIBE, s->watcher, s->presentity, NULL);
	sip_sub_free(s);
}

static void
sip_subin_ok(struct sipc *sc, struct sip_srv *srv, struct sip_sub *s, int exp)
{
	osip_message_t *r;
	char num[16];

	if (s != NULL)
		sip_srv_set_tag(srv, s->ltag);	/* the dialog's local tag */
	if ((r = sip_srv_response(srv, 200)) == NULL)
		return;
	snprintf(num, sizeof(num), "%d", exp);
	osip_message_set_header(r, "Expires", num);
	/* the dialog goes over the transport the SUBSCRIBE came on */
	if (s != NULL)
		s->proto = sip_srv_proto(srv);
	sip_sub_contact(sc, r, sip_srv_proto(srv));
	(void)sip_srv_reply(srv, r);
}

static void
sip_subin_arm(struct sip_sub *s, int exp)
{
	s->expires = (unsigned)exp;
	s->deadline_ms = sip_subin_now() + (uint64_t)exp * 1000u;
	(void)sip_sub_timer(s, (unsigned)exp * 1000u, sip_subin_expire_cb);
	sip_sub_store(s);
}

/* A subscription read back from the store: expire it when it would. */
void
sip_subin_restored(struct sip_sub *s, unsigned left_s)
{
	sip_subin_arm(s, (int)left_s);
	/* the watcher missed what changed while we were down: probe the
	 * presentity, whose answer goes out as a NOTIFY with the current
	 * state (RFC 6665 does not ask for it; watchers expect it) */
	if (s->state == SIP_SUBST_ACTIVE)
		sip_sub_emit(s->sc, IMGW_EV_PROBE, s->watcher, s->presentity, NULL);
}

/* A SUBSCRIBE inside an existing dialog: refresh or unsubscribe. */
static void
sip_subin_refresh(struct sipc *sc, struct sip_srv *srv, osip_message_t *req,
    const char *totag)
{
	char *callid = sip_sub_callid(req);
	struct sip_sub *s = sip_sub_by_dialog(sc, SIP_SUB_IN, callid, totag);
	osip_generic_param_t *ftag = NULL;
	osip_contact_t *c;
	char *u = NULL, *t;
	int exp;

	free(callid);
	/* the dialog is Call-ID and both tags (RFC 3261 12) */
	if (s != NULL && (osip_from_get_tag(req->from, &ftag) != 0 || ftag == NULL ||
	    ftag->gvalue == NULL || strcmp(ftag->gvalue, s->rtag) != 0))
		s = NULL;
	if (s == NULL) {
		(void)sip_srv_reply_code(srv, 481, NULL, NULL);
		return;
	}
	exp = sip_sub_expires(req, (int)sc->sub_expires);
	if (exp > (int)sc->sub_expires)
		exp = (int)sc->sub_expires;
	if (exp != 0 && exp < SIP_MIN_EXPIRES) {
		(void)sip_srv_reply_code(srv, 423, "Min-Expires", "60");
		return;
	}
	/* a target refresh (RFC 6665 4.1.2.1, RFC 3261 12.2.2): the remote
	 * target follows the Contact; the route set stays as it was */
	if ((c = osip_list_get(&req->contacts, 0)) != NULL && c->url != NULL &&
	    osip_uri_to_str(c->url, &u) == 0) {
		if ((t = strdup(u)) != NULL) {
			free(s->target);
			s->target = t;
		}
		osip_free(u);
	}
	sip_subin_ok(sc, srv, s, exp);
	if (exp == 0) {
		sip_subin_notify(s, "timeout");
		sip_sub_emit(sc, IMGW_EV_UNSUBSCRIBE, s->watcher, s->presentity, NULL);
		sip_sub_free(s);
		return;
	}
	sip_subin_arm(s, exp);
	sip_subin_notify(s, NULL);
}

void
sip_subin_subscribe(struct sipc *sc, struct sip_srv *srv, osip_message_t *req)
{
	const char *event = sip_msg_header(req, "event", "o"), *why;
	char w[SIP_ADDR_MAX], pr[SIP_ADDR_MAX], dom[1024], err[200], *u = NULL;
	osip_generic_param_t *tag = NULL, *ftag = NULL;
	const osip_uri_t *target;
	osip_contact_t *c;
	struct sip_sub *s, *old;
	struct imgw_event ev;
	int exp;

	if (event == NULL || strncasecmp(event, "presence", 8) != 0 ||
	    (event[8] != '\0' && event[8] != ';' && event[8] != ' ')) {
		(void)sip_srv_reply_code(srv, 489, "Allow-Events", "presence");
		return;
	}
	if (osip_to_get_tag(req->to, &tag) == 0 && tag != NULL && tag->gvalue) {
		sip_subin_refresh(sc, srv, req, tag->gvalue);
		return;
	}
	if (sip_addr_from_uri(req->from->url, w, sizeof(w), &why) == -1 ||
	    osip_from_get_tag(req->from, &ftag) != 0 || ftag == NULL ||
	    ftag->gvalue == NULL) {
		(void)sip_srv_reply_code(srv, 400, NULL, NULL);
		return;
	}
	if (sip_addr_domain(req->from->url, dom, sizeof(dom)) == -1 ||
	    !sc->host->owns_domain(sc->inst, dom)) {
		(void)sip_srv_reply_code(srv, 403, NULL, NULL);
		return;
	}
	target = req->req_uri->username ? req->req_uri : req->to->url;
	if (sip_addr_from_uri(target, pr, sizeof(pr), &why) == -1) {
		(void)sip_srv_reply_code(srv, 400, NULL, NULL);
		return;
	}
	if (sip_addr_domain(target, dom, sizeof(dom)) == 0 &&
	    sc->host->owns_domain(sc->inst, dom)) {
		(void)sip_srv_reply_code(srv, 404, NULL, NULL);
		return;
	}
	w[imgw_addr_bare_len(w)] = '\0';
	pr[imgw_addr_bare_len(pr)] = '\0';
	if ((c = osip_list_get(&req->contacts, 0)) == NULL || c->url == NULL ||
	    osip_uri_to_str(c->url, &u) != 0) {
		(void)sip_srv_reply_code(srv, 400, "Warning", "399 imgw \"no Contact\"");
		return;
	}
	exp = sip_sub_expires(req, (int)sc->sub_expires);
	if (exp > (int)sc->sub_expires)
		exp = (int)sc->sub_expires;
	if (exp != 0 && exp < SIP_MIN_EXPIRES) {
		osip_free(u);
		(void)sip_srv_reply_code(srv, 423, "Min-Expires", "60");
		return;
	}
	if ((old = sip_sub_find(sc, SIP_SUB_IN, w, pr)) != NULL)
		sip_sub_free(old);	/* a new dialog replaces the old one */
	if ((s = sip_sub_new(sc, SIP_SUB_IN, w, pr)) == NULL) {
		osip_free(u);
		(void)sip_srv_reply_code(srv, 503, "Retry-After", "60");
		return;
	}
	s->callid = sip_sub_callid(req);
	s->rtag = strdup(ftag->gvalue);
	s->target = strdup(u);
	osip_free(u);
	s->rcseq = (unsigned)strtoul(req->cseq->number, NULL, 10);
	/* the route set: the request's Record-Route in order (RFC 3261
	 * 12.1.1); the stack copies them into our 200 */
	if (s->callid == NULL || s->rtag == NULL || s->target == NULL ||
	    sip_msg_route_set(req, 0, &s->routes) == -1) {
		sip_sub_free(s);
		(void)sip_srv_reply_code(srv, 500, NULL, NULL);
		return;
	}
	imgw_event_init(&ev, exp == 0 ? IMGW_EV_PROBE : IMGW_EV_SUBSCRIBE);
	ev.from = w;
	ev.to = pr;
	if (sc->host->emit(sc->inst, &ev, err, sizeof(err), NULL) == -1) {
		sip_sub_free(s);
		(void)sip_srv_reply_code(srv, sip_err_emit_code(err), NULL, NULL);
		return;
	}
	s->state = SIP_SUBST_PENDING;
	sip_subin_ok(sc, srv, s, exp);
	if (exp == 0) {
		sip_subin_notify(s, "timeout");
		sip_sub_free(s);
		return;
	}
	sip_subin_arm(s, exp);
	sip_subin_notify(s, NULL);
}

/* subscribed, unsubscribed and presence from a presentity of ours. */
int
sip_subin_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r)
{
	struct sip_sub *s = sip_sub_find(sc, SIP_SUB_IN, ev->to, ev->from);
	char doc[4096];
	int n;

	(void)condition_r;
	if (s == NULL) {
		SIPC_COUNT(sc, ev->kind == IMGW_EV_PRESENCE ?
		    "presence-no-subscription" : "subscription-answer-dropped");
		return IMGW_OK;
	}
	switch (ev->kind) {
	case IMGW_EV_SUBSCRIBED:
		s->state = SIP_SUBST_ACTIVE;
		sip_sub_store(s);
		sip_subin_notify(s, NULL);
		break;
	case IMGW_EV_UNSUBSCRIBED:
		sip_subin_notify(s, "rejected");
		sip_sub_free(s);
		break;
	case IMGW_EV_PRESENCE:
		n = sip_pidf_format(s->luri, ev->show, ev->status, ev->lang, doc,
		    sizeof(doc));
		if (n < 0) {
			SIPC_COUNT(sc, "pidf-too-large");
			break;
		}
		free(s->pidf);
		s->pidf = strdup(doc);
		if (s->state == SIP_SUBST_ACTIVE)
			sip_subin_notify(s, NULL);
		break;
	default:
		break;
	}
	return IMGW_OK;
}
