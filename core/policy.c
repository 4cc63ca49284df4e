/*
 * Policy evaluation in memory: snapshots, decisions, conversations and
 * subscription counts.  See policy.h for the model.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "conf.h"
#include "ev.h"
#include "ht.h"
#include "log.h"
#include "policy.h"
#include "policy-internal.h"
#include "router.h"
#include "util.h"

#define POLICY_SWEEP_MS		(5 * 1000)
/* An admitted subscription the store never shows is forgotten after this. */
#define POLICY_ADMITTED_KEEP_MS	(10 * 60 * 1000)

const char *const policy_setting_keys[] = {
	"default_allow", "local_access", "inbound_subscribe",
	"inbound_initiate", "audit_level", "audit_im", "audit_subscriptions",
	"audit_presence", "allow_rich_text", "allow_typing", "max_im_sessions",
	"max_subscriptions", NULL
};

static const char *const policy_kind_names[POLICY_RULE_KIND_MAX] = {
	"allow-user", "allow-group", "block-user", "block-domain",
};

static const char *const policy_audit_names[] = { "none", "metadata", "full" };

static int policy_is_local(const struct policy *p, const char *community);
static void policy_recount_stored(struct policy *p);

/* ---- settings ---------------------------------------------------------------- */

void
policy_settings_default(struct policy_settings *s)
{
	*s = (struct policy_settings){
		.default_allow = 1,
		.access = POLICY_ACCESS_EVERYONE,
		.inbound_subscribe = 1,
		.inbound_initiate = 1,
		.audit_level = POLICY_AUDIT_METADATA,
		.audit_im = 1,
		.audit_subscriptions = 1,
		.audit_presence = 0,
		.allow_rich_text = 1,
		.allow_typing = 1,
		.max_im_sessions = POLICY_NO_LIMIT,
		.max_subscriptions = POLICY_NO_LIMIT,
	};
}

static int
policy_parse_limit(const char *v, int64_t *out)
{
	long long n;

	if (!strcasecmp(v, "none") || !strcasecmp(v, "unlimited") ||
	    !strcasecmp(v, "null") || *v == '\0') {
		*out = POLICY_NO_LIMIT;
		return 0;
	}
	if (conf_parse_ll(v, &n) < 0 || n < 0)
		return -1;
	*out = n;
	return 0;
}

/* The int field of a boolean key, or NULL. */
static int *
policy_settings_flag(struct policy_settings *s, const char *key)
{
	if (!strcmp(key, "default_allow"))
		return &s->default_allow;
	if (!strcmp(key, "inbound_subscribe"))
		return &s->inbound_subscribe;
	if (!strcmp(key, "inbound_initiate"))
		return &s->inbound_initiate;
	if (!strcmp(key, "audit_im"))
		return &s->audit_im;
	if (!strcmp(key, "audit_subscriptions"))
		return &s->audit_subscriptions;
	if (!strcmp(key, "audit_presence"))
		return &s->audit_presence;
	if (!strcmp(key, "allow_rich_text"))
		return &s->allow_rich_text;
	if (!strcmp(key, "allow_typing"))
		return &s->allow_typing;
	return NULL;
}

