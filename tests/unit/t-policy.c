/*
 * Unit tests of policy evaluation (core/policy.c): snapshots built in
 * memory, a fake directory, no database and no event loop.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include <imgw/imgw.h>

#include "control.h"
#include "ev.h"
#include "policy.h"
#include "router.h"
#include "util.h"
#include "tap.h"

#define NOW	1000000ULL

static struct router_verdict v;

/* A canonical event; freed by the caller. */
static struct ev *
mk(enum imgw_kind kind, const char *from, const char *to)
{
	struct imgw_event e;
	const char *why, *cond;
	struct ev *ev;

	imgw_event_init(&e, kind);
	e.from = from;
	e.to = to;
	if (kind == IMGW_EV_MESSAGE)
		e.body = "hello";
	if (kind == IMGW_EV_ERROR)
		e.condition = "forbidden";
	if ((ev = ev_copy(&e, &why, &cond)) == NULL)
		bail_out("ev_copy %s -> %s: %s", from, to, why);
	return ev;
}

/* Decide (committing) and return 1 when refused. */
static int
refused_ct(struct policy *p, enum imgw_kind kind, const char *from,
    const char *to, const char *src, const char *dst, uint64_t now,
    const char *ct)
{
	struct imgw_event e;
	const char *why, *cond;
	struct ev *ev;

	imgw_event_init(&e, kind);
	e.from = from;
	e.to = to;
	e.body = kind == IMGW_EV_MESSAGE ? "x" : NULL;
	e.content_type = ct;
	if (kind == IMGW_EV_ERROR)
		e.condition = "forbidden";
	if ((ev = ev_copy(&e, &why, &cond)) == NULL)
		bail_out("ev_copy: %s", why);
	policy_decide(p, ev, src, dst, now, 1, &v);
	policy_name_allowed(p, &v);
	ev_free(ev);
	return v.refuse;
}

static int
refused(struct policy *p, enum imgw_kind kind, const char *from,
    const char *to, const char *src, const char *dst, uint64_t now)
{
	return refused_ct(p, kind, from, to, src, dst, now, NULL);
}

/* corp is local; partner and other are external. */
#define OUT(p, k, f, t)	refused(p, k, f, t, "corp", "partner", NOW)
#define IN(p, k, f, t)	refused(p, k, f, t, "partner", "corp", NOW)

static void
rule(struct policy_snap *s, int64_t id, const char *comm, const char *kind,
    const char *value)
{
	char err[256];

	if (policy_snap_rule(s, id, comm, kind, value, err, sizeof(err)) < 0)
		bail_out("rule %s %s: %s", kind, value, err);
}

static void
settings(struct policy_snap *s, const char *comm, const char *kv)
{
	struct policy_settings st;
	char buf[512], err[256], *save, *tok, *eq;

	policy_settings_default(&st);
	snprintf(buf, sizeof(buf), "%s", kv);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ",
	    &save)) {
		if ((eq = strchr(tok, '=')) == NULL)
			bail_out("settings: %s", tok);
		*eq = '\0';
		if (policy_settings_set(&st, tok, eq + 1, err, sizeof(err)) < 0)
			bail_out("settings: %s", err);
	}
	if (policy_snap_community(s, comm, &st) < 0)
		bail_out("settings: %s twice", comm);
}

static struct policy *
mkpolicy(struct policy_snap *snap)
{
	struct policy *p = policy_new(NULL);

	policy_set_local(p, "corp");
	policy_swap(p, snap);
	return p;
}

/* ---- a fake directory ---------------------------------------------------- */

static const char *fake_groups[][2] = {
	{ "cn=staff,ou=groups,dc=corp", "dave@corp.example" },
	{ "staff", "dave@corp.example" },
	{ "ops", "olga@corp.example" },
};
static int fake_wanted_groups, fake_wanted_users;

static int
fake_member(void *arg, int user, const char *name, const char *addr)
{
	size_t i;

	if (user)
		return strcmp(name, "erin") == 0 ? strcmp(addr,
		    "erin@corp.example") == 0 : -1;
	if (strcmp(name, "unloaded") == 0)
		return -1;
	for (i = 0; i < sizeof(fake_groups) / sizeof(fake_groups[0]); i++)
		if (!strcmp(fake_groups[i][0], name) &&
		    !strcmp(fake_groups[i][1], addr))
			return 1;
	return 0;
}

