#!/usr/bin/python3
"""Lifecycle tests: VM and device lifecycle events under fio verify.

A Linux guest (TCG) runs fio rounds (randwrite, verify=crc32c) until the
host says stop, while the host drives the event over QMP
(docs/robustness.md describes each case; vbp_test/lifecycle.py the run):
  stopcont  stop/cont at random intervals (default 20 cycles)
  savevm    savevm/loadvm on qcow2 (3)
  drain     block_resize, blockdev-mirror + pivot, snapshot onto qcow2 (1)
  reload    the guest unbinds and binds virtio_blk under I/O (3)
  unplug    device_del/device_add on a pcie-root-port (3; --pciehp:
            native PCIe hotplug instead of ACPI)
Every case also needs QEMU alive, its fio rounds verified, no kernel
BUG/Oops/WARNING, and (an ASan build as --qemu) no sanitizer report.
Prints PASS/FAIL per case, a table, "N passed, N failed"; figures go to
DIR/lifecycle.json, run directories to DIR/runs/.
Usage: test_lifecycle.py [--only CASE[,CASE]] [--cycles N|CASE=N,...]
                         [--qemu PATH] [--pciehp] [--seed N] [--out DIR]
                         [--list]
"""
import argparse
import collections
import json
import os
import random
import re
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import counters, machine, paths, suite  # noqa: E402
from vbp_test.lifecycle import (  # noqa: E402
    DEV, Failed, Harness, common_checks, describe, fio_job, loop_case, need,
    paths_of, total)
from vbp_test.suite import Case  # noqa: E402


def case_stopcont(opts, fig, problems):
    n, rnd = opts.cycles["stopcont"], random.Random(opts.seed)

    def body(h):
        fig["path"] = paths_of(h.stats())
        caught = looks = with_io = 0
        stopped, stop_ms = [], []
        last = total(h.stats(), "requests")
        for i in range(n):
            time.sleep(rnd.uniform(0.1, 0.8))
            # a queue in its polling phase right before the stop?  A few
            # looks (a phase lasts from a kick to 200 us without work)
            for _ in range(10):
                st = h.stats()
                looks += 1
                if counters.polling(st):
                    caught += 1
                    break
                time.sleep(0.01)
            with_io += total(st, "requests") > last
            t = time.monotonic()
            h.qmp.cmd("stop")
            stop_ms.append((time.monotonic() - t) * 1000)
            s1 = h.stats()
            if h.alive()["running"]:
                raise Failed("cycle %d: still running after stop" % i)
            time.sleep(rnd.uniform(0.1, 0.8))
            s2 = h.stats()
            stopped.append([total(s2, k) - total(s1, k)
                            for k in ("requests", "completions")])
            last = total(s2, "requests")
            h.qmp.cmd("cont")
            if not h.alive()["running"]:
                raise Failed("cycle %d: not running after cont" % i)
            fig["cycles"] = i + 1
        req, comp = (sum(x) for x in zip(*stopped))
        fig.update(cycles_polling=caught, cycles_with_io=with_io,
                   polling_samples="%d/%d" % (caught, looks),
                   stop_ms_max=round(max(stop_ms), 1),
                   stop_ms_mean=round(sum(stop_ms) / len(stop_ms), 1),
                   requests_while_stopped=req, completions_while_stopped=comp,
                   requests_after_last_cont=h.wait_io(200, 60))
        need(problems, (caught, "no cycle caught a queue polling"),
             (not (req or comp), "the device took %d requests and completed "
              "%d while the VM was stopped" % (req, comp)))
    loop_case(opts, fig, problems, "stopcont", 120 + 3 * n,
              ["--iothreads", "2"], fio_job(64), 500, body)
    fig["other"] = "stop max %s ms, requests while stopped %s" % (
        fig.get("stop_ms_max"), fig.get("requests_while_stopped"))
    return "%d/%d stop/cont cycles, %d caught a queue polling, %d fio " \
        "rounds, %d I/Os, 0 verify errors" % (
            fig.get("cycles", 0), n, fig.get("cycles_polling", 0),
            fig["rounds"], fig["ios"])


