/* Unit tests of the configuration reader (core/conf.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <imgw/connector.h>

#include "conf.h"
#include "tap.h"
#include "testlib.h"

static char *tdir;
static int nfile;

/* Write `text` to a new file of the scratch folder; returns its path. */
static char *
conf_file(const char *text)
{
	char name[32];

	snprintf(name, sizeof(name), "c%d.conf", ++nfile);
	return tl_write(tdir, name, text);
}

/*
 * Load `text`; the load must fail with exactly "FILE:LINE: msg" (line 0:
 * "FILE: msg").
 */
static void
conf_bad(const char *what, const char *text, int line, const char *msg)
{
	char *path = conf_file(text), *want, err[1024] = "";
	struct conf *c;

	c = conf_load(path, err, sizeof(err));
	ok(c == NULL, "%s: refused", what);
	if ((line > 0 ? asprintf(&want, "%s:%d: %s", path, line, msg)
	    : asprintf(&want, "%s: %s", path, msg)) < 0)
		bail_out("out of memory");
	is_str(err, want, "%s: message", what);
	conf_free(c);
	free(want);
	free(path);
}

static struct conf *
conf_good(const char *what, const char *text, char **path_r)
{
	char *path = conf_file(text), err[1024] = "";
	struct conf *c;

	c = conf_load(path, err, sizeof(err));
	if (!ok(c != NULL, "%s: loads", what))
		diag("error: %s", err);
	if (path_r != NULL)
		*path_r = path;
	else
		free(path);
	return c;
}

static void
test_valid(void)
{
	const struct conf_community *cc;
	char *path, *want;
	struct conf *c;

	c = conf_good("valid file", "# a comment\n"
	    "; another comment\n"
	    "\n"
	    "[gateway]\n"
	    "node = gw-test\n"
	    "connectors = conn/dir\n"
	    "control = run/imgwd.sock\n"
	    "log-level = debug\n"
	    "log = syslog\n"
	    "queue-size = 77\n"
	    "presence-rate = 3/7\n"
	    "loop-limit = 5/11\n"
	    "\n"
	    "[community corp]\n"
	    "connector = jsonl\n"
	    "local = yes\n"
	    "domains = Corp.Example., chat.corp.example\n"
	    "  listen   =   tcp:127.0.0.1:7001  \n"
	    "token = a = b\n"
	    "\n"
	    "[ community   partner.x ]\n"
	    "connector = jsonl\n"
	    "domains = PARTNER.example\n"
	    "queue-size = 9\n", &path);
	if (c == NULL) {
		skip(31, "no configuration");
		free(path);
		return;
	}
	is_str(c->file, path, "file kept");
	is_str(c->node, "gw-test", "node");
	if (asprintf(&want, "%s/conn/dir", tdir) < 0)
		bail_out("oom");
	is_str(c->connectors, want, "relative connectors path resolved against "
	    "the config's folder");
	free(want);
	if (asprintf(&want, "%s/run/imgwd.sock", tdir) < 0)
		bail_out("oom");
	is_str(c->control, want, "relative control path resolved");
	free(want);
	is_int(c->log_level, IMGW_LOG_DEBUG, "log-level");
	is_int(c->log_syslog, 1, "log = syslog");
	is_int(c->queue_size, 77, "queue-size");
	is_int(c->presence_rate, 3, "presence-rate count");
	is_int(c->presence_window, 7, "presence-rate window");
	is_int(c->loop_limit, 5, "loop-limit count");
	is_int(c->loop_window, 11, "loop-limit window");
	is_int(c->ncomms, 2, "two communities");

	cc = conf_community(c, "corp");
	ok(cc != NULL, "community corp found");
	if (cc == NULL) {
		skip(18, "no corp");
		goto out;
	}
	is_int(cc->line, 14, "corp: header line");
	is_str(cc->connector, "jsonl", "corp: connector");
	is_int(cc->connector_line, 15, "corp: connector line");
	is_int(cc->local, 1, "corp: local");
	is_int(cc->ndomains, 2, "corp: two domains");
	is_str(cc->domains[0], "corp.example", "corp: domain lower-cased, "
	    "trailing dot dropped");
	is_str(cc->domains[1], "chat.corp.example", "corp: second domain");
	is_int(cc->queue_size, 0, "corp: queue-size 0 (the gateway's)");
	is_int(cc->nopts, 2, "corp: two connector options kept");
	is_str(cc->opts[0].key, "listen", "corp: option key trimmed");
	is_str(cc->opts[0].value, "tcp:127.0.0.1:7001", "corp: option value "
	    "trimmed");
	is_int(cc->opts[0].line, 18, "corp: option line");
	is_str(cc->opts[1].key, "token", "corp: second option");
	is_str(cc->opts[1].value, "a = b", "corp: value split at the first '='");

	cc = conf_community(c, "partner.x");
	ok(cc != NULL, "community partner.x found (name trimmed)");
	if (cc == NULL)
		goto out;
	is_int(cc->local, 0, "partner: not local by default");
	is_str(cc->domains[0], "partner.example", "partner: domain lower-cased");
	is_int(cc->queue_size, 9, "partner: own queue-size");
	ok(conf_community(c, "nope") == NULL, "unknown community: NULL");
out:
	conf_free(c);
	free(path);
}

