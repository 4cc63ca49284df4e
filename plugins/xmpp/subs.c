/*
 * Presence subscriptions (RFC 6121) that cross the gateway, kept in the
 * core's store (ABI 1.1 sub_put / sub_del / sub_list), and the last
 * presence forwarded from each contact of another community to each XMPP
 * watcher: what the gateway answers from its own knowledge.
 *
 * A subscription is (watcher, presentity), both bare canonical addresses:
 *
 *   subscribe     watcher -> presentity   pending (unless already active)
 *   subscribed    presentity -> watcher   active
 *   unsubscribe   watcher -> presentity   forgotten (sub_del)
 *   unsubscribed  presentity -> watcher   forgotten (sub_del)
 *
 * A terminated subscription behaves as none (RFC 6121 state "None"), so it
 * is deleted rather than kept as "terminated".  Changes are recorded once
 * the event has crossed (emit took it, or the stanza was written), so a
 * refused request leaves no trace.  What the gateway answers itself:
 *
 *   - a subscribe for an active subscription, either way: "subscribed"
 *     from the presentity, without asking the other side again (RFC 6121
 *     3.1.3: the contact's server auto-replies when it already approved);
 *   - a probe from the XMPP side for a contact of another community
 *     (RFC 6121 4.3.2): with an active subscription, the last presence
 *     forwarded from each of the contact's resources to that watcher (an
 *     unavailable presence when none is known or none is available), and
 *     the probe is forwarded too, so the other side can refresh it; without
 *     one, an unavailable presence, nothing forwarded.  4.3.2 says
 *     "unsubscribed" there; the gateway sends "unavailable" because its
 *     knowledge may be incomplete (subscriptions made before the store,
 *     a store write that failed), and an unsubscribed would make the XMPP
 *     server drop a real subscription from the user's roster.
 *
 * The knowledge is authoritative only once the store's list has been read
 * (sub_list at start); before that, and without a store (no sub_* in the
 * host, [store] dsn = none), subscribes and probes cross as they come, as
 * before ABI 1.1.  Last presences are not stored: after a restart they are
 * unknown until the contact's next presence.
 *
 * Memory: subscriptions up to XC_SUBS_MAX (beyond that, new ones are not
 * remembered and cross unanswered), last presences up to XC_PRES_MAX
 * (the least recently updated one goes).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp.h"

#define XC_SUBS_BUCKETS		4096
#define XC_SUBS_MAX		100000
#define XC_PRES_MAX		8192
#define XC_SUBS_ADDR_MAX	512	/* the store's limit per address */
#define XC_ANSWERS_MAX		1024	/* deferred answers to the core */
#define XC_SUBS_LOAD_WAIT_MS	5000	/* the component waits this long for the list */

struct xc_sub {
	struct xc_sub *next;		/* bucket chain */
	int active;			/* else pending */
	char *presentity;		/* in the same allocation as watcher */
	char watcher[];
};

struct xc_pres {
	struct xc_pres *next;		/* bucket chain */
	struct xc_pres *older, *newer;	/* eviction order */
	unsigned int bucket;
	enum imgw_show show;
	int priority;
	char *watcher, *presentity;	/* bare watcher, full presentity */
	char *status, *lang;		/* NULL when none */
};

/* An answer to the core, emitted from a timer (never inside deliver). */
struct xc_answer {
	struct xc_answer *next;
	enum imgw_kind kind;
	char *from, *to, *id;		/* id may be NULL */
};

struct xc_subs {
	struct xc_sub *sub[XC_SUBS_BUCKETS];
	struct xc_pres *pres[XC_SUBS_BUCKETS];
	struct xc_pres *oldest, *newest;
	size_t nsub, npres;
	int store;			/* the host has sub_put/del/list */
	int loaded;			/* the store's list has been read */
	int answering;			/* our own answers go out: no hooks */
	int full_logged;
	void (*loaded_cb)(struct xc *x);	/* called once: list read, or waited enough */
	struct imgw_timer *load_timer;
	struct xc_answer *ans, *ans_tail;
	size_t nans;
	struct imgw_timer *ans_timer;
};

/* ---- keys ---------------------------------------------------------------- */

/* The bare part of an address or JID, ASCII lower-cased as the core
 * canonicalizes (an XMPP server has nodeprepped what it stamps).  -1 when
 * it is too long for the store or has no '@'. */
