/*
 * imap_session.c - IMAP on the host's session layer (postern/session.h):
 * the parser that cuts commands and their literals, the states of RFC
 * 3501 section 3, the command table, the one job a session may have in
 * flight, untagged updates, IDLE, and what a session frees.
 *
 * The host owns the listeners, the session's lifetime (it outlives the
 * connection while a job runs), reading lines in order, the budgets
 * (BAD replies in a row, failed logins, junk commands before login),
 * the idle and shutdown goodbyes.  A command line goes to
 * imap_parse(); when it announces a literal, the octets come through
 * session_read_octets (after a "+" for a synchronising one) and the
 * command's next line through imap_parse again, until the reader holds
 * the whole command.  The store and mailbox are closed in
 * imap_release(), on a job after the connection closed.
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
		imap_host->session_write(s->ss, b->p, b->len);
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
	/* max_bad_commands counts BAD replies in a row. */
	if (strcmp(status, "BAD") == 0)
		imap_host->session_error(s->ss);
	else
		imap_host->session_error_reset(s->ss);
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
	         "CONTEXT=SORT%s%s BINARY CATENATE UTF8=ACCEPT%s%s", lit,
	         /* RFC 9208: with STATUS DELETED and DELETED-STORAGE */
	         IMAP_STORAGE_HAS(quota_get)
	                 ? " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE" : "",
	         IMAP_STORAGE_HAS(append_many) ? " MULTIAPPEND" : "",
	         IMAP_STORAGE_HAS(watch_name) ? " NOTIFY" : "",
	         /* RFC 4467, with the store's access keys (storage 1.7) */
	         IMAP_STORAGE_HAS(access_key) ? " URLAUTH" : "");
	return buf;
}

/* ---- jobs -------------------------------------------------------------*/

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

	if (imap_job_cancelled(j))
		return; /* the client left while it waited for a thread */
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

static void job_submit(struct imap_job *j);

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
	job_submit(j);
	/* The hold it waited with: the job holds the session now. */
	imap_host->session_resume(j->s->ss);
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
	if (heavy_running < (unsigned)imap_cfg.heavy_jobs) {
		heavy_running++;
		job_submit(j);
		return;
	}
	/* Not submitted: the session waits held, and on_close frees it. */
	imap_host->session_pause(s->ss);
	*heavy_tail = j;
	heavy_tail = &j->heavy_next;
}

static void closed_cleanup(struct imap_session *s);
static void idle_resume(struct imap_session *s);

static void
session_job_work(postern_session_t *ss, void *st, void *arg)
{
	(void)ss;
	(void)st;
	job_work(arg);
}

/* On the loop, once: the job's output goes out, then its done. */
static void
session_job_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct imap_job *j = arg;
	struct imap_session *s = st;

	(void)ss;
	if (j->heavy)
		heavy_release();
	s->job = NULL;
	if (status == POSTERN_ERROR && !s->closed) {
		/* The worker is stopping and the job never ran. */
		imap_reply(s, j->tag, "NO", "[UNAVAILABLE] Server shutting "
		                            "down");
		imap_host->session_close(s->ss);
	}
	if (status != POSTERN_OK) {
		job_free(j);
		if (s->closed)
			closed_cleanup(s);
		return;
	}
	imap_write_buf(s, &j->out);
	j->out.len = 0;
	if (j->done != NULL)
		j->done(j);
	job_free(j);
	if (s->job != NULL || s->closed)
		return;
	/* Reading goes on (the host resumes) with the next command. */
	if (s->in_command && s->sasl == NULL) {
		imap_command_finish(s);
		return;
	}
	/* A change that came during another job (NOTIFY's) in IDLE. */
	idle_resume(s);
	imap_notify_kick(s);
}

static void idle_sync(struct imap_session *s);

static void
idle_resume(struct imap_session *s)
{
	if (s->idling && s->idle_dirty && s->job == NULL && !s->closed) {
		s->idle_dirty = 0;
		idle_sync(s);
	}
}

static void
job_submit(struct imap_job *j)
{
	j->submitted = 1;
	imap_host->session_job(j->s->ss, session_job_work, session_job_done,
	                       j);
}

void
imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
             void (*done)(struct imap_job *))
{
	j->work = work;
	j->done = done;
	j->s->job = j;
	job_submit(j);
}

/* The step job_step_go left waiting in s->job, once the output
 * has drained. */
