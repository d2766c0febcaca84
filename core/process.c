/*
 * process.c - posternd's life: setup, the master, the workers, reload.
 *
 * Setup (master, as started): load the configuration, read the core
 * settings, load and initialise the modules (they validate their own
 * groups and register listeners, hooks and services), check that every
 * top-level key belongs to someone.  `-t` and `-n` stop here.
 *
 * Master: bind the listeners (taking over sockets from the previous image
 * after a reload), leave the terminal unless -f, fork the workers and
 * supervise them.  The master keeps its privileges so that a reload can
 * read root-only keys and bind low ports; it never touches a client.
 *
 * Worker: drop privileges (refusing to run as root unless `allow_root`),
 * build its loop and thread pool, run the modules' worker start callbacks,
 * accept.  SIGTERM starts a graceful stop: stop accepting, tell the
 * modules, let every connection say goodbye (commands in flight finish),
 * wait for them up to `shutdown_timeout`, then close what is left.
 * SIGUSR2 (sent by the master after a reload) drains instead: stop
 * accepting, serve the sessions until they end, and say goodbye only when
 * `shutdown_timeout` runs out.
 *
 * Reload (SIGHUP): the master checks the new configuration with
 * `posternd -t` first; if it passes, it re-executes itself with the
 * listening sockets and the old workers' pids in its environment.  The new
 * image binds by taking over those sockets, starts new workers, and only
 * then asks the old workers to drain.  So everything reloads
 * (settings, certificates, modules) and no connection is refused.
 */
#include "process.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "auth_penalty.h"
#include "conf.h"
#include "conn.h"
#include "dns.h"
#include "hook.h"
#include "isolate.h"
#include "host.h"
#include "job.h"
#include "deliver.h"
#include "listener.h"
#include "loader.h"
#include "shared_count.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "sasl.h"
#include "service.h"
#include "session.h"
#include "tls.h"
#include "xalloc.h"

#ifndef POSTERN_MODULEDIR
#define POSTERN_MODULEDIR "/usr/local/lib/postern/modules"
#endif
#ifndef POSTERN_STATEDIR
#define POSTERN_STATEDIR "/var/lib/postern"
#endif
#ifndef POSTERN_RUNDIR
#define POSTERN_RUNDIR "/run/postern"
#endif

#define ENV_LISTEN_FDS "POSTERN_LISTEN_FDS"
#define ENV_OLD_WORKERS "POSTERN_OLD_WORKERS"
#define ENV_REEXEC "POSTERN_REEXEC"
#define MAX_INHERITED 64
#define STOP_POLL_MS 100
#define RESPAWN_WINDOW_MS 10000
#define RESPAWN_BURST 5
#define RESPAWN_DELAY_MS 2000

/* ---- core settings ---------------------------------------------------- */

struct core_settings {
	struct postern_strlist modules;
	const char *module_dir;
	const char *state_dir;
	const char *run_dir;
	const char *user;
	const char *group;
	int allow_root;
	long long workers;
	long long job_threads;
	long long shutdown_timeout_ms;
	long long auth_failure_delay_ms;
	long long output_high_water;
	long long auth_threads;
	long long auth_queue;
	long long auth_queue_per_ip;
	long long auth_penalty_init_ms;
	long long auth_penalty_max_ms;
	long long auth_penalty_expire_ms;
	long long auth_penalty_slots;
	const char *dns_servers;
	const char *metrics_listen;
	int metrics_allow_remote;
	long long dns_timeout_ms;
	long long dns_tries;
	int log_level; /* index into log_levels */
};

static const char *const log_levels[] = {
	"error", "warning", "notice", "info", "debug", NULL,
};

#define CORE_KEY(n, t, field, d, ...)                                        \
	{ .name = n, .type = t,                                              \
	  .offset = offsetof(struct core_settings, field), .def = d,         \
	  __VA_ARGS__ }

