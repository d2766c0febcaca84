/*
 * test_storage_maildir.c - the maildir storage module, loaded through the
 * core loader with a configuration, driven through its published table
 * on real Maildirs in a temporary directory: layout, delivery and append,
 * UIDs across reopen and index loss, flags and keywords, expunge, copy
 * and move, sync between views, the mailbox list, reading LF files as
 * CRLF, two processes appending at once, crash leftovers, the index's
 * change log, a Dovecot-made Maildir, the cache and the watch; views and
 * store handles that keep their state between operations while other
 * processes and views change, rewrite or cut the index and its log.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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
#include "loop.h"
#include "pool.h"
#include "service.h"

#ifndef STORAGE_MODULE_DIR
#error "STORAGE_MODULE_DIR must name the directory of storage_maildir.so"
#endif

static struct loader *ld;
static struct conf *cf;
static const struct postern_storage *S;
static char *tmp;
static char modlog[16384];
static postern_pool_t *pool;

static void
record_line(int level, const char *prefix, const char *msg, void *arg)
{
	size_t len = strlen(modlog);

	(void)level;
	(void)arg;
	if (prefix != NULL)
		snprintf(modlog + len, sizeof(modlog) - len, "%s\n", msg);
}

static int
suite_init(void)
{
	char text[] = "storage_maildir = { location = \"~/Maildir\"; };";

	tmp = unit_tmpdir();
	if ((cf = conf_load_string(text, "test.conf")) == NULL)
		return -1;
	host_set_conf(cf);
	log_set_sink(record_line, NULL);
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
	                   POSTERN_STORAGE_MAJOR, POSTERN_STORAGE_MINOR, 0);
	pool = pool_create(4096);
	return S != NULL ? 0 : -1;
}

static int
suite_clean(void)
{
	size_t i;

	/* As a worker leaves: the store frees the views it kept parked. */
	for (i = 0; i < loader_count(ld); i++) {
		postern_module_t *m = loader_module(ld, i);

		if (m->has_worker_ops && m->worker_ops.exit != NULL)
			m->worker_ops.exit(m->worker_arg);
	}
	pool_destroy(pool);
	hook_reset();
	service_reset();
	loader_destroy(ld);
	log_set_sink(NULL, NULL);
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
};

static void
make_user(struct tuser *t, const char *label)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->home, sizeof(t->home), "%s/%s", tmp, label);
	snprintf(t->maildir, sizeof(t->maildir), "%s/Maildir", t->home);
	mkdir(t->home, 0700);
	t->u.size = sizeof(t->u);
	t->u.name = "alice@example.org";
	t->u.home = t->home;
}

static struct postern_append
msg_of(const char *text)
{
	struct postern_append a = { .size = sizeof(a), .fd = -1 };

	a.data = text;
	a.length = strlen(text);
	return a;
}

static uint32_t
deliver(struct tuser *t, const char *text)
{
	struct postern_append a = msg_of(text);
	struct postern_storage_err err = { 0 };
	uint32_t uid = 0;

	CU_ASSERT_EQUAL(S->deliver(&t->u, NULL, &a, &uid, &err), 0);
	return uid;
}

static uint32_t
append(postern_store_t *st, const char *box, const char *text,
       uint32_t flags, const char *const *kw, uint32_t nkw, int64_t date)
{
	struct postern_append a = msg_of(text);
	struct postern_storage_err err = { 0 };
	uint32_t uid = 0, uidv = 0;

	a.flags = flags;
	a.keywords = kw;
	a.nkeywords = nkw;
	a.internal_date = date;
	CU_ASSERT_EQUAL(S->append(st, box, &a, &uid, &uidv, &err), 0);
	CU_ASSERT_NOT_EQUAL(uidv, 0);
	return uid;
}

static postern_store_t *
open_store(struct tuser *t)
{
	struct postern_storage_err err = { 0 };
	postern_store_t *st = NULL;

	CU_ASSERT_EQUAL(S->store_open(&t->u, &st, &err), 0);
	return st;
}

static postern_mailbox_t *
open_box(postern_store_t *st, const char *name, unsigned mode)
{
	struct postern_storage_err err = { 0 };
	postern_mailbox_t *mb = NULL;

	CU_ASSERT_EQUAL(S->open(st, name, mode, &mb, &err), 0);
	return mb;
}

static uint32_t
uid_at(postern_mailbox_t *mb, uint32_t seq)
{
	const struct postern_message_info *mi = S->message(mb, seq);

	return mi != NULL ? mi->uid : 0;
}

static uint32_t
flags_of(postern_mailbox_t *mb, uint32_t uid)
{
	uint32_t seq = S->seq_of_uid(mb, uid);
	const struct postern_message_info *mi = S->message(mb, seq);

	return mi != NULL ? mi->flags : 0xffffffffu;
}

static int
store(postern_mailbox_t *mb, uint32_t first, uint32_t last,
      enum postern_store_op op, uint32_t flags, const char *const *kw,
      uint32_t nkw, uint64_t unchangedsince, size_t *nfailed)
{
	struct postern_uid_range r = { first, last };
	struct postern_storage_err err = { 0 };
	uint32_t *failed;
	size_t nf;
	int rc;

	rc = S->store(mb, &r, 1, op, flags, kw, nkw, unchangedsince, pool,
	              &failed, &nf, &err);
	if (nfailed != NULL)
		*nfailed = nf;
	return rc < 0 ? -(int)err.code : rc;
}

static size_t
count_files(const char *dir)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static char *
first_file(const char *dir)
{
	struct dirent *de;
	char *name = NULL;
	DIR *d = opendir(dir);

	if (d == NULL)
		return NULL;
	while (name == NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			name = strdup(de->d_name);
	closedir(d);
	return name;
}

static void
path_of(char *buf, size_t len, const char *a, const char *b)
{
	snprintf(buf, len, "%s/%s", a, b);
}

/* Renames the file of the message `guid` in cur/ to carry `flags`, as
 * another maildir program would. */
static int
rename_flags(const char *maildir, const char *guid, const char *flags)
{
	char cur[1024], from[2048], to[2048];
	struct dirent *de;
	DIR *d;
	int rc = -1;

	path_of(cur, sizeof(cur), maildir, "cur");
	if ((d = opendir(cur)) == NULL)
		return -1;
	while (rc < 0 && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, guid, strlen(guid)) != 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", cur, de->d_name);
		snprintf(to, sizeof(to), "%s/%.*s:2,%s", cur,
		         (int)strcspn(de->d_name, ":"), de->d_name, flags);
		rc = rename(from, to);
	}
	closedir(d);
	return rc;
}

/* ---- layout, delivery, open ------------------------------------------- */

static void
test_deliver_open(void)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	const struct postern_message_info *mi;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	char path[1024], *name;
	struct stat sb;

	make_user(&t, "deliver");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	path_of(path, sizeof(path), t.maildir, "tmp");
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0700);
	CU_ASSERT_EQUAL(deliver(&t, "Subject: a\r\n\r\nbody\r\n"), 1);
	CU_ASSERT_EQUAL(deliver(&t, "Subject: b\n\nbody\n"), 2);
	/* Delivered into new/, with sizes in the name. */
	path_of(path, sizeof(path), t.maildir, "new");
	CU_ASSERT_EQUAL(count_files(path), 2);
	name = first_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	CU_ASSERT_PTR_NOT_NULL(strstr(name, ",S="));
	CU_ASSERT_PTR_NOT_NULL(strstr(name, ",W="));
	free(name);

	mb = open_box(st, "inbox", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	mi = S->message(mb, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mi);
	CU_ASSERT_EQUAL(mi->uid, 2);
	CU_ASSERT_EQUAL(mi->size, strlen("Subject: b\r\n\r\nbody\r\n"));
	CU_ASSERT_EQUAL(mi->flags, POSTERN_MSG_RECENT);
	CU_ASSERT_PTR_NOT_NULL(mi->guid);
	CU_ASSERT_PTR_NULL(S->message(mb, 3));
	CU_ASSERT_PTR_NULL(S->message(mb, 0));
	CU_ASSERT_EQUAL(S->seq_of_uid(mb, 2), 2);
	CU_ASSERT_EQUAL(S->seq_of_uid(mb, 9), 0);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.messages, 2);
	CU_ASSERT_EQUAL(ms.recent, 2);
	CU_ASSERT_EQUAL(ms.unseen, 2);
	CU_ASSERT_EQUAL(ms.first_unseen_seq, 1);
	CU_ASSERT_EQUAL(ms.uidnext, 3);
	CU_ASSERT_NOT_EQUAL(ms.uidvalidity, 0);
	CU_ASSERT(ms.modseq_supported);
	CU_ASSERT_FALSE(ms.readonly);
	S->close(mb);
	/* A read-write view took them from new/ to cur/. */
	CU_ASSERT_EQUAL(count_files(path), 0);
	path_of(path, sizeof(path), t.maildir, "cur");
	CU_ASSERT_EQUAL(count_files(path), 2);
	/* ...and \Recent went with the first view. */
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.recent, 0);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	S->close(mb);
	S->store_close(st);
}

