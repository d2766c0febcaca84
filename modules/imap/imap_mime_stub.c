/*
 * imap_mime_stub.c - stands in for imap_mime.c until the MIME parser
 * (postern/mime.h, host ABI 1.3) lands: every function reports that the
 * MIME structure is not available yet, so FETCH ENVELOPE / BODYSTRUCTURE
 * / BODY[1] and SEARCH on headers, bodies and Date answer NO instead of
 * guessing.  Replaced by imap_mime.c at the merge.
 */
#include <stdio.h>

#include "imap_mime.h"

static void
not_yet(struct postern_storage_err *err)
{
	if (err == NULL)
		return;
	err->code = POSTERN_SE_NOTSUPPORTED;
	snprintf(err->text, sizeof(err->text),
	         "MIME structure not available yet");
}

void
imap_mime_init(const struct postern_host *host, postern_module_t *self)
{
	(void)host;
	(void)self;
}

const struct imap_mime *
imap_mime_load(const struct postern_storage *st, postern_mailbox_t *mb,
               uint32_t uid, postern_pool_t *pool,
               struct postern_storage_err *err)
{
	(void)st;
	(void)mb;
	(void)uid;
	(void)pool;
	not_yet(err);
	return NULL;
}

char *
imap_mime_envelope(const struct imap_mime *m, postern_pool_t *pool)
{
	(void)m;
	(void)pool;
	return NULL;
}

char *
imap_mime_bodystructure(const struct imap_mime *m, int extended,
                        postern_pool_t *pool)
{
	(void)m;
	(void)extended;
	(void)pool;
	return NULL;
}

int
imap_mime_section(const struct imap_mime *m, const uint32_t *parts,
                  size_t nparts, enum imap_section_what what,
                  uint64_t *start, uint64_t *len)
{
	(void)m;
	(void)parts;
	(void)nparts;
	(void)what;
	(void)start;
	(void)len;
	return -1;
}

int64_t
imap_mime_date(const struct imap_mime *m)
{
	(void)m;
	return -1;
}

int
imap_mime_header_matches(const char *hdr, size_t len, const char *field,
                         const char *needle, postern_pool_t *pool)
{
	(void)hdr;
	(void)len;
	(void)field;
	(void)needle;
	(void)pool;
	return -1;
}

int
imap_mime_search_text(const struct postern_storage *st,
                      postern_mailbox_t *mb, uint32_t uid,
                      const struct imap_mime *m, const char *needle,
                      int with_header, postern_pool_t *pool,
                      struct postern_storage_err *err)
{
	(void)st;
	(void)mb;
	(void)uid;
	(void)m;
	(void)needle;
	(void)with_header;
	(void)pool;
	not_yet(err);
	return -1;
}
