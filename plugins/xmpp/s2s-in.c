/*
 * Inbound s2s streams: a peer server connected to our listener.
 *
 *   header   -> our header (new stream id) + features: STARTTLS (required
 *               unless allow-plaintext), after TLS SASL EXTERNAL (when the
 *               peer's certificate verifies for its domain) and dialback
 *   starttls -> <proceed/>, TLS as server (asking for the peer's
 *               certificate); with tls-verify a certificate that does not
 *               verify ends the stream here, with a log line saying why
 *   auth     -> SASL EXTERNAL: the authorization identity (or the header's
 *               from) must be named by the verified certificate
 *   db:result-> receiving role of dialback: a verified certificate naming
 *               the domain is enough (XEP-0344); otherwise the key is
 *               checked with the domain's authoritative server over our
 *               outbound stream to it (db:verify), unless tls-verify
 *               forbids trusting a stream whose certificate failed
 *   db:verify-> authoritative role: is this key one we sent?
 *   stanzas  -> only from a domain authenticated on this stream
 *               (invalid-from), only to one of local-domains
 *               (host-unknown), then mapped by stanza-in.c like any stanza.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "s2s.h"

static const char *
xs_in_attr(const char **attrs, const char *name)
{
	int i;

	for (i = 0; attrs[i] != NULL && attrs[i + 1] != NULL; i += 2)
		if (strcmp(attrs[i], name) == 0)
			return attrs[i + 1];
	return NULL;
}

/* A DNS domain as we accept it from a peer: [a-z0-9.-], no empty label;
 * lower-cased into out.  -1 otherwise. */
static int
xs_in_domain(const char *in, char *out, size_t outlen)
{
	size_t i, label = 0;

	if (in == NULL || *in == '\0' || strlen(in) >= outlen)
		return -1;
	for (i = 0; in[i]; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = c;
	}
	out[i] = '\0';
	return label > 0 ? 0 : -1;
}

static int
xs_in_is_authed(const struct xs_stream *st, const char *domain)
{
	int i;

	for (i = 0; i < st->nauthed; i++)
		if (strcmp(st->authed[i], domain) == 0)
			return 1;
	return 0;
}

static void
xs_in_add_authed(struct xs_stream *st, const char *domain, const char *how)
{
	if (xs_in_is_authed(st, domain))
		return;
	if (st->nauthed >= XS_AUTHED_MAX) {
		xs_stream_error(st, "policy-violation", "too many domains on one stream");
		return;
	}
	snprintf(st->authed[st->nauthed++], sizeof(st->authed[0]), "%s", domain);
	if (st->remote[0] == '\0')
		snprintf(st->remote, sizeof(st->remote), "%s", domain);
	xs_stream_timeout(st, 0);	/* the peer closes idle streams */
	XS_COUNT(st->s, "s2s-inbound-authenticated");
	XS_LOG(st->s, IMGW_LOG_NOTICE, "s2s inbound stream from %s (%s) authenticated "
	    "by %s%s", domain, st->addr, how, st->tls_done ? " over TLS" : " in clear text");
}

void
xs_in_accept(struct xs *s, int fd, const char *addr)
{
	struct xs_stream *st;

	if (s->nin >= XS_STREAMS_MAX) {
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: refusing %s: %d inbound streams open",
		    addr, s->nin);
		close(fd);
		return;
	}
	if ((st = xs_stream_new(s, XS_IN, fd, addr)) == NULL) {
		close(fd);
		return;
	}
	st->next = s->in;
	s->in = st;
	s->nin++;
	if (xs_stream_watch(st) == -1)
		xs_stream_kill(st, "cannot watch the socket");
}

static void
xs_in_features(struct xs_stream *st)
{
	struct xs *s = st->s;
	char why[200];

	xs_stream_printf(st, "<stream:features>");
	if (!st->tls_done) {
		if (s->srv_ctx != NULL)
			xs_stream_printf(st, "<starttls xmlns='" XS_NS_TLS "'>%s</starttls>",
			    s->allow_plaintext ? "" : "<required/>");
		if (s->allow_plaintext)
			xs_stream_printf(st, "<dialback xmlns='" XS_NS_DB_FEAT "'><errors/>"
			    "</dialback>");
	} else if (!st->sasl_done) {
		if (s->sasl_external && st->remote[0] != '\0' &&
		    xs_tls_peer_ok(st, st->remote, why, sizeof(why)))
			xs_stream_printf(st, "<mechanisms xmlns='" XS_NS_SASL "'>"
			    "<mechanism>EXTERNAL</mechanism></mechanisms>");
		xs_stream_printf(st, "<dialback xmlns='" XS_NS_DB_FEAT "'><errors/></dialback>");
	}
	xs_stream_printf(st, "</stream:features>");
}

