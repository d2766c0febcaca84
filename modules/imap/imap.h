/*
 * imap.h - what the files of the IMAP module share: settings, the
 * session, jobs, output buffers and the command handlers.
 *
 * Files:
 *	imap.c                  module init, configuration, listeners
 *	imap_parser.c           the command reader and argument scanner
 *	imap_session.c          the protocol on the host's session layer
 *	                        (postern/session.h): reading commands and
 *	                        literals, states, dispatch, jobs, untagged
 *	                        updates (sync), IDLE
 *	imap_commands_any.c     CAPABILITY NOOP LOGOUT ID ENABLE NAMESPACE
 *	imap_commands_auth.c    STARTTLS LOGIN AUTHENTICATE
 *	imap_commands_mailbox.c CREATE DELETE RENAME (UN)SUBSCRIBE LIST LSUB
 *	                        STATUS SELECT EXAMINE APPEND
 *	imap_commands_selected.c CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE
 *	imap_fetch.c            FETCH
 *	imap_search.c           SEARCH (parsing and evaluation), SEARCHRES
 *	imap_context.c          searches kept updated (RFC 5267 4.3),
 *	                        CANCELUPDATE
 *	imap_quota.c            GETQUOTA GETQUOTAROOT SETQUOTA (RFC 9208)
 *	imap_notify.c           NOTIFY (RFC 5465)
 *	imap_urlauth.c          RESETKEY GENURLAUTH URLFETCH (RFC 4467);
 *	                        its tokens in imap_urlauth_token.c
 *	imap_sort.c             SORT, THREAD (imap_sort.h); their keys in
 *	                        imap_sortkey.c, threading in imap_thread.c,
 *	                        the worker's key cache in imap_sortcache.c
 *	imap_utf7.c             modified UTF-7 mailbox names (RFC 3501 5.1.3)
 *	imap_buf.c              growable output buffers, IMAP string quoting
 *	imap_userip.c           sessions per user and address (shared table)
 */
#ifndef IMAP_H
#define IMAP_H

#include <stdarg.h>

#include <stddef.h>

#include <postern/postern.h>
#include <postern/session.h>
#include <postern/storage.h>

#include "imap_parser.h"

#define IMAP_TAG_MAX 64

/* ---- settings ----------------------------------------------------------*/

struct imap_settings {
	postern_cfg_t *listen;
	postern_cfg_t *tls;
	long long max_line;
	long long max_literal;       /* APPEND message size too */
	long long message_memory;    /* budget of a message's scratch pool */
	long long idle_ms;           /* between commands */
	long long idle_poll_ms;      /* IDLE without a watch */
	long long max_bad_commands;  /* BAD replies in a row before BYE */
	long long max_auth_failures; /* failed logins before BYE */
	long long commands_per_sec;  /* sustained rate; bursts of 4x */
	int plaintext_auth;          /* LOGIN/AUTHENTICATE PLAIN without
	                                TLS from anywhere */
	int loopback_secure;         /* loopback counts as secure */
	int literal_plus;            /* LITERAL+ (else LITERAL-) */
	long long fetch_batch;       /* output octets per FETCH job */
	long long max_fetch_items;   /* items in one FETCH */
	long long max_search_keys;   /* keys in one SEARCH */
	long long max_search_needle; /* octets of a SEARCH's strings */
	long long literal_memory;    /* larger APPEND literals go to a
	                                file; other commands refuse them */
	long long max_userip_conns;  /* logged-in sessions per user and
	                                address, 0: no limit */
	long long heavy_jobs;        /* FETCH/SEARCH steps on the pool at
	                                once, per worker */
	long long sort_memory;       /* the keys one SORT/THREAD holds */
	long long sort_cache;        /* sort keys kept per worker */
	long long notify_max_mailboxes; /* mailboxes one NOTIFY watches */
};

extern const struct postern_host *imap_host;
extern postern_module_t *imap_self;
extern struct imap_settings imap_cfg;
extern const struct postern_storage *imap_storage;
/* A storage call of a later minor than the 1.1 required, when the
 * backend's table has it. */
