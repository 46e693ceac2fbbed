#!/usr/bin/python3
"""Boot the test guest with one virtio-blk disk, run fio jobs, report.

run-guest.py boots build/guest/vmlinuz + initramfs (scripts/guest/
build-guest.sh builds them; this script runs it when they are missing or
older than their sources) under TCG with one virtio-blk disk, either
upstream `virtio-blk-pci` or `virtio-blk-poll-pci`, runs the given fio job
files in the guest one after the other and prints a JSON document with,
for each job:

  fio          IOPS, bandwidth, lat_ns percentiles, I/O count, errors
  guest_irqs   delta of the guest's /proc/interrupts lines of the disk
               (virtioN-req.M), with irqs_per_io
  blk_requests requests the guest's block layer completed (/sys/block/vdX/
               stat delta: reads + writes + discards + flushes)
  device_stats delta of the device's `stats` counters, per queue and
               summed, with kicks_per_io (virtio-blk-poll only)
  kicks_est    read() calls of the IOThreads: ioeventfd wakeups (kicks
               taken) plus the IOThread's own notifier reads.  Equal to
               virtio-blk-poll's "kicks" in our runs; for upstream
               virtio-blk, which counts none, an upper bound.
  cpu          CPU time (utime+stime, and run time from schedstat) of the
               IOThreads, the vCPU threads, QEMU's main thread and all of
               QEMU during the job
  verify_errors  fio verify failures seen (then the run fails)
  syscalls     with --syscalls: system calls of QEMU's threads during the
               job, counted by `perf stat` on the syscall tracepoints
               (io_uring_enter, ppoll, epoll_pwait, read, write, all), for
               the whole process and for the serving IOThreads, with
               per-I/O ratios

How the host and guest stay in step: the per-run archive appended to the
initramfs holds /job/run.sh, which the guest's /init sources.  Around each
job the guest prints ===VBP-READY name=== and ===VBP-DONE name=== on
ttyS0 and waits for one line on ttyS0's input; the runner takes its QMP
and /proc snapshots when it sees a marker and only then answers, so the
host counters bracket exactly the job (and the guest's own snapshots of
/proc/interrupts, taken right before and after fio).

While it runs, <run dir>/qmp-user.sock is a QMP socket free for other
clients (scripts/qmp.py); the console log is <run dir>/serial.log.
The code is tests/functional/vbp_test (runner.py), the harness every
guest test uses.

Failures: a job that outlives its timeout trips the guest's watchdog,
which prints blk-mq debugfs state, /proc/interrupts and dmesg and powers
off; if the guest says nothing for longer than that, the runner queries
QMP (query-status, the device's stats, x-query-virtio-queue-status of each
queue, query-iothreads), kills QEMU and reports.  Exit status: 0 all jobs
passed, 1 a job failed (fio error, verify error), 2 hang, timeout or guest
failure, 3 bad arguments or set-up error.

Example (two IOThreads, one per queue, the smoke job of smoke.sh):

  scripts/guest/run-guest.py --device virtio-blk-poll-pci --iothreads 2 \\
      --num-queues 2 --backend raw --disk-size 256M --job rw=job.fio

Module parameters for the guest's virtio_blk (e.g. poll queues) go with
--blk-params poll_queues=1.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True            # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "functional"))
from vbp_test import runner  # noqa: E402


def main():
    cfg = runner.options(doc=__doc__)
    try:
        result = runner.run(cfg)
    except runner.Failure as e:
        print("run-guest: %s" % e, file=sys.stderr)
        return e.code
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        print("run-guest: set-up failed: %s" % e, file=sys.stderr)
        return 3
    text = json.dumps(result, indent=1)
    if cfg.output:
        with open(cfg.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return result["exit"]


if __name__ == "__main__":
    sys.exit(main())
