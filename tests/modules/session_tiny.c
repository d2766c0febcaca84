/*
 * session_tiny.c - a tiny line protocol on postern/session.h alone (ABI
 * 1.9; SEND: postern/stream.h, 1.12): the conformance module of the
 * session layer, driven by
 * tests/integration/session_layer.py.
 *
 *	server: "* tiny ready"
 *	NOOP          -> "+ ok" (junk: counts against junk_command_limit)
 *	ECHO text     -> "+ text"
 *	LOGIN pass    -> "+ welcome" for "secret", else "- bad password"
 *	                 (failed logins are budgeted)
 *	OPEN          -> "+ open": a job creates the file "handle.<id>" in
 *	                 `handle_dir`; release (on a job) removes it
 *	SLOW ms       -> "+ slept" after a job sleeps; a client gone by then
 *	                 is logged "tiny: SLOW done: client gone"
 *	BATCH         -> reads ahead the ECHOs pipelined after it and answers
 *	                 them from one job ("+ batch N" then each), holding
 *	                 back the first other line
 *	LIT n         -> the next n octets raw: "+ n octets, sum S"
 *	DATA          -> raw lines up to ".": "+ n lines"
 *	SEND n        -> (ABI 1.12) n octets of "0123456789abcdef\r\n"
 *	                 repeated, streamed by the host as a literal
 *	                 ("{n}\r\n" first) from a reader on job threads,
 *	                 then "+ sent" (or "- send failed")
 *	QUIT          -> "+ bye", close
 *	other         -> "- unknown command" (budgeted)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <postern/postern.h>

#define TINY_MAX_LINE 256
#define TINY_BATCH 32

struct tiny_listen {
	struct postern_listen_cfg l;
};

struct tiny_settings {
	postern_cfg_t *listen;
	long long idle_ms;
	long long max_errors;
	const char *handle_dir;
};

static const struct postern_cfg_key tiny_listen_keys[] = {
	POSTERN_LISTEN_KEYS(struct tiny_listen, l, "tiny"),
	{ .name = NULL },
};

static const struct postern_cfg_key tiny_keys[] = {
	{ .name = "listen", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct tiny_settings, listen),
	  .schema = tiny_listen_keys, .doc = "listeners" },
	{ .name = "idle_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct tiny_settings, idle_ms), .def = "1m",
	  .min = 100, .max = 3600000, .doc = "idle goodbye after" },
	{ .name = "max_errors", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct tiny_settings, max_errors), .def = "3",
	  .min = 1, .max = 1000, .doc = "invalid commands allowed" },
	{ .name = "handle_dir", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tiny_settings, handle_dir), .def = "/tmp",
	  .doc = "where OPEN creates its handle file" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct tiny_settings settings;

enum tiny_cmd { T_NOOP, T_ECHO, T_LOGIN, T_OPEN, T_SLOW, T_BATCH, T_LIT,
                T_DATA, T_QUIT, T_SEND };

/* What parse hands a handler. */
struct tiny_command {
	const char *arg;
	size_t arg_len;
	unsigned long n;
};

/* The session's state, from the host (zeroed). */
struct tiny {
	char handle[512];     /* the open handle's path, or "" */
	int job_running;      /* release must never see this set */
	unsigned long slow_ms;
	uint64_t lit_sum, lit_len;
	unsigned data_lines;
	char batch[TINY_BATCH][TINY_MAX_LINE + 1];
	unsigned nbatch;
};

/* ---- jobs: OPEN, SLOW, BATCH ------------------------------------------ */

static void
open_work(postern_session_t *s, void *vst, void *arg)
{
	struct tiny *t = vst;
	FILE *f;

	(void)arg;
	(void)s;
	t->job_running = 1;
	if ((f = fopen(t->handle, "w")) == NULL)
		t->handle[0] = '\0';
	else
		fclose(f);
	t->job_running = 0;
}

static void
open_done(postern_session_t *s, void *vst, void *arg, int status)
{
	struct tiny *t = vst;

	(void)arg;
	(void)status;
	if (t->handle[0] == '\0') {
		host->session_reply(s, "- cannot open the handle");
		return;
	}
	host->session_handles(s, 1);
	host->session_reply(s, "+ open");
}

static void
slow_work(postern_session_t *s, void *vst, void *arg)
{
	struct tiny *t = vst;

	(void)s;
	(void)arg;
	t->job_running = 1;
	usleep((useconds_t)t->slow_ms * 1000);
	t->job_running = 0;
}

static void
slow_done(postern_session_t *s, void *vst, void *arg, int status)
{
	(void)vst;
	(void)arg;
	host->log(self, POSTERN_LOG_NOTICE, "tiny: SLOW done: %s",
	          status == POSTERN_CLOSED ? "client gone"
	          : status == POSTERN_OK   ? "client here"
	                                   : "cancelled");
	host->session_reply(s, "+ slept");
}

