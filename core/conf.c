/* The configuration file reader: syntax, core keys, cross-section checks. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#define CONF_MAX_LINE	8192

/* Parser state while reading one file. */
struct conf_parser {
	struct conf *conf;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	/* current section: NULL community means [gateway] */
	int in_section;
	struct conf_community *comm;
	struct conf_section *sect;	/* [store], [directory] */
	/* keys seen in the current section, for duplicate detection */
	struct conf_kv seen[64];
	size_t nseen;
	int gateway_line;
};

static int
conf_fail(struct conf_parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conf_fail(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->file);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

static char *
conf_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int
conf_parse_bool(const char *v)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "off") || !strcmp(v, "0"))
		return 0;
	return -1;
}

int
conf_parse_ll(const char *v, long long *out)
{
	char *end;
	long long n;

	if (*v == '\0')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* "N/SECONDS" with both parts positive. */
static int
conf_parse_rate(const char *v, unsigned *n_r, unsigned *secs_r)
{
	unsigned long n, s;
	char *end;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end != '/' || n == 0 || n > 1000000)
		return -1;
	v = end + 1;
	s = strtoul(v, &end, 10);
	if (errno || end == v || *end != '\0' || s == 0 || s > 86400)
		return -1;
	*n_r = (unsigned)n;
	*secs_r = (unsigned)s;
	return 0;
}

/*
 * Canonical domain: lower case, no trailing dot, labels of letters,
 * digits, '-' and UTF-8 bytes.  Returns a new string or NULL.
 */
char *
conf_domain_canon(const char *d)
{
	size_t n = strlen(d), i;
	char *s;

	if (n > 0 && d[n - 1] == '.')
		n--;	/* the root label */
	if (n == 0 || n > 1023 || d[n - 1] == '.')
		return NULL;
	s = xstrndup(d, n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			s[i] = (char)(c - 'A' + 'a');
		else if (c == '.') {
			if (i == 0 || s[i - 1] == '.')
				goto bad;
		} else if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
		    c != '-' && c != '_' && c < 0x80)
			goto bad;
	}
	return s;
bad:
	free(s);
	return NULL;
}

/* Paths in the file are relative to the file's folder, and always kept
 * absolute: the daemon leaves its working folder. */
static int
conf_path_set(struct conf_parser *p, char **dst, const char *v)
{
	const char *slash = strrchr(p->file, '/');
	int dirlen = slash ? (int)(slash - p->file) : 0;
	char cwd[PATH_MAX];

	free(*dst);
	if (v[0] == '/') {
		*dst = xstrdup(v);
	} else if (p->file[0] == '/') {
		*dst = xasprintf("%.*s/%s", dirlen, p->file, v);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			snprintf(cwd, sizeof(cwd), ".");
		if (slash != NULL)
			*dst = xasprintf("%s/%.*s/%s", cwd, dirlen, p->file, v);
		else
			*dst = xasprintf("%s/%s", cwd, v);
	}
	return 0;
}

static int
conf_gateway_key(struct conf_parser *p, const char *k, const char *v)
{
	struct conf *c = p->conf;
	long long n;
	int lvl;

	if (!strcmp(k, "node")) {
		free(c->node);
		c->node = xstrdup(v);
	} else if (!strcmp(k, "connectors")) {
		conf_path_set(p, &c->connectors, v);
	} else if (!strcmp(k, "control")) {
		conf_path_set(p, &c->control, v);
	} else if (!strcmp(k, "log-level")) {
		if ((lvl = log_level_parse(v)) < 0)
			return conf_fail(p, p->line, "log-level '%s': expected err, "
			    "warning, notice, info or debug", v);
		c->log_level = lvl;
	} else if (!strcmp(k, "log")) {
		if (!strcmp(v, "syslog"))
			c->log_syslog = 1;
		else if (!strcmp(v, "stderr"))
			c->log_syslog = 0;
		else
			return conf_fail(p, p->line, "log '%s': expected stderr or "
			    "syslog", v);
	} else if (!strcmp(k, "queue-size")) {
		if (conf_parse_ll(v, &n) < 0 || n < 1 || n > 10000000)
			return conf_fail(p, p->line, "queue-size '%s': expected a "
			    "number from 1 to 10000000", v);
		c->queue_size = (size_t)n;
	} else if (!strcmp(k, "presence-rate")) {
		if (conf_parse_rate(v, &c->presence_rate, &c->presence_window))
			return conf_fail(p, p->line, "presence-rate '%s': expected "
			    "N/SECONDS, e.g. 10/10", v);
	} else if (!strcmp(k, "loop-limit")) {
		if (conf_parse_rate(v, &c->loop_limit, &c->loop_window))
			return conf_fail(p, p->line, "loop-limit '%s': expected "
			    "N/SECONDS, e.g. 20/10", v);
	} else {
		return conf_fail(p, p->line, "unknown key '%s' in [gateway]", k);
	}
	return 0;
}

