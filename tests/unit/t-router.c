/*
 * Unit tests of the router (core/router.c) with real instances
 * (core/inst.c), damping (core/damping.c) and a real event loop, served by
 * small connectors defined here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include <imgw/imgw.h>

#include "conf.h"
#include "counters.h"
#include "ev.h"
#include "inst.h"
#include "log.h"
#include "router.h"
#include "util.h"
#include "tap.h"

#define GOT_MAX		64
#define STR_MAX		128

/* One event as a test connector received it. */
struct got {
	enum imgw_kind kind;
	enum imgw_show show;
	char from[STR_MAX], to[STR_MAX], id[STR_MAX], trace[STR_MAX];
	char body[STR_MAX], status[STR_MAX], condition[STR_MAX], text[STR_MAX];
};

enum rec_mode {
	REC_OK = 0,	/* deliver takes everything */
	REC_AGAIN,	/* deliver says IMGW_AGAIN until the mode changes */
	REC_FAIL,	/* deliver says IMGW_FAIL with fail_cond */
};

/* One test community and what its connector saw. */
struct rec {
	const char *name;
	const char *domain;
	size_t queue_max;
	int call_ready;		/* start calls host->ready */
	int fail_starts;	/* start fails this many times first */
	enum rec_mode mode;
	const char *fail_cond;
	struct imgw_instance *inst;
	const struct imgw_host *host;
	int inits, starts, stops, finis;
	int deliver_calls;
	int n;
	struct got got[GOT_MAX];
};

static struct rec rec_a = { .name = "a", .domain = "a.example",
	.queue_max = 64, .call_ready = 1 };
static struct rec rec_b = { .name = "b", .domain = "b.example",
	.queue_max = 64, .call_ready = 1 };
static struct rec rec_n = { .name = "n", .domain = "n.example",
	.queue_max = 4, .call_ready = 0 };
static struct rec rec_g = { .name = "g", .domain = "g.example",
	.queue_max = 4, .call_ready = 1 };
static struct rec rec_f = { .name = "f", .domain = "f.example",
	.queue_max = 64, .call_ready = 1, .mode = REC_FAIL,
	.fail_cond = IMGW_ERR_ITEM_NOT_FOUND };
static struct rec rec_s = { .name = "s", .domain = "s.example",
	.queue_max = 64, .call_ready = 1, .fail_starts = 1 };
static struct rec *recs[] = { &rec_a, &rec_b, &rec_n, &rec_g, &rec_f,
	&rec_s };
#define NRECS	(sizeof(recs) / sizeof(recs[0]))

static struct event_base *base;
static struct router *router;

/* ---- the test connector ------------------------------------------------- */

static void
copy_str(char *dst, const char *src)
{
	snprintf(dst, STR_MAX, "%s", src ? src : "");
}

static int
tc_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	const char *name = host->community(inst);
	size_t i;

	for (i = 0; i < NRECS; i++) {
		if (strcmp(recs[i]->name, name) == 0) {
			recs[i]->inst = inst;
			recs[i]->host = host;
			recs[i]->inits++;
			*priv_r = recs[i];
			return 0;
		}
	}
	return -1;
}

static int
tc_start(void *priv)
{
	struct rec *rc = priv;

	rc->starts++;
	if (rc->fail_starts > 0) {
		rc->fail_starts--;
		return -1;
	}
	if (rc->call_ready)
		rc->host->ready(rc->inst);
	return 0;
}

static int
tc_deliver(void *priv, const struct imgw_event *ev, const char **cond_r)
{
	struct rec *rc = priv;
	struct got *g;

	rc->deliver_calls++;
	if (rc->mode == REC_AGAIN)
		return IMGW_AGAIN;
	if (rc->mode == REC_FAIL) {
		if (rc->fail_cond != NULL)
			*cond_r = rc->fail_cond;
		return IMGW_FAIL;
	}
	if (rc->n == GOT_MAX)
		bail_out("community %s received too many events", rc->name);
	g = &rc->got[rc->n++];
	g->kind = ev->kind;
	g->show = ev->show;
	copy_str(g->from, ev->from);
	copy_str(g->to, ev->to);
	copy_str(g->id, ev->id);
	copy_str(g->trace, ev->trace);
	copy_str(g->body, ev->body);
	copy_str(g->status, ev->status);
	copy_str(g->condition, ev->condition);
	copy_str(g->text, ev->text);
	return IMGW_OK;
}

static void
tc_stop(void *priv)
{
	((struct rec *)priv)->stops++;
}

static void
tc_fini(void *priv)
{
	((struct rec *)priv)->finis++;
}

static const struct imgw_connector test_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "test",
	.version = "1",
	.description = "records deliveries",
	.init = tc_init,
	.start = tc_start,
	.deliver = tc_deliver,
	.stop = tc_stop,
	.fini = tc_fini,
};

/* ---- helpers ------------------------------------------------------------- */

