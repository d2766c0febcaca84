/*
 * test_storage_quota.c - storage_maildir's quota (maildir_quota.c),
 * loaded through the core loader with limits configured and driven
 * through its published table: usage counted from the folders, kept in
 * maildirsize by deliveries, appends, copies, moves and expunges, the
 * limits enforced with POSTERN_SE_OVERQUOTA, the file counted again
 * when it is missing, names other limits, is torn or sums below zero,
 * or a mailbox was deleted; STATUS's \Deleted count and size.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/auth.h>
#include <postern/storage.h>

#include "unit.h"
#include "conf.h"
#include "hook.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "pool.h"
#include "service.h"

#ifndef STORAGE_MODULE_DIR
#error "STORAGE_MODULE_DIR must name the directory of storage_maildir.so"
#endif

/* The limits the suite configures. */
#define LIMIT_OCTETS 1000
#define LIMIT_MESSAGES 5

static struct loader *ld;
static struct conf *cf;
static const struct postern_storage *S;
static char *tmp;
static postern_pool_t *pool;

static int
suite_init(void)
{
	char text[] = "storage_maildir = { location = \"~/Maildir\"; "
	              "quota_storage = 1000; quota_messages = 5; };";

	tmp = unit_tmpdir();
	if ((cf = conf_load_string(text, "test.conf")) == NULL)
		return -1;
	host_set_conf(cf);
	ld = loader_create(host_table(), STORAGE_MODULE_DIR);
	if (loader_load(ld, "storage_maildir") < 0)
		return -1;
	host_set_init_phase(1);
	if (loader_init_all(ld) < 0) {
		host_set_init_phase(0);
		return -1;
	}
	host_set_init_phase(0);
	S = service_lookup("test", POSTERN_STORAGE_SERVICE,
	                   POSTERN_STORAGE_MAJOR, 3, 0);
	pool = pool_create(4096);
	return S != NULL ? 0 : -1;
}

