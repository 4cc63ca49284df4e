/*
 * xmpp connector — private declarations shared by its files.
 *
 *   xmpp.c        descriptor, options, init/start/deliver/stop/fini
 *   conn.c        the libstrophe context and component stream on the core's
 *                 loop: socket watch, tick, handshake, reconnect back-off,
 *                 and the libstrophe component-mode workaround
 *   outq.c        stanzas written but not yet confirmed by the server:
 *                 ping barriers, resend after a reconnect, back-pressure
 *   jid.c         XEP-0106 escaping; JIDs <-> the core's canonical addresses
 *   stanza-in.c   stanzas from the server -> events (or stanza errors back)
 *   stanza-out.c  events -> stanzas; stanza errors; ids of stanzas we emitted
 *   disco.c       iq addressed to the component domain: disco#info,
 *                 disco#items, ping
 *   subs.c        subscriptions kept in the store (ABI 1.1), last presences:
 *                 subscribes and probes the gateway answers itself
 *   s2s*.c, dialback.c, tls.c   server-to-server mode (s2s.h)
 *
 * libstrophe's names start with xmpp_; ours start with xc_.  Everything runs
 * on the core's loop thread; nothing here locks.
 */
#ifndef IMGW_PLUGIN_XMPP_H
#define IMGW_PLUGIN_XMPP_H

#include <stddef.h>
#include <stdint.h>

#include <strophe.h>

#include <imgw/imgw.h>

#define XC_JID_PART_MAX		1023	/* RFC 7622: bytes per JID part */
#define XC_JID_MAX		(3 * XC_JID_PART_MAX + 3)
#define XC_TICK_MS		250	/* libstrophe's timed handlers */
#define XC_ACK_DELAY_MS		5	/* coalesce stanzas before a barrier */
#define XC_ACK_BATCH		32	/* stanzas that force a barrier at once */
#define XC_ACK_TIMEOUT_MS	30000	/* unanswered barrier: the link is dead */
#define XC_IDLE_PING_MS		60000	/* barrier on an idle stream */
#define XC_OUTQ_MAX		4096	/* unconfirmed stanzas before AGAIN */
#define XC_OUTQ_MAX_BYTES	(16u << 20)
#define XC_IDS			1024	/* ids of emitted stanzas remembered */
#define XC_ID_MAX		128	/* longer ids are not remembered */
#define XC_ACK_PREFIX		"imgw-ack-"

/* Namespaces. */
#define XC_NS_STANZAS		"urn:ietf:params:xml:ns:xmpp-stanzas"
#define XC_NS_CHATSTATES	"http://jabber.org/protocol/chatstates"
#define XC_NS_DISCO_INFO	"http://jabber.org/protocol/disco#info"
#define XC_NS_DISCO_ITEMS	"http://jabber.org/protocol/disco#items"
#define XC_NS_PING		"urn:xmpp:ping"
#define XC_NS_HINTS		"urn:xmpp:hints"

enum xc_state {
	XC_IDLE = 0,		/* no stream; a reconnect may be scheduled */
	XC_CONNECTING,		/* TCP connect or XEP-0114 handshake running */
	XC_UP,			/* handshake done, host->ready called */
};

/* Kinds of stanza an emitted event came from, to answer its errors with
 * the right element. */
enum xc_stanza_kind {
	XC_ST_MESSAGE = 0,
	XC_ST_PRESENCE,
	XC_ST_IQ,
};

/* One stanza written to the stream and not yet confirmed. */
struct xc_out {
	struct xc_out *next;
	uint64_t seq;
	size_t len;
	char text[];		/* serialized stanza, NUL terminated */
};

struct xc_id {
	char id[XC_ID_MAX];
	enum xc_stanza_kind kind;
};

struct xs;	/* s2s.h */
struct xc_subs;	/* subs.c */

struct xc {
	struct imgw_instance *inst;
	const struct imgw_host *host;

	/* options */
	const char *server;		/* borrowed from the host */
	unsigned short port;
	char *component;		/* lower case */
	const char *secret;		/* borrowed, or NULL when from a file */
	const char *secret_file;	/* borrowed */
	char *secret_buf;		/* secret read from secret_file */
	unsigned int backoff_min, backoff_max;
	size_t max_stanza;

	/* libstrophe */
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	int fd;				/* socket libstrophe made, or -1 */
	struct imgw_watch *watch;
	int want;			/* interest the watch has now */
	struct imgw_timer *tick;
	struct imgw_timer *retry;	/* reconnect after back-off */
	unsigned int backoff;		/* next delay */
	enum xc_state state;
	int stopping;
	int pumping;			/* inside xmpp_run_once */
	unsigned long attempts;		/* connection attempts since up */
	int down_reported;		/* host->down said for this outage */
	char last_why[256];		/* why the last attempt failed */

