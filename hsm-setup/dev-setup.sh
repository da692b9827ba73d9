#!/bin/bash
# dev-setup.sh DIR: a complete regsign development setup under DIR.
#
# It makes a SoftHSM2 token (DIR/softhsm2.conf, tokens in DIR/tokens, random
# user and SO PINs in DIR/pin and DIR/so-pin, mode 0600), runs the example key
# ceremony (hsm-setup/ceremony.example.yaml, copied to DIR/ceremony.yaml) with
# its outputs in DIR/out, and writes the daemon's files DIR/regsignd.yaml and
# DIR/policy.yaml (the example policy with the caller's uid/gid set to yours).
#
# It never destroys or regenerates keys. On a complete setup it says so and
# changes nothing (exit 0); on a partial one it refuses and names what is
# missing (exit 1), because finishing it could mean making a second set of keys
# that nothing else knows about. Remove DIR by hand to start over.
#
# regsign-ceremony is found in $REGSIGN_BIN_DIR, else ./build/bin, else the
# build/bin directory of the source tree this script lives in.
# Environment: REGSIGN_SOFTHSM_MODULE overrides the SoftHSM2 module path.
#
# This is for development only: SoftHSM keeps its keys in files under DIR,
# protected by the PIN stored next to them.

set -euo pipefail
umask 077

