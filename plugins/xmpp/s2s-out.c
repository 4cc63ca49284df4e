/*
 * Outbound s2s: one link per (local domain, peer domain), opened when the
 * first stanza (or dialback verify request) for it comes, at the address
 * the `peer` option gives for the domain:
 *
 *   connect -> our header -> features -> STARTTLS (always when offered;
 *   without it only with allow-plaintext) -> TLS as client with our
 *   certificate, the peer's checked for its domain (tls-verify) -> header
 *   -> features -> SASL EXTERNAL when offered (and we have a certificate),
 *   else (or when it fails) dialback: db:result with our key, the peer
 *   asks our listener (db:verify) and says valid -> queued stanzas out.
 *
 * Stanzas wait in the link's queue (bounded) until it is authenticated.
 * When the link fails first, each waiting stanza is answered with an
 * error event to its sender (remote-server-not-found or
 * remote-server-timeout, RFC 6120 8.3.3) — never dropped silently.  Once
 * written to an authenticated stream a stanza is the peer's: s2s has no
 * acknowledgement we could wait for (see README).  A link idle for ten
 * minutes is closed; the next stanza opens it again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "s2s.h"

static void xs_out_bounce_cb(void *arg);

struct xs_peer *
xs_peer_get(struct xs *s, const char *local, const char *remote)
{
	struct xs_peer *p;

	for (p = s->peers; p != NULL; p = p->next)
		if (strcmp(p->local, local) == 0 && strcmp(p->remote, remote) == 0)
			return p;
	if (strlen(local) > XS_DOMAIN_MAX || strlen(remote) > XS_DOMAIN_MAX)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->s = s;
	memcpy(p->local, local, strlen(local) + 1);
	memcpy(p->remote, remote, strlen(remote) + 1);
	p->next = s->peers;
	s->peers = p;
	return p;
}

static void
xs_item_free(struct xs_item *it)
{
	free(it->from);
	free(it->to);
	free(it->id);
	free(it);
}

/* Answer every waiting stanza with an error event to its sender, and
 * every waiting dialback check with "invalid".  From a timer only: emit
 * is never called from inside deliver. */
static void
xs_out_bounce_all(struct xs_peer *p)
{
	struct xc *x = p->s->x;
	const char *cond = p->bounce_cond;
	struct xs_verify *v;
	struct xs_item *it;
	struct imgw_event ev;
	unsigned long n = 0;

	p->bounce_cond = NULL;
	while ((it = p->q) != NULL) {
		p->q = it->next;
		p->qlen--;
		if (it->bounce && cond != NULL) {
			imgw_event_init(&ev, IMGW_EV_ERROR);
			ev.from = it->to;
			ev.to = it->from;
			ev.id = it->id;
			ev.condition = cond;
			ev.text = p->bounce_why;
			if (x->host->emit(x->inst, &ev, NULL, 0, NULL) == 0)
				n++;
		}
		xs_item_free(it);
	}
	p->q_tail = NULL;
	while ((v = p->verify) != NULL) {
		p->verify = v->next;
		xs_in_verified(p->s, v->in_id, v->from, v->to, 0);
		free(v);
	}
	if (n > 0) {
		XS_LOG(p->s, IMGW_LOG_WARNING, "s2s %s -> %s: %lu stanzas answered with "
		    "%s (%s)", p->local, p->remote, n, cond, p->bounce_why);
		x->host->counter_add(x->inst, "s2s-bounced", (int64_t)n);
	}
}

static void
xs_out_bounce_cb(void *arg)
{
	struct xs_peer *p = arg;

	p->timer = NULL;
	if (p->st == NULL)
		xs_out_bounce_all(p);
}

static void
xs_out_fail(struct xs_peer *p, const char *cond, const char *why)
{
	if (p->q == NULL && p->verify == NULL)
		return;
	p->bounce_cond = cond;
	snprintf(p->bounce_why, sizeof(p->bounce_why), "%s", why);
	if (p->timer == NULL)
		p->timer = p->s->x->host->timer_add(p->s->x->inst, 0, xs_out_bounce_cb, p);
}

/* Connect to the link's next address; synchronous failures move on to
 * the one after.  -1 when none is left (the caller bounces). */
