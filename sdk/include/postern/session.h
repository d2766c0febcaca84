/*
 * postern/session.h - the session layer every protocol module shares
 * (ABI 1.9, grown in 1.11), on the model of nginx's mail core: a
 * protocol supplies its
 * parser, its command table and its fixed replies in a struct
 * postern_protocol; the host owns the rest:
 *
 *   - listeners, from the protocol's listener schema (which starts with
 *     POSTERN_LISTEN_KEYS, postern/listen.h) and its check of each
 *     element (protocol->listen_check, ABI 1.11), TLS and per-IP limits
 *     included: host->session_listen();
 *   - the session, bound to its connection and counted: it outlives the
 *     connection while a job or a session_ref holds it, and is freed once
 *     (protocol->free) when nothing does;
 *   - reading: lines are parsed by protocol->parse and dispatched through
 *     the command table in order, one at a time; a command that needs
 *     time (a job, a login, a filter) pauses the session and pipelined
 *     commands wait in the input buffer; session_take_lines and
 *     session_read_octets hand raw lines (SMTP DATA, a SASL response) or
 *     counted octets (an IMAP literal, an SMTP BDAT chunk) to the
 *     protocol instead;
 *   - jobs bound to the session: their `done` is told when the client has
 *     gone, and the protocol's storage handles are closed on a job
 *     (protocol->release) after the connection closed and the last job
 *     finished;
 *   - budgets: invalid commands, failed logins, junk commands (the
 *     listener's junk_command_limit), each ending the session with the
 *     protocol's fixed reply;
 *   - goodbyes: on the idle timeout and on a worker's graceful stop (after
 *     the step in flight when the session is busy).
 *
 * A command that the session already holds the answer to (IMAP's fast
 * paths, POP3's LIST) is answered on the loop by its handler, no job
 * involved; protocol->max_commands_per_read keeps one pipelining client
 * from holding the loop.
 *
 * Out of memory.  Stated once for the session layer: the host's own
 * allocations abort the process (as pool_alloc does, postern/host.h: a
 * mail server out of memory cannot keep its promises), so no session
 * function fails for memory and a module never checks for it; what the
 * session holds is the protocol's session_size octets, zeroed, from the
 * host.
 *
 * Threads: every function and callback here runs on the worker's event
 * loop, except a job's `work` and protocol->release, which run on a pool
 * thread and may call only what host.h allows a job.
 *
 * A session handle passed to a callback is valid for that call; it stays
 * valid across calls while the protocol holds a reference, a job, or the
 * connection is open (until protocol->free).  The host owns it; no
 * session function takes NULL for it.
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <postern/types.h>
#include <postern/config.h>
#include <postern/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct postern_session postern_session_t;

/* A line's flag, with those of postern/conn.h: the client sent a line
 * longer than protocol->max_line; its octets were discarded (len 0).  A
 * raw line (session_take_lines) comes once its end has arrived, with
 * the flag of its terminator (POSTERN_LINE_CRLF or POSTERN_LINE_BARE_LF:
 * where SMTP's DATA may end depends on it); a command line as soon as
 * it is too long, without one. */
#define POSTERN_LINE_TOOLONG 0x100u

/* What protocol->parse returns (ABI 1.11) when it took the line but
 * there is no command to run and no invalid one to count: a line an
 * IMAP literal continues, a line it answered itself. */
#define POSTERN_PARSE_NONE (-2)

/* Command flags (struct postern_command). */
#define POSTERN_CMD_JUNK 0x1u  /* costs nothing, is no error (NOOP, HELP,
                                  RSET, VRFY): counts against the
                                  listener's junk_command_limit */
#define POSTERN_CMD_JUNK_UNTIL_LOGIN 0x2u /* the same, only before
                                             session_login_ok (CAPA,
                                             CAPABILITY, ID) */

/* A command handler: `st` is the session's protocol state, `cmd` what
 * protocol->parse filled in (command_size octets, valid for this call). */
typedef void (*postern_command_fn)(postern_session_t *s, void *st,
                                   void *cmd);

struct postern_command {
	const char *name;      /* "RETR": logs */
	unsigned flags;        /* POSTERN_CMD_* */
	postern_command_fn run;
};

/* A line handed to the protocol raw (session_take_lines). */
typedef void (*postern_session_line_fn)(postern_session_t *s, void *st,
                                        const struct postern_line *l);
/* Octets handed to the protocol (session_read_octets): called with each
 * piece as it arrives, `last` set on the final one. */
typedef void (*postern_session_octets_fn)(postern_session_t *s, void *st,
                                          const void *data, size_t len,
                                          int last);
/* A job bound to a session: `work` on a pool thread, `done` on the loop
 * with status POSTERN_OK (the client is there), POSTERN_CLOSED (the client
 * has gone or sends no more, or the session is closing: replies are
 * dropped, free what the job took) or POSTERN_ERROR (the worker is
 * stopping and `work` never ran). */
typedef void (*postern_session_work_fn)(postern_session_t *s, void *st,
                                        void *arg);
typedef void (*postern_session_done_fn)(postern_session_t *s, void *st,
                                        void *arg, int status);

/* What a protocol gives the host.  The module fills it in init (limits
 * from its configuration) and it must outlive the process. */