static void
job_step_drained(struct imap_session *s)
{
	struct imap_job *j = s->job;

	if (j == NULL || s->closed || j->submitted)
		return;
	imap_job_run_heavy(j, j->work, j->done);
	imap_host->session_resume(s->ss); /* the hold it waited with */
}

/* The next step of a heavy job's command made and held: in s->job, not
 * submitted, the session paused. */
static struct imap_job *
job_hold_step(struct imap_job *j)
{
	struct imap_session *s = j->s;
	struct imap_job *next = imap_job_new(s, j->tag, 0);
	postern_pool_t *p = next->pool;

	/* The state (arg) lives in j's pool: both go to the next step. */
	next->arg = j->arg;
	next->cleanup = j->cleanup;
	j->cleanup = NULL;
	next->pool = j->pool;
	j->pool = p;
	next->work = j->work;
	next->done = j->done;
	/* Not submitted: on_close frees it (unless a stream runs for it).
	 * The session stays busy: no command runs meanwhile. */
	s->job = next;
	imap_host->session_pause(s->ss);
	return next;
}

/* A held step runs: at once, or when the output has drained. */
static void
job_step_go(struct imap_job *next)
{
	struct imap_session *s = next->s;

	if (imap_host->conn_output_pending(s->conn) >
	    (size_t)imap_cfg.fetch_batch) {
		if (imap_host->log_enabled(POSTERN_LOG_DEBUG))
			imap_log(s, POSTERN_LOG_DEBUG, "%s waits for the "
			         "client to read %zu octets", next->tag,
			         imap_host->conn_output_pending(s->conn));
		s->on_drain = job_step_drained;
		return;
	}
	imap_job_run_heavy(next, next->work, next->done);
	imap_host->session_resume(s->ss); /* the hold it waited with */
}

void
imap_job_next_output_step(struct imap_job *j)
{
	job_step_go(job_hold_step(j));
}

/* The host's stream for a held step ended (on the loop). */
static void
job_streamed(void *arg, int status)
{
	struct imap_job *next = arg;
	struct imap_session *s = next->s;

	next->streaming = 0;
	next->streamed(next, status);
	if (status == POSTERN_OK && !s->closed) {
		job_step_go(next);
		imap_host->session_unref(s->ss);
		return;
	}
	/* The command ends here: the client has gone or is sent away
	 * (part of a literal is out).  If on_close came first it left the
	 * step to us. */
	s->job = NULL;
	job_free(next);
	if (s->closed)
		closed_cleanup(s);
	else if (status == POSTERN_ERROR)
		imap_host->session_close(s->ss);
	imap_host->session_resume(s->ss);
	imap_host->session_unref(s->ss);
}

void
imap_job_stream_step(struct imap_job *j,
                     const struct postern_stream_source *src,
                     void (*streamed)(struct imap_job *next, int status))
{
	struct imap_session *s = j->s;
	struct imap_job *next = job_hold_step(j);
	struct postern_stream_spec spec = {
		.size = sizeof(spec),
		.transform = POSTERN_STREAM_RAW,
	};
	int rc;

	next->streamed = streamed;
	next->streaming = 1;
	imap_host->session_ref(s->ss);
	rc = s->conn == NULL ? POSTERN_CLOSED :
	     imap_host->stream_start(s->conn, src, &spec, job_streamed, next);
	if (rc != POSTERN_OK)
		job_streamed(next, rc);
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
	{ "NOTIFY", ST_LOGGEDIN, 0, imap_cmd_notify },
	{ "GETQUOTA", ST_LOGGEDIN, 0, imap_cmd_getquota },
	{ "GETQUOTAROOT", ST_LOGGEDIN, 0, imap_cmd_getquotaroot },
	{ "SETQUOTA", ST_LOGGEDIN, 0, imap_cmd_setquota },
	{ "RESETKEY", ST_LOGGEDIN, 0, imap_cmd_resetkey },
	{ "GENURLAUTH", ST_LOGGEDIN, 0, imap_cmd_genurlauth },
	{ "URLFETCH", ST_LOGGEDIN, 0, imap_cmd_urlfetch },
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
	imap_notify_kick(s);
}

static const char *
state_text(enum imap_state st)
{
	return st == IMAP_NOTAUTH ? "not authenticated" :
	       st == IMAP_AUTH ? "authenticated" : "selected";
}

/* What imap_parse leaves the host's dispatch: the command and its
 * entry in the table. */
