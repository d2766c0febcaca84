/*
 * hello.c - a complete, minimal postern module: a line protocol server
 * on the host's session layer (postern/session.h).
 *
 * It shows every step a protocol module takes: a descriptor, a
 * configuration schema, a protocol (parser, command table, fixed replies)
 * whose listeners the host runs, blocking work on a job bound to the
 * session, a hook point other modules can filter, and STARTTLS.  The host
 * does the rest: reading commands in order, one at a time (a command in
 * flight holds the session and pipelined ones wait), the idle and
 * shutdown goodbyes, and a job's completion after the client left.
 *
 * The protocol:
 *	server: "+OK <greeting>"
 *	ECHO <text>   -> "+OK <text>"
 *	SLOW <text>   -> "+OK <text>" after 50 ms of work on a pool thread
 *	STARTTLS      -> "+OK begin TLS" then a TLS handshake (when `tls` set)
 *	QUIT          -> "+OK bye", close
 *	anything else -> "-ERR unknown command"
 *
 * Configuration:
 *	hello = {
 *	  greeting = "hello from postern";
 *	  listen = ( { address = "127.0.0.1"; port = 7777; } );
 *	  tls = { cert = "/path/cert.pem"; key = "/path/key.pem"; };
 *	};
 *
 * Build out of tree:
 *	cc -shared $(pkg-config --cflags --libs postern-sdk) -o hello.so hello.c
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>

#define HELLO_MAX_LINE 512

struct hello_listen {
	struct postern_listen_cfg l; /* name, address, port, tls, limits */
};

struct hello_settings {
	const char *greeting;
	long long idle_ms;
	postern_cfg_t *listen;
	postern_cfg_t *tls;
};

static const struct postern_cfg_key listen_keys[] = {
	POSTERN_LISTEN_KEYS(struct hello_listen, l, "hello"),
	{ .name = NULL },
};

static const struct postern_cfg_key hello_keys[] = {
	{ .name = "greeting", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct hello_settings, greeting),
	  .def = "hello from postern", .doc = "text after +OK on connect" },
	{ .name = "idle_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct hello_settings, idle_ms), .def = "5m",
	  .min = 1000, .max = 86400000, .doc = "close idle clients after" },
	{ .name = "listen", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct hello_settings, listen),
	  .schema = listen_keys, .doc = "listeners" },
	{ .name = "tls", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct hello_settings, tls),
	  .doc = "certificate for STARTTLS and implicit TLS" },
	{ .name = NULL },
};

/* Module-wide state: one copy per process, set in init. */
static const struct postern_host *host;
static postern_module_t *self;
static struct hello_settings settings;
static postern_tls_t *tls;
static postern_hook_t *line_hook;

/* One client's state: the host allocates it (zeroed) with the session
 * and frees it after the last callback. */
struct hello {
	postern_session_t *s;
	postern_hook_call_t *hook_call;  /* ECHO's filter in flight */
	char text[HELLO_MAX_LINE + 1];   /* ECHO's or SLOW's text */
};

/* What the parser hands a command: its argument. */
struct hello_command {
	const char *arg;
	size_t len;
};

/* ---- SLOW: blocking work on a job bound to the session --------------- */

static void
slow_work(postern_session_t *s, void *st, void *arg)
{
	(void)s;
	(void)st;
	(void)arg;
	usleep(50000); /* stands for a password hash or a lookup */
}

/* On the loop.  The host held the session meanwhile (commands the
 * client pipelined wait) and reads on after we return. */
static void
slow_done(postern_session_t *s, void *st, void *arg, int status)
{
	struct hello *h = st;

	(void)arg;
	if (status == POSTERN_OK)
		host->session_reply(s, "+OK %s", h->text);
	/* POSTERN_CLOSED: the client left; nothing to free here. */
}

static void
do_slow(postern_session_t *s, void *st, void *cmd)
{
	struct hello *h = st;
	const struct hello_command *c = cmd;

	snprintf(h->text, sizeof(h->text), "%.*s", (int)c->len, c->arg);
	host->session_job(s, slow_work, slow_done, NULL);
}

/* ---- ECHO: through the "hello.line" hook ------------------------------- */

static void
after_hook(void *arg, const struct postern_verdict *v)
{
	struct hello *h = arg;

	h->hook_call = NULL;
	if (v->kind == POSTERN_VERDICT_REJECT ||
	    v->kind == POSTERN_VERDICT_TEMPFAIL)
		host->session_reply(h->s, "-ERR %s",
		                    v->text != NULL ? v->text : "refused");
	else
		host->session_reply(h->s, "+OK %s", h->text);
	if (v->flags & POSTERN_VERDICT_DISCONNECT)
		host->session_close(h->s);
	host->session_resume(h->s);
}

