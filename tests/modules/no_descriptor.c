/*
 * no_descriptor.c - a shared object that is not a postern module: it
 * exports a descriptor under the wrong name (a plausible typo) and
 * nothing called `postern_module`.
 */
#include <postern/postern.h>

static int
no_descriptor_init(const struct postern_host *host, postern_module_t *self)
{
	host->log(self, POSTERN_LOG_ERROR,
	          "no_descriptor: init called (it has no descriptor)");
	return 0;
}

POSTERN_EXPORT const struct postern_module postern_modul = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_major = POSTERN_ABI_MAJOR,
	.abi_minor = POSTERN_ABI_MINOR,
	.size = sizeof(struct postern_module),
	.name = "no_descriptor",
	.init = no_descriptor_init,
};
