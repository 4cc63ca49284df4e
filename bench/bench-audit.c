/*
 * bench-audit: audit records per second through the real writer — the
 * router's audit hook (audit_record: encode, frame, buffer), the spool
 * (one write per batch of records), and the store worker inserting
 * batches in transactions — into SQLite and, given a connection string,
 * into another database (PostgreSQL).
 *
 *   bench/bench-audit [-n RECORDS] [-b BATCH] [-d DSN]...
 *
 * Printed per database: the loop's cost per record (ns of CPU in
 * audit_record + flush, the part routing pays), and records/s from the
 * first record to the last commit (the rate the database sustains).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "audit.h"
#include "conf.h"
#include "ev.h"
#include "log.h"
#include "router.h"
#include "store.h"
#include "util.h"

static double
bench_now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_count_row(void *arg, const struct store_val *cols, size_t n)
{
	*(int64_t *)arg = store_val_int(&cols[0], -1);
	return 1;
}

static int
bench_clear(struct store_conn *sc, void *arg)
{
	store_exec(sc, "DELETE FROM imgw_audit", NULL, 0, NULL);
	return store_query(sc, store_sql(sc, "audit.count"), NULL, 0,
	    bench_count_row, arg);
}

static int
bench_run(const char *dsn, const char *dir, long n, unsigned batch)
{
	struct event_base *base = event_base_new();
	struct imgw_event e;
	struct audit_status st;
	struct store_status ss;
	struct store *s;
	struct audit *a;
	struct conf *c;
	struct ev *ev;
	char err[1024], *text, *path, body[61];
	const char *why, *cond;
	double t0, c0, tl, cl, t1;
	int64_t before = 0;
	long i;
	FILE *f;

	mkdir(dir, 0700);
	path = xasprintf("%s/bench.conf", dir);
	text = xasprintf("[gateway]\nnode = bench\n[store]\nstate = %s\n"
	    "batch = %u\nflush-ms = 20\n%s%s%s", dir, batch,
	    dsn ? "dsn = " : "", dsn ? dsn : "", dsn ? "\n" : "");
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "bench-audit: cannot write %s\n", path);
		return -1;
	}
	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench-audit: %s\n", err);
		return -1;
	}
	if ((s = store_new(base, c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench-audit: %s\n", err);
		return -1;
	}
	if (store_wait_first(s, 30000) != STORE_UP) {
		store_get_status(s, &ss);
		fprintf(stderr, "bench-audit: %s: %s (run `imgwctl db init` "
		    "first?)\n", ss.dsn, ss.error);
		store_free(s, 0);
		return -1;
	}
	store_get_status(s, &ss);
	if (store_call(s, bench_clear, &before, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench-audit: %s\n", err);
		store_free(s, 0);
		return -1;
	}
	if ((a = audit_new(base, s, "bench", err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench-audit: %s\n", err);
		store_free(s, 0);
		return -1;
	}
	memset(body, 'x', 60);
	body[60] = '\0';
	imgw_event_init(&e, IMGW_EV_MESSAGE);
	e.from = "alice@corp.example/desk";
	e.to = "bob@partner.example";
	e.body = body;
	ev = ev_copy(&e, &why, &cond);
	snprintf(ev->trace, sizeof(ev->trace), "bench-00000000-1");

	t0 = bench_now(CLOCK_MONOTONIC);
	c0 = bench_now(CLOCK_THREAD_CPUTIME_ID);
	/* the loop thread's CPU: audit_record, and a loop turn (the spool
	 * write) every 512 records as bench-router batches events */
	for (i = 0; i < n; i++) {
		audit_record(a, ev, "corp", "partner", "routed", NULL);
		if ((i & 511) == 511)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	audit_flush(a);
	cl = bench_now(CLOCK_THREAD_CPUTIME_ID) - c0;
	tl = bench_now(CLOCK_MONOTONIC) - t0;
	for (;;) {
		audit_get_status(a, &st);
		if (st.pending == 0 && st.queued == 0)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	t1 = bench_now(CLOCK_MONOTONIC) - t0;
	printf("%-10s %-22.22s %8ld records  hook+spool %5.0f ns/record on the "
	    "loop (%.2f s)  into the database: %8.0f records/s (%.2f s), "
	    "batch %u\n", store_dialect_name(ss.dialect), ss.dbms, n,
	    cl * 1e9 / (double)n, tl, (double)n / t1, t1, batch);
	if (st.written != (uint64_t)n || st.dropped != 0)
		printf("  ! written %" PRIu64 ", dropped %" PRIu64 "\n",
		    st.written, st.dropped);
	ev_free(ev);
	audit_stop(a);
	store_free(s, 10000);
	audit_free(a);
	conf_free(c);
	event_base_free(base);
	free(text);
	free(path);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dsns[8];
	int nd = 0, ch, rc = 0, i;
	long n = 200000;
	unsigned batch = 500;
	char tmpl[] = "/tmp/imgw-bench-audit.XXXXXX", *dir, *cmd;

	while ((ch = getopt(argc, argv, "n:b:d:h")) != -1) {
		switch (ch) {
		case 'n':
			n = atol(optarg);
			break;
		case 'b':
			batch = (unsigned)atoi(optarg);
			break;
		case 'd':
			if (nd < 8)
				dsns[nd++] = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench-audit [-n RECORDS] "
			    "[-b BATCH] [-d DSN]...\n");
			return 2;
		}
	}
	if (n < 1 || batch < 1)
		return 2;
	log_setup(LOG_TARGET_STDERR, IMGW_LOG_WARNING);
	if ((dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (bench_run(NULL, dir, n, batch) < 0)
		rc = 1;
	for (i = 0; i < nd; i++) {
		char *sub = xasprintf("%s/%d", dir, i);

		if (bench_run(dsns[i], sub, n, batch) < 0)
			rc = 1;
		free(sub);
	}
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