static const struct postern_cfg_key core_schema[] = {
	CORE_KEY("modules", POSTERN_CFG_STRLIST, modules, NULL,
	         .doc = "modules to load, by name or path"),
	CORE_KEY("module_dir", POSTERN_CFG_STRING, module_dir,
	         POSTERN_MODULEDIR, .doc = "where module names are found"),
	CORE_KEY("state_dir", POSTERN_CFG_STRING, state_dir, POSTERN_STATEDIR,
	         .doc = "persistent data (queues, indexes)"),
	CORE_KEY("run_dir", POSTERN_CFG_STRING, run_dir, POSTERN_RUNDIR,
	         .doc = "pid file and sockets"),
	CORE_KEY("user", POSTERN_CFG_STRING, user, "postern",
	         .doc = "user the workers run as (when started as root)"),
	CORE_KEY("group", POSTERN_CFG_STRING, group, "",
	         .doc = "group of the workers; empty: the user's group"),
	CORE_KEY("allow_root", POSTERN_CFG_BOOL, allow_root, "false",
	         .doc = "let workers keep root (never do this)"),
	CORE_KEY("workers", POSTERN_CFG_INT, workers, "0", .min = 0,
	         .max = 256, .doc = "worker processes; 0: one per core"),
	CORE_KEY("job_threads", POSTERN_CFG_INT, job_threads, "4", .min = 1,
	         .max = 256, .doc = "blocking-work threads per worker"),
	CORE_KEY("shutdown_timeout", POSTERN_CFG_DURATION, shutdown_timeout_ms,
	         "30s", .min = 0, .max = 3600000,
	         .doc = "how long a stop waits for connections to end"),
	CORE_KEY("auth_failure_delay", POSTERN_CFG_DURATION,
	         auth_failure_delay_ms, "2s", .min = 0, .max = 60000,
	         .doc = "wait before answering a failed login"),
	CORE_KEY("output_high_water", POSTERN_CFG_SIZE, output_high_water,
	         "256K", .min = 4096, .max = 1LL << 30,
	         .doc = "output queued for a client that does not read, "
	                "above which its input waits (resumes under half)"),
	CORE_KEY("auth_threads", POSTERN_CFG_INT, auth_threads, "1", .min = 1,
	         .max = 64, .doc = "password-check threads per worker, apart "
	         "from job_threads, and as many in its isolation process, "
	         "where the hashes run (each argon2id check holds its "
	         "memory there: 64 MiB at auth_passwd's default cost)"),
	CORE_KEY("auth_queue", POSTERN_CFG_INT, auth_queue, "16", .min = 1,
	         .max = 100000, .doc = "password checks that may wait per "
	         "worker; past it a login gets a temporary failure at once"),
	CORE_KEY("auth_queue_per_ip", POSTERN_CFG_INT, auth_queue_per_ip, "4",
	         .min = 0, .max = 100000, .doc = "password checks one client "
	         "address (IPv6: /64) may have waiting or running per worker, "
	         "so that it cannot fill auth_queue for everyone; past it a "
	         "check waits its turn, or gets a temporary failure if the "
	         "address failed lately; 0: no limit"),
	CORE_KEY("auth_penalty_init", POSTERN_CFG_DURATION,
	         auth_penalty_init_ms, "2s", .min = 1, .max = 60000,
	         .doc = "wait before checking a login from an address or for "
	         "an account after one failure; doubles with each failure"),
	CORE_KEY("auth_penalty_max", POSTERN_CFG_DURATION, auth_penalty_max_ms,
	         "15s", .min = 0, .max = 300000,
	         .doc = "the penalty wait's cap; 0 turns the penalty off"),
	CORE_KEY("auth_penalty_expire", POSTERN_CFG_DURATION,
	         auth_penalty_expire_ms, "1h", .min = 1000,
	         .max = 7LL * 86400 * 1000, .doc = "failures are forgotten "
	         "this long after the last one (a success forgets at once)"),
	CORE_KEY("auth_penalty_slots", POSTERN_CFG_INT, auth_penalty_slots,
	         "8192", .min = 64, .max = 1 << 24, .doc = "addresses and "
	         "accounts the penalty table holds (96 bytes each, shared by "
	         "the workers); when full the oldest are forgotten"),
	CORE_KEY("dns_servers", POSTERN_CFG_STRING, dns_servers, "",
	         .doc = "DNS servers the modules' lookups (relay MX, SPF, "
	         "DNSBL) ask, \"127.0.0.1:5353,[::1]:53\"; empty: those of "
	         "/etc/resolv.conf"),
	CORE_KEY("dns_timeout", POSTERN_CFG_DURATION, dns_timeout_ms, "2s",
	         .min = 100, .max = 60000, .doc = "a DNS query's first "
	         "timeout; each retry waits longer"),
	CORE_KEY("dns_tries", POSTERN_CFG_INT, dns_tries, "3", .min = 1,
	         .max = 10, .doc = "times a DNS query is sent to each server "
	         "before it fails as temporary"),
	CORE_KEY("metrics_listen", POSTERN_CFG_STRING, metrics_listen, "",
	         .doc = "where the master serves Prometheus metrics "
	         "(GET /metrics), \"127.0.0.1:9105\" or \"[::1]:9105\"; "
	         "empty: no endpoint"),
	CORE_KEY("metrics_allow_remote", POSTERN_CFG_BOOL,
	         metrics_allow_remote, "false", .doc = "let metrics_listen "
	         "be an address other than loopback (the counters tell who "
	         "uses the server: firewall it)"),
	CORE_KEY("log_level", POSTERN_CFG_ENUM, log_level, "info",
	         .choices = log_levels, .doc = "error ... debug"),
	{ .name = NULL },
};

/* ---- runtime state ---------------------------------------------------- */

static struct runtime {
	const struct options *opt;
	char config_path[PATH_MAX];
	char self_exe[PATH_MAX];
	struct core_settings set;
	struct conf *conf;
	struct loader *loader;

	/* privileges the workers take */
	int drop;
	uid_t uid;
	gid_t gid;
	char *user;

	/* master */
	struct loop *loop;
	pid_t *workers;
	unsigned nworkers;
	pid_t old[256]; /* workers of the image before a reload */
	size_t nold;
	int stopping;
	uint64_t window_start;
	unsigned window_deaths;

	/* shared by the workers */
	struct auth_penalty *penalty;

	/* worker */
	struct job_pool *jobs;
	uint64_t stop_deadline;

	unsigned setup_flags; /* PROCESS_* of process_setup */
} rt;

static int
log_level_of(int index)
{
	return POSTERN_LOG_ERROR + index;
}

/* ---- setup ------------------------------------------------------------ */

