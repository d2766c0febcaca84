/*
 * fuzz_pop3.c - libFuzzer harness for the POP3 module's network-facing
 * pure code: every input line is parsed in both states (as a session
 * would), the parsed message numbers drive the snapshot (DELE, RSET,
 * lookups, the expunge ranges), and the whole input goes through the
 * byte-stuffer as a message, for RETR and for TOP, in chunks whose sizes
 * come from the input itself.  Checks: the stuffer never writes past
 * POP3_STUFF_OUT_MAX, RETR's output undoes to the input (plus the final
 * CRLF), and parsed arguments lie inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_maildrop.h"
#include "pop3_parser.h"
#include "pop3_stuff.h"

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
 * compares with the input, plus the CRLF added after a last line that
 * had none. */
static void
check_unstuffed(const char *out, size_t w, const uint8_t *in, size_t len)
{
	char *u = malloc(w + 1);
	size_t o, n = 0;
	int bol = 1, add_crlf = len > 0 && in[len - 1] != '\n';

	if (u == NULL)
		return;
	for (o = 0; o + 3 < w; o++) {
		if (bol && out[o] == '.') {
			bol = 0; /* the dot we added: drop it */
			continue;
		}
		u[n++] = out[o];
		bol = out[o] == '\n';
	}
	if (n != len + (add_crlf ? 2 : 0) || memcmp(u, in, len) != 0 ||
	    (add_crlf && memcmp(u + len, "\r\n", 2) != 0))
		abort();
	free(u);
}

static void
stuff(const uint8_t *data, size_t size, int top, uint32_t lines)
{
	struct pop3_stuffer st;
	char *out = malloc(POP3_STUFF_OUT_MAX(size) + POP3_STUFF_TAIL_MAX + 1);
	size_t off = 0, w = 0, chunk, n;

	if (out == NULL)
		return;
	pop3_stuffer_init(&st, top, lines);
	chunk = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	while (off < size && !st.done) {
		n = size - off < chunk ? size - off : chunk;
		w += pop3_stuff(&st, (const char *)data + off, n, out + w);
		if (w > POP3_STUFF_OUT_MAX(off + n))
			abort();
		off += n;
	}
	w += pop3_stuff_finish(&st, out + w);
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
