/*
 * The SQL store: one worker thread (worker.h) owns the ODBC environment
 * and connection, runs jobs from a queue one at a time, and hands each
 * result back to the loop (store.h).
 *
 * Threads: the loop thread calls store_submit and runs done callbacks;
 * the worker runs jobs.  The status both read is under `mu`, the queues
 * are the worker module's; the connection (`conn`) is the worker's alone.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>

#include <sql.h>
#include <sqlext.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "store-internal.h"
#include "util.h"
#include "worker.h"

#define STORE_QUEUE_MAX		10000
#define STORE_STMT_CACHE	40
#define STORE_RETRY_MIN_MS	500
#define STORE_TEXT_CHUNK	4096

struct store_job {
	struct worker_job wj;	/* first: the worker hands back this */
	store_job_fn job;
	store_done_fn done;
	void *arg;
	unsigned flags;
	int rc;
	char *err;
};

struct store_stmt {
	char *sql;
	SQLHSTMT h;
	uint64_t used;
};

struct store_conn {
	struct store *s;
	SQLHENV env;
	SQLHDBC dbc;
	int connected;
	int in_tx;
	enum store_dialect dialect;
	char err[1024];
	struct store_stmt cache[STORE_STMT_CACHE];
	uint64_t tick;
};

struct store {
	struct event_base *base;
	struct store_conf conf;
	unsigned flags;
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t first_cv;	/* wakes store_wait_first */
	uint64_t next_retry;
	unsigned retry_ms;
	/* status, under mu */
	enum store_state state;
	enum store_dialect dialect;
	int first_done;
	char dbms[160];
	char error[1024];
	uint64_t jobs_done, jobs_failed, connects, disconnects;
	/* the worker's */
	struct store_conn conn;
};

static const char *const store_dialect_names[STORE_DIALECT_MAX] = {
	[STORE_SQLITE] = "sqlite",
	[STORE_POSTGRESQL] = "postgresql",
	[STORE_MARIADB] = "mariadb",
	[STORE_DB2] = "db2",
};

const char *
store_dialect_name(enum store_dialect d)
{
	return (unsigned)d < STORE_DIALECT_MAX ? store_dialect_names[d] : "?";
}

int
store_dialect_parse(const char *name)
{
	int i;

	for (i = 0; i < STORE_DIALECT_MAX; i++)
		if (strcasecmp(name, store_dialect_names[i]) == 0)
			return i;
	if (strcasecmp(name, "postgres") == 0 || strcasecmp(name, "pg") == 0)
		return STORE_POSTGRESQL;
	if (strcasecmp(name, "mysql") == 0)
		return STORE_MARIADB;
	return -1;
}

const char *
store_state_name(enum store_state st)
{
	switch (st) {
	case STORE_CONNECTING: return "connecting";
	case STORE_UP: return "up";
	case STORE_DOWN: return "down";
	case STORE_SCHEMA_REFUSED: return "schema-refused";
	}
	return "?";
}

int64_t
store_val_int(const struct store_val *v, int64_t def)
{
	long long n;

	if (v == NULL)
		return def;
	if (v->type == STORE_INT)
		return v->i;
	if (v->type == STORE_TEXT && v->s != NULL && conf_parse_ll(v->s, &n) == 0)
		return n;
	return def;
}

/* ---- [store] ------------------------------------------------------------------- */

