#!/usr/bin/python3
"""virtio-blk-poll on Ceph RBD, against upstream virtio-blk-pci.

Starts a throwaway single-node cluster (ceph-cluster.sh next to this
file: one monitor and one memstore OSD on 127.0.0.1, pool "rbd" of size
1, every daemon killed by its pid and its directory removed at the end)
and runs, for virtio-blk-poll-pci and then virtio-blk-pci, the test guest
on -blockdev driver=rbd (cache.direct=on: librbd's own cache would
acknowledge writes before the cluster has them), one fresh image each:

  plain     fio 4k randwrite QD16 + crc32c verify
  stopcont  the same while the host stops and continues the VM (--cycles)
  migrate   the same while the guest moves to a second QEMU process that
            opens the same image (unix socket, mid-job)
  outage    the same with werror=stop,rerror=stop while the OSD is
            stopped (SIGSTOP): librbd fails the requests after
            rados_osd_op_timeout (5 s, in the cluster's [client]
            section), the VM must stop on an I/O error exactly as
            upstream's does; then the OSD continues, the host sends cont,
            and every write must verify

and once, on a stopped VM: blockdev-add with a missing pool, a wrong
image name, a missing conf file and an unreachable monitor must fail
with an error naming it while QEMU keeps running; virtio-blk-poll must
realize on an rbd node and report why the block layer serves it.

Prints a PASS/FAIL line per check, a table of IOPS, latency, kicks and
interrupts per I/O of both devices, "N passed, N failed" last.
Usage: tests/functional/test_rbd.py [--only CASE,...] [--cycles N]
                                    [--out DIR] [--list]
(--only plain: both devices' plain cases, poll-plain and upstream-plain.)
"""
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import checks, fio, machine, paths, runner, suite  # noqa: E402
from vbp_test.console import Console  # noqa: E402
from vbp_test.qmp import QMP, Error as QMPError  # noqa: E402
from vbp_test.suite import Case  # noqa: E402

log = functools.partial(checks.log, "test-rbd")
CLUSTER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "ceph-cluster.sh")
DEVICES = (("poll", "virtio-blk-poll-pci"), ("upstream", "virtio-blk-pci"))
OSD_TIMEOUT = 5
JOB = fio.job([("verify", dict(
    ioengine="io_uring", rw="randwrite", bs="4k", iodepth=16, size="64M",
    io_size="64M", verify="crc32c", do_verify=1, verify_fatal=1))])


