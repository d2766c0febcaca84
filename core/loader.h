/*
 * loader.h - finding, checking, ordering and initialising modules.
 *
 * loader_load() dlopens a module (RTLD_NOW | RTLD_LOCAL), finds the one
 * symbol `postern_module`, and checks the descriptor before calling
 * anything in it: magic, ABI major equal to the host's, ABI minor not newer
 * than the host's, size large enough, a valid unique name, an init
 * function.  Its dependencies are loaded by name from the module
 * directory.  loader_init_all() then calls init in dependency order
 * (dependencies first, otherwise in load order); a failure finalises every
 * module already initialised, in reverse order.  Modules are never
 * dlclosed while the process runs.
 *
 * A failed loader_load unloads everything it loaded (dependencies too);
 * errors are logged once, as one line naming the chain of files.  A file
 * looked up by name must declare that name; a file given by path may
 * declare any.  The same file reached twice (by name and by path) is one
 * module; two files declaring one name is an error naming both.
 *
 * loader_destroy dlcloses: reset the hook and service registries first,
 * as they point into modules' memory (handler functions, tables).
 */
#ifndef CORE_LOADER_H
#define CORE_LOADER_H

#include <postern/host.h>

/* What the core knows about one module: this is postern_module_t. */
struct postern_module_ctx {
	/* The descriptor as checked: a copy of the module's, with fields
	 * past its `size` (optional ones an older module lacks) zeroed.
	 * Read this, not the module's own. */
	const struct postern_module *desc;
	struct postern_module copy;       /* what desc points to */
	const struct postern_module *orig; /* the module's own descriptor */
	int mark;          /* loader_init_all's depth-first search state */
	char *name;        /* desc->name, copied */
	char *path;        /* the file it came from */
	void *dl;          /* dlopen handle */
	int initialised;   /* init returned 0 (fini is due) */
	/* Worker callbacks registered with host->worker_ops (or NULL). */
	struct postern_worker_ops worker_ops;
	void *worker_arg;
	int has_worker_ops;
};

struct loader;

/* Modules compiled into the program (postern-filter-test's stand-in for
 * smtp), NULL-terminated, kept (not copied): every loader made after this
 * starts with them, as if loaded by name.  Their descriptors are trusted
 * (no ABI check). */
void loader_set_builtins(const struct postern_module *const *descs);

/* `module_dir` is where names are looked up (copied). */
struct loader *loader_create(const struct postern_host *host,
                             const char *module_dir);
/* Loads a module given by name ("smtp": module_dir/smtp.so) or by path
 * (anything with a '/'), then its dependencies.  Loading a name twice is
 * a no-op.  -1 after logging an error that names the file and, for ABI
 * problems, both versions. */
int loader_load(struct loader *ld, const char *name_or_path);
/* Checks that every dependency is loaded and there is no cycle, then
 * inits every module in dependency order.  -1 after logging (a cycle is
 * named like "a -> b -> a"); modules already initialised are finalised in
 * reverse order. */
int loader_init_all(struct loader *ld);
/* Calls fini of every initialised module in reverse init order. */
void loader_fini_all(struct loader *ld);
/* Finalises (if not done) and dlcloses everything; frees the loader. */
void loader_destroy(struct loader *ld);

size_t loader_count(struct loader *ld);
/* Modules in init order (load order before loader_init_all). */
postern_module_t *loader_module(struct loader *ld, size_t i);
postern_module_t *loader_find(struct loader *ld, const char *name);

#endif /* CORE_LOADER_H */
