/* A string-keyed chained hash table. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ht.h"
#include "util.h"

struct ht_entry {
	struct ht_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct ht {
	struct ht_entry **buckets;
	size_t nbuckets;	/* power of two */
	size_t count;
};

struct ht *
ht_new(void)
{
	struct ht *t = xcalloc(1, sizeof(*t));

	t->nbuckets = 16;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	return t;
}

void
ht_free(struct ht *t, void (*free_value)(void *))
{
	struct ht_entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (free_value != NULL)
				free_value(e->value);
			free(e);
		}
	}
	free(t->buckets);
	free(t);
}

static struct ht_entry **
ht_slot(const struct ht *t, const char *key, uint64_t h)
{
	struct ht_entry **pp = &t->buckets[h & (t->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *
ht_get(const struct ht *t, const char *key)
{
	uint64_t h = util_hash(key, strlen(key));
	struct ht_entry **pp = ht_slot(t, key, h);

	return *pp ? (*pp)->value : NULL;
}

static void
ht_grow(struct ht *t)
{
	size_t n = t->nbuckets * 2, i;
	struct ht_entry **b = xcalloc(n, sizeof(*b)), *e, *next;

	for (i = 0; i < t->nbuckets; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

void *
ht_put(struct ht *t, const char *key, void *value)
{
	size_t len = strlen(key);
	uint64_t h = util_hash(key, len);
	struct ht_entry **pp = ht_slot(t, key, h), *e;
	void *old;

	if (*pp != NULL) {
		old = (*pp)->value;
		(*pp)->value = value;
		return old;
	}
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++t->count > t->nbuckets)
		ht_grow(t);
	return NULL;
}

void *
ht_del(struct ht *t, const char *key)
{
	uint64_t h = util_hash(key, strlen(key));
	struct ht_entry **pp = ht_slot(t, key, h), *e;
	void *v;

	if ((e = *pp) == NULL)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	t->count--;
	return v;
}

size_t
ht_count(const struct ht *t)
{
	return t->count;
}

void
ht_foreach(struct ht *t, int (*fn)(const char *, void *, void *), void *arg)
{
	struct ht_entry *e, *next, *prev;
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		prev = NULL;
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (fn(e->key, e->value, arg))
				return;
			/* fn may have deleted e: then prev->next (or the
			 * bucket head) already points past it */
			if ((prev ? prev->next : t->buckets[i]) == e)
				prev = e;
		}
	}
}