class Cluster:
    """The single-node cluster of ceph-cluster.sh, in @workdir/ceph."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "ceph")
        if os.path.exists(self.dir):        # a killed run's cluster
            self.stop()
        with socket.socket() as s:          # a free port for the monitor
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.monotonic()
        subprocess.run([CLUSTER, "start", self.dir], check=True,
                       env=dict(os.environ, CEPH_PORT=str(port)),
                       stdout=subprocess.DEVNULL, timeout=120)
        self.start_s = round(time.monotonic() - t0, 2)
        self.conf = os.path.join(self.dir, "ceph.conf")
        with open(self.conf, "a") as f:
            f.write("[client]\nrados_osd_op_timeout = %d\n"
                    "client_mount_timeout = 10\n" % OSD_TIMEOUT)

    def image(self, name, size="256M"):
        subprocess.run(["rbd", "-c", self.conf, "create", "--size", size,
                        "rbd/" + name], check=True, timeout=60)
        return name

    def blockdev(self, image, pool="rbd", conf=None, node="disk0"):
        return {"driver": "rbd", "node-name": node, "pool": pool,
                "image": image, "conf": conf or self.conf,
                "cache": {"direct": True, "no-flush": False}}

    def osd(self, sig):
        with open(os.path.join(self.dir, "run", "osd.0.pid")) as f:
            os.kill(int(f.read()), sig)

    def stop(self):
        subprocess.run([CLUSTER, "stop", self.dir], timeout=60)


def options(dev, out, tag, props=()):
    cfg = runner.options(
        ["--device", dev, "--iothreads", "1", "--num-queues", "2",
         "--job-timeout", "240", "--full-fio",
         "--run-root", os.path.join(out, "runs", tag)] +
        ["--device-prop=" + p for p in props])
    cfg.jobs_inline = [{"name": "verify", "text": JOB}]
    return cfg


def in_thread(body, res):
    """on_start for runner.run(): @body(qemu, qmp, res) in a thread with
    its own QMP on the free monitor, once the job is READY."""
    def start(qemu):
        def run():
            qmp = None
            try:
                qmp = QMP(qemu.sock("qmp-user"))
                if qemu.console.wait_marker("READY", "verify", 120):
                    body(qemu, qmp, res)
            except QMPError as e:
                res["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                if qmp:
                    res["events"] = qmp.events
                    qmp.close()
        res["thread"] = threading.Thread(target=run, daemon=True)
        res["thread"].start()
    return start


def stopcont(cycles):
    def body(qemu, qmp, res):
        time.sleep(0.5)
        res["statuses"] = []
        for _ in range(cycles):
            qmp.cmd("stop")
            res["statuses"].append(qmp.cmd("query-status")["status"])
            time.sleep(random.uniform(0.1, 0.3))
            qmp.cmd("cont")
            time.sleep(random.uniform(0.1, 0.4))
        res["done_before_end"] = not qemu.console.markers("DONE")
    return body


def outage(cluster):
    def body(qemu, qmp, res):
        time.sleep(1)
        cluster.osd(signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            stop = qmp.wait_event("STOP", 6 * OSD_TIMEOUT)
            res["stopped_after_s"] = stop and round(stop["t"] - t0, 1)
            res["status"] = qmp.cmd("query-status")["status"]
        finally:
            time.sleep(1)
            cluster.osd(signal.SIGCONT)
        # Requests that time out after the stop are held too; cont retries
        # them all, and one that fails again stops the VM again.
        res["conts"] = 0
        while qmp.cmd("query-status")["status"] == "io-error" and \
                res["conts"] < 10:
            since = len(qmp.events)
            qmp.cmd("cont")
            res["conts"] += 1
            if not qmp.wait_event("STOP", OSD_TIMEOUT + 1, since=since):
                break
    return body


def guest_run(c, label, cfg, blockdev, body=None):
    res = {}
    doc = runner.run(cfg, blockdev=blockdev,
                     on_start=body and in_thread(body, res))
    if res.get("thread"):
        res.pop("thread").join(60)
    with open(os.path.join(cfg.run_root, "result.json"), "w") as f:
        json.dump(doc, f, indent=1)
    job = (doc.get("jobs") or [{}])[0]
    c.check("%s: fio ran, 0 verify errors" % label,
            doc.get("ok") and job.get("rc") == 0 and
            job.get("verify_errors") == 0 and job.get("ios", 0) > 0,
            "error=%s rc=%s verify_errors=%s ios=%s" % (
                doc.get("error"), job.get("rc"), job.get("verify_errors"),
                job.get("ios")))
    if res.get("error"):
        c.check("%s: host side" % label, False, res["error"])
    return doc, job, res


def migrate(c, label, dev, cluster, image, out):
    """The guest moves, mid-job, to a second QEMU on the same image."""
    rundir = os.path.join(out, "runs", "migrate-" + label.split(":")[0])
    os.makedirs(rundir, exist_ok=True)
    meta = machine.guest_files()
    initrd = machine.make_initrd(
        os.path.join(rundir, "initrd"), meta["initrd"],
        {"verify.fio": fio.JOB_DEFAULTS + JOB,
         "run.sh": "vbp_fio verify /job/verify.fio 240\n"})
    argv = machine.qemu_argv(
        meta["kernel"], initrd, machine.cmdline(600, 240, sync=False),
        cluster.blockdev(image), machine.device_json(dev, ["iot0"], 2),
        ["iot0"])
    console = Console(os.path.join(rundir, "serial.log"))
    procs = []
    res = {}
    try:
        src = machine.Qemu(argv, rundir, "src", "socket", console)
        procs.append(src)
        src.connect()
        dst = machine.Qemu(argv + ["-incoming", "defer"], rundir, "dst",
                           "socket", console)
        procs.append(dst)
        dst.connect()
        console.close()
        console.expect("READY", "verify", 120)
        time.sleep(1.5)
        uri = "unix:" + os.path.join(rundir, "mig.sock")
        dst.qmp.cmd("migrate-incoming", {"uri": uri})
        src.qmp.cmd("migrate", {"uri": uri})
        deadline = time.monotonic() + 120
        while src.qmp.cmd("query-migrate").get("status") not in (
                "completed", "failed", "cancelled") and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        res["migration"] = src.qmp.cmd("query-migrate").get("status")
        while dst.qmp.cmd("query-status")["status"] != "running" and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        res["dst_status"] = dst.qmp.cmd("query-status")["status"]
        res["src_status"] = src.qmp.cmd("query-status")["status"]
        res["src_exit"] = src.stop(20, quit=True)
        _, name = console.expect("DONE", "verify", 300)
        wr = [d["stats"]["wr_operations"] for d in
              dst.qmp.cmd("query-blockstats") if d.get("qdev")]
        res["dst_writes"] = sum(wr)
        console.expect("END", "verify", 60)
        b = fio.block_result(console.blocks.get("verify", {}))
        res["rc"], res["verify_errors"] = b["rc"], b["verify_errors"]
        res["ios"] = fio.summarize(b["doc"])["ios"] if b["doc"] else 0
        res["fio_error"] = b["error"]
        console.expect("ALL-DONE", timeout=60)
    except QMPError as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    except Exception as e:          # noqa: BLE001 (GuestError: reported)
        res["error"] = "%s: %s (console: %s)" % (
            type(e).__name__, e, " | ".join(console.tail(8)))
    finally:
        for p in procs:
            p.stop(30 if not res.get("error") else 0.1)
        console.finish()
    c.check("%s: migration completed, destination running" % label,
            res.get("migration") == "completed" and
            res.get("dst_status") == "running" and res.get("src_exit") == 0,
            json.dumps(res))
    c.check("%s: destination wrote, fio ran, 0 verify errors" % label,
            not res.get("error") and res.get("rc") == 0 and
            res.get("verify_errors") == 0 and res.get("ios", 0) > 0 and
            res.get("dst_writes", 0) > 0, json.dumps(res))
    return res


def bad_input(c, cluster, workdir):
    """blockdev-add and realize errors on a stopped VM; QEMU survives."""
    bad_conf = os.path.join(workdir, "unreachable.conf")
    with open(bad_conf, "w") as f:
        f.write("[global]\nmon_host = v2:127.0.0.1:1\nauth_client_required"
                " = none\nclient_mount_timeout = 3\n")
    argv = [paths.QEMU, "-machine", "pc", "-accel", "tcg", "-nodefaults",
            "-display", "none", "-S", "-object", "iothread,id=iot0"]
    qemu = machine.Qemu(argv, workdir, "bad")
    try:
        q = qemu.connect()
        cases = (("missing pool", dict(pool="nosuchpool"), "nosuchpool"),
                 ("wrong image", dict(image="nosuchimg"), "nosuchimg"),
                 ("missing conf file", dict(conf="/nonexistent/ceph.conf"),
                  "/nonexistent/ceph.conf"),
                 ("unreachable monitor", dict(conf=bad_conf),
                  "error connecting"))
        for what, over, needle in cases:
            bd = dict(cluster.blockdev("img", node="bad"), **over)
            t0 = time.monotonic()
            try:
                q.cmd("blockdev-add", bd)
                msg = "blockdev-add succeeded"
            except QMPError as e:
                msg = str(e)
            took = time.monotonic() - t0
            alive = q.cmd("query-status").get("status") == "prelaunch"
            c.check("bad input: %s: blockdev-add fails naming it, QEMU "
                    "runs on" % what, needle in msg and alive and took < 30,
                    "%r after %.1f s" % (msg, took))
        q.cmd("blockdev-add", cluster.blockdev("img", node="good"))
        try:
            q.cmd("device_add", {"driver": "virtio-blk-poll-pci",
                                 "id": "d1", "drive": "nosuchnode"})
            msg = "device_add succeeded"
        except QMPError as e:
            msg = str(e)
        c.check("bad input: realize on a missing node names it",
                "nosuchnode" in msg, msg)
        q.cmd("device_add", {"driver": "virtio-blk-poll-pci", "id": "d0",
                             "drive": "good", "iothread": "iot0"})
        q.cmd("cont")                   # the queues start with the VM
        deadline = time.monotonic() + 10
        path = "not started"
        while path == "not started" and time.monotonic() < deadline:
            time.sleep(0.1)
            path = q.cmd("qom-get", {"path": "/machine/peripheral/d0",
                                     "property": "stats"})[0].get("path")
        c.check("rbd node: virtio-blk-poll realizes, the block layer "
                "serves it", path.startswith("protocol node"), path)
        q.cmd("quit")
    except QMPError as e:
        c.check("bad input: QMP", False, "%s: %s" % (type(e).__name__, e))
    rc = qemu.stop(30)
    c.check("bad input: QEMU exits 0", rc == 0,
            "exit %s %s" % (rc, qemu.stderr_text(300)))


def check_bad_input(ctx):
    bad_input(ctx.checks, ctx.cluster, ctx.out)


def run_fio(ctx):
    """plain, stopcont, outage: the guest's fio on a fresh image, with the
    host's stop/cont cycles or the OSD outage meanwhile."""
    c, case, cluster, cycles = ctx.checks, ctx.case, ctx.cluster, \
        ctx.args.cycles
    label = "%s: %s" % (case.short, case.group)
    image = cluster.image(case.name)
    props = ["werror=stop,rerror=stop"] if case.group == "outage" else []
    body = stopcont(cycles) if case.group == "stopcont" else \
        outage(cluster) if case.group == "outage" else None
    doc, job, res = guest_run(
        c, label, options(case.device, ctx.out, case.name, props),
        cluster.blockdev(image), body)
    ctx.rows[(case.short, case.group)] = (job, res)
    events = res.pop("events", [])
    if case.group == "stopcont":
        c.check("%s: %d stop/cont cycles under I/O" % (label, cycles),
                res.get("statuses") == ["paused"] * cycles
                and res.get("done_before_end"), json.dumps(res))
    if case.group == "outage":
        acts = {(e["data"].get("action"), e["data"].get("reason"))
                for e in events if e["event"] == "BLOCK_IO_ERROR"}
        res["actions"] = sorted(acts)
        c.check("%s: the VM stopped on the I/O error, cont after the OSD "
                "came back" % label,
                res.get("status") == "io-error" and
                res.get("conts", 0) >= 1 and acts == {
                    ("stop", "Connection timed out")}, json.dumps(res))
    if case.short == "poll" and job.get("device_stats"):
        qs = job["device_stats"]["queues"]
        c.check("%s: the block layer served it" % label,
                sum(q.get("fast-rw", 0) for q in qs) == 0 and
                sum(q.get("fallback-rw", 0) for q in qs) > 0 and
                qs[0].get("path", "").startswith("protocol"),
                "path=%s" % qs[0].get("path"))


