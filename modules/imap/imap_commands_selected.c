/*
 * imap_commands_selected.c - the selected state (RFC 3501 6.4) apart
 * from FETCH and SEARCH: CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID
 * EXPUNGE (RFC 4315), STORE (with UNCHANGEDSINCE, RFC 7162), COPY
 * (COPYUID) and MOVE (RFC 6851); plus the flag lists and sequence sets
 * they share with APPEND and FETCH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

/* ---- shared argument forms -------------------------------------------*/

static int
system_flag(const struct imap_str *f, uint32_t *bit)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} names[] = {
		{ "\\Seen", POSTERN_MSG_SEEN },
		{ "\\Answered", POSTERN_MSG_ANSWERED },
		{ "\\Flagged", POSTERN_MSG_FLAGGED },
		{ "\\Deleted", POSTERN_MSG_DELETED },
		{ "\\Draft", POSTERN_MSG_DRAFT },
		{ "\\Recent", POSTERN_MSG_RECENT },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (imap_str_is(f, names[i].name)) {
			*bit = names[i].bit;
			return 1;
		}
	return 0;
}

/* "(" [flag *(SP flag)] ")", or (for STORE) flags without parentheses. */
int
imap_parse_flag_list(struct imap_cmd *c, uint32_t *flags,
                     const char ***keywords, uint32_t *nkeywords,
                     int allow_recent)
{
	struct imap_args *a = &c->args;
	struct imap_str f;
	uint32_t bit, cap = 8;
	int paren = imap_arg_try_char(a, '(');
	const char **kw = imap_host->pool_alloc(c->pool, cap * sizeof(*kw));

	*flags = 0;
	*nkeywords = 0;
	if (paren && imap_arg_try_char(a, ')')) {
		*keywords = kw;
		return 0;
	}
	do {
		if (imap_arg_flag(a, &f) < 0)
			goto bad;
		if (f.s[0] == '\\') {
			if (!system_flag(&f, &bit) ||
			    (bit == POSTERN_MSG_RECENT && !allow_recent)) {
				imap_reply(c->s, c->tag, "BAD", "Invalid system "
				           "flag %.*s", (int)(f.len > 30 ? 30 :
				                              f.len), f.s);
				return -1;
			}
			*flags |= bit;
			continue;
		}
		if (*nkeywords == cap) {
			const char **n = imap_host->pool_alloc(
				c->pool, 2 * cap * sizeof(*n));
			memcpy(n, kw, cap * sizeof(*n));
			kw = n;
			cap *= 2;
		}
		kw[(*nkeywords)++] = imap_host->pool_strndup(c->pool, f.s,
		                                             f.len);
	} while (imap_arg_try_char(a, ' '));
	if (paren && imap_arg_char(a, ')') < 0)
		goto bad;
	*keywords = kw;
	return 0;
bad:
	imap_reply(c->s, c->tag, "BAD", "Invalid flag list: %s",
	           a->error != NULL ? a->error : "syntax");
	return -1;
}

int
imap_set_to_uids(struct imap_cmd *c, const struct imap_seqset *set, int uid,
                 struct postern_uid_range **out, size_t *n)
{
	postern_mailbox_t *mb = c->s->mb;
	uint32_t count = imap_storage->count(mb), star;
	struct imap_range *r = imap_host->pool_alloc(c->pool,
	                                             (set->n + 1) * sizeof(*r));
	struct postern_uid_range *u;
	size_t nr, i;

	if (uid) {
		star = count > 0 ? imap_storage->message(mb, count)->uid : 0;
		nr = imap_seqset_normalize(set, star, UINT32_MAX, r);
		u = imap_host->pool_alloc(c->pool, (nr + 1) * sizeof(*u));
		for (i = 0; i < nr; i++) {
			u[i].first = r[i].lo;
			u[i].last = r[i].hi;
		}
		*out = u;
		*n = nr;
		return 0;
	}
	if (count == 0 || imap_seqset_exceeds(set, count, count)) {
		imap_reply(c->s, c->tag, "BAD", "Invalid message sequence "
		                                "number (the mailbox has %u "
		                                "messages)", count);
		return -1;
	}
	nr = imap_seqset_normalize(set, count, count, r);
	u = imap_host->pool_alloc(c->pool, (nr + 1) * sizeof(*u));
	for (i = 0; i < nr; i++) {
		u[i].first = imap_storage->message(mb, r[i].lo)->uid;
		u[i].last = imap_storage->message(mb, r[i].hi)->uid;
	}
	*out = u;
	*n = nr;
	return 0;
}

