/*
 * abi_major.c - a descriptor from a future, incompatible ABI (major + 1).
 * Written by hand instead of with POSTERN_MODULE() so it can lie about
 * its version.  The loader must refuse it without calling init.
 */
#include <postern/postern.h>

static int
abi_major_init(const struct postern_host *host, postern_module_t *self)
{
	host->log(self, POSTERN_LOG_ERROR,
	          "abi_major: init called (the loader must refuse it)");
	return 0;
}

POSTERN_EXPORT const struct postern_module postern_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_major = POSTERN_ABI_MAJOR + 1,
	.abi_minor = 0,
	.size = sizeof(struct postern_module),
	.name = "abi_major",
	.version = "1.0",
	.init = abi_major_init,
};
