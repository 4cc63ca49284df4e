/* Unit tests of canonical addresses (core/address.c, sdk imgw/address.h)
 * and of the SDK's event name helpers (imgw/event.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imgw/imgw.h>

#include "address.h"
#include "tap.h"

#define OUTMAX	(3 * ADDR_PART_MAX + 8)

/* addr_canon must accept `in` and produce `want`. */
static void
canon_ok(const char *in, const char *want, const char *what)
{
	char out[OUTMAX];
	const char *why = NULL;
	int n;

	n = addr_canon(in, out, sizeof(out), &why);
	if (!is_str(n < 0 ? NULL : out, want, "%s", what) && n < 0)
		diag("refused: %s", why ? why : "(no reason)");
	else if (n >= 0)
		is_int(n, strlen(want), "%s: returns the length", what);
}

/* addr_canon must refuse `in` with reason `reason`. */
static void
canon_bad(const char *in, const char *reason, const char *what)
{
	char out[OUTMAX];
	const char *why = NULL;
	int n;

	out[0] = 'x';
	n = addr_canon(in, out, sizeof(out), &why);
	if (!is_int(n, -1, "%s: refused", what))
		diag("accepted as '%.80s'", out);
	is_str(why, reason, "%s: reason", what);
	is_int(out[0], '\0', "%s: output emptied", what);
}

static char *
repeat(char c, size_t n, const char *prefix, const char *suffix)
{
	size_t lp = strlen(prefix), ls = strlen(suffix);
	char *s = malloc(lp + n + ls + 1);

	if (s == NULL)
		bail_out("out of memory");
	memcpy(s, prefix, lp);
	memset(s + lp, c, n);
	memcpy(s + lp + n, suffix, ls + 1);
	return s;
}