static int
suite_clean(void)
{
	postern_module_t *m = loader_find(ld, "storage_maildir");

	/* as a worker ends: the closed views' states kept by the module
	 * are freed before it is unloaded */
	if (m != NULL && m->worker_ops.exit != NULL)
		m->worker_ops.exit(m->worker_arg);
	pool_destroy(pool);
	hook_reset();
	service_reset();
	loader_destroy(ld);
	host_set_conf(NULL);
	conf_free(cf);
	unit_rm_rf(tmp);
	free(tmp);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

struct tuser {
	struct postern_user u;
	char home[512];
	char maildir[600];
	char sizefile[700];
	postern_store_t *st;
};

static void
user_open(struct tuser *t, const char *label)
{
	struct postern_storage_err err = { 0 };

	memset(t, 0, sizeof(*t));
	snprintf(t->home, sizeof(t->home), "%s/%s", tmp, label);
	snprintf(t->maildir, sizeof(t->maildir), "%s/Maildir", t->home);
	snprintf(t->sizefile, sizeof(t->sizefile), "%s/maildirsize",
	         t->maildir);
	mkdir(t->home, 0700);
	t->u.size = sizeof(t->u);
	t->u.name = "alice@example.org";
	t->u.home = t->home;
	CU_ASSERT_EQUAL_FATAL(S->store_open(&t->u, &t->st, &err), 0);
}

/* A message of exactly `octets` octets (LF lines, as stored). */
static char *
text_of(size_t octets)
{
	char *s = malloc(octets + 1);

	memset(s, 'x', octets);
	memcpy(s, "Subject: q\n\n", 12);
	s[octets - 1] = '\n';
	s[octets] = '\0';
	return s;
}

/* deliver (box NULL) or append: the storage error's code, OK 0. */
static enum postern_storage_error
save(struct tuser *t, const char *box, size_t octets)
{
	struct postern_append a = { .size = sizeof(a), .fd = -1 };
	struct postern_storage_err err = { 0 };
	char *text = text_of(octets);
	uint32_t uid = 0, uidv = 0;
	int rc;

	a.data = text;
	a.length = octets;
	rc = box == NULL ? S->deliver(&t->u, NULL, &a, &uid, &err)
	                 : S->append(t->st, box, &a, &uid, &uidv, &err);
	free(text);
	CU_ASSERT_EQUAL(rc == 0, err.code == POSTERN_SE_OK);
	return rc == 0 ? POSTERN_SE_OK : err.code;
}

static struct postern_quota
quota(struct tuser *t)
{
	struct postern_quota q = { .size = sizeof(q) };
	struct postern_storage_err err = { 0 };

	CU_ASSERT_EQUAL(S->quota_get(t->st, &q, &err), 0);
	CU_ASSERT_EQUAL(q.storage_limit, LIMIT_OCTETS);
	CU_ASSERT_EQUAL(q.message_limit, LIMIT_MESSAGES);
	return q;
}

static void
expect_usage(struct tuser *t, uint64_t octets, uint64_t messages)
{
	struct postern_quota q = quota(t);

	CU_ASSERT_EQUAL(q.storage_used, octets);
	CU_ASSERT_EQUAL(q.message_used, messages);
	if (q.storage_used != octets || q.message_used != messages)
		fprintf(stderr, "usage %llu octets %llu messages, expected "
		        "%llu %llu\n", (unsigned long long)q.storage_used,
		        (unsigned long long)q.message_used,
		        (unsigned long long)octets,
		        (unsigned long long)messages);
}

static void
user_close(struct tuser *t)
{
	S->store_close(t->st);
}

static postern_mailbox_t *
open_box(struct tuser *t, const char *name)
{
	struct postern_storage_err err = { 0 };
	postern_mailbox_t *mb = NULL;

	CU_ASSERT_EQUAL(S->open(t->st, name, 0, &mb, &err), 0);
	return mb;
}

/* \Deleted on every message of the view, then EXPUNGE. */
static void
expunge_all(postern_mailbox_t *mb)
{
	struct postern_uid_range r = { 1, UINT32_MAX };
	struct postern_sync_changes ch;
	struct postern_storage_err err = { 0 };
	uint32_t *failed = NULL;
	size_t nfailed = 0;

	CU_ASSERT_EQUAL(S->store(mb, &r, 1, POSTERN_STORE_ADD,
	                         POSTERN_MSG_DELETED, NULL, 0, 0, pool,
	                         &failed, &nfailed, &err), 0);
	CU_ASSERT_EQUAL(S->expunge(mb, NULL, 0, pool, &ch, &err), 0);
}

static void
write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* ---- tests ------------------------------------------------------------ */

/* Messages that were there before any quota was kept are counted from
 * the folders; the count is written down with the limits. */
static void
test_counted_from_folders(void)
{
	struct postern_storage_err err = { 0 };
	struct tuser t;
	char *f;

	user_open(&t, "count");
	CU_ASSERT_EQUAL(S->create(t.st, "Archive", 0, &err), 0);
	CU_ASSERT_EQUAL(save(&t, NULL, 100), POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, "Archive", 150), POSTERN_SE_OK);
	unlink(t.sizefile);
	expect_usage(&t, 250, 2);
	f = unit_read_file(t.sizefile);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f, "1000S,5C\n250 2\n");
	free(f);
	user_close(&t);
}

/* Each save adds a line; an expunge takes its messages off. */
static void
test_kept_by_changes(void)
{
	postern_mailbox_t *mb;
	struct tuser t;
	char *f;

	user_open(&t, "kept");
	expect_usage(&t, 0, 0);
	CU_ASSERT_EQUAL(save(&t, NULL, 100), POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, "INBOX", 200), POSTERN_SE_OK);
	expect_usage(&t, 300, 2);
	f = unit_read_file(t.sizefile);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f, "1000S,5C\n0 0\n100 1\n200 1\n");
	free(f);
	mb = open_box(&t, "INBOX");
	expunge_all(mb);
	S->close(mb);
	expect_usage(&t, 0, 0);
	user_close(&t);
}

/* The message limit: the sixth message is refused, delivered or
 * appended; after an expunge there is room again. */
