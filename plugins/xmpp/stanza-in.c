/*
 * Stanzas from the server -> events for the core.  Whatever cannot become
 * an event is answered with the stanza error RFC 6120/6121 prescribe
 * (never an error with an error), or dropped and counted when the protocol
 * wants no answer (e.g. a message carrying nothing we carry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmpp.h"

#define XC_DEPTH_MAX	64	/* nesting measured before we call it too big */

/* Estimated serialized size of st, stopping early past `limit`; nesting
 * deeper than XC_DEPTH_MAX counts as past the limit. */
static size_t
xc_size_walk(xmpp_stanza_t *st, size_t limit, size_t acc, int depth)
{
	xmpp_stanza_t *c;
	const char *attrs[2 * 32];
	const char *s;
	int n, i;

	if (depth > XC_DEPTH_MAX)
		return limit + 1;
	if (xmpp_stanza_is_text(st)) {
		s = xmpp_stanza_get_text_ptr(st);
		return acc + (s ? strlen(s) : 0);
	}
	s = xmpp_stanza_get_name(st);
	acc += 2 * (s ? strlen(s) : 0) + 5;
	n = xmpp_stanza_get_attribute_count(st);
	if (n > 32) {
		acc += (size_t)n * 8;	/* lower bound; rare */
		n = 32;
	}
	n = xmpp_stanza_get_attributes(st, attrs, 2 * n);
	for (i = 0; i + 1 < n; i += 2)
		acc += strlen(attrs[i]) + strlen(attrs[i + 1]) + 4;
	for (c = xmpp_stanza_get_children(st); c != NULL && acc <= limit;
	    c = xmpp_stanza_get_next(c))
		acc = xc_size_walk(c, limit, acc, depth + 1);
	return acc;
}

size_t
xc_stanza_size(xmpp_stanza_t *st, size_t limit)
{
	return xc_size_walk(st, limit, 0, 0);
}

static int
xc_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* The language of an element: xml:lang, which libstrophe stores as "lang"
 * (its parser drops attribute namespaces). */
static const char *
xc_lang(xmpp_stanza_t *st)
{
	const char *l = xmpp_stanza_get_attribute(st, "lang");

	return l ? l : xmpp_stanza_get_attribute(st, "xml:lang");
}

/* The child `name` (in the stanza's own namespace) that fits the stanza's
 * language best: one with no xml:lang or the stanza's, else the first. */
static xmpp_stanza_t *
xc_child_lang(xmpp_stanza_t *st, const char *name, const char *lang)
{
	xmpp_stanza_t *c, *first = NULL;
	const char *l;

	for (c = xmpp_stanza_get_children(st); c != NULL; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || !xc_is(xmpp_stanza_get_name(c), name))
			continue;
		if (first == NULL)
			first = c;
		l = xc_lang(c);
		if (l == NULL || (lang != NULL && strcasecmp(l, lang) == 0))
			return c;
	}
	return first;
}

/* Text of a child as a malloc'ed string ("" for an empty element), NULL
 * when there is no such child (or no memory).  Free with free. */
static char *
xc_text(struct xc *x, xmpp_stanza_t *el)
{
	char *t, *r;

	if (el == NULL)
		return NULL;
	t = xmpp_stanza_get_text(el);
	r = strdup(t ? t : "");
	if (t != NULL)
		xmpp_free(x->ctx, t);
	return r;
}

/* Event fields that came from xc_text, freed together. */
struct xc_texts {
	char *p[6];
	int n;
};

static const char *
xc_keep(struct xc_texts *tx, char *s)
{
	if (s == NULL)
		return NULL;
	if (tx->n >= (int)(sizeof(tx->p) / sizeof(tx->p[0]))) {
		free(s);	/* never kept, never leaked (found by fuzzing) */
		return NULL;
	}
	tx->p[tx->n++] = s;
	return s;
}

static void
xc_texts_free(struct xc *x, struct xc_texts *tx)
{
	(void)x;
	while (tx->n > 0)
		free(tx->p[--tx->n]);
}

