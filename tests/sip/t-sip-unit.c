/*
 * Unit checks (TAP) of the SIP connector's mappings, built by
 * t-sip-unit.py with -fsanitize=address,undefined: URIs <-> canonical
 * addresses (RFC 7247 6), SIP codes <-> conditions (RFC 7247 7), PIDF
 * (RFC 8048) and isComposing round trips, trusted networks, dialog route
 * sets (RFC 3261 12), route next hops, and plugins/common/dns.c's NAPTR
 * parser on well-formed and malformed answers (and on random mutations
 * of one: a DNS answer is untrusted input).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A request parsed from text (CRLF added), or NULL. */
static osip_message_t *
t_parse(const char *const *lines)
{
	char buf[2048];
	osip_message_t *m = NULL;
	size_t off = 0;

	for (; *lines != NULL; lines++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\r\n", *lines);
	off += (size_t)snprintf(buf + off, sizeof(buf) - off, "Content-Length: 0\r\n\r\n");
	if (osip_message_init(&m) != 0)
		return NULL;
	if (osip_message_parse(m, buf, off) != 0) {
		osip_message_free(m);
		return NULL;
	}
	return m;
}

/* The Request-URI and Route headers of m as "ruri | r1 | r2". */
static const char *
t_routing(const osip_message_t *m, char *buf, size_t len)
{
	osip_route_t *r;
	char *u = NULL;
	size_t off;
	int pos;

	if (osip_uri_to_str(m->req_uri, &u) != 0)
		return NULL;
	off = (size_t)snprintf(buf, len, "%s", u);
	osip_free(u);
	for (pos = 0; (r = osip_list_get(&m->routes, pos)) != NULL; pos++) {
		if (osip_route_to_str(r, &u) != 0)
			return NULL;
		off += (size_t)snprintf(buf + off, len - off, " | %s", u);
		osip_free(u);
	}
	return buf;
}

/* sip_net_uri of a URI text; -2 when it does not parse. */
static int
t_hop(const char *text, struct sip_taddr *ta, int *port_r)
{
	osip_uri_t *u = NULL;
	int rc = -2;

	if (osip_uri_init(&u) != 0)
		return -2;
	if (osip_uri_parse(u, text) == 0)
		rc = sip_net_uri(u, ta, port_r);
	osip_uri_free(u);
	return rc;
}

static int
t_port(const struct sip_taddr *ta)
{
	return ntohs(((const struct sockaddr_in *)&ta->ss)->sin_port);
}

static void
t_routes(void)
{
	static const char *const sub[] = {
		"SUBSCRIBE sip:alice@corp.example SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1",
		"Record-Route: <sip:192.0.2.7:5070;lr>;x=1, <sip:p2.example;lr;transport=tcp>",
		"Record-Route: <sip:192.0.2.9>",
		"From: <sip:bob@sip.example>;tag=f1",
		"To: <sip:alice@corp.example>",
		"Call-ID: c1", "CSeq: 1 SUBSCRIBE", "Max-Forwards: 70", NULL,
	};
	static const char *const plain[] = {
		"NOTIFY sip:imgw@192.0.2.2 SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-2",
		"From: <sip:bob@sip.example>;tag=f1",
		"To: <sip:alice@corp.example>;tag=t1",
		"Call-ID: c1", "CSeq: 2 NOTIFY", "Max-Forwards: 70", NULL,
	};
	osip_message_t *m, *q, *r;
	struct sip_taddr ta;
	char *set = NULL, buf[1024];
	int port;

	parser_init();	/* osip's header table, as osip_init does */
	m = t_parse(sub);
	t_ok(m != NULL, "a SUBSCRIBE with three Record-Route values parses");
	if (m == NULL)
		return;
	t_ok(sip_msg_route_set(m, 0, &set) == 0, "route set, UAS order");
	t_str(set, "sip:192.0.2.7:5070;lr\nsip:p2.example;lr;transport=tcp\n"
	    "sip:192.0.2.9", "UAS: Record-Route URIs in order, header parameters dropped");
	free(set);
	t_ok(sip_msg_route_set(m, 1, &set) == 0, "route set, UAC order");
	t_str(set, "sip:192.0.2.9\nsip:p2.example;lr;transport=tcp\n"
	    "sip:192.0.2.7:5070;lr", "UAC: reversed");
	free(set);
	r = sip_msg_response(m, 200, "t1");
	t_ok(r != NULL && osip_list_size(&r->record_routes) == 3,
	    "a 200 carries the request's three Record-Route values (RFC 3261 12.1.1)");
	if (r != NULL)
		osip_message_free(r);
	r = sip_msg_response(m, 404, "t1");
	t_ok(r != NULL && osip_list_size(&r->record_routes) == 0,
	    "a 404 carries none");
	if (r != NULL)
		osip_message_free(r);
	q = t_parse(plain);
	t_ok(q != NULL && sip_msg_route_set(q, 0, &set) == 0 && set == NULL,
	    "no Record-Route: an empty route set (NULL)");
	if (q != NULL)
		osip_message_free(q);

	q = sip_msg_request("NOTIFY", "sip:bob@192.0.2.5:5062", "sip:alice@corp.example",
	    "t1", "sip:bob@sip.example", "c1", 2);
	t_ok(q != NULL && sip_msg_route(q, "sip:192.0.2.7:5070;lr\nsip:p2.example;lr")
	    == 0, "loose routing applies");
	t_str(q ? t_routing(q, buf, sizeof(buf)) : NULL, "sip:bob@192.0.2.5:5062 | "
	    "<sip:192.0.2.7:5070;lr> | <sip:p2.example;lr>",
	    "loose: Request-URI the remote target, Route the whole set");
	if (q != NULL)
		osip_message_free(q);
	q = sip_msg_request("NOTIFY", "sip:bob@192.0.2.5:5062", "sip:alice@corp.example",
	    "t1", "sip:bob@sip.example", "c1", 2);
	t_ok(q != NULL && sip_msg_route(q, "sip:192.0.2.9;method=INVITE?X=1\n"
	    "sip:192.0.2.7;lr") == 0, "strict routing applies");
	t_str(q ? t_routing(q, buf, sizeof(buf)) : NULL, "sip:192.0.2.9 | "
	    "<sip:192.0.2.7;lr> | <sip:bob@192.0.2.5:5062>",
	    "strict: Request-URI the first route (no method, no headers), the "
	    "rest then the remote target as Route");
	if (q != NULL)
		osip_message_free(q);
	q = sip_msg_request("NOTIFY", "sip:bob@192.0.2.5", "sip:alice@corp.example",
	    "t1", "sip:bob@sip.example", "c1", 2);
	t_ok(q != NULL && sip_msg_route(q, NULL) == 0 &&
	    osip_list_size(&q->routes) == 0, "an empty route set changes nothing");
	if (q != NULL)
		osip_message_free(q);

	t_ok(t_hop("sip:192.0.2.7:5070;lr;transport=tcp", &ta, &port) == 1 &&
	    ta.proto == SIP_PROTO_TCP && t_port(&ta) == 5070,
	    "numeric route URI -> tcp 192.0.2.7:5070");
	t_ok(t_hop("sips:192.0.2.7;lr", &ta, &port) == 1 &&
	    ta.proto == SIP_PROTO_TLS && t_port(&ta) == 5061, "sips: -> TLS on 5061");
	t_ok(t_hop("sip:proxy.example:5080;lr", &ta, &port) == 0 && port == 5080 &&
	    ta.proto == SIP_PROTO_UDP, "a host name is left to the caller (port kept)");
	osip_message_free(m);
}

static void
t_nexthops(void)
{
	struct sip_nexthop nh;
	const char *why;

	t_ok(sip_net_nexthop("tls:192.0.2.7:5061", &nh, &why) == 0 && nh.ta.len > 0 &&
	    nh.proto == SIP_PROTO_TLS && nh.port == 5061 &&
	    strcmp(nh.host, "192.0.2.7") == 0, "next hop tls:192.0.2.7:5061 is numeric");
	t_ok(sip_net_nexthop("tcp:[2001:db8::1]:5060", &nh, &why) == 0 && nh.ta.len > 0,
	    "next hop tcp:[2001:db8::1]:5060 is numeric");
	t_ok(sip_net_nexthop("tls:sip.partner.example:5061", &nh, &why) == 0 &&
	    nh.ta.len == 0 && nh.proto == SIP_PROTO_TLS && nh.port == 5061 &&
	    strcmp(nh.host, "sip.partner.example") == 0,
	    "next hop tls:sip.partner.example:5061 is a name");
	t_ok(sip_net_nexthop("udp:sip-1.partner.example:5060", &nh, &why) == 0 &&
	    nh.proto == SIP_PROTO_UDP, "a name with '-' and digits");
	t_ok(sip_net_nexthop("udp:192.0.2.300:5060", &nh, &why) == -1,
	    "a bad address is not taken for a name");
	t_ok(sip_net_nexthop("tcp:-bad.example:5060", &nh, &why) == -1 &&
	    sip_net_nexthop("tcp:a..example:5060", &nh, &why) == -1 &&
	    sip_net_nexthop("tcp:a_b.example:5060", &nh, &why) == -1,
	    "malformed names are refused");
	t_ok(sip_net_nexthop("tcp:host.example:0", &nh, &why) == -1 &&
	    sip_net_nexthop("tcp:host.example", &nh, &why) == -1,
	    "a name needs a port 1..65535");
	t_ok(sip_net_nexthop("sctp:host.example:5060", &nh, &why) == -1 && why != NULL,
	    "an unknown transport is refused with a reason");
}

/* A DNS answer: header, question NAME/NAPTR, then `an` answer records
 * (pointer to the question's name, NAPTR, IN, TTL 300) with the RDATA in
 * rd[i]/rdlen[i] (rdlen[i] is what RDLENGTH says; rdreal[i] bytes are
 * written).  Returns the length. */
static size_t
t_dns_msg(unsigned char *buf, size_t cap, int an, const unsigned char **rd,
    const int *rdlen, const int *rdreal)
{
	static const unsigned char q[] = "\7example\3com";
	size_t off = 12;
	int i;

	memset(buf, 0, 12);
	buf[0] = 0x12;
	buf[2] = 0x81;
	buf[3] = 0x80;
	buf[5] = 1;
	buf[7] = (unsigned char)an;
	memcpy(buf + off, q, sizeof(q));
	off += sizeof(q);
	buf[off++] = 0;
	buf[off++] = 35;
	buf[off++] = 0;
	buf[off++] = 1;
	for (i = 0; i < an && off + 12 + (size_t)rdreal[i] <= cap; i++) {
		static const unsigned char rr[] = { 0xc0, 12, 0, 35, 0, 1, 0, 0, 1, 44 };

		memcpy(buf + off, rr, sizeof(rr));
		off += sizeof(rr);
		buf[off++] = (unsigned char)(rdlen[i] >> 8);
		buf[off++] = (unsigned char)rdlen[i];
		memcpy(buf + off, rd[i], (size_t)rdreal[i]);
		off += (size_t)rdreal[i];
	}
	return off;
}

/* RDATA of a NAPTR record into buf; returns its length. */
static int
t_naptr_rd(unsigned char *buf, int order, int pref, const char *flags,
    const char *services, const char *regexp, const char *repl)
{
	int n = 0;
	const char *f[3] = { flags, services, regexp }, *l, *dot;
	size_t k, len;

	buf[n++] = (unsigned char)(order >> 8);
	buf[n++] = (unsigned char)order;
	buf[n++] = (unsigned char)(pref >> 8);
	buf[n++] = (unsigned char)pref;
	for (k = 0; k < 3; k++) {
		buf[n++] = (unsigned char)strlen(f[k]);
		memcpy(buf + n, f[k], strlen(f[k]));
		n += (int)strlen(f[k]);
	}
	for (l = repl; *l != '\0' && strcmp(l, ".") != 0; l = dot ? dot + 1 : l + len) {
		dot = strchr(l, '.');
		len = dot ? (size_t)(dot - l) : strlen(l);
		buf[n++] = (unsigned char)len;
		memcpy(buf + n, l, len);
		n += (int)len;
	}
	buf[n++] = 0;
	return n;
}

static void
t_naptr(void)
{
	unsigned char msg[2048], a[600], b[600], c[600];
	const unsigned char *rd[3] = { a, b, c };
	int rdlen[3], rdreal[3], i, j, n;
	struct plug_dns_naptr out[4];
	size_t len;
	unsigned seed = 12345;

	rdlen[0] = rdreal[0] = t_naptr_rd(a, 10, 20, "s", "SIP+D2T", "",
	    "_sip._tcp.example.com");
	len = t_dns_msg(msg, sizeof(msg), 1, rd, rdlen, rdreal);
	n = plug_dns_naptr_parse(msg, len, out, 4);
	t_ok(n == 1 && out[0].order == 10 && out[0].pref == 20 &&
	    strcmp(out[0].flags, "s") == 0 && strcmp(out[0].services, "SIP+D2T") == 0 &&
	    strcmp(out[0].replacement, "_sip._tcp.example.com") == 0 && out[0].ttl == 300,
	    "NAPTR: a record parses with every field");

	rdlen[1] = rdreal[1] = t_naptr_rd(b, 5, 1, "S", "SIPS+D2T", "", ".");
	len = t_dns_msg(msg, sizeof(msg), 2, rd, rdlen, rdreal);
	n = plug_dns_naptr_parse(msg, len, out, 4);
	t_ok(n == 2 && strcmp(out[1].replacement, ".") == 0,
	    "NAPTR: two records; the root replacement reads \".\"");
	t_ok(plug_dns_naptr_parse(msg, len, out, 1) == 1, "NAPTR: at most max records");

	/* FLAGS length running past RDLENGTH */
	memcpy(b, a, (size_t)rdlen[0]);
	b[4] = 200;
	rdlen[1] = rdreal[1] = rdlen[0];
	len = t_dns_msg(msg, sizeof(msg), 2, rd, rdlen, rdreal);
	n = plug_dns_naptr_parse(msg, len, out, 4);
	t_ok(n == 1 && out[0].order == 10, "NAPTR: a FLAGS string past RDLENGTH is skipped");

	/* RDLENGTH too short for ORDER and PREFERENCE */
	rdlen[1] = rdreal[1] = 3;
	len = t_dns_msg(msg, sizeof(msg), 2, rd, rdlen, rdreal);
	t_ok(plug_dns_naptr_parse(msg, len, out, 4) == 1, "NAPTR: RDLENGTH 3 is skipped");

	/* RDLENGTH ends inside the replacement of the middle record: reading
	 * the name on would run into the next record (a pointer there makes
	 * it a valid name) */
	memcpy(b, a, (size_t)rdlen[0]);
	memcpy(c, a, (size_t)rdlen[0]);
	rdlen[1] = rdreal[1] = rdlen[0] - 5;
	rdlen[2] = rdreal[2] = rdlen[0];
	len = t_dns_msg(msg, sizeof(msg), 3, rd, rdlen, rdreal);
	n = plug_dns_naptr_parse(msg, len, out, 4);
	t_ok(n == 2 && out[0].order == 10 && out[1].order == 10,
	    "NAPTR: a replacement running past RDLENGTH is skipped");
	t_ok(plug_dns_naptr_parse(msg, len - 1, out, 4) == -1,
	    "NAPTR: a message whose records do not end at its end is refused");

	/* a compression pointer to itself as replacement */
	n = t_naptr_rd(b, 1, 1, "s", "SIP+D2U", "", ".");
	rdlen[1] = rdreal[1] = n + 1;
	len = t_dns_msg(msg, sizeof(msg), 1, rd + 1, rdlen + 1, rdreal + 1);
	msg[len - 2] = 0xc0;
	msg[len - 1] = (unsigned char)(len - 2);
	t_ok(plug_dns_naptr_parse(msg, len, out, 4) == 0,
	    "NAPTR: a replacement pointing at itself is skipped");

	/* a NUL inside SERVICES, SERVICES too long for the buffer */
	rdlen[1] = rdreal[1] = t_naptr_rd(b, 1, 1, "s", "SIP+D2U", "", "x.example.com");
	b[8] = '\0';
	memset(c, 'A', sizeof(c));
	rdlen[2] = rdreal[2] = t_naptr_rd(c, 1, 1, "s",
	    "SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U+SIP+D2U",
	    "", "x.example.com");
	len = t_dns_msg(msg, sizeof(msg), 3, rd, rdlen, rdreal);
	n = plug_dns_naptr_parse(msg, len, out, 4);
	t_ok(n == 1 && out[0].order == 10,
	    "NAPTR: a NUL in SERVICES, and SERVICES longer than kept, are skipped");

	/* RDLENGTH past the end of the message; a message cut short */
	rdlen[0] = 500;
	len = t_dns_msg(msg, sizeof(msg), 1, rd, rdlen, rdreal);
	t_ok(plug_dns_naptr_parse(msg, len, out, 4) <= 0,
	    "NAPTR: RDLENGTH past the message's end reads nothing");
	rdlen[0] = rdreal[0];
	len = t_dns_msg(msg, sizeof(msg), 1, rd, rdlen, rdreal);
	t_ok(plug_dns_naptr_parse(msg, len - 7, out, 4) <= 0 &&
	    plug_dns_naptr_parse(msg, 11, out, 4) == -1,
	    "NAPTR: a message cut short reads nothing");

	/* random mutations of a good answer: nothing read out of bounds
	 * (ASan), every record read is NUL-terminated */
	rdlen[1] = rdreal[1] = t_naptr_rd(b, 20, 5, "s", "SIP+D2U", "", "_sip._udp.example.com");
	len = t_dns_msg(msg, sizeof(msg), 2, rd, rdlen, rdreal);
	for (i = 0, n = 0; i < 200000; i++) {
		unsigned char m2[2048];
		size_t l2 = len;
		int k, nn;

		memcpy(m2, msg, len);
		for (k = 0; k < 1 + (int)(rand_r(&seed) % 4); k++)
			m2[rand_r(&seed) % len] = (unsigned char)rand_r(&seed);
		if (rand_r(&seed) % 8 == 0)
			l2 = 12 + rand_r(&seed) % (len - 12);
		{
			/* a heap copy of exactly l2 bytes, so ASan sees any overread */
			unsigned char *h = malloc(l2);

			memcpy(h, m2, l2);
			nn = plug_dns_naptr_parse(h, l2, out, 4);
			free(h);
		}
		for (j = 0; j < nn; j++)
			if (strlen(out[j].flags) >= sizeof(out[j].flags) ||
			    strlen(out[j].replacement) > PLUG_DNS_NAME_MAX)
				n++;
	}
	t_ok(n == 0, "NAPTR: 200000 mutated answers parse within bounds");
}

int
main(void)
{
	t_addresses();
	t_errors();
	t_pidf();
	t_nets();
	t_routes();
	t_nexthops();
	t_naptr();
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}
