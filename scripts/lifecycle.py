#!/usr/bin/python3
"""Lifecycle tests: VM and device lifecycle events under fio verify.

virtio-blk-poll must keep the data and keep running through stop/cont,
savevm/loadvm, block jobs, a guest driver reload and hot-unplug while a
Linux guest (TCG) runs fio with verify=crc32c.

Each case boots the test guest (scripts/guest/run-guest.py, used as a
library) once.  The guest runs fio rounds (4k randwrite, verify=crc32c,
do_verify, verify_fatal, a fresh random seed per round) until the host
writes "stop" on the guest's second serial port (ttyS1, a socket chardev
this script adds); meanwhile the host drives the event through the free
QMP socket (<run dir>/qmp-user.sock):

  stopcont  stop/cont in a loop (default 20) at random 0.1-0.8 s
            intervals; before each stop the device's stats say whether a
            queue is polling (cycles that caught one are counted, at least
            one must), and the device must take and complete no request
            while the VM is stopped
  savevm    qcow2 image; HMP savevm snapN / loadvm snapN (default 3) while
            fio runs: the guest and its disk rewind together; after each
            loadvm a fio round must end verified
  drain     raw image on the io_uring path: block_resize (+64M; the path
            must be io_uring again after it), then blockdev-mirror to a
            new raw file (sync=full, BLOCK_JOB_READY, job-complete: the
            device pivots to the target), then blockdev-snapshot-sync onto
            a qcow2 overlay; the stats path must be a fallback reason while
            the job runs, "io_uring" again after the pivot to the raw
            target, and a fallback reason (qcow2) after the snapshot; a fio
            round must start before the pivot and verify after it
  reload    in the guest (default 3 times): fio in the background on the
            disk, unbind the virtio device from virtio_blk while I/O is in
            flight, bind it again, run a fresh fio verify job on the
            re-probed disk (the background fio may fail: its disk vanished)
  unplug    disk on a pcie-root-port, the device's own IOThread; the guest
            runs fio rounds on whatever /dev/vd* exists; after a verified
            round: device_del, DEVICE_DELETED, count QEMU's threads and
            fds (equal after every unplug, the device's "IO vbp-pollN"
            thread gone), device_add with the same properties, wait for
            the guest's I/O and a verified round on it; default 3 cycles,
            ACPI hotplug (--pciehp: the guest's native PCIe hotplug, 5 s
            per unplug)

Where the disk vanishes under fio (unplug, reload) fio uses psync: fio
3.33's async engines "verify" the stale buffer of a 0-byte read, which is
what a read past the capacity the guest set to 0 returns (see fio_job()).

Every case also needs: QEMU alive and answering QMP throughout, the fio
rounds that ran undisturbed ok with 0 verify errors, and no BUG, Oops,
WARNING or "not a head" in the guest kernel's log (printed by a last
job) or on its console.  With --qemu pointing at an ASan build (e.g.
build/qemu/build-fuzz/qemu-system-x86_64) ASAN_OPTIONS=detect_leaks=0 is
set unless given, and "ERROR: AddressSanitizer" or "runtime error:" on
QEMU's stderr fails the case.

Prints a line per case (PASS case: details / FAIL case: reason), a table
of figures (cycles, cycles that caught a queue polling, verify errors,
I/Os completed, unplug fd/thread counts), and "N passed, N failed" last;
exits 1 if a case failed.  All figures go to DIR/lifecycle.json; run
directories (serial.log, qemu.stderr) to DIR/runs/.
Usage: scripts/lifecycle.py [--only CASE[,CASE]] [--cycles N|CASE=N,...]
                            [--qemu PATH] [--pciehp] [--seed N] [--out DIR]
The default run takes about 4 minutes on the 2-core machine with other
jobs running (load 7), less when it is idle; --cycles N runs N cycles in
every case (drain: N resize/mirror/pivot rounds), --cycles unplug=10 in
one.
"""

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from qmp import QMP  # noqa: E402  (scripts/qmp.py)

_spec = importlib.util.spec_from_file_location(
    "run_guest", os.path.join(TOP, "scripts", "guest", "run-guest.py"))
rg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rg)

DEV = "/machine/peripheral/disk0"
CASES = ("stopcont", "savevm", "drain", "reload", "unplug")
DEFAULT_CYCLES = {"stopcont": 20, "savevm": 3, "drain": 1, "reload": 3,
                  "unplug": 3}
OOPS = re.compile(r"\bBUG\b|\bOops\b|\bWARNING\b|not a head")