static int
xs_out_try(struct xs_peer *p)
{
	struct xs *s = p->s;
	const struct plug_dns_addr *a;
	struct xs_stream *st;
	int fd, one = 1;

	while (p->addr_next < p->naddrs) {
		a = &p->addrs[p->addr_next++];
		fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1 || (connect(fd, (const struct sockaddr *)&a->sa, a->len) == -1 &&
		    errno != EINPROGRESS)) {
			snprintf(p->last_why, sizeof(p->last_why), "%s: %s", a->text,
			    strerror(errno));
			if (fd != -1)
				close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((st = xs_stream_new(s, XS_OUT, fd, a->text)) == NULL) {
			close(fd);
			snprintf(p->last_why, sizeof(p->last_why), "out of memory");
			return -1;
		}
		st->peer = p;
		memcpy(st->local, p->local, sizeof(st->local));
		memcpy(st->remote, p->remote, sizeof(st->remote));
		p->st = st;
		if (xs_stream_watch(st) == -1) {
			xs_stream_kill(st, "cannot watch the socket");
			return p->st != NULL ? 0 : -1;
		}
		XS_COUNT(s, "s2s-outbound-connects");
		return 0;
	}
	return -1;
}

static void
xs_out_unreachable(struct xs_peer *p)
{
	XS_LOG(p->s, IMGW_LOG_WARNING, "s2s: cannot connect to %s: %s", p->remote,
	    p->last_why);
	xs_out_fail(p, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, p->last_why);
}

/* The DNS lookup of the link's domain ended. */
static void
xs_out_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n, const char *why)
{
	struct xs_peer *p = arg;
	int i;

	p->dns = NULL;
	if (n == 0) {
		snprintf(p->last_why, sizeof(p->last_why), "%s", why ? why : "no address");
		xs_out_unreachable(p);
		return;
	}
	for (i = 0; i < n && i < XS_ADDRS_MAX; i++)
		p->addrs[i] = addrs[i];
	p->naddrs = i;
	p->addr_next = 0;
	XS_LOG(p->s, IMGW_LOG_INFO, "s2s: %s resolved to %d address%s, first %s", p->remote,
	    p->naddrs, p->naddrs == 1 ? "" : "es", p->addrs[0].text);
	if (xs_out_try(p) == -1)
		xs_out_unreachable(p);
}

/* RFC 6120 3.2.1: SRV _xmpp-server._tcp.DOMAIN, then A/AAAA of the
 * targets; without SRV records the domain itself on 5269 (3.2.2). */
static struct plug_dns *
xs_out_dns_start(struct xs_peer *p)
{
	struct xs *s = p->s;
	struct plug_dns_req req = {
		.host = s->x->host,
		.inst = s->x->inst,
		.server = &s->dns,
		.domain = p->remote,
		.services = { "_xmpp-server._tcp" },
		.nservices = 1,
		.default_port = 5269,
		.what = "server-to-server",
	};
	struct plug_dns *d;

	if ((d = plug_dns_start(&req, xs_out_dns_cb, p)) != NULL)
		XS_COUNT(s, "s2s-dns-lookups");
	return d;
}

/* A `peer` route: its host (an address, or a name getaddrinfo finds in
 * /etc/hosts; a name that needs DNS would block the loop here). */
static int
xs_out_route_addrs(struct xs_peer *p, const struct xs_route *r)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[8], host[INET6_ADDRSTRLEN];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%u", r->port);
	if ((rc = getaddrinfo(r->host, port, &hints, &res)) != 0) {
		snprintf(p->last_why, sizeof(p->last_why), "%s: %s", r->host, gai_strerror(rc));
		return -1;
	}
	p->naddrs = p->addr_next = 0;
	for (ai = res; ai != NULL && p->naddrs < XS_ADDRS_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(p->addrs[0].sa))
			continue;
		memcpy(&p->addrs[p->naddrs].sa, ai->ai_addr, ai->ai_addrlen);
		p->addrs[p->naddrs].len = ai->ai_addrlen;
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
		    NI_NUMERICHOST) != 0)
			snprintf(host, sizeof(host), "?");
		if (strcmp(host, r->host) == 0)
			snprintf(p->addrs[p->naddrs].text, sizeof(p->addrs[0].text), "%.*s:%u",
			    180, r->host, r->port);
		else
			snprintf(p->addrs[p->naddrs].text, sizeof(p->addrs[0].text),
			    "%.*s[%s]:%u", 120, r->host, host, r->port);
		p->naddrs++;
	}
	freeaddrinfo(res);
	snprintf(p->last_why, sizeof(p->last_why), "%s:%u: no address", r->host, r->port);
	return 0;
}