static void
fake_want(void *arg, const char *const *groups, size_t ng,
    const char *const *users, size_t nu)
{
	fake_wanted_groups = (int)ng;
	fake_wanted_users = (int)nu;
}

/* ---- tests ------------------------------------------------------------------ */

static void
t_defaults(void)
{
	struct policy *p = mkpolicy(policy_snap_new());

	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "bob@partner.example"),
	    "defaults: outbound message allowed");
	ok(!IN(p, IMGW_EV_SUBSCRIBE, "bob@partner.example", "alice@corp.example"),
	    "defaults: inbound subscribe allowed");
	ok(!IN(p, IMGW_EV_CHATSTATE, "bob@partner.example", "alice@corp.example"),
	    "defaults: typing allowed");
	ok(!refused_ct(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "bob@partner.example", "corp", "partner", NOW, "text/html"),
	    "defaults: rich text allowed");
	is_int(policy_audit_level(p, IMGW_EV_MESSAGE, "corp", "partner"),
	    POLICY_AUDIT_METADATA, "defaults: messages audited as metadata");
	is_int(policy_audit_level(p, IMGW_EV_PRESENCE, "corp", "partner"),
	    POLICY_AUDIT_NONE, "defaults: presence not audited");
	is_int(policy_audit_level(p, IMGW_EV_SUBSCRIBE, "partner", "corp"),
	    POLICY_AUDIT_METADATA, "defaults: subscriptions audited");
	policy_free(p);
}

static void
t_blocks(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy *p;

	rule(s, 1, "partner", "block-domain", "*.evil.example");
	rule(s, 2, "partner", "block-user", "mallory@partner.example");
	rule(s, 3, "partner", "block-user", "spam*@partner.example");
	rule(s, 4, "*", "block-domain", "banned.example");
	rule(s, 5, "partner", "block-domain", "Shouty.Example");
	p = mkpolicy(s);

	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "x@a.evil.example"),
	    "block-domain: destination in a wildcard domain refused");
	is_str(v.condition, "forbidden", "block-domain: forbidden");
	is_str(v.rule, "community:partner/block-domain:#1",
	    "block-domain: rule named");
	ok(IN(p, IMGW_EV_MESSAGE, "x@b.c.evil.example", "alice@corp.example"),
	    "block-domain: source in a deeper subdomain refused");
	ok(IN(p, IMGW_EV_SUBSCRIBE, "x@a.evil.example", "alice@corp.example"),
	    "block-domain: subscription from it refused");
	ok(OUT(p, IMGW_EV_SUBSCRIBE, "alice@corp.example", "x@a.evil.example"),
	    "block-domain: subscription to it refused");
	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "x@evil.example"),
	    "block-domain: *.evil.example does not match evil.example");
	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "x@notevil.example"),
	    "block-domain: *.evil.example does not match notevil.example");
	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "bob@shouty.example"),
	    "block-domain: values compare case-insensitively");
	ok(IN(p, IMGW_EV_MESSAGE, "mallory@partner.example/phone",
	    "alice@corp.example"), "block-user: exact address, any resource");
	is_str(v.rule, "community:partner/block-user:#2", "block-user: rule");
	ok(IN(p, IMGW_EV_PRESENCE, "spammer@partner.example",
	    "alice@corp.example"), "block-user: wildcard user");
	ok(!IN(p, IMGW_EV_MESSAGE, "bob@partner.example", "alice@corp.example"),
	    "block-user: others pass");
	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "u@banned.example"),
	    "'*' rules apply to every external community");
	is_str(v.rule, "community:*/block-domain:#4", "'*' rule named");
	ok(refused(p, IMGW_EV_MESSAGE, "alice@corp.example", "u@banned.example",
	    "corp", "other", NOW), "'*' rules apply to another community");
	ok(!refused(p, IMGW_EV_MESSAGE, "alice@corp.example", "x@a.evil.example",
	    "corp", "other", NOW), "partner's rules do not apply to other");
	ok(IN(p, IMGW_EV_ERROR, "x@a.evil.example", "alice@corp.example"),
	    "errors meet the block checks too");
	is_int(policy_audit_level(p, IMGW_EV_MESSAGE, "partner", "corp"),
	    POLICY_AUDIT_METADATA, "audit level unchanged by rules");
	policy_free(p);
}

