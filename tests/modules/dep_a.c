/*
 * dep_a.c - depends on dep_b.  Both log init and fini, so a
 * test can check that dep_b initialises first and finalises last.
 */
#include <postern/postern.h>

static const struct postern_host *dep_a_host;
static const char *const dep_a_deps[] = { "dep_b", NULL };

static int
dep_a_init(const struct postern_host *host, postern_module_t *self)
{
	dep_a_host = host;
	host->log(self, POSTERN_LOG_INFO, "dep_a: init");
	return 0;
}

static void
dep_a_fini(postern_module_t *self)
{
	dep_a_host->log(self, POSTERN_LOG_INFO, "dep_a: fini");
}

POSTERN_MODULE(.name = "dep_a", .version = "1.0",
               .kind = POSTERN_KIND_OTHER,
               .depends = dep_a_deps, .init = dep_a_init, .fini = dep_a_fini);
