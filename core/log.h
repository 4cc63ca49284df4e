/* Core logging: stderr or syslog, with levels and trace ids. */
#ifndef IMGW_CORE_LOG_H
#define IMGW_CORE_LOG_H

#include <stdarg.h>

#include <imgw/connector.h>

/* Where log lines go. */
enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
};

/* Set target and threshold; lines above `level` are discarded. */
void log_setup(enum log_target target, enum imgw_log_level level);
void log_set_level(enum imgw_log_level level);
enum imgw_log_level log_get_level(void);

/* Parse "err|warning|notice|info|debug"; -1 when unknown. */
int log_level_parse(const char *name);

/*
 * One log line.  `who` names the subsystem or community (may be NULL),
 * `trace` the event's trace id (may be NULL).
 */
void log_msg(enum imgw_log_level level, const char *who, const char *trace,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vmsg(enum imgw_log_level level, const char *who, const char *trace,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

#define log_err(...)	log_msg(IMGW_LOG_ERR, NULL, NULL, __VA_ARGS__)
#define log_warn(...)	log_msg(IMGW_LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define log_notice(...)	log_msg(IMGW_LOG_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...)	log_msg(IMGW_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...)	log_msg(IMGW_LOG_DEBUG, NULL, NULL, __VA_ARGS__)

#endif
