/*
 * passwd_file.c - parsing the users and aliases files into a table, and
 * rewriting them atomically (see passwd_file.h).
 *
 * A table keeps each file's contents in one buffer, cut in place into
 * NUL-terminated strings that the entries point to, so freeing a table is
 * a handful of calls whatever its size.
 */
#include "passwd_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "passwd_hash.h"

#define MAX_FILE_SIZE (64u * 1024 * 1024) /* far above any sane file */
#define MAX_NAME 320                       /* RFC 5321: 64 + 1 + 255 */

/* Memory for the tables: out of memory aborts, as in the whole server. */
static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap *= 2;
	p = reallocarray(p, ncap, size);
	if (p == NULL)
		abort();
	*cap = ncap;
	return p;
}

/* ---- files ----------------------------------------------------------- */

static void
stamp_from(const struct stat *sb, struct pf_stamp *st)
{
	memset(st, 0, sizeof(*st));
	st->exists = 1;
	st->dev = sb->st_dev;
	st->ino = sb->st_ino;
	st->size = sb->st_size;
	st->mtime = sb->st_mtim;
	st->ctime = sb->st_ctim;
}

int
pf_stat(const char *path, struct pf_stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (path == NULL)
		return 0;
	if (stat(path, &sb) < 0 && errno == ENOENT)
		return 0;
	if (stat(path, &sb) < 0) {
		st->exists = -1; /* compares equal to the next failure */
		return -1;
	}
	stamp_from(&sb, st);
	return 0;
}

