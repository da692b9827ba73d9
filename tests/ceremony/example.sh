#!/bin/bash
# The example ceremony on a fresh SoftHSM token, and everything it must give:
# private keys sensitive and never extractable; a root and issuing CA that
# pass `openssl verify -x509_strict` and GnuTLS certtool with the required
# extensions; dnskey.txt/ds.txt consistent with ldns-key2ds and
# dnssec-dsfromkey and with the token's keys; audit.pub equal to the token's
# audit key; a transcript that records all of it.
. "$(dirname "$0")/lib.sh"

need certtool gnutls-bin
need ldns-key2ds ldnsutils
need dnssec-dsfromkey bind9utils
need sha256sum coreutils

tok=$tmp/tok
label=regsign-test
out=$tmp/out
new_token "$tok" "$label"

"$ceremony" --module "$module" --token-uri "pkcs11:token=$label" \
	--pin-file "$tok/pin" --out "$out" "$example" >"$tmp/run.out" 2>"$tmp/run.err" ||
	fail "the example ceremony failed: $(cat "$tmp/run.err")"
grep -q "ceremony complete" "$tmp/run.out" || fail "no completion message: $(cat "$tmp/run.out")"
ok "example ceremony ran"

outputs=(root-ca.pem issuing-ca.pem dnskey.txt ds.txt dnskey-asp.test.txt
	ds-asp.test.txt audit.pub transcript.txt)
for f in "${outputs[@]}"; do
	[ -s "$out/$f" ] || fail "output $f missing or empty"
done
[ "$(ls -A "$out" | wc -l)" -eq "${#outputs[@]}" ] ||
	fail "unexpected files in the output directory: $(ls -A "$out")"
ok "all ${#outputs[@]} outputs present, nothing else"

# --- keys in the token -------------------------------------------------------
labels="regsign-asp.test-ksk regsign-asp.test-zsk regsign-audit regsign-issuing-ca regsign-ksk regsign-root-ca regsign-zsk"
p11 "$tok" "$label" --list-objects --type privkey >"$tmp/privkeys.txt" ||
	fail "cannot list the private keys"
python3 - "$tmp/privkeys.txt" "$labels" <<'EOF' || fail "private key attributes"
import sys
text = open(sys.argv[1]).read()
want = sorted(sys.argv[2].split())
keys, cur = [], None
for line in text.splitlines():
    if line.startswith("Private Key Object"):
        if "EC" not in line:
            sys.exit("not an EC key: " + line)
        cur = {"label": None, "access": None}
        keys.append(cur)
    elif cur is not None and line.strip().startswith("label:"):
        cur["label"] = line.split(":", 1)[1].strip()
    elif cur is not None and line.strip().startswith("Access:"):
        cur["access"] = [a.strip() for a in line.split(":", 1)[1].split(",")]
labels = sorted(k["label"] for k in keys)
if labels != want:
    sys.exit("private keys %s, expected %s" % (labels, want))
for k in keys:
    a = k["access"] or []
    # pkcs11-tool prints "sensitive" for CKA_SENSITIVE, "extractable" for
    # CKA_EXTRACTABLE and "never extractable" for CKA_NEVER_EXTRACTABLE.
    if "sensitive" not in a or "never extractable" not in a or "extractable" in a:
        sys.exit("key %s has access %s" % (k["label"], a))
print("7 private keys: sensitive, never extractable, not extractable")
EOF
ok "private keys: CKA_SENSITIVE=true, CKA_EXTRACTABLE=false, CKA_NEVER_EXTRACTABLE=true"

# pubkey LABEL FILE: the token's public key of LABEL as DER SPKI.
pubkey() {
	p11 "$tok" "$label" --read-object --type pubkey --label "$1" -o "$2" >/dev/null ||
		fail "cannot read public key $1"
}

# --- certificates ------------------------------------------------------------
openssl verify -x509_strict -CAfile "$out/root-ca.pem" "$out/root-ca.pem" >/dev/null ||
	fail "root certificate fails openssl verify -x509_strict"
openssl verify -x509_strict -CAfile "$out/root-ca.pem" "$out/issuing-ca.pem" \
	>"$tmp/verify.txt" 2>&1 || fail "issuing CA fails openssl verify: $(cat "$tmp/verify.txt")"
grep -q ": OK$" "$tmp/verify.txt" || fail "openssl verify said: $(cat "$tmp/verify.txt")"
ok "openssl verify -x509_strict: root and issuing CA"

