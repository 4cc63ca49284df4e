/*
 * RFC 3263 4.1/4.2 resolution of a SIP domain to its next hops, for
 * requests to domains without a static route: NAPTR of the domain first
 * (records with flag "s" for SIPS+D2T (when this stack can check a TLS
 * server: a client context with a CA, or verification off), SIP+D2T and
 * SIP+D2U, by order then preference, their replacements asked as SRV);
 * without usable NAPTR records, SRV _sips._tcp (same condition),
 * _sip._tcp and _sip._udp of the domain, asked at once.  The first of
 * these (NAPTR order, else that order of preference: reliable transports
 * first, RFC 3261 18.1.1) that has records gives the targets (RFC 2782
 * order), then their A/AAAA; without SRV records the domain's own A/AAAA
 * on 5060 over UDP (4.2).  The lookups are plugins/common/dns.c's,
 * asynchronous on the loop.
 *
 * Static routes (sip_stack_route) go the same way when a next hop is a
 * host name: A/AAAA of each name in turn (cfg.route_dns), each address
 * with the hop's transport and port, in the route's order.
 *
 * The answer is a list of addresses (struct sip_hops, hops.c), the first
 * one used and the next ones tried when it fails (4.3, hops.c).  Answers
 * are kept per domain or route for their shortest TTL (at least a second,
 * at most an hour; failures 30 s; routes with numeric hosts only, for
 * good) so a message does not cost a lookup; requests that arrive while a
 * lookup runs wait on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipstack-internal.h"

#define SIP_RES_MAX		1024	/* domains and routes kept */
#define SIP_RES_FAIL_MS		30000
#define SIP_RES_TTL_MAX_S	3600

struct sip_rwait {
	sip_hops_cb cb;
	void *arg;
	struct sip_rwait *next;
};

struct sip_rentry {
	struct sip_stack *st;
	char *key;			/* the domain, or "route " and the hops */
	int state;			/* 0: looking up, 1: found, 2: failed */
	struct sip_hops *hops;		/* found (or being filled, for a route) */
	char why[400];
	uint64_t expires_ms;
	struct plug_dns *dns;
	struct sip_rwait *waiters;
	int protos[PLUG_DNS_SERVICES_MAX];
	/* a route: its next hops, the one being looked up, the shortest TTL */
	struct sip_nexthop *nh;
	size_t nnh, cur;
	unsigned ttl;
	struct sip_rentry *next;
};

static void
sip_res_entry_free(struct sip_rentry *e)
{
	plug_dns_cancel(e->dns);
	sip_hops_unref(e->hops);
	free(e->nh);
	free(e->key);
	free(e);
}

static void
sip_res_unlink(struct sip_rentry *e)
{
	struct sip_rentry **pp;

	for (pp = &e->st->res; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			e->st->nres--;
			break;
		}
}

/* Run e's waiters with its answer (they may ask again: e stays linked). */
static void
sip_res_wake(struct sip_rentry *e)
{
	struct sip_rwait *w, *next;

	w = e->waiters;
	e->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->arg, e->state == 1 ? e->hops : NULL, e->state == 1 ? NULL : e->why);
		free(w);
	}
}

/* e's lookup ended: found when its list has addresses, else failed with
 * `why`; waiters hear it. */
static void
sip_res_done(struct sip_rentry *e, const char *why)
{
	unsigned ttl = e->ttl < SIP_RES_TTL_MAX_S ? e->ttl : SIP_RES_TTL_MAX_S;
	char text[100], ttls[32];
	int port = 0;

	if (e->hops != NULL && sip_hops_count(e->hops) > 0) {
		const struct sip_taddr *ta = sip_hops_get(e->hops, 0);

		e->state = 1;
		e->expires_ms = e->ttl == ~0u ? UINT64_MAX :
		    sip_now_ms() + 1000u * (ttl > 0 ? ttl : 1);
		if (e->nh == NULL)
			goto wake;	/* a domain: sip_res_dns_cb said it */
		if (sip_net_ntop((const struct sockaddr *)&ta->ss, text, sizeof(text),
		    &port) == -1)
			snprintf(text, sizeof(text), "?");
		snprintf(ttls, sizeof(ttls), e->ttl == ~0u ? "numeric" : "ttl %u", ttl);
		SIP_LOG(e->st, IMGW_LOG_INFO, "%s: %zu address%s, first %s %s:%d, %s",
		    e->key, sip_hops_count(e->hops),
		    sip_hops_count(e->hops) == 1 ? "" : "es", sip_proto_name(ta->proto),
		    text, port, ttls);
	} else {
		e->state = 2;
		snprintf(e->why, sizeof(e->why), "%s", why ? why : "no address");
		e->expires_ms = sip_now_ms() + SIP_RES_FAIL_MS;
		SIP_LOG(e->st, IMGW_LOG_INFO, "%s%s: %s", strchr(e->key, ' ') ? "" :
		    "RFC 3263: ", e->key, e->why);
	}
wake:
	sip_res_wake(e);
}

