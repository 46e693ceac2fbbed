#!/usr/bin/python3
"""Live migration under I/O: virtio-blk-poll moves between QEMU processes.

A Linux guest (TCG) with one virtio-blk-poll-pci disk (raw image on
/dev/shm, cache.direct=on, aio=io_uring, 2 queues on 2 IOThreads through
iothread-vq-mapping) runs fio with verify=crc32c (do_verify=1,
verify_fatal=1, verify_backlog) while the host live-migrates it between
QEMU processes on this host, back and forth between two sides:

  P0 (side A) -> P1 (B) -> P2 (A) -> ...   --migrations N (default 4)

Every destination starts with -incoming defer and opens the shared image
inactive until the migration completes.  Two transports: a unix socket
(migrate / migrate-incoming uri=unix:PATH) and a file (the source writes
its state to file:PATH on /dev/shm and stops, then the destination loads
it), in the order unix, file, file, unix, ... so that every 4 migrations
use each transport in each direction once.  Each process has its own
serial console on a unix socket; one reader follows the guest from
process to process.  Nobody answers the guest's markers (no vbp.sync):
the guest runs fio rounds (2 jobs, one per vCPU and so one per queue,
iodepth 16 each, a new seed and region every round) until the host sends
"stop" on the console after the last migration, then prints its block
counters and dmesg and waits for the host's last snapshot.

Each migration: the source's stats are sampled until a queue is in its
polling phase (at most --poll-wait s) and migrate is sent at once;
query-migrate is watched on both sides until completed; the source's last
stats and virtqueue indexes are taken and it quits.  Destinations start
with -S, as libvirt starts them: once loaded, their virtqueue indexes are
read and they get cont (--autostart: they start by themselves).  The
destination must then be running, its requests grow and a queue poll.

Checks (a PASS/FAIL line each):
  - every migration completed, the destination ran, the source quit
  - I/O in flight across every migration (source took requests after
    migrate was sent, the destination took more right after)
  - (nearly) every migration started with a queue polling
  - every destination resumed serving and polling within --settle s, on
    the io_uring fast path, and took requests
  - the image was inactive on the destination until the migration
    completed, then active there and inactive on the source
  - fio: 0 verify errors, every round's exact I/O count (each job writes
    and reads back round-size/4k blocks)
  - guest dmesg without "not a head", "BUG", "Oops", "WARNING",
    "I/O error", "timed out"
  - no request lost or completed twice: at the end the rings are idle and
    the used indexes add up to the requests the guest's block layer
    completed; each destination loaded exactly the virtqueue indexes its
    source ended with; per process, everything taken from the avail ring
    was completed there, and the device's own counters ("requests",
    "completions") never exceed the indexes' progress (more: a request
    taken or completed twice; fewer: served by virtio-blk's own code
    outside the poller, printed as notes)

Prints a line per migration, the checks, a summary table and
"N passed, N failed" last; exits 1 if a check failed.  The default run
takes about half a minute on this 2-core host (bounded by --timeout, 240 s).
Usage: scripts/migrate.py [--migrations N] [--out DIR] [--autostart]
Results: DIR/migrate.json (default build/migrate) with every figure, the
console log (serial.log) and each QEMU's stderr next to it.
"""

import argparse
import ctypes
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST_DIR = os.path.join(TOP, "scripts", "guest")
sys.dont_write_bytecode = True            # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(TOP, "scripts"))
sys.path.insert(0, GUEST_DIR)
import mkcpio  # noqa: E402  (scripts/guest/mkcpio.py)
from qmp import QMP, connect_unix, end_process  # noqa: E402