static void
test_defaults(void)
{
	char host[256];
	struct conf *c;

	c = conf_good("minimal file", "[community a]\nconnector = x\n"
	    "domains = a.example\n", NULL);
	if (c == NULL) {
		skip(10, "no configuration");
		return;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "imgw");
	host[sizeof(host) - 1] = '\0';
	is_str(c->node, host, "default node: the host name");
	is_str(c->connectors, IMGW_CONNECTORDIR, "default connectors folder");
	is_str(c->control, CONF_DEFAULT_CONTROL, "default control socket");
	is_int(c->log_level, IMGW_LOG_INFO, "default log-level info");
	is_int(c->log_syslog, 0, "default log to stderr");
	is_int(c->queue_size, 1024, "default queue-size");
	is_int(c->presence_rate, 10, "default presence-rate N");
	is_int(c->presence_window, 10, "default presence-rate window");
	is_int(c->loop_limit, 20, "default loop-limit N");
	is_int(c->loop_window, 10, "default loop-limit window");
	conf_free(c);

	c = conf_good("absolute paths", "[gateway]\nconnectors = /opt/c\n"
	    "control = /run/x.sock\nlog = stderr\nlog-level = WARNING\n", NULL);
	if (c == NULL) {
		skip(4, "no configuration");
		return;
	}
	is_str(c->connectors, "/opt/c", "absolute connectors path kept");
	is_str(c->control, "/run/x.sock", "absolute control path kept");
	is_int(c->log_level, IMGW_LOG_WARNING, "log-level is case-insensitive");
	is_int(c->ncomms, 0, "no community is fine");
	conf_free(c);
}

/*
 * imgwd daemonizes with chdir("/") after reading its configuration, so a
 * relative path that conf_load leaves relative to the working folder
 * points elsewhere afterwards: paths must come out absolute even when the
 * configuration file was named relatively.
 */
static void
test_relative_config(void)
{
	char cwd[4096], *want;
	struct conf *c;
	char err[1024] = "";

	if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(tdir) < 0)
		bail_out("cannot change to %s", tdir);
	free(tl_write(tdir, "rel.conf", "[gateway]\nconnectors = conn\n"
	    "control = ctl.sock\n"));
	c = conf_load("rel.conf", err, sizeof(err));
	if (chdir(cwd) < 0)
		bail_out("cannot change back to %s", cwd);
	if (!ok(c != NULL, "config named relatively: loads")) {
		diag("%s", err);
		return;
	}
	if (asprintf(&want, "%s/conn", tdir) < 0)
		bail_out("oom");
	is_str(c->connectors, want, "config named relatively: connectors is "
	    "absolute (the daemon leaves its folder)");
	free(want);
	ok(c->control[0] == '/', "config named relatively: control is absolute "
	    "(%s)", c->control);
	conf_free(c);
}

