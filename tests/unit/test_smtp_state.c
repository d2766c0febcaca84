/*
 * test_smtp_state.c - the SMTP state machine's tables
 * (modules/smtp/smtp_state.c): every state against every command (runs,
 * or the RFC 5321 4.1.4 / RFC 3030 / RFC 4954 / RFC 4468 reply that
 * refuses it),
 * the transitions a session makes and some it must never make, and that
 * every state can be reached and left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "smtp_state.h"

/* What each state does with each verb, in enum smtp_verb order:
 * UNKNOWN HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP
 * STARTTLS AUTH BURL.  "ok": runs; "503": refused with 503; "c503":
 * BDAT's chunk read, then 503; "-": no command is read in that state.
 * Written from the RFCs, not from the table.  BURL (RFC 4468 3.1, 3.2):
 * a chunk like BDAT's, only after a recipient was taken, mixed with
 * BDAT; refused as BDAT is ("c": its LAST ends the transaction; its URL
 * is not resolved). */
static const char *const expected[SMTP_ST_COUNT] = {
	[SMTP_ST_REFUSED] =
	    "503 503 503 503 503 503 503 503 ok ok 503 503 503 503 503 503",
	[SMTP_ST_HELO] =
	    "ok ok ok 503 503 503 c503 ok ok ok ok ok ok ok 503 c503",
	[SMTP_ST_READY] =
	    "ok ok ok ok 503 503 c503 ok ok ok ok ok ok ok ok c503",
	[SMTP_ST_MAIL] =
	    "ok ok ok 503 ok 554 c554 ok ok ok ok ok ok ok 503 c554",
	[SMTP_ST_RCPT] =
	    "ok ok ok 503 ok ok ok ok ok ok ok ok ok ok 503 ok",
	[SMTP_ST_CHUNKED] =
	    "ok ok ok 503 503 503 ok ok ok ok ok ok ok ok 503 ok",
	[SMTP_ST_CHUNK_FAILED] =
	    "ok ok ok 503 503 503 c503 ok ok ok ok ok ok ok 503 c503",
};

static const char *const verb_names[] = {
	"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
	"NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "BURL",
};

