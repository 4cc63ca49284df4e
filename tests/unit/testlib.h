/*
 * Helpers shared by the unit tests: scratch folders and files.  Every
 * function bails out (TAP "Bail out!") when the system refuses, since a
 * test cannot go on without its fixtures.
 */
#ifndef IMGW_TESTS_TESTLIB_H
#define IMGW_TESTS_TESTLIB_H

#include <stddef.h>

/* A new empty folder under $TMPDIR (or /tmp); the caller frees the name. */
char *tl_tmpdir(void);

/* Write `text` to DIR/NAME (created or truncated); returns the new path,
 * which the caller frees. */
char *tl_write(const char *dir, const char *name, const char *text);

/* Remove a folder made by tl_tmpdir and everything in it. */
void tl_rmrf(const char *dir);

/* Copy file `src` to `dst` (created or truncated, mode 0755). */
void tl_copy(const char *src, const char *dst);

/* $IMGW_BUILDDIR or, when unset, "." (the build tree's top folder). */
const char *tl_builddir(void);

#endif