static int
store_conf_fail(char *err, size_t errlen, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
store_conf_fail(char *err, size_t errlen, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen, "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* A path of the config relative to the config file's folder. */
static char *
store_conf_path(const struct conf *c, const char *v)
{
	const char *slash;

	if (v[0] == '/' || c->file == NULL || (slash = strrchr(c->file, '/')) ==
	    NULL)
		return xstrdup(v);
	return xasprintf("%.*s/%s", (int)(slash - c->file), c->file, v);
}

/* "256M", "64k", "1048576": bytes, or -1. */
static int
store_parse_size(const char *v, uint64_t *out)
{
	char buf[64];
	size_t n = strlen(v);
	long long x;
	uint64_t mul = 1;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n + 1);
	switch (buf[n - 1]) {
	case 'k': case 'K': mul = 1024; break;
	case 'm': case 'M': mul = 1024 * 1024; break;
	case 'g': case 'G': mul = 1024ULL * 1024 * 1024; break;
	}
	if (mul != 1)
		buf[n - 1] = '\0';
	if (conf_parse_ll(buf, &x) < 0 || x < 0 || (uint64_t)x > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)x * mul;
	return 0;
}

static int
store_parse_uint(const char *v, long long min, long long max, unsigned *out)
{
	long long x;

	if (conf_parse_ll(v, &x) < 0 || x < min || x > max)
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* The first line of a password file, or NULL with err set. */
static char *
store_read_password(const char *path, char *why, size_t whylen)
{
	char *line;

	if ((line = util_read_first_line(path, why, whylen)) == NULL)
		return NULL;
	/* it goes into the connection string as PWD=... */
	if (strpbrk(line, ";{}") != NULL) {
		snprintf(why, whylen, "%s: the password may not contain ';', "
		    "'{' or '}'", path);
		free(line);
		return NULL;
	}
	return line;
}

/* The connection string without PWD=...; the caller frees. */
static char *
store_dsn_hide(const char *dsn)
{
	char *out = xmalloc(strlen(dsn) + 16), *o = out;
	const char *p = dsn, *e;

	while (*p != '\0') {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		while (*p == ' ')
			p++;
		if (strncasecmp(p, "PWD=", 4) == 0 ||
		    strncasecmp(p, "PASSWORD=", 9) == 0) {
			o += sprintf(o, "%.*s=***", (int)(strchr(p, '=') - p), p);
		} else {
			memcpy(o, p, (size_t)(e - p));
			o += e - p;
		}
		if (*e == ';')
			*o++ = *e++;
		p = e;
	}
	*o = '\0';
	return out;
}

void
store_conf_clear(struct store_conf *sc)
{
	free(sc->dsn);
	free(sc->dsn_shown);
	free(sc->state);
	memset(sc, 0, sizeof(*sc));
}

/* The [store] keys that take a bounded number, as data. */
struct store_uint_key {
	const char *key;
	unsigned min, max;
	const char *unit;	/* for the error: "expected UNIT from MIN to MAX" */
	size_t off;		/* unsigned field in struct store_conf */
};

static const struct store_uint_key store_uint_keys[] = {
	{ "batch", 1, 100000, "a number", offsetof(struct store_conf, batch) },
	{ "flush-ms", 1, 600000, "milliseconds",
	    offsetof(struct store_conf, flush_ms) },
	{ "refresh", 1, 86400, "seconds", offsetof(struct store_conf, refresh) },
	{ "retry-max", 100, 3600000, "milliseconds",
	    offsetof(struct store_conf, retry_max_ms) },
	{ "timeout", 0, 3600, "seconds", offsetof(struct store_conf, timeout) },
};

int
store_conf_parse(const struct conf *c, struct store_conf *sc, char *err,
    size_t errlen)
{
	static const char *const known[] = { "dsn", "password-file", "state",
	    "spool-max", "batch", "flush-ms", "refresh", "retry-max", "timeout",
	    "required", NULL };
	const struct conf_section *sec = &c->store;
	const char *file = c->file ? c->file : "(config)";
	const char *v, *dsn = NULL;
	char *pwfile = NULL, *pw = NULL, why[512];
	int line, b;
	size_t i, j;

	memset(sc, 0, sizeof(*sc));
	sc->spool_max = 256ULL * 1024 * 1024;
	sc->batch = 500;
	sc->flush_ms = 200;
	sc->refresh = 60;
	sc->retry_max_ms = 15000;
	sc->timeout = 10;
	for (i = 0; i < sec->n; i++) {
		for (j = 0; known[j] != NULL; j++)
			if (strcmp(sec->kv[i].key, known[j]) == 0)
				break;
		if (known[j] == NULL) {
			store_conf_fail(err, errlen, file, sec->kv[i].line,
			    "unknown key '%s' in [store] (known: dsn, "
			    "password-file, state, spool-max, batch, flush-ms, "
			    "refresh, retry-max, timeout, required)",
			    sec->kv[i].key);
			goto fail;
		}
	}
	if ((v = conf_section_get(sec, "state", &line)) != NULL)
		sc->state = store_conf_path(c, v);
	else
		sc->state = xstrdup(IMGW_STATEDIR);
	if ((v = conf_section_get(sec, "spool-max", &line)) != NULL &&
	    (store_parse_size(v, &sc->spool_max) < 0 || sc->spool_max < 4096)) {
		store_conf_fail(err, errlen, file, line, "spool-max '%s': "
		    "expected bytes of at least 4096, with an optional k, M or G",
		    v);
		goto fail;
	}
	for (i = 0; i < sizeof(store_uint_keys) / sizeof(store_uint_keys[0]);
	    i++) {
		const struct store_uint_key *k = &store_uint_keys[i];
		unsigned *field = (unsigned *)((char *)sc + k->off);

		if ((v = conf_section_get(sec, k->key, &line)) != NULL &&
		    store_parse_uint(v, k->min, k->max, field) < 0) {
			store_conf_fail(err, errlen, file, line, "%s '%s': "
			    "expected %s from %u to %u", k->key, v, k->unit,
			    k->min, k->max);
			goto fail;
		}
	}
	if ((v = conf_section_get(sec, "required", &line)) != NULL) {
		if ((b = conf_parse_bool(v)) < 0) {
			store_conf_fail(err, errlen, file, line, "required '%s': "
			    "expected yes or no", v);
			goto fail;
		}
		sc->required = b;
	}
	if ((v = conf_section_get(sec, "password-file", &line)) != NULL) {
		pwfile = store_conf_path(c, v);
		if ((pw = store_read_password(pwfile, why, sizeof(why))) == NULL) {
			store_conf_fail(err, errlen, file, line, "password-file: %s",
			    why);
			goto fail;
		}
	}
	dsn = conf_section_get(sec, "dsn", &line);
	if (dsn != NULL && strcasecmp(dsn, "none") == 0) {
		if (pw != NULL) {
			store_conf_fail(err, errlen, file, line, "dsn = none "
			    "takes no password-file");
			goto fail;
		}
		free(pwfile);
		return 0;	/* sc->dsn NULL: no store */
	}
	if (dsn != NULL) {
		/* a connection string is KEY=VALUE pairs separated by ';' */
		if (strchr(dsn, '=') == NULL || strlen(dsn) > 1024 ||
		    strpbrk(dsn, "\r\n") != NULL) {
			store_conf_fail(err, errlen, file, line, "dsn '%s': expected "
			    "an ODBC connection string such as DSN=imgw;UID=imgw "
			    "or DRIVER=SQLite3;Database=/path/imgw.db, or none",
			    dsn);
			goto fail;
		}
		if (pw != NULL)
			sc->dsn = xasprintf("%s%sPWD={%s}", dsn,
			    dsn[strlen(dsn) - 1] == ';' ? "" : ";", pw);
		else
			sc->dsn = xstrdup(dsn);
	} else {
		if (pw != NULL) {
			store_conf_fail(err, errlen, file, line, "password-file "
			    "without dsn: the default SQLite store needs none");
			goto fail;
		}
		/* Timeout: SQLite's busy wait (imgwctl reads while imgwd
		 * writes); WAL lets them run side by side */
		sc->dsn = xasprintf("DRIVER=SQLite3;Database=%s/imgw.db;"
		    "Timeout=10000;JournalMode=WAL;SyncPragma=NORMAL", sc->state);
		sc->default_dsn = 1;
	}
	sc->dsn_shown = store_dsn_hide(sc->dsn);
	if (pw != NULL) {
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	free(pwfile);
	return 0;
fail:
	if (pw != NULL) {
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	free(pwfile);
	store_conf_clear(sc);
	return -1;
}

int
store_conf_check(const struct conf *c, char *err, size_t errlen)
{
	struct store_conf sc;

	if (store_conf_parse(c, &sc, err, errlen) < 0)
		return -1;
	store_conf_clear(&sc);
	return 0;
}

/* ---- ODBC diagnostics --------------------------------------------------------- */

/* The first diagnostic record of `h` as "SQLSTATE: message". */
static void
store_diag(SQLSMALLINT type, SQLHANDLE h, const char *what, char *out,
    size_t outlen)
{
	SQLCHAR state[6], msg[768];
	SQLINTEGER native = 0;
	SQLSMALLINT len = 0;
	size_t n;

	if (h != SQL_NULL_HANDLE && SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1,
	    state, &native, msg, sizeof(msg), &len))) {
		n = strlen((char *)msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		snprintf(out, outlen, "%s: %s: %s", what, (char *)state,
		    (char *)msg);
	} else {
		snprintf(out, outlen, "%s failed (no diagnostic)", what);
	}
}

static void
store_set_status_error(struct store *s, const char *e)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->error, sizeof(s->error), "%.1000s", e);
	pthread_mutex_unlock(&s->mu);
}

/* ---- the connection (worker thread) ------------------------------------------- */

static void
store_cache_clear(struct store_conn *sc)
{
	int i;

	for (i = 0; i < STORE_STMT_CACHE; i++) {
		if (sc->cache[i].h != SQL_NULL_HSTMT)
			SQLFreeHandle(SQL_HANDLE_STMT, sc->cache[i].h);
		free(sc->cache[i].sql);
		sc->cache[i].h = SQL_NULL_HSTMT;
		sc->cache[i].sql = NULL;
	}
}

/* Close the connection; `count`: it was up (status and counters). */
static void
store_close(struct store_conn *sc, int count)
{
	struct store *s = sc->s;

	store_cache_clear(sc);
	if (sc->dbc != SQL_NULL_HDBC) {
		if (sc->connected)
			SQLDisconnect(sc->dbc);
		SQLFreeHandle(SQL_HANDLE_DBC, sc->dbc);
		sc->dbc = SQL_NULL_HDBC;
	}
	if (sc->connected && count) {
		pthread_mutex_lock(&s->mu);
		s->disconnects++;
		if (s->state == STORE_UP)
			s->state = STORE_DOWN;
		pthread_mutex_unlock(&s->mu);
	}
	sc->connected = 0;
	sc->in_tx = 0;
}

static void
store_disconnect(struct store_conn *sc)
{
	store_close(sc, 1);
}

static enum store_dialect
store_detect(const char *dbms, int *known_r)
{
	*known_r = 1;
	if (strncasecmp(dbms, "SQLite", 6) == 0)
		return STORE_SQLITE;
	if (strncasecmp(dbms, "PostgreSQL", 10) == 0)
		return STORE_POSTGRESQL;
	if (strncasecmp(dbms, "MariaDB", 7) == 0 ||
	    strncasecmp(dbms, "MySQL", 5) == 0)
		return STORE_MARIADB;
	if (strncasecmp(dbms, "DB2", 3) == 0)
		return STORE_DB2;
	*known_r = 0;
	return STORE_SQLITE;
}

static int store_check_schema(struct store_conn *sc, char *why, size_t len);
static int store_exec_direct(struct store_conn *sc, const char *sql);

/* Connect; 0, or -1 with the reason in the status. */
static int
store_connect(struct store_conn *sc)
{
	struct store *s = sc->s;
	SQLCHAR out[1024], name[64] = "", ver[64] = "";
	SQLSMALLINT outlen = 0, len = 0;
	SQLRETURN rc;
	char why[1024];
	int known, schema_rc;

	if (sc->env == SQL_NULL_HENV) {
		if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE,
		    &sc->env))) {
			sc->env = SQL_NULL_HENV;
			store_set_status_error(s, "cannot allocate an ODBC "
			    "environment (is unixODBC installed?)");
			return -1;
		}
		SQLSetEnvAttr(sc->env, SQL_ATTR_ODBC_VERSION,
		    (SQLPOINTER)SQL_OV_ODBC3, 0);
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, sc->env, &sc->dbc))) {
		sc->dbc = SQL_NULL_HDBC;
		store_diag(SQL_HANDLE_ENV, sc->env, "SQLAllocHandle", why,
		    sizeof(why));
		store_set_status_error(s, why);
		return -1;
	}
	if (s->conf.timeout > 0) {
		SQLSetConnectAttr(sc->dbc, SQL_ATTR_LOGIN_TIMEOUT,
		    (SQLPOINTER)(uintptr_t)s->conf.timeout, 0);
		SQLSetConnectAttr(sc->dbc, SQL_ATTR_CONNECTION_TIMEOUT,
		    (SQLPOINTER)(uintptr_t)s->conf.timeout, 0);
	}
	rc = SQLDriverConnect(sc->dbc, NULL, (SQLCHAR *)s->conf.dsn, SQL_NTS,
	    out, sizeof(out), &outlen, SQL_DRIVER_NOPROMPT);
	if (!SQL_SUCCEEDED(rc)) {
		store_diag(SQL_HANDLE_DBC, sc->dbc, "connect", why, sizeof(why));
		SQLFreeHandle(SQL_HANDLE_DBC, sc->dbc);
		sc->dbc = SQL_NULL_HDBC;
		store_set_status_error(s, why);
		return -1;
	}
	sc->connected = 1;
	SQLGetInfo(sc->dbc, SQL_DBMS_NAME, name, sizeof(name), &len);
	SQLGetInfo(sc->dbc, SQL_DBMS_VER, ver, sizeof(ver), &len);
	sc->dialect = store_detect((char *)name, &known);
	if (!known) {
		snprintf(why, sizeof(why), "unsupported database '%s' (imgw "
		    "knows SQLite, PostgreSQL, MariaDB/MySQL and DB2)",
		    (char *)name);
		goto refuse;
	}
	/* MariaDB: the character set comes from CHARSET=utf8mb4 in the
	 * connection string (Connector/ODBC refuses SET NAMES) */
	pthread_mutex_lock(&s->mu);
	s->dialect = sc->dialect;
	snprintf(s->dbms, sizeof(s->dbms), "%s %s", (char *)name, (char *)ver);
	pthread_mutex_unlock(&s->mu);
	if (s->flags & STORE_CHECK_SCHEMA) {
		schema_rc = store_check_schema(sc, why, sizeof(why));
		if (schema_rc == -2)
			goto refuse;
		if (schema_rc < 0) {
			store_close(sc, 0);
			store_set_status_error(s, why);
			return -1;
		}
	}
	pthread_mutex_lock(&s->mu);
	s->state = STORE_UP;
	s->connects++;
	s->error[0] = '\0';
	pthread_mutex_unlock(&s->mu);
	log_msg(IMGW_LOG_NOTICE, "store", NULL, "connected to %s (%s)",
	    s->dbms, s->conf.dsn_shown);
	return 0;
