/*
 * A community instance: one [community] section bound to a connector,
 * with its bounded queue, its state and the timers and watches the
 * connector holds.  The instance object outlives connector restarts: on a
 * reload that changes the section, the connector is stopped, finalized and
 * initialized afresh while the queue stays.
 */
#ifndef IMGW_CORE_INST_H
#define IMGW_CORE_INST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <imgw/connector.h>

#include "counters.h"

struct event_base;
struct event;
struct ev;
struct router;
struct module;
struct conf_community;

enum inst_state {
	INST_NEW = 0,	/* not started */
	INST_STARTING,	/* started, waiting for host->ready */
	INST_READY,	/* taking deliveries */
	INST_QUIESCING,	/* no deliveries; the work in flight finishes */
	INST_DOWN,	/* start failed or peer lost; events queue */
	INST_STOPPED,	/* stopped and finalized */
};

struct evq {
	struct ev *head, *tail;
	size_t len, max;
};

struct imgw_timer {
	LIST_ENTRY(imgw_timer) link;
	struct event *ev;
	struct imgw_instance *inst;
	imgw_timer_cb cb;
	void *arg;
};

struct imgw_watch {
	LIST_ENTRY(imgw_watch) link;
	struct event *ev;
	struct imgw_instance *inst;
	int fd, what;
	imgw_watch_cb cb;
	void *arg;
};

/* The instance; connectors see it as an opaque struct imgw_instance. */
struct imgw_instance {
	TAILQ_ENTRY(imgw_instance) link;
	struct router *router;
	struct event_base *base;
	char *name;
	struct conf_community *cc;	/* the instance's own copy */
	struct module *mod;			/* NULL for built-in connectors */
	const struct imgw_connector *desc;
	void *priv;
	int has_priv;
	enum inst_state state;
	int blocked;		/* deliver said IMGW_AGAIN */
	int resumed;		/* resume called during deliver */
	int removing;		/* drain, then unload */
	int failed;		/* connector could not be loaded */
	uint64_t removing_ms;
	int delivering;
	char *down_reason;
	struct evq q;
	struct event *dispatch;
	struct event *retry;
	unsigned retry_ms;
	uint64_t started_ms;
	struct counters ctr;
	uint64_t n_received;	/* events emitted by the connector */
	uint64_t n_delivered;	/* events the connector took */
	uint64_t n_refused;	/* deliver said IMGW_FAIL */
	LIST_HEAD(, imgw_timer) timers;
	LIST_HEAD(, imgw_watch) watches;
	void (*drained_cb)(struct imgw_instance *inst, void *arg);
	void *drained_arg;
	/* quiesce (ABI 1.2): done_cb runs once, from the loop */
	struct event *quiesce_ev;
	uint64_t quiesce_deadline_ms;
	void (*quiesce_cb)(struct imgw_instance *inst, void *arg);
	void *quiesce_arg;
	int in_quiesce;		/* inside desc->quiesce */
	int quiesce_done;	/* host->quiesced called */
	/* a restart waiting for the quiesce: the next connector and the
	 * section the running one was started with (kept alive for it) */
	struct module *next_mod;
	const struct imgw_connector *next_desc;
	struct conf_community *prev_cc;
};

/*
 * New instance (not started) for section `cc` (copied) served by `desc`;
 * `mod` (may be NULL) is referenced, not owned: the caller keeps a
 * reference for the instance's lifetime.
 */
struct imgw_instance *inst_new(struct router *r, struct event_base *base,
    const struct conf_community *cc, const struct imgw_connector *desc,
    struct module *mod, size_t queue_max);

/* init + start the connector.  Returns 0, or -1: the instance is DOWN; a
 * failed start is retried with back-off, a failed init (a configuration
 * the connector refuses) is not. */
int inst_start(struct imgw_instance *inst);

/*
 * Stop delivering and let the connector finish what it took (ABI 1.2
 * quiesce), for at most `max_ms`.  Returns 1 when `cb` will run once, from
 * the loop, when the connector is done or the time is up; 0 when there
 * is nothing to wait for (the connector has no quiesce hook or is not
 * running): `cb` is not called, stop at once.
 */
int inst_quiesce(struct imgw_instance *inst, unsigned max_ms,
    void (*cb)(struct imgw_instance *inst, void *arg), void *arg);

/* Run the callback of a quiesce whose time is up (from a periodic sweep). */
void inst_quiesce_expire(struct imgw_instance *inst, uint64_t now);

/* stop + fini the connector, drop its timers and watches; the queue stays. */
void inst_stop(struct imgw_instance *inst);

/* Stop, then answer every queued event with `condition`, then free. */
void inst_free(struct imgw_instance *inst, const char *condition);

/* Answer every queued event with `condition` and `text`, emptying the
 * queue. */
void inst_answer_all(struct imgw_instance *inst, const char *condition,
    const char *text);

/* Append to the queue; -1 when full (nothing changed). Schedules delivery. */
int inst_enqueue(struct imgw_instance *inst, struct ev *ev);

/* Schedule delivery of the queue if the instance can take it. */
void inst_kick(struct imgw_instance *inst);

/* Answer queued events older than `max_age_ms` with remote-server-timeout. */
void inst_expire(struct imgw_instance *inst, uint64_t now, uint64_t max_age_ms);

const char *inst_state_name(const struct imgw_instance *inst);

/* The host table handed to connectors. */
extern const struct imgw_host inst_host;

#endif
