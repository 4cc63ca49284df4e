/*
 * jsonl protocol: what one client line means.
 *
 *   {"type":"bind","user":U}     deliver events for U (or "*") here
 *   {"type":"unbind","user":U}   stop that
 *   {"type":KIND, ...}           an event for the router
 *
 * A bad line is answered with an error line and the connection stays
 * open: one broken bot message must not cost the bot its session.
 */
#include <stdio.h>
#include <string.h>

#include <json.h>

#include "jsonl.h"

/* Strings of an address and its parts are bounded by address.h. */
#define JSONL_KEY_MAX	2048

/*
 * Answer with {"type":"error","id":ID,"condition":C,"text":T}.  `id` is
 * the client's id value (borrowed; NULL gives null).
 */
void
jsonl_proto_error(struct jsonl_conn *c, struct json_object *id, const char *condition,
    const char *text)
{
	struct jsonl *jl = c->jl;
	struct json_object *obj;

	if ((obj = json_object_new_object()) == NULL)
		goto fail;
	if (json_object_object_add(obj, "type", json_object_new_string("error")) != 0 ||
	    json_object_object_add(obj, "id", json_object_get(id)) != 0 ||
	    json_object_object_add(obj, "condition", json_object_new_string(condition)) != 0 ||
	    (text != NULL &&
	    json_object_object_add(obj, "text", json_object_new_string(text)) != 0))
		goto fail;
	if (jsonl_conn_send_json(c, obj) == 0)
		jl->host->counter_add(jl->inst, "errors-sent", 1);
	json_object_put(obj);
	JSONL_LOG(jl, IMGW_LOG_DEBUG, "connection %lu: %s: %s", c->id, condition,
	    text != NULL ? text : "");
	return;

fail:
	json_object_put(obj);
	c->dead = 1;
}

/* Answer a bind or unbind with {"type":TYPE,"user":KEY[,"id":ID]}. */
static void
jsonl_proto_answer(struct jsonl_conn *c, const char *type, const char *key,
    struct json_object *id)
{
	struct json_object *obj;

	if ((obj = json_object_new_object()) == NULL)
		goto fail;
	if (json_object_object_add(obj, "type", json_object_new_string(type)) != 0 ||
	    json_object_object_add(obj, "user", json_object_new_string(key)) != 0 ||
	    (id != NULL && json_object_object_add(obj, "id", json_object_get(id)) != 0))
		goto fail;
	(void)jsonl_conn_send_json(c, obj);
	json_object_put(obj);
	return;

fail:
	json_object_put(obj);
	c->dead = 1;
}

/*
 * Check that `addr` parses and that its domain is one of ours.  Returns
 * NULL when it is, else the error condition (and a reason in *text_r).
 */
static const char *
jsonl_proto_own(struct jsonl *jl, const char *addr, const char **text_r)
{
	struct imgw_addr_parts p;
	char domain[JSONL_DOMAIN_MAX];

	if (imgw_addr_split(addr, &p) == -1 || p.domain_len >= sizeof(domain)) {
		*text_r = "malformed address";
		return IMGW_ERR_JID_MALFORMED;
	}
	memcpy(domain, p.domain, p.domain_len);
	domain[p.domain_len] = '\0';
	if (!jl->host->owns_domain(jl->inst, domain)) {
		*text_r = "domain not served by this community";
		return IMGW_ERR_FORBIDDEN;
	}
	return NULL;
}

static void
jsonl_proto_bind(struct jsonl_conn *c, struct json_object *obj, struct json_object *id,
    int bind)
{
	struct jsonl *jl = c->jl;
	char key[JSONL_KEY_MAX];
	const char *user, *cond, *text;

	if (jsonl_codec_string(obj, "user", &user) == -1 || user == NULL) {
		jsonl_proto_error(c, id, IMGW_ERR_BAD_REQUEST, "missing or bad \"user\"");
		return;
	}
	if (jsonl_bind_key(user, key, sizeof(key)) == -1) {
		jsonl_proto_error(c, id, IMGW_ERR_JID_MALFORMED, "\"user\" is not an address");
		return;
	}
	if (bind) {
		if (strcmp(key, "*") != 0 && (cond = jsonl_proto_own(jl, key, &text)) != NULL) {
			jsonl_proto_error(c, id, cond, text);
			return;
		}
		if (jsonl_bind_add(c, key) == -1) {
			jsonl_proto_error(c, id, IMGW_ERR_RESOURCE_CONSTRAINT,
			    "cannot bind more users on this connection");
			return;
		}
		JSONL_LOG(jl, IMGW_LOG_DEBUG, "connection %lu bound %s", c->id, key);
		jsonl_proto_answer(c, "bound", key, id);
	} else {
		if (jsonl_bind_del(c, key) == -1) {
			jsonl_proto_error(c, id, IMGW_ERR_ITEM_NOT_FOUND, "user not bound here");
			return;
		}
		jsonl_proto_answer(c, "unbound", key, id);
	}
}

