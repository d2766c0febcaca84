#!/bin/sh
# The manual pages render with man(1) without a single warning,
# postern.conf(5), written from the schema, documents the keys of the core
# and of every bundled module, and postern-sdk(3) is the module guide.
set -u
: "${top_builddir:?}" "${top_srcdir:?}"

passed=0
failed=0
check() {
	if [ "$1" -eq 0 ]; then
		passed=$((passed + 1)); echo "PASS: $2"
	else
		failed=$((failed + 1)); echo "FAIL: $2"
	fi
}

if ! command -v man >/dev/null 2>&1; then
	echo "SKIP: man is not installed (Debian man-db)"
	exit 77
fi
for page in "$top_srcdir/man/posternd.8" "$top_srcdir/man/posternctl.8" \
    "$top_srcdir/man/postern-filter-test.1" \
    "$top_builddir/man/postern.conf.5" "$top_builddir/man/postern-sdk.3"; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	[ -z "$out" ] && [ -s "$page" ]
	check $? "$(basename "$page") renders without warnings${out:+: $out}"
done
conf=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$top_builddir/man/postern.conf.5" 2>/dev/null)
for key in output_high_water auth_queue_per_ip argon2_memlimit location \
    max_recipients max_userip_connections max_failed_logins via \
    retry_max; do
	echo "$conf" | grep -Eq "^ +$key( |$)"
	check $? "postern.conf(5) documents $key"
done
# postern-sdk(3) is the guide: its sections and its code are there.
sdk=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$top_builddir/man/postern-sdk.3" 2>/dev/null)
for want in "^THE DESCRIPTOR" "^WRITING AN SMTP FILTER" \
    "#include <postern/postern.h>" "POSTERN_MODULE\(\.name = \"mymod\""; do
	echo "$sdk" | grep -Eq "$want"
	check $? "postern-sdk(3) has $want"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
