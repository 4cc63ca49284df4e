/*
 * Policies: who may exchange what with whom, decided in memory.
 *
 * The rules live in the store (tables imgw_policy_community,
 * imgw_policy_rule, imgw_policy_global; subscriptions are counted from
 * imgw_subscription).  They are read into an immutable snapshot (struct
 * policy_snap) off the loop -- at start, on reload, on `imgwctl policy`
 * changes and every [store] refresh seconds -- and swapped in atomically on
 * the loop thread (policy_swap).  A decision never touches the database.
 *
 * Terms.  The local community is the one configured with local = yes.  An
 * event between the local community and an external community E is judged
 * by E's settings and rules plus the '*' rules (every external community):
 * the local end is the "local user", the other the "external user".  An
 * event between two external communities (or any event when no community
 * is local) is judged twice: as outbound to its destination community (the
 * sender is the local user) and as inbound from its source community (the
 * recipient is the local user); both must allow it.
 *
 * Checks, in order (the first refusal decides; error events only meet the
 * block checks):
 *   1. block-user / block-domain (community's and '*'), on both ends:
 *      forbidden;
 *   2. local user's access to the external community: local_access
 *      'everyone', or 'listed' = an allow-user rule (bare address, '*'
 *      wildcards; a value without '@' names a directory user) or an
 *      allow-group rule (group DN or cn, members from the directory) matches,
 *      else default_allow decides: forbidden;
 *   3. inbound subscribe/probe when inbound_subscribe = 0: not-allowed;
 *   4. inbound message/chat state that starts a conversation when
 *      inbound_initiate = 0 (allowed only while the local user's own
 *      conversation with that external user is active): not-allowed;
 *   5. capabilities: a message whose content type is not text/plain when
 *      allow_rich_text = 0, a chat state when allow_typing = 0:
 *      feature-not-implemented (refused, not stripped: an event is never
 *      changed on its way, and XEP-0085 senders stop on that error);
 *   6. limits: a new IM session (conversation = pair of bare addresses,
 *      active until session_idle seconds without a message) past
 *      max_im_sessions: resource-constraint; a new presence subscription
 *      past max_subscriptions: policy-violation.  Global limits
 *      (imgw_policy_global) cap community ones; existing sessions and
 *      subscriptions go on.
 * A refusal names its rule in verdict->rule: "community:NAME/KIND:#ID" for
 * a stored rule (NAME may be '*'), "community:NAME/SETTING" for a setting
 * ("default-deny", "inbound-subscribe", "inbound-initiate", "rich-text",
 * "typing", "max-im-sessions", "max-subscriptions"), "global/max-..." for a
 * global limit.
 *
 * Threads: everything here runs on the loop thread, except building a
 * snapshot (policy_snap_*), which any one thread may do with a snapshot it
 * owns.
 */
#ifndef IMGW_CORE_POLICY_H
#define IMGW_CORE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <imgw/event.h>

struct event_base;
struct ev;
struct json_object;
struct router_verdict;
struct store;

#define POLICY_NO_LIMIT		(-1)
#define POLICY_SESSION_IDLE	1800	/* seconds, default session_idle */
#define POLICY_RULE_NAME_MAX	192

enum policy_access {
	POLICY_ACCESS_EVERYONE = 0,
	POLICY_ACCESS_LISTED,
};

enum policy_audit {
	POLICY_AUDIT_NONE = 0,
	POLICY_AUDIT_METADATA,
	POLICY_AUDIT_FULL,
};

enum policy_rule_kind {
	POLICY_ALLOW_USER = 0,
	POLICY_ALLOW_GROUP,
	POLICY_BLOCK_USER,
	POLICY_BLOCK_DOMAIN,
	POLICY_RULE_KIND_MAX
};

/* The settings of one external community: one imgw_policy_community row,
 * or the defaults (policy_settings_default) when it has none. */
struct policy_settings {
	int default_allow;
	enum policy_access access;
	int inbound_subscribe;
	int inbound_initiate;
	enum policy_audit audit_level;
	int audit_im;
	int audit_subscriptions;
	int audit_presence;
	int allow_rich_text;
	int allow_typing;
	int64_t max_im_sessions;	/* POLICY_NO_LIMIT: none */
	int64_t max_subscriptions;	/* POLICY_NO_LIMIT: none */
};

/* Allow everything, audit metadata of IM and subscriptions, no limits. */
void policy_settings_default(struct policy_settings *s);

/*
 * The setting keys, which are also the column names of
 * imgw_policy_community (NULL-terminated, static).
 */
extern const char *const policy_setting_keys[];

/*
 * Set `key` of `s` from its text form ("yes"/"no"/"1"/"0", "everyone"/
 * "listed", "none"/"metadata"/"full", a number or "none" for limits).
 * 0, or -1 with the reason in err.
 */
int policy_settings_set(struct policy_settings *s, const char *key,
    const char *value, char *err, size_t errlen);

/* The text form of setting `key` of `s` into buf; NULL for an unknown key. */
const char *policy_settings_get(const struct policy_settings *s,
    const char *key, char *buf, size_t buflen);

/* "allow-user" ... <-> enum; -1 / NULL when unknown. */
int policy_rule_kind_parse(const char *name);
const char *policy_rule_kind_name(enum policy_rule_kind k);

/*
 * Check a rule value for its kind (allow-user: address, pattern or
 * directory user name; allow-group: DN or cn; block-user: address or
 * pattern with '@'; block-domain: domain or pattern without '@').
 * 0, or -1 with the reason in err.
 */
int policy_rule_check(enum policy_rule_kind kind, const char *value,
    char *err, size_t errlen);

/* ---- snapshots --------------------------------------------------------- */

