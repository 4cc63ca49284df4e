/* sipstack — declarations private to the stack's files. */
#ifndef IMGW_SIPSTACK_INTERNAL_H
#define IMGW_SIPSTACK_INTERNAL_H

#include <sys/types.h>

#include "sipstack.h"

#define SIP_BRANCH_MAGIC	"z9hG4bK"
#define SIP_BRANCH_OURS		"z9hG4bK-imgw"	/* loop detection, RFC 5393 */
#define SIP_READS_PER_CB	32
#define SIP_TICK_MAX_MS		100	/* timer granularity with live txs */
#define SIP_TCP_OUT_MAX		(4u << 20)	/* queued bytes per connection */
#define SIP_TCP_SETUP_MS	10000	/* connect + TLS handshake at most */
/*
 * libosip2 keeps each kind of transaction in one linked list and appends
 * by walking it: with UDP's 32 s Timer J, a busy gateway holds tens of
 * thousands of finished server transactions and every new one would walk
 * them all.  Transactions are spread round-robin over this many osip_t
 * instances (same callbacks), which keeps each list short.
 */
#define SIP_OSIP_SHARDS		256	/* default; cfg.shards overrides */

enum sip_tx_kind { SIP_TX_CLIENT = 1, SIP_TX_SERVER };

/* Our side of one osip transaction (its reserved1 pointer). */
struct sip_tx {
	struct sip_stack *st;
	osip_transaction_t *tr;
	enum sip_tx_kind kind;
	int proto;
	struct sockaddr_storage peer;	/* UDP: where to send */
	socklen_t peerlen;
	uint64_t conn_id;		/* TCP: the connection, 0: none yet */
	char peer_text[80];

	/* client */
	sip_response_cb cb;
	void *cbarg;
	int done;			/* cb ran */

	/* server */
	int answered;			/* final response handed to osip */
	int held;			/* the app holds srv (request_cb ran) */

	char to_tag[24];		/* server: our To tag */
	int in_request;			/* inside sip_stack_request */
	int send_failed;		/* transport error while in_request */

	char peer_name[SIP_HOST_MAX];	/* client, TLS: name to verify */

	int dead;			/* killed: waiting to be freed */
	struct sip_tx *prev, *next;	/* st->txs or st->reap */
	char *key;			/* match key, NULL: not in the table */
	size_t hash;
	struct sip_tx *hnext;		/* hash chain */
};

struct sip_srv {
	struct sip_tx tx;		/* first: a srv is a tx */
};

struct sip_udp {
	int fd;
	int family;
	struct imgw_watch *w;
};

struct sip_tcp {
	struct sip_stack *st;
	uint64_t id;
	int fd;
	struct imgw_watch *w;
	int want;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_text[80];
	int connecting;
	int dead;
	uint64_t last_ms;
	uint64_t born_ms;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	/* TLS */
	int tls;			/* a TLS connection */
	void *ssl;			/* SSL *, NULL for plain TCP */
	int hs_done;			/* handshake finished */
	int tls_want;			/* interest OpenSSL asked for */
	int tls_trusted;		/* verified certificate in tls_names */
	char name[SIP_HOST_MAX];	/* client side: the name verified */
	struct sip_tcp *prev, *next;
};

struct sip_tcpl {
	struct sip_stack *st;
	int fd;
	int tls;
	struct imgw_watch *w;
};

struct sip_stack {
	struct sip_stack_cfg cfg;
	char *adv_host;
	int adv_port;
	struct sip_net *trusted;
	char *allow, *accept, *user_agent;

	osip_t **osip;			/* nshards instances */
	size_t nshards;
	unsigned next_shard;
	struct sip_udp udp[SIP_MAX_LISTEN];
	size_t nudp;
	struct sip_tcpl tcpl[SIP_MAX_LISTEN];
	size_t ntcpl;
	struct sip_tcp *conns;
	size_t nconns;
	uint64_t next_conn_id;

	struct sip_tx **buckets;	/* match table, power of two */
	size_t nbuckets, nkeys;
	int again_pending;		/* app waits for room (resume_cb) */
	int bound_port;			/* port of the first listener bound */
	int proto_port[4];		/* [proto]: port of its first listener */

	struct sip_tx *txs;		/* live transactions */
	struct sip_tx *reap;		/* killed, freed after the pump */
	size_t nclient;			/* live client transactions */
	size_t ntx;
	struct imgw_timer *timer;
	int pumping;
	int stopping;
	char *rbuf;			/* max_message + 1 bytes */
	char *tls_names;
	void *tls_srv, *tls_cli;	/* SSL_CTX *, NULL: none */
	struct sip_rentry *res;		/* RFC 3263 answers (resolve.c) */
	size_t nres;
	struct sip_fo *fo_wait;		/* walks between two attempts (hops.c) */
	struct sip_down *down;		/* addresses marked down (hops.c) */
	size_t ndown;
};

