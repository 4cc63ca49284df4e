/*
 * sip connector — a SIP/SIMPLE community (RFC 3428 MESSAGE, RFC 3994
 * isComposing; RFC 7247 addresses and errors) on the sipstack library.
 *
 *   sip.c       descriptor, options, init/start/deliver/stop/fini
 *   opts.c      listen, advertise, route, dns and trusted options
 *   in.c        requests from SIP peers -> events
 *   out.c       events -> SIP requests, their answers -> error events
 *   errmap.c    SIP status codes <-> RFC 6120 conditions (RFC 7247 s7)
 *   body.c      MESSAGE bodies: content types, charsets (iconv)
 *   iscomposing.c  application/im-iscomposing+xml (expat) <-> chat states
 *   pidf.c      PIDF/RPID documents (expat) <-> presence (RFC 8048)
 *   sub.c       the subscription table, dialogs, in-dialog requests
 *   sub-out.c   our watchers' subscriptions to SIP presentities
 *   sub-in.c    SIP watchers' subscriptions to our presentities
 *   sub-store.c subscriptions kept in the core's store (ABI 1.1)
 *   keepalive.c OPTIONS keep-alive of the route peers
 *
 * Everything runs on the core's loop thread.
 */
#ifndef IMGW_PLUGIN_SIP_H
#define IMGW_PLUGIN_SIP_H

#include <stddef.h>

#include <imgw/imgw.h>

#include "../sipstack/sipstack.h"

#define SIP_ADDR_MAX	3200	/* canonical address, bytes incl. NUL */
#define SIP_URI_MAX	(3 * SIP_ADDR_MAX + 16)
#define SIP_MAX_ROUTES	256
#define SIP_MAX_TRUSTED	256

#define SIP_ACCEPT	"text/plain, application/im-iscomposing+xml"

/* RFC 3994: a receiver waits 120 s for the refresh of an active state
 * whose document gives no <refresh> */
#define SIP_ISC_DEFAULT_REFRESH_S	120

struct sip_route {
	char *domain;			/* lower case, or "*" */
	struct sip_nexthop *hops;	/* SIP_ROUTE_HOPS, nhops used; owned */
	size_t nhops;
	struct sip_taddr ta;		/* the first hop when numeric, else len 0:
					 * keep-alive and dialogs (sub.c) use it */
	int down;			/* keep-alive: the peer does not answer */
};

/* One request sent for an event; the answer may become an error event. */
struct sip_pend {
	struct sipc *sc;
	enum imgw_kind kind;
	uint64_t sub_id;		/* a subscription's request, else 0 */
	int expires;			/* SUBSCRIBE: what was asked */
	char *from, *to, *id, *thread;	/* copies from the event */
	char trace[40];
	char name[SIP_HOST_MAX];	/* the `to` domain: TLS checks it (RFC 5922) */
	osip_message_t *req;		/* held while its next hop is looked up */
	sip_response_cb cb;		/* subscriptions: where the answer goes */
	struct sip_pend *prev, *next;
};

/* A MESSAGE from SIP waiting for a quick answer from the core. */
struct sip_hold {
	struct sipc *sc;
	struct sip_srv *srv;
	struct imgw_timer *timer;
	char trace[40];
	struct sip_hold *prev, *next;
};

enum sip_sub_dir { SIP_SUB_OUT = 1, SIP_SUB_IN };
enum sip_sub_state {
	SIP_SUBST_INIT = 0, SIP_SUBST_PENDING, SIP_SUBST_ACTIVE, SIP_SUBST_TERMINATED
};

/*
 * One presence subscription and its dialog (RFC 6665).  OUT: a watcher of
 * ours subscribes to a SIP presentity (we send SUBSCRIBE, get NOTIFY); IN:
 * a SIP watcher subscribes to a presentity of ours (the reverse).  All
 * strings are owned by the sub; it is freed by sip_sub_free only.
 */
struct sip_sub {
	struct sipc *sc;
	uint64_t id;
	enum sip_sub_dir dir;
	char *watcher, *presentity;	/* canonical, bare */
	char *callid, *ltag, *rtag;	/* rtag NULL until known */
	char *luri, *ruri;		/* our and their URI (From / To) */
	char *target;			/* remote target (Contact), NULL: ruri */
	char *routes;			/* route set (RFC 3261 12.1), its URIs one
					 * per line; NULL: empty */
	char *sub_evid;			/* OUT: id of the core's subscribe */
	unsigned lcseq, rcseq;
	int proto;			/* transport of the dialog */
	enum sip_sub_state state;
	unsigned expires;		/* seconds granted */
	uint64_t deadline_ms;		/* IN: when it expires (monotonic) */
	struct imgw_timer *timer;	/* OUT: refresh/retry; IN: expiry */
	int inflight;			/* OUT: a SUBSCRIBE waits */
	int fetch;			/* OUT: Expires 0, one NOTIFY */
	int closing;			/* OUT: unsubscribing */
	int told_subscribed;		/* OUT: subscribed emitted */
	unsigned retries;
	char *pidf;			/* IN: last document sent */
	int stored;			/* put into the core's store */
	struct sip_sub *prev, *next;
};

