/*
 * fail_init.c - a module whose init fails.  The loader must log the
 * failure, skip this module's fini and finalise every module initialised
 * before it, in reverse order.
 */
#include <postern/postern.h>

static const struct postern_host *fail_init_host;

static int
fail_init_init(const struct postern_host *host, postern_module_t *self)
{
	fail_init_host = host;
	host->log(self, POSTERN_LOG_INFO, "fail_init: init failing");
	return -1;
}

static void
fail_init_fini(postern_module_t *self)
{
	fail_init_host->log(self, POSTERN_LOG_ERROR,
	                    "fail_init: fini (must not run: init failed)");
}

POSTERN_MODULE(.name = "fail_init", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .init = fail_init_init,
               .fini = fail_init_fini);