static void
check_cell(enum smtp_state st, enum smtp_verb v, const char *want)
{
	const struct smtp_rule *r = smtp_state_rule(st, v);
	char got[16];

	switch (r->kind) {
	case SMTP_RULE_RUN:
		snprintf(got, sizeof(got), "ok");
		break;
	case SMTP_RULE_REFUSE:
		snprintf(got, sizeof(got), "%u", r->code);
		break;
	case SMTP_RULE_REFUSE_CHUNK:
		snprintf(got, sizeof(got), "c%u", r->code);
		break;
	case SMTP_RULE_NOT_READ:
		snprintf(got, sizeof(got), "-");
		break;
	default:
		snprintf(got, sizeof(got), "?");
		break;
	}
	if (strcmp(got, want) != 0)
		fprintf(stderr, "state %s, %s: got %s, want %s\n",
		        smtp_state_name(st), verb_names[v], got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	if (r->kind == SMTP_RULE_REFUSE || r->kind == SMTP_RULE_REFUSE_CHUNK) {
		CU_ASSERT_PTR_NOT_NULL(r->text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->enhanced);
		/* RFC 3463: the enhanced code's class is the reply's. */
		CU_ASSERT_EQUAL(r->enhanced[0] - '0', (int)(r->code / 100));
		/* After a refused greeting: 5.7.0 (policy); else 5.5.1
		 * (bad sequence). */
		CU_ASSERT_STRING_EQUAL(r->enhanced, st == SMTP_ST_REFUSED
		                                        ? "5.7.0" : "5.5.1");
	}
}

/* Every state x every command. */
static void
test_rules(void)
{
	char row[256], *tok, *save;
	unsigned st, v;

	CU_ASSERT_EQUAL_FATAL(sizeof(verb_names) / sizeof(verb_names[0]),
	                      SMTP_VERB_COUNT);
	for (st = 0; st < SMTP_ST_COUNT; st++) {
		if (expected[st] == NULL) {
			for (v = 0; v < SMTP_VERB_COUNT; v++)
				check_cell(st, v, "-");
			CU_ASSERT_NOT_EQUAL(smtp_state_input(st),
			                    SMTP_IN_COMMANDS);
			continue;
		}
		CU_ASSERT_EQUAL(smtp_state_input(st), SMTP_IN_COMMANDS);
		snprintf(row, sizeof(row), "%s", expected[st]);
		tok = strtok_r(row, " ", &save);
		for (v = 0; v < SMTP_VERB_COUNT; v++) {
			CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
			check_cell(st, v, tok);
			tok = strtok_r(NULL, " ", &save);
		}
		CU_ASSERT_PTR_NULL(tok);
		/* RFC 4468 3.1: BURL goes where BDAT goes, refused alike. */
		CU_ASSERT_EQUAL(smtp_state_rule(st, SMTP_VERB_BURL)->kind,
		                smtp_state_rule(st, SMTP_VERB_BDAT)->kind);
		CU_ASSERT_EQUAL(smtp_state_rule(st, SMTP_VERB_BURL)->code,
		                smtp_state_rule(st, SMTP_VERB_BDAT)->code);
	}
	/* Out of range: nothing runs. */
	CU_ASSERT_EQUAL(smtp_state_rule(SMTP_ST_COUNT, SMTP_VERB_NOOP)->kind,
	                SMTP_RULE_NOT_READ);
	CU_ASSERT_EQUAL(smtp_state_rule(SMTP_ST_READY, SMTP_VERB_COUNT)->kind,
	                SMTP_RULE_NOT_READ);
}

/* Paths sessions take, each step legal. */
static const enum smtp_state paths[][24] = {
	/* greeting, HELO, a DATA transaction through every stage */
	{ SMTP_ST_CONNECT, SMTP_ST_HELO, SMTP_ST_HELO_HOOK, SMTP_ST_READY,
	  SMTP_ST_MAIL_CHECK, SMTP_ST_MAIL_HOOK, SMTP_ST_MAIL,
	  SMTP_ST_RCPT_LOOKUP, SMTP_ST_RCPT_HOOK, SMTP_ST_RCPT,
	  SMTP_ST_RCPT_LOOKUP, SMTP_ST_RCPT, SMTP_ST_DATA_HOOK, SMTP_ST_DATA,
	  SMTP_ST_SYNC, SMTP_ST_EOM_HEADER, SMTP_ST_EOM_EOH, SMTP_ST_EOM_BODY,
	  SMTP_ST_EOM_EOD, SMTP_ST_DELIVER, SMTP_ST_READY, SMTP_ST_CLOSED,
	  SMTP_ST_COUNT },
	/* refused recipients, a refused DATA, RSET */
	{ SMTP_ST_MAIL, SMTP_ST_RCPT_LOOKUP, SMTP_ST_MAIL, SMTP_ST_RCPT_LOOKUP,
	  SMTP_ST_RCPT_HOOK, SMTP_ST_MAIL, SMTP_ST_RCPT_LOOKUP,
	  SMTP_ST_RCPT_HOOK, SMTP_ST_RCPT, SMTP_ST_DATA_HOOK, SMTP_ST_RCPT,
	  SMTP_ST_READY, SMTP_ST_COUNT },
	/* BDAT: chunks, a failed one, the last one */
	{ SMTP_ST_RCPT, SMTP_ST_BDAT_HOOK, SMTP_ST_BDAT, SMTP_ST_CHUNKED,
	  SMTP_ST_BDAT, SMTP_ST_CHUNK_FAILED, SMTP_ST_BDAT, SMTP_ST_READY,
	  SMTP_ST_BDAT, SMTP_ST_READY, SMTP_ST_HELO_HOOK, SMTP_ST_HELO,
	  SMTP_ST_BDAT, SMTP_ST_HELO, SMTP_ST_COUNT },
	{ SMTP_ST_CHUNKED, SMTP_ST_BDAT, SMTP_ST_SYNC, SMTP_ST_EOM_EOH,
	  SMTP_ST_EOM_EOD, SMTP_ST_READY, SMTP_ST_COUNT },
	/* BURL: a first chunk, BDAT and BURL mixed, a failed fetch, the
	 * last one; a refused first chunk ending the transaction */
	{ SMTP_ST_RCPT, SMTP_ST_BDAT_HOOK, SMTP_ST_BURL, SMTP_ST_CHUNKED,
	  SMTP_ST_BDAT, SMTP_ST_CHUNKED, SMTP_ST_BURL, SMTP_ST_CHUNKED,
	  SMTP_ST_BURL, SMTP_ST_SYNC, SMTP_ST_EOM_HEADER, SMTP_ST_DELIVER,
	  SMTP_ST_READY, SMTP_ST_COUNT },
	{ SMTP_ST_CHUNKED, SMTP_ST_BURL, SMTP_ST_CHUNK_FAILED, SMTP_ST_READY,
	  SMTP_ST_COUNT },
	{ SMTP_ST_RCPT, SMTP_ST_BDAT_HOOK, SMTP_ST_BURL, SMTP_ST_READY,
	  SMTP_ST_COUNT },
	{ SMTP_ST_BURL, SMTP_ST_CLOSED, SMTP_ST_COUNT },
	/* STARTTLS, AUTH over two lines */
	{ SMTP_ST_HELO, SMTP_ST_TLS_HANDSHAKE, SMTP_ST_TLS_HOOK, SMTP_ST_HELO,
	  SMTP_ST_HELO_HOOK, SMTP_ST_READY, SMTP_ST_AUTH_STEP,
	  SMTP_ST_AUTH_LINE, SMTP_ST_AUTH_STEP, SMTP_ST_AUTH_LINE,
	  SMTP_ST_AUTH_STEP, SMTP_ST_AUTH_HOOK, SMTP_ST_READY,
	  SMTP_ST_TLS_HANDSHAKE, SMTP_ST_TLS_HOOK, SMTP_ST_REFUSED,
	  SMTP_ST_CLOSED, SMTP_ST_COUNT },
	/* a refused sender; a filter's verdict ending the message early */
	{ SMTP_ST_READY, SMTP_ST_MAIL_CHECK, SMTP_ST_READY, SMTP_ST_MAIL_CHECK,
	  SMTP_ST_MAIL_HOOK, SMTP_ST_READY, SMTP_ST_COUNT },
	{ SMTP_ST_SYNC, SMTP_ST_EOM_HEADER, SMTP_ST_READY, SMTP_ST_COUNT },
	{ SMTP_ST_EOM_BODY, SMTP_ST_EOM_BODY, SMTP_ST_DELIVER, SMTP_ST_CLOSED,
	  SMTP_ST_COUNT },
	/* a refused greeting */
	{ SMTP_ST_CONNECT, SMTP_ST_REFUSED, SMTP_ST_CLOSED, SMTP_ST_COUNT },
};

static void
test_legal_paths(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		for (k = 0; paths[i][k + 1] != SMTP_ST_COUNT; k++) {
			int ok = smtp_state_can(paths[i][k], paths[i][k + 1]);

			if (!ok)
				fprintf(stderr, "path %zu: %s -> %s refused\n",
				        i, smtp_state_name(paths[i][k]),
				        smtp_state_name(paths[i][k + 1]));
			CU_ASSERT(ok);
		}
}

static void
test_illegal(void)
{
	static const enum smtp_state bad[][2] = {
		{ SMTP_ST_CONNECT, SMTP_ST_READY },    /* no HELO */
		{ SMTP_ST_HELO, SMTP_ST_MAIL_CHECK },  /* MAIL before HELO */
		{ SMTP_ST_HELO, SMTP_ST_AUTH_STEP },   /* AUTH before EHLO */
		{ SMTP_ST_READY, SMTP_ST_RCPT_LOOKUP }, /* RCPT before MAIL */
		{ SMTP_ST_READY, SMTP_ST_DATA_HOOK },  /* DATA before MAIL */
		{ SMTP_ST_MAIL, SMTP_ST_DATA_HOOK },   /* DATA, no RCPT */
		{ SMTP_ST_MAIL, SMTP_ST_MAIL_CHECK },  /* nested MAIL */
		{ SMTP_ST_MAIL, SMTP_ST_AUTH_STEP },   /* AUTH in a txn */
		{ SMTP_ST_CHUNKED, SMTP_ST_DATA_HOOK }, /* DATA after BDAT */
		{ SMTP_ST_CHUNKED, SMTP_ST_RCPT_LOOKUP },
		{ SMTP_ST_DATA, SMTP_ST_RCPT },        /* data ends with SYNC */
		{ SMTP_ST_DATA, SMTP_ST_BDAT },
		{ SMTP_ST_DELIVER, SMTP_ST_DATA },
		{ SMTP_ST_SYNC, SMTP_ST_DELIVER },     /* filters first */
		{ SMTP_ST_REFUSED, SMTP_ST_READY },    /* 503 until QUIT */
		{ SMTP_ST_REFUSED, SMTP_ST_HELO_HOOK },
		{ SMTP_ST_AUTH_LINE, SMTP_ST_MAIL_CHECK },
		{ SMTP_ST_TLS_HANDSHAKE, SMTP_ST_READY }, /* HELO again */
		/* BURL: after a recipient, through the data stage */
		{ SMTP_ST_READY, SMTP_ST_BURL },
		{ SMTP_ST_MAIL, SMTP_ST_BURL },
		{ SMTP_ST_RCPT, SMTP_ST_BURL },
		{ SMTP_ST_CHUNK_FAILED, SMTP_ST_BURL },
		{ SMTP_ST_DATA, SMTP_ST_BURL },
		{ SMTP_ST_BURL, SMTP_ST_BDAT },        /* one chunk at a time */
		{ SMTP_ST_BURL, SMTP_ST_RCPT },
		{ SMTP_ST_BURL, SMTP_ST_DELIVER },     /* filters first */
		{ SMTP_ST_CLOSED, SMTP_ST_READY },     /* nothing after */
		{ SMTP_ST_CLOSED, SMTP_ST_CLOSED },
	};
	size_t i;
	unsigned st;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (smtp_state_can(bad[i][0], bad[i][1]))
			fprintf(stderr, "%s -> %s allowed\n",
			        smtp_state_name(bad[i][0]),
			        smtp_state_name(bad[i][1]));
		CU_ASSERT(!smtp_state_can(bad[i][0], bad[i][1]));
	}
	/* Anything may close; staying is no change. */
	for (st = 0; st < SMTP_ST_CLOSED; st++) {
		CU_ASSERT(smtp_state_can(st, SMTP_ST_CLOSED));
		CU_ASSERT(smtp_state_can(st, st));
	}
	CU_ASSERT(!smtp_state_can(SMTP_ST_COUNT, SMTP_ST_READY));
	CU_ASSERT(!smtp_state_can(SMTP_ST_READY, SMTP_ST_COUNT));
}

