/*
 * jsonl-load: end-to-end load for imgwd through two jsonl communities.
 *
 * A sender connection binds FROM and writes message lines to TO; a
 * receiver connection (on the other community) binds TO and reads what
 * imgwd delivers.  One thread, non-blocking sockets and poll: writing and
 * reading go on in parallel.  Every message's id is "SEQ.NS", NS being
 * CLOCK_MONOTONIC nanoseconds when the line was handed to write(); the
 * receiver turns it into a latency.
 *
 *   jsonl-load -s tcp:HOST:PORT -r tcp:HOST:PORT [-n COUNT] [-R RATE]
 *              [-f FROM] [-t TO] [-b BODY_BYTES] [-T TICK_US] [-w SECONDS]
 *
 * Without -R the sender writes as fast as the socket takes lines (flat
 * out); with -R it sends RATE messages per second, paced in ticks of
 * TICK_US microseconds.  Figures only: nothing here fails on timing.
 * Error lines imgwd sends back to the sender (e.g. resource-constraint
 * when a queue is full) are counted, and a message that never arrives is
 * reported as lost once the receiver has been idle for -w seconds.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#define LOAD_BUF	(1 << 20)

struct load_conn {
	int fd;
	char *in;		/* bytes read, not yet a full line */
	size_t in_len;
	char *out;		/* out[out_off..out_len) waits to be written */
	size_t out_off, out_len;
};

static uint64_t
load_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
load_die(const char *what)
{
	fprintf(stderr, "jsonl-load: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* tcp:HOST:PORT or unix:/PATH, connected and non-blocking. */
static int
load_connect(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char host[256];
	const char *port;
	int fd, one = 1;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		if (strlen(addr + 5) >= sizeof(sun.sun_path)) {
			fprintf(stderr, "jsonl-load: %s: path too long\n", addr);
			exit(1);
		}
		strcpy(sun.sun_path, addr + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			load_die("socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			load_die(addr);
	} else if (strncmp(addr, "tcp:", 4) == 0 &&
	    (port = strrchr(addr + 4, ':')) != NULL &&
	    (size_t)(port - addr - 4) < sizeof(host)) {
		memcpy(host, addr + 4, port - addr - 4);
		host[port - addr - 4] = '\0';
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strcspn(host, "]")] = '\0';
		}
		if (getaddrinfo(host, port + 1, &hints, &res) != 0) {
			fprintf(stderr, "jsonl-load: cannot resolve %s\n", addr);
			exit(1);
		}
		if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) < 0)
			load_die("socket");
		if (connect(fd, res->ai_addr, res->ai_addrlen) < 0)
			load_die(addr);
		freeaddrinfo(res);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		fprintf(stderr, "jsonl-load: bad address %s (tcp:HOST:PORT or "
		    "unix:/PATH)\n", addr);
		exit(1);
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		load_die("fcntl");
	return fd;
}

static void
load_conn_init(struct load_conn *c, const char *addr)
{
	c->fd = load_connect(addr);
	c->in = malloc(LOAD_BUF);
	c->out = malloc(LOAD_BUF);
	if (c->in == NULL || c->out == NULL)
		load_die("malloc");
	c->in_len = c->out_off = c->out_len = 0;
}

/* Write what is pending; 0, or -1 when the peer is gone. */
static int
load_flush(struct load_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return 0;
}

/* Read and hand every complete line to line_cb; -1 on EOF or error. */
static int
load_read(struct load_conn *c, void (*line_cb)(char *line, size_t len, void *),
    void *arg)
{
	char *p, *nl;
	ssize_t n;
	size_t left;

	for (;;) {
		if (c->in_len == LOAD_BUF) {
			fprintf(stderr, "jsonl-load: line longer than %d bytes\n",
			    LOAD_BUF);
			exit(1);
		}
		n = read(c->fd, c->in + c->in_len, LOAD_BUF - c->in_len);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->in_len += (size_t)n;
		p = c->in;
		left = c->in_len;
		while ((nl = memchr(p, '\n', left)) != NULL) {
			*nl = '\0';
			line_cb(p, (size_t)(nl - p), arg);
			left -= (size_t)(nl + 1 - p);
			p = nl + 1;
		}
		memmove(c->in, p, left);
		c->in_len = left;
	}
}

