/*
 * PIDF (RFC 3863) with RPID activities (RFC 4480) <-> presence events,
 * mapped as RFC 8048 does between SIP and XMPP presence:
 *
 *   XMPP show      PIDF
 *   (available)    <basic>open</basic>
 *   away           open + <rpid:activities><rpid:away/>
 *   chat           open (RPID has no "chatty" activity; open is the
 *                  closest, RFC 8048 section 4.2 leaves it at that)
 *   dnd            open + <rpid:activities><rpid:busy/>
 *   xa             open + <rpid:activities><rpid:away/> (RPID has one
 *                  "away"; xa is sent as away)
 *   unavailable    <basic>closed</basic>
 *
 * The other way: closed (in every tuple) is unavailable; an open tuple
 * with activities busy, on-the-phone, meeting, performance, presentation
 * or worship is dnd; away, vacation, sleeping, travel, steering,
 * holiday... (any other activity) is away; open without activities is
 * available.  The first <note> (of a tuple, the presence or the person)
 * is the status, its xml:lang the language.
 *
 * Parsing: expat, namespace aware, bounded depth and note size; no DTD
 * processing beyond expat's defaults (no external entities are fetched).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "sip.h"

#define PIDF_NS		"urn:ietf:params:xml:ns:pidf"
#define RPID_NS		"urn:ietf:params:xml:ns:pidf:rpid"
#define DM_NS		"urn:ietf:params:xml:ns:pidf:data-model"
#define XML_NS		"http://www.w3.org/XML/1998/namespace"
#define PIDF_DEPTH	32
#define PIDF_NOTE_MAX	1024

struct sip_pidf_parse {
	int depth;
	int bad;
	int in_basic, in_note, in_activities;
	int seen_basic, open;
	int busy, away;
	char basic[16];
	size_t basic_len;
	char note[PIDF_NOTE_MAX];
	size_t note_len;
	int have_note, note_done;
	char lang[40];
};

static const char *
sip_pidf_local(const char *name, const char *ns)
{
	size_t n = strlen(ns);

	if (strncmp(name, ns, n) == 0 && name[n] == '|')
		return name + n + 1;
	return NULL;
}

static void XMLCALL
sip_pidf_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct sip_pidf_parse *p = arg;
	const char *l;
	int i;

	if (++p->depth > PIDF_DEPTH) {
		p->bad = 1;
		return;
	}
	if (p->depth == 1 && ((l = sip_pidf_local(name, PIDF_NS)) == NULL ||
	    strcmp(l, "presence") != 0)) {
		p->bad = 1;
		return;
	}
	if ((l = sip_pidf_local(name, PIDF_NS)) != NULL) {
		if (strcmp(l, "basic") == 0) {
			p->in_basic = 1;
			p->basic_len = 0;
			p->basic[0] = '\0';
		} else if (strcmp(l, "note") == 0 && !p->note_done) {
			p->in_note = 1;
		}
	} else if ((l = sip_pidf_local(name, DM_NS)) != NULL) {
		if (strcmp(l, "note") == 0 && !p->note_done)
			p->in_note = 1;
	} else if ((l = sip_pidf_local(name, RPID_NS)) != NULL) {
		if (strcmp(l, "activities") == 0) {
			p->in_activities = 1;
		} else if (p->in_activities) {
			if (strcmp(l, "busy") == 0 || strcmp(l, "on-the-phone") == 0 ||
			    strcmp(l, "meeting") == 0 || strcmp(l, "performance") == 0 ||
			    strcmp(l, "presentation") == 0 || strcmp(l, "worship") == 0)
				p->busy = 1;
			else if (strcmp(l, "unknown") != 0)
				p->away = 1;
		}
	}
	if (p->in_note && !p->have_note) {
		for (i = 0; attrs[i] != NULL; i += 2)
			if (strcmp(attrs[i], XML_NS "|lang") == 0)
				snprintf(p->lang, sizeof(p->lang), "%s", attrs[i + 1]);
		p->have_note = 1;
	}
}

static void XMLCALL
sip_pidf_end(void *arg, const XML_Char *name)
{
	struct sip_pidf_parse *p = arg;
	const char *l;

	p->depth--;
	if (p->in_basic) {
		p->in_basic = 0;
		p->seen_basic = 1;
		if (strstr(p->basic, "open") != NULL)
			p->open = 1;
	}
	if (p->in_note) {
		p->in_note = 0;
		p->note_done = 1;
	}
	if ((l = sip_pidf_local(name, RPID_NS)) != NULL && strcmp(l, "activities") == 0)
		p->in_activities = 0;
}

static void XMLCALL
sip_pidf_text(void *arg, const XML_Char *s, int len)
{
	struct sip_pidf_parse *p = arg;

	if (len <= 0)
		return;
	if (p->in_basic && p->basic_len + (size_t)len < sizeof(p->basic)) {
		memcpy(p->basic + p->basic_len, s, (size_t)len);
		p->basic_len += (size_t)len;
		p->basic[p->basic_len] = '\0';
	}
	if (p->in_note) {
		size_t n = (size_t)len;

		if (p->note_len + n >= sizeof(p->note))
			n = sizeof(p->note) - 1 - p->note_len;
		memcpy(p->note + p->note_len, s, n);
		p->note_len += n;
		p->note[p->note_len] = '\0';
	}
}

/*
 * Fill show, status (note) and lang from a PIDF document.  note_r and
 * lang_r are the caller's buffers.  0, or -1 when the body is not PIDF.
 */
