/*
 * imap_fetch.c - FETCH and UID FETCH (RFC 3501 6.4.5, 7.4.2), with
 * CHANGEDSINCE and VANISHED (RFC 7162).
 *
 * The items are parsed on the loop into a list; the messages are read
 * on job threads in steps of about `fetch_batch` octets of output.
 * After each step the output goes to the connection; the next step
 * starts at once when the client keeps up, or when the output queue
 * drains (on_drain) when it does not, so a FETCH 1:* BODY[] of a huge
 * mailbox never holds more than a step in memory.
 *
 * Sections that need the MIME structure (part numbers, .MIME, ENVELOPE,
 * BODY, BODYSTRUCTURE) go through imap_mime.h; the top-level ones are
 * served from the message's sizes and its header as the store gives
 * them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "imap_mime.h"

#define FETCH_MAX_PARTS 32
#define FETCH_MAX_FIELDS 128

enum fetch_kind {
	FI_UID,
	FI_FLAGS,
	FI_INTERNALDATE,
	FI_SIZE,
	FI_ENVELOPE,
	FI_BODY,          /* BODY without a section: BODYSTRUCTURE lite */
	FI_BODYSTRUCTURE,
	FI_MODSEQ,
	FI_SECTION,       /* BODY[...], BODY.PEEK[...], RFC822* */
};

struct fetch_item {
	enum fetch_kind kind;
	/* FI_SECTION */
	uint32_t parts[FETCH_MAX_PARTS];
	size_t nparts;
	enum imap_section_what what;
	int fields;          /* 0, 1 HEADER.FIELDS, 2 HEADER.FIELDS.NOT */
	char **names;
	size_t nnames;
	int partial;
	uint64_t pstart, plen;
	int sets_seen;
	char *label;         /* what the response calls it */
	struct fetch_item *next;
};

struct fetch_arg {
	struct fetch_item *items;
	struct postern_uid_range *uids;
	size_t nuids;
	int by_uid;
	uint64_t changedsince;
	int vanished;
	int sets_seen;
	int needs_mime, needs_msg;
	uint32_t next_seq;      /* where the next step starts */
	int finished;
	int expunged_seen;      /* a message had gone */
	unsigned char *was_unseen; /* per sequence number, for FLAGS */
	uint32_t nwas;
};

/* ---- parsing ----------------------------------------------------------*/

static struct fetch_item *
item_new(struct imap_cmd *c, enum fetch_kind kind)
{
	struct fetch_item *it = imap_host->pool_alloc(c->pool, sizeof(*it));

	it->kind = kind;
	return it;
}

/* The inside of "[...]" after BODY / BODY.PEEK. */
static int
parse_section(struct imap_cmd *c, struct fetch_item *it)
{
	struct imap_args *a = &c->args;
	struct imap_str w, f;
	uint32_t n;

	while (imap_arg_peek(a) >= '1' && imap_arg_peek(a) <= '9') {
		if (it->nparts == FETCH_MAX_PARTS ||
		    imap_arg_nznumber(a, &n) < 0)
			return -1;
		it->parts[it->nparts++] = n;
		if (!imap_arg_try_char(a, '.'))
			break;
		if (!(imap_arg_peek(a) >= '1' && imap_arg_peek(a) <= '9'))
			goto keyword;
	}
	if (imap_arg_peek(a) == ']')
		return 0;
	if (it->nparts > 0 && a->p[-1] != '.') {
		a->error = "bad section";
		return -1;
	}
keyword:
	{
		char *s = a->p;
		while (a->p < a->end && *a->p != ']' && *a->p != ' ')
			a->p++;
		w.s = s;
		w.len = (size_t)(a->p - s);
	}
	if (imap_str_is(&w, "HEADER"))
		it->what = IMAP_SECTION_HEADER;
	else if (imap_str_is(&w, "TEXT"))
		it->what = IMAP_SECTION_TEXT;
	else if (imap_str_is(&w, "MIME") && it->nparts > 0)
		it->what = IMAP_SECTION_MIME;
	else if (imap_str_is(&w, "HEADER.FIELDS") ||
	         imap_str_is(&w, "HEADER.FIELDS.NOT")) {
		it->what = IMAP_SECTION_HEADER;
		it->fields = w.len == 13 ? 1 : 2;
		it->names = imap_host->pool_alloc(
			c->pool, FETCH_MAX_FIELDS * sizeof(char *));
		if (imap_arg_sp(a) < 0 || imap_arg_char(a, '(') < 0)
			return -1;
		do {
			if (it->nnames == FETCH_MAX_FIELDS ||
			    imap_arg_astring(a, &f) < 0)
				return -1;
			it->names[it->nnames++] =
				imap_host->pool_strndup(c->pool, f.s, f.len);
		} while (imap_arg_try_char(a, ' '));
		if (imap_arg_char(a, ')') < 0)
			return -1;
	} else {
		a->error = "unknown section";
		return -1;
	}
	return 0;
}

