#!/bin/bash
# Run QEMU's scripts/checkpatch.pl (from the fetched source) on our new C
# files and on every patch of the series.  Prints "N passed, N failed".
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
CP=$QEMU_SRC_DIR/scripts/checkpatch.pl
pass=0 fail=0
check() { # label, checkpatch args...
    local label=$1 out
    shift
    if out=$(perl "$CP" --no-tree "$@" 2>&1) &&
       ! grep -q "^ERROR" <<<"$out"; then
        echo "ok   $label"
        pass=$((pass + 1))
    else
        echo "FAIL $label"
        grep -A3 "^ERROR" <<<"$out" | sed 's/^/     /'
        fail=$((fail + 1))
    fi
}
cd "$TOP" || exit 1
while read -r f; do
    check "$f" -f "$f"
done < <(find hw block include tests/qtest tests/unit -name '*.[ch]' 2>/dev/null | sort)
while read -r p; do
    p=${p%%#*}
    p=$(echo "$p" | xargs)
    [ -n "$p" ] && check "patches/$p" "patches/$p"
done < patches/series
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
