/*
 * sip:, sips:, im: and pres: URIs <-> the core's canonical addresses,
 * following RFC 7247 section 6:
 *
 *  - the user part is percent-decoded into UTF-8 (section 6.1/6.2: SIP
 *    escapes octets, XMPP carries UTF-8) exactly once: libosip2's URI
 *    parser decodes sip:/sips: user parts and parameters itself (and
 *    drops a malformed escape), we decode im:/pres: ones; '@', '/' and '\' have no raw
 *    place in a canonical user and are written \40, \2f, \5c (XEP-0106,
 *    as imgw/address.h asks); the core escapes the other characters XMPP
 *    forbids;
 *  - the host is the domain (the core folds case; IDNs are expected in
 *    A-label form on the SIP side and passed as they are);
 *  - the GRUU parameter "gr" (RFC 5627) is the resource, both ways (RFC
 *    7247 section 6.3);
 *  - the other way, the canonical user is XEP-0106-unescaped and every
 *    octet outside SIP's unreserved/user-unreserved set is percent-encoded.
 *
 * Any other URI parameter or header is dropped.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "sipstack-internal.h"

/*
 * Append s[0..n) to buf at *off, percent-decoding it when `decode` is set
 * (osip_uri_parse already decodes the user part and parameters of sip:
 * and sips: URIs, not the rest of im:/pres:), escaping what a canonical
 * user may not hold raw when `user` is set.  -1 on a bad escape, a
 * control character or no room.
 */
