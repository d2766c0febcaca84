/*
 * fuzz_smtp.c - libFuzzer harness for the SMTP module's network parsers:
 * the command parser (modules/smtp/smtp_parser.c) and the DATA/BDAT
 * reader (modules/smtp/smtp_data.c).
 *
 * Input: the first byte picks what to drive and how, the rest is what a
 * client would send.
 *   - commands: each line goes through smtp_parse_command and then the
 *     parser of its verb, with the policies on and off;
 *   - the reader: the input is fed in pieces whose sizes come from the
 *     input itself, in DOT or CHUNK mode, rejecting or normalising.
 * Beyond memory errors (ASan) and undefined behaviour (UBSan), it checks
 * what the session relies on: a reader never consumes past the end
 * marker, which is always a real CRLF "." CRLF; output never exceeds
 * twice the input; a normalised message holds no bare CR or LF; a parsed
 * address fits its limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "smtp_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char *buf;
	size_t len, cap;
};

static void
sink_emit(void *arg, const char *d, size_t n)
{
	struct sink *s = arg;

	if (s->len + n > s->cap)
		abort();
	memcpy(s->buf + s->len, d, n);
	s->len += n;
}

static void
check_address(const char *a)
{
	if (strlen(a) > SMTP_PATH_MAX)
		abort();
}

static void
drive_command(const char *line, size_t len, unsigned flags)
{
	struct smtp_param_policy pol = {
		.utf8 = (flags & 1) != 0, .dsn = (flags & 2) != 0,
		.binary = (flags & 4) != 0,
	};
	struct smtp_command cmd;
	struct smtp_error err;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	char name[SMTP_DOMAIN_MAX + 3], mech[32];
	uint64_t size;
	int last;
	const char *ir;
	size_t irlen;

	if (smtp_parse_command(line, len, &cmd, &err) < 0)
		return;
	switch (cmd.verb) {
	case SMTP_VERB_MAIL:
		if (smtp_parse_mail(cmd.arg, cmd.arg_len, &pol, &m, &err) == 0)
			check_address(m.sender);
		break;
	case SMTP_VERB_RCPT:
		if (smtp_parse_rcpt(cmd.arg, cmd.arg_len, &pol, flags & 8, &r,
		                    &err) == 0)
			check_address(r.address);
		break;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		smtp_parse_helo(cmd.arg, cmd.arg_len, name, sizeof(name),
		                &err);
		break;
	case SMTP_VERB_BDAT:
		smtp_parse_bdat(cmd.arg, cmd.arg_len, &size, &last, &err);
		break;
	case SMTP_VERB_BURL:
		/* The URL is a prefix of the argument. */
		if (smtp_parse_burl(cmd.arg, cmd.arg_len, &irlen, &last,
		                    &err) == 0 && irlen > cmd.arg_len)
			abort();
		break;
	case SMTP_VERB_AUTH:
		smtp_parse_auth(cmd.arg, cmd.arg_len, mech, sizeof(mech), &ir,
		                &irlen, &err);
		break;
	default:
		break;
	}
}

static void
drive_commands(const char *in, size_t len, unsigned flags)
{
	const char *p = in, *end = in + len, *lf;

	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			lf = end;
		drive_command(p, (size_t)(lf - p) -
		                     (lf > p && lf[-1] == '\r' ? 1 : 0),
		              flags);
		p = lf + 1;
	}
}

static void
drive_reader(const char *in, size_t len, unsigned flags)
{
	struct smtp_data d;
	struct sink s;
	size_t off = 0, step, used, total = 0, i;
	enum smtp_data_mode mode = (flags & 1) ? SMTP_DATA_CHUNK
	                                       : SMTP_DATA_DOT;
	int normalise = (flags & 2) != 0;
	size_t max_line = (flags & 4) ? 1000 : 64;

	s.cap = 2 * len + 8;
	s.buf = malloc(s.cap);
	s.len = 0;
	if (s.buf == NULL)
		return;
	smtp_data_init(&d, mode, normalise, max_line, sink_emit, &s);
	while (off < len && !d.done) {
		/* Piece sizes from the input: splits land everywhere. */
		step = 1 + (unsigned char)in[off] % 17;
		if (step > len - off)
			step = len - off;
		used = smtp_data_feed(&d, in + off, step);
		if (used > step || (used < step && !d.done))
			abort();
		off += used;
		total += used;
		if (used < step)
			break;
	}
	if (mode == SMTP_DATA_CHUNK)
		smtp_data_finish(&d);
	if (d.done) {
		/* The end marker was a real one, and nothing after it was
		 * taken. */
		if (mode != SMTP_DATA_DOT || total < 3 ||
		    memcmp(in + total - 3, ".\r\n", 3) != 0)
			abort();
		if (total > 3 && (total < 5 ||
		                  memcmp(in + total - 5, "\r\n", 2) != 0))
			abort();
	}
	if (d.out_len != s.len || s.len > 2 * len + 2)
		abort();
	/* Normalised output has CR only before LF and LF only after CR
	 * (a CR still undecided is never emitted). */
	if (normalise) {
		for (i = 0; i < s.len; i++) {
			if (s.buf[i] == '\n' && (i == 0 || s.buf[i - 1] != '\r'))
				abort();
			if (s.buf[i] == '\r' &&
			    (i + 1 >= s.len || s.buf[i + 1] != '\n'))
				abort();
		}
	}
	free(s.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;

	if (size < 1)
		return 0;
	sel = data[0];
	if (sel & 0x80)
		drive_commands((const char *)data + 1, size - 1, sel & 0x0f);
	else
		drive_reader((const char *)data + 1, size - 1, sel & 0x07);
	return 0;
}
