/*
 * test_relay_queue.c - the relay queue's files (modules/relay/
 * relay_queue.c): a message written and read back (envelope values
 * with spaces, pluses and UTF-8, content from a file), truncated and
 * damaged message files refused, the state log replayed with its last
 * line cut and a damaged line ignored, the lock held by one opener.
 */
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "relay_queue.h"

static const char body[] = "Subject: hi\r\n\r\nline one\r\n.dot line\r\n";

static struct postern_relay_rcpt rcpts[] = {
	{ .size = sizeof(struct postern_relay_rcpt),
	  .address = "bob@example.net", .notify = 0x6,
	  .orcpt = "rfc822;Bob+x@example.net" },
	{ .size = sizeof(struct postern_relay_rcpt),
	  .address = "\"odd one\"@example.com" },
	{ .size = sizeof(struct postern_relay_rcpt),
	  .address = "j\xc3\xb6rg@example.de", .orcpt = "-" },
};

static char *
write_one(const char *dir, char *id)
{
	struct postern_relay_envelope env = {
		.size = sizeof(env), .sender = "alice@example.org",
		.size_param = 99, .body = POSTERN_BODY_8BITMIME,
		.smtputf8 = 1, .ret = POSTERN_DSN_RET_HDRS,
		.envid = "env id+1", .rcpts = rcpts, .nrcpts = 3,
		.auth_user = "alice", .client_addr = "192.0.2.7",
		.client_helo = "client.example",
	};
	struct postern_relay_message msg = {
		.size = sizeof(msg), .head = "Received: x\r\n",
		.head_len = 13, .fd = -1, .data = body,
		.length = sizeof(body) - 1,
	};
	static unsigned serial;
	char err[512], *path;

	/* Ids are the caller's (the relay takes host->unique_id's). */
	snprintf(id, RQ_ID_MAX, "%08X%012X", (unsigned)getpid(), ++serial);
	CU_ASSERT_FATAL(rq_init(dir, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(rq_write(dir, &env, &msg, id, err, sizeof(err)) == 0);
	CU_ASSERT(rq_id_valid(id));
	/* An id is taken once: the second write says so and leaves the
	 * first message alone. */
	CU_ASSERT(rq_write(dir, &env, &msg, id, err, sizeof(err)) == -1 &&
	          errno == EEXIST);
	if (asprintf(&path, "%s/q/%s", dir, id) < 0)
		abort();
	return path;
}

static void
test_roundtrip(void)
{
	char *dir = unit_tmpdir(), id[RQ_ID_MAX], err[512], buf[256];
	char *path = write_one(dir, id);
	struct rq_msg *m;
	ssize_t n;

	CU_ASSERT_FATAL(rq_load(dir, id, 1, &m, err, sizeof(err)) ==
	                RQ_LOAD_OK);
	CU_ASSERT_STRING_EQUAL(m->sender, "alice@example.org");
	CU_ASSERT_EQUAL(m->size_param, 99);
	CU_ASSERT_EQUAL(m->body, POSTERN_BODY_8BITMIME);
	CU_ASSERT_EQUAL(m->smtputf8, 1);
	CU_ASSERT_EQUAL(m->ret, POSTERN_DSN_RET_HDRS);
	CU_ASSERT_STRING_EQUAL(m->envid, "env id+1");
	CU_ASSERT_STRING_EQUAL(m->auth_user, "alice");
	CU_ASSERT_STRING_EQUAL(m->client_helo, "client.example");
	CU_ASSERT_FATAL(m->nrcpts == 3);
	CU_ASSERT_STRING_EQUAL(m->rcpts[0].address, "bob@example.net");
	CU_ASSERT_STRING_EQUAL(m->rcpts[0].orcpt, "rfc822;Bob+x@example.net");
	CU_ASSERT_EQUAL(m->rcpts[0].notify, 0x6);
	CU_ASSERT_STRING_EQUAL(m->rcpts[1].address, "\"odd one\"@example.com");
	CU_ASSERT_PTR_NULL(m->rcpts[1].orcpt);
	CU_ASSERT_STRING_EQUAL(m->rcpts[2].address, "j\xc3\xb6rg@example.de");
	CU_ASSERT_STRING_EQUAL(m->rcpts[2].orcpt, "-");
	CU_ASSERT_EQUAL(m->msg_len, 13 + sizeof(body) - 1);
	n = pread(m->fd, buf, sizeof(buf), (off_t)m->msg_offset);
	CU_ASSERT_EQUAL(n, (ssize_t)m->msg_len);
	CU_ASSERT(memcmp(buf, "Received: x\r\nSubject: hi", 24) == 0);
	CU_ASSERT_EQUAL(m->rcpts[0].state, RQ_PENDING);
	CU_ASSERT_FALSE(rq_done(m));
	rq_free(m);
	CU_ASSERT(rq_remove(dir, id) == 0);
	CU_ASSERT(access(path, F_OK) < 0);
	CU_ASSERT(rq_load(dir, id, 1, &m, err, sizeof(err)) == RQ_LOAD_GONE);
	free(path);
	unit_rm_rf(dir);
	free(dir);
}

static void
test_lock(void)
{
	char *dir = unit_tmpdir(), id[RQ_ID_MAX], err[512];
	char *path = write_one(dir, id);
	struct rq_msg *a, *b;
	pid_t pid;
	int status;

	CU_ASSERT_FATAL(rq_load(dir, id, 1, &a, err, sizeof(err)) ==
	                RQ_LOAD_OK);
	/* flock belongs to the open file: another process is refused. */
	if ((pid = fork()) == 0)
		_exit(rq_load(dir, id, 1, &b, err, sizeof(err)) ==
		      RQ_LOAD_BUSY ? 0 : 1);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	          WEXITSTATUS(status) == 0);
	rq_free(a);
	CU_ASSERT(rq_load(dir, id, 1, &b, err, sizeof(err)) == RQ_LOAD_OK);
	rq_free(b);
	free(path);
	unit_rm_rf(dir);
	free(dir);
}

/* A message file cut anywhere, or with a byte changed in its envelope,
 * is never taken as a message. */
static void
test_damaged_message(void)
{
	char *dir = unit_tmpdir(), id[RQ_ID_MAX], err[512];
	char *path = write_one(dir, id), *text;
	struct rq_msg *m;
	struct stat st;
	off_t size, cut;
	int fd;

	CU_ASSERT_FATAL(stat(path, &st) == 0);
	size = st.st_size;
	text = unit_read_file(path);
	CU_ASSERT_FATAL(text != NULL);
	for (cut = 0; cut < size; cut++) {
		fd = open(path, O_WRONLY | O_TRUNC);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_FATAL(write(fd, text, (size_t)cut) == cut);
		close(fd);
		CU_ASSERT(rq_load(dir, id, 1, &m, err, sizeof(err)) ==
		          RQ_LOAD_CORRUPT);
	}
	/* An envelope line changed into nonsense. */
	fd = open(path, O_WRONLY | O_TRUNC);
	memcpy(strstr(text, "\nret "), "\nrXt ", 5);
	CU_ASSERT_FATAL(write(fd, text, (size_t)size) == size);
	close(fd);
	CU_ASSERT(rq_load(dir, id, 1, &m, err, sizeof(err)) ==
	          RQ_LOAD_CORRUPT);
	CU_ASSERT(strstr(err, "line") != NULL);
	/* A bad escape in a value. */
	memcpy(strstr(text, "\nrXt "), "\nret ", 5);
	memcpy(strstr(text, "+20"), "+2G", 3);
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(write(fd, text, (size_t)size) == size);
	close(fd);
	CU_ASSERT(rq_load(dir, id, 1, &m, err, sizeof(err)) ==
	          RQ_LOAD_CORRUPT);
	/* One octet more than the envelope says. */
	memcpy(strstr(text, "+2G"), "+20", 3);
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(write(fd, text, (size_t)size) == size);
	CU_ASSERT_FATAL(write(fd, "x", 1) == 1);
	close(fd);
	CU_ASSERT(rq_load(dir, id, 1, &m, err, sizeof(err)) ==
	          RQ_LOAD_CORRUPT);
	CU_ASSERT(strstr(err, "truncated or damaged") != NULL);
	free(text);
	free(path);
	unit_rm_rf(dir);
	free(dir);
}

static void
test_log(void)
{
	char *dir = unit_tmpdir(), id[RQ_ID_MAX], err[512], line[1024];
	char *path = write_one(dir, id);
	struct rq_msg *m;
	size_t n;

	n = rq_log_line(line, sizeof(line), "defer", 0, 1000, 1, 1300,
	                "4.4.1", "connect to 127.0.0.1: refused\r\nx");
	CU_ASSERT_FATAL(n > 0 && line[n - 1] == '\n');
	CU_ASSERT(memchr(line, '\r', n) == NULL);
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	/* A delay warning: recorded, the state left as it was. */
	n = rq_log_line(line, sizeof(line), "warned", 0, 1000, 1, 1300,
	                "4.4.1", "delay report sent");
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	n = rq_log_line(line, sizeof(line), "sent", 1, 1001, 0, 0, "2.0.0",
	                "250 ok");
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	n = rq_log_line(line, sizeof(line), "hold", -1, 1002, 0, 0, NULL,
	                NULL);
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	/* A damaged line (one octet changed): ignored. */
	n = rq_log_line(line, sizeof(line), "failed", 2, 1003, 0, 0, "5.1.1",
	                "550 no such user");
	line[8] = '3';
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	/* A line cut by a crash (no LF): ignored. */
	n = rq_log_line(line, sizeof(line), "sent", 0, 1004, 1, 0, "2.0.0",
	                "250 ok");
	CU_ASSERT(rq_append(dir, id, line, n - 3) == 0);
	CU_ASSERT_FATAL(rq_load(dir, id, 0, &m, err, sizeof(err)) ==
	                RQ_LOAD_OK);
	CU_ASSERT_EQUAL(m->bad_lines, 1);
	CU_ASSERT_EQUAL(m->held, 1);
	CU_ASSERT_EQUAL(m->rcpts[0].state, RQ_PENDING);
	CU_ASSERT_EQUAL(m->rcpts[0].failures, 1);
	CU_ASSERT_EQUAL(m->rcpts[0].next_try, 1300);
	CU_ASSERT_STRING_EQUAL(m->rcpts[0].dsn, "4.4.1");
	CU_ASSERT_STRING_EQUAL(m->rcpts[0].text,
	                       "connect to 127.0.0.1: refused  x");
	CU_ASSERT_EQUAL(m->rcpts[0].warned, 1);
	CU_ASSERT_EQUAL(m->rcpts[1].warned, 0);
	CU_ASSERT_EQUAL(m->rcpts[1].state, RQ_SENT);
	CU_ASSERT_EQUAL(m->rcpts[2].state, RQ_PENDING);
	CU_ASSERT_FALSE(rq_done(m));
	rq_free(m);
	/* Released, the last two delivered: done. */
	n = rq_log_line(line, sizeof(line), "release", -1, 1005, 0, 0, NULL,
	                NULL);
	CU_ASSERT(rq_append(dir, id, "\n", 1) == 0); /* ends the cut line */
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	n = rq_log_line(line, sizeof(line), "failed", 2, 1006, 0, 0, "5.1.1",
	                "550 no");
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	n = rq_log_line(line, sizeof(line), "sent", 0, 1007, 1, 0, "2.0.0",
	                "250 ok");
	CU_ASSERT(rq_append(dir, id, line, n) == 0);
	CU_ASSERT_FATAL(rq_load(dir, id, 0, &m, err, sizeof(err)) ==
	                RQ_LOAD_OK);
	CU_ASSERT_EQUAL(m->bad_lines, 2);
	CU_ASSERT_EQUAL(m->held, 0);
	CU_ASSERT_EQUAL(m->rcpts[2].state, RQ_FAILED);
	CU_ASSERT(rq_done(m));
	rq_free(m);
	free(path);
	unit_rm_rf(dir);
	free(dir);
}

/* Garbage of every kind in a log never crashes or changes state. */
static void
test_log_garbage(void)
{
	char *dir = unit_tmpdir(), id[RQ_ID_MAX], err[512];
	char *path = write_one(dir, id);
	static const char *const junk[] = {
		"\n", "sent\n", "sent 0 1 2 3 4 5\n", "x 0 1 0 0 - - 00000000\n",
		"sent 99 1 0 0 - - 12345678\n", "\xff\xfe\n",
	};
	struct rq_msg *m;
	size_t i;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		CU_ASSERT(rq_append(dir, id, junk[i], strlen(junk[i])) == 0);
	CU_ASSERT_FATAL(rq_load(dir, id, 0, &m, err, sizeof(err)) ==
	                RQ_LOAD_OK);
	CU_ASSERT_EQUAL(m->bad_lines, sizeof(junk) / sizeof(junk[0]));
	for (i = 0; i < m->nrcpts; i++)
		CU_ASSERT_EQUAL(m->rcpts[i].state, RQ_PENDING);
	rq_free(m);
	free(path);
	unit_rm_rf(dir);
	free(dir);
}

static CU_TestInfo queue_tests[] = {
	{ "write and read back", test_roundtrip },
	{ "one process holds the lock", test_lock },
	{ "truncated and damaged message files", test_damaged_message },
	{ "state log: replay, cut and damaged lines", test_log },
	{ "state log: garbage", test_log_garbage },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "relay queue", NULL, NULL, NULL, NULL, queue_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
