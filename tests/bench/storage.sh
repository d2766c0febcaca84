#!/bin/sh
#
# storage.sh - storage_maildir beside Dovecot on the same Maildir: append,
# index build, open cold and warm, list flags, set \Flagged on all, index
# size.  Prints figures and a table of ratios; never a pass or a failure
# on a time (it fails only when something does not work).
#
#	tests/bench/storage.sh [N [top_builddir]]
#
# N messages (default 100000); top_builddir (or the environment's
# top_builddir, default ./build/plain) is a built tree: this script builds
# nothing.  It installs dovecot-core when doveadm is missing (root only).
#
# Environment:
#   BENCH_APPEND   messages appended through the module one by one: "all",
#                  or a count; default all up to 20000, else 2000.  Each
#                  append rewrites the whole index, so appending 100,000
#                  takes about 16 minutes here; the rest are written into
#                  cur/ directly and indexed by a timed first open.
#   BENCH_SAMPLE   messages Dovecot saves one process each (default 500)
#   BENCH_TIMEOUT  seconds allowed to each command (default 900)
#
# Dovecot runs as doveadm only (no daemon): without -u, doveadm uses the
# calling environment's HOME and USER and needs no auth service.  It will
# not touch mail as root, so as root its copy belongs to "nobody".

set -eu

N=${1:-100000}
top_builddir=${2:-${top_builddir:-./build/plain}}
SAMPLE=${BENCH_SAMPLE:-500}
T=${BENCH_TIMEOUT:-900}
BENCH=$top_builddir/tests/bench/bench_storage

die() {
	echo "storage.sh: $*" >&2
	exit 1
}

case $N in
''|*[!0-9]*) die "N must be a number" ;;
esac
[ -x "$BENCH" ] || die "$BENCH missing: build the tree first (make)"
case ${BENCH_APPEND:-} in
all) K=$N ;;
'') if [ "$N" -le 20000 ]; then K=$N; else K=2000; fi ;;
*[!0-9]*) die "BENCH_APPEND: all or a number" ;;
*) K=$BENCH_APPEND ;;
esac
[ "$K" -le "$N" ] || K=$N
[ "$SAMPLE" -le "$N" ] || SAMPLE=$N

. "$(dirname "$0")/peers.sh"
peers_need dovecot-core

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-storage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# Dovecot's mail user must reach its copy.
chmod 755 "$tmp"
P=$tmp/postern/Maildir
DV=$tmp/dovecot
mkdir -p "$tmp/postern" "$DV/home" "$DV/run" "$DV/state" "$DV/sample"

peers_mail_user

ms_now() {
	date +%s%N
}

