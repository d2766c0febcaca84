/*
 * imap_urlauth.c - URLAUTH (RFC 4467): RESETKEY, GENURLAUTH and URLFETCH
 * with the INTERNAL mechanism.
 *
 * A URLAUTH URL ("imap://fred@host/INBOX;UIDVALIDITY=7/;UID=20/
 * ;SECTION=1.2;EXPIRE=...;URLAUTH=user+joe:INTERNAL:<token>") carries
 * its own authorisation: the token (imap_urlauth_token.c) is an HMAC of
 * the "rump" (the URL up to the access identifier) under the mailbox
 * access key, which the store keeps per user and mailbox (storage 1.7
 * access_key).  GENURLAUTH makes tokens for the session's own URLs;
 * RESETKEY forgets keys, so every URL made with them is void; URLFETCH
 * gives any logged-in user what a URL names when its token, expiry and
 * access identifier allow that user, and NIL otherwise: whatever is
 * wrong (syntax, token, key reset, expiry, access, no such message),
 * the client sees the same NIL, so it cannot probe which.
 *
 * "submit+name" URLs are for a submission server (BURL, RFC 4468); no
 * IMAP session is one, so URLFETCH gives NIL for them.
 *
 * URLFETCH runs in steps like FETCH: each sends about fetch_batch
 * octets, the next starts when the output drains; a large part is read
 * from the store in chunks and never held whole.  Between steps nothing
 * is kept open: a literal half sent is resumed by reopening the
 * message by name and UID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <postern/auth.h>

#include "imap.h"
#include "imap_url.h"

/* Octets of one URL (RFC 4467 sets none; a URL of a part with
 * HEADER.FIELDS and an expiry fits well within it). */
#define URLAUTH_MAX_URL 2048
/* URLs in one GENURLAUTH or URLFETCH. */
#define URLAUTH_MAX_URLS 64
#define URLAUTH_CHUNK (64 * 1024)


static int
storage_has_keys(void)
{
	return IMAP_STORAGE_HAS(access_key);
}

/* ---- RESETKEY ---------------------------------------------------------*/

struct resetkey_arg {
	char *mailbox;           /* NULL: every mailbox */
};

static void
resetkey_work(struct imap_job *j)
{
	struct resetkey_arg *a = j->arg;

	j->rc = imap_storage->access_key(j->s->store, a->mailbox,
	                                 POSTERN_ACCESS_KEY_RESET, NULL,
	                                 &j->err);
}

static void
resetkey_done(struct imap_job *j)
{
	struct resetkey_arg *a = j->arg;

	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else if (a->mailbox != NULL)
		imap_reply(j->s, j->tag, "OK", "[URLMECH " IMAP_URLAUTH_MECH
		           "] RESETKEY completed");
	else
		imap_reply(j->s, j->tag, "OK", "RESETKEY completed: every "
		           "key removed");
}

/* RESETKEY [mailbox *(SP mechanism)] */
void
imap_cmd_resetkey(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_str mbox, mech;
	struct resetkey_arg *ra;
	struct imap_job *j;
	char *name = NULL;
	int n = 0;

	if (!storage_has_keys()) {
		imap_reply(c->s, c->tag, "BAD", "RESETKEY: the store keeps "
		           "no access keys");
		return;
	}
	if (imap_arg_try_char(a, ' ')) {
		if (imap_arg_astring(a, &mbox) < 0)
			goto bad;
		while (imap_arg_try_char(a, ' ')) {
			if (++n > 16 || imap_arg_atom(a, &mech) < 0)
				goto bad;
			if (!imap_str_is(&mech, IMAP_URLAUTH_MECH)) {
				imap_reply(c->s, c->tag, "NO", "RESETKEY: "
				           "mechanism not supported (only "
				           IMAP_URLAUTH_MECH ")");
				return;
			}
		}
		if (imap_arg_end(a) < 0)
			goto bad;
		if ((name = imap_mailbox_arg(c, &mbox)) == NULL)
			return;
	} else if (imap_arg_end(a) < 0) {
		goto bad;
	}
	j = imap_job_new(c->s, c->tag, sizeof(*ra));
	ra = j->arg;
	if (name != NULL)
		ra->mailbox = imap_host->pool_strndup(j->pool, name,
		                                      strlen(name));
	imap_job_run(j, resetkey_work, resetkey_done);
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "RESETKEY: %s",
	           a->error != NULL ? a->error : "invalid arguments");
}

/* ---- GENURLAUTH -------------------------------------------------------*/

