/*
 * MESSAGE bodies (RFC 3428).  text/plain is taken in any charset iconv
 * knows and converted to UTF-8; UTF-8 and US-ASCII are checked, not
 * converted.  A charset iconv does not know is 415 (with Accept); bytes
 * that are not valid in the declared charset are 400.  A body without
 * Content-Type is taken as text/plain (RFC 3428 does not allow it, but
 * refusing it helps nobody).
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sip.h"

enum sip_body_kind
sip_body_kind(const osip_message_t *m)
{
	const osip_content_type_t *ct = m->content_type;

	if (ct == NULL || ct->type == NULL)
		return SIP_BODY_TEXT;
	if (strcasecmp(ct->type, "text") == 0 && ct->subtype != NULL &&
	    strcasecmp(ct->subtype, "plain") == 0)
		return SIP_BODY_TEXT;
	if (strcasecmp(ct->type, "application") == 0 && ct->subtype != NULL &&
	    strcasecmp(ct->subtype, "im-iscomposing+xml") == 0)
		return SIP_BODY_ISCOMPOSING;
	return SIP_BODY_OTHER;
}

/* Strict UTF-8 (no overlongs, no surrogates), and no NUL. */
static int
sip_body_utf8(const char *s, size_t n)
{
	return memchr(s, 0, n) == NULL && imgw_utf8_valid(s, n);
}

static char *
sip_body_iconv(const char *charset, const char *in, size_t n, int *code_r)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	size_t cap = n * 4 + 4, left, inleft = n;
	char *out, *op, *ip = (char *)in;

	if (cd == (iconv_t)-1) {
		*code_r = 415;
		return NULL;
	}
	if ((out = malloc(cap)) == NULL) {
		iconv_close(cd);
		*code_r = 500;
		return NULL;
	}
	op = out;
	left = cap - 1;
	if (iconv(cd, &ip, &inleft, &op, &left) == (size_t)-1 ||
	    iconv(cd, NULL, NULL, &op, &left) == (size_t)-1) {
		iconv_close(cd);
		free(out);
		*code_r = errno == E2BIG ? 413 : 400;
		return NULL;
	}
	iconv_close(cd);
	*op = '\0';
	if (!sip_body_utf8(out, (size_t)(op - out))) {
		free(out);
		*code_r = 400;	/* e.g. a NUL in the source text */
		return NULL;
	}
	return out;
}

/*
 * The text/plain body as a new UTF-8 string (the caller frees it), or
 * NULL with *code_r the SIP code to answer with.
 */
int
sip_body_text(const osip_message_t *m, char **text_r, int *code_r)
{
	osip_generic_param_t *cs = NULL;
	const char *body, *charset = "UTF-8";
	char unq[64];
	size_t len;

	*text_r = NULL;
	(void)sip_msg_body(m, &body, &len);
	if (m->content_type != NULL &&
	    osip_content_type_param_get_byname(m->content_type, "charset", &cs) == 0 &&
	    cs != NULL && cs->gvalue != NULL) {
		charset = cs->gvalue;
		if (charset[0] == '"') {	/* quoted-string value */
			size_t n = strlen(charset);

			if (n < 2 || n - 2 >= sizeof(unq) || charset[n - 1] != '"') {
				*code_r = 415;
				return -1;
			}
			memcpy(unq, charset + 1, n - 2);
			unq[n - 2] = '\0';
			charset = unq;
		}
	}
	if (strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "utf8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0) {
		if (!sip_body_utf8(body, len)) {
			*code_r = 400;
			return -1;
		}
		if ((*text_r = malloc(len + 1)) == NULL) {
			*code_r = 500;
			return -1;
		}
		memcpy(*text_r, body, len);
		(*text_r)[len] = '\0';
		return 0;
	}
	return (*text_r = sip_body_iconv(charset, body, len, code_r)) ? 0 : -1;
}

/* The first language tag of Content-Language (RFC 3261 20.13), checked
 * to be a plausible BCP 47 tag; 0, or -1 when there is none usable. */
int
sip_body_lang(const osip_message_t *m, char *buf, size_t len)
{
	const char *v = sip_msg_header(m, "content-language", NULL);
	size_t n, i;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, ", \t;");
	if (n == 0 || n >= len || n > 35)
		return -1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '-')
			return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return 0;
}
