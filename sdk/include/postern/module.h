/*
 * postern/module.h - the module descriptor and the ABI version.
 *
 * A module is a shared object that exports exactly one symbol,
 * `postern_module`, a const struct postern_module.  Declare it with
 * POSTERN_MODULE(), which fills in the magic number, the ABI version the
 * module was built for and the descriptor's size:
 *
 *	static int hello_init(const struct postern_host *host,
 *	                      postern_module_t *self);
 *	static const char *const hello_deps[] = { NULL };
 *	POSTERN_MODULE(.name = "hello", .version = "1.0",
 *	               .kind = POSTERN_KIND_PROTOCOL,
 *	               .depends = hello_deps, .init = hello_init);
 *
 * The loader reads the descriptor before calling anything and refuses the
 * module when the magic is wrong, when the ABI major differs from the
 * host's, or when the minor is newer than the host's.
 *
 * ABI versions.  The host table (postern/host.h) and every size-first struct
 * only ever grow at the end.  A minor bump appends; a major bump breaks.  A
 * module built against minor N runs in any host of the same major with a
 * minor >= N, and a host refuses a module built for a newer minor than its
 * own (naming both versions): it could not answer every call the module
 * was compiled to make, and a missing function found at run time is a
 * crash, not an error message.  So every member of the host table that
 * the module's headers show is there, and a module never checks.  To
 * build a module that also runs in older hosts, define
 * POSTERN_ABI_TARGET_MINOR before including any SDK header: the headers
 * then hide everything added after that minor, so the compiler refuses a
 * call the older host could not answer, and the descriptor declares the
 * lower minor.
 */
#ifndef POSTERN_MODULE_H
#define POSTERN_MODULE_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_MODULE_MAGIC 0x50535452u /* "PSTR" */

/* The ABI this SDK describes. */
#define POSTERN_ABI_MAJOR 1
#define POSTERN_ABI_MINOR 12

#ifndef POSTERN_ABI_TARGET_MINOR
#define POSTERN_ABI_TARGET_MINOR POSTERN_ABI_MINOR
#endif
#if POSTERN_ABI_TARGET_MINOR > POSTERN_ABI_MINOR
#error "POSTERN_ABI_TARGET_MINOR is newer than this SDK"
#endif

/* What a module provides.  Informational: the loader does not treat kinds
 * differently, but `posternd -V` and the logs show it. */
enum postern_module_kind {
	POSTERN_KIND_OTHER = 0,
	POSTERN_KIND_PROTOCOL = 1, /* serves clients: smtp, imap, pop3 */
	POSTERN_KIND_AUTH = 2,     /* user database, password checks */
	POSTERN_KIND_STORAGE = 3,  /* mailboxes */
	POSTERN_KIND_RELAY = 4,    /* outbound delivery */
	POSTERN_KIND_FILTER = 5,   /* verdicts on mail in flight */
};

struct postern_host;

struct postern_module {
	uint32_t magic;     /* POSTERN_MODULE_MAGIC */
	uint16_t abi_major; /* POSTERN_ABI_MAJOR the module was built with */
	uint16_t abi_minor; /* POSTERN_ABI_TARGET_MINOR */
	uint32_t size;      /* sizeof(struct postern_module) as built */

	const char *name;    /* unique, [a-z0-9_]+; also its config group */
	const char *version; /* the module's own version, free-form */
	enum postern_module_kind kind;

	/* Names of modules that must be loaded and initialised first, NULL
	 * terminated.  May be NULL for none. */
	const char *const *depends;

	/*
	 * Called once in the master process, after every dependency's init,
	 * before listeners are bound and workers forked (and also by
	 * `posternd -t`, which then exits).  Read and validate the module's
	 * configuration, register listeners, hooks, services and worker
	 * callbacks here.  Do nothing here that cannot be undone or that needs
	 * the event loop: open files, timers and jobs belong in the worker
	 * start callback (host->worker_ops).  Return 0, or -1 after logging
	 * why; the host then finalises every module already initialised, in
	 * reverse order, and exits.  Required.
	 */
	int (*init)(const struct postern_host *host, postern_module_t *self);

	/* Called once at process exit for every module whose init succeeded,
	 * in reverse order of init, in the master and in every worker.  May be
	 * NULL. */
	void (*fini)(postern_module_t *self);
};

#if defined(__GNUC__)
#define POSTERN_EXPORT __attribute__((visibility("default")))
#else
#define POSTERN_EXPORT
#endif

/* Defines the module's one exported symbol.  Arguments are designated
 * initialisers for the fields after `size`. */
#define POSTERN_MODULE(...)                                                   \
	POSTERN_EXPORT const struct postern_module postern_module = {         \
		.magic = POSTERN_MODULE_MAGIC,                                \
		.abi_major = POSTERN_ABI_MAJOR,                               \
		.abi_minor = POSTERN_ABI_TARGET_MINOR,                        \
		.size = sizeof(struct postern_module),                        \
		__VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_MODULE_H */
