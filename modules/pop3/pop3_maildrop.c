/*
 * pop3_maildrop.c - the session's numbered snapshot of the mailbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_maildrop.h"

int
pop3_maildrop_init(struct pop3_maildrop *d, uint32_t count)
{
	memset(d, 0, sizeof(*d));
	if (count == 0)
		return 0;
	d->msgs = calloc(count, sizeof(*d->msgs));
	if (d->msgs == NULL)
		return -1;
	d->count = count;
	return 0;
}

void
pop3_maildrop_set(struct pop3_maildrop *d, uint32_t n, uint32_t uid,
                  uint64_t size, uint32_t flags, const char *guid)
{
	struct pop3_msg *m;

	if (n == 0 || n > d->count)
		return;
	m = &d->msgs[n - 1];
	d->total_size -= m->size;
	m->uid = uid;
	m->size = size;
	m->seen = (flags & POSTERN_MSG_SEEN) != 0;
	m->deleted = 0;
	pop3_uidl_from_guid(guid != NULL ? guid : "", m->uidl);
	d->total_size += size;
}

void
pop3_maildrop_free(struct pop3_maildrop *d)
{
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

struct pop3_msg *
pop3_maildrop_get(struct pop3_maildrop *d, uint32_t n, enum pop3_lookup *why)
{
	struct pop3_msg *m;

	if (n == 0 || n > d->count) {
		*why = POP3_MSG_NONE;
		return NULL;
	}
	m = &d->msgs[n - 1];
	if (m->deleted) {
		*why = POP3_MSG_DELETED;
		return NULL;
	}
	*why = POP3_MSG_OK;
	return m;
}

enum pop3_lookup
pop3_maildrop_dele(struct pop3_maildrop *d, uint32_t n)
{
	enum pop3_lookup why;
	struct pop3_msg *m = pop3_maildrop_get(d, n, &why);

	if (m == NULL)
		return why;
	m->deleted = 1;
	d->ndeleted++;
	d->deleted_size += m->size;
	return POP3_MSG_OK;
}

void
pop3_maildrop_rset(struct pop3_maildrop *d)
{
	uint32_t i;

	for (i = 0; i < d->count; i++)
		d->msgs[i].deleted = 0;
	d->ndeleted = 0;
	d->deleted_size = 0;
}

uint32_t
pop3_maildrop_visible(const struct pop3_maildrop *d)
{
	return d->count - d->ndeleted;
}

uint64_t
pop3_maildrop_visible_size(const struct pop3_maildrop *d)
{
	return d->total_size - d->deleted_size;
}

int
pop3_maildrop_deleted_ranges(const struct pop3_maildrop *d,
                             struct postern_uid_range **out, size_t *n)
{
	struct postern_uid_range *r;
	size_t nr = 0;
	uint32_t i;

	*out = NULL;
	*n = 0;
	if (d->ndeleted == 0)
		return 0;
	r = malloc(d->ndeleted * sizeof(*r));
	if (r == NULL)
		return -1;
	for (i = 0; i < d->count; i++) {
		uint32_t uid = d->msgs[i].uid;

		if (!d->msgs[i].deleted)
			continue;
		if (nr > 0 && r[nr - 1].last + 1 == uid)
			r[nr - 1].last = uid;
		else {
			r[nr].first = uid;
			r[nr].last = uid;
			nr++;
		}
	}
	*out = r;
	*n = nr;
	return 0;
}

/* 64-bit FNV-1a, with a seed so that two differently seeded passes give
 * 128 bits for the hashed form of a unique-id. */
static uint64_t
fnv1a64(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

void
pop3_uidl_from_guid(const char *guid, char *out)
{
	size_t len = strlen(guid), i;
	int valid = len > 0 && len <= POP3_UIDL_MAX;

	for (i = 0; valid && i < len; i++)
		if ((unsigned char)guid[i] < 0x21 ||
		    (unsigned char)guid[i] > 0x7e)
			valid = 0;
	if (valid) {
		memcpy(out, guid, len + 1);
		return;
	}
	/* Too long, empty or with characters RFC 1939 forbids: a hash.
	 * The "h" prefix keeps it apart from the guids used as they are
	 * (those are Maildir base names, which start with a digit). */
	snprintf(out, POP3_UIDL_MAX + 1, "h%016llx%016llx",
	         (unsigned long long)fnv1a64(guid, 0),
	         (unsigned long long)fnv1a64(guid, 0x9e3779b97f4a7c15ull));
}
