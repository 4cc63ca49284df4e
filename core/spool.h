/*
 * The audit spool: an append-only log of records on local disk, in
 * segment files STATE/audit-spool/<16 hex digits>.spool, written by the
 * loop thread and read back, in order, by the store worker.
 *
 * Every audit record goes through the spool (a write-ahead log): the loop
 * appends a batch with one write() per loop turn, so a record survives a
 * kill of imgwd as soon as its event has been routed; the worker fsyncs
 * what the database has not taken yet (so it survives the machine too),
 * reads records back and inserts them.  The position up to which records
 * are in the database is committed in the database, in the same
 * transaction as the records (imgw_audit_pos, keyed by this spool's id):
 * a record is written once, even when imgwd dies between the commit and
 * the deletion of a segment.
 *
 * A segment starts with the 8-byte header "IMGWSPL1"; then frames of
 * u32 length, u32 CRC-32 of the payload, payload (little endian).  A torn
 * frame at the end of the last segment (imgwd killed in the middle of a
 * write) is cut off at open.
 *
 * Threads: spool_append and spool_stats from the loop; spool_read,
 * spool_commit, spool_set_pos and spool_sync from the worker.  The mutex
 * inside covers what they share.
 */
#ifndef IMGW_CORE_SPOOL_H
#define IMGW_CORE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;

/* A place in the spool: a segment id and a byte offset in it. */
struct spool_pos {
	uint64_t seg;
	uint64_t off;
};

struct spool_stats {
	uint64_t pending_records;	/* in the spool, not yet committed */
	uint64_t pending_bytes;
	uint64_t max_bytes;
	uint64_t segments;
	uint64_t corrupt;		/* frames skipped for a bad checksum */
	int pos_known;
};

/*
 * Open (create) the spool in `dir`, holding at most `max_bytes` of
 * records not yet committed.  Takes an exclusive lock on DIR/lock: a
 * second imgwd on the same folder is refused.  NULL with err set.
 */
struct spool *spool_open(const char *dir, uint64_t max_bytes, char *err,
    size_t errlen);
void spool_close(struct spool *sp);

/* The spool's id (32 hex digits, made at creation, kept in DIR/id). */
const char *spool_id(const struct spool *sp);

/* Rotate to a new segment past this many bytes (default 4 MiB). */
void spool_set_segment_max(struct spool *sp, uint64_t bytes);

/* Frame `len` bytes of payload into `out` (SPOOL_FRAME_HDR + len bytes);
 * returns the framed length. */
#define SPOOL_FRAME_HDR	8
size_t spool_frame(void *out, const void *payload, size_t len);

/*
 * Append `len` bytes holding `nrec` frames (one write).  -1 when they would
 * take the spool past its bound (nothing written, err says so) or the
 * write fails (err set).  Loop thread.
 */
int spool_append(struct spool *sp, const void *buf, size_t len, size_t nrec,
    char *err, size_t errlen);

/* ---- the worker ---------------------------------------------------------- */

/*
 * Where reading starts: the committed position from the database (or
 * {0, 0}: from the beginning).  Counts out the records before it.
 */
void spool_set_pos(struct spool *sp, const struct spool_pos *pos);
int spool_pos_known(struct spool *sp);

/*
 * Read up to `max` records from the current position; `cb` gets each
 * payload (borrowed for the call).  *end_r: the position after the last
 * one read (pass it to spool_commit once they are in the database).
 * Returns the number read (0: nothing pending), -1 on an I/O error.
 */
typedef int (*spool_rec_cb)(void *arg, const void *payload, size_t len);
long spool_read(struct spool *sp, size_t max, spool_rec_cb cb, void *arg,
    struct spool_pos *end_r);

/* `n` records up to `end` are in the database: move the position, delete
 * segments wholly behind it. */
void spool_commit(struct spool *sp, const struct spool_pos *end, size_t n);

/* fsync what was appended since the last sync (and the folder). */
int spool_sync(struct spool *sp);

void spool_stats(struct spool *sp, struct spool_stats *st);

uint32_t spool_crc32(const void *p, size_t n);

#endif
