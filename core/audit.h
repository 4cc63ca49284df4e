/*
 * The audit log: one record per routed or refused event, as the audit
 * level of the community says, written to the store in batches, through
 * the spool (spool.h) so that nothing is lost while the database is down
 * or when imgwd is killed.
 *
 * The loop thread encodes records into a buffer (audit_record, called from
 * the router's audit hook; it never blocks on the database) and appends
 * the buffer to the spool once per loop turn.  A job on the store worker
 * reads the spool back and inserts batches of `batch` records, each batch
 * in a transaction with the spool position; between batches it waits at
 * most `flush-ms`.  A full spool raises an alarm (status, log) and drops
 * records, counted; routing goes on.
 */
#ifndef IMGW_CORE_AUDIT_H
#define IMGW_CORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <imgw/event.h>

struct event_base;
struct store;
struct ev;
struct router_verdict;
struct audit;

/* Event families, each audited on its own (policy: audit_im, ...). */
enum audit_family {
	AUDIT_IM = 0,		/* message, error */
	AUDIT_SUBSCRIPTIONS,	/* subscribe, subscribed, unsubscribe(d) */
	AUDIT_PRESENCE,		/* presence, probe, chat state */
};
enum audit_family audit_family(enum imgw_kind kind);

/*
 * Which events get a record: non-zero to audit an event of `kind` going
 * from community `src` to `dst` (either may be NULL), with *full_r set
 * non-zero when the content is recorded too.  The gateway sets it (the
 * policy's per-community audit level and families); the default,
 * audit_default_level, records metadata of messages and subscriptions and
 * nothing of presence.
 */
typedef int (*audit_level_fn)(void *arg, const char *src, const char *dst,
    enum imgw_kind kind, int *full_r);
int audit_default_level(void *arg, const char *src, const char *dst,
    enum imgw_kind kind, int *full_r);

/*
 * A writer into `store` (borrowed; must outlive the audit, see
 * audit_free) with its spool in STATE/audit-spool.  NULL with err set when
 * the spool cannot be opened (another imgwd holds it, no such folder).
 */
struct audit *audit_new(struct event_base *base, struct store *store,
    const char *node, char *err, size_t errlen);

void audit_set_level(struct audit *a, audit_level_fn fn, void *arg);
void audit_set_node(struct audit *a, const char *node);

/* The router's audit hook (router.h): copies what it keeps. */
void audit_record(struct audit *a, const struct ev *ev, const char *src,
    const char *dst, const char *decision, const struct router_verdict *v);

/* Append what is buffered to the spool now (also done every loop turn). */
void audit_flush(struct audit *a);

/* Shutting down: flush, and hand the store a last batch job (store_free
 * then waits for it). */
void audit_stop(struct audit *a);

/* Free; call after store_free (whose done callbacks reach the audit). */
void audit_free(struct audit *a);

struct audit_status {
	uint64_t queued;	/* in memory, not yet in the spool */
	uint64_t pending;	/* in the spool, not yet in the database */
	uint64_t pending_bytes, spool_max;
	uint64_t written;	/* committed to the database */
	uint64_t spooled;	/* appended while the database was unavailable
				 * (or found at start) */
	uint64_t replayed;	/* of those, now in the database */
	uint64_t dropped;	/* lost to a full spool or a failed write */
	uint64_t corrupt;	/* frames damaged on disk, skipped */
	int writing;		/* the last batch went in */
	const char *alarm;	/* NULL, or why records are being dropped */
	char last_error[512];
};
void audit_get_status(struct audit *a, struct audit_status *st);

/* ---- records (exposed for tests and the benchmark) ---------------------------- */

/* The fields of one record; strings may be NULL. */
struct audit_rec {
	int64_t ts_ms;
	const char *node, *trace, *kind, *from, *to, *src, *dst, *decision,
	    *rule, *condition, *content;
};

/* Encode into `out` (grown, *len_r bytes used); decode a payload into
 * `rec` with strings in `scratch` (grown).  0 or -1 (malformed). */
void audit_rec_encode(const struct audit_rec *rec, char **out, size_t *cap,
    size_t *len_r);
int audit_rec_decode(const void *p, size_t len, struct audit_rec *rec,
    char **scratch, size_t *cap);

#endif
