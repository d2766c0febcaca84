/*
 * maildir.h - what the files of storage_maildir share.  Private to the
 * module; see README.md beside it for the on-disk design.
 */
#ifndef MAILDIR_H
#define MAILDIR_H

#include <sys/types.h>
#include <pthread.h>

struct stat;
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <postern/postern.h>

#define MD_MAX_KEYWORDS 26 /* 'a'..'z' in file names, as Dovecot */
#define MD_UIDLIST "dovecot-uidlist"
#define MD_KEYWORDS "dovecot-keywords"
#define MD_INDEX "postern.index"
#define MD_INDEX_LOG "postern.index.log"
#define MD_LOCK "postern.lock"
#define MD_EXCL "postern.exclusive"
#define MD_CACHE "postern.cache"
#define MD_SUBS "subscriptions"

/* Record flags beyond POSTERN_MSG_* (which use the low byte). */
#define MD_REC_NEW 0x100u /* the file is in new/ (no info suffix) */

/* One message in the index: fixed size, so the file is an array. */
struct md_wdir;

struct md_rec {
	uint32_t uid;
	uint32_t flags;     /* POSTERN_MSG_* without RECENT, MD_REC_* */
	uint32_t kw;        /* keyword bit i = dovecot-keywords index i */
	int16_t tz;         /* minutes east of UTC */
	uint16_t name_len;  /* file name length (in the name area) */
	uint64_t modseq;
	uint64_t size;      /* CRLF size */
	uint64_t rawsize;   /* size on disk */
	uint64_t hdr_size;  /* CRLF header size; 0: not known yet */
	int64_t idate;      /* internal date: seconds since the epoch */
	uint32_t name_off;  /* offset in the name area (while on disk) */
	uint32_t mark;      /* in memory: MD_MARK_*; 0 on disk */
};

/* md_rec.mark: what the next md_index_write puts in the change log. */
#define MD_MARK_CHANGED 0x1u /* added or changed since the state was read */
#define MD_MARK_GONE 0x2u    /* expunged by a log entry being replayed */

/* What STATUS and SELECT count over the records, kept with them so
 * that records unchanged since are not counted again. */
struct md_counts {
	uint64_t gen;          /* what they were counted at; 0: not yet */
	uint64_t total_size, deleted_size;
	uint32_t messages, recent, unseen, first_unseen_seq, deleted;
};

/* A mailbox's state as the index holds it, loaded under the lock. */
struct md_state {
	uint32_t uidvalidity;
	uint32_t nextuid;
	uint64_t highestmodseq;
	uint32_t first_recent_uid; /* >= this: recent for the next RW view */
	int64_t new_mtime, cur_mtime; /* ns, as stat'ed before the scan */
	uint64_t uidlist_size;        /* what we last saw or wrote */
	uint32_t nrec, cap;
	struct md_rec *recs;  /* ascending UIDs */
	char **names;         /* current file name of each record */
	int dirty;            /* needs writing */
	/* The change log beside the index (maildir_index.c). */
	uint64_t idx_size;    /* the index file read; 0: none, write whole */
	uint32_t idx_sum;     /* its checksum, which the log names */
	uint64_t log_size;    /* valid length of the log; 0: start it anew */
	int full;             /* the next write rewrites the index whole */
	/* What the state was last read from or written to, so that the
	 * next refresh reads only the log's new entries (maildir_index.c). */
	int loaded;           /* in step with the files as of log_size */
	uint64_t idx_dev, idx_ino; /* the index file's identity */
	int64_t idx_ctime;    /* its ctime (ns) when read or written whole */
	uint64_t log_ino;     /* the log's inode; 0: none seen */
	uint32_t log_last_sum; /* checksum of the COMMIT ending log_size */
	uint64_t gen;         /* new (md_state_gen) whenever the records may
	                         have changed: read, replayed or written */
	uint64_t nonew_gen;   /* the gen at which no record was in new/
	                         (move_new has nothing to do) */
	struct md_counts counts; /* state_status's, at counts.gen */
	uint32_t *gone;       /* UIDs expunged since the state was read */
	uint32_t ngone, capgone;
	char *kwnames[MD_MAX_KEYWORDS];
	uint32_t nkw;
};

/* ---- storage_maildir.c: module-wide -------------------------------- */

