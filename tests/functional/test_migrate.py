#!/usr/bin/python3
"""Live migration under I/O: virtio-blk-poll moves between QEMU processes.

fio verifies on both queues while the guest migrates P0 (A) -> P1 (B) ...
by unix socket and file (each way by each) while a queue polls, to
destinations started with -incoming defer -S (as libvirt's).  14 checks
(docs/robustness.md); results in --out: migrate.json, serial.log, P*.stderr.
Usage: tests/functional/test_migrate.py [--migrations N] [--autostart]
                                        [--out DIR]
"""
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import checks, counters, fio, machine, paths, qmp  # noqa: E402
from vbp_test import suite  # noqa: E402
from vbp_test.console import Console, GuestError  # noqa: E402
from vbp_test.counters import polling, total  # noqa: E402
from vbp_test.runner import Failure  # noqa: E402
from vbp_test.suite import Case  # noqa: E402

BAD_DMESG = ("not a head", "BUG", "Oops", "WARNING", "I/O error",
             "timed out")
ERRORS = qmp.Error + (RuntimeError, ValueError, GuestError)
WATCH = ("polling", "requests_grew", "fast_rw_grew")
ACTIVE = (("dest_active_before", False), ("dest_active_after", True),
          ("src_active_after", False))     # block nodes' "active" wanted
MIGRATING = ("active", "setup", "cancelling", "device", "pre-switchover")
RUN_SH = """for q in /sys/block/vd*/queue/scheduler; do echo none > $q; done
( read -r _l </dev/ttyS0; : >/tmp/vbp/stop ) &
n=0
while [ ! -e /tmp/vbp/stop ] && [ $n -lt {max_rounds} ]; do
    n=$((n + 1))
    export VBP_SEED=$((n * 7919 + {seed}))
    export VBP_OFFSET=$(( ((n - 1) % {slots}) * {slot_bytes} ))
    vbp_fio round$n /job/round.fio {round_timeout} || break
done
echo "rounds $n"
vbp_cmd final 60 -- sh -c 'echo "vda $(cat /sys/block/vda/stat)"; \\
echo "inflight $(cat /sys/block/vda/inflight)"; \\
echo "===DMESG==="; dmesg'
echo "===VBP-PARK==="
read -r -t 120 _l </dev/ttyS0
"""


def migrated(p, limit, m, who):
    """query-migrate on @p until it ends; Failure unless it completed."""
    info = machine.until(lambda: p.qmp.cmd("query-migrate"), lambda i: i.get(
        "status") in ("completed", "failed", "cancelled"), limit)
    m[who + "_info"], st = info, info.get("status")
    m.update({"status": st} if who == "source" else {})
    if st != "completed":
        raise Failure("%s: migration %s: %s" % (who, st, info.get(
            "error-desc", "at the deadline")))
    return info


def has_idx(qs):
    return bool(qs) and all("used-idx" in q for q in qs)


def grew(s, s0, key):
    return total(s, key) - total(s0, key)


def paused(m):
    return (m.get("downtime_ms") or 0) + m.get("switch_ms", 0)