struct url_arg {
	char **urls;             /* NUL-terminated copies, in the
	                            command's pool (it lives until the
	                            command is answered, after its last
	                            step) */
	size_t *lens;
	size_t n;
};

/* The URL arguments of GENURLAUTH (each followed by a mechanism, when
 * `mechs`) or URLFETCH.  -1 with a reply sent. */
static int
url_args(struct imap_cmd *c, struct url_arg *ua, int mechs)
{
	struct imap_args *a = &c->args;
	struct imap_str url, mech;

	memset(ua, 0, sizeof(*ua));
	ua->urls = imap_host->pool_alloc(c->pool, URLAUTH_MAX_URLS *
	                                 sizeof(*ua->urls));
	ua->lens = imap_host->pool_alloc(c->pool, URLAUTH_MAX_URLS *
	                                 sizeof(*ua->lens));
	do {
		if (imap_arg_sp(a) < 0 || imap_arg_astring(a, &url) < 0 ||
		    (mechs && (imap_arg_sp(a) < 0 ||
		               imap_arg_atom(a, &mech) < 0))) {
			imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
			           a->error != NULL ? a->error :
			           "invalid arguments");
			return -1;
		}
		if (ua->n == URLAUTH_MAX_URLS) {
			imap_reply(c->s, c->tag, "NO", "[LIMIT] %s: more than "
			           "%d URLs", c->name, URLAUTH_MAX_URLS);
			return -1;
		}
		if (mechs && !imap_str_is(&mech, IMAP_URLAUTH_MECH)) {
			imap_reply(c->s, c->tag, "NO", "GENURLAUTH: mechanism "
			           "not supported (only " IMAP_URLAUTH_MECH ")");
			return -1;
		}
		if (mechs && url.len > URLAUTH_MAX_URL) {
			imap_reply(c->s, c->tag, "NO", "[LIMIT] GENURLAUTH: a "
			           "URL longer than %d octets",
			           URLAUTH_MAX_URL);
			return -1;
		}
		ua->urls[ua->n] = imap_host->pool_strndup(c->pool, url.s,
		                                          url.len);
		ua->lens[ua->n++] = url.len;
	} while (!imap_arg_at_end(a));
	return 0;
}

static void
genurlauth_work(struct imap_job *j)
{
	struct url_arg *ua = j->arg;
	unsigned char key[POSTERN_ACCESS_KEY_LEN];
	char token[IMAP_URLAUTH_TOKEN_HEX + 1];
	struct imap_buf out = { 0 };
	struct imap_url u;
	struct imap_buf full = { 0 };
	size_t i;

	imap_buf_str(&out, "* GENURLAUTH");
	for (i = 0; i < ua->n; i++) {
		j->rc = -1;
		if (imap_url_parse_auth(&u, ua->urls[i], ua->lens[i],
		                        j->pool) < 0 || u.mech != NULL) {
			j->err.code = POSTERN_SE_CANNOT;
			snprintf(j->err.text, sizeof(j->err.text), "not a "
			         "URLAUTH rump URL: %s", u.mech != NULL ?
			         "it has a token already" : u.error);
			break;
		}
		if (strcmp(u.owner, j->s->user) != 0) {
			j->err.code = POSTERN_SE_NOPERM;
			snprintf(j->err.text, sizeof(j->err.text), "the URL "
			         "names another user");
			break;
		}
		if (imap_storage->access_key(j->s->store, u.mailbox,
		                             POSTERN_ACCESS_KEY_CREATE, key,
		                             &j->err) != 0)
			break;
		if (imap_urlauth_token(key, sizeof(key), ua->urls[i],
		                       u.rump_len, token) < 0) {
			j->err.code = POSTERN_SE_TEMP;
			snprintf(j->err.text, sizeof(j->err.text), "cannot "
			         "make the token");
			break;
		}
		full.len = 0;
		imap_buf_add(&full, ua->urls[i], ua->lens[i]);
		imap_buf_printf(&full, ":" IMAP_URLAUTH_MECH ":%s", token);
		imap_buf_str(&out, " ");
		imap_buf_string(&out, full.p, full.len);
		j->rc = 0;
	}
	explicit_bzero(key, sizeof(key));
	if (j->rc == 0) {
		imap_buf_str(&out, "\r\n");
		imap_buf_add(&j->out, out.p, out.len);
	}
	imap_buf_free(&full);
	imap_buf_free(&out);
}

static void
genurlauth_done(struct imap_job *j)
{
	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "GENURLAUTH completed");
}

