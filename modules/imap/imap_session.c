/*
 * imap_session.c - one IMAP connection: reading commands, the states of
 * RFC 3501 section 3, dispatch, the one job a session may have in
 * flight, untagged updates, IDLE, limits, and the end of a session.
 *
 * Ownership.  A session is malloc'd at accept and outlives its
 * connection when it must: storage handles may only be closed on a job
 * thread, and a job in flight still uses them.  on_close marks the
 * session closed and calls session_release(), which frees it at once
 * when nothing is open, else closes the mailbox and store on a job and
 * frees the session in that job's done; a job in flight at close time
 * finishes first and calls session_release() again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_search.h"

/* ---- replies ----------------------------------------------------------*/

void
imap_write_buf(struct imap_session *s, const struct imap_buf *b)
{
	if (s->conn != NULL && b->len > 0)
		imap_host->conn_write(s->conn, b->p, b->len);
}

void
imap_reply(struct imap_session *s, const char *tag, const char *status,
           const char *fmt, ...)
{
	struct imap_buf b = { 0 };
	va_list ap;
	char text[512];

	if (s->conn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_buf_printf(&b, "%s %s %s\r\n", tag, status, text);
	imap_write_buf(s, &b);
	imap_buf_free(&b);
	if (strcmp(status, "BAD") == 0)
		s->bad_in_row++;
	else
		s->bad_in_row = 0;
}

void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	struct imap_buf b = { 0 };
	va_list ap;
	char text[1024];

	if (s->conn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_buf_printf(&b, "* %s\r\n", text);
	imap_write_buf(s, &b);
	imap_buf_free(&b);
}

const char *
imap_storage_code(enum postern_storage_error code)
{
	switch (code) {
	case POSTERN_SE_TEMP: return "UNAVAILABLE";
	case POSTERN_SE_NONEXISTENT: return "NONEXISTENT";
	case POSTERN_SE_ALREADYEXISTS: return "ALREADYEXISTS";
	case POSTERN_SE_NOPERM: return "NOPERM";
	case POSTERN_SE_OVERQUOTA: return "OVERQUOTA";
	case POSTERN_SE_LIMIT: return "LIMIT";
	case POSTERN_SE_INUSE: return "INUSE";
	case POSTERN_SE_EXPUNGED: return "EXPUNGEISSUED";
	case POSTERN_SE_CORRUPT: return "CORRUPTION";
	case POSTERN_SE_CANNOT: return "CANNOT";
	case POSTERN_SE_NOTSUPPORTED: return "CANNOT";
	case POSTERN_SE_OK: break;
	}
	return "SERVERBUG";
}

void
imap_reply_storage_err(struct imap_session *s, const char *tag,
                       const struct postern_storage_err *err)
{
	imap_reply(s, tag, "NO", "[%s] %s", imap_storage_code(err->code),
	           err->text[0] != '\0' ? err->text : "failed");
}

/* ---- capabilities and policy -----------------------------------------*/

int
imap_plaintext_ok(struct imap_session *s)
{
	if (imap_cfg.plaintext_auth || imap_host->conn_tls_active(s->conn))
		return 1;
	return imap_cfg.loopback_secure &&
	       imap_host->conn_peer_is_loopback(s->conn);
}

const char *
imap_capabilities(struct imap_session *s)
{
	static char buf[1024];
	const char *lit = imap_cfg.literal_plus ? "LITERAL+" : "LITERAL-";

	if (s->state == IMAP_NOTAUTH) {
		int tls_offer = imap_tls != NULL &&
		                !imap_host->conn_tls_active(s->conn);
		int plain = imap_plaintext_ok(s);
		char mechs[256] = "";
		const char *m = imap_host->sasl_mechanisms();
		char copy[256], *tok, *save = NULL;

		if (plain && m != NULL) {
			snprintf(copy, sizeof(copy), "%s", m);
			for (tok = strtok_r(copy, " ", &save); tok != NULL;
			     tok = strtok_r(NULL, " ", &save)) {
				strncat(mechs, " AUTH=",
				        sizeof(mechs) - strlen(mechs) - 1);
				strncat(mechs, tok,
				        sizeof(mechs) - strlen(mechs) - 1);
			}
		}
		snprintf(buf, sizeof(buf),
		         "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE %s%s%s%s",
		         lit,
		         tls_offer ? " STARTTLS" : "",
		         plain ? "" : " LOGINDISABLED", mechs);
		return buf;
	}
	snprintf(buf, sizeof(buf),
	         "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE %s NAMESPACE "
	         "UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE "
	         "CREATE-SPECIAL-USE LIST-EXTENDED "
	         "LIST-STATUS ESEARCH CONDSTORE QRESYNC STATUS=SIZE "
	         "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT "
	         "THREAD=REFERENCES WITHIN SEARCHRES CONTEXT=SEARCH "
	         "CONTEXT=SORT%s%s BINARY CATENATE UTF8=ACCEPT", lit,
	         /* RFC 9208: with STATUS DELETED and DELETED-STORAGE */
	         IMAP_STORAGE_HAS(quota_get)
	                 ? " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE" : "",
	         IMAP_STORAGE_HAS(append_many) ? " MULTIAPPEND" : "");
	return buf;
}

/* ---- jobs -------------------------------------------------------------*/

static void session_release(struct imap_session *s);
static void on_read(postern_conn_t *c, void *arg);

struct imap_job *
imap_job_new(struct imap_session *s, const char *tag, size_t argsize)
{
	struct imap_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	j->s = s;
	j->pool = imap_host->pool_create(4096);
	snprintf(j->tag, sizeof(j->tag), "%s", tag);
	if (argsize > 0)
		j->arg = imap_host->pool_alloc(j->pool, argsize);
	return j;
}

int
imap_job_cancelled(struct imap_job *j)
{
	return __atomic_load_n(&j->cancelled, __ATOMIC_RELAXED);
}

static void
job_free(struct imap_job *j)
{
	if (j->cleanup != NULL)
		j->cleanup(j);
	imap_buf_free(&j->out);
	imap_host->pool_destroy(j->pool);
	free(j);
}

void
imap_condstore_enable(struct imap_session *s)
{
	if (!s->condstore && s->mb != NULL)
		s->condstore_announce = 1;
	s->condstore = 1;
}

/* RFC 7162 3.1.2.1: "* OK [HIGHESTMODSEQ n]" once CONDSTORE is enabled
 * by a command in a selected mailbox. */
static void
condstore_announce(struct imap_session *s, struct imap_buf *out)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };

	s->condstore_announce = 0;
	if (s->mb == NULL)
		return;
	imap_storage->status(s->mb, &st);
	if (!st.modseq_supported)
		imap_buf_str(out, "* OK [NOMODSEQ] No permanent "
		                  "modsequences\r\n");
	else
		imap_buf_printf(out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		                (unsigned long long)(st.highestmodseq > 0 ?
		                                     st.highestmodseq : 1));
}

