/*
 * Addresses: XEP-0106 escaping, and the mapping between JIDs and the
 * core's canonical addresses (see README, "Addresses").
 *
 *   XMPP user   alice@xmpp.example/desk   <->  alice@xmpp.example/desk
 *   other user  bob\40corp.example@GW/r   <->  bob@corp.example/r
 *
 * The core's canonical user part is already the XEP-0106 escaped form of a
 * local part (core/address.c), so an XMPP user's JID is its address.  A
 * user of another community is addressed on the XMPP side at the
 * component domain GW, its whole bare address escaped into the local part
 * (o'brien@corp.example is o\27brien\40corp.example@GW).
 */
#include <string.h>
#include <strings.h>

#include "xmpp.h"

/*
 * Server-to-server mode: imgw is the XMPP server of the other
 * communities' domains (local-domains), so their users' addresses are
 * JIDs as they are: bob@corp.example/r <-> bob@corp.example/r.  The
 * canonical user part is already an escaped local part, as for users of
 * the XMPP community.  `local` says which side's domains the JID must be
 * at: 1 one of local-domains, 0 none of them.  -1 otherwise.
 */
static int
xc_s2s_same(const struct xc *x, const char *jid, int local, char *out, size_t outlen,
    const char **why_r)
{
	struct imgw_addr_parts p;
	size_t n = strlen(jid);

	*why_r = "malformed JID";
	if (xc_jid_split(jid, &p) == -1)
		return -1;
	if (x->s2s_is_local(x, p.domain, p.domain_len) != local) {
		*why_r = local ? "not a domain this gateway serves (local-domains)"
		    : "a domain this gateway serves itself";
		return -1;
	}
	if (n >= outlen) {
		*why_r = "address too long";
		return -1;
	}
	memcpy(out, jid, n + 1);
	return 0;
}

/* The escape of c, or NULL when c stands for itself. */
static const char *
xc_escape_of(unsigned char c)
{
	switch (c) {
	case ' ': return "\\20";
	case '"': return "\\22";
	case '&': return "\\26";
	case '\'': return "\\27";
	case '/': return "\\2f";
	case ':': return "\\3a";
	case '<': return "\\3c";
	case '>': return "\\3e";
	case '@': return "\\40";
	case '\\': return "\\5c";
	default: return NULL;
	}
}

/* The character an escape sequence at s (which starts with a backslash
 * and has at least n bytes) stands for, or 0 when it is not one.  Only the
 * lower-case forms of XEP-0106's table are sequences. */
static char
xc_unescape_at(const char *s, size_t n)
{
	static const char *const seq[] = {
		"20", "22", "26", "27", "2f", "3a", "3c", "3e", "40", "5c",
	};
	static const char chr[] = " \"&'/:<>@\\";
	size_t i;

	if (n < 3 || s[0] != '\\')
		return 0;
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		if (s[1] == seq[i][0] && s[2] == seq[i][1])
			return chr[i];
	return 0;
}

/*
 * XEP-0106 escaping of in[0..n): the forbidden characters become \hh, and
 * a backslash only when it would otherwise start an escape sequence.
 * Returns the length written to out (NUL terminated), or -1 when it does
 * not fit.
 */
int
xc_escape(const char *in, size_t n, char *out, size_t outlen)
{
	size_t i, pos = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		const char *esc = xc_escape_of(c);

		if (c == '\\' && xc_unescape_at(in + i, n - i) == 0)
			esc = NULL;
		if (esc != NULL) {
			if (pos + 3 >= outlen)
				return -1;
			memcpy(out + pos, esc, 3);
			pos += 3;
		} else {
			if (pos + 1 >= outlen)
				return -1;
			out[pos++] = (char)c;
		}
	}
	if (pos >= outlen)
		return -1;
	out[pos] = '\0';
	return (int)pos;
}