/* GENURLAUTH 1*(SP url SP mechanism) */
void
imap_cmd_genurlauth(struct imap_cmd *c)
{
	struct url_arg ua;
	struct imap_job *j;

	if (!storage_has_keys()) {
		imap_reply(c->s, c->tag, "BAD", "GENURLAUTH: the store keeps "
		           "no access keys");
		return;
	}
	if (url_args(c, &ua, 1) < 0)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(ua));
	memcpy(j->arg, &ua, sizeof(ua));
	imap_job_run(j, genurlauth_work, genurlauth_done);
}

/* ---- URLFETCH ---------------------------------------------------------*/

/* Who asks: an IMAP session (URLFETCH) or a submission server for its
 * user (BURL, through the urlauth service). */
struct uf_who {
	postern_pool_t *pool;    /* for what resolving allocates */
	const char *user;        /* IMAP: the session's user */
	postern_store_t *store;  /* ... and its store; NULL for BURL */
	const char *submitter;   /* BURL: the SMTP login; NULL for IMAP */
};

/* What a URL resolved to. */
struct uf_target {
	char *owner, *mailbox;   /* who->pool */
	uint32_t uid;
	struct imap_url_span span; /* its HEADER.FIELDS names in
	                              who->pool too */
};

struct urlfetch_arg {
	struct url_arg ua;
	size_t next;             /* the URL to answer next */
	/* The literal being sent: what its URL resolved to. */
	int in_literal;
	struct uf_target t;      /* strings in the job's pool, handed
	                            over between steps */
	uint64_t sent;
	int broken;              /* failed inside a literal */
	int finished;
};

/* What one step has open, closed at its end. */
struct uf_open {
	postern_store_t *store;  /* the owner's, or the session's */
	int own_store;           /* opened here */
	postern_mailbox_t *mb;
	postern_msg_t *msg;
	struct postern_msg_size sz;
	struct imap_url_mime mime;
};

static void
uf_close(struct uf_open *o)
{
	if (o->msg != NULL)
		imap_storage->msg_close(o->msg);
	imap_url_mime_free(&o->mime);
	if (o->mb != NULL)
		imap_storage->close(o->mb);
	if (o->own_store && o->store != NULL)
		imap_storage->store_close(o->store);
	memset(o, 0, sizeof(*o));
}

/* The store of `owner`: the session's own, or opened here. */
static int
uf_store(const struct uf_who *w, const char *owner, struct uf_open *o)
{
	struct postern_user user = { .size = sizeof(user) };
	struct postern_storage_err err;

	if (w->store != NULL && strcmp(owner, w->user) == 0) {
		o->store = w->store;
		return 0;
	}
	if (imap_auth == NULL ||
	    imap_auth->lookup(owner, w->pool, &user) != POSTERN_AUTH_YES ||
	    imap_storage->store_open(&user, &o->store, &err) < 0)
		return -1;
	o->own_store = 1;
	return 0;
}

/* Opens the message (and view) of `mailbox` and `uid`. */
static int
uf_message(struct uf_open *o, const char *mailbox, uint32_t uid,
           uint32_t uidvalidity)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_storage_err err;
	uint32_t seq;

	if (imap_storage->open(o->store, mailbox, POSTERN_OPEN_READONLY,
	                       &o->mb, &err) < 0) {
		o->mb = NULL;
		return -1;
	}
	imap_storage->status(o->mb, &st);
	if ((uidvalidity != 0 && uidvalidity != st.uidvalidity) ||
	    (seq = imap_storage->seq_of_uid(o->mb, uid)) == 0 ||
	    imap_storage->message(o->mb, seq)->expunged)
		return -1;
	if (imap_storage->msg_open(o->mb, uid, &o->msg, &o->sz, &err) < 0) {
		o->msg = NULL;
		return -1;
	}
	return 0;
}

/* May `w` use the URL: its access identifier (RFC 4467 3) and expiry.
 * An IMAP session is never a submission server; a submission server
 * is no IMAP user. */
static int
uf_allowed(const struct uf_who *w, const struct imap_url *u)
{
	if (u->expire != 0 && (int64_t)time(NULL) >= u->expire)
		return 0;
	switch (u->access) {
	case IMAP_URL_ACCESS_ANONYMOUS:
	case IMAP_URL_ACCESS_AUTHUSER:
		return 1;             /* both are logged in */
	case IMAP_URL_ACCESS_USER:
		return w->submitter == NULL &&
		       strcmp(u->access_user, w->user) == 0;
	case IMAP_URL_ACCESS_SUBMIT:
		return w->submitter != NULL &&
		       strcmp(u->access_user, w->submitter) == 0;
	default:
		return 0;
	}
}

