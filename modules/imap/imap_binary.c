/*
 * imap_binary.c - APPEND of a message sent as literal8 (RFC 3516 4.3)
 * that holds NUL octets: no plain literal can carry it to a client
 * again (BODY[], RFC822), so before it is stored each body part that
 * holds a NUL or says "Content-Transfer-Encoding: binary" is given
 * base64 instead, and its header says so.  FETCH BINARY[] decodes it
 * back to the octets the client sent.
 *
 * Runs on the APPEND's job.  The message is read from where APPEND has
 * it (the reader's buffer or the spool file) in chunks and written to a
 * new spool, flushed to its file as it grows: memory is the MIME tree
 * (a pool limited to message_memory), one part's header (at most
 * BIN_MAX_HEADER) and a chunk, whatever the message's size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

#define BIN_CHUNK (64 * 1024)
#define BIN_MAX_HEADER (256 * 1024)

struct conv {
	const struct postern_append *in;
	postern_spool_t *out;
	struct postern_storage_err *err;
	int out_failed;            /* out_add failed (err set) */
	char buf[BIN_CHUNK];
};

static int
conv_fail(struct conv *cv, enum postern_storage_error code, const char *why)
{
	cv->err->code = code;
	snprintf(cv->err->text, sizeof(cv->err->text), "%s", why);
	return -1;
}

/* Octets [off, off + len) of the input into buf; -1 on a read error. */
static int
src_read(struct conv *cv, uint64_t off, char *buf, size_t len)
{
	const struct postern_append *m = cv->in;

	if (m->fd < 0) {
		memcpy(buf, (const char *)m->data + off, len);
		return 0;
	}
	if (imap_pread_full(m->fd, buf, len, m->offset + off) < 0)
		return conv_fail(cv, POSTERN_SE_TEMP, "cannot read the "
		                 "message back");
	return 0;
}

/* Appends to the output, moving it to its file as it grows. */
static int
out_add(struct conv *cv, const char *data, size_t len)
{
	if (imap_spool_put(cv->out, data, len) < 0)
		return conv_fail(cv, POSTERN_SE_TEMP, "cannot write the "
		                 "converted message");
	return 0;
}

/* Reads [from, to) in chunks: 1 at the first NUL, 0 at the end, -1 on
 * an error.  With `copy`, what is read goes to the output (up to the
 * NUL, which is not copied). */
