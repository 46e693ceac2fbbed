#!/bin/bash
# Run qtests one test path at a time and count them.
#
#   scripts/run-qtests.sh REGEX   (test paths of qos-test matching REGEX)
#   scripts/run-qtests.sh --asan REGEX
#                         the same against the ASan/UBSan build of
#                         qemu-system-x86_64 (scripts/build-fuzz.sh); a
#                         sanitizer report in a test's log fails the test
#   scripts/run-qtests.sh --tsan REGEX
#                         the same against the ThreadSanitizer build
#                         (scripts/build-tsan.sh), with QEMU's own TSan
#                         suppressions; the reports go to
#                         build/qtest-logs-tsan/tsan.PID, sorted by
#                         scripts/tsan-summary.py
#
# Prints "ok PATH" / "FAIL PATH" (with the log tail) per test and a last
# line "N passed, N failed".  Exit status 1 if any failed.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
asan=0 tsan=0
if [ "${1:-}" = --asan ]; then
    asan=1
    shift
elif [ "${1:-}" = --tsan ]; then
    tsan=1
    shift
fi
regex=${1:?usage: run-qtests.sh [--asan|--tsan] REGEX}
cd "$QEMU_BUILD" || exit 1
export QTEST_QEMU_BINARY=./qemu-system-x86_64
# use_build WHAT CONFIG SCRIPT: the qemu-system-x86_64 of the build that
# SCRIPT makes, whose directory BUILDDIR/CONFIG names
use_build() {
    local dir
    [ -f "$BUILDDIR/$2" ] || {
        echo "no $1 build: run scripts/$3 first"
        echo "0 passed, 1 failed"
        exit 1
    }
    dir=$(sed -n 's/^[A-Z_]*=//p' "$BUILDDIR/$2")
    export QTEST_QEMU_BINARY=$dir/qemu-system-x86_64
}
if [ "$asan" = 1 ]; then
    use_build ASan config-fuzz.sh build-fuzz.sh
    # QEMU exits with leaks of its own at the end of a run: no leak check
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
    export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
fi
if [ "$tsan" = 1 ]; then
    use_build TSan config-tsan.sh build-tsan.sh
    # Upstream QEMU has reports of its own (glib is not instrumented):
    # keep going, write every report to the log directory, and let
    # scripts/tsan-summary.py sort them.  A test fails only by itself.
    export TSAN_OPTIONS="suppressions=$QEMU_SRC_DIR/tests/tsan/suppressions.tsan:exitcode=0:log_path=$BUILDDIR/qtest-logs-tsan/tsan:history_size=4"
fi
export QTEST_QEMU_IMG=./qemu-img
export QTEST_QEMU_STORAGE_DAEMON_BINARY=./storage-daemon/qemu-storage-daemon
LOG=$BUILDDIR/qtest-logs
[ "$asan" = 1 ] && LOG=$BUILDDIR/qtest-logs-asan
[ "$tsan" = 1 ] && LOG=$BUILDDIR/qtest-logs-tsan
mkdir -p "$LOG"
# A test may change kernel.io_uring_disabled for a moment; never leave it so
SYSCTL=/proc/sys/kernel/io_uring_disabled
uring_disabled=$(cat "$SYSCTL" 2>/dev/null || true)
restore_sysctl() {
    if [ -n "$uring_disabled" ] && [ "$(cat "$SYSCTL")" != "$uring_disabled" ]; then
        echo "$uring_disabled" > "$SYSCTL"
    fi
}
trap restore_sysctl EXIT
pass=0 fail=0
paths=$(./tests/qtest/qos-test -l 2>/dev/null | grep -E "^/" | grep -E "$regex")
[ -n "$paths" ] || { echo "no qtest matches '$regex'"; echo "0 passed, 1 failed"; exit 1; }
for p in $paths; do
    restore_sysctl
    log=$LOG/$(echo "$p" | tr '/' '_').log
    if timeout 600 ./tests/qtest/qos-test -p "$p" >"$log" 2>&1 &&
       grep -q "^ok " "$log" &&
       ! grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
        echo "ok   $p"
        pass=$((pass + 1))
    else
        echo "FAIL $p"
        tail -n 15 "$log" | sed 's/^/     /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