class Run:
    """One run: the guest, its QEMU processes, its figures (doc)."""

    def __init__(self, a, c):
        self.a, self.t0, self.c = a, time.monotonic(), c
        self.end = self.t0 + a.timeout      # the whole run's deadline
        self.doc = {"config": dict(vars(a)), "migrations": [],
                    "processes": [], "checks": self.c.results}
        self.procs, self.files, self.console = [], [], None

    def check(self, name, ok, detail=""):
        """A PASS line alone, or FAIL with why; migrate.json gets both."""
        self.c.check(name, ok, "" if ok else detail or "failed")
        self.c.results[-1]["detail"] = detail
        return ok

    def setup(self):
        a, doc = self.a, self.doc
        os.makedirs(a.out, exist_ok=True)
        for f in os.listdir(a.out):          # a previous run's files
            if re.fullmatch(r"P\d+-[AB]\.stderr|.*\.sock|initrd|serial\.log"
                            r"|migrate\.json", f):
                os.unlink(os.path.join(a.out, f))
        meta = machine.guest_files()
        doc["blockdev"], disk = machine.make_disk(
            "raw", a.disk_size, disk_dir=a.disk_dir, qemu_img=a.qemu_img)
        doc["device"] = machine.device_json(
            "virtio-blk-poll-pci", ["iot0", "iot1"], 2, props=a.device_prop)
        doc["guest"] = {"kernel": meta.get("kernel_package"), "fio": meta.get(
            "fio"), "kernel_version": meta.get("kernel_version")}
        self.ios_per_job, slot = a.round_size // 4096, 2 * a.round_size
        job = doc["round_job"] = fio.JOB_DEFAULTS + "\n" + fio.job(
            [("round", {})], ioengine="io_uring", rw="randwrite", bs=4096,
            iodepth=a.iodepth, size=a.round_size, offset="${VBP_OFFSET}",
            offset_increment=a.round_size, numjobs=2, cpus_allowed="0-1",
            cpus_allowed_policy="split", randseed="${VBP_SEED}",
            verify="crc32c", do_verify=1, verify_fatal=1,
            verify_backlog=a.verify_backlog)
        script = doc["run_sh"] = RUN_SH.format(
            max_rounds=a.max_rounds, seed=os.getpid(), slot_bytes=slot,
            slots=max(1, a.disk_size // slot), round_timeout=a.round_timeout)
        initrd = machine.make_initrd(os.path.join(a.out, "initrd"), meta[
            "initrd"], {"round.fio": job, "run.sh": script})
        self.files += [disk, initrd]
        doc["qemu_argv"] = self.argv = machine.qemu_argv(
            meta["kernel"], initrd, machine.cmdline(
                a.timeout + 60, a.round_timeout, sync=False), doc["blockdev"],
            doc["device"], ["iot0", "iot1"], mem=a.mem, qemu=a.qemu,
            extra=["-no-shutdown"])
        self.console = Console(os.path.join(a.out, "serial.log"))

    def start(self, side, incoming):
        extra = (["-incoming", "defer"] if incoming else []) + (
            [] if incoming and self.a.autostart else ["-S"])
        label = "P%d" % len(self.procs)
        p = machine.Qemu(self.argv + extra, self.a.out, serial="socket",
                         name=label + "-" + side, console=self.console)
        p.label, p.side = label, side
        self.procs.append(p)
        p.connect()
        return p

    def migrate(self, k, src):
        """Migration @k, from @src: (the process the guest is on now, the
        migration's figures)."""
        a, side = self.a, "B" if src.side == "A" else "A"
        tr = a.transport if a.transport != "both" else \
            ("unix", "file", "file", "unix")[(k - 1) % 4]
        state = os.path.join(a.disk_dir, "vbp-mig-%d-%d.state" % (
            os.getpid(), k))
        uri = "file:" + state if tr == "file" else "unix:" + os.path.join(
            a.out, "mig-%s.sock" % side)
        m = {"k": k, "from": src.side, "to": side, "transport": tr,
             "src": src.label, "ok": False, "uri": uri}
        self.doc["migrations"].append(m)
        dst = self.start(side, incoming=True)
        m["dst"], limit = dst.label, min(a.migration_timeout,
                                         max(self.end - time.monotonic(), 10))
        try:
            m.update(dest_active_before=dst.block_active(),
                     dest_path_before=counters.paths(dst.stats()))
            if tr == "unix":
                dst.qmp.cmd("migrate-incoming", {"uri": uri})
            src.qmp.cmd("migrate-set-parameters", {
                "max-bandwidth": a.max_bandwidth,
                "downtime-limit": a.downtime_limit})
            samples = []                # src's stats until a queue polls
            pre = machine.until(lambda: samples.append(src.stats()) or
                                samples[-1], polling, a.poll_wait, 0.01)
            t_mig = time.monotonic()
            src.qmp.cmd("migrate", {"uri": uri})
            m.update(pre_stats=pre, pre_samples=len(samples),
                     polling_at_start=polling(pre),
                     src_requests_before=total(pre, "requests"))
            info = migrated(src, limit, m, "source")
            t_src = time.monotonic()
            m.update(downtime_ms=info.get("downtime"),
                     total_ms=info.get("total-time"),
                     setup_ms=info.get("setup-time"), ram_transferred=(
                         info.get("ram") or {}).get("transferred"),
                     src_status_after=src.status(),
                     src_active_after=src.block_active(),
                     src_queue_status_after=src.queue_status(2))
            if tr == "file":
                m["file_bytes"] = os.path.getsize(state)
                dst.qmp.cmd("migrate-incoming", {"uri": uri})
            migrated(dst, limit, m, "dest")
            if not a.autostart:             # what it loaded, before it runs
                m["dest_queue_status_loaded"] = dst.queue_status(2)
            st = m["dest_status"] = machine.until(
                dst.status, lambda s: s != "inmigrate", 30)
            if st != "running":
                dst.qmp.cmd("cont")
                m["cont"], st = True, dst.status()
            t_run, m["dest_running"] = time.monotonic(), st == "running"
            m.update(switch_ms=round((t_run - t_src) * 1000),
                     host_ms=round((t_run - t_mig) * 1000))
            if st != "running":
                raise Failure("destination status %s" % st)
            m["dest_active_after"] = dst.block_active()
            last = m["src_final_stats"] = src.stats()   # then it quits
            m["src_requests_during"] = grew(last, pre, "requests")
            m["src_exit"], m["ok"] = src.stop(20, quit=True), True
        except (Failure,) + ERRORS as e:
            m.update(error=str(e), dest_stderr=dst.stderr_text(),
                     src_stderr=src.stderr_text())
            if src.proc.poll() is not None:
                raise Failure("migration %d failed and the source is gone: "
                              "%s" % (k, e))
            self.console.detach(dst.source)     # the guest stays on src
            dst.stop(2, quit=True)
            src.qmp.try_cmd("migrate_cancel")
            machine.until(lambda: src.qmp.try_cmd("query-migrate").get(
                "status"), lambda st: st not in MIGRATING, 10)
            if src.qmp.try_cmd("query-status").get("status") != "running":
                src.qmp.try_cmd("cont")
            m["src_status_after_failure"] = src.qmp.try_cmd(
                "query-status").get("status")
            return src, m
        finally:
            if os.path.exists(state):
                os.unlink(state)
        # ms until each of WATCH is seen; queues poll in bursts: sample often
        s = s0 = m["dest_first_stats"] = dst.stats()
        t0, first = time.monotonic(), {}
        while time.monotonic() - t0 < a.settle:
            s, now = dst.stats(), round((time.monotonic() - t0) * 1000)
            first = dict({k: now for k, seen in zip(WATCH, (
                polling(s), grew(s, s0, "requests") > 0,
                grew(s, s0, "fast-rw") > 0)) if seen}, **first)
            if len(first) == 3 and now >= a.dwell * 1000:
                break
            time.sleep(0.02)
        m.update({"dest_%s_after_ms" % k: first.get(k) for k in WATCH})
        m.update(dest_stats=s, dest_requests=total(s, "requests"),
                 dest_observed_ms=round((time.monotonic() - t0) * 1000),
                 dest_path=counters.paths(s), dest_wakeups=grew(
                     s, s0, "wakeups"), dest_poll_ms=round(grew(
                         s, s0, "poll-ns") / 1e6))
        return dst, m

    def go(self):
        a, c, doc = self.a, self.console, self.doc
        p = self.start("A", incoming=False)
        p.qmp.cmd("cont")
        t_cont = time.monotonic()
        t, _ = c.expect("BOOT-END", timeout=min(
            a.boot_timeout, self.end - time.monotonic()))
        doc["boot_s"] = round(t - t_cont, 3)
        doc["p0_baseline"] = None   # P0 idle after boot: firmware I/O only
        for _ in range(5):
            s1, qs, s2 = p.stats(), p.queue_status(2), p.stats()
            rc = [(q["requests"], q["completions"]) for q in s1]
            if rc == [(q["requests"], q["completions"]) for q in s2] and \
                    all(req == cpl for req, cpl in rc) and all(q.get(
                        "last-avail-idx") == q.get("used-idx") for q in qs):
                doc["p0_baseline"] = {
                    "stats": s1, "queue_status": qs, "firmware_requests": {
                        q["queue"]: q["requests"] - qs[q["queue"]][
                            "last-avail-idx"] for q in s1}}
                break
            time.sleep(0.02)
        c.expect("READY", "round1", timeout=60)     # fio is running
        time.sleep(a.dwell)
        for k in range(1, a.migrations + 1):
            if time.monotonic() > self.end - 20:
                doc["error"] = "out of time after %d migrations" % (k - 1)
                break
            p, m = self.migrate(k, p)
            line = "migration {k}: {from}->{to} {transport}".format(**m)
            if not m["ok"]:
                print("%s FAILED: %s" % (line, m["error"]), flush=True)
                doc["error"] = "migration %d failed: %s" % (k, m["error"])
                break
            print("%s, downtime/total %s/%s ms (guest paused ~%s ms), polling "
                  "at start: %s (queues %s), dest requests: %d (first %d ms)"
                  % (line, m["downtime_ms"], m["total_ms"], paused(m),
                     "yes" if m["polling_at_start"] else "no",
                     ",".join(map(str, m["polling_at_start"])) or "-",
                     m["dest_requests"], m["dest_observed_ms"]), flush=True)
            if c.markers("FAILED"):
                break
        doc["stop_sent_s"] = round(time.monotonic() - self.t0, 3)
        p.source.write(b"stop\n")            # the guest ends fio, parks
        c.expect("PARK", timeout=min(a.round_timeout + 60,
                                     max(self.end - time.monotonic(), 30)))
        doc.update(final_stats=p.stats(), final_status=p.status(),
                   final_queue_status=p.queue_status(2))
        p.source.write(b"bye\n")
        try:
            c.expect("ALL-DONE", timeout=30)
        except GuestError as e:
            doc["warning"] = str(e)
        time.sleep(0.5)          # -no-shutdown: QEMU stays after poweroff
        doc["final_exit"] = p.stop(20, quit=True)

    def cleanup(self):
        for p in self.procs:
            p.stop(3, quit=True)            # ends it if it still runs
            self.doc["processes"].append({
                "name": p.label, "side": p.side, "pid": p.pid,
                "exit": p.proc.returncode, "stderr": p.stderr_text()})
        if self.console:
            self.console.finish()
        for f in self.files + [os.path.join(self.a.out, f) for f in
                               os.listdir(self.a.out) if f.endswith(".sock")]:
            if os.path.exists(f):
                os.unlink(f)


def evaluate(run):
    doc, check, migs = run.doc, run.check, run.doc["migrations"]
    n, ok_migs = run.a.migrations, [m for m in migs if m["ok"]]

    def each(name, good, *keys):
        bad = ["%d: %s" % (m["k"], ", ".join("%s %s" % (k, m.get(k))
                                             for k in keys))
               for m in ok_migs if not good(m)]
        check(name, not bad and ok_migs, "; ".join(bad) or "no migration")
    if not check("guest booted and fio started",
                 doc.get("boot_s") is not None, doc.get("error", "")):
        return
    bad = ["%d: %s" % (m["k"], m.get("error")) for m in migs if not m["ok"]]
    check("all %d migrations completed, destination running" % n,
          len(ok_migs) == n and not bad,
          "; ".join(bad) or "%d of %d done" % (len(ok_migs), n))
    each("every source quit cleanly after the migration",
         lambda m: m["src_exit"] == 0, "src_exit")
    each("I/O in flight across every migration", lambda m:
         m["src_requests_during"] and m["dest_requests_grew_after_ms"]
         is not None, "src_requests_during", "dest_requests_grew_after_ms")
    caught = len([m for m in ok_migs if m["polling_at_start"]])
    check("migrations started with queues polling (>= %d of %d)" %
          (n - n // 4, n), caught >= n - n // 4,
          "%d of %d caught polling" % (caught, n))
    each("destination resumed serving and polling within %gs" % run.a.settle,
         lambda m: None not in (m["dest_polling_after_ms"],
                                m["dest_requests_grew_after_ms"]),
         "dest_polling_after_ms", "dest_requests_grew_after_ms",
         "dest_wakeups", "dest_poll_ms")
    fin = doc.get("final_stats")
    bad = ["%d: requests %s" % (m["k"], m["dest_requests"])
           for m in ok_migs if not m["dest_requests"]]
    if fin is not None and total(fin, "requests") <= 0:
        bad.append("last destination: requests %s" % total(fin, "requests"))
    check("requests > 0 on every destination", not bad and ok_migs,
          "; ".join(bad) or "no migration")
    each("image inactive on the destination until the migration "
         "completed, then active there and inactive on the source",
         lambda m: all(m.get(k) and all(bool(v) == want for v in m[
             k].values()) for k, want in ACTIVE), *dict(ACTIVE))
    each("destination serves on the io_uring fast path", lambda m:
         m["dest_path"] == ["io_uring"] and m["dest_fast_rw_grew_after_ms"]
         is not None, "dest_path", "dest_fast_rw_grew_after_ms")
    blocks, per, bad = run.console.blocks, [], []     # the fio rounds
    for name in [b for b in blocks if b.startswith("round")]:
        b = fio.block_result(blocks[name])
        data = b["doc"]
        summ = fio.summarize(data) if data else {"ios": 0, "jobs": []}
        jobs = summ["jobs"]
        per.append(dict({"error": b["error"]} if not data else {},
                        name=name, rc=b["rc"],
                        verify_errors=b["verify_errors"], ios=summ["ios"],
                        guest_seconds=b["seconds"], jobs=jobs,
                        stderr=b["stderr"][-20:]))
        wrong = [j.get("jobname") for j in jobs if j.get("error") or any(
            (j.get(d) or {}).get("ios") != run.ios_per_job
            for d in ("write", "read"))]
        if b["rc"] != 0 or b["verify_errors"] or len(jobs) != 2 or \
                wrong or not data:
            bad.append("%s: rc %s, verify errors %d, jobs %d, wrong counts %s"
                       " %s" % (name, b["rc"], b["verify_errors"], len(jobs),
                                wrong, b["error"] or ""))
    doc.update(rounds=per, fio_ios=sum(r["ios"] for r in per),
               verify_errors=sum(r["verify_errors"] for r in per))
    missing = [r for _, _, r in run.console.markers("READY")
               if r.startswith("round") and r not in blocks]
    check("fio verify: 0 errors in %d rounds" % len(per), per and not
          doc["verify_errors"] and not missing, "%d verify errors; rounds "
          "without results: %s" % (doc["verify_errors"], missing or "none"))
    check("fio completed the expected I/O (%d writes + %d verify reads per "
          "job and round)" % (run.ios_per_job, run.ios_per_job),
          per and not bad, "; ".join(bad) or "no round finished")
    out = blocks.get("final", {}).get("stdout", [])
    dmesg = list(itertools.dropwhile(lambda ln: ln != "===DMESG===", out))[1:]
    bad = doc["guest_dmesg_complaints"] = [
        ln for ln in dmesg if any(w in ln for w in BAD_DMESG)]
    doc["guest_dmesg_lines"] = len(dmesg)
    check("guest dmesg clean (%s)" % ", ".join(BAD_DMESG), dmesg and not bad,
          " | ".join(bad[:5]) if dmesg else "no dmesg captured")
    qs = doc.get("final_queue_status") or []
    bad = [] if has_idx(qs) else ["no queue status: %s" % qs]
    if not bad:
        idx = [(q.get("queue-index"), q["shadow-avail-idx"],
                q["last-avail-idx"], q["used-idx"]) for q in qs]
        bad = ["queue %s: avail %s last-avail %s used %s" % x for x in idx
               if len(set(x[1:])) > 1]
        used = doc["used_idx_sum"] = sum(q["used-idx"] for q in qs)
        done = doc["guest_completed_requests"] = counters.parse_blkstat(
            "\n".join(ln for ln in out if ln.startswith("vda "))).get("vda")
        if done is None or (done - used) % 65536 != 0:
            bad.append("guest completed %s requests, used indexes sum to %d "
                       "(mod 65536 each)" % (done, used))
        bad += ["guest " + ln for ln in out if ln.startswith("inflight ")
                and ln.split()[1:] != ["0", "0"]][:1]
    check("no request lost or completed twice (virtqueue indexes agree "
          "with the guest's completed requests)", not bad, "; ".join(bad))
    handover(run, migs, ok_migs, fin, qs)


def handover(run, migs, ok_migs, fin, qs):
    """Each process's counters against the virtqueue indexes it loaded
    (its source's last ones) and ended with."""
    doc, base = run.doc, run.doc.get("p0_baseline")
    ended = [(m["src"], m["src_final_stats"], m["src_queue_status_after"])
             for m in ok_migs] + [("P%d" % len(ok_migs), fin, qs)]
    loads = [None] + [m.get("dest_queue_status_loaded") for m in ok_migs]
    procs = list(zip(ended, loads)) if len(ok_migs) == len(migs) else []
    # P0 counts from the idle moment after boot, if there was one
    prev = {q["queue"]: dict(base["queue_status"][q["queue"]], **q)
            for q in base["stats"]} if base else None
    bad, notes, rows = [], [], []
    for j, ((name, st, qst), loaded) in enumerate(procs):
        if has_idx(loaded):
            prev = {q["queue-index"]: q for q in loaded}
        if st is None or not has_idx(qst):
            prev = None
            bad.append("%s: no figures" % name)
            continue
        rows.append({"process": name, "queues": []})
        for q in qst if j == 0 or prev else []:
            i, la, ui = q["queue-index"], q["last-avail-idx"], q["used-idx"]
            begin = (prev or {}).get(i, {})     # where its counts start
            a0, u0 = begin.get("last-avail-idx", 0), begin.get("used-idx", 0)
            sq = next((x for x in st if x.get("queue") == i), {})
            req = sq.get("requests", 0) - begin.get("requests", 0)
            cpl = sq.get("completions", 0) - begin.get("completions", 0)
            d_a, d_u = (la - a0) % 65536, (ui - u0) % 65536
            x_req, x_cpl = ((x + 32768) % 65536 - 32768
                            for x in (req - d_a, cpl - d_u))
            rows[-1]["queues"].append({
                "queue": i, "requests": req, "completions": cpl,
                "avail": [a0, la], "used": [u0, ui], "extra_requests": x_req,
                "completed_outside_poller": -x_cpl})
            if x_req > 0 or x_cpl > 0 or d_u != d_a:
                bad.append("%s queue %d: took %d requests, completed %d; "
                           "last-avail-idx %d->%d, used-idx %d->%d" % (
                               name, i, req, cpl, a0, la, u0, ui))
            notes += ["%s queue %d: %d of %d %s outside the poller (not in "
                      "its \"%s\" counter)" % (name, i, -x, d, what,
                                               what.split()[0])
                      for x, d, what in ((x_req, d_a, "requests taken"), (
                          x_cpl, d_u, "completions published")) if x < 0]
        prev = {q["queue-index"]: q for q in qst}
    for m in ok_migs:
        ends = [[[q.get("last-avail-idx"), q.get("used-idx")] for q in x]
                for x in (m["src_queue_status_after"],
                          m.get("dest_queue_status_loaded") or [])]
        bad += ["migration %d queue %d: source ended at avail, used %s, "
                "destination loaded %s" % (m["k"], i, s, d)
                for i, (s, d) in enumerate(zip(*ends)) if s != d]
    doc["handover"], doc["handover_notes"] = rows, notes
    for note in notes:
        print("note: %s" % note)
    idle = [] if base or not procs else [
        "(no idle moment after boot: P0 counted from its start, firmware "
        "I/O included)"]
    run.check("handover: destinations loaded their source's last virtqueue "
              "indexes, no process took or completed a request twice",
              procs and not bad, "; ".join(idle + bad) or
              "incomplete figures")


def summary(run):
    doc, migs = run.doc, [m for m in run.doc["migrations"] if m["ok"]]
    table, dirs = {}, ["A->B", "B->A"]
    print("\n%-9s %5s %5s %6s %8s %12s %12s" % (
        "transport", *dirs, "total", "polling", "downtime ms", "paused ms"))
    for t in ("unix", "file", "total"):
        sel = [m for m in migs if t in ("total", m["transport"])]
        row = [sum(m["from"] + "->" + m["to"] == d for m in sel) for d in dirs]
        dt, pa = [m["downtime_ms"] or 0 for m in sel], list(map(paused, sel))
        pol = len([m for m in sel if m["polling_at_start"]])
        table[t] = dict(zip(dirs, row), polling_at_start=pol,
                        downtime_ms=dt, paused_ms=pa)
        print("%-9s %5d %5d %6d %8d %12s %12s" % (t, *row, sum(row), pol, *[
            "%d-%d" % (min(x), max(x)) if x else "-" for x in (dt, pa)]))
    down = [m["downtime_ms"] for m in migs if m["downtime_ms"] is not None]
    pa, caught = list(map(paused, migs)), table["total"]["polling_at_start"]
    s = doc["summary"] = dict(
        migrations_done=len(migs), migrations_requested=run.a.migrations,
        by_transport_direction=table, caught_polling=caught,
        verify_errors=doc.get("verify_errors"), fio_ios=doc.get("fio_ios"),
        fio_rounds=len(doc.get("rounds", [])), downtime_ms=down,
        guest_paused_ms=pa, total_s=doc.get("total_s"),
        dest_polling_after_ms=[m["dest_polling_after_ms"] for m in migs],
        pre_samples=[m["pre_samples"] for m in migs])
    print("migrations done: %d of %d; caught polling at start: %d of %d\n"
          "fio: %d rounds, %s I/Os, verify errors: %s" % (
              len(migs), run.a.migrations, caught, len(migs),
              s["fio_rounds"], s["fio_ios"], s["verify_errors"]))
    if down:
        print("downtime ms: min %d avg %d max %d; guest paused ms (downtime "
              "+ switch-over seen by the host): min %d avg %d max %d" % (
                  min(down), sum(down) / len(down), max(down),
                  min(pa), sum(pa) / len(pa), max(pa)))
    print("requests served by each destination right after the migration: "
          "%s\ndestination seen polling after (ms): %s\nstats samples "
          "taken before migrate until a queue polled: %s" % (", ".join(
              "%d in %.1fs" % (m["dest_requests"], m["dest_observed_ms"] /
                               1000) for m in migs),
              s["dest_polling_after_ms"], s["pre_samples"]))


def run_migrations(ctx):
    """Boots, migrates back and forth under fio verify; the checks."""
    run = Run(ctx.args, ctx.checks)
    doc = run.doc
    try:
        run.setup()
        run.go()
    except (KeyboardInterrupt, SystemExit) as e:
        doc["error"] = "interrupted (%s)" % type(e).__name__
    except (Failure, OSError, subprocess.CalledProcessError) + ERRORS as e:
        doc["error"] = str(e) if isinstance(e, (Failure, GuestError)) else \
            "%s: %s" % (type(e).__name__, e)
    finally:
        run.cleanup()
    if doc.get("error"):
        checks.log("migrate", doc["error"])
    doc["total_s"], con = round(time.monotonic() - run.t0, 1), run.console
    if not con:
        run.check("set-up", False, doc.get("error", ""))
    else:
        for i, _, why in con.markers("FAILED")[:1]:
            doc["guest_failed"], doc["guest_report"] = why or "?", list(
                itertools.takewhile(lambda ln: "===VBP-FAILED-END===" not in
                                    ln, con.text(i + 1)))
        doc.update(console_tail=con.tail(40), guest_boot=con.boot,
                   guest_rounds_line=next((ln for ln in con.text()
                                           if ln.startswith("rounds ")), None))
        try:
            evaluate(run)
        except Exception as e:            # noqa: BLE001 (report, go on)
            run.check("evaluation", False, "%s: %s" % (type(e).__name__, e))
    if doc.get("error"):
        run.check("run completed", False, doc["error"])
    summary(run)
    out = os.path.join(run.a.out, "migrate.json")
    print("total %.1f s; results in %s" % (doc["total_s"], out))
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, default=str)


CASES = [Case("migrate", run_migrations)]


def add_arguments(ap):
    for opt, kind, default, text in (
            ("migrations", int, 4, "migrations, A->B, B->A, ..."),
            ("transport", ("both", "unix", "file"), "both", "both: unix, "
             "file, file, unix, ... (each transport each way)"),
            ("round-size", fio.parse_size, "32M", "per fio job and round"),
            ("iodepth", int, 16, "fio iodepth per job (2 jobs)"),
            ("verify-backlog", int, 512, "fio verify_backlog"),
            ("disk-size", fio.parse_size, "256M", "the image's size"),
            ("disk-dir", str, "/dev/shm", "image and migration files"),
            ("mem", str, "512M", "guest RAM"),
            ("device-prop", "append", [], "more -device properties, k=v,..."),
            ("poll-wait", float, 5.0, "s to wait for a queue polling"),
            ("settle", float, 15.0, "s for the destination to serve, poll"),
            ("dwell", float, 2.0, "s the guest runs on each side"),
            ("autostart", "store_true", False, "destinations start by "
             "themselves (default: -S; loaded indexes compared, then cont)"),
            ("max-bandwidth", int, 4 << 30, "migrate-set-parameters, B/s"),
            ("downtime-limit", int, 300, "migrate-set-parameters, ms"),
            ("migration-timeout", int, 120, "s"),
            ("boot-timeout", int, 120, "s"),
            ("round-timeout", int, 150, "guest watchdog per fio round (s)"),
            ("max-rounds", int, 500, "fio rounds at most"),
            ("timeout", int, 240, "the whole run (s)"),
            ("qemu", str, paths.QEMU, "QEMU binary"),
            ("qemu-img", str, paths.QEMU_IMG, "qemu-img binary")):
        kw = {"action": kind} if isinstance(kind, str) else {
            "choices": kind} if isinstance(kind, tuple) else {"type": kind}
        ap.add_argument("--" + opt, default=default, **kw,
                        help=text + " (default: %(default)s)")


def setup(ctx):
    args = ctx.args
    if args.migrations < 1:
        ctx.parser.error("--migrations must be >= 1")
    if args.disk_size < 2 * args.round_size:
        ctx.parser.error("--disk-size must hold 2 x --round-size")
    args.settle = max(args.settle, args.dwell)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit(128 + n))


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, add_arguments, setup,
                        out="migrate"))
