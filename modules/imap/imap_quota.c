/*
 * imap_quota.c - QUOTA (RFC 9208) with the STORAGE and MESSAGE
 * resources: GETQUOTA, GETQUOTAROOT and SETQUOTA.
 *
 * The store keeps one quota root, named "", over every mailbox of the
 * user; its limits are the administrator's (storage_maildir's
 * quota_storage and quota_messages), so SETQUOTA is answered NO
 * [NOPERM] and QUOTASET is not announced.  While no limit is set no
 * mailbox has a quota root.  STORAGE counts units of 1024 octets.
 * Announced when the storage backend has quota_get (storage 1.3).
 */
#include <stdio.h>
#include <string.h>

#include "imap.h"

/* The one quota root. */
#define QUOTA_ROOT ""

/* Resources a SETQUOTA may name (RFC 9208 5); more is a client gone
 * wrong. */
#define QUOTA_MAX_RESOURCES 16

struct quota_arg {
	char *mailbox;          /* GETQUOTAROOT: its name, else NULL */
	struct postern_quota q;
};

/* "* QUOTA "" (STORAGE u l MESSAGE u l)" with the limited resources. */
static void
format_quota(struct imap_buf *out, const struct postern_quota *q)
{
	const char *sep = "";

	imap_buf_str(out, "* QUOTA \"" QUOTA_ROOT "\" (");
	if (q->storage_limit > 0) {
		imap_buf_printf(out, "STORAGE %llu %llu",
		                (unsigned long long)(q->storage_used / 1024),
		                (unsigned long long)(q->storage_limit / 1024));
		sep = " ";
	}
	if (q->message_limit > 0)
		imap_buf_printf(out, "%sMESSAGE %llu %llu", sep,
		                (unsigned long long)q->message_used,
		                (unsigned long long)q->message_limit);
	imap_buf_str(out, ")\r\n");
}

static int
has_root(const struct postern_quota *q)
{
	return q->storage_limit > 0 || q->message_limit > 0;
}

static void
quota_work(struct imap_job *j)
{
	struct quota_arg *a = j->arg;
	struct postern_mailbox_status st = { .size = sizeof(st) };

	/* GETQUOTAROOT of a mailbox that does not exist: NO
	 * [NONEXISTENT], as STATUS says */
	if (a->mailbox != NULL &&
	    imap_storage->status_by_name(j->s->store, a->mailbox, &st,
	                                 &j->err) < 0) {
		j->rc = -1;
		return;
	}
	a->q.size = sizeof(a->q);
	if ((j->rc = imap_storage->quota_get(j->s->store, &a->q,
	                                     &j->err)) < 0)
		return;
	if (a->mailbox != NULL) {
		imap_buf_str(&j->out, "* QUOTAROOT ");
		imap_buf_mailbox(&j->out, a->mailbox, IMAP_UTF8_NAMES(j->s));
		if (has_root(&a->q))
			imap_buf_str(&j->out, " \"" QUOTA_ROOT "\"");
		imap_buf_str(&j->out, "\r\n");
	} else if (!has_root(&a->q)) {
		j->err.code = POSTERN_SE_NONEXISTENT;
		snprintf(j->err.text, sizeof(j->err.text), "no such quota "
		         "root: no quota limit is set");
		j->rc = -1;
		return;
	}
	if (has_root(&a->q))
		format_quota(&j->out, &a->q);
}

static void
quota_done(struct imap_job *j)
{
	struct quota_arg *a = j->arg;

	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "%s completed",
		           a->mailbox != NULL ? "GETQUOTAROOT" : "GETQUOTA");
}

static void
quota_run(struct imap_cmd *c, const char *mailbox)
{
	struct imap_job *j = imap_job_new(c->s, c->tag, sizeof(struct quota_arg));
	struct quota_arg *a = j->arg;

	if (mailbox != NULL)
		a->mailbox = imap_host->pool_strndup(j->pool, mailbox,
		                                     strlen(mailbox));
	imap_job_run(j, quota_work, quota_done);
}

/* A quota root argument: "" is the one there is.  -1 with the reply
 * sent, also when the backend keeps no quota (QUOTA not announced). */
static int
quota_root_arg(struct imap_cmd *c, int *known)
{
	struct imap_str root;

	if (!IMAP_STORAGE_HAS(quota_get)) {
		imap_reply(c->s, c->tag, "BAD", "%s: the store keeps no "
		           "quota", c->name);
		return -1;
	}
	if (imap_arg_sp(&c->args) < 0 ||
	    imap_arg_astring(&c->args, &root) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
		           c->args.error);
		return -1;
	}
	*known = root.len == 0;
	return 0;
}

void
imap_cmd_getquota(struct imap_cmd *c)
{
	int known;

	if (quota_root_arg(c, &known) < 0)
		return;
	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "GETQUOTA: %s", c->args.error);
		return;
	}
	if (!known) {
		imap_reply(c->s, c->tag, "NO", "[NONEXISTENT] No such quota "
		           "root");
		return;
	}
	quota_run(c, NULL);
}

void
imap_cmd_getquotaroot(struct imap_cmd *c)
{
	struct imap_str mbox;
	char *name;

	if (!IMAP_STORAGE_HAS(quota_get)) {
		imap_reply(c->s, c->tag, "BAD", "GETQUOTAROOT: the store "
		           "keeps no quota");
		return;
	}
	if (imap_arg_sp(&c->args) < 0 ||
	    imap_arg_astring(&c->args, &mbox) < 0 ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "GETQUOTAROOT: %s",
		           c->args.error);
		return;
	}
	if ((name = imap_mailbox_arg(c, &mbox)) == NULL)
		return;
	quota_run(c, name);
}

/* SETQUOTA root SP "(" [resource SP number *(SP resource SP number)]
 * ")": parsed, then refused; the limits are the administrator's. */
void
imap_cmd_setquota(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_str res;
	uint64_t limit;
	int known, n = 0;

	if (quota_root_arg(c, &known) < 0)
		return;
	(void)known;  /* no root is set by a client, known or not */
	if (imap_arg_sp(a) < 0 || imap_arg_char(a, '(') < 0)
		goto bad;
	if (!imap_arg_try_char(a, ')')) {
		do {
			if (++n > QUOTA_MAX_RESOURCES) {
				a->error = "too many resources";
				goto bad;
			}
			if (imap_arg_atom(a, &res) < 0 ||
			    imap_arg_sp(a) < 0 ||
			    imap_arg_number64(a, &limit) < 0)
				goto bad;
		} while (imap_arg_try_char(a, ' '));
		if (imap_arg_char(a, ')') < 0)
			goto bad;
	}
	if (imap_arg_end(a) < 0)
		goto bad;
	imap_reply(c->s, c->tag, "NO", "[NOPERM] Quota limits are set by "
	           "the administrator");
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "SETQUOTA: %s",
	           a->error != NULL ? a->error : "invalid arguments");
}
