/*
 * smtp_filter.c - the filter chain: running the hook stages with the
 * session waiting, the cleanup stages detached, the end-of-message chain
 * (header, eoh, body, eod), and the "smtp" service through which filters
 * change a transaction (applied once the eod chain has run).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_session.h"

#define SMTP_BODY_CHUNK 65536
/* Header fields a message may have when filters look at them: finding
 * each field's index among its namesakes is quadratic, and no real
 * message comes near. */
#define SMTP_MAX_HEADER_FIELDS 1000

/* ---- stages the session waits for ----------------------------------- */

static void
stage_done(void *arg, const struct postern_verdict *v)
{
	struct smtp_session *s = arg;
	struct smtp_event ev = { .kind = SMTP_EV_VERDICT, .verdict = v };

	s->hook_call = NULL;
	s->txn.live = 0;
	smtp_event(s, &ev);
}

void
smtp_stage_run_with(struct smtp_session *s, enum postern_smtp_stage stage,
                    const struct postern_smtp_payload *extra)
{
	static const struct postern_verdict cont = {
		.kind = POSTERN_VERDICT_CONTINUE,
	};
	struct smtp_event ev = { .kind = SMTP_EV_VERDICT, .verdict = &cont };
	postern_hook_call_t *call;

	if (!smtp_host->hook_has_handlers(smtp_hooks[stage])) {
		smtp_event(s, &ev);
		return;
	}
	smtp_session_update_info(s);
	s->payload.stage = stage;
	if (extra != NULL) {
		s->payload.rcpt = extra->rcpt;
		s->payload.header_name = extra->header_name;
		s->payload.header_value = extra->header_value;
		s->payload.header_index = extra->header_index;
		s->payload.chunk = extra->chunk;
		s->payload.chunk_len = extra->chunk_len;
		s->payload.message_size = extra->message_size;
	}
	smtp_session_wait(s, SMTP_WAIT_HOOK);
	s->txn.live = s->txn.pool != NULL;
	/* NULL: every handler answered and stage_done already ran. */
	call = smtp_host->hook_run(smtp_hooks[stage], &s->payload, stage_done,
	                           s);
	if (call != NULL)
		s->hook_call = call;
}

void
smtp_stage_run(struct smtp_session *s, enum postern_smtp_stage stage)
{
	smtp_stage_run_with(s, stage, NULL);
}

/* ---- cleanup stages, detached ---------------------------------------- */

/* A copy of what a reset or disconnect handler may read: the session's
 * memory may be gone before a pending handler answers. */
struct detached {
	struct postern_smtp_payload payload;
	struct postern_smtp_session_info info;
	char *strings[6];
	struct smtp_slot slots[SMTP_SLOTS]; /* session_slot, as they were */
};

static void
detached_done(void *arg, const struct postern_verdict *v)
{
	struct detached *d = arg;
	size_t i;

	(void)v; /* cleanup only: the verdict means nothing */
	for (i = 0; i < sizeof(d->strings) / sizeof(d->strings[0]); i++)
		free(d->strings[i]);
	free(d);
}

static const char *
keep(struct detached *d, size_t slot, const char *s)
{
	if (s == NULL)
		return NULL;
	d->strings[slot] = strdup(s);
	if (d->strings[slot] == NULL)
		abort(); /* as every allocation in posternd */
	return d->strings[slot];
}

void
smtp_stage_cleanup(struct smtp_session *s, enum postern_smtp_stage stage)
{
	struct detached *d;

	if (!smtp_host->hook_has_handlers(smtp_hooks[stage]))
		return;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		abort();
	smtp_session_update_info(s);
	d->info = s->info;
	d->info.peer = keep(d, 0, s->info.peer);
	d->info.listener = keep(d, 1, s->info.listener);
	d->info.helo = keep(d, 2, s->info.helo);
	d->info.tls_version = keep(d, 3, s->info.tls_version);
	d->info.tls_cipher = keep(d, 4, s->info.tls_cipher);
	d->info.auth_user = keep(d, 5, s->info.auth_user);
	d->payload.size = sizeof(d->payload);
	d->payload.stage = stage;
	d->payload.session = &d->info;
	memcpy(d->slots, s->slots, sizeof(d->slots));
	/* No wait and no cancel: done always comes, and frees d. */
	(void)smtp_host->hook_run(smtp_hooks[stage], &d->payload,
	                          detached_done, d);
}

