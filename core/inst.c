/* Community instances: connector lifecycle, queue and delivery. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "conf.h"
#include "ev.h"
#include "inst.h"
#include "log.h"
#include "router.h"
#include "subs.h"
#include "util.h"

#define INST_BUDGET		512	/* deliveries per loop turn */
#define INST_RETRY_MIN_MS	1000
#define INST_RETRY_MAX_MS	60000

static void inst_dispatch_cb(evutil_socket_t fd, short what, void *arg);
static void inst_retry_cb(evutil_socket_t fd, short what, void *arg);
static void inst_quiesce_cb(evutil_socket_t fd, short what, void *arg);
static void host_quiesced(struct imgw_instance *inst);

struct imgw_instance *
inst_new(struct router *r, struct event_base *base,
    const struct conf_community *cc, const struct imgw_connector *desc,
    struct module *mod, size_t queue_max)
{
	struct imgw_instance *inst = xcalloc(1, sizeof(*inst));

	inst->router = r;
	inst->base = base;
	inst->name = xstrdup(cc->name);
	inst->cc = conf_community_dup(cc);
	inst->desc = desc;
	inst->mod = mod;
	inst->q.max = cc->queue_size ? cc->queue_size : queue_max;
	inst->dispatch = event_new(base, -1, 0, inst_dispatch_cb, inst);
	inst->retry = event_new(base, -1, 0, inst_retry_cb, inst);
	inst->quiesce_ev = event_new(base, -1, 0, inst_quiesce_cb, inst);
	LIST_INIT(&inst->timers);
	LIST_INIT(&inst->watches);
	return inst;
}

const char *
inst_state_name(const struct imgw_instance *inst)
{
	switch (inst->state) {
	case INST_NEW: return "new";
	case INST_STARTING: return "starting";
	case INST_READY: return inst->blocked ? "busy" : "running";
	case INST_QUIESCING: return "quiescing";
	case INST_DOWN: return "down";
	case INST_STOPPED: return "stopped";
	}
	return "?";
}

static void
inst_set_down(struct imgw_instance *inst, const char *why)
{
	free(inst->down_reason);
	inst->down_reason = xstrdup(why);
	inst->state = INST_DOWN;
	inst->blocked = 0;
}

static void
inst_schedule_retry(struct imgw_instance *inst)
{
	struct timeval tv;

	inst->retry_ms = inst->retry_ms ? inst->retry_ms * 2 : INST_RETRY_MIN_MS;
	if (inst->retry_ms > INST_RETRY_MAX_MS)
		inst->retry_ms = INST_RETRY_MAX_MS;
	tv.tv_sec = inst->retry_ms / 1000;
	tv.tv_usec = (inst->retry_ms % 1000) * 1000;
	event_add(inst->retry, &tv);
	log_msg(IMGW_LOG_NOTICE, inst->name, NULL, "start again in %u ms",
	    inst->retry_ms);
}

/* Stop and finalize the connector, and drop what it left behind. */
static void
inst_teardown(struct imgw_instance *inst)
{
	struct imgw_timer *t;
	struct imgw_watch *w;
	int left = 0;

	if (!inst->has_priv)
		return;
	if (inst->desc->stop != NULL)
		inst->desc->stop(inst->priv);
	/* no subscription list reaches a stopped connector */
	subs_cancel(subs_current(), inst);
	while ((t = LIST_FIRST(&inst->timers)) != NULL) {
		inst_host.timer_del(t);
		left++;
	}
	while ((w = LIST_FIRST(&inst->watches)) != NULL) {
		inst_host.watch_del(w);
		left++;
	}
	if (left)
		log_msg(IMGW_LOG_WARNING, inst->name, NULL, "connector '%s' left "
		    "%d timers or watches after stop; removed", inst->desc->name,
		    left);
	if (inst->desc->fini != NULL)
		inst->desc->fini(inst->priv);
	inst->priv = NULL;
	inst->has_priv = 0;
}

