#!/bin/bash
# Build QEMU with the virtio-blk-poll series under ThreadSanitizer (clang,
# --enable-tsan) in its own build directory beside the normal one
# (build/qemu/build-tsan): qemu-system-x86_64 for running the device
# qtests against it (scripts/run-qtests.sh --tsan REGEX).  Not part of
# the test suite (a TSan build and run take long on 2 cores); see
# docs/robustness.md for what it found.
#
#   scripts/build-tsan.sh [--no-deps]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)

export CCACHE_BASEDIR=$TOP
export CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime,time_macros

nodeps=
[ "${1:-}" = --no-deps ] && nodeps=--no-deps
[ -n "$nodeps" ] || "$TOP/scripts/setup-host.sh" build fuzz
# the normal configure fetches and patches the source tree
"$TOP/configure" --no-deps >/dev/null
# shellcheck source=/dev/null
. "$TOP/build/config.sh"

TSAN_BUILD=$QEMU_SRC_DIR/build-tsan
CC=clang-14 CXX=clang++-14
if command -v ccache >/dev/null; then
    CC="ccache $CC" CXX="ccache $CXX"
fi
CONF=(
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-tcg --enable-linux-io-uring --enable-linux-aio
    --enable-tsan
    --disable-docs --disable-install-blobs --disable-werror
    "--cc=$CC" "--cxx=$CXX" --python=/usr/bin/python3
)
want="${CONF[*]}"
if [ ! -f "$TSAN_BUILD/build.ninja" ] ||
   [ "$(cat "$TSAN_BUILD/.vbp-conf" 2>/dev/null)" != "$want" ]; then
    echo "build-tsan: configuring $TSAN_BUILD: $want" >&2
    rm -rf "$TSAN_BUILD"
    mkdir -p "$TSAN_BUILD"
    (cd "$TSAN_BUILD" && ../configure "${CONF[@]}" \
        >"$BUILDDIR/qemu-tsan-configure.log" 2>&1) || {
        tail -n 30 "$BUILDDIR/qemu-tsan-configure.log" >&2
        echo "build-tsan: QEMU configure failed" >&2
        exit 1
    }
    echo "$want" >"$TSAN_BUILD/.vbp-conf"
fi
FW=$TSAN_BUILD/qemu-bundle/usr/local/share/qemu
mkdir -p "$FW"
for f in /usr/share/seabios/*.bin /usr/share/qemu/*.bin /usr/share/qemu/*.rom \
         /usr/lib/ipxe/qemu/*.rom; do
    [ -e "$f" ] || continue
    [ -e "$FW/$(basename "$f")" ] || ln -s "$f" "$FW/$(basename "$f")"
done

start=$(date +%s)
echo "build-tsan: ninja in $TSAN_BUILD" >&2
ninja -C "$TSAN_BUILD" -j"$(nproc)" qemu-system-x86_64 \
    >"$BUILDDIR/ninja-tsan.log" 2>&1 || {
    grep -E "error|FAILED" "$BUILDDIR/ninja-tsan.log" | head -40 >&2
    echo "build-tsan: FAILED (see $BUILDDIR/ninja-tsan.log)" >&2
    exit 1
}
echo "build-tsan: done in $(( $(date +%s) - start )) s" >&2
echo "TSAN_BUILD=$TSAN_BUILD" >"$BUILDDIR/config-tsan.sh"
