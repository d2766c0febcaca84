/*
 * smtp_session.h - what the SMTP module's files share: settings,
 * listeners, the session and its transaction.
 *
 * The host's session layer (postern/session.h) owns the connection's
 * life: listeners, reading and dispatching commands through the table in
 * smtp_session.c, raw lines for DATA and AUTH responses, counted octets
 * for BDAT chunks, jobs bound to the session, the error and junk
 * budgets, and the idle and shutdown goodbyes.
 *
 * Ownership.  The session state (struct smtp_session) is the host's,
 * alive until protocol->free, which comes after the connection closed
 * and the last job finished; what it allocates lives in its own pool.
 * Its transaction struct is reused from one MAIL to the next; what a
 * transaction accumulates (envelope strings, recipients, header edits)
 * lives in the transaction's own pool, and the message in its spool
 * (host->spool_*: memory, then an unlinked file), released when the
 * transaction ends or, once the client has gone, in protocol->free: a
 * job still using them has finished by then.
 *
 * One async step at a time per session: a hook dispatch, a job or a SASL
 * exchange (s->wait), with the session paused, so pipelined commands
 * wait their turn in the input buffer.  Which phase the session is in,
 * which commands it takes there and what an async step's report means
 * is the state machine's (smtp_state.h, s->state): a step reports
 * through smtp_event(), never through a continuation of its own.
 */
#ifndef SMTP_SESSION_H
#define SMTP_SESSION_H

#include <stdint.h>

#include <postern/postern.h>
#include <postern/relay.h>
#include <postern/smtp.h>
#include <postern/urlauth.h>

#include "smtp_data.h"
#include "smtp_parser.h"
#include "smtp_state.h"

/* RFC 4954 section 4: an AUTH response line may be 12288 octets. */
#define SMTP_AUTH_LINE_MAX 12288

/* ---- settings ------------------------------------------------------- */

enum smtp_mode {
	SMTP_MODE_MX = 0,
	SMTP_MODE_SUBMISSION,
	SMTP_MODE_SUBMISSIONS,
};

enum smtp_auth_policy {
	SMTP_AUTH_AUTO = 0, /* mx: off; submission(s): required */
	SMTP_AUTH_OFF,
	SMTP_AUTH_OPTIONAL,
	SMTP_AUTH_REQUIRED,
};

struct smtp_listener {
	struct postern_listen_cfg l;
	int mode;            /* enum smtp_mode */
	int auth;            /* enum smtp_auth_policy, AUTO resolved */
	int plaintext_auth;  /* AUTH allowed without TLS */
	/* MAIL FROM must be an address of the login (smtp_sender.c);
	 * enum smtp_sender_match, AUTO resolved to 0 or 1. */
	int sender_login_match;
};

enum smtp_sender_match {
	SMTP_SENDER_MATCH_AUTO = 0, /* mx: off; submission(s): on */
	SMTP_SENDER_MATCH_OFF,
	SMTP_SENDER_MATCH_ON,
};

struct smtp_settings {
	const char *hostname;
	const char *domain;    /* primary domain: <Postmaster> goes to
	                          postmaster@domain */
	struct postern_strlist relay_domains;
	struct postern_strlist trusted_networks;
	long long max_message_size;
	long long max_recipients;
	long long max_errors;
	long long idle_ms;
	long long data_ms;
	int bare_newline;      /* 0 reject, 1 normalise */
	long long max_line;
	long long spool_memory;
	postern_cfg_t *listen;
	postern_cfg_t *tls;
	/* derived */
	struct postern_network *networks;
	size_t nnetworks;
};

/* Module-wide state (smtp_module.c). */
extern const struct postern_host *smtp_host;
extern postern_module_t *smtp_self;
extern struct smtp_settings smtp_cfg;
extern postern_tls_t *smtp_tls;
extern postern_metric_t *smtp_transactions; /* by reply class 2xx..5xx */
extern postern_hook_t *smtp_hooks[POSTERN_SMTP_DISCONNECT + 1];
/* Looked up at worker start; NULL when no module publishes them. */
extern const struct postern_auth *smtp_auth;
extern const struct postern_storage *smtp_storage;
extern const struct postern_relay *smtp_relay;
extern const struct postern_urlauth *smtp_urlauth; /* BURL's resolver */
extern const struct postern_smtp_service smtp_service;

/* ---- the transaction ------------------------------------------------ */

enum smtp_route {
	SMTP_ROUTE_LOCAL = 0, /* targets: local logins or alias forwards */
	SMTP_ROUTE_RELAY,     /* to the relay queue */
};