/* ---- header fields --------------------------------------------------- */

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void
smtp_header_fields(const char *hdr, size_t len,
                   void (*fn)(void *arg, const char *name, size_t name_len,
                              const char *value, size_t value_len),
                   void *arg)
{
	size_t pos = 0, start, end, colon, n;
	const char *lf;

	while (pos < len) {
		/* The empty line ends the section. */
		if (hdr[pos] == '\r' || hdr[pos] == '\n')
			return;
		start = pos;
		/* A field runs to the first line that does not start with
		 * white space. */
		do {
			lf = memchr(hdr + pos, '\n', len - pos);
			pos = lf != NULL ? (size_t)(lf - hdr) + 1 : len;
		} while (pos < len && is_wsp(hdr[pos]));
		end = pos;
		for (colon = start; colon < end && hdr[colon] != ':' &&
		                    hdr[colon] != '\r' && hdr[colon] != '\n';
		     colon++)
			;
		if (colon >= end || hdr[colon] != ':' || colon == start)
			continue; /* not a field: skipped */
		n = colon;
		while (n > start && is_wsp(hdr[n - 1]))
			n--;
		/* The value without its final CRLF. */
		while (end > colon + 1 &&
		       (hdr[end - 1] == '\n' || hdr[end - 1] == '\r'))
			end--;
		fn(arg, hdr + start, n - start, hdr + colon + 1,
		   end - colon - 1);
	}
}

struct collect {
	struct postern_smtp_txn *t;
	struct smtp_hfield *v;
	size_t n, cap;
	int overflow;        /* more than SMTP_MAX_HEADER_FIELDS */
};

static void
collect_field(void *arg, const char *name, size_t name_len,
              const char *value, size_t value_len)
{
	struct collect *c = arg;
	struct smtp_hfield *f;
	size_t i, same = 0;

	if (c->n == SMTP_MAX_HEADER_FIELDS) {
		c->overflow = 1;
		return;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct smtp_hfield *v = smtp_host->pool_alloc(
		    c->t->pool, cap * sizeof(*v));

		if (c->n > 0)
			memcpy(v, c->v, c->n * sizeof(*v));
		c->v = v;
		c->cap = cap;
	}
	f = &c->v[c->n];
	f->name = smtp_host->pool_strndup(c->t->pool, name, name_len);
	f->value = smtp_host->pool_strndup(c->t->pool, value, value_len);
	f->text = name;
	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->v[i].name, f->name) == 0)
			same++;
	f->index = same + 1;
	c->n++;
}

/* The field texts (name start to CRLF) are found again for rewriting. */
static void
fields_text(struct smtp_hfield *v, size_t n, const char *hdr, size_t len)
{
	size_t i;
	const char *end = hdr + len, *p, *lf;

	for (i = 0; i < n; i++) {
		p = v[i].text;
		do {
			lf = memchr(p, '\n', (size_t)(end - p));
			p = lf != NULL ? lf + 1 : end;
		} while (p < end && is_wsp(*p));
		v[i].len = (size_t)(p - v[i].text);
	}
}

/* ---- the end-of-message chain ---------------------------------------- */

/*
 * From SYNC: EOM_HEADER (one stage run per field, when header handlers
 * exist), EOM_EOH, EOM_BODY (a chunk read, then the stage on it, while
 * body handlers exist), EOM_EOD; a verdict that decides the message
 * (reject, tempfail, discard, quarantine) ends the chain early.  Then
 * smtp_message_filtered replies or delivers.
 */

