"""benchmark.py's results: the metrics of each boot's raw document,
results.json (spread over the rounds, ratios to A, checks, and with
--queues the scaling over the queue shapes), results.md and the plots
(iops.png, latency.png, notifications.png, cpu.png, queues.png)."""
import functools
import json
import os
import statistics

IDLE = "idle"
OTHERS_WARN = 0.5     # a boot with more CPUs of others' load is flagged
ALL_AGREE = ("fio, guest block layer and device request counts agree; "
             "virtio-blk-poll's kick counter matches its IOThreads' eventfd "
             "reads; idle IOThreads used < 2% of a CPU and no queue was left "
             "polling")
# metric -> (label, unit); lower is better, but for the two IOPS ones
METRICS = {
    "iops": ("IOPS", ""),
    "lat_p50_us": ("lat p50", "us"),
    "lat_p99_us": ("lat p99", "us"),
    "lat_p99.9_us": ("lat p99.9", "us"),
    "kicks_per_io": ("guest kicks / I/O", ""),
    "irqs_per_io": ("guest interrupts / I/O", ""),
    "iot_cpu_s_per_kio": ("IOThread CPU s / 1000 I/O", "s"),
    "vcpu_cpu_s_per_kio": ("vCPU CPU s / 1000 I/O (the guest side)", "s"),
    "iops_per_qemu_cpu_s": ("I/O per CPU-second of all QEMU threads", ""),
    "uring_enter_per_io": ("io_uring_enter / I/O (all QEMU)", ""),
    "wait_per_io": ("ppoll + epoll_pwait / I/O (all QEMU)", ""),
    "syscalls_per_io": ("system calls / I/O (all QEMU)", ""),
}
IDLE_METRICS = {"iot_cpu_pct": "serving IOThreads, % of one CPU",
                "vcpu_cpu_pct": "vCPU threads, % of one CPU",
                "qemu_cpu_pct": "all of QEMU, % of one CPU"}
COLORS = {"A": "#7f7f7f", "B": "#1f77b4", "C": "#d62728", "D": "#2ca02c",
          "E": "#9467bd"}


def job_metrics(job, lat_dir):
    """The numbers of one fio job of one boot (@lat_dir None: the idle
    phase, with its CPU use in % of one CPU)."""
    ios = job.get("ios") or 0
    m, iops, lat = {"ios": ios}, 0.0, None
    for fj in job.get("fio", {}).get("jobs", []):
        iops += sum(fj[d]["iops"] for d in ("read", "write", "trim")
                    if d in fj)
        lat = lat or fj.get(lat_dir) or fj.get("read") or fj.get("write")
    m["iops"] = round(iops, 1)
    for p in ("50", "99", "99.9"):
        if lat and p in lat.get("lat_ns", {}):
            m["lat_p%s_us" % p] = round(lat["lat_ns"][p] / 1000, 1)
    # The device's own kick counter; upstream has none: its IOThreads'
    # eventfd reads instead
    own, est = "kicks_per_io" in job, "kicks_est_per_io" in job
    if own or est:
        m["kicks_per_io"] = job["kicks_per_io" if own else "kicks_est_per_io"]
        m["kicks_estimated"] = not own
    if own and est:
        m["kicks_est_per_io"] = job["kicks_est_per_io"]
    if "irqs_per_io" in job:
        m["irqs_per_io"] = job["irqs_per_io"]
    cpu = job.get("cpu", {})
    iot, vcpu = (sum(v.get("run_s", v.get("cpu_s", 0)) for v in threads if v)
                 for threads in (cpu.get("iothreads", {}).values(),
                                 cpu.get("vcpus", [])))
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
    secs = m["host_s"] = job.get("host_seconds")
    m["blk_requests"] = job.get("blk_requests")
    st = (job.get("device_stats") or {}).get("total")
    if st:
        m.update(("device_" + k, st.get(k))
                 for k in ("requests", "kicks", "notifies"))
        if st.get("used-updates"):
            m["requests_per_batch"] = round(
                st.get("requests", 0) / st["used-updates"], 2)
        m["poll_ms"] = round(st.get("poll-ns", 0) / 1e6, 1)
        m.update((k.replace("-", "_"), st.get(k))
                 for k in ("wakeups", "fast-rw", "fallback-rw"))
        m["polling_after"] = [q.get("polling") for q in
                              job["device_stats"].get("queues", [])]
    for k in ("iot", "vcpu", "qemu") if lat_dir is None and secs else ():
        if m.get(k + "_cpu_s") is not None:
            m[k + "_cpu_pct"] = round(m[k + "_cpu_s"] * 100 / secs, 2)
    return m


