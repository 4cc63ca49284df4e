/* The gateway: instances from the configuration, reload, status, stop. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "address.h"
#include "audit.h"
#include "conf.h"
#include "control.h"
#include "directory.h"
#include "ev.h"
#include "gateway.h"
#include "inst.h"
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "router.h"
#include "store.h"
#include "subs.h"
#include "util.h"

#define GW_SWEEP_MS		250
#define GW_QUEUE_TIMEOUT_MS	(60 * 1000)
#define GW_DRAIN_MS		(10 * 1000)	/* removed communities */
#define GW_SHUTDOWN_MS		(5 * 1000)
#define GW_QUIESCE_MS		(10 * 1000)	/* work in flight before a stop */

TAILQ_HEAD(inst_list, imgw_instance);

struct gateway {
	struct event_base *base;
	char *path;
	struct conf *conf;
	struct router *router;
	struct inst_list insts;		/* serving */
	struct inst_list removing;	/* draining before unload */
	struct control *control;
	struct event *sweep;
	int stopping;
	uint64_t stop_deadline;
	int quiesce_asked;		/* shutdown: connectors were asked */
	unsigned nquiescing;		/* shutdown: answers still owed */
	time_t started;
	unsigned reloads;
	struct policy *policy;		/* gw_policy_*: decisions */
	struct store *store;		/* gw_store_*: NULL: no store */
	struct audit *audit;		/* with the store */
	struct subs *subs;		/* with the store */
	char *store_off;		/* why there is no store, for status */
	struct dir *dir;		/* [directory], or NULL */
};

/* One community of a configuration with the module that serves it. */
struct gw_plan {
	const struct conf_community *cc;
	struct module *mod;	/* NULL: could not be loaded */
	char *load_error;
};

static const struct control_ops gw_control_ops;
static void gw_store_stop(struct gateway *gw);

/* ---- a community whose connector could not be loaded ---------------------- */

static int
gw_failed_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	return -1;
}

static int
gw_failed_deliver(void *priv, const struct imgw_event *ev, const char **c)
{
	*c = IMGW_ERR_SERVICE_UNAVAILABLE;
	return IMGW_FAIL;
}

static const struct imgw_connector gw_failed_desc = {
	IMGW_CONNECTOR_HEAD,
	.name = "(not loaded)",
	.version = "",
	.description = "stands in for a connector that could not be loaded",
	.init = gw_failed_init,
	.deliver = gw_failed_deliver,
};

/* ---- plans: load and check every connector of a configuration -------------- */

static void
gw_plan_free(struct gw_plan *plan, size_t n)
{
	size_t i;

	if (plan == NULL)
		return;
	for (i = 0; i < n; i++) {
		loader_release(plan[i].mod);
		free(plan[i].load_error);
	}
	free(plan);
}

/*
 * Load every connector named by `conf` and check the options of each
 * section.  Option errors always fail.  Load errors fail when `strict`,
 * otherwise they are kept in the plan (the community will stay down).
 */
static struct gw_plan *
gw_plan_make(const struct conf *conf, int strict, char *err, size_t errlen)
{
	struct gw_plan *plan = xcalloc(conf->ncomms, sizeof(*plan));
	char why[1024];
	size_t i;

	for (i = 0; i < conf->ncomms; i++) {
		const struct conf_community *cc = &conf->comms[i];

		plan[i].cc = cc;
		plan[i].mod = loader_open(conf->connectors, cc->connector, why,
		    sizeof(why));
		if (plan[i].mod == NULL) {
			if (strict) {
				snprintf(err, errlen, "%s:%d: %s", conf->file,
				    cc->connector_line, why);
				goto fail;
			}
			plan[i].load_error = xstrdup(why);
			continue;
		}
		if (loader_check_options(plan[i].mod->desc, cc, conf->file, err,
		    errlen) < 0)
			goto fail;
	}
	return plan;
fail:
	gw_plan_free(plan, conf->ncomms);
	return NULL;
}

/* ---- policy and directory (gw_policy_*) ------------------------------------- */

/* What the policy checks in a configuration: the [directory] section. */
static int
gw_policy_check(const struct conf *conf, char *err, size_t errlen)
{
	return dir_conf_check(conf, err, errlen);
}

static void
gw_policy_hook(void *arg, const struct ev *ev, const char *src,
    const char *dst, struct router_verdict *v)
{
	struct gateway *gw = arg;

	policy_router_hook(gw->policy, ev, src, dst, v);
}

/* The community serving the domain of `addr`, or NULL. */
static const char *
gw_policy_lookup(void *arg, const char *addr)
{
	struct gateway *gw = arg;
	struct imgw_instance *inst;
	char dom[ADDR_PART_MAX + 1];

	if (addr_domain(addr, dom, sizeof(dom)) < 0 ||
	    (inst = router_lookup(gw->router, dom)) == NULL)
		return NULL;
	return inst->name;
}

/* Local community, community names and domains from gw->conf. */
static void
gw_policy_conf(struct gateway *gw)
{
	policy_set_conf(gw->policy, gw->conf);
}

static void
gw_policy_dir(struct gateway *gw)
{
	struct policy_dir_ops ops;

	if (gw->dir != NULL) {
		dir_policy_ops(gw->dir, &ops);
		policy_set_dir(gw->policy, &ops);
	} else {
		policy_set_dir(gw->policy, NULL);
	}
}

/* Create the policy and the directory client; install the router hook.
 * -1 with err when [directory] is wrong. */
