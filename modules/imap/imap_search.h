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

/* ESEARCH's RETURN options (RFC 4731), ESORT's too (RFC 5267). */
#define IMAP_RET_MIN 0x1u
#define IMAP_RET_MAX 0x2u
#define IMAP_RET_ALL 0x4u
#define IMAP_RET_COUNT 0x8u
#define IMAP_RET_SAVE 0x10u   /* SEARCHRES (RFC 5182) */

/* SP "RETURN" options: SP "(" [option *(SP option)] ")" with the
 * options above; empty means ALL (RFC 4731 3.1).  -1 with
 * c->args.error set. */
int imap_search_parse_return(struct imap_cmd *c, unsigned *ret);

/* "* ESEARCH (TAG "tag") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]" of
 * the results nums[0..n) in their order (MIN and MAX: the first and
 * last), without the line's end. */
void imap_esearch_format(struct imap_buf *out, const char *tag, int by_uid,
                         unsigned ret, const uint32_t *nums, size_t n);

/* From a step's `done`: runs the next step of the command on a new
 * heavy job that takes over j's pool and arg. */
void imap_job_next_step(struct imap_job *j, void (*work)(struct imap_job *),
                        void (*done)(struct imap_job *));

#endif /* IMAP_SEARCH_H */
