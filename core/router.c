/* The router: check, copy, decide, damp, queue; answer what cannot go. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "address.h"
#include "conf.h"
#include "damping.h"
#include "ev.h"
#include "ht.h"
#include "inst.h"
#include "log.h"
#include "router.h"
#include "util.h"

struct router *
router_new(struct event_base *base, const char *node,
    const struct router_limits *lim)
{
	struct router *r = xcalloc(1, sizeof(*r));

	r->base = base;
	r->domains = ht_new();
	r->damping = damping_new(r, base);
	router_set_node(r, node);
	snprintf(r->boot, sizeof(r->boot), "%08x",
	    (unsigned)(util_hash(&r, sizeof(r)) ^ (uint64_t)time(NULL) ^
	    ((uint64_t)getpid() << 16)));
	if (lim != NULL)
		router_set_limits(r, lim);
	return r;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	damping_free(r->damping);
	ht_free(r->domains, NULL);
	counters_free(&r->ctr);
	free(r);
}

void
router_set_limits(struct router *r, const struct router_limits *lim)
{
	damping_set_limits(r->damping, lim->presence_rate,
	    lim->presence_window, lim->loop_limit, lim->loop_window);
}

void
router_set_node(struct router *r, const char *node)
{
	snprintf(r->node, sizeof(r->node), "%s", node ? node : "imgw");
}

void
router_set_hooks(struct router *r, const struct router_hooks *h)
{
	r->hooks = *h;
}

void
router_domains_clear(struct router *r)
{
	ht_free(r->domains, NULL);
	r->domains = ht_new();
}

int
router_domain_add(struct router *r, const char *domain,
    struct imgw_instance *inst)
{
	if (ht_get(r->domains, domain) != NULL)
		return -1;
	ht_put(r->domains, domain, inst);
	return 0;
}

struct imgw_instance *
router_lookup(struct router *r, const char *domain)
{
	return ht_get(r->domains, domain);
}

static struct imgw_instance *
router_dest(struct router *r, const char *addr)
{
	char dom[ADDR_PART_MAX + 1];

	if (addr_domain(addr, dom, sizeof(dom)) < 0)
		return NULL;
	return router_lookup(r, dom);
}

static void
router_audit(struct router *r, const struct ev *ev, const char *src,
    const char *dst, const char *decision, const struct router_verdict *v)
{
	if (r->hooks.audit != NULL)
		r->hooks.audit(r->hooks.arg, ev, src, dst, decision, v);
}

void
router_answer(struct router *r, const struct ev *ev, const char *condition,
    const char *text)
{
	struct imgw_instance *back;
	struct ev *err;
	char name[96];

	snprintf(name, sizeof(name), "errors.%s", condition);
	counters_add(&r->ctr, name, 1);
	log_msg(IMGW_LOG_INFO, "router", ev->trace, "%s from %s to %s not "
	    "delivered: %s%s%s", imgw_kind_name(ev->e.kind), ev->e.from,
	    ev->e.to, condition, text ? ": " : "", text ? text : "");
	if (ev == r->now_ev) {
		/* emit_now: the emitter answers in its own protocol */
		r->now_ev = NULL;
		r->now_refused = 1;
		if (r->now_err != NULL && r->now_errlen > 0)
			snprintf(r->now_err, r->now_errlen, "%s: %s", condition,
			    text != NULL ? text : "refused");
		return;
	}
	if (ev->e.kind == IMGW_EV_ERROR) {
		/* never answer an error with an error: that is how loops start */
		counters_add(&r->ctr, "errors-unanswerable", 1);
		return;
	}
	if ((back = router_dest(r, ev->e.from)) == NULL) {
		counters_add(&r->ctr, "errors-unanswerable", 1);
		log_msg(IMGW_LOG_WARNING, "router", ev->trace, "cannot answer "
		    "%s: its community is gone", ev->e.from);
		return;
	}
	err = ev_error_for(ev, condition, text);
	if (inst_enqueue(back, err) < 0) {
		counters_add(&r->ctr, "errors-unanswerable", 1);
		log_msg(IMGW_LOG_WARNING, "router", ev->trace, "cannot answer "
		    "%s: queue of community '%s' is full", ev->e.from,
		    back->name);
		ev_free(err);
	}
}