#define IMAP_STORAGE_HAS(f) \
	(imap_storage->size > offsetof(struct postern_storage, f) && \
	 imap_storage->f != NULL)
extern postern_tls_t *imap_tls;
/* The auth service (URLFETCH of another user's URL opens that user's
 * store), or NULL without one. */
extern const struct postern_auth *imap_auth;

/* ---- output buffers ----------------------------------------------------*/

/* A growable, malloc'd byte buffer (usable on job threads). */
struct imap_buf {
	char *p;
	size_t len, cap;
};

void imap_buf_add(struct imap_buf *b, const void *data, size_t len);
void imap_buf_str(struct imap_buf *b, const char *s);
/* Room for n more octets (written by the caller, then committed). */
char *imap_buf_room(struct imap_buf *b, size_t n);
void imap_buf_commit(struct imap_buf *b, size_t n);
void imap_buf_printf(struct imap_buf *b, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
/* A number in decimal (SORT and THREAD write tens of thousands). */
void imap_buf_uint(struct imap_buf *b, uint32_t v);
/* An IMAP string: quoted when it can be, else a literal. */
void imap_buf_string(struct imap_buf *b, const char *s, size_t len);
/* An IMAP string for a session with IMAP_UTF8_NAMES: UTF-8 without
 * controls quoted, anything else as imap_buf_string. */
void imap_buf_utf8_string(struct imap_buf *b, const char *s, size_t len);
/* NIL for NULL. */
void imap_buf_nstring(struct imap_buf *b, const char *s);
/* A mailbox name (UTF-8) as an IMAP string: in modified UTF-7, or as
 * it is when `utf8` (the session's IMAP_UTF8_NAMES). */
void imap_buf_mailbox(struct imap_buf *b, const char *name, int utf8);
/* Message flags and keywords as a parenthesised list. */
void imap_buf_flags(struct imap_buf *b, uint32_t flags,
                    const uint32_t *kw, uint32_t nkw,
                    const char *const *keywords, uint32_t nkeywords);
void imap_buf_free(struct imap_buf *b);
/* A LIST response's attributes "(\\HasNoChildren \\Subscribed)" from
 * POSTERN_MBOX_* bits (imap_commands_mailbox.c). */
void imap_buf_mbox_attrs(struct imap_buf *out, unsigned attrs);
/* "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\"" (imap_fetch.c). */
void imap_buf_internaldate(struct imap_buf *out, int64_t when, int tz);

/* ---- modified UTF-7 ----------------------------------------------------*/

/* UTF-8 -> modified UTF-7, malloc'd (NULL on bad UTF-8). */
char *imap_utf7_encode(const char *utf8);
/* modified UTF-7 -> UTF-8, malloc'd (NULL when not valid mUTF-7). */
char *imap_utf7_decode(const char *s, size_t len);
/* 1 when s[0..len) is UTF-8 (no overlong forms, no surrogates) without
 * NUL or control characters, as a mailbox name sent in UTF-8 must be. */
int imap_utf8_name_ok(const char *s, size_t len);

/* ---- the session ------------------------------------------------------*/

enum imap_state {
	IMAP_NOTAUTH = 0,
	IMAP_AUTH,
	IMAP_SELECTED,
	IMAP_LOGOUT,
};

#define IMAP_ENABLED_CONDSTORE 0x1u
#define IMAP_ENABLED_QRESYNC 0x2u
#define IMAP_ENABLED_UTF8 0x4u       /* UTF8=ACCEPT (RFC 6855) */
#define IMAP_ENABLED_REV2 0x8u       /* IMAP4rev2 (RFC 9051) */

/* IMAP4rev2 semantics (no \Recent, ESEARCH for SEARCH, LIST in SELECT). */
#define IMAP_REV2(s) (((s)->enabled & IMAP_ENABLED_REV2) != 0)
/* Mailbox names and quoted strings in UTF-8 rather than modified UTF-7:
 * after ENABLE UTF8=ACCEPT or IMAP4rev2 (RFC 6855 3, RFC 9051 5.1). */
#define IMAP_UTF8_NAMES(s) \
	(((s)->enabled & (IMAP_ENABLED_UTF8 | IMAP_ENABLED_REV2)) != 0)
/* The flags a FETCH shows: IMAP4rev2 has no \Recent (RFC 9051 E). */
#define IMAP_SHOWN_FLAGS(s, f) \
	(IMAP_REV2(s) ? (f) & ~(uint32_t)POSTERN_MSG_RECENT : (f))

struct imap_job;

struct imap_session {
	postern_session_t *ss;        /* the host's session */
	postern_conn_t *conn;         /* NULL once the connection closed */
	/* "conn=N peer=A:P: imap", every line about the session starts
	 * with it (imap_log), on the loop or a job thread. */
	char logp[128];
	struct imap_reader reader;
	enum imap_state state;
	postern_pool_t *cmd_pool;     /* the current command's memory */
	struct imap_job *job;         /* the one job in flight (or one
	                                 waiting for a heavy slot or for
	                                 the output to drain), or NULL */
	int closed;                   /* on_close ran */
	/* A message a FETCH step held open when the session went (its
	 * stream ended with the client): closed by protocol->release on a
	 * pool thread, before the mailbox, as msg_close may block. */
	postern_msg_t *orphan_msg;
	int in_command;               /* a command is being answered */

	/* Logging in. */
	postern_sasl_t *sasl;
	char sasl_tag[IMAP_TAG_MAX];

	/* Authenticated. */
	char *user;                   /* malloc'd */
	postern_store_t *store;
	unsigned enabled;             /* IMAP_ENABLED_* */
	int condstore;                /* CONDSTORE in use (RFC 7162 3.1) */
	int condstore_announce;       /* HIGHESTMODSEQ owed (3.1.2.1) */

	/* Selected. */
	postern_mailbox_t *mb;
	char *mbname;                 /* its name (malloc'd; stale when mb
	                                 is NULL) */
	int readonly;
	uint32_t nkeywords_sent;      /* keywords announced in FLAGS */

	int watched;                  /* the store tells of changes to mb:
	                                 1 yes, 0 not asked, -1 refused */

	/* IDLE. */
	int idling;
	int idle_dirty;               /* a change came while a job ran */
	postern_timer_t *idle_poll;   /* polling when the store cannot
	                                 watch (out of inotify instances) */
	char idle_tag[IMAP_TAG_MAX];

	/* Command rate: a token bucket refilled commands_per_sec. */
	double tokens;
	uint64_t tokens_ms;
	postern_timer_t *throttle;

	unsigned userip;              /* imap_userip's ticket, 0: none */

	/* SEARCHRES (RFC 5182): the saved result's UIDs, ascending
	 * (malloc'd; imap_search.c). */
	uint32_t *searchres;
	size_t nsearchres;

	/* Searches kept updated (RFC 5267 4.3, imap_context.c), at most
	 * IMAP_MAX_UPDATES. */
	struct imap_update *updates;
	unsigned nupdates;

	/* The APPEND literal being received (see imap_session.c). */
	postern_spool_t *spool;
	int spool_failed;             /* writing it failed: APPEND says NO */

	/* A long reply waits for the output queue to drain. */
	void (*on_drain)(struct imap_session *s);

	/* NOTIFY (RFC 5465, imap_notify.c), or NULL. */
	struct imap_notify *notify;
};

/* One command being run: what the handlers get. */
struct imap_cmd {
	struct imap_session *s;
	char tag[IMAP_TAG_MAX];
	const char *name;            /* upper case, static */
	int uid;                     /* UID prefix */
	struct imap_args args;
	postern_pool_t *pool;        /* = s->cmd_pool */
};

/* ---- jobs --------------------------------------------------------------*/

/* Blocking work of a command on a pool thread.  `work` runs there and
 * writes untagged output to `out` and its result to rc / err;
 * `done` runs on the loop afterwards (only if the session is still
 * there), after `out` was sent, and answers the command (or starts the
 * next job of it). */
struct imap_job {
	struct imap_session *s;
	int submitted;               /* on the session's job API */
	postern_pool_t *pool;        /* the job's own memory */
	char tag[IMAP_TAG_MAX];
	struct imap_buf out;
	int rc;
	struct postern_storage_err err;
	void (*work)(struct imap_job *j);
	void (*done)(struct imap_job *j);
	void *arg;                   /* the command's state (in pool) */
	unsigned sync_flags;         /* sync after work (selected state) */
	int sync;                    /* 1: sync after work */
	/* Frees what `arg` holds outside the pool; runs when the job is
	 * freed, also when the session went first.  May be NULL. */
	void (*cleanup)(struct imap_job *j);
	int cancelled;               /* the session closed: set on the
	                                loop, read by work (atomic) */
	int heavy;                   /* counted in heavy_jobs */
	struct imap_job *heavy_next; /* waiting for a heavy slot */
	/* A held step while the host streams for it (imap_job_stream_step):
	 * told how the stream ended, before the step runs. */
	int streaming;
	void (*streamed)(struct imap_job *next, int status);
};

/* A job for the command `tag`, with its own pool; arg from that pool
 * of `argsize` octets (zeroed). */
struct imap_job *imap_job_new(struct imap_session *s, const char *tag,
                              size_t argsize);
/* Runs it on the session's job (session_job): the session is held until
 * its done. */
/* Runs a job whose work makes only loop calls to the store (no sync, no
 * blocking call) at once, on the loop: no thread hop. */
void imap_job_run_here(struct imap_job *j, void (*work)(struct imap_job *),
                       void (*done)(struct imap_job *));
/* 1 when the view is known to be current: nothing another session or a
 * delivery did is waiting for a sync, and nothing is owed the client. */
int imap_view_current(struct imap_session *s);
/* Watching the selected mailbox, from the first command that asks
 * whether the view is current (or IDLE) until the mailbox is handed to
 * a job to be closed (the watch lives on the loop). */
void imap_watch_selected(struct imap_session *s);
void imap_unwatch_selected(struct imap_session *s);
void imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
                  void (*done)(struct imap_job *));