extern const struct postern_host *md_host;
extern postern_module_t *md_self;
void md_log(int level, const char *fmt, ...) POSTERN_PRINTF(2, 3);
void md_err(struct postern_storage_err *err, enum postern_storage_error code,
            const char *fmt, ...) POSTERN_PRINTF(3, 4);

/* ---- maildir_layout.c ---------------------------------------------- */

struct postern_store {
	char *root;      /* the Maildir (INBOX) */
	char *user;
	/* The state of the mailbox this handle last saved or copied into
	 * (appends in a row read only what changed since the last one).
	 * `saving` is held while a save uses it: a handle used by two
	 * threads at once gives the second a state of its own. */
	pthread_mutex_t saving;
	char *save_dir;
	struct md_state save_state;
};

/* The store's kept state for mailbox directory `dir`, to refresh under
 * the lock and give back with md_store_state_put; NULL when another
 * thread uses it (the caller then takes a state of its own). */
struct md_state *md_store_state_get(postern_store_t *st, const char *dir);
/* Gives it back; after a failure (rc < 0) it is dropped. */
void md_store_state_put(postern_store_t *st, int rc);
/* The kept state only when it is `dir`'s and no thread uses it (then
 * given back with md_store_state_put(st, 0)); else NULL. */
struct md_state *md_store_state_peek(postern_store_t *st, const char *dir);
/* The Maildir of `user`, or NULL with *err set (malloc'd). */
char *md_location(const char *def, const struct postern_user *user,
                  struct postern_storage_err *err);
/* Directory of mailbox `name` (malloc'd), or NULL (bad name, err set). */
char *md_box_dir(const char *root, const char *name,
                 struct postern_storage_err *err);
/* md_box_dir of a mailbox that exists (has cur/), else NULL with err
 * NONEXISTENT. */
char *md_box_dir_existing(const char *root, const char *name,
                          struct postern_storage_err *err);
/* Creates dir and cur/new/tmp (0700) when missing. */
int md_mkmaildir(const char *dir);
int md_list(postern_store_t *st, postern_pool_t *pool,
            struct postern_mailbox_entry **entries, size_t *n,
            struct postern_storage_err *err);
int md_create(postern_store_t *st, const char *name, unsigned special_use,
              struct postern_storage_err *err);
int md_remove(postern_store_t *st, const char *name,
              struct postern_storage_err *err);
int md_rename(postern_store_t *st, const char *from, const char *to,
              struct postern_storage_err *err);
int md_subscribe(postern_store_t *st, const char *name, int on,
                 struct postern_storage_err *err);
/* Modified UTF-7 (as Dovecot writes folder names) from and to UTF-8;
 * malloc'd, NULL if invalid. */
char *md_utf8_to_mutf7(const char *s);
char *md_mutf7_to_utf8(const char *s);

/* ---- maildir_uidlist.c --------------------------------------------- */

/* A uid list as read: basenames and their UIDs. */
struct md_uidlist {
	uint32_t uidvalidity, nextuid;
	int torn;             /* the last line was cut short (crash) */
	size_t n, cap;
	uint32_t *uids;
	char **bases;
};

/* 0 read, 1 absent, -1 unreadable or corrupt (logged). */
int md_uidlist_read(const char *dir, struct md_uidlist *ul);
void md_uidlist_free(struct md_uidlist *ul);
/* Appends "uid :base" lines for recs[from..nrec); fsyncs.  Creates the
 * file with a header when missing. */
int md_uidlist_append(const char *dir, struct md_state *s, uint32_t from);
/* Rewrites the whole list from `s` (tmp, fsync, rename). */
int md_uidlist_rewrite(const char *dir, struct md_state *s);
int md_keywords_read(const char *dir, struct md_state *s);
/* Replaces `path` whole: `fill` writes a temporary file beside it, which
 * is fsynced and renamed over `path`, so readers see the old file or the
 * new one, never a part. */
int md_replace_file(const char *path, int (*fill)(FILE *f, const void *arg),
                    const void *arg);
int md_keywords_write(const char *dir, const struct md_state *s);
/* Index of keyword `name`, adding it if `add`; -1 if absent or full. */
int md_keyword_index(struct md_state *s, const char *name, int add);

/* ---- maildir_index.c ----------------------------------------------- */

/* The base of a file name (before ':'), its length. */
size_t md_base_len(const char *name);
/* Flags and keywords from a file name's ":2," suffix. */
void md_name_flags(const char *name, uint32_t *flags, uint32_t *kw);
/* The file name for `base` with `flags`/`kw` in cur/ (malloc'd). */
char *md_name_make(const char *name, uint32_t flags, uint32_t kw);

