/*
 * loader.c - finding, checking, ordering and initialising modules (see
 * loader.h).
 *
 * Nothing in a module runs before its descriptor passed every check: the
 * only code executed at dlopen time is the object's own constructors,
 * which modules do not have.  The descriptor is read field by field only
 * as far as its size says, and a copy with the missing optional fields
 * zeroed is what the rest of the core sees.
 *
 * Errors of the inner functions are built as strings and logged once by
 * the outer call, so a dependency that fails reads as one line naming the
 * whole chain ("module 'a' (a.so) depends on 'b', which is not available:
 * b.so: module ABI 2.0 is incompatible with ...").  A failed loader_load
 * unloads everything it loaded, dependencies too.
 */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "xalloc.h"

#define MODULE_NAME_MAX 64

/* Descriptors may be shorter than ours only in optional fields: anything
 * up to and including init is required. */
#define DESC_MIN_SIZE                                                   \
	(offsetof(struct postern_module, init) +                        \
	 sizeof(((struct postern_module *)0)->init))
#define DESC_HEAD_SIZE                                                  \
	(offsetof(struct postern_module, size) + sizeof(uint32_t))

struct loader {
	const struct postern_host *host;
	char *module_dir;
	struct postern_module_ctx **mods; /* load order */
	size_t nmods, capmods;
	struct postern_module_ctx **order; /* init order, once sorted */
};

static const struct postern_module *const *builtins;

static struct postern_module_ctx *ctx_new(struct loader *ld,
                                          const struct postern_module *desc,
                                          const char *path, void *dl);

void
loader_set_builtins(const struct postern_module *const *descs)
{
	builtins = descs;
}

struct loader *
loader_create(const struct postern_host *host, const char *module_dir)
{
	struct loader *ld = xcalloc(1, sizeof(*ld));
	size_t i;

	ld->host = host;
	ld->module_dir = xstrdup(module_dir != NULL ? module_dir : ".");
	for (i = 0; builtins != NULL && builtins[i] != NULL; i++)
		(void)ctx_new(ld, builtins[i], "(built in)", NULL);
	return ld;
}

size_t
loader_count(struct loader *ld)
{
	return ld->nmods;
}

postern_module_t *
loader_module(struct loader *ld, size_t i)
{
	if (i >= ld->nmods)
		return NULL;
	return ld->order != NULL ? ld->order[i] : ld->mods[i];
}

postern_module_t *
loader_find(struct loader *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->nmods; i++)
		if (strcmp(ld->mods[i]->name, name) == 0)
			return ld->mods[i];
	return NULL;
}

static int
valid_name(const char *name)
{
	size_t i;

	if (name == NULL || *name == '\0')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];
		if (i >= MODULE_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return 1;
}

static char *
name_path(struct loader *ld, const char *name)
{
	return xasprintf("%s/%s.so", ld->module_dir, name);
}

static const char *
dl_error(void)
{
	const char *e = dlerror();

	return e != NULL ? e : "unknown dynamic loader error";
}

/* ---- loading and checking --------------------------------------------- */

/* Finds the descriptor and makes sure it is this object's own: dlsym on
 * a handle also searches the object's dependencies.  *symsize is the
 * symbol's size in bytes, 0 if unknown. */
static const struct postern_module *
find_descriptor(void *dl, const char *path, size_t *symsize, char **err)
{
	const void *sym;
	struct link_map *own = NULL, *where = NULL;
	const ElfW(Sym) *syment = NULL;
	Dl_info info;

	*symsize = 0;
	dlerror();
	sym = dlsym(dl, "postern_module");
	if (sym == NULL) {
		*err = xasprintf("%s: not a postern module: it does not "
		                 "export 'postern_module'", path);
		return NULL;
	}
	if (dlinfo(dl, RTLD_DI_LINKMAP, &own) == 0 &&
	    dladdr1(sym, &info, (void **)&where, RTLD_DL_LINKMAP) != 0 &&
	    where != NULL && where != own) {
		*err = xasprintf("%s: not a postern module: its "
		                 "'postern_module' comes from %s", path,
		                 info.dli_fname != NULL ? info.dli_fname : "?");
		return NULL;
	}
	if (dladdr1(sym, &info, (void **)&syment, RTLD_DL_SYMENT) != 0 &&
	    syment != NULL)
		*symsize = syment->st_size;
	if (*symsize != 0 && *symsize < DESC_HEAD_SIZE) {
		*err = xasprintf("%s: not a postern module: 'postern_module' "
		                 "is only %zu bytes", path, *symsize);
		return NULL;
	}
	return sym;
}

