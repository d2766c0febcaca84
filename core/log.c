/*
 * log.c - the core's logging (see log.h).
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static struct {
	int to_syslog;
	int level;
	const char *ident;
	log_sink_fn sink;
	void *sink_arg;
} log_state = { 0, POSTERN_LOG_INFO, "posternd", NULL, NULL };

static const char *const level_names[] = {
	[POSTERN_LOG_ERROR] = "error",   [POSTERN_LOG_WARNING] = "warning",
	[POSTERN_LOG_NOTICE] = "notice", [POSTERN_LOG_INFO] = "info",
	[POSTERN_LOG_DEBUG] = "debug",
};

void
log_open(const char *ident, int to_syslog, int level)
{
	log_state.ident = ident;
	log_state.level = level;
	log_state.to_syslog = to_syslog;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(int level)
{
	log_state.level = level;
}

void
log_set_sink(log_sink_fn fn, void *arg)
{
	log_state.sink = fn;
	log_state.sink_arg = arg;
}

int
log_enabled(int level)
{
	return level <= log_state.level;
}

int
log_level_parse(const char *name)
{
	int i;

	for (i = POSTERN_LOG_ERROR; i <= POSTERN_LOG_DEBUG; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < POSTERN_LOG_ERROR || level > POSTERN_LOG_DEBUG)
		return "?";
	return level_names[level];
}

/* Replaces control characters so a client cannot forge log lines by
 * sending CR or LF in something we log. */
static void
sanitize(char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			s[i] = '?';
	}
}

void
log_vwrite(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len = 0, body;
	int n;

	if (!log_enabled(level))
		return;
	if (!log_state.to_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + len, sizeof(line) - len,
		             ".%03ldZ %s[%d]: %s: ", ts.tv_nsec / 1000000,
		             log_state.ident, (int)getpid(),
		             log_level_name(level));
		len += n > 0 ? (size_t)n : 0;
	}
	if (prefix != NULL) {
		n = snprintf(line + len, sizeof(line) - len, "%s: ", prefix);
		if (n > 0)
			len += (size_t)n;
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
	}
	body = len;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n;
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2; /* truncated: keep room for '\n' */
	sanitize(line + body, len - body);
	if (log_state.sink != NULL) {
		line[len] = '\0';
		log_state.sink(level, prefix, line + body, log_state.sink_arg);
	}
	if (log_state.to_syslog) {
		line[len] = '\0';
		syslog(level, "%s", line);
		return;
	}
	line[len++] = '\n';
	/* One write: a line never interleaves with another's. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void
log_write(int level, const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, prefix, fmt, ap);
	va_end(ap);
}
