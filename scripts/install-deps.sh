#!/bin/sh
# Installs every Debian 12 package regsign needs to build, test and run its demo.
# Runs as root, or through sudo when it is available.
set -eu
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
PACKAGES="
  build-essential cmake pkg-config git ca-certificates
  libssl-dev libp11-kit-dev libp11-dev libengine-pkcs11-openssl p11-kit p11-kit-modules
  softhsm2 opensc
  libldns-dev ldnsutils libuv1-dev libsqlite3-dev sqlite3 libyaml-dev libseccomp-dev
  libcmocka-dev clang libclang-rt-14-dev
  gnutls-bin openssl python3
  bind9-dnsutils bind9utils knot knot-dnsutils unbound nsd faketime
  iproute2 procps psmisc systemd e2fsprogs mount util-linux
"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
# The Debian packages of the DNS servers start them as system services where an init
# system runs; regsign's tests start their own instances on loopback ports instead.
for svc in knot nsd unbound; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
echo "install-deps: all packages present"
