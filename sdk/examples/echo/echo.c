/*
 * echo — an example imgw connector, built out of tree against the SDK.
 *
 * Every user of the community is a bot: a message to it comes back to the
 * sender with the body reversed (by UTF-8 code point) after an optional
 * `prefix`; a subscribe is accepted with subscribed; a probe is answered
 * with an available presence.  Anything else is counted and accepted.
 *
 *     cc $(pkg-config --cflags imgw-sdk) -shared -fPIC -o echo.so echo.c
 *
 * The connector has no I/O of its own, so it is ready as soon as it
 * starts.  It answers by emitting from within deliver, which the core
 * allows: emit validates and copies the event and queues it, it never
 * calls deliver back.
 */
#include <stdlib.h>
#include <string.h>

#include <imgw/imgw.h>

#ifndef ECHO_VERSION
#define ECHO_VERSION	"1.0"
#endif

/* The instance's state; allocated by init, freed by fini. */
struct echo {
	struct imgw_instance *inst;	/* the core's, borrowed until fini */
	const struct imgw_host *host;	/* the core's, borrowed until fini */
	const char *prefix;		/* borrowed from the host until fini */
	size_t prefix_len;
};

static const struct imgw_option echo_options[] = {
	{
		.name = "prefix",
		.type = IMGW_OPT_STRING,
		.def = "",
		.help = "text put before every reversed body",
	},
	{ .name = NULL },
};

/* Bytes in the UTF-8 sequence that starts with c; 1 for a stray byte. */
static size_t
echo_seqlen(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	if (c >= 0xe0)
		return c <= 0xef ? 3 : 1;
	if (c >= 0xc2)
		return 2;
	return 1;
}

/*
 * A new string (the caller frees it): prefix followed by `s` with its code
 * points in reverse order.  A byte that does not start a complete sequence
 * is moved as one unit, so any input gives output of the same length.
 * NULL when out of memory.
 */
static char *
echo_reverse(const char *prefix, size_t prefix_len, const char *s)
{
	size_t len = strlen(s), i = 0, n, k;
	char *out, *end;

	if ((out = malloc(prefix_len + len + 1)) == NULL)
		return NULL;
	memcpy(out, prefix, prefix_len);
	end = out + prefix_len + len;
	*end = '\0';
	while (i < len) {
		n = echo_seqlen((unsigned char)s[i]);
		if (n > len - i)
			n = 1;
		for (k = 1; k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				n = 1;
		end -= n;
		memcpy(end, s + i, n);
		i += n;
	}
	return out;
}

static int
echo_init(struct imgw_instance *inst, const struct imgw_host *host, void **priv_r)
{
	struct echo *e;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		host->log(inst, IMGW_LOG_ERR, NULL, "out of memory");
		return -1;
	}
	e->inst = inst;
	e->host = host;
	e->prefix = host->option(inst, "prefix");
	if (e->prefix == NULL)
		e->prefix = "";
	e->prefix_len = strlen(e->prefix);
	*priv_r = e;
	return 0;
}

static int
echo_start(void *priv)
{
	struct echo *e = priv;

	e->host->ready(e->inst);
	return 0;
}

/*
 * Send `ev` to the router.  The core copies the event and its strings
 * before emit returns, so stack events and our own buffers are fine.
 */
static void
echo_emit(struct echo *e, const struct imgw_event *ev, const char *trace)
{
	char err[128];

	if (e->host->emit(e->inst, ev, err, sizeof(err), NULL) == -1) {
		err[sizeof(err) - 1] = '\0';
		e->host->log(e->inst, IMGW_LOG_WARNING, trace, "answer refused: %s", err);
		e->host->counter_add(e->inst, "answer-refused", 1);
		return;
	}
	e->host->counter_add(e->inst, "answered", 1);
}

/*
 * `ev` and its strings are borrowed for this call only; every answer is
 * built from them and emitted before we return.
 */
static int
echo_deliver(void *priv, const struct imgw_event *ev, const char **condition_r)
{
	struct echo *e = priv;
	struct imgw_event ans;
	char *body;

	switch (ev->kind) {
	case IMGW_EV_MESSAGE:
		if ((body = echo_reverse(e->prefix, e->prefix_len,
		    ev->body != NULL ? ev->body : "")) == NULL) {
			*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
			return IMGW_FAIL;
		}
		imgw_event_init(&ans, IMGW_EV_MESSAGE);
		ans.from = ev->to;
		ans.to = ev->from;
		ans.id = ev->id;
		ans.thread = ev->thread;
		ans.lang = ev->lang;
		ans.body = body;
		echo_emit(e, &ans, ev->trace);
		free(body);	/* the core copied it */
		return IMGW_OK;
	case IMGW_EV_SUBSCRIBE:
		imgw_event_init(&ans, IMGW_EV_SUBSCRIBED);
		ans.from = ev->to;
		ans.to = ev->from;
		echo_emit(e, &ans, ev->trace);
		return IMGW_OK;
	case IMGW_EV_PROBE:
		imgw_event_init(&ans, IMGW_EV_PRESENCE);
		ans.from = ev->to;
		ans.to = ev->from;
		ans.show = IMGW_SHOW_AVAILABLE;
		echo_emit(e, &ans, ev->trace);
		return IMGW_OK;
	default:
		e->host->counter_add(e->inst, "ignored", 1);
		return IMGW_OK;
	}
}

static void
echo_stop(void *priv)
{
	/* nothing buffered, nothing watched */
}

static void
echo_fini(void *priv)
{
	free(priv);
}

static const struct imgw_connector echo_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "echo",
	.version = ECHO_VERSION,
	.description = "answers every message with its text reversed",
	.options = echo_options,
	.init = echo_init,
	.start = echo_start,
	.deliver = echo_deliver,
	.stop = echo_stop,
	.fini = echo_fini,
};

/* The one exported symbol; the descriptor is static, the core never frees
 * it. */
IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &echo_connector;
}
