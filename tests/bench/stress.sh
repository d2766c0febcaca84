#!/bin/sh
#
# stress.sh - Dovecot's imaptest in stress mode (CLIENTS clients, 50
# users, SECS seconds) against postern and against Dovecot in the same
# run: commands per second and the errors imaptest saw.  Prints figures;
# never a pass or a failure on a time.
#
#	tests/bench/stress.sh [CLIENTS [SECS [top_builddir]]]
#
# Builds imaptest with ../shared/tools/imaptest/build.sh (root installs
# what it needs) and installs dovecot-imapd when missing.
set -eu

CLIENTS=${1:-50}
SECS=${2:-30}
top_builddir=${3:-${top_builddir:-./build/plain}}
here=$(cd "$(dirname "$0")" && pwd)

[ -x "$top_builddir/core/posternd" ] ||
	{ echo "stress.sh: build $top_builddir first" >&2; exit 1; }
build=$here/../../../shared/tools/imaptest/build.sh
[ -x "$build" ] || { echo "stress.sh: no $build" >&2; exit 1; }
imaptest=$("$build") || exit 1
. "$here/peers.sh"
peers_need dovecot-imapd
top_builddir=$(cd "$top_builddir" && pwd)
export top_builddir
exec python3 "$here/stress_bench.py" "$imaptest" "$CLIENTS" "$SECS"
