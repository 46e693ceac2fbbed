#!/usr/bin/python3
"""End-to-end tests: a stock Linux guest (TCG) runs fio on virtio-blk-poll.

Each case boots the test guest once with one disk configuration, runs a
fio job (verify=crc32c where data is involved) and checks its result
document (vbp_test.runner, as scripts/guest/run-guest.py prints it):

  raw-fast      raw file, io_uring path, 2 queues on 2 IOThreads, -smp 2
  raw-upstream  the same job on upstream virtio-blk-pci, for comparison
  qcow2         qcow2 image: the block layer path
  null          null-co, 4k random reads QD32
  poll-queue    guest virtio_blk.poll_queues=1, fio io_uring hipri on the
                polled queue: that queue must see no interrupt at all
  packed        packed virtqueues (packed=true)
  bad-prop      a -device property QEMU refuses: the run fails with QEMU's
                own message, not a lost QMP session
  map-stress    the guest switches the AHCI controller's memory decoding on
                and off in a loop (a new memory map each time) while fio
                runs on both vCPUs: no vCPU may resolve a TLB entry in
                another map than its own (patch 0004; without it the guest
                hangs or QEMU aborts within seconds)

Prints a line per check, a table of kicks and interrupts per I/O, and
"N passed, N failed" last.  Exits 1 if a check failed.
Usage: tests/functional/test_e2e.py [--only CASE[,CASE]] [--out DIR] [--list]
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import fio, machine, runner, suite  # noqa: E402
from vbp_test.suite import Case  # noqa: E402

POLL = "virtio-blk-poll-pci"
VERIFY = dict(rw="randwrite", io_size="48M", verify="crc32c", do_verify=1,
              verify_fatal=1)
VERIFY_JOB = ("randrw-verify", fio.job(
    [("randrw-verify", VERIFY)], ioengine="io_uring", bs="4k", iodepth=32,
    size="128M"))
READ_JOB = ("randread-qd32", fio.job(
    [("randread-qd32", dict(ioengine="io_uring", rw="randread", bs="4k",
                            iodepth=32, time_based=1, runtime=3))]))
STRESS_JOB = ("randread-stress", fio.job(
    [("randread-stress", dict(ioengine="io_uring", rw="randread", bs="4k",
                              iodepth=8, time_based=1, runtime=20))]))
# Memory decoding of the (unused) AHCI controller off and on, in a loop in
# the background: each write of the PCI command register maps or unmaps
# its BAR, a new FlatView each time
MAP_STRESS = (
    'D=/sys/bus/pci/devices/0000:00:1f.2/config; '
    'c=$(dd if=$D bs=1 skip=4 count=1 2>/dev/null | od -An -tx1 | '
    'tr -d " "); echo "map-stress: command register $c"; '
    '( while :; do '
    'printf "\\000" | dd of=$D bs=1 seek=4 count=1 conv=notrunc 2>/dev/null; '
    'printf "\\x$c" | dd of=$D bs=1 seek=4 count=1 conv=notrunc 2>/dev/null; '
    'done ) &')
HIPRI_JOB = ("hipri-write-verify", fio.job(
    [("hipri-write-verify", dict(VERIFY, iodepth=16, io_size="16M"))],
    ioengine="io_uring", hipri=1, bs="4k", size="64M"))


def run_case(ctx):
    """One boot with the case's disk, its fio job, its checks."""
    case = ctx.case
    job_name, job_text = case.job
    argv = ["--device", case.device, "--iothreads", "2",
            "--num-queues", "2", "--smp", "2", "--backend", case.backend,
            "--disk-size", "256M", "--job-timeout", "180",
            "--run-root", os.path.join(ctx.out, "runs")] + case.extra
    print("e2e: %s: %s" % (case.name, " ".join(argv)), flush=True)
    cfg = runner.options(argv)
    cfg.jobs_inline = [{"name": job_name, "text": job_text}]
    try:
        doc = runner.run(cfg)
    except (runner.Failure, OSError, ValueError) as e:
        doc = {"ok": False, "error": str(e), "jobs": []}
    with open(os.path.join(ctx.out, "%s.json" % case.name), "w") as f:
        json.dump(doc, f, indent=1)
    ctx.docs[case.name] = doc
    check_case(ctx.checks, case, doc)