/*
 * Open the link's stream when there is none: a static `peer` route wins,
 * else DNS (SRV, then A/AAAA; plugins/common/dns.c) runs and the connect follows its
 * answer.  -1 when it cannot even start (then the caller's work is
 * answered by the bounce timer).
 */
static int
xs_out_ensure(struct xs_peer *p)
{
	struct xs *s = p->s;
	const struct xs_route *r;

	if (p->st != NULL || p->dns != NULL)
		return 0;
	if ((r = xs_route_find(s, p->remote)) != NULL) {
		if (xs_out_route_addrs(p, r) == -1 || xs_out_try(p) == -1) {
			xs_out_unreachable(p);
			return -1;
		}
		return 0;
	}
	if ((p->dns = xs_out_dns_start(p)) == NULL) {
		snprintf(p->last_why, sizeof(p->last_why), "cannot start a DNS lookup");
		xs_out_unreachable(p);
		return -1;
	}
	return 0;
}

/* Authenticated: everything waiting goes out. */
static void
xs_out_ready(struct xs_stream *st)
{
	struct xs_peer *p = st->peer;
	struct xs_item *it;
	size_t n = 0;

	if (p == NULL)
		return;
	st->authed_out = 1;
	XS_LOG(st->s, IMGW_LOG_NOTICE, "s2s outbound stream %s -> %s (%s) authenticated%s",
	    p->local, p->remote, st->addr, st->tls_done ? " over TLS" : " in clear text");
	XS_COUNT(st->s, "s2s-outbound-authenticated");
	while ((it = p->q) != NULL && st->phase == XS_OPEN) {
		p->q = it->next;
		p->qlen--;
		xs_stream_write(st, it->text, it->len);
		xs_item_free(it);
		n++;
	}
	if (p->q == NULL)
		p->q_tail = NULL;
	if (n > 0)
		XS_COUNT(st->s, "s2s-queue-flushes");
	if (st->phase == XS_OPEN)
		xs_stream_timeout(st, XS_IDLE_MS);
}

/*
 * One serialized stanza for the link.  `el` gives the addressing a bounce
 * needs.  Returns 0 (written or queued), -1 out of memory or queue full.
 */
int
xs_out_queue(struct xs_peer *p, const char *text, size_t len, xmpp_stanza_t *el)
{
	const char *type = xmpp_stanza_get_type(el), *name = xmpp_stanza_get_name(el);
	const char *id = xmpp_stanza_get_id(el);
	struct xs_item *it;

	if (p->st != NULL && p->st->authed_out && p->st->phase == XS_OPEN) {
		xs_stream_write(p->st, text, len);
		if (p->st != NULL && p->st->phase == XS_OPEN)
			xs_stream_timeout(p->st, XS_IDLE_MS);
		return 0;
	}
	if (p->qlen >= XS_QUEUE_MAX)
		return -1;
	if ((it = calloc(1, sizeof(*it) + len + 1)) == NULL)
		return -1;
	it->from = strdup(xmpp_stanza_get_from(el) ? xmpp_stanza_get_from(el) : "");
	it->to = strdup(xmpp_stanza_get_to(el) ? xmpp_stanza_get_to(el) : "");
	it->id = id ? strdup(id) : NULL;
	if (it->from == NULL || it->to == NULL || (id != NULL && it->id == NULL)) {
		xs_item_free(it);
		return -1;
	}
	it->bounce = !(type != NULL && (strcmp(type, "error") == 0 ||
	    strcmp(type, "result") == 0));
	it->kind = name && strcmp(name, "presence") == 0 ? XC_ST_PRESENCE : XC_ST_MESSAGE;
	it->len = len;
	memcpy(it->text, text, len);
	if (p->q_tail != NULL)
		p->q_tail->next = it;
	else
		p->q = it;
	p->q_tail = it;
	p->qlen++;
	(void)xs_out_ensure(p);
	return 0;
}