static int
sip_addr_decode(const char *s, size_t n, int decode, int user, char *buf,
    size_t len, size_t *off)
{
	size_t i;
	int c, h, l;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%' && decode) {
			if (i + 2 >= n)
				return -1;
			h = OPENSSL_hexchar2int((unsigned char)s[i + 1]);
			l = OPENSSL_hexchar2int((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (user && (c == '@' || c == '/' || c == '\\')) {
			if (*off + 4 >= len)
				return -1;
			memcpy(buf + *off, c == '@' ? "\\40" : c == '/' ? "\\2f" : "\\5c", 3);
			*off += 3;
			continue;
		}
		if (*off + 1 >= len)
			return -1;
		buf[(*off)++] = (char)c;
	}
	buf[*off] = '\0';
	return 0;
}

static int
sip_addr_scheme(const char *scheme)
{
	if (scheme == NULL)
		return -1;
	if (strcasecmp(scheme, "sip") == 0 || strcasecmp(scheme, "sips") == 0)
		return 0;
	if (strcasecmp(scheme, "im") == 0 || strcasecmp(scheme, "pres") == 0)
		return 1;
	return -1;
}

/* For im:/pres: (RFC 3860, 3859) osip keeps "user@domain[;..][?..]" in
 * uri->string. */
static int
sip_addr_other(const osip_uri_t *uri, const char **user, size_t *ulen,
    const char **dom, size_t *dlen)
{
	const char *s = uri->string, *at, *end;

	if (s == NULL || (at = strchr(s, '@')) == NULL || at == s)
		return -1;
	end = at + 1 + strcspn(at + 1, ";?>");
	*user = s;
	*ulen = (size_t)(at - s);
	*dom = at + 1;
	*dlen = (size_t)(end - at - 1);
	return *dlen > 0 ? 0 : -1;
}

int
sip_addr_from_uri(const osip_uri_t *uri, char *buf, size_t len,
    const char **why_r)
{
	osip_uri_param_t *gr = NULL;
	const char *user, *dom;
	size_t ulen, dlen, off = 0, i;
	int kind;

	if (uri == NULL || (kind = sip_addr_scheme(uri->scheme)) < 0) {
		*why_r = "not a sip:, sips:, im: or pres: URI";
		return -1;
	}
	if (kind == 0) {
		if (uri->username == NULL || uri->username[0] == '\0' ||
		    uri->host == NULL || uri->host[0] == '\0') {
			*why_r = "URI without user or host";
			return -1;
		}
		user = uri->username;
		ulen = strlen(user);
		dom = uri->host;
		dlen = strlen(dom);
	} else if (sip_addr_other(uri, &user, &ulen, &dom, &dlen) == -1) {
		*why_r = "URI without user or host";
		return -1;
	}
	if (sip_addr_decode(user, ulen, kind == 1, 1, buf, len, &off) == -1 ||
	    off + 1 >= len) {
		*why_r = "bad user part";
		return -1;
	}
	buf[off++] = '@';
	for (i = 0; i < dlen; i++) {
		if (off + 1 >= len || dom[i] == '/' || dom[i] == '@' ||
		    (unsigned char)dom[i] <= 0x20) {
			*why_r = "bad host part";
			return -1;
		}
		buf[off++] = (char)tolower((unsigned char)dom[i]);
	}
	buf[off] = '\0';
	if (kind == 0 && osip_uri_param_get_byname((osip_list_t *)&uri->url_params,
	    "gr", &gr) == 0 && gr != NULL && gr->gvalue != NULL && gr->gvalue[0]) {
		if (off + 2 >= len) {
			*why_r = "address too long";
			return -1;
		}
		buf[off++] = '/';
		if (sip_addr_decode(gr->gvalue, strlen(gr->gvalue), 0, 0, buf, len,
		    &off) == -1) {
			*why_r = "bad gr parameter";
			return -1;
		}
	}
	return 0;
}

int
sip_addr_domain(const osip_uri_t *uri, char *buf, size_t len)
{
	const char *user, *dom;
	size_t ulen, dlen, i;
	int kind;

	if (uri == NULL || (kind = sip_addr_scheme(uri->scheme)) < 0)
		return -1;
	if (kind == 0) {
		if (uri->host == NULL)
			return -1;
		dom = uri->host;
		dlen = strlen(dom);
	} else if (sip_addr_other(uri, &user, &ulen, &dom, &dlen) == -1) {
		return -1;
	}
	if (dlen == 0 || dlen >= len)
		return -1;
	for (i = 0; i < dlen; i++)
		buf[i] = (char)tolower((unsigned char)dom[i]);
	buf[dlen] = '\0';
	return 0;
}

/* XEP-0106 escape at s (which starts with '\'), or -1. */
static int
sip_addr_unescape106(const char *s)
{
	static const struct { const char *seq; char c; } tab[] = {
		{ "\\20", ' ' }, { "\\22", '"' }, { "\\26", '&' },
		{ "\\27", '\'' }, { "\\2f", '/' }, { "\\3a", ':' },
		{ "\\3c", '<' }, { "\\3e", '>' }, { "\\40", '@' },
		{ "\\5c", '\\' },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strncasecmp(s, tab[i].seq, 3) == 0)
			return (unsigned char)tab[i].c;
	return -1;
}

static int
sip_addr_put(char *buf, size_t len, size_t *off, int c, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	if (c < 0x80 && (isalnum(c) || strchr(keep, c) != NULL)) {
		if (*off + 1 >= len)
			return -1;
		buf[(*off)++] = (char)c;
		return 0;
	}
	if (*off + 3 >= len)
		return -1;
	buf[(*off)++] = '%';
	buf[(*off)++] = hex[(c >> 4) & 15];
	buf[(*off)++] = hex[c & 15];
	return 0;
}

int
sip_addr_to_uri(const char *addr, char *buf, size_t len)
{
	/* RFC 3261 25.1: unreserved and user-unreserved; ';' and '?' are
	 * allowed too but confuse too many parsers, so they are escaped */
	static const char user_keep[] = "-_.!~*'()&=+$,/";
	static const char param_keep[] = "-_.!~*'()[]/:&+$";
	struct imgw_addr_parts p;
	size_t off = 0, i;
	int c;

	if (imgw_addr_split(addr, &p) == -1 || len < 8)
		return -1;
	memcpy(buf, "sip:", 4);
	off = 4;
	for (i = 0; i < p.user_len; i++) {
		c = (unsigned char)p.user[i];
		if (c == '\\' && i + 2 < p.user_len &&
		    (c = sip_addr_unescape106(p.user + i)) >= 0)
			i += 2;
		else
			c = (unsigned char)p.user[i];
		if (sip_addr_put(buf, len, &off, c, user_keep) == -1)
			return -1;
	}
	if (off + p.domain_len + 2 >= len)
		return -1;
	buf[off++] = '@';
	memcpy(buf + off, p.domain, p.domain_len);
	off += p.domain_len;
	if (p.resource != NULL) {
		if (off + 4 >= len)
			return -1;
		memcpy(buf + off, ";gr=", 4);
		off += 4;
		for (i = 0; i < p.resource_len; i++)
			if (sip_addr_put(buf, len, &off,
			    (unsigned char)p.resource[i], param_keep) == -1)
				return -1;
	}
	buf[off] = '\0';
	return 0;
}
