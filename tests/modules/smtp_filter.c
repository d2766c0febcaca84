/*
 * smtp_filter.c - a conformance filter for the SMTP module: it registers
 * on every stage of postern/smtp.h and does what its configuration says,
 * so the integration tests can prove each verdict and each change:
 *
 *	smtp_filter = {
 *	  async_ms = 20;                       # answer every stage later,
 *	                                       # from a timer (0: at once)
 *	  reject_helo = "bad.example";         # helo: 550
 *	  tempfail_sender = "later@x.org";     # mail: 451
 *	  reject_rcpt = "blocked@x.org";       # rcpt: 550 5.7.1 for it only
 *	  reject_header = "X-Spam";            # header: 554 if the field exists
 *	  discard_subject = "discard me";      # header: DISCARD
 *	  quarantine_subject = "quarantine me";# header: QUARANTINE
 *	  reject_body = "EICAR";               # body: 550 if a chunk has it
 *	  add_header = "X-Filtered: yes";      # eod: header_add (end)
 *	  change_subject = "[tagged]";         # eod: Subject 1 replaced
 *	  remove_header = "X-Remove-Me";       # eod: first such field removed
 *	  edit_sender = "edit@x.org";          # the two below only for
 *	                                       # messages from this sender:
 *	  add_rcpt = "carol@example.org";      # eod: rcpt_add
 *	  remove_rcpt = "bob@example.org";     # eod: rcpt_remove
 *	  insert_header = "X-Inserted: 2nd";   # eod: header_insert at 1
 *	  new_sender = "new@x.org";            # eod: sender_change
 *	  new_body = "replaced";               # eod: body_replace (+CRLF)
 *	  slot_sender = "slot@x.org";          # mail: its sender kept in
 *	                                       # txn_pool + txn_slot; eod:
 *	                                       # "X-Slot: <it>" and a log
 *	                                       # line through svc->log
 *	  disconnect_sender = "bye@x.org";     # mail: 421 and close
 *	  reject_data_sender = "nodata@x.org"; # data (DATA, first BDAT):
 *	                                       # 554 for this sender
 *	};
 *
 * It logs "smtp_filter: <stage> ..." lines (reset and disconnect with the
 * session id) for the tests to count.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>
#include <postern/smtp.h>

struct filter_settings {
	long long async_ms;
	const char *reject_helo;
	const char *tempfail_sender;
	const char *reject_rcpt;
	const char *reject_header;
	const char *discard_subject;
	const char *quarantine_subject;
	const char *reject_body;
	const char *add_header;
	const char *change_subject;
	const char *remove_header;
	const char *add_rcpt;
	const char *remove_rcpt;
	const char *edit_sender;
	const char *disconnect_sender;
	const char *insert_header;
	const char *new_sender;
	const char *new_body;
	const char *slot_sender;
	const char *reject_data_sender;
};

#define KEY(n) { .name = #n, .type = POSTERN_CFG_STRING,                  \
	         .offset = offsetof(struct filter_settings, n), .def = "" }

static const struct postern_cfg_key keys[] = {
	{ .name = "async_ms", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct filter_settings, async_ms), .def = "0",
	  .min = 0, .max = 60000 },
	KEY(reject_helo), KEY(tempfail_sender), KEY(reject_rcpt),
	KEY(reject_header), KEY(discard_subject), KEY(quarantine_subject),
	KEY(reject_body), KEY(add_header), KEY(change_subject),
	KEY(remove_header), KEY(add_rcpt), KEY(remove_rcpt), KEY(edit_sender),
	KEY(disconnect_sender), KEY(insert_header), KEY(new_sender),
	KEY(new_body), KEY(slot_sender), KEY(reject_data_sender),
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct filter_settings cfg;
static const struct postern_smtp_service *svc;

static const char *const stage_names[] = {
	"connect", "helo", "starttls", "auth", "mail", "rcpt", "data",
	"header", "eoh", "body", "eod", "reset", "disconnect",
};

static int
set(const char *s)
{
	return s != NULL && *s != '\0';
}

static void
verdict(struct postern_verdict *v, enum postern_verdict_kind kind,
        unsigned code, const char *enh, const char *text)
{
	v->kind = kind;
	v->code = code;
	v->enhanced = enh;
	v->text = text;
}

/* The eod changes, made while the call is live. */
static void
edit(const struct postern_smtp_payload *p)
{
	char name[128];
	const char *colon;

	if (set(cfg.add_header) &&
	    (colon = strchr(cfg.add_header, ':')) != NULL &&
	    (size_t)(colon - cfg.add_header) < sizeof(name)) {
		memcpy(name, cfg.add_header, (size_t)(colon - cfg.add_header));
		name[colon - cfg.add_header] = '\0';
		svc->header_add(p->txn, name, colon + 1, 0);
	}
	if (set(cfg.change_subject))
		svc->header_change(p->txn, "Subject", 1, cfg.change_subject);
	if (set(cfg.remove_header))
		svc->header_change(p->txn, cfg.remove_header, 1, NULL);
	if (!set(cfg.edit_sender) ||
	    strcasecmp(p->envelope->sender, cfg.edit_sender) != 0)
		return;
	if (set(cfg.add_rcpt))
		svc->rcpt_add(p->txn, cfg.add_rcpt);
	if (set(cfg.remove_rcpt))
		svc->rcpt_remove(p->txn, cfg.remove_rcpt);
	if (set(cfg.insert_header) &&
	    (colon = strchr(cfg.insert_header, ':')) != NULL &&
	    (size_t)(colon - cfg.insert_header) < sizeof(name)) {
		memcpy(name, cfg.insert_header,
		       (size_t)(colon - cfg.insert_header));
		name[colon - cfg.insert_header] = '\0';
		svc->header_insert(p->txn, 1, name, colon + 1);
	}
	if (set(cfg.new_sender))
		svc->sender_change(p->txn, cfg.new_sender, "RET=HDRS");
	if (set(cfg.new_body)) {
		/* In two pieces: later calls append. */
		svc->body_replace(p->txn, cfg.new_body, strlen(cfg.new_body));
		svc->body_replace(p->txn, "\r\n", 2);
	}
}

