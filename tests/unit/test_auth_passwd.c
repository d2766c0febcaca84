/*
 * test_auth_passwd.c - the auth_passwd module, loaded through the core
 * loader with a configuration pointing at temporary files, and driven
 * through the "auth" service it publishes: every password scheme, timing
 * of unknown users, malformed lines, reload, aliases, administration.
 *
 * The argon2id cost is set low (1 pass, 8 MiB) so the tests run fast;
 * the dummy hash for unknown users uses the same cost, as it would in
 * production.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <postern/postern.h>

#include "unit.h"
#include "conf.h"
#include "hook.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "pool.h"
#include "service.h"

#ifndef AUTH_MODULE_DIR
#error "AUTH_MODULE_DIR must name the directory of auth_passwd.so"
#endif

static char modlog[65536];
static char *tmpdir, *users_path, *aliases_path;
static struct conf *conf;
static struct loader *ld;
static postern_module_t *mod;
static const struct postern_auth *auth;
static postern_pool_t *pool;

static void
record(int level, const char *prefix, const char *msg, void *arg)
{
	size_t len = strlen(modlog);

	(void)level;
	(void)arg;
	if (prefix != NULL && strcmp(prefix, "auth_passwd") == 0)
		snprintf(modlog + len, sizeof(modlog) - len, "%s\n", msg);
}

static int
contains(const char *hay, const char *needle)
{
	if (hay == NULL || strstr(hay, needle) == NULL) {
		fprintf(stderr, "\n    expected: %s\n    in: %s\n", needle,
		        hay != NULL ? hay : "(null)");
		return 0;
	}
	return 1;
}

/* Was a line "FILE:LINE: ... what ..." logged? */
static int
logged_at(const char *file, int line, const char *what)
{
	char prefix[512];
	const char *p = modlog, *end;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	while ((p = strstr(p, prefix)) != NULL) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		if (memmem(p, (size_t)(end - p), what, strlen(what)) != NULL)
			return 1;
		p = end;
	}
	fprintf(stderr, "\n    expected: %s...%s\n    in: %s\n", prefix,
	        what, modlog);
	return 0;
}

/* ---- fixture ---------------------------------------------------------- */

static void
setup(void)
{
	modlog[0] = '\0';
	tmpdir = unit_tmpdir();
	if (asprintf(&users_path, "%s/users", tmpdir) < 0 ||
	    asprintf(&aliases_path, "%s/aliases", tmpdir) < 0)
		abort();
	log_set_sink(record, NULL);
	pool = pool_create(4096);
}

/* Writes the files, loads and initialises the module, starts it as a
 * worker would, and looks up its service.  `extra` goes into the
 * module's group. */
static int
boot(const char *users, const char *aliases, const char *extra)
{
	char *text;
	int rc;

	if (users != NULL)
		free(unit_write_file(tmpdir, "users", users));
	if (aliases != NULL)
		free(unit_write_file(tmpdir, "aliases", aliases));
	if (extra == NULL)
		extra = "";
	if (asprintf(&text, "auth_passwd = {\n  users = \"%s\";\n"
	             "  aliases = \"%s\";\n%s%s};\n", users_path,
	             aliases_path, strstr(extra, "argon2") != NULL ? "" :
	             "  argon2_opslimit = 1;\n  argon2_memlimit = \"8M\";\n",
	             extra) < 0)
		abort();
	conf = conf_load_string(text, "test.conf");
	free(text);
	if (conf == NULL)
		return -1;
	host_set_conf(conf);
	host_set_dir(POSTERN_DIR_CONFIG, tmpdir);
	ld = loader_create(host_table(), AUTH_MODULE_DIR);
	if (loader_load(ld, AUTH_MODULE_DIR "/auth_passwd.so") < 0)
		return -1;
	host_set_init_phase(1);
	rc = loader_init_all(ld);
	host_set_init_phase(0);
	if (rc < 0 || conf_errors(conf) > 0)
		return -1;
	mod = loader_find(ld, "auth_passwd");
	if (mod == NULL || !mod->has_worker_ops ||
	    mod->worker_ops.start(mod->worker_arg) < 0)
		return -1;
	auth = service_lookup("test", POSTERN_AUTH_SERVICE,
	                      POSTERN_AUTH_MAJOR, POSTERN_AUTH_MINOR, 0);
	return auth != NULL ? 0 : -1;
}