int
policy_settings_set(struct policy_settings *s, const char *key,
    const char *value, char *err, size_t errlen)
{
	int *flag, b;
	size_t i;

	if (value == NULL)
		value = "";
	if ((flag = policy_settings_flag(s, key)) != NULL) {
		if ((b = conf_parse_bool(value)) < 0) {
			snprintf(err, errlen, "%s: '%s' is not yes or no", key,
			    value);
			return -1;
		}
		*flag = b;
		return 0;
	}
	if (!strcmp(key, "local_access")) {
		if (!strcasecmp(value, "everyone"))
			s->access = POLICY_ACCESS_EVERYONE;
		else if (!strcasecmp(value, "listed"))
			s->access = POLICY_ACCESS_LISTED;
		else {
			snprintf(err, errlen, "local_access: '%s' is not "
			    "everyone or listed", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "audit_level")) {
		for (i = 0; i < 3; i++) {
			if (!strcasecmp(value, policy_audit_names[i])) {
				s->audit_level = (enum policy_audit)i;
				return 0;
			}
		}
		snprintf(err, errlen, "audit_level: '%s' is not none, metadata "
		    "or full", value);
		return -1;
	}
	if (!strcmp(key, "max_im_sessions") ||
	    !strcmp(key, "max_subscriptions")) {
		if (policy_parse_limit(value, key[4] == 'i'
		    ? &s->max_im_sessions : &s->max_subscriptions) < 0) {
			snprintf(err, errlen, "%s: '%s' is not a number >= 0 or "
			    "none", key, value);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown setting '%s'", key);
	return -1;
}

const char *
policy_settings_get(const struct policy_settings *s, const char *key,
    char *buf, size_t buflen)
{
	int *flag;
	int64_t lim;

	if ((flag = policy_settings_flag((struct policy_settings *)s, key))
	    != NULL) {
		snprintf(buf, buflen, "%s", *flag ? "yes" : "no");
		return buf;
	}
	if (!strcmp(key, "local_access")) {
		snprintf(buf, buflen, "%s", s->access == POLICY_ACCESS_LISTED
		    ? "listed" : "everyone");
		return buf;
	}
	if (!strcmp(key, "audit_level")) {
		snprintf(buf, buflen, "%s", policy_audit_names[s->audit_level]);
		return buf;
	}
	if (!strcmp(key, "max_im_sessions") ||
	    !strcmp(key, "max_subscriptions")) {
		lim = key[4] == 'i' ? s->max_im_sessions : s->max_subscriptions;
		if (lim == POLICY_NO_LIMIT)
			snprintf(buf, buflen, "none");
		else
			snprintf(buf, buflen, "%lld", (long long)lim);
		return buf;
	}
	return NULL;
}

int
policy_rule_kind_parse(const char *name)
{
	int i;

	for (i = 0; i < POLICY_RULE_KIND_MAX; i++)
		if (name != NULL && !strcmp(name, policy_kind_names[i]))
			return i;
	return -1;
}

const char *
policy_rule_kind_name(enum policy_rule_kind k)
{
	return (unsigned)k < POLICY_RULE_KIND_MAX ? policy_kind_names[k] : "?";
}

int
policy_rule_check(enum policy_rule_kind kind, const char *value, char *err,
    size_t errlen)
{
	const char *p;
	size_t n;

	if (value == NULL || (n = strlen(value)) == 0) {
		snprintf(err, errlen, "empty value");
		return -1;
	}
	if (n > 1024) {
		snprintf(err, errlen, "value longer than 1024 bytes");
		return -1;
	}
	for (p = value; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "control character in value");
			return -1;
		}
		if (*p == ' ' && kind != POLICY_ALLOW_GROUP) {
			snprintf(err, errlen, "space in '%s'", value);
			return -1;
		}
		if (*p == '/' && kind != POLICY_ALLOW_GROUP) {
			snprintf(err, errlen, "'%s': rules name bare addresses "
			    "(no /resource)", value);
			return -1;
		}
	}
	switch (kind) {
	case POLICY_ALLOW_USER:
		if (strchr(value, '*') != NULL && strchr(value, '@') == NULL) {
			snprintf(err, errlen, "'%s': a pattern needs '@' "
			    "(*@corp.example)", value);
			return -1;
		}
		return 0;
	case POLICY_ALLOW_GROUP:
		if (strchr(value, '*') != NULL) {
			snprintf(err, errlen, "'%s': group names take no "
			    "wildcards", value);
			return -1;
		}
		return 0;
	case POLICY_BLOCK_USER:
		if (strchr(value, '@') == NULL) {
			snprintf(err, errlen, "'%s': block-user needs "
			    "user@domain (block-domain blocks a domain)", value);
			return -1;
		}
		return 0;
	case POLICY_BLOCK_DOMAIN:
		if (strchr(value, '@') != NULL) {
			snprintf(err, errlen, "'%s': block-domain takes a "
			    "domain (block-user blocks a user)", value);
			return -1;
		}
		return 0;
	default:
		snprintf(err, errlen, "unknown rule kind");
		return -1;
	}
}

/* ---- patterns -------------------------------------------------------------- */

/* '*' matches any run of bytes; nothing else is special. */
static int
policy_glob(const char *pat, const char *s)
{
	const char *star = NULL, *mark = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			mark = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static void
policy_matcher_add(struct policy_matcher *m, struct policy_rule *r)
{
	const char *v = r->value;

	if (strchr(v, '*') == NULL) {
		if (ht_get(m->exact, v) == NULL)
			ht_put(m->exact, v, r);
		return;
	}
	/* "*@dom" and "*.dom": one hash lookup per label boundary */
	if (v[0] == '*' && (v[1] == '@' || v[1] == '.') &&
	    strchr(v + 1, '*') == NULL) {
		if (ht_get(m->suffix, v + 1) == NULL)
			ht_put(m->suffix, v + 1, r);
		return;
	}
	m->globs = xreallocarray(m->globs, m->nglobs + 1, sizeof(*m->globs));
	m->globs[m->nglobs++] = r;
}

/* The rule matching `s` (a bare address or a domain), or NULL.  Exact
 * matches win over suffixes, suffixes over other patterns. */
static const struct policy_rule *
policy_matcher_find(const struct policy_matcher *m, const char *s)
{
	const struct policy_rule *r, *best = NULL;
	const char *p;
	size_t i;

	if ((r = ht_get(m->exact, s)) != NULL)
		return r;
	if (ht_count(m->suffix) > 0) {
		for (p = s; *p != '\0'; p++) {
			if ((*p == '@' || *p == '.') &&
			    (r = ht_get(m->suffix, p)) != NULL) {
				/* the longest suffix is the most precise */
				return r;
			}
		}
	}
	for (i = 0; i < m->nglobs; i++) {
		if (policy_glob(m->globs[i]->value, s) &&
		    (best == NULL || m->globs[i]->id < best->id))
			best = m->globs[i];
	}
	return best;
}

static void
policy_matcher_init(struct policy_matcher *m)
{
	m->exact = ht_new();
	m->suffix = ht_new();
}

static void
policy_matcher_clear(struct policy_matcher *m)
{
	ht_free(m->exact, NULL);
	ht_free(m->suffix, NULL);
	free(m->globs);
}

/* ---- snapshots --------------------------------------------------------------- */

static struct policy_scope *
policy_scope_new(void)
{
	struct policy_scope *sc = xcalloc(1, sizeof(*sc));
	int k;

	for (k = 0; k < POLICY_RULE_KIND_MAX; k++)
		policy_matcher_init(&sc->m[k]);
	return sc;
}

static void
policy_scope_free(void *arg)
{
	struct policy_scope *sc = arg;
	int k;

	for (k = 0; k < POLICY_RULE_KIND_MAX; k++)
		policy_matcher_clear(&sc->m[k]);
	free(sc->groups);
	free(sc->dirusers);
	free(sc);
}

struct policy_snap *
policy_snap_new(void)
{
	struct policy_snap *snap = xcalloc(1, sizeof(*snap));

	snap->settings = ht_new();
	snap->scopes = ht_new();
	snap->subs = ht_new();
	snap->max_im_sessions = POLICY_NO_LIMIT;
	snap->max_subscriptions = POLICY_NO_LIMIT;
	snap->session_idle = POLICY_SESSION_IDLE;
	return snap;
}

static void
policy_rule_free(struct policy_rule *r)
{
	free(r->value);
	free(r->community);
	free(r);
}

void
policy_snap_free(struct policy_snap *snap)
{
	size_t i;

	if (snap == NULL)
		return;
	ht_free(snap->settings, free);
	ht_free(snap->scopes, policy_scope_free);
	ht_free(snap->subs, free);
	for (i = 0; i < snap->nrules; i++)
		policy_rule_free(snap->rules[i]);
	free(snap->rules);
	free(snap->rows_error);
	free(snap);
}

int
policy_snap_community(struct policy_snap *snap, const char *community,
    const struct policy_settings *s)
{
	struct policy_settings *copy;

	if (ht_get(snap->settings, community) != NULL)
		return -1;
	copy = xmalloc(sizeof(*copy));
	*copy = *s;
	ht_put(snap->settings, community, copy);
	return 0;
}

static char *
policy_lower(const char *s)
{
	char *c = xstrdup(s), *p;

	for (p = c; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return c;
}

int
policy_snap_rule(struct policy_snap *snap, int64_t id, const char *community,
    const char *kind, const char *value, char *err, size_t errlen)
{
	struct policy_scope *sc;
	struct policy_rule *r;
	int k;

	if ((k = policy_rule_kind_parse(kind)) < 0) {
		snprintf(err, errlen, "rule #%lld: unknown kind '%s'",
		    (long long)id, kind ? kind : "(null)");
		return -1;
	}
	if (community == NULL || *community == '\0') {
		snprintf(err, errlen, "rule #%lld: no community", (long long)id);
		return -1;
	}
	if (policy_rule_check((enum policy_rule_kind)k, value, err, errlen)
	    < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "rule #%lld: %s", (long long)id, why);
		return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = id;
	r->kind = (enum policy_rule_kind)k;
	/* group DNs and cns compare as the directory does: case-insensitive */
	r->value = policy_lower(value);
	r->community = xstrdup(community);
	snap->rules = xreallocarray(snap->rules, snap->nrules + 1,
	    sizeof(*snap->rules));
	snap->rules[snap->nrules++] = r;

	if ((sc = ht_get(snap->scopes, community)) == NULL) {
		sc = policy_scope_new();
		ht_put(snap->scopes, community, sc);
	}
	sc->nrules++;
	if (r->kind == POLICY_ALLOW_GROUP) {
		sc->groups = xreallocarray(sc->groups, sc->ngroups + 1,
		    sizeof(*sc->groups));
		sc->groups[sc->ngroups++] = r;
	} else if (r->kind == POLICY_ALLOW_USER &&
	    strchr(r->value, '@') == NULL) {
		/* a user as the directory knows them (uid) */
		sc->dirusers = xreallocarray(sc->dirusers, sc->ndirusers + 1,
		    sizeof(*sc->dirusers));
		sc->dirusers[sc->ndirusers++] = r;
	} else {
		policy_matcher_add(&sc->m[r->kind], r);
	}
	return 0;
}

int
policy_snap_global(struct policy_snap *snap, const char *name,
    const char *value)
{
	int64_t n;

	if (name == NULL || value == NULL)
		return -1;
	if (!strcmp(name, "max_im_sessions") ||
	    !strcmp(name, "max_subscriptions")) {
		if (policy_parse_limit(value, &n) < 0)
			return -1;
		if (name[4] == 'i')
			snap->max_im_sessions = n;
		else
			snap->max_subscriptions = n;
		return 0;
	}
	if (!strcmp(name, "session_idle")) {
		if (policy_parse_limit(value, &n) < 0 || n < 1 ||
		    n > 7 * 24 * 3600)
			return -1;
		snap->session_idle = (unsigned)n;
		return 0;
	}
	return -1;
}

static void
policy_count_add(struct ht *counts, const char *community, int64_t delta)
{
	int64_t *n;

	if (community == NULL)
		return;
	if ((n = ht_get(counts, community)) == NULL) {
		n = xcalloc(1, sizeof(*n));
		ht_put(counts, community, n);
	}
	*n += delta;
}

static int64_t
policy_count_get(const struct ht *counts, const char *community)
{
	const int64_t *n = ht_get(counts, community);

	return n != NULL ? *n : 0;
}

/* "watcher\npresentity" of two bare addresses into buf; -1 when too long. */
static int
policy_pair_key(char *buf, size_t buflen, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + lb + 2 > buflen)
		return -1;
	memcpy(buf, a, la);
	buf[la] = '\n';
	memcpy(buf + la + 1, b, lb + 1);
	return 0;
}

void
policy_snap_subscription(struct policy_snap *snap, const char *community,
    const char *watcher, const char *presentity)
{
	char key[2 * (ADDR_BARE_MAX + 1)];
	char *w, *pr;

	if (watcher == NULL || presentity == NULL)
		return;
	w = policy_lower(watcher);
	pr = policy_lower(presentity);
	if (policy_pair_key(key, sizeof(key), w, pr) == 0 &&
	    ht_get(snap->subs, key) == NULL) {
		ht_put(snap->subs, key, xstrdup(community ? community : ""));
		snap->nsubs++;
	}
	free(w);
	free(pr);
}

/* ---- the running policy -------------------------------------------------------- */

static void
policy_conv_free(void *arg)
{
	struct policy_conv *c = arg;

	free(c->comm[0]);
	free(c->comm[1]);
	free(c->addr[0]);
	free(c->addr[1]);
	free(c);
}

static void
policy_admitted_free(void *arg)
{
	struct policy_admitted *a = arg;

	free(a->comm[0]);
	free(a->comm[1]);
	free(a);
}

static void
policy_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	policy_expire(arg, util_now_ms());
}

struct policy *
policy_new(struct event_base *base)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	struct timeval tv = { POLICY_SWEEP_MS / 1000, 0 };

	p->base = base;
	policy_settings_default(&p->defaults);
	p->snap = policy_snap_new();
	p->convs = ht_new();
	p->conv_counts = ht_new();
	p->admitted = ht_new();
	p->gone = ht_new();
	p->sub_delta = ht_new();
	p->stored_counts = ht_new();
	p->domains = ht_new();
	if (base != NULL) {
		p->sweep = event_new(base, -1, EV_PERSIST, policy_sweep_cb, p);
		event_add(p->sweep, &tv);
	}
	return p;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	policy_load_detach(p);
	if (p->refresh_ev != NULL)
		event_free(p->refresh_ev);
	if (p->sweep != NULL)
		event_free(p->sweep);
	policy_snap_free(p->snap);
	ht_free(p->convs, policy_conv_free);
	ht_free(p->conv_counts, free);
	ht_free(p->admitted, policy_admitted_free);
	ht_free(p->gone, free);
	ht_free(p->sub_delta, free);
	ht_free(p->stored_counts, free);
	policy_set_conf(p, NULL);
	ht_free(p->domains, free);
	counters_free(&p->ctr);
	free(p->local);
	free(p);
}

