/*
 * Dialback keys (XEP-0185, as XEP-0220 uses them):
 *
 *   key = HEX( HMAC-SHA256( SHA256(secret), Receiving ' ' Originating ' ' StreamID ) )
 *
 * The secret is the `dialback-secret` option, or 32 random bytes made at
 * start: then only this process can answer db:verify for the keys it
 * sent, which is all a single node needs.  Several nodes behind one DNS
 * name must share the option.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "s2s.h"

/* Set the secret from the option, or a random one when NULL; -1 when no
 * randomness is available. */
int
xs_db_secret(struct xs *s, const char *secret)
{
	unsigned char rnd[32];

	if (secret != NULL) {
		SHA256((const unsigned char *)secret, strlen(secret), s->db_secret);
		return 0;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	SHA256(rnd, sizeof(rnd), s->db_secret);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* The key into out (64 hex digits), or "" when a part is too long. */
void
xs_db_key(const struct xs *s, const char *receiving, const char *originating,
    const char *id, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	char msg[2 * XS_DOMAIN_MAX + XS_DB_ID_MAX + 3];
	unsigned int len = 0, i;
	int n;

	out[0] = '\0';
	if (strlen(receiving) > XS_DOMAIN_MAX || strlen(originating) > XS_DOMAIN_MAX ||
	    strlen(id) > XS_DB_ID_MAX)
		return;
	n = snprintf(msg, sizeof(msg), "%s %s %s", receiving, originating, id);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if (HMAC(EVP_sha256(), s->db_secret, sizeof(s->db_secret),
	    (const unsigned char *)msg, (size_t)n, mac, &len) == NULL || len != 32)
		return;
	for (i = 0; i < len; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[64] = '\0';
}

/* Non-zero when key is the one we would have sent (compared in constant
 * time). */
int
xs_db_check(const struct xs *s, const char *receiving, const char *originating,
    const char *id, const char *key)
{
	char want[65];

	if (key == NULL || id == NULL || strlen(key) != 64)
		return 0;
	xs_db_key(s, receiving, originating, id, want);
	return want[0] != '\0' && CRYPTO_memcmp(want, key, 64) == 0;
}
