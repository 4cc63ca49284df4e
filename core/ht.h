/*
 * A string-keyed hash table (chained, grows by doubling).  Keys are copied
 * into the table; values are borrowed pointers the caller owns.
 */
#ifndef IMGW_CORE_HT_H
#define IMGW_CORE_HT_H

#include <stddef.h>

struct ht;

struct ht *ht_new(void);
/* Free the table and its keys; `free_value` (may be NULL) for each value. */
void ht_free(struct ht *t, void (*free_value)(void *));

void *ht_get(const struct ht *t, const char *key);
/* Insert or replace; returns the previous value or NULL. */
void *ht_put(struct ht *t, const char *key, void *value);
/* Remove; returns the removed value or NULL. */
void *ht_del(struct ht *t, const char *key);
size_t ht_count(const struct ht *t);

/* Call `fn` for each entry; `fn` may delete the entry it is given.  Stops
 * early when fn returns non-zero. */
void ht_foreach(struct ht *t, int (*fn)(const char *key, void *value,
    void *arg), void *arg);

#endif
