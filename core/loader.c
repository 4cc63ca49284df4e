/* Connector loading: private copies, dlopen, descriptor and option checks. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <imgw/listen.h>

#include "conf.h"
#include "loader.h"
#include "log.h"
#include "util.h"

static struct module *loader_modules;
static char *loader_tmpdir;
static unsigned loader_generation;

int
loader_check_desc(const struct imgw_connector *d, const char *path, char *err,
    size_t errlen)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (d == NULL) {
		snprintf(err, errlen, "connector '%s': entry returned no "
		    "descriptor", base);
		return -1;
	}
	/* the first fields protect the rest: read nothing else before them */
	if (d->magic != IMGW_CONNECTOR_MAGIC) {
		snprintf(err, errlen, "connector '%s': bad magic 0x%08x (not an "
		    "imgw connector descriptor)", base, (unsigned)d->magic);
		return -1;
	}
	if (d->abi_major != IMGW_ABI_MAJOR || d->abi_minor > IMGW_ABI_MINOR) {
		snprintf(err, errlen, "connector '%s' wants ABI %u.%u, imgwd has "
		    "%u.%u", base, d->abi_major, d->abi_minor, IMGW_ABI_MAJOR,
		    IMGW_ABI_MINOR);
		return -1;
	}
	if (d->size < offsetof(struct imgw_connector, fini) +
	    sizeof(d->fini)) {
		snprintf(err, errlen, "connector '%s': descriptor of %u bytes is "
		    "shorter than ABI %u.0 needs (%zu)", base, (unsigned)d->size,
		    IMGW_ABI_MAJOR, offsetof(struct imgw_connector, fini) +
		    sizeof(d->fini));
		return -1;
	}
	if (d->name == NULL || d->init == NULL || d->deliver == NULL) {
		snprintf(err, errlen, "connector '%s': descriptor lacks %s", base,
		    d->name == NULL ? "a name" : d->init == NULL ? "init"
		    : "deliver");
		return -1;
	}
	return 0;
}

static int
loader_copy(const char *src, const char *dst, char *err, size_t errlen)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "connector '%s': %s", src, strerror(errno));
		return -1;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0) {
		snprintf(err, errlen, "cannot copy connector to %s: %s", dst,
		    strerror(errno));
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	}
	if (n < 0)
		snprintf(err, errlen, "cannot copy connector %s: %s", src,
		    strerror(errno));
	close(in);
	if (close(out) < 0 && n >= 0) {
		snprintf(err, errlen, "cannot copy connector %s: %s", src,
		    strerror(errno));
		n = -1;
	}
	if (n < 0)
		unlink(dst);
	return n < 0 ? -1 : 0;
}

static int
loader_tmp(char *err, size_t errlen)
{
	const char *t = getenv("TMPDIR");
	char *tmpl;

	if (loader_tmpdir != NULL)
		return 0;
	tmpl = xasprintf("%s/imgwd.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(tmpl) == NULL) {
		snprintf(err, errlen, "cannot create a folder for connector "
		    "copies (%s): %s", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	loader_tmpdir = tmpl;
	return 0;
}

void
loader_cleanup(void)
{
	if (loader_tmpdir != NULL) {
		rmdir(loader_tmpdir);
		free(loader_tmpdir);
		loader_tmpdir = NULL;
	}
}

static int
loader_same_file(const struct module *m, const struct stat *st)
{
	return m->dev == st->st_dev && m->ino == st->st_ino &&
	    m->mtime == st->st_mtim.tv_sec && m->mtime_ns == st->st_mtim.tv_nsec &&
	    m->fsize == st->st_size;
}

int
loader_changed(const struct module *m)
{
	struct stat st;

	if (stat(m->path, &st) < 0)
		return 1;
	return !loader_same_file(m, &st);
}

struct module *
loader_open(const char *dir, const char *name, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s.so", dir, name), *copy = NULL;
	imgw_connector_entry_fn entry;
	const struct imgw_connector *desc;
	struct module *m;
	struct stat st;
	void *h = NULL;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "connector '%s': %s", path, strerror(errno));
		goto fail;
	}
	for (m = loader_modules; m != NULL; m = m->next) {
		if (strcmp(m->path, path) == 0 && loader_same_file(m, &st)) {
			m->refs++;
			free(path);
			return m;
		}
	}
	if (loader_tmp(err, errlen) < 0)
		goto fail;
	copy = xasprintf("%s/%s.%u.so", loader_tmpdir, name, ++loader_generation);
	if (loader_copy(path, copy, err, errlen) < 0)
		goto fail;
	h = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
	unlink(copy);	/* the mapping stays; nothing left on disk */
	if (h == NULL) {
		snprintf(err, errlen, "connector '%s': cannot load: %s", path,
		    dlerror());
		goto fail;
	}
	entry = (imgw_connector_entry_fn)dlsym(h, IMGW_CONNECTOR_ENTRY_NAME);
	if (entry == NULL) {
		snprintf(err, errlen, "connector '%s': no symbol %s (not an imgw "
		    "connector?)", path, IMGW_CONNECTOR_ENTRY_NAME);
		goto fail;
	}
	desc = entry();
	if (loader_check_desc(desc, path, err, errlen) < 0)
		goto fail;
	m = xcalloc(1, sizeof(*m));
	m->name = xstrdup(name);
	m->path = path;
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->mtime = st.st_mtim.tv_sec;
	m->mtime_ns = st.st_mtim.tv_nsec;
	m->fsize = st.st_size;
	m->handle = h;
	m->desc = desc;
	m->refs = 1;
	m->generation = loader_generation;
	m->next = loader_modules;
	loader_modules = m;
	free(copy);
	log_debug("loaded connector %s (%s %s, ABI %u.%u)", path, desc->name,
	    desc->version ? desc->version : "", desc->abi_major, desc->abi_minor);
	return m;
fail:
	if (h != NULL)
		dlclose(h);
	free(copy);
	free(path);
	return NULL;
}

