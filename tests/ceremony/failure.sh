#!/bin/bash
# A ceremony that fails half-way (the token stops giving random numbers after
# the root key is made, through the fault-injecting PKCS#11 module) stops at
# once, says why, and leaves an honest record: the transcript ends
# "result: FAILED" and lists the key that was made, which is in the token;
# no certificate is written; a second run is refused rather than replacing.
. "$(dirname "$0")/lib.sh"

[ -n "${REGSIGN_BUILD_DIR:-}" ] || fail "REGSIGN_BUILD_DIR is not set (run through ctest)"
fault=$REGSIGN_BUILD_DIR/lib/libregsign-p11fault.so
[ -r "$fault" ] || fail "$fault is not built (target regsign-p11fault)"

label=regsign-fail
tok=$tmp/tok
out=$tmp/out
new_token "$tok" "$label"
echo "C_GenerateRandom CKR_FUNCTION_FAILED inf" >"$tmp/ctl"

rc=0
P11FAULT_MODULE=$module P11FAULT_CONTROL=$tmp/ctl "$ceremony" --module "$fault" \
	--token-uri "pkcs11:token=$label" --pin-file "$tok/pin" --out "$out" "$example" \
	>"$tmp/run.out" 2>"$tmp/run.err" || rc=$?
[ "$rc" -eq 1 ] || fail "failing token: exit $rc, expected 1: $(cat "$tmp/run.err")"
grep -q "random serial" "$tmp/run.err" || fail "failing token: $(cat "$tmp/run.err")"
ok "ceremony stopped: $(cat "$tmp/run.err")"

t=$out/transcript.txt
[ "$(ls -A "$out")" = "transcript.txt" ] ||
	fail "only the transcript may exist after the failure: $(ls -A "$out")"
grep -q "^result: FAILED: .*random serial" "$t" || fail "transcript does not record the failure"
grep -qx "step 1: key root-ca" "$t" || fail "transcript lacks the key that was made"
grep -qx "step 2: certificate root-ca" "$t" || fail "transcript lacks the step that failed"
! grep -q "^step 3:" "$t" || fail "the ceremony went on after the failure"
id=$(awk '/^  id: / {print $2}' "$t")
[ -n "$id" ] || fail "transcript lacks the CKA_ID of the root key"
objects "$tok" "$label" >"$tmp/objects"
[ "$(wc -l <"$tmp/objects")" -eq 2 ] || fail "expected the root key pair only: $(cat "$tmp/objects")"
grep -q "regsign-root-ca $id" "$tmp/objects" || fail "token key differs from the transcript"
ok "transcript says FAILED and lists the root key, which is in the token with that CKA_ID"

# Without the fault the same ceremony is refused: the root label and the
# transcript exist, and nothing is replaced.
rc=0
"$ceremony" --module "$module" --token-uri "pkcs11:token=$label" --pin-file "$tok/pin" \
	--out "$out" "$example" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || fail "rerun after failure: exit $rc"
grep -q '"regsign-root-ca" exists' "$tmp/err" && grep -q "transcript.txt exists" "$tmp/err" ||
	fail "rerun after failure: $(cat "$tmp/err")"
objects "$tok" "$label" | cmp -s - "$tmp/objects" || fail "rerun after failure changed the token"
ok "rerun after the failure refused; token unchanged"

echo "PASS"