def case_savevm(opts, fig, problems):
    n, rnd = opts.cycles["savevm"], random.Random(opts.seed + 1)
    fig.update(savevm_s=[], loadvm_s=[], round_ok_after_loadvm=[])

    def body(h):
        fig["path"] = paths_of(h.stats())
        for i in range(1, n + 1):
            for cmd, pause in (("savevm", (1.0, 2.0)), ("loadvm", (0.5, 1.5))):
                if cmd == "loadvm":
                    h.wait_io(100, 60)
                time.sleep(rnd.uniform(*pause))
                since, t = len(h.console.lines), time.monotonic()
                out = h.qmp.hmp("%s snap%d" % (cmd, i)).strip()
                fig[cmd + "_s"].append(round(time.monotonic() - t, 2))
                if out:
                    raise Failed("%s snap%d: %s" % (cmd, i, out))
                if not h.alive()["running"]:
                    raise Failed("not running after %s snap%d" % (cmd, i))
            # the round in progress verifies data from before the rewind
            fig["round_ok_after_loadvm"].append(
                h.wait_round_ok("savevm", since, need_start=False))
            fig["cycles"] = i
        k = fig["snapshots"] = len(re.findall(r"\bsnap\d+\b",
                                              h.qmp.hmp("info snapshots")))
        need(problems, (k == n, "info snapshots lists %d snapshots, not %d"
                        % (k, n)))
        fig["requests_after_last_loadvm"] = h.wait_io(200, 60)
    loop_case(opts, fig, problems, "savevm", 120 + 40 * n,
              ["--iothreads", "1", "--mapping", "single", "--backend",
               "qcow2"], fio_job(64), 500, body)
    fig["other"] = "savevm %s s, loadvm %s s" % (fig["savevm_s"],
                                                 fig["loadvm_s"])
    return "%d/%d savevm/loadvm cycles (%s), %d fio rounds, %d I/Os, 0 " \
        "verify errors" % (fig.get("cycles", 0), n, fig["other"],
                           fig["rounds"], fig["ios"])


