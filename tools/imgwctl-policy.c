/*
 * imgwctl policy: read and change the policies in the store, ask a running
 * imgwd to read them again, and ask it for a decision.
 *
 *   policy list                         every setting, global and rule
 *   policy show COMMUNITY               a community's settings and rules
 *   policy add COMMUNITY KIND VALUE     a rule (prints its id)
 *   policy set COMMUNITY KEY VALUE      a setting ('*': a global one)
 *   policy remove ID                    a rule
 *   policy test FROM TO [KIND]          imgwd's decision, nothing sent
 *
 * Changes go to the database directly (the store API, synchronously);
 * then a running imgwd is asked to refresh, and imgwctl waits until the
 * new snapshot is in force (an imgwd that is not running reads them at
 * its start).  Exit status as imgwctl's; `test` exits 0 allowed, 1 refused.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "conf.h"
#include "log.h"
#include "policy.h"
#include "store.h"

#define PCTL_EXIT_OK		0
#define PCTL_EXIT_ERROR		1
#define PCTL_EXIT_USAGE		2
#define PCTL_EXIT_NOT_RUNNING	3
#define PCTL_WAIT_MS		10000	/* for imgwd to put a change in force */
#define PCTL_ANSWER_MAX		(64 * 1024)

int imgwctl_policy(const char *file, const char *sock, int argc, char **argv);

static const char *const pctl_globals[] = {
	"max_im_sessions", "max_subscriptions", "session_idle", NULL
};

/* What a job needs and what it gives back (jobs run on the store's
 * worker while main waits in store_call). */
struct pctl_job {
	const char *community, *kind, *value, *key;
	struct store_val val;
	int64_t id, created_ms, rows;
	FILE *out;			/* list and show write here */
	int show_all;			/* show: every setting */
	int found;
};

static int64_t
pctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- jobs ---------------------------------------------------------------------- */

static const char *
pctl_text(const struct store_val *v, char *buf, size_t len)
{
	if (v->type == STORE_TEXT)
		return v->s;
	if (v->type == STORE_INT) {
		snprintf(buf, len, "%" PRId64, v->i);
		return buf;
	}
	return NULL;
}

/* One imgw_policy_community row: the settings that differ from the
 * defaults (or all of them). */
static int
pctl_community_row(void *arg, const struct store_val *cols, size_t n)
{
	struct pctl_job *j = arg;
	struct policy_settings s, def;
	char num[32], err[256], a[64], b[64];
	const char *v, *name;
	size_t i;
	int any = 0;

	if ((name = pctl_text(&cols[0], num, sizeof(num))) == NULL)
		return 0;
	if (j->community != NULL && strcmp(name, j->community) != 0)
		return 0;
	j->found = 1;
	if (!j->show_all)
		fprintf(j->out, "%-16s", name);
	policy_settings_default(&s);
	def = s;
	for (i = 0; policy_setting_keys[i] != NULL && i + 1 < n; i++) {
		v = pctl_text(&cols[i + 1], num, sizeof(num));
		if (policy_settings_set(&s, policy_setting_keys[i],
		    v ? v : "none", err, sizeof(err)) < 0) {
			fprintf(j->out, " %s=?(%s)", policy_setting_keys[i],
			    v ? v : "NULL");
			any = 1;
			continue;
		}
		policy_settings_get(&s, policy_setting_keys[i], a, sizeof(a));
		policy_settings_get(&def, policy_setting_keys[i], b, sizeof(b));
		if (j->show_all)
			fprintf(j->out, "%-20s %s%s\n", policy_setting_keys[i],
			    a, strcmp(a, b) ? "" : "  (default)");
		else if (strcmp(a, b) != 0) {
			fprintf(j->out, " %s=%s", policy_setting_keys[i], a);
			any = 1;
		}
	}
	if (!j->show_all)
		fprintf(j->out, "%s\n", any ? "" : " (all defaults)");
	return 0;
}

