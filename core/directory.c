/*
 * The LDAP directory client: settings, the worker thread that talks LDAP,
 * and the loop-side cache the policy reads.  See directory.h.
 *
 * Threads.  The loop owns struct dir, the cache and the settings it shows.
 * The worker (worker.h) owns the LDAP handle and its own copy of the
 * settings.  They share only the lookups, which the worker module queues
 * and hands back, and the pending settings, swapped atomically.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <ldap.h>

#include "address.h"
#include "conf.h"
#include "directory.h"
#include "ht.h"
#include "log.h"
#include "policy.h"
#include "util.h"
#include "worker.h"

#define DIR_TICK_MS		1000
#define DIR_RETRY_MAX_S		10	/* retry a failed lookup at least so often */
#define DIR_UID_BATCH		50	/* uids per search filter */
#define DIR_STATUS_ENTRIES	50	/* entries listed in status */

#define DIR_DEF_USER_FILTER	"(objectClass=inetOrgPerson)"
#define DIR_DEF_GROUP_FILTER	"(|(objectClass=groupOfNames)" \
	"(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
#define DIR_DEF_MEMBER_ATTRS	"member uniqueMember memberUid"

/* The parsed [directory] section.  Each thread owns its own copy. */
struct dir_conf {
	char *uri;
	int starttls;
	char *bind_dn;		/* NULL: anonymous */
	char *bind_pw;		/* "" with no password */
	char **bases;
	size_t nbases;
	char *user_filter;
	char *group_filter;
	char **member_attrs;	/* NULL-terminated, for ldap_search */
	char *uid_attr;
	char *im_attr;
	char *ca_file;
	unsigned ttl;
	unsigned timeout;
};

/*
 * One lookup asked of the worker, and its answer; with name NULL, only
 * "take the new settings".
 */
struct dir_res {
	struct worker_job wj;	/* first: the worker hands back this */
	int user;
	char *name;
	int ok;			/* the lookup ran to its end */
	int found;		/* the group or user exists */
	char **addrs;
	size_t naddrs;
	char *error;		/* !ok: why */
};

/* A cached group or user on the loop. */
struct dir_entry {
	int user;
	char *name;
	struct ht *members;	/* bare address -> (void *)1 */
	size_t nmembers;
	int loaded;		/* at least one lookup succeeded */
	int found;
	int inflight;
	int wanted;
	uint64_t fetched_ms;	/* last success */
	uint64_t tried_ms;	/* last attempt */
};

struct dir {
	struct event_base *base;
	struct dir_conf *conf;		/* loop's copy */
	struct ht *cache;		/* "g:NAME" / "u:NAME" -> dir_entry */
	struct event *tick;
	struct worker *w;
	int closing;			/* dir_free: answers are not applied */

	/* shared with the worker: swapped with __atomic_exchange_n */
	struct dir_conf *next_conf;	/* settings for the worker to take */

	/* the worker's own */
	LDAP *ld;
	struct dir_conf *wconf;

	/* loop: state for status */
	enum { DIR_CONNECTING, DIR_UP, DIR_DOWN } state;
	char error[512];
	uint64_t last_ok_ms, last_fail_ms;
	uint64_t lookups, failures;
};

/* ---- settings ------------------------------------------------------------------- */

static void
dir_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static void
dir_conf_free(struct dir_conf *dc)
{
	size_t i;

	if (dc == NULL)
		return;
	free(dc->uri);
	free(dc->bind_dn);
	if (dc->bind_pw != NULL) {
		explicit_bzero(dc->bind_pw, strlen(dc->bind_pw));
		free(dc->bind_pw);
	}
	for (i = 0; i < dc->nbases; i++)
		free(dc->bases[i]);
	free(dc->bases);
	free(dc->user_filter);
	free(dc->group_filter);
	dir_strv_free(dc->member_attrs);
	free(dc->uid_attr);
	free(dc->im_attr);
	free(dc->ca_file);
	free(dc);
}

static struct dir_conf *
dir_conf_dup(const struct dir_conf *src)
{
	struct dir_conf *dc = xcalloc(1, sizeof(*dc));
	size_t i, n;

	dc->uri = xstrdup(src->uri);
	dc->starttls = src->starttls;
	dc->bind_dn = src->bind_dn ? xstrdup(src->bind_dn) : NULL;
	dc->bind_pw = xstrdup(src->bind_pw);
	dc->nbases = src->nbases;
	dc->bases = xcalloc(src->nbases, sizeof(*dc->bases));
	for (i = 0; i < src->nbases; i++)
		dc->bases[i] = xstrdup(src->bases[i]);
	dc->user_filter = xstrdup(src->user_filter);
	dc->group_filter = xstrdup(src->group_filter);
	for (n = 0; src->member_attrs[n] != NULL; n++)
		;
	dc->member_attrs = xcalloc(n + 1, sizeof(*dc->member_attrs));
	for (i = 0; i < n; i++)
		dc->member_attrs[i] = xstrdup(src->member_attrs[i]);
	dc->uid_attr = xstrdup(src->uid_attr);
	dc->im_attr = xstrdup(src->im_attr);
	dc->ca_file = src->ca_file ? xstrdup(src->ca_file) : NULL;
	dc->ttl = src->ttl;
	dc->timeout = src->timeout;
	return dc;
}

