/*
 * The asynchronous DNS client of dns.h.  One connected UDP socket per
 * lookup (a fresh random source port) with random query ids; answers are
 * matched by id and question, queries are sent again every second and
 * given up after three tries (an address lookup that times out just
 * contributes nothing; an SRV lookup that never answers ends the lookup
 * when no other service answered).  The server is the caller's (dns-server
 * option), else the first nameserver of /etc/resolv.conf, else 127.0.0.1.
 *
 * Phases: NAPTR of the domain when the caller gave NAPTR tags (RFC 3263
 * 4.1; a NAPTR query that is not answered after three tries counts as no
 * records), then SRV (the NAPTR replacements, else the caller's services
 * on the domain), then A/AAAA of the targets.
 *
 * Not done: TCP for truncated answers (the records of a truncated answer
 * that parse are used), DNSSEC, a cache (callers keep what they need).
 * libresolv's ns_* functions parse the messages; the RDATA of SRV and
 * NAPTR records is read here, checked against its RDLENGTH: answers are
 * untrusted input.
 *
 * Moved here from plugins/xmpp/dns.c, which resolved s2s peers only.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dns.h"

#define PD_TARGETS	8	/* SRV targets used per service */
#define PD_PER_TARGET	8	/* addresses kept per target */
#define PD_TRIES	3
#define PD_RETRY_MS	1000
#define PD_PKT		512
#define PD_TTL_MAX	86400u
#define PD_NAPTR_MAX	16	/* NAPTR records read from one answer */
#define PD_SVC_NAME	32	/* "_sips._tcp" and the like */
#define PD_NAPTR_TAG	16	/* "SIPS+D2T" and the like */

struct pd_query {
	uint16_t id;
	uint16_t type;			/* ns_t_naptr, ns_t_srv, ns_t_a, ns_t_aaaa */
	int target;			/* index into t[], -1 for NAPTR and SRV */
	int service;			/* SRV: index into srv[] */
	int done;
	size_t len;
	char name[NS_MAXDNAME];
	unsigned char pkt[PD_PKT];
};

struct pd_target {
	char host[NS_MAXDNAME];
	unsigned short port, prio, weight;
	unsigned ttl;
	int order;			/* place after sorting */
	struct plug_dns_addr a[PD_PER_TARGET];
	int na;
};

/* What one service's SRV answer said. */
struct pd_srv {
	char name[NS_MAXDNAME];		/* "_sip._udp.DOMAIN", or a NAPTR's replacement */
	int service;			/* index into the caller's services */
	unsigned ttl_max;		/* the NAPTR record's TTL, else PD_TTL_MAX */
	struct pd_target t[PD_TARGETS];
	int nt;
	int dot;			/* target "." seen */
	int rcode;			/* -1: no answer yet */
};

struct plug_dns {
	const struct imgw_host *host;
	struct imgw_instance *inst;
	const struct plug_dns_server *server;
	plug_dns_cb cb;
	void *arg;
	char domain[PLUG_DNS_NAME_MAX + 1];
	char what[64];
	unsigned short default_port;
	int fd;
	struct imgw_watch *watch;
	struct imgw_timer *timer;
	int tries;
	int phase;			/* -1: NAPTR, 0: SRV, 1: addresses */
	char svc[PLUG_DNS_SERVICES_MAX][PD_SVC_NAME];	/* the caller's services */
	char tag[PLUG_DNS_SERVICES_MAX][PD_NAPTR_TAG];	/* their NAPTR tags, "" none */
	int nsvc;
	struct pd_srv srv[PLUG_DNS_SERVICES_MAX];
	int nsrv;
	int service;			/* the one whose targets are used, -1 none */
	struct pd_target *t;		/* srv[service].t, or &fallback */
	int nt;
	struct pd_target fallback;
	struct pd_query q[1 + PLUG_DNS_SERVICES_MAX + 2 * PD_TARGETS];
	int nq;
};

/* ---- the server ------------------------------------------------------------ */

