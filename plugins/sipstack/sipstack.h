/*
 * sipstack — the SIP stack shared by imgw's SIP-based connectors (sip,
 * later aol and sametime).  A convenience library linked into each
 * connector, never into the core.
 *
 *   stack.c      the stack object, libosip2 callbacks, the timer pump
 *   inbound.c    one received message: checks, stateless answers, dispatch
 *   transport.c  UDP sockets and the send path of every transport
 *   tcp.c        TCP listeners and connections, stream framing
 *   tls.c        TLS on TCP connections (OpenSSL)
 *   msg.c        building requests and responses, header helpers
 *   net.c        "udp:HOST:PORT" specs and trusted networks
 *   addr.c       sip:/sips:/im:/pres: URIs <-> canonical addresses
 *   resolve.c    RFC 3263: SIP domain -> next hops (NAPTR, SRV, A/AAAA),
 *                static routes' host names -> addresses (cached by TTL)
 *   hops.c       next-hop lists, fail-over to the next one (RFC 3263 4.3)
 *
 * libosip2 parses and runs the RFC 3261 transaction state machines (ICT,
 * IST, NICT, NIST); this library feeds it from the core's loop through the
 * host table (socket watches and one timer), with no thread.  Everything
 * runs on the core's loop thread.
 *
 * Ownership in short: osip messages passed to sip_stack_request and
 * sip_srv_reply are taken by the stack; messages passed to callbacks are
 * borrowed for the call.  A struct sip_srv is valid from request_cb until
 * the app replies to it with a final response (or the stack is freed).
 */
#ifndef IMGW_SIPSTACK_H
#define IMGW_SIPSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <osip2/osip.h>
#include <osipparser2/osip_parser.h>

#include <imgw/imgw.h>

#include "../common/dns.h"

#define SIP_PROTO_UDP	1
#define SIP_PROTO_TCP	2
#define SIP_PROTO_TLS	3	/* parsed so it can be refused clearly */

#define SIP_MAX_LISTEN	8
#define SIP_HOST_MAX	256
#define SIP_HOPS_MAX	16	/* addresses in one next-hop list */
#define SIP_ROUTE_HOPS	8	/* next hops of one static route */

/* A transport address: proto + numeric socket address; for TLS, the
 * name the peer's certificate must carry (the SIP domain, RFC 5922). */
struct sip_taddr {
	int proto;
	struct sockaddr_storage ss;
	socklen_t len;
	char name[SIP_HOST_MAX];
};

/* A static next hop as configured: "tls:sip.partner.example:5061".  host
 * is numeric (ta is then its address) or a DNS name (ta.len 0; resolved
 * with A/AAAA when used). */
struct sip_nexthop {
	int proto;
	int port;
	char host[SIP_HOST_MAX];
	struct sip_taddr ta;
};

/*
 * An ordered list of next-hop addresses (RFC 3263 4.3): what resolution
 * of a domain or a static route gave.  Owned by the stack (its cache and
 * the requests using it); apps only hand it to sip_stack_request_hops.
 */
struct sip_hops;

