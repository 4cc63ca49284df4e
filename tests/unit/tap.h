/*
 * A tiny TAP producer for the unit tests (run by automake's tap-driver.sh).
 *
 *	plan(3);			or nothing, then done_testing()
 *	ok(x == 1, "x is one");
 *	is_int(n, 4, "four events");
 *	is_str(s, "a@b", "canonical form");
 *	like(err, "bad magic", "refusal names the magic");
 *	return done_testing();
 *
 * Every check prints "ok N - name" or "not ok N - name" on stdout, plus
 * "# " diagnostics naming the file and line of a failed check.
 * done_testing() returns the exit status: 0 when every check passed and
 * the count matches the plan, 1 otherwise.  Strings may be NULL.
 */
#ifndef IMGW_TESTS_TAP_H
#define IMGW_TESTS_TAP_H

#include <stdarg.h>

void plan(int n);
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stop the whole test file: prints "Bail out!" and exits 1. */
void bail_out(const char *fmt, ...) __attribute__((format(printf, 1, 2),
    noreturn));
/* Record `n` skipped checks with a reason. */
void skip(int n, const char *why);
int done_testing(void);

int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Passes when `got` contains `want` as a substring. */
int tap_like(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define ok(cond, ...)		tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)	tap_is_int((long long)(got), (long long)(want), \
				    __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...)	tap_is_str((got), (want), __FILE__, __LINE__, \
				    __VA_ARGS__)
#define like(got, want, ...)	tap_like((got), (want), __FILE__, __LINE__, \
				    __VA_ARGS__)

#endif