static void
t_access(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy_dir_ops ops = { fake_member, fake_want, NULL };
	struct policy *p;

	settings(s, "partner", "local_access=listed default_allow=no");
	rule(s, 1, "partner", "allow-user", "alice@corp.example");
	rule(s, 2, "partner", "allow-user", "*@eng.corp.example");
	rule(s, 3, "partner", "allow-group", "cn=Staff,ou=groups,dc=corp");
	rule(s, 4, "*", "allow-group", "ops");
	rule(s, 5, "partner", "allow-user", "erin");
	p = mkpolicy(s);
	policy_set_dir(p, &ops);
	is_int(fake_wanted_groups, 2, "the directory is told the groups");
	is_int(fake_wanted_users, 1, "the directory is told the users");

	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example/desk",
	    "bob@partner.example"), "listed user allowed");
	is_str(v.rule, "community:partner/allow-user:#1",
	    "the allowing rule is named");
	ok(OUT(p, IMGW_EV_MESSAGE, "zoe@corp.example", "bob@partner.example"),
	    "unlisted user refused");
	is_str(v.condition, "forbidden", "unlisted: forbidden");
	is_str(v.rule, "community:partner/default-deny", "unlisted: rule");
	ok(IN(p, IMGW_EV_MESSAGE, "bob@partner.example", "zoe@corp.example"),
	    "inbound to an unlisted user refused");
	ok(IN(p, IMGW_EV_SUBSCRIBE, "bob@partner.example", "zoe@corp.example"),
	    "inbound subscription to an unlisted user refused");
	ok(!OUT(p, IMGW_EV_MESSAGE, "carl@eng.corp.example",
	    "bob@partner.example"), "wildcard allow-user");
	ok(OUT(p, IMGW_EV_MESSAGE, "carl@corp.example.eng.corp.example.x",
	    "bob@partner.example"), "wildcard does not match a longer domain");
	ok(!OUT(p, IMGW_EV_MESSAGE, "dave@corp.example", "bob@partner.example"),
	    "group member (by DN, any case) allowed");
	is_str(v.rule, "community:partner/allow-group:#3", "group rule named");
	ok(!OUT(p, IMGW_EV_MESSAGE, "olga@corp.example", "bob@partner.example"),
	    "member of a '*' group allowed");
	ok(!OUT(p, IMGW_EV_MESSAGE, "erin@corp.example", "bob@partner.example"),
	    "directory user (uid) allowed");
	ok(!refused(p, IMGW_EV_MESSAGE, "zoe@corp.example", "bob@other.example",
	    "corp", "other", NOW), "another community keeps its defaults");
	policy_free(p);

	/* listed with default allow: nobody listed is refused */
	s = policy_snap_new();
	settings(s, "partner", "local_access=listed default_allow=yes");
	rule(s, 1, "partner", "allow-group", "unloaded");
	p = mkpolicy(s);
	policy_set_dir(p, &ops);
	ok(!OUT(p, IMGW_EV_MESSAGE, "zoe@corp.example", "bob@partner.example"),
	    "listed + default_allow: unlisted allowed");
	is_str(v.rule, "community:partner/default-allow", "default-allow named");
	policy_free(p);

	s = policy_snap_new();
	settings(s, "partner", "local_access=listed default_allow=no");
	rule(s, 1, "partner", "allow-group", "unloaded");
	p = mkpolicy(s);
	policy_set_dir(p, &ops);
	ok(OUT(p, IMGW_EV_MESSAGE, "zoe@corp.example", "bob@partner.example"),
	    "a group not loaded yet matches nobody");
	like(v.text, "not loaded yet", "the text says the directory is not "
	    "loaded yet");
	policy_set_dir(p, NULL);
	ok(OUT(p, IMGW_EV_MESSAGE, "dave@corp.example", "bob@partner.example"),
	    "without a directory group rules match nobody");
	policy_free(p);
}

