/*
 * auth_penalty.h - failed-login counters per client address and per
 * account, with growing delays, shared by every worker (Dovecot's auth
 * penalty is the model).
 *
 * The table is one fixed-size shared mapping made by the master before
 * it forks the workers, so a client that spreads its guesses over the
 * workers is counted once, and memory is bounded whatever an attacker
 * does: `slots` entries, an entry found in a window of
 * PENALTY_PROBE slots from its hash, and when the window is full the
 * entry whose last failure is oldest gives its place.
 *
 * The delay for n failures (the larger of the address's and the
 * account's count) is init << (n - 1), capped at max, counted from the
 * last failure: 2 s, 4 s, 8 s, 15 s with the defaults.  An entry is
 * forgotten `expire` after its last failure, and at once on a successful
 * login.  The same login name and password failing again does not count
 * again (a phone with a stale password should not climb to the cap), and
 * while an address has failures, such a repeat is answered FAIL without
 * a hash: the tags of the last PENALTY_TAGS wrong name+password pairs
 * are kept per address (keyed 64-bit SipHash, never the password).  Any
 * other password, the right one included, is checked after the delay:
 * the penalty delays, it never locks anyone out.  The tags are believed
 * for PENALTY_TAG_TTL_MS (2 minutes) after the last failure a check
 * confirmed, no longer: a password that failed and has since become the
 * account's password is checked again then (and a client repeating one
 * wrong password costs one hash per 2 minutes).
 *
 * A check the password queue had no room for counts against its address
 * (penalty_refused), so a client hammering a full queue backs off too;
 * and penalty_check says when an address or account has failures on
 * record, which the caller uses to keep part of the queue for the
 * others.
 *
 * IPv6 addresses count by their /64 (one customer's network); IPv4 by the
 * whole address.  Times are CLOCK_MONOTONIC milliseconds, the same in
 * every process.  Any process, any thread.
 */
#ifndef CORE_AUTH_PENALTY_H
#define CORE_AUTH_PENALTY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PENALTY_PROBE 8
#define PENALTY_TAGS 8
#define PENALTY_TAG_TTL_MS 120000

struct auth_penalty;

struct penalty_settings {
	size_t slots;       /* entries in the table (> 0) */
	unsigned init_ms;   /* delay after the first failure */
	unsigned max_ms;    /* cap; 0 turns the penalty off */
	unsigned expire_ms; /* an entry is forgotten this long after its
	                       last failure */
};

/* What one login is counted under; made once per attempt. */
struct penalty_key {
	uint64_t addr;    /* 0: no address (a unix socket, tests) */
	uint64_t account; /* the login name, lower case */
	uint64_t tag;     /* login name and password */
};

/* A new shared table (MAP_SHARED anonymous: children of fork share it),
 * or NULL (logged).  Free with penalty_destroy in the process that made
 * it; a child's mapping goes with its exit. */
struct auth_penalty *penalty_create(const struct penalty_settings *set);
void penalty_destroy(struct auth_penalty *t);

/* Fills *k for a client at `sa` (may be NULL), logging in as `name`
 * with `password` (`len` octets). */
void penalty_key(const struct auth_penalty *t, const struct sockaddr *sa,
                 socklen_t salen, const char *name, const char *password,
                 size_t len, struct penalty_key *k);

/* What the table says of an attempt. */
struct penalty_verdict {
	unsigned wait_ms; /* to wait before checking the password */
	int known_wrong;  /* this very name and password failed lately from
	                     the address or for the account: answer FAIL
	                     after the wait, without a hash */
	int flagged;      /* the address or the account has failures on
	                     record: it may use only part of the queue */
};

void penalty_check(struct auth_penalty *t, const struct penalty_key *k,
                   uint64_t now_ms, struct penalty_verdict *v);
/* Counts a wrong password (or an unknown user), answered at `now_ms`
 * (the delay of the next attempt counts from the answer, which may be
 * ahead of the present). */
void penalty_failed(struct auth_penalty *t, const struct penalty_key *k,
                    uint64_t now_ms);
/* A repeat of a name and password known wrong, answered FAIL without a
 * check at `now_ms`: keeps the wait going, grows nothing, and does not
 * make the tags believed for longer. */
void penalty_repeated(struct auth_penalty *t, const struct penalty_key *k,
                      uint64_t now_ms);
/* A check refused because the password queue had no room for it: counts
 * against the address alone (not the account, and no tag: the password
 * was never checked), so that a client hammering a full queue backs off
 * instead of taking every place that frees. */
void penalty_refused(struct auth_penalty *t, const struct penalty_key *k,
                     uint64_t now_ms);
/* A successful login: forgets the address's and the account's failures. */
void penalty_succeeded(struct auth_penalty *t, const struct penalty_key *k);

/* Entries not expired at `now_ms` (tests, statistics). */
size_t penalty_used(struct auth_penalty *t, uint64_t now_ms);
/* Failures counted for the address and account of `k` (tests). */
void penalty_counts(struct auth_penalty *t, const struct penalty_key *k,
                    uint64_t now_ms, unsigned *addr, unsigned *account);

#endif /* CORE_AUTH_PENALTY_H */
