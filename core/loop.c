/*
 * loop.c - the event loop.
 *
 * One iteration: wait in epoll (no longer than the nearest timer, and not
 * at all while deferred calls are queued), dispatch fd events, fire due
 * timers, run the deferred calls queued so far, then the before-wait
 * callback (which flushes connection output).  Watches removed during an
 * iteration are freed only at its end, so an event already fetched for a
 * removed watch is skipped instead of touching freed memory.
 *
 * Timers live in a binary min-heap; each timer knows its heap slot, so
 * cancel and reset are O(log n) without searching.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include "log.h"
#include "xalloc.h"

#define LOOP_MAX_EVENTS 256

struct loop *loop_current;

struct loop_timer {
	uint64_t due;
	uint64_t seq;   /* ties fire in creation order */
	size_t slot;    /* index in the heap */
	loop_timer_fn fn;
	void *arg;
};

struct loop_watch {
	int fd;
	unsigned events;
	int dead;
	loop_watch_fn fn;
	void *arg;
	struct loop_watch *next_dead;
};

struct defer_item {
	loop_defer_fn fn;
	void *arg;
	struct defer_item *next;
};

struct loop {
	int epfd;
	int stop;
	int inherited; /* a copy made by fork: the epoll set is not ours */
	uint64_t now;
	uint64_t timer_seq;

	struct loop_timer **heap;
	size_t heap_len, heap_cap;

	struct defer_item *defer_head, *defer_tail, *defer_free;
	struct loop_watch *dead_watches;

	/* signals */
	int sigfd;
	sigset_t sigmask;
	struct loop_watch *sigwatch;
	loop_signal_fn sig_fn[NSIG];
	void *sig_arg[NSIG];

	/* cross-thread wake-ups */
	int wakefd;
	struct loop_watch *wakewatch;
	loop_wake_fn wake_fn;
	void *wake_arg;

	loop_defer_fn before_wait;
	void *before_wait_arg;
};

uint64_t
loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *
loop_create(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_error("loop: epoll_create1: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	l->wakefd = -1;
	sigemptyset(&l->sigmask);
	l->now = loop_clock_ms();
	return l;
}

/* ---- timer heap ------------------------------------------------------- */

static int
timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->slot = i;
}

static void
heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, l->heap[parent]))
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void
heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= l->heap_len)
			break;
		if (child + 1 < l->heap_len &&
		    timer_before(l->heap[child + 1], l->heap[child]))
			child++;
		if (!timer_before(l->heap[child], t))
			break;
		heap_set(l, i, l->heap[child]);
		i = child;
	}
	heap_set(l, i, t);
}

static void
heap_push(struct loop *l, struct loop_timer *t)
{
	if (l->heap_len == l->heap_cap) {
		l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 64;
		l->heap = xreallocarray(l->heap, l->heap_cap, sizeof(*l->heap));
	}
	heap_set(l, l->heap_len++, t);
	heap_up(l, t->slot);
}

static void
heap_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = t->slot;
	struct loop_timer *last = l->heap[--l->heap_len];

	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	heap_down(l, i);
	heap_up(l, last->slot);
}

struct loop_timer *
loop_timer_add(struct loop *l, unsigned ms, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t = xcalloc(1, sizeof(*t));

	t->due = l->now + ms;
	t->seq = l->timer_seq++;
	t->fn = fn;
	t->arg = arg;
	heap_push(l, t);
	return t;
}

void
loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (t == NULL)
		return;
	heap_remove(l, t);
	free(t);
}

void
loop_timer_reset(struct loop *l, struct loop_timer *t, unsigned ms)
{
	heap_remove(l, t);
	t->due = l->now + ms;
	t->seq = l->timer_seq++;
	heap_push(l, t);
}

static void
run_timers(struct loop *l)
{
	/* A timer re-armed for 0 ms must wait for the next iteration, or a
	 * callback returning 0-delay work could spin here forever. */
	uint64_t now = l->now;

	while (l->heap_len > 0 && l->heap[0]->due <= now) {
		struct loop_timer *t = l->heap[0];
		unsigned again;

		heap_remove(l, t);
		again = t->fn(t->arg);
		if (again > 0) {
			t->due = l->now + again;
			t->seq = l->timer_seq++;
			heap_push(l, t);
		} else {
			free(t);
		}
	}
}