int
inst_start(struct imgw_instance *inst)
{
	void *priv = NULL;

	event_del(inst->retry);
	inst->state = INST_STARTING;
	inst->blocked = 0;
	inst->started_ms = util_now_ms();
	if (inst->desc->init(inst, &inst_host, &priv) < 0) {
		log_msg(IMGW_LOG_ERR, inst->name, NULL, "connector '%s' failed "
		    "to initialize; community stays down", inst->desc->name);
		inst_set_down(inst, "init failed");
		return -1;
	}
	inst->priv = priv;
	inst->has_priv = 1;
	if (inst->desc->start != NULL && inst->desc->start(priv) < 0) {
		log_msg(IMGW_LOG_ERR, inst->name, NULL, "connector '%s' failed "
		    "to start", inst->desc->name);
		inst_teardown(inst);
		inst_set_down(inst, "start failed");
		inst_schedule_retry(inst);
		return -1;
	}
	log_msg(IMGW_LOG_INFO, inst->name, NULL, "started connector '%s' %s",
	    inst->desc->name, inst->desc->version ? inst->desc->version : "");
	return 0;
}

static void
inst_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imgw_instance *inst = arg;

	if (inst->state == INST_DOWN && !inst->removing)
		inst_start(inst);
}

/* The quiesce is over: done, timed out, or the community went down. */
static void
inst_quiesce_finish(struct imgw_instance *inst)
{
	void (*cb)(struct imgw_instance *, void *) = inst->quiesce_cb;

	event_del(inst->quiesce_ev);
	inst->quiesce_cb = NULL;
	if (cb != NULL)
		cb(inst, inst->quiesce_arg);
}

static void
inst_quiesce_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imgw_instance *inst = arg;

	(void)fd;
	(void)what;
	if (inst->state == INST_QUIESCING && inst->quiesce_cb != NULL) {
		log_msg(IMGW_LOG_INFO, inst->name, NULL, "work in flight finished");
		inst_quiesce_finish(inst);
	}
}

int
inst_quiesce(struct imgw_instance *inst, unsigned max_ms,
    void (*cb)(struct imgw_instance *inst, void *arg), void *arg)
{
	if (inst->state != INST_READY || !inst->has_priv ||
	    inst->desc->size < offsetof(struct imgw_connector, quiesce) +
	    sizeof(inst->desc->quiesce) || inst->desc->quiesce == NULL)
		return 0;
	inst->state = INST_QUIESCING;
	inst->blocked = 0;
	inst->quiesce_done = 0;
	inst->quiesce_cb = NULL;
	inst->in_quiesce = 1;
	inst->desc->quiesce(inst->priv);
	inst->in_quiesce = 0;
	if (inst->quiesce_done || inst->state != INST_QUIESCING) {
		if (inst->state == INST_QUIESCING)
			inst->state = INST_READY;	/* the caller stops it */
		event_del(inst->quiesce_ev);
		return 0;
	}
	inst->quiesce_cb = cb;
	inst->quiesce_arg = arg;
	inst->quiesce_deadline_ms = util_now_ms() + max_ms;
	log_msg(IMGW_LOG_INFO, inst->name, NULL, "waiting (at most %u ms) for "
	    "the work in flight", max_ms);
	return 1;
}

void
inst_quiesce_expire(struct imgw_instance *inst, uint64_t now)
{
	if (inst->state != INST_QUIESCING || inst->quiesce_cb == NULL ||
	    now < inst->quiesce_deadline_ms)
		return;
	log_msg(IMGW_LOG_WARNING, inst->name, NULL, "work still in flight at "
	    "the end of the wait; stopping anyway");
	counters_add(&inst->ctr, "quiesce-timeouts", 1);
	inst_quiesce_finish(inst);
}

void
inst_stop(struct imgw_instance *inst)
{
	event_del(inst->retry);
	event_del(inst->quiesce_ev);
	inst->quiesce_cb = NULL;
	inst_teardown(inst);
	inst->state = INST_STOPPED;
	inst->blocked = 0;
}

static struct ev *inst_pop(struct imgw_instance *inst);

void
inst_answer_all(struct imgw_instance *inst, const char *condition,
    const char *text)
{
	struct ev *ev;

	while ((ev = inst_pop(inst)) != NULL) {
		router_answer(inst->router, ev, condition, text);
		ev_free(ev);
	}
}

