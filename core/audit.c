/* The audit log: records from the router's hook to the spool to the
 * store (audit.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "audit.h"
#include "ev.h"
#include "log.h"
#include "router.h"
#include "spool.h"
#include "store.h"
#include "util.h"

#define AUDIT_BUF_MAX		(4u * 1024 * 1024)	/* flush earlier */
#define AUDIT_JOB_MS		500	/* one drain job at most this long */
#define AUDIT_NFIELDS		11
#define AUDIT_REC_VERSION	1
#define AUDIT_COLS		12	/* the columns of audit.insert */
/* rows per INSERT: the largest chunk, and the smaller ones are powers of
 * two below it, so a connection prepares at most 7 texts */
#define AUDIT_ROWS		STORE_ROWS_MAX

struct audit {
	struct event_base *base;
	struct store *store;
	struct spool *spool;
	char *node;
	char spool_id[33];
	audit_level_fn level;
	void *level_arg;
	unsigned batch, flush_ms;
	/* the loop's buffer of framed records */
	char *buf;
	size_t len, cap, nrec;
	struct event *flush_ev;		/* activated by the first record */
	int flush_armed;
	struct event *timer;		/* every flush-ms */
	int inflight;			/* a drain job is queued or running */
	int failing;			/* the last job failed */
	int stopping;
	const char *alarm;
	uint64_t spooled, dropped, replayed;
	uint64_t spooled_open;		/* spooled, not yet replayed */
	char last_error[512];
	/* shared with the worker */
	uint64_t written;		/* __atomic */
	/* the worker's: rows decoded from the spool waiting for their
	 * multi-row INSERT, each with the strings its parameters point to */
	char *scratch[AUDIT_ROWS];
	size_t scratch_cap[AUDIT_ROWS];
	struct store_val rows[AUDIT_ROWS * AUDIT_COLS];
	size_t nrows;
	uint64_t job_written;
};

enum audit_family
audit_family(enum imgw_kind kind)
{
	switch (kind) {
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBED:
		return AUDIT_SUBSCRIPTIONS;
	case IMGW_EV_PRESENCE:
	case IMGW_EV_PROBE:
	case IMGW_EV_CHATSTATE:
		return AUDIT_PRESENCE;
	default:
		return AUDIT_IM;
	}
}

int
audit_default_level(void *arg, const char *src, const char *dst,
    enum imgw_kind kind, int *full_r)
{
	*full_r = 0;
	return audit_family(kind) != AUDIT_PRESENCE;
}

/* ---- records ------------------------------------------------------------------ */

static void
audit_reserve(char **out, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	*cap = *cap ? *cap : 4096;
	while (*cap < need)
		*cap *= 2;
	*out = xreallocarray(*out, *cap, 1);
}

static size_t
audit_put(char *p, const char *s)
{
	uint32_t l = s == NULL ? 0xffffffffu : (uint32_t)strlen(s);

	p[0] = (char)(l & 0xff);
	p[1] = (char)((l >> 8) & 0xff);
	p[2] = (char)((l >> 16) & 0xff);
	p[3] = (char)((l >> 24) & 0xff);
	if (s == NULL)
		return 4;
	memcpy(p + 4, s, l);
	return 4 + (size_t)l;
}

/* Append the payload of `rec` at *out + at; returns its length. */
static size_t
audit_encode_at(const struct audit_rec *rec, char **out, size_t *cap,
    size_t at)
{
	const char *f[AUDIT_NFIELDS] = { rec->node, rec->trace, rec->kind,
	    rec->from, rec->to, rec->src, rec->dst, rec->decision, rec->rule,
	    rec->condition, rec->content };
	size_t need = 9, i, n;
	uint64_t ts = (uint64_t)rec->ts_ms;
	char *p;

	for (i = 0; i < AUDIT_NFIELDS; i++)
		need += 4 + (f[i] != NULL ? strlen(f[i]) : 0);
	audit_reserve(out, cap, at + need);
	p = *out + at;
	p[0] = AUDIT_REC_VERSION;
	for (i = 0; i < 8; i++)
		p[1 + i] = (char)((ts >> (8 * i)) & 0xff);
	n = 9;
	for (i = 0; i < AUDIT_NFIELDS; i++)
		n += audit_put(p + n, f[i]);
	return n;
}

