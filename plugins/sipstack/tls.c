/*
 * TLS for SIP connections (RFC 3261 26.2, RFC 5922), OpenSSL on the
 * core's loop: nonblocking handshakes and I/O driven by the connection's
 * watch.
 *
 *   server side  certificate tls-cert / key tls-key; with
 *                cfg.tls_client_cert the peer must present a certificate
 *                that verifies against tls-ca (mutual TLS), else the
 *                handshake fails
 *   client side  the peer's certificate must verify against tls-ca and
 *                name the SIP domain we send to (subjectAltName DNS or
 *                CN, X509_check_host; RFC 5922 7.2) unless
 *                cfg.tls_verify is off; our certificate is presented when
 *                we have one
 *   trust        a verified peer certificate naming one of cfg.tls_names
 *                makes the connection trusted, whatever its address
 *
 * TLS 1.2 is the minimum.  Errors are counted and logged at info level
 * (a peer can cause them); nothing here exits.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sipstack-internal.h"

static void
sip_tls_log_err(struct sip_stack *st, const char *what, const char *peer)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, sizeof(buf), "no details");
	else
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	SIP_LOG(st, IMGW_LOG_INFO, "TLS %s%s%s: %s", what, peer ? " with " : "",
	    peer ? peer : "", buf);
}

int
sip_tls_init(struct sip_stack *st)
{
	const struct sip_stack_cfg *cfg = &st->cfg;
	SSL_CTX *srv = NULL, *cli = NULL;

	if ((cli = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(cli, TLS1_2_VERSION) != 1)
		goto fail;
	SSL_CTX_set_mode(cli, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cfg->tls_ca != NULL && cfg->tls_ca[0] != '\0' &&
	    SSL_CTX_load_verify_locations(cli, cfg->tls_ca, NULL) != 1) {
		sip_tls_log_err(st, "cannot load tls-ca", NULL);
		goto fail;
	}
	SSL_CTX_set_verify(cli, cfg->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	    NULL);
	if (cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0') {
		if ((srv = SSL_CTX_new(TLS_server_method())) == NULL ||
		    SSL_CTX_set_min_proto_version(srv, TLS1_2_VERSION) != 1)
			goto fail;
		SSL_CTX_set_mode(srv, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if (SSL_CTX_use_certificate_chain_file(srv, cfg->tls_cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(srv, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(srv) != 1 ||
		    SSL_CTX_use_certificate_chain_file(cli, cfg->tls_cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(cli, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
			sip_tls_log_err(st, "cannot load tls-cert/tls-key", NULL);
			goto fail;
		}
		if (cfg->tls_ca != NULL && cfg->tls_ca[0] != '\0' &&
		    SSL_CTX_load_verify_locations(srv, cfg->tls_ca, NULL) != 1) {
			sip_tls_log_err(st, "cannot load tls-ca", NULL);
			goto fail;
		}
		/* without mutual TLS a client certificate is still asked for
		 * when a CA is set, so tls-names can trust by name */
		SSL_CTX_set_verify(srv, cfg->tls_client_cert ?
		    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
		    (cfg->tls_ca && cfg->tls_ca[0] ? SSL_VERIFY_PEER : SSL_VERIFY_NONE),
		    NULL);
	}
	st->tls_srv = srv;
	st->tls_cli = cli;
	return 0;
fail:
	if (srv == NULL && cli == NULL)
		sip_tls_log_err(st, "setup failed", NULL);
	SSL_CTX_free(srv);
	SSL_CTX_free(cli);
	return -1;
}

void
sip_tls_free(struct sip_stack *st)
{
	SSL_CTX_free(st->tls_srv);
	SSL_CTX_free(st->tls_cli);
	st->tls_srv = st->tls_cli = NULL;
}

/* Start TLS on c: server side for accepted connections, client side
 * (verifying `name`) for ours.  0, or -1. */
int
sip_tls_conn_start(struct sip_tcp *c, int server, const char *name)
{
	struct sip_stack *st = c->st;
	SSL *ssl;

	if ((server && st->tls_srv == NULL) || (!server && st->tls_cli == NULL))
		return -1;
	if ((ssl = SSL_new(server ? st->tls_srv : st->tls_cli)) == NULL ||
	    SSL_set_fd(ssl, c->fd) != 1) {
		SSL_free(ssl);
		return -1;
	}
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (name != NULL && name[0] != '\0') {
			(void)SSL_set_tlsext_host_name(ssl, name);
			if (st->cfg.tls_verify && SSL_set1_host(ssl, name) != 1) {
				SSL_free(ssl);
				return -1;
			}
		}
	}
	c->ssl = ssl;
	c->tls = 1;
	return 0;
}

void
sip_tls_conn_free(struct sip_tcp *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);	/* best effort close_notify */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	ERR_clear_error();
}

/* Whether the verified peer certificate names one of tls_names. */
static int
sip_tls_named(struct sip_stack *st, SSL *ssl)
{
	const char *p = st->tls_names, *e;
	char name[SIP_HOST_MAX];
	X509 *peer;
	size_t n;
	int ok = 0;

	if (p == NULL || SSL_get_verify_result(ssl) != X509_V_OK ||
	    (peer = SSL_get1_peer_certificate(ssl)) == NULL)
		return 0;
	while (!ok && *p != '\0') {
		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		n = (size_t)(e - p);
		if (n > 0 && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			ok = X509_check_host(peer, name, n, 0, NULL) == 1;
		}
		p = e;
	}
	X509_free(peer);
	return ok;
}

/* Drive the handshake: 1 done, 0 in progress (c->tls_want set), -1
 * failed. */
int
sip_tls_handshake(struct sip_tcp *c)
{
	int rc = SSL_do_handshake(c->ssl), err;

	if (rc == 1) {
		c->hs_done = 1;
		c->tls_want = 0;
		c->tls_trusted = sip_tls_named(c->st, c->ssl);
		SIP_COUNT(c->st, "sip-tls-handshakes");
		return 1;
	}
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		c->tls_want = IMGW_WATCH_READ;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->tls_want = IMGW_WATCH_WRITE;
		return 0;
	}
	SIP_COUNT(c->st, "sip-tls-failures");
	sip_tls_log_err(c->st, "handshake failed", c->peer_text);
	return -1;
}

/* Bytes read (> 0), 0 at the peer's close, -1 on error, -2 when it
 * would block. */
ssize_t
sip_tls_read(struct sip_tcp *c, char *buf, size_t len)
{
	int n = SSL_read(c->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len), err;

	if (n > 0)
		return n;
	err = SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		c->tls_want = err == SSL_ERROR_WANT_WRITE ? IMGW_WATCH_WRITE : 0;
		return -2;
	}
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	ERR_clear_error();
	return -1;
}

ssize_t
sip_tls_write(struct sip_tcp *c, const char *buf, size_t len)
{
	int n = SSL_write(c->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len), err;

	if (n > 0)
		return n;
	err = SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		c->tls_want = err == SSL_ERROR_WANT_READ ? IMGW_WATCH_READ : 0;
		return -2;
	}
	ERR_clear_error();
	return -1;
}

size_t
sip_tls_pending(struct sip_tcp *c)
{
	return c->ssl != NULL ? (size_t)SSL_pending(c->ssl) : 0;
}