static void
test_location(void)
{
	struct postern_storage_err err = { 0 };
	postern_store_t *st = NULL;
	struct tuser t;
	char mail[600], path[1024];
	struct stat sb;

	make_user(&t, "virtual");
	snprintf(mail, sizeof(mail), "maildir:%s/vmail/%%d/%%n", tmp);
	t.u.mail = mail;
	CU_ASSERT_EQUAL_FATAL(S->store_open(&t.u, &st, &err), 0);
	snprintf(path, sizeof(path), "%s/vmail/example.org/alice/cur", tmp);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	S->store_close(st);
	/* "~" without a home is refused, not guessed. */
	t.u.mail = NULL;
	t.u.home = NULL;
	CU_ASSERT_EQUAL(S->store_open(&t.u, &st, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_TEMP);
	/* A location that cannot be made (a file stands in the way): a
	 * clear error for the client and a log line naming the path, for
	 * a session and for a delivery alike; never a crash. */
	snprintf(path, sizeof(path), "%s/blocker", tmp);
	free(unit_write_file(tmp, "blocker", "not a directory\n"));
	snprintf(mail, sizeof(mail), "maildir:%s/blocker/%%n", tmp);
	t.u.mail = mail;
	modlog[0] = '\0';
	CU_ASSERT_EQUAL(S->store_open(&t.u, &st, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_TEMP);
	CU_ASSERT_PTR_NULL(strstr(err.text, tmp));
	CU_ASSERT_PTR_NOT_NULL(strstr(modlog, path));
	{
		struct postern_append a = msg_of("x\r\n");
		uint32_t uid = 0;

		CU_ASSERT_EQUAL(S->deliver(&t.u, NULL, &a, &uid, &err), -1);
		CU_ASSERT_EQUAL(err.code, POSTERN_SE_TEMP);
	}
}

static void
test_uid_stability(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	uint32_t uidv, recent;
	uint64_t modseq;
	struct tuser t;
	char path[1024];
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	struct postern_mailbox_status ms = { .size = sizeof(ms) };

	make_user(&t, "stable");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	deliver(&t, "a\r\n");
	deliver(&t, "b\r\n");
	deliver(&t, "c\r\n");
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	uidv = ms.uidvalidity;
	recent = ms.recent;
	CU_ASSERT_EQUAL(recent, 3);
	CU_ASSERT_EQUAL(store(mb, 2, 2, POSTERN_STORE_ADD,
	                      POSTERN_MSG_DELETED, NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(S->expunge(mb, NULL, 0, pool, &ch, &err), 0);
	S->close(mb);
	CU_ASSERT_EQUAL(deliver(&t, "d\r\n"), 4);

	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 4);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, uidv);
	CU_ASSERT_EQUAL(ms.recent, 1); /* only d is new to this view */
	S->close(mb);

	/* Without the index the UIDs come back from dovecot-uidlist, and
	 * modseqs still only grow. */
	path_of(path, sizeof(path), t.maildir, "postern.index");
	CU_ASSERT_EQUAL(unlink(path), 0);
	modseq = ms.highestmodseq;
	modlog[0] = '\0';
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(modlog, "index rebuilt: 3 messages, "
	                                      "UIDs kept"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 4);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, uidv);
	CU_ASSERT_EQUAL(ms.uidnext, 5);
	CU_ASSERT(ms.highestmodseq > modseq);
	CU_ASSERT(S->message(mb, 1)->modseq > modseq);
	S->close(mb);
	S->store_close(st);
}

/* ---- append, store ---------------------------------------------------- */

static void
test_append(void)
{
	static const char *const kw[] = { "$Label1", "work" };
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct postern_storage_err err = { 0 };
	const struct postern_message_info *mi;
	struct postern_append a = msg_of("x\r\n");
	postern_mailbox_t *mb;
	postern_store_t *st;
	uint32_t uid, uidv;
	struct tuser t;
	char path[1024], *name;

	make_user(&t, "append");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	a.flags = POSTERN_MSG_SEEN | POSTERN_MSG_FLAGGED | POSTERN_MSG_RECENT;
	a.keywords = kw;
	a.nkeywords = 2;
	a.internal_date = 1000000000;
	a.internal_tz = 120;
	CU_ASSERT_EQUAL_FATAL(S->append(st, "INBOX", &a, &uid, &uidv, &err),
	                      0);
	CU_ASSERT_EQUAL(uid, 1);
	/* Appends go to cur/ with their flags in the name. */
	path_of(path, sizeof(path), t.maildir, "cur");
	name = first_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	CU_ASSERT_PTR_NOT_NULL(strstr(name, ":2,FSab"));
	free(name);
	CU_ASSERT_EQUAL(S->append(st, "Nope", &a, &uid, &uidv, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);

	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, uidv);
	CU_ASSERT_EQUAL_FATAL(ms.nkeywords, 2);
	CU_ASSERT_STRING_EQUAL(ms.keywords[0], "$Label1");
	CU_ASSERT_STRING_EQUAL(ms.keywords[1], "work");
	mi = S->message(mb, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mi);
	CU_ASSERT_EQUAL(mi->flags, POSTERN_MSG_SEEN | POSTERN_MSG_FLAGGED |
	                           POSTERN_MSG_RECENT);
	CU_ASSERT_EQUAL_FATAL(mi->nkeywords, 2);
	CU_ASSERT_EQUAL(mi->keywords[0], 0);
	CU_ASSERT_EQUAL(mi->keywords[1], 1);
	CU_ASSERT_EQUAL(mi->internal_date, 1000000000);
	CU_ASSERT_EQUAL(mi->internal_tz, 120);
	CU_ASSERT_EQUAL(mi->size, 3);
	S->close(mb);
	S->store_close(st);
}

static void
test_store(void)
{
	static const char *const kw[] = { "Junk" };
	postern_mailbox_t *mb, *ro;
	postern_store_t *st;
	uint64_t m1, m2;
	size_t nf;
	struct tuser t;
	char cur[1024];

	make_user(&t, "store");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "a\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "b\r\n", POSTERN_MSG_SEEN, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	m1 = S->message(mb, 1)->modseq;
	CU_ASSERT_EQUAL(store(mb, 1, 2, POSTERN_STORE_ADD,
	                      POSTERN_MSG_FLAGGED, kw, 1, 0, &nf), 0);
	CU_ASSERT_EQUAL(nf, 0);
	CU_ASSERT_EQUAL(flags_of(mb, 1) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED);
	CU_ASSERT_EQUAL(flags_of(mb, 2) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED | POSTERN_MSG_SEEN);
	CU_ASSERT_EQUAL(S->message(mb, 1)->nkeywords, 1);
	m2 = S->message(mb, 1)->modseq;
	CU_ASSERT(m2 > m1);
	CU_ASSERT_EQUAL(store(mb, 2, 2, POSTERN_STORE_REMOVE,
	                      POSTERN_MSG_SEEN, kw, 1, 0, NULL), 0);
	CU_ASSERT_EQUAL(flags_of(mb, 2) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED);
	CU_ASSERT_EQUAL(S->message(mb, 2)->nkeywords, 0);
	CU_ASSERT_EQUAL(store(mb, 1, 1, POSTERN_STORE_SET,
	                      POSTERN_MSG_ANSWERED | POSTERN_MSG_DRAFT, NULL,
	                      0, 0, NULL), 0);
	CU_ASSERT_EQUAL(flags_of(mb, 1) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_ANSWERED | POSTERN_MSG_DRAFT);
	CU_ASSERT_EQUAL(S->message(mb, 1)->nkeywords, 0);
	/* CONDSTORE: changed since m1, so left alone and reported. */
	CU_ASSERT_EQUAL(store(mb, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                      NULL, 0, m1, &nf), 0);
	CU_ASSERT_EQUAL(nf, 1);
	CU_ASSERT_FALSE(flags_of(mb, 1) & POSTERN_MSG_SEEN);
	CU_ASSERT_EQUAL(store(mb, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                      NULL, 0, S->message(mb, 1)->modseq, &nf), 0);
	CU_ASSERT_EQUAL(nf, 0);
	CU_ASSERT(flags_of(mb, 1) & POSTERN_MSG_SEEN);
	/* Flags survive reopening (they are in the file names). */
	S->close(mb);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(flags_of(mb, 1), POSTERN_MSG_ANSWERED |
	                                 POSTERN_MSG_DRAFT | POSTERN_MSG_SEEN);
	/* Another program renamed the file under us: found, and its flags
	 * (as renamed) are what the change applies to. */
	CU_ASSERT_EQUAL(rename_flags(t.maildir, S->message(mb, 2)->guid, "T"),
	                0);
	CU_ASSERT_EQUAL(store(mb, 2, 2, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                      NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(flags_of(mb, 2), POSTERN_MSG_DELETED |
	                                 POSTERN_MSG_SEEN);
	path_of(cur, sizeof(cur), t.maildir, "cur");
	CU_ASSERT_EQUAL(count_files(cur), 2);
	/* A read-only view changes nothing. */
	ro = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ro);
	CU_ASSERT_EQUAL(store(ro, 1, 1, POSTERN_STORE_ADD,
	                      POSTERN_MSG_DELETED, NULL, 0, 0, NULL),
	                -POSTERN_SE_NOPERM);
	S->close(ro);
	S->close(mb);
	S->store_close(st);
}

/* ---- expunge, sync ---------------------------------------------------- */

static void
test_expunge(void)
{
	struct postern_uid_range r = { 4, 4 };
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	int i;

	make_user(&t, "expunge");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 6; i++)
		append(st, "INBOX", "m\r\n", 0, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	store(mb, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
	      NULL);
	store(mb, 3, 4, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
	      NULL);
	store(mb, 6, 6, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
	      NULL);
	/* UID EXPUNGE 4: only that one. */
	CU_ASSERT_EQUAL_FATAL(S->expunge(mb, &r, 1, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ch.nexpunged, 1);
	CU_ASSERT_EQUAL(ch.expunged_seqs[0], 4);
	CU_ASSERT_EQUAL(ch.expunged_uids[0], 4);
	CU_ASSERT_EQUAL(ch.messages, 5);
	/* EXPUNGE: 1, 3, 6 at seqs 1, then 2 (3 moved up), then 3. */
	CU_ASSERT_EQUAL_FATAL(S->expunge(mb, NULL, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ch.nexpunged, 3);
	CU_ASSERT_EQUAL(ch.expunged_seqs[0], 1);
	CU_ASSERT_EQUAL(ch.expunged_seqs[1], 2);
	CU_ASSERT_EQUAL(ch.expunged_seqs[2], 3);
	CU_ASSERT_EQUAL(ch.expunged_uids[0], 1);
	CU_ASSERT_EQUAL(ch.expunged_uids[1], 3);
	CU_ASSERT_EQUAL(ch.expunged_uids[2], 6);
	CU_ASSERT_EQUAL(ch.messages, 2);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 2);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 5);
	S->close(mb);
	S->store_close(st);
}

static void
test_sync(void)
{
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	postern_mailbox_t *a, *b;
	postern_store_t *st;
	struct tuser t;

	make_user(&t, "sync");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "1\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "2\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "3\r\n", 0, NULL, 0, 0);
	a = open_box(st, "INBOX", 0);
	b = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	/* Nothing happened: an empty sync. */
	CU_ASSERT_EQUAL(S->sync(a, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL(ch.nexpunged + ch.nchanged, 0);
	CU_ASSERT_FALSE(ch.new_messages);
	/* b flags 3, expunges 2; a delivery comes. */
	store(b, 3, 3, POSTERN_STORE_ADD, POSTERN_MSG_SEEN, NULL, 0, 0, NULL);
	store(b, 2, 2, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
	      NULL);
	CU_ASSERT_EQUAL(S->expunge(b, NULL, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL(deliver(&t, "4\r\n"), 4);
	/* During FETCH: no expunge yet; 2 stays numbered, marked. */
	CU_ASSERT_EQUAL_FATAL(S->sync(a, POSTERN_SYNC_NO_EXPUNGE, pool, &ch,
	                              &err), 0);
	CU_ASSERT_EQUAL(ch.nexpunged, 0);
	CU_ASSERT_EQUAL_FATAL(ch.nchanged, 1);
	CU_ASSERT_EQUAL(ch.changed_seqs[0], 3);
	CU_ASSERT(ch.new_messages);
	CU_ASSERT_EQUAL(ch.messages, 4);
	CU_ASSERT_EQUAL(ch.recent, 4); /* a was first for all of them */
	CU_ASSERT(S->message(a, 2)->expunged);
	CU_ASSERT(flags_of(a, 3) & POSTERN_MSG_SEEN);
	/* Then the expunge is told, at seq 2, and numbers move. */
	CU_ASSERT_EQUAL_FATAL(S->sync(a, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ch.nexpunged, 1);
	CU_ASSERT_EQUAL(ch.expunged_seqs[0], 2);
	CU_ASSERT_EQUAL(ch.expunged_uids[0], 2);
	CU_ASSERT_EQUAL(ch.nchanged, 0);
	CU_ASSERT_EQUAL(ch.messages, 3);
	CU_ASSERT_EQUAL(ch.recent, 3);
	CU_ASSERT_EQUAL(uid_at(a, 3), 4);
	/* Another program (mutt, Dovecot) renames a file: a flag change
	 * that sync reports with a new modseq. */
	{
		uint64_t before = S->message(a, 1)->modseq;

		CU_ASSERT_EQUAL(rename_flags(t.maildir, S->message(a, 1)->guid,
		                             "FT"), 0);
		CU_ASSERT_EQUAL_FATAL(S->sync(a, 0, pool, &ch, &err), 0);
		CU_ASSERT_EQUAL_FATAL(ch.nchanged, 1);
		CU_ASSERT_EQUAL(ch.changed_seqs[0], 1);
		CU_ASSERT_EQUAL(flags_of(a, 1) & ~POSTERN_MSG_RECENT,
		                POSTERN_MSG_FLAGGED | POSTERN_MSG_DELETED);
		CU_ASSERT(S->message(a, 1)->modseq > before);
	}
	/* b took no \Recent for 4: a had it first. */
	CU_ASSERT_EQUAL(S->sync(b, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL(ch.recent, 0);
	CU_ASSERT(ch.new_messages);
	S->close(a);
	S->close(b);
	S->store_close(st);
}

static void
test_external_changes(void)
{
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	char dir[1024], path[2048], *name;

	/* Postfix delivers into new/, another program deletes a file, and
	 * a postern delivery happens in between: all are seen.  The
	 * delivery reads no directory, so Postfix's file gets its UID when
	 * a sync finds it, after the delivery's. */
	make_user(&t, "external");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(deliver(&t, "1\r\n"), 1);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	path_of(dir, sizeof(dir), t.maildir, "new");
	free(unit_write_file(dir, "1700000000.P1Q1.other", "2\n"));
	CU_ASSERT_EQUAL(deliver(&t, "3\r\n"), 2);
	path_of(dir, sizeof(dir), t.maildir, "cur");
	name = first_file(dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	free(name);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL_FATAL(S->sync(mb, 0, pool, &ch, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ch.nexpunged, 1);
	CU_ASSERT_EQUAL(ch.expunged_uids[0], 1);
	CU_ASSERT_EQUAL(ch.messages, 2);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 2);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 3);
	CU_ASSERT_EQUAL(S->message(mb, 2)->size, 3); /* "2\n" as CRLF */
	S->close(mb);
	S->store_close(st);
}

/* ---- copy, move ------------------------------------------------------- */

static void
test_copy_move(void)
{
	static const char *const kw[] = { "x", "y" };
	struct postern_uid_range r12 = { 1, 2 }, r3 = { 3, 3 };
	struct postern_sync_changes ch;
	struct postern_storage_err err = { 0 };
	postern_mailbox_t *mb, *dst, *other;
	postern_store_t *st;
	uint32_t *su, *du, uidv;
	const struct postern_message_info *mi;
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	size_t n;
	struct tuser t;

	make_user(&t, "copy");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL_FATAL(S->create(st, "Archive", 0, &err), 0);
	append(st, "INBOX", "1\r\n", POSTERN_MSG_SEEN, &kw[1], 1, 0);
	append(st, "INBOX", "2\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "3\r\n", POSTERN_MSG_FLAGGED, NULL, 0, 0);
	/* The destination has its own keyword letters: "y" is 'b' here. */
	append(st, "Archive", "0\r\n", 0, kw, 1, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL_FATAL(S->copy(mb, &r12, 1, "Archive", 0, pool, &su,
	                              &du, &n, &uidv, NULL, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(su[0], 1);
	CU_ASSERT_EQUAL(su[1], 2);
	CU_ASSERT_EQUAL(du[0], 2);
	CU_ASSERT_EQUAL(du[1], 3);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL_FATAL(S->copy(mb, &r3, 1, "Archive", 1, pool, &su,
	                              &du, &n, &uidv, &ch, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(du[0], 4);
	CU_ASSERT_EQUAL_FATAL(ch.nexpunged, 1);
	CU_ASSERT_EQUAL(ch.expunged_seqs[0], 3);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	CU_ASSERT_EQUAL(S->copy(mb, &r12, 1, "Nope", 0, pool, &su, &du, &n,
	                        &uidv, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);
	/* Another session expunged 2 (our view still shows it). */
	other = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	store(other, 2, 2, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
	      NULL);
	CU_ASSERT_EQUAL(S->expunge(other, NULL, 0, pool, &ch, &err), 0);
	S->close(other);
	CU_ASSERT_EQUAL(S->copy(mb, &r12, 1, "Archive", 0, pool, &su, &du,
	                        &n, &uidv, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_EXPUNGED);

	dst = open_box(st, "Archive", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dst);
	S->status(dst, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, uidv);
	CU_ASSERT_EQUAL(S->count(dst), 4);
	mi = S->message(dst, 2);
	CU_ASSERT_EQUAL(mi->flags & ~POSTERN_MSG_RECENT, POSTERN_MSG_SEEN);
	CU_ASSERT_EQUAL_FATAL(mi->nkeywords, 1);
	CU_ASSERT_STRING_EQUAL(ms.keywords[mi->keywords[0]], "y");
	CU_ASSERT_EQUAL(flags_of(dst, 4) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED);
	S->close(dst);
	S->close(mb);
	S->store_close(st);
}

/* ---- the mailbox list ------------------------------------------------- */

static unsigned
attrs_of(postern_store_t *st, const char *name)
{
	struct postern_mailbox_entry *e;
	struct postern_storage_err err;
	size_t n, i;

	if (S->list(st, pool, &e, &n, &err) < 0)
		return 0xffffffffu;
	for (i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			return e[i].attrs;
	return 0xdeadu; /* absent */
}

static void
test_list(void)
{
	struct postern_storage_err err = { 0 };
	postern_store_t *st;
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct tuser t;
	char path[1024];
	struct stat sb;

	make_user(&t, "list");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(S->create(st, "Work/2024", 0, &err), 0);
	CU_ASSERT_EQUAL(S->create(st, "Entwürfe", POSTERN_MBOX_DRAFTS, &err),
	                0);
	CU_ASSERT_EQUAL(S->create(st, "Entwürfe", 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_ALREADYEXISTS);
	CU_ASSERT_EQUAL(S->create(st, "a.b", 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_CANNOT);
	CU_ASSERT_EQUAL(S->create(st, "inbox", 0, &err), -1);
	/* Modified UTF-7 on disk, as Dovecot names it. */
	path_of(path, sizeof(path), t.maildir, ".Entw&APw-rfe/cur");
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	path_of(path, sizeof(path), t.maildir, ".Work.2024/cur");
	CU_ASSERT_EQUAL(stat(path, &sb), 0);

	CU_ASSERT_EQUAL(attrs_of(st, "INBOX"), POSTERN_MBOX_HASNOCHILDREN);
	CU_ASSERT_EQUAL(attrs_of(st, "Work"), POSTERN_MBOX_NOSELECT |
	                                      POSTERN_MBOX_HASCHILDREN);
	CU_ASSERT_EQUAL(attrs_of(st, "Work/2024"), POSTERN_MBOX_HASNOCHILDREN);
	CU_ASSERT_EQUAL(attrs_of(st, "Entwürfe"), POSTERN_MBOX_DRAFTS |
	                                          POSTERN_MBOX_HASNOCHILDREN);

	/* Subscriptions, existing or not. */
	CU_ASSERT_EQUAL(S->subscribe(st, "Work/2024", 1, &err), 0);
	CU_ASSERT_EQUAL(S->subscribe(st, "Gone", 1, &err), 0);
	CU_ASSERT_EQUAL(S->subscribe(st, "Gone", 1, &err), 0);
	CU_ASSERT(attrs_of(st, "Work/2024") & POSTERN_MBOX_SUBSCRIBED);
	CU_ASSERT(attrs_of(st, "Gone") & POSTERN_MBOX_NONEXISTENT);
	CU_ASSERT_EQUAL(S->subscribe(st, "Gone", 0, &err), 0);
	CU_ASSERT_EQUAL(attrs_of(st, "Gone"), 0xdeadu);
	path_of(path, sizeof(path), t.maildir, "subscriptions");
	{
		char *text = unit_read_file(path);

		CU_ASSERT_PTR_NOT_NULL_FATAL(text);
		CU_ASSERT_STRING_EQUAL(text, "Work/2024\n");
		free(text);
	}

	/* Rename moves children, and messages keep their UIDs. */
	CU_ASSERT_EQUAL(S->create(st, "Work", 0, &err), 0);
	CU_ASSERT_EQUAL(append(st, "Work", "w\r\n", 0, NULL, 0, 0), 1);
	CU_ASSERT_EQUAL(S->rename(st, "Work", "Job", &err), 0);
	CU_ASSERT_EQUAL(attrs_of(st, "Job/2024"), POSTERN_MBOX_HASNOCHILDREN);
	/* Subscriptions stay with the old name (RFC 3501 6.3.5 leaves it
	 * to the server; Dovecot does the same). */
	CU_ASSERT_EQUAL(attrs_of(st, "Work/2024"), POSTERN_MBOX_SUBSCRIBED |
	                                           POSTERN_MBOX_NONEXISTENT |
	                                           POSTERN_MBOX_NOSELECT);
	CU_ASSERT_EQUAL(S->status_by_name(st, "Job", &ms, &err), 0);
	CU_ASSERT_EQUAL(ms.messages, 1);
	CU_ASSERT_EQUAL(ms.uidnext, 2);
	CU_ASSERT_EQUAL(ms.recent, 1);
	CU_ASSERT_EQUAL(S->rename(st, "Job", "Entwürfe", &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_ALREADYEXISTS);
	CU_ASSERT_EQUAL(S->rename(st, "Nope", "X", &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);

	/* Renaming INBOX moves its messages and leaves it empty. */
	deliver(&t, "i\r\n");
	CU_ASSERT_EQUAL(S->rename(st, "INBOX", "Old", &err), 0);
	CU_ASSERT_EQUAL(S->status_by_name(st, "Old", &ms, &err), 0);
	CU_ASSERT_EQUAL(ms.messages, 1);
	CU_ASSERT_EQUAL(S->status_by_name(st, "INBOX", &ms, &err), 0);
	CU_ASSERT_EQUAL(ms.messages, 0);

	/* Delete: a parent with children becomes \Noselect. */
	CU_ASSERT_EQUAL(S->remove(st, "Job", &err), 0);
	CU_ASSERT_EQUAL(attrs_of(st, "Job"), POSTERN_MBOX_NOSELECT |
	                                     POSTERN_MBOX_HASCHILDREN);
	CU_ASSERT_EQUAL(S->remove(st, "Job", &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);
	CU_ASSERT_EQUAL(S->remove(st, "INBOX", &err), -1);
	CU_ASSERT_EQUAL(S->status_by_name(st, "Job", &ms, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);
	S->store_close(st);
}

/* Storage 1.1: a head (trace headers) before content read from an offset
 * of a spool file, as SMTP delivers; and from memory. */
static void
test_deliver_head(void)
{
	static const char head[] = "Return-Path: <a@b>\r\nReceived: x\r\n";
	static const char spool[] = "JUNKSubject: s\r\n\r\nbody\r\nJUNK";
	static const char want[] = "Return-Path: <a@b>\r\nReceived: x\r\n"
	                           "Subject: s\r\n\r\nbody\r\n";
	struct postern_append a = { .size = sizeof(a) };
	struct postern_storage_err err = { 0 };
	struct postern_msg_size sz;
	postern_mailbox_t *mb;
	postern_store_t *st;
	postern_msg_t *m;
	char path[1024], buf[256];
	uint32_t uid = 0;
	int fd, i;
	ssize_t r;
	struct tuser t;

	make_user(&t, "head");
	snprintf(path, sizeof(path), "%s/spool", t.home);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(write(fd, spool, strlen(spool)),
	                      (ssize_t)strlen(spool));
	a.head = head;
	a.head_len = strlen(head);
	a.offset = 4;
	a.length = strlen(spool) - 8;
	for (i = 0; i < 2; i++) {
		a.fd = i == 0 ? fd : -1;
		a.data = i == 0 ? NULL : spool;
		CU_ASSERT_EQUAL(S->deliver(&t.u, NULL, &a, &uid, &err), 0);
		CU_ASSERT_EQUAL(uid, (uint32_t)i + 1);
	}
	close(fd);
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	for (uid = 1; uid <= 2; uid++) {
		CU_ASSERT_EQUAL_FATAL(S->msg_open(mb, uid, &m, &sz, &err), 0);
		CU_ASSERT_EQUAL(sz.size, strlen(want));
		CU_ASSERT_EQUAL(sz.header_size,
		                strstr(want, "\r\n\r\n") + 4 - want);
		r = S->msg_read(m, 0, buf, sizeof(buf), &err);
		CU_ASSERT_EQUAL(r, (ssize_t)strlen(want));
		CU_ASSERT_EQUAL(memcmp(buf, want, strlen(want)), 0);
		S->msg_close(m);
	}
	S->close(mb);
	S->store_close(st);
}

/* Group commit: job threads delivering into one mailbox at once share
 * lock turns and fsyncs; every message still gets its own UID, in the
 * order the uid list records, and the mailbox reopens whole. */
#define GC_THREADS 8
#ifndef GC_EACH
#define GC_EACH 40
#endif

struct gc_arg {
	struct tuser *t;
	int id;
	uint32_t uids[GC_EACH];
	int failed;
};

static void *
gc_thread(void *arg)
{
	struct gc_arg *g = arg;
	struct postern_storage_err err = { 0 };
	struct postern_append a;
	char text[64];
	int i;

	for (i = 0; i < GC_EACH; i++) {
		snprintf(text, sizeof(text), "Subject: %d.%d\r\n\r\nx\r\n",
		         g->id, i);
		a = msg_of(text);
		if (g->id % 2 == 1)
			a.flags = POSTERN_MSG_SEEN; /* into cur/ */
		if (S->deliver(&g->t->u, NULL, &a, &g->uids[i], &err) != 0)
			g->failed++;
	}
	return NULL;
}

static void
test_group_commit(void)
{
	struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	static unsigned char seen[GC_THREADS * GC_EACH + 1];
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	uint32_t seq, uid;
	int i, j, dup = 0, failed = 0;

	make_user(&t, "group");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < GC_THREADS; i++) {
		args[i] = (struct gc_arg){ .t = &t, .id = i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, gc_thread,
		                                     &args[i]), 0);
	}
	for (i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < GC_THREADS; i++) {
		failed += args[i].failed;
		for (j = 0; j < GC_EACH; j++) {
			uid = args[i].uids[j];
			if (uid == 0 || uid > GC_THREADS * GC_EACH ||
			    seen[uid]++)
				dup++;
			/* A thread's own deliveries are in order. */
			if (j > 0 && uid <= args[i].uids[j - 1])
				dup++;
		}
	}
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(dup, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), GC_THREADS * GC_EACH);
	for (seq = 1; seq <= S->count(mb); seq++)
		CU_ASSERT_EQUAL(S->message(mb, seq)->uid, seq);
	S->close(mb);
	S->store_close(st);
}

/* ---- reading ---------------------------------------------------------- */

static void
test_read_lf(void)
{
	static const char lf[] = "From: a\nSubject: lf\n\nline 1\nline 2\r\n"
	                         "\nend\n";
	static const char crlf[] = "From: a\r\nSubject: lf\r\n\r\nline 1\r\n"
	                           "line 2\r\n\r\nend\r\n";
	struct postern_storage_err err = { 0 };
	struct postern_msg_size sz;
	postern_mailbox_t *mb;
	postern_store_t *st;
	postern_msg_t *m;
	char buf[256], one[4];
	size_t got = 0, i;
	ssize_t r;
	struct tuser t;

	make_user(&t, "read");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	deliver(&t, lf);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->message(mb, 1)->size, strlen(crlf));
	CU_ASSERT_EQUAL_FATAL(S->msg_open(mb, 1, &m, &sz, &err), 0);
	CU_ASSERT_EQUAL(sz.size, strlen(crlf));
	CU_ASSERT_EQUAL(sz.header_size, strstr(crlf, "\r\n\r\n") + 4 - crlf);
	while ((r = S->msg_read(m, got, buf + got, 5, &err)) > 0)
		got += (size_t)r;
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_EQUAL_FATAL(got, strlen(crlf));
	CU_ASSERT_EQUAL(memcmp(buf, crlf, got), 0);
	/* Any offset, backwards too, one octet at a time. */
	for (i = strlen(crlf); i-- > 0;) {
		CU_ASSERT_EQUAL_FATAL(S->msg_read(m, i, one, 1, &err), 1);
		CU_ASSERT_EQUAL(one[0], crlf[i]);
	}
	S->msg_close(m);
	CU_ASSERT_EQUAL(S->msg_open(mb, 9, &m, &sz, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_EXPUNGED);
	S->close(mb);
	S->store_close(st);
}

/* Reading a big message with bare LFs (and some CRLFs) in pieces of every
 * size from 1 to 4099 octets gives the CRLF form, for a file read whole
 * at open and for one mapped (over 256 KiB). */
static void
test_read_lf_big(void)
{
	struct postern_storage_err err = { 0 };
	struct postern_msg_size sz;
	postern_mailbox_t *mb;
	postern_store_t *st;
	postern_msg_t *m;
	size_t sizes[2] = { 100 * 1000, 400 * 1000 }, raw, want, i, got, step;
	char *lf, *crlf, *buf;
	struct tuser t;
	uint32_t uid;
	ssize_t r;
	int k, bad;

	make_user(&t, "readbig");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (k = 0; k < 2; k++) {
		lf = malloc(sizes[k] + 1);
		crlf = malloc(2 * sizes[k] + 1);
		buf = malloc(2 * sizes[k] + 1);
		CU_ASSERT_FATAL(lf != NULL && crlf != NULL && buf != NULL);
		/* Lines of 0 to 96 octets; every seventh ends in CRLF. */
		for (raw = 0, want = 0, i = 0; raw + 100 < sizes[k]; i++) {
			size_t n = (i * 37) % 97;

			memset(lf + raw, 'a' + (int)(i % 26), n);
			memset(crlf + want, 'a' + (int)(i % 26), n);
			raw += n;
			want += n;
			if (i % 7 == 0)
				lf[raw++] = '\r';
			lf[raw++] = '\n';
			crlf[want++] = '\r';
			crlf[want++] = '\n';
		}
		lf[raw] = '\0';
		uid = deliver(&t, lf);
		mb = open_box(st, "INBOX", 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
		CU_ASSERT_EQUAL_FATAL(S->msg_open(mb, uid, &m, &sz, &err), 0);
		CU_ASSERT_EQUAL(sz.size, want);
		for (step = 1, bad = 0; step < 4100; step += step < 20 ? 1 : 409) {
			for (got = 0; (r = S->msg_read(m, got, buf + got,
			                               step, &err)) > 0;)
				got += (size_t)r;
			bad += r != 0 || got != want ||
			       memcmp(buf, crlf, want) != 0;
		}
		CU_ASSERT_EQUAL(bad, 0);
		/* A jump backwards and into the middle of a CR LF pair. */
		for (i = want - 1; i > want - 200; i -= 3) {
			CU_ASSERT_EQUAL(S->msg_read(m, i, buf, 2, &err),
			                i + 2 <= want ? 2 : 1);
			CU_ASSERT_EQUAL(buf[0], crlf[i]);
		}
		S->msg_close(m);
		S->close(mb);
		free(lf);
		free(crlf);
		free(buf);
	}
	S->store_close(st);
}

/* msg_source (storage 1.8): a large CRLF file is handed out as a file
 * whose octets from the offset are the message; an LF file needs the
 * reader; a small one is in memory. */
static void
test_msg_source(void)
{
	struct postern_storage_err err = { 0 };
	struct postern_msg_size sz;
	postern_mailbox_t *mb;
	postern_store_t *st;
	postern_msg_t *m;
	size_t big = 400 * 1000, i;
	char *crlf = malloc(big + 1), *lf = malloc(big + 1);
	char *buf = malloc(2 * big), *via = malloc(2 * big);
	uint32_t uids[3];
	int want[3] = { POSTERN_MSG_SOURCE_FILE, POSTERN_MSG_SOURCE_READER,
	                POSTERN_MSG_SOURCE_IN_MEMORY };
	uint64_t off;
	struct tuser t;
	ssize_t n;
	int k, fd;

	CU_ASSERT_FATAL(crlf != NULL && lf != NULL && buf != NULL &&
	                via != NULL);
	for (i = 0; i + 2 <= big; i += 50) {
		memset(crlf + i, 'a' + (int)(i % 26), 48);
		memcpy(crlf + i + 48, "\r\n", 2);
		memset(lf + i, 'a' + (int)(i % 26), 49);
		lf[i + 49] = '\n';
	}
	crlf[i] = lf[i] = '\0';
	make_user(&t, "msgsource");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	uids[0] = deliver(&t, crlf);
	uids[1] = deliver(&t, lf);
	uids[2] = deliver(&t, "Subject: small\r\n\r\nhello\r\n");
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_FATAL(POSTERN_SIZED_HAS(S, msg_source));
	for (k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL_FATAL(S->msg_open(mb, uids[k], &m, &sz, &err),
		                      0);
		fd = -1;
		off = 0;
		CU_ASSERT_EQUAL(S->msg_source(m, &fd, &off), want[k]);
		if (want[k] == POSTERN_MSG_SOURCE_FILE) {
			/* The file's octets are what msg_read gives. */
			CU_ASSERT(fd >= 0);
			n = pread(fd, buf, sz.size + 1, (off_t)off);
			CU_ASSERT_EQUAL(n, (ssize_t)sz.size);
			CU_ASSERT_EQUAL(S->msg_read(m, 0, via, sz.size, &err),
			                (ssize_t)sz.size);
			CU_ASSERT(n > 0 && memcmp(buf, via, sz.size) == 0);
		}
		S->msg_close(m);
	}
	S->close(mb);
	S->store_close(st);
	free(crlf);
	free(lf);
	free(buf);
	free(via);
}

static void
test_read_renamed(void)
{
	struct postern_storage_err err = { 0 };
	struct postern_msg_size sz;
	postern_mailbox_t *a, *b;
	postern_store_t *st;
	postern_msg_t *m;
	char buf[16];
	struct tuser t;

	/* Another view renames the file (a flag change): still readable. */
	make_user(&t, "renamed");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "Subject: r\r\n\r\nhi\r\n", 0, NULL, 0, 0);
	a = open_box(st, "INBOX", 0);
	b = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	store(b, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN, NULL, 0, 0, NULL);
	CU_ASSERT_EQUAL_FATAL(S->msg_open(a, 1, &m, &sz, &err), 0);
	CU_ASSERT_EQUAL(sz.header_size, 14);
	CU_ASSERT_EQUAL(S->msg_read(m, 14, buf, sizeof(buf), &err), 4);
	S->msg_close(m);
	S->close(a);
	S->close(b);
	S->store_close(st);
}

/* ---- two processes at once -------------------------------------------- */

static int
child_work(struct tuser *t, int id)
{
	struct postern_storage_err err;
	postern_mailbox_t *mb;
	postern_store_t *st;
	uint32_t uid, uidv, *failed;
	size_t nf;
	char text[64];
	int i;

	if (S->store_open(&t->u, &st, &err) < 0)
		return 1;
	for (i = 0; i < 200; i++) {
		struct postern_append a;
		struct postern_uid_range r;

		snprintf(text, sizeof(text), "Subject: %d-%d\r\n\r\nx\r\n", id,
		         i);
		a = msg_of(text);
		if (S->append(st, "INBOX", &a, &uid, &uidv, &err) < 0)
			return 2;
		if (i % 10 != 0)
			continue;
		if (S->open(st, "INBOX", 0, &mb, &err) < 0)
			return 3;
		r.first = r.last = uid;
		if (S->store(mb, &r, 1, POSTERN_STORE_ADD,
		             POSTERN_MSG_FLAGGED, NULL, 0, 0, pool, &failed,
		             &nf, &err) < 0)
			return 4;
		S->close(mb);
	}
	S->store_close(st);
	return 0;
}

static void
test_two_processes(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	pid_t pid[2];
	int i, status, flagged = 0;
	uint32_t seq;
	struct tuser t;

	make_user(&t, "concurrent");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		CU_ASSERT_FATAL(pid[i] >= 0);
		if (pid[i] == 0) {
			alarm(120); /* bounded even if something hangs */
			_exit(child_work(&t, i));
		}
	}
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(waitpid(pid[i], &status, 0), pid[i]);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 400);
	/* UIDs ascend strictly (so they are distinct) from 1 to 400. */
	for (seq = 1; seq <= S->count(mb); seq++) {
		CU_ASSERT_EQUAL(uid_at(mb, seq), seq);
		flagged += !!(S->message(mb, seq)->flags & POSTERN_MSG_FLAGGED);
	}
	CU_ASSERT_EQUAL(flagged, 40);
	S->close(mb);
	S->store_close(st);
}

/* ---- crash, Dovecot --------------------------------------------------- */

/* A uid list whose next UID is the last one there is (a corrupt or
 * hostile file): taken, it made UIDs 4294967295 then 0, 1...  It is
 * refused like a corrupt list: new UIDVALIDITY, UIDs from 1. */
static void
test_uid_list_at_the_last_uid(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct tuser t;

	make_user(&t, "lastuid");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	deliver(&t, "1\r\n");
	deliver(&t, "2\r\n");
	free(unit_write_file(t.maildir, "dovecot-uidlist",
	                     "3 V7 N4294967295\n"));
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 2);
	S->status(mb, &ms);
	CU_ASSERT_NOT_EQUAL(ms.uidvalidity, 7);
	CU_ASSERT_EQUAL(ms.uidnext, 3);
	S->close(mb);
	S->store_close(st);
}

static void
test_crash_leftovers(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	uint32_t uidv;
	struct stat sb;
	char path[1024], *ul;
	struct tuser t;
	FILE *f;

	make_user(&t, "crash");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	deliver(&t, "1\r\n");
	deliver(&t, "2\r\n");
	deliver(&t, "3\r\n");
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	uidv = ms.uidvalidity;
	S->close(mb);
	/* A crash mid-delivery leaves tmp/ files; one mid-write of the
	 * index leaves it short; one mid-append of the uid list, a torn
	 * line. */
	path_of(path, sizeof(path), t.maildir, "tmp");
	free(unit_write_file(path, "1.M1P1.host", "half a messa"));
	path_of(path, sizeof(path), t.maildir, "postern.index");
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(truncate(path, sb.st_size / 2), 0);
	path_of(path, sizeof(path), t.maildir, "dovecot-uidlist");
	f = fopen(path, "a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("4 :123.torn", f);
	fclose(f);
	modlog[0] = '\0';

	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL(strstr(modlog, "corrupt or truncated index"));
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 3);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, uidv);
	S->close(mb);
	/* Garbage instead of an index: the same. */
	free(unit_write_file(t.maildir, "postern.index",
	                     "PMDI garbage garbage garbage garbage garbage "
	                     "garbage garbage garbage garbage garbage"));
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 2);
	S->close(mb);
	CU_ASSERT_EQUAL(deliver(&t, "4\r\n"), 4);
	/* The torn line was not taken for a message. */
	path_of(path, sizeof(path), t.maildir, "dovecot-uidlist");
	ul = unit_read_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ul);
	CU_ASSERT_PTR_NULL(strstr(ul, "123.torn\n"));
	free(ul);
	S->store_close(st);
}

/* ---- the change log --------------------------------------------------- */

struct snap {
	uint32_t n, uidnext;
	uint64_t highestmodseq;
	struct {
		uint32_t uid, flags, nkw;
		uint64_t size, modseq;
		int64_t idate;
		char guid[128];
	} m[256];
};

/* What a view shows, \Recent aside (it goes with the first view). */
static void
snap_of(postern_mailbox_t *mb, struct snap *sn)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	const struct postern_message_info *mi;
	uint32_t i;

	memset(sn, 0, sizeof(*sn));
	S->status(mb, &ms);
	sn->uidnext = ms.uidnext;
	sn->highestmodseq = ms.highestmodseq;
	sn->n = S->count(mb);
	CU_ASSERT_FATAL(sn->n <= 256);
	for (i = 0; i < sn->n; i++) {
		mi = S->message(mb, i + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(mi);
		sn->m[i].uid = mi->uid;
		sn->m[i].flags = mi->flags & ~POSTERN_MSG_RECENT;
		sn->m[i].nkw = mi->nkeywords;
		sn->m[i].size = mi->size;
		sn->m[i].modseq = mi->modseq;
		sn->m[i].idate = mi->internal_date;
		snprintf(sn->m[i].guid, sizeof(sn->m[i].guid), "%s", mi->guid);
	}
}

static int
snap_same(const struct snap *a, const struct snap *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void
stat_of(const struct tuser *t, const char *name, struct stat *sb)
{
	char path[1024];

	path_of(path, sizeof(path), t->maildir, name);
	memset(sb, 0, sizeof(*sb));
	if (stat(path, sb) < 0)
		sb->st_ino = 0; /* absent */
}

static void
test_log_torn(void)
{
	struct stat ix, ix2, lg, lg2;
	struct snap before, after;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	char path[1024];

	make_user(&t, "logtorn");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "1\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "2\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "3\r\n", POSTERN_MSG_SEEN, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->close(mb);
	/* An append goes in the log; the index stays as it was. */
	stat_of(&t, "postern.index", &ix);
	stat_of(&t, "postern.index.log", &lg);
	CU_ASSERT_EQUAL(append(st, "INBOX", "4\r\n", 0, NULL, 0, 0), 4);
	stat_of(&t, "postern.index", &ix2);
	stat_of(&t, "postern.index.log", &lg2);
	CU_ASSERT_EQUAL(ix2.st_ino, ix.st_ino);
	CU_ASSERT_EQUAL(ix2.st_size, ix.st_size);
	CU_ASSERT(lg2.st_size > lg.st_size);
	/* A crash in the middle of writing that entry: the UID is in the
	 * uid list, so it comes back. */
	path_of(path, sizeof(path), t.maildir, "postern.index.log");
	CU_ASSERT_EQUAL(truncate(path, lg.st_size + (lg2.st_size -
	                                             lg.st_size) / 2), 0);
	modlog[0] = '\0';
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NULL(strstr(modlog, "corrupt"));
	CU_ASSERT_PTR_NULL(strstr(modlog, "UIDVALIDITY"));
	CU_ASSERT_EQUAL(S->count(mb), 4);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 4), 4);
	CU_ASSERT_EQUAL(flags_of(mb, 3) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_SEEN);
	/* A flag change torn the same way: the name in cur/ says it. */
	stat_of(&t, "postern.index.log", &lg);
	CU_ASSERT_EQUAL(store(mb, 2, 2, POSTERN_STORE_ADD,
	                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
	stat_of(&t, "postern.index.log", &lg2);
	CU_ASSERT(lg2.st_size > lg.st_size);
	S->close(mb);
	CU_ASSERT_EQUAL(truncate(path, lg.st_size + 10), 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 4);
	CU_ASSERT_EQUAL(flags_of(mb, 2) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED);
	CU_ASSERT_EQUAL(flags_of(mb, 1) & ~POSTERN_MSG_RECENT, 0);
	snap_of(mb, &before);
	S->close(mb);
	/* Garbage after the last whole change is ignored, and cut by the
	 * next write. */
	CU_ASSERT_EQUAL(truncate(path, lg2.st_size + 100), 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	snap_of(mb, &after);
	CU_ASSERT(snap_same(&before, &after));
	S->close(mb);
	CU_ASSERT_EQUAL(append(st, "INBOX", "5\r\n", 0, NULL, 0, 0), 5);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 5);
	CU_ASSERT_EQUAL(uid_at(mb, 5), 5);
	S->close(mb);
	S->store_close(st);
}

static void
test_log_compact(void)
{
	struct snap before, after;
	struct stat ix, ix2, lg;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	char text[64];
	uint32_t i, uid;
	int compacted = 0;

	make_user(&t, "logcompact");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 1; i <= 40; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nx\r\n", i);
		append(st, "INBOX", text, 0, NULL, 0, 0);
	}
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	/* Each store of all 40 logs 40 records: the log passes its limit
	 * and the index is rewritten whole, the log emptied. */
	stat_of(&t, "postern.index", &ix);
	for (i = 0; i < 30 && !compacted; i++) {
		CU_ASSERT_EQUAL(store(mb, 1, 40, i % 2 ? POSTERN_STORE_REMOVE
		                                       : POSTERN_STORE_ADD,
		                      POSTERN_MSG_SEEN, NULL, 0, 0, NULL), 0);
		stat_of(&t, "postern.index", &ix2);
		compacted = ix2.st_ino != ix.st_ino;
	}
	CU_ASSERT(compacted);
	stat_of(&t, "postern.index.log", &lg);
	CU_ASSERT(lg.st_ino == 0 || lg.st_size < 4096);
	/* Expunges logged after the compaction. */
	CU_ASSERT_EQUAL(store(mb, 5, 9, POSTERN_STORE_ADD, POSTERN_MSG_DELETED,
	                      NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(S->expunge(mb, NULL, 0, pool,
	                           &(struct postern_sync_changes){ 0 },
	                           &(struct postern_storage_err){ 0 }), 0);
	stat_of(&t, "postern.index", &ix);
	CU_ASSERT_EQUAL(ix.st_ino, ix2.st_ino);
	snap_of(mb, &before);
	S->close(mb);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	snap_of(mb, &after);
	CU_ASSERT(snap_same(&before, &after));
	CU_ASSERT_EQUAL(after.n, 35);
	for (i = 0; i < after.n; i++) {
		uid = after.m[i].uid;
		CU_ASSERT(uid < 5 || uid > 9);
		CU_ASSERT_EQUAL(after.m[i].flags, after.m[0].flags);
	}
	S->close(mb);
	S->store_close(st);
}

static void
test_log_many(void)
{
	static const char *const kw[] = { "Work" };
	struct snap live, reopened, rebuilt;
	postern_mailbox_t *mb, *mb2;
	postern_store_t *st;
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	struct tuser t;
	char text[64], path[1024];
	uint32_t i;

	make_user(&t, "logmany");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	for (i = 1; i <= 200; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nbody %u\r\n",
		         i, i);
		CU_ASSERT_EQUAL(append(st, "INBOX", text,
		                       i % 3 == 0 ? POSTERN_MSG_FLAGGED : 0,
		                       i % 5 == 0 ? kw : NULL, i % 5 == 0,
		                       1700000000 + i), i);
	}
	for (i = 0; i < 10; i++)
		deliver(&t, "Subject: delivered\r\n\r\nx\r\n");
	CU_ASSERT_EQUAL(S->sync(mb, 0, pool, &ch, &err), 0);
	snap_of(mb, &live);
	CU_ASSERT_EQUAL(live.n, 210);
	CU_ASSERT_EQUAL(live.uidnext, 211);
	mb2 = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb2);
	snap_of(mb2, &reopened);
	S->close(mb2);
	S->close(mb);
	CU_ASSERT(snap_same(&live, &reopened));
	CU_ASSERT_EQUAL(reopened.m[199].idate, 1700000200);
	CU_ASSERT_EQUAL(reopened.m[14].flags, POSTERN_MSG_FLAGGED);
	CU_ASSERT_EQUAL(reopened.m[14].nkw, 1);
	/* Without the log the index alone is older: the uid list's size
	 * differs, so it is merged, the same UIDs and flags. */
	path_of(path, sizeof(path), t.maildir, "postern.index.log");
	unlink(path);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	snap_of(mb, &rebuilt);
	S->close(mb);
	CU_ASSERT_EQUAL(rebuilt.n, live.n);
	for (i = 0; i < rebuilt.n; i++) {
		CU_ASSERT_EQUAL(rebuilt.m[i].uid, live.m[i].uid);
		CU_ASSERT_EQUAL(rebuilt.m[i].flags, live.m[i].flags);
		CU_ASSERT_EQUAL(rebuilt.m[i].size, live.m[i].size);
		CU_ASSERT_STRING_EQUAL(rebuilt.m[i].guid, live.m[i].guid);
	}
	S->store_close(st);
}

static void
test_dovecot_fixture(void)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	const struct postern_message_info *mi;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;
	char cur[1024], newd[1024];

	/* What Dovecot leaves: flags in names, its uid list with extension
	 * fields, its keyword file. */
	make_user(&t, "dovecot");
	mkdir(t.maildir, 0700);
	path_of(cur, sizeof(cur), t.maildir, "cur");
	path_of(newd, sizeof(newd), t.maildir, "new");
	mkdir(cur, 0700);
	mkdir(newd, 0700);
	free(unit_write_file(cur, "1700000000.M1P10.mx,S=19,W=22:2,FS",
	                     "Subject: one\n\nbody\n"));
	free(unit_write_file(cur, "1700000001.M2P10.mx,S=19:2,Sab",
	                     "Subject: two\n\nbody\n"));
	free(unit_write_file(newd, "1700000002.M3P10.mx",
	                     "Subject: three\n\nbody\n"));
	free(unit_write_file(t.maildir, "dovecot-uidlist",
	                     "3 V1234567 N10 Gabcdef0123456789\n"
	                     "5 :1700000000.M1P10.mx,S=19,W=22\n"
	                     "7 W22 :1700000001.M2P10.mx,S=19\n"));
	free(unit_write_file(t.maildir, "dovecot-keywords",
	                     "0 $Forwarded\n1 Junk\n"));
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.uidvalidity, 1234567);
	CU_ASSERT_EQUAL(ms.uidnext, 11);
	CU_ASSERT_EQUAL_FATAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 5);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 7);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 10);
	CU_ASSERT_EQUAL(flags_of(mb, 5) & ~POSTERN_MSG_RECENT,
	                POSTERN_MSG_FLAGGED | POSTERN_MSG_SEEN);
	mi = S->message(mb, 2);
	CU_ASSERT_EQUAL(mi->flags & ~POSTERN_MSG_RECENT, POSTERN_MSG_SEEN);
	CU_ASSERT_EQUAL(mi->size, 22);
	CU_ASSERT_EQUAL_FATAL(mi->nkeywords, 2);
	CU_ASSERT_EQUAL_FATAL(ms.nkeywords, 2);
	CU_ASSERT_STRING_EQUAL(ms.keywords[mi->keywords[0]], "$Forwarded");
	CU_ASSERT_STRING_EQUAL(ms.keywords[mi->keywords[1]], "Junk");
	CU_ASSERT_EQUAL(S->message(mb, 3)->size, 24);
	S->close(mb);
	/* Reopened through the index: the same. */
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 10);
	CU_ASSERT_EQUAL(flags_of(mb, 5), POSTERN_MSG_FLAGGED |
	                                 POSTERN_MSG_SEEN);
	S->close(mb);
	S->store_close(st);
}

/* ---- cache, exclusive, watch ------------------------------------------ */

static void
test_cache(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	const void *data;
	size_t len;
	struct tuser t;
	char field[16];
	int i, bad;

	make_user(&t, "cache");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "a\r\n", 0, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->cache_get(mb, 1, "mime.v1", pool, &data, &len), 0);
	CU_ASSERT_EQUAL(S->cache_set(mb, 1, "mime.v1", "abc", 3), 0);
	CU_ASSERT_EQUAL(S->cache_set(mb, 1, "mime.v1", "defg", 4), 0);
	CU_ASSERT_EQUAL(S->cache_set(mb, 9, "mime.v1", "x", 1), -1);
	CU_ASSERT_EQUAL_FATAL(S->cache_get(mb, 1, "mime.v1", pool, &data,
	                                   &len), 1);
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_EQUAL(memcmp(data, "defg", 4), 0);
	S->close(mb);
	/* Another view reads it from the file. */
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL_FATAL(S->cache_get(mb, 1, "mime.v1", pool, &data,
	                                   &len), 1);
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_EQUAL(S->cache_get(mb, 1, "other", pool, &data, &len), 0);
	S->close(mb);
	/* Many entries: the table grows and finds each one. */
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	for (i = 0; i < 300; i++) {
		snprintf(field, sizeof(field), "f%d", i);
		CU_ASSERT_EQUAL(S->cache_set(mb, 1, field, field,
		                             strlen(field)), 0);
	}
	for (i = 0, bad = 0; i < 300; i++) {
		snprintf(field, sizeof(field), "f%d", i);
		bad += S->cache_get(mb, 1, field, pool, &data, &len) != 1 ||
		       len != strlen(field) || memcmp(data, field, len) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(S->cache_get(mb, 1, "mime.v1", pool, &data, &len), 1);
	S->close(mb);
	S->store_close(st);
}

/* The cache file is compacted once dead records are most of it; views
 * that read the old file find every live entry in the new one. */
static void
test_cache_compaction(void)
{
	enum { BIG = 300 * 1024 };
	postern_mailbox_t *a, *b;
	postern_store_t *st;
	const void *data;
	size_t len;
	struct tuser t;
	struct stat sb, st2;
	char path[1024], *buf;
	int i, last;

	make_user(&t, "compact");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "1\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "2\r\n", 0, NULL, 0, 0);
	a = open_box(st, "INBOX", 0);
	b = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	buf = malloc(BIG);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memset(buf, 'u', BIG);
	modlog[0] = '\0';
	CU_ASSERT_EQUAL(S->cache_set(a, 2, "big", buf, BIG), 0);
	CU_ASSERT_EQUAL(S->cache_get(b, 2, "big", pool, &data, &len), 1);
	/* b keeps its write descriptor on the file compaction replaces */
	CU_ASSERT_EQUAL(S->cache_set(b, 2, "small", "s1", 2), 0);
	/* New versions for uid 1 until a set finds dead records most of
	 * the file (it looks once the file passed 1 MB, then each time it
	 * grew by half; 600 KB stay live) and compacts before appending. */
	for (i = 0; i < 10 && strstr(modlog, "compacted") == NULL; i++) {
		memset(buf, 'a' + i, BIG);
		CU_ASSERT_EQUAL(S->cache_set(a, 1, "big", buf, BIG), 0);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(modlog, "compacted"));
	last = i - 1;
	path_of(path, sizeof(path), t.maildir, "postern.cache");
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT(sb.st_size < 1024 * 1024);
	CU_ASSERT(sb.st_size >= 3 * BIG);
	for (i = 0; i < 2; i++) {
		postern_mailbox_t *v = i == 0 ? a : b;

		CU_ASSERT_EQUAL_FATAL(S->cache_get(v, 1, "big", pool, &data,
		                                   &len), 1);
		CU_ASSERT_EQUAL(len, BIG);
		CU_ASSERT_EQUAL(((const char *)data)[BIG - 1], 'a' + last);
		CU_ASSERT_EQUAL_FATAL(S->cache_get(v, 2, "big", pool, &data,
		                                   &len), 1);
		CU_ASSERT_EQUAL(((const char *)data)[0], 'u');
	}
	/* ... and writes into the new file, where a finds it */
	CU_ASSERT_EQUAL(S->cache_set(b, 2, "later", "s2", 2), 0);
	CU_ASSERT_EQUAL_FATAL(S->cache_get(a, 2, "later", pool, &data, &len),
	                      1);
	CU_ASSERT(len == 2 && memcmp(data, "s2", 2) == 0);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st2), 0);
	CU_ASSERT_EQUAL(st2.st_ino, sb.st_ino);
	CU_ASSERT(st2.st_size > sb.st_size);
	free(buf);
	S->close(a);
	S->close(b);
	S->store_close(st);
}

static void
test_exclusive(void)
{
	struct postern_storage_err err = { 0 };
	postern_mailbox_t *a, *b = NULL, *c;
	postern_store_t *st;
	struct tuser t;

	make_user(&t, "exclusive");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	a = open_box(st, "INBOX", POSTERN_OPEN_EXCLUSIVE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(S->open(st, "INBOX", POSTERN_OPEN_EXCLUSIVE, &b,
	                        &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_INUSE);
	CU_ASSERT_PTR_NULL(b);
	c = open_box(st, "INBOX", 0); /* others are not blocked */
	CU_ASSERT_PTR_NOT_NULL(c);
	S->close(c);
	S->close(a);
	b = open_box(st, "INBOX", POSTERN_OPEN_EXCLUSIVE);
	CU_ASSERT_PTR_NOT_NULL(b);
	S->close(b);
	S->store_close(st);
}

static int fired;

static void
on_changed(void *arg)
{
	(void)arg;
	fired++;
}

static void
test_watch(void)
{
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct tuser t;

	loop_current = loop_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(loop_current);
	make_user(&t, "watch");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	fired = 0;
	CU_ASSERT_EQUAL(S->watch(mb, on_changed, NULL), 0);
	UNIT_PUMP_UNTIL(loop_current, 0, 50);
	CU_ASSERT_EQUAL(fired, 0);
	deliver(&t, "w\r\n");
	UNIT_PUMP_UNTIL(loop_current, fired > 0, 2000);
	CU_ASSERT(fired > 0);
	CU_ASSERT_EQUAL(S->watch(mb, NULL, NULL), 0);
	fired = 0;
	deliver(&t, "w\r\n");
	UNIT_PUMP_UNTIL(loop_current, 0, 50);
	CU_ASSERT_EQUAL(fired, 0);
	S->close(mb);
	S->store_close(st);
	loop_destroy(loop_current);
	loop_current = NULL;
}

/* Views of one mailbox share its watches (one inotify instance for the
 * process); each is told; one may stop watching from its callback. */
static postern_mailbox_t *leaver;
static int fired_a, fired_b;

static void
on_changed_a(void *arg)
{
	(void)arg;
	fired_a++;
	/* Stops watching from inside the dispatch. */
	S->watch(leaver, NULL, NULL);
}

static void
on_changed_b(void *arg)
{
	(void)arg;
	fired_b++;
}

static void
test_watch_shared(void)
{
	postern_mailbox_t *a, *b, *c;
	postern_store_t *st;
	struct tuser t;

	loop_current = loop_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(loop_current);
	make_user(&t, "watch2");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	a = open_box(st, "INBOX", 0);
	b = open_box(st, "INBOX", 0);
	c = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	leaver = a;
	fired_a = fired_b = 0;
	CU_ASSERT_EQUAL(S->watch(a, on_changed_a, NULL), 0);
	CU_ASSERT_EQUAL(S->watch(b, on_changed_b, NULL), 0);
	CU_ASSERT_EQUAL(S->watch(c, on_changed_b, NULL), 0);
	/* Watching twice is one watch. */
	CU_ASSERT_EQUAL(S->watch(c, on_changed_b, NULL), 0);
	deliver(&t, "w\r\n");
	UNIT_PUMP_UNTIL(loop_current, fired_a > 0 && fired_b >= 2, 2000);
	CU_ASSERT_EQUAL(fired_a, 1);
	CU_ASSERT_EQUAL(fired_b, 2);
	/* a left in its callback: only b and c hear the next one. */
	fired_a = fired_b = 0;
	deliver(&t, "w\r\n");
	UNIT_PUMP_UNTIL(loop_current, fired_b >= 2, 2000);
	CU_ASSERT_EQUAL(fired_a, 0);
	CU_ASSERT_EQUAL(fired_b, 2);
	/* A file dropped into new/ by another program is seen too. */
	fired_b = 0;
	{
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/new/1.dropped.host",
		    t.maildir);
		f = fopen(path, "w");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("Subject: dropped\r\n\r\nx\r\n", f);
		fclose(f);
	}
	UNIT_PUMP_UNTIL(loop_current, fired_b >= 2, 2000);
	CU_ASSERT_EQUAL(fired_b, 2);
	S->watch(b, NULL, NULL);
	S->watch(c, NULL, NULL);
	S->close(a);
	S->close(b);
	S->close(c);
	S->store_close(st);
	loop_destroy(loop_current);
	loop_current = NULL;
}

/* ---- views that keep their state between operations -------------------- */

/* What a fresh read-only view of INBOX shows (from a store of its own,
 * so nothing kept by the caller's handles is used). */
static void
snap_fresh(struct tuser *t, struct snap *sn)
{
	postern_mailbox_t *mb;
	postern_store_t *st;

	st = open_store(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	snap_of(mb, sn);
	S->close(mb);
	S->store_close(st);
}

/* Syncs `mb` and checks it shows what a fresh view shows. */
static int
sync_matches_fresh(struct tuser *t, postern_mailbox_t *mb,
                   struct postern_sync_changes *ch)
{
	struct postern_storage_err err = { 0 };
	struct snap live, fresh;

	CU_ASSERT_EQUAL(S->sync(mb, 0, pool, ch, &err), 0);
	snap_of(mb, &live);
	snap_fresh(t, &fresh);
	return snap_same(&live, &fresh);
}

/* Sets \Deleted on [first, last] and expunges them, from `mb`. */
static int
delete_range(postern_mailbox_t *mb, uint32_t first, uint32_t last)
{
	struct postern_uid_range r = { first, last };
	struct postern_storage_err err = { 0 };
	struct postern_sync_changes ch;

	if (store(mb, first, last, POSTERN_STORE_ADD, POSTERN_MSG_DELETED,
	          NULL, 0, 0, NULL) != 0)
		return -1;
	return S->expunge(mb, &r, 1, pool, &ch, &err);
}

/* Stores until the index is rewritten whole (the log passed its limit),
 * then stores once more, so a new, short log follows the new index.
 * 0 when that happened. */
static int
force_rewrite_index(struct tuser *t, postern_mailbox_t *mb, uint32_t last,
                    const char *index)
{
	struct stat ix, ix2;
	int i, rc = -1;

	stat_of(t, index, &ix);
	for (i = 0; i < 400 && rc < 0; i++) {
		if (store(mb, 1, last, i % 2 ? POSTERN_STORE_REMOVE
		                              : POSTERN_STORE_ADD,
		          POSTERN_MSG_ANSWERED, NULL, 0, 0, NULL) != 0)
			return -1;
		stat_of(t, index, &ix2);
		if (ix2.st_ino != ix.st_ino)
			rc = 0;
	}
	if (rc == 0 && store(mb, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                     NULL, 0, 0, NULL) != 0)
		rc = -1;
	return rc;
}

/* The same for INBOX. */
static int
force_rewrite(struct tuser *t, postern_mailbox_t *mb, uint32_t last)
{
	return force_rewrite_index(t, mb, last, "postern.index");
}

/* What another process does between two operations of the test's view
 * (the child's exit code: 0 done). */
static int
other_process(struct tuser *t, int step)
{
	static const char *const kw[] = { "Work" };
	struct postern_storage_err err;
	struct postern_append a;
	postern_mailbox_t *mb;
	postern_store_t *st;
	uint32_t uid, uidv;
	int rc = 0;

	if (S->store_open(&t->u, &st, &err) < 0)
		return 1;
	if (S->open(st, "INBOX", 0, &mb, &err) < 0)
		return 2;
	switch (step) {
	case 0: /* appends and a delivery */
		a = msg_of("Subject: other 1\r\n\r\nx\r\n");
		rc |= S->append(st, "INBOX", &a, &uid, &uidv, &err);
		a = msg_of("Subject: other 2\r\n\r\nx\r\n");
		rc |= S->append(st, "INBOX", &a, &uid, &uidv, &err);
		a = msg_of("Subject: other 3\r\n\r\nx\r\n");
		rc |= S->deliver(&t->u, NULL, &a, &uid, &err);
		break;
	case 1: /* flags and a keyword */
		rc |= store(mb, 1, 3, POSTERN_STORE_ADD, POSTERN_MSG_FLAGGED,
		            NULL, 0, 0, NULL);
		rc |= store(mb, 4, 4, POSTERN_STORE_ADD, 0, kw, 1, 0, NULL);
		break;
	case 2: /* expunges */
		rc |= delete_range(mb, 5, 6);
		break;
	case 3: /* the index rewritten, a new log after it */
		rc |= force_rewrite(t, mb, 12);
		break;
	}
	S->close(mb);
	S->store_close(st);
	return rc != 0 ? 3 : 0;
}

static void
test_view_other_process(void)
{
	struct postern_sync_changes ch;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct stat ix, ix2;
	struct tuser t;
	char text[64];
	int step, status;
	uint32_t i;
	pid_t pid;

	make_user(&t, "viewother");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 1; i <= 10; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nx\r\n", i);
		append(st, "INBOX", text, 0, NULL, 0, 0);
	}
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	for (step = 0; step < 4; step++) {
		stat_of(&t, "postern.index", &ix);
		pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			alarm(60);
			_exit(other_process(&t, step));
		}
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		stat_of(&t, "postern.index", &ix2);
		/* Only the last step replaces the index; the others are
		 * read from the log's tail. */
		CU_ASSERT_EQUAL(ix2.st_ino != ix.st_ino, step == 3);
		CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
		switch (step) {
		case 0:
			CU_ASSERT(ch.new_messages);
			CU_ASSERT_EQUAL(ch.messages, 13);
			CU_ASSERT_EQUAL(uid_at(mb, 13), 13);
			break;
		case 1:
			CU_ASSERT_EQUAL(ch.nchanged, 4);
			CU_ASSERT(flags_of(mb, 3) & POSTERN_MSG_FLAGGED);
			CU_ASSERT_EQUAL(S->message(mb, 4)->nkeywords, 1);
			break;
		case 2:
			CU_ASSERT_EQUAL(ch.nexpunged, 2);
			CU_ASSERT_EQUAL(ch.messages, 11);
			CU_ASSERT_EQUAL(S->seq_of_uid(mb, 5), 0);
			break;
		case 3:
			CU_ASSERT(ch.nchanged > 0);
			CU_ASSERT(flags_of(mb, 1) & POSTERN_MSG_SEEN);
			break;
		}
		/* The view's own change after the other's, then a fresh
		 * view agrees with it. */
		CU_ASSERT_EQUAL(store(mb, 7, 7, step % 2 ? POSTERN_STORE_REMOVE
		                                         : POSTERN_STORE_ADD,
		                      POSTERN_MSG_DRAFT, NULL, 0, 0, NULL), 0);
		CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	}
	S->close(mb);
	S->store_close(st);
}

/* Another view's rewrite leaves a log shorter than where the view had
 * read to; a log cut (a crash) under where it had read. */
static void
test_view_log_cut(void)
{
	struct postern_sync_changes ch;
	struct stat lg, lg2;
	postern_mailbox_t *mb, *other;
	postern_store_t *st, *st2;
	struct tuser t;
	char text[64], path[1024];
	uint32_t i;

	make_user(&t, "viewcut");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	for (i = 1; i <= 30; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nx\r\n", i);
		append(st, "INBOX", text, 0, NULL, 0, 0);
	}
	mb = open_box(st, "INBOX", 0);
	other = open_box(st2, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	/* The view reads far into a long log. */
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(store(other, 1, 30, i % 2 ? POSTERN_STORE_REMOVE
		                                          : POSTERN_STORE_ADD,
		                      POSTERN_MSG_SEEN, NULL, 0, 0, NULL), 0);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	CU_ASSERT_EQUAL(ch.nchanged, 30);
	stat_of(&t, "postern.index.log", &lg);
	/* The other view rewrites the index: the new log is shorter. */
	CU_ASSERT_EQUAL(force_rewrite(&t, other, 30), 0);
	CU_ASSERT_EQUAL(delete_range(other, 2, 2), 0);
	stat_of(&t, "postern.index.log", &lg2);
	CU_ASSERT(lg2.st_size < lg.st_size);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	CU_ASSERT_EQUAL(ch.nexpunged, 1);
	CU_ASSERT_EQUAL(S->count(mb), 29);
	/* A crash cuts the log inside the change the view read last; the
	 * other view then writes over the cut. */
	CU_ASSERT_EQUAL(store(other, 3, 3, POSTERN_STORE_ADD,
	                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	stat_of(&t, "postern.index.log", &lg);
	path_of(path, sizeof(path), t.maildir, "postern.index.log");
	CU_ASSERT_EQUAL(truncate(path, lg.st_size - 20), 0);
	S->close(other);
	S->store_close(st2);
	st2 = open_store(&t);
	other = open_box(st2, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	CU_ASSERT_EQUAL(store(other, 4, 4, POSTERN_STORE_ADD,
	                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	CU_ASSERT(flags_of(mb, 3) & POSTERN_MSG_FLAGGED);
	CU_ASSERT(flags_of(mb, 4) & POSTERN_MSG_FLAGGED);
	/* Entries rewritten in place, same length: the view notices its
	 * last COMMIT is not there and reads everything again. */
	stat_of(&t, "postern.index.log", &lg);
	CU_ASSERT_EQUAL(truncate(path, 24), 0);
	CU_ASSERT_EQUAL(truncate(path, lg.st_size), 0);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	CU_ASSERT_EQUAL(S->count(mb), 29);
	S->close(other);
	S->close(mb);
	S->store_close(st2);
	S->store_close(st);
}

/* A sync with nothing new reads no more than the index's header: a byte
 * changed inside the index (same size, same file) goes unseen until a
 * fresh open checks the whole file and rebuilds it. */
static void
test_view_reads_tail_only(void)
{
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	postern_mailbox_t *mb;
	postern_store_t *st;
	struct stat ix;
	struct tuser t;
	char path[1024], x = 'X';
	int fd;

	make_user(&t, "viewtail");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "Subject: 1\r\n\r\nx\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "Subject: 2\r\n\r\nx\r\n", 0, NULL, 0, 0);
	/* The appends went to the log: without the index, the open
	 * rebuilds it whole, records and names in it. */
	path_of(path, sizeof(path), t.maildir, "postern.index");
	CU_ASSERT_EQUAL(unlink(path), 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	stat_of(&t, "postern.index", &ix);
	CU_ASSERT(ix.st_size > 200);
	fd = open(path, O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, &x, 1, ix.st_size - 1), 1);
	close(fd);
	modlog[0] = '\0';
	CU_ASSERT_EQUAL(S->sync(mb, 0, pool, &ch, &err), 0);
	CU_ASSERT_PTR_NULL(strstr(modlog, "corrupt"));
	CU_ASSERT_EQUAL(S->count(mb), 2);
	S->close(mb);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL(strstr(modlog, "corrupt"));
	CU_ASSERT_EQUAL(S->count(mb), 2);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 2);
	S->close(mb);
	S->store_close(st);
}

/* A closed view's state is kept for the next open in the process: what
 * another handle did meanwhile shows, and an index damaged in place
 * after the close (same size, new ctime) is read and checked whole. */
static void
test_view_parked_state(void)
{
	struct postern_storage_err err;
	postern_mailbox_t *mb;
	postern_store_t *st, *st2;
	struct stat ix;
	struct tuser t;
	char path[1024], x = 'X';
	int fd;

	make_user(&t, "viewpark");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	append(st, "INBOX", "Subject: 1\r\n\r\nx\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "Subject: 2\r\n\r\nx\r\n", 0, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	/* An index younger than a second is not trusted to show a change
	 * by its ctime: wait, so the close parks the state. */
	sleep(1);
	usleep(100000);
	S->close(mb);
	append(st2, "INBOX", "Subject: 3\r\n\r\nx\r\n", 0, NULL, 0, 0);
	/* Read-only: \Recent stays, so the index is not rewritten and the
	 * state is parked again at the close. */
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 3);
	S->close(mb);
	/* Nothing changed since: the parked records become the view as
	 * they are, \Recent marks redone (only the third is new to a
	 * read-write view). */
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 3), 3);
	CU_ASSERT(!(flags_of(mb, 1) & POSTERN_MSG_RECENT));
	CU_ASSERT(!(flags_of(mb, 2) & POSTERN_MSG_RECENT));
	CU_ASSERT(flags_of(mb, 3) & POSTERN_MSG_RECENT);
	{
		struct postern_mailbox_status ms = { .size = sizeof(ms) };

		S->status(mb, &ms);
		CU_ASSERT_EQUAL(ms.messages, 3);
		CU_ASSERT_EQUAL(ms.recent, 1);
		CU_ASSERT_EQUAL(ms.unseen, 3);
	}
	S->close(mb);
	/* Another handle renames one file (a flag) and expunges another:
	 * the view made from the parked records shows both, and opens the
	 * renamed file by its new name. */
	{
		struct postern_sync_changes ch;
		postern_mailbox_t *other = open_box(st2, "INBOX", 0);

		CU_ASSERT_PTR_NOT_NULL_FATAL(other);
		CU_ASSERT_EQUAL(store(other, 1, 1, POSTERN_STORE_ADD,
		                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
		CU_ASSERT_EQUAL(store(other, 2, 2, POSTERN_STORE_ADD,
		                      POSTERN_MSG_DELETED, NULL, 0, 0, NULL), 0);
		CU_ASSERT_EQUAL(S->expunge(other, NULL, 0, pool, &ch, &err), 0);
		S->close(other);
	}
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	CU_ASSERT_EQUAL(uid_at(mb, 1), 1);
	CU_ASSERT_EQUAL(uid_at(mb, 2), 3);
	CU_ASSERT(flags_of(mb, 1) & POSTERN_MSG_FLAGGED);
	{
		struct postern_msg_size sz;
		postern_msg_t *msg;
		char buf[64];

		CU_ASSERT_EQUAL_FATAL(S->msg_open(mb, 1, &msg, &sz, &err), 0);
		CU_ASSERT(S->msg_read(msg, 0, buf, sizeof(buf), &err) > 0);
		CU_ASSERT_NSTRING_EQUAL(buf, "Subject: 1", 10);
		S->msg_close(msg);
	}
	S->close(mb);
	/* Damage after the close: the next open must not trust its parked
	 * state. */
	path_of(path, sizeof(path), t.maildir, "postern.index");
	stat_of(&t, "postern.index", &ix);
	fd = open(path, O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, &x, 1, ix.st_size - 1), 1);
	close(fd);
	modlog[0] = '\0';
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL(strstr(modlog, "corrupt"));
	CU_ASSERT_EQUAL(S->count(mb), 2);
	S->close(mb);
	S->store_close(st2);
	S->store_close(st);
}

/* Two views (two store handles) take turns at 1000 operations; after
 * each, the view that acted shows what a fresh view shows. */
static void
test_view_alternating(void)
{
	static const char *const kws[] = { "A", "B", "C" };
	struct postern_mailbox_status ms, vs;
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	struct postern_uid_range r;
	postern_mailbox_t *mb[2];
	postern_store_t *st[2];
	uint32_t i, n, op, uid, seed = 12345, mismatches = 0, *su, *du;
	size_t ncp;
	struct tuser t;
	char text[64];
	int v;

	make_user(&t, "alternating");
	for (v = 0; v < 2; v++) {
		st[v] = open_store(&t);
		CU_ASSERT_PTR_NOT_NULL_FATAL(st[v]);
	}
	for (i = 1; i <= 20; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nx\r\n", i);
		append(st[0], "INBOX", text, 0, NULL, 0, 0);
	}
	for (v = 0; v < 2; v++) {
		mb[v] = open_box(st[v], "INBOX", 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(mb[v]);
	}
	for (i = 0; i < 1000; i++) {
		v = i % 2;
		seed = seed * 1103515245u + 12345u;
		n = S->count(mb[v]);
		uid = n > 0 ? uid_at(mb[v], 1 + (seed >> 8) % n) : 0;
		snprintf(text, sizeof(text), "Subject: op %u\r\n\r\nx\r\n", i);
		op = (seed >> 20) % 8;
		if (n >= 60 && (op == 0 || op == 1 || op == 6))
			op = 5; /* keeps the mailbox small */
		switch (op) {
		case 0:
			append(st[v], "INBOX", text, POSTERN_MSG_SEEN, NULL, 0,
			       0);
			break;
		case 1:
			deliver(&t, text);
			break;
		case 2:
		case 3:
			if (uid != 0)
				CU_ASSERT_EQUAL(store(mb[v], uid, uid,
				                      (seed >> 4) % 3, 1u <<
				                      ((seed >> 12) % 5), NULL, 0,
				                      0, NULL), 0);
			break;
		case 4:
			if (uid != 0)
				CU_ASSERT_EQUAL(store(mb[v], uid, uid,
				                      POSTERN_STORE_ADD, 0,
				                      &kws[(seed >> 4) % 3], 1, 0,
				                      NULL), 0);
			break;
		case 5:
			if (uid != 0 && n > 15)
				CU_ASSERT_EQUAL(delete_range(mb[v], uid, uid),
				                0);
			break;
		case 6:
			if (uid != 0) {
				r.first = r.last = uid;
				/* The other view may have expunged it. */
				if (S->copy(mb[v], &r, 1, "INBOX", 0, pool, &su,
				            &du, &ncp, &uid, NULL, &err) < 0)
					CU_ASSERT_EQUAL(err.code,
					                POSTERN_SE_EXPUNGED);
			}
			break;
		default:
			break; /* a sync alone */
		}
		if (!sync_matches_fresh(&t, mb[v], &ch))
			mismatches++;
		/* STATUS from the state the store handle keeps agrees. */
		vs.size = ms.size = sizeof(ms);
		S->status(mb[v], &vs);
		CU_ASSERT_EQUAL(S->status_by_name(st[v], "INBOX", &ms, &err),
		                0);
		if (ms.messages != vs.messages || ms.uidnext != vs.uidnext ||
		    ms.highestmodseq != vs.highestmodseq ||
		    ms.unseen != vs.unseen)
			mismatches++;
		if (mismatches > 0)
			break;
		CU_ASSERT_FATAL(S->count(mb[v]) < 200); /* a snap holds 256 */
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT_EQUAL(i, 1000);
	for (v = 0; v < 2; v++) {
		S->close(mb[v]);
		S->store_close(st[v]);
	}
}

/* A store handle keeps the state of the mailbox it copies or appends
 * into: between its saves another handle appends, expunges and rewrites
 * that mailbox's index, and the UIDs it gives stay new and distinct. */
static void
test_store_kept_state(void)
{
	struct postern_storage_err err = { 0 };
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct postern_uid_range r = { 1, 1 };
	postern_mailbox_t *mb, *arch;
	postern_store_t *st, *st2;
	uint32_t *su, *du, uidv, round, uid, last = 0;
	size_t n;
	struct tuser t;
	char text[64];

	make_user(&t, "keptstate");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	CU_ASSERT_EQUAL_FATAL(S->create(st, "Archive", 0, &err), 0);
	append(st, "INBOX", "Subject: src\r\n\r\nx\r\n", 0, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	arch = open_box(st2, "Archive", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(arch);
	for (round = 0; round < 6; round++) {
		/* This handle: a copy, then an append. */
		CU_ASSERT_EQUAL_FATAL(S->copy(mb, &r, 1, "Archive", 0, pool,
		                              &su, &du, &n, &uidv, NULL, &err),
		                      0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT(du[0] > last);
		last = du[0];
		snprintf(text, sizeof(text), "Subject: a%u\r\n\r\nx\r\n",
		         round);
		uid = append(st, "Archive", text, 0, NULL, 0, 0);
		CU_ASSERT(uid > last);
		last = uid;
		/* The other handle, between them: appends, expunges one,
		 * and every other round rewrites the index. */
		uid = append(st2, "Archive", text, 0, NULL, 0, 0);
		CU_ASSERT(uid > last);
		last = uid;
		CU_ASSERT_EQUAL(S->sync(arch, 0, pool,
		                        &(struct postern_sync_changes){ 0 },
		                        &err), 0);
		CU_ASSERT_EQUAL(delete_range(arch, uid_at(arch, 1),
		                             uid_at(arch, 1)), 0);
		if (round % 2 == 1)
			CU_ASSERT_EQUAL(force_rewrite_index(&t, arch, 1000,
			                                    ".Archive/postern.index"),
			                0);
	}
	CU_ASSERT_EQUAL(S->status_by_name(st, "Archive", &ms, &err), 0);
	CU_ASSERT_EQUAL(ms.messages, 12);
	CU_ASSERT_EQUAL(ms.uidnext, last + 1);
	S->close(arch);
	S->close(mb);
	S->store_close(st2);
	S->store_close(st);
}

/* Stores on all until the index is rewritten whole, nothing after: the
 * view's state then follows an index with no log. */
static int
rewrite_no_log(struct tuser *t, postern_mailbox_t *mb)
{
	struct stat ix, ix2;
	int i;

	stat_of(t, "postern.index", &ix);
	for (i = 0; i < 400; i++) {
		if (store(mb, 1, 1000, i % 2 ? POSTERN_STORE_REMOVE
		                              : POSTERN_STORE_ADD,
		          POSTERN_MSG_ANSWERED, NULL, 0, 0, NULL) != 0)
			return -1;
		stat_of(t, "postern.index", &ix2);
		if (ix2.st_ino != ix.st_ino)
			return 0;
	}
	return -1;
}

/* Both views last wrote the index whole (no log after it): the view
 * whose index was replaced under it reads the new one, though no log
 * tells it so. */
static void
test_view_index_replaced(void)
{
	struct postern_sync_changes ch;
	postern_mailbox_t *mb, *other;
	postern_store_t *st, *st2;
	struct stat lg;
	struct tuser t;
	char text[64];
	uint32_t i;

	make_user(&t, "viewreplaced");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	for (i = 1; i <= 20; i++) {
		snprintf(text, sizeof(text), "Subject: %u\r\n\r\nx\r\n", i);
		append(st, "INBOX", text, 0, NULL, 0, 0);
	}
	mb = open_box(st, "INBOX", 0);
	other = open_box(st2, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	CU_ASSERT_EQUAL(rewrite_no_log(&t, mb), 0);
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	/* The other view's flag changes (modseqs move, names may come
	 * back as they were) end in a rewrite too. */
	CU_ASSERT_EQUAL(store(other, 3, 3, POSTERN_STORE_ADD,
	                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(store(other, 3, 3, POSTERN_STORE_REMOVE,
	                      POSTERN_MSG_FLAGGED, NULL, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(rewrite_no_log(&t, other), 0);
	stat_of(&t, "postern.index.log", &lg);
	CU_ASSERT_EQUAL(lg.st_ino, 0); /* no log */
	CU_ASSERT(sync_matches_fresh(&t, mb, &ch));
	S->close(other);
	S->close(mb);
	S->store_close(st2);
	S->store_close(st);
}

/* ---- status_nowait, counts kept with the records ---------------------- */

/* Sets the mtimes of new/ and cur/ `ago` seconds back, so that a
 * refresh trusts them (a directory changed less than two seconds ago
 * is read again next time). */
static void
backdate(const char *maildir, int ago)
{
	struct timespec ts[2];
	char path[1024];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= ago;
	ts[1] = ts[0];
	path_of(path, sizeof(path), maildir, "new");
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, ts, 0), 0);
	path_of(path, sizeof(path), maildir, "cur");
	CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Renames one file of cur/ without flags to carry \Seen, as another
 * maildir program would. */
static int
mark_one_seen(const char *maildir)
{
	char cur[1024], from[2048], to[2048];
	struct dirent *de;
	size_t len;
	DIR *d;
	int rc = -1;

	path_of(cur, sizeof(cur), maildir, "cur");
	if ((d = opendir(cur)) == NULL)
		return -1;
	while (rc < 0 && (de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 3 || strcmp(de->d_name + len - 3, ":2,") != 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", cur, de->d_name);
		snprintf(to, sizeof(to), "%s/%sS", cur, de->d_name);
		rc = rename(from, to);
	}
	closedir(d);
	return rc;
}

/* status_by_name's figures: messages, unseen, uidnext, recent; -1 on
 * failure. */
static int
status_of(postern_store_t *st, int nowait, uint32_t *v)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct postern_storage_err err;
	int rc;

	rc = nowait ? S->status_nowait(st, "INBOX", &ms)
	            : S->status_by_name(st, "INBOX", &ms, &err);
	v[0] = ms.messages;
	v[1] = ms.unseen;
	v[2] = ms.uidnext;
	v[3] = ms.recent;
	return rc;
}

static void
test_status_nowait(void)
{
	const char *kw[] = { "$Work" };
	postern_store_t *st, *st2;
	postern_mailbox_t *other;
	struct tuser t;
	uint32_t v[4], w[4];
	char dir[1024];

	make_user(&t, "statusnowait");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	CU_ASSERT_FATAL(POSTERN_SIZED_HAS(S, status_nowait));
	append(st2, "INBOX", "Subject: 1\r\n\r\nx\r\n", 0, NULL, 0, 0);
	append(st2, "INBOX", "Subject: 2\r\n\r\nx\r\n", POSTERN_MSG_SEEN,
	       NULL, 0, 0);
	append(st2, "INBOX", "Subject: 3\r\n\r\nx\r\n", 0, NULL, 0, 0);
	backdate(t.maildir, 10);
	/* Never asked: no answer without a job. */
	CU_ASSERT_EQUAL(status_of(st, 1, v), 1);
	CU_ASSERT_EQUAL_FATAL(status_of(st, 0, v), 0);
	CU_ASSERT_EQUAL(v[0], 3);
	CU_ASSERT_EQUAL(v[1], 2);
	CU_ASSERT_EQUAL(v[2], 4);
	/* Nothing changed: the same answer on the spot, again and again. */
	CU_ASSERT_EQUAL(status_of(st, 1, w), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	/* Another handle (another session or process) appends. */
	append(st2, "INBOX", "Subject: 4\r\n\r\nx\r\n", 0, NULL, 0, 0);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	CU_ASSERT_EQUAL(status_of(st, 0, w), 0);
	CU_ASSERT_EQUAL(w[0], 4);
	CU_ASSERT_EQUAL(w[2], 5);
	/* cur/ changed just now: its mtime is not trusted, no answer on
	 * the spot until a refresh sees it settled. */
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	backdate(t.maildir, 9);
	CU_ASSERT_EQUAL(status_of(st, 0, v), 0);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	/* Another program marks a message seen (a rename in cur/). */
	CU_ASSERT_EQUAL_FATAL(mark_one_seen(t.maildir), 0);
	backdate(t.maildir, 8);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	CU_ASSERT_EQUAL(status_of(st, 0, w), 0);
	CU_ASSERT_EQUAL(w[1], v[1] - 1);
	CU_ASSERT_EQUAL(status_of(st, 1, v), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	/* A view of another handle takes \Recent: the index and its log
	 * change, no directory does. */
	CU_ASSERT_EQUAL(v[3], 4);
	other = open_box(st2, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	CU_ASSERT_EQUAL(status_of(st, 0, w), 0);
	CU_ASSERT_EQUAL(w[3], 0);
	CU_ASSERT_EQUAL(status_of(st, 1, v), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	/* Another program delivers into new/. */
	path_of(dir, sizeof(dir), t.maildir, "new");
	free(unit_write_file(dir, "1700000000.P1Q1.other", "5\n"));
	backdate(t.maildir, 7);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	CU_ASSERT_EQUAL(status_of(st, 0, w), 0);
	CU_ASSERT_EQUAL(w[0], 5);
	CU_ASSERT_EQUAL(w[3], 1); /* no read-write view took it yet */
	CU_ASSERT_EQUAL(status_of(st, 1, v), 0);
	CU_ASSERT_EQUAL(memcmp(v, w, sizeof(v)), 0);
	/* The other view sets a keyword (the log and a rename). */
	CU_ASSERT_EQUAL(store(other, 1, 1, POSTERN_STORE_ADD, 0, kw, 1, 0,
	                      NULL), 0);
	backdate(t.maildir, 5);
	CU_ASSERT_EQUAL(status_of(st, 1, w), 1);
	S->close(other);
	S->store_close(st2);
	S->store_close(st);
}

static void
test_view_counts(void)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct postern_sync_changes ch;
	struct postern_storage_err err;
	postern_mailbox_t *mb, *other;
	postern_store_t *st;
	struct tuser t;

	/* The view's counts follow its own STOREs and what a sync brings,
	 * and a view made from parked records shows theirs. */
	make_user(&t, "viewcounts");
	st = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	append(st, "INBOX", "Subject: 1\r\n\r\nx\r\n", 0, NULL, 0, 0);
	append(st, "INBOX", "Subject: 2\r\n\r\nx\r\n", 0, NULL, 0, 0);
	mb = open_box(st, "INBOX", 0);
	other = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.unseen, 2);
	CU_ASSERT_EQUAL(ms.first_unseen_seq, 1);
	CU_ASSERT_EQUAL(store(mb, 1, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                      NULL, 0, 0, NULL), 0);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.unseen, 1);
	CU_ASSERT_EQUAL(ms.first_unseen_seq, 2);
	CU_ASSERT_EQUAL(ms.deleted, 0);
	CU_ASSERT_EQUAL(store(other, 2, 2, POSTERN_STORE_ADD,
	                      POSTERN_MSG_SEEN | POSTERN_MSG_DELETED, NULL, 0,
	                      0, NULL), 0);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.unseen, 1); /* not synced yet */
	CU_ASSERT_EQUAL_FATAL(S->sync(mb, 0, pool, &ch, &err), 0);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.unseen, 0);
	CU_ASSERT_EQUAL(ms.first_unseen_seq, 0);
	CU_ASSERT_EQUAL(ms.deleted, 1);
	S->close(other);
	sleep(1);
	usleep(100000);
	S->close(mb);
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.messages, 2);
	CU_ASSERT_EQUAL(ms.unseen, 0);
	CU_ASSERT_EQUAL(ms.deleted, 1);
	S->close(mb);
	/* A delivery after a read-write view moved new/ empty: the next
	 * read-write open moves the new file too. */
	deliver(&t, "3\r\n");
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.messages, 3);
	CU_ASSERT_EQUAL(ms.unseen, 1);
	CU_ASSERT_EQUAL(ms.first_unseen_seq, 3);
	S->close(mb);
	{
		char dir[1024];

		path_of(dir, sizeof(dir), t.maildir, "new");
		CU_ASSERT_EQUAL(count_files(dir), 0);
	}
	S->store_close(st);
}

/* A view closed at least a second after the index was last written
 * (a younger index is not trusted by its ctime, so not parked). */
static void
close_parked(postern_mailbox_t *mb)
{
	sleep(1);
	usleep(100000);
	S->close(mb);
}

static void
test_open_nowait(void)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	postern_mailbox_t *mb;
	postern_store_t *st, *st2;
	struct tuser t;
	char dir[1024];

	make_user(&t, "opennowait");
	st = open_store(&t);
	st2 = open_store(&t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
	CU_ASSERT_FATAL(POSTERN_SIZED_HAS(S, open_nowait));
	append(st2, "INBOX", "Subject: 1\r\n\r\nx\r\n", 0, NULL, 0, 0);
	append(st2, "INBOX", "Subject: 2\r\n\r\nx\r\n", POSTERN_MSG_SEEN,
	       NULL, 0, 0);
	backdate(t.maildir, 10);
	/* Never open in this process: no view without a job. */
	CU_ASSERT_EQUAL(S->open_nowait(st, "INBOX", 0, &mb), 1);
	CU_ASSERT_PTR_NULL(mb);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	close_parked(mb);
	/* Untouched since: the parked view, read-write and read-only. */
	CU_ASSERT_EQUAL_FATAL(S->open_nowait(st, "INBOX", 0, &mb), 0);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.unseen, 1);
	CU_ASSERT_EQUAL(ms.recent, 0);
	CU_ASSERT_EQUAL(ms.uidnext, 3);
	CU_ASSERT_EQUAL(flags_of(mb, 2), POSTERN_MSG_SEEN);
	S->close(mb);
	CU_ASSERT_EQUAL_FATAL(S->open_nowait(st, "INBOX",
	                                     POSTERN_OPEN_READONLY, &mb), 0);
	CU_ASSERT_EQUAL(S->count(mb), 2);
	S->close(mb);
	CU_ASSERT_EQUAL(S->open_nowait(st, "INBOX", POSTERN_OPEN_EXCLUSIVE,
	                               &mb), 1);
	/* Another handle appends: the log moved. */
	append(st2, "INBOX", "Subject: 3\r\n\r\nx\r\n", 0, NULL, 0, 0);
	backdate(t.maildir, 9);
	CU_ASSERT_EQUAL(S->open_nowait(st, "INBOX", 0, &mb), 1);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	close_parked(mb);
	CU_ASSERT_EQUAL_FATAL(S->open_nowait(st, "INBOX", 0, &mb), 0);
	CU_ASSERT_EQUAL(S->count(mb), 3);
	S->close(mb);
	/* Another program delivers into new/; an EXAMINE sees it and
	 * leaves it there, \Recent: a read-write open has work to do, a
	 * read-only one does not. */
	path_of(dir, sizeof(dir), t.maildir, "new");
	free(unit_write_file(dir, "1700000000.P1Q1.other", "4\n"));
	backdate(t.maildir, 8);
	CU_ASSERT_EQUAL(S->open_nowait(st, "INBOX", POSTERN_OPEN_READONLY,
	                               &mb), 1);
	mb = open_box(st, "INBOX", POSTERN_OPEN_READONLY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(S->count(mb), 4);
	close_parked(mb);
	CU_ASSERT_EQUAL(S->open_nowait(st, "INBOX", 0, &mb), 1);
	CU_ASSERT_EQUAL_FATAL(S->open_nowait(st, "INBOX",
	                                     POSTERN_OPEN_READONLY, &mb), 0);
	CU_ASSERT_EQUAL(S->count(mb), 4);
	CU_ASSERT(flags_of(mb, 4) & POSTERN_MSG_RECENT);
	S->status(mb, &ms);
	CU_ASSERT_EQUAL(ms.recent, 1);
	S->close(mb);
	mb = open_box(st, "INBOX", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT(flags_of(mb, 4) & POSTERN_MSG_RECENT);
	S->close(mb);
	CU_ASSERT_EQUAL(count_files(dir), 0);
	S->store_close(st2);
	S->store_close(st);
}

/* URLAUTH mailbox access keys (storage 1.7, maildir_urlauth.c). */
static void
test_access_keys(void)
{
	unsigned char k1[POSTERN_ACCESS_KEY_LEN], k2[POSTERN_ACCESS_KEY_LEN],
		k3[POSTERN_ACCESS_KEY_LEN], zero[POSTERN_ACCESS_KEY_LEN] = { 0 };
	struct postern_storage_err err = { 0 };
	struct postern_storage_err err2 = { 0 };
	char path[700];
	struct stat sb;
	struct tuser t;
	postern_store_t *st, *st2;

	CU_ASSERT_FATAL(POSTERN_SIZED_HAS(S, access_key) &&
	                S->access_key != NULL);
	make_user(&t, "keys");
	st = open_store(&t);
	CU_ASSERT_EQUAL(S->create(st, "Box", 0, &err), 0);
	/* none until made; made once, the same after */
	CU_ASSERT_EQUAL(S->access_key(st, "INBOX", POSTERN_ACCESS_KEY_GET, k1,
	                              &err), 1);
	CU_ASSERT_EQUAL(S->access_key(st, "INBOX",
	                              POSTERN_ACCESS_KEY_CREATE, k1, &err), 0);
	CU_ASSERT(memcmp(k1, zero, sizeof(k1)) != 0);
	CU_ASSERT_EQUAL(S->access_key(st, "inbox", POSTERN_ACCESS_KEY_GET, k2,
	                              &err), 0);
	CU_ASSERT_EQUAL(memcmp(k1, k2, sizeof(k1)), 0);
	CU_ASSERT_EQUAL(S->access_key(st, "Box", POSTERN_ACCESS_KEY_CREATE,
	                              k3, &err), 0);
	CU_ASSERT(memcmp(k1, k3, sizeof(k1)) != 0);
	/* another handle (another process) reads the file: 0600 */
	snprintf(path, sizeof(path), "%s/postern-urlauth-keys", t.maildir);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	st2 = open_store(&t);
	CU_ASSERT_EQUAL(S->access_key(st2, "Box", POSTERN_ACCESS_KEY_GET, k2,
	                              &err2), 0);
	CU_ASSERT_EQUAL(memcmp(k2, k3, sizeof(k2)), 0);
	/* no such mailbox, a bad name */
	CU_ASSERT_EQUAL(S->access_key(st, "Nosuch",
	                              POSTERN_ACCESS_KEY_CREATE, k2, &err), -1);
	CU_ASSERT_EQUAL(err.code, POSTERN_SE_NONEXISTENT);
	CU_ASSERT_EQUAL(S->access_key(st, "a\nb", POSTERN_ACCESS_KEY_CREATE,
	                              k2, &err), -1);
	/* one mailbox's reset leaves the other's */
	CU_ASSERT_EQUAL(S->access_key(st, "INBOX", POSTERN_ACCESS_KEY_RESET,
	                              NULL, &err), 0);
	CU_ASSERT_EQUAL(S->access_key(st, "INBOX", POSTERN_ACCESS_KEY_GET, k2,
	                              &err), 1);
	CU_ASSERT_EQUAL(S->access_key(st, "Box", POSTERN_ACCESS_KEY_GET, k2,
	                              &err), 0);
	CU_ASSERT_EQUAL(S->access_key(st, "INBOX",
	                              POSTERN_ACCESS_KEY_CREATE, k2, &err), 0);
	CU_ASSERT(memcmp(k1, k2, sizeof(k1)) != 0);
	/* deleted and created again: another UIDVALIDITY, no key */
	CU_ASSERT_EQUAL(S->remove(st, "Box", &err), 0);
	CU_ASSERT_EQUAL(S->access_key(st, "Box", POSTERN_ACCESS_KEY_GET, k2,
	                              &err), -1);
	CU_ASSERT_EQUAL(S->create(st, "Box", 0, &err), 0);
	CU_ASSERT_EQUAL(S->access_key(st, "Box", POSTERN_ACCESS_KEY_GET, k2,
	                              &err), 1);
	/* every key of the user */
	CU_ASSERT_EQUAL(S->access_key(st, NULL, POSTERN_ACCESS_KEY_RESET,
	                              NULL, &err), 0);
	CU_ASSERT_EQUAL(S->access_key(st2, "INBOX", POSTERN_ACCESS_KEY_GET,
	                              k2, &err2), 1);
	CU_ASSERT_EQUAL(S->access_key(st, NULL, POSTERN_ACCESS_KEY_GET, k2,
	                              &err), -1);
	S->store_close(st2);
	S->store_close(st);
}

static CU_TestInfo maildir_tests[] = {
	{ "deliver, open, message info", test_deliver_open },
	{ "deliver a head and content from a spool offset",
	  test_deliver_head },
	{ "group commit of concurrent deliveries", test_group_commit },
	{ "location from the user's mail field", test_location },
	{ "UIDs stable across reopen and index loss", test_uid_stability },
	{ "append with flags, keywords, date", test_append },
	{ "store: set, add, remove, keywords, modseq", test_store },
	{ "expunge: all deleted, and by UID", test_expunge },
	{ "sync between views, expunges held back", test_sync },
	{ "changes by other programs", test_external_changes },
	{ "copy and move with UID mapping", test_copy_move },
	{ "list, create, remove, rename, subscribe", test_list },
	{ "LF files read as CRLF", test_read_lf },
	{ "big LF files read as CRLF in pieces of any size",
	  test_read_lf_big },
	{ "msg_source: a CRLF file, an LF file, a small message",
	  test_msg_source },
	{ "reading a file renamed by another view", test_read_renamed },
	{ "two processes appending and flagging", test_two_processes },
	{ "crash leftovers: tmp, short index, torn list",
	  test_crash_leftovers },
	{ "a uid list at the last UID: refused, UIDs from 1",
	  test_uid_list_at_the_last_uid },
	{ "change log: torn entries after a crash", test_log_torn },
	{ "change log: compaction keeps records", test_log_compact },
	{ "change log: many appends, reopen", test_log_many },
	{ "a Maildir made by Dovecot", test_dovecot_fixture },
	{ "cache_get and cache_set", test_cache },
	{ "cache compaction", test_cache_compaction },
	{ "exclusive views", test_exclusive },
	{ "watch", test_watch },
	{ "views of one mailbox share its watch", test_watch_shared },
	{ "view: another process's changes between operations",
	  test_view_other_process },
	{ "view: the log shortened by a rewrite, cut by a crash",
	  test_view_log_cut },
	{ "view: a sync with nothing new reads only the log's tail",
	  test_view_reads_tail_only },
	{ "view: a closed view's state kept for the next open",
	  test_view_parked_state },
	{ "view: two views, 1000 operations, each checked",
	  test_view_alternating },
	{ "store handle: saves between another's changes",
	  test_store_kept_state },
	{ "view: the index replaced, no log after it",
	  test_view_index_replaced },
	{ "status_nowait: only while nothing changed", test_status_nowait },
	{ "view counts follow stores, syncs and parking",
	  test_view_counts },
	{ "open_nowait: only an untouched parked view", test_open_nowait },
	{ "URLAUTH access keys: made, kept, reset, per incarnation",
	  test_access_keys },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "storage_maildir", suite_init, suite_clean, NULL, NULL,
	  maildir_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return unit_run(suites);
}
