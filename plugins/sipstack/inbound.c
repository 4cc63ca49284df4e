/*
 * One received message, in this order:
 *
 *   unparsable                      400 when the head alone parses as a
 *                                   request (counted sip-unparsable),
 *                                   else dropped (no Via to answer to)
 *   response                        to its client transaction, or dropped
 *   request missing mandatory
 *     headers, bad CSeq             400, stateless (RFC 3261 8.1.1, 16.3)
 *   retransmission, ACK             to its server transaction (osip answers)
 *   source not trusted              403 (address not in `trusted`, and
 *                                   no TLS certificate named in tls_names)
 *   Max-Forwards not a number       400;  0 -> 483 (OPTIONS excepted)
 *   our own Via in the request      482 Loop Detected (RFC 5393 / 3261 16.3)
 *   Require                         420 with Unsupported (RFC 3261 8.2.2.3)
 *   method not allowed              405 with Allow (INVITE too, in an IST)
 *   CANCEL                          481 (nothing of ours can be cancelled)
 *   OPTIONS                         200 with Allow, Accept (RFC 3261 11.2)
 *   anything else                   Route values naming us removed, then
 *                                   the app's request_cb, which must answer
 *
 * Every answer after the first check goes through a server transaction,
 * so retransmitted requests are absorbed by libosip2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipstack-internal.h"

int
sip_in_stateless(struct sip_stack *st, const osip_message_t *req, int code,
    int proto, const struct sockaddr_storage *src, socklen_t srclen,
    uint64_t conn_id, const char *hname, const char *hvalue)
{
	osip_message_t *r;
	char tag[24];
	int rc;

	if (osip_list_size(&req->vias) <= 0)
		return -1;
	sip_msg_tag(tag, sizeof(tag));
	if ((r = sip_msg_response(req, code, tag)) == NULL)
		return -1;
	if (hname != NULL && hvalue != NULL)
		osip_message_set_header(r, hname, hvalue);
	osip_message_set_header(r, "Server", st->user_agent);
	rc = sip_tp_send_msg(st, r, proto, conn_id ? &conn_id : NULL, src, srclen,
	    NULL);
	osip_message_free(r);
	return rc;
}

/*
 * Parse the head of a message alone (Content-Length lines removed) and
 * answer it statelessly with `code` when it is a request with the headers
 * an answer needs.
 */
static void
sip_in_answer_head(struct sip_stack *st, int proto, const char *buf, size_t len,
    const struct sockaddr_storage *src, socklen_t srclen, uint64_t conn_id,
    int code)
{
	const char *e = NULL, *line, *eol, *end;
	osip_message_t *m = NULL;
	const char *why;
	char *head, *p;

	for (line = buf, end = buf + len; line + 4 <= end; line++)
		if (memcmp(line, "\r\n\r\n", 4) == 0) {
			e = line + 2;
			break;
		}
	if (e == NULL)
		e = end;
	if ((head = malloc((size_t)(e - buf) + 3)) == NULL)
		return;
	p = head;
	for (line = buf; line < e; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(e - line));
		if (eol == NULL)
			eol = e - 1;
		if (strncasecmp(line, "content-length", 14) == 0 ||
		    strncasecmp(line, "l:", 2) == 0 || strncasecmp(line, "l :", 3) == 0)
			continue;
		memcpy(p, line, (size_t)(eol - line) + 1);
		p += eol - line + 1;
	}
	memcpy(p, "\r\n", 2);
	p += 2;
	if (osip_message_init(&m) == 0 &&
	    osip_message_parse(m, head, (size_t)(p - head)) == 0 &&
	    MSG_IS_REQUEST(m) && sip_msg_check(m, &why) == 0 &&
	    strcmp(m->sip_method, "ACK") != 0)
		(void)sip_in_stateless(st, m, code, proto, src, srclen, conn_id,
		    NULL, NULL);
	if (m != NULL)
		osip_message_free(m);
	free(head);
}

/* A message too big (513) or that cannot be framed (400). */
void
sip_in_refuse_head(struct sip_stack *st, int proto, const char *buf, size_t len,
    const struct sockaddr_storage *src, socklen_t srclen, uint64_t conn_id,
    int code)
{
	SIP_COUNT(st, code == 513 ? "sip-oversized" : "sip-malformed");
	sip_in_answer_head(st, proto, buf, len, src, srclen, conn_id, code);
}