static int
is_atom(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("(){%*\"\\]", *s) != NULL)
			return 0;
	return 1;
}

/* The response's name for a section item: BODY[1.HEADER.FIELDS (A B)]. */
static void
section_label(struct imap_cmd *c, struct fetch_item *it)
{
	struct imap_buf b = { 0 };
	size_t i;
	static const char *const what[] = { "", "HEADER", "TEXT", "MIME" };

	imap_buf_str(&b, "BODY[");
	for (i = 0; i < it->nparts; i++)
		imap_buf_printf(&b, "%s%u", i > 0 ? "." : "", it->parts[i]);
	if (it->what != IMAP_SECTION_ALL || it->fields) {
		if (it->nparts > 0)
			imap_buf_str(&b, ".");
		imap_buf_str(&b, it->fields == 1 ? "HEADER.FIELDS" :
		                 it->fields == 2 ? "HEADER.FIELDS.NOT" :
		                                   what[it->what]);
	}
	if (it->fields) {
		imap_buf_str(&b, " (");
		for (i = 0; i < it->nnames; i++) {
			if (i > 0)
				imap_buf_str(&b, " ");
			if (is_atom(it->names[i]))
				imap_buf_str(&b, it->names[i]);
			else
				imap_buf_string(&b, it->names[i],
				                strlen(it->names[i]));
		}
		imap_buf_str(&b, ")");
	}
	imap_buf_str(&b, "]");
	if (it->partial)
		imap_buf_printf(&b, "<%llu>", (unsigned long long)it->pstart);
	it->label = imap_host->pool_strndup(c->pool, b.p, b.len);
	imap_buf_free(&b);
}

static struct fetch_item *
parse_item(struct imap_cmd *c, struct fetch_arg *fa)
{
	struct imap_args *a = &c->args;
	struct imap_str w;
	struct fetch_item *it;
	int peek;

	if (imap_arg_fetch_atom(a, &w) < 0)
		return NULL;
	if (imap_str_is(&w, "UID"))
		return item_new(c, FI_UID);
	if (imap_str_is(&w, "FLAGS"))
		return item_new(c, FI_FLAGS);
	if (imap_str_is(&w, "INTERNALDATE"))
		return item_new(c, FI_INTERNALDATE);
	if (imap_str_is(&w, "RFC822.SIZE"))
		return item_new(c, FI_SIZE);
	if (imap_str_is(&w, "ENVELOPE")) {
		fa->needs_mime = 1;
		return item_new(c, FI_ENVELOPE);
	}
	if (imap_str_is(&w, "BODYSTRUCTURE")) {
		fa->needs_mime = 1;
		return item_new(c, FI_BODYSTRUCTURE);
	}
	if (imap_str_is(&w, "MODSEQ")) {
		c->s->condstore = 1;
		return item_new(c, FI_MODSEQ);
	}
	if (imap_str_is(&w, "RFC822") || imap_str_is(&w, "RFC822.HEADER") ||
	    imap_str_is(&w, "RFC822.TEXT")) {
		it = item_new(c, FI_SECTION);
		it->what = w.len == 6 ? IMAP_SECTION_ALL :
		           w.len == 13 ? IMAP_SECTION_HEADER : IMAP_SECTION_TEXT;
		it->sets_seen = it->what != IMAP_SECTION_HEADER;
		it->label = imap_host->pool_strndup(c->pool, w.s, w.len);
		for (char *p = it->label; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 32);
		fa->needs_msg = 1;
		return it;
	}
	if (!imap_str_is(&w, "BODY") && !imap_str_is(&w, "BODY.PEEK")) {
		a->error = "unknown fetch item";
		return NULL;
	}
	peek = w.len == 9;
	if (!imap_arg_try_char(a, '[')) {
		if (peek) {
			a->error = "BODY.PEEK needs a section";
			return NULL;
		}
		fa->needs_mime = 1;
		return item_new(c, FI_BODY);
	}
	it = item_new(c, FI_SECTION);
	it->sets_seen = !peek;
	if (parse_section(c, it) < 0 || imap_arg_char(a, ']') < 0)
		return NULL;
	if (imap_arg_try_char(a, '<')) {
		uint32_t start, len;
		if (imap_arg_number(a, &start) < 0 ||
		    imap_arg_char(a, '.') < 0 || imap_arg_nznumber(a, &len) < 0 ||
		    imap_arg_char(a, '>') < 0)
			return NULL;
		it->partial = 1;
		it->pstart = start;
		it->plen = len;
	}
	if (it->nparts > 0)
		fa->needs_mime = 1;
	fa->needs_msg = 1;
	section_label(c, it);
	return it;
}

