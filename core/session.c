/*
 * session.c - the session layer protocol modules share
 * (postern/session.h): listeners from the protocol's schema, a session
 * bound to its connection and counted, the command loop, jobs bound to
 * the session, budgets and goodbyes.
 *
 * A session holds one reference for its connection, one per job in
 * flight and one per session_ref.  The connection's reference goes in
 * on_close; when the count reaches zero the protocol's handles are
 * closed on a job (release) if it said it holds any, then free runs and
 * the session goes.
 *
 * Reading is "held" while a job runs or the protocol paused; the
 * connection is paused for as long, so pipelined commands wait in its
 * input buffer, and they are taken one at a time in order.
 */
#include "session.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conn.h"
#include "host.h"
#include "job.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "xalloc.h"

/* A protocol that sets no max_line gets this. */
#define SESSION_DEFAULT_MAX_LINE 8192

struct session_listener {
	const struct postern_protocol *p;
	void *cfg; /* the parsed element, p->listen_size octets */
	struct session_listener *next;
};

/* Every listener's element, freed by session_reset. */
static struct session_listener *session_listeners;

struct postern_session {
	const struct postern_protocol *p;
	const struct session_listener *listener;
	postern_conn_t *conn;    /* NULL once on_close has run */
	void *st;                /* p->session_size octets */
	void *cmd;               /* p->command_size octets */
	unsigned refs;
	unsigned jobs;           /* jobs in flight (each holds and refs) */
	unsigned holds;          /* session_pause calls not resumed */
	int closing;             /* session_close called */
	int stopping;            /* the worker stops: goodbye when idle */
	int logged_in;
	int handles;             /* release is owed */
	int pump_deferred;       /* a deferred pump is queued */
	int long_line;           /* a too-long raw line waits for its end */
	unsigned errors;
	unsigned login_failures;
	postern_session_line_fn take_lines;
	postern_session_octets_fn octets_fn;
	uint64_t octets_left;
	/* A line given back by session_hold_line. */
	int has_held;
	struct postern_line held;
	char *held_buf;
	size_t held_cap;
};

static void pump(postern_session_t *s);

/* ---- lifetime ---------------------------------------------------------- */

static void
session_destroy(postern_session_t *s)
{
	if (s->p->free != NULL)
		s->p->free(s, s->st);
	free(s->held_buf);
	free(s);
}

static void
release_work(void *arg)
{
	postern_session_t *s = arg;

	s->p->release(s, s->st);
}

static void
release_done(void *arg, int cancelled)
{
	postern_session_t *s = arg;

	if (cancelled)
		s->p->release(s, s->st); /* the worker is exiting */
	session_destroy(s);
}

void
session_ref(postern_session_t *s)
{
	s->refs++;
}

void
session_unref(postern_session_t *s)
{
	if (--s->refs > 0)
		return;
	if (!s->handles || s->p->release == NULL) {
		session_destroy(s);
		return;
	}
	/* Closing a store may write its index: not on the loop. */
	s->handles = 0;
	if (host_jobs() == NULL ||
	    job_submit(host_jobs(), release_work, release_done, s) == NULL)
		release_done(s, 1);
}

/* ---- reading ----------------------------------------------------------- */

static int
reading(const postern_session_t *s)
{
	return s->conn != NULL && !s->closing && s->holds == 0 &&
	       s->jobs == 0;
}

static size_t
max_line(const postern_session_t *s)
{
	return s->p->max_line > 0 ? s->p->max_line
	                          : SESSION_DEFAULT_MAX_LINE;
}

static void
too_long(struct postern_line *l, unsigned end)
{
	l->data = "";
	l->len = 0;
	l->flags = POSTERN_LINE_TOOLONG | end;
}

/* The next line as the protocol sees it: a held one first.  A raw line
 * (take_lines) that is too long comes once its end is known, with the
 * flag of its terminator: where SMTP's DATA may end depends on it. */
static int
next_line(postern_session_t *s, struct postern_line *l)
{
	unsigned end;
	int rc;

	if (s->has_held) {
		s->has_held = 0;
		*l = s->held;
		return POSTERN_OK;
	}
	if (s->long_line) {
		if (conn_line_skipped(s->conn, &end) != POSTERN_OK)
			return POSTERN_AGAIN;
		s->long_line = 0;
		too_long(l, end);
		return POSTERN_OK;
	}
	rc = conn_read_line(s->conn, max_line(s), l);
	if (rc == POSTERN_TOOLONG && s->take_lines != NULL) {
		s->long_line = 1;
		return next_line(s, l);
	}
	if (rc == POSTERN_TOOLONG) {
		too_long(l, 0);
		return POSTERN_OK;
	}
	return rc == POSTERN_OK ? POSTERN_OK : POSTERN_AGAIN;
}

