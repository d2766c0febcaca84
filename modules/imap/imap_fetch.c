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
#define FETCH_MAX_FIELDS IMAP_FIELDS_MAX   /* as IMAP URLs take */
/* Octets of parts a step decodes to measure them (BINARY.SIZE, the
 * length of BINARY[]) before it ends after its message, as SEARCH's
 * steps end after 8 MiB read: a FETCH 1:* BINARY.SIZE[1] makes little
 * output, so the output alone would not end its steps. */
#define FETCH_STEP_DECODE (8u << 20)
/* A range of the message at least this long (a BODY[] of a large
 * message, a big attachment's part) goes out through the host's stream
 * (postern/stream.h) rather than through the step's output buffer: it
 * is not copied into a step, and a step's job is not held per
 * fetch_batch of it. */
#define FETCH_STREAM_MIN (128u * 1024)

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
	int binary;          /* BINARY (RFC 3516): 1 BINARY[], 2 .SIZE */
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
	int on_loop;            /* run here: the view is current, no sync */
	postern_msg_t *ready;   /* opened on the loop (msg_open_nowait) */
	uint32_t ready_uid;
	struct postern_msg_size ready_sz;
	uint32_t next_seq;      /* where the next step starts */
	int finished;
	unsigned char *was_unseen; /* per sequence number, for FLAGS */
	uint32_t nwas;
	/* The message being sent (see fetch_plan). */
	postern_pool_t *msg_pool;   /* its plan; cleared after it */
	struct imap_buf acc;        /* text being collected (malloc'd) */
	struct fetch_seg *segs, **tail;
	struct fetch_seg *cur;      /* the segment being sent, or NULL */
	uint64_t cur_off;           /* octets of cur already sent */
	uint32_t cur_uid;
	int broken;                 /* failed in the middle of a message */
	/* NOTIFY's MessageNew FETCH (imap_fetch_untagged): no tagged
	 * reply; this runs at the end instead. */
	void (*untagged_done)(struct imap_session *s);
	int unknown_cte;            /* BINARY of a part we cannot decode */
	uint64_t step_decoded;      /* octets measured in this step */
	size_t nitems;              /* items as the client wrote them */
	/* The range of fa->cur streamed by the host (fetch_stream): the
	 * message stays open for it and for the step after it. */
	postern_msg_t *stream_msg;
	uint64_t stream_from;
	struct postern_storage_err stream_err;
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

/* <start.len> after a section. */
static int
parse_partial(struct imap_args *a, struct fetch_item *it)
{
	uint32_t start, len;

	if (!imap_arg_try_char(a, '<'))
		return 0;
	if (imap_arg_number(a, &start) < 0 || imap_arg_char(a, '.') < 0 ||
	    imap_arg_nznumber(a, &len) < 0 || imap_arg_char(a, '>') < 0)
		return -1;
	it->partial = 1;
	it->pstart = start;
	it->plen = len;
	return 0;
}

/* BINARY[section-part]<partial>, BINARY.PEEK[...], BINARY.SIZE[...]
 * (RFC 3516): part numbers only. */
