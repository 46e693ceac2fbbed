#!/usr/bin/python3
"""Upstream virtio-blk-pci against virtio-blk-poll, side by side, one run.

Boots the test guest (scripts/guest/run-guest.py, TCG) once per round,
backend and configuration (A upstream; B upstream, poll-max-ns=200000; C
virtio-blk-poll; D virtio-blk-poll, guest polling), runs every workload and
an idle phase in each boot, and reports each metric as the ratio to A within
each round, with its spread.  Results go to build/bench/<time>/ (or --out):
raw/, jobs/, runs.json, results.json, results.md and PNG plots (report.py).
What is measured and how: docs/benchmark.md.
"""
import argparse
import functools
import json
import mmap
import os
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
from report import IDLE  # noqa: E402

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
WORKLOADS = {"randread-qd%d" % qd: (
    "rw=randread bs=4k iodepth=%d norandommap=1" % qd, "read",
    "4k random read, QD%d" % qd) for qd in (1, 4, 32)}
WORKLOADS.update({
    "randwrite-qd32": ("rw=randwrite bs=4k iodepth=32 norandommap=1",
                       "write", "4k random write, QD32"),
    "randrw-qd16": ("rw=randrw rwmixread=70 bs=4k iodepth=16 norandommap=1",
                    "read", "4k random 70/30 read/write, QD16 (latency: "
                    "reads)"),
    "seqread-64k": ("rw=read bs=64k iodepth=16", "read",
                    "64k sequential read, QD16")})
QUICK_WORKLOADS = ["randread-qd1", "randread-qd32"]


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def shapes(args):
    """The guest shapes of the run: [{name, queues, smp, iothreads,
    num_queues}].  Without --queues one, named "" (--smp, --iothreads,
    --num-queues as given); with it one per entry Q, named "qQ": Q queues
    on Q IOThreads (queue i on iot i) and max(--smp, Q) vCPUs, as Linux's
    virtio_blk uses min(num-queues, CPUs) queues."""
    if not args.queues:
        return [{"name": "", "queues": None, "smp": args.smp,
                 "iothreads": args.iothreads,
                 "num_queues": args.num_queues}]
    return [{"name": "q%d" % q, "queues": q, "smp": max(args.smp, q),
             "iothreads": q, "num_queues": q} for q in args.queues]


def group_name(backend, shape):
    """What the report groups by: the backend, and the shape with
    --queues ("null q2")."""
    return "%s %s" % (backend, shape["name"]) if shape["name"] else backend


