# Shared helpers of the DNS listener's integration tests (sourced).
# Every server a test starts is recorded by PID and stopped on exit; all files
# live in one temporary directory; only loopback addresses are used.

# shellcheck source=../lib/net.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/net.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

dns_setup() {
	: "${REGSIGN_BIN_DIR:?REGSIGN_BIN_DIR must point at build/bin}"
	TESTSRV="$REGSIGN_BIN_DIR/tests/dns_testsrv"
	[ -x "$TESTSRV" ] || fail "test server $TESTSRV not built"
	T=$(mktemp -d "${TMPDIR:-/tmp}/regsign-dns-XXXXXX")
	PIDS=""
	trap dns_cleanup EXIT
}

dns_cleanup() {
	local rc=$?
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null || true
	done
	if [ $rc -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "=== $f (last 40 lines)" >&2
			tail -n 40 "$f" >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}

require() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			fail "required tool '$t' is not installed (Debian: knot, knot-dnsutils, dnsutils, nsd)"
	done
}

# free_port (a port free for TCP and UDP on 127.0.0.1) comes from tests/lib/net.sh.

# wait_until TIMEOUT_S DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_until() {
	local limit=$1 what=$2 end
	shift 2
	end=$(( $(date +%s) + limit ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || fail "timed out after ${limit}s waiting for $what"
		sleep 0.1
	done
}

# start_testsrv NAME ARGS...: start the test server, sets SRV_PID and SRV_PORT.
start_testsrv() {
	local name=$1
	shift
	"$TESTSRV" --port-file "$T/$name.port" "$@" 2>"$T/$name.log" &
	SRV_PID=$!
	PIDS="$PIDS $SRV_PID"
	wait_until 60 "$name to listen" test -s "$T/$name.port"
	SRV_PORT=$(cat "$T/$name.port")
}

# stop_pid PID: SIGTERM one process we started and require a clean exit.
stop_pid() {
	local p=$1 rc=0
	kill -TERM "$p" 2>/dev/null || fail "process $p is not running"
	wait "$p" || rc=$?
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ')
	[ $rc -eq 0 ] || fail "process $p exited with status $rc"
}

# serial_at PORT: the SOA serial served at 127.0.0.1@PORT (empty if none).
serial_at() {
	kdig @127.0.0.1 -p "$1" +short +time=2 +retry=0 iotregistry.test. SOA 2>/dev/null | awk '{print $3}'
}

serial_is() { [ "$(serial_at "$1")" = "$2" ]; }

# zone_lines PORT [KDIG ARGS]: the AXFR at PORT as sorted RR lines (no TSIG).
zone_lines() {
	local port=$1
	shift
	kdig @127.0.0.1 -p "$port" +nocomments +nostats +noheader +time=10 "$@" \
		iotregistry.test. AXFR | grep -v -e '^;' -e '[[:space:]]TSIG[[:space:]]' -e '^$' |
		awk '{ $2 = ""; print }' | sort -u
}
