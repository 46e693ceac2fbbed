#!/usr/bin/python3
"""Fault injection: a Linux guest (TCG) and fio with verify, on both paths
of virtio-blk-poll and on upstream virtio-blk-pci, must see the same.

Each cell injects one kind of error under one werror/rerror policy and
boots the test guest (scripts/guest/) twice with the same disk
configuration (-smp 2, num-queues 2 on IOThread iot0, aio=io_uring,
cache.direct=on), once with virtio-blk-poll-pci and once with upstream
virtio-blk-pci, and compares what the guest and QMP saw.  Error sources:

  enospc    fast path (raw over a `file` node): a sparse 64M image on a
            small tmpfs that this script mounts (8M); fio's writes run
            into the kernel's ENOSPC.  For werror=stop the script grows
            the tmpfs (mount -o remount,size=+8M) at every stop, then
            `cont`s.  enospc-loop-stop puts a loop device (host_device
            node) in between: this kernel's loop driver passes ENOSPC on
            as BLK_STS_NOSPC, QEMU sees ENOSPC, not EIO.  But the loop
            driver completes a *short* write to its backing file (the
            tmpfs filled up in the middle of a request) as a success:
            lo_complete_rq() retries short reads only, so the tail of
            that write is lost and neither QEMU nor the guest can know
            (seen on 6.18: a 16k O_DIRECT write to /dev/loopN over a
            tmpfs with 12k free returns 16384 and reads back 4k of
            zeroes).  Both devices lost data that way about 1 run in 10
            on a loaded host.  So that cell only makes page-sized
            writes that nothing merges (guest nomerges=2 and fio bs=4k,
            request-merging=off in QEMU, nomerges=2 on the loop device):
            a tmpfs page is allocated whole or not at all, and every
            write either lands whole or fails with ENOSPC, which is what
            the cell is about.
  eio-loop  fast path (raw over a `host_device` node): /dev/loopU stacked
            on /dev/loopL, which maps a file on tmpfs.  `blockdev --setro
            loopL` makes loopU's writes to it fail with EPERM, which the
            loop driver turns into BLK_STS_IOERR: QEMU gets a real kernel
            EIO from loopU (writes only); `--setrw` heals it.
  blkdebug  fallback (the block layer): raw over blkdebug over the file,
            inject-error rules for read_aio/write_aio, errno 5 (28 in
            blkdebug-nospc-report), at fixed sectors; once=on where the
            replay after `cont` must succeed.

Policies and what each device must show (both the same, see COMPARE):

  stop      every fault stops the VM (query-status io-error, BLOCK_IO_ERROR
            action "stop"); the script heals the fault and `cont`s, as
            often as it takes; fio's write + crc32c verify pass: nothing
            lost, the guest saw no error.  werror=enospc: stop on ENOSPC,
            report EIO.
  report    the guest gets the error: fio (continue_on_error=all) counts
            EIO errors, the guest kernel logs "I/O error, dev vda";
            BLOCK_IO_ERROR action "report", no stop.
  ignore    the guest sees success (no fio error, no kernel I/O error),
            the data is not there (fio verify fails); BLOCK_IO_ERROR
            action "ignore", no stop.
  pause     (--long) no fault: the script stops and resumes the VM with
            QMP stop/cont (up to 30 times) while fio writes and verifies,
            with two CPU hogs on the host.

COMPARE: "the same" means the same behaviour, not the same timing:
  - per fio job the same outcome class (ok / I/O error / verify failure)
    and the same errno strings (virtio-blk has one error status, so the
    guest sees EIO for every host errno);
  - the same sets of BLOCK_IO_ERROR actions, operations and `nospace`;
  - stops: both none or both some (and +-2 where the number of stops
    does not depend on timing), every stop followed by a RESUME;
  - guest kernel "I/O error" lines (dmesg; the guest kernel rate limits
    them to 10 per 5 s): both zero or both non-zero;
  - counts of fio I/O errors and verify errors within a tolerance: exact
    cells (blkdebug at fixed sectors, the loop with every write failing
    and fio's fixed random seed) +-2; cells where the fault depends on
    timing (a file system filling up) +-max(16, 15%).
BLOCK_IO_ERROR events are counted, not compared one to one: QEMU's
monitor throttles them to one a second unless the action is stop, and
with stop their number per stop is the number of requests that were in
flight when the fault hit (each device must show between 1 and 32 per
stop: 2 queues x iodepth 16).  On virtio-blk-poll the device's `stats`
must show the expected path: "io_uring" with fast-rw > 0, or a fallback
reason with fallback-rw > 0 and fast-rw == 0.

Lost interrupt after a VM stop (found by this script; both devices,
QEMU's code; fixed by patch 0004): a guest request could hang for good
after a VM stop (werror/rerror=stop, or QMP stop) when the device's
IOThread completed a block layer request while ioeventfd stopped.
virtio_notify_irqfd() defers the guest notifier write (defer_call,
inside block/io_uring.c's completion section) past blk_dec_in_flight(),
so virtio_blk_stop_ioeventfd()'s blk_drain() could return and tear the
guest notifiers down before the write.  blkdebug-stop-2q (default) and
pause-fast/pause-fallback (--long), with CPU hogs on the host, are its
regression cells; a hung run is reported with its signature ("LOST
INTERRUPT: N guest requests in flight, every virtqueue empty on the
device side").

Prints a line per cell (PASS/FAIL cell: poll=..., upstream=...), a table
(faults = BLOCK_IO_ERROR events, VM stops survived, fio and verify
errors, guest kernel I/O error lines, per device) and "N passed, N
failed" last.  Exits 1 if a cell failed.  Writes build/faults/faults.json
(--out DIR); console logs and run-guest.py's documents of each run stay
in DIR/runs/.  Needs root (mount, losetup).  Leftovers of a killed run
(QEMU, loop devices, mounts under /tmp/vbp-faults/PID) are cleaned up at
the next start.  The default cells take about 2 minutes on an idle
2-core machine (4 on a busy one), --long about 15.

Usage: scripts/faults.py [--only CELL[,CELL]] [--long] [--repeat N]
                         [--device poll|upstream] [--out DIR] [--list]
"""

import argparse
import contextlib
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_GUEST = os.path.join(TOP, "scripts", "guest", "run-guest.py")
WORK_ROOT = "/tmp/vbp-faults"        # mounts and images, one dir per run
FS_NAME = "vbp-faults"               # source name of our tmpfs mounts
MiB = 1024 * 1024
DEVICES = (("poll", "virtio-blk-poll-pci"), ("upstream", "virtio-blk-pci"))
MAX_STOPS = 40                       # a fault that never heals: give up


