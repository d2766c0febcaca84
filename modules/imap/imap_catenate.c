/*
 * imap_catenate.c - CATENATE (RFC 4469): the message an APPEND makes of
 * TEXT parts and IMAP URLs of messages and parts on this server, for
 * the session's own user only (RFC 4469 section 5: a URL the user could
 * not FETCH is a BADURL; there are no other users' mailboxes here).
 *
 * Runs on the APPEND's job.  The result goes to a spool, flushed to its
 * file as it grows, read from its sources in chunks: memory is a chunk
 * and one message's MIME tree (in a pool limited to message_memory),
 * whatever the sizes.  A mailbox other than the selected one is opened
 * read-only (its \Recent is not taken), kept open while the next URLs
 * name it, and closed at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_url.h"

#define CAT_CHUNK (64 * 1024)

struct cat {
	struct imap_session *s;
	postern_spool_t *out;
	uint64_t total;
	struct postern_storage_err *err;
	struct imap_cat_fail *fail;
	postern_mailbox_t *mb;     /* opened here, or NULL */
	char *mb_name;             /* its name (malloc'd) */
	/* The MIME structure of the message a URL named last: the next
	 * URL of the same message does not load it again (a structure too
	 * large to cache would be parsed again each time). */
	struct imap_url_mime mime;
	char buf[CAT_CHUNK];
};

static int
cat_err(struct cat *c, enum postern_storage_error code, const char *why)
{
	c->err->code = code;
	snprintf(c->err->text, sizeof(c->err->text), "%s", why);
	return -1;
}

/* Room for `len` more octets within max_literal_size. */
static int
cat_room(struct cat *c, uint64_t len)
{
	if (len > (uint64_t)imap_cfg.max_literal - c->total) {
		c->fail->toobig = 1;
		return cat_err(c, POSTERN_SE_LIMIT, "the message would be "
		               "larger than max_literal_size");
	}
	c->total += len;
	return 0;
}

static int
cat_add(struct cat *c, const char *data, size_t len)
{
	if (imap_spool_put(c->out, data, len) < 0)
		return cat_err(c, POSTERN_SE_TEMP, "cannot write the "
		               "message");
	return 0;
}

static int
cat_text(struct cat *c, const struct imap_cat_part *p, int fd)
{
	uint64_t off;
	size_t n;

	if (cat_room(c, p->len) < 0)
		return -1;
	if (p->data != NULL)
		return cat_add(c, p->data, (size_t)p->len);
	for (off = 0; off < p->len; off += n) {
		n = p->len - off < CAT_CHUNK ? (size_t)(p->len - off)
		                             : CAT_CHUNK;
		if (imap_pread_full(fd, c->buf, n, p->offset + off) < 0)
			return cat_err(c, POSTERN_SE_TEMP, "cannot read the "
			               "text back");
		if (cat_add(c, c->buf, n) < 0)
			return -1;
	}
	return 0;
}

/* The view the URL names: the selected one, or one opened here. */
static postern_mailbox_t *
cat_view(struct cat *c, const struct imap_url *u)
{
	if (u->mailbox == NULL)
		return c->s->mb;
	if (c->mb != NULL && strcmp(c->mb_name, u->mailbox) == 0)
		return c->mb;
	if (c->mb != NULL)
		imap_storage->close(c->mb);
	c->mb = NULL;
	c->mime.mime = NULL;       /* its view goes */
	free(c->mb_name);
	if ((c->mb_name = strdup(u->mailbox)) == NULL)
		return NULL;
	if (imap_storage->open(c->s->store, u->mailbox, POSTERN_OPEN_READONLY,
	                       &c->mb, c->err) < 0) {
		c->mb = NULL;
		return NULL;
	}
	return c->mb;
}

/* The HEADER.FIELDS walk of *sp on from where it is (imap_fields_walk),
 * through a 16 KiB buffer on the heap: BURL reads through here on a
 * thread this module does not know the stack of. */