# Milliseconds from $1 (ms_now) to now.
ms_since() {
	echo $(( ($(date +%s%N) - $1) / 1000000 ))
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# As bench_storage does: the kernel's caches as root, else the index
# files' pages only.  Then doveadm runs once on an empty mailbox, so its
# binary, libraries and configuration are cached again, as postern's
# module is (loaded before its cold opens): cold means the mailbox.
drop_caches() {
	sync
	if ! { [ "$(id -u)" -eq 0 ] &&
	    echo 3 2>/dev/null >/proc/sys/vm/drop_caches; }; then
		for f in "$DV"/Maildir/dovecot.index* \
		    "$DV"/Maildir/dovecot-uidlist; do
			[ ! -f "$f" ] ||
			    dd if="$f" iflag=nocache count=0 2>/dev/null
		done
	fi
	dv_floor >/dev/null
}

# Dovecot keeps a directory's mtime untrusted for a while after a change,
# as postern does; let cur/ and new/ settle before timing an open.
settle() {
	sleep 3
}

# ---- postern ------------------------------------------------------------

echo "== postern: $N messages, $K appended one by one"
timeout "$T" "$BENCH" -p append -f "$K" "$P" "$N" | tee "$tmp/postern.out"

# Dovecot gets the Maildir as postern left it, before postern sets a flag:
# the same files and the same dovecot-uidlist (so the same UIDs), without
# postern's own files.
cp -a "$P" "$DV/Maildir"
rm -f "$DV"/Maildir/postern.*
# A sample of the same messages for Dovecot's saves.
ls "$P/cur" | head -n "$SAMPLE" | while read -r f; do
	cp "$P/cur/$f" "$DV/sample/"
done
: >"$DV/sample.mbox"
for f in "$DV"/sample/*; do
	printf 'From bench@example.org Thu Jan  1 00:00:00 2026\n'
	tr -d '\r' <"$f" | sed 's/^\(>*From \)/>\1/'
	echo
done >"$DV/sample.mbox"
mkdir -p "$DV/mbox" "$DV/fresh"
mv "$DV/sample.mbox" "$DV/mbox/inbox"

timeout "$T" "$BENCH" -p read "$P" "$N" | tee -a "$tmp/postern.out"

# ---- Dovecot ------------------------------------------------------------

cat >"$DV/dovecot.conf" <<EOF
# Private and minimal: doveadm only, nothing listens.
base_dir = $DV/run
state_dir = $DV/state
log_path = /dev/stderr
ssl = no
protocols =
mail_location = maildir:$DV/Maildir
mail_uid = $MUSER
mail_gid = $MGROUP
# Defaults that matter for the comparison, spelled out:
mail_fsync = optimized
maildir_very_dirty_syncs = no
maildir_copy_with_hardlinks = yes
EOF
if [ "$(id -u)" -eq 0 ]; then
	chown -R "$MUSER:$MGROUP" "$DV"
fi

dv() {
	HOME=$DV/home USER=bench timeout "$T" doveadm -c "$DV/dovecot.conf" "$@"
}

dv_floor() {
	dv -o "mail_location=maildir:$DV/fresh" mailbox status messages INBOX
}

STATUS_ITEMS='messages recent unseen uidnext uidvalidity highestmodseq vsize'

# $1: label; runs a status and checks the message count.
dv_status() {
	got=$(dv mailbox status "$STATUS_ITEMS" INBOX)
	case $got in
	*"messages=$N "*) ;;
	*) die "dovecot $1: $got" ;;
	esac
}

dv_index_size() {
	(cd "$DV/Maildir" && stat -c %s dovecot.index* dovecot-uidlist \
	    dovecot-keywords 2>/dev/null) | awk '{ s += $1 } END { print s }'
}

echo "== dovecot $(dovecot --version | cut -d' ' -f1): doveadm on a copy"

# What every doveadm command costs before it touches mail: a process,
# the configuration, an empty mailbox.
for i in 1 2 3 4 5; do
	t0=$(ms_now)
	dv_floor >/dev/null
	ms_since "$t0"
done | median >"$tmp/floor"
D_FLOOR=$(cat "$tmp/floor")
echo "dovecot doveadm floor (empty mailbox status): $D_FLOOR ms (median of 5)"

settle
drop_caches
t0=$(ms_now)
dv_status "index build"
D_BUILD=$(ms_since "$t0")
echo "dovecot index build (no dovecot.index, cold): $D_BUILD ms"
echo "dovecot index after build: $(dv_index_size) bytes"

settle
drop_caches
t0=$(ms_now)
dv_status "open cold"
D_COLD=$(ms_since "$t0")
echo "dovecot open cold: $D_COLD ms"

for i in 1 2 3 4 5; do
	t0=$(ms_now)
	dv_status "open warm"
	ms_since "$t0"
done | median >"$tmp/warm"
D_WARM=$(cat "$tmp/warm")
echo "dovecot open warm: $D_WARM ms (median of 5)"

t0=$(ms_now)
dv fetch 'uid flags' mailbox INBOX all >"$tmp/flags"
D_LIST=$(ms_since "$t0")
[ "$(grep -c '^flags:' "$tmp/flags")" -eq "$N" ] || die "dovecot fetch"
echo "dovecot list flags: $D_LIST ms (doveadm fetch 'uid flags', output" \
    "to a file)"

t0=$(ms_now)
dv flags add '\Flagged' mailbox INBOX all
D_FLAG=$(ms_since "$t0")
n=$(dv search mailbox INBOX flagged | wc -l)
[ "$n" -eq "$N" ] || die "dovecot flags add: $n flagged, not $N"
echo "dovecot set \\Flagged on all: $D_FLAG ms ($n flagged)"
D_SIZE=$(dv_index_size)
echo "dovecot index after store: $D_SIZE bytes" \
    "($(cd "$DV/Maildir" && ls dovecot.index* dovecot-uidlist | tr '\n' ' '))"

# Appends, one doveadm process per message: one transaction each, as
# durable as postern's append (file, directory and uid list synced).
settle
t0=$(ms_now)
for f in "$DV"/sample/*; do
	dv save -m INBOX <"$f"
done
D_SAVE=$(ms_since "$t0")
echo "dovecot save $SAMPLE: $D_SAVE ms (doveadm save, one process per" \
    "message, into a mailbox of $N)"

# The same messages in one transaction: each file synced, the directory
# and the uid list once at the commit.
t0=$(ms_now)
dv import "mbox:$DV/mbox:INBOX=$DV/mbox/inbox" "" mailbox INBOX all
D_IMPORT=$(ms_since "$t0")
echo "dovecot import $SAMPLE: $D_IMPORT ms (doveadm import from an mbox," \
    "one transaction)"
n=$(dv mailbox status messages INBOX)
[ "$n" = "INBOX messages=$((N + 2 * SAMPLE))" ] || die "dovecot saves: $n"

# ---- the table ----------------------------------------------------------

# A postern figure: the first number after "postern <label>:".
pf() {
	sed -n "s/^postern $*: \([0-9.]*\) .*/\1/p" "$tmp/postern.out" |
	    head -n 1
}