#define SIP_LOG(st, lvl, ...) \
	(st)->cfg.host->log((st)->cfg.inst, (lvl), NULL, __VA_ARGS__)
#define SIP_COUNT(st, name) \
	(st)->cfg.host->counter_add((st)->cfg.inst, (name), 1)

/* stack.c */
void sip_stack_pump(struct sip_stack *st);
osip_t *sip_stack_shard(struct sip_stack *st);
void sip_stack_arm(struct sip_stack *st);
void sip_stack_settle(struct sip_stack *st);
struct sip_tx *sip_tx_new(struct sip_stack *st, osip_transaction_t *tr,
    enum sip_tx_kind kind, int proto, const osip_message_t *m);
struct sip_tx *sip_match_find(struct sip_stack *st, const osip_message_t *m,
    int server);
void sip_tx_execute(struct sip_tx *tx, osip_event_t *evt);
uint64_t sip_now_ms(void);

/* resolve.c */
void sip_res_stop(struct sip_stack *st);
void sip_res_free(struct sip_stack *st);

/* hops.c */
struct sip_hops *sip_hops_new(size_t cap);
int sip_hops_add(struct sip_hops *h, const struct sip_taddr *ta);
struct sip_hops *sip_hops_ref(struct sip_hops *h);
void sip_hops_unref(struct sip_hops *h);
void sip_fo_stop(struct sip_stack *st);
void sip_fo_free_all(struct sip_stack *st);

/* inbound.c */
void sip_in_message(struct sip_stack *st, int proto, char *buf, size_t len,
    const struct sockaddr_storage *src, socklen_t srclen, uint64_t conn_id);
void sip_in_refuse_head(struct sip_stack *st, int proto, const char *buf,
    size_t len, const struct sockaddr_storage *src, socklen_t srclen,
    uint64_t conn_id, int code);
int sip_in_stateless(struct sip_stack *st, const osip_message_t *req,
    int code, int proto, const struct sockaddr_storage *src, socklen_t srclen,
    uint64_t conn_id, const char *hname, const char *hvalue);

/* transport.c */
int sip_tp_open_udp(struct sip_stack *st, const struct sip_taddr *ta);
void sip_tp_close(struct sip_stack *st);
int sip_tp_send(struct sip_stack *st, int proto, uint64_t *conn_id,
    const struct sockaddr_storage *dst, socklen_t dstlen, const char *name,
    const char *buf, size_t len);
int sip_tp_send_msg(struct sip_stack *st, osip_message_t *m, int proto,
    uint64_t *conn_id, const struct sockaddr_storage *dst, socklen_t dstlen,
    const char *name);

/* tcp.c */
int sip_tcp_listen(struct sip_stack *st, const struct sip_taddr *ta);
struct sip_tcp *sip_tcp_find(struct sip_stack *st, uint64_t id);
struct sip_tcp *sip_tcp_find_peer(struct sip_stack *st, int proto,
    const struct sockaddr_storage *ss, socklen_t len, const char *name);
struct sip_tcp *sip_tcp_connect(struct sip_stack *st, int proto,
    const struct sockaddr_storage *ss, socklen_t len, const char *name);
int sip_tcp_write(struct sip_tcp *c, const char *buf, size_t len);
void sip_tcp_close(struct sip_tcp *c, const char *why);
void sip_tcp_close_all(struct sip_stack *st);
void sip_tcp_idle(struct sip_stack *st, uint64_t now);
int sip_tcp_trusted(struct sip_stack *st, uint64_t id);
size_t sip_tcp_frame(const char *buf, size_t len, size_t max, int *err_r,
    size_t *hlen_r);

/* tls.c */
int sip_tls_init(struct sip_stack *st);
void sip_tls_free(struct sip_stack *st);
int sip_tls_conn_start(struct sip_tcp *c, int server, const char *name);
void sip_tls_conn_free(struct sip_tcp *c);
int sip_tls_handshake(struct sip_tcp *c);
ssize_t sip_tls_read(struct sip_tcp *c, char *buf, size_t len);
ssize_t sip_tls_write(struct sip_tcp *c, const char *buf, size_t len);
size_t sip_tls_pending(struct sip_tcp *c);

#endif /* IMGW_SIPSTACK_INTERNAL_H */