def log(msg):
    print("faults: %s" % msg, file=sys.stderr, flush=True)


def sh(*argv, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and p.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.strip()))
    return p.stdout.strip()


# ------------------------------------------------ mounts, loops, leftovers
def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % size, FS_NAME,
       path)


def remount_tmpfs(path, size):
    sh("mount", "-o", "remount,size=%d" % size, path)


def our_mounts(prefix):
    """Our tmpfs mount points under prefix, deepest first."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            src, mnt = line.split()[:2]
            mnt = mnt.encode().decode("unicode_escape")
            if src == FS_NAME and (mnt + "/").startswith(prefix + "/"):
                out.append(mnt)
    return sorted(out, key=len, reverse=True)


def umount(path):
    sh("umount", path, check=False)
    if os.path.ismount(path):
        sh("umount", "-l", path, check=False)


def loop_list():
    try:
        doc = json.loads(sh("losetup", "-J", "-l") or '{"loopdevices": []}')
    except (RuntimeError, ValueError):
        return []
    return doc.get("loopdevices", [])


def losetup(backing):
    """Attaches a free loop device to backing (retries the race with
    other users of losetup -f)."""
    for attempt in range(10):
        p = subprocess.run(["losetup", "-f", "--show", backing],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if p.returncode == 0:
            return p.stdout.strip()
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError("losetup -f %s: %s" % (backing, p.stderr.strip()))


def loop_detach(dev):
    sh("blockdev", "--setrw", dev, check=False)
    sh("losetup", "-d", dev, check=False)


def detach_loops_under(prefix):
    """Loop devices over files under prefix, and those stacked on them
    (upper ones first)."""
    loops = loop_list()
    lower = {l["name"] for l in loops
             if (l.get("back-file") or "").startswith(prefix + "/")}
    upper = {l["name"] for l in loops
             if (l.get("back-file") or "").split(" ")[0] in lower}
    for dev in sorted(upper) + sorted(lower):
        loop_detach(dev)
    return sorted(upper) + sorted(lower)


def marker(pid):
    return "vbp-faults-%d" % pid


def qemu_pids(mark):
    """QEMU processes whose command line carries our marker object."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and \
                any(mark.encode() in a for a in argv):
            pids.append(int(p))
    return pids


def kill_pid(pid):
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        t = time.monotonic() + wait
        while time.monotonic() < t:
            if not os.path.exists("/proc/%d" % pid):
                return
            try:                          # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)


def cleanup_dir(path, pid):
    """Everything a run of this script (pid) left: QEMU, loops, mounts."""
    for q in qemu_pids(marker(pid)):
        log("killing leftover QEMU %d of run %d" % (q, pid))
        kill_pid(q)
    for dev in detach_loops_under(path):
        log("detached leftover %s" % dev)
    for mnt in our_mounts(path):
        umount(mnt)
    shutil.rmtree(path, ignore_errors=True)


def faults_alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"faults.py" in f.read()
    except OSError:
        return False


def cleanup_leftovers():
    """Runs of this script that were killed: their QEMU, loops, mounts."""
    if not os.path.isdir(WORK_ROOT):
        return
    for name in os.listdir(WORK_ROOT):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid != os.getpid() and faults_alive(pid):
            continue                      # another run, still going
        log("cleaning up after the earlier run %d" % pid)
        cleanup_dir(os.path.join(WORK_ROOT, name), pid)


