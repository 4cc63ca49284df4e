/*
 * imgw connector SDK — canonical addresses.
 *
 * The core's address form is "user@domain[/resource]":
 *   - user: 1..1023 bytes of UTF-8, ASCII letters lower-cased; characters
 *     that XMPP local parts forbid are escaped as XEP-0106 says (\20 \22
 *     \26 \27 \2f \3a \3c \3e \40, \5c for a backslash that would start
 *     such a sequence).  The core escapes space " & ' : < > itself when it
 *     canonicalizes; '@' and '/' cannot reach it raw (they delimit the
 *     parts) and a backslash is taken as the start of an escape, so that
 *     canonical addresses pass through unchanged.  A connector whose users
 *     may hold a literal '@', '/' or "\XX" escape writes \40, \2f or \5c
 *     itself.
 *   - domain: 1..1023 bytes, lower case, no trailing dot;
 *   - resource: optional, 1..1023 bytes, kept as given.
 * The core canonicalizes from/to of every emitted event and refuses those
 * that do not parse (jid-malformed).  These inline helpers only look at a
 * string; they allocate nothing.
 */
#ifndef IMGW_ADDRESS_H
#define IMGW_ADDRESS_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pointers into the string given to imgw_addr_split; lengths in bytes. */
struct imgw_addr_parts {
	const char *user;
	size_t user_len;
	const char *domain;
	size_t domain_len;
	const char *resource;	/* NULL when there is none */
	size_t resource_len;
};

/*
 * The XEP-0106 escape the core writes for byte `c` of a user part when it
 * canonicalizes (space " & ' : < >), or NULL when `c` stays as it is.
 * A connector that keys on user parts (e.g. a bind table) escapes the same
 * way so that its keys equal the core's addresses.
 */
static inline const char *
imgw_addr_escape(unsigned char c)
{
	switch (c) {
	case ' ': return "\\20";
	case '"': return "\\22";
	case '&': return "\\26";
	case '\'': return "\\27";
	case ':': return "\\3a";
	case '<': return "\\3c";
	case '>': return "\\3e";
	default: return NULL;
	}
}

/* Split a canonical address.  Returns 0, or -1 when it has no '@' or an
 * empty part. */
static inline int
imgw_addr_split(const char *addr, struct imgw_addr_parts *p)
{
	const char *at, *slash;

	if (addr == NULL)
		return -1;
	slash = strchr(addr, '/');
	at = memchr(addr, '@', slash ? (size_t)(slash - addr) : strlen(addr));
	if (at == NULL || at == addr)
		return -1;
	p->user = addr;
	p->user_len = (size_t)(at - addr);
	p->domain = at + 1;
	p->domain_len = slash ? (size_t)(slash - at - 1) : strlen(at + 1);
	if (p->domain_len == 0)
		return -1;
	p->resource = slash ? slash + 1 : NULL;
	p->resource_len = slash ? strlen(slash + 1) : 0;
	if (slash && p->resource_len == 0)
		return -1;
	return 0;
}

/* Length of the bare part (user@domain) of a canonical address. */
static inline size_t
imgw_addr_bare_len(const char *addr)
{
	const char *slash = strchr(addr, '/');

	return slash ? (size_t)(slash - addr) : strlen(addr);
}

/* Non-zero when two canonical addresses have the same bare part. */
static inline int
imgw_addr_bare_eq(const char *a, const char *b)
{
	size_t la = imgw_addr_bare_len(a), lb = imgw_addr_bare_len(b);

	return la == lb && memcmp(a, b, la) == 0;
}

#ifdef __cplusplus
}
#endif

#endif /* IMGW_ADDRESS_H */
