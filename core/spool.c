/* The audit spool: segment files appended by the loop, read by the worker
 * (spool.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define SPOOL_MAGIC		"IMGWSPL1"
#define SPOOL_HDR		8
#define SPOOL_SEG_MAX		(4u * 1024 * 1024)
#define SPOOL_FRAME_MAX		(64u * 1024 * 1024)
#define SPOOL_READ_CHUNK	(256u * 1024)

struct spool_seg {
	uint64_t id;
	uint64_t size;		/* bytes, header included, whole frames only */
	uint64_t nrec;
	int synced;		/* size at the last fsync == size */
};

struct spool {
	char *dir;
	char id[33];
	int lock_fd;
	pthread_mutex_t mu;
	struct spool_seg *segs;	/* by id; the last is appended to */
	size_t nsegs;
	int fd;			/* the last segment, O_APPEND */
	uint64_t max_bytes;
	uint64_t seg_max;
	int dir_dirty;		/* a segment was created since the last sync */
	/* the read position (worker; read under mu by stats) */
	struct spool_pos pos;
	uint64_t pos_consumed;	/* records of pos.seg before pos.off */
	int pos_known;
	uint64_t corrupt;
	/* the worker's: read buffer, records of the last read's end segment */
	uint64_t rd_consumed;
	unsigned char *rbuf;
	size_t rcap;
};

/* ---- CRC-32 (IEEE 802.3, as zlib) ------------------------------------------ */

/* slicing by 8: eight bytes a step (the loop pays this per record) */
static uint32_t spool_crc_table[8][256];
static pthread_once_t spool_crc_once = PTHREAD_ONCE_INIT;

static void
spool_crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		spool_crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			spool_crc_table[k][i] = (spool_crc_table[k - 1][i] >> 8) ^
			    spool_crc_table[0][spool_crc_table[k - 1][i] & 0xff];
}