# ------------------------------------------------------------ QMP events
class EventQMP:
    """QMP client that keeps the events (scripts/qmp.py drops them)."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.sock.settimeout(None)
        self.rfile = self.sock.makefile("r")
        self.wfile = self.sock.makefile("w")
        self.events = queue.Queue()
        self.replies = queue.Queue()
        self.lock = threading.Lock()
        self.rfile.readline()             # greeting
        threading.Thread(target=self._reader, daemon=True).start()
        self.cmd("qmp_capabilities")

    def _reader(self):
        try:
            for line in self.rfile:
                msg = json.loads(line)
                if "event" in msg:
                    msg["_t"] = time.monotonic()
                    self.events.put(msg)
                else:
                    self.replies.put(msg)
        except (OSError, ValueError):
            pass
        self.events.put(None)
        self.replies.put({"error": {"desc": "QMP connection closed"}})

    def cmd(self, name, args=None, timeout=30):
        with self.lock:
            req = {"execute": name}
            if args:
                req["arguments"] = args
            self.wfile.write(json.dumps(req) + "\n")
            self.wfile.flush()
            try:
                rsp = self.replies.get(timeout=timeout)
            except queue.Empty:
                raise RuntimeError("%s: no reply" % name) from None
        if "error" in rsp:
            raise RuntimeError("%s: %s" % (name, rsp["error"]["desc"]))
        return rsp["return"]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------- error sources
def file_node(path, driver="file"):
    return {"driver": driver, "filename": path, "aio": "io_uring",
            "cache": {"direct": True, "no-flush": False}}


def raw_over(node):
    return {"driver": "raw", "node-name": "disk0", "file": node,
            "cache": {"direct": True, "no-flush": False}}


class Source:
    """One error source, set up afresh for every guest run."""
    path = "fast"              # which virtio-blk-poll path must serve
    exact = True               # counts do not depend on timing
    stops_exact = True         # stops do not depend on timing (+-2)
    burn = 0                   # CPU hogs on the host during the run
    rearms = 0                 # faults injected again after a cont
    rearm_delay = 0.3

    def __init__(self, workdir):
        self.workdir = workdir
        self.notes = []

    def setup(self):
        """Returns the -blockdev of node disk0."""
        raise NotImplementedError

    def arm(self):
        """The fault is there before the guest starts (if it needs to be
        switched on)."""

    def heal(self, nstop):
        """Makes the stopped requests succeed on replay; False: cannot."""
        return True

    def rearm(self):
        """Injects the fault again (after a cont)."""

    def teardown(self):
        for mnt in our_mounts(self.workdir):
            umount(mnt)
        shutil.rmtree(self.workdir, ignore_errors=True)


class Enospc(Source):
    """A sparse image bigger than the small tmpfs it lives on; optionally
    behind a loop device (host_device node)."""
    exact = False

    def __init__(self, workdir, fs=8 * MiB, img=64 * MiB, grow=8 * MiB,
                 max_fs=128 * MiB, loop=False):
        super().__init__(workdir)
        self.fs, self.img, self.grow, self.max_fs = fs, img, grow, max_fs
        self.loop = loop
        self.dev = None

    def setup(self):
        self.mnt = os.path.join(self.workdir, "mnt")
        mount_tmpfs(self.mnt, self.fs)
        self.size = self.fs
        path = os.path.join(self.mnt, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(self.img)
        if self.loop:
            self.dev = losetup(path)
            # One loop request per QEMU write (see the docstring)
            with open("/sys/block/%s/queue/nomerges"
                      % os.path.basename(self.dev), "w") as f:
                f.write("2\n")
            return raw_over(file_node(self.dev, "host_device"))
        return raw_over(file_node(path))

    def heal(self, nstop):
        if self.size + self.grow > self.max_fs:
            return False
        self.size += self.grow
        remount_tmpfs(self.mnt, self.size)
        self.notes.append("tmpfs grown to %dM" % (self.size // MiB))
        return True

    def teardown(self):
        if self.dev:
            loop_detach(self.dev)
        super().teardown()


class LoopEio(Source):
    """/dev/loopU over /dev/loopL over a file on tmpfs; loopL read-only
    makes loopU's writes fail with EIO."""

    def __init__(self, workdir, img=64 * MiB, rearms=0, start_armed=True):
        super().__init__(workdir)
        self.img = img
        self.rearms = rearms
        self.stops_exact = not rearms     # re-armed on a timer
        self.start_armed = start_armed
        self.lower = self.upper = None

    def setup(self):
        mnt = os.path.join(self.workdir, "mnt")
        mount_tmpfs(mnt, self.img + 16 * MiB)
        path = os.path.join(mnt, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(self.img)
        self.lower = losetup(path)
        self.upper = losetup(self.lower)
        self.notes.append("%s over %s" % (self.upper, self.lower))
        return raw_over(file_node(self.upper, "host_device"))

    def arm(self):
        if self.start_armed:
            self.rearm()

    def rearm(self):
        sh("blockdev", "--setro", self.lower)

    def heal(self, nstop):
        sh("blockdev", "--setrw", self.lower)
        return True

    def teardown(self):
        for dev in (self.upper, self.lower):
            if dev:
                loop_detach(dev)
        super().teardown()


class Pause(Source):
    """No fault: the script stops and resumes the VM (QMP stop, cont) again
    and again while fio runs; optionally raw over a blkdebug node without
    rules, which makes virtio-blk-poll use the block layer."""
    pauses = 30
    pause_interval = 0.15

    def __init__(self, workdir, fallback=False, img=128 * MiB, burn=2):
        super().__init__(workdir)
        self.fallback, self.img, self.burn = fallback, img, burn
        if fallback:
            self.path = "fallback"

    def setup(self):
        mnt = os.path.join(self.workdir, "mnt")
        mount_tmpfs(mnt, self.img + 16 * MiB)
        path = os.path.join(mnt, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(self.img)
        node = file_node(path)
        if self.fallback:
            node = {"driver": "blkdebug", "image": node}
        return raw_over(node)


class Blkdebug(Source):
    """raw over blkdebug over a file: EIO (or errno) at fixed sectors."""
    path = "fallback"

    def __init__(self, workdir, wsectors=(), rsectors=(), once=False,
                 errno=5, img=64 * MiB, burn=0):
        super().__init__(workdir)
        self.burn = burn
        self.wsectors, self.rsectors = wsectors, rsectors
        self.once, self.errno, self.img = once, errno, img

    def setup(self):
        mnt = os.path.join(self.workdir, "mnt")
        mount_tmpfs(mnt, self.img + 16 * MiB)
        path = os.path.join(mnt, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(self.img)
        rules = []
        for ev, io, sectors in (("write_aio", "write", self.wsectors),
                                ("read_aio", "read", self.rsectors)):
            for s in sectors:
                rules.append({"event": ev, "iotype": io, "errno": self.errno,
                              "sector": s, "once": self.once})
        return raw_over({"driver": "blkdebug", "image": file_node(path),
                         "inject-error": rules})


# ------------------------------------------------------------- fio jobs
def fio_job(name, rw, size, bs, verify=False, coe=False, two=False,
            extra=""):
    """A fio job file: io_uring, iodepth 16, O_DIRECT on /dev/vda.  two:
    two fio jobs, one per vCPU and so one per virtqueue, each on its own
    `size` bytes, so that a stop catches requests on both queues."""
    text = ["[global]", "ioengine=io_uring", "iodepth=16",
            ("bsrange=%s" if "-" in bs else "bs=%s") % bs,
            "size=%s" % size, "", "[%s]" % name, "rw=%s" % rw]
    if two:
        text += ["numjobs=2", "offset_increment=%s" % size,
                 "cpus_allowed=0-1", "cpus_allowed_policy=split"]
    if verify:
        text += ["verify=crc32c", "do_verify=1",
                 "verify_fatal=%d" % (0 if coe else 1)]
    if coe:
        text += ["continue_on_error=all"]
    if extra:
        text += extra.split("\n")
    return (name, "\n".join(text) + "\n")


# blkdebug rules: sectors (512 bytes) in different 16k blocks, two in
# each 16M half of the first 32M (the two fio jobs of blkdebug-stop-2q).
W_SECTORS = (2056, 20008, 34824, 52000)
R_SECTORS = (4104, 24584, 40000, 61448)


KNOWN_LOST_IRQ = ("lost interrupt after a VM stop, both devices: "
                  "virtio_notify_irqfd() deferred past the guest notifier "
                  "teardown (see the docstring)")


class Cell:
    def __init__(self, name, policy, source, props, jobs, long=False,
                 what="", known=None, guest_setup=""):
        self.name, self.policy, self.source = name, policy, source
        self.guest_setup = guest_setup      # shell line, before the jobs
        self.props, self.jobs, self.long, self.what = props, jobs, long, what
        self.known = known          # a known bug this cell may show


CELLS = [
    Cell("enospc-stop", "stop",
         lambda d: Enospc(d), "werror=stop",
         [fio_job("randwrite-verify", "randwrite", "16M", "4k-64k",
                  verify=True, two=True)],
         what="fast path file, tmpfs full (ENOSPC), grown at each stop"),
    Cell("enospc-report", "report",
         lambda d: Enospc(d), "werror=report",
         [fio_job("write", "write", "24M", "64k", coe=True)],
         what="fast path file, ENOSPC reported to the guest"),
    Cell("enospc-ignore", "ignore",
         lambda d: Enospc(d), "werror=ignore",
         [fio_job("write-verify", "write", "24M", "64k", verify=True,
                  coe=True)],
         what="fast path file, ENOSPC ignored: data lost, verify fails"),
    Cell("eio-loop-stop", "stop",
         lambda d: LoopEio(d, rearms=2), "werror=stop",
         [fio_job("randwrite-verify", "randwrite", "8M", "4k",
                  verify=True, two=True)],
         what="fast path host_device, kernel EIO from a stacked loop, "
         "injected 3 times"),
    Cell("eio-loop-report", "report",
         lambda d: LoopEio(d), "werror=report",
         [fio_job("randrw", "randrw", "8M", "16k", coe=True)],
         what="fast path host_device, kernel EIO on every write"),
    Cell("eio-loop-ignore", "ignore",
         lambda d: LoopEio(d), "werror=ignore",
         [fio_job("randwrite-verify", "randwrite", "8M", "16k",
                  verify=True, coe=True)],
         what="fast path host_device, kernel EIO ignored"),
    Cell("blkdebug-stop", "stop",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS, once=True),
         "werror=stop,rerror=stop",
         [fio_job("randwrite-verify", "randwrite", "32M", "16k",
                  verify=True)],
         what="fallback, blkdebug EIO once at 4 write + 4 read sectors"),
    Cell("blkdebug-report", "report",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS),
         "werror=report,rerror=report",
         [fio_job("randwrite", "randwrite", "32M", "16k", coe=True),
          fio_job("randread", "randread", "32M", "16k", coe=True)],
         what="fallback, blkdebug EIO at 4 write + 4 read sectors"),
    Cell("blkdebug-ignore", "ignore",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS),
         "werror=ignore,rerror=ignore",
         [fio_job("randwrite-verify", "randwrite", "32M", "16k",
                  verify=True, coe=True)],
         what="fallback, blkdebug EIO ignored on writes and reads"),
    Cell("enospc-loop-stop", "stop",
         lambda d: Enospc(d, loop=True), "werror=stop,request-merging=false",
         [fio_job("randwrite-verify", "randwrite", "16M", "4k",
                  verify=True, two=True)],
         guest_setup="echo 2 > /sys/block/vda/queue/nomerges",
         what="fast path host_device: loop over a full tmpfs (ENOSPC), "
         "page-sized unmerged writes (the loop driver drops the tail of "
         "a short write, see the docstring)"),
    Cell("enospc-policy-stop", "stop",
         lambda d: Enospc(d), "werror=enospc",
         [fio_job("randwrite-verify", "randwrite", "16M", "16k",
                  verify=True, two=True)],
         what="werror=enospc stops on ENOSPC"),
    Cell("enospc-policy-eio", "report",
         lambda d: Blkdebug(d, W_SECTORS), "werror=enospc",
         [fio_job("randwrite", "randwrite", "32M", "16k", coe=True)],
         what="werror=enospc reports EIO"),
    Cell("blkdebug-stop-2q", "stop",
         lambda d: Blkdebug(d, W_SECTORS, R_SECTORS, once=True, burn=2),
         "werror=stop,rerror=stop",
         [fio_job("randwrite-verify", "randwrite", "16M", "16k",
                  verify=True, two=True)],
         what="blkdebug-stop with two fio jobs, one per queue, 2 CPU hogs "
         "(the lost interrupt of patch 0004)"),
    # --long only
    Cell("pause-fast", "pause", lambda d: Pause(d), "werror=stop",
         [fio_job("randwrite-verify", "randwrite", "32M", "4k",
                  verify=True, two=True)], long=True,
         what="no fault: 30 QMP stop/cont during fio, 2 CPU hogs, fast path "
         "(the lost interrupt of patch 0004)"),
    Cell("pause-fallback", "pause", lambda d: Pause(d, fallback=True),
         "werror=stop",
         [fio_job("randwrite-verify", "randwrite", "32M", "4k",
                  verify=True, two=True)], long=True,
         what="no fault: 30 QMP stop/cont during fio, 2 CPU hogs, block layer "
         "(the lost interrupt of patch 0004)"),
    Cell("blkdebug-nospc-report", "report",
         lambda d: Blkdebug(d, W_SECTORS, errno=28), "werror=report",
         [fio_job("randwrite", "randwrite", "32M", "16k", coe=True)],
         long=True, what="fallback, blkdebug ENOSPC reported"),
    Cell("enospc-stop-big", "stop",
         lambda d: Enospc(d, fs=8 * MiB, img=128 * MiB, grow=12 * MiB,
                          max_fs=160 * MiB), "werror=stop",
         [fio_job("randwrite-verify", "randwrite", "48M", "4k",
                  verify=True, two=True)], long=True,
         what="fast path file, 96M of 4k writes, tmpfs grown 12M a stop"),
]