static void
pump(void)
{
	int i;

	for (i = 0; i < 8; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Run the loop for `ms` milliseconds. */
static void
run_for(unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
clear_all(void)
{
	size_t i;

	for (i = 0; i < NRECS; i++) {
		recs[i]->n = 0;
		recs[i]->deliver_calls = 0;
	}
}

static int64_t
rctr(const char *name)
{
	return counters_get(&router->ctr, name);
}

static struct imgw_event
mkev(enum imgw_kind kind, const char *from, const char *to, const char *id)
{
	struct imgw_event e;

	imgw_event_init(&e, kind);
	e.from = from;
	e.to = to;
	e.id = id;
	if (kind == IMGW_EV_MESSAGE)
		e.body = "hello";
	if (kind == IMGW_EV_ERROR)
		e.condition = IMGW_ERR_BAD_REQUEST;
	return e;
}

/* Emit through the host table, as a connector does. */
static int
emit(struct rec *src, const struct imgw_event *e, char *err, char *trace)
{
	if (err != NULL)
		err[0] = '\0';
	return src->host->emit(src->inst, e, err, err ? 256 : 0, trace);
}

/* Emit a message with id `id`; must be taken. */
static int
send_msg(struct rec *src, const char *from, const char *to, const char *id,
    char *trace)
{
	struct imgw_event e = mkev(IMGW_EV_MESSAGE, from, to, id);
	char err[256];
	int rc = emit(src, &e, err, trace);

	if (rc != 0)
		diag("emit %s -> %s refused: %s", from, to, err);
	return rc;
}

static int
send_presence(struct rec *src, const char *from, const char *to,
    enum imgw_show show, const char *status)
{
	struct imgw_event e = mkev(IMGW_EV_PRESENCE, from, to, NULL);
	char err[256];
	int rc;

	e.show = show;
	e.status = status;
	if ((rc = emit(src, &e, err, NULL)) != 0)
		diag("presence %s -> %s refused: %s", from, to, err);
	return rc;
}

/* The error event `g` answers the message with `id` and `trace`. */
static void
is_error(const struct rec *rc, int idx, const char *cond, const char *id,
    const char *trace, const char *what)
{
	const struct got *g;

	if (!ok(rc->n > idx, "%s: %s got an answer", what, rc->name)) {
		diag("%s received %d events", rc->name, rc->n);
		return;
	}
	g = &rc->got[idx];
	is_int(g->kind, IMGW_EV_ERROR, "%s: an error event", what);
	is_str(g->condition, cond, "%s: condition", what);
	if (id != NULL)
		is_str(g->id, id, "%s: same id", what);
	if (trace != NULL)
		is_str(g->trace, trace, "%s: same trace", what);
}

/* ---- setup --------------------------------------------------------------- */

static void
setup(void)
{
	size_t i;

	base = event_base_new();
	if (base == NULL)
		bail_out("event_base_new failed");
	router = router_new(base, "testnode", NULL);
	for (i = 0; i < NRECS; i++) {
		struct rec *rc = recs[i];
		char *domains[1] = { (char *)rc->domain };
		struct conf_community cc = {
			.name = (char *)rc->name,
			.connector = "test",
			.domains = domains,
			.ndomains = 1,
		};
		struct imgw_instance *inst;

		inst = inst_new(router, base, &cc, &test_connector, NULL,
		    rc->queue_max);
		if (router_domain_add(router, rc->domain, inst) < 0)
			bail_out("domain %s refused", rc->domain);
		if (inst_start(inst) < 0 && rc != &rec_s)
			bail_out("community %s did not start", rc->name);
		if (rc->inst != inst)
			bail_out("community %s: init saw another instance",
			    rc->name);
	}
}

static void
test_setup(void)
{
	struct imgw_instance *dummy = rec_b.inst;

	is_int(router_domain_add(router, "a.example", dummy), -1, "a domain "
	    "cannot be claimed twice");
	ok(router_lookup(router, "a.example") == rec_a.inst, "lookup finds the "
	    "first owner");
	ok(router_lookup(router, "zz.example") == NULL, "lookup of an unknown "
	    "domain");
	is_str(inst_state_name(rec_a.inst), "running", "a ready community is "
	    "running");
	is_str(inst_state_name(rec_n.inst), "starting", "a community that "
	    "never called ready is starting");
	ok(rec_a.inits == 1 && rec_a.starts == 1, "init and start called once");
}

/* ---- routing ------------------------------------------------------------- */

static void
test_route(void)
{
	char trace[EV_TRACE_MAX] = "";
	uint64_t routed = router->routed;
	struct imgw_event e;

	clear_all();
	is_int(send_msg(&rec_a, "alice@a.example", "bob@b.example", "m1", trace),
	    0, "a message is taken");
	is_int(rec_b.n, 0, "nothing is delivered inside emit");
	pump();
	if (!is_int(rec_b.n, 1, "b received the message")) {
		skip(7, "nothing delivered");
		return;
	}
	is_int(rec_b.got[0].kind, IMGW_EV_MESSAGE, "kind kept");
	is_str(rec_b.got[0].from, "alice@a.example", "from kept");
	is_str(rec_b.got[0].to, "bob@b.example", "to kept");
	is_str(rec_b.got[0].id, "m1", "id kept");
	is_str(rec_b.got[0].body, "hello", "body kept");
	ok(trace[0] != '\0', "a trace id is returned");
	is_str(rec_b.got[0].trace, trace, "the delivered event carries it");
	is_int(rec_a.n, 0, "the sender got nothing back");
	is_int(router->routed, routed + 1, "routed counter moved");
	is_int(rec_b.inst->n_delivered, 1, "b's delivered counter moved");

	/* from and to are canonicalized by the core */
	clear_all();
	e = mkev(IMGW_EV_MESSAGE, "Alice@A.Example.", "Bob@B.EXAMPLE/Res Ource",
	    "m2");
	is_int(emit(&rec_a, &e, NULL, NULL), 0, "a non-canonical address is "
	    "taken (no err buffer, no trace buffer)");
	pump();
	if (is_int(rec_b.n, 1, "b received it")) {
		is_str(rec_b.got[0].from, "alice@a.example", "from canonicalized");
		is_str(rec_b.got[0].to, "bob@b.example/Res Ource", "to "
		    "canonicalized, resource verbatim");
	}

	/* domain-only addresses route by their domain */
	clear_all();
	is_int(send_msg(&rec_a, "a.example", "b.example/x", "m3", NULL), 0,
	    "domain-only addresses are taken");
	pump();
	is_int(rec_b.n, 1, "domain-only address routed");
}

static void
test_traces(void)
{
	char traces[20][EV_TRACE_MAX];
	char prefix[32];
	int i, j, dup = 0, match = 1, pre = 1;

	clear_all();
	for (i = 0; i < 20; i++) {
		char id[16];

		snprintf(id, sizeof(id), "t%d", i);
		traces[i][0] = '\0';
		send_msg(&rec_a, "alice@a.example", "bob@b.example", id,
		    traces[i]);
	}
	pump();
	snprintf(prefix, sizeof(prefix), "testnode-%s-", router->boot);
	for (i = 0; i < 20; i++) {
		if (strncmp(traces[i], prefix, strlen(prefix)) != 0)
			pre = 0;
		for (j = 0; j < i; j++)
			if (strcmp(traces[i], traces[j]) == 0)
				dup++;
		if (i >= rec_b.n || strcmp(rec_b.got[i].trace, traces[i]) != 0)
			match = 0;
	}
	is_int(rec_b.n, 20, "20 events delivered");
	is_int(dup, 0, "20 trace ids, all different");
	ok(pre, "trace ids are NODE-BOOT-SEQ");
	ok(match, "each delivered event carries its trace, in order");
}

static void
test_unknown_domain(void)
{
	char trace[EV_TRACE_MAX] = "";
	int64_t before = rctr("errors.remote-server-not-found");

	clear_all();
	is_int(send_msg(&rec_a, "alice@a.example", "x@nowhere.example/r", "u1",
	    trace), 0, "an event to an unknown domain is taken");
	pump();
	is_error(&rec_a, 0, IMGW_ERR_REMOTE_SERVER_NOT_FOUND, "u1", trace,
	    "unknown domain");
	if (rec_a.n > 0) {
		is_str(rec_a.got[0].from, "x@nowhere.example/r", "the error comes "
		    "from the unreachable address");
		is_str(rec_a.got[0].to, "alice@a.example", "the error goes to the "
		    "sender");
	}
	is_int(rec_a.n, 1, "exactly one answer");
	is_int(rctr("errors.remote-server-not-found"), before + 1, "counter "
	    "errors.remote-server-not-found moved");
}

static void
test_same_community(void)
{
	char trace[EV_TRACE_MAX] = "";

	clear_all();
	is_int(send_msg(&rec_a, "alice@a.example", "carol@a.example", "s1",
	    trace), 0, "an event inside the sender's community is taken");
	pump();
	is_error(&rec_a, 0, IMGW_ERR_NOT_ALLOWED, "s1", trace, "same community");
	is_int(rec_a.n, 1, "the sender got only the error");
}

static void
test_not_owned(void)
{
	struct imgw_event e = mkev(IMGW_EV_MESSAGE, "eve@b.example",
	    "bob@b.example", "o1");
	int64_t before = counters_get(&rec_a.inst->ctr, "emit-refused");
	char err[256], trace[EV_TRACE_MAX] = "untouched";

	clear_all();
	is_int(emit(&rec_a, &e, err, trace), -1, "from outside the emitting "
	    "community: refused");
	is_str(err, "forbidden: from address eve@b.example is not in community "
	    "'a'", "reason names the address and community");
	is_str(trace, "untouched", "no trace id for a refused event");
	pump();
	ok(rec_a.n == 0 && rec_b.n == 0, "nothing routed, nothing answered");
	is_int(counters_get(&rec_a.inst->ctr, "emit-refused"), before + 1,
	    "counter emit-refused moved");
}

/* emit must refuse `e` with exactly `reason`. */
static void
malformed(const struct imgw_event *e, const char *reason, const char *what)
{
	char err[256];

	is_int(emit(&rec_a, e, err, NULL), -1, "%s: refused", what);
	is_str(err, reason, "%s: reason", what);
}

static void
test_malformed(void)
{
	struct imgw_event e;
	char *big;

	clear_all();
	e = mkev(IMGW_EV_MESSAGE, NULL, "bob@b.example", NULL);
	malformed(&e, "bad-request: missing from", "no from");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", NULL, NULL);
	malformed(&e, "bad-request: missing to", "no to");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example", NULL);
	e.kind = IMGW_EV_NONE;
	malformed(&e, "bad-request: unknown event kind", "kind none");
	e.kind = (enum imgw_kind)99;
	malformed(&e, "bad-request: unknown event kind", "kind 99");
	e = mkev(IMGW_EV_PRESENCE, "alice@a.example", "bob@b.example", NULL);
	e.show = IMGW_SHOW_MAX;
	malformed(&e, "bad-request: unknown presence show value", "bad show");
	e = mkev(IMGW_EV_PRESENCE, "alice@a.example", "bob@b.example", NULL);
	e.priority = 128;
	malformed(&e, "bad-request: presence priority out of -128..127",
	    "priority 128");
	e = mkev(IMGW_EV_CHATSTATE, "alice@a.example", "bob@b.example", NULL);
	e.state = IMGW_CS_MAX;
	malformed(&e, "bad-request: unknown chat state", "bad chat state");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example", NULL);
	e.body = "caf\xc3";
	malformed(&e, "bad-request: field is not valid UTF-8", "invalid UTF-8 "
	    "body");
	e.body = "ok";
	e.status = "\xed\xa0\x80";
	malformed(&e, "bad-request: field is not valid UTF-8", "surrogate in "
	    "another field");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example", NULL);
	e.body = NULL;
	malformed(&e, "bad-request: message without body", "message without "
	    "body");
	e = mkev(IMGW_EV_ERROR, "alice@a.example", "bob@b.example", NULL);
	e.condition = NULL;
	malformed(&e, "bad-request: error without condition", "error without "
	    "condition");
	e.condition = "";
	malformed(&e, "bad-request: error without condition", "error with an "
	    "empty condition");
	e = mkev(IMGW_EV_MESSAGE, "alice@", "bob@b.example", NULL);
	malformed(&e, "jid-malformed: empty domain", "malformed from");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example/", NULL);
	malformed(&e, "jid-malformed: empty resource", "malformed to");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example", NULL);
	e.size = 8;
	malformed(&e, "bad-request: event struct too short", "size too small");
	e = mkev(IMGW_EV_MESSAGE, "alice@a.example", "bob@b.example", NULL);
	big = malloc(EV_BODY_MAX + 2);
	if (big == NULL)
		bail_out("out of memory");
	memset(big, 'x', EV_BODY_MAX + 1);
	big[EV_BODY_MAX + 1] = '\0';
	e.body = big;
	malformed(&e, "policy-violation: field too long", "body over 1 MiB");
	big[EV_BODY_MAX] = '\0';
	is_int(emit(&rec_a, &e, NULL, NULL), 0, "body of exactly 1 MiB taken");
	free(big);
	pump();
	is_int(rec_b.n, 1, "only the valid event was delivered");
	is_int(rec_a.n, 0, "no answers for refused events");
}

/* ---- queues and back-pressure -------------------------------------------- */

static void
test_queue_not_ready(void)
{
	char id[8], trace[EV_TRACE_MAX] = "";
	int i, rc = 0;

	clear_all();
	for (i = 1; i <= 4; i++) {
		snprintf(id, sizeof(id), "q%d", i);
		rc |= send_msg(&rec_a, "alice@a.example", "nina@n.example", id,
		    NULL);
	}
	is_int(rc, 0, "4 events for a community that is not ready are taken");
	pump();
	is_int(rec_n.inst->q.len, 4, "they wait in its queue");
	is_int(rec_a.n, 0, "no answer yet");
	is_int(send_msg(&rec_a, "alice@a.example", "nina@n.example", "q5",
	    trace), 0, "the 5th is taken by the router");
	pump();
	is_error(&rec_a, 0, IMGW_ERR_SERVICE_UNAVAILABLE, "q5", trace,
	    "queue full, destination not ready");
	is_int(rec_n.inst->q.len, 4, "the queue stays at its bound");
	is_int(counters_get(&rec_n.inst->ctr, "queue-full"), 1, "counter "
	    "queue-full moved");

	/* ready: the queue drains in order */
	rec_n.host->ready(rec_n.inst);
	pump();
	if (is_int(rec_n.n, 4, "ready: the 4 queued events are delivered"))
		ok(strcmp(rec_n.got[0].id, "q1") == 0 &&
		    strcmp(rec_n.got[1].id, "q2") == 0 &&
		    strcmp(rec_n.got[2].id, "q3") == 0 &&
		    strcmp(rec_n.got[3].id, "q4") == 0, "in order");
	is_int(rec_n.inst->q.len, 0, "queue empty");
	is_str(inst_state_name(rec_n.inst), "running", "n is running");

	/* down again: events queue again and age out */
	rec_n.host->down(rec_n.inst, "peer lost");
	is_str(inst_state_name(rec_n.inst), "down", "down");
	is_str(rec_n.inst->down_reason, "peer lost", "down reason kept");
	clear_all();
	send_msg(&rec_a, "alice@a.example", "nina@n.example", "x1", NULL);
	send_msg(&rec_a, "alice@a.example", "nina@n.example", "x2", NULL);
	pump();
	is_int(rec_n.n, 0, "nothing delivered while down");
	is_int(rec_n.inst->q.len, 2, "events queue while down");
	inst_expire(rec_n.inst, util_now_ms() + 10000, 5000);
	pump();
	is_int(rec_n.inst->q.len, 0, "expired events leave the queue");
	is_error(&rec_a, 0, IMGW_ERR_REMOTE_SERVER_TIMEOUT, "x1", NULL,
	    "expired 1");
	is_error(&rec_a, 1, IMGW_ERR_REMOTE_SERVER_TIMEOUT, "x2", NULL,
	    "expired 2");
	rec_n.host->ready(rec_n.inst);
	pump();
}

static void
test_queue_blocked(void)
{
	char id[8], trace[EV_TRACE_MAX] = "";
	int i, rc = 0, order = 1;

	clear_all();
	rec_g.mode = REC_AGAIN;
	rc |= send_msg(&rec_a, "alice@a.example", "gus@g.example", "g1", NULL);
	pump();
	is_int(rec_g.deliver_calls, 1, "deliver was tried once");
	is_str(inst_state_name(rec_g.inst), "busy", "IMGW_AGAIN: the community "
	    "is busy");
	is_int(rec_g.inst->q.len, 1, "the event stays at the head of the queue");
	for (i = 2; i <= 4; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		rc |= send_msg(&rec_a, "alice@a.example", "gus@g.example", id,
		    NULL);
	}
	pump();
	is_int(rc, 0, "4 events taken");
	is_int(rec_g.deliver_calls, 1, "no delivery attempt while blocked");
	is_int(rec_g.inst->q.len, 4, "4 queued");
	is_int(send_msg(&rec_a, "alice@a.example", "gus@g.example", "g5", trace),
	    0, "the 5th is taken by the router");
	pump();
	is_error(&rec_a, 0, IMGW_ERR_RESOURCE_CONSTRAINT, "g5", trace,
	    "queue full, destination blocked");
	is_int(counters_get(&rec_g.inst->ctr, "back-pressure"), 1, "counter "
	    "back-pressure moved");

	rec_g.mode = REC_OK;
	rec_g.host->resume(rec_g.inst);
	pump();
	if (is_int(rec_g.n, 4, "after resume the 4 are delivered")) {
		for (i = 0; i < 4; i++) {
			snprintf(id, sizeof(id), "g%d", i + 1);
			if (strcmp(rec_g.got[i].id, id) != 0)
				order = 0;
		}
		ok(order, "order preserved, the blocked event first");
	}
	is_int(rec_g.deliver_calls, 5, "the blocked event was retried once");
	is_str(inst_state_name(rec_g.inst), "running", "running again");
}

static void
test_deliver_fail(void)
{
	char trace[EV_TRACE_MAX] = "";

	clear_all();
	rec_f.fail_cond = IMGW_ERR_ITEM_NOT_FOUND;
	send_msg(&rec_a, "alice@a.example", "fay@f.example", "f1", trace);
	pump();
	is_error(&rec_a, 0, IMGW_ERR_ITEM_NOT_FOUND, "f1", trace, "deliver "
	    "IMGW_FAIL");
	if (rec_a.n > 0) {
		is_str(rec_a.got[0].from, "fay@f.example", "the error comes from "
		    "the refusing address");
	}
	is_int(rec_f.inst->n_refused, 1, "refused counter moved");

	clear_all();
	rec_f.fail_cond = NULL;
	send_msg(&rec_a, "alice@a.example", "fay@f.example", "f2", NULL);
	pump();
	is_error(&rec_a, 0, IMGW_ERR_SERVICE_UNAVAILABLE, "f2", NULL, "IMGW_FAIL "
	    "without condition");
	rec_f.fail_cond = IMGW_ERR_ITEM_NOT_FOUND;
}

static void
test_no_error_loops(void)
{
	struct imgw_event e;
	int64_t before = rctr("errors-unanswerable");

	clear_all();
	e = mkev(IMGW_EV_ERROR, "alice@a.example", "x@nowhere.example", "e1");
	is_int(emit(&rec_a, &e, NULL, NULL), 0, "an error event to an unknown "
	    "domain is taken");
	pump();
	is_int(rec_a.n, 0, "it is not answered");
	is_int(rctr("errors-unanswerable"), before + 1, "counter "
	    "errors-unanswerable moved");

	e = mkev(IMGW_EV_ERROR, "alice@a.example", "fay@f.example", "e2");
	emit(&rec_a, &e, NULL, NULL);
	pump();
	is_int(rec_f.deliver_calls, 1, "an error event refused by its "
	    "destination...");
	is_int(rec_a.n, 0, "... is not answered either");
	is_int(rctr("errors-unanswerable"), before + 2, "counter moved again");

	e = mkev(IMGW_EV_ERROR, "alice@a.example", "bob@b.example", "e3");
	e.text = "why";
	emit(&rec_a, &e, NULL, NULL);
	pump();
	if (is_int(rec_b.n, 1, "a deliverable error event is delivered")) {
		is_str(rec_b.got[0].condition, IMGW_ERR_BAD_REQUEST, "with its "
		    "condition");
		is_str(rec_b.got[0].text, "why", "and text");
	}
}

/* ---- presence damping, rate limits, loops --------------------------------- */

static void
test_damping(void)
{
	struct imgw_event e;
	int64_t damped = rctr("presence-damped");

	clear_all();
	send_presence(&rec_a, "hal@a.example", "ivy@b.example",
	    IMGW_SHOW_AVAILABLE, "here");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example",
	    IMGW_SHOW_AVAILABLE, "here");
	pump();
	is_int(rec_b.n, 1, "identical presence twice: delivered once");
	is_int(rctr("presence-damped"), damped + 1, "counter presence-damped "
	    "moved");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example", IMGW_SHOW_AWAY,
	    "here");
	pump();
	is_int(rec_b.n, 2, "a different presence passes");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example", IMGW_SHOW_AWAY,
	    "here");
	pump();
	is_int(rec_b.n, 2, "the same again is damped");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example/phone",
	    IMGW_SHOW_AWAY, "here");
	pump();
	is_int(rec_b.n, 3, "the same presence to another resource is another "
	    "pair");

	e = mkev(IMGW_EV_PROBE, "ivy@b.example", "hal@a.example", NULL);
	is_int(emit(&rec_b, &e, NULL, NULL), 0, "a probe back is taken");
	pump();
	ok(rec_a.n == 1 && rec_a.got[0].kind == IMGW_EV_PROBE, "the probe is "
	    "delivered");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example", IMGW_SHOW_AWAY,
	    "here");
	pump();
	is_int(rec_b.n, 4, "after a probe the identical presence passes");
	send_presence(&rec_a, "hal@a.example", "ivy@b.example", IMGW_SHOW_AWAY,
	    "here");
	pump();
	is_int(rec_b.n, 4, "and then is damped again");
	is_int(rctr("presence-damped"), damped + 3, "3 damped in all");
}

