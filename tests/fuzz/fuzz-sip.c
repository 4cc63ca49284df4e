/*
 * libFuzzer target: one datagram into the SIP stack and the sip
 * connector, as if it came from a trusted peer over UDP — parsing,
 * checks, transactions, the MESSAGE/SUBSCRIBE/NOTIFY mapping and the
 * events emitted, with a host table that checks what it is handed.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I sdk/include \
 *       $(pkg-config --cflags libosip2 expat openssl) tests/sip/fuzz-sip.c \
 *       (every .c of plugins/sip and plugins/sipstack) \
 *       $(pkg-config --libs libosip2 expat openssl)
 *
 * (t-sip-fuzz.py builds and runs it for a bounded time.)  No socket is
 * opened: answers fail to send, which is fine; every input gets a fresh
 * stack and connector state, freed afterwards, so leaks show.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/sip/sip.h"
#include "../../plugins/sipstack/sipstack-internal.h"

static int fuzz_timer_dummy;

static void
fuzz_log(struct imgw_instance *inst, enum imgw_log_level level,
    const char *trace, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	(void)inst;
	(void)level;
	(void)trace;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);	/* formats must hold */
	va_end(ap);
}

static int
fuzz_owns(struct imgw_instance *inst, const char *domain)
{
	(void)inst;
	return strcmp(domain, "sip.example") == 0;
}

static struct imgw_timer *
fuzz_timer_add(struct imgw_instance *inst, unsigned int ms, imgw_timer_cb cb,
    void *arg)
{
	(void)inst;
	(void)ms;
	(void)cb;
	(void)arg;
	return (struct imgw_timer *)&fuzz_timer_dummy;	/* never fires */
}

static void
fuzz_timer_del(struct imgw_timer *t)
{
	(void)t;
}

/* No socket watches here: a request that would open a TCP connection
 * (a route set naming transport=tcp, say) fails as a transport error. */
static struct imgw_watch *
fuzz_watch_add(struct imgw_instance *inst, int fd, int what, imgw_watch_cb cb,
    void *arg)
{
	(void)inst;
	(void)fd;
	(void)what;
	(void)cb;
	(void)arg;
	return NULL;
}

/* Every string of an emitted event must be a readable C string. */
static int
fuzz_emit(struct imgw_instance *inst, const struct imgw_event *ev, char *err_r,
    size_t errlen, char *trace_r)
{
	const char *f[] = { ev->from, ev->to, ev->id, ev->thread, ev->subject,
	    ev->body, ev->content_type, ev->lang, ev->status, ev->condition,
	    ev->text };
	size_t i, n = 0;

	(void)inst;
	if (ev->from == NULL || ev->to == NULL || ev->kind <= IMGW_EV_NONE ||
	    ev->kind >= IMGW_EV_KIND_MAX)
		abort();	/* a bug in the connector, not in the input */
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] != NULL)
			n += strlen(f[i]);
	if (trace_r != NULL)
		snprintf(trace_r, 40, "fuzz-%zu", n);
	if (n % 7 == 3) {	/* sometimes refuse, to run those paths */
		if (err_r != NULL && errlen > 0)
			snprintf(err_r, errlen, "forbidden: fuzz");
		return -1;
	}
	return 0;
}

static void
fuzz_counter(struct imgw_instance *inst, const char *name, int64_t delta)
{
	(void)inst;
	(void)delta;
	if (strlen(name) == 0)
		abort();
}

static const struct imgw_host fuzz_host = {
	.size = sizeof(struct imgw_host),
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
	.log = fuzz_log,
	.owns_domain = fuzz_owns,
	.timer_add = fuzz_timer_add,
	.timer_del = fuzz_timer_del,
	.watch_add = fuzz_watch_add,
	.emit = fuzz_emit,
	.emit_now = fuzz_emit,
	.counter_add = fuzz_counter,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in *sin;
	struct sockaddr_storage src;
	static struct sipc sc;
	char *buf;

	if (size > 65535)
		return 0;
	memset(&sc, 0, sizeof(sc));
	sc.host = &fuzz_host;
	snprintf(sc.adv_host, sizeof(sc.adv_host), "127.0.0.1");
	sc.sub_expires = 3600;
	sc.max_subs = 16;
	sip_net_cidr("127.0.0.0/8", &sc.trusted[0]);
	sc.ntrusted = 1;
	sc.cfg.host = &fuzz_host;
	sc.cfg.adv_host = sc.adv_host;
	sc.cfg.adv_port = 5060;
	sc.cfg.trusted = sc.trusted;
	sc.cfg.ntrusted = sc.ntrusted;
	sc.cfg.max_message = 65535;
	sc.cfg.max_conns = 4;
	sc.cfg.tcp_idle_s = 60;
	sc.cfg.max_pending = 16;
	sc.cfg.shards = 1;
	sc.cfg.allow = "MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY";
	sc.cfg.accept = SIP_ACCEPT;
	sc.cfg.request_cb = sip_in_request_cb;
	sc.cfg.arg = &sc;
	if ((sc.st = sip_stack_new(&sc.cfg)) == NULL)
		return 0;
	memset(&src, 0, sizeof(src));
	sin = (struct sockaddr_in *)&src;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5070);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* a private copy, as the transport's receive buffer would be */
	if ((buf = malloc(size + 1)) != NULL) {
		memcpy(buf, data, size);
		buf[size] = '\0';
		sip_in_message(sc.st, SIP_PROTO_UDP, buf, size, &src, sizeof(*sin), 0);
		free(buf);
	}
	sip_stack_settle(sc.st);
	sip_in_holds_free(&sc);
	sip_sub_free_all(&sc);
	sip_typing_free_all(&sc);
	sip_stack_free(sc.st);
	sip_out_free(&sc);
	return 0;
}
