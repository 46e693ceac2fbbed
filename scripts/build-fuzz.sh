#!/bin/bash
# Build the sanitizer/fuzzing variant of QEMU with the virtio-blk-poll
# series: clang, ASan + UBSan, libFuzzer, in build/qemu/build-fuzz
# (scripts/build-clang.sh fuzz).  It produces
#   qemu-fuzz-x86_64      the libFuzzer binary with the virtio-blk-poll
#                         fuzz targets (tests/qtest/fuzz/virtio_blk_poll_fuzz.c)
#   qemu-system-x86_64    the same emulator under ASan/UBSan, for running
#                         qtests and guests against it
#
#   scripts/build-fuzz.sh [--no-deps]
exec "$(dirname "$0")/build-clang.sh" fuzz "$@"