struct smtp_rcpt {
	struct postern_relay_rcpt r;
	enum smtp_route route;
	const char **targets;  /* LOCAL: what auth resolve returned */
	size_t ntargets;
	int added;             /* added by a filter: resolved at delivery */
	int removed;           /* removed by a filter */
	/* delivery outcome: 0 ok, 4xx/5xx code */
	unsigned result;
	const char *result_text;
};

enum smtp_edit_kind {
	SMTP_EDIT_HEADER_ADD,
	SMTP_EDIT_HEADER_CHANGE,
	SMTP_EDIT_RCPT_ADD,      /* name: the address */
	SMTP_EDIT_RCPT_REMOVE,
	SMTP_EDIT_HEADER_INSERT, /* before field `index` (0-based) */
	SMTP_EDIT_SENDER,        /* name: the address; mail: the params */
};

struct smtp_edit {
	enum smtp_edit_kind kind;
	const char *name;
	const char *value;    /* NULL: remove (change) */
	size_t index;         /* change: 1-based among fields of `name` */
	int at_top;           /* add */
	struct smtp_mail_args *mail; /* sender: NULL keeps the params */
	struct smtp_edit *next;
};

/* What a filter verdict left for the message. */
enum smtp_outcome {
	SMTP_OUT_DELIVER = 0,
	SMTP_OUT_QUARANTINE,
	SMTP_OUT_DISCARD,
	SMTP_OUT_REFUSE,      /* reply stored in refuse_* */
};

/* A filter's own pointer in a transaction or session (txn_slot,
 * session_slot). */
#define SMTP_SLOTS 16
struct smtp_slot {
	postern_module_t *m;
	void *p;
};

struct postern_smtp_txn {
	struct smtp_session *s;
	postern_pool_t *pool;        /* per transaction; NULL when none */
	unsigned seq;                /* transactions in this session */
	int live;                    /* a hook call may edit it now */
	struct smtp_mail_args mail;
	struct postern_relay_envelope env;
	struct smtp_rcpt *rcpts;     /* nrcpts accepted ones */
	size_t nrcpts, caprcpts;
	struct postern_relay_rcpt *env_rcpts; /* env.rcpts, rebuilt */
	struct smtp_edit *edits, **edits_tail;
	size_t nedits, edit_bytes;   /* against SMTP_MAX_EDITS, _BYTES */
	int edits_over;              /* the budget was hit (logged) */
	struct smtp_slot slots[SMTP_SLOTS]; /* filters' txn_slot pointers */
	/* the message */
	int data_started;            /* DATA or a first BDAT was accepted */
	int bdat;                    /* BDAT was used (DATA now refused) */
	int bdat_failed;             /* a BDAT chunk was refused */
	struct smtp_data reader;
	postern_spool_t *spool;      /* host spool from DATA; NULL before */
	uint64_t size;               /* octets received (after cleaning) */
	int too_big;
	char *header;                /* header section copy (txn pool) */
	size_t header_len;
	int header_lost;             /* header outgrew spool memory */
	postern_spool_t *body_spool; /* a filter's new body, or NULL */
	int body_failed;             /* body_replace went past the limit */
	/* filters' decision for the message */
	enum smtp_outcome outcome;
	unsigned refuse_code;
	const char *refuse_enhanced, *refuse_text;
	int refuse_disconnect;
	char id[32];                 /* host->unique_id: logs, Received */
	char queue_id[64];           /* the relay's, when it took some */
	/* "conn=N peer=...: smtp: ID", what every line about the
	 * transaction starts with; in the txn pool, so a delivery job that
	 * outlives the session still has it. */
	const char *logp;
};

/* ---- the session ---------------------------------------------------- */

enum smtp_wait {
	SMTP_WAIT_NONE = 0,
	SMTP_WAIT_HOOK,
	SMTP_WAIT_JOB,
	SMTP_WAIT_SASL,
};

/* What an async step reports (smtp_event). */
struct smtp_event {
	enum smtp_event_kind kind;
	const struct postern_verdict *verdict;  /* SMTP_EV_VERDICT */
	const struct postern_sasl_result *sasl; /* SMTP_EV_SASL */
	int status;      /* SENDER, RESOLVED, SPOOLED, FETCHED: see
	                    smtp_state.h */
	ssize_t n;       /* SMTP_EV_READ, SMTP_EV_FETCHED */
};