static int
range_pass(struct conv *cv, uint64_t from, uint64_t to, int copy)
{
	size_t n;

	while (from < to) {
		n = to - from < BIN_CHUNK ? (size_t)(to - from) : BIN_CHUNK;
		if (src_read(cv, from, cv->buf, n) < 0)
			return -1;
		if (memchr(cv->buf, '\0', n) != NULL)
			return 1;
		if (copy && out_add(cv, cv->buf, n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

/* Copies [from, to) of the input as it is; a NUL there cannot be
 * carried (it is outside any body part). */
static int
copy_range(struct conv *cv, uint64_t from, uint64_t to)
{
	int r = range_pass(cv, from, to, 1);

	if (r > 0)
		return conv_fail(cv, POSTERN_SE_CANNOT, "NUL octet outside a "
		                 "body part");
	return r;
}

/* 1 when the line starting at h[i] begins the field `name`. */
static int
line_is_field(const char *h, size_t len, size_t i, const char *name)
{
	size_t n = strlen(name);

	if (len - i <= n || strncasecmp(h + i, name, n) != 0)
		return 0;
	for (i += n; i < len && (h[i] == ' ' || h[i] == '\t'); i++)
		;
	return i < len && h[i] == ':';
}

/* The part's header without its Content-Transfer-Encoding field (and
 * its continuation lines), with "Content-Transfer-Encoding: base64"
 * before the empty line that ends it. */
static int
header_rewrite(struct conv *cv, uint64_t from, uint64_t to)
{
	static const char cte[] = "Content-Transfer-Encoding: base64\r\n";
	size_t len = (size_t)(to - from), i = 0, e;
	int skipping = 0, rc = -1;
	char *h;

	if (to - from > BIN_MAX_HEADER)
		return conv_fail(cv, POSTERN_SE_LIMIT, "a binary part's "
		                 "header is too large");
	if ((h = malloc(len + 1)) == NULL)
		return conv_fail(cv, POSTERN_SE_TEMP, "out of memory");
	if (src_read(cv, from, h, len) < 0)
		goto out;
	if (memchr(h, '\0', len) != NULL) {
		conv_fail(cv, POSTERN_SE_CANNOT, "NUL octet in a header");
		goto out;
	}
	while (i < len) {
		const char *lf = memchr(h + i, '\n', len - i);
		e = lf != NULL ? (size_t)(lf - h) + 1 : len;
		if (h[i] == '\r' || h[i] == '\n')
			break;          /* the empty line */
		if (h[i] != ' ' && h[i] != '\t')
			skipping = line_is_field(h, len, i,
			                         "Content-Transfer-Encoding");
		if (!skipping) {
			if (out_add(cv, h + i, e - i) < 0)
				goto out;
			if (lf == NULL && out_add(cv, "\r\n", 2) < 0)
				goto out;
		}
		i = e;
	}
	if (out_add(cv, cte, sizeof(cte) - 1) < 0 ||
	    out_add(cv, "\r\n", 2) < 0)
		goto out;
	rc = 0;
out:
	free(h);
	return rc;
}

static void
encoded_out(void *arg, const char *data, size_t len)
{
	struct conv *cv = arg;

	if (cv->out_failed == 0 && out_add(cv, data, len) < 0)
		cv->out_failed = 1;
}

/* The body [from, to) as base64 (the host's encoder); the last line
 * ends with CRLF only at the end of the message (in a multipart, the
 * boundary brings its own). */
static int
body_encode(struct conv *cv, uint64_t from, uint64_t to, int last)
{
	postern_mime_encoder_t *e;
	size_t n;
	int any, rc = -1;

	e = imap_host->mime_encoder_create("base64", encoded_out, cv);
	if (e == NULL)
		return conv_fail(cv, POSTERN_SE_TEMP, "out of memory");
	while (from < to && !cv->out_failed) {
		n = to - from < BIN_CHUNK ? (size_t)(to - from) : BIN_CHUNK;
		if (src_read(cv, from, cv->buf, n) < 0)
			goto out;
		imap_host->mime_encoder_feed(e, cv->buf, n);
		from += n;
	}
	any = imap_host->mime_encoder_finish(e);
	if (!cv->out_failed && any && last && out_add(cv, "\r\n", 2) < 0)
		cv->out_failed = 1;
	rc = cv->out_failed ? -1 : 0;
out:
	imap_host->mime_encoder_free(e);
	return rc;
}

static int
part_is_leaf(const struct postern_mime_part *p)
{
	return p->children == NULL;
}

/* Converts the leaves of the tree that need it, copying what lies
 * between them; *pos is how far the input is written. */
static int
convert_part(struct conv *cv, const struct postern_mime_part *p,
             uint64_t *pos)
{
	const struct postern_mime_part *c;
	int nul;

	if (!part_is_leaf(p)) {
		for (c = p->children; c != NULL; c = c->next)
			if (convert_part(cv, c, pos) < 0)
				return -1;
		return 0;
	}
	if ((nul = range_pass(cv, p->body_start, p->end, 0)) < 0)
		return -1;
	if (!nul && (p->encoding == NULL || strcmp(p->encoding, "binary")))
		return 0;
	if (p->type != NULL && (strcmp(p->type, "multipart") == 0 ||
	                        strcmp(p->type, "message") == 0))
		/* One the parser cut short (a limit): base64 is not allowed
		 * there (RFC 2045 6.4). */
		return conv_fail(cv, POSTERN_SE_CANNOT, "NUL octet in a part "
		                 "that cannot be encoded");
	if (copy_range(cv, *pos, p->header_start) < 0 ||
	    header_rewrite(cv, p->header_start, p->body_start) < 0 ||
	    body_encode(cv, p->body_start, p->end,
	                p->end == cv->in->length) < 0)
		return -1;
	*pos = p->end;
	return 0;
}

/* The tree of the message, from a pool limited to message_memory. */
static struct postern_mime_part *
parse(struct conv *cv, postern_pool_t *pool)
{
	struct postern_mime_limits lim = { .size = sizeof(lim) };
	postern_mime_parser_t *mp = imap_host->mime_parser_create(pool, &lim);
	struct postern_mime_part *root;
	uint64_t off = 0;
	size_t n;

	if (mp == NULL) {
		conv_fail(cv, POSTERN_SE_TEMP, "out of memory");
		return NULL;
	}
	while (off < cv->in->length) {
		n = cv->in->length - off < BIN_CHUNK ?
		    (size_t)(cv->in->length - off) : BIN_CHUNK;
		if (src_read(cv, off, cv->buf, n) < 0)
			return NULL;
		imap_host->mime_parser_feed(mp, cv->buf, n);
		off += n;
	}
	root = imap_host->mime_parser_finish(mp);
	if (root->flags & POSTERN_MIME_DEGRADED) {
		conv_fail(cv, POSTERN_SE_LIMIT, "the message's structure is "
		          "too large to convert");
		return NULL;
	}
	return root;
}

int
imap_binary_convert(struct postern_append *msg, postern_spool_t **out,
                    struct postern_storage_err *err)
{
	struct conv *cv;
	postern_pool_t *pool;
	struct postern_mime_part *root;
	uint64_t pos = 0;
	int rc = -1;

	*out = NULL;
	if ((cv = malloc(sizeof(*cv))) == NULL) {
		err->code = POSTERN_SE_TEMP;
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	cv->in = msg;
	cv->err = err;
	cv->out_failed = 0;
	cv->out = imap_host->spool_create(NULL);
	pool = imap_host->pool_create_limited(16384,
	                                      (size_t)imap_cfg.message_memory);
	if (cv->out == NULL || pool == NULL) {
		conv_fail(cv, POSTERN_SE_TEMP, "out of memory");
		goto out;
	}
	if ((root = parse(cv, pool)) == NULL ||
	    convert_part(cv, root, &pos) < 0 ||
	    copy_range(cv, pos, msg->length) < 0)
		goto out;
	if (imap_host->spool_flush(cv->out) < 0) {
		conv_fail(cv, POSTERN_SE_TEMP, "cannot write the converted "
		          "message");
		goto out;
	}
	msg->fd = imap_host->spool_fd(cv->out);
	msg->data = NULL;
	msg->offset = 0;
	msg->length = imap_host->spool_size(cv->out);
	*out = cv->out;
	cv->out = NULL;
	rc = 0;
out:
	if (pool != NULL)
		imap_host->pool_destroy(pool);
	imap_host->spool_free(cv->out);
	free(cv);
	return rc;
}
