/*
 * test_imap_parser.c - the IMAP command reader and argument scanner
 * (modules/imap/imap_parser.c), sequence sets, modified UTF-7 and the
 * output forms (imap_utf7.c, imap_buf.c).
 *
 * The reader is fed the way a connection would feed it: in pieces of
 * every size, so a command split anywhere (inside a literal, between CR
 * and LF) must come out the same.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "imap.h"
#include "imap_parser.h"

static const struct imap_reader_limits lim_default = {
	.max_line = 200, .max_literal = 1000, .max_command = 4000,
	.literal_plus = 1,
};

/* What a session sees from one stream. */
struct events {
	int commands, continues, bads, fatals;
	char spilled[4096];   /* octets handed out by IMAP_READ_SPILL */
	size_t spilled_len;
	int spill_firsts;
	char last[4096];
	size_t last_len;
	char bad_tag[64];
	char bad_error[128];
};

/* Feeds `data` in pieces of `chunk` octets, recording events. */
static void
feed(struct imap_reader *r, const char *data, size_t len, size_t chunk,
     struct events *ev)
{
	size_t off = 0, used, n;
	enum imap_read e;

	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		size_t piece_off = 0;
		while (piece_off < n) {
			e = imap_reader_feed(r, data + off + piece_off,
			                     n - piece_off, &used);
			piece_off += used;
			switch (e) {
			case IMAP_READ_AGAIN:
				break;
			case IMAP_READ_CONTINUE:
				ev->continues++;
				break;
			case IMAP_READ_COMMAND:
				ev->commands++;
				memcpy(ev->last, r->buf, r->len);
				ev->last_len = r->len;
				imap_reader_reset(r);
				break;
			case IMAP_READ_BAD:
				ev->bads++;
				snprintf(ev->bad_tag, sizeof(ev->bad_tag), "%s",
				         r->tag);
				snprintf(ev->bad_error, sizeof(ev->bad_error),
				         "%s", r->error);
				break;
			case IMAP_READ_FATAL:
				ev->fatals++;
				return;
			case IMAP_READ_SPILL:
				memcpy(ev->spilled + ev->spilled_len,
				       r->spill_data, r->spill_n);
				ev->spilled_len += r->spill_n;
				ev->spill_firsts += r->spill_first;
				break;
			}
			if (used == 0 && e == IMAP_READ_AGAIN)
				break;
		}
		off += n;
	}
}

static void
test_simple_command(void)
{
	struct imap_reader r;
	struct events ev = { 0 };

	imap_reader_init(&r, &lim_default);
	feed(&r, "a1 NOOP\r\nb2 CAPABILITY\r\n", 24, 1000, &ev);
	CU_ASSERT_EQUAL(ev.commands, 2);
	CU_ASSERT_EQUAL(ev.last_len, 13);
	CU_ASSERT(memcmp(ev.last, "b2 CAPABILITY", 13) == 0);
	imap_reader_free(&r);
}

static void
test_literal_split_everywhere(void)
{
	static const char in[] = "a LOGIN {5}\r\nal\r\nce {3}\r\nx y\r\n";
	size_t chunk;

	for (chunk = 1; chunk <= sizeof(in); chunk++) {
		struct imap_reader r;
		struct events ev = { 0 };

		imap_reader_init(&r, &lim_default);
		feed(&r, in, sizeof(in) - 1, chunk, &ev);
		CU_ASSERT_EQUAL(ev.commands, 1);
		CU_ASSERT_EQUAL(ev.continues, 2);
		CU_ASSERT_EQUAL(ev.last_len, 24);
		CU_ASSERT(memcmp(ev.last, "a LOGIN {5}al\r\nce {3}x y", 24)
		          == 0);
		imap_reader_free(&r);
	}
}

static void
test_literal_plus_no_continuation(void)
{
	struct imap_reader r;
	struct events ev = { 0 };
	static const char in[] = "a APPEND x {3+}\r\nabc\r\n";

	imap_reader_init(&r, &lim_default);
	feed(&r, in, sizeof(in) - 1, 3, &ev);
	CU_ASSERT_EQUAL(ev.commands, 1);
	CU_ASSERT_EQUAL(ev.continues, 0);
	imap_reader_free(&r);
}

