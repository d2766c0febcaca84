/*
 * log.h - the core's logging: to stderr (foreground) or syslog.
 *
 * Every line is formatted into one buffer and written with one call, so
 * lines from job threads and from several workers never interleave.
 */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdarg.h>

#include <postern/types.h>

/* Where lines go.  Until log_open is called they go to stderr at INFO. */
void log_open(const char *ident, int to_syslog, int level);
void log_set_level(int level);
int log_enabled(int level);
/* Parses "error", "warning", "notice", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

/* Also hands every line written to `fn` (level, prefix or NULL, the
 * message without prefix); NULL removes it.  For tests: the loader's tests
 * record what modules log through the real host table this way. */
typedef void (*log_sink_fn)(int level, const char *prefix, const char *msg,
                            void *arg);
void log_set_sink(log_sink_fn fn, void *arg);

/* `prefix` (may be NULL) goes before the message, followed by ": ". */
void log_vwrite(int level, const char *prefix, const char *fmt, va_list ap);
void log_write(int level, const char *prefix, const char *fmt, ...)
	POSTERN_PRINTF(3, 4);

#define log_error(...) log_write(POSTERN_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warning(...) log_write(POSTERN_LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_write(POSTERN_LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_write(POSTERN_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_write(POSTERN_LOG_DEBUG, NULL, __VA_ARGS__)

#endif /* CORE_LOG_H */
