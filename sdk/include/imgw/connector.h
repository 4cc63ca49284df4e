/*
 * imgw connector SDK — the connector contract.
 *
 * A connector is a shared object that exports exactly one symbol,
 * IMGW_CONNECTOR_ENTRY ("imgw_connector_entry"), a function returning a
 * pointer to a static `struct imgw_connector` descriptor.  imgwd dlopens
 * the object (RTLD_NOW | RTLD_LOCAL), calls the entry, checks magic, ABI
 * major/minor and size, validates the options of every [community] section
 * that names the connector against the descriptor's option table, and then
 * creates one instance per section:
 *
 *     init  -> start -> deliver* -> stop -> fini
 *
 * All hooks and all host functions run on the core's single event loop
 * thread.  A connector never blocks that thread: it does its I/O through
 * the socket watches and timers of the host table.
 */
#ifndef IMGW_CONNECTOR_H
#define IMGW_CONNECTOR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <imgw/event.h>
#include <imgw/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return values of hooks and host functions. */
#define IMGW_OK		0
#define IMGW_FAIL	(-1)
#define IMGW_AGAIN	1	/* back-pressure: see deliver */

/* Opaque handles owned by the core. */
struct imgw_instance;	/* one [community] section */
struct imgw_timer;
struct imgw_watch;

/* Log levels, in syslog order. */
enum imgw_log_level {
	IMGW_LOG_ERR = 3,
	IMGW_LOG_WARNING = 4,
	IMGW_LOG_NOTICE = 5,
	IMGW_LOG_INFO = 6,
	IMGW_LOG_DEBUG = 7,
};

/* Socket watch interest, may be or'ed. */
#define IMGW_WATCH_READ		0x02
#define IMGW_WATCH_WRITE	0x04

/* ---- options ------------------------------------------------------------ */

enum imgw_option_type {
	IMGW_OPT_STRING = 1,	/* any text; a config value is never empty,
				 * a default may be "" */
	IMGW_OPT_INT,		/* decimal integer within [min, max] */
	IMGW_OPT_BOOL,		/* yes/no, true/false, on/off, 1/0 */
	IMGW_OPT_LISTEN,	/* tcp:HOST:PORT or unix:/PATH (imgw/listen.h) */
};

/*
 * One entry of a connector's option table; the table ends with an entry
 * whose name is NULL.  The core rejects, with file and line, unknown keys,
 * values of the wrong type or out of range, and missing required options,
 * before any hook of the connector runs.  Keys the core itself owns
 * (connector, local, domains, queue-size) never reach this table.
 */
struct imgw_option {
	const char *name;
	enum imgw_option_type type;
	const char *def;	/* default as text, NULL: no default */
	long long min, max;	/* IMGW_OPT_INT only; min == max: no bounds */
	int required;		/* non-zero: the section must set it */
	const char *help;	/* one line for documentation and errors */
};

/* ---- subscriptions (ABI 1.1) ------------------------------------------------ */

/*
 * A presence subscription as the store keeps it.  Fill `size` with
 * sizeof(struct imgw_sub) (imgw_sub_init does).  `watcher` and
 * `presentity` are canonical addresses (at most 512 bytes); `state` is
 * "pending", "active" or "terminated"; `expires_ms` is when it ends, in
 * milliseconds since the epoch (UTC), 0 for no end; `data` is the
 * connector's own text (at most 64 KiB, NULL for none), kept as is.
 */
struct imgw_sub {
	uint32_t size;
	const char *watcher;
	const char *presentity;
	const char *state;
	int64_t expires_ms;
	const char *data;
};

static inline void
imgw_sub_init(struct imgw_sub *sub)
{
	*sub = (struct imgw_sub){ .size = sizeof(*sub) };
}

/* ---- the host table -------------------------------------------------------- */

typedef void (*imgw_timer_cb)(void *arg);
typedef void (*imgw_watch_cb)(int fd, int what, void *arg);

/*
 * The core's services for connectors.  The table is owned by the core and
 * lives as long as the instance; `size` is sizeof the table as the core
 * built it: test `offsetof(struct imgw_host, field) < host->size` before
 * calling a field newer than ABI 1.0 (sub_put, sub_del, sub_list: 1.1).  Every `inst` argument is the handle
 * the core passed to init.
 */
struct imgw_host {
	uint32_t size;
	uint16_t abi_major;
	uint16_t abi_minor;