/* One header field of the received message (for the header stage). */
struct smtp_hfield {
	const char *text;    /* the whole field with its CRLF */
	size_t len;
	const char *name;    /* NUL-terminated copies (txn pool) */
	const char *value;
	size_t index;        /* 1-based among fields of that name */
};

struct smtp_session {
	postern_session_t *ss;
	postern_conn_t *conn;        /* NULL once the client has gone */
	postern_pool_t *pool;        /* the session's own */
	const struct smtp_listener *lst;
	enum smtp_state state;       /* smtp_enter() changes it */
	enum smtp_wait wait;         /* the session is paused for it */
	int shutting;                /* worker stopping: 421 when the
	                                transaction is over */
	postern_hook_call_t *hook_call;
	postern_sasl_t *sasl;
	unsigned last_code;          /* of the last reply, for the metrics */
	char helo[SMTP_DOMAIN_MAX + 3];
	int esmtp;                   /* EHLO (not HELO) */
	int greeted;                 /* HELO or EHLO done */
	int tls;                     /* TLS active */
	char tls_version[32], tls_cipher[96];
	int tls_bits;
	char *auth_user;             /* session pool */
	int trusted;                 /* peer in trusted_networks */
	struct postern_smtp_session_info info;
	struct postern_smtp_payload payload;
	struct smtp_slot slots[SMTP_SLOTS]; /* filters' session_slot */
	struct postern_smtp_txn txn;  /* txn.pool NULL: no transaction */
	unsigned ntxn;
	/* a chunk in progress, BDAT's or BURL's */
	uint64_t bdat_size;
	int bdat_last;
	struct smtp_error bdat_refusal; /* code 0: chunk accepted */
	const char *burl_url;         /* BURL's URL (txn pool); NULL: the
	                                 chunk's octets are the client's */
	size_t burl_len;
	/* the end-of-message chain */
	struct smtp_hfield *hfields;  /* txn pool */
	size_t nhfields, hfield_next;
	uint64_t body_off;            /* body stage: next chunk */
	char *body_buf;               /* txn pool, one chunk */
	/* the rcpt being checked */
	struct smtp_rcpt_args rcpt_args;
	struct smtp_rcpt pending_rcpt;
};

/* ---- smtp_session.c ------------------------------------------------- */

/* The protocol the host's session layer runs (its fixed replies and
 * limits are set from the configuration in init). */
extern struct postern_protocol smtp_protocol;
/* Sets smtp_protocol's limits and fixed replies from smtp_cfg. */
void smtp_protocol_setup(void);
/* Queues a reply.  `enhanced` may be NULL; it is left out after HELO. */
void smtp_reply(struct smtp_session *s, unsigned code, const char *enhanced,
                const char *fmt, ...) POSTERN_PRINTF(4, 5);
/* A reply to a client mistake: counts toward max_errors (and closes the
 * session past it). */
void smtp_reply_error(struct smtp_session *s, unsigned code,
                      const char *enhanced, const char *text);
/* Replies with a filter's verdict (defaults for missing parts), closes
 * when it says so.  Returns 1 if the verdict refused. */
int smtp_reply_verdict(struct smtp_session *s,
                       const struct postern_verdict *v, unsigned def5,
                       const char *def5x, const char *deftext);
void smtp_session_close(struct smtp_session *s);
/* An async step begins: the session is paused until
 * smtp_session_resume. */
void smtp_session_wait(struct smtp_session *s, enum smtp_wait what);
/* The async step is over: read commands again. */
void smtp_session_resume(struct smtp_session *s);
/* 1 when a job's done must stop: the client has gone (free what the
 * job took, reply nothing). */
int smtp_session_gone(struct smtp_session *s, int status);
void smtp_session_update_info(struct smtp_session *s);
/* A job context of `size` octets, zeroed, whose first member is the
 * postern_pool_t * it lives in: the job's done destroys that pool. */
void *smtp_job_ctx(size_t size);
/* A session job (host->session_job) with the session waiting for it;
 * done ends with smtp_session_resume, or stops when smtp_session_gone. */
void smtp_job_start(struct smtp_session *s, postern_session_work_fn work,
                    postern_session_done_fn done, void *ctx);

/* ---- smtp_machine.c: the state machine ---------------------------- */

/* Every phase change: checked against smtp_state_can (an illegal one is
 * logged, and aborts a sanitizer build), logged at debug level.  From
 * SMTP_ST_CLOSED nothing moves. */