/* ---- fd watches ------------------------------------------------------- */

static uint32_t
epoll_events(unsigned events)
{
	uint32_t ev = 0;

	if (events & LOOP_READ)
		ev |= EPOLLIN;
	if (events & LOOP_WRITE)
		ev |= EPOLLOUT;
	return ev;
}

static struct loop_watch *
watch_add(struct loop *l, int fd, uint32_t ev, unsigned events,
          loop_watch_fn fn, void *arg)
{
	struct loop_watch *w = xcalloc(1, sizeof(*w));
	struct epoll_event e = { .events = ev, .data.ptr = w };

	w->fd = fd;
	w->events = events;
	w->fn = fn;
	w->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		log_error("loop: epoll_ctl(ADD, fd %d): %s", fd,
		          strerror(errno));
		free(w);
		return NULL;
	}
	return w;
}

struct loop_watch *
loop_watch_add(struct loop *l, int fd, unsigned events, loop_watch_fn fn,
               void *arg)
{
	return watch_add(l, fd, epoll_events(events), events, fn, arg);
}

struct loop_watch *
loop_watch_add_exclusive(struct loop *l, int fd, loop_watch_fn fn, void *arg)
{
	return watch_add(l, fd, EPOLLIN | EPOLLEXCLUSIVE, LOOP_READ, fn, arg);
}

int
loop_watch_set(struct loop *l, struct loop_watch *w, unsigned events)
{
	struct epoll_event e = { .events = epoll_events(events),
	                         .data.ptr = w };

	if (w->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &e) < 0) {
		log_error("loop: epoll_ctl(MOD, fd %d): %s", w->fd,
		          strerror(errno));
		return -1;
	}
	w->events = events;
	return 0;
}

void
loop_watch_remove(struct loop *l, struct loop_watch *w)
{
	if (w == NULL || w->dead)
		return;
	/* The fd may already be closed by a careless caller; ignore ENOENT
	 * and EBADF, the kernel dropped it from the set then.  A loop
	 * inherited through fork shares its epoll set with the parent's:
	 * deleting from it would pull the parent's fds out too. */
	if (!l->inherited)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->dead = 1;
	w->next_dead = l->dead_watches;
	l->dead_watches = w;
}

static void
free_dead_watches(struct loop *l)
{
	while (l->dead_watches != NULL) {
		struct loop_watch *w = l->dead_watches;
		l->dead_watches = w->next_dead;
		free(w);
	}
}

/* ---- deferred calls --------------------------------------------------- */

void
loop_defer(struct loop *l, loop_defer_fn fn, void *arg)
{
	struct defer_item *d = l->defer_free;

	if (d != NULL)
		l->defer_free = d->next;
	else
		d = xmalloc(sizeof(*d));
	d->fn = fn;
	d->arg = arg;
	d->next = NULL;
	if (l->defer_tail != NULL)
		l->defer_tail->next = d;
	else
		l->defer_head = d;
	l->defer_tail = d;
}

static void
run_deferred(struct loop *l)
{
	/* Only what was queued before this point runs now; calls queued by
	 * these callbacks wait for the next iteration. */
	struct defer_item *d = l->defer_head;
	struct defer_item *last = l->defer_tail;

	if (d == NULL)
		return;
	l->defer_head = last->next;
	if (l->defer_head == NULL)
		l->defer_tail = NULL;
	last->next = NULL;
	while (d != NULL) {
		struct defer_item *next = d->next;
		d->fn(d->arg);
		d->next = l->defer_free;
		l->defer_free = d;
		d = next;
	}
}

/* ---- signals and wake-ups --------------------------------------------- */

static void
on_signalfd(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct loop *l = arg;
	struct signalfd_siginfo si;

	(void)w;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int signo = (int)si.ssi_signo;
		if (signo > 0 && signo < NSIG && l->sig_fn[signo] != NULL)
			l->sig_fn[signo](signo, l->sig_arg[signo]);
	}
}