static void
t_inbound(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy *p;

	settings(s, "partner", "inbound_subscribe=no inbound_initiate=no "
	    "allow_rich_text=no allow_typing=no");
	p = mkpolicy(s);
	policy_set_local(p, "corp");

	ok(IN(p, IMGW_EV_SUBSCRIBE, "bob@partner.example", "alice@corp.example"),
	    "inbound subscribe refused");
	is_str(v.condition, "not-allowed", "inbound subscribe: not-allowed");
	is_str(v.rule, "community:partner/inbound-subscribe",
	    "inbound subscribe: rule");
	ok(IN(p, IMGW_EV_PROBE, "bob@partner.example", "alice@corp.example"),
	    "inbound probe refused");
	ok(!OUT(p, IMGW_EV_SUBSCRIBE, "alice@corp.example", "bob@partner.example"),
	    "outbound subscribe allowed");
	ok(!IN(p, IMGW_EV_SUBSCRIBED, "bob@partner.example", "alice@corp.example"),
	    "inbound subscribed (an answer) allowed");

	ok(IN(p, IMGW_EV_MESSAGE, "bob@partner.example", "alice@corp.example"),
	    "inbound message starting a conversation refused");
	is_str(v.condition, "not-allowed", "initiation: not-allowed");
	is_str(v.rule, "community:partner/inbound-initiate", "initiation: rule");
	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example/desk",
	    "bob@partner.example"), "local user writes first");
	ok(!IN(p, IMGW_EV_MESSAGE, "bob@partner.example/phone",
	    "alice@corp.example"), "the external user may answer");
	ok(IN(p, IMGW_EV_MESSAGE, "carol@partner.example", "alice@corp.example"),
	    "another external user still may not start one");
	ok(refused(p, IMGW_EV_MESSAGE, "bob@partner.example",
	    "alice@corp.example", "partner", "corp",
	    NOW + POLICY_SESSION_IDLE * 1000ULL), "after the idle time the "
	    "answer window is closed");
	policy_expire(p, NOW + POLICY_SESSION_IDLE * 1000ULL);
	is_int(policy_sessions(p, NULL), 0, "idle conversations expire");

	ok(refused_ct(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "bob@partner.example", "corp", "partner", NOW, "text/html"),
	    "rich text refused");
	is_str(v.condition, "feature-not-implemented",
	    "rich text: feature-not-implemented");
	is_str(v.rule, "community:partner/rich-text", "rich text: rule");
	ok(!refused_ct(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "bob@partner.example", "corp", "partner", NOW,
	    "text/plain; charset=utf-8"), "text/plain allowed");
	ok(OUT(p, IMGW_EV_CHATSTATE, "alice@corp.example", "bob@partner.example"),
	    "typing refused");
	is_str(v.rule, "community:partner/typing", "typing: rule");
	policy_free(p);
}

