#!/bin/bash
# Build a clang variant of QEMU with the virtio-blk-poll series in its own
# build directory beside the normal one (build/qemu/build-KIND):
#
#   scripts/build-clang.sh fuzz [--no-deps]
#       ASan + UBSan + libFuzzer (build-fuzz): qemu-fuzz-x86_64 with the
#       virtio-blk-poll fuzz targets (tests/qtest/fuzz/virtio_blk_poll_fuzz.c)
#       and qemu-system-x86_64 under ASan/UBSan, for qtests and guests
#   scripts/build-clang.sh tsan [--no-deps]
#       ThreadSanitizer (build-tsan): qemu-system-x86_64 for the device
#       qtests (scripts/run-qtests.sh --tsan REGEX; not part of the suite,
#       see docs/robustness.md)
#
# scripts/build-fuzz.sh and scripts/build-tsan.sh call this.  Each writes
# build/config-KIND.sh naming its directory (FUZZ_BUILD=, TSAN_BUILD=).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: build-clang.sh fuzz|tsan [--no-deps]}
shift

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

case "$kind" in
fuzz)
    VAR=FUZZ_BUILD
    ACCEL=(--enable-kvm)
    FEATURES=(--enable-fuzzing --enable-asan --enable-ubsan)
    TARGETS=(qemu-fuzz-x86_64 qemu-system-x86_64)
    ;;
tsan)
    VAR=TSAN_BUILD
    ACCEL=()
    FEATURES=(--enable-tsan)
    TARGETS=(qemu-system-x86_64)
    ;;
*)
    echo "build-clang: unknown kind '$kind' (fuzz or tsan)" >&2
    exit 1
    ;;
esac
DIR=$QEMU_SRC_DIR/build-$kind
CC=clang-14 CXX=clang++-14
if command -v ccache >/dev/null; then
    CC="ccache $CC" CXX="ccache $CXX"
fi
CONF=(
    --target-list=x86_64-softmmu
    --without-default-features
    "${ACCEL[@]}" --enable-tcg --enable-linux-io-uring --enable-linux-aio
    "${FEATURES[@]}"
    --disable-docs --disable-install-blobs --disable-werror
    "--cc=$CC" "--cxx=$CXX" --python=/usr/bin/python3
)
want="${CONF[*]}"
if [ ! -f "$DIR/build.ninja" ] ||
   [ "$(cat "$DIR/.vbp-conf" 2>/dev/null)" != "$want" ]; then
    echo "build-$kind: configuring $DIR: $want" >&2
    rm -rf "$DIR"
    mkdir -p "$DIR"
    (cd "$DIR" && ../configure "${CONF[@]}" \
        >"$BUILDDIR/qemu-$kind-configure.log" 2>&1) || {
        tail -n 30 "$BUILDDIR/qemu-$kind-configure.log" >&2
        echo "build-$kind: QEMU configure failed" >&2
        exit 1
    }
    echo "$want" >"$DIR/.vbp-conf"
fi
# firmware, as for the normal build
FW=$DIR/qemu-bundle/usr/local/share/qemu
mkdir -p "$FW"
for f in /usr/share/seabios/*.bin /usr/share/qemu/*.bin /usr/share/qemu/*.rom \
         /usr/lib/ipxe/qemu/*.rom; do
    [ -e "$f" ] || continue
    [ -e "$FW/$(basename "$f")" ] || ln -s "$f" "$FW/$(basename "$f")"
done

start=$(date +%s)
echo "build-$kind: ninja in $DIR" >&2
ninja -C "$DIR" -j"$(nproc)" "${TARGETS[@]}" \
    >"$BUILDDIR/ninja-$kind.log" 2>&1 || {
    grep -E "error|FAILED" "$BUILDDIR/ninja-$kind.log" | head -40 >&2
    echo "build-$kind: FAILED (see $BUILDDIR/ninja-$kind.log)" >&2
    exit 1
}
echo "build-$kind: done in $(( $(date +%s) - start )) s" >&2
echo "$VAR=$DIR" >"$BUILDDIR/config-$kind.sh"