void
policy_set_local(struct policy *p, const char *community)
{
	free(p->local);
	p->local = community != NULL ? xstrdup(community) : NULL;
}

/* Tell the directory every group and user name the snapshot names. */
static void
policy_want(struct policy *p)
{
	const char **groups = NULL, **users = NULL;
	size_t ng = 0, nu = 0, i;

	if (p->dir.want == NULL)
		return;
	for (i = 0; i < p->snap->nrules; i++) {
		const struct policy_rule *r = p->snap->rules[i];

		if (r->kind == POLICY_ALLOW_GROUP) {
			groups = xreallocarray(groups, ng + 1, sizeof(*groups));
			groups[ng++] = r->value;
		} else if (r->kind == POLICY_ALLOW_USER &&
		    strchr(r->value, '@') == NULL) {
			users = xreallocarray(users, nu + 1, sizeof(*users));
			users[nu++] = r->value;
		}
	}
	p->dir.want(p->dir.arg, groups, ng, users, nu);
	free(groups);
	free(users);
}

void
policy_set_dir(struct policy *p, const struct policy_dir_ops *ops)
{
	if (ops != NULL)
		p->dir = *ops;
	else
		memset(&p->dir, 0, sizeof(p->dir));
	policy_want(p);
}

/* Forget admitted subscriptions the new snapshot has, or that it still
 * lacks long after they were admitted. */
