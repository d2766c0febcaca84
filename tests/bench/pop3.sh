#!/bin/sh
#
# pop3.sh - POP3 retrieval, postern beside Dovecot's POP3 on copies of the
# same Maildir: N messages (default 10000) RETRed one by one and
# pipelined; prints messages/s, MB/s and postern's ratio to Dovecot
# (pop3_bench.py does the work).  Never a pass or a failure on a time.
#
#	tests/bench/pop3.sh [N [ROUNDS [top_builddir]]]
#
# top_builddir (or the environment's, default ./build/plain) is a built
# tree: this script builds nothing.  It installs dovecot-pop3d when
# Dovecot is missing (root only).
set -eu

N=${1:-10000}
ROUNDS=${2:-3}
top_builddir=${3:-${top_builddir:-./build/plain}}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}

die() {
	echo "pop3.sh: $*" >&2
	exit 1
}

case $N$ROUNDS in
''|*[!0-9]*) die "N and ROUNDS must be numbers" ;;
esac
[ -f "$top_builddir/modules/pop3/.libs/pop3.so" ] ||
	die "$top_builddir/modules/pop3/.libs/pop3.so missing: build first"

. "$here/peers.sh"
peers_need dovecot-pop3d

top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir top_srcdir
PYTHONPATH=$top_srcdir/tests/integration exec "${PYTHON3:-python3}" \
	"$here/pop3_bench.py" "$N" "$ROUNDS"
