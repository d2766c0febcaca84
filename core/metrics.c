/*
 * metrics.c - counters shared by the workers, and their Prometheus text
 * (see metrics.h).
 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "log.h"
#include "xalloc.h"

/* Row 0 is the master's and the tools'; worker w writes row 1 + w % 64. */
#define ROWS (METRICS_WORKERS + 1)

struct postern_metric {
	char *name; /* exported, with prefix and suffix */
	char *help;
	unsigned kind;
	char *label;   /* NULL: none */
	char **values; /* nvalues of them */
	unsigned nvalues;
	unsigned base; /* first cell */
};

static struct {
	struct postern_metric **items;
	size_t n;
	unsigned used; /* cells taken */
	uint64_t (*rows)[METRICS_CELLS];
	unsigned row;
	int frozen;
} reg;

static int
map_rows(void)
{
	void *p;

	if (reg.rows != NULL)
		return 0;
	p = mmap(NULL, sizeof(*reg.rows) * ROWS, PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("metrics: cannot map %zu bytes of counters: %s",
		          sizeof(*reg.rows) * ROWS, strerror(errno));
		return -1;
	}
	reg.rows = p;
	return 0;
}

/* Prometheus names are [a-zA-Z_:][a-zA-Z0-9_:]*; ours stay lower case. */
static int
valid_name(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || !((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static int
check_spec(const char *owner, const char *name, const char *help,
           unsigned kind, const char *label, const char *const *values,
           unsigned *nvalues)
{
	const char *why = NULL;
	unsigned n = 0;

	if (reg.frozen)
		why = "registered after the workers started (init only)";
	else if (!valid_name(name, POSTERN_METRIC_NAME_MAX))
		why = "bad name (a-z first, then a-z 0-9 _, at most 63)";
	else if (kind != POSTERN_METRIC_COUNTER &&
	         kind != POSTERN_METRIC_GAUGE)
		why = "unknown kind";
	else if (help == NULL || strchr(help, '\n') != NULL)
		why = "help must be one line";
	else if ((label == NULL) != (values == NULL))
		why = "a label needs values, values need a label";
	else if (label != NULL && (!valid_name(label, POSTERN_METRIC_NAME_MAX) ||
	         strncmp(label, "__", 2) == 0))
		why = "bad label name";
	if (why == NULL && values != NULL) {
		while (values[n] != NULL)
			n++;
		if (n == 0 || n > POSTERN_METRIC_LABELS_MAX)
			why = "a label has 1 to 32 values";
	}
	if (why == NULL && reg.used + (n ? n : 1) > METRICS_CELLS)
		why = "the metrics table is full";
	if (why != NULL) {
		log_error("module %s: metric '%s': %s", owner,
		          name != NULL ? name : "(null)", why);
		return -1;
	}
	*nvalues = n;
	return 0;
}

struct postern_metric *
metrics_register(const char *owner, const char *name, const char *help,
                 unsigned kind, const char *label,
                 const char *const *values)
{
	struct postern_metric *m;
	unsigned n, i;
	char *full;
	size_t k;

	if (check_spec(owner, name, help, kind, label, values, &n) < 0 ||
	    map_rows() < 0)
		return NULL;
	full = xasprintf("postern_%s%s", name,
	                 kind == POSTERN_METRIC_COUNTER ? "_total" : "");
	for (k = 0; k < reg.n; k++)
		if (strcmp(reg.items[k]->name, full) == 0) {
			log_error("module %s: metric '%s' already registered",
			          owner, full);
			free(full);
			return NULL;
		}
	m = xcalloc(1, sizeof(*m));
	m->name = full;
	m->help = xstrdup(help);
	m->kind = kind;
	m->label = label != NULL ? xstrdup(label) : NULL;
	m->nvalues = n;
	m->values = n > 0 ? xcalloc(n, sizeof(*m->values)) : NULL;
	for (i = 0; i < n; i++)
		m->values[i] = xstrdup(values[i]);
	m->base = reg.used;
	reg.used += n > 0 ? n : 1;
	reg.items = xreallocarray(reg.items, reg.n + 1, sizeof(*reg.items));
	reg.items[reg.n++] = m;
	return m;
}

void
metrics_freeze(void)
{
	reg.frozen = 1;
}

void
metrics_worker_start(int worker_id)
{
	size_t k;
	unsigned i, n;

	reg.frozen = 1;
	reg.row = worker_id < 0 ? 0 : 1 + (unsigned)worker_id % METRICS_WORKERS;
	if (reg.rows == NULL)
		return;
	for (k = 0; k < reg.n; k++) {
		if (reg.items[k]->kind != POSTERN_METRIC_GAUGE)
			continue;
		n = reg.items[k]->nvalues ? reg.items[k]->nvalues : 1;
		for (i = 0; i < n; i++)
			__atomic_store_n(&reg.rows[reg.row][reg.items[k]->base
			                 + i], 0, __ATOMIC_RELAXED);
	}
}

static uint64_t *
cell(struct postern_metric *m, unsigned index)
{
	if (m == NULL || reg.rows == NULL ||
	    index >= (m->nvalues ? m->nvalues : 1))
		return NULL;
	return &reg.rows[reg.row][m->base + index];
}

void
metrics_add(struct postern_metric *m, unsigned index, uint64_t n)
{
	uint64_t *c = cell(m, index);

	if (c != NULL)
		__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

void
metrics_set(struct postern_metric *m, unsigned index, uint64_t v)
{
	uint64_t *c = cell(m, index);

	if (c != NULL && m->kind == POSTERN_METRIC_GAUGE)
		__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

uint64_t
metrics_value(const struct postern_metric *m, unsigned index)
{
	uint64_t sum = 0;
	unsigned r;

	if (m == NULL || reg.rows == NULL ||
	    index >= (m->nvalues ? m->nvalues : 1))
		return 0;
	for (r = 0; r < ROWS; r++)
		sum += __atomic_load_n(&reg.rows[r][m->base + index],
		                       __ATOMIC_RELAXED);
	return sum;
}

void
metrics_escape(FILE *f, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && quote)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

static void
format_metric(FILE *f, const struct postern_metric *m)
{
	unsigned i;

	fprintf(f, "# HELP %s ", m->name);
	metrics_escape(f, m->help, 0);
	fprintf(f, "\n# TYPE %s %s\n", m->name,
	        m->kind == POSTERN_METRIC_COUNTER ? "counter" : "gauge");
	if (m->nvalues == 0) {
		fprintf(f, "%s %llu\n", m->name,
		        (unsigned long long)metrics_value(m, 0));
		return;
	}
	for (i = 0; i < m->nvalues; i++) {
		fprintf(f, "%s{%s=\"", m->name, m->label);
		metrics_escape(f, m->values[i], 1);
		fprintf(f, "\"} %llu\n",
		        (unsigned long long)metrics_value(m, i));
	}
}

/* Resident set size from /proc/PID/statm (its second field, in pages);
 * -1 when the process is gone. */
static long long
rss_of(pid_t pid)
{
	char path[64];
	unsigned long long size, resident;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fscanf(f, "%llu %llu", &size, &resident) == 2;
	fclose(f);
	return ok ? (long long)(resident * (unsigned long long)
	                        sysconf(_SC_PAGESIZE)) : -1;
}

static void
format_rss(FILE *f, const pid_t *pids, unsigned npids)
{
	unsigned i;
	long long rss;

	fputs("# HELP postern_worker_rss_bytes resident memory of each "
	      "worker process\n# TYPE postern_worker_rss_bytes gauge\n", f);
	for (i = 0; i < npids; i++)
		if (pids[i] > 0 && (rss = rss_of(pids[i])) >= 0)
			fprintf(f, "postern_worker_rss_bytes{worker=\"%u\"} "
			        "%lld\n", i, rss);
}

int
metrics_format(char **out, size_t *len, const pid_t *pids, unsigned npids)
{
	FILE *f = open_memstream(out, len);
	size_t k;

	if (f == NULL)
		return -1;
	for (k = 0; k < reg.n; k++)
		format_metric(f, reg.items[k]);
	if (npids > 0)
		format_rss(f, pids, npids);
	if (ferror(f)) {
		fclose(f);
		free(*out);
		*out = NULL;
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

void
metrics_reset(void)
{
	size_t k;
	unsigned i;

	for (k = 0; k < reg.n; k++) {
		for (i = 0; i < reg.items[k]->nvalues; i++)
			free(reg.items[k]->values[i]);
		free(reg.items[k]->values);
		free(reg.items[k]->label);
		free(reg.items[k]->help);
		free(reg.items[k]->name);
		free(reg.items[k]);
	}
	free(reg.items);
	if (reg.rows != NULL)
		munmap(reg.rows, sizeof(*reg.rows) * ROWS);
	memset(&reg, 0, sizeof(reg));
}