/* From CONNECT every state is reached, and from every state but
 * REFUSED and CLOSED the session can get back to READY (no dead end). */
static void
test_reachable(void)
{
	int seen[SMTP_ST_COUNT] = { 0 };
	unsigned st, to, changed, from;

	seen[SMTP_ST_CONNECT] = 1;
	do {
		changed = 0;
		for (st = 0; st < SMTP_ST_COUNT; st++)
			for (to = 0; seen[st] && to < SMTP_ST_COUNT; to++)
				if (!seen[to] && smtp_state_can(st, to))
					seen[to] = changed = 1;
	} while (changed);
	for (st = 0; st < SMTP_ST_COUNT; st++) {
		if (!seen[st])
			fprintf(stderr, "%s unreachable\n", smtp_state_name(st));
		CU_ASSERT(seen[st]);
	}
	for (from = 0; from < SMTP_ST_COUNT; from++) {
		if (from == SMTP_ST_REFUSED || from == SMTP_ST_CLOSED ||
		    from == SMTP_ST_CONNECT)
			continue;
		memset(seen, 0, sizeof(seen));
		seen[from] = 1;
		do {
			changed = 0;
			for (st = 0; st < SMTP_ST_COUNT; st++)
				for (to = 0; seen[st] && to < SMTP_ST_CLOSED;
				     to++)
					if (!seen[to] &&
					    smtp_state_can(st, to))
						seen[to] = changed = 1;
		} while (changed);
		if (!seen[SMTP_ST_READY])
			fprintf(stderr, "%s: READY unreachable\n",
			        smtp_state_name(from));
		CU_ASSERT(seen[SMTP_ST_READY]);
	}
}