static int
gw_policy_new(struct gateway *gw, char *err, size_t errlen)
{
	struct router_hooks h = gw->router->hooks;

	gw->policy = policy_new(gw->base);
	gw_policy_conf(gw);
	gw->dir = dir_new(gw->base, gw->conf, err, errlen);
	if (gw->dir == NULL && err[0] != '\0')
		return -1;
	gw_policy_dir(gw);
	/* one arg for both hooks: the gateway (the audit hook shares it) */
	h.policy = gw_policy_hook;
	h.arg = gw;
	router_set_hooks(gw->router, &h);
	return 0;
}

/*
 * Read policies from `store` (NULL: none, the defaults apply), again every
 * `refresh` seconds.  The store's wiring calls this once the store exists.
 */
static void
gw_policy_set_store(struct gateway *gw, struct store *store, unsigned refresh)
{
	policy_set_store(gw->policy, store, refresh);
}

/* After a reload put gw->conf in force: settings, directory, policies. */
static void
gw_policy_reload(struct gateway *gw)
{
	char err[1024];

	gw_policy_conf(gw);
	if (gw->conf->directory.line == 0) {
		if (gw->dir != NULL)
			log_notice("[directory] removed: group rules match "
			    "nobody now");
		policy_set_dir(gw->policy, NULL);
		dir_free(gw->dir);
		gw->dir = NULL;
	} else if (gw->dir == NULL) {
		if ((gw->dir = dir_new(gw->base, gw->conf, err, sizeof(err)))
		    == NULL)
			log_err("%s", err);	/* checked before: unlikely */
	} else if (dir_reconfigure(gw->dir, gw->conf, err, sizeof(err)) < 0) {
		log_err("%s; the directory keeps its settings", err);
	}
	gw_policy_dir(gw);
	policy_refresh(gw->policy);
}

static void
gw_policy_free(struct gateway *gw)
{
	policy_free(gw->policy);
	gw->policy = NULL;
	dir_free(gw->dir);
	gw->dir = NULL;
}

static int
gw_policy_ctl(struct gateway *gw, const char *line, struct evbuffer *out)
{
	if (gw->policy == NULL)
		return CONTROL_UNKNOWN;
	return policy_control(gw->policy, line, out, gw_policy_lookup, gw);
}

static void
gw_policy_status_json(struct gateway *gw, json_object *o)
{
	if (gw->policy != NULL)
		json_object_object_add(o, "policy",
		    policy_status_json(gw->policy));
	json_object_object_add(o, "directory", gw->dir != NULL
	    ? dir_status_json(gw->dir) : NULL);
}

static void gw_text_counters(struct evbuffer *out, json_object *ctr);

static void
gw_policy_limit_text(struct evbuffer *out, json_object *x)
{
	json_object *lim = json_object_object_get(x, "limit");

	evbuffer_add_printf(out, "%s/%s",
	    json_object_get_string(json_object_object_get(x, "count")),
	    lim != NULL ? json_object_get_string(lim) : "-");
}

static void
gw_policy_status_text(json_object *st, struct evbuffer *out)
{
	json_object *p = json_object_object_get(st, "policy");
	json_object *d = json_object_object_get(st, "directory"), *x;

	if (p == NULL)
		return;
	x = json_object_object_get(p, "snapshot");
	evbuffer_add_printf(out, "\npolicy: snapshot %s (%s communities, %s "
	    "rules)%s%s\n  im sessions ",
	    json_object_get_string(json_object_object_get(x, "serial")),
	    json_object_get_string(json_object_object_get(x, "communities")),
	    json_object_get_string(json_object_object_get(x, "rules")),
	    json_object_object_get(x, "error") ? ", not refreshed: " : "",
	    json_object_object_get(x, "error") ? json_object_get_string(
	    json_object_object_get(x, "error")) : "");
	gw_policy_limit_text(out, json_object_object_get(p, "im_sessions"));
	evbuffer_add_printf(out, ", subscriptions ");
	gw_policy_limit_text(out, json_object_object_get(p, "subscriptions"));
	evbuffer_add_printf(out, "\n");
	json_object_object_foreach(json_object_object_get(p, "communities"),
	    name, c) {
		evbuffer_add_printf(out, "  %s: im sessions ", name);
		gw_policy_limit_text(out, json_object_object_get(c,
		    "im_sessions"));
		evbuffer_add_printf(out, ", subscriptions ");
		gw_policy_limit_text(out, json_object_object_get(c,
		    "subscriptions"));
		evbuffer_add_printf(out, "\n");
	}
	evbuffer_add_printf(out, "  refused:");
	gw_text_counters(out, json_object_object_get(p, "refused"));
	if (d != NULL) {
		evbuffer_add_printf(out, "directory: %s %s, %s groups, %s users"
		    "%s%s\n",
		    json_object_get_string(json_object_object_get(d, "uri")),
		    json_object_get_string(json_object_object_get(d, "state")),
		    json_object_get_string(json_object_object_get(d, "groups")),
		    json_object_get_string(json_object_object_get(d, "users")),
		    json_object_object_get(d, "error") ? ": " : "",
		    json_object_object_get(d, "error") ? json_object_get_string(
		    json_object_object_get(d, "error")) : "");
	}
}

int
gateway_check(const char *path, char *err, size_t errlen)
{
	struct conf *conf;
	struct gw_plan *plan;

	if ((conf = conf_load(path, err, errlen)) == NULL)
		return -1;
	if (gw_policy_check(conf, err, errlen) < 0 ||
	    store_conf_check(conf, err, errlen) < 0) {
		conf_free(conf);
		return -1;
	}
	plan = gw_plan_make(conf, 1, err, errlen);
	gw_plan_free(plan, conf->ncomms);
	conf_free(conf);
	return plan == NULL ? -1 : 0;
}

