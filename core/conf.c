/*
 * conf.c - loading, merging and checking the configuration (see conf.h).
 *
 * libconfig 1.5 reads one file into one config_t and knows nothing of
 * conf.d, so every file is read on its own and copied into a tree of our
 * own nodes, which the later files are merged into.  Nodes point at
 * strings libconfig owns (member names, string values, file names), so
 * every config_t read stays alive until conf_free.
 *
 * Parsing against a schema never stops at the first problem: each one is
 * logged and counted, and conf_parse fails if the count grew.  Defaults go
 * through the same code as values: a default is turned into a detached
 * node (parsed by libconfig when it is valid libconfig syntax, else taken
 * as a string, so "25M" and "5m" work), and errors in it name the key.
 *
 * What a schema parse produces is also recorded, as text in libconfig
 * syntax, in a tree keyed by path; conf_print_effective prints that tree.
 */
#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "log.h"
#include "xalloc.h"

#define PUSH(arr, n, item) do {                                         \
	(arr) = xreallocarray((arr), (n) + 1, sizeof(*(arr)));          \
	(arr)[(n)++] = (item);                                          \
} while (0)

struct postern_cfg {
	int type;                  /* CONFIG_TYPE_* */
	const char *name;          /* member name; NULL for elements */
	char *path;
	const char *file;
	unsigned line;
	struct postern_cfg *parent;
	union {
		long long i;
		double f;
		int b;
		const char *s;
	} v;
	struct postern_cfg **kids; /* members or elements */
	size_t nkids;
	const char **strv;         /* STRLIST items, built on first use */
	char *own;                 /* text this node owns (defaults) */
	const char *deftext;       /* set on nodes made from a default */
};

enum rec_kind { REC_VALUE, REC_GROUP, REC_LIST };

struct print_how {
	int docs;                  /* each key's documentation (-v) */
	int all;                   /* defaults too (-a) */
};

/* One recorded path segment ("smtp", "listen", "[1]", "port"). */
struct rec {
	char *seg;
	enum rec_kind kind;
	char *text;                /* REC_VALUE: libconfig syntax */
	int dflt;                  /* REC_VALUE: the schema's default */
	char *doc;
	postern_cfg_t *raw;        /* a container no schema described */
	struct rec **kids;
	size_t nkids;
};

struct conf {
	char *file;
	char *dir;
	config_t **cfgs;           /* every config_t read; nodes point in */
	size_t ncfgs;
	char **names;              /* conf.d file names nodes point at */
	size_t nnames;
	postern_cfg_t *root;
	postern_cfg_t **detached;  /* nodes made from defaults */
	size_t ndetached;
	unsigned errors;
	struct rec top;
};

/* One conf_parse call. */
struct parse {
	struct conf *c;
	size_t key_size;
};

void conf_verror(struct conf *, postern_cfg_t *, const char *, va_list)
	__attribute__((format(printf, 3, 0)));

static int parse_group(struct parse *, postern_cfg_t *, postern_cfg_t *,
                       const char *, const struct postern_cfg_key *, void *,
                       unsigned);

/* ---- errors ----------------------------------------------------------- */

static void __attribute__((format(printf, 6, 0)))
report(struct conf *c, const char *file, unsigned line, const char *path,
       const char *deftext, const char *fmt, va_list ap)
{
	char msg[2048], where[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(where, sizeof(where), "%s:%u", file, line);
	else
		snprintf(where, sizeof(where), "%s", file);
	if (path != NULL && *path != '\0' && deftext != NULL)
		log_error("%s: key '%s': bad default '%s': %s", where, path,
		          deftext, msg);
	else if (path != NULL && *path != '\0')
		log_error("%s: key '%s': %s", where, path, msg);
	else
		log_error("%s: %s", where, msg);
	c->errors++;
}

void
conf_verror(struct conf *c, postern_cfg_t *node, const char *fmt, va_list ap)
{
	if (node == NULL)
		report(c, c->file, 0, NULL, NULL, fmt, ap);
	else
		report(c, node->file, node->line, node->path, node->deftext,
		       fmt, ap);
}

void
conf_error(struct conf *c, postern_cfg_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_verror(c, node, fmt, ap);
	va_end(ap);
}

/* An error about `path`, which has no node (a missing key): it is placed
 * at `anchor`, the nearest enclosing node, or the main file. */
static void __attribute__((format(printf, 4, 5)))
path_error(struct conf *c, postern_cfg_t *anchor, const char *path,
           const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (anchor == NULL)
		report(c, c->file, 0, path, NULL, fmt, ap);
	else
		report(c, anchor->file, anchor->line, path, anchor->deftext,
		       fmt, ap);
	va_end(ap);
}

unsigned
conf_errors(struct conf *c)
{
	return c->errors;
}

/* ---- nodes ------------------------------------------------------------ */

static char *
path_join(const char *base, const char *name, size_t index)
{
	if (name == NULL)
		return *base == '\0' ? xasprintf("[%zu]", index) :
		                       xasprintf("%s.[%zu]", base, index);
	return *base == '\0' ? xstrdup(name) : xasprintf("%s.%s", base, name);
}

static void
node_free(postern_cfg_t *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->strv);
	free(n->own);
	free(n->path);
	free(n);
}

static void
node_set_scalar(postern_cfg_t *n, const config_setting_t *s)
{
	switch (s->type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		n->v.i = config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		n->v.f = config_setting_get_float(s);
		break;
	case CONFIG_TYPE_BOOL:
		n->v.b = config_setting_get_bool(s);
		break;
	case CONFIG_TYPE_STRING:
		n->v.s = config_setting_get_string(s);
		break;
	}
}

/* Copies a libconfig setting and everything below it.  `file` stands in
 * when libconfig does not know it (a string was read). */
