/*
 * Server-to-server mode: options, the listener, start/stop, and the one
 * entry the shared stanza code uses to send (xs_send, through
 * xc_outq_send).  See s2s.h for the files, README for the options.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "s2s.h"

#define XS_DEFAULT_PORT	5269

/* Lower-case DNS name check (as xc_domain_ok in xmpp.c). */
static int
xs_name_ok(const char *d, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > XS_DOMAIN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') ||
		    d[i] == '-') || ++label > 63)
			return 0;
	}
	return label > 0;
}

int
xs_is_local(const struct xs *s, const char *domain, size_t n)
{
	int i;

	for (i = 0; i < s->nlocal; i++)
		if (strlen(s->local[i]) == n && strncasecmp(s->local[i], domain, n) == 0)
			return 1;
	return 0;
}

const struct xs_route *
xs_route_find(const struct xs *s, const char *domain)
{
	int i;

	for (i = 0; i < s->nroutes; i++)
		if (strcasecmp(s->routes[i].domain, domain) == 0)
			return &s->routes[i];
	return NULL;
}

/* Next word of a list separated by spaces or commas; NULL at the end. */
static const char *
xs_word(const char **pp, size_t *n_r)
{
	const char *p = *pp, *w;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0')
		return NULL;
	w = p;
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',')
		p++;
	*n_r = (size_t)(p - w);
	*pp = p;
	return w;
}

static void
xs_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int
xs_parse_local(struct xs *s, const char *list)
{
	const char *w;
	size_t n;

	while ((w = xs_word(&list, &n)) != NULL) {
		if (s->nlocal >= XS_DOMAINS_MAX || n > XS_DOMAIN_MAX) {
			XS_LOG(s, IMGW_LOG_ERR, "local-domains: at most %d names of at most "
			    "%d bytes", XS_DOMAINS_MAX, XS_DOMAIN_MAX);
			return -1;
		}
		memcpy(s->local[s->nlocal], w, n);
		s->local[s->nlocal][n] = '\0';
		xs_lower(s->local[s->nlocal]);
		if (!xs_name_ok(s->local[s->nlocal], n)) {
			XS_LOG(s, IMGW_LOG_ERR, "local-domains: '%.*s' is not a domain name",
			    (int)n, w);
			return -1;
		}
		if (s->x->host->owns_domain(s->x->inst, s->local[s->nlocal])) {
			XS_LOG(s, IMGW_LOG_ERR, "local-domains: %s is one of this community's "
			    "domains; in s2s mode `domains` are the remote XMPP domains and "
			    "local-domains the other communities' domains imgw answers for",
			    s->local[s->nlocal]);
			return -1;
		}
		s->nlocal++;
	}
	return 0;
}

/* peer = DOMAIN=HOST[:PORT] ...; HOST may be [IPv6]. */
static int
xs_parse_peers(struct xs *s, const char *list)
{
	const char *w, *eq, *hp, *colon, *end;
	struct xs_route *r;
	char tmp[2 * XS_DOMAIN_MAX + 16];
	unsigned long port;
	char *e;
	size_t n, hn;

	while ((w = xs_word(&list, &n)) != NULL) {
		if (s->nroutes >= XS_DOMAINS_MAX || n >= sizeof(tmp))
			goto bad;
		memcpy(tmp, w, n);
		tmp[n] = '\0';
		r = &s->routes[s->nroutes];
		if ((eq = strchr(tmp, '=')) == NULL || eq == tmp ||
		    (size_t)(eq - tmp) > XS_DOMAIN_MAX)
			goto bad;
		memcpy(r->domain, tmp, (size_t)(eq - tmp));
		r->domain[eq - tmp] = '\0';
		xs_lower(r->domain);
		if (!xs_name_ok(r->domain, strlen(r->domain)))
			goto bad;
		hp = eq + 1;
		port = XS_DEFAULT_PORT;
		if (*hp == '[') {
			if ((end = strchr(hp, ']')) == NULL)
				goto bad;
			hn = (size_t)(end - hp - 1);
			memcpy(r->host, hp + 1, hn < XS_DOMAIN_MAX ? hn : XS_DOMAIN_MAX);
			r->host[hn < XS_DOMAIN_MAX ? hn : XS_DOMAIN_MAX] = '\0';
			colon = end[1] == ':' ? end + 1 : NULL;
			if (end[1] != '\0' && colon == NULL)
				goto bad;
		} else {
			colon = strrchr(hp, ':');
			hn = colon ? (size_t)(colon - hp) : strlen(hp);
			if (hn == 0 || hn > XS_DOMAIN_MAX)
				goto bad;
			memcpy(r->host, hp, hn);
			r->host[hn] = '\0';
		}
		if (colon != NULL) {
			port = strtoul(colon + 1, &e, 10);
			if (colon[1] == '\0' || *e != '\0' || port == 0 || port > 65535)
				goto bad;
		}
		r->port = (unsigned short)port;
		s->nroutes++;
	}
	return 0;
bad:
	XS_LOG(s, IMGW_LOG_ERR, "peer: want DOMAIN=HOST[:PORT] ... (at most %d), "
	    "e.g. peer = xmpp.example=127.0.0.1:5269", XS_DOMAINS_MAX);
	return -1;
}

