/*
 * test_loader.c - the module loader against the conformance modules in
 * tests/modules (built into TEST_MODULE_DIR): descriptor checks, ABI
 * versions, dependencies, init order and failure, duplicate names, and the
 * hook and service registries as modules use them.
 *
 * Modules get the real host table (core/host.c).  A log sink records the
 * lines modules write into `modlog`, so a test can check what ran and in
 * which order; the core's own messages (the loader's errors) go to stderr
 * and are captured with unit_capture_log().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "hook.h"
#include "host.h"
#include "log.h"
#include "loader.h"
#include "loop.h"
#include "service.h"

#ifndef TEST_MODULE_DIR
#error "TEST_MODULE_DIR must name the directory of the conformance modules"
#endif

#define STR_(x) #x
#define STR(x) STR_(x)
#define HOST_ABI STR(POSTERN_ABI_MAJOR) "." STR(POSTERN_ABI_MINOR)

static char modlog[8192];

/* Modules log through the real host table; the sink keeps their lines
 * (those with a module prefix) in `modlog`. */
static void
record_module_line(int level, const char *prefix, const char *msg, void *arg)
{
	size_t len = strlen(modlog);

	(void)level;
	(void)arg;
	if (prefix != NULL)
		snprintf(modlog + len, sizeof(modlog) - len, "%s\n", msg);
}

/* ---- helpers ---------------------------------------------------------- */

static struct loader *ld;
static char *tmpdir;

static void
setup(void)
{
	modlog[0] = '\0';
	ld = loader_create(host_table(), TEST_MODULE_DIR);
	log_set_sink(record_module_line, NULL);
	tmpdir = NULL;
}

static void
teardown(void)
{
	/* The registries point into modules: empty them before dlclose. */
	hook_reset();
	service_reset();
	loader_destroy(ld);
	ld = NULL;
	log_set_sink(NULL, NULL);
	if (tmpdir != NULL) {
		unit_rm_rf(tmpdir);
		free(tmpdir);
	}
}

struct op {
	struct loader *ld;
	const char *what;
	int rc;
};

static void
op_load(void *arg)
{
	struct op *o = arg;

	o->rc = loader_load(o->ld, o->what);
}

static void
op_init(void *arg)
{
	struct op *o = arg;

	host_set_init_phase(1);
	o->rc = loader_init_all(o->ld);
	host_set_init_phase(0);
}

/* Loads, returning what the core logged (malloc'd); *rc gets the result. */
static char *
load(struct loader *l, const char *what, int *rc)
{
	struct op o = { l, what, 0 };
	char *log = unit_capture_log(op_load, &o);

	*rc = o.rc;
	return log;
}

