/* A tiny TAP producer; see tap.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static void
tap_vdiag(const char *fmt, va_list ap)
{
	char buf[4096], *line, *save = NULL;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* one "# " per line, so that multi-line text stays a comment */
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

void
diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

void
bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

void
skip(int n, const char *why)
{
	while (n-- > 0) {
		printf("ok %d # SKIP %s\n", ++tap_run, why);
	}
	fflush(stdout);
}

static int
tap_result(int cond, const char *file, int line, const char *fmt, va_list ap)
{
	char name[1024];

	vsnprintf(name, sizeof(name), fmt, ap);
	/* '#' would start a directive in the test name */
	for (char *p = name; *p; p++)
		if (*p == '#' || *p == '\n')
			*p = '_';
	tap_run++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_run, name);
	if (!cond) {
		tap_failed++;
		printf("#   Failed test '%s'\n#   at %s line %d.\n", name, file,
		    line);
	}
	fflush(stdout);
	return cond;
}

int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_result(cond, file, line, fmt, ap);
	va_end(ap);
	return cond;
}

int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int cond = got == want;

	va_start(ap, fmt);
	tap_result(cond, file, line, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("       got: %lld\n  expected: %lld", got, want);
	return cond;
}

int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int cond = (got == NULL && want == NULL) ||
	    (got != NULL && want != NULL && strcmp(got, want) == 0);

	va_start(ap, fmt);
	tap_result(cond, file, line, fmt, ap);
	va_end(ap);
	if (!cond) {
		if (got != NULL)
			printf("#        got: '%s'\n", got);
		else
			printf("#        got: NULL\n");
		if (want != NULL)
			printf("#   expected: '%s'\n", want);
		else
			printf("#   expected: NULL\n");
		fflush(stdout);
	}
	return cond;
}

int
tap_like(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int cond = got != NULL && want != NULL && strstr(got, want) != NULL;

	va_start(ap, fmt);
	tap_result(cond, file, line, fmt, ap);
	va_end(ap);
	if (!cond) {
		printf("#                  '%s'\n", got ? got : "(null)");
		printf("#   doesn't contain '%s'\n", want ? want : "(null)");
		fflush(stdout);
	}
	return cond;
}

int
done_testing(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
	} else if (tap_run != tap_planned) {
		printf("# planned %d tests but ran %d\n", tap_planned, tap_run);
		fflush(stdout);
		return 1;
	}
	if (tap_failed)
		printf("# failed %d of %d tests\n", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}