cat "$out/issuing-ca.pem" "$out/root-ca.pem" >"$tmp/chain.pem"
certtool --verify-chain --infile "$tmp/chain.pem" >"$tmp/gnutls-chain.txt" 2>&1 ||
	fail "certtool --verify-chain failed: $(cat "$tmp/gnutls-chain.txt")"
grep -q "Chain verification output: Verified" "$tmp/gnutls-chain.txt" ||
	fail "certtool --verify-chain did not verify: $(cat "$tmp/gnutls-chain.txt")"
certtool --verify --load-ca-certificate "$out/root-ca.pem" --infile "$out/issuing-ca.pem" \
	>"$tmp/gnutls-verify.txt" 2>&1 || fail "certtool --verify failed: $(cat "$tmp/gnutls-verify.txt")"
grep -q "Verified" "$tmp/gnutls-verify.txt" || fail "certtool --verify: $(cat "$tmp/gnutls-verify.txt")"
ok "GnuTLS certtool --verify-chain and --verify"

openssl x509 -in "$out/root-ca.pem" -noout -text >"$tmp/root.txt"
openssl x509 -in "$out/issuing-ca.pem" -noout -text >"$tmp/issuing.txt"
python3 - "$tmp/root.txt" "$tmp/issuing.txt" <<'EOF' || fail "certificate contents"
import re, sys
root, issuing = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def ext(text, name):
    m = re.search(r"X509v3 %s:( critical)? *\n\s+(.*(?:\n\s{16,}.*)*)" % name, text)
    if not m:
        sys.exit("extension %s missing" % name)
    return bool(m.group(1)), re.sub(r"\s+", " ", m.group(2)).strip()
def want(text, who, name, critical, value):
    c, v = ext(text, name)
    if c != critical or v != value:
        sys.exit("%s %s: critical=%s value=%r, expected critical=%s %r"
                 % (who, name, c, v, critical, value))
want(root, "root", "Basic Constraints", True, "CA:TRUE")
want(root, "root", "Key Usage", True, "Certificate Sign, CRL Sign")
want(issuing, "issuing", "Basic Constraints", True, "CA:TRUE, pathlen:0")
c, v = ext(issuing, "Key Usage")
if not c or "Certificate Sign" not in v or "CRL Sign" not in v:
    sys.exit("issuing Key Usage: critical=%s %r" % (c, v))
c, v = ext(issuing, "Name Constraints")
if not c or not v.startswith("Permitted: DNS:iotregistry.test"):
    sys.exit("issuing Name Constraints: critical=%s %r" % (c, v))
if re.search(r"Permitted:.*DNS:(?!iotregistry\.test)", v):
    sys.exit("issuing Name Constraints permit more than the zone: %r" % v)
for who, text in (("root", root), ("issuing", issuing)):
    ext(text, "Subject Key Identifier")
    ext(text, "Authority Key Identifier")
    if "ecdsa-with-SHA256" not in text or "prime256v1" not in text:
        sys.exit(who + ": not ecdsa-with-SHA256 over P-256")
    if "Version: 3" not in text:
        sys.exit(who + ": not v3")
if "Subject: C = CA, O = IoT Registry (test), CN = IoT Registry Test Root CA" not in root:
    sys.exit("root subject differs from the ceremony file")
if "Subject: C = CA, O = IoT Registry (test), CN = IoT Registry Test Issuing CA" not in issuing:
    sys.exit("issuing subject differs from the ceremony file")
if "Issuer: C = CA, O = IoT Registry (test), CN = IoT Registry Test Root CA" not in issuing:
    sys.exit("issuing issuer is not the root")
EOF
ok "root: CA:true and keyCertSign+cRLSign critical; issuing: pathlen 0, nameConstraints iotregistry.test critical"