/* The reverse of xc_escape; -1 when out is too small. */
int
xc_unescape(const char *in, size_t n, char *out, size_t outlen)
{
	size_t i = 0, pos = 0;
	char c;

	while (i < n) {
		if (pos + 1 >= outlen)
			return -1;
		if ((c = xc_unescape_at(in + i, n - i)) != 0) {
			out[pos++] = c;
			i += 3;
		} else {
			out[pos++] = in[i++];
		}
	}
	if (pos >= outlen)
		return -1;
	out[pos] = '\0';
	return (int)pos;
}

/* Split a JID as RFC 7622 reads it: resource after the first '/', local
 * part before the first '@' ahead of it.  user is NULL for a domain JID.
 * -1 when a part that is there is empty or longer than 1023 bytes. */
int
xc_jid_split(const char *jid, struct imgw_addr_parts *p)
{
	const char *slash, *at;
	size_t n;

	if (jid == NULL || *jid == '\0')
		return -1;
	n = strlen(jid);
	slash = strchr(jid, '/');
	at = memchr(jid, '@', slash ? (size_t)(slash - jid) : n);
	p->user = at ? jid : NULL;
	p->user_len = at ? (size_t)(at - jid) : 0;
	p->domain = at ? at + 1 : jid;
	p->domain_len = (slash ? (size_t)(slash - jid) : n) - (size_t)(p->domain - jid);
	p->resource = slash ? slash + 1 : NULL;
	p->resource_len = slash ? n - (size_t)(slash - jid) - 1 : 0;
	if ((at && p->user_len == 0) || p->domain_len == 0 ||
	    (slash && p->resource_len == 0))
		return -1;
	if (p->user_len > XC_JID_PART_MAX || p->domain_len > XC_JID_PART_MAX ||
	    p->resource_len > XC_JID_PART_MAX)
		return -1;
	return 0;
}

/* Non-zero when the domain part of jid is `domain` (ASCII case ignored). */
int
xc_jid_domain_is(const char *jid, const char *domain)
{
	struct imgw_addr_parts p;
	size_t n;

	if (xc_jid_split(jid, &p) == -1)
		return 0;
	/* as the core compares domains: any case, the root label's dot
	 * ignored ("gw.example." is gw.example; found by fuzzing) */
	n = p.domain_len;
	if (n > 0 && p.domain[n - 1] == '.')
		n--;
	return n == strlen(domain) && strncasecmp(p.domain, domain, n) == 0;
}

static int
xc_put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (*pos + n >= outlen)
		return -1;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

/*
 * The JID at the component domain that stands for a user of another
 * community: bob@corp.example/r -> bob\40corp.example@GW/r.  The canonical
 * user part is already an escaped local part (o'brien is o\27brien), so it
 * is kept as it is; "\40" and the escaped domain follow.  This is what
 * escaping the unescaped address "o'brien@corp.example" as a whole gives,
 * without escaping anything twice.  A domain-only address becomes its
 * escaped domain.  -1 when the local part would be longer than a JID
 * allows.
 */
int
xc_addr_to_gwjid(const struct xc *x, const char *addr, char *out, size_t outlen)
{
	char dom[XC_JID_PART_MAX + 1];
	struct imgw_addr_parts p;
	size_t pos = 0;
	const char *why;
	int n;

	if (x->s2s != NULL)
		return xc_s2s_same(x, addr, 1, out, outlen, &why);
	if (xc_jid_split(addr, &p) == -1)
		return -1;
	if ((n = xc_escape(p.domain, p.domain_len, dom, sizeof(dom))) < 0)
		return -1;
	if (p.user_len + (p.user ? 3 : 0) + (size_t)n > XC_JID_PART_MAX)
		return -1;
	if ((p.user != NULL && (xc_put(out, outlen, &pos, p.user, p.user_len) == -1 ||
	    xc_put(out, outlen, &pos, "\\40", 3) == -1)) ||
	    xc_put(out, outlen, &pos, dom, (size_t)n) == -1 ||
	    xc_put(out, outlen, &pos, "@", 1) == -1 ||
	    xc_put(out, outlen, &pos, x->component, strlen(x->component)) == -1)
		return -1;
	if (p.resource != NULL && (xc_put(out, outlen, &pos, "/", 1) == -1 ||
	    xc_put(out, outlen, &pos, p.resource, p.resource_len) == -1))
		return -1;
	return 0;
}

