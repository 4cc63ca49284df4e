/*
 * bench-router: in-process routing throughput of the core.
 *
 * Two communities run on one event loop: "a" (a.example) emits events
 * through the host table's emit, exactly as a connector does, and "b"
 * (b.example) counts what it is delivered.  Events go out in batches;
 * after each batch one non-blocking loop turn delivers them.  The real
 * path runs: inst_start (init, start, host->ready), host->emit,
 * router_emit (copy, checks, trace id), router_route (lookup, damping),
 * inst_enqueue and the instance's dispatch callback.
 *
 * Figures only: nothing here asserts a time.  Allocations are counted by
 * interposing malloc, calloc and realloc in this binary (see below).
 *
 *   bench-router [-n EVENTS] [-b BATCH] [-p PAIRS] [-r RUN]
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <imgw/connector.h>

#include "conf.h"
#include "inst.h"
#include "log.h"
#include "router.h"

/* ---- allocation counting ---------------------------------------------------- */

/*
 * glibc exports its allocator as __libc_malloc and friends, so the
 * wrappers need no dlsym(RTLD_NEXT) (which itself calls calloc).  The
 * executable's definitions win for libevent and libc callers too.
 * Single-threaded, so plain counters do.
 */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static uint64_t bench_nmalloc, bench_nfree, bench_nbytes;

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

void *
malloc(size_t n)
{
	bench_nmalloc++;
	bench_nbytes += n;
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	bench_nmalloc++;
	bench_nbytes += n * size;
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	bench_nmalloc++;
	bench_nbytes += n;
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	if (p != NULL)
		bench_nfree++;
	__libc_free(p);
}

/* ---- the two connectors ----------------------------------------------------- */

struct bench_priv {
	struct imgw_instance *inst;
	const struct imgw_host *host;
	uint64_t delivered;
	uint64_t errors;	/* error events delivered back */
};

static int
bench_init(struct imgw_instance *inst, const struct imgw_host *host,
    void **priv_r)
{
	struct bench_priv *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -1;
	p->inst = inst;
	p->host = host;
	*priv_r = p;
	return 0;
}

static int
bench_start(void *priv)
{
	struct bench_priv *p = priv;

	p->host->ready(p->inst);
	return 0;
}

static int
bench_deliver(void *priv, const struct imgw_event *ev, const char **condition_r)
{
	struct bench_priv *p = priv;

	if (ev->kind == IMGW_EV_ERROR)
		p->errors++;
	else
		p->delivered++;
	return IMGW_OK;
}

static void
bench_fini(void *priv)
{
	free(priv);
}

static const struct imgw_connector bench_connector = {
	IMGW_CONNECTOR_HEAD,
	.name = "bench",
	.version = "0",
	.description = "counts deliveries",
	.init = bench_init,
	.start = bench_start,
	.deliver = bench_deliver,
	.fini = bench_fini,
};

/* ---- measurement -------------------------------------------------------------- */

static double
bench_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
bench_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

enum bench_kind {
	BENCH_MESSAGE,		/* one sender, one recipient */
	BENCH_PRESENCE_CYCLE,	/* `pairs` distinct pairs, status changes */
	BENCH_PRESENCE_NEW,	/* every event a pair never seen before */
};

struct bench_run {
	const char *name;
	enum bench_kind kind;
	uint64_t n;		/* events */
	unsigned batch;
	unsigned pairs;		/* for BENCH_PRESENCE_CYCLE */
};

struct bench_env {
	struct event_base *base;
	struct router *r;
	struct imgw_instance *a, *b;
};

static int
bench_env_new(struct bench_env *env, size_t queue)
{
	static char *doms_a[] = { "a.example" }, *doms_b[] = { "b.example" };
	struct conf_community ca = {
		.name = "a", .connector = "bench", .domains = doms_a,
		.ndomains = 1, .queue_size = queue,
	};
	struct conf_community cb = {
		.name = "b", .connector = "bench", .domains = doms_b,
		.ndomains = 1, .queue_size = queue,
	};
	/* presence limits out of the way: the bench measures the damping
	 * path, not how much of the load the limits hold back */
	struct router_limits lim = {
		.presence_rate = 1000000000, .presence_window = 1,
		.loop_limit = 20, .loop_window = 10,
	};

	if ((env->base = event_base_new()) == NULL)
		return -1;
	env->r = router_new(env->base, "bench", &lim);
	env->a = inst_new(env->r, env->base, &ca, &bench_connector, NULL, queue);
	env->b = inst_new(env->r, env->base, &cb, &bench_connector, NULL, queue);
	if (router_domain_add(env->r, "a.example", env->a) < 0 ||
	    router_domain_add(env->r, "b.example", env->b) < 0)
		return -1;
	if (inst_start(env->a) < 0 || inst_start(env->b) < 0)
		return -1;
	event_base_loop(env->base, EVLOOP_NONBLOCK);
	if (env->a->state != INST_READY || env->b->state != INST_READY) {
		fprintf(stderr, "bench-router: instances did not become ready\n");
		return -1;
	}
	return 0;
}

static void
bench_env_free(struct bench_env *env)
{
	inst_free(env->a, "service-unavailable");
	inst_free(env->b, "service-unavailable");
	router_free(env->r);
	event_base_free(env->base);
}