static int
pctl_rule_row(void *arg, const struct store_val *cols, size_t n)
{
	struct pctl_job *j = arg;
	char b0[32], b1[32], b2[32], b3[32];
	const char *comm = pctl_text(&cols[1], b1, sizeof(b1));

	if (comm == NULL)
		return 0;
	if (j->community != NULL && strcmp(comm, j->community) != 0 &&
	    strcmp(comm, "*") != 0)
		return 0;
	fprintf(j->out, "#%-6s %-16s %-13s %s\n",
	    pctl_text(&cols[0], b0, sizeof(b0)), comm,
	    pctl_text(&cols[2], b2, sizeof(b2)) ?: "?",
	    pctl_text(&cols[3], b3, sizeof(b3)) ?: "?");
	j->rows++;
	return 0;
}

static int
pctl_global_row(void *arg, const struct store_val *cols, size_t n)
{
	struct pctl_job *j = arg;
	char b0[32], b1[32];
	const char *v = pctl_text(&cols[1], b1, sizeof(b1));

	fprintf(j->out, "%-20s %s\n", pctl_text(&cols[0], b0, sizeof(b0)) ?:
	    "?", v ? v : "none");
	j->rows++;
	return 0;
}

#define PCTL_COMMUNITY_SQL "SELECT community, default_allow, local_access, " \
    "inbound_subscribe, inbound_initiate, audit_level, audit_im, " \
    "audit_subscriptions, audit_presence, allow_rich_text, allow_typing, " \
    "max_im_sessions, max_subscriptions FROM imgw_policy_community"

static int
pctl_list_job(struct store_conn *sc, void *arg)
{
	struct pctl_job *j = arg;

	fprintf(j->out, "communities (settings that differ from the "
	    "defaults):\n");
	if (store_query(sc, PCTL_COMMUNITY_SQL " ORDER BY community", NULL, 0,
	    pctl_community_row, j) < 0)
		return -1;
	fprintf(j->out, "\nglobal:\n");
	j->rows = 0;
	if (store_query(sc, "SELECT name, value FROM imgw_policy_global "
	    "ORDER BY name", NULL, 0, pctl_global_row, j) < 0)
		return -1;
	if (j->rows == 0)
		fprintf(j->out, "(no global limits)\n");
	fprintf(j->out, "\nrules:\n");
	j->rows = 0;
	if (store_query(sc, "SELECT id, community, kind, value FROM "
	    "imgw_policy_rule ORDER BY id", NULL, 0, pctl_rule_row, j) < 0)
		return -1;
	if (j->rows == 0)
		fprintf(j->out, "(no rules)\n");
	return 0;
}

static int
pctl_show_job(struct store_conn *sc, void *arg)
{
	struct pctl_job *j = arg;
	struct store_val p = STORE_TEXT_VAL(j->community);
	struct policy_settings s;
	char a[64];
	size_t i;

	fprintf(j->out, "community %s\n", j->community);
	j->show_all = 1;
	if (store_query(sc, PCTL_COMMUNITY_SQL " WHERE community = ?", &p, 1,
	    pctl_community_row, j) < 0)
		return -1;
	if (!j->found) {
		policy_settings_default(&s);
		for (i = 0; policy_setting_keys[i] != NULL; i++)
			fprintf(j->out, "%-20s %s  (default)\n",
			    policy_setting_keys[i], policy_settings_get(&s,
			    policy_setting_keys[i], a, sizeof(a)));
	}
	fprintf(j->out, "\nrules (its own and '*'):\n");
	if (store_query(sc, "SELECT id, community, kind, value FROM "
	    "imgw_policy_rule ORDER BY id", NULL, 0, pctl_rule_row, j) < 0)
		return -1;
	if (j->rows == 0)
		fprintf(j->out, "(no rules)\n");
	return 0;
}

static int
pctl_max_id_row(void *arg, const struct store_val *cols, size_t n)
{
	struct pctl_job *j = arg;

	j->id = store_val_int(&cols[0], 0);
	return 0;
}