/*
 * A presence that could not be queued (destination full) was never
 * forwarded: sending the same presence again must not be damped as a
 * duplicate, or the target never learns it.
 */
static void
test_damping_undelivered(void)
{
	int i, rc = 0;

	clear_all();
	rec_g.mode = REC_AGAIN;
	for (i = 0; i < 4; i++)
		rc |= send_msg(&rec_a, "alice@a.example", "gus@g.example", "fill",
		    NULL);
	pump();
	is_int(rc | (int)(rec_g.inst->q.len != 4), 0, "g's queue is full");
	send_presence(&rec_a, "ola@a.example", "gus@g.example", IMGW_SHOW_DND,
	    "busy");
	pump();
	is_error(&rec_a, 0, IMGW_ERR_RESOURCE_CONSTRAINT, NULL, NULL,
	    "presence to a full queue");
	rec_g.mode = REC_OK;
	rec_g.host->resume(rec_g.inst);
	pump();
	is_int(rec_g.n, 4, "g drained");
	send_presence(&rec_a, "ola@a.example", "gus@g.example", IMGW_SHOW_DND,
	    "busy");
	pump();
	ok(rec_g.n == 5 && rec_g.got[4].kind == IMGW_EV_PRESENCE, "the presence "
	    "sent again after the refusal is delivered, not damped");
}

