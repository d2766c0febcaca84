/*
 * smtp_burl.c - BURL (RFC 4468): a chunk of the message that the server
 * takes from a URLAUTH-authorized IMAP URL (RFC 4467) of its own store
 * instead of from the client, on submission listeners after AUTH.
 *
 * "BURL imap-url [LAST]" is a chunk as BDAT's are (RFC 4468 3.2): it
 * runs where the machine's rules let a chunk run (RCPT, CHUNKED), the
 * first one goes through the data stage (BDAT_HOOK), BDAT and BURL
 * chunks mix in one message, DATA after either is refused, and the
 * chunk ends through smtp_chunk_end as BDAT's do (LAST: the end of the
 * message).  Its state is BURL: the URL is resolved on a session job by
 * the urlauth service the imap module publishes (postern/urlauth.h, the
 * code URLFETCH uses; its access identifier must be "submit+<the SMTP
 * login>", "authuser" or "anonymous"), which feeds the octets into the
 * transaction's reader and spool from the job (smtp_chunk_feed_job: a
 * large part goes to the spool file as it comes, never whole in
 * memory).  The job reports SMTP_EV_FETCHED, handled in the BURL state
 * (smtp_on_burl_fetched).  A URL that does not resolve gets 554 5.6.6
 * whatever is wrong with it, and fails the message (RFC 4468 3.2): later
 * chunks get 503 until RSET, and a LAST one ends the transaction.
 *
 * A client that leaves during the fetch: the session layer tells the
 * job's done (POSTERN_CLOSED), which reports nothing and frees what the
 * job took; the transaction goes with the session (protocol->free, after
 * the job).
 */
#include <string.h>

#include "smtp_session.h"

struct burl_job {
	postern_pool_t *pool;        /* first: smtp_job_ctx */
	struct postern_smtp_txn *t;  /* fed from the job */
	char *url;                   /* the job's copies */
	size_t len;
	char *submitter;
	uint64_t max;                /* octets the message may still take */
	uint64_t total;
	enum postern_urlauth_status rc;
	int write_failed;
};

int
smtp_burl_offered(const struct smtp_session *s)
{
	return smtp_urlauth != NULL && s->lst->mode != SMTP_MODE_MX &&
	       s->lst->auth != SMTP_AUTH_OFF;
}

const char *
smtp_burl_keyword(const struct smtp_session *s)
{
	if (!smtp_burl_offered(s))
		return NULL;
	/* RFC 4468 3.1: the arguments may change after AUTH; without
	 * them BURL "is supported but authentication is required". */
	return s->auth_user != NULL ? "BURL imap" : "BURL";
}

/* ---- the job ------------------------------------------------------------ */

static int
burl_out(void *arg, const void *data, size_t len)
{
	struct burl_job *c = arg;

	if (smtp_chunk_feed_job(c->t, data, len) < 0) {
		smtp_log_txn(c->t->logp, POSTERN_LOG_ERROR, "BURL: cannot "
		             "write the spool file in %s: %m",
		             smtp_host->dir(POSTERN_DIR_STATE));
		c->write_failed = 1;
		return -1;
	}
	return 0;
}

static void
burl_work(postern_session_t *ss, void *st, void *arg)
{
	struct burl_job *c = arg;

	(void)ss;
	(void)st;
	c->rc = smtp_urlauth->fetch(c->url, c->len, c->submitter, c->max,
	                            burl_out, c, &c->total);
}

static void
burl_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct burl_job *c = arg;
	struct smtp_event ev = {
		.kind = SMTP_EV_FETCHED,
		.status = c->rc,
		.n = c->write_failed ? -1 : (ssize_t)c->total,
	};

	(void)ss;
	if (!smtp_session_gone(st, status))
		smtp_event(st, &ev);
	else
		/* The transaction goes with the session (protocol->free
		 * comes after this job): nothing to deliver, no reply. */
		smtp_log_txn(c->t->logp, POSTERN_LOG_INFO, "BURL: the client "
		             "left during the fetch (%llu octets not kept)",
		             (unsigned long long)c->total);
	smtp_host->pool_destroy(c->pool);
}

void
smtp_burl_fetch(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;
	uint64_t limit = (uint64_t)smtp_cfg.max_message_size;
	struct burl_job *c;

	/* The data stage refused the first chunk: nothing to fetch. */
	if (s->bdat_refusal.code != 0) {
		smtp_chunk_end(s);
		return;
	}
	c = smtp_job_ctx(sizeof(*c));
	c->t = t;
	c->url = smtp_host->pool_strndup(c->pool, s->burl_url, s->burl_len);
	c->len = s->burl_len;
	c->submitter = smtp_host->pool_strndup(c->pool, s->auth_user,
	                                       strlen(s->auth_user));
	c->max = t->size < limit ? limit - t->size : 0;
	/* What a job the worker's stop kept from running says. */
	c->rc = POSTERN_URLAUTH_TEMP;
	smtp_job_start(s, burl_work, burl_done, c);
}

/* BURL: the URL was resolved into the message, or not. */
void
smtp_on_burl_fetched(struct smtp_session *s, const struct smtp_event *ev)
{
	int ok = ev->n >= 0 && ev->status == POSTERN_URLAUTH_OK;

	smtp_session_resume(s);
	if (ev->n < 0)
		smtp_chunk_refuse(s, 451, "4.3.0",
		                  "local error writing the message");
	else if (ev->status == POSTERN_URLAUTH_TOOBIG)
		smtp_chunk_refuse(s, 552, "5.3.4", "message exceeds fixed "
		                  "maximum message size");
	else if (ev->status == POSTERN_URLAUTH_TEMP)
		smtp_chunk_refuse(s, 451, "4.4.1", "IMAP server unavailable");
	else if (!ok)
		smtp_chunk_refuse(s, 554, "5.6.6",
		                  "IMAP URL resolution failed");
	/* Octets may be in already: the message cannot be mended. */
	if (!ok)
		s->txn.bdat_failed = 1;
	smtp_log_txn(s->txn.logp, ok ? POSTERN_LOG_INFO : POSTERN_LOG_NOTICE,
	             "BURL %s, %lld octets%s", ok ? "resolved" : "failed",
	             (long long)ev->n, s->bdat_last ? " (LAST)" : "");
	smtp_chunk_end(s);
}

/* ---- the command -------------------------------------------------------- */

void
smtp_cmd_burl(struct smtp_session *s, const struct smtp_command *cmd,
              const struct smtp_rule *rule)
{
	struct postern_smtp_txn *t = &s->txn;
	struct smtp_error err;
	size_t n;
	int last;

	if (smtp_parse_burl(cmd->arg, cmd->arg_len, &n, &last, &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	s->bdat_last = last;
	s->bdat_size = 0;
	s->bdat_refusal.code = 0;
	s->burl_url = NULL;
	if (rule->kind == SMTP_RULE_REFUSE_CHUNK) {
		/* RFC 4468 3.2: without a recipient the URL is not
		 * resolved. */
		smtp_chunk_refuse(s, rule->code, rule->enhanced, rule->text);
		smtp_chunk_end(s);
		return;
	}
	/* RFC 4954 6: the command needs a login (a submission listener
	 * with auth = optional may have taken MAIL and RCPT without). */
	if (s->auth_user == NULL) {
		smtp_reply_error(s, 530, "5.7.0", "authentication required");
		return;
	}
	s->burl_url = smtp_host->pool_strndup(t->pool, cmd->arg, n);
	s->burl_len = n;
	smtp_chunk_begin(s);
}