/* The defined condition and text of an <error/> child. */
static void
xc_in_error_fields(struct xc *x, xmpp_stanza_t *st, struct imgw_event *ev,
    struct xc_texts *tx)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error"), *c;
	const char *name;
	int found = 0;

	ev->condition = IMGW_ERR_UNDEFINED_CONDITION;
	if (err == NULL)
		return;
	for (c = xmpp_stanza_get_children(err); c != NULL; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || !xc_is(xmpp_stanza_get_ns(c), XC_NS_STANZAS))
			continue;
		name = xmpp_stanza_get_name(c);
		if (xc_is(name, "text")) {
			if (ev->text == NULL)	/* the first text only */
				ev->text = xc_keep(tx, xc_text(x, c));
		}
		else if (!found && xc_condition_known(name)) {
			ev->condition = name;
			found = 1;
		}
	}
}

/* The XEP-0085 state a message carries, or -1. */
static int
xc_in_chatstate(xmpp_stanza_t *st)
{
	xmpp_stanza_t *c;
	int s;

	for (c = xmpp_stanza_get_children(st); c != NULL; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c) || !xc_is(xmpp_stanza_get_ns(c), XC_NS_CHATSTATES))
			continue;
		if ((s = imgw_chatstate_parse(xmpp_stanza_get_name(c))) >= 0)
			return s;
	}
	return -1;
}

/* Fill ev from a <message/>.  Returns 0, 1 when there is nothing to carry
 * (drop), or -1 with *cond_r / *text_r for a stanza error. */
static int
xc_in_message(struct xc *x, xmpp_stanza_t *st, struct imgw_event *ev,
    struct xc_texts *tx, const char **cond_r, const char **text_r)
{
	const char *type = xmpp_stanza_get_type(st);
	const char *lang = xc_lang(st);
	xmpp_stanza_t *body, *subject;
	int cs;

	/* RFC 6121 5.2.2: a type we do not know is "normal" */
	if (xc_is(type, "groupchat")) {
		*cond_r = IMGW_ERR_FEATURE_NOT_IMPLEMENTED;
		*text_r = "group chat does not cross this gateway; "
		    "send a one-to-one message";
		return -1;
	}
	ev->thread = xc_keep(tx, xc_text(x, xmpp_stanza_get_child_by_name(st, "thread")));
	if (xc_is(type, "error")) {
		ev->kind = IMGW_EV_ERROR;
		ev->answers = IMGW_EV_MESSAGE;
		xc_in_error_fields(x, st, ev, tx);
		return 0;
	}
	body = xc_child_lang(st, "body", lang);
	subject = xc_child_lang(st, "subject", lang);
	if (body == NULL && subject == NULL) {
		if ((cs = xc_in_chatstate(st)) < 0)
			return 1;
		ev->kind = IMGW_EV_CHATSTATE;
		ev->state = (enum imgw_chatstate)cs;
		return 0;
	}
	ev->kind = IMGW_EV_MESSAGE;
	/* RFC 6121 5.2.2: no type or one we do not know is "normal" */
	ev->msg_type = xc_is(type, "chat") ? "chat"
	    : xc_is(type, "headline") ? "headline" : "normal";
	ev->body = xc_keep(tx, xc_text(x, body));
	ev->subject = xc_keep(tx, xc_text(x, subject));
	if (body != NULL && xc_lang(body) != NULL)
		lang = xc_lang(body);
	ev->lang = lang;
	if ((body != NULL && ev->body == NULL) || (subject != NULL && ev->subject == NULL)) {
		*cond_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		*text_r = "out of memory";
		return -1;
	}
	return 0;
}

static int
xc_in_presence(struct xc *x, xmpp_stanza_t *st, struct imgw_event *ev,
    struct xc_texts *tx, const char **cond_r, const char **text_r)
{
	static const struct {
		const char *type;
		enum imgw_kind kind;
	} types[] = {
		{ "subscribe", IMGW_EV_SUBSCRIBE },
		{ "subscribed", IMGW_EV_SUBSCRIBED },
		{ "unsubscribe", IMGW_EV_UNSUBSCRIBE },
		{ "unsubscribed", IMGW_EV_UNSUBSCRIBED },
		{ "probe", IMGW_EV_PROBE },
	};
	const char *type = xmpp_stanza_get_type(st), *lang = xc_lang(st);
	xmpp_stanza_t *status;
	char *show, *prio, *end;
	long p;
	size_t i;
	int s;

