/*
 * fuzz_pop3.c - libFuzzer harness for the POP3 module's network-facing
 * pure code: every input line is parsed in both states (as a session
 * would), the parsed message numbers drive the snapshot (DELE, RSET,
 * lookups, the expunge ranges), and the whole input goes through the
 * core's byte-stuffer (core/dotstuff.c, which RETR's stream uses) as a
 * message, for RETR and for TOP, in chunks whose sizes come from the
 * input itself.  Checks: the stuffer never writes past DOTSTUFF_OUT_MAX,
 * RETR's output undoes to the input with CRLF line ends, and parsed
 * arguments lie inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_maildrop.h"
#include "pop3_parser.h"
#include "dotstuff.h"

static void
check_inside(const char *p, size_t len, const char *line, size_t line_len)
{
	if (p != NULL && (p < line || p + len > line + line_len))
		abort();
}

static void
parse_lines(const uint8_t *data, size_t size, struct pop3_maildrop *d)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct pop3_command c;
	const char *why;
	enum pop3_lookup lk;
	size_t len;
	int st;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);

		for (st = POP3_STATE_AUTHORIZATION; st <= POP3_STATE_UPDATE;
		     st++) {
			if (pop3_parse(p, len, (enum pop3_state)st, &c, &why) !=
			    POP3_PARSE_OK)
				continue;
			check_inside(c.arg, c.arg_len, p, len);
			check_inside(c.arg2, c.arg2_len, p, len);
			if (!pop3_cmd_allowed((enum pop3_state)st, c.cmd))
				abort();
			if (c.cmd == POP3_CMD_DELE)
				pop3_maildrop_dele(d, c.msg);
			else if (c.cmd == POP3_CMD_RSET)
				pop3_maildrop_rset(d);
			else if (c.has_msg)
				(void)pop3_maildrop_get(d, c.msg, &lk);
		}
		p += len + (nl != NULL);
	}
	if (pop3_maildrop_visible_size(d) > d->total_size)
		abort();
}

/* Undoes byte-stuffing of RETR's output (without its ".\r\n") and
 * compares with the input as the stuffer must make it: every bare LF a
 * CR LF, and a last line without its line end completed. */
static void
check_unstuffed(const char *out, size_t w, const uint8_t *in, size_t len)
{
	char *u = malloc(w + 1), *canon = malloc(2 * len + 2);
	size_t o, n = 0, k = 0, i;
	int bol = 1;

	if (u == NULL || canon == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			canon[k++] = '\r';
		canon[k++] = (char)in[i];
	}
	if (k > 0 && canon[k - 1] == '\r')
		canon[k++] = '\n';
	else if (k > 0 && canon[k - 1] != '\n') {
		canon[k++] = '\r';
		canon[k++] = '\n';
	}
	for (o = 0; o + 3 < w; o++) {
		if (bol && out[o] == '.') {
			bol = 0; /* the dot we added: drop it */
			continue;
		}
		u[n++] = out[o];
		bol = out[o] == '\n';
	}
	if (n != k || memcmp(u, canon, k) != 0)
		abort();
	free(u);
	free(canon);
}

static void
stuff(const uint8_t *data, size_t size, int top, uint32_t lines)
{
	struct dotstuff st;
	char *out = malloc(DOTSTUFF_OUT_MAX(size) + DOTSTUFF_TAIL_MAX + 1);
	size_t off = 0, w = 0, chunk, n;

	if (out == NULL)
		return;
	dotstuff_init(&st, top, lines);
	chunk = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	while (off < size && !st.done) {
		n = size - off < chunk ? size - off : chunk;
		w += dotstuff_feed(&st, (const char *)data + off, n, out + w);
		if (w > DOTSTUFF_OUT_MAX(off + n))
			abort();
		off += n;
	}
	w += dotstuff_finish(&st, out + w);
	if (w < 3 || memcmp(out + w - 3, ".\r\n", 3) != 0)
		abort();
	if (!top)
		check_unstuffed(out, w, data, size);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_maildrop d;
	struct postern_uid_range *r;
	size_t nr;
	uint32_t i;
	char guid[16];

	if (pop3_maildrop_init(&d, 20) == 0) {
		for (i = 1; i <= 20; i++) {
			guid[0] = (char)(size > i ? data[i] : 'g');
			guid[1] = '\0';
			pop3_maildrop_set(&d, i, i * 3, i, 0, guid);
		}
		parse_lines(data, size, &d);
		if (pop3_maildrop_deleted_ranges(&d, &r, &nr) == 0)
			free(r);
		pop3_maildrop_free(&d);
	}
	stuff(data, size, 0, 0);
	stuff(data, size, 1, size > 1 ? data[1] % 8 : 0);
	return 0;
}
