#!/usr/bin/python3
"""Fault injection: werror/rerror, virtio-blk-poll vs upstream virtio-blk.

Each cell injects one backend error (vbp_test/faults.py: a full tmpfs,
loop devices, blkdebug) under one policy (stop: healed, then cont; report;
ignore; pause, --long: QMP stop/cont, no fault) and boots the test guest
(TCG, 2 queues on IOThread iot0) once on each device: fio, the guest
kernel and QMP must see the same on both (docs/robustness.md).  Prints a
line per cell, a table and "N passed, N failed"; writes
build/faults/faults.json, run logs in runs/ there.  Needs root.

Usage: tests/functional/test_faults.py [--only CELL[,CELL]] [--long]
        [--repeat N] [--device poll|upstream] [--out DIR] [--list]
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import fio, runner, suite  # noqa: E402
from vbp_test.faults import (  # noqa: E402
    MiB, WORK_ROOT, Blkdebug, Controller, Enospc, FaultSource, LoopEio,
    cleanup, cleanup_leftovers, log)
from vbp_test.suite import Case  # noqa: E402

DEVICES = (("poll", "virtio-blk-poll-pci"), ("upstream", "virtio-blk-pci"))


def job_from_spec(spec):
    """"RW SIZE BS [FLAGS]": a fio job RW[-verify] (io_uring, iodepth 16,
    O_DIRECT on /dev/vda); flags v: crc32c verify, c: continue_on_error,
    2: two fio jobs, one per vCPU and so one per virtqueue, each on its
    own SIZE bytes, so that a stop catches requests on both queues."""
    rw, size, bs, flags = (spec + " ").split(" ")[:4]
    opts = {"rw": rw}
    if "2" in flags:
        opts.update(numjobs=2, offset_increment=size, cpus_allowed="0-1",
                    cpus_allowed_policy="split")
    if "v" in flags:
        opts.update(verify="crc32c", do_verify=1,
                    verify_fatal=0 if "c" in flags else 1)
    if "c" in flags:
        opts["continue_on_error"] = "all"
    name = rw + ("-verify" if "v" in flags else "")
    return name, fio.job([(name, opts)], **{
        "ioengine": "io_uring", "iodepth": 16,
        "bsrange" if "-" in bs else "bs": bs, "size": size})


# The guest's last "job" is its kernel log: run.sh, sourced by /init,
# replaces init's vbp_fio by one that runs vbp_dmesg for that job.
# printk level 1 keeps kernel messages out of the console's job output.
# QEMU holds a BLOCK_IO_ERROR (report, ignore) until its 1/s throttle
# second ends: sleep 1.5, or the operations seen would depend on timing.
GUEST_SETUP = r"""echo 1 > /proc/sys/kernel/printk
vbp_dmesg() {
    sleep 1.5
    dmesg
    echo "VBP-IOERR-LINES $(dmesg | grep -c 'I/O error, dev vd')" >&2
    n=$(dmesg | sed -n 's/.*blk_print_req_error: \([0-9]*\) callbacks.*/\1/p' |
        awk '{s += $1} END {print s + 0}')
    echo "VBP-SUPPRESSED $n" >&2
}
vbp_fio() {
    if [ "$1" = dmesg ]; then
        vbp_cmd dmesg 60 -- vbp_dmesg
    else
        rm -f "/tmp/vbp/$1.json"
        vbp_cmd "$1" "${3:-$JOB_TIMEOUT}" -- fio --output-format=json \
            --output="/tmp/vbp/$1.json" --eta=never "$2"
    fi
}"""


# -------------------------------------------------------- one guest run
def job_obs(name, j, stderr):
    """One fio job's outcome: its runner result @j (None: it did not run)
    and its stderr."""
    fjs = ((j or {}).get("fio_json") or {}).get("jobs") or [{}]
    # continue_on_error=all: fio counts every failed I/O and every verify
    # failure in total_err (no message for the I/O errors); first_error
    # is the errno of the first (84 EILSEQ: verify).
    error = next((x["error"] for x in fjs if x.get("error")),
                 fjs[0].get("error"))
    total = sum(x.get("total_err", 0) for x in fjs)
    first = next((x["first_error"] for x in fjs if x.get("first_error")),
                 0) or error
    verify, rc = len(fio.verify_lines(stderr)), (j or {}).get("rc")
    io_errors = max(total - verify, 0) if total else \
        int(bool(error) and error != 84)    # without continue_on_error
    rec = dict(name=name, ran=j is not None, rc=rc, error=error,
               total_err=total, first_error=first, io_errors=io_errors,
               errnos=[os.strerror(first)] if first and first != 84 else [],
               verify_errors=verify, **{d + "_ios": sum(
                   (x.get(d) or {}).get("total_ios", 0) for x in fjs)
                   for d in ("read", "write")})
    rec["outcome"] = ("not run" if j is None else
                      "io-error" if io_errors else
                      "verify-failure" if verify or error == 84 else
                      "ok" if rc == 0 and not error else
                      "failed rc=%s error=%s" % (rc, error))
    if j is not None:
        rec["stats"] = [{k: q.get(k) for k in
                         ("queue", "path", "fast-rw", "fallback-rw")}
                        for q in (j.get("device_stats") or {}).get(
                            "queues") or []]
    return rec


def observe(cell, result, ctl):
    """What the guest and QMP saw in one run: the figures compared."""
    blocks = ctl.qemu.console.blocks if ctl.qemu else {}
    ran = {j["name"]: j for j in result.get("jobs", [])}
    jobs = [job_obs(n, ran.get(n), blocks.get(n, {}).get("stderr", []))
            for n, _ in cell.jobs]
    dm = blocks.get("dmesg", {})
    got = {k: int(v) for k, _, v in (line.partition(" ") for line in
                                     dm.get("stderr", [])) if v.isdigit()}
    ev, stops = ctl.events, ctl.stops
    bie = [e["data"] for e in ev if e["event"] == "BLOCK_IO_ERROR"]
    # RESUMEs after the first STOP, in the order QEMU sent them (the
    # controller connects after runner.run's own cont)
    first = stops[0]["n"] if stops else len(ev)
    obs = {k: result.get(k) for k in ("run_dir", "boot_s", "total_s")}
    obs.update(
        run_error=result.get("error"), run_exit=result.get("exit"),
        notes=ctl.source.notes, jobs=jobs,
        dmesg_ioerr=got.get("VBP-IOERR-LINES"),
        dmesg_suppressed=got.get("VBP-SUPPRESSED"),
        dmesg_errors=[line for line in dm.get("stdout", [])
                      if "error" in line.lower()][-12:],
        block_io_errors=len(bie),
        actions=sorted({b.get("action") for b in bie}),
        operations=sorted({b.get("operation") for b in bie}),
        nospace=sorted({bool(b.get("nospace")) for b in bie}),
        reasons=sorted({b.get("reason", "") for b in bie}),
        stop_events=sum(e["event"] == "STOP" for e in ev),
        io_error_stops=sum(s["status"] == "io-error" for s in stops),
        conts=sum(bool(s.get("cont")) for s in stops),
        resumes_after_stop=sum(e["event"] == "RESUME" for e in ev[first:]),
        rearmed=ctl.rearmed, pauses=ctl.pauses, controller_error=ctl.error)
    stats = [s for j in jobs for s in j.get("stats") or []]
    if stats:
        obs["path"] = sorted({s["path"] for s in stats if s.get("path")})
        obs["fast_rw"] = sum(s.get("fast-rw") or 0 for s in stats)
        obs["fallback_rw"] = sum(s.get("fallback-rw") or 0 for s in stats)
        obs["queues_used"] = len({s.get("queue") for s in stats
                                  if (s.get("fast-rw") or 0) +
                                  (s.get("fallback-rw") or 0)})
    obs.update(fio_errors=sum(j["io_errors"] for j in jobs),
               verify_errors=sum(j["verify_errors"] for j in jobs),
               events=ev[:200], hang=hang_signature(result))
    return obs


def hang_signature(result):
    """For a run that hung: a lost interrupt?  The guest has requests in
    flight, every virtqueue is empty (avail = used index, none in use):
    the completions are in the used ring, the guest was never told."""
    inflight = sum(int(m.group(1)) + int(m.group(2)) for m in (
        re.match(r"--- /sys/block/vd\w+/inflight:\s+(\d+)\s+(\d+)", line)
        for line in result.get("guest_report") or []) if m)
    if result.get("exit") != 2 or not inflight:
        return None
    vqs = (result.get("host_diagnostics") or {}).get("virtio-queue-status")
    if not vqs or not all("inuse" in q for q in vqs):
        return "hang (%d guest requests in flight)" % inflight
    if all(q["inuse"] == 0 and q["last-avail-idx"] == q["used-idx"]
           for q in vqs):
        return ("LOST INTERRUPT: %d guest requests in flight, every "
                "virtqueue empty on the device side (used idx %s)" % (
                    inflight, "/".join(str(q["used-idx"]) for q in vqs)))
    return "hang (%d guest requests in flight, virtqueues %s)" % (
        inflight, "; ".join("inuse %(inuse)s avail %(last-avail-idx)s "
                            "used %(used-idx)s" % q for q in vqs))


def run_once(cell, devname, device, args, rep):
    tag = "%s-%s%s" % (cell.name, devname, "-%d" % rep if rep else "")
    run_root = os.path.join(args.out, "runs", tag)
    shutil.rmtree(run_root, ignore_errors=True)
    os.makedirs(run_root)
    ctl = Controller(cell.source(os.path.join(WORK_ROOT, str(os.getpid()),
                                              tag)), args.verbose)
    burners = []
    t0 = time.monotonic()
    try:
        # CPU hogs: a busy host widens the race window of patch 0008
        for _ in range(ctl.source.burn):
            burners.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"]))
        blockdev = ctl.source.setup()
        conf = {"jobs": [{"name": n, "text": t, "timeout": args.job_timeout}
                         for n, t in cell.jobs] +
                [{"name": "dmesg", "text": "# dmesg\n", "timeout": 60}],
                "guest_setup": [GUEST_SETUP] + ([cell.guest_setup]
                                                if cell.guest_setup else [])}
        conf_path = os.path.join(run_root, "config.json")
        with open(conf_path, "w") as f:
            json.dump(conf, f, indent=1)
        cfg = runner.options([
            "--config", conf_path, "--device", device, "--iothreads", "1",
            "--num-queues", "2", "--full-fio", "--device-prop", cell.props,
            "--job-timeout", str(args.job_timeout), "--run-root", run_root,
            # TCG on a busy host: the kernel's IO-APIC timer check can
            # fail and panic the guest at boot
            "--append", "no_timer_check"] +
            ["--qemu-arg=" + a for a in args.qemu_arg])
        ctl.source.arm()
        with open(os.path.join(run_root, "run-guest.log"), "w") as lf, \
                contextlib.redirect_stderr(sys.stderr if args.verbose
                                           else lf):
            result = runner.run(cfg, blockdev=blockdev,
                                on_start=ctl.attach)
        result.pop("config", None)
        with open(os.path.join(run_root, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    except (RuntimeError, OSError, runner.Failure) as e:
        result = {"exit": 3, "error": "set-up: %s" % e, "jobs": []}
    finally:
        for b in burners:
            b.kill()
            b.wait()
        ctl.finish()
        cleanup(ctl.source.workdir, quiet=True)
    return dict(observe(cell, result, ctl), device=device,
                wall_s=round(time.monotonic() - t0, 1))


# ------------------------------------------------------------ judgement
def close(a, b, exact):
    return abs(a - b) <= (2 if exact else max(16, 0.15 * max(a, b)))


def check_alone(cell, o, is_poll):
    """What each device must show on its own; returns problems."""
    # runner.run calls a run with a failed job (exit 1) failed: fio
    # reports the injected errors, and the dmesg "job" runs no fio.  A
    # hang, timeout or QEMU failure (exit 2, 3) is a failure here too.
    p = ["run: %s" % o["run_error"]] if o["run_exit"] not in (0, 1) else []
    p += [x for x in (o["hang"], o["controller_error"]) if x]
    p += ["%s did not run" % j["name"] for j in o["jobs"] if not j["ran"]]
    if o["dmesg_ioerr"] is None:
        p.append("no guest dmesg")
    bie, stops = o["block_io_errors"], o["io_error_stops"]
    if cell.policy == "pause":
        if o["pauses"] < 10:
            p.append("only %d stop/cont cycles during the job" % o["pauses"])
        if bie or stops:
            p.append("%d BLOCK_IO_ERROR, %d io-error stops" % (bie, stops))
    elif not bie:
        p.append("no BLOCK_IO_ERROR: no fault injected")
    if o["actions"] and o["actions"] != [cell.policy]:
        p.append("BLOCK_IO_ERROR actions %s" % o["actions"])
    if cell.policy == "stop":
        if not stops:
            p.append("the VM never stopped")
        # One event per failed request; at most every request the guest
        # can have in flight (2 queues x iodepth 16) fails per stop.
        if not stops <= bie <= 32 * stops:
            p.append("%d BLOCK_IO_ERROR events for %d stops" % (bie, stops))
        if o["resumes_after_stop"] < stops or o["conts"] < stops:
            p.append("stops %d, conts %d, resumes %d" % (
                stops, o["conts"], o["resumes_after_stop"]))
    if cell.policy in ("stop", "pause"):
        p += ["%s: %s, %d verify errors%s" % (
            j["name"], j["outcome"], j["verify_errors"],
            " (data lost?)" if cell.policy == "stop" else "")
            for j in o["jobs"] if j["outcome"] != "ok" or j["verify_errors"]]
        if o["dmesg_ioerr"]:
            p.append("guest kernel logged %d I/O errors" % o["dmesg_ioerr"])
    elif o["stop_events"]:
        p.append("%d STOP events" % o["stop_events"])
    if cell.policy == "report":
        if not any(j["outcome"] == "io-error" for j in o["jobs"]):
            p.append("the guest saw no I/O error")
        p += ["%s: guest errno %s, not EIO" % (j["name"], j["errnos"])
              for j in o["jobs"]
              if j["io_errors"] and j["errnos"] != ["Input/output error"]]
        if not o["dmesg_ioerr"]:
            p.append("no 'I/O error' in the guest's dmesg")
    if cell.policy == "ignore":
        if any(j["io_errors"] for j in o["jobs"]):
            p.append("the guest saw I/O errors")
        if o["dmesg_ioerr"]:
            p.append("guest kernel logged I/O errors")
    path, fast, slow = o.get("path"), o.get("fast_rw"), o.get("fallback_rw")
    if is_poll and path is None:
        p.append("no device stats")
    elif is_poll and cell.traits.path == "fast":
        if path != ["io_uring"] or not fast:
            p.append("not the fast path: path=%s fast-rw=%s" % (path, fast))
    elif is_poll and ("io_uring" in path or fast or not slow):
        p.append("not the fallback: path=%s fast-rw=%s fallback-rw=%s" % (
            path, fast, slow))
    return p


def compare(cell, po, uo):
    """poll vs upstream: the same behaviour, not the same timing."""
    p = []
    for pj, uj in zip(po["jobs"], uo["jobs"]):
        p += ["%s: %s %s vs %s" % (pj["name"], what, pj[k], uj[k])
              for k, what in (("outcome", "outcome"), ("errnos", "errno"))
              if pj[k] != uj[k]]
        p += ["%s: %s %d vs %d" % (pj["name"], k, pj[k], uj[k])
              for k in ("io_errors", "verify_errors")
              if not close(pj[k], uj[k], cell.traits.exact) or
              bool(pj[k]) != bool(uj[k])]
    p += ["%s %s vs %s" % (k, po[k], uo[k])
          for k in ("actions", "operations", "nospace") if po[k] != uo[k]]
    # BLOCK_IO_ERROR events are not compared one to one: QEMU's monitor
    # throttles them to one a second unless the action is stop, and with
    # stop their number per stop is the number of requests that were in
    # flight when the fault hit (check_alone bounds it).
    a, b = po["io_error_stops"], uo["io_error_stops"]
    if bool(a) != bool(b) or (cell.traits.stops_exact and abs(a - b) > 2):
        p.append("stops %d vs %d" % (a, b))
    if bool(po["dmesg_ioerr"]) != bool(uo["dmesg_ioerr"]):
        p.append("guest kernel I/O error lines %s vs %s" % (
            po["dmesg_ioerr"], uo["dmesg_ioerr"]))
    return p


def brief(o):
    parts = ["%d stop/cont by the script" % o["pauses"]] \
        if o["pauses"] else []
    if o["io_error_stops"]:
        parts.append("%d stops/%d resumed" % (o["io_error_stops"],
                                              o["resumes_after_stop"]))
    parts += ["%d BLOCK_IO_ERROR(%s%s%s)" % (
        o["block_io_errors"], ",".join(o["actions"]),
        ",".join([""] + o["operations"]),
        ",nospace" if True in o["nospace"] else ""),
        "fio %s" % "/".join(j["outcome"] + ("(%d)" % j["io_errors"]
                                            if j["io_errors"] else "")
                            for j in o["jobs"]),
        "verify errors %d" % o["verify_errors"],
        "dmesg I/O errors %s" % o["dmesg_ioerr"]]
    if o.get("path"):
        parts.append("path %s" % ",".join(o["path"]))
    return ", ".join(parts)


def report(results, out, elapsed, c):
    """faults.json"""
    keys = (("faults", "block_io_errors"), ("stops_survived",
            "resumes_after_stop"), ("guest_dmesg_io_errors", "dmesg_ioerr"),
            ("run_s", "wall_s")) + tuple((k, k) for k in (
                "actions", "operations", "io_error_stops", "pauses",
                "fio_errors", "verify_errors", "path", "fast_rw",
                "fallback_rw", "hang"))
    summary = {r["cell"]: dict({"pass": r["pass"]}, **{
        d: {k: r[d].get(f) for k, f in keys} for d, _ in DEVICES if d in r})
        for r in results}
    with open(os.path.join(out, "faults.json"), "w") as f:
        json.dump({"elapsed_s": elapsed, "passed": c.passed, "failed":
                   c.failed, "summary": summary, "cells": results}, f,
                  indent=1)


def table(results, out, elapsed):
    fmt = "%-20s %-8s %-9s %6s %-7s %7s %7s %7s %6s %6s"
    print("\n" + fmt % ("cell", "device", "path", "faults", "action",
                        "stops", "fio-err", "verify", "dmesg", "run_s"))
    for r in results:
        for i, d in enumerate(d for d, _ in DEVICES if d in r):
            o = r[d]
            path = ",".join(o.get("path") or ["-"])
            print(fmt % (
                "" if i else r["cell"], d, path if path in ("io_uring", "-")
                else "fallback", o["block_io_errors"],
                ",".join(o["actions"]) or "-",
                "%dp" % o["pauses"] if o["pauses"] else
                "%d/%d" % (o["resumes_after_stop"], o["io_error_stops"]),
                o["fio_errors"], o["verify_errors"], o["dmesg_ioerr"],
                o["wall_s"]))
    print("(faults: BLOCK_IO_ERROR events, throttled by QEMU to 1/s unless "
          "the action is stop; stops: survived (resumed)/io-error stops, "
          "Np: N QMP stop/cont by the script; fio-err: guest I/O errors; "
          "dmesg: guest kernel 'I/O error' lines, rate limited)")
    print("total %.0f s; results in %s" % (elapsed, os.path.join(
        out, "faults.json")))


def run_cell(ctx):
    """Both devices (or the one of --device), judged; the cell's result."""
    cell, args, rep, obs = ctx.case, ctx.args, ctx.rep, {}
    for devname, device in DEVICES:
        if args.device not in ("both", devname):
            continue
        log("%s: %s (%s) ..." % (cell.name, devname, cell.props))
        o = run_once(cell, devname, device, args, rep)
        # a TCG guest on a loaded host, nothing to do with the disk
        if o.get("boot_s") is None and o["run_exit"] in (2, None):
            log("%s on %s: the guest did not boot (%s), once more" % (
                cell.name, devname, o["run_error"]))
            o = dict(run_once(cell, devname, device, args, rep),
                     boot_retry=o["run_error"])
        obs[devname] = o
    problems = ["%s: %s" % (d, x) for d in obs
                for x in check_alone(cell, obs[d], d == "poll")]
    if len(obs) == 2:
        problems += ["poll vs upstream: " + x for x in
                     compare(cell, obs["poll"], obs["upstream"])]
    name = cell.name + ("#%d" % (rep + 1) if ctx.repeat > 1 else "")
    ctx.checks.check(name, not problems, "; ".join(
        "%s=%s" % (d, brief(o)) for d, o in obs.items()))
    for x in problems:
        print("    %s" % x, flush=True)
    ctx.results.append(dict(
        cell=name, policy=cell.policy, props=cell.props, what=cell.what,
        problems=problems, **{"pass": not problems}, **obs))


