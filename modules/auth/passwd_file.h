/*
 * passwd_file.h - the users and aliases files of auth_passwd: parsing
 * them into an immutable table, and rewriting them for posternctl.
 *
 * Users file (Dovecot's passwd-file), one user a line:
 *
 *	name:password:uid:gid:gecos:home:shell:extra fields
 *
 * Fields after the password are optional.  The extra fields are the rest
 * of the line, space separated `key=value` (or a bare `key`); among them
 * `userdb_mail=LOCATION` (or `mail=`) sets the mail location and a bare
 * `nologin` disables logins (mail is still delivered).
 *
 * Aliases file, one alias a line (`#` starts a comment line):
 *
 *	sales@example.org: alice@example.org, bob@example.org
 *	@example.org: postmaster@example.org        (catch-all)
 *
 * Names and addresses are case-insensitive (as in Postfix): the table
 * keeps them in lower case, which is also the canonical login name.
 *
 * A bad line is logged as `FILE:LINE: reason` and skipped; it never makes
 * loading fail.  A table is never changed once built: a reload builds a
 * new one, so readers need no lock beyond taking a reference.
 */
#ifndef AUTH_PASSWD_FILE_H
#define AUTH_PASSWD_FILE_H

#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <postern/postern.h>

/* Logging, implemented by auth_passwd.c (thread-safe). */
void auth_passwd_log(int level, const char *fmt, ...) POSTERN_PRINTF(2, 3);

/* What a file looked like when read: a change in any of these means
 * "read it again". */
struct pf_stamp {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct pf_user {
	const char *name;     /* lower case; the canonical login */
	const char *password; /* the field as written ("" for none) */
	const char *hash;     /* after any {SCHEME} prefix */
	int scheme;           /* enum pwhash_scheme */
	uint32_t uid, gid;
	const char *home;     /* NULL when empty */
	const char *mail;     /* NULL when not set */
	size_t extra, nextra; /* extra fields: table->strs[extra...] */
	int nologin;
	unsigned line;
};

struct pf_alias {
	const char *address;    /* lower case; "@domain" for a catch-all */
	size_t targets, ntargets; /* table->strs[targets...], lower case */
	unsigned line;
};

struct pf_table {
	char *ubuf, *abuf;         /* file contents, cut into strings */
	struct pf_user *users;     /* sorted by name */
	size_t nusers;
	struct pf_alias *aliases;  /* sorted by address */
	size_t naliases;
	const char **strs;         /* extra fields and alias targets */
	size_t nstrs;
	const char **domains;      /* local domains, sorted, unique */
	size_t ndomains;
	struct pf_stamp ustamp, astamp;
	int refs;                  /* atomic; the table is freed at 0 */
};

/* Fills *st from `path` (exists = 0 when it is missing or `path` is
 * NULL).  0, or -1 with errno for another failure (then exists = -1). */
int pf_stat(const char *path, struct pf_stamp *st);
int pf_stamp_equal(const struct pf_stamp *a, const struct pf_stamp *b);

/* Reads the users file and the aliases file (`aliases` may be NULL:
 * none) into a table with one reference.  A missing file reads as
 * empty.  `domains` (lower case, may be empty) are local besides those
 * of users and aliases.  NULL after logging when a file exists but
 * cannot be read. */
struct pf_table *pf_table_load(const char *users, const char *aliases,
                               const char *const *domains, size_t ndomains);
void pf_table_free(struct pf_table *t);

/* Lookups; `key` in lower case. */
const struct pf_user *pf_find_user(const struct pf_table *t,
                                   const char *key);
const struct pf_alias *pf_find_alias(const struct pf_table *t,
                                     const char *key);
int pf_is_local_domain(const struct pf_table *t, const char *domain);

/* Copies `s` lower-cased into out[outlen]; -1 when it does not fit. */
int pf_lower(const char *s, char *out, size_t outlen);

/* Checks a user name or an alias address for the files' syntax (no
 * separators, blanks or control characters; one '@' at most, with a
 * domain after it).  `catchall`: "@domain" is allowed.  NULL when fine,
 * else the reason. */
const char *pf_check_name(const char *s, int catchall);

/* ---- rewriting -----------------------------------------------------
 *
 * pf_edit rewrites `path` atomically: under an exclusive flock on
 * PATH.lock it reads the file, replaces the first line whose key is
 * `key` by what `build` returns (a malloc'd line without newline; NULL
 * removes it), drops later lines with that key, and appends when no line
 * had it.  Other lines (comments, malformed ones) stay as they are.  The
 * new file is written beside the old one, fsynced, renamed over it (mode
 * and owner kept), and the directory fsynced.
 *
 * `build(arg, old, &line, err, errlen)` is called exactly once, with the
 * first matching line (NUL-terminated, no newline) or NULL; it returns 0,
 * or -1 with a message in err to leave the file alone. */
enum pf_kind { PF_USERS, PF_ALIASES };
typedef int (*pf_build_fn)(void *arg, const char *old, char **line,
                           char *err, size_t errlen);
int pf_edit(const char *path, enum pf_kind kind, const char *key,
            pf_build_fn build, void *arg, char *err, size_t errlen);

/* Splits a users line in place into its 8 fields (missing ones "");
 * returns the number of fields present. */
size_t pf_split_user(char *line, char *fields[8]);

#endif /* AUTH_PASSWD_FILE_H */
