/*
 * test_conf.c - configuration loading, merging, schema parsing and the
 * effective-configuration printer (core/conf.c).
 *
 * Messages are checked by exact fragments (FILE:LINE, key path, reason),
 * since naming the right place is the point of the module.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "unit.h"

/* ---- schemas ---------------------------------------------------------- */

struct listen {
	long long port;
	const char *address;
	int tls;
};

static const struct postern_cfg_key listen_keys[] = {
	{ .name = "port", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct listen, port), .min = 1, .max = 65535,
	  .flags = POSTERN_CFG_REQUIRED, .doc = "TCP port" },
	{ .name = "address", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct listen, address), .def = "0.0.0.0" },
	{ .name = "tls", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct listen, tls), .def = "false" },
	{ .name = NULL },
};

struct limits {
	long long max_size;
	long long timeout;
};

static const struct postern_cfg_key limits_keys[] = {
	{ .name = "max_size", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct limits, max_size), .def = "25M",
	  .doc = "largest message accepted" },
	{ .name = "timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct limits, timeout), .def = "5m" },
	{ .name = NULL },
};

static const char *const modes[] = { "a", "b", "c", NULL };

struct smtp {
	const char *hostname;
	int mode;
	struct postern_strlist domains;
	struct limits limits;
	postern_cfg_t *listen;
	postern_cfg_t *extra;
	int debug;
	long long workers;
};

/* A schema's own check of a value (ABI 1.6). */
static int
no_underscore(const void *field, char *err, size_t errlen)
{
	const char *const *s = field;

	if (strchr(*s, '_') == NULL)
		return 0;
	snprintf(err, errlen, "a host name has no '_' ('%s')", *s);
	return -1;
}

static const struct postern_cfg_key smtp_keys[] = {
	{ .name = "hostname", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct smtp, hostname), .def = "localhost",
	  .doc = "the name we greet with", .validate = no_underscore },
	{ .name = "mode", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct smtp, mode), .choices = modes,
	  .def = "b" },
	{ .name = "domains", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct smtp, domains),
	  .def = "[\"example.org\"]" },
	{ .name = "limits", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct smtp, limits), .schema = limits_keys },
	{ .name = "listen", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct smtp, listen), .schema = listen_keys,
	  .doc = "where to accept mail" },
	{ .name = "extra", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct smtp, extra) },
	{ .name = "debug", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct smtp, debug) },
	{ .name = "workers", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct smtp, workers), .def = "4", .min = 1,
	  .max = 64 },
	{ .name = NULL },
};

struct req {
	const char *hostname;
	long long port;
};

static const struct postern_cfg_key req_keys[] = {
	{ .name = "hostname", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct req, hostname),
	  .flags = POSTERN_CFG_REQUIRED },
	{ .name = "port", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct req, port), .min = 1, .max = 65535 },
	{ .name = NULL },
};

/* ---- helpers ---------------------------------------------------------- */

struct run {
	struct conf *c;
	const char *path;        /* conf_load */
	const char *text;        /* conf_load_string */
	postern_cfg_t *node;
	const char *absent;
	const struct postern_cfg_key *schema;
	size_t key_size;
	void *out;
	unsigned flags;
	int rc;
};

static void
do_load(void *arg)
{
	struct run *r = arg;

	r->c = r->text != NULL ? conf_load_string(r->text, "test.conf") :
	                         conf_load(r->path);
}

static void
do_parse(void *arg)
{
	struct run *r = arg;

	r->rc = conf_parse(r->c, r->node, r->absent, r->schema, r->key_size,
	                   r->out, r->flags);
}

/* Loads `text` as "test.conf" and parses its top-level `group` against
 * `schema` into `out`.  Returns what was logged; r->c stays loaded. */
static char *
parse_text(struct run *r, const char *text, const char *group,
           const struct postern_cfg_key *schema, size_t key_size, void *out)
{
	char *log;

	r->text = text;
	log = unit_capture_log(do_load, r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->c);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	r->node = conf_lookup(conf_root(r->c), group);
	r->absent = group;
	r->schema = schema;
	r->key_size = key_size;
	r->out = out;
	return unit_capture_log(do_parse, r);
}

static char *
parse_smtp(struct run *r, const char *text, struct smtp *out)
{
	memset(out, 0, sizeof(*out));
	return parse_text(r, text, "smtp", smtp_keys,
	                  sizeof(struct postern_cfg_key), out);
}

static unsigned
count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static unsigned
count_substr(const char *s, const char *sub)
{
	unsigned n = 0;

	while ((s = strstr(s, sub)) != NULL) {
		n++;
		s += strlen(sub);
	}
	return n;
}

/* Asserts `log` is exactly one line containing `want`. */
#define ASSERT_ONE_ERROR(log, want) do {                                \
	CU_ASSERT_EQUAL(count_lines(log), 1);                           \
	CU_ASSERT_PTR_NOT_NULL(strstr((log), (want)));                  \
	if (strstr((log), (want)) == NULL)                              \
		fprintf(stderr, "\nwanted: %s\nlogged: %s\n", (want), (log)); \
} while (0)

/* ---- loading ---------------------------------------------------------- */

