/*
 * postern/storage.h - the storage backend interface: users' mailboxes.
 *
 * A storage module (storage_maildir, or a vendor's network store)
 * publishes a `struct postern_storage` table as the service
 * POSTERN_STORAGE_SERVICE, version POSTERN_STORAGE_MAJOR.MINOR.  SMTP
 * (local delivery), IMAP and POP3 look it up and reach mail only through
 * it.
 *
 * How slow operations complete.  Every operation marked "blocking" may
 * wait on a disk or a network, so it is called ONLY from a job thread
 * (host->job_submit), never from the event loop; it returns when done.
 * This keeps backends simple (a network store just blocks on its socket)
 * and needs no ABI change whatever the backend talks to.  A protocol
 * session keeps at most one job on a given store or mailbox handle at a
 * time, so a handle is never used by two threads at once; different
 * handles are used concurrently, so a backend's shared state must be
 * thread-safe.
 *
 * Which thread calls what, once and for all:
 *  - "Blocking": only on a job thread, one job per handle at a time.
 *  - "Memory": status, count, message, seq_of_uid read the view in
 *    memory and never wait.  They are called by whoever holds the
 *    mailbox at that moment: the loop while no job uses the mailbox, or
 *    the one job that uses it (a FETCH step formats from the view on
 *    its job).  Never by two threads at once.
 *  - "Loop": watch, sync_needed and msg_open_nowait, and only while no
 *    job uses the mailbox: they touch the process's change
 *    notifications, which live on the loop, and never wait.
 *    status_nowait and open_nowait likewise, while no job uses the
 *    store handle.
 * A protocol answers a command on the loop, with no job, only through
 * "memory" and "loop" calls (IMAP: NOOP with nothing new, FETCH of
 * index items, FETCH of one small message the page cache holds, STATUS
 * of a mailbox unchanged since its last STATUS, SELECT of one unchanged
 * since this process last had it open).
 *
 * Views.  An open mailbox is a view: a numbered list of messages
 * (sequence number = index + 1) that changes only when the session asks:
 * through its own operations (append, store, expunge, copy/move) or
 * through `sync`, which brings in what other sessions and deliveries did
 * and reports it in the order a protocol must announce it (RFC 3501
 * sections 5.5 and 7.4.1: EXPUNGE never shifts numbers under a client
 * that has not been told).
 *
 * Names.  Mailbox names are UTF-8, with the hierarchy delimiter the store
 * reports ("INBOX/Archive/2024").  "INBOX" is case-insensitive and always
 * exists.  The protocol converts from and to modified UTF-7 where it has
 * to.
 *
 * Messages.  A message is read as RFC 5322 octets with CRLF line endings,
 * whatever the store keeps on disk; `size` is that length (IMAP
 * RFC822.SIZE, POP3 LIST) and `header_size` the length of the header
 * including the blank line.
 *
 * Memory.  Results are either copied into caller-provided structs, or
 * allocated from a pool the caller passes (freed with the pool), or owned
 * by the handle and valid until the next operation on it, as each
 * function says.  Pools are not thread-safe, but a pool used by one job at
 * a time needs no locking.
 */
#ifndef POSTERN_STORAGE_H
#define POSTERN_STORAGE_H

#include <postern/types.h>
#include <postern/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_STORAGE_SERVICE "storage"
#define POSTERN_STORAGE_MAJOR 1
#define POSTERN_STORAGE_MINOR 8

struct postern_user; /* postern/auth.h */

/* One user's mail, opened for a session or a delivery. */
typedef struct postern_store postern_store_t;
/* An open mailbox view. */
typedef struct postern_mailbox postern_mailbox_t;
/* An open message, for reading. */
typedef struct postern_msg postern_msg_t;
/* A watch of a mailbox by name, or of the mailbox list (storage 1.6). */
typedef struct postern_mbwatch postern_mbwatch_t;

/* ---- errors -------------------------------------------------------------
 * Codes follow IMAP's response codes (RFC 5530) so a protocol can say
 * exactly what went wrong. */
