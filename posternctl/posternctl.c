/*
 * posternctl.c - administration through the configured modules.
 *
 * It reads the configuration and loads and initialises the modules
 * exactly as `posternd -t` does (process_setup), then calls the services
 * they publish directly: users and aliases through "auth", mailboxes
 * through "storage".  A command-line tool has no event loop, so the
 * blocking service functions are simply called; no worker starts.
 *
 * Passwords never come from the command line (other users see argv in
 * ps): they are read from the terminal without echo, twice, or as one
 * line from standard input with --password-stdin.
 *
 * `stats` asks the running server instead: it fetches GET /metrics from
 * the configuration's metrics_listen.
 *
 * Exit status: 0 done, 1 an error (the message says what and where),
 * 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <postern/postern.h>
#include <postern/relay.h>

#include "host.h"
#include "log.h"
#include "metrics_http.h"
#include "process.h"
#include "service.h"

#ifndef POSTERN_SYSCONFDIR
#define POSTERN_SYSCONFDIR "/etc/postern"
#endif

#define EXIT_USAGE 2
#define PASSWORD_MAX 1024
#define ME "posternctl"

struct cmd;

/* What a command gets: its arguments, and the services it asked for. */
struct ctx {
	const char *config;
	int argc;
	char **argv;
	const char *home, *mail;
	int password_stdin;
	const struct postern_auth *auth;
	const struct postern_storage *storage;
	postern_pool_t *pool;
};

struct cmd {
	const char *group, *verb;
	int min_args, max_args; /* positional arguments; -1: no limit */
	unsigned options;       /* OPT_* allowed */
	int (*run)(struct ctx *c);
};

#define OPT_HOME 0x1u
#define OPT_MAIL 0x2u
#define OPT_STDIN 0x4u

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: posternctl [-c FILE] COMMAND\n"
	    "  user add NAME [--home DIR] [--mail LOCATION] "
	    "[--password-stdin]\n"
	    "  user passwd NAME [--password-stdin]\n"
	    "  user del NAME\n"
	    "  user list\n"
	    "  alias add ADDRESS TARGET...   (adds targets; @domain: "
	    "catch-all)\n"
	    "  alias del ADDRESS\n"
	    "  alias list\n"
	    "  mailbox list USER\n"
	    "  queue list                    (the relay's queue, with counts)\n"
	    "  queue show ID | hold ID | release ID | delete ID\n"
	    "  queue flush                   (try every deferred message now)\n"
	    "  stats                         (the counters of metrics_listen)\n"
	    "  -c FILE  configuration (default %s/postern.conf)\n"
	    "Passwords are asked twice on the terminal, or read as one line "
	    "from\nstandard input with --password-stdin.\n",
	    POSTERN_SYSCONFDIR);
}

static void
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fputs(ME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- passwords -------------------------------------------------------- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void
restore_tty(int signo)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(signo, SIG_DFL);
	raise(signo);
}

static int
read_line(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == len - 1)
		return -2; /* longer than the buffer */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

