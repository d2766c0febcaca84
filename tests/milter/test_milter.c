/*
 * test_milter.c - a milter built on Debian's libmilter (the library
 * Sendmail, opendkim and most milters use) that the filter_milter
 * integration test steers through the mail it is sent:
 *
 *	MAIL FROM:<tempfail@...>      451 at MAIL
 *	RCPT TO:<reject-me@...>       550 5.7.1 for that recipient only
 *	X-Test-Action: rewrite        at end of message: Subject prefixed
 *	                              with "[milter] ", X-Milter added at the
 *	                              end, X-Top inserted at the top,
 *	                              X-Test-Action deleted, bob@example.org
 *	                              added, the sender changed to
 *	                              changed@remote.example
 *	X-Test-Action: replbody       the body becomes "replaced by milter"
 *	X-Test-Action: reject         554 5.7.0 "test milter: refused"
 *	X-Test-Action: discard        discarded
 *	X-Test-Action: quarantine     quarantined
 *	X-Test-Action: sleep          no answer for 5 s at end of message
 *
 * It prints one line per callback ("connect 127.0.0.1", "header
 * Subject", "eom", "abort", "close") on stdout for the test to read.
 *
 * Usage: test_milter inet:PORT@127.0.0.1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

struct priv {
	char action[64];
	char subject[512];
};

/* "what arg" on a line of its own. */
static void
say2(const char *what, const char *arg)
{
	printf("%s%s%s\n", what, arg != NULL && *arg ? " " : "",
	       arg != NULL ? arg : "(null)");
	fflush(stdout);
}

static struct priv *
priv_of(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			abort();
		smfi_setpriv(ctx, p);
	}
	return p;
}

static sfsistat
t_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	(void)sa;
	say2("connect", smfi_getsymval(ctx, "{client_addr}"));
	say2("hostname", hostname);
	return SMFIS_CONTINUE;
}

static sfsistat
t_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	say2("helo", helo);
	return SMFIS_CONTINUE;
}

static sfsistat
t_envfrom(SMFICTX *ctx, char **argv)
{
	struct priv *p = priv_of(ctx);

	memset(p, 0, sizeof(*p));
	say2("mail", argv[0]);
	say2("macro i", smfi_getsymval(ctx, "i"));
	if (strncasecmp(argv[0], "<tempfail@", 10) == 0)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

static sfsistat
t_envrcpt(SMFICTX *ctx, char **argv)
{
	say2("rcpt", argv[0]);
	if (strncasecmp(argv[0], "<reject-me@", 11) == 0) {
		smfi_setreply(ctx, "550", "5.7.1", "test milter: recipient "
		              "refused");
		return SMFIS_REJECT;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
t_header(SMFICTX *ctx, char *name, char *value)
{
	struct priv *p = priv_of(ctx);

	say2("header", name);
	if (strcasecmp(name, "X-Test-Action") == 0)
		snprintf(p->action, sizeof(p->action), "%s", value);
	if (strcasecmp(name, "Subject") == 0)
		snprintf(p->subject, sizeof(p->subject), "%s", value);
	return SMFIS_CONTINUE;
}

static sfsistat
t_eoh(SMFICTX *ctx)
{
	(void)ctx;
	say2("eoh", "");
	return SMFIS_CONTINUE;
}

static sfsistat
t_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	char n[32];

	(void)ctx;
	(void)chunk;
	snprintf(n, sizeof(n), "%zu", len);
	say2("body", n);
	return SMFIS_CONTINUE;
}

static sfsistat
t_eom(SMFICTX *ctx)
{
	struct priv *p = priv_of(ctx);
	char subject[600];

	say2("eom", p->action);
	if (strcmp(p->action, "rewrite") == 0) {
		snprintf(subject, sizeof(subject), "[milter] %s", p->subject);
		smfi_chgheader(ctx, "Subject", 1, subject);
		smfi_addheader(ctx, "X-Milter", "yes");
		smfi_insheader(ctx, 0, "X-Top", "first");
		smfi_chgheader(ctx, "X-Test-Action", 1, NULL);
		smfi_addrcpt(ctx, "<bob@example.org>");
		smfi_chgfrom(ctx, "<changed@remote.example>", NULL);
	} else if (strcmp(p->action, "replbody") == 0) {
		static const char body[] = "replaced by milter\r\n";

		smfi_replacebody(ctx, (unsigned char *)body, strlen(body));
	} else if (strcmp(p->action, "reject") == 0) {
		smfi_setreply(ctx, "554", "5.7.0", "test milter: refused");
		return SMFIS_REJECT;
	} else if (strcmp(p->action, "discard") == 0) {
		return SMFIS_DISCARD;
	} else if (strcmp(p->action, "quarantine") == 0) {
		smfi_quarantine(ctx, "test milter says so");
	} else if (strcmp(p->action, "sleep") == 0) {
		sleep(5);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
t_abort(SMFICTX *ctx)
{
	(void)ctx;
	say2("abort", "");
	return SMFIS_CONTINUE;
}

static sfsistat
t_close(SMFICTX *ctx)
{
	free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, NULL);
	say2("close", "");
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "postern-test-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT |
	              SMFIF_DELRCPT | SMFIF_CHGBODY | SMFIF_QUARANTINE |
	              SMFIF_CHGFROM,
	.xxfi_connect = t_connect,
	.xxfi_helo = t_helo,
	.xxfi_envfrom = t_envfrom,
	.xxfi_envrcpt = t_envrcpt,
	.xxfi_header = t_header,
	.xxfi_eoh = t_eoh,
	.xxfi_body = t_body,
	.xxfi_eom = t_eom,
	.xxfi_abort = t_abort,
	.xxfi_close = t_close,
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_milter inet:PORT@127.0.0.1\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) == MI_FAILURE ||
	    smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "test_milter: cannot set up %s\n", argv[1]);
		return 1;
	}
	say2("ready", "");
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