/* ---- instances ------------------------------------------------------------- */

static struct imgw_instance *
gw_find(struct inst_list *l, const char *name)
{
	struct imgw_instance *inst;

	TAILQ_FOREACH(inst, l, link)
		if (strcmp(inst->name, name) == 0)
			return inst;
	return NULL;
}

/* Create and start the instance of one planned community; takes the
 * plan's module reference. */
static struct imgw_instance *
gw_instance(struct gateway *gw, struct gw_plan *p)
{
	struct imgw_instance *inst;

	inst = inst_new(gw->router, gw->base, p->cc, p->mod ? p->mod->desc
	    : &gw_failed_desc, p->mod, gw->conf->queue_size);
	p->mod = NULL;
	if (inst->mod == NULL) {
		inst->failed = 1;
		inst->state = INST_DOWN;
		inst->down_reason = xstrdup(p->load_error ? p->load_error
		    : "connector not loaded");
		log_msg(IMGW_LOG_ERR, inst->name, NULL, "%s; community stays "
		    "down, the others run on", inst->down_reason);
	}
	return inst;
}

static void
gw_domains(struct gateway *gw)
{
	struct imgw_instance *inst;
	size_t i;

	router_domains_clear(gw->router);
	TAILQ_FOREACH(inst, &gw->insts, link)
		for (i = 0; i < inst->cc->ndomains; i++)
			router_domain_add(gw->router, inst->cc->domains[i], inst);
}

static void
gw_apply_settings(struct gateway *gw)
{
	struct conf *c = gw->conf;
	struct router_limits lim = {
		.presence_rate = c->presence_rate,
		.presence_window = c->presence_window,
		.loop_limit = c->loop_limit,
		.loop_window = c->loop_window,
	};

	router_set_limits(gw->router, &lim);
	router_set_node(gw->router, c->node);
	log_set_level(c->log_level);
}

static void
gw_release_inst(struct gateway *gw, struct imgw_instance *inst,
    const char *condition)
{
	struct module *mod = inst->mod, *next = inst->next_mod;

	inst_free(inst, condition);
	loader_release(mod);
	if (next != NULL)
		loader_release(next);
}

static void
gw_removed_cb(struct imgw_instance *inst, void *arg)
{
	struct gateway *gw = arg;

	log_msg(IMGW_LOG_INFO, inst->name, NULL, "unloading");
	TAILQ_REMOVE(&gw->removing, inst, link);
	gw_release_inst(gw, inst, IMGW_ERR_SERVICE_UNAVAILABLE);
}

static void
gw_drained_cb(struct imgw_instance *inst, void *arg)
{
	struct gateway *gw = arg;

	if (inst->state == INST_QUIESCING)
		return;		/* gw_removed_cb follows */
	log_msg(IMGW_LOG_INFO, inst->name, NULL, "queue drained");
	if (inst_quiesce(inst, GW_QUIESCE_MS, gw_removed_cb, gw) == 0)
		gw_removed_cb(inst, gw);
}

/* Swap in the connector a restart waits for, and mark it to start. */
static void
gw_restart_now(struct imgw_instance *inst)
{
	inst_stop(inst);
	conf_community_free(inst->prev_cc);
	inst->prev_cc = NULL;
	loader_release(inst->mod);
	inst->mod = inst->next_mod;
	inst->desc = inst->next_desc;
	inst->next_mod = NULL;
	inst->next_desc = NULL;
	inst->failed = 0;
	inst->state = INST_NEW;
	inst->retry_ms = 0;
}

static void
gw_restart_cb(struct imgw_instance *inst, void *arg)
{
	struct gateway *gw = arg;

	gw_restart_now(inst);
	if (!gw->stopping)
		inst_start(inst);
}

/*
 * Restart `inst` with `mod` (a reference the instance takes) and section
 * `cc` (copied), keeping its queue.  The router sees the new section at
 * once; the running connector keeps the section it was started with
 * (it may hold its option strings) and first finishes the work it took
 * (quiesce).  Returns 1 when the restart waits for that, 0 when the
 * instance is ready to be started now (state INST_NEW).
 */
static int
gw_restart(struct gateway *gw, struct imgw_instance *inst, struct module *mod,
    const struct conf_community *cc, size_t queue_max)
{
	if (inst->next_mod != NULL) {
		/* a second reload while the first restart waits: newest wins */
		loader_release(inst->next_mod);
		conf_community_free(inst->cc);
	} else {
		inst->prev_cc = inst->cc;
	}
	inst->cc = conf_community_dup(cc);
	inst->q.max = queue_max;
	inst->next_mod = mod;
	inst->next_desc = mod->desc;
	if (inst->state == INST_QUIESCING ||
	    inst_quiesce(inst, GW_QUIESCE_MS, gw_restart_cb, gw) == 1)
		return 1;
	gw_restart_now(inst);
	return 0;
}

static void
gw_shutdown_quiesced_cb(struct imgw_instance *inst, void *arg)
{
	struct gateway *gw = arg;

	(void)inst;
	if (gw->nquiescing > 0)
		gw->nquiescing--;
}

static void
gw_remove(struct gateway *gw, struct imgw_instance *inst)
{
	TAILQ_REMOVE(&gw->insts, inst, link);
	TAILQ_INSERT_TAIL(&gw->removing, inst, link);
	inst->removing = 1;
	inst->removing_ms = util_now_ms();
	inst->drained_cb = gw_drained_cb;
	inst->drained_arg = gw;
	log_msg(IMGW_LOG_NOTICE, inst->name, NULL, "removed from the "
	    "configuration; draining %zu queued events", inst->q.len);
	inst_kick(inst);
}

