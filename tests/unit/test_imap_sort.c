/*
 * test_imap_sort.c - SORT and THREAD keys and algorithms (modules/imap/
 * imap_sortkey.c, imap_thread.c): RFC 5256 2.1 base subjects rule by
 * rule, 2.2 sent dates, RFC 5957 display names, and both threading
 * algorithms on hand-built sets, over the core's host table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "host.h"
#include "pool.h"
#include "imap.h"
#include "imap_sort.h"

const struct postern_host *imap_host;
postern_module_t *imap_self;
struct imap_settings imap_cfg;
const struct postern_storage *imap_storage;
postern_tls_t *imap_tls;

static postern_pool_t *pool;

static int
suite_init(void)
{
	imap_host = host_table();
	pool = pool_create(16384);
	return 0;
}

static int
suite_clean(void)
{
	pool_destroy(pool);
	return 0;
}

static void
check_base(const char *raw, const char *want, int want_reply)
{
	int reply = -1;
	char *got = imap_sort_base_subject(raw, &reply, pool);

	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	if (strcmp(got, want) != 0 || reply != want_reply)
		fprintf(stderr, "\n  base of [%s]: [%s] reply %d, want [%s] "
		        "reply %d\n", raw, got, reply, want, want_reply);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(reply, want_reply);
}

/* RFC 5256 2.1, each step. */
static void
test_base_subject(void)
{
	/* (1) RFC 2047 decoded, tabs and runs of white space one space */
	check_base("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus", "GR\xc3\xbc\xc3\x9f"
	           "E AUS", 0);
	check_base("a\t  b \t c", "A B C", 0);
	check_base(NULL, "", 0);
	check_base("", "", 0);
	/* (2) subj-trailer: "(fwd)" and white space at the end */
	check_base("lunch (fwd)", "LUNCH", 1);
	check_base("lunch (FWD) (fwd)  ", "LUNCH", 1);
	check_base("lunch   ", "LUNCH", 0);
	/* (3) subj-leader: re, fw, fwd, with blobs, repeated */
	check_base("Re: lunch", "LUNCH", 1);
	check_base("RE:Re: re : lunch", "LUNCH", 1);
	check_base("Fw: lunch", "LUNCH", 1);
	check_base("FWD: lunch", "LUNCH", 1);
	check_base("Re[2]: lunch", "LUNCH", 1);
	check_base("Re [2]: lunch", "LUNCH", 1);
	check_base("[list] Re: lunch", "LUNCH", 1);
	check_base("[a][b] Re: [c] fw: lunch", "LUNCH", 1);
	check_base("Reply: lunch", "REPLY: LUNCH", 0);
	check_base("fwx: lunch", "FWX: LUNCH", 0);
	/* (4) a leading blob goes when something is left */
	check_base("[list] lunch", "LUNCH", 0);
	check_base("[list]", "[LIST]", 0);
	check_base("[list]   ", "[LIST]", 0);
	check_base("[a] [b]", "[B]", 0);
	check_base("[unclosed lunch", "[UNCLOSED LUNCH", 0);
	check_base("[a[b]] lunch", "[A[B]] LUNCH", 0);
	/* (5) (3) and (4) again until nothing changes */
	check_base("[list] [x] Re: [y] lunch", "LUNCH", 1);
	/* (6) [fwd: ...] unwrapped, then from (2) again */
	check_base("[Fwd: Re: lunch]", "LUNCH", 1);
	check_base("[fwd: [fwd: lunch (fwd)]]", "LUNCH", 1);
	check_base("[fwd: lunch", "[FWD: LUNCH", 0);
	check_base("Re: [fwd: lunch]", "LUNCH", 1);
}