static int
dir_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
dir_conf_same(const struct dir_conf *a, const struct dir_conf *b)
{
	size_t i;

	if (!dir_str_eq(a->uri, b->uri) || a->starttls != b->starttls ||
	    !dir_str_eq(a->bind_dn, b->bind_dn) ||
	    !dir_str_eq(a->bind_pw, b->bind_pw) || a->nbases != b->nbases ||
	    !dir_str_eq(a->user_filter, b->user_filter) ||
	    !dir_str_eq(a->group_filter, b->group_filter) ||
	    !dir_str_eq(a->uid_attr, b->uid_attr) ||
	    !dir_str_eq(a->im_attr, b->im_attr) ||
	    !dir_str_eq(a->ca_file, b->ca_file) || a->ttl != b->ttl ||
	    a->timeout != b->timeout)
		return 0;
	for (i = 0; i < a->nbases; i++)
		if (strcmp(a->bases[i], b->bases[i]) != 0)
			return 0;
	for (i = 0; a->member_attrs[i] != NULL || b->member_attrs[i] != NULL;
	    i++)
		if (!dir_str_eq(a->member_attrs[i], b->member_attrs[i]))
			return 0;
	return 1;
}

static const char *const dir_keys[] = {
	"uri", "starttls", "bind-dn", "bind-password", "bind-password-file",
	"base", "user-filter", "group-filter", "group-member-attr", "uid-attr",
	"im-attr", "ca-file", "ttl", "timeout", NULL
};

static int
dir_fail(char *err, size_t errlen, const struct conf *c, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
dir_fail(char *err, size_t errlen, const struct conf *c, int line,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen, "%s:%d: [directory] ", c->file, line);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* A filter must at least be one parenthesized expression. */
static int
dir_filter_ok(const char *f)
{
	int depth = 0;
	const char *p;

	if (f[0] != '(')
		return 0;
	for (p = f; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (depth == 0 && p != f)
			return 0;	/* text after the closing parenthesis */
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
	}
	return depth == 0;
}

/* An attribute description: letters, digits, '-', ';' (options). */
static int
dir_attr_ok(const char *a)
{
	const char *p;

	if (*a == '\0')
		return 0;
	for (p = a; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == ';' ||
		    *p == '.'))
			return 0;
	return 1;
}

/*
 * Parse the [directory] of `c` into a new dir_conf.  NULL with err "" when
 * the section is absent, NULL with err set when it is wrong.
 */