int md_lock(const char *dir);        /* flock fd, or -1 (logged) */
void md_unlock(int fd);
/* Brings `s` up to date from the disk (index, uid list, new/, cur/),
 * writing what changed.  Call under the lock.  `s` is empty ({ 0 }) or
 * the state of an earlier refresh of the same mailbox: when the index is
 * the file read then, only the log's new entries are read.  After a
 * failure `s` must be freed (or refreshed again: it is then read whole). */
#define MD_REFRESH_RW 0x1    /* move new/ into cur/ as a read-write view */
#define MD_REFRESH_LIGHT 0x2 /* for adding messages: read no directory;
                                a full refresh later finds what others
                                added or removed */
int md_refresh(const char *dir, struct md_state *s, unsigned how);
/* 1 when a refresh of `s` now would read and change nothing: the index
 * and its log are the files the state followed, new/ and cur/ have the
 * (trusted) mtimes it recorded, the uid list its size.  0 otherwise, or
 * when telling would wait on the disk.  Without the lock: each file is
 * checked as it is now, so a change completed before the call is seen.
 * Any thread; reads `s` only. */
int md_state_unchanged(const char *dir, const struct md_state *s);
/* Records what changed since the state was read: appended to the change
 * log, or the index rewritten whole (and the log emptied) when the log
 * grew too large or the state was rebuilt. */
int md_index_write(const char *dir, struct md_state *s);
void md_state_free(struct md_state *s);
/* A closed view's state and records, kept for the next open of the
 * same mailbox in this process, which then reads only what changed
 * since (the index and the log are checked as for any kept state) and
 * reuses the records' memory and names.  park takes *s and *recs (or
 * frees them) and leaves them empty; adopt fills empty ones when `dir`
 * is parked.  Any thread. */
struct md_vrecs;
void md_vrecs_free(struct md_vrecs *r);
void md_state_park(const char *dir, struct md_state *s, struct md_vrecs *r);
void md_state_adopt(const char *dir, struct md_state *s, struct md_vrecs *r);
/* md_state_adopt only when ready(dir, parked state, parked records,
 * arg) says 1 (called under the park's mutex); 1 when adopted. */
int md_state_adopt_if(const char *dir, struct md_state *s,
                      struct md_vrecs *r,
                      int (*ready)(const char *, const struct md_state *,
                                   const struct md_vrecs *, void *),
                      void *arg);
void md_state_parked_free(void);
/* A number no state had before (process-wide, never reused). */
uint64_t md_state_gen(void);
/* Adds a record for the new file `name`; returns it (valid until the
 * next add). */
struct md_rec *md_state_add(struct md_state *s, const char *name);
/* Marks record i changed, for the change log. */
#define md_rec_touch(s, i) ((s)->recs[(i)].mark |= MD_MARK_CHANGED)
/* Keeps the records i with keep[i] != 0, in one pass; the others go in
 * the change log as expunged. */
void md_state_keep(struct md_state *s, const unsigned char *keep);
/* Index of `uid` in s->recs, or -1. */
long md_state_find(const struct md_state *s, uint32_t uid);
/* Fills size/rawsize/idate of a file (from its name, else stat/read). */
int md_file_info(const char *path, const char *name, struct md_rec *r);

/* ---- maildir_deliver.c --------------------------------------------- */

int md_append(postern_store_t *st, const char *name,
              const struct postern_append *msg, uint32_t *uid,
              uint32_t *uidvalidity, struct postern_storage_err *err);
int md_append_many(postern_store_t *st, const char *name,
                   const struct postern_append *const *msgs, size_t n,
                   uint32_t *uids, uint32_t *uidvalidity,
                   struct postern_storage_err *err);
/* append (to cur/ with flags) or, with `to_new`, a delivery to new/. */
int md_save(postern_store_t *st, const char *name,
            const struct postern_append *msg, int to_new, uint32_t *uid,
            uint32_t *uidvalidity, struct postern_storage_err *err);
int md_deliver(const struct postern_user *user, const char *mailbox,
               const struct postern_append *msg, uint32_t *uid,
               struct postern_storage_err *err);
/* A fresh unique base name "time.MusecPpid_Rrand.host" (malloc'd). */
char *md_unique_base(void);
int md_fsync_dir(const char *dir);

