/*
 * filter_test.h - postern-filter-test: a filter module run on a scripted
 * SMTP session, without a daemon (see postern-filter-test.c for the
 * script language).
 *
 * The program links the core, and stands in for the smtp module with a
 * small built-in module of that name (ft_smtp.c): it defines the smtp.*
 * hook points and publishes the "smtp" service, whose calls it records
 * instead of applying.  The filters under test are loaded by the core's
 * own loader and run on the core's own event loop, DNS resolver and job
 * threads, so what works here works in posternd.
 */
#ifndef FILTER_TEST_H
#define FILTER_TEST_H

#include <postern/postern.h>
#include <postern/smtp.h>

/* The stand-in smtp module, for loader_set_builtins. */
extern const struct postern_module ft_smtp_module;

/* What one stage's dispatch answered. */
struct ft_result {
	struct postern_verdict v;
	char text[1024];                 /* v.text, copied */
	char enhanced[16];               /* v.enhanced, copied */
};

/* The session and its transaction, as the handlers see them. */
struct ft_session {
	struct postern_smtp_session_info info;
	struct postern_smtp_payload payload;
	struct postern_relay_envelope env;
	struct postern_relay_rcpt *rcpts;   /* env.rcpts */
	size_t nrcpts;
	postern_smtp_txn_t *txn;            /* NULL outside a transaction */
};

/* Runs the hook of `stage` on s->payload (its stage is set here) until
 * every handler has answered; *out gets the verdict.  0, or -1 when the
 * hook is not defined. */
int ft_run_stage(struct ft_session *s, enum postern_smtp_stage stage,
                 struct ft_result *out);
/* 1 when some filter registered on the stage's hook. */
int ft_stage_has_handlers(enum postern_smtp_stage stage);

/* A session begins: the filters' session_slot pointers are NULL again. */
void ft_session_begin(void);

/* A transaction begins (MAIL) or ends (RSET, end of message, QUIT). */
postern_smtp_txn_t *ft_txn_begin(void);
void ft_txn_end(postern_smtp_txn_t *t);

/* The changes and refused calls recorded since the last call, one line
 * each ("header_add(top) X-Spam: yes"); NULL-terminated, valid until the
 * next call. */
const char *const *ft_take_edits(void);

#endif /* FILTER_TEST_H */
