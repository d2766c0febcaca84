/*
 * cycle_a.c - half of a dependency cycle with cycle_b.  The loader
 * must name the cycle and initialise neither.
 */
#include <postern/postern.h>

static const struct postern_host *cycle_a_host;
static const char *const cycle_a_deps[] = { "cycle_b", NULL };

static int
cycle_a_init(const struct postern_host *host, postern_module_t *self)
{
	cycle_a_host = host;
	host->log(self, POSTERN_LOG_INFO, "cycle_a: init");
	return 0;
}

static void
cycle_a_fini(postern_module_t *self)
{
	cycle_a_host->log(self, POSTERN_LOG_INFO, "cycle_a: fini");
}

POSTERN_MODULE(.name = "cycle_a", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .depends = cycle_a_deps,
               .init = cycle_a_init, .fini = cycle_a_fini);