int
plug_dns_server_init(struct plug_dns_server *srv, const char *spec)
{
	struct plug_dns_server tmp;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = NULL, *h = spec, *end;
	unsigned long port = 53;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&tmp.addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&tmp.addr;
	size_t n;
	char *e;

	if (spec == NULL) {
		char line[256], addr[INET6_ADDRSTRLEN + 1], b[INET6_ADDRSTRLEN + 3], *pct;
		FILE *f = fopen(_PATH_RESCONF, "re");
		int ok = 0;

		if (f != NULL) {
			while (!ok && fgets(line, sizeof(line), f) != NULL) {
				if (sscanf(line, " nameserver %46s", addr) != 1)
					continue;
				if ((pct = strchr(addr, '%')) != NULL)
					*pct = '\0';	/* scope ids are not kept */
				snprintf(b, sizeof(b), strchr(addr, ':') ? "[%s]" : "%s", addr);
				ok = plug_dns_server_init(srv, b) == 0;
			}
			fclose(f);
		}
		return ok ? 0 : plug_dns_server_init(srv, "127.0.0.1");
	}
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL)
			return -1;
		n = (size_t)(end - h - 1);
		h++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(h, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL;	/* a bare IPv6 address */
		n = colon ? (size_t)(colon - h) : strlen(h);
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	if (colon != NULL) {
		port = strtoul(colon + 1, &e, 10);
		if (colon[1] == '\0' || *e != '\0' || port == 0 || port > 65535)
			return -1;
	}
	memset(&tmp, 0, sizeof(tmp));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)port);
		tmp.len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)port);
		tmp.len = sizeof(*in6);
	} else {
		return -1;
	}
	snprintf(tmp.text, sizeof(tmp.text), "%s port %lu", host, port);
	*srv = tmp;
	return 0;
}

/* ---- queries ------------------------------------------------------------------ */

/* A query for name/type with a random id; -1 when the name does not fit. */
static int
plug_dns_build(struct pd_query *q, const char *name, uint16_t type)
{
	unsigned char *p = q->pkt;
	const char *l = name, *dot;
	size_t n;

	if (strlen(name) >= sizeof(q->name))
		return -1;
	if (RAND_bytes((unsigned char *)&q->id, sizeof(q->id)) != 1)
		q->id = (uint16_t)random();
	memset(p, 0, 12);
	p[0] = (unsigned char)(q->id >> 8);
	p[1] = (unsigned char)q->id;
	p[2] = 0x01;		/* RD */
	p[5] = 1;		/* QDCOUNT */
	p += 12;
	while (*l != '\0') {
		dot = strchr(l, '.');
		n = dot ? (size_t)(dot - l) : strlen(l);
		if (n == 0 || n > 63 || (size_t)(p - q->pkt) + n + 6 > sizeof(q->pkt))
			return -1;
		*p++ = (unsigned char)n;
		memcpy(p, l, n);
		p += n;
		l += n;
		if (*l == '.')
			l++;
	}
	*p++ = 0;
	*p++ = (unsigned char)(type >> 8);
	*p++ = (unsigned char)type;
	*p++ = 0;
	*p++ = ns_c_in;
	q->type = type;
	q->done = 0;
	q->len = (size_t)(p - q->pkt);
	memcpy(q->name, name, strlen(name) + 1);
	return 0;
}

static void
plug_dns_send_all(struct plug_dns *d)
{
	int i;

	for (i = 0; i < d->nq; i++)
		if (!d->q[i].done)
			(void)send(d->fd, d->q[i].pkt, d->q[i].len, MSG_NOSIGNAL);
}

static int
plug_dns_add(struct plug_dns *d, const char *name, uint16_t type, int target,
    int service)
{
	struct pd_query *q;

	if (d->nq >= (int)(sizeof(d->q) / sizeof(d->q[0])))
		return -1;
	q = &d->q[d->nq];
	if (plug_dns_build(q, name, type) == -1)
		return -1;
	q->target = target;
	q->service = service;
	d->nq++;
	return 0;
}

/* ---- finishing ------------------------------------------------------------------ */

