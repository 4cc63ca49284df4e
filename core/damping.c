/* Presence damping, presence rate limits and ping-pong loop stopping. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <imgw/address.h>

#include "damping.h"
#include "ev.h"
#include "ht.h"
#include "log.h"
#include "router.h"
#include "util.h"

#define DAMP_MAX_ENTRIES	1000000
#define DAMP_IDLE_MS		(60 * 60 * 1000)	/* forget quiet pairs */
#define DAMP_SWEEP_MS		(30 * 1000)

/* Per sender/target presence state. */
struct damp_pair {
	struct damping *d;
	uint64_t last_fp;	/* fingerprint of the last forwarded presence */
	uint64_t last_gen;	/* probe generation it was forwarded in */
	int has_last;
	double tokens;
	uint64_t refill_ms;
	uint64_t seen_ms;
	struct ev *held;	/* latest presence waiting for a token */
	char *held_src;
	struct event *timer;
};

/* Per pair of bare addresses and family: direction changes. */
struct damp_loop {
	int last_dir;
	unsigned flips;
	uint64_t window_start;
	uint64_t stopped_until;
	uint64_t seen_ms;
};

struct damping {
	struct router *r;
	struct event_base *base;
	struct ht *pairs;	/* "from\x1fto" -> damp_pair */
	struct ht *loops;	/* "family\x1fa\x1fb" -> damp_loop */
	struct ht *probes;	/* "target\x1fwatcher" (bare) -> generation */
	struct event *sweep;
	unsigned rate, window, loop_limit, loop_window;
};

static void
damping_pair_free(void *v)
{
	struct damp_pair *p = v;

	if (p->timer != NULL)
		event_free(p->timer);
	if (p->held != NULL)
		ev_free(p->held);
	free(p->held_src);
	free(p);
}

static int
damping_sweep_pair(const char *key, void *v, void *arg)
{
	struct damp_pair *p = v;
	struct damping *d = arg;
	uint64_t now = util_now_ms();

	if (p->held == NULL && now - p->seen_ms > DAMP_IDLE_MS) {
		ht_del(d->pairs, key);
		damping_pair_free(p);
	}
	return 0;
}

static int
damping_sweep_loop(const char *key, void *v, void *arg)
{
	struct damp_loop *l = v;
	struct damping *d = arg;
	uint64_t now = util_now_ms();

	if (now > l->stopped_until &&
	    now - l->seen_ms > 2000ull * d->loop_window) {
		ht_del(d->loops, key);
		free(l);
	}
	return 0;
}

static void
damping_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct damping *d = arg;

	ht_foreach(d->pairs, damping_sweep_pair, d);
	ht_foreach(d->loops, damping_sweep_loop, d);
	/* probe generations are only compared for equality: forgetting
	 * them lets at most one repeated presence per pair through */
	if (ht_count(d->probes) > DAMP_MAX_ENTRIES / 10) {
		ht_free(d->probes, free);
		d->probes = ht_new();
	}
}

struct damping *
damping_new(struct router *r, struct event_base *base)
{
	struct damping *d = xcalloc(1, sizeof(*d));
	struct timeval tv = { DAMP_SWEEP_MS / 1000, 0 };

	d->r = r;
	d->base = base;
	d->pairs = ht_new();
	d->loops = ht_new();
	d->probes = ht_new();
	d->rate = d->window = 10;
	d->loop_limit = 20;
	d->loop_window = 10;
	if (base != NULL) {
		d->sweep = event_new(base, -1, EV_PERSIST, damping_sweep_cb, d);
		event_add(d->sweep, &tv);
	}
	return d;
}

void
damping_free(struct damping *d)
{
	if (d == NULL)
		return;
	if (d->sweep != NULL)
		event_free(d->sweep);
	ht_free(d->pairs, damping_pair_free);
	ht_free(d->loops, free);
	ht_free(d->probes, free);
	free(d);
}

void
damping_set_limits(struct damping *d, unsigned rate, unsigned window,
    unsigned loop_limit, unsigned loop_window)
{
	d->rate = rate;
	d->window = window;
	d->loop_limit = loop_limit;
	d->loop_window = loop_window;
}

uint64_t
damping_pairs(const struct damping *d)
{
	return ht_count(d->pairs);
}

