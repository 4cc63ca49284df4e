/*
 * Next-hop lists and fail-over between their addresses (RFC 3263 4.3).
 *
 * A list (struct sip_hops) is what resolve.c found for a domain or a
 * static route, shared by reference between the cache and the requests
 * walking it.  sip_stack_request_hops sends a request through a "walk"
 * (struct sip_fo): the order to try the addresses in (those not marked
 * down first, in the list's order, then the ones marked down, so a
 * request still goes somewhere when all are), the app's callback, and a
 * copy of the request kept while another address remains.  The walk
 * stands between the stack and the app as the transaction's callback:
 * a local failure (transport error or timeout, the stack's 503 and 408
 * without a response) or a 503 from the peer marks the address down and,
 * when another address remains and the stack is not stopping, sends the
 * copy there in a new transaction (a new branch: sip_stack_request writes
 * a fresh Via) from a zero-delay timer, outside the callback that
 * reported the failure.  The app's callback runs once, with the answer
 * of the last attempt.
 *
 * Down marks live in the stack (st->down), keyed by transport and
 * address, so every request and every list sharing an address sees them;
 * any other answer from a marked address clears its mark.  Failures that
 * a stop causes mark nothing.
 * Nothing here is per app: the sip connector and later SIP-based ones get
 * fail-over by using sip_stack_request_hops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipstack-internal.h"

#define SIP_DOWN_MAX		64	/* addresses remembered as down */
#define SIP_DOWN_MS		30000	/* after a transport error or a timeout */
#define SIP_DOWN_503_MAX_S	300	/* Retry-After honoured up to this */

struct sip_hops {
	unsigned refs;
	size_t n, cap;
	struct sip_taddr ta[];		/* name unused: the walk has it */
};

struct sip_down {
	int proto;
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t until_ms;
};

/* One request walking a list; owned by the transaction in flight (as its
 * callback argument) or, between attempts, by st->fo_wait. */
struct sip_fo {
	struct sip_stack *st;
	struct sip_hops *hops;		/* a reference */
	unsigned char order[SIP_HOPS_MAX];
	size_t norder, pos;		/* order[pos]: the address in use */
	char name[SIP_HOST_MAX];
	sip_response_cb cb;
	void *arg;
	osip_message_t *spare;		/* the request again, for the next address */
	struct imgw_timer *timer;	/* the next attempt is due */
	struct sip_fo *prev, *next;	/* st->fo_wait */
};

/* ---- lists ------------------------------------------------------------------ */

struct sip_hops *
sip_hops_new(size_t cap)
{
	struct sip_hops *h;

	if (cap == 0 || cap > SIP_HOPS_MAX)
		cap = SIP_HOPS_MAX;
	if ((h = calloc(1, sizeof(*h) + cap * sizeof(h->ta[0]))) == NULL)
		return NULL;
	h->refs = 1;
	h->cap = cap;
	return h;
}

/* Append ta (name dropped) unless the list is full or has it.  0, or -1
 * when full. */
int
sip_hops_add(struct sip_hops *h, const struct sip_taddr *ta)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->ta[i].proto == ta->proto &&
		    sip_net_same(&h->ta[i].ss, h->ta[i].len, &ta->ss, ta->len))
			return 0;
	if (h->n >= h->cap)
		return -1;
	memset(&h->ta[h->n], 0, sizeof(h->ta[h->n]));
	h->ta[h->n].proto = ta->proto;
	memcpy(&h->ta[h->n].ss, &ta->ss, ta->len);
	h->ta[h->n].len = ta->len;
	h->n++;
	return 0;
}

struct sip_hops *
sip_hops_ref(struct sip_hops *h)
{
	h->refs++;
	return h;
}

void
sip_hops_unref(struct sip_hops *h)
{
	if (h != NULL && --h->refs == 0)
		free(h);
}

size_t
sip_hops_count(const struct sip_hops *h)
{
	return h->n;
}

const struct sip_taddr *
sip_hops_get(const struct sip_hops *h, size_t i)
{
	return i < h->n ? &h->ta[i] : NULL;
}

/* "TLS 192.0.2.1:5061" for logs. */
static void
sip_hops_text(const struct sip_taddr *ta, char *buf, size_t len)
{
	char host[64];
	int port = 0;

	if (sip_net_ntop((const struct sockaddr *)&ta->ss, host, sizeof(host), &port) == -1)
		snprintf(host, sizeof(host), "?");
	snprintf(buf, len, strchr(host, ':') ? "%s [%s]:%d" : "%s %s:%d",
	    sip_proto_name(ta->proto), host, port);
}