static void
test_syntax_error(void)
{
	char *dir = unit_tmpdir();
	char *path = unit_write_file(dir, "main.conf",
	                             "a = 1;\nb = 2;\nc = ;\n");
	char *want = NULL, *log;
	struct run r = { .path = path };

	log = unit_capture_log(do_load, &r);
	CU_ASSERT_PTR_NULL(r.c);
	if (asprintf(&want, "%s:3: syntax error", path) < 0)
		abort();
	ASSERT_ONE_ERROR(log, want);
	free(log);
	free(want);

	/* A string names itself. */
	r.path = NULL;
	r.text = "a = 1;\nb = = 2;\n";
	log = unit_capture_log(do_load, &r);
	CU_ASSERT_PTR_NULL(r.c);
	ASSERT_ONE_ERROR(log, "test.conf:2: syntax error");
	free(log);

	unit_rm_rf(dir);
	free(path);
	free(dir);
}

static void
test_missing_file(void)
{
	char *dir = unit_tmpdir();
	char *path = NULL, *log;
	struct run r = { 0 };

	if (asprintf(&path, "%s/nope.conf", dir) < 0)
		abort();
	r.path = path;
	log = unit_capture_log(do_load, &r);
	CU_ASSERT_PTR_NULL(r.c);
	ASSERT_ONE_ERROR(log, "nope.conf: cannot read: No such file");
	free(log);
	unit_rm_rf(dir);
	free(path);
	free(dir);
}

static void
write_confd(const char *dir, const char *name, const char *text)
{
	char *sub = NULL;

	if (asprintf(&sub, "%s/conf.d", dir) < 0)
		abort();
	mkdir(sub, 0700);
	free(unit_write_file(sub, name, text));
	free(sub);
}

struct merged {
	long long a;
	struct { long long x, y, z; } g;
	struct postern_strlist l;
};

static const struct postern_cfg_key g_keys[] = {
	{ .name = "x", .type = POSTERN_CFG_INT, .offset = 0 },
	{ .name = "y", .type = POSTERN_CFG_INT, .offset = 8 },
	{ .name = "z", .type = POSTERN_CFG_INT, .offset = 16 },
	{ .name = NULL },
};

static const struct postern_cfg_key merged_keys[] = {
	{ .name = "a", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct merged, a) },
	{ .name = "g", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct merged, g), .schema = g_keys },
	{ .name = "l", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct merged, l) },
	{ .name = NULL },
};

static void
test_confd_merge(void)
{
	char *dir = unit_tmpdir();
	char *path = unit_write_file(dir, "main.conf",
	    "a = 1;\ng = {\n  x = 1;\n  y = 2;\n};\nl = [\"p\", \"q\"];\n");
	char *log, *want = NULL;
	struct run r = { .path = path };
	struct merged m;
	postern_cfg_t *root, *n;

	/* Written out of order: readdir order must not matter. */
	write_confd(dir, "20-b.conf", "a = 3;\nl = [\"r\"];\n");
	write_confd(dir, "10-a.conf",
	            "a = 2;\ng = {\n  y = 3;\n  z = 4;\n};\n");
	write_confd(dir, "README", "this is not = config");
	write_confd(dir, ".hidden.conf", "broken = ");
	write_confd(dir, "old.conf.bak", "broken = ");

	log = unit_capture_log(do_load, &r);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.c);
	CU_ASSERT_STRING_EQUAL(conf_dir(r.c), dir);
	CU_ASSERT_STRING_EQUAL(conf_file(r.c), path);

	root = conf_root(r.c);
	memset(&m, 0, sizeof(m));
	r.node = root;
	r.schema = merged_keys;
	r.key_size = sizeof(struct postern_cfg_key);
	r.out = &m;
	log = unit_capture_log(do_parse, &r);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(m.a, 3);
	CU_ASSERT_EQUAL(m.g.x, 1);
	CU_ASSERT_EQUAL(m.g.y, 3);
	CU_ASSERT_EQUAL(m.g.z, 4);
	CU_ASSERT_EQUAL_FATAL(m.l.count, 1);
	CU_ASSERT_STRING_EQUAL(m.l.items[0], "r");

	/* Every node knows where it came from. */
	n = conf_lookup(root, "a");
	if (asprintf(&want, "%s/conf.d/20-b.conf", dir) < 0)
		abort();
	CU_ASSERT_STRING_EQUAL(conf_source_file(n), want);
	CU_ASSERT_EQUAL(conf_source_line(n), 1);
	free(want);
	n = conf_lookup(root, "g.y");
	CU_ASSERT_PTR_NOT_NULL(strstr(conf_source_file(n), "10-a.conf"));
	CU_ASSERT_EQUAL(conf_source_line(n), 3);
	n = conf_lookup(root, "g.x");
	CU_ASSERT_STRING_EQUAL(conf_source_file(n), path);
	CU_ASSERT_EQUAL(conf_source_line(n), 3);
	/* Merged groups keep their members in first-seen order. */
	n = conf_lookup(root, "g");
	CU_ASSERT_EQUAL_FATAL(conf_count(n), 3);
	CU_ASSERT_STRING_EQUAL(conf_name(conf_elem(n, 0)), "x");
	CU_ASSERT_STRING_EQUAL(conf_name(conf_elem(n, 1)), "y");
	CU_ASSERT_STRING_EQUAL(conf_name(conf_elem(n, 2)), "z");

	conf_free(r.c);
	unit_rm_rf(dir);
	free(path);
	free(dir);
}

