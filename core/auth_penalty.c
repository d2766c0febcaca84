/*
 * auth_penalty.c - the shared table of failed logins (see auth_penalty.h).
 *
 * One robust process-shared mutex guards the table: every operation is a
 * few dozen memory accesses with no allocation and no system call, so
 * contention is not worth finer locks, and a worker that dies holding it
 * (it cannot, short of a bug here) leaves it usable to the others.
 *
 * Keys are SipHash-2-4 of what they stand for under a secret made at
 * creation, so a client cannot choose names or addresses that pile into
 * one probe window, and the tags of wrong passwords say nothing about
 * them to anyone who reads the memory.
 */
#include "auth_penalty.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <netinet/in.h>

#include "log.h"

#define PENALTY_MAX_SHIFT 20 /* failures past this add nothing */
#define PENALTY_MAX_COUNT 1000

struct penalty_slot {
	uint64_t key;     /* 0: free */
	uint64_t last_ms; /* last failure */
	uint64_t tags_ms; /* last failure that a check confirmed: the tags
	                     are believed until PENALTY_TAG_TTL_MS after */
	uint32_t failures;
	uint32_t next_tag; /* where the next tag goes in tags[] */
	uint64_t tags[PENALTY_TAGS];
};

struct auth_penalty {
	pthread_mutex_t lock;
	uint64_t secret[2];
	struct penalty_settings set;
	size_t map_size;
	struct penalty_slot slots[];
};

/* ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ----------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                            \
	do {                                                                \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);   \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                      \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                      \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);   \
	} while (0)

static uint64_t
load64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
siphash(const uint64_t key[2], const unsigned char *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (m = 0; tail > 0; tail--)
		m |= (uint64_t)in[i + tail - 1] << (8 * (tail - 1));
	b |= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table -------------------------------------------------------- */

struct auth_penalty *
penalty_create(const struct penalty_settings *set)
{
	struct auth_penalty *t;
	pthread_mutexattr_t ma;
	size_t size;

	if (set->slots == 0 ||
	    set->slots > (SIZE_MAX - sizeof(*t)) / sizeof(t->slots[0]))
		return NULL;
	size = sizeof(*t) + set->slots * sizeof(t->slots[0]);
	t = mmap(NULL, size, PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED) {
		log_error("auth penalty: cannot map a shared table of %zu "
		          "bytes: %s", size, strerror(errno));
		return NULL;
	}
	if (getrandom(t->secret, sizeof(t->secret), 0) !=
	    (ssize_t)sizeof(t->secret)) {
		log_error("auth penalty: getrandom: %s", strerror(errno));
		munmap(t, size);
		return NULL;
	}
	t->set = *set;
	t->map_size = size;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&t->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	return t;
}

void
penalty_destroy(struct auth_penalty *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	munmap(t, t->map_size);
}

