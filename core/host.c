/*
 * host.c - the host table handed to modules.
 *
 * Most members are the core functions themselves; the wrappers here add
 * what a module's view needs: the module's name in log lines, the current
 * configuration and loop, and the "init only" rule for registrations
 * (a listener or hook registered in a worker would exist in one process
 * only, silently).
 */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "conf.h"
#include "conn.h"
#include "deliver.h"
#include "dns.h"
#include "hook.h"
#include "isolate.h"
#include "job.h"
#include "listener.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mime/mime.h"
#include "pool.h"
#include "sasl.h"
#include "service.h"
#include "session.h"
#include "stream.h"
#include "shared_count.h"
#include "shared_rate.h"
#include "spool.h"
#include "tls.h"
#include "xalloc.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static struct {
	struct conf *conf;
	struct job_pool *jobs;
	int worker_id;
	int stopping;
	int in_init;
	char *dirs[POSTERN_DIR_MODULES + 1];
} host = { .worker_id = -1 };

void
host_set_conf(struct conf *c)
{
	host.conf = c;
}

struct conf *
host_conf(void)
{
	return host.conf;
}

void
host_set_dir(enum postern_dir which, const char *path)
{
	free(host.dirs[which]);
	host.dirs[which] = path != NULL ? xstrdup(path) : NULL;
}

void
host_set_jobs(struct job_pool *jobs)
{
	host.jobs = jobs;
}

struct job_pool *
host_jobs(void)
{
	return host.jobs;
}

void
host_set_worker(int worker_id)
{
	host.worker_id = worker_id;
}

void
host_set_stopping(int stopping)
{
	host.stopping = stopping;
}

void
host_set_init_phase(int in_init)
{
	host.in_init = in_init;
}

int
host_in_init(void)
{
	return host.in_init;
}

void
host_reset(void)
{
	size_t i;

	for (i = 0; i <= POSTERN_DIR_MODULES; i++) {
		free(host.dirs[i]);
		host.dirs[i] = NULL;
	}
}

/* ---- checks ----------------------------------------------------------- */

static int
init_only(postern_module_t *m, const char *what)
{
	if (host.in_init)
		return 1;
	log_write(POSTERN_LOG_ERROR, m != NULL ? m->name : NULL,
	          "%s is only allowed during module init", what);
	return 0;
}

/* ---- logging ---------------------------------------------------------- */

static void
h_vlog(postern_module_t *m, int level, const char *fmt, va_list ap)
{
	log_vwrite(level, m != NULL ? m->name : NULL, fmt, ap);
}

static void
h_log(postern_module_t *m, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h_vlog(m, level, fmt, ap);
	va_end(ap);
}

/* ---- configuration ---------------------------------------------------- */

static postern_cfg_t *
h_cfg_module(postern_module_t *m)
{
	return conf_lookup(conf_root(host.conf), m->name);
}

static postern_cfg_t *
h_cfg_lookup(postern_cfg_t *node, const char *path)
{
	if (node == NULL)
		node = conf_root(host.conf);
	return conf_lookup(node, path);
}

static int
h_cfg_parse(postern_module_t *m, postern_cfg_t *node,
            const struct postern_cfg_key *schema, size_t key_size, void *out)
{
	if (!init_only(m, "cfg_parse"))
		return -1;
	return conf_parse(host.conf, node, m->name, schema, key_size, out, 0);
}

static void
h_cfg_error(postern_module_t *m, postern_cfg_t *node, const char *fmt, ...)
{
	va_list ap;

	(void)m;
	va_start(ap, fmt);
	conf_verror(host.conf, node, fmt, ap);
	va_end(ap);
}

static const char *
h_dir(enum postern_dir which)
{
	if ((unsigned)which > POSTERN_DIR_MODULES)
		return NULL;
	return host.dirs[which];
}

/* ---- worker lifecycle ------------------------------------------------- */

static int
h_worker_ops(postern_module_t *m, const struct postern_worker_ops *ops,
             void *arg)
{
	size_t n;

	if (!init_only(m, "worker_ops"))
		return -1;
	/* Copy what the module's SDK knew about; newer fields stay NULL. */
	n = ops->size < sizeof(m->worker_ops) ? ops->size
	                                      : sizeof(m->worker_ops);
	memset(&m->worker_ops, 0, sizeof(m->worker_ops));
	memcpy(&m->worker_ops, ops, n);
	m->worker_ops.size = sizeof(m->worker_ops);
	m->worker_arg = arg;
	m->has_worker_ops = 1;
	return 0;
}

static int
h_worker_id(void)
{
	return host.worker_id;
}