static void
sip_res_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n, const char *why)
{
	struct sip_rentry *e = arg;
	struct sip_stack *st = e->st;
	struct sip_taddr ta;
	int i;

	e->dns = NULL;
	e->ttl = ~0u;
	if (n > 0 && (e->hops = sip_hops_new((size_t)n)) == NULL)
		why = "out of memory";
	for (i = 0; e->hops != NULL && i < n; i++) {
		memset(&ta, 0, sizeof(ta));
		ta.proto = addrs[i].service >= 0 ? e->protos[addrs[i].service] :
		    SIP_PROTO_UDP;
		memcpy(&ta.ss, &addrs[i].sa, addrs[i].len);
		ta.len = addrs[i].len;
		(void)sip_hops_add(e->hops, &ta);
		if (addrs[i].ttl < e->ttl)
			e->ttl = addrs[i].ttl;
	}
	if (n > 0)
		SIP_LOG(st, IMGW_LOG_INFO, "RFC 3263: %s -> %s %s (%d address%s, ttl %u)",
		    e->key, sip_proto_name(addrs[0].service >= 0 ?
		    e->protos[addrs[0].service] : SIP_PROTO_UDP), addrs[0].text, n,
		    n == 1 ? "" : "es", e->ttl < SIP_RES_TTL_MAX_S ? e->ttl :
		    SIP_RES_TTL_MAX_S);
	sip_res_done(e, why);
}

/* Make room for one more entry: drop expired answers, then any answer. */
static int
sip_res_room(struct sip_stack *st)
{
	struct sip_rentry *e, *next;
	uint64_t now = sip_now_ms();
	int pass;

	for (pass = 0; pass < 2; pass++)
		for (e = st->res; e != NULL && st->nres >= SIP_RES_MAX; e = next) {
			next = e->next;
			if (e->state != 0 && (pass == 1 || e->expires_ms <= now)) {
				sip_res_unlink(e);
				sip_res_entry_free(e);
			}
		}
	return st->nres < SIP_RES_MAX ? 0 : -1;
}

/* The live entry for key (an expired one is dropped), else NULL. */
static struct sip_rentry *
sip_res_find(struct sip_stack *st, const char *key)
{
	struct sip_rentry *e;

	for (e = st->res; e != NULL; e = e->next)
		if (strcasecmp(e->key, key) == 0)
			break;
	if (e != NULL && e->state != 0 && e->expires_ms <= sip_now_ms()) {
		sip_res_unlink(e);
		sip_res_entry_free(e);
		e = NULL;
	}
	return e;
}

/* A new entry for key, linked; NULL and *why_r when there is no room. */
static struct sip_rentry *
sip_res_new(struct sip_stack *st, const char *key, const char **why_r)
{
	struct sip_rentry *e;

	if (sip_res_room(st) == -1 || (e = calloc(1, sizeof(*e))) == NULL) {
		*why_r = "too many DNS lookups at once";
		return NULL;
	}
	if ((e->key = strdup(key)) == NULL) {
		free(e);
		*why_r = "out of memory";
		return NULL;
	}
	e->st = st;
	e->next = st->res;
	st->res = e;
	st->nres++;
	return e;
}