/* Key "prefix\x1fa\x1fb" (a and b cut to their bare parts when `bare`)
 * written into `buf`; canonical addresses are short enough for
 * DAMP_KEY_MAX, longer ones are cut (they still key consistently). */
#define DAMP_KEY_MAX	(3 * 1024 * 2 + 16)

static const char *
damping_key(char *buf, const char *prefix, const char *a, const char *b,
    int bare)
{
	int la = bare ? (int)imgw_addr_bare_len(a) : (int)strlen(a);
	int lb = bare ? (int)imgw_addr_bare_len(b) : (int)strlen(b);

	snprintf(buf, DAMP_KEY_MAX, "%s\x1f%.*s\x1f%.*s", prefix, la, a, lb, b);
	return buf;
}

/* What makes two presences the same, hashed without building a string. */
static uint64_t
damping_fingerprint(const struct imgw_event *e)
{
	const char *status = e->status ? e->status : "";
	const char *lang = e->lang ? e->lang : "";
	int32_t nums[2] = { (int32_t)e->show, (int32_t)e->priority };
	uint64_t h;

	h = util_hash(nums, sizeof(nums));
	h ^= util_hash(status, strlen(status)) * 0x9e3779b97f4a7c15ull;
	h ^= util_hash(lang, strlen(lang)) * 0xc2b2ae3d27d4eb4full;
	return h;
}

static uint64_t
damping_probe_gen(struct damping *d, const char *from, const char *to)
{
	char buf[DAMP_KEY_MAX];
	uint64_t *g;

	if (ht_count(d->probes) == 0)
		return 0;
	g = ht_get(d->probes, damping_key(buf, "g", from, to, 1));
	return g ? *g : 0;
}

/* A probe from `watcher` to `target`: the answer must go through. */
static void
damping_probe_seen(struct damping *d, const char *watcher, const char *target)
{
	char buf[DAMP_KEY_MAX];
	const char *k = damping_key(buf, "g", target, watcher, 1);
	uint64_t *g = ht_get(d->probes, k);

	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		ht_put(d->probes, k, g);
	}
	(*g)++;
}

static void
damping_refill(struct damping *d, struct damp_pair *p, uint64_t now)
{
	double per_ms = (double)d->rate / (1000.0 * d->window);

	p->tokens += (double)(now - p->refill_ms) * per_ms;
	if (p->tokens > d->rate)
		p->tokens = d->rate;
	p->refill_ms = now;
}

static void damping_timer_cb(evutil_socket_t fd, short what, void *arg);

static void
damping_arm(struct damping *d, struct damp_pair *p)
{
	double per_ms = (double)d->rate / (1000.0 * d->window);
	double need = 1.0 - p->tokens;
	uint64_t ms = need > 0 ? (uint64_t)(need / per_ms) + 1 : 1;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (p->timer == NULL)
		p->timer = event_new(d->base, -1, 0, damping_timer_cb, p);
	event_add(p->timer, &tv);
}

/* A held presence's turn: forward it unless it says what was said. */
static void
damping_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct damp_pair *p = arg;
	struct damping *d = p->d;
	struct ev *ev = p->held;
	char *src = p->held_src;
	uint64_t now = util_now_ms(), fp, gen;

	if (ev == NULL)
		return;
	damping_refill(d, p, now);
	if (p->tokens < 1.0) {
		damping_arm(d, p);
		return;
	}
	p->held = NULL;
	p->held_src = NULL;
	fp = damping_fingerprint(&ev->e);
	gen = damping_probe_gen(d, ev->e.from, ev->e.to);
	if (p->has_last && p->last_fp == fp && p->last_gen == gen) {
		counters_add(&d->r->ctr, "presence-damped", 1);
		ev_free(ev);
	} else {
		p->tokens -= 1.0;
		p->has_last = 1;
		p->last_fp = fp;
		p->last_gen = gen;
		router_forward(d->r, ev, src);
	}
	free(src);
}

static int
damping_family(enum imgw_kind k)
{
	switch (k) {
	case IMGW_EV_PRESENCE:
	case IMGW_EV_PROBE:
		return 'p';
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBED:
		return 's';
	default:
		return 0;
	}
}