/* Copies UID ranges into the job's pool (the command's pool is cleared
 * when the command ends, the job may outlive a step of it). */
static struct postern_uid_range *
ranges_copy(struct imap_job *j, const struct postern_uid_range *r, size_t n)
{
	struct postern_uid_range *c = imap_host->pool_alloc(
		j->pool, (n + 1) * sizeof(*c));

	if (n > 0)
		memcpy(c, r, n * sizeof(*c));
	return c;
}

static int
need_writable(struct imap_cmd *c)
{
	if (!c->s->readonly)
		return 0;
	imap_reply(c->s, c->tag, "NO", "[READ-ONLY] The mailbox is read-only");
	return -1;
}

/* ---- CLOSE and UNSELECT -----------------------------------------------*/

struct close_arg {
	postern_mailbox_t *mb;
	int expunge;
};

static void
close_work(struct imap_job *j)
{
	struct close_arg *a = j->arg;
	struct postern_sync_changes ch;

	j->rc = 0;
	if (a->expunge)
		j->rc = imap_storage->expunge(a->mb, NULL, 0, j->pool, &ch,
		                              &j->err);
	imap_storage->close(a->mb);
}

static void
close_done(struct imap_job *j)
{
	if (j->rc < 0)
		imap_log(j->s, POSTERN_LOG_WARNING,
		         "CLOSE: expunge failed: %s", j->err.text);
	imap_reply(j->s, j->tag, "OK", "%s completed",
	           j->rc < 0 ? "CLOSE (without expunge)" : "Close");
}

static void
close_command(struct imap_cmd *c, int expunge)
{
	struct imap_job *j;
	struct close_arg *a;

	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s takes no arguments",
		           c->name);
		return;
	}
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	imap_unwatch_selected(c->s);
	a->mb = c->s->mb;
	a->expunge = expunge && !c->s->readonly;
	c->s->mb = NULL;
	c->s->state = IMAP_AUTH;
	imap_job_run(j, close_work, close_done);
}

void
imap_cmd_close(struct imap_cmd *c)
{
	close_command(c, 1);
}

void
imap_cmd_unselect(struct imap_cmd *c)
{
	close_command(c, 0);
}

/* ---- EXPUNGE ----------------------------------------------------------*/

struct expunge_arg {
	struct postern_uid_range *uids;
	size_t n;
	int by_uid;
};

static void
expunge_work(struct imap_job *j)
{
	struct expunge_arg *a = j->arg;
	struct postern_sync_changes ch;

	j->rc = imap_storage->expunge(j->s->mb, a->by_uid ? a->uids : NULL,
	                              a->n, j->pool, &ch, &j->err);
	if (j->rc == 0)
		imap_sync_format(j->s, &j->out, &ch, j->pool);
}

static void
expunge_done(struct imap_job *j)
{
	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "Expunge completed");
}

void
imap_cmd_expunge(struct imap_cmd *c)
{
	struct imap_seqset set = { 0 };
	struct postern_uid_range *u = NULL;
	size_t n = 0;
	struct imap_job *j;
	struct expunge_arg *a;

	if (c->uid && (imap_arg_sp(&c->args) < 0 ||
	               imap_arg_seqset(&c->args, &set) < 0)) {
		imap_reply(c->s, c->tag, "BAD", "UID EXPUNGE: %s",
		           c->args.error);
		return;
	}
	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "EXPUNGE: %s", c->args.error);
		return;
	}
	if (need_writable(c) < 0)
		return;
	if (c->uid && imap_set_to_uids(c, &set, 1, &u, &n) < 0)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->by_uid = c->uid;
	a->uids = ranges_copy(j, u, n);
	a->n = n;
	j->sync = 1;
	if (c->uid && n == 0) {
		/* Nothing of the set exists: only the sync. */
		imap_job_run(j, NULL, expunge_done);
		return;
	}
	imap_job_run(j, expunge_work, expunge_done);
}

/* ---- STORE ------------------------------------------------------------*/

struct store_arg {
	struct postern_uid_range *uids;
	size_t n;
	enum postern_store_op op;
	uint32_t flags;
	const char **kw;
	uint32_t nkw;
	uint64_t unchangedsince;
	int unchanged_zero;  /* UNCHANGEDSINCE 0: every message fails */
	int silent, by_uid;
	uint32_t *failed;
	size_t nfailed;
};

