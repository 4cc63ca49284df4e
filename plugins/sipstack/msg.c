/*
 * Building and reading osip messages.  Strings handed to osip are
 * allocated with osip_strdup: osip frees them with its own allocator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sipstack-internal.h"

/* A tag or branch suffix: 16 hex digits from a counter mixed with a
 * random key drawn once (unique per process, not guessable). */
int
sip_msg_tag(char *buf, size_t len)
{
	static uint64_t key, ctr;
	uint64_t x;

	if (key == 0) {
		if (getrandom(&key, sizeof(key), GRND_NONBLOCK) != sizeof(key))
			key = (uint64_t)(uintptr_t)&key ^
			    (uint64_t)sip_now_ms() * 0x9e3779b97f4a7c15ull;
		key |= 1;
	}
	/* splitmix64 of a counter: distinct inputs give distinct outputs */
	x = key + ++ctr * 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return snprintf(buf, len, "%016llx", (unsigned long long)x) < (int)len ? 0 : -1;
}

osip_message_t *
sip_msg_response(const osip_message_t *req, int code, const char *to_tag)
{
	osip_message_t *r;
	osip_via_t *via, *copy;
	osip_generic_param_t *tag = NULL;
	const char *reason;
	int pos;

	if (osip_message_init(&r) != 0)
		return NULL;
	reason = osip_message_get_reason(code);
	osip_message_set_version(r, osip_strdup("SIP/2.0"));
	osip_message_set_status_code(r, code);
	osip_message_set_reason_phrase(r, osip_strdup(reason ? reason : "Unknown"));
	for (pos = 0; !osip_list_eol(&req->vias, pos); pos++) {
		via = osip_list_get(&req->vias, pos);
		if (osip_via_clone(via, &copy) != 0)
			goto fail;
		osip_list_add(&r->vias, copy, -1);
	}
	if ((req->from && osip_from_clone(req->from, &r->from) != 0) ||
	    (req->to && osip_to_clone(req->to, &r->to) != 0) ||
	    (req->call_id && osip_call_id_clone(req->call_id, &r->call_id) != 0) ||
	    (req->cseq && osip_cseq_clone(req->cseq, &r->cseq) != 0))
		goto fail;
	if (r->to != NULL && code > 100 && to_tag != NULL &&
	    osip_to_get_tag(r->to, &tag) != 0)
		osip_to_set_tag(r->to, osip_strdup(to_tag));
	return r;
fail:
	osip_message_free(r);
	return NULL;
}

osip_message_t *
sip_msg_request(const char *method, const char *ruri, const char *from,
    const char *from_tag, const char *to, const char *callid, unsigned cseq)
{
	osip_message_t *m;
	osip_uri_t *uri = NULL;
	char buf[64];
	char *hv = NULL;
	size_t n;

	if (osip_message_init(&m) != 0)
		return NULL;
	osip_message_set_method(m, osip_strdup(method));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (osip_uri_init(&uri) != 0)
		goto fail;
	if (osip_uri_parse(uri, ruri) != 0) {
		osip_uri_free(uri);
		goto fail;
	}
	osip_message_set_uri(m, uri);
	n = strlen(from) + strlen(from_tag) + 16;
	if ((hv = malloc(n)) == NULL)
		goto fail;
	snprintf(hv, n, "<%s>;tag=%s", from, from_tag);
	if (osip_message_set_from(m, hv) != 0)
		goto fail;
	free(hv);
	n = strlen(to) + 4;
	if ((hv = malloc(n)) == NULL)
		goto fail;
	snprintf(hv, n, "<%s>", to);
	if (osip_message_set_to(m, hv) != 0)
		goto fail;
	free(hv);
	hv = NULL;
	snprintf(buf, sizeof(buf), "%u %s", cseq, method);
	if (osip_message_set_call_id(m, callid) != 0 ||
	    osip_message_set_cseq(m, buf) != 0 ||
	    osip_message_set_max_forwards(m, "70") != 0)
		goto fail;
	return m;
fail:
	free(hv);
	osip_message_free(m);
	return NULL;
}

/* The value of the first header `name` (or its compact form), or NULL.
 * Borrowed from m. */
const char *
sip_msg_header(const osip_message_t *m, const char *name, const char *compact)
{
	osip_header_t *h = NULL;

	if (osip_message_header_get_byname(m, name, 0, &h) >= 0 && h != NULL)
		return h->hvalue ? h->hvalue : "";
	if (compact != NULL &&
	    osip_message_header_get_byname(m, compact, 0, &h) >= 0 && h != NULL)
		return h->hvalue ? h->hvalue : "";
	return NULL;
}

/* The first body part, borrowed from m; 0, or -1 when there is none. */
int
sip_msg_body(const osip_message_t *m, const char **body_r, size_t *len_r)
{
	osip_body_t *b;

	if (osip_list_size(&m->bodies) <= 0 ||
	    (b = osip_list_get(&m->bodies, 0)) == NULL || b->body == NULL) {
		*body_r = "";
		*len_r = 0;
		return -1;
	}
	*body_r = b->body;
	*len_r = b->length;
	return 0;
}

int
sip_msg_set_body(osip_message_t *m, const char *ctype, const char *body,
    size_t len)
{
	if (osip_message_set_content_type(m, ctype) != 0)
		return -1;
	return osip_message_set_body(m, body, len) == 0 ? 0 : -1;
}

/* The headers every request and response must carry (RFC 3261 8.1.1),
 * and a CSeq that agrees with the request line. */
int
sip_msg_check(const osip_message_t *m, const char **why_r)
{
	osip_via_t *via;

	if (osip_list_size(&m->vias) <= 0 ||
	    (via = osip_list_get(&m->vias, 0)) == NULL || via->host == NULL ||
	    via->protocol == NULL) {
		*why_r = "missing or bad Via";
		return -1;
	}
	if (m->from == NULL || m->from->url == NULL) {
		*why_r = "missing or bad From";
		return -1;
	}
	if (m->to == NULL || m->to->url == NULL) {
		*why_r = "missing or bad To";
		return -1;
	}
	if (m->call_id == NULL || m->call_id->number == NULL) {
		*why_r = "missing Call-ID";
		return -1;
	}
	if (m->cseq == NULL || m->cseq->number == NULL ||
	    m->cseq->method == NULL || strspn(m->cseq->number, "0123456789") !=
	    strlen(m->cseq->number) || strlen(m->cseq->number) > 10) {
		*why_r = "missing or bad CSeq";
		return -1;
	}
	if (MSG_IS_REQUEST(m)) {
		if (m->sip_method == NULL || m->req_uri == NULL ||
		    m->req_uri->scheme == NULL) {
			*why_r = "bad request line";
			return -1;
		}
		if (strcmp(m->sip_method, m->cseq->method) != 0) {
			*why_r = "CSeq method differs from the request method";
			return -1;
		}
	}
	return 0;
}