static int
conf_domains(struct conf_parser *p, struct conf_community *cc, const char *v)
{
	char *copy = xstrdup(v), *tok, *save = NULL, *d;
	size_t i;

	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if ((d = conf_domain_canon(tok)) == NULL) {
			conf_fail(p, p->line, "invalid domain '%s'", tok);
			goto fail;
		}
		for (i = 0; i < cc->ndomains; i++) {
			if (!strcmp(cc->domains[i], d)) {
				conf_fail(p, p->line, "domain '%s' listed twice", d);
				free(d);
				goto fail;
			}
		}
		cc->domains = xreallocarray(cc->domains, cc->ndomains + 1,
		    sizeof(*cc->domains));
		cc->domains[cc->ndomains++] = d;
	}
	free(copy);
	if (cc->ndomains == 0)
		return conf_fail(p, p->line, "domains: at least one domain needed");
	return 0;
fail:
	free(copy);
	return -1;
}

static int
conf_community_key(struct conf_parser *p, const char *k, const char *v)
{
	struct conf_community *cc = p->comm;
	long long n;
	int b;

	if (!strcmp(k, "connector")) {
		if (strchr(v, '/') != NULL || v[0] == '.')
			return conf_fail(p, p->line, "connector '%s': a name, not a "
			    "path (the file is CONNECTORS/NAME.so)", v);
		cc->connector = xstrdup(v);
		cc->connector_line = p->line;
	} else if (!strcmp(k, "local")) {
		if ((b = conf_parse_bool(v)) < 0)
			return conf_fail(p, p->line, "local '%s': expected yes or no",
			    v);
		cc->local = b;
	} else if (!strcmp(k, "domains")) {
		return conf_domains(p, cc, v);
	} else if (!strcmp(k, "queue-size")) {
		if (conf_parse_ll(v, &n) < 0 || n < 1 || n > 10000000)
			return conf_fail(p, p->line, "queue-size '%s': expected a "
			    "number from 1 to 10000000", v);
		cc->queue_size = (size_t)n;
	} else {
		cc->opts = xreallocarray(cc->opts, cc->nopts + 1,
		    sizeof(*cc->opts));
		cc->opts[cc->nopts++] = (struct conf_kv){
			.key = xstrdup(k), .value = xstrdup(v), .line = p->line,
		};
	}
	return 0;
}

static int
conf_valid_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    *s != '.')
			return 0;
	return 1;
}

static void
conf_seen_reset(struct conf_parser *p)
{
	size_t i;

	for (i = 0; i < p->nseen; i++)
		free(p->seen[i].key);
	p->nseen = 0;
}

static int
conf_section(struct conf_parser *p, char *s)
{
	char *end = strchr(s, ']'), *name;
	struct conf *c = p->conf;
	size_t i;

	if (end == NULL || *conf_trim(end + 1) != '\0')
		return conf_fail(p, p->line, "malformed section header");
	*end = '\0';
	s = conf_trim(s + 1);
	conf_seen_reset(p);
	p->in_section = 1;
	p->sect = NULL;
	if (!strcmp(s, "store") || !strcmp(s, "directory")) {
		struct conf_section *sec = !strcmp(s, "store") ? &c->store
							    : &c->directory;

		if (sec->line)
			return conf_fail(p, p->line, "duplicate [%s] section "
			    "(first at line %d)", s, sec->line);
		sec->line = p->line;
		p->sect = sec;
		p->comm = NULL;
		return 0;
	}
	if (!strcmp(s, "gateway")) {
		if (p->gateway_line)
			return conf_fail(p, p->line, "duplicate [gateway] section "
			    "(first at line %d)", p->gateway_line);
		p->gateway_line = p->line;
		p->comm = NULL;
		return 0;
	}
	if (strncmp(s, "community", 9) != 0 || (s[9] != ' ' && s[9] != '\t'))
		return conf_fail(p, p->line, "unknown section [%s]: expected "
		    "[gateway], [store], [directory] or [community NAME]", s);
	name = conf_trim(s + 9);
	if (!conf_valid_name(name))
		return conf_fail(p, p->line, "invalid community name '%s' "
		    "(letters, digits, '-', '_', '.')", name);
	for (i = 0; i < c->ncomms; i++)
		if (!strcmp(c->comms[i].name, name))
			return conf_fail(p, p->line, "duplicate community '%s' "
			    "(first at line %d)", name, c->comms[i].line);
	c->comms = xreallocarray(c->comms, c->ncomms + 1, sizeof(*c->comms));
	p->comm = &c->comms[c->ncomms++];
	*p->comm = (struct conf_community){ .name = xstrdup(name),
		.line = p->line };
	return 0;
}