static void
plug_dns_release(struct plug_dns *d)
{
	if (d->timer != NULL) {
		d->host->timer_del(d->timer);
		d->timer = NULL;
	}
	if (d->watch != NULL) {
		d->host->watch_del(d->watch);
		d->watch = NULL;
	}
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
}

/* Hand the addresses (targets in SRV order, A before AAAA) or the reason
 * to the caller; the lookup is freed after the callback. */
static void
plug_dns_finish(struct plug_dns *d, const char *why)
{
	struct plug_dns_addr out[PLUG_DNS_ADDRS_MAX];
	char buf[600];
	int i, j, k, n = 0;

	plug_dns_release(d);
	for (k = 0; why == NULL && k < d->nt; k++)
		for (i = 0; i < d->nt; i++)
			if (d->t[i].order == k)
				for (j = 0; j < d->t[i].na && n < PLUG_DNS_ADDRS_MAX; j++)
					out[n++] = d->t[i].a[j];
	if (why == NULL && n == 0) {
		snprintf(buf, sizeof(buf), "DNS (%s): no address for %s%s", d->server->text,
		    d->service < 0 ? "" : "the SRV targets of ", d->domain);
		why = buf;
	}
	d->cb(d->arg, out, n, why);
	free(d);
}

/* ---- answers ----------------------------------------------------------------------- */

/* RFC 2782: by priority; within one priority a weighted random order. */
static void
plug_dns_order(struct pd_target *t, int nt)
{
	int used[PD_TARGETS] = { 0 };
	int i, k, best, order = 0;
	unsigned int sum, r;

	while (order < nt) {
		best = -1;
		for (i = 0; i < nt; i++)
			if (!used[i] && (best < 0 || t[i].prio < t[best].prio))
				best = i;
		sum = 0;
		for (i = 0; i < nt; i++)
			if (!used[i] && t[i].prio == t[best].prio)
				sum += t[i].weight;
		r = sum ? (unsigned int)random() % (sum + 1) : 0;
		k = -1;
		sum = 0;
		/* zero weights first, so that they have a small chance too */
		for (i = 0; i < nt && k < 0; i++)
			if (!used[i] && t[i].prio == t[best].prio && t[i].weight == 0 && r == 0)
				k = i;
		for (i = 0; i < nt && k < 0; i++) {
			if (used[i] || t[i].prio != t[best].prio)
				continue;
			sum += t[i].weight;
			if (sum >= r)
				k = i;
		}
		if (k < 0)
			k = best;
		used[k] = 1;
		t[k].order = order++;
	}
}

/* One service's SRV answer: its targets. */
static void
plug_dns_srv_answer(struct pd_srv *sv, ns_msg *m)
{
	char name[NS_MAXDNAME];
	const unsigned char *rd;
	int i, n = ns_msg_count(*m, ns_s_an);
	struct pd_target *t;
	ns_rr rr;

	for (i = 0; i < n && sv->nt < PD_TARGETS; i++) {
		if (ns_parserr(m, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		rd = ns_rr_rdata(rr);
		if (ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), rd + 6, name,
		    sizeof(name)) == -1)
			continue;
		if (strcmp(name, ".") == 0 || name[0] == '\0') {
			sv->dot = 1;
			continue;
		}
		t = &sv->t[sv->nt];
		snprintf(t->host, sizeof(t->host), "%s", name);
		t->prio = ns_get16(rd);
		t->weight = ns_get16(rd + 2);
		t->port = ns_get16(rd + 4);
		t->ttl = ns_rr_ttl(rr) < sv->ttl_max ? ns_rr_ttl(rr) : sv->ttl_max;
		if (t->port != 0)
			sv->nt++;
	}
}

/* Every SRV answer is in (or the rest timed out): pick the targets of the
 * first service in the caller's order that has some, then ask for their
 * addresses.  1 when it finished (and freed) d, else 0. */
