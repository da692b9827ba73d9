#!/bin/bash
# bench/copy_state.sh SRC DEST: a private, runnable copy of a daemon state that
# `bench/run.sh --keep` left behind (SRC holds dev/ — the token, PIN, policy —
# and zd/ — the zone daemon's regsignd.yaml and state/), for rerunning the
# zone measurements on it with `bench/run.sh --zone-state DEST --only ...`
# without importing N devices again. Every path in the copy's configuration is
# rewritten to DEST, and its DNS listener and NOTIFY target get free ports.
# SRC is never modified; DEST must not exist.
#
# The copy's databases are checkpointed (sqlite3 CLI, package sqlite3:
# `PRAGMA wal_checkpoint(TRUNCATE)`) so that a run on it starts from a settled
# state: a daemon stopped right after a 1M import leaves its WAL (~490 MB)
# uncopied, and the first daemon on the copy would copy it in the background,
# its fsyncs landing in the measurement. The WAL file is left empty; SQLite
# reads the database alone, as the daemon's own restart would.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: copy_state.sh SRC DEST" >&2; exit 2; }
# Physical paths: the configurations name the state's real directory, which
# a SRC given through a symbolic link would not match.
src=$(cd "$1" && pwd -P)
dest=$(realpath -m "$2")
[ -e "$dest" ] && { echo "copy_state.sh: $dest exists" >&2; exit 1; }
for f in dev/softhsm2.conf dev/regsignd.yaml zd/regsignd.yaml; do
	[ -f "$src/$f" ] || { echo "copy_state.sh: $src/$f missing: not a kept bench state" >&2; exit 1; }
done
cp -a "$src" "$dest"
chmod -R u+w "$dest"
for f in dev/softhsm2.conf dev/regsignd.yaml zd/regsignd.yaml; do
	sed -i "s#$src#$dest#g" "$dest/$f"
	# A copy whose configuration still names SRC would run on SRC itself.
	if grep -q "$src/" "$dest/$f"; then
		echo "copy_state.sh: $dest/$f still names $src" >&2
		exit 1
	fi
done
# checkpoint DB: copy DB's WAL into it and empty the WAL; fails unless every
# frame was copied (busy=0, checkpointed=log), so a run never starts from a
# copy whose WAL still holds part of the state.
checkpoint() {
	local out
	out=$(sqlite3 "$1" 'PRAGMA wal_checkpoint(TRUNCATE);') ||
		{ echo "copy_state.sh: checkpoint of $1 failed" >&2; return 1; }
	IFS='|' read -r busy log copied <<<"$out"
	if [ "$busy" != 0 ] || [ "$log" != "$copied" ]; then
		echo "copy_state.sh: checkpoint of $1 incomplete (busy|log|copied: $out)" >&2
		return 1
	fi
}
command -v sqlite3 >/dev/null || { echo "copy_state.sh: needs the sqlite3 CLI (apt-get install sqlite3)" >&2; exit 1; }
for y in dev/regsignd.yaml zd/regsignd.yaml; do
	db=$(sed -n 's/^  database: *//p' "$dest/$y")
	[ -n "$db" ] && [ -f "$db" ] || continue
	t0=$(date +%s)
	checkpoint "$db" || exit 1
	echo "checkpointed $db ($(( $(date +%s) - t0 )) s, $(du -h "$db" | cut -f1))"
done
sync
# Ports free for TCP and UDP alike: the tests' one free_port.
. "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../tests/lib/net.sh"
zport=$(free_port) kport=$(free_port)
sed -i -e "s#^  listen: .*#  listen: [\"127.0.0.1:$zport\"]#" \
	-e "s#^  notify: .*#  notify: [\"127.0.0.1:$kport\"]#" "$dest/zd/regsignd.yaml"
echo "config: $dest/zd/regsignd.yaml  socket: $dest/zd/regsignd.sock  dns: 127.0.0.1:$zport  notify: 127.0.0.1:$kport"
