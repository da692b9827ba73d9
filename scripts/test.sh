#!/bin/sh
# Builds regsign twice (plain, and with ASan + UBSan) and runs every test in both.
# Exits non-zero when any test fails. Usage: scripts/test.sh [extra ctest args]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
status=0

run_suite() {
  name=$1; shift
  dir=$top/build-test-$name
  echo "== $name build =="
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null || return 1
  cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || { tail -n 60 "$dir.build.log"; return 1; }
  echo "== $name tests =="
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" $CTEST_ARGS
}

CTEST_ARGS="$*"
# LeakSanitizer needs ptrace, which the sandbox tests forbid; the sanitizer build
# switches the sandbox off (REGSIGN_SANITIZE), as the hardening design says.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite plain || status=1
run_suite sanitize -DREGSIGN_SANITIZE=ON || status=1
if [ $status -ne 0 ]; then
  echo "scripts/test.sh: FAILED (see above)"
else
  echo "scripts/test.sh: all tests passed in both builds"
fi
exit $status
