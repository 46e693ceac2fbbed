#!/usr/bin/python3
"""Upstream virtio-blk-pci against virtio-blk-poll, side by side, one run.

Boots the test guest (scripts/guest/run-guest.py, TCG) once per
configuration, backend and round, runs every workload of that
configuration in that one boot, then an idle phase, and reports each
metric as the ratio to upstream's default (A) with its spread over the
rounds:

  A  upstream    virtio-blk-pci, IOThreads with QEMU's default polling
  B  upstream+   virtio-blk-pci, IOThreads with poll-max-ns=200000
  C  poll        virtio-blk-poll-pci with its defaults
  D  poll+gp     virtio-blk-poll-pci, the guest polls its completions
                 (virtio_blk.poll_queues=1, fio hipri=1: io_uring IOPOLL)

All three: -smp 2, num-queues=2 mapped to IOThreads iot0/iot1 by
iothread-vq-mapping, aio=io_uring and cache.direct=on for images, the
same pinning.  Each round runs A, B, C one after the other (per
backend), so slow drifts of the host hit all three alike; ratios are
taken within a round.

Workloads (fio, io_uring engine, time based, lat_percentiles=1):
  randread-qd1   4k random read, iodepth 1   (latency p50/p99/p99.9)
  randread-qd4   4k random read, iodepth 4
  randread-qd32  4k random read, iodepth 32  (IOPS)
  randwrite-qd32 4k random write, iodepth 32
  randrw-qd16    4k random 70% read / 30% write, iodepth 16
  seqread-64k    64k sequential read, iodepth 16
and then "idle": fio's exec engine runs `sleep` in the guest, no disk
I/O, to measure what the serving threads cost while the guest is idle.

Backends: null (null-co, read-zeroes), shm (a raw file in /dev/shm,
filled with data first), disk (a raw file in --disk-dir, only when
O_DIRECT works there).

Results go to build/bench/<timestamp>/ (or --out): raw/ (run-guest.py's
JSON and log of every boot), jobs/ (the fio job files), results.json,
results.md and PNG plots.  --report DIR redoes results and plots from
DIR/raw without running anything.
"""
import argparse
import datetime
import json
import mmap
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RUN_GUEST = os.path.join(ROOT, "scripts", "guest", "run-guest.py")
QEMU = os.path.join(ROOT, "build", "qemu", "build", "qemu-system-x86_64")
PYTHON = "/usr/bin/python3"
sys.dont_write_bytecode = True

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

# name -> (fio job body, primary direction for latency, description)
WORKLOADS = {
    "randread-qd1": ("rw=randread\nbs=4k\niodepth=1\nnorandommap=1\n",
                     "read", "4k random read, QD1"),
    "randread-qd4": ("rw=randread\nbs=4k\niodepth=4\nnorandommap=1\n",
                     "read", "4k random read, QD4"),
    "randread-qd32": ("rw=randread\nbs=4k\niodepth=32\nnorandommap=1\n",
                      "read", "4k random read, QD32"),
    "randwrite-qd32": ("rw=randwrite\nbs=4k\niodepth=32\nnorandommap=1\n",
                       "write", "4k random write, QD32"),
    "randrw-qd16": ("rw=randrw\nrwmixread=70\nbs=4k\niodepth=16\n"
                    "norandommap=1\n", "read",
                    "4k random 70/30 read/write, QD16 (latency: reads)"),
    "seqread-64k": ("rw=read\nbs=64k\niodepth=16\n", "read",
                    "64k sequential read, QD16"),
}
QUICK_WORKLOADS = ["randread-qd1", "randread-qd32"]
IDLE = "idle"
# A boot during which other processes used more CPU than this (on average)
# is flagged in the checks.
OTHERS_WARN = 0.5

# metric -> (label, unit, better: "higher"/"lower"/None)
METRICS = {
    "iops": ("IOPS", "", "higher"),
    "lat_p50_us": ("lat p50", "us", "lower"),
    "lat_p99_us": ("lat p99", "us", "lower"),
    "lat_p99.9_us": ("lat p99.9", "us", "lower"),
    "kicks_per_io": ("guest kicks / I/O", "", "lower"),
    "irqs_per_io": ("guest interrupts / I/O", "", "lower"),
    "iot_cpu_s_per_kio": ("IOThread CPU s / 1000 I/O", "s", "lower"),
    "iops_per_qemu_cpu_s": ("I/O per CPU-second of all QEMU threads",
                            "", "higher"),
    "uring_enter_per_io": ("io_uring_enter / I/O (all QEMU)", "", "lower"),
    "wait_per_io": ("ppoll + epoll_pwait / I/O (all QEMU)", "", "lower"),
    "syscalls_per_io": ("system calls / I/O (all QEMU)", "", "lower"),
}
IDLE_METRICS = {
    "iot_cpu_pct": ("serving IOThreads, % of one CPU", "%"),
    "vcpu_cpu_pct": ("vCPU threads, % of one CPU", "%"),
    "qemu_cpu_pct": ("all of QEMU, % of one CPU", "%"),
}