int
sip_pidf_parse(const char *xml, size_t len, enum imgw_show *show_r,
    char *note_r, size_t notelen, char *lang_r, size_t langlen)
{
	struct sip_pidf_parse p;
	XML_Parser xp;
	int ok;

	memset(&p, 0, sizeof(p));
	if (len > 1 << 20 || (xp = XML_ParserCreateNS(NULL, '|')) == NULL)
		return -1;
	XML_SetUserData(xp, &p);
	XML_SetElementHandler(xp, sip_pidf_start, sip_pidf_end);
	XML_SetCharacterDataHandler(xp, sip_pidf_text);
	ok = XML_Parse(xp, xml, (int)len, 1) == XML_STATUS_OK;
	XML_ParserFree(xp);
	if (!ok || p.bad || !p.seen_basic)
		return -1;
	if (!p.open)
		*show_r = IMGW_SHOW_UNAVAILABLE;
	else if (p.busy)
		*show_r = IMGW_SHOW_DND;
	else if (p.away)
		*show_r = IMGW_SHOW_AWAY;
	else
		*show_r = IMGW_SHOW_AVAILABLE;
	snprintf(note_r, notelen, "%s", p.note);
	snprintf(lang_r, langlen, "%s", p.lang);
	return 0;
}

/* Append s to buf with XML escapes; -1 when it does not fit. */
static int
sip_pidf_esc(char *buf, size_t len, size_t *off, const char *s)
{
	const char *rep;
	size_t n;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '&': rep = "&amp;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: rep = NULL; break;
		}
		n = rep ? strlen(rep) : 1;
		if (*off + n >= len)
			return -1;
		memcpy(buf + *off, rep ? rep : s, n);
		*off += n;
	}
	buf[*off] = '\0';
	return 0;
}

static int
sip_pidf_put(char *buf, size_t len, size_t *off, const char *s)
{
	size_t n = strlen(s);

	if (*off + n >= len)
		return -1;
	memcpy(buf + *off, s, n + 1);
	*off += n;
	return 0;
}

/*
 * A PIDF document for `entity` (a sip: URI) with show/note/lang; the
 * length, or -1 when buf is too small.
 */
int
sip_pidf_format(const char *entity, enum imgw_show show, const char *note,
    const char *lang, char *buf, size_t len)
{
	const char *act = show == IMGW_SHOW_AWAY || show == IMGW_SHOW_XA ? "away"
	    : show == IMGW_SHOW_DND ? "busy" : NULL;
	size_t off = 0;

	if (sip_pidf_put(buf, len, &off, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	    "<presence xmlns=\"" PIDF_NS "\" xmlns:dm=\"" DM_NS "\" xmlns:rpid=\""
	    RPID_NS "\" entity=\"") == -1 ||
	    sip_pidf_esc(buf, len, &off, entity) == -1 ||
	    sip_pidf_put(buf, len, &off, "\">\r\n  <tuple id=\"imgw\">\r\n"
	    "    <status><basic>") == -1 ||
	    sip_pidf_put(buf, len, &off, show == IMGW_SHOW_UNAVAILABLE ? "closed"
	    : "open") == -1 ||
	    sip_pidf_put(buf, len, &off, "</basic></status>\r\n") == -1)
		return -1;
	if (note != NULL && note[0] != '\0') {
		if (sip_pidf_put(buf, len, &off, "    <note") == -1)
			return -1;
		if (lang != NULL && lang[0] != '\0' &&
		    (sip_pidf_put(buf, len, &off, " xml:lang=\"") == -1 ||
		    sip_pidf_esc(buf, len, &off, lang) == -1 ||
		    sip_pidf_put(buf, len, &off, "\"") == -1))
			return -1;
		if (sip_pidf_put(buf, len, &off, ">") == -1 ||
		    sip_pidf_esc(buf, len, &off, note) == -1 ||
		    sip_pidf_put(buf, len, &off, "</note>\r\n") == -1)
			return -1;
	}
	if (sip_pidf_put(buf, len, &off, "  </tuple>\r\n") == -1)
		return -1;
	if (act != NULL && (sip_pidf_put(buf, len, &off, "  <dm:person id=\"p\">"
	    "<rpid:activities><rpid:") == -1 ||
	    sip_pidf_put(buf, len, &off, act) == -1 ||
	    sip_pidf_put(buf, len, &off, "/></rpid:activities></dm:person>\r\n") == -1))
		return -1;
	if (sip_pidf_put(buf, len, &off, "</presence>\r\n") == -1)
		return -1;
	return (int)off;
}
