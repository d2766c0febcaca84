#!/bin/sh
#
# hostile.sh - what attacks cost a server (issue 10): for each attack class,
# the peak memory growth of the processes serving it and the worst round
# trip of a well-behaved neighbour during the attack, for posternd and,
# where they apply, Postfix's smtpd and Dovecot's imap/pop3 from Debian,
# in the same run.  Prints figures, never a pass or a failure.
#
#	tests/bench/hostile.sh [SECONDS [top_builddir]]
#
# SECONDS (default 5) is how long each attack lasts.  top_builddir (or the
# environment's, default ./build/plain) is a built tree: this script
# builds nothing.  As root it installs the peers when missing (see
# peers.sh); without them it measures posternd alone.
#
# The attacks are functions in hostile_bench.py (attack_*), one per
# class; add a class there and to ATTACKS.
set -eu

SECONDS_EACH=${1:-5}
top_builddir=${2:-${top_builddir:-./build/plain}}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}

die() {
	echo "hostile.sh: $*" >&2
	exit 1
}

case $SECONDS_EACH in
''|*[!0-9]*) die "SECONDS must be a number" ;;
esac
[ -x "$top_builddir/core/posternd" ] ||
	die "$top_builddir/core/posternd missing: build first"
top_builddir=$(cd "$top_builddir" && pwd)

. "$here/peers.sh"

W=$(mktemp -d /tmp/postern-hostile.XXXXXX)
chmod 755 "$W"
PEERS=""
cleanup() {
	postfix_stop "$W/pf"
	dovecot_stop "$W/dv"
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

have_peers() {
	[ "$(id -u)" -eq 0 ] && return 0
	for p in postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || return 1
	done
}

if have_peers; then
	peers_need postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd
	peers_mail_user
	mkdir -p "$W/dv/home/bench" "$W/dv/home/neighbour"
	# argon2id at Dovecot's own cost (64 MiB), as posternd's users have:
	# a login flood costs what it costs in production.
	hash() { doveadm pw -s ARGON2ID -p "$1"; }
	cat >"$W/users" <<EOF
bench@example.org:$(hash bench-pw):$MUID:$MGID::$W/dv/home/bench
neighbour@example.org:$(hash neighbour-pw):$MUID:$MGID::$W/dv/home/neighbour
EOF
	chown -R "$MUSER" "$W/dv/home"
	DV_IMAP=$(peers_free_port)
	DV_POP3=$(peers_free_port)
	PF_SMTP=$(peers_free_port)
	dovecot_start "$W/dv" "$W/users" imap="$DV_IMAP" pop3="$DV_POP3" \
		lmtp=lmtp
	postfix_start "$W/pf" "$PF_SMTP" "$W/dv/run/lmtp" "$W/users" \
		example.org
	PEERS="--dovecot $DV_IMAP,$DV_POP3,$W/dv/run/master.pid,$W/dv/home"
	PEERS="$PEERS --postfix $PF_SMTP,$W/pf/queue/pid/master.pid"
	PEERS="$PEERS --mail-user $MUSER"
else
	echo "hostile.sh: Postfix or Dovecot missing (and not root):" \
		"posternd alone" >&2
fi

export top_builddir top_srcdir
# shellcheck disable=SC2086
PYTHONPATH=$top_srcdir/tests/integration "${PYTHON3:-python3}" \
	"$here/hostile_bench.py" --seconds "$SECONDS_EACH" $PEERS