P_LAST=$(sed -n 's/^postern append last [0-9]*: .*(\([0-9.]*\) ms\/msg.*/\1/p' \
    "$tmp/postern.out")
P_SIZE=$(sed -n 's/^postern index after store: \([0-9]*\) .*/\1/p' \
    "$tmp/postern.out")

echo
echo "== postern vs Dovecot, $N messages (ms, or bytes; ratio" \
    "Dovecot/postern, >1: postern faster or smaller)"
# Rows: label|postern|dovecot|kind|note; kind t: one doveadm process
# per figure, so "w/o floor" takes the floor off Dovecot's figure.
{
	echo "append, ms per message (durable each)|$P_LAST|$(awk \
	    "BEGIN { printf \"%.2f\", $D_SAVE / $SAMPLE }")|t|doveadm save"
	echo "append, ms per message (Dovecot batched)|$P_LAST|$(awk \
	    "BEGIN { printf \"%.2f\", $D_IMPORT / $SAMPLE }")|-|doveadm import"
	echo "index build, cold|$(pf 'index build (no postern.index,' \
	    'cold)')|$D_BUILD|t|"
	echo "open cold|$(pf 'open cold')|$D_COLD|t|"
	echo "open warm|$(pf 'open warm')|$D_WARM|t|"
	echo "list flags|$(pf 'list flags')|$D_LIST|t|"
	echo "set \\Flagged on all|$(pf 'set \\Flagged on all')|$D_FLAG|t|"
	echo "index size, bytes|$P_SIZE|$D_SIZE|-|"
} | awk -F'|' -v floor="$D_FLOOR" '
	BEGIN {
		printf "%-40s %10s %10s %7s %10s\n", "operation", "postern",
		    "dovecot", "ratio", "w/o floor"
	}
	{
		r = $2 > 0 ? sprintf("%.2f", $3 / $2) : "-"
		r2 = $4 == "t" && $2 > 0 ? sprintf("%.2f", ($3 - floor) / $2) \
		    : "-"
		printf "%-40s %10s %10s %7s %10s  %s\n", $1, $2, $3, r, r2, $5
	}
	END {
		printf "(floor: %s ms, what any doveadm command costs: " \
		    "process, configuration, an empty mailbox)\n", floor
	}'
