/*
 * A worker thread with a job queue and a pipe back to the loop
 * (worker.h).  Everything the loop and the worker both touch (the two
 * queues, the stop flag) is under `mu`.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"
#include "worker.h"

struct worker {
	const struct worker_ops *ops;
	void *ctx;
	char *name;
	size_t max_queued;
	pthread_t thr;
	int thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* wakes the worker */
	pthread_cond_t call_cv;		/* wakes worker_call */
	struct worker_job *jq_head, *jq_tail;	/* to run */
	size_t jq_len;
	struct worker_job *dq_head, *dq_tail;	/* finished, for the loop */
	int pipe_fd[2];
	struct event *pipe_ev;
	int stopping;
	uint64_t stop_deadline;
};

/* ---- the worker thread ---------------------------------------------------------- */

static void
worker_wake_loop(struct worker *w)
{
	char c = 1;
	ssize_t n;

	do
		n = write(w->pipe_fd[1], &c, 1);
	while (n < 0 && errno == EINTR);
	/* EAGAIN: the pipe is full, the loop will wake anyway */
	if (n < 0 && errno != EAGAIN)
		log_msg(IMGW_LOG_ERR, w->name, NULL, "cannot wake the loop: %s",
		    strerror(errno));
}

/* Hand a finished job back (mu held). */
static void
worker_finish(struct worker *w, struct worker_job *j)
{
	if (j->sync) {
		j->finished = 1;
		pthread_cond_broadcast(&w->call_cv);
		return;
	}
	j->next = NULL;
	if (w->dq_tail != NULL) {
		w->dq_tail->next = j;
	} else {
		w->dq_head = j;
		worker_wake_loop(w);
	}
	w->dq_tail = j;
}

/* Wait on cv for a job, at most `ms` (mu held). */
static void
worker_timedwait(struct worker *w, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_job *j;
	int late, wait_ms, pending, stopping;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->stopping && w->jq_head == NULL)
			break;
		late = w->stopping && util_now_ms() >= w->stop_deadline;
		wait_ms = -1;
		if (w->ops->idle_cb != NULL) {
			pending = w->jq_head != NULL;
			stopping = w->stopping;
			pthread_mutex_unlock(&w->mu);
			wait_ms = w->ops->idle_cb(w->ctx, pending, stopping, late);
			pthread_mutex_lock(&w->mu);
			/* a stop asked meanwhile is not signalled again */
			if (wait_ms == 0 || w->stopping != stopping)
				continue;
		}
		if ((j = w->jq_head) == NULL) {
			if (wait_ms < 0)
				pthread_cond_wait(&w->cv, &w->mu);
			else
				worker_timedwait(w, (unsigned)wait_ms);
			continue;
		}
		w->jq_head = j->next;
		if (w->jq_head == NULL)
			w->jq_tail = NULL;
		w->jq_len--;
		pthread_mutex_unlock(&w->mu);
		w->ops->run_cb(w->ctx, j, late);
		pthread_mutex_lock(&w->mu);
		worker_finish(w, j);
	}
	pthread_mutex_unlock(&w->mu);
	if (w->ops->exit_cb != NULL)
		w->ops->exit_cb(w->ctx);
	return NULL;
}

/* ---- the loop side -------------------------------------------------------------- */

/* Run the done callbacks of the jobs from `j` on. */
static void
worker_run_done(struct worker *w, struct worker_job *j)
{
	struct worker_job *next;

	for (; j != NULL; j = next) {
		next = j->next;
		w->ops->done_cb(w->ctx, j);
	}
}

static void
worker_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_job *j;
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->mu);
	j = w->dq_head;
	w->dq_head = w->dq_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	worker_run_done(w, j);
}

static void
worker_destroy(struct worker *w)
{
	if (w->pipe_ev != NULL)
		event_free(w->pipe_ev);
	if (w->pipe_fd[0] >= 0) {
		close(w->pipe_fd[0]);
		close(w->pipe_fd[1]);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->call_cv);
	free(w->name);
	free(w);
}

struct worker *
worker_new(struct event_base *base, const char *name,
    const struct worker_ops *ops, void *ctx, size_t max_queued, char *err,
    size_t errlen)
{
	struct worker *w;
	int rc;

	w = xcalloc(1, sizeof(*w));
	w->ops = ops;
	w->ctx = ctx;
	w->name = xstrdup(name);
	w->max_queued = max_queued;
	w->pipe_fd[0] = w->pipe_fd[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->call_cv, NULL);
	if (base != NULL) {
		if (pipe2(w->pipe_fd, O_CLOEXEC | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "%s: pipe: %s", name,
			    strerror(errno));
			goto fail;
		}
		w->pipe_ev = event_new(base, w->pipe_fd[0], EV_READ | EV_PERSIST,
		    worker_pipe_cb, w);
		if (w->pipe_ev == NULL || event_add(w->pipe_ev, NULL) < 0) {
			snprintf(err, errlen, "%s: cannot watch the pipe", name);
			goto fail;
		}
	}
	if ((rc = pthread_create(&w->thr, NULL, worker_main, w)) != 0) {
		snprintf(err, errlen, "%s: cannot start the worker thread: %s",
		    name, strerror(rc));
		goto fail;
	}
	w->thr_started = 1;
	return w;
fail:
	worker_destroy(w);
	return NULL;
}

static int
worker_enqueue(struct worker *w, struct worker_job *j)
{
	pthread_mutex_lock(&w->mu);
	if (w->jq_len >= w->max_queued || w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	j->next = NULL;
	if (w->jq_tail != NULL)
		w->jq_tail->next = j;
	else
		w->jq_head = j;
	w->jq_tail = j;
	w->jq_len++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

int
worker_submit(struct worker *w, struct worker_job *j)
{
	if (w == NULL || w->pipe_ev == NULL)
		return -1;
	j->sync = 0;
	j->finished = 0;
	return worker_enqueue(w, j);
}

int
worker_call(struct worker *w, struct worker_job *j)
{
	if (w == NULL)
		return -1;
	j->sync = 1;
	j->finished = 0;
	if (worker_enqueue(w, j) < 0)
		return -1;
	pthread_mutex_lock(&w->mu);
	while (!j->finished)
		pthread_cond_wait(&w->call_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

size_t
worker_pending(struct worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->jq_len;
	pthread_mutex_unlock(&w->mu);
	return n;
}

void
worker_free(struct worker *w, unsigned wait_ms)
{
	struct worker_job *j;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	w->stop_deadline = util_now_ms() + wait_ms;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->thr_started)
		pthread_join(w->thr, NULL);
	/* what finished since the loop last looked: done on this thread */
	j = w->dq_head;
	w->dq_head = w->dq_tail = NULL;
	worker_run_done(w, j);
	worker_destroy(w);
}
