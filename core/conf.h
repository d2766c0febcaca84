/*
 * conf.h - loading, merging and checking the configuration.
 *
 * The main file is read first, then every `*.conf` in the `conf.d`
 * directory beside it, in strcmp order of file names.  Files are merged
 * into one tree: a later file's scalar, array or list replaces an earlier
 * one's; groups merge key by key.  Every node remembers the file and line
 * it came from, so every error names `FILE:LINE`.
 *
 * Nodes are `postern_cfg_t` (postern/config.h), owned by the struct conf
 * and valid until conf_free.  Everything parsed through a schema is also
 * recorded, defaults included, for conf_print_effective (`posternd -n`).
 */
#ifndef CORE_CONF_H
#define CORE_CONF_H

#include <stdio.h>

#include <postern/config.h>

struct conf;

/* Loads `path` and its conf.d.  NULL after logging every syntax error as
 * `FILE:LINE: message`. */
struct conf *conf_load(const char *path);
/* Loads configuration text (tests, embedded defaults); `name` stands for
 * the file name in messages.  No conf.d. */
struct conf *conf_load_string(const char *text, const char *name);
void conf_free(struct conf *c);

/* The root group. */
postern_cfg_t *conf_root(struct conf *c);
/* The main file's path and directory (as given; never NULL). */
const char *conf_file(struct conf *c);
const char *conf_dir(struct conf *c);

/* A node below `node` by path ("tls.cert", "listen.[1].port"), or NULL.
 * "" is `node` itself.  A NULL `node` gives NULL, so lookups chain through
 * absent groups; to start at the root pass conf_root() (the host's
 * cfg_lookup, where NULL means the root, does that with its conf). */
postern_cfg_t *conf_lookup(postern_cfg_t *node, const char *path);
/* Members of a group, elements of a list or array; 0 for a scalar or
 * NULL.  conf_elem is NULL past the end. */
size_t conf_count(postern_cfg_t *node);
postern_cfg_t *conf_elem(postern_cfg_t *node, size_t i);
/* "smtp.listen.[1].port"; "" for the root. */
const char *conf_path(postern_cfg_t *node);
/* The name of a group member ("port"), NULL for list elements. */
const char *conf_name(postern_cfg_t *node);
/* Source of the node: file name and line (0 when unknown, e.g. the
 * root).  NULL and 0 for a NULL node. */
const char *conf_source_file(postern_cfg_t *node);
unsigned conf_source_line(postern_cfg_t *node);

/* conf_parse flags. */
#define CONF_ALLOW_UNKNOWN 0x1u /* keys not in the schema are not errors;
                                   for `node` itself only, nested groups
                                   parsed by the schema stay strict */

/*
 * Parses `node` (NULL: absent, only defaults apply; `absent_path` then
 * names where it would be, e.g. "smtp") against `schema` into `out`.
 * `key_size` is sizeof(struct postern_cfg_key) as the schema's builder saw
 * it: the schema's stride; fields past it read as zero, and a key_size
 * below offsetof(struct postern_cfg_key, flags) is an error.  Reports
 * every problem through conf_error and returns -1 if there was any;
 * records parsed values for conf_print_effective (a path recorded again
 * replaces the earlier recording).
 *
 * A key that is absent is reported, if required, at the line of the
 * enclosing group (just the main file's name when that is absent too).
 * Otherwise its `def` is parsed like a value: STRING and ENUM defaults are
 * taken as text; any other default is read as a libconfig value when it
 * is one (`25`, `true`, `["a", "b"]`, `( { port = 25; } )`) and as a
 * string otherwise (`25M`, `5m`).  A bad default is reported under the
 * key's path as "bad default '...': reason".  Absent with no default, the
 * field is set to zero/NULL.
 *
 * STRING values and STRLIST items point into memory owned by `c` and stay
 * valid until conf_free.  A LIST with a schema has every element checked
 * (into a scratch struct that is thrown away); the module still parses
 * each element itself.
 */
int conf_parse(struct conf *c, postern_cfg_t *node, const char *absent_path,
               const struct postern_cfg_key *schema, size_t key_size,
               void *out, unsigned flags);

/* Reports `FILE:LINE: key 'path': message` (node may be NULL: then just
 * `FILE: message` with the main file), and counts an error. */
void conf_error(struct conf *c, postern_cfg_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void conf_verror(struct conf *c, postern_cfg_t *node, const char *fmt,
                 va_list ap);
/* Errors reported so far. */
unsigned conf_errors(struct conf *c);

/* Reports every member of `group` whose name is not in `known` (NULL
 * terminated) as an unknown key.  Returns the number reported. */
unsigned conf_check_known(struct conf *c, postern_cfg_t *group,
                          const char *const *known);

/* Prints, in libconfig syntax, every value recorded by conf_parse (so
 * defaults included), grouped as in the file, one key per line; the
 * output reads back with conf_load_string.  Sizes and durations print in
 * the largest exact unit ("25M", "5m").  A group or list stored as a node
 * (no schema) that nothing parsed further prints as it was read.  With
 * `with_docs`, each key's doc line precedes it as a comment. */
void conf_print_effective(struct conf *c, FILE *out, int with_docs,
                          int all);

#endif /* CORE_CONF_H */