static void
test_confd_error(void)
{
	char *dir = unit_tmpdir();
	char *path = unit_write_file(dir, "main.conf",
	                             "smtp = {\n  hostname = \"mx\";\n};\n");
	char *log, *want = NULL;
	struct run r = { .path = path };
	struct smtp s;

	write_confd(dir, "50-local.conf",
	            "# local\nsmtp = {\n  workers = 2;\n  bogus = 1;\n};\n");
	log = unit_capture_log(do_load, &r);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.c);
	memset(&s, 0, sizeof(s));
	r.node = conf_lookup(conf_root(r.c), "smtp");
	r.schema = smtp_keys;
	r.key_size = sizeof(struct postern_cfg_key);
	r.out = &s;
	log = unit_capture_log(do_parse, &r);
	CU_ASSERT_EQUAL(r.rc, -1);
	if (asprintf(&want, "%s/conf.d/50-local.conf:4: key 'smtp.bogus': "
	             "unknown key", dir) < 0)
		abort();
	ASSERT_ONE_ERROR(log, want);
	CU_ASSERT_EQUAL(s.workers, 2);
	CU_ASSERT_STRING_EQUAL(s.hostname, "mx");
	free(want);
	free(log);
	conf_free(r.c);

	/* Syntax errors in two conf.d files: both reported. */
	write_confd(dir, "60-bad.conf", "a = 1;\nb = ;\n");
	write_confd(dir, "70-bad.conf", "c = (;\n");
	r.c = NULL;
	log = unit_capture_log(do_load, &r);
	CU_ASSERT_PTR_NULL(r.c);
	CU_ASSERT_EQUAL(count_lines(log), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "conf.d/60-bad.conf:2: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "conf.d/70-bad.conf:1: "));
	free(log);

	unit_rm_rf(dir);
	free(path);
	free(dir);
}

/* ---- schema errors ---------------------------------------------------- */

static void
test_unknown_key(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "smtp = {\n  hostname = \"mx\";\n  bogus = 1;\n"
	                 "};\n", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:3: key 'smtp.bogus': unknown key");
	CU_ASSERT_EQUAL(conf_errors(r.c), 1);
	free(log);

	/* Allowed at the top level only. */
	r.flags = CONF_ALLOW_UNKNOWN;
	log = unit_capture_log(do_parse, &r);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	r.flags = CONF_ALLOW_UNKNOWN;
	log = parse_smtp(&r, "smtp = {\n  limits = {\n    bogus = 1;\n  };\n"
	                 "};\n", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log,
	                 "test.conf:3: key 'smtp.limits.bogus': unknown key");
	free(log);
	conf_free(r.c);

	/* A value the schema's own validator refuses. */
	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = {\n  hostname = \"mx_one\";\n};\n", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 'smtp.hostname': a host name "
	                 "has no '_' ('mx_one')");
	free(log);
	conf_free(r.c);

	/* A typo gets the key it most likely meant. */
	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = {\n  hostnmae = \"mx\";\n};\n", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 'smtp.hostnmae': unknown key "
	                 "(did you mean 'hostname'?)");
	free(log);
	conf_free(r.c);
}

static void
test_wrong_type(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "smtp = {\n  workers = \"four\";\n};",
		  "test.conf:2: key 'smtp.workers': expected an integer, "
		  "got a string" },
		{ "smtp = {\n\n  workers = 4.0;\n};",
		  "test.conf:3: key 'smtp.workers': expected an integer, "
		  "got a float" },
		{ "smtp = {\n  hostname = 5;\n};",
		  "test.conf:2: key 'smtp.hostname': expected a string, "
		  "got an integer" },
		{ "smtp = {\n  debug = \"yes\";\n};",
		  "key 'smtp.debug': expected a boolean, got a string" },
		{ "smtp = {\n  limits = 5;\n};",
		  "key 'smtp.limits': expected a group, got an integer" },
		{ "smtp = {\n  listen = { port = 1; };\n};",
		  "key 'smtp.listen': expected a list, got a group" },
		{ "smtp = 5;",
		  "test.conf:1: key 'smtp': expected a group, got an integer" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r = { 0 };
		struct smtp s;
		char *log = parse_smtp(&r, cases[i].text, &s);

		CU_ASSERT_EQUAL(r.rc, -1);
		ASSERT_ONE_ERROR(log, cases[i].want);
		free(log);
		conf_free(r.c);
	}
}

static void
test_range(void)
{
	struct run r = { 0 };
	struct req q;
	char *log;

	memset(&q, 0, sizeof(q));
	log = parse_text(&r, "t = {\n  hostname = \"x\";\n  port = 70000;\n};",
	                 "t", req_keys, sizeof(struct postern_cfg_key), &q);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:3: key 't.port': value 70000 out "
	                 "of range 1..65535");
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_text(&r, "t = {\n  hostname = \"x\";\n  port = 65535;\n};",
	                 "t", req_keys, sizeof(struct postern_cfg_key), &q);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	CU_ASSERT_EQUAL(q.port, 65535);
	free(log);
	conf_free(r.c);
}

static void
test_no_bounds(void)
{
	static const struct postern_cfg_key keys[] = {
		{ .name = "n", .type = POSTERN_CFG_INT, .offset = 0,
		  .min = 5, .max = 5 },
		{ .name = NULL },
	};
	struct run r = { 0 };
	long long n = 0;
	char *log;

	log = parse_text(&r, "t = { n = 9000000000L; };", "t", keys,
	                 sizeof(struct postern_cfg_key), &n);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	CU_ASSERT_EQUAL(n, 9000000000LL);
	free(log);
	conf_free(r.c);
}