static void
test_canon(void)
{
	canon_ok("Alice@Example.COM", "alice@example.com", "user and domain "
	    "lower-cased");
	canon_ok("alice@example.com.", "alice@example.com", "trailing dot "
	    "dropped");
	canon_ok("ALICE@EXAMPLE.COM./Home Office", "alice@example.com/Home "
	    "Office", "resource kept verbatim, case and space");
	canon_ok("a@b.example/c@d/E", "a@b.example/c@d/E", "resource may hold "
	    "'@' and '/'");
	canon_ok("John Smith@x.example", "john\\20smith@x.example",
	    "space escaped as \\20");
	canon_ok("\"q\"@x.example", "\\22q\\22@x.example", "quote escaped");
	canon_ok("a&b@x.example", "a\\26b@x.example", "ampersand escaped");
	canon_ok("o'Hara@x.example", "o\\27hara@x.example", "apostrophe escaped");
	canon_ok("a:b@x.example", "a\\3ab@x.example", "colon escaped");
	canon_ok("<a>@x.example", "\\3ca\\3e@x.example", "angle brackets "
	    "escaped");
	canon_ok("a\\b@x.example", "a\\b@x.example", "a backslash that starts "
	    "no escape stays");
	/* imgw/address.h: a backslash starts an escape, so canonical
	 * addresses pass through unchanged ("a b" and "a\20b" are the same
	 * user, as in XEP-0106); a literal "\20" is written \5c20 by the
	 * connector that has it */
	canon_ok("a\\20b@x.example", "a\\20b@x.example", "an escape in the "
	    "user part is kept as it is");
	canon_ok("a\\5c20b@x.example", "a\\5c20b@x.example", "an escaped "
	    "backslash is kept as it is");
	{
		char once[256], twice[256];
		const char *why;

		addr_canon("John Smith&Co:x@X.Example/R", once, sizeof(once),
		    &why);
		addr_canon(once, twice, sizeof(twice), &why);
		is_str(twice, once, "canonicalization is idempotent");
	}
	canon_ok("caf\xc3\xa9@x.example", "caf\xc3\xa9@x.example", "UTF-8 user "
	    "kept");
	canon_ok("\xf0\x9f\x98\x80@x.example", "\xf0\x9f\x98\x80@x.example",
	    "4-byte UTF-8 kept");
	canon_ok("Example.COM.", "example.com", "domain-only address");
	canon_ok("Example.COM/Res", "example.com/Res", "domain-only address "
	    "with resource");
	canon_ok("a@[192.0.2.1]", "a@[192.0.2.1]", "IPv4 literal domain");
	canon_ok("a@[::1]/r", "a@[::1]/r", "IPv6 literal domain");
	/* domains compare case-insensitively, so the canonical form of an
	 * IPv6 literal must be lower case like any other domain */
	canon_ok("a@[2001:DB8::1]", "a@[2001:db8::1]", "IPv6 literal "
	    "lower-cased");
	canon_ok("a@my_host-1.example", "a@my_host-1.example", "'-' and '_' in "
	    "domain");

	canon_bad("", "empty address", "empty");
	canon_bad("@x.example", "empty user part", "empty user");
	canon_bad("a@", "empty domain", "empty domain");
	canon_bad("a@.", "empty domain", "domain of a lone dot");
	canon_bad("a@/r", "empty domain", "empty domain before resource");
	canon_bad("a@x.example/", "empty resource", "empty resource");
	canon_bad("a\tb@x.example", "control character in address",
	    "tab in user");
	canon_bad("a@x.example/r\n", "control character in address",
	    "newline in resource");
	canon_bad("a\x7f@x.example", "control character in address", "DEL");
	canon_bad("\xc3@x.example", "address is not valid UTF-8",
	    "truncated sequence");
	canon_bad("\x80@x.example", "address is not valid UTF-8",
	    "lone continuation byte");
	canon_bad("\xc0\x80@x.example", "address is not valid UTF-8",
	    "overlong 2-byte NUL");
	canon_bad("\xc1\xbf@x.example", "address is not valid UTF-8",
	    "overlong 2-byte");
	canon_bad("\xe0\x80\xaf@x.example", "address is not valid UTF-8",
	    "overlong 3-byte");
	canon_bad("\xf0\x80\x80\xaf@x.example", "address is not valid UTF-8",
	    "overlong 4-byte");
	canon_bad("\xed\xa0\x80@x.example", "address is not valid UTF-8",
	    "high surrogate");
	canon_bad("\xed\xbf\xbf@x.example", "address is not valid UTF-8",
	    "low surrogate");
	canon_bad("\xf4\x90\x80\x80@x.example", "address is not valid UTF-8",
	    "beyond U+10FFFF");
	canon_bad("\xff@x.example", "address is not valid UTF-8", "byte 0xff");
	canon_bad("a@x.example/\xe2\x82", "address is not valid UTF-8",
	    "truncated sequence in resource");
	canon_bad("a@exa mple.com", "invalid character in domain",
	    "space in domain");
	canon_bad("a@ex!ample.com", "invalid character in domain", "'!' in "
	    "domain");
	canon_bad("a@b@c.example", "invalid character in domain", "second '@'");
	canon_bad("a@a..example", "empty label in domain", "empty label");
	canon_bad("a@.example", "empty label in domain", "leading dot");
	canon_bad("example..com", "empty label in domain", "empty label in a "
	    "domain-only address");
	canon_bad("a@example.com..", "empty label in domain", "two trailing dots "
	    "refused");
	canon_bad("a@ex[am]ple", "invalid character in domain", "brackets "
	    "outside an IP literal");
	canon_bad("a@[]", "invalid character in domain", "empty IP literal");
	canon_bad("a@[::1", "invalid character in domain", "unclosed IP "
	    "literal");
	canon_bad("a@[::g]", "invalid character in domain", "IP literal with a "
	    "non-hex letter");
}

