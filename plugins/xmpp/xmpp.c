/*
 * xmpp connector: an XMPP community reached as an external component
 * (XEP-0114) of its server, on libstrophe.  See README for the options,
 * the address mapping and what crosses; xmpp.h for how the files divide
 * the work.
 */
#include <stdlib.h>
#include <string.h>

#include "xmpp.h"
#include "s2s.h"

#ifndef XC_VERSION
#define XC_VERSION	IMGW_VERSION
#endif

static const struct imgw_option xc_options[] = {
	{
		.name = "mode",
		.type = IMGW_OPT_STRING,
		.help = "how imgw attaches to the XMPP community: component (XEP-0114, "
		    "the default) or s2s (RFC 6120 server-to-server)",
	},
	{
		.name = "profile",
		.type = IMGW_OPT_STRING,
		.help = "preset defaults: gtalk (s2s, domains gmail.com googlemail.com)",
	},
	{
		.name = "server",
		.type = IMGW_OPT_STRING,
		.def = "127.0.0.1",
		.help = "host name or address of the XMPP server's component port",
	},
	{
		.name = "port",
		.type = IMGW_OPT_INT,
		.def = "5347",
		.min = 1,
		.max = 65535,
		.help = "the XMPP server's component port",
	},
	{
		.name = "component",
		.type = IMGW_OPT_STRING,
		.help = "component mode: the component's domain, one of the community's "
		    "domains",
	},
	{
		.name = "secret",
		.type = IMGW_OPT_STRING,
		.help = "the component secret shared with the server",
	},
	{
		.name = "secret-file",
		.type = IMGW_OPT_STRING,
		.help = "a file whose first line is the component secret",
	},
	{
		.name = "reconnect-min",
		.type = IMGW_OPT_INT,
		.def = "1000",
		.min = 10,
		.max = 3600000,
		.help = "first reconnect delay in ms, doubled after each failure",
	},
	{
		.name = "reconnect-max",
		.type = IMGW_OPT_INT,
		.def = "30000",
		.min = 10,
		.max = 3600000,
		.help = "longest reconnect delay in ms",
	},
	{
		.name = "max-stanza",
		.type = IMGW_OPT_INT,
		.def = "262144",
		.min = 1024,
		.max = 16777216,
		.help = "largest stanza taken from or sent to the server, in bytes",
	},
	/* server-to-server mode (s2s.c) */
	{
		.name = "local-domains",
		.type = IMGW_OPT_STRING,
		.help = "s2s: the domains imgw serves on the XMPP network (other "
		    "communities' domains)",
	},
	{
		.name = "listen",
		.type = IMGW_OPT_LISTEN,
		.def = "tcp:*:5269",
		.help = "s2s: where peer servers connect (tcp:HOST:PORT)",
	},
	{
		.name = "peer",
		.type = IMGW_OPT_STRING,
		.help = "s2s: static routes DOMAIN=HOST[:PORT] ... for peer domains",
	},
	{
		.name = "tls-cert",
		.type = IMGW_OPT_STRING,
		.help = "s2s: PEM certificate (chain) naming the local-domains",
	},
	{
		.name = "tls-key",
		.type = IMGW_OPT_STRING,
		.help = "s2s: PEM private key of tls-cert (default: in tls-cert)",
	},
	{
		.name = "tls-ca",
		.type = IMGW_OPT_STRING,
		.help = "s2s: PEM CA file for peer certificates (default: system store)",
	},
	{
		.name = "dns-server",
		.type = IMGW_OPT_STRING,
		.help = "s2s: DNS server for SRV and A/AAAA lookups, numeric HOST[:PORT] "
		    "(default: the first nameserver of /etc/resolv.conf)",
	},
	{
		.name = "pin",
		.type = IMGW_OPT_STRING,
		.help = "s2s: pinned peer certificates DOMAIN=sha256:VALUE ... (SHA-256 "
		    "of the key (SPKI) or certificate, base64 or hex)",
	},
	{
		.name = "tls-verify",
		.type = IMGW_OPT_BOOL,
		.def = "yes",
		.help = "s2s: refuse peers whose certificate does not verify",
	},
	{
		.name = "allow-plaintext",
		.type = IMGW_OPT_BOOL,
		.def = "no",
		.help = "s2s: allow streams without TLS (loopback tests only)",
	},
	{
		.name = "sasl-external",
		.type = IMGW_OPT_BOOL,
		.def = "yes",
		.help = "s2s: offer and use SASL EXTERNAL when certificates verify",
	},
	{
		.name = "dialback-secret",
		.type = IMGW_OPT_STRING,
		.help = "s2s: dialback secret shared by nodes (default: random)",
	},
	{ .name = NULL },
};

