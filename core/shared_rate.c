/*
 * shared_rate.c - event rates shared by every worker (see shared_rate.h).
 *
 * A bucket is one 64-bit word: the low 16 bits of the current window's
 * number, then the current window's count (24 bits) and the previous
 * window's (24 bits), so one compare-and-swap moves the window and adds
 * the events at once.
 */
#include "shared_rate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "shared_count.h"
#include "xalloc.h"

struct postern_rates {
	uint64_t seed;
	uint64_t window_ms;
	uint64_t *buckets;
	struct postern_rates *next; /* kept for the process's life */
};

static struct postern_rates *tables;

#define W_BITS 16
#define W_MASK ((1u << W_BITS) - 1)
#define C_MASK SHARED_RATE_MAX

static uint64_t
pack(unsigned window, unsigned cur, unsigned prev)
{
	return (uint64_t)(window & W_MASK) | (uint64_t)(cur & C_MASK) << 16 |
	       (uint64_t)(prev & C_MASK) << 40;
}

struct postern_rates *
shared_rate_create(uint64_t window_ms)
{
	struct postern_rates *t = xcalloc(1, sizeof(*t));
	size_t size = sizeof(uint64_t) * SHARED_RATE_BUCKETS;
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("shared rates: cannot map a table of %zu bytes: %s",
		          size, strerror(errno));
		free(t);
		return NULL;
	}
	t->buckets = p;
	t->window_ms = window_ms > 0 ? window_ms : 1;
	t->seed = shared_seed();
	t->next = tables;
	tables = t;
	return t;
}

static size_t
bucket_of(const struct postern_rates *t, const void *key, size_t len)
{
	return (size_t)(shared_hash(t->seed, key, len) % SHARED_RATE_BUCKETS);
}

int
shared_rate_hit(struct postern_rates *t, const void *key, size_t len,
                unsigned cost, unsigned max, uint64_t now_ms, unsigned *rate)
{
	uint64_t *b = &t->buckets[bucket_of(t, key, len)];
	uint64_t old = __atomic_load_n(b, __ATOMIC_ACQUIRE), next;
	unsigned window = (unsigned)(now_ms / t->window_ms) & W_MASK;
	uint64_t into = now_ms % t->window_ms; /* ms into this window */
	unsigned w, cur, prev, est;

	for (;;) {
		w = (unsigned)(old & W_MASK);
		cur = (unsigned)(old >> 16) & C_MASK;
		prev = (unsigned)(old >> 40) & C_MASK;
		if (w != window) {
			/* The next window: cur becomes prev.  Any later one:
			 * both are over. */
			prev = ((w + 1) & W_MASK) == window ? cur : 0;
			cur = 0;
		}
		/* The part of the previous window still within one window
		 * back from now. */
		est = cur + (unsigned)((uint64_t)prev *
		                       (t->window_ms - into) / t->window_ms);
		if (rate != NULL)
			*rate = est;
		if ((uint64_t)est + cost > max)
			return -1;
		next = pack(window, cur + cost > C_MASK ? C_MASK : cur + cost,
		            prev);
		if (__atomic_compare_exchange_n(b, &old, next, 0,
		                                __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE))
			return 0;
	}
}