int
pf_stamp_equal(const struct pf_stamp *a, const struct pf_stamp *b)
{
	if (a->exists != b->exists)
		return 0;
	if (!a->exists)
		return 1;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Reads a whole file; a missing one reads as "".  NUL bytes become 0x01
 * so the line holding one is reported instead of cut short. */
static int
read_all(const char *path, char **out, size_t *len, struct pf_stamp *st,
         char *err, size_t errlen)
{
	struct stat sb;
	char *buf;
	size_t got = 0, i;
	ssize_t n;
	int fd;

	memset(st, 0, sizeof(*st));
	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*out = strdup("");
		if (*out == NULL)
			abort();
		return 0;
	}
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_FILE_SIZE) {
		snprintf(err, errlen, "%s: not a regular file of at most "
		         "%u bytes", path, MAX_FILE_SIZE);
		close(fd);
		return -1;
	}
	stamp_from(&sb, st);
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL)
		abort();
	while (got < (size_t)sb.st_size &&
	       (n = read(fd, buf + got, (size_t)sb.st_size - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: read: %s", path,
			         strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	for (i = 0; i < got; i++)
		if (buf[i] == '\0')
			buf[i] = '\001';
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* The next line of a buffer, NUL-terminated in place, without its CR LF. */
static char *
next_line(char **cur)
{
	char *s = *cur, *nl;
	size_t len;

	if (*s == '\0')
		return NULL;
	nl = strchr(s, '\n');
	if (nl != NULL) {
		*nl = '\0';
		*cur = nl + 1;
	} else
		*cur = s + strlen(s);
	len = strlen(s);
	if (len > 0 && s[len - 1] == '\r')
		s[len - 1] = '\0';
	return s;
}

static int
blank_or_comment(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == '#';
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 1;
	return 0;
}

/* ---- names ----------------------------------------------------------- */

int
pf_lower(const char *s, char *out, size_t outlen)
{
	size_t i, n = strlen(s);

	if (n >= outlen)
		return -1;
	for (i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	return 0;
}

static void
lower_in_place(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

const char *
pf_check_name(const char *s, int catchall)
{
	const char *at = strchr(s, '@'), *p;

	if (*s == '\0')
		return "empty name";
	if (strlen(s) > MAX_NAME)
		return "name longer than 320 bytes";
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ':' ||
		    *p == ',')
			return "blank, control character, ':' or ',' in name";
	if (at == NULL)
		return NULL;
	if (strchr(at + 1, '@') != NULL)
		return "more than one '@' in name";
	if (at[1] == '\0')
		return "empty domain after '@'";
	if (at == s && !catchall)
		return "empty local part before '@'";
	return NULL;
}

static const char *
domain_of(const char *name)
{
	const char *at = strchr(name, '@');

	return at != NULL ? at + 1 : NULL;
}

/* ---- parsing --------------------------------------------------------- */

struct parse {
	struct pf_table *t;
	const char *path;
	size_t capusers, capaliases, capstrs, capdomains;
};

static size_t
add_str(struct parse *p, const char *s)
{
	p->t->strs = grow(p->t->strs, &p->capstrs, p->t->nstrs + 1,
	                  sizeof(*p->t->strs));
	p->t->strs[p->t->nstrs] = s;
	return p->t->nstrs++;
}

static void
add_domain(struct parse *p, const char *d)
{
	p->t->domains = grow(p->t->domains, &p->capdomains,
	                     p->t->ndomains + 1, sizeof(*p->t->domains));
	p->t->domains[p->t->ndomains++] = d;
}

size_t
pf_split_user(char *line, char *fields[8])
{
	size_t n = 0, i;
	char *s = line, *colon;

	fields[n++] = s;
	while (n < 8 && (colon = strchr(s, ':')) != NULL) {
		*colon = '\0';
		s = colon + 1;
		fields[n++] = s;
	}
	for (i = n; i < 8; i++)
		fields[i] = (char *)"";
	return n;
}

static int
parse_id(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	*out = 0;
	if (*s == '\0')
		return 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
is_nologin(const char *field)
{
	if (strcmp(field, "nologin") == 0)
		return 1;
	return strncmp(field, "nologin=", 8) == 0 &&
	       (strcasecmp(field + 8, "y") == 0 ||
	        strcasecmp(field + 8, "yes") == 0);
}

static void
parse_extra(struct parse *p, char *s, struct pf_user *u)
{
	char *tok, *save = NULL;

	u->extra = p->t->nstrs;
	for (tok = strtok_r(s, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		add_str(p, tok);
		u->nextra++;
		if (is_nologin(tok))
			u->nologin = 1;
		else if (strncmp(tok, "userdb_mail=", 12) == 0)
			u->mail = tok + 12;
		else if (strncmp(tok, "mail=", 5) == 0 && u->mail == NULL)
			u->mail = tok + 5;
	}
}

static void
parse_user(struct parse *p, char *line, unsigned lineno)
{
	struct pf_user u;
	const char *why;
	char *f[8];

	memset(&u, 0, sizeof(u));
	u.line = lineno;
	if (pf_split_user(line, f) < 2) {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: no ':' after the "
		                "user name; line skipped", p->path, lineno);
		return;
	}
	if ((why = pf_check_name(f[0], 0)) != NULL) {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: user name: %s; "
		                "line skipped", p->path, lineno, why);
		return;
	}
	lower_in_place(f[0]);
	if (parse_id(f[2], &u.uid) < 0 || parse_id(f[3], &u.gid) < 0) {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: user '%s': uid "
		                "and gid must be numbers; line skipped",
		                p->path, lineno, f[0]);
		return;
	}
	u.name = f[0];
	u.password = f[1];
	u.scheme = (int)pwhash_scheme(f[1], &u.hash, &why);
	if (u.scheme == PWHASH_UNKNOWN)
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: user '%s': %s; "
		                "this user cannot log in", p->path, lineno,
		                f[0], why);
	u.home = *f[5] != '\0' ? f[5] : NULL;
	parse_extra(p, f[7], &u);
	p->t->users = grow(p->t->users, &p->capusers, p->t->nusers + 1,
	                   sizeof(*p->t->users));
	p->t->users[p->t->nusers++] = u;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Checks every target before adding any: a bad one skips the line. */
static const char *
check_targets(char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;
	const char *why = NULL;
	size_t n = 0;

	if (copy == NULL)
		abort();
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL && why == NULL;
	     tok = strtok_r(NULL, ", \t", &save), n++)
		if (*tok == '|' || *tok == '/')
			why = "pipes and files are not supported as targets";
		else if (pf_check_name(tok, 0) != NULL)
			why = "malformed target";
	free(copy);
	if (why == NULL && n == 0)
		why = "no targets";
	return why;
}

static void
parse_alias(struct parse *p, char *line, unsigned lineno)
{
	struct pf_alias a;
	char *colon = strchr(line, ':'), *addr, *tok, *save = NULL;
	const char *why;

	if (*line == ' ' || *line == '\t') {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: line starts with "
		                "a blank (continuation lines are not "
		                "supported); skipped", p->path, lineno);
		return;
	}
	if (colon == NULL) {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: no ':' after the "
		                "address; line skipped", p->path, lineno);
		return;
	}
	*colon = '\0';
	addr = trim(line);
	if ((why = pf_check_name(addr, 1)) != NULL ||
	    (why = check_targets(colon + 1)) != NULL) {
		auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: %s; line skipped",
		                p->path, lineno, why);
		return;
	}
	lower_in_place(addr);
	memset(&a, 0, sizeof(a));
	a.address = addr;
	a.line = lineno;
	a.targets = p->t->nstrs;
	for (tok = strtok_r(colon + 1, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save), a.ntargets++) {
		lower_in_place(tok);
		add_str(p, tok);
	}
	p->t->aliases = grow(p->t->aliases, &p->capaliases,
	                     p->t->naliases + 1, sizeof(*p->t->aliases));
	p->t->aliases[p->t->naliases++] = a;
}

