"""The host side of test_faults.py: error sources under a disk (an image
on a small tmpfs, loop devices, blkdebug rules), the controller that
heals them at each VM stop over QMP, and the cleanup of what a killed
run left (QEMU, loop devices, mounts under /tmp/vbp-faults/PID)."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time

from vbp_test import checks, qmp

WORK_ROOT = "/tmp/vbp-faults"        # mounts and images, one dir per run
FS_NAME = "vbp-faults"               # source name of our tmpfs mounts
MiB = 1024 * 1024
MAX_STOPS = 40                       # a fault that never heals: give up


def log(msg):
    checks.log("faults", msg)


def sh(*argv, check=True):
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.strip()))
    return p.stdout.strip()


# ------------------------------------------------ mounts, loops, leftovers
def losetup(backing):
    """A free loop device on backing (retries the race with other users
    of losetup -f)."""
    for attempt in range(10):
        p = subprocess.run(["losetup", "-f", "--show", backing],
                           capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.strip()
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError("losetup -f %s: %s" % (backing, p.stderr.strip()))


def marker(pid):
    """A secret object on the command line of the QEMUs of run pid."""
    return "secret,id=vbp-faults-%d,data=x" % pid


def kill_qemus(pid):
    """The QEMU processes of our run pid: SIGTERM, then SIGKILL."""
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"qemu-system" not in argv[0] or \
                marker(pid).encode() not in argv:
            continue
        log("killing leftover QEMU %s of run %d" % (p, pid))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(p), sig)
            for _ in range(50):
                if not os.path.exists("/proc/" + p):
                    break
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(p), os.WNOHANG)   # if it is our child
                time.sleep(0.1)


def cleanup(path, quiet=False):
    """Under path: loop devices over its files and those stacked on them
    (upper ones first), our tmpfs mounts (deepest first), the files."""
    try:
        loops = json.loads(sh("losetup", "-J", "-l") or "{}")
    except (RuntimeError, ValueError):
        loops = {}
    loops = loops.get("loopdevices", [])
    lower = {lo["name"] for lo in loops
             if (lo.get("back-file") or "").startswith(path + "/")}
    upper = {lo["name"] for lo in loops
             if (lo.get("back-file") or "").split(" ")[0] in lower}
    for dev in sorted(upper) + sorted(lower):
        sh("blockdev", "--setrw", dev, check=False)
        sh("losetup", "-d", dev, check=False)
        if not quiet:
            log("detached leftover %s" % dev)
    with open("/proc/self/mounts") as f:
        mounts = [m.encode().decode("unicode_escape") for s, m in
                  (line.split()[:2] for line in f) if s == FS_NAME]
    for mnt in sorted(mounts, key=len, reverse=True):
        if (mnt + "/").startswith(path + "/"):
            sh("umount", mnt, check=False)
            if os.path.ismount(mnt):
                sh("umount", "-l", mnt, check=False)
    shutil.rmtree(path, ignore_errors=True)


def cleanup_leftovers():
    """Runs of this script that were killed: their QEMU, loops, mounts."""
    for name in os.listdir(WORK_ROOT) if os.path.isdir(WORK_ROOT) else []:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError), \
                open("/proc/%s/cmdline" % name, "rb") as f:
            if b"faults.py" in f.read():
                continue                  # another run, still going
        log("cleaning up after the earlier run %s" % name)
        kill_qemus(int(name))
        cleanup(os.path.join(WORK_ROOT, name))


# --------------------------------------------------------- error sources
def raw_over(path, driver="file", blkdebug=None):
    """-blockdev disk0: raw over a file or host_device node @path (under
    a blkdebug node with rules @blkdebug if not None)."""
    cache = {"direct": True, "no-flush": False}
    node = {"driver": driver, "filename": path, "aio": "io_uring",
            "cache": cache}
    if blkdebug is not None:
        node = {"driver": "blkdebug", "image": node}
        if blkdebug:
            node["inject-error"] = blkdebug
    return {"driver": "raw", "node-name": "disk0", "file": node,
            "cache": cache}


class Source:
    """One error source, set up afresh for every guest run: setup()
    returns the -blockdev; arm() switches the fault on before the guest
    starts; at a stop heal() makes the stopped requests succeed on
    replay (False: it cannot); rearm() injects it again after a cont."""
    path = "fast"              # which virtio-blk-poll path must serve
    exact = True               # counts do not depend on timing
    stops_exact = True         # stops do not depend on timing (+-2)
    burn = 0                   # CPU hogs on the host during the run
    rearms = 0                 # faults injected again after a cont
    rearm_delay = 0.3
    pauses = 0                 # QMP stop/cont cycles during the job

    def __init__(self, workdir, img=64 * MiB):
        self.workdir, self.img, self.notes = workdir, img, []

    def image(self, fs=None):
        """A sparse image of img bytes on a tmpfs of its own of fs bytes
        (img + 16M by default); returns its path."""
        self.mnt = os.path.join(self.workdir, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" %
           (fs or self.img + 16 * MiB), FS_NAME, self.mnt)
        path = os.path.join(self.mnt, "disk.raw")
        with open(path, "wb") as f:
            f.truncate(self.img)
        return path

    def setup(self):
        return raw_over(self.image())

    def arm(self):
        pass

    def heal(self, nstop):
        return True

    def rearm(self):
        pass

    def teardown(self):
        cleanup(self.workdir, quiet=True)


class Enospc(Source):
    """A sparse image bigger than the small tmpfs it lives on; with loop,
    behind a loop device (host_device node) that merges nothing."""
    exact = False

    def __init__(self, workdir, fs=8 * MiB, img=64 * MiB, grow=8 * MiB,
                 max_fs=128 * MiB, loop=False):
        super().__init__(workdir, img)
        self.size, self.grow, self.max_fs, self.loop = fs, grow, max_fs, loop

    def setup(self):
        path = self.image(self.size)
        if not self.loop:
            return raw_over(path)
        dev = losetup(path)
        # one loop request per QEMU write: a short write's tail is lost
        with open("/sys/block/%s/queue/nomerges" % os.path.basename(dev),
                  "w") as f:
            f.write("2\n")
        return raw_over(dev, "host_device")

    def heal(self, nstop):
        if self.size + self.grow > self.max_fs:
            return False
        self.size += self.grow
        sh("mount", "-o", "remount,size=%d" % self.size, self.mnt)
        self.notes.append("tmpfs grown to %dM" % (self.size // MiB))
        return True


class LoopEio(Source):
    """/dev/loopU over /dev/loopL over a file on tmpfs; loopL read-only
    makes loopU's writes fail with EIO (armed from the start)."""

    def __init__(self, workdir, rearms=0):
        super().__init__(workdir)
        self.rearms = rearms
        self.stops_exact = not rearms     # re-armed on a timer

    def setup(self):
        self.lower = losetup(self.image())
        upper = losetup(self.lower)
        self.notes.append("%s over %s" % (upper, self.lower))
        return raw_over(upper, "host_device")

    def rearm(self):
        sh("blockdev", "--setro", self.lower)

    def heal(self, nstop):
        sh("blockdev", "--setrw", self.lower)
        return True
    arm = rearm