static void
teardown(void)
{
	if (mod != NULL && mod->has_worker_ops && mod->worker_ops.exit)
		mod->worker_ops.exit(mod->worker_arg);
	mod = NULL;
	auth = NULL;
	hook_reset();
	service_reset();
	if (ld != NULL)
		loader_destroy(ld);
	ld = NULL;
	host_set_conf(NULL);
	if (conf != NULL)
		conf_free(conf);
	conf = NULL;
	host_reset();
	log_set_sink(NULL, NULL);
	pool_destroy(pool);
	unit_rm_rf(tmpdir);
	free(tmpdir);
	free(users_path);
	free(aliases_path);
}

/* ---- helpers ---------------------------------------------------------- */

static char *
make_crypt(const char *prefix, unsigned long rounds, const char *pw)
{
	static struct crypt_data cd;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	if (crypt_gensalt_rn(prefix, rounds, NULL, 0, salt,
	                     sizeof(salt)) == NULL)
		abort();
	h = crypt_r(pw, salt, &cd);
	if (h == NULL || h[0] == '*')
		abort();
	return strdup(h);
}

static int
verify(const char *name, const char *pw)
{
	struct postern_user u = { .size = sizeof(u) };

	return auth->verify(name, pw, strlen(pw), pool, &u);
}

static uint64_t
time_verify_us(const char *name, const char *pw)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	(void)verify(name, pw);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* signed: the nanoseconds alone go back when a second turned */
	return (uint64_t)((int64_t)(b.tv_sec - a.tv_sec) * 1000000 +
	                  ((int64_t)b.tv_nsec - (int64_t)a.tv_nsec) / 1000);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

#define TIMING_SAMPLES 11

/* Median verify times of `n` names, measured in alternation (the order
 * turning each round) so that a load that comes and goes (other tests,
 * other builds) weighs on all alike. */