/* ---- down marks ----------------------------------------------------------------- */

static struct sip_down *
sip_down_find(struct sip_stack *st, const struct sip_taddr *ta)
{
	size_t i;

	for (i = 0; i < st->ndown; i++)
		if (st->down[i].proto == ta->proto &&
		    sip_net_same(&st->down[i].ss, st->down[i].len, &ta->ss, ta->len))
			return &st->down[i];
	return NULL;
}

static int
sip_down_is(struct sip_stack *st, const struct sip_taddr *ta, uint64_t now)
{
	const struct sip_down *d = sip_down_find(st, ta);

	return d != NULL && d->until_ms > now;
}

/* Mark ta down for ms; a full table gives up its oldest mark. */
static void
sip_down_mark(struct sip_stack *st, const struct sip_taddr *ta, uint64_t ms)
{
	struct sip_down *d = sip_down_find(st, ta);
	size_t i;

	if (d == NULL && st->down == NULL &&
	    (st->down = calloc(SIP_DOWN_MAX, sizeof(*st->down))) == NULL)
		return;
	if (d == NULL && st->ndown < SIP_DOWN_MAX)
		d = &st->down[st->ndown++];
	if (d == NULL) {
		d = &st->down[0];
		for (i = 1; i < st->ndown; i++)
			if (st->down[i].until_ms < d->until_ms)
				d = &st->down[i];
	}
	d->proto = ta->proto;
	memcpy(&d->ss, &ta->ss, ta->len);
	d->len = ta->len;
	d->until_ms = sip_now_ms() + ms;
}

/* ---- walks -------------------------------------------------------------------- */

/* Take fo off st->fo_wait if it is there. */
static void
sip_fo_unwait(struct sip_fo *fo)
{
	struct sip_stack *st = fo->st;

	if (fo->prev == NULL && st->fo_wait != fo)
		return;
	if (fo->prev != NULL)
		fo->prev->next = fo->next;
	else
		st->fo_wait = fo->next;
	if (fo->next != NULL)
		fo->next->prev = fo->prev;
	fo->prev = fo->next = NULL;
}

static void
sip_fo_free(struct sip_fo *fo)
{
	if (fo->timer != NULL) {
		fo->st->cfg.host->timer_del(fo->timer);
		fo->timer = NULL;
	}
	sip_fo_unwait(fo);
	if (fo->spare != NULL)
		osip_message_free(fo->spare);
	sip_hops_unref(fo->hops);
	free(fo);
}

/* The app's answer, once; the walk ends. */
static void
sip_fo_end(struct sip_fo *fo, int code, osip_message_t *resp)
{
	sip_response_cb cb = fo->cb;
	void *arg = fo->arg;

	sip_fo_free(fo);
	if (cb != NULL)
		cb(arg, code, resp);
}

static void sip_fo_answer_cb(void *arg, int code, osip_message_t *resp);

/*
 * Send req (taken) to order[pos], order[pos + 1]... until one takes it.
 * 0: a transaction runs (fo is its callback argument); -1: no address
 * took it (req freed; fo still the caller's).
 */
static int
sip_fo_send(struct sip_fo *fo, osip_message_t *req)
{
	struct sip_stack *st = fo->st;
	struct sip_taddr ta;
	char text[100];

	for (; fo->pos < fo->norder && !st->stopping; fo->pos++) {
		if (fo->spare != NULL)
			osip_message_free(fo->spare);
		fo->spare = NULL;
		if (fo->pos + 1 < fo->norder && osip_message_clone(req, &fo->spare) != 0)
			fo->spare = NULL;	/* no memory: no fail-over */
		ta = fo->hops->ta[fo->order[fo->pos]];
		memcpy(ta.name, fo->name, sizeof(ta.name));
		if (sip_stack_request(st, req, &ta, sip_fo_answer_cb, fo) == 0)
			return 0;
		sip_down_mark(st, &ta, SIP_DOWN_MS);
		sip_hops_text(&ta, text, sizeof(text));
		SIP_LOG(st, IMGW_LOG_INFO, "cannot send to %s (%s)%s", text, fo->name,
		    fo->spare != NULL ? ": trying the next address" : "");
		if ((req = fo->spare) == NULL)
			return -1;
		fo->spare = NULL;
		SIP_COUNT(st, "sip-failovers");
	}
	if (req != NULL)
		osip_message_free(req);
	return -1;
}

