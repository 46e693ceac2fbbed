#!/usr/bin/python3
"""libvirt drives virtio-blk-poll with pinned iothreads (e2e-libvirt).

As root on Debian 12 (libvirt installed from bookworm-backports when
missing; its own virtlogd and libvirtd in a private mount namespace, see
vbp_test/libvirt.py) checks that bad queue mappings are refused at define
and leave nothing running (cases bad-unknown-iothread,
bad-queue-out-of-range); that a TCG domain whose disk <qemu:override>
makes virtio-blk-poll-pci, 2 queues on 2 pinned iothreads, gets the
pinning, device, mapping and pollers of its XML; that fio (4k randwrite,
crc32c verify) from vCPU 0, vCPU 1 and vCPU 0 after `virsh iothreadpin
--live` works only that queue and iothread, on the raw io_uring fast path
(KNOWN with --allow-block-layer); and that power-off, destroy and the
daemons' stop leave no QEMU process, thread or cgroup (case domain).
docs/libvirt.md ("Running the test") describes it.

Usage: tests/functional/test_libvirt.py [--keep] [--workdir DIR] [-v]
       [--allow-block-layer] [--no-install] [--suite bookworm]
       [--only CASE[,CASE]] [--list]
"""
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from contextlib import suppress

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vbp_test import counters, fio, machine, paths, suite  # noqa: E402
from vbp_test.console import Console, GuestError, socket_source  # noqa: E402
from vbp_test.libvirt import (  # noqa: E402
    BPO, IOTHREAD_PIN, MAPPING, NQUEUES, PHASES, POLL_IDLE_NS,
    QUEUE_IOTHREAD, VCPU_PIN, Abort, Images, Libvirt, Sampler, cgroup_dirs,
    cpus_allowed, ensure_libvirt, log, pid_alive, qemu_procs, read,
    remove_new_cgroups, thread_sample, wait_gone)
from vbp_test.suite import Case  # noqa: E402

DEV = "/machine/peripheral/ua-disk0"      # the disk's alias: its QOM path
STAT_KEYS = ("path", "requests", "kicks", "notifies", "notifies-suppressed",
             "passes", "completions", "wakeups", "fast-rw", "fallback-rw")


def fmt_stats(stats):
    return "; ".join("q%s[%s tid %s] %s" % (
        q.get("queue"), q.get("iothread"), q.get("thread-id"), " ".join(
            "%s=%s" % (k, json.dumps(q[k]) if isinstance(q[k], str)
                       else q[k]) for k in STAT_KEYS if k in q))
        for q in stats)


def run_ms(b, a):
    """Run time (ms) between two thread_sample()s, None if one is."""
    return (a[0] - b[0]) / 1e6 if a and b else None


