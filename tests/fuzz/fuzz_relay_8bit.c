/*
 * fuzz_relay_8bit.c - libFuzzer harness for the relay's 8BITMIME
 * downgrade (modules/relay/relay_8bit.c), whose input is a message as a
 * client sent it.
 *
 * The input is the message.  Whatever it holds:
 *   - UNCHANGED: it had no 8-bit octet and comes out byte for byte;
 *   - CONVERTED: the output has no octet >= 128 and no NUL, and parsed
 *     again it has the same tree, each leaf decoding to the octets the
 *     original's leaf decodes to;
 *   - HEADER and CANNOT: nothing was written;
 *   - IO never happens (the input is a memfd).
 * Any difference aborts, which libFuzzer reports.
 *
 * The module sees the core through the host table; here the table holds
 * only what relay_8bit uses, pointing at the core's MIME parser.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mime/mime.h"
#include "pool.h"
#include "relay_8bit.h"

static struct postern_host host = {
	.size = sizeof(struct postern_host),
	.pool_create = pool_create,
	.pool_destroy = pool_destroy,
	.mime_parser_create = mime_parser_create,
	.mime_parser_feed = mime_parser_feed,
	.mime_parser_finish = mime_parser_finish,
	.mime_encoder_create = mime_encoder_create,
	.mime_encoder_feed = mime_encoder_feed,
	.mime_encoder_finish = mime_encoder_finish,
	.mime_encoder_free = mime_encoder_free,
};

struct buf {
	char *data;
	size_t len;
};

static void
collect(void *arg, const char *data, size_t len)
{
	struct buf *b = arg;

	if ((b->data = realloc(b->data, b->len + len + 1)) == NULL)
		abort();
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static struct buf
decode(const char *msg, const struct postern_mime_part *p)
{
	struct buf b = { NULL, 0 };
	postern_mime_decoder_t *d;

	d = mime_decoder_create(p->encoding, NULL, collect, &b);
	mime_decoder_feed(d, msg + p->body_start, p->end - p->body_start);
	mime_decoder_finish(d);
	mime_decoder_free(d);
	return b;
}

static struct postern_mime_part *
parse(const void *msg, size_t len, postern_pool_t *pool)
{
	postern_mime_parser_t *p = mime_parser_create(pool, NULL);

	mime_parser_feed(p, msg, len);
	return mime_parser_finish(p);
}

static void
same(const char *a, const struct postern_mime_part *pa, const char *b,
     const struct postern_mime_part *pb)
{
	const struct postern_mime_part *ca, *cb;
	struct buf da, db;

	if (strcmp(pa->type, pb->type) != 0 ||
	    strcmp(pa->subtype, pb->subtype) != 0 ||
	    pa->nchildren != pb->nchildren) {
		fprintf(stderr, "tree differs: %s/%s (%u) vs %s/%s (%u) at "
		    "%llu\n", pa->type, pa->subtype, pa->nchildren, pb->type,
		    pb->subtype, pb->nchildren,
		    (unsigned long long)pa->header_start);
		abort();
	}
	if (pa->nchildren == 0) {
		da = decode(a, pa);
		db = decode(b, pb);
		if (da.len != db.len ||
		    (da.len > 0 && memcmp(da.data, db.data, da.len) != 0)) {
			fprintf(stderr, "leaf at %llu decodes differently\n",
			    (unsigned long long)pa->header_start);
			abort();
		}
		free(da.data);
		free(db.data);
		return;
	}
	for (ca = pa->children, cb = pb->children; ca != NULL;
	    ca = ca->next, cb = cb->next)
		same(a, ca, b, cb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_out o;
	enum relay_8bit_result r;
	postern_pool_t *pool;
	char err[512], *out;
	size_t len, i;
	int fd;

	if ((fd = memfd_create("fuzz_relay_8bit", 0)) < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	relay_out_init_mem(&o);
	r = relay_8bit_downgrade(&host, fd, 0, size, &o, err, sizeof(err));
	out = relay_out_take(&o, &len);
	close(fd);
	switch (r) {
	case RELAY_8BIT_UNCHANGED:
		if (len != size || (size > 0 && memcmp(out, data, size) != 0))
			abort();
		for (i = 0; i < size; i++)
			if (data[i] == 0 || data[i] >= 0x80)
				abort();
		break;
	case RELAY_8BIT_CONVERTED:
		for (i = 0; i < len; i++)
			if (out[i] == 0 || (unsigned char)out[i] >= 0x80)
				abort();
		pool = pool_create(0);
		same((const char *)data, parse(data, size, pool), out,
		    parse(out, len, pool));
		pool_destroy(pool);
		break;
	case RELAY_8BIT_HEADER:
	case RELAY_8BIT_CANNOT:
		if (len != 0)
			abort();
		break;
	case RELAY_8BIT_IO:
		fprintf(stderr, "I/O error: %s\n", err);
		abort();
	}
	free(out);
	return 0;
}
