/*
 * libFuzzer target: the xmpp connector's inbound path, stanza -> event.
 *
 * The connector's own sources (plugins/xmpp/stanza-in.c, jid.c,
 * stanza-out.c, disco.c, outq.c, subs.c) are compiled in unchanged; conn.c (the
 * socket and libstrophe's loop) is replaced by three stubs below, and the
 * core by a fake host table whose emit validates each event with the
 * core's real ev_copy (core/ev.c, address.c, util.c) and keeps it.
 *
 * One input is the text of one stanza.  libstrophe parses it (with expat,
 * as it parses a stream) into an xmpp_stanza_t that goes to
 * xc_in_stanza_cb exactly as a stanza from the server does.  Besides
 * crashes and sanitizer reports, the target aborts when:
 *
 *   - a stanza the connector writes back (stanza errors, disco answers)
 *     is not well-formed XML;
 *   - an event it emits is one the core refuses for a reason the
 *     connector should have caught (an unknown kind, a message without
 *     body, a presence show or priority out of range);
 *   - an accepted event does not survive the way back: the same event
 *     from the other side (from and to swapped) delivered through
 *     xc_out_event, its stanza re-parsed and fed in again (from and to
 *     swapped back) must give the same event.  Differences that XML
 *     itself imposes (line ends and whitespace in attributes normalized
 *     by the parser) are allowed.
 *
 * Build and run: tests/fuzz/t-fuzz-xmpp.sh (FUZZ_TIME seconds, default 30).
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp.h"
#include "ev.h"

#define FZ_DOMAIN	"xmpp.example"
#define FZ_COMPONENT	"gw.xmpp.example"
#define FZ_EVENTS	8

static struct xc fz_x;
static struct ev *fz_events[FZ_EVENTS];
static int fz_nevents;
static int fz_verbose;

/* ---- conn.c stand-ins ------------------------------------------------------ */

void
xc_conn_kick(struct xc *x)
{
	(void)x;
}

void
xc_conn_drop(struct xc *x, const char *why)
{
	(void)x;
	(void)why;
}

uint64_t
xc_now_ms(void)
{
	return 1000;
}

/* ---- the fake host --------------------------------------------------------- */

static void
fz_log(struct imgw_instance *inst, enum imgw_log_level level, const char *trace,
    const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	(void)inst;
	(void)trace;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);	/* checks the arguments' use */
	va_end(ap);
	if (fz_verbose)
		fprintf(stderr, "log %d: %s\n", (int)level, buf);
}

static const char *
fz_community(struct imgw_instance *inst)
{
	(void)inst;
	return "xmpp";
}

static struct imgw_timer *
fz_timer_add(struct imgw_instance *inst, unsigned int ms, imgw_timer_cb cb, void *arg)
{
	static char dummy;

	(void)inst;
	(void)ms;
	(void)cb;
	(void)arg;
	return (struct imgw_timer *)&dummy;	/* never fires */
}

static void
fz_timer_del(struct imgw_timer *t)
{
	(void)t;
}

static void
fz_counter_add(struct imgw_instance *inst, const char *name, int64_t delta)
{
	(void)inst;
	(void)delta;
	if (name == NULL || *name == '\0')
		abort();
}

static void
fz_resume(struct imgw_instance *inst)
{
	(void)inst;
}

/* The core's emit: validate and copy with the core's own ev_copy. */
static int
fz_emit(struct imgw_instance *inst, const struct imgw_event *ev, char *err_r,
    size_t errlen, char *trace_r)
{
	const char *why, *cond;
	struct ev *copy;

	(void)inst;
	if (ev->size != sizeof(*ev) || ev->from == NULL || ev->to == NULL)
		abort();
	if ((copy = ev_copy(ev, &why, &cond)) == NULL) {
		if (fz_verbose)
			fprintf(stderr, "emit refused: %s: %s\n", cond, why);
		/* reasons the connector itself must rule out */
		if (strcmp(why, "unknown event kind") == 0 ||
		    strcmp(why, "message without body") == 0 ||
		    strcmp(why, "unknown presence show value") == 0 ||
		    strcmp(why, "presence priority out of -128..127") == 0 ||
		    strcmp(why, "unknown chat state") == 0 ||
		    strcmp(why, "error without condition") == 0) {
			fprintf(stderr, "the connector emitted an event the core "
			    "refuses: %s\n", why);
			abort();
		}
		if (err_r != NULL && errlen > 0)
			snprintf(err_r, errlen, "%s: %s", cond, why);
		return -1;
	}
	if (fz_verbose)
		fprintf(stderr, "emit %s from %s to %s id %s\n",
		    imgw_kind_name(copy->e.kind), copy->e.from, copy->e.to,
		    copy->e.id ? copy->e.id : "-");
	if (fz_nevents < FZ_EVENTS)
		fz_events[fz_nevents++] = copy;
	else
		ev_free(copy);
	if (trace_r != NULL)
		strcpy(trace_r, "fuzz");
	return 0;
}

