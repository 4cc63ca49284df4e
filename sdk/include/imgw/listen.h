/*
 * imgw connector SDK — listen addresses.
 *
 * The forms an IMGW_OPT_LISTEN option takes (the core accepts tcp: and
 * unix:), and that a connector with transports of its own (udp:, tls:)
 * writes the same way:
 *   SCHEME:HOST:PORT   HOST as written: a numeric address, "*" or empty
 *                      for any, "localhost", or (for the core's check) a
 *                      name; PORT decimal, 0..65535 (0: the kernel picks)
 *   SCHEME:[V6]:PORT   an IPv6 address in brackets
 *   unix:/PATH         an absolute path
 * These inline helpers only look at the string: they allocate nothing and
 * resolve no names (resolving would block the core's loop).  The parts
 * point into the string given; it is borrowed for as long as they are used.
 */
#ifndef IMGW_LISTEN_H
#define IMGW_LISTEN_H

#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct imgw_listen_parts {
	const char *scheme;	/* "tcp", "unix", ...; not NUL-terminated */
	size_t scheme_len;
	const char *host;	/* without brackets, may be empty; not
				 * NUL-terminated; NULL for unix: */
	size_t host_len;
	int bracketed;		/* HOST was written [V6] */
	unsigned port;
	const char *path;	/* unix: the path, else NULL */
};

/* "PORT": decimal digits, 0..65535, into *port_r.  Returns 0 or -1. */
static inline int
imgw_listen_port(const char *s, unsigned *port_r)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	*port_r = (unsigned)v;
	return 0;
}

/*
 * "HOST:PORT" or "[V6]:PORT" (what follows "SCHEME:") into p's host,
 * host_len, bracketed and port.  Returns 0 or -1.
 */
static inline int
imgw_listen_hostport(const char *hp, struct imgw_listen_parts *p)
{
	const char *colon, *end;

	p->bracketed = 0;
	if (*hp == '[') {
		if ((end = strchr(hp, ']')) == NULL || end[1] != ':')
			return -1;
		hp++;
		colon = end + 1;
		p->bracketed = 1;
	} else {
		if ((colon = strrchr(hp, ':')) == NULL)
			return -1;
		end = colon;
	}
	p->host = hp;
	p->host_len = (size_t)(end - hp);
	return imgw_listen_port(colon + 1, &p->port);
}

/*
 * Split "SCHEME:HOST:PORT", "SCHEME:[V6]:PORT" or "unix:/PATH" into *p.
 * Returns 0, or -1 when it has none of these forms (a unix: path that is
 * not absolute included).  The scheme is not checked: see imgw_listen_is.
 */
static inline int
imgw_listen_split(const char *spec, struct imgw_listen_parts *p)
{
	const char *colon = strchr(spec, ':');

	memset(p, 0, sizeof(*p));
	if (colon == NULL || colon == spec)
		return -1;
	p->scheme = spec;
	p->scheme_len = (size_t)(colon - spec);
	if (p->scheme_len == 4 && memcmp(spec, "unix", 4) == 0) {
		p->path = colon + 1;
		return p->path[0] == '/' ? 0 : -1;
	}
	return imgw_listen_hostport(colon + 1, p);
}

/* Non-zero when p's scheme is `scheme` ("tcp", "unix", ...). */
static inline int
imgw_listen_is(const struct imgw_listen_parts *p, const char *scheme)
{
	return p->scheme_len == strlen(scheme) &&
	    memcmp(p->scheme, scheme, p->scheme_len) == 0;
}

/*
 * The socket address of p's HOST and port, for bind or connect: [V6] as
 * IPv6, "*" or empty as any IPv4 address, "localhost" as 127.0.0.1, else
 * a numeric IPv4 address (names are refused, not resolved).  Fills *ss
 * and *len_r; returns 0 or -1.
 */
static inline int
imgw_listen_inet(const struct imgw_listen_parts *p,
    struct sockaddr_storage *ss, socklen_t *len_r)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 1];

	if (p->host == NULL || p->host_len >= sizeof(host))
		return -1;
	memcpy(host, p->host, p->host_len);
	host[p->host_len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (p->bracketed) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((in_port_t)p->port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		*len_r = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((in_port_t)p->port);
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	*len_r = sizeof(*sin);
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* IMGW_LISTEN_H */
