#!/usr/bin/python3
"""Durability of guest writes, seen from outside: a stock Linux guest
(TCG) writes to a raw image on ext4, and the host kernel's
ext4:ext4_sync_file_enter tracepoint (perf stat -a) counts how many of
those writes were made durable (RWF_DSYNC, fdatasync) before they
completed.  virtio-blk-poll (io_uring fast path) and upstream
virtio-blk-pci run the same job in the same run:

  off       write-cache=off: the disk is write-through, every write must
            be durable when it completes (about one sync event a write)
  on        the default write-back cache: plain writes (about none)
  guest-wt  write cache on, but the guest turns it off first
            (echo "write through" > /sys/block/vda/cache_type, which
            writes the config's wce byte): durable again

The image lives in /var/tmp (ext4 on these machines; the test says so and
fails if not).  Prints a line per check, a table of sync events per guest
write, and "N passed, N failed" last.  Exits 1 if a check failed.

Usage: scripts/durability.py [--out DIR] [--only MODE[,MODE]]
"""

import argparse
import json
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_GUEST = os.path.join(TOP, "scripts", "guest", "run-guest.py")
DISK_DIR = "/var/tmp"
EVENT = "ext4:ext4_sync_file_enter"

JOB = """
[write-qd8]
ioengine=io_uring
rw=randwrite
bs=4k
iodepth=8
size=64M
io_size=4M
"""

MODES = {
    "off": dict(props=["write-cache=off"], setup=[], durable=True),
    "on": dict(props=[], setup=[], durable=False),
    "guest-wt": dict(props=[], durable=True, setup=[
        'echo "write through" > /sys/block/vda/cache_type']),
}
DEVICES = ("virtio-blk-poll-pci", "virtio-blk-pci")


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], check=True,
                         capture_output=True, text=True).stdout
    return out.strip()


def run(device, mode, out):
    m = MODES[mode]
    tag = "%s-%s" % (mode, "poll" if "poll" in device else "upstream")
    job_file = os.path.join(out, "job.fio")
    with open(job_file, "w") as f:
        f.write(JOB)
    result = os.path.join(out, tag + ".json")
    perf_out = os.path.join(out, tag + ".perf")
    cmd = [sys.executable, RUN_GUEST, "--device", device,
           "--iothreads", "1", "--num-queues", "2", "--smp", "2",
           "--backend", "raw", "--disk-size", "64M", "--disk-dir", DISK_DIR,
           "--job", "write-qd8=" + job_file, "--job-timeout", "180",
           "-o", result]
    for p in m["props"]:
        cmd += ["--device-prop", p]
    for s in m["setup"]:
        cmd += ["--guest-setup", s]
    perf = ["perf", "stat", "-a", "-x,", "-e", EVENT, "-o", perf_out, "--"]
    proc = subprocess.run(perf + cmd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    try:
        with open(result) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {"ok": False, "jobs": []}
    doc["_rc"] = proc.returncode
    doc["_stderr"] = proc.stderr[-2000:]
    syncs = None
    try:
        with open(perf_out) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2] == EVENT:
                    syncs = int(fields[0])
    except (OSError, ValueError):
        pass
    doc["_syncs"] = syncs
    return tag, doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(TOP, "build", "durability"))
    ap.add_argument("--only", help="comma-separated modes")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    modes = args.only.split(",") if args.only else list(MODES)
    subprocess.run([os.path.join(TOP, "scripts", "guest", "build-guest.sh")],
                   check=True, stdout=subprocess.DEVNULL)
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                           (": " + detail) if detail else ""), flush=True)
        if ok:
            passed += 1
        else:
            failed += 1

    fs = fs_type(DISK_DIR)
    check("%s is on ext4 (the tracepoint counts ext4 syncs)" % DISK_DIR,
          fs == "ext2/ext3", "file system type %s" % fs)
    rows = []
    for mode in modes:
        for device in DEVICES:
            tag, doc = run(device, mode, args.out)
            job = (doc.get("jobs") or [{}])[0]
            writes = job.get("ios") or 0        # all of them writes
            ok = doc.get("ok") and doc["_rc"] == 0 and job.get("rc") == 0
            check("%s: guest ran the job" % tag, ok and writes > 0,
                  "" if ok else doc["_stderr"])
            syncs = doc["_syncs"]
            per = syncs / writes if syncs is not None and writes else None
            if MODES[mode]["durable"]:
                good = per is not None and per >= 0.95
                want = "every write durable (>= 0.95 syncs a write)"
            else:
                good = per is not None and per <= 0.05
                want = "plain writes (<= 0.05 syncs a write)"
            check("%s: %s" % (tag, want), good,
                  "%s sync events for %d writes" % (syncs, writes))
            qs = (job.get("device_stats") or {}).get("queues") or []
            if "poll" in device:
                fast = sum(q.get("fast-rw", 0) for q in qs)
                slow = sum(q.get("fallback-rw", 0) for q in qs)
                fua = sum(q.get("fast-fua", 0) for q in qs)
                # Counted per submission: adjacent writes that virtio-blk
                # merged count once, so compare with fast-rw, not writes
                check("%s: the io_uring path served the writes, %s" % (
                      tag, "all durable" if MODES[mode]["durable"]
                      else "none durable"),
                      fast > 0 and slow == 0 and
                      fua == (fast if MODES[mode]["durable"] else 0),
                      "fast-rw=%d fallback-rw=%d fast-fua=%d" % (
                          fast, slow, fua))
            rows.append((tag, writes, syncs, per))
    print("\n%-20s %8s %8s %10s" % ("run", "writes", EVENT.split(":")[1],
                                    "per write"))
    for tag, writes, syncs, per in rows:
        print("%-20s %8s %8s %10s" % (tag, writes, syncs,
                                      "%.3f" % per if per is not None
                                      else "-"))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
