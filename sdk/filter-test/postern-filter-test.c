/*
 * postern-filter-test - runs SMTP filter modules on a scripted session,
 * without a daemon, and prints each stage's verdict and the changes the
 * filters asked for.
 *
 *	postern-filter-test [-c CONF] [-d] [-s SCRIPT] MODULE...
 *
 * MODULE is a path to a filter's .so (or a module name looked up in the
 * module directory).  CONF is a configuration file with the filters'
 * settings (and core ones such as dns_servers), without `modules`.  The
 * script (standard input by default) holds one command per line:
 *
 *	connect ADDRESS [PORT]    the client (default 192.0.2.1 50000)
 *	helo NAME | ehlo NAME
 *	starttls                  the session is now under TLS
 *	auth USER                 the client logged in as USER
 *	mail ADDRESS [PARAMS]     MAIL FROM (ADDRESS without <>; "" or <>
 *	                          for the null sender)
 *	rcpt ADDRESS              RCPT TO (kept unless a filter refuses)
 *	data                      then the message, up to a line "."
 *	                          (".." stands for "."): data, header for
 *	                          each field, eoh, body, eod
 *	rset                      the transaction ends
 *	quit                      the session ends (also at end of script)
 *	expect VERDICT [CODE]     the last stage's verdict was VERDICT
 *	                          (continue, accept, reject, tempfail,
 *	                          discard, quarantine), with CODE if given
 *	expect-edit TEXT          a change recorded in the last command
 *	                          contains TEXT
 *	expect-log TEXT           a line logged during the last command
 *	                          contains TEXT
 *	# a comment, and empty lines, are skipped
 *
 * Output: one line per stage, "smtp.rcpt <b@example.org>: REJECT 550
 * 5.7.1 text", then its changes and log lines indented.  Header and body
 * stages are printed only when a handler did more than continue.  Exit
 * status: 0 when every expectation held, 1 when one did not, 2 when the
 * filters could not be loaded or the script is malformed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "filter_test.h"
#include "loader.h"
#include "log.h"
#include "process.h"

#define LINE_MAX_FT 4096
#define MESSAGE_MAX (64u << 20)
#define BODY_CHUNK 65536

static const struct postern_module *const builtins[] = {
	&ft_smtp_module, NULL,
};

static struct ft_session sess;
static struct ft_result last;        /* the last stage's verdict */

/* Lines of text: what the last command logged and changed. */
struct lines {
	char **v;
	size_t n, printed;
};
static struct lines logs, changes;
static int failures;
static int connected;
static unsigned lineno;
static char helo_buf[256], peer_buf[64], user_buf[256], sender_buf[512];

static void
usage(void)
{
	fprintf(stderr,
	    "usage: postern-filter-test [-c CONF] [-d] [-s SCRIPT] MODULE...\n"
	    "  MODULE   a filter's .so (a path), or a module name\n"
	    "  -c CONF  the filters' settings (no `modules`)\n"
	    "  -d       log at debug level (every handler's verdict)\n"
	    "  -s FILE  the script (default: standard input), one command "
	    "a line:\n"
	    "    connect ADDRESS [PORT] | helo NAME | ehlo NAME | starttls |"
	    " auth USER\n"
	    "    mail ADDRESS [PARAMS] | rcpt ADDRESS | data (message up to "
	    "\".\") | rset | quit\n"
	    "    expect VERDICT [CODE] | expect-edit TEXT | expect-log TEXT\n"
	    "exit: 0 every expectation held, 1 one failed, 2 setup or "
	    "script error\n");
	exit(2);
}

/* ---- what a command logged and changed ------------------------------- */

static void
lines_add(struct lines *l, const char *text)
{
	if ((l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v))) == NULL ||
	    (l->v[l->n] = strdup(text)) == NULL)
		abort();
	l->n++;
}

static void
lines_clear(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = l->printed = 0;
}

static int
lines_find(const struct lines *l, const char *text)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strstr(l->v[i], text) != NULL)
			return 1;
	return 0;
}

/* Job threads log too. */
static pthread_mutex_t logs_lock = PTHREAD_MUTEX_INITIALIZER;