static int
plug_dns_srv_done(struct plug_dns *d)
{
	char why[700];
	int i, dot = 0, bad = -1;

	d->service = -1;
	for (i = 0; i < d->nsrv && d->service < 0; i++) {
		if (d->srv[i].nt > 0)
			d->service = i;
		dot |= d->srv[i].dot;
		if (d->srv[i].rcode > 0 && d->srv[i].rcode != ns_r_nxdomain)
			bad = i;
	}
	if (d->service < 0 && bad >= 0) {
		snprintf(why, sizeof(why), "DNS (%s): SRV lookup for %s failed with rcode %d",
		    d->server->text, d->domain, d->srv[bad].rcode);
		plug_dns_finish(d, why);
		return 1;
	}
	if (d->service < 0 && dot) {
		snprintf(why, sizeof(why), "its SRV record says it offers no %s service "
		    "(target \".\")", d->what);
		plug_dns_finish(d, why);
		return 1;
	}
	if (d->service >= 0) {
		d->t = d->srv[d->service].t;
		d->nt = d->srv[d->service].nt;
	} else {
		/* RFC 6120 3.2.2, RFC 3263 4.2: the domain itself */
		d->t = &d->fallback;
		snprintf(d->t[0].host, sizeof(d->t[0].host), "%s", d->domain);
		d->t[0].port = d->default_port;
		d->t[0].ttl = PD_TTL_MAX;
		d->nt = 1;
	}
	plug_dns_order(d->t, d->nt);
	d->phase = 1;
	d->tries = 0;
	for (i = 0; i < d->nt; i++)
		if (plug_dns_add(d, d->t[i].host, ns_t_a, i, d->service) == -1 ||
		    plug_dns_add(d, d->t[i].host, ns_t_aaaa, i, d->service) == -1)
			break;
	plug_dns_send_all(d);
	return 0;
}

static void
plug_dns_addrs(struct plug_dns *d, ns_msg *m, struct pd_query *q)
{
	struct pd_target *t = &d->t[q->target];
	struct sockaddr_in *in4;
	struct sockaddr_in6 *in6;
	char text[INET6_ADDRSTRLEN];
	struct plug_dns_addr *a;
	int i, n = ns_msg_count(*m, ns_s_an);
	ns_rr rr;

	for (i = 0; i < n && t->na < PD_PER_TARGET; i++) {
		if (ns_parserr(m, ns_s_an, i, &rr) == -1)
			break;
		a = &t->a[t->na];
		memset(a, 0, sizeof(*a));
		if (ns_rr_type(rr) == ns_t_a && q->type == ns_t_a && ns_rr_rdlen(rr) == 4) {
			in4 = (struct sockaddr_in *)&a->sa;
			in4->sin_family = AF_INET;
			in4->sin_port = htons(t->port);
			memcpy(&in4->sin_addr, ns_rr_rdata(rr), 4);
			a->len = sizeof(*in4);
			inet_ntop(AF_INET, &in4->sin_addr, text, sizeof(text));
		} else if (ns_rr_type(rr) == ns_t_aaaa && q->type == ns_t_aaaa &&
		    ns_rr_rdlen(rr) == 16) {
			in6 = (struct sockaddr_in6 *)&a->sa;
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(t->port);
			memcpy(&in6->sin6_addr, ns_rr_rdata(rr), 16);
			a->len = sizeof(*in6);
			inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		} else {
			continue;
		}
		a->service = d->service < 0 ? -1 : d->srv[d->service].service;
		a->ttl = ns_rr_ttl(rr) < t->ttl ? ns_rr_ttl(rr) : t->ttl;
		{
			/* through a copy: GCC's -Wrestrict cannot tell a->text from
			 * t->host (both in *d) */
			char tmp[sizeof(a->text)];

			snprintf(tmp, sizeof(tmp), "%.*s[%s]:%u", 120, t->host, text, t->port);
			memcpy(a->text, tmp, sizeof(tmp));
		}
		t->na++;
	}
}

/* ---- NAPTR (RFC 3403 4.1, as RFC 3263 4.1 uses it) ------------------------------ */

/* One <character-string> at *pp, not past end, into buf (NUL-ended; one
 * holding a NUL or too long for buf is refused).  0, or -1. */