int
loop_signal(struct loop *l, int signo, loop_signal_fn fn, void *arg)
{
	if (signo <= 0 || signo >= NSIG)
		return -1;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -1;
	l->sigfd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0) {
		log_error("loop: signalfd: %s", strerror(errno));
		return -1;
	}
	if (l->sigwatch == NULL)
		l->sigwatch = loop_watch_add(l, l->sigfd, LOOP_READ,
		                             on_signalfd, l);
	l->sig_fn[signo] = fn;
	l->sig_arg[signo] = arg;
	return l->sigwatch != NULL ? 0 : -1;
}

static void
on_wakefd(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct loop *l = arg;
	uint64_t n;

	(void)w;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error("loop: read(eventfd): %s", strerror(errno));
	if (l->wake_fn != NULL)
		l->wake_fn(l->wake_arg);
}

void
loop_set_wake(struct loop *l, loop_wake_fn fn, void *arg)
{
	l->wake_fn = fn;
	l->wake_arg = arg;
	if (l->wakefd >= 0)
		return;
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wakefd < 0) {
		log_error("loop: eventfd: %s", strerror(errno));
		return;
	}
	l->wakewatch = loop_watch_add(l, l->wakefd, LOOP_READ, on_wakefd, l);
}

void
loop_wake(struct loop *l)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: a wake-up is pending. */
	if (write(l->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("loop: write(eventfd): %s", strerror(errno));
}

void
loop_set_before_wait(struct loop *l, loop_defer_fn fn, void *arg)
{
	l->before_wait = fn;
	l->before_wait_arg = arg;
}

/* ---- running ---------------------------------------------------------- */

uint64_t
loop_now_ms(struct loop *l)
{
	return l->now;
}

static int
wait_timeout(struct loop *l, int max_wait_ms)
{
	int timeout = max_wait_ms;

	if (l->defer_head != NULL || l->stop)
		return 0;
	if (l->heap_len > 0) {
		uint64_t due = l->heap[0]->due;
		uint64_t now = loop_clock_ms();
		uint64_t wait = due > now ? due - now : 0;
		if (wait > INT32_MAX)
			wait = INT32_MAX;
		if (timeout < 0 || (int)wait < timeout)
			timeout = (int)wait;
	}
	return timeout;
}

int
loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event ev[LOOP_MAX_EVENTS];
	int n, i;

	n = epoll_wait(l->epfd, ev, LOOP_MAX_EVENTS,
	               wait_timeout(l, max_wait_ms));
	if (n < 0 && errno != EINTR) {
		log_error("loop: epoll_wait: %s", strerror(errno));
		return -1;
	}
	l->now = loop_clock_ms();
	for (i = 0; i < n; i++) {
		struct loop_watch *w = ev[i].data.ptr;
		unsigned events = 0;

		if (w->dead)
			continue;
		if (ev[i].events & EPOLLIN)
			events |= LOOP_READ;
		if (ev[i].events & EPOLLOUT)
			events |= LOOP_WRITE;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			events |= LOOP_ERROR;
		w->fn(w, w->fd, events, w->arg);
	}
	run_timers(l);
	run_deferred(l);
	if (l->before_wait != NULL)
		l->before_wait(l->before_wait_arg);
	free_dead_watches(l);
	return 0;
}

int
loop_run(struct loop *l)
{
	l->stop = 0;
	while (!l->stop) {
		if (loop_run_once(l, -1) < 0)
			return -1;
	}
	return 0;
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

void
loop_destroy_inherited(struct loop *l)
{
	if (l == NULL)
		return;
	l->inherited = 1;
	loop_destroy(l);
}

void
loop_destroy(struct loop *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->heap_len; i++)
		free(l->heap[i]);
	free(l->heap);
	loop_watch_remove(l, l->sigwatch);
	loop_watch_remove(l, l->wakewatch);
	free_dead_watches(l);
	while (l->defer_head != NULL) {
		struct defer_item *d = l->defer_head;
		l->defer_head = d->next;
		free(d);
	}
	while (l->defer_free != NULL) {
		struct defer_item *d = l->defer_free;
		l->defer_free = d->next;
		free(d);
	}
	/* Signals stay blocked: a forked worker destroys the master's loop
	 * after making its own, and must not open a window in which a
	 * SIGTERM kills it instead of starting a graceful stop. */
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	close(l->epfd);
	free(l);
}