static int
module_file_exists(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s.so", rt.set.module_dir, name);
	return access(path, F_OK) == 0;
}

/* Every top-level key must be a core setting or a loaded module's group.
 * A group of a module that exists but is not loaded is fine (profiles
 * share conf.d): say so at notice level, and move on. */
static void
check_toplevel(void)
{
	postern_cfg_t *root = conf_root(rt.conf);
	size_t i, n = conf_count(root);

	for (i = 0; i < n; i++) {
		postern_cfg_t *node = conf_elem(root, i);
		const char *name = conf_name(node);
		const struct postern_cfg_key *k;
		int known = 0;

		for (k = core_schema; k->name != NULL && !known; k++)
			known = strcmp(k->name, name) == 0;
		if (known || loader_find(rt.loader, name) != NULL)
			continue;
		if (module_file_exists(name))
			log_notice("%s:%u: group '%s' ignored: module '%s' is "
			           "not in `modules`",
			           conf_source_file(node),
			           conf_source_line(node), name, name);
		else
			conf_error(rt.conf, node, "unknown key");
	}
}

static int
load_modules(void)
{
	size_t i;

	rt.loader = loader_create(host_table(), rt.set.module_dir);
	if (rt.loader == NULL)
		return -1;
	for (i = 0; i < rt.set.modules.count; i++)
		if (loader_load(rt.loader, rt.set.modules.items[i]) < 0)
			return -1;
	return 0;
}

static int
init_modules(void)
{
	int rc;

	host_set_init_phase(1);
	rc = loader_init_all(rt.loader);
	host_set_init_phase(0);
	if (rc < 0)
		return -1;
	if (hook_check() < 0)
		return -1;
	return 0;
}

/* After a bad core setting the field is left unset; the check goes on
 * with the built-in value so it can report the modules' problems too. */
static void
settings_fallbacks(void)
{
	if (rt.set.module_dir == NULL)
		rt.set.module_dir = POSTERN_MODULEDIR;
	if (rt.set.state_dir == NULL)
		rt.set.state_dir = POSTERN_STATEDIR;
	if (rt.set.run_dir == NULL)
		rt.set.run_dir = POSTERN_RUNDIR;
	if (rt.set.user == NULL)
		rt.set.user = "postern";
	if (rt.set.group == NULL)
		rt.set.group = "";
	if (rt.set.metrics_listen == NULL)
		rt.set.metrics_listen = "";
}

/* The endpoint's address is checked with the rest of the configuration
 * (posternd -t), not only when the master binds it. */
static void
check_metrics_listen(void)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[256];

	if (rt.set.metrics_listen[0] != '\0' &&
	    metrics_http_parse(rt.set.metrics_listen,
	                       rt.set.metrics_allow_remote, &ss, &sslen, why,
	                       sizeof(why)) < 0)
		conf_error(rt.conf, conf_lookup(conf_root(rt.conf),
		           "metrics_listen"), "%s", why);
}

/* The core's own metrics, once the modules have made their listeners. */
static void
core_metrics_register(void)
{
	listener_metrics_register();
	sasl_metrics_register();
	job_metrics_register();
	deliver_metrics_register();
	hook_metrics_register();
}

/* A command-line tool (PROCESS_QUIET) says only what went wrong. */
static int
setup_log_level(void)
{
	int level = log_level_of(rt.set.log_level);

	if ((rt.setup_flags & PROCESS_QUIET) && level > POSTERN_LOG_WARNING)
		level = POSTERN_LOG_WARNING;
	return level;
}

static void
setup_dns(void)
{
	struct dns_settings d = {
		.servers = rt.set.dns_servers,
		.timeout_ms = (unsigned)rt.set.dns_timeout_ms,
		.tries = (unsigned)rt.set.dns_tries,
	};
	char err[320];

	if (dns_configure(&d, err, sizeof(err)) < 0)
		conf_error(rt.conf, conf_lookup(conf_root(rt.conf),
		           "dns_servers"), "%s", err);
}

static int
setup(void)
{
	rt.conf = conf_load(rt.config_path);
	if (rt.conf == NULL)
		return -1;
	host_set_conf(rt.conf);
	/* A bad core setting does not stop the check here: the modules'
	 * problems are reported in the same run, so one `posternd -t` shows
	 * everything that needs fixing. */
	conf_parse(rt.conf, conf_root(rt.conf), "", core_schema,
	           sizeof(core_schema[0]), &rt.set, CONF_ALLOW_UNKNOWN);
	settings_fallbacks();
	log_set_level(setup_log_level());
	setup_dns();
	check_metrics_listen();
	sasl_set_failure_delay((unsigned)rt.set.auth_failure_delay_ms);
	conn_set_output_high_water((size_t)rt.set.output_high_water);
	sasl_set_queue((unsigned)rt.set.auth_threads,
	               (unsigned)rt.set.auth_queue,
	               (unsigned)rt.set.auth_queue_per_ip);
	host_set_dir(POSTERN_DIR_CONFIG, conf_dir(rt.conf));
	host_set_dir(POSTERN_DIR_STATE, rt.set.state_dir);
	host_set_dir(POSTERN_DIR_RUN, rt.set.run_dir);
	host_set_dir(POSTERN_DIR_MODULES, rt.set.module_dir);
	if (load_modules() < 0)
		return -1;
	if (init_modules() < 0)
		return -1;
	core_metrics_register();
	check_toplevel();
	if (conf_errors(rt.conf) > 0) {
		log_error("%s: configuration has %u error(s)", rt.config_path,
		          conf_errors(rt.conf));
		return -1;
	}
	return 0;
}