static void
check_addr(const char *raw, int display, const char *want)
{
	char *got = imap_sort_address(raw, display, pool);

	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n  address %d of [%s]: [%s], want [%s]\n",
		        display, raw, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

/* RFC 5256 3 (FROM: the first mailbox) and RFC 5957 3. */
static void
test_addresses(void)
{
	check_addr("Carol Q <carol@example.net>, bob@x", 0, "CAROL");
	check_addr("\"Carol Q\" <carol@example.net>", 1, "CAROL Q");
	/* the parser takes a trailing comment for the name, as Dovecot */
	check_addr("carol@example.net (Carol Q)", 1, "CAROL Q");
	check_addr("=?iso-8859-1?q?foo_aar?= <e@f.g>", 1, "FOO AAR");
	check_addr("<e@f.g>", 1, "E@F.G");
	check_addr("team: a@b.c, d@e.f;", 1, "TEAM");
	check_addr("team: a@b.c;", 0, "TEAM");
	check_addr("", 0, "");
	check_addr(NULL, 1, "");
	check_addr("d", 1, "D");
}

/* RFC 5256 2.2: a missing or broken Date is the internal date. */
static void
test_sent_date(void)
{
	CU_ASSERT_EQUAL(imap_sort_sent_date("Mon, 4 Mar 2024 10:00:00 +0100",
	                                    7), 1709542800);
	CU_ASSERT_EQUAL(imap_sort_sent_date(NULL, 7), 7);
	CU_ASSERT_EQUAL(imap_sort_sent_date("", 7), 7);
	CU_ASSERT_EQUAL(imap_sort_sent_date("yesterday at noon", 7), 7);
	CU_ASSERT_EQUAL(imap_sort_sent_date("Mon, 41 Foo 2024", 9), 9);
}

static void
test_msgids(void)
{
	const char *ids[3];
	size_t n;

	n = imap_sort_msgids("<a@x> junk <b@x>\r\n <c@x> <d@x>", ids, 3,
	                     pool);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(ids[0], "<b@x>");
	CU_ASSERT_STRING_EQUAL(ids[2], "<d@x>");
	n = imap_sort_msgids("<> <broken <ok@x>", ids, 3, pool);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(ids[0], "<ok@x>");
	CU_ASSERT_EQUAL(imap_sort_msgids(NULL, ids, 3, pool), 0);
}

/* A References field of 100 IDs of 200 octets: the last ones kept,
 * at most IMAP_SORT_MAX_REFS and IMAP_SORT_REFS_OCTETS of them. */
static void
test_msgids_bounded(void)
{
	const char *ids[IMAP_SORT_MAX_REFS];
	char *raw = malloc(100 * 202 + 1), *p = raw;
	size_t n, i, octets = 0;

	for (i = 0; i < 100; i++) {
		p += sprintf(p, "<%03zu", i);
		memset(p, 'x', 196);
		p += 196;
		p += sprintf(p, "> ");
	}
	n = imap_sort_msgids(raw, ids, IMAP_SORT_MAX_REFS, pool);
	CU_ASSERT(n > 0 && n <= IMAP_SORT_MAX_REFS);
	for (i = 0; i < n; i++)
		octets += strlen(ids[i]);
	CU_ASSERT(octets <= IMAP_SORT_REFS_OCTETS);
	CU_ASSERT_EQUAL(strncmp(ids[n - 1], "<099", 4), 0);
	CU_ASSERT_EQUAL(n, IMAP_SORT_REFS_OCTETS / 201);
	free(raw);
}

/* ---- threads -----------------------------------------------------------*/

struct tmsg {
	const char *subject, *id, *refs;
	int64_t date;
};

static char *
thread(const struct tmsg *t, size_t n, enum imap_thread_alg alg)
{
	struct imap_sort_msg *m = calloc(n + 1, sizeof(*m));
	struct imap_buf out = { 0 };
	const char *ids[IMAP_SORT_MAX_REFS];
	char *s;
	size_t i, k;

	for (i = 0; i < n; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].uid = (uint32_t)i + 101;
		m[i].date = t[i].date;
		m[i].subject = imap_sort_base_subject(t[i].subject,
		                                      &m[i].is_reply, pool);
		m[i].msgid = t[i].id;
		m[i].nrefs = imap_sort_msgids(t[i].refs, ids,
		                              IMAP_SORT_MAX_REFS, pool);
		m[i].refs = pool_alloc(pool, (m[i].nrefs + 1) * sizeof(char *));
		for (k = 0; k < m[i].nrefs; k++)
			m[i].refs[k] = ids[k];
	}
	CU_ASSERT_EQUAL(imap_thread(&out, m, n, alg, 0), 0);
	imap_buf_add(&out, "", 1);
	s = strdup(out.p);
	imap_buf_free(&out);
	free(m);
	return s;
}