static void
test_literal_too_big_sync(void)
{
	struct imap_reader r;
	struct events ev = { 0 };
	static const char in[] =
		"t7 APPEND x {99999999999999}\r\nt8 NOOP\r\n";

	imap_reader_init(&r, &lim_default);
	feed(&r, in, sizeof(in) - 1, 1000, &ev);
	CU_ASSERT_EQUAL(ev.bads, 1);
	CU_ASSERT_STRING_EQUAL(ev.bad_tag, "t7");
	CU_ASSERT_EQUAL(ev.continues, 0);
	/* Nothing was allocated for it and the next command works. */
	CU_ASSERT(r.cap <= 1024);
	CU_ASSERT_EQUAL(ev.commands, 1);
	CU_ASSERT(memcmp(ev.last, "t8 NOOP", 7) == 0);
	imap_reader_free(&r);
}

static void
test_literal_too_big_nonsync_is_fatal(void)
{
	struct imap_reader r;
	struct events ev = { 0 };
	static const char in[] = "t APPEND x {5000+}\r\n";

	imap_reader_init(&r, &lim_default);
	feed(&r, in, sizeof(in) - 1, 1000, &ev);
	CU_ASSERT_EQUAL(ev.fatals, 1);
	imap_reader_free(&r);
}

static void
test_literal_minus(void)
{
	struct imap_reader_limits lim = lim_default;
	struct imap_reader r;
	struct events ev = { 0 };
	char in[6000];
	size_t n;

	lim.literal_plus = 0;
	lim.max_literal = 10000;
	lim.max_command = 20000;
	imap_reader_init(&r, &lim);
	n = (size_t)snprintf(in, sizeof(in), "t APPEND x {4097+}\r\n");
	feed(&r, in, n, 1000, &ev);
	CU_ASSERT_EQUAL(ev.fatals, 1);
	imap_reader_free(&r);

	memset(&ev, 0, sizeof(ev));
	imap_reader_init(&r, &lim);
	n = (size_t)snprintf(in, sizeof(in), "t APPEND x {4096+}\r\n");
	memset(in + n, 'x', 4096);
	memcpy(in + n + 4096, "\r\n", 2);
	feed(&r, in, n + 4098, 700, &ev);
	CU_ASSERT_EQUAL(ev.commands, 1);
	CU_ASSERT_EQUAL(ev.fatals, 0);
	imap_reader_free(&r);
}

static void
test_long_line(void)
{
	struct imap_reader r;
	struct events ev = { 0 };
	char in[1000];

	imap_reader_init(&r, &lim_default);
	memcpy(in, "zz NOOP ", 8);
	memset(in + 8, 'a', 500);
	memcpy(in + 508, "\r\nq NOOP\r\n", 10);
	feed(&r, in, 518, 50, &ev);
	CU_ASSERT_EQUAL(ev.bads, 1);
	CU_ASSERT_STRING_EQUAL(ev.bad_tag, "zz");
	CU_ASSERT_EQUAL(ev.commands, 1);
	CU_ASSERT(memcmp(ev.last, "q NOOP", 6) == 0);
	imap_reader_free(&r);
}

static void
test_nul_byte(void)
{
	struct imap_reader r;
	struct events ev = { 0 };
	static const char in[] = "n1 NO\0OP\r\nn2 NOOP\r\n";

	imap_reader_init(&r, &lim_default);
	feed(&r, in, sizeof(in) - 1, 1000, &ev);
	CU_ASSERT_EQUAL(ev.bads, 1);
	CU_ASSERT_STRING_EQUAL(ev.bad_tag, "n1");
	CU_ASSERT_EQUAL(ev.commands, 1);
	imap_reader_free(&r);
}

static void
test_bare_lf(void)
{
	struct imap_reader r;
	struct events ev = { 0 };

	imap_reader_init(&r, &lim_default);
	feed(&r, "a NOOP\nb NOOP\n", 14, 1000, &ev);
	CU_ASSERT_EQUAL(ev.commands, 2);
	CU_ASSERT_EQUAL(ev.last_len, 6);
	imap_reader_free(&r);
}

/* ---- the scanner ------------------------------------------------------*/

static void *
test_alloc(void *ctx, size_t n)
{
	/* A leak-free arena: everything goes on a list freed per test. */
	void **list = ctx;
	void **blk = calloc(1, sizeof(void *) + n);

	blk[0] = *list;
	*list = blk;
	return blk + 1;
}

static void
arena_free(void *list)
{
	void **b = list, **next;

	while (b != NULL) {
		next = b[0];
		free(b);
		b = next;
	}
}

