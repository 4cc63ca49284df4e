/*
 * A test connector that keeps presence subscriptions through the host
 * table (ABI 1.1): a subscribe event delivered to it is stored as
 * pending (sub_put), subscribed makes it active (with an expiry and the
 * connector's opaque data), unsubscribe removes it (sub_del).  At start it
 * reads back what is stored (sub_list) and counts it: instance counters
 * "restored" and "restored.STATE", and a log line per subscription, so a
 * test sees what a restarted gateway knows.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <imgw/imgw.h>

struct substest {
	struct imgw_instance *inst;
	const struct imgw_host *host;
	int listed;
};

static int
substest_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	struct substest *t;

	if (host->size <= offsetof(struct imgw_host, sub_list)) {
		host->log(inst, IMGW_LOG_ERR, NULL, "the core has no sub_list");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->inst = inst;
	t->host = host;
	*priv_r = t;
	return 0;
}

static void
substest_list_cb(void *arg, const struct imgw_sub *sub)
{
	struct substest *t = arg;
	char name[64];

	if (sub == NULL) {
		t->listed = 1;
		t->host->counter_add(t->inst, "listed", 1);
		t->host->log(t->inst, IMGW_LOG_NOTICE, NULL, "subscriptions "
		    "restored");
		return;
	}
	t->host->counter_add(t->inst, "restored", 1);
	snprintf(name, sizeof(name), "restored.%s", sub->state);
	t->host->counter_add(t->inst, name, 1);
	t->host->log(t->inst, IMGW_LOG_NOTICE, NULL, "restored %s -> %s %s "
	    "expires=%lld data=%s", sub->watcher, sub->presentity, sub->state,
	    (long long)sub->expires_ms, sub->data ? sub->data : "(null)");
}

static int
substest_start(void *priv)
{
	struct substest *t = priv;

	t->host->ready(t->inst);
	if (t->host->sub_list(t->inst, substest_list_cb, t) < 0)
		t->host->counter_add(t->inst, "list-failed", 1);
	return 0;
}

static int
substest_deliver(void *priv, const struct imgw_event *ev,
    const char **condition_r)
{
	struct substest *t = priv;
	struct imgw_sub sub;
	int rc = 0;

	imgw_sub_init(&sub);
	sub.watcher = ev->from;
	sub.presentity = ev->to;
	switch (ev->kind) {
	case IMGW_EV_SUBSCRIBE:
		sub.state = "pending";
		rc = t->host->sub_put(t->inst, &sub);
		break;
	case IMGW_EV_SUBSCRIBED:
		/* here the "watcher" is the one who allowed: flip it */
		sub.watcher = ev->to;
		sub.presentity = ev->from;
		sub.state = "active";
		sub.expires_ms = 4102444800000LL;	/* 2100-01-01 */
		sub.data = "{\"dialog\":\"x\\u00e9\"}";
		rc = t->host->sub_put(t->inst, &sub);
		break;
	case IMGW_EV_UNSUBSCRIBE:
		rc = t->host->sub_del(t->inst, ev->from, ev->to);
		break;
	default:
		break;
	}
	t->host->counter_add(t->inst, rc == 0 ? "stored" : "store-refused", 1);
	return IMGW_OK;
}

static void
substest_fini(void *priv)
{
	free(priv);
}

static const struct imgw_connector substest = {
	IMGW_CONNECTOR_HEAD,
	.name = "substest",
	.version = "1.1-test",
	.description = "keeps presence subscriptions in the store (tests)",
	.init = substest_init,
	.start = substest_start,
	.deliver = substest_deliver,
	.fini = substest_fini,
};

IMGW_EXPORT const struct imgw_connector *
imgw_connector_entry(void)
{
	return &substest;
}
