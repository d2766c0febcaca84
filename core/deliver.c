/*
 * deliver.c - local delivery (see deliver.h and host.h local_deliver).
 *
 * The auth and storage services are looked up once per process, on the
 * first call: services are published during init, before the workers
 * fork, so that answer is final.
 */
#include "deliver.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <postern/auth.h>
#include <postern/storage.h>

#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "service.h"

static pthread_once_t services_once = PTHREAD_ONCE_INIT;
static const struct postern_auth *auth;
static const struct postern_storage *storage;

static void
services_find(void)
{
	auth = service_lookup("core", POSTERN_AUTH_SERVICE,
	                      POSTERN_AUTH_MAJOR, 0, 1);
	storage = service_lookup("core", POSTERN_STORAGE_SERVICE,
	                         POSTERN_STORAGE_MAJOR, 1, 1);
}

/* A recipient keeps its worst outcome: permanent beats temporary beats
 * success. */
static void
worst(struct postern_local_result *res, unsigned code, const char *text)
{
	if (res->code >= 500 || (res->code >= 400 && code < 500))
		return;
	res->code = code;
	res->text = text;
}

static int
delivered_already(const struct postern_local_result *res, const char *login)
{
	size_t i;

	for (i = 0; i < res->ndelivered; i++)
		if (strcasecmp(res->delivered[i], login) == 0)
			return 1;
	return 0;
}

/* Appends p to the pool array *v of *n entries (grown by doubling: the
 * pool keeps the old copies, which are small). */
static void
push(postern_pool_t *pool, const char ***v, size_t *n, const char *p)
{
	const char **nv;

	if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4...: full */
		nv = pool_alloc(pool, (*n == 0 ? 4 : *n * 2) * sizeof(*nv));
		if (*n > 0)
			memcpy(nv, *v, *n * sizeof(*nv));
		*v = nv;
	}
	(*v)[(*n)++] = p;
}

static postern_metric_t *deliveries;
enum { DELIVERED, DEFERRED, REFUSED };

void
deliver_metrics_register(void)
{
	static const char *const results[] = {
		"delivered", "deferred", "refused", NULL,
	};

	deliveries = metrics_register("core", "local_deliveries",
	                              "messages delivered to a local mailbox, "
	                              "per recipient", POSTERN_METRIC_COUNTER,
	                              "result", results);
}

/* One user: the storage error mapped to what a sender is told. */
static void
deliver_user(postern_module_t *m, const struct postern_user *user,
             const struct postern_append *msg, const char *mailbox,
             struct postern_local_result *res)
{
	struct postern_storage_err err = { 0 };
	postern_store_t *st;
	uint32_t uid;
	int rc;

	rc = storage->deliver(user, mailbox, msg, &uid, &err);
	/* The quarantine (junk) mailbox is made on its first message. */
	if (rc < 0 && err.code == POSTERN_SE_NONEXISTENT && mailbox != NULL &&
	    storage->store_open(user, &st, &err) == 0) {
		storage->create(st, mailbox, POSTERN_MBOX_JUNK, &err);
		storage->store_close(st);
		memset(&err, 0, sizeof(err));
		rc = storage->deliver(user, mailbox, msg, &uid, &err);
	}
	if (rc == 0) {
		metrics_add(deliveries, DELIVERED, 1);
		return;
	}
	log_write(POSTERN_LOG_ERROR, m != NULL ? m->name : NULL,
	          "local delivery to %s failed: %s", user->name, err.text);
	switch (err.code) {
	case POSTERN_SE_OVERQUOTA:
		worst(res, 452, "4.2.2 mailbox full");
		metrics_add(deliveries, DEFERRED, 1);
		break;
	case POSTERN_SE_NOPERM:
	case POSTERN_SE_CANNOT:
	case POSTERN_SE_NOTSUPPORTED:
		worst(res, 550, "5.2.0 mailbox cannot take the message");
		metrics_add(deliveries, REFUSED, 1);
		break;
	default:
		worst(res, 451, "4.3.0 local delivery failed, try later");
		metrics_add(deliveries, DEFERRED, 1);
		break;
	}
}

unsigned
local_deliver(postern_module_t *m, const char *const *targets,
              size_t ntargets, const struct postern_append *msg,
              const char *mailbox, postern_pool_t *pool,
              struct postern_local_result *res)
{
	struct postern_user u;
	size_t k;
	int rc;

	pthread_once(&services_once, services_find);
	res->code = 0;
	res->text = NULL;
	res->forwards = NULL;
	res->nforwards = 0;
	if (auth == NULL || storage == NULL) {
		worst(res, 451, "4.3.0 no local storage");
		return res->code;
	}
	for (k = 0; k < ntargets; k++) {
		memset(&u, 0, sizeof(u));
		u.size = sizeof(u);
		rc = auth->lookup(targets[k], pool, &u);
		if (rc == POSTERN_AUTH_NO) { /* no user: an alias forward */
			push(pool, &res->forwards, &res->nforwards,
			     targets[k]);
			continue;
		}
		if (rc != POSTERN_AUTH_YES) {
			worst(res, 451, "4.3.0 user lookup failed, try later");
			continue;
		}
		if (delivered_already(res, u.name))
			continue;
		deliver_user(m, &u, msg, mailbox, res);
		if (res->code == 0)
			push(pool, &res->delivered, &res->ndelivered,
			     u.name);
	}
	return res->code;
}
