/*
 * jsonl connector: a community whose members are programs speaking
 * newline-delimited JSON over TCP or a UNIX socket.  See README for the
 * protocol; jsonl.h for how the files divide the work.
 */
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "jsonl.h"

#ifndef JSONL_VERSION
#define JSONL_VERSION	IMGW_VERSION
#endif

static const struct imgw_option jsonl_options[] = {
	{
		.name = "listen",
		.type = IMGW_OPT_LISTEN,
		.required = 1,
		.help = "where clients connect: tcp:HOST:PORT, tcp:[IPV6]:PORT or unix:/PATH",
	},
	{
		.name = "max-line",
		.type = IMGW_OPT_INT,
		.def = "65536",
		.min = 256,
		.max = 16777216,
		.help = "longest line a client may send, in bytes",
	},
	{
		.name = "max-output",
		.type = IMGW_OPT_INT,
		.def = "4194304",
		.min = 4096,
		.max = 1073741824,
		.help = "bytes queued to one client before delivery waits",
	},
	{
		.name = "max-connections",
		.type = IMGW_OPT_INT,
		.def = "1024",
		.min = 1,
		.max = 1000000,
		.help = "clients connected at once; more are refused",
	},
	{ .name = NULL },
};

/* An integer option, checked again: the connector must not trust the core
 * more than it needs to. */
static int
jsonl_opt_size(struct jsonl *jl, const char *name, long long min, long long max,
    size_t *val_r)
{
	long long v = jl->host->option_int(jl->inst, name);

	if (v < min || v > max) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "%s = %lld: want %lld..%lld", name, v, min, max);
		return -1;
	}
	*val_r = (size_t)v;
	return 0;
}

static int
jsonl_init(struct imgw_instance *inst, const struct imgw_host *host, void **priv_r)
{
	const struct imgw_option *o;
	struct jsonl *jl;

	if ((jl = calloc(1, sizeof(*jl))) == NULL) {
		host->log(inst, IMGW_LOG_ERR, NULL, "out of memory");
		return -1;
	}
	jl->inst = inst;
	jl->host = host;
	jl->lfd = -1;
	for (o = jsonl_options; o->name != NULL; o++) {
		size_t *dst = NULL;

		if (strcmp(o->name, "max-line") == 0)
			dst = &jl->max_line;
		else if (strcmp(o->name, "max-output") == 0)
			dst = &jl->max_output;
		else if (strcmp(o->name, "max-connections") == 0)
			dst = &jl->max_conns;
		if (dst != NULL && jsonl_opt_size(jl, o->name, o->min, o->max, dst) == -1)
			goto fail;
	}
	jl->listen = host->option(inst, "listen");
	if (jl->listen == NULL) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "listen is not set");
		goto fail;
	}
	if (jsonl_listen_parse(jl, jl->listen) == -1)
		goto fail;
	if ((jl->tok = json_tokener_new_ex(JSONL_JSON_DEPTH)) == NULL) {
		JSONL_LOG(jl, IMGW_LOG_ERR, "out of memory");
		goto fail;
	}
	json_tokener_set_flags(jl->tok, JSON_TOKENER_STRICT);
	*priv_r = jl;
	return 0;

fail:
	free(jl->unix_path);
	free(jl);
	return -1;
}

static int
jsonl_start(void *priv)
{
	struct jsonl *jl = priv;

	jl->stopping = 0;
	if (jsonl_listen_open(jl) == -1)
		return -1;
	jl->host->ready(jl->inst);
	return 0;
}

/* Kinds whose loss the sender must hear about. */
static int
jsonl_kind_needs_recipient(enum imgw_kind kind)
{
	switch (kind) {
	case IMGW_EV_MESSAGE:
	case IMGW_EV_SUBSCRIBE:
	case IMGW_EV_SUBSCRIBED:
	case IMGW_EV_UNSUBSCRIBE:
	case IMGW_EV_UNSUBSCRIBED:
		return 1;
	default:
		return 0;
	}
}

/* Whether any connection of b may take deliveries. */
static int
jsonl_bind_usable(const struct jsonl_bind *b)
{
	size_t i;

	for (i = 0; b != NULL && i < b->nconns; i++)
		if (jsonl_conn_usable(b->conns[i]))
			return 1;
	return 0;
}

/*
 * One event to the connections that bound its bare `to`, else to those
 * that bound "*".  `ev` is only read during the call.  Nothing is written
 * before we know every target has room, so AGAIN never duplicates a line.
 */
static int
jsonl_deliver(void *priv, const struct imgw_event *ev, const char **condition_r)
{
	struct jsonl *jl = priv;
	struct jsonl_bind *b;
	struct json_object *obj;
	const char *line;
	size_t len, i;
	int over = 0;

	if (ev->to == NULL) {
		*condition_r = IMGW_ERR_BAD_REQUEST;
		return IMGW_FAIL;
	}
	b = jsonl_bind_find(jl, ev->to);
	if (!jsonl_bind_usable(b))
		b = jsonl_bind_find(jl, "*");
	if (!jsonl_bind_usable(b)) {
		if (jsonl_kind_needs_recipient(ev->kind)) {
			*condition_r = IMGW_ERR_RECIPIENT_UNAVAILABLE;
			return IMGW_FAIL;
		}
		jl->host->counter_add(jl->inst, "dropped-no-recipient", 1);
		return IMGW_OK;
	}
	for (i = 0; i < b->nconns; i++) {
		if (jsonl_conn_usable(b->conns[i]) &&
		    jsonl_conn_pending(b->conns[i]) > jl->max_output) {
			b->conns[i]->blocked = 1;
			over = 1;
		}
	}
	if (over) {
		jl->again = 1;
		return IMGW_AGAIN;
	}
	if ((obj = jsonl_codec_format(ev)) == NULL ||
	    (line = jsonl_codec_text(obj, &len)) == NULL) {
		json_object_put(obj);
		*condition_r = IMGW_ERR_RESOURCE_CONSTRAINT;
		return IMGW_FAIL;
	}
	/* sending only marks a connection dead on failure, never frees it,
	 * so b stays valid through the loop */
	for (i = 0; i < b->nconns; i++)
		if (jsonl_conn_usable(b->conns[i]))
			(void)jsonl_conn_send(b->conns[i], line, len);
	json_object_put(obj);
	return IMGW_OK;
}

static void
jsonl_stop(void *priv)
{
	struct jsonl *jl = priv;

	jl->stopping = 1;
	jl->again = 0;
	jsonl_listen_close(jl);
	while (jl->conns != NULL) {
		jsonl_conn_flush(jl->conns);
		jsonl_conn_close(jl->conns, "connector stopping");
	}
}

static void
jsonl_fini(void *priv)
{
	struct jsonl *jl = priv;

	/* normally stop did this; fini must not leak if it did not */
	if (jl->conns != NULL || jl->lfd != -1 || jl->ltimer != NULL)
		jsonl_stop(jl);
	jsonl_bind_free(jl);
	if (jl->tok != NULL)
		json_tokener_free(jl->tok);
	free(jl->unix_path);
	free(jl);
}

static const struct imgw_connector jsonl_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "jsonl",
	.version = JSONL_VERSION,
	.description = "newline-delimited JSON over TCP or UNIX sockets, for bots and scripts",
	.options = jsonl_options,
	.init = jsonl_init,
	.start = jsonl_start,
	.deliver = jsonl_deliver,
	.stop = jsonl_stop,
	.fini = jsonl_fini,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &jsonl_connector;
}