static void
test_lengths(void)
{
	char *s, *want;
	char small[8];
	const char *why = NULL;

	s = repeat('A', ADDR_PART_MAX, "", "@x.example");
	want = repeat('a', ADDR_PART_MAX, "", "@x.example");
	canon_ok(s, want, "user of 1023 bytes");
	free(s);
	free(want);
	s = repeat('a', ADDR_PART_MAX + 1, "", "@x.example");
	canon_bad(s, "user part longer than 1023 bytes", "user of 1024 bytes");
	free(s);

	s = repeat('a', ADDR_PART_MAX, "u@", "");
	canon_ok(s, s, "domain of 1023 bytes");
	free(s);
	s = repeat('a', ADDR_PART_MAX, "u@", ".");
	want = repeat('a', ADDR_PART_MAX, "u@", "");
	canon_ok(s, want, "domain of 1023 bytes and the root dot");
	free(s);
	free(want);
	s = repeat('a', ADDR_PART_MAX + 1, "u@", "");
	canon_bad(s, "domain longer than 1023 bytes", "domain of 1024 bytes");
	free(s);
	s = repeat(':', ADDR_PART_MAX - 1, "u@[", "]");
	canon_bad(s, "domain longer than 1023 bytes", "IP literal of 1024 "
	    "bytes");
	free(s);

	s = repeat('R', ADDR_PART_MAX, "u@x/", "");
	canon_ok(s, s, "resource of 1023 bytes");
	free(s);
	s = repeat('R', ADDR_PART_MAX + 1, "u@x/", "");
	canon_bad(s, "resource longer than 1023 bytes", "resource of 1024 bytes");
	free(s);

	small[0] = 'x';
	is_int(addr_canon("alice@example.com", small, sizeof(small), &why), -1,
	    "output buffer too small: refused");
	is_str(why, "address too long", "output buffer too small: reason");
	is_int(small[0], '\0', "output buffer too small: emptied");
	is_int(addr_canon("ab@cd", small, 6, NULL), 5, "exact fit (5 + NUL), "
	    "NULL why_r");
	is_str(small, "ab@cd", "exact fit written");
	is_int(addr_canon("ab@cde", small, 6, NULL), -1, "one byte short");
}

static void
test_domain_utf8(void)
{
	char out[64];

	ok(addr_domain("a@b.example/r", out, sizeof(out)) == 0 &&
	    strcmp(out, "b.example") == 0, "addr_domain of a full address");
	ok(addr_domain("a@b.example", out, sizeof(out)) == 0 &&
	    strcmp(out, "b.example") == 0, "addr_domain of a bare address");
	ok(addr_domain("b.example/x@y", out, sizeof(out)) == 0 &&
	    strcmp(out, "b.example") == 0, "addr_domain of a domain-only "
	    "address with '@' in the resource");
	is_int(addr_domain("a@b.example", out, 9), -1, "addr_domain: too "
	    "small a buffer");
	ok(addr_domain("a@b.example", out, 10) == 0 && strcmp(out, "b.example")
	    == 0, "addr_domain: exact fit");

	ok(addr_utf8_valid("", 0), "utf8: empty is valid");
	ok(addr_utf8_valid("\xe2\x82\xac", 3), "utf8: euro sign");
	ok(addr_utf8_valid("\xf4\x8f\xbf\xbf", 4), "utf8: U+10FFFF");
	ok(addr_utf8_valid("\xef\xbf\xbf", 3), "utf8: U+FFFF");
	ok(!addr_utf8_valid("a\0b", 3), "utf8: NUL refused");
	ok(!addr_utf8_valid("\xe2\x82\xac", 2), "utf8: cut by the length");
	ok(!addr_utf8_valid("\xf5\x80\x80\x80", 4), "utf8: lead byte 0xf5");
	ok(!addr_utf8_valid("\xe2\x28\xa1", 3), "utf8: bad continuation");
}