static void
teardown(void)
{
	if (rt.loader != NULL)
		loader_destroy(rt.loader);
	rt.loader = NULL;
	hook_reset();
	metrics_reset();
	service_reset();
	listener_reset();
	session_reset();
	tls_free_all();
	if (rt.conf != NULL)
		conf_free(rt.conf);
	rt.conf = NULL;
	host_reset();
	sasl_set_penalty(NULL);
	sasl_set_queue(0, 0, 0);
	penalty_destroy(rt.penalty);
	rt.penalty = NULL;
	free(rt.user);
	free(rt.workers);
	rt.user = NULL;
	rt.workers = NULL;
}

int
process_setup(const char *config_path, unsigned flags)
{
	rt.setup_flags = flags;
	if (realpath(config_path, rt.config_path) == NULL) {
		log_error("%s: %s", config_path, strerror(errno));
		return -1;
	}
	return setup();
}

void
process_teardown(void)
{
	teardown();
}

/* ---- privileges ------------------------------------------------------- */

/* Whom the workers run as, from `user` and `group`: 1 with *uid and
 * *gid to switch to, 0 when they stay who started posternd (not root,
 * or root allowed to stay), -1 with `why`. */
static int
worker_ids(uid_t *uid, gid_t *gid, char *why, size_t len)
{
	struct passwd *pw;
	struct group *gr;

	if (geteuid() != 0)
		return 0; /* nothing to drop: run as who started us */
	if (rt.set.user[0] == '\0' || strcmp(rt.set.user, "root") == 0) {
		if (rt.set.allow_root)
			return 0;
		snprintf(why, len, "refusing to run workers as root: set "
		         "`user` (or `allow_root = true`, which is unsafe)");
		return -1;
	}
	if ((pw = getpwnam(rt.set.user)) == NULL) {
		snprintf(why, len, "user '%s' does not exist (create it, e.g. "
		         "`useradd --system %s`, or set `user`)", rt.set.user,
		         rt.set.user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (rt.set.group[0] != '\0') {
		if ((gr = getgrnam(rt.set.group)) == NULL) {
			snprintf(why, len, "group '%s' does not exist",
			         rt.set.group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	if (*uid == 0 && !rt.set.allow_root) {
		snprintf(why, len, "user '%s' has uid 0: refusing to run "
		         "workers as root", rt.set.user);
		return -1;
	}
	return 1;
}

static int
resolve_user(void)
{
	char why[512];
	int rc = worker_ids(&rt.uid, &rt.gid, why, sizeof(why));

	if (rc < 0)
		log_error("%s: %s", rt.config_path, why);
	if (rc <= 0)
		return rc;
	rt.user = xstrdup(rt.set.user);
	rt.drop = 1;
	return 0;
}

static int
drop_privileges(void)
{
	if (!rt.drop)
		return 0;
	if (initgroups(rt.user, rt.gid) < 0 || setgid(rt.gid) < 0 ||
	    setuid(rt.uid) < 0) {
		log_error("worker: cannot switch to user '%s' (uid %d, gid "
		          "%d): %s", rt.user, (int)rt.uid, (int)rt.gid,
		          strerror(errno));
		return -1;
	}
	if (rt.uid != 0 && setuid(0) == 0) {
		log_error("worker: could regain root after dropping it");
		return -1;
	}
	return 0;
}

/* ---- worker ----------------------------------------------------------- */

static void
modules_worker_call(int phase)
{
	size_t i, n = loader_count(rt.loader);

	for (i = 0; i < n; i++) {
		/* exit callbacks run in reverse order */
		postern_module_t *m = loader_module(rt.loader,
		                                    phase == 2 ? n - 1 - i : i);

		if (!m->has_worker_ops)
			continue;
		if (phase == 1 && m->worker_ops.stopping != NULL)
			m->worker_ops.stopping(m->worker_arg);
		if (phase == 2 && m->worker_ops.exit != NULL)
			m->worker_ops.exit(m->worker_arg);
	}
}

static int
modules_worker_start(void)
{
	size_t i, n = loader_count(rt.loader);

	for (i = 0; i < n; i++) {
		postern_module_t *m = loader_module(rt.loader, i);

		if (!m->has_worker_ops || m->worker_ops.start == NULL)
			continue;
		if (m->worker_ops.start(m->worker_arg) < 0) {
			log_error("module '%s' failed to start in the worker",
			          m->name);
			return -1;
		}
	}
	return 0;
}

/* How a worker leaves: a stop says goodbye to every session now and lets
 * commands in flight finish; a drain (the old workers after a reload) lets
 * sessions go on until they end by themselves, and only says goodbye when
 * `shutdown_timeout` runs out. */
enum worker_phase { WORKER_RUNNING, WORKER_DRAINING, WORKER_STOPPING };

#define GOODBYE_GRACE_MS 2000

static enum worker_phase worker_phase;

static void
worker_say_goodbye(void)
{
	uint64_t grace = loop_now_ms(loop_current) + GOODBYE_GRACE_MS;

	worker_phase = WORKER_STOPPING;
	conn_shutdown_all();
	if (rt.stop_deadline > grace)
		rt.stop_deadline = grace;
}

static unsigned
worker_stop_poll(void *arg)
{
	(void)arg;
	if (conn_count() == 0) {
		loop_stop(loop_current);
		return 0;
	}
	if (loop_now_ms(loop_current) < rt.stop_deadline)
		return STOP_POLL_MS;
	if (worker_phase == WORKER_DRAINING) {
		log_info("worker: drain timeout: saying goodbye to %zu "
		         "session(s)", conn_count());
		rt.stop_deadline = UINT64_MAX;
		worker_say_goodbye();
		return STOP_POLL_MS;
	}
	log_notice("worker: shutdown timeout: closing %zu connection(s)",
	           conn_count());
	conn_close_all();
	loop_stop(loop_current);
	return 0;
}

/* The common start of a stop and a drain: no new connections. */
static void
worker_leave(const char *why)
{
	log_info("worker %d: %s", host_table()->worker_id(), why);
	host_set_stopping(1);
	listener_stop_all(loop_current);
	modules_worker_call(1);
	rt.stop_deadline = loop_now_ms(loop_current) +
	                   (uint64_t)rt.set.shutdown_timeout_ms;
	loop_timer_add(loop_current, 0, worker_stop_poll, NULL);
}

static void
worker_on_stop_signal(int signo, void *arg)
{
	(void)signo;
	(void)arg;
	switch (worker_phase) {
	case WORKER_RUNNING:
		worker_leave("stopping gracefully");
		worker_phase = WORKER_STOPPING;
		conn_shutdown_all();
		break;
	case WORKER_DRAINING:
		worker_say_goodbye();
		break;
	case WORKER_STOPPING:
		/* A second request means now. */
		conn_close_all();
		loop_stop(loop_current);
		break;
	}
}

static void
worker_on_drain_signal(int signo, void *arg)
{
	(void)signo;
	(void)arg;
	if (worker_phase != WORKER_RUNNING)
		return;
	worker_phase = WORKER_DRAINING;
	worker_leave("replaced by a reload: draining");
}

static void
worker_ignore_signal(int signo, void *arg)
{
	(void)signo;
	(void)arg;
}

/*
 * jemalloc (core/main.c's malloc_conf) gives freed pages back from a
 * background thread, but a forked child starts with the thread off: a
 * worker then keeps every burst it served (a FETCH of hostile headers
 * left it 120 MiB larger for good).  Start the thread again here.  Looked
 * up at run time: the sanitizer build and the test programs have no
 * jemalloc, and need none of this.
 */
static void
allocator_after_fork(void)
{
	typedef int (*mallctl_fn)(const char *, void *, size_t *, void *,
	                          size_t);
	mallctl_fn ctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");
	bool on = true;

	if (ctl != NULL &&
	    ctl("background_thread", NULL, NULL, &on, sizeof(on)) != 0)
		log_warning("worker: cannot start jemalloc's background "
		            "thread: freed memory is given back only while "
		            "allocating");
}

/* What runs modules' worker side, in a worker or a tool: job threads
 * (with the auth lane), the shared counters' slot, connections, and each
 * module's worker start.  -1 after logging; worker_services_stop undoes
 * whatever was done, after a failure too. */
static int services_up;   /* connections and modules' starts happened */

static int
worker_services_start(int id)
{
	rt.jobs = job_pool_create(loop_current, (unsigned)rt.set.job_threads);
	if (rt.jobs == NULL ||
	    job_lane_start(rt.jobs, JOB_LANE_AUTH,
	                   (unsigned)rt.set.auth_threads,
	                   (size_t)rt.set.auth_queue) < 0)
		return -1;
	host_set_jobs(rt.jobs);
	shared_count_worker_start(id);
	metrics_worker_start(id);
	conn_init(loop_current);
	services_up = 1;
	return modules_worker_start();
}

static void
worker_services_stop(void)
{
	if (services_up) {
		conn_close_all();
		modules_worker_call(2);
	}
	dns_shutdown();
	if (rt.jobs != NULL)
		job_pool_destroy(rt.jobs);
	rt.jobs = NULL;
	host_set_jobs(NULL);
	if (services_up)
		conn_fini();
	services_up = 0;
}

static int
worker_run(int id)
{
	struct loop *master_loop = loop_current;
	int rc = 1;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	allocator_after_fork();
	host_set_worker(id);
	loop_current = loop_create();
	if (loop_current == NULL)
		return 1;
	loop_signal(loop_current, SIGTERM, worker_on_stop_signal, NULL);
	loop_signal(loop_current, SIGINT, worker_on_stop_signal, NULL);
	loop_signal(loop_current, SIGUSR2, worker_on_drain_signal, NULL);
	loop_signal(loop_current, SIGHUP, worker_ignore_signal, NULL);
	metrics_http_forget();
	if (master_loop != NULL)
		loop_destroy_inherited(master_loop);
	if (drop_privileges() < 0)
		goto out;
	/* Before any thread: the child is forked from this process. */
	if (isolate_start((unsigned)rt.set.auth_threads) < 0)
		log_warning("worker %d: no isolation process: password "
		            "hashes run inside the worker", id);
	if (worker_services_start(id) < 0 ||
	    listener_start_all(loop_current) < 0)
		goto stop;
	log_info("worker %d: started (pid %d)", id, (int)getpid());
	rc = loop_run(loop_current) < 0 ? 1 : 0;
stop:
	worker_services_stop();
out:
	isolate_stop();
	loop_destroy(loop_current);
	loop_current = NULL;
	return rc;
}

/* ---- tools that run the worker side here ------------------------------ */

int
process_tool_start(void)
{
	host_set_worker(0);
	if ((loop_current = loop_create()) == NULL)
		return -1;
	return worker_services_start(0);
}

void
process_tool_stop(void)
{
	worker_services_stop();
	if (loop_current != NULL)
		loop_destroy(loop_current);
	loop_current = NULL;
	host_set_worker(-1);
}

/* ---- master: workers -------------------------------------------------- */

static pid_t
spawn_worker(unsigned id)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("master: cannot fork worker %u: %s", id,
		          strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int rc = worker_run((int)id);
		teardown();
		_exit(rc);
	}
	rt.workers[id] = pid;
	return pid;
}

static unsigned
respawn_later(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	if (!rt.stopping && rt.workers[id] == 0)
		spawn_worker(id);
	return 0;
}

/* A worker died while we were not stopping: start another, but not in a
 * tight loop if they keep dying (a broken module, a full disk). */
static void
replace_worker(unsigned id)
{
	uint64_t now = loop_now_ms(rt.loop);

	if (now - rt.window_start > RESPAWN_WINDOW_MS) {
		rt.window_start = now;
		rt.window_deaths = 0;
	}
	if (++rt.window_deaths > RESPAWN_BURST) {
		log_error("master: workers keep dying; next start in %d ms",
		          RESPAWN_DELAY_MS);
		loop_timer_add(rt.loop, RESPAWN_DELAY_MS, respawn_later,
		               (void *)(uintptr_t)id);
		return;
	}
	spawn_worker(id);
}

static int
running_workers(void)
{
	unsigned i;
	int n = (int)rt.nold;

	for (i = 0; i < rt.nworkers; i++)
		n += rt.workers[i] != 0;
	return n;
}

static void
describe_exit(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
		         WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)",
		         WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "stopped (status %d)", status);
}

static int
forget_old_worker(pid_t pid)
{
	size_t i;

	for (i = 0; i < rt.nold; i++) {
		if (rt.old[i] == pid) {
			rt.old[i] = rt.old[--rt.nold];
			return 1;
		}
	}
	return 0;
}

static void
reap_one(pid_t pid, int status)
{
	char why[96];
	unsigned i;

	describe_exit(why, sizeof(why), status);
	if (forget_old_worker(pid)) {
		log_info("master: previous worker (pid %d) %s", (int)pid, why);
		return;
	}
	for (i = 0; i < rt.nworkers; i++) {
		if (rt.workers[i] != pid)
			continue;
		rt.workers[i] = 0;
		if (rt.stopping) {
			log_info("master: worker %u (pid %d) %s", i, (int)pid,
			         why);
		} else {
			log_error("master: worker %u (pid %d) %s; starting "
			          "another", i, (int)pid, why);
			replace_worker(i);
		}
		return;
	}
}

static void
master_on_sigchld(int signo, void *arg)
{
	pid_t pid;
	int status;

	(void)signo;
	(void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		reap_one(pid, status);
	if (rt.stopping && running_workers() == 0)
		loop_stop(rt.loop);
}

static void
signal_workers(int signo)
{
	unsigned i;
	size_t j;

	for (i = 0; i < rt.nworkers; i++)
		if (rt.workers[i] != 0)
			kill(rt.workers[i], signo);
	for (j = 0; j < rt.nold; j++)
		kill(rt.old[j], signo);
}

static unsigned
master_kill_stragglers(void *arg)
{
	(void)arg;
	if (running_workers() > 0) {
		log_warning("master: workers did not stop in time; killing");
		signal_workers(SIGKILL);
	}
	return 0;
}

static void
master_on_stop(int signo, void *arg)
{
	(void)arg;
	if (rt.stopping) {
		signal_workers(SIGKILL);
		return;
	}
	log_notice("master: %s: stopping", strsignal(signo));
	notify_stopping();
	rt.stopping = 1;
	signal_workers(SIGTERM);
	/* Workers close what is left at shutdown_timeout; give them a
	 * little more before forcing it. */
	loop_timer_add(rt.loop, (unsigned)rt.set.shutdown_timeout_ms + 5000,
	               master_kill_stragglers, NULL);
	if (running_workers() == 0)
		loop_stop(rt.loop);
}

/* ---- master: reload --------------------------------------------------- */

/* Runs `posternd -t -c FILE` and waits for it: a reload must never swap a
 * working configuration for a broken one. */
static int
check_new_config(void)
{
	char *argv[] = { rt.self_exe, "-t", "-c", rt.config_path, NULL };
	extern char **environ;
	pid_t pid;
	int status;

	if (posix_spawn(&pid, rt.self_exe, NULL, NULL, argv, environ) != 0) {
		log_error("master: reload: cannot run %s -t: %s", rt.self_exe,
		          strerror(errno));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void
append(char **buf, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
append(char **buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char piece[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(piece, sizeof(piece), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*buf = xrealloc(*buf, *len + (size_t)n + 1);
	memcpy(*buf + *len, piece, (size_t)n + 1);
	*len += (size_t)n;
}

static void
master_on_reload(int signo, void *arg)
{
	char *fds = NULL, *pids = NULL;
	size_t fl = 0, pl = 0, i;

	(void)signo;
	(void)arg;
	if (rt.stopping)
		return;
	log_notice("master: reload requested: checking %s", rt.config_path);
	if (check_new_config() < 0) {
		log_error("master: reload refused: the new configuration "
		          "does not pass `posternd -t`; still running the old "
		          "one");
		return;
	}
	for (i = 0; i < listener_count(); i++) {
		postern_listener_t *l = listener_at(i);
		int fd = listener_fd(l);

		fcntl(fd, F_SETFD, 0); /* keep it across exec */
		append(&fds, &fl, "%s%d=%s", fl ? ";" : "", fd,
		       listener_key(l));
	}
	for (i = 0; i < rt.nworkers; i++)
		if (rt.workers[i] != 0)
			append(&pids, &pl, "%s%d", pl ? "," : "",
			       (int)rt.workers[i]);
	for (i = 0; i < rt.nold; i++)
		append(&pids, &pl, "%s%d", pl ? "," : "", (int)rt.old[i]);
	setenv(ENV_LISTEN_FDS, fds != NULL ? fds : "", 1);
	setenv(ENV_OLD_WORKERS, pids != NULL ? pids : "", 1);
	setenv(ENV_REEXEC, "1", 1);
	free(fds);
	free(pids);
	log_notice("master: re-executing %s with the new configuration",
	           rt.self_exe);
	notify_reloading(); /* the new image says READY=1 */
	execv(rt.self_exe, rt.opt->argv);
	log_error("master: reload: exec %s: %s; still running the old "
	          "configuration", rt.self_exe, strerror(errno));
	notify_ready("running the old configuration: reload failed");
	unsetenv(ENV_LISTEN_FDS);
	unsetenv(ENV_OLD_WORKERS);
	unsetenv(ENV_REEXEC);
}

/* Reads the sockets and old workers the previous image handed over. */
static size_t
take_inheritance(struct inherited_fd *fds)
{
	const char *env = getenv(ENV_LISTEN_FDS);
	char *copy, *item, *save = NULL;
	size_t n = 0;

	if (env != NULL) {
		copy = xstrdup(env);
		for (item = strtok_r(copy, ";", &save);
		     item != NULL && n < MAX_INHERITED;
		     item = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(item, '=');
			if (eq == NULL)
				continue;
			*eq = '\0';
			fds[n].fd = atoi(item);
			snprintf(fds[n].key, sizeof(fds[n].key), "%s", eq + 1);
			fds[n].used = 0;
			n++;
		}
		free(copy);
	}
	env = getenv(ENV_OLD_WORKERS);
	if (env != NULL) {
		copy = xstrdup(env);
		for (item = strtok_r(copy, ",", &save);
		     item != NULL &&
		     rt.nold < sizeof(rt.old) / sizeof(rt.old[0]);
		     item = strtok_r(NULL, ",", &save))
			rt.old[rt.nold++] = (pid_t)atoi(item);
		free(copy);
	}
	unsetenv(ENV_LISTEN_FDS);
	unsetenv(ENV_OLD_WORKERS);
	return n;
}

/* ---- master ----------------------------------------------------------- */

static int
bind_listeners(void)
{
	struct inherited_fd inherited[MAX_INHERITED];
	size_t n = take_inheritance(inherited), i;
	int rc = listener_bind_all(inherited, n);

	/* Sockets of listeners that the new configuration dropped. */
	for (i = 0; i < n; i++) {
		if (!inherited[i].used)
			close(inherited[i].fd);
		else
			fcntl(inherited[i].fd, F_SETFD, FD_CLOEXEC);
	}
	return rc;
}

static int
daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		log_error("cannot fork into the background: %s",
		          strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	allocator_after_fork();
	setsid();
	if (chdir("/") < 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

static void
pid_file_path(char *path, size_t size)
{
	snprintf(path, size, "%s/posternd.pid", rt.set.run_dir);
}

/* At a clean stop, unless another posternd wrote its own pid there. */
static void
remove_pid_file(void)
{
	char path[PATH_MAX];
	FILE *f;
	int pid = 0;

	pid_file_path(path, sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid == (int)getpid())
		unlink(path);
}

static void
write_pid_file(void)
{
	char path[PATH_MAX];
	FILE *f;

	if (mkdir(rt.set.run_dir, 0755) < 0 && errno != EEXIST) {
		log_warning("cannot create run_dir %s: %s", rt.set.run_dir,
		            strerror(errno));
		return;
	}
	pid_file_path(path, sizeof(path));
	f = fopen(path, "w");
	if (f == NULL) {
		log_warning("cannot write %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static unsigned
worker_count(void)
{
	long cores;

	if (rt.set.workers > 0)
		return (unsigned)rt.set.workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores > 0 ? (unsigned)cores : 1;
}

/* The workers keep queues and indexes in state_dir; they can no longer
 * create it once privileges are gone, so the master makes it theirs. */
static int
prepare_state_dir(void)
{
	if (mkdir(rt.set.state_dir, 0750) < 0 && errno != EEXIST) {
		log_error("cannot create state_dir %s: %s", rt.set.state_dir,
		          strerror(errno));
		return -1;
	}
	if (rt.drop && chown(rt.set.state_dir, rt.uid, rt.gid) < 0) {
		log_error("cannot give state_dir %s to user '%s': %s",
		          rt.set.state_dir, rt.user, strerror(errno));
		return -1;
	}
	return 0;
}

/* The penalty table, before the fork so that every worker shares it. */
static int
penalty_start(void)
{
	struct penalty_settings ps = {
		.slots = (size_t)rt.set.auth_penalty_slots,
		.init_ms = (unsigned)rt.set.auth_penalty_init_ms,
		.max_ms = (unsigned)rt.set.auth_penalty_max_ms,
		.expire_ms = (unsigned)rt.set.auth_penalty_expire_ms,
	};

	/* Made even when the penalty is off: its keys also count each
	 * address's checks in flight (auth_queue_per_ip). */
	if ((rt.penalty = penalty_create(&ps)) == NULL)
		return -1;
	sasl_set_penalty(rt.penalty);
	return 0;
}

/* The endpoint's view of the workers, for their memory use. */
static const pid_t *
worker_pids(unsigned *n)
{
	*n = rt.nworkers;
	return rt.workers;
}

int
process_worker_group(gid_t *gid)
{
	char why[512];
	uid_t uid;

	/* Quietly: a tool that cannot find the user still does its work;
	 * posternd will complain. */
	return worker_ids(&uid, gid, why, sizeof(why)) == 1;
}

const char *
process_metrics_listen(void)
{
	return rt.set.metrics_listen != NULL ? rt.set.metrics_listen : "";
}

static int
master_run(void)
{
	char status[160];
	unsigned i;
	int reexec = getenv(ENV_REEXEC) != NULL;

	if (resolve_user() < 0 || prepare_state_dir() < 0 ||
	    bind_listeners() < 0)
		return 1;
	if (!rt.opt->foreground && !reexec) {
		if (daemonize() < 0)
			return 1;
		log_open("posternd", 1, log_level_of(rt.set.log_level));
	}
	/* In the foreground too: a supervisor (systemd's PIDFile=, a
	 * script) may want it.  A reload keeps the pid, and the file. */
	if (!reexec)
		write_pid_file();
	unsetenv(ENV_REEXEC);
	rt.loop = loop_create();
	if (rt.loop == NULL)
		return 1;
	loop_current = rt.loop;
	loop_signal(rt.loop, SIGCHLD, master_on_sigchld, NULL);
	loop_signal(rt.loop, SIGTERM, master_on_stop, NULL);
	loop_signal(rt.loop, SIGINT, master_on_stop, NULL);
	loop_signal(rt.loop, SIGHUP, master_on_reload, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (penalty_start() < 0 || listener_share_setup() < 0)
		return 1;
	rt.nworkers = worker_count();
	rt.workers = xcalloc(rt.nworkers, sizeof(*rt.workers));
	metrics_freeze();
	if (rt.set.metrics_listen[0] != '\0' &&
	    metrics_http_start(rt.loop, rt.set.metrics_listen,
	                       rt.set.metrics_allow_remote,
	                       worker_pids) < 0)
		return 1;
	for (i = 0; i < rt.nworkers; i++)
		spawn_worker(i);
	log_notice("posternd %s started: %u worker(s), %zu listener(s), "
	           "%zu module(s)", PACKAGE_VERSION, rt.nworkers,
	           listener_count(), loader_count(rt.loader));
	/* The listeners are bound, so connections wait in their backlog
	 * until a worker accepts: ready now. */
	snprintf(status, sizeof(status), "%u worker(s), %zu listener(s), "
	         "%zu module(s)", rt.nworkers, listener_count(),
	         loader_count(rt.loader));
	notify_ready(status);
	/* After a reload the previous image's workers serve their sessions
	 * to the end and leave; the new ones are already accepting. */
	for (i = 0; i < rt.nold; i++)
		kill(rt.old[i], SIGUSR2);
	loop_run(rt.loop);
	metrics_http_stop();
	remove_pid_file();
	log_notice("posternd stopped");
	loop_destroy(rt.loop);
	loop_current = NULL;
	return 0;
}

int
process_main(const struct options *opt)
{
	int rc;
	ssize_t n;

	rt.opt = opt;
	log_open("posternd", 0, POSTERN_LOG_INFO);
	n = readlink("/proc/self/exe", rt.self_exe, sizeof(rt.self_exe) - 1);
	if (n > 0)
		rt.self_exe[n] = '\0';
	if (process_setup(opt->config_path, 0) < 0) {
		process_teardown();
		return 1;
	}
	if (opt->print_config) {
		conf_print_effective(rt.conf, stdout, opt->print_docs,
		                     opt->print_all);
		hook_print(stdout);
		rc = 0;
	} else if (opt->check_only) {
		printf("%s: configuration OK (%zu module(s))\n",
		       rt.config_path, loader_count(rt.loader));
		rc = 0;
	} else {
		rc = master_run();
	}
	process_teardown();
	return rc;
}