static struct fetch_item *
parse_binary(struct imap_cmd *c, struct fetch_arg *fa,
             const struct imap_str *w)
{
	struct imap_args *a = &c->args;
	struct fetch_item *it = item_new(c, FI_SECTION);
	struct imap_buf b = { 0 };
	uint32_t n;
	size_t i;

	it->binary = imap_str_is(w, "BINARY.SIZE") ? 2 : 1;
	it->sets_seen = imap_str_is(w, "BINARY");
	if (imap_arg_char(a, '[') < 0)
		return NULL;
	while (imap_arg_peek(a) != ']') {
		if (it->nparts == FETCH_MAX_PARTS ||
		    (it->nparts > 0 && imap_arg_char(a, '.') < 0) ||
		    imap_arg_nznumber(a, &n) < 0) {
			a->error = "bad BINARY section";
			return NULL;
		}
		it->parts[it->nparts++] = n;
	}
	a->p++;
	if (it->binary == 1 && parse_partial(a, it) < 0)
		return NULL;
	imap_buf_str(&b, it->binary == 2 ? "BINARY.SIZE[" : "BINARY[");
	for (i = 0; i < it->nparts; i++)
		imap_buf_printf(&b, "%s%u", i > 0 ? "." : "", it->parts[i]);
	imap_buf_str(&b, "]");
	if (it->partial)
		imap_buf_printf(&b, "<%llu>", (unsigned long long)it->pstart);
	it->label = imap_host->pool_strndup(c->pool, b.p, b.len);
	imap_buf_free(&b);
	fa->needs_mime = 1;
	fa->needs_msg = 1;
	return it;
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
		imap_condstore_enable(c->s);
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
	if (imap_str_is(&w, "BINARY") || imap_str_is(&w, "BINARY.PEEK") ||
	    imap_str_is(&w, "BINARY.SIZE"))
		return parse_binary(c, fa, &w);
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
	if (parse_section(c, it) < 0 || imap_arg_char(a, ']') < 0 ||
	    parse_partial(a, it) < 0)
		return NULL;
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

/* An earlier item that asks for the same as `it`, or NULL.  A section
 * is the same when its response would be: same label (parts, what,
 * field names, partial origin) and same partial length. */
static struct fetch_item *
item_same(struct fetch_item *list, const struct fetch_item *it)
{
	for (; list != NULL; list = list->next) {
		if (list->kind != it->kind)
			continue;
		if (it->kind != FI_SECTION)
			return list;
		if (strcmp(list->label, it->label) == 0 &&
		    list->partial == it->partial && list->plen == it->plen)
			return list;
	}
	return NULL;
}

/* Appends `it` unless the list asks for it already: a section asked
 * twice is read and sent once (one data item answers both; BODY[x] and
 * BODY.PEEK[x] share the label, and \Seen is set if either sets it). */
static void
add_item(struct fetch_arg *fa, struct fetch_item ***tail,
         struct fetch_item *it)
{
	struct fetch_item *same = item_same(fa->items, it);

	if (same != NULL) {
		same->sets_seen |= it->sets_seen;
		return;
	}
	**tail = it;
	*tail = &it->next;
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
		/* Counted before the item is parsed: thousands of items
		 * cost no more than the limit. */
		if (++fa->nitems > (size_t)imap_cfg.max_fetch_items) {
			a->error = "too many items";
			return -1;
		}
		if ((it = parse_item(c, fa)) == NULL)
			return -1;
		add_item(fa, &tail, it);
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
			imap_condstore_enable(c->s);
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

void
imap_buf_internaldate(struct imap_buf *out, int64_t when, int tz)
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

/*
 * A message's response is planned before a byte of it is written: the
 * small items are formatted into text segments, and each body section
 * becomes a segment that names a range of the message (or of its
 * filtered header).  The plan is then sent piece by piece, reading the
 * message in chunks, and a step may end in the middle of a literal: a
 * FETCH BODY[] of a 50 MB message holds about `fetch_batch` octets at a
 * time, not 50 MB.  The plan lives in fa->msg_pool until the message is
 * done; the message is opened again by UID when a step resumes it.
 */
enum seg_kind {
	SEG_TEXT,    /* text[0..len) */
	SEG_RANGE,   /* the message's octets [start, start + len) */
	SEG_FIELDS,  /* HEADER.FIELDS (.NOT) of the header range [start,
	                start + hlen), window [skip, skip + len) */
	SEG_DECODED, /* BINARY: the part [start, start + hlen) decoded,
	                window [skip, skip + len) of the result */
};

/* Where a BINARY decoding is (SEG_DECODED): kept across steps, so each
 * octet of the part is decoded once however many steps send it. */
struct decode_walk {
	postern_mime_decoder_t *dec; /* malloc'd by the host, or NULL */
	uint64_t in;                 /* octets of the part fed */
	uint64_t out;                /* octets of the result made */
	uint64_t from, to;           /* the window */
	struct imap_buf *dst;        /* where the window goes, or NULL */
	int nul;                     /* a NUL in the window */
};

struct fetch_seg {
	enum seg_kind kind;
	const char *text;
	uint64_t start, len;
	uint64_t hlen, skip;
	const struct fetch_item *it;
	struct imap_fields_walk walk; /* SEG_FIELDS: where sending is */
	struct decode_walk dw;       /* SEG_DECODED */
	struct fetch_seg *next;
};

/* The HEADER.FIELDS (.NOT) list of a section item, for imap_mime.h's
 * walk (imap_fields_walk), which CATENATE and URLFETCH share. */
static struct imap_fields
item_fields(const struct fetch_item *it)
{
	struct imap_fields f = { it->fields, it->names, it->nnames };

	return f;
}

/* Applies a partial <start.len> to a section of `len` octets. */
static void
apply_partial(const struct fetch_item *it, uint64_t *start, uint64_t *len)
{
	if (!it->partial)
		return;
	if (it->pstart >= *len) {
		*len = 0;
		return;
	}
	*start += it->pstart;
	*len -= it->pstart;
	if (*len > it->plen)
		*len = it->plen;
}

/* Ends the text segment being collected in fa->acc (copied into the
 * message's pool) and appends `seg` (may be NULL) after it. */
static void
plan_add(struct fetch_arg *fa, struct fetch_seg *seg)
{
	struct fetch_seg *t;

	if (fa->acc.len > 0) {
		t = imap_host->pool_alloc(fa->msg_pool, sizeof(*t));
		t->kind = SEG_TEXT;
		t->text = imap_host->pool_strndup(fa->msg_pool, fa->acc.p,
		                                  fa->acc.len);
		t->len = fa->acc.len;
		*fa->tail = t;
		fa->tail = &t->next;
		fa->acc.len = 0;
	}
	if (seg != NULL) {
		*fa->tail = seg;
		fa->tail = &seg->next;
	}
}

/* The partial of `it` applied to a section of `len` octets (a range of
 * the message from `start` for SEG_RANGE, else a window of the result
 * the segment makes), the literal announced after `prefix`, and the
 * segment planned if it sends anything. */
static void
plan_window(struct fetch_arg *fa, struct fetch_seg *seg,
            const struct fetch_item *it, uint64_t start, uint64_t len,
            const char *prefix)
{
	uint64_t skip = 0;

	if (seg->kind == SEG_RANGE) {
		apply_partial(it, &start, &len);
		seg->start = start;
	} else {
		apply_partial(it, &skip, &len);
		seg->skip = skip;
	}
	seg->len = len;
	imap_buf_printf(&fa->acc, "%s{%llu}\r\n", prefix,
	                (unsigned long long)len);
	if (len > 0)
		plan_add(fa, seg);
}

/* ---- BINARY (RFC 3516) ----------------------------------------------*/

/* What the decoder makes: counted, and the window's octets added to
 * dw->dst (when set). */
static void
decode_out(void *arg, const char *data, size_t len)
{
	struct decode_walk *dw = arg;
	uint64_t a = dw->out, b = dw->out + len;
	uint64_t lo = a > dw->from ? a : dw->from;
	uint64_t hi = b < dw->to ? b : dw->to;

	if (lo < hi) {
		if (memchr(data + (lo - a), '\0', (size_t)(hi - lo)) != NULL)
			dw->nul = 1;
		if (dw->dst != NULL)
			imap_buf_add(dw->dst, data + (lo - a), (size_t)(hi - lo));
	}
	dw->out = b;
}

/* Reads octets of the message at `off`: their count (> 0), or -1 with
 * j->err set (a read error, or the message shorter than its size). */
static ssize_t
read_some(struct imap_job *j, postern_msg_t *msg, uint64_t off, char *buf,
          size_t want)
{
	ssize_t n = imap_storage->msg_read(msg, off, buf, want, &j->err);

	if (n == 0) {
		j->err.code = POSTERN_SE_CORRUPT;
		snprintf(j->err.text, sizeof(j->err.text),
		         "message shorter than its size");
	}
	return n > 0 ? n : -1;
}

/* Feeds the part [start, start + plen) on from dw->in until the result
 * reaches `until` or the part ends (then the decoder is finished).
 * 0, or -1 on a read error (j->err set). */
static int
decode_walk(struct imap_job *j, postern_msg_t *msg, struct decode_walk *dw,
            uint64_t start, uint64_t plen, uint64_t until)
{
	char buf[16384];
	size_t want;
	ssize_t n;

	while (dw->out < until && dw->in < plen) {
		want = plen - dw->in < sizeof(buf) ? (size_t)(plen - dw->in)
		                                   : sizeof(buf);
		if ((n = read_some(j, msg, start + dw->in, buf, want)) < 0)
			return -1;
		dw->in += (uint64_t)n;
		imap_host->mime_decoder_feed(dw->dec, buf, (size_t)n);
		if (dw->in == plen)
			imap_host->mime_decoder_finish(dw->dec);
	}
	return 0;
}

/* 1 for an encoding BINARY undoes, 0 for one that is the content as it
 * is, -1 for one we do not know ([UNKNOWN-CTE]). */
static int
binary_decodes(const char *enc)
{
	if (strcmp(enc, "base64") == 0 || strcmp(enc, "quoted-printable") == 0)
		return 1;
	if (strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	    strcmp(enc, "binary") == 0)
		return 0;
	return -1;
}

/* The decoded part's length, and whether the window [from, to) of it
 * holds a NUL, with one decoding pass that keeps nothing. */
static int
decoded_measure(struct imap_job *j, struct fetch_arg *fa,
                postern_msg_t *msg, const char *enc,
                uint64_t start, uint64_t plen, uint64_t from, uint64_t to,
                uint64_t *len, int *nul)
{
	struct decode_walk dw = { .from = from, .to = to };
	int rc;

	dw.dec = imap_host->mime_decoder_create(enc, NULL, decode_out, &dw);
	if (dw.dec == NULL) {
		j->err.code = POSTERN_SE_TEMP;
		snprintf(j->err.text, sizeof(j->err.text), "out of memory");
		return -1;
	}
	rc = decode_walk(j, msg, &dw, start, plen, UINT64_MAX);
	fa->step_decoded += dw.in;
	imap_host->mime_decoder_free(dw.dec);
	*len = dw.out;
	*nul = dw.nul;
	return rc;
}

/* Whether the window `it` takes of [start, start + len) of the message,
 * sent as it is, holds a NUL octet: it then goes as a literal8 (RFC
 * 3516 4.3).  One read of the window, counted as a decoding is. */
static int
window_has_nul(struct imap_job *j, struct fetch_arg *fa,
               const struct fetch_item *it, postern_msg_t *msg,
               uint64_t start, uint64_t len, int *nul)
{
	char buf[16384];
	uint64_t off;
	ssize_t n;

	apply_partial(it, &start, &len);
	*nul = 0;
	for (off = 0; off < len && !*nul; off += (uint64_t)n) {
		n = read_some(j, msg, start + off, buf,
		              len - off < sizeof(buf) ? (size_t)(len - off)
		                                      : sizeof(buf));
		if (n < 0)
			return -1;
		*nul = memchr(buf, '\0', (size_t)n) != NULL;
	}
	fa->step_decoded += off;
	return 0;
}

/* BINARY[part]<partial> or BINARY.SIZE[part]: the part's content with
 * its transfer encoding undone.  Base64 and quoted-printable are decoded
 * twice, once for the length, once when sent (resumable across steps),
 * never held.  The literal is a literal8 (~{n}) when it holds a NUL. */
static int
plan_binary(struct imap_job *j, struct fetch_arg *fa,
            const struct fetch_item *it, postern_msg_t *msg,
            const struct postern_msg_size *sz, const struct imap_mime *m)
{
	uint64_t start = 0, plen = sz->size, len;
	const char *enc = "7bit";
	struct fetch_seg *seg;
	int decodes, nul = 0;

	/* BINARY[] is the message whatever its structure says. */
	if (it->nparts > 0 &&
	    (m == NULL || imap_mime_part_content(m, it->parts, it->nparts,
	                                         &enc, &start, &plen) < 0)) {
		/* No such part: empty, as BODY[] says it. */
		imap_buf_printf(&fa->acc, "%s %s", it->label,
		                it->binary == 2 ? "0" : "\"\"");
		return 0;
	}
	if ((decodes = binary_decodes(enc)) < 0) {
		snprintf(j->err.text, sizeof(j->err.text),
		         "cannot decode the transfer encoding %.60s", enc);
		j->err.code = POSTERN_SE_CANNOT;
		fa->unknown_cte = 1;
		return -1;
	}
	len = plen;
	if (decodes) {
		uint64_t from = it->partial ? it->pstart : 0;
		uint64_t to = it->partial && it->plen < UINT64_MAX - from ?
		              from + it->plen : UINT64_MAX;
		if (decoded_measure(j, fa, msg, enc, start, plen, from, to,
		                    &len, &nul) < 0)
			return -1;
	} else if (strcmp(enc, "binary") == 0) {
		nul = 1;
	} else if (it->binary == 1 &&
	           window_has_nul(j, fa, it, msg, start, plen, &nul) < 0) {
		/* BINARY[] (the whole message, RFC 3516 4.2: not decoded),
		 * a multipart or a 7bit/8bit part: sent as stored, in a
		 * literal8 when it holds a NUL (a message delivered by
		 * SMTP may). */
		return -1;
	}
	imap_buf_str(&fa->acc, it->label);
	if (it->binary == 2) {
		imap_buf_printf(&fa->acc, " %llu", (unsigned long long)len);
		return 0;
	}
	seg = imap_host->pool_alloc(fa->msg_pool, sizeof(*seg));
	memset(seg, 0, sizeof(*seg));
	seg->it = it;
	seg->kind = decodes ? SEG_DECODED : SEG_RANGE;
	if (decodes) {
		seg->text = imap_host->pool_strndup(fa->msg_pool, enc,
		                                    strlen(enc));
		seg->start = start;
		seg->hlen = plen;
	}
	plan_window(fa, seg, it, start, len, nul ? " ~" : " ");
	return 0;
}

/* Sends more of a SEG_DECODED window: about `want` octets. */
static int
emit_decoded(struct imap_job *j, struct fetch_seg *seg, postern_msg_t *msg,
             uint64_t sent, size_t want)
{
	struct decode_walk *dw = &seg->dw;
	uint64_t left = seg->len - sent, until;

	if (dw->dec == NULL) {
		dw->from = seg->skip;
		dw->to = seg->skip + seg->len;
		dw->dec = imap_host->mime_decoder_create(seg->text, NULL,
		                                         decode_out, dw);
		if (dw->dec == NULL) {
			j->err.code = POSTERN_SE_TEMP;
			snprintf(j->err.text, sizeof(j->err.text),
			         "out of memory");
			return -1;
		}
	}
	until = seg->skip + sent + (want < left ? want : left);
	dw->dst = &j->out;
	if (decode_walk(j, msg, dw, seg->start, seg->hlen, until) < 0) {
		dw->dst = NULL;
		return -1;
	}
	dw->dst = NULL;
	if (dw->out < until) {
		j->err.code = POSTERN_SE_CORRUPT;
		snprintf(j->err.text, sizeof(j->err.text),
		         "part changed while it was sent");
		return -1;
	}
	return 0;
}

/* The decoders of the planned message's segments. */
static void
segs_free(struct fetch_arg *fa)
{
	struct fetch_seg *seg;

	for (seg = fa->segs; seg != NULL; seg = seg->next)
		if (seg->kind == SEG_DECODED && seg->dw.dec != NULL) {
			imap_host->mime_decoder_free(seg->dw.dec);
			seg->dw.dec = NULL;
		}
}

static int
plan_section(struct imap_job *j, struct fetch_arg *fa,
             const struct fetch_item *it, postern_msg_t *msg,
             const struct postern_msg_size *sz, const struct imap_mime *m)
{
	uint64_t start = 0, len = sz->size;
	struct fetch_seg *seg;
	struct imap_hbuf hb, *h = &hb;
	struct imap_fields_walk w = { 0 };
	struct imap_fields f = item_fields(it);

	if (it->binary)
		return plan_binary(j, fa, it, msg, sz, m);
	imap_buf_str(&fa->acc, it->label);
	imap_buf_str(&fa->acc, " ");
	if (it->nparts > 0 || it->what == IMAP_SECTION_MIME) {
		if (m == NULL || imap_mime_section(m, it->parts, it->nparts,
		                                   it->what, &start,
		                                   &len) < 0) {
			imap_buf_str(&fa->acc, "\"\"");
			return 0;
		}
	} else if (it->what == IMAP_SECTION_HEADER) {
		len = sz->header_size;
	} else if (it->what == IMAP_SECTION_TEXT) {
		start = sz->header_size;
		len = sz->size - sz->header_size;
	}
	seg = imap_host->pool_alloc(fa->msg_pool, sizeof(*seg));
	seg->it = it;
	if (it->fields) {
		/* Its length is needed now, its octets when they are sent:
		 * walked twice rather than held. */
		h->st = imap_storage;
		h->msg = msg;
		h->err = &j->err;
		h->end = start + len;
		h->at = h->len = 0;
		w.pos = start;
		if (imap_fields_walk(h, &f, &w, NULL, NULL, 0,
		                     UINT64_MAX) < 0)
			return -1;
		seg->kind = SEG_FIELDS;
		seg->start = start;
		seg->hlen = len;
		seg->walk.pos = start;
		len = w.out;
	} else {
		seg->kind = SEG_RANGE;
	}
	plan_window(fa, seg, it, start, len, "");
	return 0;
}

/* Plans one message's "* n FETCH (...)" into fa->segs.  -1 stops the
 * FETCH (j->err set); 1 means the message had gone (skipped).  Nothing
 * is written yet.  *msgp is the opened message when a segment reads it. */
static int
fetch_plan(struct imap_job *j, struct fetch_arg *fa, uint32_t seq,
           const struct postern_message_info *mi,
           const struct postern_mailbox_status *stp, postern_msg_t **msgp)
{
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = *stp;
	struct postern_msg_size sz = { 0 };
	postern_msg_t *msg = NULL;
	const struct imap_mime *m = NULL;
	const struct fetch_item *it;
	struct imap_buf *out = &fa->acc;
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
	segs_free(fa);
	imap_host->pool_clear(fa->msg_pool); /* a message skipped before */
	fa->segs = NULL;
	fa->tail = &fa->segs;
	fa->acc.len = 0;
	if (fa->needs_msg && fa->ready != NULL && fa->ready_uid == mi->uid) {
		msg = fa->ready;
		sz = fa->ready_sz;
		fa->ready = NULL;
	} else if (fa->needs_msg &&
	           imap_storage->msg_open(s->mb, mi->uid, &msg, &sz,
	                                  &j->err) < 0) {
		return j->err.code == POSTERN_SE_EXPUNGED ? 1 : -1;
	}
	if (fa->needs_mime) {
		/* the message open for its sections is parsed, not a
		 * second open of it */
		struct imap_msg_ref ref = { .msg = msg };

		m = imap_mime_load(imap_storage, s->mb, mi->uid,
		                   msg != NULL ? &ref : NULL, j->pool,
		                   &j->err);
		if (m == NULL) {
			rc = j->err.code == POSTERN_SE_EXPUNGED ? 1 : -1;
			goto out;
		}
	}
	imap_buf_printf(out, "* %u FETCH (", seq);
#define SEP() do { if (!first) imap_buf_str(out, " "); first = 0; } while (0)
	for (it = fa->items; it != NULL; it = it->next) {
		switch (it->kind) {
		case FI_UID:
			if (uid_done++)
				continue;
			SEP();
			imap_buf_printf(out, "UID %u", mi->uid);
			break;
		case FI_FLAGS:
			if (flags_done++)
				continue;
			SEP();
			imap_buf_str(out, "FLAGS ");
			imap_buf_flags(out, IMAP_SHOWN_FLAGS(s, mi->flags),
			               mi->keywords, mi->nkeywords,
			               st.keywords, st.nkeywords);
			break;
		case FI_INTERNALDATE:
			SEP();
			imap_buf_internaldate(out, mi->internal_date,
			                    mi->internal_tz);
			break;
		case FI_SIZE:
			SEP();
			imap_buf_printf(out, "RFC822.SIZE %llu",
			                (unsigned long long)mi->size);
			break;
		case FI_MODSEQ:
			if (modseq_done++)
				continue;
			SEP();
			imap_buf_printf(out, "MODSEQ (%llu)",
			                (unsigned long long)mi->modseq);
			break;
		case FI_ENVELOPE:
			SEP();
			text = imap_mime_envelope(m, j->pool);
			imap_buf_str(out, "ENVELOPE ");
			imap_buf_str(out, text != NULL ? text : "NIL");
			break;
		case FI_BODY:
		case FI_BODYSTRUCTURE:
			SEP();
			text = imap_mime_bodystructure(
				m, it->kind == FI_BODYSTRUCTURE, j->pool);
			imap_buf_str(out, it->kind == FI_BODY ? "BODY " :
			                  "BODYSTRUCTURE ");
			imap_buf_str(out, text != NULL ? text : "NIL");
			break;
		case FI_SECTION:
			SEP();
			if (plan_section(j, fa, it, msg, &sz, m) < 0) {
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
		imap_buf_printf(out, "UID %u", mi->uid);
	}
	if (fa->changedsince > 0 && !modseq_done) {
		SEP();
		imap_buf_printf(out, "MODSEQ (%llu)",
		                (unsigned long long)mi->modseq);
	}
	if (!flags_done && fa->was_unseen != NULL && seq <= fa->nwas &&
	    fa->was_unseen[seq - 1]) {
		SEP();
		imap_buf_str(out, "FLAGS ");
		imap_buf_flags(out, IMAP_SHOWN_FLAGS(s, mi->flags),
		               mi->keywords, mi->nkeywords, st.keywords,
		               st.nkeywords);
	}
#undef SEP
	imap_buf_str(out, ")\r\n");
	plan_add(fa, NULL);
	fa->cur = fa->segs;
	fa->cur_off = 0;
	fa->cur_uid = mi->uid;
out:
	if (rc != 0 || fa->cur == NULL) {
		if (msg != NULL)
			imap_storage->msg_close(msg);
		msg = NULL;
	}
	*msgp = msg;
	return rc;
}

/* Sends what is left of the planned message until the step's output is
 * full: 0 when the message is done, 1 when the step is full, 2 when the
 * step ends for a long range the host streams, -1 when the message
 * could not be read (j->err set; part of it may be sent). */
static int
fetch_emit(struct imap_job *j, struct fetch_arg *fa, postern_msg_t *msg)
{
	size_t batch = (size_t)imap_cfg.fetch_batch, want;
	struct fetch_seg *seg;
	struct imap_hbuf hb, *h = &hb; /* 16 KiB: job threads have room */
	struct imap_fields f;
	uint64_t left, to, done;
	ssize_t n;
	size_t nw;

	while ((seg = fa->cur) != NULL) {
		if (j->out.len >= batch)
			return 1;
		left = seg->len - fa->cur_off;
		switch (seg->kind) {
		case SEG_TEXT:
			imap_buf_add(&j->out, seg->text + fa->cur_off,
			             (size_t)left);
			fa->cur_off = seg->len;
			break;
		case SEG_RANGE:
			if (!fa->on_loop && left >= FETCH_STREAM_MIN)
				return 2; /* the host streams it (fetch_stream) */
			/* Straight into the output buffer, no more than the
			 * step has room for (at least 16 KiB a read). */
			want = batch - j->out.len;
			if (want < 16384)
				want = 16384;
			if (want > left)
				want = (size_t)left;
			n = imap_storage->msg_read(msg, seg->start + fa->cur_off,
			                           imap_buf_room(&j->out, want),
			                           want, &j->err);
			if (n <= 0) {
				if (n == 0) {
					j->err.code = POSTERN_SE_CORRUPT;
					snprintf(j->err.text,
					         sizeof(j->err.text),
					         "message shorter than its "
					         "size");
				}
				return -1;
			}
			imap_buf_commit(&j->out, (size_t)n);
			fa->cur_off += (uint64_t)n;
			break;
		case SEG_FIELDS:
			h->st = imap_storage;
			h->msg = msg;
			h->err = &j->err;
			h->end = seg->start + seg->hlen;
			h->at = h->len = 0;
			want = batch - j->out.len;
			if (want < 16384)
				want = 16384;
			to = seg->skip + fa->cur_off +
			     (want < left ? want : left);
			f = item_fields(seg->it);
			done = seg->walk.out > seg->skip ? seg->walk.out
			                                 : seg->skip;
			nw = 0;
			if (imap_fields_walk(h, &f, &seg->walk,
			                     imap_buf_room(&j->out,
			                                   (size_t)(to - done)),
			                     &nw, seg->skip, to) < 0)
				return -1;
			imap_buf_commit(&j->out, nw);
			if (seg->walk.out < to) {
				j->err.code = POSTERN_SE_CORRUPT;
				snprintf(j->err.text, sizeof(j->err.text),
				         "header changed while it was sent");
				return -1;
			}
			fa->cur_off = to - seg->skip;
			break;
		case SEG_DECODED:
			want = batch - j->out.len;
			if (want < 16384)
				want = 16384;
			if (emit_decoded(j, seg, msg, fa->cur_off, want) < 0)
				return -1;
			to = seg->dw.out < seg->dw.to ? seg->dw.out
			                              : seg->dw.to;
			fa->cur_off = to - seg->skip;
			break;
		}
		if (fa->cur_off == seg->len) {
			fa->cur = seg->next;
			fa->cur_off = 0;
		}
	}
	return 0;
}

/* Ends the planned message: its plan goes. */
static void
fetch_msg_end(struct fetch_arg *fa, postern_msg_t **msg)
{
	if (*msg != NULL)
		imap_storage->msg_close(*msg);
	*msg = NULL;
	segs_free(fa);
	fa->cur = NULL;
	fa->segs = NULL;
	imap_host->pool_clear(fa->msg_pool);
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
		imap_log(s, POSTERN_LOG_WARNING,
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

/* RFC 2180 4.1.1: a message another session expunged, which this one
 * still shows, gets what the index still knows of it (UID, FLAGS,
 * INTERNALDATE, RFC822.SIZE, MODSEQ), its content items left out, and
 * the FETCH does not fail.  Nothing when none of those was asked. */
static void
fetch_index_only(struct imap_job *j, struct fetch_arg *fa, uint32_t seq,
                 const struct postern_mailbox_status *st)
{
	const struct postern_message_info *mi;
	const struct fetch_item *it;
	struct imap_buf items = { 0 }, *out = &items;
	int n = 0, uid = fa->by_uid, flags = 0, modseq = fa->changedsince > 0;

	if ((mi = imap_storage->message(j->s->mb, seq)) == NULL)
		return;
	for (it = fa->items; it != NULL; it = it->next) {
		uid |= it->kind == FI_UID;
		flags |= it->kind == FI_FLAGS;
		modseq |= it->kind == FI_MODSEQ;
	}
	if (uid)
		imap_buf_printf(out, "%sUID %u", n++ ? " " : "", mi->uid);
	if (flags) {
		imap_buf_str(out, n++ ? " FLAGS " : "FLAGS ");
		imap_buf_flags(out, IMAP_SHOWN_FLAGS(j->s, mi->flags),
		               mi->keywords, mi->nkeywords, st->keywords,
		               st->nkeywords);
	}
	for (it = fa->items; it != NULL; it = it->next) {
		if (it->kind == FI_INTERNALDATE) {
			if (n++)
				imap_buf_str(out, " ");
			imap_buf_internaldate(out, mi->internal_date,
			                    mi->internal_tz);
		} else if (it->kind == FI_SIZE) {
			imap_buf_printf(out, "%sRFC822.SIZE %llu",
			                n++ ? " " : "",
			                (unsigned long long)mi->size);
		}
	}
	if (modseq)
		imap_buf_printf(out, "%sMODSEQ (%llu)", n++ ? " " : "",
		                (unsigned long long)mi->modseq);
	if (n > 0) {
		imap_buf_printf(&j->out, "* %u FETCH (", seq);
		imap_buf_add(&j->out, items.p, items.len);
		imap_buf_str(&j->out, ")\r\n");
	}
	imap_buf_free(&items);
}

/* The first sequence number from `lo` on whose UID is at least `uid`,
 * count + 1 when none: UIDs ascend with sequence numbers. */
static uint32_t
seq_at_uid(postern_mailbox_t *mb, uint32_t lo, uint32_t count, uint32_t uid)
{
	uint32_t hi = count + 1, mid;

	if ((mid = imap_storage->seq_of_uid(mb, uid)) != 0)
		return mid > lo ? mid : lo;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (imap_storage->message(mb, mid)->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of the first range starting above `uid`, or n. */
static size_t
range_after(const struct postern_uid_range *r, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r[mid].first <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The next message of the set from fa->next_seq on, or 0.  Gaps in the
 * set are jumped by binary search: FETCH 1 in a large mailbox looks at
 * a few messages, not at all of them. */
static uint32_t
next_message(struct fetch_arg *fa, postern_mailbox_t *mb, uint32_t count,
             const struct postern_message_info **mip)
{
	const struct postern_message_info *mi;
	uint32_t seq = fa->next_seq;
	size_t r;

	while (seq >= 1 && seq <= count) {
		mi = imap_storage->message(mb, seq);
		if (!postern_uid_ranges_have(fa->uids, fa->nuids, mi->uid)) {
			r = range_after(fa->uids, fa->nuids, mi->uid);
			if (r == fa->nuids)
				return 0;
			seq = seq_at_uid(mb, seq + 1, count, fa->uids[r].first);
			continue;
		}
		if (fa->changedsince > 0 && mi->modseq <= fa->changedsince) {
			seq++;
			continue;
		}
		/* An expunged message this session was not told of yet is
		 * still fetched (RFC 2180 4.1.1): what the index knows. */
		*mip = mi;
		return seq;
	}
	return 0;
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
	struct postern_msg_size sz;
	postern_pool_t *keep, *scratch;
	postern_msg_t *msg = NULL;
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
	fa->step_decoded = 0;
	/* What planning one message needs (its MIME tree, the ENVELOPE
	 * text) comes from a scratch pool cleared after it: a FETCH of
	 * 10,000 messages would otherwise hold every tree until it ends. */
	keep = j->pool;
	scratch = imap_host->pool_create_limited(
		16384, (size_t)imap_cfg.message_memory);
	for (;;) {
		if (fa->cur != NULL) {
			/* A message planned in this step or an earlier one. */
			if (msg == NULL && fa->stream_msg != NULL) {
				msg = fa->stream_msg; /* streamed from */
				fa->stream_msg = NULL;
			} else if (msg == NULL && fa->needs_msg &&
			           imap_storage->msg_open(s->mb, fa->cur_uid,
			                                  &msg, &sz,
			                                  &j->err) < 0) {
				fa->broken = 1;
				break;
			}
			rc = fetch_emit(j, fa, msg);
			if (rc < 0) {
				fa->broken = 1;
				break;
			}
			if (rc == 2) {
				fa->stream_msg = msg;
				msg = NULL;
			}
			if (rc > 0)
				break;
			fetch_msg_end(fa, &msg);
		}
		if (j->out.len >= (size_t)imap_cfg.fetch_batch ||
		    fa->step_decoded >= FETCH_STEP_DECODE)
			break;
		if (imap_job_cancelled(j)) {
			/* The client left: no one reads the rest. */
			fa->finished = 1;
			break;
		}
		if ((seq = next_message(fa, s->mb, count, &mi)) == 0) {
			fa->finished = 1;
			break;
		}
		fa->next_seq = seq + 1;
		j->pool = scratch;
		rc = fetch_plan(j, fa, seq, mi, &st, &msg);
		j->pool = keep;
		imap_host->pool_clear(scratch);
		if (rc < 0) {
			j->rc = -1;
			fa->finished = 1;
			break;
		}
		if (rc > 0)
			fetch_index_only(j, fa, seq, &st);
	}
	/* A message still being sent is opened again by the next step. */
	if (msg != NULL)
		imap_storage->msg_close(msg);
	imap_host->pool_destroy(scratch);
	if (fa->broken) {
		fa->finished = 1;
		return;
	}
	if (!fa->finished || j->rc < 0 || fa->on_loop)
		return;
	/* The updates FETCH may carry: no EXPUNGE (RFC 3501 7.4.1). */
	if (imap_storage->sync(s->mb, POSTERN_SYNC_NO_EXPUNGE, j->pool, &ch,
	                       &j->err) == 0)
		imap_sync_format(s, &j->out, &ch, j->pool);
}

/* The plan's memory, whichever step's job holds the state when the
 * FETCH ends or the session goes. */
static void
fetch_cleanup(struct imap_job *j)
{
	struct fetch_arg *fa = j->arg;

	segs_free(fa);
	imap_host->pool_destroy(fa->msg_pool);
	fa->msg_pool = NULL;
	imap_buf_free(&fa->acc);
	if (fa->ready != NULL)
		imap_storage->msg_close(fa->ready);
	fa->ready = NULL;
	if (fa->stream_msg != NULL) {
		/* The session went with it: closed off the loop, by
		 * protocol->release (one FETCH per session holds one). */
		j->s->orphan_msg = fa->stream_msg;
		fa->stream_msg = NULL;
	}
}

/* The host's stream reads the range from the open message (a job
 * thread). */
static ssize_t
stream_read(void *arg, uint64_t offset, void *buf, size_t len)
{
	struct fetch_arg *fa = arg;

	return imap_storage->msg_read(fa->stream_msg, fa->stream_from + offset,
	                              buf, len, &fa->stream_err);
}

static void
fetch_streamed(struct imap_job *next, int status)
{
	struct fetch_arg *fa = next->arg;

	if (status == POSTERN_OK) {
		/* The segment is out; the next step sends the rest. */
		fa->cur = fa->cur->next;
		fa->cur_off = 0;
	} else if (status == POSTERN_ERROR) {
		imap_log(next->s, POSTERN_LOG_WARNING,
		         "FETCH of uid %u failed while it was sent (%s): "
		         "disconnecting", fa->cur_uid,
		         fa->stream_err.text[0] != '\0' ? fa->stream_err.text
		                                         : "see above");
	}
}

/* The rest of the current range goes through the host's stream, then
 * the next step goes on with the message.  The stream reads the file
 * itself when the store says the message is one (storage 1.8), else
 * through msg_read. */
static void
fetch_stream(struct imap_job *j)
{
	struct fetch_arg *fa = j->arg;
	struct postern_stream_source src;

	fa->stream_from = fa->cur->start + fa->cur_off;
	memset(&fa->stream_err, 0, sizeof(fa->stream_err));
	postern_msg_stream_source(imap_storage, fa->stream_msg,
	                          fa->stream_from,
	                          fa->cur->len - fa->cur_off, stream_read, fa,
	                          &src);
	if (imap_host->log_enabled(POSTERN_LOG_DEBUG))
		imap_log(j->s, POSTERN_LOG_DEBUG, "%s streams %llu octets of "
		         "uid %u from %llu", j->tag,
		         (unsigned long long)src.length, fa->cur_uid,
		         (unsigned long long)fa->stream_from);
	imap_job_stream_step(j, &src, fetch_streamed);
}



static void
fetch_done(struct imap_job *j)
{
	struct fetch_arg *fa = j->arg;
	struct imap_session *s = j->s;

	if (fa->broken) {
		/* Part of a literal is out: the stream cannot be mended. */
		imap_log(s, POSTERN_LOG_WARNING,
		         "FETCH of uid %u failed while it was sent "
		         "(%s): disconnecting", fa->cur_uid,
		         j->err.text);
		imap_host->session_close(s->ss);
		return;
	}
	if (fa->finished && fa->untagged_done != NULL) {
		if (j->rc < 0)
			imap_log(s, POSTERN_LOG_INFO, "NOTIFY's FETCH of new "
			         "messages of %s: %s", s->user, j->err.text);
		fa->untagged_done(s);
		return;
	}
	if (fa->finished) {
		if (j->rc < 0 && fa->unknown_cte)
			imap_reply(s, j->tag, "NO", "[UNKNOWN-CTE] %s",
			           j->err.text);
		else if (j->rc < 0)
			imap_reply_storage_err(s, j->tag, &j->err);
		else
			imap_reply(s, j->tag, "OK", "Fetch completed");
		return;
	}
	if (fa->stream_msg != NULL) {
		fetch_stream(j);
		return;
	}
	/* Another step: a new job that takes over the state. */
	fa->on_loop = 0;
	imap_job_next_output_step(j);
}

/* A FETCH on the loop touches at most this many messages: enough for
 * a client's per-message and flag-refresh FETCHes, little enough that
 * no neighbour waits for it. */
#define FETCH_HERE_MAX 256
/* ... and of their content, one message of at most this size, already
 * in memory. */
#define FETCH_HERE_CONTENT (64 * 1024)

/* How many messages of the view the set names, counting up to `max`
 * (gaps in the UIDs count too: a bound, not a count). */
static uint64_t
set_size_bound(struct imap_session *s, const struct fetch_arg *fa,
               uint64_t max)
{
	const struct postern_message_info *mi;
	uint32_t count, maxuid, first, last;
	uint64_t n = 0;
	size_t i;

	if ((count = imap_storage->count(s->mb)) == 0)
		return 0;
	mi = imap_storage->message(s->mb, count);
	maxuid = mi != NULL ? mi->uid : 0;
	for (i = 0; i < fa->nuids && n <= max; i++) {
		first = fa->uids[i].first;
		last = fa->uids[i].last < maxuid ? fa->uids[i].last : maxuid;
		if (last >= first)
			n += (uint64_t)last - first + 1;
	}
	return n;
}

/* One message's content on the loop: the single message of the set,
 * small, opened only if the store has it in memory (fa->ready). */
static int
content_ready(struct imap_session *s, struct fetch_arg *fa)
{
	const struct postern_message_info *mi;
	uint32_t seq;

	if (fa->needs_mime || !IMAP_STORAGE_HAS(msg_open_nowait) ||
	    set_size_bound(s, fa, 1) != 1 ||
	    (seq = imap_storage->seq_of_uid(s->mb, fa->uids[0].first)) == 0)
		return 0;
	mi = imap_storage->message(s->mb, seq);
	if (mi->size > FETCH_HERE_CONTENT)
		return 0;
	if (imap_storage->msg_open_nowait(s->mb, mi->uid, &fa->ready,
	                                  &fa->ready_sz) != 0)
		return 0;
	fa->ready_uid = fa->uids[0].first;
	return 1;
}

/* 1 when the FETCH can be answered on the loop: index items (UID FLAGS
 * INTERNALDATE RFC822.SIZE MODSEQ) of few messages, or one small
 * message's content found in memory; no \Seen to set, no VANISHED to
 * compute, and a current view. */
static int
fetch_here(struct imap_session *s, struct fetch_arg *fa)
{
	if (fa->sets_seen || fa->vanished || !imap_view_current(s))
		return 0;
	if (!fa->needs_mime && !fa->needs_msg)
		return set_size_bound(s, fa, FETCH_HERE_MAX) <= FETCH_HERE_MAX;
	return content_ready(s, fa);
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
		if (tmp.nitems > (size_t)imap_cfg.max_fetch_items) {
			imap_reply(c->s, c->tag, "NO", "[LIMIT] FETCH: more "
			           "than %lld items", imap_cfg.max_fetch_items);
			return;
		}
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
	fa->msg_pool = imap_host->pool_create(4096);
	j->cleanup = fetch_cleanup;
	/* The items stay in the command's pool, which lives until the
	 * command is finished (after the last step). */
	if (fetch_here(c->s, fa)) {
		fa->on_loop = 1;
		imap_job_run_here(j, fetch_work, fetch_done);
		return;
	}
	imap_job_run_heavy(j, fetch_work, fetch_done);
}

/* ---- NOTIFY's MessageNew (RFC 5465 5.2) -------------------------------*/

static void *
pool_alloc_cb(void *ctx, size_t n)
{
	return imap_host->pool_alloc(ctx, n);
}

int
imap_fetch_check_items(struct imap_cmd *c)
{
	struct fetch_arg tmp = { 0 };

	if (parse_items(c, &tmp) < 0) {
		if (tmp.nitems > (size_t)imap_cfg.max_fetch_items)
			c->args.error = "too many fetch attributes";
		return -1;
	}
	return 0;
}

int
imap_fetch_untagged(struct imap_session *s, const char *items,
                    uint32_t uidmax,
                    void (*done)(struct imap_session *s))
{
	struct fetch_arg tmp = { 0 }, *fa;
	struct imap_cmd *c;
	struct imap_job *j;
	char *buf;

	/* The items live in the command pool, unused between commands,
	 * as a FETCH's do until it is finished; done clears it. */
	c = imap_host->pool_alloc(s->cmd_pool, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->pool = s->cmd_pool;
	snprintf(c->tag, sizeof(c->tag), "*");
	c->name = "FETCH";
	buf = imap_host->pool_strndup(s->cmd_pool, items, strlen(items));
	imap_args_init(&c->args, buf, strlen(buf), pool_alloc_cb,
	               s->cmd_pool);
	if (parse_items(c, &tmp) < 0)
		return -1;
	for (struct fetch_item *it = tmp.items; it != NULL; it = it->next)
		if (it->sets_seen)
			tmp.sets_seen = 1;
	j = imap_job_new(s, "*", sizeof(*fa));
	fa = j->arg;
	*fa = tmp;
	fa->uids = imap_host->pool_alloc(j->pool, sizeof(*fa->uids));
	fa->uids[0].first = uidmax + 1;
	fa->uids[0].last = UINT32_MAX;
	fa->nuids = 1;
	fa->msg_pool = imap_host->pool_create(4096);
	fa->untagged_done = done;
	j->cleanup = fetch_cleanup;
	imap_job_run_heavy(j, fetch_work, fetch_done);
	return 0;
}