static void
job_work(void *arg)
{
	struct imap_job *j = arg;
	struct imap_session *s = j->s;
	struct postern_sync_changes ch;
	struct postern_storage_err err;

	if (s->condstore_announce)
		condstore_announce(s, &j->out);
	if (j->work != NULL)
		j->work(j);
	if (j->sync && s->mb != NULL) {
		memset(&err, 0, sizeof(err));
		if (imap_storage->sync(s->mb, j->sync_flags, j->pool, &ch,
		                       &err) == 0)
			imap_sync_format(s, &j->out, &ch, j->pool);
		else
			imap_log(s, POSTERN_LOG_WARNING, "sync for %s "
			         "failed: %s", s->user, err.text);
	}
}

/* FETCH and SEARCH steps waiting for one of the heavy_jobs slots. */
static struct imap_job *heavy_head, **heavy_tail = &heavy_head;
static unsigned heavy_running;

static void job_done(void *arg, int cancelled);

static void
heavy_unlink(struct imap_job *j)
{
	struct imap_job **pp;

	for (pp = &heavy_head; *pp != NULL; pp = &(*pp)->heavy_next) {
		if (*pp != j)
			continue;
		*pp = j->heavy_next;
		if (heavy_tail == &j->heavy_next)
			heavy_tail = pp;
		j->heavy_next = NULL;
		return;
	}
}

/* A heavy job ended: the longest waiting one gets its slot. */
static void
heavy_release(void)
{
	struct imap_job *j;

	heavy_running--;
	if ((j = heavy_head) == NULL)
		return;
	heavy_unlink(j);
	heavy_running++;
	j->handle = imap_host->job_submit(job_work, job_done, j);
}

void
imap_job_run_heavy(struct imap_job *j, void (*work)(struct imap_job *),
                   void (*done)(struct imap_job *))
{
	struct imap_session *s = j->s;

	j->work = work;
	j->done = done;
	j->heavy = 1;
	s->job = j;
	imap_host->conn_pause(s->conn);
	if (heavy_running < (unsigned)imap_cfg.heavy_jobs) {
		heavy_running++;
		j->handle = imap_host->job_submit(job_work, job_done, j);
		return;
	}
	/* Not submitted (handle NULL): on_close frees it. */
	*heavy_tail = j;
	heavy_tail = &j->heavy_next;
}

static void
job_done(void *arg, int cancelled)
{
	struct imap_job *j = arg;
	struct imap_session *s = j->s;

	(void)cancelled;
	if (j->heavy)
		heavy_release();
	s->job = NULL;
	if (s->closed) {
		job_free(j);
		session_release(s);
		return;
	}
	imap_write_buf(s, &j->out);
	j->out.len = 0;
	if (j->done != NULL)
		j->done(j);
	job_free(j);
	if (s->job != NULL || s->closed || s->conn == NULL)
		return;
	if (s->in_command && s->sasl == NULL)
		imap_command_finish(s);
	if (s->stopping) {
		imap_host->conn_printf(s->conn, "* BYE Server shutting "
		                                "down\r\n");
		imap_host->conn_close(s->conn);
		return;
	}
	imap_host->conn_resume(s->conn);
}

void
imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
             void (*done)(struct imap_job *))
{
	struct imap_session *s = j->s;

	j->work = work;
	j->done = done;
	s->job = j;
	imap_host->conn_pause(s->conn);
	j->handle = imap_host->job_submit(job_work, job_done, j);
}