# The constraints hold in practice: leaf certificates signed by the token's
# issuing key (through libp11's OpenSSL engine) verify under the zone, fail
# outside it, and a CA below the issuing CA breaks its pathlen 0.
engine=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -r "$engine" ] || fail "$engine not found (install libengine-pkcs11-openssl)"
cat >"$tmp/engine.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $module
init = 0
EOF
# sign_with_issuing CSR OUT [EXTFILE]: certificate signed in the token.
sign_with_issuing() {
	local ext=()
	[ $# -lt 3 ] || ext=(-extfile "$3")
	[ $# -ge 3 ] || ext=(-copy_extensions copy)
	OPENSSL_CONF=$tmp/engine.cnf PIN=$(cat "$tok/pin") openssl x509 -req -in "$1" \
		-CA "$out/issuing-ca.pem" -engine pkcs11 -CAkeyform engine \
		-CAkey "pkcs11:token=$label;object=regsign-issuing-ca;type=private" \
		-passin env:PIN -days 30 "${ext[@]}" -out "$2" >/dev/null 2>&1 ||
		fail "cannot sign $1 with the token's issuing key"
}
# leaf_csr NAME: a CSR with CN and SAN NAME (key in $tmp/NAME.key).
leaf_csr() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/$1.key" -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
		-out "$tmp/$1.csr" 2>/dev/null || fail "cannot make a CSR for $1"
}
leaf_csr 1.8912230200031010008f.iotregistry.test
sign_with_issuing "$tmp/1.8912230200031010008f.iotregistry.test.csr" "$tmp/in-zone.pem"
openssl verify -x509_strict -CAfile "$out/root-ca.pem" -untrusted "$out/issuing-ca.pem" \
	"$tmp/in-zone.pem" >/dev/null 2>&1 || fail "a leaf inside the zone does not verify"
leaf_csr device.example.com
sign_with_issuing "$tmp/device.example.com.csr" "$tmp/outside.pem"
if openssl verify -x509_strict -CAfile "$out/root-ca.pem" -untrusted "$out/issuing-ca.pem" \
	"$tmp/outside.pem" >"$tmp/nc.txt" 2>&1; then
	fail "a leaf outside the zone verifies: nameConstraints not enforced"
fi
grep -q "permitted subtree violation" "$tmp/nc.txt" || fail "outside leaf: $(cat "$tmp/nc.txt")"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >"$tmp/subca.ext"
leaf_csr sub.iotregistry.test
sign_with_issuing "$tmp/sub.iotregistry.test.csr" "$tmp/subca.pem" "$tmp/subca.ext"
leaf_csr 2.8912230200031010008f.iotregistry.test
openssl x509 -req -in "$tmp/2.8912230200031010008f.iotregistry.test.csr" -CA "$tmp/subca.pem" \
	-CAkey "$tmp/sub.iotregistry.test.key" -days 10 -copy_extensions copy \
	-out "$tmp/under-subca.pem" >/dev/null 2>&1 || fail "cannot sign below the sub-CA"
cat "$out/issuing-ca.pem" "$tmp/subca.pem" >"$tmp/untrusted.pem"
if openssl verify -x509_strict -CAfile "$out/root-ca.pem" -untrusted "$tmp/untrusted.pem" \
	"$tmp/under-subca.pem" >"$tmp/pl.txt" 2>&1; then
	fail "a chain through a CA below the issuing CA verifies: pathlen 0 not enforced"
fi
grep -q "path length constraint exceeded" "$tmp/pl.txt" || fail "sub-CA chain: $(cat "$tmp/pl.txt")"
ok "nameConstraints and pathlen 0 enforced by openssl verify on certificates signed in the token"

# The certificates certify the token's keys.
for pair in root-ca:regsign-root-ca issuing-ca:regsign-issuing-ca; do
	cert=${pair%%:*} key=${pair#*:}
	pubkey "$key" "$tmp/$key.der"
	openssl x509 -in "$out/$cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER \
		>"$tmp/$cert.spki.der"
	cmp -s "$tmp/$key.der" "$tmp/$cert.spki.der" || fail "$cert.pem does not certify token key $key"
done
ok "certificates hold the token's root and issuing keys"

# --- DNSKEY / DS -------------------------------------------------------------
# check_zone ZONE DNSKEYFILE DSFILE KSKLABEL ZSKLABEL
check_zone() {
	local zone=$1 dnskey=$2 ds=$3 ksk=$4 zsk=$5
	pubkey "$ksk" "$tmp/$ksk.der"
	pubkey "$zsk" "$tmp/$zsk.der"
	python3 - "$zone" "$dnskey" "$tmp/$ksk.der" "$tmp/$zsk.der" <<'EOF' || fail "$dnskey"
import base64, sys
zone, path, ksk, zsk = sys.argv[1:5]
rrs = [l.split() for l in open(path) if l.strip() and not l.startswith(";")]
if len(rrs) != 2:
    sys.exit("%s: %d records, expected 2" % (path, len(rrs)))
keys = {}
for rr in rrs:
    owner, ttl, cls, typ, flags, proto, alg = rr[:7]
    if owner.lower() != zone or cls != "IN" or typ != "DNSKEY" or proto != "3" or alg != "13":
        sys.exit("%s: bad record %s" % (path, rr))
    keys[flags] = base64.b64decode("".join(rr[7:]))
for flags, der in (("257", ksk), ("256", zsk)):
    spki = open(der, "rb").read()
    if keys.get(flags) != spki[-64:] or spki[-65] != 4:
        sys.exit("%s: DNSKEY %s is not the token's key %s" % (path, flags, der))
EOF
	# ldns-key2ds and dnssec-dsfromkey must derive exactly ds.txt from the KSK.
	grep -E "DNSKEY[[:space:]]+257" "$dnskey" >"$tmp/ksk.key"
	(cd "$tmp" && ldns-key2ds -n -2 ksk.key) >"$tmp/ldns-ds.txt" || fail "ldns-key2ds on $dnskey"
	dnssec-dsfromkey -2 -f "$dnskey" "$zone" >"$tmp/bind-ds.txt" 2>/dev/null ||
		fail "dnssec-dsfromkey on $dnskey"
	python3 - "$ds" "$tmp/ldns-ds.txt" "$tmp/bind-ds.txt" <<'EOF' || fail "$ds"
import sys
def ds(path):
    rr = [l.split() for l in open(path) if l.strip() and not l.startswith(";")]
    if len(rr) != 1:
        sys.exit("%s: %d records, expected 1" % (path, len(rr)))
    f = rr[0]
    i = f.index("DS")
    return f[0].lower(), f[i + 1], f[i + 2], f[i + 3], "".join(f[i + 4:]).lower()
mine, ldns, bind = (ds(p) for p in sys.argv[1:4])
if mine != ldns:
    sys.exit("ds.txt %s differs from ldns-key2ds %s" % (mine, ldns))
if mine != bind:
    sys.exit("ds.txt %s differs from dnssec-dsfromkey %s" % (mine, bind))
if mine[2:4] != ("13", "2"):
    sys.exit("DS is not algorithm 13 digest type 2: %s" % (mine,))
EOF
	ok "$zone: DNSKEYs are the token's KSK/ZSK; DS equals ldns-key2ds and dnssec-dsfromkey"
}
check_zone iotregistry.test. "$out/dnskey.txt" "$out/ds.txt" regsign-ksk regsign-zsk
check_zone asp.test. "$out/dnskey-asp.test.txt" "$out/ds-asp.test.txt" \
	regsign-asp.test-ksk regsign-asp.test-zsk

# --- audit.pub ---------------------------------------------------------------
pubkey regsign-audit "$tmp/audit.der"
openssl pkey -pubin -in "$out/audit.pub" -outform DER >"$tmp/audit-file.der" ||
	fail "audit.pub is not a PEM public key"
cmp -s "$tmp/audit.der" "$tmp/audit-file.der" || fail "audit.pub is not the token's audit key"
ok "audit.pub is the token's audit key"

# --- transcript ----------------------------------------------------------------
t=$out/transcript.txt
hash() { sha256sum | cut -d' ' -f1; }
grep -qx "ceremony-file-sha256: $(hash <"$example")" "$t" || fail "transcript lacks the file's SHA-256"
grep -qx "result: complete" "$t" || fail "transcript does not end complete"
grep -qx "token: pkcs11:token=$label" "$t" || fail "transcript lacks the token"
for l in $labels; do
	grep -qx "  label: $l" "$t" || fail "transcript lacks key $l"
	spki_hash=$(pubkey "$l" "$tmp/k.der" && hash <"$tmp/k.der")
	grep -qx "  public-key-sha256: $spki_hash" "$t" || fail "transcript lacks the fingerprint of $l"
done
for c in root-ca issuing-ca; do
	h=$(openssl x509 -in "$out/$c.pem" -outform DER | hash)
	grep -qx "  certificate-sha256: $h" "$t" || fail "transcript lacks the SHA-256 of $c.pem"
done
# CKA_IDs in the transcript are the token's.
p11 "$tok" "$label" --list-objects --type privkey | awk '/ID:/ {print $2}' | sort >"$tmp/ids-token"
awk '/^  id: / {print $2}' "$t" | sort >"$tmp/ids-transcript"
[ "$(wc -l <"$tmp/ids-token")" -eq 7 ] || fail "expected 7 key ids in the token"
cmp -s "$tmp/ids-token" "$tmp/ids-transcript" || fail "transcript ids differ from the token's CKA_IDs"
grep -c "^step [0-9]*: " "$t" | grep -qx 12 || fail "transcript should record 12 steps"
if grep -qF "$(cat "$tok/pin")" "$t"; then
	fail "transcript holds the PIN"
fi
ok "transcript: file SHA-256, labels, CKA_IDs, key fingerprints, certificate SHA-256, 12 steps"

echo "PASS"