void
xs_in_header(struct xs_stream *st, const char **attrs)
{
	struct xs *s = st->s;
	const char *to = xs_in_attr(attrs, "to"), *from = xs_in_attr(attrs, "from");
	const char *version = xs_in_attr(attrs, "version");
	unsigned char rnd[12];
	char dom[XS_DOMAIN_MAX + 1];
	size_t i;

	/* a new stream id for every (re)started stream */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		xs_stream_error(st, "internal-server-error", "no randomness");
		return;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(st->id + 2 * i, 3, "%02x", rnd[i]);
	if (to == NULL) {
		snprintf(st->local, sizeof(st->local), "%s", s->local[0]);
	} else if (xs_in_domain(to, dom, sizeof(dom)) == -1 ||
	    !xs_is_local(s, dom, strlen(dom))) {
		snprintf(st->local, sizeof(st->local), "%s", s->local[0]);
		xs_stream_error(st, "host-unknown", "this server does not serve that domain");
		return;
	} else {
		snprintf(st->local, sizeof(st->local), "%s", dom);
	}
	if (from != NULL && st->remote[0] == '\0' &&
	    xs_in_domain(from, dom, sizeof(dom)) == 0)
		snprintf(st->remote, sizeof(st->remote), "%s", dom);
	if (version == NULL || strncmp(version, "1.", 2) != 0) {
		xs_stream_error(st, "unsupported-version", "XMPP 1.0 streams only");
		return;
	}
	xs_stream_header(st, st->local, st->remote[0] ? st->remote : NULL, st->id);
	xs_in_features(st);
}

/* The TLS handshake finished: with tls-verify the peer's chain must
 * verify (its names are checked per domain later). */
void
xs_in_tls_done(struct xs_stream *st)
{
	char why[200];

	XS_COUNT(st->s, "s2s-tls-inbound");
	if (!xs_tls_pin_ok(st, st->remote, why, sizeof(why))) {
		XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: refusing inbound stream from %s "
		    "(%s): %s", st->remote, st->addr, why);
		XS_COUNT(st->s, "s2s-cert-refused");
		xs_stream_error(st, "not-authorized", why);
		return;
	}
	if (!st->s->tls_verify)
		return;
	if (xs_tls_peer_ok(st, st->remote, why, sizeof(why)))
		return;
	XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: refusing inbound stream from %s (%s): %s "
	    "(tls-verify = yes)", st->remote[0] ? st->remote : "?", st->addr, why);
	XS_COUNT(st->s, "s2s-cert-refused");
	xs_stream_error(st, "not-authorized", why);
}

static void
xs_in_starttls(struct xs_stream *st)
{
	if (st->tls_done || st->s->srv_ctx == NULL) {
		xs_stream_error(st, "policy-violation", "STARTTLS not offered here");
		return;
	}
	xs_stream_printf(st, "<proceed xmlns='" XS_NS_TLS "'/>");
	st->tls_start = 1;
}

static void
xs_in_sasl(struct xs_stream *st, xmpp_stanza_t *el)
{
	char why[200], dom[XS_DOMAIN_MAX + 1];
	unsigned char id[XS_DOMAIN_MAX + 4];
	char *text;
	int n = 0;

	if (strcmp(xmpp_stanza_get_name(el), "auth") != 0 || st->sasl_done || !st->tls_done) {
		xs_stream_error(st, "policy-violation", "unexpected SASL element");
		return;
	}
	if (!xs_attr_is(el, "mechanism", "EXTERNAL") || !st->s->sasl_external) {
		xs_stream_printf(st, "<failure xmlns='" XS_NS_SASL "'><invalid-mechanism/>"
		    "</failure>");
		return;
	}
	text = xmpp_stanza_get_text(el);
	if (text != NULL && *text != '\0' && strcmp(text, "=") != 0) {
		if (strlen(text) > 4 * (XS_DOMAIN_MAX / 3) + 4 ||
		    (n = EVP_DecodeBlock(id, (const unsigned char *)text,
		    (int)strlen(text))) < 0)
			n = -1;
		else
			while (n > 0 && id[n - 1] == '\0')	/* base64 padding */
				n--;
	}
	if (text != NULL)
		xmpp_free(st->s->x->ctx, text);
	if (n < 0) {
		xs_stream_printf(st, "<failure xmlns='" XS_NS_SASL "'><incorrect-encoding/>"
		    "</failure>");
		return;
	}
	id[n] = '\0';
	if (xs_in_domain(n > 0 ? (char *)id : st->remote, dom, sizeof(dom)) == -1) {
		xs_stream_printf(st, "<failure xmlns='" XS_NS_SASL "'><invalid-authzid/>"
		    "</failure>");
		return;
	}
	if (!xs_tls_peer_ok(st, dom, why, sizeof(why))) {
		XS_LOG(st->s, IMGW_LOG_WARNING, "s2s: SASL EXTERNAL for %s (%s) refused: %s",
		    dom, st->addr, why);
		xs_stream_printf(st, "<failure xmlns='" XS_NS_SASL "'><not-authorized/>"
		    "</failure>");
		return;
	}
	xs_stream_printf(st, "<success xmlns='" XS_NS_SASL "'/>");
	st->sasl_done = 1;
	xs_in_add_authed(st, dom, "SASL EXTERNAL");
	st->restart = 1;	/* the peer opens a new stream */
}