int
session_read_line(postern_session_t *s, struct postern_line *l)
{
	if (s->conn == NULL || s->closing)
		return POSTERN_AGAIN;
	return next_line(s, l);
}

void
session_hold_line(postern_session_t *s, const struct postern_line *l)
{
	if (l->data == s->held_buf) {
		/* The held line, given back again (IMAP's rate limit). */
		s->held = *l;
		s->has_held = 1;
		return;
	}
	if (s->held_cap < l->len + 1) {
		free(s->held_buf);
		s->held_cap = l->len + 1;
		s->held_buf = xmalloc(s->held_cap);
	}
	memcpy(s->held_buf, l->data, l->len);
	s->held = *l;
	s->held.data = s->held_buf;
	s->has_held = 1;
}

static void
octets(postern_session_t *s)
{
	const void *data;
	size_t len;
	postern_session_octets_fn fn = s->octets_fn;
	int last;

	if (conn_peek(s->conn, &data, &len) != POSTERN_OK)
		return;
	if (len > s->octets_left)
		len = (size_t)s->octets_left;
	s->octets_left -= len;
	last = s->octets_left == 0;
	if (last)
		s->octets_fn = NULL;
	/* Consumed after the call: `data` points into the buffer. */
	fn(s, s->st, data, len, last);
	if (s->conn != NULL)
		conn_consume(s->conn, len);
}

static int
junk(postern_session_t *s, const struct postern_command *c)
{
	if (!(c->flags & POSTERN_CMD_JUNK) &&
	    !((c->flags & POSTERN_CMD_JUNK_UNTIL_LOGIN) && !s->logged_in))
		return 0;
	if (conn_junk_command(s->conn) == POSTERN_OK)
		return 0;
	if (s->p->too_many_junk != NULL)
		session_reply(s, "%s", s->p->too_many_junk);
	session_close(s);
	return 1;
}

static void
dispatch(postern_session_t *s, const struct postern_line *l)
{
	const struct postern_command *c;
	int i;

	if (s->take_lines != NULL) {
		s->take_lines(s, s->st, l);
		return;
	}
	if (s->p->command_size > 0)
		memset(s->cmd, 0, s->p->command_size);
	i = s->p->parse(s, s->st, l, s->cmd);
	if (i == POSTERN_PARSE_NONE)
		return;
	if (i < 0 || (size_t)i >= s->p->ncommands) {
		session_error(s);
		return;
	}
	c = &s->p->commands[i];
	if (!junk(s, c))
		c->run(s, s->st, s->cmd);
}

static void
pump_deferred(void *arg)
{
	postern_session_t *s = arg;

	s->pump_deferred = 0;
	pump(s);
	session_unref(s);
}

static void
defer_pump(postern_session_t *s)
{
	if (s->pump_deferred)
		return;
	s->pump_deferred = 1;
	session_ref(s);
	loop_defer(loop_current, pump_deferred, s);
}

/* Takes commands until input runs out or one holds the session. */
static void
pump(postern_session_t *s)
{
	struct postern_line l;
	unsigned n = 0;

	while (reading(s)) {
		if (s->octets_fn != NULL) {
			octets(s);
			if (s->octets_fn != NULL)
				return; /* the rest has not arrived */
			continue;
		}
		if (s->p->max_commands_per_read > 0 &&
		    n++ == s->p->max_commands_per_read) {
			/* Others get the loop before the next command. */
			defer_pump(s);
			return;
		}
		if (next_line(s, &l) != POSTERN_OK)
			return;
		dispatch(s, &l);
	}
}

static void
goodbye(postern_session_t *s)
{
	if (s->p->goodbye != NULL)
		session_reply(s, "%s", s->p->goodbye);
	session_close(s);
}

static void
hold(postern_session_t *s)
{
	if (s->holds++ + s->jobs == 0 && s->conn != NULL)
		conn_pause(s->conn);
}

static void
unhold(postern_session_t *s)
{
	if (--s->holds + s->jobs > 0 || s->conn == NULL || s->closing)
		return;
	if (s->stopping) {
		goodbye(s);
		return;
	}
	conn_resume(s->conn);
	if (s->has_held)
		defer_pump(s);
}

void
session_pause(postern_session_t *s)
{
	hold(s);
}

void
session_resume(postern_session_t *s)
{
	if (s->holds == 0) {
		conn_log(s->conn, POSTERN_LOG_ERROR, "%s: session_resume "
		         "without session_pause: ignored", s->p->name);
		return;
	}
	unhold(s);
}

void
session_take_lines(postern_session_t *s, postern_session_line_fn fn)
{
	s->take_lines = fn;
}

void
session_read_octets(postern_session_t *s, uint64_t n,
                    postern_session_octets_fn fn)
{
	if (n == 0)
		return;
	s->octets_fn = fn;
	s->octets_left = n;
}

