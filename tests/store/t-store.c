/*
 * The store suite (core/store.c, core/store-sql.c): schema init, version,
 * migrate, a newer schema refused, statements with bound parameters
 * (UTF-8, NULL, long text), transactions, the subscription upsert, audit
 * queries, and the asynchronous path through the loop.
 *
 * Runs against SQLite in a scratch folder, or against the database of
 * $IMGW_TEST_DSN (tests/store/t-store-db.py starts private PostgreSQL
 * and MariaDB servers and runs this program against each).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "store.h"
#include "tap.h"
#include "testlib.h"

static char *tdir;

static struct conf *
st_conf(const char *extra)
{
	const char *dsn = getenv("IMGW_TEST_DSN");
	char *text, *path, err[1024];
	struct conf *c;

	if (asprintf(&text, "[gateway]\nnode = t\n[store]\n%s%s%sstate = %s\n%s",
	    dsn ? "dsn = " : "", dsn ? dsn : "", dsn ? "\n" : "", tdir,
	    extra ? extra : "") < 0)
		bail_out("out of memory");
	path = tl_write(tdir, "t.conf", text);
	if ((c = conf_load(path, err, sizeof(err))) == NULL)
		bail_out("config: %s", err);
	free(text);
	free(path);
	return c;
}

/* ---- jobs ---------------------------------------------------------------- */

static int
st_drop(struct store_conn *sc, void *arg)
{
	static const char *const tables[] = { "imgw_audit_pos", "imgw_subscription",
	    "imgw_audit", "imgw_policy_global", "imgw_policy_rule",
	    "imgw_policy_community", "imgw_schema", NULL };
	char sql[128];
	int i;

	for (i = 0; tables[i] != NULL; i++) {
		snprintf(sql, sizeof(sql), "DROP TABLE %s", tables[i]);
		store_exec(sc, sql, NULL, 0, NULL);	/* absent: fine */
	}
	return 0;
}

static int
st_version(struct store_conn *sc, void *arg)
{
	return store_schema_version(sc, arg);
}

static int
st_set_version(struct store_conn *sc, void *arg)
{
	struct store_val v = STORE_INT_VAL(*(int *)arg);

	return store_exec(sc, "UPDATE imgw_schema SET version = ?", &v, 1, NULL);
}

struct st_rows {
	int n;
	char text[16][256];
	int64_t ints[16];
	int nulls;
	size_t longlen;
	int longok;
};

static int
st_row(void *arg, const struct store_val *cols, size_t n)
{
	struct st_rows *r = arg;
	size_t i;

	for (i = 0; i < n && i < 16; i++) {
		if (cols[i].type == STORE_NULL)
			r->nulls++;
		else if (cols[i].type == STORE_INT)
			r->ints[i] = cols[i].i;
		else if (strlen(cols[i].s) > 10000) {
			const char *s = cols[i].s;
			size_t j, len = strlen(s);

			r->longlen = len;
			r->longok = 1;
			for (j = 0; j < len; j++)
				if (s[j] != "0123456789abcdef"[j % 16])
					r->longok = 0;
		} else {
			snprintf(r->text[i], sizeof(r->text[i]), "%.255s", cols[i].s);
			r->ints[i] = store_val_int(&cols[i], -1);
		}
	}
	r->n++;
	return 0;
}

#define UTF8 "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad"

