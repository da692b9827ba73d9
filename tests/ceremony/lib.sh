# Shared helpers of the ceremony script tests (sourced, not run).
#
# Every test makes its own SoftHSM token(s) in a temporary directory that is
# removed at exit. A missing tool is a FAILURE naming the package, never a
# skip. PINs reach pkcs11-tool through its env:VAR syntax, not argv.

set -euo pipefail

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok: $*"
}

need() {
	command -v "$1" >/dev/null 2>&1 || fail "$1 not found (install the Debian package $2)"
}

[ -n "${REGSIGN_BIN_DIR:-}" ] || fail "REGSIGN_BIN_DIR is not set (run through ctest)"
src_dir=${REGSIGN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ceremony=$REGSIGN_BIN_DIR/regsign-ceremony
example=$src_dir/hsm-setup/ceremony.example.yaml
module=${REGSIGN_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

[ -x "$ceremony" ] || fail "$ceremony is not built"
[ -r "$module" ] || fail "SoftHSM2 module $module not found (install softhsm2)"
[ -r "$example" ] || fail "$example not found"
need pkcs11-tool opensc
need openssl openssl
need python3 python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/regsign-ceremony-test.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

# new_token DIR LABEL: a fresh SoftHSM token in DIR (DIR/softhsm2.conf,
# DIR/tokens, DIR/pin with mode 0600); exports SOFTHSM2_CONF for it.
new_token() {
	local d=$1 label=$2 so
	mkdir -p -- "$d/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$d" >"$d/softhsm2.conf"
	export SOFTHSM2_CONF=$d/softhsm2.conf
	(umask 077 && openssl rand -hex 16 >"$d/pin")
	so=$(openssl rand -hex 16)
	SO_PIN=$so pkcs11-tool --module "$module" --init-token --label "$label" \
		--so-pin env:SO_PIN >/dev/null 2>&1 || fail "cannot initialise token $label"
	SO_PIN=$so USER_PIN=$(cat -- "$d/pin") pkcs11-tool --module "$module" \
		--token-label "$label" --login --login-type so --so-pin env:SO_PIN \
		--init-pin --pin env:USER_PIN >/dev/null 2>&1 || fail "cannot set the PIN of $label"
}

# p11 DIR LABEL ARGS...: pkcs11-tool logged in to token LABEL of DIR.
p11() {
	local d=$1 label=$2
	shift 2
	SOFTHSM2_CONF=$d/softhsm2.conf USER_PIN=$(cat -- "$d/pin") \
		pkcs11-tool --module "$module" --token-label "$label" --login \
		--pin env:USER_PIN "$@" 2>/dev/null
}

# objects DIR LABEL: one line per object of the token ("<class> <label> <id>"),
# sorted, for before/after comparisons.
objects() {
	p11 "$1" "$2" --list-objects | python3 -c '
import sys
objs, cur = [], None
for line in sys.stdin:
    if line and not line[0].isspace():
        cur = [line.split(";")[0].strip(), "", ""]
        objs.append(cur)
    elif cur is not None and line.strip().startswith("label:"):
        cur[1] = line.split(":", 1)[1].strip()
    elif cur is not None and line.strip().startswith("ID:"):
        cur[2] = line.split(":", 1)[1].strip()
for o in sorted(objs):
    print(" ".join(o))
'
}