static void
log_sink(int level, const char *prefix, const char *msg, void *arg)
{
	char line[2048];

	(void)arg;
	snprintf(line, sizeof(line), "%s: %s%s%s", log_level_name(level),
	         prefix != NULL ? prefix : "", prefix != NULL ? ": " : "",
	         msg);
	pthread_mutex_lock(&logs_lock);
	lines_add(&logs, line);
	pthread_mutex_unlock(&logs_lock);
}

/* Prints the changes and log lines that came since the last print. */
static void
print_notes(void)
{
	const char *const *e;

	for (e = ft_take_edits(); *e != NULL; e++)
		lines_add(&changes, *e);
	for (; changes.printed < changes.n; changes.printed++)
		printf("  + %s\n", changes.v[changes.printed]);
	pthread_mutex_lock(&logs_lock);
	for (; logs.printed < logs.n; logs.printed++)
		printf("  log %s\n", logs.v[logs.printed]);
	pthread_mutex_unlock(&logs_lock);
}

/* ---- stages ------------------------------------------------------------ */

static const char *
kind_name(enum postern_verdict_kind k)
{
	static const char *const names[] = {
		"continue", "accept", "reject", "tempfail", "discard",
		"quarantine", "pending",
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] :
	       "?";
}

static int
refused(const struct ft_result *r)
{
	return r->v.kind != POSTERN_VERDICT_CONTINUE &&
	       r->v.kind != POSTERN_VERDICT_ACCEPT;
}

/* Runs a stage and prints its line (quiet: only when a handler did more
 * than continue, or logged). */
static void
stage(enum postern_smtp_stage st, const char *what, int quiet)
{
	static const char *const hook[] = {
		POSTERN_SMTP_HOOK_CONNECT, POSTERN_SMTP_HOOK_HELO,
		POSTERN_SMTP_HOOK_STARTTLS, POSTERN_SMTP_HOOK_AUTH,
		POSTERN_SMTP_HOOK_MAIL, POSTERN_SMTP_HOOK_RCPT,
		POSTERN_SMTP_HOOK_DATA, POSTERN_SMTP_HOOK_HEADER,
		POSTERN_SMTP_HOOK_EOH, POSTERN_SMTP_HOOK_BODY,
		POSTERN_SMTP_HOOK_EOD, POSTERN_SMTP_HOOK_RESET,
		POSTERN_SMTP_HOOK_DISCONNECT,
	};
	size_t had = logs.n;
	struct ft_result r;

	ft_run_stage(&sess, st, &r);
	if (!quiet || r.v.kind != POSTERN_VERDICT_CONTINUE || logs.n > had) {
		printf("%s%s%s: %s", hook[st], *what ? " " : "", what,
		       kind_name(r.v.kind));
		if (r.v.code != 0)
			printf(" %u", r.v.code);
		if (r.v.enhanced != NULL)
			printf(" %s", r.v.enhanced);
		if (r.v.text != NULL)
			printf(" %s", r.v.text);
		if (r.v.flags & POSTERN_VERDICT_DISCONNECT)
			printf(" (disconnect)");
		printf("\n");
	}
	print_notes();
	last = r;
}

static void
session_info_update(void)
{
	sess.info.size = sizeof(sess.info);
	sess.info.id = 1;
	sess.info.listener = "mx";
	sess.payload.size = sizeof(sess.payload);
	sess.payload.session = &sess.info;
	sess.env.size = sizeof(sess.env);
	sess.env.auth_user = sess.info.auth_user;
	sess.env.client_addr = sess.info.peer;
	sess.env.client_helo = sess.info.helo;
	sess.env.rcpts = sess.rcpts;
	sess.env.nrcpts = sess.nrcpts;
}

static void
txn_end(void)
{
	size_t i;

	if (sess.txn == NULL)
		return;
	stage(POSTERN_SMTP_RESET, "", 1);
	ft_txn_end(sess.txn);
	sess.txn = NULL;
	for (i = 0; i < sess.nrcpts; i++)
		free((char *)sess.rcpts[i].address);
	free(sess.rcpts);
	sess.rcpts = NULL;
	sess.nrcpts = 0;
	session_info_update();
}

static void
do_connect(const char *addr, unsigned port)
{
	snprintf(peer_buf, sizeof(peer_buf), "%s", addr);
	sess.info.peer = peer_buf;
	sess.info.peer_port = port;
	session_info_update();
	ft_session_begin();
	connected = 1;
	stage(POSTERN_SMTP_CONNECT, addr, 0);
}

