/*
 * cycle_b.c - the other half of the cycle (see cycle_a.c).
 */
#include <postern/postern.h>

static const struct postern_host *cycle_b_host;
static const char *const cycle_b_deps[] = { "cycle_a", NULL };

static int
cycle_b_init(const struct postern_host *host, postern_module_t *self)
{
	cycle_b_host = host;
	host->log(self, POSTERN_LOG_INFO, "cycle_b: init");
	return 0;
}

static void
cycle_b_fini(postern_module_t *self)
{
	cycle_b_host->log(self, POSTERN_LOG_INFO, "cycle_b: fini");
}

POSTERN_MODULE(.name = "cycle_b", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .depends = cycle_b_deps,
               .init = cycle_b_init, .fini = cycle_b_fini);
