/*
 * sip connector: a SIP/SIMPLE community.  See README for the options and
 * what crosses; sip.h for how the files divide the work.
 */
#include <stdlib.h>
#include <string.h>

#include "sip.h"

#ifndef SIP_VERSION
#define SIP_VERSION	IMGW_VERSION
#endif

#define SIP_ALLOW	"MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY"

static const struct imgw_option sip_options[] = {
	{
		.name = "listen",
		.type = IMGW_OPT_STRING,
		.required = 1,
		.help = "where peers reach us: udp:HOST:PORT, tcp:HOST:PORT, "
		    "tls:HOST:PORT, space-separated",
	},
	{
		.name = "advertise",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "HOST[:PORT] put in Via and Contact (NAT, several cards); "
		    "default: the first listen address",
	},
	{
		.name = "route",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "static next hops: DOMAIN=udp|tcp|tls:HOST:PORT[,...] ..., tried "
		    "in order; HOST numeric or a DNS name; DOMAIN * for the default",
	},
	{
		.name = "dns",
		.type = IMGW_OPT_BOOL,
		.def = "yes",
		.help = "find the next hops of domains without a route by DNS (RFC 3263: "
		    "NAPTR, SRV, then A/AAAA)",
	},
	{
		.name = "dns-server",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "DNS server for RFC 3263 lookups, numeric HOST[:PORT] "
		    "(default: the first nameserver of /etc/resolv.conf)",
	},
	{
		.name = "trusted",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "peers allowed to send requests: ADDRESS[/BITS] ...; numeric "
		    "route hosts are always trusted (host names are not); others get 403",
	},
	{
		.name = "tls-cert",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "PEM certificate chain for tls: listeners (also shown as client)",
	},
	{
		.name = "tls-key",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "PEM private key of tls-cert",
	},
	{
		.name = "tls-ca",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "PEM CA bundle that peers' certificates must verify against",
	},
	{
		.name = "tls-verify",
		.type = IMGW_OPT_BOOL,
		.def = "yes",
		.help = "verify TLS servers' certificates and that they name the SIP domain",
	},
	{
		.name = "tls-client-cert",
		.type = IMGW_OPT_BOOL,
		.def = "no",
		.help = "require TLS clients to present a certificate (mutual TLS)",
	},
	{
		.name = "tls-names",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "certificate names (space-separated) trusted like `trusted` hosts",
	},
	{
		.name = "max-message",
		.type = IMGW_OPT_INT,
		.def = "65535",
		.min = 1024,
		.max = 1048576,
		.help = "largest SIP message taken, in bytes (513 beyond)",
	},
	{
		.name = "max-connections",
		.type = IMGW_OPT_INT,
		.def = "1024",
		.min = 1,
		.max = 100000,
		.help = "TCP connections at once",
	},
	{
		.name = "tcp-idle",
		.type = IMGW_OPT_INT,
		.def = "600",
		.min = 1,
		.max = 86400,
		.help = "seconds before an idle TCP connection is closed",
	},
	{
		.name = "max-pending",
		.type = IMGW_OPT_INT,
		.def = "4096",
		.min = 1,
		.max = 1000000,
		.help = "requests waiting for answers before deliveries wait",
	},
	{
		.name = "answer-wait",
		.type = IMGW_OPT_INT,
		.def = "0",
		.min = 0,
		.max = 5000,
		.help = "ms an incoming MESSAGE waits for a routing error before 202",
	},
	{
		.name = "iscomposing-refresh",
		.type = IMGW_OPT_INT,
		.def = "90",
		.min = 10,
		.max = 3600,
		.help = "seconds our isComposing active states last (<refresh>); "
		    "resent after two thirds of it",
	},
	{
		.name = "keepalive",
		.type = IMGW_OPT_INT,
		.def = "0",
		.min = 0,
		.max = 3600,
		.help = "seconds between OPTIONS to each route peer (0: none)",
	},
	{
		.name = "subscribe-expires",
		.type = IMGW_OPT_INT,
		.def = "3600",
		.min = 60,
		.max = 86400,
		.help = "seconds a presence subscription asks for (and grants at most)",
	},
	{
		.name = "max-subscriptions",
		.type = IMGW_OPT_INT,
		.def = "10000",
		.min = 1,
		.max = 1000000,
		.help = "presence subscriptions (both ways) kept at once",
	},
	{ .name = NULL },
};

static void
sip_resume_cb(void *arg)
{
	struct sipc *sc = arg;

	if (sc->again) {
		sc->again = 0;
		sc->host->resume(sc->inst);
	}
}

static int
sip_init(struct imgw_instance *inst, const struct imgw_host *host, void **priv_r)
{
	struct sipc *sc;

	if ((sc = calloc(1, sizeof(*sc))) == NULL) {
		host->log(inst, IMGW_LOG_ERR, NULL, "out of memory");
		return -1;
	}
	sc->inst = inst;
	sc->host = host;
	if (sip_opt_parse(sc) == -1)
		goto fail;
	sc->cfg.inst = inst;
	sc->cfg.host = host;
	sc->cfg.adv_host = sc->adv_host;
	sc->cfg.trusted = sc->trusted;
	sc->cfg.ntrusted = sc->ntrusted;
	sc->cfg.max_message = (size_t)host->option_int(inst, "max-message");
	sc->cfg.max_conns = (size_t)host->option_int(inst, "max-connections");
	sc->cfg.tcp_idle_s = (unsigned)host->option_int(inst, "tcp-idle");
	sc->cfg.max_pending = (size_t)host->option_int(inst, "max-pending");
	sc->answer_wait_ms = (unsigned)host->option_int(inst, "answer-wait");
	sc->sub_expires = (unsigned)host->option_int(inst, "subscribe-expires");
	sc->keepalive_s = (unsigned)host->option_int(inst, "keepalive");
	sc->isc_refresh_s = (unsigned)host->option_int(inst, "iscomposing-refresh");
	sc->max_subs = (size_t)host->option_int(inst, "max-subscriptions");
	if (sc->cfg.max_message < 1024 || sc->cfg.max_message > 1048576 ||
	    sc->cfg.max_conns < 1 || sc->cfg.tcp_idle_s < 1 ||
	    sc->cfg.max_pending < 1 || sc->answer_wait_ms > 5000 ||
	    sc->sub_expires < 60 || sc->sub_expires > 86400 || sc->max_subs < 1 ||
	    sc->keepalive_s > 3600) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "option out of range");
		goto fail;
	}
	sc->cfg.allow = SIP_ALLOW;
	sc->cfg.accept = SIP_ACCEPT;
	sc->cfg.user_agent = "imgw/" SIP_VERSION;
	sc->cfg.request_cb = sip_in_request_cb;
	sc->cfg.resume_cb = sip_resume_cb;
	sc->cfg.arg = sc;
	sc->cseq = 1;
	*priv_r = sc;
	return 0;