void
imap_job_run_here(struct imap_job *j, void (*work)(struct imap_job *),
                  void (*done)(struct imap_job *))
{
	struct imap_session *s = j->s;

	j->work = work;
	j->done = done;
	j->sync = 0;
	s->job = j;
	job_work(j);
	s->job = NULL;
	imap_write_buf(s, &j->out);
	j->out.len = 0;
	if (j->done != NULL)
		j->done(j);
	job_free(j);
}

/* ---- the selected mailbox's watch -------------------------------------*/

/* The store's storage 1.2 call, when the backend has it. */
static int
store_sync_needed(postern_mailbox_t *mb)
{
	if (!IMAP_STORAGE_HAS(sync_needed))
		return 1;
	return imap_storage->sync_needed(mb);
}

/* The watch starts with the first command that could use it, not with
 * SELECT: adding one walks the directory's cached entries (0.7 ms for
 * 10,000 messages), which a session that selects, fetches once and
 * leaves (webmail) would pay for nothing.  That command syncs on a job
 * as before; the watch is in place before its sync begins, so from the
 * next command on the view knows whether it is current. */
int
imap_view_current(struct imap_session *s)
{
	if (s->mb == NULL)
		return 0;
	if (s->watched != 1) {
		imap_watch_selected(s);
		return 0;
	}
	return !s->condstore_announce && store_sync_needed(s->mb) == 0;
}

static void idle_changed(void *arg);

void
imap_watch_selected(struct imap_session *s)
{
	/* Without a watch every command syncs on a job, and IDLE polls. */
	if (s->mb != NULL && s->watched == 0)
		s->watched = imap_storage->watch(s->mb, idle_changed, s) == 0
		             ? 1 : -1;
}

void
imap_unwatch_selected(struct imap_session *s)
{
	if (s->mb != NULL && s->watched == 1)
		imap_storage->watch(s->mb, NULL, NULL);
	s->watched = 0;
}

/* ---- untagged updates ------------------------------------------------*/

void
imap_format_flags_fetch(struct imap_session *s, struct imap_buf *out,
                        uint32_t seq, int with_uid,
                        const struct postern_mailbox_status *stp)
{
	const struct postern_message_info *mi;
	struct postern_mailbox_status st;

	st = *stp;
	mi = imap_storage->message(s->mb, seq);
	if (mi == NULL)
		return;
	imap_buf_printf(out, "* %u FETCH (", seq);
	if (with_uid || (s->enabled & IMAP_ENABLED_QRESYNC))
		imap_buf_printf(out, "UID %u ", mi->uid);
	imap_buf_str(out, "FLAGS ");
	imap_buf_flags(out, IMAP_SHOWN_FLAGS(s, mi->flags), mi->keywords,
	               mi->nkeywords, st.keywords, st.nkeywords);
	if (s->condstore && st.modseq_supported)
		imap_buf_printf(out, " MODSEQ (%llu)",
		                (unsigned long long)mi->modseq);
	imap_buf_str(out, ")\r\n");
}

/* FLAGS and PERMANENTFLAGS when the mailbox learnt a keyword. */
void
imap_format_keywords(struct imap_session *s, struct imap_buf *out)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	uint32_t i;

	imap_storage->status(s->mb, &st);
	if (st.nkeywords == s->nkeywords_sent)
		return;
	imap_buf_str(out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	                  "\\Draft");
	for (i = 0; i < st.nkeywords; i++)
		imap_buf_printf(out, " %s", st.keywords[i]);
	imap_buf_str(out, ")\r\n");
	if (s->readonly) {
		imap_buf_str(out, "* OK [PERMANENTFLAGS ()] Read-only "
		                  "mailbox\r\n");
	} else {
		imap_buf_str(out, "* OK [PERMANENTFLAGS (\\Answered "
		                  "\\Flagged \\Deleted \\Seen \\Draft");
		for (i = 0; i < st.nkeywords; i++)
			imap_buf_printf(out, " %s", st.keywords[i]);
		imap_buf_printf(out, "%s)] Flags permitted\r\n",
		                st.keywords_full ? "" : " \\*");
	}
	s->nkeywords_sent = st.nkeywords;
}

