/*
 * UDP sockets and the send path of every transport.
 *
 * A datagram is one message (RFC 3261 18.3).  One larger than
 * max-message is read with MSG_TRUNC so its real size is known, and
 * answered 513 from its head when the head parses.
 *
 * ICMP errors (Linux IP_RECVERR/IPV6_RECVERR): a port or host that is
 * unreachable makes the kernel queue the error with the address the
 * datagram went to; the client transactions to that address fail at once
 * as a transport error (503, hops.c then tries the next address) instead
 * of waiting 32 s for timer F.  Forged ICMP can only hurry that along.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#ifdef __linux__
#include <linux/errqueue.h>
#endif

#include "sipstack-internal.h"

/* The client transactions over UDP to dst fail: a transport error. */
static void
sip_tp_udp_unreachable(struct sip_stack *st, const struct sockaddr_storage *dst,
    socklen_t len)
{
	struct sip_tx *tx;

	for (tx = st->txs; tx != NULL; tx = tx->next) {
		if (tx->kind != SIP_TX_CLIENT || tx->proto != SIP_PROTO_UDP || tx->done ||
		    tx->dead || !sip_net_same(&tx->peer, tx->peerlen, dst, len))
			continue;
		SIP_COUNT(st, "sip-transport-errors");
		SIP_LOG(st, IMGW_LOG_INFO, "%s: unreachable (ICMP)", tx->peer_text);
		tx->done = 1;
		if (tx->cb != NULL)
			tx->cb(tx->cbarg, 503, NULL);
	}
}

/* Read (and so free) the socket's queued errors, acting on ICMP
 * unreachables; every queued error must be read, as the queue takes from
 * the receive buffer.  Returns how many were read. */