/* Records a message-stage verdict.  Returns 1 when the chain stops. */
static int
message_verdict(struct smtp_session *s, const struct postern_verdict *v)
{
	struct postern_smtp_txn *t = &s->txn;

	switch (v->kind) {
	case POSTERN_VERDICT_REJECT:
		t->outcome = SMTP_OUT_REFUSE;
		t->refuse_code = v->code >= 500 && v->code <= 599 ? v->code
		                                                  : 550;
		t->refuse_enhanced = v->enhanced != NULL &&
		                             v->enhanced[0] == '5'
		                         ? smtp_host->pool_strndup(
		                               t->pool, v->enhanced,
		                               strlen(v->enhanced))
		                         : "5.7.1";
		break;
	case POSTERN_VERDICT_TEMPFAIL:
		t->outcome = SMTP_OUT_REFUSE;
		t->refuse_code = v->code >= 400 && v->code <= 499 ? v->code
		                                                  : 451;
		t->refuse_enhanced = v->enhanced != NULL &&
		                             v->enhanced[0] == '4'
		                         ? smtp_host->pool_strndup(
		                               t->pool, v->enhanced,
		                               strlen(v->enhanced))
		                         : "4.7.1";
		break;
	case POSTERN_VERDICT_DISCARD:
		t->outcome = SMTP_OUT_DISCARD;
		break;
	case POSTERN_VERDICT_QUARANTINE:
		if (t->outcome != SMTP_OUT_DISCARD)
			t->outcome = SMTP_OUT_QUARANTINE;
		break;
	default:
		if (v->flags & POSTERN_VERDICT_DISCONNECT)
			t->refuse_disconnect = 1;
		return 0;
	}
	if (t->outcome == SMTP_OUT_REFUSE)
		t->refuse_text = v->text != NULL
		                     ? smtp_host->pool_strndup(t->pool, v->text,
		                                               strlen(v->text))
		                     : t->refuse_code >= 500
		                           ? "message refused"
		                           : "message deferred, try again later";
	if (v->flags & POSTERN_VERDICT_DISCONNECT)
		t->refuse_disconnect = 1;
	return 1;
}

static void message_header(struct smtp_session *s);
static void message_body(struct smtp_session *s);

static void
message_eod(struct smtp_session *s)
{
	struct postern_smtp_payload extra = {
		.message_size = s->txn.size,
	};

	smtp_enter(s, SMTP_ST_EOM_EOD);
	smtp_stage_run_with(s, POSTERN_SMTP_EOD, &extra);
}

void
smtp_on_eod_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	message_verdict(s, ev->verdict);
	smtp_message_filtered(s);
}

void
smtp_on_body_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (message_verdict(s, ev->verdict)) {
		smtp_message_filtered(s);
		return;
	}
	/* ACCEPT ends the body stage. */
	if (ev->verdict->kind == POSTERN_VERDICT_ACCEPT)
		s->body_off = s->txn.size;
	message_body(s);
}

void
smtp_on_body_read(struct smtp_session *s, const struct smtp_event *ev)
{
	struct postern_smtp_payload extra = { 0 };

	if (ev->n <= 0) {
		smtp_host->conn_log(s->conn, POSTERN_LOG_ERROR,
		                    "smtp: cannot read the spooled message "
		                    "for the body filters");
		s->txn.outcome = SMTP_OUT_REFUSE;
		s->txn.refuse_code = 451;
		s->txn.refuse_enhanced = "4.3.0";
		s->txn.refuse_text = "local error reading the message";
		smtp_message_filtered(s);
		return;
	}
	extra.chunk = s->body_buf;
	extra.chunk_len = (size_t)ev->n;
	s->body_off += (uint64_t)ev->n;
	smtp_stage_run_with(s, POSTERN_SMTP_BODY, &extra);
}

static void
message_body(struct smtp_session *s)
{
	uint64_t left = s->txn.size - s->body_off;
	size_t n = left > SMTP_BODY_CHUNK ? SMTP_BODY_CHUNK : (size_t)left;

	if (left == 0 ||
	    !smtp_host->hook_has_handlers(smtp_hooks[POSTERN_SMTP_BODY])) {
		message_eod(s);
		return;
	}
	if (s->body_buf == NULL)
		s->body_buf = smtp_host->pool_alloc(s->txn.pool,
		                                    SMTP_BODY_CHUNK);
	smtp_enter(s, SMTP_ST_EOM_BODY);
	smtp_spool_read(s, s->body_off, s->body_buf, n);
}

void
smtp_on_eoh_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (message_verdict(s, ev->verdict)) {
		smtp_message_filtered(s);
		return;
	}
	s->body_off = s->txn.header_len;
	message_body(s);
}

void
smtp_on_header_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (message_verdict(s, ev->verdict)) {
		smtp_message_filtered(s);
		return;
	}
	if (ev->verdict->kind == POSTERN_VERDICT_ACCEPT)
		s->hfield_next = s->nhfields;
	message_header(s);
}