static int
pctl_add_job(struct store_conn *sc, void *arg)
{
	struct pctl_job *j = arg;
	struct store_val p[4] = {
		STORE_TEXT_VAL(j->community), STORE_TEXT_VAL(j->kind),
		STORE_TEXT_VAL(j->value), STORE_INT_VAL(j->created_ms),
	};

	if (store_exec(sc, "INSERT INTO imgw_policy_rule (community, kind, "
	    "value, created_ms) VALUES (?, ?, ?, ?)", p, 4, NULL) < 0)
		return -1;
	/* the id the database gave it (portable: no RETURNING, no
	 * last-insert-id function) */
	return store_query(sc, "SELECT MAX(id) FROM imgw_policy_rule WHERE "
	    "community = ? AND kind = ? AND value = ? AND created_ms = ?", p, 4,
	    pctl_max_id_row, j);
}

static int
pctl_remove_job(struct store_conn *sc, void *arg)
{
	struct pctl_job *j = arg;
	struct store_val p = STORE_INT_VAL(j->id);

	return store_exec(sc, "DELETE FROM imgw_policy_rule WHERE id = ?", &p,
	    1, &j->rows);
}

static int
pctl_count_row(void *arg, const struct store_val *cols, size_t n)
{
	int64_t *count = arg;

	*count = n > 0 ? store_val_int(&cols[0], 0) : 0;
	return 0;
}

/*
 * UPDATE, and INSERT when there was no row (in one transaction).  Whether
 * the row exists is asked, not read from the UPDATE's row count: MariaDB
 * counts the rows it changed, not those it matched (unless the client
 * sets FOUND_ROWS), so setting a value a row already has would count 0
 * and the INSERT would then hit the primary key.
 */
static int
pctl_set_job(struct store_conn *sc, void *arg)
{
	struct pctl_job *j = arg;
	struct store_val p[2] = { j->val, STORE_TEXT_VAL(j->community) };
	char upd[160], ins[160], sel[160];
	int global = !strcmp(j->community, "*");
	int64_t have = 0;

	/* the column name comes from policy_setting_keys/pctl_globals,
	 * never from the command line as typed */
	if (global) {
		snprintf(upd, sizeof(upd), "UPDATE imgw_policy_global SET "
		    "value = ? WHERE name = ?");
		snprintf(ins, sizeof(ins), "INSERT INTO imgw_policy_global "
		    "(value, name) VALUES (?, ?)");
		snprintf(sel, sizeof(sel), "SELECT COUNT(*) FROM "
		    "imgw_policy_global WHERE name = ?");
		p[1] = STORE_TEXT_VAL(j->key);
	} else {
		snprintf(sel, sizeof(sel), "SELECT COUNT(*) FROM "
		    "imgw_policy_community WHERE community = ?");
		snprintf(upd, sizeof(upd), "UPDATE imgw_policy_community SET "
		    "%s = ? WHERE community = ?", j->key);
		snprintf(ins, sizeof(ins), "INSERT INTO imgw_policy_community "
		    "(%s, community) VALUES (?, ?)", j->key);
	}
	if (store_begin(sc) < 0)
		return -1;
	if (store_exec(sc, upd, p, 2, &j->rows) < 0)
		goto fail;
	if (j->rows == 0 && store_query(sc, sel, &p[1], 1, pctl_count_row,
	    &have) < 0)
		goto fail;
	if (j->rows == 0 && have == 0 && store_exec(sc, ins, p, 2, NULL) < 0)
		goto fail;
	return store_commit(sc);
fail:
	store_rollback(sc);
	return -1;
}

/* ---- imgwd ---------------------------------------------------------------------- */

/*
 * Send `line` to imgwd and read its whole answer into `buf`.  Returns 0
 * ("ok"), 1 ("error"), -1 broken exchange, -3 not running.
 */