void
imap_sync_format(struct imap_session *s, struct imap_buf *out,
                 const struct postern_sync_changes *ch, postern_pool_t *pool)
{
	uint32_t i, *uids;

	/* REMOVEFROM in the numbers the client knows before EXPUNGE */
	imap_update_expunges(s, out, ch, pool);
	if (ch->nexpunged > 0 && (s->enabled & IMAP_ENABLED_QRESYNC)) {
		/* RFC 7162 3.2.10: VANISHED instead of EXPUNGE. */
		uids = imap_host->pool_alloc(pool, ch->nexpunged *
		                                   sizeof(*uids));
		memcpy(uids, ch->expunged_uids, ch->nexpunged * sizeof(*uids));
		for (i = 1; i < ch->nexpunged; i++) {
			uint32_t v = uids[i], k = i;
			while (k > 0 && uids[k - 1] > v) {
				uids[k] = uids[k - 1];
				k--;
			}
			uids[k] = v;
		}
		imap_buf_str(out, "* VANISHED ");
		imap_buf_uidset(out, uids, ch->nexpunged);
		imap_buf_str(out, "\r\n");
	} else {
		for (i = 0; i < ch->nexpunged; i++)
			imap_buf_printf(out, "* %u EXPUNGE\r\n",
			                ch->expunged_seqs[i]);
	}
	imap_format_keywords(s, out);
	if (ch->nchanged > 0) {
		struct postern_mailbox_status st = { .size = sizeof(st) };

		imap_storage->status(s->mb, &st);
		for (i = 0; i < ch->nchanged; i++)
			imap_format_flags_fetch(s, out, ch->changed_seqs[i], 0,
			                        &st);
	}
	if (ch->new_messages || ch->nexpunged > 0) {
		imap_buf_printf(out, "* %u EXISTS\r\n", ch->messages);
		if (!IMAP_REV2(s)) /* RFC 9051 E: no RECENT */
			imap_buf_printf(out, "* %u RECENT\r\n",
			                ch->recent);
	}
	/* ADDTO of messages the client was told of above */
	imap_update_changes(s, out, pool);
}

/* ---- commands ---------------------------------------------------------*/

#define ST_NOTAUTH (1u << IMAP_NOTAUTH)
#define ST_AUTH (1u << IMAP_AUTH)
#define ST_SELECTED (1u << IMAP_SELECTED)
#define ST_ANY (ST_NOTAUTH | ST_AUTH | ST_SELECTED)
#define ST_LOGGEDIN (ST_AUTH | ST_SELECTED)

struct command {
	const char *name;
	unsigned states;
	int uid_ok;      /* may follow UID */
	imap_cmd_fn *fn;
};

