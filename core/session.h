/*
 * session.h - the session layer (postern/session.h), behind the host
 * table's session_* members.  Event loop only, except as the SDK header
 * says.
 */
#ifndef CORE_SESSION_H
#define CORE_SESSION_H

#include <postern/host.h>
#include <postern/listen.h>
#include <postern/session.h>

/* Init: listeners for `p` from the list node, as module `owner`. */
int session_listen(const char *owner, const struct postern_protocol *p,
                   postern_cfg_t *list, postern_tls_t *tls);

/* Frees what session_listen kept (with the listeners, at teardown). */
void session_reset(void);

void *session_state(postern_session_t *s);
postern_conn_t *session_conn(postern_session_t *s);
const void *session_listener(postern_session_t *s);
void session_reply(postern_session_t *s, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
void session_write(postern_session_t *s, const void *data, size_t len);
void session_close(postern_session_t *s);
int session_closing(postern_session_t *s);
int session_error(postern_session_t *s);
void session_error_reset(postern_session_t *s);
int session_login_failed(postern_session_t *s);
void session_login_ok(postern_session_t *s);
void session_pause(postern_session_t *s);
void session_resume(postern_session_t *s);
void session_take_lines(postern_session_t *s, postern_session_line_fn fn);
void session_read_octets(postern_session_t *s, uint64_t n,
                         postern_session_octets_fn fn);
int session_read_line(postern_session_t *s, struct postern_line *l);
void session_hold_line(postern_session_t *s, const struct postern_line *l);
void session_job(postern_session_t *s, postern_session_work_fn work,
                 postern_session_done_fn done, void *arg);
void session_handles(postern_session_t *s, int open);
void session_ref(postern_session_t *s);
void session_unref(postern_session_t *s);

#endif /* CORE_SESSION_H */