void
audit_rec_encode(const struct audit_rec *rec, char **out, size_t *cap,
    size_t *len_r)
{
	*len_r = audit_encode_at(rec, out, cap, 0);
}

int
audit_rec_decode(const void *payload, size_t len, struct audit_rec *rec,
    char **scratch, size_t *cap)
{
	const unsigned char *p = payload;
	const char **f[AUDIT_NFIELDS] = { &rec->node, &rec->trace, &rec->kind,
	    &rec->from, &rec->to, &rec->src, &rec->dst, &rec->decision,
	    &rec->rule, &rec->condition, &rec->content };
	size_t off = 9, i, so = 0;
	size_t offs[AUDIT_NFIELDS];
	uint64_t ts = 0;
	uint32_t l;

	if (len < 9 || p[0] != AUDIT_REC_VERSION)
		return -1;
	for (i = 0; i < 8; i++)
		ts |= (uint64_t)p[1 + i] << (8 * i);
	rec->ts_ms = (int64_t)ts;
	/* strings NUL-terminated in scratch: at most len bytes + NULs */
	audit_reserve(scratch, cap, len + AUDIT_NFIELDS + 1);
	for (i = 0; i < AUDIT_NFIELDS; i++) {
		if (off + 4 > len)
			return -1;
		l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
		    (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		off += 4;
		if (l == 0xffffffffu) {
			offs[i] = SIZE_MAX;
			continue;
		}
		if (l > len - off)
			return -1;
		memcpy(*scratch + so, p + off, l);
		(*scratch)[so + l] = '\0';
		offs[i] = so;
		so += l + 1;
		off += l;
	}
	for (i = 0; i < AUDIT_NFIELDS; i++)
		*f[i] = offs[i] == SIZE_MAX ? NULL : *scratch + offs[i];
	return 0;
}

/* ---- the worker: spool to database ------------------------------------------- */

struct audit_ins {
	struct audit *a;
	struct store_conn *sc;
};

/*
 * Insert the rows waiting in a->rows: chunks of AUDIT_ROWS, then powers
 * of two, one statement each (one round trip each).  0 or -1.
 */
static int
audit_insert_rows(struct audit_ins *in)
{
	struct audit *a = in->a;
	size_t done = 0;
	unsigned chunk;

	while (done < a->nrows) {
		for (chunk = AUDIT_ROWS; chunk > a->nrows - done; chunk /= 2)
			;
		if (store_exec(in->sc, store_sql_rows(in->sc, "audit.insert",
		    chunk), a->rows + done * AUDIT_COLS, chunk * AUDIT_COLS,
		    NULL) < 0)
			return -1;
		done += chunk;
	}
	a->nrows = 0;
	return 0;
}

static int
audit_insert_cb(void *arg, const void *payload, size_t len)
{
	struct audit_ins *in = arg;
	struct audit *a = in->a;
	struct audit_rec r;
	struct store_val *p;
	size_t i = a->nrows;

	if (audit_rec_decode(payload, len, &r, &a->scratch[i],
	    &a->scratch_cap[i]) < 0) {
		/* not ours to judge further: keep the place, say so */
		log_msg(IMGW_LOG_ERR, "audit", NULL, "a spooled record does not "
		    "decode; skipped");
		return 0;
	}
	p = a->rows + i * AUDIT_COLS;
	p[0] = STORE_INT_VAL(r.ts_ms);
	p[1] = STORE_TEXT_VAL(r.node ? r.node : "");
	p[2] = STORE_TEXT_VAL(r.trace);
	p[3] = STORE_TEXT_VAL(r.kind ? r.kind : "?");
	p[4] = STORE_TEXT_VAL(r.from);
	p[5] = STORE_TEXT_VAL(r.to);
	p[6] = STORE_TEXT_VAL(r.src);
	p[7] = STORE_TEXT_VAL(r.dst);
	p[8] = STORE_TEXT_VAL(r.decision ? r.decision : "?");
	p[9] = STORE_TEXT_VAL(r.rule);
	p[10] = STORE_TEXT_VAL(r.condition);
	p[11] = STORE_TEXT_VAL(r.content);
	if (++a->nrows == AUDIT_ROWS)
		return audit_insert_rows(in);
	return 0;
}

static int
audit_pos_row(void *arg, const struct store_val *cols, size_t n)
{
	struct spool_pos *pos = arg;

	if (n >= 2) {
		pos->seg = (uint64_t)store_val_int(&cols[0], 0);
		pos->off = (uint64_t)store_val_int(&cols[1], 0);
	}
	return 1;
}

static int
audit_drain_job(struct store_conn *sc, void *arg)
{
	struct audit *a = arg;
	struct audit_ins in = { .a = a, .sc = sc };
	struct spool_pos pos = { 0, 0 }, end;
	struct store_val p[5];
	uint64_t deadline = util_now_ms() + AUDIT_JOB_MS, now;
	int64_t rows;
	long n;

	a->job_written = 0;
	if (!store_conn_connected(sc)) {
		/* what the database cannot take now must survive the machine */
		spool_sync(a->spool);
		return store_conn_fail(sc, "database unavailable");
	}
	if (!spool_pos_known(a->spool)) {
		p[0] = STORE_TEXT_VAL(a->spool_id);
		if (store_query(sc, store_sql(sc, "audit.pos.get"), p, 1,
		    audit_pos_row, &pos) < 0)
			goto fail;
		spool_set_pos(a->spool, &pos);
	}
	do {
		if (store_begin(sc) < 0)
			goto fail;
		a->nrows = 0;
		n = spool_read(a->spool, a->batch, audit_insert_cb, &in, &end);
		if (n <= 0) {
			store_rollback(sc);
			if (n < 0)
				goto fail;
			break;
		}
		if (audit_insert_rows(&in) < 0)
			goto fail_tx;
		now = util_now_ms();
		p[0] = STORE_INT_VAL((int64_t)end.seg);
		p[1] = STORE_INT_VAL((int64_t)end.off);
		p[2] = STORE_INT_VAL((int64_t)now);
		p[3] = STORE_TEXT_VAL(a->node);
		p[4] = STORE_TEXT_VAL(a->spool_id);
		if (store_exec(sc, store_sql(sc, "audit.pos.update"), p, 5,
		    &rows) < 0)
			goto fail_tx;
		if (rows == 0 && store_exec(sc, store_sql(sc, "audit.pos.insert"),
		    p, 5, NULL) < 0)
			goto fail_tx;
		if (store_commit(sc) < 0)
			goto fail;
		spool_commit(a->spool, &end, (size_t)n);
		a->job_written += (uint64_t)n;
		__atomic_add_fetch(&a->written, (uint64_t)n, __ATOMIC_RELAXED);
	} while (util_now_ms() < deadline);
	return 0;
fail_tx:
	store_rollback(sc);
fail:
	spool_sync(a->spool);
	return -1;
}

/* ---- the loop -------------------------------------------------------------------- */

static void audit_kick(struct audit *a);

static void
audit_drain_done(void *arg, int rc, const char *err)
{
	struct audit *a = arg;
	uint64_t n = a->job_written, r;

	a->inflight = 0;
	r = n < a->spooled_open ? n : a->spooled_open;
	a->replayed += r;
	a->spooled_open -= r;
	if (rc < 0) {
		if (!a->failing || strcmp(a->last_error, err ? err : "") != 0)
			log_msg(IMGW_LOG_WARNING, "audit", NULL, "records stay in "
			    "the spool: %s", err ? err : "failed");
		snprintf(a->last_error, sizeof(a->last_error), "%s",
		    err ? err : "failed");
		a->failing = 1;
		return;		/* the timer tries again */
	}
	if (a->failing)
		log_msg(IMGW_LOG_NOTICE, "audit", NULL, "the database takes "
		    "records again; replaying the spool");
	a->failing = 0;
	a->last_error[0] = '\0';
	if (n > 0 && !a->stopping)
		audit_kick(a);		/* there may be more */
}

/* Submit a drain job unless one is under way. */
static void
audit_kick(struct audit *a)
{
	struct spool_stats st;

	if (a->inflight || a->store == NULL)
		return;
	spool_stats(a->spool, &st);
	if (st.pending_records == 0 && st.pos_known)
		return;
	if (store_submit_flags(a->store, audit_drain_job, audit_drain_done, a,
	    STORE_JOB_OFFLINE) == 0)
		a->inflight = 1;
}

void
audit_flush(struct audit *a)
{
	struct spool_stats st;
	char err[256];
	int down;

	a->flush_armed = 0;
	if (a->nrec == 0)
		return;
	down = a->failing || !store_up(a->store);
	if (spool_append(a->spool, a->buf, a->len, a->nrec, err,
	    sizeof(err)) < 0) {
		a->dropped += a->nrec;
		if (a->alarm == NULL) {
			a->alarm = strstr(err, "full") != NULL ? "spool full"
			    : "spool write failed";
			log_msg(IMGW_LOG_ERR, "audit", NULL, "ALARM: %s; audit "
			    "records are dropped (and counted) until there is "
			    "room", err);
		}
	} else {
		if (down) {
			a->spooled += a->nrec;
			a->spooled_open += a->nrec;
		}
		if (a->alarm != NULL) {
			log_msg(IMGW_LOG_NOTICE, "audit", NULL, "the audit spool "
			    "takes records again (%" PRIu64 " dropped so far)",
			    a->dropped);
			a->alarm = NULL;
		}
	}
	a->len = 0;
	a->nrec = 0;
	if (a->cap > AUDIT_BUF_MAX) {
		free(a->buf);
		a->buf = NULL;
		a->cap = 0;
	}
	spool_stats(a->spool, &st);
	if (st.pending_records >= a->batch)
		audit_kick(a);
}

static void
audit_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	audit_flush(arg);
}

