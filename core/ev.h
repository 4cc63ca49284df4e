/*
 * The core's own copy of an event: one allocation holding the public
 * struct and all its strings, plus the links the queues need.
 */
#ifndef IMGW_CORE_EV_H
#define IMGW_CORE_EV_H

#include <stdint.h>

#include <imgw/event.h>

#define EV_TRACE_MAX	40
#define EV_BODY_MAX	(1024 * 1024)	/* body bytes */
#define EV_FIELD_MAX	(64 * 1024)	/* any other string field */

struct ev {
	struct ev *next;		/* queue link */
	uint64_t queued_ms;		/* when it entered a queue */
	struct imgw_event e;		/* strings point into data[] */
	char trace[EV_TRACE_MAX];
	char data[];
};

/*
 * Validate `in` (as far as in->size covers it), canonicalize from/to and
 * copy everything into a new ev.  NULL with a static reason in *why_r and
 * the RFC 6120 condition to answer with in *cond_r.
 */
struct ev *ev_copy(const struct imgw_event *in, const char **why_r,
    const char **cond_r);

/*
 * An error event answering `orig`: from orig's to, to orig's from, the
 * same id and trace.  `text` may be NULL.
 */
struct ev *ev_error_for(const struct ev *orig, const char *condition,
    const char *text);

/* Copy of an already valid ev (for a second destination). */
struct ev *ev_dup(const struct ev *ev);

void ev_free(struct ev *ev);

#endif
