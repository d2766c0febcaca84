/*
 * notify.h - tells the service manager how posternd stands: systemd's
 * sd_notify protocol, written against its documented socket (see
 * sd_notify(3): one datagram of "KEY=VALUE" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET).  Without $NOTIFY_SOCKET it does nothing, so
 * posternd runs the same under any other supervisor.
 */
#ifndef POSTERN_NOTIFY_H
#define POSTERN_NOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=..."); master only.  Returns 0 if
 * sent or if nobody listens, -1 (logged) if the socket refused it. */
int notify_send(const char *state);

/* The state words posternd sends, with MAINPID and a STATUS line. */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);

#endif
