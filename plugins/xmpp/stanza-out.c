/*
 * Events from the core -> stanzas to the server, stanza errors, and the
 * ids of stanzas we emitted (so that an error event answering one of them
 * becomes an error of the same element: message or presence).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp.h"

/* RFC 6120 8.3.3: defined conditions and the error type each implies. */
static const struct {
	const char *cond;
	const char *type;
} xc_conditions[] = {
	{ "bad-request", "modify" },
	{ "conflict", "cancel" },
	{ "feature-not-implemented", "cancel" },
	{ "forbidden", "auth" },
	{ "gone", "cancel" },
	{ "internal-server-error", "cancel" },
	{ "item-not-found", "cancel" },
	{ "jid-malformed", "modify" },
	{ "not-acceptable", "modify" },
	{ "not-allowed", "cancel" },
	{ "not-authorized", "auth" },
	{ "policy-violation", "modify" },
	{ "recipient-unavailable", "wait" },
	{ "redirect", "modify" },
	{ "registration-required", "auth" },
	{ "remote-server-not-found", "cancel" },
	{ "remote-server-timeout", "wait" },
	{ "resource-constraint", "wait" },
	{ "service-unavailable", "cancel" },
	{ "subscription-required", "auth" },
	{ "undefined-condition", "cancel" },
	{ "unexpected-request", "wait" },
};

int
xc_condition_known(const char *condition)
{
	size_t i;

	for (i = 0; condition && i < sizeof(xc_conditions) / sizeof(xc_conditions[0]); i++)
		if (strcmp(condition, xc_conditions[i].cond) == 0)
			return 1;
	return 0;
}

const char *
xc_error_type(const char *condition)
{
	size_t i;

	for (i = 0; condition && i < sizeof(xc_conditions) / sizeof(xc_conditions[0]); i++)
		if (strcmp(condition, xc_conditions[i].cond) == 0)
			return xc_conditions[i].type;
	return "cancel";
}

/* Non-zero when s holds only characters XML 1.0 can carry (the core has
 * checked UTF-8 already): no C0 controls but tab, LF, CR; no U+FFFE/F. */
static int
xc_xml_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; s != NULL && *p; p++) {
		if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
			return 0;
		if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
			return 0;
	}
	return 1;
}

/* <name xmlns=ns>text</name>, or NULL when out of memory. */
xmpp_stanza_t *
xc_child_text(xmpp_ctx_t *ctx, const char *name, const char *ns, const char *text)
{
	xmpp_stanza_t *el, *t;

	if ((el = xmpp_stanza_new(ctx)) == NULL)
		return NULL;
	xmpp_stanza_set_name(el, name);
	if (ns != NULL)
		xmpp_stanza_set_ns(el, ns);
	if (text != NULL) {
		if ((t = xmpp_stanza_new(ctx)) == NULL) {
			xmpp_stanza_release(el);
			return NULL;
		}
		xmpp_stanza_set_text(t, text);
		xmpp_stanza_add_child(el, t);
		xmpp_stanza_release(t);
	}
	return el;
}

/* Add <name>text</name> to parent when text is set; -1 out of memory. */
static int
xc_add_text(xmpp_stanza_t *parent, const char *name, const char *ns, const char *text)
{
	xmpp_stanza_t *el;

	if (text == NULL)
		return 0;
	if ((el = xc_child_text(xmpp_stanza_get_context(parent), name, ns, text)) == NULL)
		return -1;
	xmpp_stanza_add_child(parent, el);
	xmpp_stanza_release(el);
	return 0;
}

/* Add the empty element <name xmlns=ns/> to parent; -1 out of memory. */
static int
xc_add_empty(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	xmpp_stanza_t *el;

	if ((el = xc_child_text(xmpp_stanza_get_context(parent), name, ns, NULL)) == NULL)
		return -1;
	xmpp_stanza_add_child(parent, el);
	xmpp_stanza_release(el);
	return 0;
}

static xmpp_stanza_t *
xc_stanza(struct xc *x, const char *name, const char *type, const char *from,
    const char *to, const char *id)
{
	xmpp_stanza_t *st;

	if ((st = xmpp_stanza_new(x->ctx)) == NULL)
		return NULL;
	xmpp_stanza_set_name(st, name);
	if (type != NULL)
		xmpp_stanza_set_type(st, type);
	if (id != NULL)
		xmpp_stanza_set_id(st, id);
	xmpp_stanza_set_from(st, from);
	xmpp_stanza_set_to(st, to);
	return st;
}

/*
 * <name type='error' from to id><error type><condition/><text/></error>.
 * An unknown condition becomes undefined-condition.  NULL out of memory.
 */