	if (xc_is(type, "error")) {
		ev->kind = IMGW_EV_ERROR;
		ev->answers = IMGW_EV_PRESENCE;
		xc_in_error_fields(x, st, ev, tx);
		return 0;
	}
	for (i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(type, types[i].type) == 0) {
			ev->kind = types[i].kind;
			return 0;
		}
	}
	if (type != NULL && strcmp(type, "unavailable") != 0) {
		*cond_r = IMGW_ERR_BAD_REQUEST;
		*text_r = "unknown presence type";
		return -1;
	}
	ev->kind = IMGW_EV_PRESENCE;
	ev->show = type ? IMGW_SHOW_UNAVAILABLE : IMGW_SHOW_AVAILABLE;
	status = xc_child_lang(st, "status", lang);
	ev->status = xc_keep(tx, xc_text(x, status));
	if (status != NULL && xc_lang(status) != NULL)
		lang = xc_lang(status);
	ev->lang = lang;
	if (type == NULL) {
		show = xc_text(x, xmpp_stanza_get_child_by_name(st, "show"));
		if (show != NULL) {
			s = imgw_show_parse(show);
			free(show);
			if (s < IMGW_SHOW_AWAY || s > IMGW_SHOW_XA) {
				*cond_r = IMGW_ERR_BAD_REQUEST;
				*text_r = "show must be away, chat, dnd or xa";
				return -1;
			}
			ev->show = (enum imgw_show)s;
		}
	}
	prio = xc_text(x, xmpp_stanza_get_child_by_name(st, "priority"));
	if (prio != NULL) {
		p = strtol(prio, &end, 10);
		s = *prio == '\0' || *end != '\0' || p < -128 || p > 127;
		free(prio);
		if (s) {
			*cond_r = IMGW_ERR_BAD_REQUEST;
			*text_r = "priority must be an integer in -128..127";
			return -1;
		}
		ev->priority = (int)p;
	}
	return 0;
}

/* "condition: reason" from the host's emit -> its two parts. */
static const char *
xc_emit_condition(char *err, const char **text_r)
{
	char *colon = strchr(err, ':');

	*text_r = err;
	if (colon == NULL)
		return IMGW_ERR_BAD_REQUEST;
	*colon = '\0';
	*text_r = colon[1] == ' ' ? colon + 2 : colon + 1;
	return xc_condition_known(err) ? err : IMGW_ERR_BAD_REQUEST;
}

/* A stanza addressed to the component domain itself. */
static void
xc_in_to_gateway(struct xc *x, xmpp_stanza_t *st, const char *name)
{
	if (xc_is(name, "iq")) {
		xc_disco_iq(x, st);
		return;
	}
	if (xc_is(name, "message"))
		xc_out_error_reply(x, st, IMGW_ERR_SERVICE_UNAVAILABLE,
		    "the gateway itself takes no messages; write to "
		    "user\\40domain@ this domain");
	/* presence to the gateway's domain: nothing to say (RFC 6121 allows
	 * ignoring it) */
	else
		XC_COUNT(x, "stanzas-to-gateway-ignored");
}

/* One stanza from the XMPP side (component stream or an authenticated
 * s2s stream): an event for the core, or a stanza error back. */