static int
add_macro(struct imap_cmd *c, struct fetch_item ***tail,
          const enum fetch_kind *kinds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		**tail = item_new(c, kinds[i]);
		*tail = &(**tail)->next;
	}
	return 0;
}

static int
parse_items(struct imap_cmd *c, struct fetch_arg *fa)
{
	static const enum fetch_kind fast[] = { FI_FLAGS, FI_INTERNALDATE,
		FI_SIZE };
	static const enum fetch_kind all[] = { FI_FLAGS, FI_INTERNALDATE,
		FI_SIZE, FI_ENVELOPE };
	static const enum fetch_kind full[] = { FI_FLAGS, FI_INTERNALDATE,
		FI_SIZE, FI_ENVELOPE, FI_BODY };
	struct imap_args *a = &c->args;
	struct fetch_item **tail = &fa->items, *it;
	char *save = a->p;
	struct imap_str w;

	if (imap_arg_atom(a, &w) == 0 && (imap_arg_at_end(a) ||
	                                  imap_arg_peek(a) == ' ')) {
		if (imap_str_is(&w, "FAST"))
			return add_macro(c, &tail, fast, 3);
		if (imap_str_is(&w, "ALL")) {
			fa->needs_mime = 1;
			return add_macro(c, &tail, all, 4);
		}
		if (imap_str_is(&w, "FULL")) {
			fa->needs_mime = 1;
			return add_macro(c, &tail, full, 5);
		}
	}
	a->p = save;
	a->error = NULL;
	if (!imap_arg_try_char(a, '(')) {
		if ((it = parse_item(c, fa)) == NULL)
			return -1;
		*tail = it;
		return 0;
	}
	do {
		if ((it = parse_item(c, fa)) == NULL)
			return -1;
		*tail = it;
		tail = &it->next;
	} while (imap_arg_try_char(a, ' '));
	return imap_arg_char(a, ')');
}

/* " (CHANGEDSINCE n [VANISHED])" */
static int
parse_modifiers(struct imap_cmd *c, struct fetch_arg *fa)
{
	struct imap_args *a = &c->args;
	struct imap_str w;

	if (imap_arg_char(a, '(') < 0)
		return -1;
	do {
		if (imap_arg_atom(a, &w) < 0)
			return -1;
		if (imap_str_is(&w, "CHANGEDSINCE")) {
			if (imap_arg_sp(a) < 0 ||
			    imap_arg_number64(a, &fa->changedsince) < 0)
				return -1;
			c->s->condstore = 1;
		} else if (imap_str_is(&w, "VANISHED") && c->uid &&
		           (c->s->enabled & IMAP_ENABLED_QRESYNC)) {
			fa->vanished = 1;
		} else {
			a->error = "unknown FETCH modifier";
			return -1;
		}
	} while (imap_arg_try_char(a, ' '));
	if (fa->vanished && fa->changedsince == 0) {
		a->error = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return imap_arg_char(a, ')');
}

/* ---- formatting -------------------------------------------------------*/

static void
format_internaldate(struct imap_buf *out, int64_t when, int tz)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(when + (int64_t)tz * 60);
	struct tm tm;
	int atz = tz < 0 ? -tz : tz;

	gmtime_r(&t, &tm);
	imap_buf_printf(out, "INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d "
	                     "%c%02d%02d\"", tm.tm_mday, months[tm.tm_mon],
	                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                tz < 0 ? '-' : '+', atz / 60, atz % 60);
}