static void
gw_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;
	struct imgw_instance *inst, *next;
	uint64_t now = util_now_ms();
	int busy = 0;

	TAILQ_FOREACH(inst, &gw->insts, link) {
		inst_expire(inst, now, GW_QUEUE_TIMEOUT_MS);
		inst_quiesce_expire(inst, now);
		if (inst->q.len > 0 && inst->state == INST_READY)
			busy = 1;
	}
	for (inst = TAILQ_FIRST(&gw->removing); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, link);
		if (inst->state == INST_QUIESCING) {
			busy = 1;
			inst_quiesce_expire(inst, now);	/* may free inst */
			continue;
		}
		if (inst->state != INST_READY ||
		    now - inst->removing_ms > GW_DRAIN_MS) {
			TAILQ_REMOVE(&gw->removing, inst, link);
			gw_release_inst(gw, inst, IMGW_ERR_SERVICE_UNAVAILABLE);
		} else {
			busy = 1;
		}
	}
	if (gw->stopping && (!busy || now > gw->stop_deadline)) {
		if (busy && !gw->quiesce_asked)
			log_warn("shutdown: queues not drained after %d ms; "
			    "answering what is left", GW_SHUTDOWN_MS);
		if (!gw->quiesce_asked) {
			/* let the connectors finish the work they took */
			gw->quiesce_asked = 1;
			TAILQ_FOREACH(inst, &gw->insts, link)
				gw->nquiescing += inst_quiesce(inst, GW_QUIESCE_MS,
				    gw_shutdown_quiesced_cb, gw);
		}
		if (gw->nquiescing > 0)
			return;		/* inst_quiesce_expire bounds the wait */
		/* stopped here, freed by gateway_free after the loop */
		TAILQ_FOREACH(inst, &gw->insts, link)
			inst_stop(inst);
		router_domains_clear(gw->router);
		event_base_loopexit(gw->base, NULL);
	}
}

/* ---- store, audit, subscriptions ------------------------------------------ */

/* The router's audit hook. */
static void
gw_audit_hook(void *arg, const struct ev *ev, const char *src,
    const char *dst, const char *decision, const struct router_verdict *v)
{
	struct gateway *gw = arg;

	audit_record(gw->audit, ev, src, dst, decision, v);
}

/* The router's audit hook (the policy hook, gw_policy_new, keeps it). */
static void
gw_hooks_install(struct gateway *gw)
{
	struct router_hooks h = gw->router->hooks;

	h.audit = gw->audit != NULL ? gw_audit_hook : NULL;
	h.arg = gw;
	router_set_hooks(gw->router, &h);
}

/* Which events the audit records: the policy's per-community level and
 * families; the audit's default until the policy exists. */
static int
gw_audit_level(void *arg, const char *src, const char *dst,
    enum imgw_kind kind, int *full_r)
{
	struct gateway *gw = arg;
	enum policy_audit lvl;

	if (gw->policy == NULL)
		return audit_default_level(NULL, src, dst, kind, full_r);
	lvl = policy_audit_level(gw->policy, kind, src, dst);
	*full_r = lvl == POLICY_AUDIT_FULL;
	return lvl != POLICY_AUDIT_NONE;
}

static void
gw_audit_levels(struct gateway *gw)
{
	if (gw->audit != NULL)
		audit_set_level(gw->audit, gw_audit_level, gw);
}

/*
 * Start the store, the audit writer and the subscriptions.  A [store]
 * that says dsn = none means none of them; a configuration without
 * [store] gets the default SQLite file, and when its state folder cannot
 * be used imgwd runs without (warning).  A database that is down is no
 * error (the audit spools) unless [store] required = yes; a schema that
 * does not fit is.  0, or -1 with err set.
 */
static int
gw_store_start(struct gateway *gw, char *err, size_t errlen)
{
	struct conf *c = gw->conf;
	struct store_conf sc;
	struct store_status st;
	enum store_state state;
	int explicit = c->store.line > 0;
	unsigned wait_ms;

	if (store_conf_parse(c, &sc, err, errlen) < 0)
		return -1;
	if (sc.dsn == NULL) {
		log_notice("no store ([store] dsn = none): no audit log, no "
		    "stored subscriptions");
		gw->store_off = xstrdup("dsn = none");
		store_conf_clear(&sc);
		return 0;
	}
	wait_ms = (sc.timeout ? sc.timeout : 10) * 1000 + 2000;
	if (store_state_dir(&sc, err, errlen) < 0)
		goto unusable;
	if ((gw->store = store_new(gw->base, c, err, errlen)) == NULL)
		goto unusable;
	if ((gw->audit = audit_new(gw->base, gw->store, c->node, err,
	    errlen)) == NULL) {
		store_free(gw->store, 0);
		gw->store = NULL;
		goto unusable;
	}
	state = store_wait_first(gw->store, wait_ms);
	store_get_status(gw->store, &st);
	if (state == STORE_SCHEMA_REFUSED ||
	    (state != STORE_UP && sc.required)) {
		snprintf(err, errlen, "store %s: %s", st.dsn, st.error[0] ?
		    st.error : "not reachable");
		gw_store_stop(gw);
		store_conf_clear(&sc);
		return -1;
	}
	if (state != STORE_UP)
		log_warn("starting without the database (%s): audit records "
		    "wait in the spool", st.error[0] ? st.error : "no answer yet");
	gw->subs = subs_new(gw->store, c->node);
	subs_attach(gw->subs);
	gw_audit_levels(gw);
	store_conf_clear(&sc);
	return 0;
unusable:
	if (explicit) {
		store_conf_clear(&sc);
		return -1;
	}
	/* the default store is a convenience: without it imgwd still routes */
	log_warn("running without the default store: %s", err);
	gw->store_off = xstrdup(err);
	store_conf_clear(&sc);
	return 0;
}