xmpp_stanza_t *
xc_error_new(struct xc *x, const char *name, const char *from, const char *to,
    const char *id, const char *condition, const char *text)
{
	xmpp_stanza_t *st, *err = NULL, *cond = NULL;

	if (!xc_condition_known(condition))
		condition = IMGW_ERR_UNDEFINED_CONDITION;
	if ((st = xc_stanza(x, name, "error", from, to, id)) == NULL)
		return NULL;
	if ((err = xmpp_stanza_new(x->ctx)) == NULL ||
	    (cond = xc_child_text(x->ctx, condition, XC_NS_STANZAS, NULL)) == NULL)
		goto fail;
	xmpp_stanza_set_name(err, "error");
	xmpp_stanza_set_type(err, xc_error_type(condition));
	xmpp_stanza_add_child(err, cond);
	if (text != NULL && xc_xml_ok(text) &&
	    xc_add_text(err, "text", XC_NS_STANZAS, text) == -1)
		goto fail;
	xmpp_stanza_add_child(st, err);
	xmpp_stanza_release(cond);
	xmpp_stanza_release(err);
	return st;
fail:
	if (cond != NULL)
		xmpp_stanza_release(cond);
	if (err != NULL)
		xmpp_stanza_release(err);
	xmpp_stanza_release(st);
	return NULL;
}

/* Answer a stanza from the server with a stanza error (never an error
 * with an error, never a stanza without a from). */
void
xc_out_error_reply(struct xc *x, xmpp_stanza_t *orig, const char *condition,
    const char *text)
{
	const char *type = xmpp_stanza_get_type(orig);
	const char *from = xmpp_stanza_get_from(orig);
	const char *to = xmpp_stanza_get_to(orig);
	const char *name = xmpp_stanza_get_name(orig);
	xmpp_stanza_t *st;

	x->host->counter_add(x->inst, "stanza-errors-sent", 1);
	if ((type != NULL && strcmp(type, "error") == 0) || from == NULL ||
	    name == NULL)
		return;
	if (type != NULL && strcmp(name, "iq") == 0 && strcmp(type, "result") == 0)
		return;
	st = xc_error_new(x, name, to ? to : x->component, from,
	    xmpp_stanza_get_id(orig), condition, text);
	if (st == NULL)
		return;
	if (xc_outq_send(x, st) != 0)
		XC_LOG(x, IMGW_LOG_WARNING, "cannot send a %s error to %s", condition, from);
	xmpp_stanza_release(st);
}

/* ---- ids of emitted stanzas ---------------------------------------------- */

void
xc_ids_remember(struct xc *x, const char *id, enum xc_stanza_kind kind)
{
	struct xc_id *e;
	size_t n;

	if (id == NULL || (n = strlen(id)) >= XC_ID_MAX)
		return;
	e = &x->ids[x->ids_next];
	x->ids_next = (x->ids_next + 1) % XC_IDS;
	memcpy(e->id, id, n + 1);
	e->kind = kind;
}

/* The element an error event must use: from the kind it says it answers
 * (ABI 1.1), else the kind of the newest emitted stanza with its id;
 * message when unknown. */
static const char *
xc_ids_element(struct xc *x, const struct imgw_event *ev)
{
	const char *id = ev->id;
	size_t i, k;

	switch (ev->answers) {
	case IMGW_EV_MESSAGE:
	case IMGW_EV_CHATSTATE:
		return "message";
	case IMGW_EV_PRESENCE:
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBED:
	case IMGW_EV_PROBE:
		return "presence";
	default:
		break;
	}
	if (id == NULL)
		return "message";
	for (i = 0; i < XC_IDS; i++) {
		k = (x->ids_next + XC_IDS - 1 - i) % XC_IDS;
		if (x->ids[k].id[0] == '\0')
			break;
		if (strcmp(x->ids[k].id, id) == 0)
			return x->ids[k].kind == XC_ST_PRESENCE ? "presence" : "message";
	}
	return "message";
}

/* ---- events -> stanzas --------------------------------------------------- */

static const char *const xc_show_names[IMGW_SHOW_MAX] = {
	[IMGW_SHOW_AWAY] = "away", [IMGW_SHOW_CHAT] = "chat",
	[IMGW_SHOW_DND] = "dnd", [IMGW_SHOW_XA] = "xa",
};