static void
test_errors(void)
{
	const char *comm = "connector = x\ndomains = a.example\n";
	char text[1024];
	char err[256] = "";

	conf_bad("unknown gateway key", "[gateway]\nnode = a\nfoo = 1\n", 3,
	    "unknown key 'foo' in [gateway]");
	conf_bad("key outside a section", "# top\nnode = x\n[gateway]\n", 2,
	    "key 'node' outside of any section");
	conf_bad("missing '='", "[gateway]\n\nnode\n", 3,
	    "expected 'key = value'");
	conf_bad("missing key", "[gateway]\n = x\n", 2, "missing key before '='");
	conf_bad("empty value", "[gateway]\nnode =   \n", 2,
	    "key 'node' has no value");
	conf_bad("unknown section", "[gateway]\n[gateways]\n", 2,
	    "unknown section [gateways]: expected [gateway], [store], [directory] or [community NAME]");
	conf_bad("community without name", "[community]\n", 1,
	    "unknown section [community]: expected [gateway], [store], [directory] or [community NAME]");
	conf_bad("malformed section header", "[gateway\n", 1,
	    "malformed section header");
	conf_bad("text after section header", "[gateway] x\n", 1,
	    "malformed section header");
	conf_bad("bad community name", "[community a/b]\n", 1,
	    "invalid community name 'a/b' (letters, digits, '-', '_', '.')");
	conf_bad("community name with a space", "[community a b]\n", 1,
	    "invalid community name 'a b' (letters, digits, '-', '_', '.')");
	conf_bad("duplicate gateway key", "[gateway]\nnode = a\n\nnode = b\n", 4,
	    "duplicate key 'node' (first at line 2)");
	snprintf(text, sizeof(text), "[community x]\n%slocal = no\nlocal = yes\n",
	    comm);
	conf_bad("duplicate community key", text, 5,
	    "duplicate key 'local' (first at line 4)");
	snprintf(text, sizeof(text), "[community x]\n%sopt = 1\nopt = 2\n", comm);
	conf_bad("duplicate connector option", text, 5,
	    "duplicate key 'opt' (first at line 4)");
	snprintf(text, sizeof(text), "[community x]\n%s[community x]\n%s", comm,
	    comm);
	conf_bad("duplicate community", text, 4,
	    "duplicate community 'x' (first at line 1)");
	conf_bad("duplicate [gateway]", "[gateway]\nnode = a\n[gateway]\n", 3,
	    "duplicate [gateway] section (first at line 1)");
	conf_bad("domain claimed by two communities",
	    "[community x]\nconnector = c\ndomains = a.example b.example\n"
	    "[community y]\nconnector = c\ndomains = B.Example.\n", 4,
	    "domain 'b.example' of community 'y' is already claimed by "
	    "community 'x' (line 1)");
	conf_bad("domain listed twice in one community",
	    "[community x]\nconnector = c\ndomains = a.example,A.EXAMPLE\n", 3,
	    "domain 'a.example' listed twice");
	conf_bad("two local communities",
	    "[community x]\nconnector = c\ndomains = a.example\nlocal = yes\n"
	    "[community y]\nconnector = c\ndomains = b.example\nlocal = true\n",
	    5, "community 'y' is local, but so is 'x' (line 1): only one local "
	    "community");
	conf_bad("missing connector", "[gateway]\n[community x]\n"
	    "domains = a.example\n", 2, "community 'x' has no 'connector' key");
	conf_bad("missing domains", "[community x]\nconnector = c\n", 1,
	    "community 'x' has no 'domains' key");
	conf_bad("domains without a domain", "[community x]\nconnector = c\n"
	    "domains = , ,\n", 3, "domains: at least one domain needed");
	conf_bad("connector as a path", "[community x]\nconnector = ../x\n", 2,
	    "connector '../x': a name, not a path (the file is "
	    "CONNECTORS/NAME.so)");
	conf_bad("bad local", "[community x]\nlocal = maybe\n", 2,
	    "local 'maybe': expected yes or no");
	conf_bad("bad log-level", "[gateway]\nlog-level = loud\n", 2,
	    "log-level 'loud': expected err, warning, notice, info or debug");
	conf_bad("bad log", "[gateway]\nlog = file\n", 2,
	    "log 'file': expected stderr or syslog");
	conf_bad("queue-size 0", "[gateway]\nqueue-size = 0\n", 2,
	    "queue-size '0': expected a number from 1 to 10000000");
	conf_bad("queue-size not a number", "[gateway]\nqueue-size = 12k\n", 2,
	    "queue-size '12k': expected a number from 1 to 10000000");
	conf_bad("queue-size too big", "[gateway]\nqueue-size = 10000001\n", 2,
	    "queue-size '10000001': expected a number from 1 to 10000000");
	conf_bad("community queue-size negative",
	    "[community x]\nqueue-size = -5\n", 2,
	    "queue-size '-5': expected a number from 1 to 10000000");
	conf_bad("presence-rate without window", "[gateway]\n"
	    "presence-rate = 10\n", 2,
	    "presence-rate '10': expected N/SECONDS, e.g. 10/10");
	conf_bad("presence-rate zero", "[gateway]\npresence-rate = 0/10\n", 2,
	    "presence-rate '0/10': expected N/SECONDS, e.g. 10/10");
	conf_bad("presence-rate zero window", "[gateway]\n"
	    "presence-rate = 10/0\n", 2,
	    "presence-rate '10/0': expected N/SECONDS, e.g. 10/10");
	conf_bad("presence-rate negative", "[gateway]\n"
	    "presence-rate = -1/10\n", 2,
	    "presence-rate '-1/10': expected N/SECONDS, e.g. 10/10");
	conf_bad("loop-limit trailing text", "[gateway]\nloop-limit = 20/10s\n",
	    2, "loop-limit '20/10s': expected N/SECONDS, e.g. 20/10");
	conf_bad("loop-limit zero", "[gateway]\nloop-limit = 0/5\n", 2,
	    "loop-limit '0/5': expected N/SECONDS, e.g. 20/10");
	conf_bad("invalid domain character", "[community x]\nconnector = c\n"
	    "domains = ok.example bad!x\n", 3, "invalid domain 'bad!x'");
	conf_bad("domain with an empty label", "[community x]\nconnector = c\n"
	    "domains = a..example\n", 3, "invalid domain 'a..example'");
	conf_bad("domain starting with a dot", "[community x]\nconnector = c\n"
	    "domains = .example\n", 3, "invalid domain '.example'");
	conf_bad("domain of a single dot", "[community x]\nconnector = c\n"
	    "domains = .\n", 3, "invalid domain '.'");
	/* only ONE trailing dot is the root label; "a.example.." has an
	 * empty label and must not become the non-canonical "a.example." */
	conf_bad("domain with two trailing dots", "[community x]\n"
	    "connector = c\ndomains = a.example..\n", 3,
	    "invalid domain 'a.example..'");

	ok(conf_load("/nonexistent/imgwd.conf", err, sizeof(err)) == NULL,
	    "missing file refused");
	is_str(err, "/nonexistent/imgwd.conf: cannot open: No such file or "
	    "directory", "missing file: message names the file");
}

