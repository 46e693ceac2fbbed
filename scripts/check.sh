#!/bin/bash
# The whole test suite: install what is missing, build, run every suite
# of meson.build, print "N passed, N failed" over all test cases.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
t0=$(date +%s)

"$TOP/scripts/setup-host.sh" build fuzz ceph || exit 1
"$TOP/scripts/build.sh" --no-deps || { echo "0 passed, 1 failed"; exit 1; }
# clang + ASan/UBSan + libFuzzer build for the fuzz and asan suites
"$TOP/scripts/build-fuzz.sh" --no-deps || { echo "0 passed, 1 failed"; exit 1; }
t1=$(date +%s)

MB=$TOP/build/meson-tests
if [ ! -f "$MB/build.ninja" ]; then
    rm -rf "$MB"
    /usr/bin/meson setup "$MB" "$TOP" >/dev/null || exit 1
fi
/usr/bin/meson test -C "$MB" --print-errorlogs
rc=$?

# Per test case totals from each suite's own "N passed, N failed" line
read -r pass fail < <(grep -hE '^[0-9]+ passed, [0-9]+ failed$' \
    "$MB/meson-logs/testlog.txt" |
    awk '{ p += $1; f += $3 } END { print p + 0, f + 0 }')
[ $rc -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
echo "build $((t1 - t0)) s, tests $(( $(date +%s) - t1 )) s"
echo "$pass passed, $fail failed"
[ $rc -eq 0 ] && [ "$fail" -eq 0 ]