/* received= and rport= on the top Via (RFC 3261 18.2.1, RFC 3581). */
static void
sip_in_via_fix(osip_message_t *m, const struct sockaddr_storage *src)
{
	osip_via_t *via = osip_list_get(&m->vias, 0);
	osip_generic_param_t *rport = NULL;
	char host[64], num[16];
	int port;

	if (via == NULL || sip_net_ntop((const struct sockaddr *)src, host,
	    sizeof(host), &port) == -1)
		return;
	if (via->host == NULL || strcmp(via->host, host) != 0)
		osip_via_set_received(via, osip_strdup(host));
	if (osip_via_param_get_byname(via, "rport", &rport) == 0 && rport != NULL &&
	    (rport->gvalue == NULL || rport->gvalue[0] == '\0')) {
		snprintf(num, sizeof(num), "%d", port);
		osip_free(rport->gvalue);
		rport->gvalue = osip_strdup(num);
	}
}

/* Whether one of the request's Vias is ours: it has been here before. */
static int
sip_in_looped(struct sip_stack *st, const osip_message_t *m)
{
	osip_generic_param_t *br;
	osip_via_t *via;
	int pos, port;

	for (pos = 0; !osip_list_eol(&m->vias, pos); pos++) {
		via = osip_list_get(&m->vias, pos);
		br = NULL;
		if (via == NULL || via->host == NULL ||
		    osip_via_param_get_byname(via, "branch", &br) != 0 ||
		    br == NULL || br->gvalue == NULL ||
		    strncmp(br->gvalue, SIP_BRANCH_OURS, strlen(SIP_BRANCH_OURS)) != 0)
			continue;
		port = via->port ? atoi(via->port) : 5060;
		if (strcasecmp(via->host, st->adv_host) == 0 && port == st->adv_port)
			return 1;
	}
	return 0;
}

/* Whether route URI u names this stack: the advertised host and port, or
 * a listen address. */
static int
sip_in_route_is_us(struct sip_stack *st, const osip_uri_t *u)
{
	struct sip_taddr ta;
	size_t i;
	int port;

	int numeric = sip_net_uri(u, &ta, &port);

	if (numeric == -1)
		return 0;
	port = u->port ? atoi(u->port) : ta.proto == SIP_PROTO_TLS ? 5061 : 5060;
	if (strcasecmp(u->host, st->adv_host) == 0 && port == st->adv_port)
		return 1;
	for (i = 0; numeric && i < st->cfg.nlisten; i++)
		if (sip_net_same(&ta.ss, ta.len, &st->cfg.listen[i].ss,
		    st->cfg.listen[i].len))
			return 1;
	return 0;
}

/*
 * Route headers of a request to us (we are a UA, never a proxy): the
 * leading values that name us (a pre-loaded route, or a peer's loose
 * routing that left ours on top) are removed, as a proxy removes its own
 * (RFC 3261 16.4).  Values naming someone else are left alone and not
 * followed: the Request-URI decides whether the request is for us
 * (8.2.2.1), and the app answers it like any other.
 */
static void
sip_in_routes(struct sip_stack *st, osip_message_t *m)
{
	osip_route_t *r;

	while ((r = osip_list_get(&m->routes, 0)) != NULL &&
	    r->url != NULL && sip_in_route_is_us(st, r->url)) {
		osip_list_remove(&m->routes, 0);
		osip_route_free(r);
	}
	if (osip_list_size(&m->routes) > 0) {
		SIP_COUNT(st, "sip-foreign-routes");
		SIP_LOG(st, IMGW_LOG_DEBUG, "%s with a Route to another host: not "
		    "proxied, taken by its Request-URI", m->sip_method);
	}
}

