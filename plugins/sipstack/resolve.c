/*
 * RFC 3263 4.1/4.2 resolution of a SIP domain to a next hop, for requests
 * to domains without a static route: SRV _sips._tcp (when this stack can
 * do TLS: a client context exists), _sip._tcp and _sip._udp of the domain,
 * asked at once, the first of them (in that order of preference: reliable
 * transports first, RFC 3261 18.1.1) that has records giving the targets
 * (RFC 2782 order), then their A/AAAA; without SRV records the domain's
 * own A/AAAA on 5060 over UDP (4.2).  The lookups are
 * plugins/common/dns.c's, asynchronous on the loop.
 *
 * The first address is the next hop.  Answers are kept per domain for
 * their TTL (at least a second; failures 30 s) so a message does not cost
 * a lookup; requests that arrive while a lookup runs wait on it.  Not
 * done: NAPTR (4.1 makes it optional when SRV is asked for every
 * transport), fail-over to the next address of the list after a
 * transport error or a timeout (4.3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipstack-internal.h"

#define SIP_RES_MAX		1024	/* domains kept */
#define SIP_RES_FAIL_MS		30000
#define SIP_RES_TTL_MAX_S	3600

struct sip_rwait {
	sip_resolve_cb cb;
	void *arg;
	struct sip_rwait *next;
};

struct sip_rentry {
	struct sip_stack *st;
	char domain[PLUG_DNS_NAME_MAX + 1];
	int state;			/* 0: looking up, 1: found, 2: failed */
	struct sip_taddr ta;
	char why[400];
	uint64_t expires_ms;
	struct plug_dns *dns;
	struct sip_rwait *waiters;
	int protos[PLUG_DNS_SERVICES_MAX];
	struct sip_rentry *next;
};

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
		w->cb(w->arg, e->state == 1 ? &e->ta : NULL, e->state == 1 ? NULL : e->why);
		free(w);
	}
}

static void
sip_res_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n, const char *why)
{
	struct sip_rentry *e = arg;
	struct sip_stack *st = e->st;
	unsigned ttl;

	e->dns = NULL;
	if (n == 0) {
		e->state = 2;
		snprintf(e->why, sizeof(e->why), "%s", why ? why : "no address");
		e->expires_ms = sip_now_ms() + SIP_RES_FAIL_MS;
		SIP_LOG(st, IMGW_LOG_INFO, "RFC 3263: %s: %s", e->domain, e->why);
	} else {
		e->state = 1;
		memset(&e->ta, 0, sizeof(e->ta));
		e->ta.proto = addrs[0].service >= 0 ? e->protos[addrs[0].service]
		    : SIP_PROTO_UDP;
		memcpy(&e->ta.ss, &addrs[0].sa, addrs[0].len);
		e->ta.len = addrs[0].len;
		snprintf(e->ta.name, sizeof(e->ta.name), "%s", e->domain);
		ttl = addrs[0].ttl < SIP_RES_TTL_MAX_S ? addrs[0].ttl : SIP_RES_TTL_MAX_S;
		e->expires_ms = sip_now_ms() + 1000u * (ttl > 0 ? ttl : 1);
		SIP_LOG(st, IMGW_LOG_INFO, "RFC 3263: %s -> %s %s (%d address%s, ttl %u)",
		    e->domain, sip_proto_name(e->ta.proto), addrs[0].text, n,
		    n == 1 ? "" : "es", ttl);
	}
	sip_res_wake(e);
}

/* Make room for one more domain: drop expired answers, then any answer. */
static int
sip_res_room(struct sip_stack *st)
{
	struct sip_rentry *e, *next;
	uint64_t now = sip_now_ms();

	for (e = st->res; e != NULL && st->nres >= SIP_RES_MAX; e = next) {
		next = e->next;
		if (e->state != 0 && e->expires_ms <= now) {
			sip_res_unlink(e);
			free(e);
		}
	}
	for (e = st->res; e != NULL && st->nres >= SIP_RES_MAX; e = next) {
		next = e->next;
		if (e->state != 0) {
			sip_res_unlink(e);
			free(e);
		}
	}
	return st->nres < SIP_RES_MAX ? 0 : -1;
}

int
sip_stack_resolve(struct sip_stack *st, const char *domain, struct sip_taddr *ta_r,
    sip_resolve_cb cb, void *arg, const char **why_r)
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
	struct sip_rwait *w, **pw;

	*why_r = NULL;
	if (st->cfg.dns == NULL) {
		*why_r = "no route for the domain (and no DNS resolution)";
		return -1;
	}
	if (st->stopping) {
		*why_r = "the SIP stack is stopping";
		return -1;
	}
	if (strlen(domain) > PLUG_DNS_NAME_MAX || strlen(domain) >= sizeof(e->ta.name)) {
		*why_r = "domain name too long";
		return -1;
	}
	for (e = st->res; e != NULL; e = e->next)
		if (strcasecmp(e->domain, domain) == 0)
			break;
	if (e != NULL && e->state != 0 && e->expires_ms <= sip_now_ms()) {
		sip_res_unlink(e);
		free(e);
		e = NULL;
	}
	if (e != NULL && e->state == 1) {
		*ta_r = e->ta;
		return 1;
	}
	if (e != NULL && e->state == 2) {
		*why_r = e->why;
		return -1;
	}
	if (e == NULL) {
		if (sip_res_room(st) == -1 || (e = calloc(1, sizeof(*e))) == NULL) {
			*why_r = "too many DNS lookups at once";
			return -1;
		}
		e->st = st;
		memcpy(e->domain, domain, strlen(domain) + 1);
		/* TLS only when a server's certificate can be checked */
		if (st->tls_cli != NULL && (st->cfg.tls_ca != NULL || !st->cfg.tls_verify)) {
			e->protos[req.nservices] = SIP_PROTO_TLS;
			req.services[req.nservices++] = "_sips._tcp";
		}
		e->protos[req.nservices] = SIP_PROTO_TCP;
		req.services[req.nservices++] = "_sip._tcp";
		e->protos[req.nservices] = SIP_PROTO_UDP;
		req.services[req.nservices++] = "_sip._udp";
		if ((e->dns = plug_dns_start(&req, sip_res_dns_cb, e)) == NULL) {
			free(e);
			*why_r = "cannot start a DNS lookup";
			return -1;
		}
		e->next = st->res;
		st->res = e;
		st->nres++;
		SIP_COUNT(st, "sip-dns-lookups");
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
		free(e);
	}
	st->nres = 0;
}
