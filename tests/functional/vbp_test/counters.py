"""Host-side counters: CPU time of QEMU's threads, the guest's interrupts
and block statistics (printed by /init), the device's stats, and QEMU's
system calls (perf stat)."""
import os
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def total(stats, key):
    """@key summed over the queues of the device's stats."""
    return sum(q.get(key, 0) for q in stats) if isinstance(stats, list) \
        else 0


def polling(stats):
    """The queues of the device's stats that are polling."""
    return [q.get("queue") for q in stats or [] if q.get("polling")]


def paths(stats):
    """The I/O paths of the device's queues (io_uring or a fallback)."""
    return sorted({q.get("path") for q in stats or []})


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


def cpu_delta(before, after, ids, pid, ios):
    """CPU seconds per thread group between two snapshots."""
    def one(tid):
        b = before["threads"].get(tid)
        a = after["threads"].get(tid)
        if not a:
            return None
        d = {"tid": tid, "name": a[0],
             "cpu_s": round(a[1] - (b[1] if b else 0), 3)}
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


def perf_start(pid, rundir, name):
    """perf stat on every thread of QEMU; perf_stop() ends it."""
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
        raise OSError("perf stat failed: %s" %
                      proc.stderr.read().decode().strip())
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
