#!/bin/bash
# Build the Linux guest used by the end-to-end tests of virtio-blk-poll:
#
#   build/guest/vmlinuz              Debian's linux-image-6.1.0-*-cloud-amd64
#   build/guest/initramfs.cpio       busybox-static, a static fio built from
#                                    Debian's fio source, the virtio modules,
#                                    and scripts/guest/init as /init
#   build/guest/guest.json           what was built from what (run-guest.py
#                                    reads the paths from it)
#
# Everything comes from Debian packages by name (apt-get download/source,
# apt-get install of the host tools); nothing is installed from elsewhere
# and the kernel package is only unpacked, never installed.  Each step is
# cached under build/guest and redone only when its inputs change (new
# kernel package version, new fio source, changed /init, ...).
#
# Usage: scripts/guest/build-guest.sh [--force]
# Environment:
#   VBP_GUEST_DIR      output directory (default build/guest)
#   VBP_GUEST_KERNEL   kernel package to use (default: the newest
#                      linux-image-6.1.0-N-cloud-amd64 apt-cache knows)
#   VBP_INITRD_COMPRESS  none|gzip|lz4|zstd (default none: under TCG
#                      decompressing costs more than the bigger load)
set -euo pipefail
shopt -s nullglob

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${VBP_GUEST_DIR:-$ROOT/build/guest}
COMPRESS=${VBP_INITRD_COMPRESS:-none}
case "$COMPRESS" in
none | gzip | lz4 | zstd) ;;
*) echo "VBP_INITRD_COMPRESS must be none, gzip, lz4 or zstd" >&2; exit 1 ;;
esac
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { echo "build-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }

# fio's optional engines and libraries are all off: the guest only needs
# psync, libaio and io_uring (fio's io_uring engine issues the system calls
# itself, it does not link liburing).
FIO_CONFIGURE=(--build-static --disable-native --disable-numa --disable-rdma
    --disable-rados --disable-rbd --disable-http --disable-gfapi
    --disable-libnfs --disable-lex --disable-pmem --disable-xnvme
    --disable-libzbc --disable-tcmalloc --disable-dfs)

# Host tools this script uses.  libaio-dev and zlib1g-dev ship the static
# libraries (libaio.a, libz.a) the static fio links.
HOST_PKGS=(busybox-static dpkg-dev build-essential libaio-dev zlib1g-dev
    lz4 zstd xz-utils python3)

# The virtio stack, in the order /init loads it.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
    virtio_pci virtio_blk)