def check_case(c, case, doc):
    name = case.name
    job = doc["jobs"][0] if doc.get("jobs") else {}
    c.check("%s: guest ran the job" % name,
            doc.get("ok") and job.get("rc") == 0, str(doc.get("error") or ""))
    if "verify" in case.job[1]:
        c.check("%s: 0 verify errors" % name,
                job.get("verify_errors") == 0 and job.get("ios", 0) > 0,
                "verify_errors=%s ios=%s" % (job.get("verify_errors"),
                                              job.get("ios")))
    qs = (job.get("device_stats") or {}).get("queues", [])
    if case.device != POLL or not qs:
        return
    fast = sum(q.get("fast-rw", 0) for q in qs)
    fallback = sum(q.get("fallback-rw", 0) for q in qs)
    if case.backend == "raw":
        c.check("%s: io_uring path served the I/O" % name,
                fast > 0 and qs[0].get("path") == "io_uring",
                "fast-rw=%d fallback-rw=%d path=%s" %
                (fast, fallback, qs[0].get("path")))
    elif case.backend == "qcow2":
        c.check("%s: block layer served the I/O" % name,
                fast == 0 and fallback > 0,
                "fast-rw=%d fallback-rw=%d" % (fast, fallback))
    if name == "poll-queue":
        # Queue 1 is the polled one: no MSI-X vector, and the guest must
        # take no interrupt for it.  With EVENT_IDX the device must ignore
        # VRING_AVAIL_F_NO_INTERRUPT and follow used_event, which Linux
        # leaves at 0 on a poll queue: virtio_notify() "signals" at the
        # first completion and each 65536th; the device knows the queue
        # has no vector, counts none of them as notifies and takes the
        # queue for a polled one from its first request.
        polled = qs[1]
        guest = sum(n for irq, n in (job.get("guest_irqs") or {}).items()
                    if irq.endswith("req.1"))
        c.check("poll-queue: polled queue served the I/O, the guest saw "
                "0 interrupts for it, the device signalled none",
                polled.get("requests", 0) > 0 and guest == 0 and
                polled.get("notifies", 99) == 0 and
                polled.get("notifies-suppressed", 0) > 0,
                "requests=%s guest-irqs=%s notifies=%s suppressed=%s" %
                (polled.get("requests"), guest, polled.get("notifies"),
                 polled.get("notifies-suppressed")))


def run_bad_prop(ctx):
    """QEMU exits at start-up: the failure must carry what it printed."""
    argv = ["--device", POLL, "--iothreads", "2", "--backend", "null",
            "--disk-size", "256M", "--device-prop", "x-iothread-poll=maybe",
            "--run-root", os.path.join(ctx.out, "runs")]
    cfg = runner.options(argv)
    cfg.jobs_inline = [{"name": READ_JOB[0], "text": READ_JOB[1]}]
    try:
        doc = runner.run(cfg)
        err = "" if doc.get("ok") else str(doc.get("error"))
    except (runner.Failure, OSError, ValueError) as e:
        err = str(e)
    ctx.checks.check("bad-prop: the failure quotes QEMU's error",
                     "Invalid parameter type for 'x-iothread-poll'" in err,
                     err[-300:])


def boot(name, device, backend, job, extra=()):
    """A case: one boot on @device over a @backend disk, fio @job."""
    return Case(name, run_case, device=device, backend=backend, job=job,
                extra=list(extra))


CASES = [
    boot("raw-fast", POLL, "raw", VERIFY_JOB),
    boot("raw-upstream", "virtio-blk-pci", "raw", VERIFY_JOB),
    boot("qcow2", POLL, "qcow2", VERIFY_JOB),
    boot("null", POLL, "null", READ_JOB),
    boot("poll-queue", POLL, "raw", HIPRI_JOB,
         ["--blk-params", "poll_queues=1"]),
    boot("packed", POLL, "raw", VERIFY_JOB, ["--device-prop", "packed=true"]),
    Case("bad-prop", run_bad_prop, device=POLL),
    boot("map-stress", POLL, "null", STRESS_JOB,
         ["--guest-setup", MAP_STRESS, "--job-timeout", "60",
          # both vCPUs on one host CPU: a vCPU is slow to take the TLB
          # flush that a map change queues for it, as on a loaded host
          "--pin-vcpus", "0", "--pin-iothreads", "1", "--pin-main", "1"]),
]


def setup(ctx):
    machine.guest_files(rebuild=True)
    ctx.docs = {}


def teardown(ctx):
    """The kicks of both raw cases compared, a table, summary.json."""
    if not ctx.completed:
        return
    c, docs = ctx.checks, ctx.docs
    # Kicks per I/O under the same sustained QD32 load, same run
    if "raw-fast" in docs and "raw-upstream" in docs:
        pj = (docs["raw-fast"].get("jobs") or [{}])[0]
        uj = (docs["raw-upstream"].get("jobs") or [{}])[0]
        pk, uk = pj.get("kicks_per_io"), uj.get("kicks_est_per_io")
        c.check("kicks per I/O well below upstream's (same run)",
                pk is not None and uk is not None and pk < 0.5 * uk,
                "virtio-blk-poll %s, virtio-blk-pci ~%s" % (pk, uk))

    row = "%-14s %-20s %8s %9s %9s %10s"
    print("\n" + row % ("case", "device", "ios", "kicks/io", "irqs/io",
                        "iot_ms/kio"))
    summary, device = {}, {case.name: case.device for case in CASES}
    for name, doc in docs.items():
        job = (doc.get("jobs") or [{}])[0]
        kicks = job.get("kicks_per_io")
        if kicks is None and job.get("kicks_est_per_io") is not None:
            kicks = "~%.4f" % job["kicks_est_per_io"]
        iot = sum(t.get("cpu_s", 0) for t in
                  (job.get("cpu") or {}).get("iothreads", {}).values())
        ios = job.get("ios") or 0
        summary[name] = dict(ios=ios, kicks_per_io=kicks,
                             irqs_per_io=job.get("irqs_per_io"),
                             iothread_ms_per_1000_io=(iot * 1e6 / ios
                                                      if ios else None))
        print(row % (name, device[name], ios, kicks,
                     job.get("irqs_per_io"),
                     "%.1f" % (iot * 1e6 / ios) if ios else "-"))
    with open(os.path.join(ctx.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, setup=setup, teardown=teardown,
                        out="e2e"))