static void
test_message_limit(void)
{
	postern_mailbox_t *mb;
	struct tuser t;
	int i;

	user_open(&t, "messages");
	for (i = 0; i < LIMIT_MESSAGES; i++)
		CU_ASSERT_EQUAL(save(&t, i % 2 ? "INBOX" : NULL, 50),
		                POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, NULL, 50), POSTERN_SE_OVERQUOTA);
	CU_ASSERT_EQUAL(save(&t, "INBOX", 50), POSTERN_SE_OVERQUOTA);
	expect_usage(&t, 250, 5);
	mb = open_box(&t, "INBOX");
	CU_ASSERT_EQUAL(S->count(mb), LIMIT_MESSAGES);
	expunge_all(mb);
	S->close(mb);
	CU_ASSERT_EQUAL(save(&t, NULL, 50), POSTERN_SE_OK);
	user_close(&t);
}

/* The storage limit: a message that would pass it is refused, one that
 * fits exactly is taken. */
static void
test_storage_limit(void)
{
	struct tuser t;

	user_open(&t, "octets");
	CU_ASSERT_EQUAL(save(&t, NULL, 600), POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, NULL, 401), POSTERN_SE_OVERQUOTA);
	CU_ASSERT_EQUAL(save(&t, "INBOX", 400), POSTERN_SE_OK);
	expect_usage(&t, 1000, 2);
	CU_ASSERT_EQUAL(save(&t, NULL, 20), POSTERN_SE_OVERQUOTA);
	user_close(&t);
}

/* A copy counts its messages (and is refused past the limit); a move
 * leaves the usage alone, even at the limit. */
static void
test_copy_and_move(void)
{
	struct postern_storage_err err = { 0 };
	struct postern_uid_range all = { 1, UINT32_MAX };
	struct postern_sync_changes ch;
	uint32_t *src = NULL, *dst = NULL, uidv = 0;
	postern_mailbox_t *mb;
	struct tuser t;
	size_t n = 0;

	user_open(&t, "copy");
	CU_ASSERT_EQUAL(S->create(t.st, "Other", 0, &err), 0);
	CU_ASSERT_EQUAL(save(&t, NULL, 300), POSTERN_SE_OK);
	mb = open_box(&t, "INBOX");
	CU_ASSERT_EQUAL(S->copy(mb, &all, 1, "Other", 0, pool, &src, &dst,
	                        &n, &uidv, NULL, &err), 0);
	expect_usage(&t, 600, 2);
	CU_ASSERT_EQUAL(S->copy(mb, &all, 1, "Other", 0, pool, &src, &dst,
	                        &n, &uidv, NULL, &err), 0);
	expect_usage(&t, 900, 3);
	/* a fourth 300 would make 1200 */
	CU_ASSERT_EQUAL(S->copy(mb, &all, 1, "Other", 0, pool, &src, &dst,
	                        &n, &uidv, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_OVERQUOTA);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(S->copy(mb, &all, 1, "Other", 1, pool, &src, &dst,
	                        &n, &uidv, &ch, &err), 0);
	CU_ASSERT_EQUAL(n, 1);
	expect_usage(&t, 900, 3);
	S->close(mb);
	user_close(&t);
}

/* The file is counted again when it cannot be trusted: other limits,
 * a torn or garbled line, sums below zero. */
static void
test_recounted(void)
{
	static const char *const bad[] = {
		"2000S,5C\n250 2\n",       /* other limits */
		"1000S,5C\n250 2\n40",     /* torn last line */
		"1000S,5C\n250 x\n",       /* garbled */
		"1000S,5C\n250 2\n-900 -9\n", /* below zero */
		"",                        /* empty */
	};
	struct tuser t;
	size_t i;
	char *f;

	user_open(&t, "recount");
	CU_ASSERT_EQUAL(save(&t, NULL, 123), POSTERN_SE_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(t.sizefile, bad[i]);
		expect_usage(&t, 123, 1);
		f = unit_read_file(t.sizefile);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		CU_ASSERT_STRING_EQUAL(f, "1000S,5C\n123 1\n");
		free(f);
	}
	/* a file that is trusted is what counts, not the folders */
	write_text(t.sizefile, "1000S,5C\n900 4\n");
	expect_usage(&t, 900, 4);
	CU_ASSERT_EQUAL(save(&t, NULL, 101), POSTERN_SE_OVERQUOTA);
	user_close(&t);
}

/* Many changes: past 5120 octets the lines are folded into their sum
 * (not counted from the folders again: a file that sums wrong on
 * purpose stays wrong); past 64 KiB the file is counted again. */
static void
test_file_folded(void)
{
	postern_mailbox_t *mb;
	struct stat sb;
	struct tuser t;
	char *f, *big;
	size_t i;

	user_open(&t, "fold");
	for (i = 0; i < 400; i++) {
		CU_ASSERT_EQUAL(save(&t, NULL, 20), POSTERN_SE_OK);
		mb = open_box(&t, "INBOX");
		expunge_all(mb);
		S->close(mb);
		CU_ASSERT_TRUE(stat(t.sizefile, &sb) == 0 &&
		               sb.st_size <= 5120 + 64);
	}
	expect_usage(&t, 0, 0);
	/* 1200 lines (6600 octets) that sum to 7 octets in 1 message,
	 * none there */
	big = malloc(8000);
	strcpy(big, "1000S,5C\n7 1\n");
	for (i = 0; i < 600; i++)
		strcat(big, "5 1\n-5 -1\n");
	write_text(t.sizefile, big);
	expect_usage(&t, 7, 1);
	f = unit_read_file(t.sizefile);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(f, "1000S,5C\n7 1\n");
	free(f);
	/* past 64 KiB: not read, counted again */
	big = realloc(big, 70000);
	strcpy(big, "1000S,5C\n");
	for (i = 0; i < 7000; i++)
		strcat(big, "0 0\n");
	write_text(t.sizefile, big);
	expect_usage(&t, 0, 0);
	free(big);
	user_close(&t);
}

/* Deleting a mailbox takes its messages off the usage. */
static void
test_delete_mailbox(void)
{
	struct postern_storage_err err = { 0 };
	struct tuser t;

	user_open(&t, "delete");
	CU_ASSERT_EQUAL(S->create(t.st, "Gone", 0, &err), 0);
	CU_ASSERT_EQUAL(save(&t, "Gone", 200), POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, NULL, 100), POSTERN_SE_OK);
	expect_usage(&t, 300, 2);
	CU_ASSERT_EQUAL(S->remove(t.st, "Gone", &err), 0);
	expect_usage(&t, 100, 1);
	user_close(&t);
}

