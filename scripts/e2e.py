#!/usr/bin/python3
"""End-to-end tests: a stock Linux guest (TCG) runs fio on virtio-blk-poll.

Each case boots the test guest (scripts/guest/) once with one disk
configuration, runs fio jobs with verify=crc32c where data is involved,
and checks the result documents of scripts/guest/run-guest.py:

  raw-fast      raw file, io_uring path, 2 queues on 2 IOThreads, -smp 2
  raw-upstream  the same job on upstream virtio-blk-pci, for comparison
  qcow2         qcow2 image: the block layer path
  null          null-co, 4k random reads QD32
  poll-queue    guest virtio_blk.poll_queues=1, fio io_uring hipri on the
                polled queue: that queue must see no interrupt at all
  packed        packed virtqueues (packed=on)

Prints a line per check, a table of kicks and interrupts per I/O, and
"N passed, N failed" last.  Exits 1 if a check failed.
Usage: scripts/e2e.py [--only CASE[,CASE]] [--out DIR]
"""

import argparse
import json
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_GUEST = os.path.join(TOP, "scripts", "guest", "run-guest.py")

VERIFY_JOB = """
[global]
ioengine=io_uring
bs=4k
iodepth=32
size=128M

[randrw-verify]
rw=randwrite
io_size=48M
verify=crc32c
do_verify=1
verify_fatal=1
"""

READ_QD32_JOB = """
[randread-qd32]
ioengine=io_uring
rw=randread
bs=4k
iodepth=32
time_based=1
runtime=3
"""

HIPRI_JOB = """
[global]
ioengine=io_uring
hipri=1
bs=4k
size=64M

[hipri-write-verify]
rw=randwrite
iodepth=16
io_size=16M
verify=crc32c
do_verify=1
verify_fatal=1
"""

CASES = {
    "raw-fast": dict(device="virtio-blk-poll-pci", backend="raw",
                     job=("randrw-verify", VERIFY_JOB)),
    "raw-upstream": dict(device="virtio-blk-pci", backend="raw",
                         job=("randrw-verify", VERIFY_JOB)),
    "qcow2": dict(device="virtio-blk-poll-pci", backend="qcow2",
                  job=("randrw-verify", VERIFY_JOB)),
    "null": dict(device="virtio-blk-poll-pci", backend="null",
                 job=("randread-qd32", READ_QD32_JOB)),
    "poll-queue": dict(device="virtio-blk-poll-pci", backend="raw",
                       job=("hipri-write-verify", HIPRI_JOB),
                       extra=["--blk-params", "poll_queues=1"]),
    "packed": dict(device="virtio-blk-poll-pci", backend="raw",
                   job=("randrw-verify", VERIFY_JOB),
                   extra=["--device-prop", "packed=true"]),
}


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                           (": " + detail) if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def run_case(name, case, out):
    job_name, job_text = case["job"]
    job_file = os.path.join(out, "%s.fio" % name)
    with open(job_file, "w") as f:
        f.write(job_text)
    result = os.path.join(out, "%s.json" % name)
    cmd = [sys.executable, RUN_GUEST, "--device", case["device"],
           "--iothreads", "2", "--num-queues", "2", "--smp", "2",
           "--backend", case["backend"], "--disk-size", "256M",
           "--job", "%s=%s" % (job_name, job_file), "--job-timeout", "180",
           "-o", result] + case.get("extra", [])
    print("e2e: %s: %s" % (name, " ".join(cmd[1:])), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    try:
        with open(result) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {"ok": False, "error": proc.stderr[-2000:], "jobs": []}
    doc["_rc"] = proc.returncode
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
    return doc


def queues(job):
    return (job.get("device_stats") or {}).get("queues", [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated cases")
    ap.add_argument("--out", default=os.path.join(TOP, "build", "e2e"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = args.only.split(",") if args.only else list(CASES)

    subprocess.run([os.path.join(TOP, "scripts", "guest", "build-guest.sh")],
                   check=True, stdout=subprocess.DEVNULL)
    c = Checker()
    docs = {}
    for name in names:
        doc = docs[name] = run_case(name, CASES[name], args.out)
        job = doc["jobs"][0] if doc.get("jobs") else {}
        c.check("%s: guest ran the job" % name,
                doc.get("ok") and doc["_rc"] == 0 and job.get("rc") == 0,
                str(doc.get("error") or ""))
        if "verify" in CASES[name]["job"][1]:
            c.check("%s: 0 verify errors" % name,
                    job.get("verify_errors") == 0 and job.get("ios", 0) > 0,
                    "verify_errors=%s ios=%s" % (job.get("verify_errors"),
                                                  job.get("ios")))
        qs = queues(job)
        if CASES[name]["device"] != "virtio-blk-poll-pci" or not qs:
            continue
        fast = sum(q.get("fast-rw", 0) for q in qs)
        fallback = sum(q.get("fallback-rw", 0) for q in qs)
        if CASES[name]["backend"] == "raw":
            c.check("%s: io_uring path served the I/O" % name,
                    fast > 0 and qs[0].get("path") == "io_uring",
                    "fast-rw=%d fallback-rw=%d path=%s" %
                    (fast, fallback, qs[0].get("path")))
        elif CASES[name]["backend"] == "qcow2":
            c.check("%s: block layer served the I/O" % name,
                    fast == 0 and fallback > 0,
                    "fast-rw=%d fallback-rw=%d" % (fast, fallback))
        if name == "poll-queue":
            # Queue 1 is the polled one: no MSI-X vector, and the guest
            # must take no interrupt for it.  With EVENT_IDX the device
            # must ignore VRING_AVAIL_F_NO_INTERRUPT and follow used_event,
            # which Linux leaves at 0 on a poll queue: that asks for one
            # interrupt at the first completion, and none for the next
            # 65535 (the device counts it; the guest never sees it).
            polled = qs[1]
            guest = sum(n for irq, n in (job.get("guest_irqs") or {}).items()
                        if irq.endswith("req.1"))
            c.check("poll-queue: polled queue served the I/O, the guest saw "
                    "0 interrupts for it",
                    polled.get("requests", 0) > 0 and guest == 0 and
                    polled.get("notifies", 99) <= 1 and
                    polled.get("notifies-suppressed", 0) > 0,
                    "requests=%s guest-irqs=%s notifies=%s suppressed=%s" %
                    (polled.get("requests"), guest, polled.get("notifies"),
                     polled.get("notifies-suppressed")))

    # Kicks per I/O under the same sustained QD32 load, same run
    if "raw-fast" in docs and "raw-upstream" in docs:
        pj = (docs["raw-fast"].get("jobs") or [{}])[0]
        uj = (docs["raw-upstream"].get("jobs") or [{}])[0]
        pk, uk = pj.get("kicks_per_io"), uj.get("kicks_est_per_io")
        c.check("kicks per I/O well below upstream's (same run)",
                pk is not None and uk is not None and pk < 0.5 * uk,
                "virtio-blk-poll %s, virtio-blk-pci ~%s" % (pk, uk))

    print("\n%-14s %-20s %8s %9s %9s %10s" % ("case", "device", "ios",
                                              "kicks/io", "irqs/io",
                                              "iot_ms/kio"))
    summary = {}
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
        print("%-14s %-20s %8s %9s %9s %10s" % (
            name, CASES[name]["device"], ios, kicks,
            job.get("irqs_per_io"),
            "%.1f" % (iot * 1e6 / ios) if ios else "-"))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