struct postern_protocol {
	size_t size;          /* sizeof(struct postern_protocol); the host
	                         reads no member past it (a module built
	                         for 1.9 or 1.10 stops before max_input) */
	const char *name;     /* "pop3": logs */

	/* Listeners.  listen_keys: the schema of one element of the
	 * module's `listen` list; its struct (listen_size octets) starts
	 * with a struct postern_listen_cfg.  The host keeps each parsed
	 * element for the process's life: session_listener. */
	const struct postern_cfg_key *listen_keys;
	size_t listen_key_size; /* sizeof(struct postern_cfg_key) */
	size_t listen_size;
	/* The listeners' idle timeout, ms (0: the host's default). */
	unsigned idle_ms;

	/* Input. */
	size_t max_line;      /* longest line, terminator excluded */
	unsigned max_errors;  /* invalid commands before goodbye (0: none) */
	unsigned max_login_failures; /* (0: no limit) */
	/* Commands dispatched in one read callback before the session
	 * yields the loop to others (0: no limit). */
	unsigned max_commands_per_read;

	/* Fixed replies: whole lines without CRLF, or NULL for none. */
	const char *greeting;        /* on connect */
	const char *goodbye;         /* worker stopping */
	const char *timeout;         /* idle timeout */
	const char *too_many_errors; /* max_errors reached */
	const char *too_many_logins; /* max_login_failures reached */
	const char *too_many_junk;   /* junk_command_limit reached */

	/* The protocol's state per session (zeroed), and its parsed
	 * command (filled by parse, for the handler). */
	size_t session_size;
	size_t command_size;

	const struct postern_command *commands;
	size_t ncommands;
	/* Parses a line (POSTERN_LINE_TOOLONG and POSTERN_LINE_NUL lines
	 * too) into cmd: the index of its entry in `commands`, -1 after
	 * replying the error (counted as an invalid command), or
	 * POSTERN_PARSE_NONE (nothing to run, nothing counted). */
	int (*parse)(postern_session_t *s, void *st,
	             const struct postern_line *l, void *cmd);

	/* Callbacks, each may be NULL. */
	/* After the greeting, before the first command. */
	void (*on_start)(postern_session_t *s, void *st);
	/* Everything written so far has reached the kernel. */
	void (*on_drain)(postern_session_t *s, void *st);
	/* The worker begins a graceful stop.  Return 1 (or leave NULL) for
	 * the host's goodbye as soon as no step is in flight; 0 to finish
	 * what the client started (an SMTP transaction) and close the
	 * session yourself (host->stopping() says the worker stops); the
	 * shutdown timeout closes it in any case. */
	int (*on_shutdown)(postern_session_t *s, void *st);
	/* The connection has gone (once; jobs may still run: they finish
	 * first).  Replies are dropped from here on. */
	void (*on_close)(postern_session_t *s, void *st,
	                 enum postern_close_reason why);
	/* Blocking, on a pool thread: close what session_handles said is
	 * open (a store, a mailbox).  After on_close and the last job;
	 * on the loop when the worker is exiting. */
	void (*release)(postern_session_t *s, void *st);
	/* Last call: free what `st` points to (not `st` itself). */
	void (*free)(postern_session_t *s, void *st);

	/* ABI 1.11 (read only when `size` covers it). */
	/* The connection's input buffer, octets (0: the host's default,
	 * 64 KiB): a line longer than it arrives as POSTERN_LINE_TOOLONG
	 * whatever max_line says.  A protocol whose parser applies its
	 * own line limit sets max_line to this and sees every line that
	 * fits (IMAP answers an over-long command BAD with its tag). */
	size_t max_input;
	/* ABI 1.11, may be NULL.  Init, in session_listen: checks one
	 * parsed element of the `listen` list (listen_size octets, which
	 * it may complete: a default that depends on another key) before
	 * its listener is added.  0, or -1 after reporting the problem
	 * with host->cfg_error on `node` (the element). */
	int (*listen_check)(void *cfg, postern_cfg_t *node);
};

/*
 * For a protocol whose commands are a verb, then optionally one space and
 * an argument ("ECHO text"): the index in `commands` of the entry whose
 * name matches the line's verb (ASCII case-insensitive), with *arg and
 * *arg_len set to the rest of the line ("" and 0 when there is none), or
 * -1 when none does.  A parser with a grammar of its own (IMAP's tags,
 * SMTP's "MAIL FROM:") does not need it.  Header only: no ABI.
 */
static inline int
postern_command_match(const struct postern_command *commands, size_t n,
                      const struct postern_line *l, const char **arg,
                      size_t *arg_len)
{
	size_t i, k;
	const char *name;
	char a, b;

	for (i = 0; i < n; i++) {
		name = commands[i].name;
		for (k = 0; name[k] != '\0' && k < l->len; k++) {
			a = name[k];
			b = l->data[k];
			if (b >= 'a' && b <= 'z')
				b = (char)(b - 'a' + 'A');
			if (a >= 'a' && a <= 'z')
				a = (char)(a - 'a' + 'A');
			if (a != b)
				break;
		}
		if (name[k] != '\0' || (k < l->len && l->data[k] != ' '))
			continue;
		*arg = k < l->len ? l->data + k + 1 : "";
		*arg_len = k < l->len ? l->len - k - 1 : 0;
		return (int)i;
	}
	return -1;
}

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_SESSION_H */
