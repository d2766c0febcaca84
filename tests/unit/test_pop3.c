/*
 * test_pop3.c - the POP3 module's pure parts: the command parser and the
 * state table (modules/pop3/pop3_parser.c), the snapshot with its
 * deletion marks and unique-ids (pop3_maildrop.c).  Byte-stuffing is
 * the core's: test_dotstuff.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "pop3_maildrop.h"
#include "pop3_parser.h"

#define AUTHZ POP3_STATE_AUTHORIZATION
#define TRANS POP3_STATE_TRANSACTION

static enum pop3_parse_status
parse(const char *line, enum pop3_state st, struct pop3_command *c)
{
	const char *why;
	enum pop3_parse_status rc = pop3_parse(line, strlen(line), st, c,
	                                       &why);

	CU_ASSERT_PTR_NOT_NULL(why);
	if (rc != POP3_PARSE_OK)
		CU_ASSERT(why[0] != '\0');
	return rc;
}

static int
arg_is(const char *p, size_t len, const char *want)
{
	return p != NULL && len == strlen(want) && memcmp(p, want, len) == 0;
}

/* ---- parser ------------------------------------------------------------ */

static void
test_keywords_case_insensitive(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("stat", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_STAT);
	CU_ASSERT_EQUAL(parse("StAt", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(parse("capa", AUTHZ, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_CAPA);
	CU_ASSERT_EQUAL(parse("top 1 0", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_TOP);
	CU_ASSERT_STRING_EQUAL(pop3_cmd_name(POP3_CMD_UIDL), "UIDL");
	CU_ASSERT_STRING_EQUAL(pop3_cmd_name(POP3_CMD_UNKNOWN), "?");
}

static void
test_unknown(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("", AUTHZ, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(parse("   ", AUTHZ, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(parse("HELO x", AUTHZ, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(parse("STATS", TRANS, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(parse("ST", TRANS, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(parse("LAST", TRANS, &c), POP3_PARSE_UNKNOWN);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_UNKNOWN);
}

static void
test_message_numbers(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("RETR 1", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT(c.has_msg);
	CU_ASSERT_EQUAL(c.msg, 1);
	CU_ASSERT_EQUAL(parse("DELE 2147483647", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.msg, 2147483647u);
	CU_ASSERT_EQUAL(parse("DELE 2147483648", TRANS, &c),
	                POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR 0", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR -1", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR +1", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR 1x", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_RETR);
	CU_ASSERT_EQUAL(parse("RETR 1 2", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RETR 99999999999", TRANS, &c),
	                POP3_PARSE_BAD_ARGS);
	/* Extra spaces, as some clients send. */
	CU_ASSERT_EQUAL(parse("RETR  3 ", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.msg, 3);
}

static void
test_list_uidl_optional_arg(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("LIST", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_FALSE(c.has_msg);
	CU_ASSERT_EQUAL(parse("LIST 7", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT(c.has_msg);
	CU_ASSERT_EQUAL(c.msg, 7);
	CU_ASSERT_EQUAL(parse("UIDL", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_FALSE(c.has_msg);
	CU_ASSERT_EQUAL(parse("UIDL 0", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("LIST a", TRANS, &c), POP3_PARSE_BAD_ARGS);
}

static void
test_top(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("TOP 2 10", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.msg, 2);
	CU_ASSERT_EQUAL(c.lines, 10);
	CU_ASSERT_EQUAL(parse("TOP 2 0", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(c.lines, 0);
	CU_ASSERT_EQUAL(parse("TOP 2", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("TOP 0 1", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("TOP 1 -1", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("TOP 1 1 1", TRANS, &c), POP3_PARSE_BAD_ARGS);
}

static void
test_user_pass_args(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("USER alice@example.org", AUTHZ, &c),
	                POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg, c.arg_len, "alice@example.org"));
	CU_ASSERT_EQUAL(parse("USER", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("USER a b", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	/* The password is the rest of the line, spaces included. */
	CU_ASSERT_EQUAL(parse("PASS  my secret ", AUTHZ, &c), POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg, c.arg_len, " my secret "));
	CU_ASSERT_EQUAL(parse("PASS", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("PASS ", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("APOP bob 0123456789abcdef", AUTHZ, &c),
	                POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg, c.arg_len, "bob"));
	CU_ASSERT(arg_is(c.arg2, c.arg2_len, "0123456789abcdef"));
	CU_ASSERT_EQUAL(parse("APOP bob", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
}

static void
test_auth_args(void)
{
	struct pop3_command c;
	char line[1200];

	CU_ASSERT_EQUAL(parse("AUTH", AUTHZ, &c), POP3_PARSE_OK);
	CU_ASSERT_PTR_NULL(c.arg);
	CU_ASSERT_EQUAL(parse("AUTH PLAIN", AUTHZ, &c), POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg, c.arg_len, "PLAIN"));
	CU_ASSERT_PTR_NULL(c.arg2);
	CU_ASSERT_EQUAL(parse("AUTH PLAIN AGFsaWNlAHM=", AUTHZ, &c),
	                POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg2, c.arg2_len, "AGFsaWNlAHM="));
	CU_ASSERT_EQUAL(parse("AUTH PLAIN =", AUTHZ, &c), POP3_PARSE_OK);
	CU_ASSERT(arg_is(c.arg2, c.arg2_len, "="));
	CU_ASSERT_EQUAL(parse("AUTH PLAIN a b", AUTHZ, &c),
	                POP3_PARSE_BAD_ARGS);
	/* AUTH may pass RFC 2449's 255 octets; other commands may not. */
	memset(line, 'A', sizeof(line));
	memcpy(line, "AUTH PLAIN ", 11);
	line[1000] = '\0';
	CU_ASSERT_EQUAL(parse(line, AUTHZ, &c), POP3_PARSE_OK);
	memcpy(line, "USER AAAAAA", 11);
	CU_ASSERT_EQUAL(parse(line, AUTHZ, &c), POP3_PARSE_TOO_LONG);
	line[POP3_MAX_COMMAND] = '\0';
	CU_ASSERT_EQUAL(parse(line, AUTHZ, &c), POP3_PARSE_OK);
}

static void
test_no_argument_commands(void)
{
	struct pop3_command c;

	CU_ASSERT_EQUAL(parse("NOOP", TRANS, &c), POP3_PARSE_OK);
	CU_ASSERT_EQUAL(parse("NOOP x", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("STAT 1", TRANS, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("QUIT now", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("STLS x", AUTHZ, &c), POP3_PARSE_BAD_ARGS);
	CU_ASSERT_EQUAL(parse("RSET", TRANS, &c), POP3_PARSE_OK);
}

/* ---- the state table --------------------------------------------------- */

static void
test_states(void)
{
	struct pop3_command c;
	static const enum pop3_cmd authz_only[] = {
		POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_APOP, POP3_CMD_AUTH,
		POP3_CMD_STLS,
	};
	static const enum pop3_cmd trans_only[] = {
		POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_RETR, POP3_CMD_DELE,
		POP3_CMD_NOOP, POP3_CMD_RSET, POP3_CMD_TOP, POP3_CMD_UIDL,
	};
	size_t i;

	for (i = 0; i < sizeof(authz_only) / sizeof(authz_only[0]); i++) {
		CU_ASSERT(pop3_cmd_allowed(AUTHZ, authz_only[i]));
		CU_ASSERT_FALSE(pop3_cmd_allowed(TRANS, authz_only[i]));
		CU_ASSERT_FALSE(pop3_cmd_allowed(POP3_STATE_UPDATE,
		                                 authz_only[i]));
	}
	for (i = 0; i < sizeof(trans_only) / sizeof(trans_only[0]); i++) {
		CU_ASSERT_FALSE(pop3_cmd_allowed(AUTHZ, trans_only[i]));
		CU_ASSERT(pop3_cmd_allowed(TRANS, trans_only[i]));
		CU_ASSERT_FALSE(pop3_cmd_allowed(POP3_STATE_UPDATE,
		                                 trans_only[i]));
	}
	CU_ASSERT(pop3_cmd_allowed(AUTHZ, POP3_CMD_CAPA));
	CU_ASSERT(pop3_cmd_allowed(TRANS, POP3_CMD_CAPA));
	CU_ASSERT(pop3_cmd_allowed(AUTHZ, POP3_CMD_QUIT));
	CU_ASSERT(pop3_cmd_allowed(TRANS, POP3_CMD_QUIT));
	CU_ASSERT_FALSE(pop3_cmd_allowed(POP3_STATE_UPDATE, POP3_CMD_QUIT));
	CU_ASSERT_FALSE(pop3_cmd_allowed(AUTHZ, POP3_CMD_UNKNOWN));

	CU_ASSERT_EQUAL(parse("RETR 1", AUTHZ, &c), POP3_PARSE_WRONG_STATE);
	CU_ASSERT_EQUAL(c.cmd, POP3_CMD_RETR);
	CU_ASSERT_EQUAL(parse("USER a", TRANS, &c), POP3_PARSE_WRONG_STATE);
	CU_ASSERT_EQUAL(parse("STLS", TRANS, &c), POP3_PARSE_WRONG_STATE);
	CU_ASSERT_EQUAL(parse("NOOP", AUTHZ, &c), POP3_PARSE_WRONG_STATE);
}

static void
test_plaintext_policy(void)
{
	/* configured, tls, loopback */
	CU_ASSERT_FALSE(pop3_plaintext_allowed(0, 0, 0));
	CU_ASSERT(pop3_plaintext_allowed(0, 0, 1));
	CU_ASSERT(pop3_plaintext_allowed(0, 1, 0));
	CU_ASSERT(pop3_plaintext_allowed(1, 0, 0));
}

/* ---- the snapshot -------------------------------------------------------- */

static void
fill(struct pop3_maildrop *d, uint32_t n)
{
	uint32_t i;
	char guid[32];

	CU_ASSERT_EQUAL_FATAL(pop3_maildrop_init(d, n), 0);
	for (i = 1; i <= n; i++) {
		snprintf(guid, sizeof(guid), "17000000%02u.M1P2Q%u.host", i, i);
		/* UIDs with a gap after 3: 10, 11, 12, 20, 21, ... */
		pop3_maildrop_set(d, i, i <= 3 ? 9 + i : 16 + i, 100 * i,
		                  i == 2 ? POSTERN_MSG_SEEN : 0, guid);
	}
}

static void
test_maildrop_dele_rset(void)
{
	struct pop3_maildrop d;
	enum pop3_lookup why;

	fill(&d, 5);
	CU_ASSERT_EQUAL(pop3_maildrop_visible(&d), 5);
	CU_ASSERT_EQUAL(pop3_maildrop_visible_size(&d), 1500);
	CU_ASSERT(pop3_maildrop_get(&d, 2, &why)->seen);
	CU_ASSERT_FALSE(pop3_maildrop_get(&d, 1, &why)->seen);
	CU_ASSERT_EQUAL(pop3_maildrop_dele(&d, 2), POP3_MSG_OK);
	CU_ASSERT_EQUAL(pop3_maildrop_dele(&d, 2), POP3_MSG_DELETED);
	CU_ASSERT_EQUAL(pop3_maildrop_dele(&d, 6), POP3_MSG_NONE);
	CU_ASSERT_EQUAL(pop3_maildrop_dele(&d, 0), POP3_MSG_NONE);
	CU_ASSERT_PTR_NULL(pop3_maildrop_get(&d, 2, &why));
	CU_ASSERT_EQUAL(why, POP3_MSG_DELETED);
	CU_ASSERT_PTR_NULL(pop3_maildrop_get(&d, 9, &why));
	CU_ASSERT_EQUAL(why, POP3_MSG_NONE);
	/* Numbers do not shift after DELE. */
	CU_ASSERT_EQUAL(pop3_maildrop_get(&d, 3, &why)->uid, 12);
	CU_ASSERT_EQUAL(pop3_maildrop_visible(&d), 4);
	CU_ASSERT_EQUAL(pop3_maildrop_visible_size(&d), 1300);
	pop3_maildrop_rset(&d);
	CU_ASSERT_EQUAL(pop3_maildrop_visible(&d), 5);
	CU_ASSERT_EQUAL(pop3_maildrop_visible_size(&d), 1500);
	CU_ASSERT_PTR_NOT_NULL(pop3_maildrop_get(&d, 2, &why));
	pop3_maildrop_free(&d);
}

static void
test_maildrop_ranges(void)
{
	struct pop3_maildrop d;
	struct postern_uid_range *r;
	size_t n;

	fill(&d, 6); /* uids 10 11 12 20 21 22 */
	CU_ASSERT_EQUAL(pop3_maildrop_deleted_ranges(&d, &r, &n), 0);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_EQUAL(n, 0);
	pop3_maildrop_dele(&d, 1);
	pop3_maildrop_dele(&d, 2);
	pop3_maildrop_dele(&d, 4);
	pop3_maildrop_dele(&d, 5);
	pop3_maildrop_dele(&d, 6);
	CU_ASSERT_EQUAL_FATAL(pop3_maildrop_deleted_ranges(&d, &r, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(r[0].first, 10);
	CU_ASSERT_EQUAL(r[0].last, 11);
	CU_ASSERT_EQUAL(r[1].first, 20);
	CU_ASSERT_EQUAL(r[1].last, 22);
	free(r);
	pop3_maildrop_free(&d);
	CU_ASSERT_EQUAL(pop3_maildrop_init(&d, 0), 0);
	CU_ASSERT_EQUAL(pop3_maildrop_visible(&d), 0);
	pop3_maildrop_free(&d);
}

static void
test_uidl(void)
{
	char a[POP3_UIDL_MAX + 1], b[POP3_UIDL_MAX + 1];
	char longg[200];
	size_t i;

	pop3_uidl_from_guid("1700000000.M1P2Q3.host", a);
	CU_ASSERT_STRING_EQUAL(a, "1700000000.M1P2Q3.host");
	/* Too long: hashed, stably, into valid characters. */
	memset(longg, 'x', sizeof(longg) - 1);
	longg[sizeof(longg) - 1] = '\0';
	pop3_uidl_from_guid(longg, a);
	pop3_uidl_from_guid(longg, b);
	CU_ASSERT_STRING_EQUAL(a, b);
	CU_ASSERT(strlen(a) >= 1 && strlen(a) <= POP3_UIDL_MAX);
	longg[100] = 'y';
	pop3_uidl_from_guid(longg, b);
	CU_ASSERT(strcmp(a, b) != 0);
	/* Spaces and control characters are not allowed (0x21-0x7E). */
	pop3_uidl_from_guid("a b", a);
	for (i = 0; a[i] != '\0'; i++)
		CU_ASSERT(a[i] >= 0x21 && a[i] <= 0x7e);
	CU_ASSERT(strcmp(a, "a b") != 0);
	pop3_uidl_from_guid("", a);
	CU_ASSERT(strlen(a) > 0);
	memset(longg, 'z', POP3_UIDL_MAX);
	longg[POP3_UIDL_MAX] = '\0';
	pop3_uidl_from_guid(longg, a);
	CU_ASSERT_STRING_EQUAL(a, longg);
}

static CU_TestInfo parser_tests[] = {
	{ "keywords are case-insensitive", test_keywords_case_insensitive },
	{ "unknown commands", test_unknown },
	{ "message numbers", test_message_numbers },
	{ "LIST and UIDL take an optional number", test_list_uidl_optional_arg },
	{ "TOP msg n", test_top },
	{ "USER, PASS and APOP arguments", test_user_pass_args },
	{ "AUTH arguments and line lengths", test_auth_args },
	{ "commands without arguments", test_no_argument_commands },
	{ "commands per state", test_states },
	{ "plaintext login policy", test_plaintext_policy },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo maildrop_tests[] = {
	{ "DELE marks, RSET unmarks, numbers stay", test_maildrop_dele_rset },
	{ "deleted UIDs as ranges", test_maildrop_ranges },
	{ "unique-ids", test_uidl },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "pop3 parser", NULL, NULL, NULL, NULL, parser_tests },
	{ "pop3 maildrop", NULL, NULL, NULL, NULL, maildrop_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