static void
test_parsers(void)
{
	long long n = 0;
	char *d;

	is_int(conf_parse_bool("yes"), 1, "bool yes");
	is_int(conf_parse_bool("ON"), 1, "bool ON");
	is_int(conf_parse_bool("1"), 1, "bool 1");
	is_int(conf_parse_bool("False"), 0, "bool False");
	is_int(conf_parse_bool("0"), 0, "bool 0");
	is_int(conf_parse_bool("2"), -1, "bool 2 refused");
	is_int(conf_parse_bool(""), -1, "bool empty refused");
	ok(conf_parse_ll("-42", &n) == 0 && n == -42, "ll -42");
	ok(conf_parse_ll("", &n) < 0, "ll empty refused");
	ok(conf_parse_ll("12x", &n) < 0, "ll trailing text refused");
	ok(conf_parse_ll("99999999999999999999", &n) < 0, "ll overflow refused");
	d = conf_domain_canon("WWW.Example.ORG.");
	is_str(d, "www.example.org", "domain canon: lower case, no trailing dot");
	free(d);
	d = conf_domain_canon("b\xc3\xbc" "cher.example");
	is_str(d, "b\xc3\xbc" "cher.example", "domain canon: UTF-8 kept");
	free(d);
	ok(conf_domain_canon("") == NULL, "domain canon: empty refused");
	ok(conf_domain_canon("a b") == NULL, "domain canon: space refused");
}

static void
test_same(void)
{
	struct conf *a, *b, *c, *d;
	const struct conf_community *ca, *cb, *cc, *cd;
	struct conf_community *dup;

	a = conf_good("same: first", "[community x]\nconnector = c\n"
	    "domains = a.example b.example\nopt1 = 1\nopt2 = two\n"
	    "[community y]\nconnector = c\ndomains = y.example\n", NULL);
	b = conf_good("same: options reordered", "[community x]\nopt2 = two\n"
	    "domains = A.example. b.example\n\n\nopt1 = 1\nconnector = c\n",
	    NULL);
	c = conf_good("same: option value changed", "[community x]\n"
	    "connector = c\ndomains = a.example b.example\nopt1 = 1\n"
	    "opt2 = three\n", NULL);
	d = conf_good("same: option renamed", "[community x]\n"
	    "connector = c\ndomains = a.example b.example\nopt1 = 1\n"
	    "opt3 = two\nqueue-size = 5\n", NULL);
	if (a == NULL || b == NULL || c == NULL || d == NULL) {
		skip(8, "configuration missing");
		goto out;
	}
	ca = conf_community(a, "x");
	cb = conf_community(b, "x");
	cc = conf_community(c, "x");
	cd = conf_community(d, "x");
	ok(conf_community_same(ca, cb), "option order and line numbers do not "
	    "matter");
	ok(conf_community_same(cb, ca), "... either way");
	ok(!conf_community_same(ca, cc), "a changed option value is a change");
	ok(!conf_community_same(ca, cd), "a renamed option is a change");
	ok(!conf_community_same(ca, conf_community(a, "y")), "another section "
	    "differs");
	dup = conf_community_dup(ca);
	ok(conf_community_same(ca, dup), "a copy is the same");
	dup->local = 1;
	ok(!conf_community_same(ca, dup), "local changed is a change");
	dup->local = 0;
	dup->queue_size = 3;
	ok(!conf_community_same(ca, dup), "queue-size changed is a change");
	conf_community_free(dup);
out:
	conf_free(a);
	conf_free(b);
	conf_free(c);
	conf_free(d);
}

int
main(void)
{
	tdir = tl_tmpdir();
	test_valid();
	test_defaults();
	test_relative_config();
	test_errors();
	test_parsers();
	test_same();
	tl_rmrf(tdir);
	free(tdir);
	return done_testing();
}
