/* Helpers shared by the unit tests; see testlib.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ftw.h>

#include "tap.h"
#include "testlib.h"

char *
tl_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/imgw-unit.XXXXXX", t && *t ? t : "/tmp") < 0)
		bail_out("out of memory");
	if (mkdtemp(path) == NULL)
		bail_out("mkdtemp %s: %s", path, strerror(errno));
	return path;
}

char *
tl_write(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		bail_out("out of memory");
	if ((fp = fopen(path, "w")) == NULL)
		bail_out("cannot write %s: %s", path, strerror(errno));
	fputs(text, fp);
	if (fclose(fp) != 0)
		bail_out("cannot write %s: %s", path, strerror(errno));
	return path;
}

static int
tl_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void
tl_rmrf(const char *dir)
{
	if (dir != NULL)
		nftw(dir, tl_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void
tl_copy(const char *src, const char *dst)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	if ((in = open(src, O_RDONLY)) < 0)
		bail_out("cannot read %s: %s", src, strerror(errno));
	if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755)) < 0)
		bail_out("cannot write %s: %s", dst, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			bail_out("cannot write %s: %s", dst, strerror(errno));
	if (n < 0)
		bail_out("cannot read %s: %s", src, strerror(errno));
	close(in);
	if (close(out) < 0)
		bail_out("cannot write %s: %s", dst, strerror(errno));
}

const char *
tl_builddir(void)
{
	const char *b = getenv("IMGW_BUILDDIR");

	return b && *b ? b : ".";
}