# The guest's last "job": its kernel log.  run.sh is sourced by /init,
# so this redefinition of vbp_fio (scripts/guest/init) runs dmesg for the
# job named dmesg, fio for the others.  Console log level 1: kernel
# messages stay out of the job output on the console (dmesg has them).
GUEST_SETUP = r"""echo 1 > /proc/sys/kernel/printk
vbp_dmesg() {
    # QEMU throttles BLOCK_IO_ERROR to one a second (action report or
    # ignore) and sends the last held one when the second is over: give
    # it that second before the run ends, or which operations the events
    # name depends on how fast the jobs ran
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


# ------------------------------------------------------------ controller
class Controller(threading.Thread):
    """Watches QMP events of one guest run; at each io-error stop heals
    the fault and sends cont; injects the fault again after a cont if
    the source wants (rearms)."""

    def __init__(self, run_root, source, verbose=False):
        super().__init__(daemon=True)
        self.run_root, self.source, self.verbose = run_root, source, verbose
        self.done = threading.Event()
        self.events = []
        self.stops = []               # {t, status, healed, cont}
        self.rearmed = 0
        self.error = None
        self.gave_up = False
        self.qmp = None
        self.pauses = 0               # stop/cont cycles of the script
        self.rundir = None
        self.console_pos = 0
        self.in_job = False

    def _connect(self):
        while not self.done.is_set():
            for d in os.listdir(self.run_root):
                sock = os.path.join(self.run_root, d, "qmp-user.sock")
                if os.path.exists(sock):
                    try:
                        qmp = EventQMP(sock)
                    except OSError:
                        continue
                    self.rundir = os.path.join(self.run_root, d)
                    return qmp
            time.sleep(0.05)
        return None

    def _job_running(self):
        """Whether the guest runs its first fio job (from the console)."""
        try:
            with open(os.path.join(self.rundir, "serial.log")) as f:
                f.seek(self.console_pos)
                text = f.read()
        except OSError:
            return self.in_job
        cut = text.rfind("\n") + 1
        self.console_pos += len(text[:cut].encode())
        for line in text[:cut].splitlines():
            if line.startswith("===VBP-READY ") and "dmesg" not in line:
                self.in_job = True
            elif line.startswith("===VBP-DONE "):
                self.in_job = False
        return self.in_job

    def _pause_cycle(self):
        """QMP stop, then cont (the Pause source)."""
        self.qmp.cmd("stop")
        time.sleep(0.05)
        self.qmp.cmd("cont")
        self.pauses += 1

    def run(self):
        try:
            self._run()
        except Exception as e:        # noqa: BLE001 (reported, not raised)
            if not self.done.is_set():
                self.error = "controller: %s: %s" % (type(e).__name__, e)

    def _run(self):
        self.qmp = self._connect()
        if not self.qmp:
            return
        rearm_at = None
        t0 = time.monotonic()
        want = getattr(self.source, "pauses", 0)
        next_pause = 0
        while True:
            try:
                ev = self.qmp.events.get(timeout=0.1)
            except queue.Empty:
                ev = False
            if ev is None:
                return                # QEMU is gone
            now = time.monotonic()
            if rearm_at and now >= rearm_at:
                rearm_at = None
                self.rearmed += 1
                self.source.rearm()
                if self.verbose:
                    log("fault injected again (%d)" % self.rearmed)
            if want and self.pauses < want and now >= next_pause and \
                    self._job_running():
                self._pause_cycle()
                next_pause = time.monotonic() + self.source.pause_interval
            if not ev:
                if self.done.is_set():
                    return
                continue
            rec = {"t": round(ev["_t"] - t0, 3), "event": ev["event"],
                   "data": ev.get("data", {})}
            self.events.append(rec)
            if ev["event"] != "STOP":
                continue
            st = self.qmp.cmd("query-status")
            stop = {"t": rec["t"], "status": st.get("status")}
            self.stops.append(stop)
            if st.get("status") != "io-error":
                continue
            if len(self.stops) > MAX_STOPS or \
                    not self.source.heal(len(self.stops)):
                self.gave_up = True
                self.error = "fault did not heal after %d stops: quit" % \
                    len(self.stops)
                self.qmp.cmd("quit")
                return
            stop["healed"] = True
            time.sleep(0.05)
            self.qmp.cmd("cont")
            stop["cont"] = True
            if self.verbose:
                log("stop %d (io-error) healed, cont" % len(self.stops))
            if self.rearmed < self.source.rearms:
                rearm_at = time.monotonic() + self.source.rearm_delay

    def finish(self):
        self.done.set()
        self.join(15)
        if self.qmp:
            self.qmp.close()


# -------------------------------------------------------- one guest run
def load_run_guest():
    spec = importlib.util.spec_from_file_location("run_guest", RUN_GUEST)
    rg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rg)
    orig = rg.make_disk

    def make_disk(cfg, rundir):
        # run-guest.py knows raw/qcow2/null files only; ours are built by
        # the error sources.
        bd = getattr(cfg, "faults_blockdev", None)
        return (bd, None) if bd else orig(cfg, rundir)
    rg.make_disk = make_disk
    return rg


def parse_console(path):
    """{job: {section: [lines]}} from a run's serial.log."""
    jobs = {}
    cur = sec = None
    try:
        f = open(path, errors="replace")
    except OSError:
        return jobs
    with f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"===VBP-(BEGIN|END|SECTION) (\S+)===\s*$", line)
            if m and m.group(1) == "BEGIN":
                cur = jobs.setdefault(m.group(2), {})
                sec = None
            elif m and m.group(1) == "END":
                cur = sec = None
            elif m and cur is not None:
                sec = cur.setdefault(m.group(2), [])
            elif sec is not None:
                sec.append(line)
    return jobs


