/*
 * imgwctl log query: read the audit log from the store of the
 * configuration.
 *
 *   imgwctl [-c CONFIG] log query [--since T] [--until T] [--user ADDR]
 *       [--community NAME] [--limit N] [--json]
 *
 * T is ISO 8601 in UTC (2026-11-26, 2026-11-26T16:00, ...:05.250Z) or
 * milliseconds since the epoch.  --user matches the sender or the
 * recipient, --community the source or the target community.  Records
 * come oldest first, at most --limit (default 100).  --json prints one
 * JSON object per line.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "conf.h"
#include "store.h"
#include "imgwctl-db.h"

struct imgwctl_q {
	int64_t since, until, limit;
	const char *user, *community;
	int json;
	long rows;
};

/* ISO 8601 UTC or epoch ms: 0, or -1. */
static int
imgwctl_parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
	const char *p;
	char *end;
	long long v;

	if (strspn(s, "0123456789") == strlen(s) && *s != '\0') {
		v = strtoll(s, &end, 10);
		*out = v;
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
		return -1;
	p = s + n;
	if (*p == 'T' || *p == ' ') {
		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2)
			return -1;
		p += 1 + n;
		if (*p == ':') {
			n = 0;
			if (sscanf(p + 1, "%2d%n", &sec, &n) != 1)
				return -1;
			p += 1 + n;
			if (*p == '.') {
				int digits = 0;

				for (p++; *p >= '0' && *p <= '9'; p++, digits++)
					if (digits < 3)
						ms = ms * 10 + (*p - '0');
				while (digits > 0 && digits < 3) {
					ms *= 10;
					digits++;
				}
			}
		}
	}
	if (*p == 'Z')
		p++;
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

static const char *
imgwctl_s(const struct store_val *v)
{
	return v->type == STORE_TEXT ? v->s : NULL;
}

static int
imgwctl_log_row(void *arg, const struct store_val *c, size_t n)
{
	static const char *const names[] = { "id", "ts_ms", "node", "trace",
	    "kind", "from", "to", "src_community", "dst_community", "decision",
	    "rule", "condition", "content" };
	struct imgwctl_q *q = arg;
	char ts[40];
	struct tm tm;
	time_t t;
	int64_t ms;
	json_object *o;
	size_t i;

	if (n < 13)
		return 1;
	q->rows++;
	ms = store_val_int(&c[1], 0);
	if (q->json) {
		o = json_object_new_object();
		for (i = 0; i < 13; i++) {
			if (c[i].type == STORE_NULL)
				json_object_object_add(o, names[i], NULL);
			else if (i <= 1)
				json_object_object_add(o, names[i],
				    json_object_new_int64(store_val_int(&c[i], 0)));
			else
				json_object_object_add(o, names[i],
				    json_object_new_string(c[i].s ? c[i].s : ""));
		}
		printf("%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return 0;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("%s.%03dZ %s %s %s %s -> %s (%s -> %s)", ts, (int)(ms % 1000),
	    imgwctl_s(&c[2]) ? c[2].s : "-", imgwctl_s(&c[4]) ? c[4].s : "-",
	    imgwctl_s(&c[9]) ? c[9].s : "-", imgwctl_s(&c[5]) ? c[5].s : "-",
	    imgwctl_s(&c[6]) ? c[6].s : "-", imgwctl_s(&c[7]) ? c[7].s : "-",
	    imgwctl_s(&c[8]) ? c[8].s : "-");
	if (imgwctl_s(&c[10]))
		printf(" rule=%s", c[10].s);
	if (imgwctl_s(&c[11]))
		printf(" condition=%s", c[11].s);
	if (imgwctl_s(&c[3]))
		printf(" trace=%s", c[3].s);
	printf("\n");
	if (imgwctl_s(&c[12]))
		printf("    %s\n", c[12].s);
	return 0;
}

static int
imgwctl_log_job(struct store_conn *sc, void *arg)
{
	struct imgwctl_q *q = arg;
	struct store_val p[7];
	const char *name;
	size_t n = 0;

	p[n++] = STORE_INT_VAL(q->since);
	p[n++] = STORE_INT_VAL(q->until);
	if (q->user != NULL) {
		p[n++] = STORE_TEXT_VAL(q->user);
		p[n++] = STORE_TEXT_VAL(q->user);
	}
	if (q->community != NULL) {
		p[n++] = STORE_TEXT_VAL(q->community);
		p[n++] = STORE_TEXT_VAL(q->community);
	}
	p[n++] = STORE_INT_VAL(q->limit);
	name = q->user && q->community ? "audit.query.user.comm" : q->user ?
	    "audit.query.user" : q->community ? "audit.query.comm" :
	    "audit.query";
	return store_query(sc, store_sql(sc, name), p, n, imgwctl_log_row, q);
}

static void
imgwctl_log_usage(FILE *f)
{
	fprintf(f, "usage: imgwctl [-c CONFIG] log query [--since T] [--until T] "
	    "[--user ADDR]\n"
	    "           [--community NAME] [--limit N] [--json]\n"
	    "  T: ISO 8601 in UTC (2026-11-26T16:00:00Z) or epoch milliseconds\n");
}

int
imgwctl_log(const char *conf_file, int argc, char **argv)
{
	struct imgwctl_q q = { .since = 0, .until = INT64_MAX, .limit = 100 };
	struct store *s;
	struct conf *c;
	char err[1024];
	int i, rc = 0;
	long long v;

	if (argc < 2 || strcmp(argv[1], "query") != 0) {
		imgwctl_log_usage(stderr);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--json") == 0) {
			q.json = 1;
			continue;
		}
		if (val == NULL) {
			fprintf(stderr, "imgwctl: %s needs a value\n", o);
			return 2;
		}
		i++;
		if (strcmp(o, "--since") == 0 || strcmp(o, "--until") == 0) {
			if (imgwctl_parse_time(val, strcmp(o, "--since") == 0 ?
			    &q.since : &q.until) < 0) {
				fprintf(stderr, "imgwctl: %s '%s': expected ISO 8601 "
				    "UTC (2026-11-26T16:00:00Z) or epoch ms\n", o,
				    val);
				return 2;
			}
		} else if (strcmp(o, "--user") == 0) {
			q.user = val;
		} else if (strcmp(o, "--community") == 0) {
			q.community = val;
		} else if (strcmp(o, "--limit") == 0) {
			if (conf_parse_ll(val, &v) < 0 || v < 1 || v > 10000000) {
				fprintf(stderr, "imgwctl: --limit '%s': expected a "
				    "number from 1 to 10000000\n", val);
				return 2;
			}
			q.limit = v;
		} else {
			fprintf(stderr, "imgwctl: unknown option '%s'\n", o);
			imgwctl_log_usage(stderr);
			return 2;
		}
	}
	if ((s = imgwctl_store_open(conf_file, &c)) == NULL)
		return 1;
	if (store_call(s, imgwctl_log_job, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "imgwctl: log query: %s\n", err);
		rc = 1;
	} else if (!q.json) {
		fprintf(stderr, "%ld records\n", q.rows);
	}
	store_free(s, 5000);
	conf_free(c);
	return rc;
}