/* Stop in order: the last audit batch, the worker (its done callbacks
 * still reach audit and subs), then those. */
static void
gw_store_stop(struct gateway *gw)
{
	if (gw->policy != NULL && gw->store != NULL)
		policy_set_store(gw->policy, NULL, 0);
	audit_stop(gw->audit);
	store_free(gw->store, 3000);
	gw->store = NULL;
	audit_free(gw->audit);
	gw->audit = NULL;
	subs_free(gw->subs);
	gw->subs = NULL;
	if (gw->router != NULL)
		gw_hooks_install(gw);
}

/* On reload: [store] changes need a restart; the node name follows. */
static void
gw_store_reload(struct gateway *gw, const struct conf *old,
    const struct conf *new)
{
	int same = old->store.n == new->store.n;
	size_t i;

	for (i = 0; same && i < old->store.n; i++)
		same = strcmp(old->store.kv[i].key, new->store.kv[i].key) == 0 &&
		    strcmp(old->store.kv[i].value, new->store.kv[i].value) == 0;
	if (!same)
		log_warn("[store] changed: the new settings take effect at the "
		    "next start of imgwd");
	if (gw->audit != NULL)
		audit_set_node(gw->audit, new->node);
	if (gw->subs != NULL)
		subs_set_node(gw->subs, new->node);
}

struct gateway *
gateway_new(struct event_base *base, const char *path, struct conf *conf,
    char *err, size_t errlen)
{
	struct timeval tv = { 0, GW_SWEEP_MS * 1000 };
	struct gateway *gw;
	struct gw_plan *plan;
	struct imgw_instance *inst;
	size_t i;

	if ((plan = gw_plan_make(conf, 0, err, errlen)) == NULL) {
		conf_free(conf);
		return NULL;
	}
	gw = xcalloc(1, sizeof(*gw));
	gw->base = base;
	gw->path = xstrdup(path);
	gw->conf = conf;
	gw->started = time(NULL);
	TAILQ_INIT(&gw->insts);
	TAILQ_INIT(&gw->removing);
	gw->router = router_new(base, conf->node, NULL);
	gw_apply_settings(gw);
	if (gw_store_start(gw, err, errlen) < 0) {
		gw_plan_free(plan, conf->ncomms);
		gateway_free(gw);
		return NULL;
	}
	gw_hooks_install(gw);
	for (i = 0; i < conf->ncomms; i++) {
		inst = gw_instance(gw, &plan[i]);
		TAILQ_INSERT_TAIL(&gw->insts, inst, link);
	}
	gw_plan_free(plan, conf->ncomms);
	gw_domains(gw);
	if (gw_policy_new(gw, err, errlen) < 0) {
		gateway_free(gw);
		return NULL;
	}
	if (gw->store != NULL)
		gw_policy_set_store(gw, gw->store,
		    store_get_conf(gw->store)->refresh);
	/* the control socket first: its folder may be the connectors' too */
	gw->control = control_open(base, conf->control, &gw_control_ops, gw);
	if (gw->control == NULL) {
		snprintf(err, errlen, "cannot open the control socket %s",
		    conf->control);
		gateway_free(gw);
		return NULL;
	}
	TAILQ_FOREACH(inst, &gw->insts, link)
		if (!inst->failed)
			inst_start(inst);
	gw->sweep = event_new(base, -1, EV_PERSIST, gw_sweep_cb, gw);
	event_add(gw->sweep, &tv);
	return gw;
}