install_host_pkgs() {
    local missing=() p
    for p in "${HOST_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# sha256 of the given files and strings, for the stamps below.
key_of() {
    local x
    for x in "$@"; do
        if [ -f "$x" ]; then sha256sum <"$x"; else echo "$x"; fi
    done | sha256sum | cut -d' ' -f1
}

# stamp_ok FILE KEY: the step that wrote FILE's stamp used the same inputs.
stamp_ok() {
    [ "$FORCE" = 0 ] && [ -e "$1" ] && [ -f "$1.stamp" ] &&
        [ "$(cat "$1.stamp")" = "$2" ]
}
stamp_set() { echo "$2" >"$1.stamp"; }

# apt-get download/source as root warn that the _apt user cannot write
# here; that is harmless, keep it out of the log.
apt_quiet() { "$@" 2> >(grep -v "unsandboxed as root" >&2); }

# ---------------------------------------------------------------- kernel
# Candidates, newest first: the package named in VBP_GUEST_KERNEL, or every
# linux-image-6.1.0-N-cloud-amd64 apt-cache knows, by ABI number.
kernel_candidates() {
    if [ -n "${VBP_GUEST_KERNEL:-}" ]; then
        echo "$VBP_GUEST_KERNEL"
        return
    fi
    apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' |
        awk '{ print $1 }' | sort -V -r
}

# Sets KPKG, KVER (the package version), KREL (uname -r) and KROOT (the
# unpacked package); downloads and unpacks the package if needed.
fetch_kernel() {
    local cands debs deb pkg ver
    mapfile -t cands < <(kernel_candidates)
    if [ ${#cands[@]} -eq 0 ]; then
        "$ROOT/scripts/setup-host.sh" apt
        mapfile -t cands < <(kernel_candidates)
    fi
    [ ${#cands[@]} -gt 0 ] || die "apt-cache knows no linux-image-6.1.0-*-cloud-amd64"
    mkdir -p "$OUT/dl"
    for pkg in "${cands[@]}"; do
        ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
              awk '/^Version:/ { print $2; exit }')
        [ -n "$ver" ] || continue
        debs=("$OUT/dl/${pkg}_${ver//:/%3a}_"*.deb)
        if [ ${#debs[@]} -eq 0 ]; then
            log "downloading $pkg $ver"
            if ! (cd "$OUT/dl" && apt_quiet apt-get download -q "$pkg=$ver" >/dev/null); then
                log "could not download $pkg $ver, trying an older one"
                continue
            fi
            debs=("$OUT/dl/${pkg}_${ver//:/%3a}_"*.deb)
            [ ${#debs[@]} -gt 0 ] || die "apt-get download left no .deb"
        fi
        deb=${debs[0]}
        KPKG=$pkg
        KVER=$ver
        KREL=${pkg#linux-image-}
        KROOT=$OUT/kernel/${pkg}_$ver
        if [ ! -f "$KROOT/.unpacked" ]; then
            log "unpacking $(basename "$deb")"
            rm -rf "$KROOT"
            mkdir -p "$KROOT"
            dpkg-deb -x "$deb" "$KROOT"
            touch "$KROOT/.unpacked"
        fi
        [ -f "$KROOT/boot/vmlinuz-$KREL" ] || die "no boot/vmlinuz-$KREL in $deb"
        return 0
    done
    die "no kernel package could be downloaded"
}

# Copies the virtio modules to $1, decompressing them if the package ships
# them compressed (the initramfs has no tools for that).
copy_modules() {
    local dst=$1 m f
    mkdir -p "$dst"
    for m in "${MODULES[@]}"; do
        f=$(find "$KROOT/lib/modules/$KREL/kernel" -name "$m.ko*" | head -n1)
        [ -n "$f" ] || die "$m.ko not found in $KPKG (built in? then drop it from MODULES)"
        case "$f" in
        *.ko) cp "$f" "$dst/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$dst/$m.ko" ;;
        *.ko.zst) zstd -q -dc "$f" >"$dst/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$dst/$m.ko" ;;
        *) die "unknown module format: $f" ;;
        esac
    done
}

# ------------------------------------------------------------------- fio
# Prints "SPEC DSC": the source package spec to fetch and its .dsc name.
# bookworm's fio is preferred (it matches the host's static libraries);
# whatever version apt picks by default is the fallback.
fio_source() {
    local spec dsc
    for spec in fio/bookworm fio; do
        dsc=$(apt-get source --print-uris -q "$spec" 2>/dev/null |
              awk '$2 ~ /\.dsc$/ { print $2; exit }')
        [ -n "$dsc" ] && { echo "$spec $dsc"; return 0; }
    done
    return 1
}

# Sets FIO_BIN; builds a static fio from Debian's fio source if needed.
build_fio() {
    local spec dsc dir srcdirs srcdir key
    FIO_BIN=$OUT/fio/fio
    read -r spec dsc < <(fio_source) || die "apt knows no fio source package (deb-src?)"
    dir=$OUT/src/${dsc%.dsc}
    if [ ! -f "$dir/.unpacked" ]; then
        log "fetching source package $spec ($dsc)"
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && apt_quiet apt-get source -q "$spec" >/dev/null) ||
            die "apt-get source $spec failed"
        touch "$dir/.unpacked"
    fi
    srcdirs=("$dir"/fio-*/)
    [ ${#srcdirs[@]} -gt 0 ] || die "no fio-* directory in $dir"
    srcdir=${srcdirs[0]%/}
    key=$(key_of "$dsc" "${FIO_CONFIGURE[*]}" "$(gcc --version | head -n1)" \
          "$(dpkg-query -W libaio-dev zlib1g-dev libc6-dev)")
    stamp_ok "$FIO_BIN" "$key" && return 0
    log "building a static fio in $srcdir (about a minute)"
    (
        cd "$srcdir"
        make -s clean >/dev/null 2>&1 || true
        nice ./configure "${FIO_CONFIGURE[@]}" >"$OUT/fio-configure.log" 2>&1 ||
            { tail -n 20 "$OUT/fio-configure.log"; exit 1; }
        grep -Eq '^Linux AIO support +yes' "$OUT/fio-configure.log" ||
            { echo "fio: configure found no libaio"; exit 1; }
        nice make -j"$(nproc)" fio >"$OUT/fio-make.log" 2>&1 ||
            { tail -n 30 "$OUT/fio-make.log"; exit 1; }
    ) || die "fio build failed (logs in $OUT/fio-*.log)"
    mkdir -p "$OUT/fio"
    strip -o "$FIO_BIN.tmp" "$srcdir/fio"
    # It must not need any shared library: the guest has none.
    if readelf -l "$FIO_BIN.tmp" | grep -q INTERP; then
        die "fio is not static"
    fi
    mv "$FIO_BIN.tmp" "$FIO_BIN"
    stamp_set "$FIO_BIN" "$key"
    log "fio: $("$FIO_BIN" --version), $(stat -c %s "$FIO_BIN") bytes"
}

# ------------------------------------------------------------- initramfs
# stdin to stdout, compressed as VBP_INITRD_COMPRESS says.  A compressed
# base works too: run-guest.py puts its small archive in front of it
# (LZ4's legacy format, the one the kernel reads, runs to the end).
compress() {
    case "$COMPRESS" in
    none) cat ;;
    gzip) gzip -9n ;;
    lz4) lz4 -l -9 -q ;;
    zstd) zstd -q -19 ;;
    esac
}

build_initramfs() {
    local initrd key stage applet
    case "$COMPRESS" in
    none) initrd=$OUT/initramfs.cpio ;;
    gzip) initrd=$OUT/initramfs.cpio.gz ;;
    zstd) initrd=$OUT/initramfs.cpio.zst ;;
    *) initrd=$OUT/initramfs.cpio.$COMPRESS ;;
    esac
    INITRD=$initrd
    key=$(key_of "$HERE/init" "$HERE/mkcpio.py" /bin/busybox "$FIO_BIN" \
          "$KPKG=$KVER" "${MODULES[*]}" "$COMPRESS")
    stamp_ok "$initrd" "$key" && return 0
    log "building $(basename "$initrd")"
    stage=$OUT/initramfs.d
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,dev,proc,sys,tmp,job,lib/modules,root}
    cp /bin/busybox "$stage/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
    done
    cp "$FIO_BIN" "$stage/bin/fio"
    install -m 755 "$HERE/init" "$stage/init"
    copy_modules "$stage/lib/modules"
    # /dev/console must exist before devtmpfs is mounted, or /init starts
    # without stdin/stdout.
    python3 "$HERE/mkcpio.py" --node dev/console:c:5:1 "$stage" "$OUT/initramfs.cpio.raw"
    compress <"$OUT/initramfs.cpio.raw" >"$initrd.tmp"
    rm -f "$OUT/initramfs.cpio.raw"
    mv "$initrd.tmp" "$initrd"
    stamp_set "$initrd" "$key"
    log "$(basename "$initrd"): $(stat -c %s "$initrd") bytes"
}