static void
test_required(void)
{
	struct run r = { 0 };
	struct req q;
	char *log;

	/* The line is that of the enclosing group. */
	memset(&q, 0, sizeof(q));
	log = parse_text(&r, "x = 1;\nt = {\n  port = 25;\n};", "t",
	                 req_keys, sizeof(struct postern_cfg_key), &q);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 't.hostname': required key "
	                 "missing");
	free(log);
	conf_free(r.c);

	/* An absent group: only the file can be named. */
	memset(&r, 0, sizeof(r));
	log = parse_text(&r, "x = 1;\n", "t", req_keys,
	                 sizeof(struct postern_cfg_key), &q);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf: key 't.hostname': required key "
	                 "missing");
	free(log);
	conf_free(r.c);
}

static void
test_enum(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "smtp = { mode = \"c\"; };", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(s.mode, 2);
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = {\n  mode = \"foo\";\n};", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 'smtp.mode': 'foo' is not "
	                 "one of: a, b, c");
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = { };", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(s.mode, 1); /* default "b" */
	free(log);
	conf_free(r.c);
}

/* Parses `t = { v = VALUE; };` with one key of `type`. */
static char *
parse_one(enum postern_cfg_type type, const char *value, long long *out,
          int *rc)
{
	struct postern_cfg_key keys[] = {
		{ .name = "v", .type = type, .offset = 0 },
		{ .name = NULL },
	};
	struct run r = { 0 };
	char *text = NULL, *log;

	if (asprintf(&text, "t = {\n  v = %s;\n};\n", value) < 0)
		abort();
	*out = -12345;
	log = parse_text(&r, text, "t", keys, sizeof(keys[0]), out);
	*rc = r.rc;
	conf_free(r.c);
	free(text);
	return log;
}

struct num_case {
	const char *value;
	long long want;         /* when `error` is NULL */
	const char *error;
};

static void
check_numbers(enum postern_cfg_type type, const struct num_case *cases,
              size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		long long v;
		int rc;
		char *log = parse_one(type, cases[i].value, &v, &rc);

		if (cases[i].error == NULL) {
			CU_ASSERT_EQUAL(rc, 0);
			CU_ASSERT_EQUAL(v, cases[i].want);
			CU_ASSERT_STRING_EQUAL(log, "");
			if (v != cases[i].want)
				fprintf(stderr, "\n%s: got %lld\n",
				        cases[i].value, v);
		} else {
			CU_ASSERT_EQUAL(rc, -1);
			ASSERT_ONE_ERROR(log, cases[i].error);
		}
		free(log);
	}
}

static void
test_size(void)
{
	static const struct num_case cases[] = {
		{ "1024", 1024, NULL },
		{ "\"7\"", 7, NULL },
		{ "\"3k\"", 3072, NULL },
		{ "\"25M\"", 25LL << 20, NULL },
		{ "\"2G\"", 2LL << 30, NULL },
		{ "5000000000L", 5000000000LL, NULL },
		{ "\"8589934591G\"", 8589934591LL << 30, NULL },
		{ "\"10Q\"", 0, "test.conf:2: key 't.v': bad size '10Q': "
		  "expected a number with an optional K, M or G suffix" },
		{ "\"M\"", 0, "bad size 'M': expected a number" },
		{ "\"25 M\"", 0, "bad size '25 M': expected a number" },
		{ "\"99999999999G\"", 0,
		  "key 't.v': bad size '99999999999G': too large" },
		{ "\"99999999999999999999\"", 0,
		  "bad size '99999999999999999999': too large" },
		{ "-1", 0, "key 't.v': bad size -1: negative" },
		{ "true", 0, "key 't.v': expected a size" },
	};

	check_numbers(POSTERN_CFG_SIZE, cases,
	              sizeof(cases) / sizeof(cases[0]));
}

static void
test_duration(void)
{
	static const struct num_case cases[] = {
		{ "30", 30000, NULL },
		{ "\"30\"", 30000, NULL },
		{ "\"250ms\"", 250, NULL },
		{ "\"30s\"", 30000, NULL },
		{ "\"5m\"", 300000, NULL },
		{ "\"1h\"", 3600000, NULL },
		{ "\"2d\"", 172800000, NULL },
		{ "\"5x\"", 0, "test.conf:2: key 't.v': bad duration '5x': "
		  "expected a number with a unit: ms, s, m, h or d" },
		{ "\"1h30m\"", 0, "bad duration '1h30m'" },
		{ "\"999999999999999d\"", 0,
		  "bad duration '999999999999999d': too large" },
		{ "9223372036854775807L", 0,
		  "bad duration 9223372036854775807: too large" },
		{ "-5", 0, "bad duration -5: negative" },
		{ "1.5", 0, "expected a duration (seconds, or a string like "
		  "\"30s\"), got a float" },
	};

	check_numbers(POSTERN_CFG_DURATION, cases,
	              sizeof(cases) / sizeof(cases[0]));
}

static void
test_duration_range(void)
{
	static const struct postern_cfg_key keys[] = {
		{ .name = "t", .type = POSTERN_CFG_DURATION, .offset = 0,
		  .min = 1000, .max = 3600000 },
		{ .name = NULL },
	};
	struct run r = { 0 };
	long long v = 0;
	char *log;

	log = parse_text(&r, "g = { t = \"2h\"; };", "g", keys,
	                 sizeof(keys[0]), &v);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "key 'g.t': value 2h out of range 1s..1h");
	free(log);
	conf_free(r.c);
}

