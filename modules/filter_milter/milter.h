/*
 * milter.h - filter_milter's parts: the Sendmail milter protocol
 * (version 6, as Postfix speaks it) and the state of one milter for one
 * SMTP session.
 *
 * The wire format: every packet is a 4-octet big-endian length (of what
 * follows), a command or reply letter, then its data; strings are NUL
 * terminated.  The MTA negotiates (SMFIC_OPTNEG) the actions the milter
 * may take and the steps it does not want, then sends one command per
 * SMTP stage and reads one reply, except for the steps the milter said
 * need no reply.  At end of message the milter sends its modifications
 * and then its final reply.
 */
#ifndef MILTER_H
#define MILTER_H

#include <stddef.h>
#include <stdint.h>

#include <postern/postern.h>
#include <postern/smtp.h>

#define MILTER_VERSION 6
/* libmilter refuses a packet whose data passes 65535 octets unless a
 * larger size was negotiated (which we do not ask for). */
#define MILTER_CHUNK 65535
/* A reply larger than this is a broken or hostile milter. */
#define MILTER_MAX_PACKET (1024 * 1024)

/* Commands (MTA to milter). */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_QUIT_NC 'K'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* Replies (milter to MTA). */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

/* Actions a milter may take (negotiated). */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u
#define SMFIF_ALL 0x1ffu

/* Protocol steps: what the milter does not want sent (NO*), or sent
 * without waiting for a reply (NR_*). */
#define SMFIP_NOCONNECT 0x01u
#define SMFIP_NOHELO 0x02u
#define SMFIP_NOMAIL 0x04u
#define SMFIP_NORCPT 0x08u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u
/* What we offer: every step but RCPT_REJ (rejected recipients are not
 * shown to milters). */
#define MILTER_PROTO_OFFER (0x1fffffu & ~SMFIP_RCPT_REJ)

/* Macro lists a milter may ask for (SMFIR_SETSYMLIST), by stage. */
enum milter_macro_stage {
	MM_CONNECT = 0,
	MM_HELO,
	MM_MAIL,
	MM_RCPT,
	MM_DATA,
	MM_EOM,
	MM_EOH,
	MM_STAGES,
};

enum milter_default {
	MILTER_DEFAULT_TEMPFAIL = 0,
	MILTER_DEFAULT_ACCEPT,
	MILTER_DEFAULT_REJECT,
};

/* One configured milter. */
struct milter {
	const char *name;
	const char *socket;        /* "inet:127.0.0.1:8891", "unix:/path" */
	long long connect_ms, command_ms, content_ms;
	int default_action;        /* enum milter_default */
	size_t index;              /* in the chain */
	char address[256];         /* numeric address, or a unix path */
	unsigned port;
};

/* An output buffer for one packet at a time. */
struct mbuf {
	unsigned char *p;
	size_t len, cap;
};

void mbuf_start(struct mbuf *b, char cmd);
void mbuf_add(struct mbuf *b, const void *data, size_t len);
void mbuf_str(struct mbuf *b, const char *s);
void mbuf_u32(struct mbuf *b, uint32_t v);
void mbuf_u16(struct mbuf *b, uint16_t v);
/* Fills in the length: the packet is b->p[0..b->len). */
void mbuf_end(struct mbuf *b);
void mbuf_free(struct mbuf *b);

/* Parses "inet:ADDR:PORT", "inet6:ADDR:PORT", "inet:[ADDR]:PORT",
 * "unix:/path" or "/path" (addresses numeric).  0, or -1. */
int milter_parse_socket(struct milter *m);

/* Reads the NUL-terminated string at *p in [*p, end): returns it and
 * moves *p past its NUL, or NULL when there is none. */
const char *milter_str(const unsigned char **p, const unsigned char *end);

/* "HDR value" with LF line ends (as milters expect) from a folded value
 * with CRLF; and back: CRLF line ends from LF (or CRLF), continuation
 * lines kept only when they start with white space.  malloc'd, or NULL
 * (a continuation line that does not start with white space). */
char *milter_lf_from_crlf(const char *v);
char *milter_crlf_from_lf(const char *v, size_t len);

#endif /* MILTER_H */