/* For a URL whose owner is no user here: the storage work the path of
 * an existing owner does before its token is checked (a user looked
 * up, a store opened, the mailbox's key looked up), done on the
 * asker's own store; GET creates no key.  Nothing of it is used: it
 * only makes NIL take as long whether the owner exists or not. */
static void
uf_decoy(const struct uf_who *w, const struct imap_url *u)
{
	struct postern_user user = { .size = sizeof(user) };
	struct postern_storage_err err;
	unsigned char key[POSTERN_ACCESS_KEY_LEN];
	postern_store_t *st = NULL;

	if (imap_auth == NULL ||
	    imap_auth->lookup(w->user, w->pool, &user) != POSTERN_AUTH_YES ||
	    imap_storage->store_open(&user, &st, &err) < 0)
		return;
	(void)imap_storage->access_key(st, u->mailbox,
	                               POSTERN_ACCESS_KEY_GET, key, &err);
	explicit_bzero(key, sizeof(key));
	imap_storage->store_close(st);
}

/* A URL to what it names, verified: 0 with the message open in `o` and
 * `t` set; -1 for NIL.
 *
 * The token is checked before anything of the mailbox is looked at,
 * and every URL that gets that far costs the same work whatever is
 * wrong with it: an owner that is no user does its store's work on
 * the asker's store (uf_decoy), and a missing owner or key is
 * replaced by the decoy key, so the HMAC is always computed and
 * compared (in constant time).  Neither the answer (NIL) nor its
 * timing tells whether the user, or the key, exists. */
static int
uf_resolve(const struct uf_who *w, const char *url, size_t len,
           struct uf_open *o, struct uf_target *t)
{
	unsigned char key[POSTERN_ACCESS_KEY_LEN];
	struct postern_storage_err err;
	struct imap_url u;
	int ok, have_key = 0;

	if (len > URLAUTH_MAX_URL ||
	    imap_url_parse_auth(&u, url, len, w->pool) < 0 ||
	    u.mech == NULL || strcasecmp(u.mech, IMAP_URLAUTH_MECH) != 0 ||
	    !uf_allowed(w, &u))
		return -1;
	if (uf_store(w, u.owner, o) < 0)
		uf_decoy(w, &u);
	else if (imap_storage->access_key(o->store, u.mailbox,
	                                  POSTERN_ACCESS_KEY_GET, key,
	                                  &err) == 0)
		have_key = 1;
	if (!have_key)
		memcpy(key, imap_urlauth_dummy_key(), sizeof(key));
	ok = imap_urlauth_verify(key, sizeof(key), url, u.rump_len, u.token,
	                         strlen(u.token)) && have_key;
	explicit_bzero(key, sizeof(key));
	if (!ok || uf_message(o, u.mailbox, u.uid, u.uidvalidity) < 0 ||
	    imap_url_range(&o->mime, o->mb, o->msg, &u, &o->sz, &t->span,
	                   &err) < 0)
		return -1;
	t->owner = u.owner;
	t->mailbox = u.mailbox;
	t->uid = u.uid;
	return 0;
}

/* The session as the one who asks. */
static void
uf_session(struct imap_job *j, struct uf_who *w)
{
	w->pool = j->pool;
	w->user = j->s->user;
	w->store = j->s->store;
	w->submitter = NULL;
}

/* Sends the literal's octets from a->sent while the step has room. */
static int
uf_copy(struct imap_job *j, struct urlfetch_arg *a, struct uf_open *o)
{
	char *room;
	size_t n;
	ssize_t r;

	while (a->sent < a->t.span.len &&
	       j->out.len < (size_t)imap_cfg.fetch_batch) {
		n = a->t.span.len - a->sent < URLAUTH_CHUNK ?
		    (size_t)(a->t.span.len - a->sent) : URLAUTH_CHUNK;
		room = imap_buf_room(&j->out, n);
		if ((r = imap_url_read(&a->t.span, o->msg, a->sent, room, n,
		                       &j->err)) <= 0)
			return -1;
		imap_buf_commit(&j->out, (size_t)r);
		a->sent += (uint64_t)r;
	}
	if (a->sent == a->t.span.len) {
		imap_buf_str(&j->out, "\r\n");
		a->in_literal = 0;
		a->next++;
	}
	return 0;
}

