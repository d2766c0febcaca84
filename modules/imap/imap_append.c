/*
 * imap_append.c - APPEND (RFC 3501 6.3.11) with UIDPLUS's APPENDUID
 * (RFC 4315), MULTIAPPEND (RFC 3502: several messages, stored all or
 * none), literal8 (BINARY, RFC 3516) and CATENATE (RFC 4469: a message
 * made of TEXT parts and IMAP URLs).  The command is read whole first
 * (large literals in the session's spool); the messages are made and
 * stored on one job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "imap_url.h"

/* ---- APPEND (MULTIAPPEND RFC 3502) --------------------------------------*/

/* Messages in one APPEND: each is a file written and fsynced on one job,
 * so a client may not make a job of unbounded length.  So are the
 * CATENATE parts of one APPEND (each URL opens a message). */
#define APPEND_MAX_MESSAGES 1000
#define APPEND_MAX_CAT_PARTS 1000

struct append_arg {
	char *name;
	/* The messages, from the command's pool (it outlives the job):
	 * content in the reader's buffer, or (data NULL) at `offset` in
	 * the spool. */
	struct postern_append **msgs;
	size_t n, cap;
	uint64_t spooled;         /* octets of the spool taken so far */
	uint32_t *uids;
	uint32_t uidvalidity;
	postern_spool_t *spool;   /* the large messages, or NULL */
	int spool_failed;         /* ... that could not be written */
	size_t ncat;              /* CATENATE parts in all messages */
	/* Why a CATENATE failed: BADURL (its part) or TOOBIG. */
	const struct imap_cat_part *badurl;
	int toobig;
};

/* One message: what the store gets, and what BINARY needs. */
struct append_msg {
	struct postern_append m;  /* first: msgs[] point here */
	int convert;              /* literal8 with NUL octets */
	postern_spool_t *conv;    /* ... converted (imap_binary.c), or
	                             made by CATENATE */
	struct imap_cat_part *cat; /* CATENATE's parts, or NULL */
	size_t ncat, catcap;
};

static void
append_cleanup(struct imap_job *j)
{
	struct append_arg *a = j->arg;
	size_t i;

	imap_host->spool_free(a->spool);
	a->spool = NULL;
	for (i = 0; i < a->n; i++) {
		struct append_msg *am = (struct append_msg *)a->msgs[i];
		imap_host->spool_free(am->conv);
		am->conv = NULL;
	}
}

/* Messages sent as literal8 with NUL octets get base64 where needed. */
static int
append_convert(struct imap_job *j)
{
	struct append_arg *a = j->arg;
	struct append_msg *am;
	size_t i;

	postern_spool_t *made;
	int rc;

	for (i = 0; i < a->n; i++) {
		am = (struct append_msg *)a->msgs[i];
		if (!am->convert)
			continue;
		/* A CATENATE's result is read from its spool, then goes. */
		made = am->conv;
		rc = imap_binary_convert(&am->m, &am->conv, &j->err);
		imap_host->spool_free(made);
		if (rc < 0) {
			j->rc = -1;
			return -1;
		}
	}
	return 0;
}

/* CATENATE: each such message is made into a spool, after the
 * destination was found (a missing one is TRYCREATE, whatever the
 * URLs say). */
static int
append_catenate(struct imap_job *j)
{
	struct append_arg *a = j->arg;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct imap_cat_fail fail;
	struct append_msg *am;
	size_t i;

	if (a->ncat == 0)
		return 0;
	if (imap_storage->status_by_name(j->s->store, a->name, &st,
	                                 &j->err) < 0) {
		j->rc = -1;
		return -1;
	}
	for (i = 0; i < a->n; i++) {
		am = (struct append_msg *)a->msgs[i];
		if (am->cat == NULL)
			continue;
		if (imap_catenate(j->s, am->cat, am->ncat,
		                  a->spool != NULL ? imap_host->spool_fd(a->spool)
		                                   : -1,
		                  &am->conv, &fail, &j->err) < 0) {
			if (fail.badurl >= 0)
				a->badurl = &am->cat[fail.badurl];
			a->toobig = fail.toobig;
			j->rc = -1;
			return -1;
		}
		am->m.fd = imap_host->spool_fd(am->conv);
		am->m.data = NULL;
		am->m.offset = 0;
		am->m.length = imap_host->spool_size(am->conv);
	}
	return 0;
}