static void
batch_work(postern_session_t *s, void *vst, void *arg)
{
	(void)s;
	(void)vst;
	(void)arg;
}

static void
batch_done(postern_session_t *s, void *vst, void *arg, int status)
{
	struct tiny *t = vst;
	unsigned i;

	(void)arg;
	(void)status;
	host->session_reply(s, "+ batch %u", t->nbatch);
	for (i = 0; i < t->nbatch; i++)
		host->session_reply(s, "+ %s", t->batch[i]);
	t->nbatch = 0;
}

/* ---- raw input: LIT and DATA ------------------------------------------- */

static void
lit_octets(postern_session_t *s, void *vst, const void *data, size_t len,
           int last)
{
	struct tiny *t = vst;
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++)
		t->lit_sum += p[i];
	t->lit_len += len;
	if (last)
		host->session_reply(s, "+ %llu octets, sum %llu",
		                    (unsigned long long)t->lit_len,
		                    (unsigned long long)t->lit_sum);
}

static void
data_line(postern_session_t *s, void *vst, const struct postern_line *l)
{
	struct tiny *t = vst;

	if (l->len == 1 && l->data[0] == '.') {
		host->session_take_lines(s, NULL);
		host->session_reply(s, "+ %u lines", t->data_lines);
		return;
	}
	t->data_lines++;
}

/* ---- SEND: the host's stream ------------------------------------------ */

static const char send_pattern[] = "0123456789abcdef\r\n";

/* The stream's reader, on a job thread: the pattern from `offset`. */
static ssize_t
send_read(void *arg, uint64_t offset, void *buf, size_t len)
{
	char *p = buf;
	size_t i;

	(void)arg;
	for (i = 0; i < len; i++)
		p[i] = send_pattern[(offset + i) % (sizeof(send_pattern) - 1)];
	return (ssize_t)len;
}

static void
send_done(void *arg, int status)
{
	postern_session_t *s = arg;

	if (status == POSTERN_OK)
		host->session_reply(s, "+ sent");
	else if (status == POSTERN_ERROR)
		host->session_reply(s, "- send failed");
	host->session_resume(s);
	host->session_unref(s);
}

static void
do_send(postern_session_t *s, void *vst, void *vc)
{
	struct tiny_command *c = vc;
	struct postern_stream_source src = {
		.size = sizeof(src), .fd = -1, .length = c->n,
		.read = send_read,
	};
	struct postern_stream_spec spec = {
		.size = sizeof(spec), .transform = POSTERN_STREAM_LITERAL,
	};

	(void)vst;
	/* Held (no command read) and kept until done. */
	host->session_pause(s);
	host->session_ref(s);
	if (host->stream_start(host->session_conn(s), &src, &spec,
	                       send_done, s) != POSTERN_OK)
		send_done(s, POSTERN_ERROR);
}

/* ---- commands ------------------------------------------------------------ */

static void
do_noop(postern_session_t *s, void *vst, void *vc)
{
	(void)vst;
	(void)vc;
	host->session_reply(s, "+ ok");
}

static void
do_echo(postern_session_t *s, void *vst, void *vc)
{
	struct tiny_command *c = vc;

	(void)vst;
	host->session_reply(s, "+ %.*s", (int)c->arg_len, c->arg);
}

static void
do_login(postern_session_t *s, void *vst, void *vc)
{
	struct tiny_command *c = vc;

	(void)vst;
	if (c->arg_len == 6 && memcmp(c->arg, "secret", 6) == 0) {
		host->session_login_ok(s);
		host->session_reply(s, "+ welcome");
		return;
	}
	host->session_reply(s, "- bad password");
	host->session_login_failed(s);
}

static void
do_open(postern_session_t *s, void *vst, void *vc)
{
	struct tiny *t = vst;

	(void)vc;
	snprintf(t->handle, sizeof(t->handle), "%s/handle.%llu",
	         settings.handle_dir,
	         (unsigned long long)host->conn_id(host->session_conn(s)));
	host->session_job(s, open_work, open_done, NULL);
}

static void
do_slow(postern_session_t *s, void *vst, void *vc)
{
	struct tiny *t = vst;
	struct tiny_command *c = vc;

	t->slow_ms = c->n;
	host->session_job(s, slow_work, slow_done, NULL);
}

static void
do_batch(postern_session_t *s, void *vst, void *vc)
{
	struct tiny *t = vst;
	struct postern_line l;

	(void)vc;
	t->nbatch = 0;
	while (t->nbatch < TINY_BATCH &&
	       host->session_read_line(s, &l) == POSTERN_OK) {
		if (l.len < 5 || strncasecmp(l.data, "ECHO ", 5) != 0) {
			host->session_hold_line(s, &l);
			break;
		}
		memcpy(t->batch[t->nbatch], l.data + 5, l.len - 5);
		t->batch[t->nbatch++][l.len - 5] = '\0';
	}
	host->session_job(s, batch_work, batch_done, NULL);
}

