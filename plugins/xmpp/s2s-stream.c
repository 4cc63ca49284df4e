/*
 * One s2s XML stream on one non-blocking socket, plain or TLS.
 *
 * Input: bytes (from read() or SSL_read()) go to an expat parser with
 * namespace processing.  The stream header (depth 0) is handed to the
 * direction's header hook; each child of the stream (a stanza, features,
 * dialback or SASL element) is built as a libstrophe stanza object and
 * handed, complete, to the direction's element hook, then released.
 * Restricted XML (RFC 6120 11.1): a DTD, comment or processing
 * instruction is a restricted-xml stream error; malformed XML is
 * not-well-formed; a stanza over max-stanza (or a single token over it,
 * which expat would buffer whole) or nested deeper than 64 is
 * policy-violation.  After a stream error no more input is read.
 *
 * Output: text appended to a buffer, written when the socket takes it.
 * STARTTLS and SASL restart the stream: the hooks set `tls_start` or
 * `restart`, parsing stops at that element, and the parser is reset
 * before the next bytes (nothing may follow such an element in the same
 * read, RFC 6120 5.4.3.3 and 6.4.6).
 *
 * Lifetime: a stream is killed (socket closed, watch and timers gone) at
 * once, possibly from inside its own callbacks; its memory is freed later
 * by a zero-delay reaper timer, so no caller up the stack is left holding
 * a freed pointer.  The owner of a live stream is s->in (inbound) or its
 * peer (outbound); of a killed one, s->dead.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "s2s.h"

#define XS_NSSEP	'\xff'		/* cannot occur in UTF-8 names */
#define XS_READ_CHUNK	16384
#define XS_READS_PER_EVENT 16		/* fairness between streams */
#define XS_OUT_MAX	(64u << 20)	/* a peer that does not read */

static void xs_stream_parser_reset(struct xs_stream *st);

/* ---- small helpers ------------------------------------------------------- */

/* Split an expat name "uri<sep>local" into its parts; ns_r is NULL (and
 * nslen 0) for a name without namespace. */
static const char *
xs_name(const char *name, const char **ns_r, size_t *nslen_r)
{
	const char *sep = strchr(name, XS_NSSEP);

	if (sep == NULL) {
		*ns_r = NULL;
		*nslen_r = 0;
		return name;
	}
	*ns_r = name;
	*nslen_r = (size_t)(sep - name);
	return sep + 1;
}