class Run:
    """One run: the work directory, libvirt's daemons, the domains
    defined, the QEMU processes seen; cleanup() undoes it all."""

    def __init__(self, args, c):
        self.args, self.c = args, c
        self.work = self.lv = self.con = None
        self.domains = set()          # defined by us, undefined at the end
        self.names = set()            # every domain name we used
        self.cgroups_before = cgroup_dirs()
        self.qemu_pids = set()

    def prepare(self):
        a = self.args
        if os.geteuid() != 0:
            raise Abort("run as root (libvirtd, mounts, apt-get)")
        if not os.access(a.qemu, os.X_OK):
            raise Abort("%s not built (scripts/build.sh)" % a.qemu)
        version = ensure_libvirt(a.no_install, a.suite)
        self.c.info("libvirt packages %s (libvirt-daemon), QEMU %s" %
                    (version, a.qemu))
        m = re.match(r"(?:\d+:)?(\d+)\.", version)
        if m and int(m.group(1)) < 10:
            self.c.info("WARNING: libvirt %s cannot map disk queues to "
                        "iothreads (needs >= 10.0): expect failures; %s has "
                        "11.x" % (version, BPO))
        os.makedirs(a.workdir, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="vbp-libvirt-", dir=a.workdir)
        # QEMU runs as libvirt-qemu: it must reach the images and the
        # serial socket directory.
        os.chmod(self.work, 0o755)
        os.mkdir(os.path.join(self.work, "chr"))
        os.chmod(os.path.join(self.work, "chr"), 0o777)
        log("work directory %s" % self.work)
        self.img = Images(self.work, a.qemu, a.io_size, a.job_timeout)

    def console(self, name, logname):
        """The guest's console: <serial type='unix'>, QEMU listens."""
        con = self.con = Console(os.path.join(self.work, logname))
        try:
            con.attach(socket_source(self.img.sock(name), 30))
        except OSError:
            con.finish(0)
            raise Abort("cannot connect to the serial socket %s" %
                        self.img.sock(name)) from None
        return con

    def bad_xml(self, label, mapping, expect_re):
        """define (or, when libvirt takes the XML, start) must fail with a
        clear error; no domain may be left running, no QEMU process."""
        lv, name = self.lv, "vbp-bad-%s-%d" % (label, os.getpid())
        self.names.add(name)
        p = lv.virsh("define", self.img.xml(name, name + ".xml", mapping))
        stage = "define"
        if p.returncode == 0:
            self.domains.add(name)
            p, stage = lv.virsh("start", name, timeout=120), "start"
        err = " ".join((p.stderr or p.stdout).split())
        self.c.check("bad XML (%s) is refused at %s with a clear error" %
                     (label, stage),
                     p.returncode != 0 and re.search(expect_re, err, re.I),
                     err[:300] or "rc %d, no error" % p.returncode)
        state, pids = lv.domstate(name), qemu_procs(name)
        if p.returncode == 0:
            self.c.info("libvirt took the bad XML (%s) and started the "
                        "domain: destroying it" % label)
        else:
            self.c.check("bad XML (%s) leaves no running domain and no "
                         "QEMU" % label,
                         state in (None, "shut off") and not pids,
                         "state %s, QEMU pids %s" % (state, pids or "none"))
        if state not in (None, "shut off"):
            lv.virsh("destroy", name, timeout=60)
        self.qemu_pids.update(pids)       # cleanup() undefines the domain

    def start(self, name, check, n):
        """virsh start --paused, the check @check that it started (with
        @n characters of virsh's output); the QEMU pid or None."""
        p = self.lv.virsh("start", "--paused", name, timeout=120)
        if not self.c.check(check, p.returncode == 0,
                            (p.stderr or p.stdout).strip()[:n]):
            return None
        pid = int(read(os.path.join(self.work, "run", "qemu", name + ".pid"))
                  or 0) or (qemu_procs(name) or [None])[0]
        if not pid:
            raise Abort("no QEMU process for %s" % name)
        self.qemu_pids.add(pid)
        return pid

    def run_domain(self):
        name = "vbp-libvirt-%d" % os.getpid()
        self.names.add(name)
        self.lv.ok("define", self.img.xml(name, "domain.xml"))
        self.domains.add(name)
        pid = self.start(name, "domain with pinned iothreads and a "
                         "virtio-blk-poll-pci disk starts", 400)
        if not pid:
            raise Abort("the domain did not start%s" %
                        self.lv.log_tail("log/qemu/%s.log" % name))
        con = self.console(name, "serial.log")
        try:
            self.first_boot(name, pid, con)
        finally:
            con.finish(2)
        self.second_boot(name)

    def qom(self, dom, prop):
        return self.lv.qmp(dom, "qom-get", {"path": DEV, "property": prop})

    def static_checks(self, name, pid):
        """iothreadinfo, pinning, QOM type and mapping, who polls what."""
        lv, c = self.lv, self.c
        qv = lv.qmp(name, "query-version")
        c.info("QEMU pid %d, version %s %s" % (pid, ".".join(
            str(qv["qemu"][k]) for k in ("major", "minor", "micro")),
            qv.get("package", "").strip()))
        info = lv.iothreadinfo(name)
        c.check("virsh iothreadinfo equals the XML's <iothreadpin>",
                info == IOTHREAD_PIN, "got %s, XML %s" % (info, IOTHREAD_PIN))
        iots = lv.qmp(name, "query-iothreads")
        tids = {int(m.group(1)): it["thread-id"] for it in iots
                for m in [re.fullmatch(r"iothread(\d+)", it["id"])] if m}
        c.check("query-iothreads lists iothread1 and iothread2 (no extra "
                "threads behind libvirt's back)",
                sorted(tids) == [1, 2] and len(iots) == 2,
                ", ".join("%s tid %s" % (i["id"], i["thread-id"])
                          for i in iots))
        vcpus = lv.qmp(name, "query-cpus-fast")
        self.vcpu_tids = [cpu["thread-id"] for cpu in vcpus]
        for what, pin, tid, want in [
                ("iothread%d" % k, "iothreadpin", tids.get(k), cpus)
                for k, cpus in sorted(IOTHREAD_PIN.items())] + [
                ("vCPU %d" % cpu["cpu-index"], "vcpupin", cpu["thread-id"],
                 VCPU_PIN.get(cpu["cpu-index"])) for cpu in vcpus]:
            got = cpus_allowed(tid if tid is not None else -1)
            c.check("%s (tid %s) Cpus_allowed_list equals its %s cpuset" %
                    (what, tid, pin), got == want,
                    "Cpus_allowed_list %s, cpuset %s" % (got, want))
        periph = [p["name"] for p in lv.qmp(
            name, "qom-list", {"path": "/machine/peripheral"})
            if p.get("type", "").startswith("child<")]
        c.check("the disk is /machine/peripheral/ua-disk0 (its alias)",
                "ua-disk0" in periph, "peripherals: %s" % periph)
        dtype = self.qom(name, "type")
        c.check("qom-get: the disk's type is virtio-blk-poll-pci "
                "(<qemu:override>)", dtype == "virtio-blk-poll-pci",
                "type %s" % dtype)
        mapping = self.qom(name, "iothread-vq-mapping")
        norm = sorted((m.get("iothread"), sorted(m.get("vqs", [])))
                      for m in mapping) if isinstance(mapping, list) else 0
        c.check("qom-get: iothread-vq-mapping is what the XML asked for",
                norm == [("iothread%d" % i, qs) for i, qs in MAPPING.items()],
                "got %s" % json.dumps(mapping))
        for prop, what, want in (
                ("poll-idle-ns", "the <qemu:override> value", POLL_IDLE_NS),
                ("num-queues", "the XML's queues='%d'" % NQUEUES, NQUEUES)):
            got = self.qom(name, prop)
            c.check("qom-get: %s is %s" % (prop, what), got == want,
                    "%s %s" % (prop, got))
        stats = self.qom(name, "stats")
        ok = isinstance(stats, list) and len(stats) == NQUEUES
        detail = []
        for q in stats if ok else []:
            iot = QUEUE_IOTHREAD.get(q.get("queue"))
            detail.append("queue %s: %s tid %s" % (
                q.get("queue"), q.get("iothread"), q.get("thread-id")))
            ok = ok and q.get("iothread") == "iothread%s" % iot and \
                q.get("thread-id") == tids.get(iot)
        c.check("stats: queue k is polled by the thread of the iothread "
                "libvirt mapped it to (query-iothreads thread-id)",
                ok, "; ".join(detail) or repr(stats)[:300])
        return tids

    def snapshot(self, name, tids):
        return {"stats": self.qom(name, "stats"),
                "blk": self.lv.domblkstat(name),
                "threads": {k: thread_sample(t) for k, t in tids.items()},
                "vcpus": [thread_sample(t) for t in self.vcpu_tids]}

    def phase(self, con, dom, tids, name, vcpu):
        """One fio phase between its READY and DONE markers."""
        c = self.c
        con.expect("READY", name, 120)
        if name == "vcpu0-moved":
            self.move_iothread(dom, tids)
        before = self.snapshot(dom, tids)
        con.reply()
        with Sampler(tids) as smp:
            con.expect("DONE", name, self.args.job_timeout + 60)
        after = self.snapshot(dom, tids)
        con.reply()
        con.expect("BEGIN", name)
        con.expect("END", name)
        sec = con.blocks.get(name, {})
        b = fio.block_result(sec)
        doc, err, rc, stderr, verify_n = (
            b[k] for k in ("doc", "error", "rc", "stderr", "verify_errors"))
        summ = fio.summarize(doc) if doc else {"ios": 0}
        wr, rd = (sum(j.get(d, {}).get("ios", 0) for j in summ.get("jobs", []))
                  for d in ("write", "read"))
        c.check("[%s] fio (4k randwrite + crc32c verify, taskset vCPU %d) "
                "ran with no verify error" % (name, vcpu),
                rc == 0 and doc is not None and verify_n == 0 and
                not summ.get("job_errors") and wr > 0 and rd > 0,
                "rc %d, %d writes, %d verify reads, %d verify errors%s" %
                (rc, wr, rd, verify_n, "" if doc else ", " + str(err)) +
                ("; stderr: " + " | ".join(stderr[-5:]) if rc else ""))
        d = counters.delta_stats(before["stats"], after["stats"]) or \
            {"queues": []}
        c.info("[%s] per-queue counters (delta): %s" %
               (name, fmt_stats(d["queues"])))
        c.info("[%s] per-queue counters (total): %s" %
               (name, fmt_stats(after["stats"])))
        irq0, irq1 = (counters.parse_interrupts("\n".join(sec.get(s, [])))
                      for s in ("irq-before", "irq-after"))
        c.info("[%s] guest interrupts per queue: %s" % (name, {
            k: v - irq0.get(k, 0) for k, v in sorted(irq1.items())
            if re.match(r"virtio\d+-req\.\d+$", k)}))
        req = {q["queue"]: q.get("requests", 0) for q in d["queues"]}
        c.check("[%s] I/O from vCPU %d grows only queue %d's counters" %
                (name, vcpu, vcpu), req.get(vcpu, 0) > 0 and
                all(n == 0 for q, n in req.items() if q != vcpu),
                "requests per queue %s" % req)
        # The raw io_uring fast path (docs/system/devices/virtio/
        # virtio-blk-poll.rst) should serve a raw file disk with
        # cache='none' io='io_uring'.
        aq = ([q for q in d["queues"] if q.get("queue") == vcpu] or [{}])[0]
        c.check("[%s] queue %d's requests take the raw io_uring fast path" %
                (name, vcpu),
                aq.get("path") == "io_uring" and aq.get("fast-rw", 0) > 0,
                "path %s, fast-rw %s, fallback-rw %s" % (
                    json.dumps(aq.get("path")), aq.get("fast-rw", 0),
                    aq.get("fallback-rw")), known=self.args.allow_block_layer)
        cpu = {k: run_ms(before["threads"][k], after["threads"][k])
               for k in tids}
        active = QUEUE_IOTHREAD[vcpu]
        idle = [k for k in tids if k != active]
        c.info("[%s] iothread CPU time (ms): %s; vCPU CPU time (ms): %s" % (
            name, ", ".join("iothread%d %.1f" % (k, cpu[k] or 0)
                            for k in sorted(cpu)),
            ", ".join("vcpu%d %.1f" % (i, t) for i, t in enumerate(
                map(run_ms, before["vcpus"], after["vcpus"]))
                if t is not None)))
        c.check("[%s] only iothread%d (queue %d) accumulates CPU time" %
                (name, active, vcpu), cpu.get(active) is not None and
                cpu[active] > 0 and all(cpu[k] is not None and cpu[k] <= max(
                    0.05 * cpu[active], 20.0) for k in idle),
                "iothread%d %.1f ms, %s" % (
                    active, cpu.get(active) or 0,
                    ", ".join("iothread%d %.1f ms" % (k, cpu[k] or 0)
                              for k in idle)))
        blk = {k: after["blk"].get(k, 0) - before["blk"].get(k, 0)
               for k in ("rd_req", "wr_req", "flush_operations",
                         "rd_bytes", "wr_bytes")}
        dev_req = sum(req.values())
        c.check("[%s] virsh domblkstat reports the I/O" % name,
                blk["wr_req"] >= wr and blk["rd_req"] >= rd and
                blk["wr_bytes"] >= wr * 4096 and
                blk["rd_req"] + blk["wr_req"] <= dev_req,
                "domblkstat delta %s; fio %d writes %d reads; device "
                "requests %d" % (blk, wr, rd, dev_req))
        return smp.cpus, after["stats"]

    def first_boot(self, name, pid, con):
        c = self.c
        tids = self.static_checks(name, pid)
        self.lv.ok("resume", name)
        dl = time.monotonic() + self.args.boot_timeout
        con.expect("BOOT", None, dl - time.monotonic())
        con.expect("BOOT-END", None, dl - time.monotonic())
        c.info("guest: %s" % "; ".join(ln for ln in con.boot if ln.startswith(
            ("kernel", "disk", "cpus"))))
        res = {p: self.phase(con, name, tids, p, vcpu)
               for p, vcpu, _ in PHASES}
        # Where queue 0's polling thread ran, before and after the move.
        before, after = (res[p][0].get(1, {})
                         for p in ("vcpu0", "vcpu0-moved"))
        c.info("iothread1 last-CPU samples while it ran: before the move %s,"
               " after %s" % (before, after))
        c.check("iothread1 ran only on CPU 0 before the move (its pin)",
                before and set(before) == {0},
                "samples per CPU %s" % before)
        c.check("after virsh iothreadpin 1 1 --live, iothread1 polls queue "
                "0 from CPU 1 only", after and set(after) == {1},
                "samples per CPU %s" % after)
        # The guest powers off right after the last phase: the stats of
        # its "after" snapshot.
        q0 = [q for q in res["vcpu0-moved"][1] if q.get("queue") == 0]
        c.check("after the move queue 0 is still polled by iothread1's "
                "thread", q0 and q0[0].get("thread-id") == tids[1],
                "queue 0 thread-id %s, iothread1 tid %s" %
                (q0[0].get("thread-id") if q0 else None, tids[1]))
        con.expect("ALL-DONE")
        self.check_gone("guest power-off", name, pid,
                        list(tids.values()) + self.vcpu_tids, 60, 30)

    def check_gone(self, what, name, pid, tids, pid_s, state_s, rc=None):
        """After @what (rc: virsh's exit status, if virsh did it) the
        domain is shut off (within @state_s s), its QEMU @pid gone (within
        @pid_s s), with every thread @tids."""
        gone = wait_gone(pid, pid_s)
        state = machine.until(lambda: self.lv.domstate(name),
                              lambda s: s == "shut off", state_s, 0.5)
        left = [t for t in tids if os.path.exists("/proc/%d" % t)]
        self.c.check("%s: domain shut off, no QEMU process or thread left" %
                     what, rc in (None, 0) and gone and not left and
                     state == "shut off" and not qemu_procs(name),
                     "%sstate %s, pid %d %s, threads left %s" % (
                         "" if rc is None else "rc %d, " % rc, state, pid,
                         "gone" if gone else "ALIVE", left or "none"))

    def move_iothread(self, name, tids):
        p = self.lv.virsh("iothreadpin", name, "1", "1", "--live")
        after, info = cpus_allowed(tids[1]), self.lv.iothreadinfo(name)
        self.c.info("after iothreadpin: iothread1 Cpus_allowed_list %s, "
                    "iothread2 %s; iothreadinfo %s" %
                    (after, cpus_allowed(tids[2]), info))
        self.c.check("virsh iothreadpin %s 1 1 --live: iothread1 "
                     "Cpus_allowed_list is 1, iothreadinfo shows it" % name,
                     p.returncode == 0 and after == "1" and
                     info.get(1) == "1" and info.get(2) == IOTHREAD_PIN[2],
                     "rc %d %s; Cpus_allowed_list %s; iothreadinfo %s" %
                     (p.returncode, p.stderr.strip(), after, info))

    def second_boot(self, name):
        """Starts the domain again and destroys it at its first stop."""
        lv = self.lv
        pid = self.start(name, "the domain starts again after the guest's "
                         "power-off", 300)
        if not pid:
            return
        tids = [t["thread-id"] for t in lv.qmp(name, "query-iothreads") +
                lv.qmp(name, "query-cpus-fast")]
        con = self.console(name, "serial2.log")
        try:
            lv.ok("resume", name)
            con.expect("READY", PHASES[0][0], self.args.boot_timeout + 120)
            p = lv.virsh("destroy", name, timeout=60)
        finally:
            con.finish(2)
        self.check_gone("virsh destroy", name, pid, tids, 30, 0,
                        p.returncode)

    def cleanup(self):
        lv = self.lv
        if lv and lv.uri:
            for name in sorted(self.domains):
                if lv.domstate(name) not in (None, "shut off"):
                    lv.virsh("destroy", name, timeout=60)
                lv.virsh("undefine", name, timeout=30)
        for name in self.names:
            self.qemu_pids.update(qemu_procs(name))
        for pid in filter(pid_alive, self.qemu_pids):
            log("killing QEMU pid %d" % pid)
            wait_gone(pid, 10, signal.SIGKILL)
        if lv:
            pids = dict(lv.pids)
            lv.stop()
            alive = [p for p in pids.values() if pid_alive(p)]
            ns_left = lv.ns_pids()
            qemu_left = [p for p in self.qemu_pids if pid_alive(p)]
            # libvirt makes machine/<domain> cgroups (cgroup v1 here, no
            # machined): it removes the domain's, not "machine" itself.
            cg_left = remove_new_cgroups(self.cgroups_before)
            self.c.check("libvirtd and virtlogd stopped by pid; nothing left"
                         " running", not alive and not ns_left and
                         not qemu_left and not cg_left,
                         "daemons %s, still alive %s, left in their "
                         "namespace %s, QEMU %s, cgroups left %s" %
                         (pids, alive or "none", ns_left or "none",
                          qemu_left or "none", cg_left or "none"))
        if self.work and (self.args.keep or self.c.failed):
            log("kept %s (serial.log, log/qemu/*.log, log/libvirtd.log)" %
                self.work)
            for f in () if self.args.keep else ("disk.raw", "vmlinuz",
                                                "initrd"):
                with suppress(OSError):
                    os.unlink(os.path.join(self.work, f))
        elif self.work:
            shutil.rmtree(self.work, ignore_errors=True)


