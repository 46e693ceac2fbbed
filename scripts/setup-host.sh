#!/bin/bash
# Install what virtio-blk-poll needs on a Debian 12 host, idempotently.
#
# Extra apt suites (bookworm-backports for meson >= 1.5, liburing 2.9,
# pycotap; sid deb-src for the QEMU 10.2 source, whose index still lists
# 10.2.2 beside newer uploads) are derived from the machine's own Debian
# entry: no archive host name is written here.
#
# Usage: scripts/setup-host.sh [build|guest|libvirt|fuzz|ceph|all]...
set -euo pipefail

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { echo "setup-host: $*" >&2; }

# The URI of the machine's Debian main archive, read from its apt config.
debian_uri() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") s = 1 }
            /^$/ { if (s && u && !done) { print u; done = 1 } u = ""; s = 0 }
            END { if (s && u && !done) print u }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    return 1
}

setup_apt() {
    local list=/etc/apt/sources.list.d/virtio-blk-poll.sources
    local pref=/etc/apt/preferences.d/virtio-blk-poll
    local uri want
    uri=$(debian_uri) || { log "no bookworm entry found in apt sources"; exit 1; }
    want="Types: deb deb-src
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $uri
Suites: sid trixie bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    # Written again when an older version of this script wrote it
    if [ "$(cat "$list" 2>/dev/null)" != "$want" ]; then
        log "adding bookworm-backports, and sid, trixie and bookworm" \
            "(source only) from $uri"
        echo "$want" | $SUDO tee "$list" >/dev/null
        $SUDO tee "$pref" >/dev/null <<EOT
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=sid
Pin-Priority: 100
EOT
        $SUDO rm -f /var/lib/apt/lists/.vbp-updated
    fi
    if [ ! -e /var/lib/apt/lists/.vbp-updated ]; then
        $SUDO apt-get update -q >/dev/null
        $SUDO touch /var/lib/apt/lists/.vbp-updated
    fi
}

# pkg[/suite] ... : install those that are missing.
install_pkgs() {
    local missing=() p name suite
    for p in "$@"; do
        name=${p%%/*}
        if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null |
             grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    setup_apt
    log "installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null
}

BUILD_PKGS=(
    build-essential ninja-build pkg-config ccache dpkg-dev
    python3 python3-venv flex bison
    meson/bookworm-backports python3-pycotap/bookworm-backports
    liburing-dev
    libglib2.0-dev libpixman-1-dev zlib1g-dev libaio-dev libfdt-dev
    libzstd-dev librbd-dev librados-dev
    seabios qemu-system-data ipxe-qemu
    socat
)
# clang + libFuzzer/ASan/UBSan runtimes for the sanitizer/fuzz build
FUZZ_PKGS=(clang-14 libclang-rt-14-dev)
GUEST_PKGS=(busybox-static cpio lz4 xz-utils zstd python3-matplotlib linux-perf)
# A single-node Ceph cluster for the rbd test (tests/functional/ceph-cluster.sh:
# a monitor and one OSD, no manager needed)
CEPH_PKGS=(ceph-mon ceph-osd ceph-common)
# Every libvirt package by its suite: a mix of bookworm's 9.0 and
# bookworm-backports' 11.x does not install.
LIBVIRT_PKGS=()
for p in libvirt-daemon-system libvirt-clients libvirt-daemon \
         libvirt-daemon-driver-qemu libvirt0 libvirt-common \
         libvirt-daemon-common libvirt-daemon-log \
         libvirt-daemon-config-network libvirt-daemon-config-nwfilter \
         libvirt-daemon-driver-network libvirt-daemon-driver-nodedev \
         libvirt-daemon-driver-nwfilter libvirt-daemon-driver-secret \
         libvirt-daemon-driver-storage; do
    LIBVIRT_PKGS+=("$p/bookworm-backports")
done

[ $# -gt 0 ] || set -- build
for what in "$@"; do
    case "$what" in
    build) install_pkgs "${BUILD_PKGS[@]}" ;;
    guest) install_pkgs "${GUEST_PKGS[@]}" ;;
    libvirt) install_pkgs "${LIBVIRT_PKGS[@]}" ;;
    fuzz) install_pkgs "${FUZZ_PKGS[@]}" ;;
    ceph) install_pkgs "${CEPH_PKGS[@]}" ;;
    all) install_pkgs "${BUILD_PKGS[@]}" "${GUEST_PKGS[@]}" ;;
    apt) setup_apt ;;
    *) log "unknown set '$what'"; exit 1 ;;
    esac
done