/* Per-transaction state through the service: kept at MAIL, read at
 * eod, freed with the transaction. */
static void
slot_keep(const struct postern_smtp_payload *p)
{
	postern_pool_t *pool = svc->txn_pool(p->txn);
	void **slot = svc->txn_slot(p->txn, self);

	if (pool != NULL && slot != NULL)
		*slot = host->pool_strndup(pool, p->envelope->sender,
		                           strlen(p->envelope->sender));
}

static void
slot_use(const struct postern_smtp_payload *p)
{
	void **slot = svc->txn_slot(p->txn, self);

	if (slot == NULL || *slot == NULL)
		return;
	svc->header_add(p->txn, "X-Slot", *slot, 0);
	svc->log(self, p, POSTERN_LOG_INFO, "smtp_filter: slot held %s",
	         (const char *)*slot);
}

static void
decide(const struct postern_smtp_payload *p, struct postern_verdict *v)
{
	verdict(v, POSTERN_VERDICT_CONTINUE, 0, NULL, NULL);
	switch (p->stage) {
	case POSTERN_SMTP_HELO:
		if (set(cfg.reject_helo) && p->session->helo != NULL &&
		    strcasecmp(p->session->helo, cfg.reject_helo) == 0)
			verdict(v, POSTERN_VERDICT_REJECT, 550, "5.7.1",
			        "filter: helo refused");
		break;
	case POSTERN_SMTP_MAIL:
		if (set(cfg.slot_sender) &&
		    strcasecmp(p->envelope->sender, cfg.slot_sender) == 0)
			slot_keep(p);
		if (set(cfg.tempfail_sender) &&
		    strcasecmp(p->envelope->sender, cfg.tempfail_sender) == 0)
			verdict(v, POSTERN_VERDICT_TEMPFAIL, 451, "4.7.1",
			        "filter: sender deferred");
		if (set(cfg.disconnect_sender) &&
		    strcasecmp(p->envelope->sender,
		               cfg.disconnect_sender) == 0) {
			verdict(v, POSTERN_VERDICT_TEMPFAIL, 421, "4.7.0",
			        "filter: goodbye");
			v->flags = POSTERN_VERDICT_DISCONNECT;
		}
		break;
	case POSTERN_SMTP_DATA:
		if (set(cfg.reject_data_sender) &&
		    strcasecmp(p->envelope->sender,
		               cfg.reject_data_sender) == 0)
			verdict(v, POSTERN_VERDICT_REJECT, 554, "5.7.1",
			        "filter: data refused");
		break;
	case POSTERN_SMTP_RCPT:
		if (set(cfg.reject_rcpt) &&
		    strcasecmp(p->rcpt->address, cfg.reject_rcpt) == 0)
			verdict(v, POSTERN_VERDICT_REJECT, 550, "5.7.1",
			        "filter: recipient refused");
		break;
	case POSTERN_SMTP_HEADER:
		if (set(cfg.reject_header) &&
		    strcasecmp(p->header_name, cfg.reject_header) == 0)
			verdict(v, POSTERN_VERDICT_REJECT, 554, "5.7.1",
			        "filter: header refused");
		if (strcasecmp(p->header_name, "Subject") == 0) {
			if (set(cfg.discard_subject) &&
			    strstr(p->header_value, cfg.discard_subject))
				v->kind = POSTERN_VERDICT_DISCARD;
			if (set(cfg.quarantine_subject) &&
			    strstr(p->header_value, cfg.quarantine_subject))
				v->kind = POSTERN_VERDICT_QUARANTINE;
		}
		break;
	case POSTERN_SMTP_BODY:
		if (set(cfg.reject_body) &&
		    memmem(p->chunk, p->chunk_len, cfg.reject_body,
		           strlen(cfg.reject_body)) != NULL)
			verdict(v, POSTERN_VERDICT_REJECT, 550, "5.7.1",
			        "filter: body refused");
		break;
	case POSTERN_SMTP_EOD:
		edit(p);
		slot_use(p);
		break;
	default:
		break;
	}
}