def observe(cell, dev, result, ctl, source):
    """What the guest and QMP saw in one run: the figures compared."""
    obs = {"device": dev, "run_error": result.get("error"),
           "run_exit": result.get("exit"), "run_dir": result.get("run_dir"),
           "boot_s": result.get("boot_s"), "total_s": result.get("total_s"),
           "notes": source.notes}
    console = parse_console(os.path.join(result.get("run_dir") or "",
                                         "serial.log"))
    jobs = {j["name"]: j for j in result.get("jobs", [])}
    obs["jobs"] = []
    for name, _ in cell.jobs:
        j = jobs.get(name)
        sec = console.get(name, {})
        stderr = sec.get("stderr", [])
        fjs = ((j or {}).get("fio_json") or {}).get("jobs") or [{}]
        fj = {"error": next((x.get("error") for x in fjs if x.get("error")),
                            fjs[0].get("error")),
              "total_err": sum(x.get("total_err", 0) for x in fjs),
              "first_error": next((x.get("first_error") for x in fjs
                                   if x.get("first_error")), 0)}
        for ddir in ("read", "write"):
            fj[ddir] = {"total_ios": sum((x.get(ddir) or {}).get(
                "total_ios", 0) for x in fjs)}
        verify = [l for l in stderr if l.startswith("verify:") or
                  "verify failed" in l]
        # continue_on_error=all: fio counts every failed I/O and every
        # verify failure in total_err (no message for the I/O errors);
        # first_error is the errno of the first (84 EILSEQ: verify).
        total = fj.get("total_err", 0)
        first = fj.get("first_error", 0) or fj.get("error", 0)
        rec = {
            "name": name, "ran": j is not None,
            "rc": (j or {}).get("rc"),
            "error": fj.get("error"), "total_err": total,
            "first_error": first,
            "io_errors": max(total - len(verify), 0),
            "errnos": sorted({os.strerror(first)} if first and first != 84
                             else set()),
            "verify_errors": len(verify),
            "write_ios": (fj.get("write") or {}).get("total_ios", 0),
            "read_ios": (fj.get("read") or {}).get("total_ios", 0),
        }
        if not total and rec["error"] and rec["error"] != 84:
            rec["io_errors"] = 1          # without continue_on_error
        rec["outcome"] = ("not run" if not rec["ran"] else
                          "io-error" if rec["io_errors"] else
                          "verify-failure" if rec["verify_errors"] or
                          rec["error"] == 84 else
                          "ok" if rec["rc"] == 0 and not rec["error"] else
                          "failed rc=%s error=%s" % (rec["rc"], rec["error"]))
        if j is not None:
            st = (j.get("device_stats") or {}).get("queues") or []
            rec["stats"] = [{k: q.get(k) for k in
                             ("queue", "path", "fast-rw", "fallback-rw")}
                            for q in st]
        obs["jobs"].append(rec)
    dm = console.get("dmesg", {})
    derr = dm.get("stderr", [])

    def grab(key):
        for l in derr:
            if l.startswith(key + " "):
                return int(l.split()[1])
        return None
    obs["dmesg_ioerr"] = grab("VBP-IOERR-LINES")
    obs["dmesg_suppressed"] = grab("VBP-SUPPRESSED")
    obs["dmesg_errors"] = [l for l in dm.get("stdout", [])
                           if "error" in l.lower()][-12:]
    ev = ctl.events
    bie = [e["data"] for e in ev if e["event"] == "BLOCK_IO_ERROR"]
    obs["block_io_errors"] = len(bie)
    obs["actions"] = sorted({b.get("action") for b in bie})
    obs["operations"] = sorted({b.get("operation") for b in bie})
    obs["nospace"] = sorted({bool(b.get("nospace")) for b in bie})
    obs["reasons"] = sorted({b.get("reason", "") for b in bie})
    obs["stop_events"] = sum(1 for e in ev if e["event"] == "STOP")
    obs["io_error_stops"] = sum(1 for s in ctl.stops
                                if s["status"] == "io-error")
    obs["conts"] = sum(1 for s in ctl.stops if s.get("cont"))
    # RESUMEs after the first stop (the first RESUME is run-guest's cont)
    first = ctl.stops[0]["t"] if ctl.stops else None
    obs["resumes_after_stop"] = sum(
        1 for e in ev if e["event"] == "RESUME" and first is not None and
        e["t"] >= first)
    obs["rearmed"] = ctl.rearmed
    obs["pauses"] = ctl.pauses
    obs["controller_error"] = ctl.error
    stats = [s for j in obs["jobs"] for s in j.get("stats") or []]
    if stats:
        obs["path"] = sorted({s["path"] for s in stats if s.get("path")})
        obs["fast_rw"] = sum(s.get("fast-rw") or 0 for s in stats)
        obs["fallback_rw"] = sum(s.get("fallback-rw") or 0 for s in stats)
        obs["queues_used"] = len({s.get("queue") for s in stats
                                  if (s.get("fast-rw") or 0) +
                                  (s.get("fallback-rw") or 0)})
    obs["fio_errors"] = sum(j["io_errors"] for j in obs["jobs"])
    obs["verify_errors"] = sum(j["verify_errors"] for j in obs["jobs"])
    obs["events"] = ev[:200]
    obs["hang"] = hang_signature(result)
    return obs