static void
audit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct audit *a = arg;

	audit_flush(a);
	audit_kick(a);
}

void
audit_record(struct audit *a, const struct ev *ev, const char *src,
    const char *dst, const char *decision, const struct router_verdict *v)
{
	const struct imgw_event *e = &ev->e;
	struct audit_rec r;
	struct timeval tv;
	int full = 0;
	size_t n;

	if (a == NULL)
		return;
	/* a refusal is always recorded, with the rule that made it, whatever
	 * the level says of its family; the level still decides content */
	if (!a->level(a->level_arg, src, dst, e->kind, &full) &&
	    strcmp(decision, "refused") != 0)
		return;
	gettimeofday(&tv, NULL);
	r = (struct audit_rec){
		.ts_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000,
		.node = a->node,
		.trace = ev->trace[0] ? ev->trace : NULL,
		.kind = imgw_kind_name(e->kind),
		.from = e->from,
		.to = e->to,
		.src = src,
		.dst = dst,
		.decision = decision,
		.rule = v != NULL ? v->rule : NULL,
		.condition = v != NULL && v->refuse ? v->condition
		    : e->kind == IMGW_EV_ERROR ? e->condition : NULL,
	};
	if (full)
		r.content = e->kind == IMGW_EV_MESSAGE ? e->body
		    : e->kind == IMGW_EV_PRESENCE ? e->status
		    : e->kind == IMGW_EV_ERROR ? e->text : NULL;
	/* frame in place: header, then the payload right after it */
	audit_reserve(&a->buf, &a->cap, a->len + SPOOL_FRAME_HDR);
	n = audit_encode_at(&r, &a->buf, &a->cap, a->len + SPOOL_FRAME_HDR);
	{
		unsigned char *h = (unsigned char *)a->buf + a->len;
		uint32_t crc = spool_crc32(h + SPOOL_FRAME_HDR, n);
		int i;

		for (i = 0; i < 4; i++) {
			h[i] = (unsigned char)((n >> (8 * i)) & 0xff);
			h[4 + i] = (unsigned char)((crc >> (8 * i)) & 0xff);
		}
	}
	a->len += SPOOL_FRAME_HDR + n;
	a->nrec++;
	if (a->len >= AUDIT_BUF_MAX) {
		audit_flush(a);
	} else if (!a->flush_armed) {
		/* after the callbacks of this loop turn */
		a->flush_armed = 1;
		event_active(a->flush_ev, EV_TIMEOUT, 0);
	}
}