/* The domain part of a JID into out ("" for none); -1 when too long. */
int
xs_domain_of(const char *jid, char *out, size_t outlen)
{
	struct imgw_addr_parts p;
	size_t i;

	out[0] = '\0';
	if (jid == NULL || xc_jid_split(jid, &p) == -1 || p.domain_len >= outlen)
		return -1;
	for (i = 0; i < p.domain_len; i++) {
		char c = p.domain[i];

		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[p.domain_len] = '\0';
	return 0;
}

int
xs_attr_is(xmpp_stanza_t *el, const char *name, const char *val)
{
	const char *v = xmpp_stanza_get_attribute(el, name);

	return v != NULL && strcmp(v, val) == 0;
}

/* ---- output ----------------------------------------------------------------- */

static void
xs_stream_rewatch(struct xs_stream *st)
{
	int want = IMGW_WATCH_READ;

	if (st->watch == NULL)
		return;
	if (st->phase == XS_CONNECTING || st->tls_want_write ||
	    (st->phase != XS_TLS && st->out.len > st->out.off))
		want |= IMGW_WATCH_WRITE;
	if (st->failed && st->phase == XS_CLOSING && !(want & IMGW_WATCH_WRITE))
		want = IMGW_WATCH_READ;
	if (want != st->want) {
		st->s->x->host->watch_set(st->watch, want);
		st->want = want;
	}
}

/* Write what the socket takes.  Returns -1 when the stream died. */
static int
xs_stream_flush(struct xs_stream *st)
{
	struct xs_buf *b = &st->out;
	ssize_t n;
	int e;

	if (st->phase != XS_OPEN && st->phase != XS_CLOSING)
		return 0;
	while (b->off < b->len) {
		if (st->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(st->ssl, b->p + b->off, (int)(b->len - b->off > (1u << 30)
			    ? (1u << 30) : b->len - b->off));
			if (n <= 0) {
				e = SSL_get_error(st->ssl, (int)n);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				xs_stream_kill(st, "TLS write failed");
				return -1;
			}
		} else {
			n = write(st->fd, b->p + b->off, b->len - b->off);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				xs_stream_kill(st, strerror(errno));
				return -1;
			}
		}
		b->off += (size_t)n;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	xs_stream_rewatch(st);
	return 0;
}

void
xs_stream_write(struct xs_stream *st, const char *data, size_t len)
{
	struct xs_buf *b = &st->out;
	size_t need;
	char *p;

	if (st->phase == XS_DEAD || len == 0)
		return;
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len - b->off + len > XS_OUT_MAX) {
		xs_stream_kill(st, "the peer does not read what we send");
		return;
	}
	if (b->len + len > b->cap) {
		if (b->off > 0) {
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		for (need = b->cap ? b->cap : 4096; need < b->len + len; need *= 2)
			;
		if (need > b->cap) {
			if ((p = realloc(b->p, need)) == NULL) {
				xs_stream_kill(st, "out of memory");
				return;
			}
			b->p = p;
			b->cap = need;
		}
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	(void)xs_stream_flush(st);
	xs_stream_rewatch(st);
}

void
xs_stream_printf(struct xs_stream *st, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		xs_stream_kill(st, "internal: element too long");
		return;
	}
	xs_stream_write(st, buf, (size_t)n);
}

/* Serialize el onto the stream (the caller keeps el). */
void
xs_stream_stanza(struct xs_stream *st, xmpp_stanza_t *el)
{
	char *buf = NULL;
	size_t len = 0;

	if (xmpp_stanza_to_text(el, &buf, &len) != XMPP_EOK || buf == NULL) {
		xs_stream_kill(st, "out of memory");
		return;
	}
	xs_stream_write(st, buf, len);
	xmpp_free(st->s->x->ctx, buf);
}

/* Our stream header.  Domains and ids are checked names (no quotes). */
void
xs_stream_header(struct xs_stream *st, const char *from, const char *to, const char *id)
{
	xs_stream_printf(st, "<?xml version='1.0'?><stream:stream xmlns='" XS_NS_SERVER
	    "' xmlns:stream='" XS_NS_STREAM "' xmlns:db='" XS_NS_DB "'%s%s%s%s%s%s%s%s%s"
	    " version='1.0'>",
	    from && *from ? " from='" : "", from && *from ? from : "", from && *from ? "'" : "",
	    to && *to ? " to='" : "", to && *to ? to : "", to && *to ? "'" : "",
	    id ? " id='" : "", id ? id : "", id ? "'" : "");
	st->header_sent = 1;
}

static void
xs_stream_timer_cb(void *arg)
{
	struct xs_stream *st = arg;

	st->timer = NULL;
	if (st->phase == XS_CLOSING) {
		xs_stream_kill(st, "closed");
		return;
	}
	if (st->dir == XS_OUT && st->authed_out && st->phase == XS_OPEN) {
		xs_stream_close(st, "idle");
		return;
	}
	xs_stream_error(st, "connection-timeout", "stream set-up took too long");
}

/* (Re)arm the stream's one timer; 0 cancels it. */
void
xs_stream_timeout(struct xs_stream *st, unsigned int ms)
{
	const struct imgw_host *h = st->s->x->host;

	if (st->timer != NULL) {
		h->timer_del(st->timer);
		st->timer = NULL;
	}
	if (st->phase != XS_DEAD && ms > 0)
		st->timer = h->timer_add(st->s->x->inst, ms, xs_stream_timer_cb, st);
}

/*
 * Stream error (RFC 6120 4.9): header first when we have not sent ours,
 * then the error and the close tag; the socket closes when the peer
 * closes or after a short wait.  No more input is processed.
 */
void
xs_stream_error(struct xs_stream *st, const char *cond, const char *text)
{
	if (st->phase == XS_DEAD || st->failed)
		return;
	XS_LOG(st->s, IMGW_LOG_WARNING, "s2s %s stream %s%s%s (%s): stream error %s%s%s",
	    st->dir == XS_IN ? "inbound" : "outbound",
	    st->remote[0] ? st->remote : "?", st->dir == XS_IN ? " -> " : " <- ",
	    st->local[0] ? st->local : "?", st->addr, cond, text ? ": " : "",
	    text ? text : "");
	XS_COUNT(st->s, "s2s-stream-errors");
	st->failed = 1;
	if (st->phase == XS_TLS || st->phase == XS_CONNECTING) {
		xs_stream_kill(st, cond);
		return;
	}
	if (!st->header_sent)
		xs_stream_header(st, st->local, st->remote[0] ? st->remote : NULL,
		    st->dir == XS_IN ? st->id : NULL);
	xs_stream_printf(st, "<stream:error><%s xmlns='" XS_NS_STREAMS "'/>", cond);
	if (text != NULL) {
		char esc[600];
		size_t i, o = 0;

		/* text is ours (ASCII, no markup) but escape anyway */
		for (i = 0; text[i] && o + 7 < sizeof(esc); i++) {
			if (text[i] == '<') { memcpy(esc + o, "&lt;", 4); o += 4; }
			else if (text[i] == '&') { memcpy(esc + o, "&amp;", 5); o += 5; }
			else esc[o++] = text[i];
		}
		esc[o] = '\0';
		xs_stream_printf(st, "<text xmlns='" XS_NS_STREAMS "'>%s</text>", esc);
	}
	xs_stream_printf(st, "</stream:error></stream:stream>");
	if (st->phase == XS_DEAD)
		return;
	st->phase = XS_CLOSING;
	(void)xs_stream_flush(st);
	if (st->phase != XS_DEAD)
		xs_stream_timeout(st, XS_CLOSE_WAIT_MS);
	if (st->dir == XS_OUT)
		xs_out_lost(st, cond);
}

/* Close the stream politely: </stream:stream>, then wait for the peer's. */
void
xs_stream_close(struct xs_stream *st, const char *why)
{
	if (st->phase == XS_DEAD || st->phase == XS_CLOSING)
		return;
	if (st->phase != XS_OPEN || !st->header_sent) {
		xs_stream_kill(st, why);
		return;
	}
	XS_LOG(st->s, IMGW_LOG_INFO, "s2s closing %s stream %s %s %s: %s",
	    st->dir == XS_IN ? "inbound" : "outbound", st->local,
	    st->dir == XS_IN ? "<-" : "->", st->remote[0] ? st->remote : "?", why);
	xs_stream_printf(st, "</stream:stream>");
	if (st->phase == XS_DEAD)
		return;
	st->phase = XS_CLOSING;
	xs_stream_timeout(st, XS_CLOSE_WAIT_MS);
	if (st->dir == XS_OUT)
		xs_out_lost(st, why);
}

/* Close the socket now; memory is freed by the reaper. */
void
xs_stream_kill(struct xs_stream *st, const char *why)
{
	struct xs *s = st->s;
	struct xs_stream **pp;
	enum xs_phase was = st->phase;

	if (was == XS_DEAD)
		return;
	st->phase = XS_DEAD;
	if (st->timer != NULL) {
		s->x->host->timer_del(st->timer);
		st->timer = NULL;
	}
	if (st->watch != NULL) {
		s->x->host->watch_del(st->watch);
		st->watch = NULL;
	}
	if (st->ssl != NULL && was == XS_OPEN)
		(void)SSL_shutdown(st->ssl);	/* best effort close_notify */
	if (st->fd >= 0) {
		close(st->fd);
		st->fd = -1;
	}
	XS_LOG(s, was == XS_CLOSING ? IMGW_LOG_DEBUG : IMGW_LOG_INFO,
	    "s2s %s stream %s %s %s (%s) closed: %s",
	    st->dir == XS_IN ? "inbound" : "outbound", st->local[0] ? st->local : "?",
	    st->dir == XS_IN ? "<-" : "->", st->remote[0] ? st->remote : "?", st->addr,
	    why ? why : "");
	if (st->dir == XS_IN) {
		for (pp = &s->in; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == st) {
				*pp = st->next;
				s->nin--;
				break;
			}
		}
	} else {
		xs_out_lost(st, why);
	}
	st->next = s->dead;
	s->dead = st;
	xs_reap_soon(s);
}

