/*
 * pop3_maildrop.h - the session's snapshot of the mailbox (RFC 1939
 * section 5): message numbers, sizes, unique ids and deletion marks.
 *
 * POP3 numbers messages once, at login, and the numbers never change in
 * the session; DELE only marks a message, RSET unmarks every one, and
 * only QUIT in the TRANSACTION state removes the marked ones.  Pure code
 * (no host calls): the unit tests and the fuzz harness drive it.
 */
#ifndef POP3_MAILDROP_H
#define POP3_MAILDROP_H

#include <stddef.h>
#include <stdint.h>

#include <postern/storage.h>

/* RFC 1939 section 7: a unique-id is 1 to 70 characters 0x21-0x7E. */
#define POP3_UIDL_MAX 70

struct pop3_msg {
	uint32_t uid;          /* the storage UID (for msg_open, expunge) */
	uint64_t size;         /* octets with CRLF endings (LIST, STAT) */
	unsigned deleted : 1;  /* DELE'd in this session */
	unsigned seen : 1;     /* \Seen in the store, or marked by us */
	unsigned retrieved : 1; /* RETR'd in this session (EXPIRE 0) */
	char uidl[POP3_UIDL_MAX + 1];
};

struct pop3_maildrop {
	struct pop3_msg *msgs; /* malloc'd; msgs[n - 1] is message n */
	uint32_t count;
	uint32_t ndeleted;
	uint64_t total_size;   /* of every message, deleted or not */
	uint64_t deleted_size;
};

enum pop3_lookup {
	POP3_MSG_OK = 0,
	POP3_MSG_NONE,    /* no such message number */
	POP3_MSG_DELETED, /* marked by DELE */
};

/* Sizes the snapshot for `count` messages; 0, or -1 when out of memory.
 * An empty maildrop needs no memory. */
int pop3_maildrop_init(struct pop3_maildrop *d, uint32_t count);
/* Fills message n (1..count) from the storage's record. */
void pop3_maildrop_set(struct pop3_maildrop *d, uint32_t n, uint32_t uid,
                       uint64_t size, uint32_t flags, const char *guid);
void pop3_maildrop_free(struct pop3_maildrop *d);

/* Message n, or NULL with *why set (NONE or DELETED). */
struct pop3_msg *pop3_maildrop_get(struct pop3_maildrop *d, uint32_t n,
                                   enum pop3_lookup *why);
/* DELE: marks message n.  POP3_MSG_OK, NONE or DELETED (already). */
enum pop3_lookup pop3_maildrop_dele(struct pop3_maildrop *d, uint32_t n);
/* RSET: unmarks every message. */
void pop3_maildrop_rset(struct pop3_maildrop *d);
/* STAT: the messages not marked, and their size. */
uint32_t pop3_maildrop_visible(const struct pop3_maildrop *d);
uint64_t pop3_maildrop_visible_size(const struct pop3_maildrop *d);

/* The UIDs of the marked messages as ascending ranges (malloc'd into
 * *out, *n ranges; NULL and 0 when nothing is marked).  0, or -1 when out
 * of memory.  Snapshots are in UID order, so one pass does it. */
int pop3_maildrop_deleted_ranges(const struct pop3_maildrop *d,
                                 struct postern_uid_range **out, size_t *n);

/* The unique-id for a storage guid: the guid itself when it is a valid
 * RFC 1939 unique-id, else a hash of it (stable: the same guid always
 * gives the same id).  `out` holds POP3_UIDL_MAX + 1 bytes. */
void pop3_uidl_from_guid(const char *guid, char *out);

#endif /* POP3_MAILDROP_H */