/* The last "\40" in s[0..n), or NULL. */
static const char *
xc_last_at(const char *s, size_t n)
{
	const char *p;

	for (p = s + n; p - s >= 3; p--)
		if (p[-3] == '\\' && p[-2] == '4' && p[-1] == '0')
			return p - 3;
	return NULL;
}

/*
 * The core address a JID at the component domain stands for:
 * bob\40corp.example@GW/r -> bob@corp.example/r.  The local part splits at
 * its last "\40" (a domain holds none): the user part stays as it is
 * (escaped, like the core's), the domain is unescaped.  -1 with a reason
 * when the JID is not one of ours or has no "\40".  The core
 * canonicalizes and checks what comes out.
 */
int
xc_gwjid_to_addr(const struct xc *x, const char *jid, char *out, size_t outlen,
    const char **why_r)
{
	char dom[XC_JID_PART_MAX + 1];
	struct imgw_addr_parts p;
	const char *at;
	size_t pos = 0;
	int n;

	if (x->s2s != NULL)
		return xc_s2s_same(x, jid, 1, out, outlen, why_r);
	*why_r = "malformed JID";
	if (xc_jid_split(jid, &p) == -1)
		return -1;
	if (p.domain_len != strlen(x->component) ||
	    strncasecmp(p.domain, x->component, p.domain_len) != 0) {
		*why_r = "not an address at the gateway's domain";
		return -1;
	}
	if (p.user == NULL) {
		*why_r = "the gateway's domain itself";
		return -1;
	}
	at = xc_last_at(p.user, p.user_len);
	if (at == NULL || at == p.user || at + 3 == p.user + p.user_len) {
		*why_r = "no such user: the local part must be an escaped address, "
		    "e.g. bob\\40corp.example";
		return -1;
	}
	n = xc_unescape(at + 3, p.user_len - (size_t)(at + 3 - p.user), dom, sizeof(dom));
	if (n < 0 || memchr(dom, '/', (size_t)n) != NULL || memchr(dom, '@', (size_t)n)) {
		*why_r = "malformed domain in the local part";
		return -1;
	}
	if (xc_put(out, outlen, &pos, p.user, (size_t)(at - p.user)) == -1 ||
	    xc_put(out, outlen, &pos, "@", 1) == -1 ||
	    xc_put(out, outlen, &pos, dom, (size_t)n) == -1 ||
	    (p.resource != NULL && (xc_put(out, outlen, &pos, "/", 1) == -1 ||
	     xc_put(out, outlen, &pos, p.resource, p.resource_len) == -1))) {
		*why_r = "address too long";
		return -1;
	}
	return 0;
}

/*
 * The JID of a user of this community (an event's `to`): the canonical
 * address itself.  -1 when it names the component domain, which has no
 * users of its own.
 */
int
xc_addr_to_jid(const struct xc *x, const char *addr, char *out, size_t outlen,
    const char **why_r)
{
	struct imgw_addr_parts p;
	size_t n = strlen(addr);

	if (x->s2s != NULL)
		return xc_s2s_same(x, addr, 0, out, outlen, why_r);
	*why_r = "malformed address";
	if (xc_jid_split(addr, &p) == -1)
		return -1;
	if (p.domain_len == strlen(x->component) &&
	    strncasecmp(p.domain, x->component, p.domain_len) == 0) {
		*why_r = "the gateway's own domain has no users";
		return -1;
	}
	if (n >= outlen) {
		*why_r = "address too long";
		return -1;
	}
	memcpy(out, addr, n + 1);
	return 0;
}