void smtp_enter(struct smtp_session *s, enum smtp_state to);
/* The rest state the session's data says it is in (READY or HELO
 * without a transaction; MAIL, RCPT, CHUNKED, CHUNK_FAILED in one). */
enum smtp_state smtp_rest_state(const struct smtp_session *s);
/* An async step reports: the current state's handler runs. */
void smtp_event(struct smtp_session *s, const struct smtp_event *ev);

/* The handlers smtp_event calls (state: event). */
/* smtp_session.c: CONNECT, HELO_HOOK, TLS_HOOK: VERDICT */
void smtp_on_connect_verdict(struct smtp_session *s,
                             const struct smtp_event *ev);
void smtp_on_helo_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_tls_verdict(struct smtp_session *s,
                         const struct smtp_event *ev);
/* smtp_auth.c: AUTH_STEP: SASL; AUTH_HOOK: VERDICT */
void smtp_on_sasl(struct smtp_session *s, const struct smtp_event *ev);
void smtp_on_auth_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
/* smtp_txn.c */
void smtp_on_sender_checked(struct smtp_session *s,
                            const struct smtp_event *ev);
void smtp_on_mail_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_rcpt_resolved(struct smtp_session *s,
                           const struct smtp_event *ev);
void smtp_on_rcpt_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_data_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_bdat_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_spilled(struct smtp_session *s, const struct smtp_event *ev);
void smtp_on_synced(struct smtp_session *s, const struct smtp_event *ev);
void smtp_on_delivered(struct smtp_session *s, const struct smtp_event *ev);
/* smtp_burl.c: BURL: FETCHED */
void smtp_on_burl_fetched(struct smtp_session *s,
                          const struct smtp_event *ev);
/* smtp_filter.c: the end-of-message stages */
void smtp_on_header_verdict(struct smtp_session *s,
                            const struct smtp_event *ev);
void smtp_on_eoh_verdict(struct smtp_session *s,
                         const struct smtp_event *ev);
void smtp_on_body_read(struct smtp_session *s, const struct smtp_event *ev);
void smtp_on_body_verdict(struct smtp_session *s,
                          const struct smtp_event *ev);
void smtp_on_eod_verdict(struct smtp_session *s,
                         const struct smtp_event *ev);

/* ---- smtp_auth.c ---------------------------------------------------- */

/* AUTH (the machine's rule let it run: READY). */
void smtp_cmd_auth(struct smtp_session *s, const struct smtp_command *cmd);

/* ---- smtp_txn.c ----------------------------------------------------- */

/* The commands, once the machine's rule let them run; BDAT gets the
 * rule, which may refuse the chunk after it is read. */
void smtp_cmd_mail(struct smtp_session *s, const struct smtp_command *cmd);
void smtp_cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd);
void smtp_cmd_data(struct smtp_session *s, const struct smtp_command *cmd);
void smtp_cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd,
                   const struct smtp_rule *rule);
/* A chunk in sequence (RCPT, CHUNKED), BDAT's or BURL's (s->burl_url),
 * announced (s->bdat_last set, s->bdat_refusal clear): the data stage
 * before the first one (BDAT_HOOK), then the chunk is read (BDAT) or
 * fetched (BURL). */
void smtp_chunk_begin(struct smtp_session *s);
/* The chunk will be refused with that reply when it ends (static
 * strings, or the txn pool's). */
void smtp_chunk_refuse(struct smtp_session *s, unsigned code,
                       const char *enhanced, const char *text);
/* The chunk is in, or refused: its reply, and after the last one the
 * end of the message (SYNC) or of the transaction. */
void smtp_chunk_end(struct smtp_session *s);
/* Adds octets to the chunk from the job that holds the paused session
 * (BURL's fetch), moving the spool's memory to its file as it grows, so
 * the message is never whole in memory.  0, or -1 when the file cannot
 * be written.  Job thread: the loop touches neither the reader, the
 * spool nor the txn pool while the job runs. */
int smtp_chunk_feed_job(struct postern_smtp_txn *t, const void *data,
                        size_t len);
/* Ends the transaction (runs smtp.reset detached).  The caller enters
 * the state that follows. */
void smtp_txn_reset(struct smtp_session *s);
/* Frees what the transaction holds, no filter told (the client has
 * gone and smtp.reset ran then). */
void smtp_txn_free(struct smtp_session *s);
/* The end-of-message stages are over (s->txn.outcome says what they
 * decided): reply, or deliver. */
void smtp_message_filtered(struct smtp_session *s);
/* Logs a line about the transaction whose prefix (txn->logp) is
 * `logp`: on the loop or a job thread. */