/* The spooled messages are read from the spool's file. */
static int
append_spool_ready(struct imap_job *j)
{
	struct append_arg *a = j->arg;
	size_t i;

	if (a->spool == NULL && !a->spool_failed)
		return 0;
	/* The rest of it to the file, then the store reads it from there. */
	if (!a->spool_failed && imap_host->spool_flush(a->spool) < 0) {
		imap_log(j->s, POSTERN_LOG_ERROR,
		         "APPEND: writing the spool in %s: %m",
		         imap_host->dir(POSTERN_DIR_STATE));
		a->spool_failed = 1;
	}
	if (a->spool_failed) {
		j->rc = -1;
		j->err.code = POSTERN_SE_TEMP;
		snprintf(j->err.text, sizeof(j->err.text),
		         "cannot write the message to a temporary file");
		return -1;
	}
	for (i = 0; i < a->n; i++)
		if (a->msgs[i]->data == NULL)
			a->msgs[i]->fd = imap_host->spool_fd(a->spool);
	return 0;
}

static void
append_work(struct imap_job *j)
{
	struct append_arg *a = j->arg;

	if (append_spool_ready(j) < 0 || append_catenate(j) < 0 ||
	    append_convert(j) < 0)
		return;
	if (a->n == 1)
		j->rc = imap_storage->append(j->s->store, a->name, a->msgs[0],
		                             &a->uids[0], &a->uidvalidity,
		                             &j->err);
	else
		j->rc = imap_storage->append_many(j->s->store, a->name,
		    (const struct postern_append *const *)a->msgs, a->n,
		    a->uids, &a->uidvalidity, &j->err);
}

/* NO [BADURL url] (RFC 4469 6): the URL as url-resp-text, without the
 * octets that cannot be there (CR, LF, NUL, "\\", "]", 0xFF). */
static void
badurl_reply(struct imap_job *j, const struct imap_cat_part *p)
{
	char url[256];
	size_t i, n = 0;
	unsigned char ch;

	for (i = 0; i < p->url_len && n < sizeof(url) - 1; i++) {
		ch = (unsigned char)p->url[i];
		if (ch != 0 && ch != '\r' && ch != '\n' && ch != '\\' &&
		    ch != ']' && ch != 0xff)
			url[n++] = (char)ch;
	}
	if (n == 0)
		url[n++] = '?';
	url[n] = '\0';
	imap_reply(j->s, j->tag, "NO", "[BADURL %s] %s", url, j->err.text);
}

static void
append_done(struct imap_job *j)
{
	struct append_arg *a = j->arg;
	struct imap_buf b = { 0 };

	if (j->rc < 0 && a->badurl != NULL) {
		badurl_reply(j, a->badurl);
		return;
	}
	if (j->rc < 0) {
		if (a->toobig)
			imap_reply(j->s, j->tag, "NO", "[TOOBIG] %s",
			           j->err.text);
		else if (j->err.code == POSTERN_SE_NONEXISTENT)
			imap_reply(j->s, j->tag, "NO", "[TRYCREATE] %s",
			           j->err.text);
		else
			imap_reply_storage_err(j->s, j->tag, &j->err);
		return;
	}
	imap_buf_uidset(&b, a->uids, a->n);
	imap_reply(j->s, j->tag, "OK", "[APPENDUID %u %s] Append completed",
	           a->uidvalidity, b.p);
	imap_buf_free(&b);
}

static int
month_index(const char *m)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (strncasecmp(m, months[i], 3) == 0)
			return i;
	return -1;
}

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d"). */
static int
parse_date_time(const struct imap_str *s, int64_t *when, int16_t *tz)
{
	char buf[40];
	int day, year, hh, mm, ss, zone, mon;
	char mname[4], sign;
	struct tm tm = { 0 };
	int tzmin;

	if (s->len >= sizeof(buf) || s->len < 26)
		return -1;
	memcpy(buf, s->s, s->len);
	buf[s->len] = '\0';
	if (sscanf(buf, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, mname, &year,
	           &hh, &mm, &ss, &sign, &zone) != 8)
		return -1;
	if ((mon = month_index(mname)) < 0 || day < 1 || day > 31 ||
	    hh > 23 || mm > 59 || ss > 60 || (sign != '+' && sign != '-') ||
	    year < 1970 || zone % 100 > 59)
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	tzmin = (zone / 100) * 60 + zone % 100;
	if (sign == '-')
		tzmin = -tzmin;
	*when = (int64_t)timegm(&tm) - (int64_t)tzmin * 60;
	*tz = (int16_t)tzmin;
	return 0;
}

/* A text part's literal or literal8 (its NULs make the message one to
 * convert), or a message's.  -1 with the reply sent. */
static int
append_literal(struct imap_cmd *c, struct append_arg *a,
               struct imap_str *data, int *nul8)
{
	struct imap_args *ar = &c->args;
	int literal8;