static void
t_sessions(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy *p;
	struct ev *ev;
	json_object *st, *x;

	settings(s, "partner", "max_im_sessions=2");
	p = mkpolicy(s);
	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "b1@partner.example"),
	    "session 1");
	ok(!IN(p, IMGW_EV_MESSAGE, "b2@partner.example", "alice@corp.example"),
	    "session 2 (inbound)");
	is_int(policy_sessions(p, "partner"), 2, "two sessions counted");
	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "b3@partner.example"),
	    "session 3 refused");
	is_str(v.condition, "resource-constraint", "limit: resource-constraint");
	is_str(v.rule, "community:partner/max-im-sessions", "limit: rule");
	ok(!IN(p, IMGW_EV_MESSAGE, "b1@partner.example/x", "alice@corp.example"),
	    "an existing session goes on");
	ok(!OUT(p, IMGW_EV_CHATSTATE, "alice@corp.example", "b3@partner.example"),
	    "a chat state opens no session");
	ok(!refused(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "b3@other.example", "corp", "other", NOW), "other community: no "
	    "limit");

	/* question only: no session made */
	ev = mk(IMGW_EV_MESSAGE, "zed@corp.example", "b9@other.example");
	policy_decide(p, ev, "corp", "other", NOW, 0, &v);
	ev_free(ev);
	is_int(policy_sessions(p, NULL), 3, "a test decision opens no session");

	st = policy_status_json(p);
	json_object_object_get_ex(st, "communities", &x);
	json_object_object_get_ex(x, "partner", &x);
	json_object_object_get_ex(x, "im_sessions", &x);
	is_int(json_object_get_int(json_object_object_get(x, "count")), 2,
	    "status: partner count");
	is_int(json_object_get_int(json_object_object_get(x, "limit")), 2,
	    "status: partner limit");
	json_object_put(st);

	ok(!refused(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "b3@partner.example", "corp", "partner",
	    NOW + POLICY_SESSION_IDLE * 1000ULL + 1), "sessions idle past the "
	    "limit free their place");
	policy_free(p);

	/* the global limit caps a larger community limit */
	s = policy_snap_new();
	settings(s, "partner", "max_im_sessions=5");
	policy_snap_global(s, "max_im_sessions", "1");
	p = mkpolicy(s);
	ok(!OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "b1@partner.example"),
	    "global: session 1");
	ok(refused(p, IMGW_EV_MESSAGE, "alice@corp.example",
	    "b1@other.example", "corp", "other", NOW), "global: any community's "
	    "second session refused");
	is_str(v.rule, "global/max-im-sessions", "global limit named");
	st = policy_status_json(p);
	json_object_object_get_ex(st, "communities", &x);
	json_object_object_get_ex(x, "partner", &x);
	json_object_object_get_ex(x, "im_sessions", &x);
	is_int(json_object_get_int(json_object_object_get(x, "limit")), 1,
	    "status: the global limit caps the community's");
	json_object_put(st);
	policy_free(p);

	/* session_idle from the globals */
	s = policy_snap_new();
	ok(policy_snap_global(s, "session_idle", "10") == 0, "session_idle set");
	ok(policy_snap_global(s, "session_idle", "0") < 0, "session_idle 0 bad");
	ok(policy_snap_global(s, "nonsense", "1") < 0, "unknown global refused");
	settings(s, "partner", "inbound_initiate=no");
	p = mkpolicy(s);
	OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "bob@partner.example");
	ok(!refused(p, IMGW_EV_MESSAGE, "bob@partner.example",
	    "alice@corp.example", "partner", "corp", NOW + 9000),
	    "answer within session_idle");
	ok(refused(p, IMGW_EV_MESSAGE, "bob@partner.example",
	    "alice@corp.example", "partner", "corp", NOW + 9000 + 10000),
	    "answer after session_idle refused");
	policy_free(p);
}

static void
t_subscriptions(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy *p;

	settings(s, "partner", "max_subscriptions=2");
	policy_snap_subscription(s, "partner", "bob@partner.example",
	    "alice@corp.example");
	p = mkpolicy(s);
	is_int(policy_subscriptions(p, "partner"), 1, "stored subscription "
	    "counted");
	ok(!IN(p, IMGW_EV_SUBSCRIBE, "bob@partner.example/r",
	    "alice@corp.example"), "renewing a stored subscription allowed");
	is_int(policy_subscriptions(p, "partner"), 1, "a renewal counts once");
	ok(!OUT(p, IMGW_EV_SUBSCRIBE, "alice@corp.example",
	    "bob@partner.example"), "second subscription admitted");
	is_int(policy_subscriptions(p, "partner"), 2, "two counted");
	ok(IN(p, IMGW_EV_SUBSCRIBE, "carol@partner.example",
	    "alice@corp.example"), "third refused");
	is_str(v.condition, "policy-violation", "limit: policy-violation");
	is_str(v.rule, "community:partner/max-subscriptions", "limit: rule");
	ok(!IN(p, IMGW_EV_SUBSCRIBE, "bob@partner.example",
	    "alice@corp.example"), "an existing one goes on");
	ok(!IN(p, IMGW_EV_UNSUBSCRIBE, "bob@partner.example",
	    "alice@corp.example"), "unsubscribe passes");
	is_int(policy_subscriptions(p, "partner"), 1, "unsubscribe frees a place");
	ok(!IN(p, IMGW_EV_SUBSCRIBE, "carol@partner.example",
	    "alice@corp.example"), "then a new one is admitted");
	ok(!IN(p, IMGW_EV_UNSUBSCRIBED, "bob@partner.example",
	    "alice@corp.example"), "unsubscribed passes");
	is_int(policy_subscriptions(p, "partner"), 1, "unsubscribed (by the "
	    "presentity) frees the admitted one");

	/* a new snapshot that holds the admitted ones: counted once */
	s = policy_snap_new();
	settings(s, "partner", "max_subscriptions=2");
	policy_snap_subscription(s, "partner", "carol@partner.example",
	    "alice@corp.example");
	policy_swap(p, s);
	is_int(policy_subscriptions(p, "partner"), 1, "after the swap the store "
	    "counts them");
	is_int(policy_subscriptions(p, NULL), 1, "global count");
	policy_free(p);

	s = policy_snap_new();
	policy_snap_global(s, "max_subscriptions", "0");
	p = mkpolicy(s);
	ok(OUT(p, IMGW_EV_SUBSCRIBE, "alice@corp.example",
	    "bob@partner.example"), "global subscription limit 0 refuses");
	is_str(v.rule, "global/max-subscriptions", "global limit named");
	policy_free(p);
}

