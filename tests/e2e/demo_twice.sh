#!/bin/bash
# The README's first command after install, scripts/demo.sh, run twice on one
# setup in a temp dir with the programs of this build: both runs succeed; the
# first makes the setup and issues index 1, the second reuses the setup
# untouched and issues index 2 (indexes are never reused); each shows the
# record validated (AD) with the certificate's hash and, after revocation, a
# validated NXDOMAIN; no process of the demo outlives it.
set -eu
. "$(dirname "$0")/e2e_lib.sh"

: "${REGSIGN_BIN_DIR:?REGSIGN_BIN_DIR must point at build/bin}"
src=${REGSIGN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
e2e_init regsign-demo-test
T=$E2E_T

# run N: one demo run into $T/demoN.out; it must exit 0.
run() {
	env -u REGSIGN_TEST_KEEP REGSIGN_DEMO_BIN_DIR="$REGSIGN_BIN_DIR" REGSIGN_DEMO_DIR="$T/dev" \
		TMPDIR="$T" bash "$src/scripts/demo.sh" >"$T/demo$1.out" 2>&1 ||
		{ cat "$T/demo$1.out" >&2; e2e_fail "demo run $1 failed"; }
}

# check N INDEX: what run N must have shown.
check() {
	local o=$T/demo$1.out name="$2.8912230200031010008f.iotregistry.test."
	grep -qx "    index: $2" "$o" || { cat "$o" >&2; e2e_fail "run $1 did not issue index $2"; }
	grep -q "^    $name 300 IN.CERT PKIX 0 0 " "$o" ||
		{ cat "$o" >&2; e2e_fail "run $1 did not show $name served by regsignd"; }
	grep -q '=> validated (ad), and the payload is the certificate.s SHA-256' "$o" ||
		{ cat "$o" >&2; e2e_fail "run $1 did not show a validated record"; }
	grep -q 'status: NXDOMAIN' "$o" && grep -q '=> NXDOMAIN, validated (ad)' "$o" ||
		{ cat "$o" >&2; e2e_fail "run $1 did not show a validated NXDOMAIN"; }
	grep -q 'all stopped' "$o" || { cat "$o" >&2; e2e_fail "run $1 did not stop what it started"; }
	# The demo's own temp dir (under TMPDIR=$T) is gone: its EXIT trap ran.
	if compgen -G "$T/regsign-demo-*" >/dev/null; then
		e2e_fail "run $1 left its temp dir behind"
	fi
}

e2e_note "first run: fresh setup, index 1"
run 1
check 1 1
grep -q 'development setup complete in' "$T/demo1.out" || e2e_fail "run 1 did not make the setup"
sum1=$(cd "$T/dev" && sha256sum regsignd.yaml policy.yaml out/ds.txt)

e2e_note "second run: setup reused untouched, index 2"
run 2
check 2 2
grep -q 'is complete, nothing changed' "$T/demo2.out" || e2e_fail "run 2 did not reuse the setup"
[ "$(cd "$T/dev" && sha256sum regsignd.yaml policy.yaml out/ds.txt)" = "$sum1" ] ||
	e2e_fail "the demo changed the setup's configuration or trust anchor"
grep -q 'index 1 was used by an earlier run' "$T/demo2.out" || e2e_fail "run 2 did not explain the new index"
echo "PASS"
