/*
 * Unit checks (TAP) of the SIP connector's mappings, built by
 * t-sip-unit.py with -fsanitize=address,undefined: URIs <-> canonical
 * addresses (RFC 7247 6), SIP codes <-> conditions (RFC 7247 7), PIDF
 * (RFC 8048) and isComposing round trips, trusted networks.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../../plugins/sip/sip.h"

static int t_n, t_failed;

static void
t_ok(int cond, const char *what)
{
	printf("%sok %d - %s\n", cond ? "" : "not ", ++t_n, what);
	if (!cond)
		t_failed++;
}

static void
t_str(const char *got, const char *want, const char *what)
{
	t_ok(got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want, what);
	if (!(got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want))
		printf("#      got: %s\n# expected: %s\n", got ? got : "(null)",
		    want ? want : "(null)");
}

/* URI text -> canonical address, or NULL when refused. */
static const char *
t_from_uri(const char *text, char *buf, size_t len)
{
	osip_uri_t *u = NULL;
	const char *why, *res = NULL;

	if (osip_uri_init(&u) != 0)
		return NULL;
	if (osip_uri_parse(u, text) == 0 && sip_addr_from_uri(u, buf, len, &why) == 0)
		res = buf;
	osip_uri_free(u);
	return res;
}

static void
t_addresses(void)
{
	static const struct { const char *uri, *want; } in[] = {
		{ "sip:alice@Example.COM", "alice@example.com" },
		{ "sips:alice@example.com;transport=tls", "alice@example.com" },
		{ "sip:b%20ob@x.example;gr=urn:uuid:1", "b ob@x.example/urn:uuid:1" },
		{ "sip:a%40b@x.example", "a\\40b@x.example" },
		{ "sip:a%2Fb@x.example", "a\\2fb@x.example" },
		{ "sip:back%5Cslash@x.example", "back\\5cslash@x.example" },
		{ "sip:Gr%C3%BC%C3%9Fe@x.example", "Gr\xc3\xbc\xc3\x9f" "e@x.example" },
		{ "im:carol@y.example", "carol@y.example" },
		{ "pres:dave@z.example", "dave@z.example" },
		{ "sip:x@h.example;gr=phone%201", "x@h.example/phone 1" },
		{ "sip:%00@x.example", NULL },
		{ "sip:a%2540b@x.example", "a%40b@x.example" },
		{ "im:a%40b@y.example", "a\\40b@y.example" },
		{ "sip:a%0d%0ab@x.example", NULL },
		{ "tel:+12345", NULL },
		{ "sip:host.only.example", NULL },
	};
	static const struct { const char *addr, *want; } out[] = {
		{ "alice@example.com", "sip:alice@example.com" },
		{ "o\\27brien@x.example", "sip:o'brien@x.example" },
		{ "a\\40b@x.example", "sip:a%40b@x.example" },
		{ "b\\20ob@x.example/phone 1", "sip:b%20ob@x.example;gr=phone%201" },
		{ "Gr\xc3\xbc\xc3\x9f" "e@x.example", "sip:Gr%C3%BC%C3%9Fe@x.example" },
		{ "semi;colon@x.example", "sip:semi%3Bcolon@x.example" },
		{ "x@h.example/urn:uuid:1", "sip:x@h.example;gr=urn:uuid:1" },
	};
	char buf[512], what[600];
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		snprintf(what, sizeof(what), "URI %s -> %s", in[i].uri,
		    in[i].want ? in[i].want : "refused");
		t_str(t_from_uri(in[i].uri, buf, sizeof(buf)), in[i].want, what);
	}
	for (i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		snprintf(what, sizeof(what), "address %s -> %s", out[i].addr, out[i].want);
		t_str(sip_addr_to_uri(out[i].addr, buf, sizeof(buf)) == 0 ? buf : NULL,
		    out[i].want, what);
	}
	t_ok(sip_addr_to_uri("no-at-sign", buf, sizeof(buf)) == -1,
	    "an address without @ is refused");
	t_ok(sip_addr_to_uri("alice@example.com", buf, 10) == -1,
	    "a buffer too small is refused, not overrun");
}