def _load_run_guest():
    spec = importlib.util.spec_from_file_location(
        "run_guest", os.path.join(GUEST_DIR, "run-guest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rg = _load_run_guest()

DEV_PATH = "/machine/peripheral/disk0"
BAD_DMESG = ("not a head", "BUG", "Oops", "WARNING", "I/O error",
             "timed out")
TRANSPORTS = ("unix", "file", "file", "unix")
MARK = re.compile(r"===VBP-([A-Z-]+)(?: (.*?))?===\s*$")

# One round: two fio jobs, one per vCPU (so both queues are busy), each
# writing its own region in random order with crc32c verify headers and
# reading the blocks back (verify_backlog: during the round, and the rest
# at the end).  The seed and region change every round, so a write lost
# during a migration cannot be hidden by the same data from a round
# before.
ROUND_JOB = """
[global]
ioengine=io_uring
rw=randwrite
bs={bs}
iodepth={iodepth}
size={size}
offset=${{VBP_OFFSET}}
offset_increment={size}
numjobs=2
cpus_allowed=0-1
cpus_allowed_policy=split
randseed=${{VBP_SEED}}
verify=crc32c
do_verify=1
verify_fatal=1
verify_backlog={backlog}

[round]
"""

# /job/run.sh, sourced by the guest's /init (see scripts/guest/init).
RUN_SH = """# generated by migrate.py
for q in /sys/block/vd*/queue/scheduler; do echo none > $q; done
# The host says "stop" on the console after the last migration.
( read -r _l </dev/ttyS0; : >/tmp/vbp/stop ) &
n=0
while [ ! -e /tmp/vbp/stop ] && [ $n -lt {max_rounds} ]; do
    n=$((n + 1))
    export VBP_SEED=$((n * 7919 + {seed}))
    export VBP_OFFSET=$(( ((n - 1) % {slots}) * {slot_bytes} ))
    vbp_fio round$n /job/round.fio {round_timeout} || break
done
echo "rounds $n"
vbp_cmd final 60 -- sh -c 'echo "vda $(cat /sys/block/vda/stat)"; \
echo "inflight $(cat /sys/block/vda/inflight)"; \
echo "===DMESG==="; dmesg'
# Let the host take its last snapshot before the guest powers off.
echo "===VBP-PARK==="
read -r -t 120 _l </dev/ttyS0
"""


class Failure(Exception):
    pass


def _die_with_parent():
    """In the child before exec: SIGKILL when this script dies, so that no
    QEMU outlives it even if it is killed outright."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------ console
class Stream:
    """The serial console socket of one QEMU process."""

    def __init__(self, path, name, timeout=30):
        self.name = name
        self.chunks = queue.Queue()
        self.sock = connect_unix(path, timeout)
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            self.chunks.put(data)
        self.chunks.put(None)

    def send(self, text):
        self.sock.sendall(text.encode())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Console:
    """Follows the guest from process to process: the byte streams of the
    processes' consoles, one after the other (a process's stream ends when
    it quits, and the guest only runs on the next one after that), split
    into lines and parsed for the guest's markers."""

    def __init__(self, log_path):
        self.cv = threading.Condition()
        self.streams = []
        self.pos = 0
        self.closed = False
        self.log = open(log_path, "w")
        self.lock = threading.Lock()
        self.tail = []
        self.boot = []
        self.in_boot = False
        self.block = None            # (name, lines) of a BEGIN..END block
        self.results = {}            # job name -> sections
        self.order = []
        self.ready = {}              # job name -> time of READY
        self.done = {}               # job name -> time of DONE
        self.rounds_line = None
        self.failed = None           # the guest's FAILED reason + report
        self.failed_report = None
        self.ev_boot = threading.Event()
        self.ev_park = threading.Event()
        self.ev_all_done = threading.Event()
        self.ev_failed = threading.Event()
        self.ev_eof = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, stream):
        with self.cv:
            self.streams.append(stream)
            self.cv.notify_all()

    def drop(self, stream):
        """Forgets a stream the guest never ran on (failed migration)."""
        with self.cv:
            i = self.streams.index(stream) if stream in self.streams else -1
            if i > self.pos:
                del self.streams[i]
                stream.close()

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _read(self):
        while True:
            with self.cv:
                while self.pos >= len(self.streams) and not self.closed:
                    self.cv.wait()
                if self.pos >= len(self.streams):
                    return b""
                st = self.streams[self.pos]
            chunk = st.chunks.get()
            if chunk is None:
                with self.cv:
                    self.pos += 1
                continue
            return chunk

    def _run(self):
        rg.read_console_lines(self._read, self.log, self._line)
        self.ev_eof.set()

    def _line(self, line):
        t = time.monotonic()
        with self.lock:
            self.tail = (self.tail + [line])[-80:]
            m = MARK.search(line)
            kind, name = (m.group(1), m.group(2)) if m else (None, None)
            if self.failed is not None and self.failed_report is not None \
                    and kind != "FAILED-END":
                self.failed_report.append(line)
                return
            if kind == "FAILED":
                self.failed = name or "?"
                self.failed_report = []
            elif kind == "FAILED-END":
                self.ev_failed.set()
            elif kind == "BOOT":
                self.in_boot = True
            elif kind == "BOOT-END":
                self.in_boot = False
                self.ev_boot.set()
            elif kind == "READY":
                self.ready[name] = t
            elif kind == "DONE":
                self.done[name] = t
            elif kind == "BEGIN":
                self.block = (name, [])
            elif kind == "END" and self.block:
                self.results[self.block[0]] = rg.parse_block(self.block[1])
                self.order.append(self.block[0])
                self.block = None
            elif kind == "PARK":
                self.ev_park.set()
            elif kind == "ALL-DONE":
                self.ev_all_done.set()
            elif self.block is not None:
                self.block[1].append(line)
            elif self.in_boot:
                self.boot.append(line)
            elif line.startswith("rounds "):
                self.rounds_line = line

    def rounds_started(self):
        with self.lock:
            return sorted((n for n in self.ready if n.startswith("round")),
                          key=lambda n: int(n[5:]))

    def wait(self, ev, timeout, what):
        deadline = time.monotonic() + timeout
        while not ev.wait(0.2):
            if self.failed is not None and (self.ev_failed.is_set() or
                                            ev is not self.ev_failed):
                # give the report a moment to arrive
                self.ev_failed.wait(5)
                raise Failure("guest failed: %s" % self.failed)
            if self.ev_eof.is_set():
                raise Failure("console ended waiting for %s" % what)
            if time.monotonic() > deadline:
                raise Failure("timeout (%ds) waiting for %s" % (timeout, what))


# -------------------------------------------------------------- QEMU
class Qemu:
    """One QEMU process on side A or B."""

    def __init__(self, index, side, argv, sockdir, outdir):
        self.index = index
        self.side = side
        self.name = "P%d" % index
        self.qmp_path = os.path.join(sockdir, "qmp-%s.sock" % side)
        self.serial_path = os.path.join(sockdir, "serial-%s.sock" % side)
        for p in (self.qmp_path, self.serial_path):
            if os.path.exists(p):
                os.unlink(p)
        self.stderr_path = os.path.join(outdir, "qemu-%s-%s.stderr" %
                                        (self.name, side))
        self.stderr = open(self.stderr_path, "w")
        self.argv = argv + [
            "-chardev", "socket,id=ser0,path=%s,server=on,wait=off" %
            self.serial_path, "-serial", "chardev:ser0",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     preexec_fn=_die_with_parent)
        self.qmp = None
        self.stream = None
        self.exit = None

    def connect(self):
        try:
            self.qmp = QMP(self.qmp_path, timeout=30)
        except OSError as e:
            raise Failure("%s: no QMP (%s); QEMU %s" % (
                self.name, e, self.stderr_text() or "exited %s" %
                self.proc.poll())) from None
        self.stream = Stream(self.serial_path, self.name)

    def stderr_text(self):
        try:
            with open(self.stderr_path) as f:
                return f.read().strip()[-2000:]
        except OSError:
            return ""

    def stats(self):
        return self.qmp.cmd("qom-get", {"path": DEV_PATH,
                                        "property": "stats"})

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def block_active(self):
        """{node-name: active} of every block node."""
        return {n.get("node-name"): n.get("active") for n in
                self.qmp.cmd("query-named-block-nodes", {"flat": True})}

    def queue_status(self, nq):
        return [self.qmp.try_cmd("x-query-virtio-queue-status", {
            "path": DEV_PATH + "/virtio-backend", "queue": i})
            for i in range(nq)]

    def quit(self, timeout=20):
        """quit over QMP, then terminate/kill; returns the exit status."""
        if self.proc.poll() is None and self.qmp is not None:
            self.qmp.try_cmd("quit")
        end_process(self.proc, timeout)
        if self.qmp is not None:
            self.qmp.close()
        self.exit = self.proc.returncode
        self.stderr.close()
        return self.exit


def total(stats, key):
    return sum(q.get(key, 0) for q in stats) if isinstance(stats, list) \
        else 0


def polling(stats):
    return [q.get("queue") for q in stats or [] if q.get("polling")]


def wait_migration(q, deadline, what):
    """Polls query-migrate until completed/failed; returns its answer."""
    while True:
        info = q.cmd("query-migrate")
        st = info.get("status")
        if st in ("completed", "failed", "cancelled"):
            return info
        if time.monotonic() > deadline:
            raise Failure("%s: migration still %s at the deadline" %
                          (what, st))
        time.sleep(0.05)