int
gateway_reload(struct gateway *gw, char *err, size_t errlen)
{
	struct imgw_instance *inst, *next;
	unsigned kept = 0, restarted = 0, added = 0, removed = 0;
	char warn[2048] = "";
	size_t nwarn = 0;
	struct conf *conf;
	struct gw_plan *plan;
	size_t i;

	if (gw->stopping) {
		snprintf(err, errlen, "imgwd is shutting down");
		return -1;
	}
	if ((conf = conf_load(gw->path, err, errlen)) == NULL)
		goto invalid;
	if (gw_policy_check(conf, err, errlen) < 0) {
		conf_free(conf);
		goto invalid;
	}
	if (store_conf_check(conf, err, errlen) < 0 ||
	    (plan = gw_plan_make(conf, 0, err, errlen)) == NULL) {
		conf_free(conf);
		goto invalid;
	}
	if (strcmp(conf->control, gw->conf->control) != 0)
		log_warn("the control socket moves only on restart; still at %s",
		    gw->conf->control);

	/* communities no longer configured drain and unload */
	for (inst = TAILQ_FIRST(&gw->insts); inst != NULL; inst = next) {
		next = TAILQ_NEXT(inst, link);
		if (conf_community(conf, inst->name) == NULL) {
			gw_remove(gw, inst);
			removed++;
		}
	}
	for (i = 0; i < conf->ncomms; i++) {
		struct gw_plan *p = &plan[i];

		inst = gw_find(&gw->insts, p->cc->name);
		if (inst == NULL) {
			inst = gw_instance(gw, p);
			TAILQ_INSERT_TAIL(&gw->insts, inst, link);
			added++;
			continue;
		}
		if (p->mod == NULL && !inst->failed) {
			/* new code or options cannot be checked: keep what runs */
			log_msg(IMGW_LOG_ERR, inst->name, NULL, "%s; the community "
			    "keeps running its previous connector", p->load_error);
			nwarn += snprintf(warn + nwarn, nwarn < sizeof(warn)
			    ? sizeof(warn) - nwarn : 0, "community '%s' not "
			    "changed: %s\n", inst->name, p->load_error);
			if (nwarn > sizeof(warn))
				nwarn = sizeof(warn);
			kept++;
			continue;
		}
		if (p->mod == NULL) {
			/* was not loaded, still cannot be: stays down */
			free(inst->down_reason);
			inst->down_reason = xstrdup(p->load_error);
			kept++;
			continue;
		}
		if (!inst->failed && inst->mod == p->mod &&
		    conf_community_same(inst->cc, p->cc)) {
			kept++;
			continue;	/* p->mod's extra reference is released below */
		}
		/* changed section or new code: restart, keeping the queue */
		log_msg(IMGW_LOG_NOTICE, inst->name, NULL, "restarting (%s)",
		    inst->mod != p->mod ? "connector file changed"
		    : "configuration changed");
		(void)gw_restart(gw, inst, p->mod, p->cc, p->cc->queue_size ?
		    p->cc->queue_size : conf->queue_size);
		p->mod = NULL;
		restarted++;
	}
	gw_plan_free(plan, conf->ncomms);
	gw_store_reload(gw, gw->conf, conf);
	conf_free(gw->conf);
	gw->conf = conf;
	gw_apply_settings(gw);
	gw_domains(gw);
	gw_policy_reload(gw);
	TAILQ_FOREACH(inst, &gw->insts, link)
		if (inst->state == INST_NEW && !inst->failed)
			inst_start(inst);
	gw->reloads++;
	log_notice("configuration reloaded from %s: %u kept, %u restarted, "
	    "%u added, %u removed", gw->path, kept, restarted, added, removed);
	snprintf(err, errlen, "%s", warn);
	return 0;
invalid:
	log_err("reload refused, the running configuration stays: %s", err);
	return -1;
}

void
gateway_shutdown(struct gateway *gw)
{
	struct imgw_instance *inst;

	if (gw->stopping)
		return;
	/* what waits for a community that is down will not go out: say so
	 * now, while the senders' communities still run */
	TAILQ_FOREACH(inst, &gw->insts, link)
		if (inst->state != INST_READY)
			inst_answer_all(inst, IMGW_ERR_SERVICE_UNAVAILABLE,
			    "gateway is shutting down");
	log_notice("stopping: draining queues (at most %d ms)", GW_SHUTDOWN_MS);
	gw->stopping = 1;
	gw->stop_deadline = util_now_ms() + GW_SHUTDOWN_MS;
	gw->router->closing = 1;
	control_close(gw->control);
	gw->control = NULL;
}

void
gateway_free(struct gateway *gw)
{
	struct imgw_instance *inst;

	if (gw == NULL)
		return;
	control_close(gw->control);
	/* unhook every domain first: answers to freed communities go nowhere */
	router_domains_clear(gw->router);
	while ((inst = TAILQ_FIRST(&gw->removing)) != NULL) {
		TAILQ_REMOVE(&gw->removing, inst, link);
		gw_release_inst(gw, inst, IMGW_ERR_SERVICE_UNAVAILABLE);
	}
	while ((inst = TAILQ_FIRST(&gw->insts)) != NULL) {
		TAILQ_REMOVE(&gw->insts, inst, link);
		gw_release_inst(gw, inst, IMGW_ERR_SERVICE_UNAVAILABLE);
	}
	if (gw->sweep != NULL)
		event_free(gw->sweep);
	/* after the queues (the last audit records are in the spool), before
	 * the policy (the store's last done callbacks may reach it) */
	gw_store_stop(gw);
	subs_attach(NULL);
	free(gw->store_off);
	gw_policy_free(gw);
	router_free(gw->router);
	conf_free(gw->conf);
	free(gw->path);
	free(gw);
}

/* ---- control socket ---------------------------------------------------------- */

static json_object *
gw_counters_json(const struct counters *c)
{
	json_object *o = json_object_new_object();
	size_t i;

	for (i = 0; i < c->n; i++)
		json_object_object_add(o, c->v[i].name,
		    json_object_new_int64(c->v[i].value));
	return o;
}

static json_object *
gw_inst_json(const struct imgw_instance *inst)
{
	json_object *o = json_object_new_object(), *d, *ctr;
	size_t i;

	json_object_object_add(o, "name", json_object_new_string(inst->name));
	json_object_object_add(o, "connector",
	    json_object_new_string(inst->cc->connector));
	json_object_object_add(o, "connector_version", json_object_new_string(
	    inst->mod && inst->desc->version ? inst->desc->version : ""));
	json_object_object_add(o, "state",
	    json_object_new_string(inst->removing ? "draining"
	    : inst_state_name(inst)));
	if (inst->down_reason != NULL)
		json_object_object_add(o, "reason",
		    json_object_new_string(inst->down_reason));
	json_object_object_add(o, "local", json_object_new_boolean(
	    inst->cc->local));
	d = json_object_new_array();
	for (i = 0; i < inst->cc->ndomains; i++)
		json_object_array_add(d,
		    json_object_new_string(inst->cc->domains[i]));
	json_object_object_add(o, "domains", d);
	json_object_object_add(o, "queue", json_object_new_int64(
	    (int64_t)inst->q.len));
	json_object_object_add(o, "queue_max", json_object_new_int64(
	    (int64_t)inst->q.max));
	ctr = gw_counters_json(&inst->ctr);
	json_object_object_add(ctr, "received",
	    json_object_new_int64((int64_t)inst->n_received));
	json_object_object_add(ctr, "delivered",
	    json_object_new_int64((int64_t)inst->n_delivered));
	json_object_object_add(ctr, "refused-by-connector",
	    json_object_new_int64((int64_t)inst->n_refused));
	json_object_object_add(o, "counters", ctr);
	return o;
}