static void
t_errors(void)
{
	static const struct { int code; const char *cond; } from_sip[] = {
		{ 404, "item-not-found" }, { 480, "recipient-unavailable" },
		{ 408, "remote-server-timeout" }, { 503, "service-unavailable" },
		{ 403, "forbidden" }, { 413, "policy-violation" },
		{ 415, "bad-request" }, { 486, "recipient-unavailable" },
		{ 405, "feature-not-implemented" }, { 501, "feature-not-implemented" },
		{ 499, "bad-request" }, { 599, "internal-server-error" },
		{ 603, "service-unavailable" }, { 699, "service-unavailable" },
		{ 302, "redirect" },
	};
	static const struct { const char *cond; int code; } to_sip[] = {
		{ "item-not-found", 404 }, { "recipient-unavailable", 480 },
		{ "remote-server-timeout", 408 }, { "remote-server-not-found", 404 },
		{ "forbidden", 403 }, { "not-allowed", 403 },
		{ "policy-violation", 403 }, { "service-unavailable", 503 },
		{ "feature-not-implemented", 405 }, { "jid-malformed", 400 },
		{ "bad-request", 400 }, { "resource-constraint", 500 },
		{ "no-such-condition", 500 },
	};
	char what[128];
	size_t i;

	for (i = 0; i < sizeof(from_sip) / sizeof(from_sip[0]); i++) {
		snprintf(what, sizeof(what), "SIP %d -> %s", from_sip[i].code,
		    from_sip[i].cond);
		t_str(sip_err_condition(from_sip[i].code), from_sip[i].cond, what);
	}
	for (i = 0; i < sizeof(to_sip) / sizeof(to_sip[0]); i++) {
		snprintf(what, sizeof(what), "%s -> SIP %d", to_sip[i].cond,
		    to_sip[i].code);
		t_ok(sip_err_code(to_sip[i].cond) == to_sip[i].code, what);
	}
	t_ok(sip_err_emit_code("policy-violation: field too long") == 413,
	    "emit refusal for a field too long -> 413");
	t_ok(sip_err_emit_code("forbidden: from address x is not in community") == 403,
	    "emit refusal forbidden -> 403");
	t_ok(sip_err_emit_code("jid-malformed: bad domain") == 400,
	    "emit refusal jid-malformed -> 400");
}