static const struct imgw_host fz_host = {
	.size = sizeof(struct imgw_host),
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
	.log = fz_log,
	.community = fz_community,
	.timer_add = fz_timer_add,
	.timer_del = fz_timer_del,
	.emit = fz_emit,
	.resume = fz_resume,
	.counter_add = fz_counter_add,
};

/* ---- checks ---------------------------------------------------------------- */

static void
fz_fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz-xmpp-stanza: %s\n  sent: %s\n  back: %s\n", what,
	    a ? a : "(null)", b ? b : "(null)");
	abort();
}

/* a == b after the XML parser's normalization: CR LF and CR read as LF in
 * text; tab, LF and CR read as space in attribute values. */
static int
fz_same(const char *a, const char *b, int attr)
{
	if (a == NULL || b == NULL)
		return a == b;
	while (*a != '\0' && *b != '\0') {
		char ca = *a++, cb = *b++;

		if (attr) {
			if (ca == '\t' || ca == '\n' || ca == '\r')
				ca = ' ';
		} else if (ca == '\r') {
			ca = '\n';
			if (*a == '\n')
				a++;
		}
		if (ca != cb)
			return 0;
	}
	return *a == *b;
}

static void
fz_check_field(const char *name, const char *sent, const char *back, int attr)
{
	char what[80];

	if (!fz_same(sent, back, attr)) {
		snprintf(what, sizeof(what), "field %s changed on the way back", name);
		fz_fail(what, sent, back);
	}
}

/* Every stanza written since `from_seq`: well-formed, one element. */
static void
fz_check_output(uint64_t from_seq)
{
	struct xc_out *o;
	xmpp_stanza_t *st;

	for (o = fz_x.outq; o != NULL; o = o->next) {
		if (o->seq <= from_seq)
			continue;
		if (strlen(o->text) != o->len)
			fz_fail("a NUL inside a written stanza", o->text, NULL);
		if ((st = xmpp_stanza_new_from_string(fz_x.ctx, o->text)) == NULL)
			fz_fail("the connector wrote a stanza that is not well-formed XML",
			    o->text, NULL);
		xmpp_stanza_release(st);
		if (fz_verbose)
			fprintf(stderr, "written: %s\n", o->text);
	}
}

/*
 * The way back for an accepted event `in` (XMPP user -> other community):
 * the same event from the other side, delivered, re-read.
 */
