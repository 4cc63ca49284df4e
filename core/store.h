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
 *   retry-max     longest wait between reconnection attempts, in ms
 *                 (default 15000; the first waits 500 ms, then doubles)
 *   timeout       seconds a login or a statement may take before it counts
 *                 as a failure (default 10; 0: the driver's own)
 *   required      yes: imgwd refuses to start while the database cannot be
 *                 reached; no (default): it starts and spools the audit
 *   dsn = none    no store at all: no audit log, no stored subscriptions
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

/* The [store] section, parsed and with its defaults. */
struct store_conf {
	char *dsn;		/* NULL: dsn = none (no store) */
	char *dsn_shown;	/* the dsn without PWD=..., for logs and status */
	int default_dsn;	/* the built-in SQLite default is used */
	char *state;		/* the state folder */
	uint64_t spool_max;	/* bytes */
	unsigned batch;
	unsigned flush_ms;
	unsigned refresh;	/* seconds */
	unsigned retry_max_ms;
	unsigned timeout;	/* seconds, 0: driver's */
	int required;
};

/* Check the [store] section of `c`: 0, or -1 with "FILE:LINE: message". */
int store_conf_check(const struct conf *c, char *err, size_t errlen);

/*
 * Parse the [store] section of `c` into `sc` (all strings allocated; free
 * with store_conf_clear).  The password file is read here.  0, or -1 with
 * "FILE:LINE: message".
 */
int store_conf_parse(const struct conf *c, struct store_conf *sc, char *err,
    size_t errlen);
void store_conf_clear(struct store_conf *sc);

/* Create the state folder of `sc` (mkdir -p, mode 0750): 0 or -1. */
int store_state_dir(const struct store_conf *sc, char *err, size_t errlen);

/* The default state folder, $localstatedir/lib/imgw. */
#ifndef IMGW_STATEDIR
#define IMGW_STATEDIR	"/var/lib/imgw"
#endif

/*
 * Start the worker for the [store] of `c` (copied).  Connecting happens on
 * the worker: a database that is down is not an error here (jobs fail and
 * the audit writer spools); store_up() tells.  NULL only when the worker
 * cannot be started, with err set.
 */
struct store *store_new(struct event_base *base, const struct conf *c,
    char *err, size_t errlen);

/*
 * store_new with flags: STORE_CHECK_SCHEMA checks the schema version at
 * every (re)connection (a newer or older schema makes the store refuse
 * the connection: store_state says why); STORE_AUTO_INIT also creates a
 * missing schema (imgwd does for the default SQLite file).  store_new is
 * store_new_flags(.., STORE_CHECK_SCHEMA | (default dsn ? STORE_AUTO_INIT :
 * 0)).  `base` may be NULL when only store_call is used (imgwctl).
 * Returns NULL when [store] says dsn = none (err is then "").
 */
#define STORE_CHECK_SCHEMA	0x01
#define STORE_AUTO_INIT		0x02
struct store *store_new_flags(struct event_base *base, const struct conf *c,
    unsigned flags, char *err, size_t errlen);

/* Where the store stands, for status and for imgwd's start. */
enum store_state {
	STORE_CONNECTING = 0,	/* no attempt finished yet */
	STORE_UP,
	STORE_DOWN,		/* unreachable: retried with back-off */
	STORE_SCHEMA_REFUSED,	/* reachable, but the schema does not fit */
};

struct store_status {
	enum store_state state;
	enum store_dialect dialect;
	char dbms[160];	/* SQL_DBMS_NAME and version */
	char error[1024];	/* last connection or job error, "" if none */
	char dsn[512];		/* the connection string without its password */
	uint64_t jobs_queued, jobs_done, jobs_failed, connects, disconnects;
};
void store_get_status(struct store *s, struct store_status *st);
const char *store_state_name(enum store_state st);
const char *store_dialect_name(enum store_dialect d);

/*
 * Wait (blocking the caller, at most `ms`) until the first connection
 * attempt is over; returns the state then.  For imgwd's start only.
 */
enum store_state store_wait_first(struct store *s, unsigned ms);

/* The parsed [store] this store runs with (borrowed, lives as long). */
const struct store_conf *store_get_conf(const struct store *s);

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

/*
 * store_submit with flags: STORE_JOB_OFFLINE runs the job even when the
 * database cannot be reached (store_conn_connected tells; store_exec and
 * store_query then fail).  The audit writer uses it to fsync its spool.
 */
#define STORE_JOB_OFFLINE	0x01
int store_submit_flags(struct store *s, store_job_fn job, store_done_fn done,
    void *arg, unsigned flags);

/*
 * Run `job` on the worker and wait for it (blocking the calling thread,
 * which must not be the loop when the loop has jobs in flight): for
 * imgwctl and tests.  0 or -1 with the error in err.
 */
int store_call(struct store *s, store_job_fn job, void *arg, char *err,
    size_t errlen);

/* ---- inside a job (worker thread only) ----------------------------------- */

enum store_dialect store_conn_dialect(const struct store_conn *sc);

/* Non-zero when the job has a live connection (see STORE_JOB_OFFLINE). */
int store_conn_connected(const struct store_conn *sc);

/* The store the job runs for (its conf: store_get_conf). */
struct store *store_conn_store(struct store_conn *sc);

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

/*
 * A multi-row INSERT: the statement `name` (an "INSERT ... VALUES (...)"
 * such as "audit.insert") taking `rows` rows in one execution, its
 * parameters row after row.  1 <= rows <= STORE_ROWS_MAX; the parameters
 * (rows x columns) must stay within STORE_MAX_PARAMS.  Static storage;
 * NULL for an unknown name or a statement that is not an INSERT ...
 * VALUES.  Callers keep to a few sizes (powers of two): each size is a
 * statement of its own in the connection's cache.
 */
#define STORE_ROWS_MAX		64
#define STORE_MAX_PARAMS	1024
const char *store_sql_rows(const struct store_conn *sc, const char *name,
    unsigned rows);

/* ---- schema ------------------------------------------------------------------ */

/*
 * The schema version this imgwd knows (etc/sql/).  1: the tables of the
 * first contract (schema, policies, audit, subscriptions); 2: adds
 * imgw_audit_pos, where each node's audit replay position is committed in
 * the same transaction as the records it covers.
 */
#define STORE_SCHEMA_VERSION	2

/*
 * Jobs for imgwctl db: create the schema (refuses when tables exist),
 * migrate an older schema to STORE_SCHEMA_VERSION, read the version
 * (0: no schema).  imgwd refuses to start on a newer schema and on an
 * older one asks for `imgwctl db migrate`.
 */
int store_schema_init(struct store_conn *sc, void *arg);
int store_schema_migrate(struct store_conn *sc, void *arg);
int store_schema_version(struct store_conn *sc, int *version_r);

/* Create the schema at `version` (1..STORE_SCHEMA_VERSION; for tests of
 * migrate), arg: int *.  Refuses when tables exist. */
int store_schema_init_at(struct store_conn *sc, void *arg);

/*
 * The DDL of `dialect` at the current version as one script (statements
 * ending in ";\n"), or the portable template with dialect = -1; the
 * caller frees.  `imgwctl db schema` prints it; etc/sql/ holds the same
 * text (a test compares).
 */
char *store_schema_text(int dialect);

/* Parse a dialect name ("sqlite", "postgresql", "mariadb", "db2"): -1 if
 * unknown. */
int store_dialect_parse(const char *name);

/* Read the value of a column as an integer: INT as is, TEXT parsed
 * (drivers differ in how they describe computed columns); `def` for NULL
 * or text that is not a number. */
int64_t store_val_int(const struct store_val *v, int64_t def);

#endif