/* Free a stream that was killed (or never watched). */
void
xs_stream_free(struct xs_stream *st)
{
	if (st->fd >= 0)
		close(st->fd);
	if (st->ssl != NULL)
		SSL_free(st->ssl);
	if (st->xp != NULL)
		XML_ParserFree(st->xp);
	if (st->top != NULL)
		xmpp_stanza_release(st->top);
	free(st->out.p);
	free(st);
}

/* ---- input: expat callbacks ------------------------------------------------- */

static int
xs_stream_budget(struct xs_stream *st, size_t n)
{
	st->top_bytes += n;
	if (st->top_bytes > st->s->x->max_stanza) {
		XS_COUNT(st->s, "stanzas-too-large");
		xs_stream_error(st, "policy-violation", "stanza too large");
		XML_StopParser(st->xp, XML_FALSE);
		return -1;
	}
	return 0;
}

static void XMLCALL
xs_xml_start_cb(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xs_stream *st = ud;
	const char *local, *ns, *alocal, *ans;
	size_t nslen, anslen, i;
	char nsbuf[512], an[300];
	const char *flat[2 * 16 + 1];
	int nflat = 0;
	xmpp_stanza_t *el;

	if (st->failed || st->phase == XS_DEAD)
		return;
	st->mark = (uint64_t)XML_GetCurrentByteIndex(st->xp);
	local = xs_name(name, &ns, &nslen);
	if (st->depth == 0) {
		if (ns == NULL || nslen != strlen(XS_NS_STREAM) ||
		    strncmp(ns, XS_NS_STREAM, nslen) != 0 || strcmp(local, "stream") != 0) {
			xs_stream_error(st, "invalid-namespace",
			    "expected <stream:stream xmlns:stream='" XS_NS_STREAM "'>");
			XML_StopParser(st->xp, XML_FALSE);
			return;
		}
		for (i = 0; attrs[i] != NULL && attrs[i + 1] != NULL && nflat < 32; i += 2) {
			alocal = xs_name(attrs[i], &ans, &anslen);
			flat[nflat++] = ans != NULL && anslen == strlen(XS_NS_XML) &&
			    strncmp(ans, XS_NS_XML, anslen) == 0 && strcmp(alocal, "lang") == 0
			    ? "xml:lang" : alocal;
			flat[nflat++] = attrs[i + 1];
		}
		flat[nflat] = NULL;
		st->depth = 1;
		st->header_got = 1;
		if (st->dir == XS_IN)
			xs_in_header(st, flat);
		else
			xs_out_header(st, flat);
		if (st->failed || st->restart || st->tls_start)
			XML_StopParser(st->xp, XML_FALSE);
		return;
	}
	if (st->depth > XS_DEPTH_MAX) {
		xs_stream_error(st, "policy-violation", "elements nested too deep");
		XML_StopParser(st->xp, XML_FALSE);
		return;
	}
	if (st->depth == 1)
		st->top_bytes = 0;
	if (xs_stream_budget(st, 2 * strlen(local) + 5 + nslen) == -1)
		return;
	if ((el = xmpp_stanza_new(st->s->x->ctx)) == NULL)
		goto nomem;
	xmpp_stanza_set_name(el, local);
	if (ns != NULL) {
		const char *pns = st->cur ? xmpp_stanza_get_ns(st->cur) : NULL;

		if (nslen >= sizeof(nsbuf)) {
			xmpp_stanza_release(el);
			xs_stream_error(st, "policy-violation", "namespace name too long");
			XML_StopParser(st->xp, XML_FALSE);
			return;
		}
		memcpy(nsbuf, ns, nslen);
		nsbuf[nslen] = '\0';
		if (pns == NULL || strcmp(pns, nsbuf) != 0 || st->cur == NULL)
			xmpp_stanza_set_ns(el, nsbuf);
	}
	for (i = 0; attrs[i] != NULL && attrs[i + 1] != NULL; i += 2) {
		alocal = xs_name(attrs[i], &ans, &anslen);
		if (xs_stream_budget(st, strlen(attrs[i]) + strlen(attrs[i + 1]) + 4) == -1) {
			xmpp_stanza_release(el);
			return;
		}
		if (ans != NULL) {
			/* xml:lang keeps its prefix; other namespaced attributes
			 * are not ours to read and are dropped */
			if (anslen != strlen(XS_NS_XML) || strncmp(ans, XS_NS_XML, anslen) != 0)
				continue;
			snprintf(an, sizeof(an), "xml:%s", alocal);
			alocal = an;
		}
		xmpp_stanza_set_attribute(el, alocal, attrs[i + 1]);
	}
	if (st->cur == NULL) {
		st->top = st->cur = el;
	} else {
		xmpp_stanza_add_child(st->cur, el);
		xmpp_stanza_release(el);	/* the parent holds it */
		st->cur = el;
	}
	st->path[st->depth] = el;	/* borrowed from top */
	st->depth++;
	return;
nomem:
	xs_stream_error(st, "resource-constraint", "out of memory");
	XML_StopParser(st->xp, XML_FALSE);
}

