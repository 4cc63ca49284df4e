/* Canonical "user@domain[/resource]" addresses. */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include <imgw/address.h>
#include <imgw/event.h>

#include "address.h"

int
addr_utf8_valid(const char *str, size_t n)
{
	return memchr(str, 0, n) == NULL && imgw_utf8_valid(str, n);
}

static int
addr_put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (*pos + n >= outlen)
		return -1;
	memcpy(out + *pos, s, n);
	*pos += n;
	return 0;
}

int
addr_canon(const char *in, char *out, size_t outlen, const char **why_r)
{
	const char *slash, *at, *dom, *p;
	size_t n = strlen(in), pos = 0, dlen, ulen = 0, start;
	const char *why = "malformed address";

	if (n == 0) {
		why = "empty address";
		goto fail;
	}
	if (!addr_utf8_valid(in, n)) {
		why = "address is not valid UTF-8";
		goto fail;
	}
	for (p = in; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			why = "control character in address";
			goto fail;
		}
	}
	slash = strchr(in, '/');
	at = memchr(in, '@', slash ? (size_t)(slash - in) : n);
	if (at != NULL) {
		ulen = (size_t)(at - in);
		if (ulen == 0) {
			why = "empty user part";
			goto fail;
		}
		for (p = in; p < at; p++) {
			unsigned char c = (unsigned char)*p;
			const char *esc = imgw_addr_escape(c);
			char lc = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a')
							 : (char)c;

			if (esc ? addr_put(out, outlen, &pos, esc, 3)
				: addr_put(out, outlen, &pos, &lc, 1))
				goto toolong;
		}
		if (pos > ADDR_PART_MAX) {
			why = "user part longer than 1023 bytes";
			goto fail;
		}
		if (addr_put(out, outlen, &pos, "@", 1))
			goto toolong;
		dom = at + 1;
	} else {
		dom = in;
	}
	dlen = slash ? (size_t)(slash - dom) : strlen(dom);
	if (dlen > 0 && dom[dlen - 1] == '.')
		dlen--;	/* the root label */
	if (dlen == 0) {
		why = "empty domain";
		goto fail;
	}
	if (dom[dlen - 1] == '.') {
		why = "empty label in domain";
		goto fail;
	}
	if (dlen > ADDR_PART_MAX) {
		why = "domain longer than 1023 bytes";
		goto fail;
	}
	if (dom[0] == '[') {
		/* an IP literal: [hex digits, ':' and '.'], lower case */
		if (dlen < 3 || dom[dlen - 1] != ']')
			goto badchar;
		for (p = dom + 1; p < dom + dlen - 1; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				goto badchar;
		for (p = dom; p < dom + dlen; p++) {
			char lc = (char)tolower((unsigned char)*p);

			if (addr_put(out, outlen, &pos, &lc, 1))
				goto toolong;
		}
		goto resource;
	}
	start = pos;
	for (p = dom; p < dom + dlen; p++) {
		unsigned char c = (unsigned char)*p;
		char lc = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a')
						 : (char)c;

		if (c == '.' && (pos == start || out[pos - 1] == '.')) {
			why = "empty label in domain";
			goto fail;
		}
		if (c < 0x80 && c != '.' && c != '-' && c != '_' &&
		    !(lc >= 'a' && lc <= 'z') && !(c >= '0' && c <= '9'))
			goto badchar;
		if (addr_put(out, outlen, &pos, &lc, 1))
			goto toolong;
	}
resource:
	if (slash != NULL) {
		size_t rlen = strlen(slash + 1);

		if (rlen == 0) {
			why = "empty resource";
			goto fail;
		}
		if (rlen > ADDR_PART_MAX) {
			why = "resource longer than 1023 bytes";
			goto fail;
		}
		if (addr_put(out, outlen, &pos, slash, rlen + 1))
			goto toolong;
	}
	out[pos] = '\0';
	return (int)pos;
badchar:
	why = "invalid character in domain";
	goto fail;
toolong:
	why = "address too long";
fail:
	if (why_r != NULL)
		*why_r = why;
	if (outlen > 0)
		out[0] = '\0';
	return -1;
}

int
addr_domain(const char *addr, char *out, size_t outlen)
{
	const char *slash = strchr(addr, '/');
	size_t n = slash ? (size_t)(slash - addr) : strlen(addr);
	const char *at = memchr(addr, '@', n);
	const char *d = at ? at + 1 : addr;

	n -= (size_t)(d - addr);
	if (n >= outlen)
		return -1;
	memcpy(out, d, n);
	out[n] = '\0';
	return 0;
}