static json_object *
gw_store_json(struct gateway *gw)
{
	json_object *o = json_object_new_object();
	struct store_status st;
	struct subs_status ss;

	if (gw->store == NULL) {
		json_object_object_add(o, "state", json_object_new_string("off"));
		json_object_object_add(o, "reason", json_object_new_string(
		    gw->store_off ? gw->store_off : ""));
		return o;
	}
	store_get_status(gw->store, &st);
	json_object_object_add(o, "state", json_object_new_string(
	    store_state_name(st.state)));
	json_object_object_add(o, "up", json_object_new_boolean(
	    st.state == STORE_UP));
	json_object_object_add(o, "dialect", json_object_new_string(
	    store_dialect_name(st.dialect)));
	json_object_object_add(o, "dbms", json_object_new_string(st.dbms));
	json_object_object_add(o, "dsn", json_object_new_string(st.dsn));
	json_object_object_add(o, "error", json_object_new_string(st.error));
	json_object_object_add(o, "jobs_queued", json_object_new_int64(
	    (int64_t)st.jobs_queued));
	json_object_object_add(o, "jobs_failed", json_object_new_int64(
	    (int64_t)st.jobs_failed));
	json_object_object_add(o, "connects", json_object_new_int64(
	    (int64_t)st.connects));
	json_object_object_add(o, "disconnects", json_object_new_int64(
	    (int64_t)st.disconnects));
	if (gw->subs != NULL) {
		subs_get_status(gw->subs, &ss);
		json_object_object_add(o, "sub_puts", json_object_new_int64(
		    (int64_t)ss.puts));
		json_object_object_add(o, "sub_dels", json_object_new_int64(
		    (int64_t)ss.dels));
		json_object_object_add(o, "sub_lists", json_object_new_int64(
		    (int64_t)ss.lists));
		json_object_object_add(o, "sub_failed", json_object_new_int64(
		    (int64_t)ss.failed));
	}
	return o;
}

static json_object *
gw_audit_json(struct gateway *gw)
{
	json_object *o = json_object_new_object();
	struct audit_status st;

	audit_get_status(gw->audit, &st);
#define GW_AUDIT_N(k, v) json_object_object_add(o, k, \
	json_object_new_int64((int64_t)(v)))
	GW_AUDIT_N("queued", st.queued);
	GW_AUDIT_N("pending", st.pending);
	GW_AUDIT_N("written", st.written);
	GW_AUDIT_N("spooled", st.spooled);
	GW_AUDIT_N("replayed", st.replayed);
	GW_AUDIT_N("dropped", st.dropped);
	GW_AUDIT_N("corrupt", st.corrupt);
	GW_AUDIT_N("spool_bytes", st.pending_bytes);
	GW_AUDIT_N("spool_max", st.spool_max);
#undef GW_AUDIT_N
	json_object_object_add(o, "writing", json_object_new_boolean(
	    st.writing));
	json_object_object_add(o, "alarm", st.alarm != NULL ?
	    json_object_new_string(st.alarm) : NULL);
	if (st.last_error[0] != '\0')
		json_object_object_add(o, "error", json_object_new_string(
		    st.last_error));
	return o;
}

static json_object *
gw_status_json(struct gateway *gw)
{
	json_object *o = json_object_new_object(), *a, *ctr;
	struct imgw_instance *inst;
	char abi[16];

	snprintf(abi, sizeof(abi), "%d.%d", IMGW_ABI_MAJOR, IMGW_ABI_MINOR);
	json_object_object_add(o, "node", json_object_new_string(
	    gw->conf->node));
	json_object_object_add(o, "version", json_object_new_string(
	    IMGW_VERSION));
	json_object_object_add(o, "abi", json_object_new_string(abi));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime", json_object_new_int64(
	    (int64_t)(time(NULL) - gw->started)));
	json_object_object_add(o, "reloads", json_object_new_int(
	    (int)gw->reloads));
	json_object_object_add(o, "config", json_object_new_string(gw->path));
	ctr = gw_counters_json(&gw->router->ctr);
	json_object_object_add(ctr, "routed", json_object_new_int64(
	    (int64_t)gw->router->routed));
	json_object_object_add(o, "counters", ctr);
	json_object_object_add(o, "store", gw_store_json(gw));
	if (gw->audit != NULL)
		json_object_object_add(o, "audit", gw_audit_json(gw));
	a = json_object_new_array();
	TAILQ_FOREACH(inst, &gw->insts, link)
		json_object_array_add(a, gw_inst_json(inst));
	TAILQ_FOREACH(inst, &gw->removing, link)
		json_object_array_add(a, gw_inst_json(inst));
	json_object_object_add(o, "communities", a);
	gw_policy_status_json(gw, o);
	return o;
}

static void
gw_text_counters(struct evbuffer *out, json_object *ctr)
{
	json_object_object_foreach(ctr, k, v)
		evbuffer_add_printf(out, " %s=%s", k, json_object_get_string(v));
	evbuffer_add_printf(out, "\n");
}

static const char *
gw_jstr(json_object *o, const char *k)
{
	json_object *v = json_object_object_get(o, k);

	return v != NULL ? json_object_get_string(v) : "";
}