refuse:
	store_close(sc, 0);	/* it never counted as up */
	pthread_mutex_lock(&s->mu);
	s->state = STORE_SCHEMA_REFUSED;
	snprintf(s->error, sizeof(s->error), "%.1000s", why);
	pthread_mutex_unlock(&s->mu);
	return -1;
}

/*
 * The schema check of imgwd: 0 fits, -2 refused (why set), -1 a failure
 * that may pass (retry).
 */
static int
store_check_schema(struct store_conn *sc, char *why, size_t len)
{
	struct store *s = sc->s;
	int v = 0;

	if (store_schema_version(sc, &v) < 0) {
		snprintf(why, len, "%s", sc->err);
		return -1;
	}
	if (v == 0 && (s->flags & STORE_AUTO_INIT)) {
		if (store_schema_init(sc, NULL) < 0) {
			snprintf(why, len, "creating the schema: %.900s", sc->err);
			return -2;
		}
		log_msg(IMGW_LOG_NOTICE, "store", NULL, "created the schema "
		    "(version %d) in %s", STORE_SCHEMA_VERSION,
		    s->conf.dsn_shown);
		return 0;
	}
	if (v == 0) {
		snprintf(why, len, "the database has no imgw schema: run "
		    "`imgwctl db init`");
		return -2;
	}
	if (v > STORE_SCHEMA_VERSION) {
		snprintf(why, len, "the database schema is version %d, newer "
		    "than this imgwd knows (%d): upgrade imgwd", v,
		    STORE_SCHEMA_VERSION);
		return -2;
	}
	if (v < STORE_SCHEMA_VERSION) {
		snprintf(why, len, "the database schema is version %d, older "
		    "than this imgwd needs (%d): run `imgwctl db migrate`", v,
		    STORE_SCHEMA_VERSION);
		return -2;
	}
	return 0;
}

