#!/bin/sh
#
# idle.sh - IDLE at scale: C clients (default 100, 1000 and 5000) of 100
# users idle on one posternd worker and on Dovecot (high-performance
# mode); 20 messages dropped into random users' new/; prints the median
# and worst time until the user's last idler sees EXISTS, and the memory
# per idling client.  Never a pass or a failure on a time.
#
#	tests/bench/idle.sh [C...]
#
# top_builddir (the environment's, default ./build/plain) is a built
# tree.  Installs dovecot-imapd when missing (root only).
set -eu

top_builddir=${top_builddir:-./build/plain}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$top_builddir/core/posternd" ] ||
	{ echo "idle.sh: build $top_builddir first" >&2; exit 1; }
. "$here/peers.sh"
peers_need dovecot-imapd
# Each side holds a descriptor per connection.
ulimit -n 30000 2>/dev/null || true
top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir
exec python3 "$here/idle_bench.py" "$@"