static int
span_walk(struct imap_url_span *sp, postern_msg_t *msg, char *dst,
          size_t *ndst, uint64_t from, uint64_t to,
          struct postern_storage_err *err)
{
	struct imap_hbuf *h = malloc(sizeof(*h));
	int rc;

	if (h == NULL) {
		err->code = POSTERN_SE_TEMP;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	h->st = imap_storage;
	h->msg = msg;
	h->err = err;
	h->end = sp->hstart + sp->hlen;
	h->at = h->len = 0;
	rc = imap_fields_walk(h, &sp->fields, &sp->walk, dst, ndst, from, to);
	free(h);
	return rc;
}

int
imap_url_range(struct imap_url_mime *m, postern_mailbox_t *mb,
               postern_msg_t *msg, const struct imap_url *u,
               const struct postern_msg_size *sz, struct imap_url_span *sp,
               struct postern_storage_err *err)
{
	uint64_t start = 0, len = sz->size;

	memset(sp, 0, sizeof(*sp));
	if (u->has_section) {
		if (m->mime == NULL || m->mb != mb || m->uid != u->uid) {
			imap_host->pool_destroy(m->pool);
			m->mime = NULL;
			m->pool = imap_host->pool_create_limited(
				16384, (size_t)imap_cfg.message_memory);
			if (m->pool == NULL) {
				err->code = POSTERN_SE_TEMP;
				snprintf(err->text, sizeof(err->text),
				         "out of memory");
				return -1;
			}
			m->mime = imap_mime_load(imap_storage, mb, u->uid,
			                         NULL, m->pool, err);
			if (m->mime == NULL)
				return -1;
			m->mb = mb;
			m->uid = u->uid;
		}
		if (imap_mime_section(m->mime, u->parts, u->nparts, u->what,
		                      &start, &len) < 0) {
			err->code = POSTERN_SE_NONEXISTENT;
			snprintf(err->text, sizeof(err->text), "no such "
			         "section in the message");
			return -1;
		}
	}
	if (u->fields.which) {
		/* The result's length now, its octets as they are read:
		 * walked twice rather than held, as FETCH does. */
		sp->fields = u->fields;
		sp->hstart = start;
		sp->hlen = len;
		sp->walk.pos = start;
		if (span_walk(sp, msg, NULL, NULL, 0, UINT64_MAX, err) < 0)
			return -1;
		len = sp->walk.out;
		start = 0;
		memset(&sp->walk, 0, sizeof(sp->walk));
		sp->walk.pos = sp->hstart;
	}
	if (u->partial) {
		if (u->pstart >= len) {
			len = 0;
		} else {
			start += u->pstart;
			len -= u->pstart;
			if (len > u->plen)
				len = u->plen;
		}
	}
	sp->start = start;
	sp->len = len;
	return 0;
}

ssize_t
imap_url_read(struct imap_url_span *sp, postern_msg_t *msg, uint64_t off,
              char *buf, size_t n, struct postern_storage_err *err)
{
	uint64_t from, to;
	size_t got = 0;

	if (off >= sp->len)
		return 0;
	if (n > sp->len - off)
		n = (size_t)(sp->len - off);
	if (!sp->fields.which)
		return imap_storage->msg_read(msg, sp->start + off, buf, n,
		                              err);
	from = sp->start + off;
	to = from + n;
	if (sp->walk.out > from) {     /* behind where the walk is */
		memset(&sp->walk, 0, sizeof(sp->walk));
		sp->walk.pos = sp->hstart;
	}
	if (span_walk(sp, msg, buf, &got, from, to, err) < 0)
		return -1;
	if (got == 0) {
		err->code = POSTERN_SE_CORRUPT;
		snprintf(err->text, sizeof(err->text), "header changed while "
		         "it was read");
		return -1;
	}
	return (ssize_t)got;
}

void
imap_url_mime_free(struct imap_url_mime *m)
{
	imap_host->pool_destroy(m->pool);
	memset(m, 0, sizeof(*m));
}

static int
cat_copy(struct cat *c, postern_msg_t *msg, struct imap_url_span *sp)
{
	uint64_t off;
	ssize_t r;

	if (cat_room(c, sp->len) < 0)
		return -1;
	for (off = 0; off < sp->len; off += (uint64_t)r) {
		if ((r = imap_url_read(sp, msg, off, c->buf, CAT_CHUNK,
		                       c->err)) <= 0)
			return r == 0 ? cat_err(c, POSTERN_SE_CORRUPT, "message "
			                        "shorter than its size")
			              : -1;
		if (cat_add(c, c->buf, (size_t)r) < 0)
			return -1;
	}
	return 0;
}

/* A URL part: -1 with c->err set; fail->badurl is set by the caller
 * unless the failure is the server's own (TEMP) or TOOBIG. */
static int
cat_url(struct cat *c, const struct imap_cat_part *p, int *bad)
{
	struct imap_url u;
	postern_pool_t *pool = imap_host->pool_create(1024);
	postern_mailbox_t *mb;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_msg_size sz;
	postern_msg_t *msg = NULL;
	struct imap_url_span span;
	uint32_t seq;
	int rc = -1;

	*bad = 1;
	if (imap_url_parse(&u, p->url, p->url_len, c->s->user,
	                   c->s->mb != NULL, pool) < 0) {
		cat_err(c, POSTERN_SE_CANNOT, u.error);
		goto out;
	}
	if ((mb = cat_view(c, &u)) == NULL) {
		*bad = c->err->code != POSTERN_SE_TEMP;
		goto out;
	}
	imap_storage->status(mb, &st);
	if (u.uidvalidity != 0 && u.uidvalidity != st.uidvalidity) {
		cat_err(c, POSTERN_SE_NONEXISTENT, "UIDVALIDITY differs");
		goto out;
	}
	if ((seq = imap_storage->seq_of_uid(mb, u.uid)) == 0 ||
	    imap_storage->message(mb, seq)->expunged) {
		cat_err(c, POSTERN_SE_NONEXISTENT, "no such message");
		goto out;
	}
	if (imap_storage->msg_open(mb, u.uid, &msg, &sz, c->err) < 0) {
		*bad = c->err->code != POSTERN_SE_TEMP;
		goto out;
	}
	if (imap_url_range(&c->mime, mb, msg, &u, &sz, &span, c->err) < 0) {
		*bad = c->err->code != POSTERN_SE_TEMP;
		goto out;
	}
	*bad = 0;
	rc = cat_copy(c, msg, &span);
out:
	if (msg != NULL)
		imap_storage->msg_close(msg);
	imap_host->pool_destroy(pool);
	return rc;
}

int
imap_catenate(struct imap_session *s, const struct imap_cat_part *parts,
              size_t n, int spool_fd, postern_spool_t **out,
              struct imap_cat_fail *fail, struct postern_storage_err *err)
{
	struct cat *c = calloc(1, sizeof(*c));
	size_t i;
	int rc = -1, bad;

	*out = NULL;
	fail->badurl = -1;
	fail->toobig = 0;
	if (c == NULL || (c->out = imap_host->spool_create(NULL)) == NULL) {
		free(c);
		err->code = POSTERN_SE_TEMP;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	c->s = s;
	c->err = err;
	c->fail = fail;
	for (i = 0; i < n; i++) {
		if (!parts[i].is_url) {
			if (cat_text(c, &parts[i], spool_fd) < 0)
				goto out;
			continue;
		}
		if (cat_url(c, &parts[i], &bad) < 0) {
			if (bad && !fail->toobig)
				fail->badurl = (long)i;
			goto out;
		}
	}
	if (c->total == 0) {
		cat_err(c, POSTERN_SE_CANNOT, "CATENATE of an empty "
		        "message");
		goto out;
	}
	if (imap_host->spool_flush(c->out) < 0) {
		cat_err(c, POSTERN_SE_TEMP, "cannot write the message");
		goto out;
	}
	*out = c->out;
	c->out = NULL;
	rc = 0;
out:
	if (c->mb != NULL)
		imap_storage->close(c->mb);
	imap_url_mime_free(&c->mime);
	free(c->mb_name);
	imap_host->spool_free(c->out);
	free(c);
	return rc;
}
