/*
 * Unit tests of the connector loader (core/loader.c) with the deliberately
 * broken connectors of tests/connectors/, and of a gateway (core/gateway.c)
 * that runs on while one of its connectors is refused.
 */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include <imgw/imgw.h>

#include "conf.h"
#include "gateway.h"
#include "loader.h"
#include "log.h"
#include "util.h"
#include "tap.h"
#include "testlib.h"

static char *cdir;	/* the built test connectors */
static char *tdir;	/* scratch */

/* loader_open(cdir, name) must fail with exactly `want`. */
static void
refused(const char *name, const char *want, const char *what)
{
	char err[1024] = "";
	struct module *m;

	m = loader_open(cdir, name, err, sizeof(err));
	ok(m == NULL, "%s: refused", what);
	is_str(err, want, "%s: message", what);
	loader_release(m);
}

static void
test_refusals(void)
{
	char want[1024];

	refused("bad-magic", "connector 'bad-magic.so': bad magic 0xdeadbeef "
	    "(not an imgw connector descriptor)", "bad magic");
	snprintf(want, sizeof(want), "connector 'newer-major.so' wants ABI "
	    "%d.0, imgwd has %d.%d", IMGW_ABI_MAJOR + 1,
	    IMGW_ABI_MAJOR, IMGW_ABI_MINOR);	/* broken.c: minor 0 */
	refused("newer-major", want, "newer ABI major");
	snprintf(want, sizeof(want), "connector 'newer-minor.so' wants ABI "
	    "%d.%d, imgwd has %d.%d", IMGW_ABI_MAJOR, IMGW_ABI_MINOR + 1,
	    IMGW_ABI_MAJOR, IMGW_ABI_MINOR);
	refused("newer-minor", want, "newer ABI minor, same major");
	snprintf(want, sizeof(want), "connector 'short-size.so': descriptor of 8 "
	    "bytes is shorter than ABI %d.0 needs (%zu)", IMGW_ABI_MAJOR,
	    offsetof(struct imgw_connector, fini) + sizeof(void (*)(void *)));
	refused("short-size", want, "short descriptor");
	snprintf(want, sizeof(want), "connector '%s/no-entry.so': no symbol "
	    "imgw_connector_entry (not an imgw connector?)", cdir);
	refused("no-entry", want, "missing entry symbol");
	refused("null-desc", "connector 'null-desc.so': entry returned no "
	    "descriptor", "entry returns NULL");
	snprintf(want, sizeof(want), "connector '%s/missing.so': No such file or "
	    "directory", cdir);
	refused("missing", want, "no such file");
}

static void
test_not_elf(void)
{
	char err[1024] = "", *path, *want;
	struct module *m;

	path = tl_write(tdir, "junk.so", "this is not an ELF object\n");
	m = loader_open(tdir, "junk", err, sizeof(err));
	ok(m == NULL, "not a shared object: refused");
	if (asprintf(&want, "connector '%s': cannot load: ", path) < 0)
		bail_out("oom");
	like(err, want, "not a shared object: message names the file");
	loader_release(m);
	free(want);
	free(path);
}

/* A descriptor checked directly, without a shared object. */
static int
nop_init(struct imgw_instance *inst, const struct imgw_host *host, void **p)
{
	return 0;
}

static int
nop_deliver(void *priv, const struct imgw_event *ev, const char **c)
{
	return IMGW_OK;
}