static int
damping_loop(struct damping *d, const struct ev *ev, int family, uint64_t now)
{
	const char *a = ev->e.from, *b = ev->e.to;
	size_t la = imgw_addr_bare_len(a), lb = imgw_addr_bare_len(b);
	int cmp = strncmp(a, b, la < lb ? la : lb), dir;
	char fam[2] = { (char)family, '\0' }, buf[DAMP_KEY_MAX];
	struct damp_loop *l;
	const char *k;

	if (cmp == 0)
		cmp = la < lb ? -1 : la > lb;
	dir = cmp < 0;
	k = dir ? damping_key(buf, fam, a, b, 1) : damping_key(buf, fam, b, a, 1);
	if ((l = ht_get(d->loops, k)) == NULL) {
		if (ht_count(d->loops) >= DAMP_MAX_ENTRIES) {
			counters_add(&d->r->ctr, "damping-table-full", 1);
			return 0;
		}
		l = xcalloc(1, sizeof(*l));
		l->last_dir = dir;
		l->window_start = now;
		ht_put(d->loops, k, l);
	}
	l->seen_ms = now;
	if (now < l->stopped_until)
		return 1;
	if (now - l->window_start > 1000ull * d->loop_window) {
		l->window_start = now;
		l->flips = 0;
	}
	if (dir != l->last_dir) {
		l->last_dir = dir;
		if (++l->flips > d->loop_limit) {
			l->stopped_until = now + 1000ull * d->loop_window;
			log_msg(IMGW_LOG_WARNING, "router", ev->trace,
			    "%s between %.*s and %.*s goes back and forth "
			    "(%u times in %u s): stopped for %u s",
			    family == 'p' ? "presence" : "subscription",
			    (int)la, a, (int)lb, b, l->flips, d->loop_window,
			    d->loop_window);
			return 1;
		}
	}
	return 0;
}

enum damping_verdict
damping_check(struct damping *d, struct ev *ev, const char *src)
{
	int family = damping_family(ev->e.kind);
	uint64_t now, fp, gen;
	struct damp_pair *p;
	char buf[DAMP_KEY_MAX];
	const char *k;

	if (family == 0)
		return DAMP_PASS;
	now = util_now_ms();
	if (damping_loop(d, ev, family, now))
		return DAMP_LOOP;
	if (ev->e.kind == IMGW_EV_PROBE) {
		damping_probe_seen(d, ev->e.from, ev->e.to);
		return DAMP_PASS;
	}
	if (ev->e.kind != IMGW_EV_PRESENCE)
		return DAMP_PASS;

	k = damping_key(buf, "p", ev->e.from, ev->e.to, 0);
	if ((p = ht_get(d->pairs, k)) == NULL) {
		if (ht_count(d->pairs) >= DAMP_MAX_ENTRIES) {
			counters_add(&d->r->ctr, "damping-table-full", 1);
			return DAMP_PASS;
		}
		p = xcalloc(1, sizeof(*p));
		p->d = d;
		p->tokens = d->rate;
		p->refill_ms = now;
		ht_put(d->pairs, k, p);
	}
	p->seen_ms = now;
	fp = damping_fingerprint(&ev->e);
	gen = damping_probe_gen(d, ev->e.from, ev->e.to);
	if (p->held != NULL) {
		/* coalesce: the newest presence replaces the held one */
		ev_free(p->held);
		free(p->held_src);
		p->held = ev;
		p->held_src = xstrdup(src ? src : "");
		return DAMP_HELD;
	}
	if (p->has_last && p->last_fp == fp && p->last_gen == gen)
		return DAMP_DUPLICATE;
	damping_refill(d, p, now);
	if (p->tokens < 1.0 && d->base != NULL) {
		p->held = ev;
		p->held_src = xstrdup(src ? src : "");
		damping_arm(d, p);
		return DAMP_HELD;
	}
	p->tokens -= 1.0;
	p->has_last = 1;
	p->last_fp = fp;
	p->last_gen = gen;
	return DAMP_PASS;
}

void
damping_unrecord(struct damping *d, const struct ev *ev)
{
	char buf[DAMP_KEY_MAX];
	struct damp_pair *p;

	if (ev->e.kind != IMGW_EV_PRESENCE)
		return;
	p = ht_get(d->pairs, damping_key(buf, "p", ev->e.from, ev->e.to, 0));
	if (p != NULL)
		p->has_last = 0;
}