void
inst_free(struct imgw_instance *inst, const char *condition)
{
	if (inst == NULL)
		return;
	inst_stop(inst);
	inst_answer_all(inst, condition, "community removed");
	event_free(inst->dispatch);
	event_free(inst->retry);
	event_free(inst->quiesce_ev);
	conf_community_free(inst->prev_cc);
	counters_free(&inst->ctr);
	conf_community_free(inst->cc);
	free(inst->down_reason);
	free(inst->name);
	free(inst);
}

int
inst_enqueue(struct imgw_instance *inst, struct ev *ev)
{
	if (inst->q.len >= inst->q.max || inst->failed)
		return -1;
	ev->next = NULL;
	ev->queued_ms = util_now_ms();
	if (inst->q.tail != NULL)
		inst->q.tail->next = ev;
	else
		inst->q.head = ev;
	inst->q.tail = ev;
	inst->q.len++;
	inst_kick(inst);
	return 0;
}

static struct ev *
inst_pop(struct imgw_instance *inst)
{
	struct ev *ev = inst->q.head;

	if (ev == NULL)
		return NULL;
	inst->q.head = ev->next;
	if (inst->q.head == NULL)
		inst->q.tail = NULL;
	inst->q.len--;
	ev->next = NULL;
	return ev;
}

void
inst_kick(struct imgw_instance *inst)
{
	if (inst->state == INST_READY && !inst->blocked && !inst->delivering &&
	    inst->q.head != NULL)
		event_active(inst->dispatch, EV_TIMEOUT, 0);
	else if (inst->removing && inst->q.head == NULL &&
	    inst->drained_cb != NULL)
		event_active(inst->dispatch, EV_TIMEOUT, 0);
}

static void
inst_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imgw_instance *inst = arg;
	struct router *r = inst->router;
	const char *cond;
	struct ev *ev;
	int n, rc;

	for (n = 0; n < INST_BUDGET; n++) {
		if (inst->state != INST_READY || inst->blocked ||
		    (ev = inst->q.head) == NULL)
			break;
		cond = NULL;
		inst->resumed = 0;
		inst->delivering = 1;
		rc = inst->desc->deliver(inst->priv, &ev->e, &cond);
		inst->delivering = 0;
		if (rc == IMGW_AGAIN) {
			if (!inst->resumed) {
				inst->blocked = 1;
				counters_add(&inst->ctr, "back-pressure", 1);
			}
			continue;
		}
		inst_pop(inst);
		if (rc == IMGW_OK) {
			inst->n_delivered++;
		} else {
			inst->n_refused++;
			router_answer(r, ev, cond ? cond
			    : IMGW_ERR_SERVICE_UNAVAILABLE,
			    "the destination refused the event");
		}
		ev_free(ev);
	}
	if (inst->removing && inst->q.head == NULL && inst->drained_cb) {
		inst->drained_cb(inst, inst->drained_arg);	/* may free */
		return;
	}
	inst_kick(inst);
}

void
inst_expire(struct imgw_instance *inst, uint64_t now, uint64_t max_age_ms)
{
	struct ev *ev;

	while ((ev = inst->q.head) != NULL && now - ev->queued_ms > max_age_ms &&
	    !(inst->delivering)) {
		inst_pop(inst);
		counters_add(&inst->ctr, "expired", 1);
		router_answer(inst->router, ev, IMGW_ERR_REMOTE_SERVER_TIMEOUT,
		    inst->state == INST_READY ? "destination too slow"
					      : "destination community is down");
		ev_free(ev);
	}
	inst_kick(inst);
}

/* ---- the host table ------------------------------------------------------- */

static void
host_log(struct imgw_instance *inst, enum imgw_log_level level,
    const char *trace, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, inst->name, trace, fmt, ap);
	va_end(ap);
}

static const char *
host_community(struct imgw_instance *inst)
{
	return inst->name;
}

static int
host_is_local(struct imgw_instance *inst)
{
	return inst->cc->local;
}

