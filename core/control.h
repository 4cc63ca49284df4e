/*
 * The control socket: a UNIX stream socket with owner-only permissions.
 * A client writes one command line ("status", "status --json", "reload",
 * "stop"); the core answers with a first line "ok" or "error", then the
 * answer's text, and closes the connection.
 */
#ifndef IMGW_CORE_CONTROL_H
#define IMGW_CORE_CONTROL_H

struct event_base;
struct evbuffer;
struct control;

/* What the control socket asks of the gateway.  Each writes its answer to
 * `out` and returns 0 (answered "ok") or -1 (answered "error"). */
struct control_ops {
	int (*status)(void *arg, int json, struct evbuffer *out);
	int (*reload)(void *arg, struct evbuffer *out);
	int (*stop)(void *arg, struct evbuffer *out);
	/* Any other command line (e.g. "policy test A B message"), or NULL;
	 * returns 0, -1, or CONTROL_UNKNOWN when it does not know the line. */
	int (*other)(void *arg, const char *line, struct evbuffer *out);
};

#define CONTROL_UNKNOWN	(-2)

/*
 * Listen on `path` (created with mode 0600; a stale socket left by a dead
 * imgwd is replaced, a live one is an error).  `ops` and `arg` are borrowed
 * until control_close.  Returns NULL after logging why.
 */
struct control *control_open(struct event_base *base, const char *path,
    const struct control_ops *ops, void *arg);

/* Stop listening, drop clients, unlink the socket, free.  NULL is fine. */
void control_close(struct control *c);

#endif