static int
bench_one(const struct bench_run *run)
{
	struct bench_env env;
	struct bench_priv *pa, *pb;
	const struct imgw_host *host = &inst_host;
	struct imgw_event e;
	char from[64], to[64], id[32], status[32], err[256];
	uint64_t i, m0, f0, b0, m1, f1, b1, refused = 0;
	double w0, c0, w1, c1, wall, cpu;
	long rss0, rss1;
	unsigned k;

	if (bench_env_new(&env, run->batch * 4 + 1024) < 0) {
		fprintf(stderr, "bench-router: setup failed\n");
		return -1;
	}
	pa = env.a->priv;
	pb = env.b->priv;
	rss0 = bench_rss_kb();

	m0 = bench_nmalloc, f0 = bench_nfree, b0 = bench_nbytes;
	w0 = bench_clock(CLOCK_MONOTONIC);
	c0 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
	for (i = 0; i < run->n;) {
		for (k = 0; k < run->batch && i < run->n; k++, i++) {
			/* the strings are built outside the core on purpose
			 * only where they change; a connector builds them
			 * from its protocol anyway */
			switch (run->kind) {
			case BENCH_MESSAGE:
				imgw_event_init(&e, IMGW_EV_MESSAGE);
				e.from = "alice@a.example/desk";
				e.to = "bob@b.example";
				snprintf(id, sizeof(id), "m%llu",
				    (unsigned long long)i);
				e.id = id;
				e.body = "Hello Bob, this is a typical short "
				    "chat message of some 60 bytes.";
				break;
			case BENCH_PRESENCE_CYCLE:
				imgw_event_init(&e, IMGW_EV_PRESENCE);
				snprintf(from, sizeof(from), "u%u@a.example/r",
				    (unsigned)(i % run->pairs) & 0xff);
				snprintf(to, sizeof(to), "w%u@b.example",
				    (unsigned)(i % run->pairs) >> 8);
				/* a new status each round, so no duplicate */
				snprintf(status, sizeof(status), "round %llu",
				    (unsigned long long)(i / run->pairs));
				e.from = from;
				e.to = to;
				e.status = status;
				e.show = IMGW_SHOW_AWAY;
				break;
			case BENCH_PRESENCE_NEW:
				imgw_event_init(&e, IMGW_EV_PRESENCE);
				snprintf(from, sizeof(from), "u%llu@a.example",
				    (unsigned long long)(i & 0xfff));
				snprintf(to, sizeof(to), "w%llu@b.example",
				    (unsigned long long)(i >> 12));
				e.from = from;
				e.to = to;
				e.status = "here";
				break;
			}
			if (host->emit(env.a, &e, err, sizeof(err), NULL) < 0) {
				if (refused++ == 0)
					fprintf(stderr, "bench-router: emit "
					    "refused: %s\n", err);
			}
		}
		event_base_loop(env.base, EVLOOP_NONBLOCK);
	}
	/* whatever a turn left (it delivers at most one budget) */
	while (env.b->q.len > 0 || env.a->q.len > 0)
		event_base_loop(env.base, EVLOOP_NONBLOCK);
	c1 = bench_clock(CLOCK_PROCESS_CPUTIME_ID);
	w1 = bench_clock(CLOCK_MONOTONIC);
	m1 = bench_nmalloc, f1 = bench_nfree, b1 = bench_nbytes;
	rss1 = bench_rss_kb();

	wall = w1 - w0;
	cpu = c1 - c0;
	printf("%-16s %9llu events  %7.3f s wall  %7.3f s cpu  "
	    "%9.0f ev/s  %6.0f ns/ev  %5.2f allocs/ev  %5.2f frees/ev  "
	    "%6.0f B/ev\n",
	    run->name, (unsigned long long)run->n, wall, cpu,
	    run->n / wall, cpu * 1e9 / run->n,
	    (double)(m1 - m0) / run->n, (double)(f1 - f0) / run->n,
	    (double)(b1 - b0) / run->n);
	printf("%-16s delivered %llu, errors back to sender %llu, refused %llu"
	    ", damped %lld, held %lld, RSS +%ld KiB\n", "",
	    (unsigned long long)pb->delivered, (unsigned long long)pa->errors,
	    (unsigned long long)refused,
	    (long long)counters_get(&env.r->ctr, "presence-damped"),
	    (long long)counters_get(&env.r->ctr, "presence-held"),
	    rss1 - rss0);
	fflush(stdout);
	bench_env_free(&env);
	return 0;
}

static void
bench_usage(void)
{
	fprintf(stderr, "usage: bench-router [-n EVENTS] [-b BATCH] "
	    "[-p PAIRS] [-r RUN]\n"
	    "  RUN: message, presence-cycle or presence-new (default: all)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	uint64_t n = 2000000;
	unsigned batch = 512, pairs = 65536;
	const char *only = NULL;
	int c, rc = 0;

	while ((c = getopt(argc, argv, "n:b:p:r:")) != -1) {
		switch (c) {
		case 'r':
			only = optarg;
			break;
		case 'n':
			n = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			batch = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			pairs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			bench_usage();
		}
	}
	if (n == 0 || batch == 0 || pairs == 0 || pairs > 65536)
		bench_usage();
	log_setup(LOG_TARGET_STDERR, IMGW_LOG_WARNING);

	printf("bench-router: %llu events per run, batches of %u, one loop "
	    "turn per batch\n", (unsigned long long)n, batch);
	{
		const struct bench_run runs[] = {
			{ "message", BENCH_MESSAGE, n, batch, 0 },
			{ "presence-cycle", BENCH_PRESENCE_CYCLE, n, batch,
			    pairs },
			{ "presence-new", BENCH_PRESENCE_NEW, n / 4, batch, 0 },
		};
		size_t i;

		for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
			if ((only == NULL || strcmp(only, runs[i].name) == 0) &&
			    bench_one(&runs[i]) < 0)
				rc = 1;
	}
	printf("presence-cycle: %u sender/target pairs, each sees a new "
	    "status per round\npresence-new: every event a pair not seen "
	    "before (damping table grows)\n", pairs);
	return rc;
}