struct imap_dispatch {
	struct imap_cmd *c;
	const struct command *cmd;
};

/* A whole command is in the reader: its tag and name checked against
 * the table and the state.  The index of its entry, or
 * POSTERN_PARSE_NONE after a BAD (counted by imap_reply). */
static int
command_parse(struct imap_session *s, struct imap_dispatch *d)
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
		return POSTERN_PARSE_NONE;
	}
	memcpy(c->tag, tag.s, tag.len);
	c->tag[tag.len] = '\0';
	if (imap_arg_sp(&c->args) < 0 ||
	    imap_arg_atom(&c->args, &name) < 0) {
		imap_reply(s, c->tag, "BAD", "Missing command");
		return POSTERN_PARSE_NONE;
	}
	if (imap_str_is(&name, "UID")) {
		c->uid = 1;
		if (imap_arg_sp(&c->args) < 0 ||
		    imap_arg_atom(&c->args, &name) < 0) {
			imap_reply(s, c->tag, "BAD", "UID needs a command");
			return POSTERN_PARSE_NONE;
		}
	}
	cmd = command_find(&name);
	if (cmd == NULL || (c->uid && !cmd->uid_ok)) {
		imap_reply(s, c->tag, "BAD", "Unknown command %s%.*s",
		           c->uid ? "UID " : "",
		           (int)(name.len > 40 ? 40 : name.len), name.s);
		return POSTERN_PARSE_NONE;
	}
	if (!(cmd->states & (1u << s->state))) {
		imap_reply(s, c->tag, "BAD", "%s is not valid in the %s state",
		           cmd->name, state_text(s->state));
		return POSTERN_PARSE_NONE;
	}
	c->name = cmd->name;
	d->c = c;
	d->cmd = cmd;
	return (int)(cmd - commands);
}

/* The host's dispatch: every entry of host_commands runs this. */
static void
command_run(postern_session_t *ss, void *st, void *arg)
{
	struct imap_session *s = st;
	struct imap_dispatch *d = arg;

	(void)ss;
	imap_searchres_attach(d->c);
	d->cmd->fn(d->c);
	if (s->in_command && s->job == NULL && s->sasl == NULL)
		imap_command_finish(s);
}

/* ---- IDLE (RFC 2177) --------------------------------------------------*/

static void idle_line(postern_session_t *ss, void *st,
                      const struct postern_line *l);

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

	if (s->closed)
		return;
	if (!s->idling) {
		/* Between commands: NOTIFY's, if it asked (RFC 5465). */
		(void)imap_notify_selected_changed(s);
		return;
	}
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
	imap_host->session_take_lines(s->ss, idle_line);
	s->idling = 1;
	s->idle_dirty = 0;
	/* RFC 2177: at least 29 minutes before a server may log out an
	 * idle client; we give 30. */
	if (ms < 30 * 60 * 1000)
		ms = 30 * 60 * 1000;
	imap_host->conn_set_idle(s->conn, ms);
	imap_host->session_reply(s->ss, "+ idling");
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

/* The line after IDLE: DONE ends it, anything else (a line too long
 * or with a NUL too) is an error. */