def groups(meta):
    """What the results are grouped by: [(name, backend, queues)] in
    order.  Without --queues the backends ("null", queues None); with it
    one per backend and shape ("null q2", "null", 2)."""
    if meta.get("groups"):
        return [(g["name"], g["backend"], g["queues"])
                for g in meta["groups"]]
    return [(b, b, None) for b in meta["options"]["backends"]]


def series(values):
    """The values of every round and their median/min/max."""
    v = [x for x in values if x is not None]
    return {"values": values, "stats": {
        "median": statistics.median(v), "min": min(v), "max": max(v),
        "n": len(v)} if v else None}


def aggregate(out, meta, runs):
    """results.json: per backend, workload, metric and config the values
    of every round, their median/min/max, and the per-round ratio to A."""
    wls = meta["workloads"]
    per = {}      # (backend, config, round) -> {workload: metrics}
    for e in (e for e in runs if e.get("ok")):
        with open(os.path.join(out, e["file"])) as f:
            doc = json.load(f)
        per[(e["backend"], e["config"], e["round"])] = {
            j["name"]: job_metrics(j, None if j["name"] == IDLE else
                                   wls[j["name"]]["lat_dir"])
            for j in doc.get("jobs", [])
            if j["name"] == IDLE or j["name"] in wls}
        e["boot_s"] = doc.get("boot_s")
        e["clocksource"] = next(
            (ln.split()[1] for ln in doc.get("guest_boot") or []
             if ln.startswith("clocksource ") and len(ln.split()) > 1),
            None)
        meta.setdefault("guest", doc.get("guest"))
        meta.setdefault("qemu_argv_example", {})[e["config"]] = \
            doc.get("qemu_argv")
    o = meta["options"]

    def values(b, c, w, met):
        return [per.get((b, c, r), {}).get(w, {}).get(met)
                for r in range(1, o["rounds"] + 1)]

    def by_metric(b, w, mets):    # {metric: {config: series}}
        return {met: {c: series(values(b, c, w, met)) for c in o["configs"]}
                for met in mets}
    res = {}
    for b, _, _ in groups(meta):
        res[b] = {w: by_metric(b, w, METRICS) for w in o["workloads"]}
        for w in o["workloads"]:
            for met, cell in res[b][w].items():
                for c, d in cell.items():
                    if met == "kicks_per_io":
                        d["estimated"] = any(values(b, c, w,
                                                    "kicks_estimated"))
                    if c != "A" and "A" in cell:
                        d["ratio_to_A"] = series([
                            round(x / a, 4) if a and x is not None else None
                            for a, x in zip(cell["A"]["values"],
                                            d["values"])])
        if o["idle"] > 0:
            res[b][IDLE] = by_metric(b, IDLE, list(IDLE_METRICS) +
                                     ["poll_ms", "wakeups"])
    doc = {"meta": meta, "runs": runs, "results": res,
           "per_run": {"%s/%s/r%d" % k: v for k, v in sorted(per.items())},
           "checks": checks(runs, per)}
    sc = scaling(meta, res)
    if sc:
        doc["scaling"] = sc
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def scaling(meta, res):
    """With --queues: {backend: {workload: {config: {"qQ": {"iops",
    "ratio_to_A", "ratio_to_qM"}}}}}, the IOPS series of each shape, its
    ratio to A (same shape, per round) and to the config's own IOPS with
    the fewest queues M (per round); None without --queues."""
    o, shp = meta["options"], [g for g in groups(meta) if g[2]]
    out = {}
    for b in dict.fromkeys(g[1] for g in shp):
        qs = sorted((q, name) for name, bk, q in shp if bk == b)
        q0, base = qs[0]
        out[b] = {}
        for w in o["workloads"]:
            out[b][w] = {}
            for c in o["configs"]:
                ref = res[base][w]["iops"][c]["values"]
                out[b][w][c] = d = {}
                for q, name in qs:
                    cell = res[name][w]["iops"][c]
                    d["q%d" % q] = {
                        "iops": series(cell["values"]),
                        "ratio_to_A": cell.get("ratio_to_A"),
                        "ratio_to_q%d" % q0: series([
                            round(x / y, 4) if y and x is not None
                            else None for y, x in zip(ref, cell["values"])
                        ])}
    return out or None