static int
check_abi(struct loader *ld, const struct postern_module *desc,
          const char *path, char **err)
{
	unsigned hmaj = ld->host->abi_major, hmin = ld->host->abi_minor;

	if (desc->magic != POSTERN_MODULE_MAGIC) {
		*err = xasprintf("%s: not a postern module: descriptor magic "
		                 "is 0x%08x, expected 0x%08x", path,
		                 (unsigned)desc->magic,
		                 (unsigned)POSTERN_MODULE_MAGIC);
		return -1;
	}
	if (desc->abi_major != hmaj) {
		*err = xasprintf("%s: module ABI %u.%u is incompatible with "
		                 "host ABI %u.%u (major differs)", path,
		                 (unsigned)desc->abi_major,
		                 (unsigned)desc->abi_minor, hmaj, hmin);
		return -1;
	}
	if (desc->abi_minor > hmin) {
		*err = xasprintf("%s: module ABI %u.%u is newer than host ABI "
		                 "%u.%u", path, (unsigned)desc->abi_major,
		                 (unsigned)desc->abi_minor, hmaj, hmin);
		return -1;
	}
	return 0;
}

static int
check_size(const struct postern_module *desc, size_t symsize,
           const char *path, char **err)
{
	if (desc->size < DESC_MIN_SIZE) {
		*err = xasprintf("%s: module descriptor is %u bytes, too small "
		                 "for the required fields (%zu bytes)", path,
		                 (unsigned)desc->size, (size_t)DESC_MIN_SIZE);
		return -1;
	}
	/* A descriptor claiming more than its symbol holds would make us
	 * read past it. */
	if (symsize != 0 && desc->size > symsize) {
		*err = xasprintf("%s: module descriptor claims %u bytes but "
		                 "the symbol has %zu", path,
		                 (unsigned)desc->size, symsize);
		return -1;
	}
	return 0;
}

/* Name, init and dependency names.  `want` is the name the file was
 * looked up by, NULL for an explicit path. */
static int
check_fields(const struct postern_module *d, const char *path,
             const char *want, char **err)
{
	size_t i;

	if (!valid_name(d->name)) {
		*err = xasprintf("%s: invalid module name '%.*s' (use 1 to %d "
		                 "characters of [a-z0-9_])", path,
		                 MODULE_NAME_MAX + 1,
		                 d->name != NULL ? d->name : "(null)",
		                 MODULE_NAME_MAX);
		return -1;
	}
	if (want != NULL && strcmp(want, d->name) != 0) {
		*err = xasprintf("%s: the file is named for module '%s' but "
		                 "holds module '%s'", path, want, d->name);
		return -1;
	}
	if (d->init == NULL) {
		*err = xasprintf("%s: module '%s' has no init function", path,
		                 d->name);
		return -1;
	}
	for (i = 0; d->depends != NULL && d->depends[i] != NULL; i++) {
		if (!valid_name(d->depends[i]) ||
		    strcmp(d->depends[i], d->name) == 0) {
			*err = xasprintf("%s: module '%s' has an invalid "
			                 "dependency '%.*s'", path, d->name,
			                 MODULE_NAME_MAX + 1, d->depends[i]);
			return -1;
		}
	}
	return 0;
}

static void
ctx_free(struct postern_module_ctx *m)
{
	if (m->dl != NULL)
		dlclose(m->dl);
	free(m->name);
	free(m->path);
	free(m);
}