static int
st_audit(struct store_conn *sc, void *arg)
{
	struct st_rows *r = arg;
	char *big = malloc(200001);
	struct store_val p[12];
	int i, rc = -1;

	if (big == NULL)
		return store_conn_fail(sc, "oom");
	for (i = 0; i < 200000; i++)
		big[i] = "0123456789abcdef"[i % 16];
	big[200000] = '\0';
	for (i = 0; i < 3; i++) {
		p[0] = STORE_INT_VAL(1700000000000LL + i);
		p[1] = STORE_TEXT_VAL("t");
		p[2] = STORE_TEXT_VAL("trace-1");
		p[3] = STORE_TEXT_VAL("message");
		p[4] = STORE_TEXT_VAL(i == 2 ? "carol@c.example" : UTF8 "@a.example");
		p[5] = STORE_TEXT_VAL("bob@b.example");
		p[6] = STORE_TEXT_VAL("a");
		p[7] = STORE_TEXT_VAL("b");
		p[8] = STORE_TEXT_VAL("routed");
		p[9] = STORE_TEXT_VAL(NULL);
		p[10] = STORE_TEXT_VAL(NULL);
		p[11] = STORE_TEXT_VAL(i == 0 ? big : i == 1 ? UTF8 : NULL);
		if (store_exec(sc, store_sql(sc, "audit.insert"), p, 12, NULL) < 0)
			goto out;
	}
	p[0] = STORE_INT_VAL(1700000000000LL);
	p[1] = STORE_INT_VAL(1700000000002LL);
	p[2] = STORE_TEXT_VAL(UTF8 "@a.example");
	p[3] = STORE_TEXT_VAL(UTF8 "@a.example");
	p[4] = STORE_INT_VAL(10);
	rc = store_query(sc, store_sql(sc, "audit.query.user"), p, 5, st_row, r);
out:
	free(big);
	return rc;
}

static int
st_count(struct store_conn *sc, void *arg)
{
	struct st_rows *r = arg;

	memset(r, 0, sizeof(*r));
	return store_query(sc, store_sql(sc, "audit.count"), NULL, 0, st_row, r);
}

static int
st_rollback(struct store_conn *sc, void *arg)
{
	struct store_val p[12] = { STORE_INT_VAL(1), STORE_TEXT_VAL("t"),
	    STORE_TEXT_VAL("x"), STORE_TEXT_VAL("message"), STORE_TEXT_VAL("a@a"),
	    STORE_TEXT_VAL("b@b"), STORE_TEXT_VAL("a"), STORE_TEXT_VAL("b"),
	    STORE_TEXT_VAL("routed"), STORE_TEXT_VAL(NULL), STORE_TEXT_VAL(NULL),
	    STORE_TEXT_VAL(NULL) };

	if (store_begin(sc) < 0 ||
	    store_exec(sc, store_sql(sc, "audit.insert"), p, 12, NULL) < 0 ||
	    store_exec(sc, store_sql(sc, "audit.insert"), p, 12, NULL) < 0)
		return -1;
	return store_rollback(sc);
}

static int
st_bad_sql(struct store_conn *sc, void *arg)
{
	return store_exec(sc, "SELECT no_such_column FROM imgw_audit", NULL, 0,
	    NULL);
}

static int
st_subs(struct store_conn *sc, void *arg)
{
	struct st_rows *r = arg;
	struct store_val p[8];
	int i;

	for (i = 0; i < 2; i++) {
		p[0] = STORE_TEXT_VAL("partner");
		p[1] = STORE_TEXT_VAL("w@partner.example");
		p[2] = STORE_TEXT_VAL(UTF8 "@corp.example");
		p[3] = STORE_TEXT_VAL(i == 0 ? "pending" : "active");
		p[4] = i == 0 ? STORE_TEXT_VAL(NULL) : STORE_INT_VAL(1800000000000LL);
		p[5] = STORE_TEXT_VAL(i == 0 ? NULL : "{\"id\":7}");
		p[6] = STORE_TEXT_VAL("t");
		p[7] = STORE_INT_VAL(1700000000000LL + i);
		if (store_exec(sc, store_sql(sc, "sub.upsert"), p, 8, NULL) < 0)
			return -1;
	}
	p[0] = STORE_TEXT_VAL("partner");
	return store_query(sc, store_sql(sc, "sub.list"), p, 1, st_row, r);
}

static int
st_sub_del(struct store_conn *sc, void *arg)
{
	struct store_val p[3] = { STORE_TEXT_VAL("partner"),
	    STORE_TEXT_VAL("w@partner.example"),
	    STORE_TEXT_VAL(UTF8 "@corp.example") };

	return store_exec(sc, store_sql(sc, "sub.delete"), p, 3, arg);
}