static void
urlfetch_work(struct imap_job *j)
{
	struct urlfetch_arg *a = j->arg;
	struct uf_open o = { 0 };
	struct uf_who w;
	const char *url;

	uf_session(j, &w);
	/* A literal half sent: its message again, by name and UID. */
	if (a->in_literal &&
	    (uf_store(&w, a->t.owner, &o) < 0 ||
	     uf_message(&o, a->t.mailbox, a->t.uid, 0) < 0 ||
	     uf_copy(j, a, &o) < 0)) {
		a->broken = 1;
		goto out;
	}
	while (!a->in_literal && a->next < a->ua.n &&
	       j->out.len < (size_t)imap_cfg.fetch_batch &&
	       !imap_job_cancelled(j)) {
		url = a->ua.urls[a->next];
		imap_buf_str(&j->out, "* URLFETCH ");
		imap_buf_string(&j->out, url, a->ua.lens[a->next]);
		uf_close(&o);
		if (uf_resolve(&w, url, a->ua.lens[a->next], &o, &a->t) < 0) {
			imap_buf_str(&j->out, " NIL\r\n");
			a->next++;
			continue;
		}
		imap_buf_printf(&j->out, " {%llu}\r\n",
		                (unsigned long long)a->t.span.len);
		a->in_literal = 1;
		a->sent = 0;
		if (uf_copy(j, a, &o) < 0) {
			a->broken = 1;
			goto out;
		}
	}
	a->finished = !a->in_literal && a->next == a->ua.n;
out:
	uf_close(&o);
}

static void
urlfetch_done(struct imap_job *j)
{
	struct urlfetch_arg *a = j->arg;
	struct imap_session *s = j->s;

	if (a->broken) {
		/* Part of a literal is out: the stream cannot be mended. */
		imap_log(s, POSTERN_LOG_WARNING, "URLFETCH of uid %u failed "
		         "while it was sent: disconnecting", a->t.uid);
		imap_host->session_close(s->ss);
		return;
	}
	if (a->finished) {
		imap_reply(s, j->tag, "OK", "URLFETCH completed");
		return;
	}
	/* Another step, with the state. */
	imap_job_next_output_step(j);
}

/* URLFETCH 1*(SP url) */
void
imap_cmd_urlfetch(struct imap_cmd *c)
{
	struct urlfetch_arg *a;
	struct url_arg ua;
	struct imap_job *j;

	if (!storage_has_keys()) {
		imap_reply(c->s, c->tag, "BAD", "URLFETCH: the store keeps "
		           "no access keys");
		return;
	}
	if (url_args(c, &ua, 0) < 0)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->ua = ua;
	imap_job_run_heavy(j, urlfetch_work, urlfetch_done);
}

/* ---- the urlauth service (postern/urlauth.h): BURL's side -------------*/

static enum postern_urlauth_status
service_fetch(const char *url, size_t len, const char *submitter,
              uint64_t max, postern_urlauth_out_fn out, void *arg,
              uint64_t *total)
{
	struct uf_who w = { .submitter = submitter };
	struct uf_open o = { 0 };
	struct uf_target t;
	struct postern_storage_err err;
	enum postern_urlauth_status rc = POSTERN_URLAUTH_OK;
	char *buf = NULL;
	uint64_t off;
	ssize_t r;
	size_t n;

	*total = 0;
	if (imap_storage == NULL || !storage_has_keys() || submitter == NULL)
		return POSTERN_URLAUTH_INVALID;
	w.pool = imap_host->pool_create(4096);
	w.user = submitter;
	if (uf_resolve(&w, url, len, &o, &t) < 0)
		rc = POSTERN_URLAUTH_INVALID;
	else if (t.span.len > max)
		rc = POSTERN_URLAUTH_TOOBIG;
	else if ((buf = malloc(URLAUTH_CHUNK)) == NULL)
		rc = POSTERN_URLAUTH_TEMP;
	for (off = 0; rc == POSTERN_URLAUTH_OK && off < t.span.len;
	     off += (uint64_t)r) {
		n = t.span.len - off < URLAUTH_CHUNK ?
		    (size_t)(t.span.len - off) : URLAUTH_CHUNK;
		if ((r = imap_url_read(&t.span, o.msg, off, buf, n,
		                       &err)) <= 0 ||
		    out(arg, buf, (size_t)r) < 0) {
			rc = POSTERN_URLAUTH_TEMP;
			break;
		}
		*total += (uint64_t)r;
	}
	free(buf);
	uf_close(&o);
	imap_host->pool_destroy(w.pool);
	return rc;
}

const struct postern_urlauth imap_urlauth_service = {
	.size = sizeof(struct postern_urlauth),
	.fetch = service_fetch,
};
