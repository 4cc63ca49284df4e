/*
 * A worker thread with a job queue whose finished jobs come back to the
 * event loop: what the store and the directory client share.
 *
 * Threads.  The loop (or, for worker_call, any thread) submits jobs; the
 * worker runs them one at a time, in order; a finished job is handed back
 * through a pipe the loop watches and its done_cb runs on the loop.  The
 * queues are the worker's, under its own lock; the user's callbacks run
 * without that lock held.
 */
#ifndef IMGW_CORE_WORKER_H
#define IMGW_CORE_WORKER_H

#include <stddef.h>

struct event_base;
struct worker;

/*
 * A job.  Embed it (anywhere) in the user's own job struct; the worker owns
 * its fields from submit until the job is handed back.
 */
struct worker_job {
	struct worker_job *next;
	int sync;		/* worker_call: the caller waits for it */
	int finished;
};

struct worker_ops {
	/*
	 * On the worker thread: run `j`.  `late`: worker_free's wait is over
	 * and the job should fail at once, unless it must run anyway.
	 */
	void (*run_cb)(void *ctx, struct worker_job *j, int late);
	/*
	 * On the loop: `j` is finished and the user's again (to free).  Also
	 * called from worker_free, on its caller's thread, for jobs that
	 * finished since the loop last looked.  Never for worker_call jobs.
	 */
	void (*done_cb)(void *ctx, struct worker_job *j);
	/*
	 * Optional, on the worker thread, before it takes the next job or
	 * waits for one: housekeeping such as (re)connecting.  `pending`: a
	 * job is queued; `stopping`: worker_free was called; `late`: its
	 * wait is over.  Returns 0 to be asked again at once, >0 for the
	 * longest it may wait for a job (ms), <0 to wait as long as it takes.
	 * Without it the worker waits as long as it takes.
	 */
	int (*idle_cb)(void *ctx, int pending, int stopping, int late);
	/* Optional, on the worker thread, as it ends. */
	void (*exit_cb)(void *ctx);
};

/*
 * Start a worker that runs `ops` with `ctx` (both borrowed until
 * worker_free) and queues at most `max_queued` jobs.  With `base` NULL
 * there is no loop: only worker_call works.  `name` (borrowed) prefixes
 * errors and log lines.  NULL with err set on failure.
 */
struct worker *worker_new(struct event_base *base, const char *name,
    const struct worker_ops *ops, void *ctx, size_t max_queued, char *err,
    size_t errlen);

/*
 * Queue `j` (from the loop); its done_cb runs on the loop when it is
 * finished.  -1 when the queue is full, the worker is stopping or there is
 * no loop; `j` stays the caller's then.
 */
int worker_submit(struct worker *w, struct worker_job *j);

/*
 * Queue `j` and wait until it has run (from any thread but the worker).
 * -1 when the queue is full or the worker is stopping.  `j` is the
 * caller's again when it returns.
 */
int worker_call(struct worker *w, struct worker_job *j);

/* Jobs queued and not yet taken by the worker. */
size_t worker_pending(struct worker *w);

/*
 * Stop (from the loop's thread, with the loop no longer running the
 * worker's callbacks): the worker still runs what is queued, with `late`
 * set once `wait_ms` have passed, then ends and is joined.  Finished jobs
 * get their done_cb here.  NULL is fine.
 */
void worker_free(struct worker *w, unsigned wait_ms);

#endif
