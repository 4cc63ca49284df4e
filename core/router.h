/*
 * The router: takes events emitted by instances, checks and copies them,
 * finds the destination community by the `to` domain, asks the policy
 * seam, damps presence, and queues the event at its destination.  Every
 * event it cannot deliver is answered with an error event to its sender.
 */
#ifndef IMGW_CORE_ROUTER_H
#define IMGW_CORE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <imgw/event.h>

#include "counters.h"

struct event_base;
struct imgw_instance;
struct ev;
struct damping;

/* The decision taken for one event; filled by the policy seam. */
struct router_verdict {
	int refuse;		/* non-zero: do not route */
	const char *condition;	/* RFC 6120 condition sent back when refused */
	const char *rule;	/* name of the rule that decided, or NULL */
	const char *text;	/* text for the sender, or NULL */
};

/*
 * The seam where policy decisions and audit records are taken (issue 3
 * fills it).  `policy` is called once per event before queueing, with the
 * source and destination community names; it must not block.  `audit` is
 * called once per event after the decision ("routed", "refused",
 * "undeliverable"), it must not block either: it hands the record to a
 * writer.  Both may be NULL.  The ev is borrowed for the call.
 */
struct router_hooks {
	void (*policy)(void *arg, const struct ev *ev, const char *src,
	    const char *dst, struct router_verdict *v);
	void (*audit)(void *arg, const struct ev *ev, const char *src,
	    const char *dst, const char *decision,
	    const struct router_verdict *v);
	void *arg;
};

struct router_limits {
	unsigned presence_rate, presence_window;	/* N per seconds */
	unsigned loop_limit, loop_window;
};

struct router {
	struct event_base *base;
	struct ht *domains;		/* domain -> struct imgw_instance */
	struct router_hooks hooks;
	struct damping *damping;
	struct counters ctr;
	char node[17];
	char boot[9];
	uint64_t seq;
	int closing;			/* shutting down: refuse new events */
	uint64_t routed;
	/* router_emit with `now`: the event being routed, and where its
	 * refusal goes instead of an error event */
	const struct ev *now_ev;
	char *now_err;
	size_t now_errlen;
	int now_refused;
};

struct router *router_new(struct event_base *base, const char *node,
    const struct router_limits *lim);
void router_free(struct router *r);

void router_set_limits(struct router *r, const struct router_limits *lim);
void router_set_node(struct router *r, const char *node);
void router_set_hooks(struct router *r, const struct router_hooks *h);

/* Domain table: rebuilt by the gateway on start and reload. */
void router_domains_clear(struct router *r);
/* -1 when the domain is already claimed. */
int router_domain_add(struct router *r, const char *domain,
    struct imgw_instance *inst);
struct imgw_instance *router_lookup(struct router *r, const char *domain);

/*
 * An event emitted by `src` (see imgw_host.emit for the contract).
 * Returns 0 when taken, -1 with a reason in err when malformed.  With
 * `now` (imgw_host.emit_now), a refusal decided while routing it (no
 * route, policy, a full or stopped queue, a loop, shutting down) is also
 * -1 with "CONDITION: text" in err, instead of an error event later.
 */
int router_emit(struct router *r, struct imgw_instance *src,
    const struct imgw_event *in, char *err, size_t errlen, char *trace_r,
    int now);

/*
 * Answer `ev` (owned by the caller, not freed) with an error event to its
 * sender; nothing is sent for an error event (no error loops).  The
 * counter "errors.CONDITION" moves either way.
 */
void router_answer(struct router *r, const struct ev *ev,
    const char *condition, const char *text);

/* Route an already copied event from `src` (NULL: from the core); takes
 * ownership of ev. */
void router_route(struct router *r, struct imgw_instance *src, struct ev *ev);

/* Hand an event to its destination queue without policy or damping (used
 * by the damping timer for coalesced presence); takes ownership. */
void router_forward(struct router *r, struct ev *ev, const char *src_name);

#endif
