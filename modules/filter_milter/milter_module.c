/*
 * milter_module.c - filter_milter: hands SMTP transactions to Sendmail
 * milters (opendkim, rspamd's milter port, anything built on libmilter)
 * and applies their verdicts and changes, as Postfix's smtpd_milters do.
 *
 *	filter_milter = {
 *	  milters = (
 *	    { name = "opendkim"; socket = "inet:127.0.0.1:8891";
 *	      connect_timeout = "30s"; command_timeout = "30s";
 *	      content_timeout = "5m"; default_action = "tempfail"; }
 *	  );
 *	};
 *
 * Each milter is a chain of handlers on every SMTP stage, in the order
 * the milters are listed.  Each SMTP session gets its own connection to
 * each milter, opened at the connect stage and closed (SMFIC_QUIT) at
 * disconnect.  A milter that cannot be reached, breaks the protocol or
 * does not answer in time is dropped for the rest of the session, and
 * its default_action answers for it from then on: "accept" (go on
 * without it), "tempfail" (4xx) or "reject" (5xx).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "milter.h"

enum mc_state {
	MC_NONE = 0,     /* not consulted in this session */
	MC_NEGOTIATE,    /* options sent, waiting for the milter's */
	MC_READY,
	MC_DONE,         /* accepted the session: no more commands */
	MC_DEAD,         /* failed: default_action answers */
};

struct msess;

/* One milter for one SMTP session. */
struct mconn {
	struct msess *ms;
	const struct milter *m;
	postern_conn_t *conn;
	enum mc_state state;
	uint32_t actions, proto;
	char *macros[MM_STAGES];       /* names it asked for, or NULL */
	/* the stage waiting for this milter's reply */
	postern_hook_call_t *call;
	const struct postern_smtp_payload *payload;
	size_t piece_off;              /* body: octets of the chunk sent */
	int eom;                       /* end of message: changes may come */
	int quarantine;
	int in_txn, skip_msg, skip_body, discard_msg;
};

/* What filter_milter keeps for one SMTP session. */
struct msess {
	uint64_t id;
	struct msess *next;            /* hash chain */
	unsigned refs;                 /* the session + each open connection */
	size_t disc_left;              /* disconnect stages still to come */
	unsigned txns;
	struct mconn c[];              /* one per milter */
};

struct milter_settings {
	postern_cfg_t *milters;
};

static const char *const default_names[] = { "tempfail", "accept",
	                                      "reject", NULL };

/* The socket key's check, so a typo is reported at its line. */
static int
valid_socket(const void *field, char *err, size_t errlen)
{
	struct milter m = { .socket = *(const char *const *)field };

	if (m.socket == NULL || milter_parse_socket(&m) == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not inet:ADDRESS:PORT (a numeric "
	         "address) or unix:/path", m.socket);
	return -1;
}

static const struct postern_cfg_key milter_keys[] = {
	{ .name = "name", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct milter, name),
	  .flags = POSTERN_CFG_REQUIRED, .doc = "shown in logs" },
	{ .name = "socket", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct milter, socket),
	  .flags = POSTERN_CFG_REQUIRED, .validate = valid_socket,
	  .doc = "inet:ADDRESS:PORT (numeric) or unix:/path" },
	{ .name = "connect_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct milter, connect_ms), .def = "30s",
	  .min = 100, .max = 3600000, .doc = "to connect and negotiate" },
	{ .name = "command_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct milter, command_ms), .def = "30s",
	  .min = 100, .max = 3600000,
	  .doc = "for a reply to a command before the message" },
	{ .name = "content_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct milter, content_ms), .def = "5m",
	  .min = 100, .max = 3600000,
	  .doc = "for a reply to the header, body and end of message" },
	{ .name = "default_action", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct milter, default_action),
	  .def = "tempfail", .choices = default_names,
	  .doc = "when the milter fails: tempfail, accept or reject" },
	{ .name = NULL },
};

