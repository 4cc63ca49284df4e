/*
 * jsonl connector — private declarations shared by its files.
 *
 *   jsonl.c   descriptor, options, init/start/deliver/stop/fini
 *   listen.c  the listening socket: parse `listen`, bind, accept
 *   conn.c    one client connection: line input, buffered output, watch
 *   proto.c   what a client line means: bind, unbind, events, answers
 *   codec.c   JSON line <-> struct imgw_event, UTF-8 checks
 *   bind.c    the bind table: bare address or "*" -> connections
 *
 * Everything runs on the core's loop thread; nothing here locks.
 */
#ifndef IMGW_PLUGIN_JSONL_H
#define IMGW_PLUGIN_JSONL_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <imgw/imgw.h>

struct json_object;
struct json_tokener;

#define JSONL_JSON_DEPTH	32	/* nesting accepted in a client line */
#define JSONL_MAX_BINDS		1024	/* users one connection may bind */
#define JSONL_READS_PER_CB	16	/* reads per callback, for fairness */
#define JSONL_ACCEPTS_PER_CB	64
#define JSONL_ACCEPT_RETRY_MS	250	/* after EMFILE and friends */
#define JSONL_DOMAIN_MAX	1024	/* domain bytes incl. NUL (address.h) */

struct jsonl;
struct jsonl_conn;

/* One key of the bind table and the connections that bound it. */
struct jsonl_bind {
	char *user;			/* bare, ASCII lower case, or "*" */
	size_t hash;
	struct jsonl_conn **conns;
	size_t nconns, cap;
	struct jsonl_bind *next;	/* hash chain */
};

struct jsonl_bindtab {
	struct jsonl_bind **buckets;
	size_t nbuckets;		/* power of two, or 0 before first add */
	size_t count;
};

struct jsonl_conn {
	struct jsonl *jl;
	struct jsonl_conn *prev, *next;
	int fd;
	unsigned long id;		/* for log lines */
	char peer[80];
	struct imgw_watch *watch;
	int want;			/* interest the watch has now */

	char *in;			/* bytes of the line being read */
	size_t in_len, in_cap;
	size_t in_scan;			/* in[0..in_scan) holds no newline */
	int discard;			/* skipping an oversized line */

	char *out;			/* out[out_off..out_len) waits to go */
	size_t out_off, out_len, out_cap;

	int eof;			/* peer closed its side */
	int dead;			/* I/O or memory error: close soon */
	int rpaused;			/* not reading: too much output */
	int blocked;			/* a deliver said AGAIN because of us */

	struct jsonl_bind **binds;	/* table keys this connection bound */
	size_t nbinds;
};

struct jsonl {
	struct imgw_instance *inst;
	const struct imgw_host *host;

	/* options */
	const char *listen;		/* borrowed from the host */
	size_t max_line;
	size_t max_output;
	size_t max_conns;

	/* listener */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *unix_path;		/* unix:PATH, else NULL */
	dev_t unix_dev;
	ino_t unix_ino;
	int unix_made;			/* we created the socket file */
	int lfd;
	struct imgw_watch *lwatch;
	struct imgw_timer *ltimer;	/* re-arms accept after EMFILE */

	struct jsonl_conn *conns;
	size_t nconns;
	unsigned long next_id;
	struct jsonl_bindtab binds;
	struct json_tokener *tok;

	int again;			/* deliver said AGAIN, resume owed */
	int stopping;
};

#define JSONL_LOG(jl, lvl, ...) \
	(jl)->host->log((jl)->inst, (lvl), NULL, __VA_ARGS__)

/* listen.c */
int jsonl_listen_parse(struct jsonl *jl, const char *spec);
int jsonl_listen_open(struct jsonl *jl);
void jsonl_listen_close(struct jsonl *jl);

/* conn.c */
struct jsonl_conn *jsonl_conn_new(struct jsonl *jl, int fd, const char *peer);
void jsonl_conn_close(struct jsonl_conn *c, const char *why);
void jsonl_conn_flush(struct jsonl_conn *c);
int jsonl_conn_send(struct jsonl_conn *c, const char *line, size_t len);
int jsonl_conn_send_json(struct jsonl_conn *c, struct json_object *obj);
size_t jsonl_conn_pending(const struct jsonl_conn *c);
int jsonl_conn_usable(const struct jsonl_conn *c);

/* proto.c */
void jsonl_proto_line(struct jsonl_conn *c, char *line, size_t len);
void jsonl_proto_error(struct jsonl_conn *c, struct json_object *id, const char *condition,
    const char *text);

/* codec.c */
struct json_object *jsonl_codec_parse(struct json_tokener *tok, const char *line, size_t len,
    const char **text_r);
int jsonl_codec_string(struct json_object *obj, const char *key, const char **val_r);
int jsonl_codec_event(struct json_object *obj, struct imgw_event *ev, const char **text_r);
struct json_object *jsonl_codec_format(const struct imgw_event *ev);
const char *jsonl_codec_text(struct json_object *obj, size_t *len_r);

/* bind.c */
int jsonl_bind_key(const char *user, char *key_r, size_t keylen);
int jsonl_bind_add(struct jsonl_conn *c, const char *key);
int jsonl_bind_del(struct jsonl_conn *c, const char *key);
void jsonl_bind_drop_conn(struct jsonl_conn *c);
struct jsonl_bind *jsonl_bind_find(struct jsonl *jl, const char *addr);
const char *jsonl_bind_only_user(const struct jsonl_conn *c);
void jsonl_bind_free(struct jsonl *jl);

#endif /* IMGW_PLUGIN_JSONL_H */
