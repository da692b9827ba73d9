#!/bin/sh
# The benchmark suite's smoke test (tests/bench.cmake): bench/run.sh --smoke
# on the built tree named by REGSIGN_BIN_DIR / REGSIGN_BUILD_DIR, then a check
# that results.json is well formed with every expected key. When regsignd is
# built, its measurements must have run.
# Usage: smoke.sh OUTDIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: smoke.sh OUTDIR}
"$here/run.sh" --smoke --out "$out"
if [ -x "${REGSIGN_BIN_DIR:-}/regsignd" ]; then
	exec python3 "$here/report.py" --check "$out/results.json" --require-daemon
fi
exec python3 "$here/report.py" --check "$out/results.json"