static struct dir_conf *
dir_conf_parse(const struct conf *c, char *err, size_t errlen)
{
	const struct conf_section *s = &c->directory;
	struct dir_conf *dc;
	const char *v, *pw, *pwf;
	char why[512], *copy, *tok, *save;
	long long n;
	int line, line2, b;
	size_t i, k;

	err[0] = '\0';
	if (s->line == 0)
		return NULL;
	for (i = 0; i < s->n; i++) {
		for (k = 0; dir_keys[k] != NULL; k++)
			if (!strcmp(s->kv[i].key, dir_keys[k]))
				break;
		if (dir_keys[k] == NULL) {
			dir_fail(err, errlen, c, s->kv[i].line, "unknown key "
			    "'%s'", s->kv[i].key);
			return NULL;
		}
	}
	dc = xcalloc(1, sizeof(*dc));
	dc->ttl = 300;
	dc->timeout = 5;

	if ((v = conf_section_get(s, "uri", &line)) == NULL) {
		dir_fail(err, errlen, c, s->line, "uri is required "
		    "(ldap://host or ldaps://host)");
		goto fail;
	}
	if (strncasecmp(v, "ldap://", 7) != 0 &&
	    strncasecmp(v, "ldaps://", 8) != 0) {
		dir_fail(err, errlen, c, line, "uri '%s' is not ldap:// or "
		    "ldaps://", v);
		goto fail;
	}
	if (strchr(v, ' ') != NULL) {
		dir_fail(err, errlen, c, line, "uri: one server only");
		goto fail;
	}
	dc->uri = xstrdup(v);
	if ((v = conf_section_get(s, "starttls", &line)) != NULL) {
		if ((b = conf_parse_bool(v)) < 0) {
			dir_fail(err, errlen, c, line, "starttls: '%s' is not "
			    "yes or no", v);
			goto fail;
		}
		if (b && strncasecmp(dc->uri, "ldaps://", 8) == 0) {
			dir_fail(err, errlen, c, line, "starttls is for ldap://; "
			    "ldaps:// is TLS already");
			goto fail;
		}
		dc->starttls = b;
	}
	if ((v = conf_section_get(s, "bind-dn", &line)) != NULL && *v != '\0')
		dc->bind_dn = xstrdup(v);
	pw = conf_section_get(s, "bind-password", &line);
	pwf = conf_section_get(s, "bind-password-file", &line2);
	if (pw != NULL && pwf != NULL) {
		dir_fail(err, errlen, c, line2, "bind-password and "
		    "bind-password-file exclude each other");
		goto fail;
	}
	if (pwf != NULL) {
		if ((dc->bind_pw = util_read_first_line(pwf, why, sizeof(why)))
		    == NULL) {
			dir_fail(err, errlen, c, line2, "bind-password-file: %s",
			    why);
			goto fail;
		}
	} else {
		dc->bind_pw = xstrdup(pw ? pw : "");
	}
	if ((pw != NULL || pwf != NULL) && dc->bind_dn == NULL) {
		dir_fail(err, errlen, c, pwf ? line2 : line, "a password "
		    "without bind-dn");
		goto fail;
	}

	if ((v = conf_section_get(s, "base", &line)) == NULL) {
		dir_fail(err, errlen, c, s->line, "base is required (one or "
		    "more DNs separated by ';')");
		goto fail;
	}
	copy = xstrdup(v);
	for (tok = strtok_r(copy, ";", &save); tok != NULL;
	    tok = strtok_r(NULL, ";", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		n = (long long)strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			tok[--n] = '\0';
		if (n == 0)
			continue;
		if (strchr(tok, '=') == NULL) {
			dir_fail(err, errlen, c, line, "base '%s' is not a DN",
			    tok);
			free(copy);
			goto fail;
		}
		dc->bases = xreallocarray(dc->bases, dc->nbases + 1,
		    sizeof(*dc->bases));
		dc->bases[dc->nbases++] = xstrdup(tok);
	}
	free(copy);
	if (dc->nbases == 0) {
		dir_fail(err, errlen, c, line, "base names no DN");
		goto fail;
	}

	v = conf_section_get(s, "user-filter", &line);
	dc->user_filter = xstrdup(v ? v : DIR_DEF_USER_FILTER);
	if (!dir_filter_ok(dc->user_filter)) {
		dir_fail(err, errlen, c, line, "user-filter '%s' is not an LDAP "
		    "filter", dc->user_filter);
		goto fail;
	}
	v = conf_section_get(s, "group-filter", &line);
	dc->group_filter = xstrdup(v ? v : DIR_DEF_GROUP_FILTER);
	if (!dir_filter_ok(dc->group_filter)) {
		dir_fail(err, errlen, c, line, "group-filter '%s' is not an "
		    "LDAP filter", dc->group_filter);
		goto fail;
	}
	v = conf_section_get(s, "group-member-attr", &line);
	copy = xstrdup(v ? v : DIR_DEF_MEMBER_ATTRS);
	k = 0;
	dc->member_attrs = xcalloc(1, sizeof(*dc->member_attrs));
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if (!dir_attr_ok(tok)) {
			dir_fail(err, errlen, c, line, "group-member-attr: '%s' "
			    "is not an attribute name", tok);
			free(copy);
			goto fail;
		}
		dc->member_attrs = xreallocarray(dc->member_attrs, k + 2,
		    sizeof(*dc->member_attrs));
		dc->member_attrs[k++] = xstrdup(tok);
		dc->member_attrs[k] = NULL;
	}
	free(copy);
	if (k == 0) {
		dir_fail(err, errlen, c, line, "group-member-attr names no "
		    "attribute");
		goto fail;
	}
	v = conf_section_get(s, "uid-attr", &line);
	dc->uid_attr = xstrdup(v ? v : "uid");
	if (!dir_attr_ok(dc->uid_attr)) {
		dir_fail(err, errlen, c, line, "uid-attr: '%s' is not an "
		    "attribute name", dc->uid_attr);
		goto fail;
	}
	v = conf_section_get(s, "im-attr", &line);
	dc->im_attr = xstrdup(v ? v : "mail");
	if (!dir_attr_ok(dc->im_attr)) {
		dir_fail(err, errlen, c, line, "im-attr: '%s' is not an "
		    "attribute name", dc->im_attr);
		goto fail;
	}
	if ((v = conf_section_get(s, "ca-file", &line)) != NULL) {
		if (access(v, R_OK) != 0) {
			dir_fail(err, errlen, c, line, "ca-file %s: %s", v,
			    strerror(errno));
			goto fail;
		}
		dc->ca_file = xstrdup(v);
	}
	if ((v = conf_section_get(s, "ttl", &line)) != NULL) {
		if (conf_parse_ll(v, &n) < 0 || n < 1 || n > 7 * 24 * 3600) {
			dir_fail(err, errlen, c, line, "ttl: '%s' is not a "
			    "number of seconds (1 to 604800)", v);
			goto fail;
		}
		dc->ttl = (unsigned)n;
	}
	if ((v = conf_section_get(s, "timeout", &line)) != NULL) {
		if (conf_parse_ll(v, &n) < 0 || n < 1 || n > 300) {
			dir_fail(err, errlen, c, line, "timeout: '%s' is not a "
			    "number of seconds (1 to 300)", v);
			goto fail;
		}
		dc->timeout = (unsigned)n;
	}
	return dc;
fail:
	dir_conf_free(dc);
	return NULL;
}

int
dir_conf_check(const struct conf *c, char *err, size_t errlen)
{
	struct dir_conf *dc = dir_conf_parse(c, err, errlen);

	if (dc == NULL)
		return err[0] != '\0' ? -1 : 0;
	dir_conf_free(dc);
	return 0;
}

/* ---- the worker: LDAP ---------------------------------------------------------- */

/* RFC 4515 escaping of a value for a filter; the caller frees. */
static char *
dir_filter_escape(const char *v)
{
	size_t n = strlen(v), i, o = 0;
	char *out = xmalloc(3 * n + 1);

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' ||
		    ch < 0x20 || ch == 0x7f) {
			snprintf(out + o, 4, "\\%02x", ch);
			o += 3;
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return out;
}