def run_migrate(ctx):
    case = ctx.case
    migrate(ctx.checks, "%s: %s" % (case.short, case.group), case.device,
            ctx.cluster, ctx.cluster.image(case.name), ctx.out)


def compare_outage(ctx):
    p, u = (ctx.rows.get((d, "outage"), ({}, {}))[1]
            for d in ("poll", "upstream"))
    ctx.checks.check(
        "outage: werror/rerror behaviour identical to upstream's",
        p.get("actions") and p.get("actions") == u.get("actions") and
        p.get("status") == u.get("status"), "poll %s %s, upstream %s %s" % (
            p.get("status"), p.get("actions"), u.get("status"),
            u.get("actions")))


# Each of plain, stopcont, migrate and outage on each device, the group
# --only names them by.
CASES = [Case("bad", check_bad_input, doc="blockdev-add and realize "
              "errors, one QEMU")] + [
    Case("%s-%s" % (short, kind), run, group=kind, short=short,
         device=device, doc="%s on %s" % (kind, device))
    for short, device in DEVICES
    for kind, run in (("plain", run_fio), ("stopcont", run_fio),
                      ("migrate", run_migrate), ("outage", run_fio))] + [
    Case("outage-vs-upstream", compare_outage, group="outage",
         doc="poll-outage and upstream-outage compared")]