def case_drain(opts, fig, problems):
    n, made, pivots, steps = opts.cycles["drain"], [], [], []
    fig["steps"] = steps

    def path(h, timeout, done=lambda p: p == ["io_uring"]):
        """Every queue's path once done(it) (all on io_uring), or after
        @timeout s."""
        return machine.until(lambda: paths_of(h.stats()), done, timeout)

    def step(h, what, p, st0=None, sfx="_after"):
        """Records a step; with @st0, the I/O on each path from there to
        300 requests later; returns the stats then."""
        steps.append({"what": what, "path": p})
        if st0:
            h.wait_io(300, 60)
            st = h.stats()
            for k in ("fast-rw", "fallback-rw"):
                steps[-1][k.replace("-", "_") + sfx] = \
                    total(st, k) - total(st0, k)
            return st

    def body(h):
        p = path(h, 0)
        step(h, "start", p)
        if p != ["io_uring"]:
            raise Failed("raw image not on the io_uring path at start: %s" %
                         p)
        node, size = "disk0", 256 << 20
        for cyc in range(1, n + 1):
            size += 64 << 20
            h.qmp.cmd("block_resize", {"node-name": node, "size": size})
            p = path(h, 5)
            step(h, "block_resize", p)
            need(problems, (p == ["io_uring"], "fast path not back 5 s after "
                            "block_resize: path %s" % p))
            h.wait_io(200, 60)
            # mirror to a new raw file and pivot to it
            made.append(os.path.join(h.cfg.disk_dir, "vbp-lc-%d-mirror%d.img"
                                     % (os.getpid(), cyc)))
            with open(made[-1], "wb") as f:
                f.truncate(size)
            tnode, job = "mirror%d" % cyc, "mirror-job%d" % cyc
            h.qmp.cmd("blockdev-add", machine.make_disk(
                "raw", size, made[-1], node=tnode)[0])
            since, st0, seen = len(h.qmp.events), h.stats(), set()
            h.qmp.cmd("blockdev-mirror", {"job-id": job, "device": node,
                                          "target": tnode, "sync": "full"})
            h.until(lambda: seen.update(paths_of(h.stats())) or
                    h.qmp.wait_event("BLOCK_JOB_READY", 0, {"device": job},
                                     since), 120,
                    lambda: "mirror job never became ready", 0.05)
            # guest writes go through the mirror for a while
            seen.update(paths_of(step(h, "mirror ready", None, st0,
                                      "_during_job")))
            steps[-1]["paths_during_job"] = sorted(seen)
            need(problems, (seen and "io_uring" not in seen, "stats path "
                            "during the mirror job: %s (want only fallback "
                            "reasons)" % sorted(seen)))
            h.qmp.cmd("job-complete", {"id": job})
            pivots.append(time.monotonic())
            done = h.qmp.wait_event("BLOCK_JOB_COMPLETED", 60,
                                    {"device": job}, since)
            err = done["data"].get("error") if done else "no event in 60 s"
            if err:
                raise Failed("mirror job failed: %s" % err)
            p = path(h, 10)
            step(h, "pivot", p, h.stats())
            top = steps[-1]["node"] = next((
                b["inserted"]["node-name"] for b in h.qmp.cmd("query-block")
                if b.get("qdev", "").startswith(DEV)), None)
            need(problems, (p == ["io_uring"], "path after the pivot to the "
                            "raw target: %s" % p),
                 (top == tnode, "the device is on %s after the pivot, not %s"
                  % (top, tnode)),
                 (steps[-1]["fast_rw_after"], "no io_uring I/O after the "
                  "pivot"))
            node, fig["cycles"] = tnode, cyc
        # snapshot onto a qcow2 overlay
        made.append(os.path.join(h.cfg.disk_dir, "vbp-lc-%d-overlay.qcow2" %
                                 os.getpid()))
        h.qmp.cmd("blockdev-snapshot-sync", {
            "node-name": node, "snapshot-file": made[-1],
            "snapshot-node-name": "overlay0", "format": "qcow2"})
        p = path(h, 10, lambda p: "io_uring" not in p)
        step(h, "snapshot", p, h.stats())
        need(problems, ("io_uring" not in p, "path after the snapshot onto "
                        "qcow2: %s" % p),
             (not steps[-1]["fast_rw_after"], "io_uring I/O on the qcow2 "
              "overlay"))
        # let the round that spans the pivot, and one more, finish
        last = h.console.markers("ROUND")
        h.wait_marker("ROUND-END", "drain %d" % (
            int(last[-1][2].split()[1]) + 1 if last else 1), 120)
    h = loop_case(opts, fig, problems, "drain", 120 + 60 * n,
                  ["--iothreads", "2"], fio_job(128), 500, body)
    for f in made:
        if os.path.exists(f):
            os.unlink(f)
    # a round that began before the mirror job and verified after the
    # pivot: its writes were copied by the job and read from the target
    marks = h.console.markers if h.qemu else lambda kind: []
    starts = {int(t.split()[1]): tm for _, tm, t in marks("ROUND")}
    ends = [(p, tm) for _, tm, t in marks("ROUND-END") for p in [t.split()]]
    span = fig["rounds_spanning_pivot"] = [
        int(p[1]) for p, tm in ends for tp in pivots
        if starts.get(int(p[1]), tm) < tp < tm and "rc=0" in p and
        "verify=0" in p]
    need(problems, (span or problems, "no fio round both started before the "
                    "pivot and verified after it"))
    trail = [(s["what"], "/".join(s["path"] or s.get("paths_during_job", [])))
             for s in steps]
    fig["other"] = "paths " + " -> ".join(p for _, p in trail)
    return "%s; %d fio rounds (%s across the pivot), %d I/Os, 0 verify " \
        "errors" % (" -> ".join("%s %s" % w for w in trail), fig["rounds"],
                    span, fig["ios"])


