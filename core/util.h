/* Allocation helpers and small utilities of the core. */
#ifndef IMGW_CORE_UTIL_H
#define IMGW_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Allocation that cannot fail: out of memory is a broken invariant for a
 * daemon of this size, reported and fatal (the one place we abort).
 */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The first line of the file at `path` without its line end (a secret
 * file: password, shared key); a new string, or NULL with the reason in
 * why.  Lines longer than 1023 bytes are cut. */
char *util_read_first_line(const char *path, char *why, size_t whylen);

/* Monotonic clock in milliseconds. */
uint64_t util_now_ms(void);

/* Seeded string hash (the seed is random per process). */
uint64_t util_hash(const void *p, size_t n);
void util_hash_seed(uint64_t seed);

#endif
