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
 *
 * Memory bombs: the pool octets a parse or a helper takes must stay
 * linear in its input (MEM_PER_OCTET per octet, plus a few blocks), so
 * an allocation that grows with the square of a field aborts at any
 * input size, long before -rss_limit_mb would notice.  The message is
 * also parsed from a pool with a small budget (pool_create_limited),
 * which the pool must not pass and whose degraded tree must be valid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "pool.h"

/* Pool octets allowed per input octet; an address of 3 octets ("",)
 * takes about 80. */
#define MEM_PER_OCTET 128
#define MEM_SLACK (256 * 1024)

static void
check_linear(postern_pool_t *pool, size_t before, size_t len)
{
	if (pool_allocated(pool) - before > MEM_PER_OCTET * len + MEM_SLACK)
		abort();   /* super-linear memory */
}

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
	size_t n, before;
	int64_t when;

	if (s == NULL)
		return;
	before = pool_allocated(pool);
	mime_decode_words(s, strlen(s), pool, &n);
	check_linear(pool, before, strlen(s));
	before = pool_allocated(pool);
	mime_parse_addresses(s, strlen(s), pool, &n);
	check_linear(pool, before, strlen(s));
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
		check_strings(p->envelope->to, pool);
		check_strings(p->envelope->cc, pool);
		check_strings(p->envelope->reply_to, pool);
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
	postern_pool_t *small;
	postern_mime_parser_t *p;
	struct postern_mime_part *whole, *chunked, *back;
	const uint8_t *msg;
	size_t len, i, n, l1, l2, l3;
	uint32_t seed;
	size_t budget;
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
	check_linear(pool, 0, len);

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

	/* a budget the input may well need more than: the parse degrades
	 * within it, into a tree as valid as any */
	budget = 4096 + (size_t)data[0] * 256;
	small = pool_create_limited(1024, budget);
	p = mime_parser_create(small, NULL);
	mime_parser_feed(p, msg, len);
	whole = mime_parser_finish(p);
	walk(whole, msg, len, small);
	if ((s1 = mime_serialize(whole, small, &l1)) != NULL &&
	    mime_deserialize(s1, l1, pool) == NULL)
		abort();
	if (pool_allocated(small) > budget)
		abort();   /* past the budget */
	pool_destroy(small);
	pool_clear(pool);
	return 0;
}
