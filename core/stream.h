/*
 * stream.h - a stored message streamed to a connection
 * (postern/stream.h), behind host->stream_start.  Event loop only.
 */
#ifndef CORE_STREAM_H
#define CORE_STREAM_H

#include <postern/host.h>
#include <postern/stream.h>

int stream_start(postern_conn_t *c, const struct postern_stream_source *src,
                 const struct postern_stream_spec *spec,
                 postern_stream_done_fn done, void *arg);

/* From conn.c: the connection's output queue emptied while the stream
 * is attached (instead of the connection's on_drain). */
void stream_on_drain(struct postern_stream *st);
/* From conn.c: the connection goes, before its on_close. */
void stream_conn_gone(struct postern_stream *st);

#endif /* CORE_STREAM_H */