static int
prompt(const char *text, char *buf, size_t len)
{
	struct termios quiet;
	int rc;

	fputs(text, stderr);
	fflush(stderr);
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	tty_changed = 1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	rc = read_line(buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	fputc('\n', stderr);
	return rc;
}

static int
password_from_tty(char *pw, size_t len)
{
	char again[PASSWORD_MAX + 2];
	int rc = -1;

	if (!isatty(STDIN_FILENO) ||
	    tcgetattr(STDIN_FILENO, &saved_tty) < 0) {
		fail("standard input is not a terminal: give the password "
		     "with --password-stdin");
		return -1;
	}
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	if (prompt("New password: ", pw, len) < 0 ||
	    prompt("Retype new password: ", again, sizeof(again)) < 0)
		fail("no password read (or longer than %d bytes)",
		     PASSWORD_MAX);
	else if (strcmp(pw, again) != 0)
		fail("the passwords do not match; nothing changed");
	else
		rc = 0;
	explicit_bzero(again, sizeof(again));
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return rc;
}

/* Reads the new password into pw[len]; -1 after saying why. */
static int
get_password(const struct ctx *c, char *pw, size_t len)
{
	int rc;

	if (!c->password_stdin)
		rc = password_from_tty(pw, len);
	else if ((rc = read_line(pw, len)) == -1)
		fail("no password on standard input");
	else if (rc == -2)
		fail("password on standard input longer than %d bytes",
		     PASSWORD_MAX);
	if (rc == 0 && pw[0] == '\0') {
		fail("empty password refused");
		rc = -1;
	}
	return rc < 0 ? -1 : 0;
}

/* ---- services --------------------------------------------------------- */

static int
need_auth(struct ctx *c, int admin)
{
	c->auth = service_lookup(ME, POSTERN_AUTH_SERVICE, POSTERN_AUTH_MAJOR,
	                         POSTERN_AUTH_MINOR, 1);
	if (c->auth == NULL) {
		fail("%s: no auth module is loaded (add one, e.g. "
		     "\"auth_passwd\", to `modules`)", c->config);
		return -1;
	}
	if (admin && (c->auth->user_set == NULL ||
	              c->auth->user_delete == NULL ||
	              c->auth->alias_set == NULL ||
	              c->auth->alias_delete == NULL ||
	              c->auth->alias_list == NULL)) {
		fail("auth backend '%s' is read-only: it cannot be changed "
		     "from here", c->auth->name);
		return -1;
	}
	return 0;
}

static int
auth_failed(const struct ctx *c, int rc, const char *what)
{
	if (rc == POSTERN_AUTH_TEMPFAIL)
		fail("%s: auth backend '%s' cannot answer now (see the "
		     "messages above)", what, c->auth->name);
	else
		fail("%s: no such user", what);
	return 1;
}

/* ---- users ------------------------------------------------------------ */

static int
user_change(struct ctx *c, int add)
{
	struct postern_user u = { .size = sizeof(u) };
	char pw[PASSWORD_MAX + 2], err[512];
	const char *name = c->argv[0];
	int rc;

	if (need_auth(c, 1) < 0)
		return 1;
	rc = c->auth->lookup(name, c->pool, &u);
	if (add && rc == POSTERN_AUTH_YES) {
		fail("user '%s' already exists (`posternctl user passwd %s` "
		     "changes the password)", u.name, name);
		return 1;
	}
	if ((add && rc != POSTERN_AUTH_NO) ||
	    (!add && rc != POSTERN_AUTH_YES))
		return auth_failed(c, rc, name);
	if (get_password(c, pw, sizeof(pw)) < 0)
		return 1;
	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	u.home = c->home;
	u.mail = c->mail;
	rc = c->auth->user_set(name, pw, add ? &u : NULL, err, sizeof(err));
	explicit_bzero(pw, sizeof(pw));
	if (rc < 0) {
		fail("%s", err);
		return 1;
	}
	return 0;
}

static int
user_add(struct ctx *c)
{
	return user_change(c, 1);
}

static int
user_passwd(struct ctx *c)
{
	return user_change(c, 0);
}

static int
user_del(struct ctx *c)
{
	char err[512];

	if (need_auth(c, 1) < 0)
		return 1;
	if (c->auth->user_delete(c->argv[0], err, sizeof(err)) < 0) {
		fail("%s", err);
		return 1;
	}
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
user_list(struct ctx *c)
{
	const char **names;
	size_t i, n;
	int rc;

	if (need_auth(c, 0) < 0)
		return 1;
	if ((rc = c->auth->list(c->pool, &names, &n)) != POSTERN_AUTH_YES)
		return auth_failed(c, rc, "user list");
	if (n > 0)
		qsort(names, n, sizeof(*names), str_cmp);
	for (i = 0; i < n; i++)
		printf("%s\n", names[i]);
	return 0;
}

/* ---- aliases ---------------------------------------------------------- */

/* The targets `address` has now, split (from the pool), or none. */
static size_t
current_targets(struct ctx *c, const char *address, const char **out,
                size_t max)
{
	const char **addrs, **targets;
	char *copy, *tok, *save = NULL;
	size_t i, n, k = 0;

	if (c->auth->alias_list(c->pool, &addrs, &targets, &n) < 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (strcasecmp(addrs[i], address) != 0)
			continue;
		copy = host_table()->pool_strndup(c->pool, targets[i],
		                                  strlen(targets[i]));
		for (tok = strtok_r(copy, " ", &save); tok != NULL && k < max;
		     tok = strtok_r(NULL, " ", &save))
			out[k++] = tok;
	}
	return k;
}

static int
alias_add(struct ctx *c)
{
	const char *address = c->argv[0], **targets;
	size_t n, i, j, max = (size_t)c->argc + 1024;
	char err[512];
	int dup;

	if (need_auth(c, 1) < 0)
		return 1;
	targets = host_table()->pool_alloc(c->pool, max * sizeof(*targets));
	n = current_targets(c, address, targets, 1024);
	for (i = 1; i < (size_t)c->argc; i++) {
		for (dup = 0, j = 0; j < n && !dup; j++)
			dup = strcasecmp(targets[j], c->argv[i]) == 0;
		if (!dup)
			targets[n++] = c->argv[i];
	}
	if (c->auth->alias_set(address, targets, n, err, sizeof(err)) < 0) {
		fail("%s", err);
		return 1;
	}
	return 0;
}

static int
alias_del(struct ctx *c)
{
	char err[512];

	if (need_auth(c, 1) < 0)
		return 1;
	if (c->auth->alias_delete(c->argv[0], err, sizeof(err)) < 0) {
		fail("%s", err);
		return 1;
	}
	return 0;
}

static int
alias_list(struct ctx *c)
{
	const char **addrs, **targets;
	size_t i, n, k;

	if (need_auth(c, 1) < 0)
		return 1;
	if (c->auth->alias_list(c->pool, &addrs, &targets, &n) < 0) {
		fail("alias list: auth backend '%s' cannot answer now (see "
		     "the messages above)", c->auth->name);
		return 1;
	}
	for (i = 0; i < n; i++) {
		printf("%s: ", addrs[i]);
		for (k = 0; targets[i][k] != '\0'; k++)
			if (targets[i][k] == ' ')
				fputs(", ", stdout);
			else
				putchar(targets[i][k]);
		putchar('\n');
	}
	return 0;
}

/* ---- mailboxes -------------------------------------------------------- */

static const struct {
	unsigned bit;
	const char *name;
} mbox_attrs[] = {
	{ POSTERN_MBOX_NOSELECT, "\\Noselect" },
	{ POSTERN_MBOX_NOINFERIORS, "\\Noinferiors" },
	{ POSTERN_MBOX_HASCHILDREN, "\\HasChildren" },
	{ POSTERN_MBOX_HASNOCHILDREN, "\\HasNoChildren" },
	{ POSTERN_MBOX_MARKED, "\\Marked" },
	{ POSTERN_MBOX_UNMARKED, "\\Unmarked" },
	{ POSTERN_MBOX_SUBSCRIBED, "\\Subscribed" },
	{ POSTERN_MBOX_NONEXISTENT, "\\NonExistent" },
	{ POSTERN_MBOX_ALL, "\\All" },
	{ POSTERN_MBOX_ARCHIVE, "\\Archive" },
	{ POSTERN_MBOX_DRAFTS, "\\Drafts" },
	{ POSTERN_MBOX_FLAGGED, "\\Flagged" },
	{ POSTERN_MBOX_JUNK, "\\Junk" },
	{ POSTERN_MBOX_SENT, "\\Sent" },
	{ POSTERN_MBOX_TRASH, "\\Trash" },
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct postern_mailbox_entry *)a)->name,
	              ((const struct postern_mailbox_entry *)b)->name);
}