def case_reload(opts, fig, problems):
    n, jobs = opts.cycles["reload"], []
    for i in range(1, n + 1):
        jobs += [("reload%d" % i, "vbp_cmd reload%d 90 -- sh /job/lifecycle"
                  ".sh reload reload%d" % (i, i), 90),
                 ("verify%d" % i, "export VBP_DISK=/dev/vbpdisk; vbp_fio "
                  "verify%d /job/verify.fio 120" % i, 120)]
    h = Harness(opts, ["--iothreads", "2"], jobs, {
        "verify.fio": fio_job(64), "bg.fio": fio_job(256, "psync", 1, 8)})

    def body(h):
        deadline = time.monotonic() + 120 + n * 240
        while not h.console.wait_marker("READY", "dmesg", 0.5):
            if not h.thread.is_alive():
                raise Failed("run ended early: %s" %
                             (h.result or {}).get("error"))
            if time.monotonic() > deadline:
                raise Failed("the guest did not get through the reload "
                             "jobs in time")
            try:
                h.alive()
            except Failed:
                # after its last job the guest powers off (QEMU exits 0),
                # maybe between two looks: the console may lag behind
                if not h.console.wait_marker("READY", "dmesg", 1):
                    raise
    res = h.drive(body, 180, problems)
    fig.update(cycles=0, bg_ios=0, bg_verify_errors=0, reloads=[],
               verify_errors=0, ios=0)
    jobs_res = {j["name"]: j for j in res.get("jobs", [])}
    for i in range(1, n + 1):
        out = h.stdout("reload%d" % i)
        info = dict(kv for x in out if x.startswith("RELOAD ")
                    for kv in re.findall(r"(\S+)=(\S*)", x))
        ver = jobs_res.get("verify%d" % i, {})
        rc, errors, ios = (ver.get(k) for k in ("rc", "verify_errors", "ios"))
        info.update(verify_ios=ios or 0, verify_rc=rc, verify_errors=errors)
        fig["reloads"].append(info)
        fig["bg_ios"] += int(info.get("bg-ios") or 0)
        fig["bg_verify_errors"] += int(info.get("bg-verify") or 0)
        if not out:
            problems.append("reload%d: no result from the guest" % i)
            continue
        verified = rc == 0 and not errors and ios
        need(problems, (info.get("unbind-rc") == info.get("bind-rc") == "0",
                        "reload%d: unbind rc %s, bind rc %s" % (
                            i, info.get("unbind-rc"), info.get("bind-rc"))),
             ("rebound" in " ".join(out), "reload%d: no disk after bind: %s"
              % (i, out[-1])),
             (verified, "reload%d: verify job rc %s, %s verify errors, %s "
              "I/Os" % (i, rc, errors, ios)))
        fig["cycles"] += bool(verified)
        fig["verify_errors"] += errors or 0
        fig["ios"] += ios or 0
    need(problems, (not fig["bg_verify_errors"], "%d verify errors in the "
                    "background fio (a mismatch, not an I/O error)" %
                    fig["bg_verify_errors"]))
    common_checks(h, res, None, problems, fig)
    fig["other"] = "bg fio I/Os %s, bg verify errors %s" % (
        fig["bg_ios"], fig["bg_verify_errors"])
    return "%d/%d unbind/bind cycles under load (in flight at unbind: %s), " \
        "verify after each: %d I/Os, 0 verify errors" % (
            fig["cycles"], n, "/".join(r.get("inflight-before-unbind", "?")
                                       for r in fig["reloads"]), fig["ios"])


def counts(pid):
    """QEMU's threads (but thread-pool and io_uring workers, which come and
    go on their own) and fds."""
    th = [c for c, *_ in counters.thread_times(pid).values()]
    steady = sorted(c for c in th
                    if c != "worker" and not c.startswith("iou-wrk-"))
    fds = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    kinds = collections.Counter(re.sub(r"\d+", "N", t.split(":", 1)[0] if
                                       ":" in t and not t.startswith("/")
                                       else t) for t in fds)
    return {"threads": len(th), "threads_steady": len(steady),
            "workers": len(th) - len(steady), "fds": len(fds),
            "thread_names": steady, "fd_kinds": dict(kinds), "tf": "%d/%d" %
            (len(steady), len(fds))}


