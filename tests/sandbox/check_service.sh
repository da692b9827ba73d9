#!/bin/sh
# Checks signer/regsignd.service with systemd's own tools: `systemd-analyze
# verify` must be clean and `systemd-analyze security --offline=yes` must keep
# the exposure score at or below the bound (2.2 when written; 3.0 leaves room
# for systemd versions that weigh options differently, and catches a removed
# protection). A missing systemd-analyze is a failure (Debian package systemd).
#
# With DROPIN, the unit is checked as systemd would load it with that drop-in
# in regsignd.service.d/: its [Service] lines come after the unit's own, so
# that they override or extend them. EXPECT, when given, must appear in the
# security report (a setting of the drop-in that systemd took).
set -eu
unit=${1:?usage: check_service.sh UNIT [MAX_SCORE [DROPIN [EXPECT]]]}
max=${2:-3.0}
dropin=${3:-}
expect=${4:-}
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "check_service: FAIL: systemd-analyze not found (install systemd)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants ExecStart's binary to exist: point it at one that does.
sed 's#^ExecStart=/usr/sbin/regsignd#ExecStart=/bin/true#' "$unit" >"$tmp/regsignd.service"
if [ -n "$dropin" ]; then
	printf '\n' >>"$tmp/regsignd.service"
	cat "$dropin" >>"$tmp/regsignd.service"
fi
if ! out=$(systemd-analyze verify "$tmp/regsignd.service" 2>&1) || [ -n "$out" ]; then
	echo "check_service: FAIL: systemd-analyze verify:" >&2
	echo "$out" >&2
	exit 1
fi
report=$(systemd-analyze security --offline=yes "$tmp/regsignd.service" 2>&1) || true
score=$(printf '%s\n' "$report" |
	sed -n 's/.*Overall exposure level for regsignd.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
	echo "check_service: FAIL: no score from systemd-analyze security --offline=yes" >&2
	exit 1
fi
if [ -n "$expect" ] && ! printf '%s\n' "$report" | grep -qF -- "$expect"; then
	echo "check_service: FAIL: the security report does not show $expect" >&2
	printf '%s\n' "$report" >&2
	exit 1
fi
echo "check_service: verify clean, exposure $score (bound $max)${dropin:+ with $(basename "$dropin")}"
if ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
	echo "check_service: FAIL: exposure $score above $max" >&2
	exit 1
fi