/*
 * The condition for a refused emit.  imgwd writes "CONDITION: reason";
 * another host may write only a reason, and then one that speaks of an
 * address means jid-malformed.  On return *text_r is the reason part.
 */
static const char *
jsonl_proto_emit_condition(char *err, char *cond_r, size_t condlen, const char **text_r)
{
	size_t n = strspn(err, "abcdefghijklmnopqrstuvwxyz-");

	*text_r = err;
	if (n > 0 && n < condlen && err[n] == ':' && err[n + 1] == ' ') {
		memcpy(cond_r, err, n);
		cond_r[n] = '\0';
		*text_r = err + n + 2;
		return cond_r;
	}
	if (strstr(err, "address") != NULL || strstr(err, "jid") != NULL ||
	    strstr(err, "malformed") != NULL)
		return IMGW_ERR_JID_MALFORMED;
	return IMGW_ERR_BAD_REQUEST;
}

static void
jsonl_proto_event(struct jsonl_conn *c, struct json_object *obj, struct json_object *id)
{
	struct jsonl *jl = c->jl;
	struct imgw_event ev;
	struct imgw_addr_parts p;
	const char *text, *cond;
	char err[256], condbuf[64];

	if (jsonl_codec_event(obj, &ev, &text) == -1) {
		jsonl_proto_error(c, id, IMGW_ERR_BAD_REQUEST, text);
		return;
	}
	if (ev.from == NULL && (ev.from = jsonl_bind_only_user(c)) == NULL) {
		jsonl_proto_error(c, id, IMGW_ERR_BAD_REQUEST,
		    "missing \"from\" (and not exactly one user bound)");
		return;
	}
	if ((cond = jsonl_proto_own(jl, ev.from, &text)) != NULL) {
		jsonl_proto_error(c, id, cond,
		    strcmp(cond, IMGW_ERR_FORBIDDEN) == 0
		    ? "\"from\" domain not served by this community"
		    : "malformed \"from\" address");
		return;
	}
	if (imgw_addr_split(ev.to, &p) == -1) {
		jsonl_proto_error(c, id, IMGW_ERR_JID_MALFORMED, "malformed \"to\" address");
		return;
	}
	err[0] = '\0';
	if (jl->host->emit(jl->inst, &ev, err, sizeof(err), NULL) == -1) {
		err[sizeof(err) - 1] = '\0';
		cond = jsonl_proto_emit_condition(err, condbuf, sizeof(condbuf), &text);
		jsonl_proto_error(c, id, cond, text[0] != '\0' ? text : "event refused");
	}
}

/*
 * One line from c (NUL-terminated at len, newline stripped; the buffer is
 * c's and only valid during the call).
 */
void
jsonl_proto_line(struct jsonl_conn *c, char *line, size_t len)
{
	struct jsonl *jl = c->jl;
	struct json_object *obj, *id = NULL;
	const char *text, *type;
	size_t i;

	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len)
		return;		/* blank lines keep idle sessions alive */
	jl->host->counter_add(jl->inst, "lines-in", 1);
	if ((obj = jsonl_codec_parse(jl->tok, line, len, &text)) == NULL) {
		jsonl_proto_error(c, NULL, IMGW_ERR_BAD_REQUEST, text);
		return;
	}
	(void)json_object_object_get_ex(obj, "id", &id);
	if (jsonl_codec_string(obj, "type", &type) == -1 || type == NULL)
		jsonl_proto_error(c, id, IMGW_ERR_BAD_REQUEST, "missing or bad \"type\"");
	else if (strcmp(type, "bind") == 0)
		jsonl_proto_bind(c, obj, id, 1);
	else if (strcmp(type, "unbind") == 0)
		jsonl_proto_bind(c, obj, id, 0);
	else
		jsonl_proto_event(c, obj, id);
	json_object_put(obj);
}
