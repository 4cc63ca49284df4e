/*
 * iq addressed to the component domain: XEP-0030 disco#info and
 * disco#items, XEP-0199 ping.  Anything else is answered with
 * service-unavailable (RFC 6120 8.4).
 *
 * Identity: category "gateway" (XEP-0030 registry).  The registry's types
 * name the network behind a gateway; imgw bridges to several, and the one
 * XMPP clients meet through this component is another federation of IM
 * communities, so we say "xmpp" ("gateway to another XMPP network"), the
 * closest registered type.  Features: only what the component really does.
 */
#include <stdio.h>
#include <string.h>

#include "xmpp.h"

static const char *const xc_features[] = {
	XC_NS_DISCO_INFO,
	XC_NS_DISCO_ITEMS,
	XC_NS_PING,
	XC_NS_CHATSTATES,
	"jid\\20escaping",	/* XEP-0106 section 5 */
	NULL,
};

static xmpp_stanza_t *
xc_disco_el(struct xc *x, const char *name, const char *attr, const char *val)
{
	xmpp_stanza_t *el = xmpp_stanza_new(x->ctx);

	if (el == NULL)
		return NULL;
	xmpp_stanza_set_name(el, name);
	if (attr != NULL)
		xmpp_stanza_set_attribute(el, attr, val);
	return el;
}

static int
xc_disco_add(xmpp_stanza_t *parent, xmpp_stanza_t *child)
{
	if (child == NULL)
		return -1;
	xmpp_stanza_add_child(parent, child);
	xmpp_stanza_release(child);
	return 0;
}

/* The disco#info <query/> of the component. */
static xmpp_stanza_t *
xc_disco_info(struct xc *x)
{
	xmpp_stanza_t *q, *id;
	char name[160];
	size_t i;

	if ((q = xmpp_stanza_new(x->ctx)) == NULL)
		return NULL;
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, XC_NS_DISCO_INFO);
	if ((id = xc_disco_el(x, "identity", "category", "gateway")) == NULL)
		goto fail;
	snprintf(name, sizeof(name), "imgw gateway (%s)", x->host->community(x->inst));
	xmpp_stanza_set_attribute(id, "type", "xmpp");
	xmpp_stanza_set_attribute(id, "name", name);
	if (xc_disco_add(q, id) == -1)
		goto fail;
	for (i = 0; xc_features[i] != NULL; i++)
		if (xc_disco_add(q, xc_disco_el(x, "feature", "var", xc_features[i])) == -1)
			goto fail;
	return q;
fail:
	xmpp_stanza_release(q);
	return NULL;
}

static void
xc_disco_result(struct xc *x, xmpp_stanza_t *iq, xmpp_stanza_t *payload)
{
	xmpp_stanza_t *res = xmpp_iq_new(x->ctx, "result", xmpp_stanza_get_id(iq));

	if (res == NULL) {
		if (payload != NULL)
			xmpp_stanza_release(payload);
		return;
	}
	xmpp_stanza_set_from(res, xmpp_stanza_get_to(iq));
	xmpp_stanza_set_to(res, xmpp_stanza_get_from(iq));
	if (payload != NULL) {
		xmpp_stanza_add_child(res, payload);
		xmpp_stanza_release(payload);
	}
	if (xc_outq_send(x, res) != 0)
		XC_LOG(x, IMGW_LOG_WARNING, "cannot answer an iq");
	xmpp_stanza_release(res);
}

void
xc_disco_iq(struct xc *x, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq);
	xmpp_stanza_t *q = NULL, *c;
	const char *ns;
	int n = 0;

	if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
		return;		/* results and errors: nothing we asked */
	/* RFC 6120 8.2.3: exactly one payload element */
	for (c = xmpp_stanza_get_children(iq); c != NULL; c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) && n++ == 0)
			q = c;
	if (n != 1) {
		xc_out_error_reply(x, iq, IMGW_ERR_BAD_REQUEST,
		    "an iq carries exactly one payload");
		return;
	}
	ns = xmpp_stanza_get_ns(q);
	if (strcmp(type, "get") == 0 && ns != NULL) {
		if (strcmp(ns, XC_NS_DISCO_INFO) == 0) {
			if (xmpp_stanza_get_attribute(q, "node") != NULL) {
				xc_out_error_reply(x, iq, IMGW_ERR_ITEM_NOT_FOUND, NULL);
				return;
			}
			XC_COUNT(x, "disco-info");
			if ((q = xc_disco_info(x)) != NULL)
				xc_disco_result(x, iq, q);
			return;
		}
		if (strcmp(ns, XC_NS_DISCO_ITEMS) == 0) {
			if ((q = xc_disco_el(x, "query", NULL, NULL)) != NULL) {
				xmpp_stanza_set_ns(q, XC_NS_DISCO_ITEMS);
				xc_disco_result(x, iq, q);
			}
			return;
		}
		if (strcmp(ns, XC_NS_PING) == 0) {
			xc_disco_result(x, iq, NULL);
			return;
		}
	}
	xc_out_error_reply(x, iq, IMGW_ERR_SERVICE_UNAVAILABLE, NULL);
}
