/*
 * fuzz_mime.c - libFuzzer harness for the core's MIME parser and its
 * helpers (core/mime*.c).
 *
 * Input: one parameter byte (a seed for the chunking), then a message.
 * The message is parsed twice: in one piece, and in pieces whose sizes a
 * small PRNG picks from the seed; both trees must serialize to the same
 * octets (the parser may not depend on chunking).  The serialized tree
 * must deserialize, and serialize again to the same octets.  The raw
 * input is also handed to the deserializer as if it were a corrupt cache
 * entry (it must refuse it or give a tree, never crash), and the
 * envelope fields and every leaf body go through the header and body
 * helpers.  Any difference aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "pool.h"

static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
discard(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
}

static void
check_strings(const char *s, postern_pool_t *pool)
{
	size_t n;
	int64_t when;

	if (s == NULL)
		return;
	mime_decode_words(s, strlen(s), pool, &n);
	mime_parse_addresses(s, strlen(s), pool, &n);
	mime_parse_date(s, strlen(s), &when, NULL);
}

static void
walk(const struct postern_mime_part *p, const uint8_t *msg, size_t len,
     postern_pool_t *pool)
{
	const struct postern_mime_part *c;
	postern_mime_decoder_t *d;

	if (p->header_start > p->body_start || p->body_start > p->end ||
	    p->end > len)
		abort();
	if (p->envelope != NULL) {
		check_strings(p->envelope->subject, pool);
		check_strings(p->envelope->from, pool);
		check_strings(p->envelope->date, pool);
	}
	if (p->children == NULL) {
		d = mime_decoder_create(p->encoding,
		                        postern_mime_param_get(p->params,
		                        p->nparams, "charset"), discard, NULL);
		mime_decoder_feed(d, msg + p->body_start,
		                  p->end - p->body_start);
		mime_decoder_finish(d);
		mime_decoder_free(d);
	}
	for (c = p->children; c != NULL; c = c->next) {
		if (c->header_start < p->body_start || c->end > p->end)
			abort();
		walk(c, msg, len, pool);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static postern_pool_t *pool;
	postern_mime_parser_t *p;
	struct postern_mime_part *whole, *chunked, *back;
	const uint8_t *msg;
	size_t len, i, n, l1, l2, l3;
	uint32_t seed;
	void *s1, *s2, *s3;

	if (size < 1)
		return 0;
	if (pool == NULL)
		pool = pool_create(65536);
	seed = 0x9e3779b9u ^ data[0] ^ (uint32_t)size << 8;
	msg = data + 1;
	len = size - 1;

	p = mime_parser_create(pool, NULL);
	mime_parser_feed(p, msg, len);
	whole = mime_parser_finish(p);

	p = mime_parser_create(pool, NULL);
	for (i = 0; i < len; i += n) {
		n = 1 + next_rand(&seed) % 97;
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, msg + i, n);
	}
	chunked = mime_parser_finish(p);

	s1 = mime_serialize(whole, pool, &l1);
	s2 = mime_serialize(chunked, pool, &l2);
	if (l1 != l2 || memcmp(s1, s2, l1) != 0)
		abort();   /* the chunking changed the tree */
	if ((back = mime_deserialize(s1, l1, pool)) == NULL)
		abort();   /* the parser's own tree must read back */
	s3 = mime_serialize(back, pool, &l3);
	if (l3 != l1 || memcmp(s3, s1, l1) != 0)
		abort();
	walk(whole, msg, len, pool);
	(void)mime_deserialize(data, size, pool);
	pool_clear(pool);
	return 0;
}