uint32_t
spool_crc32(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t c = 0xffffffffu, lo, hi;

	pthread_once(&spool_crc_once, spool_crc_init);
	while (n >= 8) {
		lo = c ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 |
		    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
		hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
		    (uint32_t)b[7] << 24;
		c = spool_crc_table[7][lo & 0xff] ^
		    spool_crc_table[6][(lo >> 8) & 0xff] ^
		    spool_crc_table[5][(lo >> 16) & 0xff] ^
		    spool_crc_table[4][lo >> 24] ^
		    spool_crc_table[3][hi & 0xff] ^
		    spool_crc_table[2][(hi >> 8) & 0xff] ^
		    spool_crc_table[1][(hi >> 16) & 0xff] ^
		    spool_crc_table[0][hi >> 24];
		b += 8;
		n -= 8;
	}
	while (n--)
		c = spool_crc_table[0][(c ^ *b++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static void
spool_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t
spool_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

size_t
spool_frame(void *out, const void *payload, size_t len)
{
	unsigned char *o = out;

	spool_put32(o, (uint32_t)len);
	spool_put32(o + 4, spool_crc32(payload, len));
	memmove(o + SPOOL_FRAME_HDR, payload, len);
	return len + SPOOL_FRAME_HDR;
}

/* ---- segments ----------------------------------------------------------------- */

static char *
spool_seg_path(const struct spool *sp, uint64_t id)
{
	return xasprintf("%s/%016" PRIx64 ".spool", sp->dir, id);
}

static int
spool_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Scan a segment: count whole, valid frames; *size_r: where they end.
 * A bad frame ends the scan (the caller cuts the segment there).
 */
static int
spool_scan(const char *path, uint64_t *size_r, uint64_t *nrec_r,
    uint64_t stop_at, int *bad_r)
{
	unsigned char hdr[SPOOL_HDR], fh[SPOOL_FRAME_HDR], *buf = NULL;
	uint64_t off = SPOOL_HDR, n = 0;
	size_t cap = 0;
	uint32_t len;
	ssize_t r;
	int fd;

	*bad_r = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (pread(fd, hdr, SPOOL_HDR, 0) != SPOOL_HDR ||
	    memcmp(hdr, SPOOL_MAGIC, SPOOL_HDR) != 0) {
		*bad_r = 1;
		*size_r = 0;
		*nrec_r = 0;
		close(fd);
		return 0;
	}
	while (off < stop_at) {
		r = pread(fd, fh, sizeof(fh), (off_t)off);
		if (r == 0)
			break;
		if (r != (ssize_t)sizeof(fh)) {
			*bad_r = 1;
			break;
		}
		len = spool_get32(fh);
		if (len > SPOOL_FRAME_MAX) {
			*bad_r = 1;
			break;
		}
		if (len > cap) {
			free(buf);
			cap = len;
			buf = xmalloc(cap);
		}
		if (len > 0 && pread(fd, buf, len, (off_t)(off + sizeof(fh))) !=
		    (ssize_t)len) {
			*bad_r = 1;
			break;
		}
		if (spool_crc32(buf, len) != spool_get32(fh + 4)) {
			*bad_r = 1;
			break;
		}
		off += sizeof(fh) + len;
		n++;
	}
	free(buf);
	close(fd);
	*size_r = off;
	*nrec_r = n;
	return 0;
}

static int
spool_seg_cmp(const void *a, const void *b)
{
	const struct spool_seg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Start a new segment to append to (mu held or not yet shared). */
static int
spool_new_segment(struct spool *sp, char *err, size_t errlen)
{
	struct timespec ts;
	uint64_t id;
	char *path;
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	id = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (sp->nsegs > 0 && id <= sp->segs[sp->nsegs - 1].id)
		id = sp->segs[sp->nsegs - 1].id + 1;
	path = spool_seg_path(sp, id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, SPOOL_MAGIC, SPOOL_HDR) != SPOOL_HDR) {
		snprintf(err, errlen, "cannot create the spool segment %s: %s",
		    path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		free(path);
		return -1;
	}
	free(path);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = fd;
	sp->segs = xreallocarray(sp->segs, sp->nsegs + 1, sizeof(*sp->segs));
	sp->segs[sp->nsegs++] = (struct spool_seg){ .id = id, .size = SPOOL_HDR,
	    .synced = 0 };
	sp->dir_dirty = 1;
	return 0;
}

static int
spool_load_id(struct spool *sp, char *err, size_t errlen)
{
	char *path = xasprintf("%s/id", sp->dir), buf[64];
	unsigned char rnd[16];
	ssize_t n;
	int fd, i;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n >= 32) {
			memcpy(sp->id, buf, 32);
			sp->id[32] = '\0';
			if (strspn(sp->id, "0123456789abcdef") == 32) {
				free(path);
				return 0;
			}
		}
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		free(path);
		return -1;
	}
	for (i = 0; i < 16; i++)
		snprintf(sp->id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(buf, sizeof(buf), "%s\n", sp->id);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0 ||
	    write(fd, buf, 33) != 33 || fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	close(fd);
	free(path);
	return 0;
}

struct spool *
spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	struct dirent *de;
	uint64_t size, nrec, id, total = 0;
	char *path, *end;
	DIR *d;
	int bad;
	size_t i;

	sp->dir = xstrdup(dir);
	sp->fd = -1;
	sp->lock_fd = -1;
	sp->max_bytes = max_bytes;
	sp->seg_max = SPOOL_SEG_MAX;
	pthread_mutex_init(&sp->mu, NULL);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the audit spool folder %s: %s",
		    dir, strerror(errno));
		goto fail;
	}
	path = xasprintf("%s/lock", dir);
	sp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	free(path);
	if (sp->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s/lock: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "the audit spool %s is in use by another "
		    "imgwd (each node needs its own state folder)", dir);
		goto fail;
	}
	if (spool_load_id(sp, err, errlen) < 0)
		goto fail;
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		goto fail;
	}
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 22 ||
		    strcmp(de->d_name + 16, ".spool") != 0)
			continue;
		errno = 0;
		id = strtoull(de->d_name, &end, 16);
		if (errno != 0 || end != de->d_name + 16)
			continue;
		sp->segs = xreallocarray(sp->segs, sp->nsegs + 1,
		    sizeof(*sp->segs));
		sp->segs[sp->nsegs++] = (struct spool_seg){ .id = id,
		    .synced = 1 };
	}
	closedir(d);
	if (sp->nsegs > 1)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), spool_seg_cmp);
	for (i = 0; i < sp->nsegs; i++) {
		path = spool_seg_path(sp, sp->segs[i].id);
		if (spool_scan(path, &size, &nrec, UINT64_MAX, &bad) < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			free(path);
			goto fail;
		}
		if (bad) {
			/* imgwd died in the middle of a write: cut the torn
			 * frame (or a damaged file) off where the good end */
			log_msg(IMGW_LOG_WARNING, "audit", NULL, "spool segment "
			    "%s: damaged or torn frame at byte %" PRIu64 "; cut "
			    "there (%" PRIu64 " records kept)", path, size, nrec);
			if (size == 0 || truncate(path, (off_t)size) < 0) {
				nrec = 0;
				size = SPOOL_HDR;
				unlink(path);
			}
		}
		free(path);
		sp->segs[i].size = size;
		sp->segs[i].nrec = nrec;
		total += nrec;
	}
	/* segments without records are of no use */
	for (i = 0; i < sp->nsegs; ) {
		if (sp->segs[i].nrec == 0) {
			path = spool_seg_path(sp, sp->segs[i].id);
			unlink(path);
			free(path);
			memmove(&sp->segs[i], &sp->segs[i + 1],
			    (sp->nsegs - i - 1) * sizeof(*sp->segs));
			sp->nsegs--;
		} else {
			i++;
		}
	}
	if (spool_new_segment(sp, err, errlen) < 0)
		goto fail;
	spool_fsync_dir(dir);
	sp->dir_dirty = 0;
	sp->pos.seg = sp->segs[0].id;
	sp->pos.off = SPOOL_HDR;
	if (total > 0)
		log_msg(IMGW_LOG_NOTICE, "audit", NULL, "%" PRIu64 " audit records "
		    "in the spool %s from an earlier run: replayed when the "
		    "database takes them", total, dir);
	return sp;