# ------------------------------------------------------------ the cells
def cell(name, policy, source, props, jobs, what, long=False,
         guest_setup=""):
    """A case: the fault of @source(workdir) (a FaultSource) under
    @policy, the -device @props, fio @jobs (job_from_spec), @long: with
    --long only."""
    return Case(name, run_cell, doc="%-7s %-28s %s%s" % (
        policy, props, what, " (--long)" * long),
        when=(lambda args: args.long) if long else None,
        policy=policy, source=source, props=props, what=what,
        jobs=[job_from_spec(j) for j in jobs], guest_setup=guest_setup,
        traits=source("/nonexistent"))    # path, exact, stops_exact


# blkdebug rules: sectors (512 bytes) in different 16k blocks, two in
# each 16M half of the first 32M (the two fio jobs of blkdebug-stop-2q).
W_SECTORS = (2056, 20008, 34824, 52000)
R_SECTORS = (4104, 24584, 40000, 61448)
POST0007 = "(the lost interrupt of patch 0008)"
CASES = [
    cell("enospc-stop", "stop", Enospc, "werror=stop",
         ["randwrite 16M 4k-64k v2"],
         "fast path file, tmpfs full (ENOSPC), grown at each stop"),
    cell("enospc-report", "report", Enospc, "werror=report",
         ["write 24M 64k c"], "fast path file, ENOSPC reported to the guest"),
    cell("enospc-ignore", "ignore", Enospc, "werror=ignore",
         ["write 24M 64k vc"],
         "fast path file, ENOSPC ignored: data lost, verify fails"),
    cell("eio-loop-stop", "stop", lambda d: LoopEio(d, rearms=2),
         "werror=stop", ["randwrite 8M 4k v2"], "fast path host_device, "
         "kernel EIO from a stacked loop, injected 3 times"),
    cell("eio-loop-report", "report", LoopEio, "werror=report",
         ["randrw 8M 16k c"], "fast path host_device, kernel EIO on every "
         "write"),
    cell("eio-loop-ignore", "ignore", LoopEio, "werror=ignore",
         ["randwrite 8M 16k vc"], "fast path host_device, kernel EIO "
         "ignored"),
    cell("blkdebug-stop", "stop",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS, once=True),
         "werror=stop,rerror=stop", ["randwrite 32M 16k v"],
         "fallback, blkdebug EIO once at 4 write + 4 read sectors"),
    cell("blkdebug-report", "report",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS),
         "werror=report,rerror=report",
         ["randwrite 32M 16k c", "randread 32M 16k c"],
         "fallback, blkdebug EIO at 4 write + 4 read sectors"),
    cell("blkdebug-ignore", "ignore",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS),
         "werror=ignore,rerror=ignore", ["randwrite 32M 16k vc"],
         "fallback, blkdebug EIO ignored on writes and reads"),
    cell("enospc-loop-stop", "stop", lambda d: Enospc(d, loop=True),
         "werror=stop,request-merging=false", ["randwrite 16M 4k v2"],
         "fast path host_device: loop over a full tmpfs (ENOSPC), "
         "page-sized unmerged writes (the loop driver drops the tail of "
         "a short write)",
         guest_setup="echo 2 > /sys/block/vda/queue/nomerges"),
    cell("enospc-policy-stop", "stop", Enospc, "werror=enospc",
         ["randwrite 16M 16k v2"], "werror=enospc stops on ENOSPC"),
    cell("enospc-policy-eio", "report", lambda d: Blkdebug(d, W_SECTORS),
         "werror=enospc", ["randwrite 32M 16k c"],
         "werror=enospc reports EIO"),
    cell("blkdebug-stop-2q", "stop",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS, once=True, burn=2),
         "werror=stop,rerror=stop", ["randwrite 16M 16k v2"],
         "blkdebug-stop with two fio jobs, one per queue, 2 CPU hogs "
         + POST0007),
    # --long only
    cell("pause-fast", "pause",
         lambda d: FaultSource(d, 128 * MiB, burn=2, pauses=30),
         "werror=stop", ["randwrite 32M 4k v2"], "no fault: 30 QMP "
         "stop/cont during fio, 2 CPU hogs, fast path " + POST0007,
         long=True),
    # blkdebug without rules: the block layer path
    cell("pause-fallback", "pause",
         lambda d: FaultSource(d, 128 * MiB, rules=[], burn=2, pauses=30),
         "werror=stop", ["randwrite 32M 4k v2"], "no fault: 30 QMP "
         "stop/cont during fio, 2 CPU hogs, block layer " + POST0007,
         long=True),
    cell("blkdebug-nospc-report", "report",
         lambda d: Blkdebug(d, W_SECTORS, errno=28), "werror=report",
         ["randwrite 32M 16k c"], "fallback, blkdebug ENOSPC reported",
         long=True),
    cell("enospc-stop-big", "stop", lambda d: Enospc(
        d, img=128 * MiB, grow=12 * MiB, max_fs=160 * MiB), "werror=stop",
         ["randwrite 48M 4k v2"],
         "fast path file, 96M of 4k writes, tmpfs grown 12M a stop",
         long=True),
]


