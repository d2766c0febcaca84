#!/bin/sh
#
# imap.sh - the IMAP module beside Dovecot's imapd on copies of one
# Maildir: login + SELECT, FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), FETCH
# of all bodies, SEARCH TEXT on a word; and the RSS of posternd with many
# idle IMAP connections.  Prints figures and ratios; never a pass or a
# failure on a time.
#
#	tests/bench/imap.sh [N [CONNS [top_builddir]]]
#
# N messages (default 10000), CONNS idle connections (default 5000);
# top_builddir (or the environment's, default ./build/plain) is a built
# tree.  Installs dovecot-imapd when missing (root only).  BENCH_RUNS
# runs per figure (default 3, median).
set -eu

N=${1:-10000}
CONNS=${2:-5000}
top_builddir=${3:-${top_builddir:-./build/plain}}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$top_builddir/core/posternd" ] ||
	{ echo "imap.sh: build $top_builddir first" >&2; exit 1; }
. "$here/peers.sh"
peers_need dovecot-imapd
# Client and server each hold a descriptor per connection.
ulimit -n $((CONNS * 2 + 1024)) 2>/dev/null || true
top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir
exec python3 "$here/imap_bench.py" "$N" "$CONNS"