enum store_dialect
store_conn_dialect(const struct store_conn *sc)
{
	return sc->dialect;
}

int
store_conn_connected(const struct store_conn *sc)
{
	return sc->connected;
}

struct store *
store_conn_store(struct store_conn *sc)
{
	return sc->s;
}

const char *
store_sql(const struct store_conn *sc, const char *name)
{
	return store_sql_text(sc->dialect, name);
}

const char *
store_sql_rows(const struct store_conn *sc, const char *name, unsigned rows)
{
	return store_sql_rows_text(sc->dialect, name, rows);
}

int
store_conn_fail(struct store_conn *sc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sc->err, sizeof(sc->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* A prepared statement for `sql`, from the cache or new; NULL on failure
 * (sc->err set). */
static SQLHSTMT
store_prepare(struct store_conn *sc, const char *sql)
{
	struct store_stmt *e, *victim = &sc->cache[0];
	SQLHSTMT h = SQL_NULL_HSTMT;
	int i;

	if (!sc->connected) {
		store_conn_fail(sc, "not connected to the database");
		return SQL_NULL_HSTMT;
	}
	for (i = 0; i < STORE_STMT_CACHE; i++) {
		e = &sc->cache[i];
		if (e->sql != NULL && strcmp(e->sql, sql) == 0) {
			e->used = ++sc->tick;
			SQLFreeStmt(e->h, SQL_CLOSE);
			SQLFreeStmt(e->h, SQL_RESET_PARAMS);
			return e->h;
		}
		if (e->sql == NULL || e->used < victim->used)
			victim = e;
		if (e->sql == NULL)
			break;
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, sc->dbc, &h))) {
		store_diag(SQL_HANDLE_DBC, sc->dbc, "SQLAllocHandle", sc->err,
		    sizeof(sc->err));
		return SQL_NULL_HSTMT;
	}
	if (sc->s->conf.timeout > 0)
		SQLSetStmtAttr(h, SQL_ATTR_QUERY_TIMEOUT,
		    (SQLPOINTER)(uintptr_t)sc->s->conf.timeout, 0);
	if (!SQL_SUCCEEDED(SQLPrepare(h, (SQLCHAR *)sql, SQL_NTS))) {
		store_diag(SQL_HANDLE_STMT, h, "prepare", sc->err,
		    sizeof(sc->err));
		SQLFreeHandle(SQL_HANDLE_STMT, h);
		return SQL_NULL_HSTMT;
	}
	if (victim->sql != NULL) {
		SQLFreeHandle(SQL_HANDLE_STMT, victim->h);
		free(victim->sql);
	}
	victim->sql = xstrdup(sql);
	victim->h = h;
	victim->used = ++sc->tick;
	return h;
}

/* Bind `n` parameters; `ints` and `ind` are the caller's, n long. */
static int
store_bind(struct store_conn *sc, SQLHSTMT h, const struct store_val *p,
    size_t n, SQLBIGINT *ints, SQLLEN *ind)
{
	SQLRETURN rc;
	size_t i, len;

	for (i = 0; i < n; i++) {
		switch (p[i].type) {
		case STORE_INT:
			ints[i] = p[i].i;
			ind[i] = 0;
			rc = SQLBindParameter(h, (SQLUSMALLINT)(i + 1),
			    SQL_PARAM_INPUT, SQL_C_SBIGINT, SQL_BIGINT, 0, 0,
			    &ints[i], 0, &ind[i]);
			break;
		case STORE_TEXT:
			if (p[i].s != NULL) {
				len = strlen(p[i].s);
				ind[i] = (SQLLEN)len;
				rc = SQLBindParameter(h, (SQLUSMALLINT)(i + 1),
				    SQL_PARAM_INPUT, SQL_C_CHAR, len > 4000 ?
				    SQL_LONGVARCHAR : SQL_VARCHAR, len ? len : 1,
				    0, (SQLPOINTER)p[i].s, (SQLLEN)len, &ind[i]);
				break;
			}
			/* FALLTHROUGH */
		default:
			ind[i] = SQL_NULL_DATA;
			rc = SQLBindParameter(h, (SQLUSMALLINT)(i + 1),
			    SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR, 1, 0, NULL,
			    0, &ind[i]);
			break;
		}
		if (!SQL_SUCCEEDED(rc)) {
			store_diag(SQL_HANDLE_STMT, h, "bind", sc->err,
			    sizeof(sc->err));
			return -1;
		}
	}
	return 0;
}