enum postern_storage_error {
	POSTERN_SE_OK = 0,
	POSTERN_SE_TEMP,          /* UNAVAILABLE: try again later */
	POSTERN_SE_NONEXISTENT,   /* no such mailbox */
	POSTERN_SE_ALREADYEXISTS, /* the mailbox exists */
	POSTERN_SE_NOPERM,        /* not allowed */
	POSTERN_SE_OVERQUOTA,     /* quota exceeded */
	POSTERN_SE_LIMIT,         /* a store limit was hit */
	POSTERN_SE_INUSE,         /* locked by another session */
	POSTERN_SE_EXPUNGED,      /* the message is gone */
	POSTERN_SE_CORRUPT,       /* the store is damaged (logged) */
	POSTERN_SE_CANNOT,        /* bad name, or not possible here */
	POSTERN_SE_NOTSUPPORTED,  /* this backend does not do that */
};

struct postern_storage_err {
	enum postern_storage_error code;
	char text[200]; /* for the client: says what, never internal paths */
};

/* ---- flags --------------------------------------------------------------*/

#define POSTERN_MSG_SEEN 0x01u
#define POSTERN_MSG_ANSWERED 0x02u
#define POSTERN_MSG_FLAGGED 0x04u
#define POSTERN_MSG_DELETED 0x08u
#define POSTERN_MSG_DRAFT 0x10u
#define POSTERN_MSG_RECENT 0x20u /* this view got it first; read only */

/* Mailbox attributes (LIST), RFC 3501, 3348, 5258, 6154. */
#define POSTERN_MBOX_NOSELECT 0x0001u
#define POSTERN_MBOX_NOINFERIORS 0x0002u
#define POSTERN_MBOX_HASCHILDREN 0x0004u
#define POSTERN_MBOX_HASNOCHILDREN 0x0008u
#define POSTERN_MBOX_MARKED 0x0010u
#define POSTERN_MBOX_UNMARKED 0x0020u
#define POSTERN_MBOX_SUBSCRIBED 0x0040u
#define POSTERN_MBOX_NONEXISTENT 0x0080u /* subscribed, but not there */
#define POSTERN_MBOX_ALL 0x0100u
#define POSTERN_MBOX_ARCHIVE 0x0200u
#define POSTERN_MBOX_DRAFTS 0x0400u
#define POSTERN_MBOX_FLAGGED 0x0800u
#define POSTERN_MBOX_JUNK 0x1000u
#define POSTERN_MBOX_SENT 0x2000u
#define POSTERN_MBOX_TRASH 0x4000u
#define POSTERN_MBOX_SPECIAL_USE_MASK 0x7f00u

struct postern_mailbox_entry {
	const char *name; /* full UTF-8 name */
	unsigned attrs;   /* POSTERN_MBOX_* */
};

/* What `status` and `status_by_name` fill (the caller sets `size`). */
struct postern_mailbox_status {
	size_t size;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t recent;
	uint32_t unseen;
	uint32_t first_unseen_seq; /* 0: none (IMAP SELECT [UNSEEN n]) */
	uint64_t total_size;       /* sum of message sizes (STATUS SIZE) */
	int readonly;              /* the view cannot change the mailbox */
	int modseq_supported;      /* 0: no CONDSTORE for this mailbox */
	/* Keywords known in the mailbox (FLAGS, PERMANENTFLAGS); owned by
	 * the view, valid until its next operation. */
	const char *const *keywords;
	uint32_t nkeywords;
	int keywords_full;         /* no new keyword can be created */
	/* Storage 1.3 (filled when `size` covers them and the backend is
	 * 1.3 or later): the messages flagged \Deleted, their number and
	 * the sum of their sizes (RFC 9208 STATUS DELETED and
	 * DELETED-STORAGE). */
	uint32_t deleted;
	uint64_t deleted_size;
};

/* One message of a view.  Owned by the view; valid until its next
 * operation. */
struct postern_message_info {
	uint32_t uid;
	uint32_t flags;           /* POSTERN_MSG_* */
	const uint32_t *keywords; /* indexes into status.keywords */
	uint32_t nkeywords;
	uint64_t size;            /* octets with CRLF line endings */
	int64_t internal_date;    /* seconds since the epoch */
	int16_t internal_tz;      /* the date's zone, minutes east of UTC */
	uint64_t modseq;
	const char *guid;         /* stable, unique in the mailbox (POP3 UIDL) */
	int expunged;             /* gone, still numbered until sync says so */
};