static void
test_two_errors(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "smtp = {\n  workers = \"x\";\n"
	                 "  mode = \"zzz\";\n  workers2 = 1;\n};", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(count_lines(log), 3);
	CU_ASSERT_EQUAL(conf_errors(r.c), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:2: key 'smtp.workers': "
	                              "expected an integer"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:3: key 'smtp.mode': "
	                              "'zzz' is not one of"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:4: key "
	                              "'smtp.workers2': unknown key"));
	/* The keys that were fine still parsed. */
	CU_ASSERT_EQUAL(s.limits.max_size, 25LL << 20);
	free(log);
	conf_free(r.c);
}

static void
test_bad_default(void)
{
	struct bad { long long port; long long size; long long n; };
	static const struct postern_cfg_key keys[] = {
		{ .name = "port", .type = POSTERN_CFG_INT,
		  .offset = offsetof(struct bad, port), .def = "70000",
		  .min = 1, .max = 65535 },
		{ .name = "size", .type = POSTERN_CFG_SIZE,
		  .offset = offsetof(struct bad, size), .def = "10Q" },
		{ .name = "n", .type = POSTERN_CFG_INT,
		  .offset = offsetof(struct bad, n), .def = "abc" },
		{ .name = NULL },
	};
	struct run r = { 0 };
	struct bad b;
	char *log;

	log = parse_text(&r, "x = 1;\nt = {\n};", "t", keys, sizeof(keys[0]),
	                 &b);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(count_lines(log), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:2: key 't.port': bad "
	    "default '70000': value 70000 out of range 1..65535"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:2: key 't.size': bad "
	    "default '10Q': bad size '10Q': expected a number"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "key 't.n': bad default 'abc': "
	    "expected an integer, got a string"));
	free(log);
	conf_free(r.c);
}

/* ---- lists, groups, strlists ------------------------------------------ */

static void
test_list_error(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "smtp = {\n  listen = (\n    { port = 25; },\n"
	                 "    { port = 70000; },\n    { tls = true; }\n  );\n"
	                 "};", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(count_lines(log), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:4: key "
	    "'smtp.listen.[1].port': value 70000 out of range 1..65535"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:5: key "
	    "'smtp.listen.[2].port': required key missing"));
	CU_ASSERT_PTR_NOT_NULL(s.listen);
	CU_ASSERT_EQUAL(conf_count(s.listen), 3);
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = {\n  listen = ( { port = 25; }, 1 );\n};",
	                 &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 'smtp.listen.[1]': expected "
	                 "a group, got an integer");
	free(log);
	conf_free(r.c);
}