static void
message_header(struct smtp_session *s)
{
	struct postern_smtp_payload extra = { 0 };
	struct smtp_hfield *f;

	if (s->hfield_next >= s->nhfields) {
		smtp_enter(s, SMTP_ST_EOM_EOH);
		smtp_stage_run(s, POSTERN_SMTP_EOH);
		return;
	}
	f = &s->hfields[s->hfield_next++];
	extra.header_name = f->name;
	extra.header_value = f->value;
	extra.header_index = f->index;
	smtp_enter(s, SMTP_ST_EOM_HEADER);
	smtp_stage_run_with(s, POSTERN_SMTP_HEADER, &extra);
}

void
smtp_filter_message(struct smtp_session *s)
{
	struct collect c = { .t = &s->txn };

	s->hfields = NULL;
	s->nhfields = s->hfield_next = 0;
	s->body_off = 0;
	s->body_buf = NULL;
	if (smtp_host->hook_has_handlers(smtp_hooks[POSTERN_SMTP_HEADER])) {
		smtp_header_fields(s->txn.header, s->txn.header_len,
		                   collect_field, &c);
		s->hfields = c.v;
		s->nhfields = c.n;
		if (c.overflow) {
			s->txn.outcome = SMTP_OUT_REFUSE;
			s->txn.refuse_code = 552;
			s->txn.refuse_enhanced = "5.3.4";
			s->txn.refuse_text = "too many header fields";
			smtp_message_filtered(s);
			return;
		}
	}
	message_header(s);
}

/* ---- the "smtp" service: changes a filter asks for -------------------- */

static int
txn_editable(postern_smtp_txn_t *t)
{
	return t != NULL && t->live && t->pool != NULL;
}

/* RFC 5322 field name: printable ASCII except ':'. */
static int
valid_name(const char *name)
{
	const unsigned char *p;

	if (name == NULL || *name == '\0' || strlen(name) > 200)
		return 0;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 33 || *p > 126 || *p == ':')
			return 0;
	return 1;
}

/* A value may be folded (CRLF then SP/HT), nothing else. */
static int
valid_value(const char *value)
{
	const char *p;

	if (value == NULL || strlen(value) > 64 * 1024)
		return 0;
	for (p = value; *p != '\0'; p++) {
		if (*p == '\r') {
			if (p[1] != '\n' || !is_wsp(p[2]))
				return 0;
			p++;
		} else if (*p == '\n')
			return 0;
	}
	return 1;
}

/* A filter is trusted code, but what it changes may follow what a client
 * sent (a milter that adds a header per recipient): a transaction takes
 * at most this many changes and octets of changes. */
#define SMTP_MAX_EDITS 1000
#define SMTP_MAX_EDIT_BYTES (1024 * 1024)

/* A new change, or NULL (logged) past the budget. */
static struct smtp_edit *
edit_new(postern_smtp_txn_t *t, enum smtp_edit_kind kind, const char *name,
         const char *value)
{
	size_t bytes = strlen(name) + (value != NULL ? strlen(value) : 0);
	struct smtp_edit *e;

	if (t->nedits >= SMTP_MAX_EDITS ||
	    t->edit_bytes + bytes > SMTP_MAX_EDIT_BYTES) {
		if (!t->edits_over)
			smtp_log_txn(t->logp, POSTERN_LOG_WARNING, "the filters "
			             "asked for more than %d changes or %d "
			             "octets of them; the rest are refused",
			             SMTP_MAX_EDITS, SMTP_MAX_EDIT_BYTES);
		t->edits_over = 1;
		return NULL;
	}
	t->nedits++;
	t->edit_bytes += bytes;
	e = smtp_host->pool_alloc(t->pool, sizeof(*e));
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->name = smtp_host->pool_strndup(t->pool, name, strlen(name));
	e->value = value != NULL ? smtp_host->pool_strndup(t->pool, value,
	                                                   strlen(value))
	                         : NULL;
	if (t->edits_tail == NULL)
		t->edits_tail = &t->edits;
	*t->edits_tail = e;
	t->edits_tail = &e->next;
	return e;
}

static int
svc_header_add(postern_smtp_txn_t *t, const char *name, const char *value,
               int at_top)
{
	struct smtp_edit *e;

	if (!txn_editable(t) || !valid_name(name) || !valid_value(value))
		return -1;
	if ((e = edit_new(t, SMTP_EDIT_HEADER_ADD, name, value)) == NULL)
		return -1;
	e->at_top = at_top;
	return 0;
}