static int
store_run(struct store_conn *sc, const char *sql, const struct store_val *p,
    size_t n, SQLHSTMT *h_r, SQLBIGINT *ints, SQLLEN *ind)
{
	SQLHSTMT h;
	SQLRETURN rc;

	if ((h = store_prepare(sc, sql)) == SQL_NULL_HSTMT)
		return -1;
	if (store_bind(sc, h, p, n, ints, ind) < 0)
		return -1;
	rc = SQLExecute(h);
	if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
		store_diag(SQL_HANDLE_STMT, h, "execute", sc->err,
		    sizeof(sc->err));
		SQLFreeStmt(h, SQL_CLOSE);
		return -1;
	}
	*h_r = h;
	return 0;
}


int
store_exec(struct store_conn *sc, const char *sql,
    const struct store_val *params, size_t n, int64_t *rows_r)
{
	SQLBIGINT ints[STORE_MAX_PARAMS];
	SQLLEN ind[STORE_MAX_PARAMS], rows = 0;
	SQLHSTMT h;

	if (sql == NULL)
		return store_conn_fail(sc, "no statement (unknown name?)");
	if (n > STORE_MAX_PARAMS)
		return store_conn_fail(sc, "too many parameters (%zu)", n);
	if (store_run(sc, sql, params, n, &h, ints, ind) < 0)
		return -1;
	if (rows_r != NULL) {
		if (!SQL_SUCCEEDED(SQLRowCount(h, &rows)))
			rows = 0;
		*rows_r = rows;
	}
	SQLFreeStmt(h, SQL_CLOSE);
	SQLFreeStmt(h, SQL_RESET_PARAMS);
	return 0;
}

static int
store_col_is_int(SQLSMALLINT type, SQLSMALLINT scale)
{
	switch (type) {
	case SQL_BIGINT:
	case SQL_INTEGER:
	case SQL_SMALLINT:
	case SQL_TINYINT:
	case SQL_BIT:
		return 1;
	case SQL_DECIMAL:
	case SQL_NUMERIC:
		return scale == 0;
	}
	return 0;
}

/* One text column in pieces into *buf (grown); 0, 1 for NULL, or -1. */
static int
store_get_text(struct store_conn *sc, SQLHSTMT h, SQLUSMALLINT col, char **buf,
    size_t *cap)
{
	size_t off = 0;
	SQLLEN ind = 0;
	SQLRETURN rc;

	for (;;) {
		rc = SQLGetData(h, col, SQL_C_CHAR, *buf + off,
		    (SQLLEN)(*cap - off), &ind);
		if (rc == SQL_NO_DATA)
			return off == 0 ? 1 : 0;
		if (!SQL_SUCCEEDED(rc)) {
			store_diag(SQL_HANDLE_STMT, h, "read column", sc->err,
			    sizeof(sc->err));
			return -1;
		}
		if (ind == SQL_NULL_DATA)
			return 1;
		if (rc == SQL_SUCCESS)
			return 0;
		/* SQL_SUCCESS_WITH_INFO: truncated, more to come */
		if (ind != SQL_NO_TOTAL && (size_t)ind < *cap - off)
			return 0;
		off = *cap - 1;
		if (*cap > 256u * 1024 * 1024)
			return store_conn_fail(sc, "column %u longer than 256 MiB",
			    (unsigned)col);
		*cap = ind != SQL_NO_TOTAL && (size_t)ind + off + 1 > *cap * 2 ?
		    (size_t)ind + off + 1 : *cap * 2;
		*buf = xreallocarray(*buf, *cap, 1);
	}
}

int
store_query(struct store_conn *sc, const char *sql,
    const struct store_val *params, size_t n, store_row_fn row, void *arg)
{
	SQLBIGINT ints[STORE_MAX_PARAMS];
	SQLLEN ind[STORE_MAX_PARAMS];
	SQLSMALLINT ncols = 0, type, scale, nullable, namelen;
	SQLULEN colsize;
	SQLCHAR cname[128];
	struct store_val *vals = NULL;
	char **bufs = NULL;
	size_t *caps = NULL;
	int *isint = NULL, rc = -1, r;
	SQLRETURN frc;
	SQLHSTMT h;
	SQLBIGINT iv;
	SQLLEN iind;
	SQLSMALLINT c;

	if (sql == NULL)
		return store_conn_fail(sc, "no statement (unknown name?)");
	if (n > STORE_MAX_PARAMS)
		return store_conn_fail(sc, "too many parameters (%zu)", n);
	if (store_run(sc, sql, params, n, &h, ints, ind) < 0)
		return -1;
	if (!SQL_SUCCEEDED(SQLNumResultCols(h, &ncols)) || ncols <= 0) {
		store_conn_fail(sc, "the statement returns no columns");
		goto out;
	}
	vals = xcalloc((size_t)ncols, sizeof(*vals));
	bufs = xcalloc((size_t)ncols, sizeof(*bufs));
	caps = xcalloc((size_t)ncols, sizeof(*caps));
	isint = xcalloc((size_t)ncols, sizeof(*isint));
	for (c = 0; c < ncols; c++) {
		type = SQL_VARCHAR;
		scale = 0;
		SQLDescribeCol(h, (SQLUSMALLINT)(c + 1), cname, sizeof(cname),
		    &namelen, &type, &colsize, &scale, &nullable);
		isint[c] = store_col_is_int(type, scale);
		caps[c] = STORE_TEXT_CHUNK;
		bufs[c] = xmalloc(caps[c]);
	}
	for (;;) {
		frc = SQLFetch(h);
		if (frc == SQL_NO_DATA)
			break;
		if (!SQL_SUCCEEDED(frc)) {
			store_diag(SQL_HANDLE_STMT, h, "fetch", sc->err,
			    sizeof(sc->err));
			goto out;
		}
		for (c = 0; c < ncols; c++) {
			if (isint[c]) {
				iind = 0;
				if (!SQL_SUCCEEDED(SQLGetData(h, (SQLUSMALLINT)(c + 1),
				    SQL_C_SBIGINT, &iv, 0, &iind))) {
					store_diag(SQL_HANDLE_STMT, h, "read column",
					    sc->err, sizeof(sc->err));
					goto out;
				}
				vals[c] = iind == SQL_NULL_DATA ? (struct store_val)
				    { .type = STORE_NULL } : STORE_INT_VAL(iv);
				continue;
			}
			r = store_get_text(sc, h, (SQLUSMALLINT)(c + 1), &bufs[c],
			    &caps[c]);
			if (r < 0)
				goto out;
			vals[c] = r == 1 ? (struct store_val){ .type = STORE_NULL }
			    : (struct store_val){ .type = STORE_TEXT,
			    .s = bufs[c] };
		}
		if (row != NULL && row(arg, vals, (size_t)ncols) != 0)
			break;
	}
	rc = 0;
out:
	SQLFreeStmt(h, SQL_CLOSE);
	SQLFreeStmt(h, SQL_RESET_PARAMS);
	if (bufs != NULL)
		for (c = 0; c < ncols; c++)
			free(bufs[c]);
	free(bufs);
	free(caps);
	free(vals);
	free(isint);
	return rc;
}

