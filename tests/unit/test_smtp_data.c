/*
 * test_smtp_data.c - the DATA/BDAT reader (modules/smtp/smtp_data.c):
 * dot-unstuffing, the end marker only on CRLF.CRLF, input split at every
 * possible point, bare LF and CR rejected or normalised (and never an
 * end: the smuggling cases), NUL, over-long lines, the header/body split,
 * and BDAT chunks.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "smtp_data.h"

struct out {
	char buf[65536];
	size_t len;
};

static void
collect(void *arg, const char *data, size_t len)
{
	struct out *o = arg;

	CU_ASSERT_FATAL(o->len + len <= sizeof(o->buf));
	memcpy(o->buf + o->len, data, len);
	o->len += len;
}

/* Feeds `in` in pieces of `step` octets (0: whole).  Returns the octets
 * consumed in total. */
static size_t
run(struct smtp_data *d, struct out *o, const char *in, size_t len,
    size_t step, int normalise)
{
	size_t off = 0, n, used;

	memset(o, 0, sizeof(*o));
	smtp_data_init(d, SMTP_DATA_DOT, normalise, 1000, collect, o);
	if (step == 0)
		step = len;
	while (off < len && !d->done) {
		n = len - off < step ? len - off : step;
		used = smtp_data_feed(d, in + off, n);
		off += used;
		if (used < n)
			break;
	}
	return off;
}

#define S(x) x, sizeof(x) - 1

static void
test_simple(void)
{
	struct smtp_data d;
	struct out o;
	const char in[] = "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";
	size_t used = run(&d, &o, S(in), 0, 0);

	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(used, sizeof(in) - 1 - strlen("QUIT\r\n"));
	CU_ASSERT_EQUAL(o.len, 21);
	CU_ASSERT_EQUAL(memcmp(o.buf, "Subject: hi\r\n\r\nbody\r\n", 21), 0);
	CU_ASSERT_EQUAL(d.errors, 0);
	CU_ASSERT_EQUAL(d.in_header, 0);
	CU_ASSERT_EQUAL(d.header_len, 15);
}