	ar->spill_ok = 1;   /* the octets may be in the session's spool */
	/* literal8 (RFC 3516): may hold NUL octets. */
	literal8 = imap_arg_try_char(ar, '~');
	if (imap_arg_peek(ar) != '{' || imap_arg_string(ar, data) < 0) {
		imap_reply(c->s, c->tag, "BAD", "APPEND: %s",
		           ar->error != NULL ? ar->error : "expected a literal");
		return -1;
	}
	if (data->nul && !literal8) {
		imap_reply(c->s, c->tag, "BAD", "APPEND: NUL octet in a "
		           "literal (send it as literal8, ~{n})");
		return -1;
	}
	*nul8 |= data->nul;
	if (data->literal == 2) {
		/* Spilled literals follow each other in the spool. */
		data->s = NULL;
		a->spooled += data->len;
	}
	return 0;
}

/* RFC 6855 4: "UTF8" SP "(" literal8 ")", a message whose header may
 * hold UTF-8, from a session that enabled UTF8=ACCEPT; called after
 * "UTF8 ".  -1 with the reply sent. */
static int
append_utf8(struct imap_cmd *c, struct append_arg *a, struct imap_str *data,
            int *nul8)
{
	struct imap_args *ar = &c->args;

	if (!(c->s->enabled & IMAP_ENABLED_UTF8)) {
		imap_reply(c->s, c->tag, "BAD", "APPEND: UTF8 needs ENABLE "
		           "UTF8=ACCEPT first");
		return -1;
	}
	if (imap_arg_char(ar, '(') < 0)
		goto bad;
	if (append_literal(c, a, data, nul8) < 0)
		return -1;
	if (imap_arg_char(ar, ')') < 0)
		goto bad;
	return 0;
bad:
	imap_reply(c->s, c->tag, "BAD", "APPEND: UTF8: %s", ar->error);
	return -1;
}

/* CATENATE's list after "CATENATE" (RFC 4469):
 * SP "(" cat-part *(SP cat-part) ")", cat-part TEXT SP literal,
 * URL SP astring or UTF8 SP "(" literal8 ")" (RFC 6855 4).  -1 with
 * the reply sent. */
static int
append_cat_list(struct imap_cmd *c, struct append_arg *a,
                struct append_msg *am)
{
	struct imap_args *ar = &c->args;
	struct imap_str w, v;
	struct imap_cat_part *p, *grown;

	if (imap_arg_sp(ar) < 0 || imap_arg_char(ar, '(') < 0)
		goto bad;
	do {
		if (imap_arg_atom(ar, &w) < 0 || imap_arg_sp(ar) < 0)
			goto bad;
		if (++a->ncat > APPEND_MAX_CAT_PARTS) {
			imap_reply(c->s, c->tag, "NO", "[LIMIT] APPEND: at most "
			           "%d CATENATE parts in one command",
			           APPEND_MAX_CAT_PARTS);
			return -1;
		}
		if (am->ncat == am->catcap) {
			am->catcap = am->catcap == 0 ? 4 : am->catcap * 2;
			grown = imap_host->pool_alloc(c->pool, am->catcap *
			                              sizeof(*grown));
			if (am->ncat > 0)
				memcpy(grown, am->cat, am->ncat * sizeof(*grown));
			am->cat = grown;
		}
		p = &am->cat[am->ncat];
		memset(p, 0, sizeof(*p));
		if (imap_str_is(&w, "TEXT") || imap_str_is(&w, "UTF8")) {
			if (imap_str_is(&w, "TEXT")
			    ? append_literal(c, a, &v, &am->convert) < 0
			    : append_utf8(c, a, &v, &am->convert) < 0)
				return -1;
			p->data = v.s;
			p->len = v.len;
			p->offset = a->spooled - (v.s == NULL ? v.len : 0);
		} else if (imap_str_is(&w, "URL")) {
			if (imap_arg_astring(ar, &v) < 0)
				goto bad;
			p->is_url = 1;
			p->url = v.s;
			p->url_len = v.len;
		} else {
			ar->error = "expected TEXT or URL";
			goto bad;
		}
		am->ncat++;
	} while (imap_arg_try_char(ar, ' '));
	if (imap_arg_char(ar, ')') < 0)
		goto bad;
	return 0;
bad:
	imap_reply(c->s, c->tag, "BAD", "APPEND: CATENATE: %s",
	           ar->error != NULL ? ar->error : "invalid arguments");
	return -1;
}

/* One append-message after its SP (RFC 3502): [flag-list SP]
 * [date-time SP] (literal / literal8 / CATENATE list), into a->msgs.
 * -1 with the reply sent. */