/* What `sync` reports, allocated from the caller's pool, in the order a
 * protocol announces it. */
struct postern_sync_changes {
	/* Expunges: seqs[i] is the number of the i-th removed message at the
	 * moment it is announced (after the earlier ones are gone), uids[i]
	 * its UID (for VANISHED). */
	uint32_t nexpunged;
	const uint32_t *expunged_seqs;
	const uint32_t *expunged_uids;
	/* Messages whose flags or keywords changed (by sequence number after
	 * the expunges above), for untagged FETCH FLAGS. */
	uint32_t nchanged;
	const uint32_t *changed_seqs;
	/* The view's message and recent counts after the sync (EXISTS,
	 * RECENT), and whether either grew. */
	uint32_t messages;
	uint32_t recent;
	int new_messages;
	uint64_t highestmodseq;
};

/* What quota_get reports (storage 1.3).  A limit of 0 means none; with
 * no limit the usage need not be counted (0). */
struct postern_quota {
	size_t size;              /* sizeof(struct postern_quota) */
	uint64_t storage_used;    /* octets of every message (RFC 9208
	                             STORAGE, which counts 1024s) */
	uint64_t storage_limit;
	uint64_t message_used;    /* messages (RFC 9208 MESSAGE) */
	uint64_t message_limit;
};

/* `sync` flags. */
#define POSTERN_SYNC_NO_EXPUNGE 0x1u /* during FETCH, STORE, SEARCH: hold
                                        back expunges (messages stay
                                        numbered, marked `expunged`) */

/* `open` modes. */
#define POSTERN_OPEN_READONLY 0x1u  /* EXAMINE: no changes; \Recent
                                        shown, not taken */
#define POSTERN_OPEN_EXCLUSIVE 0x2u /* POP3: one exclusive view of the
                                       mailbox at a time (else INUSE);
                                       other views are not blocked */

/* What `append` and `deliver` store. */
struct postern_append {
	size_t size;              /* sizeof(struct postern_append) */
	/* The message: `fd` (read with pread from `offset`, `length`
	 * octets; the backend does not close it), or, with fd < 0, `data`. */
	int fd;
	const void *data;
	uint64_t length;
	uint32_t flags;           /* POSTERN_MSG_* (RECENT ignored) */
	const char *const *keywords;
	uint32_t nkeywords;
	int64_t internal_date;    /* 0: now */
	int16_t internal_tz;
	/* Storage 1.1: octets stored before the fd or data content (trace
	 * headers a protocol prepends: Return-Path, Received), and where in
	 * `fd` the content starts.  The message is head[0..head_len)
	 * followed by `length` octets of fd or data from `offset`.  A
	 * backend checks POSTERN_SIZED_HAS(msg, offset) before reading them;
	 * a caller that needs them looks the service up with minor >= 1. */
	const void *head;
	size_t head_len;
	uint64_t offset;
};

/* `store` operations. */
enum postern_store_op {
	POSTERN_STORE_SET = 0, /* FLAGS */
	POSTERN_STORE_ADD,     /* +FLAGS */
	POSTERN_STORE_REMOVE,  /* -FLAGS */
};

/* access_key (storage 1.7): the length of a mailbox access key, and
 * what the call does. */
#define POSTERN_ACCESS_KEY_LEN 32
#define POSTERN_ACCESS_KEY_GET 0    /* the key; 1 when there is none */
#define POSTERN_ACCESS_KEY_CREATE 1 /* the key, made now when none */
#define POSTERN_ACCESS_KEY_RESET 2  /* forget it (`name` NULL: every
                                       mailbox's key of the user) */

/* A set of UIDs as ascending, non-overlapping inclusive ranges. */
struct postern_uid_range {
	uint32_t first, last;
};

