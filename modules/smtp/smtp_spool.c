/*
 * smtp_spool.c - the message's spool I/O on job threads (the session
 * layer's, smtp_job_start): writing what outgrew spool_memory to the
 * spool file, making the file whole at the end of the data, and reading
 * the body back for the body filter stage.  The message's octets go into
 * the spool on the loop (host->spool_append, smtp_txn.c).  Each reports
 * to the state machine: SMTP_EV_SPOOLED (in DATA or BDAT: memory spilled
 * to the file; in SYNC: the message durable), SMTP_EV_READ (EOM_BODY).
 */
#include <string.h>
#include <unistd.h>

#include "smtp_session.h"

struct spool_ctx {
	postern_pool_t *pool;
	postern_spool_t *spool;
	int ok;
	int err;
	char *buf;
	uint64_t off;
	size_t len;
	ssize_t n;
	int read;            /* a read (SMTP_EV_READ), not a write */
};

static void
sync_work(postern_session_t *ss, void *st, void *arg)
{
	struct spool_ctx *c = arg;

	(void)ss;
	(void)st;
	c->ok = smtp_host->spool_flush(c->spool) == 0;
	if (!c->ok)
		smtp_host->log(smtp_self, POSTERN_LOG_ERROR,
		               "smtp: cannot write the spool file in %s: %m",
		               smtp_host->dir(POSTERN_DIR_STATE));
}

/* The end of a write or a read: its next step, unless the client has
 * gone. */
static void
spool_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct spool_ctx *c = arg;
	int ran = status == POSTERN_OK;
	struct smtp_event ev = {
		.kind = c->read ? SMTP_EV_READ : SMTP_EV_SPOOLED,
		.status = c->ok && ran,
		.n = ran ? c->n : -1,
	};

	(void)ss;
	if (!smtp_session_gone(st, status))
		smtp_event(st, &ev);
	smtp_host->pool_destroy(c->pool);
}

void
smtp_spool_sync(struct smtp_session *s, int force)
{
	struct smtp_event done = { .kind = SMTP_EV_SPOOLED, .status = 1 };
	struct spool_ctx *c;
	postern_spool_t *sp = s->txn.spool;
	size_t mem_len = smtp_host->spool_memory(sp, NULL);

	/* Small messages stay in memory; a message that went to a file
	 * goes there whole at the end (force), so it is in one place. */
	if (mem_len == 0 ||
	    (mem_len < (size_t)smtp_cfg.spool_memory &&
	     !(force && smtp_host->spool_fd(sp) >= 0))) {
		smtp_event(s, &done);
		return;
	}
	c = smtp_job_ctx(sizeof(*c));
	c->spool = sp;
	smtp_job_start(s, sync_work, spool_done, c);
}

static void
read_work(postern_session_t *ss, void *st, void *arg)
{
	struct spool_ctx *c = arg;
	size_t got = 0;
	ssize_t n;

	(void)ss;
	(void)st;
	while (got < c->len) {
		n = pread(smtp_host->spool_fd(c->spool), c->buf + got,
		          c->len - got, (off_t)(c->off + got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	c->n = got == c->len ? (ssize_t)got : -1;
}

void
smtp_spool_read(struct smtp_session *s, uint64_t off, char *buf, size_t len)
{
	struct smtp_event done = { .kind = SMTP_EV_READ, .n = (ssize_t)len };
	struct spool_ctx *c;
	postern_spool_t *sp = s->txn.spool;
	const char *mem;

	if (smtp_host->spool_fd(sp) < 0) {
		smtp_host->spool_memory(sp, &mem);
		memcpy(buf, mem + off, len);
		smtp_event(s, &done);
		return;
	}
	c = smtp_job_ctx(sizeof(*c));
	c->spool = sp;
	c->buf = buf;
	c->off = off;
	c->len = len;
	c->n = -1;
	c->read = 1;
	smtp_job_start(s, read_work, spool_done, c);
}

