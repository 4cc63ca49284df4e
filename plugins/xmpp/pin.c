/*
 * Pinned peer certificates (s2s): `pin = DOMAIN=sha256:VALUE ...`.
 *
 * VALUE is the SHA-256 of the peer certificate's SubjectPublicKeyInfo (as
 * HPKP and DANE SPKI pins) or of the whole certificate (DER), written in
 * base64 (44 characters) or hex (64 digits, colons allowed).  A domain may
 * have several pins (a key rollover): any one matching is enough.  For a
 * pinned domain the certificate must match a pin in addition to whatever
 * tls-verify asks (a CA that verifies does not override a pin), and a
 * stream without TLS is refused for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "s2s.h"

/* VALUE -> 32 bytes; -1 when it is neither form. */
static int
xs_pin_decode(const char *v, size_t n, unsigned char out[32])
{
	unsigned char b64[48];
	size_t i, k = 0;
	int hi, lo;

	if (n == 44) {
		memcpy(b64, v, n);
		b64[n] = '\0';
		if (EVP_DecodeBlock(b64, b64, 44) != 33 || v[43] != '=')
			return -1;
		memcpy(out, b64, 32);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (v[i] == ':')
			continue;
		if (k >= 32 || i + 1 >= n || (hi = OPENSSL_hexchar2int((unsigned char)v[i])) < 0 ||
		    (lo = OPENSSL_hexchar2int((unsigned char)v[i + 1])) < 0)
			return -1;
		out[k++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return k == 32 ? 0 : -1;
}

/* Parse the `pin` option; -1 after logging. */
int
xs_pin_parse(struct xs *s, const char *list)
{
	const char *p = list, *w = list, *eq;
	struct xs_pin *pin;
	size_t n, dn;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		w = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		n = (size_t)(p - w);
		if (s->npins >= XS_PINS_MAX)
			goto bad;
		pin = &s->pins[s->npins];
		if ((eq = memchr(w, '=', n)) == NULL || (dn = (size_t)(eq - w)) == 0 ||
		    dn > XS_DOMAIN_MAX || n - dn - 1 < 7 ||
		    strncasecmp(eq + 1, "sha256:", 7) != 0 ||
		    xs_pin_decode(eq + 8, n - dn - 8, pin->hash) == -1)
			goto bad;
		memcpy(pin->domain, w, dn);
		pin->domain[dn] = '\0';
		for (n = 0; n < dn; n++)
			if (pin->domain[n] >= 'A' && pin->domain[n] <= 'Z')
				pin->domain[n] = (char)(pin->domain[n] - 'A' + 'a');
		s->npins++;
	}
bad:
	XS_LOG(s, IMGW_LOG_ERR, "pin: want DOMAIN=sha256:VALUE ... (at most %d), VALUE "
	    "the SHA-256 of the certificate's public key (SPKI) or of the certificate, "
	    "base64 or hex; near '%.*s'", XS_PINS_MAX, (int)(p - w), w);
	return -1;
}

int
xs_pin_has(const struct xs *s, const char *domain)
{
	int i;

	for (i = 0; domain != NULL && i < s->npins; i++)
		if (strcasecmp(s->pins[i].domain, domain) == 0)
			return 1;
	return 0;
}

/* SHA-256 of the certificate's SPKI and of the certificate; -1 on error. */
static int
xs_pin_digests(X509 *cert, unsigned char spki[32], unsigned char whole[32])
{
	unsigned char *der = NULL;
	unsigned int len;
	int n, rc;

	if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der)) <= 0)
		return -1;
	rc = EVP_Digest(der, (size_t)n, spki, &len, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (rc != 1 || X509_digest(cert, EVP_sha256(), whole, &len) != 1)
		return -1;
	return 0;
}

/*
 * Non-zero when `domain` has no pin, or `cert` matches one of its pins.
 * Otherwise 0 with the reason (and the certificate's SPKI pin, which the
 * operator can compare) in why.
 */
int
xs_pin_ok(const struct xs *s, const char *domain, X509 *cert, char *why, size_t whylen)
{
	unsigned char spki[32], whole[32], b64[48];
	int i;

	if (!xs_pin_has(s, domain))
		return 1;
	if (cert == NULL) {
		snprintf(why, whylen, "%s is pinned and showed no certificate", domain);
		return 0;
	}
	if (xs_pin_digests(cert, spki, whole) == -1) {
		snprintf(why, whylen, "cannot hash the certificate of %s", domain);
		return 0;
	}
	for (i = 0; i < s->npins; i++)
		if (strcasecmp(s->pins[i].domain, domain) == 0 &&
		    (memcmp(s->pins[i].hash, spki, 32) == 0 ||
		    memcmp(s->pins[i].hash, whole, 32) == 0))
			return 1;
	EVP_EncodeBlock(b64, spki, 32);
	snprintf(why, whylen, "the certificate matches no pin of %s (its key is "
	    "sha256:%s)", domain, (char *)b64);
	return 0;
}
