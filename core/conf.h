/*
 * The configuration file: INI style, '#' or ';' comments, "key = value".
 *
 *   [gateway]            node, connectors, control, log-level, log,
 *                        queue-size, presence-rate, loop-limit
 *   [store]              checked by the store (store.h)
 *   [directory]          checked by the directory client (directory.h)
 *   [community NAME]     connector, local, domains, queue-size, and the
 *                        connector's own options (validated later against
 *                        the connector's option table, see loader.h)
 *
 * Every error is reported as "FILE:LINE: message".
 */
#ifndef IMGW_CORE_CONF_H
#define IMGW_CORE_CONF_H

#include <stddef.h>

/* One "key = value" line of a community section kept for the connector. */
struct conf_kv {
	char *key;
	char *value;
	int line;
};

struct conf_community {
	char *name;
	int line;		/* line of the section header */
	char *connector;	/* connector name: CONNECTORS/NAME.so */
	int connector_line;
	int local;		/* local = yes */
	char **domains;		/* lower case, no trailing dot */
	size_t ndomains;
	size_t queue_size;	/* 0: the gateway's */
	struct conf_kv *opts;	/* connector options, in file order */
	size_t nopts;
};

/* A section whose keys another subsystem checks ([store], [directory]). */
struct conf_section {
	int line;		/* of the header; 0: section absent */
	struct conf_kv *kv;
	size_t n;
};

struct conf {
	char *file;
	char *node;		/* default: host name */
	char *connectors;	/* connector folder */
	char *control;		/* control socket path */
	int log_level;		/* enum imgw_log_level */
	int log_syslog;		/* log = syslog */
	size_t queue_size;	/* default per-community queue bound */
	unsigned presence_rate;	/* presences per pair ... */
	unsigned presence_window; /* ... per this many seconds */
	unsigned loop_limit;	/* direction flips per pair ... */
	unsigned loop_window;	/* ... per this many seconds */
	struct conf_community *comms;
	size_t ncomms;
	struct conf_section store;	/* checked by the store */
	struct conf_section directory;	/* checked by the directory client */
};

/* The value of `key` in a section, or NULL; the line in *line_r. */
const char *conf_section_get(const struct conf_section *s, const char *key,
    int *line_r);

/*
 * Read and check `file`.  Returns a new conf, or NULL with "FILE:LINE:
 * message" (or "FILE: message") in err.  Checks syntax, known gateway and
 * community keys, duplicate keys and communities, domains claimed twice,
 * more than one local community.
 */
struct conf *conf_load(const char *file, char *err, size_t errlen);
void conf_free(struct conf *c);

/* The community named `name`, or NULL. */
const struct conf_community *conf_community(const struct conf *c,
    const char *name);

/*
 * Non-zero when two community sections are the same for the running
 * instance (connector, local, domains, queue size, options).
 */
int conf_community_same(const struct conf_community *a,
    const struct conf_community *b);

/* Deep copy of one section (instances own theirs) and its release. */
struct conf_community *conf_community_dup(const struct conf_community *cc);
void conf_community_free(struct conf_community *cc);

/* Value parsers shared with the connector option checks: 0 / -1. */
int conf_parse_bool(const char *v);		/* 1, 0, or -1 */
int conf_parse_ll(const char *v, long long *out);

/* Canonical domain (lower case, no trailing dot) or NULL when invalid;
 * the caller frees. */
char *conf_domain_canon(const char *d);

/* Default path of the configuration file. */
#define CONF_DEFAULT_FILE	IMGW_SYSCONFDIR "/imgw/imgwd.conf"
#define CONF_DEFAULT_CONTROL	IMGW_RUNSTATEDIR "/imgw/imgwd.sock"

#endif
