#!/usr/bin/python3
"""Durability of guest writes on write-through disks, against upstream.

Seen from outside: a stock Linux guest (TCG) writes to a raw image on
ext4, and the host kernel's ext4:ext4_sync_file_enter tracepoint (perf
stat -a) counts how many of those writes were made durable (RWF_DSYNC,
fdatasync) before they completed.  virtio-blk-poll (io_uring fast path)
and upstream virtio-blk-pci run the same job in the same run:

  off       write-cache=off: the disk is write-through, every write must
            be durable when it completes (about one sync event a write)
  on        the default write-back cache: plain writes (about none)
  guest-wt  write cache on, but the guest turns it off first
            (echo "write through" > /sys/block/vda/cache_type, which
            writes the config's wce byte): durable again

The image lives in /var/tmp (ext4 on these machines; the test says so and
fails if not).  Prints a line per check, a table of sync events per guest
write, and "N passed, N failed" last.  Exits 1 if a check failed.

Usage: tests/functional/test_durability.py [--out DIR] [--only MODE[,MODE]]
                                           [--list]
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import fio, machine, runner, suite  # noqa: E402
from vbp_test.suite import Case  # noqa: E402

DISK_DIR = "/var/tmp"
EVENT = "ext4:ext4_sync_file_enter"
JOB = fio.job([("write-qd8", dict(ioengine="io_uring", rw="randwrite",
                                  bs="4k", iodepth=8, size="64M",
                                  io_size="4M"))])
DEVICES = ("virtio-blk-poll-pci", "virtio-blk-pci")


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], check=True,
                         capture_output=True, text=True).stdout
    return out.strip()


def run(device, mode, out):
    """One guest run with perf stat -a counting the host's sync events."""
    tag = "%s-%s" % (mode.name, "poll" if "poll" in device else "upstream")
    argv = ["--device", device, "--iothreads", "1", "--num-queues", "2",
            "--smp", "2", "--backend", "raw", "--disk-size", "64M",
            "--disk-dir", DISK_DIR, "--job-timeout", "180",
            "--run-root", os.path.join(out, "runs")]
    for p in mode.props:
        argv += ["--device-prop", p]
    for s in mode.guest_setup:
        argv += ["--guest-setup", s]
    cfg = runner.options(argv)
    cfg.jobs_inline = [{"name": "write-qd8", "text": JOB}]
    perf_out = os.path.join(out, tag + ".perf")
    perf = subprocess.Popen(["perf", "stat", "-a", "-x,", "-e", EVENT,
                             "-o", perf_out], stderr=subprocess.PIPE,
                            text=True)
    try:
        doc = runner.run(cfg)
    except (runner.Failure, OSError, ValueError) as e:
        doc = {"ok": False, "error": str(e), "jobs": []}
    finally:
        perf.send_signal(2)
        _, err = perf.communicate(timeout=30)
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
    doc["_stderr"] = (str(doc.get("error") or "") + " " + err)[-2000:]
    return tag, doc


def run_mode(ctx):
    """The case's mode on each device: sync events per guest write."""
    c, mode = ctx.checks, ctx.case
    for device in DEVICES:
        tag, doc = run(device, mode, ctx.out)
        job = (doc.get("jobs") or [{}])[0]
        writes = job.get("ios") or 0        # all of them writes
        ok = doc.get("ok") and job.get("rc") == 0
        c.check("%s: guest ran the job" % tag, ok and writes > 0,
                "" if ok else doc["_stderr"])
        syncs = doc["_syncs"]
        per = syncs / writes if syncs is not None and writes else None
        if mode.durable:
            good = per is not None and per >= 0.95
            want = "every write durable (>= 0.95 syncs a write)"
        else:
            good = per is not None and per <= 0.05
            want = "plain writes (<= 0.05 syncs a write)"
        c.check("%s: %s" % (tag, want), good,
                "%s sync events for %d writes" % (syncs, writes))
        qs = (job.get("device_stats") or {}).get("queues") or []
        if "poll" in device:
            fast = sum(q.get("fast-rw", 0) for q in qs)
            slow = sum(q.get("fallback-rw", 0) for q in qs)
            fua = sum(q.get("fast-fua", 0) for q in qs)
            # Counted per submission: adjacent writes that virtio-blk
            # merged count once, so compare with fast-rw, not writes
            c.check("%s: the io_uring path served the writes, %s" % (
                    tag, "all durable" if mode.durable else "none durable"),
                    fast > 0 and slow == 0 and
                    fua == (fast if mode.durable else 0),
                    "fast-rw=%d fallback-rw=%d fast-fua=%d" % (
                        fast, slow, fua))
        ctx.rows.append((tag, writes, syncs, per))


CASES = [
    Case("off", run_mode, props=["write-cache=off"], guest_setup=[],
         durable=True),
    Case("on", run_mode, props=[], guest_setup=[], durable=False),
    Case("guest-wt", run_mode, props=[], durable=True, guest_setup=[
        'echo "write through" > /sys/block/vda/cache_type']),
]


def setup(ctx):
    machine.guest_files(rebuild=True)
    fs = fs_type(DISK_DIR)
    ctx.checks.check("%s is on ext4 (the tracepoint counts ext4 syncs)" %
                     DISK_DIR, fs == "ext2/ext3", "file system type %s" % fs)
    ctx.rows = []


def teardown(ctx):
    """A table of sync events per guest write."""
    if not ctx.completed:
        return
    print("\n%-20s %8s %8s %10s" % ("run", "writes", EVENT.split(":")[1],
                                     "per write"))
    for tag, writes, syncs, per in ctx.rows:
        print("%-20s %8s %8s %10s" % (tag, writes, syncs,
                                      "%.3f" % per if per is not None
                                      else "-"))


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, setup=setup, teardown=teardown,
                        out="durability"))