static void
test_empty_message(void)
{
	struct smtp_data d;
	struct out o;

	run(&d, &o, S(".\r\n"), 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(o.len, 0);
}

static void
test_dot_stuffing(void)
{
	struct smtp_data d;
	struct out o;
	const char in[] = "a\r\n..b\r\n..\r\n...\r\n.x\r\n.\r\n";
	const char want[] = "a\r\n.b\r\n.\r\n..\r\nx\r\n";

	run(&d, &o, S(in), 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(o.len, sizeof(want) - 1);
	CU_ASSERT_EQUAL(memcmp(o.buf, want, sizeof(want) - 1), 0);
}

/* Every split point gives the same result. */
static void
test_split_everywhere(void)
{
	const char in[] = "H: v\r\n\r\n..dot\r\nline\r\n\r\n.\r\n";
	struct smtp_data d;
	struct out ref, o;
	size_t step, used;

	run(&d, &ref, S(in), 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	for (step = 1; step < sizeof(in); step++) {
		used = run(&d, &o, S(in), step, 0);
		CU_ASSERT_EQUAL(d.done, 1);
		CU_ASSERT_EQUAL(used, sizeof(in) - 1);
		CU_ASSERT_EQUAL(o.len, ref.len);
		CU_ASSERT_EQUAL(memcmp(o.buf, ref.buf, ref.len), 0);
	}
}

/* None of these may end the data (CVE-2023-51764 and its siblings). */
static void
test_smuggling(void)
{
	static const char *const tails[] = {
		"a\n.\nMAIL FROM:<x@y>\r\n",
		"a\r\n.\nMAIL FROM:<x@y>\r\n",
		"a\n.\r\nMAIL FROM:<x@y>\r\n",
		"a\r.\rMAIL FROM:<x@y>\r\n",
		"a\r\n.\rMAIL FROM:<x@y>\r\n",
		"a\r.\r\nMAIL FROM:<x@y>\r\n",
	};
	struct smtp_data d;
	struct out o;
	size_t i;

	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		run(&d, &o, tails[i], strlen(tails[i]), 0, 0);
		CU_ASSERT_EQUAL(d.done, 0);
		CU_ASSERT_NOT_EQUAL(d.errors & (SMTP_DATA_ERR_BARE_LF |
		                                SMTP_DATA_ERR_BARE_CR), 0);
		/* Normalising does not make them an end either. */
		run(&d, &o, tails[i], strlen(tails[i]), 0, 1);
		CU_ASSERT_EQUAL(d.done, 0);
		CU_ASSERT_EQUAL(d.errors, 0);
	}
}

static void
test_normalise(void)
{
	struct smtp_data d;
	struct out o;
	const char in[] = "a\nb\rc\r\n.\r\n";
	const char want[] = "a\r\nb\r\nc\r\n";

	run(&d, &o, S(in), 0, 1);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(d.errors, 0);
	CU_ASSERT_EQUAL(o.len, sizeof(want) - 1);
	CU_ASSERT_EQUAL(memcmp(o.buf, want, sizeof(want) - 1), 0);
	/* Rejecting mode flags them. */
	run(&d, &o, S(in), 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(d.errors,
	                SMTP_DATA_ERR_BARE_LF | SMTP_DATA_ERR_BARE_CR);
}

static void
test_nul_and_long_lines(void)
{
	struct smtp_data d;
	struct out o;
	char big[1200];
	const char nul[] = "a\0b\r\n.\r\n";

	run(&d, &o, nul, sizeof(nul) - 1, 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(d.errors, SMTP_DATA_ERR_NUL);
	/* 998 octets + CRLF is the limit: fine. */
	memset(big, 'x', 998);
	memcpy(big + 998, "\r\n.\r\n", 5);
	run(&d, &o, big, 1003, 7, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(d.errors, 0);
	/* 999: too long, still read to the end. */
	memset(big, 'x', 999);
	memcpy(big + 999, "\r\n.\r\n", 5);
	run(&d, &o, big, 1004, 0, 0);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT_EQUAL(d.errors, SMTP_DATA_ERR_LONG_LINE);
	CU_ASSERT_PTR_NOT_NULL(strstr(smtp_data_error_text(d.errors),
	                              "longer"));
}

static void
test_header_split(void)
{
	struct smtp_data d;
	struct out o;

	/* No empty line: all header. */
	run(&d, &o, S("A: 1\r\nB: 2\r\n.\r\n"), 0, 0);
	CU_ASSERT_EQUAL(d.in_header, 1);
	/* Empty body after the header. */
	run(&d, &o, S("A: 1\r\n\r\n.\r\n"), 0, 0);
	CU_ASSERT_EQUAL(d.in_header, 0);
	CU_ASSERT_EQUAL(d.header_len, 8);
	/* Immediately empty: header of 2 octets. */
	run(&d, &o, S("\r\nbody\r\n.\r\n"), 0, 0);
	CU_ASSERT_EQUAL(d.in_header, 0);
	CU_ASSERT_EQUAL(d.header_len, 2);
}

static void
test_chunks(void)
{
	struct smtp_data d;
	struct out o;
	const char a[] = "Subject: x\r\n\r\n.not stuffed\r";
	const char b[] = "\nlast line";

	memset(&o, 0, sizeof(o));
	smtp_data_init(&d, SMTP_DATA_CHUNK, 0, 1000, collect, &o);
	CU_ASSERT_EQUAL(smtp_data_feed(&d, S(a)), sizeof(a) - 1);
	/* The CR at the end of a chunk waits for the next one. */
	CU_ASSERT_EQUAL(smtp_data_feed(&d, S(b)), sizeof(b) - 1);
	smtp_data_finish(&d);
	CU_ASSERT_EQUAL(d.errors, 0);
	CU_ASSERT_EQUAL(d.done, 0);
	CU_ASSERT_EQUAL(o.len, strlen("Subject: x\r\n\r\n.not stuffed\r\n"
	                              "last line\r\n"));
	CU_ASSERT_EQUAL(memcmp(o.buf, "Subject: x\r\n\r\n.not stuffed\r\n"
	                              "last line\r\n", o.len), 0);
	/* A trailing CR at the very end is bare. */
	memset(&o, 0, sizeof(o));
	smtp_data_init(&d, SMTP_DATA_CHUNK, 0, 1000, collect, &o);
	smtp_data_feed(&d, S("x\r"));
	smtp_data_finish(&d);
	CU_ASSERT_EQUAL(d.errors, SMTP_DATA_ERR_BARE_CR);
	/* ".\r\n" in a chunk is content. */
	memset(&o, 0, sizeof(o));
	smtp_data_init(&d, SMTP_DATA_CHUNK, 0, 1000, collect, &o);
	smtp_data_feed(&d, S("a\r\n.\r\nb\r\n"));
	smtp_data_finish(&d);
	CU_ASSERT_EQUAL(o.len, 9);
	CU_ASSERT_EQUAL(d.done, 0);
}

static CU_TestInfo data_tests[] = {
	{ "simple message", test_simple },
	{ "empty message", test_empty_message },
	{ "dot-stuffing", test_dot_stuffing },
	{ "input split at every point", test_split_everywhere },
	{ "smuggling sequences never end data", test_smuggling },
	{ "bare LF and CR: normalise or flag", test_normalise },
	{ "NUL and over-long lines", test_nul_and_long_lines },
	{ "header and body split", test_header_split },
	{ "BDAT chunks", test_chunks },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "smtp_data", NULL, NULL, NULL, NULL, data_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