static int
host_owns_domain(struct imgw_instance *inst, const char *domain)
{
	size_t i, n;

	if (domain == NULL)
		return 0;
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	for (i = 0; i < inst->cc->ndomains; i++)
		if (strlen(inst->cc->domains[i]) == n &&
		    strncasecmp(inst->cc->domains[i], domain, n) == 0)
			return 1;
	return 0;
}

static const char *
host_option(struct imgw_instance *inst, const char *name)
{
	const struct imgw_option *o;
	size_t i;

	for (i = 0; i < inst->cc->nopts; i++)
		if (strcmp(inst->cc->opts[i].key, name) == 0)
			return inst->cc->opts[i].value;
	for (o = inst->desc->options; o != NULL && o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o->def;
	return NULL;
}

static long long
host_option_int(struct imgw_instance *inst, const char *name)
{
	const char *v = host_option(inst, name);
	long long n;

	return v != NULL && conf_parse_ll(v, &n) == 0 ? n : 0;
}

static int
host_option_bool(struct imgw_instance *inst, const char *name)
{
	const char *v = host_option(inst, name);

	return v != NULL && conf_parse_bool(v) == 1;
}

static void
host_timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct imgw_timer *t = arg;
	imgw_timer_cb cb = t->cb;
	void *cbarg = t->arg;

	LIST_REMOVE(t, link);
	event_free(t->ev);
	free(t);
	cb(cbarg);
}