/* ---- maildir_view.c ------------------------------------------------ */

int md_open(postern_store_t *st, const char *name, unsigned mode,
            postern_mailbox_t **out, struct postern_storage_err *err);
void md_close(postern_mailbox_t *mb);
void md_status(postern_mailbox_t *mb, struct postern_mailbox_status *out);
uint32_t md_count(postern_mailbox_t *mb);
const struct postern_message_info *md_message(postern_mailbox_t *mb,
                                              uint32_t seq);
uint32_t md_seq_of_uid(postern_mailbox_t *mb, uint32_t uid);
int md_sync(postern_mailbox_t *mb, unsigned flags, postern_pool_t *pool,
            struct postern_sync_changes *out,
            struct postern_storage_err *err);
int md_store(postern_mailbox_t *mb, const struct postern_uid_range *uids,
             size_t nranges, enum postern_store_op op, uint32_t flags,
             const char *const *keywords, uint32_t nkeywords,
             uint64_t unchangedsince, postern_pool_t *pool,
             uint32_t **failed, size_t *nfailed,
             struct postern_storage_err *err);
int md_expunge(postern_mailbox_t *mb, const struct postern_uid_range *uids,
               size_t nranges, postern_pool_t *pool,
               struct postern_sync_changes *out,
               struct postern_storage_err *err);
/* Removes the messages in `uids` whatever their flags (MOVE). */
int md_expunge_uids(postern_mailbox_t *mb,
                    const struct postern_uid_range *uids, size_t nranges,
                    postern_pool_t *pool, struct postern_sync_changes *out,
                    struct postern_storage_err *err);
int md_copy(postern_mailbox_t *mb, const struct postern_uid_range *uids,
            size_t nranges, const char *dest, int move, postern_pool_t *pool,
            uint32_t **src_uids, uint32_t **dest_uids, size_t *n,
            uint32_t *dest_uidvalidity,
            struct postern_sync_changes *expunged,
            struct postern_storage_err *err);
/* maildir_watch.c: the process's one inotify instance. */
int md_watch(postern_mailbox_t *mb, void (*changed)(void *arg), void *arg);
/* Directories watched now (for tests and logs). */
size_t md_watch_dirs(void);
/* storage 1.6: a mailbox's directory or the store's list, watched by
 * name (maildir_watch.c). */
postern_mbwatch_t *md_watch_name(postern_store_t *st, const char *name,
                                 void (*changed)(void *arg), void *arg);
void md_unwatch_name(postern_mbwatch_t *w);
int md_sync_needed(postern_mailbox_t *mb);
int md_msg_open_nowait(postern_mailbox_t *mb, uint32_t uid,
                       postern_msg_t **out, struct postern_msg_size *sizes);
int md_status_by_name(postern_store_t *st, const char *name,
                      struct postern_mailbox_status *out,
                      struct postern_storage_err *err);
int md_status_nowait(postern_store_t *st, const char *name,
                     struct postern_mailbox_status *out);
int md_open_nowait(postern_store_t *st, const char *name, unsigned mode,
                   postern_mailbox_t **out);

/* ---- maildir_urlauth.c: URLAUTH mailbox access keys (storage 1.7) -- */

int md_access_key(postern_store_t *st, const char *name, unsigned op,
                  unsigned char *key, struct postern_storage_err *err);

/* ---- maildir_read.c ------------------------------------------------ */

int md_msg_open(postern_mailbox_t *mb, uint32_t uid, postern_msg_t **out,
                struct postern_msg_size *sizes,
                struct postern_storage_err *err);
ssize_t md_msg_read(postern_msg_t *msg, uint64_t offset, void *buf,
                    size_t len, struct postern_storage_err *err);
void md_msg_close(postern_msg_t *msg);
int md_msg_source(postern_msg_t *msg, int *fd, uint64_t *offset);
/* CRLF header size of the raw bytes. */
uint64_t md_header_size(const unsigned char *p, size_t len);
/* Opens the file of `uid` in the view (O_RDONLY), refreshing the view's
 * file names once when it was renamed under us; -1 when gone. */
int md_view_open_file(postern_mailbox_t *mb, uint32_t uid);
/* Path of the view record's file. */
void md_view_path(postern_mailbox_t *mb, uint32_t i, char *buf, size_t len);
/* The mailbox directory as a descriptor (O_PATH, opened at the first
 * call, closed by md_close), for openat and fstatat: a name relative to
 * it costs the kernel two lookups, not one per component of the whole
 * path, which a first SEARCH TEXT pays three times per message.  -1
 * when it cannot be opened. */
