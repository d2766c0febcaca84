/*
 * relay_convert.c - the 8BITMIME downgrade as a job (relay_convert.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"
#include "relay_convert.h"

struct relay_conv {
	int in_fd;               /* a dup of the queue file's */
	off_t offset;
	uint64_t len;
	uint64_t limit;
	relay_conv_done_fn done;
	void *arg;
	int detached;            /* the caller went away */
	struct relay_conv_result r;
};

/* A temporary file nobody else can reach: unlinked at once, so a crash
 * leaves nothing behind. */
static int
conv_tmpfile(char *err, size_t errlen)
{
	char path[sizeof(relay_queue_dir) + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/tmp/7bit.XXXXXX", relay_queue_dir);
	if ((fd = mkstemp(path)) < 0) {
		snprintf(err, errlen, "8BITMIME downgrade: creating %.200s: %s",
		         path, strerror(errno));
		return -1;
	}
	unlink(path);
	return fd;
}

static void
conv_work(void *arg)
{
	struct relay_conv *cv = arg;
	struct relay_conv_result *r = &cv->r;
	struct relay_out out;

	r->res = RELAY_8BIT_IO;
	if ((r->fd = conv_tmpfile(r->err, sizeof(r->err))) < 0)
		return;
	relay_out_init_fd(&out, r->fd);
	relay_out_set_limit(&out, cv->limit);
	r->res = relay_8bit_downgrade(relay_host, cv->in_fd, cv->offset,
	                              cv->len, &out, r->err, sizeof(r->err));
	r->len = out.total;
	r->too_big = out.error == EFBIG;
	if (r->res == RELAY_8BIT_IO && r->too_big)
		snprintf(r->err, sizeof(r->err), "8BITMIME downgrade: the "
		         "7-bit form exceeds %llu octets",
		         (unsigned long long)cv->limit);
	if (r->res != RELAY_8BIT_UNCHANGED && r->res != RELAY_8BIT_CONVERTED) {
		close(r->fd);
		r->fd = -1;
	}
}

static void
conv_done(void *arg, int cancelled)
{
	struct relay_conv *cv = arg;

	if (cancelled && !cv->detached) {
		cv->r.res = RELAY_8BIT_IO;
		snprintf(cv->r.err, sizeof(cv->r.err), "8BITMIME downgrade: "
		         "the job was cancelled");
	}
	if (!cv->detached) {
		cv->done(cv->arg, &cv->r);
		cv->r.fd = -1;   /* handed over */
	}
	if (cv->r.fd >= 0)
		close(cv->r.fd);
	close(cv->in_fd);
	free(cv);
}

struct relay_conv *
relay_conv_start(int fd, off_t offset, uint64_t len, uint64_t limit,
                 relay_conv_done_fn done, void *arg)
{
	struct relay_conv *cv;

	if ((cv = calloc(1, sizeof(*cv))) == NULL)
		return NULL;
	if ((cv->in_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(cv);
		return NULL;
	}
	cv->offset = offset;
	cv->len = len;
	cv->limit = limit;
	cv->done = done;
	cv->arg = arg;
	cv->r.fd = -1;
	if (relay_host->job_submit(conv_work, conv_done, cv) == NULL) {
		close(cv->in_fd);
		free(cv);
		errno = EAGAIN;
		return NULL;
	}
	return cv;
}

void
relay_conv_detach(struct relay_conv *cv)
{
	/* The job may be running: it finishes, conv_done cleans up. */
	cv->detached = 1;
}
