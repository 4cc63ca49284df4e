/*
 * Control socket commands of the policy:
 *
 *   policy test FROM TO [KIND[:CONTENT-TYPE]]
 *	the decision for an event, without sending or counting anything:
 *	"ok" + "decision: allowed", or "error" + "decision: refused" with
 *	condition, rule and text lines
 *   policy refresh	read the policies again: "serial N"
 *   policy wait N	"ok" once snapshot N is in force, "error" with
 *			"pending" or "failed: why"
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "address.h"
#include "control.h"
#include "ev.h"
#include "policy.h"
#include "policy-internal.h"
#include "router.h"
#include "util.h"

#define POLICY_CTL_ARGS	6

/* Split `line` (copied into buf) at spaces; the number of words. */
static size_t
policy_ctl_split(char *buf, char **words, size_t max)
{
	size_t n = 0;
	char *save = NULL, *w;

	for (w = strtok_r(buf, " \t", &save); w != NULL && n < max;
	    w = strtok_r(NULL, " \t", &save))
		words[n++] = w;
	return w != NULL ? max + 1 : n;
}

static int
policy_ctl_test(struct policy *p, char **w, size_t n, struct evbuffer *out,
    const char *(*lookup)(void *arg, const char *addr), void *lookup_arg)
{
	char from[ADDR_BARE_MAX + 256], to[ADDR_BARE_MAX + 256];
	const char *why = NULL, *src, *dst, *ct = NULL;
	struct router_verdict v;
	struct ev tev;
	char *colon;
	int kind = IMGW_EV_MESSAGE;

	if (n < 4 || n > 5) {
		evbuffer_add_printf(out, "usage: policy test FROM TO [KIND]\n");
		return -1;
	}
	if (addr_canon(w[2], from, sizeof(from), &why) < 0 ||
	    addr_canon(w[3], to, sizeof(to), &why) < 0) {
		evbuffer_add_printf(out, "bad address: %s\n", why);
		return -1;
	}
	if (n == 5) {
		if ((colon = strchr(w[4], ':')) != NULL) {
			*colon = '\0';
			ct = colon + 1;
		}
		if ((kind = imgw_kind_parse(w[4])) <= IMGW_EV_NONE) {
			evbuffer_add_printf(out, "unknown event kind '%s'\n",
			    w[4]);
			return -1;
		}
	}
	src = lookup != NULL ? lookup(lookup_arg, from) : NULL;
	dst = lookup != NULL ? lookup(lookup_arg, to) : NULL;
	if (dst == NULL) {
		evbuffer_add_printf(out, "decision: refused\ncondition: %s\n"
		    "rule: none\ntext: no community serves the domain of %s\n",
		    IMGW_ERR_REMOTE_SERVER_NOT_FOUND, to);
		return -1;
	}
	memset(&tev, 0, sizeof(tev));
	imgw_event_init(&tev.e, (enum imgw_kind)kind);
	tev.e.from = from;
	tev.e.to = to;
	tev.e.content_type = ct;
	if (kind == IMGW_EV_MESSAGE)
		tev.e.body = "";
	if (src != NULL && strcmp(src, dst) == 0) {
		evbuffer_add_printf(out, "decision: refused\ncondition: %s\n"
		    "rule: none\ntext: destination is in the sender's own "
		    "community\n", IMGW_ERR_NOT_ALLOWED);
		return -1;
	}
	policy_decide(p, &tev, src, dst, util_now_ms(), 0, &v);
	evbuffer_add_printf(out, "decision: %s\nfrom: %s (%s)\nto: %s (%s)\n"
	    "kind: %s\n", v.refuse ? "refused" : "allowed", from,
	    src ? src : "no community", to, dst, imgw_kind_name(tev.e.kind));
	if (v.refuse)
		evbuffer_add_printf(out, "condition: %s\n", v.condition);
	evbuffer_add_printf(out, "rule: %s\n", v.rule ? v.rule : "default");
	if (v.text != NULL)
		evbuffer_add_printf(out, "text: %s\n", v.text);
	return v.refuse ? -1 : 0;
}

int
policy_control(struct policy *p, const char *line, struct evbuffer *out,
    const char *(*lookup)(void *arg, const char *addr), void *lookup_arg)
{
	char *buf, *w[POLICY_CTL_ARGS], err[256];
	unsigned long long serial;
	uint64_t s;
	size_t n;
	int rc = -1;

	if (strncmp(line, "policy", 6) != 0 || (line[6] != ' ' &&
	    line[6] != '\0'))
		return CONTROL_UNKNOWN;
	buf = xstrdup(line);
	n = policy_ctl_split(buf, w, POLICY_CTL_ARGS);
	if (n < 2 || n > POLICY_CTL_ARGS) {
		evbuffer_add_printf(out, "usage: policy test FROM TO [KIND] | "
		    "policy refresh | policy wait SERIAL\n");
	} else if (!strcmp(w[1], "test")) {
		rc = policy_ctl_test(p, w, n, out, lookup, lookup_arg);
	} else if (!strcmp(w[1], "refresh") && n == 2) {
		if ((s = policy_refresh(p)) == 0) {
			evbuffer_add_printf(out, "no store: the policies are "
			    "the defaults (everything allowed)\n");
		} else {
			evbuffer_add_printf(out, "serial %llu\n",
			    (unsigned long long)s);
			rc = 0;
		}
	} else if (!strcmp(w[1], "wait") && n == 3 &&
	    sscanf(w[2], "%llu", &serial) == 1) {
		switch (policy_loaded(p, serial, err, sizeof(err))) {
		case 1:
			evbuffer_add_printf(out, "loaded %llu\n", serial);
			rc = 0;
			break;
		case 0:
			evbuffer_add_printf(out, "pending\n");
			break;
		default:
			evbuffer_add_printf(out, "failed: %s\n", err);
			break;
		}
	} else {
		evbuffer_add_printf(out, "unknown policy command '%s'\n", w[1]);
	}
	free(buf);
	return rc;
}
