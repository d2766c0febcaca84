/*
 * relay_queue.c - the relay's on-disk queue (see relay_queue.h).
 */
#include "relay_queue.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#define RQ_MAGIC "postern-queue 1\n"
#define RQ_COPY_BUF 65536
/* The envelope of a message with many long recipients still fits. */
#define RQ_HEADER_MAX (4 * 1024 * 1024)

/* ---- small helpers ---------------------------------------------------- */

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fsync_dir(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static uint32_t
fnv1a(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* xtext-style encoding of a value into f (see relay_queue.h). */
static void
put_value(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (strcmp(s, "-") == 0) {
		fputs("+2D", f);
		return;
	}
	for (; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '+')
			fprintf(f, "+%02X", *p);
		else
			fputc(*p, f);
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes `len` octets of an encoded value (malloc'd; NULL if bad). */
static char *
get_value(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] != '+') {
			if ((unsigned char)s[i] <= 0x20)
				goto bad;
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= len ||
		    (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
			goto bad;
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	if (memchr(out, '\0', (size_t)(o - out)) != NULL)
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- writing ---------------------------------------------------------- */

int
rq_init(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	const char *sub[] = { "", "/q", "/tmp" };
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "queue: mkdir %s: %s", path,
			         strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The envelope text of a new message. */
static char *
envelope_text(const struct postern_relay_envelope *env, uint64_t msg_len,
              size_t *len)
{
	static const char *const bodies[] = { "", "7BIT", "8BITMIME",
		                              "BINARYMIME" };
	static const char *const rets[] = { "", "FULL", "HDRS" };
	char *text = NULL;
	FILE *f;
	size_t i;

	if ((f = open_memstream(&text, len)) == NULL)
		return NULL;
	fputs(RQ_MAGIC, f);
	fprintf(f, "arrival %lld\nsender ", (long long)time(NULL));
	put_value(f, env->sender);
	fputc('\n', f);
	if (env->size_param)
		fprintf(f, "size %" PRIu64 "\n", env->size_param);
	if (env->body > POSTERN_BODY_UNSPECIFIED &&
	    env->body <= POSTERN_BODY_BINARYMIME)
		fprintf(f, "body %s\n", bodies[env->body]);
	if (env->smtputf8)
		fputs("smtputf8\n", f);
	if (env->ret == POSTERN_DSN_RET_FULL || env->ret == POSTERN_DSN_RET_HDRS)
		fprintf(f, "ret %s\n", rets[env->ret]);
	if (env->envid != NULL) {
		fputs("envid ", f);
		put_value(f, env->envid);
		fputc('\n', f);
	}
	if (env->auth_user != NULL) {
		fputs("auth ", f);
		put_value(f, env->auth_user);
		fputc('\n', f);
	}
	if (env->client_addr != NULL) {
		fputs("client ", f);
		put_value(f, env->client_addr);
		fputc('\n', f);
	}
	if (env->client_helo != NULL) {
		fputs("helo ", f);
		put_value(f, env->client_helo);
		fputc('\n', f);
	}
	for (i = 0; i < env->nrcpts; i++) {
		fprintf(f, "rcpt %u ", env->rcpts[i].notify);
		if (env->rcpts[i].orcpt != NULL)
			put_value(f, env->rcpts[i].orcpt);
		else
			fputc('-', f);
		fputc(' ', f);
		put_value(f, env->rcpts[i].address);
		fputc('\n', f);
	}
	fprintf(f, "message %" PRIu64 "\n", msg_len);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int
copy_content(int fd, const struct postern_relay_message *msg)
{
	char *buf;
	uint64_t done = 0;
	ssize_t n;
	size_t want;

	if (msg->fd < 0)
		return write_all(fd, msg->data, (size_t)msg->length);
	if ((buf = malloc(RQ_COPY_BUF)) == NULL)
		return -1;
	while (done < msg->length) {
		want = msg->length - done > RQ_COPY_BUF
		           ? RQ_COPY_BUF : (size_t)(msg->length - done);
		n = pread(msg->fd, buf, want, (off_t)(msg->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) < 0) {
			if (n == 0)
				errno = EIO; /* the spool file is short */
			free(buf);
			return -1;
		}
		done += (uint64_t)n;
	}
	free(buf);
	return 0;
}

/* Writes tmp/ID: envelope, head, content; fsynced. */
static int
write_tmp(const char *path, const struct postern_relay_envelope *env,
          const struct postern_relay_message *msg)
{
	uint64_t msg_len = msg->head_len + msg->length;
	size_t len;
	char *text;
	int fd, rc = -1, saved;

	if ((text = envelope_text(env, msg_len, &len)) == NULL)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return -1;
	}
	if (write_all(fd, text, len) == 0 &&
	    (msg->head_len == 0 ||
	     write_all(fd, msg->head, msg->head_len) == 0) &&
	    copy_content(fd, msg) == 0 && fsync(fd) == 0)
		rc = 0;
	saved = errno;
	close(fd);
	free(text);
	errno = saved;
	return rc;
}

int
rq_write(const char *dir, const struct postern_relay_envelope *env,
         const struct postern_relay_message *msg, const char *id,
         char *err, size_t errlen)
{
	char tmp[4096], dst[4096], log[4096], qdir[4096];
	const char *what = "write";
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, id);
	snprintf(dst, sizeof(dst), "%s/q/%s", dir, id);
	snprintf(log, sizeof(log), "%s/q/%s.log", dir, id);
	/* The log is made first and exclusively: it claims the id. */
	fd = open(log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		what = "create";
		goto fail_nolog;
	}
	close(fd);
	if (write_tmp(tmp, env, msg) < 0)
		goto fail;
	what = "link";
	if (link(tmp, dst) < 0)
		goto fail;
	what = "fsync the directory of";
	snprintf(qdir, sizeof(qdir), "%s/q", dir);
	if (fsync_dir(qdir) < 0) {
		saved = errno;
		unlink(dst);
		errno = saved;
		goto fail;
	}
	unlink(tmp);
	return 0;
fail:
	saved = errno;
	unlink(tmp);
	unlink(log);
	errno = saved;
fail_nolog:
	saved = errno;
	snprintf(err, errlen, "queue: cannot %s %s: %s", what,
	         strcmp(what, "create") == 0 ? log : dst, strerror(saved));
	errno = saved;
	return -1;
}

/* ---- reading ---------------------------------------------------------- */

void
rq_free_fields(struct rq_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].address);
		free(m->rcpts[i].orcpt);
		free(m->rcpts[i].text);
	}
	free(m->rcpts);
	free(m->sender);
	free(m->envid);
	free(m->auth_user);
	free(m->client_addr);
	free(m->client_helo);
	m->rcpts = NULL;
	m->nrcpts = 0;
	m->sender = m->envid = m->auth_user = NULL;
	m->client_addr = m->client_helo = NULL;
}

void
rq_free(struct rq_msg *m)
{
	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	rq_free_fields(m);
	free(m);
}

/* One "rcpt NOTIFY ORCPT ADDRESS" line's arguments. */
static int
parse_rcpt(struct rq_msg *m, const char *arg, size_t len)
{
	const char *sp1, *sp2, *end = arg + len;
	struct rq_rcpt *r, *v;
	char *endp;
	unsigned long notify;

	if ((sp1 = memchr(arg, ' ', len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL)
		return -1;
	notify = strtoul(arg, &endp, 10);
	if (endp != sp1 || notify > 0xf)
		return -1;
	v = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	m->rcpts = v;
	r = &v[m->nrcpts];
	memset(r, 0, sizeof(*r));
	r->notify = (unsigned)notify;
	if (!(sp2 - sp1 == 2 && sp1[1] == '-') &&
	    (r->orcpt = get_value(sp1 + 1, (size_t)(sp2 - sp1 - 1))) == NULL)
		return -1;
	if (sp2 + 1 >= end ||
	    (r->address = get_value(sp2 + 1, (size_t)(end - sp2 - 1))) ==
	        NULL) {
		free(r->orcpt);
		return -1;
	}
	m->nrcpts++;
	return 0;
}

static int
parse_enum(const char *arg, size_t len, const char *const *names, int n)
{
	int i;

	for (i = 1; i < n; i++)
		if (strlen(names[i]) == len && memcmp(arg, names[i], len) == 0)
			return i;
	return -1;
}

static int
parse_number(const char *arg, size_t len, uint64_t *out)
{
	char buf[32], *end;

	if (len == 0 || len >= sizeof(buf) || !isdigit((unsigned char)*arg))
		return -1;
	memcpy(buf, arg, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return *end != '\0' || errno != 0 ? -1 : 0;
}

/* One header line "KEY ARG"; 1 for the final "message" line. */
static int
parse_line(struct rq_msg *m, const char *line, size_t len, uint64_t *msglen)
{
	static const char *const bodies[] = { "", "7BIT", "8BITMIME",
		                              "BINARYMIME" };
	static const char *const rets[] = { "", "FULL", "HDRS" };
	const char *sp = memchr(line, ' ', len), *arg;
	size_t klen = sp != NULL ? (size_t)(sp - line) : len, alen;
	uint64_t n;
	int e;
	char **field = NULL;

	arg = sp != NULL ? sp + 1 : line + len;
	alen = (size_t)(line + len - arg);
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(line, s, klen) == 0)
	if (KEY("message")) {
		if (parse_number(arg, alen, msglen) < 0)
			return -1;
		return 1;
	}
	if (KEY("arrival")) {
		if (parse_number(arg, alen, &n) < 0)
			return -1;
		m->arrival = (int64_t)n;
		return 0;
	}
	if (KEY("size"))
		return parse_number(arg, alen, &m->size_param);
	if (KEY("smtputf8")) {
		m->smtputf8 = 1;
		return sp == NULL ? 0 : -1;
	}
	if (KEY("body")) {
		if ((e = parse_enum(arg, alen, bodies, 4)) < 0)
			return -1;
		m->body = (enum postern_body_type)e;
		return 0;
	}
	if (KEY("ret")) {
		if ((e = parse_enum(arg, alen, rets, 3)) < 0)
			return -1;
		m->ret = (enum postern_dsn_ret)e;
		return 0;
	}
	if (KEY("rcpt"))
		return parse_rcpt(m, arg, alen);
	if (KEY("sender"))
		field = &m->sender;
	else if (KEY("envid"))
		field = &m->envid;
	else if (KEY("auth"))
		field = &m->auth_user;
	else if (KEY("client"))
		field = &m->client_addr;
	else if (KEY("helo"))
		field = &m->client_helo;
#undef KEY
	if (field == NULL || *field != NULL || sp == NULL)
		return -1;
	return (*field = get_value(arg, alen)) == NULL ? -1 : 0;
}

int
rq_parse(const char *text, size_t len, uint64_t file_size, struct rq_msg *m,
         char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *nl;
	uint64_t msglen = 0;
	size_t lineno = 1;
	int r = 0;

	m->fd = -1;
	if (len < sizeof(RQ_MAGIC) - 1 ||
	    memcmp(text, RQ_MAGIC, sizeof(RQ_MAGIC) - 1) != 0) {
		snprintf(err, errlen, "not a queue file (no \"%.*s\" line)",
		         (int)sizeof(RQ_MAGIC) - 2, RQ_MAGIC);
		return -1;
	}
	p += sizeof(RQ_MAGIC) - 1;
	while (r == 0) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			snprintf(err, errlen, "envelope ends at line %zu "
			         "without its \"message\" line", lineno);
			goto bad;
		}
		if ((r = parse_line(m, p, (size_t)(nl - p), &msglen)) < 0) {
			snprintf(err, errlen, "envelope line %zu is bad: "
			         "\"%.*s\"", lineno,
			         (int)(nl - p > 60 ? 60 : nl - p), p);
			goto bad;
		}
		p = nl + 1;
	}
	if (m->sender == NULL || m->nrcpts == 0 || m->arrival == 0) {
		snprintf(err, errlen, "envelope lacks its %s",
		         m->sender == NULL ? "sender"
		         : m->nrcpts == 0 ? "recipients" : "arrival time");
		goto bad;
	}
	m->msg_offset = (uint64_t)(p - text);
	m->msg_len = msglen;
	if (m->msg_offset + msglen != file_size) {
		snprintf(err, errlen, "file is %" PRIu64 " octets, the "
		         "envelope says %" PRIu64 " (truncated or damaged)",
		         file_size, m->msg_offset + msglen);
		goto bad;
	}
	return 0;
bad:
	rq_free_fields(m);
	return -1;
}

size_t
rq_log_line(char *buf, size_t size, const char *kind, long rcpt,
            int64_t when, unsigned failures, int64_t next, const char *dsn,
            const char *text)
{
	char idx[24];
	int n, m;
	size_t i;

	if (rcpt < 0)
		snprintf(idx, sizeof(idx), "-");
	else
		snprintf(idx, sizeof(idx), "%ld", rcpt);
	n = snprintf(buf, size, "%s %s %lld %u %lld %s ", kind, idx,
	             (long long)when, failures, (long long)next,
	             dsn != NULL && *dsn != '\0' ? dsn : "-");
	if (n < 0 || (size_t)n >= size)
		return 0;
	/* The text ends at the line: no control octets in it. */
	if (text == NULL || *text == '\0')
		text = "-";
	for (i = 0; text[i] != '\0' && i < RQ_TEXT_MAX; i++) {
		if ((size_t)n + 12 >= size)
			return 0;
		buf[n++] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f
		               ? ' ' : text[i];
	}
	m = snprintf(buf + n, size - (size_t)n, " %08x\n",
	             fnv1a(buf, (size_t)n));
	if (m < 0 || (size_t)(n + m) >= size)
		return 0;
	return (size_t)(n + m);
}

/* Applies one log line (without its LF); -1 if it is not valid. */
static int
apply_line(struct rq_msg *m, const char *line, size_t len)
{
	char buf[RQ_TEXT_MAX + 256], kind[16], idx[24], dsn[16];
	long long when, next;
	unsigned failures, hash;
	const char *sp;
	struct rq_rcpt *r = NULL;
	char *end;
	int off = 0;
	long i;

	if (len >= sizeof(buf) || len < 10 ||
	    (sp = memrchr(line, ' ', len)) == NULL ||
	    line + len - sp != 9)
		return -1;
	memcpy(buf, sp + 1, 8);
	buf[8] = '\0';
	hash = (unsigned)strtoul(buf, &end, 16);
	if (*end != '\0' || hash != fnv1a(line, (size_t)(sp - line)))
		return -1;
	memcpy(buf, line, (size_t)(sp - line));
	buf[sp - line] = '\0';
	if (sscanf(buf, "%15s %23s %lld %u %lld %15s %n", kind, idx, &when,
	           &failures, &next, dsn, &off) != 6 || off == 0)
		return -1;
	if (strcmp(idx, "-") == 0) {
		if (strcmp(kind, "hold") == 0)
			m->held = 1;
		else if (strcmp(kind, "release") == 0)
			m->held = 0;
		else
			return -1;
		return 0;
	}
	i = strtol(idx, &end, 10);
	if (*end != '\0' || i < 0 || (size_t)i >= m->nrcpts)
		return -1;
	r = &m->rcpts[i];
	/* A delay warning was sent: that alone, the state is the last
	 * attempt's. */
	if (strcmp(kind, "warned") == 0) {
		r->warned = 1;
		return 0;
	}
	if (strcmp(kind, "sent") == 0)
		r->state = RQ_SENT;
	else if (strcmp(kind, "failed") == 0)
		r->state = RQ_FAILED;
	else if (strcmp(kind, "defer") == 0)
		r->state = RQ_PENDING;
	else
		return -1;
	r->failures = failures;
	r->last_try = when;
	r->next_try = next;
	snprintf(r->dsn, sizeof(r->dsn), "%s",
	         strcmp(dsn, "-") == 0 ? "" : dsn);
	free(r->text);
	r->text = strdup(buf + off);
	return 0;
}

void
rq_apply_log(struct rq_msg *m, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;

	/* A last line without its LF was cut by a crash: ignored. */
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (apply_line(m, p, (size_t)(nl - p)) < 0)
			m->bad_lines++;
		p = nl + 1;
	}
}

/* Reads a whole small file (the log) or the first `max` octets. */
static char *
read_file(int fd, size_t max, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap), *nb;
	ssize_t r;

	if (buf == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap >= max)
				break;
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = pread(fd, buf + n, cap - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

/* Reads the envelope text: up to the "message" line. */
static char *
read_header(int fd, size_t *len)
{
	return read_file(fd, RQ_HEADER_MAX, len);
}

enum rq_load_result
rq_load(const char *dir, const char *id, int lock, struct rq_msg **out,
        char *err, size_t errlen)
{
	char path[4096], *text;
	struct rq_msg *m;
	struct stat st;
	size_t len;
	int fd, lfd;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/q/%s", dir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return RQ_LOAD_GONE;
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return RQ_LOAD_ERROR;
	}
	if (lock && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		if (errno == EWOULDBLOCK)
			return RQ_LOAD_BUSY;
		snprintf(err, errlen, "lock %s: %s", path, strerror(errno));
		return RQ_LOAD_ERROR;
	}
	/* Done and removed by another process between open and lock. */
	if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return RQ_LOAD_GONE;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (text = read_header(fd, &len)) == NULL) {
		snprintf(err, errlen, "read %s: %s", path, strerror(errno));
		free(m);
		close(fd);
		return RQ_LOAD_ERROR;
	}
	if (rq_parse(text, len, (uint64_t)st.st_size, m, err, errlen) < 0) {
		free(text);
		free(m);
		close(fd);
		return RQ_LOAD_CORRUPT;
	}
	free(text);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->fd = fd;
	snprintf(path, sizeof(path), "%s/q/%s.log", dir, id);
	if ((lfd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		text = read_file(lfd, SIZE_MAX, &len);
		close(lfd);
		if (text == NULL) {
			snprintf(err, errlen, "read %s: %s", path,
			         strerror(errno));
			rq_free(m);
			return RQ_LOAD_ERROR;
		}
		rq_apply_log(m, text, len);
		free(text);
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		rq_free(m);
		return RQ_LOAD_ERROR;
	}
	*out = m;
	return RQ_LOAD_OK;
}

int
rq_append(const char *dir, const char *id, const char *lines, size_t len)
{
	char path[4096];
	int fd, rc = -1, saved;

	snprintf(path, sizeof(path), "%s/q/%s.log", dir, id);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	               0600)) < 0)
		return -1;
	if (write_all(fd, lines, len) == 0 && fdatasync(fd) == 0)
		rc = 0;
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
rq_remove(const char *dir, const char *id)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/q/%s", dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	/* Not fsynced: a removal lost in a crash brings back a message
	 * whose log says it is done, and the scan removes it again. */
	snprintf(path, sizeof(path), "%s/q/%s.log", dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int
rq_done(const struct rq_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].state == RQ_PENDING)
			return 0;
	return 1;
}

int
rq_id_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!isxdigit((unsigned char)name[i]) ||
		    islower((unsigned char)name[i]))
			return 0;
	return i == 20;
}
