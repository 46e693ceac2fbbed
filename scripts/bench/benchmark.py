#!/usr/bin/python3
"""Upstream virtio-blk-pci against virtio-blk-poll, side by side, one run.

Boots the test guest (scripts/guest/run-guest.py, TCG) once per
configuration (A upstream, B upstream with poll-max-ns=200000, C
virtio-blk-poll, D virtio-blk-poll with guest polling), backend and round,
runs every workload and then an idle phase in that boot, and reports each
metric as the ratio to A, taken within each round, with its spread over the
rounds.  Results go to build/bench/<time>/ (or --out): raw/, jobs/,
runs.json, results.json, results.md and PNG plots (report.py).  What is
measured and how: docs/benchmark.md.
"""
import argparse
import datetime
import functools
import json
import mmap
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "functional"))
sys.path.insert(0, HERE)
from vbp_test import counters, fio, paths  # noqa: E402
from vbp_test.checks import log as checks_log  # noqa: E402
import report  # noqa: E402
from report import IDLE, IDLE_METRICS, METRICS, OTHERS_WARN  # noqa: E402

RUN_GUEST = os.path.join(paths.ROOT, "scripts", "guest", "run-guest.py")
PYTHON = "/usr/bin/python3"
log = functools.partial(checks_log, "bench")

CONFIGS = {
    "A": {"label": "upstream", "long": "virtio-blk-pci, default polling",
          "args": ["--device", "virtio-blk-pci"]},
    "B": {"label": "upstream poll-max-ns=200000",
          "long": "virtio-blk-pci, IOThread poll-max-ns=200000",
          "args": ["--device", "virtio-blk-pci",
                   "--iothread-props", "poll-max-ns=200000"]},
    "C": {"label": "virtio-blk-poll", "long": "virtio-blk-poll-pci, defaults",
          "args": ["--device", "virtio-blk-poll-pci"]},
    # The guest polls its completions (docs/system/devices/
    # virtio-blk-poll.rst, "Guest polling"): a poll queue, fio hipri
    "D": {"label": "virtio-blk-poll, guest polls",
          "long": "virtio-blk-poll-pci, guest virtio_blk.poll_queues=1 and "
                  "fio hipri=1 (io_uring IOPOLL)",
          "args": ["--device", "virtio-blk-poll-pci",
                   "--blk-params", "poll_queues=1"],
          "fio_extra": "hipri=1\n"},
}
# name -> (fio options, direction for the latency, description)
WORKLOADS = {
    "randread-qd1": ("rw=randread bs=4k iodepth=1 norandommap=1", "read",
                     "4k random read, QD1"),
    "randread-qd4": ("rw=randread bs=4k iodepth=4 norandommap=1", "read",
                     "4k random read, QD4"),
    "randread-qd32": ("rw=randread bs=4k iodepth=32 norandommap=1", "read",
                      "4k random read, QD32"),
    "randwrite-qd32": ("rw=randwrite bs=4k iodepth=32 norandommap=1",
                       "write", "4k random write, QD32"),
    "randrw-qd16": ("rw=randrw rwmixread=70 bs=4k iodepth=16 norandommap=1",
                    "read", "4k random 70/30 read/write, QD16 (latency: "
                    "reads)"),
    "seqread-64k": ("rw=read bs=64k iodepth=16", "read",
                    "64k sequential read, QD16"),
}
QUICK_WORKLOADS = ["randread-qd1", "randread-qd32"]


# ------------------------------------------------------------ the host
def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def cpu_list(cpus, sep=","):
    return sep.join(str(c) for c in cpus)


