/*
 * The connector loader: dlopen, descriptor checks and option validation.
 *
 * Each load works on a private copy of the .so, so that a file replaced on
 * disk is loaded afresh while the old code still serves until its
 * instances stop.  Modules are shared: loading the same unchanged file
 * again returns the loaded module with one more reference.
 */
#ifndef IMGW_CORE_LOADER_H
#define IMGW_CORE_LOADER_H

#include <stddef.h>
#include <sys/types.h>

#include <imgw/connector.h>

struct conf;
struct conf_community;

struct module {
	struct module *next;
	char *name;		/* connector name from the config */
	char *path;		/* the file: DIR/NAME.so */
	dev_t dev;
	ino_t ino;
	time_t mtime;
	long mtime_ns;
	off_t fsize;
	void *handle;
	const struct imgw_connector *desc;
	int refs;
	unsigned generation;
};

/*
 * Load connector `name` from folder `dir` (or take the loaded one if the
 * file is unchanged) and check its descriptor.  Returns a referenced
 * module, or NULL with a message naming the file in err.
 */
struct module *loader_open(const char *dir, const char *name, char *err,
    size_t errlen);

/* Drop one reference; the last one unloads (dlclose). */
void loader_release(struct module *m);

/* Non-zero when the file on disk is no longer the one loaded. */
int loader_changed(const struct module *m);

/*
 * Check the options of section `cc` against the descriptor's table:
 * unknown keys, types, ranges, required options.  0, or -1 with
 * "FILE:LINE: message" in err.
 */
int loader_check_options(const struct imgw_connector *desc,
    const struct conf_community *cc, const char *file, char *err,
    size_t errlen);

/*
 * Check a descriptor returned by an entry symbol (exposed for tests).
 * 0, or -1 with the reason (naming `path`) in err.
 */
int loader_check_desc(const struct imgw_connector *d, const char *path,
    char *err, size_t errlen);

/* Remove the private folder of copies (at exit). */
void loader_cleanup(void);

#endif