/* listen = tcp:HOST:PORT or tcp:[V6]:PORT, HOST numeric or "*". */
static int
xs_parse_listen(struct xs *s, const char *spec)
{
	struct addrinfo hints, *res = NULL;
	char host[80];
	const char *hp, *colon, *end;
	size_t hn;
	int rc;

	if (strncmp(spec, "tcp:", 4) != 0)
		goto bad;
	hp = spec + 4;
	if (*hp == '[') {
		if ((end = strchr(hp, ']')) == NULL || end[1] != ':')
			goto bad;
		hn = (size_t)(end - hp - 1);
		if (hn >= sizeof(host))
			goto bad;
		memcpy(host, hp + 1, hn);
		colon = end + 1;
	} else {
		if ((colon = strrchr(hp, ':')) == NULL || (size_t)(colon - hp) >= sizeof(host))
			goto bad;
		hn = (size_t)(colon - hp);
		memcpy(host, hp, hn);
	}
	host[hn] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(hn == 0 || strcmp(host, "*") == 0 ? NULL : host, colon + 1,
	    &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(s->laddr)) {
		if (res != NULL)
			freeaddrinfo(res);
		goto bad;
	}
	memcpy(&s->laddr, res->ai_addr, res->ai_addrlen);
	s->laddr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	XS_LOG(s, IMGW_LOG_ERR, "listen = %s: want tcp:HOST:PORT or tcp:[IPV6]:PORT "
	    "with a numeric HOST (or *)", spec);
	return -1;
}

static int
xs_x_is_local(const struct xc *x, const char *domain, size_t n)
{
	return xs_is_local(x->s2s, domain, n);
}

/* Options of s2s mode; no I/O.  -1 after logging. */
int
xs_init(struct xc *x)
{
	const struct imgw_host *h = x->host;
	const char *v;
	struct xs *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	s->x = x;
	s->lfd = -1;
	x->s2s = s;
	x->s2s_send = xs_send;
	x->s2s_is_local = xs_x_is_local;
	if ((v = h->option(x->inst, "local-domains")) == NULL || *v == '\0') {
		XS_LOG(s, IMGW_LOG_ERR, "mode = s2s needs local-domains: the domains imgw "
		    "answers for on the XMPP network (other communities' domains)");
		return -1;
	}
	if (xs_parse_local(s, v) == -1)
		return -1;
	if (s->nlocal == 0) {
		XS_LOG(s, IMGW_LOG_ERR, "local-domains is empty");
		return -1;
	}
	if ((v = h->option(x->inst, "peer")) != NULL && xs_parse_peers(s, v) == -1)
		return -1;
	if ((v = h->option(x->inst, "pin")) != NULL && xs_pin_parse(s, v) == -1)
		return -1;
	v = h->option(x->inst, "dns-server");
	if (plug_dns_server_init(&s->dns, v) == -1) {
		XS_LOG(s, IMGW_LOG_ERR, "dns-server = %s: want a numeric HOST[:PORT] "
		    "or [IPV6]:PORT", v);
		return -1;
	}
	s->listen = h->option(x->inst, "listen");
	if (s->listen == NULL || xs_parse_listen(s, s->listen) == -1)
		return -1;
	s->tls_cert = h->option(x->inst, "tls-cert");
	s->tls_key = h->option(x->inst, "tls-key");
	s->tls_ca = h->option(x->inst, "tls-ca");
	s->allow_plaintext = h->option_bool(x->inst, "allow-plaintext");
	s->tls_verify = h->option_bool(x->inst, "tls-verify");
	s->sasl_external = h->option_bool(x->inst, "sasl-external");
	if (s->tls_cert == NULL && !s->allow_plaintext) {
		XS_LOG(s, IMGW_LOG_ERR, "mode = s2s needs tls-cert and tls-key (a "
		    "certificate naming the local-domains), or allow-plaintext = yes "
		    "(loopback tests only)");
		return -1;
	}
	if (s->tls_key != NULL && s->tls_cert == NULL) {
		XS_LOG(s, IMGW_LOG_ERR, "tls-key without tls-cert");
		return -1;
	}
	if (xs_db_secret(s, h->option(x->inst, "dialback-secret")) == -1) {
		XS_LOG(s, IMGW_LOG_ERR, "no randomness for the dialback secret");
		return -1;
	}
	/* libstrophe only for stanza objects; its connections are not used */
	if ((x->ctx = xmpp_ctx_new(NULL, NULL)) == NULL) {
		XS_LOG(s, IMGW_LOG_ERR, "out of memory (libstrophe)");
		return -1;
	}
	return 0;
}

