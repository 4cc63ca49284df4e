/*
 * Transport specs and trusted networks.
 *
 *   udp:HOST:PORT  tcp:HOST:PORT  tls:HOST:PORT  (HOST numeric, [V6] in
 *   brackets, "*" for any IPv4 address, or "localhost"; next hops of
 *   routes may name a DNS host, resolved later by resolve.c)
 *   NET/BITS or a plain address (a host network)
 *
 * Nothing here resolves names: it runs in init, and resolving would block
 * the core's loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <imgw/listen.h>

#include "sipstack-internal.h"

/* "HOST:PORT" (or "[V6]:PORT") into ta with the given proto. */
int
sip_net_hostport(const char *hp, int proto, struct sip_taddr *ta)
{
	struct imgw_listen_parts lp;

	if (imgw_listen_hostport(hp, &lp) == -1 ||
	    lp.host_len >= INET6_ADDRSTRLEN + 1)
		return -1;
	memset(ta, 0, sizeof(*ta));
	ta->proto = proto;
	return imgw_listen_inet(&lp, &ta->ss, &ta->len);
}

int
sip_net_taddr(const char *spec, struct sip_taddr *ta, const char **why_r)
{
	int proto;

	if (strncmp(spec, "udp:", 4) == 0)
		proto = SIP_PROTO_UDP;
	else if (strncmp(spec, "tcp:", 4) == 0)
		proto = SIP_PROTO_TCP;
	else if (strncmp(spec, "tls:", 4) == 0)
		proto = SIP_PROTO_TLS;
	else {
		*why_r = "want udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT";
		return -1;
	}
	if (sip_net_hostport(spec + 4, proto, ta) == -1) {
		*why_r = "HOST must be a numeric address, [IPV6], * or localhost, "
		    "PORT 0..65535";
		return -1;
	}
	return 0;
}

/* Non-zero when s[0..n) is a DNS host name: labels of letters, digits
 * and '-' (1..63 bytes, no '-' at either end), 253 bytes at most, and a
 * last label that is not all digits (so a mistyped address is not taken
 * for a name). */
static int
sip_net_is_name(const char *s, size_t n)
{
	size_t i, lab = 0;
	int alpha = 0;

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			alpha = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && lab > 0)))
			return 0;
		if (++lab > 63)
			return 0;
		alpha |= !(s[i] >= '0' && s[i] <= '9');
	}
	return alpha && s[n - 1] != '-';
}

int
sip_net_nexthop(const char *spec, struct sip_nexthop *nh, const char **why_r)
{
	struct imgw_listen_parts lp;

	memset(nh, 0, sizeof(*nh));
	if (sip_net_taddr(spec, &nh->ta, why_r) == 0) {
		nh->proto = nh->ta.proto;
		if (imgw_listen_hostport(spec + 4, &lp) == 0) {
			if (lp.host_len < sizeof(nh->host))
				memcpy(nh->host, lp.host, lp.host_len);
			nh->port = (int)lp.port;
		}
		return 0;
	}
	if (strncmp(spec, "udp:", 4) != 0 && strncmp(spec, "tcp:", 4) != 0 &&
	    strncmp(spec, "tls:", 4) != 0)
		return -1;	/* why_r says so */
	memset(&nh->ta, 0, sizeof(nh->ta));
	if (imgw_listen_hostport(spec + 4, &lp) == -1 || lp.bracketed ||
	    !sip_net_is_name(lp.host, lp.host_len) || lp.port == 0) {
		*why_r = "HOST must be a numeric address, [IPV6] or a DNS name, "
		    "PORT 1..65535";
		return -1;
	}
	nh->proto = spec[1] == 'd' ? SIP_PROTO_UDP : spec[2] == 'p' ? SIP_PROTO_TCP :
	    SIP_PROTO_TLS;
	nh->port = (int)lp.port;
	memcpy(nh->host, lp.host, lp.host_len);
	nh->ta.proto = nh->proto;
	return 0;
}

int
sip_net_cidr(const char *spec, struct sip_net *n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(spec, '/');
	size_t len = slash ? (size_t)(slash - spec) : strlen(spec);
	unsigned bits, max;
	char *end;
	unsigned long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, spec, len);
	buf[len] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	bits = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		v = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || v > max)
			return -1;
		bits = (unsigned)v;
	}
	n->bits = bits;
	return 0;
}

static int
sip_net_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Non-zero when sa is inside one of nets.  An IPv4-mapped IPv6 source
 * is compared as IPv4. */
int
sip_net_match(const struct sip_net *nets, size_t n, const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned char v4[4];
	int family = sa->sa_family;
	size_t i;

	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			memcpy(v4, a + 12, 4);
			a = v4;
			family = AF_INET;
		}
	} else {
		return 0;
	}
	for (i = 0; i < n; i++)
		if (nets[i].family == family &&
		    sip_net_prefix_eq(nets[i].addr, a, nets[i].bits))
			return 1;
	return 0;
}

int
sip_net_ntop(const struct sockaddr *sa, char *buf, size_t len, int *port_r)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &s->sin_addr, buf, (socklen_t)len) == NULL)
			return -1;
		*port_r = ntohs(s->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &s->sin6_addr, buf, (socklen_t)len) == NULL)
			return -1;
		*port_r = ntohs(s->sin6_port);
		return 0;
	}
	return -1;
}

int
sip_net_same(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/*
 * Where a request to URI u goes (RFC 3263 4.1, 4.2 for what needs no
 * lookup): the transport parameter, TLS for sips:, else UDP; the port,
 * else 5060 (5061 over TLS).  1 with *ta filled when the host is numeric;
 * 0 when it is a name (ta->proto and *port_r, 0 without a port, are set;
 * the caller looks the name up); -1 when u has no usable host.
 */
int
sip_net_uri(const osip_uri_t *u, struct sip_taddr *ta, int *port_r)
{
	osip_uri_param_t *tp = NULL;
	char hp[SIP_HOST_MAX + 16];
	int proto = SIP_PROTO_UDP, port;

	*port_r = 0;
	if (u == NULL || u->host == NULL || u->host[0] == '\0' ||
	    strlen(u->host) >= SIP_HOST_MAX)
		return -1;
	if (u->scheme != NULL && strcasecmp(u->scheme, "sips") == 0)
		proto = SIP_PROTO_TLS;
	if (osip_uri_param_get_byname((osip_list_t *)&u->url_params, "transport",
	    &tp) == 0 && tp != NULL && tp->gvalue != NULL)
		proto = strcasecmp(tp->gvalue, "tcp") == 0 ? SIP_PROTO_TCP :
		    strcasecmp(tp->gvalue, "tls") == 0 ? SIP_PROTO_TLS : proto;
	port = u->port ? atoi(u->port) : proto == SIP_PROTO_TLS ? 5061 : 5060;
	if (port <= 0 || port > 65535)
		return -1;
	snprintf(hp, sizeof(hp), strchr(u->host, ':') ? "[%s]:%d" : "%s:%d",
	    u->host, port);
	if (sip_net_hostport(hp, proto, ta) == 0)
		return 1;
	memset(ta, 0, sizeof(*ta));
	ta->proto = proto;
	*port_r = u->port ? port : 0;
	return 0;
}