static void
do_quit(void)
{
	txn_end();
	stage(POSTERN_SMTP_DISCONNECT, "", 1);
	connected = 0;
}

static void
do_mail(const char *address)
{
	char what[600];

	txn_end();
	snprintf(sender_buf, sizeof(sender_buf), "%s", address);
	sess.txn = ft_txn_begin();
	sess.env.sender = sender_buf;
	session_info_update();
	snprintf(what, sizeof(what), "<%s>", sender_buf);
	stage(POSTERN_SMTP_MAIL, what, 0);
	if (refused(&last)) {
		/* No transaction began: nothing to reset. */
		ft_txn_end(sess.txn);
		sess.txn = NULL;
	}
}

static void
do_rcpt(const char *address)
{
	struct postern_relay_rcpt rc = { .size = sizeof(rc) };
	char what[600];

	if (sess.txn == NULL) {
		printf("smtp.rcpt: (no transaction: MAIL first)\n");
		last.v.kind = POSTERN_VERDICT_REJECT;
		return;
	}
	rc.address = address;
	sess.payload.rcpt = &rc;
	snprintf(what, sizeof(what), "<%s>", address);
	stage(POSTERN_SMTP_RCPT, what, 0);
	sess.payload.rcpt = NULL;
	if (refused(&last))
		return;
	sess.rcpts = realloc(sess.rcpts, (sess.nrcpts + 1) *
	                     sizeof(*sess.rcpts));
	if (sess.rcpts == NULL || (rc.address = strdup(address)) == NULL)
		abort();
	sess.rcpts[sess.nrcpts++] = rc;
	session_info_update();
}

/* ---- the message -------------------------------------------------------- */

/* The header fields of msg[0..hlen), each through the header stage, with
 * its index among the fields of its name.  0, or -1 once refused. */
static int
header_stages(const char *msg, size_t hlen)
{
	char name[256], what[300];
	size_t i = 0, end, n, k, idx;
	const char *colon;
	char *value;

	while (i < hlen) {
		/* A field ends at a CRLF not followed by folding space. */
		for (end = i; end + 1 < hlen; end++)
			if (msg[end] == '\r' && msg[end + 1] == '\n' &&
			    (end + 2 >= hlen || (msg[end + 2] != ' ' &&
			                         msg[end + 2] != '\t')))
				break;
		colon = memchr(msg + i, ':', end - i);
		n = colon != NULL ? (size_t)(colon - (msg + i)) : 0;
		if (colon != NULL && n > 0 && n < sizeof(name)) {
			memcpy(name, msg + i, n);
			name[n] = '\0';
			if ((value = strndup(colon + 1, (size_t)(msg + end -
			                     colon - 1))) == NULL)
				abort();
			idx = 1;
			for (k = 0; k < i; k++)
				if ((k == 0 || msg[k - 1] == '\n') &&
				    strncasecmp(msg + k, name, n) == 0 &&
				    msg[k + n] == ':')
					idx++;
			sess.payload.header_name = name;
			sess.payload.header_value = value;
			sess.payload.header_index = idx;
			snprintf(what, sizeof(what), "%s[%zu]", name, idx);
			stage(POSTERN_SMTP_HEADER, what, 1);
			free(value);
			if (refused(&last))
				return -1;
		}
		i = end + 2;
	}
	sess.payload.header_name = sess.payload.header_value = NULL;
	sess.payload.header_index = 0;
	return 0;
}

static void
message_stages(const char *msg, size_t len)
{
	const char *sep = NULL;
	size_t hlen, off, n;

	stage(POSTERN_SMTP_DATA, "", 0);
	if (refused(&last))
		return;
	/* The header ends at the first empty line. */
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		sep = msg;
	else
		sep = memmem(msg, len, "\r\n\r\n", 4);
	hlen = sep == NULL ? len : sep == msg ? 0 : (size_t)(sep - msg) + 2;
	off = sep == NULL ? len : sep == msg ? 2 : (size_t)(sep - msg) + 4;
	if (header_stages(msg, hlen) < 0)
		return;
	stage(POSTERN_SMTP_EOH, "", 1);
	if (refused(&last))
		return;
	for (; ft_stage_has_handlers(POSTERN_SMTP_BODY) && off < len;
	     off += n) {
		n = len - off < BODY_CHUNK ? len - off : BODY_CHUNK;
		sess.payload.chunk = msg + off;
		sess.payload.chunk_len = n;
		stage(POSTERN_SMTP_BODY, "", 1);
		if (refused(&last))
			break;
	}
	sess.payload.chunk = NULL;
	sess.payload.chunk_len = 0;
	if (refused(&last))
		return;
	sess.payload.message_size = len;
	stage(POSTERN_SMTP_EOD, "", 0);
}