static void
xs_reap_cb(void *arg)
{
	struct xs *s = arg;
	struct xs_stream *st;

	s->reaper = NULL;
	while ((st = s->dead) != NULL) {
		s->dead = st->next;
		xs_stream_free(st);
	}
}

void
xs_reap_soon(struct xs *s)
{
	if (s->reaper == NULL)
		s->reaper = s->x->host->timer_add(s->x->inst, 0, xs_reap_cb, s);
}

static void
xs_listen_cb(int fd, int what, void *arg)
{
	struct xs *s = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	char host[INET6_ADDRSTRLEN], addr[64];
	int c, i, one = 1;

	(void)what;
	for (i = 0; i < 32; i++) {
		len = sizeof(ss);
		c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				XS_LOG(s, IMGW_LOG_WARNING, "s2s accept: %s", strerror(errno));
			return;
		}
		(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		host[0] = '\0';
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
			    sizeof(host));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
			    sizeof(host));
		snprintf(addr, sizeof(addr), "%s:%u", host, ss.ss_family == AF_INET6
		    ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
		    : ntohs(((struct sockaddr_in *)&ss)->sin_port));
		xs_in_accept(s, c, addr);
	}
}

int
xs_start(struct xc *x)
{
	struct xs *s = x->s2s;
	int one = 1;

	if (xs_tls_init(s) == -1)
		return -1;
	s->lfd = socket(s->laddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd == -1) {
		XS_LOG(s, IMGW_LOG_ERR, "s2s socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&s->laddr, s->laddr_len) == -1 ||
	    listen(s->lfd, SOMAXCONN) == -1) {
		XS_LOG(s, IMGW_LOG_ERR, "s2s listen %s: %s", s->listen, strerror(errno));
		return -1;
	}
	s->lwatch = x->host->watch_add(x->inst, s->lfd, IMGW_WATCH_READ, xs_listen_cb, s);
	if (s->lwatch == NULL) {
		XS_LOG(s, IMGW_LOG_ERR, "cannot watch the s2s listener");
		return -1;
	}
	XS_LOG(s, IMGW_LOG_NOTICE, "s2s: serving %s%s on %s (%s%s)", s->local[0],
	    s->nlocal > 1 ? " and more" : "", s->listen,
	    s->srv_ctx ? "STARTTLS" : "no TLS", s->allow_plaintext
	    ? ", clear text allowed" : "");
	/* stanzas queue per peer link: the community can take events now */
	x->state = XC_UP;
	x->host->ready(x->inst);
	return 0;
}

void
xs_stop(struct xc *x)
{
	struct xs *s = x->s2s;
	struct xs_stream *st;

	if (s == NULL)
		return;
	if (s->lwatch != NULL) {
		x->host->watch_del(s->lwatch);
		s->lwatch = NULL;
	}
	if (s->lfd != -1) {
		close(s->lfd);
		s->lfd = -1;
	}
	/* say goodbye where we can, without waiting for answers */
	for (st = s->in; st != NULL; st = st->next)
		if (st->phase == XS_OPEN && st->header_sent)
			xs_stream_write(st, "</stream:stream>", 16);
	while (s->in != NULL)
		xs_stream_kill(s->in, "stopping");
	xs_peers_free(s);
	if (s->reaper != NULL) {
		x->host->timer_del(s->reaper);
		s->reaper = NULL;
	}
	xs_reap_cb(s);
	x->state = XC_IDLE;
}

void
xs_fini(struct xc *x)
{
	struct xs *s = x->s2s;

	if (s == NULL)
		return;
	xs_stop(x);
	xs_tls_free(s);
	OPENSSL_cleanse(s->db_secret, sizeof(s->db_secret));
	free(s);
	x->s2s = NULL;
}

/*
 * A stanza for the XMPP network: to the link (domain of from -> domain of
 * to).  Returns 0, -1 (not ours to send, out of memory, queue full), -2
 * when larger than max-stanza.  The caller keeps st.
 */
int
xs_send(struct xc *x, xmpp_stanza_t *st)
{
	struct xs *s = x->s2s;
	char from[XS_DOMAIN_MAX + 1], to[XS_DOMAIN_MAX + 1];
	struct xs_peer *p;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (xs_domain_of(xmpp_stanza_get_from(st), from, sizeof(from)) == -1 ||
	    xs_domain_of(xmpp_stanza_get_to(st), to, sizeof(to)) == -1 ||
	    !xs_is_local(s, from, strlen(from)) || xs_is_local(s, to, strlen(to)))
		return -1;
	if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK || buf == NULL)
		return -1;
	if (len > x->max_stanza) {
		xmpp_free(x->ctx, buf);
		return -2;
	}
	if ((p = xs_peer_get(s, from, to)) == NULL)
		rc = -1;
	else
		rc = xs_out_queue(p, buf, len, st);
	xmpp_free(x->ctx, buf);
	return rc;
}
