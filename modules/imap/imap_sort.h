/*
 * imap_sort.h - SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM and
 * DISPLAYTO): the sort keys of a message and the threading algorithms.
 *
 * imap_sortkey.c makes the keys from the header fields (the MIME
 * parser's envelope, RFC 2047 decoding and address parsing of the host);
 * imap_thread.c threads an array of messages; imap_sort.c has the
 * commands.  The key and thread functions are memory-only (any thread);
 * strings come from the pool given.
 */
#ifndef IMAP_SORT_H
#define IMAP_SORT_H

#include "imap.h"

/* Sort and thread keys are cut at this many octets: two subjects equal
 * in their first 256 octets sort as equal (then by sequence number). */
#define IMAP_SORT_KEY_MAX 256
/* A message's References past this many are ignored (the last ones,
 * nearest the message, are kept). */
#define IMAP_SORT_MAX_REFS 64
/* ... and past this many octets of them in all. */
#define IMAP_SORT_REFS_OCTETS 2048

/* Which keys a command needs beyond the index's (and which a cached
 * entry holds). */
#define IMAP_SORT_FIELDS 0x1u  /* date, subject, addresses */
#define IMAP_SORT_REFS 0x2u    /* Message-ID and References */

/* What SORT and THREAD compare of one message. */
struct imap_sort_msg {
	uint32_t seq, uid;
	int64_t date;          /* sent date (RFC 5256 2.2) */
	int64_t arrival;       /* INTERNALDATE */
	uint64_t size;
	const char *subject;   /* base subject (2.1), ASCII upper-cased */
	int is_reply;          /* the subject was a reply or forward */
	const char *from, *to, *cc;   /* first address's mailbox, upper */
	const char *dfrom, *dto;      /* display names (RFC 5957), upper */
	const char *msgid;            /* "<id>", or NULL */
	const char **refs;            /* parents, oldest first */
	size_t nrefs;
	uint32_t rank;         /* SORT by rank: its place in the last
	                          result made from keys (imap_sortcache) */
};

/* The base subject of RFC 5256 2.1 of the raw Subject field value (NULL:
 * no field, ""), with RFC 2047 words decoded and ASCII letters
 * upper-cased for i;ascii-casemap.  *is_reply is set when a reply or
 * forward marker was removed.  NULL when the pool is short. */
char *imap_sort_base_subject(const char *raw, int *is_reply,
                             postern_pool_t *pool);

/* FROM / TO / CC (display 0): the mailbox (local part) of the first
 * address of the raw field value; DISPLAYFROM / DISPLAYTO (display 1,
 * RFC 5957 3): its decoded display name, else "mailbox@host".
 * Upper-cased; "" when there is no address. */
char *imap_sort_address(const char *raw, int display, postern_pool_t *pool);

/* The sent date: the Date field's time, or `internal` when it is
 * missing or not a date (RFC 5256 2.2). */
int64_t imap_sort_sent_date(const char *raw, int64_t internal);

/* The message IDs "<...>" of a field value (References, In-Reply-To,
 * Message-ID), at most `max` and IMAP_SORT_REFS_OCTETS in all (the last
 * ones when there are more); each from the pool.  Returns their
 * number. */
size_t imap_sort_msgids(const char *raw, const char **out, size_t max,
                        postern_pool_t *pool);


/* THREAD: the threads of the untagged response, after "* THREAD ",
 * e.g. "(1 2)(3 (4)(5))", into out, numbers being UIDs when by_uid.
 * Returns 0, or -1 when memory is short. */
enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};
int imap_thread(struct imap_buf *out, const struct imap_sort_msg *msgs,
                size_t n, enum imap_thread_alg alg, int by_uid);
/* What imap_thread allocates for them at most (octets). */
size_t imap_thread_memory(const struct imap_sort_msg *msgs, size_t n);

