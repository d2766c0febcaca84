/*
 * dep_b.c - the dependency of dep_a (see dep_a.c).
 */
#include <postern/postern.h>

static const struct postern_host *dep_b_host;
static const char *const dep_b_deps[] = { NULL };

static int
dep_b_init(const struct postern_host *host, postern_module_t *self)
{
	dep_b_host = host;
	host->log(self, POSTERN_LOG_INFO, "dep_b: init");
	return 0;
}

static void
dep_b_fini(postern_module_t *self)
{
	dep_b_host->log(self, POSTERN_LOG_INFO, "dep_b: fini");
}

POSTERN_MODULE(.name = "dep_b", .version = "1.0",
               .kind = POSTERN_KIND_OTHER,
               .depends = dep_b_deps, .init = dep_b_init, .fini = dep_b_fini);