fail:
	sip_opt_free(sc);
	free(sc);
	return -1;
}

static int
sip_start(void *priv)
{
	struct sipc *sc = priv;

	if (sc->st != NULL) {		/* started before without fini */
		sip_stack_free(sc->st);
		sc->st = NULL;
	}
	if ((sc->st = sip_stack_new(&sc->cfg)) == NULL) {
		SIPC_LOG(sc, IMGW_LOG_ERR, "cannot set up the SIP stack");
		return -1;
	}
	if (sip_stack_start(sc->st) == -1)
		return -1;	/* stop and fini follow */
	SIPC_LOG(sc, IMGW_LOG_INFO, "advertising %s:%d, %zu route(s), %zu "
	    "trusted network(s)", sip_stack_adv_host(sc->st),
	    sip_stack_adv_port(sc->st), sc->nroutes, sc->ntrusted);
	sc->stopping = 0;
	sip_sub_store_load(sc);		/* subscriptions of an earlier run */
	sip_ka_start(sc);
	sc->host->ready(sc->inst);
	return 0;
}

/* `ev` is borrowed for the call; out.c copies what the answer needs. */
static int
sip_deliver(void *priv, const struct imgw_event *ev, const char **condition_r)
{
	struct sipc *sc = priv;

	int rc;

	switch (ev->kind) {
	case IMGW_EV_MESSAGE:
	case IMGW_EV_CHATSTATE:
		if ((rc = sip_out_deliver(sc, ev, condition_r)) == IMGW_OK)
			sip_typing_out(sc, ev);
		return rc;
	case IMGW_EV_ERROR:
		if (sip_in_error_event(sc, ev) == -1)
			SIPC_COUNT(sc, "errors-after-accept");
		return IMGW_OK;
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_PROBE:
		/* a watcher of ours and a SIP presentity */
		return sip_subout_deliver(sc, ev, condition_r);
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBED:
	case IMGW_EV_PRESENCE:
		/* a presentity of ours and a SIP watcher */
		return sip_subin_deliver(sc, ev, condition_r);
	default:
		SIPC_COUNT(sc, "dropped-unsupported");
		return IMGW_OK;
	}
}

/*
 * quiesce (ABI 1.2): before a restart, removal or shutdown, the MESSAGEs
 * sent for the core's messages get their answers — the peer may well
 * take them — instead of failing with 503 at stop.  Chat states are
 * fire-and-forget, and subscription requests are not waited for: their
 * state is in the store and the next start carries on.  The stack keeps
 * running meanwhile; sc->pend is looked at every 20 ms.
 */
static void
sip_quiesce_poll(void *arg)
{
	struct sipc *sc = arg;
	const struct sip_pend *p;

	sc->quiesce_timer = NULL;
	for (p = sc->pend; p != NULL && p->kind != IMGW_EV_MESSAGE; p = p->next)
		;
	if (p == NULL) {
		sc->host->quiesced(sc->inst);
		return;
	}
	sc->quiesce_timer = sc->host->timer_add(sc->inst, 20, sip_quiesce_poll, sc);
}

static void
sip_quiesce(void *priv)
{
	sip_quiesce_poll(priv);
}

static void
sip_stop(void *priv)
{
	struct sipc *sc = priv;

	if (sc->quiesce_timer != NULL) {
		sc->host->timer_del(sc->quiesce_timer);
		sc->quiesce_timer = NULL;
	}
	sip_ka_stop(sc);
	sip_in_holds_free(sc);
	/* subscriptions stay in the store (if there is one) and are picked
	 * up by the next start; nothing is sent to the peers */
	sc->stopping = 1;
	sip_sub_free_all(sc);
	sip_typing_free_all(sc);
	if (sc->st != NULL)
		sip_stack_stop(sc->st);
	sc->again = 0;
}

static void
sip_fini(void *priv)
{
	struct sipc *sc = priv;

	sip_ka_stop(sc);
	sip_in_holds_free(sc);
	sip_sub_free_all(sc);
	sip_typing_free_all(sc);
	sip_stack_free(sc->st);		/* runs the last answer callbacks */
	sip_out_free(sc);
	sip_opt_free(sc);
	free(sc);
}

static const struct imgw_connector sip_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "sip",
	.version = SIP_VERSION,
	.description = "SIP/SIMPLE (RFC 3428 MESSAGE, RFC 3994, RFC 3856 "
	    "presence) over UDP, TCP, TLS",
	.options = sip_options,
	.init = sip_init,
	.start = sip_start,
	.deliver = sip_deliver,
	.stop = sip_stop,
	.fini = sip_fini,
	.quiesce = sip_quiesce,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &sip_connector;
}