static void
test_check_desc(void)
{
	struct imgw_connector d = { IMGW_CONNECTOR_HEAD, .name = "d",
		.init = nop_init, .deliver = nop_deliver };
	char err[256] = "";

	is_int(loader_check_desc(&d, "/x/d.so", err, sizeof(err)), 0,
	    "a complete descriptor passes");
	d.size = sizeof(d) + 64;
	is_int(loader_check_desc(&d, "/x/d.so", err, sizeof(err)), 0,
	    "a longer descriptor (newer minor's fields) passes");
	d.size = sizeof(d);
	if (IMGW_ABI_MINOR > 0) {
		d.abi_minor = IMGW_ABI_MINOR - 1;
		is_int(loader_check_desc(&d, "/x/d.so", err, sizeof(err)), 0,
		    "an older minor passes");
		d.abi_minor = IMGW_ABI_MINOR;
	}
	if (IMGW_ABI_MAJOR > 0) {
		d.abi_major = IMGW_ABI_MAJOR - 1;
		is_int(loader_check_desc(&d, "/x/d.so", err, sizeof(err)), -1,
		    "an older major is refused");
		d.abi_major = IMGW_ABI_MAJOR;
	}
	d.name = NULL;
	is_int(loader_check_desc(&d, "/x/d.so", err, sizeof(err)), -1,
	    "no name: refused");
	is_str(err, "connector 'd.so': descriptor lacks a name", "no name: "
	    "message");
	d.name = "d";
	d.init = NULL;
	loader_check_desc(&d, "/x/d.so", err, sizeof(err));
	is_str(err, "connector 'd.so': descriptor lacks init", "no init");
	d.init = nop_init;
	d.deliver = NULL;
	loader_check_desc(&d, "d.so", err, sizeof(err));
	is_str(err, "connector 'd.so': descriptor lacks deliver", "no deliver");
}

static void
test_good(void)
{
	char err[1024] = "";
	struct module *m, *m2;

	m = loader_open(cdir, "good", err, sizeof(err));
	if (!ok(m != NULL, "good connector loads")) {
		diag("%s", err);
		return;
	}
	is_str(m->desc->name, "good", "its descriptor");
	is_str(m->name, "good", "module name");
	is_int(m->refs, 1, "one reference");
	is_int(loader_changed(m), 0, "file unchanged");
	m2 = loader_open(cdir, "good", err, sizeof(err));
	ok(m2 == m, "loading the unchanged file again shares the module");
	is_int(m->refs, 2, "two references");
	loader_release(m2);
	is_int(m->refs, 1, "release drops one");
	loader_release(m);
}

static void
test_replace(void)
{
	char err[1024] = "", *src, *dir, *dst;
	struct module *m1, *m2, *m3;
	struct timespec ts[2];
	FILE *fp;

	if (asprintf(&src, "%s/good.so", cdir) < 0 ||
	    asprintf(&dir, "%s/replace", tdir) < 0 ||
	    asprintf(&dst, "%s/good.so", dir) < 0)
		bail_out("oom");
	mkdir(dir, 0700);
	tl_copy(src, dst);
	m1 = loader_open(dir, "good", err, sizeof(err));
	if (!ok(m1 != NULL, "copied connector loads")) {
		diag("%s", err);
		goto out;
	}
	is_int(loader_changed(m1), 0, "not changed yet");

	/* same file, new content: one more byte and a new mtime */
	tl_copy(src, dst);
	if ((fp = fopen(dst, "a")) == NULL)
		bail_out("cannot append to %s", dst);
	fputs("\n", fp);
	fclose(fp);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) + 10;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, dst, ts, 0);
	ok(loader_changed(m1), "a replaced file is noticed");
	m2 = loader_open(dir, "good", err, sizeof(err));
	if (!ok(m2 != NULL, "the new file loads")) {
		diag("%s", err);
		loader_release(m1);
		goto out;
	}
	ok(m2 != m1, "as a new module");
	ok(m2->generation > m1->generation, "of a later generation");
	ok(m2->handle != m1->handle, "with its own code");
	is_int(m1->refs, 1, "the old module keeps its reference");
	is_int(m2->refs, 1, "the new module has one");
	ok(!loader_changed(m2), "the new module is current");
	m3 = loader_open(dir, "good", err, sizeof(err));
	ok(m3 == m2, "the current file is shared with the new module");
	loader_release(m3);

	/* gone from disk: changed, and loading fails cleanly */
	unlink(dst);
	ok(loader_changed(m2), "a removed file counts as changed");
	ok(loader_open(dir, "good", err, sizeof(err)) == NULL, "a removed file "
	    "does not load");
	/* the old code still runs */
	ok(m1->desc->init != NULL && strcmp(m1->desc->name, "good") == 0,
	    "the old module is still usable");
	loader_release(m1);
	loader_release(m2);