static int
svc_header_change(postern_smtp_txn_t *t, const char *name, size_t index,
                  const char *value)
{
	struct smtp_edit *e;

	if (!txn_editable(t) || !valid_name(name) || index == 0 ||
	    (value != NULL && !valid_value(value)))
		return -1;
	if ((e = edit_new(t, SMTP_EDIT_HEADER_CHANGE, name, value)) == NULL)
		return -1;
	e->index = index;
	return 0;
}

static int
valid_address(const char *address)
{
	static const struct smtp_param_policy pol = { .utf8 = 1 };
	struct smtp_rcpt_args args;
	struct smtp_error err;
	char line[SMTP_PATH_MAX + 8];
	int n;

	if (address == NULL)
		return 0;
	n = snprintf(line, sizeof(line), "TO:<%s>", address);
	if (n < 0 || (size_t)n >= sizeof(line))
		return 0;
	return smtp_parse_rcpt(line, (size_t)n, &pol, 1, &args, &err) == 0 &&
	       !args.postmaster;
}

static int
svc_rcpt_add(postern_smtp_txn_t *t, const char *address)
{
	if (!txn_editable(t) || !valid_address(address))
		return -1;
	return edit_new(t, SMTP_EDIT_RCPT_ADD, address, NULL) != NULL ? 0 : -1;
}

static int
svc_rcpt_remove(postern_smtp_txn_t *t, const char *address)
{
	if (!txn_editable(t) || address == NULL || *address == '\0')
		return -1;
	return edit_new(t, SMTP_EDIT_RCPT_REMOVE, address, NULL) != NULL ? 0
	                                                                : -1;
}

static int
svc_header_insert(postern_smtp_txn_t *t, size_t position, const char *name,
                  const char *value)
{
	struct smtp_edit *e;

	if (!txn_editable(t) || !valid_name(name) || !valid_value(value))
		return -1;
	if ((e = edit_new(t, SMTP_EDIT_HEADER_INSERT, name, value)) == NULL)
		return -1;
	e->index = position;
	return 0;
}

/* The sender and its parameters, checked as a client's MAIL FROM. */
static int
svc_sender_change(postern_smtp_txn_t *t, const char *address,
                  const char *params)
{
	static const struct smtp_param_policy pol = {
		.utf8 = 1, .dsn = 1, .binary = 1,
	};
	struct smtp_mail_args *args;
	struct smtp_error err;
	struct smtp_edit *e;
	char *line;

	if (!txn_editable(t) || address == NULL ||
	    strlen(address) > SMTP_PATH_MAX ||
	    (params != NULL && strlen(params) > 1000))
		return -1;
	line = smtp_host->pool_printf(t->pool, "FROM:<%s>%s%s", address,
	                              params != NULL && *params ? " " : "",
	                              params != NULL ? params : "");
	args = smtp_host->pool_alloc(t->pool, sizeof(*args));
	if (smtp_parse_mail(line, strlen(line), &pol, args, &err) < 0)
		return -1;
	if ((e = edit_new(t, SMTP_EDIT_SENDER, args->sender, NULL)) == NULL)
		return -1;
	e->mail = params != NULL ? args : NULL;
	return 0;
}

static int
svc_body_replace(postern_smtp_txn_t *t, const void *data, size_t len)
{
	enum postern_smtp_stage stage = t->s->payload.stage;

	if (!txn_editable(t) || (data == NULL && len > 0) || t->body_failed ||
	    stage < POSTERN_SMTP_HEADER || stage > POSTERN_SMTP_EOD)
		return -1;
	if (t->body_spool == NULL)
		t->body_spool = smtp_host->spool_create(NULL);
	if (smtp_host->spool_size(t->body_spool) + len >
	    (uint64_t)smtp_cfg.max_message_size) {
		smtp_log_txn(t->logp, POSTERN_LOG_WARNING, "a filter's new body "
		             "passes max_message_size (%lld): the body stays "
		             "as received", smtp_cfg.max_message_size);
		t->body_failed = 1;
		smtp_host->spool_free(t->body_spool);
		t->body_spool = NULL;
		return -1;
	}
	smtp_host->spool_append(t->body_spool, data, len);
	return 0;
}