/* The same for a step of FETCH or SEARCH, which may keep a pool thread
 * busy for long: at most `heavy_jobs` of them are on the pool at once
 * in a worker, the others wait their turn here, so the rest of the
 * pool stays free for everyone's short commands. */
void imap_job_run_heavy(struct imap_job *j,
                        void (*work)(struct imap_job *),
                        void (*done)(struct imap_job *));

/* From a heavy job's done: the next step of the same command, with the
 * job's state (arg, its pool and cleanup) handed over, run at once
 * when the client keeps up, or when the output has drained past
 * fetch_batch (FETCH, URLFETCH).  Loop. */
void imap_job_next_output_step(struct imap_job *j);
/* From a heavy job's done, after its output: the host streams `src` to
 * the client as it is (postern/stream.h: a file region or a reader,
 * with back-pressure, reads off the loop) while the command's state
 * waits in its held next step.  When the stream has ended,
 * streamed(next, status) runs on the loop (status as the stream's
 * done); then on POSTERN_OK the next step goes on as above,
 * otherwise the command ends with the session (ERROR closes it: part
 * of a literal is out).  The reader may run on a job thread until
 * then: what it reads stays valid until `streamed`.  Loop. */
void imap_job_stream_step(struct imap_job *j,
                          const struct postern_stream_source *src,
                          void (*streamed)(struct imap_job *next,
                                           int status));