static void
log_stage(const struct postern_smtp_payload *p)
{
	if (p->stage == POSTERN_SMTP_HEADER)
		host->log(self, POSTERN_LOG_INFO, "smtp_filter: header %s #%zu",
		          p->header_name, p->header_index);
	else if (p->stage == POSTERN_SMTP_STARTTLS)
		host->log(self, POSTERN_LOG_INFO,
		          "smtp_filter: starttls session %llu tls=%d %s",
		          (unsigned long long)p->session->id, p->session->tls,
		          p->session->tls_version != NULL
		              ? p->session->tls_version : "none");
	else
		host->log(self, POSTERN_LOG_INFO,
		          "smtp_filter: %s session %llu",
		          stage_names[p->stage],
		          (unsigned long long)p->session->id);
}

/* ---- answering later --------------------------------------------------- */

struct pending {
	postern_hook_call_t *call;
	struct postern_smtp_payload *payload; /* valid until we answer */
	postern_timer_t *timer;
	struct pending *next;
};

static struct pending *pendings;

static void
forget(struct pending *p)
{
	struct pending **pp;

	for (pp = &pendings; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p);
}

static unsigned
answer_later(void *arg)
{
	struct pending *p = arg;
	struct postern_verdict v = { 0 };

	decide(p->payload, &v);
	host->hook_resume(p->call, &v);
	forget(p);
	return 0;
}

static void
on_cancel(postern_hook_call_t *call, void *arg)
{
	struct pending *p;

	(void)arg;
	for (p = pendings; p != NULL; p = p->next)
		if (p->call == call) {
			host->timer_cancel(p->timer);
			forget(p);
			return;
		}
}

static void
on_stage(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	struct postern_smtp_payload *p = payload;
	struct pending *pd;

	(void)arg;
	log_stage(p);
	if (cfg.async_ms == 0 || p->stage == POSTERN_SMTP_RESET ||
	    p->stage == POSTERN_SMTP_DISCONNECT) {
		decide(p, v);
		return;
	}
	if ((pd = calloc(1, sizeof(*pd))) == NULL) {
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		return;
	}
	pd->call = call;
	pd->payload = p;
	pd->timer = host->timer_add((unsigned)cfg.async_ms, answer_later, pd);
	pd->next = pendings;
	pendings = pd;
	v->kind = POSTERN_VERDICT_PENDING;
}

static int
filter_init(const struct postern_host *h, postern_module_t *m)
{
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.priority = 10,
		.timeout_ms = 10000,
		.fn = on_stage,
		.cancel = on_cancel,
	};
	size_t i;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), keys, &cfg) < 0)
		return -1;
	svc = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                        1);
	if (svc == NULL)
		return -1;
	for (i = 0; i < sizeof(stage_names) / sizeof(stage_names[0]); i++) {
		static char names[13][32];

		/* The body stage costs a pass over the message: only when
		 * asked for. */
		if (i == POSTERN_SMTP_BODY && !set(cfg.reject_body))
			continue;
		strcpy(names[i], "smtp.");
		strcat(names[i], stage_names[i]);
		handler.hook = names[i];
		if (h->hook_register(m, &handler) < 0)
			return -1;
	}
	return 0;
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "smtp_filter", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = filter_init);
