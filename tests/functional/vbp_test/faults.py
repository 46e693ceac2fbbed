"""The host side of test_faults.py: error sources under the disk (an image
on a small tmpfs, loop devices, blkdebug rules), the controller that heals
them at each VM stop over QMP, and the cleanup of the loop devices and
mounts a killed run left under /tmp/vbp-faults/PID (its QEMU died with it:
machine.Qemu)."""
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time

from vbp_test import checks, machine, qmp

WORK_ROOT = "/tmp/vbp-faults"        # mounts and images, one dir per run
FS_NAME = "vbp-faults"               # source name of our tmpfs mounts
MiB = 1024 * 1024
MAX_STOPS = 40                       # a fault that never heals: give up
PAUSE_INTERVAL = 0.15                # between QMP stop/cont cycles


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
    p = machine.until(lambda: subprocess.run(
        ["losetup", "-f", "--show", backing], capture_output=True,
        text=True), lambda p: p.returncode == 0, 10, 0.5)
    if p.returncode:
        raise RuntimeError("losetup -f %s: %s" % (backing, p.stderr.strip()))
    return p.stdout.strip()


def cleanup(path, quiet=False):
    """Under path: loop devices over its files and those stacked on them
    (upper ones first), our tmpfs mounts (deepest first), the files."""
    loops = json.loads(sh("losetup", "-J", "-l", check=False) or "{}")
    back = {lo["name"]: (lo.get("back-file") or "").split(" ")[0]
            for lo in loops.get("loopdevices", [])}
    lower = {dev for dev, f in back.items() if f.startswith(path + "/")}
    upper = {dev for dev, f in back.items() if f in lower}
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
            sh("umount", "-l", mnt, check=False)   # even if still busy
    shutil.rmtree(path, ignore_errors=True)


def cleanup_leftovers():
    """The loops and mounts of runs of this script that were killed."""
    for name in os.listdir(WORK_ROOT) if os.path.isdir(WORK_ROOT) else []:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError), \
                open("/proc/%s/cmdline" % name, "rb") as f:
            if b"faults.py" in f.read():
                continue                  # another run, still going
        log("cleaning up after the earlier run %s" % name)
        cleanup(os.path.join(WORK_ROOT, name))


# --------------------------------------------------------- error sources
class FaultSource:
    """One error source, set up afresh for every guest run: setup()
    returns the -blockdev; arm() switches the fault on before the guest
    starts; at a stop heal() makes the stopped requests succeed on replay
    (False: it cannot); rearm() injects it again after a cont.  Here no
    fault: an image on a tmpfs, under blkdebug with @rules unless None
    (the block layer path); @burn CPU hogs on the host during the run,
    @pauses QMP stop/cont cycles while a job runs."""
    exact = True               # counts do not depend on timing
    stops_exact = True         # stops do not depend on timing (+-2)
    rearms = 0                 # faults injected again after a cont
    rearm_delay = 0.3

    def __init__(self, workdir, img=64 * MiB, rules=None, burn=0,
                 pauses=0):
        self.workdir, self.img, self.rules = workdir, img, rules
        self.burn, self.pauses, self.notes = burn, pauses, []
        self.path = "fast" if rules is None else "fallback"

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

    def blockdev(self, path, driver="file"):
        """-blockdev disk0: raw over a file or host_device node @path."""
        cache = {"direct": True, "no-flush": False}
        node = {"driver": driver, "filename": path, "aio": "io_uring",
                "cache": cache}
        if self.rules is not None:
            node = {"driver": "blkdebug", "image": node}
            if self.rules:
                node["inject-error"] = self.rules
        return {"driver": "raw", "node-name": "disk0", "file": node,
                "cache": cache}

    def setup(self):
        return self.blockdev(self.image())

    def arm(self):
        pass

    def heal(self):
        return True

    rearm = arm