static void
store_work(struct imap_job *j)
{
	struct store_arg *a = j->arg;
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	uint32_t count, seq;
	const struct postern_message_info *mi;

	count = imap_storage->count(s->mb);
	if (a->unchanged_zero) {
		/* RFC 7162 3.1.3: every mod-sequence is above 0, so nothing
		 * is stored and every message of the set is MODIFIED. */
		a->failed = imap_host->pool_alloc(j->pool, (count + 1) *
		                                           sizeof(uint32_t));
		for (seq = 1; seq <= count; seq++) {
			mi = imap_storage->message(s->mb, seq);
			if (!mi->expunged && postern_uid_ranges_have(a->uids, a->n, mi->uid))
				a->failed[a->nfailed++] = mi->uid;
		}
		j->rc = 0;
		return;
	}
	j->rc = imap_storage->store(s->mb, a->uids, a->n, a->op, a->flags,
	                            a->kw, a->nkw, a->unchangedsince, j->pool,
	                            &a->failed, &a->nfailed, &j->err);
	if (j->rc < 0)
		return;
	imap_format_keywords(s, &j->out);
	imap_storage->status(s->mb, &st);
	for (seq = 1; seq <= count; seq++) {
		mi = imap_storage->message(s->mb, seq);
		if (mi->expunged || !postern_uid_ranges_have(a->uids, a->n, mi->uid))
			continue;
		if (a->silent && a->unchangedsince == 0)
			continue;
		if (a->nfailed > 0) {
			size_t k;
			for (k = 0; k < a->nfailed; k++)
				if (a->failed[k] == mi->uid)
					break;
			if (k < a->nfailed)
				continue;
		}
		imap_format_flags_fetch(s, &j->out, seq, a->by_uid, &st);
	}
}

static void
store_done(struct imap_job *j)
{
	struct store_arg *a = j->arg;
	struct imap_buf b = { 0 };
	size_t i, k;

	if (j->rc < 0) {
		imap_reply_storage_err(j->s, j->tag, &j->err);
		return;
	}
	if (a->nfailed == 0) {
		imap_reply(j->s, j->tag, "OK", "Store completed");
		return;
	}
	/* [MODIFIED set]: UIDs for UID STORE, else sequence numbers. */
	for (i = 0; i < a->nfailed; i++) {
		uint32_t v = a->failed[i];
		if (!a->by_uid)
			v = imap_storage->seq_of_uid(j->s->mb, v);
		a->failed[i] = v;
	}
	for (i = 1; i < a->nfailed; i++)
		for (k = i; k > 0 && a->failed[k - 1] > a->failed[k]; k--) {
			uint32_t t = a->failed[k];
			a->failed[k] = a->failed[k - 1];
			a->failed[k - 1] = t;
		}
	imap_buf_uidset(&b, a->failed, a->nfailed);
	imap_reply(j->s, j->tag, "OK", "[MODIFIED %s] Conditional store "
	                               "completed", b.p);
	imap_buf_free(&b);
}

void
imap_cmd_store(struct imap_cmd *c)
{
	struct imap_args *ar = &c->args;
	struct imap_seqset set;
	struct imap_str item, mod;
	struct imap_job *j;
	struct store_arg *a;
	struct postern_uid_range *u;
	size_t n, i;
	uint64_t unch = 0;
	int has_unch = 0;
	uint32_t flags, nkw;
	const char **kw;
	enum postern_store_op op = POSTERN_STORE_SET;
	const char *what;

	if (imap_arg_sp(ar) < 0 || imap_arg_seqset(ar, &set) < 0 ||
	    imap_arg_sp(ar) < 0)
		goto bad;
	if (imap_arg_try_char(ar, '(')) {
		if (imap_arg_atom(ar, &mod) < 0 ||
		    !imap_str_is(&mod, "UNCHANGEDSINCE") || imap_arg_sp(ar) < 0 ||
		    imap_arg_number64(ar, &unch) < 0 ||
		    imap_arg_char(ar, ')') < 0 || imap_arg_sp(ar) < 0)
			goto bad;
		imap_condstore_enable(c->s);
		has_unch = 1;
	}
	if (imap_arg_atom(ar, &item) < 0 || imap_arg_sp(ar) < 0)
		goto bad;
	what = item.s;
	if (item.len > 0 && (what[0] == '+' || what[0] == '-')) {
		op = what[0] == '+' ? POSTERN_STORE_ADD : POSTERN_STORE_REMOVE;
		item.s++;
		item.len--;
	}
	if (!imap_str_is(&item, "FLAGS") && !imap_str_is(&item, "FLAGS.SILENT"))
		goto bad;
	if (imap_parse_flag_list(c, &flags, &kw, &nkw, 0) < 0)
		return;
	if (imap_arg_end(ar) < 0)
		goto bad;
	if (need_writable(c) < 0)
		return;
	if (imap_set_to_uids(c, &set, c->uid, &u, &n) < 0)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->uids = ranges_copy(j, u, n);
	a->n = n;
	a->op = op;
	a->flags = flags;
	a->nkw = nkw;
	a->kw = imap_host->pool_alloc(j->pool, (nkw + 1) * sizeof(*a->kw));
	for (i = 0; i < nkw; i++)
		a->kw[i] = imap_host->pool_strndup(j->pool, kw[i],
		                                   strlen(kw[i]));
	a->unchangedsince = unch;
	a->unchanged_zero = has_unch && unch == 0;
	a->silent = item.len == 12;
	a->by_uid = c->uid;
	j->sync = 1;
	j->sync_flags = POSTERN_SYNC_NO_EXPUNGE;
	if (n == 0) {
		imap_job_run(j, NULL, store_done);
		return;
	}
	imap_job_run(j, store_work, store_done);
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "STORE: %s",
	           ar->error != NULL ? ar->error : "invalid arguments");
}