/* Reads the message after `data` up to a line ".", as CRLF text. */
static char *
read_message(FILE *in, size_t *len)
{
	char line[LINE_MAX_FT + 2], *msg = NULL, *p;
	size_t n = 0, l;

	while (fgets(line, sizeof(line), in) != NULL) {
		lineno++;
		l = strcspn(line, "\r\n");
		line[l] = '\0';
		if (strcmp(line, ".") == 0) {
			*len = n;
			return msg != NULL ? msg : strdup("");
		}
		p = line[0] == '.' ? line + 1 : line;
		l = strlen(p);
		if (n + l + 2 > MESSAGE_MAX)
			break;
		if ((msg = realloc(msg, n + l + 3)) == NULL)
			abort();
		memcpy(msg + n, p, l);
		memcpy(msg + n + l, "\r\n", 3);
		n += l + 2;
	}
	free(msg);
	return NULL;
}

/* ---- expectations ---------------------------------------------------- */

static void
fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAILED (line %u): ", lineno);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

static void
expect_verdict(const char *kind, const char *code)
{
	if (strcasecmp(kind, kind_name(last.v.kind)) != 0)
		fail("expected %s, the verdict was %s", kind,
		     kind_name(last.v.kind));
	else if (code != NULL && (unsigned)atoi(code) != last.v.code)
		fail("expected code %s, the verdict's was %u", code,
		     last.v.code);
}

/* ---- the script ------------------------------------------------------- */

