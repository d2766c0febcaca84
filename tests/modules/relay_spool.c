/*
 * relay_spool.c - a conformance relay: publishes the "relay" service
 * (postern/relay.h) and writes each enqueued message into a directory,
 * so tests can check what the SMTP module hands to the relay.
 *
 *	relay_spool = { dir = "/path"; answer = "ok"; };
 *
 * For each message, N.msg holds the message (head, then content) and
 * N.env the envelope, one "key value" per line:
 *	sender <address>       size <SIZE=>    body 8BITMIME   smtputf8 1
 *	ret FULL|HDRS          envid <ENVID>   auth <user>     client <addr>
 *	helo <name>            rcpt <address> notify <bits> orcpt <orcpt>
 * written to a temporary name, fsynced and renamed, so a test never sees
 * half a file.  `answer` = "tempfail" or "reject" makes enqueue fail.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>
#include <postern/relay.h>

struct spool_settings {
	const char *dir;
	int answer;
};

static const char *const answers[] = { "ok", "tempfail", "reject", NULL };

static const struct postern_cfg_key keys[] = {
	{ .name = "dir", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct spool_settings, dir),
	  .flags = POSTERN_CFG_REQUIRED, .doc = "where messages go" },
	{ .name = "answer", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct spool_settings, answer), .def = "ok",
	  .choices = answers, .doc = "ok, tempfail or reject" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct spool_settings cfg;
static unsigned long counter;

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
copy_content(int fd, const struct postern_relay_message *msg)
{
	char buf[65536];
	uint64_t done = 0;
	ssize_t n;
	size_t want;

	if (msg->fd < 0)
		return write_all(fd, msg->data, (size_t)msg->length);
	while (done < msg->length) {
		want = msg->length - done > sizeof(buf)
		           ? sizeof(buf) : (size_t)(msg->length - done);
		n = pread(msg->fd, buf, want, (off_t)(msg->offset + done));
		if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
			return -1;
		done += (uint64_t)n;
	}
	return 0;
}

/* Writes `path`.tmp, fsyncs, renames to `path`. */
static int
write_file(const char *path, const char *text, size_t len,
           const struct postern_relay_message *msg)
{
	char tmp[4200];
	int fd, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	               0600)) < 0)
		return -1;
	if (write_all(fd, text, len) == 0 &&
	    (msg == NULL || copy_content(fd, msg) == 0) && fsync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static char *
envelope_text(const struct postern_relay_envelope *env, size_t *len)
{
	static const char *const bodies[] = { "", "7BIT", "8BITMIME",
		                              "BINARYMIME" };
	static const char *const rets[] = { "", "FULL", "HDRS" };
	char *text = NULL;
	size_t i;
	FILE *f = open_memstream(&text, len);

	if (f == NULL)
		return NULL;
	fprintf(f, "sender %s\n", env->sender);
	if (env->size_param)
		fprintf(f, "size %llu\n", (unsigned long long)env->size_param);
	if (env->body)
		fprintf(f, "body %s\n", bodies[env->body]);
	if (env->smtputf8)
		fprintf(f, "smtputf8 1\n");
	if (env->ret)
		fprintf(f, "ret %s\n", rets[env->ret]);
	if (env->envid)
		fprintf(f, "envid %s\n", env->envid);
	if (env->auth_user)
		fprintf(f, "auth %s\n", env->auth_user);
	if (env->client_addr)
		fprintf(f, "client %s\n", env->client_addr);
	if (env->client_helo)
		fprintf(f, "helo %s\n", env->client_helo);
	for (i = 0; i < env->nrcpts; i++)
		fprintf(f, "rcpt %s notify %u orcpt %s\n",
		        env->rcpts[i].address, env->rcpts[i].notify,
		        env->rcpts[i].orcpt != NULL ? env->rcpts[i].orcpt
		                                    : "-");
	fclose(f);
	return text;
}

static int
spool_enqueue(const struct postern_relay_envelope *env,
              const struct postern_relay_message *msg, char *queue_id,
              size_t queue_id_len, char *err, size_t errlen)
{
	char path[4200];
	unsigned long n;
	size_t len;
	char *text;
	int rc;

	if (cfg.answer == 1) {
		snprintf(err, errlen, "test relay: tempfail");
		return POSTERN_RELAY_TEMPFAIL;
	}
	if (cfg.answer == 2) {
		snprintf(err, errlen, "test relay: reject");
		return POSTERN_RELAY_REJECT;
	}
	n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
	snprintf(queue_id, queue_id_len, "%ld-%lu", (long)getpid(), n);
	snprintf(path, sizeof(path), "%s/%s.msg", cfg.dir, queue_id);
	if (write_file(path, msg->head, msg->head_len, msg) < 0)
		goto fail;
	if ((text = envelope_text(env, &len)) == NULL)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s.env", cfg.dir, queue_id);
	rc = write_file(path, text, len, NULL);
	free(text);
	if (rc < 0)
		goto fail;
	return POSTERN_RELAY_OK;
fail:
	host->log(self, POSTERN_LOG_ERROR, "relay_spool: cannot write %s: %m",
	          path);
	snprintf(err, errlen, "cannot queue the message");
	return POSTERN_RELAY_TEMPFAIL;
}

static const struct postern_relay relay_table = {
	.size = sizeof(struct postern_relay),
	.name = "relay_spool",
	.enqueue = spool_enqueue,
};

static int
relay_spool_init(const struct postern_host *h, postern_module_t *m)
{
	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), keys, &cfg) < 0)
		return -1;
	return h->service_publish(m, POSTERN_RELAY_SERVICE,
	                          POSTERN_RELAY_MAJOR, POSTERN_RELAY_MINOR,
	                          &relay_table);
}

POSTERN_MODULE(.name = "relay_spool", .version = "1.0",
               .kind = POSTERN_KIND_RELAY, .init = relay_spool_init);
