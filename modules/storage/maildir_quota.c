/*
 * maildir_quota.c - the user's quota (RFC 9208 STORAGE and MESSAGE) as
 * Maildir++ keeps it, in the file "maildirsize" at the Maildir's root,
 * which Dovecot and Courier read and write alike:
 *
 *	1048576S,1000C          the limits: octets (S), messages (C)
 *	52340 12                what the mailboxes held when it was counted
 *	1200 1                  each later change: octets and messages,
 *	-800 -1                 appended in one write (O_APPEND)
 *
 * Usage is the sum of the lines after the first.  The file is counted
 * again from the directories (every folder's cur/ and new/, the files'
 * sizes on disk) when it is missing, unreadable, names other limits
 * than the configured ones or sums below zero; the count replaces it
 * whole (md_replace_file).  Past MD_QUOTA_MAX_FILE octets its lines are
 * folded into one, their sum, the same way: a user of 100,000 messages
 * is not walked again every 200 deliveries.
 * A change is measured in octets on disk, as the count is.
 *
 * Nothing is kept while no limit is configured: no file is read or
 * written and every save goes through.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

#define MD_QUOTA_FILE "maildirsize"
/* Past this size the change lines are folded into their sum (Maildir++
 * says 5120 octets); a file past MD_QUOTA_READ_MAX is counted again. */
#define MD_QUOTA_MAX_FILE 5120
#define MD_QUOTA_READ_MAX 65536

uint64_t md_quota_storage_limit;
uint64_t md_quota_message_limit;

int
md_quota_enabled(void)
{
	return md_quota_storage_limit > 0 || md_quota_message_limit > 0;
}

/* The limits line: "NS,MC", a limit of 0 left out. */
static void
limits_line(char *buf, size_t len)
{
	if (md_quota_storage_limit > 0 && md_quota_message_limit > 0)
		snprintf(buf, len, "%" PRIu64 "S,%" PRIu64 "C",
		         md_quota_storage_limit, md_quota_message_limit);
	else if (md_quota_storage_limit > 0)
		snprintf(buf, len, "%" PRIu64 "S", md_quota_storage_limit);
	else
		snprintf(buf, len, "%" PRIu64 "C", md_quota_message_limit);
}

/* Adds the files of dir/cur and dir/new to *bytes, *count. */
static void
count_dir(const char *dir, uint64_t *bytes, uint64_t *count)
{
	static const char *const subs[] = { "cur", "new" };
	char path[8192];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s", dir, subs[i],
			         de->d_name);
			if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
				continue;  /* expunged meanwhile */
			*bytes += (uint64_t)sb.st_size;
			(*count)++;
		}
		closedir(d);
	}
}

/* Usage counted from the directories: INBOX (the root) and each
 * Maildir++ folder ".Name" (not "..", a mailbox being deleted). */
static int
count_all(const char *root, uint64_t *bytes, uint64_t *count)
{
	char path[8192];
	struct dirent *de;
	DIR *d;

	*bytes = *count = 0;
	if ((d = opendir(root)) == NULL) {
		md_log(POSTERN_LOG_ERROR, "opendir %s: %s", root,
		       strerror(errno));
		return -1;
	}
	count_dir(root, bytes, count);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || de->d_name[1] == '.' ||
		    de->d_name[1] == '\0')
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		count_dir(path, bytes, count);
	}
	closedir(d);
	return 0;
}

struct recount {
	uint64_t bytes, count;
};

static int
write_count(FILE *f, const void *arg)
{
	const struct recount *rc = arg;
	char lim[64];

	limits_line(lim, sizeof(lim));
	return fprintf(f, "%s\n%" PRIu64 " %" PRIu64 "\n", lim, rc->bytes,
	               rc->count) < 0 ? -1 : 0;
}

static int parse_file(char *buf, const char *lim, uint64_t *bytes,
                      uint64_t *count);

/* Reads maildirsize: 0 with the sums (*big: it is past
 * MD_QUOTA_MAX_FILE), -1 when it must be counted again. */
static int
read_file(const char *path, uint64_t *bytes, uint64_t *count, int *big)
{
	char *buf, lim[64];
	ssize_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if ((buf = malloc(MD_QUOTA_READ_MAX + 1)) == NULL) {
		close(fd);
		return -1;
	}
	n = read(fd, buf, MD_QUOTA_READ_MAX + 1);
	close(fd);
	limits_line(lim, sizeof(lim));
	rc = -1;
	if (n > 0 && n <= MD_QUOTA_READ_MAX) {
		buf[n] = '\0';
		*big = n > MD_QUOTA_MAX_FILE;
		rc = parse_file(buf, lim, bytes, count);
	}
	free(buf);
	return rc;
}