static void
xs_out_send_verifies(struct xs_stream *st)
{
	struct xs_verify *v;

	if (st->peer == NULL)
		return;
	for (v = st->peer->verify; v != NULL && st->phase == XS_OPEN; v = v->next) {
		if (v->sent)
			continue;
		v->sent = 1;
		xs_stream_printf(st, "<db:verify from='%s' to='%s' id='%s'>%s</db:verify>",
		    v->to, v->from, v->in_id, v->key);
	}
}

/* Ask the link's peer (authoritative for p->remote) whether `key` is its
 * key for our inbound stream `in_id`. */
void
xs_out_verify(struct xs_peer *p, const char *in_id, const char *key)
{
	struct xs_verify *v;
	size_t n = strlen(key);

	if ((v = calloc(1, sizeof(*v) + n + 1)) == NULL) {
		xs_in_verified(p->s, in_id, p->remote, p->local, 0);
		return;
	}
	snprintf(v->in_id, sizeof(v->in_id), "%s", in_id);
	memcpy(v->from, p->remote, sizeof(v->from));
	memcpy(v->to, p->local, sizeof(v->to));
	memcpy(v->key, key, n + 1);
	v->next = p->verify;
	p->verify = v;
	if (p->st != NULL && p->st->features_seen && p->st->phase == XS_OPEN)
		xs_out_send_verifies(p->st);
	else
		(void)xs_out_ensure(p);
}

void
xs_out_connected(struct xs_stream *st)
{
	st->tcp_up = 1;
	xs_stream_header(st, st->local, st->remote, NULL);
}

void
xs_out_header(struct xs_stream *st, const char **attrs)
{
	const char *id = NULL, *version = NULL;
	int i;

	for (i = 0; attrs[i] != NULL && attrs[i + 1] != NULL; i += 2) {
		if (strcmp(attrs[i], "id") == 0)
			id = attrs[i + 1];
		else if (strcmp(attrs[i], "version") == 0)
			version = attrs[i + 1];
	}
	if (version == NULL || strncmp(version, "1.", 2) != 0) {
		xs_stream_error(st, "unsupported-version", "XMPP 1.0 streams only");
		return;
	}
	if (id == NULL || strlen(id) >= sizeof(st->id) || strpbrk(id, "<&'\"") != NULL) {
		xs_stream_error(st, "invalid-id", "a stream id of at most 47 characters");
		return;
	}
	memcpy(st->id, id, strlen(id) + 1);
	st->features_seen = 0;
}

void
xs_out_tls_done(struct xs_stream *st)
{
	char why[200];

	XS_COUNT(st->s, "s2s-tls-outbound");
	if ((st->s->tls_verify && !xs_tls_peer_ok(st, st->remote, why, sizeof(why))) ||
	    !xs_tls_pin_ok(st, st->remote, why, sizeof(why))) {
		XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: refusing outbound stream to %s (%s): "
		    "%s (tls-verify = %s)", st->remote, st->addr, why,
		    st->s->tls_verify ? "yes" : "no");
		XS_COUNT(st->s, "s2s-cert-refused");
		if (st->peer != NULL) {
			char text[640];

			snprintf(text, sizeof(text), "certificate of %s refused: %s",
			    st->remote, why);
			xs_out_fail(st->peer, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, text);
		}
		xs_stream_kill(st, "certificate refused");
		return;
	}
	xs_stream_header(st, st->local, st->remote, NULL);
}

static int
xs_out_has_child(xmpp_stanza_t *el, const char *name, const char *ns)
{
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name_and_ns(el, name, ns);

	return c != NULL;
}

/* Does the mechanisms list offer EXTERNAL? */
static int
xs_out_offers_external(xmpp_stanza_t *features)
{
	xmpp_stanza_t *m = xmpp_stanza_get_child_by_name_and_ns(features, "mechanisms",
	    XS_NS_SASL), *c;
	char *t;
	int yes = 0;

	for (c = m ? xmpp_stanza_get_children(m) : NULL; c != NULL && !yes;
	    c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "mechanism") != 0)
			continue;
		if ((t = xmpp_stanza_get_text(c)) != NULL) {
			yes = strcmp(t, "EXTERNAL") == 0;
			xmpp_free(xmpp_stanza_get_context(c), t);
		}
	}
	return yes;
}