static int
plug_dns_cstr(const unsigned char **pp, const unsigned char *end, char *buf,
    size_t size)
{
	const unsigned char *p = *pp;
	size_t n;

	if (p >= end)
		return -1;
	n = *p++;
	if ((size_t)(end - p) < n || n >= size || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	*pp = p + n;
	return 0;
}

/* ORDER, PREFERENCE, FLAGS, SERVICES, REGEXP, REPLACEMENT within the
 * record's RDATA.  0, or -1 when it does not parse. */
static int
plug_dns_naptr_rdata(ns_msg *m, ns_rr *rr, struct plug_dns_naptr *o)
{
	const unsigned char *rd = ns_rr_rdata(*rr), *end = rd + ns_rr_rdlen(*rr), *p;
	char regexp[256], name[NS_MAXDNAME];
	int n;

	if (ns_rr_rdlen(*rr) < 4 + 3 + 1)
		return -1;
	o->order = ns_get16(rd);
	o->pref = ns_get16(rd + 2);
	p = rd + 4;
	if (plug_dns_cstr(&p, end, o->flags, sizeof(o->flags)) == -1 ||
	    plug_dns_cstr(&p, end, o->services, sizeof(o->services)) == -1 ||
	    plug_dns_cstr(&p, end, regexp, sizeof(regexp)) == -1 || p >= end)
		return -1;
	n = ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), p, name, sizeof(name));
	if (n < 1 || n > end - p || strlen(name) > PLUG_DNS_NAME_MAX)
		return -1;
	snprintf(o->replacement, sizeof(o->replacement), "%s", name[0] ? name : ".");
	o->ttl = ns_rr_ttl(*rr) < PD_TTL_MAX ? ns_rr_ttl(*rr) : PD_TTL_MAX;
	return 0;
}

int
plug_dns_naptr_parse(const unsigned char *pkt, size_t len, struct plug_dns_naptr *out,
    int max)
{
	ns_msg m;
	ns_rr rr;
	int i, n, k = 0;

	if (len < 12 || len > 65535 || ns_initparse(pkt, (int)len, &m) == -1)
		return -1;
	n = ns_msg_count(m, ns_s_an);
	for (i = 0; i < n && k < max; i++) {
		if (ns_parserr(&m, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) == ns_t_naptr && plug_dns_naptr_rdata(&m, &rr, &out[k]) == 0)
			k++;
	}
	return k;
}

/* SRV of the caller's services on the domain (no usable NAPTR). */
static void
plug_dns_srv_plain(struct plug_dns *d)
{
	char name[NS_MAXDNAME];
	int i;

	d->nsrv = 0;
	for (i = 0; i < d->nsvc; i++) {
		if ((size_t)snprintf(name, sizeof(name), "%s.%s", d->svc[i], d->domain) >=
		    sizeof(name))
			continue;
		snprintf(d->srv[d->nsrv].name, sizeof(d->srv[d->nsrv].name), "%s", name);
		d->srv[d->nsrv].service = i;
		d->srv[d->nsrv].ttl_max = PD_TTL_MAX;
		d->srv[d->nsrv].rcode = -1;
		if (plug_dns_add(d, name, ns_t_srv, -1, d->nsrv) == 0)
			d->nsrv++;
	}
}

/* The caller's service whose tag a NAPTR record carries (with flag "s"
 * and a replacement), else -1. */
static int
plug_dns_naptr_service(const struct plug_dns *d, const struct plug_dns_naptr *r)
{
	int i;

	if (strcasecmp(r->flags, "s") != 0 || strcmp(r->replacement, ".") == 0)
		return -1;
	for (i = 0; i < d->nsvc; i++)
		if (d->tag[i][0] != '\0' && strcasecmp(r->services, d->tag[i]) == 0)
			return i;
	return -1;
}

/* The NAPTR answer (pkt NULL: none, an error or no answer): the usable
 * records' replacements in order and preference become the SRV names to
 * ask, else the caller's services on the domain. */