/* What e says now: 1 with *hops_r, -1 with *why_r, or 0 with cb queued. */
static int
sip_res_answer(struct sip_rentry *e, struct sip_hops **hops_r, sip_hops_cb cb,
    void *arg, const char **why_r)
{
	struct sip_rwait *w, **pw;

	if (e->state == 1) {
		*hops_r = e->hops;
		return 1;
	}
	if (e->state == 2) {
		*why_r = e->why;
		return -1;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		*why_r = "out of memory";
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	for (pw = &e->waiters; *pw != NULL; pw = &(*pw)->next)
		;
	*pw = w;		/* in order: messages to one domain keep theirs */
	return 0;
}

int
sip_stack_resolve_hops(struct sip_stack *st, const char *domain, struct sip_hops **hops_r,
    sip_hops_cb cb, void *arg, const char **why_r)
{
	struct plug_dns_req req = {
		.host = st->cfg.host,
		.inst = st->cfg.inst,
		.server = st->cfg.dns,
		.domain = domain,
		.default_port = 5060,
		.what = "SIP",
	};
	struct sip_rentry *e;

	*why_r = NULL;
	if (st->cfg.dns == NULL) {
		*why_r = "no route for the domain (and no DNS resolution)";
		return -1;
	}
	if (st->stopping) {
		*why_r = "the SIP stack is stopping";
		return -1;
	}
	if (strlen(domain) > PLUG_DNS_NAME_MAX || strchr(domain, ' ') != NULL) {
		*why_r = "not a usable domain name";
		return -1;
	}
	if ((e = sip_res_find(st, domain)) == NULL) {
		if ((e = sip_res_new(st, domain, why_r)) == NULL)
			return -1;
		/* TLS only when a server's certificate can be checked */
		if (st->tls_cli != NULL && (st->cfg.tls_ca != NULL || !st->cfg.tls_verify)) {
			e->protos[req.nservices] = SIP_PROTO_TLS;
			req.naptr[req.nservices] = "SIPS+D2T";
			req.services[req.nservices++] = "_sips._tcp";
		}
		e->protos[req.nservices] = SIP_PROTO_TCP;
		req.naptr[req.nservices] = "SIP+D2T";
		req.services[req.nservices++] = "_sip._tcp";
		e->protos[req.nservices] = SIP_PROTO_UDP;
		req.naptr[req.nservices] = "SIP+D2U";
		req.services[req.nservices++] = "_sip._udp";
		if ((e->dns = plug_dns_start(&req, sip_res_dns_cb, e)) == NULL) {
			sip_res_unlink(e);
			sip_res_entry_free(e);
			*why_r = "cannot start a DNS lookup";
			return -1;
		}
		SIP_COUNT(st, "sip-dns-lookups");
	}
	return sip_res_answer(e, hops_r, cb, arg, why_r);
}

/* ---- the first address only ---------------------------------------------------- */

struct sip_res_one {
	sip_resolve_cb cb;
	void *arg;
	char name[SIP_HOST_MAX];
};

/* hops[0] with the domain as its name. */
static void
sip_res_first(const struct sip_hops *hops, const char *name, struct sip_taddr *ta)
{
	*ta = *sip_hops_get(hops, 0);
	snprintf(ta->name, sizeof(ta->name), "%s", name);
}

static void
sip_res_one_cb(void *arg, struct sip_hops *hops, const char *why)
{
	struct sip_res_one *o = arg;
	struct sip_taddr ta;

	if (hops != NULL)
		sip_res_first(hops, o->name, &ta);
	o->cb(o->arg, hops != NULL ? &ta : NULL, why);
	free(o);
}

int
sip_stack_resolve(struct sip_stack *st, const char *domain, struct sip_taddr *ta_r,
    sip_resolve_cb cb, void *arg, const char **why_r)
{
	struct sip_hops *hops = NULL;
	struct sip_res_one *o;
	int rc;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		*why_r = "out of memory";
		return -1;
	}
	o->cb = cb;
	o->arg = arg;
	snprintf(o->name, sizeof(o->name), "%s", domain);
	if ((rc = sip_stack_resolve_hops(st, domain, &hops, sip_res_one_cb, o, why_r)) != 0)
		free(o);
	if (rc == 1)
		sip_res_first(hops, domain, ta_r);
	return rc;
}

/* ---- static routes ------------------------------------------------------------ */

static void sip_res_route_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n,
    const char *why);

/* Take the route's numeric hops from e->cur on, up to the next host name,
 * whose lookup starts.  1 when the route is done (state set, waiters
 * run), else 0. */