static void
print_mailboxes(struct postern_mailbox_entry *e, size_t n)
{
	size_t i, k;
	int first;

	if (n > 0)
		qsort(e, n, sizeof(*e), entry_cmp);
	for (i = 0; i < n; i++) {
		printf("%s (", e[i].name);
		first = 1;
		for (k = 0; k < sizeof(mbox_attrs) / sizeof(mbox_attrs[0]);
		     k++) {
			if (!(e[i].attrs & mbox_attrs[k].bit))
				continue;
			printf("%s%s", first ? "" : " ", mbox_attrs[k].name);
			first = 0;
		}
		printf(")\n");
	}
}

static int
mailbox_list(struct ctx *c)
{
	struct postern_user u = { .size = sizeof(u) };
	struct postern_storage_err err = { POSTERN_SE_OK, "" };
	struct postern_mailbox_entry *entries;
	postern_store_t *st;
	size_t n;
	int rc;

	c->storage = service_lookup(ME, POSTERN_STORAGE_SERVICE,
	                            POSTERN_STORAGE_MAJOR,
	                            POSTERN_STORAGE_MINOR, 1);
	if (c->storage == NULL) {
		fail("%s: no storage module is loaded (add one, e.g. "
		     "\"storage_maildir\", to `modules`)", c->config);
		return 1;
	}
	if (need_auth(c, 0) < 0)
		return 1;
	if ((rc = c->auth->lookup(c->argv[0], c->pool, &u)) !=
	    POSTERN_AUTH_YES)
		return auth_failed(c, rc, c->argv[0]);
	if (c->storage->store_open(&u, &st, &err) != 0) {
		fail("%s: cannot open the mail of '%s': %s", c->storage->name,
		     u.name, err.text);
		return 1;
	}
	rc = c->storage->list(st, c->pool, &entries, &n, &err);
	if (rc != 0)
		fail("%s: cannot list the mailboxes of '%s': %s",
		     c->storage->name, u.name, err.text);
	else
		print_mailboxes(entries, n);
	c->storage->store_close(st);
	return rc != 0 ? 1 : 0;
}

