/*
 * test_metrics.c - the metrics registry (core/metrics.c) and the
 * endpoint's answers (core/metrics_http.c): names and their checks, rows
 * of worker processes summed, gauges zeroed on a worker's start and
 * counters kept, the exact Prometheus text with escaping, and the HTTP
 * replies to good and bad requests.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "metrics.h"
#include "metrics_http.h"
#include "unit.h"

static const char *const results[] = { "ok", "a\"b\\c\nd", NULL };

static char *
text(void)
{
	char *out = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(metrics_format(&out, &len, NULL, 0), 0);
	CU_ASSERT_EQUAL(strlen(out), len);
	return out;
}

static void
test_format_exact(void)
{
	struct postern_metric *c, *g;
	char *out;

	metrics_reset();
	c = metrics_register("t", "logins", "checks \\ by\tresult",
	                     POSTERN_METRIC_COUNTER, "result", results);
	g = metrics_register("t", "queue", "waiting", POSTERN_METRIC_GAUGE,
	                     NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	metrics_add(c, 0, 3);
	metrics_add(c, 1, 1);
	metrics_add(c, 2, 100); /* past the label's values: nothing */
	metrics_set(g, 0, 7);
	metrics_add(NULL, 0, 1); /* a failed registration counts nothing */
	out = text();
	CU_ASSERT_STRING_EQUAL(out,
	    "# HELP postern_logins_total checks \\\\ by\tresult\n"
	    "# TYPE postern_logins_total counter\n"
	    "postern_logins_total{result=\"ok\"} 3\n"
	    "postern_logins_total{result=\"a\\\"b\\\\c\\nd\"} 1\n"
	    "# HELP postern_queue waiting\n"
	    "# TYPE postern_queue gauge\n"
	    "postern_queue 7\n");
	free(out);
	metrics_reset();
}

static void
test_bad_registrations(void)
{
	static const char *const none[] = { NULL };
	const char *many[POSTERN_METRIC_LABELS_MAX + 2];
	unsigned i;

	metrics_reset();
	CU_ASSERT_PTR_NULL(metrics_register("t", "Bad", "h", 0, NULL, NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "a-b", "h", 0, NULL, NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "", "h", 0, NULL, NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "two\nlines", 0, NULL,
	                                    NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 9, NULL, NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 0, "l", NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 0, "l", none));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 0, "__l",
	                                    results));
	for (i = 0; i < POSTERN_METRIC_LABELS_MAX + 1; i++)
		many[i] = "v";
	many[i] = NULL;
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 0, "l", many));
	CU_ASSERT_PTR_NOT_NULL(metrics_register("t", "x", "h", 0, NULL,
	                                        NULL));
	CU_ASSERT_PTR_NULL(metrics_register("t", "x", "h", 0, NULL, NULL));
	metrics_freeze();
	CU_ASSERT_PTR_NULL(metrics_register("t", "y", "h", 0, NULL, NULL));
	metrics_reset();
}

