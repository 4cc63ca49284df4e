/* Copies, checks and answers of events. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "ev.h"
#include "util.h"

/* String fields of struct imgw_event, in one table so that copying and
 * checking treat them alike. */
static const size_t ev_string_fields[] = {
	offsetof(struct imgw_event, from),
	offsetof(struct imgw_event, to),
	offsetof(struct imgw_event, id),
	offsetof(struct imgw_event, thread),
	offsetof(struct imgw_event, subject),
	offsetof(struct imgw_event, body),
	offsetof(struct imgw_event, content_type),
	offsetof(struct imgw_event, lang),
	offsetof(struct imgw_event, status),
	offsetof(struct imgw_event, condition),
	offsetof(struct imgw_event, text),
	offsetof(struct imgw_event, msg_type),
};
#define EV_NFIELDS	(sizeof(ev_string_fields) / sizeof(ev_string_fields[0]))

#define EV_FIELD(e, off)	(*(const char **)((char *)(e) + (off)))

/* Build an ev from a trusted, complete struct whose from/to are already
 * canonical (or given in canon[]). */
static struct ev *
ev_build(const struct imgw_event *src, const char *canon_from,
    const char *canon_to, const char *trace)
{
	size_t lens[EV_NFIELDS], total = 0, i;
	const char *vals[EV_NFIELDS];
	struct ev *ev;
	char *p;

	for (i = 0; i < EV_NFIELDS; i++) {
		vals[i] = EV_FIELD(src, ev_string_fields[i]);
		if (i == 0)
			vals[i] = canon_from;
		else if (i == 1)
			vals[i] = canon_to;
		lens[i] = vals[i] ? strlen(vals[i]) + 1 : 0;
		total += lens[i];
	}
	ev = xmalloc(sizeof(*ev) + total);
	ev->next = NULL;
	ev->queued_ms = 0;
	ev->e = *src;
	ev->e.size = sizeof(ev->e);
	ev->e.trace = ev->trace;
	ev->trace[0] = '\0';
	if (trace != NULL) {
		strncpy(ev->trace, trace, sizeof(ev->trace) - 1);
		ev->trace[sizeof(ev->trace) - 1] = '\0';
	}
	p = ev->data;
	for (i = 0; i < EV_NFIELDS; i++) {
		if (vals[i] == NULL) {
			EV_FIELD(&ev->e, ev_string_fields[i]) = NULL;
			continue;
		}
		memcpy(p, vals[i], lens[i]);
		EV_FIELD(&ev->e, ev_string_fields[i]) = p;
		p += lens[i];
	}
	return ev;
}

struct ev *
ev_copy(const struct imgw_event *in, const char **why_r, const char **cond_r)
{
	char from[3 * ADDR_PART_MAX + 8], to[3 * ADDR_PART_MAX + 8];
	struct imgw_event e;
	size_t n, i;
	const char *s, *why;

	*cond_r = IMGW_ERR_BAD_REQUEST;
	if (in == NULL || in->size < offsetof(struct imgw_event, text) +
	    sizeof(in->text)) {
		*why_r = "event struct too short";
		return NULL;
	}
	memset(&e, 0, sizeof(e));
	memcpy(&e, in, in->size < sizeof(e) ? in->size : sizeof(e));
	e.trace = NULL;
	if (e.kind != IMGW_EV_MESSAGE)
		e.msg_type = NULL;
	if (e.kind != IMGW_EV_ERROR)
		e.answers = IMGW_EV_NONE;
	if (e.kind <= IMGW_EV_NONE || e.kind >= IMGW_EV_KIND_MAX) {
		*why_r = "unknown event kind";
		return NULL;
	}
	if (e.from == NULL || e.to == NULL) {
		*why_r = e.from == NULL ? "missing from" : "missing to";
		return NULL;
	}
	for (i = 0; i < EV_NFIELDS; i++) {
		if ((s = EV_FIELD(&e, ev_string_fields[i])) == NULL)
			continue;
		n = strlen(s);
		if (n > (ev_string_fields[i] == offsetof(struct imgw_event,
		    body) ? EV_BODY_MAX : EV_FIELD_MAX)) {
			*why_r = "field too long";
			*cond_r = IMGW_ERR_POLICY_VIOLATION;
			return NULL;
		}
		if (!addr_utf8_valid(s, n)) {
			*why_r = "field is not valid UTF-8";
			return NULL;
		}
	}
	switch (e.kind) {
	case IMGW_EV_MESSAGE:
		if (e.body == NULL && e.subject == NULL) {
			*why_r = "message without body";
			return NULL;
		}
		if (e.msg_type != NULL && strcmp(e.msg_type, "chat") != 0 &&
		    strcmp(e.msg_type, "normal") != 0 &&
		    strcmp(e.msg_type, "headline") != 0) {
			*why_r = "message type is not chat, normal or headline";
			return NULL;
		}
		break;
	case IMGW_EV_PRESENCE:
		if ((unsigned)e.show >= IMGW_SHOW_MAX) {
			*why_r = "unknown presence show value";
			return NULL;
		}
		if (e.priority < -128 || e.priority > 127) {
			*why_r = "presence priority out of -128..127";
			return NULL;
		}
		break;
	case IMGW_EV_CHATSTATE:
		if ((unsigned)e.state >= IMGW_CS_MAX) {
			*why_r = "unknown chat state";
			return NULL;
		}
		break;
	case IMGW_EV_ERROR:
		if (e.condition == NULL || *e.condition == '\0') {
			*why_r = "error without condition";
			return NULL;
		}
		if ((unsigned)e.answers >= IMGW_EV_KIND_MAX) {
			*why_r = "error answers an unknown kind";
			return NULL;
		}
		break;
	default:
		break;
	}
	*cond_r = IMGW_ERR_JID_MALFORMED;
	if (addr_canon(e.from, from, sizeof(from), &why) < 0 ||
	    addr_canon(e.to, to, sizeof(to), &why) < 0) {
		*why_r = why;
		return NULL;
	}
	return ev_build(&e, from, to, NULL);
}

struct ev *
ev_error_for(const struct ev *orig, const char *condition, const char *text)
{
	struct imgw_event e;

	imgw_event_init(&e, IMGW_EV_ERROR);
	e.answers = orig->e.kind;
	e.id = orig->e.id;
	e.thread = orig->e.thread;
	e.condition = condition;
	e.text = text;
	return ev_build(&e, orig->e.to, orig->e.from, orig->trace);
}

struct ev *
ev_dup(const struct ev *ev)
{
	return ev_build(&ev->e, ev->e.from, ev->e.to, ev->trace);
}

void
ev_free(struct ev *ev)
{
	free(ev);
}
