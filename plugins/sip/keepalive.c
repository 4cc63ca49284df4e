/*
 * Keep-alive of the peers named in `route`: every `keepalive` seconds an
 * OPTIONS with Max-Forwards: 0 (so the next hop answers it itself, RFC
 * 3261 11.1 and 16.3) goes to each route.  Any final response shows the
 * peer is there (483, 404 and 405 included); a transaction timeout or a
 * transport error marks it down, logged once when it goes and once when
 * it comes back, and counted.  It only watches: deliveries are not held
 * back for a peer marked down (their own transactions time out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

struct sip_ka {
	struct sipc *sc;
	size_t route;
	uint64_t gen;
};

static void sip_ka_timer_cb(void *arg);

static void
sip_ka_answer_cb(void *arg, int code, osip_message_t *resp)
{
	struct sip_ka *ka = arg;
	struct sipc *sc = ka->sc;
	struct sip_route *r;
	int down = resp == NULL && (code == 408 || code == 503);

	if (ka->gen != sc->ka_gen || ka->route >= sc->nroutes)
		goto done;	/* from before a stop, or routes changed */
	r = &sc->routes[ka->route];
	if (down && !r->down) {
		SIPC_LOG(sc, IMGW_LOG_NOTICE, "route %s: peer does not answer "
		    "OPTIONS (%d)", r->domain, code);
		SIPC_COUNT(sc, "peer-down");
	} else if (!down && r->down) {
		SIPC_LOG(sc, IMGW_LOG_NOTICE, "route %s: peer answers again (%d)",
		    r->domain, code);
		SIPC_COUNT(sc, "peer-up");
	}
	r->down = down;
	SIPC_COUNT(sc, down ? "keepalive-failed" : "keepalive-ok");
done:
	free(ka);
}

static void
sip_ka_send(struct sipc *sc, size_t i)
{
	const struct sip_route *r = &sc->routes[i];
	char ruri[SIP_HOST_MAX + 80], from[SIP_HOST_MAX + 16], tag[24], cid[80];
	char host[64];
	struct sip_taddr ta;
	struct sip_ka *ka;
	osip_message_t *m;
	int port = 0;

	if (r->ta.len == 0)
		return;		/* a host name: not watched (README) */
	if (sip_net_ntop((const struct sockaddr *)&r->ta.ss, host, sizeof(host),
	    &port) == -1)
		return;
	if (strcmp(r->domain, "*") == 0)
		snprintf(ruri, sizeof(ruri), strchr(host, ':') ? "sip:[%s]:%d" :
		    "sip:%s:%d", host, port);
	else
		snprintf(ruri, sizeof(ruri), "sip:%s", r->domain);
	snprintf(from, sizeof(from), "sip:imgw@%s", sc->adv_host);
	sip_msg_tag(tag, sizeof(tag));
	snprintf(cid, sizeof(cid), "ka-%s@%s", tag, "imgw");
	if ((m = sip_msg_request("OPTIONS", ruri, from, tag, ruri, cid, 1)) == NULL)
		return;
	/* sip_msg_request wrote Max-Forwards: 70; make it 0 */
	{
		osip_header_t *h = NULL;

		if (osip_message_header_get_byname(m, "max-forwards", 0, &h) >= 0 &&
		    h != NULL) {
			osip_free(h->hvalue);
			h->hvalue = osip_strdup("0");
		}
	}
	osip_message_set_header(m, "Accept", SIP_ACCEPT);	/* RFC 3261 11.1 */
	if ((ka = calloc(1, sizeof(*ka))) == NULL) {
		osip_message_free(m);
		return;
	}
	ka->sc = sc;
	ka->route = i;
	ka->gen = sc->ka_gen;
	ta = r->ta;
	if (strcmp(r->domain, "*") != 0 && strlen(r->domain) < sizeof(ta.name))
		memcpy(ta.name, r->domain, strlen(r->domain) + 1);
	if (sip_stack_request(sc->st, m, &ta, sip_ka_answer_cb, ka) == -1)
		free(ka);
}

static void
sip_ka_timer_cb(void *arg)
{
	struct sipc *sc = arg;
	size_t i;

	sc->ka_timer = NULL;	/* fired: the core frees it */
	for (i = 0; i < sc->nroutes; i++)
		sip_ka_send(sc, i);
	sc->ka_timer = sc->host->timer_add(sc->inst, sc->keepalive_s * 1000u,
	    sip_ka_timer_cb, sc);
}

void
sip_ka_start(struct sipc *sc)
{
	sc->ka_gen++;
	if (sc->keepalive_s == 0 || sc->nroutes == 0)
		return;
	sc->ka_timer = sc->host->timer_add(sc->inst, 200, sip_ka_timer_cb, sc);
}

void
sip_ka_stop(struct sipc *sc)
{
	sc->ka_gen++;
	if (sc->ka_timer != NULL) {
		sc->host->timer_del(sc->ka_timer);
		sc->ka_timer = NULL;
	}
}