static void
dir_w_drop(struct dir *d)
{
	if (d->ld != NULL) {
		ldap_unbind_ext_s(d->ld, NULL, NULL);
		d->ld = NULL;
	}
}

static void
dir_w_error(LDAP *ld, int rc, const char *what, char *err, size_t errlen)
{
	char *diag = NULL;

	if (ld != NULL)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	snprintf(err, errlen, "%s: %s%s%s", what, ldap_err2string(rc),
	    diag && *diag ? " (" : "", diag && *diag ? diag : "");
	if (diag && *diag)
		snprintf(err + strlen(err), errlen - strlen(err), ")");
	ldap_memfree(diag);
}

/*
 * Why a TLS connection failed, when libldap only says "Connect error
 * ((unknown error code))" (the GnuTLS backend of Debian's libldap keeps
 * the handshake's reason to itself).  The handshake is tried once more on
 * a throwaway handle that does not check the certificate: when that one
 * succeeds, the certificate is what failed.  The throwaway connection is
 * closed at once; nothing is ever sent over it.  Appends to err.  Worker.
 */
static void
dir_w_tls_diag(const struct dir_conf *dc, char *err, size_t errlen)
{
	struct timeval tv = { (time_t)dc->timeout, 0 };
	int v3 = LDAP_VERSION3, never = LDAP_OPT_X_TLS_NEVER, zero = 0, rc;
	size_t n = strlen(err);
	LDAP *ld = NULL;

	if (ldap_initialize(&ld, dc->uri) != LDAP_SUCCESS)
		return;
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &never);
	ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	rc = dc->starttls ? ldap_start_tls_s(ld, NULL, NULL) : ldap_connect(ld);
	ldap_unbind_ext_s(ld, NULL, NULL);
	if (rc != LDAP_SUCCESS || n + 1 >= errlen)
		return;
	snprintf(err + n, errlen - n, ": TLS handshake refused: the server's "
	    "certificate does not verify against %s%s (or does not name the "
	    "host of the uri)", dc->ca_file ? "ca-file " : "the system's CAs",
	    dc->ca_file ? dc->ca_file : "");
}

