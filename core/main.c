/* imgwd: the gateway daemon's entry point — options, signals, the loop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "gateway.h"
#include "loader.h"
#include "log.h"
#include "util.h"

static void
main_usage(FILE *fp)
{
	fprintf(fp, "usage: imgwd [-f] [-t] [-V] [-c FILE]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print version and connector ABI\n", CONF_DEFAULT_FILE);
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;
	char err[1024];

	if (sig == SIGHUP) {
		log_notice("SIGHUP: reloading the configuration");
		gateway_reload(gw, err, sizeof(err));
	} else {
		log_notice("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		gateway_shutdown(gw);
	}
}

static int
main_daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *file = CONF_DEFAULT_FILE;
	char *abs_file = NULL;
	int foreground = 0, check = 0, ch, rc = 1;
	struct event *sigs[3] = { NULL, NULL, NULL };
	const int signums[3] = { SIGHUP, SIGTERM, SIGINT };
	struct event_base *base = NULL;
	struct event_config *cfg;
	struct gateway *gw = NULL;
	struct conf *conf;
	char err[2048];
	uint64_t seed;
	size_t i;

	while ((ch = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("imgwd %s (connector ABI %d.%d)\n", IMGW_VERSION,
			    IMGW_ABI_MAJOR, IMGW_ABI_MINOR);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 2;
	}
	/* the daemon leaves its working folder, and reloads read the file
	 * again: keep an absolute name (a missing file is reported below) */
	if ((abs_file = realpath(file, NULL)) != NULL)
		file = abs_file;
	if (check) {
		if (gateway_check(file, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			loader_cleanup();
			free(abs_file);
			return 1;
		}
		printf("%s: configuration is valid\n", file);
		loader_cleanup();
		free(abs_file);
		return 0;
	}
	if ((conf = conf_load(file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		free(abs_file);
		return 1;
	}
	log_setup(LOG_TARGET_STDERR, conf->log_level);
	if (!foreground) {
		if (main_daemonize() < 0) {
			fprintf(stderr, "imgwd: cannot daemonize: %s\n",
			    strerror(errno));
			conf_free(conf);
			free(abs_file);
			return 1;
		}
		log_setup(LOG_TARGET_SYSLOG, conf->log_level);
	} else if (conf->log_syslog) {
		log_setup(LOG_TARGET_SYSLOG, conf->log_level);
	}
	signal(SIGPIPE, SIG_IGN);
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
	    (uint64_t)(uintptr_t)&seed;
	util_hash_seed(seed);

	/* connectors flip write interest often: let epoll see only the net
	 * change per loop turn instead of a DEL and an ADD each time */
	if ((cfg = event_config_new()) != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (base == NULL) {
		log_err("cannot create the event loop");
		conf_free(conf);
		free(abs_file);
		return 1;
	}
	if ((gw = gateway_new(base, file, conf, err, sizeof(err))) == NULL) {
		log_err("%s", err);
		goto out;
	}
	for (i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(base, signums[i], main_signal_cb, gw);
		event_add(sigs[i], NULL);
	}
	log_notice("imgwd %s started (node %s, pid %d)", IMGW_VERSION,
	    conf->node, (int)getpid());
	event_base_dispatch(base);
	log_notice("imgwd stopped");
	rc = 0;
out:
	for (i = 0; i < 3; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	gateway_free(gw);
	loader_cleanup();
	if (base != NULL)
		event_base_free(base);
	libevent_global_shutdown();
	free(abs_file);
	return rc;
}