class Enospc(FaultSource):
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
            return self.blockdev(path)
        dev = losetup(path)
        # one loop request per QEMU write: a short write's tail is lost
        with open("/sys/block/%s/queue/nomerges" % os.path.basename(dev),
                  "w") as f:
            f.write("2\n")
        return self.blockdev(dev, "host_device")

    def heal(self):
        if self.size + self.grow > self.max_fs:
            return False
        self.size += self.grow
        sh("mount", "-o", "remount,size=%d" % self.size, self.mnt)
        self.notes.append("tmpfs grown to %dM" % (self.size // MiB))
        return True


class LoopEio(FaultSource):
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
        return self.blockdev(upper, "host_device")

    def rearm(self):
        sh("blockdev", "--setro", self.lower)

    def heal(self):
        sh("blockdev", "--setrw", self.lower)
        return True
    arm = rearm


class Blkdebug(FaultSource):
    """raw over blkdebug over a file: EIO (or errno) at fixed sectors."""

    def __init__(self, workdir, wsectors=(), rsectors=(), once=False,
                 errno=5, burn=0):
        super().__init__(workdir, burn=burn, rules=[
            {"event": io + "_aio", "iotype": io, "errno": errno,
             "sector": s, "once": once}
            for io, sectors in (("write", wsectors), ("read", rsectors))
            for s in sectors])


# ------------------------------------------------------------ controller
class Controller(threading.Thread):
    """Watches the QMP events of one guest run (second monitor, started
    by runner.run's on_start); at each io-error stop heals the fault and
    sends cont; injects it again after a cont if the source wants
    (rearms); stops and resumes the VM while a job runs (pauses)."""

    def __init__(self, source, verbose=False):
        super().__init__(daemon=True)
        self.source, self.verbose = source, verbose
        self.done = threading.Event()
        self.qemu = self.error = self.rearm_at = None
        self.events = []              # {t, event, data}
        self.stops = []               # {n: its index in events, status}
        self.rearmed = self.pauses = 0

    def attach(self, qemu):
        self.qemu = qemu
        self.start()

    def _job_running(self):
        """A fio job (not the dmesg one) is between READY and DONE."""
        con = self.qemu.console
        ready = [i for i, _, name in con.markers("READY") if name != "dmesg"]
        done = [i for i, _, _ in con.markers("DONE")]
        return max(ready, default=-1) > max(done, default=-1)

    def run(self):
        try:
            mon = qmp.QMP(self.qemu.sock("qmp-user"), 30)   # this thread's
            try:
                self._watch(mon)
            finally:
                mon.close()
        except Exception as e:        # noqa: BLE001 (reported, not raised)
            if not self.done.is_set():
                self.error = "controller: %s: %s" % (type(e).__name__, e)

    def _watch(self, mon):
        t0, next_pause = time.monotonic(), 0
        while True:
            # QEMU gone or the run over: what is left to read, then out
            end = self.done.is_set() or self.qemu.proc.poll() is not None
            try:
                mon.wait_event("STOP", 0.01 if end else 0.05,
                               since=len(self.events))
            except qmp.Error:
                return
            new = mon.events[len(self.events):]
            now = time.monotonic()
            if self.rearm_at and now >= self.rearm_at:
                self.rearm_at = None
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
                next_pause = time.monotonic() + PAUSE_INTERVAL
            if not new and end:
                return
            for ev in new:
                self.events.append({"t": round(ev["t"] - t0, 3), "event":
                                    ev["event"], "data": ev.get("data", {})})
                if ev["event"] == "STOP" and not self._stopped(mon):
                    return

    def _stopped(self, mon):
        """At a STOP: on an I/O error, heals and sends cont; False when
        the fault did not heal (QEMU told to quit)."""
        status = mon.cmd("query-status").get("status")
        self.stops.append({"status": status, "n": len(self.events) - 1})
        if status != "io-error":
            return True
        if len(self.stops) > MAX_STOPS or not self.source.heal():
            self.error = "fault did not heal after %d stops: quit" % len(
                self.stops)
            mon.cmd("quit")
            return False
        time.sleep(0.05)
        mon.cmd("cont")
        self.stops[-1]["cont"] = True
        if self.verbose:
            log("stop %d (io-error) healed, cont" % len(self.stops))
        if self.rearmed < self.source.rearms:
            self.rearm_at = time.monotonic() + self.source.rearm_delay
        return True

    def finish(self):
        self.done.set()
        if self.ident:
            self.join(15)
