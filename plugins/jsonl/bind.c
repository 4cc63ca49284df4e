/*
 * jsonl bind table: which connections receive events for which user.
 *
 * Keys are bare addresses with ASCII folded to lower case (the core's
 * canonical form, so a key compares equal to the bare part of a delivered
 * `to`), or "*" for any user of the community.  Each key holds the
 * connections that bound it; each connection lists the keys it holds so
 * that closing it unbinds everything in one pass.  A key lives while at
 * least one connection holds it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

/* FNV-1a over the bare part of addr. */
static size_t
jsonl_bind_hash(const char *addr)
{
	size_t n = imgw_addr_bare_len(addr), i;
	uint64_t h = 1469598103934665603ull;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)addr[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

/*
 * The table key for what a client sent as "user": "*" as is, otherwise
 * the bare part with ASCII lower-cased.  Returns 0, or -1 when `user` is
 * not an address or does not fit in keylen bytes.
 */
int
jsonl_bind_key(const char *user, char *key_r, size_t keylen)
{
	struct imgw_addr_parts p;
	size_t n, i, o;

	if (strcmp(user, "*") == 0) {
		if (keylen < 2)
			return -1;
		memcpy(key_r, "*", 2);
		return 0;
	}
	if (imgw_addr_split(user, &p) == -1)
		return -1;
	/* the core's canonical form: lower case, and the user part escaped
	 * as the core escapes it, so that keys equal routed addresses */
	n = imgw_addr_bare_len(user);
	for (i = 0, o = 0; i < n; i++) {
		char ch = user[i];
		const char *esc = (size_t)(p.domain - 1 - user) > i
		    ? imgw_addr_escape((unsigned char)ch) : NULL;

		if (esc != NULL) {
			if (o + 3 + 1 > keylen)
				return -1;
			memcpy(key_r + o, esc, 3);
			o += 3;
			continue;
		}
		if (o + 1 + 1 > keylen)
			return -1;
		key_r[o++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	key_r[o] = '\0';
	return 0;
}

/* The entry whose key has the bare part of addr, or NULL. */
struct jsonl_bind *
jsonl_bind_find(struct jsonl *jl, const char *addr)
{
	struct jsonl_bindtab *t = &jl->binds;
	struct jsonl_bind *b;
	size_t h;

	if (t->nbuckets == 0 || addr == NULL)
		return NULL;
	h = jsonl_bind_hash(addr);
	for (b = t->buckets[h & (t->nbuckets - 1)]; b != NULL; b = b->next)
		if (b->hash == h && imgw_addr_bare_eq(b->user, addr))
			return b;
	return NULL;
}

static int
jsonl_bind_grow(struct jsonl_bindtab *t)
{
	struct jsonl_bind **nb, *b, *next;
	size_t n = t->nbuckets ? t->nbuckets * 2 : 64, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return -1;
	for (i = 0; i < t->nbuckets; i++) {
		for (b = t->buckets[i]; b != NULL; b = next) {
			next = b->next;
			b->next = nb[b->hash & (n - 1)];
			nb[b->hash & (n - 1)] = b;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
	return 0;
}

static void
jsonl_bind_unlink(struct jsonl_bindtab *t, struct jsonl_bind *b)
{
	struct jsonl_bind **pp;

	for (pp = &t->buckets[b->hash & (t->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			t->count--;
			break;
		}
	}
	free(b->conns);
	free(b->user);
	free(b);
}

/* Take c out of b's connections; drops b when c was the last. */
static void
jsonl_bind_leave(struct jsonl *jl, struct jsonl_bind *b, struct jsonl_conn *c)
{
	size_t i;

	for (i = 0; i < b->nconns; i++) {
		if (b->conns[i] == c) {
			/* keep the order: delivery order across connections
			 * follows bind order */
			memmove(&b->conns[i], &b->conns[i + 1],
			    (b->nconns - i - 1) * sizeof(*b->conns));
			b->nconns--;
			break;
		}
	}
	if (b->nconns == 0)
		jsonl_bind_unlink(&jl->binds, b);
}

/*
 * Bind `key` (from jsonl_bind_key, copied) to c.  Binding a key twice is a
 * no-op.  Returns 0, or -1 with errno ENOMEM, or E2BIG past
 * JSONL_MAX_BINDS.
 */
int
jsonl_bind_add(struct jsonl_conn *c, const char *key)
{
	struct jsonl *jl = c->jl;
	struct jsonl_bindtab *t = &jl->binds;
	struct jsonl_bind *b, **nbinds;
	struct jsonl_conn **nconns;
	size_t i, cap;
	int created = 0;

	b = jsonl_bind_find(jl, key);
	if (b != NULL)
		for (i = 0; i < b->nconns; i++)
			if (b->conns[i] == c)
				return 0;
	if (c->nbinds >= JSONL_MAX_BINDS) {
		errno = E2BIG;
		return -1;
	}
	nbinds = realloc(c->binds, (c->nbinds + 1) * sizeof(*c->binds));
	if (nbinds == NULL)
		goto nomem;
	c->binds = nbinds;

	if (b == NULL) {
		if (t->count >= t->nbuckets && jsonl_bind_grow(t) == -1)
			goto nomem;
		if ((b = calloc(1, sizeof(*b))) == NULL)
			goto nomem;
		if ((b->user = strdup(key)) == NULL) {
			free(b);
			goto nomem;
		}
		b->hash = jsonl_bind_hash(key);
		b->next = t->buckets[b->hash & (t->nbuckets - 1)];
		t->buckets[b->hash & (t->nbuckets - 1)] = b;
		t->count++;
		created = 1;
	}
	if (b->nconns == b->cap) {
		cap = b->cap ? b->cap * 2 : 4;
		if ((nconns = realloc(b->conns, cap * sizeof(*nconns))) == NULL)
			goto fail;
		b->conns = nconns;
		b->cap = cap;
	}
	b->conns[b->nconns++] = c;
	c->binds[c->nbinds++] = b;
	return 0;

fail:
	if (created)
		jsonl_bind_unlink(t, b);
nomem:
	errno = ENOMEM;
	return -1;
}

/* Unbind `key` from c.  Returns 0, or -1 when c had not bound it. */
int
jsonl_bind_del(struct jsonl_conn *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->nbinds; i++) {
		if (strcmp(c->binds[i]->user, key) == 0) {
			jsonl_bind_leave(c->jl, c->binds[i], c);
			memmove(&c->binds[i], &c->binds[i + 1],
			    (c->nbinds - i - 1) * sizeof(*c->binds));
			c->nbinds--;
			return 0;
		}
	}
	return -1;
}

/* Unbind everything c bound. */
void
jsonl_bind_drop_conn(struct jsonl_conn *c)
{
	size_t i;

	for (i = 0; i < c->nbinds; i++)
		jsonl_bind_leave(c->jl, c->binds[i], c);
	free(c->binds);
	c->binds = NULL;
	c->nbinds = 0;
}

/*
 * The one specific user c bound (its key, borrowed while bound), or NULL
 * when c bound none or several ("*" does not count).
 */
const char *
jsonl_bind_only_user(const struct jsonl_conn *c)
{
	const char *user = NULL;
	size_t i;

	for (i = 0; i < c->nbinds; i++) {
		if (strcmp(c->binds[i]->user, "*") == 0)
			continue;
		if (user != NULL)
			return NULL;
		user = c->binds[i]->user;
	}
	return user;
}

/* Free the table; connections must have dropped their binds already. */
void
jsonl_bind_free(struct jsonl *jl)
{
	struct jsonl_bindtab *t = &jl->binds;
	struct jsonl_bind *b, *next;
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		for (b = t->buckets[i]; b != NULL; b = next) {
			next = b->next;
			free(b->conns);
			free(b->user);
			free(b);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}