# ------------------------------------------------------------ helpers
def log(msg):
    print(msg, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def fmt_s(sec):
    sec = int(round(sec))
    return "%dm%02ds" % (sec // 60, sec % 60) if sec >= 60 else "%ds" % sec


def parse_cpus(text):
    cpus = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus += range(int(a), int(b) + 1)
        elif part.strip():
            cpus.append(int(part))
    return cpus


def cpu_list(cpus):
    return ",".join(str(c) for c in cpus)


def pin_layout(cpus, smp, niot):
    """vCPUs and serving IOThreads on different host CPUs where possible.

    Returns (pin_vcpus, pin_iothreads, pin_main, words) or None when the
    host has a single CPU.  With enough CPUs every vCPU and every IOThread
    gets one of its own and the main thread the next; with fewer, the
    IOThreads (and the main thread, which does little here) share a part
    and the vCPUs the rest.  On 2 CPUs: both vCPUs on the first CPU,
    both IOThreads and the main thread on the second."""
    n = len(cpus)
    if n < 2:
        return None
    if n >= smp + niot:
        v = cpus[:smp]
        i = cpus[smp:smp + niot]
        m = [cpus[smp + niot]] if n > smp + niot else i
        return (":".join(str(c) for c in v), ":".join(str(c) for c in i),
                cpu_list(m), "each vCPU and each IOThread on a CPU of its own")
    k = max(1, n * niot // (smp + niot))
    v, i = cpus[:n - k], cpus[n - k:]
    pv = (":".join(str(c) for c in v) if len(v) == smp else cpu_list(v))
    pi = (":".join(str(c) for c in i) if len(i) == niot else cpu_list(i))
    return (pv, pi, cpu_list(i),
            "vCPUs on CPU(s) %s, IOThreads and main thread on CPU(s) %s"
            % (cpu_list(v), cpu_list(i)))


def odirect_ok(directory):
    """True when a file in directory can be opened and written O_DIRECT."""
    path = os.path.join(directory, ".vbp-bench-odirect-%d" % os.getpid())
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        buf = mmap.mmap(-1, 4096)
        buf.write(b"x" * 4096)
        return os.write(fd, buf) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(path)


def make_image(path, size):
    """A raw image full of data (so reads copy pages, not holes)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r" % text)
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


def machine_info():
    info = {"nproc": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "kernel": platform.release(), "accel": "tcg"}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") *
                                   os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True,
                             text=True, timeout=20).stdout
        info["qemu"] = out.splitlines()[0] if out else None
    except (OSError, subprocess.TimeoutExpired):
        info["qemu"] = None
    try:
        head = subprocess.run(["git", "-C", ROOT, "describe", "--always",
                               "--dirty"], capture_output=True, text=True,
                              timeout=20).stdout.strip()
        info["repo"] = head or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    kvm = os.path.exists("/dev/kvm")
    info["kvm_device"] = kvm
    return info


# ------------------------------------------------------ load sampler
class LoadSampler(threading.Thread):
    """Host CPU use each second, split into ours (this script, run-guest,
    QEMU) and everybody else's (a compile running beside us, ...)."""

    def __init__(self, interval=1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples = []             # (t, busy_cpus, ours_cpus)
        self.stop_ev = threading.Event()
        self.tck = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _host():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]) - idle

    def _ours(self):
        me = os.getpid()
        procs = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fld = st[st.rindex(")") + 2:].split()
            procs[int(d)] = (int(fld[1]), sum(int(x) for x in fld[11:15]))
        kids = {}
        for pid, (ppid, _) in procs.items():
            kids.setdefault(ppid, []).append(pid)
        total, todo = 0, [me]
        while todo:
            p = todo.pop()
            if p in procs:
                total += procs[p][1]
            todo += kids.get(p, [])
        return total

    def run(self):
        prev = None
        while not self.stop_ev.is_set():
            try:
                cur = (time.monotonic(), self._host(), self._ours())
            except (OSError, ValueError):
                cur = None
            if prev and cur:
                dt = cur[0] - prev[0]
                busy = (cur[1] - prev[1]) / self.tck / dt
                ours = max(0.0, (cur[2] - prev[2]) / self.tck / dt)
                self.samples.append((cur[0], busy, ours))
            prev = cur
            self.stop_ev.wait(self.interval)

    def window(self, t0, t1):
        """Mean busy CPUs and others' CPUs between two monotonic times."""
        s = [x for x in self.samples if t0 <= x[0] <= t1 + self.interval]
        if not s:
            return None
        busy = statistics.mean(x[1] for x in s)
        other = statistics.mean(max(0.0, x[1] - x[2]) for x in s)
        return {"busy_cpus": round(busy, 2), "others_cpus": round(other, 2),
                "others_max_cpus": round(max(max(0.0, x[1] - x[2])
                                             for x in s), 2)}


# ------------------------------------------------------------ running
def job_text(name, body, runtime):
    return ("[%s]\nioengine=io_uring\ntime_based=1\nruntime=%d\n%s"
            % (name, runtime, body))


def idle_text(idle_s):
    # The exec engine runs a program instead of doing I/O; fio's own
    # overhead stays in the guest, the disk sees nothing.
    return ("[idle]\nioengine=exec\nprogram=/bin/sleep\narguments=%d\n"
            "time_based=1\nruntime=%d\ngrace_time=0\n" % (idle_s, idle_s))


def run_one(cmd, log_path, prefix):
    """Runs run-guest.py, echoing its per-job lines; returns exit status."""
    with open(log_path, "w") as logf:
        logf.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
        logf.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            logf.write(line)
            logf.flush()
            line = line.rstrip()
            if line.startswith("run-guest: "):
                line = line[len("run-guest: "):]
            log("%s%s" % (prefix, line))
        return p.wait()


def run_benchmark(args, out):
    raw_dir = os.path.join(out, "raw")
    jobs_dir = os.path.join(out, "jobs")
    os.makedirs(raw_dir, exist_ok=True)
    os.makedirs(jobs_dir, exist_ok=True)

    # One set of job files, another for configurations whose fio jobs
    # need more options (D: hipri)
    job_args = {}
    for c in args.configs:
        extra = CONFIGS[c].get("fio_extra", "")
        sub = os.path.join(jobs_dir, c) if extra else jobs_dir
        os.makedirs(sub, exist_ok=True)
        job_args[c] = []
        for w in args.workloads:
            path = os.path.join(sub, w + ".fio")
            with open(path, "w") as f:
                f.write(job_text(w, WORKLOADS[w][0] + extra, args.runtime))
            job_args[c] += ["--job", "%s=%s" % (w, path)]
        if args.idle > 0:
            path = os.path.join(jobs_dir, IDLE + ".fio")
            with open(path, "w") as f:
                f.write(idle_text(args.idle))
            job_args[c] += ["--job", "%s=%s" % (IDLE, path)]

    cpus = sorted(os.sched_getaffinity(0))
    pin = None
    pin_words = "no pinning"
    if args.pin == "auto":
        lay = pin_layout(cpus, args.smp, args.iothreads)
        if lay:
            pin = lay[:3]
            pin_words = lay[3]
    elif args.pin != "none":
        parts = dict(p.split("=", 1) for p in args.pin.split(";"))
        pin = (parts.get("vcpus"), parts.get("iothreads"), parts.get("main"))
        pin_words = args.pin
    common = [PYTHON, RUN_GUEST, "--iothreads", str(args.iothreads),
              "--num-queues", str(args.num_queues), "--mapping", "vq",
              "--smp", str(args.smp), "--mem", args.mem,
              "--job-timeout", str(max(args.runtime, args.idle) + 60)]
    if args.syscalls:
        common.append("--syscalls")
    if pin:
        for opt, val in zip(("--pin-vcpus", "--pin-iothreads", "--pin-main"),
                            pin):
            if val:
                common += [opt, val]
    for extra in args.run_guest_arg:
        common += shlex.split(extra)

    images = {}
    backend_args = {}
    for b in args.backends:
        if b == "null":
            backend_args[b] = ["--backend", "null", "--disk-size",
                               str(args.disk_size)]
            continue
        d = "/dev/shm" if b == "shm" else args.disk_dir
        path = os.path.join(d, "vbp-bench-%d-%s.img" % (os.getpid(), b))
        log("bench: filling %s (%d MiB) ..." % (path, args.disk_size >> 20))
        make_image(path, args.disk_size)
        images[b] = path
        backend_args[b] = ["--backend", "raw", "--disk-path", path]

    plan = [(r, b, c) for r in range(1, args.rounds + 1)
            for b in args.backends for c in args.configs]
    meta = {"command": " ".join(shlex.quote(a) for a in sys.argv),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine_info(), "pinning": pin_words,
            "pin_args": pin, "options": {
                k: v for k, v in vars(args).items() if k != "report"},
            "configs": CONFIGS, "workloads": {
                w: {"fio": WORKLOADS[w][0], "lat_dir": WORKLOADS[w][1],
                    "what": WORKLOADS[w][2]} for w in args.workloads},
            "common_args": common[2:], "backend_args": backend_args,
            "loadavg_start": loadavg()}
    log("bench: %d boots (%d rounds x %d backends x %d configs), "
        "%d workloads of %ds + %ds idle per boot; pinning: %s"
        % (len(plan), args.rounds, len(args.backends), len(args.configs),
           len(args.workloads), args.runtime, args.idle, pin_words))
    log("bench: results in %s" % out)

    sampler = LoadSampler()
    sampler.start()
    runs = []
    t_start = time.monotonic()
    est_boot = 12 + len(args.workloads) * (args.runtime + 3) + \
        (args.idle + 3 if args.idle else 0)
    done_s = []
    try:
        for n, (r, b, c) in enumerate(plan, 1):
            left = len(plan) - n + 1
            per = statistics.mean(done_s) if done_s else est_boot
            log("bench: [%d/%d] round %d/%d, backend %s, config %s (%s); "
                "elapsed %s, ETA %s" % (
                    n, len(plan), r, args.rounds, b, c, CONFIGS[c]["label"],
                    fmt_s(time.monotonic() - t_start), fmt_s(per * left)))
            base = "r%d-%s-%s" % (r, b, c)
            cmd = common + CONFIGS[c]["args"] + backend_args[b] + job_args[c]
            attempt = 0
            while True:
                attempt += 1
                t0 = time.monotonic()
                la = loadavg()
                path = os.path.join(raw_dir, base + ".json")
                rc = run_one(cmd + ["-o", path],
                             os.path.join(raw_dir, base + ".log"),
                             "bench:     %s " % c)
                t1 = time.monotonic()
                entry = {"round": r, "backend": b, "config": c,
                         "file": os.path.relpath(path, out), "exit": rc,
                         "attempt": attempt, "seconds": round(t1 - t0, 1),
                         "loadavg_before": la,
                         "load": sampler.window(t0, t1)}
                try:
                    with open(path) as f:
                        doc = json.load(f)
                    entry["error"] = doc.get("error")
                    entry["boot_s"] = doc.get("boot_s")
                except (OSError, ValueError) as e:
                    doc = None
                    entry["error"] = "no result document: %s" % e
                entry["ok"] = rc == 0 and doc is not None and doc.get("ok")
                if entry["load"]:
                    log("bench:     %s done in %s (host busy %.2f CPUs, "
                        "others %.2f)" % (c, fmt_s(t1 - t0),
                                          entry["load"]["busy_cpus"],
                                          entry["load"]["others_cpus"]))
                if entry["ok"] or attempt > args.retries:
                    runs.append(entry)
                    break
                failed = os.path.join(raw_dir, "%s.fail%d" % (base, attempt))
                for ext in (".json", ".log"):
                    if os.path.exists(os.path.join(raw_dir, base + ext)):
                        os.rename(os.path.join(raw_dir, base + ext),
                                  failed + ext)
                entry["file"] = os.path.relpath(failed + ".json", out)
                runs.append(entry)
                log("bench:     FAILED (exit %s: %s); raw files kept as %s.*;"
                    " again" % (rc, entry["error"], failed))
            done_s.append(t1 - t0)
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
    all_load = sampler.window(t_start, time.monotonic())
    meta["load"] = all_load
    with open(os.path.join(out, "runs.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=1)
    return meta, runs


# ------------------------------------------------------ per-job metrics
def job_metrics(job, config, lat_dir):
    """The numbers of one fio job of one boot."""
    m = {}
    ios = job.get("ios") or 0
    iops = 0.0
    lat = None
    for fj in job.get("fio", {}).get("jobs", []):
        for d in ("read", "write", "trim"):
            if d in fj:
                iops += fj[d]["iops"]
        if lat is None:
            lat = fj.get(lat_dir) or fj.get("read") or fj.get("write")
    m["ios"] = ios
    m["iops"] = round(iops, 1)
    if lat:
        for p in ("50", "99", "99.9"):
            if p in lat.get("lat_ns", {}):
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
    iot = [v.get("run_s", v.get("cpu_s", 0))
           for v in cpu.get("iothreads", {}).values() if v]
    vcpu = [v.get("run_s", v.get("cpu_s", 0))
            for v in cpu.get("vcpus", []) if v]
    m["iot_cpu_s"] = round(sum(iot), 4)
    m["vcpu_cpu_s"] = round(sum(vcpu), 4)
    m["qemu_cpu_s"] = cpu.get("qemu_total_s")
    if ios:
        m["iot_cpu_s_per_kio"] = round(sum(iot) * 1000 / ios, 5)
        m["vcpu_cpu_s_per_kio"] = round(sum(vcpu) * 1000 / ios, 5)
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
        m["device_requests"] = st.get("requests")
        m["device_kicks"] = st.get("kicks")
        m["device_notifies"] = st.get("notifies")
        if st.get("used-updates"):
            m["requests_per_batch"] = round(
                st.get("requests", 0) / st["used-updates"], 2)
        m["poll_ms"] = round(st.get("poll-ns", 0) / 1e6, 1)
        m["wakeups"] = st.get("wakeups")
        m["fast_rw"] = st.get("fast-rw")
        m["fallback_rw"] = st.get("fallback-rw")
        m["polling_after"] = [q.get("polling") for q in
                              job["device_stats"].get("queues", [])]
    return m


def idle_metrics(job):
    m = job_metrics(job, None, "read")
    secs = job.get("host_seconds") or 0
    if secs:
        m["iot_cpu_pct"] = round(m["iot_cpu_s"] * 100 / secs, 2)
        m["vcpu_cpu_pct"] = round(m["vcpu_cpu_s"] * 100 / secs, 2)
        if m.get("qemu_cpu_s") is not None:
            m["qemu_cpu_pct"] = round(m["qemu_cpu_s"] * 100 / secs, 2)
    return m


def spread(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "n": len(v)}


def aggregate(out, meta, runs):
    """results.json: per backend, workload, metric and config the values
    of every round, their median/min/max, and the per-round ratio to A."""
    per = {}      # (backend, config, round) -> {workload: metrics}
    for e in runs:
        if not e.get("ok"):
            continue
        with open(os.path.join(out, e["file"])) as f:
            doc = json.load(f)
        jm = {}
        for job in doc.get("jobs", []):
            name = job["name"]
            if name == IDLE:
                jm[name] = idle_metrics(job)
            elif name in WORKLOADS:
                jm[name] = job_metrics(job, e["config"], WORKLOADS[name][1])
        per[(e["backend"], e["config"], e["round"])] = jm
        e["boot_s"] = doc.get("boot_s")
        meta.setdefault("guest", doc.get("guest"))
        meta.setdefault("qemu_argv_example", {})[e["config"]] = \
            doc.get("qemu_argv")
    o = meta["options"]
    rounds = range(1, o["rounds"] + 1)
    res = {}
    for b in o["backends"]:
        res[b] = {}
        for w in o["workloads"]:
            res[b][w] = {}
            for met in METRICS:
                cell = {}
                for c in o["configs"]:
                    vals = [per.get((b, c, r), {}).get(w, {}).get(met)
                            for r in rounds]
                    d = {"values": vals, "stats": spread(vals)}
                    if met == "kicks_per_io":
                        d["estimated"] = any(
                            per.get((b, c, r), {}).get(w, {}).get(
                                "kicks_estimated") for r in rounds)
                    if c != "A" and "A" in o["configs"]:
                        ratios = []
                        for r in rounds:
                            a = per.get((b, "A", r), {}).get(w, {}).get(met)
                            x = per.get((b, c, r), {}).get(w, {}).get(met)
                            ratios.append(round(x / a, 4) if a and
                                          x is not None else None)
                        d["ratio_to_A"] = {"values": ratios,
                                           "stats": spread(ratios)}
                    cell[c] = d
                res[b][w][met] = cell
        if o["idle"] > 0:
            res[b][IDLE] = {}
            for met in list(IDLE_METRICS) + ["poll_ms", "wakeups"]:
                cell = {}
                for c in o["configs"]:
                    vals = [per.get((b, c, r), {}).get(IDLE, {}).get(met)
                            for r in rounds]
                    cell[c] = {"values": vals, "stats": spread(vals)}
                res[b][IDLE][met] = cell
    details = {"%s/%s/r%d" % k: v for k, v in sorted(per.items())}
    doc = {"meta": meta, "runs": runs, "results": res, "per_run": details,
           "checks": checks(meta, runs, per)}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def checks(meta, runs, per):
    """Things that look wrong: failed boots, counters that disagree."""
    notes = []
    load_notes = []
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
            if m.get("blk_requests") is not None and \
                    abs(m["blk_requests"] - ios) > max(0.01 * ios, 32):
                notes.append("%s: guest block layer completed %d requests, "
                             "fio counted %d I/Os" % (where,
                                                      m["blk_requests"], ios))
            if m.get("device_requests") is not None and \
                    abs(m["device_requests"] - ios) > max(0.01 * ios, 32):
                notes.append("%s: device served %d requests, fio counted %d"
                             % (where, m["device_requests"], ios))
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


# ------------------------------------------------------------ markdown
def num(x, unit=""):
    if x is None:
        return "-"
    if unit == "s":
        return "%.4f" % x
    if abs(x) >= 1000:
        return "%.0f" % x
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    if abs(x) >= 1:
        return "%.2f" % x
    return "%.3f" % x


def ratio_cell(d):
    st = (d.get("ratio_to_A") or {}).get("stats")
    if not st:
        return "n/a"
    if st["n"] == 1:
        return "%.2f" % st["median"]
    return "%.2f (%.2f-%.2f)" % (st["median"], st["min"], st["max"])


def abs_cell(d, unit, est=False):
    st = d.get("stats")
    if not st:
        return "-"
    s = num(st["median"], unit)
    return s + ("~" if est and d.get("estimated") else "")


def markdown(doc):
    meta, res = doc["meta"], doc["results"]
    o = meta["options"]
    mi = meta["machine"]
    cfgs = o["configs"]
    L = []
    L.append("# virtio-blk-poll benchmark: %s" % meta["started"])
    L.append("")
    L.append("Machine: %s CPU(s) (%s), %s GiB, kernel %s, %s, accel TCG "
             "(no KVM). QEMU: %s. Repo: %s." % (
                 mi.get("nproc"), mi.get("cpu_model"), mi.get("memory_gib"),
                 mi.get("kernel"), "Debian " + mi.get("debian", "?"),
                 mi.get("qemu"), mi.get("repo")))
    g = meta.get("guest") or {}
    L.append("Guest: %s (%s), %s; -smp %d, -m %s; num-queues=%d on %d "
             "IOThreads (iothread-vq-mapping); pinning: %s." % (
                 g.get("kernel"), g.get("kernel_version"), g.get("fio"),
                 o["smp"], o["mem"], o["num_queues"], o["iothreads"],
                 meta.get("pinning")))
    L.append("Rounds: %d, runtime %d s per workload, idle phase %d s; "
             "backends: %s; total %s." % (
                 o["rounds"], o["runtime"], o["idle"],
                 ", ".join(o["backends"]), fmt_s(meta.get("total_s", 0))))
    ld = meta.get("load") or {}
    L.append("Host load while it ran: %.2f CPUs busy on average, of which "
             "%.2f by other processes (peak %.2f); load average %s at the "
             "start, %s at the end." % (
                 ld.get("busy_cpus", 0), ld.get("others_cpus", 0),
                 ld.get("others_max_cpus", 0),
                 " ".join(meta.get("loadavg_start", [])),
                 " ".join(meta.get("loadavg_end", []))))
    L.append("")
    L.append("Configurations: " + "; ".join(
        "**%s** %s" % (c, CONFIGS[c]["long"]) for c in cfgs) + ".")
    L.append("")
    L.append("Cells: median over the rounds (A, B, C columns); ratios to A "
             "are taken per round and shown as median (min-max). `~` marks "
             "an estimate (upstream counts no kicks: IOThread eventfd "
             "reads per I/O, an upper bound). IOPS: higher is better; "
             "everything else: lower is better.")
    for b in o["backends"]:
        L.append("")
        L.append("## Backend: %s" % b)
        L.append("")
        hdr = ["workload", "metric"] + ["%s %s" % (c, CONFIGS[c]["label"])
                                        for c in cfgs]
        hdr += ["%s/A" % c for c in cfgs if c != "A"]
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for w in o["workloads"]:
            for met, (label, unit, _) in METRICS.items():
                cell = res[b][w][met]
                if not any(cell[c].get("stats") for c in cfgs):
                    continue
                lab = label + (" (%s)" % unit if unit and unit != "s"
                               else "")
                row = [w, lab] + [abs_cell(cell[c], unit,
                                           met == "kicks_per_io")
                                  for c in cfgs]
                row += [ratio_cell(cell[c]) for c in cfgs if c != "A"]
                L.append("| " + " | ".join(row) + " |")
        if IDLE in res[b]:
            L.append("")
            L.append("Idle guest (%d s after the load, no disk I/O; "
                     "CPU time as %% of one host CPU, median (min-max)):"
                     % o["idle"])
            L.append("")
            hdr = ["config"] + [v[0] for v in IDLE_METRICS.values()] + \
                ["polling during idle (ms)"]
            L.append("| " + " | ".join(hdr) + " |")
            L.append("|" + "---|" * len(hdr))
            for c in cfgs:
                row = ["%s %s" % (c, CONFIGS[c]["label"])]
                for met in list(IDLE_METRICS) + ["poll_ms"]:
                    st = res[b][IDLE][met][c].get("stats")
                    if not st:
                        row.append("-")
                    elif st["n"] == 1:
                        row.append(num(st["median"]))
                    else:
                        row.append("%s (%s-%s)" % (num(st["median"]),
                                                   num(st["min"]),
                                                   num(st["max"])))
                L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("## Runs")
    L.append("")
    L.append("| round | backend | config | ok | boot s | run s | "
             "host busy CPUs | others' CPUs |")
    L.append("|---|---|---|---|---|---|---|---|")
    for e in doc["runs"]:
        ld = e.get("load") or {}
        L.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            e["round"], e["backend"], e["config"],
            "yes" if e.get("ok") else "**no** (%s)" % e.get("error"),
            e.get("boot_s") if e.get("boot_s") is not None else "-",
            e.get("seconds"), ld.get("busy_cpus", "-"),
            ld.get("others_cpus", "-")))
    L.append("")
    L.append("## Checks")
    L.append("")
    if doc["checks"]:
        for n in doc["checks"]:
            L.append("- " + n)
    else:
        L.append("- nothing odd: every boot passed, none with more than "
                 "%.1f CPUs of other processes' load; fio, guest block layer "
                 "and device request counts agree; virtio-blk-poll's kick "
                 "counter matches its IOThreads' eventfd reads; idle "
                 "IOThreads used < 2%% of a CPU and no queue was left "
                 "polling." % OTHERS_WARN)
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------- plots
COLORS = {"A": "#7f7f7f", "B": "#1f77b4", "C": "#d62728", "D": "#2ca02c"}


def _bars(ax, groups, cfgs, getter, width=0.8, hatch_est=None):
    """Grouped bars with min..max error bars; getter(group, cfg) -> stats
    dict or None."""
    n = len(cfgs)
    w = width / n
    for i, c in enumerate(cfgs):
        xs, ys, lo, hi = [], [], [], []
        for gi, grp in enumerate(groups):
            st = getter(grp, c)
            if not st:
                continue
            xs.append(gi - width / 2 + w * (i + 0.5))
            ys.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        bars = ax.bar(xs, ys, w, yerr=[lo, hi], capsize=2,
                      color=COLORS.get(c), label="%s %s" % (
                          c, CONFIGS[c]["label"]),
                      error_kw={"elinewidth": 0.8})
        if hatch_est and hatch_est(c):
            for bar in bars:
                bar.set_hatch("//")
                bar.set_edgecolor("white")
    ax.set_xticks(range(len(groups)))


def _finish(fig, ax, title):
    """One legend for the whole figure, under the title."""
    handles, labels = ax.get_legend_handles_labels()
    fig.suptitle(title, fontsize=9)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels),
               fontsize=8, frameon=False)
    h = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, 0.45 / h, 1, 1 - 0.15 / h))