def add_arguments(ap):
    a = ap.add_argument
    a("--long", action="store_true", help="the extra cells too, and every "
      "cell --repeat times (default 2 with --long)")
    a("--repeat", type=int, default=0, help="run each cell N times")
    a("--device", choices=("both", "poll", "upstream"), default="both",
      help="run one device only (no comparison: to reproduce a failure)")
    a("--job-timeout", type=int, default=150,
      help="guest watchdog per fio job (default 150 s)")
    a("--qemu-arg", action="append", default=[], help="extra QEMU "
      "argument (repeat for each word; --qemu-arg=-trace ...)")
    a("-v", "--verbose", action="store_true",
      help="the runner's messages and the controller's")


def setup(ctx):
    if os.geteuid() != 0:
        log("needs root (mount, losetup)")
        print("0 passed, 1 failed")
        return 1
    ctx.repeat = ctx.args.repeat or (2 if ctx.args.long else 1)
    ctx.t_start, ctx.results = time.monotonic(), []

    def on_signal(signum, frame):  # unwind through the finally clauses
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cleanup_leftovers()


def teardown(ctx):
    """The loop devices and mounts of this run; faults.json, a table."""
    cleanup(os.path.join(WORK_ROOT, str(os.getpid())))
    elapsed = round(time.monotonic() - ctx.t_start, 1)
    report(ctx.results, ctx.out, elapsed, ctx.checks)
    if ctx.completed:
        table(ctx.results, ctx.out, elapsed)


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, add_arguments, setup, teardown,
                        out="faults"))