/* Whether method is in the comma-separated allow list. */
static int
sip_in_allowed(const char *allow, const char *method)
{
	size_t n = strlen(method);
	const char *p = allow;

	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ' || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

/* Which answer the stack itself gives a new request, 0 for none. */
static int
sip_in_policy(struct sip_stack *st, const osip_message_t *m,
    const struct sockaddr_storage *src, uint64_t conn_id, const char **hname,
    const char **hvalue)
{
	const char *mf;
	char *end;
	long v;

	*hname = *hvalue = NULL;
	if (!sip_net_match(st->trusted, st->cfg.ntrusted, (const struct sockaddr *)src) &&
	    !(conn_id != 0 && sip_tcp_trusted(st, conn_id)))
		return 403;
	if ((mf = sip_msg_header(m, "max-forwards", NULL)) != NULL) {
		v = strtol(mf, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end == mf || *end != '\0' || v < 0 || v > 255)
			return 400;
		if (v == 0 && !MSG_IS_OPTIONS(m))
			return 483;
	}
	if (sip_in_looped(st, m))
		return 482;
	if ((*hvalue = sip_msg_header(m, "require", NULL)) != NULL &&
	    !MSG_IS_CANCEL(m)) {
		*hname = "Unsupported";
		return 420;
	}
	if (MSG_IS_CANCEL(m))
		return 481;
	if (MSG_IS_OPTIONS(m))
		return 200;
	if (!sip_in_allowed(st->allow, m->sip_method)) {
		*hname = "Allow";
		*hvalue = st->allow;
		return 405;
	}
	return 0;
}

static void
sip_in_request(struct sip_stack *st, osip_event_t *evt, int proto,
    const struct sockaddr_storage *src, socklen_t srclen, uint64_t conn_id)
{
	osip_message_t *m = evt->sip, *r;
	osip_transaction_t *tr = NULL;
	struct sip_tx *tx;
	const char *hname, *hvalue;
	char host[64];
	int code, port;

	sip_in_via_fix(m, src);
	if ((tx = sip_match_find(st, m, 1)) != NULL) {
		SIP_COUNT(st, "sip-retransmissions-in");
		sip_tx_execute(tx, evt);
		return;
	}
	if (MSG_IS_ACK(m)) {
		osip_event_free(evt);	/* for a transaction long gone */
		return;
	}
	code = sip_in_policy(st, m, src, conn_id, &hname, &hvalue);
	if (osip_transaction_init(&tr, MSG_IS_INVITE(m) ? IST : NIST,
	    sip_stack_shard(st), m) != 0 ||
	    (tx = sip_tx_new(st, tr, SIP_TX_SERVER, proto, m)) == NULL) {
		if (tr != NULL)
			osip_transaction_free(tr);
		(void)sip_in_stateless(st, m, 500, proto, src, srclen, conn_id,
		    NULL, NULL);
		osip_event_free(evt);
		return;
	}
	tx->peer = *src;
	tx->peerlen = srclen;
	tx->conn_id = conn_id;
	if (sip_net_ntop((const struct sockaddr *)src, host, sizeof(host), &port) == 0)
		snprintf(tx->peer_text, sizeof(tx->peer_text), "%s:%s:%d",
		    proto == SIP_PROTO_TCP ? "tcp" : proto == SIP_PROTO_TLS ? "tls"
		    : "udp", host, port);
	sip_tx_execute(tx, evt);	/* now tr->orig_request is m */
	if (tx->dead || tr->orig_request == NULL)
		return;
	if (code == 403)
		SIP_LOG(st, IMGW_LOG_NOTICE, "%s from untrusted %s refused",
		    m->sip_method, tx->peer_text);
	if (code == 200) {
		if ((r = sip_srv_response((struct sip_srv *)tx, 200)) != NULL) {
			osip_message_set_header(r, "Allow", st->allow);
			osip_message_set_header(r, "Accept", st->accept);
			osip_message_set_header(r, "Accept-Language", "en");
			(void)sip_srv_reply((struct sip_srv *)tx, r);
		}
		return;
	}
	if (code != 0) {
		SIP_COUNT(st, "sip-refused");
		(void)sip_srv_reply_code((struct sip_srv *)tx, code, hname, hvalue);
		return;
	}
	sip_in_routes(st, m);
	tx->held = 1;
	st->cfg.request_cb(st->cfg.arg, (struct sip_srv *)tx, m);
}

void
sip_in_message(struct sip_stack *st, int proto, char *buf, size_t len,
    const struct sockaddr_storage *src, socklen_t srclen, uint64_t conn_id)
{
	osip_event_t *evt;
	struct sip_tx *tx;
	const char *why;
	size_t i;

	for (i = 0; i < len && (buf[i] == '\r' || buf[i] == '\n'); i++)
		;
	if (i == len)
		return;		/* a keep-alive */
	if ((evt = osip_parse(buf, len)) == NULL || evt->sip == NULL) {
		/* a body or a header libosip2 refuses (a Content-Length that
		 * is no number...): 400 if the head alone is a request */
		SIP_COUNT(st, "sip-unparsable");
		if (evt != NULL)
			osip_event_free(evt);
		sip_in_answer_head(st, proto, buf, len, src, srclen, conn_id, 400);
		return;
	}
	if (sip_msg_check(evt->sip, &why) == -1) {
		SIP_COUNT(st, "sip-malformed");
		SIP_LOG(st, IMGW_LOG_DEBUG, "malformed message: %s", why);
		if (MSG_IS_REQUEST(evt->sip) && evt->sip->sip_method != NULL &&
		    strcmp(evt->sip->sip_method, "ACK") != 0)
			(void)sip_in_stateless(st, evt->sip, 400, proto, src, srclen,
			    conn_id, "Warning", "399 imgw \"Malformed request\"");
		osip_event_free(evt);
		return;
	}
	if (MSG_IS_RESPONSE(evt->sip)) {
		if ((tx = sip_match_find(st, evt->sip, 0)) == NULL ||
		    tx->kind != SIP_TX_CLIENT) {
			SIP_COUNT(st, "sip-stray-responses");
			osip_event_free(evt);
			return;
		}
		sip_tx_execute(tx, evt);
		return;
	}
	SIP_COUNT(st, "sip-requests-in");
	sip_in_request(st, evt, proto, src, srclen, conn_id);
}