/* ---- COPY and MOVE ----------------------------------------------------*/

struct copy_arg {
	struct postern_uid_range *uids;
	size_t n;
	char *dest;
	int move;
	uint32_t *src, *dst, uidvalidity;
	size_t ncopied;
	struct postern_sync_changes expunged;
};

static void
copy_work(struct imap_job *j)
{
	struct copy_arg *a = j->arg;

	j->rc = imap_storage->copy(j->s->mb, a->uids, a->n, a->dest, a->move,
	                           j->pool, &a->src, &a->dst, &a->ncopied,
	                           &a->uidvalidity,
	                           a->move ? &a->expunged : NULL, &j->err);
	if (j->rc < 0 || !a->move)
		return;
	/* RFC 6851 4.3: COPYUID comes untagged, before the expunges. */
	if (a->ncopied > 0) {
		imap_buf_printf(&j->out, "* OK [COPYUID %u ", a->uidvalidity);
		imap_buf_uidset(&j->out, a->src, a->ncopied);
		imap_buf_str(&j->out, " ");
		imap_buf_uidset(&j->out, a->dst, a->ncopied);
		imap_buf_str(&j->out, "] Moved\r\n");
	}
	imap_sync_format(j->s, &j->out, &a->expunged, j->pool);
}

static void
copy_done(struct imap_job *j)
{
	struct copy_arg *a = j->arg;
	struct imap_buf b = { 0 };

	if (j->rc < 0) {
		if (j->err.code == POSTERN_SE_NONEXISTENT)
			imap_reply(j->s, j->tag, "NO", "[TRYCREATE] %s",
			           j->err.text);
		else
			imap_reply_storage_err(j->s, j->tag, &j->err);
		return;
	}
	if (a->move || a->ncopied == 0) {
		imap_reply(j->s, j->tag, "OK", "%s completed",
		           a->move ? "Move" : "Copy");
		return;
	}
	imap_buf_uidset(&b, a->src, a->ncopied);
	imap_buf_str(&b, " ");
	imap_buf_uidset(&b, a->dst, a->ncopied);
	imap_reply(j->s, j->tag, "OK", "[COPYUID %u %s] Copy completed",
	           a->uidvalidity, b.p);
	imap_buf_free(&b);
}

static void
copy_command(struct imap_cmd *c, int move)
{
	struct imap_seqset set;
	struct imap_str mbox;
	struct postern_uid_range *u;
	size_t n;
	struct imap_job *j;
	struct copy_arg *a;
	char *dest;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_seqset(&c->args, &set) < 0 ||
	    imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &mbox) < 0 ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
		           c->args.error);
		return;
	}
	if ((dest = imap_mailbox_arg(c, &mbox)) == NULL)
		return;
	if (move && need_writable(c) < 0)
		return;
	if (imap_set_to_uids(c, &set, c->uid, &u, &n) < 0)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->uids = ranges_copy(j, u, n);
	a->n = n;
	a->dest = imap_host->pool_strndup(j->pool, dest, strlen(dest));
	a->move = move;
	j->sync = 1;
	if (!move)
		j->sync_flags = POSTERN_SYNC_NO_EXPUNGE;
	if (n == 0) {
		imap_job_run(j, NULL, copy_done);
		return;
	}
	imap_job_run(j, copy_work, copy_done);
}

void
imap_cmd_copy(struct imap_cmd *c)
{
	copy_command(c, 0);
}

void
imap_cmd_move(struct imap_cmd *c)
{
	copy_command(c, 1);
}