static postern_cfg_t *
node_from_setting(const config_setting_t *s, char *path, const char *file,
                  const char *deftext)
{
	postern_cfg_t *n = xcalloc(1, sizeof(*n));
	int i, len;

	n->type = s->type;
	n->name = s->name;
	n->path = path;
	n->file = s->file != NULL ? s->file : file;
	n->line = s->line;
	n->deftext = deftext;
	node_set_scalar(n, s);
	if (!config_setting_is_aggregate(s))
		return n;
	len = config_setting_length(s);
	for (i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		postern_cfg_t *k = node_from_setting(e,
		    path_join(path, e->name, (size_t)i), file, deftext);

		k->parent = n;
		PUSH(n->kids, n->nkids, k);
	}
	return n;
}

static postern_cfg_t *
node_member(const postern_cfg_t *g, const char *name)
{
	size_t i;

	if (g == NULL || g->type != CONFIG_TYPE_GROUP)
		return NULL;
	for (i = 0; i < g->nkids; i++)
		if (strcmp(g->kids[i]->name, name) == 0)
			return g->kids[i];
	return NULL;
}

/* Merges group `src` into group `dst` and frees what is left of `src`.
 * Both sit at the same path, so the moved nodes' paths stay right. */
static void
node_merge(postern_cfg_t *dst, postern_cfg_t *src)
{
	size_t i, j;

	for (i = 0; i < src->nkids; i++) {
		postern_cfg_t *k = src->kids[i], *old;

		old = node_member(dst, k->name);
		if (old != NULL && old->type == CONFIG_TYPE_GROUP &&
		    k->type == CONFIG_TYPE_GROUP) {
			node_merge(old, k);
			continue;
		}
		k->parent = dst;
		if (old == NULL) {
			PUSH(dst->kids, dst->nkids, k);
			continue;
		}
		/* A replaced key keeps its place, so printing follows the
		 * order of the first file. */
		for (j = 0; dst->kids[j] != old; j++)
			continue;
		dst->kids[j] = k;
		node_free(old);
	}
	src->nkids = 0;
	node_free(src);
}

/* Sets the source of a node made from a default (and of what is below
 * it) to that of the group it stands in, so errors point there. */
static void
node_locate(postern_cfg_t *n, const char *file, unsigned line)
{
	size_t i;

	n->file = file;
	n->line = line;
	for (i = 0; i < n->nkids; i++)
		node_locate(n->kids[i], file, line);
}

/* ---- loading ---------------------------------------------------------- */

/* Reads a file (text NULL) or a string into a new config_t kept by `c`;
 * logs the error and returns NULL if it cannot. */
static config_t *
cfg_read(struct conf *c, const char *name, const char *text)
{
	config_t *cfg = xmalloc(sizeof(*cfg));
	int ok, saved;

	config_init(cfg);
	ok = text != NULL ? config_read_string(cfg, text) :
	                    config_read_file(cfg, name);
	saved = errno;
	if (ok) {
		PUSH(c->cfgs, c->ncfgs, cfg);
		return cfg;
	}
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
		log_error("%s: cannot read: %s", name, strerror(saved));
	else
		log_error("%s:%d: %s", config_error_file(cfg) != NULL ?
		          config_error_file(cfg) : name,
		          config_error_line(cfg), config_error_text(cfg));
	config_destroy(cfg);
	free(cfg);
	return NULL;
}