/* Reads [start, start+len) of the message into `out` as a literal. */
static int
emit_range(struct imap_job *j, postern_msg_t *msg, uint64_t start,
           uint64_t len)
{
	size_t chunk;
	char *room;
	ssize_t n;

	imap_buf_printf(&j->out, "{%llu}\r\n", (unsigned long long)len);
	while (len > 0) {
		/* Straight into the output buffer, at most 1 MiB a read. */
		chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
		room = imap_buf_room(&j->out, chunk);
		n = imap_storage->msg_read(msg, start, room, chunk, &j->err);
		if (n <= 0) {
			if (n == 0) {
				j->err.code = POSTERN_SE_CORRUPT;
				snprintf(j->err.text, sizeof(j->err.text),
				         "message shorter than its size");
			}
			return -1;
		}
		imap_buf_commit(&j->out, (size_t)n);
		start += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int
field_listed(const struct fetch_item *it, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < it->nnames; i++)
		if (strlen(it->names[i]) == len &&
		    strncasecmp(it->names[i], name, len) == 0)
			return 1;
	return 0;
}

/* HEADER.FIELDS (.NOT) of the header hdr[0..len): the matching fields
 * with their continuation lines, then the empty line. */
static void
filter_header(const struct fetch_item *it, const char *hdr, size_t len,
              struct imap_buf *res)
{
	size_t i = 0, end, name_len;
	int keep = 0;
	const char *colon;

	while (i < len) {
		const char *lf = memchr(hdr + i, '\n', len - i);
		end = lf != NULL ? (size_t)(lf - hdr) + 1 : len;
		if (end - i <= 2 && (hdr[i] == '\r' || hdr[i] == '\n'))
			break; /* the empty line */
		if (hdr[i] != ' ' && hdr[i] != '\t') {
			colon = memchr(hdr + i, ':', end - i);
			name_len = colon != NULL ? (size_t)(colon - hdr) - i
			                         : 0;
			while (name_len > 0 && (hdr[i + name_len - 1] == ' ' ||
			                        hdr[i + name_len - 1] == '\t'))
				name_len--;
			keep = colon != NULL &&
			       field_listed(it, hdr + i, name_len) ==
			               (it->fields == 1);
		}
		if (keep)
			imap_buf_add(res, hdr + i, end - i);
		i = end;
	}
	imap_buf_add(res, "\r\n", 2);
}

static char *
read_range(struct imap_job *j, postern_msg_t *msg, uint64_t start,
           uint64_t len)
{
	char *buf = imap_host->pool_alloc(j->pool, len + 1);
	uint64_t got = 0;
	ssize_t n;

	while (got < len) {
		n = imap_storage->msg_read(msg, start + got, buf + got,
		                           len - got, &j->err);
		if (n <= 0)
			return NULL;
		got += (uint64_t)n;
	}
	return buf;
}

static int
emit_section(struct imap_job *j, const struct fetch_item *it,
             postern_msg_t *msg, const struct postern_msg_size *sz,
             const struct imap_mime *m)
{
	uint64_t start = 0, len = sz->size;
	struct imap_buf filtered = { 0 };
	char *hdr;

	imap_buf_str(&j->out, it->label);
	imap_buf_str(&j->out, " ");
	if (it->nparts > 0 || it->what == IMAP_SECTION_MIME) {
		if (m == NULL || imap_mime_section(m, it->parts, it->nparts,
		                                   it->what, &start,
		                                   &len) < 0) {
			imap_buf_str(&j->out, "\"\"");
			return 0;
		}
	} else if (it->what == IMAP_SECTION_HEADER) {
		len = sz->header_size;
	} else if (it->what == IMAP_SECTION_TEXT) {
		start = sz->header_size;
		len = sz->size - sz->header_size;
	}
	if (it->fields) {
		if ((hdr = read_range(j, msg, start, len)) == NULL)
			return -1;
		filter_header(it, hdr, (size_t)len, &filtered);
		start = 0;
		len = filtered.len;
	}
	if (it->partial) {
		if (it->pstart >= len) {
			len = 0;
		} else {
			start += it->pstart;
			len -= it->pstart;
			if (len > it->plen)
				len = it->plen;
		}
	}
	if (it->fields) {
		imap_buf_printf(&j->out, "{%llu}\r\n", (unsigned long long)len);
		imap_buf_add(&j->out, filtered.p + start, (size_t)len);
		imap_buf_free(&filtered);
		return 0;
	}
	return emit_range(j, msg, start, len);
}

/* One message's "* n FETCH (...)".  -1 stops the FETCH (j->err set);
 * 1 means the message had gone (skipped). */
static int
fetch_one(struct imap_job *j, struct fetch_arg *fa, uint32_t seq,
          const struct postern_message_info *mi,
          const struct postern_mailbox_status *stp)
{
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = *stp;
	struct postern_msg_size sz = { 0 };
	postern_msg_t *msg = NULL;
	const struct imap_mime *m = NULL;
	const struct fetch_item *it;
	size_t mark = j->out.len;
	int first = 1, rc = 0, uid_done = 0, flags_done = 0, modseq_done = 0;
	char *text;

	struct postern_message_info info = *mi;
	uint32_t *kw = imap_host->pool_alloc(j->pool, (mi->nkeywords + 1) *
	                                             sizeof(*kw));

	/* message() reuses one struct: keep a copy while the store is
	 * called for the content. */
	if (mi->nkeywords > 0)
		memcpy(kw, mi->keywords, mi->nkeywords * sizeof(*kw));
	info.keywords = kw;
	mi = &info;
	if (fa->needs_msg &&
	    imap_storage->msg_open(s->mb, mi->uid, &msg, &sz, &j->err) < 0)
		return j->err.code == POSTERN_SE_EXPUNGED ? 1 : -1;
	if (fa->needs_mime) {
		m = imap_mime_load(imap_storage, s->mb, mi->uid, j->pool,
		                   &j->err);
		if (m == NULL) {
			rc = j->err.code == POSTERN_SE_EXPUNGED ? 1 : -1;
			goto out;
		}
	}
	imap_buf_printf(&j->out, "* %u FETCH (", seq);
#define SEP() do { if (!first) imap_buf_str(&j->out, " "); first = 0; } while (0)
	for (it = fa->items; it != NULL; it = it->next) {
		switch (it->kind) {
		case FI_UID:
			if (uid_done++)
				continue;
			SEP();
			imap_buf_printf(&j->out, "UID %u", mi->uid);
			break;
		case FI_FLAGS:
			if (flags_done++)
				continue;
			SEP();
			imap_buf_str(&j->out, "FLAGS ");
			imap_buf_flags(&j->out, mi->flags, mi->keywords,
			               mi->nkeywords, st.keywords,
			               st.nkeywords);
			break;
		case FI_INTERNALDATE:
			SEP();
			format_internaldate(&j->out, mi->internal_date,
			                    mi->internal_tz);
			break;
		case FI_SIZE:
			SEP();
			imap_buf_printf(&j->out, "RFC822.SIZE %llu",
			                (unsigned long long)mi->size);
			break;
		case FI_MODSEQ:
			if (modseq_done++)
				continue;
			SEP();
			imap_buf_printf(&j->out, "MODSEQ (%llu)",
			                (unsigned long long)mi->modseq);
			break;
		case FI_ENVELOPE:
			SEP();
			text = imap_mime_envelope(m, j->pool);
			imap_buf_str(&j->out, "ENVELOPE ");
			imap_buf_str(&j->out, text != NULL ? text : "NIL");
			break;
		case FI_BODY:
		case FI_BODYSTRUCTURE:
			SEP();
			text = imap_mime_bodystructure(
				m, it->kind == FI_BODYSTRUCTURE, j->pool);
			imap_buf_str(&j->out, it->kind == FI_BODY ? "BODY " :
			                      "BODYSTRUCTURE ");
			imap_buf_str(&j->out, text != NULL ? text : "NIL");
			break;
		case FI_SECTION:
			SEP();
			if (emit_section(j, it, msg, &sz, m) < 0) {
				rc = j->err.code == POSTERN_SE_EXPUNGED ? 1
				                                       : -1;
				goto out;
			}
			break;
		}
	}
	/* UID FETCH always says UID; CHANGEDSINCE always MODSEQ; a FETCH
	 * that set \Seen says the new FLAGS (RFC 3501 6.4.5). */
	if (fa->by_uid && !uid_done) {
		SEP();
		imap_buf_printf(&j->out, "UID %u", mi->uid);
	}
	if (fa->changedsince > 0 && !modseq_done) {
		SEP();
		imap_buf_printf(&j->out, "MODSEQ (%llu)",
		                (unsigned long long)mi->modseq);
	}
	if (!flags_done && fa->was_unseen != NULL && seq <= fa->nwas &&
	    fa->was_unseen[seq - 1]) {
		SEP();
		imap_buf_str(&j->out, "FLAGS ");
		imap_buf_flags(&j->out, mi->flags, mi->keywords,
		               mi->nkeywords, st.keywords, st.nkeywords);
	}
#undef SEP
	imap_buf_str(&j->out, ")\r\n");
out:
	if (rc != 0)
		j->out.len = mark;
	if (msg != NULL)
		imap_storage->msg_close(msg);
	return rc;
}

/* Sets \Seen on what the FETCH reads, noting who lacked it. */
static void
set_seen(struct imap_job *j, struct fetch_arg *fa)
{
	struct imap_session *s = j->s;
	uint32_t count = imap_storage->count(s->mb), seq, *failed;
	size_t nfailed;
	const struct postern_message_info *mi;
	struct postern_storage_err err;
	int any = 0;

	fa->was_unseen = imap_host->pool_alloc(j->pool, count + 1);
	fa->nwas = count;
	for (seq = 1; seq <= count; seq++) {
		mi = imap_storage->message(s->mb, seq);
		if (!mi->expunged && !(mi->flags & POSTERN_MSG_SEEN) &&
		    postern_uid_ranges_have(fa->uids, fa->nuids, mi->uid)) {
			fa->was_unseen[seq - 1] = 1;
			any = 1;
		}
	}
	if (any && imap_storage->store(s->mb, fa->uids, fa->nuids,
	                               POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	                               NULL, 0, 0, j->pool, &failed,
	                               &nfailed, &err) < 0)
		imap_host->log(imap_self, POSTERN_LOG_WARNING,
		               "FETCH: setting \\Seen for %s failed: %s",
		               s->user, err.text);
}

/* VANISHED (EARLIER): UIDs of the set that are not in the view. */
static void
format_vanished_earlier(struct imap_job *j, struct fetch_arg *fa)
{
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	uint32_t *gone = NULL, u;
	size_t n = 0, cap = 0, i;

	imap_storage->status(s->mb, &st);
	for (i = 0; i < fa->nuids; i++) {
		uint32_t last = fa->uids[i].last;
		if (last >= st.uidnext)
			last = st.uidnext - 1;
		for (u = fa->uids[i].first; u <= last && u != 0; u++) {
			if (imap_storage->seq_of_uid(s->mb, u) != 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				if ((gone = realloc(gone, cap * sizeof(*gone)))
				    == NULL)
					abort();
			}
			gone[n++] = u;
		}
	}
	if (n > 0) {
		imap_buf_str(&j->out, "* VANISHED (EARLIER) ");
		imap_buf_uidset(&j->out, gone, n);
		imap_buf_str(&j->out, "\r\n");
	}
	free(gone);
}

static void
fetch_work(struct imap_job *j)
{
	struct fetch_arg *fa = j->arg;
	struct imap_session *s = j->s;
	uint32_t count = imap_storage->count(s->mb), seq;
	const struct postern_message_info *mi;
	struct postern_sync_changes ch;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	postern_pool_t *keep, *scratch;
	int rc;

	if (fa->next_seq == 0) {
		fa->next_seq = 1;
		if (fa->vanished)
			format_vanished_earlier(j, fa);
		if (fa->sets_seen && !s->readonly)
			set_seen(j, fa);
	}
	/* Once per step: the store's status() walks the whole view. */
	imap_storage->status(s->mb, &st);
	/* What one message needs (its MIME tree, a header read for
	 * HEADER.FIELDS, the ENVELOPE text) comes from a scratch pool
	 * cleared after it: a FETCH of 10,000 messages would otherwise hold
	 * every tree until the FETCH ends. */
	keep = j->pool;
	scratch = imap_host->pool_create_limited(
		16384, (size_t)imap_cfg.message_memory);
	for (seq = fa->next_seq; seq <= count; seq++) {
		if (j->out.len >= (size_t)imap_cfg.fetch_batch) {
			fa->next_seq = seq;
			j->rc = 0;
			imap_host->pool_destroy(scratch);
			return;
		}
		mi = imap_storage->message(s->mb, seq);
		if (!postern_uid_ranges_have(fa->uids, fa->nuids, mi->uid))
			continue;
		if (fa->changedsince > 0 && mi->modseq <= fa->changedsince)
			continue;
		if (mi->expunged) {
			fa->expunged_seen = 1;
			continue;
		}
		j->pool = scratch;
		rc = fetch_one(j, fa, seq, mi, &st);
		j->pool = keep;
		imap_host->pool_clear(scratch);
		if (rc < 0) {
			j->rc = -1;
			fa->finished = 1;
			imap_host->pool_destroy(scratch);
			return;
		}
		if (rc > 0)
			fa->expunged_seen = 1;
	}
	imap_host->pool_destroy(scratch);
	fa->finished = 1;
	j->rc = 0;
	/* The updates FETCH may carry: no EXPUNGE (RFC 3501 7.4.1). */
	if (imap_storage->sync(s->mb, POSTERN_SYNC_NO_EXPUNGE, j->pool, &ch,
	                       &j->err) == 0)
		imap_sync_format(s, &j->out, &ch, j->pool);
}

static void fetch_next(struct imap_session *s);


static void
fetch_done(struct imap_job *j)
{
	struct fetch_arg *fa = j->arg;
	struct imap_session *s = j->s;
	struct imap_job *next;

	if (fa->finished) {
		if (j->rc < 0)
			imap_reply_storage_err(s, j->tag, &j->err);
		else if (fa->expunged_seen)
			imap_reply(s, j->tag, "NO", "[EXPUNGEISSUED] Some "
			                            "messages were expunged");
		else
			imap_reply(s, j->tag, "OK", "Fetch completed");
		return;
	}
	/* Another step: a new job that takes over the state. */
	next = imap_job_new(s, j->tag, 0);
	next->arg = fa;
	/* The state lives in j's pool: hand the pool over. */
	{
		postern_pool_t *p = next->pool;
		next->pool = j->pool;
		j->pool = p;
	}
	if (imap_host->conn_output_pending(s->conn) >
	    (size_t)imap_cfg.fetch_batch) {
		/* Not submitted yet (handle NULL): on_close frees it. */
		if (imap_host->log_enabled(POSTERN_LOG_DEBUG))
			imap_host->conn_log(s->conn, POSTERN_LOG_DEBUG,
			                    "FETCH waits for the client to "
			                    "read %zu octets",
			                    imap_host->conn_output_pending(
			                            s->conn));
		s->on_drain = fetch_next;
		/* Keep the session busy: no command runs meanwhile. */
		s->job = next;
		imap_host->conn_pause(s->conn);
		return;
	}
	imap_job_run(next, fetch_work, fetch_done);
}

static void
fetch_next(struct imap_session *s)
{
	struct imap_job *j = s->job;

	/* The step fetch_done left waiting in s->job. */
	if (j == NULL || s->closed || j->handle != NULL)
		return;
	imap_job_run(j, fetch_work, fetch_done);
}

void
imap_cmd_fetch(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_seqset set;
	struct fetch_arg tmp = { 0 }, *fa;
	struct postern_uid_range *u;
	struct imap_job *j;
	struct fetch_item *it;
	size_t n;

	if (imap_arg_sp(a) < 0 || imap_arg_seqset(a, &set) < 0 ||
	    imap_arg_sp(a) < 0 || parse_items(c, &tmp) < 0 ||
	    (imap_arg_try_char(a, ' ') && parse_modifiers(c, &tmp) < 0) ||
	    imap_arg_end(a) < 0) {
		imap_reply(c->s, c->tag, "BAD", "FETCH: %s",
		           a->error != NULL ? a->error : "invalid arguments");
		return;
	}
	if (imap_set_to_uids(c, &set, c->uid, &u, &n) < 0)
		return;
	for (it = tmp.items; it != NULL; it = it->next)
		if (it->sets_seen)
			tmp.sets_seen = 1;
	tmp.by_uid = c->uid;
	j = imap_job_new(c->s, c->tag, sizeof(*fa));
	fa = j->arg;
	*fa = tmp;
	fa->uids = imap_host->pool_alloc(j->pool, (n + 1) * sizeof(*u));
	if (n > 0)
		memcpy(fa->uids, u, n * sizeof(*u));
	fa->nuids = n;
	/* The items stay in the command's pool, which lives until the
	 * command is finished (after the last step). */
	imap_job_run(j, fetch_work, fetch_done);
}
