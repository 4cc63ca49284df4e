/*
 * imgwctl: talk to imgwd through its control socket.
 *
 * Sends one command line, prints the answer's body (to stdout for "ok", to
 * stderr for "error") and exits with the answer's status.
 *
 * Exit status: 0 ok, 1 error answer (or a broken exchange), 2 usage or
 * configuration error, 3 imgwd not running, 4 permission denied.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <imgw/version.h>

#include "conf.h"
#include "imgwctl-db.h"

#define IMGWCTL_TIMEOUT_SECS	30	/* for the whole answer; reload is slow */

enum {
	IMGWCTL_EXIT_OK = 0,
	IMGWCTL_EXIT_ERROR = 1,
	IMGWCTL_EXIT_USAGE = 2,
	IMGWCTL_EXIT_NOT_RUNNING = 3,
	IMGWCTL_EXIT_DENIED = 4,
};

static void
imgwctl_usage(FILE *f)
{
	fprintf(f,
	    "usage: imgwctl [-s SOCKET | -c CONFIG] COMMAND\n"
	    "       imgwctl -h | -V\n"
	    "\n"
	    "commands:\n"
	    "  status [--json]   show communities, queues and counters\n"
	    "  reload            re-read the configuration (like SIGHUP)\n"
	    "  stop              drain and stop imgwd\n"
	    "  policy list|show COMMUNITY|add COMMUNITY KIND VALUE|\n"
	    "         set COMMUNITY KEY VALUE|remove ID|test FROM TO [KIND]\n"
	    "                    read and change the policies (in the store);\n"
	    "                    test asks imgwd for its decision\n"
	    "  db init|migrate|version\n"
	    "                    create, migrate or show the store's schema\n"
	    "                    (runs here, against the config's [store])\n"
	    "  db schema [DIALECT]  print the DDL (sqlite, postgresql, mariadb, db2)\n"
	    "  log query [--since T] [--until T] [--user ADDR] [--community NAME]\n"
	    "            [--limit N] [--json]\n"
	    "                    read the audit log (T: ISO 8601 UTC or epoch ms)\n"
	    "\n"
	    "options:\n"
	    "  -s SOCKET   control socket (default: the config's [gateway] control)\n"
	    "  -c CONFIG   configuration file (default %s)\n"
	    "  -h          this help\n"
	    "  -V          print the version\n",
	    CONF_DEFAULT_FILE);
}

/* The command line to send, or NULL when the arguments are not a command. */
static const char *
imgwctl_command(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "status") == 0)
		return "status\n";
	if (argc == 2 && strcmp(argv[0], "status") == 0 && strcmp(argv[1], "--json") == 0)
		return "status --json\n";
	if (argc == 1 && strcmp(argv[0], "reload") == 0)
		return "reload\n";
	if (argc == 1 && strcmp(argv[0], "stop") == 0)
		return "stop\n";
	return NULL;
}

/* The socket path from the configuration file; exits 2 when it is broken. */
static char *
imgwctl_socket_from_conf(const char *file)
{
	char err[1024];
	struct conf *conf;
	char *path;

	if ((conf = conf_load(file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imgwctl: %s\n", err);
		exit(IMGWCTL_EXIT_USAGE);
	}
	path = strdup(conf->control != NULL ? conf->control : CONF_DEFAULT_CONTROL);
	conf_free(conf);
	if (path == NULL) {
		fprintf(stderr, "imgwctl: out of memory\n");
		exit(IMGWCTL_EXIT_ERROR);
	}
	return path;
}

/* A connected socket, or exit with the status that says why not. */
static int
imgwctl_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, err;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "imgwctl: socket path too long: %s\n", path);
		exit(IMGWCTL_EXIT_USAGE);
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "imgwctl: socket: %s\n", strerror(errno));
		exit(IMGWCTL_EXIT_ERROR);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	err = errno;
	close(fd);
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ECONNREFUSED:
		fprintf(stderr, "imgwctl: imgwd is not running (no control socket at %s)\n",
		    path);
		exit(IMGWCTL_EXIT_NOT_RUNNING);
	case EACCES:
	case EPERM:
		fprintf(stderr, "imgwctl: permission denied on %s\n", path);
		exit(IMGWCTL_EXIT_DENIED);
	default:
		fprintf(stderr, "imgwctl: cannot connect to %s: %s\n", path, strerror(err));
		exit(IMGWCTL_EXIT_NOT_RUNNING);
	}
}

