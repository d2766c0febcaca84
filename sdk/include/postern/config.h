/*
 * postern/config.h - how a module declares and reads its configuration.
 *
 * The configuration is libconfig syntax: the main file, then each
 * conf.d/NAME.conf in lexical order, merged (a later file's scalar
 * replaces an earlier one's; groups merge key by key).  Each module owns
 * the top-level group named after it.  A module describes its keys in a
 * schema, a NULL-terminated array of struct postern_cfg_key, and asks
 * the host to parse a group against it:
 *
 *	struct hello_settings { const char *greeting; long long timeout_ms; };
 *	static const struct postern_cfg_key hello_keys[] = {
 *		{ .name = "greeting", .type = POSTERN_CFG_STRING,
 *		  .offset = offsetof(struct hello_settings, greeting),
 *		  .def = "hello" },
 *		{ .name = "timeout", .type = POSTERN_CFG_DURATION,
 *		  .offset = offsetof(struct hello_settings, timeout_ms),
 *		  .def = "5m", .min = 1000, .max = 3600000 },
 *		{ .name = NULL }
 *	};
 *	...
 *	if (POSTERN_CFG_PARSE(host, self, host->cfg_module(self), hello_keys,
 *	                      &settings) != 0)
 *		return -1;
 *
 * The host reports every problem as `FILE:LINE: key 'group.key': reason`:
 * a key the schema does not know, a wrong type, a value out of range, a
 * required key that is missing.  Values parsed with a schema (defaults
 * included) are what `posternd -n` prints.
 *
 * All memory here (strings, lists, nodes) belongs to the host and stays
 * valid for the life of the process.  A reload (SIGHUP) starts a new
 * process image, so nothing is ever freed under a module.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum postern_cfg_type {
	/* int: 0 or 1.  Accepts libconfig true/false. */
	POSTERN_CFG_BOOL = 1,
	/* long long within [min, max] when min < max. */
	POSTERN_CFG_INT,
	/* long long, bytes: an integer or a string with a K, M or G suffix
	 * (powers of 1024), e.g. "25M".  Bounds as for INT. */
	POSTERN_CFG_SIZE,
	/* long long, milliseconds: an integer (seconds) or a string with a
	 * unit, e.g. "250ms", "30s", "5m", "1h", "2d".  Bounds as for INT. */
	POSTERN_CFG_DURATION,
	/* const char *, NUL-terminated. */
	POSTERN_CFG_STRING,
	/* int: the index into `choices` of the string given. */
	POSTERN_CFG_ENUM,
	/* struct postern_strlist: a list or array of strings. */
	POSTERN_CFG_STRLIST,
	/* With `schema`: the group is parsed into the struct at `offset`
	 * (offsets in `schema` are relative to it); when absent, its defaults
	 * apply.  Without `schema`: a postern_cfg_t * (or NULL when absent) is
	 * stored for the module to parse itself. */
	POSTERN_CFG_GROUP,
	/* A list of groups, e.g. listeners.  Stores the list's postern_cfg_t *
	 * (NULL when absent); parse each element with cfg_parse.  With
	 * `schema`, the host checks every element against it too. */
	POSTERN_CFG_LIST,
};

/* Key flags. */
#define POSTERN_CFG_REQUIRED 0x1u /* no default: absence is an error */

struct postern_cfg_key {
	const char *name;           /* NULL ends the schema */
	enum postern_cfg_type type;
	size_t offset;              /* offsetof() the field in the out struct */
	const char *def;            /* default in the key's own syntax, or NULL:
	                               the field is left zero/NULL */
	long long min, max;         /* INT, SIZE, DURATION bounds (if min<max) */
	const char *const *choices; /* ENUM: NULL-terminated */
	const struct postern_cfg_key *schema; /* GROUP and LIST: nested keys */
	unsigned flags;             /* POSTERN_CFG_REQUIRED */
	const char *doc;            /* one line, shown by `posternd -n -v` */
	/* ABI 1.6: a check of the value beyond its type and bounds (an
	 * address that must parse, a list whose items must be unique).
	 * Called with the field in `out` once it parsed, defaults too;
	 * return 0, or -1 after writing one line to err[errlen], which the
	 * host reports as "FILE:LINE: key 'path': <err>".  May be NULL. */
	int (*validate)(const void *field, char *err, size_t errlen);
};

struct postern_strlist {
	size_t count;
	const char *const *items; /* count entries; host-owned */
};

/*
 * Parses `node` (a group; NULL means "absent", so only defaults apply)
 * against `schema` into `out`.  Use through POSTERN_CFG_PARSE, which passes
 * sizeof(struct postern_cfg_key) so the host can read schemas built with an
 * older SDK.  Returns 0, or -1 after reporting every problem found (not
 * just the first).
 */
#define POSTERN_CFG_PARSE(host, self, node, schema, out)                     \
	((host)->cfg_parse((self), (node), (schema),                         \
	                   sizeof(struct postern_cfg_key), (out)))

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_CONFIG_H */