def plots(out, doc):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("bench: no matplotlib; no plots (apt-get install "
            "python3-matplotlib)")
        return []
    meta, res = doc["meta"], doc["results"]
    o = meta["options"]
    cfgs, bks, wls = o["configs"], o["backends"], o["workloads"]
    made = []
    title_tail = "(%d round%s, %ds runs; TCG, %s CPUs)" % (
        o["rounds"], "s" if o["rounds"] > 1 else "", o["runtime"],
        meta["machine"].get("nproc"))

    # IOPS: one panel per backend and workload, bars per config.
    fig, axes = plt.subplots(len(bks), len(wls), squeeze=False,
                             figsize=(max(8, 2.4 * len(wls) + 1),
                                      2.8 * len(bks) + 1.2))
    for bi, b in enumerate(bks):
        for wi, w in enumerate(wls):
            ax = axes[bi][wi]
            cell = res[b][w]["iops"]
            _bars(ax, [w], cfgs, lambda g, c: cell[c].get("stats"))
            ax.set_xticks([])
            ax.set_title("%s\n%s" % (w, b), fontsize=9)
            if wi == 0:
                ax.set_ylabel("IOPS (median, min..max)")
            ax.tick_params(labelsize=8)
            for i, c in enumerate(cfgs):
                st = cell[c].get("stats")
                rs = (cell[c].get("ratio_to_A") or {}).get("stats")
                if st and rs:
                    n = len(cfgs)
                    x = -0.4 + 0.8 / n * (i + 0.5)
                    ax.annotate("x%.2f" % rs["median"], (x, st["max"]),
                                ha="center", va="bottom", fontsize=7,
                                xytext=(0, 2), textcoords="offset points")
            ax.margins(y=0.15)
    _finish(fig, axes[0][0], "IOPS per workload and configuration "
            "(median, error bars min..max; ratio to A above the bars)\n" +
            title_tail)
    p = os.path.join(out, "iops.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p)

    # Latency of 4k random read QD1: p50/p99/p99.9.
    lw = "randread-qd1" if "randread-qd1" in wls else wls[0]
    pcts = ["lat_p50_us", "lat_p99_us", "lat_p99.9_us"]
    fig, axes = plt.subplots(1, len(bks), squeeze=False,
                             figsize=(max(7, 4.5 * len(bks)), 4.4))
    for bi, b in enumerate(bks):
        ax = axes[0][bi]
        _bars(ax, pcts, cfgs, lambda g, c: res[b][lw][g][c].get("stats"))
        ax.set_xticklabels(["p50", "p99", "p99.9"])
        if any(res[b][lw][g][c].get("stats") for g in pcts for c in cfgs):
            ax.set_yscale("log")
        ax.set_ylabel("latency (us, log scale)")
        ax.set_title("%s, %s" % (lw, b), fontsize=9)
        ax.grid(axis="y", which="both", alpha=0.3)
    _finish(fig, axes[0][0], "fio lat_ns percentiles (median, min..max)\n"
            + title_tail)
    p = os.path.join(out, "latency.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p)

    # Notifications per I/O: kicks (hatched = estimate) and interrupts.
    fig, axes = plt.subplots(len(bks), 2, squeeze=False,
                             figsize=(2.0 * len(wls) + 5,
                                      3.0 * len(bks) + 1.4))
    for bi, b in enumerate(bks):
        for mi, met in enumerate(("kicks_per_io", "irqs_per_io")):
            ax = axes[bi][mi]
            _bars(ax, wls, cfgs,
                  lambda g, c: res[b][g][met][c].get("stats"),
                  hatch_est=(lambda c: met == "kicks_per_io" and any(
                      res[b][w][met][c].get("estimated") for w in wls)))
            ax.set_xticklabels(wls, rotation=20, fontsize=7, ha="right")
            ax.set_title("%s, %s%s" % (
                METRICS[met][0], b,
                " (hatched: estimate from IOThread eventfd reads)"
                if met == "kicks_per_io" else ""), fontsize=8)
            ax.set_ylabel("per I/O")
            ax.grid(axis="y", alpha=0.3)
    _finish(fig, axes[0][0], "Guest notifications per I/O (median, "
            "min..max)\n" + title_tail)
    p = os.path.join(out, "notifications.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p)

    # IOThread CPU per 1000 I/O, and while idle.
    fig, axes = plt.subplots(len(bks), 2, squeeze=False,
                             figsize=(2.0 * len(wls) + 6,
                                      3.0 * len(bks) + 1.4),
                             gridspec_kw={"width_ratios": [len(wls), 1.5]})
    for bi, b in enumerate(bks):
        ax = axes[bi][0]
        _bars(ax, wls, cfgs, lambda g, c:
              res[b][g]["iot_cpu_s_per_kio"][c].get("stats"))
        ax.set_xticklabels(wls, rotation=20, fontsize=7, ha="right")
        ax.set_ylabel("IOThread CPU s / 1000 I/O")
        ax.set_title("serving IOThreads' CPU per 1000 I/O, %s" % b,
                     fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax = axes[bi][1]
        if IDLE in res[b]:
            _bars(ax, ["idle"], cfgs, lambda g, c:
                  res[b][IDLE]["iot_cpu_pct"][c].get("stats"))
            ax.set_xticklabels(["idle guest"], fontsize=7)
            ax.set_ylabel("% of one CPU")
            ax.set_title("IOThreads while idle, %s" % b, fontsize=8)
            top = max([(res[b][IDLE]["iot_cpu_pct"][c].get("stats") or
                        {}).get("max", 0) for c in cfgs] + [0])
            ax.set_ylim(0, max(1.0, top * 1.2))
            for i, c in enumerate(cfgs):
                st = res[b][IDLE]["iot_cpu_pct"][c].get("stats")
                if st:
                    x = -0.4 + 0.8 / len(cfgs) * (i + 0.5)
                    ax.annotate("%.2f%%" % st["median"], (x, st["max"]),
                                ha="center", va="bottom", fontsize=7,
                                xytext=(0, 2), textcoords="offset points")
    _finish(fig, axes[0][0], "Host CPU time of the serving IOThreads "
            "(median, min..max)\n" + title_tail)
    p = os.path.join(out, "cpu.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p)
    return made


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--rounds", type=int, default=3,
                    help="A/B/C rounds (default 3)")
    ap.add_argument("--runtime", type=int, default=5,
                    help="seconds per workload (default 5)")
    ap.add_argument("--idle", type=int, default=5,
                    help="seconds of the idle phase after the load "
                    "(default 5, 0: none)")
    ap.add_argument("--backends", default="null,shm",
                    help="comma-separated: null, shm, disk (default "
                    "null,shm)")
    ap.add_argument("--disk-dir", help="directory for the 'disk' backend "
                    "(adds it to --backends; O_DIRECT must work there)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated, from: " + ", ".join(WORKLOADS))
    ap.add_argument("--configs", default="A,B,C,D",
                    help="which of A,B,C,D (default all; ratios need A)")
    ap.add_argument("--disk-size", type=parse_size, default="1G",
                    help="image / null-co size (default 1G)")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", default="1G")
    ap.add_argument("--iothreads", type=int, default=2)
    ap.add_argument("--num-queues", type=int, default=2)
    ap.add_argument("--pin", default="auto",
                    help="auto (default: vCPUs and IOThreads apart), none, "
                    "or 'vcpus=L;iothreads=L;main=L' (run-guest.py lists)")
    ap.add_argument("--no-syscalls", dest="syscalls", action="store_false",
                    help="do not count QEMU's system calls with perf stat "
                    "(counted by default when perf is installed)")
    ap.add_argument("--retries", type=int, default=1,
                    help="boot again this often when a boot fails "
                    "(default 1; failures are reported anyway)")
    ap.add_argument("--run-guest-arg", action="append", default=[],
                    help="more run-guest.py arguments (one shell-quoted "
                    "string, repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 round, 2 s runs, 2 s idle, null "
                    "backend, randread-qd1 and randread-qd32")
    ap.add_argument("--out", help="results directory (default "
                    "build/bench/<timestamp>)")
    ap.add_argument("--report", metavar="DIR",
                    help="only redo results.json/.md and plots from "
                    "DIR/runs.json and DIR/raw")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.runtime, args.idle = 1, 2, 2
        args.backends = "null"
        args.workloads = ",".join(QUICK_WORKLOADS)
    if args.syscalls and not shutil.which("perf"):
        log("bench: perf not found: system calls are not counted")
        args.syscalls = False
    args.backends = [b for b in args.backends.split(",") if b]
    if args.disk_dir and "disk" not in args.backends:
        args.backends.append("disk")
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.configs = [c for c in args.configs.upper().split(",") if c]
    for b in args.backends:
        if b not in ("null", "shm", "disk"):
            ap.error("unknown backend %r" % b)
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %r" % w)
    for c in args.configs:
        if c not in CONFIGS:
            ap.error("unknown config %r" % c)
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


def report(out, meta, runs):
    doc = aggregate(out, meta, runs)
    md = markdown(doc)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    try:
        made = plots(out, doc)
    except Exception as e:            # noqa: BLE001 (plots are extras)
        log("bench: plotting failed: %r" % e)
        made = []
    return doc, md, made


def main():
    args = parse_args()
    if args.report:
        out = args.report
        with open(os.path.join(out, "runs.json")) as f:
            d = json.load(f)
        meta, runs = d["meta"], d["runs"]
    else:
        if not os.path.exists(QEMU):
            sys.exit("bench: %s missing; build QEMU first "
                     "(scripts/build.sh)" % QEMU)
        out = args.out or os.path.join(
            ROOT, "build", "bench", time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(out, exist_ok=True)
        meta, runs = run_benchmark(args, out)
    doc, md, made = report(out, meta, runs)
    log("")
    log(md)
    log("bench: %s" % ", ".join(
        [os.path.join(out, f) for f in ("results.json", "results.md")] +
        made))
    bad = [e for e in runs if not e.get("ok")]
    if bad:
        log("bench: %d boot(s) failed (see Checks)" % len(bad))
    covered = {(e["round"], e["backend"], e["config"])
               for e in runs if e.get("ok")}
    return 0 if len(covered) == meta["options"]["rounds"] * len(
        meta["options"]["backends"]) * len(meta["options"]["configs"]) \
        else 1


if __name__ == "__main__":
    sys.exit(main())