static int
xc_subs_bare(const char *addr, char *out, size_t outlen)
{
	size_t i, n;

	if (addr == NULL)
		return -1;
	n = strcspn(addr, "/");
	if (n == 0 || n > XC_SUBS_ADDR_MAX || n >= outlen || memchr(addr, '@', n) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (addr[i] >= 'A' && addr[i] <= 'Z') ? (char)(addr[i] - 'A' + 'a')
		    : addr[i];
	out[n] = '\0';
	return 0;
}

static unsigned int
xc_subs_hash(const char *w, const char *p)
{
	unsigned int h = 2166136261u;

	for (; *w; w++)
		h = (h ^ (unsigned char)*w) * 16777619u;
	h = (h ^ '\n') * 16777619u;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % XC_SUBS_BUCKETS;
}

/* The bare pair of an event's (watcher, presentity); -1 when unusable. */
static int
xc_subs_pair(const char *watcher, const char *presentity, char *w, char *p)
{
	return xc_subs_bare(watcher, w, XC_SUBS_ADDR_MAX + 1) == -1 ||
	    xc_subs_bare(presentity, p, XC_SUBS_ADDR_MAX + 1) == -1 ? -1 : 0;
}

/* ---- the subscription table ------------------------------------------------ */

static struct xc_sub **
xc_subs_find(struct xc_subs *s, const char *w, const char *p)
{
	struct xc_sub **sp;

	for (sp = &s->sub[xc_subs_hash(w, p)]; *sp != NULL; sp = &(*sp)->next)
		if (strcmp((*sp)->watcher, w) == 0 && strcmp((*sp)->presentity, p) == 0)
			return sp;
	return NULL;
}

/* Remember (w, p) in state `active`; the store too when `persist`.
 * Returns 0, -1 when not remembered (table full, out of memory). */
static int
xc_subs_set(struct xc *x, const char *w, const char *p, int active, int persist)
{
	struct xc_subs *s = x->subs;
	struct xc_sub **sp = xc_subs_find(s, w, p), *e;
	struct imgw_sub sub;
	size_t wl = strlen(w), pl = strlen(p);
	unsigned int b;

	if (sp != NULL) {
		if ((*sp)->active == active)
			return 0;	/* nothing changed: no store write */
		(*sp)->active = active;
	} else {
		if (s->nsub >= XC_SUBS_MAX) {
			if (!s->full_logged)
				XC_LOG(x, IMGW_LOG_WARNING, "%d subscriptions known: new ones "
				    "are not remembered (they cross unanswered)", XC_SUBS_MAX);
			s->full_logged = 1;
			return -1;
		}
		if ((e = malloc(sizeof(*e) + wl + pl + 2)) == NULL)
			return -1;
		memcpy(e->watcher, w, wl + 1);
		e->presentity = e->watcher + wl + 1;
		memcpy(e->presentity, p, pl + 1);
		e->active = active;
		b = xc_subs_hash(w, p);
		e->next = s->sub[b];
		s->sub[b] = e;
		s->nsub++;
	}
	if (persist && s->store) {
		imgw_sub_init(&sub);
		sub.watcher = w;
		sub.presentity = p;
		sub.state = active ? "active" : "pending";
		if (x->host->sub_put(x->inst, &sub) == -1)
			XC_COUNT(x, "subscriptions-not-stored");
		else
			XC_COUNT(x, "subscriptions-stored");
	}
	return 0;
}

static void
xc_subs_forget(struct xc *x, const char *w, const char *p)
{
	struct xc_subs *s = x->subs;
	struct xc_sub **sp = xc_subs_find(s, w, p), *e;

	if (sp != NULL) {
		e = *sp;
		*sp = e->next;
		free(e);
		s->nsub--;
	}
	/* deleted in the store even when not known here (table full) */
	if (s->store && x->host->sub_del(x->inst, w, p) == 0)
		XC_COUNT(x, "subscriptions-deleted");
}

static int
xc_subs_is_active(struct xc_subs *s, const char *w, const char *p)
{
	struct xc_sub **sp = xc_subs_find(s, w, p);

	return sp != NULL && (*sp)->active;
}

/* ---- last presences ---------------------------------------------------------- */

static void
xc_pres_unlink(struct xc_subs *s, struct xc_pres *e)
{
	struct xc_pres **pp;

	for (pp = &s->pres[e->bucket]; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		s->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		s->newest = e->older;
	s->npres--;
}

static void
xc_pres_free(struct xc_pres *e)
{
	free(e->watcher);
	free(e->presentity);
	free(e->status);
	free(e->lang);
	free(e);
}

static char *
xc_dup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Remember the presence the core sent from ev->from to ev->to. */
static void
xc_pres_note(struct xc *x, const struct imgw_event *ev, const char *w, const char *p)
{
	struct xc_subs *s = x->subs;
	struct xc_pres *e;
	unsigned int b = xc_subs_hash(w, p);

	for (e = s->pres[b]; e != NULL; e = e->next)
		if (strcmp(e->watcher, w) == 0 && strcmp(e->presentity, ev->from) == 0)
			break;
	if (e != NULL) {
		xc_pres_unlink(s, e);
		xc_pres_free(e);
	}
	if (s->npres >= XC_PRES_MAX && s->oldest != NULL) {
		e = s->oldest;
		xc_pres_unlink(s, e);
		xc_pres_free(e);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;
	e->watcher = strdup(w);
	e->presentity = strdup(ev->from);
	e->status = xc_dup(ev->status);
	e->lang = xc_dup(ev->lang);
	if (e->watcher == NULL || e->presentity == NULL ||
	    (ev->status != NULL && e->status == NULL) || (ev->lang != NULL && e->lang == NULL)) {
		xc_pres_free(e);
		return;
	}
	e->show = ev->show;
	e->priority = ev->priority;
	e->bucket = b;
	e->next = s->pres[b];
	s->pres[b] = e;
	e->older = s->newest;
	if (s->newest != NULL)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	s->npres++;
}

/* ---- answers ------------------------------------------------------------------- */

/* A stanza to the XMPP side through the ordinary event path (so s2s and
 * component mode, escaping and size checks stay in one place). */
static void
xc_subs_send(struct xc *x, const struct imgw_event *ev)
{
	const char *cond = NULL;

	x->subs->answering = 1;
	if (xc_out_event(x, ev, &cond) != IMGW_OK)
		XC_COUNT(x, "answers-not-sent");
	x->subs->answering = 0;
}

/* Probe from the XMPP watcher `st` from for presentity p (bare, canonical):
 * its last presences, else unavailable from the bare presentity. */
static void
xc_subs_answer_probe(struct xc *x, xmpp_stanza_t *st, const char *w, const char *p,
    int active)
{
	struct xc_subs *s = x->subs;
	struct imgw_event ev;
	struct xc_pres *e;
	int sent = 0;

	for (e = active ? s->pres[xc_subs_hash(w, p)] : NULL; e != NULL; e = e->next) {
		if (strcmp(e->watcher, w) != 0 || e->show == IMGW_SHOW_UNAVAILABLE ||
		    strncmp(e->presentity, p, strlen(p)) != 0 ||
		    (e->presentity[strlen(p)] != '\0' && e->presentity[strlen(p)] != '/'))
			continue;
		imgw_event_init(&ev, IMGW_EV_PRESENCE);
		ev.from = e->presentity;
		ev.to = xmpp_stanza_get_from(st);
		ev.show = e->show;
		ev.priority = e->priority;
		ev.status = e->status;
		ev.lang = e->lang;
		xc_subs_send(x, &ev);
		sent++;
	}
	if (sent == 0) {
		imgw_event_init(&ev, IMGW_EV_PRESENCE);
		ev.from = p;
		ev.to = xmpp_stanza_get_from(st);
		ev.show = IMGW_SHOW_UNAVAILABLE;
		xc_subs_send(x, &ev);
	}
	XC_COUNT(x, "probes-answered");
}

static void
xc_subs_answers_cb(void *arg)
{
	struct xc *x = arg;
	struct xc_subs *s = x->subs;
	struct xc_answer *a;
	struct imgw_event ev;
	char err[256];

	s->ans_timer = NULL;
	while ((a = s->ans) != NULL) {
		s->ans = a->next;
		s->nans--;
		imgw_event_init(&ev, a->kind);
		ev.from = a->from;
		ev.to = a->to;
		ev.id = a->id;
		if (x->host->emit(x->inst, &ev, err, sizeof(err), NULL) == -1)
			XC_LOG(x, IMGW_LOG_INFO, "answer %s from %s to %s refused: %s",
			    imgw_kind_name(a->kind), a->from, a->to, err);
		free(a->from);
		free(a->to);
		free(a->id);
		free(a);
	}
	s->ans_tail = NULL;
}

/* An event back to the core's side, later (deliver must not emit). */
static void
xc_subs_answer_core(struct xc *x, enum imgw_kind kind, const char *from, const char *to,
    const char *id)
{
	struct xc_subs *s = x->subs;
	struct xc_answer *a;

	if (s->nans >= XC_ANSWERS_MAX || (a = calloc(1, sizeof(*a))) == NULL)
		return;
	a->kind = kind;
	a->from = strdup(from);
	a->to = strdup(to);
	a->id = xc_dup(id);
	if (a->from == NULL || a->to == NULL || (id != NULL && a->id == NULL)) {
		free(a->from);
		free(a->to);
		free(a->id);
		free(a);
		return;
	}
	if (s->ans_tail != NULL)
		s->ans_tail->next = a;
	else
		s->ans = a;
	s->ans_tail = a;
	s->nans++;
	if (s->ans_timer == NULL)
		s->ans_timer = x->host->timer_add(x->inst, 0, xc_subs_answers_cb, x);
}

/* ---- hooks of the stanza code --------------------------------------------------- */

/* Knowledge the gateway may answer from: the store's list has been read. */
static int
xc_subs_authoritative(const struct xc *x)
{
	return x->subs != NULL && x->subs->store && x->subs->loaded;
}

int
xc_subs_in(struct xc *x, xmpp_stanza_t *st, const struct imgw_event *ev)
{
	char w[XC_SUBS_ADDR_MAX + 1], p[XC_SUBS_ADDR_MAX + 1];
	struct imgw_event a;
	int active;

	if (x->subs == NULL || (ev->kind != IMGW_EV_SUBSCRIBE && ev->kind != IMGW_EV_PROBE) ||
	    xc_subs_pair(ev->from, ev->to, w, p) == -1)
		return 0;
	active = xc_subs_is_active(x->subs, w, p);
	if (ev->kind == IMGW_EV_SUBSCRIBE) {
		if (!active)
			return 0;
		/* approved before: answer as the contact's server would */
		imgw_event_init(&a, IMGW_EV_SUBSCRIBED);
		a.from = p;
		a.to = w;
		a.id = ev->id;
		xc_subs_send(x, &a);
		XC_COUNT(x, "subscribes-answered");
		XC_LOG(x, IMGW_LOG_DEBUG, "subscribe %s -> %s answered: active", w, p);
		return 1;
	}
	if (!xc_subs_authoritative(x))
		return 0;
	xc_subs_answer_probe(x, st, w, p, active);
	return !active;	/* with a subscription the other side is asked too */
}

int
xc_subs_out(struct xc *x, const struct imgw_event *ev)
{
	char w[XC_SUBS_ADDR_MAX + 1], p[XC_SUBS_ADDR_MAX + 1];

	if (x->subs == NULL || x->subs->answering || ev->kind != IMGW_EV_SUBSCRIBE ||
	    xc_subs_pair(ev->from, ev->to, w, p) == -1 || !xc_subs_is_active(x->subs, w, p))
		return 0;
	xc_subs_answer_core(x, IMGW_EV_SUBSCRIBED, p, w, ev->id);
	XC_COUNT(x, "subscribes-answered");
	return 1;
}

void
xc_subs_note(struct xc *x, const struct imgw_event *ev, int inbound)
{
	char w[XC_SUBS_ADDR_MAX + 1], p[XC_SUBS_ADDR_MAX + 1];

	if (x->subs == NULL || x->subs->answering)
		return;
	switch (ev->kind) {
	case IMGW_EV_SUBSCRIBE:
		if (xc_subs_pair(ev->from, ev->to, w, p) == 0 &&
		    !xc_subs_is_active(x->subs, w, p))
			(void)xc_subs_set(x, w, p, 0, 1);
		break;
	case IMGW_EV_SUBSCRIBED:
		if (xc_subs_pair(ev->to, ev->from, w, p) == 0)
			(void)xc_subs_set(x, w, p, 1, 1);
		break;
	case IMGW_EV_UNSUBSCRIBE:
		if (xc_subs_pair(ev->from, ev->to, w, p) == 0)
			xc_subs_forget(x, w, p);
		break;
	case IMGW_EV_UNSUBSCRIBED:
		if (xc_subs_pair(ev->to, ev->from, w, p) == 0)
			xc_subs_forget(x, w, p);
		break;
	case IMGW_EV_PRESENCE:
		/* what a probe from the XMPP watcher is answered with */
		if (!inbound && xc_subs_pair(ev->to, ev->from, w, p) == 0)
			xc_pres_note(x, ev, w, p);
		break;
	default:
		break;
	}
}

/* ---- start and stop -------------------------------------------------------------- */

/* Run the start's continuation once. */
static void
xc_subs_loaded(struct xc *x)
{
	struct xc_subs *s = x->subs;
	void (*cb)(struct xc *x) = s->loaded_cb;

	if (s->load_timer != NULL) {
		x->host->timer_del(s->load_timer);
		s->load_timer = NULL;
	}
	s->loaded_cb = NULL;
	if (cb != NULL)
		cb(x);
}

/* The store is slow to list: go on without its knowledge (subscribes and
 * probes cross as they come) until the list arrives. */
static void
xc_subs_load_timer_cb(void *arg)
{
	struct xc *x = arg;

	x->subs->load_timer = NULL;
	XC_LOG(x, IMGW_LOG_WARNING, "the store has not listed the subscriptions after "
	    "%d ms: going on; subscribes and probes cross unanswered until it has",
	    XC_SUBS_LOAD_WAIT_MS);
	xc_subs_loaded(x);
}

static void
xc_subs_list_cb(void *arg, const struct imgw_sub *sub)
{
	struct xc *x = arg;
	struct xc_subs *s = x->subs;
	char w[XC_SUBS_ADDR_MAX + 1], p[XC_SUBS_ADDR_MAX + 1];

	if (sub == NULL) {
		s->loaded = 1;
		XC_LOG(x, IMGW_LOG_INFO, "%zu subscriptions known from the store", s->nsub);
		xc_subs_loaded(x);
		return;
	}
	if (sub->state == NULL || xc_subs_pair(sub->watcher, sub->presentity, w, p) == -1)
		return;
	if (strcmp(sub->state, "active") == 0 || strcmp(sub->state, "pending") == 0) {
		if (xc_subs_set(x, w, p, strcmp(sub->state, "active") == 0, 0) == 0)
			XC_COUNT(x, "subscriptions-restored");
	}
}

/*
 * Read the stored subscriptions.  Returns 1 when `loaded_cb` follows later
 * (from the loop, once the list is read, or after XC_SUBS_LOAD_WAIT_MS if
 * the store is slower: then the knowledge counts once the list is in), 0
 * when there is nothing to wait for (no store), -1 out of memory.
 */
int
xc_subs_start(struct xc *x, void (*loaded_cb)(struct xc *x))
{
	const struct imgw_host *h = x->host;
	struct xc_subs *s;

	if (x->subs == NULL && (x->subs = calloc(1, sizeof(*x->subs))) == NULL)
		return -1;
	s = x->subs;
	s->loaded_cb = loaded_cb;
	s->store = h->size > offsetof(struct imgw_host, sub_list) &&
	    h->sub_put != NULL && h->sub_del != NULL && h->sub_list != NULL;
	if (!s->store)
		return 0;
	if (s->loaded)
		return 0;	/* a restart of the same instance: known already */
	if (h->sub_list(x->inst, xc_subs_list_cb, x) == -1) {
		/* no store configured: the gateway forwards as it comes */
		s->store = 0;
		XC_LOG(x, IMGW_LOG_INFO, "no subscription store: subscribes and probes "
		    "cross unanswered");
		return 0;
	}
	if (loaded_cb != NULL)
		s->load_timer = h->timer_add(x->inst, XC_SUBS_LOAD_WAIT_MS,
		    xc_subs_load_timer_cb, x);
	return 1;
}

/* Drop answers not yet emitted (stop: no emit after it). */
void
xc_subs_stop(struct xc *x)
{
	struct xc_subs *s = x->subs;
	struct xc_answer *a;

	if (s == NULL)
		return;
	if (s->ans_timer != NULL) {
		x->host->timer_del(s->ans_timer);
		s->ans_timer = NULL;
	}
	if (s->load_timer != NULL) {
		x->host->timer_del(s->load_timer);
		s->load_timer = NULL;
	}
	while ((a = s->ans) != NULL) {
		s->ans = a->next;
		free(a->from);
		free(a->to);
		free(a->id);
		free(a);
	}
	s->ans_tail = NULL;
	s->nans = 0;
	s->loaded_cb = NULL;
}

void
xc_subs_free(struct xc *x)
{
	struct xc_subs *s = x->subs;
	struct xc_sub *e;
	struct xc_pres *pe;
	size_t i;

	if (s == NULL)
		return;
	xc_subs_stop(x);
	for (i = 0; i < XC_SUBS_BUCKETS; i++)
		while ((e = s->sub[i]) != NULL) {
			s->sub[i] = e->next;
			free(e);
		}
	while ((pe = s->oldest) != NULL) {
		s->oldest = pe->newer;
		xc_pres_free(pe);
	}
	free(s);
	x->subs = NULL;
}