/* Wait for a line containing `want` on c (setup answers), 5 s at most. */
static void
load_expect(struct load_conn *c, const char *want)
{
	uint64_t deadline = load_now_ns() + 5000000000ull;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	char *nl;
	ssize_t n;

	while (load_now_ns() < deadline) {
		if (load_flush(c) < 0)
			load_die("write");
		pfd.events = POLLIN | (c->out_len ? POLLOUT : 0);
		poll(&pfd, 1, 100);
		n = read(c->fd, c->in + c->in_len, LOAD_BUF - c->in_len - 1);
		if (n == 0)
			break;
		if (n > 0)
			c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		while ((nl = strchr(c->in, '\n')) != NULL) {
			*nl = '\0';
			if (strstr(c->in, want) != NULL) {
				c->in_len -= (size_t)(nl + 1 - c->in);
				memmove(c->in, nl + 1, c->in_len);
				return;
			}
			fprintf(stderr, "jsonl-load: unexpected line: %s\n", c->in);
			c->in_len -= (size_t)(nl + 1 - c->in);
			memmove(c->in, nl + 1, c->in_len);
			c->in[c->in_len] = '\0';
		}
	}
	fprintf(stderr, "jsonl-load: no answer containing %s\n", want);
	exit(1);
}

static void
load_send(struct load_conn *c, const char *line)
{
	size_t n = strlen(line);

	memcpy(c->out + c->out_len, line, n);
	c->out_len += n;
}

/* ---- the run ---------------------------------------------------------------- */

struct load_stats {
	uint64_t n;		/* messages to send */
	uint64_t sent, received, errors, bad, dup;
	uint32_t *lat_us;	/* per received message, in arrival order */
	unsigned char *seen;
	uint64_t first_send_ns, last_recv_ns;
	char first_error[256];
};

static void
load_recv_line(char *line, size_t len, void *arg)
{
	struct load_stats *st = arg;
	unsigned long long seq, ts;
	uint64_t now;
	char *p;

	if ((p = strstr(line, "\"id\":\"")) == NULL ||
	    sscanf(p + 6, "%llu.%llu", &seq, &ts) != 2 || seq >= st->n) {
		st->bad++;
		if (st->bad == 1)
			fprintf(stderr, "jsonl-load: receiver got: %.200s\n", line);
		return;
	}
	if (st->seen[seq]) {
		st->dup++;
		return;
	}
	st->seen[seq] = 1;
	now = load_now_ns();
	st->last_recv_ns = now;
	st->lat_us[st->received++] = (uint32_t)((now - ts) / 1000 > UINT32_MAX
	    ? UINT32_MAX : (now - ts) / 1000);
}

static void
load_sender_line(char *line, size_t len, void *arg)
{
	struct load_stats *st = arg;

	if (strstr(line, "\"type\":\"error\"") != NULL) {
		if (st->errors++ == 0)
			snprintf(st->first_error, sizeof(st->first_error), "%s",
			    line);
	}
}

