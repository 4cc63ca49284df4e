/*
 * imgw connector SDK — normalized events.
 *
 * Every connector turns its protocol into these events and back; the core's
 * router only ever sees events.  Addresses are canonical
 * "user@domain[/resource]" strings (see imgw/address.h).
 *
 * Ownership: an event handed to a hook (deliver) is borrowed for the
 * duration of that call only; copy what you keep.  An event handed to the
 * host (emit) is copied by the core before emit returns; the caller keeps
 * ownership of its own strings.
 */
#ifndef IMGW_EVENT_H
#define IMGW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum imgw_kind {
	IMGW_EV_NONE = 0,
	IMGW_EV_MESSAGE,
	IMGW_EV_PRESENCE,
	IMGW_EV_SUBSCRIBE,
	IMGW_EV_SUBSCRIBED,
	IMGW_EV_UNSUBSCRIBE,
	IMGW_EV_UNSUBSCRIBED,
	IMGW_EV_PROBE,
	IMGW_EV_CHATSTATE,
	IMGW_EV_ERROR,
	IMGW_EV_KIND_MAX
};

/* Availability carried by a presence event. */
enum imgw_show {
	IMGW_SHOW_AVAILABLE = 0,
	IMGW_SHOW_AWAY,
	IMGW_SHOW_CHAT,
	IMGW_SHOW_DND,
	IMGW_SHOW_XA,
	IMGW_SHOW_UNAVAILABLE,
	IMGW_SHOW_MAX
};

/* XEP-0085 chat states. */
enum imgw_chatstate {
	IMGW_CS_ACTIVE = 0,
	IMGW_CS_COMPOSING,
	IMGW_CS_PAUSED,
	IMGW_CS_INACTIVE,
	IMGW_CS_GONE,
	IMGW_CS_MAX
};

/*
 * One normalized event.  Fill `size` with sizeof(struct imgw_event) as your
 * SDK knows it (imgw_event_init does); the core reads only the fields that
 * size covers, so older connectors keep working when the struct grows.
 * Unused string fields are NULL.  All strings are UTF-8 and NUL-terminated.
 */
struct imgw_event {
	uint32_t size;
	enum imgw_kind kind;
	const char *from;	/* canonical address, required */
	const char *to;		/* canonical address, required */
	const char *id;		/* protocol id of the stanza/request, optional */
	const char *thread;	/* message, chat state */
	const char *subject;	/* message */
	const char *body;	/* message */
	const char *content_type; /* message; NULL means text/plain */
	const char *lang;	/* message, presence: language tag of body/note */
	enum imgw_show show;	/* presence */
	const char *status;	/* presence: free text note */
	int priority;		/* presence: -128..127 */
	enum imgw_chatstate state; /* chat state */
	const char *condition;	/* error: RFC 6120 defined condition name */
	const char *text;	/* error: human readable text */
	const char *trace;	/* set by the core on emit; read-only elsewhere */
	/* ABI 1.1 */
	const char *msg_type;	/* message: "chat", "normal" or "headline";
				 * NULL means chat */
	enum imgw_kind answers;	/* error: the kind of the event it answers
				 * (IMGW_EV_NONE: not known) */
};

/* Zero an event and set its size; call before filling it in. */
static inline void
imgw_event_init(struct imgw_event *ev, enum imgw_kind kind)
{
	*ev = (struct imgw_event){ .size = sizeof(*ev), .kind = kind };
}

/*
 * Non-zero when s[0..len) is well-formed UTF-8 (RFC 3629): no overlong
 * forms, no surrogates, nothing above U+10FFFF.  NUL is a character like
 * any other here; event strings are NUL-terminated, so a caller checking
 * one also refuses NUL (memchr).  The core checks every emitted string
 * this way; a connector checks its peer's text before converting it.
 */
