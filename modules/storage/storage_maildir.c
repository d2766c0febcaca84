/*
 * storage_maildir.c - the module: configuration, the storage table, and
 * store_open/store_close.  The rest lives in maildir_*.c (README.md).
 *
 *	storage_maildir = {
 *	  location = "~/Maildir";   # or "/var/vmail/%d/%n"
 *	};
 *
 * A user's `mail` field ("maildir:~/Maildir") overrides `location`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

struct md_settings {
	const char *location;
	long long quota_storage;
	long long quota_messages;
};

const struct postern_host *md_host;
postern_module_t *md_self;
static struct md_settings settings;

static const struct postern_cfg_key md_keys[] = {
	{ .name = "location", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct md_settings, location), .def = "~/Maildir",
	  .doc = "Maildir: ~ home, %u user, %d domain, %n local part" },
	{ .name = "quota_storage", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct md_settings, quota_storage), .def = "0",
	  .min = 0, .max = 1LL << 50,
	  .doc = "every user's limit on the octets of all messages "
	         "(maildirsize; RFC 9208 STORAGE), 0: none" },
	{ .name = "quota_messages", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct md_settings, quota_messages), .def = "0",
	  .min = 0, .max = 1LL << 40,
	  .doc = "every user's limit on the number of messages "
	         "(RFC 9208 MESSAGE), 0: none" },
	{ .name = NULL },
};

void
md_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	md_host->vlog(md_self, level, fmt, ap);
	va_end(ap);
}

void
md_err(struct postern_storage_err *err, enum postern_storage_error code,
       const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

static int
md_store_open(const struct postern_user *user, postern_store_t **out,
              struct postern_storage_err *err)
{
	postern_store_t *st;
	char *root;

	*out = NULL;
	root = md_location(settings.location, user, err);
	if (root == NULL)
		return -1;
	if (md_mkmaildir(root) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot create the mailbox");
		free(root);
		return -1;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL ||
	    (st->user = strdup(user->name != NULL ? user->name : "")) == NULL) {
		free(st);
		free(root);
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	st->root = root;
	pthread_mutex_init(&st->saving, NULL);
	*out = st;
	return 0;
}

struct md_state *
md_store_state_get(postern_store_t *st, const char *dir)
{
	if (pthread_mutex_trylock(&st->saving) != 0)
		return NULL;
	if (st->save_dir == NULL || strcmp(st->save_dir, dir) != 0) {
		md_state_free(&st->save_state);
		free(st->save_dir);
		if ((st->save_dir = strdup(dir)) == NULL) {
			pthread_mutex_unlock(&st->saving);
			return NULL;
		}
	}
	return &st->save_state;
}

struct md_state *
md_store_state_peek(postern_store_t *st, const char *dir)
{
	if (pthread_mutex_trylock(&st->saving) != 0)
		return NULL;
	if (st->save_dir != NULL && strcmp(st->save_dir, dir) == 0)
		return &st->save_state;
	pthread_mutex_unlock(&st->saving);
	return NULL;
}

void
md_store_state_put(postern_store_t *st, int rc)
{
	if (rc < 0)
		md_state_free(&st->save_state);
	pthread_mutex_unlock(&st->saving);
}

static void
md_store_close(postern_store_t *st)
{
	if (st == NULL)
		return;
	md_state_free(&st->save_state);
	free(st->save_dir);
	pthread_mutex_destroy(&st->saving);
	free(st->root);
	free(st->user);
	free(st);
}

int
md_deliver(const struct postern_user *user, const char *mailbox,
           const struct postern_append *msg, uint32_t *uid,
           struct postern_storage_err *err)
{
	postern_store_t *st;
	uint32_t uidv;
	int rc;

	if (md_store_open(user, &st, err) < 0)
		return -1;
	/* A delivery goes to new/: flags are the reader's business. */
	rc = md_save(st, mailbox != NULL ? mailbox : "INBOX", msg, 1, uid,
	             &uidv, err);
	md_store_close(st);
	return rc;
}

static const struct postern_storage md_table = {
	.size = sizeof(struct postern_storage),
	.name = "maildir",
	.delimiter = '/',
	.store_open = md_store_open,
	.store_close = md_store_close,
	.list = md_list,
	.create = md_create,
	.remove = md_remove,
	.rename = md_rename,
	.subscribe = md_subscribe,
	.status_by_name = md_status_by_name,
	.open = md_open,
	.close = md_close,
	.status = md_status,
	.count = md_count,
	.message = md_message,
	.seq_of_uid = md_seq_of_uid,
	.sync = md_sync,
	.watch = md_watch,
	.msg_open = md_msg_open,
	.msg_read = md_msg_read,
	.msg_close = md_msg_close,
	.cache_get = md_cache_get,
	.cache_set = md_cache_set,
	.append = md_append,
	.store = md_store,
	.expunge = md_expunge,
	.copy = md_copy,
	.deliver = md_deliver,
	.sync_needed = md_sync_needed,
	.msg_open_nowait = md_msg_open_nowait,
	.quota_get = md_quota_get,
	.append_many = md_append_many,
	.status_nowait = md_status_nowait,
	.open_nowait = md_open_nowait,
	.watch_name = md_watch_name,
	.unwatch_name = md_unwatch_name,
	.access_key = md_access_key,
	.msg_source = md_msg_source,
};

/* The loop has ended: no job opens or closes a view any more. */
static void
md_worker_exit(void *arg)
{
	(void)arg;
	md_state_parked_free();
}

static const struct postern_worker_ops md_worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.exit = md_worker_exit,
};

static int
md_init(const struct postern_host *h, postern_module_t *m)
{
	md_host = h;
	md_self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), md_keys, &settings) < 0)
		return -1;
	if (settings.location == NULL || settings.location[0] == '\0') {
		h->cfg_error(m, h->cfg_lookup(h->cfg_module(m), "location"),
		             "location must not be empty");
		return -1;
	}
	md_quota_storage_limit = (uint64_t)settings.quota_storage;
	md_quota_message_limit = (uint64_t)settings.quota_messages;
	if (h->worker_ops(m, &md_worker_ops, NULL) < 0)
		return -1;
	return h->service_publish(m, POSTERN_STORAGE_SERVICE,
	                          POSTERN_STORAGE_MAJOR, POSTERN_STORAGE_MINOR,
	                          &md_table);
}

/* Unloaded: a process that never ran a worker loop (a test, a tool)
 * gets no worker exit, and its parked views go here. */
static void
md_fini(postern_module_t *m)
{
	(void)m;
	md_state_parked_free();
}

POSTERN_MODULE(.name = "storage_maildir", .version = "0.1",
               .kind = POSTERN_KIND_STORAGE, .init = md_init,
               .fini = md_fini);