static void XMLCALL
xs_xml_end_cb(void *ud, const XML_Char *name)
{
	struct xs_stream *st = ud;
	xmpp_stanza_t *top;

	(void)name;
	if (st->failed || st->phase == XS_DEAD)
		return;
	st->mark = (uint64_t)XML_GetCurrentByteIndex(st->xp);
	if (st->depth == 1) {
		/* </stream:stream> */
		st->depth = 0;
		if (st->phase == XS_CLOSING) {
			xs_stream_kill(st, "closed by both sides");
		} else {
			xs_stream_close(st, "the peer closed the stream");
			if (st->phase != XS_DEAD)
				xs_stream_kill(st, "the peer closed the stream");
		}
		XML_StopParser(st->xp, XML_FALSE);
		return;
	}
	st->depth--;
	if (st->depth > 1) {
		st->cur = st->path[st->depth - 1];
		return;
	}
	top = st->top;
	st->top = st->cur = NULL;
	if (st->phase == XS_CLOSING) {
		xmpp_stanza_release(top);
		return;
	}
	if (st->dir == XS_IN)
		xs_in_element(st, top);
	else
		xs_out_element(st, top);
	xmpp_stanza_release(top);
	if (st->failed || st->restart || st->tls_start || st->phase == XS_DEAD)
		XML_StopParser(st->xp, XML_FALSE);
}

