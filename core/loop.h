/*
 * loop.h - the event loop: epoll, timers, deferred calls and signals.
 *
 * One loop per process, single-threaded.  Everything a worker does happens
 * in a callback of its loop.  The one thread-safe entry point is
 * loop_wake(), used by job threads to hand completions back.
 */
#ifndef CORE_LOOP_H
#define CORE_LOOP_H

#include <stdint.h>
#include <signal.h>

struct loop;
struct loop_timer;
struct loop_watch;

typedef unsigned (*loop_timer_fn)(void *arg); /* 0: drop; N: again in N ms */
typedef void (*loop_watch_fn)(struct loop_watch *w, int fd, unsigned events,
                              void *arg);
typedef void (*loop_defer_fn)(void *arg);
typedef void (*loop_signal_fn)(int signo, void *arg);
typedef void (*loop_wake_fn)(void *arg);

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u

struct loop *loop_create(void);
/* Frees the loop and its armed timers.  Owners remove their watches
 * first (loop_watch_remove); fds are never closed here. */
void loop_destroy(struct loop *l);
/* The same, in a child process for the copy of its parent's loop: it
 * closes the child's fds without touching the epoll set, which the parent
 * still uses (an epoll set is shared across fork, not copied). */
void loop_destroy_inherited(struct loop *l);

/* Runs until loop_stop.  Returns 0, or -1 on an epoll failure. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* Runs one iteration, waiting at most `max_wait_ms` (-1: until an event). */
int loop_run_once(struct loop *l, int max_wait_ms);

/* CLOCK_MONOTONIC in ms as of the start of the loop's iteration. */
uint64_t loop_now_ms(struct loop *l);
/* The same clock, read now (any thread). */
uint64_t loop_clock_ms(void);

struct loop_timer *loop_timer_add(struct loop *l, unsigned ms,
                                  loop_timer_fn fn, void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
/* Re-arms an armed timer to fire `ms` from now (cheap; for idle timers). */
void loop_timer_reset(struct loop *l, struct loop_timer *t, unsigned ms);

struct loop_watch *loop_watch_add(struct loop *l, int fd, unsigned events,
                                  loop_watch_fn fn, void *arg);
/* `exclusive`: EPOLLEXCLUSIVE, for listening sockets shared by workers. */
struct loop_watch *loop_watch_add_exclusive(struct loop *l, int fd,
                                            loop_watch_fn fn, void *arg);
int loop_watch_set(struct loop *l, struct loop_watch *w, unsigned events);
void loop_watch_remove(struct loop *l, struct loop_watch *w);

/* Calls fn(arg) in a later phase of the current iteration (or the next
 * one), never from inside loop_defer itself.  FIFO. */
void loop_defer(struct loop *l, loop_defer_fn fn, void *arg);

/* Delivers `signo` through a signalfd; the signal is blocked for the
 * process (and stays blocked after loop_destroy).  One handler per
 * signal. */
int loop_signal(struct loop *l, int signo, loop_signal_fn fn, void *arg);

/* Registers the function loop_wake() triggers, on the loop thread. */
void loop_set_wake(struct loop *l, loop_wake_fn fn, void *arg);
/* Thread-safe: makes the loop call its wake function soon. */
void loop_wake(struct loop *l);

/* Called at the end of every iteration, before waiting again (flushing
 * connection output, for one).  One per loop. */
void loop_set_before_wait(struct loop *l, loop_defer_fn fn, void *arg);



/* The loop of this process (set by whoever runs it: the worker, or a
 * test).  The host table's loop, connection and hook functions use it. */
extern struct loop *loop_current;

#endif /* CORE_LOOP_H */
