/* imgwctl's local commands, run against the store of the configuration
 * rather than through the control socket: `db` and `log`. */
#ifndef IMGW_TOOLS_IMGWCTL_DB_H
#define IMGW_TOOLS_IMGWCTL_DB_H

/* argv[0] is "db" / "log"; returns the exit status (0 ok, 1 failed,
 * 2 usage or configuration). */
int imgwctl_db(const char *conf_file, int argc, char **argv);
int imgwctl_log(const char *conf_file, int argc, char **argv);

/* Open the store of `conf_file` for a local command (no schema check);
 * NULL after printing why. */
struct store;
struct conf;
struct store *imgwctl_store_open(const char *conf_file, struct conf **conf_r);

#endif
