/*
 * needs_missing.c - depends on a module that is not installed.  Loading
 * it must fail, naming the missing module, and never call init.
 */
#include <postern/postern.h>

static const struct postern_host *needs_missing_host;
static const char *const needs_missing_deps[] = { "does_not_exist", NULL };

static int
needs_missing_init(const struct postern_host *host, postern_module_t *self)
{
	needs_missing_host = host;
	host->log(self, POSTERN_LOG_INFO, "needs_missing: init");
	return 0;
}

static void
needs_missing_fini(postern_module_t *self)
{
	needs_missing_host->log(self, POSTERN_LOG_INFO, "needs_missing: fini");
}

POSTERN_MODULE(.name = "needs_missing", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .depends = needs_missing_deps,
               .init = needs_missing_init, .fini = needs_missing_fini);
