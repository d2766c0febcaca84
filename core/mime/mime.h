/*
 * mime.h - the MIME parser and helpers behind the host table's mime_*
 * members (postern/mime.h documents the public side).
 *
 *   mime.c          the streaming parser: lines, boundaries, the tree
 *   mime_header.c   header fields, RFC 2045 tokens, Content-* fields,
 *                   RFC 2231 parameters, the envelope fields
 *   mime_address.c  RFC 5322 address lists with groups
 *   mime_date.c     RFC 5322 dates
 *   mime_decode.c   base64, quoted-printable, RFC 2047, charsets (iconv)
 *   mime_cache.c    the tree as a versioned byte string and back
 *
 * All of it is pure computation on the caller's memory and pools.
 */
#ifndef CORE_MIME_H
#define CORE_MIME_H

#include <postern/mime.h>

/* Defaults of struct postern_mime_limits. */
#define MIME_DEFAULT_MAX_DEPTH 64
#define MIME_DEFAULT_MAX_PARTS 10000
#define MIME_DEFAULT_MAX_HEADER (256u * 1024)
/* Longest boundary the parser recognises (RFC 2046 allows 70). */
#define MIME_MAX_BOUNDARY 250

/* ---- mime.c ---------------------------------------------------------- */

postern_mime_parser_t *mime_parser_create(postern_pool_t *pool,
                                          const struct postern_mime_limits *l);
void mime_parser_feed(postern_mime_parser_t *p, const void *data,
                      size_t len);
struct postern_mime_part *mime_parser_finish(postern_mime_parser_t *p);

/* ---- mime_header.c --------------------------------------------------- */

int mime_header_next(struct postern_mime_header_iter *it,
                     postern_pool_t *pool, struct postern_mime_field *field);

/* Fills the Content-* members of `part` (and its envelope when it is a
 * message) from its header hdr[0..len).  `in_digest`: the part is a
 * child of multipart/digest (default message/rfc822). */
void mime_header_apply(struct postern_mime_part *part, const char *hdr,
                       size_t len, int in_digest, postern_pool_t *pool);
/* The defaults of a part without a (valid) Content-Type. */
void mime_part_set_default_type(struct postern_mime_part *part,
                                int in_digest, postern_pool_t *pool);

/* RFC 5322 lexical helpers shared with mime_address.c and mime_date.c.
 * Each advances *i over s[0..len). */
void mime_skip_cfws(const char *s, size_t len, size_t *i);
/* Skips CFWS, returning the last comment's text (unescaped, from pool)
 * in *comment when comment is not NULL and a comment was seen. */
void mime_skip_cfws_comment(const char *s, size_t len, size_t *i,
                            postern_pool_t *pool, const char **comment);
/* A quoted-string starting at s[*i] == '"': its unescaped content, from
 * `pool`.  An unterminated string runs to the end. */
char *mime_quoted_string(const char *s, size_t len, size_t *i,
                         postern_pool_t *pool);

/* ---- mime_address.c, mime_date.c ------------------------------------- */

struct postern_mime_address *mime_parse_addresses(const char *value,
                                                  size_t len,
                                                  postern_pool_t *pool,
                                                  size_t *n);
int mime_parse_date(const char *value, size_t len, int64_t *when,
                    int *tz_minutes);

/* ---- mime_decode.c --------------------------------------------------- */

char *mime_decode_words(const char *value, size_t len, postern_pool_t *pool,
                        size_t *out_len);
char *mime_to_utf8(const char *charset, const void *data, size_t len,
                   postern_pool_t *pool, size_t *out_len);
postern_mime_decoder_t *mime_decoder_create(const char *encoding,
                                            const char *charset,
                                            postern_mime_out_fn out,
                                            void *arg);
void mime_decoder_feed(postern_mime_decoder_t *d, const void *data,
                       size_t len);
void mime_decoder_finish(postern_mime_decoder_t *d);
void mime_decoder_free(postern_mime_decoder_t *d);

/* ---- mime_encode.c --------------------------------------------------- */

postern_mime_encoder_t *mime_encoder_create(const char *encoding,
                                            postern_mime_out_fn out,
                                            void *arg);
void mime_encoder_feed(postern_mime_encoder_t *e, const void *data,
                       size_t len);
int mime_encoder_finish(postern_mime_encoder_t *e);
void mime_encoder_free(postern_mime_encoder_t *e);

/* ---- mime_cache.c ---------------------------------------------------- */

void *mime_serialize(const struct postern_mime_part *root,
                     postern_pool_t *pool, size_t *len);
struct postern_mime_part *mime_deserialize(const void *data, size_t len,
                                           postern_pool_t *pool);

#endif /* CORE_MIME_H */