static void
test_rate_limit(void)
{
	const struct router_limits lim = { .presence_rate = 2,
		.presence_window = 1, .loop_limit = 20, .loop_window = 10 };
	const struct router_limits dflt = { .presence_rate = 10,
		.presence_window = 10, .loop_limit = 20, .loop_window = 10 };
	int64_t held = rctr("presence-held");
	uint64_t t0;
	char status[8];
	int i;

	router_set_limits(router, &lim);
	clear_all();
	for (i = 1; i <= 5; i++) {
		snprintf(status, sizeof(status), "s%d", i);
		send_presence(&rec_a, "jon@a.example", "kim@b.example",
		    IMGW_SHOW_AVAILABLE, status);
	}
	pump();
	if (is_int(rec_b.n, 2, "rate 2/1: 2 of 5 presences delivered at once"))
		ok(strcmp(rec_b.got[0].status, "s1") == 0 &&
		    strcmp(rec_b.got[1].status, "s2") == 0, "the first two");
	is_int(rctr("presence-held"), held + 3, "3 held");
	t0 = util_now_ms();
	while (rec_b.n < 3 && util_now_ms() - t0 < 2000)
		run_for(50);
	if (is_int(rec_b.n, 3, "one more delivered when the window allows")) {
		is_str(rec_b.got[2].status, "s5", "the latest one: the "
		    "intermediate ones are coalesced");
		ok(util_now_ms() - t0 <= 1200, "within about a second (%llu ms)",
		    (unsigned long long)(util_now_ms() - t0));
	}
	run_for(1200);
	is_int(rec_b.n, 3, "nothing else follows");
	router_set_limits(router, &dflt);
}