class Pause(Source):
    """No fault: the VM is stopped and resumed (QMP stop, cont) again and
    again while fio runs; with fallback, raw over a blkdebug node without
    rules, which makes virtio-blk-poll use the block layer."""
    pauses, pause_interval, burn = 30, 0.15, 2

    def __init__(self, workdir, fallback=False):
        super().__init__(workdir, 128 * MiB)
        self.fallback = fallback
        self.path = "fallback" if fallback else "fast"

    def setup(self):
        return raw_over(self.image(), blkdebug=[] if self.fallback else None)


class Blkdebug(Source):
    """raw over blkdebug over a file: EIO (or errno) at fixed sectors."""
    path = "fallback"

    def __init__(self, workdir, wsectors=(), rsectors=(), once=False,
                 errno=5, burn=0):
        super().__init__(workdir)
        self.rules = [{"event": io + "_aio", "iotype": io, "errno": errno,
                       "sector": s, "once": once}
                      for io, sectors in (("write", wsectors),
                                          ("read", rsectors))
                      for s in sectors]
        self.burn = burn

    def setup(self):
        return raw_over(self.image(), blkdebug=self.rules)


# ------------------------------------------------------------ controller
class Controller(threading.Thread):
    """Watches the QMP events of one guest run (second monitor, from
    runner.run's on_start on); at each io-error stop heals the fault and
    sends cont; injects it again after a cont if the source wants
    (rearms); stops and resumes the VM while a job runs (pauses)."""

    def __init__(self, source, verbose=False):
        super().__init__(daemon=True)
        self.source, self.verbose = source, verbose
        self.done, self.started = threading.Event(), threading.Event()
        self.qemu, self.error = None, None
        self.events = []              # {t, event, data}
        self.stops = []               # {t, n: its index in events, status}
        self.rearmed = self.pauses = self.console_pos = 0
        self.in_job = False

    def attach(self, qemu):
        self.qemu = qemu
        self.started.set()

    def blocks(self):
        """The guest's result blocks {job: {section: lines}}."""
        return self.qemu.console.blocks if self.qemu else {}

    def _job_running(self):
        lines = self.qemu.console.text(self.console_pos)
        self.console_pos += len(lines)
        for line in lines:
            if line.startswith("===VBP-READY ") and "dmesg" not in line:
                self.in_job = True
            elif line.startswith("===VBP-DONE "):
                self.in_job = False
        return self.in_job

    def run(self):
        try:
            while not self.started.wait(0.1):
                if self.done.is_set():
                    return
            mon = qmp.QMP(self.qemu.sock("qmp-user"), 30)   # this thread's
            try:
                self._watch(mon)
            finally:
                mon.close()
        except Exception as e:        # noqa: BLE001 (reported, not raised)
            if not self.done.is_set():
                self.error = "controller: %s: %s" % (type(e).__name__, e)

    def _watch(self, mon):
        rearm_at, t0, next_pause, seen = None, time.monotonic(), 0, 0
        while True:
            # QEMU gone or the run over: what is left to read, then out
            end = self.done.is_set() or self.qemu.proc.poll() is not None
            try:
                mon.wait_event("STOP", 0.01 if end else 0.05, since=seen)
            except qmp.Error:
                return
            new = mon.events[seen:]
            seen += len(new)
            now = time.monotonic()
            if rearm_at and now >= rearm_at:
                rearm_at = None
                self.rearmed += 1
                self.source.rearm()
                if self.verbose:
                    log("fault injected again (%d)" % self.rearmed)
            if self.pauses < self.source.pauses and now >= next_pause \
                    and self._job_running():
                mon.cmd("stop")
                time.sleep(0.05)
                mon.cmd("cont")
                self.pauses += 1
                next_pause = time.monotonic() + self.source.pause_interval
            if not new and end:
                return
            for ev in new:
                self.events.append({"t": round(ev["t"] - t0, 3), "event":
                                    ev["event"], "data": ev.get("data", {})})
                if ev["event"] != "STOP":
                    continue
                status = mon.cmd("query-status").get("status")
                self.stops.append({"t": self.events[-1]["t"], "status":
                                   status, "n": len(self.events) - 1})
                if status != "io-error":
                    continue
                if len(self.stops) > MAX_STOPS or \
                        not self.source.heal(len(self.stops)):
                    self.error = "fault did not heal after %d stops: " \
                        "quit" % len(self.stops)
                    mon.cmd("quit")
                    return
                time.sleep(0.05)
                mon.cmd("cont")
                self.stops[-1]["cont"] = True
                if self.verbose:
                    log("stop %d (io-error) healed, cont" % len(self.stops))
                if self.rearmed < self.source.rearms:
                    rearm_at = time.monotonic() + self.source.rearm_delay

    def finish(self):
        self.done.set()
        if self.ident:
            self.join(15)
