/*
 * bench-policy: decision time per event against a policy snapshot with
 * many rules (100,000 by default), built in memory the way policy-load.c
 * builds it from the store's rows (policy_snap_community / _rule / _global,
 * then policy_swap).
 *
 *   bench/bench-policy [-r RULES] [-g GLOBS] [-n DECISIONS]
 *
 * The rules: 40% block-user (exact addresses), 20% block-domain (exact
 * domains), 10% block-domain wildcards (*.domN.example), 30% allow-user
 * (local users), spread over the community "partner" and "*"; plus GLOBS
 * block-user patterns that are neither exact nor a plain suffix
 * ("spam*N@x.example": those are tried one by one, by design).  partner
 * allows listed users only.  Decisions: messages from listed local users
 * to partner (allowed after every check), and from partner users to local
 * users; without commit (a question, as `imgwctl policy test`) and with
 * commit (conversations and counters, as routing does).  Printed: ns per
 * decision, for 0 rules and for RULES rules, so that any growth with the
 * number of rules shows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <imgw/imgw.h>

#include "ev.h"
#include "policy.h"
#include "router.h"
#include "util.h"

#define BENCH_EVENTS	1024

static double
bench_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct policy_snap *
bench_snap(long rules, long globs)
{
	struct policy_snap *snap = policy_snap_new();
	struct policy_settings s;
	char val[128], err[256];
	const char *kind, *comm;
	long i;

	policy_settings_default(&s);
	policy_settings_set(&s, "local_access", "listed", err, sizeof(err));
	policy_settings_set(&s, "default_allow", "no", err, sizeof(err));
	policy_snap_community(snap, "partner", &s);
	for (i = 0; i < rules; i++) {
		comm = i % 3 == 0 ? "*" : "partner";
		switch (i % 10) {
		case 0: case 1: case 2: case 3:
			kind = "block-user";
			snprintf(val, sizeof(val), "user%ld@spam%ld.example", i,
			    i % 997);
			break;
		case 4: case 5:
			kind = "block-domain";
			snprintf(val, sizeof(val), "dom%ld.example", i);
			break;
		case 6:
			kind = "block-domain";
			snprintf(val, sizeof(val), "*.wild%ld.example", i);
			break;
		default:
			kind = "allow-user";
			comm = "partner";
			snprintf(val, sizeof(val), "u%ld@corp.example", i);
			break;
		}
		if (policy_snap_rule(snap, i + 1, comm, kind, val, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "bench-policy: rule %ld: %s\n", i, err);
			exit(1);
		}
	}
	for (i = 0; i < globs; i++) {
		snprintf(val, sizeof(val), "spam*%ld@x.example", i);
		if (policy_snap_rule(snap, rules + i + 1, "partner", "block-user",
		    val, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench-policy: glob %ld: %s\n", i, err);
			exit(1);
		}
	}
	/* with no rules at all, allow everyone: the same checks run */
	if (rules == 0)
		policy_snap_rule(snap, 1, "partner", "allow-user", "*@corp.example",
		    err, sizeof(err));
	return snap;
}

static void
bench_run(long rules, long globs, long n)
{
	struct policy *p = policy_new(NULL);
	struct router_verdict v;
	struct ev *out[BENCH_EVENTS], *in[BENCH_EVENTS];
	struct imgw_event e;
	const char *why, *cond;
	char from[64], to[64];
	double c0, t_build, t_q, t_c;
	long i, refused = 0, u;
	int commit;

	c0 = bench_cpu();
	policy_set_local(p, "corp");
	policy_swap(p, bench_snap(rules, globs));
	t_build = bench_cpu() - c0;
	for (i = 0; i < BENCH_EVENTS; i++) {
		/* listed users: rules 7, 8, 9 of every ten */
		u = rules > 0 ? (i * 10 + 7) % (rules - rules % 10) : i;
		snprintf(from, sizeof(from), "u%ld@corp.example/desk", u);
		snprintf(to, sizeof(to), "bob%ld@partner.example", i);
		imgw_event_init(&e, IMGW_EV_MESSAGE);
		e.from = from;
		e.to = to;
		e.body = "hello";
		if ((out[i] = ev_copy(&e, &why, &cond)) == NULL) {
			fprintf(stderr, "bench-policy: %s\n", why);
			exit(1);
		}
		e.from = to;
		e.to = from;
		if ((in[i] = ev_copy(&e, &why, &cond)) == NULL) {
			fprintf(stderr, "bench-policy: %s\n", why);
			exit(1);
		}
	}
	for (commit = 0; commit < 2; commit++) {
		c0 = bench_cpu();
		for (i = 0; i < n; i++) {
			if (i & 1)
				policy_decide(p, in[(i >> 1) % BENCH_EVENTS],
				    "partner", "corp", 1000, commit, &v);
			else
				policy_decide(p, out[(i >> 1) % BENCH_EVENTS],
				    "corp", "partner", 1000, commit, &v);
			refused += v.refuse;
		}
		if (commit)
			t_c = bench_cpu() - c0;
		else
			t_q = bench_cpu() - c0;
	}
	printf("%7ld rules + %4ld globs  snapshot built in %6.1f ms   "
	    "decide %6.1f ns/event (question), %6.1f ns/event (commit)   "
	    "refused %ld of %ld\n", rules, globs, t_build * 1e3, t_q * 1e9 / n,
	    t_c * 1e9 / n, refused, 2 * n);
	for (i = 0; i < BENCH_EVENTS; i++) {
		ev_free(out[i]);
		ev_free(in[i]);
	}
	policy_free(p);
}

int
main(int argc, char **argv)
{
	long rules = 100000, globs = 100, n = 2000000;
	int c;

	while ((c = getopt(argc, argv, "r:g:n:h")) != -1) {
		switch (c) {
		case 'r': rules = atol(optarg); break;
		case 'g': globs = atol(optarg); break;
		case 'n': n = atol(optarg); break;
		default:
			fprintf(stderr, "usage: bench-policy [-r RULES] [-g GLOBS] "
			    "[-n DECISIONS]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (rules < 0 || globs < 0 || n <= 0) {
		fprintf(stderr, "bench-policy: bad numbers\n");
		return 2;
	}
	util_hash_seed(0x5eed);
	printf("== bench-policy: one decision per event, in memory ==\n");
	bench_run(0, 0, n);
	bench_run(1000, globs, n);
	bench_run(rules, 0, n);
	bench_run(rules, globs, n);
	return 0;
}
