/*
 * hello.c - a complete, minimal postern module: a line protocol server.
 *
 * It shows every step a protocol module takes: a descriptor, a
 * configuration schema, listeners registered in init, connection
 * callbacks, line reading with a length limit, blocking work moved to a
 * job while the connection is paused, a hook point other modules can
 * filter, and STARTTLS.
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
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* One client session, allocated from the connection's pool. */
struct slow_job;

struct session {
	postern_conn_t *conn;
	postern_job_t *job;      /* SLOW in flight, or NULL */
	struct slow_job *slow;   /* its state */
	postern_hook_call_t *hook_call;
	char *pending_text;
};

/* ---- SLOW: blocking work on the pool ---------------------------------- */

struct slow_job {
	struct session *s;   /* NULL once the session has gone */
	char text[HELLO_MAX_LINE + 1];
};

static void
slow_work(void *arg)
{
	(void)arg;
	usleep(50000); /* stands for a password hash or a lookup */
}

static void
slow_done(void *arg, int cancelled)
{
	struct slow_job *j = arg;

	if (!cancelled && j->s != NULL) {
		j->s->job = NULL;
		j->s->slow = NULL;
		host->conn_printf(j->s->conn, "+OK %s\r\n", j->text);
		host->conn_resume(j->s->conn);
	}
	free(j);
}

static void
start_slow(struct session *s, const char *text, size_t len)
{
	struct slow_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		host->conn_printf(s->conn, "-ERR out of memory\r\n");
		return;
	}
	j->s = s;
	memcpy(j->text, text, len);
	host->conn_pause(s->conn); /* no further command until it is done */
	s->slow = j;
	s->job = host->job_submit(slow_work, slow_done, j);
}

/* ---- commands --------------------------------------------------------- */

static int
is_command(const struct postern_line *l, const char *cmd, size_t *arg)
{
	size_t n = strlen(cmd);

	if (l->len < n || strncasecmp(l->data, cmd, n) != 0)
		return 0;
	if (l->len == n) {
		*arg = n;
		return 1;
	}
	if (l->data[n] != ' ')
		return 0;
	*arg = n + 1;
	return 1;
}

static void
after_hook(void *arg, const struct postern_verdict *v)
{
	struct session *s = arg;

	s->hook_call = NULL;
	if (v->kind == POSTERN_VERDICT_REJECT ||
	    v->kind == POSTERN_VERDICT_TEMPFAIL)
		host->conn_printf(s->conn, "-ERR %s\r\n",
		                  v->text != NULL ? v->text : "refused");
	else
		host->conn_printf(s->conn, "+OK %s\r\n", s->pending_text);
	if (v->flags & POSTERN_VERDICT_DISCONNECT)
		host->conn_close(s->conn);
	else
		host->conn_resume(s->conn);
}

static void
do_echo(struct session *s, const char *text, size_t len)
{
	/* Let filters look at the text first (most of the time nobody
	 * registered, and the check costs nothing). */
	s->pending_text = host->pool_strndup(host->conn_pool(s->conn), text,
	                                     len);
	if (!host->hook_has_handlers(line_hook)) {
		host->conn_printf(s->conn, "+OK %s\r\n", s->pending_text);
		return;
	}
	host->conn_pause(s->conn);
	s->hook_call = host->hook_run(line_hook, s->pending_text, after_hook,
	                              s);
}

static void
do_starttls(struct session *s)
{
	if (tls == NULL || host->conn_tls_active(s->conn)) {
		host->conn_printf(s->conn, "-ERR TLS not available\r\n");
		return;
	}
	host->conn_printf(s->conn, "+OK begin TLS\r\n");
	host->conn_starttls(s->conn, tls);
}

static void
handle_line(struct session *s, const struct postern_line *l)
{
	size_t arg;

	if (is_command(l, "ECHO", &arg))
		do_echo(s, l->data + arg, l->len - arg);
	else if (is_command(l, "SLOW", &arg))
		start_slow(s, l->data + arg, l->len - arg);
	else if (is_command(l, "STARTTLS", &arg))
		do_starttls(s);
	else if (is_command(l, "QUIT", &arg)) {
		host->conn_printf(s->conn, "+OK bye\r\n");
		host->conn_close(s->conn);
	} else
		host->conn_printf(s->conn, "-ERR unknown command\r\n");
}

/* ---- connection callbacks --------------------------------------------- */

static void
on_read(postern_conn_t *c, void *arg)
{
	struct session *s = arg;
	struct postern_line line;
	int rc;

	/* Stop at the first command that pauses the connection: pipelined
	 * commands wait for it, in order. */
	while (s->job == NULL && s->hook_call == NULL) {
		rc = host->conn_read_line(c, HELLO_MAX_LINE, &line);
		if (rc == POSTERN_AGAIN || rc == POSTERN_CLOSED)
			return;
		if (rc == POSTERN_TOOLONG) {
			host->conn_printf(c, "-ERR line too long\r\n");
			continue;
		}
		if (line.flags & POSTERN_LINE_NUL) {
			host->conn_printf(c, "-ERR NUL byte in command\r\n");
			continue;
		}
		handle_line(s, &line);
	}
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct session *s = arg;

	(void)c;
	(void)why;
	if (s->job != NULL) {
		/* Its done still runs (and frees it); make it forget us. */
		s->slow->s = NULL;
		host->job_cancel(s->job);
	}
	if (s->hook_call != NULL)
		host->hook_cancel(s->hook_call);
	/* s itself lives in the connection's pool: freed after we return. */
}

static void
on_shutdown(postern_conn_t *c, void *arg)
{
	(void)arg;
	host->conn_printf(c, "-ERR server shutting down\r\n");
	host->conn_close(c);
}

static const struct postern_conn_ops conn_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_close = on_close,
	.on_shutdown = on_shutdown,
};

static void
on_accept(postern_conn_t *c, void *arg)
{
	struct session *s = host->pool_alloc(host->conn_pool(c), sizeof(*s));

	(void)arg;
	s->conn = c;
	host->conn_set_ops(c, &conn_ops, s);
	host->conn_printf(c, "+OK %s\r\n", settings.greeting);
}

static const struct postern_listener_ops listener_ops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = on_accept,
};

/* ---- init ------------------------------------------------------------- */

static int
add_listener(postern_cfg_t *node)
{
	struct hello_listen l;
	struct postern_listen_spec spec;
	struct postern_conn_limits limits = { .size = sizeof(limits) };

	if (POSTERN_CFG_PARSE(host, self, node, listen_keys, &l) < 0)
		return -1;
	if (l.l.tls && tls == NULL) {
		host->cfg_error(self, node, "implicit TLS needs hello.tls");
		return -1;
	}
	limits.idle_ms = (unsigned)settings.idle_ms;
	postern_listen_spec_init(&spec, &l.l, tls, &limits, &listener_ops,
	                         NULL);
	return host->listen(self, &spec) != NULL ? 0 : -1;
}

static int
hello_init(const struct postern_host *h, postern_module_t *m)
{
	size_t i;

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
	for (i = 0; i < host->cfg_count(settings.listen); i++)
		if (add_listener(host->cfg_elem(settings.listen, i)) < 0)
			return -1;
	host->log(self, POSTERN_LOG_INFO, "ready, %zu listener(s)",
	          settings.listen != NULL ? host->cfg_count(settings.listen)
	                                  : (size_t)0);
	return 0;
}

POSTERN_MODULE(.name = "hello", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = hello_init);
