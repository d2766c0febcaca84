/*
 * service.h - the registry of named, versioned tables modules publish.
 * Process-global, filled during init in the master.
 */
#ifndef CORE_SERVICE_H
#define CORE_SERVICE_H

/* -1 after logging if `name` is already published or `table` is NULL. */
int service_publish(const char *owner, const char *name, unsigned major,
                    unsigned minor, const void *table);
/* NULL (logged at error level, naming `requester`) when absent or when
 * the versions do not fit; with `optional`, an absent service is not an
 * error and is not logged (a version misfit still is). */
const void *service_lookup(const char *requester, const char *name,
                           unsigned major, unsigned min_minor,
                           int optional);
void service_reset(void);

#endif /* CORE_SERVICE_H */