static int
sip_tp_udp_errors(struct sip_stack *st, int fd)
{
#ifdef __linux__
	struct sockaddr_storage dst;
	char cbuf[512], dummy[64];
	struct iovec iov = { .iov_base = dummy, .iov_len = sizeof(dummy) };
	struct msghdr mh;
	struct cmsghdr *cm;
	const struct sock_extended_err *ee;
	int i;

	for (i = 0; i < SIP_READS_PER_CB; i++) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_name = &dst;
		mh.msg_namelen = sizeof(dst);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		if (recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return i;
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
			if (!((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
			    (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			ee = (const struct sock_extended_err *)(const void *)CMSG_DATA(cm);
			if ((ee->ee_origin == SO_EE_ORIGIN_ICMP ||
			    ee->ee_origin == SO_EE_ORIGIN_ICMP6) && mh.msg_namelen > 0 &&
			    (ee->ee_errno == ECONNREFUSED || ee->ee_errno == EHOSTUNREACH ||
			    ee->ee_errno == ENETUNREACH))
				sip_tp_udp_unreachable(st, &dst, mh.msg_namelen);
		}
	}
	return i;
#else
	(void)st;
	(void)fd;
	return 0;
#endif
}

static void
sip_tp_udp_cb(int fd, int what, void *arg)
{
	struct sip_stack *st = arg;
	struct sockaddr_storage src;
	socklen_t srclen;
	ssize_t n;
	int i;

	(void)what;
	for (i = 0; i < SIP_READS_PER_CB && !st->stopping; i++) {
		srclen = sizeof(src);
		n = recvfrom(fd, st->rbuf, st->cfg.max_message + 1, MSG_TRUNC,
		    (struct sockaddr *)&src, &srclen);
		/* IP_RECVERR: an error (ICMP mostly) was queued and reported */
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    sip_tp_udp_errors(st, fd) > 0)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				SIP_LOG(st, IMGW_LOG_WARNING, "udp receive: %s",
				    strerror(errno));
			break;
		}
		SIP_COUNT(st, "sip-datagrams-in");
		if ((size_t)n > st->cfg.max_message) {
			sip_in_refuse_head(st, SIP_PROTO_UDP, st->rbuf,
			    st->cfg.max_message, &src, srclen, 0, 513);
			continue;
		}
		sip_in_message(st, SIP_PROTO_UDP, st->rbuf, (size_t)n, &src,
		    srclen, 0);
	}
	sip_stack_settle(st);
}

int
sip_tp_open_udp(struct sip_stack *st, const struct sip_taddr *ta)
{
	struct sip_udp *u;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64];
	int fd, one = 1, size = 1 << 20, port = 0;

	if (st->nudp >= SIP_MAX_LISTEN)
		return -1;
	u = &st->udp[st->nudp];
	fd = socket(ta->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
#ifdef __linux__
	if (ta->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	else
		(void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
#endif
	if (bind(fd, (const struct sockaddr *)&ta->ss, ta->len) == -1)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		(void)sip_net_ntop((struct sockaddr *)&ss, host, sizeof(host), &port);
	u->fd = fd;
	u->family = ta->ss.ss_family;
	u->w = st->cfg.host->watch_add(st->cfg.inst, fd, IMGW_WATCH_READ,
	    sip_tp_udp_cb, st);
	if (u->w == NULL)
		goto fail;
	st->nudp++;
	if (st->bound_port == 0)
		st->bound_port = port;
	if (st->proto_port[SIP_PROTO_UDP] == 0)
		st->proto_port[SIP_PROTO_UDP] = port;
	SIP_LOG(st, IMGW_LOG_INFO, "listening on udp:%s:%d", host, port);
	return 0;
fail:
	SIP_LOG(st, IMGW_LOG_ERR, "cannot listen on UDP: %s", strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

void
sip_tp_close(struct sip_stack *st)
{
	size_t i;

	for (i = 0; i < st->nudp; i++) {
		st->cfg.host->watch_del(st->udp[i].w);
		close(st->udp[i].fd);
	}
	st->nudp = 0;
	for (i = 0; i < st->ntcpl; i++) {
		st->cfg.host->watch_del(st->tcpl[i].w);
		close(st->tcpl[i].fd);
	}
	st->ntcpl = 0;
	sip_tcp_close_all(st);
}

/*
 * Send buf.  UDP from the first socket of the destination's family; TCP
 * over connection *conn_id when it still exists, else (conn_id NULL or 0)
 * over one to dst, opened if needed; *conn_id is then set.
 */
int
sip_tp_send(struct sip_stack *st, int proto, uint64_t *conn_id,
    const struct sockaddr_storage *dst, socklen_t dstlen, const char *name,
    const char *buf, size_t len)
{
	struct sip_tcp *c = NULL;
	size_t i;

	if (proto == SIP_PROTO_UDP) {
		for (i = 0; i < st->nudp; i++) {
			if (st->udp[i].family != dst->ss_family)
				continue;
			if (sendto(st->udp[i].fd, buf, len, 0,
			    (const struct sockaddr *)dst, dstlen) == (ssize_t)len)
				return 0;
			/* a full socket buffer: retransmission covers it */
			SIP_COUNT(st, "sip-send-errors");
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		return -1;
	}
	if (proto != SIP_PROTO_TCP && proto != SIP_PROTO_TLS)
		return -1;
	if (conn_id != NULL && *conn_id != 0) {
		/* the connection the transaction used is gone: so is the
		 * transaction (RFC 3261 18.2.2 would reconnect to sent-by for a
		 * response; a federation peer's sent-by is its listener, which
		 * the route table already names for requests) */
		if ((c = sip_tcp_find(st, *conn_id)) == NULL)
			return -1;
	} else if ((c = sip_tcp_find_peer(st, proto, dst, dstlen, name)) == NULL) {
		c = sip_tcp_connect(st, proto, dst, dstlen, name);
	}
	if (c == NULL)
		return -1;
	if (conn_id != NULL)
		*conn_id = c->id;
	return sip_tcp_write(c, buf, len);
}

int
sip_tp_send_msg(struct sip_stack *st, osip_message_t *m, int proto,
    uint64_t *conn_id, const struct sockaddr_storage *dst, socklen_t dstlen,
    const char *name)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (osip_message_to_str(m, &buf, &len) != 0 || buf == NULL)
		return -1;
	rc = sip_tp_send(st, proto, conn_id, dst, dstlen, name, buf, len);
	osip_free(buf);
	if (rc == 0)
		SIP_COUNT(st, MSG_IS_REQUEST(m) ? "sip-requests-out" : "sip-responses-out");
	return rc;
}
