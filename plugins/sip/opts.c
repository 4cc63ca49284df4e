/*
 * The connector's own option syntax, checked in init (no I/O, no name
 * resolution):
 *
 *   listen    = udp:HOST:PORT tcp:HOST:PORT tls:HOST:PORT ...  (tls: needs
 *               tls-cert and tls-key)
 *   advertise = HOST[:PORT]   what Via and Contact carry; default: the
 *               first listener's address (then it must not be a wildcard)
 *               and port
 *   route     = DOMAIN=HOP[,HOP...] ...   static next hops per domain of
 *               the `to` address, HOP udp|tcp|tls:HOST:PORT with HOST
 *               numeric or a DNS name (A/AAAA when used); tried in order,
 *               the next when one fails (sipstack/hops.c).  DOMAIN "*" is
 *               the default route.  Other domains are resolved as RFC 3263
 *               says (out.c, sipstack/resolve.c) unless dns = no
 *   dns-server = HOST[:PORT]   numeric; default: /etc/resolv.conf's first
 *   trusted   = NET[/BITS] ...   peers whose requests are taken; the
 *               numeric hosts of `route` are always trusted (host names
 *               are not: what DNS answers is not a statement of trust);
 *               everyone else gets 403
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

/* The next space-separated word of *sp into buf; 0, or -1 at the end. */
static int
sip_opt_word(const char **sp, char *buf, size_t len, int *toolong_r)
{
	const char *s = *sp, *e;

	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (*s == '\0')
		return -1;
	for (e = s; *e != '\0' && *e != ' ' && *e != '\t' && *e != ','; e++)
		;
	*sp = e;
	if ((size_t)(e - s) >= len) {
		*toolong_r = 1;
		return 0;
	}
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	*toolong_r = 0;
	return 0;
}

static int
sip_opt_listen(struct sipc *sc, const char *spec)
{
	char w[300];
	const char *why, *s = spec;
	int toolong;

	while (sip_opt_word(&s, w, sizeof(w), &toolong) == 0) {
		if (toolong || sip_net_taddr(w, &sc->cfg.listen[sc->cfg.nlisten],
		    &why) == -1) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "listen: '%s': %s", w,
			    toolong ? "too long" : why);
			return -1;
		}
		if (sc->cfg.listen[sc->cfg.nlisten].proto == SIP_PROTO_TLS &&
		    (sc->cfg.tls_cert == NULL || sc->cfg.tls_key == NULL)) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "listen: '%s': a tls: listener "
			    "needs tls-cert and tls-key", w);
			return -1;
		}
		if (++sc->cfg.nlisten == SIP_MAX_LISTEN && *s != '\0') {
			SIPC_LOG(sc, IMGW_LOG_ERR, "listen: at most %d addresses",
			    SIP_MAX_LISTEN);
			return -1;
		}
	}
	if (sc->cfg.nlisten == 0) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "listen: no address (want udp:HOST:PORT "
		    "and/or tcp:HOST:PORT)");
		return -1;
	}
	return 0;
}

static int
sip_opt_advertise(struct sipc *sc, const char *spec)
{
	const struct sip_taddr *first = &sc->cfg.listen[0];
	char host[INET6_ADDRSTRLEN];
	const char *colon;
	size_t n;
	int port = 0;

	if (spec == NULL || spec[0] == '\0') {
		if (sip_net_ntop((const struct sockaddr *)&first->ss, host,
		    sizeof(host), &port) == -1 || strcmp(host, "0.0.0.0") == 0 ||
		    strcmp(host, "::") == 0) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "advertise: must be set when the "
			    "first listen address is a wildcard");
			return -1;
		}
		snprintf(sc->adv_host, sizeof(sc->adv_host), "%s", host);
		sc->cfg.adv_port = port;	/* 0: the port bound */
		return 0;
	}
	if (spec[0] == '[') {
		colon = strchr(spec, ']');
		if (colon == NULL)
			goto bad;
		n = (size_t)(colon - spec - 1);
		spec++;
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = strchr(spec, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			goto bad;	/* IPv6 wants brackets */
		n = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (n == 0 || n >= sizeof(sc->adv_host))
		goto bad;
	memcpy(sc->adv_host, spec, n);
	sc->adv_host[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)sc->adv_host[i]) &&
		    strchr(".-:", sc->adv_host[i]) == NULL)
			goto bad;
	if (colon != NULL) {
		char *end;
		long v = strtol(colon + 1, &end, 10);

		if (*end != '\0' || v < 1 || v > 65535)
			goto bad;
		sc->cfg.adv_port = (int)v;
	} else {
		sc->cfg.adv_port = 0;
		(void)sip_net_ntop((const struct sockaddr *)&first->ss, host,
		    sizeof(host), &sc->cfg.adv_port);
	}
	return 0;