/* 1 once the session of a running job closed: a long `work` checks it
 * between messages and stops (a job that has started is not stopped
 * otherwise; one still waiting for a thread skips its work).  Job
 * threads. */
int imap_job_cancelled(struct imap_job *j);

/* Replies. */
/* Logs a line about the session: its prefix, then the text.  Any
 * thread while the session lives. */
void imap_log(const struct imap_session *s, int level, const char *fmt, ...)
	POSTERN_PRINTF(3, 4);
void imap_reply(struct imap_session *s, const char *tag, const char *status,
                const char *fmt, ...) POSTERN_PRINTF(4, 5);
/* The tagged NO for a storage error, with its RFC 5530 code. */
void imap_reply_storage_err(struct imap_session *s, const char *tag,
                            const struct postern_storage_err *err);
const char *imap_storage_code(enum postern_storage_error code);
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
void imap_write_buf(struct imap_session *s, const struct imap_buf *b);

/* Appends the untagged responses of a sync (EXPUNGE or VANISHED,
 * FETCH FLAGS, EXISTS, RECENT) to `out`.  Job threads. */
void imap_sync_format(struct imap_session *s, struct imap_buf *out,
                      const struct postern_sync_changes *ch,
                      postern_pool_t *pool);
/* A CONDSTORE-enabling command (RFC 7162 3.1): CONDSTORE in use from
 * now; the first in a selected mailbox owes the client the mailbox's
 * HIGHESTMODSEQ, sent untagged before the command's own responses.
 * Main thread. */