static void
test_list_ok(void)
{
	struct run r = { 0 };
	struct smtp s;
	struct listen l;
	char *log;

	log = parse_smtp(&r, "smtp = {\n  listen = (\n    { port = 25; },\n"
	                 "    { port = 587; tls = true; address = \"::1\"; }"
	                 "\n  );\n};", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_EQUAL_FATAL(conf_count(s.listen), 2);
	CU_ASSERT_STRING_EQUAL(conf_path(conf_elem(s.listen, 1)),
	                       "smtp.listen.[1]");
	CU_ASSERT_PTR_NULL(conf_name(conf_elem(s.listen, 1)));

	/* The module parses each element itself. */
	memset(&l, 0, sizeof(l));
	r.node = conf_elem(s.listen, 1);
	r.schema = listen_keys;
	r.out = &l;
	log = unit_capture_log(do_parse, &r);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	CU_ASSERT_EQUAL(l.port, 587);
	CU_ASSERT_EQUAL(l.tls, 1);
	CU_ASSERT_STRING_EQUAL(l.address, "::1");
	free(log);
	conf_free(r.c);
}

static void
test_list_default(void)
{
	struct lst { postern_cfg_t *listen; };
	static const struct postern_cfg_key keys[] = {
		{ .name = "listen", .type = POSTERN_CFG_LIST,
		  .offset = offsetof(struct lst, listen), .schema = listen_keys,
		  .def = "( { port = 25; }, { port = 587; } )" },
		{ .name = NULL },
	};
	struct run r = { 0 };
	struct lst o = { NULL };
	struct listen l;
	char *log;

	log = parse_text(&r, "x = 1;\n", "smtp", keys, sizeof(keys[0]), &o);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_EQUAL_FATAL(conf_count(o.listen), 2);
	CU_ASSERT_STRING_EQUAL(conf_path(conf_elem(o.listen, 1)),
	                       "smtp.listen.[1]");
	memset(&l, 0, sizeof(l));
	r.node = conf_elem(o.listen, 1);
	r.schema = listen_keys;
	r.out = &l;
	do_parse(&r);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(l.port, 587);
	CU_ASSERT_STRING_EQUAL(l.address, "0.0.0.0");
	conf_free(r.c);
}

static void
test_absent_group_defaults(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "other = 1;\n", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	CU_ASSERT_STRING_EQUAL(s.hostname, "localhost");
	CU_ASSERT_EQUAL(s.mode, 1);
	CU_ASSERT_EQUAL(s.workers, 4);
	CU_ASSERT_EQUAL(s.limits.max_size, 25LL << 20);
	CU_ASSERT_EQUAL(s.limits.timeout, 300000);
	CU_ASSERT_EQUAL_FATAL(s.domains.count, 1);
	CU_ASSERT_STRING_EQUAL(s.domains.items[0], "example.org");
	CU_ASSERT_PTR_NULL(s.listen);
	CU_ASSERT_PTR_NULL(s.extra);
	CU_ASSERT_EQUAL(s.debug, 0);
	free(log);
	conf_free(r.c);

	/* A present group with an absent subgroup: its defaults too. */
	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = { limits = { timeout = \"30s\"; }; "
	                 "extra = { anything = 1; }; };", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(s.limits.max_size, 25LL << 20);
	CU_ASSERT_EQUAL(s.limits.timeout, 30000);
	CU_ASSERT_PTR_EQUAL(s.extra, conf_lookup(conf_root(r.c), "smtp.extra"));
	CU_ASSERT_PTR_NOT_NULL(s.extra);
	free(log);
	conf_free(r.c);
}

static void
test_strlist(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log;

	log = parse_smtp(&r, "smtp = { domains = [\"a.org\", \"b.org\"]; };",
	                 &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(s.domains.count, 2);
	CU_ASSERT_STRING_EQUAL(s.domains.items[0], "a.org");
	CU_ASSERT_STRING_EQUAL(s.domains.items[1], "b.org");
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = { domains = ( ); };", &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(s.domains.count, 0);
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = {\n  domains = (\"a\", 2, \"c\", 4.5);\n"
	                 "};", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(count_lines(log), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:2: key "
	    "'smtp.domains.[1]': expected a string, got an integer"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "key 'smtp.domains.[3]': "
	    "expected a string, got a float"));
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_smtp(&r, "smtp = { domains = \"a\"; };", &s);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "key 'smtp.domains': expected a list of "
	                 "strings, got a string");
	free(log);
	conf_free(r.c);
}

/* ---- schemas from an older SDK ---------------------------------------- */

/* struct postern_cfg_key as an SDK without `doc` laid it out. */
struct old_key {
	const char *name;
	enum postern_cfg_type type;
	size_t offset;
	const char *def;
	long long min, max;
	const char *const *choices;
	const struct old_key *schema;
	unsigned flags;
};

struct old_out {
	long long a;
	const char *b;
	long long c;
	struct { long long d; } sub;
};

static const struct old_key old_sub_keys[] = {
	{ "d", POSTERN_CFG_INT, 0, "5", 0, 0, NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0 },
};

static const struct old_key old_keys[] = {
	{ "a", POSTERN_CFG_INT, offsetof(struct old_out, a), "7", 0, 0, NULL,
	  NULL, 0 },
	{ "b", POSTERN_CFG_STRING, offsetof(struct old_out, b), "x", 0, 0,
	  NULL, NULL, 0 },
	{ "c", POSTERN_CFG_INT, offsetof(struct old_out, c), NULL, 1, 10,
	  NULL, NULL, POSTERN_CFG_REQUIRED },
	{ "sub", POSTERN_CFG_GROUP, offsetof(struct old_out, sub), NULL, 0, 0,
	  NULL, old_sub_keys, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0 },
};

static void
test_old_key_size(void)
{
	const struct postern_cfg_key *schema =
	    (const struct postern_cfg_key *)(const void *)old_keys;
	struct run r = { 0 };
	struct old_out o;
	char *log, *buf = NULL;
	size_t len = 0;
	FILE *f;

	/* The test means something only if the strides differ. */
	CU_ASSERT_FATAL(sizeof(struct old_key) <
	                sizeof(struct postern_cfg_key));
	memset(&o, 0, sizeof(o));
	log = parse_text(&r, "t = {\n  c = 11;\n};", "t", schema,
	                 sizeof(struct old_key), &o);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:2: key 't.c': value 11 out of range "
	                 "1..10");
	CU_ASSERT_EQUAL(o.a, 7);
	CU_ASSERT_STRING_EQUAL(o.b, "x");
	CU_ASSERT_EQUAL(o.sub.d, 5);
	free(log);
	conf_free(r.c);

	memset(&r, 0, sizeof(r));
	log = parse_text(&r, "t = {\n  c = 3;\n  sub = { d = 9; };\n};", "t",
	                 schema, sizeof(struct old_key), &o);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	CU_ASSERT_EQUAL(o.c, 3);
	CU_ASSERT_EQUAL(o.sub.d, 9);
	free(log);
	/* `doc` lies past the old stride: it reads as NULL, no comments. */
	f = open_memstream(&buf, &len);
	conf_print_effective(r.c, f, 1, 1);
	fclose(f);
	CU_ASSERT_PTR_NULL(strchr(buf, '#'));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "c = 3;"));
	free(buf);

	/* Too small to hold even the fields every SDK has. */
	r.key_size = offsetof(struct postern_cfg_key, flags) - 1;
	log = unit_capture_log(do_parse, &r);
	CU_ASSERT_EQUAL(r.rc, -1);
	ASSERT_ONE_ERROR(log, "test.conf:1: key 't': schema entries are 63 "
	                 "bytes");
	free(log);
	conf_free(r.c);
}

/* ---- navigation and direct errors ------------------------------------- */

static void
test_lookup(void)
{
	struct run r = { .text = "smtp = {\n  hostname = \"mx\";\n"
	    "  listen = ( { port = 25; },\n"
	    "             { port = 587; } );\n  other = 1;\n};\n" };
	postern_cfg_t *root, *n;
	char *log;

	log = unit_capture_log(do_load, &r);
	free(log);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.c);
	root = conf_root(r.c);
	CU_ASSERT_STRING_EQUAL(conf_path(root), "");
	CU_ASSERT_PTR_EQUAL(conf_lookup(root, ""), root);
	CU_ASSERT_PTR_NULL(conf_lookup(NULL, "smtp"));
	n = conf_lookup(root, "smtp.listen.[1].port");
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	CU_ASSERT_STRING_EQUAL(conf_path(n), "smtp.listen.[1].port");
	CU_ASSERT_STRING_EQUAL(conf_name(n), "port");
	CU_ASSERT_STRING_EQUAL(conf_source_file(n), "test.conf");
	CU_ASSERT_EQUAL(conf_source_line(n), 4);
	CU_ASSERT_PTR_EQUAL(conf_lookup(conf_lookup(root, "smtp"),
	                                "listen.[1].port"), n);
	CU_ASSERT_PTR_NULL(conf_lookup(root, "smtp.listen.[2]"));
	CU_ASSERT_PTR_NULL(conf_lookup(root, "smtp.listen.[x]"));
	CU_ASSERT_PTR_NULL(conf_lookup(root, "smtp.hostname.x"));
	CU_ASSERT_PTR_NULL(conf_lookup(root, "smtp.host"));
	CU_ASSERT_EQUAL(conf_count(conf_lookup(root, "smtp")), 3);
	CU_ASSERT_EQUAL(conf_count(n), 0);
	CU_ASSERT_EQUAL(conf_count(NULL), 0);
	CU_ASSERT_PTR_NULL(conf_elem(root, 1));
	conf_free(r.c);
}