static void
fz_round_trip(const struct ev *in)
{
	const struct imgw_event *e = &in->e;
	struct imgw_event r = *e;
	const char *cond = NULL;
	xmpp_stanza_t *st;
	struct xc_out *o;
	struct ev *back;
	char *from, *to;
	int rc, n0;

	r.from = e->to;
	r.to = e->from;
	r.trace = NULL;
	if (e->kind == IMGW_EV_ERROR) {
		/* an error is answered in the element of the stanza it answers:
		 * only what the ring of emitted ids says; keep it a message */
		r.id = NULL;
	}
	rc = xc_out_event(&fz_x, &r, &cond);
	if (rc == IMGW_AGAIN)
		return;
	if (rc != IMGW_OK) {
		/* what may legitimately refuse the way back: text XML cannot
		 * carry, a stanza over max-stanza, an address whose escaped form
		 * is longer than a JID allows */
		if (strcmp(cond, "not-acceptable") == 0 ||
		    strcmp(cond, IMGW_ERR_POLICY_VIOLATION) == 0 ||
		    strcmp(cond, IMGW_ERR_JID_MALFORMED) == 0)
			return;
		fz_fail("deliver refused the answer", e->from, cond);
	}
	o = fz_x.outq_tail;
	if (o == NULL)
		fz_fail("deliver said OK but wrote nothing", e->from, NULL);
	if (fz_verbose)
		fprintf(stderr, "delivered back: %s\n", o->text);
	if ((st = xmpp_stanza_new_from_string(fz_x.ctx, o->text)) == NULL)
		fz_fail("deliver wrote a stanza that is not well-formed XML", o->text, NULL);
	/* swap from and to: as if the XMPP user had sent it to the gateway */
	from = strdup(xmpp_stanza_get_from(st));
	to = strdup(xmpp_stanza_get_to(st));
	if (from == NULL || to == NULL)
		abort();
	xmpp_stanza_set_from(st, to);
	xmpp_stanza_set_to(st, from);
	free(from);
	free(to);
	n0 = fz_nevents;
	xc_in_stanza_cb(NULL, st, &fz_x);
	xmpp_stanza_release(st);
	if (fz_nevents != n0 + 1) {
		/* the re-read was refused; the core may refuse an address it
		 * accepted the first time only if it changed on the way */
		fz_fail("the delivered stanza read back gives no event", o->text,
		    e->from);
	}
	back = fz_events[--fz_nevents];
	if (back->e.kind != r.kind)
		fz_fail("kind changed on the way back", imgw_kind_name(r.kind),
		    imgw_kind_name(back->e.kind));
	fz_check_field("to", e->to, back->e.to, 1);
	fz_check_field("from", e->from, back->e.from, 1);
	fz_check_field("id", r.id, back->e.id, 1);
	switch (r.kind) {
	case IMGW_EV_MESSAGE:
		fz_check_field("body", r.body, back->e.body, 0);
		fz_check_field("subject", r.subject, back->e.subject, 0);
		fz_check_field("thread", r.thread, back->e.thread, 0);
		fz_check_field("lang", r.lang, back->e.lang, 1);
		break;
	case IMGW_EV_PRESENCE:
		if (back->e.show != r.show)
			fz_fail("show changed on the way back", imgw_show_name(r.show),
			    imgw_show_name(back->e.show));
		fz_check_field("status", r.status, back->e.status, 0);
		fz_check_field("lang", r.lang, back->e.lang, 1);
		if (r.show != IMGW_SHOW_UNAVAILABLE && back->e.priority != r.priority)
			fz_fail("priority changed on the way back", o->text, NULL);
		break;
	case IMGW_EV_CHATSTATE:
		if (back->e.state != r.state)
			fz_fail("chat state changed on the way back",
			    imgw_chatstate_name(r.state), imgw_chatstate_name(back->e.state));
		fz_check_field("thread", r.thread, back->e.thread, 0);
		break;
	case IMGW_EV_ERROR:
		fz_check_field("condition", xc_condition_known(r.condition) ?
		    r.condition : IMGW_ERR_UNDEFINED_CONDITION, back->e.condition, 1);
		break;
	default:
		break;
	}
	ev_free(back);
}

/* ---- libFuzzer ------------------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_verbose = getenv("FUZZ_VERBOSE") != NULL;
	xmpp_initialize();
	fz_x.host = &fz_host;
	fz_x.inst = NULL;
	fz_x.ctx = xmpp_ctx_new(NULL, NULL);	/* logging off, as in conn.c */
	if (fz_x.ctx == NULL)
		abort();
	fz_x.component = strdup(FZ_COMPONENT);
	fz_x.server = "127.0.0.1";
	fz_x.max_stanza = 16384;	/* small, so the size limit is reached */
	fz_x.fd = -1;
	fz_x.state = XC_IDLE;		/* outq keeps what is written */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	xmpp_stanza_t *st;
	uint64_t seq0;
	char *text;
	int i, n;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	st = xmpp_stanza_new_from_string(fz_x.ctx, text);
	free(text);
	if (st == NULL)
		return 0;
	memset(fz_x.ids, 0, sizeof(fz_x.ids));
	fz_x.ids_next = 0;
	/* subscriptions from scratch (no store in the fake host: in memory),
	 * so that one input's subscribed does not make the next input's
	 * subscribe an answer instead of an event */
	xc_subs_free(&fz_x);
	if (xc_subs_start(&fz_x, NULL) == -1)
		abort();
	seq0 = fz_x.out_seq;
	fz_nevents = 0;
	xc_in_stanza_cb(NULL, st, &fz_x);
	xmpp_stanza_release(st);
	fz_check_output(seq0);
	n = fz_nevents;
	for (i = 0; i < n; i++)
		fz_round_trip(fz_events[i]);
	for (i = 0; i < n; i++)
		ev_free(fz_events[i]);
	fz_nevents = 0;
	xc_outq_free(&fz_x);
	fz_x.again = 0;
	return 0;
}
