/*
 * relay_admin.c - the relay_admin service (postern/relay.h): what
 * `posternctl queue ...` does to the queue, straight on its files.
 *
 * Workers learn of changes through the files themselves: a hold line in
 * the state log is seen at the message's next claim; release and flush
 * touch the `flush` file, which every worker checks each second and
 * answers by trying its deferred messages at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "relay.h"

/* Delete waits this long for a worker's attempt to end. */
#define REMOVE_WAIT_MS 5000

static int
check_id(const char *id, char *err, size_t errlen)
{
	if (rq_id_valid(id))
		return 0;
	snprintf(err, errlen, "'%s' is not a queue id", id);
	return -1;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids in q/, sorted (oldest first: ids start with the time). */
static char **
queue_ids(size_t *n, char *err, size_t errlen)
{
	char path[4096], **v = NULL, **nv;
	struct dirent *de;
	size_t cap = 0;
	DIR *dir;

	*n = 0;
	snprintf(path, sizeof(path), "%s/q", relay_queue_dir);
	if ((dir = opendir(path)) == NULL) {
		if (errno == ENOENT)
			return calloc(1, sizeof(char *)); /* nothing queued */
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!rq_id_valid(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				abort();
			v = nv;
		}
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(dir);
	if (v == NULL)
		return calloc(1, sizeof(char *));
	qsort(v, *n, sizeof(*v), id_cmp);
	return v;
}

static int
admin_list(void (*fn)(const struct postern_relay_queued *q, void *arg),
           void *arg, char *err, size_t errlen)
{
	struct postern_relay_queued e;
	struct rq_msg *m;
	char why[512];
	size_t n, i, j;
	char **ids = queue_ids(&n, err, errlen);

	if (ids == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		memset(&e, 0, sizeof(e));
		e.size = sizeof(e);
		e.id = ids[i];
		switch (rq_load(relay_queue_dir, ids[i], 0, &m, why,
		                sizeof(why))) {
		case RQ_LOAD_GONE:
			continue; /* delivered meanwhile */
		case RQ_LOAD_OK:
			e.arrival = m->arrival;
			e.sender = m->sender;
			e.length = m->msg_len;
			e.nrcpts = m->nrcpts;
			e.held = m->held;
			e.next_try = INT64_MAX;
			for (j = 0; j < m->nrcpts; j++) {
				struct rq_rcpt *r = &m->rcpts[j];

				if (r->failures > e.failures)
					e.failures = r->failures;
				if (r->state == RQ_SENT)
					e.sent++;
				else if (r->state == RQ_FAILED)
					e.failed++;
				else {
					e.pending++;
					if (r->next_try < e.next_try)
						e.next_try = r->next_try;
				}
			}
			if (e.next_try == INT64_MAX)
				e.next_try = 0;
			fn(&e, arg);
			rq_free(m);
			break;
		default:
			e.error = why;
			fn(&e, arg);
			break;
		}
	}
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

static const char *const state_names[] = { "pending", "sent", "failed" };

static int
admin_show(const char *id, void (*fn)(const char *line, void *arg),
           void *arg, char *err, size_t errlen)
{
	static const char *const bodies[] = { "7BIT (unspecified)", "7BIT",
		                              "8BITMIME", "BINARYMIME" };
	char line[2048], when[64];
	struct rq_msg *m;
	struct tm tm;
	time_t t;
	size_t i;

	if (check_id(id, err, errlen) < 0)
		return -1;
	switch (rq_load(relay_queue_dir, id, 0, &m, err, errlen)) {
	case RQ_LOAD_OK:
		break;
	case RQ_LOAD_GONE:
		snprintf(err, errlen, "%s: not in the queue", id);
		return -1;
	default:
		return -1;
	}
	t = (time_t)m->arrival;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
#define OUT(...) (snprintf(line, sizeof(line), __VA_ARGS__), fn(line, arg))
	OUT("id: %s", m->id);
	OUT("arrival: %s", when);
	OUT("sender: <%s>", m->sender);
	OUT("size: %llu", (unsigned long long)m->msg_len);
	OUT("body: %s%s", bodies[m->body], m->smtputf8 ? ", SMTPUTF8" : "");
	if (m->envid != NULL)
		OUT("envid: %s", m->envid);
	if (m->auth_user != NULL)
		OUT("auth: %s", m->auth_user);
	if (m->client_addr != NULL)
		OUT("client: %s (%s)", m->client_addr,
		    m->client_helo != NULL ? m->client_helo : "-");
	OUT("held: %s", m->held ? "yes" : "no");
	for (i = 0; i < m->nrcpts; i++) {
		struct rq_rcpt *r = &m->rcpts[i];

		OUT("rcpt: <%s> %s, %u failed attempt(s)%s%s%s%s", r->address,
		    state_names[r->state], r->failures,
		    r->dsn[0] ? ", dsn=" : "", r->dsn,
		    r->text != NULL ? ": " : "",
		    r->text != NULL ? r->text : "");
		if (r->state == RQ_PENDING && r->next_try > 0) {
			t = (time_t)r->next_try;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			OUT("  next attempt: %s", when);
		}
	}
#undef OUT
	rq_free(m);
	return 0;
}

/* Appends a message-level line (hold, release) to the state log. */
static int
append_event(const char *id, const char *kind, char *err, size_t errlen)
{
	char path[4096], line[256];
	size_t n;

	if (check_id(id, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/q/%s", relay_queue_dir, id);
	if (access(path, F_OK) < 0) {
		snprintf(err, errlen, "%s: not in the queue", id);
		return -1;
	}
	n = rq_log_line(line, sizeof(line), kind, -1, (int64_t)time(NULL),
	                0, 0, NULL, "posternctl");
	if (rq_append(relay_queue_dir, id, line, n) < 0) {
		snprintf(err, errlen, "%s/q/%s.log: %s", relay_queue_dir, id,
		         strerror(errno));
		return -1;
	}
	return 0;
}

static int
admin_flush(char *err, size_t errlen)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/flush", relay_queue_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || futimens(fd, NULL) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
admin_hold(const char *id, char *err, size_t errlen)
{
	return append_event(id, "hold", err, errlen);
}

static int
admin_release(const char *id, char *err, size_t errlen)
{
	if (append_event(id, "release", err, errlen) < 0)
		return -1;
	return admin_flush(err, errlen);
}

static int
admin_remove(const char *id, char *err, size_t errlen)
{
	char path[4096];
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	int fd, waited;

	if (check_id(id, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/q/%s", relay_queue_dir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", id, errno == ENOENT
		         ? "not in the queue" : strerror(errno));
		return -1;
	}
	/* The lock: no worker is delivering it while it goes. */
	for (waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 100) {
		if (waited >= REMOVE_WAIT_MS) {
			snprintf(err, errlen, "%s: a worker is delivering it; "
			         "try again", id);
			close(fd);
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	if (rq_remove(relay_queue_dir, id) < 0) {
		snprintf(err, errlen, "remove %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

const struct postern_relay_admin relay_admin_table = {
	.size = sizeof(struct postern_relay_admin),
	.list = admin_list,
	.show = admin_show,
	.hold = admin_hold,
	.release = admin_release,
	.remove = admin_remove,
	.flush = admin_flush,
};
