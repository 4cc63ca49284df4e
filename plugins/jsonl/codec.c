/*
 * jsonl codec: one JSON line <-> struct imgw_event.
 *
 * Parsing is strict (RFC 8259, no trailing data, bounded nesting) and
 * every string that reaches an event is checked for embedded NULs and
 * well-formed UTF-8, so that what we hand to the core is what the SDK
 * promises: NUL-terminated UTF-8.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json.h>

#include "jsonl.h"

/* The optional string fields of an event, by their wire names. */
static const struct {
	const char *key;
	size_t off;
} jsonl_codec_fields[] = {
	{ "from", offsetof(struct imgw_event, from) },
	{ "to", offsetof(struct imgw_event, to) },
	{ "id", offsetof(struct imgw_event, id) },
	{ "thread", offsetof(struct imgw_event, thread) },
	{ "subject", offsetof(struct imgw_event, subject) },
	{ "body", offsetof(struct imgw_event, body) },
	{ "content_type", offsetof(struct imgw_event, content_type) },
	{ "lang", offsetof(struct imgw_event, lang) },
	{ "status", offsetof(struct imgw_event, status) },
	{ "condition", offsetof(struct imgw_event, condition) },
	{ "text", offsetof(struct imgw_event, text) },
	{ "message_type", offsetof(struct imgw_event, msg_type) },
};

#define JSONL_NFIELDS (sizeof(jsonl_codec_fields) / sizeof(jsonl_codec_fields[0]))

#define JSONL_FIELD(ev, i) \
	(*(const char **)((char *)(ev) + jsonl_codec_fields[i].off))
#define JSONL_CFIELD(ev, i) \
	(*(const char *const *)((const char *)(ev) + jsonl_codec_fields[i].off))

/*
 * Parse one line (without its newline) into a JSON object.  Returns a new
 * reference the caller puts, or NULL with a static reason in *text_r.
 */
struct json_object *
jsonl_codec_parse(struct json_tokener *tok, const char *line, size_t len,
    const char **text_r)
{
	struct json_object *obj;

	if (memchr(line, '\0', len) != NULL) {
		*text_r = "line contains a NUL byte";
		return NULL;
	}
	if (!imgw_utf8_valid(line, len)) {
		*text_r = "line is not valid UTF-8";
		return NULL;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len > INT32_MAX) {
		*text_r = "line too long";
		return NULL;
	}
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	if (obj == NULL || json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		*text_r = "not valid JSON";
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		*text_r = "not a JSON object";
		return NULL;
	}
	return obj;
}

/*
 * The string member `key` of obj: *val_r is borrowed from obj, NULL when
 * the member is absent or null.  Returns -1 for another type, an embedded
 * NUL or bad UTF-8 (json-c decodes \u escapes, so check after decoding).
 */
int
jsonl_codec_string(struct json_object *obj, const char *key, const char **val_r)
{
	struct json_object *v;
	const char *s;
	int n;

	*val_r = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	n = json_object_get_string_len(v);
	if (s == NULL || n < 0 || strlen(s) != (size_t)n || !imgw_utf8_valid(s, (size_t)n))
		return -1;
	*val_r = s;
	return 0;
}

/*
 * Fill ev from an event line.  Strings in ev are borrowed from obj.  `from`
 * may stay NULL (the caller may know a default); every other requirement
 * of the kind is checked here.  Returns 0, or -1 with a static reason.
 */
