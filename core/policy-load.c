/*
 * Policy snapshots from the store: a job reads the policy tables on the
 * store's worker into a new snapshot, its done callback swaps it in on the
 * loop.  At most one load is in the store's queue; a refresh asked while one
 * is pending runs once more after it (the pending one may have read the
 * tables before the change that asked).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ht.h"
#include "log.h"
#include "policy.h"
#include "policy-internal.h"
#include "store.h"
#include "util.h"

/* One load in the store's queue.  Owned by the queue until done runs. */
struct policy_load {
	struct policy *p;		/* NULL: the policy is gone */
	struct policy_snap *snap;	/* built by the job */
	uint64_t serial;
};

static const char policy_sql_community[] =
    "SELECT community, default_allow, local_access, inbound_subscribe, "
    "inbound_initiate, audit_level, audit_im, audit_subscriptions, "
    "audit_presence, allow_rich_text, allow_typing, max_im_sessions, "
    "max_subscriptions FROM imgw_policy_community";
static const char policy_sql_rule[] =
    "SELECT id, community, kind, value FROM imgw_policy_rule ORDER BY id";
static const char policy_sql_global[] =
    "SELECT name, value FROM imgw_policy_global";
static const char policy_sql_subscription[] =
    "SELECT community, watcher, presentity, state FROM imgw_subscription";

/* ---- on the worker ----------------------------------------------------------- */