	/* printf-style log line tagged with the community name.  `trace` is the
	 * trace id of the event the line is about, or NULL. */
	void (*log)(struct imgw_instance *inst, enum imgw_log_level level,
	    const char *trace, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

	/* The community's name (section name) and whether it is the local
	 * community.  Borrowed, valid until fini. */
	const char *(*community)(struct imgw_instance *inst);
	int (*is_local)(struct imgw_instance *inst);

	/* Non-zero when `domain` (any case) is one of this community's
	 * domains. */
	int (*owns_domain)(struct imgw_instance *inst, const char *domain);

	/* The validated value of an option, or its default; NULL when unset
	 * and without default.  The string is borrowed, valid until fini. */
	const char *(*option)(struct imgw_instance *inst, const char *name);
	/* Integer and boolean views of validated options (default 0 when
	 * unset without default). */
	long long (*option_int)(struct imgw_instance *inst, const char *name);
	int (*option_bool)(struct imgw_instance *inst, const char *name);

	/* One-shot timer firing after `ms` milliseconds.  Returns a handle the
	 * connector owns until the timer fires (then the core frees it) or
	 * until timer_del (which frees it; never call it on a fired timer).
	 * NULL on failure. */
	struct imgw_timer *(*timer_add)(struct imgw_instance *inst,
	    unsigned int ms, imgw_timer_cb cb, void *arg);
	void (*timer_del)(struct imgw_timer *t);

	/* Persistent watch on `fd` for IMGW_WATCH_READ/WRITE.  The fd stays
	 * the connector's; the watch is the connector's until watch_del, which
	 * it must call before closing fd (also allowed from inside the watch's
	 * own callback).  watch_set changes the interest; 0 pauses the watch
	 * without deleting it. */
	struct imgw_watch *(*watch_add)(struct imgw_instance *inst, int fd,
	    int what, imgw_watch_cb cb, void *arg);
	int (*watch_set)(struct imgw_watch *w, int what);
	void (*watch_del)(struct imgw_watch *w);

	/* Hand an event to the router.  The core validates and copies it
	 * before returning; the caller keeps its strings.  Returns 0 when the
	 * router took it (delivery, or an error event back to the sender,
	 * follows later), -1 when the event is malformed: then a short reason
	 * is written to err_r (if not NULL, at most errlen bytes) as
	 * "CONDITION: reason", CONDITION being the RFC 6120 condition to
	 * answer with, and nothing was routed — answer the peer with the
	 * protocol's own error.
	 * `trace_r`, if not NULL, receives the trace id (at most 40 bytes
	 * including the NUL). */
	int (*emit)(struct imgw_instance *inst, const struct imgw_event *ev,
	    char *err_r, size_t errlen, char *trace_r);

	/* After deliver returned IMGW_AGAIN, call resume when the connector
	 * can take events again; the core retries the same event first, from
	 * the loop later: resume never calls deliver itself. */
	void (*resume)(struct imgw_instance *inst);

	/* Tell the core the instance is connected and can take deliveries
	 * (events queue until then), or that it lost its peer (events queue
	 * again).  A connector that is ready as soon as start returns calls
	 * ready from start. */
	void (*ready)(struct imgw_instance *inst);
	void (*down)(struct imgw_instance *inst, const char *why);

	/* Add `delta` to the instance counter `name` (created at first use;
	 * name copied).  Counters appear in `imgwctl status`. */
	void (*counter_add)(struct imgw_instance *inst, const char *name,
	    int64_t delta);

	/* ---- ABI 1.1: presence subscriptions kept in the store ----------------
	 *
	 * Subscriptions that cross the gateway (who watches whom, in which
	 * state, until when) are kept in the SQL store under the instance's
	 * community, so a restarted gateway or another node sharing the
	 * database knows them.  Test `offsetof(struct imgw_host, sub_put) <
	 * host->size` before use.  All three return IMGW_FAIL when the
	 * gateway runs without a store ([store] dsn = none) or the arguments
	 * are invalid; the database work itself is asynchronous (routing
	 * never waits for it): a put or del that fails later is logged and
	 * counted (store.sub-failed), not reported back. */

	/* Insert or replace the subscription (watcher, presentity) of this
	 * community.  Everything in `sub` is copied before the call returns. */
	int (*sub_put)(struct imgw_instance *inst, const struct imgw_sub *sub);

	/* Forget the subscription (watcher, presentity); strings copied. */
	int (*sub_del)(struct imgw_instance *inst, const char *watcher,
	    const char *presentity);

	/* Read back every stored subscription of this community: later, on
	 * the loop, `cb` is called once per subscription (`sub` and its
	 * strings borrowed for that call), then once with sub NULL — also
	 * when the database could not be read (the failure is logged).
	 * `arg` stays the connector's.  No call comes after the connector's
	 * stop: a pending list is cancelled then, without the final NULL. */
	int (*sub_list)(struct imgw_instance *inst,
	    void (*cb)(void *arg, const struct imgw_sub *sub), void *arg);

	/* ---- ABI 1.2: finishing the work in flight before a stop -----------
	 *
	 * After the core called the descriptor's quiesce, the connector calls
	 * quiesced once nothing it took with deliver is still waiting for its
	 * peer (it may call it from inside quiesce, or from any callback:
	 * the core acts on it later, from the loop).  Test
	 * `offsetof(struct imgw_host, quiesced) < host->size` before use. */
	void (*quiesced)(struct imgw_instance *inst);

	/* As emit, but a refusal the router decides while taking the event
	 * — no community for the recipient's domain, a policy, a destination
	 * queue that is full or stopped, a presence loop, a gateway shutting
	 * down — is returned at once: -1 with "CONDITION: text" in err_r, and
	 * no error event follows for it.  For protocols that answer each
	 * request (SIP): the peer gets the refusal in its answer instead of
	 * an accepted request and a lost error.  Refusals found later (by the
	 * destination's connector) still come as error events.  The trace id
	 * is written in either case. */
	int (*emit_now)(struct imgw_instance *inst, const struct imgw_event *ev,
	    char *err_r, size_t errlen, char *trace_r);
};

/* ---- the descriptor -------------------------------------------------------- */

/*
 * The descriptor returned by the entry symbol.  Static storage in the
 * connector; the core reads it while the object is loaded.  The first four
 * fields protect the rest: fill them with IMGW_CONNECTOR_MAGIC,
 * IMGW_ABI_MAJOR, IMGW_ABI_MINOR and sizeof(struct imgw_connector)
 * (IMGW_CONNECTOR_HEAD does).
 */
struct imgw_connector {
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;