static void
plug_dns_naptr_done(struct plug_dns *d, const unsigned char *pkt, size_t len)
{
	struct plug_dns_naptr rec[PD_NAPTR_MAX];
	int used[PD_NAPTR_MAX] = { 0 };
	int i, best, svc, n;

	n = pkt != NULL ? plug_dns_naptr_parse(pkt, len, rec, PD_NAPTR_MAX) : 0;
	d->phase = 0;
	d->tries = 0;
	d->nsrv = 0;
	while (d->nsrv < PLUG_DNS_SERVICES_MAX) {
		best = -1;
		for (i = 0; i < n; i++)
			if (!used[i] && plug_dns_naptr_service(d, &rec[i]) >= 0 &&
			    (best < 0 || rec[i].order < rec[best].order ||
			    (rec[i].order == rec[best].order && rec[i].pref < rec[best].pref)))
				best = i;
		if (best < 0)
			break;
		used[best] = 1;
		svc = plug_dns_naptr_service(d, &rec[best]);
		snprintf(d->srv[d->nsrv].name, sizeof(d->srv[d->nsrv].name), "%s",
		    rec[best].replacement);
		d->srv[d->nsrv].service = svc;
		d->srv[d->nsrv].ttl_max = rec[best].ttl;
		d->srv[d->nsrv].rcode = -1;
		if (plug_dns_add(d, rec[best].replacement, ns_t_srv, -1, d->nsrv) == 0)
			d->nsrv++;
	}
	if (d->nsrv == 0)
		plug_dns_srv_plain(d);
	plug_dns_send_all(d);
}

/* Non-zero when the answer's question is the query's (name any case). */
static int
plug_dns_same_question(ns_msg *m, const struct pd_query *q)
{
	ns_rr rr;

	return ns_msg_count(*m, ns_s_qd) == 1 && ns_parserr(m, ns_s_qd, 0, &rr) == 0 &&
	    ns_rr_type(rr) == q->type && strcasecmp(ns_rr_name(rr), q->name) == 0;
}

static void
plug_dns_read_cb(int fd, int what, void *arg)
{
	struct plug_dns *d = arg;
	unsigned char buf[4096];
	struct pd_query *q;
	ssize_t n;
	ns_msg m;
	int i, rcode, left;

	(void)what;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return;		/* EAGAIN, or an ICMP error: the timer retries */
		if (n < 12 || ns_initparse(buf, (int)n, &m) == -1)
			continue;
		for (i = 0, q = NULL; i < d->nq; i++)
			if (!d->q[i].done && d->q[i].id == ns_msg_id(m))
				q = &d->q[i];
		if (q == NULL || !plug_dns_same_question(&m, q))
			continue;
		q->done = 1;
		rcode = ns_msg_getflag(m, ns_f_rcode);
		if (q->type == ns_t_naptr) {
			plug_dns_naptr_done(d, rcode == ns_r_noerror ? buf : NULL, (size_t)n);
			continue;	/* the SRV queries are out */
		}
		if (q->target < 0) {
			d->srv[q->service].rcode = rcode;
			if (rcode == ns_r_noerror)
				plug_dns_srv_answer(&d->srv[q->service], &m);
		} else if (rcode == ns_r_noerror) {
			plug_dns_addrs(d, &m, q);
		}
		for (i = 0, left = 0; i < d->nq; i++)
			left += !d->q[i].done;
		if (left > 0)
			continue;
		if (d->phase == 0)
			(void)plug_dns_srv_done(d);	/* may finish (and free) d */
		else
			plug_dns_finish(d, NULL);
		return;
	}
}

