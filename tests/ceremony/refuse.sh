#!/bin/bash
# regsign-ceremony's refusals: an existing label or output file, a ceremony
# file with an unknown key or a repeated label, a token URI naming an object,
# a wrong PIN. Each refusal must leave the token and the output directory
# exactly as they were. Also --check, which must make nothing.
. "$(dirname "$0")/lib.sh"

label=regsign-refuse

# run_ceremony TOKDIR OUTDIR FILE [ARGS...]: runs the tool, output in $tmp/err.
run_ceremony() {
	local d=$1 o=$2 f=$3
	shift 3
	SOFTHSM2_CONF=$d/softhsm2.conf "$ceremony" --module "$module" \
		--token-uri "pkcs11:token=$label" --pin-file "$d/pin" --out "$o" "$@" "$f" \
		>"$tmp/out" 2>"$tmp/err"
}

# expect_refused WHAT: the last run failed with exit 1 and said something.
expect_refused() {
	local rc=$1 what=$2
	[ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1 (stderr: $(cat "$tmp/err"))"
	[ -s "$tmp/err" ] || fail "$what: refused without a message"
}

# --- 1. an existing label: nothing new in the token -------------------------
t1=$tmp/t1
new_token "$t1" "$label"
p11 "$t1" "$label" --keypairgen --key-type EC:prime256v1 --label regsign-zsk --id 99 \
	>/dev/null || fail "cannot make the pre-existing key"
objects "$t1" "$label" >"$tmp/before"
[ "$(wc -l <"$tmp/before")" -eq 2 ] || fail "expected the 2 objects of the pre-existing key"
rc=0
run_ceremony "$t1" "$tmp/out1" "$example" || rc=$?
expect_refused $rc "existing label"
grep -q 'refused' "$tmp/err" || fail "existing label: no refusal: $(cat "$tmp/err")"
grep -q '"regsign-zsk" exists in the token' "$tmp/err" ||
	fail "existing label: message does not name regsign-zsk: $(cat "$tmp/err")"
objects "$t1" "$label" >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" ||
	fail "existing label: the token changed: $(diff "$tmp/before" "$tmp/after")"
[ ! -e "$tmp/out1" ] || fail "existing label: the output directory was made"
ok "existing label refused; token untouched, no output directory"

# --- 2. an existing output file: refused, the file and token untouched ------
t2=$tmp/t2
new_token "$t2" "$label"
mkdir "$tmp/out2"
echo "not a DS" >"$tmp/out2/ds.txt"
rc=0
run_ceremony "$t2" "$tmp/out2" "$example" || rc=$?
expect_refused $rc "existing output"
grep -q "output file $tmp/out2/ds.txt exists" "$tmp/err" ||
	fail "existing output: message does not name ds.txt: $(cat "$tmp/err")"
[ "$(cat "$tmp/out2/ds.txt")" = "not a DS" ] || fail "existing output: ds.txt changed"
[ "$(ls -A "$tmp/out2")" = "ds.txt" ] || fail "existing output: files were made: $(ls -A "$tmp/out2")"
[ -z "$(objects "$t2" "$label")" ] || fail "existing output: objects were made in the token"
ok "existing output file refused; file and token untouched"

# --- 3. every conflict is listed at once --------------------------------------
mkdir "$tmp/out3"
touch "$tmp/out3/root-ca.pem" "$tmp/out3/transcript.txt"
rc=0
run_ceremony "$t1" "$tmp/out3" "$example" || rc=$?
expect_refused $rc "several conflicts"
for what in root-ca.pem transcript.txt '"regsign-zsk"'; do
	grep -qF "$what" "$tmp/err" || fail "several conflicts: $what not named: $(cat "$tmp/err")"
done
ok "all conflicts named in one refusal"

# --- 4. a ceremony file with an unknown key: file:line:key -------------------
sed 's/^  validity: 1825d$/  validity: 1825d\n  colour: blue/' "$example" >"$tmp/bad.yaml"
line=$(grep -n '^  colour: blue$' "$tmp/bad.yaml" | cut -d: -f1)
[ -n "$line" ] || fail "could not make the bad ceremony file"
rc=0
run_ceremony "$t2" "$tmp/out4" "$tmp/bad.yaml" || rc=$?
expect_refused $rc "unknown key"
grep -q "$tmp/bad.yaml:$line:[0-9]*: .*'colour'" "$tmp/err" ||
	fail "unknown key: message does not name file:line:key: $(cat "$tmp/err")"
[ -z "$(objects "$t2" "$label")" ] || fail "unknown key: objects were made"
[ ! -e "$tmp/out4" ] || fail "unknown key: the output directory was made"
ok "unknown key refused: $(cat "$tmp/err")"

# --- 5. one label used twice in the file -------------------------------------
sed 's/^  zsk: regsign-zsk$/  zsk: regsign-ksk/' "$example" >"$tmp/dup.yaml"
rc=0
run_ceremony "$t2" "$tmp/out5" "$tmp/dup.yaml" || rc=$?
expect_refused $rc "repeated label"
grep -q "dup.yaml:[0-9]*:[0-9]*: label \"regsign-ksk\"" "$tmp/err" ||
	fail "repeated label: $(cat "$tmp/err")"
[ -z "$(objects "$t2" "$label")" ] || fail "repeated label: objects were made"
ok "repeated label refused"

# --- 6. a token URI that names an object, a wrong PIN ------------------------
rc=0
SOFTHSM2_CONF=$t2/softhsm2.conf "$ceremony" --module "$module" \
	--token-uri "pkcs11:token=$label;object=regsign-ksk" --pin-file "$t2/pin" \
	--out "$tmp/out6" "$example" 2>"$tmp/err" >/dev/null || rc=$?
expect_refused $rc "object in token URI"
grep -q "token URI .* refused" "$tmp/err" || fail "object in token URI: $(cat "$tmp/err")"
rc=0
SOFTHSM2_CONF=$t2/softhsm2.conf "$ceremony" --module "$module" \
	--token-uri "pkcs11:token=$label?pin-value=1234" --pin-file "$t2/pin" \
	--out "$tmp/out6" "$example" 2>"$tmp/err" >/dev/null || rc=$?
expect_refused $rc "PIN in token URI"
grep -q "pin-value" "$tmp/err" || fail "PIN in token URI: $(cat "$tmp/err")"
(umask 077 && echo 0000 >"$tmp/wrong-pin")
rc=0
SOFTHSM2_CONF=$t2/softhsm2.conf "$ceremony" --module "$module" \
	--token-uri "pkcs11:token=$label" --pin-file "$tmp/wrong-pin" \
	--out "$tmp/out6" "$example" 2>"$tmp/err" >/dev/null || rc=$?
expect_refused $rc "wrong PIN"
grep -qi "pin" "$tmp/err" || fail "wrong PIN: $(cat "$tmp/err")"
[ ! -e "$tmp/out6" ] || fail "wrong PIN: the output directory was made"
[ -z "$(objects "$t2" "$label")" ] || fail "wrong PIN: objects were made"
ok "token URI with an object or a PIN, and a wrong PIN, refused"

# --- 7. --check makes nothing; usage errors exit 2 ---------------------------
rc=0
run_ceremony "$t2" "$tmp/out7" "$example" --check || rc=$?
[ "$rc" -eq 0 ] || fail "--check on a clean token: exit $rc: $(cat "$tmp/err")"
grep -q "nothing was made" "$tmp/out" || fail "--check: $(cat "$tmp/out")"
[ ! -e "$tmp/out7" ] || fail "--check made the output directory"
[ -z "$(objects "$t2" "$label")" ] || fail "--check made objects"
rc=0
run_ceremony "$t1" "$tmp/out7" "$example" --check || rc=$?
expect_refused $rc "--check with an existing label"
rc=0
"$ceremony" --module "$module" "$example" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "missing options: exit $rc, expected 2"
ok "--check makes nothing; usage errors exit 2"

# --- 8. after the refusals the same token still takes the whole ceremony ----
rc=0
run_ceremony "$t2" "$tmp/out8" "$example" || rc=$?
[ "$rc" -eq 0 ] || fail "ceremony after refusals: $(cat "$tmp/err")"
[ "$(objects "$t2" "$label" | wc -l)" -eq 14 ] || fail "expected 7 key pairs after the ceremony"
# ... and running it again is refused, naming every label and every file.
rc=0
run_ceremony "$t2" "$tmp/out8" "$example" || rc=$?
expect_refused $rc "second ceremony"
[ "$(grep -o 'exists in the token' "$tmp/err" | wc -l)" -eq 7 ] ||
	fail "second ceremony: not all 7 labels named: $(cat "$tmp/err")"
[ "$(grep -o 'output file [^;]* exists' "$tmp/err" | wc -l)" -eq 8 ] ||
	fail "second ceremony: not all 8 outputs named: $(cat "$tmp/err")"
[ "$(objects "$t2" "$label" | wc -l)" -eq 14 ] || fail "second ceremony changed the token"
ok "a second run on a finished ceremony is refused, naming all 7 labels and 8 files"

echo "PASS"
