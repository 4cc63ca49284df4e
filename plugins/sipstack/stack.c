/*
 * The stack object: libosip2's transaction machines on the core's loop.
 *
 * Events are executed synchronously with osip_transaction_execute (which
 * frees the event, and the message when the state machine has no use for
 * it).  Timers: osip_timers_*_execute queue timeout events into the
 * transactions' fifos and osip_*_execute drain them; both run from one
 * host timer (the "pump"), armed while transactions or connections live,
 * at most SIP_TICK_MAX_MS apart (osip_timers_gettimeout gives an earlier
 * deadline when one is due).
 *
 * libosip2 finds transactions by walking lists; we match incoming
 * messages to transactions ourselves through a hash of the RFC 3261
 * section 17 keys (branch, sent-by, method), so a busy stack does not scan
 * every live transaction per message.
 *
 * Killed transactions (osip's kill callbacks) are removed from osip's
 * lists at once and freed after the current pump or input, never inside
 * osip's own call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "sipstack-internal.h"

uint64_t
sip_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
sip_proto_name(int proto)
{
	return proto == SIP_PROTO_TCP ? "TCP" : proto == SIP_PROTO_TLS ? "TLS" : "UDP";
}

const char *
sip_stack_adv_host(const struct sip_stack *st)
{
	return st->adv_host;
}

int
sip_stack_adv_port(const struct sip_stack *st)
{
	return st->adv_port;
}

int
sip_stack_adv_port_proto(const struct sip_stack *st, int proto)
{
	int p = proto >= 0 && proto < 4 ? st->proto_port[proto] : 0;

	return p != 0 && p != st->bound_port ? p : st->adv_port;
}

int
sip_srv_proto(const struct sip_srv *srv)
{
	return srv->tx.proto;
}

size_t
sip_stack_pending(const struct sip_stack *st)
{
	return st->nclient;
}

void
sip_srv_set_tag(struct sip_srv *srv, const char *tag)
{
	snprintf(srv->tx.to_tag, sizeof(srv->tx.to_tag), "%s", tag);
}

const char *
sip_srv_peer(const struct sip_srv *srv)
{
	return srv->tx.peer_text;
}

/* ---- transactions -------------------------------------------------------- */

static struct sip_tx *
sip_tx_of(osip_transaction_t *tr)
{
	return tr ? osip_transaction_get_reserved1(tr) : NULL;
}

static void
sip_tx_unlink(struct sip_tx **head, struct sip_tx *tx)
{
	if (tx->prev != NULL)
		tx->prev->next = tx->next;
	else
		*head = tx->next;
	if (tx->next != NULL)
		tx->next->prev = tx->prev;
	tx->prev = tx->next = NULL;
}

static void
sip_tx_link(struct sip_tx **head, struct sip_tx *tx)
{
	tx->prev = NULL;
	tx->next = *head;
	if (*head != NULL)
		(*head)->prev = tx;
	*head = tx;
}

/* ---- the match table: key -> live transaction ---------------------------- */

static size_t
sip_key_hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/*
 * The match key of a message (RFC 3261 17.1.3 and 17.2.3): top Via
 * branch, sent-by and the CSeq method, ACK and CANCEL counted with the
 * INVITE they belong to... except CANCEL, which has its own transaction.
 * -1 when the message has no RFC 3261 branch.
 */
static int
sip_key(const osip_message_t *m, int server, char *buf, size_t len)
{
	osip_via_t *via = osip_list_get(&m->vias, 0);
	osip_generic_param_t *br = NULL;
	const char *method;

	if (via == NULL || m->cseq == NULL || m->cseq->method == NULL ||
	    osip_via_param_get_byname(via, "branch", &br) != 0 || br == NULL ||
	    br->gvalue == NULL || strncmp(br->gvalue, SIP_BRANCH_MAGIC, 7) != 0)
		return -1;
	method = m->cseq->method;
	if (strcmp(method, "ACK") == 0)
		method = "INVITE";
	if (server)
		return snprintf(buf, len, "s|%s|%s:%s|%s", br->gvalue,
		    via->host ? via->host : "", via->port ? via->port : "",
		    method) < (int)len ? 0 : -1;
	return snprintf(buf, len, "c|%s|%s", br->gvalue, method) < (int)len ? 0 : -1;
}

