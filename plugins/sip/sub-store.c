/*
 * Subscriptions in the core's store (ABI 1.1 sub_put/sub_del/sub_list),
 * so a restart, or a reload that restarts this community, keeps them:
 *
 *   put     when a dialog is set up or changes (2xx, NOTIFY state,
 *           refresh), with the dialog in `data`:
 *           "out|in \n Call-ID \n local tag \n remote tag \n local CSeq
 *            \n remote target [\n route \n route ...]" (the route set, RFC
 *           3261 12.1, one URI a line; rows without it, also those of
 *           older versions, have an empty route set)
 *   del     when a subscription really ends (never at stop)
 *   list    at start: OUT dialogs are refreshed in place (a 481 from the
 *           peer rebuilds them with a new SUBSCRIBE), IN dialogs are
 *           re-armed to expire when they would have
 *
 * Without a store (older core, or [store] dsn = none) nothing is kept and
 * everything else works the same.  Store failures are the core's to log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "sip.h"

#define SIP_HAS(sc, fn) \
	((sc)->host->size > offsetof(struct imgw_host, fn) && (sc)->host->fn != NULL)

static int64_t
sip_store_epoch_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void
sip_sub_store(struct sip_sub *s)
{
	struct sipc *sc = s->sc;
	struct imgw_sub sub;
	char *data;
	size_t n;

	if (!SIP_HAS(sc, sub_put) || s->fetch || s->callid == NULL ||
	    s->rtag == NULL)
		return;
	n = strlen(s->callid) + strlen(s->ltag) + strlen(s->rtag) +
	    (s->target ? strlen(s->target) : 0) +
	    (s->routes ? strlen(s->routes) : 0) + 32;
	if ((data = malloc(n)) == NULL)
		return;
	snprintf(data, n, "%s\n%s\n%s\n%s\n%u\n%s%s%s",
	    s->dir == SIP_SUB_OUT ? "out" : "in", s->callid, s->ltag, s->rtag,
	    s->lcseq, s->target ? s->target : "", s->routes ? "\n" : "",
	    s->routes ? s->routes : "");
	imgw_sub_init(&sub);
	sub.watcher = s->watcher;
	sub.presentity = s->presentity;
	sub.state = s->state == SIP_SUBST_ACTIVE ? "active" : "pending";
	sub.expires_ms = sip_store_epoch_ms() + (int64_t)s->expires * 1000;
	sub.data = data;
	if (sc->host->sub_put(sc->inst, &sub) == 0)
		s->stored = 1;
	free(data);
}

void
sip_sub_unstore(struct sip_sub *s)
{
	struct sipc *sc = s->sc;

	if (s->stored && SIP_HAS(sc, sub_del))
		(void)sc->host->sub_del(sc->inst, s->watcher, s->presentity);
	s->stored = 0;
}

/* Split data into its six lines and the route set after them (in place;
 * f[6] NULL without one: rows stored before route sets were kept have
 * none); 0, or -1 when malformed. */
static int
sip_store_split(char *data, char *f[7])
{
	int i;

	for (i = 0; i < 6; i++) {
		f[i] = data;
		if ((data = strchr(data, '\n')) == NULL) {
			if (i < 5)
				return -1;
		} else {
			*data++ = '\0';
		}
	}
	f[6] = data != NULL && data[0] != '\0' ? data : NULL;
	return f[1][0] && f[2][0] && f[3][0] ? 0 : -1;
}

static void
sip_store_restore(struct sipc *sc, const struct imgw_sub *sub)
{
	struct sip_sub *s;
	enum sip_sub_dir dir;
	char *copy, *f[7];
	int64_t left;

	if (sub->data == NULL || (copy = strdup(sub->data)) == NULL)
		return;
	if (sip_store_split(copy, f) == -1 ||
	    (strcmp(f[0], "out") != 0 && strcmp(f[0], "in") != 0))
		goto out;
	dir = f[0][0] == 'o' ? SIP_SUB_OUT : SIP_SUB_IN;
	left = sub->expires_ms ? sub->expires_ms - sip_store_epoch_ms() : 0;
	if (sip_sub_find(sc, dir, sub->watcher, sub->presentity) != NULL)
		goto out;
	if ((s = sip_sub_new(sc, dir, sub->watcher, sub->presentity)) == NULL)
		goto out;
	s->stored = 1;
	free(s->ltag);
	s->callid = strdup(f[1]);
	s->ltag = strdup(f[2]);
	s->rtag = strdup(f[3]);
	s->lcseq = (unsigned)strtoul(f[4], NULL, 10);
	s->target = f[5][0] ? strdup(f[5]) : NULL;
	s->routes = f[6] ? strdup(f[6]) : NULL;
	s->state = strcmp(sub->state, "active") == 0 ? SIP_SUBST_ACTIVE
	    : SIP_SUBST_PENDING;
	s->told_subscribed = s->state == SIP_SUBST_ACTIVE;
	if (s->callid == NULL || s->ltag == NULL || s->rtag == NULL ||
	    (f[5][0] && s->target == NULL) || (f[6] && s->routes == NULL)) {
		sip_sub_free(s);
		goto out;
	}
	if (dir == SIP_SUB_OUT) {
		/* refresh now: the peer's state may have moved meanwhile */
		sip_subout_restored(s);
	} else if (left <= 1000) {
		sip_sub_free(s);	/* expired while we were away */
	} else {
		sip_subin_restored(s, (unsigned)(left / 1000));
	}
	SIPC_COUNT(sc, "subscriptions-restored");
out:
	free(copy);
}

static void
sip_store_list_cb(void *arg, const struct imgw_sub *sub)
{
	struct sipc *sc = arg;

	if (sub == NULL) {
		sc->listing = 0;
		return;
	}
	sip_store_restore(sc, sub);
}

void
sip_sub_store_load(struct sipc *sc)
{
	if (!SIP_HAS(sc, sub_list))
		return;
	if (sc->host->sub_list(sc->inst, sip_store_list_cb, sc) == 0)
		sc->listing = 1;
}