static postern_pool_t *
svc_txn_pool(postern_smtp_txn_t *t)
{
	return t != NULL ? t->pool : NULL;
}

/* The pointer `m` keeps among `slots`, taking a free one at first. */
static void **
slot_of(struct smtp_slot *slots, postern_module_t *m)
{
	size_t i;

	if (m == NULL)
		return NULL;
	for (i = 0; i < SMTP_SLOTS; i++) {
		if (slots[i].m == m)
			return &slots[i].p;
		if (slots[i].m == NULL) {
			slots[i].m = m;
			return &slots[i].p;
		}
	}
	return NULL;
}

static void **
svc_txn_slot(postern_smtp_txn_t *t, postern_module_t *m)
{
	if (t == NULL || t->pool == NULL)
		return NULL;
	return slot_of(t->slots, m);
}

/* A payload is either the session's own (live stages) or a detached
 * copy (reset, disconnect: smtp_stage_cleanup). */
static void **
svc_session_slot(const struct postern_smtp_payload *p, postern_module_t *m)
{
	struct smtp_session *s;
	struct detached *d;

	if (p == NULL)
		return NULL;
	if (p->stage == POSTERN_SMTP_RESET ||
	    p->stage == POSTERN_SMTP_DISCONNECT) {
		d = (struct detached *)(void *)((char *)(uintptr_t)p -
		    offsetof(struct detached, payload));
		return slot_of(d->slots, m);
	}
	s = (struct smtp_session *)(void *)((char *)(uintptr_t)p -
	    offsetof(struct smtp_session, payload));
	return slot_of(s->slots, m);
}

static void
svc_log(postern_module_t *m, const struct postern_smtp_payload *p,
        int level, const char *fmt, ...)
{
	const struct postern_smtp_session_info *si = p->session;
	const char *open = strchr(si->peer, ':') != NULL ? "[" : "";
	const char *close = *open ? "]" : "";
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (strcmp(si->peer, "unix") == 0)
		smtp_host->log(m, level, "conn=%llu peer=unix %s",
		               (unsigned long long)si->id, text);
	else
		smtp_host->log(m, level, "conn=%llu peer=%s%s%s:%u %s",
		               (unsigned long long)si->id, open, si->peer, close,
		               si->peer_port, text);
}

const struct postern_smtp_service smtp_service = {
	.size = sizeof(struct postern_smtp_service),
	.header_add = svc_header_add,
	.header_change = svc_header_change,
	.rcpt_add = svc_rcpt_add,
	.rcpt_remove = svc_rcpt_remove,
	.header_insert = svc_header_insert,
	.sender_change = svc_sender_change,
	.body_replace = svc_body_replace,
	.txn_pool = svc_txn_pool,
	.txn_slot = svc_txn_slot,
	.log = svc_log,
	.session_slot = svc_session_slot,
};

/* ---- applying the changes -------------------------------------------- */

static const char *
field_text(postern_smtp_txn_t *t, const char *name, const char *value,
           size_t *len)
{
	/* "Name: value" unless the value brings its own leading space. */
	const char *sep = is_wsp(value[0]) ? ":" : ": ";
	char *text = smtp_host->pool_printf(t->pool, "%s%s%s\r\n", name, sep,
	                                    value);

	*len = strlen(text);
	return text;
}