static int
sip_match_grow(struct sip_stack *st)
{
	size_t n = st->nbuckets ? st->nbuckets * 2 : 256, i;
	struct sip_tx **b, *tx, *next;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return -1;
	for (i = 0; i < st->nbuckets; i++) {
		for (tx = st->buckets[i]; tx != NULL; tx = next) {
			next = tx->hnext;
			tx->hnext = b[tx->hash & (n - 1)];
			b[tx->hash & (n - 1)] = tx;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->nbuckets = n;
	return 0;
}

static void
sip_match_add(struct sip_stack *st, struct sip_tx *tx, const char *key)
{
	if (st->nkeys + 1 > st->nbuckets && sip_match_grow(st) == -1)
		return;		/* unmatched: retransmissions become new requests */
	if ((tx->key = strdup(key)) == NULL)
		return;
	tx->hash = sip_key_hash(key);
	tx->hnext = st->buckets[tx->hash & (st->nbuckets - 1)];
	st->buckets[tx->hash & (st->nbuckets - 1)] = tx;
	st->nkeys++;
}

static void
sip_match_del(struct sip_stack *st, struct sip_tx *tx)
{
	struct sip_tx **pp;

	if (tx->key == NULL)
		return;
	for (pp = &st->buckets[tx->hash & (st->nbuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == tx) {
			*pp = tx->hnext;
			st->nkeys--;
			break;
		}
	}
	free(tx->key);
	tx->key = NULL;
}

struct sip_tx *
sip_match_find(struct sip_stack *st, const osip_message_t *m, int server)
{
	char key[512];
	struct sip_tx *tx;
	size_t h;

	if (st->nbuckets == 0 || sip_key(m, server, key, sizeof(key)) == -1)
		return NULL;
	h = sip_key_hash(key);
	for (tx = st->buckets[h & (st->nbuckets - 1)]; tx != NULL; tx = tx->hnext)
		if (tx->hash == h && !tx->dead && strcmp(tx->key, key) == 0)
			return tx;
	return NULL;
}

struct sip_tx *
sip_tx_new(struct sip_stack *st, osip_transaction_t *tr, enum sip_tx_kind kind,
    int proto, const osip_message_t *m)
{
	struct sip_tx *tx;
	char key[512];

	if (kind == SIP_TX_SERVER)
		tx = calloc(1, sizeof(struct sip_srv));
	else
		tx = calloc(1, sizeof(*tx));
	if (tx == NULL)
		return NULL;
	tx->st = st;
	tx->tr = tr;
	tx->kind = kind;
	tx->proto = proto;
	osip_transaction_set_reserved1(tr, tx);
	sip_tx_link(&st->txs, tx);
	st->ntx++;
	if (kind == SIP_TX_CLIENT)
		st->nclient++;
	if (sip_key(m, kind == SIP_TX_SERVER, key, sizeof(key)) == 0)
		sip_match_add(st, tx, key);
	sip_stack_arm(st);
	return tx;
}

/* The client's callback, exactly once. */
static void
sip_tx_finish(struct sip_tx *tx, int code, osip_message_t *resp)
{
	if (tx->kind != SIP_TX_CLIENT || tx->done)
		return;
	tx->done = 1;
	if (tx->cb != NULL)
		tx->cb(tx->cbarg, code, resp);
}

/* ---- osip callbacks --------------------------------------------------------- */

static int
sip_cb_send(osip_transaction_t *tr, osip_message_t *m, char *host, int port,
    int out_socket)
{
	struct sip_tx *tx = sip_tx_of(tr);
	struct sip_stack *st;
	struct sip_taddr ta;
	char hp[SIP_HOST_MAX + 16];

	(void)out_socket;
	if (tx == NULL)
		return -1;
	st = tx->st;
	if (tx->kind == SIP_TX_CLIENT && tx->done)
		return 0;	/* failed already (ICMP, closed connection): no resends */
	if (tx->kind == SIP_TX_CLIENT || tx->proto != SIP_PROTO_UDP)
		return sip_tp_send_msg(st, m, tx->proto, &tx->conn_id, &tx->peer,
		    tx->peerlen, tx->peer_name);
	/*
	 * A UDP response goes where osip says (RFC 3261 18.2.2 and RFC 3581:
	 * received/rport, else sent-by); a sent-by that is a name is not
	 * resolved here (that would block), the source address is used.
	 */
	if (host != NULL && port > 0 && port < 65536) {
		snprintf(hp, sizeof(hp), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
		    host, port);
		if (sip_net_hostport(hp, SIP_PROTO_UDP, &ta) == 0)
			return sip_tp_send_msg(st, m, SIP_PROTO_UDP, NULL, &ta.ss,
			    ta.len, NULL);
	}
	return sip_tp_send_msg(st, m, SIP_PROTO_UDP, NULL, &tx->peer, tx->peerlen,
	    NULL);
}

static void
sip_cb_final(int type, osip_transaction_t *tr, osip_message_t *m)
{
	struct sip_tx *tx = sip_tx_of(tr);

	(void)type;
	if (tx != NULL && m != NULL)
		sip_tx_finish(tx, m->status_code, m);
}

static void
sip_cb_timeout(int type, osip_transaction_t *tr, osip_message_t *m)
{
	struct sip_tx *tx = sip_tx_of(tr);

	(void)type;
	(void)m;
	if (tx != NULL) {
		SIP_COUNT(tx->st, "sip-client-timeouts");
		sip_tx_finish(tx, 408, NULL);
	}
}

static void
sip_cb_transport_error(int type, osip_transaction_t *tr, int error)
{
	struct sip_tx *tx = sip_tx_of(tr);

	(void)type;
	(void)error;
	if (tx == NULL)
		return;
	SIP_COUNT(tx->st, "sip-transport-errors");
	if (tx->in_request) {
		tx->send_failed = 1;	/* sip_stack_request answers -1 */
		tx->done = 1;
		return;
	}
	sip_tx_finish(tx, 503, NULL);
}

static void
sip_cb_kill(int type, osip_transaction_t *tr)
{
	struct sip_tx *tx = sip_tx_of(tr);
	struct sip_stack *st;

	(void)type;
	if (tx == NULL || tx->dead)
		return;
	st = tx->st;
	if (!tx->done && tx->kind == SIP_TX_CLIENT && !tx->in_request)
		sip_tx_finish(tx, 408, NULL);
	tx->dead = 1;
	osip_remove_transaction(tr->config, tr);
	sip_match_del(st, tx);
	sip_tx_unlink(&st->txs, tx);
	sip_tx_link(&st->reap, tx);
}

/* Free what the kill callbacks set aside. */
static void
sip_stack_reap(struct sip_stack *st)
{
	struct sip_tx *tx;

	while ((tx = st->reap) != NULL) {
		sip_tx_unlink(&st->reap, tx);
		osip_transaction_set_reserved1(tx->tr, NULL);
		osip_transaction_free2(tx->tr);
		st->ntx--;
		if (tx->kind == SIP_TX_CLIENT)
			st->nclient--;
		free(tx);
	}
	if (st->again_pending && st->nclient < st->cfg.max_pending / 2 &&
	    st->cfg.resume_cb != NULL) {
		st->again_pending = 0;
		st->cfg.resume_cb(st->cfg.arg);
	}
}

/* ---- the pump ------------------------------------------------------------- */

static void sip_stack_timer_cb(void *arg);

void
sip_stack_arm(struct sip_stack *st)
{
	struct timeval tv;
	unsigned ms;

	if (st->timer != NULL || st->stopping || (st->ntx == 0 && st->nconns == 0))
		return;
	if (st->ntx > 0) {
		struct timeval one;
		size_t i;

		osip_timers_gettimeout(st->osip[0], &tv);
		for (i = 1; i < st->nshards; i++) {
			osip_timers_gettimeout(st->osip[i], &one);
			if (one.tv_sec < tv.tv_sec ||
			    (one.tv_sec == tv.tv_sec && one.tv_usec < tv.tv_usec))
				tv = one;
		}
		if (tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec <= 0))
			ms = 1;
		else if (tv.tv_sec >= SIP_TICK_MAX_MS / 1000 + 1)
			ms = SIP_TICK_MAX_MS;
		else
			ms = (unsigned)(tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1;
		if (ms > SIP_TICK_MAX_MS)
			ms = SIP_TICK_MAX_MS;
	} else {
		ms = 1000;	/* connections only: idle checks */
	}
	st->timer = st->cfg.host->timer_add(st->cfg.inst, ms, sip_stack_timer_cb, st);
}

osip_t *
sip_stack_shard(struct sip_stack *st)
{
	return st->osip[st->next_shard++ % st->nshards];
}

void
sip_stack_pump(struct sip_stack *st)
{
	size_t i;

	if (st->pumping)
		return;
	st->pumping = 1;
	for (i = 0; i < st->nshards; i++) {
		osip_timers_ict_execute(st->osip[i]);
		osip_timers_ist_execute(st->osip[i]);
		osip_timers_nict_execute(st->osip[i]);
		osip_timers_nist_execute(st->osip[i]);
		osip_ict_execute(st->osip[i]);
		osip_ist_execute(st->osip[i]);
		osip_nict_execute(st->osip[i]);
		osip_nist_execute(st->osip[i]);
	}
	st->pumping = 0;
	sip_stack_reap(st);
	sip_tcp_idle(st, sip_now_ms());
}

static void
sip_stack_timer_cb(void *arg)
{
	struct sip_stack *st = arg;

	st->timer = NULL;	/* fired: the core frees it */
	sip_stack_pump(st);
	sip_stack_arm(st);
}

/* After input: free killed transactions, keep the timer armed. */
void
sip_stack_settle(struct sip_stack *st)
{
	if (!st->pumping)
		sip_stack_reap(st);
	sip_stack_arm(st);
}

/* Run one event of tx now.  Afterwards tx may be dead (in the reap list);
 * callers reap when they are done with it. */
void
sip_tx_execute(struct sip_tx *tx, osip_event_t *evt)
{
	osip_transaction_execute(tx->tr, evt);
}

/* ---- life cycle ----------------------------------------------------------- */

/* libosip2's traces, dropped (see sip_stack_new). */
static void
sip_stack_osip_trace_cb(const char *fi, int li, osip_trace_level_t level,
    const char *chfr, va_list ap)
{
	(void)fi;
	(void)li;
	(void)level;
	(void)chfr;
	(void)ap;
}

struct sip_stack *
sip_stack_new(const struct sip_stack_cfg *cfg)
{
	struct sip_stack *st;
	static const int finals[] = {
		OSIP_NICT_STATUS_2XX_RECEIVED, OSIP_NICT_STATUS_3XX_RECEIVED,
		OSIP_NICT_STATUS_4XX_RECEIVED, OSIP_NICT_STATUS_5XX_RECEIVED,
		OSIP_NICT_STATUS_6XX_RECEIVED,
	};
	size_t i, j;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->cfg = *cfg;
	st->adv_host = strdup(cfg->adv_host ? cfg->adv_host : "127.0.0.1");
	st->allow = strdup(cfg->allow ? cfg->allow : "MESSAGE, OPTIONS");
	st->accept = strdup(cfg->accept ? cfg->accept : "text/plain");
	st->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "imgw");
	st->rbuf = malloc(cfg->max_message + 1);
	if (cfg->ntrusted > 0 &&
	    (st->trusted = calloc(cfg->ntrusted, sizeof(*st->trusted))) != NULL)
		memcpy(st->trusted, cfg->trusted, cfg->ntrusted * sizeof(*st->trusted));
	st->cfg.trusted = st->trusted;
	if (cfg->tls_names != NULL && cfg->tls_names[0] != '\0' &&
	    (st->tls_names = strdup(cfg->tls_names)) == NULL)
		goto fail;
	if (st->adv_host == NULL || st->allow == NULL || st->accept == NULL ||
	    st->user_agent == NULL || st->rbuf == NULL ||
	    (cfg->ntrusted > 0 && st->trusted == NULL))
		goto fail;
	st->cfg.adv_host = st->adv_host;
	st->cfg.allow = st->allow;
	st->cfg.accept = st->accept;
	st->cfg.user_agent = st->user_agent;
	st->adv_port = cfg->adv_port;
	st->nshards = cfg->shards ? cfg->shards : SIP_OSIP_SHARDS;
	if ((st->osip = calloc(st->nshards, sizeof(*st->osip))) == NULL)
		goto fail;
	/* libosip2's own traces go to stdout, one line per bad message a
	 * peer sends: never let a peer write there; we count and log.
	 * Disabling the levels is not enough: libosip2 5.3 sets up a logger
	 * by itself (levels up to ERROR on again) at its first trace when
	 * none is set, so we set one that drops everything. */
	osip_trace_initialize_func(TRACE_LEVEL0, sip_stack_osip_trace_cb);
	for (i = 0; i < END_TRACE_LEVEL; i++)
		osip_trace_disable_level((osip_trace_level_t)i);
	for (j = 0; j < st->nshards; j++) {
		osip_t *o;

		if (osip_init(&st->osip[j]) != 0) {
			st->osip[j] = NULL;
			goto fail;
		}
		o = st->osip[j];
		osip_set_application_context(o, st);
		osip_set_cb_send_message(o, sip_cb_send);
		for (i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
			osip_set_message_callback(o, finals[i], sip_cb_final);
		osip_set_message_callback(o, OSIP_NICT_STATUS_TIMEOUT, sip_cb_timeout);
		osip_set_message_callback(o, OSIP_ICT_STATUS_TIMEOUT, sip_cb_timeout);
		osip_set_kill_transaction_callback(o, OSIP_ICT_KILL_TRANSACTION, sip_cb_kill);
		osip_set_kill_transaction_callback(o, OSIP_IST_KILL_TRANSACTION, sip_cb_kill);
		osip_set_kill_transaction_callback(o, OSIP_NICT_KILL_TRANSACTION, sip_cb_kill);
		osip_set_kill_transaction_callback(o, OSIP_NIST_KILL_TRANSACTION, sip_cb_kill);
		osip_set_transport_error_callback(o, OSIP_ICT_TRANSPORT_ERROR,
		    sip_cb_transport_error);
		osip_set_transport_error_callback(o, OSIP_IST_TRANSPORT_ERROR,
		    sip_cb_transport_error);
		osip_set_transport_error_callback(o, OSIP_NICT_TRANSPORT_ERROR,
		    sip_cb_transport_error);
		osip_set_transport_error_callback(o, OSIP_NIST_TRANSPORT_ERROR,
		    sip_cb_transport_error);
	}
	return st;
fail:
	sip_stack_free(st);
	return NULL;
}

int
sip_stack_start(struct sip_stack *st)
{
	size_t i;
	int rc;

	st->stopping = 0;
	if (st->tls_cli == NULL && sip_tls_init(st) == -1)
		return -1;
	for (i = 0; i < st->cfg.nlisten; i++) {
		if (st->cfg.listen[i].proto == SIP_PROTO_UDP)
			rc = sip_tp_open_udp(st, &st->cfg.listen[i]);
		else
			rc = sip_tcp_listen(st, &st->cfg.listen[i]);
		if (rc == -1) {
			sip_tp_close(st);
			return -1;
		}
		/* port 0 asks the kernel; advertise what it gave the first */
		if (st->adv_port == 0)
			st->adv_port = st->bound_port;
	}
	return 0;
}

void
sip_stack_stop(struct sip_stack *st)
{
	struct sip_tx *tx, *next;

	/* unanswered requests get 503 while the sockets still exist */
	for (tx = st->txs; tx != NULL; tx = next) {
		next = tx->next;
		if (tx->kind == SIP_TX_SERVER && tx->held && !tx->answered)
			(void)sip_srv_reply_code((struct sip_srv *)tx, 503, NULL, NULL);
	}
	st->stopping = 1;
	sip_res_stop(st);
	sip_fo_stop(st);
	for (tx = st->txs; tx != NULL; tx = tx->next)
		if (tx->kind == SIP_TX_CLIENT)
			sip_tx_finish(tx, 503, NULL);
	if (st->timer != NULL) {
		st->cfg.host->timer_del(st->timer);
		st->timer = NULL;
	}
	sip_tp_close(st);
}

void
sip_stack_free(struct sip_stack *st)
{
	struct sip_tx *tx;
	size_t i;

	if (st == NULL)
		return;
	if (st->osip != NULL && st->osip[0] != NULL) {
		if (!st->stopping)
			sip_stack_stop(st);
		while ((tx = st->txs) != NULL) {
			tx->done = 1;
			sip_cb_kill(0, tx->tr);
		}
		st->cfg.resume_cb = NULL;
		sip_stack_reap(st);
	}
	for (i = 0; st->osip != NULL && i < st->nshards; i++)
		if (st->osip[i] != NULL)
			osip_release(st->osip[i]);
	free(st->osip);
	sip_res_free(st);
	sip_fo_free_all(st);
	sip_tls_free(st);
	free(st->tls_names);
	free(st->buckets);
	free(st->trusted);
	free(st->adv_host);
	free(st->allow);
	free(st->accept);
	free(st->user_agent);
	free(st->rbuf);
	free(st);
}

/* ---- client transactions ---------------------------------------------------- */

int
sip_stack_request(struct sip_stack *st, osip_message_t *req,
    const struct sip_taddr *dest, sip_response_cb cb, void *arg)
{
	osip_transaction_t *tr = NULL;
	struct sip_tx *tx;
	char via[SIP_HOST_MAX + 128], tag[24], host[INET6_ADDRSTRLEN];
	osip_event_t *evt;
	int port, failed;

	if (st->stopping || (dest->proto == SIP_PROTO_TLS && st->tls_cli == NULL))
		goto fail;
	sip_msg_tag(tag, sizeof(tag));
	snprintf(via, sizeof(via), "SIP/2.0/%s %s%s%s:%d;branch=%s%s%s",
	    sip_proto_name(dest->proto), strchr(st->adv_host, ':') ? "[" : "",
	    st->adv_host, strchr(st->adv_host, ':') ? "]" : "", st->adv_port,
	    SIP_BRANCH_OURS, tag, dest->proto == SIP_PROTO_UDP ? ";rport" : "");
	if (osip_message_set_via(req, via) != 0)
		goto fail;
	/* set_via appends; the new Via must be on top */
	if (osip_list_size(&req->vias) > 1) {
		osip_via_t *v = osip_list_get(&req->vias, osip_list_size(&req->vias) - 1);

		osip_list_remove(&req->vias, osip_list_size(&req->vias) - 1);
		osip_list_add(&req->vias, v, 0);
	}
	if (sip_msg_header(req, "max-forwards", NULL) == NULL)
		osip_message_set_max_forwards(req, "70");
	if (sip_msg_header(req, "user-agent", NULL) == NULL)
		osip_message_set_header(req, "User-Agent", st->user_agent);
	if (osip_transaction_init(&tr, NICT, sip_stack_shard(st), req) != 0)
		goto fail;
	if ((tx = sip_tx_new(st, tr, SIP_TX_CLIENT, dest->proto, req)) == NULL) {
		osip_transaction_free(tr);
		goto fail;
	}
	tx->peer = dest->ss;
	tx->peerlen = dest->len;
	snprintf(tx->peer_name, sizeof(tx->peer_name), "%s", dest->name);
	tx->cb = cb;
	tx->cbarg = arg;
	if (sip_net_ntop((const struct sockaddr *)&dest->ss, host, sizeof(host),
	    &port) == 0) {
		snprintf(tx->peer_text, sizeof(tx->peer_text), "%s:%s:%d",
		    dest->proto == SIP_PROTO_TCP ? "tcp" : dest->proto ==
		    SIP_PROTO_TLS ? "tls" : "udp", host, port);
		osip_nict_set_destination(tr->nict_context, osip_strdup(host), port);
	}
	if ((evt = osip_new_outgoing_sipmessage(req)) == NULL) {
		/* the transaction does not own req yet */
		tx->done = 1;
		sip_cb_kill(0, tr);
		sip_stack_reap(st);
		goto fail;
	}
	tx->in_request = 1;
	sip_tx_execute(tx, evt);	/* req now belongs to the transaction */
	tx->in_request = 0;
	failed = tx->send_failed;
	if (failed) {
		tx->done = 1;
		if (!tx->dead)
			sip_cb_kill(0, tr);
	}
	sip_stack_reap(st);
	sip_stack_arm(st);
	return failed ? -1 : 0;
fail:
	osip_message_free(req);
	return -1;
}

/* ---- server transactions ---------------------------------------------------- */

osip_message_t *
sip_srv_response(struct sip_srv *srv, int code)
{
	struct sip_tx *tx = &srv->tx;
	osip_message_t *req = tx->tr->orig_request;
	osip_message_t *r;

	if (req == NULL)
		return NULL;
	if (tx->to_tag[0] == '\0')
		sip_msg_tag(tx->to_tag, sizeof(tx->to_tag));
	if ((r = sip_msg_response(req, code, tx->to_tag)) == NULL)
		return NULL;
	osip_message_set_header(r, "Server", tx->st->user_agent);
	return r;
}

int
sip_srv_reply(struct sip_srv *srv, osip_message_t *resp)
{
	struct sip_tx *tx = &srv->tx;
	struct sip_stack *st = tx->st;
	osip_event_t *evt;
	int final = resp->status_code >= 200;

	if (tx->answered || tx->dead) {
		osip_message_free(resp);
		return -1;
	}
	if ((evt = osip_new_outgoing_sipmessage(resp)) == NULL) {
		osip_message_free(resp);
		return -1;
	}
	if (final)
		tx->answered = 1;
	sip_tx_execute(tx, evt);
	if (!st->pumping)
		sip_stack_reap(st);
	sip_stack_arm(st);
	return 0;
}

int
sip_srv_reply_code(struct sip_srv *srv, int code, const char *hname,
    const char *hvalue)
{
	osip_message_t *r = sip_srv_response(srv, code);

	if (r == NULL) {
		/* nothing can be sent; still end the hold */
		srv->tx.answered = code >= 200;
		return -1;
	}
	if (hname != NULL && hvalue != NULL)
		osip_message_set_header(r, hname, hvalue);
	return sip_srv_reply(srv, r);
}

int
sip_stack_full(struct sip_stack *st)
{
	if (st->cfg.max_pending == 0 || st->nclient < st->cfg.max_pending)
		return 0;
	st->again_pending = 1;
	return 1;
}
