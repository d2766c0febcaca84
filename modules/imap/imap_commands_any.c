/*
 * imap_commands_any.c - commands valid in more than one state:
 * CAPABILITY, NOOP, LOGOUT (RFC 3501 6.1), ID (RFC 2971), ENABLE
 * (RFC 5161; UTF8=ACCEPT and IMAP4rev2 too), NAMESPACE (RFC 2342),
 * and CHECK (6.4.1), which is a NOOP for a store that is always
 * durable.
 */
#include <stdio.h>
#include <string.h>

#include "imap.h"

/* ID: at most this many field/value pairs (RFC 2971 section 3.3). */
#define ID_MAX_PAIRS 30

void
imap_cmd_capability(struct imap_cmd *c)
{
	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "CAPABILITY takes no arguments");
		return;
	}
	imap_untagged(c->s, "CAPABILITY %s", imap_capabilities(c->s));
	imap_reply(c->s, c->tag, "OK", "Capability completed");
}

static void
noop_done(struct imap_job *j)
{
	imap_reply(j->s, j->tag, "OK", "%s completed", (const char *)j->arg);
}

/* NOOP and CHECK: in the selected state, what others changed. */
static void
sync_command(struct imap_cmd *c, const char *what)
{
	struct imap_job *j;

	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s takes no arguments", what);
		return;
	}
	if (c->s->mb == NULL || imap_view_current(c->s)) {
		/* Nothing to tell: no job, no thread hop. */
		imap_reply(c->s, c->tag, "OK", "%s completed", what);
		return;
	}
	j = imap_job_new(c->s, c->tag, 0);
	j->arg = (void *)what;
	j->sync = 1;
	imap_job_run(j, NULL, noop_done);
}

void
imap_cmd_noop(struct imap_cmd *c)
{
	sync_command(c, "NOOP");
}

void
imap_cmd_check(struct imap_cmd *c)
{
	sync_command(c, "CHECK");
}

void
imap_cmd_logout(struct imap_cmd *c)
{
	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(c->s, "BYE Logging out");
	imap_reply(c->s, c->tag, "OK", "Logout completed");
	c->s->state = IMAP_LOGOUT;
	imap_host->session_close(c->s->ss);
}

void
imap_cmd_id(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_str field, value;
	int pairs = 0;

	if (imap_arg_sp(a) < 0)
		goto bad;
	if (!imap_arg_try_char(a, '(')) {
		if (imap_arg_nstring(a, &field) < 0 || field.s != NULL)
			goto bad;
	} else {
		while (!imap_arg_try_char(a, ')')) {
			if ((pairs > 0 && imap_arg_sp(a) < 0) ||
			    imap_arg_string(a, &field) < 0 ||
			    imap_arg_sp(a) < 0 ||
			    imap_arg_nstring(a, &value) < 0 ||
			    field.len > 30 || value.len > 1024 ||
			    ++pairs > ID_MAX_PAIRS)
				goto bad;
			if (imap_host->log_enabled(POSTERN_LOG_INFO) &&
			    value.s != NULL)
				imap_log(c->s, POSTERN_LOG_INFO,
				         "client ID %.*s=%.*s",
				         (int)field.len, field.s,
				         (int)value.len, value.s);
		}
	}
	if (imap_arg_end(a) < 0)
		goto bad;
	imap_untagged(c->s, "ID (\"name\" \"postern\" \"version\" \"%s\")",
	              imap_host->version);
	imap_reply(c->s, c->tag, "OK", "ID completed");
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "ID: %s",
	           a->error != NULL ? a->error : "invalid arguments");
}

/* What ENABLE knows (RFC 5161 4): CONDSTORE and QRESYNC (RFC 7162),
 * UTF8=ACCEPT (RFC 6855), IMAP4rev2 (RFC 9051). */
static const struct {
	const char *name;
	unsigned bit, implies;
} enable_caps[] = {
	{ "CONDSTORE", IMAP_ENABLED_CONDSTORE, 0 },
	{ "QRESYNC", IMAP_ENABLED_QRESYNC, IMAP_ENABLED_CONDSTORE },
	{ "UTF8=ACCEPT", IMAP_ENABLED_UTF8, 0 },
	{ "IMAP4rev2", IMAP_ENABLED_REV2, 0 },
};

void
imap_cmd_enable(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_str cap;
	unsigned now = 0;
	char list[80] = "";
	size_t i;

	if (imap_arg_at_end(a)) {
		imap_reply(c->s, c->tag, "BAD", "ENABLE needs a capability");
		return;
	}
	while (!imap_arg_at_end(a)) {
		if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &cap) < 0) {
			imap_reply(c->s, c->tag, "BAD", "ENABLE: %s", a->error);
			return;
		}
		/* Unknown capabilities are ignored (RFC 5161 3.1). */
		for (i = 0; i < sizeof(enable_caps) / sizeof(enable_caps[0]);
		     i++)
			if (imap_str_is(&cap, enable_caps[i].name))
				now |= enable_caps[i].bit |
				       enable_caps[i].implies;
	}
	/* ENABLE belongs to the authenticated state (RFC 5161 3.1, RFC
	 * 9051 6.3.1).  What changes how names and messages are shown
	 * cannot start under a mailbox the client was shown otherwise:
	 * its FLAGS, \Recent and SEARCH forms are already in use. */
	if (c->s->state == IMAP_SELECTED &&
	    (now & ~c->s->enabled & (IMAP_ENABLED_UTF8 | IMAP_ENABLED_REV2))) {
		imap_reply(c->s, c->tag, "BAD", "ENABLE of UTF8=ACCEPT or "
		           "IMAP4rev2 only before a mailbox is selected");
		return;
	}
	now &= ~c->s->enabled;
	for (i = 0; i < sizeof(enable_caps) / sizeof(enable_caps[0]); i++)
		if (now & enable_caps[i].bit) {
			strcat(list, " ");
			strcat(list, enable_caps[i].name);
		}
	c->s->enabled |= now;
	if (now & IMAP_ENABLED_CONDSTORE)
		c->s->condstore = 1;
	imap_untagged(c->s, "ENABLED%s", list);
	imap_reply(c->s, c->tag, "OK", "Enabled");
}

void
imap_cmd_namespace(struct imap_cmd *c)
{
	if (imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(c->s, "NAMESPACE ((\"\" \"%s%c\")) NIL NIL",
	              imap_storage->delimiter == '\\' ? "\\" : "",
	              imap_storage->delimiter);
	imap_reply(c->s, c->tag, "OK", "Namespace completed");
}