/* 1 if `uid` is in the set r[0..n) (a binary search). */
static inline int
postern_uid_ranges_have(const struct postern_uid_range *r, size_t n,
                        uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (uid < r[mid].first)
			hi = mid;
		else if (uid > r[mid].last)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

/* What the store offers about one open message. */
struct postern_msg_size {
	uint64_t size;        /* whole message, CRLF */
	uint64_t header_size; /* header and the empty line after it */
};

struct postern_storage {
	size_t size;        /* sizeof(struct postern_storage) */
	const char *name;   /* "maildir" */
	char delimiter;     /* hierarchy delimiter of mailbox names */

	/* ---- stores ---------------------------------------------------- */

	/* Opens `user`'s mail (creating what a first use needs, INBOX
	 * included).  Blocking.  *out is freed by store_close. */
	int (*store_open)(const struct postern_user *user,
	                  postern_store_t **out,
	                  struct postern_storage_err *err);
	void (*store_close)(postern_store_t *st); /* blocking */

	/* ---- the mailbox list ------------------------------------------ */

	/* Every mailbox, and every subscribed name (existing or not, flagged
	 * SUBSCRIBED / NONEXISTENT), in no particular order; pattern
	 * matching is the protocol's.  Entries and names come from `pool`.
	 * Blocking. */
	int (*list)(postern_store_t *st, postern_pool_t *pool,
	            struct postern_mailbox_entry **entries, size_t *n,
	            struct postern_storage_err *err);
	/* `special_use`: POSTERN_MBOX_SPECIAL_USE_MASK bits, or 0.  Parents
	 * are created as needed.  Blocking. */
	int (*create)(postern_store_t *st, const char *name,
	              unsigned special_use, struct postern_storage_err *err);
	/* INBOX cannot be deleted; a mailbox with children becomes
	 * \Noselect (RFC 3501 6.3.4).  Blocking. */
	int (*remove)(postern_store_t *st, const char *name,
	              struct postern_storage_err *err);
	/* Children move along; renaming INBOX moves its messages into a new
	 * mailbox and leaves INBOX empty (RFC 3501 6.3.5).  Blocking. */
	int (*rename)(postern_store_t *st, const char *from, const char *to,
	              struct postern_storage_err *err);
	int (*subscribe)(postern_store_t *st, const char *name, int on,
	                 struct postern_storage_err *err); /* blocking */

	/* STATUS without keeping the mailbox open.  Blocking. */
	int (*status_by_name)(postern_store_t *st, const char *name,
	                      struct postern_mailbox_status *out,
	                      struct postern_storage_err *err);

	/* ---- views ------------------------------------------------------ */

	/* Opens a view (POSTERN_OPEN_* mode bits).  Blocking.  *out is
	 * freed by close. */
	int (*open)(postern_store_t *st, const char *name, unsigned mode,
	            postern_mailbox_t **out, struct postern_storage_err *err);
	/* Blocking, so on a job thread: remove a watch first (watch with
	 * `changed` NULL, on the loop), as a watch lives on the loop. */
	void (*close)(postern_mailbox_t *mb);
	/* The view's state now.  Memory. */
	void (*status)(postern_mailbox_t *mb,
	               struct postern_mailbox_status *out);
	/* Number of messages in the view, and one of them (seq 1..count;
	 * NULL outside).  Memory. */
	uint32_t (*count)(postern_mailbox_t *mb);
	const struct postern_message_info *(*message)(postern_mailbox_t *mb,
	                                              uint32_t seq);
	/* The sequence number of `uid`, or 0.  Memory. */
	uint32_t (*seq_of_uid)(postern_mailbox_t *mb, uint32_t uid);
	/* Brings in other sessions' changes (POSTERN_SYNC_* flags); `out`
	 * from `pool`.  Blocking. */
	int (*sync)(postern_mailbox_t *mb, unsigned flags,
	            postern_pool_t *pool, struct postern_sync_changes *out,
	            struct postern_storage_err *err);
	/* Calls `changed(arg)` on the loop when another session or a
	 * delivery may have changed the mailbox (IMAP IDLE, NOOP).  Spurious
	 * calls are allowed; the session then syncs.  One watch per view;
	 * `changed` NULL removes it.  Loop. */
	int (*watch)(postern_mailbox_t *mb, void (*changed)(void *arg),
	             void *arg);

	/* ---- reading ---------------------------------------------------- */

	/* Opens a message of the view for reading.  Blocking. */
	int (*msg_open)(postern_mailbox_t *mb, uint32_t uid,
	                postern_msg_t **out, struct postern_msg_size *sizes,
	                struct postern_storage_err *err);
	/* Reads up to `len` octets at `offset` (CRLF form); returns the
	 * count, 0 at the end, -1 on error.  Blocking. */
	ssize_t (*msg_read)(postern_msg_t *msg, uint64_t offset, void *buf,
	                    size_t len, struct postern_storage_err *err);
	void (*msg_close)(postern_msg_t *msg); /* blocking */

	/* Per-message cache for what is costly to recompute (the parsed
	 * MIME structure).  `field` names the entry ("mime.v1").  get
	 * returns 1 with *data (from `pool`) or 0 when absent.  Blocking. */
	int (*cache_get)(postern_mailbox_t *mb, uint32_t uid,
	                 const char *field, postern_pool_t *pool,
	                 const void **data, size_t *len);
	int (*cache_set)(postern_mailbox_t *mb, uint32_t uid,
	                 const char *field, const void *data, size_t len);

	/* ---- changing --------------------------------------------------- */

	/* Appends to the mailbox `name` (which need not be open); returns
	 * the new UID and the mailbox's UIDVALIDITY (UIDPLUS).  Durable
	 * (fsynced) when it returns.  Blocking. */
	int (*append)(postern_store_t *st, const char *name,
	              const struct postern_append *msg, uint32_t *uid,
	              uint32_t *uidvalidity, struct postern_storage_err *err);
	/* Changes flags of the UIDs in `uids` in the view.  Keywords not
	 * yet known are created.  With unchangedsince > 0 (CONDSTORE), a
	 * message whose modseq is higher is left alone and its UID added to
	 * *failed (from `pool`).  The view reflects the result at once.
	 * Blocking. */
	int (*store)(postern_mailbox_t *mb,
	             const struct postern_uid_range *uids, size_t nranges,
	             enum postern_store_op op, uint32_t flags,
	             const char *const *keywords, uint32_t nkeywords,
	             uint64_t unchangedsince, postern_pool_t *pool,
	             uint32_t **failed, size_t *nfailed,
	             struct postern_storage_err *err);
	/* Removes the view's \Deleted messages (uids NULL), or those of
	 * them in `uids` (UID EXPUNGE).  `out` lists what went, as sync
	 * does.  Blocking. */
	int (*expunge)(postern_mailbox_t *mb,
	               const struct postern_uid_range *uids, size_t nranges,
	               postern_pool_t *pool, struct postern_sync_changes *out,
	               struct postern_storage_err *err);
	/* Copies (or moves, with `move`) messages to mailbox `dest`;
	 * src_uids/dest_uids (from `pool`, in the same order) and the
	 * destination's UIDVALIDITY are returned for COPYUID.  A move
	 * expunges the sources from the view and reports it in `expunged`
	 * (may be NULL for a copy).  Blocking. */
	int (*copy)(postern_mailbox_t *mb,
	            const struct postern_uid_range *uids, size_t nranges,
	            const char *dest, int move, postern_pool_t *pool,
	            uint32_t **src_uids, uint32_t **dest_uids, size_t *n,
	            uint32_t *dest_uidvalidity,
	            struct postern_sync_changes *expunged,
	            struct postern_storage_err *err);

	/* ---- delivery --------------------------------------------------- */

	/* Delivers a spooled message into `user`'s mailbox `mailbox` (NULL:
	 * INBOX), without an open store.  Durable (fsynced) when it
	 * returns: the SMTP module answers "250" only then.  Backends may
	 * group the fsyncs of concurrent deliveries.  Blocking. */
	int (*deliver)(const struct postern_user *user, const char *mailbox,
	               const struct postern_append *msg, uint32_t *uid,
	               struct postern_storage_err *err);

	/* ---- storage 1.2 ------------------------------------------------ */

	/* 0 when a sync now would bring nothing: the view is watched and no
	 * change has been seen since its last sync began (and none held
	 * back); 1 when it may (not watched, or cannot tell).  It lets a
	 * protocol answer NOOP or FETCH FLAGS on the loop without a job.  A
	 * change completed before the call (by any process) is seen: the
	 * backend reads its pending notifications first.  Loop. */
	int (*sync_needed)(postern_mailbox_t *mb);
	/* msg_open without waiting: 0 with the message open when the store
	 * has it in memory already (the page cache), 1 when getting it would
	 * wait on a disk or a network (or the store cannot tell): the
	 * caller then opens it with msg_open on a job.  A message opened
	 * here is read and closed on the loop or on a job alike: its bytes
	 * are in memory.  Loop. */
	int (*msg_open_nowait)(postern_mailbox_t *mb, uint32_t uid,
	                       postern_msg_t **out,
	                       struct postern_msg_size *sizes);

	/* ---- storage 1.3 ------------------------------------------------ */

	/* The user's quota: one quota root over every mailbox of the store
	 * (RFC 9208), its usage and limits, into `out` (whose `size` the
	 * caller sets; a backend fills only what it covers).  While a limit
	 * is set, append, copy (not a move) and deliver fail with
	 * POSTERN_SE_OVERQUOTA when the message(s) would take the usage
	 * past it.  Blocking. */
	int (*quota_get)(postern_store_t *st, struct postern_quota *out,
	                 struct postern_storage_err *err);

	/* ---- storage 1.4 ------------------------------------------------ */

	/* Appends the `n` messages msgs[0..n) to the mailbox `name` as one
	 * (IMAP MULTIAPPEND, RFC 3502): either every one is stored, durable
	 * (fsynced) and visible to other sessions at once, with consecutive
	 * UIDs in order in uids[0..n) (caller's array), or none is and the
	 * call returns -1 with `err` naming the first failure.  The caller
	 * keeps the messages and the array.  With a quota (storage 1.3) it
	 * fails with POSTERN_SE_OVERQUOTA, none stored, when all of them
	 * would take the usage past a limit.  A caller checks the table's
	 * size (POSTERN_SIZED_HAS) before calling.  Blocking. */
	int (*append_many)(postern_store_t *st, const char *name,
	                   const struct postern_append *const *msgs, size_t n,
	                   uint32_t *uids, uint32_t *uidvalidity,
	                   struct postern_storage_err *err);

	/* ---- storage 1.5 ------------------------------------------------ */

	/* status_by_name without waiting: 0 with `out` filled (as
	 * status_by_name fills it; the caller sets out->size) when the
	 * store handle holds the mailbox's status from an earlier call and
	 * can show, without waiting on a disk or a network, that nothing
	 * changed it since (in any process); 1 when it cannot (never
	 * asked, changed, or cannot tell): the caller then calls
	 * status_by_name on a job.  A change completed before the call is
	 * seen.  Called on the loop while no job uses the store handle; a
	 * caller checks the table's size (POSTERN_SIZED_HAS) first.
	 * Loop. */
	int (*status_nowait)(postern_store_t *st, const char *name,
	                     struct postern_mailbox_status *out);
	/* open without waiting: 0 with *out a view (freed by close, as
	 * one from open) when the store can make it from memory and show,
	 * without waiting, that nothing changed the mailbox since (in any
	 * process) and that opening it has nothing to write (a read-write
	 * open takes \Recent and moves new mail: none may be there); 1
	 * when it cannot, and the caller calls open on a job.  Never for
	 * POSTERN_OPEN_EXCLUSIVE.  Loop. */
	int (*open_nowait)(postern_store_t *st, const char *name,
	                   unsigned mode, postern_mailbox_t **out);

	/* ---- storage 1.6 ------------------------------------------------ */

	/* Watches the mailbox `name` of the store without a view (IMAP
	 * NOTIFY: the STATUS of mailboxes that are not selected), or,
	 * with `name` NULL, the list of mailboxes and the subscriptions:
	 * changed(arg) is called on the loop when a change, by any
	 * process, may have happened (spurious calls are allowed; the
	 * caller then asks status_by_name or list on a job).  NULL when
	 * the store cannot watch it (no such mailbox, or the store's
	 * watch limit: the backend logs the limit once); the caller
	 * then learns of changes only when it asks.  A watch costs no
	 * polling and no thread.  Removed with unwatch_name (on the
	 * loop, also from within a `changed` call), before the store is
	 * closed.  A caller checks the table's size (POSTERN_SIZED_HAS)
	 * first.  Loop. */
	postern_mbwatch_t *(*watch_name)(postern_store_t *st,
	                                 const char *name,
	                                 void (*changed)(void *arg),
	                                 void *arg);
	void (*unwatch_name)(postern_mbwatch_t *w);

	/* ---- storage 1.7 ------------------------------------------------ */

	/* The mailbox access key of URLAUTH (RFC 4467) of mailbox `name`
	 * in the store, by `op` (POSTERN_ACCESS_KEY_*): GET copies it into
	 * key[] and returns 0, or returns 1 when the mailbox has none;
	 * CREATE does the same but makes a key first when there is none
	 * (POSTERN_ACCESS_KEY_LEN random octets from the kernel's CSPRNG);
	 * RESET forgets the key of `name`, or with `name` NULL every key
	 * of the user (RFC 4467 RESETKEY), and returns 0 (`key` may then
	 * be NULL).  A key belongs to one incarnation of the mailbox: a
	 * mailbox deleted and created again (another UIDVALIDITY), or
	 * renamed, has none.  Keys persist across restarts, readable by
	 * the mail owner only, and change atomically (a reader sees the
	 * old set or the new).  -1 with `err` set: NONEXISTENT for a
	 * mailbox that does not exist, TEMP when the keys cannot be read
	 * or written.  A caller checks the table's size
	 * (POSTERN_SIZED_HAS) first.  Blocking. */
	int (*access_key)(postern_store_t *st, const char *name, unsigned op,
	                  unsigned char *key,
	                  struct postern_storage_err *err);

	/* ---- storage 1.8 ------------------------------------------------ */

	/* How the host's stream (postern/stream.h) may read an open
	 * message (POSTERN_MSG_SOURCE_*): FILE when the message's CRLF form
	 * is a file's octets as they are, from *offset on: *fd is the
	 * message's (open until msg_close; the stream reads its own
	 * duplicate, on the loop while the page cache holds the octets);
	 * IN_MEMORY when msg_read never blocks (the loop may call it);
	 * READER otherwise (msg_read on a job, as always).  Never blocks;
	 * any thread. */
	int (*msg_source)(postern_msg_t *msg, int *fd, uint64_t *offset);
};

/* msg_source's answers (storage 1.8). */
enum postern_msg_source {
	POSTERN_MSG_SOURCE_READER = 0,
	POSTERN_MSG_SOURCE_IN_MEMORY,
	POSTERN_MSG_SOURCE_FILE,
};

/* The stream source (postern/stream.h) for `length` octets of the open
 * message `msg` from octet `from` of its CRLF form: the file itself
 * when the store says the message is one (msg_source, storage 1.8),
 * else `read` (which reads `msg` through msg_read, adding `from` to its
 * offsets), flagged in memory when msg_read never blocks.  Any
 * thread. */
static inline void
postern_msg_stream_source(const struct postern_storage *S,
                          postern_msg_t *msg, uint64_t from,
                          uint64_t length, postern_stream_read_fn read,
                          void *read_arg, struct postern_stream_source *src)
{
	uint64_t at = 0;
	int fd = -1, kind = POSTERN_MSG_SOURCE_READER;

	if (POSTERN_SIZED_HAS(S, msg_source) && S->msg_source != NULL)
		kind = S->msg_source(msg, &fd, &at);
	src->size = sizeof(*src);
	src->fd = -1;
	src->offset = 0;
	src->length = length;
	src->read = read;
	src->read_arg = read_arg;
	src->flags = 0;
	if (kind == POSTERN_MSG_SOURCE_FILE) {
		src->fd = fd;
		src->offset = at + from;
		src->read = NULL;
		src->read_arg = NULL;
	} else if (kind == POSTERN_MSG_SOURCE_IN_MEMORY) {
		src->flags = POSTERN_STREAM_IN_MEMORY;
	}
}

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_STORAGE_H */
