/*
 * imap_userip.c - logged-in sessions per user and client address, the
 * `max_userip_connections` limit (Dovecot's mail_max_userip_connections).
 *
 * The counts live in a table the master maps shared before it forks, so
 * the limit holds across workers.  A bucket (a hash of user and address)
 * has one counter per worker, and a worker zeroes its own column when it
 * starts: a worker that died leaves no phantom sessions behind.  Pairs
 * that hash to the same bucket share one limit; with 8192 buckets that
 * is rare, and it can only refuse early, never let more in.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "imap.h"

#define USERIP_BUCKETS 8192
#define USERIP_WORKERS 64   /* worker ids above share columns */

static uint16_t (*userip)[USERIP_WORKERS];

int
imap_userip_init(void)
{
	void *p;

	if (imap_cfg.max_userip_conns == 0)
		return 0;
	p = mmap(NULL, sizeof(*userip) * USERIP_BUCKETS,
	         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		imap_host->log(imap_self, POSTERN_LOG_ERROR,
		               "max_userip_connections: cannot map the shared "
		               "table: %m");
		return -1;
	}
	userip = p;
	return 0;
}

static unsigned
column(void)
{
	int id = imap_host->worker_id();

	return id < 0 ? 0 : (unsigned)id % USERIP_WORKERS;
}

void
imap_userip_worker_start(void)
{
	size_t b;

	if (userip == NULL)
		return;
	for (b = 0; b < USERIP_BUCKETS; b++)
		__atomic_store_n(&userip[b][column()], 0, __ATOMIC_RELAXED);
}

static unsigned
bucket(const char *user, const char *peer)
{
	uint32_t h = 2166136261u;   /* FNV-1a */
	const char *p;

	for (p = user; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0xff) * 16777619u;  /* no byte of a name or address */
	for (p = peer; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % USERIP_BUCKETS;
}

int
imap_userip_enter(struct imap_session *s, const char *user)
{
	unsigned b, w, total = 0;

	if (userip == NULL || s->userip != 0)
		return 0;
	b = bucket(user, imap_host->conn_peer(s->conn));
	/* Counted first, then summed: two logins at once in two workers
	 * may both be refused, never both let in past the limit. */
	__atomic_add_fetch(&userip[b][column()], 1, __ATOMIC_SEQ_CST);
	for (w = 0; w < USERIP_WORKERS; w++)
		total += __atomic_load_n(&userip[b][w], __ATOMIC_SEQ_CST);
	if (total > (unsigned)imap_cfg.max_userip_conns) {
		__atomic_sub_fetch(&userip[b][column()], 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	s->userip = b + 1;
	return 0;
}

void
imap_userip_leave(struct imap_session *s)
{
	if (userip == NULL || s->userip == 0)
		return;
	__atomic_sub_fetch(&userip[s->userip - 1][column()], 1,
	                   __ATOMIC_SEQ_CST);
	s->userip = 0;
}