static int
conf_line(struct conf_parser *p, char *raw)
{
	char *s = conf_trim(raw), *eq, *k, *v;
	size_t i;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return conf_section(p, s);
	if ((eq = strchr(s, '=')) == NULL)
		return conf_fail(p, p->line, "expected 'key = value'");
	*eq = '\0';
	k = conf_trim(s);
	v = conf_trim(eq + 1);
	if (*k == '\0')
		return conf_fail(p, p->line, "missing key before '='");
	if (!p->in_section)
		return conf_fail(p, p->line, "key '%s' outside of any section", k);
	if (*v == '\0')
		return conf_fail(p, p->line, "key '%s' has no value", k);
	for (i = 0; i < p->nseen; i++)
		if (!strcmp(p->seen[i].key, k))
			return conf_fail(p, p->line, "duplicate key '%s' (first at "
			    "line %d)", k, p->seen[i].line);
	if (p->nseen == sizeof(p->seen) / sizeof(p->seen[0]))
		return conf_fail(p, p->line, "too many keys in one section");
	p->seen[p->nseen++] = (struct conf_kv){ .key = xstrdup(k),
		.line = p->line };
	if (p->sect != NULL) {
		struct conf_section *sec = p->sect;

		sec->kv = xreallocarray(sec->kv, sec->n + 1, sizeof(*sec->kv));
		sec->kv[sec->n++] = (struct conf_kv){ .key = xstrdup(k),
			.value = xstrdup(v), .line = p->line };
		return 0;
	}
	if (p->comm == NULL)
		return conf_gateway_key(p, k, v);
	return conf_community_key(p, k, v);
}

/* Checks that need the whole file. */
static int
conf_check(struct conf_parser *p)
{
	struct conf *c = p->conf;
	const struct conf_community *local = NULL;
	size_t i, j, k, l;

	for (i = 0; i < c->ncomms; i++) {
		struct conf_community *cc = &c->comms[i];

		if (cc->connector == NULL)
			return conf_fail(p, cc->line, "community '%s' has no "
			    "'connector' key", cc->name);
		if (cc->ndomains == 0)
			return conf_fail(p, cc->line, "community '%s' has no "
			    "'domains' key", cc->name);
		if (cc->local) {
			if (local != NULL)
				return conf_fail(p, cc->line, "community '%s' is "
				    "local, but so is '%s' (line %d): only one "
				    "local community", cc->name, local->name,
				    local->line);
			local = cc;
		}
		for (j = 0; j < i; j++)
			for (k = 0; k < cc->ndomains; k++)
				for (l = 0; l < c->comms[j].ndomains; l++)
					if (!strcmp(cc->domains[k],
					    c->comms[j].domains[l]))
						return conf_fail(p, cc->line,
						    "domain '%s' of community "
						    "'%s' is already claimed by "
						    "community '%s' (line %d)",
						    cc->domains[k], cc->name,
						    c->comms[j].name,
						    c->comms[j].line);
	}
	return 0;
}

