/*
 * SIP status codes <-> RFC 6120 stanza error conditions, after RFC 7247
 * section 7: 7.1 (XMPP condition -> SIP code, when a SIP request cannot be
 * delivered on the XMPP/core side) and 7.2 (SIP code -> XMPP condition,
 * when a request we sent for an event fails).  Codes a table does not
 * name fall back to their class, as RFC 3261 section 8.1.3.2 says of
 * unknown codes (x00).
 */
#include <stdlib.h>
#include <string.h>

#include "sip.h"

/* RFC 7247 section 7.1, Table 3: condition -> SIP response code. */
static const struct {
	const char *cond;
	int code;
} sip_err_to_sip[] = {
	{ "bad-request", 400 },
	{ "conflict", 400 },
	{ "feature-not-implemented", 405 },
	{ "forbidden", 403 },
	{ "gone", 410 },
	{ "internal-server-error", 500 },
	{ "item-not-found", 404 },
	{ "jid-malformed", 400 },
	{ "not-acceptable", 406 },
	{ "not-allowed", 403 },
	{ "not-authorized", 401 },
	{ "policy-violation", 403 },
	{ "recipient-unavailable", 480 },
	{ "redirect", 302 },
	{ "registration-required", 400 },
	{ "remote-server-not-found", 404 },
	{ "remote-server-timeout", 408 },
	{ "resource-constraint", 500 },
	{ "service-unavailable", 503 },
	{ "subscription-required", 400 },
	{ "undefined-condition", 500 },
	{ "unexpected-request", 491 },
};

/* RFC 7247 section 7.2, Table 4: SIP response code -> condition. */
static const struct {
	int code;
	const char *cond;
} sip_err_from_sip[] = {
	{ 300, "redirect" }, { 301, "gone" }, { 302, "redirect" },
	{ 305, "redirect" }, { 380, "redirect" },
	{ 400, "bad-request" }, { 401, "not-authorized" },
	{ 402, "bad-request" }, { 403, "forbidden" },
	{ 404, "item-not-found" }, { 405, "feature-not-implemented" },
	{ 406, "not-acceptable" }, { 407, "not-authorized" },
	{ 408, "remote-server-timeout" }, { 410, "gone" },
	{ 413, "policy-violation" }, { 414, "jid-malformed" },
	{ 415, "bad-request" }, { 416, "jid-malformed" },
	{ 420, "bad-request" }, { 421, "bad-request" },
	{ 423, "bad-request" }, { 430, "recipient-unavailable" },
	{ 439, "feature-not-implemented" }, { 440, "policy-violation" },
	{ 480, "recipient-unavailable" }, { 481, "item-not-found" },
	{ 482, "not-acceptable" }, { 483, "not-acceptable" },
	{ 484, "item-not-found" }, { 485, "item-not-found" },
	{ 486, "recipient-unavailable" }, { 488, "not-acceptable" },
	{ 489, "policy-violation" }, { 491, "unexpected-request" },
	{ 493, "bad-request" },
	{ 500, "internal-server-error" }, { 501, "feature-not-implemented" },
	{ 502, "remote-server-not-found" }, { 503, "service-unavailable" },
	{ 504, "remote-server-timeout" }, { 505, "not-acceptable" },
	{ 513, "policy-violation" },
	{ 600, "service-unavailable" }, { 603, "service-unavailable" },
	{ 604, "item-not-found" }, { 606, "not-acceptable" },
};

#define SIP_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

int
sip_err_code(const char *condition)
{
	size_t i;

	for (i = 0; condition != NULL && i < SIP_NELEM(sip_err_to_sip); i++)
		if (strcmp(sip_err_to_sip[i].cond, condition) == 0)
			return sip_err_to_sip[i].code;
	return 500;	/* undefined-condition and anything unknown */
}

const char *
sip_err_condition(int code)
{
	size_t i;

	for (i = 0; i < SIP_NELEM(sip_err_from_sip); i++)
		if (sip_err_from_sip[i].code == code)
			return sip_err_from_sip[i].cond;
	if (code >= 300 && code < 400)
		return "redirect";
	if (code >= 400 && code < 500)
		return "bad-request";
	if (code >= 500 && code < 600)
		return "internal-server-error";
	return "service-unavailable";	/* 6xx and nonsense */
}

/*
 * The code for an emit refusal "CONDITION: reason".  Where the reason is
 * more precise than the condition, the code follows the reason: a field
 * over the core's limit is 413 (Request Entity Too Large), the SIP code
 * RFC 7247 7.2 maps to policy-violation; a destination too busy to queue
 * the message (resource-constraint, "overloaded") is 503, which a SIP
 * sender retries after Retry-After, rather than 7.1's 500.
 */
int
sip_err_emit_code(const char *err)
{
	char cond[64];
	size_t n = strcspn(err, ":");

	if (n >= sizeof(cond))
		return 500;
	memcpy(cond, err, n);
	cond[n] = '\0';
	if (strcmp(cond, "policy-violation") == 0 && strstr(err, "too long") != NULL)
		return 413;
	if (strcmp(cond, "resource-constraint") == 0 &&
	    strstr(err, "overloaded") != NULL)
		return 503;
	return sip_err_code(cond);
}
