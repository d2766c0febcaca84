/*
 * maildir_uidlist.c - the files that give messages their UIDs and
 * keywords their letters, in Dovecot's formats so either server can open
 * a Maildir the other wrote:
 *
 *   dovecot-uidlist   "3 V<uidvalidity> N<nextuid>\n" then one line per
 *                     message, "<uid> :<basename>\n" (Dovecot may put
 *                     extension fields before the ':'; they are skipped).
 *                     New UIDs are appended (fsynced); the file is
 *                     rewritten (tmp, fsync, rename) when expunged lines
 *                     pile up.  N may lag the appended lines: the next
 *                     UID is past both, as in Dovecot.
 *   dovecot-keywords  "<index> <name>\n": index i is letter 'a' + i.
 *
 * Callers hold the mailbox lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "maildir.h"

void
md_uidlist_free(struct md_uidlist *ul)
{
	size_t i;

	for (i = 0; i < ul->n; i++)
		free(ul->bases[i]);
	free(ul->bases);
	free(ul->uids);
	memset(ul, 0, sizeof(*ul));
}

static int
ul_add(struct md_uidlist *ul, uint32_t uid, const char *base)
{
	uint32_t *nu;
	char **nb;

	if (ul->n == ul->cap) {
		ul->cap = ul->cap * 2 + 64;
		nu = realloc(ul->uids, ul->cap * sizeof(*nu));
		if (nu != NULL)
			ul->uids = nu;
		nb = realloc(ul->bases, ul->cap * sizeof(*nb));
		if (nb != NULL)
			ul->bases = nb;
		if (nu == NULL || nb == NULL)
			return -1;
	}
	if ((ul->bases[ul->n] = strndup(base, md_base_len(base))) == NULL)
		return -1;
	ul->uids[ul->n++] = uid;
	return 0;
}

/* The decimal number at p, which must fit 32 bits; -1 if it does not
 * (strtoul would give ULONG_MAX, or keep the low bits on the way to a
 * uint32_t). */
static int
ul_u32(const char *p, char **end, uint32_t *out)
{
	unsigned long v;

	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoul(p, end, 10);
	if (errno == ERANGE || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "3 V123 N45 G..." (version 3) or "1 123 45" (version 1).  A next UID
 * of 2^32 - 1 leaves no UID to give (the one after it would be 0), so
 * such a list is as unusable as a corrupt one. */
static int
ul_header(const char *line, struct md_uidlist *ul)
{
	const char *p;
	char *end;

	if (strncmp(line, "1 ", 2) == 0) {
		if (ul_u32(line + 2, &end, &ul->uidvalidity) < 0 ||
		    *end != ' ' || ul_u32(end + 1, &end, &ul->nextuid) < 0)
			return -1;
	} else if (strncmp(line, "3 ", 2) == 0) {
		for (p = line + 1; p != NULL && *p != '\0';
		     p = strchr(p, ' ')) {
			p++;
			if ((*p == 'V' &&
			     ul_u32(p + 1, &end, &ul->uidvalidity) < 0) ||
			    (*p == 'N' && ul_u32(p + 1, &end, &ul->nextuid) < 0))
				return -1;
		}
	} else {
		return -1;
	}
	return ul->uidvalidity != 0 && ul->nextuid != UINT32_MAX ? 0 : -1;
}

static int
ul_line(const char *line, struct md_uidlist *ul, uint32_t *last)
{
	const char *base;
	char *end;
	unsigned long uid;

	uid = strtoul(line, &end, 10);
	/* UINT32_MAX is refused too: the next UID would wrap to 0 */
	if (end == line || uid == 0 || uid >= UINT32_MAX || uid <= *last)
		return -1;
	if ((base = strstr(end, " :")) != NULL)
		base += 2;
	else if (*end == ' ' && strchr(end + 1, ' ') == NULL)
		base = end + 1; /* version 1: "<uid> <flags?> <name>" */
	else
		return -1;
	if (*base == '\0' || ul_add(ul, uid, base) < 0)
		return -1;
	*last = uid;
	if (uid >= ul->nextuid)
		ul->nextuid = uid + 1;
	return 0;
}

int
md_uidlist_read(const char *dir, struct md_uidlist *ul)
{
	char path[4096], *line = NULL;
	size_t cap = 0, lineno = 0;
	uint32_t last = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	memset(ul, 0, sizeof(*ul));
	snprintf(path, sizeof(path), "%s/%s", dir, MD_UIDLIST);
	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 1;
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n') {
			/* A torn last line (crash mid-append): drop it. */
			md_log(POSTERN_LOG_WARNING, "%s: line %zu is "
			       "incomplete, ignored", path, lineno + 1);
			ul->torn = 1;
			break;
		}
		line[len - 1] = '\0';
		rc = lineno++ == 0 ? ul_header(line, ul)
		                   : ul_line(line, ul, &last);
		if (rc < 0)
			md_log(POSTERN_LOG_ERROR, "%s: line %zu is corrupt",
			       path, lineno);
	}
	if (rc == 0 && lineno == 0) {
		md_log(POSTERN_LOG_ERROR, "%s: empty", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	if (rc < 0)
		md_uidlist_free(ul);
	return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the lines of recs[from..] to fd. */
static int
write_lines(int fd, const struct md_state *s, uint32_t from)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *m = open_memstream(&buf, &blen);
	uint32_t i;
	int rc;

	if (m == NULL)
		return -1;
	for (i = from; i < s->nrec; i++)
		fprintf(m, "%u :%.*s\n", s->recs[i].uid,
		        (int)md_base_len(s->names[i]), s->names[i]);
	if (fclose(m) != 0) {
		free(buf);
		return -1;
	}
	rc = write_all(fd, buf, blen);
	free(buf);
	return rc;
}

int
md_uidlist_rewrite(const char *dir, struct md_state *s)
{
	char path[4096], tmp[4200], hdr[128];
	off_t end = -1;
	int fd, len;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_UIDLIST);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		md_log(POSTERN_LOG_ERROR, "create %s: %s", tmp,
		       strerror(errno));
		return -1;
	}
	len = snprintf(hdr, sizeof(hdr), "3 V%u N%u\n", s->uidvalidity,
	               s->nextuid);
	if (write_all(fd, hdr, len) < 0 || write_lines(fd, s, 0) < 0 ||
	    fsync(fd) < 0 || (end = lseek(fd, 0, SEEK_END)) < 0) {
		md_log(POSTERN_LOG_ERROR, "write %s: %s", tmp,
		       strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", tmp,
		       strerror(errno));
		unlink(tmp);
		return -1;
	}
	s->uidlist_size = (uint64_t)end;
	return 0;
}

