/*
 * Building and reading osip messages.  Strings handed to osip are
 * allocated with osip_strdup: osip frees them with its own allocator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* Every Record-Route value of req onto r, in order. */
static int
sip_msg_copy_rr(const osip_message_t *req, osip_message_t *r)
{
	osip_record_route_t *rr, *copy;
	int pos;

	for (pos = 0; !osip_list_eol(&req->record_routes, pos); pos++) {
		rr = osip_list_get(&req->record_routes, pos);
		if (osip_record_route_clone(rr, &copy) != 0)
			return -1;
		osip_list_add(&r->record_routes, copy, -1);
	}
	return 0;
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
	/* RFC 3261 12.1.1: a response that may set up a dialog carries the
	 * request's Record-Route values, in order, so the proxies that
	 * record-routed learn of the dialog; error answers need none */
	if (code > 100 && code < 300 && sip_msg_copy_rr(req, r) == -1)
		goto fail;
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

/*
 * The route set a dialog takes from m's Record-Route (RFC 3261 12.1.1,
 * 12.1.2): its URIs (parameters kept, header parameters not) in order
 * when m is a request we answer as UAS, reversed when m answers our
 * request, as one malloc'ed string with the URIs separated by '\n' (SIP
 * URIs hold no raw line feed).  *set_r is NULL when m has no
 * Record-Route.  0, or -1.
 */
int
sip_msg_route_set(const osip_message_t *m, int reverse, char **set_r)
{
	int n = osip_list_size(&m->record_routes), i;
	osip_record_route_t *rr;
	char *u, *set = NULL, *grown;
	size_t len = 0, ul;

	*set_r = NULL;
	for (i = 0; i < n; i++) {
		rr = osip_list_get(&m->record_routes, reverse ? n - 1 - i : i);
		u = NULL;
		if (rr == NULL || rr->url == NULL || osip_uri_to_str(rr->url, &u) != 0)
			goto fail;
		ul = strlen(u);
		if ((grown = realloc(set, len + ul + 2)) == NULL) {
			osip_free(u);
			goto fail;
		}
		set = grown;
		if (len > 0)
			set[len++] = '\n';
		memcpy(set + len, u, ul + 1);
		len += ul;
		osip_free(u);
	}
	*set_r = set;
	return 0;
fail:
	free(set);
	return -1;
}

/* A parsed copy of the first line of a route set. */
static osip_uri_t *
sip_msg_first_route(const char *routes)
{
	size_t n = strcspn(routes, "\n");
	osip_uri_t *u = NULL;
	char *one;

	if ((one = strndup(routes, n)) == NULL || osip_uri_init(&u) != 0) {
		free(one);
		return NULL;
	}
	if (osip_uri_parse(u, one) != 0) {
		osip_uri_free(u);
		u = NULL;
	}
	free(one);
	return u;
}

/* A Route header with the n bytes of uri. */
static int
sip_msg_add_route(osip_message_t *m, const char *uri, size_t n)
{
	char *hv;
	int rc;

	if ((hv = malloc(n + 3)) == NULL)
		return -1;
	snprintf(hv, n + 3, "<%.*s>", (int)n, uri);
	rc = osip_message_set_route(m, hv) == 0 ? 0 : -1;
	free(hv);
	return rc;
}

/*
 * The Request-URI and Route headers of a request inside a dialog (RFC
 * 3261 12.2.1.1), m built with the remote target as Request-URI.  An
 * empty route set (NULL or "") changes nothing.  A loose first route
 * (;lr): Route headers for the whole set.  A strict one: it becomes the
 * Request-URI (without method parameter and headers, 19.1.1), the rest
 * of the set are Route headers and the remote target the last one.
 * Either way the request goes to the first route (8.1.2).  0, or -1.
 */
int
sip_msg_route(osip_message_t *m, const char *routes)
{
	osip_uri_param_t *lr = NULL, *mp;
	osip_uri_t *first;
	const char *p, *nl;
	char *target = NULL;
	int pos, strict;

	if (routes == NULL || routes[0] == '\0')
		return 0;
	if ((first = sip_msg_first_route(routes)) == NULL)
		return -1;
	strict = osip_uri_uparam_get_byname(first, "lr", &lr) != 0 || lr == NULL;
	p = routes;
	if (strict) {
		if (m->req_uri == NULL || osip_uri_to_str(m->req_uri, &target) != 0) {
			osip_uri_free(first);
			return -1;
		}
		for (pos = 0; !osip_list_eol(&first->url_params, pos);) {
			mp = osip_list_get(&first->url_params, pos);
			if (mp->gname != NULL && strcasecmp(mp->gname, "method") == 0) {
				osip_list_remove(&first->url_params, pos);
				osip_uri_param_free(mp);
			} else {
				pos++;
			}
		}
		osip_uri_header_freelist(&first->url_headers);
		osip_uri_free(m->req_uri);
		m->req_uri = NULL;
		osip_message_set_uri(m, first);
		first = NULL;
		p += strcspn(p, "\n");
		p += *p == '\n';
	}
	osip_uri_free(first);
	for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		if (nl > p && sip_msg_add_route(m, p, (size_t)(nl - p)) == -1)
			goto fail;
	}
	if (target != NULL && sip_msg_add_route(m, target, strlen(target)) == -1)
		goto fail;
	osip_free(target);
	return 0;
fail:
	osip_free(target);
	return -1;
}
