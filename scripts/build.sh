#!/bin/bash
# Configure (if needed) and build QEMU with the virtio-blk-poll series:
# qemu-system-x86_64, qemu-img, qemu-storage-daemon and the qos-test
# qtest binary.
#
#   scripts/build.sh [configure options]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)

# ccache: share objects between clones in different directories
export CCACHE_BASEDIR=$TOP
export CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime,time_macros

"$TOP/configure" "$@"
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
echo "build: ninja in $QEMU_BUILD" >&2
start=$(date +%s)
ninja -C "$QEMU_BUILD" -j"$(nproc)" qemu-system-x86_64 qemu-img \
    storage-daemon/qemu-storage-daemon tests/qtest/qos-test \
    tests/unit/test-virtio-blk-poll-policy >"$BUILDDIR/ninja.log" 2>&1 || {
    grep -E "error|FAILED" "$BUILDDIR/ninja.log" | head -40 >&2
    echo "build: FAILED (see $BUILDDIR/ninja.log)" >&2
    exit 1
}
echo "build: done in $(( $(date +%s) - start )) s" >&2
