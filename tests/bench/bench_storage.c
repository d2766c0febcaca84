/*
 * bench_storage.c - storage_maildir on a large INBOX: append N messages,
 * open cold and warm, list flags, set \Flagged on all, rebuild a lost
 * index; prints each time and the size of what the store keeps beside
 * the messages.  A benchmark: it prints figures and fails only when an
 * operation fails, never because something was slow.
 *
 * The module is loaded through the core loader with a configuration, as
 * posternd and the unit tests load it, and driven through its published
 * table from the main thread (the one thread stands for the job thread
 * an IMAP session would use).
 *
 *	bench_storage [-p all|append|read] [-f K] [-m moduledir] maildir N
 *
 * "-p append" only appends and "-p read" does the rest on a Maildir
 * appended before, so tests/bench/storage.sh can copy the Maildir for
 * Dovecot between the two, before postern sets any flag.
 *
 * Each append reads and rewrites the whole index, so appending 100,000
 * messages one by one costs time quadratic in N (about 16 minutes here).
 * "-f K" appends only the last K messages through the module; the first
 * N - K are written straight into cur/ (as a migration or a copied
 * Maildir brings them, untimed) and indexed by a first, timed, open.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <postern/auth.h>
#include <postern/storage.h>

#include "conf.h"
#include "hook.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "pool.h"
#include "service.h"

#ifndef BENCH_MODULE_DIR
#error "BENCH_MODULE_DIR must name the directory of storage_maildir.so"
#endif

#define BOX "INBOX"

static const struct postern_storage *S;
static struct postern_user user;
static const char *maildir;
static int dropped_by_proc; /* 1: /proc/sys/vm/drop_caches works */

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: bench_storage [-p all|append|read] [-f K] "
	                "[-m moduledir] maildir N\n");
	exit(2);
}

