/*
 * application/im-iscomposing+xml (RFC 3994) <-> chat states (XEP-0085),
 * as RFC 7572 section 7 pairs them: <state>active</state> is composing;
 * idle is paused.  The other way, composing is active and every other
 * chat state is idle.
 *
 * Parsed with expat; no DTD, no external entities (expat never fetches
 * them unless asked), a depth bound, and only <state> in the
 * urn:ietf:params:xml:ns:im-iscomposing namespace is read.
 */
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "sip.h"

#define SIP_ISC_NS	"urn:ietf:params:xml:ns:im-iscomposing"
#define SIP_ISC_DEPTH	16

struct sip_isc {
	int depth;
	int in_state;
	int bad;
	char state[16];
	size_t len;
};

static void XMLCALL
sip_isc_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct sip_isc *p = arg;

	(void)attrs;
	if (++p->depth > SIP_ISC_DEPTH)
		p->bad = 1;
	if (p->depth == 1 && strcmp(name, SIP_ISC_NS "|isComposing") != 0)
		p->bad = 1;
	if (p->depth == 2 && strcmp(name, SIP_ISC_NS "|state") == 0)
		p->in_state = 1;
}

static void XMLCALL
sip_isc_end(void *arg, const XML_Char *name)
{
	struct sip_isc *p = arg;

	(void)name;
	p->depth--;
	p->in_state = 0;
}

static void XMLCALL
sip_isc_text(void *arg, const XML_Char *s, int len)
{
	struct sip_isc *p = arg;

	if (!p->in_state || len < 0)
		return;
	if (p->len + (size_t)len >= sizeof(p->state)) {
		p->bad = 1;
		return;
	}
	memcpy(p->state + p->len, s, (size_t)len);
	p->len += (size_t)len;
	p->state[p->len] = '\0';
}

/* The chat state of an isComposing document; 0, or -1 when malformed. */
int
sip_isc_parse(const char *xml, size_t len, enum imgw_chatstate *state_r)
{
	struct sip_isc p = { 0 };
	XML_Parser xp;
	char *s, *e;
	int ok;

	if (len > 65536 || (xp = XML_ParserCreateNS("UTF-8", '|')) == NULL)
		return -1;
	XML_SetUserData(xp, &p);
	XML_SetElementHandler(xp, sip_isc_start, sip_isc_end);
	XML_SetCharacterDataHandler(xp, sip_isc_text);
	ok = XML_Parse(xp, xml, (int)len, 1) == XML_STATUS_OK;
	XML_ParserFree(xp);
	if (!ok || p.bad)
		return -1;
	for (s = p.state; *s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'; s++)
		;
	for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' ||
	    e[-1] == '\r' || e[-1] == '\n'); e--)
		;
	*e = '\0';
	if (strcmp(s, "active") == 0)
		*state_r = IMGW_CS_COMPOSING;
	else if (strcmp(s, "idle") == 0)
		*state_r = IMGW_CS_PAUSED;
	else
		return -1;
	return 0;
}

int
sip_isc_format(enum imgw_chatstate state, char *buf, size_t len)
{
	int n = snprintf(buf, len,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	    "<isComposing xmlns=\"" SIP_ISC_NS "\">\r\n"
	    "  <state>%s</state>\r\n"
	    "  <contenttype>text/plain</contenttype>\r\n"
	    "%s"
	    "</isComposing>\r\n",
	    state == IMGW_CS_COMPOSING ? "active" : "idle",
	    state == IMGW_CS_COMPOSING ? "  <refresh>90</refresh>\r\n" : "");

	return n > 0 && (size_t)n < len ? n : -1;
}
