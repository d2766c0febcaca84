/*
 * spf.h - what the parts of filter_spf share: client addresses, the
 * macro expander (spf_macro.c) and the asynchronous RFC 7208 evaluator
 * (spf_eval.c) that spf_module.c drives from the SMTP hooks.
 */
#ifndef FILTER_SPF_H
#define FILTER_SPF_H

#include <stddef.h>
#include <stdint.h>

#include <postern/postern.h>

/* The results of check_host() (RFC 7208 section 2.6). */
enum spf_result {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
	SPF_NRESULTS
};

/* A client address; an IPv4-mapped IPv6 address is held as IPv4. */
struct spf_ip {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* 4 or 16 octets used */
};

/* What macros expand from (section 7.2). */
struct spf_macro_ctx {
	const char *sender;     /* s: local-part@domain */
	const char *local;      /* l */
	const char *sender_dom; /* o */
	const char *domain;     /* d: the current domain */
	struct spf_ip ip;       /* i, c, v */
	const char *ptr;        /* p: the validated name, NULL: "unknown" */
	const char *helo;       /* h */
	const char *receiver;   /* r */
	long long now;          /* t */
};

/* Expansion failed: a syntax error, or more than fits in `out`. */
#define SPF_MACRO_SYNTAX (-1)
#define SPF_MACRO_TOOLONG (-2)

/* spf_macro.c */
const char *spf_result_name(enum spf_result r);
int spf_ip_parse(const char *text, struct spf_ip *ip);
int spf_ip_match(const struct spf_ip *ip, const void *net, int family,
                 int prefix);
int spf_macro_expand(const struct spf_macro_ctx *ctx, const char *s,
                     size_t len, int explain, char *out, size_t outlen);
int spf_macro_uses_p(const char *s, size_t len);
int spf_domain_valid(const char *name);
const char *spf_domain_truncate(const char *name);

/* spf_eval.c: one check_host() run on the host's DNS. */
struct spf_eval;

struct spf_request {
	const char *sender;     /* local@domain; postmaster@helo for <> */
	const char *domain;     /* where the check starts */
	const char *helo;       /* NULL: unknown */
	const char *receiver;   /* for %{r} */
	struct spf_ip ip;
};

struct spf_outcome {
	enum spf_result result;
	const char *mechanism;  /* the term that matched, or NULL */
	const char *problem;    /* why for none/temperror/permerror */
	const char *explanation; /* fail: the exp= text, or NULL */
	unsigned queries;       /* DNS lookups made */
};

typedef void (*spf_done_fn)(void *arg, const struct spf_outcome *o);

/* Starts an evaluation.  Returns NULL when it ended without a lookup
 * (the outcome is in *now, valid until the next call); else the
 * evaluation, whose `done` runs once from the loop (never from inside
 * this call), after which the caller frees it with spf_eval_free. */
struct spf_eval *spf_eval_start(const struct postern_host *h,
                                postern_module_t *m,
                                const struct spf_request *req,
                                spf_done_fn done, void *arg,
                                struct spf_outcome *now);
/* Cancels lookups in flight and frees the evaluation; `done` will not
 * be called. */
void spf_eval_free(struct spf_eval *e);

#endif /* FILTER_SPF_H */