out:
	free(src);
	free(dir);
	free(dst);
}

/* ---- option checks ---------------------------------------------------------- */

static const struct imgw_option opt_table[] = {
	{ .name = "listen", .type = IMGW_OPT_LISTEN, .required = 1,
	  .help = "where to listen" },
	{ .name = "port", .type = IMGW_OPT_INT, .def = "5222", .min = 1,
	  .max = 65535 },
	{ .name = "count", .type = IMGW_OPT_INT },
	{ .name = "tls", .type = IMGW_OPT_BOOL, .def = "no" },
	{ .name = "label", .type = IMGW_OPT_STRING },
	{ .name = NULL },
};

static const struct imgw_connector opt_desc = {
	IMGW_CONNECTOR_HEAD,
	.name = "opt-test",
	.options = opt_table,
	.init = nop_init,
	.deliver = nop_deliver,
};

/*
 * Check the [community x] section `body` (its header is line 1, body lines
 * follow) against opt_desc: want "FILE:LINE: msg", or success when msg is
 * NULL.
 */
static void
opts(const struct imgw_connector *desc, const char *body, int line,
    const char *msg, const char *what)
{
	char *text, *path, err[1024] = "", *want = NULL;
	struct conf *c;
	int rc;

	if (asprintf(&text, "[community x]\nconnector = c\n"
	    "domains = x.example\n%s", body) < 0)
		bail_out("oom");
	path = tl_write(tdir, "opts.conf", text);
	if ((c = conf_load(path, err, sizeof(err))) == NULL)
		bail_out("%s: %s", what, err);
	rc = loader_check_options(desc, &c->comms[0], path, err, sizeof(err));
	if (msg == NULL) {
		if (!is_int(rc, 0, "%s: valid", what))
			diag("%s", err);
	} else {
		is_int(rc, -1, "%s: refused", what);
		if (asprintf(&want, "%s:%d: %s", path, line, msg) < 0)
			bail_out("oom");
		is_str(err, want, "%s: message", what);
	}
	conf_free(c);
	free(want);
	free(path);
	free(text);
}

static void
test_options(void)
{
	struct imgw_connector bare = opt_desc;

	bare.options = NULL;
	opts(&opt_desc, "listen = tcp:127.0.0.1:7001\nport = 1\ncount = -7\n"
	    "tls = on\nlabel = anything at all\n", 0, NULL, "all options");
	opts(&opt_desc, "listen = unix:/run/x.sock\nport = 65535\n", 0, NULL,
	    "unix listen, port at max");
	opts(&opt_desc, "listen = tcp:[::1]:5222\n", 0, NULL, "IPv6 listen");
	opts(&opt_desc, "listen = tcp:*:0\n", 0, NULL, "any host, port 0");
	opts(&opt_desc, "listen = tcp:h:1\ncolour = red\n", 5,
	    "unknown key 'colour' for community 'x' (connector 'opt-test')",
	    "unknown key");
	opts(&bare, "listen = tcp:h:1\n", 4, "unknown key 'listen' for "
	    "community 'x' (connector 'opt-test')", "no option table");
	opts(&opt_desc, "listen = tcp:h:1\nport = 65536\n", 5,
	    "port '65536': expected an integer from 1 to 65535", "int above max");
	opts(&opt_desc, "listen = tcp:h:1\nport = 0\n", 5,
	    "port '0': expected an integer from 1 to 65535", "int below min");
	opts(&opt_desc, "listen = tcp:h:1\nport = 80x\n", 5,
	    "port '80x': expected an integer from 1 to 65535", "int with text");
	opts(&opt_desc, "listen = tcp:h:1\ncount = many\n", 5,
	    "count 'many': expected integer", "unbounded int: not a number");
	opts(&opt_desc, "listen = tcp:h:1\ntls = maybe\n", 5,
	    "tls 'maybe': expected yes or no", "bad bool");
	opts(&opt_desc, "listen = udp:h:1\n", 4,
	    "listen 'udp:h:1': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: unknown scheme");
	opts(&opt_desc, "listen = unix:run/x.sock\n", 4,
	    "listen 'unix:run/x.sock': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: relative unix path");
	opts(&opt_desc, "listen = tcp:h:65536\n", 4,
	    "listen 'tcp:h:65536': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: port too big");
	opts(&opt_desc, "listen = tcp::5\n", 4,
	    "listen 'tcp::5': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: no host");
	opts(&opt_desc, "listen = tcp:host\n", 4,
	    "listen 'tcp:host': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: no port");
	opts(&opt_desc, "listen = tcp:host:\n", 4,
	    "listen 'tcp:host:': expected tcp:HOST:PORT or unix:/PATH",
	    "listen: empty port");
	opts(&opt_desc, "port = 7\n", 1, "community 'x': connector 'opt-test' "
	    "needs option 'listen' (where to listen)", "missing required");
}

