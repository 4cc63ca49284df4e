/*
 * The SQL store through unixODBC.
 *
 * ODBC calls block, so they never run on the event loop: one worker
 * thread owns the ODBC environment and connection, takes jobs from a
 * queue, and hands each job's result back to the loop (through a pipe the
 * loop watches).  Routing never waits for the database.
 *
 * [store] keys (checked by store_conf_check, errors as FILE:LINE):
 *   dsn           ODBC connection string, DSN ("DSN=imgw;UID=..") or
 *                 DSN-less ("DRIVER=SQLite3;Database=/var/lib/imgw/imgw.db").
 *                 Default: SQLite through libsqliteodbc, a file imgw.db in
 *                 the state folder.
 *   password-file a file whose first line is appended as PWD=...
 *   state         the state folder (default $localstatedir/lib/imgw):
 *                 the default database and the audit spool live there
 *   spool-max     bytes the audit spool may hold (default 256 MiB)
 *   batch         audit records per transaction (default 500)
 *   flush-ms      longest wait before a partial batch is written (200)
 *   refresh       seconds between policy snapshot reloads (default 60)
 *
 * Statements: every statement is prepared with bound parameters; no SQL is
 * ever built from input.  Statement text is portable SQL; what a dialect
 * needs differently lives in one table per dialect (store-sql.c).
 */
#ifndef IMGW_CORE_STORE_H
#define IMGW_CORE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct event_base;
struct store;
struct store_conn;	/* the worker's connection; only inside a job */

enum store_dialect {
	STORE_SQLITE = 0,
	STORE_POSTGRESQL,
	STORE_MARIADB,
	STORE_DB2,
	STORE_DIALECT_MAX
};

/* A bound value: parameters in and columns out. */
enum store_type {
	STORE_NULL = 0,
	STORE_INT,	/* int64_t */
	STORE_TEXT,	/* UTF-8, NUL-terminated */
};

struct store_val {
	enum store_type type;
	int64_t i;
	const char *s;	/* TEXT: borrowed (params) or valid during the row
			 * callback (columns) */
};

#define STORE_INT_VAL(x)	((struct store_val){ .type = STORE_INT, .i = (x) })
#define STORE_TEXT_VAL(x)	((struct store_val){ .type = (x) ? STORE_TEXT \
				    : STORE_NULL, .s = (x) })

/* Check the [store] section of `c`: 0, or -1 with "FILE:LINE: message". */
int store_conf_check(const struct conf *c, char *err, size_t errlen);

/*
 * Start the worker for the [store] of `c` (copied).  Connecting happens on
 * the worker: a database that is down is not an error here (jobs fail and
 * the audit writer spools); store_up() tells.  NULL only when the worker
 * cannot be started, with err set.
 */
struct store *store_new(struct event_base *base, const struct conf *c,
    char *err, size_t errlen);

/* Finish queued jobs (at most `wait_ms`), stop the worker, free. */
void store_free(struct store *s, unsigned wait_ms);

/* Non-zero while the worker holds a working connection. */
int store_up(const struct store *s);

/* The dialect of the connected database (STORE_SQLITE before connecting). */
enum store_dialect store_dialect(const struct store *s);

/*
 * A job runs on the worker thread with a live connection (the worker
 * connects, or reconnects with back-off, before running it) and returns
 * 0 or -1 (after store_conn_fail or a failed store_exec/store_query).
 * `done` then runs on the loop thread with rc and the error text
 * (borrowed for the call).  `arg` belongs to the caller throughout; a job
 * touches nothing of the loop's.  Jobs run one at a time, in order.
 * Returns 0, or -1 when the queue is full (`store_new`: 10000 jobs).
 */
typedef int (*store_job_fn)(struct store_conn *sc, void *arg);
typedef void (*store_done_fn)(void *arg, int rc, const char *err);
int store_submit(struct store *s, store_job_fn job, store_done_fn done,
    void *arg);

/* ---- inside a job (worker thread only) ----------------------------------- */

enum store_dialect store_conn_dialect(const struct store_conn *sc);

/* Run a statement with `n` bound parameters; rows affected in *rows_r (may
 * be NULL).  0 or -1 (the error is kept for the job's done callback). */
int store_exec(struct store_conn *sc, const char *sql,
    const struct store_val *params, size_t n, int64_t *rows_r);

/* Run a query; `row` is called for each row with its columns (borrowed for
 * the call) and may return non-zero to stop early.  0 or -1. */
typedef int (*store_row_fn)(void *arg, const struct store_val *cols,
    size_t ncols);
int store_query(struct store_conn *sc, const char *sql,
    const struct store_val *params, size_t n, store_row_fn row, void *arg);

/* Transactions (autocommit is on outside them). */
int store_begin(struct store_conn *sc);
int store_commit(struct store_conn *sc);
int store_rollback(struct store_conn *sc);

/* Record a failure of the job's own (printf style). Returns -1. */
int store_conn_fail(struct store_conn *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The statement text of `name` for the connection's dialect: the dialect's
 * own text where it has one, else the portable one (store-sql.c).  NULL
 * for an unknown name.
 */
const char *store_sql(const struct store_conn *sc, const char *name);

/* ---- schema ------------------------------------------------------------------ */

/* The schema version this imgwd knows (etc/sql/). */
#define STORE_SCHEMA_VERSION	1

/*
 * Jobs for imgwctl db: create the schema (refuses when tables exist),
 * migrate an older schema to STORE_SCHEMA_VERSION, read the version
 * (0: no schema).  imgwd refuses to start on a newer schema and on an
 * older one asks for `imgwctl db migrate`.
 */
int store_schema_init(struct store_conn *sc, void *arg);
int store_schema_migrate(struct store_conn *sc, void *arg);
int store_schema_version(struct store_conn *sc, int *version_r);

#endif