def pin_layout(cpus, smp, niot):
    """vCPUs and serving IOThreads on different host CPUs where possible:
    (pin_vcpus, pin_iothreads, pin_main, words), None on one CPU.  With
    enough CPUs every vCPU and every IOThread gets one of its own and the
    main thread the next; with fewer, the IOThreads (and the main thread,
    which does little here) share a part and the vCPUs the rest (on 2
    CPUs: the vCPUs on the first, the rest on the second)."""
    n = len(cpus)
    if n < 2:
        return None
    if n >= smp + niot:
        v, i = cpus[:smp], cpus[smp:smp + niot]
        m = [cpus[smp + niot]] if n > smp + niot else i
        return (cpu_list(v, ":"), cpu_list(i, ":"), cpu_list(m),
                "each vCPU and each IOThread on a CPU of its own")
    k = max(1, n * niot // (smp + niot))
    v, i = cpus[:n - k], cpus[n - k:]
    return (cpu_list(v, ":" if len(v) == smp else ","),
            cpu_list(i, ":" if len(i) == niot else ","), cpu_list(i),
            "vCPUs on CPU(s) %s, IOThreads and main thread on CPU(s) %s"
            % (cpu_list(v), cpu_list(i)))


def odirect_ok(directory):
    """True when a file in directory can be opened and written O_DIRECT."""
    path = os.path.join(directory, ".vbp-bench-odirect-%d" % os.getpid())
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600)
        try:
            buf = mmap.mmap(-1, 4096)
            buf.write(b"x" * 4096)
            return os.write(fd, buf) == 4096
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError:
        return False