# ------------------------------------------------------------- the run
class Run:
    def __init__(self, args):
        self.a = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.timeout
        self.doc = {"config": {k: v for k, v in vars(args).items()},
                    "migrations": [], "processes": [], "checks": []}
        self.procs = []
        self.console = None
        self.sockdir = tempfile.mkdtemp(prefix="vbp-mig-")
        self.disk_path = None
        self.mig_files = []

    # --- set-up
    def setup(self):
        a = self.a
        os.makedirs(a.out, exist_ok=True)
        for f in os.listdir(a.out):          # a previous run's files
            if re.fullmatch(r"qemu-P\d+-[AB]\.stderr|serial\.log|"
                            r"migrate\.json", f):
                os.unlink(os.path.join(a.out, f))
        cfg = rg.argparse.Namespace(build_guest=False)
        meta = rg.build_guest_if_needed(cfg)
        self.meta = meta
        dcfg = rg.argparse.Namespace(
            backend="raw", disk_dir=a.disk_dir, disk_path=None,
            disk_size=a.disk_size, aio="io_uring", direct=True,
            qemu_img=a.qemu_img, qcow2_prealloc="metadata")
        blockdev, self.disk_path = rg.make_disk(dcfg, self.sockdir)
        iothreads = ["iot0", "iot1"]
        devcfg = rg.argparse.Namespace(
            device="virtio-blk-poll-pci", device_prop=a.device_prop,
            num_queues=2, mapping_json=None, mapping="vq")
        device = rg.device_json(devcfg, iothreads)
        self.doc["device"] = device
        self.doc["blockdev"] = blockdev
        self.doc["guest"] = {"kernel": meta.get("kernel_package"),
                             "kernel_version": meta.get("kernel_version"),
                             "fio": meta.get("fio")}
        initrd = self.make_initrd(meta["initrd"])
        cmdline = ["console=ttyS0", "quiet", "panic=-1",
                   "vbp.timeout=%d" % (a.timeout + 60),
                   "vbp.job_timeout=%d" % a.round_timeout]
        argv = [a.qemu, "-name", "vm,debug-threads=on",
                "-machine", "q35", "-accel", "tcg", "-smp", "2",
                "-m", a.mem, "-nodefaults", "-display", "none",
                "-no-reboot", "-no-shutdown",
                "-kernel", meta["kernel"], "-initrd", initrd,
                "-append", " ".join(cmdline)]
        for iot in iothreads:
            argv += ["-object", json.dumps({"qom-type": "iothread",
                                            "id": iot})]
        argv += ["-blockdev", json.dumps(blockdev),
                 "-device", json.dumps(device)]
        self.base_argv = argv
        self.doc["qemu_argv"] = argv
        self.console = Console(os.path.join(a.out, "serial.log"))

    def make_initrd(self, base):
        """/job/round.fio and /job/run.sh in front of the base initramfs
        (as run-guest.py's make_initrd does)."""
        a = self.a
        bs = 4096
        self.round_size = a.round_size
        self.ios_per_job = a.round_size // bs
        slot = 2 * a.round_size
        slots = max(1, a.disk_size // slot)
        job = rg.JOB_DEFAULTS + ROUND_JOB.format(
            bs=bs, iodepth=a.iodepth, size=a.round_size,
            backlog=a.verify_backlog)
        script = RUN_SH.format(max_rounds=a.max_rounds, seed=os.getpid(),
                               slots=slots, slot_bytes=slot,
                               round_timeout=a.round_timeout)
        self.doc["round_job"] = job
        self.doc["run_sh"] = script
        path = os.path.join(self.sockdir, "initrd")
        with open(path, "wb") as out, open(base, "rb") as f:
            w = mkcpio.CpioWriter(out)
            w.add_dir("job")
            w.add_file("job/round.fio", job.encode())
            w.add_file("job/run.sh", script.encode(), 0o755)
            w.add_file("job/ndisks", b"1\n")
            w.close()
            shutil.copyfileobj(f, out)
        return path

    def start(self, side, incoming):
        extra = ["-incoming", "defer"] if incoming else ["-S"]
        if incoming and not self.a.autostart:
            extra.append("-S")
        p = Qemu(len(self.procs), side, self.base_argv + extra,
                 self.sockdir, self.a.out)
        self.procs.append(p)
        p.connect()
        self.console.add(p.stream)
        return p

    def left(self):
        return self.deadline - time.monotonic()

    # --- one migration
    def migrate(self, k, src):
        a = self.a
        side = "B" if src.side == "A" else "A"
        # unix, file, file, unix, ...: every 4 migrations take each
        # transport in each direction (A->B, B->A) once.
        transport = TRANSPORTS[(k - 1) % 4] if a.transport == "both" \
            else a.transport
        m = {"k": k, "from": src.side, "to": side, "transport": transport,
             "src": src.name, "ok": False}
        self.doc["migrations"].append(m)
        dst = self.start(side, incoming=True)
        m["dst"] = dst.name
        if transport == "unix":
            uri = "unix:" + os.path.join(self.sockdir, "mig-%s.sock" % side)
        else:
            fpath = os.path.join(a.disk_dir, "vbp-mig-%d-%d.state" %
                                 (os.getpid(), k))
            self.mig_files.append(fpath)
            uri = "file:" + fpath
        m["uri"] = uri
        try:
            # Incoming: the shared image is opened inactive until the
            # migration completes.
            m["dest_active_before"] = dst.block_active()
            m["dest_path_before"] = sorted({q.get("path")
                                            for q in dst.stats()})
            if transport == "unix":
                dst.qmp.cmd("migrate-incoming", {"uri": uri})
            src.qmp.cmd("migrate-set-parameters", {
                "max-bandwidth": a.max_bandwidth,
                "downtime-limit": a.downtime_limit})
            # Right before migrate: the source's stats, sampled until a
            # queue is in its polling phase (or --poll-wait runs out).
            t_end = time.monotonic() + a.poll_wait
            samples = 0
            while True:
                pre = src.stats()
                samples += 1
                if polling(pre) or time.monotonic() > t_end:
                    break
                time.sleep(0.01)
            t_mig = time.monotonic()
            src.qmp.cmd("migrate", {"uri": uri})
            m["pre_stats"] = pre
            m["pre_samples"] = samples
            m["polling_at_start"] = polling(pre)
            m["src_requests_before"] = total(pre, "requests")
            info = wait_migration(src.qmp, time.monotonic() + min(
                a.migration_timeout, max(self.left(), 10)),
                "%s->%s" % (src.name, dst.name))
            t_src_done = time.monotonic()
            m["source_info"] = info
            m["status"] = info.get("status")
            if info.get("status") != "completed":
                m["error"] = "source: migration %s: %s" % (
                    info.get("status"), info.get("error-desc", ""))
                raise Failure(m["error"])
            m["downtime_ms"] = info.get("downtime")
            m["total_ms"] = info.get("total-time")
            m["setup_ms"] = info.get("setup-time")
            m["ram_transferred"] = (info.get("ram") or {}).get("transferred")
            m["src_status_after"] = src.status()
            m["src_active_after"] = src.block_active()
            m["src_queue_status_after"] = src.queue_status(2)
            if transport == "file":
                m["file_bytes"] = os.path.getsize(fpath)
                dst.qmp.cmd("migrate-incoming", {"uri": uri})
            dinfo = wait_migration(dst.qmp, time.monotonic() + min(
                a.migration_timeout, max(self.left(), 10)),
                "%s incoming" % dst.name)
            m["dest_info"] = dinfo
            if dinfo.get("status") != "completed":
                m["error"] = "destination: migration %s: %s" % (
                    dinfo.get("status"), dinfo.get("error-desc", ""))
                raise Failure(m["error"])
            if not a.autostart:
                # What the destination loaded, before it runs
                m["dest_queue_status_loaded"] = dst.queue_status(2)
            # The destination must run; cont if it did not start itself.
            st = dst.status()
            deadline = time.monotonic() + 30
            while st in ("inmigrate", "postmigrate", "prelaunch") and \
                    time.monotonic() < deadline and st != "running":
                if st != "inmigrate":
                    break
                time.sleep(0.05)
                st = dst.status()
            m["dest_status"] = st
            if st != "running":
                dst.qmp.cmd("cont")
                m["cont"] = True
                st = dst.status()
            m["dest_running"] = st == "running"
            t_run = time.monotonic()
            m["switch_ms"] = round((t_run - t_src_done) * 1000)
            m["host_ms"] = round((t_run - t_mig) * 1000)
            if not m["dest_running"]:
                m["error"] = "destination status %s" % st
                raise Failure(m["error"])
            m["dest_active_after"] = dst.block_active()
            # The source is done: its last stats, then it quits.
            m["src_final_stats"] = src.stats()
            m["src_requests_during"] = total(m["src_final_stats"],
                                             "requests") - \
                m["src_requests_before"]
            m["src_exit"] = src.quit()
            m["ok"] = True
        except (Failure, RuntimeError, OSError, ValueError) as e:
            m.setdefault("error", str(e))
            m["dest_stderr"] = dst.stderr_text()
            m["src_stderr"] = src.stderr_text()
            # The guest stays on the source if it still runs.
            if src.proc.poll() is None:
                self.console.drop(dst.stream)
                dst.quit(timeout=2)
                try:
                    # a migration still going on is cancelled; a source
                    # stopped by a completed one is let run again
                    src.qmp.try_cmd("migrate_cancel")
                    t_end = time.monotonic() + 10
                    while src.qmp.cmd("query-migrate").get("status") in (
                            "active", "setup", "cancelling", "device",
                            "pre-switchover") and time.monotonic() < t_end:
                        time.sleep(0.05)
                    if src.status() != "running":
                        src.qmp.try_cmd("cont")
                    m["src_status_after_failure"] = src.status()
                except (RuntimeError, OSError):
                    pass
                return src, m
            raise Failure("migration %d failed and the source is gone: %s"
                          % (k, m["error"]))
        finally:
            if transport == "file" and os.path.exists(fpath):
                os.unlink(fpath)
        self.after_migration(m, dst)
        return dst, m

    def after_migration(self, m, dst):
        """The destination must serve: requests grow, a queue polls.
        Watched for --dwell s (the guest's time on this side before the
        next migration), or until all is seen, at most --settle s."""
        a = self.a
        s0 = dst.stats()
        m["dest_first_stats"] = s0
        t0 = time.monotonic()
        seen_poll = None
        grew = None
        fast_grew = None
        s = s0
        while time.monotonic() - t0 < a.settle:
            s = dst.stats()
            now = time.monotonic() - t0
            if polling(s) and seen_poll is None:
                seen_poll = round(now * 1000)
            if total(s, "requests") > total(s0, "requests") and grew is None:
                grew = round(now * 1000)
            if total(s, "fast-rw") > total(s0, "fast-rw") and \
                    fast_grew is None:
                fast_grew = round(now * 1000)
            if seen_poll is not None and grew is not None and \
                    fast_grew is not None and now >= a.dwell:
                break
            # short: under a loaded host the guest submits slowly and the
            # queues poll in short bursts (poll-idle-ns after each request)
            time.sleep(0.02)
        m["dest_stats"] = s
        m["dest_polling_after_ms"] = seen_poll
        m["dest_requests_grew_after_ms"] = grew
        m["dest_fast_rw_grew_after_ms"] = fast_grew
        m["dest_requests"] = total(s, "requests")
        m["dest_observed_ms"] = round((time.monotonic() - t0) * 1000)
        m["dest_path"] = sorted({q.get("path") for q in s})
        # polling phases entered, and their time, while watched
        m["dest_wakeups"] = total(s, "wakeups") - total(s0, "wakeups")
        m["dest_poll_ms"] = round((total(s, "poll-ns") -
                                   total(s0, "poll-ns")) / 1e6)

    # --- the whole run
    def go(self):
        a = self.a
        c = self.console
        p = self.start("A", incoming=False)
        p.qmp.cmd("cont")
        t_cont = time.monotonic()
        c.wait(c.ev_boot, min(a.boot_timeout, self.left()), "the guest boot")
        self.doc["boot_s"] = round(time.monotonic() - t_cont, 3)
        self.doc["p0_baseline"] = self.baseline(p)
        # fio running: the first round has begun
        deadline = time.monotonic() + 60
        while not c.rounds_started():
            if time.monotonic() > deadline:
                raise Failure("no fio round started")
            if c.failed is not None:
                c.ev_failed.wait(5)
                raise Failure("guest failed: %s" % c.failed)
            if c.ev_eof.is_set():
                raise Failure("console ended before fio started")
            time.sleep(0.1)
        time.sleep(a.dwell)
        for k in range(1, a.migrations + 1):
            if self.left() < 20:
                self.doc["error"] = "out of time after %d migrations" % (k - 1)
                break
            p, m = self.migrate(k, p)
            print(self.migration_line(m), flush=True)
            if not m["ok"]:
                self.doc["error"] = "migration %d failed: %s" % (
                    k, m.get("error"))
                break
            if c.failed is not None:
                break
        self.current = p
        # Stop the fio loop; the guest finishes its round and parks.
        self.doc["stop_sent_s"] = round(time.monotonic() - self.t0, 3)
        p.stream.send("stop\n")
        c.wait(c.ev_park, min(a.round_timeout + 60, max(self.left(), 30)),
               "the guest to finish (PARK)")
        self.doc["final_stats"] = p.stats()
        self.doc["final_queue_status"] = p.queue_status(2)
        self.doc["final_status"] = p.status()
        p.stream.send("bye\n")
        try:
            c.wait(c.ev_all_done, 30, "ALL-DONE")
        except Failure as e:
            self.doc["warning"] = str(e)
        # -no-shutdown: QEMU stays after the guest powers off.
        time.sleep(0.5)
        self.doc["final_exit"] = p.quit()

    def baseline(self, p):
        """P0's counters and virtqueue indexes once the guest has booted,
        before fio starts: the firmware's requests (SeaBIOS reads the disk
        on rings the Linux driver then resets) count in the device's
        stats but not in the indexes.  Taken only when idle: the same
        counters before and after the indexes, nothing in flight."""
        for _ in range(5):
            s1 = p.stats()
            qs = p.queue_status(2)
            s2 = p.stats()
            key = lambda st: [(q["requests"], q["completions"]) for q in st]
            if key(s1) == key(s2) and all(
                    q["requests"] == q["completions"] for q in s1) and all(
                    isinstance(q, dict) and
                    q.get("last-avail-idx") == q.get("used-idx")
                    for q in qs):
                return {"stats": s1, "queue_status": qs,
                        "firmware_requests": {
                            q["queue"]: q["requests"] -
                            qs[q["queue"]]["last-avail-idx"] for q in s1}}
            time.sleep(0.02)
        return None

    def migration_line(self, m):
        if not m.get("ok"):
            return "migration %d: %s->%s %s FAILED: %s" % (
                m["k"], m["from"], m["to"], m["transport"], m.get("error"))
        return ("migration %d: %s->%s %s, downtime/total %s/%s ms "
                "(guest paused ~%s ms), polling at start: %s (queues %s), "
                "dest requests: %d (first %d ms)" % (
                    m["k"], m["from"], m["to"], m["transport"],
                    m.get("downtime_ms"), m.get("total_ms"),
                    (m.get("downtime_ms") or 0) + m.get("switch_ms", 0),
                    "yes" if m["polling_at_start"] else "no",
                    ",".join(map(str, m["polling_at_start"])) or "-",
                    m.get("dest_requests", 0), m.get("dest_observed_ms", 0)))

    def cleanup(self):
        for p in self.procs:
            if p.proc.poll() is None:
                p.quit(timeout=3)
            self.doc["processes"].append({
                "name": p.name, "side": p.side, "pid": p.proc.pid,
                "exit": p.proc.returncode, "stderr": p.stderr_text()})
        if self.console:
            self.console.close()
            self.console.thread.join(5)
            self.console.log.close()
        for f in self.mig_files + [self.disk_path]:
            if f and os.path.exists(f):
                os.unlink(f)
        shutil.rmtree(self.sockdir, ignore_errors=True)


# ------------------------------------------------------------- checks
class Checker:
    def __init__(self, doc):
        self.passed = 0
        self.failed = 0
        self.doc = doc

    def check(self, name, ok, reason=""):
        self.doc["checks"].append({"name": name, "ok": bool(ok),
                                   "detail": reason})
        if ok:
            print("PASS %s" % name, flush=True)
            self.passed += 1
        else:
            print("FAIL %s: %s" % (name, reason or "failed"), flush=True)
            self.failed += 1
        return ok


def evaluate(run, c):
    a = run.a
    doc = run.doc
    con = run.console
    migs = doc["migrations"]
    ok_migs = [m for m in migs if m.get("ok")]
    n = a.migrations

    if not c.check("guest booted and fio started",
                   doc.get("boot_s") is not None, doc.get("error", "")):
        return []
    bad = ["%d: %s" % (m["k"], m.get("error")) for m in migs
           if not m.get("ok")]
    c.check("all %d migrations completed, destination running" % n,
            len(ok_migs) == n and not bad,
            "; ".join(bad) or "%d of %d done" % (len(ok_migs), n))
    bad = ["%d: exit %s" % (m["k"], m.get("src_exit")) for m in ok_migs
           if m.get("src_exit") != 0]
    c.check("every source quit cleanly after the migration", not bad and
            ok_migs, "; ".join(bad) or "no migration")
    # I/O was in flight: the source took requests after migrate was sent,
    # the destination kept taking them.
    bad = ["%d: source +%s, destination +%s" % (
        m["k"], m.get("src_requests_during"),
        m.get("dest_requests_grew_after_ms"))
        for m in ok_migs if not m.get("src_requests_during") or
        m.get("dest_requests_grew_after_ms") is None]
    c.check("I/O in flight across every migration", not bad and ok_migs,
            "; ".join(bad) or "no migration")
    caught = [m for m in ok_migs if m.get("polling_at_start")]
    need = n - n // 4
    c.check("migrations started with queues polling (>= %d of %d)" %
            (need, n), len(caught) >= need,
            "%d of %d caught polling" % (len(caught), n))
    bad = ["migration %d: polling seen after %s ms, requests grew after "
           "%s ms (%s wakeups, %s ms polling)" % (
               m["k"], m.get("dest_polling_after_ms"),
               m.get("dest_requests_grew_after_ms"), m.get("dest_wakeups"),
               m.get("dest_poll_ms"))
           for m in ok_migs if m.get("dest_polling_after_ms") is None or
           m.get("dest_requests_grew_after_ms") is None]
    c.check("destination resumed serving and polling within %gs" % a.settle,
            not bad and ok_migs, "; ".join(bad) or "no migration")
    bad = ["%d: requests %s" % (m["k"], m.get("dest_requests"))
           for m in ok_migs if not m.get("dest_requests")]
    fin = doc.get("final_stats")
    if isinstance(fin, list) and total(fin, "requests") <= 0:
        bad.append("last destination: requests %s" % total(fin, "requests"))
    c.check("requests > 0 on every destination", not bad and ok_migs,
            "; ".join(bad) or "no migration")
    bad = []
    for m in ok_migs:
        before = m.get("dest_active_before") or {}
        if not before or any(before.values()):
            bad.append("%d: destination before: %s" % (m["k"], before))
        after = m.get("dest_active_after") or {}
        if not after or not all(after.values()):
            bad.append("%d: destination after: %s" % (m["k"], after))
        src = m.get("src_active_after") or {}
        if not src or any(src.values()):
            bad.append("%d: source after: %s" % (m["k"], src))
    c.check("image inactive on the destination until the migration "
            "completed, then active there and inactive on the source",
            not bad and ok_migs, "; ".join(bad) or "no migration")
    bad = ["%d: path %s, fast-rw grew %s" % (
        m["k"], m.get("dest_path"), m.get("dest_fast_rw_grew_after_ms"))
        for m in ok_migs if m.get("dest_path") != ["io_uring"] or
        m.get("dest_fast_rw_grew_after_ms") is None]
    c.check("destination serves on the io_uring fast path", not bad and
            ok_migs, "; ".join(bad) or "no migration")

    # fio rounds
    rounds = [r for r in con.order if r.startswith("round")]
    per = []
    verify_errors = 0
    ios = 0
    bad_rounds = []
    for name in rounds:
        sec = con.results[name]
        rc = int((sec.get("rc") or ["-1"])[0].strip() or -1)
        fio, err = rg.parse_json_section(sec["fio-json"]) \
            if "fio-json" in sec else (None, "no fio output")
        summ = rg.summarize_fio(fio) if fio else {"error": err, "ios": 0,
                                                  "jobs": []}
        stderr = sec.get("stderr", [])
        verr = len([ln for ln in stderr if ln.startswith("verify:") or
                    "verify failed" in ln]) + sum(
            1 for j in (fio or {}).get("jobs", []) if j.get("error") == 84)
        verify_errors += verr
        ios += summ.get("ios", 0)
        t0, t1 = (float(x) for x in
                  (sec.get("seconds") or ["0 0"])[0].split())
        r = {"name": name, "rc": rc, "verify_errors": verr,
             "ios": summ.get("ios", 0), "guest_seconds": round(t1 - t0, 3),
             "jobs": summ.get("jobs"), "stderr": stderr[-20:]}
        if summ.get("error"):
            r["error"] = summ["error"]
        per.append(r)
        jobs = summ.get("jobs") or []
        wrong = [j.get("jobname") for j in jobs
                 if (j.get("write") or {}).get("ios") != run.ios_per_job or
                 (j.get("read") or {}).get("ios") != run.ios_per_job or
                 j.get("error")]
        if rc != 0 or verr or len(jobs) != 2 or wrong or r.get("error"):
            bad_rounds.append("%s: rc %s, verify errors %d, jobs %d, "
                              "wrong counts %s %s" % (
                                  name, rc, verr, len(jobs), wrong,
                                  r.get("error", "")))
    doc["rounds"] = per
    doc["fio_ios"] = ios
    doc["verify_errors"] = verify_errors
    started = con.rounds_started()
    missing = [r for r in started if r not in con.results]
    c.check("fio verify: 0 errors in %d rounds" % len(rounds),
            rounds and verify_errors == 0 and not missing,
            "%d verify errors; rounds without results: %s" %
            (verify_errors, missing or "none"))
    c.check("fio completed the expected I/O (%d writes + %d verify reads "
            "per job and round)" % (run.ios_per_job, run.ios_per_job),
            rounds and not bad_rounds,
            "; ".join(bad_rounds) or "no round finished")

    # guest view at the end
    final = con.results.get("final", {})
    out = final.get("stdout", [])
    blk = rg.parse_blkstat("\n".join(ln for ln in out
                                     if ln.startswith("vda ")))
    inflight = [ln for ln in out if ln.startswith("inflight ")]
    dmesg = out[out.index("===DMESG===") + 1:] if "===DMESG===" in out \
        else []
    bad = [ln for ln in dmesg if any(w in ln for w in BAD_DMESG)]
    doc["guest_dmesg_complaints"] = bad
    doc["guest_dmesg_lines"] = len(dmesg)
    c.check("guest dmesg clean (%s)" % ", ".join(BAD_DMESG),
            dmesg and not bad,
            "no dmesg captured" if not dmesg else " | ".join(bad[:5]))

    # virtqueue indexes of the last process: everything the device took
    # from the avail rings was completed, and the used indexes sum to the
    # requests the guest's block layer completed (mod 2^16 per queue).
    qs = doc.get("final_queue_status") or []
    detail = []
    okq = bool(qs) and all(isinstance(q, dict) and "used-idx" in q
                           for q in qs)
    if okq:
        for q in qs:
            if q["last-avail-idx"] != q["used-idx"] or \
                    q["shadow-avail-idx"] != q["last-avail-idx"]:
                okq = False
                detail.append("queue %s: avail %s last-avail %s used %s" % (
                    q.get("queue-index"), q["shadow-avail-idx"],
                    q["last-avail-idx"], q["used-idx"]))
        used = sum(q["used-idx"] for q in qs)
        guest_done = blk.get("vda")
        doc["guest_completed_requests"] = guest_done
        doc["used_idx_sum"] = used
        if guest_done is None or (guest_done - used) % 65536 != 0:
            okq = False
            detail.append("guest completed %s requests, used indexes sum "
                          "to %d (mod 65536 each)" % (guest_done, used))
        if inflight and inflight[0].split()[1:] != ["0", "0"]:
            okq = False
            detail.append("guest %s" % inflight[0])
    else:
        detail.append("no queue status: %s" % qs)
    c.check("no request lost or completed twice (virtqueue indexes agree "
            "with the guest's completed requests)", okq, "; ".join(detail))

    # Handover: each process's own counters against the virtqueue
    # indexes it started from and ended with.  Process j took requests
    # from last-avail-idx start_j to end_j and completed them from used
    # index start_j to end_j.  start_j is what the destination loaded
    # (seen while it is paused, unless --autostart), which must be
    # end_{j-1}, the source's last indexes: a source that takes or
    # completes a request after its state was saved makes the
    # destination do it again.
    procs = []
    if len(ok_migs) == len(migs):
        for j, m in enumerate(ok_migs):
            loaded = ok_migs[j - 1].get("dest_queue_status_loaded") \
                if j else None
            procs.append((m["src"], m.get("src_final_stats"),
                          m.get("src_queue_status_after"), loaded))
        procs.append(("P%d" % len(ok_migs), fin, qs,
                      ok_migs[-1].get("dest_queue_status_loaded")
                      if ok_migs else None))
    detail = []
    notes = []
    per_proc = []
    okh = bool(procs)
    prev = None
    base = doc.get("p0_baseline")
    if procs and not base:
        detail.append("(no idle moment after boot: P0 counted from its "
                      "start, firmware I/O included)")
    for j, (name, st, qst, loaded) in enumerate(procs):
        if isinstance(loaded, list) and all(
                isinstance(q, dict) and "used-idx" in q for q in loaded):
            prev = {q["queue-index"]: q for q in loaded}
        if not isinstance(st, list) or not isinstance(qst, list) or \
                not all(isinstance(q, dict) and "used-idx" in q
                        for q in qst):
            okh = False
            detail.append("%s: no figures" % name)
            prev = None
            continue
        row = {"process": name, "queues": []}
        for q in qst:
            i = q["queue-index"]
            sq = next((x for x in st if x.get("queue") == i), {})
            a0, u0 = (prev[i]["last-avail-idx"], prev[i]["used-idx"]) \
                if prev else (0, 0)
            r0 = c0 = 0
            if j == 0 and base:
                # from the idle moment after boot (firmware I/O excluded)
                bq = base["queue_status"][i]
                a0, u0 = bq["last-avail-idx"], bq["used-idx"]
                bs = next(x for x in base["stats"] if x["queue"] == i)
                r0, c0 = bs["requests"], bs["completions"]
            if j == 0 or prev is not None:
                d_avail = (q["last-avail-idx"] - a0) % 65536
                d_used = (q["used-idx"] - u0) % 65536
                req = sq.get("requests", 0) - r0
                cpl = sq.get("completions", 0) - c0
                extra_req = wrap(req - d_avail)
                extra_cpl = wrap(cpl - d_used)
                row["queues"].append({
                    "queue": i, "requests": req, "completions": cpl,
                    "avail": [a0, q["last-avail-idx"]],
                    "used": [u0, q["used-idx"]],
                    "extra_requests": extra_req,
                    "completed_outside_poller": -extra_cpl})
                where = " (up to migration 1)" if j == 0 else \
                    " (after migration %d)" % j if j == len(procs) - 1 \
                    else " (between migrations %d and %d)" % (j, j + 1)
                # Requests the device took: the avail ring's progress in
                # this process.  More than that: a request taken twice (the
                # source took it after its state was saved, or the
                # destination again).  Fewer: taken by virtio-blk's own
                # code, outside the poller (not in "requests").
                if extra_req > 0:
                    okh = False
                    detail.append(
                        "%s queue %d: took %d requests but last-avail-idx "
                        "moved %d->%d (%+d)%s" % (
                            name, i, req, a0, q["last-avail-idx"],
                            extra_req, where))
                elif extra_req < 0:
                    notes.append("%s queue %d: %d of %d requests taken "
                                 "outside the poller (not in its "
                                 "\"requests\" counter)%s" % (
                                     name, i, -extra_req, d_avail, where))
                # Everything it took it also completed there (it ended
                # drained or idle).
                if d_used != d_avail:
                    okh = False
                    detail.append(
                        "%s queue %d: avail moved %d, used %d%s" % (
                            name, i, d_avail, d_used, where))
                # "completions" counts what the poller published; ones
                # published by virtio-blk's own path (after the poller
                # stopped, e.g. in the drain when the VM stops) are not
                # counted: it may be lower, never higher.
                if extra_cpl > 0:
                    okh = False
                    detail.append(
                        "%s queue %d: counted %d completions but used-idx "
                        "moved only %d%s" % (name, i, cpl, d_used, where))
                elif extra_cpl < 0:
                    notes.append("%s queue %d: %d of %d completions "
                                 "published outside the poller (not in "
                                 "its \"completions\" counter)%s" % (
                                     name, i, -extra_cpl, d_used, where))
        per_proc.append(row)
        prev = {q["queue-index"]: q for q in qst}
    for m in ok_migs:
        src = m.get("src_queue_status_after")
        dst = m.get("dest_queue_status_loaded")
        if not isinstance(src, list) or not isinstance(dst, list):
            continue
        for a_, b_ in zip(src, dst):
            if not isinstance(a_, dict) or not isinstance(b_, dict):
                continue
            if (a_.get("last-avail-idx"), a_.get("used-idx")) != \
                    (b_.get("last-avail-idx"), b_.get("used-idx")):
                okh = False
                detail.append(
                    "migration %d queue %s: source ended at avail %s used "
                    "%s, destination loaded avail %s used %s" % (
                        m["k"], a_.get("queue-index"),
                        a_.get("last-avail-idx"), a_.get("used-idx"),
                        b_.get("last-avail-idx"), b_.get("used-idx")))
    doc["handover"] = per_proc
    doc["handover_notes"] = notes
    for n_ in notes:
        print("note: %s" % n_)
    c.check("handover: destinations loaded their source's last virtqueue "
            "indexes, no process took or completed a request twice", okh,
            "; ".join(detail) or "incomplete figures")
    return rounds


def wrap(n):
    """A difference of 16-bit ring indexes, in -32768..32767."""
    n %= 65536
    return n - 65536 if n >= 32768 else n


def summary(run):
    doc = run.doc
    migs = [m for m in doc["migrations"] if m.get("ok")]
    dirs = ["A->B", "B->A"]
    table = {}
    print("\n%-9s %5s %5s %6s %8s %12s %12s" % (
        "transport", *dirs, "total", "polling", "downtime ms",
        "paused ms"))
    for t in ("unix", "file", "total"):
        sel = [m for m in migs if t in ("total", m["transport"])]
        row = [sum(1 for m in sel if "%s->%s" % (m["from"], m["to"]) == d)
               for d in dirs]
        pol = sum(1 for m in sel if m.get("polling_at_start"))
        dt = [m.get("downtime_ms") or 0 for m in sel]
        pa = [(m.get("downtime_ms") or 0) + m.get("switch_ms", 0)
              for m in sel]
        table[t] = dict(zip(dirs, row), polling_at_start=pol,
                        downtime_ms=dt, paused_ms=pa)
        print("%-9s %5d %5d %6d %8d %12s %12s" % (
            t, row[0], row[1], sum(row), pol,
            "%d-%d" % (min(dt), max(dt)) if dt else "-",
            "%d-%d" % (min(pa), max(pa)) if pa else "-"))
    caught = sum(1 for m in migs if m.get("polling_at_start"))
    down = [m["downtime_ms"] for m in migs if m.get("downtime_ms")
            is not None]
    paused = [(m.get("downtime_ms") or 0) + m.get("switch_ms", 0)
              for m in migs]
    s = {"migrations_done": len(migs),
         "migrations_requested": run.a.migrations,
         "by_transport_direction": table,
         "caught_polling": caught,
         "verify_errors": doc.get("verify_errors"),
         "fio_ios": doc.get("fio_ios"),
         "fio_rounds": len(doc.get("rounds", [])),
         "downtime_ms": down, "guest_paused_ms": paused,
         "total_s": doc.get("total_s")}
    doc["summary"] = s
    print("migrations done: %d of %d; caught polling at start: %d of %d" % (
        len(migs), run.a.migrations, caught, len(migs)))
    print("fio: %d rounds, %s I/Os, verify errors: %s" % (
        s["fio_rounds"], s["fio_ios"], s["verify_errors"]))
    if down:
        print("downtime ms: min %d avg %d max %d; guest paused ms (downtime "
              "+ switch-over seen by the host): min %d avg %d max %d" % (
                  min(down), sum(down) / len(down), max(down),
                  min(paused), sum(paused) / len(paused), max(paused)))
    dest = ["%d in %.1fs" % (m.get("dest_requests", 0),
                             m.get("dest_observed_ms", 0) / 1000)
            for m in migs]
    print("requests served by each destination right after the migration: "
          "%s" % ", ".join(dest))
    after = [m.get("dest_polling_after_ms") for m in migs]
    s["dest_polling_after_ms"] = after
    print("destination seen polling after (ms): %s" % after)
    samples = [m.get("pre_samples") for m in migs]
    s["pre_samples"] = samples
    print("stats samples taken before migrate until a queue polled: %s" %
          samples)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    a = ap.add_argument
    a("--migrations", type=int, default=4,
      help="migrations to do, alternating A->B and B->A (default 4)")
    a("--transport", choices=("both", "unix", "file"), default="both",
      help="both (default): unix, file, file, unix, ... (each transport "
      "in each direction every 4 migrations)")
    a("--out", default=os.path.join(TOP, "build", "migrate"),
      help="result directory (default build/migrate)")
    a("--round-size", type=rg.parse_size, default="32M",
      help="bytes each of the 2 fio jobs writes (and verifies) per round "
      "(default 32M)")
    a("--iodepth", type=int, default=16,
      help="fio iodepth per job (2 jobs; default 16)")
    a("--verify-backlog", type=int, default=512)
    a("--disk-size", type=rg.parse_size, default="256M")
    a("--disk-dir", default="/dev/shm",
      help="image and migration files go here (default /dev/shm)")
    a("--mem", default="512M", help="guest RAM (default 512M)")
    a("--device-prop", action="append", default=[],
      help="more -device properties, k=v,...")
    a("--poll-wait", type=float, default=5.0,
      help="sample the source's stats for at most this long for a queue "
      "in its polling phase before migrate (default 5 s)")
    a("--settle", type=float, default=15.0,
      help="the destination must serve and poll within this (default 15 s)")
    a("--dwell", type=float, default=2.0,
      help="seconds the guest runs on each side between migrations "
      "(default 2)")
    a("--autostart", action="store_true",
      help="destinations start running by themselves when the migration "
      "completes (default: -S, as libvirt does; the virtqueue indexes "
      "they loaded are compared with the source's last ones, then cont)")
    a("--max-bandwidth", type=int, default=4 << 30,
      help="migrate-set-parameters max-bandwidth, bytes/s (default 4 GiB)")
    a("--downtime-limit", type=int, default=300,
      help="migrate-set-parameters downtime-limit, ms (default 300)")
    a("--migration-timeout", type=int, default=120)
    a("--boot-timeout", type=int, default=120)
    a("--round-timeout", type=int, default=150,
      help="guest watchdog per fio round (default 150 s)")
    a("--max-rounds", type=int, default=500)
    a("--timeout", type=int, default=240,
      help="the whole run (default 240 s)")
    a("--qemu", default=os.path.join(rg.QEMU_DIR, "qemu-system-x86_64"))
    a("--qemu-img", default=os.path.join(rg.QEMU_DIR, "qemu-img"))
    args = ap.parse_args(argv)
    if args.migrations < 1:
        ap.error("--migrations must be >= 1")
    args.settle = max(args.settle, args.dwell)
    if args.disk_size < 2 * args.round_size:
        ap.error("--disk-size must hold 2 x --round-size")
    return args


def main():
    # SIGTERM/SIGHUP end the run like ^C: the QEMUs are quit on the way out
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit(128 + n))
    args = parse_args()
    args.out = os.path.abspath(args.out)
    run = Run(args)
    c = Checker(run.doc)
    rc = 0
    try:
        run.setup()
        run.go()
    except Failure as e:
        run.doc["error"] = str(e)
        print("migrate: %s" % e, file=sys.stderr, flush=True)
    except (KeyboardInterrupt, SystemExit) as e:
        run.doc["error"] = "interrupted (%s)" % (type(e).__name__)
        print("migrate: %s" % run.doc["error"], file=sys.stderr, flush=True)
    except (OSError, RuntimeError, ValueError,
            subprocess.CalledProcessError) as e:
        run.doc["error"] = "%s: %s" % (type(e).__name__, e)
        print("migrate: %s" % run.doc["error"], file=sys.stderr, flush=True)
    finally:
        run.cleanup()
    run.doc["total_s"] = round(time.monotonic() - run.t0, 1)
    con = run.console
    if con is not None:
        if con.failed is not None:
            run.doc["guest_failed"] = con.failed
            run.doc["guest_report"] = con.failed_report
        run.doc["console_tail"] = con.tail[-40:]
        run.doc["guest_rounds_line"] = con.rounds_line
        run.doc["guest_boot"] = con.boot
        try:
            evaluate(run, c)
        except Exception as e:            # noqa: BLE001 (report, go on)
            c.check("evaluation", False, "%s: %s" % (type(e).__name__, e))
    else:
        c.check("set-up", False, run.doc.get("error", ""))
    if run.doc.get("error"):
        c.check("run completed", False, run.doc["error"])
    summary(run)
    print("total %.1f s; results in %s" % (run.doc["total_s"], os.path.join(
        args.out, "migrate.json")))
    with open(os.path.join(args.out, "migrate.json"), "w") as f:
        json.dump(run.doc, f, indent=1, default=str)
    print("%d passed, %d failed" % (c.passed, c.failed))
    rc = 1 if c.failed else 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
