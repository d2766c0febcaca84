/*
 * notify.c - the sd_notify protocol (see notify.h).
 *
 * $NOTIFY_SOCKET is a path, or an abstract socket when it starts with
 * '@'.  Each message is one datagram; systemd reads READY=1 (start-up
 * done: a Type=notify unit is "active"), RELOADING=1 (a reload began;
 * READY=1 ends it, and MONOTONIC_USEC tells Type=notify-reload which
 * reload it was), STOPPING=1 and MAINPID.  The variable is left in the
 * environment: a reload re-executes the master, which must find it again.
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"

static int
notify_address(const char *name, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(name);

	if ((name[0] != '/' && name[0] != '@') || n < 2 ||
	    n >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@')
		sun->sun_path[0] = '\0'; /* abstract: no trailing NUL */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                   (name[0] == '/' ? 1 : 0));
	return 0;
}

int
notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd, rc = 0;

	if (name == NULL || name[0] == '\0')
		return 0;
	if (notify_address(name, &sun, &len) < 0) {
		log_warning("NOTIFY_SOCKET '%s' is not a socket path or an "
		            "abstract name: the service manager is not told",
		            name);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	                     (struct sockaddr *)&sun, len) < 0) {
		log_warning("cannot notify the service manager at %s: %s",
		            name, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

void
notify_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%s",
	         (int)getpid(), status);
	notify_send(msg);
}

void
notify_reloading(void)
{
	struct timespec ts;
	char msg[128];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\n"
	         "STATUS=reloading",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	             (unsigned long long)ts.tv_nsec / 1000u);
	notify_send(msg);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1\nSTATUS=stopping");
}