/* The keys of messages, kept per worker process for every session of
 * the user (imap_sortcache.c): a mailbox is known by user and
 * UIDVALIDITY, a message by UID, size and INTERNALDATE (a message
 * another mailbox of the user numbers alike would have to match all
 * three).  At most imap.sort_cache octets (0: nothing is kept); the
 * mailbox used least recently goes first.  Thread-safe (job threads). */

/* 1 with *m filled (strings from pool, their size added to *bytes)
 * when message mi's keys are kept with every bit of `need`; 0 when
 * not. */
int imap_sortcache_get(const char *user, uint32_t uidvalidity,
                       const struct postern_message_info *mi,
                       unsigned need, struct imap_sort_msg *m,
                       postern_pool_t *pool, size_t *bytes);
/* Keeps m's keys (`have`: IMAP_SORT_* bits they hold), replacing what
 * was kept for its UID. */
void imap_sortcache_put(const char *user, uint32_t uidvalidity,
                        const struct imap_sort_msg *m, unsigned have);
/*
 * Ranks: a SORT whose keys were all made or copied keeps, with each
 * message's keys, its place in the result (`sig` names the criteria,
 * at most IMAP_SORT_SIG_MAX octets).  The keys of a UID never change,
 * and the last tie-break (the sequence number) orders any two messages
 * as their UIDs do in every view, so the same criteria order any
 * subset of those messages as their ranks do: a repeated SORT (webmail
 * sorting the same mailbox for every page) sorts ranks, not strings.
 * The criteria a mailbox was last sorted by (a few) have ranks.
 */
#define IMAP_SORT_SIG_MAX 32
/* 1 with *rank when message mi has one under `sig` of generation
 * *gen (0: any, then set): ranks of one generation are comparable; a
 * SORT that ran in steps may meet a newer one.  0 when not. */
int imap_sortcache_rank(const char *user, uint32_t uidvalidity,
                        const struct postern_message_info *mi,
                        const unsigned char *sig, size_t siglen,
                        uint32_t *gen, uint32_t *rank);
/* The messages uids[0..n), in sort order under `sig`, get ranks 0..n-1
 * (those whose keys are not kept get none); every earlier rank under
 * `sig` is forgotten, and those of the criteria used least recently
 * when there is no room. */
void imap_sortcache_set_ranks(const char *user, uint32_t uidvalidity,
                              const unsigned char *sig, size_t siglen,
                              const uint32_t *uids, size_t n);
/* After a command over a view of `count` messages: a mailbox whose
 * entries are mostly of expunged messages is forgotten. */
void imap_sortcache_trim(const char *user, uint32_t uidvalidity,
                         uint32_t count);
/* Frees everything (the worker's end). */
void imap_sortcache_free(void);

/* A SORT kept updated (RFC 5267 4.3, CONTEXT=SORT; imap_sort.c): its
 * result in sort order with each message's keys, held by the search
 * kept updated (imap_context.c).  Job threads, the session's job. */
struct imap_sort_live;
void imap_sort_live_free(struct imap_sort_live *l);
/* Takes the messages of `uids` (ascending, n) out of the result, in
 * one pass; for each that was there, in sort order, its 1-based
 * position as it leaves (after those before it left) into pos[] and
 * its UID into out[].  Returns how many left. */
size_t imap_sort_live_remove(struct imap_sort_live *l, const uint32_t *uids,
                             size_t n, uint32_t *pos, uint32_t *out);
/* Makes the keys of the view's messages `uids` (n) and puts them in
 * their places; for each, in sort order, its 1-based position as it
 * enters (after those before it entered) into pos[] and its UID into
 * out[].  0, or -1 with *err set (unreadable, out of memory, the keys
 * kept past sort_memory): the result is then as it was.  *cost grows
 * by what was read.  `scratch` is cleared for each message. */
int imap_sort_live_add(struct imap_session *s, struct imap_sort_live *l,
                       const uint32_t *uids, size_t n,
                       postern_pool_t *scratch, uint64_t *cost,
                       uint32_t *pos, uint32_t *out,
                       struct postern_storage_err *err);

#endif /* IMAP_SORT_H */
