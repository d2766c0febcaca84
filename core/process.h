/*
 * process.h - posternd's life: configuration, modules, the master and its
 * workers.
 *
 * The master parses and checks the whole configuration, loads and
 * initialises the modules, binds the listeners, then forks `workers`
 * processes that drop privileges and run one event loop each.  The master
 * only supervises: it restarts a worker that dies, stops them all
 * gracefully on SIGTERM/SIGINT, and reloads on SIGHUP by re-executing
 * itself with the listening sockets handed over (see process.c).
 */
#ifndef CORE_PROCESS_H
#define CORE_PROCESS_H

#include <sys/types.h>

struct options {
	const char *config_path; /* -c */
	int check_only;          /* -t */
	int print_config;        /* -n */
	int print_docs;          /* -n -v */
	int print_all;           /* -n -a: defaults too */
	int foreground;          /* -f: no daemon, log to stderr */
	char **argv;             /* for the re-exec on reload */
};

/* Runs posternd as the options say; returns the exit status. */
int process_main(const struct options *opt);

/* process_setup flags. */
#define PROCESS_QUIET 0x1u /* log warnings and errors only (posternctl) */

/*
 * What `posternd -t` does, for tools that drive the modules directly
 * (posternctl): loads the configuration at `config_path` and its conf.d,
 * reads the core settings, loads and initialises the modules, and checks
 * every top-level key.  No worker starts and no event loop runs.  Returns
 * 0, or -1 after logging (naming the file, line and key); call
 * process_teardown afterwards either way.
 */
int process_setup(const char *config_path, unsigned flags);
/* Finalises and unloads the modules and frees the configuration. */
void process_teardown(void);

/*
 * After process_setup, for a tool that drives modules as a worker would
 * (postern-filter-test): makes this process's event loop (loop_current)
 * and job threads and runs every module's worker start, without
 * listeners, signals, forks or a privilege drop.  -1 after logging.
 * process_tool_stop runs the modules' worker exit and undoes the rest;
 * call it before process_teardown, after a failed start too.
 */
int process_tool_start(void);
void process_tool_stop(void);

/* metrics_listen of the configuration process_setup read; "" when none. */
const char *process_metrics_listen(void);

/* After process_setup, when running as root: 1 and the group the
 * workers will run as, so that files an admin tool makes for them
 * (the users file, for one) are theirs to read; 0 otherwise. */
int process_worker_group(gid_t *gid);

#endif /* CORE_PROCESS_H */
