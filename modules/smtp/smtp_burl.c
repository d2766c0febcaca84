/*
 * smtp_burl.c - BURL (RFC 4468): a chunk of the message taken from a
 * URLAUTH-authorized IMAP URL (RFC 4467) of this server instead of
 * from the client, on submission listeners after AUTH.
 *
 * "BURL imap-url [LAST]" is a BDAT chunk whose octets the server
 * fetches itself: the transaction goes through smtp_chunk_start and
 * smtp_chunk_end as BDAT's chunks do, so BURL and BDAT mix in one
 * message (RFC 4468 3) and DATA after either is refused.  The URL is
 * resolved by the urlauth service (postern/urlauth.h) the IMAP module
 * publishes, with the code IMAP's URLFETCH uses: its access identifier
 * must be "submit+<the SMTP login>" (or authuser, anonymous).  A URL
 * that does not resolve gets 554 5.6.6 whatever is wrong with it, and
 * the message fails (an RSET starts over).
 *
 * The fetch runs on the session's job, the session paused, and feeds
 * the transaction's reader there (smtp_chunk_feed_job): a large part
 * goes to the spool file as it comes, never whole in memory.
 */
#include <string.h>
#include <strings.h>

#include "smtp_session.h"

/* Longer URLs do not resolve (the IMAP side refuses them too). */
#define BURL_MAX_URL 4096

struct burl_ctx {
	postern_pool_t *pool;        /* first: smtp_job_ctx */
	struct smtp_session *s;
	char *url;
	size_t len;
	char *submitter;
	uint64_t max;
	enum postern_urlauth_status rc;
	int write_failed;
};

int
smtp_burl_offered(const struct smtp_session *s)
{
	return smtp_urlauth != NULL && s->auth_user != NULL &&
	       s->lst->mode != SMTP_MODE_MX && s->lst->auth != SMTP_AUTH_OFF;
}

static int
burl_out(void *arg, const void *data, size_t len)
{
	struct burl_ctx *c = arg;

	if (smtp_chunk_feed_job(&c->s->txn, data, len) < 0) {
		c->write_failed = 1;
		return -1;
	}
	return 0;
}

static void
burl_work(postern_session_t *ss, void *st, void *arg)
{
	struct burl_ctx *c = arg;
	uint64_t total;

	(void)ss;
	(void)st;
	c->rc = smtp_urlauth->fetch(c->url, c->len, c->submitter, c->max,
	                            burl_out, c, &total);
}

static void
refuse(struct smtp_session *s, unsigned code, const char *enhanced,
       const char *text)
{
	smtp_chunk_refuse(s, code, enhanced, text);
	/* Octets may be in already: the message cannot be mended. */
	s->txn.bdat_failed = 1;
}

static void
burl_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct smtp_session *s = st;
	struct burl_ctx *c = arg;

	(void)ss;
	if (smtp_session_gone(s, status)) {
		smtp_host->pool_destroy(c->pool);
		return;
	}
	if (c->write_failed)
		refuse(s, 451, "4.3.0", "local error writing the message");
	else if (c->rc == POSTERN_URLAUTH_TOOBIG)
		refuse(s, 552, "5.3.4", "message exceeds fixed maximum "
		       "message size");
	else if (c->rc == POSTERN_URLAUTH_TEMP)
		refuse(s, 451, "4.4.1", "IMAP server unavailable");
	else if (c->rc != POSTERN_URLAUTH_OK)
		refuse(s, 554, "5.6.6", "IMAP URL resolution failed");
	smtp_log_txn(s->txn.logp, POSTERN_LOG_INFO, "BURL %s%s",
	             c->rc == POSTERN_URLAUTH_OK && !c->write_failed
	                 ? "resolved" : "failed",
	             s->bdat_last ? " (LAST)" : "");
	smtp_host->pool_destroy(c->pool);
	smtp_session_resume(s);
	smtp_chunk_end(s);
}

/* s->chunk_read: the chunk's octets from the URL, on a job. */
static void
burl_read(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;
	uint64_t limit = (uint64_t)smtp_cfg.max_message_size;
	struct burl_ctx *c;

	if (s->bdat_refusal.code != 0) {
		smtp_chunk_end(s);
		return;
	}
	c = smtp_job_ctx(sizeof(*c));
	c->s = s;
	c->url = smtp_host->pool_strndup(c->pool, s->burl_url, s->burl_len);
	c->len = s->burl_len;
	c->submitter = smtp_host->pool_strndup(c->pool, s->auth_user,
	                                       strlen(s->auth_user));
	c->max = t->size < limit ? limit - t->size : 0;
	smtp_job_start(s, burl_work, burl_done, c);
}

/* "imap-url [LAST]": the URL's extent, 0; -1 when not that. */
static int
burl_parse(const char *arg, size_t len, size_t *url_len, int *last)
{
	const char *sp = memchr(arg, ' ', len);
	size_t n = sp != NULL ? (size_t)(sp - arg) : len;

	*last = 0;
	if (n == 0)
		return -1;
	if (sp != NULL) {
		if (len - n - 1 != 4 || strncasecmp(sp + 1, "LAST", 4) != 0)
			return -1;
		*last = 1;
	}
	*url_len = n;
	return 0;
}

void
smtp_cmd_burl(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct postern_smtp_txn *t = &s->txn;
	size_t n;
	int last;

	if (smtp_urlauth == NULL || s->lst->mode == SMTP_MODE_MX) {
		smtp_reply_error(s, 502, "5.5.1", "BURL not available here");
		return;
	}
	if (s->auth_user == NULL) {
		smtp_reply_error(s, 530, "5.7.0", "Authentication required");
		return;
	}
	if (burl_parse(cmd->arg, cmd->arg_len, &n, &last) < 0) {
		smtp_reply_error(s, 501, "5.5.4", "syntax: BURL imap-url "
		                 "[LAST]");
		return;
	}
	s->bdat_last = last;
	s->bdat_size = 0;
	s->burl_url = NULL;
	s->burl_len = 0;
	/* Without a transaction the chunk is refused before it is read,
	 * and the URL is not needed. */
	if (t->pool != NULL && n <= BURL_MAX_URL) {
		s->burl_url = smtp_host->pool_strndup(t->pool, cmd->arg, n);
		s->burl_len = n;
	} else if (t->pool != NULL) {
		s->burl_url = "";     /* resolves to nothing: 554 */
	}
	s->chunk_read = burl_read;
	smtp_chunk_start(s);
}