static void
test_scan_strings(void)
{
	char buf[] = "a1 LOGIN \"bo\\\"b\" {3}x y NIL atom]x";
	struct imap_args a;
	struct imap_str s;
	void *arena = NULL;

	imap_args_init(&a, buf, strlen(buf), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_tag(&a, &s), 0);
	CU_ASSERT(s.len == 2 && memcmp(s.s, "a1", 2) == 0);
	CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
	CU_ASSERT_EQUAL(imap_arg_atom(&a, &s), 0);
	CU_ASSERT(imap_str_is(&s, "login"));
	CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
	CU_ASSERT_EQUAL(imap_arg_astring(&a, &s), 0);
	CU_ASSERT(s.len == 4 && memcmp(s.s, "bo\"b", 4) == 0);
	CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
	CU_ASSERT_EQUAL(imap_arg_astring(&a, &s), 0);
	CU_ASSERT(s.len == 3 && s.literal && memcmp(s.s, "x y", 3) == 0);
	CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
	CU_ASSERT_EQUAL(imap_arg_nstring(&a, &s), 0);
	CU_ASSERT(s.s == NULL);
	CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
	CU_ASSERT_EQUAL(imap_arg_astring(&a, &s), 0);
	CU_ASSERT(s.len == 6);
	CU_ASSERT_EQUAL(imap_arg_end(&a), 0);
	arena_free(arena);
}

static void
test_scan_errors(void)
{
	char b1[] = "\"unterminated";
	char b2[] = "{10}abc";
	char b3[] = "\"bad\\escape\"";
	char b4[] = "99999999999";
	struct imap_args a;
	struct imap_str s;
	uint32_t n;

	imap_args_init(&a, b1, strlen(b1), test_alloc, NULL);
	CU_ASSERT_EQUAL(imap_arg_string(&a, &s), -1);
	CU_ASSERT_PTR_NOT_NULL(a.error);
	imap_args_init(&a, b2, strlen(b2), test_alloc, NULL);
	CU_ASSERT_EQUAL(imap_arg_string(&a, &s), -1);
	imap_args_init(&a, b3, strlen(b3), test_alloc, NULL);
	CU_ASSERT_EQUAL(imap_arg_string(&a, &s), -1);
	imap_args_init(&a, b4, strlen(b4), test_alloc, NULL);
	CU_ASSERT_EQUAL(imap_arg_number(&a, &n), -1);
}

static void
test_seqset(void)
{
	char buf[] = "1:3,7,10:*,5:4";
	struct imap_args a;
	struct imap_seqset set;
	struct imap_range out[8];
	void *arena = NULL;
	size_t n;

	imap_args_init(&a, buf, strlen(buf), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_seqset(&a, &set), 0);
	CU_ASSERT_EQUAL(set.n, 4);
	CU_ASSERT(imap_seqset_contains(&set, 2, 20));
	CU_ASSERT(!imap_seqset_contains(&set, 6, 20));
	CU_ASSERT(imap_seqset_contains(&set, 20, 20));
	CU_ASSERT(!imap_seqset_contains(&set, 9, 20));
	n = imap_seqset_normalize(&set, 12, 12, out);
	/* 1:5, 7, 10:12 */
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT(out[0].lo == 1 && out[0].hi == 5);
	CU_ASSERT(out[1].lo == 7 && out[1].hi == 7);
	CU_ASSERT(out[2].lo == 10 && out[2].hi == 12);
	CU_ASSERT(imap_seqset_exceeds(&set, 8, 8));
	CU_ASSERT(!imap_seqset_exceeds(&set, 12, 12));
	arena_free(arena);
}

static void
test_seqset_star_below(void)
{
	/* "5:*" with * = 3 is 3:5 (RFC 3501 9, seq-range). */
	char buf[] = "5:*";
	struct imap_args a;
	struct imap_seqset set;
	struct imap_range out[2];
	void *arena = NULL;

	imap_args_init(&a, buf, strlen(buf), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_seqset(&a, &set), 0);
	CU_ASSERT_EQUAL(imap_seqset_normalize(&set, 3, UINT32_MAX, out), 1);
	CU_ASSERT(out[0].lo == 3 && out[0].hi == 5);
	arena_free(arena);
}