fail:
	spool_close(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	pthread_mutex_destroy(&sp->mu);
	free(sp->segs);
	free(sp->rbuf);
	free(sp->dir);
	free(sp);
}

const char *
spool_id(const struct spool *sp)
{
	return sp->id;
}

void
spool_set_segment_max(struct spool *sp, uint64_t bytes)
{
	pthread_mutex_lock(&sp->mu);
	sp->seg_max = bytes < 64 ? 64 : bytes;
	pthread_mutex_unlock(&sp->mu);
}

/* Records and bytes not yet committed (mu held). */
static void
spool_pending(const struct spool *sp, uint64_t *recs_r, uint64_t *bytes_r)
{
	uint64_t recs = 0, bytes = 0;
	size_t i;

	for (i = 0; i < sp->nsegs; i++) {
		const struct spool_seg *s = &sp->segs[i];

		if (s->id < sp->pos.seg)
			continue;
		if (s->id == sp->pos.seg) {
			recs += s->nrec - sp->pos_consumed;
			bytes += s->size - sp->pos.off;
		} else {
			recs += s->nrec;
			bytes += s->size - SPOOL_HDR;
		}
	}
	*recs_r = recs;
	*bytes_r = bytes;
}

int
spool_append(struct spool *sp, const void *buf, size_t len, size_t nrec,
    char *err, size_t errlen)
{
	struct spool_seg *cur;
	uint64_t recs, bytes;
	const char *p = buf;
	size_t left = len;
	ssize_t n;
	int rc = -1;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&sp->mu);
	spool_pending(sp, &recs, &bytes);
	if (bytes + len > sp->max_bytes) {
		snprintf(err, errlen, "the audit spool is full (%" PRIu64 " of %"
		    PRIu64 " bytes)", bytes, sp->max_bytes);
		goto out;
	}
	cur = &sp->segs[sp->nsegs - 1];
	if (cur->size + len > sp->seg_max && cur->nrec > 0) {
		if (spool_new_segment(sp, err, errlen) < 0)
			goto out;
		cur = &sp->segs[sp->nsegs - 1];
	}
	while (left > 0) {
		n = write(sp->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "writing the audit spool: %s",
			    n < 0 ? strerror(errno) : "short write");
			/* whatever made it is a torn frame: cut it */
			if (left != len && ftruncate(sp->fd, (off_t)cur->size) < 0)
				log_msg(IMGW_LOG_ERR, "audit", NULL, "cannot cut a "
				    "torn spool frame: %s", strerror(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	cur->size += len;
	cur->nrec += nrec;
	cur->synced = 0;
	rc = 0;
out:
	pthread_mutex_unlock(&sp->mu);
	return rc;
}

/* ---- the worker ---------------------------------------------------------------- */

/* Index of the first segment with id >= `id` (mu held); nsegs if none. */
static size_t
spool_find(const struct spool *sp, uint64_t id)
{
	size_t i;

	for (i = 0; i < sp->nsegs; i++)
		if (sp->segs[i].id >= id)
			break;
	return i;
}

/* Delete the segments before pos.seg, never the one appended to (mu
 * held). */
static void
spool_drop_before(struct spool *sp)
{
	char *path;

	while (sp->nsegs > 1 && sp->segs[0].id < sp->pos.seg) {
		path = spool_seg_path(sp, sp->segs[0].id);
		if (unlink(path) < 0 && errno != ENOENT)
			log_msg(IMGW_LOG_WARNING, "audit", NULL, "cannot remove "
			    "%s: %s", path, strerror(errno));
		free(path);
		memmove(&sp->segs[0], &sp->segs[1], (sp->nsegs - 1) *
		    sizeof(*sp->segs));
		sp->nsegs--;
	}
}

void
spool_set_pos(struct spool *sp, const struct spool_pos *pos)
{
	uint64_t size, nrec = 0, off = SPOOL_HDR;
	struct spool_seg seg;
	char *path;
	size_t i;
	int bad;

	pthread_mutex_lock(&sp->mu);
	i = spool_find(sp, pos->seg);
	if (pos->seg == 0 || i == sp->nsegs) {
		/* from the beginning (or everything here is newer) */
		i = pos->seg == 0 ? 0 : i;
		if (i == sp->nsegs)
			i = sp->nsegs - 1;
		sp->pos.seg = sp->segs[i].id;
		sp->pos.off = SPOOL_HDR;
		sp->pos_consumed = 0;
		sp->pos_known = 1;
		spool_drop_before(sp);
		pthread_mutex_unlock(&sp->mu);
		return;
	}
	seg = sp->segs[i];
	if (seg.id == pos->seg) {
		off = pos->off < SPOOL_HDR ? SPOOL_HDR : pos->off > seg.size ?
		    seg.size : pos->off;
	}
	pthread_mutex_unlock(&sp->mu);
	if (off > SPOOL_HDR) {
		/* count what is before the committed offset */
		path = spool_seg_path(sp, seg.id);
		if (spool_scan(path, &size, &nrec, off, &bad) < 0 || size != off) {
			log_msg(IMGW_LOG_WARNING, "audit", NULL, "spool position "
			    "%" PRIu64 " of segment %s is not a record boundary; "
			    "the counters may be off", off, path);
		}
		free(path);
	}
	pthread_mutex_lock(&sp->mu);
	sp->pos.seg = seg.id;
	sp->pos.off = off;
	sp->pos_consumed = nrec;
	sp->pos_known = 1;
	spool_drop_before(sp);
	pthread_mutex_unlock(&sp->mu);
}

int
spool_pos_known(struct spool *sp)
{
	int k;

	pthread_mutex_lock(&sp->mu);
	k = sp->pos_known;
	pthread_mutex_unlock(&sp->mu);
	return k;
}

long
spool_read(struct spool *sp, size_t max, spool_rec_cb cb, void *arg,
    struct spool_pos *end_r)
{
	struct spool_pos pos;
	struct spool_seg seg;
	uint64_t off, limit;
	uint32_t len;
	size_t i, have, used;
	long n = 0;
	ssize_t r;
	char *path;
	int fd;

	uint64_t cons;

	pthread_mutex_lock(&sp->mu);
	pos = sp->pos;
	cons = sp->pos_consumed;
	pthread_mutex_unlock(&sp->mu);
	*end_r = pos;
	sp->rd_consumed = cons;
	while ((size_t)n < max) {
		pthread_mutex_lock(&sp->mu);
		i = spool_find(sp, pos.seg);
		if (i == sp->nsegs) {
			pthread_mutex_unlock(&sp->mu);
			break;
		}
		seg = sp->segs[i];
		if (seg.id != pos.seg) {
			pos = (struct spool_pos){ seg.id, SPOOL_HDR };
			cons = 0;
		}
		limit = seg.size;
		if (pos.off >= limit) {
			/* at the end of this one: on to the next, if any */
			if (i + 1 < sp->nsegs) {
				pos = (struct spool_pos){ sp->segs[i + 1].id,
				    SPOOL_HDR };
				cons = 0;
				*end_r = pos;
				sp->rd_consumed = 0;
				pthread_mutex_unlock(&sp->mu);
				continue;
			}
			pthread_mutex_unlock(&sp->mu);
			break;
		}
		pthread_mutex_unlock(&sp->mu);

		path = spool_seg_path(sp, seg.id);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_msg(IMGW_LOG_ERR, "audit", NULL, "cannot read %s: %s",
			    path, strerror(errno));
			free(path);
			return n > 0 ? n : -1;
		}
		off = pos.off;
		while ((size_t)n < max && off < limit) {
			have = limit - off > SPOOL_READ_CHUNK ? SPOOL_READ_CHUNK
			    : (size_t)(limit - off);
			if (have > sp->rcap) {
				free(sp->rbuf);
				sp->rcap = have;
				sp->rbuf = xmalloc(sp->rcap);
			}
			r = pread(fd, sp->rbuf, have, (off_t)off);
			if (r < (ssize_t)SPOOL_FRAME_HDR) {
				log_msg(IMGW_LOG_ERR, "audit", NULL, "short read "
				    "in %s at %" PRIu64, path, off);
				break;
			}
			used = 0;
			while ((size_t)n < max && used + SPOOL_FRAME_HDR <=
			    (size_t)r) {
				len = spool_get32(sp->rbuf + used);
				if (len > SPOOL_FRAME_MAX) {
					r = -1;
					break;
				}
				if (used + SPOOL_FRAME_HDR + len > (size_t)r) {
					if (used == 0) {
						/* one frame bigger than the
						 * buffer: grow and read again */
						free(sp->rbuf);
						sp->rcap = SPOOL_FRAME_HDR + len;
						sp->rbuf = xmalloc(sp->rcap);
						r = pread(fd, sp->rbuf, sp->rcap,
						    (off_t)off);
						if (r != (ssize_t)sp->rcap) {
							r = -1;
							break;
						}
						continue;
					}
					break;
				}
				if (spool_crc32(sp->rbuf + used + SPOOL_FRAME_HDR,
				    len) != spool_get32(sp->rbuf + used + 4)) {
					r = -1;
					break;
				}
				if (cb(arg, sp->rbuf + used + SPOOL_FRAME_HDR,
				    len) < 0) {
					close(fd);
					free(path);
					return -1;
				}
				used += SPOOL_FRAME_HDR + len;
				n++;
				cons++;
			}
			if (r < 0) {
				/* damaged on disk: skip the rest of it */
				log_msg(IMGW_LOG_ERR, "audit", NULL, "spool segment "
				    "%s: bad frame at byte %" PRIu64 "; skipping "
				    "the rest of it", path, off + used);
				pthread_mutex_lock(&sp->mu);
				sp->corrupt++;
				pthread_mutex_unlock(&sp->mu);
				off = limit;
				break;
			}
			off += used;
			if (used == 0)
				break;
		}
		close(fd);
		free(path);
		pos.off = off;
		*end_r = pos;
		sp->rd_consumed = cons;
		if (off < limit)
			break;		/* max reached */
	}
	return n;
}

void
spool_commit(struct spool *sp, const struct spool_pos *end, size_t n)
{
	/* `end` is where the last spool_read stopped (one reader) */
	pthread_mutex_lock(&sp->mu);
	sp->pos = *end;
	sp->pos_consumed = sp->rd_consumed;
	spool_drop_before(sp);
	pthread_mutex_unlock(&sp->mu);
}

int
spool_sync(struct spool *sp)
{
	uint64_t ids[64];
	size_t n = 0, i;
	int dirty, rc = 0, fd;
	char *path;

	pthread_mutex_lock(&sp->mu);
	for (i = 0; i < sp->nsegs && n < 64; i++)
		if (!sp->segs[i].synced) {
			ids[n++] = sp->segs[i].id;
			sp->segs[i].synced = 1;
		}
	dirty = sp->dir_dirty;
	sp->dir_dirty = 0;
	pthread_mutex_unlock(&sp->mu);
	/* fsync flushes the file's data whatever descriptor wrote it */
	for (i = 0; i < n; i++) {
		path = spool_seg_path(sp, ids[i]);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (fdatasync(fd) < 0)
				rc = -1;
			close(fd);
		}
		free(path);
	}
	if (dirty && spool_fsync_dir(sp->dir) < 0)
		rc = -1;
	return rc;
}

void
spool_stats(struct spool *sp, struct spool_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&sp->mu);
	spool_pending(sp, &st->pending_records, &st->pending_bytes);
	st->max_bytes = sp->max_bytes;
	st->segments = sp->nsegs;
	st->corrupt = sp->corrupt;
	st->pos_known = sp->pos_known;
	pthread_mutex_unlock(&sp->mu);
}