static void XMLCALL
xs_xml_text_cb(void *ud, const XML_Char *s, int len)
{
	struct xs_stream *st = ud;
	xmpp_stanza_t *t;

	if (st->failed || st->phase == XS_DEAD)
		return;
	st->mark = (uint64_t)XML_GetCurrentByteIndex(st->xp);
	if (st->cur == NULL || len <= 0)
		return;		/* whitespace between stanzas (keep-alives) */
	if (xs_stream_budget(st, (size_t)len + 64) == -1)
		return;
	if ((t = xmpp_stanza_new(st->s->x->ctx)) == NULL ||
	    xmpp_stanza_set_text_with_size(t, s, (size_t)len) != XMPP_EOK) {
		if (t != NULL)
			xmpp_stanza_release(t);
		xs_stream_error(st, "resource-constraint", "out of memory");
		XML_StopParser(st->xp, XML_FALSE);
		return;
	}
	xmpp_stanza_add_child(st->cur, t);
	xmpp_stanza_release(t);
}

static void
xs_xml_restricted(struct xs_stream *st, const char *what)
{
	if (st->failed || st->phase == XS_DEAD)
		return;
	xs_stream_error(st, "restricted-xml", what);
	XML_StopParser(st->xp, XML_FALSE);
}

static void XMLCALL
xs_xml_doctype_cb(void *ud, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xs_xml_restricted(ud, "no DTD on an XMPP stream");
}

static void XMLCALL
xs_xml_comment_cb(void *ud, const XML_Char *data)
{
	(void)data;
	xs_xml_restricted(ud, "no comments on an XMPP stream");
}

static void XMLCALL
xs_xml_pi_cb(void *ud, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	xs_xml_restricted(ud, "no processing instructions on an XMPP stream");
}

static void XMLCALL
xs_xml_entity_cb(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
    int value_len, const XML_Char *base, const XML_Char *sysid,
    const XML_Char *pubid, const XML_Char *notation)
{
	(void)name; (void)is_param; (void)value; (void)value_len; (void)base;
	(void)sysid; (void)pubid; (void)notation;
	xs_xml_restricted(ud, "no entity declarations on an XMPP stream");
}