static void
gw_store_text(json_object *st, struct evbuffer *out)
{
	json_object *s = json_object_object_get(st, "store");
	json_object *a = json_object_object_get(st, "audit");
	const char *e;

	evbuffer_add_printf(out, "store: %s", gw_jstr(s, "state"));
	if (strcmp(gw_jstr(s, "state"), "off") == 0) {
		evbuffer_add_printf(out, " (%s)\n", gw_jstr(s, "reason"));
		return;
	}
	evbuffer_add_printf(out, ", %s %s, %s\n", gw_jstr(s, "dialect"),
	    gw_jstr(s, "dbms"), gw_jstr(s, "dsn"));
	if (*(e = gw_jstr(s, "error")) != '\0')
		evbuffer_add_printf(out, "    error: %s\n", e);
	if (a == NULL)
		return;
	evbuffer_add_printf(out, "audit: queued=%s pending=%s written=%s "
	    "spooled=%s replayed=%s dropped=%s spool=%s/%s bytes\n",
	    gw_jstr(a, "queued"), gw_jstr(a, "pending"), gw_jstr(a, "written"),
	    gw_jstr(a, "spooled"), gw_jstr(a, "replayed"),
	    gw_jstr(a, "dropped"), gw_jstr(a, "spool_bytes"),
	    gw_jstr(a, "spool_max"));
	if (json_object_object_get(a, "alarm") != NULL)
		evbuffer_add_printf(out, "    ALARM: %s: audit records are "
		    "being dropped\n", gw_jstr(a, "alarm"));
}

static void
gw_status_text(struct gateway *gw, json_object *st, struct evbuffer *out)
{
	json_object *comms = json_object_object_get(st, "communities");
	size_t i, n = json_object_array_length(comms), j;

	evbuffer_add_printf(out, "imgwd %s (connector ABI %s), node %s, pid %d, "
	    "up %llds, %d reloads\nconfig %s\n", IMGW_VERSION,
	    json_object_get_string(json_object_object_get(st, "abi")),
	    gw->conf->node, (int)getpid(),
	    (long long)(time(NULL) - gw->started), (int)gw->reloads, gw->path);
	evbuffer_add_printf(out, "counters:");
	gw_text_counters(out, json_object_object_get(st, "counters"));
	gw_store_text(st, out);
	evbuffer_add_printf(out, "\n%-16s %-10s %-10s %-9s %-12s %s\n",
	    "COMMUNITY", "CONNECTOR", "VERSION", "STATE", "QUEUE", "DOMAINS");
	for (i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(comms, i), *d, *r;
		char q[32];

		snprintf(q, sizeof(q), "%s/%s",
		    json_object_get_string(json_object_object_get(c, "queue")),
		    json_object_get_string(json_object_object_get(c,
		    "queue_max")));
		evbuffer_add_printf(out, "%-16s %-10s %-10s %-9s %-12s",
		    json_object_get_string(json_object_object_get(c, "name")),
		    json_object_get_string(json_object_object_get(c,
		    "connector")),
		    json_object_get_string(json_object_object_get(c,
		    "connector_version")),
		    json_object_get_string(json_object_object_get(c, "state")),
		    q);
		d = json_object_object_get(c, "domains");
		for (j = 0; j < json_object_array_length(d); j++)
			evbuffer_add_printf(out, " %s", json_object_get_string(
			    json_object_array_get_idx(d, j)));
		if (json_object_get_boolean(json_object_object_get(c, "local")))
			evbuffer_add_printf(out, " (local)");
		evbuffer_add_printf(out, "\n");
		if ((r = json_object_object_get(c, "reason")) != NULL)
			evbuffer_add_printf(out, "    reason: %s\n",
			    json_object_get_string(r));
		evbuffer_add_printf(out, "    counters:");
		gw_text_counters(out, json_object_object_get(c, "counters"));
	}
	gw_policy_status_text(st, out);
}

int
gateway_status(struct gateway *gw, int json, struct evbuffer *out)
{
	json_object *st = gw_status_json(gw);

	if (json)
		evbuffer_add_printf(out, "%s\n", json_object_to_json_string_ext(st,
		    JSON_C_TO_STRING_PLAIN));
	else
		gw_status_text(gw, st, out);
	json_object_put(st);
	return 0;
}

static int
gw_ctl_status(void *arg, int json, struct evbuffer *out)
{
	return gateway_status(arg, json, out);
}

static int
gw_ctl_reload(void *arg, struct evbuffer *out)
{
	char err[1024];

	if (gateway_reload(arg, err, sizeof(err)) < 0) {
		evbuffer_add_printf(out, "%s\n", err);
		return -1;
	}
	evbuffer_add_printf(out, "reloaded\n%s", err);
	return 0;
}

static void
gw_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	gateway_shutdown(arg);
}

static int
gw_ctl_stop(void *arg, struct evbuffer *out)
{
	struct gateway *gw = arg;
	struct timeval tv = { 0, 100 * 1000 };

	evbuffer_add_printf(out, "stopping\n");
	/* a moment later, so that this answer leaves before the control
	 * socket closes */
	event_base_once(gw->base, -1, EV_TIMEOUT, gw_stop_cb, gw, &tv);
	return 0;
}

/* Further commands: each subsystem's gw_*_ctl says CONTROL_UNKNOWN for
 * lines that are not its own. */
static int
gw_ctl_other(void *arg, const char *line, struct evbuffer *out)
{
	return gw_policy_ctl(arg, line, out);
}

static const struct control_ops gw_control_ops = {
	.status = gw_ctl_status,
	.reload = gw_ctl_reload,
	.stop = gw_ctl_stop,
	.other = gw_ctl_other,
};