/* A statement run once, not kept (DDL). */
static int
store_exec_direct(struct store_conn *sc, const char *sql)
{
	SQLHSTMT h;
	SQLRETURN rc;

	if (!sc->connected)
		return store_conn_fail(sc, "not connected to the database");
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, sc->dbc, &h))) {
		store_diag(SQL_HANDLE_DBC, sc->dbc, "SQLAllocHandle", sc->err,
		    sizeof(sc->err));
		return -1;
	}
	rc = SQLExecDirect(h, (SQLCHAR *)sql, SQL_NTS);
	if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
		store_diag(SQL_HANDLE_STMT, h, "execute", sc->err,
		    sizeof(sc->err));
		SQLFreeHandle(SQL_HANDLE_STMT, h);
		return -1;
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	return 0;
}

int
store_begin(struct store_conn *sc)
{
	if (!sc->connected)
		return store_conn_fail(sc, "not connected to the database");
	if (!SQL_SUCCEEDED(SQLSetConnectAttr(sc->dbc, SQL_ATTR_AUTOCOMMIT,
	    (SQLPOINTER)SQL_AUTOCOMMIT_OFF, 0))) {
		store_diag(SQL_HANDLE_DBC, sc->dbc, "begin", sc->err,
		    sizeof(sc->err));
		return -1;
	}
	sc->in_tx = 1;
	return 0;
}

static int
store_end(struct store_conn *sc, SQLSMALLINT how)
{
	int rc = 0;

	if (!sc->connected)
		return store_conn_fail(sc, "not connected to the database");
	if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, sc->dbc, how))) {
		store_diag(SQL_HANDLE_DBC, sc->dbc, how == SQL_COMMIT ? "commit"
		    : "rollback", sc->err, sizeof(sc->err));
		rc = -1;
	}
	SQLSetConnectAttr(sc->dbc, SQL_ATTR_AUTOCOMMIT,
	    (SQLPOINTER)SQL_AUTOCOMMIT_ON, 0);
	sc->in_tx = 0;
	return rc;
}

int
store_commit(struct store_conn *sc)
{
	return store_end(sc, SQL_COMMIT);
}

int
store_rollback(struct store_conn *sc)
{
	char keep[sizeof(sc->err)];
	int rc;

	/* keep the error that made the job roll back */
	memcpy(keep, sc->err, sizeof(keep));
	rc = store_end(sc, SQL_ROLLBACK);
	memcpy(sc->err, keep, sizeof(keep));
	return rc;
}

/* ---- schema ---------------------------------------------------------------------- */

static int
store_version_row(void *arg, const struct store_val *cols, size_t n)
{
	int *v = arg;
	int64_t x = store_val_int(&cols[0], 0);

	if (x > *v)
		*v = (int)x;
	return 0;
}

int
store_schema_version(struct store_conn *sc, int *version_r)
{
	int v = 0;

	*version_r = 0;
	if (!sc->connected)
		return store_conn_fail(sc, "not connected to the database");
	if (store_query(sc, store_sql(sc, "schema.version"), NULL, 0,
	    store_version_row, &v) < 0) {
		/* no table: no schema.  Tell that from a dead connection. */
		if (store_exec(sc, store_sql(sc, "ping"), NULL, 0, NULL) < 0)
			return -1;
		sc->err[0] = '\0';
		return 0;
	}
	*version_r = v;
	return 0;
}

/* Run the statements of schema steps from+1 .. to. */
static int
store_schema_steps(struct store_conn *sc, int from, int to)
{
	char *script, *p, *e;
	int v, rc = 0, tx;

	/* DDL is transactional in PostgreSQL and SQLite: all or nothing */
	tx = sc->dialect == STORE_POSTGRESQL || sc->dialect == STORE_SQLITE;
	if (tx && store_begin(sc) < 0)
		return -1;
	for (v = from + 1; v <= to && rc == 0; v++) {
		script = store_sql_expand(sc->dialect, store_sql_step(v));
		for (p = script; rc == 0 && *p != '\0'; p = e + 1) {
			if ((e = strstr(p, ";\n")) == NULL)
				break;
			*e = '\0';
			if (store_exec_direct(sc, p) < 0) {
				char stmt[80];

				snprintf(stmt, sizeof(stmt), "%s", p);
				if (strchr(stmt, '\n') != NULL)
					*strchr(stmt, '\n') = '\0';
				store_conn_fail(sc, "schema step %d, \"%s...\": %.800s",
				    v, stmt, sc->err);
				rc = -1;
			}
		}
		free(script);
	}
	if (tx) {
		if (rc < 0)
			store_rollback(sc);
		else if (store_commit(sc) < 0)
			rc = -1;
	}
	return rc;
}