def checks(runs, per):
    """Things that look wrong: failed boots, counters that disagree."""
    notes, load_notes = [], []
    for e in runs:
        where = "round %d %s %s" % (e["round"], e["backend"], e["config"])
        if not e.get("ok"):
            notes.append("%s attempt %d failed: exit %s, %s" % (
                where, e["attempt"], e["exit"], e.get("error")))
        if e.get("ok") and e.get("clocksource") not in (None, "tsc"):
            notes.append("%s: the guest's clocksource was %s, not tsc: "
                         "every guest clock read was an emulated device "
                         "access" % (where, e["clocksource"]))
        ld = e.get("load") or {}
        if ld.get("others_cpus", 0) > OTHERS_WARN:
            load_notes.append(
                "%s: other processes kept %.2f CPUs busy on average (peak "
                "%.2f) while it ran: its numbers are disturbed" % (
                    where, ld["others_cpus"], ld.get("others_max_cpus", 0)))
    for (b, c, r), jm in sorted(per.items()):
        for w, m in jm.items():
            where, ios = "round %d %s %s %s" % (r, b, c, w), m.get("ios") or 0
            if w == IDLE:
                if m.get("iot_cpu_pct", 0) > 2:
                    notes.append("%s: serving IOThreads used %.1f%% of a CPU "
                                 "while the guest was idle" %
                                 (where, m["iot_cpu_pct"]))
                if any(m.get("polling_after") or []):
                    notes.append("%s: a queue was still polling at the end "
                                 "of the idle phase" % where)
                continue
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
        notes.append("every boot passed; " + ALL_AGREE)
    return notes + load_notes