prog=dev-setup
token_label=regsign-dev
module=${REGSIGN_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

# The keys and output files of the example ceremony; the completeness check
# and the refusal messages use these lists.
key_labels=(regsign-root-ca regsign-issuing-ca regsign-ksk regsign-zsk
            regsign-audit regsign-asp.test-ksk regsign-asp.test-zsk)
out_files=(root-ca.pem issuing-ca.pem dnskey.txt ds.txt dnskey-asp.test.txt
           ds-asp.test.txt audit.pub transcript.txt)
top_files=(softhsm2.conf pin so-pin ceremony.yaml policy.yaml regsignd.yaml)

die() {
	echo "$prog: $*" >&2
	exit 1
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$script_dir")
dir=$(realpath -m -- "$1")

find_ceremony() {
	local d
	for d in "${REGSIGN_BIN_DIR:-}" ./build/bin "$src_dir/build/bin"; do
		if [ -n "$d" ] && [ -x "$d/regsign-ceremony" ]; then
			realpath -- "$d/regsign-ceremony"
			return 0
		fi
	done
	return 1
}

# Lists the private keys of the token, logging in with the PIN from DIR/pin.
# SoftHSM rewrites files of its token store whenever it is opened (the
# generation file, and the token file at login), so the check runs on a
# scratch copy of DIR/tokens: a complete setup is left byte- and mtime-for-
# mtime as it was. The PIN travels in the environment of pkcs11-tool only
# (env:VAR), never on a command line where other users could read it.
list_private_keys() {
	local pin scratch r=0
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/regsign-dev-check.XXXXXX") || return 1
	cp -a -- "$dir/tokens" "$scratch/tokens" &&
		printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
			"$scratch/tokens" >"$scratch/softhsm2.conf" &&
		pin=$(cat -- "$dir/pin") &&
		SOFTHSM2_CONF="$scratch/softhsm2.conf" REGSIGN_DEV_PIN="$pin" \
			pkcs11-tool --module "$module" --token-label "$token_label" \
			--login --pin env:REGSIGN_DEV_PIN --list-objects --type privkey \
			2>/dev/null || r=1
	rm -rf -- "$scratch"
	return $r
}

# Prints, one per line, what a complete setup has and DIR lacks.
missing_parts() {
	local f l keys
	for f in "${top_files[@]}"; do
		[ -s "$dir/$f" ] || echo "$dir/$f"
	done
	for f in "${out_files[@]}"; do
		[ -s "$dir/out/$f" ] || echo "$dir/out/$f"
	done
	[ -d "$dir/state" ] || echo "$dir/state/"
	if [ -z "$(ls -A -- "$dir/tokens" 2>/dev/null)" ]; then
		echo "$dir/tokens/ (no SoftHSM token)"
		return 0
	fi
	if [ ! -s "$dir/softhsm2.conf" ] || [ ! -s "$dir/pin" ]; then
		return 0
	fi
	if ! keys=$(list_private_keys); then
		echo "token '$token_label' (not found or the PIN in $dir/pin is refused)"
		return 0
	fi
	for l in "${key_labels[@]}"; do
		grep -qxF "  label:      $l" <<<"$keys" || echo "key '$l' in token '$token_label'"
	done
}

# An existing DIR is either a complete setup (leave it alone), or empty (set
# up from scratch), or anything else (refuse).
if [ -d "$dir" ] && [ -n "$(ls -A -- "$dir")" ]; then
	missing=$(missing_parts)
	if [ -z "$missing" ]; then
		echo "$prog: development setup in $dir is complete, nothing changed"
		exit 0
	fi
	{
		echo "$prog: $dir holds a partial or foreign setup; refusing to touch it."
		echo "$prog: missing:"
		sed 's/^/  /' <<<"$missing"
		echo "$prog: keys are never regenerated here; remove $dir to start over."
	} >&2
	exit 1
elif [ -e "$dir" ] && [ ! -d "$dir" ]; then
	die "$dir exists and is not a directory"
fi

# Fresh setup. Check the tools before making anything.
ceremony=$(find_ceremony) ||
	die "regsign-ceremony not found (set REGSIGN_BIN_DIR or build into ./build/bin)"
[ -r "$module" ] || die "SoftHSM2 module $module not found (apt-get install softhsm2)"
command -v pkcs11-tool >/dev/null || die "pkcs11-tool not found (apt-get install opensc)"
command -v openssl >/dev/null || die "openssl not found"
policy_example="$src_dir/policy/policy.example.yaml"
[ -r "$policy_example" ] || die "$policy_example not found"
ceremony_example="$script_dir/ceremony.example.yaml"
[ -r "$ceremony_example" ] || die "$ceremony_example not found"

mkdir -p -m 0700 -- "$dir"
mkdir -m 0700 -- "$dir/tokens" "$dir/out" "$dir/state"

cat >"$dir/softhsm2.conf" <<EOF
# SoftHSM2 configuration of the regsign development token (dev-setup.sh).
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF

# Random PINs, hex so that they survive any quoting; written with umask 077.
openssl rand -hex 16 >"$dir/pin"
openssl rand -hex 16 >"$dir/so-pin"
chmod 0600 -- "$dir/pin" "$dir/so-pin"

export SOFTHSM2_CONF="$dir/softhsm2.conf"
REGSIGN_DEV_SO_PIN=$(cat -- "$dir/so-pin") \
	pkcs11-tool --module "$module" --init-token --label "$token_label" \
	--so-pin env:REGSIGN_DEV_SO_PIN >/dev/null ||
	die "could not initialise the SoftHSM token"
REGSIGN_DEV_SO_PIN=$(cat -- "$dir/so-pin") REGSIGN_DEV_PIN=$(cat -- "$dir/pin") \
	pkcs11-tool --module "$module" --token-label "$token_label" --login \
	--login-type so --so-pin env:REGSIGN_DEV_SO_PIN --init-pin \
	--pin env:REGSIGN_DEV_PIN >/dev/null ||
	die "could not set the user PIN of the SoftHSM token"

install -m 0644 -- "$ceremony_example" "$dir/ceremony.yaml"
"$ceremony" --module "$module" --token-uri "pkcs11:token=$token_label" \
	--pin-file "$dir/pin" --out "$dir/out" "$dir/ceremony.yaml" ||
	die "the key ceremony failed; $dir is left as it is for inspection"

# The example policy, its 'frontend' caller's uid and gid set to the invoking
# user's so that the front end or regsign CLI run by this user may talk to the
# daemon. That caller may also bulk-import (operation 'import': `regsign
# import`), the development setup's operator being that same user. Other
# callers keep the example's identities.
uid=$(id -u)
gid=$(id -g)
awk -v uid="$uid" -v gid="$gid" '
	/^[^[:space:]#]/ { in_callers = ($1 == "callers:"); in_frontend = 0 }
	in_callers && /^[[:space:]]*- name:/ { in_frontend = ($3 == "frontend"); in_ops = 0 }
	in_frontend && /^[[:space:]]+uid:[[:space:]]*[0-9]+/ { sub(/uid:[[:space:]]*[0-9]+/, "uid: " uid); n++ }
	in_frontend && /^[[:space:]]+gid:[[:space:]]*[0-9]+/ { sub(/gid:[[:space:]]*[0-9]+/, "gid: " gid) }
	in_frontend && /^[[:space:]]+operations:[[:space:]]*\[/ { in_ops = 1; has_import = 0 }
	in_ops && /[[:space:],\[]import[],[:space:]]/ { has_import = 1 }
	in_ops && /\]/ {
		if (!has_import) { sub(/\]/, ", import]"); added++ } else { added++ }
		in_ops = 0
	}
	{ print }
	END { exit n == 1 && added == 1 ? 0 : 1 }
' "$policy_example" >"$dir/policy.yaml.tmp" ||
	die "could not set the uid and operations of caller 'frontend' in $dir/policy.yaml.tmp"
chmod 0644 -- "$dir/policy.yaml.tmp"
mv -- "$dir/policy.yaml.tmp" "$dir/policy.yaml"

# The daemon configuration goes last: its presence marks a finished setup.
cat >"$dir/regsignd.yaml.tmp" <<EOF
# regsignd configuration of the development setup (written by dev-setup.sh).
version: 1
hsm:
  module: $module
  token: "pkcs11:token=$token_label"
  pin-file: $dir/pin
  sessions: 2
  recover-timeout: 30s
  environment:
    SOFTHSM2_CONF: $dir/softhsm2.conf
keys:
  issuing-ca: "pkcs11:token=$token_label;object=regsign-issuing-ca"
  ksk: "pkcs11:token=$token_label;object=regsign-ksk"
  zsk: "pkcs11:token=$token_label;object=regsign-zsk"
  audit: "pkcs11:token=$token_label;object=regsign-audit"
extra-zones:
  - name: asp.test.
    ksk: "pkcs11:token=$token_label;object=regsign-asp.test-ksk"
    zsk: "pkcs11:token=$token_label;object=regsign-asp.test-zsk"
ca:
  root-certificate: $dir/out/root-ca.pem
  issuing-certificate: $dir/out/issuing-ca.pem
  max-validity: 398d
socket:
  path: $dir/regsignd.sock
  mode: "0660"
  max-frame: 262144
  queue-depth: 1024
policy: $dir/policy.yaml
state:
  database: $dir/state/regsign.db
  audit-log: $dir/state/audit.jsonl
  zone-file: $dir/state/zone.db
  zone-file-interval: 60s
dns:
  listen: ["127.0.0.1:5353"]
  nameservers:
    - name: ns1.iotregistry.test.
      addresses: ["127.0.0.1"]
  notify: []
  allow-transfer: ["127.0.0.1"]
log:
  syslog: false
  level: info
EOF
chmod 0644 -- "$dir/regsignd.yaml.tmp"
mv -- "$dir/regsignd.yaml.tmp" "$dir/regsignd.yaml"

echo "$prog: development setup complete in $dir"
echo "$prog: the daemon configuration is $dir/regsignd.yaml"
