/*
 * imap_search.h - the search program of SEARCH, shared with SORT and
 * THREAD (RFC 5256), which take the same keys: parsed once on the loop,
 * evaluated on the command's job in steps, each match handed to the
 * caller.
 */
#ifndef IMAP_SEARCH_H
#define IMAP_SEARCH_H

#include "imap.h"

/* The parsed keys and how far their evaluation went.  Opaque; lives in
 * the command's pool. */
struct imap_search_prog;

/* A charset argument: 0 for UTF-8 and US-ASCII, else -1 with
 * NO [BADCHARSET] sent. */
int imap_search_charset(struct imap_cmd *c, const struct imap_str *cs);

/* Parses the search keys from the scanner to the end of the command.
 * NULL with the reply sent (BAD, or NO [LIMIT] past max_search_keys or
 * max_search_needle). */
struct imap_search_prog *imap_search_parse(struct imap_cmd *c);

/* 1 when a key of the program is MODSEQ. */
int imap_search_uses_modseq(const struct imap_search_prog *p);

/* Called for each message that matches, in sequence order, with the job
 * pool a scratch pool cleared after the message (what must outlive it
 * goes elsewhere).  Adds what it read to *cost (octets) so the step
 * ends in time.  -1 (with j->err set) stops the search. */
typedef int imap_search_hit_fn(struct imap_job *j, void *arg, uint32_t seq,
                               const struct postern_message_info *mi,
                               uint64_t *cost);

/* One step of the evaluation on the job thread: about 8 MiB of message
 * read.  Returns 1 when every message was seen, 0 when another step
 * must follow (run it on a new job with imap_job_next_step), -1 on an
 * error (j->err) or when the client left. */
int imap_search_step(struct imap_job *j, struct imap_search_prog *p,
                     imap_search_hit_fn *hit, void *arg);

/* Evaluates the program for message `seq` of the session's view alone
 * (a search kept updated, imap_context.c): 1 match, 0 not, -1 with
 * *err set.  What it reads comes from `pool`; *cost grows as a search
 * step's does (octets read).  Job threads. */
int imap_search_match(struct imap_session *s, struct imap_search_prog *p,
                      uint32_t seq, postern_pool_t *pool, uint64_t *cost,
                      struct postern_storage_err *err);

/* A copy of the program in `pool`, which outlives the command's (the
 * command's pool is cleared when it ends). */
struct imap_search_prog *imap_search_prog_copy(
	const struct imap_search_prog *p, postern_pool_t *pool);

/* ESEARCH's RETURN options (RFC 4731), ESORT's too (RFC 5267). */
#define IMAP_RET_MIN 0x1u
#define IMAP_RET_MAX 0x2u
#define IMAP_RET_ALL 0x4u
#define IMAP_RET_COUNT 0x8u
#define IMAP_RET_SAVE 0x10u   /* SEARCHRES (RFC 5182) */
#define IMAP_RET_PARTIAL 0x20u /* RFC 5267 4.4 */
#define IMAP_RET_UPDATE 0x40u  /* RFC 5267 4.3 */

/* PARTIAL's range: positions lo..hi (1-based, lo <= hi) of the result. */
struct imap_partial {
	uint32_t lo, hi;
};

/* SP "RETURN" options: SP "(" [option *(SP option)] ")" with the
 * options above (PARTIAL's range in *part); empty means ALL (RFC 4731
 * 3.1); CONTEXT is a hint, taken and ignored (RFC 5267 4.2).  -1 with
 * c->args.error set. */
int imap_search_parse_return(struct imap_cmd *c, unsigned *ret,
                             struct imap_partial *part);

/* "* ESEARCH (TAG "tag") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]
 * [PARTIAL (lo:hi set)]" of the results nums[0..n) in their
 * order (MIN and MAX: the first and last), without the line's end.
 * `part` is read with IMAP_RET_PARTIAL only. */
void imap_esearch_format(struct imap_buf *out, const char *tag, int by_uid,
                         unsigned ret, const struct imap_partial *part,
                         const uint32_t *nums, size_t n);

/* ---- searches kept updated (imap_context.c, RFC 5267 4.3) --------------*/

/* At most this many searches of a session are kept updated; past it a
 * SEARCH RETURN (UPDATE) is answered with NOUPDATE, as one whose
 * updates the server declines. */
#define IMAP_MAX_UPDATES 8
/* What the evaluations of one sync may read at most, for all the
 * session's searches kept updated (octets, as SEARCH counts a step:
 * 256 for a message whose content was not read); a SORT's keys count
 * too.  Past it the search being evaluated is dropped with NOUPDATE: a
 * client that keeps text searches and then copies thousands of
 * messages does not hold a pool thread for minutes in one NOOP (four
 * search steps at most). */
#define IMAP_UPDATE_SYNC_OCTETS (32u << 20)

/* On the command's job (which owns the session): keeps the search `tag`
 * with its result `uids` (ascending, n) updated from changes past
 * `modseq`; a SORT's also with its sorted result `sort` (imap_sort.h),
 * which this takes (NULL for a SEARCH); `ret` the RETURN options
 * (IMAP_RET_*: ALL follows ADDTO/REMOVEFROM, MIN MAX COUNT their new
 * values).  Writes "* NO [NOUPDATE ...]"
 * to out instead when the session keeps IMAP_MAX_UPDATES already, the
 * mailbox has no mod-sequences or memory is short. */
struct imap_sort_live;
void imap_update_add(struct imap_session *s, struct imap_buf *out,
                     const char *tag, const struct imap_search_prog *p,
                     int by_uid, const uint32_t *uids, size_t n,
                     uint64_t modseq, struct imap_sort_live *sort,
                     unsigned ret);
/* "* NO [NOUPDATE "tag"] why": the search `tag` is not kept updated. */
void imap_update_refuse(struct imap_buf *out, const char *tag,
                        const char *why);
/* From imap_sync_format, on the job: REMOVEFROM for the expunges of ch
 * (before their EXPUNGE responses, in the numbers the client knows),
 * and ADDTO / REMOVEFROM for the messages changed or added since the
 * last time (after EXISTS). */
void imap_update_expunges(struct imap_session *s, struct imap_buf *out,
                          const struct postern_sync_changes *ch,
                          postern_pool_t *pool);
void imap_update_changes(struct imap_session *s, struct imap_buf *out,
                         postern_pool_t *pool);
/* 1 when uid is in the ascending array a[0..n). */
int imap_uid_in(const uint32_t *a, size_t n, uint32_t uid);
/* 1 when the search `tag` is kept updated.  Loop. */
int imap_update_find(struct imap_session *s, const char *tag);
/* Forgets every search kept updated (the mailbox is left, or the
 * session ends).  Loop, no job in flight. */
void imap_updates_free(struct imap_session *s);

/* From a step's `done`: runs the next step of the command on a new
 * heavy job that takes over j's pool and arg. */
void imap_job_next_step(struct imap_job *j, void (*work)(struct imap_job *),
                        void (*done)(struct imap_job *));

#endif /* IMAP_SEARCH_H */