/* Reads one file or string and merges it into the tree. */
static int
load_one(struct conf *c, const char *name, const char *text)
{
	config_t *cfg = cfg_read(c, name, text);
	postern_cfg_t *tree;

	if (cfg == NULL)
		return -1;
	tree = node_from_setting(config_root_setting(cfg), xstrdup(""), name,
	                         NULL);
	if (c->root == NULL)
		c->root = tree;
	else
		node_merge(c->root, tree);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_conf_name(const char *name)
{
	size_t len = strlen(name);

	/* Hidden files are editor and package-manager droppings. */
	return name[0] != '.' && len > 5 &&
	       strcmp(name + len - 5, ".conf") == 0;
}

/* The `*.conf` names in `dir`, sorted; NULL (and *n == 0) when `dir`
 * does not exist; -1 in *n if it cannot be read. */
static char **
list_confd(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;

	*n = 0;
	if (d == NULL) {
		if (errno != ENOENT) {
			log_error("%s: cannot read: %s", dir, strerror(errno));
			*n = (size_t)-1;
		}
		return NULL;
	}
	while ((de = readdir(d)) != NULL)
		if (is_conf_name(de->d_name))
			PUSH(names, *n, xstrdup(de->d_name));
	closedir(d);
	if (*n > 0)
		qsort(names, *n, sizeof(*names), name_cmp);
	return names;
}

/* Loads every conf.d file, even after one failed, so that one run shows
 * every syntax error. */
static int
load_confd(struct conf *c)
{
	char *dir, **names;
	size_t i, n;
	int rc = 0;

	dir = strcmp(c->dir, "/") == 0 ? xstrdup("/conf.d") :
	                                 xasprintf("%s/conf.d", c->dir);
	names = list_confd(dir, &n);
	if (n == (size_t)-1) {
		free(dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);

		PUSH(c->names, c->nnames, path);
		if (load_one(c, path, NULL) != 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	free(dir);
	return rc;
}

static struct conf *
conf_new(const char *file)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	const char *slash = strrchr(file, '/');

	c->file = xstrdup(file);
	if (slash == NULL)
		c->dir = xstrdup(".");
	else if (slash == file)
		c->dir = xstrdup("/");
	else
		c->dir = xstrndup(file, (size_t)(slash - file));
	c->top.kind = REC_GROUP;
	return c;
}

struct conf *
conf_load(const char *path)
{
	struct conf *c = conf_new(path);
	int rc;

	rc = load_one(c, c->file, NULL);
	if (load_confd(c) != 0)
		rc = -1;
	if (rc != 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_load_string(const char *text, const char *name)
{
	struct conf *c = conf_new(name);

	if (load_one(c, c->file, text) != 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

static void
rec_clear(struct rec *r)
{
	size_t i;

	for (i = 0; i < r->nkids; i++) {
		rec_clear(r->kids[i]);
		free(r->kids[i]->seg);
		free(r->kids[i]->doc);
		free(r->kids[i]);
	}
	free(r->kids);
	r->kids = NULL;
	r->nkids = 0;
	free(r->text);
	r->text = NULL;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	rec_clear(&c->top);
	free(c->top.doc);
	node_free(c->root);
	for (i = 0; i < c->ndetached; i++)
		node_free(c->detached[i]);
	free(c->detached);
	/* Nodes are gone; now the libconfig memory they pointed into. */
	for (i = 0; i < c->ncfgs; i++) {
		config_destroy(c->cfgs[i]);
		free(c->cfgs[i]);
	}
	free(c->cfgs);
	for (i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	free(c->file);
	free(c->dir);
	free(c);
}

/* ---- navigation ------------------------------------------------------- */

postern_cfg_t *
conf_root(struct conf *c)
{
	return c->root;
}

const char *
conf_file(struct conf *c)
{
	return c->file;
}

const char *
conf_dir(struct conf *c)
{
	return c->dir;
}

/* One path segment: "[n]" indexes a list or array, a name a group. */
static postern_cfg_t *
lookup_segment(postern_cfg_t *node, const char *seg, size_t len)
{
	size_t i;
	char *end;
	unsigned long idx;

	if (len > 2 && seg[0] == '[' && seg[len - 1] == ']') {
		if (node->type != CONFIG_TYPE_LIST &&
		    node->type != CONFIG_TYPE_ARRAY)
			return NULL;
		errno = 0;
		idx = strtoul(seg + 1, &end, 10);
		if (errno != 0 || end != seg + len - 1 || seg[1] == '-')
			return NULL;
		return conf_elem(node, idx);
	}
	if (node->type != CONFIG_TYPE_GROUP)
		return NULL;
	for (i = 0; i < node->nkids; i++)
		if (strncmp(node->kids[i]->name, seg, len) == 0 &&
		    node->kids[i]->name[len] == '\0')
			return node->kids[i];
	return NULL;
}

postern_cfg_t *
conf_lookup(postern_cfg_t *node, const char *path)
{
	const char *p = path, *dot;

	while (node != NULL && *p != '\0') {
		dot = strchrnul(p, '.');
		node = lookup_segment(node, p, (size_t)(dot - p));
		p = *dot != '\0' ? dot + 1 : dot;
	}
	return node;
}

size_t
conf_count(postern_cfg_t *node)
{
	return node != NULL ? node->nkids : 0;
}

postern_cfg_t *
conf_elem(postern_cfg_t *node, size_t i)
{
	return node != NULL && i < node->nkids ? node->kids[i] : NULL;
}

const char *
conf_path(postern_cfg_t *node)
{
	return node != NULL ? node->path : "";
}

const char *
conf_name(postern_cfg_t *node)
{
	return node != NULL ? node->name : NULL;
}

const char *
conf_source_file(postern_cfg_t *node)
{
	return node != NULL ? node->file : NULL;
}

unsigned
conf_source_line(postern_cfg_t *node)
{
	return node != NULL ? node->line : 0;
}

/* ---- "did you mean" --------------------------------------------------- */

/* Edit distance between a and b (insert, delete, replace, swap two
 * neighbours), or more than `limit` once it is sure to be. */
static size_t
edit_distance(const char *a, const char *b, size_t limit)
{
	size_t la = strlen(a), lb = strlen(b), i, j, best;
	size_t d[3][65]; /* rows i-2, i-1, i; names are short */

	if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		size_t *cur = d[i % 3], *prev = d[(i - 1) % 3];

		cur[0] = i;
		best = i;
		for (j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v = prev[j - 1] + cost;

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[(i - 2) % 3][j - 2] + 1 < v)
				v = d[(i - 2) % 3][j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		if (best > limit)
			return limit + 1;
	}
	return d[la % 3][lb];
}

/* Keeps `cand` in *best when it is the closest to `name` so far and close
 * enough to be a typo of it (a third of the name, at least 1, at most 3). */
static void
suggest_consider(const char *name, const char *cand, const char **best,
                 size_t *best_d)
{
	size_t limit = strlen(name) / 3, dist;

	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	dist = edit_distance(name, cand, limit);
	if (dist <= limit && dist < *best_d) {
		*best = cand;
		*best_d = dist;
	}
}

static void
unknown_key(struct conf *c, postern_cfg_t *node, const char *suggestion)
{
	if (suggestion != NULL)
		conf_error(c, node, "unknown key (did you mean '%s'?)",
		           suggestion);
	else
		conf_error(c, node, "unknown key");
}

unsigned
conf_check_known(struct conf *c, postern_cfg_t *group,
                 const char *const *known)
{
	unsigned n = 0;
	size_t i, j;

	if (group == NULL || group->type != CONFIG_TYPE_GROUP)
		return 0;
	for (i = 0; i < group->nkids; i++) {
		for (j = 0; known[j] != NULL; j++)
			if (strcmp(known[j], group->kids[i]->name) == 0)
				break;
		if (known[j] == NULL) {
			const char *best = NULL;
			size_t best_d = (size_t)-1;

			for (j = 0; known[j] != NULL; j++)
				suggest_consider(group->kids[i]->name, known[j],
				                 &best, &best_d);
			unknown_key(c, group->kids[i], best);
			n++;
		}
	}
	return n;
}

/* ---- recording what was parsed ---------------------------------------- */

static size_t
seg_index(const char *seg)
{
	return (size_t)strtoul(seg + 1, NULL, 10);
}

/* The child `seg` of `parent`, created if needed.  Elements ("[n]") are
 * kept in index order and make their parent a list. */
static struct rec *
rec_child(struct rec *parent, const char *seg, size_t len)
{
	struct rec *r;
	size_t i, at, idx;

	for (i = 0; i < parent->nkids; i++)
		if (strncmp(parent->kids[i]->seg, seg, len) == 0 &&
		    parent->kids[i]->seg[len] == '\0')
			return parent->kids[i];
	if (parent->kind == REC_VALUE) {
		free(parent->text);
		parent->text = NULL;
		parent->kind = REC_GROUP;
	}
	r = xcalloc(1, sizeof(*r));
	r->seg = xstrndup(seg, len);
	r->kind = REC_GROUP;
	at = parent->nkids;
	if (seg[0] == '[') {
		parent->kind = REC_LIST;
		idx = seg_index(r->seg);
		for (at = 0; at < parent->nkids; at++)
			if (seg_index(parent->kids[at]->seg) > idx)
				break;
	}
	PUSH(parent->kids, parent->nkids, r);
	memmove(parent->kids + at + 1, parent->kids + at,
	        (parent->nkids - at - 1) * sizeof(*parent->kids));
	parent->kids[at] = r;
	return r;
}

static struct rec *
rec_find(struct conf *c, const char *path)
{
	struct rec *r = &c->top;
	const char *p = path, *dot;

	while (*p != '\0') {
		dot = strchrnul(p, '.');
		r = rec_child(r, p, (size_t)(dot - p));
		p = *dot != '\0' ? dot + 1 : dot;
	}
	return r;
}

static void
rec_set_doc(struct rec *r, const char *doc)
{
	if (doc == NULL)
		return;
	free(r->doc);
	r->doc = xstrdup(doc);
}

/* Records a value (`v`, a node of the files or made from a default);
 * takes `text`.  A second recording of the same path replaces the first. */
static void
record_value(struct conf *c, const char *path, const char *doc, char *text,
             const postern_cfg_t *v)
{
	struct rec *r = rec_find(c, path);

	rec_clear(r);
	r->kind = REC_VALUE;
	r->text = text;
	r->dflt = v->deftext != NULL;
	r->raw = NULL;
	rec_set_doc(r, doc);
}

/* A key with neither a value nor a default: `posternd -n -a` shows it as
 * a comment, so that every key is documented. */
static void
record_unset(struct conf *c, const char *path, const char *doc)
{
	struct rec *r = rec_find(c, path);

	rec_clear(r);
	r->kind = REC_VALUE;
	r->text = NULL;
	r->dflt = 1;
	r->raw = NULL;
	rec_set_doc(r, doc);
}

static void
record_container(struct conf *c, const char *path, enum rec_kind kind,
                 const char *doc, postern_cfg_t *raw)
{
	struct rec *r;

	if (*path == '\0')
		return;
	r = rec_find(c, path);
	free(r->text);
	r->text = NULL;
	r->kind = kind;
	r->raw = raw;
	rec_set_doc(r, doc);
}

/* ---- printing values -------------------------------------------------- */

static char *
fmt_int(long long n)
{
	/* libconfig 1.5 silently truncates a plain integer beyond 32 bits;
	 * the L suffix makes it read back as a 64-bit one. */
	if (n < INT_MIN || n > INT_MAX)
		return xasprintf("%lldL", n);
	return xasprintf("%lld", n);
}

/* A size with the largest exact K/M/G suffix, or NULL if none fits. */
static char *
fmt_size_unit(long long n)
{
	static const char units[] = "GMK";
	static const long long mult[] = { 1LL << 30, 1LL << 20, 1LL << 10 };
	int i;

	for (i = 0; i < 3 && n != 0; i++)
		if (n % mult[i] == 0)
			return xasprintf("%lld%c", n / mult[i], units[i]);
	return NULL;
}

static char *
fmt_size(long long n)
{
	char *s = fmt_size_unit(n);

	return s != NULL ? s : xasprintf("%lld", n);
}

static char *
fmt_duration(long long ms)
{
	static const char *const units[] = { "d", "h", "m", "s" };
	static const long long mult[] = { 86400000, 3600000, 60000, 1000 };
	int i;

	if (ms == 0)
		return xstrdup("0s");
	for (i = 0; i < 4; i++)
		if (ms % mult[i] == 0)
			return xasprintf("%lld%s", ms / mult[i], units[i]);
	return xasprintf("%lldms", ms);
}

static void
put_quoted(FILE *out, const char *s)
{
	const unsigned char *p;

	fputc('"', out);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':  fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		case '\f': fputs("\\f", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\x%02x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

/* A string in libconfig syntax, as a new string. */
static char *
quote(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	put_quoted(f, s);
	fclose(f);
	return buf;
}

static char *
quote_free(char *s)
{
	char *q = quote(s);

	free(s);
	return q;
}

/* ---- parsing values --------------------------------------------------- */

static const char *
type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:  return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:  return "an integer";
	case CONFIG_TYPE_FLOAT:  return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:   return "a boolean";
	case CONFIG_TYPE_ARRAY:  return "an array";
	case CONFIG_TYPE_LIST:   return "a list";
	}
	return "nothing";
}

static int
type_error(struct conf *c, postern_cfg_t *v, const char *expected)
{
	conf_error(c, v, "expected %s, got %s", expected, type_name(v->type));
	return -1;
}

static int
is_integer(const postern_cfg_t *v)
{
	return v->type == CONFIG_TYPE_INT || v->type == CONFIG_TYPE_INT64;
}

/* Reads decimal digits at *p into *n.  0, -1 if there are none, -2 on
 * overflow. */
static int
scan_digits(const char **p, long long *n)
{
	const char *s = *p;

	*n = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (*n > (LLONG_MAX - (*s - '0')) / 10)
			return -2;
		*n = *n * 10 + (*s - '0');
	}
	*p = s;
	return 0;
}

/* "<digits><unit>" with a unit from `units` (matched exactly, in order,
 * so "ms" must come before "m"); the matching multiplier scales it. */
static int
scan_with_unit(const char *s, const char *const *units,
               const long long *mult, long long *out)
{
	long long n;
	int rc, i;

	if ((rc = scan_digits(&s, &n)) != 0)
		return rc;
	for (i = 0; units[i] != NULL; i++)
		if (strcmp(s, units[i]) == 0)
			break;
	if (units[i] == NULL)
		return -1;
	if (n > LLONG_MAX / mult[i])
		return -2;
	*out = n * mult[i];
	return 0;
}

static int
scan_size(const char *s, long long *out)
{
	static const char *const units[] = {
		"", "K", "k", "M", "m", "G", "g", NULL
	};
	static const long long mult[] = {
		1, 1LL << 10, 1LL << 10, 1LL << 20, 1LL << 20, 1LL << 30,
		1LL << 30
	};

	return scan_with_unit(s, units, mult, out);
}

static int
scan_duration(const char *s, long long *out)
{
	/* A bare number is seconds, as an integer value is. */
	static const char *const units[] = {
		"ms", "s", "m", "h", "d", "", NULL
	};
	static const long long mult[] = {
		1, 1000, 60000, 3600000, 86400000, 1000
	};

	return scan_with_unit(s, units, mult, out);
}

static int
check_range(struct conf *c, postern_cfg_t *v, const struct postern_cfg_key *k,
            long long n, char *(*fmt)(long long))
{
	char *vs, *lo, *hi;

	if (k->min >= k->max || (n >= k->min && n <= k->max))
		return 0;
	vs = fmt(n);
	lo = fmt(k->min);
	hi = fmt(k->max);
	conf_error(c, v, "value %s out of range %s..%s", vs, lo, hi);
	free(vs);
	free(lo);
	free(hi);
	return -1;
}

static char *
fmt_plain(long long n)
{
	return xasprintf("%lld", n);
}

static int
value_int(struct conf *c, const struct postern_cfg_key *k, postern_cfg_t *v,
          long long *n, char **text)
{
	if (!is_integer(v))
		return type_error(c, v, "an integer");
	*n = v->v.i;
	if (check_range(c, v, k, *n, fmt_plain) != 0)
		return -1;
	*text = fmt_int(*n);
	return 0;
}

static int
value_size(struct conf *c, const struct postern_cfg_key *k, postern_cfg_t *v,
           long long *n, char **text)
{
	int rc;

	if (is_integer(v)) {
		*n = v->v.i;
		if (*n < 0) {
			conf_error(c, v, "bad size %lld: negative", *n);
			return -1;
		}
	} else if (v->type == CONFIG_TYPE_STRING) {
		if ((rc = scan_size(v->v.s, n)) != 0) {
			conf_error(c, v, rc == -2 ? "bad size '%s': too large" :
			    "bad size '%s': expected a number with an "
			    "optional K, M or G suffix", v->v.s);
			return -1;
		}
	} else {
		return type_error(c, v, "a size (an integer or a string "
		                  "like \"25M\")");
	}
	if (check_range(c, v, k, *n, fmt_size) != 0)
		return -1;
	*text = fmt_size_unit(*n);
	*text = *text != NULL ? quote_free(*text) : fmt_int(*n);
	return 0;
}

static int
value_duration(struct conf *c, const struct postern_cfg_key *k,
               postern_cfg_t *v, long long *n, char **text)
{
	int rc;

	if (is_integer(v)) {
		if (v->v.i < 0 || v->v.i > LLONG_MAX / 1000) {
			conf_error(c, v, "bad duration %lld: %s", v->v.i,
			           v->v.i < 0 ? "negative" : "too large");
			return -1;
		}
		*n = v->v.i * 1000;
	} else if (v->type == CONFIG_TYPE_STRING) {
		if ((rc = scan_duration(v->v.s, n)) != 0) {
			conf_error(c, v, rc == -2 ?
			    "bad duration '%s': too large" :
			    "bad duration '%s': expected a number with a "
			    "unit: ms, s, m, h or d", v->v.s);
			return -1;
		}
	} else {
		return type_error(c, v, "a duration (seconds, or a string "
		                  "like \"30s\")");
	}
	if (check_range(c, v, k, *n, fmt_duration) != 0)
		return -1;
	*text = quote_free(fmt_duration(*n));
	return 0;
}

/* INT, SIZE and DURATION: a long long. */
static int
parse_number(struct parse *p, const struct postern_cfg_key *k,
             postern_cfg_t *v, const char *path, void *field)
{
	long long n = 0;
	char *text = NULL;
	int rc;

	if (v == NULL) {
		memcpy(field, &n, sizeof(n));
		return 0;
	}
	if (k->type == POSTERN_CFG_INT)
		rc = value_int(p->c, k, v, &n, &text);
	else if (k->type == POSTERN_CFG_SIZE)
		rc = value_size(p->c, k, v, &n, &text);
	else
		rc = value_duration(p->c, k, v, &n, &text);
	if (rc != 0)
		return -1;
	memcpy(field, &n, sizeof(n));
	record_value(p->c, path, k->doc, text, v);
	return 0;
}

static int
parse_bool(struct parse *p, const struct postern_cfg_key *k,
           postern_cfg_t *v, const char *path, void *field)
{
	int b = 0;

	if (v != NULL) {
		if (v->type != CONFIG_TYPE_BOOL)
			return type_error(p->c, v, "a boolean");
		b = v->v.b != 0;
		record_value(p->c, path, k->doc, xstrdup(b ? "true" : "false"),
		             v);
	}
	memcpy(field, &b, sizeof(b));
	return 0;
}

static int
parse_string(struct parse *p, const struct postern_cfg_key *k,
             postern_cfg_t *v, const char *path, void *field)
{
	const char *s = NULL;

	if (v != NULL) {
		if (v->type != CONFIG_TYPE_STRING)
			return type_error(p->c, v, "a string");
		s = v->v.s;
		record_value(p->c, path, k->doc, quote(s), v);
	}
	memcpy(field, &s, sizeof(s));
	return 0;
}

static void
enum_error(struct conf *c, postern_cfg_t *v, const char *const *choices)
{
	char list[1024];
	size_t len = 0, i;

	list[0] = '\0';
	for (i = 0; choices[i] != NULL && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len,
		                        "%s%s", i > 0 ? ", " : "", choices[i]);
	conf_error(c, v, "'%s' is not one of: %s", v->v.s, list);
}

static int
parse_enum(struct parse *p, const struct postern_cfg_key *k,
           postern_cfg_t *v, const char *path, void *field)
{
	int idx = 0;

	if (v != NULL) {
		if (v->type != CONFIG_TYPE_STRING)
			return type_error(p->c, v, "a string");
		while (k->choices[idx] != NULL &&
		       strcmp(k->choices[idx], v->v.s) != 0)
			idx++;
		if (k->choices[idx] == NULL) {
			enum_error(p->c, v, k->choices);
			return -1;
		}
		record_value(p->c, path, k->doc, quote(v->v.s), v);
	}
	memcpy(field, &idx, sizeof(idx));
	return 0;
}

static char *
strlist_text(const postern_cfg_t *v)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	fputc('[', f);
	for (i = 0; i < v->nkids; i++) {
		fputs(i > 0 ? ", " : " ", f);
		put_quoted(f, v->kids[i]->v.s);
	}
	fputs(" ]", f);
	fclose(f);
	return buf;
}

static int
parse_strlist(struct parse *p, const struct postern_cfg_key *k,
              postern_cfg_t *v, const char *path, void *field)
{
	struct postern_strlist sl = { 0, NULL };
	size_t i;
	int rc = 0;

	if (v != NULL) {
		if (v->type != CONFIG_TYPE_ARRAY && v->type != CONFIG_TYPE_LIST)
			return type_error(p->c, v, "a list of strings");
		for (i = 0; i < v->nkids; i++)
			if (v->kids[i]->type != CONFIG_TYPE_STRING)
				rc = type_error(p->c, v->kids[i], "a string");
		if (rc != 0)
			return -1;
		if (v->strv == NULL) {
			v->strv = xcalloc(v->nkids + 1, sizeof(*v->strv));
			for (i = 0; i < v->nkids; i++)
				v->strv[i] = v->kids[i]->v.s;
		}
		sl.count = v->nkids;
		sl.items = v->strv;
		record_value(p->c, path, k->doc, strlist_text(v), v);
	}
	memcpy(field, &sl, sizeof(sl));
	return 0;
}

static int
parse_subgroup(struct parse *p, const struct postern_cfg_key *k,
               postern_cfg_t *v, postern_cfg_t *anchor, const char *path,
               void *field)
{
	if (v != NULL && v->type != CONFIG_TYPE_GROUP)
		return type_error(p->c, v, "a group");
	if (k->schema == NULL) {
		memcpy(field, &v, sizeof(v));
		if (v != NULL)
			record_container(p->c, path, REC_GROUP, k->doc, v);
		return 0;
	}
	record_container(p->c, path, REC_GROUP, k->doc, v);
	return parse_group(p, v, v != NULL ? v : anchor, path, k->schema,
	                   field, 0);
}

static size_t schema_size(const struct postern_cfg_key *, size_t);

/* Checks every element of a list against the element schema.  What the
 * elements parse into is thrown away: the module gets the list node and
 * parses each element itself. */
static int
check_elements(struct parse *p, const struct postern_cfg_key *k,
               postern_cfg_t *list)
{
	size_t i, size = schema_size(k->schema, p->key_size);
	int rc = 0;

	for (i = 0; i < list->nkids; i++) {
		postern_cfg_t *e = list->kids[i];
		void *scratch;

		if (e->type != CONFIG_TYPE_GROUP) {
			rc = type_error(p->c, e, "a group");
			continue;
		}
		record_container(p->c, e->path, REC_GROUP, NULL, e);
		scratch = xcalloc(1, size);
		if (parse_group(p, e, e, e->path, k->schema, scratch, 0) != 0)
			rc = -1;
		free(scratch);
	}
	return rc;
}

static int
parse_list(struct parse *p, const struct postern_cfg_key *k,
           postern_cfg_t *v, const char *path, void *field)
{
	if (v != NULL && v->type != CONFIG_TYPE_LIST &&
	    v->type != CONFIG_TYPE_ARRAY)
		return type_error(p->c, v, "a list");
	memcpy(field, &v, sizeof(v));
	if (v == NULL)
		return 0;
	record_container(p->c, path, REC_LIST, k->doc, v);
	if (k->schema == NULL)
		return 0;
	return check_elements(p, k, v);
}

static int
parse_value(struct parse *p, const struct postern_cfg_key *k,
            postern_cfg_t *v, postern_cfg_t *anchor, const char *path,
            void *field)
{
	switch (k->type) {
	case POSTERN_CFG_BOOL:
		return parse_bool(p, k, v, path, field);
	case POSTERN_CFG_INT:
	case POSTERN_CFG_SIZE:
	case POSTERN_CFG_DURATION:
		return parse_number(p, k, v, path, field);
	case POSTERN_CFG_STRING:
		return parse_string(p, k, v, path, field);
	case POSTERN_CFG_ENUM:
		if (k->choices != NULL)
			return parse_enum(p, k, v, path, field);
		path_error(p->c, v != NULL ? v : anchor, path,
		           "schema error: an enum without choices");
		return -1;
	case POSTERN_CFG_STRLIST:
		return parse_strlist(p, k, v, path, field);
	case POSTERN_CFG_GROUP:
		return parse_subgroup(p, k, v, anchor, path, field);
	case POSTERN_CFG_LIST:
		return parse_list(p, k, v, path, field);
	}
	path_error(p->c, v != NULL ? v : anchor, path,
	           "schema error: unknown type %d", (int)k->type);
	return -1;
}

/* ---- schemas ---------------------------------------------------------- */

/* Entry `i` of a schema laid out with stride `key_size`; fields past the
 * builder's struct read as zero.  0 at the end of the schema. */
static int
key_at(const struct postern_cfg_key *schema, size_t key_size, size_t i,
       struct postern_cfg_key *k)
{
	memset(k, 0, sizeof(*k));
	if (schema == NULL)
		return 0;
	memcpy(k, (const char *)schema + i * key_size,
	       key_size < sizeof(*k) ? key_size : sizeof(*k));
	return k->name != NULL;
}

static size_t
field_size(const struct postern_cfg_key *k, size_t key_size)
{
	switch (k->type) {
	case POSTERN_CFG_BOOL:
	case POSTERN_CFG_ENUM:
		return sizeof(int);
	case POSTERN_CFG_INT:
	case POSTERN_CFG_SIZE:
	case POSTERN_CFG_DURATION:
		return sizeof(long long);
	case POSTERN_CFG_STRING:
		return sizeof(const char *);
	case POSTERN_CFG_STRLIST:
		return sizeof(struct postern_strlist);
	case POSTERN_CFG_GROUP:
		if (k->schema != NULL)
			return schema_size(k->schema, key_size);
		return sizeof(postern_cfg_t *);
	case POSTERN_CFG_LIST:
		return sizeof(postern_cfg_t *);
	}
	return 0;
}

/* The size of a struct that a schema's offsets fit in. */
static size_t
schema_size(const struct postern_cfg_key *schema, size_t key_size)
{
	struct postern_cfg_key k;
	size_t i, size = 1;

	for (i = 0; key_at(schema, key_size, i, &k); i++)
		if (k.offset + field_size(&k, key_size) > size)
			size = k.offset + field_size(&k, key_size);
	return size;
}

static int
schema_has(const struct postern_cfg_key *schema, size_t key_size,
           const char *name)
{
	struct postern_cfg_key k;
	size_t i;

	for (i = 0; key_at(schema, key_size, i, &k); i++)
		if (strcmp(k.name, name) == 0)
			return 1;
	return 0;
}

/* The schema's key a mistyped `name` most likely meant, or NULL. */
static const char *
schema_closest(const struct postern_cfg_key *schema, size_t key_size,
               const char *name)
{
	struct postern_cfg_key k;
	const char *best = NULL;
	size_t i, best_d = (size_t)-1;

	for (i = 0; key_at(schema, key_size, i, &k); i++)
		suggest_consider(name, k.name, &best, &best_d);
	return best;
}

/* Turns a default into a node standing where the value would be.  Text
 * that libconfig reads as a value is that value (25, true, ["a"]); any
 * other text is a string ("25M", "5m", "hello"); STRING and ENUM defaults
 * are always strings. */
static postern_cfg_t *
default_node(struct parse *p, const struct postern_cfg_key *k,
             const char *path, postern_cfg_t *anchor)
{
	struct conf *c = p->c;
	char *own = xstrdup(k->def), *text;
	config_t *cfg = NULL;
	postern_cfg_t *n;

	if (k->type != POSTERN_CFG_STRING && k->type != POSTERN_CFG_ENUM) {
		cfg = xmalloc(sizeof(*cfg));
		config_init(cfg);
		text = xasprintf("v = %s;", own);
		if (!config_read_string(cfg, text) ||
		    config_lookup(cfg, "v") == NULL) {
			config_destroy(cfg);
			free(cfg);
			cfg = NULL;
		}
		free(text);
	}
	if (cfg != NULL) {
		PUSH(c->cfgs, c->ncfgs, cfg);
		n = node_from_setting(config_lookup(cfg, "v"), xstrdup(path),
		                      c->file, own);
	} else {
		n = xcalloc(1, sizeof(*n));
		n->type = CONFIG_TYPE_STRING;
		n->path = xstrdup(path);
		n->v.s = own;
	}
	n->own = own;
	n->deftext = own;
	n->name = k->name;
	node_locate(n, anchor != NULL ? anchor->file : c->file,
	            anchor != NULL ? anchor->line : 0);
	PUSH(c->detached, c->ndetached, n);
	return n;
}

static int
parse_key(struct parse *p, postern_cfg_t *group, postern_cfg_t *anchor,
          const char *gpath, const struct postern_cfg_key *k, void *out)
{
	char *path = path_join(gpath, k->name, 0);
	postern_cfg_t *v = node_member(group, k->name);
	int rc;

	if (v == NULL && (k->flags & POSTERN_CFG_REQUIRED)) {
		path_error(p->c, anchor, path, "required key missing");
		free(path);
		return -1;
	}
	if (v == NULL && k->def != NULL)
		v = default_node(p, k, path, anchor);
	if (v == NULL && k->type != POSTERN_CFG_GROUP &&
	    k->type != POSTERN_CFG_LIST)
		record_unset(p->c, path, k->doc);
	rc = parse_value(p, k, v, anchor, path, (char *)out + k->offset);
	if (rc == 0 && k->validate != NULL && v != NULL) {
		char err[256] = "";

		if (k->validate((char *)out + k->offset, err, sizeof(err)) !=
		    0) {
			path_error(p->c, v != NULL && v->line > 0 ? v : anchor,
			           path, "%s", err[0] != '\0' ? err
			                                     : "not a valid value");
			rc = -1;
		}
	}
	free(path);
	return rc;
}

/* `node` is the group (NULL when absent); `anchor` the nearest node that
 * exists, where a missing key is reported. */
static int
parse_group(struct parse *p, postern_cfg_t *node, postern_cfg_t *anchor,
            const char *path, const struct postern_cfg_key *schema,
            void *out, unsigned flags)
{
	struct postern_cfg_key k;
	size_t i;
	int rc = 0;

	if (node != NULL && node->type != CONFIG_TYPE_GROUP)
		return type_error(p->c, node, "a group");
	for (i = 0; node != NULL && !(flags & CONF_ALLOW_UNKNOWN) &&
	     i < node->nkids; i++)
		if (!schema_has(schema, p->key_size, node->kids[i]->name)) {
			unknown_key(p->c, node->kids[i],
			            schema_closest(schema, p->key_size,
			                           node->kids[i]->name));
			rc = -1;
		}
	for (i = 0; key_at(schema, p->key_size, i, &k); i++)
		if (parse_key(p, node, anchor, path, &k, out) != 0)
			rc = -1;
	return rc;
}

int
conf_parse(struct conf *c, postern_cfg_t *node, const char *absent_path,
           const struct postern_cfg_key *schema, size_t key_size, void *out,
           unsigned flags)
{
	struct parse p = { c, key_size };
	const char *path = node != NULL ? node->path :
	                   absent_path != NULL ? absent_path : "";
	size_t min = offsetof(struct postern_cfg_key, flags);

	if (key_size < min) {
		path_error(c, node, path, "schema entries are %zu bytes, "
		           "fewer than the %zu every SDK has", key_size, min);
		return -1;
	}
	if (node == NULL || node->type == CONFIG_TYPE_GROUP)
		record_container(c, path, REC_GROUP, NULL, node);
	return parse_group(&p, node, node, path, schema, out, flags);
}

/* ---- printing --------------------------------------------------------- */

static void
indent(FILE *out, int depth)
{
	while (depth-- > 0)
		fputc('\t', out);
}

static void
print_float(FILE *out, double f)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.17g", f);
	/* Without a point or exponent libconfig would read an integer. */
	if (strpbrk(buf, ".eEn") == NULL)
		strcat(buf, ".0");
	fputs(buf, out);
}

static void print_raw(FILE *, const postern_cfg_t *, int);

static void
print_raw_kids(FILE *out, const postern_cfg_t *n, int depth)
{
	size_t i;

	for (i = 0; i < n->nkids; i++) {
		indent(out, depth + 1);
		if (n->type == CONFIG_TYPE_GROUP)
			fprintf(out, "%s = ", n->kids[i]->name);
		print_raw(out, n->kids[i], depth + 1);
		if (n->type == CONFIG_TYPE_GROUP)
			fputs(";\n", out);
		else
			fputs(i + 1 < n->nkids ? ",\n" : "\n", out);
	}
	indent(out, depth);
}

/* A node as it was read: for containers no schema described. */
static void
print_raw(FILE *out, const postern_cfg_t *n, int depth)
{
	size_t i;
	char *s;

	switch (n->type) {
	case CONFIG_TYPE_GROUP:
		fputs("{\n", out);
		print_raw_kids(out, n, depth);
		fputc('}', out);
		break;
	case CONFIG_TYPE_LIST:
		fputs("(\n", out);
		print_raw_kids(out, n, depth);
		fputc(')', out);
		break;
	case CONFIG_TYPE_ARRAY:
		/* Scalars only: one line, as a strlist prints. */
		fputc('[', out);
		for (i = 0; i < n->nkids; i++) {
			fputs(i > 0 ? ", " : " ", out);
			print_raw(out, n->kids[i], depth);
		}
		fputs(" ]", out);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		s = fmt_int(n->v.i);
		fputs(s, out);
		free(s);
		break;
	case CONFIG_TYPE_FLOAT:
		print_float(out, n->v.f);
		break;
	case CONFIG_TYPE_BOOL:
		fputs(n->v.b ? "true" : "false", out);
		break;
	case CONFIG_TYPE_STRING:
		put_quoted(out, n->v.s);
		break;
	}
}

static void print_rec_kids(FILE *, const struct rec *, int,
                           const struct print_how *);

/* Nothing under `r` differs from the schema's defaults (`posternd -n`
 * leaves it out).  What a file wrote as a whole list or an undescribed
 * container is never a default. */
static int
rec_is_default(const struct rec *r)
{
	size_t i;

	if (r->kind == REC_VALUE)
		return r->dflt;
	if (r->kind == REC_LIST || r->raw != NULL || r->nkids == 0)
		return 0;
	for (i = 0; i < r->nkids; i++)
		if (!rec_is_default(r->kids[i]))
			return 0;
	return 1;
}

static void
print_rec_value(FILE *out, const struct rec *r, int depth,
                const struct print_how *how)
{
	if (r->kind == REC_VALUE) {
		fputs(r->text, out);
	} else if (r->nkids == 0 && r->raw != NULL) {
		print_raw(out, r->raw, depth);
	} else {
		fputs(r->kind == REC_LIST ? "(\n" : "{\n", out);
		print_rec_kids(out, r, depth + 1, how);
		indent(out, depth);
		fputc(r->kind == REC_LIST ? ')' : '}', out);
	}
}

/* The members of a group (named, ending in ';') or the elements of a
 * list (unnamed, separated by ','). */
static void
print_rec_kids(FILE *out, const struct rec *r, int depth,
               const struct print_how *how)
{
	int in_list = r->kind == REC_LIST;
	size_t i;

	for (i = 0; i < r->nkids; i++) {
		const struct rec *k = r->kids[i];

		if (!in_list && !how->all && rec_is_default(k))
			continue;
		if (how->docs && k->doc != NULL) {
			indent(out, depth);
			fprintf(out, "# %s\n", k->doc);
		}
		indent(out, depth);
		if (k->kind == REC_VALUE && k->text == NULL) {
			fprintf(out, "# %s: not set\n", k->seg);
			continue;
		}
		if (!in_list)
			fprintf(out, "%s = ", k->seg);
		print_rec_value(out, k, depth, how);
		if (!in_list)
			fputs(";\n", out);
		else
			fputs(i + 1 < r->nkids ? ",\n" : "\n", out);
	}
}

void
conf_print_effective(struct conf *c, FILE *out, int with_docs, int all)
{
	struct print_how how = { .docs = with_docs, .all = all };

	print_rec_kids(out, &c->top, 0, &how);
}