/* Events of `kind` a recorder got; kind 0: every kind but errors. */
static int
nkind(const struct rec *r, enum imgw_kind kind)
{
	int i, n = 0;

	for (i = 0; i < r->n; i++)
		if (kind ? r->got[i].kind == kind
			 : r->got[i].kind != IMGW_EV_ERROR)
			n++;
	return n;
}

static const char *
first_cond(const struct rec *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->got[i].kind == IMGW_EV_ERROR)
			return r->got[i].condition;
	return NULL;
}

static void
test_loop(void)
{
	const struct router_limits lim = { .presence_rate = 10,
		.presence_window = 10, .loop_limit = 4, .loop_window = 10 };
	const struct router_limits dflt = { .presence_rate = 10,
		.presence_window = 10, .loop_limit = 20, .loop_window = 10 };
	int64_t stopped = rctr("loop-stopped");
	struct imgw_event e;
	int i, rc = 0;

	router_set_limits(router, &lim);
	clear_all();
	for (i = 0; i < 10; i++) {
		if (i % 2 == 0) {
			e = mkev(IMGW_EV_SUBSCRIBE, "lee@a.example",
			    "max@b.example", NULL);
			rc |= emit(&rec_a, &e, NULL, NULL);
		} else {
			e = mkev(IMGW_EV_SUBSCRIBED, "max@b.example/x",
			    "lee@a.example", NULL);
			rc |= emit(&rec_b, &e, NULL, NULL);
		}
		pump();
	}
	is_int(rc, 0, "all 10 taken");
	is_int(nkind(&rec_a, 0) + nkind(&rec_b, 0), 5, "loop-limit 4: the "
	    "first event and 4 changes of direction pass");
	is_int(rctr("loop-stopped"), stopped + 5, "the other 5 are stopped, "
	    "counter loop-stopped");
	is_int(nkind(&rec_a, IMGW_EV_ERROR) + nkind(&rec_b, IMGW_EV_ERROR), 5,
	    "each stopped event is answered (never dropped silently)");
	ok(first_cond(&rec_a) != NULL &&
	    strcmp(first_cond(&rec_a), "policy-violation") == 0,
	    "with policy-violation");
	ok(rec_b.n > 0 && rec_b.got[0].kind == IMGW_EV_SUBSCRIBE &&
	    rec_a.n > 0 && rec_a.got[0].kind == IMGW_EV_SUBSCRIBED,
	    "kinds kept");
	e = mkev(IMGW_EV_SUBSCRIBE, "lee@a.example", "max@b.example", NULL);
	emit(&rec_a, &e, NULL, NULL);
	pump();
	is_int(nkind(&rec_a, 0) + nkind(&rec_b, 0), 5, "the pair stays "
	    "stopped");
	is_int(nkind(&rec_a, IMGW_EV_ERROR), 3, "and its sender is answered");

	/* other pairs are not affected */
	e = mkev(IMGW_EV_SUBSCRIBE, "lee@a.example", "ned@b.example", NULL);
	emit(&rec_a, &e, NULL, NULL);
	pump();
	is_int(nkind(&rec_b, 0), 4, "another pair passes");
	router_set_limits(router, &dflt);
}

