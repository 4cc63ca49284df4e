/*
 * Inside the store: what store.c and store-sql.c share.  Not for other
 * subsystems (they use store.h).
 */
#ifndef IMGW_CORE_STORE_INTERNAL_H
#define IMGW_CORE_STORE_INTERNAL_H

/* The statement `name` for `dialect` (or the portable text); NULL when
 * unknown.  Static storage. */
const char *store_sql_text(int dialect, const char *name);

/* The statement `name` for `dialect` with its VALUES group repeated
 * `rows` times (store_sql_rows); NULL when unknown or not an INSERT ...
 * VALUES.  Kept for the life of the process. */
const char *store_sql_rows_text(int dialect, const char *name, unsigned rows);

/* The template of schema step `version` (from version-1 to version), NULL
 * when out of range.  Static storage. */
const char *store_sql_step(int version);

/* `tmpl` with the placeholders of `dialect` filled in (a dialect out of
 * range leaves them); the caller frees. */
char *store_sql_expand(int dialect, const char *tmpl);

#endif