static int
sip_res_route_next(struct sip_rentry *e, const char *why)
{
	struct sip_stack *st = e->st;
	const struct plug_dns_server *srv = st->cfg.route_dns ? st->cfg.route_dns
	    : st->cfg.dns;
	struct plug_dns_req req = {
		.host = st->cfg.host,
		.inst = st->cfg.inst,
		.server = srv,
		.what = "SIP",
	};
	const struct sip_nexthop *nh;

	for (; e->cur < e->nnh; e->cur++) {
		nh = &e->nh[e->cur];
		if (nh->ta.len > 0) {
			(void)sip_hops_add(e->hops, &nh->ta);
			continue;
		}
		if (srv == NULL) {
			why = "no DNS server for the route's host names";
			continue;
		}
		req.domain = nh->host;
		req.default_port = (unsigned short)nh->port;
		if ((e->dns = plug_dns_start(&req, sip_res_route_dns_cb, e)) != NULL) {
			SIP_COUNT(st, "sip-dns-lookups");
			return 0;
		}
		why = "cannot start a DNS lookup";
	}
	sip_res_done(e, why);
	return 1;
}

static void
sip_res_route_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n, const char *why)
{
	struct sip_rentry *e = arg;
	const struct sip_nexthop *nh = &e->nh[e->cur];
	struct sip_taddr ta;
	int i;

	e->dns = NULL;
	for (i = 0; i < n; i++) {
		memset(&ta, 0, sizeof(ta));
		ta.proto = nh->proto;
		memcpy(&ta.ss, &addrs[i].sa, addrs[i].len);
		ta.len = addrs[i].len;
		(void)sip_hops_add(e->hops, &ta);
		if (addrs[i].ttl < e->ttl)
			e->ttl = addrs[i].ttl;
	}
	if (n == 0)
		SIP_LOG(e->st, IMGW_LOG_INFO, "%s: %s: %s", e->key, nh->host, why);
	e->cur++;
	(void)sip_res_route_next(e, why);
}

int
sip_stack_route(struct sip_stack *st, const struct sip_nexthop *nh, size_t n,
    struct sip_hops **hops_r, sip_hops_cb cb, void *arg, const char **why_r)
{
	struct sip_rentry *e;
	char key[SIP_ROUTE_HOPS * (SIP_HOST_MAX + 16) + 8];
	size_t i, off;

	*why_r = NULL;
	if (st->stopping) {
		*why_r = "the SIP stack is stopping";
		return -1;
	}
	if (n == 0 || n > SIP_ROUTE_HOPS) {
		*why_r = "no next hop in the route";
		return -1;
	}
	off = (size_t)snprintf(key, sizeof(key), "route");
	for (i = 0; i < n && off < sizeof(key); i++)
		off += (size_t)snprintf(key + off, sizeof(key) - off, "%s%s:%s%s%s:%d",
		    i ? "," : " ", nh[i].proto == SIP_PROTO_TLS ? "tls" :
		    nh[i].proto == SIP_PROTO_TCP ? "tcp" : "udp",
		    strchr(nh[i].host, ':') ? "[" : "", nh[i].host,
		    strchr(nh[i].host, ':') ? "]" : "", nh[i].port);
	if ((e = sip_res_find(st, key)) == NULL) {
		if ((e = sip_res_new(st, key, why_r)) == NULL)
			return -1;
		e->ttl = ~0u;		/* numeric hops only: for good */
		if ((e->nh = malloc(n * sizeof(*nh))) == NULL ||
		    (e->hops = sip_hops_new(SIP_HOPS_MAX)) == NULL) {
			sip_res_unlink(e);
			sip_res_entry_free(e);
			*why_r = "out of memory";
			return -1;
		}
		memcpy(e->nh, nh, n * sizeof(*nh));
		e->nnh = n;
		(void)sip_res_route_next(e, NULL);
	}
	return sip_res_answer(e, hops_r, cb, arg, why_r);
}

/* Stop: running lookups end; their waiters hear why. */
void
sip_res_stop(struct sip_stack *st)
{
	struct sip_rentry *e;

	for (e = st->res; e != NULL; e = e->next) {
		if (e->state != 0)
			continue;
		plug_dns_cancel(e->dns);
		e->dns = NULL;
		e->state = 2;
		e->expires_ms = 0;
		snprintf(e->why, sizeof(e->why), "the SIP stack stopped during the DNS "
		    "lookup");
		sip_res_wake(e);
	}
}

void
sip_res_free(struct sip_stack *st)
{
	struct sip_rentry *e;

	sip_res_stop(st);
	while ((e = st->res) != NULL) {
		st->res = e->next;
		sip_res_entry_free(e);
	}
	st->nres = 0;
}
