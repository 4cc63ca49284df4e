/*
 * The audit spool (core/spool.c): append and read back in order, commit
 * and segment deletion, restart with records left over, a torn frame at
 * the end, a position from the database in the middle of a segment, the
 * bound, and the lock against a second imgwd.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "spool.h"
#include "tap.h"
#include "testlib.h"

struct sp_read {
	int n;
	int first, last;
	int in_order;
};

static int
sp_cb(void *arg, const void *p, size_t len)
{
	struct sp_read *r = arg;
	char buf[32];
	int v;

	snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)p);
	v = atoi(buf + 4);	/* "rec-N" */
	if (r->n == 0)
		r->first = v;
	else if (v != r->last + 1)
		r->in_order = 0;
	r->last = v;
	r->n++;
	return 0;
}

/* Append records from..to-1, in batches of 10. */
static int
sp_put(struct spool *sp, int from, int to)
{
	char buf[4096], rec[32], err[256];
	size_t len = 0, n = 0;
	int i, rc = 0;

	for (i = from; i < to; i++) {
		snprintf(rec, sizeof(rec), "rec-%d", i);
		len += spool_frame(buf + len, rec, strlen(rec));
		n++;
		if (n == 10 || i == to - 1) {
			if (spool_append(sp, buf, len, n, err, sizeof(err)) < 0)
				rc = -1;
			len = n = 0;
		}
	}
	return rc;
}

static int
sp_segments(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".spool") != NULL)
			n++;
	if (d != NULL)
		closedir(d);
	return n;
}

int
main(void)
{
	char *tdir = tl_tmpdir(), *dir, err[512], buf[64];
	struct spool *sp, *sp2;
	struct spool_stats st;
	struct spool_pos end, mid;
	struct sp_read r;
	char idbuf[40];
	long n;
	int fd;

	ok(spool_crc32("123456789", 9) == 0xcbf43926u, "CRC-32 check value");
	if (asprintf(&dir, "%s/spool", tdir) < 0)
		bail_out("oom");
	sp = spool_open(dir, 1024 * 1024, err, sizeof(err));
	if (sp == NULL)
		bail_out("spool_open: %s", err);
	snprintf(idbuf, sizeof(idbuf), "%s", spool_id(sp));
	is_int(strlen(idbuf), 32, "the spool has an id");
	sp2 = spool_open(dir, 1024, err, sizeof(err));
	ok(sp2 == NULL, "a second opener is refused");
	like(err, "in use by another imgwd", "saying why");

	spool_set_segment_max(sp, 300);
	ok(sp_put(sp, 0, 100) == 0, "100 records appended");
	spool_stats(sp, &st);
	is_int(st.pending_records, 100, "100 pending");
	ok(st.segments > 3, "over several segments (%d)", (int)st.segments);
	spool_set_pos(sp, &(struct spool_pos){ 0, 0 });

	memset(&r, 0, sizeof(r));
	r.in_order = 1;
	n = spool_read(sp, 30, sp_cb, &r, &end);
	is_int(n, 30, "read 30");
	ok(r.first == 0 && r.last == 29 && r.in_order, "0..29 in order");
	spool_commit(sp, &end, (size_t)n);
	spool_stats(sp, &st);
	is_int(st.pending_records, 70, "70 pending after the commit");
	ok(sp_segments(dir) < 1 + (int)st.segments + 1, "segments behind "
	    "the position deleted");
	ok(spool_sync(sp) == 0, "fsync");

	/* read without commit, twice: the same records (a failed insert) */
	memset(&r, 0, sizeof(r));
	r.in_order = 1;
	spool_read(sp, 5, sp_cb, &r, &mid);
	memset(&r, 0, sizeof(r));
	r.in_order = 1;
	spool_read(sp, 5, sp_cb, &r, &mid);
	ok(r.first == 30 && r.last == 34, "an uncommitted read is read again");
	spool_commit(sp, &mid, 5);

	/* "restart": close and open; the database says we were at `mid` */
	spool_close(sp);
	sp = spool_open(dir, 1024 * 1024, err, sizeof(err));
	ok(sp != NULL, "reopened");
	is_str(spool_id(sp), idbuf, "same id");
	spool_stats(sp, &st);
	ok(st.pending_records >= 65, "records left over are pending (%llu)",
	    (unsigned long long)st.pending_records);
	spool_set_pos(sp, &mid);
	spool_stats(sp, &st);
	is_int(st.pending_records, 65, "after the database's position: 65");
	ok(sp_put(sp, 100, 110) == 0, "10 more appended");
	memset(&r, 0, sizeof(r));
	r.in_order = 1;
	n = spool_read(sp, 1000, sp_cb, &r, &end);
	ok(n == 75 && r.first == 35 && r.last == 109 && r.in_order,
	    "35..109 read in order across the restart (%ld, %d..%d)", n,
	    r.first, r.last);
	spool_commit(sp, &end, (size_t)n);
	spool_stats(sp, &st);
	is_int(st.pending_records, 0, "nothing pending");
	is_int(sp_segments(dir), 1, "one segment left");

	/* a torn frame at the end (killed in the middle of a write) */
	ok(sp_put(sp, 200, 203) == 0, "3 appended");
	spool_close(sp);
	{
		char *seg = NULL;
		struct dirent *de;
		DIR *d = opendir(dir);

		while ((de = readdir(d)) != NULL)
			if (strstr(de->d_name, ".spool") != NULL) {
				free(seg);
				if (asprintf(&seg, "%s/%s", dir, de->d_name) < 0)
					bail_out("oom");
			}
		closedir(d);
		fd = open(seg, O_WRONLY | O_APPEND);
		memcpy(buf, "\x20\0\0\0\x01\x02", 6);
		ok(write(fd, buf, 6) == 6, "half a frame written");
		close(fd);
		free(seg);
	}
	sp = spool_open(dir, 1024 * 1024, err, sizeof(err));
	spool_set_pos(sp, &end);
	spool_stats(sp, &st);
	is_int(st.pending_records, 3, "the torn frame is cut, 3 records kept");
	memset(&r, 0, sizeof(r));
	r.in_order = 1;
	n = spool_read(sp, 1000, sp_cb, &r, &end);
	ok(n == 3 && r.first == 200 && r.last == 202, "and read");
	spool_commit(sp, &end, (size_t)n);

	/* the bound */
	spool_close(sp);
	sp = spool_open(dir, 4096, err, sizeof(err));
	spool_set_pos(sp, &end);
	ok(sp_put(sp, 0, 400) < 0, "appending past spool-max fails");
	spool_stats(sp, &st);
	ok(st.pending_bytes <= 4096, "the spool stays within its bound "
	    "(%llu bytes)", (unsigned long long)st.pending_bytes);
	memset(&r, 0, sizeof(r));
	n = spool_read(sp, 1000, sp_cb, &r, &end);
	spool_commit(sp, &end, (size_t)n);
	ok(sp_put(sp, 0, 10) == 0, "once read, there is room again");
	spool_close(sp);

	tl_rmrf(tdir);
	free(dir);
	free(tdir);
	return done_testing();
}