def bad_xml(ctx):
    ctx.run.bad_xml(ctx.case.label, ctx.case.mapping, ctx.case.refused)


def run_domain(ctx):
    try:
        ctx.run.run_domain()
    except GuestError as e:
        # a timeout, the console's end or the guest's failure report
        more = e.report[-60:] if e.report is not None else \
            ["console:"] + ctx.run.con.tail(15)
        raise Abort("%s\n  %s" % (e, "\n  ".join(more))) from None


# Bad XML first: they must leave nothing behind.
CASES = [
    Case("bad-unknown-iothread", bad_xml, label="unknown-iothread",
         mapping={1: [0], 3: [1]}, refused=r"iothread.*3|3.*iothread"),
    Case("bad-queue-out-of-range", bad_xml, label="queue-out-of-range",
         mapping={1: [0], 2: [1, 2]}, refused=r"queue|vq"),
    Case("domain", run_domain),
]


def add_arguments(ap):
    a = ap.add_argument
    a("--qemu", default=paths.QEMU,
      help="the emulator (default: this project's build)")
    a("--workdir", default="/var/tmp", help="where the work directory is "
      "made (default /var/tmp; must take O_DIRECT)")
    a("--keep", action="store_true",
      help="keep the work directory (logs, XML, images)")
    a("--no-install", action="store_true",
      help="fail instead of installing libvirt")
    a("--suite", default=BPO, help="install libvirt from this suite "
      "(default %s; 'bookworm' gives 9.0, which lacks the queue mapping)"
      % BPO)
    a("--allow-block-layer", action="store_true",
      help="report requests that miss the io_uring fast path as KNOWN "
      "instead of FAIL (libvirt >= 10 attaches a raw disk without a "
      "format node, see docs/libvirt.md)")
    a("--io-size", type=int, default=16 << 20,
      help="bytes each fio phase writes (default 16 MiB)")
    a("--job-timeout", type=int, default=180)
    a("--boot-timeout", type=int, default=120)
    a("--timeout", type=int, default=1500,
      help="the whole test (default 1500 s)")
    a("-v", "--verbose", action="store_true", help="libvirtd debug log in "
      "the work directory (qemu_process, qemu_monitor: QMP traffic too)")