static void
do_echo(postern_session_t *s, void *st, void *cmd)
{
	struct hello *h = st;
	const struct hello_command *c = cmd;

	snprintf(h->text, sizeof(h->text), "%.*s", (int)c->len, c->arg);
	/* Let filters look at the text first (most of the time nobody
	 * registered, and the check costs nothing). */
	if (!host->hook_has_handlers(line_hook)) {
		host->session_reply(s, "+OK %s", h->text);
		return;
	}
	/* Hold the session: the next command waits for the verdict. */
	host->session_pause(s);
	h->hook_call = host->hook_run(line_hook, h->text, after_hook, h);
}

/* ---- STARTTLS, QUIT ---------------------------------------------------- */

static void
do_starttls(postern_session_t *s, void *st, void *cmd)
{
	postern_conn_t *c = host->session_conn(s);

	(void)st;
	(void)cmd;
	if (tls == NULL || host->conn_tls_active(c)) {
		host->session_reply(s, "-ERR TLS not available");
		return;
	}
	host->session_reply(s, "+OK begin TLS");
	host->conn_starttls(c, tls);
}

static void
do_quit(postern_session_t *s, void *st, void *cmd)
{
	(void)st;
	(void)cmd;
	host->session_reply(s, "+OK bye");
	host->session_close(s);
}

/* ---- the protocol ------------------------------------------------------ */

static const struct postern_command hello_commands[] = {
	{ "ECHO", 0, do_echo },
	{ "SLOW", 0, do_slow },
	{ "STARTTLS", 0, do_starttls },
	{ "QUIT", 0, do_quit },
};
#define HELLO_NCOMMANDS (sizeof(hello_commands) / sizeof(hello_commands[0]))

/* A line into an entry of hello_commands, or -1 after the error reply. */
static int
hello_parse(postern_session_t *s, void *st, const struct postern_line *l,
            void *cmd)
{
	struct hello_command *c = cmd;
	int i;

	(void)st;
	if (l->flags & POSTERN_LINE_TOOLONG) {
		host->session_reply(s, "-ERR line too long");
		return -1;
	}
	if (l->flags & POSTERN_LINE_NUL) {
		host->session_reply(s, "-ERR NUL byte in command");
		return -1;
	}
	i = postern_command_match(hello_commands, HELLO_NCOMMANDS, l, &c->arg,
	                          &c->len);
	if (i < 0)
		host->session_reply(s, "-ERR unknown command");
	return i;
}

static void
hello_start(postern_session_t *s, void *st)
{
	struct hello *h = st;

	h->s = s;
	host->session_reply(s, "+OK %s", settings.greeting);
}

static void
hello_close(postern_session_t *s, void *st, enum postern_close_reason why)
{
	struct hello *h = st;

	(void)s;
	(void)why;
	/* A filter still deciding: its answer is not wanted any more. */
	if (h->hook_call != NULL)
		host->hook_cancel(h->hook_call);
}

/* Filled in by init (the idle timeout comes from the configuration);
 * the host keeps a pointer to it. */
static struct postern_protocol hello_protocol = {
	.size = sizeof(struct postern_protocol),
	.name = "hello",
	.listen_keys = listen_keys,
	.listen_key_size = sizeof(struct postern_cfg_key),
	.listen_size = sizeof(struct hello_listen),
	.max_line = HELLO_MAX_LINE,
	.goodbye = "-ERR server shutting down",
	.timeout = "-ERR idle for too long",
	.session_size = sizeof(struct hello),
	.command_size = sizeof(struct hello_command),
	.commands = hello_commands,
	.ncommands = HELLO_NCOMMANDS,
	.parse = hello_parse,
	.on_start = hello_start,
	.on_close = hello_close,
};

/* ---- init ------------------------------------------------------------- */

static int
hello_init(const struct postern_host *h, postern_module_t *m)
{
	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(host, self, host->cfg_module(self), hello_keys,
	                      &settings) < 0)
		return -1;
	if (settings.tls != NULL) {
		tls = host->tls_create(self, settings.tls);
		if (tls == NULL)
			return -1;
	}
	line_hook = host->hook_define(self, "hello.line");
	if (line_hook == NULL)
		return -1;
	hello_protocol.idle_ms = (unsigned)settings.idle_ms;
	if (host->session_listen(self, &hello_protocol, settings.listen,
	                         tls) < 0)
		return -1;
	host->log(self, POSTERN_LOG_INFO, "ready, %zu listener(s)",
	          settings.listen != NULL ? host->cfg_count(settings.listen)
	                                  : (size_t)0);
	return 0;
}

POSTERN_MODULE(.name = "hello", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = hello_init);