static void
test_attributes(void)
{
	unsigned st, k;

	for (st = 0; st < SMTP_ST_COUNT; st++) {
		CU_ASSERT_STRING_NOT_EQUAL(smtp_state_name(st), "?");
		for (k = 0; k < st; k++)
			CU_ASSERT_STRING_NOT_EQUAL(smtp_state_name(st),
			                           smtp_state_name(k));
		/* A graceful stop never cuts a transaction short. */
		if (smtp_state_in_txn(st))
			CU_ASSERT(!smtp_state_idle(st));
	}
	CU_ASSERT(smtp_state_idle(SMTP_ST_READY));
	CU_ASSERT(smtp_state_idle(SMTP_ST_HELO));
	CU_ASSERT(smtp_state_idle(SMTP_ST_REFUSED));
	CU_ASSERT(!smtp_state_idle(SMTP_ST_AUTH_LINE)); /* finishes first */
	CU_ASSERT(!smtp_state_idle(SMTP_ST_BDAT));      /* the chunk too */
	CU_ASSERT(!smtp_state_idle(SMTP_ST_BURL));
	CU_ASSERT(smtp_state_in_txn(SMTP_ST_BURL));
	CU_ASSERT(!smtp_state_idle(SMTP_ST_DATA));
	CU_ASSERT(!smtp_state_idle(SMTP_ST_CLOSED));
	CU_ASSERT(smtp_state_in_txn(SMTP_ST_CHUNKED));
	CU_ASSERT(!smtp_state_in_txn(SMTP_ST_READY));
	CU_ASSERT_EQUAL(smtp_state_input(SMTP_ST_DATA), SMTP_IN_RAW);
	CU_ASSERT_EQUAL(smtp_state_input(SMTP_ST_BDAT), SMTP_IN_RAW);
	CU_ASSERT_EQUAL(smtp_state_input(SMTP_ST_AUTH_LINE), SMTP_IN_RAW);
	CU_ASSERT_EQUAL(smtp_state_input(SMTP_ST_DELIVER), SMTP_IN_PAUSED);
	/* the fetch is a job: the session reads nothing meanwhile */
	CU_ASSERT_EQUAL(smtp_state_input(SMTP_ST_BURL), SMTP_IN_PAUSED);
	for (k = 0; k < SMTP_EV_COUNT; k++)
		CU_ASSERT_STRING_NOT_EQUAL(smtp_event_name(k), "?");
	CU_ASSERT_STRING_EQUAL(smtp_state_name(SMTP_ST_COUNT), "?");
}

static CU_TestInfo state_tests[] = {
	{ "every state x every command", test_rules },
	{ "the paths sessions take are legal", test_legal_paths },
	{ "illegal transitions", test_illegal },
	{ "every state reachable, none a dead end", test_reachable },
	{ "names, idle, input", test_attributes },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "smtp_state", NULL, NULL, NULL, NULL, state_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