static void
policy_row_skipped(struct policy_snap *snap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
policy_row_skipped(struct policy_snap *snap, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	snap->rows_skipped++;
	if (snap->rows_error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snap->rows_error = xstrdup(buf);
}

static const char *
policy_col_text(const struct store_val *v, char *buf, size_t buflen)
{
	if (v->type == STORE_TEXT)
		return v->s;
	if (v->type == STORE_INT) {
		snprintf(buf, buflen, "%" PRId64, v->i);
		return buf;
	}
	return NULL;
}

static int
policy_community_row(void *arg, const struct store_val *cols, size_t n)
{
	struct policy_snap *snap = arg;
	struct policy_settings s;
	char err[256], num[32];
	const char *name, *val;
	size_t i;

	if (n < 13 || (name = policy_col_text(&cols[0], num, sizeof(num)))
	    == NULL)
		return 0;
	name = xstrdup(name);
	policy_settings_default(&s);
	for (i = 0; policy_setting_keys[i] != NULL && i + 1 < n; i++) {
		if ((val = policy_col_text(&cols[i + 1], num, sizeof(num)))
		    == NULL) {
			/* NULL: the default, and no limit for limits */
			if (!strncmp(policy_setting_keys[i], "max_", 4))
				policy_settings_set(&s, policy_setting_keys[i],
				    "none", err, sizeof(err));
			continue;
		}
		if (policy_settings_set(&s, policy_setting_keys[i], val, err,
		    sizeof(err)) < 0) {
			policy_row_skipped(snap, "imgw_policy_community '%s': "
			    "%s", name, err);
			free((char *)name);
			return 0;
		}
	}
	if (policy_snap_community(snap, name, &s) < 0)
		policy_row_skipped(snap, "imgw_policy_community '%s' twice",
		    name);
	free((char *)name);
	return 0;
}

static int
policy_rule_row(void *arg, const struct store_val *cols, size_t n)
{
	struct policy_snap *snap = arg;
	char err[512], b1[32], b2[32], b3[32];

	if (n < 4)
		return 0;
	if (policy_snap_rule(snap, store_val_int(&cols[0], 0),
	    policy_col_text(&cols[1], b1, sizeof(b1)),
	    policy_col_text(&cols[2], b2, sizeof(b2)),
	    policy_col_text(&cols[3], b3, sizeof(b3)), err, sizeof(err)) < 0)
		policy_row_skipped(snap, "imgw_policy_rule %s", err);
	return 0;
}

static int
policy_global_row(void *arg, const struct store_val *cols, size_t n)
{
	struct policy_snap *snap = arg;
	char b1[32], b2[32];
	const char *name, *val;

	if (n < 2)
		return 0;
	name = policy_col_text(&cols[0], b1, sizeof(b1));
	val = policy_col_text(&cols[1], b2, sizeof(b2));
	if (val == NULL)
		val = "none";
	if (policy_snap_global(snap, name, val) < 0)
		policy_row_skipped(snap, "imgw_policy_global '%s' = '%s': "
		    "unknown name or bad value", name ? name : "", val);
	return 0;
}

/* Subscriptions that hold a place: every state but the ended ones. */
static int
policy_subscription_row(void *arg, const struct store_val *cols, size_t n)
{
	struct policy_snap *snap = arg;
	char b1[32], b2[32], b3[32], b4[32];
	const char *state;

	if (n < 4)
		return 0;
	state = policy_col_text(&cols[3], b4, sizeof(b4));
	if (state != NULL && (!strcmp(state, "none") ||
	    !strcmp(state, "unsubscribed") || !strcmp(state, "terminated") ||
	    !strcmp(state, "removed")))
		return 0;
	policy_snap_subscription(snap, policy_col_text(&cols[0], b1,
	    sizeof(b1)), policy_col_text(&cols[1], b2, sizeof(b2)),
	    policy_col_text(&cols[2], b3, sizeof(b3)));
	return 0;
}

int
policy_snap_read(struct store_conn *sc, struct policy_snap *snap)
{
	if (store_query(sc, policy_sql_community, NULL, 0,
	    policy_community_row, snap) < 0)
		return -1;
	if (store_query(sc, policy_sql_rule, NULL, 0, policy_rule_row,
	    snap) < 0)
		return -1;
	if (store_query(sc, policy_sql_global, NULL, 0, policy_global_row,
	    snap) < 0)
		return -1;
	if (store_query(sc, policy_sql_subscription, NULL, 0,
	    policy_subscription_row, snap) < 0)
		return -1;
	return 0;
}

static int
policy_load_job(struct store_conn *sc, void *arg)
{
	struct policy_load *l = arg;

	return policy_snap_read(sc, l->snap);
}

/* ---- on the loop ----------------------------------------------------------------- */

static void policy_load_start(struct policy *p);

/* Non-zero when `c` names no configured community (nor '*'). */
static int
policy_load_unknown(const struct policy *p, const char *c)
{
	size_t j;

	if (!strcmp(c, "*") || (p->local && !strcmp(c, p->local)) ||
	    p->nknown == 0)
		return 0;
	for (j = 0; j < p->nknown; j++)
		if (!strcmp(p->known[j], c))
			return 0;
	return 1;
}

static int
policy_load_check_setting(const char *key, void *value, void *arg)
{
	if (policy_load_unknown(arg, key))
		log_msg(IMGW_LOG_WARNING, "policy", NULL, "the settings of "
		    "community '%s' name a community that is not configured: "
		    "they apply to nothing", key);
	return 0;
}

/*
 * Warn about rules and settings for communities nobody configured: a
 * stored policy outlives the configuration that named it (a community
 * removed, another node with other communities), so it is no error.
 * imgwctl refuses to add one.
 */
static void
policy_load_check_names(struct policy *p, const struct policy_snap *snap)
{
	size_t i;
	const char *c;

	for (i = 0; i < snap->nrules; i++) {
		c = snap->rules[i]->community;
		if (policy_load_unknown(p, c))
			log_msg(IMGW_LOG_WARNING, "policy", NULL, "rule #%lld "
			    "names community '%s', which is not configured: it "
			    "applies to nothing", (long long)snap->rules[i]->id,
			    c);
	}
	ht_foreach(snap->settings, policy_load_check_setting, p);
}

static void
policy_load_done(void *arg, int rc, const char *err)
{
	struct policy_load *l = arg;
	struct policy *p = l->p;

	if (p == NULL) {
		policy_snap_free(l->snap);
		free(l);
		return;
	}
	p->loading = NULL;
	if (rc == 0) {
		if (l->snap->rows_skipped > 0)
			log_msg(IMGW_LOG_WARNING, "policy", NULL, "%zu policy "
			    "rows skipped; first: %s", l->snap->rows_skipped,
			    l->snap->rows_error);
		if (p->load_error[0] != '\0')
			log_msg(IMGW_LOG_NOTICE, "policy", NULL, "policies "
			    "read from the store again");
		p->load_error[0] = '\0';
		policy_load_check_names(p, l->snap);
		log_msg(IMGW_LOG_DEBUG, "policy", NULL, "snapshot %llu: %zu "
		    "communities, %zu rules, %lld subscriptions",
		    (unsigned long long)l->serial, ht_count(l->snap->settings),
		    l->snap->nrules, (long long)l->snap->nsubs);
		policy_swap(p, l->snap);
		p->serial_loaded = l->serial;
	} else {
		policy_snap_free(l->snap);
		p->serial_failed = l->serial;
		if (p->load_error[0] == '\0')
			log_msg(IMGW_LOG_WARNING, "policy", NULL, "cannot read "
			    "the policies (the previous ones stay in force): %s",
			    err ? err : "store error");
		snprintf(p->load_error, sizeof(p->load_error), "%s",
		    err && *err ? err : "store error");
	}
	free(l);
	if (p->again) {
		p->again = 0;
		policy_load_start(p);
	}
}

static void
policy_load_start(struct policy *p)
{
	struct policy_load *l;

	if (p->store == NULL)
		return;
	l = xcalloc(1, sizeof(*l));
	l->p = p;
	l->snap = policy_snap_new();
	l->serial = p->serial_asked;
	if (store_submit(p->store, policy_load_job, policy_load_done, l) < 0) {
		policy_snap_free(l->snap);
		free(l);
		p->serial_failed = p->serial_asked;
		snprintf(p->load_error, sizeof(p->load_error), "the store's "
		    "queue is full");
		return;
	}
	p->loading = l;
	p->serial_loading = l->serial;
}

uint64_t
policy_refresh(struct policy *p)
{
	if (p->store == NULL)
		return 0;
	p->serial_asked++;
	if (p->loading != NULL)
		p->again = 1;
	else
		policy_load_start(p);
	return p->serial_asked;
}

int
policy_loaded(const struct policy *p, uint64_t serial, char *err,
    size_t errlen)
{
	if (p->serial_loaded >= serial)
		return 1;
	if (p->serial_failed >= serial) {
		snprintf(err, errlen, "%s", p->load_error);
		return -1;
	}
	return 0;
}

static void
policy_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	policy_refresh(arg);
}

void
policy_set_store(struct policy *p, struct store *store, unsigned refresh_s)
{
	struct timeval tv = { (time_t)refresh_s, 0 };

	if (p->refresh_ev != NULL) {
		event_free(p->refresh_ev);
		p->refresh_ev = NULL;
	}
	if (p->store != store)
		policy_load_detach(p);
	p->store = store;
	p->refresh_s = refresh_s;
	if (store == NULL)
		return;
	if (p->base != NULL && refresh_s > 0) {
		p->refresh_ev = event_new(p->base, -1, EV_PERSIST,
		    policy_refresh_cb, p);
		event_add(p->refresh_ev, &tv);
	}
	policy_refresh(p);
}

void
policy_load_detach(struct policy *p)
{
	if (p->loading != NULL) {
		p->loading->p = NULL;	/* its done callback frees it */
		p->loading = NULL;
		p->serial_failed = p->serial_asked;
		snprintf(p->load_error, sizeof(p->load_error), "the store "
		    "changed while policies were read");
	}
	p->again = 0;
}