# ------------------------------------------------------------ guest side
# fio job of one round; the disk comes from the environment (fio expands
# ${VAR} in job files).  Several jobs on disjoint parts, so that both
# vCPUs, hence both virtqueues, carry I/O.  randrepeat=0: every round
# writes other data, so a write lost in round N cannot hide behind round
# N-1's.
#
# Where the disk can vanish under fio (unplug, unbind) the rounds use
# psync: after the guest's del_gendisk() set the capacity to 0, reads
# return 0 bytes, and fio 3.33's async engines (io_uring, libaio) then
# "verify" the stale buffer (io_completed() skips its short-I/O branch
# for 0 bytes and calls the verify hook), which reports bogus "bad
# header" errors; the sync engines fail a 0-byte read with EIO ("full
# resid").  So with psync every verify error is a real mismatch.
def fio_job(size_mb, engine="io_uring", iodepth=16, numjobs=2):
    each = "%dM" % (size_mb // numjobs)
    return """[global]
filename=${VBP_DISK}
direct=1
ioengine=%s
bs=4k
iodepth=%d
randrepeat=0
rw=randwrite
verify=crc32c
do_verify=1
verify_fatal=1
size=%s
offset_increment=%s
numjobs=%d

[round]
""" % (engine, iodepth, each, each, numjobs)


# /job/loop.sh NAME JOBFILE [any]: fio rounds until the host writes "stop"
# on ttyS1.  Progress markers go to the console (the host timestamps
# them), results to stdout (vbp_cmd's stdout section).  "any": run on
# whatever /dev/vd* exists, waiting while there is none (hot-unplug).
LOOP_SH = r"""
name=$1 job=$2 mode=$3
ctl=/tmp/vbp/$name.ctl
con=/dev/ttyS0
: >"$ctl"
stty -F /dev/ttyS1 raw -echo 2>/dev/null
cat /dev/ttyS1 >>"$ctl" 2>/dev/null &
catpid=$!
echo "===VBP-LOOP-START $name===" >$con
k=0
last=
while ! grep -q stop "$ctl"; do
    dev=/dev/vda
    if [ "$mode" = any ]; then
        dev=
        for d in /sys/block/vd*; do
            [ -b "/dev/${d##*/}" ] && { dev=/dev/${d##*/}; break; }
        done
        if [ -z "$dev" ]; then usleep 100000; continue; fi
    fi
    k=$((k + 1))
    out=/tmp/vbp/$name.r$k
    echo "===VBP-ROUND $name $k $dev t=$(cut -d' ' -f1 /proc/uptime)===" >$con
    VBP_DISK=$dev fio --output-format=json --output="$out.json" \
        --eta=never "$job" 2>"$out.err"
    rc=$?
    ios=$(grep '"total_ios"' "$out.json" 2>/dev/null | tr -dc '0-9\n' |
          awk '{s += $1} END {print s + 0}')
    err=$(grep '"error"' "$out.json" 2>/dev/null | tr -dc '0-9\n' |
          awk '$1 > m {m = $1} END {print m + 0}')
    ver=$(grep -c -E 'verify failed|^verify:|bad magic|bad header' "$out.err")
    echo "===VBP-ROUND-END $name $k rc=$rc ios=$ios error=$err verify=$ver" \
         "t=$(cut -d' ' -f1 /proc/uptime)===" >$con
    echo "ROUND $k dev=$dev rc=$rc ios=$ios error=$err verify=$ver"
    sed "s/^/ROUND-ERR $k: /" "$out.err" | head -n 20
    if [ "$rc" = 0 ]; then
        [ -n "$last" ] && rm -f "$last"
        last=$out.json
    else
        rm -f "$out.json"
    fi
    rm -f "$out.err"
done
kill $catpid 2>/dev/null
[ -n "$last" ] && cp "$last" "/tmp/vbp/$name.json"
echo "LOOP-END rounds=$k"
"""

# /job/reload.sh NAME: fio in the background, unbind the disk's virtio
# device from virtio_blk while its I/O is in flight, bind it again, wait
# for the re-probed disk and point /dev/vbpdisk at it.
RELOAD_SH = r"""
name=$1
drv=/sys/bus/virtio/drivers/virtio_blk
first_disk() {
    for d in /sys/block/vd*; do
        [ -e "$d/device" ] && { echo "${d##*/}"; return; }
    done
}
disk=$(first_disk)
[ -n "$disk" ] || { echo "RELOAD no disk"; exit 1; }
vdev=$(basename "$(readlink "/sys/block/$disk/device")")
echo "RELOAD disk=$disk virtio=$vdev"
bg=/tmp/vbp/$name.bg
VBP_DISK=/dev/$disk fio --output-format=json --output="$bg.json" \
    --eta=never /job/bg.fio 2>"$bg.err" &
fiopid=$!
# fio takes a while to start under TCG: wait for its writes, then 1 s more
w0=$(awk '{print $5}' "/sys/block/$disk/stat")
i=0
while [ "$(awk '{print $5}' "/sys/block/$disk/stat")" -lt $((w0 + 200)) ]; do
    i=$((i + 1))
    [ $i -gt 300 ] && { echo "RELOAD bg fio does no I/O"; break; }
    usleep 100000
done
sleep 1
w1=$(awk '{print $5}' "/sys/block/$disk/stat")
inf=$(awk '{print $1 + $2}' "/sys/block/$disk/inflight")
echo "RELOAD writes-before-unbind=$((w1 - w0)) inflight-before-unbind=$inf"
t0=$(cut -d' ' -f1 /proc/uptime)
echo "$vdev" >"$drv/unbind"
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
echo "RELOAD unbind-rc=$rc t=$t0..$t1 disks-after=$(ls /sys/block | tr '\n' ,)"
i=0
while kill -0 $fiopid 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
        echo "RELOAD bg-fio-stuck: killing it"
        kill -9 $fiopid
        break
    fi
    usleep 100000
done
wait $fiopid
echo "RELOAD bg-rc=$?"
ios=$(grep '"total_ios"' "$bg.json" 2>/dev/null | tr -dc '0-9\n' |
      awk '{s += $1} END {print s + 0}')
ver=$(grep -c -E 'verify failed|^verify:|bad magic|bad header' "$bg.err")
echo "RELOAD bg-ios=$ios bg-verify=$ver"
sed 's/^/RELOAD-BG-ERR: /' "$bg.err" | head -n 10
echo "$vdev" >"$drv/bind"
echo "RELOAD bind-rc=$?"
i=0
new=
while [ -z "$new" ]; do
    new=$(first_disk)
    [ -n "$new" ] && [ -b "/dev/$new" ] && break
    new=
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "RELOAD no disk after bind"; exit 1; }
    usleep 100000
done
ln -sf "/dev/$new" /dev/vbpdisk
echo '{"jobs": []}' >"/tmp/vbp/$name.json"     # no fio result of its own
echo "RELOAD rebound disk=$new" \
     "virtio=$(basename "$(readlink "/sys/block/$new/device")")" \
     "sectors=$(cat "/sys/block/$new/size")"
"""

# The guest's kernel log, last.  The empty JSON tells run-guest that the
# job has no fio output and no error (instead of "no fio output").
DMESG_JOB = ("dmesg", "vbp_cmd dmesg 60 -- sh /job/dmesg.sh", 60)
DMESG_SH = """dmesg
echo '{"jobs": []}' >/tmp/vbp/dmesg.json
"""

VERIFY_FIO = fio_job(64)
BG_FIO = fio_job(256, engine="psync", iodepth=1, numjobs=8)


# ------------------------------------------------------------ host side
class Failed(Exception):
    """A case failed; the message says why."""


def describe(e):
    """An exception as a reason: Failed's message, others with their type
    (a QMP command's error, a lost connection...)."""
    return str(e) if isinstance(e, Failed) else "%s: %s" % (
        type(e).__name__, e)


class Console:
    """Follows <run dir>/serial.log (written by run-guest's reader) and
    timestamps each line as it arrives."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.done = False
        self.lock = threading.Lock()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self):
        f = None
        buf = ""
        while not self.done:
            if f is None:
                try:
                    f = open(self.path, errors="replace")
                except OSError:
                    time.sleep(0.1)
                    continue
            chunk = f.read()
            if not chunk:
                time.sleep(0.05)
                continue
            buf += chunk
            *whole, buf = buf.split("\n")
            now = time.monotonic()
            with self.lock:
                self.lines.extend((now, line) for line in whole)
        if f:
            f.close()

    def markers(self, kind, since=0):
        """[(index, time, text)] of ===VBP-kind text=== lines."""
        out = []
        with self.lock:
            lines = self.lines[since:]
        for i, (t, line) in enumerate(lines, since):
            m = rg.MARK.search(line)
            if m and m.group(1) == kind:
                out.append((i, t, m.group(2) or ""))
        return out


def tracked_guest_class():
    """run-guest's Guest, telling the harness of the run about itself."""
    class TrackedGuest(rg.Guest):
        def __init__(self, cfg, rundir):
            super().__init__(cfg, rundir)
            h = getattr(cfg, "lc_harness", None)
            if h is not None:
                h.guest = self
    return TrackedGuest


_orig_make_initrd = rg.make_initrd
_orig_qemu_argv = rg.qemu_argv


def make_initrd(base, rundir, jobs, cfg):
    """run-guest's make_initrd, unless the harness brings its own /job."""
    files = getattr(cfg, "lc_files", None)
    if files is None:
        return _orig_make_initrd(base, rundir, jobs, cfg)
    path = os.path.join(rundir, "initrd")
    with open(path, "wb") as out, open(base, "rb") as f:
        w = rg.mkcpio.CpioWriter(out)
        w.add_dir("job")
        for name, text in sorted(files.items()):
            w.add_file("job/" + name, text.encode(),
                       0o755 if name.endswith(".sh") else 0o644)
        w.add_file("job/ndisks", b"1\n")
        w.close()
        shutil.copyfileobj(f, out)
    return path


def qemu_argv(cfg, meta, initrd, blockdev, device, iothreads):
    """run-guest's argv, plus ttyS1 on a socket (the host's "stop") and
    devices that must exist before the disk (a pcie-root-port)."""
    argv = _orig_qemu_argv(cfg, meta, initrd, blockdev, device, iothreads)
    if getattr(cfg, "lc_ctl", None):
        # run() made the run dir just now: the socket goes there
        cfg.lc_ctl = os.path.join(os.path.dirname(initrd), "ctl.sock")
    pre = getattr(cfg, "lc_pre_device", None)
    if pre:
        i = argv.index(json.dumps(device)) - 1       # its "-device"
        argv[i:i] = pre
    if getattr(cfg, "lc_ctl", None):
        argv += ["-chardev", "socket,id=vbpctl,path=%s,server=on,wait=off"
                 % cfg.lc_ctl, "-serial", "chardev:vbpctl"]
    return argv


rg.make_initrd = make_initrd
rg.qemu_argv = qemu_argv
rg.Guest = tracked_guest_class()


def total(stats, key):
    return sum(q.get(key, 0) for q in stats or [])


def paths(stats):
    return sorted({q.get("path") for q in stats or []})


class Harness:
    """One guest run: run-guest.run() in a thread, our own QMP connection
    (with events), the console followed, ttyS1 for "stop"."""

    started = []                          # every harness, for the clean-up

    def __init__(self, name, opts, args, jobs, files):
        Harness.started.append(self)
        self.thread = None
        self.name = name
        self.opts = opts
        self.jobs = jobs                  # [(name, shell line, timeout)]
        self.guest = None
        self.result = None
        self.qmp = None
        self.console = None
        self.ctl = None
        self.t0 = time.monotonic()
        run_root = os.path.join(opts.out, "runs")
        argv = ["--qemu", opts.qemu, "--run-root", run_root,
                "--smp", "2"] + args
        self.cfg = rg.parse_args(argv)
        self.cfg.jobs_inline = [{"name": n, "text": "", "timeout": t}
                                for n, _, t in jobs]
        script = ["# generated by scripts/lifecycle.py",
                  "for q in /sys/block/vd*/queue/scheduler; do "
                  "echo none > $q; done",
                  "export VBP_DISK=/dev/vda"]
        script += [line for _, line, _ in jobs]
        files = dict(files)
        files["dmesg.sh"] = DMESG_SH
        files["run.sh"] = "\n".join(script) + "\n"
        self.cfg.lc_files = files
        self.cfg.lc_harness = self
        self.cfg.lc_pre_device = None

    def start(self, boot_timeout=120):
        self.cfg.lc_ctl = True            # qemu_argv() puts it in the run dir
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while self.guest is None or self.guest.proc is None:
            if not self.thread.is_alive():
                raise Failed("run-guest ended before QEMU started: %s" %
                              (self.result or {}).get("error"))
            if time.monotonic() > deadline:
                raise Failed("QEMU did not start within 60 s")
            time.sleep(0.05)
        self.rundir = self.guest.rundir
        self.pid = self.guest.proc.pid
        self.console = Console(os.path.join(self.rundir, "serial.log"))
        self.qmp = QMP(os.path.join(self.rundir, "qmp-user.sock"),
                            timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.ctl.connect(os.path.join(self.rundir, "ctl.sock"))
                break
            except OSError:
                self.ctl.close()
                self.ctl = None
                if time.monotonic() > deadline:
                    raise Failed("cannot connect to the guest's ttyS1 socket")
                time.sleep(0.1)
        self.boot_deadline = time.monotonic() + boot_timeout

    def _run(self):
        try:
            self.result = rg.run(self.cfg)
        except rg.Failure as e:
            self.result = {"ok": False, "exit": e.code, "error": str(e),
                           "jobs": []}
        except Exception as e:            # noqa: BLE001 (reported)
            self.result = {"ok": False, "exit": 3, "jobs": [],
                           "error": "run-guest: %s: %s" %
                           (type(e).__name__, e)}

    # -- state
    def alive(self):
        """QEMU runs and answers QMP; returns query-status."""
        if self.guest.proc.poll() is not None:
            raise Failed("QEMU exited (status %s)" % self.guest.proc.poll())
        try:
            return self.qmp.cmd("query-status")
        except (OSError, ConnectionError, RuntimeError) as e:
            raise Failed("QMP does not answer: %s" % e) from None

    def stats(self, path=DEV):
        return self.qmp.cmd("qom-get", {"path": path, "property": "stats"})

    def wait_marker(self, kind, name, timeout, since=0):
        """Waits for ===VBP-kind name...=== on the console."""
        deadline = time.monotonic() + timeout
        while True:
            for i, t, text in self.console.markers(kind, since):
                if text == name or text.startswith(name + " "):
                    return i, t, text
            failed = self.console.markers("FAILED", since)
            if failed:
                raise Failed("guest failed: %s" % failed[0][2])
            if not self.thread.is_alive():
                raise Failed("run ended waiting for %s %s: %s" %
                             (kind, name, (self.result or {}).get("error")))
            if time.monotonic() > deadline:
                raise Failed("no ===VBP-%s %s=== within %ds" %
                             (kind, name, timeout))
            time.sleep(0.05)

    def wait_io(self, min_requests, timeout, path=DEV):
        """Waits until the device took min_requests more requests."""
        base = total(self.stats(path), "requests")
        deadline = time.monotonic() + timeout
        while True:
            self.alive()
            n = total(self.stats(path), "requests") - base
            if n >= min_requests:
                return n
            if time.monotonic() > deadline:
                raise Failed("only %d requests in %ds (wanted %d)" %
                             (n, timeout, min_requests))
            time.sleep(0.1)

    def wait_round_ok(self, loop, since, timeout, need_start=True):
        """Waits for a fio round of `loop` that started (or, without
        need_start, ended) at console line `since` or later to end well;
        returns its number."""
        deadline = time.monotonic() + timeout
        started = set()
        while True:
            for _, _, text in self.console.markers("ROUND", since):
                started.add(text.split()[1])
            for _, _, text in self.console.markers("ROUND-END", since):
                parts = text.split()
                if parts[0] == loop and \
                        (parts[1] in started or not need_start) and \
                        "rc=0" in parts and "verify=0" in parts:
                    return int(parts[1])
            self.alive()
            if time.monotonic() > deadline:
                raise Failed("no fio round passed within %ds" % timeout)
            time.sleep(0.1)

    def send_stop(self):
        self.ctl.sendall(b"stop\n")

    def finish(self, timeout):
        """Waits for run() to end (the guest powers off); kills QEMU if it
        is still there after `timeout`."""
        if self.thread is None:
            return {"ok": False, "exit": 3, "error": "not started",
                    "jobs": []}
        self.thread.join(timeout)
        if self.thread.is_alive() and self.guest and self.guest.proc:
            self.guest.proc.kill()
            self.thread.join(30)
        if self.console:
            self.console.done = True
        for s in (self.qmp, self.ctl):
            if s:
                s.close()
        return self.result or {"ok": False, "exit": 2, "error": "no result",
                               "jobs": []}

    def kill(self):
        if self.guest and self.guest.proc and self.guest.proc.poll() is None:
            self.guest.proc.kill()
        if self.thread and self.thread.is_alive():
            self.thread.join(30)

    # -- what the guest said
    def serial_lines(self):
        try:
            with open(os.path.join(self.rundir, "serial.log"),
                      errors="replace") as f:
                return f.read().splitlines()
        except (OSError, AttributeError):
            return []

    def job_block(self, name):
        """Sections of job `name`'s result block (the last one)."""
        lines = self.serial_lines()
        begin = end = None
        for i, line in enumerate(lines):
            m = rg.MARK.search(line)
            if m and m.group(2) == name:
                if m.group(1) == "BEGIN":
                    begin = i
                elif m.group(1) == "END" and begin is not None:
                    end = i
        if begin is None or end is None:
            return {}
        return rg.parse_block(lines[begin + 1:end])

    def job_stdout(self, name):
        return [line for line in self.job_block(name).get("stdout", [])
                if not rg.KMSG.match(line)]

    def rounds(self, name):
        """The loop's fio rounds: [{k, dev, rc, ios, error, verify}]."""
        out = []
        for line in self.job_stdout(name):
            m = re.match(r"ROUND (\d+) dev=(\S*) rc=(\d+) ios=(\d+) "
                         r"error=(\d+) verify=(\d+)", line)
            if m:
                out.append({"k": int(m.group(1)), "dev": m.group(2),
                            "rc": int(m.group(3)), "ios": int(m.group(4)),
                            "error": int(m.group(5)),
                            "verify": int(m.group(6))})
        return out

    def round_errors(self, name):
        return [line for line in self.job_stdout(name)
                if line.startswith("ROUND-ERR")]

    def kernel_problems(self):
        """Kernel log lines with BUG/Oops/WARNING/not a head, from the
        dmesg job and from the console."""
        bad = [line for line in self.job_block("dmesg").get("stdout", [])
               if OOPS.search(line)]
        bad += [line for line in self.serial_lines()
                if rg.KMSG.match(line) and OOPS.search(line) and
                line not in bad]
        return bad

    def qemu_stderr(self):
        try:
            with open(os.path.join(self.rundir, "qemu.stderr"),
                      errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""


# ----------------------------------------------------------------- checks
def common_checks(h, res, loop_job, problems, fig, strict_rounds=True):
    """What every case needs: the run ended well, the loop's rounds
    passed with 0 verify errors, no kernel problem, no ASan report."""
    rounds = h.rounds(loop_job) if loop_job else []
    fig["rounds"] = len(rounds)
    fig["rounds_failed"] = sum(1 for r in rounds if r["rc"] or r["error"])
    fig["verify_errors"] = fig.get("verify_errors", 0) + \
        sum(r["verify"] for r in rounds) + \
        sum(1 for r in rounds if r["error"] == 84)
    fig["ios"] = fig.get("ios", 0) + sum(r["ios"] for r in rounds)
    fig["run_exit"] = res.get("exit")
    fig["run_dir"] = res.get("run_dir")
    if res.get("exit") == 2 or res.get("exit") == 3:
        problems.append("run failed: %s" % res.get("error"))
    if loop_job:
        if not rounds:
            problems.append("the guest ran no fio round")
        elif strict_rounds and fig["rounds_failed"]:
            problems.append("%d of %d fio rounds failed: %s" % (
                fig["rounds_failed"], len(rounds),
                "; ".join(h.round_errors(loop_job)[:4])))
    if fig["verify_errors"]:
        problems.append("%d verify errors" % fig["verify_errors"])
    kp = h.kernel_problems()
    fig["kernel_problems"] = kp[:20]
    if kp:
        problems.append("guest kernel: %s" % kp[0].strip())
    err = h.qemu_stderr()
    asan = [line for line in err.splitlines()
            if "ERROR: AddressSanitizer" in line or "runtime error:" in line]
    fig["asan"] = asan[:10]
    if asan:
        problems.append("QEMU stderr: %s" % asan[0])
    if not h.job_block("dmesg"):
        problems.append("no dmesg from the guest (the run did not get to "
                        "its end)")


def loop_jobs(name, timeout):
    return [(name, "vbp_cmd %s %d -- sh /job/loop.sh %s /job/round.fio %s" %
             (name, timeout, name, "any" if name == "unplug" else "vda"),
             timeout),
            DMESG_JOB]


def loop_files(job):
    return {"loop.sh": LOOP_SH, "round.fio": job}


def case_stopcont(opts, fig):
    n = opts.cycles["stopcont"]
    rnd = random.Random(opts.seed)
    timeout = 120 + 3 * n
    h = Harness("stopcont", opts,
                ["--device", "poll", "--iothreads", "2", "--num-queues", "2",
                 "--backend", "raw", "--disk-size", "256M"],
                loop_jobs("stopcont", timeout), loop_files(fio_job(64)))
    problems = []
    try:
        h.start()
        h.wait_marker("LOOP-START", "stopcont", 120)
        h.wait_io(500, 60)
        fig["path"] = paths(h.stats())
        caught = 0
        with_io = 0
        samples = [0, 0]
        stopped_reqs = []
        stop_ms = []
        last = total(h.stats(), "requests")
        for i in range(n):
            time.sleep(rnd.uniform(0.1, 0.8))
            # Is a queue in its polling phase right before the stop?  A
            # few looks (a phase lasts from a kick to 200 us without work,
            # and under TCG the main loop competes with the vCPUs).
            for _ in range(10):
                st = h.stats()
                samples[1] += 1
                if any(q.get("polling") for q in st):
                    samples[0] += 1
                    caught += 1
                    break
                time.sleep(0.01)
            if total(st, "requests") > last:
                with_io += 1
            t = time.monotonic()
            h.qmp.cmd("stop")
            stop_ms.append((time.monotonic() - t) * 1000)
            s1 = h.stats()
            if h.alive()["running"]:
                raise Failed("cycle %d: still running after stop" % i)
            time.sleep(rnd.uniform(0.1, 0.8))
            s2 = h.stats()
            stopped_reqs.append((total(s2, "requests") -
                                 total(s1, "requests"),
                                 total(s2, "completions") -
                                 total(s1, "completions")))
            last = total(s2, "requests")
            h.qmp.cmd("cont")
            if not h.alive()["running"]:
                raise Failed("cycle %d: not running after cont" % i)
            fig["cycles"] = i + 1
        fig["cycles_polling"] = caught
        fig["cycles_with_io"] = with_io
        fig["polling_samples"] = "%d/%d" % tuple(samples)
        fig["stop_ms_max"] = round(max(stop_ms), 1)
        fig["stop_ms_mean"] = round(sum(stop_ms) / len(stop_ms), 1)
        fig["requests_while_stopped"] = sum(r for r, _ in stopped_reqs)
        fig["completions_while_stopped"] = sum(c for _, c in stopped_reqs)
        fig["requests_after_last_cont"] = h.wait_io(200, 60)
        h.alive()
        if caught == 0:
            problems.append("no cycle caught a queue polling")
        if fig["requests_while_stopped"] or fig["completions_while_stopped"]:
            problems.append("the device took %d requests and completed %d "
                            "while the VM was stopped" %
                            (fig["requests_while_stopped"],
                             fig["completions_while_stopped"]))
        h.send_stop()
    except Exception as e:                # noqa: BLE001 (reported)
        problems.append(describe(e))
        h.kill()
    res = h.finish(timeout + 120)
    common_checks(h, res, "stopcont", problems, fig)
    return problems, "%d/%d stop/cont cycles, %d caught a queue polling, " \
        "%d fio rounds, %d I/Os, 0 verify errors" % (
            fig.get("cycles", 0), n, fig.get("cycles_polling", 0),
            fig.get("rounds", 0), fig.get("ios", 0))


def case_savevm(opts, fig):
    n = opts.cycles["savevm"]
    rnd = random.Random(opts.seed + 1)
    timeout = 120 + 40 * n
    h = Harness("savevm", opts,
                ["--device", "poll", "--iothreads", "1", "--num-queues", "2",
                 "--mapping", "single", "--backend", "qcow2",
                 "--disk-size", "256M"],
                loop_jobs("savevm", timeout), loop_files(fio_job(64)))
    problems = []
    fig["savevm_s"] = []
    fig["loadvm_s"] = []
    try:
        h.start()
        h.wait_marker("LOOP-START", "savevm", 120)
        h.wait_io(500, 60)
        fig["path"] = paths(h.stats())
        for i in range(1, n + 1):
            time.sleep(rnd.uniform(1.0, 2.0))
            t = time.monotonic()
            out = h.qmp.hmp("savevm snap%d" % i)
            fig["savevm_s"].append(round(time.monotonic() - t, 2))
            if out.strip():
                raise Failed("savevm snap%d: %s" % (i, out.strip()))
            if not h.alive()["running"]:
                raise Failed("not running after savevm snap%d" % i)
            h.wait_io(100, 60)
            time.sleep(rnd.uniform(0.5, 1.5))
            t = time.monotonic()
            since = len(h.console.lines)
            out = h.qmp.hmp("loadvm snap%d" % i)
            fig["loadvm_s"].append(round(time.monotonic() - t, 2))
            if out.strip():
                raise Failed("loadvm snap%d: %s" % (i, out.strip()))
            if not h.alive()["running"]:
                raise Failed("not running after loadvm snap%d" % i)
            # the round in progress verifies data from before the rewind
            fig.setdefault("round_ok_after_loadvm", []).append(
                h.wait_round_ok("savevm", since, 120, need_start=False))
            fig["cycles"] = i
        snaps = h.qmp.hmp("info snapshots")
        fig["snapshots"] = len(re.findall(r"\bsnap\d+\b", snaps))
        if fig["snapshots"] != n:
            problems.append("info snapshots lists %d snapshots, not %d" %
                            (fig["snapshots"], n))
        fig["requests_after_last_loadvm"] = h.wait_io(200, 60)
        h.send_stop()
    except Exception as e:                # noqa: BLE001 (reported)
        problems.append(describe(e))
        h.kill()
    res = h.finish(timeout + 120)
    common_checks(h, res, "savevm", problems, fig)
    return problems, "%d/%d savevm/loadvm cycles (savevm %s s, loadvm %s " \
        "s), %d fio rounds, %d I/Os, 0 verify errors" % (
            fig.get("cycles", 0), n, fig["savevm_s"], fig["loadvm_s"],
            fig.get("rounds", 0), fig.get("ios", 0))


def wait_path(h, want, timeout, negate=False):
    """Waits until every queue's path is `want` (or, with negate, none
    is); returns the paths seen last."""
    deadline = time.monotonic() + timeout
    while True:
        p = paths(h.stats())
        if (want not in p) if negate else (p == [want]):
            return p
        if time.monotonic() > deadline:
            return p
        time.sleep(0.05)


def case_drain(opts, fig):
    n = opts.cycles["drain"]
    timeout = 120 + 60 * n
    size = 256 << 20
    h = Harness("drain", opts,
                ["--device", "poll", "--iothreads", "2", "--num-queues", "2",
                 "--backend", "raw", "--disk-size", str(size)],
                loop_jobs("drain", timeout), loop_files(fio_job(128)))
    problems = []
    made = []
    fig["steps"] = []

    def step(what, **kw):
        kw["what"] = what
        kw["t"] = round(time.monotonic() - h.t0, 2)
        fig["steps"].append(kw)

    try:
        h.start()
        h.wait_marker("LOOP-START", "drain", 120)
        h.wait_io(500, 60)
        st = h.stats()
        p = paths(st)
        step("start", path=p, fast_rw=total(st, "fast-rw"))
        if p != ["io_uring"]:
            raise Failed("raw image not on the io_uring path at start: %s" %
                         p)
        node = "disk0"
        for cyc in range(1, n + 1):
            # grow the image under the running guest
            size += 64 << 20
            h.qmp.cmd("block_resize", {"node-name": node, "size": size})
            p = wait_path(h, "io_uring", 5)
            step("block_resize", size=size, path=p)
            if p != ["io_uring"]:
                # block_resize attaches a temporary BlockBackend across
                # its drained section: the device's re-check at drained_end
                # sees it, and nothing checks again when it goes away.
                problems.append("fast path not back 5 s after block_resize: "
                                "path %s" % p)
            h.wait_io(200, 60)
            # mirror to a new raw file and pivot to it
            target = os.path.join(h.cfg.disk_dir, "vbp-lc-%d-mirror%d.img" %
                                  (os.getpid(), cyc))
            with open(target, "wb") as f:
                f.truncate(size)
            made.append(target)
            tnode = "mirror%d" % cyc
            cache = {"direct": True, "no-flush": False}
            h.qmp.cmd("blockdev-add", {
                "driver": "raw", "node-name": tnode, "cache": cache,
                "file": {"driver": "file", "filename": target,
                         "aio": "io_uring", "cache": cache}})
            since = len(h.qmp.events)
            st0 = h.stats()
            job = "mirror-job%d" % cyc
            h.qmp.cmd("blockdev-mirror", {"job-id": job, "device": node,
                                          "target": tnode, "sync": "full"})
            seen = set()
            deadline = time.monotonic() + 120
            ready = None
            while time.monotonic() < deadline:
                seen.update(paths(h.stats()))
                for ev in h.qmp.events[since:]:
                    if ev["event"] == "BLOCK_JOB_READY" and \
                            ev["data"].get("device") == job:
                        ready = ev
                if ready:
                    break
                time.sleep(0.05)
            if not ready:
                raise Failed("mirror job never became ready")
            # guest writes go through the mirror for a while
            h.wait_io(300, 60)
            st1 = h.stats()
            seen.update(paths(st1))
            during_fallback = total(st1, "fallback-rw") - \
                total(st0, "fallback-rw")
            step("mirror ready", paths_during_job=sorted(seen),
                 fallback_rw_during_job=during_fallback,
                 fast_rw_during_job=total(st1, "fast-rw") -
                 total(st0, "fast-rw"))
            if "io_uring" in seen or not seen:
                problems.append("stats path during the mirror job: %s "
                                "(want only fallback reasons)" % sorted(seen))
            h.qmp.cmd("job-complete", {"id": job})
            t_pivot = time.monotonic()
            done = h.qmp.wait_event("BLOCK_JOB_COMPLETED", 60,
                                    {"device": job}, since)
            if done["data"].get("error"):
                raise Failed("mirror job failed: %s" % done["data"]["error"])
            p = wait_path(h, "io_uring", 10)
            st2 = h.stats()
            h.wait_io(300, 60)
            st3 = h.stats()
            blk = [b for b in h.qmp.cmd("query-block")
                   if b.get("qdev", "").startswith(DEV)]
            top = blk[0]["inserted"]["node-name"] if blk else None
            step("pivot", path=p, node=top,
                 fast_rw_after=total(st3, "fast-rw") - total(st2, "fast-rw"),
                 fallback_rw_after=total(st3, "fallback-rw") -
                 total(st2, "fallback-rw"))
            if p != ["io_uring"]:
                problems.append("path after the pivot to the raw target: %s"
                                % p)
            if top != tnode:
                problems.append("the device is on %s after the pivot, not "
                                "%s" % (top, tnode))
            if total(st3, "fast-rw") == total(st2, "fast-rw"):
                problems.append("no io_uring I/O after the pivot")
            fig.setdefault("t_pivot", []).append(t_pivot)
            node = tnode
            fig["cycles"] = cyc
        # snapshot onto a qcow2 overlay
        overlay = os.path.join(h.cfg.disk_dir, "vbp-lc-%d-overlay.qcow2" %
                               os.getpid())
        made.append(overlay)
        h.qmp.cmd("blockdev-snapshot-sync", {
            "node-name": node, "snapshot-file": overlay,
            "snapshot-node-name": "overlay0", "format": "qcow2"})
        p = wait_path(h, "io_uring", 10, negate=True)
        st4 = h.stats()
        h.wait_io(300, 60)
        st5 = h.stats()
        step("snapshot", path=p,
             fallback_rw_after=total(st5, "fallback-rw") -
             total(st4, "fallback-rw"),
             fast_rw_after=total(st5, "fast-rw") - total(st4, "fast-rw"))
        if "io_uring" in p:
            problems.append("path after the snapshot onto qcow2: %s" % p)
        if total(st5, "fast-rw") != total(st4, "fast-rw"):
            problems.append("io_uring I/O on the qcow2 overlay")
        # let the round that spans the pivot, and one more, finish
        last = h.console.markers("ROUND")
        k_now = int(last[-1][2].split()[1]) if last else 0
        h.wait_marker("ROUND-END", "drain %d" % (k_now + 1), 120)
        h.alive()
        h.send_stop()
    except Exception as e:                # noqa: BLE001 (reported)
        problems.append(describe(e))
        h.kill()
    res = h.finish(timeout + 120)
    for path in made:
        try:
            os.unlink(path)
        except OSError:
            pass
    common_checks(h, res, "drain", problems, fig)
    # A round that began before the mirror job and ended (verified) after
    # the pivot: its writes were copied by the job and read back from the
    # target.
    span = []
    starts = {int(t.split()[1]): tm for _, tm, t in h.console.markers("ROUND")
              if t.startswith("drain ")}
    for _, tm, text in h.console.markers("ROUND-END"):
        parts = text.split()
        k = int(parts[1])
        for tp in fig.get("t_pivot", []):
            if k in starts and starts[k] < tp < tm and "rc=0" in parts and \
                    "verify=0" in parts:
                span.append(k)
    fig["rounds_spanning_pivot"] = span
    fig.pop("t_pivot", None)
    if not span and not problems:
        problems.append("no fio round both started before the pivot and "
                        "verified after it")
    paths_seen = " -> ".join(
        "%s %s" % (s["what"], "/".join(s.get("path") or
                                       s.get("paths_during_job") or []))
        for s in fig["steps"])
    return problems, "%s; %d fio rounds (%s across the pivot), %d I/Os, " \
        "0 verify errors" % (paths_seen, fig.get("rounds", 0),
                             span, fig.get("ios", 0))


def case_reload(opts, fig):
    n = opts.cycles["reload"]
    jobs = []
    for i in range(1, n + 1):
        jobs.append(("reload%d" % i, "vbp_cmd reload%d 90 -- "
                     "sh /job/reload.sh reload%d" % (i, i), 90))
        jobs.append(("verify%d" % i, "export VBP_DISK=/dev/vbpdisk; "
                     "vbp_fio verify%d /job/verify.fio 120" % i, 120))
    jobs.append(DMESG_JOB)
    h = Harness("reload", opts,
                ["--device", "poll", "--iothreads", "2", "--num-queues", "2",
                 "--backend", "raw", "--disk-size", "256M"],
                jobs, {"reload.sh": RELOAD_SH, "verify.fio": VERIFY_FIO,
                       "bg.fio": BG_FIO})
    problems = []

    def at_dmesg():
        return any(t == "dmesg" for _, _, t in h.console.markers("READY"))

    def check_alive():
        """QEMU must live until the guest reaches its last job; after it,
        the guest powers off (QEMU exits 0), possibly between two looks."""
        try:
            h.alive()
        except Failed:
            time.sleep(1)                 # let the console reader catch up
            if not at_dmesg():
                raise

    try:
        h.start()
        # watch QEMU while the guest does its thing
        deadline = time.monotonic() + 120 + n * 240
        while not at_dmesg():
            if not h.thread.is_alive():
                raise Failed("run ended early: %s" %
                             (h.result or {}).get("error"))
            if time.monotonic() > deadline:
                raise Failed("the guest did not get through the reload "
                             "jobs in time")
            check_alive()
            time.sleep(0.5)
    except Exception as e:                # noqa: BLE001 (reported)
        problems.append(describe(e))
        h.kill()
    res = h.finish(180)
    fig["cycles"] = 0
    fig["bg_ios"] = 0
    fig["bg_verify_errors"] = 0
    fig["reloads"] = []
    jobs_res = {j["name"]: j for j in res.get("jobs", [])}
    for i in range(1, n + 1):
        out = h.job_stdout("reload%d" % i)
        info = {}
        for line in out:
            if line.startswith("RELOAD "):
                info.update(re.findall(r"(\S+)=(\S*)", line))
        ver = jobs_res.get("verify%d" % i, {})
        info["verify_ios"] = ver.get("ios", 0)
        info["verify_errors"] = ver.get("verify_errors")
        info["verify_rc"] = ver.get("rc")
        fig["reloads"].append(info)
        fig["bg_ios"] += int(info.get("bg-ios", 0) or 0)
        fig["bg_verify_errors"] += int(info.get("bg-verify", 0) or 0)
        if not out:
            problems.append("reload%d: no result from the guest" % i)
            continue
        if info.get("unbind-rc") != "0" or info.get("bind-rc") != "0":
            problems.append("reload%d: unbind rc %s, bind rc %s" % (
                i, info.get("unbind-rc"), info.get("bind-rc")))
        if "rebound" not in " ".join(out):
            problems.append("reload%d: no disk after bind: %s" %
                            (i, out[-1] if out else ""))
        if ver.get("rc") != 0 or ver.get("verify_errors") or \
                not ver.get("ios"):
            problems.append("reload%d: verify job rc %s, %s verify errors, "
                            "%s I/Os" % (i, ver.get("rc"),
                                         ver.get("verify_errors"),
                                         ver.get("ios")))
        else:
            fig["cycles"] += 1
        fig["verify_errors"] = fig.get("verify_errors", 0) + \
            (ver.get("verify_errors") or 0)
        fig["ios"] = fig.get("ios", 0) + (ver.get("ios") or 0)
    if fig["bg_verify_errors"]:
        problems.append("%d verify errors in the background fio (a mismatch, "
                        "not an I/O error)" % fig["bg_verify_errors"])
    if res.get("exit") not in (0, 1):
        pass                              # common_checks reports it
    common_checks(h, res, None, problems, fig)
    return problems, "%d/%d unbind/bind cycles under load (in flight at " \
        "unbind: %s), verify after each: %d I/Os, 0 verify errors" % (
            fig["cycles"], n,
            "/".join(r.get("inflight-before-unbind", "?")
                     for r in fig["reloads"]), fig.get("ios", 0))


def qemu_threads(pid):
    """{tid: comm} of QEMU's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out[int(tid)] = f.read().strip()
        except OSError:
            pass
    return out


def qemu_fds(pid):
    """{fd: link target}"""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def counts(pid):
    th = qemu_threads(pid)
    fds = qemu_fds(pid)
    # Thread-pool workers come and go on their own (10 s idle timeout)
    # and so do io_uring's kernel workers (iou-wrk-TID)
    steady = sorted(c for c in th.values()
                    if c != "worker" and not c.startswith("iou-wrk-"))
    kinds = {}
    for target in fds.values():
        k = re.sub(r"\d+", "N", target.split(":", 1)[0] if ":" in target
                   and not target.startswith("/") else target)
        kinds[k] = kinds.get(k, 0) + 1
    return {"threads": len(th), "threads_steady": len(steady),
            "workers": len(th) - len(steady), "fds": len(fds),
            "thread_names": steady, "fd_kinds": kinds}


def case_unplug(opts, fig):
    n = opts.cycles["unplug"]
    timeout = 180 + 90 * n
    h = Harness("unplug", opts,
                ["--device", "poll", "--iothreads", "0", "--num-queues", "2",
                 "--backend", "raw", "--disk-size", "256M",
                 "--device-prop", "bus=rp1"],
                loop_jobs("unplug", timeout),
                loop_files(fio_job(32, engine="psync", iodepth=1, numjobs=8)))
    h.cfg.lc_pre_device = ["-device", "pcie-root-port,id=rp1,bus=pcie.0,"
                           "chassis=1"]
    if opts.pciehp:
        # the guest's pciehp instead of ACPI hotplug (slower: Linux waits
        # 5 s after the attention button before it powers the slot off)
        h.cfg.lc_pre_device[:0] = [
            "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
    fig["hotplug"] = "pciehp" if opts.pciehp else "acpi"
    dev_args = rg.device_json(h.cfg, [])
    problems = []
    fig["unplug"] = []
    try:
        h.start()
        h.wait_marker("LOOP-START", "unplug", 120)
        h.wait_io(300, 60)
        before = counts(h.pid)
        st = h.stats()
        fig["iothreads_before"] = sorted({q.get("iothread") for q in st})
        fig["counts_before"] = before
        first = None
        since = 0                         # console line: rounds from here
        for i in range(1, n + 1):
            cyc = {"cycle": i}
            # a whole verify round on this disk, then the next one starts
            # and gets cut by the unplug
            cyc["round_ok_before_unplug"] = h.wait_round_ok("unplug", since,
                                                            120)
            h.wait_io(300, 60)
            own = sorted({q.get("iothread") for q in h.stats()})
            cyc["iothread"] = own
            ev_since = len(h.qmp.events)
            t = time.monotonic()
            h.qmp.cmd("device_del", {"id": "disk0"})
            h.qmp.wait_event("DEVICE_DELETED", 90, {"device": "disk0"},
                             ev_since)
            cyc["unplug_s"] = round(time.monotonic() - t, 2)
            st = h.alive()
            if not st["running"]:
                raise Failed("cycle %d: VM not running after unplug: %s" %
                             (i, st))
            gone = h.qmp.try_cmd("qom-get", {"path": DEV,
                                             "property": "stats"})
            if not (isinstance(gone, dict) and "error" in gone):
                problems.append("cycle %d: %s still there after "
                                "DEVICE_DELETED" % (i, DEV))
            # let what the unplug set off settle (BHs, RCU, workers)
            time.sleep(1.0)
            c = counts(h.pid)
            for _ in range(20):
                time.sleep(0.25)
                c2 = counts(h.pid)
                if (c2["threads_steady"], c2["fds"]) == \
                        (c["threads_steady"], c["fds"]):
                    break
                c = c2
            c = c2
            cyc.update({k: c[k] for k in ("threads", "threads_steady",
                                          "workers", "fds")})
            leftover = [name for name in c["thread_names"]
                        if name.startswith("IO vbp-poll")]
            cyc["vbp_threads_left"] = leftover
            if leftover:
                problems.append("cycle %d: the device's own IOThread "
                                "survived the unplug: %s" % (i, leftover))
            if first is None:
                first = c
                fig["counts_after_first_unplug"] = c
            else:
                if c["threads_steady"] != first["threads_steady"] or \
                        c["fds"] != first["fds"]:
                    diff_fd = {k: v - first["fd_kinds"].get(k, 0)
                               for k, v in c["fd_kinds"].items()
                               if v != first["fd_kinds"].get(k, 0)}
                    for k, v in first["fd_kinds"].items():
                        if k not in c["fd_kinds"]:
                            diff_fd[k] = -v
                    cyc["fd_diff"] = diff_fd
                    cyc["thread_diff"] = sorted(
                        set(c["thread_names"]) ^ set(first["thread_names"]))
                    problems.append(
                        "cycle %d: %d threads (w/o workers), %d fds after "
                        "unplug; %d, %d after the first (fds %s)" % (
                            i, c["threads_steady"], c["fds"],
                            first["threads_steady"], first["fds"], diff_fd))
            # plug it in again, same properties
            t = time.monotonic()
            since = len(h.console.lines)
            h.qmp.cmd("device_add", dev_args)
            cyc["requests_after_replug"] = h.wait_io(300, 90)
            cyc["replug_to_io_s"] = round(time.monotonic() - t, 2)
            c3 = counts(h.pid)
            cyc["threads_replugged"] = c3["threads_steady"]
            cyc["fds_replugged"] = c3["fds"]
            cyc["iothread_replugged"] = sorted(
                {q.get("iothread") for q in h.stats()})
            fig["unplug"].append(cyc)
            fig["cycles"] = i
        fig["round_ok_after_last_replug"] = h.wait_round_ok("unplug", since,
                                                            120)
        h.alive()
        h.send_stop()
    except Exception as e:                # noqa: BLE001 (reported)
        problems.append(describe(e))
        h.kill()
    res = h.finish(timeout + 120)
    # Rounds cut short by the unplug fail (EIO); a mismatch never may.
    common_checks(h, res, "unplug", problems, fig, strict_rounds=False)
    rounds = h.rounds("unplug")
    ok_rounds = [r for r in rounds if r["rc"] == 0]
    fig["rounds_ok"] = len(ok_rounds)
    if rounds and rounds[-1]["rc"] != 0:
        problems.append("the last fio round (on the re-plugged disk) "
                        "failed: rc %d" % rounds[-1]["rc"])
    if len(ok_rounds) < n + 1:
        problems.append("only %d fio rounds passed (want one on the first "
                        "disk and one after each re-plug)" % len(ok_rounds))
    cyc = fig["unplug"]
    return problems, "%d/%d unplug/replug cycles (DEVICE_DELETED after %s " \
        "s), threads/fds after each unplug %s, IOThread gone; %d fio " \
        "rounds ok, %d cut by the unplug, %d I/Os, 0 verify errors" % (
            fig.get("cycles", 0), n, [c["unplug_s"] for c in cyc],
            ["%d/%d" % (c["threads_steady"], c["fds"]) for c in cyc],
            len(ok_rounds), len(rounds) - len(ok_rounds), fig.get("ios", 0))


RUNNERS = {"stopcont": case_stopcont, "savevm": case_savevm,
           "drain": case_drain, "reload": case_reload, "unplug": case_unplug}


def parse_cycles(text):
    cycles = dict(DEFAULT_CYCLES)
    if not text:
        return cycles
    for part in text.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            if k not in cycles:
                raise argparse.ArgumentTypeError("unknown case %r" % k)
            cycles[k] = int(v)
        else:
            cycles = {k: int(part) for k in cycles}
    if any(v < 1 for v in cycles.values()):
        raise argparse.ArgumentTypeError("cycles must be >= 1")
    return cycles


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--only", help="comma-separated cases (%s)" %
                    ",".join(CASES))
    ap.add_argument("--cycles", type=parse_cycles, default=parse_cycles(""),
                    help="N: N cycles in every case; or CASE=N,... "
                    "(defaults: %s)" % ",".join("%s=%d" % kv for kv in
                                                DEFAULT_CYCLES.items()))
    ap.add_argument("--qemu", default=os.path.join(rg.QEMU_DIR,
                                                   "qemu-system-x86_64"),
                    help="QEMU binary (e.g. an ASan build)")
    ap.add_argument("--pciehp", action="store_true",
                    help="unplug: native PCIe hotplug instead of ACPI")
    ap.add_argument("--seed", type=int, help="random seed (default: time)")
    ap.add_argument("--out", default=os.path.join(TOP, "build", "lifecycle"))
    opts = ap.parse_args()
    names = opts.only.split(",") if opts.only else list(CASES)
    for name in names:
        if name not in RUNNERS:
            ap.error("unknown case %r (have: %s)" % (name, ", ".join(CASES)))
    if opts.seed is None:
        opts.seed = int(time.time()) % 100000
    if not os.access(opts.qemu, os.X_OK):
        print("lifecycle: no QEMU at %s" % opts.qemu, file=sys.stderr)
        return 2
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    opts.out = os.path.abspath(opts.out)
    opts.qemu = os.path.abspath(opts.qemu)
    os.makedirs(os.path.join(opts.out, "runs"), exist_ok=True)
    print("lifecycle: seed %d, qemu %s, cycles %s" % (
        opts.seed, opts.qemu, ",".join("%s=%d" % (k, opts.cycles[k])
                                      for k in names)), flush=True)

    doc = {"seed": opts.seed, "qemu": opts.qemu, "cycles": opts.cycles,
           "cases": {}}
    passed = failed = 0
    try:
        passed, failed = run_cases(opts, names, doc)
    finally:
        for h in Harness.started:         # never leave a QEMU behind
            h.kill()
    print_table(doc)
    with open(os.path.join(opts.out, "lifecycle.json"), "w") as f:
        json.dump(doc, f, indent=1, default=str)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run_cases(opts, names, doc):
    passed = failed = 0
    for name in names:
        fig = {}
        t = time.monotonic()
        print("lifecycle: %s ..." % name, flush=True)
        try:
            problems, detail = RUNNERS[name](opts, fig)
        except Exception as e:            # noqa: BLE001 (a case's bug)
            problems = ["%s: %s" % (type(e).__name__, e)]
            detail = ""
            fig["traceback"] = traceback.format_exc()
        for h in Harness.started:         # a case that broke off
            h.kill()
        fig["seconds"] = round(time.monotonic() - t, 1)
        fig["ok"] = not problems
        fig["problems"] = problems
        doc["cases"][name] = fig
        if problems:
            failed += 1
            print("FAIL %s: %s (run dir %s)" % (name, "; ".join(problems),
                                                fig.get("run_dir")),
                  flush=True)
        else:
            passed += 1
            print("PASS %s: %s (%.0f s)" % (name, detail, fig["seconds"]),
                  flush=True)
    return passed, failed


def print_table(doc):
    print("\n%-9s %-5s %6s %7s %8s %7s %8s %7s  %s" % (
        "case", "ok", "time_s", "cycles", "polling", "rounds", "ios",
        "verify", "other"))
    for name, fig in doc["cases"].items():
        other = ""
        if name == "unplug" and fig.get("unplug"):
            other = "threads/fds after unplug %s (first %s), replugged %s" % (
                ",".join("%d/%d" % (c["threads_steady"], c["fds"])
                         for c in fig["unplug"]),
                "%d/%d" % (fig["counts_after_first_unplug"]["threads_steady"],
                           fig["counts_after_first_unplug"]["fds"]),
                ",".join("%d/%d" % (c["threads_replugged"], c["fds_replugged"])
                         for c in fig["unplug"]))
        elif name == "stopcont":
            other = "stop max %s ms, requests while stopped %s" % (
                fig.get("stop_ms_max"), fig.get("requests_while_stopped"))
        elif name == "savevm":
            other = "savevm %s s, loadvm %s s" % (fig.get("savevm_s"),
                                                  fig.get("loadvm_s"))
        elif name == "drain":
            other = "paths " + " -> ".join(
                "/".join(s.get("path") or s.get("paths_during_job") or [])
                for s in fig.get("steps", []))
        elif name == "reload":
            other = "bg fio I/Os %s, bg verify errors %s" % (
                fig.get("bg_ios"), fig.get("bg_verify_errors"))
        print("%-9s %-5s %6s %7s %8s %7s %8s %7s  %s" % (
            name, "yes" if fig["ok"] else "NO", fig["seconds"],
            fig.get("cycles", "-"), fig.get("cycles_polling", "-"),
            fig.get("rounds", "-"), fig.get("ios", "-"),
            fig.get("verify_errors", "-"), other))


if __name__ == "__main__":
    sys.exit(main())
