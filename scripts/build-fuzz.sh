#!/bin/bash
# Build the sanitizer/fuzzing variant of QEMU with the virtio-blk-poll
# series: clang, ASan + UBSan (--enable-asan --enable-ubsan), libFuzzer
# (--enable-fuzzing), in its own build directory beside the normal one
# (build/qemu/build-fuzz).  It produces
#   qemu-fuzz-x86_64      the libFuzzer binary with the virtio-blk-poll
#                         fuzz targets (tests/qtest/fuzz/virtio_blk_poll_fuzz.c)
#   qemu-system-x86_64    the same emulator under ASan/UBSan, for running
#                         qtests and guests against it
#
#   scripts/build-fuzz.sh [--no-deps]
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

FUZZ_BUILD=$QEMU_SRC_DIR/build-fuzz
CC=clang-14 CXX=clang++-14
if command -v ccache >/dev/null; then
    CC="ccache $CC" CXX="ccache $CXX"
fi
CONF=(
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-kvm --enable-tcg --enable-linux-io-uring --enable-linux-aio
    --enable-fuzzing --enable-asan --enable-ubsan
    --disable-docs --disable-install-blobs --disable-werror
    "--cc=$CC" "--cxx=$CXX" --python=/usr/bin/python3
)
want="${CONF[*]}"
if [ ! -f "$FUZZ_BUILD/build.ninja" ] ||
   [ "$(cat "$FUZZ_BUILD/.vbp-conf" 2>/dev/null)" != "$want" ]; then
    echo "build-fuzz: configuring $FUZZ_BUILD: $want" >&2
    rm -rf "$FUZZ_BUILD"
    mkdir -p "$FUZZ_BUILD"
    (cd "$FUZZ_BUILD" && ../configure "${CONF[@]}" \
        >"$BUILDDIR/qemu-fuzz-configure.log" 2>&1) || {
        tail -n 30 "$BUILDDIR/qemu-fuzz-configure.log" >&2
        echo "build-fuzz: QEMU configure failed" >&2
        exit 1
    }
    echo "$want" >"$FUZZ_BUILD/.vbp-conf"
fi
# firmware, as for the normal build
FW=$FUZZ_BUILD/qemu-bundle/usr/local/share/qemu
mkdir -p "$FW"
for f in /usr/share/seabios/*.bin /usr/share/qemu/*.bin /usr/share/qemu/*.rom \
         /usr/lib/ipxe/qemu/*.rom; do
    [ -e "$f" ] || continue
    [ -e "$FW/$(basename "$f")" ] || ln -s "$f" "$FW/$(basename "$f")"
done

start=$(date +%s)
echo "build-fuzz: ninja in $FUZZ_BUILD" >&2
ninja -C "$FUZZ_BUILD" -j"$(nproc)" qemu-fuzz-x86_64 qemu-system-x86_64 \
    >"$BUILDDIR/ninja-fuzz.log" 2>&1 || {
    grep -E "error|FAILED" "$BUILDDIR/ninja-fuzz.log" | head -40 >&2
    echo "build-fuzz: FAILED (see $BUILDDIR/ninja-fuzz.log)" >&2
    exit 1
}
echo "build-fuzz: done in $(( $(date +%s) - start )) s" >&2
echo "FUZZ_BUILD=$FUZZ_BUILD" >"$BUILDDIR/config-fuzz.sh"