/* ---- the policy seam ------------------------------------------------------ */

struct audit_rec {
	char decision[32], src[32], dst[32], id[32], rule[32];
	int has_verdict;
};

static struct audit_rec audits[32];
static int naudits;
static int npolicy;

static void
test_policy_cb(void *arg, const struct ev *ev, const char *src,
    const char *dst, struct router_verdict *v)
{
	npolicy++;
	if (ev->e.id != NULL && strcmp(ev->e.id, "deny") == 0) {
		v->refuse = 1;
		v->rule = "no-deny";
		v->text = "denied by test";
	} else if (ev->e.id != NULL && strcmp(ev->e.id, "deny-pv") == 0) {
		v->refuse = 1;
		v->condition = IMGW_ERR_POLICY_VIOLATION;
	}
}

static void
test_audit_cb(void *arg, const struct ev *ev, const char *src,
    const char *dst, const char *decision, const struct router_verdict *v)
{
	struct audit_rec *a;

	if (naudits == 32)
		return;
	a = &audits[naudits++];
	snprintf(a->decision, sizeof(a->decision), "%s", decision);
	snprintf(a->src, sizeof(a->src), "%s", src ? src : "(null)");
	snprintf(a->dst, sizeof(a->dst), "%s", dst ? dst : "(null)");
	snprintf(a->id, sizeof(a->id), "%s", ev->e.id ? ev->e.id : "");
	snprintf(a->rule, sizeof(a->rule), "%s", v && v->rule ? v->rule : "");
	a->has_verdict = v != NULL;
}