static void
table_lock(struct auth_penalty *t)
{
	/* The owner died inside: every critical section leaves the slots
	 * consistent at each store, so the table is usable as it is. */
	if (pthread_mutex_lock(&t->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&t->lock);
}

/* Time since the slot's last failure; 0 while that is still ahead (a
 * failure is stamped with the time its answer goes out). */
static uint64_t
since(const struct penalty_slot *s, uint64_t now)
{
	return now > s->last_ms ? now - s->last_ms : 0;
}

static int
expired(const struct auth_penalty *t, const struct penalty_slot *s,
        uint64_t now)
{
	return s->key == 0 || since(s, now) >= t->set.expire_ms;
}

/* The live entry for `key`, or NULL; with `create`, a new one in the
 * first free slot of the window, else in place of the oldest. */
static struct penalty_slot *
slot_find(struct auth_penalty *t, uint64_t key, uint64_t now, int create)
{
	struct penalty_slot *s, *free_slot = NULL, *oldest = NULL;
	size_t i, n = t->set.slots;

	if (key == 0)
		return NULL;
	for (i = 0; i < PENALTY_PROBE && i < n; i++) {
		s = &t->slots[(key + i) % n];
		if (s->key == key && !expired(t, s, now))
			return s;
		if (expired(t, s, now)) {
			if (free_slot == NULL)
				free_slot = s;
		} else if (oldest == NULL || s->last_ms < oldest->last_ms)
			oldest = s;
	}
	if (!create)
		return NULL;
	if ((s = free_slot != NULL ? free_slot : oldest) == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->key = key;
	s->last_ms = now;
	return s;
}

static int
tag_listed(const struct penalty_slot *s, uint64_t tag)
{
	size_t i;

	if (s == NULL || s->failures == 0)
		return 0;
	for (i = 0; i < PENALTY_TAGS; i++)
		if (s->tags[i] == tag)
			return 1;
	return 0;
}

/* Whether `tag` failed lately here, to answer without a check.  Only
 * for PENALTY_TAG_TTL_MS after the last checked failure: a password that
 * failed and has since become the account's password is checked again
 * soon. */
static int
has_tag(const struct penalty_slot *s, uint64_t tag, uint64_t now)
{
	if (s == NULL ||
	    (now > s->tags_ms && now - s->tags_ms >= PENALTY_TAG_TTL_MS))
		return 0;
	return tag_listed(s, tag);
}

/* What is left to wait of the delay `s`'s failures earned. */
static unsigned
slot_delay(const struct auth_penalty *t, const struct penalty_slot *s,
           uint64_t now)
{
	uint64_t d, gone;
	unsigned shift;

	if (s == NULL || s->failures == 0)
		return 0;
	shift = s->failures - 1 < PENALTY_MAX_SHIFT ? s->failures - 1
	                                            : PENALTY_MAX_SHIFT;
	d = (uint64_t)t->set.init_ms << shift;
	if (d > t->set.max_ms)
		d = t->set.max_ms;
	gone = since(s, now);
	return gone >= d ? 0 : (unsigned)(d - gone);
}

void
penalty_check(struct auth_penalty *t, const struct penalty_key *k,
              uint64_t now_ms, struct penalty_verdict *v)
{
	struct penalty_slot *a, *c;
	unsigned da, dc;

	memset(v, 0, sizeof(*v));
	if (t == NULL || t->set.max_ms == 0)
		return;
	table_lock(t);
	a = slot_find(t, k->addr, now_ms, 0);
	c = slot_find(t, k->account, now_ms, 0);
	da = slot_delay(t, a, now_ms);
	dc = slot_delay(t, c, now_ms);
	v->wait_ms = da > dc ? da : dc;
	v->known_wrong = has_tag(a, k->tag, now_ms) ||
	                 has_tag(c, k->tag, now_ms);
	v->flagged = (a != NULL && a->failures > 0) ||
	             (c != NULL && c->failures > 0);
	pthread_mutex_unlock(&t->lock);
}

static void
slot_fail(struct auth_penalty *t, uint64_t key, uint64_t tag, uint64_t now)
{
	struct penalty_slot *s = slot_find(t, key, now, 1);
	int known;

	if (s == NULL)
		return;
	known = tag_listed(s, tag);
	s->last_ms = now;
	s->tags_ms = now;
	/* The same wrong pair again is a misconfigured client more likely
	 * than a guess: it keeps the penalty alive but does not grow it. */
	if (known)
		return;
	if (s->failures < PENALTY_MAX_COUNT)
		s->failures++;
	s->tags[s->next_tag] = tag;
	s->next_tag = (s->next_tag + 1) % PENALTY_TAGS;
}

void
penalty_failed(struct auth_penalty *t, const struct penalty_key *k,
               uint64_t now_ms)
{
	if (t == NULL || t->set.max_ms == 0)
		return;
	table_lock(t);
	slot_fail(t, k->addr, k->tag, now_ms);
	slot_fail(t, k->account, k->tag, now_ms);
	pthread_mutex_unlock(&t->lock);
}

void
penalty_repeated(struct auth_penalty *t, const struct penalty_key *k,
                 uint64_t now_ms)
{
	struct penalty_slot *s;
	uint64_t keys[2] = { k->addr, k->account };
	size_t i;

	if (t == NULL || t->set.max_ms == 0)
		return;
	table_lock(t);
	for (i = 0; i < 2; i++)
		if ((s = slot_find(t, keys[i], now_ms, 0)) != NULL &&
		    s->last_ms < now_ms)
			s->last_ms = now_ms;
	pthread_mutex_unlock(&t->lock);
}

void
penalty_refused(struct auth_penalty *t, const struct penalty_key *k,
                uint64_t now_ms)
{
	struct penalty_slot *s;

	if (t == NULL || t->set.max_ms == 0)
		return;
	table_lock(t);
	if ((s = slot_find(t, k->addr, now_ms, 1)) != NULL) {
		s->last_ms = now_ms;
		if (s->failures < PENALTY_MAX_COUNT)
			s->failures++;
	}
	pthread_mutex_unlock(&t->lock);
}

void
penalty_succeeded(struct auth_penalty *t, const struct penalty_key *k)
{
	size_t i, j, n;
	uint64_t keys[2];

	if (t == NULL || t->set.max_ms == 0)
		return;
	keys[0] = k->addr;
	keys[1] = k->account;
	n = t->set.slots;
	table_lock(t);
	for (j = 0; j < 2; j++)
		for (i = 0; keys[j] != 0 && i < PENALTY_PROBE && i < n; i++)
			if (t->slots[(keys[j] + i) % n].key == keys[j])
				memset(&t->slots[(keys[j] + i) % n], 0,
				       sizeof(t->slots[0]));
	pthread_mutex_unlock(&t->lock);
}

size_t
penalty_used(struct auth_penalty *t, uint64_t now_ms)
{
	size_t i, used = 0;

	table_lock(t);
	for (i = 0; i < t->set.slots; i++)
		used += !expired(t, &t->slots[i], now_ms);
	pthread_mutex_unlock(&t->lock);
	return used;
}

void
penalty_counts(struct auth_penalty *t, const struct penalty_key *k,
               uint64_t now_ms, unsigned *addr, unsigned *account)
{
	struct penalty_slot *s;

	table_lock(t);
	s = slot_find(t, k->addr, now_ms, 0);
	*addr = s != NULL ? s->failures : 0;
	s = slot_find(t, k->account, now_ms, 0);
	*account = s != NULL ? s->failures : 0;
	pthread_mutex_unlock(&t->lock);
}

/* ---- keys ------------------------------------------------------------- */

/* A hash that is never 0 (0 marks a free slot and "no key"). */
static uint64_t
key_of(const struct auth_penalty *t, const unsigned char *in, size_t len)
{
	uint64_t h = siphash(t->secret, in, len);

	return h != 0 ? h : 1;
}

static uint64_t
addr_key(const struct auth_penalty *t, const struct sockaddr *sa,
         socklen_t salen)
{
	static const unsigned char v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	unsigned char buf[1 + 8];
	const struct sockaddr_in6 *s6;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		buf[0] = '4';
		memcpy(buf + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return key_of(t, buf, 5);
	}
	if (sa->sa_family != AF_INET6 || salen < sizeof(*s6))
		return 0;
	s6 = (const struct sockaddr_in6 *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, v4mapped, 12) == 0) {
		/* The same client as its IPv4 address. */
		buf[0] = '4';
		memcpy(buf + 1, s6->sin6_addr.s6_addr + 12, 4);
		return key_of(t, buf, 5);
	}
	buf[0] = '6';
	memcpy(buf + 1, s6->sin6_addr.s6_addr, 8); /* the /64 */
	return key_of(t, buf, 9);
}

void
penalty_key(const struct auth_penalty *t, const struct sockaddr *sa,
            socklen_t salen, const char *name, const char *password,
            size_t len, struct penalty_key *k)
{
	unsigned char *buf;
	size_t nlen = strlen(name), i;

	memset(k, 0, sizeof(*k));
	if (t == NULL)
		return;
	k->addr = addr_key(t, sa, salen);
	/* "a" name, then "t" name NUL password; the name in lower case,
	 * as the backends compare it. */
	if ((buf = malloc(2 + nlen + len)) == NULL)
		abort();
	buf[0] = 'a';
	for (i = 0; i < nlen; i++)
		buf[1 + i] = (unsigned char)(name[i] >= 'A' && name[i] <= 'Z'
		                             ? name[i] + 32 : name[i]);
	k->account = key_of(t, buf, 1 + nlen);
	buf[0] = 't';
	buf[1 + nlen] = '\0';
	memcpy(buf + 2 + nlen, password, len);
	k->tag = key_of(t, buf, 2 + nlen + len);
	explicit_bzero(buf, 2 + nlen + len);
	free(buf);
}