/* The text of maildirsize: its limits line must be `lim`; the sums of
 * the lines after it.  0, or -1 when untrusted. */
static int
parse_file(char *buf, const char *lim, uint64_t *bytes, uint64_t *count)
{
	long long b, c, sb = 0, sc = 0;
	char *p, *nl, *end;

	if ((nl = strchr(buf, '\n')) == NULL)
		return -1;
	*nl = '\0';
	if (strcmp(buf, lim) != 0)
		return -1;  /* other limits: count under these */
	for (p = nl + 1; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			return -1;  /* a line being written, or torn */
		b = strtoll(p, &end, 10);
		if (end == p || *end != ' ')
			return -1;
		c = strtoll(end + 1, &end, 10);
		if (end != nl)
			return -1;
		sb += b;
		sc += c;
	}
	if (sb < 0 || sc < 0)
		return -1;
	*bytes = (uint64_t)sb;
	*count = (uint64_t)sc;
	return 0;
}

int
md_quota_usage(const char *root, uint64_t *bytes, uint64_t *count)
{
	char path[4200];
	struct recount rc;
	int big = 0;

	snprintf(path, sizeof(path), "%s/%s", root, MD_QUOTA_FILE);
	if (read_file(path, bytes, count, &big) == 0) {
		if (!big)
			return 0;
		/* folded: a change appended between the read and the
		 * rename is lost, as with Maildir++'s recount */
		rc.bytes = *bytes;
		rc.count = *count;
	} else if (count_all(root, &rc.bytes, &rc.count) < 0)
		return -1;
	if (md_replace_file(path, write_count, &rc) < 0)
		md_log(POSTERN_LOG_WARNING, "cannot write %s: the quota is "
		       "counted again next time", path);
	*bytes = rc.bytes;
	*count = rc.count;
	return 0;
}

int
md_quota_check(const char *root, uint64_t bytes, uint64_t count,
               struct postern_storage_err *err)
{
	uint64_t used, n;

	if (!md_quota_enabled())
		return 0;
	if (md_quota_usage(root, &used, &n) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot read the quota");
		return -1;
	}
	if ((md_quota_storage_limit > 0 &&
	     used + bytes > md_quota_storage_limit) ||
	    (md_quota_message_limit > 0 &&
	     n + count > md_quota_message_limit)) {
		md_err(err, POSTERN_SE_OVERQUOTA, "the mailbox is full: "
		       "%" PRIu64 " of %" PRIu64 " octets, %" PRIu64 " of "
		       "%" PRIu64 " messages used", used,
		       md_quota_storage_limit, n, md_quota_message_limit);
		return -1;
	}
	return 0;
}

void
md_quota_add(const char *root, int64_t bytes, int64_t count)
{
	char path[4200], line[64];
	int fd, len;

	if (!md_quota_enabled() || (bytes == 0 && count == 0))
		return;
	snprintf(path, sizeof(path), "%s/%s", root, MD_QUOTA_FILE);
	/* No file yet: the next read counts the directories, this change
	 * included. */
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		return;
	len = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n",
	               bytes, count);
	if (write(fd, line, (size_t)len) != len)
		md_log(POSTERN_LOG_WARNING, "append to %s: %s", path,
		       strerror(errno));
	close(fd);
}

void
md_quota_forget(const char *root)
{
	char path[4200];

	if (!md_quota_enabled())
		return;
	snprintf(path, sizeof(path), "%s/%s", root, MD_QUOTA_FILE);
	if (unlink(path) < 0 && errno != ENOENT)
		md_log(POSTERN_LOG_WARNING, "unlink %s: %s", path,
		       strerror(errno));
}

int
md_quota_get(postern_store_t *st, struct postern_quota *caller,
             struct postern_storage_err *err)
{
	struct postern_quota q = { .size = sizeof(q) };
	size_t size = caller->size;

	q.storage_limit = md_quota_storage_limit;
	q.message_limit = md_quota_message_limit;
	if (md_quota_enabled() &&
	    md_quota_usage(st->root, &q.storage_used, &q.message_used) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot read the quota");
		return -1;
	}
	/* the caller's struct may be an older, shorter one */
	if (size > sizeof(q))
		size = sizeof(q);
	if (size > sizeof(q.size))
		memcpy((char *)caller + sizeof(q.size),
		       (const char *)&q + sizeof(q.size),
		       size - sizeof(q.size));
	return 0;
}
