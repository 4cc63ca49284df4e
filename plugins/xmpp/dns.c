/*
 * Name resolution for outbound s2s (RFC 6120 3.2.1): SRV
 * _xmpp-server._tcp.DOMAIN, ordered by priority and weight (RFC 2782),
 * then A and AAAA of each target; without SRV records the domain itself
 * on port 5269 (3.2.2); a single SRV target "." means the domain offers no
 * s2s service.
 *
 * The SDK has no resolver and getaddrinfo/res_query block, so this is a
 * small DNS client over UDP on the core's loop: one connected UDP socket
 * per lookup (a fresh random source port) with random query ids, answers
 * matched by id and question, sent again every second, given up after
 * three tries (an address lookup that times out just contributes nothing).
 * The server is `dns-server` (HOST[:PORT], numeric), else the first
 * nameserver of /etc/resolv.conf, else 127.0.0.1.  Not done: TCP for
 * truncated answers (the records of a truncated answer that parse are
 * used), DNSSEC, a cache (a link stays open while used, so a lookup runs
 * per link set-up).  libresolv's ns_* functions parse the answers.
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

#include "s2s.h"

#define XS_DNS_TARGETS		8	/* SRV targets used */
#define XS_DNS_PER_TARGET	8	/* addresses kept per target */
#define XS_DNS_TRIES		3
#define XS_DNS_RETRY_MS		1000
#define XS_DNS_PKT		512
#define XS_DNS_DEFAULT_PORT	5269

struct xs_dns_query {
	uint16_t id;
	uint16_t type;			/* ns_t_srv, ns_t_a, ns_t_aaaa */
	int target;			/* index into t[], -1 for SRV */
	int done;
	size_t len;
	unsigned char pkt[XS_DNS_PKT];
};

struct xs_dns_target {
	char host[NS_MAXDNAME];
	unsigned short port, prio, weight;
	int order;			/* place after sorting */
	struct xs_addr a[XS_DNS_PER_TARGET];
	int na;
};

struct xs_dns {
	struct xs *s;
	xs_dns_cb cb;
	void *arg;
	char domain[XS_DOMAIN_MAX + 1];
	int fd;
	struct imgw_watch *watch;
	struct imgw_timer *timer;
	int tries;
	int phase;			/* 0: SRV, 1: addresses */
	struct xs_dns_target t[XS_DNS_TARGETS];
	int nt;
	struct xs_dns_query q[1 + 2 * XS_DNS_TARGETS];
	int nq;
};

/* ---- the server ------------------------------------------------------------ */

/* HOST[:PORT] or [V6]:PORT, numeric, into s->dns_addr; -1 when bad. */
static int
xs_dns_parse_server(struct xs *s, const char *spec)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = NULL, *h = spec, *end;
	unsigned long port = 53;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&s->dns_addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->dns_addr;
	size_t n;
	char *e;

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
	memset(&s->dns_addr, 0, sizeof(s->dns_addr));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)port);
		s->dns_addr_len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)port);
		s->dns_addr_len = sizeof(*in6);
	} else {
		return -1;
	}
	snprintf(s->dns_text, sizeof(s->dns_text), "%s port %lu", host, port);
	return 0;
}

/* The first nameserver of /etc/resolv.conf, read once at init. */
static void
xs_dns_from_resolv_conf(struct xs *s)
{
	char line[256], addr[INET6_ADDRSTRLEN + 1], *pct;
	FILE *f = fopen(_PATH_RESCONF, "re");

	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, " nameserver %46s", addr) != 1)
				continue;
			if ((pct = strchr(addr, '%')) != NULL)
				*pct = '\0';	/* scope ids are not kept */
			if (strchr(addr, ':') != NULL) {
				char b[INET6_ADDRSTRLEN + 3];

				snprintf(b, sizeof(b), "[%s]", addr);
				if (xs_dns_parse_server(s, b) == 0)
					break;
			} else if (xs_dns_parse_server(s, addr) == 0) {
				break;
			}
		}
		fclose(f);
	}
	if (s->dns_addr_len == 0)
		(void)xs_dns_parse_server(s, "127.0.0.1");
}

int
xs_dns_init(struct xs *s, const char *server)
{
	if (server != NULL) {
		if (xs_dns_parse_server(s, server) == -1) {
			XS_LOG(s, IMGW_LOG_ERR, "dns-server = %s: want a numeric HOST[:PORT] "
			    "or [IPV6]:PORT", server);
			return -1;
		}
		return 0;
	}
	xs_dns_from_resolv_conf(s);
	return 0;
}

/* ---- queries ------------------------------------------------------------------ */

/* A query for name/type with a random id; -1 when the name does not fit. */
static int
xs_dns_build(struct xs_dns_query *q, const char *name, uint16_t type)
{
	unsigned char *p = q->pkt;
	const char *l = name, *dot;
	size_t n;

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
	return 0;
}

static void
xs_dns_send_all(struct xs_dns *d)
{
	int i;

	for (i = 0; i < d->nq; i++)
		if (!d->q[i].done)
			(void)send(d->fd, d->q[i].pkt, d->q[i].len, MSG_NOSIGNAL);
}

