#!/bin/bash
# Run the unit tests of the series (QEMU's tests/unit binaries built by
# scripts/build.sh) and count their cases.
#
#   scripts/run-unit-tests.sh [TEST...]   (default: every one below)
#
# Prints each TAP line and a last line "N passed, N failed"; exit status 1
# if any failed.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test-virtio-blk-poll-policy)
pass=0 fail=0
for t in "${tests[@]}"; do
    bin=$QEMU_BUILD/tests/unit/$t
    if [ ! -x "$bin" ]; then
        echo "not ok $t: not built (scripts/build.sh)"
        fail=$((fail + 1))
        continue
    fi
    out=$(timeout 120 "$bin" --tap 2>&1)
    rc=$?
    echo "$out" | grep -E "^(ok|not ok) "
    p=$(echo "$out" | grep -cE "^ok ")
    f=$(echo "$out" | grep -cE "^not ok ")
    # a crash or timeout fails the binary even if no case said so
    [ $rc -eq 0 ] || [ "$f" -gt 0 ] || f=1
    pass=$((pass + p)) fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
