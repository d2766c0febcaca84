#!/bin/sh
#
# latency.sh - one client's round trip per IMAP command (NOOP, FETCH
# FLAGS, FETCH BODY.PEEK[] of 4 KiB, 1 MiB and 16 MiB, STATUS, SELECT of
# 10,000 messages, per-message UID FETCH over 2,000) against Dovecot's
# imapd in the same run, medians of interleaved rounds.  Prints figures
# and ratios; never a pass or a failure on a time.
#
#	tests/bench/latency.sh [K [ROUNDS [top_builddir]]]
#
# K runs of each command per round (default 1000), ROUNDS rounds
# (default 3).  Installs dovecot-imapd when missing (root only).
set -eu

K=${1:-1000}
ROUNDS=${2:-3}
top_builddir=${3:-${top_builddir:-./build/plain}}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$top_builddir/core/posternd" ] ||
	{ echo "latency.sh: build $top_builddir first" >&2; exit 1; }
. "$here/peers.sh"
peers_need dovecot-imapd
top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir
exec python3 "$here/latency_bench.py" "$K" "$ROUNDS"