static const struct command commands[] = {
	{ "CAPABILITY", ST_ANY, 0, imap_cmd_capability },
	{ "NOOP", ST_ANY, 0, imap_cmd_noop },
	{ "LOGOUT", ST_ANY, 0, imap_cmd_logout },
	{ "ID", ST_ANY, 0, imap_cmd_id },
	{ "STARTTLS", ST_NOTAUTH, 0, imap_cmd_starttls },
	{ "LOGIN", ST_NOTAUTH, 0, imap_cmd_login },
	{ "AUTHENTICATE", ST_NOTAUTH, 0, imap_cmd_authenticate },
	{ "ENABLE", ST_LOGGEDIN, 0, imap_cmd_enable },
	{ "NAMESPACE", ST_LOGGEDIN, 0, imap_cmd_namespace },
	{ "SELECT", ST_LOGGEDIN, 0, imap_cmd_select },
	{ "EXAMINE", ST_LOGGEDIN, 0, imap_cmd_examine },
	{ "CREATE", ST_LOGGEDIN, 0, imap_cmd_create },
	{ "DELETE", ST_LOGGEDIN, 0, imap_cmd_delete },
	{ "RENAME", ST_LOGGEDIN, 0, imap_cmd_rename },
	{ "SUBSCRIBE", ST_LOGGEDIN, 0, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", ST_LOGGEDIN, 0, imap_cmd_unsubscribe },
	{ "LIST", ST_LOGGEDIN, 0, imap_cmd_list },
	{ "LSUB", ST_LOGGEDIN, 0, imap_cmd_lsub },
	{ "STATUS", ST_LOGGEDIN, 0, imap_cmd_status },
	{ "APPEND", ST_LOGGEDIN, 0, imap_cmd_append },
	{ "IDLE", ST_LOGGEDIN, 0, imap_cmd_idle },
	{ "GETQUOTA", ST_LOGGEDIN, 0, imap_cmd_getquota },
	{ "GETQUOTAROOT", ST_LOGGEDIN, 0, imap_cmd_getquotaroot },
	{ "SETQUOTA", ST_LOGGEDIN, 0, imap_cmd_setquota },
	{ "CHECK", ST_SELECTED, 0, imap_cmd_check },
	{ "CLOSE", ST_SELECTED, 0, imap_cmd_close },
	{ "UNSELECT", ST_SELECTED, 0, imap_cmd_unselect },
	{ "EXPUNGE", ST_SELECTED, 1, imap_cmd_expunge },
	{ "SEARCH", ST_SELECTED, 1, imap_cmd_search },
	{ "CANCELUPDATE", ST_SELECTED, 0, imap_cmd_cancelupdate },
	{ "SORT", ST_SELECTED, 1, imap_cmd_sort },
	{ "THREAD", ST_SELECTED, 1, imap_cmd_thread },
	{ "FETCH", ST_SELECTED, 1, imap_cmd_fetch },
	{ "STORE", ST_SELECTED, 1, imap_cmd_store },
	{ "COPY", ST_SELECTED, 1, imap_cmd_copy },
	{ "MOVE", ST_SELECTED, 1, imap_cmd_move },
};

static const struct command *
command_find(const struct imap_str *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (imap_str_is(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void *
cmd_alloc(void *ctx, size_t n)
{
	return imap_host->pool_alloc(ctx, n);
}

/* ---- spilled literals -------------------------------------------------*/

/* An APPEND literal over literal_memory arrives in pieces: each goes to
 * the session's spool (host->spool_*), and whenever the spool holds
 * literal_memory octets in memory, a job moves them to its file while
 * the connection is paused.  So a 40 MB APPEND costs literal_memory of
 * memory, not 40 MB. */

static void
spool_drop(struct imap_session *s)
{
	imap_host->spool_free(s->spool);
	s->spool = NULL;
	s->spool_failed = 0;
}

postern_spool_t *
imap_take_spool(struct imap_session *s, int *failed)
{
	postern_spool_t *sp = s->spool;

	*failed = s->spool_failed;
	s->spool = NULL;
	s->spool_failed = 0;
	return sp;
}

/* On the loop, before the input is consumed. */
static void
spill_append(struct imap_session *s)
{
	struct imap_reader *r = &s->reader;

	if (r->spill_first && r->nspills == 1) {
		/* A new command: what a refused one left goes.  The
		 * command's other spilled literals follow in the same
		 * spool (MULTIAPPEND). */
		spool_drop(s);
		s->spool = imap_host->spool_create(NULL);
	}
	if (s->spool == NULL)
		s->spool_failed = 1;
	/* After a failed write the rest is read and dropped: the APPEND
	 * answers NO when it ends. */
	if (!s->spool_failed)
		imap_host->spool_append(s->spool, r->spill_data, r->spill_n);
}

static void
spill_work(struct imap_job *j)
{
	postern_spool_t *sp = j->arg;

	if (imap_host->spool_flush(sp) < 0) {
		j->rc = -1;
		imap_log(j->s, POSTERN_LOG_ERROR, "APPEND: cannot write the "
		         "literal to a temporary file in %s: %m",
		         imap_host->dir(POSTERN_DIR_STATE));
	}
}

static void
spill_done(struct imap_job *j)
{
	if (j->rc < 0)
		j->s->spool_failed = 1;
}

/* Moves the spool's memory to its file when it holds enough. */
static void
spill_flush_if_needed(struct imap_session *s)
{
	struct imap_job *j;

	if (s->spool == NULL || s->spool_failed ||
	    imap_host->spool_memory(s->spool, NULL) <
	    (size_t)imap_cfg.literal_memory)
		return;
	j = imap_job_new(s, "*", 0);
	j->arg = s->spool;
	imap_job_run(j, spill_work, spill_done);
}

/* The command in the reader's buffer is answered (or failed): forget it. */
void
imap_command_finish(struct imap_session *s)
{
	if (s->spool != NULL)
		spool_drop(s);
	s->in_command = 0;
	imap_reader_reset(&s->reader);
	imap_host->pool_clear(s->cmd_pool);
}

static const char *
state_text(enum imap_state st)
{
	return st == IMAP_NOTAUTH ? "not authenticated" :
	       st == IMAP_AUTH ? "authenticated" : "selected";
}

/* Before the login, CAPABILITY, NOOP and ID cost the client nothing and
 * are no errors (bad_in_row misses a flood of them): they count against
 * the host's junk-command budget.  0 after the BYE when it is spent. */
static int
junk_allowed(struct imap_session *s, const struct command *cmd)
{
	if (s->state != IMAP_NOTAUTH ||
	    (cmd->fn != imap_cmd_capability && cmd->fn != imap_cmd_noop &&
	     cmd->fn != imap_cmd_id) ||
	    imap_host->conn_junk_command(s->conn) == POSTERN_OK)
		return 1;
	imap_host->conn_printf(s->conn, "* BYE Too many commands before "
	                                "login\r\n");
	imap_host->conn_close(s->conn);
	return 0;
}

static void
command_run(struct imap_session *s)
{
	struct imap_cmd *c = imap_host->pool_alloc(s->cmd_pool, sizeof(*c));
	struct imap_str tag, name;
	const struct command *cmd;

	c->s = s;
	c->pool = s->cmd_pool;
	imap_args_init(&c->args, s->reader.buf, s->reader.len, cmd_alloc,
	               s->cmd_pool);
	imap_args_spills(&c->args, &s->reader);
	if (imap_arg_tag(&c->args, &tag) < 0 || tag.len >= IMAP_TAG_MAX) {
		imap_reply(s, "*", "BAD", "Missing or invalid tag");
		return;
	}
	memcpy(c->tag, tag.s, tag.len);
	c->tag[tag.len] = '\0';
	if (imap_arg_sp(&c->args) < 0 ||
	    imap_arg_atom(&c->args, &name) < 0) {
		imap_reply(s, c->tag, "BAD", "Missing command");
		return;
	}
	if (imap_str_is(&name, "UID")) {
		c->uid = 1;
		if (imap_arg_sp(&c->args) < 0 ||
		    imap_arg_atom(&c->args, &name) < 0) {
			imap_reply(s, c->tag, "BAD", "UID needs a command");
			return;
		}
	}
	cmd = command_find(&name);
	if (cmd == NULL || (c->uid && !cmd->uid_ok)) {
		imap_reply(s, c->tag, "BAD", "Unknown command %s%.*s",
		           c->uid ? "UID " : "",
		           (int)(name.len > 40 ? 40 : name.len), name.s);
		return;
	}
	if (!(cmd->states & (1u << s->state))) {
		imap_reply(s, c->tag, "BAD", "%s is not valid in the %s state",
		           cmd->name, state_text(s->state));
		return;
	}
	if (!junk_allowed(s, cmd))
		return;
	c->name = cmd->name;
	imap_searchres_attach(c);
	cmd->fn(c);
}

/* ---- IDLE (RFC 2177) --------------------------------------------------*/

static void idle_sync(struct imap_session *s);

static void
idle_sync_done(struct imap_job *j)
{
	struct imap_session *s = j->s;

	if (s->idle_dirty && s->idling) {
		s->idle_dirty = 0;
		idle_sync(s);
	}
}

static void
idle_sync(struct imap_session *s)
{
	struct imap_job *j = imap_job_new(s, s->idle_tag, 0);

	j->sync = 1;
	imap_job_run(j, NULL, idle_sync_done);
}

static void
idle_changed(void *arg)
{
	struct imap_session *s = arg;

	if (!s->idling || s->closed)
		return;
	if (s->job != NULL) {
		s->idle_dirty = 1;
		return;
	}
	idle_sync(s);
}

/* Without a watch, IDLE looks for changes every idle_poll_interval. */
static unsigned
idle_poll_fired(void *arg)
{
	struct imap_session *s = arg;

	if (!s->idling || s->closed) {
		s->idle_poll = NULL;
		return 0;
	}
	idle_changed(s);
	return (unsigned)imap_cfg.idle_poll_ms;
}

static void
idle_stop_poll(struct imap_session *s)
{
	if (s->idle_poll != NULL) {
		imap_host->timer_cancel(s->idle_poll);
		s->idle_poll = NULL;
	}
}

void
imap_cmd_idle(struct imap_cmd *c)
{
	struct imap_session *s = c->s;
	unsigned ms = (unsigned)imap_cfg.idle_ms;

	if (imap_arg_end(&c->args) < 0) {
		imap_reply(s, c->tag, "BAD", "IDLE takes no arguments");
		return;
	}
	snprintf(s->idle_tag, sizeof(s->idle_tag), "%s", c->tag);
	/* From here on the input is lines ("DONE"), not this command. */
	imap_command_finish(s);
	s->idling = 1;
	s->idle_dirty = 0;
	/* RFC 2177: at least 29 minutes before a server may log out an
	 * idle client; we give 30. */
	if (ms < 30 * 60 * 1000)
		ms = 30 * 60 * 1000;
	imap_host->conn_set_idle(s->conn, ms);
	imap_host->conn_printf(s->conn, "+ idling\r\n");
	if (s->mb != NULL) {
		imap_watch_selected(s);
		if (s->watched != 1) {
			/* The storage said why, once per process. */
			imap_log(s, POSTERN_LOG_DEBUG, "IDLE: cannot watch "
			         "the mailbox of %s; checking every %lld ms",
			         s->user, imap_cfg.idle_poll_ms);
			s->idle_poll = imap_host->timer_add(
				(unsigned)imap_cfg.idle_poll_ms,
				idle_poll_fired, s);
		}
		/* What changed since the last command comes at once. */
		idle_sync(s);
	}
}

static void
idle_end_done(struct imap_job *j)
{
	imap_reply(j->s, j->tag, "OK", "IDLE terminated");
}

/* The line after IDLE: DONE ends it, anything else is an error. */
static void
idle_line(struct imap_session *s, const char *line, size_t len)
{
	struct imap_job *j;

	s->idling = 0;
	idle_stop_poll(s);
	imap_host->conn_set_idle(s->conn, (unsigned)imap_cfg.idle_ms);
	if (len != 4 || strncasecmp(line, "DONE", 4) != 0) {
		imap_reply(s, s->idle_tag, "BAD", "Expected DONE");
		return;
	}
	if (s->mb == NULL) {
		imap_reply(s, s->idle_tag, "OK", "IDLE terminated");
		return;
	}
	j = imap_job_new(s, s->idle_tag, 0);
	j->sync = 1;
	imap_job_run(j, NULL, idle_end_done);
}

/* ---- reading ----------------------------------------------------------*/

/* A plain line arrived where the session waits for one that is not a
 * command (SASL response, IDLE's DONE). */
static void
special_line(struct imap_session *s)
{
	const char *line = s->reader.buf != NULL ? s->reader.buf : "";
	size_t len = s->reader.len;

	s->in_command = 1;
	if (s->idling)
		idle_line(s, line, len);
	else
		imap_auth_line(s, line, len);
	if (s->in_command && s->job == NULL &&
	    (s->sasl == NULL || s->sasl_wait_line))
		imap_command_finish(s);
}

/* The command rate: a token bucket of commands_per_sec, bursts of four
 * seconds' worth.  When it is empty, reading pauses until a timer. */
static unsigned throttle_fired(void *arg);

static int
rate_ok(struct imap_session *s)
{
	uint64_t now = imap_host->now_ms();
	double rate = (double)imap_cfg.commands_per_sec;

	if (rate <= 0)
		return 1;
	s->tokens += (double)(now - s->tokens_ms) * rate / 1000.0;
	if (s->tokens > rate * 4)
		s->tokens = rate * 4;
	s->tokens_ms = now;
	if (s->tokens >= 1)
		return 1;
	imap_host->conn_pause(s->conn);
	s->throttle = imap_host->timer_add((unsigned)(1000.0 / rate) + 1,
	                                   throttle_fired, s);
	return 0;
}

static unsigned
throttle_fired(void *arg)
{
	struct imap_session *s = arg;

	s->throttle = NULL;
	if (s->conn != NULL && s->job == NULL)
		imap_host->conn_resume(s->conn);
	return 0;
}

/* Commands answered on the loop (imap_job_run_here) take no thread hop
 * that would let other sessions in between: after this many in one read
 * callback the session waits a loop turn, so a client pipelining
 * thousands of FETCH FLAGS cannot hold the worker. */
#define COMMANDS_PER_TURN 4

static void
yield_turn(struct imap_session *s)
{
	imap_host->conn_pause(s->conn);
	s->throttle = imap_host->timer_add(0, throttle_fired, s);
}

static int
too_many_errors(struct imap_session *s)
{
	if (s->bad_in_row < (unsigned)imap_cfg.max_bad_commands)
		return 0;
	imap_log(s, POSTERN_LOG_NOTICE, "%u bad commands in a row: "
	         "disconnecting", s->bad_in_row);
	imap_host->conn_printf(s->conn, "* BYE Too many invalid commands\r\n");
	imap_host->conn_close(s->conn);
	return 1;
}

/* A whole command (or special line) is in the reader. */
static void
handle_command(struct imap_session *s)
{
	if (s->idling || s->sasl_wait_line) {
		special_line(s);
		return;
	}
	s->in_command = 1;
	command_run(s);
	if (s->in_command && s->job == NULL && s->sasl == NULL)
		imap_command_finish(s);
}

static void
on_read(postern_conn_t *c, void *arg)
{
	struct imap_session *s = arg;
	const void *data;
	size_t len, used;
	enum imap_read ev;
	unsigned turn = 0;

	while (s->job == NULL && s->throttle == NULL && s->conn != NULL &&
	       (s->sasl == NULL || s->sasl_wait_line) &&
	       s->state != IMAP_LOGOUT) {
		if (!rate_ok(s))
			return;
		if (imap_host->conn_peek(c, &data, &len) != POSTERN_OK)
			return;
		ev = imap_reader_feed(&s->reader, data, len, &used);
		if (ev == IMAP_READ_SPILL)
			spill_append(s);
		imap_host->conn_consume(c, used);
		switch (ev) {
		case IMAP_READ_AGAIN:
			break;
		case IMAP_READ_SPILL:
			spill_flush_if_needed(s);
			break;
		case IMAP_READ_CONTINUE:
			imap_host->conn_printf(c, "+ Ready for literal "
			                          "data\r\n");
			break;
		case IMAP_READ_BAD:
			if (s->sasl_wait_line) {
				/* An unreadable SASL response (too long, NUL):
				 * cancel the exchange, as "*" would. */
				s->reader.len = 0;
				imap_reader_reset(&s->reader);
				(void)imap_reader_feed(&s->reader, "*\n", 2,
				                       &used);
				special_line(s);
				break;
			}
			if (s->idling) {
				/* Not DONE: IDLE ends with a BAD. */
				special_line(s);
				break;
			}
			imap_reply(s, s->reader.tag, "BAD", "%s%s%s%s",
			           s->reader.code ? "[" : "",
			           s->reader.code ? s->reader.code : "",
			           s->reader.code ? "] " : "",
			           s->reader.error);
			if (too_many_errors(s))
				return;
			break;
		case IMAP_READ_FATAL:
			imap_log(s, POSTERN_LOG_NOTICE, "closing: %s",
			         s->reader.error);
			imap_host->conn_printf(c, "* BYE %s\r\n",
			                       s->reader.error);
			imap_host->conn_close(c);
			return;
		case IMAP_READ_COMMAND:
			s->tokens -= 1;
			handle_command(s);
			if (too_many_errors(s))
				return;
			if (++turn >= COMMANDS_PER_TURN && s->job == NULL &&
			    s->throttle == NULL && s->conn != NULL &&
			    s->state != IMAP_LOGOUT) {
				yield_turn(s);
				return;
			}
			break;
		}
	}
}

/* ---- end of session ---------------------------------------------------*/

struct close_arg {
	postern_mailbox_t *mb;
	postern_store_t *store;
};

static void
close_work(struct imap_job *j)
{
	struct close_arg *a = j->arg;

	if (a->mb != NULL)
		imap_storage->close(a->mb);
	if (a->store != NULL)
		imap_storage->store_close(a->store);
}

static void
close_done(void *arg, int cancelled)
{
	struct imap_job *j = arg;
	struct imap_session *s = j->s;

	(void)cancelled;
	job_free(j);
	imap_searchres_free(s);
	imap_updates_free(s);
	free(s->user);
	free(s);
}

static void
close_job_work(void *arg)
{
	close_work(arg);
}

static void
session_release(struct imap_session *s)
{
	struct imap_job *j;
	struct close_arg *a;

	if (s->job != NULL)
		return; /* its done calls us again */
	if (s->sasl != NULL) {
		imap_host->sasl_free(s->sasl);
		s->sasl = NULL;
	}
	if (s->throttle != NULL) {
		imap_host->timer_cancel(s->throttle);
		s->throttle = NULL;
	}
	idle_stop_poll(s);
	imap_userip_leave(s);
	spool_drop(s);
	imap_reader_free(&s->reader);
	imap_host->pool_destroy(s->cmd_pool);
	s->cmd_pool = NULL;
	if (s->mb == NULL && s->store == NULL) {
		imap_searchres_free(s);
		imap_updates_free(s);
		free(s->user);
		free(s);
		return;
	}
	imap_unwatch_selected(s);
	j = imap_job_new(s, "*", sizeof(*a));
	a = j->arg;
	a->mb = s->mb;
	a->store = s->store;
	s->mb = NULL;
	s->store = NULL;
	j->handle = imap_host->job_submit(close_job_work, close_done, j);
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct imap_session *s = arg;

	(void)c;
	(void)why;
	s->closed = 1;
	s->conn = NULL;
	s->on_drain = NULL;
	if (s->job != NULL && s->job->handle == NULL) {
		/* A FETCH step waiting for on_drain, or a step waiting for
		 * a heavy slot: never submitted. */
		heavy_unlink(s->job);
		job_free(s->job);
		s->job = NULL;
	} else if (s->job != NULL) {
		/* Queued: it will not run.  Running: it sees the flag
		 * between messages and stops early. */
		__atomic_store_n(&s->job->cancelled, 1, __ATOMIC_RELAXED);
		imap_host->job_cancel(s->job->handle);
	}
	session_release(s);
}

static int
on_timeout(postern_conn_t *c, void *arg)
{
	(void)arg;
	imap_host->conn_printf(c, "* BYE Autologout; idle for too long\r\n");
	return 1;
}

static void
on_shutdown(postern_conn_t *c, void *arg)
{
	struct imap_session *s = arg;

	if (s->job != NULL) {
		/* Let it finish and answer; BYE follows (job_done).  The
		 * shutdown timeout bounds the wait. */
		s->stopping = 1;
		return;
	}
	imap_host->conn_printf(c, "* BYE Server shutting down\r\n");
	imap_host->conn_close(c);
}

static void
on_drain(postern_conn_t *c, void *arg)
{
	struct imap_session *s = arg;
	void (*fn)(struct imap_session *) = s->on_drain;

	(void)c;
	if (fn != NULL) {
		s->on_drain = NULL;
		fn(s);
	}
}

static const struct postern_conn_ops conn_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_drain = on_drain,
	.on_close = on_close,
	.on_timeout = on_timeout,
	.on_shutdown = on_shutdown,
};

void
imap_session_limits(struct imap_session *s,
                    struct imap_reader_limits *lim)
{
	lim->max_line = (size_t)imap_cfg.max_line;
	lim->literal_plus = imap_cfg.literal_plus;
	if (s->state == IMAP_NOTAUTH) {
		/* Before login nothing needs more than a password: a
		 * stranger must not make us hold max_literal_size. */
		lim->max_literal = IMAP_PREAUTH_LITERAL;
		lim->spill_literal = 0;
		lim->max_command = (size_t)imap_cfg.max_line * 2 +
		                   IMAP_PREAUTH_LITERAL * 2;
		return;
	}
	/* An APPEND's message over literal_memory goes to a file; no other
	 * literal may be that large, so a command in memory is bounded by
	 * literal_memory, not max_literal_size. */
	lim->max_literal = (uint64_t)imap_cfg.max_literal;
	lim->spill_literal = (uint64_t)imap_cfg.literal_memory;
	lim->max_command = (size_t)imap_cfg.literal_memory +
	                   (size_t)imap_cfg.max_line * 4;
}

void
imap_log(const struct imap_session *s, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_host->vlog_prefixed(s->logp, level, fmt, ap);
	va_end(ap);
}

void
imap_session_accept(postern_conn_t *c, void *arg)
{
	struct imap_session *s = calloc(1, sizeof(*s));
	struct imap_reader_limits lim;

	(void)arg;
	if (s == NULL) {
		imap_host->conn_close(c);
		return;
	}
	s->conn = c;
	imap_host->conn_log_prefix(c, s->logp, sizeof(s->logp) - 6);
	strcat(s->logp, ": imap");
	imap_session_limits(s, &lim);
	imap_reader_init(&s->reader, &lim);
	s->cmd_pool = imap_host->pool_create(1024);
	s->tokens = (double)imap_cfg.commands_per_sec * 4;
	s->tokens_ms = imap_host->now_ms();
	imap_host->conn_set_ops(c, &conn_ops, s);
	imap_host->conn_printf(c, "* OK [CAPABILITY %s] postern IMAP ready\r\n",
	                       imap_capabilities(s));
}
