#!/bin/sh
# tests/fuzz/run.sh: build regsign's libFuzzer targets with clang (ASan +
# UBSan, tests/fuzz/CMakeLists.txt), replay every input of the committed
# corpora (tests/fuzz/corpus/<target>/: seeds and past crashes, which are
# regression inputs), then fuzz each target for a while.
#
#   run.sh [--build-dir DIR] [--time SECONDS] [--long [HOURS]] [--seeds]
#          [--merge] [--only TARGET]...
#
#   --time S    fuzz each target S seconds (default 10: the CI smoke run)
#   --long [H]  fuzz each target H hours (default 2), with every CPU as a worker
#   --seeds     regenerate the seed-* files of the corpora with seedgen (real encoders)
#   --merge     after fuzzing, merge new coverage into the committed corpora
#               (libFuzzer -merge=1 keeps only inputs that add coverage)
#   --only T    only target T (repeatable)
#
# Exit status 0 when every replay and every fuzzing run finished without a
# finding. A finding is saved as BUILD/findings/<target>-crash-...; once the
# bug is fixed, copy it into tests/fuzz/corpus/<target>/ as regression-<what>
# so that every later run replays it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${REGSIGN_FUZZ_BUILD_DIR:-$root/build-fuzz}
time_per=10
workers=1
seeds=0
merge=0
only=""

while [ $# -gt 0 ]; do
	case "$1" in
	--build-dir) build=$2; shift 2 ;;
	--time) time_per=$2; shift 2 ;;
	--long)
		hours=2
		if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then hours=$2; shift; fi
		time_per=$((hours * 3600))
		workers=$(nproc)
		shift ;;
	--seeds) seeds=1; shift ;;
	--merge) merge=1; shift ;;
	--only) only="$only $2"; shift 2 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

# A missing clang is a failure, not a skip: CI must install it.
if ! command -v clang >/dev/null 2>&1; then
	echo "run.sh: FAIL: clang not found (Debian package clang); the fuzz build needs libFuzzer" >&2
	exit 1
fi

echo "run.sh: building fuzzers in $build"
CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
	{ cat "$build.configure.log" >&2; echo "run.sh: FAIL: configure" >&2; exit 1; }
cmake --build "$build" --target fuzzers -j "$(nproc)" >"$build.build.log" 2>&1 ||
	{ tail -50 "$build.build.log" >&2; echo "run.sh: FAIL: build" >&2; exit 1; }

if [ $seeds -eq 1 ]; then
	"$build/bin/seedgen" "$here/corpus"
	mkdir -p "$here/corpus/fuzz_policy"
	cp "$root/policy/policy.example.yaml" "$here/corpus/fuzz_policy/seed-example.yaml"
	echo "run.sh: seeds written to $here/corpus"
fi

targets=$(tr ';' ' ' <"$build/fuzz-targets.txt")
if [ -n "$only" ]; then targets=$only; fi
mkdir -p "$build/findings" "$build/work"
# LeakSanitizer cannot work under ptrace-less sandboxes; elsewhere leaks are findings.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=""

for t in $targets; do
	bin=$build/bin/$t
	corpus=$here/corpus/$t
	work=$build/work/$t
	mkdir -p "$corpus" "$work"
	n=$(find "$corpus" -type f | wc -l)
	echo "run.sh: $t: replaying $n corpus inputs"
	if ! "$bin" -runs=0 "$corpus" >"$build/$t.replay.log" 2>&1; then
		tail -40 "$build/$t.replay.log" >&2
		echo "run.sh: FAIL: $t: a corpus input fails (see $build/$t.replay.log)" >&2
		failed="$failed $t"
		continue
	fi
	echo "run.sh: $t: fuzzing ${time_per}s with $workers worker(s)"
	# Parallel workers write their own fuzz-N.log files into the current directory.
	par=""
	if [ "$workers" -gt 1 ]; then par="-workers=$workers -jobs=$workers"; fi
	# New inputs go to the work directory, never into the repository's corpus.
	# shellcheck disable=SC2086
	if ! (cd "$build/work" && "$bin" -max_total_time="$time_per" -timeout=25 \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 $par \
		-artifact_prefix="$build/findings/$t-" "$work" "$corpus") \
		>"$build/$t.fuzz.log" 2>&1; then
		tail -60 "$build/$t.fuzz.log" >&2
		echo "run.sh: FAIL: $t: finding saved under $build/findings/" >&2
		failed="$failed $t"
		continue
	fi
	grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/$t.fuzz.log" |
		sed "s/^/run.sh: $t: /" || true
	if [ $merge -eq 1 ]; then
		"$bin" -merge=1 "$corpus" "$work" >"$build/$t.merge.log" 2>&1
		echo "run.sh: $t: merged into $corpus"
	fi
done

if [ -n "$failed" ]; then
	echo "run.sh: FAIL:$failed" >&2
	exit 1
fi
echo "run.sh: all fuzz targets passed"
