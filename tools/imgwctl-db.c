/*
 * imgwctl db init|migrate|version|schema: the schema of the store named
 * by the configuration's [store], run here (the store's worker thread,
 * waited for), not through imgwd.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "imgwctl-db.h"

struct store *
imgwctl_store_open(const char *conf_file, struct conf **conf_r)
{
	struct store_status st;
	struct store *s;
	struct conf *c;
	char err[1024];

	/* the store's own notices would go to stderr: only errors */
	log_setup(LOG_TARGET_STDERR, IMGW_LOG_ERR);
	if ((c = conf_load(conf_file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imgwctl: %s\n", err);
		return NULL;
	}
	s = store_new_flags(NULL, c, 0, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "imgwctl: %s\n", err[0] ? err
		    : "the configuration has no store ([store] dsn = none)");
		conf_free(c);
		return NULL;
	}
	log_setup(LOG_TARGET_STDERR, (enum imgw_log_level)0);	/* quiet: we report */
	if (store_wait_first(s, 60000) != STORE_UP) {
		store_get_status(s, &st);
		fprintf(stderr, "imgwctl: cannot connect to %s: %s\n", st.dsn,
		    st.error[0] ? st.error : "no answer");
		store_free(s, 0);
		conf_free(c);
		return NULL;
	}
	*conf_r = c;
	return s;
}

static int
imgwctl_db_version(struct store_conn *sc, void *arg)
{
	return store_schema_version(sc, arg);
}

static void
imgwctl_db_usage(FILE *f)
{
	fprintf(f, "usage: imgwctl [-c CONFIG] db init|migrate|version\n"
	    "       imgwctl db schema [sqlite|postgresql|mariadb|db2]\n");
}

int
imgwctl_db(const char *conf_file, int argc, char **argv)
{
	struct store_status st;
	struct store *s;
	struct conf *c;
	char err[1024];
	int v = 0, v2 = 0, at = STORE_SCHEMA_VERSION, rc = 0, d;
	char *text;

	if (argc < 2) {
		imgwctl_db_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "schema") == 0) {
		/* needs no database: what `db init` would run */
		if (argc > 3) {
			imgwctl_db_usage(stderr);
			return 2;
		}
		d = argc == 3 ? store_dialect_parse(argv[2]) : -1;
		if (argc == 3 && d < 0) {
			fprintf(stderr, "imgwctl: unknown dialect '%s'\n", argv[2]);
			return 2;
		}
		text = store_schema_text(d);
		fputs(text, stdout);
		free(text);
		return 0;
	}
	if (strcmp(argv[1], "init") == 0 && argc == 4 &&
	    strcmp(argv[2], "--schema-version") == 0) {
		/* an older schema, for testing migrate */
		at = atoi(argv[3]);
		argc = 2;
	}
	if (argc != 2 || (strcmp(argv[1], "init") != 0 &&
	    strcmp(argv[1], "migrate") != 0 && strcmp(argv[1], "version") != 0)) {
		imgwctl_db_usage(stderr);
		return 2;
	}
	if ((s = imgwctl_store_open(conf_file, &c)) == NULL)
		return 1;
	store_get_status(s, &st);
	if (store_call(s, imgwctl_db_version, &v, err, sizeof(err)) < 0) {
		fprintf(stderr, "imgwctl: reading the schema version: %s\n", err);
		rc = 1;
	} else if (strcmp(argv[1], "version") == 0) {
		printf("schema version %d (this imgw: %d), %s, %s\n", v,
		    STORE_SCHEMA_VERSION, st.dbms, st.dsn);
		if (v == 0)
			printf("no schema: run `imgwctl db init`\n");
		else if (v < STORE_SCHEMA_VERSION)
			printf("older than this imgw: run `imgwctl db migrate`\n");
		else if (v > STORE_SCHEMA_VERSION)
			printf("newer than this imgw: upgrade imgw\n");
	} else if (strcmp(argv[1], "init") == 0) {
		if (store_call(s, store_schema_init_at, &at, err, sizeof(err)) < 0) {
			fprintf(stderr, "imgwctl: db init: %s\n", err);
			rc = 1;
		} else {
			printf("created the imgw schema version %d in %s (%s)\n", at,
			    st.dsn, st.dbms);
		}
	} else {
		if (store_call(s, store_schema_migrate, NULL, err,
		    sizeof(err)) < 0 ||
		    store_call(s, imgwctl_db_version, &v2, err, sizeof(err)) < 0) {
			fprintf(stderr, "imgwctl: db migrate: %s\n", err);
			rc = 1;
		} else if (v == v2) {
			printf("schema version %d is current; nothing to do\n", v);
		} else {
			printf("migrated the schema from version %d to %d in %s\n",
			    v, v2, st.dsn);
		}
	}
	store_free(s, 5000);
	conf_free(c);
	return rc;
}