write_manifest() {
    local tmp=$OUT/guest.json.tmp
    cat >"$tmp" <<EOF
{
  "kernel": "$OUT/vmlinuz",
  "initrd": "$INITRD",
  "kernel_package": "$KPKG",
  "kernel_version": "$KVER",
  "kernel_release": "$KREL",
  "fio": "$("$FIO_BIN" --version)",
  "busybox": "$(/bin/busybox | head -n1 | awk '{ print $2 }')",
  "modules": "${MODULES[*]}"
}
EOF
    if ! cmp -s "$tmp" "$OUT/guest.json"; then mv "$tmp" "$OUT/guest.json"; else rm -f "$tmp"; fi
}

main() {
    mkdir -p "$OUT"
    # bookworm-backports and deb-src entries (for apt-get source); this is
    # idempotent and quick once done.
    "$ROOT/scripts/setup-host.sh" apt
    install_host_pkgs
    fetch_kernel
    if ! cmp -s "$KROOT/boot/vmlinuz-$KREL" "$OUT/vmlinuz"; then
        cp "$KROOT/boot/vmlinuz-$KREL" "$OUT/vmlinuz"
        log "vmlinuz: $KPKG $KVER"
    fi
    build_fio
    build_initramfs
    write_manifest
    log "up to date: $OUT/vmlinuz $INITRD"
}

main "$@"