static void
xs_out_dialback(struct xs_stream *st)
{
	char key[65];

	xs_db_key(st->s, st->remote, st->local, st->id, key);
	if (key[0] == '\0') {
		xs_stream_error(st, "internal-server-error", "cannot make a dialback key");
		return;
	}
	st->auth_sent = 1;
	xs_stream_printf(st, "<db:result from='%s' to='%s'>%s</db:result>", st->local,
	    st->remote, key);
}

static void
xs_out_features(struct xs_stream *st, xmpp_stanza_t *el)
{
	struct xs *s = st->s;
	unsigned char b64[4 * ((XS_DOMAIN_MAX + 2) / 3) + 4];

	st->features_seen = 1;
	if (!st->tls_done && xs_out_has_child(el, "starttls", XS_NS_TLS)) {
		xs_stream_printf(st, "<starttls xmlns='" XS_NS_TLS "'/>");
		return;
	}
	if (!st->tls_done && (!s->allow_plaintext || xs_pin_has(s, st->remote))) {
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: %s (%s) offers no STARTTLS and %s",
		    st->remote, st->addr, s->allow_plaintext ? "its certificate is pinned"
		    : "allow-plaintext is off");
		if (st->peer != NULL)
			xs_out_fail(st->peer, IMGW_ERR_REMOTE_SERVER_NOT_FOUND,
			    "the peer offers no TLS");
		xs_stream_error(st, "policy-violation", "TLS is required");
		return;
	}
	xs_out_send_verifies(st);
	if (st->phase != XS_OPEN)
		return;
	if (st->authed_out) {
		/* the stream restarted after SASL */
		xs_out_ready(st);
		return;
	}
	if (st->auth_sent)
		return;
	if (st->tls_done && s->sasl_external && s->tls_cert != NULL &&
	    !st->external_failed && xs_out_offers_external(el)) {
		EVP_EncodeBlock(b64, (const unsigned char *)st->local, (int)strlen(st->local));
		st->auth_sent = 1;
		xs_stream_printf(st, "<auth xmlns='" XS_NS_SASL "' mechanism='EXTERNAL'>%s"
		    "</auth>", (char *)b64);
		return;
	}
	xs_out_dialback(st);
}

/* The peer's answer to a db:verify we sent for one of our inbound streams. */
static void
xs_out_db_verify(struct xs_stream *st, xmpp_stanza_t *el)
{
	const char *id = xmpp_stanza_get_id(el);
	struct xs_verify **vp, *v;
	struct xs_peer *p = st->peer;

	if (p == NULL || id == NULL)
		return;
	for (vp = &p->verify; (v = *vp) != NULL; vp = &v->next) {
		if (v->sent && strcmp(v->in_id, id) == 0) {
			*vp = v->next;
			xs_in_verified(st->s, v->in_id, v->from, v->to,
			    xs_attr_is(el, "type", "valid"));
			free(v);
			return;
		}
	}
}