static const struct postern_cfg_key module_keys[] = {
	{ .name = "milters", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct milter_settings, milters),
	  .schema = milter_keys, .doc = "the milters, in the order they run" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static const struct postern_smtp_service *svc;
static struct milter *milters;
static size_t nmilters;
static char myhostname[256];

#define SESS_BUCKETS 1024
static struct msess *sessions[SESS_BUCKETS];
static struct mbuf out;

static void mc_fail(struct mconn *mc, const char *why);

/* ---- sessions --------------------------------------------------------- */

static struct msess **
sess_slot(uint64_t id)
{
	struct msess **pp = &sessions[id % SESS_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static struct msess *
sess_find(uint64_t id)
{
	return *sess_slot(id);
}

static struct msess *
sess_create(uint64_t id)
{
	struct msess **pp = sess_slot(id), *ms;
	size_t i;

	if (*pp != NULL)
		return *pp;
	ms = calloc(1, sizeof(*ms) + nmilters * sizeof(ms->c[0]));
	if (ms == NULL)
		abort();
	ms->id = id;
	ms->refs = 1;
	ms->disc_left = nmilters;
	for (i = 0; i < nmilters; i++) {
		ms->c[i].ms = ms;
		ms->c[i].m = &milters[i];
	}
	*pp = ms;
	return ms;
}

static void
sess_unref(struct msess *ms)
{
	size_t i, k;

	if (--ms->refs > 0)
		return;
	for (i = 0; i < nmilters; i++)
		for (k = 0; k < MM_STAGES; k++)
			free(ms->c[i].macros[k]);
	free(ms);
}

/* ---- waiting for a reply ---------------------------------------------- */

static void
pend(struct mconn *mc, postern_hook_call_t *call,
     const struct postern_smtp_payload *p, struct postern_verdict *v)
{
	mc->call = call;
	mc->payload = p;
	v->kind = POSTERN_VERDICT_PENDING;
	v->call_data = mc; /* for on_cancel */
}

static void
unpend(struct mconn *mc)
{
	mc->call = NULL;
	mc->payload = NULL;
	mc->eom = 0;
}

/* Answers the waiting stage.  The resume may run the session's next
 * stages at once, so the state is settled first. */
static void
answer(struct mconn *mc, const struct postern_verdict *v)
{
	postern_hook_call_t *call = mc->call;

	unpend(mc);
	if (call != NULL)
		host->hook_resume(call, v);
}

static void
default_verdict(const struct milter *m, struct postern_verdict *v)
{
	memset(v, 0, sizeof(*v));
	switch (m->default_action) {
	case MILTER_DEFAULT_ACCEPT:
		v->kind = POSTERN_VERDICT_CONTINUE;
		break;
	case MILTER_DEFAULT_REJECT:
		v->kind = POSTERN_VERDICT_REJECT;
		v->code = 550;
		v->enhanced = "5.7.1";
		v->text = "command rejected";
		break;
	default:
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		v->code = 451;
		v->enhanced = "4.7.1";
		v->text = "service unavailable, try again later";
		break;
	}
}

static enum postern_verdict_kind
timeout_kind(const struct milter *m)
{
	return m->default_action == MILTER_DEFAULT_ACCEPT
	           ? POSTERN_VERDICT_CONTINUE
	           : m->default_action == MILTER_DEFAULT_REJECT
	                 ? POSTERN_VERDICT_REJECT
	                 : POSTERN_VERDICT_TEMPFAIL;
}

/* ---- sending ---------------------------------------------------------- */

static void
send_packet(struct mconn *mc)
{
	mbuf_end(&out);
	host->conn_write(mc->conn, out.p, out.len);
}

static void
send_empty(struct mconn *mc, char cmd)
{
	mbuf_start(&out, cmd);
	send_packet(mc);
}

static const char *
domain_of(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	return at != NULL ? at + 1 : "";
}

/* The value of macro `name` at this stage, or NULL (not sent). */
static const char *
macro_value(struct mconn *mc, const struct postern_smtp_payload *p,
            const char *name, char *buf, size_t len)
{
	const struct postern_smtp_session_info *si = p->session;
	const struct postern_relay_envelope *env = p->envelope;

	if (strcmp(name, "j") == 0)
		return myhostname;
	if (strcmp(name, "_") == 0) {
		snprintf(buf, len, "unknown [%s]", si->peer);
		return buf;
	}
	if (strcmp(name, "{daemon_name}") == 0)
		return si->listener;
	if (strcmp(name, "{client_addr}") == 0)
		return si->peer;
	if (strcmp(name, "{client_port}") == 0) {
		snprintf(buf, len, "%u", si->peer_port);
		return buf;
	}
	if (strcmp(name, "{client_name}") == 0 ||
	    strcmp(name, "{client_ptr}") == 0)
		return "unknown";
	if (strcmp(name, "v") == 0)
		return "postern";
	if (strcmp(name, "{tls_version}") == 0)
		return si->tls_version;
	if (strcmp(name, "{cipher}") == 0)
		return si->tls_cipher;
	if (strcmp(name, "{auth_authen}") == 0)
		return si->auth_user;
	if (strcmp(name, "i") == 0) {
		/* The transaction's id, as SMTP logs it; an older SMTP
		 * module's envelope has none: the session and its
		 * transaction number stand in. */
		if (env != NULL && POSTERN_SIZED_HAS(env, id) && env->id != NULL)
			return env->id;
		snprintf(buf, len, "%llX.%u", (unsigned long long)si->id,
		         mc->ms->txns);
		return buf;
	}
	if (env == NULL)
		return NULL;
	if (strcmp(name, "{mail_addr}") == 0)
		return env->sender;
	if (strcmp(name, "{mail_host}") == 0)
		return domain_of(env->sender);
	if (strcmp(name, "{mail_mailer}") == 0 ||
	    strcmp(name, "{rcpt_mailer}") == 0)
		return "smtp";
	if (p->rcpt != NULL && strcmp(name, "{rcpt_addr}") == 0)
		return p->rcpt->address;
	if (p->rcpt != NULL && strcmp(name, "{rcpt_host}") == 0)
		return domain_of(p->rcpt->address);
	return NULL;
}

static const char *const default_macros[MM_STAGES] = {
	[MM_CONNECT] = "j {daemon_name} {client_addr} {client_port} "
	               "{client_name} _ v",
	[MM_HELO] = "{tls_version} {cipher}",
	[MM_MAIL] = "i {auth_authen} {mail_addr} {mail_host} {mail_mailer}",
	[MM_RCPT] = "{rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[MM_DATA] = "i",
	[MM_EOM] = "i",
	[MM_EOH] = "i",
};

/* SMFIC_MACRO for the command `cmd`, with the stage's macros. */
static void
send_macros(struct mconn *mc, const struct postern_smtp_payload *p,
            enum milter_macro_stage stage, char cmd)
{
	const char *list = mc->macros[stage] != NULL ? mc->macros[stage]
	                                             : default_macros[stage];
	char name[64], buf[320];
	const char *value, *s = list, *e;
	size_t n, count = 0;

	mbuf_start(&out, SMFIC_MACRO);
	mbuf_add(&out, &cmd, 1);
	while (*s != '\0') {
		while (*s == ' ' || *s == ',')
			s++;
		for (e = s; *e != '\0' && *e != ' ' && *e != ','; e++)
			;
		n = (size_t)(e - s);
		if (n > 0 && n < sizeof(name)) {
			memcpy(name, s, n);
			name[n] = '\0';
			/* "{x}" and "x" name the same macro */
			if ((value = macro_value(mc, p, name, buf,
			                         sizeof(buf))) == NULL &&
			    n > 2 && name[0] == '{') {
				memmove(name, name + 1, n - 2);
				name[n - 2] = '\0';
				value = macro_value(mc, p, name, buf,
				                    sizeof(buf));
				memmove(name + 1, name, n - 2);
				name[0] = '{';
				name[n - 1] = '}';
				name[n] = '\0';
			}
			if (value != NULL) {
				mbuf_str(&out, name);
				mbuf_str(&out, value);
				count++;
			}
		}
		s = e;
	}
	if (count > 0)
		send_packet(mc);
}

static void
send_connect(struct mconn *mc, const struct postern_smtp_payload *p)
{
	const char *peer = p->session->peer;
	char hostname[300];

	send_macros(mc, p, MM_CONNECT, SMFIC_CONNECT);
	snprintf(hostname, sizeof(hostname), "[%s]", peer);
	mbuf_start(&out, SMFIC_CONNECT);
	mbuf_str(&out, hostname);
	if (strcmp(peer, "unix") == 0) {
		mbuf_add(&out, "U", 1);
	} else {
		mbuf_add(&out, strchr(peer, ':') != NULL ? "6" : "4", 1);
		mbuf_u16(&out, (uint16_t)p->session->peer_port);
		mbuf_str(&out, peer);
	}
	send_packet(mc);
}

static void
send_optneg(struct mconn *mc)
{
	mbuf_start(&out, SMFIC_OPTNEG);
	mbuf_u32(&out, MILTER_VERSION);
	mbuf_u32(&out, SMFIF_ALL);
	mbuf_u32(&out, MILTER_PROTO_OFFER);
	send_packet(mc);
}

/* "<address>" then the ESMTP parameters the envelope still knows. */
static void
send_mail(struct mconn *mc, const struct postern_smtp_payload *p)
{
	const struct postern_relay_envelope *env = p->envelope;
	char buf[1100];

	send_macros(mc, p, MM_MAIL, SMFIC_MAIL);
	mbuf_start(&out, SMFIC_MAIL);
	snprintf(buf, sizeof(buf), "<%s>", env->sender);
	mbuf_str(&out, buf);
	if (env->size_param > 0) {
		snprintf(buf, sizeof(buf), "SIZE=%llu",
		         (unsigned long long)env->size_param);
		mbuf_str(&out, buf);
	}
	if (env->body == POSTERN_BODY_8BITMIME)
		mbuf_str(&out, "BODY=8BITMIME");
	else if (env->body == POSTERN_BODY_BINARYMIME)
		mbuf_str(&out, "BODY=BINARYMIME");
	if (env->smtputf8)
		mbuf_str(&out, "SMTPUTF8");
	send_packet(mc);
}

static void
send_header(struct mconn *mc, const struct postern_smtp_payload *p)
{
	const char *v = p->header_value;
	char *lf;

	if (!(mc->proto & SMFIP_HDR_LEADSPC))
		while (*v == ' ' || *v == '\t')
			v++;
	lf = milter_lf_from_crlf(v);
	mbuf_start(&out, SMFIC_HEADER);
	mbuf_str(&out, p->header_name);
	mbuf_str(&out, lf);
	free(lf);
	send_packet(mc);
}

/* The next piece of a body chunk; 1 while more remain after it. */
static int
send_body_piece(struct mconn *mc, const struct postern_smtp_payload *p)
{
	size_t n = p->chunk_len - mc->piece_off;

	if (n > MILTER_CHUNK)
		n = MILTER_CHUNK;
	mbuf_start(&out, SMFIC_BODY);
	mbuf_add(&out, (const char *)p->chunk + mc->piece_off, n);
	send_packet(mc);
	mc->piece_off += n;
	return mc->piece_off < p->chunk_len;
}

/* ---- the milter's replies --------------------------------------------- */

static char *
strip_brackets(const char *a)
{
	size_t n = strlen(a);

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
		return strndup(a + 1, n - 2);
	return strdup(a);
}

static void
mod_failed(struct mconn *mc, const char *what)
{
	host->log(self, POSTERN_LOG_WARNING, "filter_milter: %s: session "
	          "%llu: %s refused (not allowed, malformed, or no "
	          "transaction)", mc->m->name,
	          (unsigned long long)mc->ms->id, what);
}

/* The header changes: name and value from the packet. */
static void
apply_header(struct mconn *mc, char cmd, uint32_t idx,
             const unsigned char *d, const unsigned char *end)
{
	postern_smtp_txn_t *txn = mc->payload->txn;
	const char *name = milter_str(&d, end), *value = milter_str(&d, end);
	char *crlf;
	int rc;

	if (name == NULL || value == NULL) {
		mod_failed(mc, "a header change");
		return;
	}
	if ((crlf = milter_crlf_from_lf(value, strlen(value))) == NULL) {
		mod_failed(mc, "a header value");
		return;
	}
	if (cmd == SMFIR_ADDHEADER)
		rc = svc->header_add(txn, name, crlf, 0);
	else if (cmd == SMFIR_INSHEADER)
		rc = svc->header_insert(txn, idx, name, crlf);
	else
		rc = svc->header_change(txn, name, idx > 0 ? idx : 1,
		                        *crlf != '\0' ? crlf : NULL);
	free(crlf);
	if (rc < 0)
		mod_failed(mc, "a header change");
}

/* A change at end of message: 1 if `cmd` was one, 0 if not. */
static int
apply_change(struct mconn *mc, char cmd, const unsigned char *d,
             const unsigned char *end)
{
	static const struct { char cmd; uint32_t action; } need[] = {
		{ SMFIR_ADDHEADER, SMFIF_ADDHDRS },
		{ SMFIR_INSHEADER, SMFIF_ADDHDRS },
		{ SMFIR_CHGHEADER, SMFIF_CHGHDRS },
		{ SMFIR_ADDRCPT, SMFIF_ADDRCPT },
		{ SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR },
		{ SMFIR_DELRCPT, SMFIF_DELRCPT },
		{ SMFIR_CHGFROM, SMFIF_CHGFROM },
		{ SMFIR_REPLBODY, SMFIF_CHGBODY },
		{ SMFIR_QUARANTINE, SMFIF_QUARANTINE },
	};
	postern_smtp_txn_t *txn = mc->payload->txn;
	const char *a, *args;
	char *addr;
	uint32_t idx = 0;
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (need[i].cmd == cmd)
			break;
	if (i == sizeof(need) / sizeof(need[0]))
		return 0;
	if (!(mc->actions & need[i].action)) {
		mod_failed(mc, "a change it did not negotiate");
		return 1;
	}
	switch (cmd) {
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (end - d < 4) {
			mod_failed(mc, "a header change");
			return 1;
		}
		idx = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		      (uint32_t)d[2] << 8 | d[3];
		d += 4;
		/* fall through */
	case SMFIR_ADDHEADER:
		apply_header(mc, cmd, idx, d, end);
		return 1;
	case SMFIR_REPLBODY:
		if (svc->body_replace(txn, d, (size_t)(end - d)) < 0)
			mod_failed(mc, "a new body");
		return 1;
	case SMFIR_QUARANTINE:
		a = milter_str(&d, end);
		mc->quarantine = 1;
		host->log(self, POSTERN_LOG_NOTICE, "filter_milter: %s: "
		          "session %llu: quarantine: %s", mc->m->name,
		          (unsigned long long)mc->ms->id, a != NULL ? a : "");
		return 1;
	default:
		break;
	}
	if ((a = milter_str(&d, end)) == NULL) {
		mod_failed(mc, "an envelope change");
		return 1;
	}
	args = milter_str(&d, end);
	addr = strip_brackets(a);
	if (addr == NULL)
		abort();
	if (cmd == SMFIR_ADDRCPT || cmd == SMFIR_ADDRCPT_PAR)
		rc = svc->rcpt_add(txn, addr);
	else if (cmd == SMFIR_DELRCPT)
		rc = svc->rcpt_remove(txn, addr);
	else
		rc = svc->sender_change(txn, addr,
		                        args != NULL && *args ? args : NULL);
	free(addr);
	if (rc < 0)
		mod_failed(mc, "an envelope change");
	return 1;
}

/* SMFIR_REPLYCODE: "550 5.7.1 text" (a multi-line reply's first line). */
static void
reply_code(const unsigned char *d, const unsigned char *end,
           struct postern_verdict *v, char *enh, size_t enhlen,
           char *text, size_t textlen)
{
	const char *s = milter_str(&d, end), *p;
	size_t n;

	if (s == NULL || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
	    (s[0] != '4' && s[0] != '5')) {
		v->kind = POSTERN_VERDICT_TEMPFAIL; /* a broken reply */
		return;
	}
	v->kind = s[0] == '5' ? POSTERN_VERDICT_REJECT
	                      : POSTERN_VERDICT_TEMPFAIL;
	v->code = (unsigned)(s[0] - '0') * 100 +
	          (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
	p = s + 3;
	if (*p == ' ' || *p == '-')
		p++;
	n = strspn(p, "0123456789.");
	if (n >= 5 && n < enhlen && p[0] == s[0] && p[n] == ' ') {
		memcpy(enh, p, n);
		enh[n] = '\0';
		v->enhanced = enh;
		p += n + 1;
	}
	n = strcspn(p, "\r\n");
	snprintf(text, textlen, "%.*s", (int)n, p);
	v->text = text;
}

/* A final reply to the waiting stage. */
static void
final_reply(struct mconn *mc, char cmd, const unsigned char *d,
            const unsigned char *end)
{
	enum postern_smtp_stage stage = mc->payload->stage;
	struct postern_verdict v = { 0 };
	char enh[16], text[512];

	v.kind = POSTERN_VERDICT_CONTINUE;
	switch (cmd) {
	case SMFIR_CONTINUE:
		break;
	case SMFIR_ACCEPT:
		/* For this milter only: the session, or this message. */
		if (stage <= POSTERN_SMTP_HELO)
			mc->state = MC_DONE;
		else
			mc->skip_msg = 1;
		break;
	case SMFIR_REJECT:
		v.kind = POSTERN_VERDICT_REJECT;
		break;
	case SMFIR_TEMPFAIL:
		v.kind = POSTERN_VERDICT_TEMPFAIL;
		break;
	case SMFIR_DISCARD:
		if (stage >= POSTERN_SMTP_DATA)
			v.kind = POSTERN_VERDICT_DISCARD;
		else if (stage >= POSTERN_SMTP_MAIL)
			mc->skip_msg = mc->discard_msg = 1;
		break;
	case SMFIR_REPLYCODE:
		reply_code(d, end, &v, enh, sizeof(enh), text, sizeof(text));
		break;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		v.kind = POSTERN_VERDICT_TEMPFAIL;
		v.code = 421;
		v.enhanced = "4.7.0";
		v.text = "service unavailable, closing the connection";
		v.flags = POSTERN_VERDICT_DISCONNECT;
		break;
	case SMFIR_SKIP:
		if (stage == POSTERN_SMTP_BODY)
			mc->skip_body = 1;
		break;
	}
	if (stage == POSTERN_SMTP_EOD) {
		mc->in_txn = 0;
		if (mc->quarantine && v.kind == POSTERN_VERDICT_CONTINUE)
			v.kind = POSTERN_VERDICT_QUARANTINE;
		mc->quarantine = 0;
	}
	answer(mc, &v);
}

static void
negotiated(struct mconn *mc, const unsigned char *d, const unsigned char *end)
{
	const struct postern_smtp_payload *p = mc->payload;
	struct postern_verdict v = { .kind = POSTERN_VERDICT_CONTINUE };
	uint32_t w[3], where;
	const char *list;
	size_t i;

	if (end - d < 12) {
		mc_fail(mc, "a short option negotiation");
		return;
	}
	for (i = 0; i < 3; i++, d += 4)
		w[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		       (uint32_t)d[2] << 8 | d[3];
	if (w[0] < 2) {
		mc_fail(mc, "a milter protocol version below 2");
		return;
	}
	mc->actions = w[1] & SMFIF_ALL;
	mc->proto = w[2] & MILTER_PROTO_OFFER;
	/* Then (stage, macro names) pairs: the macros it wants. */
	while (end - d >= 4) {
		where = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		        (uint32_t)d[2] << 8 | d[3];
		d += 4;
		if ((list = milter_str(&d, end)) == NULL)
			break;
		if (where < MM_STAGES && (mc->actions & SMFIF_SETSYMLIST)) {
			free(mc->macros[where]);
			if ((mc->macros[where] = strdup(list)) == NULL)
				abort();
		}
	}
	mc->state = MC_READY;
	if (mc->proto & SMFIP_NOCONNECT) {
		answer(mc, &v);
		return;
	}
	send_connect(mc, p);
	if (mc->proto & SMFIP_NR_CONN)
		answer(mc, &v);
}

static void
packet(struct mconn *mc, char cmd, const unsigned char *d,
       const unsigned char *end)
{
	if (mc->call == NULL) {
		mc_fail(mc, "a reply nobody asked for");
		return;
	}
	if (mc->state == MC_NEGOTIATE) {
		if (cmd != SMFIC_OPTNEG)
			mc_fail(mc, "no option negotiation");
		else
			negotiated(mc, d, end);
		return;
	}
	if (cmd == SMFIR_PROGRESS)
		return; /* the stage's own timeout still holds */
	if (mc->eom && apply_change(mc, cmd, d, end))
		return;
	if (strchr("cartdy4fs", cmd) == NULL || cmd == '\0') {
		mc_fail(mc, "an unknown or misplaced reply");
		return;
	}
	if (cmd == SMFIR_CONTINUE &&
	    mc->payload->stage == POSTERN_SMTP_BODY &&
	    mc->piece_off < mc->payload->chunk_len) {
		send_body_piece(mc, mc->payload);
		return; /* and wait for its reply */
	}
	final_reply(mc, cmd, d, end);
}

static void
mc_on_read(postern_conn_t *c, void *arg)
{
	struct mconn *mc = arg;
	const unsigned char *data;
	const void *raw;
	size_t len;
	uint32_t n;

	while (mc->conn == c && mc->state != MC_DEAD &&
	       host->conn_peek(c, &raw, &len) == POSTERN_OK) {
		data = raw;
		if (len < 4)
			return;
		n = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
		    (uint32_t)data[2] << 8 | data[3];
		if (n == 0 || n > MILTER_MAX_PACKET) {
			mc_fail(mc, "a packet of a wrong size");
			return;
		}
		if (len - 4 < n)
			return; /* the host buffers up to max_input */
		packet(mc, (char)data[4], data + 5, data + 4 + n);
		host->conn_consume(c, 4 + n);
	}
}

static void
mc_on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct mconn *mc = arg;
	struct msess *ms = mc->ms;
	const char *err = host->conn_error(c);

	(void)why;
	if (mc->conn == c) {
		mc->conn = NULL;
		if (mc->state != MC_DEAD && mc->state != MC_DONE &&
		    (mc->call != NULL || mc->in_txn))
			mc_fail(mc, err != NULL ? err
			                        : "the milter closed the "
			                          "connection");
		mc->state = MC_DEAD;
	}
	sess_unref(ms);
}

static const struct postern_conn_ops mc_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = mc_on_read,
	.on_close = mc_on_close,
};

/* The milter is out of step or gone: it is dropped for the session, and
 * a waiting stage gets the default action. */
static void
mc_fail(struct mconn *mc, const char *why)
{
	struct postern_verdict v;

	host->log(self, POSTERN_LOG_WARNING, "filter_milter: %s (%s): "
	          "session %llu: %s; default_action %s from now on",
	          mc->m->name, mc->m->socket, (unsigned long long)mc->ms->id,
	          why, default_names[mc->m->default_action]);
	mc->state = MC_DEAD;
	if (mc->conn != NULL) {
		postern_conn_t *c = mc->conn;

		mc->conn = NULL;
		host->conn_close(c);
	}
	if (mc->call != NULL) {
		default_verdict(mc->m, &v);
		answer(mc, &v);
	}
}

static int
mc_open(struct mconn *mc)
{
	struct postern_connect_spec spec = { .size = sizeof(spec) };
	char err[256];

	spec.name = mc->m->name;
	spec.address = mc->m->address;
	spec.port = mc->m->port;
	spec.connect_ms = (unsigned)mc->m->connect_ms;
	spec.limits.size = sizeof(spec.limits);
	/* Between commands a milter waits as long as the client may; the
	 * stages' own timeouts bound each reply. */
	spec.limits.idle_ms = 3600 * 1000;
	spec.limits.max_input = 2 * MILTER_MAX_PACKET;
	spec.ops = &mc_ops;
	spec.arg = mc;
	mc->conn = host->conn_connect(self, &spec, err, sizeof(err));
	if (mc->conn == NULL) {
		host->log(self, POSTERN_LOG_WARNING, "filter_milter: %s: "
		          "cannot connect to %s: %s", mc->m->name,
		          mc->m->socket, err);
		mc->state = MC_DEAD;
		return -1;
	}
	mc->ms->refs++;
	return 0;
}

/* ---- the stages ------------------------------------------------------- */

static const char *const stage_names[] = {
	"connect", "helo", "starttls", "auth", "mail", "rcpt", "data",
	"header", "eoh", "body", "eod", "reset", "disconnect",
};
#define NSTAGES (sizeof(stage_names) / sizeof(stage_names[0]))

static void
on_connect(struct mconn *mc, postern_hook_call_t *call,
           const struct postern_smtp_payload *p, struct postern_verdict *v)
{
	if (mc->state != MC_NONE)
		return;
	if (mc_open(mc) < 0) {
		default_verdict(mc->m, v);
		return;
	}
	mc->state = MC_NEGOTIATE;
	send_optneg(mc);
	pend(mc, call, p, v);
}

/* Sends the stage's command; 1 when a reply is to be waited for. */
static int
send_stage(struct mconn *mc, const struct postern_smtp_payload *p)
{
	uint32_t pr = mc->proto;

	switch (p->stage) {
	case POSTERN_SMTP_HELO:
		if ((pr & SMFIP_NOHELO) || p->session->helo == NULL)
			return 0;
		send_macros(mc, p, MM_HELO, SMFIC_HELO);
		mbuf_start(&out, SMFIC_HELO);
		mbuf_str(&out, p->session->helo);
		send_packet(mc);
		return !(pr & SMFIP_NR_HELO);
	case POSTERN_SMTP_MAIL:
		mc->ms->txns++;
		mc->in_txn = 1;
		if (pr & SMFIP_NOMAIL)
			return 0;
		send_mail(mc, p);
		return !(pr & SMFIP_NR_MAIL);
	case POSTERN_SMTP_RCPT:
		if (pr & SMFIP_NORCPT)
			return 0;
		send_macros(mc, p, MM_RCPT, SMFIC_RCPT);
		mbuf_start(&out, SMFIC_RCPT);
		{
			char buf[1100];

			snprintf(buf, sizeof(buf), "<%s>", p->rcpt->address);
			mbuf_str(&out, buf);
		}
		send_packet(mc);
		return !(pr & SMFIP_NR_RCPT);
	case POSTERN_SMTP_DATA:
		if (pr & SMFIP_NODATA)
			return 0;
		send_macros(mc, p, MM_DATA, SMFIC_DATA);
		send_empty(mc, SMFIC_DATA);
		return !(pr & SMFIP_NR_DATA);
	case POSTERN_SMTP_HEADER:
		if (pr & SMFIP_NOHDRS)
			return 0;
		send_header(mc, p);
		return !(pr & SMFIP_NR_HDR);
	case POSTERN_SMTP_EOH:
		if (pr & SMFIP_NOEOH)
			return 0;
		send_macros(mc, p, MM_EOH, SMFIC_EOH);
		send_empty(mc, SMFIC_EOH);
		return !(pr & SMFIP_NR_EOH);
	case POSTERN_SMTP_BODY:
		if ((pr & SMFIP_NOBODY) || mc->skip_body || p->chunk_len == 0)
			return 0;
		mc->piece_off = 0;
		if (pr & SMFIP_NR_BODY) {
			while (send_body_piece(mc, p))
				;
			return 0;
		}
		send_body_piece(mc, p); /* the rest after its reply */
		return 1;
	case POSTERN_SMTP_EOD:
		send_macros(mc, p, MM_EOM, SMFIC_BODYEOB);
		send_empty(mc, SMFIC_BODYEOB);
		mc->eom = 1;
		return 1;
	default:
		return 0; /* starttls, auth: no milter command */
	}
}

static void
on_reset(struct mconn *mc)
{
	if (mc->in_txn && mc->conn != NULL && mc->state == MC_READY)
		send_empty(mc, SMFIC_ABORT);
	mc->in_txn = mc->skip_msg = mc->skip_body = mc->discard_msg = 0;
	mc->quarantine = 0;
}

static void
on_disconnect(struct mconn *mc)
{
	struct msess *ms = mc->ms;

	if (mc->conn != NULL) {
		if (mc->state == MC_READY || mc->state == MC_DONE)
			send_empty(mc, SMFIC_QUIT);
		mc->state = MC_DEAD;
		host->conn_close(mc->conn); /* on_close drops its ref */
	}
	mc->state = MC_DEAD;
	if (--ms->disc_left == 0) {
		*sess_slot(ms->id) = ms->next;
		sess_unref(ms);
	}
}

static void
on_stage(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	const struct milter *m = arg;
	struct msess *ms;
	struct mconn *mc;

	v->kind = POSTERN_VERDICT_CONTINUE;
	ms = p->stage == POSTERN_SMTP_CONNECT ? sess_create(p->session->id)
	                                      : sess_find(p->session->id);
	if (ms == NULL)
		return; /* the session began before this chain ran */
	mc = &ms->c[m->index];
	host->log(self, POSTERN_LOG_DEBUG, "filter_milter: %s: session "
	          "%llu: %s", m->name, (unsigned long long)ms->id,
	          (size_t)p->stage < NSTAGES ? stage_names[p->stage] : "?");
	switch (p->stage) {
	case POSTERN_SMTP_CONNECT:
		on_connect(mc, call, p, v);
		return;
	case POSTERN_SMTP_RESET:
		on_reset(mc);
		return;
	case POSTERN_SMTP_DISCONNECT:
		on_disconnect(mc);
		return;
	default:
		break;
	}
	if (mc->state == MC_DEAD) {
		default_verdict(m, v);
		return;
	}
	if (mc->state != MC_READY || mc->call != NULL)
		return;
	if (p->stage >= POSTERN_SMTP_DATA && mc->skip_msg) {
		if (p->stage == POSTERN_SMTP_EOD && mc->discard_msg)
			v->kind = POSTERN_VERDICT_DISCARD;
		return;
	}
	if (p->stage > POSTERN_SMTP_MAIL && mc->skip_msg)
		return;
	if (p->stage == POSTERN_SMTP_MAIL)
		mc->skip_msg = mc->skip_body = mc->discard_msg = 0;
	if (send_stage(mc, p))
		pend(mc, call, p, v);
}

/* The client left, or the stage's timeout struck: the milter's reply
 * to come would be out of step, so it is dropped for the session. */
static void
on_cancel(postern_hook_call_t *call, void *arg, void *call_data)
{
	struct mconn *mc = call_data;

	(void)arg;
	if (mc == NULL || mc->call != call)
		return;
	unpend(mc);
	mc_fail(mc, "no answer in time, or the client left");
}

/* ---- init ------------------------------------------------------------- */

static const char *const stage_hooks[] = {
	POSTERN_SMTP_HOOK_CONNECT, POSTERN_SMTP_HOOK_HELO,
	POSTERN_SMTP_HOOK_MAIL, POSTERN_SMTP_HOOK_RCPT,
	POSTERN_SMTP_HOOK_DATA, POSTERN_SMTP_HOOK_HEADER,
	POSTERN_SMTP_HOOK_EOH, POSTERN_SMTP_HOOK_BODY,
	POSTERN_SMTP_HOOK_EOD, POSTERN_SMTP_HOOK_RESET,
	POSTERN_SMTP_HOOK_DISCONNECT,
};

static int
register_milter(struct milter *m)
{
	struct postern_hook_handler h = {
		.size = sizeof(h),
		.fn = on_stage,
		.cancel_call = on_cancel,
		.arg = m,
		.label = m->name,
		.on_timeout = timeout_kind(m),
		.on_timeout_set = 1,
	};
	size_t i;

	for (i = 0; i < sizeof(stage_hooks) / sizeof(stage_hooks[0]); i++) {
		h.hook = stage_hooks[i];
		if (strcmp(h.hook, POSTERN_SMTP_HOOK_CONNECT) == 0)
			h.timeout_ms = (unsigned)(m->connect_ms +
			                          m->command_ms);
		else if (strcmp(h.hook, POSTERN_SMTP_HOOK_HEADER) == 0 ||
		         strcmp(h.hook, POSTERN_SMTP_HOOK_EOH) == 0 ||
		         strcmp(h.hook, POSTERN_SMTP_HOOK_BODY) == 0 ||
		         strcmp(h.hook, POSTERN_SMTP_HOOK_EOD) == 0)
			h.timeout_ms = (unsigned)m->content_ms;
		else
			h.timeout_ms = (unsigned)m->command_ms;
		if (host->hook_register(self, &h) < 0)
			return -1;
	}
	return 0;
}

static int
milter_init(const struct postern_host *h, postern_module_t *m)
{
	struct milter_settings cfg;
	postern_cfg_t *node;
	size_t i, k;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), module_keys, &cfg) < 0)
		return -1;
	svc = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                        1);
	if (svc == NULL) {
		h->log(m, POSTERN_LOG_ERROR, "filter_milter: needs the smtp "
		       "module's service 1.1");
		return -1;
	}
	nmilters = cfg.milters != NULL ? h->cfg_count(cfg.milters) : 0;
	if (nmilters == 0) {
		h->cfg_error(m, h->cfg_module(m), "filter_milter: no milters "
		             "listed (milters = ( { name = ...; socket = "
		             "...; } ))");
		return -1;
	}
	if ((milters = calloc(nmilters, sizeof(*milters))) == NULL)
		abort();
	for (i = 0; i < nmilters; i++) {
		node = h->cfg_elem(cfg.milters, i);
		if (POSTERN_CFG_PARSE(h, m, node, milter_keys,
		                      &milters[i]) < 0)
			return -1;
		milters[i].index = i;
		if (milter_parse_socket(&milters[i]) < 0)
			return -1; /* valid_socket said why */
		for (k = 0; k < i; k++)
			if (strcmp(milters[k].name, milters[i].name) == 0) {
				h->cfg_error(m, node, "filter_milter: two "
				             "milters named '%s'",
				             milters[i].name);
				return -1;
			}
	}
	if (gethostname(myhostname, sizeof(myhostname)) < 0)
		snprintf(myhostname, sizeof(myhostname), "localhost");
	myhostname[sizeof(myhostname) - 1] = '\0';
	for (i = 0; i < nmilters; i++)
		if (register_milter(&milters[i]) < 0)
			return -1;
	return 0;
}

static void
milter_fini(postern_module_t *m)
{
	(void)m;
	mbuf_free(&out);
	free(milters);
	milters = NULL;
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_milter", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = milter_init, .fini = milter_fini);
