/*
 * isolate.c - the worker's isolation process (see isolate.h).
 *
 * Wire format on a channel, one SOCK_SEQPACKET record each way:
 * request = 4-octet function index, then the input; reply = 1 octet
 * (0 failed, 1 ok), then the output.  A channel carries one call at a
 * time; callers take a free channel from the pool under `lock`.
 *
 * The child is forked from the worker, at first before any thread
 * exists.  A child that died is forked again by the next caller once
 * every channel is back, from a process that has threads by then: the
 * child only runs registered functions (pure computation and malloc,
 * which jemalloc and glibc keep usable across fork through their
 * pthread_atfork handlers), never the host.
 */
#include "isolate.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "log.h"
#include "xalloc.h"

#define ISOLATE_MAX_FUNCS 16
#define ISOLATE_MAX_CHANNELS 64
#define ISOLATE_TIMEOUT_MS 60000
#define REQ_HEAD 4
#define REPLY_HEAD 1
#define NO_CHILD (-2)

struct postern_isolated {
	const char *name;
	postern_isolated_fn fn;
	uint32_t index;
};

static struct postern_isolated funcs[ISOLATE_MAX_FUNCS];
static uint32_t nfuncs;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	pid_t pid;            /* 0: no child (calls run in-process) */
	int broken;           /* a call failed on the wire: fork again */
	unsigned nchan;
	int fd[ISOLATE_MAX_CHANNELS];       /* the worker's ends */
	int busy[ISOLATE_MAX_CHANNELS];
	unsigned nbusy;
} iso = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.freed = PTHREAD_COND_INITIALIZER,
};

postern_isolated_t *
isolate_register(const char *name, postern_isolated_fn fn)
{
	struct postern_isolated *f;

	if (fn == NULL || nfuncs == ISOLATE_MAX_FUNCS) {
		log_error("isolate_register(%s): %s", name != NULL ? name : "?",
		          fn == NULL ? "no function" : "too many functions");
		return NULL;
	}
	f = &funcs[nfuncs];
	f->name = name != NULL ? name : "?";
	f->fn = fn;
	f->index = nfuncs++;
	return f;
}

/* ---- the child -------------------------------------------------------- */

static void *
child_serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *in = xmalloc(REQ_HEAD + POSTERN_ISOLATE_MAX);
	unsigned char *out = xmalloc(REPLY_HEAD + POSTERN_ISOLATE_MAX);
	ssize_t n, m;
	uint32_t i;

	for (;;) {
		n = recv(fd, in, REQ_HEAD + POSTERN_ISOLATE_MAX, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(0); /* the worker closed its end */
		}
		m = -1;
		if (n >= REQ_HEAD) {
			memcpy(&i, in, sizeof(i));
			if (i < nfuncs)
				m = funcs[i].fn(in + REQ_HEAD, (size_t)n - REQ_HEAD,
				                out + REPLY_HEAD,
				                POSTERN_ISOLATE_MAX);
		}
		explicit_bzero(in, (size_t)n);
		if (m < 0 || m > POSTERN_ISOLATE_MAX)
			m = -1;
		out[0] = m >= 0;
		if (send(fd, out, REPLY_HEAD + (m >= 0 ? (size_t)m : 0),
		         MSG_NOSIGNAL) < 0)
			_exit(0);
		explicit_bzero(out, REPLY_HEAD + (m >= 0 ? (size_t)m : 0));
	}
	return NULL;
}

/* Closes every descriptor from 3 up but those in keep[n]. */
static void
close_all_but(int *keep, unsigned n)
{
	unsigned i, j;
	int from = 3, t;

	for (i = 1; i < n; i++) /* insertion sort: n is small */
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		if (keep[i] > from)
			close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range((unsigned)from, ~0U, 0);
}

/* Runs in the new child: keeps only its channel ends, serves each on a
 * thread of its own, and never returns. */
static void
child_main(int *ends, unsigned n)
{
	sigset_t none;
	pthread_t t;
	unsigned i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "postern-isolate");
	/* The worker's handlers and signalfd mean nothing here. */
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal((int)i, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Listeners, clients, files: none of it is the child's. */
	close_all_but(ends, n);
	for (i = 1; i < n; i++)
		if (pthread_create(&t, NULL, child_serve,
		                   (void *)(intptr_t)ends[i]) != 0)
			_exit(1);
	child_serve((void *)(intptr_t)ends[0]);
	_exit(0);
}

/* ---- the worker ------------------------------------------------------- */

static void
close_channels(void)
{
	unsigned i;

	for (i = 0; i < iso.nchan; i++)
		if (iso.fd[i] >= 0) {
			close(iso.fd[i]);
			iso.fd[i] = -1;
		}
}