static int
append_message(struct imap_cmd *c, struct append_arg *a)
{
	struct imap_args *ar = &c->args;
	struct imap_str date, data, w;
	struct postern_append *m, **grown;
	struct append_msg *am;
	const char **kw = NULL;
	uint32_t flags = 0, nkw = 0;
	int64_t when = 0;
	int16_t tz = 0;

	if (imap_arg_peek(ar) == '(') {
		if (imap_parse_flag_list(c, &flags, &kw, &nkw, 0) < 0)
			return -1;
		if (imap_arg_sp(ar) < 0)
			goto bad;
	}
	if (imap_arg_peek(ar) == '"') {
		if (imap_arg_string(ar, &date) < 0 || imap_arg_sp(ar) < 0)
			goto bad;
		if (parse_date_time(&date, &when, &tz) < 0) {
			imap_reply(c->s, c->tag, "BAD", "APPEND: invalid date-time");
			return -1;
		}
	}
	if (a->n == APPEND_MAX_MESSAGES) {
		imap_reply(c->s, c->tag, "NO", "[LIMIT] APPEND: at most %d "
		           "messages in one command", APPEND_MAX_MESSAGES);
		return -1;
	}
	am = imap_host->pool_alloc(c->pool, sizeof(*am));
	memset(am, 0, sizeof(*am));
	m = &am->m;
	m->size = sizeof(*m);
	m->fd = -1;
	if (imap_arg_peek(ar) == 'C' || imap_arg_peek(ar) == 'c') {
		if (imap_arg_atom(ar, &w) < 0 || !imap_str_is(&w, "CATENATE")) {
			ar->error = "expected a literal or CATENATE";
			goto bad;
		}
		if (append_cat_list(c, a, am) < 0)
			return -1;
	} else {
		if (imap_arg_peek(ar) == 'U' || imap_arg_peek(ar) == 'u') {
			if (imap_arg_atom(ar, &w) < 0 ||
			    !imap_str_is(&w, "UTF8") || imap_arg_sp(ar) < 0) {
				ar->error = "expected a literal or UTF8";
				goto bad;
			}
			if (append_utf8(c, a, &data, &am->convert) < 0)
				return -1;
		} else if (append_literal(c, a, &data, &am->convert) < 0)
			return -1;
		if (data.len == 0) {
			imap_reply(c->s, c->tag, "NO", "APPEND of an empty "
			           "message");
			return -1;
		}
		m->data = data.s;
		m->length = data.len;
		if (data.s == NULL)
			m->offset = a->spooled - data.len;
	}
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 4 : a->cap * 2;
		grown = imap_host->pool_alloc(c->pool, a->cap * sizeof(*grown));
		if (a->n > 0)
			memcpy(grown, a->msgs, a->n * sizeof(*grown));
		a->msgs = grown;
	}
	m->flags = flags;
	m->keywords = kw;
	m->nkeywords = nkw;
	m->internal_date = when;
	m->internal_tz = tz;
	a->msgs[a->n++] = m;
	return 0;
bad:
	imap_reply(c->s, c->tag, "BAD", "APPEND: %s",
	           ar->error != NULL ? ar->error : "invalid arguments");
	return -1;
}

void
imap_cmd_append(struct imap_cmd *c)
{
	struct imap_args *ar = &c->args;
	struct imap_str mbox;
	struct append_arg tmp = { 0 }, *a;
	struct imap_job *j;
	char *name;
	int failed;

	if (imap_arg_sp(ar) < 0 || imap_arg_astring(ar, &mbox) < 0) {
		imap_reply(c->s, c->tag, "BAD", "APPEND: %s",
		           ar->error != NULL ? ar->error : "invalid arguments");
		return;
	}
	do {
		if (imap_arg_sp(ar) < 0) {
			imap_reply(c->s, c->tag, "BAD", "APPEND: %s",
			           ar->error);
			return;
		}
		if (append_message(c, &tmp) < 0)
			return;
	} while (!imap_arg_at_end(ar));
	if (tmp.n > 1 && !IMAP_STORAGE_HAS(append_many)) {
		imap_reply(c->s, c->tag, "BAD", "APPEND: one message at a "
		           "time (no MULTIAPPEND in this store)");
		return;
	}
	if ((name = imap_mailbox_arg(c, &mbox)) == NULL)
		return;
	/* The messages stay in the reader's buffer until the command is
	 * finished, after this job. */
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	*a = tmp;
	a->name = imap_host->pool_strndup(j->pool, name, strlen(name));
	a->uids = imap_host->pool_alloc(j->pool, a->n * sizeof(*a->uids));
	j->cleanup = append_cleanup;
	if (a->spooled > 0) {
		a->spool = imap_take_spool(c->s, &failed);
		a->spool_failed = a->spool == NULL || failed ||
		                  imap_host->spool_size(a->spool) != a->spooled;
	}
	j->sync = c->s->mb != NULL;
	/* Several messages (each written and fsynced) or a CATENATE (each
	 * URL opens a message) may keep a pool thread long: such a job
	 * waits for a heavy slot like FETCH and SEARCH steps, and the rest
	 * of the pool stays free for everyone's short commands. */
	if (a->n > 1 || a->ncat > 0)
		imap_job_run_heavy(j, append_work, append_done);
	else
		imap_job_run(j, append_work, append_done);
}