/* An address as given, with or without its angle brackets. */
static char *
unbracket(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

/* Splits "word rest" in place; returns rest ("" when none). */
static char *
split(char *s)
{
	char *sp = strchr(s, ' ');

	if (sp == NULL)
		return s + strlen(s);
	*sp++ = '\0';
	while (*sp == ' ')
		sp++;
	return sp;
}

static int
run_command(char *cmd, FILE *in)
{
	char *arg = split(cmd), *msg;
	size_t len;

	if (strcasecmp(cmd, "expect") == 0) {
		char *code = split(arg);

		expect_verdict(arg, *code ? code : NULL);
		return 0;
	}
	if (strcasecmp(cmd, "expect-edit") == 0) {
		if (!lines_find(&changes, arg))
			fail("no change recorded contains '%s'", arg);
		return 0;
	}
	if (strcasecmp(cmd, "expect-log") == 0) {
		if (!lines_find(&logs, arg))
			fail("no line logged contains '%s'", arg);
		return 0;
	}
	pthread_mutex_lock(&logs_lock);
	lines_clear(&logs);
	pthread_mutex_unlock(&logs_lock);
	lines_clear(&changes);
	if (strcasecmp(cmd, "connect") == 0) {
		char *port = split(arg);

		if (connected)
			do_quit();
		do_connect(*arg ? arg : "192.0.2.1",
		           *port ? (unsigned)atoi(port) : 50000);
		return 0;
	}
	if (!connected)
		do_connect("192.0.2.1", 50000);
	if (strcasecmp(cmd, "helo") == 0 || strcasecmp(cmd, "ehlo") == 0) {
		snprintf(helo_buf, sizeof(helo_buf), "%s", arg);
		sess.info.helo = helo_buf;
		sess.info.esmtp = strcasecmp(cmd, "ehlo") == 0;
		session_info_update();
		stage(POSTERN_SMTP_HELO, arg, 0);
	} else if (strcasecmp(cmd, "starttls") == 0) {
		sess.info.tls = 1;
		sess.info.tls_version = "TLSv1.3";
		sess.info.tls_cipher = "TLS_AES_256_GCM_SHA384";
		stage(POSTERN_SMTP_STARTTLS, "", 0);
	} else if (strcasecmp(cmd, "auth") == 0) {
		snprintf(user_buf, sizeof(user_buf), "%s", arg);
		sess.info.auth_user = user_buf;
		session_info_update();
		stage(POSTERN_SMTP_AUTH, arg, 0);
	} else if (strcasecmp(cmd, "mail") == 0) {
		split(arg);
		do_mail(strcmp(arg, "<>") == 0 ? "" : unbracket(arg));
	} else if (strcasecmp(cmd, "rcpt") == 0) {
		do_rcpt(unbracket(arg));
	} else if (strcasecmp(cmd, "data") == 0) {
		if ((msg = read_message(in, &len)) == NULL) {
			fprintf(stderr, "postern-filter-test: line %u: the "
			        "message has no end (a line \".\")\n", lineno);
			return -1;
		}
		if (sess.txn == NULL || sess.nrcpts == 0)
			printf("smtp.data: (no valid recipients)\n");
		else
			message_stages(msg, len);
		free(msg);
		txn_end();
	} else if (strcasecmp(cmd, "rset") == 0) {
		txn_end();
	} else if (strcasecmp(cmd, "quit") == 0) {
		do_quit();
	} else {
		fprintf(stderr, "postern-filter-test: line %u: unknown command "
		        "'%s'\n", lineno, cmd);
		return -1;
	}
	return 0;
}

static int
run_script(FILE *in)
{
	char line[LINE_MAX_FT + 2];
	size_t l;

	while (fgets(line, sizeof(line), in) != NULL) {
		lineno++;
		l = strcspn(line, "\r\n");
		line[l] = '\0';
		while (l > 0 && line[l - 1] == ' ')
			line[--l] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (run_command(line, in) < 0)
			return -1;
	}
	if (connected)
		do_quit();
	return 0;
}

/* ---- setup -------------------------------------------------------------- */

/* A configuration that loads the modules and includes the user's. */
static int
write_config(char *dir, const char *user_conf, char **mods, int nmods,
             int debug, char *path, size_t pathlen)
{
	char real[PATH_MAX];
	FILE *f;
	int i;

	snprintf(path, pathlen, "%s/postern.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "modules = [");
	for (i = 0; i < nmods; i++) {
		if (strchr(mods[i], '/') != NULL &&
		    realpath(mods[i], real) != NULL)
			fprintf(f, "%s \"%s\"", i ? "," : "", real);
		else
			fprintf(f, "%s \"%s\"", i ? "," : "", mods[i]);
	}
	fprintf(f, " ];\nstate_dir = \"%s\";\nrun_dir = \"%s\";\n"
	        "log_level = \"%s\";\n", dir, dir, debug ? "debug" : "info");
	if (user_conf != NULL) {
		if (realpath(user_conf, real) == NULL) {
			fprintf(stderr, "postern-filter-test: %s: %s\n",
			        user_conf, strerror(errno));
			fclose(f);
			return -1;
		}
		fprintf(f, "@include \"%s\"\n", real);
	}
	return fclose(f);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/postern-filter-test.XXXXXX", path[PATH_MAX + 32];
	const char *conf = NULL, *script = NULL;
	FILE *in = stdin;
	int c, debug = 0, rc = 2;

	while ((c = getopt(argc, argv, "c:ds:h")) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 's':
			script = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (script != NULL && (in = fopen(script, "r")) == NULL) {
		fprintf(stderr, "postern-filter-test: %s: %s\n", script,
		        strerror(errno));
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mkdtemp(dir) == NULL ||
	    write_config(dir, conf, argv + optind, argc - optind, debug, path,
	                 sizeof(path)) < 0) {
		fprintf(stderr, "postern-filter-test: cannot write a "
		        "configuration in %s\n", dir);
		return 2;
	}
	log_open("postern-filter-test", 0, POSTERN_LOG_INFO);
	loader_set_builtins(builtins);
	if (process_setup(path, 0) == 0 && process_tool_start() == 0) {
		log_set_sink(log_sink, NULL);
		rc = run_script(in) < 0 ? 2 : failures > 0 ? 1 : 0;
		log_set_sink(NULL, NULL);
	}
	process_tool_stop();
	process_teardown();
	unlink(path);
	rmdir(dir);
	if (rc != 2)
		printf("%s\n", failures > 0 ? "FAILED" : "ok");
	return rc;
}