static int
xs_dns_add(struct xs_dns *d, const char *name, uint16_t type, int target)
{
	struct xs_dns_query *q;

	if (d->nq >= (int)(sizeof(d->q) / sizeof(d->q[0])))
		return -1;
	q = &d->q[d->nq];
	if (xs_dns_build(q, name, type) == -1)
		return -1;
	q->target = target;
	d->nq++;
	return 0;
}

/* ---- finishing ------------------------------------------------------------------ */

static void
xs_dns_release(struct xs_dns *d)
{
	if (d->timer != NULL) {
		d->s->x->host->timer_del(d->timer);
		d->timer = NULL;
	}
	if (d->watch != NULL) {
		d->s->x->host->watch_del(d->watch);
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
xs_dns_finish(struct xs_dns *d, const char *why)
{
	struct xs_addr out[XS_ADDRS_MAX];
	char buf[600];
	int i, j, k, n = 0;

	xs_dns_release(d);
	for (k = 0; why == NULL && k < d->nt; k++)
		for (i = 0; i < d->nt; i++)
			if (d->t[i].order == k)
				for (j = 0; j < d->t[i].na && n < XS_ADDRS_MAX; j++)
					out[n++] = d->t[i].a[j];
	if (why == NULL && n == 0) {
		snprintf(buf, sizeof(buf), "DNS (%s): no address for %s%s", d->s->dns_text,
		    d->nt == 1 && strcmp(d->t[0].host, d->domain) == 0 ? "" : "the SRV "
		    "targets of ", d->domain);
		why = buf;
	}
	d->cb(d->arg, out, n, why);
	free(d);
}

/* ---- answers ----------------------------------------------------------------------- */

/* RFC 2782: by priority; within one priority a weighted random order. */
static void
xs_dns_order(struct xs_dns *d)
{
	int used[XS_DNS_TARGETS] = { 0 };
	int i, k, best, order = 0;
	unsigned int sum, r;

	while (order < d->nt) {
		best = -1;
		for (i = 0; i < d->nt; i++)
			if (!used[i] && (best < 0 || d->t[i].prio < d->t[best].prio))
				best = i;
		sum = 0;
		for (i = 0; i < d->nt; i++)
			if (!used[i] && d->t[i].prio == d->t[best].prio)
				sum += d->t[i].weight;
		r = sum ? (unsigned int)random() % (sum + 1) : 0;
		k = -1;
		sum = 0;
		/* zero weights first, so that they have a small chance too */
		for (i = 0; i < d->nt && k < 0; i++)
			if (!used[i] && d->t[i].prio == d->t[best].prio && d->t[i].weight == 0 &&
			    r == 0)
				k = i;
		for (i = 0; i < d->nt && k < 0; i++) {
			if (used[i] || d->t[i].prio != d->t[best].prio)
				continue;
			sum += d->t[i].weight;
			if (sum >= r)
				k = i;
		}
		if (k < 0)
			k = best;
		used[k] = 1;
		d->t[k].order = order++;
	}
}

/* The SRV answer: targets, then their address queries. */
static void
xs_dns_srv(struct xs_dns *d, ns_msg *m)
{
	char name[NS_MAXDNAME];
	const unsigned char *rd;
	int i, n = ns_msg_count(*m, ns_s_an), dot = 0;
	ns_rr rr;

	for (i = 0; i < n && d->nt < XS_DNS_TARGETS; i++) {
		if (ns_parserr(m, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		rd = ns_rr_rdata(rr);
		if (ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), rd + 6, name,
		    sizeof(name)) == -1)
			continue;
		if (strcmp(name, ".") == 0 || name[0] == '\0') {
			dot = 1;
			continue;
		}
		snprintf(d->t[d->nt].host, sizeof(d->t[d->nt].host), "%s", name);
		d->t[d->nt].prio = ns_get16(rd);
		d->t[d->nt].weight = ns_get16(rd + 2);
		d->t[d->nt].port = ns_get16(rd + 4);
		if (d->t[d->nt].port != 0)
			d->nt++;
	}
	if (d->nt == 0 && dot) {
		xs_dns_finish(d, "its SRV record says it offers no server-to-server "
		    "service (target \".\")");
		return;
	}
	if (d->nt == 0) {
		/* RFC 6120 3.2.2: the domain itself on the default port */
		snprintf(d->t[0].host, sizeof(d->t[0].host), "%s", d->domain);
		d->t[0].port = XS_DNS_DEFAULT_PORT;
		d->nt = 1;
	}
	xs_dns_order(d);
	d->phase = 1;
	d->tries = 0;
	for (i = 0; i < d->nt; i++)
		if (xs_dns_add(d, d->t[i].host, ns_t_a, i) == -1 ||
		    xs_dns_add(d, d->t[i].host, ns_t_aaaa, i) == -1)
			break;
	xs_dns_send_all(d);
}

static void
xs_dns_addrs(struct xs_dns *d, ns_msg *m, struct xs_dns_query *q)
{
	struct xs_dns_target *t = &d->t[q->target];
	struct sockaddr_in *in4;
	struct sockaddr_in6 *in6;
	char text[INET6_ADDRSTRLEN];
	struct xs_addr *a;
	int i, n = ns_msg_count(*m, ns_s_an);
	ns_rr rr;

	for (i = 0; i < n && t->na < XS_DNS_PER_TARGET; i++) {
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
		{
			char tmp[sizeof(a->text)];

			snprintf(tmp, sizeof(tmp), "%.*s[%s]:%u", 120, t->host, text, t->port);
			memcpy(a->text, tmp, sizeof(tmp));
		}
		t->na++;
	}
}

/* Non-zero when the answer's question is the query's (name any case). */
static int
xs_dns_same_question(ns_msg *m, const struct xs_dns_query *q, const char *want)
{
	ns_rr rr;

	return ns_msg_count(*m, ns_s_qd) == 1 && ns_parserr(m, ns_s_qd, 0, &rr) == 0 &&
	    ns_rr_type(rr) == q->type && strcasecmp(ns_rr_name(rr), want) == 0;
}

static void
xs_dns_read_cb(int fd, int what, void *arg)
{
	struct xs_dns *d = arg;
	unsigned char buf[4096];
	char srvname[XS_DOMAIN_MAX + 32];
	struct xs_dns_query *q;
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
		if (q == NULL)
			continue;
		snprintf(srvname, sizeof(srvname), "_xmpp-server._tcp.%s", d->domain);
		if (!xs_dns_same_question(&m, q, q->target < 0 ? srvname
		    : d->t[q->target].host))
			continue;
		q->done = 1;
		rcode = ns_msg_getflag(m, ns_f_rcode);
		if (q->target < 0) {
			if (rcode != ns_r_noerror && rcode != ns_r_nxdomain) {
				char why[600];

				snprintf(why, sizeof(why), "DNS (%s): SRV lookup for %s failed "
				    "with rcode %d", d->s->dns_text, d->domain, rcode);
				xs_dns_finish(d, why);
				return;
			}
			xs_dns_srv(d, &m);	/* may finish (and free) d */
			return;
		}
		if (rcode == ns_r_noerror)
			xs_dns_addrs(d, &m, q);
		for (i = 0, left = 0; i < d->nq; i++)
			left += !d->q[i].done;
		if (left == 0) {
			xs_dns_finish(d, NULL);
			return;
		}
	}
}

static void
xs_dns_timer_cb(void *arg)
{
	struct xs_dns *d = arg;
	char why[600];

	d->timer = NULL;
	if (++d->tries >= XS_DNS_TRIES) {
		if (d->phase == 1) {
			xs_dns_finish(d, NULL);	/* what answered, if anything */
			return;
		}
		snprintf(why, sizeof(why), "DNS (%s) did not answer the SRV lookup for %s",
		    d->s->dns_text, d->domain);
		xs_dns_finish(d, why);
		return;
	}
	xs_dns_send_all(d);
	d->timer = d->s->x->host->timer_add(d->s->x->inst, XS_DNS_RETRY_MS,
	    xs_dns_timer_cb, d);
}

/*
 * Look up the s2s addresses of `domain`.  Returns the lookup, owned by
 * this file until `cb` ran (later, from the loop; never from inside this
 * call) or xs_dns_cancel; NULL after logging when it cannot even start.
 * `cb` gets the addresses (borrowed for the call) or n = 0 and the reason.
 */
struct xs_dns *
xs_dns_start(struct xs *s, const char *domain, xs_dns_cb cb, void *arg)
{
	struct xs_dns *d;
	char name[XS_DOMAIN_MAX + 32];

	if (strlen(domain) > XS_DOMAIN_MAX || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->s = s;
	d->cb = cb;
	d->arg = arg;
	d->fd = -1;
	memcpy(d->domain, domain, strlen(domain) + 1);
	snprintf(name, sizeof(name), "_xmpp-server._tcp.%s", domain);
	if (xs_dns_add(d, name, ns_t_srv, -1) == -1)
		goto fail;
	d->fd = socket(s->dns_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd == -1 || connect(d->fd, (struct sockaddr *)&s->dns_addr,
	    s->dns_addr_len) == -1) {
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: DNS socket to %s: %s", s->dns_text,
		    strerror(errno));
		goto fail;
	}
	d->watch = s->x->host->watch_add(s->x->inst, d->fd, IMGW_WATCH_READ,
	    xs_dns_read_cb, d);
	d->timer = s->x->host->timer_add(s->x->inst, XS_DNS_RETRY_MS, xs_dns_timer_cb, d);
	if (d->watch == NULL || d->timer == NULL)
		goto fail;
	xs_dns_send_all(d);
	XS_COUNT(s, "s2s-dns-lookups");
	return d;
fail:
	xs_dns_release(d);
	free(d);
	return NULL;
}

/* Abandon a lookup; its callback never runs. */
void
xs_dns_cancel(struct xs_dns *d)
{
	if (d == NULL)
		return;
	xs_dns_release(d);
	free(d);
}
