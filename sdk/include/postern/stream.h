/*
 * postern/stream.h - a stored message streamed to a connection (ABI 1.12):
 * source -> transform -> connection, with back-pressure, written once in
 * the host so that protocol modules do not each carry a copy.
 *
 *   - The source is a region of a file (fd, offset, length: a queue
 *     file, a spool) or a reader the module supplies (a message opened
 *     through the storage API, read with msg_read).
 *   - The transform is none (BDAT chunks, a literal whose framing the
 *     module wrote), SMTP/POP3 dot-stuffing with the closing ".\r\n"
 *     (RFC 5321 section 4.5.2, RFC 1939 section 3; POP3 TOP's line
 *     limit), or an IMAP literal's "{n}\r\n" framing.
 *   - The stream writes to a postern connection and reads the next piece
 *     only while less than POSTERN_STREAM_HIGH_WATER octets wait unsent;
 *     it goes on when the connection drains.  So a client that never
 *     reads costs one fixed chunk (POSTERN_STREAM_CHUNK, twice that for
 *     dot-stuffing) and the mark, whatever the message's size.
 *   - Reads never block the loop: a file region is read with
 *     preadv2(RWF_NOWAIT) on the loop and, when the page cache does not
 *     have it, on a job thread; a module's reader runs on a job thread
 *     unless the module says its bytes are in memory.
 *
 * Dot-stuffing.  Every line that starts with '.' gets another '.' in
 * front; a line ends at LF, and a bare LF (one without CR before it)
 * goes out as CR LF, so that what the peer reads has only CRLF line
 * ends and no line a lax receiver could take for the end of data (the
 * "SMTP smuggling" of 2023).  A message whose last line lacks its CRLF
 * gets one (a lone CR at the very end gets its LF), then ".\r\n".  With
 * `lines` (POP3 TOP) only the header, the empty line after it, and that
 * many body lines go out.
 *
 * Literal framing.  "{length}\r\n" goes first, then the octets as they
 * are: the module says the exact length (an IMAP BODY[] or BINARY[]
 * partial is a region of the message, its offset and length).  A source
 * that ends before `length` octets fails the stream (POSTERN_ERROR): the
 * literal promised them and the protocol must close the connection.
 *
 * Threads: everything here is called on the worker's event loop; a
 * reader (struct postern_stream_source.read) runs on a job thread, or on
 * the loop with POSTERN_STREAM_IN_MEMORY.
 */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The octets read at a time, and the output kept waiting at most before
 * the stream stops reading. */
#define POSTERN_STREAM_CHUNK (64 * 1024)
#define POSTERN_STREAM_HIGH_WATER (128 * 1024)

typedef struct postern_stream postern_stream_t;

enum postern_stream_transform {
	POSTERN_STREAM_RAW = 0,      /* the octets as they are */
	POSTERN_STREAM_DOTSTUFF,     /* SMTP DATA, POP3 RETR/TOP */
	POSTERN_STREAM_LITERAL,      /* "{length}\r\n" then the octets */
};

/* Source flags. */
#define POSTERN_STREAM_IN_MEMORY 0x1u /* the reader never blocks: call it
                                         on the loop, no job */

/* A module's reader: up to `len` octets at `offset` (from the start of
 * the source) into buf; the count, 0 at the end, -1 on error.  `arg` is
 * the source's.  On a job thread (the loop with IN_MEMORY); one call at
 * a time per stream. */
typedef ssize_t (*postern_stream_read_fn)(void *arg, uint64_t offset,
                                          void *buf, size_t len);

struct postern_stream_source {
	size_t size;         /* sizeof(struct postern_stream_source) */
	/* A file region: fd >= 0, read with pread.  The stream reads its
	 * own duplicate: the module may close fd once stream_start
	 * returned. */
	int fd;
	uint64_t offset;     /* where the region starts in the file */
	/* The region's or the reader's octets (exact: fewer is a read
	 * error; the end of a reader's data before `length` is one too). */
	uint64_t length;
	/* fd < 0: the module's reader and its argument, which stay valid
	 * until done has run. */
	postern_stream_read_fn read;
	void *read_arg;
	unsigned flags;      /* POSTERN_STREAM_* */
};

struct postern_stream_spec {
	size_t size;         /* sizeof(struct postern_stream_spec) */
	enum postern_stream_transform transform;
	/* DOTSTUFF: 1 to send only the header and `lines` body lines (POP3
	 * TOP); 0 for the whole message. */
	int top;
	uint32_t lines;
};

/* The stream has ended, once, on the loop, never from inside
 * stream_start: POSTERN_OK when everything (the closing dot, the whole
 * literal) is queued on the connection, which the module may go on
 * writing to; POSTERN_ERROR when reading failed midway (logged, with
 * `arg`'s connection): the peer has part of the data and must not take
 * it for the whole, so the module closes the connection; POSTERN_CLOSED
 * when the connection went (or began closing) first.  For a file region
 * and for a reader not running at that moment, POSTERN_CLOSED comes
 * before the connection's on_close; when a reader runs on a job it comes
 * once the reader returned, which may be after on_close. */
typedef void (*postern_stream_done_fn)(void *arg, int status);

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_STREAM_H */