int
store_schema_init_at(struct store_conn *sc, void *arg)
{
	int to = arg != NULL ? *(int *)arg : STORE_SCHEMA_VERSION, v;

	if (to < 1 || to > STORE_SCHEMA_VERSION)
		return store_conn_fail(sc, "no schema version %d", to);
	if (store_schema_version(sc, &v) < 0)
		return -1;
	if (v != 0)
		return store_conn_fail(sc, "the database already has the imgw "
		    "schema (version %d)%s", v, v < STORE_SCHEMA_VERSION ?
		    ": run `imgwctl db migrate`" : "");
	return store_schema_steps(sc, 0, to);
}

int
store_schema_init(struct store_conn *sc, void *arg)
{
	return store_schema_init_at(sc, NULL);
}

int
store_schema_migrate(struct store_conn *sc, void *arg)
{
	int v;

	if (store_schema_version(sc, &v) < 0)
		return -1;
	if (v == 0)
		return store_conn_fail(sc, "the database has no imgw schema: "
		    "run `imgwctl db init`");
	if (v > STORE_SCHEMA_VERSION)
		return store_conn_fail(sc, "the database schema is version %d, "
		    "newer than this imgw knows (%d)", v, STORE_SCHEMA_VERSION);
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	return store_schema_steps(sc, v, STORE_SCHEMA_VERSION);
}

/* ---- the worker ------------------------------------------------------------------ */

static uint64_t
store_now(void)
{
	return util_now_ms();
}

/* After a failed job: is the connection still good? */
static void
store_check_alive(struct store_conn *sc)
{
	char keep[sizeof(sc->err)];

	if (!sc->connected)
		return;
	if (sc->in_tx)
		store_rollback(sc);
	memcpy(keep, sc->err, sizeof(keep));
	if (store_exec(sc, store_sql(sc, "ping"), NULL, 0, NULL) < 0) {
		log_msg(IMGW_LOG_WARNING, "store", NULL, "lost the connection "
		    "to the database: %s", keep);
		store_disconnect(sc);
		store_set_status_error(sc->s, keep);
	}
	memcpy(sc->err, keep, sizeof(keep));
}

static void
store_try_connect(struct store *s)
{
	struct store_conn *sc = &s->conn;
	enum store_state prev;
	unsigned wait;

	if (store_connect(sc) == 0) {
		s->retry_ms = 0;
	} else {
		s->retry_ms = s->retry_ms ? s->retry_ms * 2 : STORE_RETRY_MIN_MS;
		if (s->retry_ms > s->conf.retry_max_ms)
			s->retry_ms = s->conf.retry_max_ms;
		pthread_mutex_lock(&s->mu);
		prev = s->state;
		if (s->state != STORE_SCHEMA_REFUSED)
			s->state = STORE_DOWN;
		/* a schema that does not fit waits for an administrator */
		wait = s->state == STORE_SCHEMA_REFUSED ? s->conf.retry_max_ms
		    : s->retry_ms;
		if (prev != s->state || s->retry_ms == STORE_RETRY_MIN_MS ||
		    prev == STORE_CONNECTING)
			log_msg(IMGW_LOG_ERR, "store", NULL, "database %s: %s; "
			    "trying again in %u ms", s->state ==
			    STORE_SCHEMA_REFUSED ? "refused" : "unreachable",
			    s->error, wait);
		pthread_mutex_unlock(&s->mu);
		s->next_retry = store_now() + wait;
	}
	pthread_mutex_lock(&s->mu);
	if (!s->first_done) {
		s->first_done = 1;
		pthread_cond_broadcast(&s->first_cv);
	}
	pthread_mutex_unlock(&s->mu);
}

/* The worker between jobs: (re)connect when it is time (worker.h). */
static int
store_idle_cb(void *arg, int pending, int stopping, int late)
{
	struct store *s = arg;
	struct store_conn *sc = &s->conn;
	uint64_t now = store_now();

	if (!sc->connected && !late && now >= s->next_retry &&
	    (!stopping || pending)) {
		store_try_connect(s);
		return 0;
	}
	if (sc->connected)
		return -1;
	return s->next_retry > now ? (int)(s->next_retry - now) : 0;
}

static void
store_run_cb(void *arg, struct worker_job *wj, int late)
{
	struct store *s = arg;
	struct store_conn *sc = &s->conn;
	struct store_job *j = (struct store_job *)wj;
	char why[1100];

	if (late && !(j->flags & STORE_JOB_OFFLINE)) {
		j->rc = -1;
		j->err = xstrdup("the store is stopping");
	} else if (!sc->connected && !(j->flags & STORE_JOB_OFFLINE)) {
		pthread_mutex_lock(&s->mu);
		snprintf(why, sizeof(why), "database unavailable: %s",
		    s->error[0] ? s->error : "not connected yet");
		pthread_mutex_unlock(&s->mu);
		j->rc = -1;
		j->err = xstrdup(why);
	} else {
		sc->err[0] = '\0';
		j->rc = j->job(sc, j->arg) < 0 ? -1 : 0;
		if (sc->in_tx) {
			if (j->rc == 0)
				log_msg(IMGW_LOG_WARNING, "store", NULL,
				    "a job left a transaction open; "
				    "rolled back");
			store_rollback(sc);
		}
		if (j->rc < 0) {
			j->err = xstrdup(sc->err[0] ? sc->err
			    : "failed without a reason");
			store_check_alive(sc);
			if (!sc->connected)
				s->next_retry = 0;
		}
	}
	pthread_mutex_lock(&s->mu);
	if (j->rc == 0)
		s->jobs_done++;
	else
		s->jobs_failed++;
	pthread_mutex_unlock(&s->mu);
}

static void
store_exit_cb(void *arg)
{
	struct store *s = arg;
	struct store_conn *sc = &s->conn;

	store_disconnect(sc);
	if (sc->env != SQL_NULL_HENV) {
		SQLFreeHandle(SQL_HANDLE_ENV, sc->env);
		sc->env = SQL_NULL_HENV;
	}
}