int
jsonl_codec_event(struct json_object *obj, struct imgw_event *ev, const char **text_r)
{
	struct json_object *v;
	const char *type, *s;
	int kind, x;
	size_t i;
	int64_t prio;

	if (jsonl_codec_string(obj, "type", &type) == -1 || type == NULL) {
		*text_r = "missing or bad \"type\"";
		return -1;
	}
	kind = imgw_kind_parse(type);
	if (kind < 0) {
		*text_r = "unknown \"type\"";
		return -1;
	}
	imgw_event_init(ev, (enum imgw_kind)kind);
	for (i = 0; i < JSONL_NFIELDS; i++) {
		if (jsonl_codec_string(obj, jsonl_codec_fields[i].key, &s) == -1) {
			*text_r = "a field is not a valid string";
			return -1;
		}
		JSONL_FIELD(ev, i) = s;
	}

	if (jsonl_codec_string(obj, "show", &s) == -1) {
		*text_r = "\"show\" is not a string";
		return -1;
	}
	if (s != NULL) {
		if ((x = imgw_show_parse(s)) < 0) {
			*text_r = "unknown \"show\"";
			return -1;
		}
		ev->show = (enum imgw_show)x;
	}
	if (jsonl_codec_string(obj, "state", &s) == -1) {
		*text_r = "\"state\" is not a string";
		return -1;
	}
	if (s != NULL) {
		if ((x = imgw_chatstate_parse(s)) < 0) {
			*text_r = "unknown \"state\"";
			return -1;
		}
		ev->state = (enum imgw_chatstate)x;
	} else if (ev->kind == IMGW_EV_CHATSTATE) {
		*text_r = "chatstate needs \"state\"";
		return -1;
	}
	if (json_object_object_get_ex(obj, "priority", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_int)) {
			*text_r = "\"priority\" is not an integer";
			return -1;
		}
		prio = json_object_get_int64(v);
		if (prio < -128 || prio > 127) {
			*text_r = "\"priority\" out of range -128..127";
			return -1;
		}
		ev->priority = (int)prio;
	}

	if (ev->to == NULL) {
		*text_r = "missing \"to\"";
		return -1;
	}
	if (ev->kind == IMGW_EV_MESSAGE && ev->body == NULL) {
		*text_r = "message needs \"body\"";
		return -1;
	}
	if (ev->kind == IMGW_EV_ERROR && ev->condition == NULL) {
		*text_r = "error needs \"condition\"";
		return -1;
	}
	if (ev->kind == IMGW_EV_ERROR &&
	    json_object_object_get_ex(obj, "answers", &v)) {
		int k = json_object_is_type(v, json_type_string)
		    ? imgw_kind_parse(json_object_get_string(v)) : -1;

		if (k < 0 || k == IMGW_EV_ERROR) {
			*text_r = "\"answers\" is not an event type";
			return -1;
		}
		ev->answers = (enum imgw_kind)k;
	}
	return 0;
}

static int
jsonl_codec_put_str(struct json_object *obj, const char *key, const char *val)
{
	struct json_object *v;

	if (val == NULL)
		return 0;
	if ((v = json_object_new_string(val)) == NULL)
		return -1;
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/*
 * A delivered event as a JSON object: the same field names as input, plus
 * "trace"; NULL fields are left out.  `ev` is only read during the call.
 * Returns a new reference, or NULL when out of memory.
 */
struct json_object *
jsonl_codec_format(const struct imgw_event *ev)
{
	struct json_object *obj, *v;
	size_t i;

	if ((obj = json_object_new_object()) == NULL)
		return NULL;
	if (jsonl_codec_put_str(obj, "type", imgw_kind_name(ev->kind)) == -1)
		goto fail;
	for (i = 0; i < JSONL_NFIELDS; i++)
		if (jsonl_codec_put_str(obj, jsonl_codec_fields[i].key,
		    JSONL_CFIELD(ev, i)) == -1)
			goto fail;
	switch (ev->kind) {
	case IMGW_EV_PRESENCE:
		if (jsonl_codec_put_str(obj, "show", imgw_show_name(ev->show)) == -1)
			goto fail;
		if (ev->priority != 0) {
			if ((v = json_object_new_int(ev->priority)) == NULL)
				goto fail;
			if (json_object_object_add(obj, "priority", v) != 0) {
				json_object_put(v);
				goto fail;
			}
		}
		break;
	case IMGW_EV_CHATSTATE:
		if (jsonl_codec_put_str(obj, "state", imgw_chatstate_name(ev->state)) == -1)
			goto fail;
		break;
	case IMGW_EV_ERROR:
		if (ev->size > offsetof(struct imgw_event, answers) &&
		    ev->answers != IMGW_EV_NONE &&
		    jsonl_codec_put_str(obj, "answers", imgw_kind_name(ev->answers)) == -1)
			goto fail;
		break;
	default:
		break;
	}
	if (jsonl_codec_put_str(obj, "trace", ev->trace) == -1)
		goto fail;
	return obj;

fail:
	json_object_put(obj);
	return NULL;
}

/* The one-line text of obj, borrowed from obj until it is put or changed. */
const char *
jsonl_codec_text(struct json_object *obj, size_t *len_r)
{
	return json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len_r);
}