static char *
init_all(struct loader *l, int *rc)
{
	struct op o = { l, NULL, 0 };
	char *log = unit_capture_log(op_init, &o);

	*rc = o.rc;
	return log;
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

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[8192];
	size_t n;

	if (in == NULL || out == NULL)
		abort();
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			abort();
	fclose(in);
	fclose(out);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_good(void)
{
	postern_module_t *m;
	int rc;
	char *log = load(ld, "good", &rc);

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_EQUAL_FATAL(loader_count(ld), 1);
	m = loader_find(ld, "good");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->path, TEST_MODULE_DIR "/good.so");
	CU_ASSERT_STRING_EQUAL(m->desc->version, "1.0");
	/* Loading it again, by name, is a no-op. */
	free(load(ld, "good", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(loader_count(ld), 1);
	CU_ASSERT_STRING_EQUAL(modlog, "");
	free(init_all(ld, &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_TRUE(m->initialised);
	CU_ASSERT_STRING_EQUAL(modlog, "good: init\n");
	loader_fini_all(ld);
	CU_ASSERT_STRING_EQUAL(modlog, "good: init\ngood: fini\n");
	CU_ASSERT_FALSE(m->initialised);
	/* Once finalised, never again. */
	loader_fini_all(ld);
	CU_ASSERT_STRING_EQUAL(modlog, "good: init\ngood: fini\n");
}

static void
test_old_minor(void)
{
	postern_module_t *m;
	int rc;

	free(load(ld, "old_minor", &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	m = loader_find(ld, "old_minor");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->desc->abi_major, 1);
	CU_ASSERT_EQUAL(m->desc->abi_minor, 0);
	free(init_all(ld, &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(contains(modlog, "old_minor: init, built for ABI 1.0, "
	                           "host ABI " HOST_ABI "\n"));
	CU_ASSERT(contains(modlog, "old_minor: hook_run available\n"));
	CU_ASSERT(contains(modlog, "old_minor: host table covers the 1.0 "
	                           "view\n"));
}

static void
expect_refused(const char *name, const char *why)
{
	char path[512], want[1024];
	char *log;
	int rc;

	snprintf(path, sizeof(path), "%s/%s.so", TEST_MODULE_DIR, name);
	snprintf(want, sizeof(want), "%s: %s", path, why);
	log = load(ld, name, &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, want));
	free(log);
	CU_ASSERT_EQUAL(loader_count(ld), 0);
	/* init was never called: it would have logged. */
	CU_ASSERT_STRING_EQUAL(modlog, "");
}

static void
test_abi_major(void)
{
	char why[128];

	snprintf(why, sizeof(why), "module ABI %d.0 is incompatible with "
	         "host ABI %d.%d (major differs)", POSTERN_ABI_MAJOR + 1,
	         POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
	expect_refused("abi_major", why);
}

static void
test_newer_minor(void)
{
	char why[128];

	snprintf(why, sizeof(why), "module ABI %d.%d is newer than host "
	         "ABI %d.%d", POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR + 1,
	         POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
	expect_refused("newer_minor", why);
}

static void
test_no_descriptor(void)
{
	expect_refused("no_descriptor", "not a postern module: it does not "
	                                "export 'postern_module'");
}

static void
test_not_an_object(void)
{
	char *path, *log;
	int rc;

	tmpdir = unit_tmpdir();
	/* Longer than an ELF header, so the complaint is about its magic. */
	path = unit_write_file(tmpdir, "junk.so",
	                       "This is not an ELF shared object, only text "
	                       "long enough to be read as a header and "
	                       "refused for its magic number.\n");
	log = load(ld, path, &rc);
	CU_ASSERT_EQUAL(rc, -1);
	/* The dynamic loader's own reason follows. */
	CU_ASSERT(contains(log, "/junk.so: cannot load module: "));
	CU_ASSERT(contains(log, "junk.so: invalid ELF header"));
	free(log);
	free(path);
	CU_ASSERT_EQUAL(loader_count(ld), 0);
}

static void
test_missing_dependency(void)
{
	char *log;
	int rc;

	log = load(ld, "needs_missing", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "module 'needs_missing' (" TEST_MODULE_DIR
	                        "/needs_missing.so) depends on "
	                        "'does_not_exist', which is not available: "
	                        TEST_MODULE_DIR "/does_not_exist.so: No such "
	                        "file or directory"));
	free(log);
	/* Unloaded again: a failed load leaves nothing behind. */
	CU_ASSERT_EQUAL(loader_count(ld), 0);
	CU_ASSERT_PTR_NULL(loader_find(ld, "needs_missing"));
}

static void
test_failed_dependency_unloads_chain(void)
{
	char *log, *path, want[160];
	int rc;

	/* dep_a from a directory whose dep_b is a newer-ABI module: the
	 * error names the chain and dep_a is unloaded with it. */
	tmpdir = unit_tmpdir();
	path = malloc(strlen(tmpdir) + 16);
	sprintf(path, "%s/dep_a.so", tmpdir);
	copy_file(TEST_MODULE_DIR "/dep_a.so", path);
	sprintf(path, "%s/dep_b.so", tmpdir);
	copy_file(TEST_MODULE_DIR "/newer_minor.so", path);
	loader_destroy(ld);
	ld = loader_create(host_table(), tmpdir);
	log = load(ld, "dep_a", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "/dep_a.so) depends on 'dep_b', which is not "
	                        "available: "));
	snprintf(want, sizeof(want), "/dep_b.so: module ABI %d.%d is newer "
	         "than host ABI %d.%d", POSTERN_ABI_MAJOR,
	         POSTERN_ABI_MINOR + 1, POSTERN_ABI_MAJOR, POSTERN_ABI_MINOR);
	CU_ASSERT(contains(log, want));
	CU_ASSERT_EQUAL(loader_count(ld), 0);
	free(log);
	free(path);
}

static void
test_cycle(void)
{
	char *log;
	int rc;

	free(load(ld, "cycle_a", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(loader_count(ld), 2);
	log = init_all(ld, &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "dependency cycle: cycle_a -> cycle_b -> "
	                        "cycle_a"));
	free(log);
	CU_ASSERT_STRING_EQUAL(modlog, "");
}

static void
test_dependency_order(void)
{
	int rc;

	free(load(ld, "dep_a", &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(loader_count(ld), 2);
	/* Load order: dep_a, then the dependency it pulled in. */
	CU_ASSERT_STRING_EQUAL(loader_module(ld, 0)->name, "dep_a");
	free(init_all(ld, &rc));
	CU_ASSERT_EQUAL(rc, 0);
	/* Init order: dependencies first. */
	CU_ASSERT_STRING_EQUAL(loader_module(ld, 0)->name, "dep_b");
	CU_ASSERT_STRING_EQUAL(loader_module(ld, 1)->name, "dep_a");
	CU_ASSERT_STRING_EQUAL(modlog, "dep_b: init\ndep_a: init\n");
	loader_destroy(ld);
	ld = NULL;
	CU_ASSERT_STRING_EQUAL(modlog, "dep_b: init\ndep_a: init\n"
	                               "dep_a: fini\ndep_b: fini\n");
}

static void
test_failing_init(void)
{
	const char *want = "good: init\n"
	                   "dep_b: init\n"
	                   "dep_a: init\n"
	                   "fail_init: init failing\n"
	                   "dep_a: fini\n"
	                   "dep_b: fini\n"
	                   "good: fini\n";
	char *log;
	int rc;

	free(load(ld, "good", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	free(load(ld, "dep_a", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	free(load(ld, "fail_init", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	log = init_all(ld, &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "module 'fail_init' failed to initialise"));
	free(log);
	CU_ASSERT_STRING_EQUAL(modlog, want);
	/* Nothing is finalised twice. */
	loader_destroy(ld);
	ld = NULL;
	CU_ASSERT_STRING_EQUAL(modlog, want);
}

static void
test_duplicate_name(void)
{
	char *copy, *log, want[1024];
	int rc;

	tmpdir = unit_tmpdir();
	copy = malloc(strlen(tmpdir) + 16);
	sprintf(copy, "%s/other.so", tmpdir);
	copy_file(TEST_MODULE_DIR "/good.so", copy);
	free(load(ld, "good", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	/* The same file by path is the same module, not a duplicate. */
	free(load(ld, TEST_MODULE_DIR "/good.so", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(loader_count(ld), 1);
	/* Another file declaring the same name is. */
	log = load(ld, copy, &rc);
	CU_ASSERT_EQUAL(rc, -1);
	snprintf(want, sizeof(want), "module 'good' is provided by both %s "
	         "and %s", TEST_MODULE_DIR "/good.so", copy);
	CU_ASSERT(contains(log, want));
	free(log);
	CU_ASSERT_EQUAL(loader_count(ld), 1);
	free(copy);
}

static void
test_explicit_path(void)
{
	char *log, *copy;
	int rc;

	/* A module directory without the module: by name fails, by path
	 * works, and dependencies of a module given by path still come
	 * from the module directory. */
	loader_destroy(ld);
	ld = loader_create(host_table(), "/nonexistent");
	log = load(ld, "good", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "module 'good' not found: /nonexistent/"
	                        "good.so: No such file or directory"));
	free(log);
	free(load(ld, TEST_MODULE_DIR "/good.so", &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(loader_find(ld, "good"));
	free(init_all(ld, &rc));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(modlog, "good: init\n");

	/* Looked up by name, a file must hold the module it is named for. */
	tmpdir = unit_tmpdir();
	copy = malloc(strlen(tmpdir) + 16);
	sprintf(copy, "%s/renamed.so", tmpdir);
	copy_file(TEST_MODULE_DIR "/good.so", copy);
	loader_destroy(ld);
	ld = loader_create(host_table(), tmpdir);
	log = load(ld, "renamed", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(contains(log, "/renamed.so: the file is named for module "
	                        "'renamed' but holds module 'good'"));
	free(log);
	free(copy);
}

static void
test_services(void)
{
	char *log;
	int rc;

	free(load(ld, "service_use", &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(loader_find(ld, "service_pub"));
	log = init_all(ld, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(modlog,
	                       "service_pub: published test.svc 1.2\n"
	                       "service_use: add(2, 3) = 5\n"
	                       "service_use: test.svc 1.3 is NULL\n");
	CU_ASSERT(contains(log, "module 'service_use' needs service "
	                        "'test.svc' 1.3 or newer, but module "
	                        "'service_pub' publishes 1.2"));
	free(log);
	/* The core's own view. */
	CU_ASSERT_PTR_NOT_NULL(service_lookup("test", "test.svc", 1, 2, 0));
}

/* The MIME functions of ABI 1.3 and the budget of 1.4, called from a
 * module. */
static void
test_mime_module(void)
{
	char *log;
	int rc;

	free(load(ld, "mime_use", &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	log = init_all(ld, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(modlog,
	                       "mime_use: multipart/alternative, 2 parts: "
	                       "text/plain (5 octets, 1 line), text/html "
	                       "charset=utf-8\n"
	                       "mime_use: subject 'caf\xc3\xa9 menu', 4 "
	                       "address entries, date 1717243200\n"
	                       "mime_use: html body '<b>hi</b>' (base64 "
	                       "'PGI+aGk8L2I+'), round trip ok\n"
	                       "mime_use: over budget: degraded yes, fewer "
	                       "parts, within yes\n");
	free(log);
}

struct svc_table {
	size_t size;
	int answer;
};

static const struct svc_table svc_v2 = { sizeof(svc_v2), 42 };
static const struct svc_table svc_nosize = { 0, 7 };

struct publish_op {
	const char *owner, *name;
	unsigned major, minor;
	const void *table;
	int rc;
};

static void
op_publish(void *arg)
{
	struct publish_op *o = arg;

	o->rc = service_publish(o->owner, o->name, o->major, o->minor,
	                        o->table);
}

static void
op_lookups(void *arg)
{
	const void **got = arg;

	got[0] = service_lookup("user", "nothing", 1, 0, 0);
	got[1] = service_lookup("user", "store", 1, 0, 0);
	got[2] = service_lookup("user", "store", 2, 3, 0);
	got[3] = service_lookup("user", "store", 2, 4, 0);
}

/* service_find: optional lookups. */
static void
op_finds(void *arg)
{
	const void **got = arg;

	got[0] = service_lookup("user", "nothing", 1, 0, 1);
	got[1] = service_lookup("user", "store", 1, 0, 1);
	got[2] = service_lookup("user", "store", 2, 3, 1);
}

static void
test_service_rules(void)
{
	struct publish_op o = { "pub", "store", 2, 3, &svc_v2, 0 };
	const void *got[4];
	char *log;

	log = unit_capture_log(op_publish, &o);
	CU_ASSERT_EQUAL(o.rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	/* One publisher per name. */
	o.owner = "rival";
	log = unit_capture_log(op_publish, &o);
	CU_ASSERT_EQUAL(o.rc, -1);
	CU_ASSERT(contains(log, "module 'rival' cannot publish service "
	                        "'store': module 'pub' already publishes it "
	                        "(version 2.3)"));
	free(log);
	/* Tables start with their size. */
	o.name = "other";
	o.table = &svc_nosize;
	log = unit_capture_log(op_publish, &o);
	CU_ASSERT_EQUAL(o.rc, -1);
	CU_ASSERT(contains(log, "does not start with its size"));
	free(log);
	o.table = NULL;
	free(unit_capture_log(op_publish, &o));
	CU_ASSERT_EQUAL(o.rc, -1);

	log = unit_capture_log(op_lookups, got);
	CU_ASSERT_PTR_NULL(got[0]);
	CU_ASSERT_PTR_NULL(got[1]);
	CU_ASSERT_PTR_EQUAL(got[2], &svc_v2);
	CU_ASSERT_PTR_NULL(got[3]);
	CU_ASSERT(contains(log, "module 'user' needs service 'nothing' 1.0, "
	                        "which no loaded module publishes"));
	CU_ASSERT(contains(log, "module 'user' needs service 'store' 1.0, "
	                        "but module 'pub' publishes 2.3 (major "
	                        "differs)"));
	CU_ASSERT(contains(log, "module 'user' needs service 'store' 2.4 or "
	                        "newer, but module 'pub' publishes 2.3"));
	free(log);
	/* Optional: absent is quiet, a misfit is not. */
	log = unit_capture_log(op_finds, got);
	CU_ASSERT_PTR_NULL(got[0]);
	CU_ASSERT_PTR_NULL(got[1]);
	CU_ASSERT_PTR_EQUAL(got[2], &svc_v2);
	CU_ASSERT(!contains(log, "'nothing'"));
	CU_ASSERT(contains(log, "(major differs)"));
	free(log);
}

static struct {
	int count;
	struct postern_verdict v;
	char text[128], enhanced[16];
} filter_got;

static void
filter_done(void *arg, const struct postern_verdict *v)
{
	filter_got.count++;
	filter_got.v = *v;
	snprintf(filter_got.text, sizeof(filter_got.text), "%s",
	         v->text != NULL ? v->text : "");
	snprintf(filter_got.enhanced, sizeof(filter_got.enhanced), "%s",
	         v->enhanced != NULL ? v->enhanced : "");
}

static void
test_hook_filter(void)
{
	struct loop *l = loop_create();
	postern_hook_t *hook;
	postern_hook_call_t *call;
	unsigned count = 0;
	uint64_t end;
	int rc;

	loop_current = l;
	memset(&filter_got, 0, sizeof(filter_got));
	/* The test plays the module that defines the hook. */
	hook = hook_define("test", "test.hook");
	CU_ASSERT_PTR_NOT_NULL_FATAL(hook);
	free(load(ld, "hook_filter", &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	free(init_all(ld, &rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(hook_check(), 0);
	CU_ASSERT_TRUE(hook_has_handlers(hook));

	call = host_table()->hook_run(hook, &count, filter_done, NULL);
	CU_ASSERT_PTR_NOT_NULL(call);
	CU_ASSERT_EQUAL(count, 1); /* the synchronous handler ran first */
	CU_ASSERT_EQUAL(filter_got.count, 0);
	end = loop_now_ms(l) + 2000;
	while (filter_got.count == 0 && loop_now_ms(l) < end)
		loop_run_once(l, 10);
	CU_ASSERT_EQUAL(filter_got.count, 1);
	CU_ASSERT_EQUAL(filter_got.v.kind, POSTERN_VERDICT_REJECT);
	CU_ASSERT_EQUAL(filter_got.v.code, 550);
	CU_ASSERT_STRING_EQUAL(filter_got.enhanced, "5.7.1");
	CU_ASSERT_STRING_EQUAL(filter_got.text,
	                       "rejected by hook_filter (count 1)");

	/* Cancelled while pending: the module's cancel stops its timer. */
	call = host_table()->hook_run(hook, &count, filter_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(call);
	host_table()->hook_cancel(call);
	CU_ASSERT(contains(modlog, "hook_filter: cancelled\n"));
	end = loop_now_ms(l) + 50;
	while (loop_now_ms(l) < end)
		loop_run_once(l, 10);
	CU_ASSERT_EQUAL(filter_got.count, 1);

	hook_reset();
	loop_current = NULL;
	loop_destroy(l);
}

static CU_TestInfo loader_tests[] = {
	{ "good module loads, inits, finis", test_good },
	{ "ABI 1.0 module runs in the current host", test_old_minor },
	{ "ABI major mismatch refused", test_abi_major },
	{ "newer ABI minor refused", test_newer_minor },
	{ "missing descriptor refused", test_no_descriptor },
	{ "dlopen failure names file and reason", test_not_an_object },
	{ "missing dependency", test_missing_dependency },
	{ "failed dependency unloads the chain",
	  test_failed_dependency_unloads_chain },
	{ "dependency cycle named", test_cycle },
	{ "dependencies init first, fini last", test_dependency_order },
	{ "failing init finalises the others in reverse",
	  test_failing_init },
	{ "duplicate name from two files", test_duplicate_name },
	{ "module given by explicit path", test_explicit_path },
	{ "service publish and lookup", test_services },
	{ "service registry rules", test_service_rules },
	{ "mime_use module: the MIME functions (ABI 1.3)",
	  test_mime_module },
	{ "hook_filter module: pending, resume, cancel", test_hook_filter },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "loader", NULL, NULL, setup, teardown, loader_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