def setup(ctx):
    """libvirt's daemons on a fresh work directory."""
    args, c = ctx.args, ctx.checks
    run = ctx.run = Run(args, c)

    def on_signal(signum, frame):
        signal.alarm(0)
        for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)   # let the cleanup finish
        # Abort, not TimeoutError: no `except OSError` on the way takes it.
        raise Abort("global timeout (%d s)" % args.timeout
                    if signum == signal.SIGALRM else
                    "stopped by %s" % signal.Signals(signum).name)
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    signal.alarm(args.timeout)
    run.prepare()
    run.lv = Libvirt(run.work, args.verbose)
    run.lv.start()
    c.info("virsh version: %s" % " | ".join(
        ln.strip() for ln in run.lv.virsh("version").stdout
        .splitlines() if ln.strip()))
    c.info("libvirtd pid %d, virtlogd pid %s (private mount "
           "namespace, config in %s/etc)" % (
               run.lv.pids["libvirtd"], run.lv.pids.get("virtlogd"),
               run.work))


def teardown(ctx):
    signal.alarm(0)
    ctx.run.cleanup()
    if ctx.checks.known:
        print("(%d known failure(s) not counted: --allow-block-layer)" %
              ctx.checks.known, flush=True)


if __name__ == "__main__":
    sys.exit(suite.main(__doc__, CASES, add_arguments, setup, teardown))