void imap_condstore_enable(struct imap_session *s);
/* Untagged FLAGS and PERMANENTFLAGS when the view knows keywords the
 * session was not told of (RFC 3501 7.2.6: before any FETCH that shows
 * them).  Job threads. */
void imap_format_keywords(struct imap_session *s, struct imap_buf *out);
/* Untagged FETCH (FLAGS ...) for message `seq` with UID / MODSEQ as the
 * session wants them.  `st` is the view's status (its keywords), taken
 * once by a caller that formats many messages: the store's status()
 * walks the whole view. */
void imap_format_flags_fetch(struct imap_session *s, struct imap_buf *out,
                             uint32_t seq, int with_uid,
                             const struct postern_mailbox_status *st);
/* A set of UIDs as "1:3,7". */
void imap_buf_uidset(struct imap_buf *b, const uint32_t *uids, size_t n);

/* The protocol the host's session layer runs (imap_session.c); imap.c
 * fills in its limits and listener schema at init. */
extern struct postern_protocol imap_protocol;
void imap_protocol_init(void);
/* The reader's limits for the session's state: literals before login
 * are at most IMAP_PREAUTH_LITERAL octets. */
#define IMAP_PREAUTH_LITERAL 8192
void imap_session_limits(struct imap_session *s,
                         struct imap_reader_limits *lim);
/* Forgets the command in the reader (it was answered). */
void imap_command_finish(struct imap_session *s);
/* Takes the spool of the command's spilled literal (the caller frees it
 * with spool_free); NULL when there is none.  *failed: it could not be
 * written. */
postern_spool_t *imap_take_spool(struct imap_session *s, int *failed);

/* imap_spool.c, for the APPEND jobs that make a message: appends to a
 * spool, moving its memory to the file as it grows (0, or -1 when the
 * file cannot be written); reads exactly len octets at `off` of a file
 * (0, or -1 on an error or a short file).  Blocking: job threads. */
int imap_spool_put(postern_spool_t *sp, const void *data, size_t len);
int imap_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* imap_binary.c: a message that came as literal8 with NUL octets, made
 * one a plain literal can carry (its parts with a NUL or "binary" as
 * their transfer encoding get base64), into a new spool (*out, the
 * caller frees it) that `msg` then reads from.  0, or -1 with `err`
 * set.  Blocking: on the APPEND's job. */
int imap_binary_convert(struct postern_append *msg, postern_spool_t **out,
                        struct postern_storage_err *err);

/* Logged-in sessions per user and address (imap_userip.c), in the
 * host's shared counters.  init makes the table (master, before the
 * fork); enter counts the session in, -1 when the user already has
 * max_userip_connections from its address; leave counts it out (no-op
 * when it was not counted). */
int imap_userip_init(void);
int imap_userip_enter(struct imap_session *s, const char *user);
void imap_userip_leave(struct imap_session *s);

/* CAPABILITY text for the session's state. */
const char *imap_capabilities(struct imap_session *s);
/* 1 when LOGIN / plaintext SASL may be used on this connection. */
int imap_plaintext_ok(struct imap_session *s);
/* After a successful login: opens the store on a job, answers OK. */
void imap_session_login(struct imap_session *s, const char *tag,
                        const char *user,
                        const struct postern_user *userinfo,
                        postern_sasl_t *sasl);
/* Resolves a mailbox argument (modified UTF-7 unless IMAP_UTF8_NAMES) to a
 * UTF-8 name in the command's pool; INBOX is case-insensitive.  NULL
 * with a BAD already sent when invalid. */