static void
idle_line(postern_session_t *ss, void *st, const struct postern_line *l)
{
	struct imap_session *s = st;
	struct imap_job *j;

	imap_host->session_take_lines(ss, NULL);
	s->idling = 0;
	idle_stop_poll(s);
	imap_host->conn_set_idle(s->conn, (unsigned)imap_cfg.idle_ms);
	if (l->len != 4 || strncasecmp(l->data, "DONE", 4) != 0) {
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

/* The command rate: a token bucket of commands_per_sec, bursts of four
 * seconds' worth.  When it is empty, the session is held until a timer
 * (the line that found it empty is given back to the host). */
static unsigned
throttle_fired(void *arg)
{
	struct imap_session *s = arg;

	s->throttle = NULL;
	imap_host->session_resume(s->ss);
	return 0;
}

static int
rate_ok(struct imap_session *s, const struct postern_line *l)
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
	imap_host->session_hold_line(s->ss, l);
	imap_host->session_pause(s->ss);
	s->throttle = imap_host->timer_add((unsigned)(1000.0 / rate) + 1,
	                                   throttle_fired, s);
	return 0;
}

/* What the reader found, other than a whole command. */
static int
reader_event(struct imap_session *s, enum imap_read ev)
{
	struct imap_reader *r = &s->reader;

	switch (ev) {
	case IMAP_READ_CONTINUE:
		imap_host->session_reply(s->ss, "+ Ready for literal data");
		break;
	case IMAP_READ_BAD:
		imap_reply(s, r->tag, "BAD", "%s%s%s%s",
		           r->code ? "[" : "", r->code ? r->code : "",
		           r->code ? "] " : "", r->error);
		return -1;
	case IMAP_READ_FATAL:
		imap_log(s, POSTERN_LOG_NOTICE, "closing: %s", r->error);
		imap_host->session_reply(s->ss, "* BYE %s", r->error);
		imap_host->session_close(s->ss);
		return -1;
	case IMAP_READ_AGAIN:
	case IMAP_READ_COMMAND:
	case IMAP_READ_SPILL:
		break;
	}
	return 0;
}

static void literal_octets(postern_session_t *ss, void *st,
                           const void *data, size_t len, int last);

/* protocol->parse: a line of a command.  The reader takes it (with
 * its LF: lines reach us without their terminator); a literal it
 * announces comes through session_read_octets, the line after it here
 * again; a whole command is checked and handed to the host's dispatch. */
static int
imap_parse(postern_session_t *ss, void *st, const struct postern_line *l,
           void *cmd)
{
	struct imap_session *s = st;
	struct imap_reader *r = &s->reader;
	enum imap_read ev;
	size_t used;
	int i;

	if (!imap_reader_busy(r)) {
		if (s->state == IMAP_LOGOUT)
			return POSTERN_PARSE_NONE;
		if (!rate_ok(s, l))
			return POSTERN_PARSE_NONE;
	}
	if (l->flags & POSTERN_LINE_TOOLONG) {
		/* Longer than the input buffer: the host dropped it. */
		ev = imap_reader_abort(r, "command line too long");
	} else {
		ev = imap_reader_feed(r, l->data, l->len, &used);
		if (ev == IMAP_READ_AGAIN)
			ev = imap_reader_feed(r, "\n", 1, &used);
	}
	if (ev != IMAP_READ_COMMAND) {
		if (reader_event(s, ev) == 0 && r->literal_left > 0)
			imap_host->session_read_octets(ss, r->literal_left,
			                               literal_octets);
		return POSTERN_PARSE_NONE;
	}
	s->tokens -= 1;
	s->in_command = 1;
	i = command_parse(s, cmd);
	if (i == POSTERN_PARSE_NONE)
		imap_command_finish(s);
	return i;
}

/* A literal's octets, as they arrive: into the reader, or (an APPEND's
 * message over literal_memory) into the session's spool. */
static void
literal_octets(postern_session_t *ss, void *st, const void *data,
               size_t len, int last)
{
	struct imap_session *s = st;
	const char *p = data;
	enum imap_read ev;
	size_t used;

	(void)ss;
	(void)last;
	while (len > 0) {
		ev = imap_reader_feed(&s->reader, p, len, &used);
		if (ev == IMAP_READ_SPILL)
			spill_append(s);
		p += used;
		len -= used;
		if (ev == IMAP_READ_FATAL) {
			(void)reader_event(s, ev);
			return;
		}
	}
	spill_flush_if_needed(s);
}

/* ---- end of session ---------------------------------------------------*/

static void
imap_on_close(postern_session_t *ss, void *st, enum postern_close_reason why)
{
	struct imap_session *s = st;

	(void)ss;
	(void)why;
	s->closed = 1;
	s->conn = NULL;
	s->on_drain = NULL;
	if (s->job != NULL && s->job->streaming) {
		/* The host's stream for a FETCH step: its done comes (now or
		 * once its reader returned) and cleans up. */
		return;
	} else if (s->job != NULL && !s->job->submitted) {
		/* A FETCH step waiting for on_drain, or a step waiting for
		 * a heavy slot: never submitted. */
		heavy_unlink(s->job);
		job_free(s->job);
		s->job = NULL;
	} else if (s->job != NULL) {
		/* Waiting for a thread: it will not run its work.  Running:
		 * it sees the flag between messages and stops early. */
		__atomic_store_n(&s->job->cancelled, 1, __ATOMIC_RELAXED);
		return; /* its done cleans up */
	}
	closed_cleanup(s);
}

/* The connection has gone and no job runs: what lives on the loop
 * goes (the store and mailbox are closed by imap_release). */
static void
closed_cleanup(struct imap_session *s)
{
	if (s->sasl != NULL) {
		imap_host->sasl_free(s->sasl);
		s->sasl = NULL;
	}
	if (s->throttle != NULL) {
		imap_host->timer_cancel(s->throttle);
		s->throttle = NULL;
	}
	idle_stop_poll(s);
	imap_notify_free(s);
	imap_userip_leave(s);
	spool_drop(s);
	imap_reader_free(&s->reader);
	imap_host->pool_destroy(s->cmd_pool);
	s->cmd_pool = NULL;
	/* The watch lives on the loop. */
	imap_unwatch_selected(s);
}

/* protocol->release, on a pool thread: closing may write indexes. */
static void
imap_release(postern_session_t *ss, void *st)
{
	struct imap_session *s = st;

	(void)ss;
	if (s->orphan_msg != NULL)
		imap_storage->msg_close(s->orphan_msg);
	s->orphan_msg = NULL;
	if (s->mb != NULL)
		imap_storage->close(s->mb);
	if (s->store != NULL)
		imap_storage->store_close(s->store);
	s->mb = NULL;
	s->store = NULL;
}

static void
imap_free(postern_session_t *ss, void *st)
{
	struct imap_session *s = st;

	(void)ss;
	imap_searchres_free(s);
	imap_updates_free(s);
	free(s->mbname);
	free(s->user);
}

static void
imap_on_drain(postern_session_t *ss, void *st)
{
	struct imap_session *s = st;
	void (*fn)(struct imap_session *) = s->on_drain;

	(void)ss;
	if (fn != NULL) {
		s->on_drain = NULL;
		fn(s);
	}
}

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

/* protocol->on_start: the greeting names the capabilities of the
 * connection (STARTTLS, LOGINDISABLED), so it is no fixed reply. */
static void
imap_on_start(postern_session_t *ss, void *st)
{
	struct imap_session *s = st;
	struct imap_reader_limits lim;

	s->ss = ss;
	s->conn = imap_host->session_conn(ss);
	imap_host->conn_log_prefix(s->conn, s->logp, sizeof(s->logp) - 6);
	strcat(s->logp, ": imap");
	imap_session_limits(s, &lim);
	imap_reader_init(&s->reader, &lim);
	s->cmd_pool = imap_host->pool_create(1024);
	s->tokens = (double)imap_cfg.commands_per_sec * 4;
	s->tokens_ms = imap_host->now_ms();
	imap_host->session_reply(ss, "* OK [CAPABILITY %s] postern IMAP ready",
	                         imap_capabilities(s));
}

/* The host's command table: the entries of `commands`, in order, all
 * run by command_run.  CAPABILITY, NOOP and ID cost nothing and are no
 * errors before the login: they count against the listener's
 * junk_command_limit. */
static struct postern_command host_commands[sizeof(commands) /
                                            sizeof(commands[0])];

struct postern_protocol imap_protocol = {
	.size = sizeof(struct postern_protocol),
	.name = "imap",
	/* Commands answered on the loop (imap_job_run_here) take no
	 * thread hop that would let other sessions in between: after this
	 * many lines in one read callback the session waits a loop turn,
	 * so a client pipelining thousands of FETCH FLAGS cannot hold the
	 * worker. */
	.max_commands_per_read = 4,
	.goodbye = "* BYE Server shutting down",
	.timeout = "* BYE Autologout; idle for too long",
	.too_many_errors = "* BYE Too many invalid commands",
	.too_many_logins = "* BYE Too many failed logins",
	.too_many_junk = "* BYE Too many commands before login",
	.session_size = sizeof(struct imap_session),
	.command_size = sizeof(struct imap_dispatch),
	.commands = host_commands,
	.ncommands = sizeof(host_commands) / sizeof(host_commands[0]),
	.parse = imap_parse,
	.on_start = imap_on_start,
	.on_drain = imap_on_drain,
	.on_close = imap_on_close,
	.release = imap_release,
	.free = imap_free,
};

void
imap_protocol_init(void)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		host_commands[i].name = commands[i].name;
		host_commands[i].run = command_run;
		if (commands[i].fn == imap_cmd_capability ||
		    commands[i].fn == imap_cmd_noop ||
		    commands[i].fn == imap_cmd_id)
			host_commands[i].flags = POSTERN_CMD_JUNK_UNTIL_LOGIN;
	}
}
