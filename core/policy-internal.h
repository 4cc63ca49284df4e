/*
 * Inside the policy (policy.c, policy-load.c, policy-ctl.c): the snapshot
 * and the running state.  Nothing outside core/policy*.c includes this.
 */
#ifndef IMGW_CORE_POLICY_INTERNAL_H
#define IMGW_CORE_POLICY_INTERNAL_H

#include <stdint.h>

#include "address.h"
#include "counters.h"
#include "policy.h"

/* A bare address: user, '@', domain. */
#define ADDR_BARE_MAX	(2 * ADDR_PART_MAX + 1)

/* One stored rule; the snapshot owns it. */
struct policy_rule {
	int64_t id;
	enum policy_rule_kind kind;
	char *value;		/* lower case */
	char *community;	/* a community name or "*" */
};

/* Rules of one kind in one scope, indexed (values borrowed from rules). */
struct policy_matcher {
	struct ht *exact;	/* value -> first rule */
	struct ht *suffix;	/* "@dom" of "*@dom", ".dom" of "*.dom" */
	struct policy_rule **globs;	/* any other pattern */
	size_t nglobs;
};

/* The rules of one community, or of "*" (every external community). */
struct policy_scope {
	struct policy_matcher m[POLICY_RULE_KIND_MAX];	/* [ALLOW_GROUP]
							 * stays empty */
	struct policy_rule **groups;	/* allow-group */
	size_t ngroups;
	struct policy_rule **dirusers;	/* allow-user naming a directory user */
	size_t ndirusers;
	size_t nrules;
};

/* Immutable once swapped in. */
struct policy_snap {
	struct ht *settings;	/* community -> struct policy_settings */
	struct ht *scopes;	/* community or "*" -> struct policy_scope */
	struct policy_rule **rules;	/* owner of every rule, by id */
	size_t nrules;
	int64_t max_im_sessions;	/* global limits */
	int64_t max_subscriptions;
	unsigned session_idle;		/* seconds */
	struct ht *subs;	/* "watcher\npresentity" -> its row's community */
	int64_t nsubs;
	char *rows_error;	/* first row skipped while reading, or NULL */
	size_t rows_skipped;
};

/* A conversation between two bare addresses (addr[0] < addr[1]). */
struct policy_conv {
	char *addr[2];
	char *comm[2];		/* external communities it counts for */
	int spoke[2];		/* addr[i] has sent a message */
	uint64_t last_ms;
};

/* A subscription admitted since the snapshot was read. */
struct policy_admitted {
	char *comm[2];
	uint64_t admitted_ms;
};

struct policy_load;

struct policy {
	struct event_base *base;	/* NULL in unit tests */
	struct policy_snap *snap;
	struct policy_settings defaults;
	char *local;			/* the local community, or NULL */
	char **known;			/* configured external communities */
	size_t nknown;
	struct ht *domains;		/* configured domain -> community */
	struct policy_dir_ops dir;

	struct ht *convs;		/* pair key -> struct policy_conv */
	struct ht *conv_counts;		/* community -> int64_t */
	struct ht *admitted;		/* pair key -> struct policy_admitted */
	size_t nadmitted;
	struct ht *gone;		/* stored pairs unsubscribed since */
	size_t ngone;
	struct ht *sub_delta;		/* community -> admitted - gone */
	struct ht *stored_counts;	/* community -> stored subscriptions */
	uint64_t expire_now;
	struct event *sweep;

	struct counters ctr;		/* "refused.KIND" */
	char rule_buf[POLICY_RULE_NAME_MAX];
	/* the rule that decided so far, formatted into rule_buf only when
	 * someone reads it (a refusal, `imgwctl policy test`): an allowed
	 * event in the router never needs its name */
	const struct policy_rule *rn_rule;
	const char *rn_community, *rn_setting;
	char text_buf[512];

	/* loading (policy-load.c) */
	struct store *store;
	unsigned refresh_s;
	struct event *refresh_ev;
	struct policy_load *loading;	/* in the store's queue, or NULL */
	int again;			/* another refresh asked meanwhile */
	uint64_t serial_asked;		/* last serial handed out */
	uint64_t serial_loading;	/* serial the pending load answers */
	uint64_t serial_loaded;		/* serial of the snapshot in force */
	uint64_t serial_failed;		/* last serial whose load failed */
	uint64_t swap_ms;
	char load_error[256];
};

/* Leave a pending load behind (policy_free): its result is dropped. */
void policy_load_detach(struct policy *p);

#endif
