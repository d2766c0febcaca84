/*
 * smtp_machine.c - running the state machine of smtp_state.h: the one
 * function every phase change goes through (smtp_enter), and the one
 * through which every asynchronous step reports (smtp_event), handed to
 * the handler of the state the session is in.
 *
 * The handlers live with what they handle (smtp_session.c: greeting,
 * HELO, STARTTLS; smtp_auth.c: AUTH; smtp_txn.c: MAIL to the reply after
 * the data; smtp_burl.c: BURL's fetch; smtp_filter.c: the end-of-message
 * stages).  A step is started
 * after its state is entered, as it may report at once (a stage without
 * handlers, a lookup without an auth service, a spool that needs no
 * write).
 */
#include <stdlib.h>

#include "smtp_session.h"

void
smtp_enter(struct smtp_session *s, enum smtp_state to)
{
	enum smtp_state from = s->state;

	/* Once closing, nothing moves: the steps still running only
	 * finish (a delivery logs its outcome). */
	if (from == to || from == SMTP_ST_CLOSED)
		return;
	if (!smtp_state_can(from, to)) {
		smtp_host->log(smtp_self, POSTERN_LOG_ERROR, "smtp: illegal "
		               "state change %s -> %s", smtp_state_name(from),
		               smtp_state_name(to));
#ifdef POSTERN_SANITIZERS
		abort();
#endif
	}
	if (s->conn != NULL)
		smtp_host->conn_log(s->conn, POSTERN_LOG_DEBUG,
		                    "smtp: state %s -> %s",
		                    smtp_state_name(from), smtp_state_name(to));
	s->state = to;
}

enum smtp_state
smtp_rest_state(const struct smtp_session *s)
{
	const struct postern_smtp_txn *t = &s->txn;

	if (t->pool == NULL)
		return s->greeted ? SMTP_ST_READY : SMTP_ST_HELO;
	if (t->bdat_failed)
		return SMTP_ST_CHUNK_FAILED;
	if (t->bdat)
		return SMTP_ST_CHUNKED;
	return t->nrcpts > 0 ? SMTP_ST_RCPT : SMTP_ST_MAIL;
}

typedef void (*smtp_event_fn)(struct smtp_session *s,
                              const struct smtp_event *ev);

/* What each state does with each event; no entry: the event cannot
 * come in that state. */
static const smtp_event_fn handlers[SMTP_ST_COUNT][SMTP_EV_COUNT] = {
	[SMTP_ST_CONNECT][SMTP_EV_VERDICT] = smtp_on_connect_verdict,
	[SMTP_ST_HELO_HOOK][SMTP_EV_VERDICT] = smtp_on_helo_verdict,
	[SMTP_ST_TLS_HOOK][SMTP_EV_VERDICT] = smtp_on_tls_verdict,
	[SMTP_ST_AUTH_STEP][SMTP_EV_SASL] = smtp_on_sasl,
	[SMTP_ST_AUTH_HOOK][SMTP_EV_VERDICT] = smtp_on_auth_verdict,
	[SMTP_ST_MAIL_CHECK][SMTP_EV_SENDER] = smtp_on_sender_checked,
	[SMTP_ST_MAIL_HOOK][SMTP_EV_VERDICT] = smtp_on_mail_verdict,
	[SMTP_ST_RCPT_LOOKUP][SMTP_EV_RESOLVED] = smtp_on_rcpt_resolved,
	[SMTP_ST_RCPT_HOOK][SMTP_EV_VERDICT] = smtp_on_rcpt_verdict,
	[SMTP_ST_DATA_HOOK][SMTP_EV_VERDICT] = smtp_on_data_verdict,
	[SMTP_ST_DATA][SMTP_EV_SPOOLED] = smtp_on_spilled,
	[SMTP_ST_BDAT_HOOK][SMTP_EV_VERDICT] = smtp_on_bdat_verdict,
	[SMTP_ST_BDAT][SMTP_EV_SPOOLED] = smtp_on_spilled,
	[SMTP_ST_BURL][SMTP_EV_FETCHED] = smtp_on_burl_fetched,
	[SMTP_ST_SYNC][SMTP_EV_SPOOLED] = smtp_on_synced,
	[SMTP_ST_EOM_HEADER][SMTP_EV_VERDICT] = smtp_on_header_verdict,
	[SMTP_ST_EOM_EOH][SMTP_EV_VERDICT] = smtp_on_eoh_verdict,
	[SMTP_ST_EOM_BODY][SMTP_EV_READ] = smtp_on_body_read,
	[SMTP_ST_EOM_BODY][SMTP_EV_VERDICT] = smtp_on_body_verdict,
	[SMTP_ST_EOM_EOD][SMTP_EV_VERDICT] = smtp_on_eod_verdict,
	[SMTP_ST_DELIVER][SMTP_EV_DELIVERED] = smtp_on_delivered,
	/* The client left during the delivery: its outcome is logged. */
	[SMTP_ST_CLOSED][SMTP_EV_DELIVERED] = smtp_on_delivered,
};

void
smtp_event(struct smtp_session *s, const struct smtp_event *ev)
{
	smtp_event_fn fn = handlers[s->state][ev->kind];

	if (fn == NULL) {
		/* A step reported in a state that started none: a bug,
		 * or the session closed meanwhile (then it is dropped). */
		if (s->state != SMTP_ST_CLOSED) {
			smtp_host->log(smtp_self, POSTERN_LOG_ERROR,
			               "smtp: event %s in state %s dropped",
			               smtp_event_name(ev->kind),
			               smtp_state_name(s->state));
#ifdef POSTERN_SANITIZERS
			abort();
#endif
		}
		return;
	}
	fn(s, ev);
}