static struct imgw_timer *
host_timer_add(struct imgw_instance *inst, unsigned int ms, imgw_timer_cb cb,
    void *arg)
{
	struct imgw_timer *t;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (cb == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->inst = inst;
	t->cb = cb;
	t->arg = arg;
	if ((t->ev = evtimer_new(inst->base, host_timer_fire, t)) == NULL ||
	    evtimer_add(t->ev, &tv) < 0) {
		if (t->ev != NULL)
			event_free(t->ev);
		free(t);
		return NULL;
	}
	LIST_INSERT_HEAD(&inst->timers, t, link);
	return t;
}

static void
host_timer_del(struct imgw_timer *t)
{
	if (t == NULL)
		return;
	LIST_REMOVE(t, link);
	event_free(t->ev);
	free(t);
}

static void
host_watch_fire(evutil_socket_t fd, short what, void *arg)
{
	struct imgw_watch *w = arg;
	int flags = 0;

	if (what & EV_READ)
		flags |= IMGW_WATCH_READ;
	if (what & EV_WRITE)
		flags |= IMGW_WATCH_WRITE;
	w->cb(fd, flags, w->arg);	/* may delete w */
}

static short
host_watch_flags(int what)
{
	return (short)(EV_PERSIST | ((what & IMGW_WATCH_READ) ? EV_READ : 0) |
	    ((what & IMGW_WATCH_WRITE) ? EV_WRITE : 0));
}

static int
host_watch_set(struct imgw_watch *w, int what)
{
	if (w == NULL)
		return -1;
	if (w->what == what)
		return 0;
	event_del(w->ev);
	w->what = what;
	if (event_assign(w->ev, w->inst->base, w->fd, host_watch_flags(what),
	    host_watch_fire, w) < 0)
		return -1;
	if (what != 0 && event_add(w->ev, NULL) < 0)
		return -1;
	return 0;
}

static struct imgw_watch *
host_watch_add(struct imgw_instance *inst, int fd, int what, imgw_watch_cb cb,
    void *arg)
{
	struct imgw_watch *w;

	if (fd < 0 || cb == NULL)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->inst = inst;
	w->fd = fd;
	w->what = what;
	w->cb = cb;
	w->arg = arg;
	w->ev = event_new(inst->base, fd, host_watch_flags(what), host_watch_fire,
	    w);
	if (w->ev == NULL || (what != 0 && event_add(w->ev, NULL) < 0)) {
		if (w->ev != NULL)
			event_free(w->ev);
		free(w);
		return NULL;
	}
	LIST_INSERT_HEAD(&inst->watches, w, link);
	return w;
}

static void
host_watch_del(struct imgw_watch *w)
{
	if (w == NULL)
		return;
	LIST_REMOVE(w, link);
	event_free(w->ev);
	free(w);
}

static int
host_emit_how(struct imgw_instance *inst, const struct imgw_event *ev,
    char *err_r, size_t errlen, char *trace_r, int now)
{
	if (inst->state == INST_STOPPED || !inst->has_priv) {
		if (err_r != NULL && errlen > 0)
			snprintf(err_r, errlen, "%s: community is stopped",
			    IMGW_ERR_SERVICE_UNAVAILABLE);
		return -1;
	}
	return router_emit(inst->router, inst, ev, err_r, errlen, trace_r, now);
}

static int
host_emit(struct imgw_instance *inst, const struct imgw_event *ev, char *err_r,
    size_t errlen, char *trace_r)
{
	return host_emit_how(inst, ev, err_r, errlen, trace_r, 0);
}

static int
host_emit_now(struct imgw_instance *inst, const struct imgw_event *ev,
    char *err_r, size_t errlen, char *trace_r)
{
	return host_emit_how(inst, ev, err_r, errlen, trace_r, 1);
}

static void
host_resume(struct imgw_instance *inst)
{
	inst->blocked = 0;
	inst->resumed = 1;
	inst_kick(inst);
}

static void
host_ready(struct imgw_instance *inst)
{
	if (inst->state == INST_STOPPED || inst->state == INST_QUIESCING ||
	    !inst->has_priv)
		return;
	if (inst->state != INST_READY)
		log_msg(IMGW_LOG_NOTICE, inst->name, NULL, "community is up "
		    "(connector '%s')", inst->desc->name);
	inst->state = INST_READY;
	inst->retry_ms = 0;
	free(inst->down_reason);
	inst->down_reason = NULL;
	inst_kick(inst);
}

static void
host_quiesced(struct imgw_instance *inst)
{
	if (inst->state != INST_QUIESCING)
		return;
	inst->quiesce_done = 1;
	if (!inst->in_quiesce)
		event_active(inst->quiesce_ev, EV_TIMEOUT, 0);
}

static void
host_down(struct imgw_instance *inst, const char *why)
{
	if (inst->state == INST_STOPPED)
		return;
	log_msg(IMGW_LOG_WARNING, inst->name, NULL, "community is down: %s",
	    why ? why : "no reason given");
	if (inst->state == INST_QUIESCING) {
		/* nothing more comes back from a lost peer: stop now */
		host_quiesced(inst);
		return;
	}
	inst_set_down(inst, why ? why : "down");
}

static void
host_counter_add(struct imgw_instance *inst, const char *name, int64_t delta)
{
	if (name != NULL)
		counters_add(&inst->ctr, name, delta);
}

static int
host_sub_put(struct imgw_instance *inst, const struct imgw_sub *sub)
{
	return subs_put(subs_current(), inst->name, sub);
}

static int
host_sub_del(struct imgw_instance *inst, const char *watcher,
    const char *presentity)
{
	return subs_del(subs_current(), inst->name, watcher, presentity);
}

static int
host_sub_list(struct imgw_instance *inst,
    void (*cb)(void *arg, const struct imgw_sub *sub), void *arg)
{
	return subs_list(subs_current(), inst, inst->name, cb, arg);
}

const struct imgw_host inst_host = {
	.size = sizeof(struct imgw_host),
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
	.log = host_log,
	.community = host_community,
	.is_local = host_is_local,
	.owns_domain = host_owns_domain,
	.option = host_option,
	.option_int = host_option_int,
	.option_bool = host_option_bool,
	.timer_add = host_timer_add,
	.timer_del = host_timer_del,
	.watch_add = host_watch_add,
	.watch_set = host_watch_set,
	.watch_del = host_watch_del,
	.emit = host_emit,
	.resume = host_resume,
	.ready = host_ready,
	.down = host_down,
	.counter_add = host_counter_add,
	.sub_put = host_sub_put,
	.sub_del = host_sub_del,
	.sub_list = host_sub_list,
	.quiesced = host_quiesced,
	.emit_now = host_emit_now,
};
