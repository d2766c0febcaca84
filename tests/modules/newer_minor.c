/*
 * newer_minor.c - a descriptor built for a newer minor than the host's:
 * it could call host members the host does not have.  The loader must
 * refuse it without calling init.
 */
#include <postern/postern.h>

static int
newer_minor_init(const struct postern_host *host, postern_module_t *self)
{
	host->log(self, POSTERN_LOG_ERROR,
	          "newer_minor: init called (the loader must refuse it)");
	return 0;
}

POSTERN_EXPORT const struct postern_module postern_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_major = POSTERN_ABI_MAJOR,
	.abi_minor = POSTERN_ABI_MINOR + 1,
	.size = sizeof(struct postern_module),
	.name = "newer_minor",
	.version = "1.0",
	.init = newer_minor_init,
};
