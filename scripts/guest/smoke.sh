#!/bin/bash
# End-to-end smoke check: the test guest writes a 256 MiB raw disk at
# random (4k, iodepth 16, io_uring) with verify=crc32c and reads it all
# back (fio's verify pass), once on virtio-blk-poll-pci and once on
# upstream virtio-blk-pci, both with num-queues=2 mapped to two IOThreads
# (iot0, iot1), aio=io_uring, cache.direct=on on a file in /dev/shm.
# Prints boot and job times, IOPS, guest interrupts and device kicks per
# I/O (for upstream, which counts no kicks, "~" marks the estimate from
# the IOThreads' eventfd reads).  Exits non-zero if either run fails (hang, verify error, ...).
#
# Usage: scripts/guest/smoke.sh [more run-guest.py options]
# The result documents are left in build/guest/smoke-<device>.json.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/build/guest
mkdir -p "$OUT"

# Writes about 25K random blocks (each once: fio's random map), then the
# verify pass reads them all back and checks their crc32c; about 5 s
# under TCG.
JOB=$OUT/smoke.fio
cat >"$JOB" <<'EOF'
[global]
ioengine=io_uring
bs=4k
iodepth=16
size=256M

[randwrite-verify]
rw=randwrite
io_size=96M
verify=crc32c
do_verify=1
verify_fatal=1
EOF

"$HERE/build-guest.sh"

status=0
for dev in virtio-blk-poll-pci virtio-blk-pci; do
    echo "smoke: $dev" >&2
    nice "$HERE/run-guest.py" --device "$dev" --iothreads 2 --num-queues 2 \
        --backend raw --disk-size 256M --job "randwrite-verify=$JOB" \
        --job-timeout 120 -o "$OUT/smoke-$dev.json" "$@" || status=$?
done

/usr/bin/python3 - "$OUT/smoke-virtio-blk-poll-pci.json" \
    "$OUT/smoke-virtio-blk-pci.json" <<'EOF'
import json
import sys

fmt = "%-20s %6s %6s %7s %8s %8s %9s %9s %10s %9s"
print(fmt % ("device", "boot_s", "job_s", "ios", "w_iops", "r_iops",
             "irqs/io", "kicks/io", "iot_us/io", "verify"))
for path in sys.argv[1:]:
    try:
        r = json.load(open(path))
    except (OSError, ValueError) as e:
        print("%s: no result (%s)" % (path, e))
        continue
    dev = r["config"]["device"]
    if not r["jobs"]:
        print("%-20s FAILED: %s" % (dev, r["error"]))
        continue
    j = r["jobs"][0]
    fj = j["fio"].get("jobs", [{}])[0]
    print(fmt % (dev, r.get("boot_s"), j["guest_seconds"], j["ios"],
                 fj.get("write", {}).get("iops", "-"),
                 fj.get("read", {}).get("iops", "-"),
                 j.get("irqs_per_io", "-"),
                 j.get("kicks_per_io", "~%s" % j.get("kicks_est_per_io")),
                 j["cpu"].get("iothread_us_per_io", "-"),
                 "ok" if not j["verify_errors"] and j["rc"] == 0
                 else "FAILED"))
    if not r["ok"]:
        print("   FAILED: %s" % r["error"])
EOF
exit $status