struct audit *
audit_new(struct event_base *base, struct store *store, const char *node,
    char *err, size_t errlen)
{
	const struct store_conf *sc = store_get_conf(store);
	struct timeval tv;
	struct audit *a;
	struct spool_stats st;
	char *dir;

	a = xcalloc(1, sizeof(*a));
	a->base = base;
	a->store = store;
	a->node = xstrdup(node ? node : "imgw");
	a->level = audit_default_level;
	a->batch = sc->batch;
	a->flush_ms = sc->flush_ms;
	if (store_state_dir(sc, err, errlen) < 0)
		goto fail;
	dir = xasprintf("%s/audit-spool", sc->state);
	a->spool = spool_open(dir, sc->spool_max, err, errlen);
	free(dir);
	if (a->spool == NULL)
		goto fail;
	snprintf(a->spool_id, sizeof(a->spool_id), "%s", spool_id(a->spool));
	spool_stats(a->spool, &st);
	a->spooled = a->spooled_open = st.pending_records;
	a->flush_ev = event_new(base, -1, 0, audit_flush_cb, a);
	a->timer = event_new(base, -1, EV_PERSIST, audit_timer_cb, a);
	tv.tv_sec = a->flush_ms / 1000;
	tv.tv_usec = (a->flush_ms % 1000) * 1000;
	event_add(a->timer, &tv);
	audit_kick(a);	/* learn the position, replay what is left */
	return a;
fail:
	free(a->node);
	free(a);
	return NULL;
}