static void
do_lit(postern_session_t *s, void *vst, void *vc)
{
	struct tiny *t = vst;
	struct tiny_command *c = vc;

	t->lit_sum = t->lit_len = 0;
	host->session_read_octets(s, c->n, lit_octets);
}

static void
do_data(postern_session_t *s, void *vst, void *vc)
{
	struct tiny *t = vst;

	(void)vc;
	t->data_lines = 0;
	host->session_take_lines(s, data_line);
}

static void
do_quit(postern_session_t *s, void *vst, void *vc)
{
	(void)vst;
	(void)vc;
	host->session_reply(s, "+ bye");
	host->session_close(s);
}

static const struct postern_command tiny_commands[] = {
	[T_NOOP] = { "NOOP", POSTERN_CMD_JUNK, do_noop },
	[T_ECHO] = { "ECHO", 0, do_echo },
	[T_LOGIN] = { "LOGIN", 0, do_login },
	[T_OPEN] = { "OPEN", 0, do_open },
	[T_SLOW] = { "SLOW", 0, do_slow },
	[T_BATCH] = { "BATCH", 0, do_batch },
	[T_LIT] = { "LIT", 0, do_lit },
	[T_DATA] = { "DATA", 0, do_data },
	[T_QUIT] = { "QUIT", 0, do_quit },
	[T_SEND] = { "SEND", 0, do_send },
};

static int
tiny_parse(postern_session_t *s, void *vst, const struct postern_line *l,
           void *vc)
{
	struct tiny_command *c = vc;
	char num[24], *end;
	int i;

	(void)vst;
	if (l->flags & (POSTERN_LINE_TOOLONG | POSTERN_LINE_NUL)) {
		host->session_reply(s, "- bad line");
		return -1;
	}
	i = postern_command_match(tiny_commands, sizeof(tiny_commands) /
	                          sizeof(tiny_commands[0]), l, &c->arg,
	                          &c->arg_len);
	if (i == T_SLOW || i == T_LIT || i == T_SEND) {
		if (c->arg_len == 0 || c->arg_len >= sizeof(num))
			i = -1;
		else {
			memcpy(num, c->arg, c->arg_len);
			num[c->arg_len] = '\0';
			c->n = strtoul(num, &end, 10);
			if (*end != '\0' || c->n == 0 ||
			    c->n > (i == T_SEND ? 64000000ul : 1000000ul))
				i = -1;
		}
	}
	if (i < 0)
		host->session_reply(s, "- unknown command");
	return i;
}

static void
tiny_on_close(postern_session_t *s, void *vst, enum postern_close_reason why)
{
	(void)s;
	(void)vst;
	host->log(self, POSTERN_LOG_NOTICE, "tiny: connection closed (%d)",
	          (int)why);
}

/* On a pool thread, after the connection and the last job. */
static void
tiny_release(postern_session_t *s, void *vst)
{
	struct tiny *t = vst;

	(void)s;
	host->log(self, POSTERN_LOG_NOTICE, "tiny: released %s%s",
	          t->handle, t->job_running ? " WHILE A JOB RAN" : "");
	unlink(t->handle);
	t->handle[0] = '\0';
}

static struct postern_protocol tiny_protocol = {
	.size = sizeof(struct postern_protocol),
	.name = "tiny",
	.listen_keys = tiny_listen_keys,
	.listen_key_size = sizeof(struct postern_cfg_key),
	.listen_size = sizeof(struct tiny_listen),
	.max_line = TINY_MAX_LINE,
	.max_login_failures = 2,
	.max_commands_per_read = 4,
	.greeting = "* tiny ready",
	.goodbye = "- shutting down",
	.timeout = "- idle",
	.too_many_errors = "- too many errors",
	.too_many_logins = "- too many failed logins",
	.too_many_junk = "- too much junk",
	.session_size = sizeof(struct tiny),
	.command_size = sizeof(struct tiny_command),
	.commands = tiny_commands,
	.ncommands = sizeof(tiny_commands) / sizeof(tiny_commands[0]),
	.parse = tiny_parse,
	.on_close = tiny_on_close,
	.release = tiny_release,
};

static int
tiny_init(const struct postern_host *h, postern_module_t *m)
{
	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), tiny_keys, &settings) < 0)
		return -1;
	tiny_protocol.idle_ms = (unsigned)settings.idle_ms;
	tiny_protocol.max_errors = (unsigned)settings.max_errors;
	return h->session_listen(m, &tiny_protocol, settings.listen, NULL);
}

POSTERN_MODULE(.name = "session_tiny", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = tiny_init);
