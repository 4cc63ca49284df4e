/*
 * The subscription table and what both directions share: dialogs (RFC
 * 3261 12, RFC 6665 4.1/4.2), sending SUBSCRIBE and NOTIFY inside them,
 * timers.
 *
 * The table is a list: subscriptions are few next to messages, and each
 * lookup is one walk (max-subscriptions bounds it).  Answers to requests
 * a subscription sent find it again by id, never by pointer, since the
 * subscription may be gone by then.
 *
 * Requests inside a dialog follow its route set (RFC 3261 12.2.1.1: the
 * Route headers and Request-URI sip_msg_route writes, the first route as
 * next hop).  Without a route set they go to the next hop of the SIP
 * party's domain (the static route), with the remote target as
 * Request-URI; without a route, to the remote target's own host when it
 * is numeric.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sip.h"

struct sip_sub *
sip_sub_new(struct sipc *sc, enum sip_sub_dir dir, const char *watcher,
    const char *presentity)
{
	struct sip_sub *s;
	char uri[SIP_URI_MAX], tag[24];

	if (sc->nsubs >= sc->max_subs || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->sc = sc;
	s->id = ++sc->next_sub_id;
	s->dir = dir;
	s->watcher = strdup(watcher);
	s->presentity = strdup(presentity);
	sip_msg_tag(tag, sizeof(tag));
	s->ltag = strdup(tag);
	s->lcseq = 1;
	s->next = sc->subs;
	if (sc->subs != NULL)
		sc->subs->prev = s;
	sc->subs = s;
	sc->nsubs++;
	if (s->watcher == NULL || s->presentity == NULL || s->ltag == NULL)
		goto fail;
	/* our URI is our party's: the watcher for OUT, the presentity for IN */
	if (sip_addr_to_uri(dir == SIP_SUB_OUT ? watcher : presentity, uri,
	    sizeof(uri)) == -1 || (s->luri = strdup(uri)) == NULL)
		goto fail;
	if (sip_addr_to_uri(dir == SIP_SUB_OUT ? presentity : watcher, uri,
	    sizeof(uri)) == -1 || (s->ruri = strdup(uri)) == NULL)
		goto fail;
	SIPC_COUNT(sc, dir == SIP_SUB_OUT ? "subscriptions-out" : "subscriptions-in");
	return s;
fail:
	sip_sub_free(s);
	return NULL;
}

void
sip_sub_free(struct sip_sub *s)
{
	struct sipc *sc = s->sc;

	if (!sc->stopping)
		sip_sub_unstore(s);	/* it really ends */
	if (s->timer != NULL)
		sc->host->timer_del(s->timer);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sc->subs = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	sc->nsubs--;
	free(s->watcher);
	free(s->presentity);
	free(s->callid);
	free(s->ltag);
	free(s->rtag);
	free(s->luri);
	free(s->ruri);
	free(s->target);
	free(s->routes);
	free(s->sub_evid);
	free(s->pidf);
	free(s);
}

/* At stop: free every subscription but keep the stored ones stored. */
void
sip_sub_free_all(struct sipc *sc)
{
	int was = sc->stopping;

	sc->stopping = 1;
	while (sc->subs != NULL)
		sip_sub_free(sc->subs);
	sc->stopping = was;
}

struct sip_sub *
sip_sub_find(struct sipc *sc, enum sip_sub_dir dir, const char *watcher,
    const char *presentity)
{
	struct sip_sub *s;

	for (s = sc->subs; s != NULL; s = s->next)
		if (s->dir == dir && !s->fetch && imgw_addr_bare_eq(s->watcher, watcher) &&
		    imgw_addr_bare_eq(s->presentity, presentity))
			return s;
	return NULL;
}

struct sip_sub *
sip_sub_by_dialog(struct sipc *sc, enum sip_sub_dir dir, const char *callid,
    const char *ltag)
{
	struct sip_sub *s;

	if (callid == NULL || ltag == NULL)
		return NULL;
	for (s = sc->subs; s != NULL; s = s->next)
		if (s->dir == dir && s->callid != NULL &&
		    strcmp(s->callid, callid) == 0 && strcmp(s->ltag, ltag) == 0)
			return s;
	return NULL;
}

