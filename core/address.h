/* Canonicalization of addresses (see sdk/include/imgw/address.h). */
#ifndef IMGW_CORE_ADDRESS_H
#define IMGW_CORE_ADDRESS_H

#include <stddef.h>

#define ADDR_PART_MAX	1023

/*
 * Write the canonical form of `in` to `out` (capacity `outlen`, NUL
 * terminated).  Accepts "user@domain[/resource]" and "domain[/resource]".
 * The user part is lower-cased (ASCII) and the characters XMPP forbids in
 * it are escaped (XEP-0106); the domain is lower-cased without trailing
 * dot.  Returns the length written, or -1 with a static reason in *why_r.
 */
int addr_canon(const char *in, char *out, size_t outlen, const char **why_r);

/* The domain part of a canonical address, copied into `out`; -1 when it
 * does not fit. */
int addr_domain(const char *addr, char *out, size_t outlen);

/* Non-zero when `s` (length n) is valid UTF-8 without NUL. */
int addr_utf8_valid(const char *s, size_t n);

#endif