void
router_forward(struct router *r, struct ev *ev, const char *src_name)
{
	struct imgw_instance *dst = router_dest(r, ev->e.to);
	const char *cond;

	if (dst == NULL) {
		router_answer(r, ev, IMGW_ERR_REMOTE_SERVER_NOT_FOUND,
		    "no community serves this domain");
		router_audit(r, ev, src_name, NULL, "undeliverable", NULL);
		ev_free(ev);
		return;
	}
	if (inst_enqueue(dst, ev) < 0) {
		damping_unrecord(r->damping, ev);
		cond = dst->state == INST_READY ? IMGW_ERR_RESOURCE_CONSTRAINT
						: IMGW_ERR_SERVICE_UNAVAILABLE;
		counters_add(&dst->ctr, "queue-full", 1);
		router_answer(r, ev, cond, dst->state == INST_READY
		    ? "destination community is overloaded"
		    : "destination community is down");
		router_audit(r, ev, src_name, dst->name, "undeliverable", NULL);
		ev_free(ev);
		return;
	}
	r->routed++;
	log_msg(IMGW_LOG_DEBUG, "router", ev->trace, "%s %s -> %s queued for "
	    "'%s'", imgw_kind_name(ev->e.kind), ev->e.from, ev->e.to,
	    dst->name);
	router_audit(r, ev, src_name, dst->name, "routed", NULL);
}

void
router_route(struct router *r, struct imgw_instance *src, struct ev *ev)
{
	struct imgw_instance *dst = router_dest(r, ev->e.to);
	struct router_verdict v = { 0 };
	const char *src_name = src ? src->name : NULL;

	if (dst == NULL) {
		router_forward(r, ev, src_name);	/* answers not-found */
		return;
	}
	if (dst == src) {
		router_answer(r, ev, IMGW_ERR_NOT_ALLOWED, "destination is in "
		    "the sender's own community");
		router_audit(r, ev, src_name, dst->name, "refused", NULL);
		ev_free(ev);
		return;
	}
	if (r->hooks.policy != NULL) {
		r->hooks.policy(r->hooks.arg, ev, src_name, dst->name, &v);
		if (v.refuse) {
			counters_add(&r->ctr, "refused", 1);
			router_answer(r, ev, v.condition ? v.condition
			    : IMGW_ERR_FORBIDDEN, v.text);
			router_audit(r, ev, src_name, dst->name, "refused", &v);
			ev_free(ev);
			return;
		}
	}
	switch (damping_check(r->damping, ev, src_name)) {
	case DAMP_PASS:
		router_forward(r, ev, src_name);
		break;
	case DAMP_HELD:
		counters_add(&r->ctr, "presence-held", 1);
		break;
	case DAMP_DUPLICATE:
		counters_add(&r->ctr, "presence-damped", 1);
		ev_free(ev);
		break;
	case DAMP_LOOP:
		/* answered, never silently dropped; errors are never answered
		 * in turn, so the answer cannot feed the loop */
		counters_add(&r->ctr, "loop-stopped", 1);
		router_answer(r, ev, IMGW_ERR_POLICY_VIOLATION, "stopped: goes "
		    "back and forth between the same two addresses (loop-limit)");
		router_audit(r, ev, src_name, dst->name, "refused", &(struct
		    router_verdict){ .refuse = 1, .rule = "loop-limit",
		    .condition = IMGW_ERR_POLICY_VIOLATION });
		ev_free(ev);
		break;
	}
}

static int
router_owns(const struct imgw_instance *src, const char *addr)
{
	char dom[ADDR_PART_MAX + 1];
	size_t i;

	if (src->cc == NULL)
		return 1;
	if (addr_domain(addr, dom, sizeof(dom)) < 0)
		return 0;
	for (i = 0; i < src->cc->ndomains; i++)
		if (strcmp(src->cc->domains[i], dom) == 0)
			return 1;
	return 0;
}

int
router_emit(struct router *r, struct imgw_instance *src,
    const struct imgw_event *in, char *err, size_t errlen, char *trace_r,
    int now)
{
	const char *why = NULL, *cond = NULL;
	struct ev *ev;

	if ((ev = ev_copy(in, &why, &cond)) == NULL) {
		counters_add(&src->ctr, "emit-refused", 1);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", cond, why);
		return -1;
	}
	if (!router_owns(src, ev->e.from)) {
		counters_add(&src->ctr, "emit-refused", 1);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: from address %s is not in "
			    "community '%s'", IMGW_ERR_FORBIDDEN, ev->e.from,
			    src->name);
		ev_free(ev);
		return -1;
	}
	snprintf(ev->trace, sizeof(ev->trace), "%s-%s-%llx", r->node, r->boot,
	    (unsigned long long)++r->seq);
	if (trace_r != NULL)
		memcpy(trace_r, ev->trace, strlen(ev->trace) + 1);
	src->n_received++;
	if (now) {
		r->now_ev = ev;
		r->now_err = err;
		r->now_errlen = errlen;
		r->now_refused = 0;
	}
	if (r->closing) {
		router_answer(r, ev, IMGW_ERR_SERVICE_UNAVAILABLE,
		    "gateway is shutting down");
		ev_free(ev);
	} else {
		router_route(r, src, ev);
	}
	r->now_ev = NULL;
	if (now && r->now_refused)
		return -1;
	return 0;
}