static void
test_seqset_bad(void)
{
	char b1[] = "0:3";
	char b2[] = "1,,2";
	char b3[] = "1:";
	struct imap_args a;
	struct imap_seqset set;
	void *arena = NULL;

	imap_args_init(&a, b1, strlen(b1), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_seqset(&a, &set), -1);
	imap_args_init(&a, b2, strlen(b2), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_seqset(&a, &set), -1);
	imap_args_init(&a, b3, strlen(b3), test_alloc, &arena);
	CU_ASSERT_EQUAL(imap_arg_seqset(&a, &set), -1);
	arena_free(arena);
}

static void
test_utf7(void)
{
	char *e, *d;

	e = imap_utf7_encode("Entw\xc3\xbcrfe & Co");
	CU_ASSERT_STRING_EQUAL(e, "Entw&APw-rfe &- Co");
	d = imap_utf7_decode(e, strlen(e));
	CU_ASSERT_STRING_EQUAL(d, "Entw\xc3\xbcrfe & Co");
	free(e);
	free(d);
	/* RFC 3501 5.1.3's example. */
	d = imap_utf7_decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-", 31);
	CU_ASSERT_STRING_EQUAL(d, "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	                          "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	free(d);
	/* An emoji (surrogate pair) round-trips. */
	e = imap_utf7_encode("\xf0\x9f\x93\xa7");
	d = imap_utf7_decode(e, strlen(e));
	CU_ASSERT_STRING_EQUAL(d, "\xf0\x9f\x93\xa7");
	free(e);
	free(d);
	CU_ASSERT_PTR_NULL(imap_utf7_decode("&AGE-", 5)); /* "a" encoded */
	CU_ASSERT_PTR_NULL(imap_utf7_decode("&Jjo", 4));  /* no '-' */
	CU_ASSERT_PTR_NULL(imap_utf7_decode("a\xc3\xbc", 3)); /* 8-bit */
	CU_ASSERT_PTR_NULL(imap_utf7_encode("\xff"));
}

/* UTF-8 names (RFC 6855, RFC 9051): what a session that enabled them
 * may send, and how names are written for it and for others. */
static void
test_utf8_names(void)
{
	struct imap_buf b = { 0 };

	CU_ASSERT(imap_utf8_name_ok("Entw\xc3\xbcrfe", 9));
	CU_ASSERT(imap_utf8_name_ok("a&b/x&APw-", 10));
	CU_ASSERT(imap_utf8_name_ok("\xf0\x9f\x93\xa7", 4));
	CU_ASSERT(imap_utf8_name_ok("", 0));
	CU_ASSERT(!imap_utf8_name_ok("bad\xff", 4));
	CU_ASSERT(!imap_utf8_name_ok("cut\xc3", 4));      /* truncated */
	/* a sequence that would run past len, though the octet after it
	 * continues it */
	CU_ASSERT(!imap_utf8_name_ok("\xe2\x82\xac", 2));
	CU_ASSERT(!imap_utf8_name_ok("\xc0\xaf", 2));     /* overlong "/" */
	CU_ASSERT(!imap_utf8_name_ok("\xed\xa0\x80", 3)); /* surrogate */
	CU_ASSERT(!imap_utf8_name_ok("a\tb", 3));
	CU_ASSERT(!imap_utf8_name_ok("a\x7f", 2));
	CU_ASSERT(!imap_utf8_name_ok("a\xc2\x85", 3));    /* C1 NEL */
	CU_ASSERT(!imap_utf8_name_ok("a\0b", 3));

	imap_buf_mailbox(&b, "Entw\xc3\xbcrfe \"&\"", 0);
	CU_ASSERT_STRING_EQUAL(b.p, "\"Entw&APw-rfe \\\"&-\\\"\"");
	b.len = 0;
	imap_buf_mailbox(&b, "Entw\xc3\xbcrfe \"&\"", 1);
	CU_ASSERT_STRING_EQUAL(b.p, "\"Entw\xc3\xbcrfe \\\"&\\\"\"");
	b.len = 0;
	/* not UTF-8 (a store's name from elsewhere): a literal */
	imap_buf_mailbox(&b, "x\xff", 1);
	CU_ASSERT_STRING_EQUAL(b.p, "{2}\r\nx\xff");
	b.len = 0;
	imap_buf_utf8_string(&b, "Gr\xc3\xbc\xc3\x9f""e", 7);
	CU_ASSERT_STRING_EQUAL(b.p, "\"Gr\xc3\xbc\xc3\x9f""e\"");
	imap_buf_free(&b);
}

static void
test_buf_forms(void)
{
	struct imap_buf b = { 0 };
	static const char *const kw[] = { "$Junk", "work" };
	static const uint32_t mkw[] = { 1 };
	static const uint32_t uids[] = { 1, 2, 3, 7, 9, 10 };

	imap_buf_string(&b, "a\"b\\c", 5);
	CU_ASSERT_STRING_EQUAL(b.p, "\"a\\\"b\\\\c\"");
	b.len = 0;
	imap_buf_string(&b, "x\r\ny", 4);
	CU_ASSERT_STRING_EQUAL(b.p, "{4}\r\nx\r\ny");
	b.len = 0;
	imap_buf_flags(&b, POSTERN_MSG_SEEN | POSTERN_MSG_DELETED, mkw, 1,
	               kw, 2);
	CU_ASSERT_STRING_EQUAL(b.p, "(\\Seen \\Deleted work)");
	b.len = 0;
	imap_buf_uidset(&b, uids, 6);
	CU_ASSERT_STRING_EQUAL(b.p, "1:3,7,9:10");
	imap_buf_free(&b);
}

/* An APPEND literal over spill_literal is handed out, not buffered, in
 * any chunking; the scanner finds it only where the caller allows it.
 * A large literal in another command, or a second one, is refused. */
static void
test_spill(void)
{
	static const char cmd[] = "a APPEND INBOX {600}\r\n";
	struct imap_reader_limits lim = lim_default;
	char msg[600], stream[700];
	size_t chunk, n;

	lim.spill_literal = 100;
	memset(msg, 'm', sizeof(msg));
	msg[0] = 'A';
	msg[599] = 'Z';
	n = (size_t)snprintf(stream, sizeof(stream), "%s", cmd);
	memcpy(stream + n, msg, sizeof(msg));
	memcpy(stream + n + sizeof(msg), " x\r\n", 4);
	n += sizeof(msg) + 4;
	for (chunk = 1; chunk <= n; chunk += 37) {
		struct imap_reader r;
		struct events ev = { 0 };

		imap_reader_init(&r, &lim);
		feed(&r, stream, n, chunk, &ev);
		CU_ASSERT_EQUAL(ev.commands, 1);
		CU_ASSERT_EQUAL(ev.spilled_len, sizeof(msg));
		CU_ASSERT_EQUAL(ev.spill_firsts, 1);
		CU_ASSERT(memcmp(ev.spilled, msg, sizeof(msg)) == 0);
		CU_ASSERT(ev.last_len < 40);
		imap_reader_free(&r);
	}
	/* The buffer keeps the line only: the scanner sees {600} there. */
	{
		struct imap_reader r;
		struct imap_args a;
		struct imap_str mb, s;
		void *arena = NULL;   /* nothing here allocates */
		size_t pos;

		imap_reader_init(&r, &lim);
		(void)imap_reader_feed(&r, stream, strlen(cmd), &pos);
		(void)imap_reader_feed(&r, stream + strlen(cmd), 600, &pos);
		CU_ASSERT_EQUAL(pos, 600);
		CU_ASSERT_EQUAL(imap_reader_feed(&r, " x\r\n", 4, &n),
		                IMAP_READ_COMMAND);
		imap_args_init(&a, r.buf, r.len, test_alloc, &arena);
		imap_args_spills(&a, &r);
		CU_ASSERT_EQUAL(imap_arg_tag(&a, &s), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_atom(&a, &s), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_astring(&a, &mb), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		{
			char *save = a.p;
			CU_ASSERT_EQUAL(imap_arg_string(&a, &s), -1);
			a.p = save;
			a.error = NULL;
		}
		a.spill_ok = 1;
		CU_ASSERT_EQUAL(imap_arg_string(&a, &s), 0);
		CU_ASSERT(s.s == NULL && s.len == 600 && s.literal == 2);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_atom(&a, &s), 0);
		CU_ASSERT_EQUAL(imap_arg_end(&a), 0);
		imap_reader_free(&r);
	}
	/* Not an APPEND: refused from the announcement. */
	{
		struct imap_reader r;
		struct events ev = { 0 };
		static const char search[] = "s SEARCH TEXT {600}\r\n";

		imap_reader_init(&r, &lim);
		feed(&r, search, strlen(search), 5, &ev);
		CU_ASSERT_EQUAL(ev.bads, 1);
		CU_ASSERT_EQUAL(ev.continues, 0);
		CU_ASSERT_STRING_EQUAL(ev.bad_error, "literal too large");
		imap_reader_free(&r);
	}
	/* Several large literals in one APPEND (MULTIAPPEND) are spilled
	 * in turn, and the scanner finds each; past max_literal octets
	 * together the next is refused. */
	{
		struct imap_reader r;
		struct events ev = { 0 };
		struct imap_args a;
		struct imap_str x;
		void *arena = NULL;
		size_t off, used;
		char two[800];
		size_t k = (size_t)snprintf(two, sizeof(two),
		                            "a APPEND INBOX {200}\r\n");

		memset(two + k, 'n', 200);
		k += 200;
		k += (size_t)snprintf(two + k, sizeof(two) - k, " {300}\r\n");
		memset(two + k, 'o', 300);
		k += 300;
		k += (size_t)snprintf(two + k, sizeof(two) - k, "\r\n");
		imap_reader_init(&r, &lim);
		feed(&r, two, k, 64, &ev);
		CU_ASSERT_EQUAL(ev.bads, 0);
		CU_ASSERT_EQUAL(ev.commands, 1);
		CU_ASSERT_EQUAL(ev.continues, 2);
		CU_ASSERT_EQUAL(ev.spill_firsts, 2);
		CU_ASSERT_EQUAL(ev.spilled_len, 500);
		imap_reader_free(&r);

		imap_reader_init(&r, &lim);
		for (off = 0; off < k; off += used)
			if (imap_reader_feed(&r, two + off, k - off, &used) ==
			    IMAP_READ_COMMAND)
				break;
		CU_ASSERT_EQUAL(r.nspills, 2);
		imap_args_init(&a, r.buf, r.len, test_alloc, &arena);
		imap_args_spills(&a, &r);
		a.spill_ok = 1;
		CU_ASSERT_EQUAL(imap_arg_tag(&a, &x), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_atom(&a, &x), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_astring(&a, &x), 0);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_string(&a, &x), 0);
		CU_ASSERT(x.s == NULL && x.len == 200 && x.literal == 2);
		CU_ASSERT_EQUAL(imap_arg_sp(&a), 0);
		CU_ASSERT_EQUAL(imap_arg_string(&a, &x), 0);
		CU_ASSERT(x.s == NULL && x.len == 300 && x.literal == 2);
		CU_ASSERT_EQUAL(imap_arg_end(&a), 0);
		imap_reader_free(&r);

		k -= 2;
		k += (size_t)snprintf(two + k, sizeof(two) - k, " {600}\r\n");
		memset(&ev, 0, sizeof(ev));
		imap_reader_init(&r, &lim);
		feed(&r, two, k, 64, &ev);
		CU_ASSERT_EQUAL(ev.bads, 1);
		CU_ASSERT_EQUAL(ev.continues, 2);
		CU_ASSERT_STRING_EQUAL(ev.bad_error, "literal too large");
		imap_reader_free(&r);
	}
}

