#!/bin/bash
# Host CPU per request of upstream virtio-blk-pci, virtio-blk-poll's
# io_uring path and its block layer path: the same qtest-driven workload
# in the same run (4 KiB random reads from a page-cached raw file, bursts
# of 16, aio=io_uring, IOThread without polling), 3 rounds alternating.
# Prints each round and a median table (ms of serving-IOThread CPU per
# 1000 requests, from /proc/.../schedstat).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
cd "$QEMU_BUILD"
export QTEST_QEMU_BINARY=./qemu-system-x86_64
VBP_MEASURE=1 ./tests/qtest/qos-test -p /x86_64/virtio-blk-poll-measure/host-cost 2>&1 |
    sed -n 's/^# MEASURE //p' | tee /dev/stderr |
    python3 -c '
import re, statistics, sys
rows = {}
for line in sys.stdin:
    cfg = re.search(r"config=\"([^\"]+)\"", line).group(1)
    ms = float(re.search(r"iothread_ms_per_1000=([0-9.]+)", line).group(1))
    rows.setdefault(cfg, []).append(ms)
base = statistics.median(rows["virtio-blk-pci"])
print("| configuration | IOThread CPU ms / 1000 req (median) | rounds | vs virtio-blk-pci |")
print("| --- | --- | --- | --- |")
for cfg, v in rows.items():
    m = statistics.median(v)
    print("| %s | %.2f | %s | %.2fx |" % (cfg, m, " ".join("%.2f" % x for x in v), m / base))
'
