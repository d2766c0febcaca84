/*
 * pop3.h - what the files of the POP3 module share: settings, the
 * session, and the functions each file offers the others.
 *
 *	pop3.c          descriptor, configuration, worker start
 *	pop3_session.c  the protocol on the host's session layer: parser
 *	                glue, command table, fixed replies, AUTHORIZATION
 *	                state (USER/PASS, AUTH, STLS, CAPA)
 *	pop3_mailbox.c  jobs on the store: login (open), UPDATE (QUIT),
 *	                release; the TRANSACTION commands
 *	pop3_retr.c     RETR and TOP: the message opened, then streamed by
 *	                the host (postern/stream.h)
 *	pop3_parser.c   command lines and states (pure)
 *	pop3_maildrop.c the numbered snapshot and deletion marks (pure)
 *
 * Threads: everything runs on the worker's event loop except the `work`
 * functions of jobs, which touch only the store, the mailbox and the
 * buffers of the session's one job in flight.
 */
#ifndef POP3_H
#define POP3_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <postern/postern.h>

#include "pop3_maildrop.h"
#include "pop3_parser.h"

/* Longest line read at all (an AUTH initial response or a SASL reply
 * can pass POP3_MAX_COMMAND); longer ones are refused and discarded. */
#define POP3_MAX_LINE 8192

struct pop3_settings {
	postern_cfg_t *listen;
	postern_cfg_t *tls;
	int plaintext_auth;     /* USER/PASS, AUTH without TLS off loopback */
	int apop;               /* refused at config check (README) */
	int mark_seen;          /* RETR sets \Seen */
	const char *expire;     /* "" (not advertised), "NEVER" or days */
	long long login_delay_ms; /* advertised LOGIN-DELAY; 0: none */
	long long max_failed_logins;
	long long max_bad_commands;
	long long idle_ms;
	const char *implementation; /* CAPA IMPLEMENTATION; "" hides it */
};

/* Module-wide state, set in init (pop3.c). */
extern const struct postern_host *pop3_host;
extern postern_module_t *pop3_self;
extern struct pop3_settings pop3_set;
extern postern_tls_t *pop3_tls;                /* NULL: no STLS */
extern const struct postern_storage *pop3_storage; /* from worker start */
extern int pop3_expire_zero;                   /* EXPIRE 0: RETR deletes */

struct pop3_session;
struct pop3_retr;

/* What QUIT removes in the UPDATE state (pop3_mailbox.c). */
struct pop3_update {
	struct postern_uid_range *ranges; /* malloc'd */
	size_t nranges;
	uint32_t expunged;
};

typedef void (*pop3_job_done_fn)(struct pop3_session *s);

/* One client: the protocol's state in the host's session (postern/
 * session.h), zeroed at accept and freed by the host once the connection
 * has closed, the last job has finished and the store is released. */
struct pop3_session {
	postern_session_t *ss;    /* the host's session */
	postern_pool_t *pool;     /* the session's strings */
	enum pop3_state state;
	int have_user;            /* USER given, PASS may follow */
	char user[POP3_MAX_COMMAND + 1];
	postern_sasl_t *sasl;     /* the login in progress, or NULL */
	const struct postern_user *userinfo; /* valid while `sasl` is */
	char *login;              /* canonical login name once logged in */

	postern_store_t *store;   /* TRANSACTION: the user's store... */
	postern_mailbox_t *mbox;  /* ...and INBOX, opened exclusively */
	struct pop3_maildrop drop;
	uint32_t retrieved;       /* RETRs answered, for the logout line */

	int job_running;          /* the one job in flight */
	postern_job_work_fn job_work;
	pop3_job_done_fn job_done;
	struct postern_storage_err err; /* the job's error */
	int job_failed;

	struct pop3_retr *retr;   /* RETR/TOP state (pop3_retr.c), or NULL */
	struct pop3_update *update; /* QUIT's job, or NULL */
};

/* ---- pop3_session.c ---------------------------------------------------- */

/* The protocol for the host's session layer; pop3.c sets its limits and
 * listener schema from the configuration. */
extern struct postern_protocol pop3_protocol;
/* Sends a line: the text (cut at 1 KiB), then CRLF. */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
/* Ends the session after what is queued is sent. */
void pop3_close(struct pop3_session *s);

/* ---- pop3_mailbox.c ---------------------------------------------------- */

/* Runs `work` (its arg: the session) on a job thread, then `done` on the
 * loop (not when the client has gone in between: the host then releases
 * the store and frees the session). */
void pop3_job_start(struct pop3_session *s, postern_job_work_fn work,
                    pop3_job_done_fn done);
/* After a successful SASL or USER/PASS: opens INBOX, enters TRANSACTION. */
void pop3_mailbox_open(struct pop3_session *s);
/* A TRANSACTION command other than RETR and TOP. */
void pop3_transaction(struct pop3_session *s, const struct pop3_command *c);
/* protocol->release: closes the open message, the mailbox and the store
 * (blocking).  protocol->free: frees what the session points to. */
void pop3_session_release(postern_session_t *ss, void *st);
void pop3_session_free(postern_session_t *ss, void *st);
/* "-ERR [code] what: text" for a storage error, into buf (NUL-terminated,
 * cut to fit); returns its length.  Any thread. */
#define POP3_ERROR_LINE_MAX 320
size_t pop3_format_storage_error(char *buf, size_t cap, const char *what,
                                 const struct postern_storage_err *err);
/* The same, sent as a reply. */
void pop3_reply_storage_error(struct pop3_session *s, const char *what,
                              const struct postern_storage_err *err);

/* ---- pop3_retr.c ------------------------------------------------------- */

/* RETR n (top = 0) or TOP n lines. */
void pop3_retr_start(struct pop3_session *s, uint32_t n, int top,
                     uint32_t lines);
/* Blocking: closes the open message, if any (the release job). */
void pop3_retr_close_msg(struct pop3_session *s);
/* 1 while a message opened on a job is open (being sent, or sent and
 * not closed yet). */
int pop3_retr_msg_open(const struct pop3_session *s);
/* Frees the RETR state (after pop3_retr_close_msg). */
void pop3_retr_free(struct pop3_session *s);

#endif /* POP3_H */