def add_arguments(ap):
    ap.add_argument("--cycles", type=int, default=5,
                    help="stop/cont cycles (default 5)")


def setup(ctx):
    """Ceph installed, the guest built, the cluster started."""
    c, ctx.cluster, ctx.rows = ctx.checks, None, {}
    missing = [b for b in ("ceph-mon", "ceph-osd", "ceph", "rbd")
               if not shutil.which(b)]
    if missing:
        c.check("Ceph installed", False, "no %s: scripts/setup-host.sh "
                "ceph" % ", ".join(missing))
        return c.summary()
    machine.guest_files(rebuild=True)
    ctx.t0 = time.monotonic()
    ctx.cluster = Cluster(ctx.out)
    log("cluster up in %.1f s (%s)" % (ctx.cluster.start_s,
                                       ctx.cluster.conf))


def teardown(ctx):
    """The cluster stopped; a table of both devices' figures."""
    c, cluster = ctx.checks, ctx.cluster
    if cluster is None:
        return
    cluster.stop()
    left = subprocess.run(["pgrep", "-f", cluster.dir],
                          capture_output=True, text=True).stdout.split()
    c.check("cluster stopped: no daemon left, %s removed" % cluster.dir,
            not left and not os.path.exists(cluster.dir), "pids %s" % left)
    if not ctx.completed:
        return
    row = "%-9s %-9s %9s %9s %9s %9s"
    print("\n" + row % ("device", "case", "IOPS", "p50 us", "kicks/io",
                        "irqs/io"))
    for (short, case), (job, _) in ctx.rows.items():
        w = next((j["write"] for j in job.get("fio", {}).get("jobs", [])
                  if "write" in j), {})
        kicks = job.get("kicks_per_io", "~%s" % job.get("kicks_est_per_io"))
        print(row % (short, case, w.get("iops"),
                     w.get("lat_ns", {}).get("50", 0) // 1000, kicks,
                     job.get("irqs_per_io")))
    log("%.0f s in all" % (time.monotonic() - ctx.t0))


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, add_arguments, setup, teardown,
                        out="rbd"))