static void
test_policy(void)
{
	const struct router_hooks hooks = { .policy = test_policy_cb,
		.audit = test_audit_cb, .arg = NULL };
	const struct router_hooks none = { 0 };
	char trace[EV_TRACE_MAX] = "";
	int64_t refused = rctr("refused");

	router_set_hooks(router, &hooks);
	clear_all();
	naudits = 0;
	send_msg(&rec_a, "alice@a.example", "bob@b.example", "fine", NULL);
	pump();
	is_int(rec_b.n, 1, "allowed event delivered");
	is_int(npolicy, 1, "policy asked once");
	if (is_int(naudits, 1, "audit called once")) {
		is_str(audits[0].decision, "routed", "audit: routed");
		is_str(audits[0].src, "a", "audit: source community");
		is_str(audits[0].dst, "b", "audit: destination community");
		is_str(audits[0].id, "fine", "audit: the event");
	}

	clear_all();
	naudits = 0;
	send_msg(&rec_a, "alice@a.example", "bob@b.example", "deny", trace);
	pump();
	is_int(rec_b.n, 0, "refused event not delivered");
	is_error(&rec_a, 0, IMGW_ERR_FORBIDDEN, "deny", trace, "policy refusal");
	if (rec_a.n > 0)
		is_str(rec_a.got[0].text, "denied by test", "the policy's text "
		    "reaches the sender");
	if (is_int(naudits, 1, "audit called once")) {
		is_str(audits[0].decision, "refused", "audit: refused");
		is_str(audits[0].rule, "no-deny", "audit: the rule that decided");
	}
	is_int(rctr("refused"), refused + 1, "counter refused moved");

	clear_all();
	send_msg(&rec_a, "alice@a.example", "bob@b.example", "deny-pv", NULL);
	pump();
	is_error(&rec_a, 0, IMGW_ERR_POLICY_VIOLATION, "deny-pv", NULL, "policy "
	    "refusal with its own condition");

	clear_all();
	naudits = 0;
	send_msg(&rec_a, "alice@a.example", "x@nowhere.example", "lost", NULL);
	pump();
	if (is_int(naudits, 1, "audit for an unknown domain")) {
		is_str(audits[0].decision, "undeliverable", "audit: undeliverable");
		is_str(audits[0].dst, "(null)", "audit: no destination");
	}
	router_set_hooks(router, &none);
}