/* One trusted network. */
struct sip_net {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

struct sip_stack;
struct sip_srv;		/* a server transaction the app must answer */

/*
 * A final response to a request sent with sip_stack_request, exactly once
 * per request: `resp` is borrowed for the call, NULL when the transaction
 * failed locally; then `code` is 408 (timer F/B: no answer) or 503
 * (transport error).  Otherwise code is resp's status code.
 */
typedef void (*sip_response_cb)(void *arg, int code, osip_message_t *resp);

/*
 * A new request in a new server transaction, after the stack's own checks
 * (trusted source, syntax, Max-Forwards, loops, allowed method, OPTIONS).
 * `req` is borrowed until the app replies; the app answers with
 * sip_srv_reply (now or later, from the loop).
 */
typedef void (*sip_request_cb)(void *arg, struct sip_srv *srv, osip_message_t *req);

struct sip_stack_cfg {
	struct imgw_instance *inst;		/* borrowed */
	const struct imgw_host *host;		/* borrowed */
	struct sip_taddr listen[SIP_MAX_LISTEN];
	size_t nlisten;
	const char *adv_host;		/* used in Via/Contact; copied */
	int adv_port;			/* 0: the port of the first listener */
	const struct sip_net *trusted;	/* copied; ntrusted == 0: none */
	size_t ntrusted;
	size_t max_message;		/* bytes of one message */
	size_t max_conns;		/* TCP connections */
	unsigned tcp_idle_s;		/* close idle TCP connections */
	const char *allow;		/* "MESSAGE, OPTIONS, ..." copied */
	const char *accept;		/* Accept of OPTIONS answers; copied */
	const char *user_agent;		/* copied */
	size_t max_pending;		/* client transactions before AGAIN */
	unsigned shards;		/* osip instances, 0: the default */
	/* TLS (borrowed for the stack's life): certificate chain and key
	 * (PEM; needed for tls: listeners, presented as client too), CA
	 * bundle to verify peers, verify servers' names, require client
	 * certificates, and names ("a.example b.example") whose verified
	 * certificates make a connection trusted. */
	const char *tls_cert, *tls_key, *tls_ca;
	int tls_verify;
	int tls_client_cert;
	const char *tls_names;
	sip_request_cb request_cb;
	/* Room again for client transactions after sip_stack_full said so. */
	void (*resume_cb)(void *arg);
	void *arg;
	/* The DNS server for RFC 3263 lookups (borrowed for the stack's
	 * life); NULL: sip_stack_resolve(_hops) always fails. */
	const struct plug_dns_server *dns;
	/* The DNS server for host names in static routes (borrowed for the
	 * stack's life); NULL: dns.  Both NULL: such routes fail. */
	const struct plug_dns_server *route_dns;
};

/* stack.c */
struct sip_stack *sip_stack_new(const struct sip_stack_cfg *cfg);
int sip_stack_start(struct sip_stack *st);	/* bind, watch */
/* Close listeners and connections, answer unanswered server transactions
 * with 503, fail client transactions (their callbacks run with 503). */
void sip_stack_stop(struct sip_stack *st);
void sip_stack_free(struct sip_stack *st);

/*
 * Send a request in a new client transaction (NICT; INVITE is not
 * supported).  `req` is taken (freed by the stack, also on failure); it
 * carries everything but Via, which the stack adds for `dest`'s transport
 * with a fresh branch, and Max-Forwards, added when missing.  `cb` runs
 * later, never from within this call.  Returns 0, or -1 (cb will not run).
 */
int sip_stack_request(struct sip_stack *st, osip_message_t *req,
    const struct sip_taddr *dest, sip_response_cb cb, void *arg);

/* Client transactions not finished yet. */
size_t sip_stack_pending(const struct sip_stack *st);
/* Non-zero when max_pending client transactions run; resume_cb follows
 * when they are down to half. */
int sip_stack_full(struct sip_stack *st);

/* Build a response to the server transaction's request (NULL when out of
 * memory); the caller may add headers, then hands it to sip_srv_reply. */
osip_message_t *sip_srv_response(struct sip_srv *srv, int code);
/* Send `resp` (taken).  A final response ends the app's hold on srv. */
int sip_srv_reply(struct sip_srv *srv, osip_message_t *resp);
/* Shorthand: a response with `code` and, if not NULL, one extra header. */
int sip_srv_reply_code(struct sip_srv *srv, int code, const char *hname,
    const char *hvalue);
/* Use `tag` (copied, at most 23 bytes) as the To tag of srv's responses,
 * e.g. the local tag of a dialog the request creates. */
void sip_srv_set_tag(struct sip_srv *srv, const char *tag);
/* Where the request came from, as text ("udp:1.2.3.4:5060"). */
const char *sip_srv_peer(const struct sip_srv *srv);

const char *sip_stack_adv_host(const struct sip_stack *st);
int sip_stack_adv_port(const struct sip_stack *st);
/* The port to advertise for `proto` (Contact with transport=): the
 * advertised port, unless that transport listens on a port of its own
 * (udp:H:5060 tls:H:5061), then that one. */
int sip_stack_adv_port_proto(const struct sip_stack *st, int proto);
/* The transport a server transaction's request came over. */
int sip_srv_proto(const struct sip_srv *srv);
/* The transport of a client transaction to dest, "UDP" or "TCP". */
const char *sip_proto_name(int proto);

/*
 * resolve.c: RFC 3263 — the next hops for requests to `domain`: NAPTR
 * (SIPS+D2T when TLS can verify a server, SIP+D2T, SIP+D2U; flag "s"),
 * their SRV records, else SRV of _sips._tcp (same condition), _sip._tcp,
 * _sip._udp; then A/AAAA of the targets; without SRV the domain itself on
 * UDP 5060.  Returns 1 with *hops_r from the cache (borrowed: hand it to
 * sip_stack_request_hops before returning to the loop); 0 when a lookup
 * runs: cb runs later, exactly once (from the loop, or from
 * sip_stack_stop), with hops (borrowed for the call) or NULL and why; -1
 * with *why_r (borrowed until the next call) when there is no answer.
 */
typedef void (*sip_hops_cb)(void *arg, struct sip_hops *hops, const char *why);
int sip_stack_resolve_hops(struct sip_stack *st, const char *domain,
    struct sip_hops **hops_r, sip_hops_cb cb, void *arg, const char **why_r);
/* The same for a static route's next hops (nh[0..n), copied): numeric
 * ones as they are, names through A/AAAA (cfg.route_dns), in order; the
 * answer is cached for the shortest TTL (routes with numeric hosts only
 * answer 1 at once). */
int sip_stack_route(struct sip_stack *st, const struct sip_nexthop *nh, size_t n,
    struct sip_hops **hops_r, sip_hops_cb cb, void *arg, const char **why_r);
/*
 * The first address only, for requests that do not fail over (in-dialog
 * ones): as sip_stack_resolve_hops, with *ta_r (or cb's ta, borrowed for
 * the call) the list's first address and ta.name the domain (for RFC 5922
 * checks over TLS).
 */
typedef void (*sip_resolve_cb)(void *arg, const struct sip_taddr *ta,
    const char *why);
int sip_stack_resolve(struct sip_stack *st, const char *domain,
    struct sip_taddr *ta_r, sip_resolve_cb cb, void *arg, const char **why_r);

/*
 * hops.c: send `req` (taken, as sip_stack_request) to the first address
 * of `hops` (a reference is kept) not marked down, over TLS checking
 * `name` (copied; RFC 5922).  When the transaction fails locally (a
 * transport error: connection refused, TLS handshake failure, 503; or a
 * timeout: 408) or the peer answers 503, the address is marked down for a
 * while (30 s; a 503's Retry-After, at most 300 s) and the same request
 * goes again with a new branch to the next address (RFC 3263 4.3),
 * counted as sip-failovers.  `cb` runs once, with the last attempt's
 * answer.  Returns 0, or -1 when no address took the request (cb will not
 * run).
 */
int sip_stack_request_hops(struct sip_stack *st, osip_message_t *req,
    struct sip_hops *hops, const char *name, sip_response_cb cb, void *arg);
/* The number of addresses of hops, and the i-th one (borrowed). */
size_t sip_hops_count(const struct sip_hops *hops);
const struct sip_taddr *sip_hops_get(const struct sip_hops *hops, size_t i);

/* msg.c */
osip_message_t *sip_msg_response(const osip_message_t *req, int code,
    const char *to_tag);
osip_message_t *sip_msg_request(const char *method, const char *ruri,
    const char *from, const char *from_tag, const char *to,
    const char *callid, unsigned cseq);
const char *sip_msg_header(const osip_message_t *m, const char *name,
    const char *compact);
int sip_msg_body(const osip_message_t *m, const char **body_r, size_t *len_r);
int sip_msg_set_body(osip_message_t *m, const char *ctype, const char *body,
    size_t len);
int sip_msg_tag(char *buf, size_t len);
int sip_msg_check(const osip_message_t *m, const char **why_r);
/*
 * Dialog routing (RFC 3261 12).  A route set is one string, its URIs one
 * per line.  sip_msg_route_set: m's Record-Route as a route set, reversed
 * when `reverse` (m answers our request); *set_r is malloc'ed (the caller
 * frees) or NULL when m has none.  sip_msg_route: the Route headers and
 * Request-URI (loose or strict routing) of request m, built with the
 * remote target as Request-URI; `routes` is borrowed, NULL or "" leaves m
 * as it is.  Both 0, or -1.
 */
int sip_msg_route_set(const osip_message_t *m, int reverse, char **set_r);
int sip_msg_route(osip_message_t *m, const char *routes);

/* net.c */
int sip_net_taddr(const char *spec, struct sip_taddr *ta, const char **why_r);
/* "udp|tcp|tls:HOST:PORT" with HOST numeric or a DNS name; 0, or -1 and why. */
int sip_net_nexthop(const char *spec, struct sip_nexthop *nh, const char **why_r);
int sip_net_hostport(const char *s, int proto, struct sip_taddr *ta);
int sip_net_cidr(const char *spec, struct sip_net *n);
int sip_net_match(const struct sip_net *nets, size_t n,
    const struct sockaddr *sa);
int sip_net_ntop(const struct sockaddr *sa, char *buf, size_t len, int *port_r);
/* Where a request to URI u goes: 1 numeric (*ta), 0 a name for the caller
 * to look up (ta->proto, *port_r or 0), -1 unusable. */
int sip_net_uri(const osip_uri_t *u, struct sip_taddr *ta, int *port_r);
int sip_net_same(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen);

/* addr.c: URIs <-> canonical addresses (RFC 7247 section 6). */
int sip_addr_from_uri(const osip_uri_t *uri, char *buf, size_t len,
    const char **why_r);
int sip_addr_to_uri(const char *addr, char *buf, size_t len);
int sip_addr_domain(const osip_uri_t *uri, char *buf, size_t len);

#endif /* IMGW_SIPSTACK_H */