/* ---- a gateway with one good and one refused connector ---------------------- */

static json_object *
gw_status(struct gateway *gw)
{
	struct evbuffer *buf = evbuffer_new();
	json_object *o;
	size_t n;
	char *s;

	gateway_status(gw, 1, buf);
	n = evbuffer_get_length(buf);
	s = calloc(1, n + 1);
	if (s == NULL)
		bail_out("oom");
	evbuffer_remove(buf, s, n);
	o = json_tokener_parse(s);
	if (o == NULL)
		diag("status is not JSON: %s", s);
	free(s);
	evbuffer_free(buf);
	return o;
}

static json_object *
gw_comm(json_object *st, const char *name)
{
	json_object *a, *c, *n;
	size_t i;

	if (st == NULL || !json_object_object_get_ex(st, "communities", &a))
		return NULL;
	for (i = 0; i < json_object_array_length(a); i++) {
		c = json_object_array_get_idx(a, i);
		if (json_object_object_get_ex(c, "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			return c;
	}
	return NULL;
}

static const char *
jstr(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static long long
jctr(json_object *comm, const char *name)
{
	json_object *c, *v;

	if (comm == NULL || !json_object_object_get_ex(comm, "counters", &c) ||
	    !json_object_object_get_ex(c, name, &v))
		return -1;
	return json_object_get_int64(v);
}

static void
test_gateway(void)
{
	char *gdir, *src, *lnk, *path, *text, err[1024] = "", *want;
	struct event_base *base;
	struct gateway *gw;
	struct conf *conf;
	json_object *st, *a, *b, *broken;
	struct timeval tv = { 0, 400 * 1000 };
	const char *names[] = { "good", "bad-magic" };
	size_t i;

	if (asprintf(&gdir, "%s/connectors", tdir) < 0)
		bail_out("oom");
	mkdir(gdir, 0700);
	for (i = 0; i < 2; i++) {
		if (asprintf(&src, "%s/%s.so", cdir, names[i]) < 0 ||
		    asprintf(&lnk, "%s/%s.so", gdir, names[i]) < 0)
			bail_out("oom");
		if (symlink(src, lnk) < 0)
			bail_out("symlink %s", lnk);
		free(src);
		free(lnk);
	}
	if (asprintf(&text, "[gateway]\nnode = unit\nconnectors = connectors\n"
	    "log-level = err\n"
	    "[community a]\nconnector = good\ndomains = a.example\n"
	    "hello-from = amy@a.example\n"
	    "hello-to = bea@b.example cid@c.example\n"
	    "[community b]\nconnector = good\ndomains = b.example\n"
	    "[community broken]\nconnector = bad-magic\n"
	    "domains = c.example\n") < 0)
		bail_out("oom");
	path = tl_write(tdir, "gw.conf", text);

	/* imgwd -t is strict: a connector that does not load is an error */
	is_int(gateway_check(path, err, sizeof(err)), -1, "gateway_check "
	    "refuses a configuration with a broken connector");
	if (asprintf(&want, "%s:14: connector 'bad-magic.so': bad magic "
	    "0xdeadbeef (not an imgw connector descriptor)", path) < 0)
		bail_out("oom");
	is_str(err, want, "... naming the config line and the connector");
	free(want);

	base = event_base_new();
	if ((conf = conf_load(path, err, sizeof(err))) == NULL)
		bail_out("%s", err);
	gw = gateway_new(base, path, conf, err, sizeof(err));
	if (!ok(gw != NULL, "the gateway starts despite the broken connector")) {
		diag("%s", err);
		goto out;
	}
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	st = gw_status(gw);
	a = gw_comm(st, "a");
	b = gw_comm(st, "b");
	broken = gw_comm(st, "broken");
	ok(a != NULL && b != NULL && broken != NULL, "status lists the three "
	    "communities");
	is_str(jstr(a, "state"), "running", "a is running");
	is_str(jstr(b, "state"), "running", "b is running");
	is_str(jstr(b, "connector_version"), "1.0-test", "b's connector version");
	is_int(jctr(a, "sent"), 2, "a's connector emitted two messages");
	is_int(jctr(b, "got.message"), 1, "b took the message");
	is_int(jctr(b, "delivered"), 1, "b's delivered counter");
	is_str(jstr(broken, "state"), "down", "the broken community is down");
	like(jstr(broken, "reason"), "bad-magic.so", "its reason names the file");
	like(jstr(broken, "reason"), "bad magic", "and the problem");
	is_int(jctr(a, "got.error.service-unavailable"), 1, "a's message to the "
	    "broken community is answered with service-unavailable");
	json_object_put(st);
	gateway_free(gw);
	conf = NULL;
out:
	event_base_free(base);

	/* options are checked before anything runs: an error is fatal */
	free(text);
	if (asprintf(&text, "[gateway]\nconnectors = connectors\n"
	    "[community a]\nconnector = good\ndomains = a.example\n"
	    "bogus = 1\n") < 0)
		bail_out("oom");
	free(path);
	path = tl_write(tdir, "gw2.conf", text);
	base = event_base_new();
	if ((conf = conf_load(path, err, sizeof(err))) == NULL)
		bail_out("%s", err);
	gw = gateway_new(base, path, conf, err, sizeof(err));
	ok(gw == NULL, "a connector option error stops gateway_new");
	if (asprintf(&want, "%s:6: unknown key 'bogus' for community 'a' "
	    "(connector 'good')", path) < 0)
		bail_out("oom");
	is_str(err, want, "... with FILE:LINE");
	free(want);
	gateway_free(gw);
	event_base_free(base);
	free(text);
	free(path);
	free(gdir);
}

int
main(void)
{
	log_setup(LOG_TARGET_STDERR, getenv("IMGW_TEST_DEBUG") ? IMGW_LOG_DEBUG
	    : IMGW_LOG_WARNING);
	if (asprintf(&cdir, "%s/tests/connectors/.libs", tl_builddir()) < 0)
		bail_out("oom");
	if (access(cdir, R_OK) < 0)
		bail_out("no test connectors in %s (set IMGW_BUILDDIR)", cdir);
	tdir = tl_tmpdir();
	test_refusals();
	test_not_elf();
	test_check_desc();
	test_good();
	test_replace();
	test_options();
	test_gateway();
	loader_cleanup();
	tl_rmrf(tdir);
	free(tdir);
	free(cdir);
	return done_testing();
}