/* A DNS name as a component domain: lower-case letters, digits, '-' and
 * non-empty dot-separated labels. */
static int
xc_domain_ok(const char *d)
{
	size_t label = 0, n = 0;

	for (; *d; d++, n++) {
		if (*d == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') || *d == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return n > 0 && n <= 253 && label > 0;
}

/* libstrophe's global set-up, once per process.  xmpp_shutdown() is never
 * called: it tears down OpenSSL state that others in the process may use,
 * and there is nothing else to release. */
static void
xc_library_init(void)
{
	static int done;

	if (!done) {
		xmpp_initialize();
		done = 1;
	}
}

/*
 * The mode, from `mode` and `profile`.  A profile only changes defaults:
 * gtalk is s2s federation with Google's domains, which the core's
 * `domains` key must list (the connector cannot set a core key; it checks
 * and says what to add).
 */
static int
xc_mode(struct xc *x, const char **mode_r)
{
	const char *mode = x->host->option(x->inst, "mode");
	const char *profile = x->host->option(x->inst, "profile");

	if (profile != NULL && strcmp(profile, "gtalk") != 0) {
		XC_LOG(x, IMGW_LOG_ERR, "profile = %s: the only profile is gtalk", profile);
		return -1;
	}
	if (mode == NULL)
		mode = profile != NULL ? "s2s" : "component";
	if (strcmp(mode, "component") != 0 && strcmp(mode, "s2s") != 0) {
		XC_LOG(x, IMGW_LOG_ERR, "mode = %s: want component or s2s", mode);
		return -1;
	}
	if (profile != NULL) {
		if (strcmp(mode, "s2s") != 0) {
			XC_LOG(x, IMGW_LOG_ERR, "profile = gtalk federates server to "
			    "server: remove mode = %s", mode);
			return -1;
		}
		if (!x->host->owns_domain(x->inst, "gmail.com") ||
		    !x->host->owns_domain(x->inst, "googlemail.com")) {
			XC_LOG(x, IMGW_LOG_ERR, "profile = gtalk: the community's domains "
			    "must include gmail.com and googlemail.com");
			return -1;
		}
	}
	*mode_r = mode;
	return 0;
}

static int
xc_init(struct imgw_instance *inst, const struct imgw_host *host, void **priv_r)
{
	const char *mode, *comp;
	struct xc *x;
	char *p;

	if ((x = calloc(1, sizeof(*x))) == NULL) {
		host->log(inst, IMGW_LOG_ERR, NULL, "out of memory");
		return -1;
	}
	x->inst = inst;
	x->host = host;
	x->fd = -1;
	x->max_stanza = (size_t)host->option_int(inst, "max-stanza");
	if (x->max_stanza < 1024) {
		XC_LOG(x, IMGW_LOG_ERR, "max-stanza must be at least 1024");
		goto fail;
	}
	if (xc_mode(x, &mode) == -1)
		goto fail;
	if (strcmp(mode, "s2s") == 0) {
		if (xs_init(x) == -1)
			goto fail;
		/* the stanza code answers for "the gateway" with this domain */
		if ((x->component = strdup(x->s2s->local[0])) == NULL)
			goto fail;
		xc_library_init();
		*priv_r = x;
		return 0;
	}
	x->server = host->option(inst, "server");
	x->port = (unsigned short)host->option_int(inst, "port");
	comp = host->option(inst, "component");
	if (x->server == NULL || *x->server == '\0' || x->port == 0) {
		XC_LOG(x, IMGW_LOG_ERR, "server and port must be set");
		goto fail;
	}
	if (comp == NULL || (x->component = strdup(comp)) == NULL) {
		XC_LOG(x, IMGW_LOG_ERR, "component is not set (mode = component needs it)");
		goto fail;
	}
	for (p = x->component; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!xc_domain_ok(x->component)) {
		XC_LOG(x, IMGW_LOG_ERR, "component = %s: not a domain name", comp);
		goto fail;
	}
	if (!host->owns_domain(inst, x->component)) {
		XC_LOG(x, IMGW_LOG_ERR, "component = %s is not one of the community's "
		    "domains: add it to `domains` (with the XMPP server's user "
		    "domains)", x->component);
		goto fail;
	}
	x->secret = host->option(inst, "secret");
	x->secret_file = host->option(inst, "secret-file");
	if ((x->secret == NULL) == (x->secret_file == NULL)) {
		XC_LOG(x, IMGW_LOG_ERR, "set exactly one of secret and secret-file");
		goto fail;
	}
	x->backoff_min = (unsigned int)host->option_int(inst, "reconnect-min");
	x->backoff_max = (unsigned int)host->option_int(inst, "reconnect-max");
	if (x->backoff_min < 10 || x->backoff_max < x->backoff_min) {
		XC_LOG(x, IMGW_LOG_ERR, "reconnect-min (%u) must be at least 10 and "
		    "not above reconnect-max (%u)", x->backoff_min, x->backoff_max);
		goto fail;
	}
	xc_library_init();
	*priv_r = x;
	return 0;

fail:
	xs_fini(x);
	if (x->ctx != NULL)
		xmpp_ctx_free(x->ctx);
	free(x->component);
	free(x);
	return -1;
}

static int
xc_start(void *priv)
{
	struct xc *x = priv;
	int later;

	if (x->s2s != NULL) {
		/* ready at once: links open on demand; until the stored
		 * subscriptions are read, subscribes and probes cross */
		if (xc_subs_start(x, NULL) == -1)
			return -1;
		return xs_start(x);
	}
	/* the component connects once the stored subscriptions are known,
	 * so that the first stanzas are answered from them; host->ready
	 * follows when the handshake succeeds (conn.c) */
	if ((later = xc_subs_start(x, xc_conn_go)) == -1)
		return -1;
	return xc_conn_start(x, later);
}

static int
xc_deliver(void *priv, const struct imgw_event *ev, const char **condition_r)
{
	return xc_out_event(priv, ev, condition_r);
}

static void
xc_stop(void *priv)
{
	struct xc *x = priv;

	x->again = 0;
	xc_subs_stop(x);
	if (x->s2s != NULL) {
		xs_stop(x);
		return;
	}
	xc_conn_stop(x);
}

static void
xc_fini(void *priv)
{
	struct xc *x = priv;

	xs_fini(x);		/* streams hold stanzas of the context */
	xc_conn_free(x);
	xc_outq_free(x);
	xc_subs_free(x);
	free(x->component);
	free(x);
}

static const struct imgw_connector xc_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "xmpp",
	.version = XC_VERSION,
	.description = "XMPP communities through an external component "
	    "(XEP-0114) of their server, or server-to-server (RFC 6120)",
	.options = xc_options,
	.init = xc_init,
	.start = xc_start,
	.deliver = xc_deliver,
	.stop = xc_stop,
	.fini = xc_fini,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &xc_connector;
}