static int
h_stopping(void)
{
	return host.stopping;
}

/* ---- loop ------------------------------------------------------------- */

static postern_timer_t *
h_timer_add(unsigned ms, postern_timer_fn fn, void *arg)
{
	return (postern_timer_t *)loop_timer_add(loop_current, ms, fn, arg);
}

static void
h_timer_cancel(postern_timer_t *t)
{
	loop_timer_cancel(loop_current, (struct loop_timer *)t);
}

static uint64_t
h_now_ms(void)
{
	return loop_now_ms(loop_current);
}

/* The module's callback has its own handle type, so a small wrapper sits
 * between the loop's watch and the module's. */
struct postern_watch {
	struct loop_watch *w;
	postern_watch_fn fn;
	void *arg;
};

static void
watch_trampoline(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct postern_watch *hw = arg;

	(void)w;
	hw->fn(hw, fd, events, hw->arg);
}

static postern_watch_t *
h_watch_add(int fd, unsigned events, postern_watch_fn fn, void *arg)
{
	struct postern_watch *hw = xcalloc(1, sizeof(*hw));

	hw->fn = fn;
	hw->arg = arg;
	hw->w = loop_watch_add(loop_current, fd, events, watch_trampoline, hw);
	if (hw->w == NULL) {
		free(hw);
		return NULL;
	}
	return hw;
}

static int
h_watch_set(postern_watch_t *hw, unsigned events)
{
	return loop_watch_set(loop_current, hw->w, events);
}

static void
h_watch_remove(postern_watch_t *hw)
{
	if (hw == NULL)
		return;
	/* The loop skips events of removed watches, so the wrapper can go
	 * now. */
	loop_watch_remove(loop_current, hw->w);
	free(hw);
}

static void
h_defer(void (*fn)(void *arg), void *arg)
{
	loop_defer(loop_current, fn, arg);
}

/* ---- jobs, TLS, listeners --------------------------------------------- */

static postern_job_t *
h_job_submit(postern_job_work_fn work, postern_job_done_fn done, void *arg)
{
	if (host.jobs == NULL) {
		log_error("job_submit called outside a worker");
		return NULL;
	}
	return job_submit(host.jobs, work, done, arg);
}

static postern_job_t *
h_auth_job_submit(postern_job_work_fn work, postern_job_done_fn done,
                  void *arg)
{
	if (host.jobs == NULL) {
		log_error("auth_job_submit called outside a worker");
		return NULL;
	}
	return job_submit_lane(host.jobs, JOB_LANE_AUTH, work, done, arg);
}

static postern_isolated_t *
h_isolate_register(postern_module_t *m, const char *name,
                   postern_isolated_fn fn)
{
	if (!init_only(m, "isolate_register"))
		return NULL;
	return isolate_register(name, fn);
}

static postern_counts_t *
h_counts_create(postern_module_t *m)
{
	if (!init_only(m, "counts_create"))
		return NULL;
	return shared_count_create();
}

static int
h_counts_take(postern_counts_t *t, const void *key, size_t len,
              unsigned max, unsigned *ticket)
{
	return shared_count_take(t, key, len, max, ticket, NULL) == 0
	           ? POSTERN_OK : POSTERN_ERROR;
}

static postern_rates_t *
h_rates_create(postern_module_t *m, unsigned window_ms)
{
	if (!init_only(m, "rates_create"))
		return NULL;
	return shared_rate_create(window_ms);
}

static postern_metric_t *
h_metric_register(postern_module_t *m, const char *name, const char *help,
                  unsigned kind, const char *label,
                  const char *const *values)
{
	if (!init_only(m, "metric_register"))
		return NULL;
	return metrics_register(m->name, name, help, kind, label, values);
}

static int
h_rates_hit(postern_rates_t *t, const void *key, size_t len, unsigned cost,
            unsigned max, unsigned *rate)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC: one clock for every process of this boot. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return shared_rate_hit(t, key, len, cost, max,
	                       (uint64_t)ts.tv_sec * 1000 +
	                           (uint64_t)ts.tv_nsec / 1000000,
	                       rate) == 0
	           ? POSTERN_OK : POSTERN_ERROR;
}

static postern_tls_t *
h_tls_create(postern_module_t *m, postern_cfg_t *node)
{
	if (!init_only(m, "tls_create"))
		return NULL;
	return tls_create(host.conf, node);
}

static postern_conn_t *
h_conn_connect(postern_module_t *m, const struct postern_connect_spec *spec,
               char *err, size_t errlen)
{
	(void)m;
	if (loop_current == NULL) {
		snprintf(err, errlen, "conn_connect called outside a worker");
		return NULL;
	}
	return conn_connect(spec, err, errlen);
}