static void
reap_child(void)
{
	if (iso.pid > 0) {
		kill(iso.pid, SIGKILL);
		while (waitpid(iso.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	iso.pid = 0;
}

/* Forks the child with iso.nchan channels.  Called with no call in
 * flight (at start, or under the lock with nbusy == 0). */
static int
fork_child(void)
{
	int ends[ISOLATE_MAX_CHANNELS], sv[2];
	unsigned i;
	pid_t pid;

	for (i = 0; i < iso.nchan; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		               sv) < 0) {
			log_error("isolate: socketpair: %s", strerror(errno));
			while (i-- > 0)
				close(ends[i]);
			close_channels();
			return -1;
		}
		iso.fd[i] = sv[0];
		ends[i] = sv[1];
	}
	pid = fork();
	if (pid == 0)
		child_main(ends, iso.nchan);
	for (i = 0; i < iso.nchan; i++)
		close(ends[i]);
	if (pid < 0) {
		log_error("isolate: fork: %s", strerror(errno));
		close_channels();
		return -1;
	}
	iso.pid = pid;
	iso.broken = 0;
	return 0;
}

int
isolate_start(unsigned threads)
{
	unsigned i;

	if (nfuncs == 0)
		return 0; /* nothing registered: no process to keep */
	if (threads == 0)
		threads = 1;
	if (threads > ISOLATE_MAX_CHANNELS)
		threads = ISOLATE_MAX_CHANNELS;
	iso.nchan = threads;
	for (i = 0; i < ISOLATE_MAX_CHANNELS; i++) {
		iso.fd[i] = -1;
		iso.busy[i] = 0;
	}
	iso.nbusy = 0;
	if (fork_child() < 0) {
		iso.nchan = 0;
		return -1;
	}
	log_info("isolate: process %d runs %u function(s), %u at a time",
	         (int)iso.pid, nfuncs, iso.nchan);
	return 0;
}

void
isolate_stop(void)
{
	pthread_mutex_lock(&iso.lock);
	close_channels();
	reap_child();
	iso.nchan = 0;
	pthread_mutex_unlock(&iso.lock);
}

pid_t
isolate_pid(void)
{
	pid_t pid;

	pthread_mutex_lock(&iso.lock);
	pid = iso.pid;
	pthread_mutex_unlock(&iso.lock);
	return pid;
}

/* A free channel's index, forking a new child first when the last one
 * broke; NO_CHILD outside a worker, -1 when the child cannot be started
 * again.  Called with the lock held. */
static int
take_channel(void)
{
	unsigned i;

	for (;;) {
		if (iso.nchan == 0)
			return NO_CHILD;
		if (iso.broken && iso.nbusy == 0) {
			log_warning("isolate: process %d is gone or hung; "
			            "starting another", (int)iso.pid);
			close_channels();
			reap_child();
			if (fork_child() < 0)
				return -1;
		}
		if (!iso.broken && iso.nbusy < iso.nchan)
			break;
		pthread_cond_wait(&iso.freed, &iso.lock);
	}
	for (i = 0; i < iso.nchan; i++)
		if (!iso.busy[i])
			break;
	iso.busy[i] = 1;
	iso.nbusy++;
	return (int)i;
}

static void
give_channel(int ch, int broken)
{
	pthread_mutex_lock(&iso.lock);
	iso.busy[ch] = 0;
	iso.nbusy--;
	if (broken)
		iso.broken = 1;
	pthread_cond_broadcast(&iso.freed);
	pthread_mutex_unlock(&iso.lock);
}

/* One exchange on a channel: 0 and the reply's length in *got, or -1
 * when the wire failed (the child is then to be replaced). */
static int
exchange(int fd, const unsigned char *req, size_t reqlen,
         unsigned char *reply, size_t cap, size_t *got)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
		return -1;
	do
		r = poll(&p, 1, ISOLATE_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1; /* hung: a minute for one call is no answer */
	n = recv(fd, reply, cap, MSG_TRUNC);
	if (n <= 0 || (size_t)n > cap)
		return -1;
	*got = (size_t)n;
	return 0;
}

/* One call on a channel of the current child.  -1 with *wire set when
 * the channel failed (the child is then replaced). */
static ssize_t
call_once(const unsigned char *req, size_t reqlen,
          void *out, size_t outcap, int *wire)
{
	unsigned char *reply = xmalloc(REPLY_HEAD + POSTERN_ISOLATE_MAX);
	size_t got = 0;
	ssize_t rc = -1;
	int ch;

	pthread_mutex_lock(&iso.lock);
	ch = take_channel();
	pthread_mutex_unlock(&iso.lock);
	*wire = 0;
	if (ch < 0) {
		free(reply);
		return ch;
	}
	*wire = exchange(iso.fd[ch], req, reqlen, reply,
	                 REPLY_HEAD + POSTERN_ISOLATE_MAX, &got) < 0;
	give_channel(ch, *wire);
	if (!*wire && got >= REPLY_HEAD && reply[0] == 1 &&
	    got - REPLY_HEAD <= outcap) {
		memcpy(out, reply + REPLY_HEAD, got - REPLY_HEAD);
		rc = (ssize_t)(got - REPLY_HEAD);
	}
	explicit_bzero(reply, got);
	free(reply);
	return rc;
}

ssize_t
isolate_call(postern_isolated_t *f, const void *in, size_t inlen,
             void *out, size_t outcap)
{
	unsigned char *req;
	ssize_t rc;
	int wire;

	if (f == NULL || inlen > POSTERN_ISOLATE_MAX)
		return -1;
	req = xmalloc(REQ_HEAD + inlen);
	memcpy(req, &f->index, REQ_HEAD);
	memcpy(req + REQ_HEAD, in, inlen);
	rc = call_once(req, REQ_HEAD + inlen, out, outcap, &wire);
	/* A child that died since the last call: once more, with a new
	 * one.  Only once: a call that kills every child fails. */
	if (wire)
		rc = call_once(req, REQ_HEAD + inlen, out, outcap, &wire);
	if (wire)
		log_error("isolate: %s: no answer from the isolation "
		          "process", f->name);
	if (rc == NO_CHILD)
		rc = f->fn(in, inlen, out, outcap);
	explicit_bzero(req, REQ_HEAD + inlen);
	free(req);
	return rc;
}