static void __attribute__((noreturn))
fail(const char *what, const struct postern_storage_err *err)
{
	fprintf(stderr, "bench_storage: %s: %s (code %d)\n", what,
	        err != NULL ? err->text : "", err != NULL ? (int)err->code : 0);
	exit(1);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- messages ----------------------------------------------------------
 * Deterministic (a fixed seed), so two runs store the same octets, and
 * varied the way an INBOX is: several Received lines, replies with
 * In-Reply-To, mailing lists, 2-4 KiB each.  CRLF, as IMAP APPEND and
 * SMTP DATA hand them over. */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

static const char *const names[] = {
	"Alice Martin", "Bob Nguyen", "Carla Rossi", "Dieter Vogel",
	"Emma Dubois", "Farid Haddad", "Grace O'Neill", "Hiroshi Tanaka",
	"Ingrid Larsen", "Jorge Alvarez", "Kasia Nowak", "Liam Walsh",
};
static const char *const domains[] = {
	"example.org", "example.com", "mail.example.net", "lists.example.org",
	"corp.example", "university.example.edu",
};
static const char *const words[] = {
	"the", "meeting", "report", "quarterly", "please", "review",
	"attached", "budget", "deadline", "server", "migration", "update",
	"thanks", "regards", "schedule", "project", "invoice", "release",
	"notes", "draft", "question", "about", "tomorrow", "and", "for",
	"with", "we", "should", "discuss", "proposal", "results", "team",
};
static const char *const mailers[] = {
	"Mozilla Thunderbird 115.5", "Apple Mail (2.3731)",
	"Microsoft Outlook 16.0", "Mutt/2.2.9", "Roundcube Webmail/1.6.5",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define WORD() words[rnd(NELEM(words))]

static size_t
add(char *buf, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t
add(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

static void
login_of(char *out, size_t len, const char *name)
{
	size_t i, n = 0;

	for (i = 0; name[i] != '\0' && n + 1 < len; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			out[n++] = (char)(name[i] - 'A' + 'a');
		else if (name[i] >= 'a' && name[i] <= 'z')
			out[n++] = name[i];
		else if (name[i] == ' ')
			out[n++] = '.';
	out[n] = '\0';
}

/* Message number `i` into buf; returns its length. */
static size_t
make_message(char *buf, size_t len, uint32_t i, int64_t date)
{
	static const char *const wday[] = { "Thu", "Fri", "Sat", "Sun",
	                                    "Mon", "Tue", "Wed" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	                                   "Jun", "Jul", "Aug", "Sep", "Oct",
	                                   "Nov", "Dec" };
	const char *from = names[rnd(NELEM(names))];
	const char *fdom = domains[rnd(NELEM(domains))];
	char flogin[64], datestr[64];
	size_t off = 0, target = 2048 + rnd(2048), col;
	struct tm tm;
	time_t t = (time_t)date;
	uint32_t hops, h;

	gmtime_r(&t, &tm);
	snprintf(datestr, sizeof(datestr), "%s, %d %s %d %02d:%02d:%02d +0000",
	         wday[(date / 86400) % 7], tm.tm_mday, mon[tm.tm_mon],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	login_of(flogin, sizeof(flogin), from);
	off = add(buf, len, off, "Return-Path: <%s@%s>\r\n", flogin, fdom);
	hops = 1 + rnd(3);
	for (h = 0; h < hops; h++)
		off = add(buf, len, off,
		          "Received: from mx%u.%s (mx%u.%s [192.0.2.%u])\r\n"
		          "\tby mail.example.org (Postfix) with ESMTPS id "
		          "%08X%04X\r\n\tfor <me@example.org>; %s\r\n",
		          h + 1, fdom, h + 1, fdom, 1 + rnd(250), rnd(1u << 31),
		          rnd(65536), datestr);
	off = add(buf, len, off, "Date: %s\r\n", datestr);
	off = add(buf, len, off, "From: %s <%s@%s>\r\n", from, flogin, fdom);
	off = add(buf, len, off, "To: Me <me@example.org>\r\n");
	if (rnd(4) == 0)
		off = add(buf, len, off, "Cc: %s <team@%s>\r\n",
		          names[rnd(NELEM(names))], fdom);
	off = add(buf, len, off, "Subject: %s%s %s %s %u\r\n",
	          rnd(3) == 0 ? "Re: " : "", WORD(), WORD(), WORD(), i);
	off = add(buf, len, off, "Message-ID: <%u.%08x@%s>\r\n", i,
	          rnd(1u << 31), fdom);
	if (rnd(3) == 0)
		off = add(buf, len, off,
		          "In-Reply-To: <%u.%08x@example.org>\r\n", rnd(i + 1),
		          rnd(1u << 31));
	if (rnd(5) == 0)
		off = add(buf, len, off, "List-Id: %s <%s.%s>\r\n"
		          "List-Unsubscribe: <mailto:leave@%s>\r\n", WORD(),
		          WORD(), fdom, fdom);
	if (rnd(2) == 0)
		off = add(buf, len, off, "User-Agent: %s\r\n",
		          mailers[rnd(NELEM(mailers))]);
	off = add(buf, len, off, "MIME-Version: 1.0\r\n"
	          "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
	          "Content-Transfer-Encoding: 8bit\r\n\r\n");
	col = 0;
	while (off + 16 < target && off + 16 < len) {
		off = add(buf, len, off, "%s", WORD());
		if ((col += 8) >= 64 || rnd(40) == 0) {
			off = add(buf, len, off, rnd(8) == 0 ? ".\r\n\r\n"
			                                    : "\r\n");
			col = 0;
		} else
			off = add(buf, len, off, " ");
	}
	return add(buf, len, off, "\r\n-- \r\n%s\r\n", from);
}

/* ---- the store's files ---------------------------------------------- */

static long long
file_size(const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", maildir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static void
print_index_size(const char *when)
{
	long long idx = file_size("postern.index");
	long long cache = file_size("postern.cache");
	long long ul = file_size("dovecot-uidlist");
	long long kw = file_size("dovecot-keywords");

	printf("postern index %s: %lld bytes (postern.index %lld, "
	       "postern.cache %lld, dovecot-uidlist %lld, dovecot-keywords "
	       "%lld)\n", when, idx + cache + ul + kw, idx, cache, ul, kw);
}

/*
 * Makes the next open read from the disk.  As root the kernel drops its
 * clean page, dentry and inode caches (after sync, so everything is
 * clean); otherwise only the index files' pages can be dropped
 * (posix_fadvise does nothing to dirty pages, hence the fdatasync), and
 * the directories stay cached.
 */
static void
drop_caches(void)
{
	static const char *const files[] = { "postern.index", "postern.cache",
	                                     "dovecot-uidlist",
	                                     "dovecot-keywords" };
	char path[PATH_MAX];
	size_t i;
	int fd;

	if (geteuid() == 0) {
		sync();
		if ((fd = open("/proc/sys/vm/drop_caches", O_WRONLY)) >= 0) {
			dropped_by_proc = write(fd, "3\n", 2) == 2;
			close(fd);
			if (dropped_by_proc)
				return;
		}
	}
	for (i = 0; i < NELEM(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, files[i]);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

/*
 * The maildir module trusts a directory's mtime only once it is two
 * seconds old (changes within one timestamp); a mailbox opened just
 * after a change is read again whatever its index says.  Wait that out
 * so an open measures the index, as it would on a mailbox at rest.
 */
static void
settle(void)
{
	char path[PATH_MAX];
	struct stat sb;
	const char *sub[] = { "cur", "new" };
	size_t i;

	for (i = 0; i < NELEM(sub); i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, sub[i]);
		while (stat(path, &sb) == 0 && time(NULL) - sb.st_mtime < 3)
			sleep(1);
	}
}

/* ---- the operations ------------------------------------------------- */

static void bench_open(const char *, uint32_t, int);

static postern_store_t *
store_open(void)
{
	struct postern_storage_err err = { 0 };
	postern_store_t *st;

	if (S->store_open(&user, &st, &err) < 0)
		fail("store_open", &err);
	return st;
}

static postern_mailbox_t *
box_open(postern_store_t *st, unsigned mode)
{
	struct postern_storage_err err = { 0 };
	postern_mailbox_t *mb;

	if (S->open(st, BOX, mode, &mb, &err) < 0)
		fail("open", &err);
	return mb;
}

/* The flags a message of a year's INBOX has: most read, some answered,
 * none flagged (the flag benchmark sets \Flagged on every message). */
static uint32_t
initial_flags(void)
{
	return (rnd(10) < 7 ? POSTERN_MSG_SEEN : 0) |
	       (rnd(10) == 0 ? POSTERN_MSG_ANSWERED : 0);
}

/*
 * Writes messages 1..n as files in cur/, named as the module names what
 * it appends (so sizes come from S= and W=), the internal date as the
 * mtime; no fsync: this is setup, synced before anything is timed.
 */
static void
fill(uint32_t n, int64_t *date, unsigned long long *octets)
{
	static char buf[8192];
	struct timespec ts[2] = { { 0 }, { 0 } };
	char dir[PATH_MAX], path[PATH_MAX + 128], fl[8];
	uint32_t i, f;
	size_t len, k;
	int fd;

	snprintf(dir, sizeof(dir), "%s/cur", maildir);
	for (i = 0; i < n; i++) {
		*date += 1 + rnd(2 * 365 * 86400 / (n + 1));
		len = make_message(buf, sizeof(buf), i + 1, *date);
		f = initial_flags();
		k = 0;
		if (f & POSTERN_MSG_ANSWERED)
			fl[k++] = 'R';
		if (f & POSTERN_MSG_SEEN)
			fl[k++] = 'S';
		fl[k] = '\0';
		snprintf(path, sizeof(path), "%s/%lld.M%uP%ldQ%u.bench,S=%zu,"
		         "W=%zu:2,%s", dir, (long long)*date, i, (long)getpid(),
		         i, len, len, fl);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
		    write(fd, buf, len) != (ssize_t)len) {
			perror(path);
			exit(1);
		}
		ts[0].tv_sec = ts[1].tv_sec = *date;
		futimens(fd, ts);
		close(fd);
		*octets += len;
	}
}

static void
bench_append(uint32_t n, uint32_t k)
{
	static char buf[8192];
	struct postern_storage_err err = { 0 };
	struct postern_append a = { .size = sizeof(a), .fd = -1 };
	postern_store_t *st;
	uint32_t i, uid, uidv, sample = k < 1000 ? k : 1000, step;
	int64_t date = (int64_t)time(NULL) - 365 * 86400;
	double t0, t, first = 0, last0 = 0;
	unsigned long long octets = 0;

	st = store_open(); /* creates the Maildir */
	S->store_close(st);
	if (k < n) {
		fill(n - k, &date, &octets);
		bench_open("index build (files written directly, cold)", n - k,
		           1);
	}
	step = k / 10 > 0 ? k / 10 : 1;
	t0 = now_ms();
	st = store_open();
	for (i = n - k; i < n; i++) {
		/* A year of mail, oldest first, as a migration appends it. */
		date += 1 + rnd(2 * 365 * 86400 / (n + 1));
		a.data = buf;
		a.length = make_message(buf, sizeof(buf), i + 1, date);
		a.flags = initial_flags();
		a.internal_date = date;
		octets += a.length;
		if (n - i == sample)
			last0 = now_ms();
		if (S->append(st, BOX, &a, &uid, &uidv, &err) < 0)
			fail("append", &err);
		if (i + 1 - (n - k) == sample)
			first = now_ms() - t0;
		/* Progress, so a long run shows how the rate moves as the
		 * mailbox grows. */
		if ((i + 1 - (n - k)) % step == 0)
			fprintf(stderr, "  appended %u: %.0f ms so far\n",
			        i + 1, now_ms() - t0);
	}
	S->store_close(st);
	t = now_ms() - t0;
	printf("postern append %u: %.0f ms (%.0f msg/s; append, durable, "
	       "one call per message, into a mailbox of %u; %.1f KiB "
	       "average)\n", k, t, k * 1000.0 / t, n - k,
	       octets / 1024.0 / n);
	printf("postern append first %u: %.0f ms (%.2f ms/msg, into a "
	       "mailbox of %u)\n", sample, first, first / sample, n - k);
	t = now_ms() - last0;
	printf("postern append last %u: %.0f ms (%.2f ms/msg, into a "
	       "mailbox of %u)\n", sample, t, t / sample, n - sample);
	print_index_size("after append");
}

/* Open, status, close (SELECT then logout); returns the message count. */
static uint32_t
open_status(double *ms)
{
	struct postern_mailbox_status ms_ = { .size = sizeof(ms_) };
	postern_mailbox_t *mb;
	postern_store_t *st;
	double t0 = now_ms();

	st = store_open();
	mb = box_open(st, 0);
	S->status(mb, &ms_);
	S->close(mb);
	S->store_close(st);
	*ms = now_ms() - t0;
	return ms_.messages;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A cold open is measured once (each one warms the cache); a warm one
 * five times, and the median printed, as warm times are small and
 * noisy. */
static void
bench_open(const char *what, uint32_t n, int cold)
{
	double t[5];
	uint32_t got;
	int i, runs = cold ? 1 : 5;

	settle();
	if (cold)
		drop_caches();
	for (i = 0; i < runs; i++)
		if ((got = open_status(&t[i])) != n) {
			fprintf(stderr, "bench_storage: %s: %u messages, not "
			        "%u\n", what, got, n);
			exit(1);
		}
	qsort(t, runs, sizeof(t[0]), cmp_double);
	printf("postern %s: %.1f ms (%u messages%s)\n", what, t[runs / 2], n,
	       cold ? "" : "; median of 5");
}

static void
bench_list_flags(uint32_t n)
{
	const struct postern_message_info *mi;
	postern_mailbox_t *mb;
	postern_store_t *st;
	uint32_t seq, count, seen = 0, answered = 0;
	double t0, t1, t2;

	t0 = now_ms();
	st = store_open();
	mb = box_open(st, POSTERN_OPEN_READONLY);
	t1 = now_ms();
	count = S->count(mb);
	for (seq = 1; seq <= count; seq++) {
		if ((mi = S->message(mb, seq)) == NULL)
			fail("message", NULL);
		seen += (mi->flags & POSTERN_MSG_SEEN) != 0;
		answered += (mi->flags & POSTERN_MSG_ANSWERED) != 0;
	}
	t2 = now_ms();
	S->close(mb);
	S->store_close(st);
	if (count != n)
		fail("list flags: wrong count", NULL);
	printf("postern list flags: %.1f ms (open read-only, %u messages, "
	       "close; the loop over message() alone %.2f ms; %u seen, %u "
	       "answered)\n", now_ms() - t0, count, t2 - t1, seen, answered);
}

static void
bench_flag_all(uint32_t n)
{
	struct postern_storage_err err = { 0 };
	struct postern_uid_range r;
	postern_mailbox_t *mb;
	postern_store_t *st;
	postern_pool_t *pool = pool_create(4096);
	uint32_t *failed, seq, flagged = 0, want;
	size_t nfailed = 0;
	double t0, t1, t2;
	int add;

	t0 = now_ms();
	st = store_open();
	mb = box_open(st, 0);
	r.first = S->message(mb, 1)->uid;
	r.last = S->message(mb, S->count(mb))->uid;
	/* Flagged by an earlier run on this Maildir: unflag them all. */
	add = !(S->message(mb, 1)->flags & POSTERN_MSG_FLAGGED);
	want = add ? n : 0;
	t1 = now_ms();
	if (S->store(mb, &r, 1, add ? POSTERN_STORE_ADD : POSTERN_STORE_REMOVE,
	             POSTERN_MSG_FLAGGED, NULL, 0, 0, pool, &failed, &nfailed,
	             &err) < 0)
		fail("store", &err);
	t2 = now_ms();
	S->close(mb);
	S->store_close(st);
	t0 = now_ms() - t0;
	/* Checked from a fresh view, outside the timing. */
	st = store_open();
	mb = box_open(st, POSTERN_OPEN_READONLY);
	for (seq = 1; seq <= S->count(mb); seq++)
		flagged += (S->message(mb, seq)->flags &
		            POSTERN_MSG_FLAGGED) != 0;
	S->close(mb);
	S->store_close(st);
	pool_destroy(pool);
	if (flagged != want || nfailed != 0)
		fail("store: not every message (un)flagged", NULL);
	printf("postern set \\Flagged on all: %.0f ms (open, store %sFLAGS "
	       "1:*, close; the store alone %.0f ms; %u flagged)\n", t0,
	       add ? "+" : "-", t2 - t1, flagged);
}

static void
bench_rebuild(uint32_t n)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/postern.index", maildir);
	if (unlink(path) < 0 && errno != ENOENT) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/postern.cache", maildir);
	unlink(path);
	bench_open("index build (no postern.index, cold)", n, 1);
	print_index_size("after rebuild");
}

static void
sync_once(postern_mailbox_t *mb, struct postern_sync_changes *ch)
{
	struct postern_storage_err err = { 0 };
	postern_pool_t *pool = pool_create(4096);

	if (S->sync(mb, 0, pool, ch, &err) < 0)
		fail("sync", &err);
	pool_destroy(pool); /* ch's arrays go: callers use the counts */
}

/*
 * What an IMAP session pays between commands, with its view open: a
 * sync with nothing new (after most commands; cur/ unchanged for two
 * seconds, so its mtime is trusted), a STORE of one flag and the sync
 * after it (the rename moves cur/'s mtime: that sync reads cur/ again,
 * as Dovecot does), and a sync that finds a message another session
 * appended (the append not timed).  Medians of SESSION_RUNS.
 */
#define SESSION_RUNS 21
static void
bench_session(uint32_t n)
{
	struct postern_storage_err err = { 0 };
	struct postern_append a = { .size = sizeof(a), .fd = -1 };
	struct postern_sync_changes ch;
	struct postern_uid_range r;
	double idle[SESSION_RUNS], store[SESSION_RUNS], grew[SESSION_RUNS];
	static char buf[8192];
	postern_pool_t *pool;
	postern_mailbox_t *mb;
	postern_store_t *st, *st2;
	uint32_t *failed, uid, uidv, i;
	size_t nfailed;
	double t0;

	st = store_open();
	st2 = store_open();
	mb = box_open(st, 0);
	settle();
	sync_once(mb, &ch); /* records the now trusted mtimes */
	for (i = 0; i < SESSION_RUNS; i++) {
		t0 = now_ms();
		sync_once(mb, &ch);
		idle[i] = now_ms() - t0;
		if (ch.nexpunged != 0 || ch.nchanged != 0 || ch.new_messages)
			fail("sync with nothing new reported changes", NULL);
	}
	r.first = r.last = S->message(mb, 1 + rnd(S->count(mb)))->uid;
	for (i = 0; i < SESSION_RUNS; i++) {
		pool = pool_create(4096);
		t0 = now_ms();
		if (S->store(mb, &r, 1, i % 2 ? POSTERN_STORE_REMOVE :
		             POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
		             pool, &failed, &nfailed, &err) < 0)
			fail("store", &err);
		sync_once(mb, &ch);
		store[i] = now_ms() - t0;
		pool_destroy(pool);
	}
	for (i = 0; i < SESSION_RUNS; i++) {
		a.data = buf;
		a.length = make_message(buf, sizeof(buf), n + i + 1,
		                        (int64_t)time(NULL));
		if (S->append(st2, BOX, &a, &uid, &uidv, &err) < 0)
			fail("append", &err);
		t0 = now_ms();
		sync_once(mb, &ch);
		grew[i] = now_ms() - t0;
		if (ch.messages != n + i + 1 || !ch.new_messages)
			fail("sync did not see the appended message", NULL);
	}
	/* Leaves the Maildir as it found it (n messages), so the read
	 * phase can run again on it, with another build of the module. */
	r.first = S->message(mb, n + 1)->uid;
	r.last = S->message(mb, n + SESSION_RUNS)->uid;
	pool = pool_create(4096);
	if (S->store(mb, &r, 1, POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL,
	             0, 0, pool, &failed, &nfailed, &err) < 0 ||
	    S->expunge(mb, &r, 1, pool, &ch, &err) < 0 || S->count(mb) != n)
		fail("expunge the appended messages", &err);
	pool_destroy(pool);
	S->close(mb);
	S->store_close(st);
	S->store_close(st2);
	qsort(idle, SESSION_RUNS, sizeof(idle[0]), cmp_double);
	qsort(store, SESSION_RUNS, sizeof(store[0]), cmp_double);
	qsort(grew, SESSION_RUNS, sizeof(grew[0]), cmp_double);
	printf("postern sync idle: %.2f ms (open view, nothing new; median "
	       "of %d)\n", idle[SESSION_RUNS / 2], SESSION_RUNS);
	printf("postern store one: %.2f ms (open view, +/-FLAGS on one "
	       "message, then sync; median of %d)\n",
	       store[SESSION_RUNS / 2], SESSION_RUNS);
	printf("postern sync after append: %.2f ms (open view, another "
	       "store appended one; median of %d)\n",
	       grew[SESSION_RUNS / 2], SESSION_RUNS);
}

int
main(int argc, char **argv)
{
	const char *phase = "all", *moddir = BENCH_MODULE_DIR;
	char *end, *home, *mail, *slash;
	struct loader *ld;
	struct conf *cf;
	unsigned long n, k = 0;
	int ch, do_append, do_read;

	while ((ch = getopt(argc, argv, "f:m:p:")) != -1) {
		switch (ch) {
		case 'f':
			errno = 0;
			k = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || k == 0)
				usage();
			break;
		case 'm':
			moddir = optarg;
			break;
		case 'p':
			phase = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || argv[0][0] != '/')
		usage();
	errno = 0;
	n = strtoul(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > 10000000)
		usage();
	if (k == 0 || k > n)
		k = n;
	do_append = strcmp(phase, "all") == 0 || strcmp(phase, "append") == 0;
	do_read = strcmp(phase, "all") == 0 || strcmp(phase, "read") == 0;
	if (!do_append && !do_read)
		usage();
	maildir = argv[0];

	/* The user's mail field names the Maildir, as a passwd-file line
	 * would; the home is its parent (the module wants one). */
	if ((home = strdup(maildir)) == NULL ||
	    asprintf(&mail, "maildir:%s", maildir) < 0)
		return 1;
	if ((slash = strrchr(home, '/')) != NULL && slash != home)
		*slash = '\0';
	user.size = sizeof(user);
	user.name = "bench@example.org";
	user.home = home;
	user.mail = mail;

	log_open("bench_storage", 0, POSTERN_LOG_WARNING);
	if ((cf = conf_load_string("storage_maildir = { };",
	                           "bench.conf")) == NULL)
		return 1;
	host_set_conf(cf);
	ld = loader_create(host_table(), moddir);
	if (loader_load(ld, "storage_maildir") < 0)
		return 1;
	host_set_init_phase(1);
	if (loader_init_all(ld) < 0)
		return 1;
	host_set_init_phase(0);
	S = service_lookup("bench", POSTERN_STORAGE_SERVICE,
	                   POSTERN_STORAGE_MAJOR, POSTERN_STORAGE_MINOR, 0);
	if (S == NULL)
		return 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (do_append)
		bench_append((uint32_t)n, (uint32_t)k);
	if (do_read) {
		/* The first open after the appends reads cur/ again: appends
		 * refresh the index lightly (new/ only). */
		bench_open("open first after append (cold)", (uint32_t)n, 1);
		printf("postern cache drop: %s\n", dropped_by_proc
		       ? "sync + /proc/sys/vm/drop_caches (root)"
		       : "posix_fadvise(DONTNEED) on the index files only");
		bench_open("open cold", (uint32_t)n, 1);
		bench_open("open warm", (uint32_t)n, 0);
		bench_list_flags((uint32_t)n);
		bench_flag_all((uint32_t)n);
		print_index_size("after store");
		bench_open("open warm after store", (uint32_t)n, 0);
		bench_rebuild((uint32_t)n);
		/* Last: it appends to the mailbox. */
		bench_session((uint32_t)n);
	}

	hook_reset();
	service_reset();
	loader_destroy(ld);
	host_set_conf(NULL);
	conf_free(cf);
	free(home);
	free(mail);
	return 0;
}
