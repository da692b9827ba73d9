#!/bin/bash
# hsm-setup/dev-setup.sh: a fresh run makes a complete development setup; a
# second run says "complete, nothing changed" and changes no file (content,
# mode or mtime); partial or foreign setups are refused with a message naming
# what is missing, and left as they were.
. "$(dirname "$0")/lib.sh"

dev_setup=$src_dir/hsm-setup/dev-setup.sh
[ -x "$dev_setup" ] || fail "$dev_setup is missing or not executable"
unset SOFTHSM2_CONF

# snapshot DIR: every file and directory with its mode, size, mtime and hash.
snapshot() {
	(cd "$1" && find . -printf '%p %y %m %s %T@\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

dir=$tmp/dev
"$dev_setup" "$dir" >"$tmp/run1.out" 2>"$tmp/run1.err" ||
	fail "fresh dev-setup failed: $(cat "$tmp/run1.out" "$tmp/run1.err")"
grep -q "development setup complete" "$tmp/run1.out" || fail "fresh run: $(cat "$tmp/run1.out")"

for f in softhsm2.conf pin so-pin ceremony.yaml regsignd.yaml policy.yaml \
	out/root-ca.pem out/issuing-ca.pem out/dnskey.txt out/ds.txt \
	out/dnskey-asp.test.txt out/ds-asp.test.txt out/audit.pub out/transcript.txt; do
	[ -s "$dir/$f" ] || fail "fresh run: $f missing"
done
[ -d "$dir/state" ] || fail "fresh run: state/ missing"
for f in pin so-pin; do
	[ "$(stat -c %a "$dir/$f")" = 600 ] || fail "$f has mode $(stat -c %a "$dir/$f"), expected 600"
	grep -qxE '[0-9a-f]{32}' "$dir/$f" || fail "$f is not a random 128-bit hex PIN"
done
[ "$(cat "$dir/pin")" != "$(cat "$dir/so-pin")" ] || fail "user and SO PIN are equal"
grep -qx "directories.tokendir = $dir/tokens" "$dir/softhsm2.conf" || fail "softhsm2.conf tokendir"
ok "fresh run: token, PIN files (0600, random), outputs, daemon files"

# The token holds the 7 keys of the example ceremony.
[ "$(p11 "$dir" regsign-dev --list-objects --type privkey 2>/dev/null |
	grep -c '^Private Key Object')" -eq 7 ] || fail "the token does not hold 7 private keys"
openssl verify -x509_strict -CAfile "$dir/out/root-ca.pem" "$dir/out/issuing-ca.pem" \
	>/dev/null || fail "the setup's issuing CA fails openssl verify -x509_strict"
grep -qx "result: complete" "$dir/out/transcript.txt" || fail "the transcript is not complete"
cmp -s "$dir/ceremony.yaml" "$example" || fail "ceremony.yaml is not the example ceremony"
ok "token holds the ceremony's 7 keys; chain verifies"

# regsignd.yaml: the agreed shape, every path absolute under DIR.
python3 - "$dir" "$dir/regsignd.yaml" <<'EOF' || fail "regsignd.yaml"
import re, sys
d, text = sys.argv[1], open(sys.argv[2]).read()
for key in ("version: 1", "hsm:", "keys:", "extra-zones:", "ca:", "socket:", "policy:",
            "state:", "dns:", "log:"):
    if not re.search(r"^\s*-?\s*%s" % re.escape(key), text, re.M):
        sys.exit("regsignd.yaml lacks " + key)
for key in ("pin-file", "SOFTHSM2_CONF", "root-certificate", "issuing-certificate",
            "path", "policy", "database", "audit-log", "zone-file"):
    m = re.search(r"^\s*%s:\s*(\S+)" % key, text, re.M)
    if not m or not m.group(1).startswith(d + "/"):
        sys.exit("regsignd.yaml: %s is not an absolute path under %s" % (key, d))
for role in ("issuing-ca", "ksk", "zsk", "audit"):
    if not re.search(r'^\s*%s: "pkcs11:token=regsign-dev;object=regsign-%s"' % (role, role), text, re.M):
        sys.exit("regsignd.yaml: key URI of " + role)
if "regsign-root-ca" in text:
    sys.exit("regsignd.yaml names the root key, which is never online")
if re.search(r"pin-value|pin-source", text):
    sys.exit("regsignd.yaml carries a PIN in a URI")
EOF
uid=$(id -u)
gid=$(id -g)
grep -Eq "^[[:space:]-]*uid:[[:space:]]*$uid([[:space:]]|\$)" "$dir/policy.yaml" ||
	fail "policy.yaml: caller uid is not $uid"
if grep -Eq "^[[:space:]-]*gid:[[:space:]]*[0-9]+" "$dir/policy.yaml"; then
	grep -Eq "^[[:space:]-]*gid:[[:space:]]*$gid([[:space:]]|\$)" "$dir/policy.yaml" ||
		fail "policy.yaml: caller gid is not $gid"
fi
ok "regsignd.yaml paths absolute under DIR; policy.yaml caller is uid $uid"

# --- second run: complete, nothing changed -----------------------------------
snapshot "$dir" >"$tmp/snap1"
sleep 1.1  # an mtime rewritten now would differ from the one recorded
"$dev_setup" "$dir" >"$tmp/run2.out" 2>"$tmp/run2.err" ||
	fail "second run failed: $(cat "$tmp/run2.out" "$tmp/run2.err")"
grep -q "complete, nothing changed" "$tmp/run2.out" || fail "second run: $(cat "$tmp/run2.out")"
snapshot "$dir" >"$tmp/snap2"
cmp -s "$tmp/snap1" "$tmp/snap2" ||
	fail "second run changed files: $(diff "$tmp/snap1" "$tmp/snap2")"
ok "second run: 'complete, nothing changed', no file changed (content, mode, mtime)"

# --- partial setups are refused and left alone -------------------------------
# expect_refusal DIR NEEDLE...: dev-setup exits non-zero naming each NEEDLE and
# changes nothing in DIR.
expect_refusal() {
	local d=$1 rc=0
	shift
	snapshot "$d" >"$tmp/snap-before"
	"$dev_setup" "$d" >"$tmp/run.out" 2>"$tmp/run.err" || rc=$?
	[ "$rc" -ne 0 ] || fail "partial setup $d accepted: $(cat "$tmp/run.out")"
	for needle in "$@"; do
		grep -qF -- "$needle" "$tmp/run.err" ||
			fail "refusal of $d does not name '$needle': $(cat "$tmp/run.err")"
	done
	snapshot "$d" >"$tmp/snap-after"
	cmp -s "$tmp/snap-before" "$tmp/snap-after" || fail "refusal of $d changed files"
}

# A copy of the complete setup, pointed at its own token directory.
copy_setup() {
	cp -a -- "$dir" "$1"
	sed -i "s|$dir/|$1/|" "$1/softhsm2.conf"
}

copy_setup "$tmp/p1"
rm -- "$tmp/p1/out/ds.txt"
expect_refusal "$tmp/p1" "missing" "$tmp/p1/out/ds.txt"
ok "missing output file refused: $(tr '\n' ' ' <"$tmp/run.err")"

copy_setup "$tmp/p2"
rm -rf -- "$tmp/p2/out" "$tmp/p2/regsignd.yaml"
expect_refusal "$tmp/p2" "$tmp/p2/out/root-ca.pem" "$tmp/p2/out/transcript.txt" \
	"$tmp/p2/regsignd.yaml"
ok "token present but no outputs refused"

copy_setup "$tmp/p3"
SOFTHSM2_CONF=$tmp/p3/softhsm2.conf USER_PIN=$(cat "$tmp/p3/pin") pkcs11-tool \
	--module "$module" --token-label regsign-dev --login --pin env:USER_PIN \
	--delete-object --type privkey --label regsign-audit >/dev/null 2>&1 ||
	fail "cannot delete a key from the copy"
expect_refusal "$tmp/p3" "key 'regsign-audit'"
ok "key missing from the token refused"

copy_setup "$tmp/p4"
rm -rf -- "$tmp/p4/tokens"/*
expect_refusal "$tmp/p4" "no SoftHSM token"
ok "empty token directory refused"

mkdir "$tmp/p5"
echo hello >"$tmp/p5/notes.txt"
expect_refusal "$tmp/p5" "$tmp/p5/softhsm2.conf" "$tmp/p5/pin"
ok "foreign non-empty directory refused"

# The complete setup is still complete after all that.
"$dev_setup" "$dir" >"$tmp/run3.out" 2>&1 || fail "third run: $(cat "$tmp/run3.out")"
snapshot "$dir" >"$tmp/snap3"
cmp -s "$tmp/snap1" "$tmp/snap3" || fail "the original setup changed"

echo "PASS"
