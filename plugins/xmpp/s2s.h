/*
 * xmpp connector, server-to-server mode (RFC 6120 s2s) — private
 * declarations of the s2s files.
 *
 *   s2s.c         options of the mode, start/stop, the listener, routing
 *                 a stanza to the outbound stream of its (from, to) domains
 *   s2s-stream.c  one XML stream on a TCP socket: expat parser building
 *                 libstrophe stanza objects, output buffer, STARTTLS switch,
 *                 stream headers, stream errors, limits
 *   s2s-in.c      inbound streams: features, STARTTLS, SASL EXTERNAL,
 *                 dialback (receiving and authoritative roles), stanzas
 *   s2s-out.c     outbound streams per (local domain, peer domain): connect,
 *                 STARTTLS, SASL EXTERNAL or dialback, queue, bounce
 *   dialback.c    XEP-0185 dialback keys
 *   tls.c         OpenSSL contexts and peer certificate checks
 *   pin.c         pinned peer certificates (`pin` option)
 *   (DNS: plugins/common/dns.c, SRV and A/AAAA lookups on the loop)
 *
 * Everything runs on the core's loop thread.  libstrophe is used only for
 * its stanza objects (xmpp_stanza_t), so stanza-in.c and stanza-out.c map
 * s2s stanzas exactly as they map component stanzas; libstrophe's own
 * connections are not used in this mode (it speaks only c2s and component
 * streams: see README, "Server-to-server").
 */
#ifndef IMGW_PLUGIN_XMPP_S2S_H
#define IMGW_PLUGIN_XMPP_S2S_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <expat.h>
#include <openssl/ssl.h>

#include "xmpp.h"
#include "../common/dns.h"

#define XS_DOMAIN_MAX		255	/* DNS name, bytes */
#define XS_DOMAINS_MAX		32	/* local-domains, peers */
#define XS_AUTHED_MAX		8	/* domains one inbound stream may carry */
#define XS_STREAM_TIMEOUT_MS	30000	/* open + TLS + auth must be done by then */
#define XS_IDLE_MS		600000	/* an outbound stream idle this long closes */
#define XS_CLOSE_WAIT_MS	2000	/* after our </stream:stream> or error */
#define XS_DEPTH_MAX		64
#define XS_STREAMS_MAX		512	/* inbound streams at once */
#define XS_QUEUE_MAX		4096	/* stanzas waiting for one outbound stream */
#define XS_DB_ID_MAX		1023	/* longest stream id we make a key for */
#define XS_PINS_MAX		64	/* `pin` entries */
#define XS_ADDRS_MAX		16	/* addresses tried per link set-up */

#define XS_NS_STREAM	"http://etherx.jabber.org/streams"
#define XS_NS_SERVER	"jabber:server"
#define XS_NS_DB	"jabber:server:dialback"
#define XS_NS_DB_FEAT	"urn:xmpp:features:dialback"
#define XS_NS_TLS	"urn:ietf:params:xml:ns:xmpp-tls"
#define XS_NS_SASL	"urn:ietf:params:xml:ns:xmpp-sasl"
#define XS_NS_STREAMS	"urn:ietf:params:xml:ns:xmpp-streams"
#define XS_NS_XML	"http://www.w3.org/XML/1998/namespace"

enum xs_dir {
	XS_IN = 0,	/* a peer connected to our listener */
	XS_OUT,		/* we connected to a peer */
};

enum xs_phase {
	XS_CONNECTING = 0,	/* outbound TCP connect running */
	XS_OPEN,		/* XML stream running (before or after TLS) */
	XS_TLS,			/* TLS handshake running */
	XS_CLOSING,		/* we said </stream:stream>; waiting, then close */
	XS_DEAD,		/* closed, waiting to be freed */
};

/* Bytes waiting for the socket (plain or TLS). */
struct xs_buf {
	char *p;
	size_t len, off, cap;
};

struct xs;
struct xs_peer;
/* The addresses of a link are struct plug_dns_addr (plugins/common/dns.h):
 * socket address, port, and "host[address]:port" for logs. */

/* One XML stream on one socket. */
struct xs_stream {
	struct xs *s;
	enum xs_dir dir;
	enum xs_phase phase;
	struct xs_stream *next;		/* inbound list (s->in) */
	struct xs_peer *peer;		/* outbound: its owner */
	int fd;
	struct imgw_watch *watch;
	int want;
	int tls_want_write;		/* OpenSSL waits for the socket to write */
	struct imgw_timer *timer;	/* time-out, close wait */
	char addr[300];		/* peer address text, for logs */

