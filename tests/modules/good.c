/*
 * good.c - the smallest correct module: it logs from init and fini and
 * registers nothing.  Proves that a well-formed descriptor loads, that
 * init receives a usable host table and that fini runs.
 */
#include <postern/postern.h>

static const struct postern_host *good_host;

static int
good_init(const struct postern_host *host, postern_module_t *self)
{
	good_host = host;
	host->log(self, POSTERN_LOG_INFO, "good: init");
	return 0;
}

static void
good_fini(postern_module_t *self)
{
	good_host->log(self, POSTERN_LOG_INFO, "good: fini");
}

POSTERN_MODULE(.name = "good", .version = "1.0", .kind = POSTERN_KIND_OTHER,
               .depends = NULL, .init = good_init, .fini = good_fini);