def case_unplug(opts, fig, problems):
    n, cycles = opts.cycles["unplug"], []
    fig.update(unplug=cycles, hotplug="pciehp" if opts.pciehp else "acpi")
    # pciehp: the guest's own hotplug instead of ACPI (slower: Linux waits
    # 5 s after the attention button before it powers the slot off)
    pre = (["-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
           if opts.pciehp else []) + [
        "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1"]

    def body(h):
        pid, since = h.qemu.pid, 0        # since: console line of rounds
        dev = machine.device_json(h.cfg.device, [], h.cfg.num_queues,
                                  h.cfg.mapping, None, h.cfg.device_prop)

        def iothreads():
            return sorted({q.get("iothread") for q in h.stats()})
        fig.update(iothreads_before=iothreads(), counts_before=counts(pid))
        for i in range(1, n + 1):
            # a verified round on this disk; the next one is cut by the
            # unplug
            cyc = {"cycle": i,
                   "round_ok_before_unplug": h.wait_round_ok("unplug", since)}
            h.wait_io(300, 60)
            cyc["iothread"] = iothreads()
            ev, t = len(h.qmp.events), time.monotonic()
            h.qmp.cmd("device_del", {"id": "disk0"})
            if not h.qmp.wait_event("DEVICE_DELETED", 90,
                                    {"device": "disk0"}, ev):
                raise Failed("no DEVICE_DELETED event within 90s")
            cyc["unplug_s"] = round(time.monotonic() - t, 2)
            st = h.alive()
            if not st["running"]:
                raise Failed("cycle %d: VM not running after unplug: %s" %
                             (i, st))
            gone = h.qmp.try_cmd("qom-get", {"path": DEV,
                                             "property": "stats"})
            time.sleep(1.0)   # what the unplug set off settles (BHs, RCU)
            c = counts(pid)
            for _ in range(20):
                time.sleep(0.25)
                c, c2 = counts(pid), c
                if c["tf"] == c2["tf"]:
                    break
            cyc.update({k: c[k] for k in ("threads", "threads_steady",
                                          "workers", "fds", "tf")})
            left = cyc["vbp_threads_left"] = [
                x for x in c["thread_names"] if x.startswith("IO vbp-poll")]
            first = fig.setdefault("counts_after_first_unplug", c)
            if c["tf"] != first["tf"]:
                a, b = c["fd_kinds"], first["fd_kinds"]
                cyc["fd_diff"] = {k: a.get(k, 0) - b.get(k, 0)
                                  for k in set(a) | set(b)
                                  if a.get(k, 0) != b.get(k, 0)}
                cyc["thread_diff"] = sorted(set(c["thread_names"]) ^
                                            set(first["thread_names"]))
            need(problems, ("error" in gone, "cycle %d: %s still there after "
                            "DEVICE_DELETED" % (i, DEV)),
                 (not left, "cycle %d: the device's own IOThread survived "
                  "the unplug: %s" % (i, left)),
                 (c["tf"] == first["tf"], "cycle %d: %d threads (w/o "
                  "workers), %d fds after unplug; %d, %d after the first "
                  "(fds %s)" % (i, c["threads_steady"], c["fds"],
                                first["threads_steady"], first["fds"],
                                cyc.get("fd_diff"))))
            # plug it in again, same properties
            t, since = time.monotonic(), len(h.console.lines)
            h.qmp.cmd("device_add", dev)
            cyc["requests_after_replug"] = h.wait_io(300, 90)
            cyc["replug_to_io_s"] = round(time.monotonic() - t, 2)
            c = counts(pid)
            cyc.update(threads_replugged=c["threads_steady"],
                       fds_replugged=c["fds"], tf_replugged=c["tf"],
                       iothread_replugged=iothreads())
            cycles.append(cyc)
            fig["cycles"] = i
        fig["round_ok_after_last_replug"] = h.wait_round_ok("unplug", since)
    # rounds cut short by the unplug fail (EIO); a mismatch never may
    h = loop_case(opts, fig, problems, "unplug", 180 + 90 * n,
                  ["--iothreads", "0", "--device-prop", "bus=rp1"],
                  fio_job(32, "psync", 1, 8), 300, body, pre, False)
    rounds = h.rounds("unplug")
    ok = fig["rounds_ok"] = len([r for r in rounds if r["rc"] == 0])
    need(problems, (not rounds or rounds[-1]["rc"] == 0, "the last fio round "
                    "(on the re-plugged disk) failed: rc %s" %
                    (rounds and rounds[-1]["rc"])),
         (ok >= n + 1, "only %d fio rounds passed (want one on the first "
          "disk and one after each re-plug)" % ok))
    tf = [c["tf"] for c in cycles]
    if cycles:
        fig["other"] = "threads/fds after unplug %s (first %s), replugged " \
            "%s" % (",".join(tf), fig["counts_after_first_unplug"]["tf"],
                    ",".join(c["tf_replugged"] for c in cycles))
    return "%d/%d unplug/replug cycles (DEVICE_DELETED after %s s), " \
        "threads/fds after each unplug %s, IOThread gone; %d fio rounds " \
        "ok, %d cut by the unplug, %d I/Os, 0 verify errors" % (
            fig.get("cycles", 0), n, [c["unplug_s"] for c in cycles], tf, ok,
            len(rounds) - ok, fig["ios"])


def judge(ctx):
    """Runs the case's body: one check, its problems or its figures."""
    name, fig, problems, t = ctx.case.name, {}, [], time.monotonic()
    print("lifecycle: %s ..." % name, flush=True)
    try:
        detail = ctx.case.body(ctx.args, fig, problems)
    except Exception as e:            # noqa: BLE001 (a case's bug)
        problems.append(describe(e))
        fig["traceback"] = traceback.format_exc()
    fig.update(seconds=round(time.monotonic() - t, 1),
               ok=not problems, problems=problems)
    ctx.doc["cases"][name] = fig
    ctx.checks.check(name, not problems, "%s (%.0f s)" % (
        detail, fig["seconds"]) if not problems else "%s (run dir %s)" %
        ("; ".join(problems), fig.get("run_dir")))


# cycles: the default of --cycles
CASES = [
    Case("stopcont", judge, body=case_stopcont, cycles=20),
    Case("savevm", judge, body=case_savevm, cycles=3),
    Case("drain", judge, body=case_drain, cycles=1),
    Case("reload", judge, body=case_reload, cycles=3),
    Case("unplug", judge, body=case_unplug, cycles=3),
]


def parse_cycles(text):
    cycles = {c.name: c.cycles for c in CASES}
    for part in text.split(",") if text else []:
        k, _, v = part.rpartition("=")
        if k and k not in cycles:
            raise argparse.ArgumentTypeError("unknown case %r" % k)
        cycles.update({k: int(v)} if k else dict.fromkeys(cycles, int(v)))
    if any(v < 1 for v in cycles.values()):
        raise argparse.ArgumentTypeError("cycles must be >= 1")
    return cycles


def add_arguments(ap):
    a = ap.add_argument
    a("--cycles", type=parse_cycles, default=parse_cycles(""),
      help="N: N cycles in every case; or CASE=N,... (defaults: %s)" %
      ",".join("%s=%d" % (c.name, c.cycles) for c in CASES))
    a("--qemu", default=paths.QEMU, help="QEMU binary (e.g. an ASan build)")
    a("--pciehp", action="store_true",
      help="unplug: native PCIe hotplug instead of ACPI")
    a("--seed", type=int, default=int(time.time()) % 100000,
      help="random seed (default: time)")


def setup(ctx):
    opts = ctx.args
    if not os.access(opts.qemu, os.X_OK):
        print("lifecycle: no QEMU at %s" % opts.qemu, file=sys.stderr)
        return 2
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    opts.qemu = os.path.abspath(opts.qemu)
    os.makedirs(os.path.join(opts.out, "runs"), exist_ok=True)
    print("lifecycle: seed %d, qemu %s, cycles %s" % (opts.seed, opts.qemu, (
        ",".join("%s=%d" % (c.name, opts.cycles[c.name])
                 for c in ctx.cases))), flush=True)
    ctx.doc = {"seed": opts.seed, "qemu": opts.qemu, "cycles": opts.cycles,
               "cases": {}}


def teardown(ctx):
    """A table of the cases' figures; all of them in lifecycle.json."""
    if not ctx.completed:
        return
    fmt = "%-9s %-5s %6s %7s %8s %7s %8s %7s  %s"
    print("\n" + fmt % ("case", "ok", "time_s", "cycles", "polling",
                        "rounds", "ios", "verify", "other"))
    for name, fig in ctx.doc["cases"].items():
        print(fmt % (name, "yes" if fig["ok"] else "NO", fig["seconds"], *(
            fig.get(k, "-") for k in ("cycles", "cycles_polling", "rounds",
                                      "ios", "verify_errors")),
            fig.get("other", "")))
    with open(os.path.join(ctx.out, "lifecycle.json"), "w") as f:
        json.dump(ctx.doc, f, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, add_arguments, setup, teardown,
                        out="lifecycle"))