static int
policy_drop_known_cb(const char *key, void *value, void *arg)
{
	struct policy *p = arg;
	struct policy_admitted *a = value;

	if (ht_get(p->snap->subs, key) != NULL ||
	    p->swap_ms - a->admitted_ms > POLICY_ADMITTED_KEEP_MS) {
		p->nadmitted--;
		policy_admitted_free(ht_del(p->admitted, key));
	}
	return 0;
}

static int
policy_recount_cb(const char *key, void *value, void *arg)
{
	struct policy *p = arg;
	struct policy_admitted *a = value;

	policy_count_add(p->sub_delta, a->comm[0], 1);
	policy_count_add(p->sub_delta, a->comm[1], 1);
	return 0;
}

void
policy_swap(struct policy *p, struct policy_snap *snap)
{
	struct policy_snap *old = p->snap;

	p->snap = snap;
	p->swap_ms = util_now_ms();
	/* the store now speaks for what it holds, removals included */
	ht_free(p->gone, free);
	p->gone = ht_new();
	p->ngone = 0;
	ht_foreach(p->admitted, policy_drop_known_cb, p);
	ht_free(p->sub_delta, free);
	p->sub_delta = ht_new();
	ht_foreach(p->admitted, policy_recount_cb, p);
	policy_snap_free(old);
	policy_recount_stored(p);
	policy_want(p);
}

/* The community of the domain of bare address `addr`, or NULL. */
static const char *
policy_community_of(const struct policy *p, const char *addr, size_t len)
{
	char dom[ADDR_PART_MAX + 1];
	const char *at = memchr(addr, '@', len);
	size_t n;

	if (at != NULL) {
		len -= (size_t)(at + 1 - addr);
		addr = at + 1;
	}
	n = len < sizeof(dom) - 1 ? len : sizeof(dom) - 1;
	memcpy(dom, addr, n);
	dom[n] = '\0';
	return ht_get(p->domains, dom);
}

/*
 * The external communities a stored subscription counts for: those of its
 * two addresses' domains, or the row's own community when the domains are
 * not configured (any more).
 */
static void
policy_sub_comms(const struct policy *p, const char *key, const char *row,
    const char *out[2])
{
	const char *nl = strchr(key, '\n');
	size_t i;

	out[0] = out[1] = NULL;
	if (nl != NULL) {
		out[0] = policy_community_of(p, key, (size_t)(nl - key));
		out[1] = policy_community_of(p, nl + 1, strlen(nl + 1));
	}
	for (i = 0; i < 2; i++)
		if (out[i] != NULL && policy_is_local(p, out[i]))
			out[i] = NULL;
	if (out[0] != NULL && out[1] != NULL && !strcmp(out[0], out[1]))
		out[1] = NULL;
	if (out[0] == NULL && out[1] == NULL && row != NULL && *row != '\0' &&
	    !policy_is_local(p, row))
		out[0] = row;
}

static int
policy_recount_one_cb(const char *key, void *value, void *arg)
{
	struct policy *p = arg;
	const char *c[2];

	policy_sub_comms(p, key, value, c);
	policy_count_add(p->stored_counts, c[0], 1);
	policy_count_add(p->stored_counts, c[1], 1);
	return 0;
}

/* Count the snapshot's subscriptions per community (on swap and when the
 * communities change).  Gone ones stay counted in sub_delta. */
static void
policy_recount_stored(struct policy *p)
{
	ht_free(p->stored_counts, free);
	p->stored_counts = ht_new();
	ht_foreach(p->snap->subs, policy_recount_one_cb, p);
}

/* ---- decisions -------------------------------------------------------------- */

/* What one decision looks at. */
struct policy_q {
	const struct ev *ev;
	enum imgw_kind kind;
	const char *ext_src, *ext_dst;	/* external communities or NULL */
	char from[ADDR_BARE_MAX + 1], to[ADDR_BARE_MAX + 1];
	const char *from_dom, *to_dom;
	uint64_t now;
	int commit;
	/* what the snapshot holds for the (at most two) external
	 * communities and for '*', looked up once per decision */
	struct policy_q_comm {
		const char *name;
		const struct policy_settings *s;
		const struct policy_scope *scope;
	} comm[2];
	const struct policy_scope *star;
	int star_known;
};

static void
policy_bare(char *out, size_t outlen, const char *addr)
{
	size_t n = strcspn(addr, "/");

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, addr, n);
	out[n] = '\0';
}

static const char *
policy_domain_of(const char *bare)
{
	const char *at = strrchr(bare, '@');

	return at != NULL ? at + 1 : bare;
}

static const struct policy_settings *
policy_settings_of(const struct policy *p, const char *community)
{
	const struct policy_settings *s = ht_get(p->snap->settings, community);

	return s != NULL ? s : &p->defaults;
}

/* The cache entry of `community` in q, filled at first use. */
static const struct policy_q_comm *
policy_q_comm(const struct policy *p, struct policy_q *q, const char *community)
{
	struct policy_q_comm *c;
	size_t i;

	for (i = 0; i < 2; i++) {
		c = &q->comm[i];
		if (c->name == NULL) {
			c->name = community;
			c->s = policy_settings_of(p, community);
			c->scope = ht_get(p->snap->scopes, community);
			return c;
		}
		if (c->name == community || strcmp(c->name, community) == 0)
			return c;
	}
	/* not one of the decision's two communities: look it up now */
	c = &q->comm[1];
	c->name = community;
	c->s = policy_settings_of(p, community);
	c->scope = ht_get(p->snap->scopes, community);
	return c;
}

static const struct policy_settings *
policy_q_settings(const struct policy *p, struct policy_q *q,
    const char *community)
{
	return policy_q_comm(p, q, community)->s;
}

/* The scopes of `community` and of '*' (either may be NULL). */
static void
policy_q_scopes(const struct policy *p, struct policy_q *q,
    const char *community, const struct policy_scope *scopes[2])
{
	if (!q->star_known) {
		q->star = ht_get(p->snap->scopes, "*");
		q->star_known = 1;
	}
	scopes[0] = policy_q_comm(p, q, community)->scope;
	scopes[1] = q->star;
}