static void
test_rows_summed(void)
{
	struct postern_metric *c, *g;
	pid_t pid;
	int status, w;

	metrics_reset();
	c = metrics_register("t", "n", "h", POSTERN_METRIC_COUNTER, NULL,
	                     NULL);
	g = metrics_register("t", "g", "h", POSTERN_METRIC_GAUGE, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	metrics_add(c, 0, 1);
	for (w = 0; w < 3; w++) {
		if ((pid = fork()) == 0) {
			metrics_worker_start(w);
			metrics_add(c, 0, 10);
			metrics_set(g, 0, 5);
			_exit(0);
		}
		CU_ASSERT_FATAL(pid > 0);
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	}
	CU_ASSERT_EQUAL(metrics_value(c, 0), 31);
	CU_ASSERT_EQUAL(metrics_value(g, 0), 15);
	/* Worker 1 again: its gauge starts from zero, its counter goes on,
	 * so the sum never goes down. */
	if ((pid = fork()) == 0) {
		metrics_worker_start(1);
		metrics_add(c, 0, 1);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_EQUAL(metrics_value(c, 0), 32);
	CU_ASSERT_EQUAL(metrics_value(g, 0), 10);
	metrics_reset();
}

static void
test_rss(void)
{
	pid_t pids[2] = { getpid(), 0 };
	char *out = NULL;
	size_t len;

	metrics_reset();
	CU_ASSERT_EQUAL_FATAL(metrics_format(&out, &len, pids, 2), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE postern_worker_rss_bytes "
	                                   "gauge\npostern_worker_rss_bytes"
	                                   "{worker=\"0\"} "));
	CU_ASSERT_PTR_NULL(strstr(out, "worker=\"1\"")); /* not running */
	free(out);
}

static char *
answer(const char *req)
{
	char *out = NULL;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(metrics_http_answer(req, strlen(req), NULL, 0,
	                                          &out, &len), 0);
	return out;
}

static void
test_http_answers(void)
{
	static const struct {
		const char *req, *status;
	} cases[] = {
		{ "GET /metrics?x=1 HTTP/1.0\n\n", "HTTP/1.0 200 " },
		{ "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 404 " },
		{ "GET /metricsx HTTP/1.0\r\n\r\n", "HTTP/1.0 404 " },
		{ "HEAD /metrics HTTP/1.0\r\n\r\n", "HTTP/1.0 405 " },
		{ "GET /metrics\r\n\r\n", "HTTP/1.0 400 " },
		{ "\r\n\r\n", "HTTP/1.0 400 " },
	};
	char *a;
	size_t i;

	metrics_reset();
	metrics_register("t", "n", "h", POSTERN_METRIC_COUNTER, NULL, NULL);
	a = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	CU_ASSERT_STRING_EQUAL(a, "HTTP/1.0 200 OK\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: 74\r\nConnection: close\r\n\r\n"
	    "# HELP postern_n_total h\n# TYPE postern_n_total counter\n"
	    "postern_n_total 0\n");
	free(a);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = answer(cases[i].req);
		CU_ASSERT_EQUAL(strncmp(a, cases[i].status, 13), 0);
		free(a);
	}
	metrics_reset();
}

static void
test_listen_parse(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char why[256];

	CU_ASSERT_EQUAL(metrics_http_parse("127.0.0.1:9105", 0, &ss, &len,
	                                   why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(metrics_http_parse("127.1.2.3:1", 0, &ss, &len, why,
	                                   sizeof(why)), 0);
	CU_ASSERT_EQUAL(metrics_http_parse("[::1]:9105", 0, &ss, &len, why,
	                                   sizeof(why)), 0);
	CU_ASSERT_EQUAL(metrics_http_parse("10.0.0.1:9105", 0, &ss, &len,
	                                   why, sizeof(why)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "loopback"));
	CU_ASSERT_EQUAL(metrics_http_parse("10.0.0.1:9105", 1, &ss, &len,
	                                   why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(metrics_http_parse("[::]:9105", 0, &ss, &len, why,
	                                   sizeof(why)), -1);
	CU_ASSERT_EQUAL(metrics_http_parse("127.0.0.1", 0, &ss, &len, why,
	                                   sizeof(why)), -1);
	CU_ASSERT_EQUAL(metrics_http_parse("127.0.0.1:0", 0, &ss, &len, why,
	                                   sizeof(why)), -1);
	CU_ASSERT_EQUAL(metrics_http_parse("127.0.0.1:9x", 0, &ss, &len, why,
	                                   sizeof(why)), -1);
	CU_ASSERT_EQUAL(metrics_http_parse("localhost:9105", 0, &ss, &len,
	                                   why, sizeof(why)), -1);
}

static CU_TestInfo metrics_tests[] = {
	{ "the exact text, escaped", test_format_exact },
	{ "bad registrations refused", test_bad_registrations },
	{ "workers' rows summed, gauges reset", test_rows_summed },
	{ "worker RSS", test_rss },
	{ "HTTP answers", test_http_answers },
	{ "listen addresses, loopback only", test_listen_parse },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "metrics", NULL, NULL, NULL, NULL, metrics_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
