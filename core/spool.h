/*
 * spool.h - a message on its way in: octets kept in memory until the
 * holder moves them to an unlinked temporary file (host->spool_*, see
 * postern/host.h for the contract).
 */
#ifndef CORE_SPOOL_H
#define CORE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <postern/types.h>

postern_spool_t *spool_create(const char *dir);
void spool_append(postern_spool_t *sp, const void *data, size_t len);
int spool_flush(postern_spool_t *sp);
uint64_t spool_size(const postern_spool_t *sp);
size_t spool_memory(const postern_spool_t *sp, const char **data);
int spool_fd(const postern_spool_t *sp);
void spool_free(postern_spool_t *sp);

#endif /* CORE_SPOOL_H */
