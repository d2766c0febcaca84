/*
 * fuzz_storage.c - libFuzzer harness for storage_maildir's readers of
 * its own files (modules/storage/maildir_index.c, maildir_uidlist.c),
 * fed hostile files: the index (postern.index), its change log
 * (postern.index.log), Dovecot's uid list (dovecot-uidlist) and keyword
 * list (dovecot-keywords), and message file names in cur/.
 *
 * Input: one octet of options (bit 0: a read-write refresh, which moves
 * new/ into cur/; bit 1: put the names in new/ rather than cur/), then
 * the four files and the names (one a line), separated by the line
 * "--8<--".  Files not given are absent.  Each run builds a scratch
 * Maildir with them, refreshes an empty state from it (md_refresh, as
 * opening a mailbox does, which reads everything and may rewrite the
 * files), checks what the state holds, refreshes it again (only the
 * log's new entries are read), and frees it.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

#define SEP "\n--8<--\n"
#define MAX_NAMES 32

/* What storage_maildir.c provides the rest of the module; md_host stays
 * NULL: the readers do not call the host. */
const struct postern_host *md_host;
postern_module_t *md_self;

void
md_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

void
md_err(struct postern_storage_err *err, enum postern_storage_error code,
       const char *fmt, ...)
{
	err->code = code;
	snprintf(err->text, sizeof(err->text), "%s", fmt);
}

static char dir[64];

static void
empty_dir(const char *path)
{
	char p[512];
	struct dirent *e;
	DIR *d = opendir(path);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		unlink(p);
	}
	closedir(d);
}

/* The scratch Maildir goes when the run ends (not after a crash, whose
 * files may help). */
static void
remove_dir(void)
{
	static const char *const subs[] = { "new", "cur", "tmp" };
	char p[128];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		empty_dir(p);
		rmdir(p);
	}
	empty_dir(dir);
	rmdir(dir);
}

static void
setup(void)
{
	static const char *const subs[] = { "new", "cur", "tmp" };
	char p[128];
	size_t i;

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "%s/fuzz_storage.XXXXXX",
		         getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(dir) == NULL)
			abort();
		atexit(remove_dir);
	}
	empty_dir(dir);   /* files only: the subdirectories stay */
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		mkdir(p, 0700);
		empty_dir(p);
	}
}

static void
put_file(const char *sub, const char *name, const uint8_t *data,
         size_t len)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s%s%s/%s", dir, sub[0] ? "/" : "", sub,
	         name);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return;   /* a name the file system refuses */
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Next section of data[*pos..size) (up to SEP), or NULL at the end. */
static const uint8_t *
section(const uint8_t *data, size_t size, size_t *pos, size_t *len)
{
	const uint8_t *s = data + *pos, *sep;

	if (*pos > size)
		return NULL;
	sep = memmem(s, size - *pos, SEP, strlen(SEP));
	*len = sep != NULL ? (size_t)(sep - s) : size - *pos;
	*pos += *len + strlen(SEP);
	return s;
}

static void
check(const struct md_state *s)
{
	uint32_t i;

	if (s->nextuid == 0)
		abort();   /* the next message would get UID 0 */
	if (s->highestmodseq > (uint64_t)INT64_MAX)
		abort();   /* mod-sequences are 63-bit and must not wrap */
	for (i = 0; i < s->nrec; i++) {
		if (i > 0 && s->recs[i].uid <= s->recs[i - 1].uid)
			abort();   /* ascending UIDs */
		if (s->names[i] == NULL || s->recs[i].uid >= s->nextuid)
			abort();   /* a UID to be given again */
		if (s->recs[i].modseq > s->highestmodseq)
			abort();   /* a change CHANGEDSINCE would miss */
	}
	if (s->nkw > MD_MAX_KEYWORDS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = {
		MD_INDEX, MD_INDEX_LOG, MD_UIDLIST, "dovecot-keywords",
	};
	struct md_state s;
	const uint8_t *sec;
	size_t pos = 1, len, i;
	unsigned how;

	if (size < 1)
		return 0;
	how = data[0] & 1 ? MD_REFRESH_RW : 0;
	setup();
	for (i = 0; i < 4; i++)
		if ((sec = section(data, size, &pos, &len)) != NULL)
			put_file("", files[i], sec, len);
	if ((sec = section(data, size, &pos, &len)) != NULL) {
		const uint8_t *p = sec, *end = sec + len, *lf;
		char name[256];
		size_t n, count = 0;

		for (; p < end && count < MAX_NAMES; p = lf + 1, count++) {
			if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
				lf = end;
			n = (size_t)(lf - p);
			if (n == 0 || n >= sizeof(name) ||
			    memchr(p, '/', n) != NULL ||
			    memchr(p, '\0', n) != NULL)
				continue;
			memcpy(name, p, n);
			name[n] = '\0';
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				continue;
			put_file(data[0] & 2 ? "new" : "cur", name,
			         (const uint8_t *)"Subject: x\r\n\r\nx\r\n",
			         16);
		}
	}
	memset(&s, 0, sizeof(s));
	if (md_refresh(dir, &s, how) == 0) {
		check(&s);
		if (md_refresh(dir, &s, how) == 0)
			check(&s);
	}
	md_state_free(&s);
	return 0;
}