	const char *name;	/* short name, e.g. "jsonl" */
	const char *version;	/* connector's own version text */
	const char *description;	/* one line */
	const struct imgw_option *options;	/* NULL-name terminated, or NULL */

	/*
	 * Parse options, allocate the instance's private state; no I/O.
	 * `host` and `inst` are borrowed until fini returns.  Store your
	 * state in *priv_r; the core passes it back to every other hook.
	 * Return 0, or -1 after logging why (the instance is then not
	 * started and fini is not called).
	 */
	int (*init)(struct imgw_instance *inst, const struct imgw_host *host,
	    void **priv_r);

	/*
	 * Connect or listen.  Return 0 (call host->ready when deliveries may
	 * start, possibly later), or -1 after logging why: the core then calls
	 * stop and fini, keeps the community down (its events wait in the
	 * queue) and tries init + start again with back-off.
	 */
	int (*start)(void *priv);

	/*
	 * Deliver one event to the peer.  `ev` is borrowed for this call.
	 * Return:
	 *   IMGW_OK     taken: from now on the connector answers for it (an
	 *               asynchronous failure is reported by emitting an
	 *               IMGW_EV_ERROR event back to ev->from);
	 *   IMGW_AGAIN  not now (back-pressure): the core keeps the event at
	 *               the head of the queue until host->resume;
	 *   IMGW_FAIL   refused for good: the core sends an error event with
	 *               condition `*condition_r` (a static string the
	 *               connector sets, default service-unavailable) back to
	 *               the sender.
	 * Never called re-entrantly from within emit.
	 */
	int (*deliver)(void *priv, const struct imgw_event *ev,
	    const char **condition_r);

	/*
	 * Stop taking new work from the peer, flush what is buffered, close
	 * connections and listeners, delete timers and watches.  Called
	 * before fini on shutdown, reload and unload; no deliver follows.
	 */
	void (*stop)(void *priv);

	/* Free the private state.  No host call is valid afterwards. */
	void (*fini)(void *priv);

	/* ---- ABI 1.2 (optional: NULL, or a descriptor from before 1.2) -----
	 *
	 * Let the work already taken finish before stop.  On a reload that
	 * restarts or removes the community, and on shutdown, the core stops
	 * delivering and calls quiesce; the connector keeps its peers, takes
	 * their answers (turning failures into error events as usual), may
	 * still emit what peers send, and calls host->quiesced when nothing
	 * it took is in flight.  stop follows then, or after the core's own
	 * bound (10 s) if quiesced never comes.  No deliver follows quiesce.
	 * Without this hook stop follows at once, and what is in flight is
	 * the connector's to answer from stop. */
	void (*quiesce)(void *priv);
};

#define IMGW_CONNECTOR_HEAD						\
	.magic = IMGW_CONNECTOR_MAGIC,					\
	.abi_major = IMGW_ABI_MAJOR,					\
	.abi_minor = IMGW_ABI_MINOR,					\
	.size = sizeof(struct imgw_connector)

/* The one symbol a connector exports. */
#define IMGW_CONNECTOR_ENTRY		imgw_connector_entry
#define IMGW_CONNECTOR_ENTRY_NAME	"imgw_connector_entry"

#if defined(__GNUC__)
#define IMGW_EXPORT	__attribute__((visibility("default")))
#else
#define IMGW_EXPORT
#endif

typedef const struct imgw_connector *(*imgw_connector_entry_fn)(void);

/*
 * Declare the entry in your connector, e.g.
 *     IMGW_EXPORT const struct imgw_connector *
 *     imgw_connector_entry(void) { return &my_connector; }
 */
IMGW_EXPORT const struct imgw_connector *IMGW_CONNECTOR_ENTRY(void);

#ifdef __cplusplus
}
#endif

#endif /* IMGW_CONNECTOR_H */
