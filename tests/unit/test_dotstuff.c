/*
 * test_dotstuff.c - dot-stuffing for SMTP DATA and POP3 RETR/TOP
 * (core/dotstuff.c): leading dots, lines and CR LF pairs split across
 * chunk boundaries, bare LF, a last line without CRLF, TOP's line limit.
 * Every case is run with every chunk size from 1 to the message's
 * length, so each boundary falls everywhere once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "unit.h"

/* Runs the filter over `msg` (`len` octets) cut into pieces of `chunk`
 * and compares the whole output with `want`. */
static int
stuff_len(const char *msg, size_t len, size_t chunk, int top,
          uint32_t lines, const char *want)
{
	struct dotstuff d;
	size_t off = 0, w = 0, n;
	char *out = malloc(DOTSTUFF_OUT_MAX(len) + DOTSTUFF_TAIL_MAX + 1);
	int ok;

	dotstuff_init(&d, top, lines);
	while (off < len && !d.done) {
		n = len - off < chunk ? len - off : chunk;
		w += dotstuff_feed(&d, msg + off, n, out + w);
		if (w > DOTSTUFF_OUT_MAX(off + n)) {
			printf("\noutput bound broken at %zu\n", off + n);
			free(out);
			return 0;
		}
		off += n;
	}
	w += dotstuff_finish(&d, out + w);
	out[w] = '\0';
	ok = strlen(want) == w && memcmp(out, want, w) == 0;
	if (!ok)
		printf("\nchunk %zu: got [%s] want [%s]\n", chunk, out, want);
	free(out);
	return ok;
}

/* The same with every chunk size. */
static int
stuff_every(const char *msg, int top, uint32_t lines, const char *want)
{
	size_t chunk, len = strlen(msg);
	int ok = 1;

	for (chunk = 1; chunk <= (len > 0 ? len : 1); chunk++)
		ok &= stuff_len(msg, len, chunk, top, lines, want);
	return ok;
}

static void
test_leading_dots(void)
{
	CU_ASSERT(stuff_every("Subject: x\r\n\r\n.\r\n..two\r\nmid.dle\r\n"
	                      ".end\r\n",
	                      0, 0, "Subject: x\r\n\r\n..\r\n...two\r\n"
	                      "mid.dle\r\n..end\r\n.\r\n"));
	CU_ASSERT(stuff_every(".first\r\n", 0, 0, "..first\r\n.\r\n"));
	/* A dot line that ends the message without CRLF is stuffed too:
	 * otherwise it would read as the end of data. */
	CU_ASSERT(stuff_every("a\r\n.", 0, 0, "a\r\n..\r\n.\r\n"));
}

static void
test_empty_and_tail(void)
{
	CU_ASSERT(stuff_every("", 0, 0, ".\r\n"));
	CU_ASSERT(stuff_every("a\r\n", 0, 0, "a\r\n.\r\n"));
	/* No final CRLF: one is added before the dot. */
	CU_ASSERT(stuff_every("a\r\nlast", 0, 0, "a\r\nlast\r\n.\r\n"));
	/* A lone CR at the very end gets its LF, not a second CR. */
	CU_ASSERT(stuff_every("a\r\nlast\r", 0, 0, "a\r\nlast\r\n.\r\n"));
}

static void
test_bare_lf(void)
{
	/* A bare LF goes out as CR LF; the line after it is a line, so a
	 * dot there is doubled (no "\n.\n" reaches a lax peer). */
	CU_ASSERT(stuff_every("a\n.\nb\n", 0, 0, "a\r\n..\r\nb\r\n.\r\n"));
	CU_ASSERT(stuff_every("\n\n", 0, 0, "\r\n\r\n.\r\n"));
	/* CR LF split across chunks stays one line end. */
	CU_ASSERT(stuff_every("x\r\n.y\r\n", 0, 0, "x\r\n..y\r\n.\r\n"));
	/* A bare CR is no line end: the dot after it stays single. */
	CU_ASSERT(stuff_every("a\r.b\r\n", 0, 0, "a\r.b\r\n.\r\n"));
}

