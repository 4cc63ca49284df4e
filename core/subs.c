/* Presence subscriptions in the store (subs.h). */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include "log.h"
#include "store.h"
#include "subs.h"
#include "util.h"

#define SUBS_ADDR_MAX	512
#define SUBS_DATA_MAX	(64 * 1024)

/* One put or del: everything copied. */
struct subs_op {
	struct subs *s;
	char *community, *watcher, *presentity, *state, *data, *node;
	int64_t expires_ms;
	int del;
};

struct subs_row {
	struct subs_row *next;
	struct imgw_sub sub;	/* strings in the same allocation */
};

/* One sub_list: rows collected on the worker, handed out on the loop. */
struct subs_list {
	LIST_ENTRY(subs_list) link;
	struct subs *s;
	struct imgw_instance *inst;
	char *community;
	void (*cb)(void *arg, const struct imgw_sub *sub);
	void *arg;
	int cancelled;
	struct subs_row *head, *tail;
};

struct subs {
	struct store *store;
	char *node;
	LIST_HEAD(, subs_list) lists;	/* pending */
	uint64_t puts, dels, nlists, failed;
};

static struct subs *subs_cur;

struct subs *
subs_new(struct store *store, const char *node)
{
	struct subs *s = xcalloc(1, sizeof(*s));

	s->store = store;
	s->node = xstrdup(node ? node : "imgw");
	LIST_INIT(&s->lists);
	return s;
}

void
subs_free(struct subs *s)
{
	struct subs_list *l;

	if (s == NULL)
		return;
	if (subs_cur == s)
		subs_cur = NULL;
	/* store_free ran every done callback: nothing should be left */
	while ((l = LIST_FIRST(&s->lists)) != NULL) {
		LIST_REMOVE(l, link);
		l->s = NULL;
	}
	free(s->node);
	free(s);
}

void
subs_set_node(struct subs *s, const char *node)
{
	free(s->node);
	s->node = xstrdup(node ? node : "imgw");
}

void
subs_attach(struct subs *s)
{
	subs_cur = s;
}

struct subs *
subs_current(void)
{
	return subs_cur;
}

static int
subs_valid_addr(const char *a)
{
	return a != NULL && a[0] != '\0' && strlen(a) <= SUBS_ADDR_MAX;
}

static void
subs_op_free(struct subs_op *op)
{
	free(op->community);
	free(op->watcher);
	free(op->presentity);
	free(op->state);
	free(op->data);
	free(op->node);
	free(op);
}

static int
subs_op_job(struct store_conn *sc, void *arg)
{
	struct subs_op *op = arg;
	struct store_val p[8];

	if (op->del) {
		p[0] = STORE_TEXT_VAL(op->community);
		p[1] = STORE_TEXT_VAL(op->watcher);
		p[2] = STORE_TEXT_VAL(op->presentity);
		return store_exec(sc, store_sql(sc, "sub.delete"), p, 3, NULL);
	}
	p[0] = STORE_TEXT_VAL(op->community);
	p[1] = STORE_TEXT_VAL(op->watcher);
	p[2] = STORE_TEXT_VAL(op->presentity);
	p[3] = STORE_TEXT_VAL(op->state);
	p[4] = op->expires_ms > 0 ? STORE_INT_VAL(op->expires_ms)
	    : STORE_TEXT_VAL(NULL);
	p[5] = STORE_TEXT_VAL(op->data);
	p[6] = STORE_TEXT_VAL(op->node);
	{
		/* updated_ms is wall-clock time, like every time in the store */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		p[7] = STORE_INT_VAL((int64_t)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000);
	}
	return store_exec(sc, store_sql(sc, "sub.upsert"), p, 8, NULL);
}

static void
subs_op_done(void *arg, int rc, const char *err)
{
	struct subs_op *op = arg;

	if (rc < 0) {
		op->s->failed++;
		log_msg(IMGW_LOG_WARNING, op->community, NULL, "subscription "
		    "%s -> %s not %s in the store: %s", op->watcher,
		    op->presentity, op->del ? "removed" : "saved",
		    err ? err : "failed");
	}
	subs_op_free(op);
}

static int
subs_submit_op(struct subs *s, struct subs_op *op)
{
	op->s = s;
	if (store_submit(s->store, subs_op_job, subs_op_done, op) < 0) {
		s->failed++;
		log_msg(IMGW_LOG_WARNING, op->community, NULL, "subscription "
		    "%s -> %s: the store's queue is full", op->watcher,
		    op->presentity);
		subs_op_free(op);
		return -1;
	}
	return 0;
}