	/* unconfirmed output (outq.c) */
	struct xc_out *outq, *outq_tail;
	size_t outq_len, outq_bytes;
	uint64_t out_seq;		/* seq of the last stanza written */
	uint64_t ack_sent;		/* seq covered by the newest barrier */
	uint64_t ack_got;		/* seq the server confirmed */
	uint64_t ack_sent_ms;		/* when the oldest open barrier left */
	int ack_open;			/* barriers in flight */
	struct imgw_timer *ack_timer;
	int again;			/* deliver said AGAIN, resume owed */

	/* server-to-server mode (s2s.h); NULL in component mode.  The shared
	 * stanza code reaches it only through these two hooks (set by
	 * xs_init), so it builds without the s2s files (tests/fuzz). */
	struct xs *s2s;
	int (*s2s_send)(struct xc *x, xmpp_stanza_t *st);
	int (*s2s_is_local)(const struct xc *x, const char *domain, size_t n);

	/* subscriptions and last presences (subs.c); NULL before start */
	struct xc_subs *subs;

	/* ids of stanzas we emitted (stanza-out.c) */
	struct xc_id ids[XC_IDS];
	size_t ids_next;
};

#define XC_LOG(x, lvl, ...) \
	(x)->host->log((x)->inst, (lvl), NULL, __VA_ARGS__)
#define XC_COUNT(x, name) \
	(x)->host->counter_add((x)->inst, (name), 1)

/* conn.c */
int xc_conn_setup(struct xc *x);
int xc_conn_start(struct xc *x, int later);
void xc_conn_go(struct xc *x);
void xc_conn_stop(struct xc *x);
void xc_conn_free(struct xc *x);
void xc_conn_kick(struct xc *x);
void xc_conn_drop(struct xc *x, const char *why);
uint64_t xc_now_ms(void);

/* outq.c */
int xc_outq_send(struct xc *x, xmpp_stanza_t *st);
int xc_outq_full(const struct xc *x);
void xc_outq_ack(struct xc *x, uint64_t seq);
int xc_outq_is_ack(struct xc *x, xmpp_stanza_t *st);
void xc_outq_resend(struct xc *x);
void xc_outq_check(struct xc *x);
void xc_outq_free(struct xc *x);

/* jid.c */
int xc_escape(const char *in, size_t n, char *out, size_t outlen);
int xc_unescape(const char *in, size_t n, char *out, size_t outlen);
int xc_jid_split(const char *jid, struct imgw_addr_parts *p);
int xc_jid_domain_is(const char *jid, const char *domain);
int xc_addr_to_gwjid(const struct xc *x, const char *addr, char *out, size_t outlen);
int xc_gwjid_to_addr(const struct xc *x, const char *jid, char *out, size_t outlen,
    const char **why_r);
int xc_addr_to_jid(const struct xc *x, const char *addr, char *out, size_t outlen,
    const char **why_r);

/* stanza-in.c */
int xc_in_stanza_cb(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg);
void xc_in_stanza(struct xc *x, xmpp_stanza_t *st);
size_t xc_stanza_size(xmpp_stanza_t *st, size_t limit);

/* stanza-out.c */
int xc_out_event(struct xc *x, const struct imgw_event *ev, const char **condition_r);
void xc_out_error_reply(struct xc *x, xmpp_stanza_t *orig, const char *condition,
    const char *text);
xmpp_stanza_t *xc_error_new(struct xc *x, const char *name, const char *from,
    const char *to, const char *id, const char *condition, const char *text);
void xc_ids_remember(struct xc *x, const char *id, enum xc_stanza_kind kind);
const char *xc_error_type(const char *condition);
int xc_condition_known(const char *condition);
xmpp_stanza_t *xc_child_text(xmpp_ctx_t *ctx, const char *name, const char *ns,
    const char *text);

/* subs.c */
int xc_subs_start(struct xc *x, void (*loaded_cb)(struct xc *x));
void xc_subs_stop(struct xc *x);
void xc_subs_free(struct xc *x);
int xc_subs_in(struct xc *x, xmpp_stanza_t *st, const struct imgw_event *ev);
int xc_subs_out(struct xc *x, const struct imgw_event *ev);
void xc_subs_note(struct xc *x, const struct imgw_event *ev, int inbound);

/* disco.c */
void xc_disco_iq(struct xc *x, xmpp_stanza_t *iq);

#endif /* IMGW_PLUGIN_XMPP_H */