static CU_TestInfo reader_tests[] = {
	{ "simple commands", test_simple_command },
	{ "literal split at every point", test_literal_split_everywhere },
	{ "LITERAL+ sends no continuation", test_literal_plus_no_continuation },
	{ "huge sync literal: BAD, no allocation",
	  test_literal_too_big_sync },
	{ "huge non-sync literal: fatal", test_literal_too_big_nonsync_is_fatal },
	{ "LITERAL- 4096 limit", test_literal_minus },
	{ "over-long line: BAD, next command works", test_long_line },
	{ "NUL byte: BAD, next command works", test_nul_byte },
	{ "bare LF ends a line", test_bare_lf },
	{ "APPEND literal spilled, others refused", test_spill },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo scanner_tests[] = {
	{ "strings, literals, NIL", test_scan_strings },
	{ "syntax errors", test_scan_errors },
	{ "sequence sets", test_seqset },
	{ "star below a number", test_seqset_star_below },
	{ "bad sequence sets", test_seqset_bad },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo form_tests[] = {
	{ "modified UTF-7", test_utf7 },
	{ "UTF-8 mailbox names", test_utf8_names },
	{ "strings, flags, UID sets", test_buf_forms },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "imap reader", NULL, NULL, NULL, NULL, reader_tests },
	{ "imap scanner", NULL, NULL, NULL, NULL, scanner_tests },
	{ "imap forms", NULL, NULL, NULL, NULL, form_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
