#!/bin/sh
# The main job on a development machine: build regsign, make (or reuse) the development
# setup in ./var/dev — a SoftHSM token whose keys come from the example key ceremony —
# and show what it holds.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
export REGSIGN_BIN_DIR=$top/build/bin
dev=$top/var/dev
./hsm-setup/dev-setup.sh "$dev"
echo
echo "== development setup in $dev =="
ls -l "$dev" "$dev/out"
echo
echo "== root and issuing CA =="
openssl x509 -in "$dev/out/root-ca.pem" -noout -subject -fingerprint -sha256
openssl x509 -in "$dev/out/issuing-ca.pem" -noout -subject -fingerprint -sha256
openssl verify -x509_strict -CAfile "$dev/out/root-ca.pem" "$dev/out/issuing-ca.pem"
echo
echo "== DNSSEC keys and DS for the parent zone =="
cat "$dev/out/dnskey.txt" "$dev/out/ds.txt"