static void
parse_lines(struct parse *p, char *buf,
            void (*one)(struct parse *, char *, unsigned))
{
	char *line, *cur = buf;
	unsigned lineno = 0;

	while ((line = next_line(&cur)) != NULL) {
		lineno++;
		if (blank_or_comment(line))
			continue;
		if (has_control(line)) {
			auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: control "
			                "character in line; skipped", p->path,
			                lineno);
			continue;
		}
		one(p, line, lineno);
	}
}

/* ---- sorting and duplicates ------------------------------------------ */

static int
user_cmp(const void *a, const void *b)
{
	const struct pf_user *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static int
alias_cmp(const void *a, const void *b)
{
	const struct pf_alias *x = a, *y = b;
	int c = strcmp(x->address, y->address);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted by name then line: the first of equal names is the one kept. */
static void
dedup_users(struct parse *p)
{
	struct pf_table *t = p->t;
	size_t i, n = 0;

	if (t->nusers > 0)
		qsort(t->users, t->nusers, sizeof(*t->users), user_cmp);
	for (i = 0; i < t->nusers; i++) {
		if (n > 0 && strcmp(t->users[n - 1].name,
		                    t->users[i].name) == 0) {
			auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: user '%s' "
			                "already defined at line %u; line "
			                "skipped", p->path, t->users[i].line,
			                t->users[i].name, t->users[n - 1].line);
			continue;
		}
		t->users[n++] = t->users[i];
	}
	t->nusers = n;
}

static void
dedup_aliases(struct parse *p)
{
	struct pf_table *t = p->t;
	size_t i, n = 0;

	if (t->naliases > 0)
		qsort(t->aliases, t->naliases, sizeof(*t->aliases),
		      alias_cmp);
	for (i = 0; i < t->naliases; i++) {
		if (n > 0 && strcmp(t->aliases[n - 1].address,
		                    t->aliases[i].address) == 0) {
			auth_passwd_log(POSTERN_LOG_WARNING, "%s:%u: alias '%s' "
			                "already defined at line %u; line "
			                "skipped", p->path, t->aliases[i].line,
			                t->aliases[i].address,
			                t->aliases[n - 1].line);
			continue;
		}
		t->aliases[n++] = t->aliases[i];
	}
	t->naliases = n;
}

static void
collect_domains(struct parse *p, const char *const *extra, size_t nextra)
{
	struct pf_table *t = p->t;
	const char *d;
	size_t i, n = 0;

	for (i = 0; i < t->nusers; i++)
		if ((d = domain_of(t->users[i].name)) != NULL)
			add_domain(p, d);
	for (i = 0; i < t->naliases; i++)
		if ((d = domain_of(t->aliases[i].address)) != NULL)
			add_domain(p, d);
	for (i = 0; i < nextra; i++)
		add_domain(p, extra[i]);
	if (t->ndomains > 0)
		qsort(t->domains, t->ndomains, sizeof(*t->domains), str_cmp);
	for (i = 0; i < t->ndomains; i++)
		if (n == 0 || strcmp(t->domains[n - 1], t->domains[i]) != 0)
			t->domains[n++] = t->domains[i];
	t->ndomains = n;
}

struct pf_table *
pf_table_load(const char *users, const char *aliases,
              const char *const *domains, size_t ndomains)
{
	struct parse p;
	char err[PATH_MAX + 128];
	size_t len;

	memset(&p, 0, sizeof(p));
	p.t = calloc(1, sizeof(*p.t));
	if (p.t == NULL)
		abort();
	p.t->refs = 1;
	if (read_all(users, &p.t->ubuf, &len, &p.t->ustamp, err,
	             sizeof(err)) < 0 ||
	    (aliases != NULL && read_all(aliases, &p.t->abuf, &len,
	                                 &p.t->astamp, err, sizeof(err)) < 0)) {
		auth_passwd_log(POSTERN_LOG_ERROR, "%s", err);
		pf_table_free(p.t);
		return NULL;
	}
	p.path = users;
	parse_lines(&p, p.t->ubuf, parse_user);
	dedup_users(&p);
	if (aliases != NULL) {
		p.path = aliases;
		parse_lines(&p, p.t->abuf, parse_alias);
		dedup_aliases(&p);
	}
	collect_domains(&p, domains, ndomains);
	return p.t;
}

void
pf_table_free(struct pf_table *t)
{
	if (t == NULL)
		return;
	free(t->ubuf);
	free(t->abuf);
	free(t->users);
	free(t->aliases);
	free(t->strs);
	free(t->domains);
	free(t);
}

/* ---- lookups --------------------------------------------------------- */

static int
user_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct pf_user *)elem)->name);
}

static int
alias_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct pf_alias *)elem)->address);
}

static int
domain_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

const struct pf_user *
pf_find_user(const struct pf_table *t, const char *key)
{
	if (t->nusers == 0)
		return NULL;
	return bsearch(key, t->users, t->nusers, sizeof(*t->users),
	               user_key_cmp);
}