/* ---- the loop side ------------------------------------------------------------- */

static void
store_done_cb(void *arg, struct worker_job *wj)
{
	struct store_job *j = (struct store_job *)wj;

	if (j->done != NULL)
		j->done(j->arg, j->rc, j->rc < 0 ? j->err : NULL);
	free(j->err);
	free(j);
}

static const struct worker_ops store_worker_ops = {
	.run_cb = store_run_cb,
	.done_cb = store_done_cb,
	.idle_cb = store_idle_cb,
	.exit_cb = store_exit_cb,
};

/* mkdir -p with mode 0750 for the parts it creates. */
static int
store_mkdirs(const char *path, char *err, size_t errlen)
{
	char *p = xstrdup(path), *q;
	struct stat st;

	for (q = p + 1; ; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		{
			char c = *q;

			*q = '\0';
			if (mkdir(p, 0750) < 0 && errno != EEXIST) {
				snprintf(err, errlen, "cannot create the folder %s: "
				    "%s", p, strerror(errno));
				free(p);
				return -1;
			}
			*q = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a folder", path);
		return -1;
	}
	return 0;
}

int
store_state_dir(const struct store_conf *sc, char *err, size_t errlen)
{
	return store_mkdirs(sc->state, err, errlen);
}

struct store *
store_new_flags(struct event_base *base, const struct conf *c, unsigned flags,
    char *err, size_t errlen)
{
	struct store *s;

	s = xcalloc(1, sizeof(*s));
	if (store_conf_parse(c, &s->conf, err, errlen) < 0) {
		free(s);
		return NULL;
	}
	if (s->conf.dsn == NULL) {
		store_conf_clear(&s->conf);
		free(s);
		if (errlen > 0)
			err[0] = '\0';
		return NULL;
	}
	if (s->conf.default_dsn && store_mkdirs(s->conf.state, err, errlen) < 0)
		goto fail_conf;
	s->base = base;
	s->flags = flags;
	s->conn.s = s;
	s->state = STORE_CONNECTING;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->first_cv, NULL);
	s->w = worker_new(base, "store", &store_worker_ops, s, STORE_QUEUE_MAX,
	    err, errlen);
	if (s->w == NULL) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->first_cv);
		goto fail_conf;
	}
	return s;
fail_conf:
	store_conf_clear(&s->conf);
	free(s);
	return NULL;
}

struct store *
store_new(struct event_base *base, const struct conf *c, char *err,
    size_t errlen)
{
	struct store_conf sc;
	unsigned flags = STORE_CHECK_SCHEMA;

	if (store_conf_parse(c, &sc, err, errlen) < 0)
		return NULL;
	if (sc.default_dsn)
		flags |= STORE_AUTO_INIT;
	store_conf_clear(&sc);
	return store_new_flags(base, c, flags, err, errlen);
}

void
store_free(struct store *s, unsigned wait_ms)
{
	if (s == NULL)
		return;
	worker_free(s->w, wait_ms);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->first_cv);
	store_conf_clear(&s->conf);
	free(s);
}

int
store_up(const struct store *s)
{
	struct store *m = (struct store *)s;
	int up;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&m->mu);
	up = m->state == STORE_UP;
	pthread_mutex_unlock(&m->mu);
	return up;
}

enum store_dialect
store_dialect(const struct store *s)
{
	struct store *m = (struct store *)s;
	enum store_dialect d;

	pthread_mutex_lock(&m->mu);
	d = m->dialect;
	pthread_mutex_unlock(&m->mu);
	return d;
}

const struct store_conf *
store_get_conf(const struct store *s)
{
	return &s->conf;
}

void
store_get_status(struct store *s, struct store_status *st)
{
	memset(st, 0, sizeof(*st));
	st->jobs_queued = worker_pending(s->w);
	pthread_mutex_lock(&s->mu);
	st->state = s->state;
	st->dialect = s->dialect;
	snprintf(st->dbms, sizeof(st->dbms), "%s", s->dbms);
	snprintf(st->error, sizeof(st->error), "%s", s->error);
	st->jobs_done = s->jobs_done;
	st->jobs_failed = s->jobs_failed;
	st->connects = s->connects;
	st->disconnects = s->disconnects;
	pthread_mutex_unlock(&s->mu);
	snprintf(st->dsn, sizeof(st->dsn), "%s", s->conf.dsn_shown);
}

enum store_state
store_wait_first(struct store *s, unsigned ms)
{
	uint64_t deadline = store_now() + ms;
	enum store_state st;
	struct timespec ts;

	pthread_mutex_lock(&s->mu);
	while (!s->first_done && store_now() < deadline) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->first_cv, &s->mu, &ts);
	}
	st = s->state;
	pthread_mutex_unlock(&s->mu);
	return st;
}

int
store_submit_flags(struct store *s, store_job_fn job, store_done_fn done,
    void *arg, unsigned flags)
{
	struct store_job *j;

	if (s == NULL || job == NULL)
		return -1;
	j = xcalloc(1, sizeof(*j));
	j->job = job;
	j->done = done;
	j->arg = arg;
	j->flags = flags;
	if (worker_submit(s->w, &j->wj) < 0) {
		free(j);
		return -1;
	}
	return 0;
}

int
store_submit(struct store *s, store_job_fn job, store_done_fn done, void *arg)
{
	return store_submit_flags(s, job, done, arg, 0);
}

int
store_call(struct store *s, store_job_fn job, void *arg, char *err,
    size_t errlen)
{
	struct store_job *j;
	int rc;

	if (s == NULL || job == NULL) {
		snprintf(err, errlen, "no store");
		return -1;
	}
	j = xcalloc(1, sizeof(*j));
	j->job = job;
	j->arg = arg;
	if (worker_call(s->w, &j->wj) < 0) {
		free(j);
		snprintf(err, errlen, "the store's queue is full");
		return -1;
	}
	rc = j->rc;
	if (rc < 0)
		snprintf(err, errlen, "%s", j->err ? j->err : "failed");
	free(j->err);
	free(j);
	return rc;
}