/* 64 + 4 + 2 rows in three multi-row INSERTs (what the audit writer
 * sends), then read back. */
static int
st_multi(struct store_conn *sc, void *arg)
{
	struct st_rows *r = arg;
	static struct store_val p[64 * 12];
	static char from[64][64];
	static const unsigned chunks[] = { 64, 4, 2 };
	struct store_val q[2];
	struct st_rows cnt;
	unsigned c, i, k = 0;

	if (store_sql_rows(sc, "audit.insert", 0) != NULL ||
	    store_sql_rows(sc, "audit.insert", STORE_ROWS_MAX + 1) != NULL ||
	    store_sql_rows(sc, "sub.list", 2) != NULL)
		return store_conn_fail(sc, "store_sql_rows took a bad request");
	for (c = 0; c < 3; c++) {
		for (i = 0; i < chunks[c]; i++, k++) {
			struct store_val *v = p + i * 12;

			snprintf(from[i], sizeof(from[i]), "%u" UTF8 "@m.example",
			    k);
			v[0] = STORE_INT_VAL(1600000000000LL + k);
			v[1] = STORE_TEXT_VAL("multi");
			v[2] = STORE_TEXT_VAL(NULL);
			v[3] = STORE_TEXT_VAL("message");
			v[4] = STORE_TEXT_VAL(from[i]);
			v[5] = STORE_TEXT_VAL("bob@b.example");
			v[6] = STORE_TEXT_VAL("a");
			v[7] = STORE_TEXT_VAL(NULL);
			v[8] = STORE_TEXT_VAL("routed");
			v[9] = STORE_TEXT_VAL(k % 2 ? "rule" : NULL);
			v[10] = STORE_TEXT_VAL(NULL);
			v[11] = STORE_TEXT_VAL(k == 69 ? UTF8 : NULL);
		}
		if (store_exec(sc, store_sql_rows(sc, "audit.insert", chunks[c]),
		    p, chunks[c] * 12, NULL) < 0)
			return -1;
	}
	q[0] = STORE_TEXT_VAL("multi");
	memset(&cnt, 0, sizeof(cnt));
	if (store_query(sc, "SELECT COUNT(*), SUM(ts_ms - 1600000000000), "
	    "COUNT(rule), COUNT(dst_community) FROM imgw_audit WHERE node = ?",
	    q, 1, st_row, &cnt) < 0)
		return -1;
	for (i = 0; i < 4; i++)
		r->ints[8 + i] = cnt.ints[i];
	q[1] = STORE_INT_VAL(1600000000069LL);
	if (store_query(sc, "SELECT from_addr, content FROM imgw_audit WHERE "
	    "node = ? AND ts_ms = ?", q, 2, st_row, r) < 0)
		return -1;
	return store_exec(sc, "DELETE FROM imgw_audit WHERE node = ?", q, 1,
	    NULL);
}

/* ---- async ----------------------------------------------------------------- */

static int
st_async_job(struct store_conn *sc, void *arg)
{
	return 0;
}

static void
st_async_done(void *arg, int rc, const char *err)
{
	int *slot = arg;

	slot[0] = rc == 0 ? 1 : -1;
}

