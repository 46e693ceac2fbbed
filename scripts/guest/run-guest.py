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
--blk-params poll_queues=1.  As a library: importlib-load this file and
call run(parse_args([...])), which returns the result document.
"""
import argparse
import json
import os
import queue
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
GUEST_DIR = os.path.join(ROOT, "build", "guest")
QEMU_DIR = os.path.join(ROOT, "build", "qemu", "build")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True            # no __pycache__ in the source tree
import mkcpio  # noqa: E402  (scripts/guest/mkcpio.py)

CLK_TCK = os.sysconf("SC_CLK_TCK")
MARK = re.compile(r"===VBP-([A-Z-]+)(?: (.*?))?===\s*$")
KMSG = re.compile(r"^\[\s*\d+\.\d+\] ")

# Prepended to every job file unless --no-job-defaults: the disk, O_DIRECT,
# and lat percentiles (under TCG clat is distorted, compare lat).  A job
# file's own [global] section comes later and overrides these.
JOB_DEFAULTS = """[global]
filename=/dev/vda
direct=1
lat_percentiles=1
percentile_list=50:90:99:99.9
"""


class Failure(Exception):
    """A run that must be reported as failed; code is the exit status."""

    def __init__(self, msg, code=2):
        super().__init__(msg)
        self.code = code


def read_console_lines(read, log, emit):
    """Split what read() returns, until it returns b"", into lines: each
    is written to log and passed to emit(), the last one even without its
    newline."""
    buf = b""
    while True:
        chunk = read()
        if not chunk:
            break
        buf += chunk
        *done, buf = buf.split(b"\n")
        for raw in done:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            log.write(line + "\n")
            emit(line)
        log.flush()
    if buf:
        emit(buf.decode("utf-8", "replace"))


# ----------------------------------------------------------------- QMP
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from qmp import QMP, end_process  # noqa: E402  (scripts/qmp.py)

# ------------------------------------------------------------- helpers
def parse_cpus(text):
    """'0-2,5' -> {0, 1, 2, 5}"""
    cpus = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            cpus.update(range(int(a), int(b) + 1))
        else:
            cpus.add(int(part))
    if not cpus:
        raise ValueError("empty CPU list %r" % text)
    return cpus


def parse_size(text):
    """'256M' -> bytes (K, M, G, T are powers of 1024)."""
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r" % text)
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


def parse_props(items):
    """['k=v', ...] -> dict; values that parse as JSON become JSON."""
    props = {}
    for item in items:
        for kv in item.split(",") if not item.lstrip().startswith("{") else []:
            k, _, v = kv.partition("=")
            try:
                props[k] = json.loads(v)
            except ValueError:
                props[k] = v
        if item.lstrip().startswith("{"):
            props.update(json.loads(item))
    return props


def thread_times(pid):
    """{tid: (comm, cpu_seconds, run_ns, syscr, syscw)} for every thread
    of pid (run_ns, syscr, syscw may be None)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "stat") as f:
                st = f.read()
            with open(base + "comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        run_ns = None
        try:
            with open(base + "schedstat") as f:
                run_ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        io = {}
        try:
            with open(base + "io") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    io[k] = int(v)
        except (OSError, ValueError):
            pass
        out[int(tid)] = (comm, cpu, run_ns, io.get("syscr"), io.get("syscw"))
    return out


def parse_interrupts(text):
    """/proc/interrupts text -> {name: count summed over CPUs}.

    Device lines are keyed by their last field (the handler name, e.g.
    virtio0-req.0); per-CPU system lines (LOC, CAL, RES...) by their
    label."""
    lines = text.splitlines()
    if not lines:
        return {}
    ncpu = len(lines[0].split())
    counts = {}
    for line in lines[1:]:
        parts = line.split()
        if not parts or not parts[0].endswith(":"):
            continue
        label = parts[0][:-1]
        nums = []
        for p in parts[1:1 + ncpu]:
            if not p.isdigit():
                break
            nums.append(int(p))
        rest = parts[1 + len(nums):]
        name = label if not label.isdigit() or not rest else rest[-1]
        counts[name] = counts.get(name, 0) + sum(nums)
    return counts


def parse_blkstat(text):
    """'vda <17 fields>' lines -> {disk: completed requests}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 12:
            continue
        v = [int(x) for x in parts[1:]]
        n = v[0] + v[4]                       # reads + writes completed
        if len(v) >= 15:
            n += v[11] + v[14]                # discards + flushes
        out[parts[0]] = n
    return out


def delta_stats(before, after):
    """Per-queue delta of the device's stats (lists of dicts)."""
    if not isinstance(before, list) or not isinstance(after, list):
        return None
    queues = []
    total = {}
    keep = ("queue", "iothread", "thread-id", "polling", "max-batch")
    for b, a in zip(before, after):
        q = {}
        for k, v in a.items():
            if k in keep or not isinstance(v, (int, float)) or \
                    isinstance(v, bool):
                q[k] = v
            else:
                q[k] = v - b.get(k, 0)
                total[k] = total.get(k, 0) + q[k]
        queues.append(q)
    total["max-batch"] = max((q.get("max-batch", 0) for q in queues),
                             default=0)
    return {"queues": queues, "total": total}


def summarize_fio(data):
    """Per fio job: IOPS, bandwidth, I/O count, lat_ns percentiles."""
    jobs = []
    ios = 0
    errors = 0
    for job in data.get("jobs", []):
        j = {"jobname": job.get("jobname"), "error": job.get("error", 0)}
        errors += 1 if job.get("error", 0) else 0
        for ddir in ("read", "write", "trim"):
            d = job.get(ddir)
            if not d or not d.get("total_ios"):
                continue
            lat = d.get("lat_ns", {})
            pct = lat.get("percentile", {})
            j[ddir] = {
                "iops": round(d.get("iops", 0), 1),
                "bw_kib_s": d.get("bw", 0),
                "ios": d.get("total_ios", 0),
                "runtime_ms": d.get("runtime", 0),
                "lat_mean_ns": round(lat.get("mean", 0)),
                "lat_ns": {k.rstrip("0").rstrip("."): v
                           for k, v in sorted(pct.items(),
                                              key=lambda kv: float(kv[0]))},
            }
            ios += d.get("total_ios", 0)
        jobs.append(j)
    return {"jobs": jobs, "ios": ios, "job_errors": errors}


def parse_json_section(lines):
    """fio's JSON, tolerating kernel messages interleaved on the console."""
    text = "\n".join(lines)
    start = text.find("{")
    if start < 0:
        return None, "no JSON in fio output"
    try:
        return json.loads(text[start:]), None
    except ValueError:
        pass
    clean = "\n".join(line for line in lines if not KMSG.match(line))
    start = clean.find("{")
    try:
        return json.loads(clean[start:]), None
    except ValueError as e:
        return None, "fio JSON unreadable: %s" % e


# -------------------------------------------------------------- runner
class Guest:
    """One QEMU process, its serial console and QMP socket."""

    def __init__(self, cfg, rundir):
        self.cfg = cfg
        self.rundir = rundir
        self.lines = queue.Queue()
        self.log = open(os.path.join(rundir, "serial.log"), "w")
        self.tail = []                    # the last console lines
        self.proc = None
        self.qmp = None
        self.killed = False               # QEMU had to be killed

    def start(self, argv):
        self.stderr = open(os.path.join(self.rundir, "qemu.stderr"), "w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        threading.Thread(target=self._reader, daemon=True).start()
        self.qmp = QMP(os.path.join(self.rundir, "qmp.sock"))

    def _reader(self):
        read_console_lines(
            lambda: self.proc.stdout.read1(65536), self.log,
            lambda line: self.lines.put((time.monotonic(), line)))
        self.lines.put((time.monotonic(), None))    # EOF: QEMU is gone

    def next_line(self, deadline, what):
        """The next console line; Failure on timeout or QEMU exit."""
        left = deadline - time.monotonic()
        try:
            t, line = self.lines.get(timeout=max(left, 0))
        except queue.Empty:
            raise Failure("timeout waiting for %s" % what) from None
        if line is None:
            raise Failure("QEMU exited (status %s) waiting for %s" %
                          (self.proc.wait(), what))
        self.tail = (self.tail + [line])[-60:]
        return t, line

    def expect(self, deadline, kind, name=None, collect=None):
        """Reads up to the marker ===VBP-kind name===; returns its time.

        A ===VBP-FAILED ...=== from the guest raises Failure with the
        guest's report.  Lines before the marker go to collect."""
        what = "===VBP-%s%s===" % (kind, " " + name if name else "")
        while True:
            t, line = self.next_line(deadline, what)
            m = MARK.search(line)
            if m and m.group(1) == "FAILED":
                report = []
                try:
                    while True:
                        _, l2 = self.next_line(time.monotonic() + 30,
                                               "FAILED-END")
                        if "===VBP-FAILED-END===" in l2:
                            break
                        report.append(l2)
                except Failure:
                    pass
                err = Failure("guest: %s" % m.group(2))
                err.guest_report = report
                raise err
            if m and m.group(1) == kind and (name is None or
                                             m.group(2) == name):
                return t, m.group(2)
            if collect is not None:
                collect.append(line)

    def reply(self):
        """Lets the guest go on after a READY/DONE marker."""
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def diagnostics(self):
        """What QEMU can still tell about a hung guest."""
        d = {}
        q = self.qmp
        if q is None or self.proc.poll() is not None:
            return {"qemu_exit": self.proc.poll() if self.proc else None}
        d["query-status"] = q.try_cmd("query-status")
        d["query-iothreads"] = q.try_cmd("query-iothreads")
        d["stats"] = q.try_cmd("qom-get", {"path": self.cfg.dev_path,
                                           "property": "stats"})
        vqs = []
        for i in range(max(self.cfg.num_queues or 1, 1)):
            vqs.append(q.try_cmd("x-query-virtio-queue-status", {
                "path": self.cfg.dev_path + "/virtio-backend", "queue": i}))
        d["virtio-queue-status"] = vqs
        d["virtio-status"] = q.try_cmd("x-query-virtio-status", {
            "path": self.cfg.dev_path + "/virtio-backend"})
        return d

    def stop(self, timeout=10):
        """Waits for QEMU to exit (the guest powers off), then kills it."""
        if self.proc is None:
            return None
        self.killed = end_process(self.proc, timeout)
        if self.qmp:
            self.qmp.close()
        self.log.close()
        return self.proc.returncode


def build_guest_if_needed(cfg):
    manifest = os.path.join(GUEST_DIR, "guest.json")
    srcs = [os.path.join(HERE, f) for f in
            ("init", "build-guest.sh", "mkcpio.py")]
    stale = not os.path.exists(manifest) or any(
        os.path.getmtime(s) > os.path.getmtime(manifest) for s in srcs)
    if cfg.build_guest or stale:
        subprocess.run([os.path.join(HERE, "build-guest.sh")], check=True,
                       stdout=sys.stderr)
        os.utime(manifest)
    with open(manifest) as f:
        return json.load(f)


def make_disk(cfg, rundir):
    """Creates the image (unless --disk-path) and returns (blockdev, path)."""
    cache = {"direct": cfg.direct, "no-flush": False}
    if cfg.backend == "null":
        return {"driver": "null-co", "node-name": "disk0",
                "size": cfg.disk_size, "read-zeroes": True}, None
    path = cfg.disk_path
    if not path:
        path = os.path.join(cfg.disk_dir, "vbp-%d-%s.img" %
                            (os.getpid(), cfg.backend))
        if cfg.backend == "raw":
            with open(path, "wb") as f:
                f.truncate(cfg.disk_size)
        else:
            subprocess.run([cfg.qemu_img, "create", "-q", "-f", "qcow2",
                            "-o", "preallocation=" + cfg.qcow2_prealloc,
                            path, str(cfg.disk_size)], check=True)
    proto = {"driver": "file", "filename": path, "aio": cfg.aio,
             "cache": cache}
    fmt = "raw" if cfg.backend == "raw" else "qcow2"
    return {"driver": fmt, "node-name": "disk0", "file": proto,
            "cache": cache}, path


def device_json(cfg, iothreads):
    dev = {"driver": cfg.device, "id": "disk0", "drive": "disk0"}
    extra = parse_props(cfg.device_prop)
    if cfg.num_queues:
        dev["num-queues"] = cfg.num_queues
    nq = extra.get("num-queues", cfg.num_queues) or 1
    if cfg.mapping_json:
        dev["iothread-vq-mapping"] = json.loads(cfg.mapping_json)
    elif iothreads and cfg.mapping == "vq":
        dev["iothread-vq-mapping"] = [
            {"iothread": iot, "vqs": [q for q in range(nq)
                                      if q % len(iothreads) == i]}
            for i, iot in enumerate(iothreads) if i < nq]
    elif iothreads and cfg.mapping == "single":
        dev["iothread"] = iothreads[0]
    dev.update(extra)
    return dev


def job_list(cfg):
    """[(name, text, timeout)] from --job and --config."""
    jobs = []
    for spec in cfg.job:
        name, sep, path = spec.partition("=")
        if not sep:
            path = name
            name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            jobs.append((name, f.read(), cfg.job_timeout))
    for j in cfg.jobs_inline:
        jobs.append((j["name"], j["text"], j.get("timeout", cfg.job_timeout)))
    for name, _, _ in jobs:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise Failure("bad job name %r (letters, digits, _.+- only)" %
                          name, 3)
    if len({n for n, _, _ in jobs}) != len(jobs):
        raise Failure("job names must be unique", 3)
    return jobs


def make_initrd(base, rundir, jobs, cfg):
    """A small cpio with /job, then the base initramfs.

    Linux unpacks concatenated archives one after the other.  The small
    uncompressed one comes first because the base may be LZ4 (legacy
    format), which has no end marker: the kernel decompresses it up to the
    end of the initrd, so nothing may follow it."""
    path = os.path.join(rundir, "initrd")
    with open(path, "wb") as out, open(base, "rb") as f:
        w = mkcpio.CpioWriter(out)
        w.add_dir("job")
        script = ["# generated by run-guest.py"]
        for line in cfg.guest_setup:
            script.append(line)
        if cfg.scheduler:
            script.append("for q in /sys/block/vd*/queue/scheduler; do "
                          "echo %s > $q; done" % shlex.quote(cfg.scheduler))
        for name, text, timeout in jobs:
            if not cfg.no_job_defaults:
                text = JOB_DEFAULTS + "\n" + text
            w.add_file("job/%s.fio" % name, text.encode())
            script.append("vbp_fio %s /job/%s.fio %d" % (name, name, timeout))
        w.add_file("job/run.sh", ("\n".join(script) + "\n").encode(), 0o755)
        w.add_file("job/ndisks", b"1\n")
        w.close()
        shutil.copyfileobj(f, out)
    return path


def snapshot(guest, cfg, ids):
    """Host-side counters: device stats, CPU time of QEMU's threads."""
    snap = {"t": time.monotonic(), "threads": thread_times(guest.proc.pid)}
    stats = guest.qmp.try_cmd("qom-get", {"path": cfg.dev_path,
                                          "property": "stats"})
    snap["stats"] = stats if isinstance(stats, list) else None
    return snap


def cpu_delta(before, after, ids, pid, ios):
    """CPU seconds per thread group between two snapshots."""
    def one(tid):
        b = before["threads"].get(tid)
        a = after["threads"].get(tid)
        if not a:
            return None
        d = {"tid": tid, "name": a[0], "cpu_s": round(a[1] - (b[1] if b else 0), 3)}
        if a[2] is not None and b and b[2] is not None:
            d["run_s"] = round((a[2] - b[2]) / 1e9, 4)
        # read/write system calls: a vCPU thread's writes are mostly
        # ioeventfd signals, i.e. guest kicks (under TCG the vCPU thread
        # itself writes the eventfd), plus timer notifications.
        for i, k in ((3, "syscr"), (4, "syscw")):
            if a[i] is not None and b and b[i] is not None:
                d[k] = a[i] - b[i]
        return d
    iot = {k: one(v) for k, v in ids["iothreads"].items()}
    vcpu = [one(t) for t in ids["vcpus"]]
    total = sum(a[1] for a in after["threads"].values()) - \
        sum(b[1] for t, b in before["threads"].items()
            if t in after["threads"])
    res = {"iothreads": iot, "vcpus": vcpu, "main": one(pid),
           "qemu_total_s": round(total, 3)}
    res["vcpu_syscw"] = sum(v.get("syscw", 0) for v in vcpu if v)
    iot_run = [x.get("run_s", x["cpu_s"]) for x in iot.values() if x]
    if ios and iot_run:
        res["iothread_us_per_io"] = round(sum(iot_run) * 1e6 / ios, 2)
    return res


SYSCALL_EVENTS = ("io_uring_enter", "ppoll", "epoll_pwait", "read", "write")


def perf_start(cfg, pid, rundir, name):
    """perf stat on every thread of QEMU, or None without --syscalls."""
    if not cfg.syscalls:
        return None
    out = os.path.join(rundir, "perf-%s.csv" % name)
    events = ["syscalls:sys_enter_" + e for e in SYSCALL_EVENTS]
    events.append("raw_syscalls:sys_enter")
    proc = subprocess.Popen(["perf", "stat", "--per-thread", "-x", ",",
                             "-o", out, "-e", ",".join(events),
                             "-p", str(pid)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # perf prints nothing once its counters are open: give it time, so
    # that the job starts after them.
    time.sleep(0.5)
    if proc.poll() is not None:
        raise Failure("perf stat failed: %s" %
                      proc.stderr.read().decode().strip(), 3)
    return proc, out


def perf_stop(handle, ids):
    """Counts per event, whole process and serving IOThreads."""
    if handle is None:
        return None
    proc, out = handle
    proc.send_signal(2)
    proc.wait(timeout=30)
    iot = set(ids["iothreads"].values())
    res = {"process": {}, "iothreads": {}}
    with open(out) as f:
        for line in f:
            # <comm>-<tid>,<count>,<unit>,<event>,...
            parts = line.strip().split(",")
            if len(parts) < 4 or not parts[1].isdigit():
                continue
            tid = int(parts[0].rsplit("-", 1)[-1])
            ev = parts[3].split(":")[-1].replace("sys_enter_", "")
            ev = "all" if ev == "sys_enter" else ev
            n = int(parts[1])
            res["process"][ev] = res["process"].get(ev, 0) + n
            if tid in iot:
                res["iothreads"][ev] = res["iothreads"].get(ev, 0) + n
    return res


def perf_stop_ratios(counts, ios):
    """perf_stop()'s counts with per-I/O ratios once the I/Os are known."""
    if ios:
        for k in ("process", "iothreads"):
            counts[k + "_per_io"] = {e: round(n / ios, 4)
                                     for e, n in counts[k].items()}
    return counts


def parse_block(lines):
    """Sections of a ===VBP-BEGIN=== ... ===VBP-END=== block."""
    sec = {}
    cur = None
    for line in lines:
        m = re.match(r"===VBP-SECTION (\S+)===\s*$", line)
        if m:
            cur = m.group(1)
            sec[cur] = []
        elif cur:
            sec[cur].append(line)
    return sec


def job_result(name, sec, before, after, ids, cfg, guest, disk_virtio):
    res = {"name": name}
    res["rc"] = int(sec.get("rc", ["-1"])[0].strip() or -1)
    t0, t1 = (float(x) for x in sec.get("seconds", ["0 0"])[0].split())
    res["guest_seconds"] = round(t1 - t0, 3)
    res["host_seconds"] = round(after["t"] - before["t"], 3)
    fio, err = (parse_json_section(sec["fio-json"]) if "fio-json" in sec
                else (None, "no fio output"))
    res["fio"] = summarize_fio(fio) if fio else {"error": err, "ios": 0}
    if cfg.full_fio and fio:
        res["fio_json"] = fio
    stderr = sec.get("stderr", [])
    res["fio_stderr"] = stderr[-40:]
    # fio reports each bad block as "verify: ..." (or "<type>: verify
    # failed ...") on stderr and ends the job with EILSEQ (84).
    verify = [l for l in stderr if l.startswith("verify:") or
              "verify failed" in l]
    res["verify_errors"] = len(verify) + sum(
        1 for j in (fio or {}).get("jobs", []) if j.get("error") == 84)
    ios = res["fio"].get("ios", 0)
    res["ios"] = ios

    irq0 = parse_interrupts("\n".join(sec.get("irq-before", [])))
    irq1 = parse_interrupts("\n".join(sec.get("irq-after", [])))
    deltas = {k: v - irq0.get(k, 0) for k, v in irq1.items()}
    prefix = (disk_virtio or "virtio") + "-"
    disk = {k: v for k, v in deltas.items()
            if (k.startswith(prefix) and not k.endswith("-config")) or
            k == disk_virtio}
    res["guest_irqs"] = disk
    res["guest_irqs_total"] = sum(disk.values())
    res["guest_other_irqs"] = {k: deltas[k] for k in
                               ("LOC", "CAL", "RES", "TLB", "IWI")
                               if k in deltas}
    b0 = parse_blkstat("\n".join(sec.get("blkstat-before", [])))
    b1 = parse_blkstat("\n".join(sec.get("blkstat-after", [])))
    res["blk_requests"] = sum(v - b0.get(k, 0) for k, v in b1.items())
    if ios:
        res["irqs_per_io"] = round(res["guest_irqs_total"] / ios, 4)

    st = delta_stats(before["stats"], after["stats"])
    if st:
        res["device_stats"] = st
        tot = st["total"]
        if ios:
            res["kicks_per_io"] = round(tot.get("kicks", 0) / ios, 4)
            res["notifies_per_io"] = round(tot.get("notifies", 0) / ios, 4)
        if tot.get("requests"):
            res["kicks_per_request"] = round(
                tot.get("kicks", 0) / tot["requests"], 4)
            res["irqs_per_request"] = round(
                res["guest_irqs_total"] / tot["requests"], 4)
    res["cpu"] = cpu_delta(before, after, ids, guest.proc.pid,
                           ios or res["blk_requests"])
    # Upstream has no kick counter.  An IOThread's read() calls are its
    # ioeventfd wakeups, i.e. guest kicks taken (coalesced kicks count
    # once, as in virtio-blk-poll's "kicks", which this matched exactly in
    # our runs), plus reads of its own AioContext notifier: an upper
    # bound.  Only meaningful when IOThreads serve the disk.
    reads = [v.get("syscr") for v in res["cpu"]["iothreads"].values()
             if v and v.get("syscr") is not None]
    if reads:
        res["kicks_est"] = sum(reads)
        if ios:
            res["kicks_est_per_io"] = round(sum(reads) / ios, 4)
    return res


def qemu_argv(cfg, meta, initrd, blockdev, device, iothreads):
    cmdline = ["console=ttyS0", "quiet", "panic=-1", "vbp.sync=1",
               "vbp.timeout=%d" % cfg.guest_timeout,
               "vbp.job_timeout=%d" % cfg.job_timeout]
    if cfg.blk_params:
        cmdline.append("vbp.blk_params=" + cfg.blk_params)
    cmdline += cfg.append
    argv = [cfg.qemu, "-name", "vm,debug-threads=on",
            "-machine", "q35", "-accel", "tcg", "-smp", str(cfg.smp),
            "-m", cfg.mem, "-nodefaults", "-display", "none", "-no-reboot",
            "-S", "-chardev", "stdio,id=ser0,signal=off",
            "-serial", "chardev:ser0",
            "-qmp", "unix:%s,server=on,wait=off" %
            os.path.join(os.path.dirname(initrd), "qmp.sock"),
            # A second monitor, free for the user's own QMP client (a QMP
            # socket serves one client at a time, this script holds the
            # first).
            "-qmp", "unix:%s,server=on,wait=off" %
            os.path.join(os.path.dirname(initrd), "qmp-user.sock"),
            "-kernel", meta["kernel"], "-initrd", initrd,
            "-append", " ".join(cmdline)]
    props = parse_props(cfg.iothread_props)
    for iot in iothreads:
        obj = {"qom-type": "iothread", "id": iot}
        obj.update(props)
        argv += ["-object", json.dumps(obj)]
    argv += ["-blockdev", json.dumps(blockdev),
             "-device", json.dumps(device)]
    argv += cfg.qemu_arg
    return argv


def pin_threads(cfg, ids, pid):
    """sched_setaffinity on vCPU threads and IOThreads (before 'cont')."""
    pinned = {}

    def lists(text, n):
        parts = text.split(":")
        if len(parts) not in (1, n):
            raise Failure("%r: give one CPU list or %d, ':'-separated" %
                          (text, n), 3)
        return [parse_cpus(p) for p in (parts * n if len(parts) == 1
                                        else parts)]
    if cfg.pin_vcpus:
        for tid, cpus in zip(ids["vcpus"], lists(cfg.pin_vcpus,
                                                 len(ids["vcpus"]))):
            os.sched_setaffinity(tid, cpus)
            pinned["vcpu%d" % ids["vcpus"].index(tid)] = sorted(cpus)
    if cfg.pin_iothreads:
        names = list(ids["iothreads"])
        for name, cpus in zip(names, lists(cfg.pin_iothreads, len(names))):
            os.sched_setaffinity(ids["iothreads"][name], cpus)
            pinned[name] = sorted(cpus)
    if cfg.pin_main:
        cpus = parse_cpus(cfg.pin_main)
        os.sched_setaffinity(pid, cpus)
        pinned["main"] = sorted(cpus)
    return pinned


def prune_runs(root, keep):
    """Removes all but the newest `keep` run directories."""
    runs = sorted(d for d in os.listdir(root)
                  if os.path.isdir(os.path.join(root, d)))
    for d in runs[:-keep] if len(runs) > keep else []:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)


def run(cfg):
    """Boots, runs the jobs, returns the result document (never raises
    for a guest problem: result["ok"] is False and result["exit"] says
    how it failed)."""
    meta = build_guest_if_needed(cfg)
    if cfg.kernel:
        meta["kernel"] = cfg.kernel
    if cfg.initrd:
        meta["initrd"] = cfg.initrd
    jobs = job_list(cfg)
    if not jobs:
        raise Failure("no jobs (--job NAME=FILE)", 3)
    os.makedirs(cfg.run_root, exist_ok=True)
    prune_runs(cfg.run_root, keep=50)
    rundir = tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"),
                              dir=cfg.run_root)
    cfg.dev_path = "/machine/peripheral/disk0"
    # The guest's watchdog for the whole run: boot, every job, and time to
    # print the results.
    cfg.guest_timeout = cfg.boot_timeout + sum(t + 60 for _, _, t in jobs)
    iothreads = ["iot%d" % i for i in range(cfg.iothreads)]
    result = {"ok": False, "exit": 2, "error": None, "run_dir": rundir,
              "guest": {"kernel": meta.get("kernel_package"),
                        "kernel_version": meta.get("kernel_version"),
                        "fio": meta.get("fio")},
              "config": {k: v for k, v in vars(cfg).items()
                         if k not in ("jobs_inline",)},
              "jobs": []}
    blockdev, disk_path = make_disk(cfg, rundir)
    device = device_json(cfg, iothreads)
    initrd = make_initrd(meta["initrd"], rundir, jobs, cfg)
    argv = qemu_argv(cfg, meta, initrd, blockdev, device, iothreads)
    result["qemu_argv"] = argv
    guest = Guest(cfg, rundir)
    t_start = time.monotonic()
    try:
        try:
            guest.start(argv)
        except (OSError, ValueError) as e:
            time.sleep(0.2)
            guest.stderr.seek(0)
            msg = guest.stderr.read().strip() or str(e)
            raise Failure("QEMU did not start: %s" % msg, 3) from None
        ids = {"iothreads": {}, "vcpus": []}
        for it in guest.qmp.cmd("query-iothreads"):
            ids["iothreads"][it["id"]] = it["thread-id"]
        ids["vcpus"] = [c["thread-id"] for c in
                        guest.qmp.cmd("query-cpus-fast")]
        # Serving threads not under /objects (virtio-blk-poll's own
        # vbp-pollN when no IOThread is given) are in its stats.
        stats = guest.qmp.try_cmd("qom-get", {"path": cfg.dev_path,
                                              "property": "stats"})
        for q in stats if isinstance(stats, list) else []:
            if q.get("thread-id") and \
                    q["thread-id"] not in ids["iothreads"].values():
                ids["iothreads"][q.get("iothread", "?")] = q["thread-id"]
        result["threads"] = ids
        result["pinned"] = pin_threads(cfg, ids, guest.proc.pid)
        guest.qmp.cmd("cont")
        t_cont = time.monotonic()

        boot = []
        guest.expect(t_cont + cfg.boot_timeout, "BOOT")
        t_boot, _ = guest.expect(t_cont + cfg.boot_timeout, "BOOT-END",
                                 collect=boot)
        result["boot_s"] = round(t_boot - t_cont, 3)
        result["guest_boot"] = boot
        disk_virtio = None
        for line in boot:
            m = re.match(r"disk vda virtio=(\S+)", line)
            if m:
                disk_virtio = m.group(1)
        if disk_virtio is None:
            raise Failure("the guest found no virtio disk (see guest_boot)")

        for name, _, timeout in jobs:
            guest.expect(time.monotonic() + 60, "READY", name)
            perf = perf_start(cfg, guest.proc.pid, rundir, name)
            before = snapshot(guest, cfg, ids)
            guest.reply()
            guest.expect(time.monotonic() + timeout + cfg.host_slack,
                         "DONE", name)
            after = snapshot(guest, cfg, ids)
            perf_counts = perf_stop(perf, ids)
            guest.reply()
            guest.expect(time.monotonic() + 60, "BEGIN", name)
            block = []
            guest.expect(time.monotonic() + 60, "END", name, collect=block)
            res = job_result(name, parse_block(block), before, after, ids,
                             cfg, guest, disk_virtio)
            if perf_counts is not None:
                res["syscalls"] = perf_stop_ratios(perf_counts, res["ios"])
            result["jobs"].append(res)
            print("run-guest: %s: %s" % (name, one_line(res)),
                  file=sys.stderr)
        guest.expect(time.monotonic() + 30, "ALL-DONE")
        bad = [j["name"] for j in result["jobs"]
               if j["rc"] != 0 or j["verify_errors"] or
               j["fio"].get("job_errors") or "error" in j["fio"]]
        result["ok"] = not bad
        result["exit"] = 1 if bad else 0
        if bad:
            result["error"] = "job(s) failed: %s" % ", ".join(bad)
    except Failure as e:
        result["error"] = str(e)
        result["exit"] = e.code
        if getattr(e, "guest_report", None) is not None:
            result["guest_report"] = e.guest_report
        result["host_diagnostics"] = guest.diagnostics()
        result["console_tail"] = guest.tail
    finally:
        rc = guest.stop(timeout=10 if result["ok"] else 0.1)
        result["qemu_exit"] = rc
        result["qemu_killed"] = guest.killed
        result["total_s"] = round(time.monotonic() - t_start, 3)
        try:
            guest.stderr.seek(0)
            err = guest.stderr.read().strip()
            if err:
                result["qemu_stderr"] = err.splitlines()[-30:]
        except (AttributeError, ValueError):
            pass
        if disk_path and not cfg.disk_path and not cfg.keep_disk:
            os.unlink(disk_path)
        os.unlink(initrd)
    if not result["ok"]:
        print("run-guest: FAILED: %s (console log: %s/serial.log)" %
              (result["error"], rundir), file=sys.stderr)
    return result


def one_line(res):
    """A short human summary of one job's result."""
    parts = ["%d I/Os in %.2fs" % (res["ios"], res["guest_seconds"])]
    for j in res["fio"].get("jobs", []):
        for ddir in ("read", "write"):
            if ddir in j:
                parts.append("%s %.0f IOPS p50 %.0fus" % (
                    ddir, j[ddir]["iops"],
                    j[ddir]["lat_ns"].get("50", 0) / 1000))
    if "irqs_per_io" in res:
        parts.append("irqs/io %.3f" % res["irqs_per_io"])
    if "kicks_per_io" in res:
        parts.append("kicks/io %.3f" % res["kicks_per_io"])
    elif "kicks_est_per_io" in res:
        parts.append("kicks/io ~%.3f" % res["kicks_est_per_io"])
    if res["verify_errors"]:
        parts.append("VERIFY ERRORS %d" % res["verify_errors"])
    if res["rc"]:
        parts.append("rc %d" % res["rc"])
    return ", ".join(parts)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    a = ap.add_argument
    a("--config", help="JSON file with any of these options (long names "
      "with _), plus \"jobs\": [{\"name\", \"text\", \"timeout\"}]; "
      "command line options win")
    g = ap.add_argument_group("disk device")
    g.add_argument("--device", default="virtio-blk-poll-pci",
                   help="device driver: virtio-blk-poll-pci (default), "
                   "virtio-blk-pci, or 'poll'/'upstream'")
    g.add_argument("--iothreads", type=int, default=1,
                   help="IOThreads iot0..iotN-1 to create (default 1)")
    g.add_argument("--iothread-props", action="append", default=[],
                   help="k=v,... for every IOThread, e.g. poll-max-ns=200000")
    g.add_argument("--num-queues", type=int, default=0,
                   help="virtqueues (default: one per vCPU, as "
                   "virtio-blk's default)")
    g.add_argument("--mapping", choices=("vq", "single", "none"),
                   default="vq", help="vq: iothread-vq-mapping, queue i on "
                   "IOThread i %% N (default); single: iothread=iot0; none")
    g.add_argument("--mapping-json", help="explicit iothread-vq-mapping")
    g.add_argument("--device-prop", action="append", default=[],
                   help="k=v,... or a JSON object: more -device properties")
    g = ap.add_argument_group("backend")
    g.add_argument("--backend", choices=("raw", "qcow2", "null"),
                   default="raw")
    g.add_argument("--disk-size", type=parse_size, default="256M")
    g.add_argument("--disk-dir", default="/dev/shm",
                   help="where the image is created (default /dev/shm)")
    g.add_argument("--disk-path", help="use this existing image instead")
    g.add_argument("--keep-disk", action="store_true")
    g.add_argument("--aio", default="io_uring")
    g.add_argument("--no-direct", dest="direct", action="store_false",
                   help="cache.direct=off (default on)")
    g.add_argument("--qcow2-prealloc", default="metadata")
    g = ap.add_argument_group("guest")
    g.add_argument("--job", action="append", default=[],
                   help="[NAME=]FIO_JOB_FILE, in order (repeatable)")
    g.add_argument("--no-job-defaults", action="store_true",
                   help="do not prepend filename=/dev/vda, direct=1, "
                   "lat_percentiles=1")
    g.add_argument("--blk-params", default="",
                   help="virtio_blk module parameters, k=v,k=v "
                   "(e.g. poll_queues=1)")
    g.add_argument("--scheduler", default="none",
                   help="guest I/O scheduler for vd* (default none; '' "
                   "keeps the kernel's choice)")
    g.add_argument("--guest-setup", action="append", default=[],
                   help="shell line run in the guest before the jobs")
    g.add_argument("--append", action="append", default=[],
                   help="more kernel command line arguments")
    g.add_argument("--kernel", help="guest kernel (default: from "
                   "build/guest/guest.json)")
    g.add_argument("--initrd", help="base initramfs (default: from "
                   "build/guest/guest.json)")
    g.add_argument("--smp", type=int, default=2,
                   help="vCPUs (default 2; TCG guests need >= 2)")
    g.add_argument("--mem", default="1G")
    g = ap.add_argument_group("host")
    g.add_argument("--qemu", default=os.path.join(QEMU_DIR,
                                                  "qemu-system-x86_64"))
    g.add_argument("--qemu-img", default=os.path.join(QEMU_DIR, "qemu-img"))
    g.add_argument("--qemu-arg", action="append", default=[],
                   help="extra QEMU argument (repeat for each word)")
    g.add_argument("--pin-vcpus", help="CPU list for all vCPU threads, or "
                   "one per vCPU separated by ':'")
    g.add_argument("--pin-iothreads", help="CPU list for all IOThreads, or "
                   "one per IOThread (iot0:iot1:...)")
    g.add_argument("--pin-main", help="CPU list for QEMU's main thread")
    g.add_argument("--build-guest", action="store_true",
                   help="run build-guest.sh first even if up to date")
    g = ap.add_argument_group("timeouts and output")
    g.add_argument("--job-timeout", type=int, default=120,
                   help="per job, guest watchdog (default 120 s)")
    g.add_argument("--boot-timeout", type=int, default=60)
    g.add_argument("--host-slack", type=int, default=30,
                   help="the host gives up this long after the guest "
                   "watchdog should have fired (default 30 s)")
    g.add_argument("--output", "-o", help="result JSON file (default stdout)")
    g.add_argument("--syscalls", action="store_true",
                   help="count QEMU's system calls per job with perf stat")
    g.add_argument("--full-fio", action="store_true",
                   help="include fio's whole JSON output per job")
    g.add_argument("--run-root", default=os.path.join(GUEST_DIR, "runs"),
                   help="run directories (console log, QEMU stderr) go "
                   "here")
    cfg = ap.parse_args(argv)
    cfg.jobs_inline = []
    if cfg.config:
        with open(cfg.config) as f:
            conf = json.load(f)
        cfg.jobs_inline = conf.pop("jobs", [])
        defaults = vars(ap.parse_args([]))
        for k, v in conf.items():
            k = k.replace("-", "_")
            if k not in defaults:
                ap.error("unknown option %r in %s" % (k, cfg.config))
            if getattr(cfg, k) == defaults[k]:
                if k == "disk_size" and isinstance(v, str):
                    v = parse_size(v)
                setattr(cfg, k, v)
    cfg.device = {"poll": "virtio-blk-poll-pci",
                  "upstream": "virtio-blk-pci"}.get(cfg.device, cfg.device)
    if cfg.smp < 2:
        ap.error("--smp must be >= 2 under TCG (see DESIGN.md)")
    if cfg.iothreads == 0:
        cfg.mapping = "none"
    if not cfg.num_queues:
        # virtio-blk's own default, made explicit for the queue mapping.
        cfg.num_queues = cfg.smp
    return cfg


def main():
    cfg = parse_args()
    try:
        result = run(cfg)
    except Failure as e:
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