static void
median_verify_us(const char *const *names, size_t n, const char *pw,
                 uint64_t *medians)
{
	uint64_t t[8][TIMING_SAMPLES];
	size_t i, k;

	for (i = 0; i < TIMING_SAMPLES; i++)
		for (k = 0; k < n; k++)
			t[(k + i) % n][i] = time_verify_us(names[(k + i) % n],
			                                   pw);
	for (k = 0; k < n; k++) {
		qsort(t[k], TIMING_SAMPLES, sizeof(t[k][0]), u64_cmp);
		medians[k] = t[k][TIMING_SAMPLES / 2];
	}
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Resolves and joins the answer as "a b c" (sorted) into out. */
static int
resolve(const char *addr, char *out, size_t len)
{
	const char **v;
	size_t i, n;
	int rc = auth->resolve(addr, pool, &v, &n);

	out[0] = '\0';
	if (rc != POSTERN_AUTH_YES)
		return rc;
	if (n > 1)
		qsort(v, n, sizeof(*v), str_cmp);
	for (i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s",
		         i ? " " : "", v[i]);
	return rc;
}

static char *
read_users(void)
{
	return unit_read_file(users_path);
}

/* ---- tests: passwords ------------------------------------------------- */

static void
test_schemes(void)
{
	char *sha512 = make_crypt("$6$", 0, "pw-sha512");
	char *sha256 = make_crypt("$5$", 0, "pw-sha256");
	char *blf = make_crypt("$2b$", 4, "pw-blf");
	char *blfy = strdup(blf), *users, *file;
	char err[256];
	struct postern_user u = { .size = sizeof(u) };

	blfy[2] = 'y'; /* $2y$ is the same algorithm under PHP's name */
	if (asprintf(&users,
	             "# schemes\n"
	             "sha512@example.org:{SHA512-CRYPT}%s:1001:1002::/home/"
	             "s::userdb_mail=maildir:~/Mail quota=1G\n"
	             "bare512@example.org:%s\n"
	             "sha256@example.org:{SHA256-CRYPT}%s\n"
	             "blf@example.org:{BLF-CRYPT}%s\n"
	             "blfy@example.org:%s\n",
	             sha512, sha512, sha256, blf, blfy) < 0)
		abort();
	CU_ASSERT_EQUAL_FATAL(boot(users, "", NULL), 0);
	CU_ASSERT_EQUAL(verify("sha512@example.org", "pw-sha512"), 1);
	CU_ASSERT_EQUAL(verify("sha512@example.org", "pw-sha51"), 0);
	CU_ASSERT_EQUAL(verify("bare512@example.org", "pw-sha512"), 1);
	CU_ASSERT_EQUAL(verify("bare512@example.org", "wrong"), 0);
	CU_ASSERT_EQUAL(verify("sha256@example.org", "pw-sha256"), 1);
	CU_ASSERT_EQUAL(verify("sha256@example.org", "pw-sha512"), 0);
	CU_ASSERT_EQUAL(verify("blf@example.org", "pw-blf"), 1);
	CU_ASSERT_EQUAL(verify("blf@example.org", "pw-blF"), 0);
	CU_ASSERT_EQUAL(verify("blfy@example.org", "pw-blf"), 1);
	CU_ASSERT_EQUAL(verify("blfy@example.org", "x"), 0);
	/* A NUL cannot sneak a prefix past crypt(3). */
	CU_ASSERT_EQUAL(auth->verify("sha256@example.org", "pw-sha256\0x",
	                             11, pool, &u), 0);

	/* What verify and lookup fill; the domain is case-insensitive, and
	 * so is the local part (as Postfix does). */
	CU_ASSERT_EQUAL(auth->verify("SHA512@Example.ORG", "pw-sha512", 9,
	                             pool, &u), 1);
	CU_ASSERT_STRING_EQUAL(u.name, "sha512@example.org");
	CU_ASSERT_STRING_EQUAL(u.home, "/home/s");
	CU_ASSERT_STRING_EQUAL(u.mail, "maildir:~/Mail");
	CU_ASSERT_EQUAL(u.uid, 1001);
	CU_ASSERT_EQUAL(u.gid, 1002);
	CU_ASSERT_EQUAL_FATAL(u.nextra, 2);
	CU_ASSERT_STRING_EQUAL(u.extra[1], "quota=1G");
	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	CU_ASSERT_EQUAL(auth->lookup("blf@EXAMPLE.org", pool, &u), 1);
	CU_ASSERT_PTR_NULL(u.home);
	CU_ASSERT_PTR_NULL(u.mail);
	CU_ASSERT_EQUAL(auth->lookup("nobody@example.org", pool, &u), 0);

	/* argon2id: what user_set writes. */
	CU_ASSERT_EQUAL(auth->user_set("argon@example.org", NULL, NULL, err,
	                               sizeof(err)), -1);
	CU_ASSERT(contains(err, "a new user needs a password"));
	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	CU_ASSERT_EQUAL(auth->user_set("argon@example.org", "pw-argon", &u,
	                               err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(verify("argon@example.org", "pw-argon"), 1);
	CU_ASSERT_EQUAL(verify("argon@example.org", "pw-argoN"), 0);
	file = read_users();
	CU_ASSERT(contains(file, "argon@example.org:{ARGON2ID}$argon2id$"));
	CU_ASSERT(contains(file, "# schemes\n"));
	free(file);
	/* No password ever reaches the log. */
	CU_ASSERT_PTR_NULL(strstr(modlog, "pw-"));
	free(users);
	free(sha512);
	free(sha256);
	free(blf);
	free(blfy);
}

/* A wrong password costs the same whoever asks: an argon2id user, an
 * unknown user, users with migrated SHA512-CRYPT and BLF-CRYPT hashes
 * (which cost far less than argon2id by themselves: about 1 ms here,
 * against some 40 ms for argon2id at 32 MiB).  Medians of alternating
 * runs, within a factor of 3 below and 4 above (a migrated hash costs
 * its own check on top); a machine busy with something else gets three
 * tries.  32 MiB, not the cheap cost of the other tests, so that the
 * noise of a loaded machine (milliseconds) is small beside a hash. */
static void
test_wrong_password_costs_the_same_for_everyone(void)
{
	static const char *const names[] = {
		"alice@example.org", "nobody@example.org",
		"sha512@example.org", "blf@example.org",
	};
	char *sha512 = make_crypt("$6$", 0, "right");
	char *blf = make_crypt("$2b$", 5, "right");
	char *users, err[256];
	struct postern_user u = { .size = sizeof(u) };
	uint64_t m[4];
	int round, ok = 0;
	size_t k;

	if (asprintf(&users, "sha512@example.org:{SHA512-CRYPT}%s\n"
	             "blf@example.org:{BLF-CRYPT}%s\n", sha512, blf) < 0)
		abort();
	CU_ASSERT_EQUAL_FATAL(boot(users, "", "  argon2_opslimit = 1;\n"
	                           "  argon2_memlimit = \"32M\";\n"), 0);
	CU_ASSERT_EQUAL_FATAL(auth->user_set("alice@example.org", "right", &u,
	                                     err, sizeof(err)), 0);
	for (k = 0; k < 4; k++)
		CU_ASSERT_EQUAL(verify(names[k], "right"), k != 1);
	for (round = 0; round < 3 && !ok; round++) {
		median_verify_us(names, 4, "wrong", m);
		fprintf(stderr, "\n    median wrong-password verify: argon2id "
		        "%llu us, unknown %llu us, SHA512-CRYPT %llu us, "
		        "BLF-CRYPT %llu us", (unsigned long long)m[0],
		        (unsigned long long)m[1], (unsigned long long)m[2],
		        (unsigned long long)m[3]);
		ok = 1;
		for (k = 1; k < 4; k++)
			ok &= m[k] * 3 >= m[0] && m[k] <= m[0] * 4;
	}
	CU_ASSERT(ok);
	free(users);
	free(sha512);
	free(blf);
}

static void
test_disabled_user(void)
{
	char *h = make_crypt("$6$", 0, "pw"), *users;
	struct postern_user u = { .size = sizeof(u) };

	if (asprintf(&users, "off@example.org:%s::::::nologin\n"
	             "on@example.org:%s::::::nologin=no\n"
	             "nopw@example.org:\n", h, h) < 0)
		abort();
	CU_ASSERT_EQUAL_FATAL(boot(users, "", NULL), 0);
	CU_ASSERT_EQUAL(verify("off@example.org", "pw"), 0);
	CU_ASSERT_EQUAL(auth->lookup("off@example.org", pool, &u), 1);
	CU_ASSERT_EQUAL(verify("on@example.org", "pw"), 1);
	CU_ASSERT_EQUAL(verify("nopw@example.org", ""), 0);
	CU_ASSERT_EQUAL(auth->lookup("nopw@example.org", pool, &u), 1);
	free(users);
	free(h);
}

static void
test_malformed_lines(void)
{
	char *h = make_crypt("$6$", 0, "pw"), *users;
	struct postern_user u = { .size = sizeof(u) };

	if (asprintf(&users,
	             "# line 1 is a comment\n"
	             "no colon here\n"
	             "md5@example.org:{MD5}$1$abc$def\n"
	             "num@example.org:%s:notanumber\n"
	             "bad name@example.org:%s\n"
	             "\n"
	             "good@example.org:%s\n"
	             "GOOD@example.org:%s\n"
	             "weird@example.org:$9$what\n"
	             "mism@example.org:{SHA256-CRYPT}%s\n"
	             "later@example.org:%s\n", h, h, h, h, h, h) < 0)
		abort();
	CU_ASSERT_EQUAL_FATAL(boot(users,
	                           "ok@example.org: good@example.org\n"
	                           "broken line\n"
	                           "pipe@example.org: |/bin/sh\n", NULL), 0);
#define LINE(n, what) CU_ASSERT(logged_at(users_path, n, what))
	LINE(2, "no ':'");
	LINE(3, "unknown password scheme");
	LINE(4, "uid and gid must be numbers");
	LINE(5, "user name");
	LINE(8, "already defined at line 7");
	LINE(9, "unrecognised password hash");
	LINE(10, "hash does not match its {SCHEME}");
#undef LINE
	CU_ASSERT(logged_at(aliases_path, 2, "no ':'"));
	CU_ASSERT(logged_at(aliases_path, 3, "pipes and files"));
	/* Skipped lines do not stop the later ones. */
	CU_ASSERT_EQUAL(verify("good@example.org", "pw"), 1);
	CU_ASSERT_EQUAL(verify("later@example.org", "pw"), 1);
	CU_ASSERT_EQUAL(auth->lookup("num@example.org", pool, &u), 0);
	/* An unusable hash: the user exists (mail arrives), but no login. */
	CU_ASSERT_EQUAL(auth->lookup("md5@example.org", pool, &u), 1);
	CU_ASSERT_EQUAL(verify("md5@example.org", "pw"), 0);
	/* Never the hash or password in the log. */
	CU_ASSERT_PTR_NULL(strstr(modlog, h));
	CU_ASSERT_PTR_NULL(strstr(modlog, "$1$abc"));
	free(users);
	free(h);
}

static void
test_reload_after_change(void)
{
	char *h = make_crypt("$5$", 0, "pw"), *users;

	if (asprintf(&users, "first@example.org:%s\n", h) < 0)
		abort();
	CU_ASSERT_EQUAL_FATAL(boot(users, "", NULL), 0);
	CU_ASSERT_EQUAL(verify("first@example.org", "pw"), 1);
	free(users);
	if (asprintf(&users, "# replaced\nsecond@example.org:%s\n", h) < 0)
		abort();
	free(unit_write_file(tmpdir, "users", users));
	/* Checked at most once a second. */
	usleep(1100 * 1000);
	CU_ASSERT_EQUAL(verify("second@example.org", "pw"), 1);
	CU_ASSERT_EQUAL(verify("first@example.org", "pw"), 0);
	/* A removed file is an empty one. */
	unlink(users_path);
	usleep(1100 * 1000);
	CU_ASSERT_EQUAL(verify("second@example.org", "pw"), 0);
	CU_ASSERT(contains(modlog, "no such file"));
	free(users);
	free(h);
}

/* ---- tests: aliases --------------------------------------------------- */

static void
test_aliases(void)
{
	char out[1024], line[128];
	char aliases[4096] =
	    "# aliases\n"
	    "Sales@Example.org: alice@example.org, team@example.org\n"
	    "team@example.org: bob@example.org sales@example.org\n"
	    "alice@example.org: alice@example.org, fwd@remote.net\n"
	    "@other.org: carol@other.org\n"
	    "l1@example.org: l2@example.org\n"
	    "l2@example.org: l1@example.org\n"
	    "ghost@example.org: nobody@example.org\n";
	int i;

	for (i = 0; i < 25; i++) {
		snprintf(line, sizeof(line), "d%d@example.org: d%d@example.org"
		         "\n", i, i + 1);
		strcat(aliases, line);
	}
	strcat(aliases, "d25@example.org: bob@example.org\n");
	CU_ASSERT_EQUAL_FATAL(boot("alice@example.org:\nbob@example.org:\n"
	                           "carol@other.org:\nx+y@example.org:\n",
	                           aliases,
	                           "  domains = [ \"Extra.org\" ];\n"), 0);
	CU_ASSERT_EQUAL(resolve("SALES@example.ORG", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "alice@example.org bob@example.org "
	                            "fwd@remote.net");
	CU_ASSERT_EQUAL(resolve("bob@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "bob@example.org");
	CU_ASSERT_EQUAL(resolve("alice@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "alice@example.org fwd@remote.net");
	/* Catch-all: only for addresses that are no one else. */
	CU_ASSERT_EQUAL(resolve("Anyone@Other.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "carol@other.org");
	CU_ASSERT_EQUAL(resolve("carol@other.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "carol@other.org");
	/* Ours but no one: NO; someone else's domain: NOT_LOCAL. */
	CU_ASSERT_EQUAL(resolve("nobody@example.org", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(resolve("x@extra.org", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(resolve("x@remote.net", out, sizeof(out)), 2);
	CU_ASSERT_EQUAL(resolve("ghost@example.org", out, sizeof(out)), 0);
	/* A loop ends, and answers NO when it reaches no one. */
	CU_ASSERT_EQUAL(resolve("l1@example.org", out, sizeof(out)), 0);
	/* Depth is bounded, and said. */
	CU_ASSERT_EQUAL(resolve("d10@example.org", out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(resolve("d0@example.org", out, sizeof(out)), 0);
	CU_ASSERT(contains(modlog, "resolving 'd0@example.org': aliases "
	                           "nest deeper than 20"));
	CU_ASSERT_EQUAL(resolve("bad address@example.org", out,
	                        sizeof(out)), 0);
	/* Address extensions (recipient_delimiter "+"): the whole name
	 * first, then without the extension, before the catch-all. */
	CU_ASSERT_EQUAL(resolve("Bob+Lists@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "bob@example.org");
	CU_ASSERT_EQUAL(resolve("x+y@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "x+y@example.org");
	CU_ASSERT_EQUAL(resolve("sales+q4@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "alice@example.org bob@example.org "
	                            "fwd@remote.net");
	CU_ASSERT_EQUAL(resolve("carol+x@other.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "carol@other.org");
	CU_ASSERT_EQUAL(resolve("nobody+x@example.org", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(resolve("+x@example.org", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(resolve("bob+x@remote.net", out, sizeof(out)), 2);
}

/* recipient_delimiter "" turns extensions off... */
static void
test_recipient_delimiter_off(void)
{
	char out[1024];

	CU_ASSERT_EQUAL_FATAL(boot("bob@example.org:\n", "",
	                           "  recipient_delimiter = \"\";\n"), 0);
	CU_ASSERT_EQUAL(resolve("bob+x@example.org", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(resolve("bob@example.org", out, sizeof(out)), 1);
}

/* ...and each of several characters starts one. */
static void
test_recipient_delimiters(void)
{
	char out[1024];

	CU_ASSERT_EQUAL_FATAL(boot("bob@example.org:\n", "",
	                           "  recipient_delimiter = \"-+\";\n"), 0);
	CU_ASSERT_EQUAL(resolve("bob-x@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "bob@example.org");
	CU_ASSERT_EQUAL(resolve("bob+x-y@example.org", out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "bob@example.org");
}

/* ---- tests: administration -------------------------------------------- */

static void
test_admin_round_trips(void)
{
	static const char users[] =
	    "# users of example.org\n"
	    "\n"
	    "keep@example.org:{MD5}unknown:1:1::/home/keep\n"
	    "this line is broken\n"
	    "# trailing comment\n";
	static const char aliases[] =
	    "# aliases\r\n"
	    "old@example.org: keep@example.org\n";
	const char *extra[] = { "quota=2G" };
	const char *targets[] = { "New@Example.org", "keep@example.org" };
	const char **addrs, **tg, **names;
	struct postern_user f = { .size = sizeof(f) };
	char err[256], *file;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(boot(users, aliases, NULL), 0);
	f.home = "/home/new";
	f.mail = "maildir:~/Maildir";
	f.uid = 500;
	f.extra = extra;
	f.nextra = 1;
	CU_ASSERT_EQUAL(auth->user_set("New@Example.org", "one", &f, err,
	                               sizeof(err)), 0);
	CU_ASSERT_EQUAL(auth->user_set("new@example.org", "two", NULL, err,
	                               sizeof(err)), 0);
	CU_ASSERT_EQUAL(verify("new@example.org", "two"), 1);
	CU_ASSERT_EQUAL(verify("new@example.org", "one"), 0);
	memset(&f, 0, sizeof(f));
	f.size = sizeof(f);
	CU_ASSERT_EQUAL(auth->lookup("new@example.org", pool, &f), 1);
	CU_ASSERT_STRING_EQUAL(f.home, "/home/new");
	CU_ASSERT_STRING_EQUAL(f.mail, "maildir:~/Maildir");
	CU_ASSERT_EQUAL(f.uid, 500);
	file = read_users();
	CU_ASSERT(contains(file, "# users of example.org\n\nkeep@example.org:"
	                         "{MD5}unknown:1:1::/home/keep\nthis line is "
	                         "broken\n# trailing comment\nnew@example.org"
	                         ":{ARGON2ID}$argon2id$"));
	CU_ASSERT(contains(file, ":500:::/home/new::quota=2G "
	                         "userdb_mail=maildir:~/Maildir\n"));
	free(file);
	CU_ASSERT_EQUAL(auth->list(pool, &names, &n), 1);
	CU_ASSERT_EQUAL(n, 2);
	/* Delete: the line goes, the rest stays. */
	CU_ASSERT_EQUAL(auth->user_delete("NEW@example.org", err,
	                                  sizeof(err)), 0);
	CU_ASSERT_EQUAL(auth->user_delete("new@example.org", err,
	                                  sizeof(err)), -1);
	CU_ASSERT(contains(err, "no user 'new@example.org'"));
	CU_ASSERT(contains(err, users_path));
	file = read_users();
	CU_ASSERT_STRING_EQUAL(file, users);
	free(file);
	CU_ASSERT_EQUAL(verify("new@example.org", "two"), 0);
	CU_ASSERT_EQUAL(auth->user_set("bad:name@example.org", "x", NULL,
	                               err, sizeof(err)), -1);
	CU_ASSERT(contains(err, "bad:name@example.org"));

	/* Aliases. */
	CU_ASSERT_EQUAL(auth->alias_set("Sales@Example.org", targets, 2, err,
	                                sizeof(err)), 0);
	CU_ASSERT_EQUAL(auth->alias_set("@example.net", targets + 1, 1, err,
	                                sizeof(err)), 0);
	CU_ASSERT_EQUAL(auth->alias_list(pool, &addrs, &tg, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(addrs[0], "@example.net");
	CU_ASSERT_STRING_EQUAL(addrs[2], "sales@example.org");
	CU_ASSERT_STRING_EQUAL(tg[2], "new@example.org keep@example.org");
	CU_ASSERT_EQUAL(auth->alias_delete("old@example.org", err,
	                                   sizeof(err)), 0);
	CU_ASSERT_EQUAL(auth->alias_delete("old@example.org", err,
	                                   sizeof(err)), -1);
	CU_ASSERT(contains(err, "no alias 'old@example.org'"));
	CU_ASSERT_EQUAL(auth->alias_set("x@example.org", targets, 0, err,
	                                sizeof(err)), -1);
	file = unit_read_file(aliases_path);
	CU_ASSERT_STRING_EQUAL(file, "# aliases\r\n"
	                             "sales@example.org: new@example.org, "
	                             "keep@example.org\n"
	                             "@example.net: keep@example.org\n");
	free(file);
}

#define PER_CHILD 8

static void
add_users(const char *prefix)
{
	struct postern_user f = { .size = sizeof(f) };
	char name[64], err[256];
	int i;

	for (i = 0; i < PER_CHILD; i++) {
		snprintf(name, sizeof(name), "%s%d@example.org", prefix, i);
		if (auth->user_set(name, "pw", &f, err, sizeof(err)) < 0)
			_exit(1);
	}
	_exit(0);
}

static void
test_concurrent_user_set(void)
{
	const char **names;
	pid_t a, b;
	size_t n;
	int sa, sb;

	CU_ASSERT_EQUAL_FATAL(boot("# two writers\n", "", NULL), 0);
	fflush(NULL);
	if ((a = fork()) == 0)
		add_users("a");
	if ((b = fork()) == 0)
		add_users("b");
	CU_ASSERT_FATAL(a > 0 && b > 0);
	waitpid(a, &sa, 0);
	waitpid(b, &sb, 0);
	CU_ASSERT(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
	CU_ASSERT(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
	usleep(1100 * 1000);
	CU_ASSERT_EQUAL(auth->list(pool, &names, &n), 1);
	CU_ASSERT_EQUAL(n, 2 * PER_CHILD);
	CU_ASSERT_EQUAL(verify("a7@example.org", "pw"), 1);
	CU_ASSERT_EQUAL(verify("b0@example.org", "pw"), 1);
}

/* Job threads look users up while the file changes under them: each
 * sees the old table or the new one, never a freed one (ASan watches). */
struct reader {
	int stop;
	unsigned answers;
	int bad;
};

static void *
read_loop(void *arg)
{
	struct reader *r = arg;
	postern_pool_t *p = pool_create(4096);
	struct postern_user u = { .size = sizeof(u) };
	const char **v;
	size_t n;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (auth->lookup("stay@example.org", p, &u) != 1 ||
		    strcmp(u.name, "stay@example.org") != 0)
			r->bad = 1;
		if (auth->resolve("list@example.org", p, &v, &n) != 1)
			r->bad = 1;
		r->answers++;
		pool_clear(p);
	}
	pool_destroy(p);
	return NULL;
}

static void
test_readers_during_reloads(void)
{
	struct reader r[4];
	pthread_t th[4];
	char err[256], name[64];
	struct postern_user f = { .size = sizeof(f) };
	int i;

	memset(r, 0, sizeof(r));
	CU_ASSERT_EQUAL_FATAL(boot("stay@example.org:\n",
	                           "list@example.org: stay@example.org\n",
	                           NULL), 0);
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, read_loop, &r[i]);
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "new%d@example.org", i);
		CU_ASSERT_EQUAL(auth->user_set(name, "pw", &f, err,
		                               sizeof(err)), 0);
		usleep(50 * 1000);
	}
	for (i = 0; i < 4; i++) {
		__atomic_store_n(&r[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(th[i], NULL);
		CU_ASSERT_FALSE(r[i].bad);
		CU_ASSERT(r[i].answers > 0);
	}
	CU_ASSERT_EQUAL(verify("new5@example.org", "pw"), 1);
}

struct boot_args {
	const char *extra;
	int rc;
};

static void
boot_op(void *arg)
{
	struct boot_args *b = arg;

	b->rc = boot("", "", b->extra);
}

static void
test_bad_config(void)
{
	struct boot_args b = { "  domains = [ \"ok.org\", \"a@b\" ];\n", 0 };
	char *log = unit_capture_log(boot_op, &b);

	CU_ASSERT_NOT_EQUAL(b.rc, 0);
	CU_ASSERT(contains(log, "test.conf:6: key 'auth_passwd.domains.[1]'"));
	CU_ASSERT(contains(log, "'a@b' is not a domain name"));
	free(log);
}

static void
test_bad_cost(void)
{
	struct boot_args b = { "  argon2_opslimit = 0;\n", 0 };
	char *log = unit_capture_log(boot_op, &b);

	CU_ASSERT_NOT_EQUAL(b.rc, 0);
	CU_ASSERT(contains(log, "auth_passwd.argon2_opslimit"));
	free(log);
}

static CU_TestInfo auth_tests[] = {
	{ "every scheme: right and wrong passwords", test_schemes },
	{ "a wrong password costs the same for every user, or none",
	  test_wrong_password_costs_the_same_for_everyone },
	{ "nologin and empty passwords", test_disabled_user },
	{ "malformed lines are reported and skipped", test_malformed_lines },
	{ "files are read again when they change", test_reload_after_change },
	{ "aliases, catch-alls, loops, depth", test_aliases },
	{ "recipient_delimiter off", test_recipient_delimiter_off },
	{ "recipient_delimiter of two characters",
	  test_recipient_delimiters },
	{ "admin round trips keep other lines", test_admin_round_trips },
	{ "two writers lose nothing", test_concurrent_user_set },
	{ "readers on threads while the file changes",
	  test_readers_during_reloads },
	{ "a bad domain is refused", test_bad_config },
	{ "a bad cost is refused", test_bad_cost },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "auth_passwd", NULL, NULL, setup, teardown, auth_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
