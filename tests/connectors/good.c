/*
 * A minimal working connector for the tests.  It is ready as soon as it
 * starts, takes every event and counts it (instance counters "got.KIND"
 * and "got.error.CONDITION").  With the options hello-from and hello-to
 * it emits one message "hello" from hello-from to each address of
 * hello-to (separated by spaces) just after start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imgw/imgw.h>

struct good {
	struct imgw_instance *inst;
	const struct imgw_host *host;
	struct imgw_timer *hello;
};

static const struct imgw_option good_options[] = {
	{ .name = "hello-from", .type = IMGW_OPT_STRING,
	  .help = "address the start-up message comes from" },
	{ .name = "hello-to", .type = IMGW_OPT_STRING,
	  .help = "addresses the start-up message goes to" },
	{ .name = NULL },
};

static int
good_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	struct good *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return -1;
	g->inst = inst;
	g->host = host;
	*priv_r = g;
	return 0;
}

static void
good_hello_cb(void *arg)
{
	struct good *g = arg;
	const char *from = g->host->option(g->inst, "hello-from");
	const char *to = g->host->option(g->inst, "hello-to");
	char *copy, *tok, *save = NULL, err[256];
	struct imgw_event ev;

	g->hello = NULL;
	if (from == NULL || to == NULL || (copy = strdup(to)) == NULL)
		return;
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		imgw_event_init(&ev, IMGW_EV_MESSAGE);
		ev.from = from;
		ev.to = tok;
		ev.id = "hello";
		ev.body = "hello";
		if (g->host->emit(g->inst, &ev, err, sizeof(err), NULL) < 0)
			g->host->log(g->inst, IMGW_LOG_ERR, NULL, "emit: %s", err);
		else
			g->host->counter_add(g->inst, "sent", 1);
	}
	free(copy);
}

static int
good_start(void *priv)
{
	struct good *g = priv;

	g->host->ready(g->inst);
	if (g->host->option(g->inst, "hello-to") != NULL)
		g->hello = g->host->timer_add(g->inst, 0, good_hello_cb, g);
	return 0;
}

static int
good_deliver(void *priv, const struct imgw_event *ev, const char **cond_r)
{
	struct good *g = priv;
	char name[128];

	snprintf(name, sizeof(name), "got.%s", imgw_kind_name(ev->kind));
	g->host->counter_add(g->inst, name, 1);
	if (ev->kind == IMGW_EV_ERROR && ev->condition != NULL) {
		snprintf(name, sizeof(name), "got.error.%s", ev->condition);
		g->host->counter_add(g->inst, name, 1);
	}
	return IMGW_OK;
}

static void
good_stop(void *priv)
{
	struct good *g = priv;

	if (g->hello != NULL)
		g->host->timer_del(g->hello);
	g->hello = NULL;
}

static void
good_fini(void *priv)
{
	free(priv);
}

static const struct imgw_connector good_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "good",
	.version = "1.0-test",
	.description = "test connector that counts what it gets",
	.options = good_options,
	.init = good_init,
	.start = good_start,
	.deliver = good_deliver,
	.stop = good_stop,
	.fini = good_fini,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &good_connector;
}