static void
t_no_local(void)
{
	struct policy_snap *s = policy_snap_new();
	struct policy *p = policy_new(NULL);

	settings(s, "a", "local_access=listed default_allow=no");
	rule(s, 1, "a", "allow-user", "x@b.example");
	rule(s, 2, "b", "block-domain", "bad.b.example");
	policy_swap(p, s);
	ok(!refused(p, IMGW_EV_MESSAGE, "x@b.example", "y@a.example", "b", "a",
	    NOW), "no local: a b user listed for a writes to a");
	ok(refused(p, IMGW_EV_MESSAGE, "y@a.example", "w@b.example", "a", "b",
	    NOW), "no local: a b user not listed for a gets nothing from a");
	is_str(v.rule, "community:a/default-deny", "no local: rule of a");
	ok(!refused(p, IMGW_EV_MESSAGE, "y@a.example", "x@b.example", "a", "b",
	    NOW), "no local: the listed b user gets messages from a");
	ok(refused(p, IMGW_EV_MESSAGE, "x@bad.b.example", "y@a.example", "b",
	    "a", NOW), "no local: b's blocks apply to events from b");
	policy_free(p);
}

static void
t_settings(void)
{
	struct policy_settings st;
	struct policy_snap *snap;
	char err[256], buf[32];
	size_t i;

	policy_settings_default(&st);
	ok(policy_settings_set(&st, "audit_level", "full", err, sizeof(err))
	    == 0, "audit_level full");
	ok(policy_settings_set(&st, "audit_level", "lots", err, sizeof(err))
	    < 0, "audit_level lots refused");
	like(err, "none, metadata or full", "the error says what is accepted");
	ok(policy_settings_set(&st, "max_im_sessions", "-3", err, sizeof(err))
	    < 0, "negative limit refused");
	ok(policy_settings_set(&st, "max_im_sessions", "7", err, sizeof(err))
	    == 0, "limit 7");
	is_str(policy_settings_get(&st, "max_im_sessions", buf, sizeof(buf)),
	    "7", "limit read back");
	ok(policy_settings_set(&st, "max_im_sessions", "none", err,
	    sizeof(err)) == 0 && st.max_im_sessions == POLICY_NO_LIMIT,
	    "limit none");
	ok(policy_settings_set(&st, "inbound_initiate", "maybe", err,
	    sizeof(err)) < 0, "a flag needs yes or no");
	ok(policy_settings_set(&st, "colour", "red", err, sizeof(err)) < 0,
	    "unknown setting refused");
	for (i = 0; policy_setting_keys[i] != NULL; i++)
		if (policy_settings_get(&st, policy_setting_keys[i], buf,
		    sizeof(buf)) == NULL)
			break;
	ok(policy_setting_keys[i] == NULL, "every key reads back");

	ok(policy_rule_check(POLICY_BLOCK_USER, "example.org", err,
	    sizeof(err)) < 0, "block-user needs '@'");
	ok(policy_rule_check(POLICY_BLOCK_DOMAIN, "a@example.org", err,
	    sizeof(err)) < 0, "block-domain takes no '@'");
	ok(policy_rule_check(POLICY_ALLOW_USER, "a@b/res", err, sizeof(err))
	    < 0, "no resources in rules");
	ok(policy_rule_check(POLICY_ALLOW_GROUP, "cn=Eng Team,dc=x", err,
	    sizeof(err)) == 0, "group DN with a space");
	ok(policy_rule_check(POLICY_ALLOW_USER, "", err, sizeof(err)) < 0,
	    "empty value refused");
	snap = policy_snap_new();
	ok(policy_snap_rule(snap, 1, "p", "allow-everyone", "x", err,
	    sizeof(err)) < 0, "unknown kind refused");
	policy_snap_free(snap);
}