static int
pctl_ask(const char *path, const char *line, char *buf, size_t buflen)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	size_t have = 0, len;
	ssize_t n;
	int fd, rc;
	char *nl;

	buf[0] = '\0';
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ||
		    errno == ENOTDIR ? -3 : -1;
		close(fd);
		return rc;
	}
	len = strlen(line);
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 30000) <= 0) {
			close(fd);
			return -1;
		}
		n = read(fd, buf + have, buflen - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == buflen - 1)
			break;
	}
	close(fd);
	buf[have] = '\0';
	if ((nl = strchr(buf, '\n')) == NULL)
		return -1;
	*nl = '\0';
	rc = !strcmp(buf, "ok") ? 0 : !strcmp(buf, "error") ? 1 : -1;
	memmove(buf, nl + 1, strlen(nl + 1) + 1);
	return rc;
}

/* Ask a running imgwd to read the policies again, and wait until it has. */
static int
pctl_refresh(const char *path)
{
	char buf[1024], line[64];
	unsigned long long serial;
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int waited, rc;

	if (path == NULL)
		return 0;
	rc = pctl_ask(path, "policy refresh", buf, sizeof(buf));
	if (rc == -3)
		return 0;	/* not running: it reads them at its start */
	if (rc != 0 || sscanf(buf, "serial %llu", &serial) != 1) {
		fprintf(stderr, "imgwctl: imgwd did not refresh its "
		    "policies: %s", buf[0] ? buf : "no answer\n");
		return -1;
	}
	snprintf(line, sizeof(line), "policy wait %llu", serial);
	for (waited = 0; waited < PCTL_WAIT_MS; waited += 50) {
		rc = pctl_ask(path, line, buf, sizeof(buf));
		if (rc == 0)
			return 0;
		if (rc != 1 || strncmp(buf, "pending", 7) != 0) {
			fprintf(stderr, "imgwctl: imgwd could not read the "
			    "policies: %s", buf[0] ? buf : "no answer\n");
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "imgwctl: imgwd has not read the policies after %d "
	    "s\n", PCTL_WAIT_MS / 1000);
	return -1;
}

/* ---- main ---------------------------------------------------------------------- */

static void
pctl_usage(void)
{
	fprintf(stderr, "usage: imgwctl [-c CONFIG] policy list\n"
	    "       imgwctl [-c CONFIG] policy show COMMUNITY\n"
	    "       imgwctl [-c CONFIG] policy add COMMUNITY|'*' KIND VALUE\n"
	    "       imgwctl [-c CONFIG] policy set COMMUNITY|'*' KEY VALUE\n"
	    "       imgwctl [-c CONFIG] policy remove ID\n"
	    "       imgwctl [-c CONFIG|-s SOCKET] policy test FROM TO [KIND]\n"
	    "kinds: allow-user allow-group block-user block-domain\n");
}

/* Check a community name against the configuration ('*' is every
 * external community). */
static int
pctl_community_ok(const struct conf *c, const char *name)
{
	if (!strcmp(name, "*") || conf_community(c, name) != NULL)
		return 1;
	fprintf(stderr, "imgwctl: no community '%s' in %s\n", name, c->file);
	return 0;
}

/* Check and convert `key value` into j->key / j->val; 0 or -1. */
static int
pctl_setting(struct pctl_job *j, const char *key, const char *value,
    char *text, size_t textlen)
{
	struct policy_settings s;
	char err[256];
	size_t i;
	long long n;

	if (!strcmp(j->community, "*")) {
		for (i = 0; pctl_globals[i] != NULL; i++)
			if (!strcmp(pctl_globals[i], key))
				break;
		if (pctl_globals[i] == NULL) {
			fprintf(stderr, "imgwctl: '*' takes the global settings "
			    "max_im_sessions, max_subscriptions, session_idle\n");
			return -1;
		}
		j->key = pctl_globals[i];
		if (!strcasecmp(value, "none")) {
			if (!strcmp(key, "session_idle")) {
				fprintf(stderr, "imgwctl: session_idle needs "
				    "seconds\n");
				return -1;
			}
			j->val = (struct store_val){ .type = STORE_NULL };
			return 0;
		}
		if (conf_parse_ll(value, &n) < 0 || n < 0 ||
		    (!strcmp(key, "session_idle") && (n < 1 ||
		    n > 7 * 24 * 3600))) {
			fprintf(stderr, "imgwctl: %s: '%s' is not a valid "
			    "number\n", key, value);
			return -1;
		}
		snprintf(text, textlen, "%lld", n);
		j->val = STORE_TEXT_VAL(text);
		return 0;
	}
	for (i = 0; policy_setting_keys[i] != NULL; i++)
		if (!strcmp(policy_setting_keys[i], key))
			break;
	if (policy_setting_keys[i] == NULL) {
		fprintf(stderr, "imgwctl: unknown setting '%s'; settings:", key);
		for (i = 0; policy_setting_keys[i] != NULL; i++)
			fprintf(stderr, " %s", policy_setting_keys[i]);
		fprintf(stderr, "\n");
		return -1;
	}
	j->key = policy_setting_keys[i];
	policy_settings_default(&s);
	if (policy_settings_set(&s, key, value, err, sizeof(err)) < 0) {
		fprintf(stderr, "imgwctl: %s\n", err);
		return -1;
	}
	/* store the canonical form: 0/1 for flags, the word for enums */
	policy_settings_get(&s, key, text, textlen);
	if (!strcmp(key, "local_access") || !strcmp(key, "audit_level"))
		j->val = STORE_TEXT_VAL(text);
	else if (!strcmp(text, "yes") || !strcmp(text, "no"))
		j->val = STORE_INT_VAL(!strcmp(text, "yes"));
	else if (!strcmp(text, "none"))
		j->val = (struct store_val){ .type = STORE_NULL };
	else
		j->val = STORE_INT_VAL(strtoll(text, NULL, 10));
	return 0;
}

/* The test subcommand: imgwd decides. */
static int
pctl_test(const char *path, int argc, char **argv)
{
	char line[4200], *buf;
	int rc;

	if (argc < 3 || argc > 4) {
		pctl_usage();
		return PCTL_EXIT_USAGE;
	}
	snprintf(line, sizeof(line), "policy test %s %s%s%s", argv[1], argv[2],
	    argc == 4 ? " " : "", argc == 4 ? argv[3] : "");
	if (strlen(line) >= sizeof(line) - 1 || strchr(line, '\n')) {
		fprintf(stderr, "imgwctl: arguments too long\n");
		return PCTL_EXIT_USAGE;
	}
	buf = malloc(PCTL_ANSWER_MAX);
	if (buf == NULL)
		return PCTL_EXIT_ERROR;
	rc = pctl_ask(path, line, buf, PCTL_ANSWER_MAX);
	if (rc == -3) {
		fprintf(stderr, "imgwctl: imgwd is not running (no control "
		    "socket at %s)\n", path);
		rc = PCTL_EXIT_NOT_RUNNING;
	} else if (rc < 0) {
		fprintf(stderr, "imgwctl: no answer from imgwd on %s\n", path);
		rc = PCTL_EXIT_ERROR;
	} else if (strncmp(buf, "decision: ", 10) != 0) {
		fprintf(stderr, "imgwctl: %s", buf);	/* a usage error */
		rc = PCTL_EXIT_ERROR;
	} else {
		fputs(buf, stdout);
		rc = rc == 0 ? PCTL_EXIT_OK : PCTL_EXIT_ERROR;
	}
	free(buf);
	return rc;
}

int
imgwctl_policy(const char *file, const char *sock, int argc, char **argv)
{
	struct pctl_job j = { 0 };
	struct store *store = NULL;
	struct conf *conf = NULL;
	char err[1024], text[64], *buf = NULL, *path = NULL, *end;
	size_t buflen = 0;
	int rc = PCTL_EXIT_ERROR, changed = 0, k;
	store_job_fn job = NULL;

	/* argv[0] is "policy" */
	if (argc < 2) {
		pctl_usage();
		return PCTL_EXIT_USAGE;
	}
	if (sock == NULL || strcmp(argv[1], "test") != 0) {
		if ((conf = conf_load(file ? file : CONF_DEFAULT_FILE, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "imgwctl: %s\n", err);
			return PCTL_EXIT_USAGE;
		}
	}
	path = strdup(sock ? sock : conf->control ? conf->control
	    : CONF_DEFAULT_CONTROL);
	if (path == NULL)
		goto out;
	if (!strcmp(argv[1], "test")) {
		rc = pctl_test(path, argc - 1, argv + 1);
		goto out;
	}

	rc = PCTL_EXIT_USAGE;
	if (!strcmp(argv[1], "list") && argc == 2) {
		job = pctl_list_job;
	} else if (!strcmp(argv[1], "show") && argc == 3) {
		j.community = argv[2];
		job = pctl_show_job;
	} else if (!strcmp(argv[1], "add") && argc == 5) {
		if (!pctl_community_ok(conf, argv[2]))
			goto out;
		if ((k = policy_rule_kind_parse(argv[3])) < 0) {
			fprintf(stderr, "imgwctl: unknown rule kind '%s' "
			    "(allow-user, allow-group, block-user, "
			    "block-domain)\n", argv[3]);
			goto out;
		}
		if (policy_rule_check((enum policy_rule_kind)k, argv[4], err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "imgwctl: %s\n", err);
			goto out;
		}
		j.community = argv[2];
		j.kind = argv[3];
		j.value = argv[4];
		j.created_ms = pctl_now_ms();
		job = pctl_add_job;
		changed = 1;
	} else if (!strcmp(argv[1], "set") && argc == 5) {
		if (!pctl_community_ok(conf, argv[2]))
			goto out;
		j.community = argv[2];
		if (pctl_setting(&j, argv[3], argv[4], text, sizeof(text)) < 0)
			goto out;
		job = pctl_set_job;
		changed = 1;
	} else if (!strcmp(argv[1], "remove") && argc == 3) {
		errno = 0;
		j.id = strtoll(argv[2][0] == '#' ? argv[2] + 1 : argv[2], &end,
		    10);
		if (errno != 0 || *end != '\0' || j.id <= 0) {
			fprintf(stderr, "imgwctl: '%s' is not a rule id\n",
			    argv[2]);
			goto out;
		}
		job = pctl_remove_job;
		changed = 1;
	} else {
		pctl_usage();
		goto out;
	}

	rc = PCTL_EXIT_ERROR;
	/* the store's notices (connected, ...) are imgwd's business */
	log_set_level(IMGW_LOG_WARNING);
	if ((store = store_new_flags(NULL, conf, STORE_CHECK_SCHEMA, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "imgwctl: %s\n", err[0] ? err : "[store] says "
		    "dsn = none: there are no stored policies");
		goto out;
	}
	if ((j.out = open_memstream(&buf, &buflen)) == NULL)
		goto out;
	if (store_call(store, job, &j, err, sizeof(err)) < 0) {
		fclose(j.out);
		j.out = NULL;
		fprintf(stderr, "imgwctl: %s\n", err);
		goto out;
	}
	fclose(j.out);
	j.out = NULL;
	fputs(buf, stdout);
	if (job == pctl_add_job)
		printf("added rule #%" PRId64 "\n", j.id);
	if (job == pctl_remove_job && j.rows == 0) {
		fprintf(stderr, "imgwctl: no rule #%" PRId64 "\n", j.id);
		goto out;
	}
	rc = PCTL_EXIT_OK;
	if (changed && pctl_refresh(path) < 0)
		rc = PCTL_EXIT_ERROR;
out:
	if (store != NULL)
		store_free(store, 5000);
	free(buf);
	free(path);
	conf_free(conf);
	return rc;
}
