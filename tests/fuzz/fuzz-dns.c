/*
 * libFuzzer target: DNS answers into plugins/common/dns.c — the whole
 * lookup, not one parser: NAPTR (when the input's first byte says so),
 * SRV of three services, A/AAAA of the targets, as sipstack asks them.
 *
 * A UDP socket on 127.0.0.1 plays the server.  Each query the client
 * sends is answered with the next piece of the input: 2 bytes of flags,
 * 6 bytes of answer/authority/additional counts, then a length byte and
 * that many bytes of records after the query's own id and question (so
 * the answer is matched and its records are what gets parsed).  Timers
 * fire when no query is left, so retries and give-ups run too.  The
 * lookup ends by its callback or is cancelled; ASan sees the rest.
 *
 * (t-fuzz-dns.sh builds and runs it for a bounded time.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../plugins/common/dns.h"

static int fuzz_dummy;
static imgw_watch_cb fuzz_wcb;
static void *fuzz_warg;
static int fuzz_wfd = -1;
static imgw_timer_cb fuzz_tcb;
static void *fuzz_targ;
static int fuzz_done;

static void
fuzz_log(struct imgw_instance *inst, enum imgw_log_level level, const char *trace,
    const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	(void)inst;
	(void)level;
	(void)trace;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

static struct imgw_timer *
fuzz_timer_add(struct imgw_instance *inst, unsigned int ms, imgw_timer_cb cb, void *arg)
{
	(void)inst;
	(void)ms;
	fuzz_tcb = cb;
	fuzz_targ = arg;
	return (struct imgw_timer *)&fuzz_dummy;
}

static void
fuzz_timer_del(struct imgw_timer *t)
{
	(void)t;
	fuzz_tcb = NULL;
}

static struct imgw_watch *
fuzz_watch_add(struct imgw_instance *inst, int fd, int what, imgw_watch_cb cb, void *arg)
{
	(void)inst;
	(void)what;
	fuzz_wcb = cb;
	fuzz_warg = arg;
	fuzz_wfd = fd;
	return (struct imgw_watch *)&fuzz_dummy;
}

static void
fuzz_watch_del(struct imgw_watch *w)
{
	(void)w;
	fuzz_wcb = NULL;
}

static const struct imgw_host fuzz_host = {
	.size = sizeof(struct imgw_host),
	.abi_major = IMGW_ABI_MAJOR,
	.abi_minor = IMGW_ABI_MINOR,
	.log = fuzz_log,
	.timer_add = fuzz_timer_add,
	.timer_del = fuzz_timer_del,
	.watch_add = fuzz_watch_add,
	.watch_del = fuzz_watch_del,
};

static void
fuzz_dns_cb(void *arg, const struct plug_dns_addr *addrs, int n, const char *why)
{
	int i;

	(void)arg;
	for (i = 0; i < n; i++)
		if (strlen(addrs[i].text) >= sizeof(addrs[i].text) ||
		    addrs[i].len > sizeof(addrs[i].sa))
			__builtin_trap();
	if (n == 0 && why == NULL)
		__builtin_trap();	/* no address must say why */
	if (getenv("FUZZ_DNS_VERBOSE") != NULL)	/* to check the seeds */
		fprintf(stderr, "lookup: %d address(es), first %s service %d; %s\n", n,
		    n > 0 ? addrs[0].text : "-", n > 0 ? addrs[0].service : -1,
		    why ? why : "");
	fuzz_done = 1;
}

/* Answer every query waiting at the server from the input; 0 when none. */
static int
fuzz_answer(int srv, const uint8_t **data, size_t *size)
{
	unsigned char q[600], a[1024];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;
	size_t len, qend;
	int answered = 0;

	for (;;) {
		fl = sizeof(from);
		n = recvfrom(srv, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 12)
			return answered;
		/* the question ends after its name's root label and 4 bytes */
		for (qend = 12; qend < (size_t)n && q[qend] != 0; qend += q[qend] + 1u)
			;
		qend += 5;
		if (qend > (size_t)n || *size < 9)
			continue;	/* no input left: this query is never answered */
		memcpy(a, q, 2);
		memcpy(a + 2, *data, 2);		/* flags, rcode */
		a[4] = 0;
		a[5] = 1;
		memcpy(a + 6, *data + 2, 6);		/* an, ns, ar counts */
		len = (*data)[8];
		*data += 9;
		*size -= 9;
		if (len > *size)
			len = *size;
		memcpy(a + 12, q + 12, qend - 12);
		if (qend + len > sizeof(a))
			len = sizeof(a) - qend;
		memcpy(a + qend, *data, len);
		*data += len;
		*size -= len;
		(void)sendto(srv, a, qend + len, 0, (struct sockaddr *)&from, fl);
		answered++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int srv = -1;
	static struct plug_dns_server server;
	struct plug_dns_req req = {
		.host = &fuzz_host,
		.domain = "example.com",
		.services = { "_sips._tcp", "_sip._tcp", "_sip._udp" },
		.nservices = 3,
		.default_port = 5060,
		.what = "SIP",
	};
	struct plug_dns *d;
	int round;

	if (srv == -1) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);
		char spec[64];

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		srv = socket(AF_INET, SOCK_DGRAM, 0);
		if (srv == -1 || bind(srv, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(srv, (struct sockaddr *)&sin, &sl) == -1)
			__builtin_trap();
		snprintf(spec, sizeof(spec), "127.0.0.1:%u", ntohs(sin.sin_port));
		if (plug_dns_server_init(&server, spec) == -1)
			__builtin_trap();
	}
	req.server = &server;
	if (size > 0 && (data[0] & 1)) {
		req.naptr[0] = "SIPS+D2T";
		req.naptr[1] = "SIP+D2T";
		req.naptr[2] = "SIP+D2U";
	}
	if (size > 0) {
		data++;
		size--;
	}
	fuzz_done = 0;
	if ((d = plug_dns_start(&req, fuzz_dns_cb, NULL)) == NULL)
		return 0;
	for (round = 0; round < 12 && !fuzz_done; round++) {
		if (fuzz_answer(srv, &data, &size) > 0) {
			/* the answers are in the client's socket: read them */
			usleep(0);
			if (fuzz_wcb != NULL)
				fuzz_wcb(fuzz_wfd, IMGW_WATCH_READ, fuzz_warg);
		} else if (fuzz_tcb != NULL) {
			imgw_timer_cb cb = fuzz_tcb;

			fuzz_tcb = NULL;	/* fired: dns.c sets a new one */
			cb(fuzz_targ);
		}
	}
	if (!fuzz_done)
		plug_dns_cancel(d);
	while (recv(srv, (char[600]){ 0 }, 600, MSG_DONTWAIT) > 0)
		;		/* queries nobody answered */
	return 0;
}