/* ---- output, budgets --------------------------------------------------- */

void
session_reply(postern_session_t *s, const char *fmt, ...)
{
	char buf[1024], *big;
	va_list ap;
	int n;

	if (s->conn == NULL || s->closing)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf) - 2) {
		buf[n++] = '\r';
		buf[n++] = '\n';
		conn_write(s->conn, buf, (size_t)n);
		return;
	}
	big = xmalloc((size_t)n + 3);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	big[n++] = '\r';
	big[n++] = '\n';
	conn_write(s->conn, big, (size_t)n);
	free(big);
}

void
session_write(postern_session_t *s, const void *data, size_t len)
{
	if (s->conn != NULL && !s->closing)
		conn_write(s->conn, data, len);
}

void
session_close(postern_session_t *s)
{
	if (s->conn == NULL || s->closing)
		return;
	s->closing = 1;
	conn_close(s->conn);
}

int
session_closing(postern_session_t *s)
{
	return s->conn == NULL || s->closing;
}

/* One more against a budget of `max` (0: none). */
static int
spend(postern_session_t *s, unsigned *count, unsigned max, const char *what,
      const char *reply)
{
	if (++*count < max || max == 0 || s->conn == NULL)
		return POSTERN_OK;
	conn_log(s->conn, POSTERN_LOG_NOTICE, "%s: %u %s: disconnecting",
	         s->p->name, *count, what);
	if (reply != NULL)
		session_reply(s, "%s", reply);
	session_close(s);
	return POSTERN_TOOLONG;
}

int
session_error(postern_session_t *s)
{
	return spend(s, &s->errors, s->p->max_errors, "invalid commands",
	             s->p->too_many_errors);
}

void
session_error_reset(postern_session_t *s)
{
	s->errors = 0;
}

int
session_login_failed(postern_session_t *s)
{
	return spend(s, &s->login_failures, s->p->max_login_failures,
	             "failed logins", s->p->too_many_logins);
}

void
session_login_ok(postern_session_t *s)
{
	s->logged_in = 1;
	if (s->conn != NULL)
		conn_junk_reset(s->conn);
}

/* ---- jobs -------------------------------------------------------------- */

struct session_job {
	postern_session_t *s;
	postern_session_work_fn work;
	postern_session_done_fn done;
	void *arg;
};

static void
job_work(void *arg)
{
	struct session_job *j = arg;

	j->work(j->s, j->s->st, j->arg);
}

static void
job_done(void *arg, int cancelled)
{
	struct session_job *j = arg;
	postern_session_t *s = j->s;
	int status = POSTERN_OK;

	/* A paused connection reads nothing, so the host has not seen a
	 * client that left meanwhile: ask the socket.  (The core takes
	 * the end of the input as the end of the session, as it does when
	 * reading.) */
	if (s->conn != NULL && conn_peer_gone(s->conn))
		session_close(s);
	if (cancelled)
		status = POSTERN_ERROR;
	else if (s->conn == NULL || s->closing)
		status = POSTERN_CLOSED;
	/* Held until done has returned: a job it starts keeps the hold. */
	j->done(s, s->st, j->arg, status);
	free(j);
	s->jobs--;
	s->holds++;
	unhold(s);
	session_unref(s);
}

static void
job_refused(void *arg)
{
	job_done(arg, 1);
}

void
session_job(postern_session_t *s, postern_session_work_fn work,
            postern_session_done_fn done, void *arg)
{
	struct session_job *j = xmalloc(sizeof(*j));

	j->s = s;
	j->work = work;
	j->done = done;
	j->arg = arg;
	session_ref(s);
	if (s->jobs++ + s->holds == 0 && s->conn != NULL)
		conn_pause(s->conn);
	if (host_jobs() == NULL ||
	    job_submit(host_jobs(), job_work, job_done, j) == NULL)
		loop_defer(loop_current, job_refused, j);
}

void
session_handles(postern_session_t *s, int open)
{
	s->handles = open;
}

/* ---- accessors --------------------------------------------------------- */

void *
session_state(postern_session_t *s)
{
	return s->st;
}

postern_conn_t *
session_conn(postern_session_t *s)
{
	return s->conn;
}

const void *
session_listener(postern_session_t *s)
{
	return s->listener->cfg;
}

/* ---- connection callbacks ---------------------------------------------- */

static void
on_read(postern_conn_t *c, void *arg)
{
	postern_session_t *s = arg;

	(void)c;
	if (!s->pump_deferred)
		pump(s);
}

static void
on_drain(postern_conn_t *c, void *arg)
{
	postern_session_t *s = arg;

	(void)c;
	if (s->p->on_drain != NULL)
		s->p->on_drain(s, s->st);
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	postern_session_t *s = arg;

	(void)c;
	if (s->p->on_close != NULL)
		s->p->on_close(s, s->st, why);
	s->conn = NULL;
	session_unref(s);
}