struct conf *
conf_load(const char *file, char *err, size_t errlen)
{
	struct conf_parser p = { .file = file, .err = err, .errlen = errlen };
	char host[256];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;

	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", file,
		    strerror(errno));
		return NULL;
	}
	p.conf = xcalloc(1, sizeof(*p.conf));
	p.conf->file = xstrdup(file);
	p.conf->log_level = IMGW_LOG_INFO;
	p.conf->queue_size = 1024;
	p.conf->presence_rate = 10;
	p.conf->presence_window = 10;
	p.conf->loop_limit = 20;
	p.conf->loop_window = 10;
	while ((n = getline(&line, &cap, fp)) != -1) {
		p.line++;
		if (n > CONF_MAX_LINE) {
			conf_fail(&p, p.line, "line longer than %d bytes",
			    CONF_MAX_LINE);
			goto fail;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			conf_fail(&p, p.line, "NUL byte in line");
			goto fail;
		}
		if (conf_line(&p, line) < 0)
			goto fail;
	}
	if (ferror(fp)) {
		conf_fail(&p, 0, "read error: %s", strerror(errno));
		goto fail;
	}
	if (conf_check(&p) < 0)
		goto fail;
	if (p.conf->node == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "imgw");
		host[sizeof(host) - 1] = '\0';
		p.conf->node = xstrdup(host);
	}
	if (p.conf->connectors == NULL)
		p.conf->connectors = xstrdup(IMGW_CONNECTORDIR);
	if (p.conf->control == NULL)
		p.conf->control = xstrdup(CONF_DEFAULT_CONTROL);
	conf_seen_reset(&p);
	free(line);
	fclose(fp);
	return p.conf;
fail:
	conf_seen_reset(&p);
	free(line);
	fclose(fp);
	conf_free(p.conf);
	return NULL;
}

static void
conf_community_clear(struct conf_community *cc)
{
	size_t j;

	free(cc->name);
	free(cc->connector);
	for (j = 0; j < cc->ndomains; j++)
		free(cc->domains[j]);
	free(cc->domains);
	for (j = 0; j < cc->nopts; j++) {
		free(cc->opts[j].key);
		free(cc->opts[j].value);
	}
	free(cc->opts);
}

struct conf_community *
conf_community_dup(const struct conf_community *cc)
{
	struct conf_community *d = xcalloc(1, sizeof(*d));
	size_t i;

	*d = *cc;
	d->name = xstrdup(cc->name);
	d->connector = xstrdup(cc->connector);
	d->domains = xcalloc(cc->ndomains, sizeof(*d->domains));
	for (i = 0; i < cc->ndomains; i++)
		d->domains[i] = xstrdup(cc->domains[i]);
	d->opts = xcalloc(cc->nopts, sizeof(*d->opts));
	for (i = 0; i < cc->nopts; i++) {
		d->opts[i] = cc->opts[i];
		d->opts[i].key = xstrdup(cc->opts[i].key);
		d->opts[i].value = xstrdup(cc->opts[i].value);
	}
	return d;
}

void
conf_community_free(struct conf_community *cc)
{
	if (cc == NULL)
		return;
	conf_community_clear(cc);
	free(cc);
}

static void
conf_section_clear(struct conf_section *sec)
{
	size_t i;

	for (i = 0; i < sec->n; i++) {
		free(sec->kv[i].key);
		free(sec->kv[i].value);
	}
	free(sec->kv);
}

const char *
conf_section_get(const struct conf_section *sec, const char *key, int *line_r)
{
	size_t i;

	for (i = 0; i < sec->n; i++) {
		if (strcmp(sec->kv[i].key, key) == 0) {
			if (line_r != NULL)
				*line_r = sec->kv[i].line;
			return sec->kv[i].value;
		}
	}
	if (line_r != NULL)
		*line_r = sec->line;
	return NULL;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	conf_section_clear(&c->store);
	conf_section_clear(&c->directory);
	for (i = 0; i < c->ncomms; i++)
		conf_community_clear(&c->comms[i]);
	free(c->comms);
	free(c->file);
	free(c->node);
	free(c->connectors);
	free(c->control);
	free(c);
}

const struct conf_community *
conf_community(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->ncomms; i++)
		if (!strcmp(c->comms[i].name, name))
			return &c->comms[i];
	return NULL;
}

int
conf_community_same(const struct conf_community *a,
    const struct conf_community *b)
{
	size_t i, j;

	if (strcmp(a->name, b->name) || strcmp(a->connector, b->connector) ||
	    a->local != b->local || a->queue_size != b->queue_size ||
	    a->ndomains != b->ndomains || a->nopts != b->nopts)
		return 0;
	for (i = 0; i < a->ndomains; i++)
		if (strcmp(a->domains[i], b->domains[i]))
			return 0;
	/* options compare as a set: order in the file does not matter */
	for (i = 0; i < a->nopts; i++) {
		for (j = 0; j < b->nopts; j++)
			if (!strcmp(a->opts[i].key, b->opts[j].key))
				break;
		if (j == b->nopts || strcmp(a->opts[i].value, b->opts[j].value))
			return 0;
	}
	return 1;
}