/* ---- the relay's queue ------------------------------------------------ */

static const struct postern_relay_admin *
need_relay(struct ctx *c)
{
	const struct postern_relay_admin *a;

	a = service_lookup(ME, POSTERN_RELAY_ADMIN_SERVICE,
	                   POSTERN_RELAY_ADMIN_MAJOR,
	                   POSTERN_RELAY_ADMIN_MINOR, 1);
	if (a == NULL)
		fail("%s: no relay module is loaded (add \"relay\" to "
		     "`modules`)", c->config);
	return a;
}

struct queue_counts {
	size_t total, due, deferred, held, damaged;
	time_t now;
};

static void
queue_entry(const struct postern_relay_queued *q, void *arg)
{
	struct queue_counts *n = arg;
	char when[32];
	struct tm tm;
	time_t t = (time_t)q->arrival;
	const char *state;

	n->total++;
	if (q->error != NULL) {
		n->damaged++;
		printf("%s  DAMAGED: %s\n", q->id, q->error);
		return;
	}
	if (q->held) {
		state = "held";
		n->held++;
	} else if (q->next_try > (int64_t)n->now) {
		state = "deferred";
		n->deferred++;
	} else {
		state = "due";
		n->due++;
	}
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s  %-8s %s %8llu  <%s>  %zu rcpt: %zu pending, %zu sent, "
	       "%zu failed\n", q->id, state, when,
	       (unsigned long long)q->length, q->sender, q->nrcpts,
	       q->pending, q->sent, q->failed);
}

static int
queue_list(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);
	struct queue_counts n = { .now = time(NULL) };
	char err[1024];

	if (a == NULL)
		return 1;
	if (a->list(queue_entry, &n, err, sizeof(err)) < 0) {
		fail("queue list: %s", err);
		return 1;
	}
	printf("%zu message(s): %zu due, %zu deferred, %zu held, "
	       "%zu damaged\n", n.total, n.due, n.deferred, n.held,
	       n.damaged);
	return 0;
}

static void
print_line(const char *line, void *arg)
{
	(void)arg;
	puts(line);
}

static int
queue_show(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);
	char err[1024];

	if (a == NULL)
		return 1;
	if (a->show(c->argv[0], print_line, NULL, err, sizeof(err)) < 0) {
		fail("queue show: %s", err);
		return 1;
	}
	return 0;
}

/* hold, release, delete: one id, one function. */
static int
queue_one(struct ctx *c, const char *verb,
          int (*fn)(const char *id, char *err, size_t errlen))
{
	char err[1024];

	if (fn(c->argv[0], err, sizeof(err)) < 0) {
		fail("queue %s: %s", verb, err);
		return 1;
	}
	return 0;
}

static int
queue_hold(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);

	return a == NULL ? 1 : queue_one(c, "hold", a->hold);
}

static int
queue_release(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);

	return a == NULL ? 1 : queue_one(c, "release", a->release);
}

static int
queue_delete(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);

	return a == NULL ? 1 : queue_one(c, "delete", a->remove);
}

static int
queue_flush(struct ctx *c)
{
	const struct postern_relay_admin *a = need_relay(c);
	char err[1024];

	if (a == NULL)
		return 1;
	if (a->flush(err, sizeof(err)) < 0) {
		fail("queue flush: %s", err);
		return 1;
	}
	return 0;
}

/* ---- stats ---------------------------------------------------------- */

#define STATS_TIMEOUT_MS 10000

/* The running server's counters, from its endpoint: the samples, without
 * the # HELP and # TYPE lines. */