const struct pf_alias *
pf_find_alias(const struct pf_table *t, const char *key)
{
	if (t->naliases == 0)
		return NULL;
	return bsearch(key, t->aliases, t->naliases, sizeof(*t->aliases),
	               alias_key_cmp);
}

int
pf_is_local_domain(const struct pf_table *t, const char *domain)
{
	if (t->ndomains == 0)
		return 0;
	return bsearch(domain, t->domains, t->ndomains, sizeof(*t->domains),
	               domain_key_cmp) != NULL;
}

/* ---- rewriting ------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	b->p = grow(b->p, &b->cap, b->len + n + 1, 1);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* The key of a line (lower case) into key[keylen]; 0 for a comment, a
 * blank line or one without a ':'. */
static int
line_key(const char *line, enum pf_kind kind, char *key, size_t keylen)
{
	const char *colon = strchr(line, ':'), *s = line, *e;
	size_t i, n;

	if (blank_or_comment(line) || colon == NULL)
		return 0;
	e = colon;
	if (kind == PF_ALIASES) {
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
	}
	n = (size_t)(e - s);
	if (n == 0 || n >= keylen)
		return 0;
	for (i = 0; i < n; i++)
		key[i] = (char)tolower((unsigned char)s[i]);
	key[n] = '\0';
	return 1;
}

static int
fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
write_fd(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes `b` to a temporary file beside `path`, then renames it over
 * `path`: readers see the old file or the new one, never half of one. */
static int
replace_file(const char *path, const struct buf *b, const struct stat *old,
             char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", tmp,
		         strerror(errno));
		return -1;
	}
	/* The workers read the file as another user: keep its access. */
	(void)fchmod(fd, old != NULL ? old->st_mode & 07777 : 0640);
	if (old != NULL && geteuid() == 0)
		(void)fchown(fd, old->st_uid, old->st_gid);
	if (write_fd(fd, b->p != NULL ? b->p : "", b->len) < 0 ||
	    fsync(fd) < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", tmp,
		         strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: cannot replace with %s: %s", path,
		         tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (fsync_dir(path) < 0) {
		snprintf(err, errlen, "%s: cannot sync its directory: %s",
		         path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
lock_file(const char *path, char *err, size_t errlen)
{
	char lock[PATH_MAX];
	int fd;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >=
	    sizeof(lock)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", lock,
		         strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		snprintf(err, errlen, "%s: cannot lock: %s", lock,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The edited contents of `text` into `out` (see pf_edit). */
static int
edit_lines(char *text, enum pf_kind kind, const char *key,
           pf_build_fn build, void *arg, struct buf *out, char *err,
           size_t errlen)
{
	char k[MAX_NAME + 2], *line, *cur = text, *repl = NULL, *nl;
	int found = 0;

	/* Lines are cut at LF only, so a CR LF line is kept as it was. */
	for (; *cur != '\0'; cur = nl != NULL ? nl + 1 : cur + strlen(cur)) {
		line = cur;
		if ((nl = strchr(cur, '\n')) != NULL)
			*nl = '\0';
		if (!line_key(line, kind, k, sizeof(k)) ||
		    strcmp(k, key) != 0) {
			buf_add(out, line, strlen(line));
			buf_add(out, "\n", 1);
			continue;
		}
		if (line[0] != '\0' && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (found++)
			continue; /* a later duplicate: it was ignored anyway */
		if (build(arg, line, &repl, err, errlen) < 0)
			return -1;
		if (repl != NULL) {
			buf_add(out, repl, strlen(repl));
			buf_add(out, "\n", 1);
			free(repl);
		}
	}
	if (found)
		return 0;
	if (build(arg, NULL, &repl, err, errlen) < 0)
		return -1;
	if (repl != NULL) {
		buf_add(out, repl, strlen(repl));
		buf_add(out, "\n", 1);
		free(repl);
	}
	return 0;
}

int
pf_edit(const char *path, enum pf_kind kind, const char *key,
        pf_build_fn build, void *arg, char *err, size_t errlen)
{
	struct buf out = { NULL, 0, 0 };
	struct pf_stamp st;
	struct stat sb;
	char *text = NULL;
	size_t len;
	int lock, rc = -1;

	if ((lock = lock_file(path, err, errlen)) < 0)
		return -1;
	if (read_all(path, &text, &len, &st, err, errlen) < 0)
		goto out;
	if (edit_lines(text, kind, key, build, arg, &out, err, errlen) < 0)
		goto out;
	if (st.exists && stat(path, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = replace_file(path, &out, st.exists ? &sb : NULL, err, errlen);
out:
	free(text);
	free(out.p);
	close(lock); /* releases the flock */
	return rc;
}