struct known_run {
	struct conf *c;
	postern_cfg_t *group;
	const char *const *known;
	unsigned n;
};

static void
do_known(void *arg)
{
	struct known_run *k = arg;

	k->n = conf_check_known(k->c, k->group, k->known);
}

static void
do_direct_errors(void *arg)
{
	struct conf *c = arg;

	conf_error(c, conf_lookup(conf_root(c), "smtp.other"), "custom %d", 5);
	conf_error(c, NULL, "no node");
}

static void
test_check_known_and_errors(void)
{
	static const char *const known[] = { "hostname", "listen", NULL };
	struct known_run k = { 0 };
	char *log;

	k.c = conf_load_string("smtp = {\n  hostname = \"mx\";\n  other = 1;\n"
	                       "  listen = ();\n  more = 2;\n};\n",
	                       "test.conf");
	CU_ASSERT_PTR_NOT_NULL_FATAL(k.c);
	k.group = conf_lookup(conf_root(k.c), "smtp");
	k.known = known;
	log = unit_capture_log(do_known, &k);
	CU_ASSERT_EQUAL(k.n, 2);
	CU_ASSERT_EQUAL(count_lines(log), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:3: key 'smtp.other': "
	                              "unknown key"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:5: key 'smtp.more': "
	                              "unknown key"));
	free(log);
	CU_ASSERT_EQUAL(conf_errors(k.c), 2);

	log = unit_capture_log(do_direct_errors, k.c);
	CU_ASSERT_EQUAL(count_lines(log), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf:3: key 'smtp.other': "
	                              "custom 5\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "test.conf: no node\n"));
	CU_ASSERT_EQUAL(conf_errors(k.c), 4);
	free(log);
	conf_free(k.c);
}

/* ---- the effective configuration -------------------------------------- */

static char *
print_effective(struct conf *c, int with_docs)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	conf_print_effective(c, f, with_docs, 1);
	fclose(f);
	return buf;
}

static const char roundtrip_text[] =
	"smtp = {\n"
	"  hostname = \"mx \\\"one\\\"\\\\ \\t\";\n"
	"  mode = \"c\";\n"
	"  domains = [\"a.org\", \"b.org\"];\n"
	"  limits = { max_size = 1000; timeout = \"250ms\"; };\n"
	"  listen = ( { port = 25; }, { port = 465; tls = true; } );\n"
	"  extra = { k = 1.5; s = \"v\"; l = ( 1, 3000000000L ); };\n"
	"  debug = true;\n"
	"  workers = 8;\n"
	"};\n";

static void
assert_same_smtp(const struct smtp *a, const struct smtp *b)
{
	size_t i;

	CU_ASSERT_STRING_EQUAL(a->hostname, b->hostname);
	CU_ASSERT_EQUAL(a->mode, b->mode);
	CU_ASSERT_EQUAL_FATAL(a->domains.count, b->domains.count);
	for (i = 0; i < a->domains.count; i++)
		CU_ASSERT_STRING_EQUAL(a->domains.items[i],
		                       b->domains.items[i]);
	CU_ASSERT_EQUAL(a->limits.max_size, b->limits.max_size);
	CU_ASSERT_EQUAL(a->limits.timeout, b->limits.timeout);
	CU_ASSERT_EQUAL(conf_count(a->listen), conf_count(b->listen));
	CU_ASSERT_EQUAL(conf_count(a->extra), conf_count(b->extra));
	CU_ASSERT_EQUAL(a->debug, b->debug);
	CU_ASSERT_EQUAL(a->workers, b->workers);
}