/* db:result: the peer asks to be accepted for `from`. */
static void
xs_in_db_result(struct xs_stream *st, xmpp_stanza_t *el)
{
	struct xs *s = st->s;
	const char *from = xmpp_stanza_get_from(el), *to = xmpp_stanza_get_to(el);
	char f[XS_DOMAIN_MAX + 1], t[XS_DOMAIN_MAX + 1], why[200];
	struct xs_peer *p;
	char *key;

	if (xmpp_stanza_get_type(el) != NULL) {
		xs_stream_error(st, "unsupported-stanza-type", "db:result with a type "
		    "on a stream we receive");
		return;
	}
	if (xs_in_domain(from, f, sizeof(f)) == -1 || xs_in_domain(to, t, sizeof(t)) == -1) {
		xs_stream_error(st, "improper-addressing", "db:result needs from and to");
		return;
	}
	if (!xs_is_local(s, t, strlen(t))) {
		xs_stream_error(st, "host-unknown", "this server does not serve that domain");
		return;
	}
	if (xs_is_local(s, f, strlen(f))) {
		xs_stream_error(st, "invalid-from", "that domain is ours");
		return;
	}
	if (!xs_tls_pin_ok(st, f, why, sizeof(why))) {
		/* a pinned domain is never taken on a key alone */
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: refusing %s on inbound stream (%s): %s",
		    f, st->addr, why);
		XS_COUNT(s, "s2s-cert-refused");
		xs_stream_printf(st, "<db:result from='%s' to='%s' type='invalid'/>", t, f);
		xs_stream_error(st, "not-authorized", why);
		return;
	}
	if (st->tls_done && xs_tls_peer_ok(st, f, why, sizeof(why))) {
		/* XEP-0344: the certificate proves the domain already */
		xs_stream_printf(st, "<db:result from='%s' to='%s' type='valid'/>", t, f);
		xs_in_add_authed(st, f, "dialback (certificate)");
		return;
	}
	if (st->tls_done && s->tls_verify) {
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: refusing %s on inbound stream (%s): %s "
		    "(tls-verify = yes)", f, st->addr, why);
		XS_COUNT(s, "s2s-cert-refused");
		xs_stream_printf(st, "<db:result from='%s' to='%s' type='invalid'/>", t, f);
		xs_stream_error(st, "not-authorized", why);
		return;
	}
	if ((key = xmpp_stanza_get_text(el)) == NULL || *key == '\0' ||
	    strlen(key) > 256 || strpbrk(key, "<&'\"") != NULL) {
		if (key != NULL)
			xmpp_free(s->x->ctx, key);
		xs_stream_error(st, "not-authorized", "no usable dialback key");
		return;
	}
	/* ask the authoritative server of f over our outbound stream to it */
	if ((p = xs_peer_get(s, t, f)) == NULL) {
		xmpp_free(s->x->ctx, key);
		xs_stream_printf(st, "<db:result from='%s' to='%s' type='error'><error "
		    "type='cancel'><remote-server-not-found xmlns='" XC_NS_STANZAS "'/>"
		    "</error></db:result>", t, f);
		return;
	}
	XS_LOG(s, IMGW_LOG_DEBUG, "s2s: checking %s's dialback key with its server", f);
	xs_out_verify(p, st->id, key);
	xmpp_free(s->x->ctx, key);
}

/* The authoritative server's answer came back on our outbound stream. */
void
xs_in_verified(struct xs *s, const char *in_id, const char *from, const char *to,
    int valid)
{
	struct xs_stream *st;

	for (st = s->in; st != NULL; st = st->next)
		if (strcmp(st->id, in_id) == 0 && st->phase == XS_OPEN && !st->failed)
			break;
	if (st == NULL)
		return;		/* gone meanwhile */
	xs_stream_printf(st, "<db:result from='%s' to='%s' type='%s'/>", to, from,
	    valid ? "valid" : "invalid");
	if (valid) {
		xs_in_add_authed(st, from, "dialback");
	} else {
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: dialback for %s on inbound stream (%s) "
		    "failed: its server says the key is not its own", from, st->addr);
		xs_stream_error(st, "not-authorized", "dialback failed");
	}
}