/* 1 when the file ends in a torn line (a crash mid-append). */
static int
torn_tail(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char c;

	return end > 0 && (pread(fd, &c, 1, end - 1) != 1 || c != '\n');
}

int
md_uidlist_append(const char *dir, struct md_state *s, uint32_t from)
{
	char path[4096];
	off_t end;
	int fd;

	if (from >= s->nrec)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, MD_UIDLIST);
	if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return md_uidlist_rewrite(dir, s);
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (torn_tail(fd)) {
		/* Appending would glue our line to the torn one. */
		close(fd);
		md_log(POSTERN_LOG_WARNING, "%s: torn last line, rewriting",
		       path);
		return md_uidlist_rewrite(dir, s);
	}
	if (write_lines(fd, s, from) < 0 || fdatasync(fd) < 0 ||
	    (end = lseek(fd, 0, SEEK_END)) < 0) {
		md_log(POSTERN_LOG_ERROR, "append to %s: %s", path,
		       strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	s->uidlist_size = (uint64_t)end;
	return 0;
}

/* ---- keywords --------------------------------------------------------- */

int
md_keywords_read(const char *dir, struct md_state *s)
{
	char path[4096], *line = NULL, *name;
	size_t cap = 0;
	unsigned long idx;
	ssize_t len;
	uint32_t i;
	FILE *f;

	for (i = 0; i < s->nkw; i++) {
		free(s->kwnames[i]);
		s->kwnames[i] = NULL;
	}
	s->nkw = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, MD_KEYWORDS);
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		idx = strtoul(line, &name, 10);
		if (name == line || *name != ' ' || idx >= MD_MAX_KEYWORDS ||
		    s->kwnames[idx] != NULL)
			continue;
		s->kwnames[idx] = strdup(name + 1);
		if (idx + 1 > s->nkw)
			s->nkw = idx + 1;
	}
	free(line);
	fclose(f);
	/* Holes (a hand-edited file) get placeholder names. */
	for (i = 0; i < s->nkw; i++)
		if (s->kwnames[i] == NULL &&
		    asprintf(&s->kwnames[i], "$unknown%u", i) < 0)
			s->kwnames[i] = NULL;
	return 0;
}

static int
keywords_fill(FILE *f, const void *arg)
{
	const struct md_state *s = arg;
	uint32_t i;

	for (i = 0; i < s->nkw; i++)
		if (s->kwnames[i] != NULL)
			fprintf(f, "%u %s\n", i, s->kwnames[i]);
	return 0;
}

int
md_keywords_write(const char *dir, const struct md_state *s)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, MD_KEYWORDS);
	return md_replace_file(path, keywords_fill, s);
}

int
md_keyword_index(struct md_state *s, const char *name, int add)
{
	uint32_t i;

	for (i = 0; i < s->nkw; i++)
		if (s->kwnames[i] != NULL &&
		    strcasecmp(s->kwnames[i], name) == 0)
			return (int)i;
	if (!add || s->nkw >= MD_MAX_KEYWORDS ||
	    (s->kwnames[s->nkw] = strdup(name)) == NULL)
		return -1;
	return (int)s->nkw++;
}