static void
check_thread(const struct tmsg *t, size_t n, enum imap_thread_alg alg,
             const char *want)
{
	char *got = thread(t, n, alg);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n  thread: %s\n  want:   %s\n", got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

#define N(a) (sizeof(a) / sizeof(a[0]))

static void
test_orderedsubject(void)
{
	static const struct tmsg t[] = {
		{ "b", NULL, NULL, 50 },
		{ "Re: a", NULL, NULL, 20 },
		{ "a", NULL, NULL, 30 },
		{ "c", NULL, NULL, 10 },
		{ "re: b", NULL, NULL, 40 },
		{ "A", NULL, NULL, 60 },
	};

	/* threads by their first date; the first the parent */
	check_thread(t, N(t), IMAP_THREAD_ORDEREDSUBJECT,
	             "(4)(2 (3)(6))(5 1)");
}

static void
test_references(void)
{
	/* a chain, a reply to a message not here (a dummy parent with two
	 * children stays), and a lone reply to a missing one (promoted) */
	static const struct tmsg chain[] = {
		{ "x", "<1>", NULL, 10 },
		{ "re: x", "<2>", "<1>", 20 },
		{ "re: x", "<3>", "<1> <2>", 30 },
		{ "re: x", "<4>", "<1>", 25 },
		{ "y", "<5>", "<gone>", 40 },
		{ "z", "<6>", "<gone>", 45 },
		{ "w", "<7>", "<other-gone>", 50 },
	};
	/* the parent of 1 comes after it; 3 and 4 refer to each other
	 * (the first link stays, the loop is refused); 5 to itself */
	static const struct tmsg order[] = {
		{ "re: p", "<c>", "<p>", 30 },
		{ "p", "<p>", NULL, 10 },
		{ "q", "<q>", "<r>", 40 },
		{ "r", "<r>", "<q>", 50 },
		{ "s", "<s>", "<s>", 60 },
	};
	/* duplicate Message-IDs: the second is a message of its own */
	static const struct tmsg dup[] = {
		{ "m", "<d>", NULL, 10 },
		{ "n", "<d>", NULL, 20 },
		{ "re: m", "<e>", "<d>", 30 },
	};
	/* subject gathering: a reply under the original, two originals
	 * under a dummy, no ID at all */
	static const struct tmsg subj[] = {
		{ "s", "<s1>", NULL, 10 },
		{ "Re: s", "<s2>", NULL, 20 },
		{ "t", "<t1>", NULL, 30 },
		{ "t", "<t2>", NULL, 40 },
		{ "u", NULL, NULL, 5 },
	};

	check_thread(chain, N(chain), IMAP_THREAD_REFERENCES,
	             "(1 (2 3)(4))((5)(6))(7)");
	check_thread(order, N(order), IMAP_THREAD_REFERENCES,
	             "(2 1)(4 3)(5)");
	check_thread(dup, N(dup), IMAP_THREAD_REFERENCES, "(1 3)(2)");
	check_thread(subj, N(subj), IMAP_THREAD_REFERENCES,
	             "(5)(1 2)((3)(4))");
}

/* A chain of 20,000 replies: no recursion to overflow the stack. */
static void
test_deep_chain(void)
{
	enum { DEPTH = 20000 };
	struct tmsg *t = calloc(DEPTH, sizeof(*t));
	char (*ids)[16] = calloc(DEPTH, 16);
	char (*refs)[16] = calloc(DEPTH, 16);
	char *got;
	size_t i;

	for (i = 0; i < DEPTH; i++) {
		snprintf(ids[i], 16, "<%zu>", i);
		if (i > 0)
			snprintf(refs[i], 16, "<%zu>", i - 1);
		t[i].subject = "deep";
		t[i].id = ids[i];
		t[i].refs = i > 0 ? refs[i] : NULL;
		t[i].date = (int64_t)i;
	}
	got = thread(t, DEPTH, IMAP_THREAD_REFERENCES);
	CU_ASSERT_EQUAL(strncmp(got, "(1 2 3 4 ", 9), 0);
	CU_ASSERT_EQUAL(strcmp(got + strlen(got) - 7, " 20000)"), 0);
	free(got);
	free(t);
	free(ids);
	free(refs);
}

static CU_TestInfo tests[] = {
	{ "base subject (RFC 5256 2.1)", test_base_subject },
	{ "address and display keys", test_addresses },
	{ "sent date without a valid Date", test_sent_date },
	{ "message IDs of References", test_msgids },
	{ "References bounded", test_msgids_bounded },
	{ "ORDEREDSUBJECT", test_orderedsubject },
	{ "REFERENCES: dummies, order, loops, duplicates, subjects",
	  test_references },
	{ "REFERENCES: a 20,000 deep chain", test_deep_chain },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "imap_sort", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