static void
sip_fo_retry_cb(void *arg)
{
	struct sip_fo *fo = arg;
	osip_message_t *req = fo->spare;

	fo->timer = NULL;	/* fired: the core frees it */
	fo->spare = NULL;
	sip_fo_unwait(fo);
	if (sip_fo_send(fo, req) == -1)
		sip_fo_end(fo, 503, NULL);	/* no address took it */
}

/* Seconds of a 503's Retry-After (RFC 3261 20.33), else 0. */
static unsigned
sip_fo_retry_after(const osip_message_t *resp)
{
	const char *v = sip_msg_header(resp, "retry-after", NULL);
	unsigned long s = 0;

	if (v == NULL)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v >= '0' && *v <= '9' && s <= SIP_DOWN_503_MAX_S; v++)
		s = s * 10 + (unsigned long)(*v - '0');
	return s > SIP_DOWN_503_MAX_S ? SIP_DOWN_503_MAX_S : (unsigned)s;
}

/* A transaction of the walk ended. */
static void
sip_fo_answer_cb(void *arg, int code, osip_message_t *resp)
{
	struct sip_fo *fo = arg;
	struct sip_stack *st = fo->st;
	const struct sip_taddr *ta = &fo->hops->ta[fo->order[fo->pos]];
	struct sip_down *d;
	unsigned ra = 0;
	char text[100];

	if (st->stopping) {
		sip_fo_end(fo, code, resp);	/* the stop's 503 says nothing of ta */
		return;
	}
	if (!(resp == NULL && (code == 408 || code == 503)) &&
	    !(resp != NULL && code == 503)) {
		if ((d = sip_down_find(st, ta)) != NULL)
			d->until_ms = 0;	/* it answers again */
		sip_fo_end(fo, code, resp);
		return;
	}
	if (resp != NULL)
		ra = sip_fo_retry_after(resp);
	sip_down_mark(st, ta, ra > 0 ? 1000u * ra : SIP_DOWN_MS);
	sip_hops_text(ta, text, sizeof(text));
	if (fo->spare == NULL) {
		SIP_LOG(st, IMGW_LOG_DEBUG, "%s (%s) failed (%d%s), no address left", text,
		    fo->name, code, resp ? "" : ", local");
		sip_fo_end(fo, code, resp);
		return;
	}
	SIP_LOG(st, IMGW_LOG_INFO, "%s (%s) failed (%d%s): trying the next address",
	    text, fo->name, code, resp ? " from the peer" : code == 408 ? ", no answer" :
	    ", transport");
	SIP_COUNT(st, "sip-failovers");
	fo->pos++;
	fo->timer = st->cfg.host->timer_add(st->cfg.inst, 0, sip_fo_retry_cb, fo);
	if (fo->timer == NULL) {
		sip_fo_end(fo, code, resp);
		return;
	}
	fo->next = st->fo_wait;
	if (st->fo_wait != NULL)
		st->fo_wait->prev = fo;
	st->fo_wait = fo;
}

int
sip_stack_request_hops(struct sip_stack *st, osip_message_t *req,
    struct sip_hops *hops, const char *name, sip_response_cb cb, void *arg)
{
	uint64_t now = sip_now_ms();
	struct sip_fo *fo;
	size_t i;
	int pass;

	if (hops == NULL || hops->n == 0 || (fo = calloc(1, sizeof(*fo))) == NULL) {
		osip_message_free(req);
		return -1;
	}
	fo->st = st;
	fo->hops = sip_hops_ref(hops);
	snprintf(fo->name, sizeof(fo->name), "%s", name ? name : "");
	fo->cb = cb;
	fo->arg = arg;
	/* the addresses not marked down first, then the others */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < hops->n && fo->norder < SIP_HOPS_MAX; i++)
			if (sip_down_is(st, &hops->ta[i], now) == pass)
				fo->order[fo->norder++] = (unsigned char)i;
	if (sip_fo_send(fo, req) == -1) {
		fo->cb = NULL;		/* -1: the app's callback does not run */
		sip_fo_free(fo);
		return -1;
	}
	return 0;
}

/* Stop: walks waiting for their next attempt end with 503. */
void
sip_fo_stop(struct sip_stack *st)
{
	while (st->fo_wait != NULL)
		sip_fo_end(st->fo_wait, 503, NULL);
}

void
sip_fo_free_all(struct sip_stack *st)
{
	sip_fo_stop(st);
	free(st->down);
	st->down = NULL;
	st->ndown = 0;
}