int
smtp_filter_apply_header_edits(struct postern_smtp_txn *t, const char **hdr,
                               size_t *len)
{
	struct collect c = { .t = t };
	struct smtp_edit *e;
	struct smtp_hfield *v;
	size_t n, cap, i, k, seen, out_len = 0, body_sep;
	int changed = 0;
	char *out;

	for (e = t->edits; e != NULL; e = e->next)
		if (e->kind == SMTP_EDIT_HEADER_ADD ||
		    e->kind == SMTP_EDIT_HEADER_INSERT ||
		    e->kind == SMTP_EDIT_HEADER_CHANGE)
			changed = 1;
	if (!changed && t->body_spool == NULL)
		return 0;
	smtp_header_fields(t->header, t->header_len, collect_field, &c);
	if (c.overflow) {
		smtp_log_txn(t->logp, POSTERN_LOG_WARNING, "more than %d header "
		             "fields: the filters' header changes are not "
		             "applied", SMTP_MAX_HEADER_FIELDS);
		return 0;
	}
	fields_text(c.v, c.n, t->header, t->header_len);
	/* Room for every add. */
	cap = c.n;
	for (e = t->edits; e != NULL; e = e->next)
		cap += e->kind == SMTP_EDIT_HEADER_ADD ||
		       e->kind == SMTP_EDIT_HEADER_INSERT;
	v = smtp_host->pool_alloc(t->pool, (cap + 1) * sizeof(*v));
	if (c.n > 0)
		memcpy(v, c.v, c.n * sizeof(*v));
	n = c.n;
	for (e = t->edits; e != NULL; e = e->next) {
		if (e->kind == SMTP_EDIT_HEADER_ADD ||
		    e->kind == SMTP_EDIT_HEADER_INSERT) {
			if (e->kind == SMTP_EDIT_HEADER_INSERT)
				k = e->index < n ? e->index : n;
			else
				k = e->at_top ? 0 : n;
			memmove(&v[k + 1], &v[k], (n - k) * sizeof(*v));
			v[k].name = e->name;
			v[k].text = field_text(t, e->name, e->value, &v[k].len);
			n++;
		} else if (e->kind == SMTP_EDIT_HEADER_CHANGE) {
			for (i = 0, seen = 0; i < n; i++) {
				if (strcasecmp(v[i].name, e->name) != 0 ||
				    ++seen != e->index)
					continue;
				if (e->value == NULL) {
					memmove(&v[i], &v[i + 1],
					        (n - i - 1) * sizeof(*v));
					n--;
				} else
					v[i].text = field_text(t, v[i].name,
					                       e->value,
					                       &v[i].len);
				break;
			}
		}
	}
	/* What followed the fields: the empty line (if the message had
	 * one), and anything skipped as not a field is lost with it. */
	body_sep = t->body_spool != NULL ? 2 : /* a new body follows */
	           t->header_len >= 2 &&
	           memcmp(t->header + t->header_len - 2, "\r\n", 2) == 0 &&
	           (t->header_len == 2 ||
	            t->header[t->header_len - 3] == '\n')
	               ? 2 : 0;
	for (i = 0; i < n; i++)
		out_len += v[i].len;
	out = smtp_host->pool_alloc(t->pool, out_len + body_sep + 1);
	for (i = 0, k = 0; i < n; i++) {
		memcpy(out + k, v[i].text, v[i].len);
		k += v[i].len;
	}
	memcpy(out + k, "\r\n", body_sep);
	*hdr = out;
	*len = k + body_sep;
	return 1;
}

void
smtp_filter_apply_rcpt_edits(struct postern_smtp_txn *t)
{
	struct smtp_edit *e;
	struct smtp_rcpt *r;
	size_t i;

	for (e = t->edits; e != NULL; e = e->next) {
		if (e->kind == SMTP_EDIT_SENDER) {
			snprintf(t->mail.sender, sizeof(t->mail.sender), "%s",
			         e->name);
			if (e->mail != NULL) {
				t->mail.ret = t->env.ret = e->mail->ret;
				memcpy(t->mail.envid, e->mail->envid,
				       sizeof(t->mail.envid));
				t->mail.has_envid = e->mail->has_envid;
				t->env.envid = t->mail.has_envid
				                   ? t->mail.envid : NULL;
			}
		} else if (e->kind == SMTP_EDIT_RCPT_REMOVE) {
			for (i = 0; i < t->nrcpts; i++)
				if (strcasecmp(t->rcpts[i].r.address,
				               e->name) == 0)
					t->rcpts[i].removed = 1;
		} else if (e->kind == SMTP_EDIT_RCPT_ADD) {
			if (t->nrcpts == t->caprcpts) {
				size_t cap = t->caprcpts * 2 + 4;
				struct smtp_rcpt *v = smtp_host->pool_alloc(
				    t->pool, cap * sizeof(*v));

				if (t->nrcpts > 0)
					memcpy(v, t->rcpts,
					       t->nrcpts * sizeof(*v));
				t->rcpts = v;
				t->caprcpts = cap;
			}
			r = &t->rcpts[t->nrcpts++];
			memset(r, 0, sizeof(*r));
			r->r.size = sizeof(r->r);
			r->r.address = e->name;
			r->added = 1;
		}
	}
	smtp_txn_rebuild_envelope(t);
}