static postern_tls_t *
h_tls_client_create(postern_module_t *m, postern_cfg_t *node,
                    const char *ca_file)
{
	const char *dir = conf_dir(host.conf);
	char path[4096], err[1024];
	postern_tls_t *t;

	if (!init_only(m, "tls_client_create"))
		return NULL;
	if (ca_file != NULL && ca_file[0] != '/' && dir != NULL &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, ca_file) <
	        sizeof(path))
		ca_file = path;
	if ((t = tls_client_ctx(ca_file, err, sizeof(err))) == NULL)
		conf_error(host.conf, node, "%s", err);
	return t;
}

static postern_listener_t *
h_listen(postern_module_t *m, const struct postern_listen_spec *spec)
{
	if (!init_only(m, "listen"))
		return NULL;
	return listener_add(m->name, spec);
}

static int
h_session_listen(postern_module_t *m, const struct postern_protocol *p,
                 postern_cfg_t *list, postern_tls_t *tls)
{
	if (!init_only(m, "session_listen"))
		return -1;
	return session_listen(m->name, p, list, tls);
}

/* ---- hooks and services ----------------------------------------------- */

static postern_hook_t *
h_hook_define(postern_module_t *m, const char *name)
{
	if (!init_only(m, "hook_define"))
		return NULL;
	return hook_define(m->name, name);
}

static int
h_hook_register(postern_module_t *m, const struct postern_hook_handler *h)
{
	if (!init_only(m, "hook_register"))
		return -1;
	return hook_register(m->name, h);
}

static postern_hook_call_t *
h_hook_run(postern_hook_t *hook, void *payload, postern_hook_done_fn done,
           void *arg)
{
	return hook_run(loop_current, hook, payload, done, arg);
}

static int
h_service_publish(postern_module_t *m, const char *name, unsigned major,
                  unsigned minor, const void *table)
{
	if (!init_only(m, "service_publish"))
		return -1;
	return service_publish(m->name, name, major, minor, table);
}

static const void *
h_service_lookup(postern_module_t *m, const char *name, unsigned major,
                 unsigned min_minor)
{
	return service_lookup(m->name, name, major, min_minor, 0);
}

static const void *
h_service_find(postern_module_t *m, const char *name, unsigned major,
               unsigned min_minor)
{
	return service_lookup(m->name, name, major, min_minor, 1);
}

/* Time first, so ids sort by age (36 bits of 1/16 s: until 2106); the
 * pid and a counter make them unique among processes and threads. */
static void
h_unique_id(char *buf, size_t len)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "%09llX%05lX%06lX",
	         ((unsigned long long)ts.tv_sec * 16 +
	          (unsigned long long)ts.tv_nsec / 62500000) & 0xfffffffffULL,
	         (unsigned long)getpid() & 0xfffff, n & 0xffffff);
}

static void
h_vlog_prefixed(const char *prefix, int level, const char *fmt, va_list ap)
{
	log_vwrite(level, prefix, fmt, ap);
}