/* STATUS DELETED and DELETED-STORAGE: the view's and by name. */
static void
test_status_deleted(void)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_storage_err err = { 0 };
	struct postern_uid_range one = { 1, 1 };
	uint32_t *failed = NULL, size1;
	postern_mailbox_t *mb;
	struct tuser t;
	size_t nfailed = 0;

	user_open(&t, "status");
	CU_ASSERT_EQUAL(save(&t, "INBOX", 100), POSTERN_SE_OK);
	CU_ASSERT_EQUAL(save(&t, "INBOX", 200), POSTERN_SE_OK);
	mb = open_box(&t, "INBOX");
	size1 = (uint32_t)S->message(mb, 1)->size;
	CU_ASSERT_EQUAL(S->store(mb, &one, 1, POSTERN_STORE_ADD,
	                         POSTERN_MSG_DELETED, NULL, 0, 0, pool,
	                         &failed, &nfailed, &err), 0);
	S->status(mb, &st);
	CU_ASSERT_EQUAL(st.deleted, 1);
	CU_ASSERT_EQUAL(st.deleted_size, size1);
	S->close(mb);
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	CU_ASSERT_EQUAL(S->status_by_name(t.st, "INBOX", &st, &err), 0);
	CU_ASSERT_EQUAL(st.deleted, 1);
	CU_ASSERT_EQUAL(st.deleted_size, size1);
	CU_ASSERT_EQUAL(st.messages, 2);
	user_close(&t);
}

static CU_TestInfo quota_tests[] = {
	{ "usage counted from the folders", test_counted_from_folders },
	{ "usage kept by saves and expunges", test_kept_by_changes },
	{ "the message limit", test_message_limit },
	{ "the storage limit", test_storage_limit },
	{ "copy counts, move does not", test_copy_and_move },
	{ "maildirsize counted again when untrusted", test_recounted },
	{ "maildirsize folded past 5120 octets", test_file_folded },
	{ "a deleted mailbox leaves the usage", test_delete_mailbox },
	{ "STATUS DELETED and DELETED-STORAGE", test_status_deleted },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "storage_maildir quota", suite_init, suite_clean, NULL, NULL,
	  quota_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