static void
test_sdk_split(void)
{
	struct imgw_addr_parts p;

	memset(&p, 0, sizeof(p));
	ok(imgw_addr_split("alice@example.com/Home", &p) == 0, "split: full");
	ok(p.user_len == 5 && strncmp(p.user, "alice", 5) == 0, "split: user");
	ok(p.domain_len == 11 && strncmp(p.domain, "example.com", 11) == 0,
	    "split: domain");
	ok(p.resource != NULL && p.resource_len == 4 &&
	    strcmp(p.resource, "Home") == 0, "split: resource");
	ok(imgw_addr_split("alice@example.com", &p) == 0 && p.resource == NULL &&
	    p.resource_len == 0 && p.domain_len == 11, "split: bare");
	ok(imgw_addr_split("a@b/c@d", &p) == 0 && p.domain_len == 1 &&
	    strcmp(p.resource, "c@d") == 0, "split: '@' in the resource");
	is_int(imgw_addr_split(NULL, &p), -1, "split: NULL");
	is_int(imgw_addr_split("example.com", &p), -1, "split: no '@' (the "
	    "documented contract)");
	is_int(imgw_addr_split("example.com/a@b", &p), -1, "split: '@' only "
	    "in the resource");
	is_int(imgw_addr_split("@example.com", &p), -1, "split: empty user");
	is_int(imgw_addr_split("a@", &p), -1, "split: empty domain");
	is_int(imgw_addr_split("a@/r", &p), -1, "split: empty domain before "
	    "resource");
	is_int(imgw_addr_split("a@b/", &p), -1, "split: empty resource");

	is_int(imgw_addr_bare_len("a@b/c"), 3, "bare_len with resource");
	is_int(imgw_addr_bare_len("a@b"), 3, "bare_len without resource");
	ok(imgw_addr_bare_eq("a@b/x", "a@b/y"), "bare_eq: resources differ");
	ok(imgw_addr_bare_eq("a@b", "a@b/y"), "bare_eq: one bare");
	ok(!imgw_addr_bare_eq("a@b", "a@bc"), "bare_eq: prefix is not equal");
	ok(!imgw_addr_bare_eq("a@b/x", "b@b/x"), "bare_eq: users differ");
}

static void
test_names(void)
{
	int k, ok_all = 1;

	for (k = IMGW_EV_NONE + 1; k < IMGW_EV_KIND_MAX; k++)
		if (imgw_kind_parse(imgw_kind_name((enum imgw_kind)k)) != k) {
			diag("kind %d ('%s') does not round-trip", k,
			    imgw_kind_name((enum imgw_kind)k));
			ok_all = 0;
		}
	ok(ok_all, "every kind round-trips through name and parse");
	is_str(imgw_kind_name(IMGW_EV_MESSAGE), "message", "kind name message");
	is_str(imgw_kind_name(IMGW_EV_ERROR), "error", "kind name error");
	is_str(imgw_kind_name(IMGW_EV_NONE), "none", "kind name none");
	is_str(imgw_kind_name(IMGW_EV_KIND_MAX), "?", "kind name out of range");
	is_str(imgw_kind_name((enum imgw_kind)-1), "?", "kind name negative");
	is_int(imgw_kind_parse("none"), -1, "kind 'none' does not parse");
	is_int(imgw_kind_parse("chatstate"), IMGW_EV_CHATSTATE, "parse "
	    "chatstate");
	is_int(imgw_kind_parse("Message"), -1, "parse is case-sensitive");
	is_int(imgw_kind_parse("messag"), -1, "parse: prefix refused");
	is_int(imgw_kind_parse("messages"), -1, "parse: longer refused");
	is_int(imgw_kind_parse(""), -1, "parse: empty refused");
	is_int(imgw_kind_parse(NULL), -1, "parse: NULL refused");

	ok_all = 1;
	for (k = 0; k < IMGW_SHOW_MAX; k++)
		if (imgw_show_parse(imgw_show_name((enum imgw_show)k)) != k)
			ok_all = 0;
	ok(ok_all, "every show value round-trips");
	is_int(imgw_show_parse("available"), IMGW_SHOW_AVAILABLE, "parse "
	    "available (0)");
	is_str(imgw_show_name(IMGW_SHOW_MAX), "?", "show name out of range");
	is_int(imgw_show_parse("busy"), -1, "show 'busy' refused");

	ok_all = 1;
	for (k = 0; k < IMGW_CS_MAX; k++)
		if (imgw_chatstate_parse(imgw_chatstate_name(
		    (enum imgw_chatstate)k)) != k)
			ok_all = 0;
	ok(ok_all, "every chat state round-trips");
	is_str(imgw_chatstate_name(IMGW_CS_MAX), "?", "chat state name out of "
	    "range");
	is_int(imgw_chatstate_parse("typing"), -1, "chat state 'typing' "
	    "refused");
}

int
main(void)
{
	test_canon();
	test_lengths();
	test_domain_utf8();
	test_sdk_split();
	test_names();
	return done_testing();
}