static struct postern_module_ctx *
ctx_new(struct loader *ld, const struct postern_module *desc,
        const char *path, void *dl)
{
	struct postern_module_ctx *m = xcalloc(1, sizeof(*m));
	size_t n = desc->size < sizeof(m->copy) ? desc->size : sizeof(m->copy);

	/* Fields past the module's size (fini, in an old descriptor) stay
	 * zero: optional means NULL. */
	memcpy(&m->copy, desc, n);
	m->desc = &m->copy;
	m->orig = desc;
	m->name = xstrdup(desc->name);
	m->path = xstrdup(path);
	m->dl = dl;
	if (ld->nmods == ld->capmods) {
		ld->capmods = ld->capmods ? ld->capmods * 2 : 16;
		ld->mods = xreallocarray(ld->mods, ld->capmods,
		                         sizeof(*ld->mods));
	}
	ld->mods[ld->nmods++] = m;
	return m;
}

static int load_path(struct loader *ld, const char *path, const char *want,
                     char **err);

static int
load_deps(struct loader *ld, struct postern_module_ctx *m, char **err)
{
	const char *const *deps = m->desc->depends;
	struct stat st;
	size_t i;

	for (i = 0; deps != NULL && deps[i] != NULL; i++) {
		char *path, *why = NULL;

		if (loader_find(ld, deps[i]) != NULL)
			continue;
		path = name_path(ld, deps[i]);
		if (stat(path, &st) < 0)
			why = xasprintf("%s: %s", path, strerror(errno));
		else if (load_path(ld, path, deps[i], &why) == 0)
			why = NULL;
		free(path);
		if (why != NULL) {
			*err = xasprintf("module '%s' (%s) depends on '%s', "
			                 "which is not available: %s", m->name,
			                 m->path, deps[i], why);
			free(why);
			return -1;
		}
	}
	return 0;
}

/* Loads one file and, recursively, its dependencies.  The module joins
 * the list before its dependencies load, so a cycle ends the recursion
 * (loader_init_all reports it). */
static int
load_path(struct loader *ld, const char *path, const char *want, char **err)
{
	const struct postern_module *desc;
	struct postern_module_ctx *m;
	size_t symsize;
	void *dl;

	dlerror();
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		*err = xasprintf("%s: cannot load module: %s", path,
		                 dl_error());
		return -1;
	}
	if ((desc = find_descriptor(dl, path, &symsize, err)) == NULL ||
	    check_abi(ld, desc, path, err) < 0 ||
	    check_size(desc, symsize, path, err) < 0 ||
	    check_fields(desc, path, want, err) < 0) {
		dlclose(dl);
		return -1;
	}
	if ((m = loader_find(ld, desc->name)) != NULL) {
		/* dlopen hands back the same object for the same file under
		 * another path: that is the module we have, not a clash. */
		int same = m->orig == desc;

		if (!same)
			*err = xasprintf("module '%s' is provided by both %s "
			                 "and %s", desc->name, m->path, path);
		dlclose(dl);
		return same ? 0 : -1;
	}
	m = ctx_new(ld, desc, path, dl);
	return load_deps(ld, m, err);
}

/* Unloads the modules loaded since there were `n`. */
static void
unload_from(struct loader *ld, size_t n)
{
	while (ld->nmods > n)
		ctx_free(ld->mods[--ld->nmods]);
}

