/*
 * imap_userip.c - logged-in sessions per user and client address, the
 * `max_userip_connections` limit (Dovecot's mail_max_userip_connections).
 *
 * The counts are the host's shared counters (host->counts_create), made
 * at init in the master, so the limit holds across workers and a worker
 * that died leaves no phantom sessions behind.
 */
#include <string.h>

#include "imap.h"

static postern_counts_t *userip;

int
imap_userip_init(void)
{
	if (imap_cfg.max_userip_conns == 0)
		return 0;
	userip = imap_host->counts_create(imap_self);
	return userip != NULL ? 0 : -1;
}

int
imap_userip_enter(struct imap_session *s, const char *user)
{
	const char *peer = imap_host->conn_peer(s->conn);
	size_t ulen = strlen(user), plen = strlen(peer);
	char key[512];

	if (userip == NULL || s->userip != 0)
		return 0;
	/* The NUL between keeps "a"+"bc" apart from "ab"+"c". */
	if (ulen + 1 + plen > sizeof(key))
		ulen = sizeof(key) - 1 - plen;
	memcpy(key, user, ulen);
	key[ulen] = '\0';
	memcpy(key + ulen + 1, peer, plen);
	return imap_host->counts_take(userip, key, ulen + 1 + plen,
	                              (unsigned)imap_cfg.max_userip_conns,
	                              &s->userip) == POSTERN_OK ? 0 : -1;
}

void
imap_userip_leave(struct imap_session *s)
{
	if (userip == NULL || s->userip == 0)
		return;
	imap_host->counts_put(userip, s->userip);
	s->userip = 0;
}