static const struct postern_host host_table_v = {
	.size = sizeof(struct postern_host),
	.abi_major = POSTERN_ABI_MAJOR,
	.abi_minor = POSTERN_ABI_MINOR,
	.version = PACKAGE_VERSION,

	.log = h_log,
	.vlog = h_vlog,
	.conn_log = conn_log,
	.log_enabled = log_enabled,

	.cfg_module = h_cfg_module,
	.cfg_lookup = h_cfg_lookup,
	.cfg_parse = h_cfg_parse,
	.cfg_count = conf_count,
	.cfg_elem = conf_elem,
	.cfg_path = conf_path,
	.cfg_error = h_cfg_error,
	.dir = h_dir,

	.pool_create = pool_create,
	.pool_alloc = pool_alloc,
	.pool_strndup = pool_strndup,
	.pool_printf = pool_printf,
	.pool_clear = pool_clear,
	.pool_destroy = pool_destroy,

	.worker_ops = h_worker_ops,
	.worker_id = h_worker_id,
	.stopping = h_stopping,

	.timer_add = h_timer_add,
	.timer_cancel = h_timer_cancel,
	.now_ms = h_now_ms,
	.watch_add = h_watch_add,
	.watch_set = h_watch_set,
	.watch_remove = h_watch_remove,
	.defer = h_defer,

	.job_submit = h_job_submit,
	.job_cancel = job_cancel,

	.tls_create = h_tls_create,

	.listen = h_listen,
	.conn_set_ops = conn_set_ops,
	.conn_read_line = conn_read_line,
	.conn_peek = conn_peek,
	.conn_consume = conn_consume,
	.conn_write = conn_write,
	.conn_printf = conn_printf,
	.conn_output_pending = conn_output_pending,
	.conn_pause = conn_pause,
	.conn_resume = conn_resume,
	.conn_starttls = conn_starttls,
	.conn_close = conn_close,
	.conn_set_idle = conn_set_idle,
	.conn_id = conn_id,
	.conn_peer = conn_peer,
	.conn_peer_port = conn_peer_port,
	.conn_peer_addr = conn_peer_addr,
	.conn_peer_is_loopback = conn_peer_is_loopback,
	.conn_local_port = conn_local_port,
	.conn_listener_name = conn_listener_name,
	.conn_tls_active = conn_tls_active,
	.conn_tls_info = conn_tls_info,
	.conn_pool = conn_pool,

	.hook_define = h_hook_define,
	.hook_register = h_hook_register,
	.hook_has_handlers = hook_has_handlers,
	.hook_run = h_hook_run,
	.hook_cancel = hook_cancel,
	.hook_resume = hook_resume,

	.service_publish = h_service_publish,
	.service_lookup = h_service_lookup,

	.sasl_mechanisms = sasl_mechanisms,
	.sasl_start = sasl_start,
	.sasl_step = sasl_step,
	.sasl_free = sasl_free,
	.login = sasl_login,

	.mime_parser_create = mime_parser_create,
	.mime_parser_feed = mime_parser_feed,
	.mime_parser_finish = mime_parser_finish,
	.mime_header_next = mime_header_next,
	.mime_decode_words = mime_decode_words,
	.mime_parse_addresses = mime_parse_addresses,
	.mime_parse_date = mime_parse_date,
	.mime_to_utf8 = mime_to_utf8,
	.mime_decoder_create = mime_decoder_create,
	.mime_decoder_feed = mime_decoder_feed,
	.mime_decoder_finish = mime_decoder_finish,
	.mime_decoder_free = mime_decoder_free,
	.mime_serialize = mime_serialize,
	.mime_deserialize = mime_deserialize,
	.service_find = h_service_find,

	.pool_create_limited = pool_create_limited,
	.conn_junk_command = conn_junk_command,
	.conn_junk_reset = conn_junk_reset,
	.auth_job_submit = h_auth_job_submit,
	.spool_create = spool_create,
	.spool_append = spool_append,
	.spool_flush = spool_flush,
	.spool_size = spool_size,
	.spool_memory = spool_memory,
	.spool_fd = spool_fd,
	.spool_free = spool_free,
	.conn_connect = h_conn_connect,
	.tls_client_create = h_tls_client_create,
	.conn_starttls_client = conn_starttls_client,
	.conn_error = conn_error,
	.isolate_register = h_isolate_register,
	.isolate_call = isolate_call,
	.counts_create = h_counts_create,
	.counts_take = h_counts_take,
	.counts_put = shared_count_put,
	.local_deliver = local_deliver,
	.conn_peer_gone = conn_peer_gone,
	.rates_create = h_rates_create,
	.rates_hit = h_rates_hit,
	.address_split = address_split,
	.dns_lookup = dns_lookup,
	.dns_addr = dns_addr,
	.dns_cancel = dns_cancel,
	.network_parse = network_parse,
	.network_match = network_match,
	.metric_register = h_metric_register,
	.metric_add = metrics_add,
	.metric_set = metrics_set,
	.session_listen = h_session_listen,
	.session_state = session_state,
	.session_conn = session_conn,
	.session_listener = session_listener,
	.session_reply = session_reply,
	.session_write = session_write,
	.session_close = session_close,
	.session_closing = session_closing,
	.session_error = session_error,
	.session_login_failed = session_login_failed,
	.session_login_ok = session_login_ok,
	.session_pause = session_pause,
	.session_resume = session_resume,
	.session_take_lines = session_take_lines,
	.session_read_octets = session_read_octets,
	.session_read_line = session_read_line,
	.session_hold_line = session_hold_line,
	.session_job = session_job,
	.session_handles = session_handles,
	.session_ref = session_ref,
	.session_unref = session_unref,
	.unique_id = h_unique_id,
	.conn_log_prefix = conn_log_prefix,
	.mime_encoder_create = mime_encoder_create,
	.mime_encoder_feed = mime_encoder_feed,
	.mime_encoder_finish = mime_encoder_finish,
	.mime_encoder_free = mime_encoder_free,
	.vlog_prefixed = h_vlog_prefixed,
	.session_error_reset = session_error_reset,
	.stream_start = stream_start,
};

const struct postern_host *
host_table(void)
{
	return &host_table_v;
}