static int
stats_show(struct ctx *c)
{
	const char *listen = process_metrics_listen();
	char why[512], *body, *line, *save = NULL;

	(void)c;
	if (listen[0] == '\0') {
		fail("stats: metrics_listen is not set in the configuration");
		return 1;
	}
	if (metrics_http_fetch(listen, STATS_TIMEOUT_MS, &body, why,
	                       sizeof(why)) < 0) {
		fail("stats: %s", why);
		return 1;
	}
	for (line = strtok_r(body, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#')
			printf("%s\n", line);
	free(body);
	return 0;
}

/* ---- command line ----------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "user", "add", 1, 1, OPT_HOME | OPT_MAIL | OPT_STDIN, user_add },
	{ "user", "passwd", 1, 1, OPT_STDIN, user_passwd },
	{ "user", "del", 1, 1, 0, user_del },
	{ "user", "list", 0, 0, 0, user_list },
	{ "alias", "add", 2, -1, 0, alias_add },
	{ "alias", "del", 1, 1, 0, alias_del },
	{ "alias", "list", 0, 0, 0, alias_list },
	{ "mailbox", "list", 1, 1, 0, mailbox_list },
	{ "queue", "list", 0, 0, 0, queue_list },
	{ "queue", "show", 1, 1, 0, queue_show },
	{ "queue", "hold", 1, 1, 0, queue_hold },
	{ "queue", "release", 1, 1, 0, queue_release },
	{ "queue", "delete", 1, 1, 0, queue_delete },
	{ "queue", "flush", 0, 0, 0, queue_flush },
	{ "stats", "", 0, 0, 0, stats_show },
};

/* Takes the command's options out of argv (any position), leaving the
 * positional arguments.  -1 after saying what is wrong. */
static int
parse_cmd_options(const struct cmd *cmd, struct ctx *c)
{
	int i, n = 0;

	for (i = 0; i < c->argc; i++) {
		const char *a = c->argv[i];

		if ((cmd->options & OPT_HOME) && strcmp(a, "--home") == 0 &&
		    i + 1 < c->argc)
			c->home = c->argv[++i];
		else if ((cmd->options & OPT_MAIL) &&
		         strcmp(a, "--mail") == 0 && i + 1 < c->argc)
			c->mail = c->argv[++i];
		else if ((cmd->options & OPT_STDIN) &&
		         strcmp(a, "--password-stdin") == 0)
			c->password_stdin = 1;
		else if (a[0] == '-' && a[1] == '-') {
			fail("%s %s: unknown option or missing value: %s",
			     cmd->group, cmd->verb, a);
			return -1;
		} else
			c->argv[n++] = c->argv[i];
	}
	c->argc = n;
	if (n < cmd->min_args || (cmd->max_args >= 0 && n > cmd->max_args)) {
		fail("%s %s: wrong number of arguments", cmd->group,
		     cmd->verb);
		return -1;
	}
	return 0;
}

static const struct cmd *
find_cmd(const char *group, const char *verb)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].group, group) == 0 &&
		    strcmp(cmds[i].verb, verb) == 0)
			return &cmds[i];
	return NULL;
}

/* Run as root, files this tool makes (the users file, for one) get the
 * workers' group, so that they can read what mode 0640 lets them:
 * a new file takes the effective group of its maker.  Files that exist
 * keep their owner, group and mode. */
static void
worker_group_files(void)
{
	gid_t gid;

	if (process_worker_group(&gid) && setegid(gid) < 0)
		fail("cannot take the workers' group %d for new files: %s",
		     (int)gid, strerror(errno));
}

static int
run(const struct cmd *cmd, struct ctx *c)
{
	int rc = 1;

	log_open(ME, 0, POSTERN_LOG_WARNING);
	if (process_setup(c->config, PROCESS_QUIET) == 0) {
		worker_group_files();
		c->pool = host_table()->pool_create(16384);
		rc = cmd->run(c);
		host_table()->pool_destroy(c->pool);
	}
	process_teardown();
	return rc;
}

int
main(int argc, char **argv)
{
	struct ctx c = { .config = POSTERN_SYSCONFDIR "/postern.conf" };
	const struct cmd *cmd;
	int ch, words;

	/* '+': options after the command belong to the command. */
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			c.config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* One word: stats; every other command has two. */
	words = argc - optind >= 1 && strcmp(argv[optind], "stats") == 0
	            ? 1 : 2;
	if (argc - optind < words ||
	    (cmd = find_cmd(argv[optind], words == 2 ? argv[optind + 1]
	                                             : "")) == NULL) {
		if (argc - optind >= 2)
			fail("unknown command '%s %s'", argv[optind],
			     argv[optind + 1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	c.argc = argc - optind - words;
	c.argv = argv + optind + words;
	if (parse_cmd_options(cmd, &c) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return run(cmd, &c);
}