int
loader_load(struct loader *ld, const char *name_or_path)
{
	size_t n = ld->nmods;
	const char *want = NULL;
	char *path, *err = NULL;
	struct stat st;

	if (ld->order != NULL) {
		log_error("%s: modules cannot be loaded after they were "
		          "initialised", name_or_path);
		return -1;
	}
	if (strchr(name_or_path, '/') != NULL) {
		path = xstrdup(name_or_path);
	} else {
		if (!valid_name(name_or_path)) {
			log_error("'%s' is not a valid module name (use "
			          "[a-z0-9_], or a path with a '/')",
			          name_or_path);
			return -1;
		}
		if (loader_find(ld, name_or_path) != NULL)
			return 0;
		want = name_or_path;
		path = name_path(ld, want);
		if (stat(path, &st) < 0) {
			log_error("module '%s' not found: %s: %s", want, path,
			          strerror(errno));
			free(path);
			return -1;
		}
	}
	if (load_path(ld, path, want, &err) < 0) {
		log_error("%s", err);
		free(err);
		unload_from(ld, n);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

/* ---- ordering and init ------------------------------------------------ */

struct sort {
	struct loader *ld;
	struct postern_module_ctx **stack; /* the path being visited */
	size_t depth;
	size_t norder;
};

static char *
cycle_text(struct sort *s, struct postern_module_ctx *m)
{
	char *text = xstrdup("dependency cycle:"), *next;
	size_t i = 0;

	while (s->stack[i] != m)
		i++;
	for (; i < s->depth; i++) {
		next = xasprintf("%s %s ->", text, s->stack[i]->name);
		free(text);
		text = next;
	}
	next = xasprintf("%s %s", text, m->name);
	free(text);
	return next;
}

/* Depth-first: a module goes into the order after its dependencies. */
static int
visit(struct sort *s, struct postern_module_ctx *m)
{
	const char *const *deps = m->desc->depends;
	size_t i;

	if (m->mark == 2)
		return 0;
	if (m->mark == 1) {
		char *text = cycle_text(s, m);
		log_error("%s", text);
		free(text);
		return -1;
	}
	m->mark = 1;
	s->stack[s->depth++] = m;
	for (i = 0; deps != NULL && deps[i] != NULL; i++) {
		struct postern_module_ctx *dep = loader_find(s->ld, deps[i]);

		if (dep == NULL) {
			log_error("module '%s' (%s) depends on '%s', which is "
			          "not loaded", m->name, m->path, deps[i]);
			return -1;
		}
		if (visit(s, dep) < 0)
			return -1;
	}
	s->depth--;
	m->mark = 2;
	s->ld->order[s->norder++] = m;
	return 0;
}

static int
sort_modules(struct loader *ld)
{
	struct sort s = { .ld = ld };
	size_t i;
	int rc = 0;

	for (i = 0; i < ld->nmods; i++)
		ld->mods[i]->mark = 0;
	ld->order = xcalloc(ld->nmods, sizeof(*ld->order));
	s.stack = xcalloc(ld->nmods, sizeof(*s.stack));
	for (i = 0; i < ld->nmods && rc == 0; i++)
		rc = visit(&s, ld->mods[i]);
	free(s.stack);
	if (rc < 0) {
		free(ld->order);
		ld->order = NULL;
	}
	return rc;
}

int
loader_init_all(struct loader *ld)
{
	size_t i;

	if (ld->order != NULL) {
		log_error("modules are already initialised");
		return -1;
	}
	if (sort_modules(ld) < 0)
		return -1;
	for (i = 0; i < ld->nmods; i++) {
		struct postern_module_ctx *m = ld->order[i];

		if (m->desc->init(ld->host, m) != 0) {
			log_error("module '%s' failed to initialise", m->name);
			loader_fini_all(ld);
			return -1;
		}
		m->initialised = 1;
	}
	return 0;
}

void
loader_fini_all(struct loader *ld)
{
	size_t i;

	if (ld->order == NULL)
		return;
	for (i = ld->nmods; i-- > 0;) {
		struct postern_module_ctx *m = ld->order[i];

		if (!m->initialised)
			continue;
		m->initialised = 0;
		if (m->desc->fini != NULL)
			m->desc->fini(m);
	}
}

void
loader_destroy(struct loader *ld)
{
	if (ld == NULL)
		return;
	loader_fini_all(ld);
	unload_from(ld, 0);
	free(ld->mods);
	free(ld->order);
	free(ld->module_dir);
	free(ld);
}