static void
t_pidf(void)
{
	static const struct { enum imgw_show in, out; } shows[] = {
		{ IMGW_SHOW_AVAILABLE, IMGW_SHOW_AVAILABLE },
		{ IMGW_SHOW_AWAY, IMGW_SHOW_AWAY },
		{ IMGW_SHOW_XA, IMGW_SHOW_AWAY },
		{ IMGW_SHOW_DND, IMGW_SHOW_DND },
		{ IMGW_SHOW_CHAT, IMGW_SHOW_AVAILABLE },
		{ IMGW_SHOW_UNAVAILABLE, IMGW_SHOW_UNAVAILABLE },
	};
	char doc[2048], note[256], lang[40], what[128];
	enum imgw_show show;
	enum imgw_chatstate cs;
	size_t i;
	int n;

	for (i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
		n = sip_pidf_format("sip:a@b.example", shows[i].in, "x < y & \"z\"",
		    "de", doc, sizeof(doc));
		snprintf(what, sizeof(what), "PIDF round trip: %s -> %s",
		    imgw_show_name(shows[i].in), imgw_show_name(shows[i].out));
		t_ok(n > 0 && sip_pidf_parse(doc, (size_t)n, &show, note, sizeof(note),
		    lang, sizeof(lang)) == 0 && show == shows[i].out &&
		    strcmp(note, "x < y & \"z\"") == 0 && strcmp(lang, "de") == 0, what);
	}
	t_ok(sip_pidf_format("sip:a@b", IMGW_SHOW_AWAY, NULL, NULL, doc, 64) == -1,
	    "PIDF: a buffer too small is refused");
	t_ok(sip_pidf_parse("<presence/>", 11, &show, note, sizeof(note), lang,
	    sizeof(lang)) == -1, "PIDF without namespace is refused");
	t_ok(sip_pidf_parse("<presence xmlns='urn:ietf:params:xml:ns:pidf'>", 47,
	    &show, note, sizeof(note), lang, sizeof(lang)) == -1,
	    "truncated PIDF is refused");
	{
		static const char bomb[] = "<?xml version='1.0'?><!DOCTYPE p ["
		    "<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
		    "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
		    "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='t'>"
		    "<status><basic>open</basic></status><note>&c;</note></tuple>"
		    "</presence>";

		t_ok(sip_pidf_parse(bomb, sizeof(bomb) - 1, &show, note,
		    sizeof(note), lang, sizeof(lang)) <= 0 && strlen(note) < sizeof(note),
		    "entity expansion stays within the note buffer");
	}
	for (cs = IMGW_CS_ACTIVE; cs < IMGW_CS_MAX; cs++) {
		enum imgw_chatstate back;
		unsigned refresh = 7;

		n = sip_isc_format(cs, 90, doc, sizeof(doc));
		snprintf(what, sizeof(what), "isComposing for %s", imgw_chatstate_name(cs));
		t_ok(n > 0 && sip_isc_parse(doc, (size_t)n, &back, &refresh) == 0 &&
		    back == (cs == IMGW_CS_COMPOSING ? IMGW_CS_COMPOSING : IMGW_CS_PAUSED) &&
		    refresh == (cs == IMGW_CS_COMPOSING ? 90u : 0u), what);
	}
	{
		static const char *const bad[] = { "0", "-5", "12x", " ", "99999999999999999999" };
		static const char fmt[] = "<isComposing xmlns='urn:ietf:params:xml:ns:"
		    "im-iscomposing'><state>active</state><refresh>%s</refresh>"
		    "</isComposing>";
		enum imgw_chatstate back;
		unsigned refresh;
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			n = snprintf(doc, sizeof(doc), fmt, bad[i]);
			snprintf(what, sizeof(what), "isComposing refresh '%s' -> %s",
			    bad[i], i == 3 ? "none" : "malformed");
			refresh = 7;
			t_ok(i == 3 ? sip_isc_parse(doc, (size_t)n, &back, &refresh) == 0 &&
			    refresh == 0 : sip_isc_parse(doc, (size_t)n, &back, &refresh) == -1,
			    what);
		}
		n = snprintf(doc, sizeof(doc), fmt, "100000");
		t_ok(sip_isc_parse(doc, (size_t)n, &back, &refresh) == 0 &&
		    refresh == 86400, "isComposing refresh is at most a day");
	}
}

static void
t_nets(void)
{
	struct sip_net n[2];
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sockaddr_in6 b = { .sin6_family = AF_INET6 };

	t_ok(sip_net_cidr("10.1.0.0/16", &n[0]) == 0, "CIDR 10.1.0.0/16 parses");
	t_ok(sip_net_cidr("2001:db8::/32", &n[1]) == 0, "CIDR 2001:db8::/32 parses");
	t_ok(sip_net_cidr("10.1.0.0/33", &n[0]) == -1 &&
	    sip_net_cidr("10.1.0.0/16", &n[0]) == 0, "/33 is refused");
	t_ok(sip_net_cidr("host.example", &n[0]) == -1 &&
	    sip_net_cidr("10.1.0.0/16", &n[0]) == 0, "names are refused");
	inet_pton(AF_INET, "10.1.200.3", &a.sin_addr);
	t_ok(sip_net_match(n, 2, (struct sockaddr *)&a), "10.1.200.3 is inside");
	inet_pton(AF_INET, "10.2.0.1", &a.sin_addr);
	t_ok(!sip_net_match(n, 2, (struct sockaddr *)&a), "10.2.0.1 is outside");
	inet_pton(AF_INET6, "::ffff:10.1.0.9", &b.sin6_addr);
	t_ok(sip_net_match(n, 2, (struct sockaddr *)&b),
	    "an IPv4-mapped IPv6 source is compared as IPv4");
	inet_pton(AF_INET6, "2001:db8:1::1", &b.sin6_addr);
	t_ok(sip_net_match(n, 2, (struct sockaddr *)&b), "2001:db8:1::1 is inside");
}

int
main(void)
{
	t_addresses();
	t_errors();
	t_pidf();
	t_nets();
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
