/*
 * fuzz_imap.c - libFuzzer harness for the IMAP command reader and
 * argument scanner (modules/imap/imap_parser.c).
 *
 * Input: one parameter byte, then the byte stream a client sends.  The
 * parameter picks the piece size the stream is fed in (1..64 octets)
 * and whether LITERAL+ or LITERAL- limits apply, and whether an APPEND
 * literal over 500 octets is spilled (handed out, not buffered; the
 * scanner then meets it as a literal whose octets are elsewhere, taken
 * or refused by turns).  An octet 0x01 where a line may start stands
 * for a line the host dropped as too long (imap_reader_abort).  Every
 * whole command
 * the reader returns is then scanned the way the command handlers do:
 * tag, command, and a mix of astrings, lists, numbers and sequence
 * sets, until the scanner reports an error or the command ends.  The
 * checks: the reader never hands out more than it was given, never
 * grows past its limits, and the scanner never reads outside the
 * command (ASan) or loops.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(expr)                                                        \
	do {                                                               \
		if (!(expr)) {                                             \
			fprintf(stderr, "fuzz_imap: %s:%d: %s\n", __FILE__, \
			        __LINE__, #expr);                           \
			abort();                                           \
		}                                                          \
	} while (0)

struct arena {
	void *blocks[4096];
	size_t n;
};

static void *
arena_alloc(void *ctx, size_t n)
{
	struct arena *a = ctx;
	void *p;

	CHECK(a->n < sizeof(a->blocks) / sizeof(a->blocks[0]));
	p = calloc(1, n ? n : 1);
	CHECK(p != NULL);
	a->blocks[a->n++] = p;
	return p;
}

static void
scan_command(char *buf, size_t len, const struct imap_reader *r)
{
	struct arena ar = { .n = 0 };
	struct imap_args a;
	struct imap_str s;
	struct imap_seqset set;
	uint64_t n64;
	uint32_t n32;
	size_t i, steps = 0;
	int c;

	imap_args_init(&a, buf, len, arena_alloc, &ar);
	for (i = 0; i < r->nspills; i++)
		CHECK(r->spills[i].pos <= len);
	imap_args_spills(&a, r);
	a.spill_ok = (int)(len & 1);
	if (imap_arg_tag(&a, &s) == 0 && imap_arg_sp(&a) == 0)
		(void)imap_arg_atom(&a, &s);
	while (a.error == NULL && !imap_arg_at_end(&a) && steps++ < 10000) {
		char *before = a.p;

		c = imap_arg_peek(&a);
		if (c == ' ' || c == '(' || c == ')' || c == '[' || c == ']' ||
		    c == '<' || c == '>' || c == '.')
			a.p++;
		else if (c >= '0' && c <= '9') {
			if (steps % 3 == 0)
				(void)imap_arg_seqset(&a, &set);
			else if (steps % 3 == 1)
				(void)imap_arg_number(&a, &n32);
			else
				(void)imap_arg_number64(&a, &n64);
		} else if (c == '*')
			(void)imap_arg_seqset(&a, &set);
		else if (c == '\\')
			(void)imap_arg_flag(&a, &s);
		else if (c == '%')
			(void)imap_arg_list_mailbox(&a, &s);
		else if (steps % 2 == 0)
			(void)imap_arg_nstring(&a, &s);
		else
			(void)imap_arg_fetch_atom(&a, &s);
		CHECK(a.p >= before && a.p <= a.end);
		if (a.p == before && a.error == NULL)
			a.p++; /* a character no scanner takes */
	}
	for (i = 0; i < ar.n; i++)
		free(ar.blocks[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
		.max_line = 300, .max_literal = 2000, .max_command = 8000,
	};
	struct imap_reader r;
	size_t off = 1, piece, used, fed;
	enum imap_read ev;

	if (size < 1)
		return 0;
	piece = 1 + (data[0] & 63);
	lim.literal_plus = (data[0] & 64) != 0;
	lim.spill_literal = (data[0] & 128) ? 500 : 0;
	imap_reader_init(&r, &lim);
	while (off < size) {
		if (data[off] == 0x01 && r.literal_left == 0) {
			/* The host dropped a line longer than its input
			 * buffer (imap_parse): the command so far goes. */
			CHECK(imap_reader_abort(&r, "too long") ==
			      IMAP_READ_BAD);
			CHECK(r.len == 0 && !imap_reader_busy(&r));
			CHECK(r.tag[0] != '\0');
			off++;
			continue;
		}
		fed = size - off < piece ? size - off : piece;
		ev = imap_reader_feed(&r, (const char *)data + off, fed, &used);
		CHECK(used <= fed);
		CHECK(r.len <= lim.max_command + 1);
		off += used;
		if (ev == IMAP_READ_SPILL) {
			CHECK(r.spill_n <= used);
			CHECK(r.spill_data >= (const char *)data + off - used &&
			      r.spill_data + r.spill_n <=
			              (const char *)data + off);
		}
		if (ev == IMAP_READ_COMMAND) {
			CHECK(r.literal_left == 0);
			scan_command(r.buf, r.len, &r);
			imap_reader_reset(&r);
		} else if (ev == IMAP_READ_FATAL) {
			break;
		} else if (ev == IMAP_READ_AGAIN) {
			CHECK(used == fed);
		}
	}
	imap_reader_free(&r);
	return 0;
}