char *imap_mailbox_arg(struct imap_cmd *c, const struct imap_str *arg);

/* A flag list "(\\Seen kw ...)" (or, for STORE, flags without the
 * parentheses) into system flag bits and keywords (from the command's
 * pool).  \\Recent only with allow_recent.  -1 with a BAD sent. */
int imap_parse_flag_list(struct imap_cmd *c, uint32_t *flags,
                         const char ***keywords, uint32_t *nkeywords,
                         int allow_recent);

/* Resolves a sequence or UID set against the selected mailbox into
 * UID ranges (pool).  -1 with a BAD sent when a sequence number is not
 * in the mailbox. */
int imap_set_to_uids(struct imap_cmd *c, const struct imap_seqset *set,
                     int uid, struct postern_uid_range **out, size_t *n);

/* ---- command handlers --------------------------------------------------*/

typedef void imap_cmd_fn(struct imap_cmd *c);

imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
	imap_cmd_id, imap_cmd_enable, imap_cmd_namespace, imap_cmd_idle;
imap_cmd_fn imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate;
imap_cmd_fn imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list,
	imap_cmd_lsub, imap_cmd_status, imap_cmd_select, imap_cmd_examine,
	imap_cmd_append;
imap_cmd_fn imap_cmd_check, imap_cmd_close, imap_cmd_unselect,
	imap_cmd_expunge, imap_cmd_store, imap_cmd_copy, imap_cmd_move;
imap_cmd_fn imap_cmd_fetch;
/* NOTIFY's MessageNew fetch-att (RFC 5465 5.2, imap_fetch.c).  check:
 * parses a fetch-att list (or one item) at the command's position, as
 * FETCH takes it, -1 with args.error set.  untagged: FETCH `items` (that
 * text) of the selected mailbox's messages with a UID above `uidmax`,
 * untagged, then done(s); in steps on heavy jobs like any FETCH, the
 * session held until done; -1 when the items do not parse.  Loop, no
 * job of the session in flight. */
int imap_fetch_check_items(struct imap_cmd *c);
int imap_fetch_untagged(struct imap_session *s, const char *items,
                        uint32_t uidmax,
                        void (*done)(struct imap_session *s));
imap_cmd_fn imap_cmd_search;
imap_cmd_fn imap_cmd_cancelupdate;          /* imap_context.c */
imap_cmd_fn imap_cmd_getquota, imap_cmd_getquotaroot,
	imap_cmd_setquota;                  /* imap_quota.c */
imap_cmd_fn imap_cmd_sort, imap_cmd_thread;  /* imap_sort.c */
imap_cmd_fn imap_cmd_notify;                 /* imap_notify.c */

/* NOTIFY (imap_notify.c), on the loop.  kick: the session may be
 * between commands now, send what is pending (after a short delay, on
 * a job); free: the session's NOTIFY ends (watches removed);
 * selected_changed: the selected mailbox's watch fired outside IDLE, 1
 * when NOTIFY takes it; wants_selected: NOTIFY asked for the selected
 * mailbox's events; box_changed: a watch's callback. */
void imap_notify_kick(struct imap_session *s);
void imap_notify_free(struct imap_session *s);
int imap_notify_selected_changed(struct imap_session *s);
int imap_notify_wants_selected(const struct imap_session *s);
void imap_notify_box_changed(void *arg);
imap_cmd_fn imap_cmd_resetkey, imap_cmd_genurlauth,
	imap_cmd_urlfetch;                  /* imap_urlauth.c */
/* The urlauth service (postern/urlauth.h) imap_urlauth.c implements
 * for SMTP's BURL; published at init. */
extern const struct postern_urlauth imap_urlauth_service;

/* SEARCHRES (imap_search.c): before a command runs, "$" is made to mean
 * the saved result (and SELECT, EXAMINE, CLOSE, UNSELECT forget it);
 * free when the session ends.  Loop. */
void imap_searchres_attach(struct imap_cmd *c);
void imap_searchres_free(struct imap_session *s);


#endif /* IMAP_H */
