/*
 * host.h - the host table handed to every module, and the process state
 * behind it (configuration, directories, job pool, worker identity).
 */
#ifndef CORE_HOST_H
#define CORE_HOST_H

#include <postern/host.h>

struct conf;
struct job_pool;

/* The table (static, filled once). */
const struct postern_host *host_table(void);

/* Process state the table's functions read. */
void host_set_conf(struct conf *c);
struct conf *host_conf(void);
void host_set_dir(enum postern_dir which, const char *path); /* copied */
void host_set_jobs(struct job_pool *jobs);
/* The worker's job pool, or NULL outside a worker. */
struct job_pool *host_jobs(void);
void host_set_worker(int worker_id); /* -1: master */
void host_set_stopping(int stopping);
/* 1 while modules' init runs (host functions that are "init only"
 * refuse to work outside it). */
void host_set_init_phase(int in_init);
int host_in_init(void);

/* Frees what host_set_dir copied. */
void host_reset(void);

#endif /* CORE_HOST_H */