static int
xs_stream_parser_new(struct xs_stream *st)
{
	if ((st->xp = XML_ParserCreateNS("UTF-8", XS_NSSEP)) == NULL)
		return -1;
	xs_stream_parser_reset(st);
	return 0;
}

/* A fresh parser state for a new stream on the same socket. */
static void
xs_stream_parser_reset(struct xs_stream *st)
{
	if (st->top != NULL) {
		xmpp_stanza_release(st->top);
		st->top = st->cur = NULL;
	}
	XML_ParserReset(st->xp, "UTF-8");
	XML_SetUserData(st->xp, st);
	XML_SetElementHandler(st->xp, xs_xml_start_cb, xs_xml_end_cb);
	XML_SetCharacterDataHandler(st->xp, xs_xml_text_cb);
	XML_SetStartDoctypeDeclHandler(st->xp, xs_xml_doctype_cb);
	XML_SetCommentHandler(st->xp, xs_xml_comment_cb);
	XML_SetProcessingInstructionHandler(st->xp, xs_xml_pi_cb);
	XML_SetEntityDeclHandler(st->xp, xs_xml_entity_cb);
	st->depth = 0;
	st->header_got = 0;
	st->fed = st->mark = 0;
	st->restart = 0;
}

/* ---- input: bytes ----------------------------------------------------------- */

/* Feed bytes to the parser; act on restarts.  -1 when the stream stopped
 * taking input (dead, failed, or TLS starts). */
static int
xs_stream_feed(struct xs_stream *st, const char *buf, size_t n)
{
	enum XML_Status rc;

	st->fed += n;
	rc = XML_Parse(st->xp, buf, (int)n, 0);
	if (st->phase == XS_DEAD)
		return -1;
	/* XML_StopParser (ours, at a restart or an error) reads as ABORTED */
	if (rc == XML_STATUS_ERROR && !st->failed &&
	    XML_GetErrorCode(st->xp) != XML_ERROR_ABORTED) {
		char why[160];

		snprintf(why, sizeof(why), "%s at line %lu",
		    XML_ErrorString(XML_GetErrorCode(st->xp)),
		    (unsigned long)XML_GetCurrentLineNumber(st->xp));
		xs_stream_error(st, "not-well-formed", why);
		return -1;
	}
	if (st->failed)
		return -1;
	if (st->tls_start) {
		st->tls_start = 0;
		xs_stream_parser_reset(st);
		if (xs_stream_tls(st, st->dir == XS_IN) == -1)
			return -1;
		return -1;	/* the rest of this read is not ours to parse */
	}
	if (st->restart) {
		xs_stream_parser_reset(st);
		return 0;
	}
	/* one token bigger than a stanza may be: expat would buffer it all */
	if (st->fed - st->mark > st->s->x->max_stanza + 4096) {
		XS_COUNT(st->s, "stanzas-too-large");
		xs_stream_error(st, "policy-violation", "stanza too large");
		return -1;
	}
	return 0;
}

/* Drive the TLS handshake.  -1 when the stream died. */
static int
xs_stream_tls_step(struct xs_stream *st)
{
	int rc, e;
	char err[200];

	ERR_clear_error();
	rc = SSL_do_handshake(st->ssl);
	st->tls_want_write = 0;
	if (rc == 1) {
		st->tls_done = 1;
		st->phase = XS_OPEN;
		if (st->dir == XS_IN)
			xs_in_tls_done(st);
		else
			xs_out_tls_done(st);
		if (st->phase == XS_DEAD)
			return -1;
		return xs_stream_flush(st);
	}
	e = SSL_get_error(st->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		st->tls_want_write = 1;
		xs_stream_rewatch(st);
		return 0;
	}
	ERR_error_string_n(ERR_peek_last_error(), err, sizeof(err));
	ERR_clear_error();
	XS_LOG(st->s, IMGW_LOG_WARNING, "s2s TLS handshake with %s (%s) failed: %s",
	    st->remote[0] ? st->remote : "?", st->addr, err);
	XS_COUNT(st->s, "s2s-tls-failures");
	xs_stream_kill(st, "TLS handshake failed");
	return -1;
}

