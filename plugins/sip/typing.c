/*
 * isComposing refresh (RFC 3994 section 4).  An "active" state lasts only
 * its refresh interval:
 *
 *   in   a SIP sender's active state (composing) that is not refreshed
 *        within the document's <refresh> (default 120 s) becomes paused
 *        for the core's side, as the RFC's receiver falls back to idle;
 *        a message or another state from the same sender ends the wait.
 *   out  a composing state from the core's side is sent again every
 *        two thirds of our <refresh> (option iscomposing-refresh, 90 s)
 *        while it lasts, for at most SIP_TYPING_OUT_MAX_S: a client that
 *        vanished while composing must not be typing for ever.
 *
 * One entry per (direction, from, to), in a small chained hash table;
 * at most SIP_TYPING_MAX entries (beyond, states cross without refresh
 * handling, counted typing-untracked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

#define SIP_TYPING_BUCKETS	1024
#define SIP_TYPING_MAX		10000
#define SIP_TYPING_RESEND_S(sc)	((sc)->isc_refresh_s * 2 / 3)
#define SIP_TYPING_OUT_MAX_S	600

struct sip_typing {
	struct sipc *sc;
	int out;			/* 1: core -> SIP; 0: SIP -> core */
	char *from, *to;
	unsigned rounds;		/* out: resends so far */
	struct imgw_timer *timer;
	struct sip_typing *hnext;
};

static size_t
sip_typing_hash(int out, const char *from, const char *to)
{
	uint32_t h = 2166136261u ^ (uint32_t)out;
	const unsigned char *s;

	for (s = (const unsigned char *)from; *s != '\0'; s++)
		h = (h ^ *s) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (s = (const unsigned char *)to; *s != '\0'; s++)
		h = (h ^ *s) * 16777619u;
	return h % SIP_TYPING_BUCKETS;
}

static struct sip_typing **
sip_typing_slot(struct sipc *sc, int out, const char *from, const char *to)
{
	struct sip_typing **pp;

	pp = &sc->typing[sip_typing_hash(out, from, to)];
	for (; *pp != NULL; pp = &(*pp)->hnext)
		if ((*pp)->out == out && strcmp((*pp)->from, from) == 0 &&
		    strcmp((*pp)->to, to) == 0)
			break;
	return pp;
}

static void
sip_typing_free(struct sipc *sc, struct sip_typing **pp)
{
	struct sip_typing *t = *pp;

	*pp = t->hnext;
	if (t->timer != NULL)
		sc->host->timer_del(t->timer);
	free(t->from);
	free(t->to);
	free(t);
	sc->ntyping--;
}

static void
sip_typing_fire(void *arg)
{
	struct sip_typing *t = arg;
	struct sipc *sc = t->sc;
	struct imgw_event ev;
	const char *cond;
	char err[128];

	t->timer = NULL;
	imgw_event_init(&ev, IMGW_EV_CHATSTATE);
	ev.from = t->from;
	ev.to = t->to;
	if (t->out) {
		/* still composing: say so again before the peer's refresh
		 * interval ends (chat states are fire-and-forget) */
		ev.state = IMGW_CS_COMPOSING;
		if (++t->rounds * SIP_TYPING_RESEND_S(sc) < SIP_TYPING_OUT_MAX_S &&
		    sip_out_deliver(sc, &ev, &cond) == IMGW_OK) {
			SIPC_COUNT(sc, "typing-refreshed");
			t->timer = sc->host->timer_add(sc->inst,
			    SIP_TYPING_RESEND_S(sc) * 1000u, sip_typing_fire, t);
			if (t->timer != NULL)
				return;
		}
	} else {
		/* the SIP sender's refresh did not come: idle (paused) */
		ev.state = IMGW_CS_PAUSED;
		if (sc->host->emit(sc->inst, &ev, err, sizeof(err), NULL) == 0)
			SIPC_COUNT(sc, "typing-expired");
	}
	sip_typing_free(sc, sip_typing_slot(sc, t->out, t->from, t->to));
}

/*
 * A state (or, with composing 0, a message) crossed from `from` to `to`:
 * composing (re)arms the entry's timer for `secs`; anything else ends
 * it.  out: the core -> SIP direction.
 */
static void
sip_typing_note(struct sipc *sc, int out, const char *from, const char *to,
    int composing, unsigned secs)
{
	struct sip_typing **pp, *t;

	if (sc->typing == NULL) {
		if (!composing)
			return;
		if ((sc->typing = calloc(SIP_TYPING_BUCKETS,
		    sizeof(*sc->typing))) == NULL)
			return;
	}
	pp = sip_typing_slot(sc, out, from, to);
	if (!composing) {
		if (*pp != NULL)
			sip_typing_free(sc, pp);
		return;
	}
	if ((t = *pp) == NULL) {
		if (sc->ntyping >= SIP_TYPING_MAX ||
		    (t = calloc(1, sizeof(*t))) == NULL) {
			SIPC_COUNT(sc, "typing-untracked");
			return;
		}
		t->sc = sc;
		t->out = out;
		t->from = strdup(from);
		t->to = strdup(to);
		*pp = t;
		sc->ntyping++;
		if (t->from == NULL || t->to == NULL) {
			sip_typing_free(sc, pp);
			return;
		}
	}
	if (t->timer != NULL)
		sc->host->timer_del(t->timer);
	t->rounds = 0;
	if ((t->timer = sc->host->timer_add(sc->inst, secs * 1000u,
	    sip_typing_fire, t)) == NULL)
		sip_typing_free(sc, pp);
}

void
sip_typing_in(struct sipc *sc, const struct imgw_event *ev, unsigned refresh_s)
{
	if (refresh_s == 0)
		refresh_s = SIP_ISC_DEFAULT_REFRESH_S;
	sip_typing_note(sc, 0, ev->from, ev->to, ev->kind == IMGW_EV_CHATSTATE &&
	    ev->state == IMGW_CS_COMPOSING, refresh_s);
}

void
sip_typing_out(struct sipc *sc, const struct imgw_event *ev)
{
	sip_typing_note(sc, 1, ev->from, ev->to, ev->kind == IMGW_EV_CHATSTATE &&
	    ev->state == IMGW_CS_COMPOSING, SIP_TYPING_RESEND_S(sc));
}

void
sip_typing_free_all(struct sipc *sc)
{
	size_t i;

	if (sc->typing == NULL)
		return;
	for (i = 0; i < SIP_TYPING_BUCKETS; i++)
		while (sc->typing[i] != NULL)
			sip_typing_free(sc, &sc->typing[i]);
	free(sc->typing);
	sc->typing = NULL;
}
