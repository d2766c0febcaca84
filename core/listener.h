/*
 * listener.h - listening sockets: registered by modules at init, bound by
 * the master, accepted on by every worker.
 *
 * Workers share each listening socket and watch it with EPOLLEXCLUSIVE, so
 * one connection wakes one worker.  On reload (SIGHUP) the master re-execs
 * itself and hands the bound sockets over, so no connection is refused
 * while the new configuration starts.
 */
#ifndef CORE_LISTENER_H
#define CORE_LISTENER_H

#include <sys/socket.h>

#include <postern/host.h>

struct loop;

/* A socket inherited across a reload: its address key and fd. */
struct inherited_fd {
	char key[128]; /* listener_key() of the address */
	int fd;
	int used;
};

/* Registers (copies) a listener for module `owner`.  NULL after
 * logging (bad address, duplicate address). */
postern_listener_t *listener_add(const char *owner,
                                 const struct postern_listen_spec *spec);
/* "127.0.0.1:25", "[::1]:143", "unix:/run/x.sock".  Static buffer. */
const char *listener_key(const postern_listener_t *l);

/* Master: binds every registered listener, taking an inherited fd with a
 * matching key when there is one (and marking it used).  -1 after logging
 * the address that failed. */
int listener_bind_all(struct inherited_fd *inherited, size_t n);
/* Every bound listener, for handing over on reload. */
size_t listener_count(void);
postern_listener_t *listener_at(size_t i);
int listener_fd(const postern_listener_t *l);
/* The port actually bound (differs from the spec's for port 0, which
 * tests use); 0 for unix sockets and before binding. */
unsigned listener_port(const postern_listener_t *l);

/* Worker: starts accepting on loop `l`. */
int listener_start_all(struct loop *l);
/* Worker: stops accepting (graceful stop); sockets stay open. */
void listener_stop_all(struct loop *l);
/* The local TCP port of socket `fd` (0 for unix sockets or on error). */
unsigned socket_local_port(int fd);

/* Closes and frees every listener (exit; tests). */
void listener_reset(void);

/* postern_connections_total{listener} and postern_sessions{protocol};
 * after the modules' init, before the workers fork. */
void listener_metrics_register(void);
/* Worker: a connection accepted on listener spec `spec` opened (+1) or
 * closed (-1), for postern_sessions. */
void listener_sessions_add(const struct postern_listen_spec *spec,
                           int delta);

/*
 * Admission: every connection a worker accepts is counted against its
 * listener's max_conns (in this worker) and max_per_ip (over every
 * worker, in memory shared since before the fork).
 */
/* Master, before the workers fork: the table of per-address counts
 * (a process that did not, a test, makes its own at its first
 * conn_init).  0, or -1 (logged). */
int listener_share_setup(void);
/* Worker: admits a client of listener spec `spec` from `peer`
 * (`peer_text` and `peer_port` and `fd` for the log line of a
 * refusal).  0 with *ticket set for listener_leave, or -1 after logging
 * the refusal. */
int listener_admit(const struct postern_listen_spec *spec,
                   const struct sockaddr_storage *peer,
                   const char *peer_text, unsigned peer_port, int fd,
                   unsigned *ticket);
/* Worker: the client admitted with `ticket` has gone. */
void listener_leave(const struct postern_listen_spec *spec,
                    unsigned ticket);
/* Forgets this worker's counts (conn_fini). */
void listener_admit_reset(void);

#endif /* CORE_LISTENER_H */
