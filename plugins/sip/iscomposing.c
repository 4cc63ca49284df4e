/*
 * application/im-iscomposing+xml (RFC 3994) <-> chat states (XEP-0085),
 * as RFC 7572 section 7 pairs them: <state>active</state> is composing;
 * idle is paused.  The other way, composing is active and every other
 * chat state is idle.
 *
 * Parsed with expat; no DTD, no external entities (expat never fetches
 * them unless asked), a depth bound, and only <state> and <refresh> in
 * the urn:ietf:params:xml:ns:im-iscomposing namespace are read.  The
 * refresh interval is typing.c's business.
 */
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "sip.h"

#define SIP_ISC_NS	"urn:ietf:params:xml:ns:im-iscomposing"
#define SIP_ISC_DEPTH	16

enum { SIP_ISC_NONE, SIP_ISC_STATE, SIP_ISC_REFRESH };

struct sip_isc {
	int depth;
	int in;				/* the element whose text is read */
	int bad;
	char text[2][16];		/* state, refresh */
	size_t len[2];
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
		p->in = SIP_ISC_STATE;
	else if (p->depth == 2 && strcmp(name, SIP_ISC_NS "|refresh") == 0)
		p->in = SIP_ISC_REFRESH;
}

static void XMLCALL
sip_isc_end(void *arg, const XML_Char *name)
{
	struct sip_isc *p = arg;

	(void)name;
	p->depth--;
	p->in = SIP_ISC_NONE;
}

static void XMLCALL
sip_isc_text(void *arg, const XML_Char *s, int len)
{
	struct sip_isc *p = arg;
	int i = p->in - 1;

	if (p->in == SIP_ISC_NONE || len < 0)
		return;
	if (p->len[i] + (size_t)len >= sizeof(p->text[i])) {
		p->bad = 1;
		return;
	}
	memcpy(p->text[i] + p->len[i], s, (size_t)len);
	p->len[i] += (size_t)len;
	p->text[i][p->len[i]] = '\0';
}

/* `s` without the white space around it (in place). */
static char *
sip_isc_trim(char *s)
{
	char *e;

	for (; *s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'; s++)
		;
	for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' ||
	    e[-1] == '\r' || e[-1] == '\n'); e--)
		;
	*e = '\0';
	return s;
}

/*
 * The chat state of an isComposing document, and its refresh interval in
 * seconds (0: none given; at most 86400); 0, or -1 when malformed.
 */
int
sip_isc_parse(const char *xml, size_t len, enum imgw_chatstate *state_r,
    unsigned *refresh_r)
{
	struct sip_isc p = { 0 };
	XML_Parser xp;
	unsigned long r = 0;
	char *s, *end;
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
	s = sip_isc_trim(p.text[1]);
	if (*s != '\0') {
		r = strtoul(s, &end, 10);
		if (*end != '\0' || *s < '0' || *s > '9' || r == 0)
			return -1;	/* RFC 3994: a positive integer */
	}
	*refresh_r = r > 86400 ? 86400 : (unsigned)r;
	s = sip_isc_trim(p.text[0]);
	if (strcmp(s, "active") == 0)
		*state_r = IMGW_CS_COMPOSING;
	else if (strcmp(s, "idle") == 0)
		*state_r = IMGW_CS_PAUSED;
	else
		return -1;
	return 0;
}

/* An isComposing document; composing is active with <refresh>refresh_s. */
int
sip_isc_format(enum imgw_chatstate state, unsigned refresh_s, char *buf,
    size_t len)
{
	char refresh[48] = "";
	int n;

	if (state == IMGW_CS_COMPOSING)
		snprintf(refresh, sizeof(refresh), "  <refresh>%u</refresh>\r\n",
		    refresh_s);
	n = snprintf(buf, len,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	    "<isComposing xmlns=\"" SIP_ISC_NS "\">\r\n"
	    "  <state>%s</state>\r\n"
	    "  <contenttype>text/plain</contenttype>\r\n"
	    "%s"
	    "</isComposing>\r\n",
	    state == IMGW_CS_COMPOSING ? "active" : "idle", refresh);

	return n > 0 && (size_t)n < len ? n : -1;
}
