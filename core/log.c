/* Core logging: one line per call, to stderr or syslog. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>

#include "log.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static enum imgw_log_level log_level = IMGW_LOG_INFO;

static const char *const log_names[] = {
	[IMGW_LOG_ERR] = "err",
	[IMGW_LOG_WARNING] = "warning",
	[IMGW_LOG_NOTICE] = "notice",
	[IMGW_LOG_INFO] = "info",
	[IMGW_LOG_DEBUG] = "debug",
};

void
log_setup(enum log_target target, enum imgw_log_level level)
{
	if (target == LOG_TARGET_SYSLOG && log_target != LOG_TARGET_SYSLOG)
		openlog("imgwd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_target = target;
	log_level = level;
}

void
log_set_level(enum imgw_log_level level)
{
	log_level = level;
}

enum imgw_log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	int i;

	for (i = IMGW_LOG_ERR; i <= IMGW_LOG_DEBUG; i++)
		if (strcasecmp(name, log_names[i]) == 0)
			return i;
	if (strcasecmp(name, "error") == 0)
		return IMGW_LOG_ERR;
	if (strcasecmp(name, "warn") == 0)
		return IMGW_LOG_WARNING;
	return -1;
}

void
log_vmsg(enum imgw_log_level level, const char *who, const char *trace,
    const char *fmt, va_list ap)
{
	char line[2048];
	int n = 0;

	if (level > log_level)
		return;
	if (level < IMGW_LOG_ERR)
		level = IMGW_LOG_ERR;
	if (who != NULL)
		n = snprintf(line, sizeof(line), "[%s] ", who);
	if (trace != NULL && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, "trace=%s ", trace);
	if (n >= 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);

	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(level, "%s", line);
	} else {
		struct timeval tv;
		struct tm tm;
		char ts[32];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03dZ imgwd %s: %s\n", ts,
		    (int)(tv.tv_usec / 1000), log_names[level], line);
	}
}

void
log_msg(enum imgw_log_level level, const char *who, const char *trace,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, who, trace, fmt, ap);
	va_end(ap);
}