void smtp_log_txn(const char *logp, int level, const char *fmt, ...)
	POSTERN_PRINTF(3, 4);
void smtp_txn_rebuild_envelope(struct postern_smtp_txn *t);

/* ---- smtp_filter.c -------------------------------------------------- */

/* Runs a stage's chain over s->payload; its verdict comes as an
 * SMTP_EV_VERDICT event, now or later (the session waits meanwhile). */
void smtp_stage_run(struct smtp_session *s, enum postern_smtp_stage stage);
/* The same, with the stage's own payload fields (rcpt, header, chunk,
 * message_size) taken from `extra`. */
void smtp_stage_run_with(struct smtp_session *s,
                         enum postern_smtp_stage stage,
                         const struct postern_smtp_payload *extra);
/* Runs reset or disconnect detached: the session does not wait. */
void smtp_stage_cleanup(struct smtp_session *s,
                        enum postern_smtp_stage stage);
/* The end-of-message stages (from SYNC): header, eoh, body, eod, each
 * in its state; then smtp_message_filtered. */
void smtp_filter_message(struct smtp_session *s);
/* The header section after the filters' edits (txn pool); 1 if it
 * changed or a new body follows it, 0 if not (then *hdr is untouched). */
int smtp_filter_apply_header_edits(struct postern_smtp_txn *t,
                                   const char **hdr, size_t *len);
/* Applies the filters' envelope changes: the sender, and t->rcpts. */
void smtp_filter_apply_rcpt_edits(struct postern_smtp_txn *t);
/* Splits a header section into fields; calls fn for each. */
void smtp_header_fields(const char *hdr, size_t len,
                        void (*fn)(void *arg, const char *name,
                                   size_t name_len, const char *value,
                                   size_t value_len),
                        void *arg);

/* ---- smtp_deliver.c ------------------------------------------------- */

/* RCPT (RCPT_LOOKUP): resolves pending_rcpt's address; reports
 * SMTP_EV_RESOLVED. */
void smtp_resolve_rcpt(struct smtp_session *s);
/* Delivers the finished message to every recipient (DELIVER); reports
 * SMTP_EV_DELIVERED. */
void smtp_deliver(struct smtp_session *s);
/* The Received header for the transaction (txn pool). */
char *smtp_received_header(struct smtp_session *s);

/* ---- smtp_spool.c --------------------------------------------------- */

/* Writes the spool's memory part to its file if it outgrew the limit
 * (or `force`); reports SMTP_EV_SPOOLED (status: ok). */
void smtp_spool_sync(struct smtp_session *s, int force);
/* Reads body[off..off+len) of the spooled message into buf (for the
 * body stage); reports SMTP_EV_READ (n). */
void smtp_spool_read(struct smtp_session *s, uint64_t off, char *buf,
                     size_t len);

/* ---- smtp_burl.c ---------------------------------------------------- */

/* 1 when this listener offers BURL (RFC 4468 3.1: submission only, with
 * AUTH, and the imap module's urlauth service there); elsewhere BURL is
 * not implemented (502). */
int smtp_burl_offered(const struct smtp_session *s);
/* The EHLO keyword: "BURL imap" after AUTH, "BURL" before it
 * (authentication required to use it), NULL where not offered. */
const char *smtp_burl_keyword(const struct smtp_session *s);
/* BURL imap-url [LAST] on a listener that offers it, in any state that
 * reads commands but REFUSED: the rule runs it (RCPT, CHUNKED) or
 * refuses the chunk (REFUSE_CHUNK: not resolved, LAST ends the
 * transaction). */
void smtp_cmd_burl(struct smtp_session *s, const struct smtp_command *cmd,
                   const struct smtp_rule *rule);
/* BURL: resolves the URL on a job, into the message; reports
 * SMTP_EV_FETCHED (a chunk refused by the data stage ends at once). */
void smtp_burl_fetch(struct smtp_session *s);

/* ---- smtp_sender.c -------------------------------------------------- */

/* MAIL (MAIL_CHECK): when the listener asks for it, refuses (553 5.7.1)
 * a sender that is not an address of the authenticated login; reports
 * SMTP_EV_SENDER, at once or after a job. */
void smtp_sender_check(struct smtp_session *s);

/* ---- smtp_module.c -------------------------------------------------- */

int smtp_peer_trusted(postern_conn_t *c);
int smtp_domain_relayable(const char *domain);

#endif /* SMTP_SESSION_H */