/* Parses every listen element the way the module would. */
static void
parse_listeners(struct run *r, postern_cfg_t *list, struct listen *out)
{
	size_t i;

	for (i = 0; i < conf_count(list); i++) {
		r->node = conf_elem(list, i);
		r->schema = listen_keys;
		r->out = &out[i];
		do_parse(r);
		CU_ASSERT_EQUAL(r->rc, 0);
	}
}

static void
test_print_roundtrip(void)
{
	struct run r = { 0 }, r2 = { 0 };
	struct smtp s, s2;
	struct listen l[2], l2[2];
	char *log, *out, *log2;

	log = parse_smtp(&r, roundtrip_text, &s);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_STRING_EQUAL(s.hostname, "mx \"one\"\\ \t");
	parse_listeners(&r, s.listen, l);

	out = print_effective(r.c, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "smtp = {\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t\tmax_size = 1000;\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t\ttimeout = \"250ms\";\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\tmode = \"c\";\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out,
	    "\tdomains = [ \"a.org\", \"b.org\" ];\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\tlisten = (\n\t\t{\n"));
	/* Checked by the host, then parsed by the module: printed once. */
	CU_ASSERT_EQUAL(count_substr(out, "port = 25;"), 1);
	CU_ASSERT_EQUAL(count_substr(out, "address = \"0.0.0.0\";"), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "3000000000L"));
	CU_ASSERT_PTR_NULL(strchr(out, '#'));

	/* It reads back to the same values. */
	r2.text = out;
	memset(&s2, 0, sizeof(s2));
	log2 = unit_capture_log(do_load, &r2);
	CU_ASSERT_STRING_EQUAL(log2, "");
	free(log2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r2.c);
	r2.node = conf_lookup(conf_root(r2.c), "smtp");
	r2.schema = smtp_keys;
	r2.key_size = sizeof(struct postern_cfg_key);
	r2.out = &s2;
	do_parse(&r2);
	CU_ASSERT_EQUAL(r2.rc, 0);
	assert_same_smtp(&s, &s2);
	memset(l2, 0, sizeof(l2));
	parse_listeners(&r2, s2.listen, l2);
	CU_ASSERT_EQUAL(l2[0].port, 25);
	CU_ASSERT_EQUAL(l2[1].port, 465);
	CU_ASSERT_EQUAL(l2[1].tls, 1);
	CU_ASSERT_STRING_EQUAL(l2[1].address, "0.0.0.0");
	CU_ASSERT_PTR_NOT_NULL(conf_lookup(conf_root(r2.c), "smtp.extra.k"));
	CU_ASSERT_EQUAL(conf_count(conf_lookup(conf_root(r2.c),
	                                       "smtp.extra.l")), 2);
	free(out);
	conf_free(r2.c);

	/* With docs: each documented key has its line above it. */
	out = print_effective(r.c, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t# the name we greet with\n"
	                              "\thostname = "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t# where to accept mail\n"
	                              "\tlisten = ("));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t\t# largest message accepted\n"
	                              "\t\tmax_size = "));
	CU_ASSERT_EQUAL(count_substr(out, "# TCP port\n"), 2);
	free(out);
	conf_free(r.c);
}

static void
test_print_defaults(void)
{
	struct run r = { 0 };
	struct smtp s;
	char *log, *out;
	struct conf *back;

	log = parse_smtp(&r, "other = 1;\n", &s);
	free(log);
	out = print_effective(r.c, 0);
	CU_ASSERT_STRING_EQUAL(out,
	    "smtp = {\n"
	    "\thostname = \"localhost\";\n"
	    "\tmode = \"b\";\n"
	    "\tdomains = [ \"example.org\" ];\n"
	    "\tlimits = {\n"
	    "\t\tmax_size = \"25M\";\n"
	    "\t\ttimeout = \"5m\";\n"
	    "\t};\n"
	    "\t# debug: not set\n"
	    "\tworkers = 4;\n"
	    "};\n");
	back = conf_load_string(out, "effective");
	CU_ASSERT_PTR_NOT_NULL(back);
	conf_free(back);
	free(out);
	conf_free(r.c);
}

static CU_TestInfo load_tests[] = {
	{ "syntax error names FILE:LINE", test_syntax_error },
	{ "missing main file", test_missing_file },
	{ "conf.d merge order and sources", test_confd_merge },
	{ "errors in conf.d files name them", test_confd_error },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo schema_tests[] = {
	{ "unknown key", test_unknown_key },
	{ "wrong type", test_wrong_type },
	{ "out of range", test_range },
	{ "min == max means no bounds", test_no_bounds },
	{ "required key missing", test_required },
	{ "enum", test_enum },
	{ "size parsing", test_size },
	{ "duration parsing", test_duration },
	{ "duration range message", test_duration_range },
	{ "every error reported", test_two_errors },
	{ "bad defaults name the key", test_bad_default },
	{ "list element error path", test_list_error },
	{ "list elements parsed by the module", test_list_ok },
	{ "a list default", test_list_default },
	{ "absent group gets defaults", test_absent_group_defaults },
	{ "strlist", test_strlist },
	{ "older schema stride", test_old_key_size },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo misc_tests[] = {
	{ "lookup and paths", test_lookup },
	{ "check_known and conf_error", test_check_known_and_errors },
	{ "effective print round-trip", test_print_roundtrip },
	{ "effective print of defaults", test_print_defaults },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "conf load", NULL, NULL, NULL, NULL, load_tests },
	{ "conf schema", NULL, NULL, NULL, NULL, schema_tests },
	{ "conf misc", NULL, NULL, NULL, NULL, misc_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
