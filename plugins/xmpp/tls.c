/*
 * TLS for s2s streams (OpenSSL): one server context (inbound STARTTLS) and
 * one client context (outbound), both with our certificate — a server
 * presents it when it initiates s2s too, that is how the peer can
 * authenticate it (SASL EXTERNAL, or dialback the peer skips).
 *
 * The handshake never fails on the peer's certificate: OpenSSL's verify
 * callback accepts, and the stream decides afterwards with
 * xs_tls_peer_ok(), which can then say precisely why (chain or name) in
 * the log and answer with the protocol's error.  Names are checked with
 * X509_check_host against the DNS names of the certificate (RFC 6125
 * DNS-ID; XMPP's id-on-xmppAddr and SRV-ID are not read).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "s2s.h"

static int
xs_tls_accept_cb(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;	/* decided later, by xs_tls_peer_ok */
}

/* The newest OpenSSL error as text, for the log. */
static const char *
xs_tls_err(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static SSL_CTX *
xs_tls_ctx(struct xs *s, int server)
{
	SSL_CTX *ctx;
	char err[256];

	if ((ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method())) == NULL) {
		XS_LOG(s, IMGW_LOG_ERR, "TLS: %s", xs_tls_err(err, sizeof(err)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (s->tls_cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, s->tls_cert) != 1) {
			XS_LOG(s, IMGW_LOG_ERR, "tls-cert %s: %s", s->tls_cert,
			    xs_tls_err(err, sizeof(err)));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, s->tls_key ? s->tls_key : s->tls_cert,
		    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			XS_LOG(s, IMGW_LOG_ERR, "tls-key %s: %s", s->tls_key ? s->tls_key
			    : s->tls_cert, xs_tls_err(err, sizeof(err)));
			goto fail;
		}
	}
	if (s->tls_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, s->tls_ca, NULL) != 1) {
			XS_LOG(s, IMGW_LOG_ERR, "tls-ca %s: %s", s->tls_ca,
			    xs_tls_err(err, sizeof(err)));
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		XS_LOG(s, IMGW_LOG_WARNING, "TLS: the system CA store is not "
		    "readable: %s", xs_tls_err(err, sizeof(err)));
	}
	/* ask inbound peers for their certificate, never fail the handshake */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, xs_tls_accept_cb);
	SSL_CTX_set_verify_depth(ctx, 8);
	if (server)
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"imgw-s2s", 8);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Contexts for the options; -1 after logging.  Without tls-cert there is
 * no server context (STARTTLS is not offered) and the client context
 * presents no certificate. */
int
xs_tls_init(struct xs *s)
{
	if (s->tls_cert != NULL && (s->srv_ctx = xs_tls_ctx(s, 1)) == NULL)
		return -1;
	if ((s->cli_ctx = xs_tls_ctx(s, 0)) == NULL) {
		xs_tls_free(s);
		return -1;
	}
	return 0;
}

void
xs_tls_free(struct xs *s)
{
	SSL_CTX_free(s->srv_ctx);
	SSL_CTX_free(s->cli_ctx);
	s->srv_ctx = s->cli_ctx = NULL;
}

/* A TLS session on fd; `sni` is the peer's domain for a client.  NULL on
 * failure.  The caller owns it (SSL_free). */
SSL *
xs_tls_new(struct xs *s, int fd, int server, const char *sni)
{
	SSL *ssl;

	if ((ssl = SSL_new(server ? s->srv_ctx : s->cli_ctx)) == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
		goto fail;
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (sni != NULL && SSL_set_tlsext_host_name(ssl, sni) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * Non-zero when the stream's peer showed a certificate that chains to our
 * CAs and names `domain`.  Otherwise 0 with the reason in why.
 */
int
xs_tls_peer_ok(struct xs_stream *st, const char *domain, char *why, size_t whylen)
{
	X509 *cert;
	long v;
	int ok;

	if (st->ssl == NULL || !st->tls_done) {
		snprintf(why, whylen, "no TLS on this stream");
		return 0;
	}
	if ((cert = SSL_get1_peer_certificate(st->ssl)) == NULL) {
		snprintf(why, whylen, "the peer showed no certificate");
		return 0;
	}
	v = SSL_get_verify_result(st->ssl);
	if (v != X509_V_OK) {
		snprintf(why, whylen, "certificate verify failed: %s",
		    X509_verify_cert_error_string(v));
		X509_free(cert);
		return 0;
	}
	/* no domain (a peer that did not say who it is): the chain only */
	ok = domain == NULL || *domain == '\0' ||
	    X509_check_host(cert, domain, 0, 0, NULL) == 1;
	if (!ok)
		snprintf(why, whylen, "the certificate does not name %s", domain);
	else
		ok = xs_pin_ok(st->s, domain, cert, why, whylen);
	X509_free(cert);
	return ok;
}

/*
 * Non-zero when `domain` has no pin, or the stream runs TLS and the peer's
 * certificate matches a pin of it (chain and names not looked at: for
 * tls-verify = no, where a pin is the only check).
 */
int
xs_tls_pin_ok(struct xs_stream *st, const char *domain, char *why, size_t whylen)
{
	X509 *cert;
	int ok;

	if (!xs_pin_has(st->s, domain))
		return 1;
	if (st->ssl == NULL || !st->tls_done) {
		snprintf(why, whylen, "%s is pinned: TLS is required", domain);
		return 0;
	}
	cert = SSL_get1_peer_certificate(st->ssl);
	ok = xs_pin_ok(st->s, domain, cert, why, whylen);
	X509_free(cert);
	return ok;
}
