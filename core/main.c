/*
 * main.c - posternd's command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/module.h>

#include "process.h"

#ifndef POSTERN_SYSCONFDIR
#define POSTERN_SYSCONFDIR "/etc/postern"
#endif

/*
 * jemalloc's options, read at its start.  Without a background thread it
 * gives freed pages back only while the process allocates, and by default
 * only ten seconds after they were freed; a worker that served a burst (a
 * wave of logins, each argon2id check touching 64 MiB on a job thread, or
 * a FETCH of every body) and then sits idle kept the burst's memory: 173
 * MiB RSS after the IMAP benchmark, 63 MiB with these.  A forked child
 * starts without the thread: process.c starts it again in each worker
 * (allocator_after_fork).  MALLOC_CONF in the environment still
 * overrides.
 */
extern const char *malloc_conf __attribute__((visibility("default")));
/*
 * narenas:1: a worker's job threads share one arena.  With an arena per
 * thread (jemalloc's default, four per core) each thread's arena keeps
 * what its last job freed until the decay, so a client whose commands
 * land on one thread after another grows the worker by the sum: repeated
 * FETCH ENVELOPE BODYSTRUCTURE of hostile headers peaked 115 MiB above
 * the baseline, 43 MiB with one arena.  Workers are processes, one per
 * core; the few threads of one rarely contend, and tcache serves small
 * allocations without the arena's lock.
 */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000,"
                          "narenas:1";

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: posternd [-c FILE] [-t | -n [-a] [-v]] [-f] [-V]\n"
	        "  -c FILE  configuration file (default %s/postern.conf);\n"
	        "           conf.d/*.conf beside it is read too\n"
	        "  -t       check the configuration and every module's, "
	        "then exit\n"
	        "  -n       print what the configuration sets apart from the "
	        "defaults;\n"
	        "           -a: every key, defaults included; -v: with "
	        "docs\n"
	        "  -f       stay in the foreground and log to stderr\n"
	        "  -V       print the version and module ABI, then exit\n",
	        POSTERN_SYSCONFDIR);
}

int
main(int argc, char **argv)
{
	struct options opt = {
		.config_path = POSTERN_SYSCONFDIR "/postern.conf",
		.argv = argv,
	};
	int ch;

	while ((ch = getopt(argc, argv, "c:tnavfVh")) != -1) {
		switch (ch) {
		case 'c':
			opt.config_path = optarg;
			break;
		case 't':
			opt.check_only = 1;
			break;
		case 'n':
			opt.print_config = 1;
			break;
		case 'v':
			opt.print_docs = 1;
			break;
		case 'a':
			opt.print_all = 1;
			break;
		case 'f':
			opt.foreground = 1;
			break;
		case 'V':
			printf("posternd %s (module ABI %d.%d)\n",
			       PACKAGE_VERSION, POSTERN_ABI_MAJOR,
			       POSTERN_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "posternd: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	return process_main(&opt);
}