static int
imgwctl_send(int fd, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;

	while (len > 0) {
		n = send(fd, s, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
imgwctl_write_all(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static long long
imgwctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read the answer until imgwd closes: the first line picks the status and
 * where the body goes; the body is streamed as it comes.
 */
static int
imgwctl_answer(int fd, const char *path)
{
	long long deadline = imgwctl_now_ms() + IMGWCTL_TIMEOUT_SECS * 1000LL;
	char buf[8192];
	size_t have = 0;	/* bytes of the first line held in buf */
	int status = -1;	/* -1 until the first line is known */
	int out = -1;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;
	char *nl;
	int left;

	for (;;) {
		left = (int)(deadline - imgwctl_now_ms());
		if (left <= 0) {
			fprintf(stderr, "imgwctl: no answer from imgwd within %d s on %s\n",
			    IMGWCTL_TIMEOUT_SECS, path);
			return IMGWCTL_EXIT_ERROR;
		}
		if (poll(&pfd, 1, left) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "imgwctl: poll: %s\n", strerror(errno));
			return IMGWCTL_EXIT_ERROR;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "imgwctl: reading from %s: %s\n", path, strerror(errno));
			return IMGWCTL_EXIT_ERROR;
		}
		if (n == 0)
			break;
		if (status != -1) {
			if (imgwctl_write_all(out, buf, (size_t)n) == -1)
				goto write_fail;
			continue;
		}
		have += (size_t)n;
		if ((nl = memchr(buf, '\n', have)) == NULL) {
			if (have == sizeof(buf))
				goto malformed;
			continue;
		}
		*nl = '\0';
		if (strcmp(buf, "ok") == 0) {
			status = IMGWCTL_EXIT_OK;
			out = STDOUT_FILENO;
		} else if (strcmp(buf, "error") == 0) {
			status = IMGWCTL_EXIT_ERROR;
			out = STDERR_FILENO;
		} else {
			goto malformed;
		}
		if (imgwctl_write_all(out, nl + 1, have - (size_t)(nl + 1 - buf)) == -1)
			goto write_fail;
		have = 0;
	}
	if (status == -1)
		goto malformed;
	return status;
malformed:
	fprintf(stderr, "imgwctl: malformed or missing answer from imgwd on %s\n", path);
	return IMGWCTL_EXIT_ERROR;
write_fail:
	/* stdout closed (imgwctl status | head): the answer itself was fine. */
	return status;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *file = NULL, *cmd;
	char *path;
	int ch, fd, rc;

	/* A closed stdout (imgwctl status | head) is EPIPE, not a death. */
	signal(SIGPIPE, SIG_IGN);

	/* "+": stop at the command, so that "--json" is its argument. */
	while ((ch = getopt(argc, argv, "+s:c:hV")) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			file = optarg;
			break;
		case 'h':
			imgwctl_usage(stdout);
			return IMGWCTL_EXIT_OK;
		case 'V':
			printf("imgwctl %s\n", IMGW_VERSION);
			return IMGWCTL_EXIT_OK;
		default:
			imgwctl_usage(stderr);
			return IMGWCTL_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (sock != NULL && file != NULL) {
		fprintf(stderr, "imgwctl: -s and -c exclude each other\n");
		return IMGWCTL_EXIT_USAGE;
	}
	if (argc == 0) {
		imgwctl_usage(stderr);
		return IMGWCTL_EXIT_USAGE;
	}
	if (strcmp(argv[0], "db") == 0 || strcmp(argv[0], "log") == 0) {
		/* tools/imgwctl-db.c, imgwctl-log.c: the store, locally */
		if (sock != NULL) {
			fprintf(stderr, "imgwctl: '%s' reads the configuration's "
			    "[store]: use -c, not -s\n", argv[0]);
			return IMGWCTL_EXIT_USAGE;
		}
		file = file != NULL ? file : CONF_DEFAULT_FILE;
		return argv[0][0] == 'd' ? imgwctl_db(file, argc, argv)
		    : imgwctl_log(file, argc, argv);
	}
	if (strcmp(argv[0], "policy") == 0) {
		/* tools/imgwctl-policy.c: the store, then the control socket */
		int imgwctl_policy(const char *file, const char *sock, int argc,
		    char **argv);

		return imgwctl_policy(file, sock, argc, argv);
	}
	if ((cmd = imgwctl_command(argc, argv)) == NULL) {
		if (strcmp(argv[0], "status") == 0 || strcmp(argv[0], "reload") == 0 ||
		    strcmp(argv[0], "stop") == 0)
			fprintf(stderr, "imgwctl: wrong arguments for '%s'\n", argv[0]);
		else
			fprintf(stderr, "imgwctl: unknown command '%s'\n", argv[0]);
		imgwctl_usage(stderr);
		return IMGWCTL_EXIT_USAGE;
	}
	if (sock != NULL) {
		if ((path = strdup(sock)) == NULL) {
			fprintf(stderr, "imgwctl: out of memory\n");
			return IMGWCTL_EXIT_ERROR;
		}
	} else {
		path = imgwctl_socket_from_conf(file != NULL ? file : CONF_DEFAULT_FILE);
	}

	fd = imgwctl_connect(path);
	if (imgwctl_send(fd, cmd) == -1) {
		fprintf(stderr, "imgwctl: sending to %s: %s\n", path, strerror(errno));
		rc = IMGWCTL_EXIT_ERROR;
	} else {
		rc = imgwctl_answer(fd, path);
	}
	close(fd);
	free(path);
	return rc;
}