def pinning(args, smp=None, niot=None):
    """(run-guest.py's vCPU, IOThread and main thread CPU lists or None,
    in words) for @smp vCPUs and @niot IOThreads (default --smp and
    --iothreads).  auto: with too few CPUs for one each, the IOThreads and
    the main thread (which does little here) share a part, the vCPUs the
    rest (docs/benchmark.md, "Pinning on 2 host CPUs")."""
    def cpu_list(cpus, sep=","):
        return sep.join(str(c) for c in cpus)
    cpus = sorted(os.sched_getaffinity(0))
    smp = args.smp if smp is None else smp
    niot = args.iothreads if niot is None else niot
    n = len(cpus)
    if args.pin == "none" or (args.pin == "auto" and n < 2):
        return None, "no pinning"
    if args.pin != "auto":
        parts = dict(p.split("=", 1) for p in args.pin.split(";"))
        return (parts.get("vcpus"), parts.get("iothreads"),
                parts.get("main")), args.pin
    if n >= smp + niot:
        v, i = cpus[:smp], cpus[smp:smp + niot]
        m = [cpus[smp + niot]] if n > smp + niot else i
        return ((cpu_list(v, ":"), cpu_list(i, ":"), cpu_list(m)),
                "each vCPU and each IOThread on a CPU of its own")
    k = max(1, n * niot // (smp + niot))
    v, i = cpus[:n - k], cpus[n - k:]
    return ((cpu_list(v, ":" if len(v) == smp else ","),
             cpu_list(i, ":" if len(i) == niot else ","), cpu_list(i)),
            "vCPUs on CPU(s) %s, IOThreads and main thread on CPU(s) %s"
            % (cpu_list(v), cpu_list(i)))


def odirect_ok(directory):
    """True when a file in directory can be opened and written O_DIRECT."""
    path = os.path.join(directory, ".vbp-bench-odirect-%d" % os.getpid())
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600)
        try:            # an anonymous mapping: page aligned, as it must be
            return os.write(fd, mmap.mmap(-1, 4096)) == 4096
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
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return None
    info = {"nproc": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "kernel": os.uname().release, "accel": "tcg"}
    with open("/proc/cpuinfo") as f:
        info.update([("cpu_model", line.split(":", 1)[1].strip())
                     for line in f if line.startswith("model name")][:1])
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    return dict(info, memory_gib=round(os.sysconf("SC_PAGE_SIZE") *
                                       os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                qemu=first_line([paths.QEMU, "--version"]),
                repo=first_line(["git", "-C", paths.ROOT, "describe",
                                 "--always", "--dirty"]),
                kvm_device=os.path.exists("/dev/kvm"))


class LoadSampler(threading.Thread):
    """Host CPU use each second, split into ours (this script, run-guest,
    QEMU) and everybody else's (a compile running beside us, ...)."""
    INTERVAL = 1.0

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []             # (t, busy_cpus, ours_cpus)
        self.stop_ev = threading.Event()

    @staticmethod
    def ticks():
        """(time, busy ticks of the host, CPU ticks of our process tree)"""
        t = time.monotonic()
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
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
        return t, sum(v) - v[3] - v[4], ours      # less idle, iowait

    def run(self):
        prev, tck = None, counters.CLK_TCK
        while not self.stop_ev.is_set():
            try:
                cur = self.ticks()
            except (OSError, ValueError):   # a process gone while read
                cur = None
            if prev and cur:
                dt = cur[0] - prev[0]
                self.samples.append((cur[0], (cur[1] - prev[1]) / tck / dt,
                                     max(0.0, (cur[2] - prev[2]) / tck / dt)))
            prev = cur
            self.stop_ev.wait(self.INTERVAL)

    def window(self, t0, t1):
        """Mean busy CPUs and others' CPUs between two monotonic times."""
        s = [x for x in self.samples if t0 <= x[0] <= t1 + self.INTERVAL]
        other = [max(0.0, x[1] - x[2]) for x in s]
        return {"busy_cpus": round(statistics.mean(x[1] for x in s), 2),
                "others_cpus": round(statistics.mean(other), 2),
                "others_max_cpus": round(max(other), 2)} if s else None


def write_jobs(args, jobs_dir, queues=None):
    """The fio job files (D's own, with hipri, in jobs/D/): {config: its
    --job arguments of run-guest.py}.  With @queues (a --queues shape)
    each workload runs as @queues fio jobs of its own iodepth, job i on
    vCPU i (so on queue i), reported as one (group_reporting: IOPS, I/O
    count and latency percentiles of all jobs together)."""
    def write(d, name, opts):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".fio"), "w") as f:
            f.write(fio.job([(name, opts)]))
        return ["--job", "%s=%s" % (name, f.name)]
    job_args = {}
    for c in args.configs:
        extra = CONFIGS[c].get("fio_extra", "")
        job_args[c] = []
        for w in args.workloads:
            opts = {"ioengine": "io_uring", "time_based": 1,
                    "runtime": args.runtime}
            opts.update(o.split("=") for o in
                        (WORKLOADS[w][0] + " " + extra).split())
            if queues:
                opts.update({"numjobs": queues, "group_reporting": 1,
                             "cpus_allowed": "0-%d" % (queues - 1),
                             "cpus_allowed_policy": "split"})
            job_args[c] += write(os.path.join(jobs_dir, c) if extra
                                 else jobs_dir, w, opts)
        if args.idle > 0:
            # The exec engine runs a program instead of doing I/O; fio's
            # own overhead stays in the guest, the disk sees nothing.
            job_args[c] += write(jobs_dir, IDLE, {
                "ioengine": "exec", "program": "/bin/sleep",
                "arguments": args.idle, "time_based": 1,
                "runtime": args.idle, "grace_time": 0})
    return job_args


def boot(cmd, out, raw, where, attempt, sampler):
    """One boot of run-guest.py, echoing its per-job lines: its entry in
    runs.json.  Its result and log go to @raw.json and .log."""
    t0, la, path = time.monotonic(), loadavg(), raw + ".json"
    cmd = cmd + ["-o", path]
    with open(raw + ".log", "w", buffering=1) as logf:
        logf.write("$ %s\n" % shlex.join(cmd))
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            logf.write(line)
            log("    %s %s" % (where["config"],
                               line.rstrip().removeprefix("run-guest: ")))
        rc = p.wait()
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
    return entry