static int
on_timeout(postern_conn_t *c, void *arg)
{
	postern_session_t *s = arg;

	(void)c;
	if (s->jobs > 0 || s->holds > 0)
		return 0; /* a step in flight: let it finish */
	if (s->p->timeout != NULL)
		session_reply(s, "%s", s->p->timeout);
	s->closing = 1;
	return 1;
}

static void
on_shutdown(postern_conn_t *c, void *arg)
{
	postern_session_t *s = arg;

	(void)c;
	if (s->p->on_shutdown != NULL && !s->p->on_shutdown(s, s->st))
		return; /* the protocol closes when its transaction is done */
	if (s->jobs > 0 || s->holds > 0) {
		s->stopping = 1; /* goodbye when the step is done */
		return;
	}
	goodbye(s);
}

static const struct postern_conn_ops session_conn_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_drain = on_drain,
	.on_close = on_close,
	.on_timeout = on_timeout,
	.on_shutdown = on_shutdown,
};

static void
on_accept(postern_conn_t *c, void *arg)
{
	const struct session_listener *sl = arg;
	const struct postern_protocol *p = sl->p;
	postern_session_t *s;

	s = xcalloc(1, sizeof(*s) + p->session_size + p->command_size +
	               2 * sizeof(max_align_t));
	s->p = p;
	s->listener = sl;
	s->conn = c;
	s->refs = 1;
	/* The protocol's state and command follow, aligned for any type. */
	s->st = (char *)s + (sizeof(*s) + sizeof(max_align_t) - 1) /
	                        sizeof(max_align_t) * sizeof(max_align_t);
	s->cmd = (char *)s->st + (p->session_size + sizeof(max_align_t) - 1) /
	                             sizeof(max_align_t) * sizeof(max_align_t);
	conn_set_ops(c, &session_conn_ops, s);
	if (p->greeting != NULL)
		session_reply(s, "%s", p->greeting);
	if (p->on_start != NULL)
		p->on_start(s, s->st);
}

static const struct postern_listener_ops session_listener_ops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = on_accept,
};

/* ---- listeners --------------------------------------------------------- */

static int
listen_one(const char *owner, const struct postern_protocol *p,
           postern_cfg_t *node, postern_tls_t *tls)
{
	struct session_listener *sl;
	const struct postern_listen_cfg *lc;
	struct postern_listen_spec spec;
	struct postern_conn_limits limits = { .size = sizeof(limits) };

	sl = xcalloc(1, sizeof(*sl));
	sl->p = p;
	sl->cfg = xcalloc(1, p->listen_size);
	if (conf_parse(host_conf(), node, owner, p->listen_keys,
	               p->listen_key_size, sl->cfg, 0) < 0)
		goto fail;
	if (p->size >= offsetof(struct postern_protocol, listen_check) +
	                   sizeof(p->listen_check) &&
	    p->listen_check != NULL && p->listen_check(sl->cfg, node) < 0)
		goto fail;
	lc = sl->cfg;
	if (lc->tls && tls == NULL) {
		conf_error(host_conf(), node, "implicit TLS needs a "
		           "certificate in %s.tls", owner);
		goto fail;
	}
	limits.idle_ms = p->idle_ms;
	if (p->size >= offsetof(struct postern_protocol, max_input) +
	               sizeof(p->max_input))
		limits.max_input = p->max_input;
	postern_listen_spec_init(&spec, lc, tls, &limits,
	                         &session_listener_ops, sl);
	if (listener_add(owner, &spec) == NULL)
		goto fail;
	sl->next = session_listeners;
	session_listeners = sl;
	return 0;
fail:
	free(sl->cfg);
	free(sl);
	return -1;
}

int
session_listen(const char *owner, const struct postern_protocol *p,
               postern_cfg_t *list, postern_tls_t *tls)
{
	size_t i, n = list != NULL ? conf_count(list) : 0;

	if (p->size < offsetof(struct postern_protocol, max_input) ||
	    p->listen_keys == NULL || p->listen_key_size == 0 ||
	    p->listen_size < sizeof(struct postern_listen_cfg) ||
	    p->parse == NULL || p->commands == NULL) {
		log_write(POSTERN_LOG_ERROR, owner, "session_listen: the "
		          "protocol has no size, listener schema, parser or "
		          "command table");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (listen_one(owner, p, conf_elem(list, i), tls) < 0)
			return -1;
	return 0;
}

void
session_reset(void)
{
	struct session_listener *sl;

	while ((sl = session_listeners) != NULL) {
		session_listeners = sl->next;
		free(sl->cfg);
		free(sl);
	}
}