/* db:verify: a receiving server asks whether a key is ours. */
static void
xs_in_db_verify(struct xs_stream *st, xmpp_stanza_t *el)
{
	struct xs *s = st->s;
	const char *from = xmpp_stanza_get_from(el), *to = xmpp_stanza_get_to(el);
	const char *id = xmpp_stanza_get_id(el);
	char f[XS_DOMAIN_MAX + 1], t[XS_DOMAIN_MAX + 1], *key;
	int ok;

	if (xmpp_stanza_get_type(el) != NULL)
		return;		/* an answer on the wrong stream: ignore */
	if (xs_in_domain(from, f, sizeof(f)) == -1 || xs_in_domain(to, t, sizeof(t)) == -1 ||
	    id == NULL || strlen(id) > XS_DB_ID_MAX || strpbrk(id, "<&'\"") != NULL) {
		xs_stream_error(st, "improper-addressing", "db:verify needs from, to and id");
		return;
	}
	if (!xs_is_local(s, t, strlen(t))) {
		xs_stream_error(st, "host-unknown", "this server does not serve that domain");
		return;
	}
	key = xmpp_stanza_get_text(el);
	ok = xs_db_check(s, f, t, id, key);
	if (key != NULL)
		xmpp_free(s->x->ctx, key);
	XS_COUNT(s, ok ? "s2s-dialback-verified" : "s2s-dialback-refused");
	if (!ok)
		XS_LOG(s, IMGW_LOG_WARNING, "s2s: %s asked to verify a dialback key for %s "
		    "that we did not make", f, t);
	xs_stream_printf(st, "<db:verify from='%s' to='%s' id='%s' type='%s'/>", t, f, id,
	    ok ? "valid" : "invalid");
}

/* A stanza: its from domain must be authenticated on this stream. */
static void
xs_in_stanza(struct xs_stream *st, xmpp_stanza_t *el)
{
	struct xs *s = st->s;
	char f[XS_DOMAIN_MAX + 1], t[XS_DOMAIN_MAX + 1];
	const char *ns = xmpp_stanza_get_ns(el);

	if (ns == NULL || strcmp(ns, XS_NS_SERVER) != 0) {
		xs_stream_error(st, "invalid-namespace", "stanzas are in jabber:server");
		return;
	}
	if (st->nauthed == 0) {
		xs_stream_error(st, "not-authorized", "stanza before authentication");
		return;
	}
	if (xs_domain_of(xmpp_stanza_get_from(el), f, sizeof(f)) == -1 ||
	    xs_domain_of(xmpp_stanza_get_to(el), t, sizeof(t)) == -1) {
		xs_stream_error(st, "improper-addressing", "a stanza needs from and to");
		return;
	}
	if (!xs_in_is_authed(st, f)) {
		XS_COUNT(s, "s2s-forged-from");
		xs_stream_error(st, "invalid-from", "that from domain is not authenticated "
		    "on this stream");
		return;
	}
	if (!xs_is_local(s, t, strlen(t))) {
		xs_stream_error(st, "host-unknown", "this server does not serve that domain");
		return;
	}
	xc_in_stanza(s->x, el);
}

void
xs_in_element(struct xs_stream *st, xmpp_stanza_t *el)
{
	const char *name = xmpp_stanza_get_name(el), *ns = xmpp_stanza_get_ns(el);

	if (name == NULL)
		return;
	if (ns != NULL && strcmp(ns, XS_NS_STREAM) == 0 && strcmp(name, "error") == 0) {
		xs_stream_kill(st, "stream error from the peer");
		return;
	}
	if (ns != NULL && strcmp(ns, XS_NS_TLS) == 0 && strcmp(name, "starttls") == 0) {
		xs_in_starttls(st);
		return;
	}
	if (!st->tls_done && !st->s->allow_plaintext) {
		xs_stream_error(st, "policy-violation", "STARTTLS is required");
		return;
	}
	if (ns != NULL && strcmp(ns, XS_NS_SASL) == 0) {
		xs_in_sasl(st, el);
		return;
	}
	if (ns != NULL && strcmp(ns, XS_NS_DB) == 0) {
		if (strcmp(name, "result") == 0)
			xs_in_db_result(st, el);
		else if (strcmp(name, "verify") == 0)
			xs_in_db_verify(st, el);
		else
			xs_stream_error(st, "unsupported-stanza-type", NULL);
		return;
	}
	if (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
	    strcmp(name, "iq") == 0) {
		xs_in_stanza(st, el);
		return;
	}
	xs_stream_error(st, "unsupported-stanza-type", NULL);
}