void
audit_set_level(struct audit *a, audit_level_fn fn, void *arg)
{
	a->level = fn != NULL ? fn : audit_default_level;
	a->level_arg = arg;
}

void
audit_set_node(struct audit *a, const char *node)
{
	free(a->node);
	a->node = xstrdup(node ? node : "imgw");
}

void
audit_stop(struct audit *a)
{
	if (a == NULL)
		return;
	audit_flush(a);
	a->stopping = 1;
	audit_kick(a);
}

void
audit_free(struct audit *a)
{
	size_t i;

	if (a == NULL)
		return;
	audit_flush(a);
	if (a->flush_ev != NULL)
		event_free(a->flush_ev);
	if (a->timer != NULL)
		event_free(a->timer);
	spool_close(a->spool);
	free(a->buf);
	for (i = 0; i < AUDIT_ROWS; i++)
		free(a->scratch[i]);
	free(a->node);
	free(a);
}

void
audit_get_status(struct audit *a, struct audit_status *st)
{
	struct spool_stats ss;

	memset(st, 0, sizeof(*st));
	spool_stats(a->spool, &ss);
	st->queued = a->nrec;
	st->pending = ss.pending_records;
	st->pending_bytes = ss.pending_bytes;
	st->spool_max = ss.max_bytes;
	st->written = __atomic_load_n(&a->written, __ATOMIC_RELAXED);
	st->spooled = a->spooled;
	st->replayed = a->replayed;
	st->dropped = a->dropped;
	st->corrupt = ss.corrupt;
	st->writing = !a->failing;
	st->alarm = a->alarm;
	snprintf(st->last_error, sizeof(st->last_error), "%s", a->last_error);
}
