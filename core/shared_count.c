/*
 * shared_count.c - counters shared by every worker (see shared_count.h).
 */
#include "shared_count.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "log.h"
#include "xalloc.h"

struct postern_counts {
	uint64_t seed;
	uint16_t (*buckets)[SHARED_COUNT_WORKERS];
	struct postern_counts *next; /* every table, for worker_start */
};

static struct postern_counts *tables;
static unsigned my_column; /* this worker's; 0 in a single process */

struct postern_counts *
shared_count_create(void)
{
	struct postern_counts *t = xcalloc(1, sizeof(*t));
	void *p;

	p = mmap(NULL, sizeof(*t->buckets) * SHARED_COUNT_BUCKETS,
	         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("shared counters: cannot map a table of %zu bytes: "
		          "%s", sizeof(*t->buckets) * SHARED_COUNT_BUCKETS,
		          strerror(errno));
		free(t);
		return NULL;
	}
	t->buckets = p;
	t->seed = shared_seed();
	t->next = tables;
	tables = t;
	return t;
}

void
shared_count_worker_start(int worker_id)
{
	struct postern_counts *t;
	size_t b;

	my_column = worker_id < 0 ? 0
	                          : (unsigned)worker_id % SHARED_COUNT_WORKERS;
	for (t = tables; t != NULL; t = t->next)
		for (b = 0; b < SHARED_COUNT_BUCKETS; b++)
			__atomic_store_n(&t->buckets[b][my_column], 0,
			                 __ATOMIC_RELAXED);
}

uint64_t
shared_seed(void)
{
	uint64_t seed;

	/* Clients choose their keys (addresses, a whole IPv6 /64, sender
	 * domains): they must not be able to pile them into one bucket. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) < 0)
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	return seed;
}

/* FNV-1a over the seed and the key. */
uint64_t
shared_hash(uint64_t seed, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 14695981039346656037ull ^ seed;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

static unsigned
bucket_of(const struct postern_counts *t, const void *key, size_t len)
{
	return (unsigned)(shared_hash(t->seed, key, len) %
	                  SHARED_COUNT_BUCKETS);
}

int
shared_count_take(struct postern_counts *t, const void *key, size_t len,
                  unsigned max, unsigned *ticket, unsigned *total)
{
	unsigned b = bucket_of(t, key, len), w, sum = 0;
	uint16_t *mine = &t->buckets[b][my_column];

	*ticket = 0;
	if (__atomic_load_n(mine, __ATOMIC_RELAXED) == UINT16_MAX)
		goto over;
	/* Counted first, then summed: two takes at once in two workers may
	 * both be refused, never both let in past the limit. */
	__atomic_add_fetch(mine, 1, __ATOMIC_SEQ_CST);
	for (w = 0; w < SHARED_COUNT_WORKERS; w++)
		sum += __atomic_load_n(&t->buckets[b][w], __ATOMIC_SEQ_CST);
	if (sum > max) {
		__atomic_sub_fetch(mine, 1, __ATOMIC_SEQ_CST);
		if (total != NULL)
			*total = sum - 1;
		return -1;
	}
	*ticket = b + 1;
	return 0;
over:
	if (total != NULL)
		*total = UINT16_MAX;
	return -1;
}

void
shared_count_put(struct postern_counts *t, unsigned ticket)
{
	uint16_t *mine;

	if (t == NULL || ticket == 0 || ticket > SHARED_COUNT_BUCKETS)
		return;
	mine = &t->buckets[ticket - 1][my_column];
	/* Never below zero: a column zeroed by a restart is not owed. */
	if (__atomic_load_n(mine, __ATOMIC_SEQ_CST) > 0)
		__atomic_sub_fetch(mine, 1, __ATOMIC_SEQ_CST);
}