	SSL *ssl;			/* NULL until STARTTLS */
	int tls_done;			/* handshake finished */
	int tls_verified;		/* peer chain verified by the CA */
	char tls_why[160];		/* why not, for logs */

	XML_Parser xp;
	int depth;			/* 0 before the header, 1 inside */
	int header_sent, header_got;
	int restart;			/* reset the parser after this chunk */
	int tls_start;			/* start TLS after this chunk */
	xmpp_stanza_t *top;		/* stanza being built (depth >= 2) */
	xmpp_stanza_t *cur;		/* its innermost open element */
	xmpp_stanza_t *path[XS_DEPTH_MAX + 3];	/* open elements by depth */
	size_t top_bytes;		/* its size so far */
	uint64_t fed, mark;		/* bytes given to expat; at the last event */
	int failed;			/* stream error sent, ignore input */
	int tcp_up;			/* outbound: the TCP connect completed */

	struct xs_buf out;
	char id[48];			/* stream id: ours (in) or the peer's (out) */
	char local[XS_DOMAIN_MAX + 1];	/* our domain on this stream */
	char remote[XS_DOMAIN_MAX + 1];	/* the peer's domain, "" unknown */
	int sasl_done;
	/* inbound: domains authenticated on this stream (SASL or dialback) */
	char authed[XS_AUTHED_MAX][XS_DOMAIN_MAX + 1];
	int nauthed;
	/* outbound */
	int features_seen;
	int auth_sent;			/* db:result or SASL auth sent */
	int authed_out;			/* the peer accepted us */
	int external_failed;
};

/* A stanza waiting for its outbound stream, with what a bounce needs. */
struct xs_item {
	struct xs_item *next;
	int bounce;			/* 0 for errors and iq results */
	char *from, *to, *id;		/* malloc'ed, id may be NULL */
	enum xc_stanza_kind kind;
	size_t len;
	char text[];
};

/* Outbound link (local domain -> peer domain): at most one stream. */
struct xs_peer {
	struct xs_peer *next;
	struct xs *s;
	char local[XS_DOMAIN_MAX + 1];
	char remote[XS_DOMAIN_MAX + 1];
	struct xs_stream *st;		/* NULL when none is open */
	struct xs_item *q, *q_tail;
	size_t qlen;
	/* db:verify requests waiting for this stream to open:
	 * inbound stream id + key, sent once the stream is open */
	struct xs_verify *verify;
	struct imgw_timer *timer;	/* bounce off the stack */
	const char *bounce_cond;	/* static; NULL: nothing to bounce */
	char bounce_why[640];
	/* where the stream goes: a `peer` route or DNS (plugins/common/dns.c) */
	struct plug_dns *dns;		/* lookup running, or NULL */
	struct plug_dns_addr addrs[XS_ADDRS_MAX];
	int naddrs, addr_next;		/* addr_next: the next one to try */
	char last_why[640];		/* why the last address failed */
};

/* A dialback key to check with an authoritative server (we receive). */
struct xs_verify {
	struct xs_verify *next;
	char in_id[48];			/* the inbound stream it authenticates */
	char from[XS_DOMAIN_MAX + 1];	/* originating (peer) domain */
	char to[XS_DOMAIN_MAX + 1];	/* our domain */
	int sent;
	char key[];
};

/* Static route for a peer domain (`peer = dom=host:port`). */
struct xs_route {
	char domain[XS_DOMAIN_MAX + 1];
	char host[XS_DOMAIN_MAX + 1];
	unsigned short port;
};

/* A pinned certificate of a peer domain (`pin`, pin.c). */
struct xs_pin {
	char domain[XS_DOMAIN_MAX + 1];
	unsigned char hash[32];		/* SHA-256 of SPKI or certificate */
};

struct xs {
	struct xc *x;

	/* options */
	char local[XS_DOMAINS_MAX][XS_DOMAIN_MAX + 1];
	int nlocal;
	struct xs_route routes[XS_DOMAINS_MAX];
	int nroutes;
	struct sockaddr_storage laddr;
	socklen_t laddr_len;
	const char *listen;		/* borrowed option text */
	const char *tls_cert, *tls_key, *tls_ca;	/* borrowed, may be NULL */
	int allow_plaintext;
	int tls_verify;			/* refuse peers whose certificate fails */
	int sasl_external;
	unsigned char db_secret[32];	/* SHA-256 of the dialback secret */
	struct xs_pin pins[XS_PINS_MAX];
	int npins;
	struct plug_dns_server dns;	/* option dns-server (plugins/common/dns.c) */

