/*
 * fuzz_passwd.c - libFuzzer harness for auth_passwd's users and aliases
 * files (modules/auth/passwd_file.c), fed as hostile files.
 *
 * Input: the users file, then (after the first NUL, if any) the aliases
 * file.  Both are handed to pf_table_load as files (memfd, read through
 * /proc/self/fd), as the module reads them; then every user and alias
 * of the table is looked up again by its key and must be found, and
 * every name must pass the files' own syntax check.  The table is freed
 * (the sanitizers see a leak or a double free).
 */
#include <sys/mman.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passwd_file.h"

void
auth_passwd_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

/* A file holding data[0..len), as a path; the fd in *fd. */
static int
memfile(const uint8_t *data, size_t len, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz_passwd", 0);

	if (fd < 0)
		abort();
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		abort();
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const domains[] = { "example.org" };
	const uint8_t *nul = memchr(data, '\0', size);
	size_t ulen = nul != NULL ? (size_t)(nul - data) : size, i;
	char upath[64], apath[64];
	int ufd, afd = -1;
	struct pf_table *t;

	ufd = memfile(data, ulen, upath, sizeof(upath));
	if (nul != NULL)
		afd = memfile(nul + 1, size - ulen - 1, apath, sizeof(apath));
	t = pf_table_load(upath, afd >= 0 ? apath : NULL, domains, 1);
	close(ufd);
	if (afd >= 0)
		close(afd);
	if (t == NULL)
		return 0;
	for (i = 0; i < t->nusers; i++) {
		if (pf_find_user(t, t->users[i].name) == NULL ||
		    pf_check_name(t->users[i].name, 0) != NULL ||
		    t->users[i].extra + t->users[i].nextra > t->nstrs)
			abort();
	}
	for (i = 0; i < t->naliases; i++) {
		if (pf_find_alias(t, t->aliases[i].address) == NULL ||
		    t->aliases[i].targets + t->aliases[i].ntargets > t->nstrs)
			abort();
	}
	for (i = 0; i < t->ndomains; i++)
		if (!pf_is_local_domain(t, t->domains[i]))
			abort();
	pf_table_free(t);
	return 0;
}