struct sip_sub *
sip_sub_by_id(struct sipc *sc, uint64_t id)
{
	struct sip_sub *s;

	for (s = sc->subs; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* The Call-ID of m as one string (the caller frees it). */
char *
sip_sub_callid(const osip_message_t *m)
{
	char *cid = NULL, *copy;

	if (m->call_id == NULL || osip_call_id_to_str(m->call_id, &cid) != 0)
		return NULL;
	copy = strdup(cid);
	osip_free(cid);
	return copy;
}

/* Expires header of m (RFC 3261 20.19), or def. */
int
sip_sub_expires(const osip_message_t *m, int def)
{
	const char *v = sip_msg_header(m, "expires", NULL);
	char *end;
	long n;

	if (v == NULL)
		return def;
	n = strtol(v, &end, 10);
	if (end == v || n < 0 || n > 86400 * 7)
		return def;
	return (int)n;
}

/* Emit a presence-subscription event; a refusal is logged and counted. */
void
sip_sub_emit(struct sipc *sc, enum imgw_kind kind, const char *from,
    const char *to, const char *id)
{
	struct imgw_event ev;
	char err[160];

	imgw_event_init(&ev, kind);
	ev.from = from;
	ev.to = to;
	ev.id = id;
	if (sc->host->emit(sc->inst, &ev, err, sizeof(err), NULL) == -1) {
		SIPC_COUNT(sc, "emit-refused");
		SIPC_LOG(sc, IMGW_LOG_INFO, "%s from %s to %s refused: %s",
		    imgw_kind_name(kind), from, to, err);
	}
}

/* Our Contact in m, for the transport the dialog goes over. */
void
sip_sub_contact(struct sipc *sc, osip_message_t *m, int proto)
{
	char contact[SIP_HOST_MAX + 64];

	snprintf(contact, sizeof(contact), "<sip:imgw@%s%s%s:%d%s>",
	    strchr(sc->adv_host, ':') ? "[" : "", sc->adv_host,
	    strchr(sc->adv_host, ':') ? "]" : "",
	    sip_stack_adv_port_proto(sc->st, proto),
	    proto == SIP_PROTO_TCP ? ";transport=tcp" :
	    proto == SIP_PROTO_TLS ? ";transport=tls" : "");
	osip_message_set_contact(m, contact);
}

/* Our Contact for the transport the dialog goes over, then the request
 * to the stack: to ta, or to hops (with fail-over, TLS checking p->name).
 * 0, or -1 (m is gone either way). */
static int
sip_sub_go(struct sip_pend *p, osip_message_t *m, const struct sip_taddr *ta,
    struct sip_hops *hops)
{
	struct sip_sub *s = sip_sub_by_id(p->sc, p->sub_id);
	int proto = ta != NULL ? ta->proto : sip_hops_count(hops) > 0 ?
	    sip_hops_get(hops, 0)->proto : SIP_PROTO_UDP;

	if (s != NULL)
		s->proto = proto;
	sip_sub_contact(p->sc, m, proto);
	if (ta != NULL)
		return sip_stack_request(p->sc->st, m, ta, p->cb, p);
	return sip_stack_request_hops(p->sc->st, m, hops, p->name, p->cb, p);
}

/* The lookup of a next hop ended: send the held request, or answer it
 * with 503 (the pend's callback frees the pend). */
static void
sip_sub_resolved(void *arg, struct sip_hops *hops, const char *why)
{
	struct sip_pend *p = arg;
	osip_message_t *m = p->req;

	p->req = NULL;
	if (hops != NULL && sip_sub_go(p, m, NULL, hops) == 0)
		return;
	if (hops == NULL)
		osip_message_free(m);
	SIPC_LOG(p->sc, IMGW_LOG_INFO, "presence request for %s: no next hop: %s",
	    p->to, why ? why : "cannot send");
	p->cb(p, 503, NULL);
}

/*
 * The next hops of `name` (a domain, or a host named by a route or a
 * Contact): with `nh` (a URI's host name with a port: RFC 3263 4.2 asks
 * for its A/AAAA only) that host; else its static route if it has one
 * (names in it through A/AAAA), else RFC 3263 (NAPTR, SRV, A/AAAA) when
 * dns is on.  TLS checks `name` (RFC 5922).  2 with *hops, 0 when a
 * lookup runs (it ends in sip_sub_resolved), -1.
 */
static int
sip_sub_hops(struct sipc *sc, const char *name, const struct sip_nexthop *nh,
    struct sip_pend *p, struct sip_hops **hops)
{
	const char *why = NULL;
	int rc;

	if (strlen(name) >= sizeof(p->name))
		return -1;
	memcpy(p->name, name, strlen(name) + 1);
	if (nh != NULL)
		rc = sip_stack_route(sc->st, nh, 1, hops, sip_sub_resolved, p,
		    &why);
	else
		rc = sip_opt_hops(sc, name, hops, sip_sub_resolved, p, &why);
	if (rc == -1)
		SIPC_LOG(sc, IMGW_LOG_INFO, "%s: no next hop%s%s", name,
		    why ? ": " : "", why ? why : "");
	return rc == 1 ? 2 : rc;
}

/* URI `text`: 1 numeric (with *ta); 0 a host name, lower case in
 * nh->host with nh->proto and nh->port (0: none given); -1 unusable. */
static int
sip_sub_uri_host(const char *text, struct sip_taddr *ta, struct sip_nexthop *nh)
{
	osip_uri_t *u = NULL;
	int rc = -1;
	size_t i;

	if (osip_uri_init(&u) != 0)
		return -1;
	memset(nh, 0, sizeof(*nh));
	if (osip_uri_parse(u, text) == 0 &&
	    (rc = sip_net_uri(u, ta, &nh->port)) == 0) {
		for (i = 0; u->host[i] != '\0' && i + 1 < sizeof(nh->host); i++)
			nh->host[i] = (char)tolower((unsigned char)u->host[i]);
		nh->host[i] = '\0';
		nh->proto = ta->proto;
	}
	osip_uri_free(u);
	return rc;
}

/* The hops of a URI's host name: with a port its A/AAAA, else RFC 3263. */
static int
sip_sub_uri_hops(struct sipc *sc, const struct sip_nexthop *nh,
    struct sip_pend *p, struct sip_hops **hops)
{
	return sip_sub_hops(sc, nh->host, nh->port > 0 ? nh : NULL, p, hops);
}

/*
 * Where requests of s go (RFC 3261 8.1.2, 12.2.1.1):
 *   with a route set, its first URI: numeric as it says (over TLS its
 *     certificate must name the SIP party's domain, as for a static
 *     route), a name by its static route or DNS;
 *   else the static route of the SIP party's domain (private peering:
 *     the partner's proxy takes its users' dialogs too);
 *   else the remote target (Contact): numeric as it says, a name by DNS;
 *   else (our first SUBSCRIBE) the party's domain by DNS (RFC 3263).
 * 1 with *ta, 2 with *hops, 0 when a lookup runs, -1.
 */
static int
sip_sub_dest(struct sip_sub *s, struct sip_pend *p, struct sip_taddr *ta,
    struct sip_hops **hops)
{
	const char *party = s->dir == SIP_SUB_OUT ? s->presentity : s->watcher;
	struct imgw_addr_parts ap;
	struct sip_nexthop nh;
	char dom[1024], *first;
	int rc;

	dom[0] = '\0';
	if (imgw_addr_split(party, &ap) == 0 && ap.domain_len < sizeof(dom)) {
		memcpy(dom, ap.domain, ap.domain_len);
		dom[ap.domain_len] = '\0';
	}
	if (s->routes != NULL) {
		if ((first = strndup(s->routes, strcspn(s->routes, "\n"))) == NULL)
			return -1;
		rc = sip_sub_uri_host(first, ta, &nh);
		free(first);
		if (rc == 1)
			snprintf(ta->name, sizeof(ta->name), "%s", dom); /* RFC 5922 */
		/* a route's host name may have a static route of its own */
		return rc != 0 ? rc : sip_opt_route(s->sc, nh.host) != NULL ?
		    sip_sub_hops(s->sc, nh.host, NULL, p, hops) :
		    sip_sub_uri_hops(s->sc, &nh, p, hops);
	}
	if (dom[0] != '\0' && sip_opt_route(s->sc, dom) != NULL)
		return sip_sub_hops(s->sc, dom, NULL, p, hops);
	if (s->target != NULL) {
		rc = sip_sub_uri_host(s->target, ta, &nh);
		if (rc == 1)
			snprintf(ta->name, sizeof(ta->name), "%s", dom);
		return rc == 0 ? sip_sub_uri_hops(s->sc, &nh, p, hops) : rc;
	}
	return dom[0] != '\0' ? sip_sub_hops(s->sc, dom, NULL, p, hops) : -1;
}

/*
 * Send `method` (SUBSCRIBE or NOTIFY) in s's dialog (a new one when s has
 * no Call-ID yet), along its route set.  expires >= 0 adds Expires;
 * substate adds Subscription-State; ctype/body a body.  The answer goes
 * to cb with a pend naming s by id (also 503 when a route's DNS lookup
 * fails later).  0, or -1.
 */
int
sip_sub_send(struct sip_sub *s, const char *method, int expires,
    const char *substate, const char *ctype, const char *body,
    enum imgw_kind kind, sip_response_cb cb)
{
	struct sipc *sc = s->sc;
	struct sip_hops *hops = NULL;
	struct sip_taddr ta;
	struct sip_pend *p;
	osip_message_t *m;
	char tag[24], callid[SIP_HOST_MAX + 32], num[16];

	if (s->callid == NULL) {
		sip_msg_tag(tag, sizeof(tag));
		snprintf(callid, sizeof(callid), "%s@%s", tag, sc->adv_host);
		if ((s->callid = strdup(callid)) == NULL)
			return -1;
	}
	if ((m = sip_msg_request(method, s->target ? s->target : s->ruri, s->luri,
	    s->ltag, s->ruri, s->callid, ++s->lcseq)) == NULL)
		return -1;
	if (s->rtag != NULL)
		osip_to_set_tag(m->to, osip_strdup(s->rtag));
	if (sip_msg_route(m, s->routes) == -1)
		goto fail;
	osip_message_set_header(m, "Event", "presence");
	if (expires >= 0) {
		snprintf(num, sizeof(num), "%d", expires);
		osip_message_set_header(m, "Expires", num);
	}
	if (strcmp(method, "SUBSCRIBE") == 0)
		osip_message_set_header(m, "Accept", "application/pidf+xml");
	if (substate != NULL)
		osip_message_set_header(m, "Subscription-State", substate);
	if (body != NULL && sip_msg_set_body(m, ctype, body, strlen(body)) == -1)
		goto fail;
	if ((p = sip_pend_new(sc, kind, s->watcher, s->presentity, NULL, NULL)) == NULL)
		goto fail;
	p->sub_id = s->id;
	p->expires = expires;
	p->cb = cb;
	switch (sip_sub_dest(s, p, &ta, &hops)) {
	case 1:
	case 2:
		if (sip_sub_go(p, m, hops ? NULL : &ta, hops) == -1) {
			sip_pend_free(p);
			return -1;
		}
		return 0;
	case 0:
		p->req = m;	/* sip_sub_resolved sends or fails it */
		return 0;
	default:
		SIPC_LOG(sc, IMGW_LOG_INFO, "%s for %s: no route", method,
		    s->dir == SIP_SUB_OUT ? s->presentity : s->watcher);
		sip_pend_free(p);
		break;
	}
fail:
	osip_message_free(m);
	return -1;
}

/* (Re)arm s's one timer. */
int
sip_sub_timer(struct sip_sub *s, unsigned ms, imgw_timer_cb cb)
{
	if (s->timer != NULL) {
		s->sc->host->timer_del(s->timer);
		s->timer = NULL;
	}
	s->timer = s->sc->host->timer_add(s->sc->inst, ms, cb, s);
	return s->timer ? 0 : -1;
}