static void
plug_dns_timer_cb(void *arg)
{
	struct plug_dns *d = arg;
	char why[600];
	int i, answered = 0;

	d->timer = NULL;
	if (++d->tries >= PD_TRIES && d->phase == -1) {
		d->q[0].done = 1;	/* no NAPTR answer: as if none */
		plug_dns_naptr_done(d, NULL, 0);
	} else if (d->tries >= PD_TRIES) {
		if (d->phase == 1) {
			plug_dns_finish(d, NULL);	/* what answered, if anything */
			return;
		}
		for (i = 0; i < d->nsrv; i++)
			answered |= d->srv[i].rcode >= 0;
		if (!answered) {
			snprintf(why, sizeof(why), "DNS (%s) did not answer the SRV lookup "
			    "for %s", d->server->text, d->domain);
			plug_dns_finish(d, why);
			return;
		}
		for (i = 0; i < d->nq; i++)
			d->q[i].done = 1;	/* SRV queries that never answered */
		if (plug_dns_srv_done(d))
			return;		/* finished (and freed) */
	} else {
		plug_dns_send_all(d);
	}
	d->timer = d->host->timer_add(d->inst, PD_RETRY_MS, plug_dns_timer_cb, d);
	if (d->timer == NULL)
		plug_dns_finish(d, d->phase == 1 ? NULL : "cannot set a DNS timer");
}

struct plug_dns *
plug_dns_start(const struct plug_dns_req *req, plug_dns_cb cb, void *arg)
{
	const struct plug_dns_server *srv = req->server;
	struct plug_dns *d;
	int i, naptr = 0;

	if (strlen(req->domain) > PLUG_DNS_NAME_MAX || req->nservices < 0 ||
	    req->nservices > PLUG_DNS_SERVICES_MAX || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->host = req->host;
	d->inst = req->inst;
	d->server = srv;
	d->cb = cb;
	d->arg = arg;
	d->fd = -1;
	d->default_port = req->default_port;
	memcpy(d->domain, req->domain, strlen(req->domain) + 1);
	snprintf(d->what, sizeof(d->what), "%s", req->what ? req->what : "such");
	d->nsvc = req->nservices;
	for (i = 0; i < d->nsvc; i++) {
		if ((size_t)snprintf(d->svc[i], sizeof(d->svc[i]), "%s", req->services[i]) >=
		    sizeof(d->svc[i]) || (req->naptr[i] != NULL &&
		    (size_t)snprintf(d->tag[i], sizeof(d->tag[i]), "%s", req->naptr[i]) >=
		    sizeof(d->tag[i])))
			goto fail;
		naptr |= d->tag[i][0] != '\0';
	}
	if (naptr) {
		d->phase = -1;
		if (plug_dns_add(d, d->domain, ns_t_naptr, -1, -1) == -1)
			goto fail;
	} else {
		plug_dns_srv_plain(d);
		if (d->nsrv < d->nsvc)
			goto fail;	/* a name too long */
	}
	d->fd = socket(srv->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd == -1 || connect(d->fd, (const struct sockaddr *)&srv->addr,
	    srv->len) == -1) {
		d->host->log(d->inst, IMGW_LOG_WARNING, NULL, "DNS socket to %s: %s",
		    srv->text, strerror(errno));
		goto fail;
	}
	if (d->nsvc == 0) {
		d->service = -1;
		d->t = &d->fallback;
		snprintf(d->t[0].host, sizeof(d->t[0].host), "%s", d->domain);
		d->t[0].port = d->default_port;
		d->t[0].ttl = PD_TTL_MAX;
		d->nt = 1;
		d->phase = 1;
		if (plug_dns_add(d, d->domain, ns_t_a, 0, -1) == -1 ||
		    plug_dns_add(d, d->domain, ns_t_aaaa, 0, -1) == -1)
			goto fail;
	}
	d->watch = d->host->watch_add(d->inst, d->fd, IMGW_WATCH_READ, plug_dns_read_cb, d);
	d->timer = d->host->timer_add(d->inst, PD_RETRY_MS, plug_dns_timer_cb, d);
	if (d->watch == NULL || d->timer == NULL)
		goto fail;
	plug_dns_send_all(d);
	return d;
fail:
	plug_dns_release(d);
	free(d);
	return NULL;
}

void
plug_dns_cancel(struct plug_dns *d)
{
	if (d == NULL)
		return;
	plug_dns_release(d);
	free(d);
}