static const char *
lookup(void *arg, const char *addr)
{
	if (strstr(addr, "@corp.example"))
		return "corp";
	if (strstr(addr, "@partner.example"))
		return "partner";
	return NULL;
}

static void
t_control(void)
{
	struct policy_snap *s = policy_snap_new();
	struct evbuffer *out = evbuffer_new();
	struct policy *p;
	char buf[1024];
	int rc;

	rule(s, 9, "partner", "block-user", "eve@partner.example");
	p = mkpolicy(s);
#define CTL(line) (evbuffer_drain(out, evbuffer_get_length(out)), \
	rc = policy_control(p, line, out, lookup, NULL), \
	buf[evbuffer_remove(out, buf, sizeof(buf) - 1)] = '\0', rc)
	is_int(CTL("policy test alice@corp.example bob@partner.example"), 0,
	    "control: allowed answers ok");
	like(buf, "decision: allowed", "control: says allowed");
	is_int(CTL("policy test alice@corp.example eve@partner.example "
	    "message"), -1, "control: refused answers error");
	like(buf, "rule: community:partner/block-user:#9", "control: names "
	    "the rule");
	like(buf, "condition: forbidden", "control: names the condition");
	is_int(CTL("policy test ALICE@Corp.Example Eve@Partner.Example/r "
	    "subscribe"), -1, "control: addresses are canonicalized");
	is_int(CTL("policy test alice@corp.example bob@nowhere.example"), -1,
	    "control: unknown domain refused");
	like(buf, "remote-server-not-found", "control: says not found");
	is_int(CTL("policy test alice@corp.example bob@partner.example dance"),
	    -1, "control: unknown kind");
	is_int(CTL("policy test a"), -1, "control: usage");
	is_int(CTL("policy refresh"), -1, "control: no store, no refresh");
	is_int(CTL("policyx"), CONTROL_UNKNOWN, "control: not ours");
	is_int(CTL("status"), CONTROL_UNKNOWN, "control: status is not ours");
	is_int(policy_sessions(p, NULL), 0, "control: tests open no session");
	evbuffer_free(out);
	policy_free(p);
}

static void
t_many_rules(void)
{
	struct policy_snap *s = policy_snap_new();
	char val[64];
	struct policy *p;
	struct timespec a, b;
	int i, n = 100000, refusals = 0;
	double us;

	for (i = 0; i < n; i++) {
		switch (i % 4) {
		case 0:
			snprintf(val, sizeof(val), "u%d@partner.example", i);
			rule(s, i + 1, "partner", "block-user", val);
			break;
		case 1:
			snprintf(val, sizeof(val), "*.d%d.example", i);
			rule(s, i + 1, "partner", "block-domain", val);
			break;
		case 2:
			snprintf(val, sizeof(val), "*@e%d.example", i);
			rule(s, i + 1, "*", "block-user", val);
			break;
		default:
			snprintf(val, sizeof(val), "d%d.example", i);
			rule(s, i + 1, "partner", "block-domain", val);
			break;
		}
	}
	p = mkpolicy(s);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 10000; i++) {
		snprintf(val, sizeof(val), "u%d@x.d%d.example", i, i);
		refusals += OUT(p, IMGW_EV_PRESENCE, "alice@corp.example", val);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 /
	    10000;
	diag("100000 rules: %.2f us per decision", us);
	is_int(refusals, 2500, "100000 rules: the indexed wildcards match");
	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "z@e6.example"),
	    "100000 rules: '*@dom' pattern");
	ok(OUT(p, IMGW_EV_MESSAGE, "alice@corp.example", "u4@partner.example"),
	    "100000 rules: exact user");
	policy_free(p);
}

int
main(void)
{
	t_defaults();
	t_blocks();
	t_access();
	t_inbound();
	t_sessions();
	t_subscriptions();
	t_no_local();
	t_settings();
	t_control();
	t_many_rules();
	return done_testing();
}