	/* run time */
	SSL_CTX *srv_ctx, *cli_ctx;
	int lfd;
	struct imgw_watch *lwatch;
	struct xs_stream *in;
	int nin;
	struct xs_stream *dead;		/* killed, freed by the reaper */
	struct xs_peer *peers;
	struct imgw_timer *reaper;	/* frees dead streams off the stack */
	unsigned long ids;
};

#define XS_LOG(s, lvl, ...)	XC_LOG((s)->x, lvl, __VA_ARGS__)
#define XS_COUNT(s, name)	XC_COUNT((s)->x, name)

/* s2s.c */
int xs_init(struct xc *x);
int xs_start(struct xc *x);
void xs_stop(struct xc *x);
void xs_fini(struct xc *x);
int xs_send(struct xc *x, xmpp_stanza_t *st);
int xs_is_local(const struct xs *s, const char *domain, size_t n);
const struct xs_route *xs_route_find(const struct xs *s, const char *domain);
void xs_reap_soon(struct xs *s);

/* s2s-stream.c */
struct xs_stream *xs_stream_new(struct xs *s, enum xs_dir dir, int fd,
    const char *addr);
int xs_stream_watch(struct xs_stream *st);
void xs_stream_write(struct xs_stream *st, const char *data, size_t len);
void xs_stream_printf(struct xs_stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void xs_stream_stanza(struct xs_stream *st, xmpp_stanza_t *el);
void xs_stream_header(struct xs_stream *st, const char *from, const char *to,
    const char *id);
void xs_stream_error(struct xs_stream *st, const char *cond, const char *text);
void xs_stream_close(struct xs_stream *st, const char *why);
void xs_stream_kill(struct xs_stream *st, const char *why);
void xs_stream_free(struct xs_stream *st);
void xs_stream_timeout(struct xs_stream *st, unsigned int ms);
int xs_stream_tls(struct xs_stream *st, int server);
void xs_stream_event_cb(int fd, int what, void *arg);
int xs_domain_of(const char *jid, char *out, size_t outlen);
int xs_attr_is(xmpp_stanza_t *el, const char *name, const char *val);

/* s2s-in.c */
void xs_in_accept(struct xs *s, int fd, const char *addr);
void xs_in_header(struct xs_stream *st, const char **attrs);
void xs_in_element(struct xs_stream *st, xmpp_stanza_t *el);
void xs_in_tls_done(struct xs_stream *st);
void xs_in_verified(struct xs *s, const char *in_id, const char *from,
    const char *to, int valid);

/* s2s-out.c */
struct xs_peer *xs_peer_get(struct xs *s, const char *local, const char *remote);
int xs_out_queue(struct xs_peer *p, const char *text, size_t len,
    xmpp_stanza_t *st);
void xs_out_verify(struct xs_peer *p, const char *in_id, const char *key);
void xs_out_header(struct xs_stream *st, const char **attrs);
void xs_out_element(struct xs_stream *st, xmpp_stanza_t *el);
void xs_out_connected(struct xs_stream *st);
void xs_out_tls_done(struct xs_stream *st);
void xs_out_lost(struct xs_stream *st, const char *why);
void xs_peers_free(struct xs *s);
void xs_peers_idle(struct xs *s);

/* dialback.c */
int xs_db_secret(struct xs *s, const char *secret);
void xs_db_key(const struct xs *s, const char *receiving, const char *originating,
    const char *id, char out[65]);
int xs_db_check(const struct xs *s, const char *receiving, const char *originating,
    const char *id, const char *key);

/* tls.c */
int xs_tls_init(struct xs *s);
void xs_tls_free(struct xs *s);
SSL *xs_tls_new(struct xs *s, int fd, int server, const char *sni);
int xs_tls_peer_ok(struct xs_stream *st, const char *domain, char *why,
    size_t whylen);

/* pin.c */
int xs_pin_parse(struct xs *s, const char *list);
int xs_pin_has(const struct xs *s, const char *domain);
int xs_pin_ok(const struct xs *s, const char *domain, X509 *cert, char *why,
    size_t whylen);
int xs_tls_pin_ok(struct xs_stream *st, const char *domain, char *why, size_t whylen);

#endif /* IMGW_PLUGIN_XMPP_S2S_H */