struct policy_snap;

struct policy_snap *policy_snap_new(void);
void policy_snap_free(struct policy_snap *snap);

/* The settings of `community` (copied).  -1 when it was given already. */
int policy_snap_community(struct policy_snap *snap, const char *community,
    const struct policy_settings *s);

/*
 * A rule (strings copied; values are lower-cased).  -1 with the reason in
 * err for an unknown kind or a bad value: the caller logs and skips it.
 */
int policy_snap_rule(struct policy_snap *snap, int64_t id,
    const char *community, const char *kind, const char *value,
    char *err, size_t errlen);

/* A global setting: max_im_sessions, max_subscriptions, session_idle
 * (seconds).  -1 for an unknown name or a bad value. */
int policy_snap_global(struct policy_snap *snap, const char *name,
    const char *value);

/* A stored presence subscription (counted against the limits of
 * `community`; a known pair is never refused by a limit). */
void policy_snap_subscription(struct policy_snap *snap, const char *community,
    const char *watcher, const char *presentity);

/* ---- the running policy -------------------------------------------------- */

struct policy;

/*
 * Directory lookups for allow-group rules and directory user names (see
 * directory.h).  `member` answers 1 (addr is a member of the group, or is
 * the user), 0 (it is not), -1 (not known yet: never loaded).  `want` is
 * told, on each swap, every group and user name the snapshot names.
 * Everything is borrowed for the call.
 */
struct policy_dir_ops {
	int (*member)(void *arg, int user, const char *name, const char *addr);
	void (*want)(void *arg, const char *const *groups, size_t ngroups,
	    const char *const *users, size_t nusers);
	void *arg;
};

/*
 * A policy with the default snapshot (everything allowed).  `base` may be
 * NULL (unit tests): then nothing runs by itself and the caller expires
 * conversations with policy_expire.
 */
struct policy *policy_new(struct event_base *base);
void policy_free(struct policy *p);

/* The local community's name (copied), or NULL when none is local. */
void policy_set_local(struct policy *p, const char *community);

/*
 * The communities of configuration `c` (borrowed for the call; NULL:
 * none): the local one, the external ones (status lists them all) and
 * their domains (stored subscriptions count for the communities of their
 * addresses).
 */
struct conf;
void policy_set_conf(struct policy *p, const struct conf *c);

/* Directory lookups (copied), or NULL for none: group rules never match. */
void policy_set_dir(struct policy *p, const struct policy_dir_ops *ops);

/* Put `snap` (taken) in force; the previous snapshot is freed. */
void policy_swap(struct policy *p, struct policy_snap *snap);

/*
 * Decide for `ev` from community `src` (NULL: the core) to `dst`.  With
 * `commit`, the decision counts (conversations, admitted subscriptions,
 * counters); without, it is only a question (imgwctl policy test).
 * v->rule and v->text point into `p` and stay valid until the next call.
 * v->rule names the deciding rule of a refusal, and of an allowed
 * question; an allowed committed decision (the router's hot path, which
 * drops the name) leaves it "default" unless policy_name_allowed asks.
 */
void policy_decide(struct policy *p, const struct ev *ev, const char *src,
    const char *dst, uint64_t now_ms, int commit, struct router_verdict *v);

/* After policy_decide: v->rule names the rule that allowed the event. */
void policy_name_allowed(struct policy *p, struct router_verdict *v);

/* The router's policy hook (struct router_hooks.policy); arg: the policy. */
void policy_router_hook(void *arg, const struct ev *ev, const char *src,
    const char *dst, struct router_verdict *v);

/* Forget conversations idle for longer than session_idle. */
void policy_expire(struct policy *p, uint64_t now_ms);

/*
 * How an event of `kind` between `src` and `dst` is audited, by the
 * external end's settings (the higher of both when both are external).
 */
enum policy_audit policy_audit_level(const struct policy *p,
    enum imgw_kind kind, const char *src, const char *dst);

/* Current counts (for tests and status): IM sessions and subscriptions of
 * `community`, or of all when NULL. */
int64_t policy_sessions(const struct policy *p, const char *community);
int64_t policy_subscriptions(const struct policy *p, const char *community);

/* Status: snapshot, counts and limits, refusal counters (new object). */
struct json_object *policy_status_json(const struct policy *p);

/* ---- loading from the store (policy-load.c) ------------------------------ */

/*
 * Use `store` (borrowed until the next call or policy_free; NULL: none)
 * for snapshots, reloading every `refresh_s` seconds (0: never by time).
 * Asks for a snapshot at once.
 */
void policy_set_store(struct policy *p, struct store *store,
    unsigned refresh_s);

/*
 * Ask for a new snapshot.  Returns its serial number (> 0), or 0 when no
 * store is set or the queue is full.  policy_loaded tells whether the
 * snapshot of `serial` (or a later one) is in force: 1 yes, 0 pending, -1
 * failed (the previous snapshot stays; the error in err).
 */
uint64_t policy_refresh(struct policy *p);
int policy_loaded(const struct policy *p, uint64_t serial, char *err,
    size_t errlen);

/* Read a snapshot inside a store job (worker thread); 0 or -1. */
struct store_conn;
int policy_snap_read(struct store_conn *sc, struct policy_snap *snap);

/*
 * Answer a control line "policy ..." ("test FROM TO [KIND]", "refresh",
 * "wait SERIAL", "status"): 0 ok, -1 error, CONTROL_UNKNOWN when the line
 * is not a policy command.  `lookup` finds the community of an address
 * (NULL: none).
 */
struct evbuffer;
int policy_control(struct policy *p, const char *line, struct evbuffer *out,
    const char *(*lookup)(void *arg, const char *addr), void *lookup_arg);

#endif