static xmpp_stanza_t *
xc_out_message(struct xc *x, const struct imgw_event *ev, const char *from,
    const char *to)
{
	xmpp_stanza_t *st = xc_stanza(x, "message",
	    ev->msg_type != NULL ? ev->msg_type : "chat", from, to, ev->id);

	if (st == NULL)
		return NULL;
	if (ev->lang != NULL)
		xmpp_stanza_set_attribute(st, "xml:lang", ev->lang);
	if (xc_add_text(st, "subject", NULL, ev->subject) == -1 ||
	    xc_add_text(st, "body", NULL, ev->body) == -1 ||
	    xc_add_text(st, "thread", NULL, ev->thread) == -1) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

static xmpp_stanza_t *
xc_out_presence(struct xc *x, const struct imgw_event *ev, const char *from,
    const char *to)
{
	xmpp_stanza_t *st;
	char prio[8];

	st = xc_stanza(x, "presence", ev->show == IMGW_SHOW_UNAVAILABLE
	    ? "unavailable" : NULL, from, to, ev->id);
	if (st == NULL)
		return NULL;
	if (ev->lang != NULL)
		xmpp_stanza_set_attribute(st, "xml:lang", ev->lang);
	snprintf(prio, sizeof(prio), "%d", ev->priority);
	if (xc_add_text(st, "show", NULL, (unsigned)ev->show < IMGW_SHOW_MAX
	    ? xc_show_names[ev->show] : NULL) == -1 ||
	    xc_add_text(st, "status", NULL, ev->status) == -1 ||
	    xc_add_text(st, "priority", NULL, ev->priority != 0 &&
	    ev->show != IMGW_SHOW_UNAVAILABLE ? prio : NULL) == -1) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

static xmpp_stanza_t *
xc_out_chatstate(struct xc *x, const struct imgw_event *ev, const char *from,
    const char *to)
{
	xmpp_stanza_t *st = xc_stanza(x, "message", "chat", from, to, ev->id);

	if (st == NULL)
		return NULL;
	/* XEP-0334: a bare chat state is not worth storing offline */
	if (xc_add_empty(st, imgw_chatstate_name(ev->state), XC_NS_CHATSTATES) == -1 ||
	    xc_add_text(st, "thread", NULL, ev->thread) == -1 ||
	    xc_add_empty(st, "no-store", XC_NS_HINTS) == -1) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

/*
 * One event to the server.  Returns IMGW_OK, IMGW_AGAIN (too much
 * unconfirmed output) or IMGW_FAIL with *condition_r set.
 */
int
xc_out_event(struct xc *x, const struct imgw_event *ev, const char **condition_r)
{
	static const char *const sub_types[] = {
		[IMGW_EV_SUBSCRIBE] = "subscribe",
		[IMGW_EV_SUBSCRIBED] = "subscribed",
		[IMGW_EV_UNSUBSCRIBE] = "unsubscribe",
		[IMGW_EV_UNSUBSCRIBED] = "unsubscribed",
		[IMGW_EV_PROBE] = "probe",
	};
	char from[XC_JID_MAX + 1], to[XC_JID_MAX + 1];
	const char *why;
	xmpp_stanza_t *st = NULL;
	int rc;

	if (xc_outq_full(x)) {
		x->again = 1;
		return IMGW_AGAIN;
	}
	if (xc_subs_out(x, ev))
		return IMGW_OK;	/* answered from what the gateway knows */
	if (ev->to == NULL || ev->from == NULL ||
	    xc_addr_to_jid(x, ev->to, to, sizeof(to), &why) == -1) {
		*condition_r = IMGW_ERR_ITEM_NOT_FOUND;
		return IMGW_FAIL;
	}
	if (xc_addr_to_gwjid(x, ev->from, from, sizeof(from)) == -1) {
		if (x->s2s != NULL) {
			/* a community whose domain is not in local-domains:
			 * we cannot authenticate as it on the XMPP network */
			XC_LOG(x, IMGW_LOG_WARNING, "event from %s refused: its domain is "
			    "not in local-domains", ev->from);
			*condition_r = IMGW_ERR_NOT_ALLOWED;
			return IMGW_FAIL;
		}
		*condition_r = IMGW_ERR_JID_MALFORMED;
		return IMGW_FAIL;
	}
	if (!xc_xml_ok(ev->id) || !xc_xml_ok(ev->thread) || !xc_xml_ok(ev->subject) ||
	    !xc_xml_ok(ev->body) || !xc_xml_ok(ev->lang) || !xc_xml_ok(ev->status)) {
		*condition_r = "not-acceptable";
		return IMGW_FAIL;
	}
	switch (ev->kind) {
	case IMGW_EV_MESSAGE:
		st = xc_out_message(x, ev, from, to);
		break;
	case IMGW_EV_PRESENCE:
		st = xc_out_presence(x, ev, from, to);
		break;
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBED:
	case IMGW_EV_PROBE:
		st = xc_stanza(x, "presence", sub_types[ev->kind], from, to, ev->id);
		break;
	case IMGW_EV_CHATSTATE:
		if ((unsigned)ev->state >= IMGW_CS_MAX) {
			*condition_r = IMGW_ERR_BAD_REQUEST;
			return IMGW_FAIL;
		}
		st = xc_out_chatstate(x, ev, from, to);
		break;
	case IMGW_EV_ERROR:
		st = xc_error_new(x, xc_ids_element(x, ev), from, to, ev->id,
		    ev->condition, ev->text);
		break;
	default:
		*condition_r = IMGW_ERR_FEATURE_NOT_IMPLEMENTED;
		return IMGW_FAIL;
	}
	if (st == NULL) {
		*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		return IMGW_FAIL;
	}
	rc = xc_outq_send(x, st);
	xmpp_stanza_release(st);
	if (rc == -2) {
		x->host->counter_add(x->inst, "stanzas-too-large", 1);
		*condition_r = IMGW_ERR_POLICY_VIOLATION;
		return IMGW_FAIL;
	}
	if (rc != 0) {
		*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		return IMGW_FAIL;
	}
	x->host->counter_add(x->inst, "stanzas-out", 1);
	xc_subs_note(x, ev, 0);
	return IMGW_OK;
}