static void
test_top(void)
{
	const char *msg = "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n";

	CU_ASSERT(stuff_every(msg, 1, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n"));
	CU_ASSERT(stuff_every(msg, 1, 2,
	                      "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"));
	CU_ASSERT(stuff_every(msg, 1, 100,
	                      "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n"
	                      ".\r\n"));
	/* A header without a body: everything, with or without TOP. */
	CU_ASSERT(stuff_every("A: 1\r\nB: 2", 1, 5,
	                      "A: 1\r\nB: 2\r\n.\r\n"));
	/* A line of only CR LF ends the header, one of CR CR LF does not. */
	CU_ASSERT(stuff_every("A: 1\r\n\r\r\nB\r\n\r\nbody\r\n", 1, 0,
	                      "A: 1\r\n\r\r\nB\r\n\r\n.\r\n"));
	/* Bare LF lines count like CRLF ones, and go out as CRLF. */
	CU_ASSERT(stuff_every("A: 1\n\nb1\nb2\n", 1, 1,
	                      "A: 1\r\n\r\nb1\r\n.\r\n"));
	/* The last body line TOP wants, without CRLF at the end. */
	CU_ASSERT(stuff_every("A: 1\r\n\r\nb1", 1, 1,
	                      "A: 1\r\n\r\nb1\r\n.\r\n"));
}

/* Unstuffs `out` as a POP3 client or SMTP server would (a line that
 * starts with '.' loses it, ".\r\n" ends) and compares with `in` whose
 * bare LFs became CR LF. */
static void
test_round_trip(void)
{
	static const char alphabet[] = ".\r\nab";
	char in[200], canon[400], *out, *u;
	size_t len, i, j, w, n, k, c;
	struct dotstuff d;
	unsigned seed = 12345;
	int round, bol, ok = 1;

	out = malloc(DOTSTUFF_OUT_MAX(sizeof(in)) + DOTSTUFF_TAIL_MAX);
	u = malloc(sizeof(canon) + 3);
	for (round = 0; round < 2000 && ok; round++) {
		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(in);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		for (i = j = 0; i < len; i++) {
			if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
				canon[j++] = '\r';
			canon[j++] = in[i];
		}
		if (j > 0 && canon[j - 1] == '\r')
			canon[j++] = '\n';
		else if (j > 0 && canon[j - 1] != '\n') {
			canon[j++] = '\r';
			canon[j++] = '\n';
		}
		c = (seed >> 20) % 7 + 1;
		dotstuff_init(&d, 0, 0);
		for (i = w = 0; i < len; i += n) {
			n = len - i < c ? len - i : c;
			w += dotstuff_feed(&d, in + i, n, out + w);
		}
		w += dotstuff_finish(&d, out + w);
		/* The dot line ends it, at a line start; before it, a dot
		 * that starts a line was added. */
		ok = w >= 3 && memcmp(out + w - 3, ".\r\n", 3) == 0 &&
		     (w == 3 || out[w - 4] == '\n');
		bol = 1;
		for (i = k = 0; ok && i + 3 < w; i++) {
			if (bol && out[i] == '.')
				i++;
			u[k++] = out[i];
			bol = out[i] == '\n';
		}
		ok = ok && k == j && memcmp(u, canon, j) == 0;
	}
	CU_ASSERT(ok);
	free(out);
	free(u);
}

static CU_TestInfo dotstuff_tests[] = {
	{ "dots at line starts across chunks", test_leading_dots },
	{ "empty message, missing CRLF, lone CR", test_empty_and_tail },
	{ "bare LF becomes CRLF", test_bare_lf },
	{ "TOP counts body lines across chunks", test_top },
	{ "random messages unstuff to themselves", test_round_trip },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "dotstuff", NULL, NULL, NULL, NULL, dotstuff_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