def hang_signature(result):
    """For a run that hung: a lost interrupt?  The guest still has requests
    in flight while, on the device side, every virtqueue is empty (the
    avail index equals the used index, nothing in use): the completions
    are in the used ring, the guest was never told."""
    if result.get("exit") != 2:
        return None
    inflight = 0
    for line in result.get("guest_report") or []:
        m = re.match(r"--- /sys/block/vd\w+/inflight:\s+(\d+)\s+(\d+)", line)
        if m:
            inflight += int(m.group(1)) + int(m.group(2))
    if not inflight:
        return None
    vqs = (result.get("host_diagnostics") or {}).get("virtio-queue-status")
    if not isinstance(vqs, list) or not vqs or \
            not all(isinstance(q, dict) and "inuse" in q for q in vqs):
        return "hang (%d guest requests in flight)" % inflight
    if all(q["inuse"] == 0 and q["last-avail-idx"] == q["used-idx"]
           for q in vqs):
        return ("LOST INTERRUPT: %d guest requests in flight, every "
                "virtqueue empty on the device side (used idx %s)" % (
                    inflight, "/".join(str(q["used-idx"]) for q in vqs)))
    return "hang (%d guest requests in flight, virtqueues %s)" % (
        inflight, "; ".join("inuse %s avail %s used %s" % (
            q["inuse"], q["last-avail-idx"], q["used-idx"]) for q in vqs))


def run_one(rg, cell, devname, device, args, outdir, rep):
    """One guest run; run again once if the guest did not boot (a TCG
    guest on a loaded host, nothing to do with the disk)."""
    obs = run_once(rg, cell, devname, device, args, outdir, rep)
    if obs.get("boot_s") is None and obs["run_exit"] in (2, None):
        log("%s on %s: the guest did not boot (%s), once more" % (
            cell.name, devname, obs["run_error"]))
        first = obs
        obs = run_once(rg, cell, devname, device, args, outdir, rep)
        obs["boot_retry"] = first["run_error"]
    return obs