void
xc_in_stanza(struct xc *x, xmpp_stanza_t *st)
{
	char to_addr[XC_JID_MAX + 1], err[256], trace[40];
	const char *name = xmpp_stanza_get_name(st);
	const char *from = xmpp_stanza_get_from(st);
	const char *to = xmpp_stanza_get_to(st);
	const char *cond = NULL, *text = NULL, *why;
	struct imgw_addr_parts tp, fp;
	struct xc_texts tx = { .n = 0 };
	struct imgw_event ev;
	enum xc_stanza_kind kind;
	char limit[80];
	int rc;

	if (name == NULL)
		return;
	if (xc_stanza_size(st, x->max_stanza) > x->max_stanza) {
		XC_COUNT(x, "stanzas-too-large");
		snprintf(limit, sizeof(limit), "stanza larger than %zu bytes",
		    x->max_stanza);
		xc_out_error_reply(x, st, IMGW_ERR_POLICY_VIOLATION, limit);
		return;
	}
	if (!xc_is(name, "message") && !xc_is(name, "presence") && !xc_is(name, "iq")) {
		XC_COUNT(x, "stanzas-unsupported");
		XC_LOG(x, IMGW_LOG_INFO, "ignoring <%s/> from the server", name);
		return;
	}
	if (from == NULL || to == NULL || xc_jid_split(to, &tp) == -1 ||
	    xc_jid_split(from, &fp) == -1) {
		xc_out_error_reply(x, st, IMGW_ERR_JID_MALFORMED, "malformed from or to");
		return;
	}
	if (x->component != NULL && xc_jid_domain_is(from, x->component)) {
		/* the gateway's own domain: only we speak from there, and an
		 * event from it could never be answered; no error either, it
		 * would be addressed to ourselves */
		XC_COUNT(x, "stanzas-from-gateway-domain");
		XC_LOG(x, IMGW_LOG_INFO, "dropping <%s/> whose from %s is the "
		    "gateway's own domain", name, from);
		return;
	}
	if (tp.user == NULL) {
		xc_in_to_gateway(x, st, name);
		return;
	}
	if (xc_is(name, "iq")) {
		/* users of other communities answer no iq through us */
		if (xc_is(xmpp_stanza_get_type(st), "get") ||
		    xc_is(xmpp_stanza_get_type(st), "set"))
			xc_out_error_reply(x, st, IMGW_ERR_SERVICE_UNAVAILABLE, NULL);
		return;
	}
	if (xc_gwjid_to_addr(x, to, to_addr, sizeof(to_addr), &why) == -1) {
		xc_out_error_reply(x, st, IMGW_ERR_ITEM_NOT_FOUND, why);
		return;
	}
	imgw_event_init(&ev, IMGW_EV_NONE);
	ev.from = from;
	ev.to = to_addr;
	ev.id = xmpp_stanza_get_id(st);
	if (xc_is(name, "message")) {
		kind = XC_ST_MESSAGE;
		rc = xc_in_message(x, st, &ev, &tx, &cond, &text);
	} else {
		kind = XC_ST_PRESENCE;
		rc = xc_in_presence(x, st, &ev, &tx, &cond, &text);
	}
	if (rc == 1) {
		XC_COUNT(x, "messages-without-content");
		goto out;
	}
	if (rc == -1) {
		xc_out_error_reply(x, st, cond, text);
		goto out;
	}
	if (xc_subs_in(x, st, &ev))
		goto out;	/* answered from what the gateway knows */
	if (x->host->emit(x->inst, &ev, err, sizeof(err), trace) == -1) {
		XC_COUNT(x, "stanzas-refused");
		cond = xc_emit_condition(err, &text);
		XC_LOG(x, IMGW_LOG_INFO, "%s from %s to %s refused: %s: %s", name,
		    from, to, cond, text);
		xc_out_error_reply(x, st, cond, text);
		goto out;
	}
	XC_COUNT(x, "stanzas-in");
	xc_subs_note(x, &ev, 1);
	if (ev.kind != IMGW_EV_ERROR)
		xc_ids_remember(x, ev.id, kind);
out:
	xc_texts_free(x, &tx);
}

/* libstrophe's handler for every stanza once the handshake is done. */
int
xc_in_stanza_cb(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
	struct xc *x = arg;

	(void)conn;
	if (!xmpp_stanza_is_tag(st) || xc_outq_is_ack(x, st))
		return 1;
	xc_in_stanza(x, st);
	return 1;	/* keep the handler */
}