static int
load_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
load_pct(const uint32_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (n == 0)
		return 0;
	i = (uint64_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static void
load_usage(void)
{
	fprintf(stderr, "usage: jsonl-load -s SENDER_ADDR -r RECEIVER_ADDR "
	    "[-n COUNT] [-R RATE] [-f FROM] [-t TO]\n"
	    "                  [-b BODY_BYTES] [-T TICK_US] [-w IDLE_S] "
	    "[-l LABEL]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *saddr = NULL, *raddr = NULL, *label = NULL;
	const char *from = "alice@corp.example", *to = "bob@partner.example";
	struct load_conn snd, rcv;
	struct load_stats st = { .n = 1000000 };
	uint64_t rate = 0, tick_us = 200, idle_s = 5, body_len = 64;
	uint64_t t0, now, due, last_progress, progress = 0, max_lag = 0, cpu0;
	char *body, line[4096];
	struct pollfd pfd[2];
	struct timespec ts, tcpu;
	double secs, cpu;
	int c, timeout_ms;

	while ((c = getopt(argc, argv, "s:r:n:R:f:t:b:T:w:l:")) != -1) {
		switch (c) {
		case 's': saddr = optarg; break;
		case 'r': raddr = optarg; break;
		case 'n': st.n = strtoull(optarg, NULL, 10); break;
		case 'R': rate = strtoull(optarg, NULL, 10); break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'b': body_len = strtoull(optarg, NULL, 10); break;
		case 'T': tick_us = strtoull(optarg, NULL, 10); break;
		case 'w': idle_s = strtoull(optarg, NULL, 10); break;
		case 'l': label = optarg; break;
		default: load_usage();
		}
	}
	if (saddr == NULL || raddr == NULL || st.n == 0 || body_len > 2048 ||
	    tick_us == 0)
		load_usage();
	if ((body = malloc(body_len + 1)) == NULL ||
	    (st.lat_us = calloc(st.n, sizeof(*st.lat_us))) == NULL ||
	    (st.seen = calloc(st.n, 1)) == NULL)
		load_die("malloc");
	memset(body, 'x', body_len);
	body[body_len] = '\0';

	load_conn_init(&rcv, raddr);
	load_conn_init(&snd, saddr);
	snprintf(line, sizeof(line), "{\"type\":\"bind\",\"user\":\"%s\"}\n", to);
	load_send(&rcv, line);
	load_expect(&rcv, "\"bound\"");
	snprintf(line, sizeof(line), "{\"type\":\"bind\",\"user\":\"%s\"}\n", from);
	load_send(&snd, line);
	load_expect(&snd, "\"bound\"");

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &tcpu);
	cpu0 = (uint64_t)tcpu.tv_sec * 1000000000ull + (uint64_t)tcpu.tv_nsec;
	t0 = st.first_send_ns = last_progress = load_now_ns();
	for (;;) {
		now = load_now_ns();
		/* how many lines are due: all of them flat out, else by rate
		 * (a tick's worth at a time) */
		due = rate == 0 ? st.n
		    : (uint64_t)((double)(now - t0) * rate / 1e9) + 1;
		if (due > st.n)
			due = st.n;
		if (rate != 0 && due > st.sent + 1 && (due - st.sent) * 1e9 /
		    rate > max_lag)
			max_lag = (uint64_t)((due - st.sent) * 1e9 / rate);
		while (st.sent < due && snd.out_len + 4096 < LOAD_BUF) {
			int n = snprintf(line, sizeof(line), "{\"type\":\"message\","
			    "\"from\":\"%s\",\"to\":\"%s\",\"id\":\"%llu.%llu\","
			    "\"body\":\"%s\"}\n", from, to,
			    (unsigned long long)st.sent,
			    (unsigned long long)now, body);

			memcpy(snd.out + snd.out_len, line, (size_t)n);
			snd.out_len += (size_t)n;
			st.sent++;
			if (rate == 0 && snd.out_len > 256 * 1024)
				break;	/* flat out: write in 256 KiB chunks */
		}
		if (load_flush(&snd) < 0)
			load_die("write to sender connection");
		if (load_read(&rcv, load_recv_line, &st) < 0) {
			fprintf(stderr, "jsonl-load: receiver connection closed\n");
			break;
		}
		if (load_read(&snd, load_sender_line, &st) < 0) {
			fprintf(stderr, "jsonl-load: sender connection closed\n");
			break;
		}
		now = load_now_ns();
		if (st.received + st.errors >= st.n)
			break;
		if (st.sent + st.received + st.errors + snd.out_off != progress) {
			progress = st.sent + st.received + st.errors + snd.out_off;
			last_progress = now;
		} else if (now - last_progress > idle_s * 1000000000ull) {
			break;	/* idle: the rest is lost */
		}

		pfd[0] = (struct pollfd){ .fd = snd.fd, .events = POLLIN |
		    (snd.out_len > 0 ? POLLOUT : 0) };
		pfd[1] = (struct pollfd){ .fd = rcv.fd, .events = POLLIN };
		if (rate != 0 && st.sent < st.n) {
			/* wake up for the next tick */
			ts.tv_sec = 0;
			ts.tv_nsec = (long)tick_us * 1000;
			timeout_ms = -2;
		} else {
			timeout_ms = 100;
		}
		if (timeout_ms == -2) {
			if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR)
				load_die("ppoll");
		} else if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR) {
			load_die("poll");
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &tcpu);
	cpu = ((double)tcpu.tv_sec * 1e9 + tcpu.tv_nsec - cpu0) / 1e9;

	secs = ((st.last_recv_ns ? st.last_recv_ns : load_now_ns()) -
	    st.first_send_ns) / 1e9;
	qsort(st.lat_us, st.received, sizeof(*st.lat_us), load_cmp_u32);
	printf("%s%s%s sent %llu, received %llu, errors back %llu, lost %llu "
	    "in %.3f s: %.0f msg/s end to end",
	    label ? "[" : "", label ? label : "", label ? "]" : "",
	    (unsigned long long)st.sent, (unsigned long long)st.received,
	    (unsigned long long)st.errors,
	    (unsigned long long)(st.sent - st.received - st.errors),
	    secs, secs > 0 ? st.received / secs : 0.0);
	if (rate != 0)
		printf(" (target %llu/s)", (unsigned long long)rate);
	printf("\n%s%s%s latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
	    "max %.3f;  load generator CPU %.2f s",
	    label ? "[" : "", label ? label : "", label ? "]" : "",
	    load_pct(st.lat_us, st.received, 0.50),
	    load_pct(st.lat_us, st.received, 0.90),
	    load_pct(st.lat_us, st.received, 0.99),
	    load_pct(st.lat_us, st.received, 0.999),
	    st.received ? st.lat_us[st.received - 1] / 1000.0 : 0.0, cpu);
	if (rate != 0)
		printf(", max pacing lag %.3f ms", max_lag / 1e6);
	printf("\n");
	if (st.errors)
		printf("first error line: %s\n", st.first_error);
	if (st.bad || st.dup)
		printf("unparsed lines %llu, duplicates %llu\n",
		    (unsigned long long)st.bad, (unsigned long long)st.dup);
	close(snd.fd);
	close(rcv.fd);
	return 0;
}
