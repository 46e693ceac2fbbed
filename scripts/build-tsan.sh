#!/bin/bash
# Build QEMU with the virtio-blk-poll series under ThreadSanitizer (clang,
# --enable-tsan) in build/qemu/build-tsan (scripts/build-clang.sh tsan):
# qemu-system-x86_64 for running the device qtests against it
# (scripts/run-qtests.sh --tsan REGEX, then scripts/tsan-summary.py).  Not
# part of the test suite (a TSan build and run take long on 2 cores); see
# docs/robustness.md for what it found.
#
#   scripts/build-tsan.sh [--no-deps]
exec "$(dirname "$0")/build-clang.sh" tsan "$@"