/* A connector whose start fails once: down, retried with back-off. */
static void
test_start_retry(void)
{
	uint64_t t0;

	clear_all();
	is_str(inst_state_name(rec_s.inst), "down", "start failed: down");
	is_str(rec_s.inst->down_reason, "start failed", "down reason");
	ok(rec_s.inits == 1 && rec_s.stops == 1 && rec_s.finis == 1, "a failed "
	    "start is followed by stop and fini");
	is_int(send_msg(&rec_a, "alice@a.example", "sam@s.example", "r1", NULL),
	    0, "an event for a community that failed to start is taken");
	pump();
	is_int(rec_s.inst->q.len, 1, "it waits in the queue");
	t0 = util_now_ms();
	while (rec_s.n == 0 && util_now_ms() - t0 < 3000)
		run_for(100);
	is_int(rec_s.inits, 2, "start retried (init again)");
	is_str(inst_state_name(rec_s.inst), "running", "running after the "
	    "retry");
	ok(rec_s.n == 1 && strcmp(rec_s.got[0].id, "r1") == 0, "the queued "
	    "event is delivered");
	is_int(rec_a.n, 0, "no error for the sender");
}

static void
test_closing(void)
{
	char trace[EV_TRACE_MAX] = "";

	clear_all();
	router->closing = 1;
	is_int(send_msg(&rec_a, "alice@a.example", "bob@b.example", "c1", trace),
	    0, "while closing an event is taken");
	pump();
	is_int(rec_b.n, 0, "but not routed");
	is_error(&rec_a, 0, IMGW_ERR_SERVICE_UNAVAILABLE, "c1", trace,
	    "closing");
	router->closing = 0;
}

static void
teardown(void)
{
	size_t i;

	router_domains_clear(router);
	for (i = 0; i < NRECS; i++)
		inst_free(recs[i]->inst, IMGW_ERR_SERVICE_UNAVAILABLE);
	ok(rec_a.stops == 1 && rec_a.finis == 1, "stop and fini called once");
	router_free(router);
	event_base_free(base);
}

int
main(void)
{
	log_setup(LOG_TARGET_STDERR, getenv("IMGW_TEST_DEBUG") ? IMGW_LOG_DEBUG
	    : IMGW_LOG_WARNING);
	setup();
	test_setup();
	test_start_retry();	/* first: the retry timer is due in 1 s */
	test_route();
	test_traces();
	test_unknown_domain();
	test_same_community();
	test_not_owned();
	test_malformed();
	test_queue_not_ready();
	test_queue_blocked();
	test_deliver_fail();
	test_no_error_loops();
	test_damping();
	test_damping_undelivered();
	test_rate_limit();
	test_loop();
	test_policy();
	test_closing();
	teardown();
	return done_testing();
}
