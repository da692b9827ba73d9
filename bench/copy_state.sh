#!/bin/bash
# bench/copy_state.sh SRC DEST: a private, runnable copy of a daemon state that
# `bench/run.sh --keep` left behind (SRC holds dev/ — the token, PIN, policy —
# and zd/ — the zone daemon's regsignd.yaml and state/), for rerunning the
# zone measurements on it with `bench/run.sh --zone-state DEST --only ...`
# without importing N devices again. Every path in the copy's configuration is
# rewritten to DEST, and its DNS listener and NOTIFY target get free ports.
# SRC is never modified; DEST must not exist.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: copy_state.sh SRC DEST" >&2; exit 2; }
src=$(cd "$1" && pwd)
dest=$(realpath -m "$2")
[ -e "$dest" ] && { echo "copy_state.sh: $dest exists" >&2; exit 1; }
for f in dev/softhsm2.conf dev/regsignd.yaml zd/regsignd.yaml; do
	[ -f "$src/$f" ] || { echo "copy_state.sh: $src/$f missing: not a kept bench state" >&2; exit 1; }
done
cp -a "$src" "$dest"
chmod -R u+w "$dest"
for f in dev/softhsm2.conf dev/regsignd.yaml zd/regsignd.yaml; do
	sed -i "s#$src#$dest#g" "$dest/$f"
done
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
zport=$(freeport) kport=$(freeport)
sed -i -e "s#^  listen: .*#  listen: [\"127.0.0.1:$zport\"]#" \
	-e "s#^  notify: .*#  notify: [\"127.0.0.1:$kport\"]#" "$dest/zd/regsignd.yaml"
echo "config: $dest/zd/regsignd.yaml  socket: $dest/zd/regsignd.sock  dns: 127.0.0.1:$zport  notify: 127.0.0.1:$kport"