void
loader_release(struct module *m)
{
	struct module **pp;

	if (m == NULL || --m->refs > 0)
		return;
	for (pp = &loader_modules; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	/* ASan needs the code mapped to symbolize leaks found at exit */
	if (getenv("IMGW_NO_DLCLOSE") == NULL)
		dlclose(m->handle);
	free(m->name);
	free(m->path);
	free(m);
}

static const char *
loader_type_name(enum imgw_option_type t)
{
	switch (t) {
	case IMGW_OPT_STRING: return "text";
	case IMGW_OPT_INT: return "integer";
	case IMGW_OPT_BOOL: return "yes or no";
	case IMGW_OPT_LISTEN: return "tcp:HOST:PORT or unix:/PATH";
	}
	return "?";
}

/* tcp:HOST:PORT (HOST may be [v6]) or unix:/ABSOLUTE/PATH */
static int
loader_listen_valid(const char *v)
{
	struct imgw_listen_parts lp;

	if (imgw_listen_split(v, &lp) < 0)
		return 0;
	if (imgw_listen_is(&lp, "unix"))
		return strlen(lp.path) < sizeof(((struct sockaddr_un *)0)->sun_path);
	/* HOST may be a name here: the connector decides what it takes */
	return imgw_listen_is(&lp, "tcp") && (lp.host_len > 0 || lp.bracketed);
}

int
loader_check_options(const struct imgw_connector *desc,
    const struct conf_community *cc, const char *file, char *err, size_t errlen)
{
	const struct imgw_option *o;
	long long n;
	size_t i;
	int ok;

	for (i = 0; i < cc->nopts; i++) {
		const struct conf_kv *kv = &cc->opts[i];

		for (o = desc->options; o != NULL && o->name != NULL; o++)
			if (strcmp(o->name, kv->key) == 0)
				break;
		if (o == NULL || o->name == NULL) {
			snprintf(err, errlen, "%s:%d: unknown key '%s' for "
			    "community '%s' (connector '%s')", file, kv->line,
			    kv->key, cc->name, desc->name);
			return -1;
		}
		switch (o->type) {
		case IMGW_OPT_INT:
			ok = conf_parse_ll(kv->value, &n) == 0 &&
			    (o->min == o->max || (n >= o->min && n <= o->max));
			break;
		case IMGW_OPT_BOOL:
			ok = conf_parse_bool(kv->value) >= 0;
			break;
		case IMGW_OPT_LISTEN:
			ok = loader_listen_valid(kv->value);
			break;
		default:
			ok = 1;
			break;
		}
		if (!ok) {
			if (o->type == IMGW_OPT_INT && o->min != o->max)
				snprintf(err, errlen, "%s:%d: %s '%s': expected an "
				    "integer from %lld to %lld", file, kv->line,
				    kv->key, kv->value, o->min, o->max);
			else
				snprintf(err, errlen, "%s:%d: %s '%s': expected %s",
				    file, kv->line, kv->key, kv->value,
				    loader_type_name(o->type));
			return -1;
		}
	}
	for (o = desc->options; o != NULL && o->name != NULL; o++) {
		if (!o->required)
			continue;
		for (i = 0; i < cc->nopts; i++)
			if (strcmp(cc->opts[i].key, o->name) == 0)
				break;
		if (i == cc->nopts) {
			snprintf(err, errlen, "%s:%d: community '%s': connector "
			    "'%s' needs option '%s' (%s)", file, cc->line,
			    cc->name, desc->name, o->name, o->help ? o->help : "");
			return -1;
		}
	}
	return 0;
}