int md_dirfd(postern_mailbox_t *mb);
/* open / stat of `rel` ("cur/x", "postern.cache") in the mailbox
 * directory, through md_dirfd, else by its whole path. */
int md_openat(postern_mailbox_t *mb, const char *rel, int flags, mode_t mode);
int md_statat(postern_mailbox_t *mb, const char *rel, struct stat *sb);
/* The file of view record i (an index into mb->v), opened with `flags`
 * through md_openat; -1 with errno. */
int md_view_openat(postern_mailbox_t *mb, uint32_t i, int flags);

/* ---- maildir_quota.c ----------------------------------------------- */

/* The configured limits (storage_maildir.c sets them at init); 0: none. */
extern uint64_t md_quota_storage_limit, md_quota_message_limit;
int md_quota_enabled(void);
/* The user's usage from root/maildirsize, counted again from the
 * folders when needed.  -1 (logged) when the Maildir cannot be read. */
int md_quota_usage(const char *root, uint64_t *bytes, uint64_t *count);
/* 0 when `bytes` octets in `count` more messages stay within the limits,
 * else -1 with err set (POSTERN_SE_OVERQUOTA, or TEMP). */
int md_quota_check(const char *root, uint64_t bytes, uint64_t count,
                   struct postern_storage_err *err);
/* Records a change of the usage (saved, copied, expunged messages). */
void md_quota_add(const char *root, int64_t bytes, int64_t count);
/* The usage is to be counted again (a mailbox was deleted whole). */
void md_quota_forget(const char *root);
int md_quota_get(postern_store_t *st, struct postern_quota *out,
                 struct postern_storage_err *err);

/* ---- maildir_cache.c ----------------------------------------------- */

int md_cache_get(postern_mailbox_t *mb, uint32_t uid, const char *field,
                 postern_pool_t *pool, const void **data, size_t *len);
int md_cache_set(postern_mailbox_t *mb, uint32_t uid, const char *field,
                 const void *data, size_t len);
void md_cache_free(postern_mailbox_t *mb);

/* The view (shared by maildir_view.c, maildir_read.c, maildir_cache.c). */
struct md_vrec {
	struct md_rec r;
	char *name;
	int recent;
	int expunged;
};

/* A closed view's records (see md_state_park). */
struct md_vrecs {
	struct md_vrec *v;
	uint32_t n, cap;
	/* The state.gen the records equal (the view's state_gen when it
	 * held back nothing), or 0: then only a merge can reuse them. */
	uint64_t gen;
	struct md_counts counts; /* the view's, when counts.gen != 0 */
};

struct md_cache;

struct postern_mailbox {
	postern_store_t *st;
	char *dir;
	int dirfd;        /* O_PATH of dir, from md_dirfd; -1: not yet */
	unsigned mode;
	int exclfd;
	uint32_t uidvalidity, nextuid;
	uint64_t highestmodseq;
	struct md_vrec *v;
	uint32_t n, cap;
	uint32_t nrecent;
	int hdr_dirty;    /* header sizes learnt, not yet in the index */
	/* The index as the last operation left it, kept so the next one
	 * reads only what changed (md_refresh); read and changed only
	 * under the mailbox lock, freed after a failure. */
	struct md_state state;
	uint64_t state_gen; /* state.gen the records were last compared at */
	int held;           /* records kept, marked expunged (NO_EXPUNGE) */
	/* md_status's counts over the records (recent aside); counts.gen
	 * is 0 once the records changed, and they are counted again. */
	struct md_counts counts;
	struct md_cache *cache; /* maildir_cache.c, loaded on first use */
	char *kwnames[MD_MAX_KEYWORDS];
	uint32_t nkw;
	/* message() scratch */
	struct postern_message_info info;
	uint32_t kwidx[MD_MAX_KEYWORDS];
	char guid[64];
	/* watch (maildir_watch.c) */
	struct md_wdir *wdir;   /* the watched directory, NULL: none */
	int stale;              /* a change seen since the last sync began
	                           (atomic: set on the loop, cleared by
	                           the sync's job) */
	void (*changed)(void *);
	void *changed_arg;
};

#endif /* MAILDIR_H */