def make_image(path, size):
    """A raw image full of data (so reads copy pages, not holes)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for left in range(size, 0, -len(block)):
            f.write(block[:min(left, len(block))])


def machine_info():
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.splitlines()[0] if out else None
    info = {"nproc": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "kernel": platform.release(), "accel": "tcg"}
    with open("/proc/cpuinfo") as f:
        info.update([("cpu_model", line.split(":", 1)[1].strip())
                     for line in f if line.startswith("model name")][:1])
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") *
                               os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    info["qemu"] = first_line([paths.QEMU, "--version"])
    info["repo"] = first_line(["git", "-C", paths.ROOT, "describe",
                               "--always", "--dirty"])
    info["kvm_device"] = os.path.exists("/dev/kvm")
    return info


class LoadSampler(threading.Thread):
    """Host CPU use each second, split into ours (this script, run-guest,
    QEMU) and everybody else's (a compile running beside us, ...)."""

    def __init__(self, interval=1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples = []             # (t, busy_cpus, ours_cpus)
        self.stop_ev = threading.Event()

    @staticmethod
    def _sample():
        """(time, busy ticks of the host, CPU ticks of our process
        tree)"""
        t = time.monotonic()
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        procs, kids = {}, {}
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fld = st[st.rindex(")") + 2:].split()
            procs[int(d)] = sum(int(x) for x in fld[11:15])
            kids.setdefault(int(fld[1]), []).append(int(d))
        ours, todo = 0, [os.getpid()]
        while todo:
            p = todo.pop()
            ours += procs.get(p, 0)
            todo += kids.get(p, [])
        return t, sum(v[:8]) - v[3] - (v[4] if len(v) > 4 else 0), ours

    def run(self):
        prev, tck = None, counters.CLK_TCK
        while not self.stop_ev.is_set():
            try:
                cur = self._sample()
            except (OSError, ValueError):
                cur = None
            if prev and cur:
                dt = cur[0] - prev[0]
                self.samples.append((cur[0], (cur[1] - prev[1]) / tck / dt,
                                     max(0.0, (cur[2] - prev[2]) / tck / dt)))
            prev = cur
            self.stop_ev.wait(self.interval)

    def window(self, t0, t1):
        """Mean busy CPUs and others' CPUs between two monotonic times."""
        s = [x for x in self.samples if t0 <= x[0] <= t1 + self.interval]
        other = [max(0.0, x[1] - x[2]) for x in s]
        return {"busy_cpus": round(statistics.mean(x[1] for x in s), 2),
                "others_cpus": round(statistics.mean(other), 2),
                "others_max_cpus": round(max(other), 2)} if s else None


# ------------------------------------------------------------ running
def write_jobs(args, jobs_dir):
    """The fio job files (D's own, with hipri, in jobs/D/): {config: its
    --job arguments of run-guest.py}."""
    job_args = {}
    for c in args.configs:
        extra = CONFIGS[c].get("fio_extra", "")
        sub = os.path.join(jobs_dir, c) if extra else jobs_dir
        os.makedirs(sub, exist_ok=True)
        jobs = []
        for w in args.workloads:
            opts = {"ioengine": "io_uring", "time_based": 1,
                    "runtime": args.runtime}
            opts.update(o.split("=") for o in
                        (WORKLOADS[w][0] + " " + extra).split())
            jobs.append((w, sub, opts))
        if args.idle > 0:
            # The exec engine runs a program instead of doing I/O; fio's
            # own overhead stays in the guest, the disk sees nothing.
            jobs.append((IDLE, jobs_dir, {
                "ioengine": "exec", "program": "/bin/sleep",
                "arguments": args.idle, "time_based": 1,
                "runtime": args.idle, "grace_time": 0}))
        job_args[c] = []
        for name, d, opts in jobs:
            with open(os.path.join(d, name + ".fio"), "w") as f:
                f.write(fio.job([(name, opts)]))
            job_args[c] += ["--job", "%s=%s" % (name, f.name)]
    return job_args


def run_one(cmd, log_path, prefix):
    """Runs run-guest.py, echoing its per-job lines; returns exit status."""
    with open(log_path, "w") as logf:
        logf.write("$ %s\n" % shlex.join(cmd))
        logf.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            logf.write(line)
            logf.flush()
            log(prefix + line.rstrip().removeprefix("run-guest: "))
        return p.wait()


def boot(cmd, out, base, where, attempt, sampler):
    """One boot of run-guest.py: (its entry in runs.json, seconds)."""
    t0, la = time.monotonic(), loadavg()
    path = os.path.join(out, "raw", base + ".json")
    rc = run_one(cmd + ["-o", path], os.path.join(out, "raw", base + ".log"),
                 "    %s " % where["config"])
    t1 = time.monotonic()
    entry = dict(where, file=os.path.relpath(path, out), exit=rc,
                 attempt=attempt, seconds=round(t1 - t0, 1),
                 loadavg_before=la, load=sampler.window(t0, t1))
    try:
        with open(path) as f:
            doc = json.load(f)
        entry["error"], entry["boot_s"] = doc.get("error"), doc.get("boot_s")
    except (OSError, ValueError) as e:
        doc, entry["error"] = None, "no result document: %s" % e
    entry["ok"] = rc == 0 and doc is not None and doc.get("ok")
    if entry["load"]:
        log("    %s done in %s (host busy %.2f CPUs, others %.2f)" % (
            entry["config"], report.fmt_s(t1 - t0),
            entry["load"]["busy_cpus"], entry["load"]["others_cpus"]))
    return entry, t1 - t0


def run_benchmark(args, out):
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    job_args = write_jobs(args, os.path.join(out, "jobs"))
    pin, pin_words = None, "no pinning"
    if args.pin == "auto":
        lay = pin_layout(sorted(os.sched_getaffinity(0)), args.smp,
                         args.iothreads)
        if lay:
            pin, pin_words = lay[:3], lay[3]
    elif args.pin != "none":
        parts = dict(p.split("=", 1) for p in args.pin.split(";"))
        pin = (parts.get("vcpus"), parts.get("iothreads"), parts.get("main"))
        pin_words = args.pin
    common = [PYTHON, RUN_GUEST, "--iothreads", str(args.iothreads),
              "--num-queues", str(args.num_queues), "--mapping", "vq",
              "--smp", str(args.smp), "--mem", args.mem,
              "--job-timeout", str(max(args.runtime, args.idle) + 60)]
    common += ["--syscalls"] if args.syscalls else []
    for opt, val in zip(("--pin-vcpus", "--pin-iothreads", "--pin-main"),
                        pin or ()):
        common += [opt, val] if val else []
    for extra in args.run_guest_arg:
        common += shlex.split(extra)
    images, backend_args = {}, {}
    for b in args.backends:
        if b == "null":
            backend_args[b] = ["--backend", "null", "--disk-size",
                               str(args.disk_size)]
            continue
        d = "/dev/shm" if b == "shm" else args.disk_dir
        path = images[b] = os.path.join(d, "vbp-bench-%d-%s.img" % (
            os.getpid(), b))
        log("filling %s (%d MiB) ..." % (path, args.disk_size >> 20))
        make_image(path, args.disk_size)
        backend_args[b] = ["--backend", "raw", "--disk-path", path]

    plan = [(r, b, c) for r in range(1, args.rounds + 1)
            for b in args.backends for c in args.configs]
    meta = {"command": shlex.join(sys.argv),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine_info(), "pinning": pin_words,
            "pin_args": pin, "options": {
                k: v for k, v in vars(args).items() if k != "report"},
            "configs": CONFIGS, "workloads": {
                w: {"fio": WORKLOADS[w][0].replace(" ", "\n") + "\n",
                    "lat_dir": WORKLOADS[w][1], "what": WORKLOADS[w][2]}
                for w in args.workloads},
            "common_args": common[2:], "backend_args": backend_args,
            "loadavg_start": loadavg()}
    log("%d boots (%d rounds x %d backends x %d configs), %d workloads of "
        "%ds + %ds idle per boot; pinning: %s" % (
            len(plan), args.rounds, len(args.backends), len(args.configs),
            len(args.workloads), args.runtime, args.idle, pin_words))
    log("results in %s" % out)
    sampler = LoadSampler()
    sampler.start()
    runs, done_s = [], []
    t_start = time.monotonic()
    est_boot = 12 + len(args.workloads) * (args.runtime + 3) + \
        (args.idle + 3 if args.idle else 0)
    try:
        for n, (r, b, c) in enumerate(plan, 1):
            per = statistics.mean(done_s) if done_s else est_boot
            log("[%d/%d] round %d/%d, backend %s, config %s (%s); elapsed "
                "%s, ETA %s" % (n, len(plan), r, args.rounds, b, c,
                                CONFIGS[c]["label"],
                                report.fmt_s(time.monotonic() - t_start),
                                report.fmt_s(per * (len(plan) - n + 1))))
            base = "r%d-%s-%s" % (r, b, c)
            cmd = common + CONFIGS[c]["args"] + backend_args[b] + job_args[c]
            for attempt in range(1, max(args.retries, 0) + 2):
                e, secs = boot(cmd, out, base, {"round": r, "backend": b,
                                                "config": c}, attempt, sampler)
                runs.append(e)
                if e["ok"] or attempt > args.retries:
                    break
                failed = os.path.join(out, "raw", "%s.fail%d" % (base,
                                                                 attempt))
                for ext in (".json", ".log"):
                    if os.path.exists(os.path.join(out, "raw", base + ext)):
                        os.rename(os.path.join(out, "raw", base + ext),
                                  failed + ext)
                e["file"] = os.path.relpath(failed + ".json", out)
                log("    FAILED (exit %s: %s); raw files kept as %s.*; "
                    "again" % (e["exit"], e["error"], failed))
            done_s.append(secs)
            # Kept up to date, so that --report works on a run cut short.
            with open(os.path.join(out, "runs.json"), "w") as f:
                json.dump({"meta": meta, "runs": runs}, f, indent=1)
    finally:
        sampler.stop_ev.set()
        for path in images.values():
            try:
                os.unlink(path)
            except OSError:
                pass
    meta["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    meta["loadavg_end"] = loadavg()
    meta["load"] = sampler.window(t_start, time.monotonic())
    with open(os.path.join(out, "runs.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=1)
    return meta, runs


# ------------------------------------------------------ per-job metrics
def job_metrics(job, lat_dir):
    """The numbers of one fio job of one boot (@lat_dir None: the idle
    phase, with its CPU use in % of one CPU)."""
    ios = job.get("ios") or 0
    m = {"ios": ios}
    iops, lat = 0.0, None
    for fj in job.get("fio", {}).get("jobs", []):
        iops += sum(fj[d]["iops"] for d in ("read", "write", "trim")
                    if d in fj)
        lat = lat or fj.get(lat_dir) or fj.get("read") or fj.get("write")
    m["iops"] = round(iops, 1)
    for p in ("50", "99", "99.9"):
        if lat and p in lat.get("lat_ns", {}):
            m["lat_p%s_us" % p] = round(lat["lat_ns"][p] / 1000, 1)
    if "kicks_per_io" in job:                 # the device's own counter
        m["kicks_per_io"] = job["kicks_per_io"]
        m["kicks_estimated"] = False
        if "kicks_est_per_io" in job:
            m["kicks_est_per_io"] = job["kicks_est_per_io"]
    elif "kicks_est_per_io" in job:           # IOThread eventfd reads
        m["kicks_per_io"] = job["kicks_est_per_io"]
        m["kicks_estimated"] = True
    if "irqs_per_io" in job:
        m["irqs_per_io"] = job["irqs_per_io"]
    cpu = job.get("cpu", {})
    iot = sum(v.get("run_s", v.get("cpu_s", 0))
              for v in cpu.get("iothreads", {}).values() if v)
    vcpu = sum(v.get("run_s", v.get("cpu_s", 0))
               for v in cpu.get("vcpus", []) if v)
    m["iot_cpu_s"], m["vcpu_cpu_s"] = round(iot, 4), round(vcpu, 4)
    m["qemu_cpu_s"] = cpu.get("qemu_total_s")
    if ios:
        m["iot_cpu_s_per_kio"] = round(iot * 1000 / ios, 5)
        m["vcpu_cpu_s_per_kio"] = round(vcpu * 1000 / ios, 5)
    if ios and m["qemu_cpu_s"]:
        m["iops_per_qemu_cpu_s"] = round(ios / m["qemu_cpu_s"], 1)
    sc = (job.get("syscalls") or {}).get("process_per_io")
    if sc:
        m["uring_enter_per_io"] = sc.get("io_uring_enter", 0)
        m["wait_per_io"] = round(sc.get("ppoll", 0) +
                                 sc.get("epoll_pwait", 0), 4)
        m["syscalls_per_io"] = sc.get("all", 0)
    m["host_s"] = job.get("host_seconds")
    m["blk_requests"] = job.get("blk_requests")
    st = (job.get("device_stats") or {}).get("total")
    if st:
        for k in ("requests", "kicks", "notifies"):
            m["device_" + k] = st.get(k)
        if st.get("used-updates"):
            m["requests_per_batch"] = round(
                st.get("requests", 0) / st["used-updates"], 2)
        m["poll_ms"] = round(st.get("poll-ns", 0) / 1e6, 1)
        for k in ("wakeups", "fast-rw", "fallback-rw"):
            m[k.replace("-", "_")] = st.get(k)
        m["polling_after"] = [q.get("polling") for q in
                              job["device_stats"].get("queues", [])]
    secs = job.get("host_seconds")
    for k in ("iot", "vcpu", "qemu") if lat_dir is None and secs else ():
        if m.get(k + "_cpu_s") is not None:
            m[k + "_cpu_pct"] = round(m[k + "_cpu_s"] * 100 / secs, 2)
    return m


def spread(values):
    v = [x for x in values if x is not None]
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "n": len(v)} if v else None


def aggregate(out, meta, runs):
    """results.json: per backend, workload, metric and config the values
    of every round, their median/min/max, and the per-round ratio to A."""
    per = {}      # (backend, config, round) -> {workload: metrics}
    for e in runs:
        if not e.get("ok"):
            continue
        with open(os.path.join(out, e["file"])) as f:
            doc = json.load(f)
        per[(e["backend"], e["config"], e["round"])] = {
            j["name"]: job_metrics(j, None if j["name"] == IDLE else
                                   WORKLOADS[j["name"]][1])
            for j in doc.get("jobs", [])
            if j["name"] == IDLE or j["name"] in WORKLOADS}
        e["boot_s"] = doc.get("boot_s")
        meta.setdefault("guest", doc.get("guest"))
        meta.setdefault("qemu_argv_example", {})[e["config"]] = \
            doc.get("qemu_argv")
    o = meta["options"]

    def values(b, c, w, met):
        return [per.get((b, c, r), {}).get(w, {}).get(met)
                for r in range(1, o["rounds"] + 1)]
    res = {}
    for b in o["backends"]:
        res[b] = {w: {} for w in o["workloads"]}
        for w in o["workloads"]:
            for met in METRICS:
                cell = res[b][w][met] = {}
                for c in o["configs"]:
                    vals = values(b, c, w, met)
                    d = cell[c] = {"values": vals, "stats": spread(vals)}
                    if met == "kicks_per_io":
                        d["estimated"] = any(values(b, c, w,
                                                    "kicks_estimated"))
                    if c != "A" and "A" in o["configs"]:
                        ratios = [round(x / a, 4) if a and x is not None
                                  else None for a, x in
                                  zip(values(b, "A", w, met), vals)]
                        d["ratio_to_A"] = {"values": ratios,
                                           "stats": spread(ratios)}
        if o["idle"] > 0:
            res[b][IDLE] = {met: {c: {
                "values": values(b, c, IDLE, met),
                "stats": spread(values(b, c, IDLE, met))}
                for c in o["configs"]}
                for met in list(IDLE_METRICS) + ["poll_ms", "wakeups"]}
    doc = {"meta": meta, "runs": runs, "results": res,
           "per_run": {"%s/%s/r%d" % k: v for k, v in sorted(per.items())},
           "checks": checks(runs, per)}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def checks(runs, per):
    """Things that look wrong: failed boots, counters that disagree."""
    notes, load_notes = [], []
    for e in runs:
        if not e.get("ok"):
            notes.append("round %d %s %s attempt %d failed: exit %s, %s" % (
                e["round"], e["backend"], e["config"], e["attempt"],
                e["exit"], e.get("error")))
        ld = e.get("load") or {}
        if ld.get("others_cpus", 0) > OTHERS_WARN:
            load_notes.append(
                "round %d %s %s: other processes kept %.2f CPUs busy on "
                "average (peak %.2f) while it ran: its numbers are disturbed"
                % (e["round"], e["backend"], e["config"], ld["others_cpus"],
                   ld.get("others_max_cpus", 0)))
    for (b, c, r), jm in sorted(per.items()):
        for w, m in jm.items():
            where = "round %d %s %s %s" % (r, b, c, w)
            if w == IDLE:
                if m.get("iot_cpu_pct", 0) > 2:
                    notes.append("%s: serving IOThreads used %.1f%% of a CPU "
                                 "while the guest was idle" %
                                 (where, m["iot_cpu_pct"]))
                if any(m.get("polling_after") or []):
                    notes.append("%s: a queue was still polling at the end "
                                 "of the idle phase" % where)
                continue
            ios = m.get("ios") or 0
            if not ios:
                notes.append("%s: no I/O" % where)
                continue
            for key, what in (("blk_requests", "guest block layer completed "
                               "%d requests, fio counted %d I/Os"),
                              ("device_requests", "device served %d "
                               "requests, fio counted %d")):
                if m.get(key) is not None and \
                        abs(m[key] - ios) > max(0.01 * ios, 32):
                    notes.append("%s: " % where + what % (m[key], ios))
            if "kicks_est_per_io" in m and not m.get("kicks_estimated"):
                k, e = m["kicks_per_io"], m["kicks_est_per_io"]
                if abs(k - e) > max(0.1 * k, 0.01):
                    notes.append("%s: device kicks/IO %.4f but IOThread "
                                 "eventfd reads/IO %.4f" % (where, k, e))
            if m.get("irqs_per_io", 0) > 1.05:
                notes.append("%s: %.3f guest interrupts per I/O" %
                             (where, m["irqs_per_io"]))
    if load_notes and not notes:
        notes.append("every boot passed; fio, guest block layer and device "
                     "request counts agree; virtio-blk-poll's kick counter "
                     "matches its IOThreads' eventfd reads; idle IOThreads "
                     "used < 2% of a CPU and no queue was left polling")
    return notes + load_notes


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    a = ap.add_argument
    a("--rounds", type=int, default=3, help="A/B/C rounds (default 3)")
    a("--runtime", type=int, default=5,
      help="seconds per workload (default 5)")
    a("--idle", type=int, default=5, help="seconds of the idle phase after "
      "the load (default 5, 0: none)")
    a("--backends", default="null,shm",
      help="comma-separated: null, shm, disk (default null,shm)")
    a("--disk-dir", help="directory for the 'disk' backend (adds it to "
      "--backends; O_DIRECT must work there)")
    a("--workloads", default=",".join(WORKLOADS),
      help="comma-separated, from: " + "; ".join(
          "%s (%s)" % (w, v[2]) for w, v in WORKLOADS.items()))
    a("--configs", default="A,B,C,D",
      help="which of A,B,C,D (default all; ratios need A)")
    a("--disk-size", type=fio.parse_size, default="1G",
      help="image / null-co size (default 1G)")
    a("--smp", type=int, default=2)
    a("--mem", default="1G")
    a("--iothreads", type=int, default=2)
    a("--num-queues", type=int, default=2)
    a("--pin", default="auto", help="auto (default: vCPUs and IOThreads "
      "apart), none, or 'vcpus=L;iothreads=L;main=L' (run-guest.py lists)")
    a("--no-syscalls", dest="syscalls", action="store_false",
      help="do not count QEMU's system calls with perf stat (counted by "
      "default when perf is installed)")
    a("--retries", type=int, default=1, help="boot again this often when a "
      "boot fails (default 1; failures are reported anyway)")
    a("--run-guest-arg", action="append", default=[],
      help="more run-guest.py arguments (one shell-quoted string, "
      "repeatable)")
    a("--quick", action="store_true", help="smoke test: 1 round, 2 s runs, "
      "2 s idle, null backend, randread-qd1 and randread-qd32")
    a("--out", help="results directory (default build/bench/<timestamp>)")
    a("--report", metavar="DIR", help="only redo results.json/.md and plots "
      "from DIR/runs.json and DIR/raw")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.runtime, args.idle = 1, 2, 2
        args.backends = "null"
        args.workloads = ",".join(QUICK_WORKLOADS)
    if args.syscalls and not shutil.which("perf"):
        log("perf not found: system calls are not counted")
        args.syscalls = False
    args.backends = [b for b in args.backends.split(",") if b]
    if args.disk_dir and "disk" not in args.backends:
        args.backends.append("disk")
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.configs = [c for c in args.configs.upper().split(",") if c]
    for what, given, known in (
            ("backend", args.backends, ("null", "shm", "disk")),
            ("workload", args.workloads, WORKLOADS),
            ("config", args.configs, CONFIGS)):
        for x in given:
            if x not in known:
                ap.error("unknown %s %r" % (what, x))
    if "disk" in args.backends:
        if not args.disk_dir:
            ap.error("backend 'disk' needs --disk-dir")
        if not odirect_ok(args.disk_dir):
            ap.error("O_DIRECT does not work in %s" % args.disk_dir)
    if "shm" in args.backends and not odirect_ok("/dev/shm"):
        ap.error("O_DIRECT does not work in /dev/shm on this kernel; "
                 "use --backends null or --disk-dir")
    if args.rounds < 1 or args.runtime < 1:
        ap.error("--rounds and --runtime must be >= 1")
    return args


def main():
    args = parse_args()
    if args.report:
        out = args.report
        with open(os.path.join(out, "runs.json")) as f:
            d = json.load(f)
        meta, runs = d["meta"], d["runs"]
    else:
        if not os.path.exists(paths.QEMU):
            sys.exit("bench: %s missing; build QEMU first "
                     "(scripts/build.sh)" % paths.QEMU)
        out = args.out or os.path.join(
            paths.BUILD, "bench", time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(out, exist_ok=True)
        meta, runs = run_benchmark(args, out)
    doc = aggregate(out, meta, runs)
    md = report.markdown(doc)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    try:
        made = report.plots(out, doc)
    except Exception as e:            # noqa: BLE001 (plots are extras)
        log("plotting failed: %r" % e)
        made = []
    if made is None:
        log("no matplotlib; no plots (apt-get install python3-matplotlib)")
    print("\n" + md, flush=True)
    log(", ".join([os.path.join(out, f) for f in
                   ("results.json", "results.md")] + (made or [])))
    bad = [e for e in runs if not e.get("ok")]
    if bad:
        log("%d boot(s) failed (see Checks)" % len(bad))
    covered = {(e["round"], e["backend"], e["config"])
               for e in runs if e.get("ok")}
    o = meta["options"]
    return 0 if len(covered) == o["rounds"] * len(o["backends"]) * len(
        o["configs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