/* Switch the socket to TLS (after <proceed/> was sent or received). */
int
xs_stream_tls(struct xs_stream *st, int server)
{
	/* what we said before the switch (e.g. <proceed/>) goes out in clear */
	if (xs_stream_flush(st) == -1)
		return -1;
	if (st->out.off < st->out.len) {
		/* cannot happen on a fresh stream; do not mix clear and TLS */
		xs_stream_kill(st, "cannot flush before TLS");
		return -1;
	}
	if ((st->ssl = xs_tls_new(st->s, st->fd, server,
	    server ? NULL : st->remote)) == NULL) {
		xs_stream_kill(st, "cannot set up TLS");
		return -1;
	}
	st->phase = XS_TLS;
	st->header_sent = 0;
	return xs_stream_tls_step(st);
}

static void
xs_stream_read(struct xs_stream *st)
{
	char buf[XS_READ_CHUNK];
	int i, e;
	ssize_t n;

	for (i = 0; i < XS_READS_PER_EVENT && st->phase != XS_DEAD; i++) {
		if (st->phase == XS_TLS) {
			if (xs_stream_tls_step(st) == -1 || st->phase == XS_TLS)
				return;
			continue;
		}
		if (st->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(st->ssl, buf, sizeof(buf));
			if (n <= 0) {
				e = SSL_get_error(st->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					st->tls_want_write = 1;
					xs_stream_rewatch(st);
					return;
				}
				xs_stream_kill(st, e == SSL_ERROR_ZERO_RETURN
				    ? "the peer closed TLS" : "TLS read failed");
				return;
			}
		} else {
			n = read(st->fd, buf, sizeof(buf));
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				xs_stream_kill(st, strerror(errno));
				return;
			}
			if (n == 0) {
				xs_stream_kill(st, "the peer closed the connection");
				return;
			}
		}
		if (st->failed)
			continue;	/* after a stream error: drain, ignore */
		if (xs_stream_feed(st, buf, (size_t)n) == -1)
			return;
	}
}

/* Socket readiness for a stream of either direction. */
void
xs_stream_event_cb(int fd, int what, void *arg)
{
	struct xs_stream *st = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)fd;
	if (st->phase == XS_CONNECTING) {
		if (!(what & IMGW_WATCH_WRITE))
			return;
		if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			xs_stream_kill(st, strerror(err));
			return;
		}
		st->phase = XS_OPEN;
		xs_out_connected(st);
		if (st->phase != XS_DEAD)
			xs_stream_rewatch(st);
		return;
	}
	if (st->phase == XS_TLS) {
		(void)xs_stream_tls_step(st);
		if (st->phase != XS_OPEN)
			return;
	}
	if ((what & IMGW_WATCH_WRITE) && st->phase != XS_DEAD) {
		st->tls_want_write = 0;
		if (xs_stream_flush(st) == -1)
			return;
	}
	if (st->phase != XS_DEAD)
		xs_stream_read(st);
	if (st->phase != XS_DEAD)
		xs_stream_rewatch(st);
}

/* A new stream on a connected (in) or connecting (out) socket; the caller
 * links it to its owner and calls xs_stream_watch.  NULL on failure (the
 * socket is then still the caller's). */
struct xs_stream *
xs_stream_new(struct xs *s, enum xs_dir dir, int fd, const char *addr)
{
	struct xs_stream *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->s = s;
	st->dir = dir;
	st->fd = fd;
	st->phase = dir == XS_IN ? XS_OPEN : XS_CONNECTING;
	snprintf(st->addr, sizeof(st->addr), "%s", addr);
	if (xs_stream_parser_new(st) == -1) {
		st->fd = -1;
		free(st);
		return NULL;
	}
	return st;
}

int
xs_stream_watch(struct xs_stream *st)
{
	st->want = IMGW_WATCH_READ | (st->phase == XS_CONNECTING ? IMGW_WATCH_WRITE : 0);
	st->watch = st->s->x->host->watch_add(st->s->x->inst, st->fd, st->want,
	    xs_stream_event_cb, st);
	if (st->watch == NULL)
		return -1;
	xs_stream_timeout(st, XS_STREAM_TIMEOUT_MS);
	return 0;
}
