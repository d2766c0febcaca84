#!/bin/sh
#
# sort.sh - SORT (DATE), SORT (SUBJECT), THREAD REFERENCES and SEARCH
# TEXT of the IMAP module beside Dovecot's imapd on copies of one Maildir
# of N messages: the first run (cold caches) and repeated runs, times and
# ratios.  Never a pass or a failure on a time.
#
#	tests/bench/sort.sh [N... [top_builddir]]
#
# N messages (default: 10000 then 50000); top_builddir (or the
# environment's, default ./build/plain) is a built tree.  Installs
# dovecot-imapd when missing (root only).  BENCH_RUNS repeated runs per
# figure (default 3, median).
set -eu

sizes=""
while [ $# -gt 0 ]; do
	case $1 in
	[0-9]*) sizes="$sizes $1" ;;
	*) top_builddir=$1 ;;
	esac
	shift
done
sizes=${sizes:-10000 50000}
top_builddir=${top_builddir:-./build/plain}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$top_builddir/core/posternd" ] ||
	{ echo "sort.sh: build $top_builddir first" >&2; exit 1; }
. "$here/peers.sh"
peers_need dovecot-imapd
top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir
for n in $sizes; do
	python3 "$here/sort_bench.py" "$n"
done