int
subs_put(struct subs *s, const char *community, const struct imgw_sub *sub)
{
	struct subs_op *op;

	if (s == NULL || community == NULL || sub == NULL ||
	    sub->size < offsetof(struct imgw_sub, data) + sizeof(sub->data) ||
	    !subs_valid_addr(sub->watcher) || !subs_valid_addr(sub->presentity) ||
	    sub->state == NULL || (strcmp(sub->state, "pending") != 0 &&
	    strcmp(sub->state, "active") != 0 &&
	    strcmp(sub->state, "terminated") != 0) ||
	    (sub->data != NULL && strlen(sub->data) > SUBS_DATA_MAX) ||
	    sub->expires_ms < 0)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->community = xstrdup(community);
	op->watcher = xstrdup(sub->watcher);
	op->presentity = xstrdup(sub->presentity);
	op->state = xstrdup(sub->state);
	op->data = sub->data ? xstrdup(sub->data) : NULL;
	op->node = xstrdup(s->node);
	op->expires_ms = sub->expires_ms;
	s->puts++;
	return subs_submit_op(s, op);
}

int
subs_del(struct subs *s, const char *community, const char *watcher,
    const char *presentity)
{
	struct subs_op *op;

	if (s == NULL || community == NULL || !subs_valid_addr(watcher) ||
	    !subs_valid_addr(presentity))
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->del = 1;
	op->community = xstrdup(community);
	op->watcher = xstrdup(watcher);
	op->presentity = xstrdup(presentity);
	s->dels++;
	return subs_submit_op(s, op);
}

/* ---- list -------------------------------------------------------------------- */

static char *
subs_cpy(char **p, const char *s)
{
	char *r;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	r = memcpy(*p, s, n);
	*p += n;
	return r;
}

static int
subs_list_row(void *arg, const struct store_val *c, size_t n)
{
	struct subs_list *l = arg;
	struct subs_row *r;
	size_t need = sizeof(*r);
	char *p;
	int i;

	if (n < 5 || c[0].type != STORE_TEXT || c[1].type != STORE_TEXT)
		return 0;
	for (i = 0; i < 5; i++)
		if (c[i].type == STORE_TEXT)
			need += strlen(c[i].s) + 1;
	r = xcalloc(1, need);
	p = (char *)(r + 1);
	imgw_sub_init(&r->sub);
	r->sub.watcher = subs_cpy(&p, c[0].s);
	r->sub.presentity = subs_cpy(&p, c[1].s);
	r->sub.state = c[2].type == STORE_TEXT ? subs_cpy(&p, c[2].s) : "active";
	r->sub.expires_ms = store_val_int(&c[3], 0);
	r->sub.data = c[4].type == STORE_TEXT ? subs_cpy(&p, c[4].s) : NULL;
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	return 0;
}

static int
subs_list_job(struct store_conn *sc, void *arg)
{
	struct subs_list *l = arg;
	struct store_val p = STORE_TEXT_VAL(l->community);

	return store_query(sc, store_sql(sc, "sub.list"), &p, 1, subs_list_row, l);
}

static void
subs_list_done(void *arg, int rc, const char *err)
{
	struct subs_list *l = arg;
	struct subs_row *r, *next;

	if (l->s != NULL)
		LIST_REMOVE(l, link);
	if (rc < 0) {
		if (l->s != NULL)
			l->s->failed++;
		log_msg(IMGW_LOG_WARNING, l->community, NULL, "cannot read the "
		    "stored subscriptions: %s", err ? err : "failed");
	}
	for (r = l->head; r != NULL; r = next) {
		next = r->next;
		if (!l->cancelled && rc == 0)
			l->cb(l->arg, &r->sub);
		free(r);
	}
	if (!l->cancelled)
		l->cb(l->arg, NULL);
	free(l->community);
	free(l);
}

int
subs_list(struct subs *s, struct imgw_instance *inst, const char *community,
    void (*cb)(void *arg, const struct imgw_sub *sub), void *arg)
{
	struct subs_list *l;

	if (s == NULL || community == NULL || cb == NULL)
		return -1;
	l = xcalloc(1, sizeof(*l));
	l->s = s;
	l->inst = inst;
	l->community = xstrdup(community);
	l->cb = cb;
	l->arg = arg;
	if (store_submit(s->store, subs_list_job, subs_list_done, l) < 0) {
		free(l->community);
		free(l);
		s->failed++;
		return -1;
	}
	LIST_INSERT_HEAD(&s->lists, l, link);
	s->nlists++;
	return 0;
}

void
subs_cancel(struct subs *s, struct imgw_instance *inst)
{
	struct subs_list *l;

	if (s == NULL)
		return;
	LIST_FOREACH(l, &s->lists, link)
		if (l->inst == inst)
			l->cancelled = 1;
}

void
subs_get_status(struct subs *s, struct subs_status *st)
{
	st->puts = s->puts;
	st->dels = s->dels;
	st->lists = s->nlists;
	st->failed = s->failed;
}