static int
dir_w_connect(struct dir *d, char *err, size_t errlen)
{
	const struct dir_conf *dc = d->wconf;
	struct timeval tv = { (time_t)dc->timeout, 0 };
	struct berval cred;
	int rc, v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	char what[600];

	if (d->ld != NULL)
		return 0;
	if ((rc = ldap_initialize(&d->ld, dc->uri)) != LDAP_SUCCESS) {
		snprintf(err, errlen, "%s: %s", dc->uri, ldap_err2string(rc));
		d->ld = NULL;
		return -1;
	}
	ldap_set_option(d->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(d->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(d->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(d->ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(d->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (dc->ca_file != NULL)
		ldap_set_option(d->ld, LDAP_OPT_X_TLS_CACERTFILE, dc->ca_file);
	/* the per-handle TLS settings take effect in a new context */
	ldap_set_option(d->ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	if (dc->starttls) {
		rc = ldap_start_tls_s(d->ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			snprintf(what, sizeof(what), "StartTLS with %s",
			    dc->uri);
			dir_w_error(d->ld, rc, what, err, errlen);
			dir_w_drop(d);
			if (rc == LDAP_CONNECT_ERROR)
				dir_w_tls_diag(dc, err, errlen);
			return -1;
		}
	}
	cred.bv_val = dc->bind_pw;
	cred.bv_len = strlen(dc->bind_pw);
	rc = ldap_sasl_bind_s(d->ld, dc->bind_dn, LDAP_SASL_SIMPLE, &cred,
	    NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		snprintf(what, sizeof(what), "bind to %s as %s", dc->uri,
		    dc->bind_dn ? dc->bind_dn : "anonymous");
		dir_w_error(d->ld, rc, what, err, errlen);
		dir_w_drop(d);
		/* ldaps://: the handshake happens on the first operation */
		if ((rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) &&
		    strncasecmp(dc->uri, "ldaps://", 8) == 0)
			dir_w_tls_diag(dc, err, errlen);
		return -1;
	}
	return 0;
}

/* Addresses collected for one lookup. */
struct dir_addrs {
	char **v;
	size_t n;
	struct ht *seen;
};

static void
dir_addrs_add(struct dir_addrs *a, const char *value, size_t len)
{
	char raw[ADDR_PART_MAX * 2 + 4], canon[ADDR_PART_MAX * 2 + 4];
	const char *why;
	size_t bare;

	if (len == 0 || len >= sizeof(raw))
		return;
	memcpy(raw, value, len);
	raw[len] = '\0';
	/* "sip:" or "xmpp:" style prefixes some directories keep */
	if (!strncasecmp(raw, "sip:", 4) || !strncasecmp(raw, "im:", 3) ||
	    !strncasecmp(raw, "xmpp:", 5))
		memmove(raw, strchr(raw, ':') + 1, strlen(strchr(raw, ':')));
	if (strchr(raw, '@') == NULL ||
	    addr_canon(raw, canon, sizeof(canon), &why) < 0)
		return;
	bare = strcspn(canon, "/");
	canon[bare] = '\0';
	if (ht_get(a->seen, canon) != NULL)
		return;
	ht_put(a->seen, canon, (void *)1);
	a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
	a->v[a->n++] = xstrdup(canon);
}

/* Is rc a sign that the connection is gone (or never was)? */
static int
dir_rc_conn(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY ||
	    rc == LDAP_LOCAL_ERROR;
}

typedef void (*dir_entry_fn)(struct dir *d, LDAPMessage *e, void *arg);

/*
 * Search and call fn for each entry.  0 (NO_SUCH_OBJECT counts as no
 * entries; *found_r says whether the base existed), or -1 with err.
 */
static int
dir_w_search(struct dir *d, const char *base, int scope, const char *filter,
    char **attrs, dir_entry_fn fn, void *arg, char *err, size_t errlen)
{
	struct timeval tv = { (time_t)d->wconf->timeout, 0 };
	LDAPMessage *res = NULL, *e;
	char what[1024];
	int rc;

	rc = ldap_search_ext_s(d->ld, base, scope, filter, attrs, 0, NULL, NULL,
	    &tv, 0, &res);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		ldap_msgfree(res);
		return 0;
	}
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		snprintf(what, sizeof(what), "search %s under %s", filter, base);
		dir_w_error(d->ld, rc, what, err, errlen);
		ldap_msgfree(res);
		if (dir_rc_conn(rc))
			dir_w_drop(d);
		return -1;
	}
	for (e = ldap_first_entry(d->ld, res); e != NULL;
	    e = ldap_next_entry(d->ld, e))
		fn(d, e, arg);
	ldap_msgfree(res);
	return 0;
}

/* Entry of a user: its im-attr values. */
static void
dir_w_user_entry(struct dir *d, LDAPMessage *e, void *arg)
{
	struct dir_addrs *a = arg;
	struct berval **vals;
	size_t i;

	if ((vals = ldap_get_values_len(d->ld, e, d->wconf->im_attr)) == NULL)
		return;
	for (i = 0; vals[i] != NULL; i++)
		dir_addrs_add(a, vals[i]->bv_val, vals[i]->bv_len);
	ldap_value_free_len(vals);
}

/* Member values of group entries: DNs and uids. */
struct dir_members {
	char **dns, **uids;
	size_t ndns, nuids;
	int groups;
};

static void
dir_w_group_entry(struct dir *d, LDAPMessage *e, void *arg)
{
	struct dir_members *m = arg;
	struct berval **vals;
	size_t i, k;
	char *v;

	m->groups++;
	for (k = 0; d->wconf->member_attrs[k] != NULL; k++) {
		vals = ldap_get_values_len(d->ld, e, d->wconf->member_attrs[k]);
		if (vals == NULL)
			continue;
		for (i = 0; vals[i] != NULL; i++) {
			v = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
			if (strchr(v, '=') != NULL) {
				m->dns = xreallocarray(m->dns, m->ndns + 1,
				    sizeof(*m->dns));
				m->dns[m->ndns++] = v;
			} else {
				m->uids = xreallocarray(m->uids, m->nuids + 1,
				    sizeof(*m->uids));
				m->uids[m->nuids++] = v;
			}
		}
		ldap_value_free_len(vals);
	}
}

/* Users by uid, DIR_UID_BATCH per filter, under every base. */
static int
dir_w_users_by_uid(struct dir *d, char **uids, size_t n, struct dir_addrs *a,
    char *err, size_t errlen)
{
	const struct dir_conf *dc = d->wconf;
	char *attrs[2] = { dc->im_attr, NULL };
	size_t i, j, b, len;
	char *filter, *esc;

	for (i = 0; i < n; i += DIR_UID_BATCH) {
		len = strlen(dc->user_filter) + 16;
		for (j = i; j < n && j < i + DIR_UID_BATCH; j++)
			len += strlen(dc->uid_attr) + 3 * strlen(uids[j]) + 4;
		filter = xmalloc(len);
		snprintf(filter, len, "(&%s(|", dc->user_filter);
		for (j = i; j < n && j < i + DIR_UID_BATCH; j++) {
			esc = dir_filter_escape(uids[j]);
			snprintf(filter + strlen(filter), len - strlen(filter),
			    "(%s=%s)", dc->uid_attr, esc);
			free(esc);
		}
		snprintf(filter + strlen(filter), len - strlen(filter), "))");
		for (b = 0; b < dc->nbases; b++) {
			if (dir_w_search(d, dc->bases[b], LDAP_SCOPE_SUBTREE,
			    filter, attrs, dir_w_user_entry, a, err, errlen)
			    < 0) {
				free(filter);
				return -1;
			}
		}
		free(filter);
	}
	return 0;
}

/* One lookup: a group's members or a user's addresses. */
static int
dir_w_lookup(struct dir *d, struct dir_res *r, char *err, size_t errlen)
{
	const struct dir_conf *dc = d->wconf;
	struct dir_addrs a = { .seen = ht_new() };
	struct dir_members m = { 0 };
	char *attrs[2] = { dc->im_attr, NULL };
	char *filter = NULL, *esc;
	size_t b, i, len;
	int rc = -1;

	esc = dir_filter_escape(r->name);
	if (r->user) {
		if (strchr(r->name, '=') != NULL) {
			if (dir_w_search(d, r->name, LDAP_SCOPE_BASE,
			    dc->user_filter, attrs, dir_w_user_entry, &a, err,
			    errlen) < 0)
				goto out;
		} else {
			len = strlen(dc->user_filter) + strlen(dc->uid_attr) +
			    strlen(esc) + 8;
			filter = xmalloc(len);
			snprintf(filter, len, "(&%s(%s=%s))", dc->user_filter,
			    dc->uid_attr, esc);
			for (b = 0; b < dc->nbases; b++)
				if (dir_w_search(d, dc->bases[b],
				    LDAP_SCOPE_SUBTREE, filter, attrs,
				    dir_w_user_entry, &a, err, errlen) < 0)
					goto out;
		}
		r->found = a.n > 0;
	} else {
		if (strchr(r->name, '=') != NULL) {
			if (dir_w_search(d, r->name, LDAP_SCOPE_BASE,
			    dc->group_filter, dc->member_attrs,
			    dir_w_group_entry, &m, err, errlen) < 0)
				goto out;
		} else {
			len = strlen(dc->group_filter) + strlen(esc) + 12;
			filter = xmalloc(len);
			snprintf(filter, len, "(&%s(cn=%s))", dc->group_filter,
			    esc);
			for (b = 0; b < dc->nbases; b++)
				if (dir_w_search(d, dc->bases[b],
				    LDAP_SCOPE_SUBTREE, filter, dc->member_attrs,
				    dir_w_group_entry, &m, err, errlen) < 0)
					goto out;
		}
		r->found = m.groups > 0;
		/* groupOfNames: each member DN, if it is a user */
		for (i = 0; i < m.ndns; i++)
			if (dir_w_search(d, m.dns[i], LDAP_SCOPE_BASE,
			    dc->user_filter, attrs, dir_w_user_entry, &a, err,
			    errlen) < 0)
				goto out;
		/* posixGroup: memberUid values through the user search */
		if (m.nuids > 0 && dir_w_users_by_uid(d, m.uids, m.nuids, &a,
		    err, errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	free(esc);
	free(filter);
	for (i = 0; i < m.ndns; i++)
		free(m.dns[i]);
	for (i = 0; i < m.nuids; i++)
		free(m.uids[i]);
	free(m.dns);
	free(m.uids);
	ht_free(a.seen, NULL);
	r->addrs = a.v;
	r->naddrs = a.n;
	return rc;
}

static void
dir_res_free(struct dir_res *r)
{
	size_t i;

	for (i = 0; i < r->naddrs; i++)
		free(r->addrs[i]);
	free(r->addrs);
	free(r->name);
	free(r->error);
	free(r);
}

static void
dir_run_cb(void *arg, struct worker_job *wj, int late)
{
	struct dir *d = arg;
	struct dir_res *r = (struct dir_res *)wj;
	struct dir_conf *nc;
	char err[1024];
	int attempt;

	nc = __atomic_exchange_n(&d->next_conf, NULL, __ATOMIC_ACQ_REL);
	if (nc != NULL) {
		dir_w_drop(d);
		dir_conf_free(d->wconf);
		d->wconf = nc;
	}
	if (r->name == NULL || late)
		return;		/* settings only, or dir_free */
	err[0] = '\0';
	/* a connection that died since the last lookup gets one fresh try */
	for (attempt = 0; attempt < 2; attempt++) {
		int had = d->ld != NULL;

		if (dir_w_connect(d, err, sizeof(err)) < 0)
			break;
		if (dir_w_lookup(d, r, err, sizeof(err)) == 0) {
			r->ok = 1;
			break;
		}
		if (d->ld != NULL || !had)
			break;	/* not a lost connection */
	}
	if (!r->ok)
		r->error = xstrdup(err[0] ? err : "lookup failed");
}

static void
dir_exit_cb(void *arg)
{
	dir_w_drop(arg);
}

/* ---- the loop: cache ----------------------------------------------------------- */

static void
dir_entry_free(void *arg)
{
	struct dir_entry *e = arg;

	ht_free(e->members, NULL);
	free(e->name);
	free(e);
}

static void
dir_key(char *buf, size_t buflen, int user, const char *name)
{
	snprintf(buf, buflen, "%c:%s", user ? 'u' : 'g', name);
}

static void
dir_apply(struct dir *d, struct dir_res *r, uint64_t now)
{
	char key[1100];
	struct dir_entry *e;
	size_t i;

	d->lookups++;
	dir_key(key, sizeof(key), r->user, r->name);
	e = ht_get(d->cache, key);
	if (e != NULL) {
		e->inflight = 0;
		e->tried_ms = now;
	}
	if (!r->ok) {
		d->failures++;
		d->last_fail_ms = now;
		if (d->state != DIR_DOWN || strcmp(d->error, r->error) != 0)
			log_msg(IMGW_LOG_WARNING, "directory", NULL, "%s; "
			    "policies keep using the cached groups", r->error);
		snprintf(d->error, sizeof(d->error), "%s", r->error);
		d->state = DIR_DOWN;
		return;
	}
	if (d->state == DIR_DOWN)
		log_msg(IMGW_LOG_NOTICE, "directory", NULL, "%s answers again",
		    d->conf->uri);
	d->state = DIR_UP;
	d->error[0] = '\0';
	d->last_ok_ms = now;
	if (e == NULL)
		return;		/* no longer wanted */
	if (!r->found && (!e->loaded || e->found))
		log_msg(IMGW_LOG_WARNING, "directory", NULL, "%s '%s' not found "
		    "in the directory", r->user ? "user" : "group", r->name);
	ht_free(e->members, NULL);
	e->members = ht_new();
	for (i = 0; i < r->naddrs; i++)
		ht_put(e->members, r->addrs[i], (void *)1);
	e->nmembers = r->naddrs;
	e->found = r->found;
	e->loaded = 1;
	e->fetched_ms = now;
	log_msg(IMGW_LOG_DEBUG, "directory", NULL, "%s '%s': %zu addresses",
	    r->user ? "user" : "group", r->name, r->naddrs);
}

/* A lookup is back on the loop (worker.h). */
static void
dir_done_cb(void *arg, struct worker_job *wj)
{
	struct dir *d = arg;
	struct dir_res *r = (struct dir_res *)wj;

	if (r->name != NULL && !d->closing)
		dir_apply(d, r, util_now_ms());
	dir_res_free(r);
}

static const struct worker_ops dir_worker_ops = {
	.run_cb = dir_run_cb,
	.done_cb = dir_done_cb,
	.exit_cb = dir_exit_cb,
};

struct dir_walk {
	struct dir *d;
	uint64_t now;
};

static int
dir_due_cb(const char *key, void *value, void *arg)
{
	struct dir_walk *w = arg;
	struct dir_entry *e = value;
	uint64_t ttl = (uint64_t)w->d->conf->ttl * 1000;
	uint64_t retry = ttl < DIR_RETRY_MAX_S * 1000 ? ttl
						      : DIR_RETRY_MAX_S * 1000;
	struct dir_res *r;

	if (!e->wanted) {
		dir_entry_free(ht_del(w->d->cache, key));
		return 0;
	}
	if (e->inflight)
		return 0;
	if (e->loaded && w->now - e->fetched_ms < ttl)
		return 0;
	if (e->tried_ms != 0 && w->now - e->tried_ms < retry)
		return 0;
	r = xcalloc(1, sizeof(*r));
	r->user = e->user;
	r->name = xstrdup(e->name);
	if (worker_submit(w->d->w, &r->wj) < 0) {
		dir_res_free(r);
		return 0;
	}
	e->inflight = 1;
	return 0;
}

/* Ask the worker for every wanted entry that is due. */
static void
dir_schedule(struct dir *d)
{
	struct dir_walk w = { d, util_now_ms() };

	ht_foreach(d->cache, dir_due_cb, &w);
}

static void
dir_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	dir_schedule(arg);
}

static int
dir_unwant_cb(const char *key, void *value, void *arg)
{
	((struct dir_entry *)value)->wanted = 0;
	return 0;
}

static void
dir_want_one(struct dir *d, int user, const char *name)
{
	char key[1100];
	struct dir_entry *e;

	if (strlen(name) > 1024)
		return;
	dir_key(key, sizeof(key), user, name);
	if ((e = ht_get(d->cache, key)) == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->user = user;
		e->name = xstrdup(name);
		e->members = ht_new();
		ht_put(d->cache, key, e);
	}
	e->wanted = 1;
}

void
dir_want(struct dir *d, const char *const *groups, size_t ngroups,
    const char *const *users, size_t nusers)
{
	size_t i;

	ht_foreach(d->cache, dir_unwant_cb, NULL);
	for (i = 0; i < ngroups; i++)
		dir_want_one(d, 0, groups[i]);
	for (i = 0; i < nusers; i++)
		dir_want_one(d, 1, users[i]);
	dir_schedule(d);	/* also drops what is no longer wanted */
}

int
dir_member(struct dir *d, int user, const char *name, const char *addr)
{
	char key[1100];
	struct dir_entry *e;

	dir_key(key, sizeof(key), user, name);
	if ((e = ht_get(d->cache, key)) == NULL || !e->loaded)
		return -1;
	return ht_get(e->members, addr) != NULL;
}

static int
dir_policy_member(void *arg, int user, const char *name, const char *addr)
{
	return dir_member(arg, user, name, addr);
}

static void
dir_policy_want(void *arg, const char *const *groups, size_t ngroups,
    const char *const *users, size_t nusers)
{
	dir_want(arg, groups, ngroups, users, nusers);
}

void
dir_policy_ops(struct dir *d, struct policy_dir_ops *ops)
{
	ops->member = dir_policy_member;
	ops->want = dir_policy_want;
	ops->arg = d;
}

/* ---- life ----------------------------------------------------------------------- */

struct dir *
dir_new(struct event_base *base, const struct conf *c, char *err,
    size_t errlen)
{
	struct timeval tv = { DIR_TICK_MS / 1000, 0 };
	struct dir_conf *dc;
	struct dir *d;

	if ((dc = dir_conf_parse(c, err, errlen)) == NULL)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->conf = dc;
	d->wconf = dir_conf_dup(dc);
	d->cache = ht_new();
	d->w = worker_new(base, "directory", &dir_worker_ops, d, SIZE_MAX, err,
	    errlen);
	if (d->w == NULL)
		goto fail;
	d->tick = event_new(base, -1, EV_PERSIST, dir_tick_cb, d);
	event_add(d->tick, &tv);
	log_msg(IMGW_LOG_INFO, "directory", NULL, "%s%s, base %s%s, ttl %us",
	    dc->uri, dc->starttls ? " (StartTLS)" : "", dc->bases[0],
	    dc->nbases > 1 ? " ..." : "", dc->ttl);
	return d;
fail:
	dir_free(d);
	return NULL;
}

static int
dir_stale_cb(const char *key, void *value, void *arg)
{
	struct dir_entry *e = value;

	e->fetched_ms = 0;	/* due now, still used meanwhile */
	e->tried_ms = 0;
	return 0;
}

int
dir_reconfigure(struct dir *d, const struct conf *c, char *err,
    size_t errlen)
{
	struct dir_conf *dc;
	struct dir_res *r;

	if ((dc = dir_conf_parse(c, err, errlen)) == NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "[directory] removed");
		return -1;
	}
	if (dir_conf_same(dc, d->conf)) {
		dir_conf_free(dc);
		return 0;
	}
	dir_conf_free(__atomic_exchange_n(&d->next_conf, dir_conf_dup(dc),
	    __ATOMIC_ACQ_REL));
	/* wake the worker to take them, even with no lookup due */
	r = xcalloc(1, sizeof(*r));
	if (worker_submit(d->w, &r->wj) < 0)
		dir_res_free(r);
	dir_conf_free(d->conf);
	d->conf = dc;
	d->state = DIR_CONNECTING;
	d->error[0] = '\0';
	ht_foreach(d->cache, dir_stale_cb, NULL);
	dir_schedule(d);
	log_msg(IMGW_LOG_NOTICE, "directory", NULL, "new settings: %s%s",
	    dc->uri, dc->starttls ? " (StartTLS)" : "");
	return 0;
}

void
dir_free(struct dir *d)
{
	if (d == NULL)
		return;
	/* what is still queued is not looked up, nor its answer applied */
	d->closing = 1;
	worker_free(d->w, 0);
	if (d->tick != NULL)
		event_free(d->tick);
	dir_conf_free(d->next_conf);
	dir_conf_free(d->wconf);
	dir_conf_free(d->conf);
	ht_free(d->cache, dir_entry_free);
	free(d);
}

/* ---- status ---------------------------------------------------------------------- */

const char *
dir_state(const struct dir *d)
{
	switch (d->state) {
	case DIR_UP:
		return "up";
	case DIR_DOWN:
		return "down";
	default:
		return "connecting";
	}
}

struct dir_status_walk {
	json_object *a;
	size_t n, groups, users, stale;
	uint64_t now, ttl;
};

static int
dir_status_cb(const char *key, void *value, void *arg)
{
	struct dir_status_walk *w = arg;
	struct dir_entry *e = value;
	json_object *o;

	if (e->user)
		w->users++;
	else
		w->groups++;
	if (!e->loaded || w->now - e->fetched_ms >= w->ttl)
		w->stale++;
	if (w->n++ >= DIR_STATUS_ENTRIES)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(e->user
	    ? "user" : "group"));
	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "loaded", json_object_new_boolean(e->loaded));
	json_object_object_add(o, "found", json_object_new_boolean(e->found));
	json_object_object_add(o, "addresses", json_object_new_int64(
	    (int64_t)e->nmembers));
	json_object_object_add(o, "age_s", e->loaded ? json_object_new_int64(
	    (int64_t)((w->now - e->fetched_ms) / 1000)) : NULL);
	json_object_array_add(w->a, o);
	return 0;
}

json_object *
dir_status_json(const struct dir *d)
{
	json_object *o = json_object_new_object();
	struct dir_status_walk w = {
		.a = json_object_new_array(),
		.now = util_now_ms(),
		.ttl = (uint64_t)d->conf->ttl * 1000,
	};

	json_object_object_add(o, "uri", json_object_new_string(d->conf->uri));
	json_object_object_add(o, "starttls", json_object_new_boolean(
	    d->conf->starttls));
	json_object_object_add(o, "state", json_object_new_string(
	    dir_state(d)));
	if (d->error[0] != '\0')
		json_object_object_add(o, "error", json_object_new_string(
		    d->error));
	json_object_object_add(o, "ttl", json_object_new_int64(d->conf->ttl));
	json_object_object_add(o, "last_ok_s", d->last_ok_ms
	    ? json_object_new_int64((int64_t)((w.now - d->last_ok_ms) / 1000))
	    : NULL);
	json_object_object_add(o, "lookups", json_object_new_int64(
	    (int64_t)d->lookups));
	json_object_object_add(o, "failures", json_object_new_int64(
	    (int64_t)d->failures));
	ht_foreach(((struct dir *)d)->cache, dir_status_cb, &w);
	json_object_object_add(o, "groups", json_object_new_int64(
	    (int64_t)w.groups));
	json_object_object_add(o, "users", json_object_new_int64(
	    (int64_t)w.users));
	json_object_object_add(o, "stale", json_object_new_int64(
	    (int64_t)w.stale));
	json_object_object_add(o, "entries", w.a);
	return o;
}