def run_once(rg, cell, devname, device, args, outdir, rep):
    tag = "%s-%s%s" % (cell.name, devname, "-%d" % rep if rep else "")
    workdir = os.path.join(WORK_ROOT, str(os.getpid()), tag)
    run_root = os.path.join(outdir, "runs", tag)
    shutil.rmtree(run_root, ignore_errors=True)
    os.makedirs(run_root)
    source = cell.source(workdir)
    ctl = None
    burners = []
    t0 = time.monotonic()
    try:
        # CPU hogs (the KNOWN cells): a busy host widens the race window
        for _ in range(source.burn):
            burners.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"]))
        blockdev = source.setup()
        conf = {"jobs": [{"name": n, "text": t, "timeout": args.job_timeout}
                         for n, t in cell.jobs] +
                [{"name": "dmesg", "text": "# dmesg\n", "timeout": 60}],
                "guest_setup": [GUEST_SETUP] + ([cell.guest_setup]
                                                if cell.guest_setup else [])}
        conf_path = os.path.join(run_root, "config.json")
        with open(conf_path, "w") as f:
            json.dump(conf, f, indent=1)
        argv = ["--config", conf_path, "--device", device,
                "--iothreads", "1", "--num-queues", "2", "--full-fio",
                "--device-prop", cell.props,
                "--job-timeout", str(args.job_timeout),
                "--run-root", run_root,
                # TCG on a busy host: the kernel's IO-APIC timer check
                # can fail and panic the guest at boot
                "--append", "no_timer_check",
                "--qemu-arg=-object",
                "--qemu-arg=secret,id=%s,data=x" % marker(os.getpid())] + \
            ["--qemu-arg=" + a for a in args.qemu_arg]
        cfg = rg.parse_args(argv)
        cfg.faults_blockdev = blockdev
        source.arm()
        ctl = Controller(run_root, source, args.verbose)
        ctl.start()
        with open(os.path.join(run_root, "run-guest.log"), "w") as lf:
            if args.verbose:
                result = rg.run(cfg)
            else:
                with contextlib.redirect_stderr(lf):
                    result = rg.run(cfg)
        result.pop("config", None)
        with open(os.path.join(run_root, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    except (RuntimeError, OSError, rg.Failure) as e:
        result = {"exit": 3, "error": "set-up: %s" % e, "jobs": []}
    finally:
        for b in burners:
            b.kill()
            b.wait()
        if ctl:
            ctl.finish()
        source.teardown()
    obs = observe(cell, device, result, ctl or Controller(run_root, source),
                  source)
    obs["wall_s"] = round(time.monotonic() - t0, 1)
    return obs


# ------------------------------------------------------------ judgement
def close(a, b, exact):
    if exact:
        return abs(a - b) <= 2
    return abs(a - b) <= max(16, 0.15 * max(a, b))


def check_alone(cell, o, is_poll):
    """What each device must show on its own; returns problems."""
    p = []
    # run-guest.py calls a run with a failed job (exit 1) failed: fio
    # reports the injected errors, and the dmesg "job" runs no fio.  A
    # hang, timeout or QEMU failure (exit 2, 3) is a failure here too.
    if o["run_exit"] not in (0, 1):
        p.append("run: %s" % o["run_error"])
    if o.get("hang"):
        p.append(o["hang"])
    if o["controller_error"]:
        p.append(o["controller_error"])
    for j in o["jobs"]:
        if not j["ran"]:
            p.append("%s did not run" % j["name"])
    if o["dmesg_ioerr"] is None:
        p.append("no guest dmesg")
    if cell.policy == "pause":
        if o["pauses"] < 10:
            p.append("only %d stop/cont cycles during the job" % o["pauses"])
        if o["block_io_errors"] or o["io_error_stops"]:
            p.append("%d BLOCK_IO_ERROR, %d io-error stops" % (
                o["block_io_errors"], o["io_error_stops"]))
        for j in o["jobs"]:
            if j["outcome"] != "ok" or j["verify_errors"]:
                p.append("%s: %s, %d verify errors" % (
                    j["name"], j["outcome"], j["verify_errors"]))
        if o["dmesg_ioerr"]:
            p.append("guest kernel logged %d I/O errors" % o["dmesg_ioerr"])
    elif not o["block_io_errors"]:
        p.append("no BLOCK_IO_ERROR: no fault injected")
    if o["actions"] and o["actions"] != [cell.policy]:
        p.append("BLOCK_IO_ERROR actions %s" % o["actions"])
    if cell.policy == "pause":
        pass
    elif cell.policy == "stop":
        if not o["io_error_stops"]:
            p.append("the VM never stopped")
        # One event per failed request; at most every request the guest
        # can have in flight (2 queues x iodepth 16) fails per stop.
        if not o["io_error_stops"] <= o["block_io_errors"] <= \
                32 * o["io_error_stops"]:
            p.append("%d BLOCK_IO_ERROR events for %d stops" % (
                o["block_io_errors"], o["io_error_stops"]))
        if o["resumes_after_stop"] < o["io_error_stops"] or \
                o["conts"] < o["io_error_stops"]:
            p.append("stops %d, conts %d, resumes %d" % (
                o["io_error_stops"], o["conts"], o["resumes_after_stop"]))
        for j in o["jobs"]:
            if j["outcome"] != "ok" or j["verify_errors"]:
                p.append("%s: %s, %d verify errors (data lost?)" % (
                    j["name"], j["outcome"], j["verify_errors"]))
        if o["dmesg_ioerr"]:
            p.append("guest kernel logged %d I/O errors" % o["dmesg_ioerr"])
    else:
        if o["stop_events"]:
            p.append("%d STOP events" % o["stop_events"])
        if cell.policy == "report":
            if not any(j["outcome"] == "io-error" for j in o["jobs"]):
                p.append("the guest saw no I/O error")
            for j in o["jobs"]:
                if j["io_errors"] and j["errnos"] != ["Input/output error"]:
                    p.append("%s: guest errno %s, not EIO" % (j["name"],
                                                             j["errnos"]))
            if not o["dmesg_ioerr"]:
                p.append("no 'I/O error' in the guest's dmesg")
        else:
            if any(j["io_errors"] for j in o["jobs"]):
                p.append("the guest saw I/O errors")
            if o["dmesg_ioerr"]:
                p.append("guest kernel logged I/O errors")
    if is_poll:
        src = cell.source("/nonexistent")
        path = o.get("path")
        if path is None:
            p.append("no device stats")
        elif src.path == "fast":
            if path != ["io_uring"] or not o.get("fast_rw"):
                p.append("not the fast path: path=%s fast-rw=%s" % (
                    path, o.get("fast_rw")))
        elif "io_uring" in path or o.get("fast_rw") or \
                not o.get("fallback_rw"):
            p.append("not the fallback: path=%s fast-rw=%s fallback-rw=%s"
                     % (path, o.get("fast_rw"), o.get("fallback_rw")))
    return p


def compare(cell, po, uo):
    """poll vs upstream: same behaviour (see COMPARE in the docstring)."""
    p = []
    exact = cell.source("/nonexistent").exact
    for pj, uj in zip(po["jobs"], uo["jobs"]):
        n = pj["name"]
        if pj["outcome"] != uj["outcome"]:
            p.append("%s: outcome %s vs %s" % (n, pj["outcome"],
                                               uj["outcome"]))
        if pj["errnos"] != uj["errnos"]:
            p.append("%s: errno %s vs %s" % (n, pj["errnos"], uj["errnos"]))
        for k in ("io_errors", "verify_errors"):
            if not close(pj[k], uj[k], exact) or \
                    bool(pj[k]) != bool(uj[k]):
                p.append("%s: %s %d vs %d" % (n, k, pj[k], uj[k]))
    for k in ("actions", "operations", "nospace"):
        if po[k] != uo[k]:
            p.append("%s %s vs %s" % (k, po[k], uo[k]))
    # BLOCK_IO_ERROR events are not compared one to one: QEMU's monitor
    # throttles them to one a second unless the action is stop, and with
    # stop their number per stop is the number of requests that were in
    # flight when the fault hit (check_alone bounds it).
    a, b = po["io_error_stops"], uo["io_error_stops"]
    if bool(a) != bool(b) or \
            (cell.source("/nonexistent").stops_exact and abs(a - b) > 2):
        p.append("stops %d vs %d" % (a, b))
    if bool(po["dmesg_ioerr"]) != bool(uo["dmesg_ioerr"]):
        p.append("guest kernel I/O error lines %s vs %s" % (
            po["dmesg_ioerr"], uo["dmesg_ioerr"]))
    return p


def brief(o):
    parts = []
    if o.get("pauses"):
        parts.append("%d stop/cont by the script" % o["pauses"])
    if o["io_error_stops"]:
        parts.append("%d stops/%d resumed" % (o["io_error_stops"],
                                              o["resumes_after_stop"]))
    parts.append("%d BLOCK_IO_ERROR(%s%s)" % (
        o["block_io_errors"], ",".join(o["actions"]),
        ",".join([""] + o["operations"]) + (",nospace"
                                            if True in o["nospace"] else "")))
    parts.append("fio %s" % "/".join("%s%s" % (
        j["outcome"], "(%d)" % j["io_errors"] if j["io_errors"] else "")
        for j in o["jobs"]))
    parts.append("verify errors %d" % o["verify_errors"])
    parts.append("dmesg I/O errors %s" % o["dmesg_ioerr"])
    if o.get("path"):
        parts.append("path %s" % ",".join(o["path"]))
    return ", ".join(parts)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--only", help="comma-separated cells (see --list)")
    ap.add_argument("--long", action="store_true",
                    help="the extra cells too, and every cell --repeat "
                    "times (default 2 with --long)")
    ap.add_argument("--repeat", type=int, default=0,
                    help="run each cell N times")
    ap.add_argument("--out", default=os.path.join(TOP, "build", "faults"))
    ap.add_argument("--device", choices=("both", "poll", "upstream"),
                    default="both", help="run one device only (no "
                    "comparison: to reproduce a failure)")
    ap.add_argument("--job-timeout", type=int, default=150,
                    help="guest watchdog per fio job (default 150 s)")
    ap.add_argument("--qemu-arg", action="append", default=[],
                    help="extra QEMU argument (repeat for each word; "
                    "--qemu-arg=-trace ...)")
    ap.add_argument("--list", action="store_true", help="list the cells")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="run-guest.py's messages and the controller's")
    args = ap.parse_args()
    if args.list:
        for c in CELLS:
            print("%-22s %-7s %-28s %s%s" % (c.name, c.policy, c.props,
                                             c.what, " (--long)"
                                             if c.long else ""))
        return 0
    by_name = {c.name: c for c in CELLS}
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        bad = [n for n in names if n not in by_name]
        if bad:
            ap.error("unknown cell(s) %s (--list)" % ", ".join(bad))
        cells = [by_name[n] for n in names]
    else:
        cells = [c for c in CELLS if args.long or not c.long]
    repeat = args.repeat or (2 if args.long else 1)
    if os.geteuid() != 0:
        print("faults: needs root (mount, losetup)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1

    # SIGTERM/SIGHUP: unwind through the finally clauses (cleanup)
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    os.makedirs(args.out, exist_ok=True)
    cleanup_leftovers()
    mydir = os.path.join(WORK_ROOT, str(os.getpid()))
    os.makedirs(mydir, exist_ok=True)
    rg = load_run_guest()
    t_start = time.monotonic()
    results = []
    passed = failed = 0
    try:
        for rep in range(repeat):
            for cell in cells:
                obs = {}
                for devname, device in DEVICES:
                    if args.device not in ("both", devname):
                        continue
                    log("%s: %s (%s) ..." % (cell.name, devname, cell.props))
                    obs[devname] = run_one(rg, cell, devname, device, args,
                                           args.out, rep)
                problems = []
                for devname in obs:
                    problems += ["%s: %s" % (devname, x) for x in check_alone(
                        cell, obs[devname], devname == "poll")]
                if len(obs) == 2:
                    problems += ["poll vs upstream: " + x for x in
                                 compare(cell, obs["poll"], obs["upstream"])]
                name = cell.name + ("#%d" % (rep + 1) if repeat > 1 else "")
                ok = not problems
                passed += ok
                failed += not ok
                mark = ""
                if not ok and cell.known and any(
                        "LOST INTERRUPT" in (o.get("hang") or "")
                        for o in obs.values()):
                    mark = " [KNOWN: %s]" % cell.known
                print("%s %s%s: %s" % ("PASS" if ok else "FAIL", name, mark,
                                       "; ".join("%s=%s" % (d, brief(o))
                                                 for d, o in obs.items())),
                      flush=True)
                for x in problems:
                    print("    %s" % x, flush=True)
                results.append(dict({"cell": name, "policy": cell.policy,
                                     "props": cell.props, "what": cell.what,
                                     "pass": ok, "problems": problems,
                                     "known": mark.strip(" []") or None},
                                    **obs))
    finally:
        cleanup_dir(mydir, os.getpid())
        elapsed = round(time.monotonic() - t_start, 1)
        summary = {r["cell"]: dict({"pass": r["pass"]}, **{
            d: {"faults": r[d]["block_io_errors"],
                "actions": r[d]["actions"],
                "operations": r[d]["operations"],
                "io_error_stops": r[d]["io_error_stops"],
                "stops_survived": r[d]["resumes_after_stop"],
                "pauses": r[d]["pauses"],
                "fio_errors": r[d]["fio_errors"],
                "verify_errors": r[d]["verify_errors"],
                "guest_dmesg_io_errors": r[d]["dmesg_ioerr"],
                "path": r[d].get("path"), "fast_rw": r[d].get("fast_rw"),
                "fallback_rw": r[d].get("fallback_rw"),
                "hang": r[d]["hang"], "run_s": r[d]["wall_s"]}
            for d, _ in DEVICES if d in r}) for r in results}
        with open(os.path.join(args.out, "faults.json"), "w") as f:
            json.dump({"elapsed_s": elapsed, "passed": passed,
                       "failed": failed, "summary": summary,
                       "cells": results}, f, indent=1)

    fmt = "%-20s %-8s %-9s %6s %-7s %7s %7s %7s %6s %6s"
    print()
    print(fmt % ("cell", "device", "path", "faults", "action", "stops",
                 "fio-err", "verify", "dmesg", "run_s"))
    for r in results:
        for devname, _ in DEVICES:
            o = r.get(devname)
            if o is None:
                continue
            path = o.get("path") or ["-"]
            path = "io_uring" if path == ["io_uring"] else \
                "-" if path == ["-"] else "fallback"
            print(fmt % (r["cell"] if devname == list(
                d for d, _ in DEVICES if d in r)[0] else "", devname,
                         path, o["block_io_errors"],
                         ",".join(o["actions"]) or "-",
                         "%dp" % o["pauses"] if o.get("pauses") else
                         "%d/%d" % (o["resumes_after_stop"],
                                    o["io_error_stops"]),
                         o["fio_errors"], o["verify_errors"],
                         o["dmesg_ioerr"], o["wall_s"]))
    print("(faults: BLOCK_IO_ERROR events, throttled by QEMU to 1/s unless "
          "the action is stop; stops: survived (resumed)/io-error stops, "
          "Np: N QMP stop/cont by the script; fio-err: guest I/O errors; "
          "dmesg: guest kernel 'I/O error' lines, rate limited)")
    print("total %.0f s; results in %s" % (elapsed, os.path.join(
        args.out, "faults.json")))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print("faults: interrupted (%s)" % e, file=sys.stderr)
        print("0 passed, 1 failed")
        sys.exit(1)