int
main(void)
{
	struct store *s, *s2;
	struct conf *c;
	struct st_rows rows;
	char err[1024];
	int v, one = 1, ninetynine = 99, two = STORE_SCHEMA_VERSION;
	int64_t affected = -1;
	const char *dsn = getenv("IMGW_TEST_DSN");
	struct event_base *base;
	int slots[8][2], i;

	tdir = tl_tmpdir();
	diag("database: %s", dsn ? dsn : "SQLite (default dsn)");
	c = st_conf(NULL);
	s = store_new_flags(NULL, c, 0, err, sizeof(err));
	if (s == NULL)
		bail_out("store_new: %s", err);
	ok(store_call(s, st_drop, NULL, err, sizeof(err)) == 0, "clean slate");
	v = -1;
	ok(store_call(s, st_version, &v, err, sizeof(err)) == 0 && v == 0,
	    "no schema: version 0 (%d, %s)", v, err);
	diag("dialect %s", store_dialect_name(store_dialect(s)));

	/* migrate from the first version */
	ok(store_call(s, store_schema_init_at, &one, err, sizeof(err)) == 0,
	    "schema version 1 created (%s)", err);
	store_call(s, st_version, &v, err, sizeof(err));
	is_int(v, 1, "version 1");
	ok(store_call(s, store_schema_init, NULL, err, sizeof(err)) < 0,
	    "init refused on an existing schema");
	like(err, "db migrate", "the refusal says to migrate");
	ok(store_call(s, store_schema_migrate, NULL, err, sizeof(err)) == 0,
	    "migrated (%s)", err);
	store_call(s, st_version, &v, err, sizeof(err));
	is_int(v, STORE_SCHEMA_VERSION, "version now current");
	ok(store_call(s, store_schema_migrate, NULL, err, sizeof(err)) == 0,
	    "migrate on a current schema is a no-op");

	/* imgwd's check refuses newer and older schemas */
	ok(store_call(s, st_set_version, &ninetynine, err, sizeof(err)) == 0,
	    "version set to 99");
	s2 = store_new_flags(NULL, c, STORE_CHECK_SCHEMA, err, sizeof(err));
	is_int(store_wait_first(s2, 20000), STORE_SCHEMA_REFUSED,
	    "a newer schema is refused");
	{
		struct store_status st;

		store_get_status(s2, &st);
		like(st.error, "newer than this imgwd", "and says why: %s",
		    st.error);
	}
	store_free(s2, 0);
	store_call(s, st_set_version, &one, err, sizeof(err));
	s2 = store_new_flags(NULL, c, STORE_CHECK_SCHEMA, err, sizeof(err));
	is_int(store_wait_first(s2, 20000), STORE_SCHEMA_REFUSED,
	    "an older schema is refused");
	{
		struct store_status st;

		store_get_status(s2, &st);
		like(st.error, "imgwctl db migrate", "and names the remedy");
	}
	store_free(s2, 0);
	store_call(s, st_set_version, &two, err, sizeof(err));
	s2 = store_new_flags(NULL, c, STORE_CHECK_SCHEMA, err, sizeof(err));
	is_int(store_wait_first(s2, 20000), STORE_UP, "the current schema is "
	    "taken");
	store_free(s2, 0);

	/* statements */
	memset(&rows, 0, sizeof(rows));
	ok(store_call(s, st_audit, &rows, err, sizeof(err)) == 0,
	    "audit rows written and queried (%s)", err);
	is_int(rows.n, 2, "two rows match the user and time range");
	is_str(rows.text[5], UTF8 "@a.example", "UTF-8 from_addr comes back");
	is_int(rows.ints[1], 1700000000001LL, "BIGINT comes back");
	ok(rows.longok && rows.longlen == 200000, "200000 bytes of text come "
	    "back in pieces (%zu)", rows.longlen);
	ok(rows.nulls >= 4, "NULLs come back as NULL (%d)", rows.nulls);
	is_str(rows.text[12], UTF8, "UTF-8 content comes back");

	ok(store_call(s, st_rollback, NULL, err, sizeof(err)) == 0,
	    "a transaction rolled back");
	store_call(s, st_count, &rows, err, sizeof(err));
	is_int(rows.ints[0] ? rows.ints[0] : store_val_int(&(struct store_val){
	    .type = STORE_TEXT, .s = rows.text[0] }, -1), 3,
	    "and left nothing behind");
	ok(store_call(s, st_bad_sql, NULL, err, sizeof(err)) < 0,
	    "a bad statement fails");
	ok(strlen(err) > 0, "with the driver's message: %s", err);
	memset(&rows, 0, sizeof(rows));
	ok(store_call(s, st_audit, &rows, err, sizeof(err)) == 0,
	    "the connection works after a failure");

	/* subscriptions: the dialect's upsert */
	memset(&rows, 0, sizeof(rows));
	ok(store_call(s, st_subs, &rows, err, sizeof(err)) == 0,
	    "subscription upserted twice (%s)", err);
	is_int(rows.n, 1, "one row");
	is_str(rows.text[2], "active", "the second put won");
	is_int(rows.ints[3], 1800000000000LL, "expires");
	is_str(rows.text[4], "{\"id\":7}", "opaque data");
	ok(store_call(s, st_sub_del, &affected, err, sizeof(err)) == 0,
	    "deleted (%s)", err);
	is_int(affected, 1, "one row affected");

	/* multi-row INSERTs, as the audit writer sends them */
	memset(&rows, 0, sizeof(rows));
	ok(store_call(s, st_multi, &rows, err, sizeof(err)) == 0,
	    "64 + 4 + 2 rows in three multi-row INSERTs (%s)", err);
	is_int(rows.n, 1, "one read back by its time");
	is_int(rows.ints[8], 70, "70 rows");
	is_int(rows.ints[9], 69 * 70 / 2, "each with its own time");
	is_int(rows.ints[10], 35, "NULL and text alternate as bound (rule)");
	is_int(rows.ints[11], 0, "NULL columns stay NULL");
	is_str(rows.text[0], "69" UTF8 "@m.example", "the last row's UTF-8 "
	    "address, in its place");
	is_str(rows.text[1], UTF8, "and its content");

	/* the asynchronous path: done callbacks on the loop, in order */
	base = event_base_new();
	s2 = store_new_flags(base, c, 0, err, sizeof(err));
	for (i = 0; i < 8; i++) {
		slots[i][0] = 0;
		slots[i][1] = 0;
		store_submit(s2, i == 3 ? st_bad_sql : st_async_job,
		    st_async_done, slots[i]);
	}
	for (i = 0; i < 200 && slots[7][0] == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	ok(slots[7][0] == 1, "eight jobs done through the loop");
	ok(slots[3][0] == -1 && slots[2][0] == 1 && slots[4][0] == 1,
	    "one failed, the others passed");
	store_free(s2, 1000);
	event_base_free(base);

	store_free(s, 1000);
	conf_free(c);

	/* a connection string that goes nowhere */
	{
		struct conf *bad = NULL;
		char *path;

		path = tl_write(tdir, "bad.conf", "[store]\ndsn = "
		    "DRIVER=NoSuchDriver;Database=x\n");
		bad = conf_load(path, err, sizeof(err));
		s = store_new_flags(NULL, bad, 0, err, sizeof(err));
		ok(s != NULL, "a store with an unknown driver starts");
		is_int(store_wait_first(s, 10000), STORE_DOWN, "and is down");
		v = -1;
		ok(store_call(s, st_version, &v, err, sizeof(err)) < 0,
		    "jobs fail");
		like(err, "database unavailable", "saying why: %s", err);
		store_free(s, 0);
		conf_free(bad);
		free(path);
		path = tl_write(tdir, "bad2.conf", "[store]\ndsn = nonsense\n");
		bad = conf_load(path, err, sizeof(err));
		ok(bad != NULL && store_conf_check(bad, err, sizeof(err)) < 0,
		    "a malformed dsn is refused");
		like(err, "bad2.conf:2: dsn 'nonsense'", "with file and line");
		conf_free(bad);
		free(path);
		path = tl_write(tdir, "bad3.conf", "[store]\nspool-max = 12\n");
		bad = conf_load(path, err, sizeof(err));
		if (bad != NULL) {
			ok(store_conf_check(bad, err, sizeof(err)) < 0,
			    "a tiny spool-max is refused");
			like(err, "spool-max", "naming the key");
			conf_free(bad);
		} else {
			ok(1, "duplicate section refused by conf: %s", err);
			ok(1, "(skipped)");
		}
		free(path);
	}
	tl_rmrf(tdir);
	free(tdir);
	return done_testing();
}
