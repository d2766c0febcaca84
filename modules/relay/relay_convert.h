/*
 * relay_convert.h - the 8BITMIME downgrade (relay_8bit.h) of a queued
 * message, run on a job thread so a big message never holds up the
 * event loop, into an unlinked temporary file in the queue's tmp
 * directory.
 *
 * Lifetime.  relay_conv_start duplicates the message's descriptor, so
 * the queue may release the message while the job runs.  `done` is
 * called on the event loop exactly once, unless relay_conv_detach came
 * first: then the job's results are discarded when it ends.
 */
#ifndef RELAY_CONVERT_H
#define RELAY_CONVERT_H

#include <stdint.h>
#include <sys/types.h>

#include "relay_8bit.h"

struct relay_conv;

struct relay_conv_result {
	enum relay_8bit_result res;
	int too_big;        /* RELAY_8BIT_IO because the output passed
	                       the limit */
	int fd;             /* UNCHANGED/CONVERTED: the 7-bit message at
	                       offset 0, owned by `done` (close it); else -1 */
	uint64_t len;       /* its length */
	char err[300];      /* for any other result: what went wrong */
};

/* `done` receives the result (borrowed for the call, its fd handed
 * over).  `limit` bounds the output's size in octets.  NULL (errno set)
 * when the job cannot be queued. */
typedef void (*relay_conv_done_fn)(void *arg, struct relay_conv_result *r);
struct relay_conv *relay_conv_start(int fd, off_t offset, uint64_t len,
                                    uint64_t limit, relay_conv_done_fn done,
                                    void *arg);
/* The caller goes away: `done` will not be called. */
void relay_conv_detach(struct relay_conv *cv);

#endif /* RELAY_CONVERT_H */
