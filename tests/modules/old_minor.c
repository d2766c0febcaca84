/*
 * old_minor.c - a module built for ABI 1.0 with the 1.1 SDK.  Defining
 * POSTERN_ABI_TARGET_MINOR before the includes makes the descriptor say
 * 1.0 and hides the members the 1.1 host table added, so this module runs
 * in any 1.x host.  It logs what it found of the 1.0 table.
 */
#define POSTERN_ABI_TARGET_MINOR 0
#include <postern/postern.h>

/* The headers really hide the 1.1 members: the table this module sees
 * ends with hook_resume. */
_Static_assert(sizeof(struct postern_host) ==
                   offsetof(struct postern_host, hook_resume) +
                       sizeof(((struct postern_host *)0)->hook_resume),
               "ABI 1.0 view of the host table must end at hook_resume");

static const struct postern_host *old_host;

static int
old_minor_init(const struct postern_host *host, postern_module_t *self)
{
	old_host = host;
	host->log(self, POSTERN_LOG_INFO,
	          "old_minor: init, built for ABI %u.%u, host ABI %u.%u",
	          (unsigned)POSTERN_ABI_MAJOR,
	          (unsigned)POSTERN_ABI_TARGET_MINOR,
	          (unsigned)host->abi_major, (unsigned)host->abi_minor);
	host->log(self, POSTERN_LOG_INFO, "old_minor: hook_run %s",
	          host->hook_run != NULL ? "available" : "missing");
	host->log(self, POSTERN_LOG_INFO, "old_minor: host table %s",
	          host->size >= sizeof(struct postern_host) ?
	              "covers the 1.0 view" : "is too small");
	return 0;
}

static void
old_minor_fini(postern_module_t *self)
{
	old_host->log(self, POSTERN_LOG_INFO, "old_minor: fini");
}

POSTERN_MODULE(.name = "old_minor", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .init = old_minor_init,
               .fini = old_minor_fini);