bad:
	SIPC_LOG(sc, IMGW_LOG_ERR, "advertise: want HOST, HOST:PORT or [IPV6]:PORT");
	return -1;
}

/* The route's host as a trusted host network. */
static void
sip_opt_trust_route(struct sipc *sc, const struct sip_taddr *ta)
{
	struct sip_net *n = &sc->trusted[sc->ntrusted];

	memset(n, 0, sizeof(*n));
	if (ta->ss.ss_family == AF_INET) {
		n->family = AF_INET;
		memcpy(n->addr, &((const struct sockaddr_in *)&ta->ss)->sin_addr, 4);
		n->bits = 32;
	} else {
		n->family = AF_INET6;
		memcpy(n->addr, &((const struct sockaddr_in6 *)&ta->ss)->sin6_addr, 16);
		n->bits = 128;
	}
	sc->ntrusted++;
}

/* Append hop spec `h` to route r (domain `dom` for messages). */
static int
sip_opt_route_hop(struct sipc *sc, struct sip_route *r, const char *dom, const char *h)
{
	struct sip_nexthop *nh;
	const char *why;

	if (r->nhops == SIP_ROUTE_HOPS) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "route: %s: at most %d next hops", dom,
		    SIP_ROUTE_HOPS);
		return -1;
	}
	nh = &r->hops[r->nhops];
	if (sip_net_nexthop(h, nh, &why) == -1) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "route: %s: '%s': %s", dom, h, why);
		return -1;
	}
	if (nh->proto == SIP_PROTO_TLS && sc->cfg.tls_verify && sc->cfg.tls_ca == NULL) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "route: %s: a tls: route needs "
		    "tls-ca to verify the peer (or tls-verify = no)", dom);
		return -1;
	}
	if (r->nhops++ == 0)
		r->ta = nh->ta;		/* keep-alive and dialogs use the first */
	if (nh->ta.len > 0)
		sip_opt_trust_route(sc, &nh->ta);
	else
		SIPC_LOG(sc, IMGW_LOG_NOTICE, "route: %s: %s is a host name: "
		    "requests from the addresses DNS gives for it are not trusted "
		    "by that (list them in trusted, or use tls-names)", dom, nh->host);
	return 0;
}

/*
 * DOMAIN=HOP[,HOP...] words.  Words are split at spaces and commas, so a
 * word without '=' that names a transport is one more next hop of the
 * route before it.
 */
static int
sip_opt_routes(struct sipc *sc, const char *spec)
{
	char w[600], *eq, *p;
	const char *s = spec;
	struct sip_route *r = NULL;
	size_t i;
	int toolong;

	while (sip_opt_word(&s, w, sizeof(w), &toolong) == 0) {
		eq = toolong ? NULL : strchr(w, '=');
		if (!toolong && eq == NULL && r != NULL && (strncmp(w, "udp:", 4) == 0 ||
		    strncmp(w, "tcp:", 4) == 0 || strncmp(w, "tls:", 4) == 0)) {
			if (sip_opt_route_hop(sc, r, r->domain, w) == -1)
				return -1;
			continue;
		}
		if (eq == NULL || eq == w) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "route: '%s': want DOMAIN=udp|tcp|tls:"
			    "HOST:PORT[,udp|tcp|tls:HOST:PORT...]", toolong ? "(too long)" : w);
			return -1;
		}
		if (sc->nroutes == SIP_MAX_ROUTES) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "route: at most %d routes",
			    SIP_MAX_ROUTES);
			return -1;
		}
		*eq = '\0';
		for (p = w; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		for (i = 0; i < sc->nroutes; i++)
			if (strcmp(sc->routes[i].domain, w) == 0) {
				SIPC_LOG(sc, IMGW_LOG_ERR, "route: %s: given twice (list its "
				    "next hops in one DOMAIN=HOP,HOP)", w);
				return -1;
			}
		r = &sc->routes[sc->nroutes];
		memset(r, 0, sizeof(*r));
		if ((r->domain = strdup(w)) == NULL ||
		    (r->hops = calloc(SIP_ROUTE_HOPS, sizeof(*r->hops))) == NULL) {
			free(r->domain);
			return -1;
		}
		sc->nroutes++;
		if (sip_opt_route_hop(sc, r, r->domain, eq + 1) == -1)
			return -1;
	}
	return 0;
}