def run_benchmark(args, out):
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    shape_list = shapes(args)
    # per shape name: run-guest.py's arguments, jobs, pinning
    common, job_args, pin, pin_words = {}, {}, {}, {}
    for s in shape_list:
        n = s["name"]
        job_args[n] = write_jobs(args, os.path.join(out, "jobs", n),
                                 s["queues"])
        pin[n], pin_words[n] = pinning(args, s["smp"], s["iothreads"])
        common[n] = [
            PYTHON, RUN_GUEST, "--iothreads", str(s["iothreads"]),
            "--num-queues", str(s["num_queues"]), "--mapping", "vq",
            "--smp", str(s["smp"]), "--mem", args.mem,
            "--job-timeout", str(max(args.runtime, args.idle) + 60)]
        common[n] += ["--syscalls"] if args.syscalls else []
        for opt, val in zip(("--pin-vcpus", "--pin-iothreads",
                             "--pin-main"), pin[n] or ()):
            common[n] += [opt, val] if val else []
        for extra in args.run_guest_arg:
            common[n] += shlex.split(extra)
    images = {b: os.path.join("/dev/shm" if b == "shm" else args.disk_dir,
                              "vbp-bench-%d-%s.img" % (os.getpid(), b))
              for b in args.backends if b != "null"}
    backend_args = {b: ["--backend", "raw", "--disk-path", images[b]]
                    if b in images else ["--backend", "null", "--disk-size",
                                         str(args.disk_size)]
                    for b in args.backends}
    # one round boots every config of a shape one after the other
    plan = [(r, b, s, c) for r in range(1, args.rounds + 1)
            for b in args.backends for s in shape_list
            for c in args.configs]
    sampler, runs, done_s = LoadSampler(), [], []

    # runs.json after each boot too, so that --report works on a cut run
    def save():
        with open(os.path.join(out, "runs.json"), "w") as f:
            json.dump({"meta": meta, "runs": runs}, f, indent=1)
    try:
        for path in images.values():
            log("filling %s (%d MiB) ..." % (path, args.disk_size >> 20))
            make_image(path, args.disk_size)
        meta = {"command": shlex.join(sys.argv),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "machine": machine_info(), "options": {
                    k: v for k, v in vars(args).items() if k != "report"},
                "configs": CONFIGS, "workloads": {
                    w: {"fio": WORKLOADS[w][0].replace(" ", "\n") + "\n",
                        "lat_dir": WORKLOADS[w][1], "what": WORKLOADS[w][2]}
                    for w in args.workloads},
                "backend_args": backend_args, "loadavg_start": loadavg()}
        if args.queues:
            # the report groups by "backend qQ" (report.groups())
            meta.update(
                pinning="; ".join("%s: %s" % (s["name"], pin_words[
                    s["name"]]) for s in shape_list),
                pin_args=dict(pin),
                common_args={n: c[2:] for n, c in common.items()},
                shapes=shape_list, groups=[
                    {"name": group_name(b, s), "backend": b,
                     "queues": s["queues"]}
                    for b in args.backends for s in shape_list])
        else:
            meta.update(pinning=pin_words[""], pin_args=pin[""],
                        common_args=common[""][2:])
        log("%d boots (%d rounds x %d backends x %s%d configs), %d workloads "
            "of %ds + %ds idle per boot; pinning: %s" % (
                len(plan), args.rounds, len(args.backends),
                "%d queue shapes x " % len(shape_list) if args.queues
                else "", len(args.configs), len(args.workloads),
                args.runtime, args.idle, meta["pinning"]))
        log("results in %s" % out)
        sampler.start()
        t_start = time.monotonic()
        est_boot = 12 + len(args.workloads) * (args.runtime + 3) + \
            (args.idle + 3 if args.idle else 0)
        for n, (r, b, s, c) in enumerate(plan, 1):
            per = statistics.mean(done_s) if done_s else est_boot
            g = group_name(b, s)
            log("[%d/%d] round %d/%d, backend %s, config %s (%s); elapsed "
                "%s, ETA %s" % (n, len(plan), r, args.rounds, g, c,
                                CONFIGS[c]["label"],
                                report.fmt_s(time.monotonic() - t_start),
                                report.fmt_s(per * (len(plan) - n + 1))))
            raw = os.path.join(out, "raw", "r%d-%s-%s" % (
                r, g.replace(" ", "-"), c))
            cmd = common[s["name"]] + CONFIGS[c]["args"] + \
                backend_args[b] + job_args[s["name"]][c]
            where = {"round": r, "backend": g, "config": c}
            if s["queues"]:
                where.update(storage=b, queues=s["queues"])
            for attempt in range(1, max(args.retries, 0) + 2):
                e = boot(cmd, out, raw, where, attempt, sampler)
                runs.append(e)
                if e["ok"] or attempt > args.retries:
                    break
                failed = "%s.fail%d" % (raw, attempt)
                for ext in (".json", ".log"):
                    if os.path.exists(raw + ext):
                        os.rename(raw + ext, failed + ext)
                e["file"] = os.path.relpath(failed + ".json", out)
                log("    FAILED (exit %s: %s); raw files kept as %s.*; "
                    "again" % (e["exit"], e["error"], failed))
            done_s.append(e["seconds"])
            save()
    finally:
        sampler.stop_ev.set()
        for path in images.values():
            if os.path.exists(path):
                os.unlink(path)
    meta.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                total_s=round(time.monotonic() - t_start, 1),
                loadavg_end=loadavg(),
                load=sampler.window(t_start, time.monotonic()))
    save()
    return meta, runs


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
      help="which of A,B,C,D (default all; ratios need A), and E with "
      "--alt-qemu or --alt-device-prop")
    a("--alt-qemu", metavar="PATH", help="config E: config --alt-config "
      "(default A), but on this QEMU binary (another build of the series: "
      "what a patch costs, or a before/after of a change, in one run)")
    a("--alt-config", default="A", help="the configuration E repeats on "
      "--alt-qemu or with --alt-device-prop (A, B, C or D; default A)")
    a("--alt-device-prop", metavar="K=V,...", action="append", default=[],
      help="config E: config --alt-config with these -device properties "
      "added (repeatable; on --alt-qemu if given, else on the same build): "
      "what a setting changes, in one run.  Values are JSON where they "
      "parse as JSON: a boolean is true/false, not on/off")
    a("--alt-label", help="config E's label (default: that of "
      "--alt-config, on the other build)")
    a("--disk-size", type=fio.parse_size, default="1G",
      help="image / null-co size (default 1G)")
    a("--smp", type=int, default=2)
    a("--mem", default="1G")
    a("--iothreads", type=int, default=2)
    a("--num-queues", type=int, default=2)
    a("--queues", metavar="L", help="multi-queue shapes, comma-separated "
      "(e.g. 1,2,4): every config runs with each Q: num-queues=Q on Q "
      "IOThreads (queue i on iot i), max(--smp, Q) vCPUs, fio numjobs=Q "
      "at the workload's iodepth each; replaces --num-queues and "
      "--iothreads; reported per 'backend qQ' and in a scaling table")
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
        args.backends, args.workloads = "null", ",".join(QUICK_WORKLOADS)
    if args.syscalls and not shutil.which("perf"):
        log("perf not found: system calls are not counted")
        args.syscalls = False
    args.backends = [b for b in args.backends.split(",") if b]
    if args.disk_dir and "disk" not in args.backends:
        args.backends.append("disk")
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.configs = [c for c in args.configs.upper().split(",") if c]
    if args.queues is not None:
        try:
            args.queues = [int(q) for q in args.queues.split(",") if q]
        except ValueError:
            ap.error("--queues: comma-separated numbers, e.g. 1,2,4")
        if not args.queues or min(args.queues) < 1 or \
                len(set(args.queues)) != len(args.queues):
            ap.error("--queues: distinct numbers >= 1, e.g. 1,2,4")
    if args.alt_qemu or args.alt_device_prop:
        base = CONFIGS.get(args.alt_config.upper())
        if not base or args.alt_config.upper() == "E":
            ap.error("unknown --alt-config %r" % args.alt_config)
        extra, what = [], []
        if args.alt_qemu:
            extra += ["--qemu", os.path.abspath(args.alt_qemu)]
            what.append("QEMU %s" % args.alt_qemu)
        for p in args.alt_device_prop:
            extra += ["--device-prop", p]
            what.append(p)
        CONFIGS["E"] = dict(base)
        CONFIGS["E"].update({
            "label": args.alt_label or "%s, %s" % (
                base["label"], "other build" if args.alt_qemu
                else ", ".join(args.alt_device_prop)),
            "long": "%s, %s" % (base["long"], ", ".join(what)),
            "args": base["args"] + extra})
    for what, given, known in (
            ("backend", args.backends, ("null", "shm", "disk")),
            ("workload", args.workloads, WORKLOADS),
            ("config", args.configs, CONFIGS)):
        for x in given:
            if x not in known:
                ap.error("unknown %s %r" % (what, x))
    if "disk" in args.backends and not args.disk_dir:
        ap.error("backend 'disk' needs --disk-dir")
    if "disk" in args.backends and not odirect_ok(args.disk_dir):
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
    elif not os.path.exists(paths.QEMU):
        sys.exit("bench: %s missing; build QEMU first (scripts/build.sh)"
                 % paths.QEMU)
    else:
        out = args.out or os.path.join(
            paths.BUILD, "bench", time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(out, exist_ok=True)
        meta, runs = run_benchmark(args, out)
    doc = report.aggregate(out, meta, runs)
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
    # a boot that passed is not booted again: one entry each
    ok = {(e["round"], e["backend"], e["config"]) for e in runs if e["ok"]}
    if len(runs) > len(ok):
        log("%d boot(s) failed (see Checks)" % (len(runs) - len(ok)))
    o = meta["options"]
    return 0 if len(ok) == o["rounds"] * len(report.groups(meta)) * len(
        o["configs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