static int
policy_is_local(const struct policy *p, const char *community)
{
	return p->local != NULL && community != NULL &&
	    strcmp(p->local, community) == 0;
}

static void policy_rule_format(struct policy *p);

/* Refuse: fill the verdict and count the refusal under `what`. */
static void
policy_refuse(struct policy *p, struct policy_q *q, struct router_verdict *v,
    const char *condition, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
policy_refuse(struct policy *p, struct policy_q *q, struct router_verdict *v,
    const char *condition, const char *what, const char *fmt, ...)
{
	char name[96];
	va_list ap;

	v->refuse = 1;
	v->condition = condition;
	policy_rule_format(p);
	v->rule = p->rule_buf;
	va_start(ap, fmt);
	vsnprintf(p->text_buf, sizeof(p->text_buf), fmt, ap);
	va_end(ap);
	v->text = p->text_buf;
	if (q->commit) {
		snprintf(name, sizeof(name), "refused.%s", what);
		counters_add(&p->ctr, name, 1);
	}
}

static void
policy_rule_name(struct policy *p, const char *community,
    const struct policy_rule *r, const char *setting)
{
	p->rn_rule = r;
	p->rn_community = community;
	p->rn_setting = setting;
}

/* The name policy_rule_name noted, into p->rule_buf ("default" before
 * any). */
static void
policy_rule_format(struct policy *p)
{
	const struct policy_rule *r = p->rn_rule;

	if (r != NULL)
		snprintf(p->rule_buf, sizeof(p->rule_buf),
		    "community:%s/%s:#%lld", r->community,
		    policy_kind_names[r->kind], (long long)r->id);
	else if (p->rn_community != NULL)
		snprintf(p->rule_buf, sizeof(p->rule_buf), "community:%s/%s",
		    p->rn_community, p->rn_setting);
	else if (p->rn_setting != NULL)
		snprintf(p->rule_buf, sizeof(p->rule_buf), "global/%s",
		    p->rn_setting);
	else
		snprintf(p->rule_buf, sizeof(p->rule_buf), "default");
}

/* Block rules of `community` and of '*' against both ends; 0 or -1. */
static int
policy_check_blocks(struct policy *p, struct policy_q *q,
    const char *community, struct router_verdict *v)
{
	const struct policy_scope *scopes[2];
	const struct policy_rule *r;
	const char *ends[2] = { q->from, q->to };
	const char *doms[2] = { q->from_dom, q->to_dom };
	size_t i, e;

	policy_q_scopes(p, q, community, scopes);
	for (i = 0; i < 2; i++) {
		if (scopes[i] == NULL)
			continue;
		for (e = 0; e < 2; e++) {
			r = policy_matcher_find(&scopes[i]->m[POLICY_BLOCK_USER],
			    ends[e]);
			if (r == NULL)
				r = policy_matcher_find(
				    &scopes[i]->m[POLICY_BLOCK_DOMAIN], doms[e]);
			if (r != NULL) {
				policy_rule_name(p, community, r, NULL);
				policy_refuse(p, q, v, IMGW_ERR_FORBIDDEN,
				    policy_kind_names[r->kind], "%s is blocked "
				    "for community '%s'", r->kind ==
				    POLICY_BLOCK_USER ? ends[e] : doms[e],
				    community);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * May local user `user` use external `community`?  The allowing rule is
 * named in p->rule_buf.  1 yes, 0 no.
 */
static int
policy_access(struct policy *p, struct policy_q *q, const char *community,
    const char *user, const struct policy_settings *s, int *unresolved_r)
{
	const struct policy_scope *scopes[2];
	const struct policy_rule *r;
	size_t i, j;
	int m;

	*unresolved_r = 0;
	if (s->access == POLICY_ACCESS_EVERYONE) {
		policy_rule_name(p, community, NULL, "everyone");
		return 1;
	}
	policy_q_scopes(p, q, community, scopes);
	for (i = 0; i < 2; i++) {
		if (scopes[i] == NULL)
			continue;
		r = policy_matcher_find(&scopes[i]->m[POLICY_ALLOW_USER], user);
		if (r != NULL) {
			policy_rule_name(p, community, r, NULL);
			return 1;
		}
	}
	for (i = 0; i < 2; i++) {
		if (scopes[i] == NULL || p->dir.member == NULL)
			continue;
		for (j = 0; j < scopes[i]->ndirusers; j++) {
			r = scopes[i]->dirusers[j];
			m = p->dir.member(p->dir.arg, 1, r->value, user);
			if (m == 1) {
				policy_rule_name(p, community, r, NULL);
				return 1;
			}
			if (m < 0)
				*unresolved_r = 1;
		}
		for (j = 0; j < scopes[i]->ngroups; j++) {
			r = scopes[i]->groups[j];
			m = p->dir.member(p->dir.arg, 0, r->value, user);
			if (m == 1) {
				policy_rule_name(p, community, r, NULL);
				return 1;
			}
			if (m < 0)
				*unresolved_r = 1;
		}
	}
	if (s->default_allow) {
		policy_rule_name(p, community, NULL, "default-allow");
		return 1;
	}
	return 0;
}

static int
policy_check_access(struct policy *p, struct policy_q *q,
    const char *community, const char *user, struct router_verdict *v)
{
	const struct policy_settings *s = policy_q_settings(p, q, community);
	int unresolved;

	if (policy_access(p, q, community, user, s, &unresolved))
		return 0;
	policy_rule_name(p, community, NULL, "default-deny");
	policy_refuse(p, q, v, IMGW_ERR_FORBIDDEN, "default-deny",
	    "%s may not use community '%s'%s", user, community, unresolved
	    ? " (directory groups not loaded yet)" : "");
	return -1;
}

static int
policy_is_subscription(enum imgw_kind k)
{
	return k == IMGW_EV_SUBSCRIBE || k == IMGW_EV_SUBSCRIBED ||
	    k == IMGW_EV_UNSUBSCRIBE || k == IMGW_EV_UNSUBSCRIBED;
}

static int
policy_capabilities(struct policy *p, struct policy_q *q,
    const char *community, struct router_verdict *v)
{
	const struct policy_settings *s = policy_q_settings(p, q, community);
	const char *ct = q->ev->e.content_type;

	if (q->kind == IMGW_EV_MESSAGE && !s->allow_rich_text && ct != NULL &&
	    strncasecmp(ct, "text/plain", 10) != 0) {
		policy_rule_name(p, community, NULL, "rich-text");
		policy_refuse(p, q, v, IMGW_ERR_FEATURE_NOT_IMPLEMENTED,
		    "rich-text", "rich text (%s) does not cross to or from "
		    "community '%s'", ct, community);
		return -1;
	}
	if (q->kind == IMGW_EV_CHATSTATE && !s->allow_typing) {
		policy_rule_name(p, community, NULL, "typing");
		policy_refuse(p, q, v, IMGW_ERR_FEATURE_NOT_IMPLEMENTED,
		    "typing", "typing notifications do not cross to or from "
		    "community '%s'", community);
		return -1;
	}
	return 0;
}

/* The conversation of two bare addresses, if active at q->now. */
static struct policy_conv *
policy_conv_find(struct policy *p, struct policy_q *q, char *key,
    size_t keylen)
{
	struct policy_conv *c;
	int sw = strcmp(q->from, q->to) > 0;

	if (policy_pair_key(key, keylen, sw ? q->to : q->from,
	    sw ? q->from : q->to) < 0)
		return NULL;
	c = ht_get(p->convs, key);
	if (c != NULL && q->now - c->last_ms >= (uint64_t)p->snap->session_idle
	    * 1000)
		return NULL;	/* idle: as good as gone (the sweep frees it) */
	return c;
}

static void
policy_conv_drop(struct policy *p, const char *key)
{
	struct policy_conv *c = ht_del(p->convs, key);

	if (c == NULL)
		return;
	policy_count_add(p->conv_counts, c->comm[0], -1);
	policy_count_add(p->conv_counts, c->comm[1], -1);
	policy_conv_free(c);
}

/*
 * Would one more session (or subscription) pass the limit of `community`
 * (NULL: the global one), holding `have` now?  -1 refused (verdict filled).
 */
static int
policy_limit(struct policy *p, struct policy_q *q, const char *community,
    int64_t have, int sessions, struct router_verdict *v)
{
	const struct policy_settings *s;
	int64_t lim;
	const char *what = sessions ? "max-im-sessions" : "max-subscriptions";
	const char *cond = sessions ? IMGW_ERR_RESOURCE_CONSTRAINT
				    : IMGW_ERR_POLICY_VIOLATION;
	const char *things = sessions ? "IM sessions" : "presence subscriptions";

	if (community == NULL) {
		lim = sessions ? p->snap->max_im_sessions
			       : p->snap->max_subscriptions;
	} else {
		s = policy_q_settings(p, q, community);
		lim = sessions ? s->max_im_sessions : s->max_subscriptions;
	}
	if (lim == POLICY_NO_LIMIT || have < lim)
		return 0;
	policy_rule_name(p, community, NULL, what);
	if (community == NULL)
		policy_refuse(p, q, v, cond, what, "the gateway's limit of %lld "
		    "%s is reached", (long long)lim, things);
	else
		policy_refuse(p, q, v, cond, what, "the limit of %lld %s of "
		    "community '%s' is reached", (long long)lim, things,
		    community);
	return -1;
}

/* Conversations: inbound initiation, session limits, bookkeeping. */
static int
policy_sessions_check(struct policy *p, struct policy_q *q,
    struct router_verdict *v)
{
	char key[2 * (ADDR_BARE_MAX + 1)];
	struct policy_conv *c;
	const char *comms[2] = { q->ext_dst, q->ext_src };
	int sw = strcmp(q->from, q->to) > 0;
	size_t i;

	c = policy_conv_find(p, q, key, sizeof(key));
	/* inbound: the recipient is the local user of ext_src */
	if (q->ext_src != NULL &&
	    !policy_q_settings(p, q, q->ext_src)->inbound_initiate &&
	    (c == NULL || !c->spoke[sw ? 0 : 1])) {
		policy_rule_name(p, q->ext_src, NULL, "inbound-initiate");
		policy_refuse(p, q, v, IMGW_ERR_NOT_ALLOWED, "inbound-initiate",
		    "users of community '%s' may only answer: %s has not "
		    "written to %s", q->ext_src, q->to, q->from);
		return -1;
	}
	if (c == NULL && q->kind == IMGW_EV_MESSAGE) {
		if (p->snap->max_im_sessions != POLICY_NO_LIMIT ||
		    (q->ext_src != NULL && policy_q_settings(p, q,
		    q->ext_src)->max_im_sessions != POLICY_NO_LIMIT) ||
		    (q->ext_dst != NULL && policy_q_settings(p, q,
		    q->ext_dst)->max_im_sessions != POLICY_NO_LIMIT))
			policy_expire(p, q->now);	/* count only the live */
		if (policy_limit(p, q, NULL, (int64_t)ht_count(p->convs), 1,
		    v) < 0)
			return -1;
		for (i = 0; i < 2; i++)
			if (comms[i] != NULL && policy_limit(p, q, comms[i],
			    policy_count_get(p->conv_counts, comms[i]), 1, v) < 0)
				return -1;
	}
	if (!q->commit)
		return 0;
	if (c == NULL && q->kind == IMGW_EV_MESSAGE) {
		policy_conv_drop(p, key);	/* an idle one not yet swept */
		c = xcalloc(1, sizeof(*c));
		c->addr[0] = xstrdup(sw ? q->to : q->from);
		c->addr[1] = xstrdup(sw ? q->from : q->to);
		for (i = 0; i < 2; i++) {
			if (comms[i] != NULL) {
				c->comm[i] = xstrdup(comms[i]);
				policy_count_add(p->conv_counts, comms[i], 1);
			}
		}
		ht_put(p->convs, key, c);
	}
	if (c != NULL) {
		c->last_ms = q->now;
		if (q->kind == IMGW_EV_MESSAGE)
			c->spoke[sw ? 1 : 0] = 1;	/* the sender spoke */
	}
	return 0;
}

/* Is the subscription pair `key` known (stored or admitted, not gone)? */
static int
policy_sub_known(const struct policy *p, const char *key)
{
	if (ht_get(p->admitted, key) != NULL)
		return 1;
	return ht_get(p->snap->subs, key) != NULL &&
	    ht_get(p->gone, key) == NULL;
}

static int64_t
policy_subs_of(const struct policy *p, const char *community)
{
	if (community == NULL)
		return p->snap->nsubs - (int64_t)p->ngone + (int64_t)p->nadmitted;
	return policy_count_get(p->stored_counts, community) +
	    policy_count_get(p->sub_delta, community);
}

static int
policy_subscriptions_check(struct policy *p, struct policy_q *q,
    struct router_verdict *v)
{
	char key[2 * (ADDR_BARE_MAX + 1)];
	const char *comms[2] = { q->ext_dst, q->ext_src };
	struct policy_admitted *a;
	const char *stored;
	size_t i;

	if (q->kind == IMGW_EV_SUBSCRIBE) {
		if (policy_pair_key(key, sizeof(key), q->from, q->to) < 0)
			return 0;
		if (policy_sub_known(p, key))
			return 0;
		if (policy_limit(p, q, NULL, policy_subs_of(p, NULL), 0, v) < 0)
			return -1;
		for (i = 0; i < 2; i++)
			if (comms[i] != NULL && policy_limit(p, q, comms[i],
			    policy_subs_of(p, comms[i]), 0, v) < 0)
				return -1;
		if (!q->commit)
			return 0;
		a = xcalloc(1, sizeof(*a));
		a->admitted_ms = q->now;
		for (i = 0; i < 2; i++) {
			if (comms[i] != NULL) {
				a->comm[i] = xstrdup(comms[i]);
				policy_count_add(p->sub_delta, comms[i], 1);
			}
		}
		ht_put(p->admitted, key, a);
		p->nadmitted++;
		return 0;
	}
	if (!q->commit || (q->kind != IMGW_EV_UNSUBSCRIBE &&
	    q->kind != IMGW_EV_UNSUBSCRIBED))
		return 0;
	/* unsubscribe: from watches to; unsubscribed: to watches from */
	if (policy_pair_key(key, sizeof(key), q->kind == IMGW_EV_UNSUBSCRIBE
	    ? q->from : q->to, q->kind == IMGW_EV_UNSUBSCRIBE ? q->to : q->from)
	    < 0)
		return 0;
	if ((a = ht_del(p->admitted, key)) != NULL) {
		policy_count_add(p->sub_delta, a->comm[0], -1);
		policy_count_add(p->sub_delta, a->comm[1], -1);
		p->nadmitted--;
		policy_admitted_free(a);
	} else if ((stored = ht_get(p->snap->subs, key)) != NULL &&
	    ht_get(p->gone, key) == NULL) {
		const char *sc[2];

		ht_put(p->gone, key, xstrdup(stored));
		p->ngone++;
		policy_sub_comms(p, key, stored, sc);
		policy_count_add(p->sub_delta, sc[0], -1);
		policy_count_add(p->sub_delta, sc[1], -1);
	}
	return 0;
}

void
policy_decide(struct policy *p, const struct ev *ev, const char *src,
    const char *dst, uint64_t now_ms, int commit, struct router_verdict *v)
{
	struct policy_q q = {
		.ev = ev,
		.kind = ev->e.kind,
		.now = now_ms,
		.commit = commit,
	};
	const struct policy_settings *s;

	*v = (struct router_verdict){ 0 };
	p->rn_rule = NULL;
	p->rn_community = p->rn_setting = NULL;
	memcpy(p->rule_buf, "default", sizeof("default"));
	v->rule = p->rule_buf;
	q.ext_src = src != NULL && !policy_is_local(p, src) ? src : NULL;
	q.ext_dst = dst != NULL && !policy_is_local(p, dst) ? dst : NULL;
	if (q.ext_src == NULL && q.ext_dst == NULL)
		return;
	policy_bare(q.from, sizeof(q.from), ev->e.from);
	policy_bare(q.to, sizeof(q.to), ev->e.to);
	q.from_dom = policy_domain_of(q.from);
	q.to_dom = policy_domain_of(q.to);

	if (q.ext_dst != NULL && policy_check_blocks(p, &q, q.ext_dst, v) < 0)
		return;
	if (q.ext_src != NULL && policy_check_blocks(p, &q, q.ext_src, v) < 0)
		return;
	if (q.kind == IMGW_EV_ERROR)
		return;
	/* outbound: the sender uses ext_dst; inbound: the recipient ext_src */
	if (q.ext_dst != NULL &&
	    policy_check_access(p, &q, q.ext_dst, q.from, v) < 0)
		return;
	if (q.ext_src != NULL &&
	    policy_check_access(p, &q, q.ext_src, q.to, v) < 0)
		return;
	if (q.ext_src != NULL && (q.kind == IMGW_EV_SUBSCRIBE ||
	    q.kind == IMGW_EV_PROBE)) {
		s = policy_q_settings(p, &q, q.ext_src);
		if (!s->inbound_subscribe) {
			policy_rule_name(p, q.ext_src, NULL,
			    "inbound-subscribe");
			policy_refuse(p, &q, v, IMGW_ERR_NOT_ALLOWED,
			    "inbound-subscribe", "users of community '%s' may "
			    "not watch presence here", q.ext_src);
			return;
		}
	}
	if (q.ext_dst != NULL && policy_capabilities(p, &q, q.ext_dst, v) < 0)
		return;
	if (q.ext_src != NULL && policy_capabilities(p, &q, q.ext_src, v) < 0)
		return;
	if (q.kind == IMGW_EV_MESSAGE || q.kind == IMGW_EV_CHATSTATE) {
		if (policy_sessions_check(p, &q, v) < 0)
			return;
	} else if (policy_is_subscription(q.kind)) {
		if (policy_subscriptions_check(p, &q, v) < 0)
			return;
	}
	/* allowed: the access rule noted last allowed it; the router drops
	 * the name of an allowed event, `policy test` shows it */
	if (!commit)
		policy_rule_format(p);
}

void
policy_name_allowed(struct policy *p, struct router_verdict *v)
{
	if (!v->refuse) {
		policy_rule_format(p);
		v->rule = p->rule_buf;
	}
}

void
policy_router_hook(void *arg, const struct ev *ev, const char *src,
    const char *dst, struct router_verdict *v)
{
	policy_decide(arg, ev, src, dst, util_now_ms(), 1, v);
	if (!v->refuse)
		v->rule = NULL;
}

static int
policy_expire_cb(const char *key, void *value, void *arg)
{
	struct policy *p = arg;
	struct policy_conv *c = value;

	if (p->expire_now - c->last_ms >= (uint64_t)p->snap->session_idle * 1000)
		policy_conv_drop(p, key);
	return 0;
}

void
policy_expire(struct policy *p, uint64_t now_ms)
{
	p->expire_now = now_ms;
	ht_foreach(p->convs, policy_expire_cb, p);
}

enum policy_audit
policy_audit_level(const struct policy *p, enum imgw_kind kind,
    const char *src, const char *dst)
{
	const char *comms[2] = { src, dst };
	enum policy_audit best = POLICY_AUDIT_NONE;
	const struct policy_settings *s;
	int on;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (comms[i] == NULL || policy_is_local(p, comms[i]))
			continue;
		s = policy_settings_of(p, comms[i]);
		switch (kind) {
		case IMGW_EV_MESSAGE:
		case IMGW_EV_ERROR:
			on = s->audit_im;
			break;
		case IMGW_EV_SUBSCRIBE:
		case IMGW_EV_SUBSCRIBED:
		case IMGW_EV_UNSUBSCRIBE:
		case IMGW_EV_UNSUBSCRIBED:
			on = s->audit_subscriptions;
			break;
		default:	/* presence, probe, chat states */
			on = s->audit_presence;
			break;
		}
		if (on && s->audit_level > best)
			best = s->audit_level;
	}
	return best;
}

int64_t
policy_sessions(const struct policy *p, const char *community)
{
	if (community == NULL)
		return (int64_t)ht_count(p->convs);
	return policy_count_get(p->conv_counts, community);
}

int64_t
policy_subscriptions(const struct policy *p, const char *community)
{
	return policy_subs_of(p, community);
}

/* ---- status -------------------------------------------------------------------- */

static json_object *
policy_limit_json(int64_t lim)
{
	return lim == POLICY_NO_LIMIT ? NULL : json_object_new_int64(lim);
}

/* The effective limit: the community's, capped by the global one. */
static int64_t
policy_cap(int64_t comm, int64_t all)
{
	if (all == POLICY_NO_LIMIT)
		return comm;
	if (comm == POLICY_NO_LIMIT || comm > all)
		return all;
	return comm;
}

struct policy_status_walk {
	const struct policy *p;
	json_object *comms;
};

static void
policy_status_community(const struct policy *p, json_object *comms,
    const char *name)
{
	const struct policy_settings *s = policy_settings_of(p, name);
	json_object *o, *x;

	if (json_object_object_get_ex(comms, name, NULL))
		return;
	o = json_object_new_object();
	json_object_object_add(o, "configured", json_object_new_boolean(
	    ht_get(p->snap->settings, name) != NULL));
	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(
	    policy_sessions(p, name)));
	json_object_object_add(x, "limit", policy_limit_json(policy_cap(
	    s->max_im_sessions, p->snap->max_im_sessions)));
	json_object_object_add(o, "im_sessions", x);
	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(
	    policy_subscriptions(p, name)));
	json_object_object_add(x, "limit", policy_limit_json(policy_cap(
	    s->max_subscriptions, p->snap->max_subscriptions)));
	json_object_object_add(o, "subscriptions", x);
	json_object_object_add(comms, name, o);
}

static int
policy_status_settings_cb(const char *key, void *value, void *arg)
{
	struct policy_status_walk *w = arg;

	policy_status_community(w->p, w->comms, key);
	return 0;
}

static int
policy_status_counts_cb(const char *key, void *value, void *arg)
{
	struct policy_status_walk *w = arg;

	if (strcmp(key, "") != 0)
		policy_status_community(w->p, w->comms, key);
	return 0;
}

json_object *
policy_status_json(const struct policy *p)
{
	json_object *o = json_object_new_object(), *x, *r;
	struct policy_status_walk w = { p, json_object_new_object() };
	size_t i;

	json_object_object_add(o, "local", p->local != NULL
	    ? json_object_new_string(p->local) : NULL);
	x = json_object_new_object();
	json_object_object_add(x, "serial", json_object_new_int64(
	    (int64_t)p->serial_loaded));
	json_object_object_add(x, "age_ms", json_object_new_int64(
	    p->swap_ms ? (int64_t)(util_now_ms() - p->swap_ms) : -1));
	json_object_object_add(x, "communities", json_object_new_int64(
	    (int64_t)ht_count(p->snap->settings)));
	json_object_object_add(x, "rules", json_object_new_int64(
	    (int64_t)p->snap->nrules));
	json_object_object_add(x, "session_idle", json_object_new_int64(
	    p->snap->session_idle));
	if (p->load_error[0] != '\0')
		json_object_object_add(x, "error", json_object_new_string(
		    p->load_error));
	json_object_object_add(o, "snapshot", x);

	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(
	    policy_sessions(p, NULL)));
	json_object_object_add(x, "limit", policy_limit_json(
	    p->snap->max_im_sessions));
	json_object_object_add(o, "im_sessions", x);
	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(
	    policy_subscriptions(p, NULL)));
	json_object_object_add(x, "limit", policy_limit_json(
	    p->snap->max_subscriptions));
	json_object_object_add(o, "subscriptions", x);

	ht_foreach(p->snap->settings, policy_status_settings_cb, &w);
	ht_foreach(p->conv_counts, policy_status_counts_cb, &w);
	ht_foreach(p->stored_counts, policy_status_counts_cb, &w);
	for (i = 0; i < p->nknown; i++)
		policy_status_community(p, w.comms, p->known[i]);
	json_object_object_add(o, "communities", w.comms);

	r = json_object_new_object();
	for (i = 0; i < p->ctr.n; i++)
		json_object_object_add(r, p->ctr.v[i].name + strlen("refused."),
		    json_object_new_int64(p->ctr.v[i].value));
	json_object_object_add(o, "refused", r);
	return o;
}

void
policy_set_conf(struct policy *p, const struct conf *c)
{
	size_t i, j;

	for (i = 0; i < p->nknown; i++)
		free(p->known[i]);
	free(p->known);
	p->known = NULL;
	p->nknown = 0;
	ht_free(p->domains, free);
	p->domains = ht_new();
	if (c == NULL)
		return;
	policy_set_local(p, NULL);
	p->known = xcalloc(c->ncomms + 1, sizeof(*p->known));
	for (i = 0; i < c->ncomms; i++) {
		if (c->comms[i].local)
			policy_set_local(p, c->comms[i].name);
		else
			p->known[p->nknown++] = xstrdup(c->comms[i].name);
		for (j = 0; j < c->comms[i].ndomains; j++)
			free(ht_put(p->domains, c->comms[i].domains[j],
			    xstrdup(c->comms[i].name)));
	}
	policy_recount_stored(p);
}