static int
sip_opt_trusted(struct sipc *sc, const char *spec)
{
	const char *s = spec;
	char w[128];
	int toolong;

	while (sip_opt_word(&s, w, sizeof(w), &toolong) == 0) {
		if (sc->ntrusted == sizeof(sc->trusted) / sizeof(sc->trusted[0])) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "trusted: too many networks");
			return -1;
		}
		if (toolong || sip_net_cidr(w, &sc->trusted[sc->ntrusted]) == -1) {
			SIPC_LOG(sc, IMGW_LOG_ERR, "trusted: '%s': want ADDRESS or "
			    "ADDRESS/BITS (numeric IPv4 or IPv6)", w);
			return -1;
		}
		sc->ntrusted++;
	}
	return 0;
}

/* A file option: NULL when unset or empty. */
static const char *
sip_opt_file(struct sipc *sc, const char *name)
{
	const char *v = sc->host->option(sc->inst, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
sip_opt_parse(struct sipc *sc)
{
	const char *v;

	sc->cfg.tls_cert = sip_opt_file(sc, "tls-cert");
	sc->cfg.tls_key = sip_opt_file(sc, "tls-key");
	sc->cfg.tls_ca = sip_opt_file(sc, "tls-ca");
	sc->cfg.tls_verify = sc->host->option_bool(sc->inst, "tls-verify");
	sc->cfg.tls_client_cert = sc->host->option_bool(sc->inst, "tls-client-cert");
	sc->cfg.tls_names = sip_opt_file(sc, "tls-names");
	if ((sc->cfg.tls_cert == NULL) != (sc->cfg.tls_key == NULL)) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "tls-cert and tls-key go together");
		return -1;
	}
	if ((sc->cfg.tls_client_cert || sc->cfg.tls_names) && sc->cfg.tls_ca == NULL) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "tls-client-cert and tls-names need "
		    "tls-ca to verify client certificates");
		return -1;
	}
	if ((v = sc->host->option(sc->inst, "listen")) == NULL) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "listen is not set");
		return -1;
	}
	if (sip_opt_listen(sc, v) == -1 ||
	    sip_opt_advertise(sc, sc->host->option(sc->inst, "advertise")) == -1)
		return -1;
	if ((v = sc->host->option(sc->inst, "route")) != NULL &&
	    sip_opt_routes(sc, v) == -1)
		return -1;
	v = sip_opt_file(sc, "dns-server");
	if (plug_dns_server_init(&sc->dns, v) == -1) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "dns-server: '%s': want a numeric HOST[:PORT] "
		    "or [IPV6]:PORT", v);
		return -1;
	}
	sc->cfg.dns = sc->host->option_bool(sc->inst, "dns") ? &sc->dns : NULL;
	sc->cfg.route_dns = &sc->dns;	/* host names in routes, also with dns = no */
	if ((v = sc->host->option(sc->inst, "trusted")) != NULL &&
	    sip_opt_trusted(sc, v) == -1)
		return -1;
	if (sc->ntrusted == 0 && sc->cfg.tls_names == NULL)
		SIPC_LOG(sc, IMGW_LOG_WARNING, "no trusted peers, no routes and no "
		    "tls-names: every request will be refused with 403");
	return 0;
}

void
sip_opt_free(struct sipc *sc)
{
	size_t i;

	for (i = 0; i < sc->nroutes; i++) {
		free(sc->routes[i].domain);
		free(sc->routes[i].hops);
	}
	sc->nroutes = 0;
}

/* The route for `domain` (lower case), else the default route, else NULL. */
/*
 * The next hops for `name` (a domain or a host): its static route (names
 * in it through A/AAAA), else RFC 3263 when option dns is on.  As
 * sip_stack_route: 1 with *hops, 0 when a lookup runs (cb follows), -1
 * with *why_r (NULL: no route and dns = no).
 */
int
sip_opt_hops(struct sipc *sc, const char *name, struct sip_hops **hops,
    sip_hops_cb cb, void *arg, const char **why_r)
{
	const struct sip_route *r = sip_opt_route(sc, name);

	*why_r = NULL;
	if (r != NULL)
		return sip_stack_route(sc->st, r->hops, r->nhops, hops, cb, arg,
		    why_r);
	if (sc->cfg.dns != NULL)
		return sip_stack_resolve_hops(sc->st, name, hops, cb, arg, why_r);
	return -1;
}

const struct sip_route *
sip_opt_route(const struct sipc *sc, const char *domain)
{
	const struct sip_route *def = NULL;
	size_t i;

	for (i = 0; i < sc->nroutes; i++) {
		if (strcmp(sc->routes[i].domain, domain) == 0)
			return &sc->routes[i];
		if (strcmp(sc->routes[i].domain, "*") == 0)
			def = &sc->routes[i];
	}
	return def;
}
