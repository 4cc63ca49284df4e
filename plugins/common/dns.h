/*
 * plug_dns — an asynchronous DNS client for connectors (plugins/common,
 * the convenience library libimgwplug.la linked into connectors that need
 * it, never into the core).
 *
 * The SDK has no resolver and getaddrinfo/res_query block the loop, so
 * this is a small DNS client over UDP on the core's loop (host table
 * socket watches and timers): optionally NAPTR first (RFC 3403, as RFC
 * 3263 4.1 uses it), SRV lookups ordered as RFC 2782 says, then A and
 * AAAA of the targets.  Users: the XMPP connector (s2s, RFC 6120 3.2:
 * one service, _xmpp-server._tcp) and sipstack (RFC 3263 4.1: NAPTR, then
 * SRV of _sips._tcp, _sip._tcp and _sip._udp in the client's preference
 * order).  A lookup with no service is a plain A/AAAA lookup of a host.
 *
 * Everything runs on the core's loop thread.
 */
#ifndef IMGW_PLUG_DNS_H
#define IMGW_PLUG_DNS_H

#include <sys/socket.h>

#include <imgw/imgw.h>

#define PLUG_DNS_ADDRS_MAX	16	/* addresses handed to the callback */
#define PLUG_DNS_SERVICES_MAX	4	/* SRV names asked in one lookup */
#define PLUG_DNS_NAME_MAX	255	/* a DNS name, bytes */

/* The server lookups go to: numeric address and port, and its text. */
struct plug_dns_server {
	struct sockaddr_storage addr;
	socklen_t len;
	char text[80];			/* "127.0.0.1 port 53" */
};

/* One address to try: socket address with the port of its SRV record
 * (or the default port), which service it came from, its text. */
struct plug_dns_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	int service;			/* index into the request's services; -1:
					 * no SRV record, the domain itself */
	unsigned ttl;			/* seconds: min of the SRV and address TTLs */
	char text[200];			/* host[address]:port */
};

/*
 * The end of a lookup: n addresses in the order to try them (SRV priority
 * and weight, A before AAAA), or n = 0 and why (a sentence naming the
 * server).  Both borrowed for the call.  The lookup is freed after it.
 */
typedef void (*plug_dns_cb)(void *arg, const struct plug_dns_addr *addrs, int n,
    const char *why);

struct plug_dns_req {
	const struct imgw_host *host;		/* borrowed for the lookup's life */
	struct imgw_instance *inst;		/* borrowed for the lookup's life */
	const struct plug_dns_server *server;	/* borrowed for the lookup's life */
	const char *domain;			/* copied */
	/* SRV names without the domain ("_sip._udp"), in the caller's order
	 * of preference; all are asked at once and the first one that has
	 * records gives the targets.  Copied.  nservices 0: A/AAAA only. */
	const char *services[PLUG_DNS_SERVICES_MAX];
	int nservices;
	unsigned short default_port;	/* no SRV record: the domain on this port */
	const char *what;		/* "server-to-server", for the "." message */
	/* NAPTR service tags ("SIP+D2U"), one per entry of services, NULL:
	 * that service has none.  When any is set the domain's NAPTR records
	 * are asked first: those with flag "s" and one of these tags, in
	 * order then preference, name the SRV records to ask (their
	 * addresses carry the index of the matching service); without such
	 * records the services are asked as above.  Copied. */
	const char *naptr[PLUG_DNS_SERVICES_MAX];
};

/* One NAPTR record (RFC 3403 4.1) as it came, text fields NUL-ended. */
struct plug_dns_naptr {
	unsigned short order, pref;
	unsigned ttl;
	char flags[16];
	char services[64];
	char replacement[PLUG_DNS_NAME_MAX + 1];	/* "." when none */
};

/*
 * The NAPTR records in the answer section of the DNS message pkt (len
 * bytes, untrusted) into out, at most max, in the message's order.  A
 * record whose RDATA does not parse within its RDLENGTH (character
 * strings overrunning it, a bad name, fields too long for out) is
 * skipped.  Returns how many, or -1 when the message does not parse.
 */
int plug_dns_naptr_parse(const unsigned char *pkt, size_t len,
    struct plug_dns_naptr *out, int max);

/* Parse `spec` (numeric HOST[:PORT] or [IPV6]:PORT); NULL: the first
 * nameserver of /etc/resolv.conf, else 127.0.0.1.  0, or -1 when spec is
 * bad (srv is then unchanged). */
int plug_dns_server_init(struct plug_dns_server *srv, const char *spec);

/*
 * Start a lookup.  Returns it, owned by plug_dns until `cb` ran (later,
 * from the loop; never from inside this call) or plug_dns_cancel; NULL
 * when it cannot even start (a socket error, logged; a name too long).
 */
struct plug_dns *plug_dns_start(const struct plug_dns_req *req, plug_dns_cb cb,
    void *arg);

/* Abandon a lookup; its callback never runs.  NULL is fine. */
void plug_dns_cancel(struct plug_dns *d);

#endif /* IMGW_PLUG_DNS_H */
