/*
 * mime_use.c - the MIME functions of the host table (ABI 1.3) as a module
 * sees them: checks that the host has them, parses a multipart message
 * fed in 7-octet pieces, decodes an RFC 2047 subject, an address list, a
 * date and a base64 body (and encodes it back, ABI 1.10), round-trips
 * the tree through the serialized form, and logs what it found for
 * test_loader to compare.  Then (ABI 1.4) a message needing more than
 * its pool's budget: the parse degrades within the budget.
 */
#include <stdlib.h>
#include <string.h>

#include <postern/postern.h>

static const struct postern_host *mu_host;

static const char mu_message[] =
	"From: Alice <alice@example.org>, team: bob@example.com;\r\n"
	"Subject: =?utf-8?q?caf=C3=A9?= menu\r\n"
	"Date: Sat, 1 Jun 2024 12:00:00 +0000\r\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
	"\r\n"
	"--b1\r\n"
	"\r\n"
	"plain\r\n"
	"--b1\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PGI+aGk8L2I+\r\n"
	"--b1--\r\n";

struct mu_text {
	char buf[64];
	size_t len;
};

static void
mu_collect(void *arg, const char *data, size_t len)
{
	struct mu_text *t = arg;

	if (t->len + len < sizeof(t->buf)) {
		memcpy(t->buf + t->len, data, len);
		t->len += len;
		t->buf[t->len] = '\0';
	}
}

static void
mu_report(postern_module_t *self, postern_pool_t *pool)
{
	const struct postern_host *h = mu_host;
	postern_mime_parser_t *p = h->mime_parser_create(pool, NULL);
	struct postern_mime_part *root, *back, *html;
	postern_mime_decoder_t *d;
	postern_mime_encoder_t *e;
	struct mu_text text = { "", 0 }, b64 = { "", 0 };
	size_t i, n, len;
	int64_t when;
	void *ser;
	char *subject;

	for (i = 0; i < sizeof(mu_message) - 1; i += 7) {
		n = sizeof(mu_message) - 1 - i < 7 ?
		    sizeof(mu_message) - 1 - i : 7;
		h->mime_parser_feed(p, mu_message + i, n);
	}
	root = h->mime_parser_finish(p);
	html = root->children != NULL ? root->children->next : NULL;
	if (html == NULL) {
		h->log(self, POSTERN_LOG_ERROR, "mime_use: no second part");
		return;
	}
	h->log(self, POSTERN_LOG_INFO,
	       "mime_use: %s/%s, %u parts: %s/%s (%llu octets, %llu line), "
	       "%s/%s charset=%s", root->type, root->subtype,
	       (unsigned)root->nchildren, root->children->type,
	       root->children->subtype,
	       (unsigned long long)(root->children->end -
	                            root->children->body_start),
	       (unsigned long long)root->children->body_lines, html->type,
	       html->subtype,
	       postern_mime_param_get(html->params, html->nparams,
	                              "charset"));
	subject = h->mime_decode_words(root->envelope->subject,
	                               strlen(root->envelope->subject), pool,
	                               NULL);
	h->mime_parse_addresses(root->envelope->from,
	                        strlen(root->envelope->from), pool, &n);
	if (h->mime_parse_date(root->envelope->date,
	                       strlen(root->envelope->date), &when, NULL) < 0)
		when = -1;
	h->log(self, POSTERN_LOG_INFO,
	       "mime_use: subject '%s', %zu address entries, date %lld",
	       subject, n, (long long)when);
	d = h->mime_decoder_create(html->encoding, "utf-8", mu_collect,
	                           &text);
	h->mime_decoder_feed(d, mu_message + html->body_start,
	                     html->end - html->body_start);
	h->mime_decoder_finish(d);
	h->mime_decoder_free(d);
	/* ABI 1.10: and encoded back */
	e = h->mime_encoder_create("base64", mu_collect, &b64);
	h->mime_encoder_feed(e, text.buf, text.len);
	(void)h->mime_encoder_finish(e);
	h->mime_encoder_free(e);
	ser = h->mime_serialize(root, pool, &len);
	back = h->mime_deserialize(ser, len, pool);
	h->log(self, POSTERN_LOG_INFO,
	       "mime_use: html body '%s' (base64 '%s'), round trip %s",
	       text.buf, b64.buf,
	       back != NULL && back->nchildren == 2 &&
	       back->children->next->end == html->end ? "ok" : "FAILED");
}

/* 40 parts whose Content-Type has a 4 KB parameter, in a pool of
 * 64 KiB. */
static void
mu_budget(postern_module_t *self)
{
	const struct postern_host *h = mu_host;
	static const char head[] = "--b\r\nContent-Type: text/plain; x=";
	static const char tail[] = "\r\n\r\ntext\r\n";
	static const char top[] = "Content-Type: multipart/mixed; "
	                          "boundary=b\r\n\r\n";
	const size_t budget = 64 * 1024, value = 4096;
	const size_t len = sizeof(head) - 1 + value + sizeof(tail) - 1;
	postern_pool_t *pool = h->pool_create_limited(4096, budget);
	postern_mime_parser_t *p = h->mime_parser_create(pool, NULL);
	struct postern_mime_part *root;
	char *part = malloc(len);
	size_t i;

	if (part == NULL)
		abort();
	memcpy(part, head, sizeof(head) - 1);
	memset(part + sizeof(head) - 1, 'x', value);
	memcpy(part + sizeof(head) - 1 + value, tail, sizeof(tail) - 1);
	h->mime_parser_feed(p, top, sizeof(top) - 1);
	for (i = 0; i < 40; i++)
		h->mime_parser_feed(p, part, len);
	root = h->mime_parser_finish(p);
	h->log(self, POSTERN_LOG_INFO,
	       "mime_use: over budget: degraded %s, %s parts, within %s",
	       root->flags & POSTERN_MIME_DEGRADED ? "yes" : "no",
	       root->nchildren < 40 ? "fewer" : "all",
	       h->mime_serialize(root, pool, &i) == NULL ||
	       i < budget ? "yes" : "no");
	free(part);
	h->pool_destroy(pool);
}

static int
mime_use_init(const struct postern_host *host, postern_module_t *self)
{
	postern_pool_t *pool;

	mu_host = host;
	pool = host->pool_create(4096);
	mu_report(self, pool);
	host->pool_destroy(pool);
	mu_budget(self);
	return 0;
}

POSTERN_MODULE(.name = "mime_use", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .init = mime_use_init);