struct sipc {
	struct imgw_instance *inst;	/* the core's, borrowed until fini */
	const struct imgw_host *host;	/* the core's, borrowed until fini */
	struct sip_stack *st;
	struct sip_stack_cfg cfg;
	struct sip_route routes[SIP_MAX_ROUTES];
	size_t nroutes;
	struct plug_dns_server dns;	/* option dns-server; cfg.dns points here
					 * when option dns is on */
	struct sip_net trusted[SIP_MAX_TRUSTED + SIP_MAX_ROUTES * SIP_ROUTE_HOPS];
	size_t ntrusted;
	char adv_host[SIP_HOST_MAX];
	unsigned answer_wait_ms;
	unsigned cseq;
	int again;			/* deliver said AGAIN; resume owed */
	struct sip_pend *pend;
	struct sip_hold *holds;
	struct sip_sub *subs;
	size_t nsubs;
	uint64_t next_sub_id;
	unsigned sub_expires;		/* option subscribe-expires */
	size_t max_subs;
	unsigned keepalive_s;		/* option keepalive, 0: off */
	struct imgw_timer *ka_timer;
	uint64_t ka_gen;		/* answers of older rounds are ignored */
	int listing;			/* sub_list answers pending */
	int stopping;			/* stop: free subs, keep them stored */
	struct imgw_timer *quiesce_timer; /* quiesce: waits for sc->pend */
	unsigned isc_refresh_s;		/* option iscomposing-refresh */
	struct sip_typing **typing;	/* typing.c: hash table, or NULL */
	size_t ntyping;
};

#define SIPC_LOG(sc, lvl, ...) \
	(sc)->host->log((sc)->inst, (lvl), NULL, __VA_ARGS__)
#define SIPC_COUNT(sc, name) \
	(sc)->host->counter_add((sc)->inst, (name), 1)

/* opts.c */
int sip_opt_parse(struct sipc *sc);
void sip_opt_free(struct sipc *sc);
const struct sip_route *sip_opt_route(const struct sipc *sc, const char *domain);
int sip_opt_hops(struct sipc *sc, const char *name, struct sip_hops **hops,
    sip_hops_cb cb, void *arg, const char **why_r);

/* in.c */
void sip_in_request_cb(void *arg, struct sip_srv *srv, osip_message_t *req);
int sip_in_error_event(struct sipc *sc, const struct imgw_event *ev);
void sip_in_holds_free(struct sipc *sc);

/* out.c */
int sip_out_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r);
void sip_out_free(struct sipc *sc);

/* keepalive.c */
void sip_ka_start(struct sipc *sc);
void sip_ka_stop(struct sipc *sc);

/* errmap.c */
int sip_err_code(const char *condition);
const char *sip_err_condition(int code);
int sip_err_emit_code(const char *err);

/* body.c */
enum sip_body_kind { SIP_BODY_TEXT = 1, SIP_BODY_ISCOMPOSING, SIP_BODY_OTHER };
enum sip_body_kind sip_body_kind(const osip_message_t *m);
int sip_body_text(const osip_message_t *m, char **text_r, int *code_r);
int sip_body_lang(const osip_message_t *m, char *buf, size_t len);

/* pidf.c */
int sip_pidf_parse(const char *xml, size_t len, enum imgw_show *show_r,
    char *note_r, size_t notelen, char *lang_r, size_t langlen);
int sip_pidf_format(const char *entity, enum imgw_show show, const char *note,
    const char *lang, char *buf, size_t len);

/* sub.c */
struct sip_sub *sip_sub_new(struct sipc *sc, enum sip_sub_dir dir,
    const char *watcher, const char *presentity);
struct sip_sub *sip_sub_find(struct sipc *sc, enum sip_sub_dir dir,
    const char *watcher, const char *presentity);
struct sip_sub *sip_sub_by_dialog(struct sipc *sc, enum sip_sub_dir dir,
    const char *callid, const char *ltag);
struct sip_sub *sip_sub_by_id(struct sipc *sc, uint64_t id);
void sip_sub_free(struct sip_sub *s);
void sip_sub_free_all(struct sipc *sc);
int sip_sub_send(struct sip_sub *s, const char *method, int expires,
    const char *substate, const char *ctype, const char *body,
    enum imgw_kind kind, sip_response_cb cb);
int sip_sub_timer(struct sip_sub *s, unsigned ms, imgw_timer_cb cb);
void sip_sub_contact(struct sipc *sc, osip_message_t *m, int proto);
char *sip_sub_callid(const osip_message_t *m);
int sip_sub_expires(const osip_message_t *m, int def);
void sip_sub_emit(struct sipc *sc, enum imgw_kind kind, const char *from,
    const char *to, const char *id);
struct sip_pend *sip_pend_new(struct sipc *sc, enum imgw_kind kind,
    const char *from, const char *to, const char *id, const char *thread);
void sip_pend_free(struct sip_pend *p);

/* sub-store.c */
void sip_sub_store(struct sip_sub *s);
void sip_sub_unstore(struct sip_sub *s);
void sip_sub_store_load(struct sipc *sc);

/* sub-out.c */
void sip_subout_restored(struct sip_sub *s);
int sip_subout_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r);
void sip_subout_notify(struct sipc *sc, struct sip_srv *srv, osip_message_t *req);

/* sub-in.c */
void sip_subin_restored(struct sip_sub *s, unsigned left_s);
int sip_subin_deliver(struct sipc *sc, const struct imgw_event *ev,
    const char **condition_r);
void sip_subin_subscribe(struct sipc *sc, struct sip_srv *srv, osip_message_t *req);

/* iscomposing.c */
int sip_isc_parse(const char *xml, size_t len, enum imgw_chatstate *state_r,
    unsigned *refresh_r);
int sip_isc_format(enum imgw_chatstate state, unsigned refresh_s, char *buf,
    size_t len);

/* typing.c: isComposing refresh (RFC 3994 section 4) */
void sip_typing_in(struct sipc *sc, const struct imgw_event *ev,
    unsigned refresh_s);
void sip_typing_out(struct sipc *sc, const struct imgw_event *ev);
void sip_typing_free_all(struct sipc *sc);

#endif /* IMGW_PLUGIN_SIP_H */