static inline int
imgw_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	unsigned char c, lo, hi;
	int n;

	while (p < end) {
		c = *p++;
		if (c < 0x80)
			continue;
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;		/* no overlong */
			else if (c == 0xed)
				hi = 0x9f;		/* no surrogate */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;		/* no overlong */
			else if (c == 0xf4)
				hi = 0x8f;		/* <= U+10FFFF */
		} else {
			return 0;
		}
		if (end - p < n || *p < lo || *p > hi)
			return 0;
		p++;
		while (--n > 0) {
			if (*p < 0x80 || *p > 0xbf)
				return 0;
			p++;
		}
	}
	return 1;
}

/*
 * RFC 6120 section 8.3.3 stanza error conditions used by the core.  Any
 * other RFC 6120 condition name is accepted too.
 */
#define IMGW_ERR_BAD_REQUEST		"bad-request"
#define IMGW_ERR_FORBIDDEN		"forbidden"
#define IMGW_ERR_ITEM_NOT_FOUND		"item-not-found"
#define IMGW_ERR_JID_MALFORMED		"jid-malformed"
#define IMGW_ERR_NOT_ALLOWED		"not-allowed"
#define IMGW_ERR_POLICY_VIOLATION	"policy-violation"
#define IMGW_ERR_RECIPIENT_UNAVAILABLE	"recipient-unavailable"
#define IMGW_ERR_REMOTE_SERVER_NOT_FOUND "remote-server-not-found"
#define IMGW_ERR_REMOTE_SERVER_TIMEOUT	"remote-server-timeout"
#define IMGW_ERR_RESOURCE_CONSTRAINT	"resource-constraint"
#define IMGW_ERR_SERVICE_UNAVAILABLE	"service-unavailable"
#define IMGW_ERR_FEATURE_NOT_IMPLEMENTED "feature-not-implemented"
#define IMGW_ERR_INTERNAL_SERVER_ERROR	"internal-server-error"
#define IMGW_ERR_UNDEFINED_CONDITION	"undefined-condition"


/*
 * Names used on the wire by the core and the jsonl connector.  The
 * *_name functions return a static string ("?" when out of range); the
 * *_parse functions return the value, or -1 for an unknown name.
 */
static const char *const imgw_kind_names_[IMGW_EV_KIND_MAX] = {
	"none", "message", "presence", "subscribe", "subscribed",
	"unsubscribe", "unsubscribed", "probe", "chatstate", "error",
};
static const char *const imgw_show_names_[IMGW_SHOW_MAX] = {
	"available", "away", "chat", "dnd", "xa", "unavailable",
};
static const char *const imgw_chatstate_names_[IMGW_CS_MAX] = {
	"active", "composing", "paused", "inactive", "gone",
};

static inline int
imgw_name_lookup_(const char *const *names, int n, const char *name)
{
	int i, j;

	if (name == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = 0; names[i][j] != '\0' && names[i][j] == name[j]; j++)
			;
		if (names[i][j] == '\0' && name[j] == '\0')
			return i;
	}
	return -1;
}

static inline const char *
imgw_kind_name(enum imgw_kind k)
{
	return (unsigned)k < IMGW_EV_KIND_MAX ? imgw_kind_names_[k] : "?";
}

static inline int
imgw_kind_parse(const char *name)
{
	int k = imgw_name_lookup_(imgw_kind_names_, IMGW_EV_KIND_MAX, name);

	return k > 0 ? k : -1;
}

static inline const char *
imgw_show_name(enum imgw_show s)
{
	return (unsigned)s < IMGW_SHOW_MAX ? imgw_show_names_[s] : "?";
}

static inline int
imgw_show_parse(const char *name)
{
	return imgw_name_lookup_(imgw_show_names_, IMGW_SHOW_MAX, name);
}

static inline const char *
imgw_chatstate_name(enum imgw_chatstate s)
{
	return (unsigned)s < IMGW_CS_MAX ? imgw_chatstate_names_[s] : "?";
}

static inline int
imgw_chatstate_parse(const char *name)
{
	return imgw_name_lookup_(imgw_chatstate_names_, IMGW_CS_MAX, name);
}

#ifdef __cplusplus
}
#endif

#endif /* IMGW_EVENT_H */
