#!/bin/bash
# The main job: build everything needed (QEMU with the series, the test
# guest), show a virtio-blk-poll disk as QEMU sees it, then boot a stock
# Linux guest on virtio-blk-poll and on upstream virtio-blk-pci and run the
# same fio job (4k random writes with crc32c verify, read back) on each:
# IOPS, kicks and interrupts per I/O side by side.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
"$TOP/scripts/build.sh"
# shellcheck source=/dev/null
. "$TOP/build/config.sh"

RUN=$(mktemp -d)
trap 'kill "$QPID" 2>/dev/null || true; rm -rf "$RUN"' EXIT
"$QEMU_BUILD/qemu-img" create -q -f raw "$RUN/disk.raw" 64M
"$QEMU_BUILD/qemu-system-x86_64" -machine q35 -accel tcg -smp 2 \
    -nodefaults -display none -name demo,debug-threads=on \
    -object iothread,id=iot0 \
    -blockdev driver=file,node-name=file0,filename="$RUN/disk.raw",aio=io_uring,cache.direct=on \
    -blockdev driver=raw,node-name=disk0,file=file0 \
    -device virtio-blk-poll,id=disk0,drive=disk0,iothread=iot0,serial=demo \
    -qmp unix:"$RUN/qmp.sock",server=on,wait=off -S &
QPID=$!
for _ in $(seq 50); do [ -S "$RUN/qmp.sock" ] && break; sleep 0.1; done

QMP="$TOP/scripts/qmp.py $RUN/qmp.sock"
echo "== QEMU $($QMP query-version | python3 -c 'import json,sys; v=json.load(sys.stdin)["qemu"]; print("%d.%d.%d" % (v["major"], v["minor"], v["micro"]))') with the virtio-blk-poll series"
echo "== -device virtio-blk-poll resolves to:"
$QMP qom-get '{"path": "disk0", "property": "type"}'
echo "== info qtree (the virtio device of the disk):"
$QMP hmp:"info qtree" | grep -A48 'dev: virtio-blk-poll-device'
echo "== per-queue counters (qom-get disk0 stats):"
$QMP qom-get '{"path": "disk0", "property": "stats"}' | python3 -m json.tool
echo "== IOThreads (query-iothreads):"
$QMP query-iothreads
$QMP quit >/dev/null || true
wait "$QPID" 2>/dev/null || true

echo "== a Linux guest on virtio-blk-poll, then on virtio-blk-pci (TCG, -smp 2)"
"$TOP/scripts/guest/smoke.sh"