void
xs_out_element(struct xs_stream *st, xmpp_stanza_t *el)
{
	const char *name = xmpp_stanza_get_name(el), *ns = xmpp_stanza_get_ns(el);
	char text[640];

	if (name == NULL || ns == NULL) {
		xs_stream_error(st, "invalid-namespace", NULL);
		return;
	}
	if (strcmp(ns, XS_NS_STREAM) == 0 && strcmp(name, "features") == 0) {
		xs_out_features(st, el);
	} else if (strcmp(ns, XS_NS_STREAM) == 0 && strcmp(name, "error") == 0) {
		xmpp_stanza_t *c = xmpp_stanza_get_children(el);

		while (c != NULL && !xmpp_stanza_is_tag(c))
			c = xmpp_stanza_get_next(c);
		snprintf(text, sizeof(text), "stream error from %s: %s", st->remote,
		    c ? xmpp_stanza_get_name(c) : "?");
		XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: %s", text);
		if (st->peer != NULL && !st->authed_out)
			xs_out_fail(st->peer, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, text);
		xs_stream_kill(st, text);
	} else if (strcmp(ns, XS_NS_TLS) == 0 && strcmp(name, "proceed") == 0) {
		st->tls_start = 1;
	} else if (strcmp(ns, XS_NS_TLS) == 0) {
		XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: %s refused STARTTLS", st->remote);
		if (st->peer != NULL)
			xs_out_fail(st->peer, IMGW_ERR_REMOTE_SERVER_NOT_FOUND,
			    "the peer refused STARTTLS");
		xs_stream_kill(st, "STARTTLS refused");
	} else if (strcmp(ns, XS_NS_SASL) == 0 && strcmp(name, "success") == 0) {
		st->authed_out = 1;
		st->restart = 1;
		xs_stream_header(st, st->local, st->remote, NULL);
	} else if (strcmp(ns, XS_NS_SASL) == 0 && strcmp(name, "failure") == 0) {
		XS_LOG(st->s, IMGW_LOG_INFO, "s2s: %s refused SASL EXTERNAL for %s; "
		    "trying dialback", st->remote, st->local);
		st->external_failed = 1;
		xs_out_dialback(st);
	} else if (strcmp(ns, XS_NS_DB) == 0 && strcmp(name, "result") == 0) {
		if (xs_attr_is(el, "type", "valid")) {
			xs_out_ready(st);
		} else {
			snprintf(text, sizeof(text), "%s refused our dialback for %s",
			    st->remote, st->local);
			XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: %s", text);
			if (st->peer != NULL)
				xs_out_fail(st->peer, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, text);
			xs_stream_close(st, "dialback refused");
		}
	} else if (strcmp(ns, XS_NS_DB) == 0 && strcmp(name, "verify") == 0) {
		xs_out_db_verify(st, el);
	} else {
		/* stanzas on our outbound stream: we offered no bidi (XEP-0288) */
		XS_LOG(st->s, IMGW_LOG_INFO, "s2s: ignoring <%s/> from %s on our outbound "
		    "stream", name, st->remote);
	}
}

/* The link's stream is gone (or closing): detach it; what still waits is
 * answered by the bounce timer. */
void
xs_out_lost(struct xs_stream *st, const char *why)
{
	struct xs_peer *p = st->peer;
	struct xs_verify *v;

	if (p == NULL)
		return;
	st->peer = NULL;
	if (p->st == st)
		p->st = NULL;
	for (v = p->verify; v != NULL; v = v->next)
		v->sent = 0;
	if (!st->tcp_up && p->st == NULL && p->addr_next < p->naddrs) {
		/* RFC 6120 3.2.1: the next address (SRV target) */
		snprintf(p->last_why, sizeof(p->last_why), "%.200s: %.300s", st->addr,
		    why ? why : "connect failed");
		XS_LOG(p->s, IMGW_LOG_INFO, "s2s: %s; trying %s", p->last_why,
		    p->addrs[p->addr_next].text);
		if (xs_out_try(p) == 0)
			return;
		why = p->last_why;
	}
	if (p->q != NULL || p->verify != NULL) {
		if (p->bounce_cond == NULL)
			xs_out_fail(p, strstr(why ? why : "", "timeout") ||
			    strstr(why ? why : "", "too long")
			    ? IMGW_ERR_REMOTE_SERVER_TIMEOUT
			    : IMGW_ERR_REMOTE_SERVER_NOT_FOUND,
			    why ? why : "the stream to the peer failed");
		else if (p->timer == NULL)
			p->timer = p->s->x->host->timer_add(p->s->x->inst, 0,
			    xs_out_bounce_cb, p);
	}
}

void
xs_peers_free(struct xs *s)
{
	struct xs_peer *p;
	struct xs_item *it;
	struct xs_verify *v;

	while ((p = s->peers) != NULL) {
		s->peers = p->next;
		if (p->timer != NULL)
			s->x->host->timer_del(p->timer);
		plug_dns_cancel(p->dns);
		if (p->st != NULL) {
			p->st->peer = NULL;
			xs_stream_kill(p->st, "stopping");
		}
		if (p->qlen > 0)
			XS_LOG(s, IMGW_LOG_WARNING, "s2s: stopping with %zu stanzas for %s "
			    "not sent", p->qlen, p->remote);
		while ((it = p->q) != NULL) {
			p->q = it->next;
			xs_item_free(it);
		}
		while ((v = p->verify) != NULL) {
			p->verify = v->next;
			free(v);
		}
		free(p);
	}
}