def fmt_s(sec):
    sec = int(round(sec))
    return "%dm%02ds" % (sec // 60, sec % 60) if sec >= 60 else "%ds" % sec


def num(x, unit=""):
    if x is None:
        return "-"
    if unit == "s":
        return "%.4f" % x
    for bound, f in ((100, "%.0f"), (10, "%.1f"), (1, "%.2f")):
        if abs(x) >= bound:
            return f % x
    return "%.3f" % x


def spread_cell(st, fmt=num, none="-"):
    """median (min-max); the median alone of one value."""
    if not st:
        return none
    if st["n"] == 1:
        return fmt(st["median"])
    return "%s (%s-%s)" % (fmt(st["median"]), fmt(st["min"]), fmt(st["max"]))


def table(hdr, rows):
    return ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def markdown(doc):
    meta, res = doc["meta"], doc["results"]
    o, mi, conf = meta["options"], meta["machine"], meta["configs"]
    cfgs, g, ld = o["configs"], meta.get("guest") or {}, meta.get("load") or {}
    L = ["# virtio-blk-poll benchmark: %s" % meta["started"], "",
         "Machine: %s CPU(s) (%s), %s GiB, kernel %s, %s, accel TCG (no "
         "KVM). QEMU: %s. Repo: %s." % (
             mi.get("nproc"), mi.get("cpu_model"), mi.get("memory_gib"),
             mi.get("kernel"), "Debian " + mi.get("debian", "?"),
             mi.get("qemu"), mi.get("repo")),
         ("Guest: %s (%s), %s; -smp %d, -m %s; num-queues=%d on %d "
          "IOThreads (iothread-vq-mapping); pinning: %s." % (
              g.get("kernel"), g.get("kernel_version"), g.get("fio"),
              o["smp"], o["mem"], o["num_queues"], o["iothreads"],
              meta.get("pinning"))) if not o.get("queues") else
         ("Guest: %s (%s), %s; -m %s; per queue shape qQ (the suffix of "
          "the backend), Q = %s: -smp max(%d, Q), num-queues=Q on Q "
          "IOThreads (iothread-vq-mapping, queue i on iot i), fio "
          "numjobs=Q at the workload's iodepth each, job i on vCPU i, "
          "reported together (group_reporting); pinning: %s." % (
              g.get("kernel"), g.get("kernel_version"), g.get("fio"),
              o["mem"], ", ".join(str(q) for q in o["queues"]), o["smp"],
              meta.get("pinning"))),
         "Rounds: %d, runtime %d s per workload, idle phase %d s; "
         "backends: %s%s; total %s." % (
             o["rounds"], o["runtime"], o["idle"], ", ".join(o["backends"]),
             "; queues: %s" % ", ".join(str(q) for q in o["queues"])
             if o.get("queues") else "", fmt_s(meta.get("total_s", 0))),
         "Host load while it ran: %.2f CPUs busy on average, of which %.2f "
         "by other processes (peak %.2f); load average %s at the start, %s "
         "at the end." % (
             ld.get("busy_cpus", 0), ld.get("others_cpus", 0),
             ld.get("others_max_cpus", 0),
             " ".join(meta.get("loadavg_start", [])),
             " ".join(meta.get("loadavg_end", []))), "",
         "Configurations: " + "; ".join(
             "**%s** %s" % (c, conf[c]["long"]) for c in cfgs) + ".", "",
         "Cells: median over the rounds (A, B, C columns); ratios to A are "
         "taken per round and shown as median (min-max). `~` marks an "
         "estimate (upstream counts no kicks: IOThread eventfd reads per "
         "I/O, an upper bound). IOPS: higher is better; everything else: "
         "lower is better."]
    names = ["%s %s" % (c, conf[c]["label"]) for c in cfgs]
    L += scaling_md(doc)
    for b, _, _ in groups(meta):
        rows = []
        for w in o["workloads"]:
            for met, (label, unit) in METRICS.items():
                cell = res[b][w][met]
                if not any(cell[c].get("stats") for c in cfgs):
                    continue
                rows.append([w, label + (" (%s)" % unit if unit and
                                         unit != "s" else "")] + [
                    num(cell[c]["stats"]["median"], unit) + (
                        "~" if cell[c].get("estimated") else "")
                    if cell[c].get("stats") else "-"
                    for c in cfgs] + [spread_cell(
                        (cell[c].get("ratio_to_A") or {}).get("stats"),
                        "%.2f".__mod__, "n/a") for c in cfgs if c != "A"])
        L += ["", "## Backend: %s" % b, ""] + table(
            ["workload", "metric"] + names +
            ["%s/A" % c for c in cfgs if c != "A"], rows)
        if IDLE in res[b]:
            L += ["", "Idle guest (%d s after the load, no disk I/O; CPU "
                  "time as %% of one host CPU, median (min-max)):" %
                  o["idle"], ""] + table(
                ["config"] + list(IDLE_METRICS.values()) +
                ["polling during idle (ms)"],
                [[n] + [spread_cell(res[b][IDLE][met][c].get("stats"))
                        for met in list(IDLE_METRICS) + ["poll_ms"]]
                 for c, n in zip(cfgs, names)])
    L += ["", "## Runs", ""] + table(
        ["round", "backend", "config", "ok", "boot s", "guest clock",
         "run s", "host busy CPUs", "others' CPUs"],
        [[e["round"], e["backend"], e["config"],
          "yes" if e.get("ok") else "**no** (%s)" % e.get("error"),
          e.get("boot_s") if e.get("boot_s") is not None else "-",
          e.get("clocksource") or "-",
          e.get("seconds"), (e.get("load") or {}).get("busy_cpus", "-"),
          (e.get("load") or {}).get("others_cpus", "-")]
         for e in doc["runs"]])
    L += ["", "## Checks", ""] + (["- " + n for n in doc["checks"]] or [
        "- nothing odd: every boot passed on the TSC clocksource, none "
        "with more than %.1f CPUs "
        "of other processes' load; %s." % (OTHERS_WARN, ALL_AGREE)])
    return "\n".join(L + [""])


def scaling_md(doc):
    """The "Multi-queue scaling" section (lines), [] without --queues."""
    sc, meta = doc.get("scaling"), doc["meta"]
    if not sc:
        return []
    cfgs, conf = meta["options"]["configs"], meta["configs"]
    ratio = functools.partial(spread_cell, fmt="%.2f".__mod__, none="-")
    rows, hdr = [], None
    for b, wls in sc.items():
        for w, by_c in wls.items():
            for c in cfgs:
                d = by_c[c]
                qs = list(d)
                base = [k for k in d[qs[0]] if k.startswith("ratio_to_q")][0]
                if hdr is None:
                    hdr = (["backend", "workload", "config"] +
                           ["IOPS %s" % q for q in qs] +
                           ["%s vs A" % q for q in qs] +
                           ["%s vs %s" % (q, base[9:]) for q in qs[1:]])
                rows.append([b, w, "%s %s" % (c, conf[c]["label"])] + [
                    num(d[q]["iops"]["stats"]["median"])
                    if d[q]["iops"]["stats"] else "-" for q in qs] + [
                    ratio((d[q]["ratio_to_A"] or {}).get("stats"))
                    if c != "A" else "-" for q in qs] + [
                    ratio(d[q][base]["stats"]) for q in qs[1:]])
    return ["", "## Multi-queue scaling", "",
            "IOPS of each queue shape qQ (num-queues=Q on Q IOThreads, "
            "queue i on iot i, fio numjobs=Q at the workload's iodepth "
            "each): median over the rounds; `qQ vs A`: the config's IOPS "
            "over A's in the same shape and round; `qQ vs q%s`: over its "
            "own IOPS with the fewest queues, in the same round; ratios as "
            "median (min-max). The tables per backend and shape follow."
            % base[10:], ""] + table(hdr, rows)


def plots(out, doc):
    """The PNGs in @out (queues.png with --queues): their paths, None
    without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    meta, res = doc["meta"], doc["results"]
    o = meta["options"]
    cfgs, wls = o["configs"], o["workloads"]
    bks = [name for name, _, _ in groups(meta)]
    tail = "\n(%d round%s, %ds runs; TCG, %s CPUs)" % (
        o["rounds"], "s" if o["rounds"] > 1 else "", o["runtime"],
        meta["machine"].get("nproc"))
    rot = {"rotation": 20, "fontsize": 7, "ha": "right"}

    def bars(ax, groups, get, hatch=False, width=0.8):
        """Grouped bars, min..max error bars; get(group) -> cell."""
        w = width / len(cfgs)
        for i, c in enumerate(cfgs):
            sts = [(gi, get(g)[c].get("stats")) for gi, g in
                   enumerate(groups)]
            sts = [(gi - width / 2 + w * (i + 0.5), st) for gi, st in sts
                   if st]
            drawn = ax.bar(
                [x for x, _ in sts], [st["median"] for _, st in sts], w,
                yerr=[[st["median"] - st["min"] for _, st in sts],
                      [st["max"] - st["median"] for _, st in sts]],
                capsize=2, color=COLORS.get(c), error_kw={"elinewidth": 0.8},
                label="%s %s" % (c, meta["configs"][c]["label"]))
            if hatch and any(get(g)[c].get("estimated") for g in groups):
                for bar in drawn:
                    bar.set_hatch("//")
                    bar.set_edgecolor("white")
        ax.set_xticks(range(len(groups)))

    def tops(ax, cell, text):
        """text(config) above each config's bar of a one-group panel."""
        for i, c in enumerate(cfgs):
            st = cell[c].get("stats")
            if st and text(c):
                ax.annotate(text(c), (-0.4 + 0.8 / len(cfgs) * (i + 0.5),
                                      st["max"]), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 2),
                            textcoords="offset points")

    def figure(name, title, shape, size, panel, **kw):
        """One panel(ax, row, col) each; one legend under the title."""
        fig, axes = plt.subplots(*shape, squeeze=False, figsize=size, **kw)
        for r in range(shape[0]):
            for c in range(shape[1]):
                panel(axes[r][c], r, c)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.suptitle(title + tail, fontsize=9)
        fig.legend(handles, labels, loc="lower center", ncol=len(labels),
                   fontsize=8, frameon=False)
        h = fig.get_size_inches()[1]
        fig.tight_layout(rect=(0, 0.45 / h, 1, 1 - 0.15 / h))
        fig.savefig(os.path.join(out, name + ".png"), dpi=110)
        plt.close(fig)
        return os.path.join(out, name + ".png")

    def iops(ax, bi, wi):      # one panel per backend and workload
        cell = res[bks[bi]][wls[wi]]["iops"]
        bars(ax, [wls[wi]], lambda g: cell)
        ax.set_xticks([])
        ax.set_title("%s\n%s" % (wls[wi], bks[bi]), fontsize=9)
        if wi == 0:
            ax.set_ylabel("IOPS (median, min..max)")
        ax.tick_params(labelsize=8)
        tops(ax, cell, lambda c: (cell[c].get("ratio_to_A") or {}).get(
            "stats") and "x%.2f" % cell[c]["ratio_to_A"]["stats"]["median"])
        ax.margins(y=0.15)

    lw = "randread-qd1" if "randread-qd1" in wls else wls[0]
    pcts = ["lat_p50_us", "lat_p99_us", "lat_p99.9_us"]

    def latency(ax, _, bi):    # p50/p99/p99.9 of 4k random read QD1
        bars(ax, pcts, lambda g: res[bks[bi]][lw][g])
        ax.set_xticklabels(["p50", "p99", "p99.9"])
        if any(res[bks[bi]][lw][g][c].get("stats") for g in pcts
               for c in cfgs):
            ax.set_yscale("log")
        ax.set_ylabel("latency (us, log scale)")
        ax.set_title("%s, %s" % (lw, bks[bi]), fontsize=9)
        ax.grid(axis="y", which="both", alpha=0.3)

    def notifications(ax, bi, mi):   # kicks (hatched: estimates), irqs
        met = ("kicks_per_io", "irqs_per_io")[mi]
        bars(ax, wls, lambda g: res[bks[bi]][g][met], mi == 0)
        ax.set_xticklabels(wls, **rot)
        ax.set_title("%s, %s%s" % (METRICS[met][0], bks[bi], " (hatched: "
                                   "estimate from IOThread eventfd reads)"
                                   if mi == 0 else ""), fontsize=8)
        ax.set_ylabel("per I/O")
        ax.grid(axis="y", alpha=0.3)

    def cpu(ax, bi, col):      # IOThread CPU per 1000 I/O, and while idle
        b = bks[bi]
        if col == 0:
            bars(ax, wls, lambda g: res[b][g]["iot_cpu_s_per_kio"])
            ax.set_xticklabels(wls, **rot)
            ax.set_ylabel("IOThread CPU s / 1000 I/O")
            ax.set_title("serving IOThreads' CPU per 1000 I/O, %s" % b,
                         fontsize=8)
            ax.grid(axis="y", alpha=0.3)
        elif IDLE in res[b]:
            cell = res[b][IDLE]["iot_cpu_pct"]
            bars(ax, ["idle"], lambda g: cell)
            ax.set_xticklabels(["idle guest"], fontsize=7)
            ax.set_ylabel("% of one CPU")
            ax.set_title("IOThreads while idle, %s" % b, fontsize=8)
            ax.set_ylim(0, max(1.0, 1.2 * max([(cell[c].get("stats") or {})
                                               .get("max", 0) for c in cfgs]
                                              + [0])))
            tops(ax, cell, lambda c: "%.2f%%" % cell[c]["stats"]["median"])
    sc = doc.get("scaling") or {}
    sbk = list(sc)

    def queues(ax, bi, wi):    # IOPS over the queue shapes, one line each
        b, w = sbk[bi], wls[wi]
        for c in cfgs:
            pts = [(int(q[1:]), d["iops"]["stats"])
                   for q, d in sc[b][w][c].items() if d["iops"]["stats"]]
            if not pts:
                continue
            ax.errorbar([q for q, _ in pts], [st["median"] for _, st in pts],
                        yerr=[[st["median"] - st["min"] for _, st in pts],
                              [st["max"] - st["median"] for _, st in pts]],
                        marker="o", capsize=2, color=COLORS.get(c),
                        label="%s %s" % (c, meta["configs"][c]["label"]))
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
        ax.set_xticks(o["queues"])
        ax.set_xticklabels([str(q) for q in o["queues"]])
        ax.set_xlabel("queues (one IOThread each)", fontsize=8)
        if wi == 0:
            ax.set_ylabel("IOPS (median, min..max)")
        ax.set_ylim(bottom=0)
        ax.set_title("%s, %s" % (w, b), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    return [
        figure("iops", "IOPS per workload and configuration (median, error "
               "bars min..max; ratio to A above the bars)",
               (len(bks), len(wls)),
               (max(8, 2.4 * len(wls) + 1), 2.8 * len(bks) + 1.2), iops),
        figure("latency", "fio lat_ns percentiles (median, min..max)",
               (1, len(bks)), (max(7, 4.5 * len(bks)), 4.4), latency),
        figure("notifications", "Guest notifications per I/O (median, "
               "min..max)", (len(bks), 2),
               (2.0 * len(wls) + 5, 3.0 * len(bks) + 1.4), notifications),
        figure("cpu", "Host CPU time of the serving IOThreads (median, "
               "min..max)", (len(bks), 2),
               (2.0 * len(wls) + 6, 3.0 * len(bks) + 1.4), cpu,
               gridspec_kw={"width_ratios": [len(wls), 1.5]})] + ([
        figure("queues", "IOPS over num-queues, one IOThread per queue, "
               "fio numjobs = queues (median, min..max; ratios in "
               "results.md)", (len(sbk), len(wls)),
               (max(8, 3.2 * len(wls) + 1), 2.8 * len(sbk) + 1.4), queues)]
        if sbk else [])
