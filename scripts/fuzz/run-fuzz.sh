#!/bin/bash
# Fuzz virtio-blk-poll with libFuzzer under ASan/UBSan.
#
#   scripts/fuzz/run-fuzz.sh [--time SECONDS] [--target NAME] [--no-build]
#                            [-- LIBFUZZER ARGS...]
#
# For each target (virtio-blk-poll-fuzz: io_uring path, 4 queues;
# virtio-blk-poll-fallback-fuzz: block layer path, 2 queues on a user
# IOThread; --target picks one):
#   1. replays every kept input: the seeds and the regression inputs
#      (tests/qtest/fuzz/virtio-blk-poll-{seeds,regressions}/), each once;
#   2. fuzzes for --time seconds (default 90; CI uses the default, a long
#      run is e.g. --time 3600), starting from the seeds and the corpus
#      earlier runs grew in build/fuzz/corpus/TARGET.
# Any crash, sanitizer report, leak or timeout fails the target; its input
# is in build/fuzz/artifacts/ (copy it to the regressions directory once
# the bug is fixed).  Totals of executions and fuzzing time, over all runs
# on this machine, are kept in build/fuzz/totals.json.
# Last line: "N passed, N failed".
set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
TIME=90
TARGETS=(virtio-blk-poll-fuzz virtio-blk-poll-fallback-fuzz)
build=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --time) TIME=$2; shift 2 ;;
    --target) TARGETS=("$2"); shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [--time S] [--target NAME] [--no-build] [-- ARGS]" >&2
       exit 2 ;;
    esac
done

if [ "$build" = 1 ]; then
    "$TOP/scripts/build-fuzz.sh" || { echo "0 passed, 1 failed"; exit 1; }
fi
# shellcheck source=/dev/null
. "$TOP/build/config-fuzz.sh"
FUZZER=$FUZZ_BUILD/qemu-fuzz-x86_64
OUT=$TOP/build/fuzz
SEEDS=$TOP/tests/qtest/fuzz/virtio-blk-poll-seeds
REGR=$TOP/tests/qtest/fuzz/virtio-blk-poll-regressions
mkdir -p "$OUT/artifacts" "$OUT/logs"

# halt on the first report of any sanitizer; libFuzzer checks leaks
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$TOP/scripts/fuzz/lsan.supp:print_suppressions=0}
# the fuzzer's tmp images
export TMPDIR=${TMPDIR:-/tmp}

pass=0 fail=0
sanitizer_report() {
    grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ERROR: libFuzzer|SUMMARY: (Address|Undefined|Leak)" "$1"
}

for t in "${TARGETS[@]}"; do
    log=$OUT/logs/$t-replay.log
    inputs=()
    for f in "$SEEDS"/* "$REGR"/*; do
        [ -f "$f" ] && [ "${f%.md}" = "$f" ] && inputs+=("$f")
    done
    if "$FUZZER" --fuzz-target="$t" -runs=1 "${inputs[@]}" >"$log" 2>&1 &&
       ! sanitizer_report "$log"; then
        echo "ok   $t: replayed ${#inputs[@]} kept inputs"
        pass=$((pass + 1))
    else
        echo "FAIL $t: replaying the kept inputs (log $log)"
        grep -E "Running:|ERROR|runtime error|SUMMARY|#[0-9]+ 0x" "$log" | tail -n 25 | sed 's/^/     /'
        fail=$((fail + 1))
    fi

    corpus=$OUT/corpus/$t
    mkdir -p "$corpus"
    log=$OUT/logs/$t-fuzz.log
    start=$(date +%s)
    "$FUZZER" --fuzz-target="$t" -max_total_time="$TIME" -timeout=20 \
        -rss_limit_mb=4096 -print_final_stats=1 -max_len=4096 \
        -artifact_prefix="$OUT/artifacts/$t-" "${extra[@]}" \
        "$corpus" "$SEEDS" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE "cov: [0-9]+" "$log" | tail -n 1 | cut -d' ' -f2)
    units=$(find "$corpus" -type f | wc -l)
    python3 - "$OUT/totals.json" "$t" "${execs:-0}" "$secs" <<'PY'
import json, sys
path, target, execs, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    with open(path) as f:
        tot = json.load(f)
except (OSError, ValueError):
    tot = {}
t = tot.setdefault(target, {"executions": 0, "seconds": 0, "runs": 0})
t["executions"] += execs
t["seconds"] += secs
t["runs"] += 1
with open(path, "w") as f:
    json.dump(tot, f, indent=1)
PY
    if [ "$rc" -eq 0 ] && ! sanitizer_report "$log"; then
        echo "ok   $t: ${execs:-?} executions in ${secs} s, coverage ${cov:-?} edges, corpus $units inputs"
        pass=$((pass + 1))
    else
        echo "FAIL $t: fuzzing (exit $rc, log $log; inputs in $OUT/artifacts/)"
        grep -E "ERROR|runtime error|SUMMARY|#[0-9]+ 0x|Test unit written" "$log" | head -n 30 | sed 's/^/     /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
