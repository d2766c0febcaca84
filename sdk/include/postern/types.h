/*
 * postern/types.h - opaque handles, result codes and log levels shared by
 * every part of the SDK.
 *
 * Every handle below is owned by the host unless a function says otherwise.
 * A module never frees one with free(); it calls the matching host function.
 */
#ifndef POSTERN_TYPES_H
#define POSTERN_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded module, as the host knows it.  Passed to init; valid until exit. */
typedef struct postern_module_ctx postern_module_t;

/* A node of the configuration tree (a group, list, array or scalar).
 * Owned by the host; valid for the life of the process. */
typedef struct postern_cfg postern_cfg_t;

/* A TLS server context (certificate, key, chain, protocol floor). */
typedef struct postern_tls postern_tls_t;

/* A bound listening socket and the module that serves it. */
typedef struct postern_listener postern_listener_t;

/* One client connection: socket, TLS state, input and output buffers. */
typedef struct postern_conn postern_conn_t;

/* A one-shot or repeating timer on the worker's event loop. */
typedef struct postern_timer postern_timer_t;

/* A file descriptor watched by the worker's event loop. */
typedef struct postern_watch postern_watch_t;

/* A unit of blocking work run on the worker's thread pool. */
typedef struct postern_job postern_job_t;

/* A memory pool: many allocations, one free. */
typedef struct postern_pool postern_pool_t;

/* A message being received: memory, then an unlinked temporary file. */
typedef struct postern_spool postern_spool_t;

/* A named hook point (e.g. "smtp.rcpt") and one running dispatch of it. */
typedef struct postern_hook postern_hook_t;
typedef struct postern_hook_call postern_hook_call_t;

/* A function registered to run in the worker's isolation process. */
typedef struct postern_isolated postern_isolated_t;

/* Counters every worker shares (host->counts_create). */
typedef struct postern_counts postern_counts_t;
/* Event rates summed over all workers (host->rates_create, ABI 1.6). */
typedef struct postern_rates postern_rates_t;

/* An envelope address's parts (host->address_split, ABI 1.6). */
struct postern_address_parts {
	size_t size;            /* sizeof(struct postern_address_parts) */
	const char *local;      /* the local part as given */
	const char *user;       /* up to the subaddress delimiter, lower */
	const char *detail;     /* after it, or NULL */
	const char *domain;     /* lower-cased; "" without '@' */
};

/* An IPv4 or IPv6 network, or one address as a /32 or /128
 * (host->network_parse, ABI 1.7). */
struct postern_network {
	int family;              /* AF_INET or AF_INET6 */
	unsigned prefix;         /* leading bits that count: 0-32, 0-128 */
	unsigned char addr[16];  /* network byte order; AF_INET uses 4 */
};

/* Result codes.  Functions that can fail return one of these (or a
 * documented negative value); 0 is success everywhere. */
enum postern_status {
	POSTERN_OK = 0,
	POSTERN_ERROR = -1,     /* failed; the reason was logged */
	POSTERN_AGAIN = -2,     /* not enough input yet; try on the next read */
	POSTERN_TOOLONG = -3,   /* a line or item exceeded its limit */
	POSTERN_NOTFOUND = -4,  /* no such key, service or item */
	POSTERN_CLOSED = -5,    /* the connection is closing or closed */
};

/* Log levels, most severe first (syslog's order). */
enum postern_log_level {
	POSTERN_LOG_ERROR = 3,
	POSTERN_LOG_WARNING = 4,
	POSTERN_LOG_NOTICE = 5,
	POSTERN_LOG_INFO = 6,
	POSTERN_LOG_DEBUG = 7,
};

/*
 * True when the size-first struct at `p` (its first member `size` set by
 * whoever built it) is large enough to hold `member`.  A function that
 * receives such a struct from another module checks every member added
 * after the struct's first version before reading it, since the other
 * module may have been built with an older SDK; a function that fills
 * one copies at most `size` bytes.
 */
#define POSTERN_SIZED_HAS(p, member)                                        \
	((p)->size >= offsetof(__typeof__(*(p)), member) + sizeof((p)->member))

/* Ids of host->unique_id (ABI 1.9): 20 uppercase hex digits. */
#define POSTERN_ID_LEN 20
#define POSTERN_ID_SIZE (POSTERN_ID_LEN + 1)

#if defined(__GNUC__)
#define POSTERN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define POSTERN_PRINTF(fmt, args)
#endif

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_TYPES_H */
